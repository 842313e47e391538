/* The list of DNS records a domain needs (domain_zone.h), and their zone-file text. Every
 * name is written absolute (trailing dot) so the lines mean the same in any zone file they are
 * pasted into; the PTR is printed as a comment, since only the address owner can publish it. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mailauth/mailauth.h"
#include "domain_zone.h"

#define ZONE_TXT_STRING_MAX 255 /* RFC 1035 §3.3.14 */
#define ZONE_MX_PRIORITY 10
#define ZONE_MTASTS_MAX_AGE 604800 /* one week, as RFC 8461 §3.2 suggests (weeks) */

static const char *const mtasts_mode_text[] = { "none", "testing", "enforce" };

/* ---- building the list ---- */

static struct zone_item *zone_add(struct zone *z, enum zone_item_kind kind, const char *text)
{
	z->items = xrealloc(z->items, (z->count + 1) * sizeof(*z->items));
	struct zone_item *it = &z->items[z->count++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->text = xstrdup(text);
	return it;
}

static void zone_comment(struct zone *z, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void zone_comment(struct zone *z, const char *fmt, ...)
{
	struct buf line;
	va_list ap;

	buf_init(&line);
	va_start(ap, fmt);
	buf_vprintf(&line, fmt, ap);
	va_end(ap);
	zone_add(z, ZONE_COMMENT, buf_cstr(&line));
	buf_free(&line);
}

static struct zone_item *zone_record(struct zone *z, const char *name, enum dns_type type,
				     const char *text, enum zone_match match)
{
	struct zone_item *it = zone_add(z, ZONE_RECORD, text);
	it->name = xstrdup(name);
	it->type = type;
	it->match = match;
	return it;
}

static char *name_under(const char *label, const char *domain)
{
	return xasprintf("%s.%s", label, domain);
}

/* The first public address of [listen] smtp of the family, or NULL. */
static const char *public_smtp_address(const struct config *cfg, int family)
{
	const struct listen_list *l = &cfg->listen[LISTEN_SMTP];
	unsigned char addr[16];

	for (size_t i = 0; i < l->count; i++) {
		const char *host = l->addrs[i].host;
		if (inet_pton(family, host, addr) == 1 && zone_address_is_public(host))
			return host;
	}
	return NULL;
}

static void add_mx_and_host(struct zone *z, const struct config *cfg, const char *domain)
{
	const char *v4 = public_smtp_address(cfg, AF_INET);
	const char *v6 = public_smtp_address(cfg, AF_INET6);

	zone_comment(z, "Mail for %s goes to %s (RFC 5321 §5.1).", domain, cfg->hostname);
	zone_record(z, domain, DNS_MX, cfg->hostname, ZONE_MATCH_HOST)->priority =
		ZONE_MX_PRIORITY;
	if (v4 == NULL && v6 == NULL) {
		zone_comment(z, "%s: [listen] smtp has no public address; publish its A (and AAAA) "
				"record with the server's public address yourself.", cfg->hostname);
		return;
	}
	zone_comment(z, "The address of %s, from [listen] smtp.", cfg->hostname);
	if (v4)
		zone_record(z, cfg->hostname, DNS_A, v4, ZONE_MATCH_HOST);
	if (v6)
		zone_record(z, cfg->hostname, DNS_AAAA, v6, ZONE_MATCH_HOST);
}

static void add_spf(struct zone *z, const char *domain)
{
	zone_comment(z, "SPF (RFC 7208): the MX hosts send the mail of %s, nothing else does.",
		     domain);
	zone_record(z, domain, DNS_TXT, "v=spf1 mx -all", ZONE_MATCH_SPF);
}

static int add_dkim(struct zone *z, const char *data_dir, const char *domain, char *err,
		    size_t errlen)
{
	struct buf text;
	int ret = 0;

	buf_init(&text);
	zone_comment(z, "DKIM (RFC 6376, RFC 8463): the public keys outgoing mail is signed with.");
	if (dkim_dns_records(data_dir, domain, &text, err, errlen) < 0) {
		zone_comment(z, "No DKIM keys: %s", err);
		buf_free(&text);
		return -1;
	}
	const char *p = (const char *)text.data, *end = p + text.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *name, *txt;
		if (zone_txt_parse(p, len, &name, &txt) == 0) {
			zone_record(z, name, DNS_TXT, txt, ZONE_MATCH_DKIM);
			free(name);
			free(txt);
		} else {
			err_setf(err, errlen, "cannot read the DKIM record \"%.*s\"", (int)len, p);
			ret = -1;
		}
		p += len + 1;
	}
	buf_free(&text);
	return ret;
}

static void add_dmarc(struct zone *z, const char *domain)
{
	char *name = name_under("_dmarc", domain);
	char *text = xasprintf("v=DMARC1; p=quarantine; rua=mailto:%s", z->contact);

	zone_comment(z, "DMARC (RFC 7489): receivers quarantine mail of %s that passes neither SPF "
			"nor DKIM aligned.", domain);
	zone_comment(z, "Their aggregate reports come to %s (every domain has a postmaster); "
			"[dmarc] reports governs the reports this server sends, not these.",
		     z->contact);
	zone_record(z, name, DNS_TXT, text, ZONE_MATCH_DMARC);
	free(name);
	free(text);
}

static void add_mtasts(struct zone *z, const struct config *cfg, const char *domain)
{
	if (cfg->mtasts_mode == MTASTS_MODE_NONE)
		return;
	char *policy = zone_mtasts_policy(cfg->mtasts_mode, cfg->hostname);
	char id[17];
	zone_mtasts_id(policy, id);
	zone_comment(z, "MTA-STS (RFC 8461), [mtasts] mode = %s. The policy below must be served "
			"at https://mta-sts.%s/.well-known/mta-sts.txt",
		     mtasts_mode_text[cfg->mtasts_mode], domain);
	zone_comment(z, "(this version of roost does not serve it); its id changes with its text:");
	for (char *line = policy, *eol; (eol = strstr(line, "\r\n")) != NULL; line = eol + 2)
		zone_comment(z, "  %.*s", (int)(eol - line), line);
	char *name = name_under("_mta-sts", domain);
	char *text = xasprintf("v=STSv1; id=%s", id);
	zone_record(z, name, DNS_TXT, text, ZONE_MATCH_MTASTS);
	free(name);
	free(text);
	name = name_under("mta-sts", domain);
	zone_record(z, name, DNS_CNAME, cfg->hostname, ZONE_MATCH_HOST);
	free(name);
	free(policy);
}

static void add_tlsrpt(struct zone *z, const char *domain)
{
	char *name = name_under("_smtp._tls", domain);
	char *text = xasprintf("v=TLSRPTv1; rua=mailto:%s", z->contact);

	zone_comment(z, "TLS-RPT (RFC 8460): reports of failed TLS to this server come to %s.",
		     z->contact);
	zone_record(z, name, DNS_TXT, text, ZONE_MATCH_TLSRPT);
	free(name);
	free(text);
}

static void add_srv(struct zone *z, const struct config *cfg, const char *domain)
{
	static const struct {
		const char *label;
		enum listen_kind kind;
	} services[] = {
		{ "_submissions._tcp", LISTEN_SUBMISSIONS },
		{ "_submission._tcp", LISTEN_SUBMISSION },
		{ "_imaps._tcp", LISTEN_IMAPS },
		{ "_imap._tcp", LISTEN_IMAP },
		{ "_pop3s._tcp", LISTEN_POP3S },
		{ "_pop3._tcp", LISTEN_POP3 },
	};

	zone_comment(z, "Client settings (RFC 6186, RFC 8314): a service this server does not "
			"offer has the target \".\" and port 0.");
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		const struct listen_list *l = &cfg->listen[services[i].kind];
		char *name = name_under(services[i].label, domain);
		bool offered = l->count > 0;
		struct zone_item *it = zone_record(z, name, DNS_SRV, offered ? cfg->hostname : "",
						   ZONE_MATCH_HOST);
		it->priority = 0;
		it->weight = offered ? 1 : 0;
		it->port = offered ? l->addrs[0].port : 0;
		free(name);
	}
}

