/* Shared definitions of the benchmark load generator: options, per-thread state, clients,
 * statistics and the small helpers every protocol driver uses. One libevent loop per thread;
 * clients are state machines on that loop, never threads of their own. */
#ifndef ROOST_BENCH_LOADGEN_H
#define ROOST_BENCH_LOADGEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "../../src/core/core.h"

/* Hard ceilings: every loop of the generator is bounded by one of these or by the clock. */
#define LG_MAX_CLIENTS 100000
#define LG_MAX_THREADS 64
#define LG_MAX_SECS 3600.0
#define LG_MAX_SAMPLES 10000
#define LG_MAX_USERS 1000000
#define LG_MAX_LINE 65536                /* a reply line longer than this is a protocol error */
#define LG_MAX_LITERAL (256u << 20)      /* largest IMAP literal accepted in a response */
#define LG_MAX_MSG_SIZE (64u << 20)      /* largest message generated or retrieved */
#define LG_MAX_NAME 256                  /* user names and addresses */
#define LG_HIST_BUCKETS 2048
#define LG_RETRY_MS 100                  /* pause before reconnecting after an error */
#define LG_STATUS_POLL_MS 200            /* mailbox count polling period (smtp-deliver --track) */
#define LG_MAX_SRC_ADDRS 65024           /* 127.1.0.1 .. 127.1.255.254 (254 hosts x 256) */
#define LG_MAX_LOGINS 100000

enum lg_workload { LG_SMTP_DELIVER, LG_IMAP_MIXED, LG_IMAP_IDLE, LG_POP3_RETR, LG_IMAP_FILL };

struct lg_options {
	enum lg_workload workload;
	const char *workload_name;
	const char *host;
	unsigned port, smtp_port, track_port;
	struct sockaddr_storage addr, smtp_addr, track_addr;
	socklen_t addr_len, smtp_addr_len, track_addr_len;
	unsigned clients, threads;
	double secs;
	uint64_t max_ops;
	unsigned user_lo, user_hi;
	const char *user_fmt, *rcpt_fmt, *password, *from, *domain;
	size_t fixed_size;       /* 0: the size mix of msg.c */
	unsigned msgs_per_session, rcpts_per_msg;
	unsigned fill;           /* imap-fill: top each INBOX up to this many messages */
	int server_pid;          /* imap-idle: measure this process tree's memory */
	unsigned samples, parallel;
	unsigned src_addrs;      /* imap-idle: spread idle connections over this many sources */
	bool push_fanout;        /* imap-idle: time EXISTS on every idler of the recipient */
	unsigned logins;         /* imap-idle: fresh sequential logins timed while idling */
	bool warm;               /* imap-idle: one connection per user first, memory read then */
	double gap, settle, hold, timeout, push_timeout, drain;
	uint64_t seed;
	bool verbose;
};

/* Log-linear latency histogram in microseconds; merges by addition. */
struct lg_hist {
	uint64_t count;
	uint64_t bucket[LG_HIST_BUCKETS];
};

struct lg_stats {
	uint64_t ops, errors, no_replies, bytes, sessions;
	struct lg_hist lat;
};

/* State shared by all threads of one run; written only through atomics after start. */
struct lg_shared {
	const struct lg_options *opt;
	struct lg_msgpool *pool;
	uint64_t start_us, deadline_us;
	_Atomic uint64_t ops_total;
	_Atomic uint64_t accepted;   /* smtp-deliver: messages answered 250 after DATA */
	_Atomic bool done;           /* --ops reached, or the run is over */
	_Atomic unsigned threads_running;
};

struct lg_client;
struct lg_thread;

/* What a protocol driver provides: begin a session on a fresh connection (the greeting is still
 * to come) and consume input. input returns 0 to wait for more, -1 on a protocol error (the
 * connection is dropped and counted as an error), 1 when it has closed or finished the client. */
struct lg_proto {
	const char *name;
	void (*begin)(struct lg_client *c);
	int (*input)(struct lg_client *c);
};

enum lg_client_flags {
	LG_CLIENT_ONESHOT = 1, /* one session, no reconnect (idle connections, push sender) */
	LG_CLIENT_NO_TIMEOUT = 2,
};

struct lg_client {
	struct lg_thread *th;
	const struct lg_proto *proto;
	unsigned id;             /* 0..clients-1 across all threads */
	unsigned flags;
	struct bufferevent *bev;
	struct event *retry_ev;
	const struct sockaddr *addr;
	socklen_t addr_len;
	uint32_t src_ip;         /* IPv4 source to bind (host order); 0: the kernel's choice */
	uint64_t rng;
	int state;
	bool finished;           /* will not connect again */
	uint64_t t_op;           /* start of the operation in flight, microseconds */
	uint64_t t_session;
	unsigned user;           /* user number of the current session */
	uint64_t sessions;
	/* SMTP */
	unsigned msgs_in_session, rcpt_sent;
	uint64_t t_dot;          /* when the final dot of the message in flight was queued */
	/* IMAP */
	unsigned tag;
	unsigned step;
	uint32_t exists;
	uint32_t watch_base;     /* imap-idle --push-fanout: EXISTS count when the sample began */
	unsigned watch_sample;   /* that sample's number + 1; 0 when not watched */
	size_t lit_left;
	bool in_cont;
	uint32_t status_messages;
	bool status_valid;
	struct evbuffer *pending; /* IMAP APPEND: the message waiting for the continuation */
	/* POP3 */
	uint32_t pop_count, pop_next;
	size_t scan_off;
	/* owner hooks (imap-idle, tracker); may be NULL */
	void (*on_event)(struct lg_client *c, int event, uint64_t value);
	void *owner;
};

