/* Unit tests for store messages: byte-exact append and read-back (also of a large message and
 * a multi-account delivery), flags and keywords with MODSEQ and UNCHANGEDSINCE, copy/move
 * with the UID map, expunge, cached ENVELOPE/BODYSTRUCTURE, the size limit and quota. */
#include "store_test_util.h"

static void test_append_read_exact(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	const char *text = "From: a@example.org\r\nSubject: hi\r\n\r\nline1\r\n\r\n.dot\r\n";
	uint32_t uid = append(f->acct, "INBOX", text, STORE_FLAG_FLAGGED);
	char *back = read_back(f->acct, inbox, uid);

	assert_string_equal(back, text);
	free(back);

	/* 3 MiB written in uneven chunks, including NUL and 8-bit bytes. */
	size_t big_len = 3 * 1024 * 1024 + 17;
	uint8_t *big = xmalloc(big_len);
	struct store_save *save;
	struct store_save_result res;
	struct store_message *msg;
	size_t len;

	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 7));
	assert_int_equal(store_save_begin(f->acct, "inbox", &save, NULL), STORE_OK);
	for (size_t off = 0; off < big_len;) {
		size_t n = big_len - off < 4099 ? big_len - off : 4099;

		assert_int_equal(store_save_write(save, big + off, n, NULL), STORE_OK);
		off += n;
	}
	assert_int_equal(store_save_finish(&save, NULL, &res, NULL), STORE_OK);
	assert_int_equal(res.uid, uid + 1);
	assert_int_equal(store_message_open(f->acct, inbox, res.uid, &msg, NULL), STORE_OK);
	const uint8_t *data = store_message_data(msg, &len);

	assert_int_equal(len, big_len);
	assert_memory_equal(data, big, big_len);
	store_message_close(&msg);
	assert_null(msg);
	free(big);

	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, inbox, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].uid, uid);
	assert_int_equal(msgs[0].flags, STORE_FLAG_FLAGGED);
	assert_int_equal(msgs[0].size, strlen(text));
	assert_int_equal(msgs[1].size, big_len);
	assert_true(msgs[1].modseq > msgs[0].modseq);
	store_msg_list_free(&msgs, n);

	assert_int_equal(store_message_open(f->acct, inbox, 999, &msg, NULL), STORE_ERR_NOT_FOUND);
	assert_int_equal(store_save_begin(f->acct, "Nope", &save, NULL), STORE_ERR_NOT_FOUND);
	/* Aborted saves leave nothing behind. */
	assert_int_equal(store_save_begin(f->acct, "INBOX", &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, "x", 1, NULL), STORE_OK);
	store_save_abort(&save);
	char *tmp = xasprintf("%s/mail/example.org/user/tmp", f->dir);

	assert_int_equal(count_files(tmp), 0);
	free(tmp);
}

static void test_cache(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	uint32_t uid = append(f->acct, "INBOX",
			      "From: Ann <ann@example.org>\r\nSubject: cached\r\n"
			      "Content-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n",
			      0);
	char *env, *bs;

	assert_int_equal(store_message_cache(f->acct, inbox, uid, &env, &bs, NULL), STORE_OK);
	assert_non_null(env);
	assert_non_null(bs);
	assert_non_null(strstr(env, "\"cached\""));
	assert_non_null(strstr(bs, "\"TEXT\" \"PLAIN\""));
	free(env);
	free(bs);
}

