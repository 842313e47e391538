/* The local backend's store and account handles: opening (creating, checking and rebuilding
 * the SQLite index), the shared per-account handle, mailbox operations, quota and the change
 * feed's subscriber list. Messages are in messages.c, saving in save.c, recovery in sync.c. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "local.h"

static const char *const schema_sql =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS mailboxes("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE,"
	" uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL,"
	" highestmodseq INTEGER NOT NULL,"
	" first_recent INTEGER NOT NULL DEFAULT 1,"
	" special_use INTEGER NOT NULL DEFAULT 0,"
	" subscribed INTEGER NOT NULL DEFAULT 0,"
	/* The uidnext floor last written to the folder's roost-uidvalidity file. */
	" uid_floor INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS messages("
	" mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, file TEXT NOT NULL,"
	" flags INTEGER NOT NULL, keywords TEXT, modseq INTEGER NOT NULL,"
	" internal_date INTEGER NOT NULL, size INTEGER NOT NULL,"
	" PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
	/* ENVELOPE and BODYSTRUCTURE live apart from messages so that listing a mailbox (the
	 * SELECT path) scans only the small rows. NULL = not computed (yet): the MIME layer could
	 * not parse the message, or it was found on disk; store_message_cache computes it then. */
	"CREATE TABLE IF NOT EXISTS message_cache("
	" mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, envelope TEXT, bodystructure TEXT,"
	" PRIMARY KEY(mailbox_id, uid));"
	/* SORT/THREAD keys derived from a message's envelope and header (store_sort_keys_list),
	 * in their own narrow table so that a scan does not walk the wide envelope rows. The
	 * triggers forget a message's keys whenever its envelope is written or the message goes
	 * (INSERT OR REPLACE fires the insert trigger), so no writer needs to know of them. */
	"CREATE TABLE IF NOT EXISTS sort_cache("
	" mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, keys BLOB NOT NULL,"
	" PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE TRIGGER IF NOT EXISTS sort_cache_on_envelope AFTER INSERT ON message_cache BEGIN"
	" DELETE FROM sort_cache WHERE mailbox_id = new.mailbox_id AND uid = new.uid; END;"
	"CREATE TRIGGER IF NOT EXISTS sort_cache_on_envelope_update AFTER UPDATE ON message_cache"
	" BEGIN DELETE FROM sort_cache WHERE mailbox_id = old.mailbox_id AND uid = old.uid; END;"
	"CREATE TRIGGER IF NOT EXISTS sort_cache_on_envelope_delete AFTER DELETE ON message_cache"
	" BEGIN DELETE FROM sort_cache WHERE mailbox_id = old.mailbox_id AND uid = old.uid; END;"
	"CREATE TRIGGER IF NOT EXISTS sort_cache_on_expunge AFTER DELETE ON messages BEGIN"
	" DELETE FROM sort_cache WHERE mailbox_id = old.mailbox_id AND uid = old.uid; END;"
	/* Subscribed names that have no mailbox: subscribed before they existed, or deleted
	 * while subscribed (RFC 3501 §6.3.6 keeps them). A mailbox's own subscription is its
	 * row's flag; CREATE moves a name from here to that flag. */
	"CREATE TABLE IF NOT EXISTS orphan_subscriptions(name TEXT PRIMARY KEY) WITHOUT ROWID;"
	/* QRESYNC history (RFC 7162 §3.2.5): the UIDs expunged from a mailbox with the MODSEQ of
	 * their expunge, at most LIMIT_EXPUNGE_HISTORY per mailbox. expunge_floor.modseq says from
	 * where the history is complete: every expunge with a higher MODSEQ is in expunged. A
	 * mailbox that predates the history starts it at its current HIGHESTMODSEQ. */
	"CREATE TABLE IF NOT EXISTS expunged("
	" mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, modseq INTEGER NOT NULL,"
	" PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS expunged_by_modseq ON expunged(mailbox_id, modseq);"
	"CREATE TABLE IF NOT EXISTS expunge_floor("
	" mailbox_id INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO expunge_floor(mailbox_id, modseq)"
	" SELECT id, highestmodseq FROM mailboxes;"
	/* store_counts_*: key chosen by the caller; `days` counts the distinct days the row was
	 * touched and `day` is the last one, which is what pruning orders by (counts.c). */
	"CREATE TABLE IF NOT EXISTS counts(key INTEGER PRIMARY KEY, c0 INTEGER NOT NULL,"
	" c1 INTEGER NOT NULL, day INTEGER NOT NULL, days INTEGER NOT NULL);"
	/* Quota usage (quota.c): one row that the triggers keep in the same transaction as
	 * every insert and delete of a message row, whoever writes it (save, copy, move,
	 * expunge, mailbox delete, the sync of the Maildir), so it is as exact as the rows and
	 * reading it costs one lookup instead of a scan. An index that predates it starts it
	 * from the rows; a rebuilt or recovered one recomputes it (local_quota_recount). */
	"CREATE TABLE IF NOT EXISTS quota_usage(id INTEGER PRIMARY KEY CHECK(id = 1),"
	" bytes INTEGER NOT NULL, messages INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO quota_usage(id, bytes, messages)"
	" SELECT 1, COALESCE(SUM(size), 0), COUNT(*) FROM messages"
	" WHERE NOT EXISTS(SELECT 1 FROM quota_usage);"
	"CREATE TRIGGER IF NOT EXISTS quota_usage_on_insert AFTER INSERT ON messages BEGIN"
	" UPDATE quota_usage SET bytes = bytes + new.size, messages = messages + 1; END;"
	"CREATE TRIGGER IF NOT EXISTS quota_usage_on_delete AFTER DELETE ON messages BEGIN"
	" UPDATE quota_usage SET bytes = bytes - old.size, messages = messages - 1; END;"
	"CREATE TRIGGER IF NOT EXISTS quota_usage_on_resize AFTER UPDATE OF size ON messages"
	" BEGIN UPDATE quota_usage SET bytes = bytes - old.size + new.size; END;"
	/* The quota warning last sent per resource (percent, 0 = none): a warning goes out
	 * when usage crosses a threshold above it, and the value falls with the usage. */
	"CREATE TABLE IF NOT EXISTS quota_warned(resource INTEGER PRIMARY KEY,"
	" percent INTEGER NOT NULL);";

