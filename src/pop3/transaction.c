/* The POP3 TRANSACTION and UPDATE states (RFC 1939 §5, §6): STAT, LIST, RETR, DELE, NOOP,
 * RSET, TOP, UIDL and QUIT over the session's maildrop snapshot.
 *
 * Design notes:
 *  1. Store calls may block, so they run in jobs on the worker pool (net_conn_offload): the
 *     maildrop is opened at login, a message is mapped for RETR/TOP, and UPDATE applies the
 *     deletions at QUIT. The connection is paused while a job runs, so the snapshot is only
 *     touched by one thread at a time.
 *  2. RETR/TOP stream straight from the mapping in POP3_STREAM_CHUNK steps, stopping while
 *     more than POP3_OUTPUT_HIGH bytes wait to be sent and resuming from the drained callback;
 *     LIST and UIDL without argument stream the same way. Commands pipelined behind them stay
 *     in the input buffer until the reply is complete.
 *  3. A sent message is closed by the next store job (or at the end of the connection), so
 *     no munmap runs on the loop in the common case.
 *  5. A RETR job also opens the messages after the one asked for (readahead.c), within a
 *     small budget; the RETRs and TOPs that follow in order are answered on the loop at once.
 *     A removal anywhere in the account since the job invalidates them, so a message another
 *     session removed is still "-ERR" (RFC 1939 §7 leaves it to the server; we never serve
 *     content that was already gone when the command arrived).
 *  4. UPDATE happens only after QUIT in TRANSACTION state; a dropped connection frees the
 *     snapshot and changes nothing in the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

enum pop3_op { POP3_OP_OPEN, POP3_OP_MESSAGE, POP3_OP_UPDATE };

struct pop3_store_job {
	enum pop3_op op;
	struct store *store;
	const struct config *cfg;
	struct auth_directory *dir;  /* OPEN: the account's settings */
	char *user;		     /* OPEN */
	struct pop3_maildrop *md;    /* OPEN: result; UPDATE: owned, freed by the job */
	struct pop3_spent spent; /* closed first */
	const struct pop3_maildrop *view; /* MESSAGE: the session's; it is paused meanwhile */
	uint64_t box_id;
	uint32_t uid;
	uint32_t n;
	bool top;
	uint64_t lines;
	struct store_message *msg; /* MESSAGE: result */
	struct pop3_readahead ahead; /* MESSAGE (RETR): the messages after n */
	enum store_error err;
};

static void pop3_apply_account_setting(const char *name, const char *value, void *ctx)
{
	char err[256];

	/* `roost user set` checks values; one it did not write (an older or newer version, or
	 * a hand edit) keeps the server's value and is reported. */
	if (config_account_apply(ctx, name, value, err, sizeof(err)) < 0)
		log_warn("proto=pop3 msg=\"ignoring account setting\" reason=\"%s\"", err);
}

/* The server's per-account settings with the account's overrides. A directory that cannot be
 * read fails the login for now: guessing could expunge what a user asked to keep. */
static enum store_error pop3_account_settings(struct pop3_store_job *job,
					      struct account_settings *as)
{
	config_account_defaults(job->cfg, as);
	if (auth_user_settings(job->dir, job->user, pop3_apply_account_setting, as) < 0)
		return STORE_ERR_IO;
	return STORE_OK;
}

static void pop3_job_work(void *arg)
{
	struct pop3_store_job *job = arg;

	pop3_spent_close(&job->spent);
	switch (job->op) {
	case POP3_OP_OPEN: {
		struct account_settings as;

		job->err = pop3_account_settings(job, &as);
		if (job->err == STORE_OK)
			job->err = pop3_maildrop_open(job->store, job->user, &as, &job->md);
		break;
	}
	case POP3_OP_MESSAGE: {
		/* Read before any open: a removal after this point shows as a changed count. */
		uint64_t removals = store_account_removals(job->view->acct);

		job->err = store_message_open(job->view->acct, job->box_id, job->uid, &job->msg,
					      NULL);
		if (job->err == STORE_OK && !job->top)
			pop3_readahead_fill(&job->ahead, job->view, job->n, removals);
		break;
	}
	case POP3_OP_UPDATE:
		job->err = pop3_maildrop_commit(job->md);
		pop3_maildrop_free(&job->md);
		break;
	}
}

