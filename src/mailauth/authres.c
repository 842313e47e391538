/* The Authentication-Results field (RFC 8601) we add, and the incoming ones that claim our
 * authserv-id, which are forgeries (§5: a receiver removes them before adding its own). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim_internal.h"
#include "mailauth_internal.h"

/* Skips CFWS (§2.2 of RFC 5322: whitespace, folds and nested comments) from v[*i]. */
static void skip_cfws(const uint8_t *v, size_t len, size_t *i)
{
	int depth = 0;

	while (*i < len) {
		uint8_t c = v[*i];
		if (depth > 0) {
			if (c == '\\')
				(*i)++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '(') {
			depth = 1;
		} else if (!dkim_is_fws(c)) {
			return;
		}
		(*i)++;
	}
}

bool authres_authserv_id(const uint8_t *value, size_t len, char *out, size_t outlen)
{
	size_t i = 0, start, n;

	skip_cfws(value, len, &i);
	start = i;
	if (i < len && value[i] == '"') { /* a quoted-string value (RFC 2045 value) */
		start = ++i;
		while (i < len && value[i] != '"')
			i++;
	} else {
		while (i < len && value[i] != ';' && value[i] != '(' && !dkim_is_fws(value[i]))
			i++;
	}
	n = i - start;
	if (n == 0 || n >= outlen)
		return false;
	memcpy(out, value + start, n);
	out[n] = '\0';
	return true;
}

/* Moves *i past one resinfo (or the authserv-id part) to just after its ';', stepping over
 * comments and quoted strings, which may hold a ';' of their own. */
static void skip_to_semicolon(const uint8_t *v, size_t len, size_t *i)
{
	bool quoted = false;

	while (*i < len) {
		uint8_t c = v[*i];
		if (quoted) {
			if (c == '\\')
				(*i)++;
			else if (c == '"')
				quoted = false;
		} else if (c == '(') {
			skip_cfws(v, len, i);
			continue;
		} else if (c == '"') {
			quoted = true;
		} else if (c == ';') {
			(*i)++;
			return;
		}
		(*i)++;
	}
}

static size_t token_end(const uint8_t *v, size_t len, size_t i)
{
	while (i < len && v[i] != '=' && v[i] != ';' && v[i] != '(' && v[i] != '/' &&
	       !dkim_is_fws(v[i]))
		i++;
	return i;
}

bool authres_method_result(const uint8_t *value, size_t len, const char *method, char *out,
			   size_t outlen)
{
	size_t i = 0, mlen = strlen(method);

	skip_to_semicolon(value, len, &i); /* authserv-id [version] ";" */
	while (i < len) {
		skip_cfws(value, len, &i);
		size_t m0 = i, m1 = token_end(value, len, i);
		i = m1;
		if (i < len && value[i] == '/') /* method "/" version */
			i = token_end(value, len, i + 1);
		skip_cfws(value, len, &i);
		if (i < len && value[i] == '=' && m1 - m0 == mlen &&
		    str_nieq((const char *)value + m0, method, mlen)) {
			i++;
			skip_cfws(value, len, &i);
			size_t r1 = token_end(value, len, i);
			if (r1 == i || r1 - i >= outlen)
				return false;
			memcpy(out, value + i, r1 - i);
			out[r1 - i] = '\0';
			return true;
		}
		skip_to_semicolon(value, len, &i);
	}
	return false;
}

size_t mailauth_find_forged(const uint8_t *msg, size_t len, const char *authserv_id,
			    struct mailauth_report *r)
{
	struct dkim_header h;

	r->forged_count = 0;
	if (dkim_header_parse(msg, len, &h) < 0)
		return 0;
	for (size_t i = 0; i < h.count && r->forged_count < MAILAUTH_MAX_FORGED; i++) {
		const struct dkim_field *f = &h.fields[i];
		char id[256];
		if (!dkim_field_is(f, "authentication-results", 22))
			continue;
		const uint8_t *colon = memchr(f->p, ':', f->len);
		size_t voff = (size_t)(colon - f->p) + 1;
		if (!authres_authserv_id(f->p + voff, f->len - voff, id, sizeof(id)) ||
		    strcasecmp(id, authserv_id) != 0)
			continue;
		size_t off = (size_t)(f->p - msg), end = off + f->len;
		if (end < len && msg[end] == '\r')
			end++;
		if (end < len && msg[end] == '\n')
			end++;
		r->forged_off[r->forged_count] = off;
		r->forged_len[r->forged_count++] = end - off;
	}
	free(h.fields);
	return r->forged_count;
}

