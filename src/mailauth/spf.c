/* SPF evaluation: check_host() (RFC 7208 §4) over DNS with the check's time budget.
 *
 * Design notes:
 * 1. One struct spf_eval per check carries the two counters of §4.6.4 across include and
 *    redirect: DNS-querying terms (at most 10, then permerror) and void lookups (at most 2).
 * 2. A DNS failure (timeout, SERVFAIL) of a lookup a mechanism needs ends the evaluation with
 *    temperror (§5); a PTR lookup that fails only makes ptr not match (§5.5).
 * 3. A client address is kept as 16 octets plus its family; an IPv4-mapped IPv6 address is
 *    treated as the IPv4 address it carries, as the other servers see it. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf_internal.h"

struct spf_eval {
	struct mailauth_dns *dns;
	int family; /* AF_INET or AF_INET6 */
	uint8_t ip[16];
	char ip_text[INET6_ADDRSTRLEN];
	char ip_dotted[80];
	const char *sender, *local, *sender_domain, *helo, *receiver;
	unsigned lookups, voids;
	char reason[160];
	char explanation[256];
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail", "softfail",
					      "temperror", "permerror" };
	return (size_t)r < ARRAY_LEN(names) ? names[r] : "none";
}

static void set_reason(struct spf_eval *ev, const char *fmt, const char *arg)
{
	if (ev->reason[0] == '\0')
		snprintf(ev->reason, sizeof(ev->reason), fmt, arg);
}

static bool parse_client(struct spf_eval *ev, const char *ip)
{
	uint8_t v6[16];

	if (inet_pton(AF_INET, ip, ev->ip) == 1) {
		ev->family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, v6) == 1) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(v6, mapped, 12) == 0) {
			ev->family = AF_INET;
			memcpy(ev->ip, v6 + 12, 4);
		} else {
			ev->family = AF_INET6;
			memcpy(ev->ip, v6, 16);
		}
	} else {
		return false;
	}
	inet_ntop(ev->family, ev->ip, ev->ip_text, sizeof(ev->ip_text));
	if (ev->family == AF_INET) {
		snprintf(ev->ip_dotted, sizeof(ev->ip_dotted), "%s", ev->ip_text);
	} else { /* §7.3: i for IPv6 is the nibbles, dot-separated */
		static const char hex[] = "0123456789abcdef";
		size_t o = 0;
		for (size_t i = 0; i < 16; i++) {
			ev->ip_dotted[o++] = hex[ev->ip[i] >> 4];
			ev->ip_dotted[o++] = '.';
			ev->ip_dotted[o++] = hex[ev->ip[i] & 15];
			ev->ip_dotted[o++] = i < 15 ? '.' : '\0';
		}
	}
	return true;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	size_t full = bits / 8;
	unsigned rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Whether an address in text form (from an A/AAAA answer) is in the client's network. */
static bool addr_text_match(const struct spf_eval *ev, const char *text, unsigned cidr4,
			    unsigned cidr6)
{
	uint8_t a[16];

	if (inet_pton(ev->family, text, a) != 1)
		return false;
	return prefix_match(a, ev->ip, ev->family == AF_INET ? cidr4 : cidr6);
}

/* Counts a DNS-querying term; false (permerror set) past the limit. */
static bool count_lookup(struct spf_eval *ev)
{
	if (++ev->lookups > LIMIT_SPF_DNS_LOOKUPS) {
		set_reason(ev, "more than %s DNS-querying terms", "10");
		return false;
	}
	return true;
}

enum lookup_status { LOOKUP_FOUND, LOOKUP_EMPTY, LOOKUP_TEMPFAIL, LOOKUP_TOO_MANY_VOIDS };

/* One query; an empty answer is a void lookup (§4.6.4). */
static enum lookup_status lookup(struct spf_eval *ev, const char *name, enum dns_type type,
				 struct dns_answer *ans)
{
	mailauth_dns_query(ev->dns, name, type, ans);
	if (ans->status == DNS_TEMPFAIL) {
		set_reason(ev, "DNS lookup failed for %s", name);
		return LOOKUP_TEMPFAIL;
	}
	if (ans->status == DNS_OK && ans->count > 0)
		return LOOKUP_FOUND;
	if (++ev->voids > LIMIT_SPF_VOID_LOOKUPS) {
		set_reason(ev, "more than 2 void lookups, the last for %s", name);
		return LOOKUP_TOO_MANY_VOIDS;
	}
	return LOOKUP_EMPTY;
}

/* Match results of one mechanism. */
enum match { NO_MATCH, MATCH, M_TEMPERROR, M_PERMERROR };

static enum match from_lookup(enum lookup_status s)
{
	return s == LOOKUP_TEMPFAIL ? M_TEMPERROR : M_PERMERROR;
}

