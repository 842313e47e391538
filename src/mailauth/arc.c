/* ARC verification (RFC 8617 §5.2): the ARC sets of a received message are collected by
 * instance, their structure checked, the newest ARC-Message-Signature verified over the
 * message as a DKIM signature is, and every ARC-Seal over the ARC sets up to its own. The
 * result is the Chain Validation Status (none, pass, fail) reported as arc= in our
 * Authentication-Results and sealed into the next set when we forward the message.
 *
 * Design notes:
 * 1. Tag-lists, key records, canonicalisation and the public-key operations are DKIM's
 *    (dkim_internal.h): an AMS is a DKIM-Signature with i= as the instance and no v=, an AS
 *    one without a body hash, so one implementation keeps the two from drifting apart.
 * 2. Keys are published as DKIM keys (<selector>._domainkey.<domain>) and go through the
 *    same lookup, hence the same cache and time budget.
 * 3. Every error is a permanent "fail" (§5.2.1), a failed key lookup included: there is no
 *    temperror for a chain, and a chain once failed is never continued. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "dkim_internal.h"
#include "mailauth_internal.h"

const char *arc_result_name(enum arc_result r)
{
	switch (r) {
	case ARC_PASS: return "pass";
	case ARC_FAIL: return "fail";
	default: return "none";
	}
}

/* ---- collecting the sets ---- */

enum arc_kind { ARC_KIND_AAR, ARC_KIND_AMS, ARC_KIND_SEAL };

static size_t value_offset(const struct arc_field *f)
{
	const uint8_t *colon = memchr(f->p, ':', f->len);

	return colon != NULL ? (size_t)(colon - f->p) + 1 : f->len;
}

/* A decimal instance number 1..LIMIT_ARC_SETS; 0 when malformed, LIMIT_ARC_SETS + 1 when it
 * is a number above the limit (§5.2 step 1 treats that as more sets than allowed). */
static unsigned instance_value(const uint8_t *p, size_t len)
{
	uint64_t v;

	if (len == 0 || len > 10 || str_to_u64((const char *)p, len, UINT32_MAX, &v) < 0 || v == 0)
		return 0;
	return v > LIMIT_ARC_SETS ? LIMIT_ARC_SETS + 1 : (unsigned)v;
}

/* §4.1.1: arc-info = instance [CFWS] ";" authres-payload, instance = [CFWS] "i" [CFWS] "="
 * [CFWS] 1*2DIGIT. Comments are not expected here; whitespace and folds are skipped. */
static unsigned aar_instance(const uint8_t *v, size_t len)
{
	size_t i = 0, start;

	while (i < len && dkim_is_fws(v[i]))
		i++;
	if (i >= len || (v[i] != 'i' && v[i] != 'I'))
		return 0;
	i++;
	while (i < len && dkim_is_fws(v[i]))
		i++;
	if (i >= len || v[i] != '=')
		return 0;
	i++;
	while (i < len && dkim_is_fws(v[i]))
		i++;
	start = i;
	while (i < len && v[i] >= '0' && v[i] <= '9')
		i++;
	size_t end = i;
	while (i < len && dkim_is_fws(v[i]))
		i++;
	if (i >= len || v[i] != ';')
		return 0;
	return instance_value(v + start, end - start);
}

static unsigned field_instance(const struct arc_field *f, enum arc_kind kind)
{
	size_t voff = value_offset(f);
	struct dkim_tags t;
	const struct dkim_tag *i;

	if (kind == ARC_KIND_AAR)
		return aar_instance(f->p + voff, f->len - voff);
	if (dkim_tags_parse(f->p + voff, f->len - voff, &t) < 0 ||
	    (i = dkim_tag_find(&t, "i")) == NULL)
		return 0;
	return instance_value(i->val, i->val_len);
}

/* cv= of an ARC-Seal; ARC_FAIL for anything but none or pass, an unreadable seal too. A
 * missing seal says nothing (ARC_NONE): the structure check reports the set incomplete. */
