/* Unit tests for store mailboxes: the default tree of a new account, name safety, create with
 * parents, rename with children and RENAME INBOX, delete rules, subscriptions, STATUS and the
 * UIDVALIDITY rule for re-created names. */
#include <sys/stat.h>

#include "store_test_util.h"

static bool has_mailbox(struct store_account *acct, const char *name, uint32_t *special_r)
{
	struct store_mailbox_info *list;
	size_t n;
	bool found = false;

	assert_int_equal(store_mailbox_list(acct, &list, &n, NULL), STORE_OK);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].name, name) == 0) {
			found = true;
			if (special_r != NULL)
				*special_r = list[i].special_use;
		}
	}
	store_mailbox_list_free(&list, n);
	return found;
}

static void test_default_mailboxes(void **state)
{
	struct fixture *f = *state;
	uint32_t su = 0;

	assert_true(has_mailbox(f->acct, "INBOX", NULL));
	assert_true(has_mailbox(f->acct, "Sent", &su));
	assert_int_equal(su, STORE_SPECIAL_SENT);
	assert_true(has_mailbox(f->acct, "Drafts", &su));
	assert_int_equal(su, STORE_SPECIAL_DRAFTS);
	assert_true(has_mailbox(f->acct, "Trash", &su));
	assert_int_equal(su, STORE_SPECIAL_TRASH);
	assert_true(has_mailbox(f->acct, "Junk", &su));
	assert_int_equal(su, STORE_SPECIAL_JUNK);
	assert_true(has_mailbox(f->acct, "Archive", &su));
	assert_int_equal(su, STORE_SPECIAL_ARCHIVE);
	/* Maildir++ layout on disk, under the lower-cased address. */
	char *p = xasprintf("%s/mail/example.org/user/.Sent/cur", f->dir);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
}

static void test_name_rules(void **state)
{
	struct fixture *f = *state;
	char canon[LIMIT_MAILBOX_NAME + 1];
	char *big = xmalloc(10 * 1024 + 1);
	static const char *const bad[] = { "../x", "..", ".", "/", "a//b", "/a", "a/", "",
					   "a/../b", "x\ty", "x\x7fy", "a*b", "bad\xff",
					   "\xc0\xaf" };

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		assert_int_not_equal(store_mailbox_name_check(bad[i], canon, NULL), STORE_OK);
		assert_int_not_equal(store_mailbox_create(f->acct, bad[i], 0, NULL), STORE_OK);
	}
	memset(big, 'a', 10 * 1024);
	big[10 * 1024] = '\0';
	assert_int_equal(store_mailbox_create(f->acct, big, 0, NULL), STORE_ERR_LIMIT);
	big[LIMIT_MAILBOX_NAME + 1] = '\0';
	assert_int_equal(store_mailbox_name_check(big, NULL, NULL), STORE_ERR_LIMIT);
	free(big);
	/* A name that is fine but whose folder would not fit one directory entry. */
	char *long_ok = xmalloc(400);

	memset(long_ok, 'b', 399);
	long_ok[399] = '\0';
	assert_int_equal(store_mailbox_create(f->acct, long_ok, 0, NULL), STORE_ERR_LIMIT);
	free(long_ok);

	assert_int_equal(store_mailbox_name_check("iNbOx", canon, NULL), STORE_OK);
	assert_string_equal(canon, "INBOX");
	assert_int_equal(store_mailbox_name_check("inbox/Sub", canon, NULL), STORE_OK);
	assert_string_equal(canon, "INBOX/Sub");
	assert_int_equal(store_mailbox_name_check("Inboxes", canon, NULL), STORE_OK);
	assert_string_equal(canon, "Inboxes");

	/* Dots, percent-looking text and non-ASCII stay inside the account directory. */
	assert_int_equal(store_mailbox_create(f->acct, "a.b/..c/Ünïcødé &2F-", 0, NULL), STORE_OK);
	assert_true(has_mailbox(f->acct, "a.b/..c/Ünïcødé &2F-", NULL));
	assert_int_equal(store_mailbox_create(f->acct, "a.b", 0, NULL), STORE_ERR_EXISTS);
	char *cmd = xasprintf("find '%s/mail' -mindepth 3 -maxdepth 3 | grep -c /mail/example.org/user/",
			      f->dir);
	FILE *p = popen(cmd, "r");
	int n = 0;

	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	free(cmd);
	/* Nothing was created outside .../user/. */
	char *cmd2 = xasprintf("find '%s/mail' -mindepth 1 -maxdepth 2 | wc -l", f->dir);

	p = popen(cmd2, "r");
	int m = 0;

	assert_int_equal(fscanf(p, "%d", &m), 1);
	pclose(p);
	free(cmd2);
	assert_int_equal(m, 2); /* mail/example.org and mail/example.org/user */
	assert_true(n > 0);
}

