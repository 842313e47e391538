/* IDLE (RFC 2177, RFC 9051 §6.3.13): "+ idling", updates pushed as the change feed posts
 * them (selected.c), DONE ends it. An idle session keeps only its UID array: the command
 * buffer is released when IDLE starts.
 *
 * Keep-alive: "* OK Still here" every [imap] idle_keepalive seconds so NAT boxes keep the
 * flow (many drop an idle TCP mapping after a few minutes). net offers a per-connection inactivity timeout that closes the
 * connection and a one-shot delay that pauses input; neither fits a periodic write while
 * input stays live, so one process-wide ticker thread keeps a FIFO of idling connections
 * (one interval for all, so the FIFO stays sorted by due time) and posts the keep-alive to
 * each connection's loop. This is the one piece of process-wide mutable state in imap/: a
 * lock-protected list, started once; cancelling is O(1) from the session's loop. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/core.h"
#include "session.h"

struct imap_keepalive {
	struct imap_keepalive *prev, *next;
	struct net_conn *conn;
	uint64_t due_ms;
	uint64_t interval_ms;
};

struct keepalive_ticker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_once_t once;
	struct imap_keepalive *head, *tail;
};

static struct keepalive_ticker ticker = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
					  PTHREAD_ONCE_INIT, NULL, NULL };

static void ticker_unlink(struct imap_keepalive *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		ticker.head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		ticker.tail = k->prev;
	k->prev = k->next = NULL;
}

static void ticker_push(struct imap_keepalive *k)
{
	k->prev = ticker.tail;
	k->next = NULL;
	if (ticker.tail)
		ticker.tail->next = k;
	else
		ticker.head = k;
	ticker.tail = k;
}

/* On the connection's loop. */
static void keepalive_fire(void *session, void *arg)
{
	struct imap_session *s = session;

	(void)arg;
	if (s != NULL && s->idle_tag != NULL && !net_conn_is_closing(s->conn))
		imap_reply(s, "* OK Still here");
}

static void *ticker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ticker.lock);
	for (;;) {
		struct imap_keepalive *k = ticker.head;
		if (k == NULL) {
			pthread_cond_wait(&ticker.cond, &ticker.lock);
			continue;
		}
		uint64_t now = time_now_ms();
		if (k->due_ms > now) {
			struct timespec ts;
			uint64_t wait = k->due_ms - now;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&ticker.cond, &ticker.lock, &ts);
			continue;
		}
		/* The registration holds a connection reference until it is cancelled on
		 * the loop, so posting under the lock is safe. */
		net_conn_post(k->conn, keepalive_fire, NULL);
		ticker_unlink(k);
		k->due_ms = now + k->interval_ms;
		ticker_push(k);
	}
	return NULL;
}

static void ticker_start(void)
{
	pthread_t t;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, ticker_main, NULL) != 0)
		log_error("proto=imap msg=\"cannot start the IDLE keep-alive thread\"");
	pthread_attr_destroy(&attr);
}

static void keepalive_start(struct imap_session *s)
{
	uint64_t interval = (uint64_t)s->deps->cfg->imap_idle_keepalive * 1000;
	struct imap_keepalive *k;

	if (interval == 0)
		return;
	pthread_once(&ticker.once, ticker_start);
	k = xcalloc(1, sizeof(*k));
	k->conn = s->conn;
	k->interval_ms = interval;
	k->due_ms = time_now_ms() + interval;
	net_conn_ref(s->conn);
	pthread_mutex_lock(&ticker.lock);
	bool was_empty = ticker.head == NULL;
	ticker_push(k);
	if (was_empty)
		pthread_cond_signal(&ticker.cond);
	pthread_mutex_unlock(&ticker.lock);
	s->keepalive = k;
}

static void keepalive_stop(struct imap_session *s)
{
	struct imap_keepalive *k = s->keepalive;

	if (k == NULL)
		return;
	pthread_mutex_lock(&ticker.lock);
	ticker_unlink(k);
	pthread_mutex_unlock(&ticker.lock);
	net_conn_unref(k->conn);
	free(k);
	s->keepalive = NULL;
}

void imap_idle_end(struct imap_session *s)
{
	keepalive_stop(s);
	free(s->idle_tag);
	s->idle_tag = NULL;
}

void imap_cmd_idle(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "IDLE takes no arguments");
		return;
	}
	s->idle_tag = xstrdup(tag);
	imap_reply(s, "+ idling");
	/* Anything queued goes out now; from here on the feed pushes directly. */
	imap_updates_idle_start(s);
	keepalive_start(s);
}

/* After DONE, once every change seen while idling is reported. */
static void idle_terminated(struct imap_session *s)
{
	char *tag = s->idle_tag;

	s->idle_tag = NULL;
	s->expunge_ok = true;
	imap_tagged(s, tag, "%s OK IDLE terminated", tag);
	free(tag);
}

static void idle_terminated_after_resync(struct imap_session *s)
{
	idle_terminated(s);
	if (!s->busy)
		imap_command_done(s);
}

void imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
	char *tag = s->idle_tag;

	keepalive_stop(s);
	if (line != NULL && len == 4 && str_nieq(line, "DONE", 4)) {
		/* Flags the session could not keep while idling are read first, so the
		 * tagged OK comes after every change made during the IDLE. */
		if (!imap_updates_resync(s, idle_terminated_after_resync))
			idle_terminated(s);
		return;
	}
	/* RFC 2177: anything but DONE ends IDLE with BAD. */
	s->idle_tag = NULL;
	imap_bad(s, tag, "Expected DONE");
	free(tag);
}
