/* DKIM verification (RFC 6376 §6) of every DKIM-Signature field of a message up to a limit,
 * with rsa-sha256 and ed25519-sha256 (RFC 8463). Key records come through a lookup callback so
 * that the caller decides on DNS, caching and time budget. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "dkim_internal.h"

/* ---- verifying ---- */

/* Parses p[0..len); offsets are relative to p. -1 on a syntax error or a duplicate tag. */
int dkim_tags_parse(const uint8_t *p, size_t len, struct dkim_tags *t)
{
	size_t pos = 0;

	t->count = 0;
	while (pos < len) {
		const uint8_t *semi = memchr(p + pos, ';', len - pos);
		size_t end = semi != NULL ? (size_t)(semi - p) : len;
		size_t a = pos, b;

		while (a < end && dkim_is_fws(p[a]))
			a++;
		if (a == end) { /* empty spec: only allowed as the last one (trailing ';') */
			if (semi != NULL && end + 1 < len) {
				size_t z = end + 1;
				while (z < len && dkim_is_fws(p[z]))
					z++;
				if (z < len)
					return -1;
			}
			break;
		}
		const uint8_t *eq = memchr(p + a, '=', end - a);
		if (eq == NULL || t->count == DKIM_MAX_TAGS)
			return -1;
		struct dkim_tag *tag = &t->tag[t->count];
		b = (size_t)(eq - p);
		tag->val_start = b + 1;
		tag->val_end = end;
		while (b > a && dkim_is_fws(p[b - 1]))
			b--;
		if (b == a)
			return -1;
		tag->name = p + a;
		tag->name_len = b - a;
		for (size_t i = a; i < b; i++)
			if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
			      (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
				return -1;
		size_t vs = tag->val_start, ve = end;
		while (vs < ve && dkim_is_fws(p[vs]))
			vs++;
		while (ve > vs && dkim_is_fws(p[ve - 1]))
			ve--;
		tag->val = p + vs;
		tag->val_len = ve - vs;
		for (size_t k = 0; k < t->count; k++)
			if (t->tag[k].name_len == tag->name_len &&
			    memcmp(t->tag[k].name, tag->name, tag->name_len) == 0)
				return -1; /* §3.2: duplicate tags make the list invalid */
		t->count++;
		pos = semi != NULL ? end + 1 : len;
	}
	return 0;
}

const struct dkim_tag *dkim_tag_find(const struct dkim_tags *t, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < t->count; i++)
		if (t->tag[i].name_len == n && memcmp(t->tag[i].name, name, n) == 0)
			return &t->tag[i];
	return NULL;
}

bool dkim_tag_is(const struct dkim_tag *tag, const char *value)
{
	size_t n = strlen(value);

	return tag != NULL && tag->val_len == n && memcmp(tag->val, value, n) == 0;
}

/* Decodes a base64 value in which FWS may appear anywhere (§3.5 b=, bh=; §3.6.1 p=). */
int dkim_b64_decode_fws(const struct dkim_tag *tag, struct buf *out)
{
	struct buf clean;
	int r;

	buf_init(&clean);
	for (size_t i = 0; i < tag->val_len; i++)
		if (!dkim_is_fws(tag->val[i]))
			buf_append_byte(&clean, tag->val[i]);
	r = b64_decode(out, (const char *)clean.data, clean.len);
	buf_free(&clean);
	return r;
}

/* A domain name or selector: labels of letters, digits, '-' and '_' joined by dots. */
bool dkim_copy_name(const struct dkim_tag *tag, char *dst, size_t size)
{
	if (tag == NULL || tag->val_len == 0 || tag->val_len >= size)
		return false;
	for (size_t i = 0; i < tag->val_len; i++) {
		uint8_t c = tag->val[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || (c == '.' && i > 0 && tag->val[i - 1] != '.')))
			return false;
	}
	memcpy(dst, tag->val, tag->val_len);
	dst[tag->val_len] = '\0';
	return dst[tag->val_len - 1] != '.';
}

