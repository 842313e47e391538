/* Blocking client connections; see client.h. Reads are buffered; every wait is bounded by the
 * connection's timeout (poll), so a stalled peer can hold a queue thread only that long. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../tls/tls.h"
#include "client.h"

struct net_client {
	int fd;
	unsigned timeout_ms;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	uint8_t rbuf[16384];
	size_t rpos, rlen;
};

static int wait_fd(int fd, short events, unsigned timeout_ms)
{
	struct pollfd p = { fd, events, 0 };
	int n;

	do {
		n = poll(&p, 1, (int)timeout_ms);
	} while (n < 0 && errno == EINTR);
	return n;
}

struct net_client *net_client_connect(const char *ip, unsigned port, unsigned timeout_ms,
				      char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1;
	struct net_client *c;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, ip, &in6->sin6_addr) != 1)
			goto bad_address;
		sslen = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &in->sin_addr) != 1)
			goto bad_address;
		sslen = sizeof(*in);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect to %s:%u: %s", ip, port, strerror(errno));
		close(fd);
		return NULL;
	}
	if (wait_fd(fd, POLLOUT, timeout_ms) <= 0) {
		snprintf(err, errlen, "connect to %s:%u: timed out", ip, port);
		close(fd);
		return NULL;
	}
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	if (soerr != 0) {
		snprintf(err, errlen, "connect to %s:%u: %s", ip, port, strerror(soerr));
		close(fd);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	return c;
bad_address:
	snprintf(err, errlen, "not a numeric address: %s", ip);
	return NULL;
}

void net_client_set_timeout(struct net_client *c, unsigned timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

bool net_client_is_tls(const struct net_client *c)
{
	return c->ssl != NULL;
}

/* Drives one SSL call to completion on the non-blocking socket, within the timeout. */
static int ssl_wait(struct net_client *c, int ret)
{
	int e = SSL_get_error(c->ssl, ret);

	if (e == SSL_ERROR_WANT_READ)
		return wait_fd(c->fd, POLLIN, c->timeout_ms) > 0 ? 0 : -1;
	if (e == SSL_ERROR_WANT_WRITE)
		return wait_fd(c->fd, POLLOUT, c->timeout_ms) > 0 ? 0 : -1;
	return -1;
}

static bool is_numeric_address(const char *s)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

int net_client_starttls(struct net_client *c, const char *server_name,
			const struct net_client_verify *verify, char *err, size_t errlen)
{
	int ret;

	c->ssl_ctx = tls_client_context_new(verify != NULL, verify ? verify->ca_file : NULL);
	if (c->ssl_ctx == NULL) {
		snprintf(err, errlen, "TLS: cannot load the CA certificates %s",
			 verify->ca_file && verify->ca_file[0] ? verify->ca_file : "of the system");
		return -1;
	}
	c->ssl = SSL_new(c->ssl_ctx);
	SSL_set_fd(c->ssl, c->fd);
	if (verify != NULL &&
	    (server_name == NULL || tls_client_expect_name(c->ssl, server_name) < 0)) {
		snprintf(err, errlen, "TLS: no name to check the certificate against");
		return -1;
	}
	/* SNI is for names only (RFC 6066 §3). */
	if (server_name && server_name[0] && !is_numeric_address(server_name))
		SSL_set_tlsext_host_name(c->ssl, server_name);
	c->rpos = c->rlen = 0; /* nothing read in clear text may be used after this */
	while ((ret = SSL_connect(c->ssl)) != 1) {
		if (ssl_wait(c, ret) < 0) {
			unsigned long code = ERR_get_error();
			char detail[200] = "handshake failed or timed out";
			if (code)
				ERR_error_string_n(code, detail, sizeof(detail));
			ERR_clear_error();
			snprintf(err, errlen, "TLS: %s", detail);
			return -1;
		}
	}
	return 0;
}

static ssize_t client_read(struct net_client *c, void *buf, size_t len, char *err,
			   size_t errlen)
{
	for (;;) {
		if (c->ssl) {
			int n = SSL_read(c->ssl, buf, (int)(len > 16384 ? 16384 : len));
			if (n > 0)
				return n;
			if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN || ssl_wait(c, n) < 0) {
				snprintf(err, errlen, "connection closed or timed out");
				return -1;
			}
			continue;
		}
		ssize_t n = read(c->fd, buf, len);
		if (n > 0)
			return n;
		if (n == 0) {
			snprintf(err, errlen, "connection closed by peer");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || wait_fd(c->fd, POLLIN, c->timeout_ms) <= 0) {
			snprintf(err, errlen, "read: %s", errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
	}
}

int net_client_read_line(struct net_client *c, size_t max, struct buf *line, char *err,
			 size_t errlen)
{
	buf_reset(line);
	for (;;) {
		while (c->rpos < c->rlen) {
			uint8_t ch = c->rbuf[c->rpos++];
			if (ch == '\n') {
				if (line->len > 0 && line->data[line->len - 1] == '\r')
					line->len--;
				buf_cstr(line);
				return 0;
			}
			if (line->len >= max) {
				snprintf(err, errlen, "reply line too long");
				return -1;
			}
			buf_append_byte(line, ch);
		}
		ssize_t n = client_read(c, c->rbuf, sizeof(c->rbuf), err, errlen);
		if (n < 0)
			return -1;
		c->rpos = 0;
		c->rlen = (size_t)n;
	}
}

int net_client_write(struct net_client *c, const void *data, size_t len, char *err,
		     size_t errlen)
{
	const uint8_t *p = data;

	while (len > 0) {
		if (c->ssl) {
			int n = SSL_write(c->ssl, p, (int)(len > 65536 ? 65536 : len));
			if (n > 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			if (ssl_wait(c, n) < 0) {
				snprintf(err, errlen, "write failed or timed out");
				return -1;
			}
			continue;
		}
		ssize_t n = write(c->fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && wait_fd(c->fd, POLLOUT, c->timeout_ms) > 0)
			continue;
		snprintf(err, errlen, "write: %s", n < 0 ? strerror(errno) : "timed out");
		return -1;
	}
	return 0;
}

void net_client_close(struct net_client **cp)
{
	struct net_client *c = cp ? *cp : NULL;

	if (c == NULL)
		return;
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	tls_client_context_free(&c->ssl_ctx);
	close(c->fd);
	free(c);
	*cp = NULL;
}