static struct pop3_store_job *pop3_job_new(struct pop3_session *s, enum pop3_op op)
{
	struct pop3_store_job *job = xcalloc(1, sizeof(*job));

	job->op = op;
	job->store = s->deps->store;
	job->cfg = s->deps->cfg;
	job->dir = s->deps->dir;
	job->spent = s->spent;
	s->spent.count = 0;
	return job;
}

static void pop3_job_free(struct pop3_store_job **job)
{
	/* Only reached on the loop with nothing mapped left, except when the connection died
	 * between the job and its completion. */
	store_message_close(&(*job)->msg);
	pop3_readahead_drop(&(*job)->ahead, &(*job)->spent);
	pop3_spent_close(&(*job)->spent);
	pop3_maildrop_free(&(*job)->md);
	free((*job)->user);
	free(*job);
	*job = NULL;
}

static const char *pop3_store_reason(enum store_error e)
{
	return e == STORE_ERR_NOT_FOUND ? "No such message" : store_error_str(e);
}

/* ---------------- login: opening the maildrop ---------------- */

/* Ends a login: after TRANSACTION, or one that got past the password but not into it (which
 * then does not count for LOGIN-DELAY either: auth_login_end takes an unconfirmed claim back). */
static void pop3_release_login(struct pop3_session *s)
{
	if (s->locked)
		pop3_lock_release(s->user);
	s->locked = false;
	auth_login_end(&s->login);
	free(s->user);
	s->user = NULL;
}

static void pop3_open_done(void *session, void *arg)
{
	struct pop3_session *s = session;
	struct pop3_store_job *job = arg;
	const char *ip = net_conn_peer_ip(s->conn);

	if (job->err != STORE_OK) {
		log_error("proto=pop3 conn=%llu ip=%s user=%s msg=\"cannot open maildrop\" "
			  "error=\"%s\"", (unsigned long long)net_conn_id(s->conn), ip, s->user,
			  store_error_str(job->err));
		pop3_release_login(s);
		/* RFC 1939 §4: the server may stay in AUTHORIZATION after a failed open. */
		pop3_reply(s, "-ERR [SYS/TEMP] Unable to open the maildrop; try again later");
		pop3_job_free(&job);
		return;
	}
	s->md = job->md;
	job->md = NULL;
	s->state = POP3_TRANSACTION;
	auth_login_confirm(&s->login); /* the login stands: it counts for LOGIN-DELAY */
	net_conn_end_prelogin(s->conn);
	log_info("proto=pop3 conn=%llu ip=%s user=%s msg=\"logged in\" messages=%u octets=%llu",
		 (unsigned long long)net_conn_id(s->conn), ip, s->user, s->md->count,
		 (unsigned long long)s->md->total_size);
	pop3_reply(s, "+OK Logged in; maildrop has %u messages (%llu octets)", s->md->count,
		   (unsigned long long)s->md->total_size);
	pop3_job_free(&job);
}

void pop3_transaction_begin(struct pop3_session *s, const char *user)
{
	struct pop3_store_job *job;

	s->user = xstrdup(user);
	/* RFC 1939 §8 wants an exclusive lock; lock = share (the default) gives up on it, as
	 * the connection of a client that died without QUIT would keep its mailbox locked until
	 * the timeout, and relies on snapshots instead. RFC 2449 §8.1.2: IN-USE when the lock is refused. */
	if (s->deps->cfg->pop3_lock == POP3_LOCK_REFUSE) {
		if (!pop3_lock_acquire(user)) {
			pop3_release_login(s);
			pop3_reply(s, "-ERR [IN-USE] Maildrop is in use by another POP3 session");
			return;
		}
		s->locked = true;
	}
	job = pop3_job_new(s, POP3_OP_OPEN);
	job->user = xstrdup(user);
	net_conn_offload(s->conn, pop3_job_work, pop3_open_done, job);
}