static enum dns_type addr_type(const struct spf_eval *ev)
{
	return ev->family == AF_INET ? DNS_A : DNS_AAAA;
}

/* a: the target's addresses of the client's family. */
static enum match match_a(struct spf_eval *ev, const char *target, unsigned c4, unsigned c6)
{
	struct dns_answer ans;
	enum match m = NO_MATCH;
	enum lookup_status s = lookup(ev, target, addr_type(ev), &ans);

	if (s == LOOKUP_FOUND) {
		for (size_t i = 0; i < ans.count && m == NO_MATCH; i++)
			if (addr_text_match(ev, ans.records[i].text, c4, c6))
				m = MATCH;
	} else if (s != LOOKUP_EMPTY) {
		m = from_lookup(s);
	}
	dns_answer_free(&ans);
	return m;
}

static enum match match_mx(struct spf_eval *ev, const char *target, unsigned c4, unsigned c6)
{
	struct dns_answer mx;
	enum match m = NO_MATCH;
	enum lookup_status s = lookup(ev, target, DNS_MX, &mx);

	if (s == LOOKUP_FOUND && mx.count > LIMIT_SPF_MX_NAMES) {
		set_reason(ev, "more than 10 MX names for %s", target);
		m = M_PERMERROR;
	} else if (s == LOOKUP_FOUND) {
		for (size_t i = 0; i < mx.count && m == NO_MATCH; i++)
			if (mx.records[i].text[0] != '\0') /* null MX (RFC 7505): nothing */
				m = match_a(ev, mx.records[i].text, c4, c6);
	} else if (s != LOOKUP_EMPTY) {
		m = from_lookup(s);
	}
	dns_answer_free(&mx);
	return m;
}

static bool is_subdomain_or_same(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	while (n > 0 && name[n - 1] == '.')
		n--;
	while (d > 0 && domain[d - 1] == '.')
		d--;
	if (n == d)
		return strncasecmp(name, domain, n) == 0;
	return n > d && name[n - d - 1] == '.' && strncasecmp(name + n - d, domain, d) == 0;
}

/* ptr (§5.5): validated reverse names of the client that end in target. Lookup failures only
 * make it not match. */
static enum match match_ptr(struct spf_eval *ev, const char *target)
{
	char rev[128];
	struct dns_answer ptr;
	enum match m = NO_MATCH;

	if (!dns_reverse_name(ev->ip_text, rev, sizeof(rev)))
		return NO_MATCH;
	enum lookup_status s = lookup(ev, rev, DNS_PTR, &ptr);
	if (s == LOOKUP_TOO_MANY_VOIDS)
		m = M_PERMERROR;
	for (size_t i = 0; s == LOOKUP_FOUND && i < ptr.count && i < LIMIT_SPF_PTR_NAMES &&
			   m == NO_MATCH;
	     i++) {
		const char *name = ptr.records[i].text;
		if (!is_subdomain_or_same(name, target))
			continue;
		struct dns_answer addrs;
		mailauth_dns_query(ev->dns, name, addr_type(ev), &addrs);
		for (size_t k = 0; addrs.status == DNS_OK && k < addrs.count; k++)
			if (addr_text_match(ev, addrs.records[k].text, 32, 128))
				m = MATCH;
		dns_answer_free(&addrs);
	}
	dns_answer_free(&ptr);
	return m;
}

static enum match match_exists(struct spf_eval *ev, const char *target)
{
	struct dns_answer ans;
	enum lookup_status s = lookup(ev, target, DNS_A, &ans); /* §5.7: always A */

	dns_answer_free(&ans);
	if (s == LOOKUP_FOUND)
		return MATCH;
	return s == LOOKUP_EMPTY ? NO_MATCH : from_lookup(s);
}

static enum spf_result check_host(struct spf_eval *ev, const char *domain, unsigned depth);

static enum match match_include(struct spf_eval *ev, const char *target, unsigned depth)
{
	switch (check_host(ev, target, depth + 1)) {
	case SPF_PASS:
		return MATCH;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return NO_MATCH;
	case SPF_TEMPERROR:
		return M_TEMPERROR;
	case SPF_NONE:
		set_reason(ev, "include of %s, which has no SPF record", target);
		return M_PERMERROR;
	default:
		return M_PERMERROR;
	}
}

static void macro_vars(const struct spf_eval *ev, const char *domain, struct spf_macro_vars *v)
{
	v->sender = ev->sender;
	v->local = ev->local;
	v->sender_domain = ev->sender_domain;
	v->domain = domain;
	v->ip_text = ev->ip_text;
	v->ip_dotted = ev->ip_dotted;
	v->ipv6 = ev->family == AF_INET6;
	v->helo = ev->helo;
	v->receiver = ev->receiver;
	v->now = time_wall_seconds();
}

