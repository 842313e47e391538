/* DKIM: relaxed canonicalisation against RFC 6376 §3.4.5 written out by hand, the RFC 8463
 * Appendix A message and keys (verified by us and recomputed here with OpenSSL directly), our
 * own signatures checked by our verifier and by a header-data reconstruction in this file,
 * tampering, key files and DNS records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/core.h"
#include "mailauth/mailauth.h"

/* ---- RFC 8463 Appendix A ---- */

static const char rfc_ed_secret_b64[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

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

/* The TXT records of A.2, their strings joined. */
static const char rfc_ed_record[] =
	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc_rsa_record[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

#define RFC_ED_SIG                                                                              \
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"                         \
	" d=football.example.com; i=@football.example.com;\r\n"                                 \
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"                               \
	" subject : date : message-id : from : subject : date;\r\n"                             \
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"                                 \
	" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"                       \
	" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
#define RFC_RSA_SIG                                                                             \
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"                             \
	" d=football.example.com; i=@football.example.com;\r\n"                                 \
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"                         \
	" date : message-id : from : subject : date;\r\n"                                       \
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"                                 \
	" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"                       \
	" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"                       \
	" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
#define RFC_MESSAGE                                                                             \
	"From: Joe SixPack <joe@football.example.com>\r\n"                                      \
	"To: Suzie Q <suzie@shopping.example.net>\r\n"                                          \
	"Subject: Is dinner ready?\r\n"                                                         \
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"                                       \
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"                      \
	"\r\n"                                                                                  \
	"Hi.\r\n"                                                                               \
	"\r\n"                                                                                  \
	"We lost the game.  Are you hungry yet?\r\n"                                            \
	"\r\n"                                                                                  \
	"Joe.\r\n"                                                                              \
	"\r\n"

/* The canonical header data of A.3 written out by hand (RFC 6376 §3.4.2, §3.7): the five
 * present fields, the three absent second instances contributing nothing, then the signature
 * field with b= emptied and no CRLF. */
#define RFC_HEADERS_CANON                                                                       \
	"from:Joe SixPack <joe@football.example.com>\r\n"                                       \
	"to:Suzie Q <suzie@shopping.example.net>\r\n"                                           \
	"subject:Is dinner ready?\r\n"                                                          \
	"date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"                                        \
	"message-id:<20030712040037.46341.5F8J@football.example.com>\r\n"
static const char rfc_ed_data[] =
	RFC_HEADERS_CANON
	"dkim-signature:v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; "
	"i=@football.example.com; q=dns/txt; s=brisbane; t=1528637909; h=from : to : subject : "
	"date : message-id : from : subject : date; "
	"bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=";
static const char rfc_rsa_data[] =
	RFC_HEADERS_CANON
	"dkim-signature:v=1; a=rsa-sha256; c=relaxed/relaxed; d=football.example.com; "
	"i=@football.example.com; q=dns/txt; s=test; t=1528637909; h=from : to : subject : "
	"date : message-id : from : subject : date; "
	"bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=";
/* The relaxed canonical body (§3.4.4): double space reduced, trailing empty line dropped. */
static const char rfc_body_canon[] = "Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n";

/* ---- helpers ---- */

struct record {
	const char *name;
	const char *txt;
};

struct lookup_table {
	struct record rec[4];
	size_t count;
	int calls;
	int answer; /* forced answer when non-zero */
};

static int table_lookup(const char *name, struct buf *txt_r, void *ctx)
{
	struct lookup_table *t = ctx;

	t->calls++;
	if (t->answer != 0)
		return t->answer;
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->rec[i].name, name) == 0) {
			buf_append_str(txt_r, t->rec[i].txt);
			return 0;
		}
	return 1;
}

static struct lookup_table rfc_table(void)
{
	struct lookup_table t = { .count = 2 };

	t.rec[0] = (struct record){ "brisbane._domainkey.football.example.com", rfc_ed_record };
	t.rec[1] = (struct record){ "test._domainkey.football.example.com", rfc_rsa_record };
	return t;
}

static int verify_all(const char *msg, size_t len, struct lookup_table *t,
		      struct dkim_result *res, size_t max)
{
	return dkim_verify((const uint8_t *)msg, len, table_lookup, t, 1528637909, res, max);
}

static void b64(struct buf *out, const uint8_t *p, size_t n)
{
	buf_reset(out);
	b64_encode(out, p, n);
}

