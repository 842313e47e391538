/* Shared helpers of the store unit tests: a throw-away data directory per test, an account in
 * it, and one-call append/read-back. */
#ifndef ROOST_STORE_TEST_UTIL_H
#define ROOST_STORE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	struct store *store;
	struct store_account *acct;
};

static inline void rm_tree(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
	free(cmd);
}

static inline void fixture_reopen(struct fixture *f)
{
	struct store_settings set = { .data_dir = f->dir };

	f->store = store_open(&set, NULL);
	assert_non_null(f->store);
	assert_int_equal(store_account_open(f->store, "User@Example.org", &f->acct, NULL), STORE_OK);
}

static inline void fixture_close(struct fixture *f)
{
	store_account_close(&f->acct);
	store_close(&f->store);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/roost-store-test.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	log_set_level(LOG_ERROR);
	fixture_reopen(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_close(f);
	rm_tree(f->dir);
	free(f);
	return 0;
}

static inline uint64_t mbox_id(struct store_account *acct, const char *name)
{
	struct store_mailbox_info info;

	assert_int_equal(store_mailbox_get(acct, name, &info, NULL), STORE_OK);
	uint64_t id = info.id;

	store_mailbox_info_clear(&info);
	return id;
}

static inline uint32_t append(struct store_account *acct, const char *mailbox, const char *text,
		       uint32_t flags)
{
	struct store_save *save;
	struct store_save_meta meta = { .flags = flags };
	struct store_save_result res;

	assert_int_equal(store_save_begin(acct, mailbox, &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, text, strlen(text), NULL), STORE_OK);
	assert_int_equal(store_save_finish(&save, &meta, &res, NULL), STORE_OK);
	assert_null(save);
	assert_int_equal(res.error, STORE_OK);
	assert_true(res.uid > 0);
	return res.uid;
}

static inline char *read_back(struct store_account *acct, uint64_t id, uint32_t uid)
{
	struct store_message *msg;
	const uint8_t *data;
	size_t len;
	char *s;

	assert_int_equal(store_message_open(acct, id, uid, &msg, NULL), STORE_OK);
	data = store_message_data(msg, &len);
	s = xstrndup((const char *)data, len);
	store_message_close(&msg);
	return s;
}

static inline size_t count_files(const char *dir)
{
	char *cmd = xasprintf("ls -1 '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	unsigned long n = 0;

	free(cmd);
	if (p == NULL)
		return 0;
	if (fscanf(p, "%lu", &n) != 1)
		n = 0;
	pclose(p);
	return n;
}

#endif
