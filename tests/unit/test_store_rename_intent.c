/* Unit tests for RENAME of a mailbox with inferiors across a crash: the store is closed in the
 * state a crash part-way through the rename leaves on disk (intent record written, the first
 * k folders moved, the index transaction never committed), reopened, and the whole hierarchy
 * must be under the new name with its index rows (ids, UIDVALIDITY, messages) intact, never
 * split between the two names. Also: a record whose rename had committed is only removed, and
 * an unreadable record does not keep the account from opening. */
#include <dirent.h>
#include <sys/stat.h>

#include "store_test_util.h"

#define CHILDREN 12

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

static bool exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

struct tree {
	uint64_t ids[CHILDREN + 2];
	uint32_t uidv[CHILDREN + 2];
	uint32_t uid_big, uid_child3, uid_deep;
};

/* Big, Big/c00..Big/c11 and Big/c05/deep, with messages in three of them. */
static void make_tree(struct fixture *f, struct tree *t)
{
	char name[64];
	struct store_mailbox_info info;

	assert_int_equal(store_mailbox_create(f->acct, "Big", 0, NULL), STORE_OK);
	for (int i = 0; i < CHILDREN; i++) {
		snprintf(name, sizeof(name), "Big/c%02d", i);
		assert_int_equal(store_mailbox_create(f->acct, name, 0, NULL), STORE_OK);
	}
	assert_int_equal(store_mailbox_create(f->acct, "Big/c05/deep", 0, NULL), STORE_OK);
	t->uid_big = append(f->acct, "Big", "Subject: big\r\n\r\nbig\r\n", STORE_FLAG_SEEN);
	t->uid_child3 = append(f->acct, "Big/c03", "Subject: c3\r\n\r\nc3\r\n", STORE_FLAG_FLAGGED);
	t->uid_deep = append(f->acct, "Big/c05/deep", "Subject: deep\r\n\r\ndeep\r\n", 0);
	for (int i = 0; i < CHILDREN + 2; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "Big");
		else if (i <= CHILDREN)
			snprintf(name, sizeof(name), "Big/c%02d", i - 1);
		else
			snprintf(name, sizeof(name), "Big/c05/deep");
		assert_int_equal(store_mailbox_get(f->acct, name, &info, NULL), STORE_OK);
		t->ids[i] = info.id;
		t->uidv[i] = info.uidvalidity;
		store_mailbox_info_clear(&info);
	}
}

/* The name of tree member i under PREFIX. */
static void member_name(const char *prefix, int i, char *out, size_t outlen)
{
	if (i == 0)
		snprintf(out, outlen, "%s", prefix);
	else if (i <= CHILDREN)
		snprintf(out, outlen, "%s/c%02d", prefix, i - 1);
	else
		snprintf(out, outlen, "%s/c05/deep", prefix);
}

static size_t count_under(struct store_account *acct, const char *prefix)
{
	struct store_mailbox_info *list;
	size_t n, found = 0, plen = strlen(prefix);

	assert_int_equal(store_mailbox_list(acct, &list, &n, NULL), STORE_OK);
	for (size_t i = 0; i < n; i++)
		if (strncmp(list[i].name, prefix, plen) == 0 &&
		    (list[i].name[plen] == '\0' || list[i].name[plen] == '/'))
			found++;
	store_mailbox_list_free(&list, n);
	return found;
}

static void check_message(struct store_account *acct, const char *mailbox, uint32_t uid,
			  uint32_t flags, const char *text)
{
	struct store_mailbox_info info;
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_mailbox_get(acct, mailbox, &info, NULL), STORE_OK);
	assert_int_equal(store_msg_list(acct, info.id, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].uid, uid);
	assert_int_equal(msgs[0].flags, flags);
	store_msg_list_free(&msgs, n);
	char *b = read_back(acct, info.id, uid);

	assert_string_equal(b, text);
	free(b);
	store_mailbox_info_clear(&info);
}

/* The whole tree is under PREFIX, with the same ids and UIDVALIDITYs, and nothing is left
 * under the other name. */
