/* Unit tests for `roost import` into the store: an mboxrd file (From_ splitting, >From
 * unquoting, LF -> CRLF, Status/X-Status flags, From_ date as internal date) and a Dovecot-style
 * Maildir++ tree (modified UTF-7 folder names, ":2," flags, dovecot-keywords letters). */
#include <sys/stat.h>

#include "cli/cli.h"
#include "config/config.h"
#include "store_test_util.h"

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int run_import(struct fixture *f, const char *address, const char *path)
{
	struct config cfg;
	char *argv[] = { (char *)address, (char *)path, NULL };
	int r;

	config_defaults(&cfg);
	free(cfg.data_dir);
	cfg.data_dir = xstrdup(f->dir);
	r = cmd_import(&cfg, 2, argv);
	config_free(&cfg);
	return r;
}

static void test_import_mbox(void **state)
{
	struct fixture *f = *state;
	char *mbox = xasprintf("%s/in.mbox", f->dir);

	write_file(mbox, "From alice@example.org Mon Jan  2 10:00:00 2023\n"
			 "From: alice@example.org\nSubject: one\nStatus: RO\nX-Status: AF\n\n"
			 "Hello\n>From the start\n>>From two\nFrom inside, not after a blank line\n\n"
			 "From bob@example.org Tue Jan  3 11:00:00 2023\n"
			 "Subject: two\n\nBody two\n\n");
	fixture_close(f);
	assert_int_equal(run_import(f, "user@example.org", mbox), 0);
	fixture_reopen(f);
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, inbox, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED);
	assert_int_equal(msgs[0].internal_date, 1672653600);
	assert_int_equal(msgs[1].flags, 0);
	char *one = read_back(f->acct, inbox, msgs[0].uid);
	char *two = read_back(f->acct, inbox, msgs[1].uid);

	assert_string_equal(one, "From: alice@example.org\r\nSubject: one\r\nStatus: RO\r\n"
				 "X-Status: AF\r\n\r\nHello\r\nFrom the start\r\n>From two\r\n"
				 "From inside, not after a blank line\r\n");
	assert_string_equal(two, "Subject: two\r\n\r\nBody two\r\n");
	assert_int_equal(msgs[1].size, strlen(two));
	free(one);
	free(two);
	store_msg_list_free(&msgs, n);
	free(mbox);
}

static void test_import_maildir(void **state)
{
	struct fixture *f = *state;
	char *root = xasprintf("%s/Maildir", f->dir);
	static const char *const dirs[] = { "", "/cur", "/new", "/tmp", "/.Work", "/.Work/cur",
					    "/.Work.R&AOk-sum&AOk-", "/.Work.R&AOk-sum&AOk-/cur" };

	for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
		char *d = xasprintf("%s%s", root, dirs[i]);

		assert_int_equal(mkdir(d, 0700), 0);
		free(d);
	}
	char *p = xasprintf("%s/dovecot-keywords", root);

	write_file(p, "0 $Forwarded\n1 Project\n");
	free(p);
	p = xasprintf("%s/cur/1600000000.M1P1.host,S=20:2,RSb", root);
	write_file(p, "Subject: m1\n\nbody\n");
	free(p);
	p = xasprintf("%s/new/1600000001.M2P1.host", root);
	write_file(p, "Subject: m2\n\nnew\n");
	free(p);
	p = xasprintf("%s/.Work.R&AOk-sum&AOk-/cur/1600000002.M3P1.host:2,DT", root);
	write_file(p, "Subject: m3\n\ndraft\n");
	free(p);
	fixture_close(f);
	assert_int_equal(run_import(f, "user@example.org", root), 0);
	fixture_reopen(f);

	uint64_t inbox = mbox_id(f->acct, "INBOX");
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, inbox, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN | STORE_FLAG_ANSWERED);
	assert_string_equal(msgs[0].keywords, "Project");
	char *b = read_back(f->acct, inbox, msgs[0].uid);

	assert_string_equal(b, "Subject: m1\r\n\r\nbody\r\n");
	free(b);
	store_msg_list_free(&msgs, n);
	uint64_t resume = mbox_id(f->acct, "Work/Résumé");

	assert_int_equal(store_msg_list(f->acct, resume, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].flags, STORE_FLAG_DRAFT | STORE_FLAG_DELETED);
	store_msg_list_free(&msgs, n);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_import_mbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_maildir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
