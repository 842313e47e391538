/* Charset conversion to UTF-8 through glibc iconv, and RFC 2047 encoded-word decoding built on
 * it. Invalid input never fails a conversion: bad sequences become U+FFFD. */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "mime_private.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Length of a valid UTF-8 sequence at s (at most len bytes), 0 when invalid. */
static size_t utf8_seq_len(const uint8_t *s, size_t len)
{
	uint8_t c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

static void utf8_sanitize(const uint8_t *in, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq_len(in + i, len - i);
		if (n == 0) {
			buf_append(out, replacement, 3);
			i++;
		} else {
			buf_append(out, in + i, n);
			i += n;
		}
	}
}

static bool charset_is_utf8_compatible(const char *cs)
{
	return str_ieq(cs, "utf-8") || str_ieq(cs, "utf8") || str_ieq(cs, "us-ascii") ||
	       str_ieq(cs, "ascii") || str_ieq(cs, "ansi_x3.4-1968") || str_ieq(cs, "x-unknown") ||
	       str_ieq(cs, "unknown-8bit");
}

int mime_charset_to_utf8(const char *charset, const uint8_t *in, size_t len, struct buf *out)
{
	char name[64];
	size_t n = 0;
	iconv_t cd;
	char *inp;
	size_t inleft = len;
	static const uint8_t empty[1];

	if (in == NULL)
		in = empty; /* len is 0: keep pointer arithmetic defined */
	inp = (char *)in;

	/* RFC 2231 §5 allows "charset*language" in encoded-words. */
	while (charset[n] != '\0' && charset[n] != '*' && n < sizeof(name) - 1) {
		name[n] = charset[n];
		n++;
	}
	name[n] = '\0';
	if (n == 0 || (charset[n] != '\0' && charset[n] != '*'))
		return -1;
	if (charset_is_utf8_compatible(name)) {
		utf8_sanitize(in, len, out);
		return 0;
	}
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return -1;
	while (inleft > 0) {
		char tmp[1024];
		char *outp = tmp;
		size_t outleft = sizeof(tmp);
		size_t r = iconv(cd, &inp, &inleft, &outp, &outleft);

		buf_append(out, tmp, sizeof(tmp) - outleft);
		if (r != (size_t)-1)
			continue;
		if (errno == E2BIG)
			continue;
		/* EILSEQ or a truncated sequence at the end: mark it and resynchronise. */
		buf_append(out, replacement, 3);
		inp++;
		inleft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* Flush any shift state (ISO-2022-JP). */
	{
		char tmp[64];
		char *outp = tmp;
		size_t outleft = sizeof(tmp);
		iconv(cd, NULL, NULL, &outp, &outleft);
		buf_append(out, tmp, sizeof(tmp) - outleft);
	}
	iconv_close(cd);
	return 0;
}

/* Lenient base64 into out: characters outside the alphabet are skipped. */
void mime_decode_base64(const uint8_t *in, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		int v;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_append_byte(out, (uint8_t)(acc >> bits));
			acc &= (1u << bits) - 1;
		}
	}
}

/* RFC 2047 §4.2: Q encoding. */
static void decode_q(const char *s, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		int h, l;
		if (s[i] == '_') {
			buf_append_byte(out, ' ');
		} else if (s[i] == '=' && i + 2 < len &&
			   (h = hex_digit_value((unsigned char)s[i + 1])) >= 0 &&
			   (l = hex_digit_value((unsigned char)s[i + 2])) >= 0) {
			buf_append_byte(out, (uint8_t)(h * 16 + l));
			i += 2;
		} else {
			buf_append_byte(out, (uint8_t)s[i]);
		}
	}
}

struct ew {
	size_t start, end;       /* the whole =?...?= */
	size_t cs_start, cs_len; /* charset */
	char enc;
	size_t text_start, text_len;
};

/* Parses an encoded-word at s[i] ("=?charset?X?text?="). *no_end is where an earlier scan
 * found that no "?=" terminator follows: candidates whose text starts before it fail at once,
 * which keeps a header full of unterminated "=?" linear. */
static bool parse_ew(const char *s, size_t len, size_t i, struct ew *w, size_t *no_end)
{
	size_t j;

	if (i + 1 >= len || s[i] != '=' || s[i + 1] != '?')
		return false;
	w->start = i;
	w->cs_start = i + 2;
	for (j = w->cs_start; j < len && s[j] != '?'; j++) {
		if ((unsigned char)s[j] <= 32 || (unsigned char)s[j] >= 127)
			return false;
	}
	if (j >= len || j == w->cs_start || j - w->cs_start > 60)
		return false;
	w->cs_len = j - w->cs_start;
	if (j + 2 >= len || s[j + 2] != '?')
		return false;
	w->enc = (char)mime_upper((unsigned char)s[j + 1]);
	if (w->enc != 'B' && w->enc != 'Q')
		return false;
	w->text_start = j + 3;
	if (w->text_start < *no_end)
		return false;
	for (j = w->text_start; j + 1 < len; j++) {
		if (s[j] == '?' && s[j + 1] == '=')
			break;
		if ((unsigned char)s[j] <= 32) {
			*no_end = j;
			return false;
		}
	}
	if (j + 1 >= len) {
		*no_end = len;
		return false;
	}
	w->text_len = j - w->text_start;
	w->end = j + 2;
	return true;
}

struct ew_run {
	char charset[64];
	struct buf bytes;
	size_t raw_start, raw_end;
	bool active;
};

static void run_flush(struct ew_run *r, const char *s, struct buf *out)
{
	if (!r->active)
		return;
	if (mime_charset_to_utf8(r->charset, r->bytes.data, r->bytes.len, out) < 0)
		buf_append(out, s + r->raw_start, r->raw_end - r->raw_start);
	buf_reset(&r->bytes);
	r->active = false;
}

void mime_decode_words(const char *s, size_t len, struct buf *out)
{
	struct ew_run run = { .active = false };
	size_t i = 0;
	size_t plain_start = 0;
	size_t no_end = 0;

	if (len == 0)
		return; /* s may be NULL (an empty buffer) */
	buf_init(&run.bytes);
	while (i < len) {
		struct ew w;
		if (!parse_ew(s, len, i, &w, &no_end)) {
			i++;
			continue;
		}
		/* Text between words: dropped when only whitespace separates two words. */
		bool only_ws = true;
		for (size_t k = plain_start; k < i; k++) {
			if (!mime_is_space((unsigned char)s[k]))
				only_ws = false;
		}
		bool same = run.active && only_ws && w.cs_len < sizeof(run.charset) &&
			    strlen(run.charset) == w.cs_len &&
			    str_nieq(run.charset, s + w.cs_start, w.cs_len);
		if (!same) {
			run_flush(&run, s, out);
			if (!(only_ws && plain_start > 0 && plain_start == run.raw_end))
				buf_append(out, s + plain_start, i - plain_start);
			run.active = true;
			memcpy(run.charset, s + w.cs_start, w.cs_len);
			run.charset[w.cs_len] = '\0';
			run.raw_start = w.start;
		}
		if (w.enc == 'B')
			mime_decode_base64((const uint8_t *)s + w.text_start, w.text_len, &run.bytes);
		else
			decode_q(s + w.text_start, w.text_len, &run.bytes);
		run.raw_end = w.end;
		i = plain_start = w.end;
	}
	run_flush(&run, s, out);
	buf_append(out, s + plain_start, len - plain_start);
	buf_free(&run.bytes);
}
