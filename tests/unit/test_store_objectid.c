/* The store's RFC 8474 EMAILID and THREADID, RFC 8514 SAVEDATE and all-or-nothing group save (IMAP
 * MULTIAPPEND, RFC 3502): ids follow a message through COPY and MOVE and survive a reopen, a
 * copy gets its own save date, and a group that cannot be stored whole leaves nothing. */
#include "store_test_util.h"

static struct store_msg *list_all(struct store_account *acct, uint64_t id, size_t *n_r)
{
	struct store_msg *msgs;

	assert_int_equal(store_msg_list(acct, id, NULL, &msgs, n_r, NULL), STORE_OK);
	return msgs;
}

static void test_email_id_follows_copy_and_move(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX"), trash = mbox_id(f->acct, "Trash");
	struct store_uid_range r = { 1, 2 };
	struct store_uid_map map = { 0 };
	struct store_msg *msgs;
	size_t n;

	append(f->acct, "INBOX", "Subject: a\r\n\r\na\r\n", 0);
	append(f->acct, "INBOX", "Subject: b\r\n\r\nb\r\n", 0);
	msgs = list_all(f->acct, inbox, &n);
	assert_int_equal(n, 2);
	uint64_t id_a = msgs[0].email_id, id_b = msgs[1].email_id;

	assert_true(id_a != 0 && id_b != 0 && id_a != id_b);
	assert_true(msgs[0].save_date > 0);
	store_msg_list_free(&msgs, n);

	assert_int_equal(store_copy(f->acct, inbox, &r, 1, trash, false, &map, NULL), STORE_OK);
	store_uid_map_clear(&map);
	msgs = list_all(f->acct, trash, &n);
	assert_int_equal(n, 2);
	assert_true(msgs[0].email_id == id_a && msgs[1].email_id == id_b);
	store_msg_list_free(&msgs, n);

	/* MOVE back into INBOX (new UIDs 3 and 4): still the same ids, after a reopen too. */
	r.first = 1;
	r.last = 2;
	assert_int_equal(store_copy(f->acct, trash, &r, 1, inbox, true, &map, NULL), STORE_OK);
	store_uid_map_clear(&map);
	fixture_close(f);
	fixture_reopen(f);
	msgs = list_all(f->acct, inbox, &n);
	assert_int_equal(n, 4);
	assert_int_equal(msgs[2].uid, 3);
	assert_true(msgs[2].email_id == id_a && msgs[3].email_id == id_b);
	store_msg_list_free(&msgs, n);
}

static void test_copy_gets_its_own_save_date(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX"), trash = mbox_id(f->acct, "Trash");
	struct store_save *save;
	struct store_save_meta meta = { .internal_date = 86400 * 365 }; /* 1971 */
	struct store_save_result res;
	struct store_uid_range r = { 1, 1 };
	struct store_uid_map map = { 0 };
	struct store_msg *msgs;
	size_t n;
	int64_t before = time_wall_seconds();

	assert_int_equal(store_save_begin(f->acct, "INBOX", &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, "x\r\n", 3, NULL), STORE_OK);
	assert_int_equal(store_save_finish(&save, &meta, &res, NULL), STORE_OK);
	msgs = list_all(f->acct, inbox, &n);
	assert_int_equal(msgs[0].internal_date, 86400 * 365);
	assert_true(msgs[0].save_date >= before); /* APPEND cannot set it (RFC 8514 §3) */
	store_msg_list_free(&msgs, n);
	assert_int_equal(store_copy(f->acct, inbox, &r, 1, trash, false, &map, NULL), STORE_OK);
	store_uid_map_clear(&map);
	msgs = list_all(f->acct, trash, &n);
	assert_int_equal(n, 1);
	assert_true(msgs[0].save_date >= before);
	assert_int_equal(msgs[0].internal_date, 86400 * 365);
	store_msg_list_free(&msgs, n);
}

