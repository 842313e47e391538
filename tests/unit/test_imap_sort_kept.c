/* The SORT/THREAD answers kept between commands (imap/sort_kept.c): found only for the same
 * version, command and UID list; never more than LIMIT_IMAP_SORT_KEPT_BYTES kept, the least
 * recently used going first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "imap/sort.h"

static struct store_msg *mailbox(size_t n, uint32_t first_uid)
{
	struct store_msg *msgs = calloc(n + 1, sizeof(*msgs));

	for (size_t i = 0; i < n; i++)
		msgs[i].uid = first_uid + (uint32_t)i;
	return msgs;
}

static struct imap_kept_key sort_key(uint64_t mailbox_id, uint64_t writes)
{
	struct imap_kept_key key;

	memset(&key, 0, sizeof(key));
	key.version.opened = 1;
	key.version.writes = writes;
	key.mailbox_id = mailbox_id;
	key.crit[0].key = IMAP_SORT_DATE;
	key.crit_count = 1;
	return key;
}

static void test_found_only_unchanged(void **state)
{
	(void)state;
	struct store_msg *msgs = mailbox(3, 1), *other = mailbox(3, 2);
	const uint32_t order[3] = { 2, 0, 1 };
	struct imap_kept_key key = sort_key(7, 1), later = sort_key(7, 2), subject = key;
	uint32_t *got = NULL;

	subject.crit[0].key = IMAP_SORT_SUBJECT;
	imap_kept_put(&key, msgs, 3, order, NULL, 0);
	assert_true(imap_kept_find(&key, msgs, 3, &got, NULL));
	assert_memory_equal(got, order, sizeof(order));
	free(got);
	assert_false(imap_kept_find(&later, msgs, 3, &got, NULL));	/* index written since */
	assert_false(imap_kept_find(&subject, msgs, 3, &got, NULL)); /* other criteria */
	assert_false(imap_kept_find(&key, msgs, 2, &got, NULL));	/* a message fewer */
	assert_false(imap_kept_find(&key, other, 3, &got, NULL));	/* other messages */
	/* the mismatch dropped it */
	assert_false(imap_kept_find(&key, msgs, 3, &got, NULL));
	free(msgs);
	free(other);
}

static void test_thread_text(void **state)
{
	(void)state;
	struct store_msg *msgs = mailbox(2, 10);
	struct imap_kept_key key = sort_key(8, 1), by_msn;
	struct buf text;

	key.thread = true;
	key.by_uid = true;
	key.crit_count = 0;
	by_msn = key;
	by_msn.by_uid = false;
	buf_init(&text);
	imap_kept_put(&key, msgs, 2, NULL, (const uint8_t *)"(10 11)", 7);
	assert_false(imap_kept_find(&by_msn, msgs, 2, NULL, &text));
	assert_true(imap_kept_find(&key, msgs, 2, NULL, &text));
	assert_string_equal(buf_cstr(&text), "(10 11)");
	buf_free(&text);
	free(msgs);
}

/* Mailboxes of an eighth of the bound each (8 bytes a message): the ninth evicts the least
 * recently used, and the total never passes the bound. */
static void test_bounded_lru(void **state)
{
	(void)state;
	size_t n = LIMIT_IMAP_SORT_KEPT_BYTES / 8 / 8;
	struct store_msg *msgs = mailbox(n, 1);
	uint32_t *order = calloc(n, sizeof(*order)), *got = NULL;
	struct imap_kept_key keys[9];

	for (uint64_t i = 0; i < 9; i++) {
		keys[i] = sort_key(100 + i, 1);
		if (i == 8) /* mailbox 100 used last: 101 is now the oldest */
			assert_true(imap_kept_find(&keys[0], msgs, n, &got, NULL));
		free(got);
		got = NULL;
		imap_kept_put(&keys[i], msgs, n, order, NULL, 0);
	}
	assert_false(imap_kept_find(&keys[1], msgs, n, &got, NULL));
	for (size_t i = 0; i < 9; i++) {
		if (i == 1)
			continue;
		assert_true(imap_kept_find(&keys[i], msgs, n, &got, NULL));
		free(got);
		got = NULL;
	}
	/* more than a quarter of the bound is never kept */
	size_t big = LIMIT_IMAP_SORT_KEPT_BYTES / 4 / 8 + 1;
	struct store_msg *huge = mailbox(big, 1);
	uint32_t *huge_order = calloc(big, sizeof(*huge_order));
	struct imap_kept_key huge_key = sort_key(200, 1);
	imap_kept_put(&huge_key, huge, big, huge_order, NULL, 0);
	assert_false(imap_kept_find(&huge_key, huge, big, &got, NULL));
	free(huge_order);
	free(huge);
	free(order);
	free(msgs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_only_unchanged),
		cmocka_unit_test(test_thread_text),
		cmocka_unit_test(test_bounded_lru),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
