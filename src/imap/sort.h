/* SORT and THREAD (RFC 5256, RFC 5957): the per-message keys taken from the cached ENVELOPE
 * (sort_keys.c), the threading algorithms (thread.c), and the part of SEARCH they share
 * (cmd_search.c). Private to imap/. */
#ifndef ROOST_IMAP_SORT_H
#define ROOST_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"
#include "../store/store.h"

struct imap_session;
struct imap_parser;
struct net_conn;
struct store_account;
struct store_msg;

/* ---- sort_keys.c ---- */

/* RFC 5256 §2.1 base subject of a subject already RFC 2047-decoded to UTF-8: whitespace
 * runs become one space, "(fwd)" trailers, "Re:"/"Fw:"/"Fwd:" leaders, "[blob]" prefixes
 * and "[fwd: ...]" wrappers go. Appends the case-folded result (i;unicode-casemap) to out.
 * Returns true when something marking a reply or forward was removed (RFC 5256 §2.1,
 * used by REFERENCES step 5). */
bool imap_base_subject(const char *subject, size_t len, struct buf *out);

/* What SORT and THREAD compare, for one message. Strings are heap, never NULL, folded. */
struct imap_sort_msg {
	uint32_t uid;
	uint32_t msn;
	int64_t arrival;  /* INTERNALDATE */
	int64_t sent;     /* Date: in UTC, the internal date when missing or invalid */
	uint64_t size;
	char *subject;    /* base subject (keys never NULL; "" when not computed) */
	bool subject_is_reply;
	char *from, *to, *cc;              /* addr-mailbox of the first address */
	char *display_from, *display_to;   /* RFC 5957: display name, else addr-spec */
	char *message_id;                  /* without <>, NULL when none */
	char **refs;                       /* THREAD=REFERENCES parents, oldest first */
	size_t ref_count;
	bool sent_from_date;               /* sent came from a valid Date field */
	bool taken;    /* keys copied into an arena (imap_sort_keys_take) */
	bool borrowed; /* strings and refs point into that arena */
	size_t ref_first; /* while taken: where its refs start in the arena's refs */
};

/* The keys a command compares; the others stay empty, which spares decoding and folding. */
enum {
	IMAP_SORT_NEED_DATE = 1u << 0,
	IMAP_SORT_NEED_SUBJECT = 1u << 1,
	IMAP_SORT_NEED_FROM = 1u << 2,
	IMAP_SORT_NEED_TO = 1u << 3,
	IMAP_SORT_NEED_CC = 1u << 4,
	IMAP_SORT_NEED_DISPLAYFROM = 1u << 5,
	IMAP_SORT_NEED_DISPLAYTO = 1u << 6,
	IMAP_SORT_NEED_IDS = 1u << 7, /* message_id and In-Reply-To */
	IMAP_SORT_NEED_ALL = 0xff,
};

/* Fills the NEEDS keys of m from an ENVELOPE string (NULL: every key empty, sent = arrival). */
void imap_sort_msg_from_envelope(struct imap_sort_msg *m, const char *envelope, unsigned needs);
/* The message-ids of the References field in the message's header block replace the
 * In-Reply-To id the envelope gave (RFC 5256 §2.2 step 1). */
void imap_sort_msg_refs(struct imap_sort_msg *m, const uint8_t *data, size_t len);
void imap_sort_msg_clear(struct imap_sort_msg *m);

/* The keys kept in the index (store_sort_keys_list): every key of m, derived with
 * IMAP_SORT_NEED_ALL, as bytes. refs_known: m's refs came from its References field (else
 * they are the envelope's In-Reply-To only, and THREAD=REFERENCES derives them again). */
void imap_sort_keys_encode(const struct imap_sort_msg *m, bool refs_known, struct buf *out);
/* How many refs kept keys hold; false when they are not in this version's format. */
bool imap_sort_keys_check(const uint8_t *keys, size_t len, size_t *ref_count_r,
			  bool *refs_known_r);
/* Where the keys of many messages are copied (only those a command compares), so that a
 * SORT of 100,000 messages makes a few allocations, not one per key. */
