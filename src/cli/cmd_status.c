/* roost status: asks the running server (through DATA_DIR/roost.sock) for its version, pid,
 * uptime, listeners, open sessions per protocol and queue, and prints the answer. Exit codes
 * follow the LSB `status` action, so init scripts and monitoring can use them: 0 running,
 * 1 not running but a pidfile was left behind, 3 not running, 4 unknown (no permission, or a
 * server that holds the pidfile does not answer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/core.h"
#include "cli.h"

enum status_exit {
	STATUS_RUNNING = 0,
	STATUS_DEAD_PIDFILE = 1,
	STATUS_NOT_RUNNING = 3,
	STATUS_UNKNOWN = 4,
};

#define STATUS_REPLY_MAX (64 * 1024)
#define STATUS_TIMEOUT_SECONDS 5

/* Connects to the status socket; -1 with errno set when nothing listens there. */
static int status_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { STATUS_TIMEOUT_SECONDS, 0 };
	size_t len = strlen(path);
	int fd;

	if (len >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Sends the request and copies the reply to stdout; -1 when the server broke off. */
static int status_exchange(int fd)
{
	static const char request[] = "status\n";
	char chunk[4096];
	size_t total = 0;

	if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(request) - 1)
		return -1;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		total += (size_t)n;
		if (total > STATUS_REPLY_MAX)
			return -1;
		fwrite(chunk, 1, (size_t)n, stdout);
	}
	return total > 0 ? 0 : -1;
}

int cli_server_request(const char *data_dir, const char *request, char *reply, size_t replylen)
{
	char *path = cli_status_socket_path(data_dir);
	int fd = status_connect(path);
	size_t len = strlen(request), got = 0;

	free(path);
	if (replylen > 0)
		reply[0] = '\0';
	if (fd < 0)
		return -1;
	if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		close(fd);
		return -1;
	}
	while (got + 1 < replylen) {
		ssize_t n = read(fd, reply + got, replylen - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (replylen == 0)
		return 0;
	reply[got] = '\0';
	reply[strcspn(reply, "\n")] = '\0';
	return got > 0 ? 0 : -1;
}

/* No answer on the socket: the pidfile tells "not running" from "running but silent". */
static int status_without_answer(const char *socket_path, int connect_errno,
				 const char *pidfile)
{
	bool stale = false;
	long pid = cli_pidfile_holder(pidfile, &stale);

	if (connect_errno == EACCES || connect_errno == EPERM) {
		fprintf(stderr, "roost: cannot reach %s: %s (ask as root or as the server's user)\n",
			socket_path, strerror(connect_errno));
		return STATUS_UNKNOWN;
	}
	if (pid > 0) {
		printf("roost: the server (pid %ld) runs but does not answer on %s: %s\n", pid,
		       socket_path, strerror(connect_errno));
		return STATUS_UNKNOWN;
	}
	if (pid < 0) {
		printf("roost: cannot tell whether a server runs (pidfile %s, socket %s: %s)\n",
		       pidfile, socket_path, strerror(connect_errno));
		return STATUS_UNKNOWN;
	}
	if (stale) {
		printf("roost is not running (a pidfile was left behind: %s)\n", pidfile);
		return STATUS_DEAD_PIDFILE;
	}
	printf("roost is not running\n");
	return STATUS_NOT_RUNNING;
}

int cmd_status(struct config *cfg, int argc, char **argv)
{
	char *data_dir;
	char *socket_path;
	char *pidfile;
	int status;
	int fd;

	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "usage: roost status\n");
		return 2;
	}
	data_dir = config_resolve_path(cfg, cfg->data_dir);
	socket_path = cli_status_socket_path(data_dir);
	pidfile = cli_pidfile_path(cfg, data_dir);
	fd = status_connect(socket_path);
	if (fd < 0) {
		status = status_without_answer(socket_path, errno, pidfile);
	} else if (status_exchange(fd) < 0) {
		fprintf(stderr, "roost: the server broke off its status reply on %s\n", socket_path);
		status = STATUS_UNKNOWN;
	} else {
		status = STATUS_RUNNING;
	}
	if (fd >= 0)
		close(fd);
	free(pidfile);
	free(socket_path);
	free(data_dir);
	return status;
}
