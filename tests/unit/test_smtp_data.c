/* The DATA decoder (smtp/data.c): only <CRLF>.<CRLF> ends the data, every SMTP smuggling
 * sequence (a lone LF or CR in place of a CRLF around the dot) is plain (flagged) content, bare CR/LF come out as CRLF, dots are
 * un-stuffed; and feeding the input in one piece or one byte at a time gives the same result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "smtp/data.h"

struct result {
	struct buf out;
	size_t consumed;
	bool done;
	bool bare;
};

/* Feeds in pieces of `step` bytes (0: all at once), stopping at the end of the data as the
 * session does; what follows the end is left unconsumed. */
static void decode(const char *in, size_t len, size_t step, struct result *r)
{
	struct smtp_data_decoder d;

	smtp_data_init(&d);
	buf_init(&r->out);
	r->consumed = 0;
	while (r->consumed < len && !d.done) {
		size_t n = step == 0 ? len - r->consumed : step;
		if (n > len - r->consumed)
			n = len - r->consumed;
		size_t used = smtp_data_feed(&d, (const uint8_t *)in + r->consumed, n, &r->out);
		assert_true(used <= n);
		if (!d.done)
			assert_int_equal(used, n); /* without the end, everything is message */
		r->consumed += used;
	}
	r->done = d.done;
	r->bare = d.bare_line_ends;
	assert_int_equal(d.bytes_out, r->out.len);
}

static void assert_crlf_only(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\r')
			assert_true(i + 1 < b->len && b->data[i + 1] == '\n');
		if (b->data[i] == '\n')
			assert_true(i > 0 && b->data[i - 1] == '\r');
	}
}

/* Decodes whole, in 1-byte and in 2- and 3-byte steps, checks they agree, returns the whole. */
static void decode_all_ways(const char *in, size_t len, struct result *whole)
{
	static const size_t steps[] = { 1, 2, 3, 7 };

	decode(in, len, 0, whole);
	assert_crlf_only(&whole->out);
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		struct result r;
		decode(in, len, steps[i], &r);
		assert_int_equal(r.consumed, whole->consumed);
		assert_int_equal(r.done, whole->done);
		assert_int_equal(r.bare, whole->bare);
		assert_int_equal(r.out.len, whole->out.len);
		assert_memory_equal(r.out.data, whole->out.data, r.out.len);
		buf_free(&r.out);
	}
}

static void expect(const char *in, size_t len, bool done, size_t consumed, bool bare,
		   const char *out, size_t out_len)
{
	struct result r;

	decode_all_ways(in, len, &r);
	assert_int_equal(r.done, done);
	assert_int_equal(r.consumed, consumed);
	assert_int_equal(r.bare, bare);
	assert_int_equal(r.out.len, out_len);
	assert_memory_equal(r.out.data, out, out_len);
	buf_free(&r.out);
}

#define S(lit) lit, sizeof(lit) - 1

static void test_plain_message(void **state)
{
	expect(S("Subject: x\r\n\r\nbody\r\n.\r\n"), true, 23, false, S("Subject: x\r\n\r\nbody\r\n"));
}

static void test_empty_message(void **state)
{
	expect(S(".\r\n"), true, 3, false, "", 0);
	/* the rest belongs to the next command */
	expect(S(".\r\nQUIT\r\n"), true, 3, false, "", 0);
}

static void test_dot_unstuffing(void **state)
{
	expect(S("..\r\n...x\r\n.y\r\nz.\r\n. \r\n.\r\n"), true, 25, false,
	       S(".\r\n..x\r\ny\r\nz.\r\n \r\n"));
	/* a dot that is not at a line start stays */
	expect(S("a.b\r\n.\r\n"), true, 8, false, S("a.b\r\n"));
}

static void test_end_split_across_feeds(void **state)
{
	struct smtp_data_decoder d;
	struct buf out;
	const char *parts[] = { "abc\r", "\n", ".", "\r", "\nNEXT" };
	size_t used;

	smtp_data_init(&d);
	buf_init(&out);
	for (size_t i = 0; i < 4; i++) {
		used = smtp_data_feed(&d, (const uint8_t *)parts[i], strlen(parts[i]), &out);
		assert_int_equal(used, strlen(parts[i]));
		assert_false(d.done);
	}
	used = smtp_data_feed(&d, (const uint8_t *)parts[4], 5, &out);
	assert_int_equal(used, 1);
	assert_true(d.done);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.data, "abc\r\n", 5);
	/* done: nothing more is taken */
	assert_int_equal(smtp_data_feed(&d, (const uint8_t *)"x", 1, &out), 0);
	buf_free(&out);
}

