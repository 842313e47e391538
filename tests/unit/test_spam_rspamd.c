/* Unit tests for reading rspamd's /checkv2 answer: the top-level score even when a symbol's
 * own "score" comes first, the action made one token, and answers that are not a usable
 * verdict (an error status, no score, a score that is not a number). Also the address forms
 * [spam] rspamd accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "spam/spam.h"

static int parse(const char *reply, struct spam_rspamd_result *res)
{
	return spam_rspamd_parse_reply(reply, strlen(reply), res);
}

static void test_reply(void **state)
{
	struct spam_rspamd_result res;

	(void)state;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
			       "{\"symbols\":{\"R\":{\"name\":\"R\",\"score\":9.5,\"options\":"
			       "[\"a\",\"b\"]}},\"messages\":{\"smtp_message\":\"x \\\" y\"},"
			       "\"score\": -2.25, \"required_score\":15,"
			       "\"action\":\"no action\"}",
			       &res),
			 0);
	assert_true(res.score == -2.25);
	assert_string_equal(res.action, "no_action");
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\n{\"score\":7,\"action\":\"reject\"}", &res),
			 0);
	assert_true(res.score == 7.0);
	assert_string_equal(res.action, "reject");
	assert_int_equal(parse("HTTP/1.0 500 Internal\r\n\r\n{\"score\":7}", &res), -1);
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\n{\"symbols\":{\"R\":{\"score\":3}}}", &res),
			 -1);
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\n{\"score\":\"lots\"}", &res), -1);
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\n", &res), -1);
	assert_int_equal(parse("garbage", &res), -1);
}

static void test_addresses(void **state)
{
	static const char *const good[] = { "http://127.0.0.1:11333", "http://127.0.0.1:11333/",
					    "http://[::1]:11333" };
	static const char *const bad[] = { "127.0.0.1:11333", "http://localhost:11333",
					   "http://127.0.0.1", "http://127.0.0.1:0",
					   "https://127.0.0.1:11333" };
	char err[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		struct spam_rspamd *r = spam_rspamd_new(good[i], 1000, err, sizeof(err));
		assert_non_null(r);
		spam_rspamd_free(&r);
		assert_null(r);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_null(spam_rspamd_new(bad[i], 1000, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
