/* Mail authentication: who really sent a message. DKIM (RFC 6376, ed25519-sha256 RFC 8463)
 * signing for the queue's outbound mail and verification of inbound mail, SPF (RFC 7208),
 * DMARC (RFC 7489), and the Authentication-Results field (RFC 8601) that reports them, run as a
 * delivery check (delivery/check.h) on mail received from other servers.
 *
 * Every DNS lookup goes through dns/ with a deadline; a failed lookup gives a temporary result
 * (temperror), never a hang.
 *
 * ---- DKIM keys ----
 *
 * Key files, per domain, in DATA_DIR/dkim/<domain>/ (folder mode 0700, files 0600):
 *     rsa.key       RSA 2048 private key, PKCS#8 PEM
 *     ed25519.key   Ed25519 private key, PKCS#8 PEM
 *     selectors     "rsa <selector>\ned25519 <selector>\n"
 * A selector is "r" (RSA) or "e" (Ed25519) followed by the UTC year and month the key was made
 * in (r202607, e202607). It is recorded in `selectors` when the key is generated, so it never
 * changes while the key stays the same; a new key gets a fresh selector line.
 *
 * Error policy: -1 (or NULL) with a one-line reason in err; nothing aborts except allocation. */
#ifndef ROOST_MAILAUTH_H
#define ROOST_MAILAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

struct dkim_signer;

/* Creates DATA_DIR/dkim/<domain>/ with an RSA 2048 and an Ed25519 key and their selectors.
 * Idempotent: keys already there are kept. domain must be a plain DNS name. */
int dkim_keys_generate(const char *data_dir, const char *domain, char *err, size_t errlen);

/* Appends the TXT records to publish, one per line, zone-file syntax:
 *     <selector>._domainkey.<domain>. IN TXT "v=DKIM1; k=rsa; p=..." "..."
 * Strings are at most 255 octets (RFC 1035 §3.3.14); RSA p= is the base64 SubjectPublicKeyInfo
 * (RFC 6376 §3.6.1), Ed25519 p= the base64 raw 32-byte key (RFC 8463 §4.2). */
int dkim_dns_records(const char *data_dir, const char *domain, struct buf *out, char *err,
		     size_t errlen);

/* Loads the keys found in DATA_DIR/dkim/<domain>/ (at least one must be there). */
struct dkim_signer *dkim_signer_load(const char *data_dir, const char *domain, char *err,
				     size_t errlen);
/* An empty signer for domain, keys added with dkim_signer_add_pem (tests, other key stores). */
struct dkim_signer *dkim_signer_new(const char *domain);
/* Adds a PEM private key (RSA >= 1024 bits or Ed25519) to sign with under selector. */
int dkim_signer_add_pem(struct dkim_signer *signer, const char *selector, const uint8_t *pem,
			size_t pem_len, char *err, size_t errlen);
void dkim_signer_free(struct dkim_signer **signer);

/* Signers loaded once per domain and shared by the queue's delivery threads; a domain's keys
 * are loaded again when its selectors file changes (a new key from `roost domain add` or
 * `roost domain dkim`), so an admin never restarts for a key. Thread-safe. */
struct dkim_signer_cache;
struct dkim_signer_cache *dkim_signer_cache_new(const char *data_dir);
void dkim_signer_cache_free(struct dkim_signer_cache **cache);
/* The signer of domain, or NULL (err says why). Release it with dkim_signer_cache_put. */
const struct dkim_signer *dkim_signer_cache_get(struct dkim_signer_cache *cache,
						const char *domain, char *err, size_t errlen);
void dkim_signer_cache_put(struct dkim_signer_cache *cache, const struct dkim_signer *signer);

/* Signs msg (header block, empty line, body; CRLF line ends) and appends one DKIM-Signature
 * field per key to header_out, each CRLF-terminated and folded to at most 78 columns, ready to
 * be put in front of the message. relaxed/relaxed, t=now, h= lists the present fields of
 * DKIM_SIGNED_FIELDS bottom-up plus one extra "from" (oversigning, RFC 6376 §5.4.2). */
int dkim_sign(const struct dkim_signer *signer, const uint8_t *msg, size_t len, int64_t now,
	      struct buf *header_out, char *err, size_t errlen);

/* Header fields a signature covers when present, in this order. */
#define DKIM_SIGNED_FIELDS                                                                      \
	"from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to",        \
		"references", "mime-version", "content-type", "content-transfer-encoding"

enum dkim_status {
	DKIM_PASS,
	DKIM_FAIL,      /* RFC 6376 §3.9 PERMFAIL: signature or body hash does not match */
	DKIM_PERMERROR, /* PERMFAIL too, for a malformed signature, unusable or missing key */
	DKIM_TEMPERROR, /* TEMPFAIL: the key lookup failed for now */
};

struct dkim_result {
	enum dkim_status status;
	char domain[254];
	char selector[64];
	char algorithm[16];
	bool body_partial;  /* PASS, but l= left part of the body unsigned (RFC 6376 §8.2) */
	const char *reason; /* static text */
};

/* Looks up the TXT record of name ("<selector>._domainkey.<domain>") and appends its text (the
 * strings of one record concatenated) to txt_r. Returns 0 found, 1 no such record, -1 for a
 * temporary failure. */
typedef int (*dkim_lookup_fn)(const char *name, struct buf *txt_r, void *ctx);

/* Checks every DKIM-Signature field of msg (at most max, and at most LIMIT_DKIM_SIGNATURES),
 * writing one result per field in header order. Returns how many were checked (0: unsigned),
 * -1 when msg has more header fields than LIMIT_DKIM_HEADER_FIELDS. now is for x= expiry. */
int dkim_verify(const uint8_t *msg, size_t len, dkim_lookup_fn lookup, void *ctx, int64_t now,
		struct dkim_result *results_r, size_t max);

/* The canonicalisation steps, public for the tests: RFC 6376 §3.4.2 for one header field
 * (name ":" value, without its final line end; appends "name:value\r\n") and §3.4.4 for a
 * body (appends the canonical body). */
void dkim_canon_header_relaxed(const uint8_t *field, size_t len, struct buf *out);
void dkim_canon_body_relaxed(const uint8_t *body, size_t len, struct buf *out);
/* RFC 6376 §3.4.3 (simple body): appends the canonical body. */
void dkim_canon_body_simple(const uint8_t *body, size_t len, struct buf *out);

#endif
