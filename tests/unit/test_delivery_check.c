/* The check interface of delivery/: the verdict helpers, and the spooled transaction a
 * registered check turns on (header fields added, ranges dropped, a junk copy filed into
 * \Junk, a refusal storing nothing). */
#include "store_test_util.h"

#include "config/config.h"
#include "delivery/delivery.h"

static void test_refuse_strongest_first_wording(void **state)
{
	struct delivery_verdict v;

	(void)state;
	memset(&v, 0, sizeof(v));
	delivery_verdict_refuse(&v, DELIVERY_CHECK_TEMPFAIL, "451 4.7.0 later", "dns");
	assert_int_equal(v.action, DELIVERY_CHECK_TEMPFAIL);
	assert_string_equal(v.reply, "451 4.7.0 later");
	delivery_verdict_refuse(&v, DELIVERY_CHECK_REJECT, "554 5.7.0 virus\r\n250 ok", "virus");
	assert_int_equal(v.action, DELIVERY_CHECK_REJECT);
	/* a CR or LF cannot start a second reply line */
	assert_string_equal(v.reply, "554 5.7.0 virus  250 ok");
	assert_string_equal(v.reason, "virus");
	/* neither a weaker nor an equal action rewords the refusal */
	delivery_verdict_refuse(&v, DELIVERY_CHECK_TEMPFAIL, "451 4.7.0 x", "x");
	delivery_verdict_refuse(&v, DELIVERY_CHECK_REJECT, "550 5.7.1 y", "y");
	assert_int_equal(v.action, DELIVERY_CHECK_REJECT);
	assert_string_equal(v.reason, "virus");
}

static void test_headers_and_drops(void **state)
{
	struct delivery_verdict v;

	(void)state;
	memset(&v, 0, sizeof(v));
	buf_init(&v.headers);
	delivery_verdict_add_header(&v, "X-Virus-Scanned: clamav");
	delivery_verdict_add_header(&v, "X-Virus-Status: Clean");
	assert_string_equal(buf_cstr(&v.headers),
			    "X-Virus-Scanned: clamav\r\nX-Virus-Status: Clean\r\n");
	for (size_t i = 0; i < DELIVERY_VERDICT_MAX_DROPS; i++)
		assert_true(delivery_verdict_drop(&v, i * 10, 5));
	assert_false(delivery_verdict_drop(&v, 1000, 5));
	assert_int_equal(v.drop_count, DELIVERY_VERDICT_MAX_DROPS);
	buf_free(&v.headers);
}

/* ---- the spooled transaction, over a real store ---- */

static const char *const forged = "Authentication-Results: forged\r\n";

static void mark_check(void *arg, const struct delivery_check_input *in,
		       struct delivery_verdict *v)
{
	const char *hit = memmem(in->msg, in->len, forged, strlen(forged));

	(void)arg;
	assert_int_equal(in->mailbox_count, 1);
	assert_string_equal(in->helo, "client.example");
	assert_string_equal(in->client_ip, "192.0.2.7");
	delivery_verdict_add_header(v, "X-Checked: yes");
	if (hit != NULL)
		assert_true(delivery_verdict_drop(v, (size_t)(hit - (const char *)in->msg),
						  strlen(forged)));
	v->junk[0] = true;
}

static void refuse_check(void *arg, const struct delivery_check_input *in,
			 struct delivery_verdict *v)
{
	(void)arg;
	(void)in;
	delivery_verdict_refuse(v, DELIVERY_CHECK_REJECT, "554 5.7.0 Infected: Test-Sig",
				"virus Test-Sig");
}

static void second_check(void *arg, const struct delivery_check_input *in,
			 struct delivery_verdict *v)
{
	int *runs = arg;

	(void)in;
	/* later checks see the verdict so far */
	assert_int_equal(v->action, DELIVERY_CHECK_REJECT);
	(*runs)++;
}

static int deliver(struct fixture *f, delivery_check_fn fn, void *arg, const char *msg,
		   struct delivery_outcome *outcome, struct delivery_refusal *refusal)
{
	struct config cfg;
	struct delivery *d;
	struct delivery_rcpt rcpt;
	char *local = (char *)"user@example.org";
	char err[256];
	int rc;