/* ---------------- streaming output ---------------- */

static void pop3_emit(void *ctx, const void *data, size_t len)
{
	net_conn_write(ctx, data, len);
}

static void pop3_stream_finish(struct pop3_session *s)
{
	if (s->out == POP3_OUT_MESSAGE) {
		/* RFC 1939 §3: the terminating line is CRLF "." CRLF; a message whose last line
		 * lacks its CRLF gets one so the dot stands on a line of its own. */
		if (s->out_end > 0 && s->out_data[s->out_end - 1] != '\n')
			net_conn_write(s->conn, "\r\n", 2);
		pop3_spent_add(&s->spent, &s->msg);
		s->out_data = NULL;
	}
	net_conn_write(s->conn, ".\r\n", 3);
	s->out = POP3_OUT_NONE;
}

static void pop3_list_line(struct pop3_session *s, struct buf *b, uint32_t n)
{
	const struct pop3_msg *m = pop3_maildrop_get(s->md, n);
	char uidl[32];

	if (m == NULL)
		return;
	if (s->out == POP3_OUT_LIST) {
		buf_printf(b, "%u %llu\r\n", n, (unsigned long long)m->size);
	} else {
		pop3_uidl(s->md, m, uidl, sizeof(uidl));
		buf_printf(b, "%u %s\r\n", n, uidl);
	}
}

/* Queues output until the queue is full or the reply is complete. */
static void pop3_stream_pump(struct pop3_session *s)
{
	while (s->out != POP3_OUT_NONE && !net_conn_is_closing(s->conn)) {
		if (net_conn_output_length(s->conn) > POP3_OUTPUT_HIGH) {
			net_conn_want_drain(s->conn, POP3_OUTPUT_LOW);
			return;
		}
		if (s->out == POP3_OUT_MESSAGE) {
			size_t n = s->out_end - s->out_pos;

			if (n == 0) {
				pop3_stream_finish(s);
				break;
			}
			if (n > POP3_STREAM_CHUNK)
				n = POP3_STREAM_CHUNK;
			pop3_stuff(s->out_data + s->out_pos, n, &s->out_line_start, pop3_emit,
				   s->conn);
			s->out_pos += n;
		} else {
			struct buf b;

			if (s->out_next > s->md->count) {
				pop3_stream_finish(s);
				break;
			}
			buf_init(&b);
			while (s->out_next <= s->md->count && b.len < POP3_STREAM_CHUNK)
				pop3_list_line(s, &b, s->out_next++);
			net_conn_write(s->conn, b.data, b.len);
			buf_free(&b);
		}
	}
}

void pop3_transaction_drained(void *session)
{
	struct pop3_session *s = session;

	if (s->close_when_drained) {
		net_conn_close(s->conn);
		return;
	}
	if (s->out == POP3_OUT_NONE)
		return;
	pop3_stream_pump(s);
	/* Commands pipelined behind the reply are already buffered: no read event will come
	 * for them, so run them now. */
	if (s->out == POP3_OUT_NONE)
		pop3_input(s);
}

/* ---------------- commands ---------------- */

/* Starts sending MSG (owned from here on) as the answer to RETR, or to TOP with LINES. */
static void pop3_send_message(struct pop3_session *s, struct store_message *msg, bool top,
			      uint64_t lines)
{
	size_t len;
	const uint8_t *data = store_message_data(msg, &len);

	s->msg = msg;
	s->out_data = data;
	s->out_pos = 0;
	s->out_end = top ? pop3_top_length(data, len, lines) : len;
	s->out_line_start = true;
	s->out = POP3_OUT_MESSAGE;
	if (top)
		pop3_reply(s, "+OK Top of message follows");
	else
		pop3_reply(s, "+OK %zu octets", len);
	pop3_stream_pump(s);
}

