/* mailauth's parsers and pure steps: SPF record syntax and the macro examples of RFC 7208 §7.4,
 * DMARC records (RFC 7489 §6.3) and the From domain, the organisational domain from the Public
 * Suffix List, simple body canonicalisation (RFC 6376 §3.4.3), the authserv-id of an
 * Authentication-Results field, the DKIM signer cache, and SPF evaluated against a table of DNS
 * answers (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "mailauth/mailauth.h"
#include "mailauth/spf_internal.h"

/* ---- SPF syntax ---- */

static int spf_ok(const char *text)
{
	char err[160];
	return spf_record_check(text, strlen(text), err, sizeof(err));
}

static void test_spf_record_syntax(void **state)
{
	(void)state;
	assert_int_equal(spf_ok("v=spf1"), 0);
	assert_int_equal(spf_ok("v=spf1 -all"), 0);
	assert_int_equal(spf_ok("V=SPF1 +A ?MX ~ptr -ALL"), 0);
	assert_int_equal(spf_ok("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"), 0);
	assert_int_equal(spf_ok("v=spf1 a:mail.example.com/24//64 mx//64 a/32 -all"), 0);
	assert_int_equal(spf_ok("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"), 0);
	assert_int_equal(spf_ok("v=spf1 redirect=_spf.example.com"), 0);
	assert_int_equal(spf_ok("v=spf1 -all exp=explain.%{d} moo=%{d}.cow"), 0);
	assert_int_equal(spf_ok("v=spf1   -all  "), 0); /* extra spaces */
	assert_int_equal(spf_ok("v=spf1 exists:%{d10}.example.com a:%{l20r}.x.example"), 0);

	assert_int_equal(spf_ok("v=spf10 -all"), -1);
	assert_int_equal(spf_ok("spf1 -all"), -1);
	assert_int_equal(spf_ok("v=spf1 foo -all"), -1);		   /* unknown mechanism */
	assert_int_equal(spf_ok("v=spf1 ip4:192.0.2.300 -all"), -1);	   /* bad address */
	assert_int_equal(spf_ok("v=spf1 ip4:192.0.2.0/33 -all"), -1);	   /* cidr too long */
	assert_int_equal(spf_ok("v=spf1 ip6:2001:db8::/129"), -1);
	assert_int_equal(spf_ok("v=spf1 ip4:192.0.2.0/024"), -1);	   /* leading zero */
	assert_int_equal(spf_ok("v=spf1 include -all"), -1);		   /* needs a domain */
	assert_int_equal(spf_ok("v=spf1 include:example -all"), -1);	   /* no toplabel */
	assert_int_equal(spf_ok("v=spf1 a:example.123 -all"), -1);	   /* numeric toplabel */
	assert_int_equal(spf_ok("v=spf1 all:x"), -1);
	assert_int_equal(spf_ok("v=spf1 redirect=a.example redirect=b.example"), -1);
	assert_int_equal(spf_ok("v=spf1 exp=a.example exp=b.example"), -1);
	assert_int_equal(spf_ok("v=spf1 exists:%{x}.example.com"), -1);   /* bad letter */
	assert_int_equal(spf_ok("v=spf1 exists:%{d0}.example.com"), -1);  /* zero digits */
	assert_int_equal(spf_ok("v=spf1 exists:%{c}.example.com"), -1);   /* c is exp only */
	assert_int_equal(spf_ok("v=spf1 exists:%{d.example.com"), -1);	   /* unterminated */
	assert_int_equal(spf_ok("v=spf1 exists:100%.example.com"), -1);
	assert_int_equal(spf_ok("v=spf1\t-all"), -1);
}

/* ---- macros: the examples of RFC 7208 §7.4 ---- */

static void expect_macro(const struct spf_macro_vars *v, const char *in, const char *want)
{
	struct buf out;

	buf_init(&out);
	assert_int_equal(spf_macro_expand(v, in, strlen(in), false, false, &out), 0);
	buf_append_byte(&out, '\0');
	assert_string_equal((const char *)out.data, want);
	buf_free(&out);
}

