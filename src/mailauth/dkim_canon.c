/* DKIM canonicalisation (RFC 6376 §3.4), the split of a header block into fields, and the
 * hashes built from them: the header data a signature covers (§3.7) and the body hash with its
 * optional l= limit. Shared by signing and verification so that both feed the same octets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dkim_internal.h"

/* ---- canonicalisation (RFC 6376 §3.4) ---- */

typedef void (*canon_sink_fn)(void *ctx, const uint8_t *p, size_t n);

static void sink_buf(void *ctx, const uint8_t *p, size_t n)
{
	buf_append(ctx, p, n);
}

/* Collects small pieces into a stack array so the hash sees few large updates. */
struct batch {
	uint8_t data[4096];
	size_t len;
	canon_sink_fn sink;
	void *ctx;
};

static void batch_put(struct batch *b, const uint8_t *p, size_t n)
{
	if (b->len + n > sizeof(b->data)) {
		b->sink(b->ctx, b->data, b->len);
		b->len = 0;
		if (n > sizeof(b->data)) {
			b->sink(b->ctx, p, n);
			return;
		}
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void batch_flush(struct batch *b)
{
	if (b->len > 0)
		b->sink(b->ctx, b->data, b->len);
	b->len = 0;
}

/* RFC 6376 §3.4.3 (simple) and §3.4.4 (relaxed). A bare LF ends a line as CRLF does, because
 * the message goes out with CRLF line ends and the hash must match what the receiver sees. */
static void canon_body(const uint8_t *b, size_t len, bool relaxed, canon_sink_fn sink, void *ctx)
{
	struct batch out = { .len = 0, .sink = sink, .ctx = ctx };
	size_t empties = 0, pos = 0;
	bool emitted = false;

	while (pos < len) {
		size_t start = pos;
		const uint8_t *nl = memchr(b + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - b) : len;

		pos = nl != NULL ? end + 1 : len;
		if (nl != NULL && end > start && b[end - 1] == '\r')
			end--;
		if (relaxed)
			while (end > start && dkim_is_wsp(b[end - 1]))
				end--;
		if (end == start) {
			empties++;
			continue;
		}
		for (; empties > 0; empties--)
			batch_put(&out, (const uint8_t *)"\r\n", 2);
		if (!relaxed) {
			batch_put(&out, b + start, end - start);
		} else {
			size_t i = start;
			while (i < end) {
				size_t run = i;
				while (run < end && !dkim_is_wsp(b[run]))
					run++;
				batch_put(&out, b + i, run - i);
				if (run == end)
					break;
				batch_put(&out, (const uint8_t *)" ", 1);
				while (run < end && dkim_is_wsp(b[run]))
					run++;
				i = run;
			}
		}
		batch_put(&out, (const uint8_t *)"\r\n", 2);
		emitted = true;
	}
	if (!relaxed && !emitted) /* §3.4.3: an empty body is one CRLF */
		batch_put(&out, (const uint8_t *)"\r\n", 2);
	batch_flush(&out);
}

void dkim_canon_body_relaxed(const uint8_t *body, size_t len, struct buf *out)
{
	canon_body(body, len, true, sink_buf, out);
}

void dkim_canon_body_simple(const uint8_t *body, size_t len, struct buf *out)
{
	canon_body(body, len, false, sink_buf, out);
}

/* RFC 6376 §3.4.2. CR and LF inside a field only occur at fold points, where they are followed
 * by WSP, so treating them as WSP is the same as unfolding first. */
static void canon_header_relaxed(const uint8_t *p, size_t len, struct buf *out)
{
	const uint8_t *colon = memchr(p, ':', len);
	size_t name_end = colon != NULL ? (size_t)(colon - p) : len;
	size_t i;
	bool space = false, started = false;

	while (name_end > 0 && dkim_is_fws(p[name_end - 1]))
		name_end--;
	for (i = 0; i < name_end; i++) {
		uint8_t c = p[i];
		buf_append_byte(out, c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c);
	}
	buf_append_byte(out, ':');
	for (i = colon != NULL ? (size_t)(colon - p) + 1 : len; i < len; i++) {
		if (dkim_is_fws(p[i])) {
			space = started;
			continue;
		}
		if (space)
			buf_append_byte(out, ' ');
		space = false;
		started = true;
		buf_append_byte(out, p[i]);
	}
	buf_append(out, "\r\n", 2);
}

void dkim_canon_header_relaxed(const uint8_t *field, size_t len, struct buf *out)
{
	canon_header_relaxed(field, len, out);
}

void dkim_canon_header(const uint8_t *p, size_t len, bool relaxed, struct buf *out)
{
	if (relaxed) {
		canon_header_relaxed(p, len, out);
	} else {
		buf_append(out, p, len);
		buf_append(out, "\r\n", 2);
	}
}

/* ---- header block ---- */

/* Splits the header block into fields; body_off is where the body starts (len when the message
 * has no empty line). -1 when there are more than LIMIT_DKIM_HEADER_FIELDS fields. */
int dkim_header_parse(const uint8_t *msg, size_t len, struct dkim_header *h)
{
	size_t pos = 0, cap = 0;

	h->fields = NULL;
	h->count = 0;
	h->body_off = len;
	while (pos < len) {
		const uint8_t *nl = memchr(msg + pos, '\n', len - pos);
		size_t next = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		size_t end = nl != NULL ? (size_t)(nl - msg) : len;

		if (nl != NULL && end > pos && msg[end - 1] == '\r')
			end--;
		if (end == pos && nl != NULL) {
			h->body_off = next;
			return 0;
		}
		if (dkim_is_wsp(msg[pos]) && h->count > 0) {
			struct dkim_field *f = &h->fields[h->count - 1];
			f->len = end - (size_t)(f->p - msg);
		} else {
			if (h->count == LIMIT_DKIM_HEADER_FIELDS) {
				free(h->fields);
				h->fields = NULL;
				return -1;
			}
			if (h->count == cap) {
				cap = cap == 0 ? 32 : cap * 2;
				h->fields = xrealloc(h->fields, cap * sizeof(*h->fields));
			}
			struct dkim_field *f = &h->fields[h->count++];
			const uint8_t *colon = memchr(msg + pos, ':', end - pos);
			f->p = msg + pos;
			f->len = end - pos;
			f->used = false;
			f->name_len = colon != NULL ? (size_t)(colon - (msg + pos)) : 0;
			while (f->name_len > 0 && dkim_is_wsp(f->p[f->name_len - 1]))
				f->name_len--;
		}
		pos = next;
	}
	return 0;
}

bool dkim_field_is(const struct dkim_field *f, const char *name, size_t name_len)
{
	return f->name_len == name_len && name_len > 0 &&
	       str_nieq((const char *)f->p, name, name_len);
}

/* RFC 6376 §3.7 step 2 and §5.4.2: each name in h= takes the bottom-most instance not yet taken;
 * a name with no instance left contributes nothing. sig is the signature field with b= emptied. */
void dkim_hash_header_data(struct dkim_header *h, const struct name_ref *names, size_t n,
			     bool relaxed, const uint8_t *sig, size_t sig_len, struct buf *out)
{
	for (size_t i = 0; i < h->count; i++)
		h->fields[i].used = false;
	for (size_t k = 0; k < n; k++) {
		for (size_t i = h->count; i-- > 0;) {
			struct dkim_field *f = &h->fields[i];
			if (f->used || !dkim_field_is(f, names[k].p, names[k].len))
				continue;
			f->used = true;
			dkim_canon_header(f->p, f->len, relaxed, out);
			break;
		}
	}
	dkim_canon_header(sig, sig_len, relaxed, out);
	out->len -= 2; /* §3.7: the signature field goes in without its trailing CRLF */
}

/* ---- hashing and public-key operations ---- */

struct limited_sink {
	EVP_MD_CTX *md;
	uint64_t left; /* l= remainder, UINT64_MAX for no limit */
	uint64_t total;
};

static void sink_limited(void *ctx, const uint8_t *p, size_t n)
{
	struct limited_sink *s = ctx;
	size_t take = n;

	s->total += n;
	if (s->left != UINT64_MAX) {
		if (take > s->left)
			take = (size_t)s->left;
		s->left -= take;
	}
	if (take > 0)
		EVP_DigestUpdate(s->md, p, take);
}

/* Body hash (SHA-256) of the canonical body truncated to limit octets (UINT64_MAX: whole).
 * Returns -1 when the canonical body is shorter than limit (§6.1.3 treats that as invalid). */
int dkim_body_hash(const uint8_t *body, size_t len, bool relaxed, uint64_t limit,
		   uint8_t hash_r[32], uint64_t *total_r)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct limited_sink s = { .md = md, .left = limit, .total = 0 };
	unsigned int out_len = 0;

	if (md == NULL)
		abort();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	canon_body(body, len, relaxed, sink_limited, &s);
	EVP_DigestFinal_ex(md, hash_r, &out_len);
	EVP_MD_CTX_free(md);
	if (total_r != NULL)
		*total_r = s.total;
	return limit != UINT64_MAX && s.total < limit ? -1 : 0;
}
