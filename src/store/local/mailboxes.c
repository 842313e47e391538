/* Mailbox operations of the local backend: list, lookup, create (with parents), delete,
 * rename (with inferiors, and the INBOX special case), subscriptions, STATUS and new/ pick-up.
 * A folder directory changes first and the index follows; the open-time sync repairs a crash
 * in between (local.h design notes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"

static void info_from_mbox(const struct local_mbox *m, struct store_mailbox_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = m->id;
	info->name = xstrdup(m->name);
	info->uidvalidity = m->uidvalidity;
	info->special_use = m->special_use;
	info->subscribed = m->subscribed;
}

void store_mailbox_info_clear(struct store_mailbox_info *info)
{
	free(info->name);
	memset(info, 0, sizeof(*info));
}

void store_mailbox_list_free(struct store_mailbox_info **listp, size_t count)
{
	struct store_mailbox_info *list = *listp;

	if (list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(list[i].name);
	free(list);
	*listp = NULL;
}

/* True when some mailbox is an inferior of name ("name/..."). */
static int has_children(struct store_account *acct, const char *name)
{
	sqlite3_stmt *st;
	char *lo = xasprintf("%s/", name), *hi = xasprintf("%s0", name); /* '0' follows '/' */
	int r = -1;

	if (sqlite3_prepare_v2(acct->db,
			       "SELECT 1 FROM mailboxes WHERE name >= ? AND name < ? LIMIT 1", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);

		r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
		sqlite3_finalize(st);
	}
	free(lo);
	free(hi);
	return r;
}

enum store_error store_mailbox_list(struct store_account *acct, struct store_mailbox_info **list_r,
				    size_t *count_r, struct store_err *err_r)
{
	struct store_mailbox_info *list = NULL;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	int rc;

	*list_r = NULL;
	*count_r = 0;
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		pthread_mutex_unlock(&acct->lock);
		return STORE_ERR_IO;
	}
	if (sqlite3_prepare_v2(acct->db,
			       "SELECT id, name, uidvalidity, special_use, subscribed FROM mailboxes"
			       " ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "list-mailboxes");
		pthread_mutex_unlock(&acct->lock);
		return e;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			list = xrealloc(list, cap * sizeof(*list));
		}
		struct store_mailbox_info *i = &list[count++];

		memset(i, 0, sizeof(*i));
		i->id = (uint64_t)sqlite3_column_int64(st, 0);
		i->name = xstrdup((const char *)sqlite3_column_text(st, 1));
		i->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
		i->special_use = (uint32_t)sqlite3_column_int64(st, 3);
		i->subscribed = sqlite3_column_int(st, 4) != 0;
	}
	if (rc != SQLITE_DONE)
		e = local_db_fail(acct, err_r, "list-mailboxes");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&acct->lock);
	if (e != STORE_OK) {
		store_mailbox_list_free(&list, count);
		return e;
	}
	/* Sorted by name, so an inferior "A/x" follows "A" directly or after other inferiors
	 * of A; names between "A/" and "A0" are exactly A's inferiors. */
	for (size_t i = 0; i < count; i++) {
		size_t len = strlen(list[i].name);

		for (size_t j = i + 1; j < count; j++) {
			if (strncmp(list[j].name, list[i].name, len) == 0 && list[j].name[len] == '/') {
				list[i].has_children = true;
				break;
			}
			if (strncmp(list[j].name, list[i].name, len) != 0)
				break;
		}
	}
	*list_r = list;
	*count_r = count;
	return STORE_OK;
}

enum store_error store_mailbox_get(struct store_account *acct, const char *name,
				   struct store_mailbox_info *info_r, struct store_err *err_r)
{
	char canon[LIMIT_MAILBOX_NAME + 1];
	struct local_mbox m;
	enum store_error e;

