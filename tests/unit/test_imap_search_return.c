/* RETURN options of SEARCH and SORT (RFC 4731, RFC 5267 §4): which combinations parse, how a
 * PARTIAL range is read (either order, negative from the end, never 0 or mixed signs), the
 * window of positions it selects, and the PARTIAL answer, NIL when the window is empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "imap/session.h"
#include "imap/sort.h"

static const unsigned all_options = IMAP_RET_MIN | IMAP_RET_MAX | IMAP_RET_ALL |
				    IMAP_RET_COUNT | IMAP_RET_SAVE | IMAP_RET_UPDATE |
				    IMAP_RET_CONTEXT | IMAP_RET_PARTIAL;

static bool parse(const char *text, unsigned allowed, struct imap_return_opts *opts)
{
	struct imap_parser ps;
	uint8_t copy[128];
	size_t n = strlen(text);

	assert_true(n < sizeof(copy));
	memcpy(copy, text, n);
	imap_parser_init(&ps, copy, n);
	return imap_parse_return_opts(&ps, allowed, opts) && imap_at_end(&ps);
}

static void test_options(void **state)
{
	struct imap_return_opts o;

	(void)state;
	assert_true(parse("()", all_options, &o));
	assert_int_equal(o.ret, IMAP_RET_ALL);
	assert_true(parse("(CONTEXT)", all_options, &o));
	assert_int_equal(o.ret, IMAP_RET_CONTEXT | IMAP_RET_ALL);
	assert_true(parse("(update count)", all_options, &o));
	assert_int_equal(o.ret, IMAP_RET_UPDATE | IMAP_RET_COUNT);
	assert_true(parse("(UPDATE)", all_options, &o));
	assert_int_equal(o.ret, IMAP_RET_UPDATE);
	assert_true(parse("(PARTIAL 500:1 MIN)", all_options, &o));
	assert_int_equal(o.ret, IMAP_RET_PARTIAL | IMAP_RET_MIN);
	assert_true(o.partial.first == 1 && o.partial.last == 500);
	assert_true(parse("(PARTIAL -100:-1)", all_options, &o));
	assert_true(o.partial.first == -1 && o.partial.last == -100);

	static const char *const bad[] = {
		"(PARTIAL 1:5 ALL)", "(ALL PARTIAL 1:5)", "(PARTIAL 1:5 SAVE)", "(PARTIAL 0:5)",
		"(PARTIAL 1:-5)",    "(PARTIAL -1:5)",	  "(PARTIAL 1)",	"(PARTIAL)",
		"(PARTIAL 1:2 PARTIAL 3:4)", "(PARTIAL 1:4294967296)", "(NOPE)", "(MIN",
		"MIN", "( MIN)", "(MIN  MAX)",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_false(parse(bad[i], all_options, &o));
	/* SORT takes no SAVE */
	assert_false(parse("(SAVE)", all_options & ~(unsigned)IMAP_RET_SAVE, &o));
}

static void window(const char *range, size_t n, size_t from, size_t to)
{
	struct imap_return_opts o;
	char text[64];
	size_t f, t;

	snprintf(text, sizeof(text), "(PARTIAL %s)", range);
	assert_true(parse(text, all_options, &o));
	imap_partial_window(&o.partial, n, &f, &t);
	if (from == to) {
		assert_int_equal(f, t);
		return;
	}
	assert_int_equal(f, from);
	assert_int_equal(t, to);
}

static void test_window(void **state)
{
	(void)state;
	window("1:3", 10, 0, 3);
	window("3:1", 10, 0, 3);
	window("8:20", 10, 7, 10);
	window("11:20", 10, 0, 0);
	window("1:5", 0, 0, 0);
	window("-1:-3", 10, 7, 10);
	window("-3:-1", 10, 7, 10);
	window("-8:-20", 10, 0, 3);
	window("-11:-20", 10, 0, 0);
	window("-1:-1", 1, 0, 1);
	window("4294967295:4294967295", 3, 0, 0);
	window("-4294967295:-1", 3, 0, 3);
}

static void test_answer(void **state)
{
	static const uint32_t nums[] = { 4, 5, 6, 9, 12 };
	struct imap_partial p = { 2, 4 };
	struct buf out;

	(void)state;
	buf_init(&out);
	imap_append_partial(&out, &p, nums, ARRAY_LEN(nums), true);
	assert_string_equal(buf_cstr(&out), " PARTIAL (2:4 5:6,9)");
	buf_reset(&out);
	imap_append_partial(&out, &p, nums, ARRAY_LEN(nums), false);
	assert_string_equal(buf_cstr(&out), " PARTIAL (2:4 5,6,9)");
	buf_reset(&out);
	p = (struct imap_partial){ -1, -2 };
	imap_append_partial(&out, &p, nums, ARRAY_LEN(nums), true);
	assert_string_equal(buf_cstr(&out), " PARTIAL (-1:-2 9,12)");
	buf_reset(&out);
	imap_append_partial(&out, &p, nums, 0, true);
	assert_string_equal(buf_cstr(&out), " PARTIAL (-1:-2 NIL)");
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
