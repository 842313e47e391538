/* The HTTP listeners on libevent's evhttp: one evhttp per listener kind (plain, TLS,
 * metrics-only), all on one event loop in one thread of their own. evhttp parses the
 * requests within the limits of core/limits.h; this file routes them (route.c answers) and
 * enforces the request deadline that evhttp lacks.
 *
 * Why a deadline of our own: evhttp's timeout is an idle timeout that every arriving octet
 * resets, so a client sending one octet a second would hold its connection for ever. Each
 * connection is tracked from its creation (bev_new): it holds a reference on the connection's
 * bufferevent so the pointer stays valid, and a sweep each second shuts down the socket of a
 * connection whose request has not been answered within LIMIT_HTTP_REQUEST_SECONDS (evhttp
 * then sees end of file and frees the connection) and lets go of the ones evhttp has freed
 * (their callbacks are gone). Answering a request restarts its connection's deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "../tls/tls.h"
#include "http.h"
#include "http_internal.h"

enum http_flavour { HTTP_PLAIN, HTTP_TLS, HTTP_METRICS, HTTP_FLAVOURS };

/* One connection under the request deadline. Holds a reference on bev. */
struct http_tracked {
	struct bufferevent *bev;
	uint64_t deadline_ms;
	struct http_tracked *next;
};

struct http_listener {
	struct http_server *srv;
	enum http_flavour flavour;
	struct evhttp *evhttp;
};

struct http_server {
	const struct config *cfg;
	struct tls_context *tls;
	struct http_hooks hooks;
	struct event_base *base;
	struct event *sweep_event;
	struct http_listener listeners[HTTP_FLAVOURS];
	struct http_tracked *tracked;
	pthread_t thread;
	bool running;
};

static const enum listen_kind flavour_kind[HTTP_FLAVOURS] = { LISTEN_HTTP, LISTEN_HTTPS,
							      LISTEN_METRICS };

/* ---- the request deadline ---- */

static void track(struct http_server *srv, struct bufferevent *bev)
{
	struct http_tracked *t = xcalloc(1, sizeof(*t));

	bufferevent_incref(bev);
	t->bev = bev;
	t->deadline_ms = time_now_ms() + LIMIT_HTTP_REQUEST_SECONDS * 1000u;
	t->next = srv->tracked;
	srv->tracked = t;
}

/* A request was answered: its connection may take as long again for the next one. */
void http_server_request_done(struct http_server *srv, struct bufferevent *bev)
{
	for (struct http_tracked *t = srv->tracked; t != NULL; t = t->next)
		if (t->bev == bev)
			t->deadline_ms = time_now_ms() + LIMIT_HTTP_REQUEST_SECONDS * 1000u;
}

/* evhttp frees a connection's bufferevent with bufferevent_free, which clears its callbacks;
 * our reference kept the object itself. */
static bool freed_by_evhttp(struct bufferevent *bev)
{
	bufferevent_event_cb event_cb = NULL;

	bufferevent_getcb(bev, NULL, NULL, &event_cb, NULL);
	return event_cb == NULL;
}

static void sweep(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;
	uint64_t now = time_now_ms();

	(void)fd;
	(void)what;
	for (struct http_tracked **tp = &srv->tracked; *tp != NULL;) {
		struct http_tracked *t = *tp;

		if (freed_by_evhttp(t->bev)) {
			*tp = t->next;
			bufferevent_decref(t->bev);
			free(t);
			continue;
		}
		if (now >= t->deadline_ms) {
			evutil_socket_t sock = bufferevent_getfd(t->bev);

			/* logged before the shutdown: once the peer sees the close, the line is there */
			log_info("proto=http msg=\"request deadline passed; closing\"");
			if (sock >= 0)
				shutdown(sock, SHUT_RDWR);
			t->deadline_ms = UINT64_MAX; /* once; evhttp frees it on the next read */
		}
		tp = &t->next;
	}
}

/* ---- connections ---- */

static struct bufferevent *bev_new(struct event_base *base, void *arg)
{
	struct http_listener *l = arg;
	struct bufferevent *bev;

	if (l->flavour == HTTP_TLS) {
		SSL *ssl = tls_context_new_ssl(l->srv->tls);

		if (ssl == NULL)
			abort();
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL)
		abort();
	track(l->srv, bev);
	return bev;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_listener *l = arg;

