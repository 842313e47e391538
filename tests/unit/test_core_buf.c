/* Core runtime helpers: growable buffers (append, printf, growth, cstr, shrink), base64 against
 * the RFC 4648 §10 vectors with the strict decoder's refusals, str_to_u64 bounds and the
 * constant-time comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

/* ---- struct buf ---- */

static void test_buf_init_empty(void **state)
{
	struct buf b;

	buf_init(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	/* an empty buffer still yields a valid empty string */
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(b.len, 0);
	assert_true(b.cap >= 1);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	/* freeing twice is harmless: buf_free leaves a reusable empty buffer */
	buf_free(&b);
	assert_null(b.data);
}

static void test_buf_append(void **state)
{
	struct buf b;
	static const uint8_t bin[] = { 'x', 0, 0xff, '\n' };

	buf_init(&b);
	buf_append(&b, "abc", 3);
	buf_append(&b, "", 0);
	buf_append(&b, NULL, 0); /* zero-length appends never touch the pointer */
	buf_append_str(&b, "def");
	buf_append_byte(&b, 'g');
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "abcdefg", 7);
	buf_append(&b, bin, sizeof(bin));
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data + 7, bin, sizeof(bin));
	assert_true(b.cap > b.len);
	buf_free(&b);
}

static void test_buf_printf(void **state)
{
	struct buf b;
	char big[1000];

	buf_init(&b);
	buf_printf(&b, "%s=%d", "n", 42);
	assert_int_equal(b.len, 4);
	assert_string_equal(buf_cstr(&b), "n=42");
	buf_printf(&b, " %llu", (unsigned long long)UINT64_MAX);
	assert_string_equal(buf_cstr(&b), "n=42 18446744073709551615");
	assert_int_equal(b.len, strlen("n=42 18446744073709551615"));
	buf_printf(&b, "%s", "");
	assert_int_equal(b.len, strlen("n=42 18446744073709551615"));

	/* output far larger than the current capacity must grow the buffer first */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_printf(&b, "<%s>", big);
	assert_int_equal(b.len, sizeof(big) + 1);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[1], 'q');
	assert_int_equal(b.data[sizeof(big) - 1], 'q');
	assert_int_equal(b.data[sizeof(big)], '>');
	assert_true(b.cap > b.len);
	buf_free(&b);
}

static void test_buf_reserve_growth(void **state)
{
	struct buf b;
	size_t prev_cap;

	buf_init(&b);
	buf_reserve(&b, 0);
	assert_non_null(b.data);
	assert_int_equal(b.cap, 64); /* first allocation */
	buf_reserve(&b, 63);         /* 63 + NUL fits exactly */
	assert_int_equal(b.cap, 64);
	buf_reserve(&b, 64); /* no room for the NUL any more: doubles */
	assert_int_equal(b.cap, 128);
	buf_reserve(&b, 1000);
	assert_int_equal(b.cap, 1024);

	/* byte-at-a-time growth keeps every byte and always leaves room for the NUL */
	buf_reset(&b);
	prev_cap = b.cap;
	for (size_t i = 0; i < 5000; i++) {
		buf_append_byte(&b, (uint8_t)(i % 251));
		assert_true(b.cap > b.len);
		assert_true(b.cap >= prev_cap); /* never shrinks by itself */
		prev_cap = b.cap;
	}
	for (size_t i = 0; i < 5000; i++)
		assert_int_equal(b.data[i], i % 251);
	assert_int_equal(b.cap, 8192);

	/* reserve leaves existing content alone */
	buf_reserve(&b, 100000);
	assert_true(b.cap >= 5000 + 100000 + 1);
	assert_int_equal(b.len, 5000);
	for (size_t i = 0; i < 5000; i++)
		assert_int_equal(b.data[i], i % 251);
	buf_free(&b);
}

