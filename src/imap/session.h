/* IMAP session state shared by the files of this folder (one cmd_*.c per command group). */
#ifndef ROOST_IMAP_SESSION_H
#define ROOST_IMAP_SESSION_H

#include "../mime/mime.h"
#include "imap.h"
#include "parser.h"

/* Output back-pressure: a session that streams (FETCH, reporting many updates) stops
 * producing while this much is queued for the client and goes on once net reports the queue
 * down to the low mark. Far below net's LIMIT_OUTPUT_PENDING, so a client that reads, however
 * slowly, is never dropped for it. */
#define IMAP_OUTPUT_HIGH_WATER (512 * 1024)
#define IMAP_OUTPUT_LOW_WATER (256 * 1024)

enum imap_state {
	IMAP_STATE_NOT_AUTHENTICATED = 1 << 0,
	IMAP_STATE_AUTHENTICATED = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};
#define IMAP_STATES_ANY (IMAP_STATE_NOT_AUTHENTICATED | IMAP_STATE_AUTHENTICATED | IMAP_STATE_SELECTED)
#define IMAP_STATES_AUTHED (IMAP_STATE_AUTHENTICATED | IMAP_STATE_SELECTED)

struct imap_session {
	struct net_conn *conn;
	const struct imap_deps *deps;
	enum imap_state state;

	/* Command assembly: the wire bytes of the command being read, literals included. */
	struct buf cmd;
	uint64_t literal_remaining;
	unsigned literal_count;
	uint64_t literal_bytes;
	unsigned bad_count;
	const char *cmd_name; /* of the command last run or being assembled, for the log */

	/* Skipping a command whose line was too long (read to its end, never parsed): its tag for
	 * the BAD, and the literals it still announces, which are skipped unread. */
	char *skip_tag;
	bool skipping_long_line;
	bool skipping_command;
	uint64_t skip_literal;

	/* Authentication in progress (AUTHENTICATE continuation or an offloaded check). */
	struct sasl_session *sasl;
	char *auth_tag;
	bool in_sasl_exchange;
	char *sasl_success_user; /* authenticated, awaiting the client's final empty response */

	char *user; /* canonical address once authenticated */
	struct auth_login login; /* penalties, the held reply, the user+address count */
	bool enabled_rev2;
	bool enabled_utf8; /* RFC 6855 UTF8=ACCEPT */
	/* RFC 7162 §3.1: CONDSTORE is on after ENABLE or the first command that uses it (FETCH
	 * MODSEQ, SELECT (CONDSTORE), ...); from then on every FETCH carries MODSEQ. QRESYNC
	 * implies CONDSTORE and turns EXPUNGE into VANISHED. */
	bool enabled_condstore;
	bool enabled_qresync;

	struct store_account *acct; /* open while authenticated */
	struct imap_selected *sel;  /* NULL unless a mailbox is selected */
	unsigned sel_generation;    /* tells stale change-feed posts from current ones */
	/* Change-feed events waiting for a point where RFC 9051 §7.5.1 lets us report them,
	 * coalesced and bounded (selected.c). NULL when there are none. */
	struct imap_updates *updates;
	bool expunge_ok;	    /* the running command may report EXPUNGE */
	bool busy;		    /* an offloaded command is running */

	/* Searches kept alive (RFC 5267 §4, context.c); NULL until RETURN (UPDATE). */
	struct imap_contexts *contexts;

	/* NOTIFY (RFC 5465, notify.c); NULL until the client sends NOTIFY SET. */
	struct imap_notify *notify;

	/* IDLE (RFC 2177) */
	char *idle_tag;
	struct imap_keepalive *keepalive;

	/* APPEND streaming (cmd_append.c) */
	struct imap_append *append;
	/* FETCH output streaming (cmd_fetch.c) */
	struct imap_fetch *fetch;
};

/* The selected mailbox: the client's view of it. uids[msn - 1] is the UID of sequence number
 * msn; it changes only when this session reports EXISTS or EXPUNGE. */
struct imap_selected {
	uint64_t id;
	char *name; /* UTF-8 */
	uint32_t uidvalidity;
	bool readonly;
	uint32_t *uids;
	size_t count, cap;
	unsigned generation;
	struct store_subscription *sub;
	struct imap_feed *feed;
	/* \Recent (recent.c): the UIDs recent in this session, ascending ranges; whether it
	 * claims new UIDs as they are reported (read-write IMAP4rev1 selections). */
	struct store_uid_range *recent;
	size_t recent_count, recent_cap;
	bool recent_claims;
	/* Keywords the client was told of in FLAGS, " kw1 kw2" (RFC 3501 §7.2.6). */
	struct buf keywords;
	/* RFC 5182 SEARCHRES: the UIDs "$" stands for, ascending; empty at SELECT. */
	uint32_t *saved_uids;
	size_t saved_count;
};

