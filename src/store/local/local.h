/* Private to store/local: the structures behind store.h's opaque handles and the helpers the
 * backend's files share. Nothing outside src/store/local includes this.
 *
 * Design notes (invariants of the local backend)
 *  1. Layout: DATA/mail/DOMAIN/USER/ is a Maildir++ root. INBOX is the root's cur/new/tmp;
 *     mailbox "A/B" is the folder ".A.B" (components percent-encoded, see names.c). Each folder
 *     holds roost-uidvalidity ("V uidvalidity" and "N uidnext floor"), written durably.
 *     The index is roost-index.sqlite (WAL, synchronous=FULL), roost-lock serialises writers
 *     of different processes (flock).
 *  2. A message file is named BASE,U=uid,S=size:2,FLAGS in cur/, FLAGS being the system flag
 *     letters and then a..z for the folder's first 26 keywords (kwletters.c, roost-keywords).
 *     UID, system flags and those keywords can thus always be recovered from the directory;
 *     further keywords live only in the index.
 *  3. Write order for a save: tmp/ file written and fsync'd -> renamed into cur/ with its UID ->
 *     cur/ fsync'd -> index transaction committed -> the caller is told OK. A crash before the
 *     commit leaves a whole file with a UID >= the index's uidnext, which the open-time sync
 *     adopts; failures before the commit unlink the file again.
 *  4. Removal order: uidnext floor written to roost-uidvalidity -> files unlinked -> index
 *     commit. A crash in between leaves index rows without files, which the sync drops. The
 *     floor guarantees that a rebuilt index never hands out an expunged UID again.
 *  5. Locks: acct->lock (mutex) guards the SQLite connection and every index transaction;
 *     writers also hold the flock on roost-lock. acct->feed_lock guards the subscriber list and
 *     is taken before acct->lock is released (hand-off), so events go out in commit order and
 *     no callback ever runs under acct->lock. Lock order: store->lock -> acct->q_lock;
 *     acct->lock -> acct->feed_lock. q_lock is never held while taking acct->lock.
 *  6. Group commit: savers fsync their own tmp file in parallel, then queue a commit item. The
 *     first queued thread with no leader active becomes leader, takes every queued item (up
 *     to LIMIT_STORE_COMMIT_BATCH), and performs renames, one fsync per touched directory and
 *     one SQLite transaction for all of them; followers sleep on q_cond until their item is
 *     marked done.
 *  7. After an SQLite I/O error the connection is not trusted: local_write_end closes it,
 *     reopens the index and runs the full sync before the write lock is released.
 *  8. RENAME of a mailbox with inferiors moves one folder per mailbox (the layout is flat), so
 *     it is made all-or-nothing by an intent record (rename_intent.c): roost-rename (old and
 *     new folder prefix) written durably -> parents of the new name created -> every folder
 *     renamed -> account directory fsync'd -> index rows renamed and committed -> record
 *     removed (directory fsync'd). Whoever takes the write lock at account open or index
 *     recovery and finds the record finishes the rename (folders, then rows) before the sync,
 *     so after a crash the whole hierarchy is under the new name, never split.
 *  9. An account handle belongs to the directory it opened (dir_dev/dir_ino), not to its
 *     path: store_account_remove renames the directory away under the account's flock, and
 *     every local_write_begin (after taking the flock) and every store_account_open of a
 *     shared handle compares the path's inode with the handle's. A mismatch marks the handle
 *     gone: it never writes again (not into the archive it now points at through its open
 *     files, nor into a new directory at the path), is never recovered, and is no longer
 *     shared; the next open of the address makes a fresh handle. Reads through a gone handle
 *     still see the old index; message files are opened by path and are then missing.
 * 10. Quota usage is the quota_usage row, which triggers on messages keep in the transaction
 *     of every row inserted or deleted, so it always equals the sum over the rows; a rebuilt
 *     or recovered index recounts it. A commit that would take it past the account's limits
 *     (acct->quota_*) is refused inside that transaction (quota.c). acct->warn_lock is taken
 *     with no other store lock held. */
