/* Where a received message goes: recipient resolution (local users, aliases, plus-addressing,
 * catch-alls; relay policy for remote domains) and the delivery transaction that writes one
 * message to every local mailbox through the store (one save shared by all, so its fsyncs are
 * shared too) and to the outbound queue for remote recipients. The checks that may refuse,
 * mark or file a message before it is stored register through check.h.
 *
 * Threading: delivery_resolve, delivery_txn_begin and delivery_txn_finish block (SQLite,
 * fsync): call them off the event loop. delivery_txn_write does plain buffered writes. */
#ifndef ROOST_DELIVERY_H
#define ROOST_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../auth/auth.h"
#include "../config/config.h"
#include "../queue/queue.h"
#include "../store/store.h"
#include "check.h"

struct delivery;

struct delivery *delivery_new(const struct config *cfg, struct auth_directory *dir,
			      struct store *store, struct queue *queue);
void delivery_free(struct delivery **d);

enum delivery_rcpt_status {
	DELIVERY_RCPT_OK,
	DELIVERY_RCPT_UNKNOWN,	    /* a local domain, but no such user or alias */
	DELIVERY_RCPT_RELAY_DENIED, /* a remote domain and relaying is not allowed */
	DELIVERY_RCPT_TEMPFAIL,	    /* the directory could not be read */
	DELIVERY_RCPT_UNSUPPORTED,  /* a remote address the queue cannot carry (white space) */
	DELIVERY_RCPT_OVER_QUOTA,   /* every mailbox it leads to is full already (RFC 9208) */
};

/* One accepted envelope recipient and what it resolved to. */
struct delivery_rcpt {
	char *address; /* as the client gave it (after source-route removal) */
	char *notify;  /* DSN parameters, NULL when absent */
	char *orcpt;
	char **local; /* canonical local mailbox addresses */
	size_t local_count;
	char **remote; /* remote addresses (the recipient itself, or remote alias targets) */
	size_t remote_count;
	/* remote holds alias targets of a local address: from a peer that did not authenticate
	 * their copy leaves with the SRS sender. False for a relayed recipient and for the
	 * original sender an SRS address decoded to. */
	bool forwarded;
};
void delivery_rcpt_clear(struct delivery_rcpt *r);

/* Turns SRS on when [srs] enabled says so: reads DATA_DIR/srs.key, creating it on first use.
 * -1 with a reason in err when the secret cannot be read or made. Call before any session. */
int delivery_srs_setup(struct delivery *d, char *err, size_t errlen);

/* Is the domain (case-insensitive, trailing dot allowed) the SRS domain, with SRS on? Mail
 * there is ours to decode: the queue's reports to an SRS sender are handed to
 * delivery_store_local like those to a local one, never sent to our own MX. */
bool delivery_srs_domain(struct delivery *d, const char *domain);

/* Is the domain (case-insensitive, trailing dot allowed) one of ours? */
bool delivery_domain_is_local(struct delivery *d, const char *domain);

/* Resolves address into out (which the caller clears). relay_allowed: may remote domains be
 * accepted (authenticated submission)? An SRS address at the SRS domain resolves to the
 * address it decodes to when its hash and age verify (whatever relay_allowed says: a bounce
 * to a forwarded message must reach its sender), and is UNKNOWN otherwise. */
enum delivery_rcpt_status delivery_resolve(struct delivery *d, const char *address,
					   bool relay_allowed, struct delivery_rcpt *out);

/* Does the authenticated user own this address (itself, a plus-address of it, or an alias
 * that resolves to it)? Used for the submission sender policy. Blocking. */
bool delivery_address_owned_by(struct delivery *d, const char *address, const char *user);

/* ---- the transaction ---- */

struct delivery_envelope {
	const char *sender;	/* "" for the null sender */
	const char *auth_user;	/* NULL when not authenticated */
	const char *envid;	/* DSN */
	const char *ret;	/* DSN */
	const char *received;	/* the Received: header field to prepend, CRLF-terminated */
	const struct delivery_rcpt *rcpts;
	size_t rcpt_count;
	const char *helo;      /* the EHLO/HELO/LHLO argument, for the checks; NULL = "" */
	const char *client_ip; /* the peer's address as text, for the checks; NULL = "" */
};

struct delivery_txn;

/* Why a check refused the whole message (delivery_txn_finish's refusal_r). action is
 * DELIVERY_CHECK_ACCEPT when nothing refused it; otherwise TEMPFAIL (4xx) or REJECT (5xx),
 * reply is the complete reply line for the client ("554 5.7.0 ...") and reason the text for
 * the log (which check and why). */
struct delivery_refusal {
	enum delivery_check_action action;
	char reply[512];
	char reason[256];
};

/* Per recipient outcome of a finished transaction, in rcpts order. */
struct delivery_outcome {
	bool ok;
	bool temporary; /* when !ok: a temporary failure (disk, quota, I/O) */
	const char *text;
	char queue_id[32]; /* when the recipient (or one of its targets) was queued: the entry */
	bool over_quota;   /* when !ok: a mailbox it leads to would pass its quota */
};

/* Opens the local saves and the queue entry. NULL with a reason in err on failure. The
 * envelope is copied; the strings and recipients it points to must stay valid until the
 * transaction is finished or aborted (received only during this call). */
struct delivery_txn *delivery_txn_begin(struct delivery *d, const struct delivery_envelope *env,
					char *err, size_t errlen);
/* Appends message bytes (CRLF line ends, already un-dot-stuffed). -1 on a write error; the
 * transaction must then be aborted. */
int delivery_txn_write(struct delivery_txn *t, const void *data, size_t len);
/* Makes the message durable everywhere (blocking). outcomes (rcpt_count entries) tell each
 * recipient's fate. Returns 0 when every recipient succeeded. Frees the transaction.
 *
 * When checks are registered (check.h) they run here first, over the spooled data. A check
 * that refuses the message stores it nowhere: every outcome is !ok (temporary for a
 * TEMPFAIL) with the reply as its text, and refusal_r (may be NULL) gets the action, the
 * reply and the reason, so the protocol can send that reply instead of its own. */
int delivery_txn_finish(struct delivery_txn **t, struct delivery_outcome *outcomes,
			struct delivery_refusal *refusal_r);
void delivery_txn_abort(struct delivery_txn **t);

/* Stores a complete message (a delivery report from the queue) for one local recipient,
 * from the null sender; for a verified SRS address, queues it (or stores it) for the address
 * it decodes to. Blocking. 0 when stored. */
int delivery_store_local(struct delivery *d, const char *recipient, const uint8_t *msg,
			 size_t len);

/* ETRN (RFC 1985): makes queued mail for domain due now. -1 when nothing could be done. */
int delivery_flush_domain(struct delivery *d, const char *domain);

/* Free space check before a transaction: false when the data directory's file system has less
 * than 1.5 x the message size limit free (RFC 5321 452 4.3.1 at MAIL FROM). */
bool delivery_disk_ok(struct delivery *d);

#endif