static const struct {
	const char *name;
	uint32_t special_use;
} default_mailboxes[] = {
	{ "INBOX", 0 },
	{ "Sent", STORE_SPECIAL_SENT },
	{ "Drafts", STORE_SPECIAL_DRAFTS },
	{ "Trash", STORE_SPECIAL_TRASH },
	{ "Junk", STORE_SPECIAL_JUNK },
	{ "Archive", STORE_SPECIAL_ARCHIVE },
};

enum store_error local_db_fail(struct store_account *acct, struct store_err *err_r,
			       const char *what)
{
	if (atomic_load(&acct->gone))
		return local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
	int code = sqlite3_extended_errcode(acct->db);

	log_error("store=local op=%s account=%s sqlite=\"%s\" code=%d", what, acct->address,
		  sqlite3_errmsg(acct->db), code);
	if ((code & 0xff) == SQLITE_IOERR || (code & 0xff) == SQLITE_CORRUPT)
		acct->index_suspect = true;
	if ((code & 0xff) == SQLITE_FULL)
		return local_fail(err_r, STORE_ERR_NO_SPACE, "%s", store_error_str(STORE_ERR_NO_SPACE));
	return local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
}

int local_exec(struct store_account *acct, const char *sql)
{
	if (acct->db == NULL || atomic_load(&acct->gone))
		return -1;
	if (sqlite3_exec(acct->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	int code = sqlite3_extended_errcode(acct->db);

	if ((code & 0xff) == SQLITE_IOERR || (code & 0xff) == SQLITE_CORRUPT)
		acct->index_suspect = true;
	return -1;
}

void local_mbox_clear(struct local_mbox *m)
{
	free(m->name);
	free(m->dir);
	memset(m, 0, sizeof(*m));
}

static void index_recover(struct store_account *acct);

/* Serial numbers of account openings (store_account_index_version). */
static _Atomic uint64_t accounts_opened;

/* Design note 9: false (and the handle marked gone, once) when the account's path no longer
 * leads to the directory this handle opened. */
static bool account_still_here(struct store_account *acct)
{
	struct stat st;

	if (atomic_load(&acct->gone))
		return false;
	if (stat(acct->dir, &st) == 0 && st.st_dev == acct->dir_dev && st.st_ino == acct->dir_ino)
		return true;
	if (!atomic_exchange(&acct->gone, true))
		log_warn("store=local op=account-gone account=%s dir=%s (removed; this handle "
			 "writes no more)", acct->address, acct->dir);
	return false;
}

void local_write_begin(struct store_account *acct)
{
	pthread_mutex_lock(&acct->lock);
	while (flock(acct->lock_fd, LOCK_EX) < 0 && errno == EINTR)
		;
	/* Under the flock: store_account_remove renames only while holding it, so a write
	 * either finished before the move or sees it here. */
	if (account_still_here(acct) && acct->index_broken)
		index_recover(acct);
}

void local_read_begin(struct store_account *acct)
{
	pthread_mutex_lock(&acct->lock);
	if (acct->index_broken && !atomic_load(&acct->gone)) {
		while (flock(acct->lock_fd, LOCK_EX) < 0 && errno == EINTR)
			;
		index_recover(acct);
		flock(acct->lock_fd, LOCK_UN);
	}
}

bool local_db_ready(struct store_account *acct, struct store_err *err_r)
{
	if (acct->db != NULL && !acct->index_broken && !atomic_load(&acct->gone))
		return true;
	local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
	return false;
}

static int account_open_db(struct store_account *acct, bool *rebuild_r);

/* Design note 7: throw the connection away and reconcile a fresh one with the Maildir. */
sqlite3_stmt *local_stmt(struct store_account *acct, const char *sql)
{
	size_t free_slot = LOCAL_STMT_CACHE;

	for (size_t i = 0; i < LOCAL_STMT_CACHE; i++) {
		if (acct->stmt_cache[i].sql == sql)
			return acct->stmt_cache[i].st;
		if (acct->stmt_cache[i].sql == NULL && free_slot == LOCAL_STMT_CACHE)
			free_slot = i;
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(acct->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
	    SQLITE_OK)
		return NULL;
	if (free_slot < LOCAL_STMT_CACHE) {
		acct->stmt_cache[free_slot].sql = sql;
		acct->stmt_cache[free_slot].st = st;
	}
	/* With no free slot the statement still works; it is simply not kept (the caller's
	 * local_stmt_done cannot tell, so it must never be more than LOCAL_STMT_CACHE sites). */
	return st;
}

void local_stmt_done(sqlite3_stmt *st)
{
	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

void local_stmt_cache_clear(struct store_account *acct)
{
	for (size_t i = 0; i < LOCAL_STMT_CACHE; i++) {
		if (acct->stmt_cache[i].st != NULL)
			sqlite3_finalize(acct->stmt_cache[i].st);
		acct->stmt_cache[i].sql = NULL;
		acct->stmt_cache[i].st = NULL;
	}
}

static void index_recover(struct store_account *acct)
{
	bool rebuild;

	/* a new connection counts its data_version afresh */
	local_note_index_write(acct);

	if (atomic_load(&acct->gone))
		return; /* the path now leads elsewhere: never reopen through it (note 9) */
	acct->index_suspect = false;
	acct->index_broken = false;
	log_warn("store=local op=index-recover account=%s", acct->address);
	local_stmt_cache_clear(acct);
	if (acct->db != NULL)
		sqlite3_close(acct->db);
	acct->db = NULL;
	/* Until the sync succeeds, rows may name files that were taken back: refuse reads. */
	acct->index_broken = !(account_open_db(acct, &rebuild) == 0 &&
			       local_rename_intent_finish(acct) >= 0 &&
			       local_sync_account(acct, NULL) == STORE_OK && !acct->index_suspect &&
			       local_quota_recount(acct) == STORE_OK);
	acct->index_suspect = false;
}

void local_write_end(struct store_account *acct)
{
	if (acct->index_suspect)
		index_recover(acct);
	flock(acct->lock_fd, LOCK_UN);
	pthread_mutex_unlock(&acct->lock);
}

static bool event_matches(const struct store_subscription *s, const struct store_event *ev)
{
	return s->mailbox_id == 0 || s->mailbox_id == ev->mailbox_id;
}

void local_unlock_publish(struct store_account *acct, bool write, const struct store_event *events,
			  size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (events[i].kind == STORE_EVENT_APPEND)
			local_seen_note(acct, events[i].mailbox_id, events[i].uidnext);
	if (count == 0) {
		if (write)
			local_write_end(acct);
		else
			pthread_mutex_unlock(&acct->lock);
		return;
	}
	/* Hand-off: the feed lock is taken before the index lock is released, so a later commit
	 * cannot overtake our events, and callbacks never run under the index lock. */
	pthread_mutex_lock(&acct->feed_lock);
	if (write)
		local_write_end(acct);
	else
		pthread_mutex_unlock(&acct->lock);
	for (size_t i = 0; i < count; i++)
		if (events[i].kind == STORE_EVENT_EXPUNGE ||
		    events[i].kind == STORE_EVENT_MAILBOX_DELETE ||
		    events[i].kind == STORE_EVENT_MAILBOX_RENAME) {
			local_note_removal(acct);
			break;
		}
	for (size_t i = 0; i < count; i++)
		for (struct store_subscription *s = acct->subs; s != NULL; s = s->next)
			if (event_matches(s, &events[i]))
				s->cb(&events[i], s->ctx);
	pthread_mutex_unlock(&acct->feed_lock);
}

void local_note_removal(struct store_account *acct)
{
	atomic_fetch_add(&acct->removals, 1);
}

uint64_t store_account_removals(struct store_account *acct)
{
	return atomic_load(&acct->removals);
}

void local_note_index_write(struct store_account *acct)
{
	atomic_fetch_add(&acct->index_writes, 1);
}

/* Read under the index lock so that a write of this process is either counted or not begun. */
enum store_error store_account_index_version(struct store_account *acct,
					     struct store_index_version *version_r,
					     struct store_err *err_r)
{
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;

	memset(version_r, 0, sizeof(*version_r));
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		pthread_mutex_unlock(&acct->lock);
		return STORE_ERR_IO;
	}
	version_r->opened = acct->opened_serial;
	version_r->writes = atomic_load(&acct->index_writes);
	if (sqlite3_prepare_v2(acct->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "version");
	} else {
		if (sqlite3_step(st) == SQLITE_ROW)
			version_r->others = (uint64_t)sqlite3_column_int64(st, 0);
		else
			e = local_db_fail(acct, err_r, "version");
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&acct->lock);
	return e;
}

bool store_index_version_equal(const struct store_index_version *a,
			       const struct store_index_version *b)
{
	return a->opened == b->opened && a->writes == b->writes && a->others == b->others;
}

struct store_subscription *store_subscribe(struct store_account *acct, uint64_t mailbox_id,
					   store_event_cb *cb, void *ctx)
{
	struct store_subscription *s = xcalloc(1, sizeof(*s));

	s->acct = acct;
	s->mailbox_id = mailbox_id;
	s->cb = cb;
	s->ctx = ctx;
	pthread_mutex_lock(&acct->feed_lock);
	s->next = acct->subs;
	acct->subs = s;
	pthread_mutex_unlock(&acct->feed_lock);
	return s;
}

void store_unsubscribe(struct store_subscription **subp)
{
	struct store_subscription *s = *subp;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->acct->feed_lock);
	for (struct store_subscription **pp = &s->acct->subs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&s->acct->feed_lock);
	free(s);
	*subp = NULL;
}

/* ---- mailbox rows ---- */

static void mbox_from_row(struct store_account *acct, sqlite3_stmt *st, struct local_mbox *m)
{
	m->id = (uint64_t)sqlite3_column_int64(st, 0);
	m->name = xstrdup((const char *)sqlite3_column_text(st, 1));
	m->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	m->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
	m->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
	m->special_use = (uint32_t)sqlite3_column_int64(st, 5);
	m->subscribed = sqlite3_column_int(st, 6) != 0;
	m->dir = local_folder_path(acct, m->name);
	if (m->dir == NULL) /* only names that passed local_folder_name are ever stored */
		m->dir = xstrdup(acct->dir);
}

#define MBOX_COLS "id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed"

static enum store_error mbox_query(struct store_account *acct, const char *sql, const char *name,
				   uint64_t id, struct local_mbox *m_r, struct store_err *err_r)
{
	sqlite3_stmt *st;
	int rc;

	memset(m_r, 0, sizeof(*m_r));
	if (!local_db_ready(acct, err_r))
		return STORE_ERR_IO;
	st = local_stmt(acct, sql);
	if (st == NULL)
		return local_db_fail(acct, err_r, "mailbox-lookup");
	if (name != NULL)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mbox_from_row(acct, st, m_r);
		local_stmt_done(st);
		return STORE_OK;
	}
	local_stmt_done(st);
	if (rc == SQLITE_DONE)
		return local_fail(err_r, STORE_ERR_NOT_FOUND, "Mailbox does not exist");
	return local_db_fail(acct, err_r, "mailbox-lookup");
}

enum store_error local_mbox_by_name(struct store_account *acct, const char *canon,
				    struct local_mbox *m_r, struct store_err *err_r)
{
	return mbox_query(acct, "SELECT " MBOX_COLS " FROM mailboxes WHERE name = ?", canon, 0, m_r,
			  err_r);
}

enum store_error local_mbox_by_id(struct store_account *acct, uint64_t id, struct local_mbox *m_r,
				  struct store_err *err_r)
{
	return mbox_query(acct, "SELECT " MBOX_COLS " FROM mailboxes WHERE id = ?", NULL, id, m_r,
			  err_r);
}

static int64_t meta_get(struct store_account *acct, const char *key)
{
	sqlite3_stmt *st;
	int64_t v = 0;

	if (sqlite3_prepare_v2(acct->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int meta_set(struct store_account *acct, const char *key, int64_t value)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(acct->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* RFC 9051 §2.3.1.1: non-zero 32-bit, and a name created again must get a larger value; we
 * hand out strictly increasing values per account (clock seconds, or last + 1). Must run in a
 * transaction together with the use of the value. */
uint32_t local_next_uidvalidity(struct store_account *acct)
{
	int64_t last = meta_get(acct, "last_uidvalidity");
	int64_t v = time_wall_seconds();

	if (v <= last)
		v = last + 1;
	if (v > UINT32_MAX || v <= 0)
		v = UINT32_MAX;
	meta_set(acct, "last_uidvalidity", v);
	return (uint32_t)v;
}

/* Creates the folder on disk (dirs + uidvalidity file) and its row; inside a transaction. */
enum store_error local_mbox_insert(struct store_account *acct, const char *canon,
				   uint32_t special_use, uint32_t uidvalidity, uint32_t floor,
				   struct local_mbox *m_r, struct store_err *err_r)
{
	char *dir = local_folder_path(acct, canon);
	sqlite3_stmt *st;
	int rc;

	if (dir == NULL)
		return local_fail(err_r, STORE_ERR_LIMIT, "Mailbox name too long");
	bool recovered = uidvalidity != 0;

	if (uidvalidity == 0)
		uidvalidity = local_next_uidvalidity(acct);
	else if ((int64_t)uidvalidity > meta_get(acct, "last_uidvalidity"))
		meta_set(acct, "last_uidvalidity", uidvalidity);
	if (floor == 0)
		floor = 1;
	if (local_folder_create_dirs(dir) < 0 || local_uidv_write(dir, uidvalidity, floor) < 0) {
		int e = errno;

		log_error("store=local op=mailbox-create account=%s errno=%s", acct->address,
			  strerror(e));
		free(dir);
		return local_fail(err_r, local_errno_code(e), "%s",
				  store_error_str(local_errno_code(e)));
	}
	/* A folder found on disk without a row (the index was lost or rebuilt) may have been
	 * seen by clients with MODSEQs up to anything the old index handed out. HIGHESTMODSEQ
	 * must only grow (RFC 7162 §3.1.2.1), so it restarts from the clock in microseconds,
	 * which a counter that grows by one per change does not overtake. */
	uint64_t first_modseq = recovered ? local_modseq_floor_now() : 1;

	if (sqlite3_prepare_v2(acct->db,
			       "INSERT INTO mailboxes(name, uidvalidity, uidnext, highestmodseq,"
			       " special_use, uid_floor) VALUES(?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		free(dir);
		return local_db_fail(acct, err_r, "mailbox-create");
	}
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, floor);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)first_modseq);
	sqlite3_bind_int64(st, 5, special_use);
	sqlite3_bind_int64(st, 6, floor);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		uint64_t id = (uint64_t)sqlite3_last_insert_rowid(acct->db);
		/* A new mailbox's history is complete from the start; a recovered one's only from
		 * the rebuild on. */
		char *sql = xasprintf("INSERT OR REPLACE INTO expunge_floor(mailbox_id, modseq)"
				      " VALUES(%llu, %llu)", (unsigned long long)id,
				      (unsigned long long)(recovered ? first_modseq : 0));

		rc = local_exec(acct, sql) == 0 ? SQLITE_DONE : SQLITE_ERROR;
		free(sql);
		if (rc != SQLITE_DONE) {
			free(dir);
			return local_db_fail(acct, err_r, "mailbox-create");
		}
		if (m_r != NULL) {
			memset(m_r, 0, sizeof(*m_r));
			m_r->id = id;
		}
	}
	if (rc != SQLITE_DONE) {
		free(dir);
		return local_db_fail(acct, err_r, "mailbox-create");
	}
	if (m_r != NULL) {
		m_r->name = xstrdup(canon);
		m_r->dir = dir;
		m_r->uidvalidity = uidvalidity;
		m_r->uidnext = floor;
		m_r->highestmodseq = first_modseq;
		m_r->special_use = special_use;
	} else {
		free(dir);
	}
	return STORE_OK;
}

enum store_error local_update_counters(struct store_account *acct, const struct local_mbox *m,
				       struct store_err *err_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(acct->db,
			       "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "mailbox-update");
	sqlite3_bind_int64(st, 1, m->uidnext);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)m->highestmodseq);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)m->id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : local_db_fail(acct, err_r, "mailbox-update");
}