static void test_trailing_commands_untouched(void **state)
{
	expect(S("hi\r\n.\r\nMAIL FROM:<a@b>\r\n"), true, 7, false, S("hi\r\n"));
}

/* Every smuggling sequence, followed by a smuggled transaction. None ends the data; the
 * only end is the final real CRLF.CRLF, and a bare CR or LF is flagged. */
static void test_smuggling_sequences(void **state)
{
	static const char *const seqs[] = { "\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n",
					    "\r\n.\r", "\r\n.\n", "\r\r\n.\r\r\n" };
	static const char smuggled[] = "MAIL FROM:<x@y>\r\nRCPT TO:<a@b>\r\nDATA\r\nevil\r\n";

	for (size_t i = 0; i < ARRAY_LEN(seqs); i++) {
		struct buf in;
		struct result r;

		buf_init(&in);
		buf_printf(&in, "hello%s%s.\r\nQUIT\r\n", seqs[i], smuggled);
		decode_all_ways((const char *)in.data, in.len, &r);
		assert_true(r.done);
		assert_true(r.bare);
		assert_int_equal(r.consumed, in.len - strlen("QUIT\r\n"));
		/* the smuggled commands are message content */
		assert_non_null(memmem(r.out.data, r.out.len, "MAIL FROM:<x@y>\r\n", 17));
		assert_true(r.out.len >= 6 && memcmp(r.out.data + r.out.len - 6, "evil\r\n", 6) == 0);
		buf_free(&r.out);
		buf_free(&in);
	}
}

static void test_bare_line_ends_normalised(void **state)
{
	expect(S("a\nb\rc\r\n.\r\n"), true, 10, true, S("a\r\nb\r\nc\r\n"));
	/* "\r\r\n": a bare CR, then a real line end */
	expect(S("a\r\r\nb\r\n.\r\n"), true, 10, true, S("a\r\n\r\nb\r\n"));
	/* a bare LF before the dot: the dot line is content, not stuffing */
	expect(S("a\n..\r\n.\r\n"), true, 9, true, S("a\r\n..\r\n"));
	/* "\r\n.\n": the line is "." and the data goes on */
	expect(S("a\r\n.\nb\r\n.\r\n"), true, 11, true, S("a\r\n.\r\nb\r\n"));
	/* "\r\n.\r" + byte */
	expect(S("a\r\n.\rb\r\n.\r\n"), true, 11, true, S("a\r\n.\r\nb\r\n"));
}

static void test_unterminated(void **state)
{
	expect(S("abc\r\n.\r"), false, 7, false, S("abc\r\n"));
	expect(S("abc\n.\n"), false, 6, true, S("abc\r\n.\r\n"));
	expect(S(""), false, 0, false, "", 0);
}

static void test_binary_and_nul(void **state)
{
	static const char in[] = "\0\x01\xff\x80\r\n\0.\r\n.\r\n";

	expect(in, sizeof(in) - 1, true, sizeof(in) - 1, false, "\0\x01\xff\x80\r\n\0.\r\n", 10);
}

static void test_large_input_counts(void **state)
{
	struct buf in;
	struct result r;

	buf_init(&in);
	for (int i = 0; i < 2000; i++)
		buf_append(&in, "..0123456789abcdef\r\n", 20);
	buf_append(&in, ".\r\n", 3);
	decode((const char *)in.data, in.len, 0, &r);
	assert_true(r.done);
	assert_int_equal(r.out.len, 2000 * 19);
	buf_free(&r.out);
	decode((const char *)in.data, in.len, 1, &r);
	assert_int_equal(r.out.len, 2000 * 19);
	buf_free(&r.out);
	buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_message),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_end_split_across_feeds),
		cmocka_unit_test(test_trailing_commands_untouched),
		cmocka_unit_test(test_smuggling_sequences),
		cmocka_unit_test(test_bare_line_ends_normalised),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_binary_and_nul),
		cmocka_unit_test(test_large_input_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
