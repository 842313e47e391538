/* What a running `roost serve` shows the administrator and the service manager: the pidfile
 * (locked with flock for as long as the server runs, so a leftover file from a crash is told
 * apart from a live server without trusting a pid that may have been reused), the status
 * socket that `roost status` asks, and the systemd readiness notification.
 *
 * The status socket is served by one thread of its own with blocking, time-limited I/O: it
 * answers rare administrator requests and must not depend on (or slow) the event loops. It
 * only reads: connection counts from net, the listeners from the config, the spool through
 * queue_list. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../core/core.h"
#include "../net/net.h"
#include "../queue/queue.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_dmarc.h"

#define CONTROL_IO_TIMEOUT_SECONDS 2
#define CONTROL_REQUEST_MAX 512 /* "catch-up " and an address of up to 254 octets */

char *cli_pidfile_path(const struct config *cfg, const char *data_dir)
{
	if (cfg->pidfile[0] != '\0')
		return config_resolve_path(cfg, cfg->pidfile);
	return xasprintf("%s/roost.pid", data_dir);
}

char *cli_status_socket_path(const char *data_dir)
{
	return xasprintf("%s/roost.sock", data_dir);
}

/* ---------------- pidfile ---------------- */

struct serve_pidfile {
	char *path;
	int fd;
};

/* The pid written in an open pidfile, or 0 when it holds none. */
static long pidfile_read_pid(int fd)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

	if (n <= 0)
		return 0;
	text[n] = '\0';
	return strtol(text, NULL, 10);
}

int serve_pidfile_claim(const char *path, struct serve_pidfile **pf_r)
{
	/* A stopping server unlinks its file before it lets the lock go; a lock won on such an
	 * unlinked file would guard nothing, so try again on the file now at the path. */
	for (int attempt = 0; attempt < 5; attempt++) {
		struct stat held, named;
		/* O_NOFOLLOW: the pidfile lives in a directory run_as owns, and root opens it. */
		int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "roost: cannot open the pidfile %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int saved = errno;
			long pid = pidfile_read_pid(fd);
			close(fd);
			if (saved == EWOULDBLOCK)
				fprintf(stderr,
					"roost: another server is already running (pid %ld, pidfile %s)\n",
					pid, path);
			else
				fprintf(stderr, "roost: cannot lock the pidfile %s: %s\n", path,
					strerror(saved));
			return -1;
		}
		if (fstat(fd, &held) == 0 && !S_ISREG(held.st_mode)) {
			close(fd);
			fprintf(stderr, "roost: the pidfile %s is not a regular file\n", path);
			return -1;
		}
		if (stat(path, &named) == 0 && named.st_ino == held.st_ino &&
		    named.st_dev == held.st_dev) {
			struct serve_pidfile *pf = xcalloc(1, sizeof(*pf));
			pf->path = xstrdup(path);
			pf->fd = fd;
			*pf_r = pf;
			return 0;
		}
		close(fd);
	}
	fprintf(stderr, "roost: the pidfile %s keeps changing; is another server starting?\n",
		path);
	return -1;
}

int serve_pidfile_write(struct serve_pidfile *pf)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());

	if (ftruncate(pf->fd, 0) < 0 || pwrite(pf->fd, text, (size_t)len, 0) != len) {
		fprintf(stderr, "roost: cannot write the pidfile %s: %s\n", pf->path,
			strerror(errno));
		return -1;
	}
	return 0;
}

void serve_pidfile_release(struct serve_pidfile **pf_p)
{
	struct serve_pidfile *pf = pf_p ? *pf_p : NULL;

	if (pf == NULL)
		return;
	/* Unlink while still holding the lock (see serve_pidfile_claim). */
	if (unlink(pf->path) < 0 && errno != ENOENT)
		log_warn("path=%s msg=\"cannot remove the pidfile\" error=\"%s\"", pf->path,
			 strerror(errno));
	close(pf->fd);
	free(pf->path);
	free(pf);
	*pf_p = NULL;
}