/* ---- store ---- */

struct store *store_open(const struct store_settings *settings, struct store_err *err_r)
{
	struct store *store;

	if (settings->data_dir == NULL || settings->data_dir[0] == '\0') {
		local_fail(err_r, STORE_ERR_INVALID, "No data directory");
		return NULL;
	}
	store = xcalloc(1, sizeof(*store));
	store->mail_dir = xasprintf("%s/mail", settings->data_dir);
	store->max_message_size = settings->max_message_size != 0 ? settings->max_message_size
								 : LIMIT_MESSAGE_SIZE_DEFAULT;
	if (store->max_message_size > LIMIT_MESSAGE_SIZE_MAX)
		store->max_message_size = LIMIT_MESSAGE_SIZE_MAX;
	if (gethostname(store->host, sizeof(store->host) - 1) < 0 || store->host[0] == '\0')
		snprintf(store->host, sizeof(store->host), "localhost");
	/* ',' ':' '/' delimit Maildir name fields or paths. */
	for (char *p = store->host; *p != '\0'; p++)
		if (*p == '/' || *p == ':' || *p == ',' || (unsigned char)*p < 0x21)
			*p = '_';
	atomic_init(&store->counter, 0);
	pthread_mutex_init(&store->lock, NULL);
	if (fs_mkdir_p(store->mail_dir) < 0) {
		log_error("store=local op=open dir=%s errno=%s", store->mail_dir, strerror(errno));
		local_fail(err_r, local_errno_code(errno), "Cannot create the mail directory");
		store_close(&store);
		return NULL;
	}
	return store;
}