	memset(info_r, 0, sizeof(*info_r));
	if ((e = store_mailbox_name_check(name, canon, err_r)) != STORE_OK)
		return e;
	local_read_begin(acct);
	e = local_mbox_by_name(acct, canon, &m, err_r);
	if (e == STORE_OK) {
		info_from_mbox(&m, info_r);
		info_r->has_children = has_children(acct, canon) == 1;
	}
	pthread_mutex_unlock(&acct->lock);
	local_mbox_clear(&m);
	return e;
}

static enum store_error mailbox_count_ok(struct store_account *acct, struct store_err *err_r)
{
	sqlite3_stmt *st;
	int64_t n = 0;

	if (sqlite3_prepare_v2(acct->db, "SELECT COUNT(*) FROM mailboxes", -1, &st, NULL) !=
	    SQLITE_OK)
		return local_db_fail(acct, err_r, "create");
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (n >= LIMIT_MAILBOXES_PER_ACCOUNT)
		return local_fail(err_r, STORE_ERR_LIMIT, "Too many mailboxes");
	return STORE_OK;
}

/* Creates name's missing parents and (when create_self) name itself, in the open transaction.
 * Created mailboxes are recorded as events. */
static enum store_error create_path(struct store_account *acct, const char *canon,
				    uint32_t special_use, bool create_self,
				    struct local_events *evs, struct store_err *err_r)
{
	char *work = xstrdup(canon);
	enum store_error e = STORE_OK;
	size_t len = strlen(work);

	for (size_t i = 1; i <= len && e == STORE_OK; i++) {
		if (i < len && work[i] != '/')
			continue;
		if (i == len && !create_self)
			break;
		char saved = work[i];
		struct local_mbox m;

		work[i] = '\0';
		e = local_mbox_by_name(acct, work, &m, err_r);
		if (e == STORE_OK) {
			local_mbox_clear(&m);
			if (i == len)
				e = local_fail(err_r, STORE_ERR_EXISTS, "Mailbox already exists");
		} else if (e == STORE_ERR_NOT_FOUND) {
			e = mailbox_count_ok(acct, err_r);
			if (e == STORE_OK)
				e = local_mbox_insert(acct, work, i == len ? special_use : 0, 0, 0,
						      &m, err_r);
			if (e == STORE_OK) {
				local_events_add(evs, STORE_EVENT_MAILBOX_CREATE, &m, NULL, NULL, 0);
				local_mbox_clear(&m);
			}
		}
		work[i] = saved;
	}
	free(work);
	return e;
}

static bool folder_fits(const char *canon)
{
	char folder[260];

	return local_folder_name(canon, folder, sizeof(folder)) == 0;
}

/* Removes the folders of mailboxes created by a failed transaction. */
static void undo_creates(struct store_account *acct, struct local_events *evs)
{
	for (size_t i = 0; i < evs->count; i++) {
		if (evs->ev[i].kind != STORE_EVENT_MAILBOX_CREATE)
			continue;
		char *dir = local_folder_path(acct, evs->ev[i].mailbox);

		if (dir != NULL && strcmp(dir, acct->dir) != 0)
			local_rm_rf(dir);
		free(dir);
	}
}

enum store_error store_mailbox_create(struct store_account *acct, const char *name,
				      uint32_t special_use, struct store_err *err_r)
{
	char canon[LIMIT_MAILBOX_NAME + 1];
	struct local_events evs = { 0 };
	enum store_error e;

	if ((e = store_mailbox_name_check(name, canon, err_r)) != STORE_OK)
		return e;
	if (!folder_fits(canon))
		return local_fail(err_r, STORE_ERR_LIMIT, "Mailbox name too long");
	local_write_begin(acct);
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0) {
		e = local_db_fail(acct, err_r, "create");
		local_write_end(acct);
		return e;
	}
	e = create_path(acct, canon, special_use, true, &evs, err_r);
	/* A name subscribed before it existed is the new mailbox's subscription now. */
	if (e == STORE_OK &&
	    local_exec(acct, "UPDATE mailboxes SET subscribed = 1 WHERE name IN"
			     " (SELECT name FROM orphan_subscriptions);"
			     " DELETE FROM orphan_subscriptions WHERE name IN"
			     " (SELECT name FROM mailboxes)") < 0)
		e = local_db_fail(acct, err_r, "create");
	if (e == STORE_OK && local_exec(acct, "COMMIT") < 0)
		e = local_db_fail(acct, err_r, "create");
	if (e != STORE_OK) {
		local_exec(acct, "ROLLBACK");
		undo_creates(acct, &evs);
		local_write_end(acct);
		local_events_clear(&evs);
		return e;
	}
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
	return STORE_OK;
}

