/* A clamd client: PING, VERSION and INSTREAM over a unix or TCP socket, with one time limit
 * for the whole exchange. Sockets are non-blocking and every wait is a poll() bounded by the
 * deadline, so a clamd that accepts and then hangs costs at most [virus] timeout.
 *
 * One fresh connection per scan, no pool of IDSESSION connections: clamd is on this host (a
 * unix socket or loopback), where a connect costs tens of microseconds against milliseconds of
 * scanning, while an idle session is closed by clamd after its IdleTimeout and the first scan
 * on it would fail and need a retry path; clamd's own thread pool bounds its concurrency
 * either way. Commands use the z prefix (NUL-terminated), so a reply is read up to its NUL. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/core.h"
#include "virus_internal.h"

/* INSTREAM chunk: clamd reads each into its buffer, so neither side holds more than this. */
#define CLAMD_CHUNK (64 * 1024)
#define CLAMD_REPLY_MAX 512

/* "unix:/path", "127.0.0.1:3310", "[::1]:3310" -> s->addr; numeric addresses only, so a scan
 * never waits for a name lookup. */
static int parse_address(struct virus_scanner *s, const char *text, char *err, size_t errlen)
{
	memset(&s->addr, 0, sizeof(s->addr));
	if (strncmp(text, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
		const char *path = text + 5;
		if (path[0] != '/' || strlen(path) >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "[virus] clamd: unix: needs an absolute path shorter "
					      "than %zu octets", sizeof(un->sun_path));
			return -1;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, path, strlen(path) + 1);
		s->addr_len = sizeof(*un);
		return 0;
	}
	const char *colon = strrchr(text, ':');
	uint64_t port;
	char host[64];
	size_t host_len;
	if (colon == NULL || str_to_u64(colon + 1, strlen(colon + 1), 65535, &port) < 0 ||
	    port == 0)
		goto bad;
	host_len = (size_t)(colon - text);
	if (host_len >= 2 && text[0] == '[' && text[host_len - 1] == ']') {
		text++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(host))
		goto bad;
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	struct sockaddr_in *in4 = (struct sockaddr_in *)&s->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s->addr;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		s->addr_len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		s->addr_len = sizeof(*in6);
		return 0;
	}
bad:
	snprintf(err, errlen, "[virus] clamd: expected unix:/path, IPv4:port or [IPv6]:port");
	return -1;
}

struct virus_scanner *virus_scanner_new(const struct config *cfg, char *err, size_t errlen)
{
	struct virus_scanner *s = xcalloc(1, sizeof(*s));
	char *data_dir;

	if (parse_address(s, cfg->virus_clamd, err, errlen) < 0) {
		free(s);
		return NULL;
	}
	s->display = xstrdup(cfg->virus_clamd);
	s->timeout_ms = (uint64_t)cfg->virus_timeout * 1000;
	s->max_size = (uint64_t)cfg->virus_max_size;
	s->action = cfg->virus_action;
	s->on_error = cfg->virus_on_error;
	s->hostname = xstrdup(cfg->hostname);
	data_dir = config_resolve_path(cfg, cfg->data_dir);
	s->quarantine_dir = xasprintf("%s/quarantine", data_dir);
	free(data_dir);
	return s;
}

void virus_scanner_free(struct virus_scanner **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	free((*sp)->display);
	free((*sp)->hostname);
	free((*sp)->quarantine_dir);
	free(*sp);
	*sp = NULL;
}

static int clamd_connect(const struct virus_scanner *s, uint64_t deadline, char *err,
			 size_t errlen)
{
	int fd = fd_connect_within((const struct sockaddr *)&s->addr, s->addr_len, deadline);

	if (fd < 0)
		snprintf(err, errlen, "connect to %s: %s", s->display, strerror(errno));
	return fd;
}

/* Sends every byte of the iovecs (modified as they go out). */
static int send_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline, char *err,
		    size_t errlen)
{
	while (iovcnt > 0) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (fd_wait_ready(fd, POLLOUT, deadline) < 0)
				goto fail;
			continue;
		}
		if (n < 0)
			goto fail;
		size_t left = (size_t)n;
		while (iovcnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
fail:
	snprintf(err, errlen, "sending to clamd: %s", strerror(errno));
	return -1;
}

/* Reads one NUL-terminated reply (bounded; a longer one is cut). */
static int read_reply(int fd, char *reply, size_t replylen, uint64_t deadline, char *err,
		      size_t errlen)
{
	size_t used = 0;

	for (;;) {
		char c;
		ssize_t n = recv(fd, &c, 1, 0);
		if (n == 1) {
			if (c == '\0')
				break;
			if (used + 1 < replylen)
				reply[used++] = c;
			continue;
		}
		if (n == 0)
			break; /* clamd closed: what came is the reply */
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && fd_wait_ready(fd, POLLIN, deadline) == 0)
			continue;
		snprintf(err, errlen, "reading clamd's reply: %s", strerror(errno));
		return -1;
	}
	reply[used] = '\0';
	while (used > 0 && (reply[used - 1] == '\n' || reply[used - 1] == '\r'))
		reply[--used] = '\0';
	if (used == 0) {
		snprintf(err, errlen, "clamd closed the connection without a reply");
		return -1;
	}
	return 0;
}

