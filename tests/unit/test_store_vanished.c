/* The store's expunge history for QRESYNC: which UIDs went after a MODSEQ, from expunge and
 * move alike, complete from the mailbox's creation on; and HIGHESTMODSEQ only grows. */
#include "store_test_util.h"

static uint64_t highestmodseq(struct store_account *acct)
{
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_status(acct, "INBOX", &st, NULL), STORE_OK);
	return st.highestmodseq;
}

static void test_vanished_since(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX"), arch = mbox_id(f->acct, "Archive");
	struct store_uid_range two = { 2, 2 }, four = { 4, 4 };
	uint32_t *uids, *gone;
	size_t n;
	bool complete;

	for (int i = 0; i < 5; i++)
		append(f->acct, "INBOX", "Subject: x\r\n\r\nx\r\n", 0);
	uint64_t before = highestmodseq(f->acct);

	assert_int_equal(store_expunge(f->acct, inbox, &two, 1, false, &gone, &n, NULL), STORE_OK);
	free(gone);
	uint64_t middle = highestmodseq(f->acct);

	assert_true(middle > before);
	assert_int_equal(store_copy(f->acct, inbox, &four, 1, arch, true, NULL, NULL), STORE_OK);
	assert_true(highestmodseq(f->acct) > middle);

	assert_int_equal(store_vanished_list(f->acct, inbox, before, &uids, &n, &complete, NULL),
			 STORE_OK);
	assert_true(complete);
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 2);
	assert_int_equal(uids[1], 4);
	free(uids);
	/* Only what went after the MODSEQ asked for. */
	assert_int_equal(store_vanished_list(f->acct, inbox, middle, &uids, &n, &complete, NULL),
			 STORE_OK);
	assert_true(complete);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 4);
	free(uids);
	/* Nothing is known from before the mailbox existed: a MODSEQ of 0 is complete too. */
	assert_int_equal(store_vanished_list(f->acct, inbox, 0, &uids, &n, &complete, NULL),
			 STORE_OK);
	assert_true(complete);
	assert_int_equal(n, 2);
	free(uids);
	/* The history survives a restart. */
	fixture_close(f);
	fixture_reopen(f);
	assert_int_equal(store_vanished_list(f->acct, inbox, before, &uids, &n, &complete, NULL),
			 STORE_OK);
	assert_int_equal(n, 2);
	free(uids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vanished_since, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
