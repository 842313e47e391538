/* The outbound queue's durable spool: a message and its envelope (sender, recipients with
 * their DSN parameters and per-recipient state) are written to DATA_DIR/queue/ and fsync'd
 * before the SMTP server may answer 250. The delivery side (scheduler, MX lookup, SMTP client,
 * bounces) reads the same spool.
 *
 * On disk, one file per message in queue/active/ (written in queue/tmp/, fsync'd, renamed,
 * directory fsync'd — so a file in active/ is always complete):
 *     ROOSTQ 1\n
 *     id <id>\n  arrived <unix seconds>\n  sender <address or empty>\n
 *     [envid <xtext>]\n [ret FULL|HDRS]\n [auth <user>]\n
 *     rcpt <state> <address> notify=<..> orcpt=<..>\n   (one per recipient)
 *     data <octets>\n
 *     <the message, CRLF line ends>
 * Recipient states: "pending", "sent", "failed". Only the header part is rewritten when states
 * change (new file, same tmp -> rename discipline). */
#ifndef ROOST_QUEUE_H
#define ROOST_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../core/core.h"

struct queue;
struct queue_entry_writer;

struct queue_recipient {
	const char *address;
	const char *notify; /* DSN NOTIFY value as given, or NULL */
	const char *orcpt;  /* DSN ORCPT value as given, or NULL */
};

struct queue_envelope {
	const char *sender; /* "" for the null sender */
	const char *envid;  /* DSN ENVID, or NULL */
	const char *ret;    /* DSN RET (FULL/HDRS), or NULL */
	const char *auth_user; /* authenticated submitter, or NULL */
	const struct queue_recipient *rcpts;
	size_t rcpt_count;
};

/* Opens (creating) DATA_DIR/queue; removes leftovers of interrupted writes in tmp/. */
struct queue *queue_open(const char *data_dir, char *err, size_t errlen);
void queue_close(struct queue **q);

/* Starts spooling one message. The writer is owned by one thread at a time. */
struct queue_entry_writer *queue_entry_begin(struct queue *q, const struct queue_envelope *env,
					     char *err, size_t errlen);
int queue_entry_write(struct queue_entry_writer *w, const void *data, size_t len, char *err,
		      size_t errlen);
/* fsync, rename into active/, fsync the directory. On success id_r (>= 32 bytes) gets the
 * queue id and the writer is freed; on failure nothing is left behind. Blocking. */
int queue_entry_commit(struct queue_entry_writer **w, char *id_r, char *err, size_t errlen);
void queue_entry_abort(struct queue_entry_writer **w);

struct queue_entry_info {
	const char *id;
	int64_t arrived;
	const char *sender;
	size_t rcpt_total;
	size_t rcpt_pending;
	const char *const *pending; /* addresses still pending */
	uint64_t size;
	const char *last_error;	    /* the last reply for a pending recipient, or NULL */
	int64_t next_attempt;	    /* unix milliseconds; 0 = due now */
	unsigned attempts;
};

/* Calls cb for every message in the queue, oldest first; returns the count or -1. */
int queue_list(struct queue *q, void (*cb)(const struct queue_entry_info *info, void *ctx),
	       void *ctx, char *err, size_t errlen);
/* Removes one message from the queue; -1 when there is no such id. */
int queue_delete(struct queue *q, const char *id, char *err, size_t errlen);

/* Makes every message (domain NULL) or every message with a pending recipient in domain due
 * now. Works with or without a running runner (it edits the state the runner reads), so
 * `roost queue flush` and ETRN share it. Returns the number of messages made due, or -1. */
int queue_flush(struct queue *q, const char *domain, char *err, size_t errlen);

/* ---- delivery: the runner ----
 * A scheduler thread finds messages that are due and hands them to delivery threads; each
 * delivery resolves the recipients' domains (MX, RFC 7505 null MX), talks SMTP to the best
 * reachable server (opportunistic STARTTLS, PIPELINING, SIZE, 8BITMIME, DSN), records each
 * recipient's fate durably in queue/state/ID, retries with exponential backoff, and sends RFC
 * 3464 delivery status notifications for failures and delays (never for a null sender). */

struct queue_runner_config {
	const char *hostname;	 /* EHLO name, Reporting-MTA, bounce sender domain */
	const char *resolvers;	 /* [dns] resolvers, "" = system */
	unsigned smtp_port;	 /* 25 (tests use others) */
	const char *smarthost;	 /* "host:port" or "" */
	const char *relay_user;	 /* AUTH PLAIN for the smarthost, or "" */
	const char *relay_password;
	enum relay_tls relay_tls; /* what the smarthost connection must have */
	const char *relay_ca_file; /* CAs for RELAY_TLS_VERIFY, "" = the system's */
	int64_t retry_first;	 /* seconds */
	int64_t retry_max;
	int64_t give_up;
	int64_t warn_after;
	int64_t time_scale;	 /* every delay is divided by this */
	unsigned threads;
	const char *data_dir;	 /* DKIM keys: DATA_DIR/dkim/DOMAIN/ */
	/* ARC-seal forwarded mail ([mailauth] verify): only when our check runs is an
	 * Authentication-Results field with our name one we wrote, forgeries dropped */
	bool arc_seal;
};

/* Hooks the runner calls up through (cli wires them; the queue includes no higher layer):
 * local_domain tells whether a domain is ours; deliver_local stores a report for a local
 * sender (0 = stored). Mail our users submitted is DKIM-signed (RFC 6376, RFC 8463) for the
 * sender's domain when that domain has keys. */
struct queue_hooks {
	void *ctx;
	bool (*local_domain)(void *ctx, const char *domain);
	int (*deliver_local)(void *ctx, const char *recipient, const uint8_t *msg, size_t len);
};

struct queue_runner;
struct queue_runner *queue_runner_start(struct queue *q, const struct queue_runner_config *cfg,
					const struct queue_hooks *hooks);
/* Asks for a scan now (after queue_flush). Thread-safe. */
void queue_runner_wake(struct queue_runner *r);
/* Waits for deliveries in progress, then stops the threads. */
void queue_runner_stop(struct queue_runner **r);

#endif