/* One command on a fresh connection: its reply in reply. */
static int clamd_command(const struct virus_scanner *s, const char *command, char *reply,
			 size_t replylen, char *err, size_t errlen)
{
	uint64_t deadline = time_now_ms() + s->timeout_ms;
	int fd = clamd_connect(s, deadline, err, errlen);
	int rc = -1;

	if (fd < 0)
		return -1;
	struct iovec iov = { (void *)command, strlen(command) + 1 };
	if (send_all(fd, &iov, 1, deadline, err, errlen) == 0 &&
	    read_reply(fd, reply, replylen, deadline, err, errlen) == 0)
		rc = 0;
	close(fd);
	return rc;
}

int virus_scanner_ping(const struct virus_scanner *s, char *version, size_t versionlen,
		       char *err, size_t errlen)
{
	char reply[CLAMD_REPLY_MAX];

	if (clamd_command(s, "zPING", reply, sizeof(reply), err, errlen) < 0)
		return -1;
	if (strcmp(reply, "PONG") != 0) {
		snprintf(err, errlen, "clamd answered PING with \"%.100s\"", reply);
		return -1;
	}
	if (clamd_command(s, "zVERSION", reply, sizeof(reply), err, errlen) < 0)
		return -1;
	snprintf(version, versionlen, "%s", reply);
	return 0;
}

/* "stream: OK", "stream: Eicar-Signature FOUND", "... ERROR" (RFC-less: clamd's man page). */
static enum virus_scan_result parse_scan_reply(const char *reply, char *name, size_t namelen)
{
	const char *p = strncmp(reply, "stream: ", 8) == 0 ? reply + 8 : reply;
	size_t len = strlen(p);

	if (strcmp(p, "OK") == 0)
		return VIRUS_SCAN_CLEAN;
	if (len > 6 && strcmp(p + len - 6, " FOUND") == 0) {
		snprintf(name, namelen, "%.*s", (int)(len - 6), p);
		return VIRUS_SCAN_INFECTED;
	}
	snprintf(name, namelen, "clamd: %s", p);
	return VIRUS_SCAN_ERROR;
}

static int stream_data(int fd, const uint8_t *data, size_t len, uint64_t deadline, char *err,
		       size_t errlen)
{
	static const char start[] = "zINSTREAM";
	struct iovec iov[2] = { { (void *)start, sizeof(start) } };

	if (send_all(fd, iov, 1, deadline, err, errlen) < 0)
		return -1;
	for (size_t off = 0;;) {
		size_t n = len - off > CLAMD_CHUNK ? CLAMD_CHUNK : len - off;
		uint32_t size_be = htonl((uint32_t)n);
		iov[0] = (struct iovec){ &size_be, sizeof(size_be) };
		iov[1] = (struct iovec){ (void *)(data + off), n };
		/* the zero-length chunk ends the stream */
		if (send_all(fd, iov, n > 0 ? 2 : 1, deadline, err, errlen) < 0)
			return -1;
		if (n == 0)
			return 0;
		off += n;
	}
}

enum virus_scan_result virus_scan(const struct virus_scanner *s, const uint8_t *data, size_t len,
				  char *name, size_t namelen)
{
	uint64_t deadline = time_now_ms() + s->timeout_ms;
	char err[256] = "", reply[CLAMD_REPLY_MAX];
	enum virus_scan_result result = VIRUS_SCAN_ERROR;
	int fd = clamd_connect(s, deadline, err, sizeof(err));

	if (fd >= 0) {
		int sent = stream_data(fd, data, len, deadline, err, sizeof(err));
		/* clamd that stops reading (its StreamMaxLength) says why before it closes */
		char read_err[256];
		if (read_reply(fd, reply, sizeof(reply), deadline, read_err, sizeof(read_err)) == 0) {
			result = parse_scan_reply(reply, name, namelen);
			err[0] = '\0'; /* clamd's own words say more than the send error */
		} else if (sent == 0) {
			snprintf(err, sizeof(err), "%s", read_err);
		}
		if (result == VIRUS_SCAN_CLEAN && sent < 0) {
			result = VIRUS_SCAN_ERROR; /* a verdict on part of the message */
			snprintf(name, namelen, "clamd answered before the whole message was sent");
		}
		close(fd);
	}
	if (result == VIRUS_SCAN_ERROR && err[0] != '\0')
		snprintf(name, namelen, "%s", err);
	return result;
}