/* A sequence set as sent: ranges of numbers, UINT32_MAX standing for "*". */
struct imap_seqset {
	struct store_uid_range *r;
	size_t count;
	bool saved; /* "$" (RFC 5182): the saved search result, in place of r */
};

/* One command: tag and the parser positioned after the command name (and its SP, if any). */
typedef void imap_command_fn(struct imap_session *s, const char *tag, struct imap_parser *ps);

struct imap_command {
	const char *name;
	unsigned states; /* IMAP_STATE_* bitmask where the command is allowed */
	imap_command_fn *run;
};

/* session.c */
/* Finishes a command: reports pending updates the command allows, then the tagged line. */
void imap_tagged(struct imap_session *s, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Replies NO with the RFC 5530 code matching a store error. */
void imap_store_error(struct imap_session *s, const char *tag, enum store_error e,
		      const struct store_err *err);
const char *imap_store_code(enum store_error e);
/* Input resumes after an asynchronous command; called when it finishes. */
void imap_command_done(struct imap_session *s);
/* Forgets the command being assembled and releases its buffer. */
void imap_reset_command(struct imap_session *s);
void imap_reply(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_bad(struct imap_session *s, const char *tag, const char *text);
/* Capability list (without "CAPABILITY") for the current state, into out. */
void imap_capabilities(struct imap_session *s, struct buf *out);
bool imap_plaintext_allowed(const struct imap_session *s);
void imap_logout(struct imap_session *s);

/* cmd_any.c */
imap_command_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_id,
	imap_cmd_starttls;
/* cmd_compress.c */
imap_command_fn imap_cmd_compress;
/* cmd_login.c */
imap_command_fn imap_cmd_login, imap_cmd_authenticate;
/* cmd_unauth.c (RFC 8437) */
imap_command_fn imap_cmd_unauthenticate;
/* Feeds one continuation line of AUTHENTICATE. */
void imap_sasl_continue(struct imap_session *s, const char *line, size_t len);
void imap_auth_session_end(struct imap_session *s);

/* mutf7.c: RFC 3501 §5.1.3 modified UTF-7 */
int imap_mutf7_to_utf8(const uint8_t *in, size_t len, struct buf *out);
int imap_utf8_to_mutf7(const char *name, struct buf *out);
bool imap_utf8_valid(const uint8_t *s, size_t len);

/* util.c */
/* Mailbox argument (astring) -> UTF-8 store name (mUTF-7 decoded unless UTF8=ACCEPT). Returns a
 * heap string, or NULL after answering BAD/NO itself. */
char *imap_parse_mailbox(struct imap_session *s, const char *tag, struct imap_parser *ps);
char *imap_parse_mailbox_ex(struct imap_session *s, const char *tag, struct imap_parser *ps,
			    bool strip_separator);
void imap_append_mbox(struct buf *out, const char *name, bool utf8);
/* Store name -> wire form (mUTF-7 or UTF-8), quoted/literal as needed. */
void imap_append_mailbox(struct imap_session *s, struct buf *out, const char *name);
/* sequence-set (RFC 9051 §9), or "$" alone (RFC 5182 §2.2, set_r->saved). */
bool imap_parse_seqset(struct imap_parser *ps, struct imap_seqset *set_r);
void imap_seqset_free(struct imap_seqset *set);
/* MSN set -> UID ranges of the selected view; false when a number is out of range. */
bool imap_seqset_msn_to_uids(const struct imap_selected *sel, const struct imap_seqset *set,
			     struct store_uid_range **ranges_r, size_t *count_r);
/* UID set -> ranges clamped to the view ("*" = highest UID in the view). */
void imap_seqset_uids(const struct imap_selected *sel, const struct imap_seqset *set,
		      struct store_uid_range **ranges_r, size_t *count_r);
bool imap_uid_in_ranges(uint32_t uid, const struct store_uid_range *r, size_t n);
/* Index in the view of the first UID >= uid (sel->count when there is none). */
size_t imap_view_lower_bound(const struct imap_selected *sel, uint32_t uid);
/* msn (1-based) of uid in the view, 0 when absent. */
uint32_t imap_msn_of(const struct imap_selected *sel, uint32_t uid);
/* flag-list "(" [flag *(SP flag)] ")"; keywords go to kw (heap strings). */
bool imap_parse_flag_list(struct imap_parser *ps, uint32_t *flags_r, char ***kw_r,
			  size_t *kw_count_r, bool allow_recent);
void imap_keywords_free(char ***kw, size_t *count);
void imap_append_flags(struct buf *out, uint32_t flags, const char *keywords);
/* The same with \Recent among them when recent is true (IMAP4rev1 only). */
void imap_append_flags_recent(struct buf *out, uint32_t flags, const char *keywords,
			      bool recent);
/* "dd-Mon-yyyy hh:mm:ss +0000" */
void imap_append_date_time(struct buf *out, int64_t t);
/* date-time (quoted) and date (dd-Mon-yyyy) arguments */
bool imap_parse_date_time(struct imap_parser *ps, int64_t *t_r);
bool imap_parse_date(struct imap_parser *ps, int64_t *day_r);
/* RFC 8474 objectids. A MAILBOXID is the store's mailbox id (kept by RENAME, never reused
 * in the account) with the UIDVALIDITY, so a mailbox made anew after the account was
 * removed gets another; an EMAILID ("E" + 16 hex digits) is the store's email_id, a
 * THREADID ("T" + 16 hex digits, or NIL when unknown) its thread_id. */
void imap_append_mailboxid(struct buf *out, uint64_t mailbox_id, uint32_t uidvalidity);
void imap_append_emailid(struct buf *out, uint64_t email_id);
/* "(Tn)" or NIL, as FETCH sends it. */
void imap_append_threadid(struct buf *out, uint64_t thread_id);
/* An EMAILID (prefix 'E') or THREADID ('T') of ours back to its number; false when it is
 * not one we make. */
bool imap_parse_objectid(const struct imap_slice *id, char prefix, int64_t *num_r);
/* Writes UID sets compactly ("1:3,7") into out. */
void imap_append_uid_set(struct buf *out, const uint32_t *uids, size_t n);

/* recent.c: \Recent (RFC 3501 §2.3.2), one claiming session per new message */
/* Worker, at SELECT (claim) or EXAMINE: makes the UIDs up to last_uid that no session
 * claimed recent in sel. unclaimed_from is the store's first recent UID, used by EXAMINE
 * when no session of this process selected the mailbox. */
void imap_recent_select(struct store_account *acct, const char *user, struct imap_selected *sel,
			uint32_t last_uid, uint32_t unclaimed_from, bool claim);
/* Loop, as a new UID is reported: claims it for this session when nobody has. */
void imap_recent_arrived(struct imap_session *s, uint32_t uid);
/* First UID no session of this process claimed; false when none has the mailbox open. */
bool imap_recent_unclaimed_from(const char *user, uint64_t mailbox_id, uint32_t uidvalidity,
				uint32_t *first_r);
bool imap_recent_is(const struct imap_selected *sel, uint32_t uid);
/* Messages of the view recent in this session. */
uint32_t imap_recent_count(const struct imap_selected *sel);
/* condstore.c: RFC 7162 */
/* Turns CONDSTORE on for the session (RFC 7162 §3.1: a CONDSTORE-enabling command). */
void imap_condstore_enable(struct imap_session *s);
/* mod-sequence-value (1*DIGIT, below 2^63). */
bool imap_parse_modseq(struct imap_parser *ps, uint64_t *modseq_r);
/* In a worker: the UIDs of KNOWN (ranges in any order, cut at uid_last, normally UIDNEXT-1)
 * expunged after SINCE, as sorted ranges (heap). Beyond the store's expunge history: every
 * known UID not in the mailbox now (RFC 7162 §3.2.5.2). */
enum store_error imap_vanished_since(struct store_account *acct, uint64_t mailbox_id,
				     uint64_t since, const struct store_uid_range *known,
				     size_t known_count, uint32_t uid_last,
				     struct store_uid_range **ranges_r, size_t *count_r);
/* "1:3,7" from ranges. */
void imap_append_ranges(struct buf *out, const struct store_uid_range *r, size_t n);

/* selected.c: the selected mailbox and the change feed */
/* Opens the view in a worker: subscribes, lists UIDs. */
struct imap_select_job;
void imap_selected_free(struct imap_session *s);
/* Reports queued changes: EXISTS, FETCH FLAGS, and EXPUNGE when allowed. */
void imap_flush_updates(struct imap_session *s, bool allow_expunge);
/* Removes uid from the view and writes "* n EXPUNGE". */
void imap_view_expunge(struct imap_session *s, uint32_t uid);
/* Removes uids (sorted) from the view: one "* VANISHED" after ENABLE QRESYNC (RFC 7162
 * §3.2.10), else an EXPUNGE per message. */
void imap_view_expunge_many(struct imap_session *s, const uint32_t *uids, size_t n);

struct imap_selected *imap_selected_new(struct imap_session *s, uint64_t id, const char *name,
					uint32_t uidvalidity, bool readonly);
/* Subscribe from a worker thread (the session's conn must be referenced by the caller). */
void imap_feed_subscribe(struct net_conn *conn, struct store_account *acct,
			 struct imap_selected *sel);
void imap_selected_discard(struct imap_selected **sel);
/* [imap] autoexpunge_days for Trash and Junk; in a worker. */
void imap_autoexpunge(struct store_account *acct, uint64_t mailbox_id, int64_t days);
void imap_pending_forget_flags(struct imap_session *s, uint32_t uid, uint32_t flags,
			       const char *keywords);
/* Before a command runs: when flag changes are waiting whose flags were not kept (past the
 * session's budget), reads and reports them from the store in batches, then calls then(s).
 * Returns false (and does nothing) when there is nothing to read. */
bool imap_updates_resync(struct imap_session *s, void (*then)(struct imap_session *s));
/* IDLE began: report what is waiting (as far as the client reads). */
void imap_updates_idle_start(struct imap_session *s);
/* Reports what is waiting now, as during IDLE (IDLE or a NOTIFY push). */
void imap_updates_push(struct imap_session *s);
/* Appended messages not yet reported: marked for the live searches (context.c). */
void imap_updates_touch_appended(struct imap_session *s);
/* net's drained callback when no FETCH is streaming. */
void imap_updates_drained(struct imap_session *s);
void imap_view_add(struct imap_selected *sel, uint32_t uid);
/* Before a FETCH that shows keywords: writes "* FLAGS" and PERMANENTFLAGS when one of them
 * (space-separated) is new to the client. */
void imap_keywords_announce(struct imap_session *s, const char *keywords);
/* Adds the keywords that the view does not list yet to out (" kw"), deduplicated. */
void imap_keywords_collect(struct buf *out, const char *keywords);

/* notify.c: NOTIFY (RFC 5465) */
imap_command_fn imap_cmd_notify;
void imap_notify_free(struct imap_session *s);
/* A command ended (or IDLE began): notifications held meanwhile go out at the next turn. */
void imap_notify_command_ended(struct imap_session *s);
void imap_notify_drained(struct imap_session *s);
/* The selected mailbox under NOTIFY: push its changes now (SELECTED, no command running);
 * say nothing of them during IDLE (no SELECTED filter); EXPUNGE may go out now (not
 * SELECTED-DELAYED); MessageNew wants FLAGS after EXISTS. */
bool imap_notify_push_selected(const struct imap_session *s);
/* The same for a change of this kind (APPEND, EXPUNGE or FLAGS): only the events asked for. */
bool imap_notify_push_selected_event(const struct imap_session *s, enum store_event_kind kind);
bool imap_notify_mutes_selected(const struct imap_session *s);
bool imap_notify_expunge_now(const struct imap_session *s);
bool imap_notify_new_wants_flags(const struct imap_session *s);
/* After "* n EXISTS": the FETCH (UID) of the view's messages from index first on. */
void imap_notify_new_messages(struct imap_session *s, size_t first);

/* Commands */
imap_command_fn imap_cmd_enable, imap_cmd_select, imap_cmd_examine, imap_cmd_close,
	imap_cmd_unselect, imap_cmd_check, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list, imap_cmd_lsub, imap_cmd_namespace,
	imap_cmd_status, imap_cmd_append, imap_cmd_idle, imap_cmd_expunge, imap_cmd_search,
	imap_cmd_fetch, imap_cmd_store, imap_cmd_copy, imap_cmd_move, imap_cmd_uid,
	imap_cmd_getquota, imap_cmd_getquotaroot, imap_cmd_setquota;
/* Same handlers with uid = true (UID FETCH, ...). */
void imap_fetch_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid);
void imap_store_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid);
void imap_search_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid);
void imap_copy_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid,
		   bool move);
void imap_expunge_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid);
/* IDLE input: a line while idling. */
void imap_idle_line(struct imap_session *s, const char *line, size_t len);
void imap_idle_end(struct imap_session *s);
/* APPEND streaming hooks for the assembler (cmd_append.c). Returns true when it took over. */
bool imap_append_literal(struct imap_session *s, uint64_t size, bool nonsync);
void imap_append_input(struct imap_session *s);
void imap_append_free(struct imap_session *s);
void imap_fetch_drained(struct imap_session *s);
/* preview.c: RFC 8970 preview text of a message (UTF-8, at most 200 characters) into out. */
void imap_preview(const struct mime_message *mm, struct buf *out);
void imap_fetch_free(struct imap_session *s);
/* Opens the account after a successful authentication, then answers the tag. */
void imap_account_open(struct imap_session *s, const char *tag);

#endif