struct imap_sort_keys_arena {
	struct buf bytes;   /* the strings, each with its NUL; offset 0 is "" */
	size_t *refs;       /* offsets into bytes of every message's refs */
	size_t ref_count, ref_cap;
	char **ref_ptrs;    /* made by imap_sort_keys_arena_finish */
};
void imap_sort_keys_arena_init(struct imap_sort_keys_arena *a);
void imap_sort_keys_arena_free(struct imap_sort_keys_arena *a);
/* Copies the NEEDS keys of checked keys into the arena for m (not uid, msn, arrival and size,
 * which m has already). Until imap_sort_keys_arena_finish, m's strings hold arena offsets. */
void imap_sort_keys_take(struct imap_sort_msg *m, const uint8_t *keys, unsigned needs,
			 struct imap_sort_keys_arena *a);
/* The arena grows no more: the taken messages among ms get pointers into it (m->borrowed). */
void imap_sort_keys_arena_finish(struct imap_sort_keys_arena *a, struct imap_sort_msg *ms,
				 size_t n);

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

#define IMAP_SORT_CRITERIA_MAX 16

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;
};

/* Orders msgs (pointers) by the criteria, the sequence number last (RFC 5256 §3). */
void imap_sort_msgs(struct imap_sort_msg **msgs, size_t n, const struct imap_sort_criterion *crit,
		    size_t crit_count);

/* A stable merge sort with a context, for the sorts of this folder. */
typedef int imap_cmp_fn(const void *a, const void *b, void *ctx);
void imap_merge_sort(void *base, size_t n, size_t size, imap_cmp_fn *cmp, void *ctx);

/* ---- thread.c ---- */

/* RFC 5256 §3 THREAD results, numbers taken from msn (or uid when by_uid), appended to out as
 * the thread-list that follows "* THREAD". msgs is in any order. */
void imap_thread_orderedsubject(struct imap_sort_msg **msgs, size_t n, bool by_uid,
				struct buf *out);
void imap_thread_references(struct imap_sort_msg **msgs, size_t n, bool by_uid, struct buf *out);

/* ---- search_return.c: RETURN options of SEARCH and SORT ---- */

enum {
	IMAP_RET_MIN = 1u << 0,
	IMAP_RET_MAX = 1u << 1,
	IMAP_RET_ALL = 1u << 2,
	IMAP_RET_COUNT = 1u << 3,
	IMAP_RET_SAVE = 1u << 4,    /* RFC 5182 */
	IMAP_RET_UPDATE = 1u << 5,  /* RFC 5267 §4.3: keep the search alive */
	IMAP_RET_CONTEXT = 1u << 6, /* RFC 5267 §4.2: a hint, accepted and ignored */
	IMAP_RET_PARTIAL = 1u << 7, /* RFC 5267 §4.4 */
};

/* A PARTIAL range: 1-based positions, negative ones counted from the end (-1 the last);
 * first is the end nearer the edge counted from (1:500, -1:-100). */
struct imap_partial {
	int64_t first, last;
};

struct imap_return_opts {
	unsigned ret; /* IMAP_RET_*; ALL when no result option was given */
	struct imap_partial partial;
};

/* "(" [option *(SP option)] ")" after "RETURN SP", taking only the options in allowed.
 * False with ps->error (when known) on bad syntax or a combination refused. */
bool imap_parse_return_opts(struct imap_parser *ps, unsigned allowed,
			    struct imap_return_opts *opts);
bool imap_parse_partial_range(struct imap_parser *ps, struct imap_partial *range_r);
/* The entries [*from_r, *to_r) of a result of n that the range selects (empty: from == to). */
void imap_partial_window(const struct imap_partial *p, size_t n, size_t *from_r, size_t *to_r);
/* " PARTIAL (range set)" for the result nums (n of them), NIL when the window is empty;
 * ascending results are written with ranges, sorted ones one number at a time. */
void imap_append_partial(struct buf *out, const struct imap_partial *p, const uint32_t *nums,
			 size_t n, bool ascending);

/* ---- context.c: searches kept alive (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT) ---- */

struct imap_search_keys;

/* What an UPDATE search leaves behind once it has answered. */
struct imap_context_spec {
	const char *tag;
	bool uid;	/* numbers are UIDs, else sequence numbers */
	bool sorted;	/* SORT: positions count, the result keeps the sort order */
	unsigned ret;	/* IMAP_RET_* the client asked for */
	struct imap_search_keys *keys; /* taken by imap_context_add */
	const struct imap_sort_criterion *crit;
	size_t crit_count;
	const uint32_t *uids; /* the result as UIDs: ascending, or in sort order */
	size_t count;
};

