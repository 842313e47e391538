/* SCRAM-SHA-256 (RFC 5802, RFC 7677) server side, without channel binding: we do not offer
 * -PLUS, so a client asking for binding ("p=") is refused and "y" is accepted (RFC 5802 §6).
 * Unknown users get a deterministic fake salt so the server-first message does not reveal
 * whether a name exists (RFC 5802 §9). Passwords are used as UTF-8 octets without SASLprep
 * normalisation; for ASCII passwords the two are the same. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"
#include "scram_internal.h"

#define SCRAM_NONCE_RAW 18 /* 24 base64 characters of server nonce */

static int hmac256(const uint8_t *key, size_t key_len, const void *data, size_t len,
		   uint8_t out[32])
{
	unsigned int out_len = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) == NULL ||
	    out_len != 32)
		return -1;
	return 0;
}

int auth_scram_derive(const char *password, size_t password_len, const uint8_t *salt,
		      size_t salt_len, uint32_t iterations, uint8_t stored_key_r[32],
		      uint8_t server_key_r[32])
{
	uint8_t salted[32], client_key[32];
	int ret = -1;

	if (iterations < 1 || iterations > AUTH_SCRAM_ITERATIONS_MAX || salt_len > INT32_MAX ||
	    password_len > LIMIT_AUTH_FIELD)
		return -1;
	/* RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i) */
	if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, (int)iterations,
			      EVP_sha256(), sizeof(salted), salted) != 1)
		goto out;
	if (hmac256(salted, sizeof(salted), "Client Key", 10, client_key) < 0 ||
	    hmac256(salted, sizeof(salted), "Server Key", 10, server_key_r) < 0)
		goto out;
	SHA256(client_key, sizeof(client_key), stored_key_r);
	ret = 0;
out:
	mem_wipe(salted, sizeof(salted));
	mem_wipe(client_key, sizeof(client_key));
	return ret;
}

int auth_scram_make_creds(const char *password, struct auth_scram_creds *creds_r)
{
	memset(creds_r, 0, sizeof(*creds_r));
	if (RAND_bytes(creds_r->salt, AUTH_SCRAM_SALT_LEN) != 1)
		return -1;
	creds_r->salt_len = AUTH_SCRAM_SALT_LEN;
	creds_r->iterations = AUTH_SCRAM_ITERATIONS;
	return auth_scram_derive(password, strlen(password), creds_r->salt, creds_r->salt_len,
				 creds_r->iterations, creds_r->stored_key, creds_r->server_key);
}

int auth_scram_set_user_keys(struct auth_directory *dir, const char *address,
			     const char *password, const uint8_t *salt, size_t salt_len,
			     uint32_t iterations)
{
	struct auth_scram_creds creds;

	memset(&creds, 0, sizeof(creds));
	if (salt_len == 0 || salt_len > sizeof(creds.salt))
		return -1;
	memcpy(creds.salt, salt, salt_len);
	creds.salt_len = salt_len;
	creds.iterations = iterations;
	if (auth_scram_derive(password, strlen(password), salt, salt_len, iterations,
			      creds.stored_key, creds.server_key) < 0)
		return -1;
	return auth_dir_store_scram(dir, address, &creds);
}

void auth_scram_fix_server_nonce(struct sasl_session *s, const char *nonce)
{
	free(s->scram.fixed_server_nonce);
	s->scram.fixed_server_nonce = xstrdup(nonce);
}

void auth_scram_state_free(struct auth_scram_state *st)
{
	free(st->gs2_header);
	free(st->client_first_bare);
	free(st->server_first);
	free(st->nonce);
	free(st->fixed_server_nonce);
	free(st->address);
	mem_wipe(&st->creds, sizeof(st->creds));
	memset(st, 0, sizeof(*st));
}

/* RFC 5802 §7 saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed. */
static char *decode_saslname(const char *p, size_t len)
{
	struct buf out;

	buf_init(&out);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '=') {
			if (i + 2 < len && p[i + 1] == '2' && p[i + 2] == 'C')
				buf_append_byte(&out, ',');
			else if (i + 2 < len && p[i + 1] == '3' && p[i + 2] == 'D')
				buf_append_byte(&out, '=');
			else
				goto bad;
			i += 2;
			continue;
		}
		if (p[i] == ',')
			goto bad;
		buf_append_byte(&out, (uint8_t)p[i]);
	}
	if (out.len == 0)
		goto bad;
	char *s = xstrdup(buf_cstr(&out));
	buf_free(&out);
	return s;