enum store_error store_mailbox_delete(struct store_account *acct, const char *name,
				      struct store_err *err_r)
{
	char canon[LIMIT_MAILBOX_NAME + 1];
	struct local_events evs = { 0 };
	struct local_mbox m;
	enum store_error e;
	char base[200];
	char *aside;
	int hc;

	if ((e = store_mailbox_name_check(name, canon, err_r)) != STORE_OK)
		return e;
	if (strcmp(canon, "INBOX") == 0) /* RFC 9051 §6.3.4 */
		return local_fail(err_r, STORE_ERR_NO_PERMISSION, "INBOX cannot be deleted");
	local_write_begin(acct);
	if ((e = local_mbox_by_name(acct, canon, &m, err_r)) != STORE_OK) {
		local_write_end(acct);
		return e;
	}
	hc = has_children(acct, canon);
	if (hc != 0) {
		e = hc > 0 ? local_fail(err_r, STORE_ERR_HAS_CHILDREN,
					"Mailbox has children, delete them first")
			   : local_db_fail(acct, err_r, "delete");
		local_write_end(acct);
		local_mbox_clear(&m);
		return e;
	}
	/* Rename the folder out of the Maildir++ namespace first (atomic), then drop the rows;
	 * the files are removed last, outside any visible name. */
	local_new_base(acct->store, base, sizeof(base));
	aside = xasprintf("%s/roost-deleted.%s", acct->dir, base);
	if (rename(m.dir, aside) < 0 || fs_fsync_dir(acct->dir) < 0) {
		int err = errno;

		log_error("store=local op=delete account=%s errno=%s", acct->address, strerror(err));
		e = local_fail(err_r, local_errno_code(err), "%s",
			       store_error_str(local_errno_code(err)));
		goto out;
	}
	/* A subscription outlives its mailbox (RFC 3501 §6.3.6). */
	char *sql = xasprintf("BEGIN IMMEDIATE; DELETE FROM messages WHERE mailbox_id = %llu;"
			      " DELETE FROM message_cache WHERE mailbox_id = %llu;"
			      " INSERT OR IGNORE INTO orphan_subscriptions(name)"
			      " SELECT name FROM mailboxes WHERE id = %llu AND subscribed = 1;"
			      " DELETE FROM expunged WHERE mailbox_id = %llu;"
			      " DELETE FROM expunge_floor WHERE mailbox_id = %llu;"
			      " DELETE FROM mailboxes WHERE id = %llu; COMMIT;",
			      (unsigned long long)m.id, (unsigned long long)m.id,
			      (unsigned long long)m.id, (unsigned long long)m.id,
			      (unsigned long long)m.id, (unsigned long long)m.id);

	if (local_exec(acct, sql) < 0) {
		e = local_db_fail(acct, err_r, "delete");
		local_exec(acct, "ROLLBACK");
		if (rename(aside, m.dir) < 0)
			log_error("store=local op=delete-undo errno=%s", strerror(errno));
	}
	free(sql);
out:
	if (e != STORE_OK) {
		local_write_end(acct);
	} else {
		local_events_add(&evs, STORE_EVENT_MAILBOX_DELETE, &m, NULL, NULL, 0);
		local_unlock_publish(acct, true, evs.ev, evs.count);
		local_events_clear(&evs);
		if (local_rm_rf(aside) < 0)
			log_warn("store=local op=delete-cleanup account=%s", acct->address);
		local_quota_after_change(acct);
	}
	free(aside);
	local_mbox_clear(&m);
	return e;
}

/* The ids and names of OLD and its inferiors ("OLD/..."), ordered by name; -1 on an index
 * error. */
