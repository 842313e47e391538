/* POP3 command parsing, byte-stuffing, TOP extents and maildrop bookkeeping (src/pop3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "pop3/pop3_internal.h"

static void test_verbs(void **state)
{
	const char *arg;

	(void)state;
	assert_int_equal(pop3_command_parse("RETR 1", 6, &arg), POP3_CMD_RETR);
	assert_string_equal(arg, "1");
	assert_int_equal(pop3_command_parse("top 1 2", 7, &arg), POP3_CMD_TOP);
	assert_string_equal(arg, "1 2");
	assert_int_equal(pop3_command_parse("StAt", 4, &arg), POP3_CMD_STAT);
	assert_string_equal(arg, "");
	assert_int_equal(pop3_command_parse("RETRX 1", 7, &arg), POP3_CMD_UNKNOWN);
	assert_int_equal(pop3_command_parse("TO 1", 4, &arg), POP3_CMD_UNKNOWN);
	assert_int_equal(pop3_command_parse("", 0, &arg), POP3_CMD_UNKNOWN);
	assert_int_equal(pop3_command_parse(" RETR", 5, &arg), POP3_CMD_UNKNOWN);
	assert_int_equal(pop3_command_parse("APOP a b", 8, &arg), POP3_CMD_APOP);
}

static void test_msgnum(void **state)
{
	uint32_t n;
	bool present;
	uint64_t lines;

	(void)state;
	assert_int_equal(pop3_parse_msgnum("17", false, &n, NULL), 0);
	assert_int_equal(n, 17);
	assert_int_equal(pop3_parse_msgnum("0017 ", false, &n, NULL), 0);
	assert_int_equal(n, 17);
	assert_int_equal(pop3_parse_msgnum("", true, &n, &present), 0);
	assert_false(present);
	assert_int_equal(pop3_parse_msgnum("4294967295", false, &n, &present), 0);
	assert_true(present);
	assert_int_equal(n, UINT32_MAX);
	assert_int_equal(pop3_parse_msgnum("4294967296", false, &n, NULL), -1);
	assert_int_equal(pop3_parse_msgnum("0", false, &n, NULL), -1);
	assert_int_equal(pop3_parse_msgnum("", false, &n, NULL), -1);
	assert_int_equal(pop3_parse_msgnum("-1", false, &n, NULL), -1);
	assert_int_equal(pop3_parse_msgnum("1 2", true, &n, NULL), -1);
	assert_int_equal(pop3_parse_msgnum("+1", false, &n, NULL), -1);
	assert_int_equal(pop3_parse_top("3 0", &n, &lines), 0);
	assert_int_equal(n, 3);
	assert_int_equal(lines, 0);
	assert_int_equal(pop3_parse_top("3 18446744073709551615", &n, &lines), 0);
	assert_true(lines == UINT64_MAX);
	assert_int_equal(pop3_parse_top("3 18446744073709551616", &n, &lines), -1);
	assert_int_equal(pop3_parse_top("3", &n, &lines), -1);
	assert_int_equal(pop3_parse_top("0 1", &n, &lines), -1);
	assert_int_equal(pop3_parse_top("3  1", &n, &lines), -1);
	assert_int_equal(pop3_parse_top("3 1 1", &n, &lines), -1);
}

static void collect(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

static void stuff_in_pieces(const char *in, size_t piece, struct buf *out)
{
	bool line_start = true;
	size_t len = strlen(in);

	for (size_t pos = 0; pos < len; pos += piece) {
		size_t n = len - pos < piece ? len - pos : piece;
		pop3_stuff((const uint8_t *)in + pos, n, &line_start, collect, out);
	}
}

static void check_stuffing(const char *in, const char *want)
{
	/* Every split, including one byte at a time, gives the same output. */
	for (size_t piece = 1; piece <= strlen(in) + 1; piece++) {
		struct buf out;

		buf_init(&out);
		stuff_in_pieces(in, piece, &out);
		assert_int_equal(out.len, strlen(want));
		assert_memory_equal(out.data, want, out.len);
		buf_free(&out);
	}
}

