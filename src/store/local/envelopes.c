/* The cached ENVELOPE strings of a whole mailbox in one index scan, for commands that order or
 * group every message by its header (SORT, THREAD): 100,000 messages are one SQL range scan,
 * not 100,000 lookups, and no message file is opened unless its envelope was never computed. */
#include <stdlib.h>

#include "local.h"

void store_envelope_list_free(struct store_envelope **list, size_t count)
{
	struct store_envelope *l = *list;

	if (l == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(l[i].envelope);
	free(l);
	*list = NULL;
}

static enum store_error envelopes_scan(struct store_account *acct, uint64_t mailbox_id,
				       struct store_envelope **list_r, size_t *count_r,
				       struct store_err *err_r)
{
	struct store_envelope *l = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	int rc;

	if (sqlite3_prepare_v2(acct->db,
			       "SELECT m.uid, c.envelope FROM messages m LEFT JOIN message_cache c"
			       " ON c.mailbox_id = m.mailbox_id AND c.uid = m.uid"
			       " WHERE m.mailbox_id = ?1 ORDER BY m.uid",
			       -1, &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "envelopes");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *env = (const char *)sqlite3_column_text(st, 1);
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			l = xrealloc(l, cap * sizeof(*l));
		}
		l[n].uid = (uint32_t)sqlite3_column_int64(st, 0);
		l[n].envelope = env != NULL ? xstrdup(env) : NULL;
		n++;
	}
	if (rc != SQLITE_DONE)
		e = local_db_fail(acct, err_r, "envelopes");
	sqlite3_finalize(st);
	if (e != STORE_OK) {
		store_envelope_list_free(&l, n);
		return e;
	}
	*list_r = l;
	*count_r = n;
	return STORE_OK;
}

enum store_error store_envelope_list(struct store_account *acct, uint64_t mailbox_id,
				     struct store_envelope **list_r, size_t *count_r,
				     struct store_err *err_r)
{
	enum store_error e;
	struct local_mbox m;

	*list_r = NULL;
	*count_r = 0;
	local_read_begin(acct);
	e = local_mbox_by_id(acct, mailbox_id, &m, err_r);
	if (e == STORE_OK)
		e = envelopes_scan(acct, mailbox_id, list_r, count_r, err_r);
	pthread_mutex_unlock(&acct->lock);
	local_mbox_clear(&m);
	if (e != STORE_OK)
		return e;
	/* Messages found on disk have no envelope yet: compute (and remember) it now, outside
	 * the index lock. A message that vanished meanwhile keeps NULL. */
	for (size_t i = 0; i < *count_r; i++) {
		char *bodystructure = NULL;
		if ((*list_r)[i].envelope != NULL)
			continue;
		if (store_message_cache(acct, mailbox_id, (*list_r)[i].uid, &(*list_r)[i].envelope,
					&bodystructure, NULL) != STORE_OK)
			(*list_r)[i].envelope = NULL;
		free(bodystructure);
	}
	return STORE_OK;
}