void store_close(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	if (store->accounts != NULL)
		log_error("store=local op=close open_accounts=yes");
	while (store->synced != NULL) {
		struct local_synced *n = store->synced->next;

		free(store->synced);
		store->synced = n;
	}
	pthread_mutex_destroy(&store->lock);
	free(store->mail_dir);
	free(store);
	*storep = NULL;
}

/* Splits and validates local@domain into path components that cannot escape mail_dir:
 * lower-cased, no '/', no control characters, not starting with '.'. */
static int address_split(const char *address, char **local_r, char **domain_r)
{
	const char *at = strrchr(address, '@');
	size_t llen, dlen;

	if (at == NULL)
		return -1;
	llen = (size_t)(at - address);
	dlen = strlen(at + 1);
	if (llen == 0 || dlen == 0 || llen > 128 || dlen > 253)
		return -1;
	for (const char *p = address; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f || *p == '/' || *p == '\\')
			return -1;
	if (address[0] == '.' || at[1] == '.')
		return -1;
	*local_r = xstrndup(address, llen);
	*domain_r = xstrdup(at + 1);
	for (char *p = *local_r; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = *domain_r; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

static bool db_healthy(sqlite3 *db)
{
	sqlite3_stmt *st;
	bool ok = false;

	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);

		ok = r != NULL && strcmp(r, "ok") == 0;
	}
	sqlite3_finalize(st);
	return ok;
}

