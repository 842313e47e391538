/* What the files of delivery/ share and nobody else sees: the delivery object with its list of
 * checks, the transaction, and the two steps both kinds of transaction (direct and spooled)
 * use to open and fill the store save and the queue entry. */
#ifndef ROOST_DELIVERY_INTERNAL_H
#define ROOST_DELIVERY_INTERNAL_H

#include "check.h"
#include "delivery.h"

struct delivery_check {
	char *name;
	delivery_check_fn fn;
	void *arg;
};

struct delivery {
	const struct config *cfg;
	struct auth_directory *dir;
	struct store *store;
	struct queue *queue;
	char *data_dir;
	char *spool_dir; /* DATA_DIR/tmp: the spooled transactions' unlinked files */
	struct delivery_check *checks;
	size_t check_count;
	/* SRS (delivery_srs_setup): off until set up */
	bool srs_on;
	uint8_t srs_secret[AUTH_SRS_SECRET_MAX];
	size_t srs_secret_len;
	char *srs_domain; /* lowercase, no trailing dot */
	int64_t srs_max_age_days;
};

struct delivery_txn {
	struct delivery *d;
	struct delivery_envelope env; /* a copy; what it points to outlives the transaction */
	char **mailboxes; /* distinct local mailboxes */
	size_t mailbox_count;
	struct store_account **accounts;
	struct store_save *save;
	struct queue_entry_writer *queued; /* remote recipients with the envelope's sender */
	/* The forwarded recipients (alias targets in other domains) when their copy leaves with
	 * the SRS sender: a second entry, as a queue entry has one sender. */
	struct queue_entry_writer *queued_srs;
	char *srs_sender; /* NULL: no rewriting, every remote recipient is in `queued` */
	bool write_failed;
	/* Spooled transactions only (checks registered): the unlinked file holding the data,
	 * its length, and our copy of the Received: field, needed again at the end. */
	int spool_fd; /* -1 on the direct path */
	uint64_t spool_len;
	char *received;
};

/* Opens the store save (one target per mailbox; mailbox_names[i] NULL or the array NULL for
 * INBOX) and the queue entry, and writes Return-Path:/Received: into the local copy and
 * Received: into the queued one. -1 with a reason in err. */
int delivery_txn_open_outputs(struct delivery_txn *t, const char *received,
			      const char *const *mailbox_names, char *err, size_t errlen);
/* Appends bytes to the open save and queue entry; -1 (logged) on a write error. */
int delivery_txn_write_outputs(struct delivery_txn *t, const void *data, size_t len);

/* SRS (srs.c). When address is an SRS address at our SRS domain, fills out (the decoded
 * address's targets) and *status_r and returns true; false for any other address. */
bool delivery_srs_resolve(struct delivery *d, const char *address, struct delivery_rcpt *out,
			  enum delivery_rcpt_status *status_r);
/* The sender for the forwarded recipients' queue entry, or NULL when the envelope's sender
 * stays (SRS off, an authenticated sender, the null sender, one of our domains, no forwarded
 * recipient). Caller frees. Blocking (a directory lookup). */
char *delivery_srs_sender(struct delivery *d, const struct delivery_envelope *env);

/* The spooled transaction (spooled.c). */
int delivery_spool_open(struct delivery_txn *t, char *err, size_t errlen);
int delivery_spool_write(struct delivery_txn *t, const void *data, size_t len);
/* Runs the checks over the spool and, when they accept, writes the message into the outputs.
 * Returns 0 when the outputs are ready to commit, 1 when a check refused (refusal_r filled),
 * -1 on an I/O error (err). */
int delivery_spool_run(struct delivery_txn *t, struct delivery_refusal *refusal_r, char *err,
		       size_t errlen);
void delivery_spool_close(struct delivery_txn *t);

#endif