static void test_inbox_rules(void **state)
{
	struct fixture *f = *state;
	struct store_err err;

	assert_int_equal(store_mailbox_create(f->acct, "Inbox", 0, NULL), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_delete(f->acct, "inbox", &err), STORE_ERR_NO_PERMISSION);
	assert_int_equal(store_mailbox_create(f->acct, "inbox/Sub", 0, NULL), STORE_OK);
	assert_true(has_mailbox(f->acct, "INBOX/Sub", NULL));

	uint64_t inbox = mbox_id(f->acct, "INBOX");
	uint32_t u1 = append(f->acct, "INBOX", "Subject: one\r\n\r\nbody1\r\n", STORE_FLAG_SEEN);
	uint32_t u2 = append(f->acct, "INBOX", "Subject: two\r\n\r\nbody2\r\n", 0);

	assert_true(u2 > u1);
	/* RFC 9051 §6.3.6: RENAME INBOX moves the messages and leaves INBOX empty. */
	assert_int_equal(store_mailbox_rename(f->acct, "INBOX", "Old/Mail", NULL), STORE_OK);
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_status(f->acct, "INBOX", &st, NULL), STORE_OK);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.id, inbox);
	assert_int_equal(store_mailbox_status(f->acct, "Old/Mail", &st, NULL), STORE_OK);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.unseen, 1);
	assert_true(has_mailbox(f->acct, "Old", NULL));
	assert_true(has_mailbox(f->acct, "INBOX/Sub", NULL)); /* inferiors stay */

	uint64_t old = mbox_id(f->acct, "Old/Mail");
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, old, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	char *body = read_back(f->acct, old, msgs[1].uid);

	assert_string_equal(body, "Subject: two\r\n\r\nbody2\r\n");
	free(body);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);
	store_msg_list_free(&msgs, n);
}

static void test_create_rename_delete_children(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox_info info;

	assert_int_equal(store_mailbox_create(f->acct, "A/B/C", 0, NULL), STORE_OK);
	/* Parents are real mailboxes (no \NoSelect). */
	assert_int_equal(store_mailbox_get(f->acct, "A", &info, NULL), STORE_OK);
	assert_true(info.has_children);
	uint32_t uidv_a = info.uidvalidity;
	uint64_t id_a = info.id;

	store_mailbox_info_clear(&info);
	assert_int_equal(store_mailbox_get(f->acct, "A/B", &info, NULL), STORE_OK);
	store_mailbox_info_clear(&info);
	uint32_t uid = append(f->acct, "A/B/C", "Subject: deep\r\n\r\nx\r\n", 0);

	assert_int_equal(store_mailbox_create(f->acct, "A/B", 0, NULL), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_delete(f->acct, "A", NULL), STORE_ERR_HAS_CHILDREN);
	assert_int_equal(store_mailbox_rename(f->acct, "A", "A/X", NULL), STORE_ERR_INVALID);
	assert_int_equal(store_mailbox_rename(f->acct, "A", "Sent", NULL), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_rename(f->acct, "Nope", "Z", NULL), STORE_ERR_NOT_FOUND);

	assert_int_equal(store_mailbox_rename(f->acct, "A", "P/Q", NULL), STORE_OK);
	assert_false(has_mailbox(f->acct, "A", NULL));
	assert_false(has_mailbox(f->acct, "A/B/C", NULL));
	assert_true(has_mailbox(f->acct, "P", NULL));
	assert_true(has_mailbox(f->acct, "P/Q/B", NULL));
	assert_int_equal(store_mailbox_get(f->acct, "P/Q", &info, NULL), STORE_OK);
	assert_int_equal(info.id, id_a);
	assert_int_equal(info.uidvalidity, uidv_a);
	store_mailbox_info_clear(&info);
	char *body = read_back(f->acct, mbox_id(f->acct, "P/Q/B/C"), uid);

	assert_string_equal(body, "Subject: deep\r\n\r\nx\r\n");
	free(body);

	assert_int_equal(store_mailbox_delete(f->acct, "P/Q/B/C", NULL), STORE_OK);
	assert_int_equal(store_mailbox_delete(f->acct, "P/Q/B", NULL), STORE_OK);
	assert_int_equal(store_mailbox_delete(f->acct, "P/Q/B", NULL), STORE_ERR_NOT_FOUND);
	assert_false(has_mailbox(f->acct, "P/Q/B", NULL));
	char *p = xasprintf("%s/mail/example.org/user/.P.Q.B", f->dir);

	assert_int_equal(access(p, F_OK), -1);
	free(p);
}

