/* Login penalties: the growing delay and its cap, refusal after N failures, forgetting after
 * the window and on success, user+IP session limits, the POP3 LOGIN-DELAY record, and the
 * table bound under a flood of distinct addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/penalty_internal.h"

static const struct auth_penalty_config default_cfg = {
	.failure_delay_ms = 2000,
	.failure_delay_max_ms = 15000,
	.refuse_after = 50,
	.window_seconds = 900,
	.user_ip_connections = 30,
};

static uint64_t fake_now(void *ctx)
{
	return *(uint64_t *)ctx;
}

static void test_delay_sequence(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&default_cfg);
	static const uint32_t want[] = { 2000, 4000, 8000, 15000, 15000, 15000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(auth_penalty_fail(p, "192.0.2.1", NULL), want[i]);
	/* another address starts from the beginning */
	assert_int_equal(auth_penalty_fail(p, "192.0.2.2", NULL), 2000);
	/* many failures never overflow past the cap */
	for (int i = 0; i < 100; i++)
		assert_int_equal(auth_penalty_fail(p, "192.0.2.3", NULL) <= 15000, 1);
	assert_int_equal(auth_penalty_fail(p, "192.0.2.3", NULL), 15000);
	auth_penalty_free(&p);
	assert_null(p);
	auth_penalty_free(&p);
}

/* The user's record follows the user across addresses (the larger delay wins). */
static void test_user_penalty(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&default_cfg);

	assert_int_equal(auth_penalty_fail(p, "198.51.100.1", "Alice@example.org"), 2000);
	assert_int_equal(auth_penalty_fail(p, "198.51.100.2", "alice@example.org"), 4000);
	assert_int_equal(auth_penalty_fail(p, "198.51.100.3", "alice@example.org"), 8000);
	assert_int_equal(auth_penalty_fail(p, "198.51.100.3", "bob@example.org"), 4000);
	auth_penalty_success(p, "198.51.100.9", "alice@example.org");
	assert_int_equal(auth_penalty_fail(p, "198.51.100.4", "alice@example.org"), 2000);
	auth_penalty_free(&p);
}

static void test_refuse_after(void **state)
{
	struct auth_penalty_config cfg = default_cfg;
	struct auth_penalty *p;

	cfg.refuse_after = 5;
	p = auth_penalty_new(&cfg);
	for (int i = 0; i < 4; i++) {
		auth_penalty_fail(p, "2001:db8::1", NULL);
		assert_false(auth_penalty_refused(p, "2001:db8::1"));
	}
	auth_penalty_fail(p, "2001:db8::1", NULL);
	assert_true(auth_penalty_refused(p, "2001:db8::1"));
	assert_false(auth_penalty_refused(p, "2001:db8::2"));
	auth_penalty_free(&p);
}

static void test_success_clears(void **state)
{
	struct auth_penalty_config cfg = default_cfg;
	struct auth_penalty *p;

	cfg.refuse_after = 3;
	p = auth_penalty_new(&cfg);
	for (int i = 0; i < 3; i++)
		auth_penalty_fail(p, "203.0.113.5", "u@example.org");
	assert_true(auth_penalty_refused(p, "203.0.113.5"));
	auth_penalty_success(p, "203.0.113.5", "u@example.org");
	assert_false(auth_penalty_refused(p, "203.0.113.5"));
	assert_int_equal(auth_penalty_fail(p, "203.0.113.5", "u@example.org"), 2000);
	auth_penalty_free(&p);
}

static void test_window_expiry(void **state)
{
	struct auth_penalty_config cfg = default_cfg;
	struct auth_penalty *p;
	uint64_t now = 1000000;

	cfg.refuse_after = 2;
	p = auth_penalty_new(&cfg);
	auth_penalty_set_clock(p, fake_now, &now);
	assert_int_equal(auth_penalty_fail(p, "203.0.113.7", NULL), 2000);
	now += 899 * 1000;
	assert_int_equal(auth_penalty_fail(p, "203.0.113.7", NULL), 4000);
	assert_true(auth_penalty_refused(p, "203.0.113.7"));
	now += 901 * 1000;
	assert_false(auth_penalty_refused(p, "203.0.113.7"));
	assert_int_equal(auth_penalty_fail(p, "203.0.113.7", NULL), 2000);
	auth_penalty_free(&p);
}

static void test_login_interval(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&default_cfg);
	uint64_t now = 5000000;

	(void)state;
	auth_penalty_set_clock(p, fake_now, &now);
	assert_int_equal(auth_login_interval_claim(p, "a@example.test", 60000), 0);
	now += 20000;
	/* Case-insensitive like every user key; a refusal records nothing. */
	assert_int_equal(auth_login_interval_claim(p, "A@Example.Test", 60000), 40000);
	now += 39999;
	assert_int_equal(auth_login_interval_claim(p, "a@example.test", 60000), 1);
	assert_int_equal(auth_login_interval_claim(p, "b@example.test", 60000), 0);
	now += 1;
	assert_int_equal(auth_login_interval_claim(p, "a@example.test", 60000), 0);
	/* Taken back: the next login is let in at once. */
	auth_login_interval_release(p, "a@example.test");
	assert_int_equal(auth_login_interval_claim(p, "a@example.test", 60000), 0);
	auth_penalty_free(&p);
}

