/* Checks that look at a whole received message before it is stored: virus scanning, sender
 * authentication (SPF, DKIM, DMARC, ARC), spam scoring. Each check is a function registered
 * on the delivery (cli/ wires them at start-up, in the order they should run); the delivery
 * transaction runs every registered check when the data is complete, inside
 * delivery_txn_finish, that is on the worker pool and never on an event loop.
 *
 * When at least one check is registered, the transaction spools the data to an unlinked
 * temporary file instead of writing straight into the mailboxes and the queue; at the end it
 * maps the spool, runs the checks, and only then writes the message (the verdict's header
 * fields first, the spool minus the dropped ranges after) into the store and the queue. With
 * no check registered nothing changes: one write, no spool.
 *
 * A check must not keep pointers into the input after it returns, must finish within its own
 * time budget (DNS, clamd, rspamd), and turns every failure of its own into a verdict
 * (tempfail, or a header saying the check could not run), never into a crash. */
#ifndef ROOST_DELIVERY_CHECK_H
#define ROOST_DELIVERY_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

struct delivery;
struct delivery_rcpt;

/* What a check sees. Every pointer is valid only during the call. */
struct delivery_check_input {
	const uint8_t *msg; /* the message as the client sent it (CRLF, un-dot-stuffed), */
	size_t len;	    /* without the Return-Path: and Received: fields we add */
	const char *sender;	/* MAIL FROM; "" for the null sender */
	const char *helo;	/* the EHLO/HELO/LHLO argument */
	const char *client_ip;	/* the peer's address as text, IPv4 or IPv6 */
	const char *auth_user;	/* the authenticated submitter, NULL on port 25 / LMTP */
	const struct delivery_rcpt *rcpts;
	size_t rcpt_count;
	/* The distinct local mailboxes (account addresses) the message goes to; a check that
	 * decides per account (the spam threshold) sets verdict->junk[i] for mailboxes[i]. */
	const char *const *mailboxes;
	size_t mailbox_count;
};

enum delivery_check_action {
	DELIVERY_CHECK_ACCEPT = 0,
	DELIVERY_CHECK_TEMPFAIL, /* 4xx: the client should retry */
	DELIVERY_CHECK_REJECT,	 /* 5xx: the message is refused for every recipient */
};

/* A byte range of the input that is left out of the stored message (a forged
 * Authentication-Results field, for instance). Ranges must cover whole header fields. */
struct delivery_range {
	size_t offset;
	size_t len;
};

/* Results of the sender checks, as RFC 8601 names them; NOT_RUN when no check set one. */
enum delivery_auth_result {
	DELIVERY_AUTH_NOT_RUN = 0,
	DELIVERY_AUTH_NONE,
	DELIVERY_AUTH_PASS,
	DELIVERY_AUTH_FAIL,
	DELIVERY_AUTH_SOFTFAIL,
	DELIVERY_AUTH_NEUTRAL,
	DELIVERY_AUTH_POLICY,
	DELIVERY_AUTH_TEMPERROR,
	DELIVERY_AUTH_PERMERROR,
};

enum delivery_virus_result {
	DELIVERY_VIRUS_NOT_RUN = 0,
	DELIVERY_VIRUS_CLEAN,
	DELIVERY_VIRUS_INFECTED,
	DELIVERY_VIRUS_SCAN_FAILED,
};

#define DELIVERY_VERDICT_MAX_DROPS 32

/* The combined outcome of every check so far; each check adds to it. The transaction owns it
 * and clears it. */
struct delivery_verdict {
	enum delivery_check_action action; /* the strongest action any check asked for */
	char reply[512];    /* for TEMPFAIL/REJECT: the full reply, e.g. "554 5.7.0 ..." */
	char reason[256];   /* for the log: which check and why */
	struct buf headers; /* fields to prepend, each CRLF-terminated, in order */
	bool *junk;	    /* mailbox_count entries: file that account's copy into \Junk */
	struct delivery_range drops[DELIVERY_VERDICT_MAX_DROPS];
	size_t drop_count;
	/* Facts later checks may use (the spam score weighs the authentication results). */
	enum delivery_auth_result spf, dkim, dmarc, arc;
	enum delivery_virus_result virus;
	char virus_name[128];
	double spam_score; /* NAN when no spam check ran */
	/* Accepted from the client but stored nowhere, because a check kept the message itself
	 * (the virus quarantine); the client gets the ordinary 250. */
	bool discard;
};

/* Raises the verdict's action to at least `action` (REJECT beats TEMPFAIL beats ACCEPT); the
 * first check that sets the strongest action writes the reply and reason. */
void delivery_verdict_refuse(struct delivery_verdict *v, enum delivery_check_action action,
			     const char *reply, const char *reason);
/* Adds one header field to prepend (name and value, CRLF added; long values are the caller's
 * to fold). */
void delivery_verdict_add_header(struct delivery_verdict *v, const char *field);
/* Leaves a range of the input out of the stored message; false when the table is full. */
bool delivery_verdict_drop(struct delivery_verdict *v, size_t offset, size_t len);

typedef void (*delivery_check_fn)(void *arg, const struct delivery_check_input *in,
				  struct delivery_verdict *verdict);

/* Registers a check; checks run in registration order. name appears in the log. arg is
 * owned by the caller and must outlive the delivery. Call before any transaction starts. */
void delivery_add_check(struct delivery *d, const char *name, delivery_check_fn fn, void *arg);

#endif
