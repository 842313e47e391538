/* The mail store API: accounts, mailboxes, messages, flags with MODSEQ, quota and the change
 * feed, in protocol-neutral terms. SMTP delivery, IMAP, POP3 and `roost import` all go through
 * this header; the only backend today is store/local (Maildir++ plus one SQLite index per
 * account), and nothing here names a file or a path so that a database backend fits behind it.
 *
 * Threading contract
 *  1. Every function is synchronous and may block on disk (fsync): call it from a worker
 *     thread, never from an event loop.
 *  2. Every function is thread-safe. Several threads may use the same struct store_account at
 *     once; an account handle is shared and reference counted (store_account_open on an
 *     address already open returns the same handle with one more reference).
 *  3. A struct store_save or struct store_message belongs to the thread that made it until it
 *     is finished/closed; it is not shared.
 *  4. Change-feed callbacks run on the thread that committed the change, after the commit,
 *     never under the index lock, and in commit order per account. They run while the account's
 *     subscriber list is locked (that lock is what keeps the order), so a callback must be
 *     quick (copy what it needs, wake its own loop), must not block, and must not call any
 *     store function on the same account (that would deadlock against the next committer).
 *     The event carries what a session needs (uids, flags, keywords, modseq, sizes, uidnext,
 *     highestmodseq), so 100 watchers of a mailbox never touch the disk because of it.
 *
 * Error model: every fallible function returns enum store_error (STORE_OK on success) and
 * fills an optional struct store_err with a one-line text fit for a client ("Mailbox exists").
 * Internal details (paths, errno, SQLite messages) go to the log only.
 *
 * Mailbox names are UTF-8, hierarchy separator '/'. "INBOX" is case-insensitive (RFC 9051
 * §5.1) and is reported as "INBOX". Names are validated by store_mailbox_name_check. */
#ifndef ROOST_STORE_H
#define ROOST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store_error {
	STORE_OK = 0,
	STORE_ERR_NOT_FOUND,     /* no such mailbox / message / account */
	STORE_ERR_EXISTS,        /* mailbox name already in use */
	STORE_ERR_NO_SPACE,      /* ENOSPC / EDQUOT on the disk: temporary failure */
	STORE_ERR_OVER_QUOTA,    /* the account's quota would be exceeded */
	STORE_ERR_IO,            /* EIO, fsync failure, SQLite failure: temporary failure */
	STORE_ERR_INVALID,       /* bad name, bad argument */
	STORE_ERR_LIMIT,         /* a limit of limits.h (message size, name length, keywords) */
	STORE_ERR_NO_PERMISSION, /* the operation is not allowed (DELETE INBOX) */
	STORE_ERR_HAS_CHILDREN,  /* DELETE of a mailbox with inferiors (RFC 5530 HASCHILDREN) */
};

struct store_err {
	enum store_error code;
	char text[160];
};

/* Human text for a code, used when no struct store_err was filled. */
const char *store_error_str(enum store_error code);

/* System flags (bitmask). Keywords are separate strings. */
enum {
	STORE_FLAG_SEEN = 1u << 0,
	STORE_FLAG_ANSWERED = 1u << 1,
	STORE_FLAG_FLAGGED = 1u << 2,
	STORE_FLAG_DELETED = 1u << 3,
	STORE_FLAG_DRAFT = 1u << 4,
	STORE_FLAGS_ALL = 0x1f,
};

/* RFC 6154 special-use attributes (bitmask). */
enum {
	STORE_SPECIAL_SENT = 1u << 0,
	STORE_SPECIAL_DRAFTS = 1u << 1,
	STORE_SPECIAL_TRASH = 1u << 2,
	STORE_SPECIAL_JUNK = 1u << 3,
	STORE_SPECIAL_ARCHIVE = 1u << 4,
};

/* ---- the store and its accounts ---- */

struct store;
struct store_account;

struct store_settings {
	const char *data_dir;      /* mail lives under DATA_DIR/mail/ */
	uint64_t max_message_size; /* 0 = LIMIT_MESSAGE_SIZE_DEFAULT */
};

/* Opens the store. Returns NULL (and logs) when data_dir is unusable. */
struct store *store_open(const struct store_settings *settings, struct store_err *err_r);
/* Closes the store; every account handle must have been closed. */
void store_close(struct store **store);