static enum arc_result seal_cv(const struct arc_field *f)
{
	struct dkim_tags t;
	const struct dkim_tag *cv;

	if (f->p == NULL)
		return ARC_NONE;
	size_t voff = value_offset(f);
	if (dkim_tags_parse(f->p + voff, f->len - voff, &t) < 0)
		return ARC_FAIL;
	cv = dkim_tag_find(&t, "cv");
	if (dkim_tag_is(cv, "none"))
		return ARC_NONE;
	return dkim_tag_is(cv, "pass") ? ARC_PASS : ARC_FAIL;
}

static bool seal_has_h(const struct arc_field *f)
{
	size_t voff = value_offset(f);
	struct dkim_tags t;

	return dkim_tags_parse(f->p + voff, f->len - voff, &t) < 0 ||
	       dkim_tag_find(&t, "h") != NULL;
}

static struct arc_field *slot_of(struct arc_chain *c, enum arc_kind kind, unsigned inst)
{
	struct arc_field *set = kind == ARC_KIND_AAR   ? c->aar
				: kind == ARC_KIND_AMS ? c->ams
						       : c->seal;
	return &set[inst - 1];
}

/* Files every ARC field of h under its instance; -1 on the first malformed or repeated one. */
static int collect_fields(const struct dkim_header *h, struct arc_chain *c, const char **reason_r)
{
	static const struct {
		const char *name;
		size_t len;
		enum arc_kind kind;
	} names[] = { { "arc-authentication-results", 26, ARC_KIND_AAR },
		      { "arc-message-signature", 21, ARC_KIND_AMS },
		      { "arc-seal", 8, ARC_KIND_SEAL } };
	int ret = 0;

	for (size_t i = 0; i < h->count; i++) {
		for (size_t k = 0; k < ARRAY_LEN(names); k++) {
			if (!dkim_field_is(&h->fields[i], names[k].name, names[k].len))
				continue;
			struct arc_field f = { h->fields[i].p, h->fields[i].len };
			unsigned inst = field_instance(&f, names[k].kind);
			if (inst == 0) {
				*reason_r = "ARC field with a malformed instance";
				ret = -1;
				continue;
			}
			if (inst > LIMIT_ARC_SETS) {
				*reason_r = "more than 50 ARC sets";
				c->count = LIMIT_ARC_SETS;
				ret = -1;
				continue;
			}
			struct arc_field *slot = slot_of(c, names[k].kind, inst);
			if (slot->p != NULL && ret == 0) {
				*reason_r = "two ARC fields of one kind with the same instance";
				ret = -1;
			}
			*slot = f;
			if (inst > c->count)
				c->count = inst;
		}
	}
	return ret;
}

static int check_structure(const struct arc_chain *c, const char **reason_r)
{
	for (unsigned i = 1; i <= c->count; i++) {
		if (c->aar[i - 1].p == NULL || c->ams[i - 1].p == NULL ||
		    c->seal[i - 1].p == NULL) {
			*reason_r = "an ARC set is incomplete or the instances have a gap";
			return -1;
		}
		if (seal_has_h(&c->seal[i - 1])) {
			*reason_r = "an ARC-Seal is malformed or has h=";
			return -1;
		}
		if (seal_cv(&c->seal[i - 1]) != (i == 1 ? ARC_NONE : ARC_PASS)) {
			*reason_r = i == 1 ? "the first ARC-Seal does not say cv=none"
					   : "an ARC-Seal after the first does not say cv=pass";
			return -1;
		}
	}
	return 0;
}

