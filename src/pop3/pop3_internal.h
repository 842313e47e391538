/* Private to src/pop3: the command parser, the maildrop snapshot, the dot-stuffing writer and
 * the per-account lock table that session.c puts together. Everything here except the maildrop
 * jobs is pure code over bytes, so unit tests and the fuzz target can drive it directly. */
#ifndef ROOST_POP3_INTERNAL_H
#define ROOST_POP3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../store/store.h"

/* Limits of the POP3 server (they live here rather than in core/limits.h because only this
 * folder uses them):
 * - POP3_COMMAND_MAX: RFC 2449 §4 caps a command line at 255 octets; PASS may use the whole
 *   LIMIT_POP3_LINE that is read, AUTH lines and continuations LIMIT_SASL_RESPONSE.
 * - POP3_MAILDROP_MAX: messages one session snapshots (16 bytes each: 16 MiB at the ceiling);
 *   a larger mailbox shows its oldest messages, the rest appear once those are gone.
 * - POP3_STREAM_CHUNK: bytes of a message handed to the connection per step.
 * - POP3_OUTPUT_HIGH / POP3_OUTPUT_LOW: RETR/TOP stop queueing above HIGH pending output bytes
 *   and continue when the queue has drained to LOW, so a slow reader costs at most ~HIGH. */
#define POP3_COMMAND_MAX 255
#define POP3_MAILDROP_MAX 1000000u
#define POP3_STREAM_CHUNK (64 * 1024)
#define POP3_OUTPUT_HIGH (256 * 1024)
#define POP3_OUTPUT_LOW (64 * 1024)
/* - POP3_AHEAD_MAX / POP3_AHEAD_BYTES: a RETR job opens up to this many of the following
 *   messages, stopping once their sizes add up to the byte budget (readahead.c). */
#define POP3_AHEAD_MAX 16
#define POP3_AHEAD_BYTES (256 * 1024)

/* The keyword that [pop3] delete_action = keep sets on DELE'd messages; later POP3 sessions
 * leave such messages out of the maildrop, IMAP still shows them. */
#define POP3_KEEP_KEYWORD "$POP3Deleted"

/* ---------------- command.c: command line parsing ---------------- */

enum pop3_verb {
	POP3_CMD_UNKNOWN,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_APOP,
	POP3_CMD_AUTH,
	POP3_CMD_STLS,
	POP3_CMD_CAPA,
	POP3_CMD_QUIT,
	POP3_CMD_NOOP,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
};

/* Splits a command line (no CRLF) into its keyword and the rest. RFC 1939 §3: keywords are
 * case-insensitive, separated from arguments by a single space. *arg_r points into line. */
enum pop3_verb pop3_command_parse(const char *line, size_t len, const char **arg_r);

/* Arguments of the TRANSACTION commands (RFC 1939 §5). Returns -1 on a syntax error.
 * pop3_parse_msgnum: "n" (required) or "" / "n" when optional (*present_r tells).
 * pop3_parse_top: "n m", m the number of body lines (capped at UINT64_MAX digits-wise by
 * refusing more than 19 digits). */
int pop3_parse_msgnum(const char *arg, bool optional, uint32_t *n_r, bool *present_r);
int pop3_parse_top(const char *arg, uint32_t *n_r, uint64_t *lines_r);

/* ---------------- stream.c: dot-stuffing and TOP ---------------- */

typedef void pop3_emit_fn(void *ctx, const void *data, size_t len);

/* Writes data through emit with RFC 1939 §3 byte-stuffing: every line that starts with '.'
 * gets one more '.'. *line_start carries the state across calls (true at the message start). */
void pop3_stuff(const uint8_t *data, size_t len, bool *line_start, pop3_emit_fn *emit, void *ctx);

/* RFC 1939 §7 TOP: the number of leading bytes of the message that hold its header, the blank
 * line after it, and at most `lines` lines of the body. */
size_t pop3_top_length(const uint8_t *data, size_t len, uint64_t lines);

/* ---------------- maildrop.c: the snapshot a session works on ---------------- */

enum { POP3_BOX_INBOX = 0, POP3_BOX_JUNK = 1, POP3_BOX_COUNT = 2 };

struct pop3_msg {
	uint64_t size;
	uint32_t uid;
	uint8_t box;  /* POP3_BOX_* */
	bool deleted; /* DELE'd in this session (RSET clears) */
};