static void pop3_message_done(void *session, void *arg)
{
	struct pop3_session *s = session;
	struct pop3_store_job *job = arg;
	struct store_message *msg;

	if (job->err != STORE_OK) {
		/* Another session removed it since our snapshot (lock = share): RFC 1939 §7
		 * "-ERR no such message"; anything else is the store's temporary failure. */
		if (job->err == STORE_ERR_NOT_FOUND)
			pop3_reply(s, "-ERR No such message (removed by another session)");
		else
			pop3_reply(s, "-ERR [SYS/TEMP] %s", pop3_store_reason(job->err));
		pop3_job_free(&job);
		return;
	}
	msg = job->msg;
	job->msg = NULL;
	s->ahead = job->ahead;
	job->ahead.count = 0;
	pop3_send_message(s, msg, job->top, job->lines);
	pop3_job_free(&job);
}

static void pop3_cmd_retr(struct pop3_session *s, const char *arg, bool top)
{
	const struct pop3_msg *m;
	struct pop3_store_job *job;
	struct store_message *msg;
	uint32_t n;
	uint64_t lines = 0;
	int r = top ? pop3_parse_top(arg, &n, &lines) : pop3_parse_msgnum(arg, false, &n, NULL);

	if (r < 0) {
		pop3_error(s, top ? "Syntax: TOP msg n" : "Syntax: RETR msg");
		return;
	}
	m = pop3_maildrop_get(s->md, n);
	if (m == NULL) {
		pop3_reply(s, "-ERR No such message");
		return;
	}
	msg = pop3_readahead_take(&s->ahead, n, s->md->acct, &s->spent);
	if (msg != NULL) {
		pop3_send_message(s, msg, top, lines);
		return;
	}
	job = pop3_job_new(s, POP3_OP_MESSAGE);
	job->view = s->md;
	job->box_id = s->md->box_id[m->box];
	job->uid = m->uid;
	job->n = n;
	job->top = top;
	job->lines = lines;
	net_conn_offload(s->conn, pop3_job_work, pop3_message_done, job);
}

/* LIST and UIDL: one message, or every message not marked deleted (RFC 1939 §5, §7). */
static void pop3_cmd_scan(struct pop3_session *s, const char *arg, enum pop3_output kind)
{
	const struct pop3_msg *m;
	uint32_t n;
	bool present;
	char uidl[32];

	if (pop3_parse_msgnum(arg, true, &n, &present) < 0) {
		pop3_error(s, kind == POP3_OUT_LIST ? "Syntax: LIST [msg]" : "Syntax: UIDL [msg]");
		return;
	}
	if (present) {
		m = pop3_maildrop_get(s->md, n);
		if (m == NULL) {
			pop3_reply(s, "-ERR No such message");
		} else if (kind == POP3_OUT_LIST) {
			pop3_reply(s, "+OK %u %llu", n, (unsigned long long)m->size);
		} else {
			pop3_uidl(s->md, m, uidl, sizeof(uidl));
			pop3_reply(s, "+OK %u %s", n, uidl);
		}
		return;
	}
	if (kind == POP3_OUT_LIST)
		pop3_reply(s, "+OK %u messages (%llu octets)", s->md->count - s->md->deleted_count,
			   (unsigned long long)(s->md->total_size - s->md->deleted_size));
	else
		pop3_reply(s, "+OK Unique-ID listing follows");
	s->out = kind;
	s->out_next = 1;
	pop3_stream_pump(s);
}