static void test_spf_macros_rfc_examples(void **state)
{
	struct spf_macro_vars v = {
		.sender = "strong-bad@email.example.com", .local = "strong-bad",
		.sender_domain = "email.example.com", .domain = "email.example.com",
		.ip_text = "192.0.2.3", .ip_dotted = "192.0.2.3", .helo = "mx.example.org",
		.receiver = "mx.roost.test", .now = 1,
	};
	(void)state;
	expect_macro(&v, "%{s}", "strong-bad@email.example.com");
	expect_macro(&v, "%{o}", "email.example.com");
	expect_macro(&v, "%{d}", "email.example.com");
	expect_macro(&v, "%{d4}", "email.example.com");
	expect_macro(&v, "%{d3}", "email.example.com");
	expect_macro(&v, "%{d2}", "example.com");
	expect_macro(&v, "%{d1}", "com");
	expect_macro(&v, "%{dr}", "com.example.email");
	expect_macro(&v, "%{d2r}", "example.email");
	expect_macro(&v, "%{l}", "strong-bad");
	expect_macro(&v, "%{l-}", "strong.bad");
	expect_macro(&v, "%{lr}", "strong-bad");
	expect_macro(&v, "%{lr-}", "bad.strong");
	expect_macro(&v, "%{l1r-}", "strong");
	expect_macro(&v, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com");
	expect_macro(&v, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com");
	expect_macro(&v, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		     "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expect_macro(&v, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		     "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expect_macro(&v, "%{d2}.trusted-domains.example.net",
		     "example.com.trusted-domains.example.net");
	expect_macro(&v, "%%%_%-", "% %20");
	expect_macro(&v, "%{d10}", "email.example.com"); /* more parts asked than there are */
	expect_macro(&v, "%{d20r}", "com.example.email");
	expect_macro(&v, "%{S}", "strong-bad%40email.example.com"); /* upper case: URL-escaped */

	v.ipv6 = true;
	v.ip_dotted = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1";
	expect_macro(&v, "%{ir}.%{v}._spf.%{d2}",
		     "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf."
		     "example.com");
}

static void test_spf_macro_domain_truncation(void **state)
{
	struct spf_macro_vars v = { .domain = "", .sender = "", .local = "", .sender_domain = "",
				    .ip_text = "", .ip_dotted = "", .helo = "", .receiver = "" };
	char label[64], spec[400];
	struct buf out;

	(void)state;
	memset(label, 'a', 63);
	label[63] = '\0';
	/* five 63-octet labels and a short one: over 253, so labels go from the left */
	snprintf(spec, sizeof(spec), "%s.%s.%s.%s.%s.example.com", label, label, label, label,
		 label);
	buf_init(&out);
	assert_int_equal(spf_macro_expand(&v, spec, strlen(spec), false, true, &out), 0);
	assert_true(out.len <= 253);
	assert_true(out.len > 253 - 64);
	assert_memory_equal(out.data + out.len - 12, ".example.com", 12);
	buf_free(&out);
}

/* ---- SPF evaluation against a table ---- */

struct fake_zone {
	const char *name;
	enum dns_type type;
	const char *answer; /* NULL: NXDOMAIN; "!": server failure; records split at '|' */
};

static const struct fake_zone zone[] = {
	{ "example.org", DNS_TXT, "v=spf1 mx a:%{l}.users.example.org -all" },
	{ "example.org", DNS_MX, "mx1.example.org" },
	{ "mx1.example.org", DNS_A, "192.0.2.1" },
	{ "mx1.example.org", DNS_AAAA, "2001:db8::1" },
	{ "carol.users.example.org", DNS_A, "198.51.100.9" },
	{ "broken.example", DNS_TXT, "!" },
	{ "loop.example", DNS_TXT, "v=spf1 include:loop.example" },
	{ "two.example", DNS_TXT, "v=spf1 -all|v=spf1 +all" },
	{ "other.example", DNS_TXT, "not spf|v=spf1 ptr:example.org ?all" },
	{ "1.2.0.192.in-addr.arpa", DNS_PTR, "mx1.example.org" },
};

static void fake_query(void *arg, const char *name, enum dns_type type, unsigned timeout_ms,
		       struct dns_answer *answer)
{
	unsigned *count = arg;

	(*count)++;
	memset(answer, 0, sizeof(*answer));
	answer->status = DNS_NXDOMAIN;
	for (size_t i = 0; i < ARRAY_LEN(zone); i++) {
		if (strcasecmp(zone[i].name, name) != 0)
			continue;
		if (zone[i].type != type) {
			answer->status = DNS_NODATA;
			continue;
		}
		if (strcmp(zone[i].answer, "!") == 0) {
			answer->status = DNS_TEMPFAIL;
			return;
		}
		answer->status = DNS_OK;
		const char *p = zone[i].answer;
		while (*p != '\0') {
			const char *bar = strchr(p, '|');
			size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
			answer->records = xrealloc(answer->records,
						   (answer->count + 1) * sizeof(*answer->records));
			struct dns_record *r = &answer->records[answer->count++];
			r->text = xmalloc(n + 1);
			memcpy(r->text, p, n);
			r->text[n] = '\0';
			r->text_len = n;
			r->priority = 10;
			p += n + (bar != NULL);
		}
		return;
	}
}

static enum spf_result spf_eval(const char *ip, const char *sender, unsigned *queries)
{
	struct mailauth_dns dns = { .resolvers = "", .deadline_ms = time_now_ms() + 60000,
				    .query = fake_query, .query_arg = queries };
	struct spf_outcome out;

	spf_check(&dns, ip, "helo.example.org", sender, "mx.roost.test", &out);
	return out.result;
}

static void test_spf_evaluation(void **state)
{
	unsigned q = 0;

	(void)state;
	assert_int_equal(spf_eval("192.0.2.1", "a@example.org", &q), SPF_PASS);
	assert_int_equal(spf_eval("2001:db8::1", "a@example.org", &q), SPF_PASS);
	assert_int_equal(spf_eval("::ffff:192.0.2.1", "a@example.org", &q), SPF_PASS);
	assert_int_equal(spf_eval("198.51.100.9", "carol@example.org", &q), SPF_PASS);
	assert_int_equal(spf_eval("198.51.100.9", "dave@example.org", &q), SPF_FAIL);
	assert_int_equal(spf_eval("192.0.2.1", "a@broken.example", &q), SPF_TEMPERROR);
	assert_int_equal(spf_eval("192.0.2.1", "a@two.example", &q), SPF_PERMERROR);
	assert_int_equal(spf_eval("192.0.2.1", "a@nowhere.example", &q), SPF_NONE);
	assert_int_equal(spf_eval("192.0.2.1", "a@other.example", &q), SPF_PASS); /* ptr */
	assert_int_equal(spf_eval("192.0.2.2", "a@other.example", &q), SPF_NEUTRAL);
	/* an include of itself stops at the lookup limit, after a bounded number of queries */
	q = 0;
	assert_int_equal(spf_eval("192.0.2.1", "a@loop.example", &q), SPF_PERMERROR);
	assert_true(q <= LIMIT_SPF_DNS_LOOKUPS + 2);
}

static void test_spf_spent_budget_is_temperror(void **state)
{
	unsigned q = 0;
	struct mailauth_dns dns = { .resolvers = "", .deadline_ms = 0, .query = fake_query,
				    .query_arg = &q };
	struct spf_outcome out;

	(void)state;
	spf_check(&dns, "192.0.2.1", "h", "a@example.org", "mx", &out);
	assert_int_equal(out.result, SPF_TEMPERROR);
	assert_int_equal(q, 0);
}

/* ---- DMARC ---- */

static void test_dmarc_record(void **state)
{
	struct dmarc_record r;
	char err[100];
	const char *t;

	(void)state;
	t = "v=DMARC1; p=reject; sp=none; pct=20; adkim=s; aspf=r";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, err, sizeof(err)), 0);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_int_equal(r.pct, 20);
	assert_true(r.strict_dkim);
	assert_false(r.strict_spf);
	t = "v=DMARC1;p=quarantine";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, err, sizeof(err)), 0);
	assert_int_equal(r.sp, DMARC_POLICY_QUARANTINE); /* sp defaults to p */
	assert_int_equal(r.pct, 100);
	t = "v=DMARC1; p=bogus; rua=mailto:d@example.com"; /* §6.6.3: acts as p=none */
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, err, sizeof(err)), 0);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	t = "v=DMARC1; pct=150; p=reject"; /* a bad pct is ignored */
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, err, sizeof(err)), 0);
	assert_int_equal(r.pct, 100);
	t = "v=DMARC1; p=bogus";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, err, sizeof(err)), -1);
	t = "p=reject; v=DMARC1";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, err, sizeof(err)), -1);
	t = "v=DMARC2; p=reject";
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, err, sizeof(err)), -1);
	t = "";
	assert_int_equal(dmarc_record_parse(t, 0, &r, err, sizeof(err)), -1);
}