static void test_uidvalidity_bump(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox_info a, b;

	assert_int_equal(store_mailbox_create(f->acct, "Reused", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_get(f->acct, "Reused", &a, NULL), STORE_OK);
	append(f->acct, "Reused", "Subject: x\r\n\r\n.\r\n", 0);
	assert_int_equal(store_mailbox_delete(f->acct, "Reused", NULL), STORE_OK);
	assert_int_equal(store_mailbox_create(f->acct, "Reused", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_get(f->acct, "Reused", &b, NULL), STORE_OK);
	assert_true(a.uidvalidity != 0);
	assert_true(b.uidvalidity > a.uidvalidity);
	assert_true(b.id != a.id);
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_status(f->acct, "Reused", &st, NULL), STORE_OK);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.uidnext, 1);
	store_mailbox_info_clear(&a);
	store_mailbox_info_clear(&b);
}

static void test_subscribe_status(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox_info info;
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_create(f->acct, "Lists", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_get(f->acct, "Lists", &info, NULL), STORE_OK);
	assert_false(info.subscribed);
	store_mailbox_info_clear(&info);
	assert_int_equal(store_mailbox_subscribe(f->acct, "Lists", true, NULL), STORE_OK);
	assert_int_equal(store_mailbox_get(f->acct, "Lists", &info, NULL), STORE_OK);
	assert_true(info.subscribed);
	store_mailbox_info_clear(&info);
	/* RFC 3501 §6.3.6: a name may be subscribed before its mailbox exists; unsubscribing a
	 * name that is neither a mailbox nor subscribed is NOT_FOUND. */
	assert_int_equal(store_mailbox_subscribe(f->acct, "Missing", true, NULL), STORE_OK);
	char **orphans = NULL;
	size_t orphan_count = 0;
	assert_int_equal(store_orphan_subscriptions(f->acct, &orphans, &orphan_count, NULL),
			 STORE_OK);
	assert_int_equal(orphan_count, 1);
	assert_string_equal(orphans[0], "Missing");
	store_names_free(&orphans, orphan_count);
	assert_int_equal(store_mailbox_subscribe(f->acct, "Never", false, NULL),
			 STORE_ERR_NOT_FOUND);

	append(f->acct, "Lists", "Subject: a\r\n\r\n1234\r\n", STORE_FLAG_SEEN);
	uint32_t u2 = append(f->acct, "Lists", "Subject: b\r\n\r\n5678\r\n", 0);

	assert_int_equal(store_mailbox_status(f->acct, "Lists", &st, NULL), STORE_OK);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.unseen, 1);
	assert_int_equal(st.first_unseen_uid, u2);
	assert_int_equal(st.uidnext, u2 + 1);
	assert_int_equal(st.recent, 2);
	assert_int_equal(st.size, 2 * strlen("Subject: a\r\n\r\n1234\r\n"));
	assert_true(st.highestmodseq >= 2);
	uint32_t first_recent;

	assert_int_equal(store_mailbox_take_recent(f->acct, st.id, &first_recent, NULL), STORE_OK);
	assert_int_equal(first_recent, 1);
	assert_int_equal(store_mailbox_status(f->acct, "Lists", &st, NULL), STORE_OK);
	assert_int_equal(st.recent, 0);

	uint64_t bytes, msgs;

	assert_int_equal(store_account_usage(f->acct, &bytes, &msgs, NULL), STORE_OK);
	assert_int_equal(msgs, 2);
	assert_int_equal(bytes, st.size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_mailboxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbox_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_rename_delete_children, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uidvalidity_bump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_status, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
