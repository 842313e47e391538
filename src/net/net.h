/* Connections for the protocol layers: event loops (one per worker thread), listeners, a line
 * and byte reader, buffered output with backpressure, STARTTLS, timers, and a worker pool for
 * slow work (password hashing, fsync). Protocols see only this header: no libevent, no OpenSSL.
 *
 * Ownership: net owns every struct net_conn. A protocol's session is created by its open()
 * callback and freed by its close() callback, which net calls exactly once, on the connection's
 * own loop, after the last offloaded job of the connection has completed. All functions taking
 * a net_conn must be called on that connection's loop thread unless stated otherwise. */
#ifndef ROOST_NET_H
#define ROOST_NET_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../core/core.h"

struct net_conn;
struct net_server;
struct tls_context;

struct net_protocol {
	const char *name; /* "smtp", "imap", ... for logs */
	/* Written raw and the socket closed when the per-IP connection limit refuses a client
	 * (plain listeners only; TLS listeners just close). */
	const char *refuse_line;
	/* Written the same way when the server is at [limits] max_connections; refuse_line
	 * when NULL. */
	const char *busy_line;
	/* A new connection (after the handshake on implicit-TLS listeners). Returns the session;
	 * the session normally writes its greeting here. */
	void *(*open)(struct net_conn *conn, void *protocol_ctx);
	/* Input is available: read with net_conn_read_line / net_conn_read_bytes until they
	 * return 0. */
	void (*input)(void *session);
	/* The STARTTLS handshake completed; input resumes after this returns. */
	void (*tls_ready)(void *session);
	/* No input for the timeout set with net_conn_set_timeout. The session usually writes a
	 * farewell and calls net_conn_close. If it does nothing the connection is closed. */
	void (*timeout)(void *session);
	/* Optional: the output queue drained below what net_conn_want_drain asked for. */
	void (*drained)(void *session);
	/* Last call: free the session. The connection is already closed or closing. */
	void (*close)(void *session);
};

struct net_server_options {
	const struct config *cfg;
	struct tls_context *tls; /* NULL when no certificate is configured */
	int workers;		 /* event loop threads (>= 1) */
	int pool_threads;	 /* threads for offloaded blocking work (>= 1) */
	uint32_t connections_per_ip;
	uint32_t max_connections; /* all listeners together; more are refused at once */
	uint32_t prelogin_seconds; /* connect to net_conn_end_prelogin at most; 0 = unbounded */
	void (*reload)(void *ctx); /* SIGHUP handler (e.g. certificate reload); may be NULL */
	void *reload_ctx;
};

struct net_server *net_server_new(const struct net_server_options *opts);
/* Registers the protocol for a listener kind; kinds with no protocol are not bound. */
void net_server_set_protocol(struct net_server *srv, enum listen_kind kind,
			     const struct net_protocol *proto, void *protocol_ctx);
/* Binds every configured address of every registered kind. -1 with the reason in err. */
int net_server_bind(struct net_server *srv, char *err, size_t errlen);
/* Runs until SIGTERM/SIGINT or net_server_stop; then closes every connection. */
int net_server_run(struct net_server *srv);
/* Thread-safe. */
void net_server_stop(struct net_server *srv);
/* Connections open right now on listeners of one kind (for `roost status`). Thread-safe. */
size_t net_server_connections(struct net_server *srv, enum listen_kind kind);
void net_server_free(struct net_server **srv);