static bool from_domain(const char *msg, char *out)
{
	const char *reason;
	return dmarc_from_domain((const uint8_t *)msg, strlen(msg), out, 256, &reason);
}

static void test_dmarc_from_domain(void **state)
{
	char d[256];

	(void)state;
	assert_true(from_domain("From: a@Example.COM\r\n\r\n", d));
	assert_string_equal(d, "example.com");
	assert_true(from_domain("Subject: x\r\nFrom: \"Doe, John\" (boss) <j@mail.example.org.>"
				"\r\n\r\nbody", d));
	assert_string_equal(d, "mail.example.org");
	assert_true(from_domain("From: John\r\n <j@folded.example>\r\n\r\n", d));
	assert_string_equal(d, "folded.example");
	assert_false(from_domain("From: a@x.example, b@y.example\r\n\r\n", d));
	assert_false(from_domain("From: a@x.example\r\nFrom: b@y.example\r\n\r\n", d));
	assert_false(from_domain("To: a@x.example\r\n\r\n", d));
	assert_false(from_domain("From: undisclosed\r\n\r\n", d));
}

static void test_org_domain(void **state)
{
	char org[256];

	(void)state;
	assert_true(dmarc_org_domain("mail.example.com", org, sizeof(org)));
	assert_string_equal(org, "example.com");
	assert_true(dmarc_org_domain("a.b.example.co.uk", org, sizeof(org)));
	assert_string_equal(org, "example.co.uk");
	assert_true(dmarc_org_domain("News.Example.COM", org, sizeof(org)));
	assert_string_equal(org, "example.com");
	assert_false(dmarc_org_domain("co.uk", org, sizeof(org)));
}

