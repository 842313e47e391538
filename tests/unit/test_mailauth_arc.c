/* ARC (RFC 8617): the structure rules of §5.2 steps 1-3 on hand-written chains, the arc=
 * result read from an Authentication-Results value, and our sealer's sets verified by our
 * verifier with the RFC 8463 keys (RSA and Ed25519), over one and two hops and after
 * tampering. Interoperability with another implementation is tested in
 * tests/integration/test_mailauth_arc.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/core.h"
#include "mailauth/mailauth.h"

/* ---- structure ---- */

#define AAR(i) "ARC-Authentication-Results: i=" #i "; mx.example; spf=pass\r\n"
#define AMS(i) "ARC-Message-Signature: i=" #i "; a=rsa-sha256; d=x.example; s=s; h=from; bh=AA==; b=AA==\r\n"
#define AS(i, cv) "ARC-Seal: i=" #i "; a=rsa-sha256; cv=" cv "; d=x.example; s=s; b=AA==\r\n"
#define REST "From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n"

static int parse(const char *msg, struct arc_chain *c, const char **reason)
{
	return arc_chain_parse((const uint8_t *)msg, strlen(msg), c, reason);
}

static void test_no_chain(void **state)
{
	(void)state;
	struct arc_chain c;
	const char *why;

	assert_int_equal(parse(REST, &c, &why), 0);
	assert_int_equal(c.count, 0);
}

static void test_well_formed_two_sets_in_any_order(void **state)
{
	(void)state;
	struct arc_chain c;
	const char *why;

	assert_int_equal(parse(AS(2, "pass") AMS(2) AAR(2) AAR(1) AS(1, "none") AMS(1) REST, &c,
			       &why),
			 0);
	assert_int_equal(c.count, 2);
	assert_int_equal(c.newest_cv, ARC_PASS);
	assert_memory_equal(c.aar[0].p, "ARC-Authentication-Results: i=1;", 32);
	assert_memory_equal(c.seal[1].p, "ARC-Seal: i=2;", 14);
}

static void test_aar_instance_with_folding_whitespace(void **state)
{
	(void)state;
	struct arc_chain c;
	const char *why;

	assert_int_equal(parse("ARC-Authentication-Results:\r\n  i = 1 ; mx.example; spf=pass\r\n" AMS(
				       1) AS(1, "none") REST,
			       &c, &why),
			 0);
	assert_int_equal(c.count, 1);
}

