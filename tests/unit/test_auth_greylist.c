/* Greylisting's triplet store with a made-up clock: wait, retry too soon, pass after the delay,
 * remembered after that; a wait not retried in time and a pass unused for `expire` start over;
 * networks (/24, /64, IPv4-mapped); case; the store survives closing; the size bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"

#define S 1000LL /* ms */
static const struct auth_greylist_config cfg = { 300, 86400, 35 * 86400, 1000000 };

struct fixture {
	char dir[32];
	char path[64];
	struct auth_greylist *g;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/roost-grey-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/greylist.db", f->dir);
	if (auth_greylist_open(f->path, &cfg, &f->g, err, sizeof(err)) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	auth_greylist_close(&f->g);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static enum auth_greylist_verdict check(struct auth_greylist *g, const char *ip,
					const char *rcpt, int64_t now_ms, uint32_t *wait_r)
{
	return auth_greylist_check(g, ip, "sender@example.org", rcpt, now_ms, wait_r);
}

static void test_wait_then_pass(void **state)
{
	struct fixture *f = *state;
	const int64_t t0 = 1700000000 * S;
	uint32_t wait = 0;

	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0, &wait), AUTH_GREYLIST_WAIT);
	assert_int_equal(wait, 300);
	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0 + 100 * S, &wait),
			 AUTH_GREYLIST_WAIT);
	assert_int_equal(wait, 200);
	/* the same /24 retries from another address of the pool */
	assert_int_equal(check(f->g, "192.0.2.77", "a@x.test", t0 + 300 * S, &wait),
			 AUTH_GREYLIST_PASS);
	assert_int_equal(wait, 0);
	/* remembered: later messages pass at once, for a month */
	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0 + 20 * 86400 * S, &wait),
			 AUTH_GREYLIST_PASS);
	assert_int_equal(check(f->g, "192.0.2.10", "A@X.TEST", t0 + 40 * 86400 * S, &wait),
			 AUTH_GREYLIST_PASS);
	/* unused for more than expire: forgotten */
	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0 + 80 * 86400 * S, &wait),
			 AUTH_GREYLIST_WAIT);
}

static void test_independent_triplets(void **state)
{
	struct fixture *f = *state;
	const int64_t t0 = 1700000000 * S;
	uint32_t wait = 0;

	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0, &wait), AUTH_GREYLIST_WAIT);
	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0 + 301 * S, &wait),
			 AUTH_GREYLIST_PASS);
	/* another /24, another recipient, another sender: each waits on its own */
	assert_int_equal(check(f->g, "192.0.3.10", "a@x.test", t0 + 302 * S, &wait),
			 AUTH_GREYLIST_WAIT);
	assert_int_equal(check(f->g, "192.0.2.10", "b@x.test", t0 + 302 * S, &wait),
			 AUTH_GREYLIST_WAIT);
	assert_int_equal(auth_greylist_check(f->g, "192.0.2.10", "", "a@x.test", t0 + 302 * S,
					     &wait),
			 AUTH_GREYLIST_WAIT);
}

static void test_retry_window(void **state)
{
	struct fixture *f = *state;
	const int64_t t0 = 1700000000 * S;
	uint32_t wait = 0;

	assert_int_equal(check(f->g, "2001:db8:1:2::5", "a@x.test", t0, &wait), AUTH_GREYLIST_WAIT);
	/* retried two days later: the first try is too old to count, the wait starts again */
	assert_int_equal(check(f->g, "2001:db8:1:2:ffff::9", "a@x.test", t0 + 2 * 86400 * S, &wait),
			 AUTH_GREYLIST_WAIT);
	assert_int_equal(wait, 300);
	assert_int_equal(check(f->g, "2001:db8:1:2::5", "a@x.test", t0 + (2 * 86400 + 300) * S,
			       &wait),
			 AUTH_GREYLIST_PASS);
}

static void test_networks(void **state)
{
	char net[64];

	(void)state;
	assert_int_equal(auth_greylist_network("192.0.2.200", net, sizeof(net)), 0);
	assert_string_equal(net, "192.0.2.0/24");
	assert_int_equal(auth_greylist_network("2001:db8:1:2:3:4:5:6", net, sizeof(net)), 0);
	assert_string_equal(net, "2001:db8:1:2::/64");
	assert_int_equal(auth_greylist_network("::ffff:198.51.100.7", net, sizeof(net)), 0);
	assert_string_equal(net, "198.51.100.0/24");
	assert_int_equal(auth_greylist_network("not an address", net, sizeof(net)), -1);
}

static void test_survives_reopen(void **state)
{
	struct fixture *f = *state;
	const int64_t t0 = 1700000000 * S;
	uint32_t wait = 0;
	char err[256];

	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0, &wait), AUTH_GREYLIST_WAIT);
	auth_greylist_close(&f->g);
	assert_int_equal(auth_greylist_open(f->path, &cfg, &f->g, err, sizeof(err)), 0);
	assert_int_equal(check(f->g, "192.0.2.10", "a@x.test", t0 + 300 * S, &wait),
			 AUTH_GREYLIST_PASS);
}

static void test_bounded(void **state)
{
	struct fixture *f = *state;
	const struct auth_greylist_config small = { 300, 86400, 35 * 86400, 50 };
	const int64_t t0 = 1700000000 * S;
	uint32_t wait = 0;
	char err[256], rcpt[64];

	auth_greylist_close(&f->g);
	assert_int_equal(auth_greylist_open(f->path, &small, &f->g, err, sizeof(err)), 0);
	for (int i = 0; i < 2500; i++) {
		snprintf(rcpt, sizeof(rcpt), "u%d@x.test", i);
		check(f->g, "192.0.2.10", rcpt, t0 + i, &wait);
	}
	/* swept every 1,000 new triplets down to the bound */
	assert_in_range(auth_greylist_count(f->g), 1, 50 + 1000);
	/* the newest stayed, the oldest went */
	assert_int_equal(check(f->g, "192.0.2.10", "u2499@x.test", t0 + 400 * S, &wait),
			 AUTH_GREYLIST_PASS);
	assert_int_equal(check(f->g, "192.0.2.10", "u0@x.test", t0 + 400 * S, &wait),
			 AUTH_GREYLIST_WAIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wait_then_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_independent_triplets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_window, setup, teardown),
		cmocka_unit_test(test_networks),
		cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
