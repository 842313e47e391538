/* Base64 as RFC 4648 §4 defines it. Decoding is strict because SASL (RFC 4954, RFC 9051 §6.2.2)
 * requires invalid encodings to be rejected rather than guessed at. */
#include <string.h>

#include "core.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encoded_len(size_t raw_len)
{
	return (raw_len + 2) / 3 * 4;
}

void b64_encode(struct buf *out, const uint8_t *data, size_t len)
{
	size_t i;

	buf_reserve(out, b64_encoded_len(len));
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
		buf_append_byte(out, (uint8_t)b64_alphabet[v >> 18 & 63]);
		buf_append_byte(out, (uint8_t)b64_alphabet[v >> 12 & 63]);
		buf_append_byte(out, (uint8_t)b64_alphabet[v >> 6 & 63]);
		buf_append_byte(out, (uint8_t)b64_alphabet[v & 63]);
	}
	if (i < len) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		buf_append_byte(out, (uint8_t)b64_alphabet[v >> 18 & 63]);
		buf_append_byte(out, (uint8_t)b64_alphabet[v >> 12 & 63]);
		buf_append_byte(out, i + 1 < len ? (uint8_t)b64_alphabet[v >> 6 & 63] : '=');
		buf_append_byte(out, '=');
	}
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int b64_decode(struct buf *out, const char *text, size_t len)
{
	size_t i;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char c = text[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0) /* data after padding */
				return -1;
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t n = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		buf_append_byte(out, (uint8_t)(n >> 16));
		if (pad < 2)
			buf_append_byte(out, (uint8_t)(n >> 8 & 0xff));
		if (pad < 1)
			buf_append_byte(out, (uint8_t)(n & 0xff));
	}
	return 0;
}