int arc_chain_parse(const uint8_t *msg, size_t len, struct arc_chain *chain,
		    const char **reason_r)
{
	struct dkim_header h;
	int ret;

	memset(chain, 0, sizeof(*chain));
	chain->newest_cv = ARC_NONE;
	*reason_r = "no ARC sets";
	if (dkim_header_parse(msg, len, &h) < 0) {
		*reason_r = "header block too large";
		chain->newest_cv = ARC_FAIL;
		return -1;
	}
	ret = collect_fields(&h, chain, reason_r);
	free(h.fields);
	if (chain->count == 0)
		return ret;
	chain->newest_cv = seal_cv(&chain->seal[chain->count - 1]);
	if (ret < 0)
		return -1;
	if (chain->newest_cv == ARC_FAIL) { /* §5.2 step 2 */
		*reason_r = "the newest ARC-Seal says cv=fail";
		return -1;
	}
	return check_structure(chain, reason_r);
}

/* ---- signatures ---- */

/* The public key an AMS or AS names with a=, d= and s=. NULL with *reason_r. */
static EVP_PKEY *signature_key(const struct dkim_tags *t, dkim_lookup_fn lookup, void *ctx,
			       bool *ed_r, char *domain, size_t domain_size,
			       const char **reason_r)
{
	const struct dkim_tag *a = dkim_tag_find(t, "a");
	char selector[64], name[340];
	struct buf txt;
	EVP_PKEY *pkey = NULL;
	bool strict;

	*ed_r = dkim_tag_is(a, "ed25519-sha256");
	if (!*ed_r && !dkim_tag_is(a, "rsa-sha256")) {
		*reason_r = "unsupported algorithm";
		return NULL;
	}
	if (!dkim_copy_name(dkim_tag_find(t, "d"), domain, domain_size) ||
	    !dkim_copy_name(dkim_tag_find(t, "s"), selector, sizeof(selector))) {
		*reason_r = "missing or malformed d= or s=";
		return NULL;
	}
	snprintf(name, sizeof(name), "%s._domainkey.%s", selector, domain);
	buf_init(&txt);
	int found = lookup(name, &txt, ctx);
	if (found != 0 || txt.len > LIMIT_DKIM_KEY_RECORD)
		*reason_r = found < 0 ? "key lookup failed" : found > 0 ? "no key record"
									: "key record too large";
	else
		pkey = dkim_key_from_record(&txt, *ed_r, reason_r, &strict);
	buf_free(&txt);
	return pkey;
}

/* The field with its b= value taken out (RFC 6376 §3.7), appended to out. */
static void without_b(const struct arc_field *f, size_t voff, const struct dkim_tag *b,
		      struct buf *out)
{
	size_t cut_start = voff + b->val_start, cut_end = voff + b->val_end;

	buf_append(out, f->p, cut_start);
	buf_append(out, f->p + cut_end, f->len - cut_end);
}

static bool check_signature(EVP_PKEY *pkey, bool ed, const struct buf *data,
			    const struct dkim_tag *b)
{
	struct buf sig;
	bool ok;

	buf_init(&sig);
	ok = dkim_b64_decode_fws(b, &sig) == 0 && sig.len > 0 &&
	     dkim_verify_data(pkey, ed, data->data, data->len, sig.data, sig.len);
	buf_free(&sig);
	return ok;
}

/* The whole-body hashes computed so far, [0] simple, [1] relaxed: a chain of 50 sets must
 * not cost 50 passes over a large body. */
struct body_hashes {
	bool have[2];
	uint8_t hash[2][32];
};

/* The body hash an AMS asks for. An l= limit is hashed afresh, and only for the newest AMS
 * (older ones are checked for oldest-pass alone, where an l= just ends the walk). */
static int ams_body_hash(struct dkim_header *h, const uint8_t *msg, size_t len, bool relaxed,
			 uint64_t l, bool newest, struct body_hashes *bh, uint8_t hash_r[32])
{
	if (l != UINT64_MAX)
		return newest ? dkim_body_hash(msg + h->body_off, len - h->body_off, relaxed, l,
					       hash_r, NULL)
			      : -1;
	if (!bh->have[relaxed]) {
		dkim_body_hash(msg + h->body_off, len - h->body_off, relaxed, UINT64_MAX,
			       bh->hash[relaxed], NULL);
		bh->have[relaxed] = true;
	}
	memcpy(hash_r, bh->hash[relaxed], 32);
	return 0;
}

