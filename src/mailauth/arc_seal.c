/* ARC sealing (RFC 8617 §5.1) of mail we forward: the next ARC set, built from the
 * Authentication-Results field our delivery check put on the message when it arrived. Its
 * results become the ARC-Authentication-Results, its arc= result the seal's cv=. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim_internal.h"
#include "mailauth_internal.h"

/* Header fields an ARC-Message-Signature covers when present; Authentication-Results and the
 * ARC fields never (§4.1.2), DKIM-Signature fields always (so a later hop can tell which of
 * them we saw). */
static const char *const ams_fields[] = { DKIM_SIGNED_FIELDS, "dkim-signature" };

/* The value (after the colon) of the topmost Authentication-Results field whose authserv-id
 * is ours; false when there is none. */
static bool find_our_results(const struct dkim_header *h, const char *authserv_id,
			     struct arc_field *value_r)
{
	for (size_t i = 0; i < h->count; i++) {
		const struct dkim_field *f = &h->fields[i];
		char id[256];
		if (!dkim_field_is(f, "authentication-results", 22))
			continue;
		const uint8_t *colon = memchr(f->p, ':', f->len);
		size_t voff = (size_t)(colon - f->p) + 1;
		if (!authres_authserv_id(f->p + voff, f->len - voff, id, sizeof(id)) ||
		    strcasecmp(id, authserv_id) != 0)
			continue;
		while (voff < f->len && dkim_is_fws(f->p[voff]))
			voff++;
		*value_r = (struct arc_field){ f->p + voff, f->len - voff };
		return true;
	}
	return false;
}

/* The key to seal with: RSA, which every ARC validator knows, before Ed25519. */
static const struct dkim_key *seal_key(const struct dkim_signer *signer)
{
	for (size_t i = 0; i < signer->key_count; i++)
		if (!signer->keys[i].ed25519)
			return &signer->keys[i];
	return signer->key_count > 0 ? &signer->keys[0] : NULL;
}

/* Appends the base64 signature of data to the folded field and its CRLF. */
static int finish_field(const struct dkim_key *key, struct dkim_fold *f, const struct buf *data)
{
	struct buf sig, b64;
	int r;

	buf_init(&sig);
	buf_init(&b64);
	r = dkim_sign_data(key, data->data, data->len, &sig);
	if (r == 0) {
		b64_encode(&b64, sig.data, sig.len);
		dkim_fold_value(f, b64.data, b64.len);
		buf_append_str(f->out, "\r\n");
	}
	buf_free(&sig);
	buf_free(&b64);
	return r;
}

/* Opens a signature field: "Name: i=N; a=...; d=...; s=...; t=...;" */
static void start_field(struct dkim_fold *f, const char *name, unsigned inst,
			const struct dkim_signer *signer, const struct dkim_key *key, int64_t now)
{
	char tag[300];

	buf_append_str(f->out, name);
	f->col = f->out->len;
	snprintf(tag, sizeof(tag), "i=%u;", inst);
	dkim_fold_put(f, tag, strlen(tag), " ");
	snprintf(tag, sizeof(tag), "a=%s;", key->ed25519 ? "ed25519-sha256" : "rsa-sha256");
	dkim_fold_put(f, tag, strlen(tag), " ");
	snprintf(tag, sizeof(tag), "d=%s;", signer->domain);
	dkim_fold_put(f, tag, strlen(tag), " ");
	snprintf(tag, sizeof(tag), "s=%s;", key->selector);
	dkim_fold_put(f, tag, strlen(tag), " ");
	snprintf(tag, sizeof(tag), "t=%lld;", (long long)now);
	dkim_fold_put(f, tag, strlen(tag), " ");
}

/* §4.1.2: the ARC-Message-Signature, relaxed/relaxed over ams_fields and the body. */
static int build_ams(struct dkim_header *h, const uint8_t *msg, size_t len, unsigned inst,
		     const struct dkim_signer *signer, const struct dkim_key *key, int64_t now,
		     struct buf *field)
{
	struct name_ref names[LIMIT_DKIM_H_TAG_FIELDS];
	size_t n_names = 0;
	struct dkim_fold f = { .out = field, .col = 0 };
	struct buf b64, data;
	uint8_t bh[32];
	char tag[64];
	int r;

	for (size_t k = 0; k < ARRAY_LEN(ams_fields); k++) {
		size_t nlen = strlen(ams_fields[k]);
		for (size_t i = 0; i < h->count && n_names < ARRAY_LEN(names); i++)
			if (dkim_field_is(&h->fields[i], ams_fields[k], nlen))
				names[n_names++] = (struct name_ref){ ams_fields[k], nlen };
	}
	if (n_names == 0)
		names[n_names++] = (struct name_ref){ "from", 4 };
	start_field(&f, "ARC-Message-Signature:", inst, signer, key, now);
	dkim_fold_put(&f, "c=relaxed/relaxed;", 18, " ");
	for (size_t k = 0; k < n_names; k++) {
		snprintf(tag, sizeof(tag), "%s%s%s", k == 0 ? "h=" : "", names[k].p,
			 k + 1 < n_names ? ":" : ";");
		dkim_fold_put(&f, tag, strlen(tag), k == 0 ? " " : "");
	}
	dkim_body_hash(msg + h->body_off, len - h->body_off, true, UINT64_MAX, bh, NULL);
	buf_init(&b64);
	buf_init(&data);
	b64_encode(&b64, bh, sizeof(bh));
	buf_append_byte(&b64, ';');
	dkim_fold_put(&f, "bh=", 3, " ");
	dkim_fold_value(&f, b64.data, b64.len);
	dkim_fold_put(&f, "b=", 2, " ");
	dkim_hash_header_data(h, names, n_names, true, field->data, field->len, &data);
	r = finish_field(key, &f, &data);
	buf_free(&b64);
	buf_free(&data);
	return r;
}