static void test_flags_modseq(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	uint32_t u1 = append(f->acct, "INBOX", "Subject: 1\r\n\r\n1\r\n", 0);
	uint32_t u2 = append(f->acct, "INBOX", "Subject: 2\r\n\r\n2\r\n", 0);
	struct store_uid_range all = { 1, UINT32_MAX }, one = { u1, u1 };
	const char *kw[] = { "$Forwarded", "Work" };
	struct store_flag_result r;
	struct store_mailbox_status st0, st1;

	assert_int_equal(store_mailbox_status(f->acct, "INBOX", &st0, NULL), STORE_OK);
	assert_int_equal(store_flags_update(f->acct, inbox, &all, 1, STORE_FLAGS_ADD,
					    STORE_FLAG_SEEN, kw, 2, 0, &r, NULL),
			 STORE_OK);
	assert_int_equal(r.changed_count, 2);
	assert_int_equal(r.changed[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(r.changed[0].keywords, "$Forwarded Work");
	assert_true(r.changed[1].modseq > r.changed[0].modseq);
	assert_true(r.changed[0].modseq > st0.highestmodseq);
	uint64_t m1 = r.changed[1].modseq;

	store_flag_result_clear(&r);
	assert_int_equal(store_mailbox_status(f->acct, "INBOX", &st1, NULL), STORE_OK);
	assert_true(st1.highestmodseq > st0.highestmodseq);
	assert_int_equal(st1.unseen, 0);

	/* No change: no new modseq. */
	assert_int_equal(store_flags_update(f->acct, inbox, &all, 1, STORE_FLAGS_ADD,
					    STORE_FLAG_SEEN, NULL, 0, 0, &r, NULL),
			 STORE_OK);
	assert_int_equal(r.changed_count, 0);
	store_flag_result_clear(&r);

	/* Remove one keyword from one message; the file name follows the flags. */
	const char *work[] = { "work" };

	assert_int_equal(store_flags_update(f->acct, inbox, &one, 1, STORE_FLAGS_REMOVE,
					    STORE_FLAG_SEEN, work, 1, 0, &r, NULL),
			 STORE_OK);
	assert_int_equal(r.changed_count, 1);
	assert_int_equal(r.changed[0].flags, 0);
	assert_string_equal(r.changed[0].keywords, "$Forwarded");
	store_flag_result_clear(&r);

	/* UNCHANGEDSINCE (RFC 7162 §3.2): u1 was changed after m1, u2 was not. */
	assert_int_equal(store_flags_update(f->acct, inbox, &all, 1, STORE_FLAGS_SET,
					    STORE_FLAG_DELETED, NULL, 0, m1, &r, NULL),
			 STORE_OK);
	assert_int_equal(r.failed_count, 1);
	assert_int_equal(r.failed_uids[0], u1);
	assert_int_equal(r.changed_count, 1);
	assert_int_equal(r.changed[0].uid, u2);
	assert_null(r.changed[0].keywords);
	store_flag_result_clear(&r);

	const char *badkw[] = { "has space" };

	assert_int_equal(store_flags_update(f->acct, inbox, &all, 1, STORE_FLAGS_ADD, 0, badkw, 1,
					    0, &r, NULL),
			 STORE_ERR_INVALID);

	struct store_list_query q = { .changedsince = m1 };
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, inbox, &q, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	store_msg_list_free(&msgs, n);
	char *cmd = xasprintf("ls '%s/mail/example.org/user/cur' | grep -c ':2,T$'", f->dir);
	FILE *p = popen(cmd, "r");
	int c = 0;

	assert_int_equal(fscanf(p, "%d", &c), 1);
	pclose(p);
	free(cmd);
	assert_int_equal(c, 1);
}

static void test_copy_move_expunge(void **state)
{
	struct fixture *f = *state;
	uint64_t inbox = mbox_id(f->acct, "INBOX"), arch = mbox_id(f->acct, "Archive");
	uint32_t u[4];
	struct store_uid_map map;
	struct store_uid_range r = { 2, 3 };
	const char *kw[] = { "Keep" };
	struct store_flag_result fr;

	for (int i = 0; i < 4; i++) {
		char *t = xasprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i);

		u[i] = append(f->acct, "INBOX", t, i == 2 ? STORE_FLAG_ANSWERED : 0);
		free(t);
	}
	assert_int_equal(store_flags_update(f->acct, inbox, &r, 1, STORE_FLAGS_ADD, 0, kw, 1, 0,
					    &fr, NULL),
			 STORE_OK);
	store_flag_result_clear(&fr);
	assert_int_equal(store_copy(f->acct, inbox, &r, 1, arch, false, &map, NULL), STORE_OK);
	assert_int_equal(map.count, 2);
	assert_int_equal(map.src_uids[0], u[1]);
	assert_int_equal(map.src_uids[1], u[2]);
	assert_int_equal(map.dst_uids[0], 1);
	assert_int_equal(map.dst_uids[1], 2);
	struct store_mailbox_info ai;

	assert_int_equal(store_mailbox_get(f->acct, "Archive", &ai, NULL), STORE_OK);
	assert_int_equal(map.dst_uidvalidity, ai.uidvalidity);
	store_mailbox_info_clear(&ai);
	store_uid_map_clear(&map);
	char *b = read_back(f->acct, arch, 2);

	assert_string_equal(b, "Subject: m2\r\n\r\nbody 2\r\n");
	free(b);
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_msg_list(f->acct, arch, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[1].flags, STORE_FLAG_ANSWERED);
	assert_string_equal(msgs[1].keywords, "Keep");
	store_msg_list_free(&msgs, n);

	/* Move u[0] and u[3] to Trash: gone from INBOX, present in Trash with new UIDs. */
	uint64_t trash = mbox_id(f->acct, "Trash");
	struct store_uid_range mv[2] = { { u[0], u[0] }, { u[3], u[3] } };

	assert_int_equal(store_copy(f->acct, inbox, mv, 2, trash, true, &map, NULL), STORE_OK);
	assert_int_equal(map.count, 2);
	assert_int_equal(map.dst_uids[1], 2);
	store_uid_map_clear(&map);
	assert_int_equal(store_msg_list(f->acct, inbox, NULL, &msgs, &n, NULL), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].uid, u[1]);
	store_msg_list_free(&msgs, n);
	b = read_back(f->acct, trash, 2);
	assert_string_equal(b, "Subject: m3\r\n\r\nbody 3\r\n");
	free(b);
	/* A MOVE may name its own mailbox (RFC 6851 §3.3, covered end to end by
	 * test_imap_rfc3501.py); UIDs already moved away match nothing there. */
	assert_int_equal(store_copy(f->acct, inbox, mv, 2, inbox, true, &map, NULL), STORE_OK);
	assert_int_equal(map.count, 0);
	store_uid_map_clear(&map);

	/* Expunge only \Deleted ones. */
	struct store_uid_range one = { u[1], u[1] };
	uint32_t *gone;
	size_t gone_n;

	assert_int_equal(store_flags_update(f->acct, inbox, &one, 1, STORE_FLAGS_ADD,
					    STORE_FLAG_DELETED, NULL, 0, 0, &fr, NULL),
			 STORE_OK);
	store_flag_result_clear(&fr);
	assert_int_equal(store_expunge(f->acct, inbox, NULL, 0, true, &gone, &gone_n, NULL), STORE_OK);
	assert_int_equal(gone_n, 1);
	assert_int_equal(gone[0], u[1]);
	free(gone);
	struct store_message *m;

	assert_int_equal(store_message_open(f->acct, inbox, u[1], &m, NULL), STORE_ERR_NOT_FOUND);
	/* The copy in Archive shares nothing that expunge could break. */
	b = read_back(f->acct, arch, 1);
	assert_string_equal(b, "Subject: m1\r\n\r\nbody 1\r\n");
	free(b);
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_status(f->acct, "INBOX", &st, NULL), STORE_OK);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.uidnext, u[3] + 1); /* UIDs are never handed out again */
	assert_int_equal(store_expunge(f->acct, inbox, NULL, 0, false, &gone, &gone_n, NULL),
			 STORE_OK);
	assert_int_equal(gone_n, 1);
	free(gone);
	uint32_t again = append(f->acct, "INBOX", "Subject: new\r\n\r\n\r\n", 0);

	assert_int_equal(again, u[3] + 1);
}