/* The target name of a term: its expanded domain-spec, or the current domain. */
static int target_of(const struct spf_eval *ev, const char *domain, const char *spec,
		     size_t spec_len, struct buf *out)
{
	struct spf_macro_vars v;

	buf_reset(out);
	if (spec == NULL) {
		buf_append_str(out, domain);
	} else {
		macro_vars(ev, domain, &v);
		if (spf_macro_expand(&v, spec, spec_len, false, true, out) < 0)
			return -1;
	}
	while (out->len > 0 && out->data[out->len - 1] == '.')
		out->len--; /* a trailing dot is the same name */
	buf_append_byte(out, '\0');
	out->len--;
	return 0;
}

static enum match match_term(struct spf_eval *ev, const struct spf_term *t, const char *domain,
			     unsigned depth)
{
	struct buf target;
	enum match m;

	if (t->mech == SPF_MECH_ALL)
		return MATCH;
	if (t->mech == SPF_MECH_IP4)
		return ev->family == AF_INET && prefix_match(t->addr, ev->ip, t->cidr4) ? MATCH
											: NO_MATCH;
	if (t->mech == SPF_MECH_IP6)
		return ev->family == AF_INET6 && prefix_match(t->addr, ev->ip, t->cidr6)
			       ? MATCH
			       : NO_MATCH;
	if (!count_lookup(ev))
		return M_PERMERROR;
	buf_init(&target);
	if (target_of(ev, domain, t->spec, t->spec_len, &target) < 0) {
		buf_free(&target);
		set_reason(ev, "bad macro in a term of %s", domain);
		return M_PERMERROR;
	}
	const char *name = (const char *)target.data;
	switch (t->mech) {
	case SPF_MECH_INCLUDE: m = match_include(ev, name, depth); break;
	case SPF_MECH_A: m = match_a(ev, name, t->cidr4, t->cidr6); break;
	case SPF_MECH_MX: m = match_mx(ev, name, t->cidr4, t->cidr6); break;
	case SPF_MECH_PTR: m = match_ptr(ev, name); break;
	case SPF_MECH_EXISTS: m = match_exists(ev, name); break;
	default: m = NO_MATCH; break;
	}
	buf_free(&target);
	return m;
}

static enum spf_result from_qualifier(char q)
{
	switch (q) {
	case '-': return SPF_FAIL;
	case '~': return SPF_SOFTFAIL;
	case '?': return SPF_NEUTRAL;
	default: return SPF_PASS;
	}
}

/* §6.2: the explanation of a fail, when exp= names a TXT record; errors leave it empty. */
static void explain(struct spf_eval *ev, const struct spf_record *rec, const char *domain)
{
	struct buf name, text;
	struct dns_answer ans;
	struct spf_macro_vars v;

	if (rec->exp == NULL)
		return;
	buf_init(&name);
	buf_init(&text);
	if (target_of(ev, domain, rec->exp, rec->exp_len, &name) == 0) {
		mailauth_dns_query(ev->dns, (const char *)name.data, DNS_TXT, &ans);
		macro_vars(ev, domain, &v);
		if (ans.status == DNS_OK && ans.count == 1 &&
		    spf_macro_expand(&v, ans.records[0].text, ans.records[0].text_len, true, false,
				     &text) == 0) {
			size_t n = text.len < sizeof(ev->explanation) - 1 ? text.len
									  : sizeof(ev->explanation) - 1;
			for (size_t i = 0; i < n; i++) /* printable US-ASCII only (§6.2) */
				ev->explanation[i] = text.data[i] >= 0x20 && text.data[i] < 0x7f
							     ? (char)text.data[i]
							     : '?';
			ev->explanation[n] = '\0';
		}
		dns_answer_free(&ans);
	}
	buf_free(&name);
	buf_free(&text);
}

static enum spf_result evaluate(struct spf_eval *ev, const struct spf_record *rec,
				const char *domain, unsigned depth)
{
	for (size_t i = 0; i < rec->count; i++) {
		const struct spf_term *t = &rec->terms[i];
		switch (match_term(ev, t, domain, depth)) {
		case MATCH: {
			enum spf_result r = from_qualifier(t->qualifier);
			if (depth == 0) {
				set_reason(ev, "matched a term of %s", domain);
				if (r == SPF_FAIL)
					explain(ev, rec, domain);
			}
			return r;
		}
		case M_TEMPERROR: return SPF_TEMPERROR;
		case M_PERMERROR: return SPF_PERMERROR;
		case NO_MATCH: break;
		}
	}
	if (rec->redirect != NULL) { /* §6.1: only when no mechanism matched */
		struct buf target;
		enum spf_result r;
		if (!count_lookup(ev))
			return SPF_PERMERROR;
		buf_init(&target);
		if (target_of(ev, domain, rec->redirect, rec->redirect_len, &target) < 0) {
			buf_free(&target);
			return SPF_PERMERROR;
		}
		r = check_host(ev, (const char *)target.data, depth + 1);
		if (r == SPF_NONE) {
			set_reason(ev, "redirect to %s, which has no SPF record",
				   (const char *)target.data);
			r = SPF_PERMERROR;
		}
		buf_free(&target);
		return r;
	}
	set_reason(ev, "no term of %s matched", domain);
	return SPF_NEUTRAL;
}