/* ---- DKIM canonicalisation, simple body (RFC 6376 §3.4.3, §3.4.5) ---- */

static void expect_simple(const char *body, const char *want)
{
	struct buf out;

	buf_init(&out);
	dkim_canon_body_simple((const uint8_t *)body, strlen(body), &out);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	buf_free(&out);
}

static void test_canon_body_simple(void **state)
{
	(void)state;
	/* §3.4.5: " C \r\nD \t E\r\n\r\n\r\n" keeps its spaces, loses the empty lines */
	expect_simple(" C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n");
	expect_simple("", "\r\n");		   /* an empty body is one CRLF */
	expect_simple("\r\n\r\n", "\r\n");
	expect_simple("no final line end", "no final line end\r\n");
	expect_simple("a\nb\n", "a\r\nb\r\n"); /* bare LF counts as a line end */
}

/* ---- Authentication-Results authserv-id ---- */

static void expect_id(const char *value, const char *want)
{
	char id[64];
	bool ok = authres_authserv_id((const uint8_t *)value, strlen(value), id, sizeof(id));

	if (want == NULL) {
		assert_false(ok);
		return;
	}
	assert_true(ok);
	assert_string_equal(id, want);
}

static void test_authserv_id(void **state)
{
	(void)state;
	expect_id(" mx.example.org; spf=pass", "mx.example.org");
	expect_id(" mx.example.org 1; none", "mx.example.org");	/* with a version */
	expect_id(" (a (nested) comment)\r\n\tmx.example.org;", "mx.example.org");
	expect_id(" \"quoted.example\"; none", "quoted.example");
	expect_id(" mx.example.org", "mx.example.org");
	expect_id("   ", NULL);
	expect_id(" ; spf=pass", NULL);
}

/* ---- the signer cache ---- */

static void test_signer_cache_loads_once_and_reloads_on_change(void **state)
{
	char dir[] = "/tmp/roost-dkimcache-XXXXXX";
	char err[256], path[512];
	struct dkim_signer_cache *c;
	const struct dkim_signer *a, *b, *d;
	struct timespec times[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(dkim_keys_generate(dir, "example.org", err, sizeof(err)), 0);
	c = dkim_signer_cache_new(dir);
	a = dkim_signer_cache_get(c, "example.org", err, sizeof(err));
	assert_non_null(a);
	b = dkim_signer_cache_get(c, "EXAMPLE.org", err, sizeof(err));
	assert_ptr_equal(a, b); /* loaded once */
	dkim_signer_cache_put(c, b);
	/* a new key rewrites the selectors file: the next get loads again, while the old signer
	 * stays usable until its holder puts it back */
	snprintf(path, sizeof(path), "%s/dkim/example.org/selectors", dir);
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
	d = dkim_signer_cache_get(c, "example.org", err, sizeof(err));
	assert_non_null(d);
	assert_ptr_not_equal(a, d);
	struct buf sig;
	buf_init(&sig);
	static const char msg[] = "From: a@example.org\r\n\r\nhi\r\n";
	assert_int_equal(dkim_sign(a, (const uint8_t *)msg, strlen(msg), 1, &sig, err,
				   sizeof(err)),
			 0);
	buf_free(&sig);
	dkim_signer_cache_put(c, a);
	dkim_signer_cache_put(c, d);
	assert_null(dkim_signer_cache_get(c, "missing.example", err, sizeof(err)));
	assert_null(dkim_signer_cache_get(c, "../etc", err, sizeof(err)));
	dkim_signer_cache_free(&c);
	assert_null(c);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spf_record_syntax),
		cmocka_unit_test(test_spf_macros_rfc_examples),
		cmocka_unit_test(test_spf_macro_domain_truncation),
		cmocka_unit_test(test_spf_evaluation),
		cmocka_unit_test(test_spf_spent_budget_is_temperror),
		cmocka_unit_test(test_dmarc_record),
		cmocka_unit_test(test_dmarc_from_domain),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_canon_body_simple),
		cmocka_unit_test(test_authserv_id),
		cmocka_unit_test(test_signer_cache_loads_once_and_reloads_on_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