static void check_tree(struct fixture *f, const struct tree *t, const char *prefix,
		       const char *gone_prefix)
{
	char name[64];
	struct store_mailbox_info info;

	assert_int_equal(count_under(f->acct, prefix), CHILDREN + 2);
	assert_int_equal(count_under(f->acct, gone_prefix), 0);
	for (int i = 0; i < CHILDREN + 2; i++) {
		member_name(prefix, i, name, sizeof(name));
		assert_int_equal(store_mailbox_get(f->acct, name, &info, NULL), STORE_OK);
		assert_int_equal(info.id, t->ids[i]);
		assert_int_equal(info.uidvalidity, t->uidv[i]);
		store_mailbox_info_clear(&info);
	}
	member_name(prefix, 0, name, sizeof(name));
	check_message(f->acct, name, t->uid_big, STORE_FLAG_SEEN, "Subject: big\r\n\r\nbig\r\n");
	member_name(prefix, 4, name, sizeof(name));
	check_message(f->acct, name, t->uid_child3, STORE_FLAG_FLAGGED, "Subject: c3\r\n\r\nc3\r\n");
	member_name(prefix, CHILDREN + 1, name, sizeof(name));
	check_message(f->acct, name, t->uid_deep, 0, "Subject: deep\r\n\r\ndeep\r\n");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Leaves the account as a crash after moving the first MOVED folders of ".Big" to
 * NEW_FOLDER would: the intent record written, the index untouched. */
static void simulate_crash(struct fixture *f, const char *new_folder, size_t moved)
{
	char *acct_dir = acct_path(f, "");
	char *names[CHILDREN + 2];
	size_t n = 0;
	DIR *d = opendir(acct_dir);
	struct dirent *de;

	fixture_close(f);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".Big", 4) == 0 &&
		    (de->d_name[4] == '\0' || de->d_name[4] == '.'))
			names[n++] = xstrdup(de->d_name);
	closedir(d);
	assert_int_equal(n, CHILDREN + 2);
	qsort(names, n, sizeof(names[0]), cmp_str);

	char *intent = acct_path(f, "roost-rename");
	char *text = xasprintf("roost-rename 1\n.Big\n%s\nend\n", new_folder);

	write_file(intent, text);
	free(text);
	for (size_t i = 0; i < n; i++) {
		if (i < moved) {
			char *from = xasprintf("%s%s", acct_dir, names[i]);
			char *to = xasprintf("%s%s%s", acct_dir, new_folder, names[i] + 4);

			assert_int_equal(rename(from, to), 0);
			free(from);
			free(to);
		}
		free(names[i]);
	}
	fixture_reopen(f);
	free(intent);
	free(acct_dir);
}

static void check_no_intent(struct fixture *f)
{
	char *intent = acct_path(f, "roost-rename");

	assert_false(exists(intent));
	free(intent);
}

static void crash_after(void **state, size_t moved)
{
	struct fixture *f = *state;
	struct tree t;
	struct store_err err;

	make_tree(f, &t);
	simulate_crash(f, ".Renamed", moved);
	check_tree(f, &t, "Renamed", "Big");
	check_no_intent(f);
	/* A retried RENAME finds no source; the target is whole. The tree renames back. */
	assert_int_equal(store_mailbox_rename(f->acct, "Big", "Renamed", &err),
			 STORE_ERR_NOT_FOUND);
	assert_int_equal(store_mailbox_rename(f->acct, "Renamed", "Big", NULL), STORE_OK);
	check_tree(f, &t, "Big", "Renamed");
	/* And the state survives another restart unchanged. */
	fixture_close(f);
	fixture_reopen(f);
	check_tree(f, &t, "Big", "Renamed");
}

static void test_crash_before_first_folder(void **state)
{
	crash_after(state, 0);
}

static void test_crash_after_parent_only(void **state)
{
	crash_after(state, 1);
}

static void test_crash_half_way(void **state)
{
	crash_after(state, (CHILDREN + 2) / 2);
}