/* Events reported to on_event. */
enum {
	LG_EV_IDLING, LG_EV_EXISTS, LG_EV_ACCEPTED, LG_EV_CLOSED, LG_EV_STATUS, LG_EV_LOGGED_IN
};

struct lg_thread {
	struct lg_shared *shared;
	const struct lg_options *opt;
	unsigned index;
	struct event_base *base;
	struct lg_client **clients;
	unsigned nclients;
	struct lg_stats st;
	uint64_t end_us;
	unsigned live;           /* imap-fill: clients with users left to fill */
	bool stopping;
	struct event *deadline_ev, *tick_ev;
};

/* ---- net.c: connections ---- */
uint64_t lg_now_us(void);
/* Resolves host (an IPv4 127/8 or ::1 literal, or "localhost") and port; -1 for anything that
 * is not a loopback address. */
int lg_loopback_addr(const char *host, unsigned port, struct sockaddr_storage *ss_r,
		     socklen_t *len_r);
/* Source address number k (0..LG_MAX_SRC_ADDRS-1) in host order: 127.1.C.D, D never 0 or 255. */
uint32_t lg_src_addr(unsigned k);
struct lg_client *lg_client_new(struct lg_thread *th, const struct lg_proto *proto, unsigned id,
				const struct sockaddr *addr, socklen_t addr_len);
void lg_client_free(struct lg_client **c);
void lg_client_connect(struct lg_client *c);
/* Drops the connection after an error, counts it and reconnects later unless one-shot. */
void lg_client_fail(struct lg_client *c, const char *why);
/* Ends a session normally; reconnects at once unless one-shot or stopping. */
void lg_client_finish(struct lg_client *c);
void lg_send(struct lg_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lg_send_bytes(struct lg_client *c, const void *data, size_t len);
/* Next CRLF line of input (malloc'd, caller frees) or NULL: need more, or *err_r set when a
 * line outgrew LG_MAX_LINE. */
char *lg_readline(struct lg_client *c, size_t *len_r, int *err_r);
/* Records one completed operation; stops the run when --ops is reached. */
void lg_count_op(struct lg_client *c, uint64_t latency_us);
void lg_thread_stop(struct lg_thread *th);
uint64_t lg_rand(uint64_t *state);
unsigned lg_rand_below(uint64_t *state, unsigned n);

/* ---- stats.c ---- */
void lg_hist_add(struct lg_hist *h, uint64_t value_us);
void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from);
/* Value (microseconds) at percentile p (0..100); 0 when empty. */
uint64_t lg_hist_percentile(const struct lg_hist *h, double p);
void lg_stats_merge(struct lg_stats *into, const struct lg_stats *from);

/* ---- msg.c: users and messages ---- */
/* Checks that fmt holds at most one "%d" and no other '%', and no quote, backslash or line
 * break (names go into IMAP quoted strings and SMTP paths). */
int lg_name_fmt_check(const char *fmt);
/* Writes fmt with "%d" replaced by n into out (cap bytes); -1 when it does not fit. */
int lg_name_format(const char *fmt, unsigned n, char *out, size_t cap);
struct lg_msgpool *lg_msgpool_new(size_t fixed_size, uint64_t seed);
void lg_msgpool_free(struct lg_msgpool **pool);
/* Appends a complete message (headers then body, CRLF lines, no line starting with '.') to out;
 * size from the mix unless the pool has a fixed size, small = the smallest class. */
void lg_msg_build(const struct lg_msgpool *pool, struct evbuffer *out, uint64_t *rng,
		  const char *from, const char *to, uint64_t serial, bool small);
size_t lg_msg_mean_size(const struct lg_msgpool *pool);

/* ---- protocols ---- */
extern const struct lg_proto lg_proto_smtp;
extern const struct lg_proto lg_proto_pop3;
extern const struct lg_proto lg_proto_imap_mixed;
extern const struct lg_proto lg_proto_imap_fill;
extern const struct lg_proto lg_proto_imap_idle;
extern const struct lg_proto lg_proto_imap_status;
/* Greeting, LOGIN (reports LG_EV_LOGGED_IN with the time of the OK), LOGOUT. */
extern const struct lg_proto lg_proto_imap_login;
/* Sends the next STATUS poll of a tracker connection that has logged in. */
void lg_imap_status_poll(struct lg_client *c);
/* The login name / recipient address of user n. */
void lg_user_login(const struct lg_options *opt, unsigned n, char *out, size_t cap);
void lg_user_rcpt(const struct lg_options *opt, unsigned n, char *out, size_t cap);

/* ---- idle.c: the imap-idle workload (connections, memory, push latency) ---- */
int lg_run_idle(struct lg_shared *shared);

/* ---- procmem.c ---- */
/* Sums RSS and PSS (KiB) over pid and all its descendants; -1 when pid is not readable. */
int lg_procmem(int pid, unsigned *nproc_r, uint64_t *rss_kib_r, uint64_t *pss_kib_r);

#endif
