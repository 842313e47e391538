/* The SORT/THREAD keys kept beside the message cache (table sort_cache): one range scan hands
 * every message's keys to the caller, who copies only what its command compares (no
 * allocation here per message); writing them back is one transaction. The bytes are opaque
 * here: the protocol that derives them owns their format. */
#include <stdlib.h>
#include <string.h>

#include "local.h"

/* A range scan of sort_cache alone: no join with messages, since the triggers and
 * store_sort_keys_put keep no row for a message that is gone. */
static enum store_error sort_keys_scan(struct store_account *acct, uint64_t mailbox_id,
				       store_sort_keys_fn *fn, void *ctx, struct store_err *err_r)
{
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	int rc;

	if (sqlite3_prepare_v2(acct->db,
			       "SELECT uid, keys FROM sort_cache WHERE mailbox_id = ?1 ORDER BY uid",
			       -1, &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "sort-keys");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *keys = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (keys != NULL)
			fn(ctx, (uint32_t)sqlite3_column_int64(st, 0), keys, len);
	}
	if (rc != SQLITE_DONE)
		e = local_db_fail(acct, err_r, "sort-keys");
	sqlite3_finalize(st);
	return e;
}

enum store_error store_sort_keys_scan(struct store_account *acct, uint64_t mailbox_id,
				      store_sort_keys_fn *fn, void *ctx, struct store_err *err_r)
{
	enum store_error e;
	struct local_mbox m;

	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		pthread_mutex_unlock(&acct->lock);
		return STORE_ERR_IO;
	}
	e = local_mbox_by_id(acct, mailbox_id, &m, err_r);
	if (e == STORE_OK)
		e = sort_keys_scan(acct, mailbox_id, fn, ctx, err_r);
	pthread_mutex_unlock(&acct->lock);
	local_mbox_clear(&m);
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