static void test_limits_quota(void **state)
{
	struct fixture *f = *state;
	struct store_save *save;
	struct store_save_result res;
	struct store_settings set = { .data_dir = f->dir, .max_message_size = 100 };
	struct store *small = store_open(&set, NULL);
	struct store_account *acct;
	char block[64];

	assert_non_null(small);
	fixture_close(f);
	assert_int_equal(store_account_open(small, "user@example.org", &acct, NULL), STORE_OK);
	memset(block, 'x', sizeof(block));
	assert_int_equal(store_save_begin(acct, "INBOX", &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, block, sizeof(block), NULL), STORE_OK);
	assert_int_equal(store_save_write(save, block, sizeof(block), NULL), STORE_ERR_LIMIT);
	assert_int_equal(store_save_finish(&save, NULL, &res, NULL), STORE_ERR_LIMIT);
	assert_int_equal(res.error, STORE_ERR_LIMIT);

	store_account_set_quota(acct, 100, 0);
	append(acct, "INBOX", "0123456789012345678901234567890123456789012345678901234567890", 0);
	assert_int_equal(store_save_begin(acct, "INBOX", &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, block, sizeof(block), NULL), STORE_OK);
	assert_int_equal(store_save_finish(&save, NULL, &res, NULL), STORE_ERR_OVER_QUOTA);
	char *cur = xasprintf("%s/mail/example.org/user/cur", f->dir);
	char *tmp = xasprintf("%s/mail/example.org/user/tmp", f->dir);

	assert_int_equal(count_files(cur), 1);
	assert_int_equal(count_files(tmp), 0);
	free(cur);
	free(tmp);
	store_account_close(&acct);
	store_close(&small);
	fixture_reopen(f);
}

static void test_multi_delivery(void **state)
{
	struct fixture *f = *state;
	struct store_account *b, *c;
	struct store_save *save;
	struct store_save_result res[3];
	const char *text = "Subject: to all\r\n\r\nhello everyone\r\n";

	assert_int_equal(store_account_open(f->store, "bob@example.org", &b, NULL), STORE_OK);
	assert_int_equal(store_account_open(f->store, "carol@example.net", &c, NULL), STORE_OK);
	struct store_save_target t[3] = { { f->acct, NULL }, { b, "INBOX" }, { c, "Junk" } };

	assert_int_equal(store_save_begin_multi(t, 3, &save, NULL), STORE_OK);
	assert_int_equal(store_save_write(save, text, strlen(text), NULL), STORE_OK);
	assert_int_equal(store_save_finish(&save, NULL, res, NULL), STORE_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].error, STORE_OK);
		assert_int_equal(res[i].uid, 1);
	}
	char *s = read_back(b, mbox_id(b, "INBOX"), 1);

	assert_string_equal(s, text);
	free(s);
	s = read_back(c, mbox_id(c, "Junk"), 1);
	assert_string_equal(s, text);
	free(s);
	/* Same account opened twice shares one handle. */
	struct store_account *b2;

	assert_int_equal(store_account_open(f->store, "BOB@example.org", &b2, NULL), STORE_OK);
	assert_ptr_equal(b, b2);
	store_account_close(&b2);
	assert_int_equal(store_account_open(f->store, "../x@example.org", &b2, NULL),
			 STORE_ERR_INVALID);
	assert_int_equal(store_account_open(f->store, "a/b@example.org", &b2, NULL),
			 STORE_ERR_INVALID);
	store_account_close(&b);
	store_account_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_read_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_modseq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_move_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_delivery, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