struct name_row {
	uint64_t id;
	char *name;
};

static void name_rows_free(struct name_row **rowsp, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free((*rowsp)[i].name);
	free(*rowsp);
	*rowsp = NULL;
}

static int rows_under(struct store_account *acct, const char *old_canon, struct name_row **rows_r,
		      size_t *count_r)
{
	char *lo = xasprintf("%s/", old_canon), *hi = xasprintf("%s0", old_canon); /* '0' follows '/' */
	struct name_row *rows = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(acct->db,
				"SELECT id, name FROM mailboxes WHERE name = ?1 OR (name >= ?2 AND "
				"name < ?3) ORDER BY name",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, old_canon, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, lo, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, hi, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			rows = xrealloc(rows, (n + 1) * sizeof(*rows));
			rows[n].id = (uint64_t)sqlite3_column_int64(st, 0);
			rows[n].name = xstrdup((const char *)sqlite3_column_text(st, 1));
			n++;
		}
		sqlite3_finalize(st);
	}
	free(lo);
	free(hi);
	if (rc != SQLITE_DONE) {
		name_rows_free(&rows, n);
		return -1;
	}
	*rows_r = rows;
	*count_r = n;
	return 0;
}

static enum store_error drop_row(struct store_account *acct, uint64_t id, struct store_err *err_r)
{
	char *sql = xasprintf("DELETE FROM messages WHERE mailbox_id = %llu;"
			      " DELETE FROM message_cache WHERE mailbox_id = %llu;"
			      " DELETE FROM expunged WHERE mailbox_id = %llu;"
			      " DELETE FROM expunge_floor WHERE mailbox_id = %llu;"
			      " DELETE FROM mailboxes WHERE id = %llu",
			      (unsigned long long)id, (unsigned long long)id,
			      (unsigned long long)id, (unsigned long long)id,
			      (unsigned long long)id);
	enum store_error e = STORE_OK;

	if (local_exec(acct, sql) < 0)
		e = local_db_fail(acct, err_r, "rename");
	free(sql);
	return e;
}

enum store_error local_rename_rows(struct store_account *acct, const char *old_canon,
				   const char *new_canon, struct store_err *err_r)
{
	size_t old_len = strlen(old_canon), n = 0;
	struct name_row *rows = NULL;
	enum store_error e = STORE_OK;
	sqlite3_stmt *st;

	if (rows_under(acct, old_canon, &rows, &n) < 0)
		return local_db_fail(acct, err_r, "rename");
	if (sqlite3_prepare_v2(acct->db, "UPDATE mailboxes SET name = ?1 WHERE id = ?2", -1, &st,
			       NULL) != SQLITE_OK) {
		name_rows_free(&rows, n);
		return local_db_fail(acct, err_r, "rename");
	}
	for (size_t i = 0; i < n && e == STORE_OK; i++) {
		char *name = xasprintf("%s%s", new_canon, rows[i].name + old_len);
		int rc;

		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)rows[i].id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		free(name);
		if ((rc & 0xff) == SQLITE_CONSTRAINT) {
			/* Only after a crash left both names in the index: the folder now belongs
			 * to the other row. */
			log_warn("store=local op=rename account=%s duplicate-row=drop", acct->address);
			e = drop_row(acct, rows[i].id, err_r);
		} else if (rc != SQLITE_DONE) {
			e = local_db_fail(acct, err_r, "rename");
		}
	}
	sqlite3_finalize(st);
	name_rows_free(&rows, n);
	return e;
}

struct rename_entry {
	char *new_name;
	char *old_dir;
	char *new_dir;
	bool moved;
};

static enum store_error rename_inbox(struct store_account *acct, const char *new_canon,
				     struct local_events *evs, struct store_err *err_r)
{
	struct local_mbox inbox, dst;
	enum store_error e;

