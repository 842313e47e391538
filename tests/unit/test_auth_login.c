/* The login object shared by SMTP, IMAP and POP3: what each outcome counts and releases, the
 * delay and the reply held through it, LOGIN-DELAY claims taken back when a login does not
 * complete, and the address refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/penalty_internal.h"

static const struct auth_penalty_config cfg = {
	.failure_delay_ms = 2000,
	.failure_delay_max_ms = 15000,
	.refuse_after = 3,
	.window_seconds = 900,
	.user_ip_connections = 2,
};

static size_t userip_entries(struct auth_penalty *p)
{
	size_t failures, userip;

	auth_penalty_counts(p, &failures, &userip);
	return userip;
}

static void test_success_counts_until_end(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&cfg);
	struct auth_login a, b, c;
	uint32_t wait_ms = 99;

	(void)state;
	auth_login_init(&a, p, "imap", 1, "192.0.2.1");
	auth_login_init(&b, p, "imap", 2, "192.0.2.1");
	auth_login_init(&c, p, "imap", 3, "192.0.2.1");
	assert_null(auth_login_user(&a));
	assert_int_equal(auth_login_succeeded(&a, "u@example.org", 0, &wait_ms), AUTH_LOGIN_OK);
	assert_int_equal(wait_ms, 0);
	assert_string_equal(auth_login_user(&a), "u@example.org");
	assert_int_equal(auth_login_succeeded(&b, "u@example.org", 0, &wait_ms), AUTH_LOGIN_OK);
	/* The third session of the user from the address is over user_ip_connections. */
	assert_int_equal(auth_login_succeeded(&c, "u@example.org", 0, &wait_ms),
			 AUTH_LOGIN_LIMIT);
	assert_null(auth_login_user(&c));
	auth_login_end(&c); /* counted nothing: must release nothing */
	auth_login_end(&a);
	assert_null(auth_login_user(&a));
	assert_int_equal(auth_login_succeeded(&c, "u@example.org", 0, &wait_ms), AUTH_LOGIN_OK);
	auth_login_end(&b);
	auth_login_end(&c);
	auth_login_end(&c); /* twice is harmless */
	assert_int_equal(userip_entries(p), 0);
	auth_penalty_free(&p);
}

static void test_failure_delay_and_held_reply(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&cfg);
	struct auth_login l;
	uint32_t wait_ms;
	char *reply;

	(void)state;
	auth_login_init(&l, p, "pop3", 7, "198.51.100.7");
	assert_null(auth_login_take_reply(&l));
	assert_int_equal(auth_login_failed(&l, "x@example.org", "wrong password",
					   strdup("-ERR [AUTH] Authentication failed")), 2000);
	reply = auth_login_take_reply(&l);
	assert_string_equal(reply, "-ERR [AUTH] Authentication failed");
	free(reply);
	assert_null(auth_login_take_reply(&l));
	/* The next failure waits longer; a reply still held is replaced, not leaked. */
	assert_int_equal(auth_login_failed(&l, NULL, "unknown user", strdup("first")), 4000);
	auth_login_hold_reply(&l, strdup("second"));
	reply = auth_login_take_reply(&l);
	assert_string_equal(reply, "second");
	free(reply);
	/* An unknown recipient counts like a failure against the address. */
	assert_int_equal(auth_login_probe_failed(&l), 8000);
	assert_true(auth_login_address_refused(&l, NULL));
	/* A success clears the address's record. */
	assert_int_equal(auth_login_succeeded(&l, "x@example.org", 0, &wait_ms), AUTH_LOGIN_OK);
	assert_false(auth_login_address_refused(&l, "x@example.org"));
	auth_login_hold_reply(&l, strdup("freed by end"));
	auth_login_end(&l);
	assert_null(auth_login_take_reply(&l));
	auth_penalty_free(&p);
}

/* POP3 LOGIN-DELAY: a claim stands once confirmed, and is taken back when the login does not
 * complete (over the user+address limit, or ended before confirmation). */
static void test_login_interval(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&cfg);
	struct auth_login a, b, c;
	uint32_t wait_ms;

	(void)state;
	auth_login_init(&a, p, "pop3", 1, "203.0.113.1");
	auth_login_init(&b, p, "pop3", 2, "203.0.113.1");
	auth_login_init(&c, p, "pop3", 3, "203.0.113.1");
	assert_int_equal(auth_login_succeeded(&a, "p@example.org", 60000, &wait_ms),
			 AUTH_LOGIN_OK);
	auth_login_end(&a); /* not confirmed: the claim is taken back */
	assert_int_equal(auth_login_succeeded(&a, "p@example.org", 60000, &wait_ms),
			 AUTH_LOGIN_OK);
	auth_login_confirm(&a);
	assert_int_equal(auth_login_succeeded(&b, "p@example.org", 60000, &wait_ms),
			 AUTH_LOGIN_TOO_SOON);
	assert_true(wait_ms > 0 && wait_ms <= 60000);
	assert_null(auth_login_user(&b));
	auth_login_end(&a); /* confirmed: the login keeps counting for LOGIN-DELAY */
	assert_int_equal(auth_login_succeeded(&b, "p@example.org", 60000, &wait_ms),
			 AUTH_LOGIN_TOO_SOON);

	/* Over the session limit: the claim made on the way is taken back at once. */
	assert_int_equal(auth_login_succeeded(&a, "q@example.org", 0, &wait_ms), AUTH_LOGIN_OK);
	assert_int_equal(auth_login_succeeded(&b, "q@example.org", 0, &wait_ms), AUTH_LOGIN_OK);
	assert_int_equal(auth_login_succeeded(&c, "q@example.org", 60000, &wait_ms),
			 AUTH_LOGIN_LIMIT);
	auth_login_end(&b);
	assert_int_equal(auth_login_succeeded(&c, "q@example.org", 60000, &wait_ms),
			 AUTH_LOGIN_OK);
	auth_login_end(&a);
	auth_login_end(&c);
	auth_penalty_free(&p);
}

/* Mechanisms that cannot start: unknown ones, and plaintext ones where plaintext is not allowed
 * (the protocol then asks for TLS); SCRAM starts anywhere. */
static void test_sasl_begin(void **state)
{
	struct auth_penalty *p = auth_penalty_new(&cfg);
	struct auth_login l;
	struct sasl_session *sasl;
	bool needs_tls = true;

	(void)state;
	auth_login_init(&l, p, "imap", 9, "192.0.2.9");
	assert_null(auth_login_sasl_begin(&l, NULL, "CRAM-MD5", false, &needs_tls));
	assert_false(needs_tls);
	assert_null(auth_login_sasl_begin(&l, NULL, "plain", false, &needs_tls));
	assert_true(needs_tls);
	sasl = auth_login_sasl_begin(&l, NULL, "LOGIN", true, &needs_tls);
	assert_non_null(sasl);
	assert_false(needs_tls);
	sasl_free(&sasl);
	sasl = auth_login_sasl_begin(&l, NULL, "SCRAM-SHA-256", false, &needs_tls);
	assert_non_null(sasl);
	sasl_free(&sasl);
	auth_login_end(&l);
	auth_penalty_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_counts_until_end),
		cmocka_unit_test(test_failure_delay_and_held_reply),
		cmocka_unit_test(test_login_interval),
		cmocka_unit_test(test_sasl_begin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
