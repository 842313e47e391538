/* The server: binds the configured listeners on the main loop, accepts connections there and
 * hands each one to a worker loop (round robin), each worker running on its own thread. The
 * main loop also owns the signals: SIGTERM/SIGINT stop, SIGHUP reloads (certificates).
 *
 * Running out of descriptors: connections beyond max_connections (set below the descriptor
 * limit) are refused with the protocol's busy line at accept; should accept() fail anyway,
 * the listeners pause with a growing backoff instead of retrying in a busy loop.
 *
 * Shutdown order: listeners closed -> each worker closes its connections (flushing what it
 * can, at most a few seconds) and leaves its loop -> worker threads joined -> pool drained. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "net_internal.h"

#define NET_SHUTDOWN_GRACE_SECONDS 5

/* ---------------- worker loops ---------------- */

void net_worker_post(struct net_worker *w, struct net_conn *conn,
		     void (*fn)(struct net_conn *conn, void *arg), void *arg)
{
	struct net_task *t = xmalloc(sizeof(*t));

	t->next = NULL;
	t->conn = conn;
	t->fn = fn;
	t->arg = arg;
	if (conn)
		net_conn_ref(conn);
	pthread_mutex_lock(&w->task_lock);
	if (w->tasks_tail)
		w->tasks_tail->next = t;
	else
		w->tasks_head = t;
	w->tasks_tail = t;
	pthread_mutex_unlock(&w->task_lock);
	event_active(w->task_event, EV_READ, 0);
}

static void worker_run_tasks(evutil_socket_t fd, short what, void *arg)
{
	struct net_worker *w = arg;
	struct net_task *t;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->task_lock);
	t = w->tasks_head;
	w->tasks_head = w->tasks_tail = NULL;
	pthread_mutex_unlock(&w->task_lock);
	while (t != NULL) {
		struct net_task *next = t->next;
		t->fn(t->conn, t->arg);
		if (t->conn)
			net_conn_unref(t->conn);
		free(t);
		t = next;
	}
}

struct accepted_socket {
	int fd;
	enum listen_kind kind;
	socklen_t addrlen;
	struct sockaddr_storage addr;
};
struct worker_accept_task {
	struct net_worker *worker;
	struct accepted_socket sock;
};

static void worker_accept(struct net_conn *unused, void *arg)
{
	struct worker_accept_task *t = arg;

	(void)unused;
	if (t->worker->stopping) {
		close(t->sock.fd);
		net_server_connection_gone(t->worker->srv);
	} else {
		net_conn_accept(t->worker, t->sock.fd, (struct sockaddr *)&t->sock.addr,
				t->sock.addrlen, t->sock.kind);
	}
	free(t);
}

static void worker_begin_shutdown(struct net_conn *unused, void *arg)
{
	struct net_worker *w = arg;
	struct timeval grace = { NET_SHUTDOWN_GRACE_SECONDS, 0 };

	(void)unused;
	w->stopping = true;
	net_conn_shutdown_all(w);
	if (w->conn_count == 0)
		event_base_loopbreak(w->base);
	else
		event_base_loopexit(w->base, &grace);
}

