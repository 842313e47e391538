/* Per-account counters in the account's index (store_counts_* of store.h): the table the spam
 * classifier keeps its token and message counts in. The store knows nothing of tokens; it
 * keeps pairs of counts under 64-bit keys, bounded in rows.
 *
 * Pruning: a row remembers the last day it was touched and on how many distinct days. Past
 * the cap, the rows touched on the fewest days go first, the oldest among them first, down to
 * 9/10 of the cap so that one update past the cap does not prune at every commit after it.
 * Rows with a key below STORE_COUNT_PINNED are never pruned. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "local.h"

static const char counts_upsert_sql[] =
	"INSERT INTO counts(key, c0, c1, day, days) VALUES (?1, MAX(?2, 0), MAX(?3, 0), ?4, 1)"
	" ON CONFLICT(key) DO UPDATE SET c0 = MAX(c0 + ?2, 0), c1 = MAX(c1 + ?3, 0),"
	" days = days + (day <> ?4), day = ?4";
static const char counts_get_sql[] = "SELECT c0, c1 FROM counts WHERE key = ?";
static const char counts_size_sql[] = "SELECT COUNT(*) FROM counts";

static int64_t today(void)
{
	return (int64_t)(time(NULL) / 86400);
}

static int64_t counts_rows_locked(struct store_account *acct)
{
	sqlite3_stmt *st = local_stmt(acct, counts_size_sql);
	int64_t rows = -1;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		rows = sqlite3_column_int64(st, 0);
	local_stmt_done(st);
	return rows;
}

/* Removes rows past the cap (see the file comment); -1 on a database error. */
static int counts_prune_locked(struct store_account *acct, uint64_t cap)
{
	int64_t rows = counts_rows_locked(acct);
	int64_t keep = (int64_t)(cap - cap / 10);

	if (rows < 0)
		return -1;
	if (cap == 0 || rows <= (int64_t)cap)
		return 0;
	char *sql = xasprintf("DELETE FROM counts WHERE key IN (SELECT key FROM counts"
			      " WHERE key < 0 OR key >= %d ORDER BY days, day LIMIT %lld)",
			      STORE_COUNT_PINNED, (long long)(rows - keep));
	int rc = local_exec(acct, sql);

	free(sql);
	return rc;
}

static int counts_apply_locked(struct store_account *acct, const struct store_count_delta *deltas,
			       size_t count)
{
	sqlite3_stmt *st = local_stmt(acct, counts_upsert_sql);
	int64_t day = today();

	if (st == NULL)
		return -1;
	for (size_t i = 0; i < count; i++) {
		sqlite3_bind_int64(st, 1, (int64_t)deltas[i].key);
		sqlite3_bind_int64(st, 2, deltas[i].d0);
		sqlite3_bind_int64(st, 3, deltas[i].d1);
		sqlite3_bind_int64(st, 4, day);
		int rc = sqlite3_step(st);

		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			local_stmt_done(st);
			return -1;
		}
	}
	local_stmt_done(st);
	return 0;
}

enum store_error store_counts_update(struct store_account *acct,
				     const struct store_count_delta *deltas, size_t count,
				     uint64_t cap, struct store_err *err_r)
{
	enum store_error e = STORE_OK;

	local_write_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		e = STORE_ERR_IO;
	} else if (local_exec(acct, "BEGIN IMMEDIATE") < 0) {
		e = local_db_fail(acct, err_r, "counts-begin");
	} else if (counts_apply_locked(acct, deltas, count) < 0 ||
		   counts_prune_locked(acct, cap) < 0 || local_exec(acct, "COMMIT") < 0) {
		e = local_db_fail(acct, err_r, "counts-update");
		local_exec(acct, "ROLLBACK");
	}
	local_write_end(acct);
	return e;
}

enum store_error store_counts_get(struct store_account *acct, const uint64_t *keys, size_t count,
				  uint32_t (*counts_r)[2], struct store_err *err_r)
{
	enum store_error e = STORE_OK;
	sqlite3_stmt *st;

	memset(counts_r, 0, count * sizeof(*counts_r));
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		e = STORE_ERR_IO;
	} else if ((st = local_stmt(acct, counts_get_sql)) == NULL) {
		e = local_db_fail(acct, err_r, "counts-get");
	} else {
		for (size_t i = 0; i < count && e == STORE_OK; i++) {
			sqlite3_bind_int64(st, 1, (int64_t)keys[i]);
			int rc = sqlite3_step(st);

			if (rc == SQLITE_ROW) {
				counts_r[i][0] = (uint32_t)sqlite3_column_int64(st, 0);
				counts_r[i][1] = (uint32_t)sqlite3_column_int64(st, 1);
			} else if (rc != SQLITE_DONE) {
				e = local_db_fail(acct, err_r, "counts-get");
			}
			sqlite3_reset(st);
		}
		local_stmt_done(st);
	}
	pthread_mutex_unlock(&acct->lock);
	return e;
}

enum store_error store_counts_size(struct store_account *acct, uint64_t *rows_r,
				   struct store_err *err_r)
{
	enum store_error e = STORE_OK;
	int64_t rows;

	*rows_r = 0;
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r))
		e = STORE_ERR_IO;
	else if ((rows = counts_rows_locked(acct)) < 0)
		e = local_db_fail(acct, err_r, "counts-size");
	else
		*rows_r = (uint64_t)rows;
	pthread_mutex_unlock(&acct->lock);
	return e;
}