/* §4.1.2: verifies one ARC-Message-Signature over msg as RFC 6376 §6 verifies a signature. */
static bool ams_verify(struct dkim_header *h, const struct arc_field *f, const uint8_t *msg,
		       size_t len, bool newest, struct body_hashes *cache, dkim_lookup_fn lookup,
		       void *ctx, const char **reason_r)
{
	size_t voff = value_offset(f);
	struct dkim_tags t;
	struct name_ref names[LIMIT_DKIM_H_TAG_FIELDS];
	size_t n_names;
	bool hrel, brel, ed, ok = false;
	uint64_t l = UINT64_MAX;
	uint8_t hash[32];
	char domain[254];
	struct buf bh, sigf, data;
	EVP_PKEY *pkey = NULL;

	buf_init(&bh);
	buf_init(&sigf);
	buf_init(&data);
	if (dkim_tags_parse(f->p + voff, f->len - voff, &t) < 0) {
		*reason_r = "malformed ARC-Message-Signature";
		goto out;
	}
	const struct dkim_tag *b = dkim_tag_find(&t, "b"), *tbh = dkim_tag_find(&t, "bh"),
			      *th = dkim_tag_find(&t, "h"), *tl = dkim_tag_find(&t, "l");
	if (b == NULL || tbh == NULL || th == NULL ||
	    dkim_parse_canon(dkim_tag_find(&t, "c"), &hrel, &brel) < 0 ||
	    dkim_parse_h(th, false, names, &n_names) < 0 ||
	    (tl != NULL && str_to_u64((const char *)tl->val, tl->val_len, UINT64_MAX, &l) < 0) ||
	    dkim_b64_decode_fws(tbh, &bh) < 0 || bh.len != 32) {
		*reason_r = "malformed ARC-Message-Signature";
		goto out;
	}
	pkey = signature_key(&t, lookup, ctx, &ed, domain, sizeof(domain), reason_r);
	if (pkey == NULL)
		goto out;
	if (ams_body_hash(h, msg, len, brel, l, newest, cache, hash) < 0 ||
	    !mem_equal_ct(hash, bh.data, 32)) {
		*reason_r = "ARC-Message-Signature body hash mismatch";
		goto out;
	}
	without_b(f, voff, b, &sigf);
	dkim_hash_header_data(h, names, n_names, hrel, sigf.data, sigf.len, &data);
	ok = check_signature(pkey, ed, &data, b);
	if (!ok)
		*reason_r = "ARC-Message-Signature does not verify";
out:
	EVP_PKEY_free(pkey);
	buf_free(&bh);
	buf_free(&sigf);
	buf_free(&data);
	return ok;
}

/* §5.1.1: the data an ARC-Seal with instance inst signs: the sets 1..inst in order, each
 * AAR, AMS, AS, relaxed; the seal itself without its b= value and final CRLF. A seal over a
 * failed chain covers its own set only (§5.1.2), which first = inst gives. */
void arc_seal_data(const struct arc_chain *c, unsigned first, unsigned inst, struct buf *out)
{
	for (unsigned k = first; k <= inst; k++) {
		dkim_canon_header(c->aar[k - 1].p, c->aar[k - 1].len, true, out);
		dkim_canon_header(c->ams[k - 1].p, c->ams[k - 1].len, true, out);
		dkim_canon_header(c->seal[k - 1].p, c->seal[k - 1].len, true, out);
	}
	out->len -= 2;
}