bad:
	buf_free(&out);
	return NULL;
}

/* printable = %x21-2B / %x2D-7E: any printable ASCII except ',' */
static bool nonce_valid(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return false;
	return true;
}

/* Length of the attribute starting at p (up to the next ',' or the end). */
static size_t attr_len(const char *p, const char *end)
{
	const char *c = memchr(p, ',', (size_t)(end - p));

	return c != NULL ? (size_t)(c - p) : (size_t)(end - p);
}

/* RFC 5802 §9: an unknown name gets a salt that is stable for the process but reveals
 * nothing, and keys that can never match. */
static void scram_fake_creds(struct sasl_session *s, const char *name)
{
	struct auth_scram_creds *c = &s->scram.creds;
	uint8_t mac[32];

	memset(c, 0, sizeof(*c));
	if (hmac256(s->dir->scram_secret, sizeof(s->dir->scram_secret), name, strlen(name),
		    mac) < 0)
		RAND_bytes(mac, sizeof(mac));
	memcpy(c->salt, mac, AUTH_SCRAM_SALT_LEN);
	c->salt_len = AUTH_SCRAM_SALT_LEN;
	c->iterations = AUTH_SCRAM_ITERATIONS;
	RAND_bytes(c->stored_key, sizeof(c->stored_key));
	RAND_bytes(c->server_key, sizeof(c->server_key));
	s->scram.known = false;
}

static enum sasl_status scram_client_first(struct sasl_session *s, const char *msg, size_t len,
					   struct buf *out)
{
	struct auth_scram_state *st = &s->scram;
	const char *end = msg + len, *p = msg, *bare;
	char *authzid = NULL, *name = NULL, *addr = NULL, *hash = NULL;
	enum sasl_status status = SASL_MALFORMED;
	size_t n;

	/* gs2-cbind-flag: "n" or "y" only; "p=" asks for channel binding we do not offer */
	if (len < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
		return SASL_MALFORMED;
	p += 2;
	if (*p == 'a') {
		if (end - p < 3 || p[1] != '=')
			return SASL_MALFORMED;
		n = attr_len(p + 2, end);
		authzid = decode_saslname(p + 2, n);
		if (authzid == NULL)
			return SASL_MALFORMED;
		p += 2 + n;
	}
	if (p >= end || *p != ',')
		goto out;
	p++;
	bare = p;
	/* client-first-message-bare: a mandatory extension "m=" is not understood (§5.1) */
	if (end - p < 2 || p[0] != 'n' || p[1] != '=')
		goto out;
	n = attr_len(p + 2, end);
	if (n > LIMIT_AUTH_FIELD)
		goto out;
	name = decode_saslname(p + 2, n);
	if (name == NULL)
		goto out;
	p += 2 + n;
	if (end - p < 4 || memcmp(p, ",r=", 3) != 0)
		goto out;
	p += 3;
	n = attr_len(p, end);
	if (!nonce_valid(p, n))
		goto out;
	st->gs2_header = xstrndup(msg, (size_t)(bare - msg));
	st->client_first_bare = xstrndup(bare, (size_t)(end - bare));
	struct buf nonce;
	buf_init(&nonce);
	buf_append(&nonce, p, n);
	if (st->fixed_server_nonce != NULL) {
		buf_append_str(&nonce, st->fixed_server_nonce);
	} else {
		uint8_t raw[SCRAM_NONCE_RAW];
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			buf_free(&nonce);
			status = SASL_TEMPFAIL;
			goto out;
		}
		b64_encode(&nonce, raw, sizeof(raw));
	}
	st->nonce = xstrdup(buf_cstr(&nonce));
	buf_free(&nonce);

	s->claimed = xstrdup(name);
	int rc = auth_dir_canonical_user(s->dir, name, &addr);
	if (rc < 0) {
		status = SASL_TEMPFAIL;
		goto out;
	}
	int found = 0;
	if (rc > 0) {
		found = auth_dir_user_lookup(s->dir, addr, &hash, &st->creds);
		if (found < 0) {
			status = SASL_TEMPFAIL;
			goto out;
		}
	}
	if (found > 0 && st->creds.iterations > 0) {
		st->known = true;
		st->address = addr;
		addr = NULL;
	} else {
		/* Users imported with only a crypt hash have no SCRAM keys yet: they look like
		 * unknown names here until their first plaintext login adds them. */
		scram_fake_creds(s, addr != NULL ? addr : name);
	}
	/* RFC 5802 §5.1: authzid must be the user itself; we have no admin proxying. */
	if (authzid != NULL && !str_ieq(authzid, name) &&
	    !(st->address != NULL && str_ieq(authzid, st->address))) {
		status = SASL_FAILED;
		goto out;
	}

