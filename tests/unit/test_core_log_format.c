/* [log] format = json: each logfmt line becomes one JSON object with the same keys (quoted
 * values unescaped, then escaped as JSON), whatever the line holds; and the Message-ID scanner
 * that log lines use finds the field in a header fed in any chunking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

static void assert_json(const char *line, const char *want)
{
	char out[1024];

	assert_int_equal(log_logfmt_to_json(line, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_plain_and_quoted_values(void **state)
{
	(void)state;
	assert_json("ts=2026-01-01T00:00:00.000Z level=info event=rcpt to=<a@b> size=12",
		    "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"info\",\"event\":\"rcpt\","
		    "\"to\":\"<a@b>\",\"size\":\"12\"}");
	assert_json("msg=\"authentication failed\" reason=\"wrong password\"",
		    "{\"msg\":\"authentication failed\",\"reason\":\"wrong password\"}");
	assert_json("", "{}");
}

static void test_escapes_are_undone_and_redone(void **state)
{
	(void)state;
	assert_json("reply=\"say \\\"hi\\\" \\\\ bye\"", "{\"reply\":\"say \\\"hi\\\" \\\\ bye\"}");
	/* a backslash that escapes nothing is kept, as JSON's \\ */
	assert_json("path=C:\\x", "{\"path\":\"C:\\\\x\"}");
}

static void test_malformed_lines_still_give_json(void **state)
{
	(void)state;
	assert_json("lonely key=", "{\"lonely\":true,\"key\":\"\"}");
	assert_json("reason=\"never closed", "{\"reason\":\"never closed\"}");
	assert_json("tab=a\tb", "{\"tab\":\"a\\u0009b\"}");
	assert_json("bad=\xff\xc3\xa9", "{\"bad\":\"\\ufffd\xc3\xa9\"}");
	assert_json("=v", "{\"\":\"v\"}");
}

static void test_small_buffer_is_reported(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(log_logfmt_to_json("key=a-long-value", out, sizeof(out)), -1);
	assert_string_equal(out, "{}");
}

static void test_clean_makes_a_quotable_value(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(log_clean("a\"b\\c\r\nd", out, sizeof(out)), "a'b/c  d");
	assert_string_equal(log_clean("0123456789abcdefXYZ", out, sizeof(out)), "0123456789abcde");
}

static const char header[] = "Received: from x\r\n\tby y\r\n"
			     "Subject: message-id: not this\r\n"
			     "Message-Id:\r\n <abc.123@example.org>\r\n"
			     "To: z@example.org\r\n\r\n"
			     "Message-ID: <body@example.org>\r\n";

static void test_msgid_in_one_piece_and_bytewise(void **state)
{
	struct log_msgid_scan whole, bytes;

	(void)state;
	memset(&whole, 0, sizeof(whole));
	memset(&bytes, 0, sizeof(bytes));
	log_msgid_feed(&whole, header, sizeof(header) - 1);
	for (size_t i = 0; i < sizeof(header) - 1; i++)
		log_msgid_feed(&bytes, header + i, 1);
	assert_string_equal(log_msgid_value(&whole), "<abc.123@example.org>");
	assert_string_equal(log_msgid_value(&bytes), "<abc.123@example.org>");
}

static void test_msgid_only_in_the_header_and_bounded(void **state)
{
	static const char body_only[] = "Subject: x\r\n\r\nMessage-ID: <no@x>\r\n";
	struct log_msgid_scan scan;
	char big[1200];

	(void)state;
	memset(&scan, 0, sizeof(scan));
	log_msgid_feed(&scan, body_only, sizeof(body_only) - 1);
	assert_string_equal(log_msgid_value(&scan), "");

	memset(&scan, 0, sizeof(scan));
	memcpy(big, "Message-ID: <", 13);
	memset(big + 13, 'a', sizeof(big) - 13);
	log_msgid_feed(&scan, big, sizeof(big));
	log_msgid_feed(&scan, "\"q\"\r\n\r\n", 7);
	assert_int_equal(strlen(log_msgid_value(&scan)), LOG_MSGID_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_quoted_values),
		cmocka_unit_test(test_escapes_are_undone_and_redone),
		cmocka_unit_test(test_malformed_lines_still_give_json),
		cmocka_unit_test(test_small_buffer_is_reported),
		cmocka_unit_test(test_clean_makes_a_quotable_value),
		cmocka_unit_test(test_msgid_in_one_piece_and_bytewise),
		cmocka_unit_test(test_msgid_only_in_the_header_and_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
