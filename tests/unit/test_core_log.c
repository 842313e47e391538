/* The log limiter: the first event of an interval is written, the rest are counted, and the
 * next line written reports how many were held back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "core/core.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void test_limiter_counts_what_it_holds_back(void **state)
{
	static struct log_limiter lim; /* zeroed, as the server's static ones are */
	uint64_t suppressed = 99;

	(void)state;
	assert_true(log_limiter_allow(&lim, 50, &suppressed));
	assert_int_equal(suppressed, 0);
	for (int i = 0; i < 1000; i++)
		assert_false(log_limiter_allow(&lim, 50, &suppressed));
	sleep_ms(60);
	assert_true(log_limiter_allow(&lim, 50, &suppressed));
	assert_int_equal(suppressed, 1000);
	assert_false(log_limiter_allow(&lim, 50, &suppressed));
}

static void test_limiters_are_independent(void **state)
{
	static struct log_limiter a, b;
	uint64_t suppressed;

	(void)state;
	assert_true(log_limiter_allow(&a, 10000, &suppressed));
	assert_true(log_limiter_allow(&b, 10000, &suppressed));
	assert_false(log_limiter_allow(&a, 10000, &suppressed));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limiter_counts_what_it_holds_back),
		cmocka_unit_test(test_limiters_are_independent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