/* ---- connection facts ---- */
const char *net_conn_peer_ip(const struct net_conn *c);
uint16_t net_conn_peer_port(const struct net_conn *c);
uint16_t net_conn_local_port(const struct net_conn *c);
bool net_conn_is_loopback(const struct net_conn *c);
bool net_conn_is_tls(const struct net_conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or NULL. */
const char *net_conn_tls_description(const struct net_conn *c, char *out, size_t outlen);
enum listen_kind net_conn_kind(const struct net_conn *c);
/* May a plaintext mechanism (PLAIN, LOGIN, IMAP LOGIN, POP3 USER/PASS) be used on this
 * connection under the [auth] plaintext policy? TLS always qualifies; loopback only under
 * "loopback"; anything under "always". */
bool net_conn_plaintext_allowed(const struct net_conn *c, enum plaintext_policy policy);
uint64_t net_conn_id(const struct net_conn *c);
bool net_conn_is_closing(const struct net_conn *c);

/* ---- input ----
 * While the connection is paused or closing, the readers return 0 (nothing), so a session's
 * read loop stops by itself. */

enum net_line_status { NET_LINE_NONE = 0, NET_LINE_OK = 1, NET_LINE_TOO_LONG = -1 };
/* One line without its line end, NUL-terminated, valid until the next read call. A line ends
 * with LF; a CR before it is removed and *crlf_r (may be NULL) tells whether it was there.
 * A line longer than max: returns NET_LINE_TOO_LONG once, with its first octets (at most 64)
 * as the line; then either net_conn_skip_long_line consumes the rest, or the next read call
 * discards input up to and including the next LF (an over-long line never becomes a second
 * command). */
enum net_line_status net_conn_read_line(struct net_conn *c, size_t max, char **line_r,
					size_t *len_r, bool *crlf_r);
/* After NET_LINE_TOO_LONG (whose *line_r holds the line's first octets, at most 64): consumes
 * the rest of that line. Returns NET_LINE_OK at its LF with *tail_r pointing to its last
 * octets (at most 64, without CR LF; valid until the next read call), NET_LINE_NONE while it
 * needs more input, NET_LINE_TOO_LONG once more than cap octets were skipped with no LF. */
enum net_line_status net_conn_skip_long_line(struct net_conn *c, size_t cap, char **tail_r,
					     size_t *tail_len_r);
/* Moves up to max buffered bytes into out; returns how many. */
size_t net_conn_read_bytes(struct net_conn *c, size_t max, struct buf *out);
/* Up to max buffered bytes, contiguous, without consuming them (valid until the next read
 * call); *len_r = 0 when nothing is buffered or input is blocked. Pair with skip_bytes. */
const uint8_t *net_conn_peek(struct net_conn *c, size_t max, size_t *len_r);
/* Discards up to max buffered bytes; returns how many. */
size_t net_conn_skip_bytes(struct net_conn *c, size_t max);
size_t net_conn_input_length(const struct net_conn *c);
/* Drops everything buffered so far (before STARTTLS, after a fatal error). */
void net_conn_discard_input(struct net_conn *c);

/* Stops delivering input until net_conn_resume; such a pause outlasts offloaded jobs and
 * delays (which pause and resume on their own otherwise). */
void net_conn_pause(struct net_conn *c);
void net_conn_resume(struct net_conn *c);

/* ---- output ---- */
void net_conn_write(struct net_conn *c, const void *data, size_t len);
void net_conn_write_str(struct net_conn *c, const char *s);
void net_conn_printf(struct net_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* One protocol line: the formatted text followed by CRLF. */
void net_conn_vprintf_line(struct net_conn *c, const char *fmt, va_list ap);
size_t net_conn_output_length(const struct net_conn *c);
/* Ask for proto->drained once the queued output falls to at most low bytes. */
void net_conn_want_drain(struct net_conn *c, size_t low);

/* ---- control ---- */
/* After the output queued so far is sent: drop buffered input (CVE-2011-0411) and run a server
 * TLS handshake; tls_ready() follows, or the connection closes on failure. Returns -1 when TLS
 * is not configured or already active (nothing changes then). */
int net_conn_starttls(struct net_conn *c);
bool net_conn_tls_available(const struct net_conn *c);
/* COMPRESS=DEFLATE (RFC 4978): from now on output is deflated and input inflated, on top of
 * TLS if TLS is on. Call right after queueing the reply that announces it (that reply goes
 * out uncompressed). Returns -1 when compression is already on. */
int net_conn_start_compress(struct net_conn *c);
bool net_conn_compressed(const struct net_conn *c);
/* Flush queued output, then close. Safe to call more than once and from any callback. */
void net_conn_close(struct net_conn *c);
/* Idle timeout in seconds; 0 = none. It counts from the last complete line or the last bytes
 * the session consumed, not from the last byte that arrived: a line trickled one byte at a
 * time does not extend it. While the connection is paused (a job, a delay, the protocol's
 * own pause) the client is waiting for us and the time does not count. */
void net_conn_set_timeout(struct net_conn *c, uint32_t seconds);
/* The client logged in (SMTP: began a transaction): lifts the pre-login deadline, the
 * absolute limit from connect set by net_server_options.prelogin_seconds. When that
 * deadline passes, proto->timeout runs as for the idle timeout. */
void net_conn_end_prelogin(struct net_conn *c);
/* One-shot timer: fn(session) after ms (replaces a pending one; 0 runs it at the loop's next
 * turn). While it is pending the connection is paused; it resumes before fn runs. Used for
 * login failure delays. */
void net_conn_delay(struct net_conn *c, uint32_t ms, void (*fn)(void *session));

/* Runs work(arg) on the worker pool, then done(session, arg) on the connection's loop. The
 * connection is paused meanwhile and resumed after done returns (unless done paused it again
 * or closed it). done always runs, even if the connection is closing, so arg can be freed. */
void net_conn_offload(struct net_conn *c, void (*work)(void *arg),
		      void (*done)(void *session, void *arg), void *arg);
/* The same for work that may take seconds (SEARCH over a mailbox): it runs in the pool's bulk
 * class, which never takes the last free thread, so logins, deliveries and short store calls
 * do not wait behind it. While it runs, a peer that closes the connection is noticed at once
 * (net_conn_gone), not after the job. */
void net_conn_offload_bulk(struct net_conn *c, void (*work)(void *arg),
			   void (*done)(void *session, void *arg), void *arg);
/* Thread-safe (for a job's work(), which holds a reference to c): true once the connection
 * is closing or its peer has closed or failed; its results would reach nobody. */
bool net_conn_gone(const struct net_conn *c);

/* Cross-thread notification (change feed -> IDLE): take a reference on the loop thread, then
 * from any thread net_conn_post(c, fn, arg) runs fn(session, arg) on the connection's loop,
 * with session NULL when the connection has closed in between; then drop the reference with
 * net_conn_unref (any thread). */
void net_conn_ref(struct net_conn *c);
void net_conn_unref(struct net_conn *c);
void net_conn_post(struct net_conn *c, void (*fn)(void *session, void *arg), void *arg);

#endif