static void *worker_main(void *arg)
{
	struct net_worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

/* ---------------- listeners ---------------- */

void net_server_connection_gone(struct net_server *srv)
{
	atomic_fetch_sub(&srv->live_connections, 1);
}

/* At max_connections: answer with the protocol's busy line and close at once, on the main
 * loop, so that the client learns it now instead of waiting in the kernel's queue, and the
 * descriptor is back before the next accept. The reserve kept below the descriptor limit
 * pays for this one. */
static void listener_refuse_busy(struct net_server *srv, enum listen_kind kind, int fd,
				 const struct sockaddr *addr)
{
	static struct log_limiter limiter;
	const struct net_protocol *proto = srv->protocols[kind];
	const char *line = proto->busy_line ? proto->busy_line : proto->refuse_line;
	uint64_t suppressed;

	if (!net_kind_is_implicit_tls(kind) && line != NULL) {
		ssize_t ignored = write(fd, line, strlen(line));
		(void)ignored;
	}
	close(fd);
	if (log_limiter_allow(&limiter, 10000, &suppressed)) {
		char ip[64] = "unknown";
		if (addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, ip,
				  sizeof(ip));
		else if (addr->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, ip,
				  sizeof(ip));
		log_warn("proto=%s ip=%s msg=\"connection refused: server at max_connections\" "
			 "max_connections=%u suppressed=%llu",
			 proto->name, ip, srv->opts.max_connections, (unsigned long long)suppressed);
	}
}

static void listener_accept(struct evconnlistener *listener, evutil_socket_t fd,
			    struct sockaddr *addr, int addrlen, void *arg)
{
	struct net_listener_binding *b = arg;
	struct net_server *srv = b->srv;

	(void)listener;
	srv->accept_backoff_ms = 0;
	if (atomic_fetch_add(&srv->live_connections, 1) >= srv->opts.max_connections) {
		atomic_fetch_sub(&srv->live_connections, 1);
		listener_refuse_busy(srv, b->kind, fd, addr);
		return;
	}

	unsigned idx = atomic_fetch_add(&srv->next_worker, 1) % (unsigned)srv->worker_count;
	struct worker_accept_task *t = xcalloc(1, sizeof(*t));

	t->worker = &srv->workers[idx];
	t->sock.fd = fd;
	t->sock.kind = b->kind;
	t->sock.addrlen = (socklen_t)addrlen;
	if ((size_t)addrlen <= sizeof(t->sock.addr))
		memcpy(&t->sock.addr, addr, (size_t)addrlen);
	net_worker_post(t->worker, NULL, worker_accept, t);
}

static void listeners_set_enabled(struct net_server *srv, bool enabled)
{
	for (size_t i = 0; i < srv->binding_count; i++) {
		if (srv->bindings[i].listener == NULL)
			continue;
		if (enabled)
			evconnlistener_enable(srv->bindings[i].listener);
		else
			evconnlistener_disable(srv->bindings[i].listener);
	}
	srv->listeners_paused = !enabled;
}

static void listeners_resume(evutil_socket_t fd, short what, void *arg)
{
	struct net_server *srv = arg;

	(void)fd;
	(void)what;
	/* The backoff stays until an accept succeeds: a failure right away doubles it. */
	listeners_set_enabled(srv, true);
}

/* accept() failed for a reason other than "nothing to accept". Descriptors or memory ran out
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM) and retrying at once would fail the same way: a listener
 * left armed would spin on the pending client and log each failure. So every listener pauses
 * (EMFILE is process-wide), 100 ms doubling to 2 s while it keeps failing; clients wait in
 * the kernel's queue meanwhile. One log line per 10 s at most, with the count held back. */
static void listener_error(struct evconnlistener *listener, void *arg)
{
	static struct log_limiter limiter;
	struct net_listener_binding *b = arg;
	struct net_server *srv = b->srv;
	int err = EVUTIL_SOCKET_ERROR();
	uint64_t suppressed;

	(void)listener;
	if (srv->listeners_paused)
		return;
	srv->accept_backoff_ms = srv->accept_backoff_ms == 0
					 ? LIMIT_ACCEPT_BACKOFF_FIRST_MS
					 : srv->accept_backoff_ms * 2;
	if (srv->accept_backoff_ms > LIMIT_ACCEPT_BACKOFF_MAX_MS)
		srv->accept_backoff_ms = LIMIT_ACCEPT_BACKOFF_MAX_MS;
	listeners_set_enabled(srv, false);
	struct timeval tv = { (time_t)(srv->accept_backoff_ms / 1000),
			      (suseconds_t)(srv->accept_backoff_ms % 1000) * 1000 };
	evtimer_add(srv->resume_event, &tv);
	if (log_limiter_allow(&limiter, 10000, &suppressed))
		log_error("listener=%s msg=\"accept failed; listeners paused\" error=\"%s\" "
			  "pause_ms=%u live_connections=%u suppressed=%llu",
			  config_listen_name(b->kind), evutil_socket_error_to_string(err),
			  srv->accept_backoff_ms, atomic_load(&srv->live_connections),
			  (unsigned long long)suppressed);
}

static int bind_one(struct net_server *srv, enum listen_kind kind, const struct listen_addr *la,
		    char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int family;
	int fd;
	int one = 1;
	int zero = 0;

	sslen = listen_addr_sockaddr(la, &ss);
	family = ss.ss_family;
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) /* "*" serves IPv4 too; an explicit IPv6 address only IPv6 */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, strcmp(la->host, "*") == 0 ? &zero : &one,
			   sizeof(int));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 1024) < 0)
		goto fail;

	/* The slot was reserved by net_server_bind; callbacks keep pointing at it. */
	struct net_listener_binding *b = &srv->bindings[srv->binding_count];
	b->srv = srv;
	b->kind = kind;
	b->listener = evconnlistener_new(srv->main_base, listener_accept, b,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (b->listener == NULL)
		goto fail;
	evconnlistener_set_error_cb(b->listener, listener_error);
	srv->binding_count++;
	log_info("listener=%s addr=%s port=%u msg=listening", config_listen_name(kind), la->host,
		 la->port);
	return 0;
fail:
	snprintf(err, errlen, "cannot listen for %s on %s port %u: %s", config_listen_name(kind),
		 la->host, la->port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int net_server_bind(struct net_server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->opts.cfg;
	size_t total = 0;

	for (int k = 0; k < LISTEN_KIND_COUNT; k++)
		if (srv->protocols[k])
			total += cfg->listen[k].count;
	/* Reserve up front: listener callbacks point into this array. */
	srv->bindings = xcalloc(total ? total : 1, sizeof(*srv->bindings));
	for (int k = 0; k < LISTEN_KIND_COUNT; k++) {
		if (srv->protocols[k] == NULL)
			continue;
		for (size_t i = 0; i < cfg->listen[k].count; i++)
			if (bind_one(srv, (enum listen_kind)k, &cfg->listen[k].addrs[i], err,
				     errlen) < 0)
				return -1;
	}
	return 0;
}

/* ---------------- signals ---------------- */

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct net_server *srv = arg;

	(void)what;
	log_info("signal=%d msg=\"shutting down\"", (int)sig);
	net_server_stop(srv);
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	struct net_server *srv = arg;

	(void)sig;
	(void)what;
	log_info("signal=HUP msg=reloading");
	if (srv->opts.reload)
		srv->opts.reload(srv->opts.reload_ctx);
}

/* ---------------- lifecycle ---------------- */

struct net_server *net_server_new(const struct net_server_options *opts)
{
	struct net_server *srv;
	static bool threads_enabled; /* process-wide libevent setting, made once before threads */

	if (!threads_enabled) {
		evthread_use_pthreads();
		threads_enabled = true;
	}
	signal(SIGPIPE, SIG_IGN);
	srv = xcalloc(1, sizeof(*srv));
	srv->opts = *opts;
	srv->main_base = event_base_new();
	if (srv->main_base == NULL)
		abort();
	srv->worker_count = opts->workers < 1 ? 1 : opts->workers;
	srv->workers = xcalloc((size_t)srv->worker_count, sizeof(*srv->workers));
	for (int i = 0; i < srv->worker_count; i++) {
		struct net_worker *w = &srv->workers[i];
		w->srv = srv;
		w->index = i;
		w->base = event_base_new();
		if (w->base == NULL)
			abort();
		pthread_mutex_init(&w->task_lock, NULL);
		w->task_event = event_new(w->base, -1, EV_PERSIST, worker_run_tasks, w);
		/* A persistent event with no fd and no timeout would let the loop exit when it
		 * has nothing else; add it so the loop keeps waiting for tasks. */
		struct timeval forever = { 365 * 86400, 0 };
		event_add(w->task_event, &forever);
	}
	srv->pool = net_pool_new(opts->pool_threads);
	srv->iplimit = net_iplimit_new(opts->connections_per_ip);
	if (srv->opts.max_connections == 0)
		srv->opts.max_connections = UINT32_MAX;
	srv->resume_event = evtimer_new(srv->main_base, listeners_resume, srv);
	if (srv->resume_event == NULL)
		abort();
	return srv;
}

void net_server_set_protocol(struct net_server *srv, enum listen_kind kind,
			     const struct net_protocol *proto, void *protocol_ctx)
{
	srv->protocols[kind] = proto;
	srv->protocol_ctx[kind] = protocol_ctx;
}

int net_server_run(struct net_server *srv)
{
	srv->signal_events[0] = evsignal_new(srv->main_base, SIGTERM, on_stop_signal, srv);
	srv->signal_events[1] = evsignal_new(srv->main_base, SIGINT, on_stop_signal, srv);
	srv->signal_events[2] = evsignal_new(srv->main_base, SIGHUP, on_reload_signal, srv);
	for (int i = 0; i < 3; i++)
		evsignal_add(srv->signal_events[i], NULL);

	for (int i = 0; i < srv->worker_count; i++)
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0)
			abort();
	log_info("msg=\"server ready\" workers=%d", srv->worker_count);
	event_base_dispatch(srv->main_base);

	/* Stop accepting, then let each worker close its connections and leave its loop. */
	evtimer_del(srv->resume_event);
	for (size_t i = 0; i < srv->binding_count; i++) {
		evconnlistener_free(srv->bindings[i].listener);
		srv->bindings[i].listener = NULL;
	}
	for (int i = 0; i < srv->worker_count; i++)
		net_worker_post(&srv->workers[i], NULL, worker_begin_shutdown, &srv->workers[i]);
	for (int i = 0; i < srv->worker_count; i++)
		pthread_join(srv->workers[i].thread, NULL);
	log_info("msg=\"server stopped\"");
	return 0;
}