/* §4.1.3 and §5.1.1: the ARC-Seal over the sets first..inst (chain already holds the new AAR
 * and AMS at inst). */
static int build_seal(struct arc_chain *chain, unsigned first, unsigned inst,
		      enum arc_result cv, const struct dkim_signer *signer,
		      const struct dkim_key *key, int64_t now, struct buf *field)
{
	struct dkim_fold f = { .out = field, .col = 0 };
	struct buf data;
	char tag[32];
	int r;

	start_field(&f, "ARC-Seal:", inst, signer, key, now);
	snprintf(tag, sizeof(tag), "cv=%s;", arc_result_name(cv));
	dkim_fold_put(&f, tag, strlen(tag), " ");
	dkim_fold_put(&f, "b=", 2, " ");
	chain->seal[inst - 1] = (struct arc_field){ field->data, field->len };
	buf_init(&data);
	arc_seal_data(chain, first, inst, &data);
	r = finish_field(key, &f, &data);
	buf_free(&data);
	return r;
}

/* The chain status to seal with: our field's arc= result; without one, none for a message
 * without ARC sets and fail for one with them (we cannot vouch for what we did not check). */
static enum arc_result sealed_cv(const struct arc_field *ours, const struct arc_chain *chain,
				 bool well_formed)
{
	char result[16];
	enum arc_result cv;

	if (!authres_method_result(ours->p, ours->len, "arc", result, sizeof(result)))
		cv = chain->count == 0 ? ARC_NONE : ARC_FAIL;
	else if (strcasecmp(result, "pass") == 0)
		cv = ARC_PASS;
	else if (strcasecmp(result, "none") == 0)
		cv = ARC_NONE;
	else
		cv = ARC_FAIL;
	/* what arrived must still be what was checked: pass needs a chain, none needs none */
	if ((cv == ARC_PASS && (chain->count == 0 || !well_formed)) ||
	    (cv == ARC_NONE && chain->count > 0))
		cv = ARC_FAIL;
	return cv;
}

static int seal_message(struct dkim_header *h, const uint8_t *msg, size_t len,
			const struct arc_field *ours, const struct dkim_signer *signer,
			int64_t now, struct buf *header_out, char *err, size_t errlen)
{
	struct arc_chain *chain = xmalloc(sizeof(*chain));
	const struct dkim_key *key = seal_key(signer);
	struct buf aar, ams, seal;
	const char *reason;
	int ret = 0;

	bool well_formed = arc_chain_parse(msg, len, chain, &reason) == 0;
	/* §5.1 step 2: a chain already marked failed is not continued */
	if (chain->count >= LIMIT_ARC_SETS || (chain->count > 0 && chain->newest_cv == ARC_FAIL) ||
	    key == NULL) {
		free(chain);
		return 0;
	}
	enum arc_result cv = sealed_cv(ours, chain, well_formed);
	unsigned inst = chain->count + 1;
	buf_init(&aar);
	buf_init(&ams);
	buf_init(&seal);
	buf_append_str(&aar, "ARC-Authentication-Results: ");
	buf_printf(&aar, "i=%u; ", inst);
	buf_append(&aar, ours->p, ours->len);
	chain->aar[inst - 1] = (struct arc_field){ aar.data, aar.len };
	if (build_ams(h, msg, len, inst, signer, key, now, &ams) < 0)
		goto fail;
	chain->ams[inst - 1] = (struct arc_field){ ams.data, ams.len - 2 };
	chain->count = inst;
	if (build_seal(chain, cv == ARC_FAIL ? inst : 1, inst, cv, signer, key, now, &seal) < 0)
		goto fail;
	buf_append(header_out, seal.data, seal.len);
	buf_append(header_out, ams.data, ams.len);
	buf_append(header_out, aar.data, aar.len);
	buf_append_str(header_out, "\r\n");
	ret = 1;
	goto out;
fail:
	err_setf(err, errlen, "ARC sealing with selector %s failed", key->selector);
	ret = -1;
out:
	buf_free(&aar);
	buf_free(&ams);
	buf_free(&seal);
	free(chain);
	return ret;
}

bool arc_has_own_results(const uint8_t *msg, size_t len, const char *authserv_id)
{
	struct dkim_header h;
	struct arc_field ours;
	bool found;

	if (dkim_header_parse(msg, len, &h) < 0)
		return false;
	found = find_our_results(&h, authserv_id, &ours);
	free(h.fields);
	return found;
}

int arc_seal(const struct dkim_signer *signer, const uint8_t *msg, size_t len,
	     const char *authserv_id, int64_t now, struct buf *header_out, char *err,
	     size_t errlen)
{
	struct dkim_header h;
	struct arc_field ours;
	int ret = 0;

	if (dkim_header_parse(msg, len, &h) < 0) {
		err_setf(err, errlen, "too many header fields to seal");
		return -1;
	}
	if (find_our_results(&h, authserv_id, &ours))
		ret = seal_message(&h, msg, len, &ours, signer, now, header_out, err, errlen);
	free(h.fields);
	return ret;
}
