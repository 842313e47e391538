/* Private to the queue layer: the spool's handle, a loaded queue entry with its delivery
 * state, and the pieces of the runner (SMTP client transaction, DSN composition). */
#ifndef ROOST_QUEUE_INTERNAL_H
#define ROOST_QUEUE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "queue.h"

struct queue {
	char *dir;	  /* DATA_DIR/queue */
	char *tmp_dir;	  /* .../tmp */
	char *active_dir; /* .../active: complete, immutable message files */
	char *state_dir;  /* .../state: per-message delivery state, rewritten atomically */
	atomic_uint_fast64_t counter;
	uint32_t salt;
	pthread_mutex_t state_lock; /* serialises state rewrites of the same message */
	struct queue_runner *_Atomic runner; /* woken when a message is committed */
};

enum queue_rcpt_state { QUEUE_RCPT_PENDING, QUEUE_RCPT_SENT, QUEUE_RCPT_FAILED };

struct queue_rcpt {
	char *address;
	char *notify; /* "" when absent */
	char *orcpt;
	enum queue_rcpt_state state;
	char *last_reply; /* the remote reply or our own reason; NULL before any attempt */
	char *remote_host; /* the host that gave last_reply */
};

struct queue_entry {
	char id[32];
	int64_t arrived;
	char *sender;
	char *envid;
	char *ret;
	char *auth_user;
	struct queue_rcpt *rcpts;
	size_t rcpt_count;
	uint64_t data_offset; /* where the message starts in the active file */
	uint64_t data_size;
	/* state */
	unsigned attempts;
	int64_t next_attempt; /* unix milliseconds; 0 = due now */
	bool warned;
};

/* spool.c: the ids in active/, oldest first (heap array of heap strings). */
int queue_ids(struct queue *q, char ***ids_r, size_t *count_r);

/* entry.c */
int queue_entry_load(struct queue *q, const char *id, struct queue_entry **e_r, char *err,
		     size_t errlen);
void queue_entry_free(struct queue_entry **e);
/* Writes queue/state/ID durably (tmp, fsync, rename, directory fsync). */
int queue_state_save(struct queue *q, const struct queue_entry *e, char *err, size_t errlen);
/* Removes the message and its state. */
void queue_entry_remove(struct queue *q, const char *id);
/* Maps the message bytes of an entry read-only; queue_data_unmap releases them. */
const uint8_t *queue_data_map(struct queue *q, const struct queue_entry *e, void **cookie_r);
void queue_data_unmap(void *cookie, const struct queue_entry *e);

/* smtpc.c: one SMTP transaction to one server. */
struct smtpc_request {
	const char *ip;
	const char *host; /* for SNI and logs */
	unsigned port;
	const char *helo;
	const char *auth_user; /* smarthost AUTH PLAIN, or NULL */
	const char *auth_password;
	enum relay_tls tls;    /* RELAY_TLS_NONE = opportunistic (every MX) */
	const char *ca_file;   /* RELAY_TLS_VERIFY: CAs, "" = the system's */
	const char *sender;
	const char *envid, *ret;
	struct queue_rcpt **rcpts; /* the pending recipients for this server */
	size_t rcpt_count;
	const uint8_t *prefix; /* header fields to send before the message (DKIM) */
	size_t prefix_len;
	const uint8_t *data;
	size_t len;
};
/* Outcome per recipient: replies[i] gets the reply text ("250 2.0.0 ok", "550 5.1.1 ...");
 * codes[i] its code. Returns 0 when the server was reached and answered for each recipient,
 * -1 when the connection failed before that (err says why: try the next server).
 * *session is the caller's kept session: reused when it leads to the same server and is still
 * fresh, replaced otherwise, and left open after a clean transaction for the next message. */
struct smtpc;
int smtpc_deliver(struct smtpc **session, const struct smtpc_request *req, int *codes,
		  char **replies, char *err, size_t errlen);
/* QUIT and close a kept session; accepts NULL. */
void smtpc_close(struct smtpc **session);

/* bounce.c: an RFC 3464 report for the recipients with the given indexes. */
void queue_dsn_compose(const struct queue_runner_config *cfg, const struct queue_entry *e,
		       const uint8_t *data, bool delay_warning, const size_t *rcpt_index,
		       size_t count, struct buf *out);

#endif