static void test_message_rate(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&default_cfg);
	uint64_t now = 7000000;

	(void)state;
	auth_penalty_set_clock(p, fake_now, &now);
	/* 3 per hour: a burst of three, then one every 20 minutes. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.1", 3), 0);
	assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.1", 3), 1200);
	/* Refused messages do not count; another address and a user of that name are apart. */
	assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.1", 3), 1200);
	assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.2", 3), 0);
	assert_int_equal(auth_rate_take(p, AUTH_RATE_USER, "192.0.2.1", 3), 0);
	now += 600 * 1000;
	assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.1", 3), 600);
	now += 600 * 1000;
	assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.1", 3), 0);
	assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.1", 3), 1200);
	/* After a quiet hour the whole burst is back, and 0 means no limit. */
	now += 3600 * 1000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(auth_rate_take(p, AUTH_RATE_IP, "192.0.2.1", 3), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(auth_rate_take(p, AUTH_RATE_USER, "a@example.test", 0), 0);
	auth_penalty_free(&p);
}

static void test_userip_limit(void **state)
{
	struct auth_penalty_config cfg = default_cfg;
	struct auth_penalty *p;
	size_t nf, nu;

	cfg.user_ip_connections = 3;
	p = auth_penalty_new(&cfg);
	for (int i = 0; i < 3; i++)
		assert_true(auth_userip_acquire(p, "u@example.org", "192.0.2.1"));
	assert_false(auth_userip_acquire(p, "u@example.org", "192.0.2.1"));
	assert_false(auth_userip_acquire(p, "U@Example.org", "192.0.2.1"));
	/* other IP, other user: separate counts */
	assert_true(auth_userip_acquire(p, "u@example.org", "192.0.2.2"));
	assert_true(auth_userip_acquire(p, "v@example.org", "192.0.2.1"));
	auth_userip_release(p, "u@example.org", "192.0.2.1");
	assert_true(auth_userip_acquire(p, "u@example.org", "192.0.2.1"));
	assert_false(auth_userip_acquire(p, "u@example.org", "192.0.2.1"));
	for (int i = 0; i < 3; i++)
		auth_userip_release(p, "u@example.org", "192.0.2.1");
	auth_userip_release(p, "u@example.org", "192.0.2.1"); /* one too many: harmless */
	auth_userip_release(p, "u@example.org", "192.0.2.2");
	auth_userip_release(p, "v@example.org", "192.0.2.1");
	auth_penalty_counts(p, &nf, &nu);
	assert_int_equal(nu, 0); /* released entries are gone */
	for (int i = 0; i < 3; i++)
		assert_true(auth_userip_acquire(p, "u@example.org", "192.0.2.1"));
	auth_penalty_free(&p);
}

/* 200 000 distinct addresses: memory stays bounded and the newest records still work. */
static void test_table_bound(void **state)
{
	struct auth_penalty_config cfg = default_cfg;
	struct auth_penalty *p;
	char ip[64];
	size_t nf, nu;

	cfg.refuse_after = 1;
	p = auth_penalty_new(&cfg);
	for (int i = 0; i < 200000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		assert_int_equal(auth_penalty_fail(p, ip, NULL), 2000);
		snprintf(ip, sizeof(ip), "u%d@example.org", i);
		assert_true(auth_userip_acquire(p, ip, "10.0.0.1"));
	}
	auth_penalty_counts(p, &nf, &nu);
	assert_true(nf <= LIMIT_AUTH_PENALTY_ENTRIES);
	assert_true(nu <= LIMIT_AUTH_PENALTY_ENTRIES);
	assert_true(nf >= LIMIT_AUTH_PENALTY_ENTRIES - 1);
	/* the oldest were dropped, the newest are kept */
	assert_false(auth_penalty_refused(p, "10.0.0.0"));
	snprintf(ip, sizeof(ip), "10.%d.%d.%d", 199999 >> 16 & 255, 199999 >> 8 & 255,
		 199999 & 255);
	assert_true(auth_penalty_refused(p, ip));
	assert_int_equal(auth_penalty_fail(p, ip, NULL), 4000);
	auth_penalty_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay_sequence), cmocka_unit_test(test_user_penalty),
		cmocka_unit_test(test_refuse_after),   cmocka_unit_test(test_success_clears),
		cmocka_unit_test(test_window_expiry),  cmocka_unit_test(test_userip_limit),
		cmocka_unit_test(test_table_bound),    cmocka_unit_test(test_login_interval),
		cmocka_unit_test(test_message_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