static void test_buf_cstr(void **state)
{
	struct buf b;
	const char *s;

	buf_init(&b);
	/* exactly fill the first allocation: cstr still has room for its NUL */
	for (int i = 0; i < 63; i++)
		buf_append_byte(&b, 'a');
	s = buf_cstr(&b);
	assert_int_equal(strlen(s), 63);
	assert_int_equal(b.len, 63);
	/* the NUL is not part of the content: appending continues where the text ended */
	buf_append_str(&b, "bc");
	s = buf_cstr(&b);
	assert_int_equal(strlen(s), 65);
	assert_int_equal(s[63], 'b');
	assert_int_equal(s[64], 'c');
	/* embedded NUL bytes are kept in len */
	buf_reset(&b);
	buf_append(&b, "a\0b", 3);
	s = buf_cstr(&b);
	assert_int_equal(b.len, 3);
	assert_memory_equal(s, "a\0b\0", 4);
	buf_free(&b);
}

static void test_buf_shrink(void **state)
{
	struct buf b;

	buf_init(&b);
	buf_shrink(&b, 0); /* empty buffer: nothing to do */
	assert_null(b.data);

	buf_reserve(&b, 10000);
	buf_append_str(&b, "keep me");
	/* content present: memory stays so nothing is lost */
	buf_shrink(&b, 64);
	assert_non_null(b.data);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "keep me", 7);

	/* empty and grown past keep: released */
	buf_reset(&b);
	buf_shrink(&b, 64);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.len, 0);

	/* empty but within keep: kept for reuse */
	buf_append_str(&b, "x");
	buf_reset(&b);
	buf_shrink(&b, 64);
	assert_non_null(b.data);
	assert_int_equal(b.cap, 64);
	/* reusable after a release */
	buf_shrink(&b, 0);
	assert_null(b.data);
	buf_append_str(&b, "again");
	assert_string_equal(buf_cstr(&b), "again");
	buf_free(&b);
}

/* ---- base64 ---- */

struct b64_vector {
	const char *raw;
	const char *enc;
};

/* RFC 4648 §10 */
static const struct b64_vector rfc4648_vectors[] = {
	{ "", "" },	    { "f", "Zg==" },	     { "fo", "Zm8=" },	       { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_b64_encode_rfc4648(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(rfc4648_vectors); i++) {
		const struct b64_vector *v = &rfc4648_vectors[i];
		struct buf out;

		buf_init(&out);
		buf_append_str(&out, ">"); /* encode appends, never overwrites */
		b64_encode(&out, (const uint8_t *)v->raw, strlen(v->raw));
		assert_int_equal(out.len, 1 + strlen(v->enc));
		assert_memory_equal(out.data + 1, v->enc, strlen(v->enc));
		assert_int_equal(b64_encoded_len(strlen(v->raw)), strlen(v->enc));
		buf_free(&out);
	}
}

static void test_b64_decode_rfc4648(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(rfc4648_vectors); i++) {
		const struct b64_vector *v = &rfc4648_vectors[i];
		struct buf out;

		buf_init(&out);
		assert_int_equal(b64_decode(&out, v->enc, strlen(v->enc)), 0);
		assert_int_equal(out.len, strlen(v->raw));
		if (out.len > 0)
			assert_memory_equal(out.data, v->raw, out.len);
		buf_free(&out);
	}
}

/* Every byte value and every length mod 3 survives a round trip; the alphabet's "+" and "/"
 * appear (0xfb 0xff -> "+/8="). */
static void test_b64_roundtrip_binary(void **state)
{
	uint8_t raw[256];
	struct buf enc;
	struct buf dec;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)i;
	for (size_t n = 0; n <= sizeof(raw); n++) {
		buf_init(&enc);
		buf_init(&dec);
		b64_encode(&enc, raw + sizeof(raw) - n, n);
		assert_int_equal(enc.len, b64_encoded_len(n));
		assert_int_equal(b64_decode(&dec, (const char *)enc.data, enc.len), 0);
		assert_int_equal(dec.len, n);
		if (n > 0)
			assert_memory_equal(dec.data, raw + sizeof(raw) - n, n);
		buf_free(&enc);
		buf_free(&dec);
	}
	buf_init(&enc);
	b64_encode(&enc, (const uint8_t *)"\xfb\xff", 2);
	assert_string_equal(buf_cstr(&enc), "+/8=");
	buf_free(&enc);
}