/* Parses "simple" / "relaxed" from the c= tag (§3.5; default simple/simple). */
int dkim_parse_canon(const struct dkim_tag *tag, bool *hrelaxed_r, bool *brelaxed_r)
{
	*hrelaxed_r = *brelaxed_r = false;
	if (tag == NULL)
		return 0;
	const uint8_t *slash = memchr(tag->val, '/', tag->val_len);
	size_t hlen = slash != NULL ? (size_t)(slash - tag->val) : tag->val_len;
	const uint8_t *bp = slash != NULL ? slash + 1 : NULL;
	size_t blen = slash != NULL ? tag->val_len - hlen - 1 : 0;

	if (hlen == 7 && memcmp(tag->val, "relaxed", 7) == 0)
		*hrelaxed_r = true;
	else if (!(hlen == 6 && memcmp(tag->val, "simple", 6) == 0))
		return -1;
	if (bp == NULL)
		return 0;
	if (blen == 7 && memcmp(bp, "relaxed", 7) == 0)
		*brelaxed_r = true;
	else if (!(blen == 6 && memcmp(bp, "simple", 6) == 0))
		return -1;
	return 0;
}

/* Splits h= at ':' (FWS allowed around it). -1 when empty, too long, or without From when
 * need_from (DKIM requires it, §6.1.1; an ARC-Message-Signature does not). */
int dkim_parse_h(const struct dkim_tag *tag, bool need_from, struct name_ref *names, size_t *n_r)
{
	size_t pos = 0, n = 0;
	bool from = false;

	while (pos <= tag->val_len) {
		const uint8_t *colon = memchr(tag->val + pos, ':', tag->val_len - pos);
		size_t end = colon != NULL ? (size_t)(colon - tag->val) : tag->val_len;
		size_t a = pos, b = end;
		while (a < b && dkim_is_fws(tag->val[a]))
			a++;
		while (b > a && dkim_is_fws(tag->val[b - 1]))
			b--;
		if (a == b || n == LIMIT_DKIM_H_TAG_FIELDS)
			return -1;
		names[n].p = (const char *)tag->val + a;
		names[n].len = b - a;
		from = from || (b - a == 4 && str_nieq(names[n].p, "from", 4));
		n++;
		if (colon == NULL)
			break;
		pos = end + 1;
	}
	*n_r = n;
	return from || !need_from ? 0 : -1;
}

static int parse_u64(const struct dkim_tag *tag, uint64_t *v_r)
{
	return tag != NULL && tag->val_len <= 20
		       ? str_to_u64((const char *)tag->val, tag->val_len, UINT64_MAX, v_r)
		       : -1;
}

/* RFC 6376 §3.6.1 key record -> public key. Sets *reason on failure. */
EVP_PKEY *dkim_key_from_record(const struct buf *txt, bool want_ed25519, const char **reason,
				 bool *strict_r)
{
	struct dkim_tags t;
	const struct dkim_tag *v, *k, *h, *p, *s, *flags;
	EVP_PKEY *pkey = NULL;
	struct buf raw;

	*strict_r = false;
	if (dkim_tags_parse(txt->data, txt->len, &t) < 0) {
		*reason = "malformed key record";
		return NULL;
	}
	v = dkim_tag_find(&t, "v");
	k = dkim_tag_find(&t, "k");
	h = dkim_tag_find(&t, "h");
	p = dkim_tag_find(&t, "p");
	s = dkim_tag_find(&t, "s");
	flags = dkim_tag_find(&t, "t");
	if ((v != NULL && (!dkim_tag_is(v, "DKIM1") || v != &t.tag[0])) || p == NULL) {
		*reason = "malformed key record";
		return NULL;
	}
	if (p->val_len == 0) {
		*reason = "key revoked";
		return NULL;
	}
	bool ed = dkim_tag_is(k, "ed25519");
	if (k != NULL && !ed && !dkim_tag_is(k, "rsa")) {
		*reason = "unknown key type";
		return NULL;
	}
	if (ed != want_ed25519) {
		*reason = "key type does not match the algorithm";
		return NULL;
	}
	if (h != NULL) {
		struct name_ref hs[LIMIT_DKIM_H_TAG_FIELDS];
		size_t n = 0;
		bool sha256 = false;
		/* the h= of a key record has the same list syntax as a signature's h= */
		for (size_t pos = 0; pos <= h->val_len && n < ARRAY_LEN(hs);) {
			const uint8_t *c = memchr(h->val + pos, ':', h->val_len - pos);
			size_t end = c != NULL ? (size_t)(c - h->val) : h->val_len;
			size_t a = pos, b = end;
			while (a < b && dkim_is_fws(h->val[a]))
				a++;
			while (b > a && dkim_is_fws(h->val[b - 1]))
				b--;
			sha256 = sha256 || (b - a == 6 && memcmp(h->val + a, "sha256", 6) == 0);
			n++;
			if (c == NULL)
				break;
			pos = end + 1;
		}
		if (!sha256) {
			*reason = "key does not allow sha256";
			return NULL;
		}
	}
	if (s != NULL && !dkim_tag_is(s, "*") && !dkim_tag_is(s, "email")) {
		*reason = "key not for email";
		return NULL;
	}
	if (flags != NULL)
		for (size_t i = 0; i < flags->val_len; i++)
			if (flags->val[i] == 's' &&
			    (i == 0 || flags->val[i - 1] == ':' || dkim_is_fws(flags->val[i - 1])) &&
			    (i + 1 == flags->val_len || flags->val[i + 1] == ':' ||
			     dkim_is_fws(flags->val[i + 1])))
				*strict_r = true;
	buf_init(&raw);
	if (dkim_b64_decode_fws(p, &raw) < 0) {
		*reason = "malformed public key";
		goto out;
	}
	if (ed) {
		if (raw.len == 32)
			pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw.data, 32);
	} else if (raw.len <= LONG_MAX) {
		const uint8_t *q = raw.data;
		pkey = d2i_PUBKEY(NULL, &q, (long)raw.len);
		if (pkey == NULL) { /* some publish the bare PKCS#1 RSAPublicKey */
			q = raw.data;
			pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)raw.len);
		}
		if (pkey != NULL &&
		    (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_get_bits(pkey) < LIMIT_DKIM_RSA_BITS_MIN ||
		     EVP_PKEY_get_bits(pkey) > LIMIT_DKIM_RSA_BITS_MAX)) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
			*reason = "RSA key size not acceptable";
			goto out;
		}
	}
	if (pkey == NULL)
		*reason = "malformed public key";