struct pop3_maildrop {
	struct store_account *acct;
	struct account_settings settings; /* the server's, with the account's overrides */
	uint64_t box_id[POP3_BOX_COUNT]; /* 0 = not part of the maildrop */
	uint32_t uidvalidity[POP3_BOX_COUNT];
	struct pop3_msg *msgs;
	uint32_t count;
	uint32_t deleted_count;
	uint64_t deleted_size;
	uint64_t total_size;
};

/* Adds a mailbox's messages (UID order) to the snapshot, leaving out those that carry
 * POP3_KEEP_KEYWORD and stopping at POP3_MAILDROP_MAX. */
void pop3_maildrop_add(struct pop3_maildrop *md, unsigned box, const struct store_msg *msgs,
		       size_t count);

/* Message n (1-based) when it exists and is not marked deleted, else NULL. */
const struct pop3_msg *pop3_maildrop_get(const struct pop3_maildrop *md, uint32_t n);
/* DELE and RSET bookkeeping: -1 when n does not exist or is already deleted. */
int pop3_maildrop_delete(struct pop3_maildrop *md, uint32_t n);
void pop3_maildrop_reset(struct pop3_maildrop *md);

/* RFC 1939 §7 UIDL: "%08X%08X" of UID and UIDVALIDITY (Dovecot's default form, so clients
 * moving from Dovecot keep their state when the UIDs come along); Junk messages carry a "J"
 * prefix so that they can never collide with INBOX's. out must hold 24 bytes. */
void pop3_uidl(const struct pop3_maildrop *md, const struct pop3_msg *m, char *out,
	       size_t outlen);

/* Worker-pool side (these call the store and may block). */
/* Opens the account and snapshots INBOX (and Junk with include_junk), under the account's
 * settings (kept in the maildrop for the commit). */
enum store_error pop3_maildrop_open(struct store *store, const char *user,
				    const struct account_settings *settings,
				    struct pop3_maildrop **md_r);
/* RFC 1939 §6 UPDATE: applies delete_action to every message marked deleted. */
enum store_error pop3_maildrop_commit(struct pop3_maildrop *md);
/* Frees the snapshot and drops the account reference. Accepts NULL. */
void pop3_maildrop_free(struct pop3_maildrop **md);

/* ---------------- lock.c: [pop3] lock = refuse ---------------- */

/* ---------------- readahead.c: messages opened before the client asks ---------------- */

/* Clients retrieve a maildrop in order, so a RETR job also opens the messages after the one
 * asked for; the RETRs that follow are answered from memory without a trip to the worker
 * pool. The set is only valid while store_account_removals() still returns the value read
 * before the opens: any removal in the account since then throws it away, and the message is
 * opened afresh (which answers "-ERR" if it is gone). */
struct pop3_readahead {
	uint32_t n[POP3_AHEAD_MAX];
	struct store_message *msg[POP3_AHEAD_MAX];
	unsigned count;
	uint64_t removals;
};

/* Messages that were sent or thrown away, closed by the next store job so that unmapping a
 * large one never happens on an event loop. Everything in it came out of one job's opens, so
 * it never holds more than POP3_AHEAD_MAX + 1. */
struct pop3_spent {
	struct store_message *msg[POP3_AHEAD_MAX + 1];
	unsigned count;
};

/* Moves *msg (may be NULL) into the spent list. */
void pop3_spent_add(struct pop3_spent *sp, struct store_message **msg);
/* Closes every spent message. Pool threads, or the end of the connection. */
void pop3_spent_close(struct pop3_spent *sp);

/* Job side: opens the messages of the maildrop after `after` that are not marked deleted, in
 * order, within POP3_AHEAD_MAX and POP3_AHEAD_BYTES; stops at the first that cannot be opened.
 * `removals` is store_account_removals() read before the first open of the job. */
void pop3_readahead_fill(struct pop3_readahead *ra, const struct pop3_maildrop *md,
			 uint32_t after, uint64_t removals);
/* Loop side: message n if the set holds it and nothing left the account since it was
 * filled (entries before it go to the spent list); otherwise NULL, and the whole set goes to
 * the spent list. The caller owns the message returned. */
struct store_message *pop3_readahead_take(struct pop3_readahead *ra, uint32_t n,
					  struct store_account *acct, struct pop3_spent *sp);
void pop3_readahead_drop(struct pop3_readahead *ra, struct pop3_spent *sp);

/* Process-wide table of accounts with an open POP3 maildrop. Thread-safe. */
bool pop3_lock_acquire(const char *user);
void pop3_lock_release(const char *user);

#endif
