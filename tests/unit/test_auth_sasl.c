/* SASL mechanisms: PLAIN and LOGIN framing and limits, and SCRAM-SHA-256 driven
 * by a client computed here with libcrypto, including the RFC 7677 §3 example exchange. */
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
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "auth/auth.h"
#include "auth/scram_internal.h"

struct fixture {
	char dir_path[64];
	struct auth_directory *dir;
};

static const char long_pw_char = 'p';

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	char pw255[256];

	snprintf(f->dir_path, sizeof(f->dir_path), "/tmp/roost-sasl-XXXXXX");
	assert_non_null(mkdtemp(f->dir_path));
	assert_int_equal(auth_directory_open(f->dir_path, &f->dir, err, sizeof(err)), 0);
	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "alice@example.org", "secret", err, sizeof(err)),
			 0);
	memset(pw255, long_pw_char, 255);
	pw255[255] = '\0';
	assert_int_equal(auth_user_add(f->dir, "long@example.org", pw255, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	auth_directory_close(&f->dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir_path);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Encodes raw bytes and feeds them as one response. */
static enum sasl_status step_raw(struct sasl_session *s, const void *raw, size_t len,
				 struct buf *challenge)
{
	struct buf b64;
	enum sasl_status st;

	buf_init(&b64);
	b64_encode(&b64, raw, len);
	buf_reset(challenge);
	st = sasl_step(s, b64.len > 0 ? (const char *)b64.data : "", b64.len, challenge);
	buf_free(&b64);
	return st;
}

static enum sasl_status step_text(struct sasl_session *s, const char *text, struct buf *ch)
{
	return step_raw(s, text, strlen(text), ch);
}

static enum sasl_status plain_once(struct fixture *f, const void *msg, size_t len)
{
	struct sasl_session *s = sasl_new(f->dir, "PLAIN", true);
	struct buf ch;
	enum sasl_status st;

	assert_non_null(s);
	buf_init(&ch);
	st = step_raw(s, msg, len, &ch);
	if (st == SASL_OK)
		assert_string_equal(sasl_username(s), "alice@example.org");
	else
		assert_null(sasl_username(s));
	buf_free(&ch);
	sasl_free(&s);
	assert_null(s);
	return st;
}

static void test_mechanisms(void **state)
{
	struct fixture *f = *state;
	struct sasl_session *s;

	assert_string_equal(sasl_mechanisms(true), "PLAIN LOGIN SCRAM-SHA-256");
	assert_string_equal(sasl_mechanisms(false), "SCRAM-SHA-256");
	assert_null(sasl_new(f->dir, "PLAIN", false));
	assert_null(sasl_new(f->dir, "LOGIN", false));
	assert_null(sasl_new(f->dir, "DIGEST-MD5", true));
	assert_null(sasl_new(f->dir, "NTLM", true));
	s = sasl_new(f->dir, "scram-sha-256", false);
	assert_non_null(s);
	sasl_free(&s);
	s = sasl_new(f->dir, "plain", true);
	assert_non_null(s);
	sasl_free(&s);
	sasl_free(&s); /* NULL is accepted */
}

static void test_plain_ok_and_wrong(void **state)
{
	struct fixture *f = *state;
	static const char ok[] = "\0alice@example.org\0secret";
	static const char ok_upper[] = "\0Alice@Example.ORG\0secret";
	static const char wrong[] = "\0alice@example.org\0secreT";
	static const char unknown[] = "\0nobody@example.org\0secret";

	assert_int_equal(plain_once(f, ok, sizeof(ok) - 1), SASL_OK);
	assert_int_equal(plain_once(f, ok_upper, sizeof(ok_upper) - 1), SASL_OK);
	assert_int_equal(plain_once(f, wrong, sizeof(wrong) - 1), SASL_FAILED);
	assert_int_equal(plain_once(f, unknown, sizeof(unknown) - 1), SASL_FAILED);
}

static void test_plain_nul_counts(void **state)
{
	struct fixture *f = *state;
	char msg[512];

	/* 0 NULs */
	assert_int_equal(plain_once(f, "alice@example.orgsecret", 23), SASL_MALFORMED);
	/* 1 NUL */
	assert_int_equal(plain_once(f, "alice@example.org\0secret", 24), SASL_MALFORMED);
	/* 3 NULs: a trailing NUL after a correct password must not pass */
	assert_int_equal(plain_once(f, "\0alice@example.org\0secret\0", 26), SASL_MALFORMED);
	/* 200 NULs */
	memset(msg, 0, 200);
	assert_int_equal(plain_once(f, msg, 200), SASL_MALFORMED);
	memcpy(msg, "\0alice@example.org\0secret", 25);
	assert_int_equal(plain_once(f, msg, 200), SASL_MALFORMED);
	/* 2 NULs but empty authcid or empty password */
	assert_int_equal(plain_once(f, "\0\0secret", 8), SASL_MALFORMED);
	assert_int_equal(plain_once(f, "\0alice@example.org\0", 19), SASL_MALFORMED);
}

static void test_plain_long_fields(void **state)
{
	struct fixture *f = *state;
	char msg[3 * (LIMIT_AUTH_FIELD + 2)];
	size_t n = 0;

	/* RFC 4616 §2: 255-octet fields must be accepted (the user exists) */
	memcpy(msg, "long@example.org", 16);
	n = 16;
	msg[n++] = '\0';
	memcpy(msg + n, "long@example.org", 16);
	n += 16;
	msg[n++] = '\0';
	memset(msg + n, long_pw_char, 255);
	n += 255;
	struct sasl_session *s = sasl_new(f->dir, "PLAIN", true);
	struct buf ch;
	buf_init(&ch);
	assert_int_equal(step_raw(s, msg, n, &ch), SASL_OK);
	assert_string_equal(sasl_username(s), "long@example.org");
	sasl_free(&s);
	buf_free(&ch);

	/* 255-octet authzid and authcid: parsed, then refused as credentials, not as syntax */
	n = 0;
	memset(msg, 'a', 255);
	n = 255;
	msg[n++] = '\0';
	memset(msg + n, 'a', 255);
	n += 255;
	msg[n++] = '\0';
	memset(msg + n, 'x', 255);
	n += 255;
	assert_int_equal(plain_once(f, msg, n), SASL_FAILED);

	/* a field over LIMIT_AUTH_FIELD is malformed */
	n = 0;
	msg[n++] = '\0';
	memcpy(msg + n, "alice@example.org", 17);
	n += 17;
	msg[n++] = '\0';
	memset(msg + n, 'x', LIMIT_AUTH_FIELD + 1);
	n += LIMIT_AUTH_FIELD + 1;
	assert_int_equal(plain_once(f, msg, n), SASL_MALFORMED);
}

static void test_plain_authzid(void **state)
{
	struct fixture *f = *state;
	static const char other[] = "long@example.org\0alice@example.org\0secret";
	static const char same[] = "alice@example.org\0alice@example.org\0secret";

	assert_int_equal(plain_once(f, other, sizeof(other) - 1), SASL_FAILED);
	assert_int_equal(plain_once(f, same, sizeof(same) - 1), SASL_OK);
}

static void test_empty_cancel_and_base64(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = { "abc", "YW Jj", "YQ==YQ==", "!!!!", "YWJj\r\n",
					   "YW=j", "=YWJ", "YWJjZA=" };
	struct sasl_session *s;
	struct buf ch;

	buf_init(&ch);
	/* server speaks first with an empty challenge; then an empty response fails cleanly */
	for (int k = 0; k < 2; k++) {
		s = sasl_new(f->dir, "PLAIN", true);
		assert_int_equal(sasl_step(s, NULL, 0, &ch), SASL_CONTINUE);
		assert_int_equal(ch.len, 0);
		assert_int_equal(sasl_step(s, k == 0 ? "" : "=", k == 0 ? 0 : 1, &ch),
				 SASL_MALFORMED);
		sasl_free(&s);
	}
	s = sasl_new(f->dir, "PLAIN", true);
	assert_int_equal(sasl_step(s, "*", 1, &ch), SASL_CANCELLED);
	/* nothing more is accepted after the end */
	assert_int_equal(step_text(s, "\0alice@example.org\0secret", &ch), SASL_MALFORMED);
	assert_null(sasl_username(s));
	sasl_free(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = sasl_new(f->dir, "PLAIN", true);
		assert_int_equal(sasl_step(s, bad[i], strlen(bad[i]), &ch), SASL_MALFORMED);
		sasl_free(&s);
	}
	buf_free(&ch);
}

static void test_login_flow(void **state)
{
	struct fixture *f = *state;
	struct sasl_session *s;
	struct buf ch;

	buf_init(&ch);
	s = sasl_new(f->dir, "LOGIN", true);
	assert_int_equal(sasl_step(s, NULL, 0, &ch), SASL_CONTINUE);
	assert_string_equal(buf_cstr(&ch), "VXNlcm5hbWU6"); /* "Username:" */
	assert_int_equal(step_text(s, "alice@example.org", &ch), SASL_CONTINUE);
	assert_string_equal(buf_cstr(&ch), "UGFzc3dvcmQ6"); /* "Password:" */
	assert_string_equal(sasl_claimed_user(s), "alice@example.org");
	assert_int_equal(step_text(s, "secret", &ch), SASL_OK);
	assert_string_equal(sasl_username(s), "alice@example.org");
	sasl_free(&s);

	/* initial response carries the user name */
	s = sasl_new(f->dir, "LOGIN", true);
	assert_int_equal(step_text(s, "alice@example.org", &ch), SASL_CONTINUE);
	assert_int_equal(step_text(s, "wrong", &ch), SASL_FAILED);
	assert_null(sasl_username(s));
	sasl_free(&s);

	s = sasl_new(f->dir, "LOGIN", true);
	assert_int_equal(sasl_step(s, NULL, 0, &ch), SASL_CONTINUE);
	assert_int_equal(step_text(s, "alice@example.org", &ch), SASL_CONTINUE);
	assert_int_equal(sasl_step(s, "*", 1, &ch), SASL_CANCELLED);
	sasl_free(&s);

	s = sasl_new(f->dir, "LOGIN", true);
	assert_int_equal(sasl_step(s, NULL, 0, &ch), SASL_CONTINUE);
	assert_int_equal(sasl_step(s, "", 0, &ch), SASL_MALFORMED);
	sasl_free(&s);
	buf_free(&ch);
}

/* ---------------- SCRAM-SHA-256 client ---------------- */

static void hmac(const uint8_t *key, size_t klen, const void *d, size_t n, uint8_t out[32])
{
	unsigned int len = 32;
	assert_non_null(HMAC(EVP_sha256(), key, (int)klen, d, n, out, &len));
}

/* Extracts attribute "X=" from a comma separated message into out. */
static void attr(const char *msg, char name, char *out, size_t outlen)
{
	const char *p = msg;

	for (;;) {
		if (p[0] == name && p[1] == '=') {
			size_t n = strcspn(p + 2, ",");
			assert_true(n < outlen);
			memcpy(out, p + 2, n);
			out[n] = '\0';
			return;
		}
		p = strchr(p, ',');
		assert_non_null(p);
		p++;
	}
}

struct scram_client {
	char gs2[64];
	char first_bare[256];
	char server_first[512];
	char final_no_proof[512];
	uint8_t server_sig[32];
	uint32_t iterations;
};

/* Computes the client-final message for the server-first in c->server_first. */
static void scram_client_final(struct scram_client *c, const char *password, const char *rnonce,
			       char *out, size_t outlen)
{
	char salt64[128], iter[32], nonce[256];
	uint8_t salted[32], ckey[32], skey[32], stored[32], csig[32], proof[32];
	struct buf salt, gs2b64, proofb64, am;
	uint64_t it;

	attr(c->server_first, 's', salt64, sizeof(salt64));
	attr(c->server_first, 'i', iter, sizeof(iter));
	attr(c->server_first, 'r', nonce, sizeof(nonce));
	assert_int_equal(str_to_u64(iter, strlen(iter), 100000, &it), 0);
	c->iterations = (uint32_t)it;
	buf_init(&salt);
	assert_int_equal(b64_decode(&salt, salt64, strlen(salt64)), 0);
	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt.data,
					   (int)salt.len, (int)it, EVP_sha256(), 32, salted),
			 1);
	hmac(salted, 32, "Client Key", 10, ckey);
	hmac(salted, 32, "Server Key", 10, skey);
	SHA256(ckey, 32, stored);
	buf_init(&gs2b64);
	b64_encode(&gs2b64, (const uint8_t *)c->gs2, strlen(c->gs2));
	snprintf(c->final_no_proof, sizeof(c->final_no_proof), "c=%s,r=%s", buf_cstr(&gs2b64),
		 rnonce != NULL ? rnonce : nonce);
	buf_init(&am);
	buf_printf(&am, "%s,%s,%s", c->first_bare, c->server_first, c->final_no_proof);
	hmac(stored, 32, am.data, am.len, csig);
	for (int i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ csig[i];
	hmac(skey, 32, am.data, am.len, c->server_sig);
	buf_init(&proofb64);
	b64_encode(&proofb64, proof, 32);
	snprintf(out, outlen, "%s,p=%s", c->final_no_proof, buf_cstr(&proofb64));
	buf_free(&salt);
	buf_free(&gs2b64);
	buf_free(&proofb64);
	buf_free(&am);
}

/* Runs a whole exchange; returns the final status. gs2 e.g. "n,,"; bad_nonce replaces r=. */
static enum sasl_status scram_run(struct fixture *f, const char *gs2, const char *user,
				  const char *password, const char *bad_nonce,
				  struct scram_client *c)
{
	struct sasl_session *s = sasl_new(f->dir, "SCRAM-SHA-256", false);
	struct buf ch, dec;
	char first[512], final[1024];
	enum sasl_status st;

	memset(c, 0, sizeof(*c));
	snprintf(c->gs2, sizeof(c->gs2), "%s", gs2);
	snprintf(c->first_bare, sizeof(c->first_bare), "n=%s,r=fyko+d2lbbFgONRv9qkxdawL", user);
	snprintf(first, sizeof(first), "%s%s", gs2, c->first_bare);
	buf_init(&ch);
	buf_init(&dec);
	assert_int_equal(sasl_step(s, NULL, 0, &ch), SASL_CONTINUE);
	assert_int_equal(ch.len, 0);
	st = step_text(s, first, &ch);
	if (st != SASL_CONTINUE)
		goto out;
	assert_int_equal(b64_decode(&dec, (const char *)ch.data, ch.len), 0);
	snprintf(c->server_first, sizeof(c->server_first), "%s", buf_cstr(&dec));
	assert_true(strncmp(c->server_first, "r=fyko+d2lbbFgONRv9qkxdawL", 26) == 0);
	assert_true(strlen(c->server_first) > 26 + 16 + 20); /* a server nonce was added */
	scram_client_final(c, password, bad_nonce, final, sizeof(final));
	st = step_text(s, final, &ch);
	if (st == SASL_OK) {
		struct buf v, sig;
		buf_init(&v);
		buf_init(&sig);
		assert_int_equal(b64_decode(&v, (const char *)ch.data, ch.len), 0);
		b64_encode(&sig, c->server_sig, 32);
		assert_true(v.len > 2 && memcmp(v.data, "v=", 2) == 0);
		assert_int_equal(v.len - 2, sig.len);
		assert_memory_equal(v.data + 2, sig.data, sig.len);
		assert_string_equal(sasl_username(s), "alice@example.org");
		buf_free(&v);
		buf_free(&sig);
	} else {
		assert_null(sasl_username(s));
	}
out:
	buf_free(&ch);
	buf_free(&dec);
	sasl_free(&s);
	return st;
}

static void test_scram_exchange(void **state)
{
	struct fixture *f = *state;
	struct scram_client c;

	assert_int_equal(scram_run(f, "n,,", "alice@example.org", "secret", NULL, &c), SASL_OK);
	assert_int_equal(c.iterations, 4096);
	/* "y": client could bind but believes we cannot; c= must then be base64("y,,") */
	assert_int_equal(scram_run(f, "y,,", "alice@example.org", "secret", NULL, &c), SASL_OK);
	/* bare name in the only domain */
	assert_int_equal(scram_run(f, "n,,", "alice", "secret", NULL, &c), SASL_OK);
	assert_int_equal(scram_run(f, "n,a=alice@example.org,", "alice@example.org", "secret",
				   NULL, &c),
			 SASL_OK);
	assert_int_equal(scram_run(f, "n,,", "alice@example.org", "wrong", NULL, &c),
			 SASL_FAILED);
	assert_int_equal(scram_run(f, "n,,", "alice@example.org", "secret",
				   "fyko+d2lbbFgONRv9qkxdawLXXXXXXXXXXXXXXXXXXXXXXXX", &c),
			 SASL_FAILED);
	assert_int_equal(scram_run(f, "n,a=long@example.org,", "alice@example.org", "secret",
				   NULL, &c),
			 SASL_FAILED);
	/* channel binding asked for: we offer no -PLUS */
	assert_int_equal(scram_run(f, "p=tls-unique,,", "alice@example.org", "secret", NULL, &c),
			 SASL_MALFORMED);
	assert_int_equal(scram_run(f, "x,,", "alice@example.org", "secret", NULL, &c),
			 SASL_MALFORMED);
}

static enum sasl_status scram_first_only(struct fixture *f, const char *first, char *sf,
					 size_t sflen)
{
	struct sasl_session *s = sasl_new(f->dir, "SCRAM-SHA-256", true);
	struct buf ch, dec;
	enum sasl_status st;

	buf_init(&ch);
	buf_init(&dec);
	st = step_text(s, first, &ch);
	if (st == SASL_CONTINUE && sf != NULL) {
		assert_int_equal(b64_decode(&dec, (const char *)ch.data, ch.len), 0);
		snprintf(sf, sflen, "%s", buf_cstr(&dec));
	}
	buf_free(&ch);
	buf_free(&dec);
	sasl_free(&s);
	return st;
}

static void test_scram_syntax(void **state)
{
	struct fixture *f = *state;
	char sf1[256], sf2[256], salt1[64], salt2[64], it[16];

	assert_int_equal(scram_first_only(f, "n,,m=ext,n=alice@example.org,r=abc", NULL, 0),
			 SASL_MALFORMED);
	assert_int_equal(scram_first_only(f, "n,,n=alice@example.org", NULL, 0), SASL_MALFORMED);
	assert_int_equal(scram_first_only(f, "n,,n=alice@example.org,r=", NULL, 0),
			 SASL_MALFORMED);
	assert_int_equal(scram_first_only(f, "n,,n=al=ice@example.org,r=abc", NULL, 0),
			 SASL_MALFORMED);
	assert_int_equal(scram_first_only(f, "n,,n=,r=abc", NULL, 0), SASL_MALFORMED);
	assert_int_equal(scram_first_only(f, "n,,r=abc,n=alice@example.org", NULL, 0),
			 SASL_MALFORMED);
	assert_int_equal(scram_first_only(f, "", NULL, 0), SASL_MALFORMED);
	/* optional extensions after the nonce are ignored (RFC 5802 §5) */
	assert_int_equal(scram_first_only(f, "n,,n=alice@example.org,r=abc,x=1", NULL, 0),
			 SASL_CONTINUE);

	/* an unknown user gets a stable fake salt and the usual count */
	assert_int_equal(scram_first_only(f, "n,,n=ghost@example.org,r=abc", sf1, sizeof(sf1)),
			 SASL_CONTINUE);
	assert_int_equal(scram_first_only(f, "n,,n=ghost@example.org,r=abc", sf2, sizeof(sf2)),
			 SASL_CONTINUE);
	attr(sf1, 's', salt1, sizeof(salt1));
	attr(sf2, 's', salt2, sizeof(salt2));
	assert_string_equal(salt1, salt2);
	assert_int_equal(strlen(salt1), 24); /* 16 octets, like a real salt */
	attr(sf1, 'i', it, sizeof(it));
	assert_string_equal(it, "4096");
	assert_int_equal(scram_first_only(f, "n,,n=alice@example.org,r=abc", sf2, sizeof(sf2)),
			 SASL_CONTINUE);
	attr(sf2, 's', salt2, sizeof(salt2));
	assert_string_not_equal(salt1, salt2);

	struct scram_client c;
	assert_int_equal(scram_run(f, "n,,", "ghost@example.org", "secret", NULL, &c),
			 SASL_FAILED);
}

/* The client-final message must repeat the gs2 header in c= and end with p=. */
static void test_scram_final_syntax(void **state)
{
	struct fixture *f = *state;
	static const char *const finals[] = { "c=eSws,r=%s,p=%s", "r=%s,c=biws,p=%s",
					      "c=biws,r=%s,p=%s,x=1", "c=biws,r=%s,m=1,p=%s",
					      "c=biws,r=%s" };
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		struct sasl_session *s = sasl_new(f->dir, "SCRAM-SHA-256", true);
		struct buf ch, dec;
		char nonce[128], msg[512];

		buf_init(&ch);
		buf_init(&dec);
		assert_int_equal(step_text(s, "n,,n=alice@example.org,r=abc", &ch), SASL_CONTINUE);
		assert_int_equal(b64_decode(&dec, (const char *)ch.data, ch.len), 0);
		attr(buf_cstr(&dec), 'r', nonce, sizeof(nonce));
		snprintf(msg, sizeof(msg), finals[i], nonce,
			 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
		assert_int_equal(step_text(s, msg, &ch), SASL_MALFORMED);
		buf_free(&ch);
		buf_free(&dec);
		sasl_free(&s);
	}
}

/* A stored count out of range must not be sent to clients (0 or 10^9 would break or stall
 * them): it is a storage error. */
static void test_scram_iteration_bounds(void **state)
{
	struct fixture *f = *state;
	static const char *const values[] = { "0", "1000000000", "-1" };
	char path[128];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/accounts.db", f->dir_path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	for (size_t i = 0; i < 3; i++) {
		char sql[160];
		snprintf(sql, sizeof(sql), "UPDATE users SET scram_iterations = %s "
			 "WHERE address = 'long@example.org'", values[i]);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(scram_first_only(f, "n,,n=long@example.org,r=abc", NULL, 0),
				 SASL_TEMPFAIL);
	}
	sqlite3_close(db);
	/* an in-range stored count is what the server announces */
	uint8_t salt[16] = { 1, 2, 3 };
	char sf[256], it[16];
	assert_int_equal(auth_scram_set_user_keys(f->dir, "long@example.org", "x", salt, 16, 5000),
			 0);
	assert_int_equal(scram_first_only(f, "n,,n=long@example.org,r=abc", sf, sizeof(sf)),
			 SASL_CONTINUE);
	attr(sf, 'i', it, sizeof(it));
	assert_string_equal(it, "5000");
}