/* Opens (creating on first use, with INBOX, Sent, Drafts, Trash, Junk and Archive) the
 * account ADDRESS (local@domain, case-insensitive). Repairs or rebuilds the index if needed. */
enum store_error store_account_open(struct store *store, const char *address,
				    struct store_account **acct_r, struct store_err *err_r);
/* Drops one reference; the last one closes the index. */
void store_account_close(struct store_account **acct);
/* Takes an account's mail out of the store (`roost user del`, and `user add` finding mail
 * left by an earlier account of that address): the account's directory is renamed, in one
 * rename(2), to DATA_DIR/archive/DOMAIN/LOCAL-YYYYMMDDTHHMMSSZ (UTC; *archived_r gets the
 * path, caller frees), or with purge to a hidden name beside it that is then removed
 * (*archived_r NULL). It waits for a writer in another process (the server) to finish
 * first. A process that has the account open notices at its next write or open that the
 * directory is not the one it opened (design note 9 of store/local): writes fail, and a new
 * account of the address gets a new, empty directory. Needs no open store.
 * STORE_ERR_NOT_FOUND when the account has no directory. */
enum store_error store_account_remove(const char *data_dir, const char *address, bool purge,
				      char **archived_r, struct store_err *err_r);
/* ---- quota (RFC 9208 STORAGE and MESSAGE) ----
 * Usage is kept in the account's index, in the same transaction as every message row that
 * comes or goes, so it is exact after concurrent saves and after a crash. A commit that would
 * take the account past a limit fails with STORE_ERR_OVER_QUOTA and stores nothing; a MOVE
 * within the account does not grow usage and is always allowed. */

/* Limits of one account as the accounts directory and the configuration give them, 0 = none.
 * A domain limit applies to the sum over the domain's accounts. */
struct store_quota_policy {
	uint64_t storage, messages;
	uint64_t domain_storage, domain_messages;
	unsigned warn_percent[2]; /* ascending; 0 = not used */
};
/* Asked before each save and copy, and by store_account_quota; runs on the caller's thread
 * without store locks held (it may block on the accounts directory). */
typedef void store_quota_policy_fn(void *ctx, const char *address,
				   struct store_quota_policy *policy_r);
/* One policy per store; set it before the store is used by other threads. Without one, the
 * limits are those of store_account_set_quota and no warnings are sent. */
void store_set_quota_policy(struct store *store, store_quota_policy_fn *fn, void *ctx);
/* Whether any limit may apply to address (asks the policy; opens nothing), so a caller that
 * only wants to know whether an account is full skips opening accounts without limits. */
bool store_quota_limited(struct store *store, const char *address);

#define STORE_QUOTA_NONE UINT64_MAX
struct store_quota {
	uint64_t used_bytes, used_messages;     /* this account */
	/* What applies to it now, STORE_QUOTA_NONE = no limit. Lower than the account's own
	 * limit when its domain has less room left; 0 when the domain has none. */
	uint64_t limit_bytes, limit_messages;
	uint64_t domain_used_bytes, domain_used_messages; /* every account of the domain */
	struct store_quota_policy policy;
};
/* Usage and the limits in effect: the account's own, lowered to what its domain has left.
 * Also sets those limits for the account's next commits. */
enum store_error store_account_quota(struct store_account *acct, struct store_quota *quota_r,
				     struct store_err *err_r);
/* Sets the limits directly (0 = unlimited), for a store without a policy. Saves beyond them
 * fail with STORE_ERR_OVER_QUOTA. */
void store_account_set_quota(struct store_account *acct, uint64_t max_bytes, uint64_t max_messages);
enum store_error store_account_usage(struct store_account *acct, uint64_t *bytes_r,
				     uint64_t *messages_r, struct store_err *err_r);
/* A count that goes up after every commit that takes messages out of the account (expunge,
 * move out, mailbox delete or rename, files found missing). A caller that holds message data
 * opened earlier compares it with the value read before that open: unchanged means every one
 * of those messages still exists. Never blocks; safe on any thread, including event loops. */
uint64_t store_account_removals(struct store_account *acct);
/* What a cache kept above the store (IMAP's kept sort orders) compares, with the UID list of
 * the mailbox, to know that no message's cached envelope changed since it read them: `writes`
 * goes up whenever this process writes the envelope of a message that already existed (or
 * reopens the index), `others` after any commit of another process (PRAGMA data_version), and
 * `opened` tells two openings of the account apart. Saves and expunges of this process do
 * not count (the UID list shows them: UIDs are never used twice), nor do flag changes. */