static void test_thread_id_from_the_root(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX"), trash = mbox_id(f->acct, "Trash");
	struct store_uid_range r = { 2, 2 };
	struct store_uid_map map = { 0 };
	struct store_msg *msgs;
	size_t n;

	append(f->acct, "INBOX", "Message-ID: <r@x>\r\n\r\nroot\r\n", 0);
	append(f->acct, "INBOX", "Message-ID: <s@x>\r\nReferences: <r@x>\r\n\r\nre\r\n", 0);
	append(f->acct, "INBOX", "Message-ID: <t@x>\r\n\r\nother\r\n", 0);
	append(f->acct, "INBOX", "Subject: none\r\n\r\nx\r\n", 0);
	msgs = list_all(f->acct, inbox, &n);
	assert_int_equal(n, 4);
	uint64_t thread = msgs[0].thread_id;

	assert_true(thread != 0 && msgs[1].thread_id == thread);
	assert_true(msgs[2].thread_id != 0 && msgs[2].thread_id != thread);
	assert_true(msgs[3].thread_id == 0);
	store_msg_list_free(&msgs, n);
	assert_int_equal(store_copy(f->acct, inbox, &r, 1, trash, false, &map, NULL), STORE_OK);
	store_uid_map_clear(&map);
	msgs = list_all(f->acct, trash, &n);
	assert_int_equal(n, 1);
	assert_true(msgs[0].thread_id == thread);
	store_msg_list_free(&msgs, n);
}

static struct store_save *begin_with(struct store_account *acct, const char *text)
{
	struct store_save *save;

	assert_int_equal(store_save_begin(acct, "INBOX", &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, text, strlen(text), NULL), STORE_OK);
	return save;
}

static size_t tmp_files(const struct fixture *f)
{
	char *tmp = xasprintf("%s/mail/example.org/user/tmp", f->dir);
	size_t n = count_files(tmp);

	free(tmp);
	return n;
}

static void test_group_save_all(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	struct store_save *saves[3];
	struct store_save_result res[3];
	struct store_msg *msgs;
	size_t n;

	saves[0] = begin_with(f->acct, "Subject: 1\r\n\r\n1\r\n");
	saves[1] = begin_with(f->acct, "Subject: 2\r\n\r\n2\r\n");
	assert_int_equal(store_save_seal(saves[1], NULL), STORE_OK);
	assert_int_not_equal(store_save_write(saves[1], "more", 4, NULL), STORE_OK);
	saves[2] = begin_with(f->acct, "Subject: 3\r\n\r\n3\r\n");
	assert_int_equal(store_save_finish_all(saves, 3, NULL, res, NULL), STORE_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].error, STORE_OK);
		assert_int_equal(res[i].uid, (uint32_t)i + 1);
	}
	msgs = list_all(f->acct, inbox, &n);
	assert_int_equal(n, 3);
	store_msg_list_free(&msgs, n);
	assert_int_equal(tmp_files(f), 0);
}

static void test_group_save_none_over_quota(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	struct store_save *saves[3];
	struct store_save_result res[3];
	struct store_msg *msgs;
	size_t n;

	append(f->acct, "INBOX", "Subject: 0\r\n\r\n0\r\n", 0);
	/* Room for two more messages, and the group has three. */
	store_account_set_quota(f->acct, 0, 3);
	for (int i = 0; i < 3; i++)
		saves[i] = begin_with(f->acct, "Subject: g\r\n\r\ng\r\n");
	assert_int_equal(store_save_finish_all(saves, 3, NULL, res, NULL), STORE_ERR_OVER_QUOTA);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].error, STORE_ERR_OVER_QUOTA);
		assert_int_equal(res[i].uid, 0);
	}
	msgs = list_all(f->acct, inbox, &n);
	assert_int_equal(n, 1);
	store_msg_list_free(&msgs, n);
	assert_int_equal(tmp_files(f), 0);
	/* Two fit, and the UIDs go on from where they were. */
	for (int i = 0; i < 2; i++)
		saves[i] = begin_with(f->acct, "Subject: g\r\n\r\ng\r\n");
	assert_int_equal(store_save_finish_all(saves, 2, NULL, res, NULL), STORE_OK);
	assert_int_equal(res[0].uid, 2);
	assert_int_equal(res[1].uid, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_email_id_follows_copy_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_gets_its_own_save_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread_id_from_the_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_save_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_save_none_over_quota, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