static bool seal_verify(const struct arc_chain *c, unsigned inst, dkim_lookup_fn lookup,
			void *ctx, char *domain, size_t domain_size, const char **reason_r)
{
	const struct arc_field *f = &c->seal[inst - 1];
	size_t voff = value_offset(f);
	struct arc_chain scope;
	struct dkim_tags t;
	struct buf sigf, data;
	EVP_PKEY *pkey = NULL;
	bool ed, ok = false;

	buf_init(&sigf);
	buf_init(&data);
	const struct dkim_tag *b;
	if (dkim_tags_parse(f->p + voff, f->len - voff, &t) < 0 ||
	    (b = dkim_tag_find(&t, "b")) == NULL) {
		*reason_r = "malformed ARC-Seal";
		goto out;
	}
	pkey = signature_key(&t, lookup, ctx, &ed, domain, domain_size, reason_r);
	if (pkey == NULL)
		goto out;
	without_b(f, voff, b, &sigf);
	/* the same sets with this seal's b= emptied */
	memcpy(&scope, c, sizeof(scope));
	scope.seal[inst - 1] = (struct arc_field){ sigf.data, sigf.len };
	arc_seal_data(&scope, 1, inst, &data);
	ok = check_signature(pkey, ed, &data, b);
	if (!ok)
		*reason_r = "ARC-Seal does not verify";
out:
	EVP_PKEY_free(pkey);
	buf_free(&sigf);
	buf_free(&data);
	return ok;
}

static void set_fail(struct arc_outcome *out, const char *reason)
{
	out->result = ARC_FAIL;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
}

/* §5.2 steps 4-7 on a chain whose structure is sound. */
static void verify_chain(const struct arc_chain *c, struct dkim_header *h, const uint8_t *msg,
			 size_t len, dkim_lookup_fn lookup, void *ctx, struct arc_outcome *out)
{
	const char *reason = NULL;
	char domain[254];
	struct body_hashes cache = { { false, false }, { { 0 } } };

	if (!ams_verify(h, &c->ams[c->count - 1], msg, len, true, &cache, lookup, ctx, &reason)) {
		set_fail(out, reason);
		return;
	}
	out->oldest_pass = 0;
	for (unsigned i = c->count - 1; i >= 1; i--) {
		if (!ams_verify(h, &c->ams[i - 1], msg, len, false, &cache, lookup, ctx, &reason)) {
			out->oldest_pass = i + 1;
			break;
		}
	}
	for (unsigned i = c->count; i >= 1; i--) {
		if (!seal_verify(c, i, lookup, ctx, domain, sizeof(domain), &reason)) {
			set_fail(out, reason);
			return;
		}
		if (i == c->count)
			snprintf(out->domain, sizeof(out->domain), "%s", domain);
	}
	out->result = ARC_PASS;
	size_t voff = value_offset(&c->aar[c->count - 1]);
	char dmarc[16];
	out->sealer_dmarc_pass =
		authres_method_result(c->aar[c->count - 1].p + voff, c->aar[c->count - 1].len - voff,
				      "dmarc", dmarc, sizeof(dmarc)) &&
		strcasecmp(dmarc, "pass") == 0;
	snprintf(out->reason, sizeof(out->reason), "%u ARC set%s verified", c->count,
		 c->count == 1 ? "" : "s");
}

void arc_verify(const uint8_t *msg, size_t len, dkim_lookup_fn lookup, void *ctx, int64_t now,
		struct arc_outcome *out)
{
	struct arc_chain *chain = xmalloc(sizeof(*chain));
	struct dkim_header h;
	const char *reason;

	(void)now; /* ARC signatures carry no x=; t= is informational */
	out->result = ARC_NONE;
	out->sets = 0;
	out->oldest_pass = 0;
	out->sealer_dmarc_pass = false;
	out->domain[0] = '\0';
	out->reason[0] = '\0';
	int parsed = arc_chain_parse(msg, len, chain, &reason);
	out->sets = chain->count;
	if (parsed < 0) {
		set_fail(out, reason);
	} else if (chain->count > 0 && dkim_header_parse(msg, len, &h) == 0) {
		verify_chain(chain, &h, msg, len, lookup, ctx, out);
		free(h.fields);
	}
	free(chain);
}