static void pop3_update_done(void *session, void *arg)
{
	struct pop3_session *s = session;
	struct pop3_store_job *job = arg;

	if (job->err != STORE_OK) {
		log_error("proto=pop3 conn=%llu user=%s msg=\"update failed\" error=\"%s\"",
			  (unsigned long long)net_conn_id(s->conn), s->user,
			  store_error_str(job->err));
		/* RFC 1939 §6: "-ERR some deleted messages not removed". */
		pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages not removed");
	} else {
		pop3_reply(s, "+OK Roost POP3 signing off");
	}
	pop3_job_free(&job);
	pop3_release_login(s);
	/* net_conn_close from inside a job's completion finalises the connection without
	 * flushing what was just queued; closing once the farewell has drained avoids that. */
	s->close_when_drained = true;
	net_conn_want_drain(s->conn, 0);
}

/* RFC 1939 §6: QUIT in TRANSACTION enters UPDATE, which removes the DELE'd messages. */
static void pop3_cmd_quit(struct pop3_session *s)
{
	struct pop3_store_job *job = pop3_job_new(s, POP3_OP_UPDATE);

	log_info("proto=pop3 conn=%llu user=%s msg=\"quit\" deleted=%u",
		 (unsigned long long)net_conn_id(s->conn), s->user, s->md->deleted_count);
	s->state = POP3_UPDATE;
	pop3_readahead_drop(&s->ahead, &job->spent);
	job->md = s->md;
	s->md = NULL;
	net_conn_offload(s->conn, pop3_job_work, pop3_update_done, job);
}

void pop3_transaction_command(struct pop3_session *s, enum pop3_verb verb, const char *arg)
{
	uint32_t n;

	switch (verb) {
	case POP3_CMD_QUIT:
		pop3_cmd_quit(s);
		break;
	case POP3_CMD_STAT:
		/* RFC 1939 §5: messages marked as deleted are not counted. */
		pop3_reply(s, "+OK %u %llu", s->md->count - s->md->deleted_count,
			   (unsigned long long)(s->md->total_size - s->md->deleted_size));
		break;
	case POP3_CMD_LIST:
		pop3_cmd_scan(s, arg, POP3_OUT_LIST);
		break;
	case POP3_CMD_UIDL:
		pop3_cmd_scan(s, arg, POP3_OUT_UIDL);
		break;
	case POP3_CMD_RETR:
		pop3_cmd_retr(s, arg, false);
		break;
	case POP3_CMD_TOP:
		pop3_cmd_retr(s, arg, true);
		break;
	case POP3_CMD_DELE:
		if (pop3_parse_msgnum(arg, false, &n, NULL) < 0)
			pop3_error(s, "Syntax: DELE msg");
		else if (pop3_maildrop_delete(s->md, n) < 0)
			pop3_reply(s, "-ERR No such message");
		else
			pop3_reply(s, "+OK Message %u deleted", n);
		break;
	case POP3_CMD_NOOP:
		pop3_reply(s, "+OK");
		break;
	case POP3_CMD_RSET:
		pop3_maildrop_reset(s->md);
		pop3_reply(s, "+OK Maildrop has %u messages (%llu octets)", s->md->count,
			   (unsigned long long)s->md->total_size);
		break;
	case POP3_CMD_USER:
	case POP3_CMD_PASS:
	case POP3_CMD_APOP:
	case POP3_CMD_AUTH:
	case POP3_CMD_STLS:
		pop3_error(s, "Not allowed in the TRANSACTION state");
		break;
	default:
		pop3_error(s, "Unknown command");
		break;
	}
}

void pop3_transaction_end(struct pop3_session *s)
{
	/* The connection went away without QUIT (or after UPDATE): nothing is deleted. These
	 * store calls run on the loop because net offers no job after close; they only unmap
	 * and drop a reference (the index closes here only if no other session uses it). */
	store_message_close(&s->msg);
	pop3_readahead_drop(&s->ahead, &s->spent);
	pop3_spent_close(&s->spent);
	pop3_maildrop_free(&s->md);
	pop3_release_login(s);
}