long cli_pidfile_holder(const char *path, bool *stale_r)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	long pid = 0;

	*stale_r = false;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		pid = errno == EWOULDBLOCK ? pidfile_read_pid(fd) : -1;
		if (pid == 0)
			pid = -1; /* locked, but the server has not written its pid yet */
	} else {
		*stale_r = true;
	}
	close(fd);
	return pid;
}

/* ---------------- systemd readiness ---------------- */

void cli_notify_service_manager(const char *state)
{
	const char *where = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	int fd;

	if (where == NULL || (where[0] != '/' && where[0] != '@'))
		return;
	len = strlen(where);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, where, len);
	if (where[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_warn("msg=\"cannot notify the service manager\" error=\"%s\"", strerror(errno));
	close(fd);
}

/* ---------------- status socket ---------------- */

struct serve_status {
	struct serve_status_source src;
	char *path;
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
	struct timespec started;
};

struct queue_summary {
	size_t messages;
	int64_t oldest_arrived;
};

static void queue_summary_add(const struct queue_entry_info *info, void *ctx)
{
	struct queue_summary *sum = ctx;

	if (sum->messages == 0 || info->arrived < sum->oldest_arrived)
		sum->oldest_arrived = info->arrived;
	sum->messages++;
}

static void status_report(struct serve_status *st, struct buf *out)
{
	const struct config *cfg = st->src.cfg;
	struct timespec now;
	struct queue_summary sum = { 0, 0 };
	size_t total = 0;
	char err[256];

	clock_gettime(CLOCK_MONOTONIC, &now);
	buf_printf(out, "version: %s\n", ROOST_VERSION);
	buf_printf(out, "pid: %ld\n", (long)getpid());
	buf_printf(out, "uptime: %llds\n", (long long)(now.tv_sec - st->started.tv_sec));
	for (int k = 0; k < LISTEN_KIND_COUNT; k++)
		for (size_t i = 0; i < cfg->listen[k].count; i++) {
			const struct listen_addr *la = &cfg->listen[k].addrs[i];
			bool v6 = strchr(la->host, ':') != NULL;
			buf_printf(out, "listener: %s %s%s%s:%u\n",
				   config_listen_name((enum listen_kind)k), v6 ? "[" : "", la->host,
				   v6 ? "]" : "", la->port);
		}
	buf_printf(out, "sessions:");
	for (int k = 0; k < LISTEN_KIND_COUNT; k++) {
		if (cfg->listen[k].count == 0)
			continue;
		size_t n = net_server_connections(st->src.srv, (enum listen_kind)k);
		total += n;
		buf_printf(out, " %s=%zu", config_listen_name((enum listen_kind)k), n);
	}
	buf_printf(out, " total=%zu\n", total);
	if (queue_list(st->src.queue, queue_summary_add, &sum, err, sizeof(err)) < 0) {
		buf_printf(out, "queue: unknown (%s)\n", err);
		return;
	}
	buf_printf(out, "queue: %zu\n", sum.messages);
	if (sum.messages > 0) {
		int64_t age = (int64_t)time(NULL) - sum.oldest_arrived;
		buf_printf(out, "queue_oldest: %llds\n", (long long)(age > 0 ? age : 0));
	}
}

/* `roost import` added messages to ADDRESS behind the server's back (the index is shared, the
 * change feed is not): announce them to the sessions that watch the account. */
static void catch_up_answer(struct serve_status *st, char *address, struct buf *out)
{
	struct store_err serr = { STORE_OK, "" };
	size_t added = 0;

	address[strcspn(address, "\r\n")] = '\0';
	if (st->src.store == NULL || address[0] == '\0') {
		buf_printf(out, "error: nothing to catch up\n");
		return;
	}
	if (store_account_catch_up(st->src.store, address, &added, &serr) != STORE_OK)
		buf_printf(out, "error: %s\n", serr.text[0] ? serr.text : "store error");
	else
		buf_printf(out, "ok %zu\n", added);
}

/* `roost dmarc report --send`: the day's reports queued by the server itself, whose queue
 * handle is already open (the command opening the spool beside it would clear its tmp/). */
static void dmarc_send_answer(struct serve_status *st, char *day_text, struct buf *out)
{
	uint64_t day;

	day_text[strcspn(day_text, "\r\n")] = '\0';
	if (st->src.dmarc == NULL || str_to_u64(day_text, strlen(day_text), INT64_MAX, &day) < 0) {
		buf_printf(out, "error: [dmarc] reports is off\n");
		return;
	}
	serve_dmarc_send(st->src.dmarc, (int64_t)day, out);
}

/* Only root and the server's own user may ask (the socket's mode says the same; this holds
 * even if the socket is moved somewhere laxer). */
static bool status_peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void status_answer(struct serve_status *st, int fd)
{
	struct timeval tv = { CONTROL_IO_TIMEOUT_SECONDS, 0 };
	char request[CONTROL_REQUEST_MAX];
	size_t got = 0;
	struct buf out;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!status_peer_allowed(fd))
		return;
	while (got < sizeof(request) - 1 && memchr(request, '\n', got) == NULL) {
		ssize_t n = read(fd, request + got, sizeof(request) - 1 - got);
		if (n <= 0)
			return;
		got += (size_t)n;
	}
	request[got] = '\0';
	buf_init(&out);
	if (strncmp(request, "status\n", 7) == 0)
		status_report(st, &out);
	else if (strncmp(request, "catch-up ", 9) == 0)
		catch_up_answer(st, request + 9, &out);
	else if (strncmp(request, "dmarc-send ", 11) == 0)
		dmarc_send_answer(st, request + 11, &out);
	else
		buf_printf(&out, "error: unknown request\n");
	for (size_t sent = 0; sent < out.len;) {
		ssize_t n = send(fd, out.data + sent, out.len - sent, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	buf_free(&out);
}

static void *status_thread(void *arg)
{
	struct serve_status *st = arg;

	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = st->listen_fd, .events = POLLIN },
			{ .fd = st->stop_pipe[0], .events = POLLIN },
		};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("msg=\"status socket stopped\" error=\"%s\"", strerror(errno));
			return NULL;
		}
		if (fds[1].revents != 0)
			return NULL;
		if (fds[0].revents & POLLIN) {
			int fd = accept4(st->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				status_answer(st, fd);
				close(fd);
			}
		}
	}
}