out:
	buf_free(&raw);
	return pkey;
}

static void verify_one(struct dkim_header *h, size_t idx, const uint8_t *msg, size_t len,
		       dkim_lookup_fn lookup, void *ctx, int64_t now, struct dkim_result *r)
{
	const struct dkim_field *f = &h->fields[idx];
	const uint8_t *colon = memchr(f->p, ':', f->len);
	size_t voff = (size_t)(colon - f->p) + 1;
	struct dkim_tags t;
	struct name_ref names[LIMIT_DKIM_H_TAG_FIELDS];
	size_t n_names = 0;
	bool hrel, brel, ed, strict;
	uint64_t l = UINT64_MAX, x = 0;
	struct buf bh, b, txt, sigf, data;
	EVP_PKEY *pkey = NULL;
	uint8_t hash[32];
	uint64_t body_total = 0;
	char name[340];

	memset(r, 0, sizeof(*r));
	r->status = DKIM_PERMERROR;
	buf_init(&bh);
	buf_init(&b);
	buf_init(&txt);
	buf_init(&sigf);
	buf_init(&data);
	if (dkim_tags_parse(f->p + voff, f->len - voff, &t) < 0) {
		r->reason = "malformed signature";
		goto out;
	}
	const struct dkim_tag *a = dkim_tag_find(&t, "a"), *tb = dkim_tag_find(&t, "b"),
			      *tbh = dkim_tag_find(&t, "bh"), *th = dkim_tag_find(&t, "h"),
			      *ti = dkim_tag_find(&t, "i"), *tl = dkim_tag_find(&t, "l"),
			      *tx = dkim_tag_find(&t, "x");
	if (!dkim_copy_name(dkim_tag_find(&t, "d"), r->domain, sizeof(r->domain)) ||
	    !dkim_copy_name(dkim_tag_find(&t, "s"), r->selector, sizeof(r->selector))) {
		r->reason = "missing or malformed d= or s=";
		goto out;
	}
	if (a != NULL && a->val_len < sizeof(r->algorithm)) {
		memcpy(r->algorithm, a->val, a->val_len);
		r->algorithm[a->val_len] = '\0';
	}
	if (!dkim_tag_is(dkim_tag_find(&t, "v"), "1") || tb == NULL || tbh == NULL || th == NULL) {
		r->reason = "missing required tag";
		goto out;
	}
	ed = dkim_tag_is(a, "ed25519-sha256");
	if (!ed && !dkim_tag_is(a, "rsa-sha256")) { /* RFC 8301 §3.1: rsa-sha1 is not accepted */
		r->reason = "unsupported algorithm";
		goto out;
	}
	if (dkim_parse_canon(dkim_tag_find(&t, "c"), &hrel, &brel) < 0) {
		r->reason = "unsupported canonicalization";
		goto out;
	}
	if (dkim_parse_h(th, true, names, &n_names) < 0) {
		r->reason = "h= is malformed or does not cover From";
		goto out;
	}
	if ((tl != NULL && parse_u64(tl, &l) < 0) || (tx != NULL && parse_u64(tx, &x) < 0)) {
		r->reason = "malformed l= or x=";
		goto out;
	}
	if (tx != NULL && x <= INT64_MAX && (int64_t)x < now) {
		r->status = DKIM_FAIL;
		r->reason = "signature expired";
		goto out;
	}
	/* §3.5 i=: its domain is d= or a subdomain of it */
	const uint8_t *at = ti != NULL ? memchr(ti->val, '@', ti->val_len) : NULL;
	size_t ilen = 0, dlen = strlen(r->domain);
	if (ti != NULL) {
		if (at == NULL) {
			r->reason = "malformed i=";
			goto out;
		}
		ilen = ti->val_len - (size_t)(at + 1 - ti->val);
		const char *idom = (const char *)at + 1;
		if (!(ilen == dlen && str_nieq(idom, r->domain, dlen)) &&
		    !(ilen > dlen && idom[ilen - dlen - 1] == '.' &&
		      str_nieq(idom + ilen - dlen, r->domain, dlen))) {
			r->reason = "i= is not within d=";
			goto out;
		}
	}
	if (dkim_b64_decode_fws(tbh, &bh) < 0 || bh.len != 32 || dkim_b64_decode_fws(tb, &b) < 0 ||
	    b.len == 0) {
		r->reason = "malformed b= or bh=";
		goto out;
	}

	snprintf(name, sizeof(name), "%s._domainkey.%s", r->selector, r->domain);
	int found = lookup(name, &txt, ctx);
	if (found < 0) {
		r->status = DKIM_TEMPERROR;
		r->reason = "key lookup failed";
		goto out;
	}
	if (found > 0 || txt.len > LIMIT_DKIM_KEY_RECORD) {
		r->reason = found > 0 ? "no key record" : "key record too large";
		goto out;
	}
	pkey = dkim_key_from_record(&txt, ed, &r->reason, &strict);
	if (pkey == NULL)
		goto out;
	if (strict && ti != NULL && ilen != dlen) {
		r->reason = "key requires i= to equal d=";
		goto out;
	}

	r->status = DKIM_FAIL;
	if (dkim_body_hash(msg + h->body_off, len - h->body_off, brel, l, hash, &body_total) < 0 ||
	    !mem_equal_ct(hash, bh.data, 32)) {
		r->reason = "body hash mismatch";
		goto out;
	}
	/* §3.7: the signature field with the b= value (and the FWS around it) taken out */
	size_t cut_start = voff + tb->val_start, cut_end = voff + tb->val_end;
	buf_append(&sigf, f->p, cut_start);
	buf_append(&sigf, f->p + cut_end, f->len - cut_end);
	dkim_hash_header_data(h, names, n_names, hrel, sigf.data, sigf.len, &data);
	if (!dkim_verify_data(pkey, ed, data.data, data.len, b.data, b.len)) {
		r->reason = "signature mismatch";
		goto out;
	}
	r->status = DKIM_PASS;
	/* §8.2: content past l= is not covered; whoever reads the result must be told */
	r->body_partial = l != UINT64_MAX && body_total > l;
	r->reason = r->body_partial ? "ok, but l= leaves the body only partly signed" : "ok";
out:
	EVP_PKEY_free(pkey);
	buf_free(&bh);
	buf_free(&b);
	buf_free(&txt);
	buf_free(&sigf);
	buf_free(&data);
}

int dkim_verify(const uint8_t *msg, size_t len, dkim_lookup_fn lookup, void *ctx, int64_t now,
		struct dkim_result *results_r, size_t max)
{
	struct dkim_header h;
	size_t n = 0;

	if (dkim_header_parse(msg, len, &h) < 0)
		return -1;
	if (max > LIMIT_DKIM_SIGNATURES)
		max = LIMIT_DKIM_SIGNATURES;
	for (size_t i = 0; i < h.count && n < max; i++)
		if (dkim_field_is(&h.fields[i], "dkim-signature", 14))
			verify_one(&h, i, msg, len, lookup, ctx, now, &results_r[n++]);
	free(h.fields);
	return (int)n;
}