static EVP_PKEY *rfc_ed_key(void)
{
	struct buf raw;
	EVP_PKEY *k;

	buf_init(&raw);
	assert_int_equal(b64_decode(&raw, rfc_ed_secret_b64, strlen(rfc_ed_secret_b64)), 0);
	assert_int_equal(raw.len, 32);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw.data, raw.len);
	assert_non_null(k);
	buf_free(&raw);
	return k;
}

static char *pem_of(EVP_PKEY *k)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;

	assert_int_equal(PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL), 1);
	long n = BIO_get_mem_data(mem, &data);
	char *pem = xstrndup(data, (size_t)n);
	BIO_free(mem);
	return pem;
}

/* ---- canonicalisation ---- */

static void test_canon_rfc6376_example(void **state)
{
	(void)state;
	/* RFC 6376 §3.4.5 Example 1, input and expected output as the text gives them */
	static const char a[] = "A: X";
	static const char b[] = "B : Y\t\r\n\tZ  ";
	static const char body[] = " C \r\nD \t E\r\n\r\n\r\n";
	struct buf out;

	buf_init(&out);
	dkim_canon_header_relaxed((const uint8_t *)a, strlen(a), &out);
	dkim_canon_header_relaxed((const uint8_t *)b, strlen(b), &out);
	assert_string_equal(buf_cstr(&out), "a:X\r\nb:Y Z\r\n");
	buf_reset(&out);
	dkim_canon_body_relaxed((const uint8_t *)body, strlen(body), &out);
	assert_string_equal(buf_cstr(&out), " C\r\nD E\r\n");
	buf_free(&out);
}

static void test_canon_body_edges(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },                        /* §3.4.4: empty body hashes as null input */
		{ "\r\n\r\n \t\r\n", "" },         /* only empty (after WSP removal) lines */
		{ "abc", "abc\r\n" },              /* missing final CRLF is added */
		{ "a\tb  c \r\n", "a b c\r\n" },
		{ "x\r\n\r\ny\r\n\r\n", "x\r\n\r\ny\r\n" }, /* inner empty lines stay */
		{ "x\ny\n", "x\r\ny\r\n" },         /* bare LF read as a line end */
	};
	struct buf out;

	buf_init(&out);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		buf_reset(&out);
		dkim_canon_body_relaxed((const uint8_t *)cases[i].in, strlen(cases[i].in), &out);
		assert_string_equal(buf_cstr(&out), cases[i].out);
	}
	buf_reset(&out);
	dkim_canon_header_relaxed((const uint8_t *)"SUBJect: AbC", 12, &out);
	assert_string_equal(buf_cstr(&out), "subject:AbC\r\n");
	buf_free(&out);
}

static void test_canon_rfc8463_body(void **state)
{
	(void)state;
	static const char msg[] = RFC_MESSAGE;
	const char *body = strstr(msg, "\r\n\r\n") + 4;
	struct buf out;
	uint8_t hash[32];
	struct buf enc;

	buf_init(&out);
	buf_init(&enc);
	dkim_canon_body_relaxed((const uint8_t *)body, strlen(body), &out);
	assert_string_equal(buf_cstr(&out), rfc_body_canon);
	/* bh= of A.3, from the hand-written canonical body and OpenSSL's SHA-256 */
	unsigned int n = 0;
	EVP_Digest(rfc_body_canon, strlen(rfc_body_canon), hash, &n, EVP_sha256(), NULL);
	b64(&enc, hash, n);
	assert_string_equal(buf_cstr(&enc), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
	buf_free(&out);
	buf_free(&enc);
}

/* ---- RFC 8463 Appendix A ---- */

static void test_rfc8463_independent_recompute(void **state)
{
	(void)state;
	EVP_PKEY *ed = rfc_ed_key();
	BIO *mem = BIO_new_mem_buf(rfc_rsa_pem, (int)strlen(rfc_rsa_pem));
	EVP_PKEY *rsa = PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t digest[32], sig[256];
	unsigned int dlen = 0;
	size_t slen = sizeof(sig);
	struct buf enc;

	assert_non_null(rsa);
	buf_init(&enc);
	/* ed25519-sha256: PureEdDSA over SHA-256(header data) (RFC 8463 §3) */
	EVP_Digest(rfc_ed_data, strlen(rfc_ed_data), digest, &dlen, EVP_sha256(), NULL);
	assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, ed), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &slen, digest, dlen), 1);
	b64(&enc, sig, slen);
	assert_string_equal(buf_cstr(&enc), "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus"
					    "Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");
	/* rsa-sha256: PKCS#1 v1.5 is deterministic, so the RFC's b= must come out again */
	EVP_MD_CTX_reset(md);
	slen = sizeof(sig);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, rsa), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &slen, (const uint8_t *)rfc_rsa_data,
					strlen(rfc_rsa_data)),
			 1);
	b64(&enc, sig, slen);
	assert_string_equal(buf_cstr(&enc),
			    "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3"
			    "DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz"
			    "dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
	BIO_free(mem);
	buf_free(&enc);
}