	struct buf sf;
	buf_init(&sf);
	buf_printf(&sf, "r=%s,s=", st->nonce);
	b64_encode(&sf, st->creds.salt, st->creds.salt_len);
	buf_printf(&sf, ",i=%u", st->creds.iterations);
	st->server_first = xstrdup(buf_cstr(&sf));
	buf_append(out, sf.data, sf.len);
	buf_free(&sf);
	status = SASL_CONTINUE;
out:
	free(authzid);
	free(name);
	free(addr);
	free(hash);
	return status;
}

static enum sasl_status scram_client_final(struct sasl_session *s, const char *msg, size_t len,
					   struct buf *out)
{
	struct auth_scram_state *st = &s->scram;
	const char *end = msg + len, *p = msg, *proof_at = NULL;
	uint8_t client_sig[32], client_key[32], stored[32], server_sig[32];
	struct buf cbind, proof, auth_msg;
	enum sasl_status status = SASL_MALFORMED;
	size_t n;

	buf_init(&cbind);
	buf_init(&proof);
	buf_init(&auth_msg);
	/* channel-binding "c=" base64(gs2-header): must repeat the header of the first message */
	if (len < 2 || memcmp(p, "c=", 2) != 0)
		goto out;
	n = attr_len(p + 2, end);
	if (b64_decode(&cbind, p + 2, n) < 0 || cbind.len != strlen(st->gs2_header) ||
	    memcmp(cbind.data, st->gs2_header, cbind.len) != 0)
		goto out;
	p += 2 + n;
	if (end - p < 3 || memcmp(p, ",r=", 3) != 0)
		goto out;
	p += 3;
	n = attr_len(p, end);
	bool nonce_ok = n == strlen(st->nonce) && memcmp(p, st->nonce, n) == 0;
	p += n;
	/* optional extensions, then ",p=" proof as the last attribute (§7) */
	while (p < end) {
		if (*p != ',' || end - p < 3 || p[2] != '=')
			goto out;
		if (p[1] == 'p') {
			proof_at = p;
			n = attr_len(p + 3, end);
			if (p + 3 + n != end || b64_decode(&proof, p + 3, n) < 0)
				goto out;
			break;
		}
		if (p[1] == 'm')
			goto out;
		p += 1 + attr_len(p + 1, end);
	}
	if (proof_at == NULL || proof.len != 32)
		goto out;
	if (!nonce_ok) {
		status = SASL_FAILED;
		goto out;
	}
	/* AuthMessage := client-first-message-bare "," server-first-message ","
	 *                client-final-message-without-proof (§3) */
	buf_printf(&auth_msg, "%s,%s,", st->client_first_bare, st->server_first);
	buf_append(&auth_msg, msg, (size_t)(proof_at - msg));
	status = SASL_TEMPFAIL;
	if (hmac256(st->creds.stored_key, 32, auth_msg.data, auth_msg.len, client_sig) < 0)
		goto out;
	for (size_t i = 0; i < 32; i++)
		client_key[i] = proof.data[i] ^ client_sig[i];
	SHA256(client_key, sizeof(client_key), stored);
	if (!mem_equal_ct(stored, st->creds.stored_key, 32) || !st->known) {
		status = SASL_FAILED;
		goto out;
	}
	if (hmac256(st->creds.server_key, 32, auth_msg.data, auth_msg.len, server_sig) < 0)
		goto out;
	buf_append_str(out, "v=");
	b64_encode(out, server_sig, sizeof(server_sig));
	s->username = xstrdup(st->address);
	status = SASL_OK;
out:
	mem_wipe(client_key, sizeof(client_key));
	buf_free(&cbind);
	buf_free(&proof);
	buf_free(&auth_msg);
	return status;
}

enum sasl_status auth_scram_step(struct sasl_session *s, const char *msg, size_t len,
				 struct buf *raw_out)
{
	/* The messages are text: a NUL is never part of valid SCRAM syntax. */
	if (len == 0 || memchr(msg, '\0', len) != NULL)
		return SASL_MALFORMED;
	if (s->step == 0)
		return scram_client_first(s, msg, len, raw_out);
	return scram_client_final(s, msg, len, raw_out);
}