	http_route(l->srv->cfg, &l->srv->hooks, l->flavour == HTTP_METRICS, req);
	http_server_request_done(l->srv,
				 evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)));
}

/* ---- binding ---- */

static int bind_socket(const struct listen_addr *la, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int one = 1, zero = 0;
	bool any = strcmp(la->host, "*") == 0;

	sslen = listen_addr_sockaddr(la, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket for %s:%u: %s", la->host, la->port, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", la->host, la->port,
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int listener_open(struct http_server *srv, enum http_flavour flavour, char *err,
			 size_t errlen)
{
	const struct listen_list *list = &srv->cfg->listen[flavour_kind[flavour]];
	struct http_listener *l = &srv->listeners[flavour];

	if (list->count == 0)
		return 0;
	l->srv = srv;
	l->flavour = flavour;
	l->evhttp = evhttp_new(srv->base);
	if (l->evhttp == NULL)
		abort();
	evhttp_set_max_headers_size(l->evhttp, LIMIT_HTTP_HEADERS);
	evhttp_set_max_body_size(l->evhttp, LIMIT_HTTP_BODY);
	evhttp_set_timeout(l->evhttp, LIMIT_HTTP_IDLE_SECONDS);
	evhttp_set_allowed_methods(l->evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_default_content_type(l->evhttp, "text/plain; charset=utf-8");
	evhttp_set_bevcb(l->evhttp, bev_new, l);
	evhttp_set_gencb(l->evhttp, on_request, l);
	for (size_t i = 0; i < list->count; i++) {
		int fd = bind_socket(&list->addrs[i], err, errlen);

		if (fd < 0)
			return -1;
		if (evhttp_accept_socket_with_handle(l->evhttp, fd) == NULL) {
			snprintf(err, errlen, "[listen] %s: cannot serve %s:%u",
				 config_listen_name(flavour_kind[flavour]), list->addrs[i].host,
				 list->addrs[i].port);
			close(fd);
			return -1;
		}
	}
	return 0;
}

struct http_server *http_server_new(const struct config *cfg, struct tls_context *tls,
				    char *err, size_t errlen)
{
	struct http_server *srv;

	err[0] = '\0';
	if (cfg->listen[LISTEN_HTTP].count == 0 && cfg->listen[LISTEN_HTTPS].count == 0 &&
	    cfg->listen[LISTEN_METRICS].count == 0)
		return NULL;
	if (cfg->listen[LISTEN_HTTPS].count > 0 && tls == NULL) {
		snprintf(err, errlen, "[listen] https needs [tls] cert and key");
		return NULL;
	}
	srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->tls = tls;
	srv->base = event_base_new();
	if (srv->base == NULL)
		abort();
	for (int f = 0; f < HTTP_FLAVOURS; f++) {
		if (listener_open(srv, (enum http_flavour)f, err, errlen) < 0) {
			http_server_free(&srv);
			return NULL;
		}
	}
	srv->sweep_event = event_new(srv->base, -1, EV_PERSIST, sweep, srv);
	struct timeval second = { 1, 0 };
	event_add(srv->sweep_event, &second);
	return srv;
}

static void *http_thread(void *arg)
{
	struct http_server *srv = arg;

	event_base_dispatch(srv->base);
	return NULL;
}

int http_server_start(struct http_server *srv, const struct http_hooks *hooks)
{
	srv->hooks = *hooks;
	if (pthread_create(&srv->thread, NULL, http_thread, srv) != 0)
		return -1;
	srv->running = true;
	return 0;
}

void http_server_free(struct http_server **srvp)
{
	struct http_server *srv = *srvp;

	if (srv == NULL)
		return;
	if (srv->running) {
		event_base_loopbreak(srv->base);
		pthread_join(srv->thread, NULL);
	}
	for (int f = 0; f < HTTP_FLAVOURS; f++)
		if (srv->listeners[f].evhttp != NULL)
			evhttp_free(srv->listeners[f].evhttp);
	while (srv->tracked != NULL) {
		struct http_tracked *t = srv->tracked;
		srv->tracked = t->next;
		bufferevent_decref(t->bev);
		free(t);
	}
	if (srv->sweep_event != NULL)
		event_free(srv->sweep_event);
	event_base_free(srv->base);
	free(srv);
	*srvp = NULL;
}