static void test_b64_decode_rejects(void **state)
{
	static const char *const bad[] = {
		"Zg=",	    /* wrong length */
		"Zm9",	    /* wrong length, no padding */
		"Z",	    /* wrong length */
		"Zm9vY",    /* wrong length */
		"Zm9v\n",   /* trailing newline */
		"Zm9v ",    /* trailing space */
		" Zm9v",    /* leading space */
		"Zm 9v",    /* space inside (also wrong length) */
		"Zm\r\n9v", /* line break inside */
		"Zm9\tv",   /* tab */
		"Zm9-",	    /* URL-safe alphabet is not base64 */
		"Zm9_",	    /* URL-safe alphabet is not base64 */
		"Zm9*",	    /* junk character */
		"Zm9.",	    /* junk character */
		"Z===",	    /* three padding characters */
		"====",	    /* padding only */
		"=Zg=",	    /* padding first */
		"Z=g=",	    /* padding in the second position */
		"Zg=a",	    /* data after padding in the last group */
		"Zg==Zm9v", /* padding before the last group */
		"Zm8=Zg==", /* padding before the last group */
		"Zm9vZg=",  /* wrong length with padding */
		"Zm9vZg===",
	};

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct buf out;

		buf_init(&out);
		if (b64_decode(&out, bad[i], strlen(bad[i])) != -1)
			fail_msg("b64_decode accepted \"%s\"", bad[i]);
		buf_free(&out);
	}
}

/* NUL and 8-bit bytes are invalid characters too; the length is taken from the caller. */
static void test_b64_decode_rejects_binary(void **state)
{
	static const char nul_inside[] = { 'Z', 'm', 0, 'v' };
	static const char high[] = { 'Z', 'm', (char)0xc3, (char)0xa9 };
	struct buf out;

	buf_init(&out);
	assert_int_equal(b64_decode(&out, nul_inside, sizeof(nul_inside)), -1);
	buf_reset(&out);
	assert_int_equal(b64_decode(&out, high, sizeof(high)), -1);
	buf_reset(&out);
	/* only len bytes are read: "Zm9v" followed by junk outside the range is fine */
	assert_int_equal(b64_decode(&out, "Zm9v!!", 4), 0);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "foo", 3);
	buf_free(&out);
}

/* Every strict prefix of a valid encoding of a non-multiple-of-4 length is refused, read from
 * an exact-size heap copy so a read past the end shows under ASan. */
static void test_b64_decode_prefixes(void **state)
{
	const char *enc = "Zm9vYmE=";
	size_t n = strlen(enc);

	for (size_t k = 0; k <= n; k++) {
		char *copy = xmalloc(k ? k : 1);
		struct buf out;

		memcpy(copy, enc, k);
		buf_init(&out);
		if (k % 4 != 0)
			assert_int_equal(b64_decode(&out, copy, k), -1);
		else if (k == 4)
			assert_int_equal(b64_decode(&out, copy, k), 0);
		buf_free(&out);
		free(copy);
	}
}

/* ---- str_to_u64 ---- */