/* §4.3: a name that can be queried: labels of 1..63 octets, at most 253 in all, a dot in it. */
static bool domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253 || strchr(d, '.') == NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (label == 0 && i + 1 != len)
				return false;
			label = 0;
		} else if (++label > 63) {
			return false;
		}
	}
	return true;
}

static enum spf_result check_host(struct spf_eval *ev, const char *domain, unsigned depth)
{
	struct dns_answer ans;
	enum spf_result r;
	size_t found = 0, which = 0;
	char err[160];

	if (depth > LIMIT_SPF_DEPTH) {
		set_reason(ev, "include/redirect nested deeper than %s", "10");
		return SPF_PERMERROR;
	}
	if (!domain_ok(domain)) {
		set_reason(ev, "%s is not a domain name", domain);
		return SPF_NONE;
	}
	mailauth_dns_query(ev->dns, domain, DNS_TXT, &ans);
	if (ans.status == DNS_TEMPFAIL) {
		set_reason(ev, "DNS lookup failed for %s", domain);
		dns_answer_free(&ans);
		return SPF_TEMPERROR;
	}
	for (size_t i = 0; ans.status == DNS_OK && i < ans.count; i++)
		if (spf_is_record(ans.records[i].text, ans.records[i].text_len)) {
			found++;
			which = i;
		}
	if (found == 0) {
		if (depth == 0)
			set_reason(ev, "no SPF record at %s", domain);
		dns_answer_free(&ans);
		return SPF_NONE;
	}
	if (found > 1) {
		set_reason(ev, "more than one SPF record at %s", domain);
		dns_answer_free(&ans);
		return SPF_PERMERROR;
	}
	struct spf_record *rec = xmalloc(sizeof(*rec));
	if (spf_record_parse(ans.records[which].text, ans.records[which].text_len, rec, err,
			     sizeof(err)) < 0) {
		if (ev->reason[0] == '\0') {
			int n = snprintf(ev->reason, sizeof(ev->reason), "syntax error at %.60s: ",
					 domain);
			if (n > 0 && (size_t)n < sizeof(ev->reason))
				memcpy(ev->reason + n, err,
				       strnlen(err, sizeof(ev->reason) - (size_t)n - 1) + 1);
			ev->reason[sizeof(ev->reason) - 1] = '\0';
		}
		r = SPF_PERMERROR;
	} else {
		r = evaluate(ev, rec, domain, depth);
	}
	free(rec);
	dns_answer_free(&ans);
	return r;
}

void spf_check(struct mailauth_dns *dns, const char *ip, const char *helo, const char *sender,
	       const char *receiver, struct spf_outcome *out)
{
	struct spf_eval *ev = xcalloc(1, sizeof(*ev));
	char local[65];
	const char *at;

	memset(out, 0, sizeof(*out));
	out->helo_identity = sender[0] == '\0';
	/* §2.4: the null sender is checked as postmaster@HELO */
	if (out->helo_identity)
		snprintf(out->identity, sizeof(out->identity), "postmaster@%s", helo);
	else
		snprintf(out->identity, sizeof(out->identity), "%s", sender);
	at = strrchr(out->identity, '@');
	snprintf(out->domain, sizeof(out->domain), "%.255s", at != NULL ? at + 1 : out->identity);
	/* §4.3: a local-part that is missing is "postmaster" */
	if (at == NULL || at == out->identity || (size_t)(at - out->identity) >= sizeof(local))
		snprintf(local, sizeof(local), "postmaster");
	else
		snprintf(local, sizeof(local), "%.*s", (int)(at - out->identity), out->identity);
	ev->dns = dns;
	ev->sender = out->identity;
	ev->local = local;
	ev->sender_domain = out->domain;
	ev->helo = helo;
	ev->receiver = receiver;
	if (!parse_client(ev, ip)) {
		out->result = SPF_NONE;
		snprintf(out->reason, sizeof(out->reason), "client address %s not understood", ip);
	} else {
		out->result = check_host(ev, out->domain, 0);
		snprintf(out->reason, sizeof(out->reason), "%s", ev->reason);
		snprintf(out->explanation, sizeof(out->explanation), "%s", ev->explanation);
	}
	free(ev);
}