struct store_index_version {
	uint64_t opened, writes, others;
};
enum store_error store_account_index_version(struct store_account *acct,
					     struct store_index_version *version_r,
					     struct store_err *err_r);
bool store_index_version_equal(const struct store_index_version *a,
			       const struct store_index_version *b);
/* Another process (roost import) committed to ADDRESS's index: when this process has the
 * account open, messages it added beyond what this process last published are announced on
 * the change feed now, as APPEND events. Nothing happens when the account is not open (the
 * next open reads the index afresh). *added_r (may be NULL): how many were announced. */
enum store_error store_account_catch_up(struct store *store, const char *address,
					size_t *added_r, struct store_err *err_r);

/* ---- mailboxes ---- */

/* Validates a mailbox name (UTF-8, '/' separated): rejects empty names and components,
 * leading/trailing '/', "." and "..", control characters, invalid UTF-8 and names longer than
 * LIMIT_MAILBOX_NAME. Writes the canonical form (INBOX upper-cased) to canon_r if not NULL.
 * canon_r must hold LIMIT_MAILBOX_NAME + 1 bytes. */
enum store_error store_mailbox_name_check(const char *name, char *canon_r, struct store_err *err_r);

struct store_mailbox_info {
	uint64_t id;          /* stable across RENAME, never reused in the account */
	char *name;           /* canonical UTF-8 name */
	uint32_t uidvalidity;
	uint32_t special_use; /* STORE_SPECIAL_* */
	bool subscribed;
	bool has_children;
};

enum store_error store_mailbox_list(struct store_account *acct, struct store_mailbox_info **list_r,
				    size_t *count_r, struct store_err *err_r);
void store_mailbox_list_free(struct store_mailbox_info **list, size_t count);

/* Looks a mailbox up by name; info_r->name is heap (store_mailbox_info_clear). */
enum store_error store_mailbox_get(struct store_account *acct, const char *name,
				   struct store_mailbox_info *info_r, struct store_err *err_r);
void store_mailbox_info_clear(struct store_mailbox_info *info);

/* Creates NAME and any missing parents (as real, selectable mailboxes). */
enum store_error store_mailbox_create(struct store_account *acct, const char *name,
				      uint32_t special_use, struct store_err *err_r);
/* Deletes a mailbox and its messages. INBOX: NO_PERMISSION; with children: HAS_CHILDREN. */
enum store_error store_mailbox_delete(struct store_account *acct, const char *name,
				      struct store_err *err_r);
/* Renames OLD and its inferiors to NEW (parents of NEW auto-created). RENAME INBOX creates NEW,
 * moves INBOX's messages into it and leaves INBOX empty; INBOX's inferiors stay
 * (RFC 9051 §6.3.6). */
enum store_error store_mailbox_rename(struct store_account *acct, const char *old_name,
				      const char *new_name, struct store_err *err_r);
/* A name without a mailbox may be subscribed too (kept apart, see
 * store_orphan_subscriptions); unsubscribing a name that is neither: NOT_FOUND. */
enum store_error store_mailbox_subscribe(struct store_account *acct, const char *name,
					 bool subscribed, struct store_err *err_r);
/* The subscribed names that have no mailbox, sorted; free with store_names_free. */
enum store_error store_orphan_subscriptions(struct store_account *acct, char ***names_r,
					    size_t *count_r, struct store_err *err_r);
void store_names_free(char ***names, size_t count);

struct store_mailbox_status {
	uint64_t id;
	uint32_t messages;
	uint32_t recent;
	uint32_t unseen;
	uint32_t uidnext;
	uint32_t uidvalidity;
	uint32_t first_unseen_uid; /* 0 when every message is seen */
	uint64_t size;             /* sum of message sizes (RFC 8438 STATUS SIZE) */
	uint64_t highestmodseq;
};
enum store_error store_mailbox_status(struct store_account *acct, const char *name,
				      struct store_mailbox_status *status_r,
				      struct store_err *err_r);
/* Ends the "recent" window of a mailbox for the caller (a read-write SELECT): returns the
 * first UID that was recent (uidnext when none) and marks everything up to uidnext-1 old. */