	config_defaults(&cfg);
	free(cfg.data_dir);
	cfg.data_dir = xstrdup(f->dir);
	d = delivery_new(&cfg, NULL, f->store, NULL);
	delivery_add_check(d, "first", fn, arg);
	if (fn == refuse_check)
		delivery_add_check(d, "second", second_check, arg == NULL ? NULL : arg);
	memset(&rcpt, 0, sizeof(rcpt));
	rcpt.address = local;
	rcpt.local = &local;
	rcpt.local_count = 1;
	struct delivery_envelope env = {
		.sender = "a@example.net",
		.received = "Received: from client.example\r\n",
		.rcpts = &rcpt,
		.rcpt_count = 1,
		.helo = "client.example",
		.client_ip = "192.0.2.7",
	};
	struct delivery_txn *t = delivery_txn_begin(d, &env, err, sizeof(err));
	assert_non_null(t);
	/* two writes: the spool must join them */
	assert_int_equal(delivery_txn_write(t, msg, 10), 0);
	assert_int_equal(delivery_txn_write(t, msg + 10, strlen(msg) - 10), 0);
	rc = delivery_txn_finish(&t, outcome, refusal);
	assert_null(t);
	delivery_free(&d);
	config_free(&cfg);
	return rc;
}

static void test_spooled_headers_drops_junk(void **state)
{
	struct fixture *f = *state;
	struct delivery_outcome outcome;
	struct delivery_refusal refusal;
	const char *msg = "Subject: hi\r\nAuthentication-Results: forged\r\nFrom: a@example.net\r\n"
			  "\r\nbody\r\n";

	assert_int_equal(deliver(f, mark_check, NULL, msg, &outcome, &refusal), 0);
	assert_true(outcome.ok);
	assert_int_equal(refusal.action, DELIVERY_CHECK_ACCEPT);
	char *got = read_back(f->acct, mbox_id(f->acct, "Junk"), 1);
	assert_string_equal(got, "Return-Path: <a@example.net>\r\n"
				 "Received: from client.example\r\n"
				 "X-Checked: yes\r\n"
				 "Subject: hi\r\nFrom: a@example.net\r\n\r\nbody\r\n");
	free(got);
	struct store_message *m = NULL;
	assert_int_not_equal(store_message_open(f->acct, mbox_id(f->acct, "INBOX"), 1, &m, NULL),
			     STORE_OK);
}

static void test_spooled_junk_created_when_missing(void **state)
{
	struct fixture *f = *state;
	struct delivery_outcome outcome;

	assert_int_equal(store_mailbox_delete(f->acct, "Junk", NULL), STORE_OK);
	assert_int_equal(deliver(f, mark_check, NULL, "Subject: x\r\n\r\nbody\r\n", &outcome,
				 NULL),
			 0);
	struct store_mailbox_info info;
	assert_int_equal(store_mailbox_get(f->acct, "Junk", &info, NULL), STORE_OK);
	assert_true(info.special_use & STORE_SPECIAL_JUNK);
	store_mailbox_info_clear(&info);
	char *got = read_back(f->acct, mbox_id(f->acct, "Junk"), 1);
	assert_non_null(strstr(got, "X-Checked: yes\r\nSubject: x\r\n"));
	free(got);
}

static void test_spooled_refusal_stores_nothing(void **state)
{
	struct fixture *f = *state;
	struct delivery_outcome outcome;
	struct delivery_refusal refusal;
	int second_runs = 0;

	assert_int_equal(deliver(f, refuse_check, &second_runs, "Subject: v\r\n\r\nX5O\r\n",
				 &outcome, &refusal),
			 -1);
	assert_int_equal(second_runs, 1);
	assert_false(outcome.ok);
	assert_false(outcome.temporary);
	assert_int_equal(refusal.action, DELIVERY_CHECK_REJECT);
	assert_string_equal(refusal.reply, "554 5.7.0 Infected: Test-Sig");
	assert_string_equal(refusal.reason, "virus Test-Sig");
	struct store_message *m = NULL;
	assert_int_not_equal(store_message_open(f->acct, mbox_id(f->acct, "INBOX"), 1, &m, NULL),
			     STORE_OK);
	/* the spool was unlinked from the start: nothing is left in DATA_DIR/tmp */
	char *tmp = xasprintf("%s/tmp", f->dir);
	assert_int_equal(count_files(tmp), 0);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuse_strongest_first_wording),
		cmocka_unit_test(test_headers_and_drops),
		cmocka_unit_test_setup_teardown(test_spooled_headers_drops_junk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spooled_junk_created_when_missing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spooled_refusal_stores_nothing, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