/* Columns added after the first release: ALTER TABLE for an index that predates them (each
 * guarded by whether a query can name it, since SQLite has no ADD COLUMN IF NOT EXISTS). */
static const struct {
	const char *probe;
	const char *add;
} added_columns[] = {
	/* RFC 8474 EMAILID and RFC 8514 SAVEDATE; NULL in older rows (MSG_COLS, messages.c) */
	{ "SELECT emailid FROM messages LIMIT 0",
	  "ALTER TABLE messages ADD COLUMN emailid INTEGER" },
	{ "SELECT savedate FROM messages LIMIT 0",
	  "ALTER TABLE messages ADD COLUMN savedate INTEGER" },
	/* RFC 8474 THREADID (mimecache.c); NULL = none known */
	{ "SELECT threadid FROM messages LIMIT 0",
	  "ALTER TABLE messages ADD COLUMN threadid INTEGER" },
};

static int db_add_columns(sqlite3 *db)
{
	for (size_t i = 0; i < ARRAY_LEN(added_columns); i++) {
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(db, added_columns[i].probe, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_finalize(st);
			continue;
		}
		if (sqlite3_exec(db, added_columns[i].add, NULL, NULL, NULL) != SQLITE_OK)
			return -1;
	}
	return 0;
}

static int db_configure(sqlite3 *db)
{
	sqlite3_busy_timeout(db, 30000);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	return db_add_columns(db);
}