	/* RFC 9051 §6.3.6: RENAME INBOX moves all messages to a new mailbox with the given
	 * name, leaving INBOX empty; inferiors of INBOX are not renamed. */
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0)
		return local_db_fail(acct, err_r, "rename");
	e = create_path(acct, new_canon, 0, true, evs, err_r);
	if (e == STORE_OK && local_exec(acct, "COMMIT") < 0)
		e = local_db_fail(acct, err_r, "rename");
	if (e != STORE_OK) {
		local_exec(acct, "ROLLBACK");
		undo_creates(acct, evs);
		return e;
	}
	if ((e = local_mbox_by_name(acct, "INBOX", &inbox, err_r)) != STORE_OK)
		return e;
	if ((e = local_mbox_by_name(acct, new_canon, &dst, err_r)) != STORE_OK) {
		local_mbox_clear(&inbox);
		return e;
	}
	e = local_copy_locked(acct, &inbox, NULL, 0, &dst, true, NULL, evs, err_r);
	local_mbox_clear(&inbox);
	local_mbox_clear(&dst);
	return e;
}

static enum store_error errno_fail(struct store_err *err_r, int err)
{
	return local_fail(err_r, local_errno_code(err), "%s", store_error_str(local_errno_code(err)));
}

/* Checks that every new name is free and fits, and fills the folder paths. */
static enum store_error rename_prepare(struct store_account *acct, const struct name_row *rows,
				       struct rename_entry *ents, size_t n, const char *new_canon,
				       size_t old_len, struct store_err *err_r)
{
	for (size_t i = 0; i < n; i++) {
		struct local_mbox m;
		enum store_error e;

		ents[i].new_name = xasprintf("%s%s", new_canon, rows[i].name + old_len);
		if (strlen(ents[i].new_name) > LIMIT_MAILBOX_NAME || !folder_fits(ents[i].new_name))
			return local_fail(err_r, STORE_ERR_LIMIT, "Mailbox name too long");
		e = local_mbox_by_name(acct, ents[i].new_name, &m, err_r);
		if (e == STORE_OK) {
			local_mbox_clear(&m);
			return local_fail(err_r, STORE_ERR_EXISTS, "Mailbox already exists");
		}
		if (e != STORE_ERR_NOT_FOUND)
			return e;
		ents[i].old_dir = local_folder_path(acct, rows[i].name);
		ents[i].new_dir = local_folder_path(acct, ents[i].new_name);
	}
	return STORE_OK;
}

/* Design note 8: intent record, parents, folders, rows, commit, record removed. On an error
 * the folders are moved back and the record removed; if that cannot be done, the record stays
 * and the index recovery at the end of the write lock completes the rename instead, so the
 * hierarchy is never left split. */
static enum store_error rename_tree(struct store_account *acct, const char *old_canon,
				    const char *new_canon, struct rename_entry *ents, size_t n,
				    struct local_events *evs, struct store_err *err_r)
{
	enum store_error e;
	bool undone = true;

	if (local_rename_intent_write(acct, old_canon, new_canon) < 0) {
		int err = errno;

		log_error("store=local op=rename-intent account=%s errno=%s", acct->address,
			  strerror(err));
		return errno_fail(err_r, err);
	}
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0)
		e = local_db_fail(acct, err_r, "rename");
	else
		e = create_path(acct, new_canon, 0, false, evs, err_r);
	for (size_t i = 0; i < n && e == STORE_OK; i++) {
		if (rename(ents[i].old_dir, ents[i].new_dir) < 0) {
			int err = errno;

			log_error("store=local op=rename account=%s errno=%s", acct->address,
				  strerror(err));
			e = errno_fail(err_r, err);
			break;
		}
		ents[i].moved = true;
	}
	if (e == STORE_OK && fs_fsync_dir(acct->dir) < 0)
		e = errno_fail(err_r, errno);
	if (e == STORE_OK)
		e = local_rename_rows(acct, old_canon, new_canon, err_r);
	if (e == STORE_OK && local_exec(acct, "COMMIT") < 0)
		e = local_db_fail(acct, err_r, "rename");
	if (e != STORE_OK) {
		local_exec(acct, "ROLLBACK");
		for (size_t i = n; i-- > 0;) {
			if (ents[i].moved && rename(ents[i].new_dir, ents[i].old_dir) < 0) {
				log_error("store=local op=rename-undo errno=%s", strerror(errno));
				undone = false;
			}
		}
		if (undone) {
			undo_creates(acct, evs);
			if (fs_fsync_dir(acct->dir) < 0 || local_rename_intent_clear(acct) < 0)
				undone = false;
		}
	} else if (local_rename_intent_clear(acct) < 0) {
		undone = false;
	}
	if (!undone) {
		/* The record stays: local_write_end's recovery finishes the rename now. */
		log_error("store=local op=rename account=%s action=finish-at-recovery",
			  acct->address);
		acct->index_suspect = true;
	}
	return e;
}

