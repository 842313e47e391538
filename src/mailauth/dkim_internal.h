/* What the DKIM files of mailauth/ share: the signer's keys, a parsed header block, and the
 * canonicalisation and hashing steps that signing and verification must do identically.
 *
 * Design notes:
 * 1. Signer and verifier share one path for the data hash (dkim_hash_header_data): the fields
 *    named by h=, chosen bottom-up, canonicalised, then the signature field with b= emptied and
 *    no final CRLF (RFC 6376 §3.7). A signer that fed its own fields differently would produce
 *    signatures only our verifier accepts; the tests therefore also sign with an independent
 *    implementation and recompute the data by hand.
 * 2. The body is canonicalised in one pass into the hash through a small stack batch, never into
 *    a second copy of the message.
 * 3. ed25519-sha256 signs the 32-byte SHA-256 digest of the header data with PureEdDSA
 *    (RFC 8463 §3), not the data itself; rsa-sha256 is PKCS#1 v1.5 over the data. */
#ifndef ROOST_MAILAUTH_DKIM_INTERNAL_H
#define ROOST_MAILAUTH_DKIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "mailauth.h"

#define DKIM_MAX_KEYS 2

struct dkim_key {
	EVP_PKEY *pkey;
	bool ed25519;
	char selector[64];
};

struct dkim_signer {
	char *domain;
	struct dkim_key keys[DKIM_MAX_KEYS];
	size_t key_count;
};

/* One header field as it stands in the message, without its final line end. */
struct dkim_field {
	const uint8_t *p;
	size_t len;
	size_t name_len; /* 0 when the line has no colon: such a field never matches */
	bool used;
};

struct dkim_header {
	struct dkim_field *fields; /* heap, owned: free(h.fields) */
	size_t count;
	size_t body_off;
};

struct name_ref {
	const char *p;
	size_t len;
};

static inline bool dkim_is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static inline bool dkim_is_fws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* Splits the header block into fields; body_off is where the body starts (len when the message
 * has no empty line). -1 when there are more than LIMIT_DKIM_HEADER_FIELDS fields. */
int dkim_header_parse(const uint8_t *msg, size_t len, struct dkim_header *h);
bool dkim_field_is(const struct dkim_field *f, const char *name, size_t name_len);
/* Appends one canonical field (relaxed or simple) with CRLF. */
void dkim_canon_header(const uint8_t *p, size_t len, bool relaxed, struct buf *out);
/* RFC 6376 §3.7 step 2 and §5.4.2: the header data of a signature; sig is the signature field
 * with its b= value emptied. */
void dkim_hash_header_data(struct dkim_header *h, const struct name_ref *names, size_t n,
			   bool relaxed, const uint8_t *sig, size_t sig_len, struct buf *out);
/* SHA-256 of the canonical body truncated to limit octets (UINT64_MAX: whole); *total_r gets
 * the length of the whole canonical body. -1 when it is shorter than limit (§6.1.3). */
int dkim_body_hash(const uint8_t *body, size_t len, bool relaxed, uint64_t limit,
		   uint8_t hash_r[32], uint64_t *total_r);

int dkim_sign_data(const struct dkim_key *key, const uint8_t *data, size_t len,
		   struct buf *sig_r);
bool dkim_verify_data(EVP_PKEY *pkey, bool ed25519, const uint8_t *data, size_t len,
		      const uint8_t *sig, size_t sig_len);

#endif
