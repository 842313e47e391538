/* One client connection: its bufferevent, the reader and writer the protocols use, STARTTLS,
 * timers, offloaded jobs and the close path.
 *
 * Invariants:
 *  1. Everything here runs on the connection's worker loop, except net_conn_ref/unref/post.
 *  2. proto->close(session) runs exactly once, from conn_finalize, which only ever runs from a
 *     loop callback of its own (never inside a protocol callback that still uses the session)
 *     and only when no offloaded job is in flight.
 *  3. The struct's memory lives until the last reference is dropped; after finalize only
 *     `finalized`, `worker` and `refs` are looked at.
 *  4. Input is delivered to the protocol only while the connection is neither paused nor
 *     closing, so a session never sees bytes that arrived before a STARTTLS handshake.
 *  5. Once aborted (peer gone, output cap) nothing more is queued or logged for the
 *     connection: whatever the session still writes before finalisation is dropped.
 *  6. One timer per connection serves the idle timeout and the pre-login deadline. Progress
 *     (a complete line, consumed bytes) only stamps last_progress_ms; the timer re-arms itself
 *     when it finds the time not yet over, so a busy connection costs no timer operations. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../tls/tls.h"
#include "net_internal.h"

#define NET_READ_HIGH_WATERMARK (256 * 1024)
#define NET_CLOSE_FLUSH_SECONDS 30

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_schedule_finalize(struct net_conn *c);
static void conn_timer_fired(evutil_socket_t fd, short what, void *arg);

/* ---------------- references and finalisation ---------------- */

void net_conn_ref(struct net_conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void net_conn_unref(struct net_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1) {
		buf_free(&c->line);
		free(c);
	}
}

static void conn_unlink(struct net_conn *c)
{
	struct net_worker *w = c->worker;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	w->conn_count--;
	atomic_fetch_sub(&w->srv->kind_connections[c->kind], 1);
	metrics_connection_closed(config_listen_name(c->kind));
}

static void conn_finalize(struct net_conn *c)
{
	struct net_worker *w = c->worker;

	if (c->finalized)
		return;
	c->finalized = true;
	c->closing = true;
	atomic_store(&c->gone, true);
	if (c->session != NULL && c->proto->close != NULL)
		c->proto->close(c->session);
	c->session = NULL;
	if (c->peer_watch) {
		event_free(c->peer_watch);
		c->peer_watch = NULL;
	}
	if (c->delay_timer) {
		event_free(c->delay_timer);
		c->delay_timer = NULL;
	}
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
	net_zstream_free(&c->z);
	if (c->bev) {
		/* A TLS bufferevent owns its SSL and the descriptor (BEV_OPT_CLOSE_ON_FREE); a
		 * plain one owns neither, and fd below is still ours. */
		bufferevent_free(c->bev);
		c->bev = NULL;
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->ip_counted)
		net_iplimit_release(w->srv->iplimit, c->peer_ip);
	c->ip_counted = false;
	buf_free(&c->line);
	conn_unlink(c);
	net_server_connection_gone(w->srv);
	log_debug("proto=%s conn=%llu ip=%s msg=closed", c->proto->name,
		  (unsigned long long)c->id, c->peer_ip);
	if (w->stopping && w->conn_count == 0)
		event_base_loopbreak(w->base);
	net_conn_unref(c); /* the loop's own reference */
}

static void conn_finalize_task(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)fd;
	(void)what;
	c->finalize_scheduled = false;
	if (!c->finalized && c->jobs_in_flight == 0)
		conn_finalize(c);
	net_conn_unref(c);
}

static void conn_schedule_finalize(struct net_conn *c)
{
	static const struct timeval now = { 0, 0 };

	if (c->finalized || c->finalize_scheduled || c->jobs_in_flight > 0)
		return;
	c->finalize_scheduled = true;
	net_conn_ref(c);
	if (event_base_once(c->worker->base, -1, EV_TIMEOUT, conn_finalize_task, c, &now) < 0)
		abort();
}

/* The connection cannot be used any more (peer gone, error): close without flushing. */
static void conn_abort(struct net_conn *c)
{
	c->closing = true;
	c->aborted = true;
	atomic_store(&c->gone, true);
	if (c->bev) {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		evbuffer_drain(out, evbuffer_get_length(out)); /* never sent; free it now */
	}
	conn_schedule_finalize(c);
}