enum store_error store_mailbox_rename(struct store_account *acct, const char *old_name,
				      const char *new_name, struct store_err *err_r)
{
	char old_canon[LIMIT_MAILBOX_NAME + 1], new_canon[LIMIT_MAILBOX_NAME + 1];
	struct local_events evs = { 0 };
	struct rename_entry *ents = NULL;
	struct name_row *rows = NULL;
	size_t n = 0, old_len;
	enum store_error e;

	if ((e = store_mailbox_name_check(old_name, old_canon, err_r)) != STORE_OK ||
	    (e = store_mailbox_name_check(new_name, new_canon, err_r)) != STORE_OK)
		return e;
	old_len = strlen(old_canon);
	if (strcmp(old_canon, new_canon) == 0)
		return local_fail(err_r, STORE_ERR_EXISTS, "Mailbox already exists");
	if (strcmp(new_canon, "INBOX") == 0)
		return local_fail(err_r, STORE_ERR_EXISTS, "INBOX already exists");
	if (strncmp(new_canon, old_canon, old_len) == 0 && new_canon[old_len] == '/')
		return local_fail(err_r, STORE_ERR_INVALID, "Cannot rename a mailbox into itself");
	local_write_begin(acct);
	if (strcmp(old_canon, "INBOX") == 0) {
		if (!folder_fits(new_canon)) {
			e = local_fail(err_r, STORE_ERR_LIMIT, "Mailbox name too long");
		} else {
			e = rename_inbox(acct, new_canon, &evs, err_r);
		}
		goto publish;
	}
	/* The mailbox and its inferiors, each with its new name. */
	if (rows_under(acct, old_canon, &rows, &n) < 0) {
		e = local_db_fail(acct, err_r, "rename");
		goto publish;
	}
	if (n == 0 || strcmp(rows[0].name, old_canon) != 0) {
		e = local_fail(err_r, STORE_ERR_NOT_FOUND, "Mailbox does not exist");
		goto publish;
	}
	ents = xcalloc(n, sizeof(*ents));
	e = rename_prepare(acct, rows, ents, n, new_canon, old_len, err_r);
	if (e == STORE_OK)
		e = rename_tree(acct, old_canon, new_canon, ents, n, &evs, err_r);
	for (size_t i = 0; i < n && e == STORE_OK; i++) {
		struct local_mbox m;

		if (local_mbox_by_id(acct, rows[i].id, &m, NULL) == STORE_OK) {
			local_events_add(&evs, STORE_EVENT_MAILBOX_RENAME, &m, rows[i].name, NULL,
					 0);
			local_mbox_clear(&m);
		}
	}
publish:
	if (e != STORE_OK && strcmp(old_canon, "INBOX") != 0) {
		local_write_end(acct);
	} else {
		local_unlock_publish(acct, true, evs.ev, evs.count);
	}
	local_events_clear(&evs);
	for (size_t i = 0; ents != NULL && i < n; i++) {
		free(ents[i].new_name);
		free(ents[i].old_dir);
		free(ents[i].new_dir);
	}
	free(ents);
	name_rows_free(&rows, n);
	return e;
}