enum store_error store_mailbox_take_recent(struct store_account *acct, uint64_t mailbox_id,
					   uint32_t *first_recent_uid_r, struct store_err *err_r);
/* Picks up messages that another program dropped into the mailbox's Maildir new/ (they get
 * fresh UIDs, in name order). Also done when the account is first opened. */
enum store_error store_mailbox_refresh(struct store_account *acct, uint64_t mailbox_id,
				       struct store_err *err_r);

/* ---- message metadata ---- */

struct store_uid_range {
	uint32_t first;
	uint32_t last; /* inclusive; UINT32_MAX for "*" */
};

struct store_msg {
	uint32_t uid;
	uint32_t flags;     /* STORE_FLAG_* */
	uint64_t modseq;
	int64_t internal_date; /* seconds since the epoch */
	uint64_t size;      /* exact octets of the stored message (CRLF line ends) */
	char *keywords;     /* NULL or space-separated keywords, sorted */
	/* RFC 8474 EMAILID: the same number in every mailbox the message was copied or moved
	 * to, never that of another message of the account. Filled by store_msg_list (0 in
	 * change-feed events and flag results). */
	uint64_t email_id;
	/* RFC 8514 SAVEDATE: when the message was saved into this mailbox (APPEND, delivery,
	 * COPY, MOVE); the internal date for messages saved before the index kept it. Filled
	 * by store_msg_list like email_id. */
	int64_t save_date;
	/* RFC 8474 THREADID: a hash of the thread's root message-id, computed at save time
	 * (0 = unknown: saved before the index kept it, or no message-id at all). Copies keep
	 * it. Filled by store_msg_list like email_id. */
	uint64_t thread_id;
};

struct store_list_query {
	uint32_t uid_min;        /* 0 = from the first */
	uint32_t uid_max;        /* 0 = to the last */
	uint64_t changedsince;   /* only messages with modseq > this (0 = all), RFC 7162 */
};

/* Metadata of a mailbox's messages in UID order (one SQL range scan, no file access). */
enum store_error store_msg_list(struct store_account *acct, uint64_t mailbox_id,
				const struct store_list_query *query, struct store_msg **msgs_r,
				size_t *count_r, struct store_err *err_r);
void store_msg_list_free(struct store_msg **msgs, size_t count);

/* ---- saving: APPEND, SMTP delivery and import share this path ---- */

struct store_save;

struct store_save_target {
	struct store_account *acct;
	const char *mailbox; /* name; NULL = INBOX */
};

struct store_save_meta {
	uint32_t flags;                /* STORE_FLAG_* */
	const char *const *keywords;   /* may be NULL */
	size_t keyword_count;
	int64_t internal_date;         /* 0 = now */
};

struct store_save_result {
	enum store_error error;
	uint32_t uid;
	uint32_t uidvalidity;
};

/* Starts a message for one mailbox. The bytes are spooled to disk as they arrive. */
enum store_error store_save_begin(struct store_account *acct, const char *mailbox,
				  struct store_save **save_r, struct store_err *err_r);
/* Starts one message for several mailboxes, possibly of different accounts (SMTP delivery
 * to many local recipients): written once, linked into each, committed with shared fsyncs. */
enum store_error store_save_begin_multi(const struct store_save_target *targets, size_t count,
					struct store_save **save_r, struct store_err *err_r);
/* Appends bytes. STORE_ERR_LIMIT past the maximum message size, NO_SPACE/IO on disk errors;
 * after an error the save must be aborted. */
enum store_error store_save_write(struct store_save *save, const void *data, size_t len,
				  struct store_err *err_r);
/* Makes the message durable in every target (file fsync, rename, directory fsync, index
 * commit) and frees the save. results_r (one per target, may be NULL) gets each target's
 * outcome; the return value is STORE_OK only if every target succeeded. When this returns,
 * acknowledged messages survive a crash and failed ones are invisible. */
enum store_error store_save_finish(struct store_save **save, const struct store_save_meta *meta,
				   struct store_save_result *results_r, struct store_err *err_r);
/* Discards the message; accepts NULL. */
void store_save_abort(struct store_save **save);
/* Makes a save's octets durable now (fsync) and lets go of its file descriptor; blocks like
 * store_save_finish. Writing after it is an error. store_save_finish does it when not done. */