void net_conn_close(struct net_conn *c)
{
	struct timeval flush_limit = { NET_CLOSE_FLUSH_SECONDS, 0 };

	if (c->closing || c->finalized)
		return;
	c->closing = true;
	atomic_store(&c->gone, true);
	if (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_schedule_finalize(c);
		return;
	}
	/* Let the farewell reach the peer, but never wait forever for a peer that stops reading. */
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, &flush_limit);
}

bool net_conn_is_closing(const struct net_conn *c)
{
	return c->closing;
}

bool net_conn_gone(const struct net_conn *c)
{
	return atomic_load(&c->gone);
}

/* ---------------- creation ---------------- */

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static void sockaddr_to_text(const struct sockaddr *sa, char *out, size_t outlen,
			     uint16_t *port_r)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)outlen);
		*port_r = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) /* show 127.0.0.1, not ::ffff:127.0.0.1 */
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outlen);
		*port_r = ntohs(in6->sin6_port);
	} else {
		snprintf(out, outlen, "unknown");
		*port_r = 0;
	}
}

bool net_kind_is_implicit_tls(enum listen_kind kind)
{
	return kind == LISTEN_SUBMISSIONS || kind == LISTEN_IMAPS || kind == LISTEN_POP3S;
}

static void conn_setup_bev(struct net_conn *c, struct bufferevent *bev)
{
	c->bev = bev;
	bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(bev, EV_READ, 0, NET_READ_HIGH_WATERMARK);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void conn_open_session(struct net_conn *c)
{
	c->session = c->proto->open(c, c->proto_ctx);
	if (c->session == NULL)
		net_conn_close(c);
}

void net_conn_accept(struct net_worker *w, int fd, const struct sockaddr *addr,
		     socklen_t addrlen, enum listen_kind kind)
{
	struct net_server *srv = w->srv;
	struct net_conn *c;
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);
	int one = 1;

	(void)addrlen;
	c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->worker = w;
	c->fd = fd;
	c->kind = kind;
	c->proto = srv->protocols[kind];
	c->proto_ctx = srv->protocol_ctx[kind];
	c->id = atomic_fetch_add(&srv->next_conn_id, 1) + 1;
	buf_init(&c->line);
	sockaddr_to_text(addr, c->peer_ip, sizeof(c->peer_ip), &c->peer_port);
	c->loopback = sockaddr_is_loopback(addr);
	if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0) {
		char ignored[64];
		sockaddr_to_text((struct sockaddr *)&local, ignored, sizeof(ignored),
				 &c->local_port);
	}
	/* Keep-alives let the kernel notice dead peers behind NAT (long IDLE sessions). */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->conn_count++;
	atomic_fetch_add(&srv->kind_connections[kind], 1);
	metrics_connection_opened(config_listen_name(kind));

	if (!net_iplimit_acquire(srv->iplimit, c->peer_ip)) {
		static struct log_limiter limiter;
		uint64_t suppressed;
		if (log_limiter_allow(&limiter, 10000, &suppressed))
			log_warn("proto=%s ip=%s msg=\"connection refused: too many from this "
				 "address\" suppressed=%llu",
				 c->proto->name, c->peer_ip, (unsigned long long)suppressed);
		if (!net_kind_is_implicit_tls(kind) && c->proto->refuse_line != NULL) {
			ssize_t ignored = write(fd, c->proto->refuse_line,
						strlen(c->proto->refuse_line));
			(void)ignored;
		}
		c->closing = true;
		conn_schedule_finalize(c);
		return;
	}
	c->ip_counted = true;
	log_debug("proto=%s conn=%llu ip=%s msg=accepted", c->proto->name,
		  (unsigned long long)c->id, c->peer_ip);
	c->timer = evtimer_new(w->base, conn_timer_fired, c);
	if (c->timer == NULL)
		abort();
	c->last_progress_ms = time_now_ms();
	if (srv->opts.prelogin_seconds > 0)
		c->prelogin_deadline_ms = c->last_progress_ms + srv->opts.prelogin_seconds * 1000ULL;

	if (net_kind_is_implicit_tls(kind)) {
		SSL *ssl = tls_context_new_ssl(srv->opts.tls);
		struct bufferevent *bev = bufferevent_openssl_socket_new(
			w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
			BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (bev == NULL) {
			SSL_free(ssl);
			conn_abort(c);
			return;
		}
		c->fd = -1; /* owned by the bufferevent now */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		c->ssl = ssl;
		c->implicit_tls_pending = true;
		/* A client that never completes the handshake must not hold the slot forever. */
		conn_setup_bev(c, bev);
		net_conn_set_timeout(c, 60);
		return;
	}
	struct bufferevent *bev = bufferevent_socket_new(w->base, fd, BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		conn_abort(c);
		return;
	}
	conn_setup_bev(c, bev);
	net_conn_set_timeout(c, 0); /* arms the pre-login deadline; the session sets its own */
	conn_open_session(c);
}