static void add_autoconfig(struct zone *z, const struct config *cfg, const char *domain)
{
	zone_comment(z, "Names mail clients try for automatic set-up (autoconfig, autodiscover).");
	for (int i = 0; i < 2; i++) {
		char *name = name_under(i == 0 ? "autoconfig" : "autodiscover", domain);
		zone_record(z, name, DNS_CNAME, cfg->hostname, ZONE_MATCH_HOST);
		free(name);
	}
}

static void add_ptr(struct zone *z, const struct config *cfg)
{
	const char *addrs[2] = { public_smtp_address(cfg, AF_INET),
				 public_smtp_address(cfg, AF_INET6) };
	char reverse[80];

	zone_comment(z, "Reverse DNS, published by whoever owns the address, not in this zone: "
			"the address of %s should name it back.", cfg->hostname);
	for (int i = 0; i < 2; i++) {
		if (addrs[i] == NULL || !dns_reverse_name(addrs[i], reverse, sizeof(reverse)))
			continue;
		struct zone_item *it = zone_record(z, reverse, DNS_PTR, cfg->hostname,
						   ZONE_MATCH_PTR);
		it->published_elsewhere = true;
		it->address = xstrdup(addrs[i]);
	}
}

int zone_build(const struct config *cfg, const char *data_dir, const char *domain,
	       struct zone *z, char *err, size_t errlen)
{
	int ret;

	memset(z, 0, sizeof(*z));
	z->contact = xasprintf("postmaster@%s", domain);
	zone_comment(z, "DNS records for %s, served by %s (roost domain dns).", domain,
		     cfg->hostname);
	add_mx_and_host(z, cfg, domain);
	add_spf(z, domain);
	ret = add_dkim(z, data_dir, domain, err, errlen);
	add_dmarc(z, domain);
	add_mtasts(z, cfg, domain);
	add_tlsrpt(z, domain);
	add_srv(z, cfg, domain);
	add_autoconfig(z, cfg, domain);
	add_ptr(z, cfg);
	return ret;
}

