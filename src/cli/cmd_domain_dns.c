/* roost domain dns DOMAIN: the records to publish for a domain, as zone-file lines; and
 * roost domain check DOMAIN: each of those records looked up through [dns] resolvers and
 * reported OK, MISSING or WRONG (ERROR when the lookup itself failed). Both walk the one list
 * of domain_zone.c. TXT records are compared by what they mean, not octet for octet: a
 * receiver reads tags and mechanisms, and an admin's spacing or tag order is not an error. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "cli.h"
#include "domain_zone.h"

#define CHECK_QUERY_TIMEOUT_MS 5000 /* per lookup; a domain needs about twenty */
#define CHECK_SHOWN_MAX 100	    /* octets of a found record quoted in a WRONG line */

enum check_result { CHECK_OK, CHECK_MISSING, CHECK_WRONG, CHECK_ERROR };

static const char *const check_result_word[] = { "OK", "MISSING", "WRONG", "ERROR" };

int cmd_domain_dns(struct config *cfg, const char *domain)
{
	char err[512];
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	struct zone z;
	struct buf out;
	int status = 0;

	if (zone_build(cfg, data_dir, domain, &z, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: %s\n", err);
		status = 1;
	}
	buf_init(&out);
	for (size_t i = 0; i < z.count; i++) {
		/* A blank line after the heading (the first comment) and before each group, whose
		 * comments come before its records. */
		if (i == 1 || (i > 1 && z.items[i].kind == ZONE_COMMENT &&
			       z.items[i - 1].kind == ZONE_RECORD))
			buf_append_byte(&out, '\n');
		zone_item_format(&out, &z.items[i]);
	}
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	zone_free(&z);
	free(data_dir);
	return status;
}

/* ---- comparing one record ---- */

/* What was found, for a WRONG line: printable ASCII only (a TXT record is any octets). */
static void found_append(struct buf *found, const char *text, size_t len)
{
	if (found->len > 0)
		buf_append_str(found, ", ");
	buf_append_byte(found, '"');
	for (size_t i = 0; i < len && i < CHECK_SHOWN_MAX; i++)
		buf_append_byte(found, (uint8_t)(isprint((unsigned char)text[i]) ? text[i] : '?'));
	if (len > CHECK_SHOWN_MAX)
		buf_append_str(found, "...");
	buf_append_byte(found, '"');
}

/* The value of tag in a "tag=value; tag=value" record (DKIM, DMARC, MTA-STS, TLS-RPT), spaces
 * around it trimmed, into value_r. false when the tag is absent. */
static bool tag_value(const char *text, const char *tag, struct buf *value_r)
{
	size_t taglen = strlen(tag);

	buf_reset(value_r);
	for (const char *p = text; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (eq) {
			const char *ne = eq;
			while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
				ne--;
			if ((size_t)(ne - p) == taglen && str_nieq(p, tag, taglen)) {
				const char *v = eq + 1, *ve = end;
				while (v < ve && (*v == ' ' || *v == '\t'))
					v++;
				while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				buf_append(value_r, v, (size_t)(ve - v));
				buf_cstr(value_r);
				return true;
			}
		}
		p = end;
	}
	return false;
}

/* A DKIM p= with its folding white space removed (RFC 6376 §3.6.1 allows it). */
static void strip_spaces(struct buf *b)
{
	size_t o = 0;
	for (size_t i = 0; i < b->len; i++)
		if (!isspace(b->data[i]))
			b->data[o++] = b->data[i];
	b->len = o;
	buf_cstr(b);
}

/* rua= holds comma-separated URIs, each possibly with a "!size" suffix (RFC 7489 §6.4). */
static bool rua_names(const char *rua, const char *address)
{
	size_t alen = strlen(address);

	for (const char *p = rua; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (str_has_prefix_ci(p, "mailto:") && str_nieq(p + 7, address, alen)) {
			char after = p[7 + alen];
			if (after == '\0' || after == ',' || after == '!' || after == ' ')
				return true;
		}
		const char *comma = strchr(p, ',');
		if (comma == NULL)
			break;
		p = comma;
	}
	return false;
}

/* One SPF term normalised: lower case, the default "+" qualifier removed. */
static char *spf_term(const char *p, size_t len)
{
	if (len > 0 && *p == '+') {
		p++;
		len--;
	}
	char *t = xstrndup(p, len);
	for (char *c = t; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return t;
}

static bool spf_has_term(const char *record, const char *want)
{
	for (const char *p = record; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		char *t = spf_term(p, n);
		bool same = strcmp(t, want) == 0;
		free(t);
		if (same)
			return true;
		p += n;
	}
	return false;
}

/* Every mechanism of the expected record is in the found one with the same qualifier; more
 * mechanisms (another sender) are the admin's to add. */
static bool spf_matches(const char *found, const char *expected)
{
	const char *p = expected + strlen("v=spf1");
	bool all = true;

	while (*p && all) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		char *t = spf_term(p, n);
		all = spf_has_term(found, t);
		free(t);
		p += n;
	}
	return all;
}

static bool is_record_of(const char *text, const char *version)
{
	size_t n = strlen(version);
	return str_nieq(text, version, n) && (text[n] == '\0' || text[n] == ' ' || text[n] == ';');
}

static bool txt_matches(const struct zone_item *it, const char *contact, const char *found)
{
	struct buf want, got;
	bool ok = false;

	buf_init(&want);
	buf_init(&got);
	switch (it->match) {
	case ZONE_MATCH_SPF: ok = spf_matches(found, it->text); break;
	case ZONE_MATCH_DKIM:
		if (tag_value(it->text, "p", &want) && tag_value(found, "p", &got)) {
			strip_spaces(&got);
			ok = want.len == got.len && memcmp(want.data, got.data, got.len) == 0;
		}
		break;
	case ZONE_MATCH_DMARC:
		ok = tag_value(found, "p", &got) && tag_value(found, "rua", &got) &&
		     rua_names(buf_cstr(&got), contact);
		break;
	case ZONE_MATCH_MTASTS:
		ok = tag_value(it->text, "id", &want) && tag_value(found, "id", &got) &&
		     strcmp(buf_cstr(&want), buf_cstr(&got)) == 0;
		break;
	case ZONE_MATCH_TLSRPT:
		ok = tag_value(found, "rua", &got) && rua_names(buf_cstr(&got), contact);
		break;
	case ZONE_MATCH_HOST:
	case ZONE_MATCH_PTR: break;
	}
	buf_free(&want);
	buf_free(&got);
	return ok;
}

/* The version tag each kind of TXT record starts with: other TXT records at the same name
 * (a domain's own verification strings) are not ours to judge. */
static const char *txt_version(enum zone_match match)
{
	switch (match) {
	case ZONE_MATCH_SPF: return "v=spf1";
	case ZONE_MATCH_DKIM: return "v=DKIM1";
	case ZONE_MATCH_DMARC: return "v=DMARC1";
	case ZONE_MATCH_MTASTS: return "v=STSv1";
	case ZONE_MATCH_TLSRPT: return "v=TLSRPTv1";
	case ZONE_MATCH_HOST:
	case ZONE_MATCH_PTR: break;
	}
	return "";
}

static enum check_result check_txt(const struct zone_item *it, const char *contact,
				   const struct dns_answer *a, struct buf *found)
{
	const char *version = txt_version(it->match);
	size_t ours = 0;
	bool match = false;

	for (size_t i = 0; i < a->count; i++) {
		const struct dns_record *r = &a->records[i];
		/* A DKIM key record may leave v= out (RFC 6376 §3.6.1): any record counts. */
		if (it->match != ZONE_MATCH_DKIM && !is_record_of(r->text, version))
			continue;
		ours++;
		found_append(found, r->text, r->text_len);
		if (strlen(r->text) == r->text_len && txt_matches(it, contact, r->text))
			match = true;
	}
	if (ours == 0)
		return CHECK_MISSING;
	/* Two SPF or DMARC records void both for a receiver (RFC 7208 §4.5, RFC 7489 §6.6.3). */
	return match && ours == 1 ? CHECK_OK : CHECK_WRONG;
}

static bool same_address(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int family = strchr(a, ':') ? AF_INET6 : AF_INET;

	return inet_pton(family, a, x) == 1 && inet_pton(family, b, y) == 1 &&
	       memcmp(x, y, family == AF_INET6 ? 16 : 4) == 0;
}

static enum check_result check_host(const struct zone_item *it, const struct dns_answer *a,
				    struct buf *found)
{
	bool match = false;

	for (size_t i = 0; i < a->count; i++) {
		const struct dns_record *r = &a->records[i];
		char shown[300];
		bool same;
		if (it->type == DNS_A || it->type == DNS_AAAA) {
			same = same_address(it->text, r->text);
			snprintf(shown, sizeof(shown), "%s", r->text);
		} else if (it->type == DNS_SRV) {
			/* The target "." says "not offered" whatever the port (RFC 2782). */
			same = str_ieq(it->text, r->text) &&
			       (it->text[0] == '\0' || it->port == r->port);
			snprintf(shown, sizeof(shown), "%u %u %u %s.", r->priority, r->weight,
				 r->port, r->text);
		} else {
			same = str_ieq(it->text, r->text);
			snprintf(shown, sizeof(shown), "%s.", r->text);
		}
		found_append(found, shown, strlen(shown));
		match = match || same;
	}
	return match ? CHECK_OK : CHECK_WRONG;
}

/* The PTR names the host and the host's address of that family is the address again
 * (forward-confirmed reverse DNS, what receivers test). */
static enum check_result check_ptr(const struct config *cfg, const struct zone_item *it,
				   const struct dns_answer *a, struct buf *found)
{
	enum check_result res = check_host(it, a, found);
	struct dns_answer fwd;

	if (res != CHECK_OK)
		return res;
	dns_query(cfg->dns_resolvers, cfg->hostname, strchr(it->address, ':') ? DNS_AAAA : DNS_A,
		  CHECK_QUERY_TIMEOUT_MS, &fwd);
	res = CHECK_WRONG;
	for (size_t i = 0; fwd.status == DNS_OK && i < fwd.count; i++)
		if (same_address(it->address, fwd.records[i].text))
			res = CHECK_OK;
	if (res != CHECK_OK)
		buf_printf(found, "; but %s does not resolve to %s", cfg->hostname, it->address);
	dns_answer_free(&fwd);
	return res;
}

static enum check_result check_item(const struct config *cfg, const struct zone *z,
				    const struct zone_item *it, struct buf *found)
{
	struct dns_answer a;
	enum check_result res;

	dns_query(cfg->dns_resolvers, it->name, it->type, CHECK_QUERY_TIMEOUT_MS, &a);
	switch (a.status) {
	case DNS_NXDOMAIN:
	case DNS_NODATA: res = CHECK_MISSING; break;
	case DNS_TEMPFAIL:
	case DNS_BADNAME:
		buf_printf(found, "lookup failed: %s",
			   a.status == DNS_BADNAME ? "bad name" : a.error);
		res = CHECK_ERROR;
		break;
	case DNS_OK:
	default:
		if (it->type == DNS_TXT)
			res = check_txt(it, z->contact, &a, found);
		else if (it->match == ZONE_MATCH_PTR)
			res = check_ptr(cfg, it, &a, found);
		else
			res = check_host(it, &a, found);
		break;
	}
	dns_answer_free(&a);
	return res;
}

/* One line per record: the word, then the record as `domain dns` prints it, then what was
 * found when that is not it. */
static void report(enum check_result res, const struct zone_item *it, const struct buf *found)
{
	struct zone_item shown = *it;
	struct buf line;

	shown.published_elsewhere = false;
	buf_init(&line);
	zone_item_format(&line, &shown);
	line.len--; /* its newline */
	printf("%-7s %s", check_result_word[res], buf_cstr(&line));
	if (res != CHECK_OK && res != CHECK_MISSING && found->len > 0)
		printf("  (%s%.*s)", res == CHECK_WRONG ? "found: " : "", (int)found->len,
		       (const char *)found->data);
	printf("\n");
	buf_free(&line);
}

int cmd_domain_check(struct config *cfg, const char *domain)
{
	char err[512];
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	struct zone z;
	int status = 0;

	if (zone_build(cfg, data_dir, domain, &z, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: %s\n", err);
		status = 1;
	}
	for (size_t i = 0; i < z.count; i++) {
		const struct zone_item *it = &z.items[i];
		struct buf found;
		if (it->kind != ZONE_RECORD)
			continue;
		buf_init(&found);
		enum check_result res = check_item(cfg, &z, it, &found);
		report(res, it, &found);
		if (res != CHECK_OK)
			status = 1;
		buf_free(&found);
	}
	zone_free(&z);
	free(data_dir);
	return status;
}