static void test_crash_after_last_folder(void **state)
{
	crash_after(state, CHILDREN + 2);
}

/* The new name's parents (created before any folder moves) are there even when their
 * creation was lost: the tree does not end up below a mailbox that does not exist. */
static void test_crash_new_parents(void **state)
{
	struct fixture *f = *state;
	struct tree t;

	make_tree(f, &t);
	simulate_crash(f, ".A.B.Renamed", 3);
	check_tree(f, &t, "A/B/Renamed", "Big");
	check_no_intent(f);
	struct store_mailbox_info info;

	assert_int_equal(store_mailbox_get(f->acct, "A", &info, NULL), STORE_OK);
	store_mailbox_info_clear(&info);
	assert_int_equal(store_mailbox_get(f->acct, "A/B", &info, NULL), STORE_OK);
	store_mailbox_info_clear(&info);
}

/* A crash after the commit but before the record was removed: the record is dropped, and a
 * mailbox made under the old name since is left alone. */
static void test_stale_intent_after_commit(void **state)
{
	struct fixture *f = *state;
	struct tree t;

	make_tree(f, &t);
	assert_int_equal(store_mailbox_rename(f->acct, "Big", "Renamed", NULL), STORE_OK);
	assert_int_equal(store_mailbox_create(f->acct, "Big/fresh", 0, NULL), STORE_OK);
	fixture_close(f);
	char *intent = acct_path(f, "roost-rename");

	write_file(intent, "roost-rename 1\n.Big\n.Renamed\nend\n");
	fixture_reopen(f);
	assert_false(exists(intent));
	free(intent);
	check_tree(f, &t, "Renamed", "Big/c");
	assert_int_equal(count_under(f->acct, "Big"), 2);
	assert_int_equal(count_under(f->acct, "Renamed/fresh"), 0);
}

/* A finished rename leaves no record behind (the record would otherwise be finished again). */
static void test_rename_removes_intent(void **state)
{
	struct fixture *f = *state;
	struct tree t;

	make_tree(f, &t);
	assert_int_equal(store_mailbox_rename(f->acct, "Big", "Renamed", NULL), STORE_OK);
	char *intent = acct_path(f, "roost-rename");

	assert_false(exists(intent));
	free(intent);
	check_tree(f, &t, "Renamed", "Big");
}

/* A folder that cannot be moved (a stray non-empty directory sits at its new name) fails the
 * rename: the folders moved so far go back, and no record is left to finish it later. */
static void test_failed_rename_is_undone(void **state)
{
	struct fixture *f = *state;
	struct tree t;
	struct store_err err;
	char *stray = acct_path(f, ".Renamed.c07");
	char *stray_cur = acct_path(f, ".Renamed.c07/cur");

	make_tree(f, &t);
	assert_int_equal(mkdir(stray, 0700), 0);
	assert_int_equal(mkdir(stray_cur, 0700), 0);
	assert_int_not_equal(store_mailbox_rename(f->acct, "Big", "Renamed", &err), STORE_OK);
	char *intent = acct_path(f, "roost-rename");

	assert_false(exists(intent));
	check_tree(f, &t, "Big", "Renamed");
	assert_int_equal(rmdir(stray_cur), 0);
	assert_int_equal(rmdir(stray), 0);
	fixture_close(f);
	fixture_reopen(f);
	check_tree(f, &t, "Big", "Renamed");
	assert_false(exists(intent));
	free(intent);
	free(stray);
	free(stray_cur);
}

static void test_unreadable_intent(void **state)
{
	struct fixture *f = *state;
	struct tree t;

	make_tree(f, &t);
	fixture_close(f);
	char *intent = acct_path(f, "roost-rename");

	write_file(intent, "roost-rename 1\n.Big\n");
	fixture_reopen(f);
	assert_false(exists(intent));
	free(intent);
	check_tree(f, &t, "Big", "Renamed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crash_before_first_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_parent_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_half_way, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_last_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_new_parents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_intent_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_removes_intent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_rename_is_undone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_intent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