#ifndef ROOST_STORE_LOCAL_H
#define ROOST_STORE_LOCAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "../../core/core.h"
#include "../store.h"

#define LOCAL_INDEX_FILE "roost-index.sqlite"
#define LOCAL_LOCK_FILE "roost-lock"
#define LOCAL_UIDV_FILE "roost-uidvalidity"
#define LOCAL_RENAME_INTENT_FILE "roost-rename"

struct local_synced {
	struct local_synced *next;
	char address[];
};

struct store {
	char *mail_dir;
	uint64_t max_message_size;
	char host[64];
	atomic_uint_fast64_t counter;
	pthread_mutex_t lock; /* accounts and synced */
	struct store_account *accounts;
	struct local_synced *synced; /* accounts already fully synced by this process */
	store_copy_cb *copy_cb; /* store_set_copy_observer; set before other threads use it */
	void *copy_ctx;
	store_quota_policy_fn *quota_fn; /* store_set_quota_policy; likewise */
	void *quota_ctx;
};

struct commit_item {
	struct commit_item *next;
	/* input */
	char *mailbox;     /* canonical name */
	char *tmp_path;    /* file in the account's tmp/, already fsync'd */
	char *base;        /* unique part of the file name */
	uint64_t size;
	uint32_t flags;
	char *keywords;    /* normalised, may be NULL */
	int64_t internal_date;
	const char *envelope;
	const char *bodystructure;
	/* On the first item of an all-or-nothing group (store_save_finish_all): how many items,
	 * this one included, follow it in the queue and commit or fail together. 0 = alone. */
	size_t group_len;
	uint64_t thread_id; /* 0 = none */
	bool quota_exempt;  /* a quota warning: stored even when the account is full */
	/* output */
	bool done;
	enum store_error error;
	uint32_t uid;
	uint32_t uidvalidity;
};

struct store_subscription {
	struct store_subscription *next;
	struct store_account *acct;
	uint64_t mailbox_id;
	store_event_cb *cb;
	void *ctx;
};

#define LOCAL_STMT_CACHE 8

struct store_account {
	struct store_account *next;
	struct store *store;
	char *address;
	char *dir; /* account Maildir++ root, no trailing '/' */
	int refs;  /* under store->lock */

	pthread_mutex_t lock;
	sqlite3 *db;
	int lock_fd;
	/* The directory this handle opened, and whether it was found removed (note 8). */
	dev_t dir_dev;
	ino_t dir_ino;
	atomic_bool gone;

	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	bool q_leader;
	struct commit_item *q_head;
	struct commit_item **q_tail;

	pthread_mutex_t feed_lock;
	struct store_subscription *subs;

	/* Set when SQLite reported an I/O error (a failed WAL fsync may still have left a commit
	 * record behind that becomes visible later): the next local_write_end reopens the index
	 * and re-syncs it with the Maildir, which drops rows whose files were taken back. */
	bool index_suspect;
	/* Set while a recovery did not succeed: reads and writes fail with STORE_ERR_IO, and
	 * every local_read_begin/local_write_begin tries the recovery again. */
	bool index_broken;

	/* The limits a commit enforces (LOCAL_QUOTA_NONE = none): the account's own, or less
	 * when its domain has less room left (quota.c, refreshed before each save and copy). */
	_Atomic uint64_t quota_bytes;
	_Atomic uint64_t quota_messages;
	/* Serialises the quota warning decision, so that two commits crossing a threshold
	 * together send one warning. */
	pthread_mutex_t warn_lock;
	/* store_account_removals: bumped after every commit that takes messages away. */
	_Atomic uint64_t removals;
	/* store_account_index_version: bumped when this process writes the cached envelope of
	 * a message that already existed (store_message_cache) or reopens the index; other
	 * writes add or remove messages (the UID list tells), or change flags (no key). */
	_Atomic uint64_t index_writes;
	uint64_t opened_serial; /* unique per opening in this process */

	/* The uidnext of each mailbox as this process last published it (foreign.c): what a
	 * commit of another process added beyond it has not reached our subscribers yet. Under
	 * acct->lock. */
	struct local_seen *seen;
	size_t seen_count;