/* RFC 7677 §3, byte for byte, with the server nonce and salt fixed through the test hook. */
static void test_scram_rfc7677_vector(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct buf salt, ch, dec;
	struct sasl_session *s;
	struct auth_directory *dir;
	char path[80];

	/* "user" must be a bare name in the only domain: use a fresh directory */
	snprintf(path, sizeof(path), "%s/rfc", f->dir_path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(auth_directory_open(path, &dir, err, sizeof(err)), 0);
	assert_int_equal(auth_domain_add(dir, "example.com", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(dir, "user@example.com", "pencil", err, sizeof(err)), 0);
	buf_init(&salt);
	buf_init(&ch);
	buf_init(&dec);
	assert_int_equal(b64_decode(&salt, "W22ZaJ0SNY7soEsUEjb6gQ==", 24), 0);
	assert_int_equal(auth_scram_set_user_keys(dir, "user@example.com", "pencil", salt.data,
						  salt.len, 4096),
			 0);
	s = sasl_new(dir, "SCRAM-SHA-256", false);
	auth_scram_fix_server_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
	assert_int_equal(step_text(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &ch), SASL_CONTINUE);
	assert_int_equal(b64_decode(&dec, (const char *)ch.data, ch.len), 0);
	assert_string_equal(buf_cstr(&dec), "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
					    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	assert_int_equal(step_text(s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
				      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
				   &ch),
			 SASL_OK);
	buf_reset(&dec);
	assert_int_equal(b64_decode(&dec, (const char *)ch.data, ch.len), 0);
	assert_string_equal(buf_cstr(&dec), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	assert_string_equal(sasl_username(s), "user@example.com");
	assert_string_equal(sasl_claimed_user(s), "user");
	sasl_free(&s);
	buf_free(&salt);
	buf_free(&ch);
	buf_free(&dec);
	auth_directory_close(&dir);
}

/* RFC 4954 §4 line limit: 12288 octets pass the framing, 12289 and beyond do not. A SCRAM
 * first message with a large ignored extension shows the limit itself is what refuses. */
static void test_response_limit(void **state)
{
	struct fixture *f = *state;
	struct sasl_session *s;
	struct buf raw, b64, ch;

	buf_init(&ch);
	for (int k = 0; k < 2; k++) {
		size_t target = k == 0 ? LIMIT_SASL_RESPONSE : LIMIT_SASL_RESPONSE + 4;
		buf_init(&raw);
		buf_init(&b64);
		buf_append_str(&raw, "n,,n=alice@example.org,r=abc,x=");
		while (b64_encoded_len(raw.len) < target)
			buf_append_byte(&raw, 'y');
		b64_encode(&b64, raw.data, raw.len);
		assert_int_equal(b64.len, target);
		s = sasl_new(f->dir, "SCRAM-SHA-256", true);
		assert_int_equal(sasl_step(s, (const char *)b64.data, b64.len, &ch),
				 k == 0 ? SASL_CONTINUE : SASL_MALFORMED);
		sasl_free(&s);
		buf_free(&raw);
		buf_free(&b64);
	}
	char *big = malloc(LIMIT_SASL_RESPONSE + 1);
	memset(big, 'A', LIMIT_SASL_RESPONSE + 1);
	s = sasl_new(f->dir, "PLAIN", true);
	assert_int_equal(sasl_step(s, big, LIMIT_SASL_RESPONSE + 1, &ch), SASL_MALFORMED);
	sasl_free(&s);
	free(big);
	buf_free(&ch);
}

/* CVE-2011-1720: abort mid-exchange, start another mechanism, many times over. */
static void test_cancel_restart_loop(void **state)
{
	struct fixture *f = *state;
	struct buf ch;

	buf_init(&ch);
	for (int i = 0; i < 1000; i++) {
		struct sasl_session *s = sasl_new(f->dir, i % 2 ? "SCRAM-SHA-256" : "LOGIN", true);
		if (i % 2)
			assert_int_equal(step_text(s, "n,,n=alice@example.org,r=abc", &ch),
					 SASL_CONTINUE);
		else
			assert_int_equal(sasl_step(s, NULL, 0, &ch), SASL_CONTINUE);
		assert_int_equal(sasl_step(s, "*", 1, &ch), SASL_CANCELLED);
		assert_int_equal(sasl_step(s, "*", 1, &ch), SASL_MALFORMED);
		sasl_free(&s);
		buf_reset(&ch);
	}
	buf_free(&ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_plain_ok_and_wrong),
		cmocka_unit_test(test_plain_nul_counts),
		cmocka_unit_test(test_plain_long_fields),
		cmocka_unit_test(test_plain_authzid),
		cmocka_unit_test(test_empty_cancel_and_base64),
		cmocka_unit_test(test_login_flow),
		cmocka_unit_test(test_scram_exchange),
		cmocka_unit_test(test_scram_syntax),
		cmocka_unit_test(test_scram_final_syntax),
		cmocka_unit_test(test_scram_iteration_bounds),
		cmocka_unit_test(test_scram_rfc7677_vector),
		cmocka_unit_test(test_response_limit),
		cmocka_unit_test(test_cancel_restart_loop),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