static void expect_broken(const char *msg, const char *reason_part)
{
	struct arc_chain c;
	const char *why = NULL;

	assert_int_equal(parse(msg, &c, &why), -1);
	assert_non_null(why);
	if (strstr(why, reason_part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", why, reason_part);
}

static void test_missing_field(void **state)
{
	(void)state;
	expect_broken(AAR(1) AMS(1) REST, "incomplete");
	expect_broken(AAR(1) AS(1, "none") REST, "incomplete");
	expect_broken(AMS(1) AS(1, "none") REST, "incomplete");
}

static void test_gap_and_repetition(void **state)
{
	(void)state;
	expect_broken(AAR(1) AMS(1) AS(1, "none") AAR(3) AMS(3) AS(3, "pass") REST, "gap");
	expect_broken(AAR(1) AMS(1) AMS(1) AS(1, "none") REST, "same instance");
	expect_broken(AAR(1) AMS(1) AS(1, "none") AS(1, "none") REST, "same instance");
}

static void test_cv_rules(void **state)
{
	(void)state;
	expect_broken(AAR(1) AMS(1) AS(1, "pass") REST, "cv=none");
	expect_broken(AAR(1) AMS(1) AS(1, "none") AAR(2) AMS(2) AS(2, "none") REST, "cv=pass");
	expect_broken(AAR(1) AMS(1) AS(1, "bogus") AAR(2) AMS(2) AS(2, "pass") REST, "cv=none");

	struct arc_chain c;
	const char *why;
	assert_int_equal(parse(AAR(1) AMS(1) AS(1, "none") AAR(2) AMS(2) AS(2, "fail") REST, &c,
			       &why),
			 -1);
	assert_int_equal(c.newest_cv, ARC_FAIL);
	assert_int_equal(c.count, 2);
}

static void test_instances_out_of_range_or_malformed(void **state)
{
	(void)state;
	expect_broken(AAR(51) AMS(51) AS(51, "pass") REST, "more than 50");
	expect_broken(AAR(0) AMS(0) AS(0, "none") REST, "malformed instance");
	expect_broken("ARC-Seal: i=x; a=rsa-sha256; cv=none; d=x.example; s=s; b=AA==\r\n" REST,
		      "malformed instance");
	expect_broken("ARC-Authentication-Results: mx.example; spf=pass\r\n" AMS(1) AS(1, "none") REST,
		      "malformed instance");
	expect_broken("ARC-Seal: i=1; i=1; cv=none; b=AA==\r\n" REST, "malformed instance");
}

static void test_seal_with_h_tag(void **state)
{
	(void)state;
	expect_broken(AAR(1) AMS(1)
		      "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x.example; s=s; h=from; b=AA==\r\n" REST,
		      "h=");
}

static void test_fifty_sets_are_allowed(void **state)
{
	(void)state;
	struct buf m;
	struct arc_chain c;
	const char *why;

	buf_init(&m);
	for (unsigned i = 1; i <= LIMIT_ARC_SETS; i++) {
		buf_printf(&m, "ARC-Authentication-Results: i=%u; mx.example; spf=pass\r\n", i);
		buf_printf(&m, "ARC-Message-Signature: i=%u; a=rsa-sha256; d=x; s=s; h=from; b=A\r\n",
			   i);
		buf_printf(&m, "ARC-Seal: i=%u; a=rsa-sha256; cv=%s; d=x; s=s; b=A\r\n", i,
			   i == 1 ? "none" : "pass");
	}
	buf_append_str(&m, REST);
	assert_int_equal(arc_chain_parse(m.data, m.len, &c, &why), 0);
	assert_int_equal(c.count, LIMIT_ARC_SETS);
	buf_free(&m);
}

/* ---- Authentication-Results ---- */

static bool method(const char *value, const char *name, char *out)
{
	return authres_method_result((const uint8_t *)value, strlen(value), name, out, 16);
}

static void test_method_result(void **state)
{
	(void)state;
	char r[16];

	assert_true(method(" mx.example;\r\n\tspf=pass (ok; fine) smtp.mailfrom=a@b;\r\n\tarc=fail "
			   "(x)",
			   "arc", r));
	assert_string_equal(r, "fail");
	assert_false(method(" mx.example; dmarc=pass header.from=b", "arc", r));
	assert_true(method(" mx.example; dmarc=pass header.from=b", "dmarc", r));
	assert_string_equal(r, "pass");
	assert_true(method(" \"mx;example\" 1; x=\"a;arc=fail\"; ARC = Pass", "arc", r));
	assert_string_equal(r, "Pass");
	assert_false(method(" mx.example; none", "arc", r));
	assert_false(method(" mx.example; arc=", "arc", r));
	assert_false(method("", "arc", r));
	assert_true(method(" mx.example; arc/1=none", "arc", r));
	assert_string_equal(r, "none");
}

/* ---- sealing and verifying ---- */

static const char rfc_ed_secret_b64[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char rfc_ed_record[] =
	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
/* RFC 8463 Appendix A.2's RSA key (1024 bits) */
static const char rfc_rsa_pem[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n"
	"Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n"
	"KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n"
	"AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n"
	"6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n"
	"zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n"
	"6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n"
	"uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n"
	"WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n"
	"WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n"
	"licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n"
	"o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n"
	"uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n"
	"-----END RSA PRIVATE KEY-----\n";
static const char rfc_rsa_record[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

static int key_lookup(const char *name, struct buf *txt_r, void *ctx)
{
	int *calls = ctx;

	(*calls)++;
	if (strcmp(name, "test._domainkey.hop.example") == 0)
		buf_append_str(txt_r, rfc_rsa_record);
	else if (strcmp(name, "brisbane._domainkey.hop.example") == 0)
		buf_append_str(txt_r, rfc_ed_record);
	else
		return 1;
	return 0;
}

static char *ed_pem(void)
{
	struct buf raw;
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;

	buf_init(&raw);
	assert_int_equal(b64_decode(&raw, rfc_ed_secret_b64, strlen(rfc_ed_secret_b64)), 0);
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw.data, raw.len);
	assert_non_null(k);
	assert_int_equal(PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL), 1);
	long n = BIO_get_mem_data(mem, &data);
	char *pem = xstrndup(data, (size_t)n);
	BIO_free(mem);
	EVP_PKEY_free(k);
	buf_free(&raw);
	return pem;
}

static struct dkim_signer *signer(bool ed25519)
{
	struct dkim_signer *s = dkim_signer_new("hop.example");
	char err[256];

	if (ed25519) {
		char *pem = ed_pem();
		assert_int_equal(dkim_signer_add_pem(s, "brisbane", (const uint8_t *)pem,
						     strlen(pem), err, sizeof(err)),
				 0);
		free(pem);
	} else {
		assert_int_equal(dkim_signer_add_pem(s, "test", (const uint8_t *)rfc_rsa_pem,
						     strlen(rfc_rsa_pem), err, sizeof(err)),
				 0);
	}
	return s;
}

#define MESSAGE                                                                                 \
	"From: Joe <joe@origin.example>\r\nTo: list@hop.example\r\nSubject: dinner\r\n"        \
	"Date: Fri, 1 Jan 2027 00:00:00 +0000\r\nMessage-ID: <m1@origin.example>\r\n\r\n"      \
	"Is dinner ready?\r\n"

/* our Authentication-Results on top of msg, then the set arc_seal makes; a new string */
static char *seal_hop(const char *msg, const char *results, bool ed25519, int expect)
{
	struct dkim_signer *s = signer(ed25519);
	struct buf in, out;
	char err[256];

	buf_init(&in);
	buf_init(&out);
	buf_printf(&in, "Authentication-Results: mx.hop.example;\r\n\t%s\r\n%s", results, msg);
	assert_int_equal(arc_seal(s, in.data, in.len, "mx.hop.example", 1700000000, &out, err,
				  sizeof(err)),
			 expect);
	buf_append(&out, in.data, in.len);
	char *res = xstrndup((const char *)out.data, out.len);
	buf_free(&in);
	buf_free(&out);
	dkim_signer_free(&s);
	return res;
}

static struct arc_outcome verify(const char *msg)
{
	struct arc_outcome o;
	int calls = 0;

	arc_verify((const uint8_t *)msg, strlen(msg), key_lookup, &calls, 1700000000, &o);
	return o;
}

static void test_seal_then_verify_rsa_and_ed25519(void **state)
{
	(void)state;
	for (int ed = 0; ed <= 1; ed++) {
		char *m = seal_hop(MESSAGE, "spf=pass smtp.mailfrom=joe@origin.example", ed, 1);
		assert_non_null(strstr(m, "ARC-Seal: i=1;"));
		assert_non_null(strstr(m, "cv=none;"));
		assert_non_null(strstr(m, ed ? "a=ed25519-sha256" : "a=rsa-sha256"));
		struct arc_outcome o = verify(m);
		if (o.result != ARC_PASS)
			fail_msg("ed=%d: %s", ed, o.reason);
		assert_int_equal(o.sets, 1);
		assert_int_equal(o.oldest_pass, 0);
		assert_string_equal(o.domain, "hop.example");
		free(m);
	}
}

static void test_second_hop_continues_with_cv_pass(void **state)
{
	(void)state;
	char *one = seal_hop(MESSAGE, "spf=pass smtp.mailfrom=joe@origin.example", false, 1);
	char *two = seal_hop(one, "spf=fail smtp.mailfrom=joe@origin.example; arc=pass", true, 1);
	assert_non_null(strstr(two, "ARC-Seal: i=2;"));
	assert_non_null(strstr(two, "cv=pass;"));
	struct arc_outcome o = verify(two);
	if (o.result != ARC_PASS)
		fail_msg("%s", o.reason);
	assert_int_equal(o.sets, 2);

	/* an earlier set changed: its seal no longer verifies, nor does the newest one */
	char *p = strstr(two, "i=1; mx.hop.example;");
	assert_non_null(p);
	p[5] = 'M';
	o = verify(two);
	assert_int_equal(o.result, ARC_FAIL);
	assert_non_null(strstr(o.reason, "ARC-Seal"));
	free(one);
	free(two);
}

static void test_tampered_body_and_header(void **state)
{
	(void)state;
	char *m = seal_hop(MESSAGE, "spf=pass smtp.mailfrom=joe@origin.example", false, 1);
	char *body = strstr(m, "dinner ready");
	body[0] = 'D';
	struct arc_outcome o = verify(m);
	assert_int_equal(o.result, ARC_FAIL);
	assert_non_null(strstr(o.reason, "body hash"));
	body[0] = 'd';
	char *subj = strstr(m, "Subject: dinner");
	subj[9] = 'D';
	o = verify(m);
	assert_int_equal(o.result, ARC_FAIL);
	assert_non_null(strstr(o.reason, "does not verify"));
	free(m);
}

static void test_unknown_key_fails(void **state)
{
	(void)state;
	char *m = seal_hop(MESSAGE, "spf=pass", false, 1);
	char *d = strstr(m, "d=hop.example");
	while (d != NULL) { /* every signature now names a domain without keys */
		memcpy(d, "d=hoq", 5);
		d = strstr(d, "d=hop.example");
	}
	struct arc_outcome o = verify(m);
	assert_int_equal(o.result, ARC_FAIL);
	assert_non_null(strstr(o.reason, "no key record"));
	free(m);
}

static void test_failed_chain_sealed_alone_and_not_continued(void **state)
{
	(void)state;
	char *one = seal_hop(MESSAGE, "spf=pass", false, 1);
	char *bad = strstr(one, "Is dinner");
	bad[0] = 'i'; /* the chain arrives broken and our check said so */
	char *two = seal_hop(one, "spf=pass; arc=fail (body hash mismatch)", false, 1);
	assert_non_null(strstr(two, "ARC-Seal: i=2;"));
	assert_non_null(strstr(two, "cv=fail;"));
	struct arc_outcome o = verify(two);
	assert_int_equal(o.result, ARC_FAIL);
	/* §5.1 step 2: a chain whose newest seal says cv=fail gets no further set */
	char *three = seal_hop(two, "spf=pass; arc=fail", false, 0);
	assert_null(strstr(three, "i=3"));
	free(one);
	free(two);
	free(three);
}

static void test_claimed_pass_without_chain_is_sealed_as_fail(void **state)
{
	(void)state;
	char *m = seal_hop(MESSAGE, "spf=pass; arc=pass", false, 1);
	assert_non_null(strstr(m, "cv=fail;"));
	free(m);
}

static void test_fifty_hops_then_no_more(void **state)
{
	(void)state;
	char *m = seal_hop(MESSAGE, "spf=pass", false, 1);

	for (unsigned i = 2; i <= LIMIT_ARC_SETS; i++) {
		char *next = seal_hop(m, "spf=pass; arc=pass", false, 1);
		free(m);
		m = next;
	}
	struct arc_outcome o = verify(m);
	if (o.result != ARC_PASS)
		fail_msg("%s", o.reason);
	assert_int_equal(o.sets, LIMIT_ARC_SETS);
	assert_int_equal(o.oldest_pass, 0);
	char *more = seal_hop(m, "spf=pass; arc=pass", false, 0);
	free(more);
	free(m);
}

static void test_no_results_of_ours_no_seal(void **state)
{
	(void)state;
	struct dkim_signer *s = signer(false);
	struct buf out;
	char err[256];
	static const char msg[] = "Authentication-Results: other.example; spf=pass\r\n" MESSAGE;

	buf_init(&out);
	assert_false(arc_has_own_results((const uint8_t *)msg, strlen(msg), "mx.hop.example"));
	assert_int_equal(arc_seal(s, (const uint8_t *)msg, strlen(msg), "mx.hop.example",
				  1700000000, &out, err, sizeof(err)),
			 0);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	dkim_signer_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_chain),
		cmocka_unit_test(test_well_formed_two_sets_in_any_order),
		cmocka_unit_test(test_aar_instance_with_folding_whitespace),
		cmocka_unit_test(test_missing_field),
		cmocka_unit_test(test_gap_and_repetition),
		cmocka_unit_test(test_cv_rules),
		cmocka_unit_test(test_instances_out_of_range_or_malformed),
		cmocka_unit_test(test_seal_with_h_tag),
		cmocka_unit_test(test_fifty_sets_are_allowed),
		cmocka_unit_test(test_method_result),
		cmocka_unit_test(test_seal_then_verify_rsa_and_ed25519),
		cmocka_unit_test(test_second_hop_continues_with_cv_pass),
		cmocka_unit_test(test_tampered_body_and_header),
		cmocka_unit_test(test_unknown_key_fails),
		cmocka_unit_test(test_failed_chain_sealed_alone_and_not_continued),
		cmocka_unit_test(test_claimed_pass_without_chain_is_sealed_as_fail),
		cmocka_unit_test(test_fifty_hops_then_no_more),
		cmocka_unit_test(test_no_results_of_ours_no_seal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