static void unlink_index(const char *path)
{
	char *p;

	unlink(path);
	p = xasprintf("%s-wal", path);
	unlink(p);
	free(p);
	p = xasprintf("%s-shm", path);
	unlink(p);
	free(p);
}

/* Opens the index; a missing or damaged index is replaced by an empty one (the damaged file
 * is kept aside for the operator) and *rebuild_r tells the caller to repopulate it. */
static int account_open_db(struct store_account *acct, bool *rebuild_r)
{
	char *path = xasprintf("%s/%s", acct->dir, LOCAL_INDEX_FILE);
	bool existed = access(path, F_OK) == 0;
	int attempt;

	*rebuild_r = !existed;
	if (!existed)
		unlink_index(path); /* a stale -wal must never be replayed into a new index */
	for (attempt = 0; attempt < 2; attempt++) {
		int rc = sqlite3_open_v2(path, &acct->db,
					 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						 SQLITE_OPEN_NOMUTEX,
					 NULL);

		if (rc == SQLITE_OK && db_configure(acct->db) == 0 &&
		    (!existed || attempt > 0 || db_healthy(acct->db)))
			break;
		log_error("store=local op=index-open account=%s sqlite=\"%s\" action=rebuild",
			  acct->address, acct->db != NULL ? sqlite3_errmsg(acct->db) : "open failed");
		sqlite3_close(acct->db);
		acct->db = NULL;
		if (attempt > 0)
			break;
		char *aside = xasprintf("%s.corrupt-%lld", path, (long long)time_wall_seconds());

		if (rename(path, aside) < 0)
			log_error("store=local op=index-aside errno=%s", strerror(errno));
		free(aside);
		unlink_index(path);
		*rebuild_r = true;
	}
	free(path);
	return acct->db != NULL ? 0 : -1;
}

static void account_free(struct store_account *acct)
{
	local_stmt_cache_clear(acct);
	if (acct->db != NULL)
		sqlite3_close(acct->db);
	if (acct->lock_fd >= 0)
		close(acct->lock_fd);
	pthread_mutex_destroy(&acct->lock);
	pthread_mutex_destroy(&acct->q_lock);
	pthread_cond_destroy(&acct->q_cond);
	pthread_mutex_destroy(&acct->feed_lock);
	local_seen_free(acct);
	free(acct->address);
	free(acct->dir);
	free(acct);
}

static enum store_error ensure_defaults(struct store_account *acct, struct store_err *err_r)
{
	enum store_error e = STORE_OK;

	if (local_exec(acct, "BEGIN IMMEDIATE") < 0)
		return local_db_fail(acct, err_r, "defaults");
	for (size_t i = 0; i < ARRAY_LEN(default_mailboxes) && e == STORE_OK; i++) {
		struct local_mbox m;

		e = local_mbox_by_name(acct, default_mailboxes[i].name, &m, err_r);
		if (e == STORE_OK) {
			if (m.special_use == 0 && default_mailboxes[i].special_use != 0) {
				char *sql = xasprintf("UPDATE mailboxes SET special_use = %u, "
						      "subscribed = 1 WHERE id = %llu",
						      default_mailboxes[i].special_use,
						      (unsigned long long)m.id);
				if (local_exec(acct, sql) < 0)
					e = local_db_fail(acct, err_r, "defaults");
				free(sql);
			}
			local_mbox_clear(&m);
		} else if (e == STORE_ERR_NOT_FOUND) {
			e = local_mbox_insert(acct, default_mailboxes[i].name,
					      default_mailboxes[i].special_use, 0, 0, NULL, err_r);
			if (e == STORE_OK &&
			    local_exec(acct, "UPDATE mailboxes SET subscribed = 1 "
					     "WHERE id = last_insert_rowid()") < 0)
				e = local_db_fail(acct, err_r, "defaults");
		}
	}
	if (e != STORE_OK) {
		local_exec(acct, "ROLLBACK");
		return e;
	}
	if (local_exec(acct, "COMMIT") < 0) {
		e = local_db_fail(acct, err_r, "defaults");
		local_exec(acct, "ROLLBACK");
	}
	return e;
}

static void synced_forget(struct store *store, const char *address)
{
	for (struct local_synced **pp = &store->synced; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->address, address) == 0) {
			struct local_synced *s = *pp;

			*pp = s->next;
			free(s);
			return;
		}
	}
}

int local_account_find_open(struct store *store, const char *address,
			    struct store_account **acct_r)
{
	char *local, *domain, *norm;
	int found = -1;

	*acct_r = NULL;
	if (address_split(address, &local, &domain) < 0)
		return -1;
	norm = xasprintf("%s@%s", local, domain);
	pthread_mutex_lock(&store->lock);
	for (struct store_account *acct = store->accounts; acct != NULL; acct = acct->next) {
		if (strcmp(acct->address, norm) == 0) {
			acct->refs++;
			*acct_r = acct;
			found = 0;
			break;
		}
	}
	pthread_mutex_unlock(&store->lock);
	free(norm);
	free(local);
	free(domain);
	return found;
}

enum store_error store_account_open(struct store *store, const char *address,
				    struct store_account **acct_r, struct store_err *err_r)
{
	struct store_account *acct;
	char *local, *domain, *norm;
	enum store_error e = STORE_OK;
	bool rebuild, synced = false;

