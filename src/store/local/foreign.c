/* Commits made by another process. The index is shared through SQLite, so another process
 * (`roost import` while the server runs) can add messages to an account this process has
 * open, but the change feed lives in this process only: its sessions would not hear of them.
 * This process remembers each mailbox's uidnext as it last published it (seen); catching up
 * compares that with the index and publishes the difference as APPEND events, exactly as if
 * the messages had been saved here. Only additions are caught up: another process never
 * expunges or changes flags in a live account today. */
#include <stdlib.h>
#include <string.h>

#include "local.h"

void local_seen_note(struct store_account *acct, uint64_t mailbox_id, uint32_t uidnext)
{
	for (size_t i = 0; i < acct->seen_count; i++) {
		if (acct->seen[i].mailbox_id == mailbox_id) {
			if (uidnext > acct->seen[i].uidnext)
				acct->seen[i].uidnext = uidnext;
			return;
		}
	}
	acct->seen = xrealloc(acct->seen, (acct->seen_count + 1) * sizeof(*acct->seen));
	acct->seen[acct->seen_count++] = (struct local_seen){ mailbox_id, uidnext };
}

static uint32_t seen_uidnext(const struct store_account *acct, uint64_t mailbox_id, bool *found_r)
{
	for (size_t i = 0; i < acct->seen_count; i++) {
		if (acct->seen[i].mailbox_id == mailbox_id) {
			*found_r = true;
			return acct->seen[i].uidnext;
		}
	}
	*found_r = false;
	return 0;
}

void local_seen_free(struct store_account *acct)
{
	free(acct->seen);
	acct->seen = NULL;
	acct->seen_count = 0;
}

/* The (id, uidnext) of every mailbox; -1 on an index error. */
static int read_uidnexts(struct store_account *acct, struct local_seen **rows_r, size_t *count_r)
{
	sqlite3_stmt *st;
	struct local_seen *rows = NULL;
	size_t count = 0;
	int rc;

	*rows_r = NULL;
	*count_r = 0;
	if (acct->db == NULL ||
	    sqlite3_prepare_v2(acct->db, "SELECT id, uidnext FROM mailboxes", -1, &st, NULL) !=
		    SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = xrealloc(rows, (count + 1) * sizeof(*rows));
		rows[count].mailbox_id = (uint64_t)sqlite3_column_int64(st, 0);
		rows[count].uidnext = (uint32_t)sqlite3_column_int64(st, 1);
		count++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(rows);
		return -1;
	}
	*rows_r = rows;
	*count_r = count;
	return 0;
}

void local_seen_load(struct store_account *acct)
{
	struct local_seen *rows;
	size_t count;

	if (read_uidnexts(acct, &rows, &count) < 0)
		return;
	free(acct->seen);
	acct->seen = rows;
	acct->seen_count = count;
}

/* Under the write lock: collects APPEND events for every mailbox that grew behind our back. */
static enum store_error collect_foreign(struct store_account *acct, struct local_events *evs,
					size_t *added, struct store_err *err_r)
{
	struct local_seen *rows;
	size_t count;
	enum store_error e = STORE_OK;

	if (!local_db_ready(acct, err_r))
		return STORE_ERR_IO;
	if (read_uidnexts(acct, &rows, &count) < 0)
		return local_db_fail(acct, err_r, "catch-up");
	for (size_t i = 0; i < count && e == STORE_OK; i++) {
		bool found;
		uint32_t from = seen_uidnext(acct, rows[i].mailbox_id, &found);
		struct store_list_query q = { from, rows[i].uidnext - 1, 0 };
		struct store_msg *msgs = NULL;
		size_t n = 0;
		struct local_mbox m;

		if (!found || rows[i].uidnext <= from) {
			/* A mailbox created elsewhere starts from what it has now. */
			local_seen_note(acct, rows[i].mailbox_id, rows[i].uidnext);
			continue;
		}
		if (local_mbox_by_id(acct, rows[i].mailbox_id, &m, NULL) != STORE_OK)
			continue;
		e = local_msg_list_locked(acct, m.id, &q, &msgs, &n, err_r);
		if (e == STORE_OK && n > 0) {
			local_events_add(evs, STORE_EVENT_APPEND, &m, NULL, msgs, n);
			msgs = NULL;
			*added += n;
		}
		store_msg_list_free(&msgs, n);
		local_mbox_clear(&m);
	}
	free(rows);
	return e;
}

enum store_error store_account_catch_up(struct store *store, const char *address,
					size_t *added_r, struct store_err *err_r)
{
	struct local_events evs = { 0 };
	struct store_account *acct = NULL;
	enum store_error e;
	size_t added = 0;

	if (added_r != NULL)
		*added_r = 0;
	if (local_account_find_open(store, address, &acct) != 0)
		return STORE_OK;
	local_write_begin(acct);
	e = collect_foreign(acct, &evs, &added, err_r);
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
	store_account_close(&acct);
	if (added > 0)
		log_info("store=local op=catch-up account=%s messages=%zu", address, added);
	if (added_r != NULL)
		*added_r = added;
	return e;
}
