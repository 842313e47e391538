/* Content decoding for SEARCH and BINARY: transfer encodings, conversion of text parts to UTF-8,
 * and the case-folded substring match SEARCH uses. */
#include <string.h>

#include "mime_private.h"

/* RFC 2045 §6.7: =XX escapes, soft line breaks ("=" at the end of a line), trailing
 * whitespace on a line removed. Malformed escapes are kept literally. */
void mime_decode_qp(const uint8_t *in, size_t len, struct buf *out)
{
	size_t i = 0;

	if (len == 0)
		return;
	while (i < len) {
		const uint8_t *nl = memchr(in + i, '\n', len - i);
		size_t lend = nl ? (size_t)(nl - in) : len; /* index of LF or len */
		size_t end = lend;

		if (end > i && in[end - 1] == '\r')
			end--;
		while (end > i && mime_is_wsp(in[end - 1]))
			end--;
		bool soft = false;
		for (size_t j = i; j < end; j++) {
			int h, l;
			if (in[j] != '=') {
				buf_append_byte(out, in[j]);
			} else if (j + 1 == end) {
				soft = true;
			} else if (j + 2 < end && (h = hex_digit_value(in[j + 1])) >= 0 &&
				   (l = hex_digit_value(in[j + 2])) >= 0) {
				buf_append_byte(out, (uint8_t)(h * 16 + l));
				j += 2;
			} else {
				buf_append_byte(out, '=');
			}
		}
		if (nl == NULL)
			break;
		if (!soft) {
			if (lend > i && in[lend - 1] == '\r')
				buf_append_byte(out, '\r');
			buf_append_byte(out, '\n');
		}
		i = lend + 1;
	}
}

int mime_decode_body(const struct mime_message *msg, const struct mime_part *part,
		     struct buf *out)
{
	const uint8_t *body = msg->data + part->body_offset;
	const char *e = part->encoding;

	if (strcmp(e, "base64") == 0)
		mime_decode_base64(body, part->body_size, out);
	else if (strcmp(e, "quoted-printable") == 0)
		mime_decode_qp(body, part->body_size, out);
	else if (strcmp(e, "7bit") == 0 || strcmp(e, "8bit") == 0 || strcmp(e, "binary") == 0)
		buf_append(out, body, part->body_size);
	else
		return -1;
	return 0;
}

int mime_part_text_utf8(const struct mime_message *msg, const struct mime_part *part,
			struct buf *out)
{
	struct buf raw;
	const char *charset = NULL;

	buf_init(&raw);
	if (mime_decode_body(msg, part, &raw) < 0) {
		buf_free(&raw);
		return -1;
	}
	for (size_t i = 0; i < part->param_count; i++) {
		if (strcmp(part->params[i].name, "charset") == 0)
			charset = part->params[i].value;
	}
	if (charset == NULL || mime_charset_to_utf8(charset, raw.data, raw.len, out) < 0)
		mime_charset_to_utf8("utf-8", raw.data, raw.len, out);
	buf_free(&raw);
	return 0;
}

/* Simple case folding (Unicode CaseFolding.txt status C+S) for the ranges we cover. */
static uint32_t fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c == 0xb5)
		return 0x3bc;
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 0x20;
	if (c >= 0x100 && c <= 0x17f) {
		if ((c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177))
			return c | 1;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return (c & 1) ? c + 1 : c;
		if (c == 0x178)
			return 0xff;
		if (c == 0x17f)
			return 's';
		return c;
	}
	if (c >= 0x370 && c <= 0x3ff) {
		if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab))
			return c + 0x20;
		if (c == 0x386)
			return 0x3ac;
		if (c >= 0x388 && c <= 0x38a)
			return c + 0x25;
		if (c == 0x38c)
			return 0x3cc;
		if (c == 0x38e || c == 0x38f)
			return c + 0x3f;
		if (c == 0x3c2)
			return 0x3c3;
		return c;
	}
	if (c >= 0x400 && c <= 0x52f) {
		if (c <= 0x40f)
			return c + 0x50;
		if (c <= 0x42f)
			return c + 0x20;
		if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) ||
		    (c >= 0x4d0 && c <= 0x52f))
			return c | 1;
		if (c == 0x4c0)
			return 0x4cf;
		if (c >= 0x4c1 && c <= 0x4ce)
			return (c & 1) ? c + 1 : c;
	}
	return c;
}

static void put_utf8(struct buf *out, uint32_t c)
{
	uint8_t b[4];

	if (c < 0x80) {
		buf_append_byte(out, (uint8_t)c);
		return;
	}
	if (c < 0x800) {
		b[0] = (uint8_t)(0xc0 | (c >> 6));
		b[1] = (uint8_t)(0x80 | (c & 0x3f));
		buf_append(out, b, 2);
		return;
	}
	b[0] = (uint8_t)(0xe0 | (c >> 12));
	b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
	b[2] = (uint8_t)(0x80 | (c & 0x3f));
	buf_append(out, b, 3);
}

void mime_fold_utf8(const char *s, size_t len, struct buf *out)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0;

	if (len == 0)
		return;
	buf_reserve(out, len);
	while (i < len) {
		uint8_t c = u[i];
		if (c < 0x80) {
			buf_append_byte(out, (uint8_t)fold_cp(c));
			i++;
		} else if (c >= 0xc2 && c <= 0xdf && i + 1 < len && (u[i + 1] & 0xc0) == 0x80) {
			/* Every folded range lies in two-byte UTF-8; fold and re-encode. */
			uint32_t cp = ((uint32_t)(c & 0x1f) << 6) | (u[i + 1] & 0x3f);
			put_utf8(out, fold_cp(cp));
			i += 2;
		} else {
			buf_append_byte(out, c);
			i++;
		}
	}
}

bool mime_text_contains(const char *haystack, size_t len, const char *needle)
{
	struct buf h, n;
	bool found;

	if (needle[0] == '\0')
		return true;
	if (len == 0)
		return false;
	buf_init(&h);
	buf_init(&n);
	mime_fold_utf8(haystack, len, &h);
	mime_fold_utf8(needle, strlen(needle), &n);
	found = h.len >= n.len && memmem(h.data, h.len, n.data, n.len) != NULL;
	buf_free(&h);
	buf_free(&n);
	return found;
}