enum store_error store_save_seal(struct store_save *save, struct store_err *err_r);
/* Several messages at once, all or none (IMAP MULTIAPPEND, RFC 3502): each save must have
 * been begun with store_save_begin, all for one account. The messages are committed in one
 * index transaction, in the given order (their UIDs ascend); when any of them cannot be
 * stored (quota, limit, I/O) none becomes visible and every result carries the error.
 * metas[i] (metas may be NULL) belongs to saves[i]. Frees every save, also on failure. */
enum store_error store_save_finish_all(struct store_save **saves, size_t count,
				       const struct store_save_meta *metas,
				       struct store_save_result *results_r, struct store_err *err_r);

/* ---- changing messages ---- */

enum store_flag_op { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

struct store_flag_change {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	char *keywords;
};

struct store_flag_result {
	struct store_flag_change *changed; /* messages whose flags changed, UID order */
	size_t changed_count;
	uint32_t *failed_uids;             /* UNCHANGEDSINCE failures (RFC 7162 MODIFIED) */
	size_t failed_count;
};
void store_flag_result_clear(struct store_flag_result *result);

/* Changes flags and keywords of the messages in RANGES. unchangedsince = 0 means no
 * condition; otherwise messages with modseq > unchangedsince are left alone and listed in
 * failed_uids. Each changed message gets a new MODSEQ. */
enum store_error store_flags_update(struct store_account *acct, uint64_t mailbox_id,
				    const struct store_uid_range *ranges, size_t range_count,
				    enum store_flag_op op, uint32_t flags,
				    const char *const *keywords, size_t keyword_count,
				    uint64_t unchangedsince, struct store_flag_result *result_r,
				    struct store_err *err_r);

/* Removes messages in RANGES (all messages when ranges is NULL); with only_deleted, only those
 * with \Deleted. The expunged UIDs are returned (heap, caller frees) in UID order. */
enum store_error store_expunge(struct store_account *acct, uint64_t mailbox_id,
			       const struct store_uid_range *ranges, size_t range_count,
			       bool only_deleted, uint32_t **uids_r, size_t *count_r,
			       struct store_err *err_r);

/* QRESYNC (RFC 7162 §3.2.5.2): the UIDs expunged from the mailbox after MODSEQ since, in UID
 * order (heap, caller frees). The history is bounded (LIMIT_EXPUNGE_HISTORY per mailbox, and
 * it restarts when the index is rebuilt): *complete_r is false when expunges after SINCE may
 * have been forgotten, and the caller must then work from the UIDs the client knows. */
enum store_error store_vanished_list(struct store_account *acct, uint64_t mailbox_id,
				     uint64_t since, uint32_t **uids_r, size_t *count_r,
				     bool *complete_r, struct store_err *err_r);

/* UIDPLUS COPYUID data (RFC 4315): src_uids[i] became dst_uids[i]. */
struct store_uid_map {
	uint32_t dst_uidvalidity;
	uint32_t *src_uids;
	uint32_t *dst_uids;
	size_t count;
};
void store_uid_map_clear(struct store_uid_map *map);

/* Copies (or moves) the messages in RANGES to DST_ID of the same account in UID order,
 * keeping flags and keywords. A move removes them from the source in the same commit. */
enum store_error store_copy(struct store_account *acct, uint64_t src_id,
			    const struct store_uid_range *ranges, size_t range_count,
			    uint64_t dst_id, bool move, struct store_uid_map *map_r,
			    struct store_err *err_r);

/* ---- reading ---- */

struct store_message;

/* Opens the message read-only: small messages are read into memory, large ones mapped, so a
 * caller never holds more than 128 KiB of heap per open message. Callers stream ranges out
 * of data without copying it. */
enum store_error store_message_open(struct store_account *acct, uint64_t mailbox_id, uint32_t uid,
				    struct store_message **msg_r, struct store_err *err_r);
const uint8_t *store_message_data(const struct store_message *msg, size_t *len_r);
void store_message_close(struct store_message **msg);

/* The cached IMAP ENVELOPE and BODYSTRUCTURE strings of a message (heap, caller frees),
 * computed at save time by the MIME parser (or on first request for messages found on disk).
 * Either may come back NULL when the MIME layer could not produce it. */
enum store_error store_message_cache(struct store_account *acct, uint64_t mailbox_id,
				     uint32_t uid, char **envelope_r, char **bodystructure_r,
				     struct store_err *err_r);

/* The cached ENVELOPE of every message of a mailbox, in UID order, from one index scan (what
 * SORT and THREAD order by). envelope is NULL for a message the MIME layer could not parse. */
struct store_envelope {
	uint32_t uid;
	char *envelope;
};
enum store_error store_envelope_list(struct store_account *acct, uint64_t mailbox_id,
				     struct store_envelope **list_r, size_t *count_r,
				     struct store_err *err_r);
void store_envelope_list_free(struct store_envelope **list, size_t count);

/* Keys a protocol derives once from a message's envelope and header (IMAP SORT and THREAD)
 * and keeps in the index beside the envelope, so that ordering a mailbox decodes nothing.
 * The bytes are the caller's format, opaque to the store. A row is forgotten whenever the
 * message's envelope is written again or the message goes, so keys never outlive what they
 * came from. store_sort_keys_scan calls fn for every message of the mailbox that has keys,
 * in UID order, in one index scan and under the index lock: fn copies what it needs (the
 * bytes are gone when it returns) and does nothing else. */
struct store_sort_keys {
	uint32_t uid;
	const uint8_t *keys;
	size_t keys_len;
};
typedef void store_sort_keys_fn(void *ctx, uint32_t uid, const uint8_t *keys, size_t len);
enum store_error store_sort_keys_scan(struct store_account *acct, uint64_t mailbox_id,
				      store_sort_keys_fn *fn, void *ctx, struct store_err *err_r);
/* Keeps the keys of rows (of messages that still exist) in one transaction. */
enum store_error store_sort_keys_put(struct store_account *acct, uint64_t mailbox_id,
				     const struct store_sort_keys *rows, size_t count,
				     struct store_err *err_r);

/* ---- change feed ---- */

enum store_event_kind {
	STORE_EVENT_APPEND,          /* new messages (append, copy, move in, new/ pick-up) */
	STORE_EVENT_FLAGS,           /* flags/keywords changed */
	STORE_EVENT_EXPUNGE,         /* messages removed (expunge, move out) */
	STORE_EVENT_MAILBOX_CREATE,
	STORE_EVENT_MAILBOX_RENAME,
	STORE_EVENT_MAILBOX_DELETE,
	/* The subscription of a name changed (RFC 3501 §6.3.6). mailbox_id is 0 when the name
	 * has no mailbox; such events reach account-wide subscribers (mailbox_id 0) only. */
	STORE_EVENT_MAILBOX_SUBSCRIBE,
	STORE_EVENT_MAILBOX_UNSUBSCRIBE,
};

struct store_event {
	enum store_event_kind kind;
	uint64_t mailbox_id;
	const char *mailbox;          /* current name (the new one for RENAME) */
	const char *old_name;         /* RENAME only */
	uint32_t uidvalidity;
	uint32_t uidnext;             /* after the change */
	uint64_t highestmodseq;       /* after the change */
	size_t count;
	const struct store_msg *msgs; /* APPEND/FLAGS: full metadata; EXPUNGE: uid only */
};

/* The event and everything it points to are valid only during the call. */
typedef void store_event_cb(const struct store_event *event, void *ctx);

struct store_subscription;

/* Subscribes to changes of one mailbox (mailbox_id) or of the whole account (mailbox_id 0).
 * An account-wide subscriber sees every event of the account, mailbox creation, renaming,
 * deletion and subscription changes included, and decides itself which ones it wants. */
struct store_subscription *store_subscribe(struct store_account *acct, uint64_t mailbox_id,
					   store_event_cb *cb, void *ctx);
/* After it returns the callback is not running and will not run again. Accepts NULL. */
void store_unsubscribe(struct store_subscription **sub);

/* ---- per-account counters (the spam classifier's token database) ---- */

/* A generic table of pairs of counts keyed by a 64-bit number the caller chooses (a token's
 * hash, a message's digest), kept in the account's index. Bounded: after an update that
 * leaves more than `cap` rows, the rows seen on the fewest days and longest ago are removed
 * down to 9/10 of the cap. Keys below STORE_COUNT_PINNED are never removed that way (a
 * caller's totals). The index may be rebuilt after damage, and these rows are not in the
 * Maildir: a rebuild starts them from zero. */
#define STORE_COUNT_PINNED 16

struct store_count_delta {
	uint64_t key;
	int32_t d0, d1; /* added to the two counts; a count never goes below 0 */
};

/* Applies every delta in one commit, then prunes past cap (0 = no cap). */
enum store_error store_counts_update(struct store_account *acct,
				     const struct store_count_delta *deltas, size_t count,
				     uint64_t cap, struct store_err *err_r);
/* Reads the counts of each key into counts_r[i][0..1] (0, 0 for an absent key). */
enum store_error store_counts_get(struct store_account *acct, const uint64_t *keys, size_t count,
				  uint32_t (*counts_r)[2], struct store_err *err_r);
/* Rows in the table (for `roost spam` and the tests of the cap). */
enum store_error store_counts_size(struct store_account *acct, uint64_t *rows_r,
				   struct store_err *err_r);

/* ---- DMARC aggregate report counts (dmarc_reports.c) ---- */

/* DATA_DIR/dmarc-reports.db: how often each combination of columns was seen per UTC day
 * (days since the epoch) and policy domain, with the policy published that day, for the
 * reports cli/ sends (RFC 7489 §7.2). The columns are the caller's text, in this order:
 * header_from, source_ip, disposition, dkim_aligned, spf_aligned, dkim_domain, dkim_result,
 * spf_domain, spf_scope, spf_result. Bounded by LIMIT_DMARC_REPORT_ROWS_PER_DAY and
 * LIMIT_DMARC_REPORT_KEEP_DAYS. Thread-safe; -1 with err on failure. */
#define STORE_DMARC_COLUMNS 10
#define STORE_DMARC_RUA_TEXT 512 /* LIMIT_DMARC_RUA_TEXT */

struct store_dmarc_policy {
	unsigned p, sp, pct; /* the caller's numbers for the policies */
	bool strict_dkim, strict_spf;
	char rua[STORE_DMARC_RUA_TEXT];
};

struct store_dmarc;
int64_t store_dmarc_today(void);
/* Opens (creating) the file and deletes the days past the keep limit. */
struct store_dmarc *store_dmarc_open(const char *data_dir, char *err, size_t errlen);
void store_dmarc_close(struct store_dmarc **st);
int store_dmarc_prune(struct store_dmarc *st, int64_t today, char *err, size_t errlen);
/* Counts one evaluation: 1 counted, 0 dropped by the day's row cap (logged once a minute). */
int store_dmarc_add(struct store_dmarc *st, int64_t day, const char *policy_domain,
		    const char *const columns[STORE_DMARC_COLUMNS],
		    const struct store_dmarc_policy *policy, char *err, size_t errlen);
/* Calls cb for each policy domain with counts on day (not yet marked sent, when
 * unsent_only), without the store's lock. Returns how many. */
int store_dmarc_domains(struct store_dmarc *st, int64_t day, bool unsent_only,
			void (*cb)(const char *domain, void *ctx), void *ctx, char *err,
			size_t errlen);
/* The policy of domain on day and each row with its count (most first); cb runs under the
 * store's lock and must not call it. 1 found, 0 nothing that day (err says so), -1. */
typedef void store_dmarc_row_cb(const char *const columns[STORE_DMARC_COLUMNS], uint64_t count,
				void *ctx);
int store_dmarc_read(struct store_dmarc *st, int64_t day, const char *domain,
		     struct store_dmarc_policy *policy_r, store_dmarc_row_cb *cb, void *ctx,
		     char *err, size_t errlen);
int store_dmarc_mark_sent(struct store_dmarc *st, int64_t day, const char *domain, char *err,
			  size_t errlen);

/* ---- copy and move observer ---- */

/* Called after store_copy committed (and after its change-feed events), on the thread that
 * called store_copy, with no store lock held: unlike a change-feed callback it may call the
 * store, on this account too. It sees the source and destination together, which the change
 * feed cannot tell apart from an unrelated expunge and append. */
struct store_copy_event {
	struct store_account *acct;
	const char *address;
	uint64_t src_id, dst_id;
	uint32_t src_special, dst_special; /* STORE_SPECIAL_* of each mailbox */
	bool move;
	const struct store_uid_map *map; /* dst_uids are the messages as they are now */
};
typedef void store_copy_cb(const struct store_copy_event *event, void *ctx);
/* One observer per store; set it before the store is used by other threads. NULL clears. */
void store_set_copy_observer(struct store *store, store_copy_cb *cb, void *ctx);

#endif