static void test_rfc8463_verify(void **state)
{
	(void)state;
	static const char msg[] = RFC_ED_SIG RFC_RSA_SIG RFC_MESSAGE;
	struct lookup_table t = rfc_table();
	struct dkim_result res[4];

	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_PASS);
	assert_string_equal(res[0].algorithm, "ed25519-sha256");
	assert_string_equal(res[0].selector, "brisbane");
	assert_string_equal(res[0].domain, "football.example.com");
	assert_int_equal(res[1].status, DKIM_PASS);
	assert_string_equal(res[1].algorithm, "rsa-sha256");
	assert_int_equal(t.calls, 2);
}

static void test_rfc8463_tampered(void **state)
{
	(void)state;
	struct lookup_table t = rfc_table();
	struct dkim_result res[4];
	char *msg = xstrdup(RFC_ED_SIG RFC_RSA_SIG RFC_MESSAGE);
	char *p;

	/* one letter of the body */
	p = strstr(msg, "hungry");
	p[0] = 'H';
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_FAIL);
	assert_string_equal(res[0].reason, "body hash mismatch");
	assert_int_equal(res[1].status, DKIM_FAIL);
	p[0] = 'h';
	/* one letter of a signed header */
	p = strstr(msg, "Suzie Q");
	p[0] = 'T';
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_FAIL);
	assert_string_equal(res[0].reason, "signature mismatch");
	assert_int_equal(res[1].status, DKIM_FAIL);
	p[0] = 'S';
	/* one letter of the signature itself */
	p = strstr(msg, "b=/gCr");
	p[3] = 'h';
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_FAIL);
	assert_int_equal(res[1].status, DKIM_PASS);
	free(msg);
}

/* ---- our signer ---- */

struct tmpdir {
	char path[64];
};

