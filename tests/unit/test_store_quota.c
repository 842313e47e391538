/* Unit tests for the store's quota: COPY refused whole when it would pass a limit while MOVE
 * within the account is not, usage that follows every writer and is recounted when the index
 * is rebuilt, limits from the policy (a domain's room lowering an account's), and one warning
 * per threshold crossed. */
#include "store_test_util.h"

static size_t count_in(struct store_account *acct, const char *mailbox)
{
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(acct, mbox_id(acct, mailbox), NULL, &msgs, &n, NULL),
			 STORE_OK);
	store_msg_list_free(&msgs, n);
	return n;
}

static void assert_usage(struct store_account *acct, uint64_t bytes, uint64_t messages)
{
	uint64_t b, m;

	assert_int_equal(store_account_usage(acct, &b, &m, NULL), STORE_OK);
	assert_int_equal(b, bytes);
	assert_int_equal(m, messages);
}

static void test_copy_over_quota_stores_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_uid_range all = { 1, UINT32_MAX };
	uint64_t inbox = mbox_id(f->acct, "INBOX");

	append(f->acct, "INBOX", "Subject: a\r\n\r\n0123456789\r\n", 0); /* 26 octets */
	append(f->acct, "INBOX", "Subject: b\r\n\r\n0123456789\r\n", 0);
	store_account_set_quota(f->acct, 0, 3);
	assert_int_equal(store_copy(f->acct, inbox, &all, 1, mbox_id(f->acct, "Archive"), false,
				    NULL, NULL),
			 STORE_ERR_OVER_QUOTA);
	assert_int_equal(count_in(f->acct, "Archive"), 0);
	char *cur = xasprintf("%s/mail/example.org/user/.Archive/cur", f->dir);

	assert_int_equal(count_files(cur), 0);
	free(cur);
	assert_usage(f->acct, 52, 2);
	/* By bytes too. */
	store_account_set_quota(f->acct, 60, 0);
	assert_int_equal(store_copy(f->acct, inbox, &all, 1, mbox_id(f->acct, "Archive"), false,
				    NULL, NULL),
			 STORE_ERR_OVER_QUOTA);
	/* Full to the octet, a move still goes through: it stores nothing new. */
	store_account_set_quota(f->acct, 52, 2);
	assert_int_equal(store_copy(f->acct, inbox, &all, 1, mbox_id(f->acct, "Trash"), true, NULL,
				    NULL),
			 STORE_OK);
	assert_int_equal(count_in(f->acct, "Trash"), 2);
	assert_usage(f->acct, 52, 2);
}

static void test_usage_follows_writers_and_rebuild(void **state)
{
	struct fixture *f = *state;
	struct store_uid_range all = { 1, UINT32_MAX };
	uint32_t *gone;
	size_t gone_n;

	append(f->acct, "INBOX", "Subject: a\r\n\r\nx\r\n", 0); /* 17 */
	append(f->acct, "INBOX", "Subject: bb\r\n\r\nx\r\n", STORE_FLAG_DELETED); /* 18 */
	assert_int_equal(store_mailbox_create(f->acct, "Work", 0, NULL), STORE_OK);
	append(f->acct, "Work", "Subject: ccc\r\n\r\nx\r\n", 0); /* 19 */
	assert_usage(f->acct, 54, 3);
	assert_int_equal(store_copy(f->acct, mbox_id(f->acct, "INBOX"), &all, 1,
				    mbox_id(f->acct, "Archive"), false, NULL, NULL),
			 STORE_OK);
	assert_usage(f->acct, 89, 5);
	assert_int_equal(store_expunge(f->acct, mbox_id(f->acct, "INBOX"), NULL, 0, true, &gone,
				       &gone_n, NULL),
			 STORE_OK);
	free(gone);
	assert_usage(f->acct, 71, 4);
	assert_int_equal(store_mailbox_delete(f->acct, "Work", NULL), STORE_OK);
	assert_usage(f->acct, 52, 3);
	/* An index lost with the process: rebuilt from the files, usage with it. */
	fixture_close(f);
	char *index = xasprintf("%s/mail/example.org/user/roost-index.sqlite", f->dir);

	assert_int_equal(unlink(index), 0);
	free(index);
	fixture_reopen(f);
	assert_usage(f->acct, 52, 3);
}

/* ---- policy ---- */

struct policy {
	uint64_t storage, messages, domain_messages;
	unsigned warn[2];
};