/* Under the write lock: subscribes or unsubscribes a name that has no mailbox. */
static enum store_error orphan_subscribe(struct store_account *acct, const char *canon,
					 bool subscribed, struct store_err *err_r)
{
	sqlite3_stmt *st;
	int64_t count = 0;
	int rc;

	if (subscribed) {
		if (sqlite3_prepare_v2(acct->db, "SELECT COUNT(*) FROM orphan_subscriptions", -1,
				       &st, NULL) != SQLITE_OK)
			return local_db_fail(acct, err_r, "subscribe");
		if (sqlite3_step(st) == SQLITE_ROW)
			count = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		if (count >= LIMIT_ORPHAN_SUBSCRIPTIONS)
			return local_fail(err_r, STORE_ERR_LIMIT,
					  "Too many subscriptions without a mailbox");
	}
	if (sqlite3_prepare_v2(acct->db,
			       subscribed ? "INSERT OR IGNORE INTO orphan_subscriptions(name) VALUES(?)"
					  : "DELETE FROM orphan_subscriptions WHERE name = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "subscribe");
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return local_db_fail(acct, err_r, "subscribe");
	if (!subscribed && sqlite3_changes(acct->db) == 0)
		return local_fail(err_r, STORE_ERR_NOT_FOUND, "Not subscribed");
	return STORE_OK;
}

/* Ends the write: a subscription that changed is announced on the change feed (NOTIFY's
 * SubscriptionChange needs it; nothing else of the feed depends on subscriptions). */
static void subscription_publish(struct store_account *acct, const struct local_mbox *m,
				 bool subscribed, bool changed)
{
	struct local_events evs = { 0 };

	if (!changed || m->name == NULL) {
		local_write_end(acct);
		return;
	}
	local_events_add(&evs,
			 subscribed ? STORE_EVENT_MAILBOX_SUBSCRIBE : STORE_EVENT_MAILBOX_UNSUBSCRIBE,
			 m, NULL, NULL, 0);
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
}

enum store_error store_mailbox_subscribe(struct store_account *acct, const char *name,
					 bool subscribed, struct store_err *err_r)
{
	char canon[LIMIT_MAILBOX_NAME + 1];
	struct local_mbox m;
	enum store_error e;

	if ((e = store_mailbox_name_check(name, canon, err_r)) != STORE_OK)
		return e;
	local_write_begin(acct);
	e = local_mbox_by_name(acct, canon, &m, err_r);
	if (e == STORE_OK) {
		char *sql = xasprintf("UPDATE mailboxes SET subscribed = %d WHERE id = %llu",
				      subscribed ? 1 : 0, (unsigned long long)m.id);

		if (local_exec(acct, sql) < 0)
			e = local_db_fail(acct, err_r, "subscribe");
		free(sql);
	} else if (e == STORE_ERR_NOT_FOUND) {
		e = orphan_subscribe(acct, canon, subscribed, err_r);
		memset(&m, 0, sizeof(m)); /* id 0: a name without a mailbox */
		m.name = xstrdup(canon);
	}
	subscription_publish(acct, &m, subscribed, e == STORE_OK);
	local_mbox_clear(&m);
	return e;
}

enum store_error store_orphan_subscriptions(struct store_account *acct, char ***names_r,
					    size_t *count_r, struct store_err *err_r)
{
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	size_t cap = 0;
	int rc;

	*names_r = NULL;
	*count_r = 0;
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		pthread_mutex_unlock(&acct->lock);
		return STORE_ERR_IO;
	}
	if (sqlite3_prepare_v2(acct->db, "SELECT name FROM orphan_subscriptions ORDER BY name", -1,
			       &st, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "list-subscriptions");
		pthread_mutex_unlock(&acct->lock);
		return e;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*count_r == cap) {
			cap = cap ? cap * 2 : 8;
			*names_r = xrealloc(*names_r, cap * sizeof(char *));
		}
		(*names_r)[(*count_r)++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	if (rc != SQLITE_DONE)
		e = local_db_fail(acct, err_r, "list-subscriptions");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&acct->lock);
	if (e != STORE_OK)
		store_names_free(names_r, *count_r);
	return e;
}

void store_names_free(char ***names, size_t count)
{
	for (size_t i = 0; *names != NULL && i < count; i++)
		free((*names)[i]);
	free(*names);
	*names = NULL;
}

enum store_error store_mailbox_status(struct store_account *acct, const char *name,
				      struct store_mailbox_status *status_r,
				      struct store_err *err_r)
{
	char canon[LIMIT_MAILBOX_NAME + 1];
	struct local_mbox m;
	sqlite3_stmt *st;
	enum store_error e;

	memset(status_r, 0, sizeof(*status_r));
	if ((e = store_mailbox_name_check(name, canon, err_r)) != STORE_OK)
		return e;
	local_read_begin(acct);
	if ((e = local_mbox_by_name(acct, canon, &m, err_r)) != STORE_OK) {
		pthread_mutex_unlock(&acct->lock);
		return e;
	}
	status_r->id = m.id;
	status_r->uidnext = m.uidnext;
	status_r->uidvalidity = m.uidvalidity;
	status_r->highestmodseq = m.highestmodseq;
	if (sqlite3_prepare_v2(acct->db,
			       "SELECT COUNT(*), TOTAL(size), TOTAL((flags & 1) = 0),"
			       " MIN(CASE WHEN (flags & 1) = 0 THEN uid END),"
			       " TOTAL(uid >= (SELECT first_recent FROM mailboxes WHERE id = ?1))"
			       " FROM messages WHERE mailbox_id = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "status");
	} else {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)m.id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			status_r->messages = (uint32_t)sqlite3_column_int64(st, 0);
			status_r->size = (uint64_t)sqlite3_column_double(st, 1);
			status_r->unseen = (uint32_t)sqlite3_column_double(st, 2);
			status_r->first_unseen_uid = (uint32_t)sqlite3_column_int64(st, 3);
			status_r->recent = (uint32_t)sqlite3_column_double(st, 4);
		} else {
			e = local_db_fail(acct, err_r, "status");
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&acct->lock);
	local_mbox_clear(&m);
	return e;
}

enum store_error store_mailbox_take_recent(struct store_account *acct, uint64_t mailbox_id,
					   uint32_t *first_recent_uid_r, struct store_err *err_r)
{
	struct local_mbox m;
	sqlite3_stmt *st;
	enum store_error e;

	*first_recent_uid_r = 0;
	local_write_begin(acct);
	if ((e = local_mbox_by_id(acct, mailbox_id, &m, err_r)) != STORE_OK) {
		local_write_end(acct);
		return e;
	}
	*first_recent_uid_r = m.uidnext;
	if (sqlite3_prepare_v2(acct->db, "SELECT first_recent FROM mailboxes WHERE id = ?", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			*first_recent_uid_r = (uint32_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (*first_recent_uid_r < m.uidnext) {
		char *sql = xasprintf("UPDATE mailboxes SET first_recent = %u WHERE id = %llu",
				      m.uidnext, (unsigned long long)mailbox_id);

		if (local_exec(acct, sql) < 0)
			e = local_db_fail(acct, err_r, "recent");
		free(sql);
	}
	local_write_end(acct);
	local_mbox_clear(&m);
	return e;
}

enum store_error store_mailbox_refresh(struct store_account *acct, uint64_t mailbox_id,
				       struct store_err *err_r)
{
	struct local_events evs = { 0 };
	struct store_msg *added = NULL;
	size_t added_count = 0;
	struct local_mbox m;
	enum store_error e;

	local_write_begin(acct);
	if ((e = local_mbox_by_id(acct, mailbox_id, &m, err_r)) != STORE_OK) {
		local_write_end(acct);
		return e;
	}
	e = local_sync_mailbox(acct, &m, false, false, &added, &added_count, err_r);
	if (e == STORE_OK && added_count > 0) {
		local_events_add(&evs, STORE_EVENT_APPEND, &m, NULL, added, added_count);
		added = NULL;
	}
	store_msg_list_free(&added, added_count);
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
	local_mbox_clear(&m);
	return e;
}