	*acct_r = NULL;
	if (address_split(address, &local, &domain) < 0)
		return local_fail(err_r, STORE_ERR_INVALID, "Invalid account address");
	norm = xasprintf("%s@%s", local, domain);
	pthread_mutex_lock(&store->lock);
	for (struct store_account **pp = &store->accounts; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->address, norm) == 0 && !account_still_here(*pp)) {
			/* Removed under us: its holders keep it until they close it; nobody new
			 * gets it, and the address starts afresh below. */
			*pp = (*pp)->next;
			synced_forget(store, norm);
			break;
		}
	}
	for (acct = store->accounts; acct != NULL; acct = acct->next) {
		if (strcmp(acct->address, norm) == 0) {
			acct->refs++;
			pthread_mutex_unlock(&store->lock);
			free(norm);
			free(local);
			free(domain);
			*acct_r = acct;
			return STORE_OK;
		}
	}
	acct = xcalloc(1, sizeof(*acct));
	acct->store = store;
	acct->address = norm;
	acct->opened_serial = atomic_fetch_add(&accounts_opened, 1) + 1;
	acct->dir = xasprintf("%s/%s/%s", store->mail_dir, domain, local);
	acct->refs = 1;
	acct->lock_fd = -1;
	free(local);
	free(domain);
	pthread_mutex_init(&acct->lock, NULL);
	pthread_mutex_init(&acct->feed_lock, NULL);
	pthread_mutex_init(&acct->warn_lock, NULL);
	atomic_init(&acct->quota_bytes, LOCAL_QUOTA_NONE);
	atomic_init(&acct->quota_messages, LOCAL_QUOTA_NONE);
	local_commit_queue_init(acct);

	char *lock_path = xasprintf("%s/%s", acct->dir, LOCAL_LOCK_FILE);

	struct stat dir_st;

	if (fs_mkdir_p(acct->dir) == 0 && stat(acct->dir, &dir_st) == 0) {
		acct->dir_dev = dir_st.st_dev;
		acct->dir_ino = dir_st.st_ino;
		acct->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	}
	free(lock_path);
	if (acct->lock_fd < 0) {
		e = local_fail(err_r, local_errno_code(errno), "%s",
			       store_error_str(local_errno_code(errno)));
		log_error("store=local op=account-open account=%s errno=%s", acct->address,
			  strerror(errno));
		goto fail;
	}
	local_write_begin(acct);
	if (account_open_db(acct, &rebuild) < 0) {
		local_write_end(acct);
		e = local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
		goto fail;
	}
	for (struct local_synced *s = store->synced; s != NULL; s = s->next)
		if (strcmp(s->address, acct->address) == 0)
			synced = true;
	/* Design note 8: an interrupted rename is completed before anything looks at the
	 * folders. Another process may have been the one interrupted, hence every open. */
	switch (local_rename_intent_finish(acct)) {
	case -1:
		local_write_end(acct);
		e = local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
		goto fail;
	case 1:
		synced = false;
		break;
	default:
		break;
	}
	if (rebuild || !synced) {
		if (rebuild)
			log_info("store=local op=index-build account=%s (new account or missing index)",
				 acct->address);
		e = local_sync_account(acct, err_r);
	}
	if (e == STORE_OK && rebuild)
		e = ensure_defaults(acct, err_r);
	if (e == STORE_OK && rebuild)
		e = local_quota_recount(acct);
	if (e == STORE_OK)
		local_seen_load(acct);
	local_write_end(acct);
	if (e != STORE_OK)
		goto fail;
	if (!synced) {
		size_t n = strlen(acct->address) + 1;
		struct local_synced *s = xmalloc(sizeof(*s) + n);

		memcpy(s->address, acct->address, n);
		s->next = store->synced;
		store->synced = s;
	}
	acct->next = store->accounts;
	store->accounts = acct;
	pthread_mutex_unlock(&store->lock);
	*acct_r = acct;
	return STORE_OK;
fail:
	synced_forget(store, acct->address);
	pthread_mutex_unlock(&store->lock);
	account_free(acct);
	return e;
}

void store_account_close(struct store_account **acctp)
{
	struct store_account *acct = *acctp;
	struct store *store;

	if (acct == NULL)
		return;
	*acctp = NULL;
	store = acct->store;
	pthread_mutex_lock(&store->lock);
	if (--acct->refs > 0) {
		pthread_mutex_unlock(&store->lock);
		return;
	}
	for (struct store_account **pp = &store->accounts; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == acct) {
			*pp = acct->next;
			break;
		}
	}
	/* An index that could not be repaired gets the full sync again at the next open. */
	if (acct->index_broken || acct->index_suspect)
		synced_forget(store, acct->address);
	pthread_mutex_unlock(&store->lock);
	if (acct->subs != NULL)
		log_error("store=local op=account-close account=%s subscribers=left",
			  acct->address);
	while (acct->subs != NULL) {
		struct store_subscription *s = acct->subs;

		acct->subs = s->next;
		free(s);
	}
	account_free(acct);
}

void store_account_set_quota(struct store_account *acct, uint64_t max_bytes, uint64_t max_messages)
{
	atomic_store(&acct->quota_bytes, max_bytes != 0 ? max_bytes : LOCAL_QUOTA_NONE);
	atomic_store(&acct->quota_messages, max_messages != 0 ? max_messages : LOCAL_QUOTA_NONE);
}

enum store_error store_account_usage(struct store_account *acct, uint64_t *bytes_r,
				     uint64_t *messages_r, struct store_err *err_r)
{
	enum store_error e = STORE_OK;

	*bytes_r = 0;
	*messages_r = 0;
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r))
		e = STORE_ERR_IO;
	else if (local_quota_usage(acct, bytes_r, messages_r) != STORE_OK)
		e = local_db_fail(acct, err_r, "usage");
	pthread_mutex_unlock(&acct->lock);
	return e;
}

