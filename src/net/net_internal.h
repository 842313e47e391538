/* Private structures of the net layer, shared by its files and nobody else. */
#ifndef ROOST_NET_INTERNAL_H
#define ROOST_NET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "net.h"

struct net_worker;

/* A closure queued to a worker's loop from another thread. */
struct net_task {
	struct net_task *next;
	struct net_conn *conn; /* holds a reference; NULL for worker-level tasks */
	void (*fn)(struct net_conn *conn, void *arg);
	void *arg;
};

struct net_listener_binding {
	struct net_server *srv;
	enum listen_kind kind;
	struct evconnlistener *listener;
};

struct net_conn {
	struct net_worker *worker;
	struct net_conn *prev, *next; /* the worker's list of live connections */
	atomic_int refs;
	uint64_t id;
	int fd;
	struct bufferevent *bev;
	void *ssl; /* SSL * while TLS is active or being negotiated */
	enum listen_kind kind;
	const struct net_protocol *proto;
	void *proto_ctx;
	void *session;

	char peer_ip[64];
	uint16_t peer_port;
	uint16_t local_port;
	bool loopback;
	bool tls_active;
	bool tls_switch_pending; /* STARTTLS accepted, waiting for output to drain */
	bool implicit_tls_pending;
	bool paused;
	bool paused_by_protocol; /* net_conn_pause: only net_conn_resume lifts it */
	bool closing;
	bool aborted; /* closed without flushing: output is dropped, nothing more is written */
	bool finalize_scheduled;
	bool finalized; /* closed and session freed; only the memory remains */
	bool discarding_line;
	bool long_line_done;	 /* the over-long line was consumed to its LF already */
	uint64_t long_line_skipped;
	uint8_t long_tail[64];	 /* the last octets of an over-long line (before CR LF) */
	size_t long_tail_len;
	bool ip_counted;
	int jobs_in_flight;
	/* Set on the loop when the connection starts closing or its peer has gone; read by pool
	 * jobs (net_conn_gone) to stop work nobody will receive. */
	atomic_bool gone;
	struct event *peer_watch; /* EV_CLOSED on the socket while a bulk job runs */
	uint32_t timeout_seconds;
	uint64_t last_progress_ms;   /* a complete line or consumed bytes; see conn_timer_fired */
	uint64_t prelogin_deadline_ms; /* 0 once logged in, or when unbounded */
	struct event *timer;	     /* idle timeout and pre-login deadline, one for both */
	size_t drain_low;
	bool drain_wanted;
	struct event *delay_timer;
	void (*delay_fn)(void *session);
	struct buf line;
	struct net_zstream *z; /* COMPRESS=DEFLATE once started, else NULL (compress.c) */
};

struct net_worker {
	struct net_server *srv;
	int index;
	pthread_t thread;
	struct event_base *base;
	struct event *task_event;
	pthread_mutex_t task_lock;
	struct net_task *tasks_head, *tasks_tail;
	struct net_conn *conns;
	size_t conn_count;
	bool stopping;
};

struct net_pool;

struct net_iplimit;
struct net_iplimit *net_iplimit_new(uint32_t max_per_ip);
bool net_iplimit_acquire(struct net_iplimit *lim, const char *ip);
void net_iplimit_release(struct net_iplimit *lim, const char *ip);
void net_iplimit_free(struct net_iplimit **lim);

struct net_server {
	struct net_server_options opts;
	struct event_base *main_base;
	struct net_worker *workers;
	int worker_count;
	atomic_uint next_worker;
	atomic_uint_fast64_t next_conn_id;
	struct net_listener_binding *bindings;
	size_t binding_count;
	const struct net_protocol *protocols[LISTEN_KIND_COUNT];
	void *protocol_ctx[LISTEN_KIND_COUNT];
	struct net_pool *pool;
	struct net_iplimit *iplimit;
	struct event *signal_events[4];
	atomic_bool stop_requested;
	/* Connections from accept to finalisation, against opts.max_connections. Incremented on
	 * the main loop, decremented on the workers. */
	atomic_uint live_connections;
	/* Accept failures (EMFILE...): every listener paused until resume_event; main loop only. */
	struct event *resume_event;
	uint32_t accept_backoff_ms; /* 0 while accepts succeed */
	bool listeners_paused;
	/* Live connections per listener kind, for net_server_connections (any thread). */
	atomic_size_t kind_connections[LISTEN_KIND_COUNT];
};

/* server.c: a connection of srv->live_connections was finalised (any worker thread). */
void net_server_connection_gone(struct net_server *srv);

/* worker.c */
void net_worker_post(struct net_worker *w, struct net_conn *conn,
		     void (*fn)(struct net_conn *conn, void *arg), void *arg);

/* conn.c */
void net_conn_accept(struct net_worker *w, int fd, const struct sockaddr *addr,
		     socklen_t addrlen, enum listen_kind kind);
void net_conn_shutdown_all(struct net_worker *w);
bool net_kind_is_implicit_tls(enum listen_kind kind);

/* compress.c: raw deflate both ways (RFC 4978). The deflater writes compressed octets into
 * OUT; net_zstream_input inflates what COMPRESSED holds (up to a bound ahead of the reader)
 * and returns the plain buffer the readers consume. */
struct net_zstream;
struct net_zstream *net_zstream_new(void);
void net_zstream_free(struct net_zstream **z);
void net_zstream_deflate(struct net_zstream *z, const void *data, size_t len,
			 struct evbuffer *out);
struct evbuffer *net_zstream_input(struct net_zstream *z, struct evbuffer *compressed);
bool net_zstream_failed(const struct net_zstream *z);
/* The plain input buffer, without inflating more. */
struct evbuffer *net_zstream_input_buffer(const struct net_zstream *z);

/* pool.c */
struct net_pool *net_pool_new(int threads);
void net_pool_submit(struct net_pool *pool, void (*work)(void *arg),
		     void (*complete)(void *arg), void *arg);
/* Long work (SEARCH): never on the last free thread, and only when no normal job waits. */
void net_pool_submit_bulk(struct net_pool *pool, void (*work)(void *arg),
			  void (*complete)(void *arg), void *arg);
void net_pool_free(struct net_pool **pool);

#endif
