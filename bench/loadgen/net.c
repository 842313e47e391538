/* Client connections of the load generator: connect, reconnect after errors, line reading and
 * operation accounting. Every client lives on its thread's event loop; nothing here blocks. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

uint64_t lg_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int lg_loopback_addr(const char *host, unsigned port, struct sockaddr_storage *ss_r,
		     socklen_t *len_r)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss_r;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss_r;

	if (port == 0 || port > 65535)
		return -1;
	memset(ss_r, 0, sizeof(*ss_r));
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		/* 127.0.0.0/8 only: the generator must never load a machine other than this one. */
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len_r = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len_r = sizeof(*sin6);
		return 0;
	}
	return -1;
}

uint64_t lg_rand(uint64_t *state)
{
	/* xorshift64*: fast, deterministic per client, good enough to pick messages and sizes. */
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

unsigned lg_rand_below(uint64_t *state, unsigned n)
{
	return n == 0 ? 0 : (unsigned)(lg_rand(state) % n);
}

uint32_t lg_src_addr(unsigned k)
{
	k %= LG_MAX_SRC_ADDRS;
	return (127u << 24) | (1u << 16) | ((k / 254) << 8) | (1 + k % 254);
}

/* A socket bound to the client's own 127/8 source. One (source, destination) pair has only
 * the ephemeral port range (about 28,000 ports), and the server limits connections per
 * address, so many idle connections must come from many addresses. Returns -1 with errno. */
static evutil_socket_t client_bound_socket(const struct lg_client *c)
{
	struct sockaddr_in src;
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(c->src_ip);
	/* The port is then picked at connect() for the whole 4-tuple, not at bind() for the
	 * address alone (Linux 4.2+; harmless where unknown). */
#ifdef IP_BIND_ADDRESS_NO_PORT
	int one = 1;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
	if (bind(fd, (const struct sockaddr *)&src, sizeof(src)) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);

static void client_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg_client *c = arg;

	(void)fd;
	(void)what;
	if (!c->th->stopping && !c->finished)
		lg_client_connect(c);
}

struct lg_client *lg_client_new(struct lg_thread *th, const struct lg_proto *proto, unsigned id,
				const struct sockaddr *addr, socklen_t addr_len)
{
	struct lg_client *c = xcalloc(1, sizeof(*c));

	c->th = th;
	c->proto = proto;
	c->id = id;
	c->addr = addr;
	c->addr_len = addr_len;
	c->rng = (th->opt->seed ^ ((uint64_t)id + 1) * 0x9E3779B97F4A7C15ULL) | 1;
	c->retry_ev = evtimer_new(th->base, client_retry_cb, c);
	if (c->retry_ev == NULL)
		abort();
	return c;
}

static void client_close_bev(struct lg_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

void lg_client_free(struct lg_client **cp)
{
	struct lg_client *c = *cp;

	if (c == NULL)
		return;
	client_close_bev(c);
	if (c->retry_ev != NULL)
		event_free(c->retry_ev);
	if (c->pending != NULL)
		evbuffer_free(c->pending);
	free(c);
	*cp = NULL;
}

void lg_client_connect(struct lg_client *c)
{
	struct lg_thread *th = c->th;
	struct timeval tv;
	int one = 1;

	evutil_socket_t fd = -1;

	client_close_bev(c);
	if (c->src_ip != 0 && c->addr->sa_family == AF_INET) {
		fd = client_bound_socket(c);
		if (fd < 0) {
			/* EMFILE and EADDRNOTAVAIL end up here: counted, not fatal. */
			lg_client_fail(c, strerror(errno));
			return;
		}
	}
	c->bev = bufferevent_socket_new(th->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		abort();
	bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
	/* libevent reads 4 KiB per callback by default; bulk downloads (RETR, FETCH BODY[])
	 * would cost the generator a system call per 4 KiB and make it the bottleneck. */
	bufferevent_set_max_single_read(c->bev, 256 * 1024);
	if (!(c->flags & LG_CLIENT_NO_TIMEOUT)) {
		tv.tv_sec = (time_t)th->opt->timeout;
		tv.tv_usec = (suseconds_t)((th->opt->timeout - (double)tv.tv_sec) * 1e6);
		bufferevent_set_timeouts(c->bev, &tv, &tv);
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = 0;
	c->lit_left = 0;
	c->in_cont = false;
	c->scan_off = 0;
	c->t_session = lg_now_us();
	c->t_op = c->t_session;
	if (bufferevent_socket_connect(c->bev, c->addr, (int)c->addr_len) < 0) {
		lg_client_fail(c, "connect");
		return;
	}
	/* Commands are small and lock-step: Nagle would add delay to every round trip. */
	fd = bufferevent_getfd(c->bev);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->proto->begin(c);
}

static void client_notify_closed(struct lg_client *c)
{
	if (c->on_event != NULL)
		c->on_event(c, LG_EV_CLOSED, 0);
}

void lg_client_fail(struct lg_client *c, const char *why)
{
	struct lg_thread *th = c->th;
	struct timeval tv = { 0, LG_RETRY_MS * 1000 };

	client_close_bev(c);
	if (th->stopping)
		return;
	th->st.errors++;
	if (th->opt->verbose)
		fprintf(stderr, "loadgen: client %u (%s): %s\n", c->id, c->proto->name, why);
	if (c->flags & LG_CLIENT_ONESHOT) {
		c->finished = true;
		client_notify_closed(c);
		return;
	}
	c->sessions++;
	evtimer_add(c->retry_ev, &tv);
}

void lg_client_finish(struct lg_client *c)
{
	client_close_bev(c);
	c->sessions++;
	c->th->st.sessions++;
	if ((c->flags & LG_CLIENT_ONESHOT) || c->finished) {
		c->finished = true;
		client_notify_closed(c);
		return;
	}
	if (!c->th->stopping)
		lg_client_connect(c);
}

void lg_send(struct lg_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

void lg_send_bytes(struct lg_client *c, const void *data, size_t len)
{
	evbuffer_add(bufferevent_get_output(c->bev), data, len);
}

char *lg_readline(struct lg_client *c, size_t *len_r, int *err_r)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char *line = evbuffer_readln(in, len_r, EVBUFFER_EOL_CRLF);

	*err_r = 0;
	if (line == NULL && evbuffer_get_length(in) > LG_MAX_LINE)
		*err_r = 1;
	if (line != NULL && *len_r > LG_MAX_LINE) {
		free(line);
		*err_r = 1;
		return NULL;
	}
	return line;
}

void lg_count_op(struct lg_client *c, uint64_t latency_us)
{
	struct lg_thread *th = c->th;
	struct lg_shared *sh = th->shared;

	if (th->stopping)
		return;
	th->st.ops++;
	lg_hist_add(&th->st.lat, latency_us);
	if (sh->opt->max_ops > 0 &&
	    atomic_fetch_add(&sh->ops_total, 1) + 1 >= sh->opt->max_ops) {
		atomic_store(&sh->done, true);
		lg_thread_stop(th);
	}
}

void lg_thread_stop(struct lg_thread *th)
{
	if (th->stopping)
		return;
	th->stopping = true;
	th->end_us = lg_now_us();
	event_base_loopexit(th->base, NULL);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct lg_client *c = arg;

	(void)bev;
	if (c->th->stopping)
		return;
	if (c->proto->input(c) < 0)
		lg_client_fail(c, "protocol error or unexpected reply");
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct lg_client *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT)
		lg_client_fail(c, "timeout");
	else if (what & BEV_EVENT_EOF)
		lg_client_fail(c, "connection closed by server");
	else
		lg_client_fail(c, strerror(EVUTIL_SOCKET_ERROR()));
}