/* Before an UPDATE search is offloaded: changes from now on are kept for it. Each call is
 * paired with one imap_context_add or imap_context_abandon. */
void imap_context_prepare(struct imap_session *s);
/* The search answered (its ESEARCH is written): keeps it alive, or, past the bounds or
 * with PARTIAL, writes "* OK [NOUPDATE tag]" and frees spec->keys. */
void imap_context_add(struct imap_session *s, struct imap_context_spec *spec);
void imap_context_abandon(struct imap_session *s);
/* Loop: messages appended or whose flags changed, as the change feed tells. */
void imap_context_touch(struct imap_session *s, const uint32_t *uids, size_t n);
/* Loop, before the view loses uids: REMOVEFROM for the live results holding them. */
void imap_context_expunge(struct imap_session *s, const uint32_t *uids, size_t n);
/* When changes wait to be checked against live searches: reports EXISTS and flags, starts
 * the check in the pool and returns true; then(s) runs once ADDTO/REMOVEFROM are written
 * (NULL: no command waits, as during IDLE). False when there is nothing to do. */
bool imap_context_refresh(struct imap_session *s, void (*then)(struct imap_session *s));
/* The selection ends: every live search ends with it. */
void imap_contexts_free(struct imap_session *s);
void imap_cmd_cancelupdate(struct imap_session *s, const char *tag, struct imap_parser *ps);

/* ---- sort_kept.c: answers kept between commands ---- */

/* What a kept answer was computed for: the index version read before its inputs, the
 * mailbox, and the command (SORT criteria, or a THREAD algorithm and its numbering). */
struct imap_kept_key {
	struct store_index_version version;
	uint64_t mailbox_id;
	bool thread;	 /* THREAD: text; SORT: order */
	bool by_uid;	 /* THREAD: numbered by UID */
	int algorithm;	 /* THREAD: which one */
	struct imap_sort_criterion crit[IMAP_SORT_CRITERIA_MAX]; /* SORT */
	size_t crit_count;
};

/* msgs (n, ascending UIDs) is the mailbox as listed now. A SORT's kept order of all of them
 * (indices into msgs, heap, into *order_r) or a THREAD's kept thread-list (appended to
 * text_r), true when one is kept for key and exactly these messages. Safe on any thread. */
bool imap_kept_find(const struct imap_kept_key *key, const struct store_msg *msgs, size_t n,
		    uint32_t **order_r, struct buf *text_r);
/* Keeps the order of all of msgs (order: n indices) or a thread-list of all of them (order
 * NULL, text), within the memory bound of sort_kept.c; copies what it keeps. */
void imap_kept_put(const struct imap_kept_key *key, const struct store_msg *msgs, size_t n,
		   const uint32_t *order, const uint8_t *text, size_t text_len);

/* ---- cmd_sort.c ---- */

void imap_sort_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid);
void imap_thread_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid);
void imap_cmd_sort(struct imap_session *s, const char *tag, struct imap_parser *ps);
void imap_cmd_thread(struct imap_session *s, const char *tag, struct imap_parser *ps);

/* ---- cmd_search.c, shared with SORT and THREAD ---- */

struct imap_search_keys;

/* search-key *(SP search-key) up to the end of the command. NULL on a syntax error, with
 * ps->error set. */
struct imap_search_keys *imap_search_keys_parse(struct imap_session *s, struct imap_parser *ps);
void imap_search_keys_free(struct imap_search_keys **keys);

enum imap_search_outcome {
	IMAP_SEARCH_DONE,
	IMAP_SEARCH_OVER_BUDGET,
	IMAP_SEARCH_CANCELLED,
};

/* In a worker: match_r[i] tells whether msgs[i] matches, within the work budget. */
enum imap_search_outcome imap_search_match(struct net_conn *conn, struct store_account *acct,
					   uint64_t mailbox_id, const struct imap_search_keys *keys,
					   uint64_t budget, const struct store_msg *msgs, size_t n,
					   bool *match_r);
/* In a worker: the UIDs of view (ascending) that match keys, in the order of crit (RFC 5256
 * SORT, the sequence number last), as a heap array. */
enum imap_search_outcome imap_sort_uids(struct net_conn *conn, struct store_account *acct,
					uint64_t mailbox_id, const struct imap_search_keys *keys,
					const struct imap_sort_criterion *crit, size_t crit_count,
					const uint32_t *view, size_t view_count, uint64_t budget,
					uint32_t **uids_r, size_t *count_r);

#endif