static void rm_tree(const char *path)
{
	char *cmd = xasprintf("rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static const char test_message[] =
	"Received: from a by b; Fri, 1 Jan 2027 00:00:00 +0000\r\n"
	"From: Alice Example <alice@example.com>\r\n"
	"To: bob@example.net,\r\n"
	"\tcarol@example.net\r\n"
	"Cc: dave@example.org\r\n"
	"Cc: erin@example.org\r\n"
	"Subject:   Lunch   plans \r\n"
	"Date: Fri, 1 Jan 2027 00:00:00 +0000\r\n"
	"Message-ID: <1@example.com>\r\n"
	"X-Mailer: test\r\n"
	"\r\n"
	"Hello  Bob,\r\n"
	"\r\n"
	"see you at noon.  \r\n"
	"\r\n"
	"\r\n";

/* What our signer must have fed its hash for test_message, by hand (cc bottom-up). */
static const char test_headers_canon[] =
	"from:Alice Example <alice@example.com>\r\n"
	"to:bob@example.net, carol@example.net\r\n"
	"cc:erin@example.org\r\n"
	"cc:dave@example.org\r\n"
	"subject:Lunch plans\r\n"
	"date:Fri, 1 Jan 2027 00:00:00 +0000\r\n"
	"message-id:<1@example.com>\r\n";

/* Test-side relaxed canonicalisation of a DKIM-Signature field with its b= value removed,
 * written independently of the code under test: unfold, squeeze WSP, lower-case the name. */
static void hand_canon_sig(const char *field, struct buf *out)
{
	const char *b = strstr(field, " b=");
	const char *v = strchr(field, ':') + 1;
	bool sp = false, started = false;

	assert_non_null(b);
	buf_append_str(out, "dkim-signature:");
	for (const char *p = v; p < b + 3; p++) {
		if (*p == '\r' || *p == '\n' || *p == ' ' || *p == '\t') {
			sp = started;
			continue;
		}
		if (sp)
			buf_append_byte(out, ' ');
		sp = false;
		started = true;
		buf_append_byte(out, (uint8_t)*p);
	}
}

/* The n-th DKIM-Signature field of sigs (a copy), and its b= value with folding removed. */
static char *nth_field(const char *sigs, int n, struct buf *b_value)
{
	const char *p = sigs;
	for (int i = 0; i < n; i++)
		p = strstr(p + 1, "DKIM-Signature:");
	const char *end = strstr(p + 1, "DKIM-Signature:");
	size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
	char *field = xstrndup(p, len);
	const char *b = strstr(field, " b=") + 3;
	for (; *b != '\0'; b++)
		if (*b != '\r' && *b != '\n' && *b != ' ')
			buf_append_byte(b_value, (uint8_t)*b);
	return field;
}

static void records_to_table(const char *records, struct lookup_table *t, char **owned)
{
	/* "<name>. IN TXT "a" "b"" per line -> name without the dot, strings joined */
	const char *line = records;
	t->count = 0;
	while (*line != '\0') {
		const char *nl = strchr(line, '\n');
		const char *dot = strstr(line, ". IN TXT ");
		assert_non_null(nl);
		assert_non_null(dot);
		struct buf txt;
		buf_init(&txt);
		bool in = false;
		for (const char *p = dot + 9; p < nl; p++) {
			if (*p == '"')
				in = !in;
			else if (in)
				buf_append_byte(&txt, (uint8_t)*p);
		}
		owned[2 * t->count] = xstrndup(line, (size_t)(dot - line));
		owned[2 * t->count + 1] = xstrdup(buf_cstr(&txt));
		t->rec[t->count] = (struct record){ owned[2 * t->count], owned[2 * t->count + 1] };
		t->count++;
		buf_free(&txt);
		line = nl + 1;
	}
}

static void test_sign_generated_keys(void **state)
{
	(void)state;
	struct tmpdir d;
	char err[256];
	struct buf sigs, signed_msg, records, data, bval, sig;
	struct lookup_table t = { 0 };
	char *owned[8] = { 0 };
	struct dkim_result res[4];

	snprintf(d.path, sizeof(d.path), "/tmp/roost-dkim-XXXXXX");
	assert_non_null(mkdtemp(d.path));
	assert_int_equal(dkim_keys_generate(d.path, "example.com", err, sizeof(err)), 0);
	struct dkim_signer *s = dkim_signer_load(d.path, "example.com", err, sizeof(err));
	assert_non_null(s);
	buf_init(&sigs);
	buf_init(&signed_msg);
	buf_init(&records);
	buf_init(&data);
	buf_init(&bval);
	buf_init(&sig);
	assert_int_equal(dkim_sign(s, (const uint8_t *)test_message, strlen(test_message),
				   1800000000, &sigs, err, sizeof(err)),
			 0);
	const char *text = buf_cstr(&sigs);

	/* shape: two fields, CRLF lines of at most 78 columns, the tags we promise */
	assert_non_null(strstr(text, "a=ed25519-sha256;"));
	assert_non_null(strstr(text, "a=rsa-sha256;"));
	for (const char *line = text; *line != '\0';) {
		const char *crlf = strstr(line, "\r\n");
		assert_non_null(crlf);
		assert_true(crlf - line <= 78);
		line = crlf + 2;
	}
	assert_true(sigs.len >= 2 && memcmp(sigs.data + sigs.len - 2, "\r\n", 2) == 0);
	assert_non_null(strstr(text, "c=relaxed/relaxed;"));
	assert_non_null(strstr(text, "d=example.com;"));
	assert_non_null(strstr(text, "t=1800000000;"));
	assert_non_null(strstr(text, "v=1;"));

	/* our verifier, with the records dkim_dns_records prints */
	assert_int_equal(dkim_dns_records(d.path, "example.com", &records, err, sizeof(err)), 0);
	records_to_table(buf_cstr(&records), &t, owned);
	assert_int_equal(t.count, 2);
	buf_append(&signed_msg, sigs.data, sigs.len);
	buf_append_str(&signed_msg, test_message);
	assert_int_equal(dkim_verify(signed_msg.data, signed_msg.len, table_lookup, &t, 1800000000,
				     res, 4),
			 2);
	assert_int_equal(res[0].status, DKIM_PASS);
	assert_int_equal(res[1].status, DKIM_PASS);

	/* independent check of each signature: header data rebuilt here, key from the key file,
	 * OpenSSL called directly */
	for (int i = 0; i < 2; i++) {
		buf_reset(&data);
		buf_reset(&bval);
		buf_reset(&sig);
		char *field = nth_field(text, i, &bval);
		char *h = strstr(field, "h=");
		bool ed = strstr(field, "a=ed25519-sha256") != NULL;
		char *hnorm = xstrdup(h);
		size_t k = 0;
		for (char *p = hnorm; *p != ';'; p++)
			if (*p != '\r' && *p != '\n' && *p != ' ')
				hnorm[k++] = *p;
		hnorm[k] = '\0';
		assert_string_equal(hnorm, "h=from:to:cc:cc:subject:date:message-id:from");
		free(hnorm);
		buf_append_str(&data, test_headers_canon);
		hand_canon_sig(field, &data);
		assert_int_equal(b64_decode(&sig, (const char *)bval.data, bval.len), 0);

		char *path = xasprintf("%s/dkim/example.com/%s", d.path, ed ? "ed25519.key" : "rsa.key");
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		assert_non_null(key);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		free(path);

		EVP_MD_CTX *md = EVP_MD_CTX_new();
		const uint8_t *in = data.data;
		size_t in_len = data.len;
		uint8_t digest[32];
		unsigned int dlen;
		if (ed) {
			EVP_Digest(data.data, data.len, digest, &dlen, EVP_sha256(), NULL);
			in = digest;
			in_len = dlen;
		}
		assert_int_equal(EVP_DigestVerifyInit(md, NULL, ed ? NULL : EVP_sha256(), NULL, key),
				 1);
		assert_int_equal(EVP_DigestVerify(md, sig.data, sig.len, in, in_len), 1);
		if (!ed)
			assert_int_equal(EVP_PKEY_get_bits(key), 2048);
		EVP_MD_CTX_free(md);
		EVP_PKEY_free(key);
		free(field);
	}

	/* the body hash is the hand-computed one */
	{
		static const char body[] = "Hello Bob,\r\n\r\nsee you at noon.\r\n";
		uint8_t hash[32];
		unsigned int n;
		struct buf enc;
		buf_init(&enc);
		EVP_Digest(body, strlen(body), hash, &n, EVP_sha256(), NULL);
		buf_append_str(&enc, "bh=");
		b64_encode(&enc, hash, n);
		char *flat = xstrdup(text);
		size_t k = 0;
		for (char *p = flat; *p != '\0'; p++)
			if (*p != '\r' && *p != '\n' && *p != ' ')
				flat[k++] = *p;
		flat[k] = '\0';
		assert_non_null(strstr(flat, buf_cstr(&enc)));
		free(flat);
		buf_free(&enc);
	}

	for (size_t i = 0; i < ARRAY_LEN(owned); i++)
		free(owned[i]);
	dkim_signer_free(&s);
	assert_null(s);
	buf_free(&sigs);
	buf_free(&signed_msg);
	buf_free(&records);
	buf_free(&data);
	buf_free(&bval);
	buf_free(&sig);
	rm_tree(d.path);
}

/* Signs msg with the RFC 8463 keys under the RFC's selectors; returns signatures + msg. */
static char *sign_with_rfc_keys(const char *msg)
{
	char err[256];
	struct dkim_signer *s = dkim_signer_new("Football.Example.COM");
	EVP_PKEY *ed = rfc_ed_key();
	char *pem = pem_of(ed);
	struct buf out;

	assert_int_equal(dkim_signer_add_pem(s, "brisbane", (const uint8_t *)pem, strlen(pem), err,
					     sizeof(err)),
			 0);
	assert_int_equal(dkim_signer_add_pem(s, "test", (const uint8_t *)rfc_rsa_pem,
					     strlen(rfc_rsa_pem), err, sizeof(err)),
			 0);
	buf_init(&out);
	assert_int_equal(dkim_sign(s, (const uint8_t *)msg, strlen(msg), 1528637909, &out, err,
				   sizeof(err)),
			 0);
	buf_append_str(&out, msg);
	char *res = xstrdup(buf_cstr(&out));
	buf_free(&out);
	free(pem);
	EVP_PKEY_free(ed);
	dkim_signer_free(&s);
	return res;
}

static void expect(const char *msg, enum dkim_status st0, enum dkim_status st1)
{
	struct lookup_table t = rfc_table();
	struct dkim_result res[4];

	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, st0);
	assert_int_equal(res[1].status, st1);
}

static char *replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	assert_non_null(p);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static void test_sign_rfc_keys_and_tamper(void **state)
{
	(void)state;
	char *msg = sign_with_rfc_keys(test_message);
	char *m;

	/* verified against the public keys as the RFC publishes them */
	expect(msg, DKIM_PASS, DKIM_PASS);
	/* relaxed: whitespace changes in header and body survive */
	m = replace(msg, "Subject:   Lunch   plans ", "subject: Lunch\tplans");
	expect(m, DKIM_PASS, DKIM_PASS);
	free(m);
	m = replace(msg, "Hello  Bob,", "Hello Bob,   ");
	expect(m, DKIM_PASS, DKIM_PASS);
	free(m);
	/* unsigned fields may change */
	m = replace(msg, "X-Mailer: test", "X-Mailer: other");
	expect(m, DKIM_PASS, DKIM_PASS);
	free(m);
	/* changed body */
	m = replace(msg, "noon", "nine");
	expect(m, DKIM_FAIL, DKIM_FAIL);
	free(m);
	/* changed From */
	m = replace(msg, "alice@example.com>", "mallory@example.com>");
	expect(m, DKIM_FAIL, DKIM_FAIL);
	free(m);
	/* a second From added above: caught by the oversigned "from" */
	m = replace(msg, "Received:", "From: mallory@evil.test\r\nReceived:");
	expect(m, DKIM_FAIL, DKIM_FAIL);
	free(m);
	/* reordered instances of a signed field */
	m = replace(msg, "Cc: dave@example.org\r\nCc: erin@example.org",
		    "Cc: erin@example.org\r\nCc: dave@example.org");
	expect(m, DKIM_FAIL, DKIM_FAIL);
	free(m);
	/* a signed field removed */
	m = replace(msg, "Message-ID: <1@example.com>\r\n", "");
	expect(m, DKIM_FAIL, DKIM_FAIL);
	free(m);
	free(msg);
}

static void test_verify_errors(void **state)
{
	(void)state;
	char *msg = sign_with_rfc_keys(test_message);
	struct lookup_table t = rfc_table();
	struct dkim_result res[4];
	char *m;

	t.answer = -1;
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_TEMPERROR);
	t.answer = 1;
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_PERMERROR);
	assert_string_equal(res[0].reason, "no key record");
	/* revoked key */
	t = rfc_table();
	t.rec[0].txt = "v=DKIM1; k=ed25519; p=";
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_PERMERROR);
	assert_string_equal(res[0].reason, "key revoked");
	assert_int_equal(res[1].status, DKIM_PASS);
	/* a key of the other type under the selector */
	t.rec[0].txt = rfc_rsa_record;
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 4), 2);
	assert_int_equal(res[0].status, DKIM_PERMERROR);
	/* rsa-sha1 is refused (RFC 8301) */
	t = rfc_table();
	m = replace(msg, "a=rsa-sha256", "a=rsa-sha1");
	assert_int_equal(verify_all(m, strlen(m), &t, res, 4), 2);
	assert_int_equal(res[1].status, DKIM_PERMERROR);
	assert_string_equal(res[1].reason, "unsupported algorithm");
	free(m);
	/* duplicate tag */
	m = replace(msg, "a=rsa-sha256;", "a=rsa-sha256; a=rsa-sha256;");
	assert_int_equal(verify_all(m, strlen(m), &t, res, 4), 2);
	assert_int_equal(res[1].status, DKIM_PERMERROR);
	free(m);
	/* expired x= */
	m = replace(msg, "a=rsa-sha256;", "a=rsa-sha256; x=1528637900;");
	assert_int_equal(verify_all(m, strlen(m), &t, res, 4), 2);
	assert_int_equal(res[1].status, DKIM_FAIL);
	assert_string_equal(res[1].reason, "signature expired");
	free(m);
	/* unsigned message */
	assert_int_equal(verify_all(test_message, strlen(test_message), &t, res, 4), 0);
	/* at most max results */
	assert_int_equal(verify_all(msg, strlen(msg), &t, res, 1), 1);
	free(msg);
}

