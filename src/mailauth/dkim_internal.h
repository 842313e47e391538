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

/* ---- tag-lists and key records (dkim_verify.c), shared with ARC (arc.c) ---- */

#define DKIM_MAX_TAGS 32

/* One tag=value of a tag-list (RFC 6376 §3.2); value trimmed of FWS, val_start/val_end the raw
 * span after '=' up to the ';' (what §3.7 empties for b=). */
struct dkim_tag {
	const uint8_t *name;
	size_t name_len;
	const uint8_t *val;
	size_t val_len;
	size_t val_start, val_end;
};

struct dkim_tags {
	struct dkim_tag tag[DKIM_MAX_TAGS];
	size_t count;
};

/* Parses p[0..len); offsets are relative to p. -1 on a syntax error or a duplicate tag. */
int dkim_tags_parse(const uint8_t *p, size_t len, struct dkim_tags *t);
const struct dkim_tag *dkim_tag_find(const struct dkim_tags *t, const char *name);
bool dkim_tag_is(const struct dkim_tag *tag, const char *value);
/* Decodes a base64 value in which FWS may appear anywhere (§3.5 b=, bh=; §3.6.1 p=). */
int dkim_b64_decode_fws(const struct dkim_tag *tag, struct buf *out);
/* A domain name or selector: labels of letters, digits, '-' and '_' joined by dots. */
bool dkim_copy_name(const struct dkim_tag *tag, char *dst, size_t size);
/* c= (§3.5; default simple/simple). */
int dkim_parse_canon(const struct dkim_tag *tag, bool *hrelaxed_r, bool *brelaxed_r);
int dkim_parse_h(const struct dkim_tag *tag, bool need_from, struct name_ref *names,
		 size_t *n_r);
/* RFC 6376 §3.6.1 key record -> public key; NULL with *reason set. */
EVP_PKEY *dkim_key_from_record(const struct buf *txt, bool want_ed25519, const char **reason,
			       bool *strict_r);

/* Header fields folded at 78 columns for the fields we sign (dkim_sign.c). */
struct dkim_fold {
	struct buf *out;
	size_t col;
};
void dkim_fold_put(struct dkim_fold *f, const char *piece, size_t n, const char *sep);
void dkim_fold_value(struct dkim_fold *f, const uint8_t *data, size_t len);

int dkim_sign_data(const struct dkim_key *key, const uint8_t *data, size_t len,
		   struct buf *sig_r);
bool dkim_verify_data(EVP_PKEY *pkey, bool ed25519, const uint8_t *data, size_t len,
		      const uint8_t *sig, size_t sig_len);

#endif
