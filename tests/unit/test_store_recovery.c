/* Unit tests for store recovery: a deleted or corrupted index is rebuilt from the Maildir with
 * the same UIDVALIDITY, UIDs and flags; an expunged UID is not handed out again after a
 * rebuild; mail dropped into new/ by another program is picked up with fresh UIDs; a file left
 * in cur/ by a save whose commit never happened is adopted. */
#include <fcntl.h>

#include "store_test_util.h"

static char *acct_path(struct fixture *f, const char *rel)
{
	return xasprintf("%s/mail/example.org/user/%s", f->dir, rel);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_index_rebuild(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox_info before, after;
	struct store_flag_result fr;
	uint64_t id;

	assert_int_equal(store_mailbox_create(f->acct, "Work/Q.1", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_get(f->acct, "Work/Q.1", &before, NULL), STORE_OK);
	uint32_t u1 = append(f->acct, "Work/Q.1", "Subject: 1\r\n\r\none\r\n", STORE_FLAG_SEEN);
	uint32_t u2 = append(f->acct, "Work/Q.1", "Subject: 2\r\n\r\ntwo\r\n", 0);
	uint32_t u3 = append(f->acct, "Work/Q.1", "Subject: 3\r\n\r\nthree\r\n", 0);
	struct store_uid_range r2 = { u2, u2 }, r3 = { u3, u3 };

	assert_int_equal(store_flags_update(f->acct, before.id, &r2, 1, STORE_FLAGS_ADD,
					    STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT, NULL, 0, 0, &fr,
					    NULL),
			 STORE_OK);
	store_flag_result_clear(&fr);
	uint32_t *gone;
	size_t gone_n;

	/* Expunge the highest UID: after a rebuild it must not come back as a new message. */
	assert_int_equal(store_expunge(f->acct, before.id, &r3, 1, false, &gone, &gone_n, NULL),
			 STORE_OK);
	free(gone);
	fixture_close(f);

	char *idx = acct_path(f, "roost-index.sqlite");

	assert_int_equal(unlink(idx), 0);
	free(idx);
	fixture_reopen(f);

	assert_int_equal(store_mailbox_get(f->acct, "Work/Q.1", &after, NULL), STORE_OK);
	assert_int_equal(after.uidvalidity, before.uidvalidity);
	id = after.id;
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, id, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].uid, u1);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);
	assert_int_equal(msgs[1].uid, u2);
	assert_int_equal(msgs[1].flags, STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT);
	store_msg_list_free(&msgs, n);
	char *b = read_back(f->acct, id, u2);

	assert_string_equal(b, "Subject: 2\r\n\r\ntwo\r\n");
	free(b);
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_status(f->acct, "Work/Q.1", &st, NULL), STORE_OK);
	assert_true(st.uidnext > u3);
	assert_true(append(f->acct, "Work/Q.1", "Subject: 4\r\n\r\n4\r\n", 0) > u3);
	store_mailbox_info_clear(&after);
	/* Special-use of the default tree survives too. */
	assert_int_equal(store_mailbox_get(f->acct, "Trash", &after, NULL), STORE_OK);
	assert_int_equal(after.special_use, STORE_SPECIAL_TRASH);
	store_mailbox_info_clear(&after);
	store_mailbox_info_clear(&before);
}

static void test_corrupt_index(void **state)
{
	struct fixture *f = *state;
	uint32_t u = append(f->acct, "INBOX", "Subject: keep\r\n\r\nme\r\n", STORE_FLAG_ANSWERED);

	fixture_close(f);
	char *idx = acct_path(f, "roost-index.sqlite");
	int fd = open(idx, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage garbage garbage garbage", 31), 31);
	close(fd);
	free(idx);
	fixture_reopen(f);
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, inbox, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].uid, u);
	assert_int_equal(msgs[0].flags, STORE_FLAG_ANSWERED);
	store_msg_list_free(&msgs, n);
}

static void test_new_dropin(void **state)
{
	struct fixture *f = *state;
	uint32_t u = append(f->acct, "INBOX", "Subject: ours\r\n\r\n\r\n", 0);
	char *p1 = acct_path(f, "new/1700000000.P1Q1.otherhost");
	char *p2 = acct_path(f, "new/1700000001.P1Q2.otherhost:2,S");
	uint64_t inbox = mbox_id(f->acct, "INBOX");

	write_file(p1, "Subject: dropped 1\r\n\r\nA\r\n");
	write_file(p2, "Subject: dropped 2\r\n\r\nB\r\n");
	assert_int_equal(store_mailbox_refresh(f->acct, inbox, NULL), STORE_OK);
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, inbox, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(msgs[1].uid, u + 1);
	assert_int_equal(msgs[2].uid, u + 2);
	assert_int_equal(msgs[2].flags, STORE_FLAG_SEEN);
	store_msg_list_free(&msgs, n);
	char *b = read_back(f->acct, inbox, u + 1);

	assert_string_equal(b, "Subject: dropped 1\r\n\r\nA\r\n");
	free(b);
	char *newdir = acct_path(f, "new");

	assert_int_equal(count_files(newdir), 0);
	free(newdir);
	/* And at open time, in another folder. */
	fixture_close(f);
	char *p3 = acct_path(f, ".Junk/new/1700000002.P1Q3.otherhost");

	write_file(p3, "Subject: spam\r\n\r\nC\r\n");
	fixture_reopen(f);
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_status(f->acct, "Junk", &st, NULL), STORE_OK);
	assert_int_equal(st.messages, 1);
	free(p1);
	free(p2);
	free(p3);
}

static void test_orphan_adopted(void **state)
{
	struct fixture *f = *state;
	uint32_t u = append(f->acct, "INBOX", "Subject: a\r\n\r\n\r\n", 0);

	fixture_close(f);
	/* What a crash between rename into cur/ and the index commit leaves behind. */
	char *name = xasprintf("cur/1700000000.M1P1Q1.host,U=%u,S=20:2,F", u + 1);
	char *p = acct_path(f, name);

	write_file(p, "Subject: orphan\r\n\r\n\r\n");
	fixture_reopen(f);
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	char *b = read_back(f->acct, inbox, u + 1);

	assert_string_equal(b, "Subject: orphan\r\n\r\n\r\n");
	free(b);
	assert_int_equal(append(f->acct, "INBOX", "Subject: c\r\n\r\n\r\n", 0), u + 2);
	free(name);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_dropin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphan_adopted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