/* A comment: printable ASCII, parentheses and backslashes escaped (RFC 5322 ccontent). */
static void put_comment(struct buf *out, const char *text)
{
	if (text == NULL || text[0] == '\0')
		return;
	buf_append_str(out, " (");
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '(' || *p == ')' || *p == '\\')
			buf_append_byte(out, '\\');
		buf_append_byte(out, (uint8_t)(*p >= 0x20 && *p < 0x7f ? *p : '?'));
	}
	buf_append_byte(out, ')');
}

/* A property value: as is when it is a plain token or address, quoted otherwise. */
static void put_value(struct buf *out, const char *v)
{
	bool plain = v[0] != '\0';

	for (const char *p = v; *p != '\0' && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || strchr(".-_+@=!#$%&'*/?^`{|}~", *p) != NULL;
	if (plain) {
		buf_append_str(out, v);
		return;
	}
	buf_append_byte(out, '"');
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_byte(out, '\\');
		buf_append_byte(out, (uint8_t)(*p >= 0x20 && *p < 0x7f ? *p : '?'));
	}
	buf_append_byte(out, '"');
}

static const char *dkim_status_name(enum dkim_status s)
{
	switch (s) {
	case DKIM_PASS: return "pass";
	case DKIM_FAIL: return "fail";
	case DKIM_TEMPERROR: return "temperror";
	default: return "permerror";
	}
}

/* RFC 8617 §6: the chain status, the client that handed us the chain and, for a pass, the
 * oldest set whose AMS still verifies (0: all do) and who sealed last. */
static void write_arc(struct buf *out, const struct arc_outcome *a)
{
	char num[16];

	buf_append_str(out, ";\r\n\tarc=");
	buf_append_str(out, arc_result_name(a->result));
	put_comment(out, a->reason);
	if (a->sets > 0 && a->remote_ip[0] != '\0') {
		buf_append_str(out, " smtp.remote-ip=");
		put_value(out, a->remote_ip);
	}
	if (a->result == ARC_PASS) {
		snprintf(num, sizeof(num), "%u", a->oldest_pass);
		buf_append_str(out, " header.oldest-pass=");
		buf_append_str(out, num);
	}
}

/* One resinfo per line: "Authentication-Results: id;\r\n\tspf=...;\r\n\tdkim=..." */
void mailauth_write_field(const char *authserv_id, struct mailauth_report *r)
{
	struct buf *out = &r->field;
	char comment[200];

	buf_reset(out);
	buf_append_str(out, "Authentication-Results: ");
	buf_append_str(out, authserv_id);
	buf_append_str(out, ";\r\n\tspf=");
	buf_append_str(out, spf_result_name(r->spf.result));
	put_comment(out, r->spf.reason);
	buf_append_str(out, r->spf.helo_identity ? " smtp.helo=" : " smtp.mailfrom=");
	put_value(out, r->spf.helo_identity ? r->spf.domain : r->spf.identity);
	if (r->dkim_count <= 0) {
		buf_append_str(out, ";\r\n\tdkim=");
		buf_append_str(out, r->dkim_count < 0 ? "permerror" : "none");
		if (r->dkim_count < 0)
			put_comment(out, "header block too large");
	}
	for (int i = 0; i < r->dkim_count; i++) {
		const struct dkim_result *d = &r->dkim[i];
		buf_append_str(out, ";\r\n\tdkim=");
		buf_append_str(out, dkim_status_name(d->status));
		put_comment(out, d->reason);
		if (d->domain[0] != '\0') {
			buf_append_str(out, " header.d=");
			put_value(out, d->domain);
		}
		if (d->selector[0] != '\0') {
			buf_append_str(out, " header.s=");
			put_value(out, d->selector);
		}
		if (d->algorithm[0] != '\0') {
			buf_append_str(out, " header.a=");
			put_value(out, d->algorithm);
		}
	}
	buf_append_str(out, ";\r\n\tdmarc=");
	buf_append_str(out, dmarc_result_name(r->dmarc.result));
	if (r->dmarc_arc_override)
		snprintf(comment, sizeof(comment), "p=%s dis=none, trusted ARC sealer %.100s saw a pass",
			 dmarc_policy_name(r->dmarc.policy), r->arc.domain);
	else if (r->dmarc.result == DMARC_PASS || r->dmarc.result == DMARC_FAIL)
		snprintf(comment, sizeof(comment), "p=%s dis=%s",
			 dmarc_policy_name(r->dmarc.policy),
			 dmarc_policy_name(r->dmarc.disposition));
	else
		snprintf(comment, sizeof(comment), "%s", r->dmarc.reason);
	put_comment(out, comment);
	if (r->dmarc.from_domain[0] != '\0') {
		buf_append_str(out, " header.from=");
		put_value(out, r->dmarc.from_domain);
	}
	if (r->dmarc_arc_override)
		buf_append_str(out, " policy.override=arc");
	write_arc(out, &r->arc);
}