static void test_sign_needs_from(void **state)
{
	(void)state;
	static const char msg[] = "To: a@b.example\r\n\r\nx\r\n";
	char err[256];
	struct dkim_signer *s = dkim_signer_new("example.com");
	struct buf out;

	buf_init(&out);
	assert_int_equal(dkim_sign(s, (const uint8_t *)msg, strlen(msg), 1, &out, err, sizeof(err)),
			 -1); /* no key */
	assert_int_equal(dkim_signer_add_pem(s, "x", (const uint8_t *)rfc_rsa_pem,
					     strlen(rfc_rsa_pem), err, sizeof(err)),
			 0);
	assert_int_equal(dkim_sign(s, (const uint8_t *)msg, strlen(msg), 1, &out, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "the message has no From field");
	assert_int_equal(out.len, 0);
	assert_int_equal(dkim_signer_add_pem(s, "bad/sel", (const uint8_t *)rfc_rsa_pem,
					     strlen(rfc_rsa_pem), err, sizeof(err)),
			 -1);
	assert_int_equal(dkim_signer_add_pem(s, "y", (const uint8_t *)"junk", 4, err, sizeof(err)),
			 -1);
	buf_free(&out);
	dkim_signer_free(&s);
	dkim_signer_free(&s);
}

static void test_keys_idempotent_and_paths(void **state)
{
	(void)state;
	struct tmpdir d;
	char err[256];
	struct buf r1, r2;

	snprintf(d.path, sizeof(d.path), "/tmp/roost-dkim-XXXXXX");
	assert_non_null(mkdtemp(d.path));
	buf_init(&r1);
	buf_init(&r2);
	assert_int_equal(dkim_keys_generate(d.path, "Example.ORG", err, sizeof(err)), 0);
	assert_int_equal(dkim_dns_records(d.path, "example.org", &r1, err, sizeof(err)), 0);
	assert_int_equal(dkim_keys_generate(d.path, "example.org", err, sizeof(err)), 0);
	assert_int_equal(dkim_dns_records(d.path, "example.org", &r2, err, sizeof(err)), 0);
	assert_string_equal(buf_cstr(&r1), buf_cstr(&r2)); /* keys kept */

	/* records: selectors from the scheme, strings of at most 255 octets, p= sizes */
	const char *txt = buf_cstr(&r1);
	assert_true(strncmp(txt, "e2", 2) == 0);
	assert_non_null(strstr(txt, "._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p="));
	assert_non_null(strstr(txt, "._domainkey.example.org. IN TXT \"v=DKIM1; k=rsa; p=MIIB"));
	const char *p = strstr(txt, "k=ed25519; p=") + 13;
	assert_int_equal(strchr(p, '"') - p, 44);
	for (const char *q = strchr(txt, '"'); q != NULL;) {
		const char *close = strchr(q + 1, '"');
		assert_non_null(close);
		assert_true(close - q - 1 <= 255);
		q = strchr(close + 1, '"');
	}

	/* a lost key is regenerated, the other kept */
	char *path = xasprintf("%s/dkim/example.org/ed25519.key", d.path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(dkim_keys_generate(d.path, "example.org", err, sizeof(err)), 0);
	buf_reset(&r2);
	assert_int_equal(dkim_dns_records(d.path, "example.org", &r2, err, sizeof(err)), 0);
	assert_string_not_equal(buf_cstr(&r1), buf_cstr(&r2));
	assert_non_null(strstr(buf_cstr(&r2), strstr(txt, "k=rsa")));
	free(path);

	/* names that would leave the folder */
	assert_int_equal(dkim_keys_generate(d.path, "../etc", err, sizeof(err)), -1);
	assert_int_equal(dkim_keys_generate(d.path, "a/b", err, sizeof(err)), -1);
	assert_int_equal(dkim_keys_generate(d.path, "", err, sizeof(err)), -1);
	assert_null(dkim_signer_load(d.path, "missing.example", err, sizeof(err)));
	buf_free(&r1);
	buf_free(&r2);
	rm_tree(d.path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canon_rfc6376_example),
		cmocka_unit_test(test_canon_body_edges),
		cmocka_unit_test(test_canon_rfc8463_body),
		cmocka_unit_test(test_rfc8463_independent_recompute),
		cmocka_unit_test(test_rfc8463_verify),
		cmocka_unit_test(test_rfc8463_tampered),
		cmocka_unit_test(test_sign_generated_keys),
		cmocka_unit_test(test_sign_rfc_keys_and_tamper),
		cmocka_unit_test(test_verify_errors),
		cmocka_unit_test(test_sign_needs_from),
		cmocka_unit_test(test_keys_idempotent_and_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