static void test_str_to_u64_valid(void **state)
{
	uint64_t v = 99;

	assert_int_equal(str_to_u64("0", 1, UINT64_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(str_to_u64("12345", 5, UINT64_MAX, &v), 0);
	assert_int_equal(v, 12345);
	assert_int_equal(str_to_u64("000123", 6, UINT64_MAX, &v), 0);
	assert_int_equal(v, 123);
	/* only len bytes count */
	assert_int_equal(str_to_u64("123xyz", 3, UINT64_MAX, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(str_to_u64("18446744073709551615", 20, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

static void test_str_to_u64_max(void **state)
{
	uint64_t v = 7;

	/* overflow of 64 bits */
	assert_int_equal(str_to_u64("18446744073709551616", 20, UINT64_MAX, &v), -1);
	assert_int_equal(str_to_u64("18446744073709551620", 20, UINT64_MAX, &v), -1);
	assert_int_equal(str_to_u64("99999999999999999999", 20, UINT64_MAX, &v), -1);
	assert_int_equal(str_to_u64("184467440737095516150", 21, UINT64_MAX, &v), -1);
	assert_int_equal(v, 7); /* untouched on failure */
	/* a caller-chosen maximum is inclusive */
	assert_int_equal(str_to_u64("65535", 5, 65535, &v), 0);
	assert_int_equal(v, 65535);
	assert_int_equal(str_to_u64("65536", 5, 65535, &v), -1);
	assert_int_equal(str_to_u64("70000", 5, 65535, &v), -1);
	assert_int_equal(str_to_u64("100", 3, 100, &v), 0);
	assert_int_equal(str_to_u64("101", 3, 100, &v), -1);
	assert_int_equal(str_to_u64("110", 3, 100, &v), -1);
	assert_int_equal(str_to_u64("1000", 4, 100, &v), -1);
	assert_int_equal(str_to_u64("9223372036854775807", 19, INT64_MAX, &v), 0);
	assert_true(v == (uint64_t)INT64_MAX);
	assert_int_equal(str_to_u64("9223372036854775808", 19, INT64_MAX, &v), -1);
	/* leading zeros never count towards overflow */
	assert_int_equal(str_to_u64("000000000000000000000065535", 27, 65535, &v), 0);
	assert_int_equal(v, 65535);
	assert_int_equal(str_to_u64("10", 2, 10, &v), 0);
	assert_int_equal(str_to_u64("11", 2, 10, &v), -1);
	assert_int_equal(str_to_u64("9", 1, 9, &v), 0);
	assert_int_equal(str_to_u64("9", 1, 10, &v), 0);
}

static void test_str_to_u64_junk(void **state)
{
	static const char *const junk[] = { "",	   "-1", "+1",	"1 ", " 1", "1a", "a1",
					    "0x10", "1.5", "1e3", "１", "1,000" };
	uint64_t v = 7;

	for (size_t i = 0; i < ARRAY_LEN(junk); i++) {
		if (str_to_u64(junk[i], strlen(junk[i]), UINT64_MAX, &v) != -1)
			fail_msg("str_to_u64 accepted \"%s\"", junk[i]);
	}
	assert_int_equal(str_to_u64("123", 0, UINT64_MAX, &v), -1); /* empty by length */
	assert_int_equal(str_to_u64("1\0002", 3, UINT64_MAX, &v), -1);
	assert_int_equal(v, 7);
}

/* A maximum below 9 must still bound single digits: "7" with max 5 is out of range. */
static void test_bug_str_to_u64_max_below_digit(void **state)
{
	uint64_t v = 0;

	assert_int_equal(str_to_u64("0", 1, 0, &v), 0);
	assert_int_equal(str_to_u64("5", 1, 5, &v), 0);
	assert_int_equal(str_to_u64("7", 1, 5, &v), -1);
	assert_int_equal(str_to_u64("1", 1, 0, &v), -1);
	assert_int_equal(str_to_u64("19", 2, 5, &v), -1);
}

/* ---- mem_equal_ct ---- */

static void test_mem_equal_ct(void **state)
{
	uint8_t a[64];
	uint8_t b[64];

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7);
	assert_true(mem_equal_ct(a, b, sizeof(a)));
	assert_true(mem_equal_ct(a, b, 0));
	assert_true(mem_equal_ct("", "x", 0));
	/* a difference in any single bit of any byte is seen */
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			assert_false(mem_equal_ct(a, b, sizeof(a)));
			/* and only within the given length */
			assert_true(mem_equal_ct(a, b, i));
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_true(mem_equal_ct(a, b, sizeof(a)));
	assert_false(mem_equal_ct("secret", "secreT", 6));
	assert_true(mem_equal_ct("a\0b", "a\0b", 3));
	assert_false(mem_equal_ct("a\0b", "a\0c", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_init_empty),
		cmocka_unit_test(test_buf_append),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_buf_reserve_growth),
		cmocka_unit_test(test_buf_cstr),
		cmocka_unit_test(test_buf_shrink),
		cmocka_unit_test(test_b64_encode_rfc4648),
		cmocka_unit_test(test_b64_decode_rfc4648),
		cmocka_unit_test(test_b64_roundtrip_binary),
		cmocka_unit_test(test_b64_decode_rejects),
		cmocka_unit_test(test_b64_decode_rejects_binary),
		cmocka_unit_test(test_b64_decode_prefixes),
		cmocka_unit_test(test_str_to_u64_valid),
		cmocka_unit_test(test_str_to_u64_max),
		cmocka_unit_test(test_str_to_u64_junk),
		cmocka_unit_test(test_mem_equal_ct),
		cmocka_unit_test(test_bug_str_to_u64_max_below_digit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