size_t net_server_connections(struct net_server *srv, enum listen_kind kind)
{
	return atomic_load(&srv->kind_connections[kind]);
}

void net_server_stop(struct net_server *srv)
{
	atomic_store(&srv->stop_requested, true);
	event_base_loopbreak(srv->main_base);
}

void net_server_free(struct net_server **srv_p)
{
	struct net_server *srv = srv_p ? *srv_p : NULL;

	if (srv == NULL)
		return;
	net_pool_free(&srv->pool);
	for (int i = 0; i < srv->worker_count; i++) {
		struct net_worker *w = &srv->workers[i];
		/* Tasks posted after the loop ended (late job completions): run them so that their
		 * memory and references are released. */
		worker_run_tasks(-1, 0, w);
		struct net_conn *c = w->conns;
		while (c) { /* connections that outlived the grace period */
			struct net_conn *next = c->next;
			c->jobs_in_flight = 0;
			net_conn_close(c);
			c = next;
		}
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		event_free(w->task_event);
		pthread_mutex_destroy(&w->task_lock);
		event_base_free(w->base);
	}
	for (int i = 0; i < 3; i++)
		if (srv->signal_events[i])
			event_free(srv->signal_events[i]);
	event_free(srv->resume_event);
	/* Listeners still open: the server never ran (a later bind failed, say). */
	for (size_t i = 0; i < srv->binding_count; i++)
		if (srv->bindings[i].listener)
			evconnlistener_free(srv->bindings[i].listener);
	free(srv->bindings);
	free(srv->workers);
	net_iplimit_free(&srv->iplimit);
	event_base_free(srv->main_base);
	free(srv);
	*srv_p = NULL;
}
