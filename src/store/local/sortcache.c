/* The SORT/THREAD keys kept beside the message cache (table sort_cache): one index scan gives
 * every message of a mailbox with its keys, copied into one arena so that a mailbox of 100,000
 * messages costs two allocations, not 100,000; writing them back is one transaction. The
 * bytes are opaque here: the protocol that derives them owns their format. */
#include <stdlib.h>
#include <string.h>

#include "local.h"

void store_sort_keys_list_free(struct store_sort_keys_list *list)
{
	free(list->rows);
	free(list->arena);
	memset(list, 0, sizeof(*list));
}

/* Rows hold arena offsets while the arena grows; pointers are set once it stops moving. */
static enum store_error sort_keys_scan(struct store_account *acct, uint64_t mailbox_id,
				       struct store_sort_keys_list *l, struct store_err *err_r)
{
	size_t cap = 0, *offsets = NULL;
	struct buf arena;
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	int rc;

	if (sqlite3_prepare_v2(acct->db,
			       "SELECT m.uid, s.keys FROM messages m LEFT JOIN sort_cache s"
			       " ON s.mailbox_id = m.mailbox_id AND s.uid = m.uid"
			       " WHERE m.mailbox_id = ?1 ORDER BY m.uid",
			       -1, &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "sort-keys");
	buf_init(&arena);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *keys = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (l->count == cap) {
			cap = cap ? cap * 2 : 1024;
			l->rows = xrealloc(l->rows, cap * sizeof(*l->rows));
			offsets = xrealloc(offsets, cap * sizeof(*offsets));
		}
		l->rows[l->count] = (struct store_sort_keys){ (uint32_t)sqlite3_column_int64(st, 0),
							       NULL, 0 };
		offsets[l->count] = SIZE_MAX;
		if (keys != NULL) {
			offsets[l->count] = arena.len;
			l->rows[l->count].keys_len = len;
			buf_append(&arena, keys, len);
		}
		l->count++;
	}
	if (rc != SQLITE_DONE)
		e = local_db_fail(acct, err_r, "sort-keys");
	sqlite3_finalize(st);
	l->arena = arena.data; /* the list owns it from here */
	for (size_t i = 0; i < l->count; i++)
		if (offsets[i] != SIZE_MAX)
			l->rows[i].keys = l->arena + offsets[i];
	free(offsets);
	return e;
}

enum store_error store_sort_keys_list(struct store_account *acct, uint64_t mailbox_id,
				      struct store_sort_keys_list *list_r, struct store_err *err_r)
{
	enum store_error e;
	struct local_mbox m;

	memset(list_r, 0, sizeof(*list_r));
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		pthread_mutex_unlock(&acct->lock);
		return STORE_ERR_IO;
	}
	e = local_mbox_by_id(acct, mailbox_id, &m, err_r);
	if (e == STORE_OK)
		e = sort_keys_scan(acct, mailbox_id, list_r, err_r);
	pthread_mutex_unlock(&acct->lock);
	local_mbox_clear(&m);
	if (e != STORE_OK)
		store_sort_keys_list_free(list_r);
	return e;
}

/* A cache like message_cache (store_message_cache writes it the same way): written under the
 * account's lock without the writers' flock, and a failure only costs deriving them again. */
enum store_error store_sort_keys_put(struct store_account *acct, uint64_t mailbox_id,
				     const struct store_sort_keys *rows, size_t count,
				     struct store_err *err_r)
{
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;

	if (count == 0)
		return STORE_OK;
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		pthread_mutex_unlock(&acct->lock);
		return STORE_ERR_IO;
	}
	if (local_exec(acct, "BEGIN") < 0) {
		e = local_db_fail(acct, err_r, "sort-keys-put");
		pthread_mutex_unlock(&acct->lock);
		return e;
	}
	/* Only for messages that still exist: an expunge between reading the envelope and
	 * here must not leave keys behind. */
	if (sqlite3_prepare_v2(acct->db,
			       "INSERT OR REPLACE INTO sort_cache(mailbox_id, uid, keys)"
			       " SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM messages"
			       " WHERE mailbox_id = ?1 AND uid = ?2)",
			       -1, &st, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "sort-keys-put");
		local_exec(acct, "ROLLBACK");
		pthread_mutex_unlock(&acct->lock);
		return e;
	}
	for (size_t i = 0; i < count && e == STORE_OK; i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(st, 2, rows[i].uid);
		sqlite3_bind_blob(st, 3, rows[i].keys, (int)rows[i].keys_len, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			e = local_db_fail(acct, err_r, "sort-keys-put");
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (e != STORE_OK || local_exec(acct, "COMMIT") < 0) {
		if (e == STORE_OK)
			e = local_db_fail(acct, err_r, "sort-keys-put");
		local_exec(acct, "ROLLBACK");
	}
	pthread_mutex_unlock(&acct->lock);
	return e;
}