struct serve_status *serve_status_start(const char *path, const struct serve_status_source *src)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct serve_status *st;
	size_t len = strlen(path);
	int fd;

	if (len >= sizeof(sa.sun_path)) {
		log_warn("path=%s msg=\"status socket path too long; roost status will not answer\"",
			 path);
		return NULL;
	}
	memcpy(sa.sun_path, path, len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* A socket left by a server that crashed; we hold the pidfile, so it is no one's. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 8) < 0)
		goto fail;
	st = xcalloc(1, sizeof(*st));
	st->src = *src;
	st->path = xstrdup(path);
	st->listen_fd = fd;
	clock_gettime(CLOCK_MONOTONIC, &st->started);
	if (pipe2(st->stop_pipe, O_CLOEXEC) < 0 ||
	    pthread_create(&st->thread, NULL, status_thread, st) != 0)
		abort();
	return st;
fail:
	log_warn("path=%s msg=\"cannot open the status socket; roost status will not answer\" "
		 "error=\"%s\"",
		 path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return NULL;
}

void serve_status_stop(struct serve_status **st_p)
{
	struct serve_status *st = st_p ? *st_p : NULL;

	if (st == NULL)
		return;
	if (write(st->stop_pipe[1], "x", 1) != 1)
		abort();
	pthread_join(st->thread, NULL);
	unlink(st->path);
	close(st->listen_fd);
	close(st->stop_pipe[0]);
	close(st->stop_pipe[1]);
	free(st->path);
	free(st);
	*st_p = NULL;
}