	/* Prepared statements of the hottest queries (one per call site, keyed by the SQL
	 * literal's address), kept across calls under acct->lock; finalised before the
	 * connection closes. */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} stmt_cache[LOCAL_STMT_CACHE];
};

/* A mailbox row. */
struct local_mbox {
	uint64_t id;
	char *name;
	char *dir; /* absolute folder path */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t special_use;
	bool subscribed;
};
void local_mbox_clear(struct local_mbox *m);

/* Events collected under the index lock and published after it (owned copies). */
struct local_events {
	struct store_event *ev;
	size_t count;
	size_t cap;
};
/* Adds an event; takes ownership of msgs (with their keywords). */
void local_events_add(struct local_events *evs, enum store_event_kind kind,
		      const struct local_mbox *m, const char *old_name, struct store_msg *msgs,
		      size_t count);
void local_events_clear(struct local_events *evs);

/* ---- errors ---- */
enum store_error local_fail(struct store_err *err_r, enum store_error code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum store_error local_errno_code(int err);
/* Logs an SQLite failure with context and fills err_r with STORE_ERR_IO (or NO_SPACE). */
enum store_error local_db_fail(struct store_account *acct, struct store_err *err_r,
			       const char *what);

/* ---- names.c ---- */
/* Folder directory name for a canonical mailbox name ("" for INBOX); -1 when too long. */
int local_folder_name(const char *mailbox, char *out, size_t outlen);
/* Reverse of local_folder_name for a directory entry; -1 when it is not one of ours. */
int local_folder_decode(const char *dirent, char *out, size_t outlen);
char *local_folder_path(struct store_account *acct, const char *mailbox);
/* Flag letters for a Maildir ":2," suffix, in ASCII order (D F R S T). */
void local_flags_suffix(uint32_t flags, char out[8]);
uint32_t local_flags_from_suffix(const char *s);
/* Parses BASE,U=uid,S=size:2,FLAGS; fields not present are 0. base_len_r: length of BASE. */
void local_parse_filename(const char *name, uint32_t *uid_r, uint64_t *size_r, uint32_t *flags_r,
			  size_t *base_len_r);
/* BASE,U=uid,S=size:2,FLAGSletters; letters (keyword letters, kwletters.c) may be NULL. */
char *local_make_filename(const char *base, uint32_t uid, uint64_t size, uint32_t flags,
			  const char *letters);
/* Normalises keywords: validated atoms, duplicates removed (case-insensitive), sorted, joined
 * by ' '. *out_r NULL when empty. */
enum store_error local_keywords_join(const char *const *kw, size_t n, char **out_r,
				     struct store_err *err_r);

/* ---- kwletters.c: keywords as letters in file names ---- */
#define LOCAL_KEYWORDS_FILE "roost-keywords"
#define LOCAL_KW_LETTERS 26
/* A folder's keyword letters: names[i] has the letter 'a' + i. Loaded on first use. */
struct local_kwmap {
	char *names[LOCAL_KW_LETTERS];
	unsigned count;
	bool loaded;
};
void local_kwmap_load(struct local_kwmap *map, const char *folder);
void local_kwmap_clear(struct local_kwmap *map);
/* The letters (ascending) of a normalised keyword list, giving letters to new keywords (the
 * file is written durably first). Keywords without a letter are left out. Under the write
 * lock. */
void local_kwmap_letters(struct local_kwmap *map, const char *folder, const char *keywords,
			 char out[LOCAL_KW_LETTERS + 1]);
/* The keyword letters in a file name's info part, ascending. */
void local_filename_letters(const char *name, char out[LOCAL_KW_LETTERS + 1]);
/* The normalised keyword list a file name's letters stand for (heap), NULL when none. */
char *local_kwmap_keywords(struct local_kwmap *map, const char *folder, const char *name);

/* ---- fsutil.c ---- */
int local_folder_create_dirs(const char *folder);
/* Replaces FOLDER/NAME with TEXT durably (tmp file, fsync, rename, directory fsync); -1 with
 * errno. */
int local_write_durable(const char *folder, const char *name, const char *text, size_t len);
/* Writes the uidvalidity file of a folder durably. */
int local_uidv_write(const char *folder, uint32_t uidvalidity, uint32_t uidnext_floor);
/* 0 on success; missing file: -1 with errno ENOENT. */
int local_uidv_read(const char *folder, uint32_t *uidvalidity_r, uint32_t *floor_r);
int local_rm_rf(const char *path);
void local_new_base(struct store *store, char *out, size_t outlen);

/* ---- account.c ---- */
void local_write_begin(struct store_account *acct);
/* Takes acct->lock for reading (retrying a pending index recovery first). */
void local_read_begin(struct store_account *acct);
void local_write_end(struct store_account *acct);
/* False (and err_r filled) while the index could not be reopened after an I/O error. */
bool local_db_ready(struct store_account *acct, struct store_err *err_r);
/* Releases acct->lock (and the flock when write is set) and delivers events in commit order. */
void local_unlock_publish(struct store_account *acct, bool write, const struct store_event *events,
			  size_t count);
/* Counts a commit that took messages away (see store_account_removals); called after it. */
void local_note_removal(struct store_account *acct);
void local_note_index_write(struct store_account *acct);
enum store_error local_mbox_by_name(struct store_account *acct, const char *canon,
				    struct local_mbox *m_r, struct store_err *err_r);
enum store_error local_mbox_by_id(struct store_account *acct, uint64_t id, struct local_mbox *m_r,
				  struct store_err *err_r);
enum store_error local_mbox_insert(struct store_account *acct, const char *canon,
				   uint32_t special_use, uint32_t uidvalidity, uint32_t floor,
				   struct local_mbox *m_r, struct store_err *err_r);
uint32_t local_next_uidvalidity(struct store_account *acct);
int local_exec(struct store_account *acct, const char *sql);
enum store_error local_update_counters(struct store_account *acct, const struct local_mbox *m,
				       struct store_err *err_r);

/* ---- sync.c ---- */
/* Reconciles a folder with the index (acct->lock and flock held, inside no transaction).
 * full: scan cur/ too (files not in the index are adopted with their UID when it is at least
 * uidnext, or always when adopt_any, i.e. the row was just rebuilt; else they get a fresh UID;
 * rows without a file are dropped). Otherwise only new/ is read. Messages added are returned
 * for the change feed. */
enum store_error local_sync_mailbox(struct store_account *acct, struct local_mbox *m, bool full,
				    bool adopt_any, struct store_msg **added_r,
				    size_t *added_count_r, struct store_err *err_r);
/* Reconciles the set of folders with the mailboxes table, then syncs each fully. */
enum store_error local_sync_account(struct store_account *acct, struct store_err *err_r);

/* ---- rename_intent.c (design note 8) ---- */
/* Writes the record for renaming OLD (and its inferiors) to NEW durably; -1 with errno. */
int local_rename_intent_write(struct store_account *acct, const char *old_canon,
			      const char *new_canon);
/* Removes the record durably; -1 with errno. */
int local_rename_intent_clear(struct store_account *acct);
/* Finishes an interrupted rename (write lock held, no transaction open): 0 when there was
 * none, 1 when one was finished (the caller then runs the full sync), -1 when it could not
 * be (the record stays for the next attempt; logged). */
int local_rename_intent_finish(struct store_account *acct);

/* ---- mailboxes.c ---- */
/* Renames the index rows of OLD and its inferiors to NEW inside the caller's transaction. A
 * row whose new name is taken is dropped (its folder was moved over; the sync adopts it). */
enum store_error local_rename_rows(struct store_account *acct, const char *old_canon,
				   const char *new_canon, struct store_err *err_r);

/* ---- save.c ---- */
void local_commit_queue_init(struct store_account *acct);

/* ---- foreign.c: commits of other processes (roost import) ---- */
struct local_seen {
	uint64_t mailbox_id;
	uint32_t uidnext;
};
/* An account this process has open, with one more reference (store_account_close drops it);
 * -1 when it is not open. */
int local_account_find_open(struct store *store, const char *address,
			    struct store_account **acct_r);
/* Under the index lock: (re)reads every mailbox's uidnext as the starting point. */
void local_seen_load(struct store_account *acct);
/* Under the index lock: a published event's mailbox is known up to its uidnext. */
void local_seen_note(struct store_account *acct, uint64_t mailbox_id, uint32_t uidnext);
void local_seen_free(struct store_account *acct);
/* store_msg_list with the index lock already held. */
enum store_error local_msg_list_locked(struct store_account *acct, uint64_t mailbox_id,
				      const struct store_list_query *query, struct store_msg **msgs_r,
				      size_t *count_r, struct store_err *err_r);

/* ---- messages.c ---- */
/* Copies or moves every message of RANGES (NULL = all) from src to dst under the write lock,
 * committing its own transaction. */
enum store_error local_copy_locked(struct store_account *acct, struct local_mbox *src,
				   const struct store_uid_range *ranges, size_t range_count,
				   struct local_mbox *dst, bool move, struct store_uid_map *map_r,
				   struct local_events *evs, struct store_err *err_r);
/* QRESYNC history: remembers UIDS as expunged at MODSEQ, inside the caller's transaction,
 * and forgets the oldest past LIMIT_EXPUNGE_HISTORY (raising the mailbox's expunge_floor). */
enum store_error local_expunged_record(struct store_account *acct, uint64_t mailbox_id,
				       const uint32_t *uids, size_t count, uint64_t modseq,
				       struct store_err *err_r);
/* The first HIGHESTMODSEQ of a folder whose index row was lost: the clock in microseconds. */
uint64_t local_modseq_floor_now(void);
/* Writes the uidnext floor of a folder before files of it disappear (design note 4). */
enum store_error local_floor_update(struct store_account *acct, struct local_mbox *m,
				    struct store_err *err_r);
/* Appends " AND (uid BETWEEN a AND b OR ...)" for RANGES to sql. */
void local_ranges_sql(struct buf *sql, const struct store_uid_range *ranges, size_t count);

/* Hard link, or a durable copy when the file system refuses links. */
int local_link_or_copy(const char *from, const char *to);

/* ---- quota.c ---- */
#define LOCAL_QUOTA_NONE STORE_QUOTA_NONE
/* The quota_usage row; caller holds acct->lock. */
enum store_error local_quota_usage(struct store_account *acct, uint64_t *bytes_r,
				   uint64_t *messages_r);
/* Whether usage past the account's limits (the row as the current transaction sees it). */
bool local_quota_exceeded(struct store_account *acct, uint64_t bytes, uint64_t messages);
/* Recomputes the row from the message rows (a rebuilt or recovered index); caller holds the
 * write lock. */
enum store_error local_quota_recount(struct store_account *acct);
/* Asks the policy (when there is one) and sets the account's limits; no lock held. */
void local_quota_refresh(struct store_account *acct);
/* After a commit that changed usage, with no lock held: sends the warning of a threshold
 * crossed upwards and forgets thresholds usage fell below. Nothing without a policy. */
void local_quota_after_change(struct store_account *acct);
/* Stores a complete message in INBOX whatever the quota (save.c). */
enum store_error local_save_exempt(struct store_account *acct, const char *text, size_t len);

/* ---- mimecache.c ---- */
/* IMAP ENVELOPE and BODYSTRUCTURE of a message, from the MIME layer; NULL when unavailable. */
/* thread_id_r (may be NULL): the RFC 8474 THREADID number, 0 when the message names no
 * message-id at all. */
void local_mime_cache(const uint8_t *data, size_t len, char **envelope_r, char **bodystructure_r,
		      uint64_t *thread_id_r);

/* A cached prepared statement for sql (a string literal), reset and ready to bind; NULL on a
 * prepare error. Caller holds acct->lock and hands it back with local_stmt_done. */
sqlite3_stmt *local_stmt(struct store_account *acct, const char *sql);
void local_stmt_done(sqlite3_stmt *st);
/* Finalises every cached statement (before the connection closes or is replaced). */
void local_stmt_cache_clear(struct store_account *acct);

#endif
