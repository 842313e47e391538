/* Modified UTF-7 mailbox names (RFC 3501 §5.1.3, RFC 9051 Appendix A) to and from the store's
 * UTF-8 names. Decoding is strict, as the RFC asks servers to be: no superfluous shifts, no
 * encoded printable US-ASCII, no unterminated or padded-with-garbage base64, valid UTF-16. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

static const char mutf7_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int mutf7_b64_value(uint8_t c)
{
	const char *p = c != 0 ? strchr(mutf7_b64, c) : NULL;

	return p ? (int)(p - mutf7_b64) : -1;
}

static void utf8_put(struct buf *out, uint32_t cp)
{
	if (cp < 0x80) {
		buf_append_byte(out, (uint8_t)cp);
	} else if (cp < 0x800) {
		buf_append_byte(out, (uint8_t)(0xc0 | (cp >> 6)));
		buf_append_byte(out, (uint8_t)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_append_byte(out, (uint8_t)(0xe0 | (cp >> 12)));
		buf_append_byte(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_byte(out, (uint8_t)(0x80 | (cp & 0x3f)));
	} else {
		buf_append_byte(out, (uint8_t)(0xf0 | (cp >> 18)));
		buf_append_byte(out, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
		buf_append_byte(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_byte(out, (uint8_t)(0x80 | (cp & 0x3f)));
	}
}

int imap_mutf7_to_utf8(const uint8_t *in, size_t len, struct buf *out)
{
	size_t i = 0;
	bool after_shift = false;

	while (i < len) {
		uint8_t c = in[i];

		if (c < 0x20 || c > 0x7e)
			return -1; /* only printable US-ASCII travels unencoded */
		if (c != '&') {
			buf_append_byte(out, c);
			after_shift = false;
			i++;
			continue;
		}
		/* Two shift sequences back to back could have been one: superfluous. */
		if (after_shift)
			return -1;
		i++;
		if (i < len && in[i] == '-') {
			buf_append_byte(out, '&');
			i++;
			after_shift = true;
			continue;
		}
		uint32_t bits = 0;
		unsigned nbits = 0;
		uint32_t high = 0; /* pending high surrogate */
		size_t units = 0;

		while (i < len && in[i] != '-') {
			int v = mutf7_b64_value(in[i]);
			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits >= 16) {
				uint32_t u = (bits >> (nbits - 16)) & 0xffff;
				nbits -= 16;
				bits &= (1u << nbits) - 1;
				units++;
				if (high != 0) {
					if (u < 0xdc00 || u > 0xdfff)
						return -1;
					utf8_put(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
					high = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					return -1;
				} else {
					/* RFC 3501 §5.1.3: printable US-ASCII must not be encoded. */
					if (u >= 0x20 && u <= 0x7e)
						return -1;
					if (u == 0)
						return -1;
					utf8_put(out, u);
				}
			}
			i++;
		}
		if (i >= len)
			return -1; /* unterminated shift */
		/* Leftover bits must be fewer than a base64 digit and all zero; a surrogate
		 * must be completed; an empty "&-" was handled above. */
		if (units == 0 || high != 0 || nbits >= 6 || bits != 0)
			return -1;
		i++; /* '-' */
		after_shift = true;
	}
	return 0;
}

static void mutf7_flush(struct buf *out, const uint16_t *units, size_t n)
{
	uint32_t bits = 0;
	unsigned nbits = 0;

	buf_append_byte(out, '&');
	for (size_t i = 0; i < n; i++) {
		bits = (bits << 16) | units[i];
		nbits += 16;
		while (nbits >= 6) {
			buf_append_byte(out, (uint8_t)mutf7_b64[(bits >> (nbits - 6)) & 0x3f]);
			nbits -= 6;
		}
		bits &= (1u << nbits) - 1;
	}
	if (nbits > 0)
		buf_append_byte(out, (uint8_t)mutf7_b64[(bits << (6 - nbits)) & 0x3f]);
	buf_append_byte(out, '-');
}

/* Decodes one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t utf8_get(const uint8_t *s, size_t len, uint32_t *cp_r)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		cp = s[0] & 0x1f;
		n = 2;
	} else if ((s[0] & 0xf0) == 0xe0) {
		cp = s[0] & 0x0f;
		n = 3;
	} else if ((s[0] & 0xf8) == 0xf0) {
		cp = s[0] & 0x07;
		n = 4;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

bool imap_utf8_valid(const uint8_t *s, size_t len)
{
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_get(s + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

int imap_utf8_to_mutf7(const char *name, struct buf *out)
{
	const uint8_t *s = (const uint8_t *)name;
	size_t len = strlen(name);
	uint16_t *units = xmalloc((len + 1) * 2 * sizeof(uint16_t)); /* <= 2 units per byte */
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = utf8_get(s + i, len - i, &cp);

		if (k == 0) {
			rc = -1;
			break;
		}
		i += k;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (n > 0) {
				mutf7_flush(out, units, n);
				n = 0;
			}
			if (cp == '&')
				buf_append_str(out, "&-");
			else
				buf_append_byte(out, (uint8_t)cp);
			continue;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			units[n++] = (uint16_t)(0xd800 + (cp >> 10));
			units[n++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else {
			units[n++] = (uint16_t)cp;
		}
	}
	if (rc == 0 && n > 0)
		mutf7_flush(out, units, n);
	free(units);
	return rc;
}