void zone_free(struct zone *z)
{
	for (size_t i = 0; i < z->count; i++) {
		free(z->items[i].text);
		free(z->items[i].name);
		free(z->items[i].address);
	}
	free(z->items);
	free(z->contact);
	memset(z, 0, sizeof(*z));
}

/* ---- zone-file text ---- */

static const char *type_name(enum dns_type type)
{
	switch (type) {
	case DNS_TXT: return "TXT";
	case DNS_A: return "A";
	case DNS_AAAA: return "AAAA";
	case DNS_MX: return "MX";
	case DNS_PTR: return "PTR";
	case DNS_SRV: return "SRV";
	case DNS_CNAME: return "CNAME";
	}
	return "TXT";
}

void zone_txt_append(struct buf *out, const char *text)
{
	size_t len = strlen(text), off = 0;

	do {
		size_t n = len - off > ZONE_TXT_STRING_MAX ? ZONE_TXT_STRING_MAX : len - off;
		buf_append_str(out, " \"");
		for (size_t i = off; i < off + n; i++) {
			if (text[i] == '"' || text[i] == '\\')
				buf_append_byte(out, '\\');
			buf_append_byte(out, (uint8_t)text[i]);
		}
		buf_append_byte(out, '"');
		off += n;
	} while (off < len);
}

void zone_item_format(struct buf *out, const struct zone_item *it)
{
	if (it->kind == ZONE_COMMENT) {
		buf_printf(out, "; %s\n", it->text);
		return;
	}
	buf_printf(out, "%s%s. IN %s", it->published_elsewhere ? "; " : "", it->name,
		   type_name(it->type));
	switch (it->type) {
	case DNS_TXT: zone_txt_append(out, it->text); break;
	case DNS_MX: buf_printf(out, " %u %s.", it->priority, it->text); break;
	case DNS_SRV:
		/* The root, the target of a service not offered, is "." itself (RFC 2782). */
		buf_printf(out, " %u %u %u %s.", it->priority, it->weight, it->port, it->text);
		break;
	case DNS_A:
	case DNS_AAAA: buf_printf(out, " %s", it->text); break;
	case DNS_PTR:
	case DNS_CNAME: buf_printf(out, " %s.", it->text); break;
	}
	buf_append_byte(out, '\n');
}

int zone_txt_parse(const char *line, size_t len, char **name_r, char **text_r)
{
	static const char marker[] = ". IN TXT";
	const char *end = line + len, *p = line;
	struct buf text;

	while (p + sizeof(marker) - 1 <= end && memcmp(p, marker, sizeof(marker) - 1) != 0)
		p++;
	if (p + sizeof(marker) - 1 > end || p == line)
		return -1;
	*name_r = xstrndup(line, (size_t)(p - line));
	p += sizeof(marker) - 1;
	buf_init(&text);
	for (;;) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		if (*p++ != '"')
			goto bad;
		while (p < end && *p != '"') {
			if (*p == '\\' && p + 1 < end)
				p++;
			buf_append_byte(&text, (uint8_t)*p++);
		}
		if (p == end)
			goto bad;
		p++; /* the closing quote */
	}
	*text_r = xstrdup(buf_cstr(&text));
	buf_free(&text);
	return 0;
bad:
	free(*name_r);
	*name_r = NULL;
	buf_free(&text);
	return -1;
}

/* ---- MTA-STS ---- */

char *zone_mtasts_policy(enum mtasts_mode mode, const char *mx_host)
{
	return xasprintf("version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: %d\r\n",
			 mtasts_mode_text[mode], mx_host, ZONE_MTASTS_MAX_AGE);
}

/* FNV-1a over the policy: the id only has to differ between successive policies (RFC 8461
 * §3.1), it is not a security boundary, so no digest library is needed here. */
void zone_mtasts_id(const char *policy, char id[17])
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)policy; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	snprintf(id, 17, "%016llx", (unsigned long long)h);
}

/* ---- addresses ---- */

static bool ipv4_is_public(const unsigned char a[4])
{
	if (a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224)
		return false;
	if ((a[0] == 169 && a[1] == 254) || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168) || (a[0] == 100 && (a[1] & 0xc0) == 64))
		return false;
	return true;
}

bool zone_address_is_public(const char *address)
{
	unsigned char a[16];
	static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (inet_pton(AF_INET, address, a) == 1)
		return ipv4_is_public(a);
	if (inet_pton(AF_INET6, address, a) != 1)
		return false; /* "*" and names: the address is not known */
	if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0)
		return ipv4_is_public(a + 12);
	bool zero_prefix = true;
	for (int i = 0; i < 15; i++)
		zero_prefix = zero_prefix && a[i] == 0;
	if (zero_prefix) /* :: and ::1 */
		return false;
	if (a[0] == 0xff || (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
		return false;
	return true;
}
