/* The server's counters for Prometheus: the one place that holds them. Every layer counts
 * with a one-line call; the HTTP layer formats a snapshot in the text exposition format 0.0.4.
 *
 * These are the only process-wide mutable values besides the per-module ones that keep their
 * own lock (log level, key caches): plain C11 atomics, incremented with relaxed ordering and
 * no lock, so that counting never makes a thread wait. A scrape reads each value once; values
 * of one scrape may come from slightly different instants, which Prometheus tolerates.
 * Histograms have fixed buckets (seconds), chosen for the latencies they measure. */
#ifndef ROOST_METRICS_H
#define ROOST_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h" /* struct buf; core.h includes this header at its end */

/* Protocols as Prometheus sees them: implicit-TLS listeners count with their clear-text
 * twin (imaps as imap), since the label says what is spoken, not how it is wrapped. */
enum metrics_protocol {
	METRICS_PROTO_SMTP,
	METRICS_PROTO_SUBMISSION,
	METRICS_PROTO_LMTP,
	METRICS_PROTO_IMAP,
	METRICS_PROTO_POP3,
	METRICS_PROTO_COUNT
};

/* Why a message (or a recipient) was refused. */
enum metrics_reject_reason {
	METRICS_REJECT_RECIPIENT, /* unknown local user */
	METRICS_REJECT_RELAY,	  /* relaying denied */
	METRICS_REJECT_SIZE,	  /* over [limits] message_size */
	METRICS_REJECT_GREYLIST,
	METRICS_REJECT_MAILAUTH, /* SPF/DKIM/DMARC policy */
	METRICS_REJECT_VIRUS,
	METRICS_REJECT_SPAM,
	METRICS_REJECT_OTHER,
	METRICS_REJECT_COUNT
};

enum metrics_spam_verdict { METRICS_SPAM_HAM, METRICS_SPAM_SPAM, METRICS_SPAM_JUNK,
			    METRICS_SPAM_COUNT };

enum metrics_histogram {
	METRICS_HIST_STORE_COMMIT, /* one group commit of the store (SQLite COMMIT and renames) */
	METRICS_HIST_FSYNC,	   /* one fsync of a message file */
	METRICS_HIST_PUSH,	   /* change-feed event posted -> the session's loop takes it */
	METRICS_HIST_COUNT
};

/* A [listen] key ("imaps") or a login's protocol ("smtp"); METRICS_PROTO_COUNT when the name
 * is not counted. */
enum metrics_protocol metrics_protocol_named(const char *name);

void metrics_connection_opened(const char *listen_name);
void metrics_connection_closed(const char *listen_name);
void metrics_login(const char *proto, bool ok);

void metrics_message_accepted(void);
void metrics_message_rejected(enum metrics_reject_reason reason);
/* A delivery check's name ("mailauth", "virus", "spam") as a reject reason. */
enum metrics_reject_reason metrics_reject_reason_of_check(const char *check_name);
void metrics_message_delivered(void);
void metrics_message_deferred(void);
void metrics_message_bounced(void);
void metrics_spam_verdict(enum metrics_spam_verdict verdict);

/* Worker-pool jobs waiting for a thread: +1 when queued, -1 when a thread takes one. */
void metrics_pool_queued(int delta);
/* The queue's size and the age of its oldest entry, refreshed before each scrape. */
void metrics_set_queue(uint64_t entries, uint64_t oldest_age_seconds);

/* Monotonic nanoseconds, for metrics_observe_since. */
uint64_t metrics_now_ns(void);
void metrics_observe_ns(enum metrics_histogram h, uint64_t ns);
void metrics_observe_since(enum metrics_histogram h, uint64_t start_ns);

/* Appends the exposition text (format 0.0.4) of every metric to out. */
void metrics_format(struct buf *out);

/* Sets every value back to zero (unit tests only: the server never resets). */
void metrics_reset_for_tests(void);

#endif