static void test_stuffing(void **state)
{
	(void)state;
	check_stuffing(".a\r\nb\r\n..c\r\n.\r\nd.e\r\n.", "..a\r\nb\r\n...c\r\n..\r\nd.e\r\n..");
	/* Dots inside lines and at their ends stay as they are; bare LF lines count too. */
	check_stuffing("end.\r\nx..y.\n.z\n\n.\r\n", "end.\r\nx..y.\n..z\n\n..\r\n");
	check_stuffing("no dots at all\r\n", "no dots at all\r\n");
	check_stuffing("....", ".....");
}

static void test_top_length(void **state)
{
	static const char msg[] = "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3";
	const uint8_t *m = (const uint8_t *)msg;
	size_t len = strlen(msg);

	(void)state;
	assert_int_equal(pop3_top_length(m, len, 0), 14);
	assert_int_equal(pop3_top_length(m, len, 1), 18);
	assert_int_equal(pop3_top_length(m, len, 2), 22);
	assert_int_equal(pop3_top_length(m, len, 3), len);
	assert_int_equal(pop3_top_length(m, len, UINT64_MAX), len);
	/* no body separator: the whole message is header */
	assert_int_equal(pop3_top_length((const uint8_t *)"A: 1\r\nB: 2", 10, 0), 10);
	/* empty header */
	assert_int_equal(pop3_top_length((const uint8_t *)"\r\nbody\r\n", 8, 0), 2);
	assert_int_equal(pop3_top_length((const uint8_t *)"A: 1\n\nx\n", 8, 0), 6);
	assert_int_equal(pop3_top_length((const uint8_t *)"", 0, 5), 0);
}

static void test_maildrop_bookkeeping(void **state)
{
	struct store_msg msgs[3] = {
		{ .uid = 5, .size = 100, .keywords = NULL },
		{ .uid = 6, .size = 200, .keywords = (char *)"$Junk $pop3deleted" },
		{ .uid = 9, .size = 300, .keywords = (char *)"$POP3DeletedX" },
	};
	struct store_msg junk[1] = { { .uid = 5, .size = 7, .keywords = NULL } };
	struct pop3_maildrop md = { 0 };
	char uidl[32];

	(void)state;
	md.uidvalidity[POP3_BOX_INBOX] = 0x1234;
	md.uidvalidity[POP3_BOX_JUNK] = 0x1234;
	pop3_maildrop_add(&md, POP3_BOX_INBOX, msgs, 3);
	pop3_maildrop_add(&md, POP3_BOX_JUNK, junk, 1);
	assert_int_equal(md.count, 3); /* uid 6 carries the keep keyword */
	assert_int_equal(md.total_size, 407);
	assert_int_equal(pop3_maildrop_get(&md, 2)->uid, 9);
	assert_null(pop3_maildrop_get(&md, 0));
	assert_null(pop3_maildrop_get(&md, 4));
	pop3_uidl(&md, pop3_maildrop_get(&md, 1), uidl, sizeof(uidl));
	assert_string_equal(uidl, "0000000500001234");
	pop3_uidl(&md, pop3_maildrop_get(&md, 3), uidl, sizeof(uidl));
	assert_string_equal(uidl, "J0000000500001234");
	assert_int_equal(pop3_maildrop_delete(&md, 2), 0);
	assert_int_equal(pop3_maildrop_delete(&md, 2), -1);
	assert_int_equal(pop3_maildrop_delete(&md, 4), -1);
	assert_null(pop3_maildrop_get(&md, 2));
	assert_int_equal(md.deleted_count, 1);
	assert_int_equal(md.deleted_size, 300);
	pop3_maildrop_reset(&md);
	assert_int_equal(md.deleted_count, 0);
	assert_non_null(pop3_maildrop_get(&md, 2));
	free(md.msgs);
}

static void test_lock_table(void **state)
{
	(void)state;
	assert_true(pop3_lock_acquire("a@example.test"));
	assert_false(pop3_lock_acquire("A@Example.Test"));
	assert_true(pop3_lock_acquire("b@example.test"));
	pop3_lock_release("a@example.test");
	assert_true(pop3_lock_acquire("a@example.test"));
	pop3_lock_release("a@example.test");
	pop3_lock_release("b@example.test");
	pop3_lock_release("nobody@example.test");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_msgnum),
		cmocka_unit_test(test_stuffing),
		cmocka_unit_test(test_top_length),
		cmocka_unit_test(test_maildrop_bookkeeping),
		cmocka_unit_test(test_lock_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
