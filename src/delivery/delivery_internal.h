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
};

struct delivery_txn {
	struct delivery *d;
	struct delivery_envelope env; /* a copy; what it points to outlives the transaction */
	char **mailboxes; /* distinct local mailboxes */
	size_t mailbox_count;
	struct store_account **accounts;
	struct store_save *save;
	struct queue_entry_writer *queued;
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