void local_events_add(struct local_events *evs, enum store_event_kind kind,
		      const struct local_mbox *m, const char *old_name, struct store_msg *msgs,
		      size_t count)
{
	struct store_event *ev;

	if (evs->count == evs->cap) {
		evs->cap = evs->cap ? evs->cap * 2 : 4;
		evs->ev = xrealloc(evs->ev, evs->cap * sizeof(*evs->ev));
	}
	ev = &evs->ev[evs->count++];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->mailbox_id = m->id;
	ev->mailbox = xstrdup(m->name);
	ev->old_name = old_name != NULL ? xstrdup(old_name) : NULL;
	ev->uidvalidity = m->uidvalidity;
	ev->uidnext = m->uidnext;
	ev->highestmodseq = m->highestmodseq;
	ev->count = count;
	ev->msgs = msgs;
}

void local_events_clear(struct local_events *evs)
{
	for (size_t i = 0; i < evs->count; i++) {
		struct store_msg *msgs = (struct store_msg *)evs->ev[i].msgs;

		free((char *)evs->ev[i].mailbox);
		free((char *)evs->ev[i].old_name);
		store_msg_list_free(&msgs, evs->ev[i].count);
	}
	free(evs->ev);
	memset(evs, 0, sizeof(*evs));
}

/* ---- removal (design note 9) ---- */

/* A name under parent for the removed directory that nothing uses yet:
 * PREFIXLOCAL-YYYYMMDDTHHMMSSZ, with -2, -3, ... for a second removal in the same second. */
static char *removal_name(const char *parent, const char *prefix, const char *local)
{
	struct tm tm;
	time_t now = (time_t)time_wall_seconds();
	char stamp[32];
	struct stat st;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 1; n < 1000; n++) {
		char *path = n == 1 ? xasprintf("%s/%s%s-%s", parent, prefix, local, stamp)
				    : xasprintf("%s/%s%s-%s-%d", parent, prefix, local, stamp, n);
		if (lstat(path, &st) < 0 && errno == ENOENT)
			return path;
		free(path);
	}
	return NULL;
}

/* rename(2) of the account's directory to dest under the account's flock, so that a writer
 * of another process either finished before or finds the directory gone (note 9). */
static int move_account_dir(const char *src, const char *dest)
{
	char *lock_path = xasprintf("%s/%s", src, LOCAL_LOCK_FILE);
	int fd = open(lock_path, O_RDWR | O_CLOEXEC);
	int ret, saved;

	free(lock_path);
	if (fd >= 0)
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	ret = rename(src, dest);
	saved = errno;
	if (fd >= 0)
		close(fd); /* releases the flock */
	errno = saved;
	return ret;
}

static char *parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL && slash != path ? xstrndup(path, (size_t)(slash - path))
					      : xstrdup("/");
}

enum store_error store_account_remove(const char *data_dir, const char *address, bool purge,
				      char **archived_r, struct store_err *err_r)
{
	char *local, *domain, *src = NULL, *parent = NULL, *dest = NULL;
	enum store_error e = STORE_OK;
	struct stat st;

	*archived_r = NULL;
	if (address_split(address, &local, &domain) < 0)
		return local_fail(err_r, STORE_ERR_INVALID, "Invalid account address");
	src = xasprintf("%s/mail/%s/%s", data_dir, domain, local);
	int found = lstat(src, &st);
	if (found < 0 && errno != ENOENT) {
		e = local_fail(err_r, STORE_ERR_IO, "cannot read %s: %s", src, strerror(errno));
		goto out;
	}
	if (found < 0 || !S_ISDIR(st.st_mode)) {
		e = local_fail(err_r, STORE_ERR_NOT_FOUND, "%s has no mail directory", address);
		goto out;
	}
	/* A purged directory first leaves the account's name in one step (a '.' name no
	 * address maps to), so nothing sees it half removed. */
	parent = purge ? xasprintf("%s/mail/%s", data_dir, domain)
		       : xasprintf("%s/archive/%s", data_dir, domain);
	if (!purge && fs_mkdir_p(parent) < 0) {
		e = local_fail(err_r, local_errno_code(errno), "cannot create %s: %s", parent,
			       strerror(errno));
		goto out;
	}
	dest = removal_name(parent, purge ? ".roost-purge-" : "", local);
	if (dest == NULL) {
		e = local_fail(err_r, STORE_ERR_EXISTS, "no free name in %s", parent);
		goto out;
	}
	if (move_account_dir(src, dest) < 0) {
		e = local_fail(err_r, local_errno_code(errno), "cannot move %s to %s: %s", src,
			       dest, strerror(errno));
		goto out;
	}
	char *src_parent = parent_of(src);
	if (fs_fsync_dir(src_parent) < 0 || (!purge && fs_fsync_dir(parent) < 0))
		log_warn("store=local op=account-remove fsync errno=%s", strerror(errno));
	free(src_parent);
	if (purge) {
		if (local_rm_rf(dest) < 0)
			e = local_fail(err_r, local_errno_code(errno),
				       "moved out of the way but not fully removed: %s", dest);
	} else {
		*archived_r = dest;
		dest = NULL;
	}
out:
	free(dest);
	free(parent);
	free(src);
	free(local);
	free(domain);
	return e;
}