/* ---------------- libevent callbacks ---------------- */

/* The input the readers consume: the transport's, or after COMPRESS what inflating it gave. */
static struct evbuffer *conn_in(struct net_conn *c)
{
	struct evbuffer *raw = bufferevent_get_input(c->bev);

	return c->z != NULL ? net_zstream_input(c->z, raw) : raw;
}

static void conn_deliver_input(struct net_conn *c)
{
	if (c->paused || c->closing || c->session == NULL || c->tls_switch_pending)
		return;
	if (evbuffer_get_length(conn_in(c)) == 0) {
		if (c->z != NULL && net_zstream_failed(c->z)) {
			log_info("proto=%s conn=%llu ip=%s msg=\"corrupt compressed input; closing\"",
				 c->proto->name, (unsigned long long)c->id, c->peer_ip);
			conn_abort(c);
		}
		return;
	}
	c->proto->input(c->session);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;

	(void)bev;
	conn_deliver_input(c);
}

static void conn_do_starttls(struct net_conn *c);

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;
	size_t pending = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->closing) {
		if (pending == 0)
			conn_schedule_finalize(c);
		return;
	}
	if (c->tls_switch_pending && pending == 0) {
		conn_do_starttls(c);
		return;
	}
	if (c->drain_wanted && pending <= c->drain_low) {
		c->drain_wanted = false;
		if (c->proto->drained && c->session)
			c->proto->drained(c->session);
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake done: implicit TLS opens the session, STARTTLS resumes it. */
		c->tls_active = true;
		if (c->implicit_tls_pending) {
			c->implicit_tls_pending = false;
			net_conn_set_timeout(c, 0);
			conn_open_session(c);
		} else {
			c->paused = false;
			if (c->session && c->proto->tls_ready)
				c->proto->tls_ready(c->session);
		}
		conn_deliver_input(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) { /* only the flush limit of net_conn_close sets one */
		conn_abort(c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (what & BEV_EVENT_ERROR) {
			unsigned long ssl_err = c->ssl ? bufferevent_get_openssl_error(c->bev) : 0;
			if (ssl_err != 0) {
				char text[256];
				ERR_error_string_n(ssl_err, text, sizeof(text));
				log_debug("proto=%s conn=%llu ip=%s msg=\"TLS error\" detail=\"%s\"",
					 c->proto->name, (unsigned long long)c->id, c->peer_ip,
					 text);
			}
		}
		conn_abort(c);
	}
}

/* ---------------- STARTTLS ---------------- */

bool net_conn_tls_available(const struct net_conn *c)
{
	return c->worker->srv->opts.tls != NULL && !c->tls_active && c->ssl == NULL;
}

int net_conn_starttls(struct net_conn *c)
{
	if (!net_conn_tls_available(c) || c->closing)
		return -1;
	c->tls_switch_pending = true;
	c->paused = true;
	bufferevent_disable(c->bev, EV_READ);
	/* CVE-2011-0411: bytes pipelined after STARTTLS were sent in clear text; they must never
	 * be executed inside the TLS session. Drop them now; anything still in the kernel buffer
	 * will be taken as handshake data and fail the handshake. */
	net_conn_discard_input(c);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_do_starttls(c);
	return 0;
}

static void conn_do_starttls(struct net_conn *c)
{
	struct net_server *srv = c->worker->srv;
	SSL *ssl;
	struct bufferevent *bev;

	c->tls_switch_pending = false;
	/* The plain bufferevent never owned the descriptor; freeing it drops any input it still
	 * buffered. */
	bufferevent_free(c->bev);
	c->bev = NULL;
	ssl = tls_context_new_ssl(srv->opts.tls);
	bev = bufferevent_openssl_socket_new(c->worker->base, c->fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		conn_abort(c);
		return;
	}
	c->fd = -1; /* owned by the bufferevent now */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->ssl = ssl;
	conn_setup_bev(c, bev);
}

/* ---------------- reader ---------------- */

/* The session consumed a complete line or some bytes: what the idle timeout counts from. */
static void conn_progress(struct net_conn *c)
{
	c->last_progress_ms = time_now_ms();
}

static bool conn_input_blocked(const struct net_conn *c)
{
	return c->paused || c->closing || c->tls_switch_pending || c->bev == NULL;
}

/* Keeps the last octets of a discarded stretch, for net_conn_skip_long_line. */
static void conn_keep_tail(struct net_conn *c, struct evbuffer *in, size_t upto)
{
	size_t keep = upto < sizeof(c->long_tail) ? upto : sizeof(c->long_tail);
	uint8_t tmp[sizeof(c->long_tail)];
	struct evbuffer_ptr at;

	if (keep == 0)
		return;
	evbuffer_ptr_set(in, &at, upto - keep, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &at, tmp, keep);
	if (keep < sizeof(c->long_tail)) {
		/* too short on its own: append to what earlier stretches left */
		size_t old = c->long_tail_len + keep > sizeof(c->long_tail)
				     ? sizeof(c->long_tail) - keep
				     : c->long_tail_len;
		memmove(c->long_tail, c->long_tail + c->long_tail_len - old, old);
		memcpy(c->long_tail + old, tmp, keep);
		c->long_tail_len = old + keep;
	} else {
		memcpy(c->long_tail, tmp, keep);
		c->long_tail_len = keep;
	}
}

/* Starts an over-long line: its head becomes the line handed out with NET_LINE_TOO_LONG. */
static enum net_line_status conn_long_line(struct net_conn *c, struct evbuffer *in,
					   size_t line_len, bool has_lf, char **line_r,
					   size_t *len_r)
{
	size_t head = line_len < 64 ? line_len : 64;

	buf_reset(&c->line);
	buf_reserve(&c->line, head);
	evbuffer_copyout(in, c->line.data, head);
	c->line.len = head;
	c->line.data[head] = '\0';
	*line_r = (char *)c->line.data;
	*len_r = head;
	c->long_tail_len = 0;
	c->long_line_skipped = line_len;
	conn_keep_tail(c, in, line_len);
	if (has_lf) {
		evbuffer_drain(in, line_len + 1);
		conn_progress(c);
		c->long_line_done = true;
		c->discarding_line = false;
	} else {
		evbuffer_drain(in, line_len);
		c->long_line_done = false;
		c->discarding_line = true;
	}
	return NET_LINE_TOO_LONG;
}

enum net_line_status net_conn_read_line(struct net_conn *c, size_t max, char **line_r,
					size_t *len_r, bool *crlf_r)
{
	struct evbuffer *in;

	if (conn_input_blocked(c))
		return NET_LINE_NONE;
	in = conn_in(c);
	for (;;) {
		size_t eol_len = 0;
		struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (c->discarding_line) {
			if (pos.pos < 0) {
				evbuffer_drain(in, evbuffer_get_length(in));
				return NET_LINE_NONE;
			}
			evbuffer_drain(in, (size_t)pos.pos + 1);
			c->discarding_line = false;
			continue;
		}
		if (pos.pos < 0) {
			if (evbuffer_get_length(in) > max + 1)
				return conn_long_line(c, in, evbuffer_get_length(in), false, line_r,
						      len_r);
			return NET_LINE_NONE;
		}
		size_t total = (size_t)pos.pos + 1;
		size_t len = (size_t)pos.pos;
		bool crlf = false;
		if (len > max + 1) /* +1: the CR that may precede LF */
			return conn_long_line(c, in, len, true, line_r, len_r);
		buf_reset(&c->line);
		buf_reserve(&c->line, total);
		evbuffer_remove(in, c->line.data, total);
		if (len > 0 && c->line.data[len - 1] == '\r') {
			len--;
			crlf = true;
		}
		if (len > max) {
			size_t head = len < 64 ? len : 64;
			c->line.len = head;
			c->line.data[head] = '\0';
			memcpy(c->long_tail, c->line.data + len - (len < 64 ? len : 64),
			       len < 64 ? len : 64);
			c->long_tail_len = len < 64 ? len : 64;
			c->long_line_done = true;
			conn_progress(c);
			*line_r = (char *)c->line.data;
			*len_r = head;
			return NET_LINE_TOO_LONG;
		}
		c->line.len = len;
		c->line.data[len] = '\0';
		*line_r = (char *)c->line.data;
		*len_r = len;
		if (crlf_r)
			*crlf_r = crlf;
		conn_progress(c);
		return NET_LINE_OK;
	}
}

enum net_line_status net_conn_skip_long_line(struct net_conn *c, size_t cap, char **tail_r,
					     size_t *tail_len_r)
{
	struct evbuffer *in;
	struct evbuffer_ptr pos;
	size_t eol_len = 0;

	if (!c->long_line_done) {
		if (conn_input_blocked(c))
			return NET_LINE_NONE;
		in = conn_in(c);
		pos = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (pos.pos < 0) {
			size_t n = evbuffer_get_length(in);
			conn_keep_tail(c, in, n);
			evbuffer_drain(in, n);
			c->long_line_skipped += n;
			return c->long_line_skipped > cap ? NET_LINE_TOO_LONG : NET_LINE_NONE;
		}
		conn_keep_tail(c, in, (size_t)pos.pos);
		evbuffer_drain(in, (size_t)pos.pos + 1);
		c->discarding_line = false;
		conn_progress(c);
	}
	c->long_line_done = false;
	if (c->long_tail_len > 0 && c->long_tail[c->long_tail_len - 1] == '\r')
		c->long_tail_len--;
	buf_reset(&c->line);
	buf_append(&c->line, c->long_tail, c->long_tail_len);
	buf_cstr(&c->line);
	*tail_r = (char *)c->line.data;
	*tail_len_r = c->line.len;
	return NET_LINE_OK;
}

size_t net_conn_read_bytes(struct net_conn *c, size_t max, struct buf *out)
{
	struct evbuffer *in;
	size_t n;

	if (conn_input_blocked(c))
		return 0;
	in = conn_in(c);
	n = evbuffer_get_length(in);
	if (n > max)
		n = max;
	if (n == 0)
		return 0;
	buf_reserve(out, n);
	evbuffer_remove(in, out->data + out->len, n);
	out->len += n;
	conn_progress(c);
	return n;
}

const uint8_t *net_conn_peek(struct net_conn *c, size_t max, size_t *len_r)
{
	struct evbuffer *in;
	size_t n;

	*len_r = 0;
	if (conn_input_blocked(c))
		return NULL;
	in = conn_in(c);
	n = evbuffer_get_length(in);
	if (n > max)
		n = max;
	if (n == 0)
		return NULL;
	*len_r = n;
	return evbuffer_pullup(in, (ssize_t)n);
}

size_t net_conn_skip_bytes(struct net_conn *c, size_t max)
{
	struct evbuffer *in;
	size_t n;

	if (conn_input_blocked(c))
		return 0;
	in = conn_in(c);
	n = evbuffer_get_length(in);
	if (n > max)
		n = max;
	evbuffer_drain(in, n);
	if (n > 0)
		conn_progress(c);
	return n;
}

size_t net_conn_input_length(const struct net_conn *c)
{
	if (c->bev == NULL)
		return 0;
	/* Compressed octets not yet inflated count too: something is pending either way. */
	return evbuffer_get_length(bufferevent_get_input(c->bev)) +
	       (c->z != NULL ? evbuffer_get_length(net_zstream_input_buffer(c->z)) : 0);
}

void net_conn_discard_input(struct net_conn *c)
{
	if (c->bev != NULL) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	if (c->z != NULL) {
		struct evbuffer *plain = net_zstream_input_buffer(c->z);
		evbuffer_drain(plain, evbuffer_get_length(plain));
	}
	c->discarding_line = false;
}

static void conn_pause(struct net_conn *c)
{
	c->paused = true;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
}

void net_conn_pause(struct net_conn *c)
{
	c->paused_by_protocol = true;
	conn_pause(c);
}

/* Lifts net's own pauses (jobs, delays); a pause the protocol asked for stays. */
static void conn_resume(struct net_conn *c)
{
	if (!c->paused || c->closing || c->tls_switch_pending || c->paused_by_protocol)
		return;
	c->paused = false;
	conn_progress(c); /* the client was waiting for us: that time is not idleness */
	if (c->bev == NULL)
		return;
	bufferevent_enable(c->bev, EV_READ);
	/* Bytes that arrived while paused are already buffered; no socket event will announce
	 * them, so ask for a read callback. */
	if (net_conn_input_length(c) > 0)
		bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void net_conn_resume(struct net_conn *c)
{
	c->paused_by_protocol = false;
	conn_resume(c);
}

/* ---------------- writer ---------------- */

/* Called after every write; conn_abort makes every later write a no-op (invariant 5), so the
 * warning is written once per connection however much the session still tries to send. */
static void conn_check_output_cap(struct net_conn *c)
{
	if (net_conn_output_length(c) > LIMIT_OUTPUT_PENDING) {
		log_warn("proto=%s conn=%llu ip=%s msg=\"peer does not read its output; closing\"",
			 c->proto->name, (unsigned long long)c->id, c->peer_ip);
		conn_abort(c);
	}
}

/* Formatted output; with compression it is formatted first, then deflated in one piece. */
static void conn_vprintf(struct net_conn *c, const char *fmt, va_list ap, bool crlf)
{
	struct evbuffer *out;

	if (c->bev == NULL || c->finalized || c->aborted)
		return;
	out = c->z != NULL ? evbuffer_new() : bufferevent_get_output(c->bev);
	if (out == NULL)
		abort();
	evbuffer_add_vprintf(out, fmt, ap);
	if (crlf)
		evbuffer_add(out, "\r\n", 2);
	if (c->z != NULL) {
		size_t n = evbuffer_get_length(out);
		net_zstream_deflate(c->z, evbuffer_pullup(out, (ssize_t)n), n,
				    bufferevent_get_output(c->bev));
		evbuffer_free(out);
	}
	conn_check_output_cap(c);
}

void net_conn_write(struct net_conn *c, const void *data, size_t len)
{
	if (c->bev == NULL || c->finalized || c->aborted || (c->closing && !c->session))
		return;
	if (c->z != NULL)
		net_zstream_deflate(c->z, data, len, bufferevent_get_output(c->bev));
	else
		bufferevent_write(c->bev, data, len);
	conn_check_output_cap(c);
}

void net_conn_write_str(struct net_conn *c, const char *s)
{
	net_conn_write(c, s, strlen(s));
}

void net_conn_printf(struct net_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_vprintf(c, fmt, ap, false);
	va_end(ap);
}

void net_conn_vprintf_line(struct net_conn *c, const char *fmt, va_list ap)
{
	conn_vprintf(c, fmt, ap, true);
}

size_t net_conn_output_length(const struct net_conn *c)
{
	if (c->bev == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void net_conn_want_drain(struct net_conn *c, size_t low)
{
	c->drain_wanted = true;
	c->drain_low = low;
	if (c->bev)
		bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
}

/* ---------------- compression ---------------- */

int net_conn_start_compress(struct net_conn *c)
{
	if (c->z != NULL || c->bev == NULL || c->closing)
		return -1;
	c->z = net_zstream_new();
	return c->z != NULL ? 0 : -1;
}

bool net_conn_compressed(const struct net_conn *c)
{
	return c->z != NULL;
}

/* ---------------- facts ---------------- */

const char *net_conn_peer_ip(const struct net_conn *c)
{
	return c->peer_ip;
}

uint16_t net_conn_peer_port(const struct net_conn *c)
{
	return c->peer_port;
}

uint16_t net_conn_local_port(const struct net_conn *c)
{
	return c->local_port;
}

bool net_conn_is_loopback(const struct net_conn *c)
{
	return c->loopback;
}

bool net_conn_is_tls(const struct net_conn *c)
{
	return c->tls_active;
}

const char *net_conn_tls_description(const struct net_conn *c, char *out, size_t outlen)
{
	if (!c->tls_active || c->ssl == NULL)
		return NULL;
	snprintf(out, outlen, "%s %s", tls_ssl_version(c->ssl), tls_ssl_cipher(c->ssl));
	return out;
}

bool net_conn_plaintext_allowed(const struct net_conn *c, enum plaintext_policy policy)
{
	switch (policy) {
	case PLAINTEXT_ALWAYS:
		return true;
	case PLAINTEXT_LOOPBACK:
		return c->tls_active || c->loopback;
	case PLAINTEXT_NEVER:
		return c->tls_active;
	}
	return false;
}

enum listen_kind net_conn_kind(const struct net_conn *c)
{
	return c->kind;
}

uint64_t net_conn_id(const struct net_conn *c)
{
	return c->id;
}

/* ---------------- timers ---------------- */

/* How often a connection whose pre-login deadline passed during an offloaded job looks again:
 * the job's done() must run on a live session before the farewell. */
#define CONN_DEADLINE_RECHECK_MS 100

static void conn_timer_arm(struct net_conn *c, uint64_t now)
{
	uint64_t due = UINT64_MAX;
	uint64_t wait;

	if (c->timer == NULL)
		return;
	if (c->timeout_seconds > 0)
		due = c->last_progress_ms + c->timeout_seconds * 1000ULL;
	if (c->prelogin_deadline_ms != 0 && c->prelogin_deadline_ms < due)
		due = c->prelogin_deadline_ms;
	if (due == UINT64_MAX) {
		evtimer_del(c->timer);
		return;
	}
	wait = due > now ? due - now : CONN_DEADLINE_RECHECK_MS;
	struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };
	evtimer_add(c->timer, &tv);
}

/* The idle timeout or the pre-login deadline passed: the session says goodbye. */
static void conn_expire(struct net_conn *c)
{
	if (c->implicit_tls_pending || c->session == NULL) {
		conn_abort(c);
		return;
	}
	if (c->proto->timeout)
		c->proto->timeout(c->session);
	if (!c->closing)
		net_conn_close(c);
}

static void conn_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;
	uint64_t now = time_now_ms();

	(void)fd;
	(void)what;
	if (c->closing) /* net_conn_close bounds the flush with its own limit */
		return;
	if (c->prelogin_deadline_ms != 0 && now >= c->prelogin_deadline_ms &&
	    c->jobs_in_flight == 0) {
		static struct log_limiter limiter; /* idle clients by the thousand: not a line each */
		uint64_t suppressed;
		if (log_limiter_allow(&limiter, 10000, &suppressed))
			log_info("proto=%s conn=%llu ip=%s msg=\"pre-login deadline passed; "
				 "closing\" suppressed=%llu",
				 c->proto->name, (unsigned long long)c->id, c->peer_ip,
				 (unsigned long long)suppressed);
		conn_expire(c);
		return;
	}
	if (c->paused) /* a job, a delay, or the session itself: the client waits for us */
		c->last_progress_ms = now;
	else if (c->timeout_seconds > 0 &&
		 now - c->last_progress_ms >= c->timeout_seconds * 1000ULL) {
		conn_expire(c);
		return;
	}
	conn_timer_arm(c, now);
}

void net_conn_set_timeout(struct net_conn *c, uint32_t seconds)
{
	c->timeout_seconds = seconds;
	c->last_progress_ms = time_now_ms();
	conn_timer_arm(c, c->last_progress_ms);
}

void net_conn_end_prelogin(struct net_conn *c)
{
	c->prelogin_deadline_ms = 0; /* the timer re-arms for the idle timeout when it fires */
}

static void conn_delay_fired(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;
	void (*fn)(void *session) = c->delay_fn;

	(void)fd;
	(void)what;
	c->delay_fn = NULL;
	if (c->closing || c->session == NULL)
		return;
	conn_resume(c);
	if (fn)
		fn(c->session);
}

void net_conn_delay(struct net_conn *c, uint32_t ms, void (*fn)(void *session))
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (c->delay_timer == NULL)
		c->delay_timer = evtimer_new(c->worker->base, conn_delay_fired, c);
	c->delay_fn = fn;
	conn_pause(c);
	evtimer_add(c->delay_timer, &tv);
}

/* ---------------- offloaded jobs ---------------- */

struct conn_job {
	struct net_conn *conn;
	void (*work)(void *arg);
	void (*done)(void *session, void *arg);
	void *arg;
};

static void conn_job_done_on_loop(struct net_conn *c, void *arg)
{
	struct conn_job *job = arg;

	c->jobs_in_flight--;
	if (!c->finalized && c->session != NULL) {
		bool was_paused_by_job = c->paused;
		job->done(c->session, job->arg);
		/* done() may have paused again (a new job, a delay) or closed; otherwise resume. */
		if (was_paused_by_job && c->jobs_in_flight == 0 && c->delay_fn == NULL)
			conn_resume(c);
	}
	if (c->jobs_in_flight == 0 && c->peer_watch != NULL) {
		event_free(c->peer_watch);
		c->peer_watch = NULL;
	}
	free(job);
	/* A close requested while the job ran waits for its farewell to be written; the write
	 * callback finalises once the output has drained. An aborted connection (its peer went
	 * away while the job ran) writes nothing more, so it is finalised now. */
	if (c->closing && (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 ||
			   !(bufferevent_get_enabled(c->bev) & EV_WRITE)))
		conn_schedule_finalize(c);
}

static void conn_job_work(void *arg)
{
	struct conn_job *job = arg;

	job->work(job->arg);
}

static void conn_job_complete(void *arg)
{
	struct conn_job *job = arg;
	struct net_conn *c = job->conn;

	/* Back to the connection's own loop; the post carries the job's reference. */
	net_worker_post(c->worker, c, conn_job_done_on_loop, job);
	net_conn_unref(c);
}

static struct conn_job *conn_job_new(struct net_conn *c, void (*work)(void *arg),
				     void (*done)(void *session, void *arg), void *arg)
{
	struct conn_job *job = xcalloc(1, sizeof(*job));

	job->conn = c;
	job->work = work;
	job->done = done;
	job->arg = arg;
	c->jobs_in_flight++;
	net_conn_ref(c);
	return job;
}

void net_conn_offload(struct net_conn *c, void (*work)(void *arg),
		      void (*done)(void *session, void *arg), void *arg)
{
	struct conn_job *job = conn_job_new(c, work, done, arg);

	conn_pause(c);
	net_pool_submit(c->worker->srv->pool, conn_job_work, conn_job_complete, job);
}

/* A paused connection reads nothing, so its peer's EOF would only be seen after the job. A
 * one-shot EV_CLOSED event (EPOLLRDHUP) notices the close without reading the socket, so the
 * input stays where it is. Backends without EV_CLOSED simply never report it. */
static void conn_peer_closed(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;

	(void)fd;
	(void)what;
	atomic_store(&c->gone, true);
}

static void conn_watch_peer(struct net_conn *c)
{
	evutil_socket_t fd = c->bev ? bufferevent_getfd(c->bev) : -1;

	if (fd < 0 || c->peer_watch != NULL)
		return;
	c->peer_watch = event_new(c->worker->base, fd, EV_CLOSED, conn_peer_closed, c);
	if (c->peer_watch != NULL && event_add(c->peer_watch, NULL) < 0) {
		event_free(c->peer_watch);
		c->peer_watch = NULL;
	}
}

void net_conn_offload_bulk(struct net_conn *c, void (*work)(void *arg),
			   void (*done)(void *session, void *arg), void *arg)
{
	struct conn_job *job = conn_job_new(c, work, done, arg);

	conn_pause(c);
	conn_watch_peer(c);
	net_pool_submit_bulk(c->worker->srv->pool, conn_job_work, conn_job_complete, job);
}

/* ---------------- cross-thread posts ---------------- */

struct conn_post {
	void (*fn)(void *session, void *arg);
	void *arg;
};

static void conn_post_run(struct net_conn *c, void *arg)
{
	struct conn_post *p = arg;

	p->fn(c->finalized ? NULL : c->session, p->arg);
	free(p);
}

void net_conn_post(struct net_conn *c, void (*fn)(void *session, void *arg), void *arg)
{
	struct conn_post *p = xmalloc(sizeof(*p));

	p->fn = fn;
	p->arg = arg;
	net_worker_post(c->worker, c, conn_post_run, p);
}

/* ---------------- shutdown ---------------- */

void net_conn_shutdown_all(struct net_worker *w)
{
	struct net_conn *c = w->conns;

	while (c != NULL) {
		struct net_conn *next = c->next;
		net_conn_close(c);
		c = next;
	}
}