static void policy_fn(void *ctx, const char *address, struct store_quota_policy *p)
{
	const struct policy *pol = ctx;

	(void)address;
	memset(p, 0, sizeof(*p));
	p->storage = pol->storage;
	p->messages = pol->messages;
	p->domain_messages = pol->domain_messages;
	p->warn_percent[0] = pol->warn[0];
	p->warn_percent[1] = pol->warn[1];
}

static void test_domain_room_lowers_the_limit(void **state)
{
	struct fixture *f = *state;
	struct policy pol = { .domain_messages = 3 };
	struct store_account *other;
	struct store_quota q;
	struct store_save *save;

	store_set_quota_policy(f->store, policy_fn, &pol);
	assert_int_equal(store_account_open(f->store, "other@example.org", &other, NULL), STORE_OK);
	append(other, "INBOX", "Subject: o\r\n\r\nx\r\n", 0);
	append(other, "INBOX", "Subject: o\r\n\r\nx\r\n", 0);
	store_account_close(&other); /* counted from its index, not an open handle */
	assert_int_equal(store_account_quota(f->acct, &q, NULL), STORE_OK);
	assert_int_equal(q.limit_messages, 1);
	assert_int_equal(q.limit_bytes, STORE_QUOTA_NONE);
	assert_int_equal(q.domain_used_messages, 2);
	append(f->acct, "INBOX", "Subject: mine\r\n\r\nx\r\n", 0);
	assert_int_equal(store_save_begin(f->acct, "INBOX", &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, "Subject: no\r\n\r\n", 15, NULL), STORE_OK);
	assert_int_equal(store_save_finish(&save, NULL, NULL, NULL), STORE_ERR_OVER_QUOTA);
	/* No room left at all: the limit is what the account keeps, 0 when it has nothing. */
	pol.domain_messages = 2;
	assert_int_equal(store_account_quota(f->acct, &q, NULL), STORE_OK);
	assert_int_equal(q.limit_messages, 0);
	store_set_quota_policy(f->store, NULL, NULL);
}

static size_t warnings(struct store_account *acct)
{
	struct store_msg *msgs;
	size_t n, found = 0;
	uint64_t inbox = mbox_id(acct, "INBOX");

	assert_int_equal(store_msg_list(acct, inbox, NULL, &msgs, &n, NULL), STORE_OK);
	for (size_t i = 0; i < n; i++) {
		char *text = read_back(acct, inbox, msgs[i].uid);

		found += strstr(text, "From: Mail Delivery System <postmaster@example.org>") != NULL;
		free(text);
	}
	store_msg_list_free(&msgs, n);
	return found;
}

static void test_one_warning_per_threshold(void **state)
{
	struct fixture *f = *state;
	struct policy pol = { .messages = 10, .warn = { 50, 90 } };
	uint32_t *gone;
	size_t gone_n;

	store_set_quota_policy(f->store, policy_fn, &pol);
	for (int i = 0; i < 4; i++)
		append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0);
	assert_int_equal(warnings(f->acct), 0);
	append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0); /* 5 of 10 */
	assert_int_equal(warnings(f->acct), 1);
	append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0); /* 7 with the warning */
	assert_int_equal(warnings(f->acct), 1);
	append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0); /* 8 */
	append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0); /* 9: 90 % */
	assert_int_equal(warnings(f->acct), 2);
	/* 10 of 10: full, the warning went in past the limit; nothing else does. */
	struct store_save *save;

	assert_int_equal(store_save_begin(f->acct, "Archive", &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, "Subject: no\r\n\r\n", 15, NULL), STORE_OK);
	assert_int_equal(store_save_finish(&save, NULL, NULL, NULL), STORE_ERR_OVER_QUOTA);
	assert_int_equal(warnings(f->acct), 2);
	/* Below both thresholds again: each warns once more on the next crossing. */
	assert_int_equal(store_expunge(f->acct, mbox_id(f->acct, "Archive"), NULL, 0, false, &gone,
				       &gone_n, NULL),
			 STORE_OK);
	free(gone);
	append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0);
	append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0);
	assert_int_equal(warnings(f->acct), 2);
	append(f->acct, "Archive", "Subject: m\r\n\r\nx\r\n", 0); /* 2 warnings + 3 = 5 */
	assert_int_equal(warnings(f->acct), 3);
	store_set_quota_policy(f->store, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_over_quota_stores_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_follows_writers_and_rebuild, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_domain_room_lowers_the_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_warning_per_threshold, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
