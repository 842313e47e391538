/* DKIM signing of outbound mail (RFC 6376 §5): one DKIM-Signature per key of the signer,
 * relaxed/relaxed, folded to fit a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_internal.h"

#define DKIM_FOLD_COLUMNS 78

/* ---- signing ---- */

/* Builds a header field folded at DKIM_FOLD_COLUMNS: pieces join with sep (" " or "") unless
 * the line would grow too long, in which case they join with CRLF SP, which relaxed header
 * canonicalisation reads as one space — allowed wherever we fold (RFC 6376 §3.5: FWS between
 * tags, around ':' in h=, anywhere inside b= and bh=). */
void dkim_fold_put(struct dkim_fold *f, const char *piece, size_t n, const char *sep)
{
	size_t sep_len = strlen(sep);

	if (f->col > 1 && f->col + sep_len + n > DKIM_FOLD_COLUMNS) {
		buf_append_str(f->out, "\r\n ");
		f->col = 1;
	} else {
		buf_append_str(f->out, sep);
		f->col += sep_len;
	}
	buf_append(f->out, piece, n);
	f->col += n;
}

/* Continues a base64 value from the current column, cut to the room left on each line. */
void dkim_fold_value(struct dkim_fold *f, const uint8_t *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t room = f->col < DKIM_FOLD_COLUMNS ? DKIM_FOLD_COLUMNS - f->col : 0;
		if (room < 8) {
			buf_append_str(f->out, "\r\n ");
			f->col = 1;
			continue;
		}
		size_t n = len - off < room ? len - off : room;
		buf_append(f->out, data + off, n);
		f->col += n;
		off += n;
	}
}

static const char *const signed_fields[] = { DKIM_SIGNED_FIELDS };

int dkim_sign(const struct dkim_signer *signer, const uint8_t *msg, size_t len, int64_t now,
	      struct buf *header_out, char *err, size_t errlen)
{
	struct dkim_header h;
	struct name_ref names[LIMIT_DKIM_H_TAG_FIELDS];
	size_t n_names = 0;
	uint8_t bh[32];
	bool has_from = false;
	int ret = -1;

	if (signer->key_count == 0) {
		err_setf(err, errlen, "no DKIM key to sign with");
		return -1;
	}
	if (dkim_header_parse(msg, len, &h) < 0) {
		err_setf(err, errlen, "too many header fields to sign");
		return -1;
	}
	for (size_t k = 0; k < ARRAY_LEN(signed_fields); k++) {
		size_t nlen = strlen(signed_fields[k]);
		for (size_t i = 0; i < h.count; i++) {
			if (!dkim_field_is(&h.fields[i], signed_fields[k], nlen))
				continue;
			if (n_names + 1 >= LIMIT_DKIM_H_TAG_FIELDS) {
				err_setf(err, errlen, "too many header fields to sign");
				goto out;
			}
			names[n_names++] = (struct name_ref){ signed_fields[k], nlen };
			has_from = has_from || k == 0;
		}
	}
	if (!has_from) { /* RFC 6376 §5.4: From is required */
		err_setf(err, errlen, "the message has no From field");
		goto out;
	}
	/* one more "from" than present: a From added later breaks the signature (§5.4.2) */
	names[n_names++] = (struct name_ref){ "from", 4 };
	dkim_body_hash(msg + h.body_off, len - h.body_off, true, UINT64_MAX, bh, NULL);

	for (size_t i = 0; i < signer->key_count; i++) {
		const struct dkim_key *key = &signer->keys[i];
		struct buf field, data, sig, b64;
		struct dkim_fold f = { .out = &field, .col = 0 };
		char tag[300];

		buf_init(&field);
		buf_init(&data);
		buf_init(&sig);
		buf_init(&b64);
		buf_append_str(&field, "DKIM-Signature:");
		f.col = field.len;
		dkim_fold_put(&f, "v=1;", 4, " ");
		snprintf(tag, sizeof(tag), "a=%s;", key->ed25519 ? "ed25519-sha256" : "rsa-sha256");
		dkim_fold_put(&f, tag, strlen(tag), " ");
		dkim_fold_put(&f, "c=relaxed/relaxed;", 18, " ");
		snprintf(tag, sizeof(tag), "d=%s;", signer->domain);
		dkim_fold_put(&f, tag, strlen(tag), " ");
		snprintf(tag, sizeof(tag), "s=%s;", key->selector);
		dkim_fold_put(&f, tag, strlen(tag), " ");
		snprintf(tag, sizeof(tag), "t=%lld;", (long long)now);
		dkim_fold_put(&f, tag, strlen(tag), " ");
		for (size_t k = 0; k < n_names; k++) {
			snprintf(tag, sizeof(tag), "%s%s%s", k == 0 ? "h=" : "", names[k].p,
				 k + 1 < n_names ? ":" : ";");
			dkim_fold_put(&f, tag, strlen(tag), k == 0 ? " " : "");
		}
		b64_encode(&b64, bh, sizeof(bh));
		buf_append_byte(&b64, ';');
		dkim_fold_put(&f, "bh=", 3, " ");
		dkim_fold_value(&f, b64.data, b64.len);
		dkim_fold_put(&f, "b=", 2, " ");

		dkim_hash_header_data(&h, names, n_names, true, field.data, field.len, &data);
		int r = dkim_sign_data(key, data.data, data.len, &sig);
		if (r == 0) {
			buf_reset(&b64);
			b64_encode(&b64, sig.data, sig.len);
			dkim_fold_value(&f, b64.data, b64.len);
			buf_append_str(&field, "\r\n");
			buf_append(header_out, field.data, field.len);
		} else {
			err_setf(err, errlen, "signing with selector %s failed", key->selector);
		}
		buf_free(&field);
		buf_free(&data);
		buf_free(&sig);
		buf_free(&b64);
		if (r < 0)
			goto out;
	}
	ret = 0;
out:
	free(h.fields);
	return ret;
}

