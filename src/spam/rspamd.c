/* The rspamd hand-off: the message is POSTed to an admin's rspamd at /checkv2 (its native
 * protocol: the envelope in request header fields IP, Helo, From, Rcpt, the message as the
 * body; no Queue-Id, as the message has none before it is stored), and the "score" and "action" of its JSON answer join ours. A blocking HTTP/1.0
 * client, because checks run on the worker pool (delivery/check.h), with non-blocking sockets
 * and poll() under one time limit for the whole exchange, as the clamd client does: a rspamd
 * that accepts and then hangs costs at most [spam] rspamd_timeout. Numeric addresses only, so
 * a check never waits for a name lookup; one fresh connection per message (rspamd is local,
 * and HTTP/1.0 without keep-alive needs no reuse logic). Its failures never fail a delivery:
 * the score is then ours alone and the log says so, at most once a minute. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spam.h"

/* An answer is a few KiB of JSON (one entry per symbol); more is not rspamd. */
#define RSPAMD_REPLY_MAX (256 * 1024)

struct spam_rspamd {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char host[80]; /* "IP:port" for the Host field and the log */
	uint64_t timeout_ms;
	struct log_limiter failures;
};

/* "http://127.0.0.1:11333", "http://[::1]:11333", an optional "/" at the end. */
struct spam_rspamd *spam_rspamd_new(const char *url, unsigned timeout_ms, char *err,
				    size_t errlen)
{
	struct spam_rspamd *r = xcalloc(1, sizeof(*r));
	char host[64];
	uint64_t port;
	const char *p = url, *colon, *end;

	if (strncmp(p, "http://", 7) != 0)
		goto bad;
	p += 7;
	end = p + strlen(p);
	if (end > p && end[-1] == '/')
		end--;
	colon = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == ':')
			colon = q;
	if (colon == NULL || str_to_u64(colon + 1, (size_t)(end - colon - 1), 65535, &port) < 0 ||
	    port == 0)
		goto bad;
	size_t host_len = (size_t)(colon - p);
	if (host_len >= 2 && p[0] == '[' && p[host_len - 1] == ']') {
		p++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(host))
		goto bad;
	memcpy(host, p, host_len);
	host[host_len] = '\0';
	struct sockaddr_in *in4 = (struct sockaddr_in *)&r->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&r->addr;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		r->addr_len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		r->addr_len = sizeof(*in6);
	} else {
		goto bad;
	}
	snprintf(r->host, sizeof(r->host), "%s%s%s:%u", r->addr.ss_family == AF_INET6 ? "[" : "",
		 host, r->addr.ss_family == AF_INET6 ? "]" : "", (unsigned)port);
	r->timeout_ms = timeout_ms;
	return r;
bad:
	err_setf(err, errlen, "[spam] rspamd: expected http://IPv4:port or http://[IPv6]:port");
	free(r);
	return NULL;
}

void spam_rspamd_free(struct spam_rspamd **r)
{
	if (r == NULL || *r == NULL)
		return;
	free(*r);
	*r = NULL;
}

static int send_all(int fd, const uint8_t *p, size_t len, uint64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (fd_wait_ready(fd, POLLOUT, deadline) < 0)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Reads until the server closes (HTTP/1.0), at most RSPAMD_REPLY_MAX bytes. */
static int read_all(int fd, struct buf *out, uint64_t deadline)
{
	for (;;) {
		if (out->len >= RSPAMD_REPLY_MAX) {
			errno = EMSGSIZE;
			return -1;
		}
		buf_reserve(out, 4096);
		ssize_t n = recv(fd, out->data + out->len, 4096, 0);
		if (n > 0) {
			out->len += (size_t)n;
		} else if (n == 0) {
			return 0;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (fd_wait_ready(fd, POLLIN, deadline) < 0)
				return -1;
		} else {
			return -1;
		}
	}
}

/* Header field values come from the client (HELO, MAIL FROM): a CR or LF would split the
 * request, so they are cut there. */
static void field(struct buf *req, const char *name, const char *value)
{
	size_t n = strcspn(value, "\r\n");

	buf_printf(req, "%s: %.*s\r\n", name, (int)n, value);
}

/* ---- the answer: a flat scan of the top-level object of the JSON ---- */

/* The value of key at depth 1 of the object in json: a number or a string (unquoted, escapes
 * kept). false when absent. */
static bool json_top_value(const char *json, size_t len, const char *key, char *out,
			   size_t outlen)
{
	int depth = 0;
	size_t klen = strlen(key);

	for (size_t i = 0; i < len; i++) {
		char c = json[i];
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == '"') {
			size_t start = ++i;
			while (i < len && json[i] != '"')
				i += json[i] == '\\' ? 2 : 1;
			if (i >= len)
				return false;
			size_t slen = i - start;
			size_t j = i + 1;
			while (j < len && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' ||
					   json[j] == '\r'))
				j++;
			bool is_key = j < len && json[j] == ':';
			if (depth != 1 || !is_key || slen != klen ||
			    memcmp(json + start, key, klen) != 0)
				continue;
			j++;
			while (j < len && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' ||
					   json[j] == '\r'))
				j++;
			size_t vstart = j, vlen;
			if (j < len && json[j] == '"') {
				vstart = ++j;
				while (j < len && json[j] != '"')
					j += json[j] == '\\' ? 2 : 1;
				vlen = (j < len ? j : len) - vstart;
			} else {
				while (j < len && json[j] != ',' && json[j] != '}' &&
				       json[j] != ' ' && json[j] != '\n')
					j++;
				vlen = j - vstart;
			}
			if (vlen >= outlen)
				return false;
			memcpy(out, json + vstart, vlen);
			out[vlen] = '\0';
			return true;
		}
	}
	return false;
}

int spam_rspamd_parse_reply(const char *reply, size_t len, struct spam_rspamd_result *res)
{
	char num[64];
	const char *body;
	char *endp;
	int status;

	if (len < 12 || strncmp(reply, "HTTP/1.", 7) != 0 ||
	    sscanf(reply + 9, "%3d", &status) != 1 || status != 200)
		return -1;
	body = memmem(reply, len, "\r\n\r\n", 4);
	if (body == NULL)
		return -1;
	body += 4;
	size_t blen = len - (size_t)(body - reply);
	if (!json_top_value(body, blen, "score", num, sizeof(num)))
		return -1;
	res->score = strtod(num, &endp);
	if (endp == num || *endp != '\0' || res->score != res->score /* NaN */)
		return -1;
	if (!json_top_value(body, blen, "action", res->action, sizeof(res->action)))
		snprintf(res->action, sizeof(res->action), "unknown");
	for (char *p = res->action; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			*p = '_'; /* "add header" -> add_header: one token in X-Spam-Status */
	return 0;
}

int spam_rspamd_check(struct spam_rspamd *r, const struct delivery_check_input *in,
		      struct spam_rspamd_result *res)
{
	uint64_t started = time_now_ms(), deadline = started + r->timeout_ms;
	struct buf req, reply;
	const char *what = "connect";
	int fd, rc = -1;

	buf_init(&req);
	buf_init(&reply);
	buf_printf(&req, "POST /checkv2 HTTP/1.0\r\nHost: %s\r\nContent-Length: %zu\r\n", r->host,
		   in->len);
	field(&req, "IP", in->client_ip != NULL ? in->client_ip : "");
	field(&req, "Helo", in->helo != NULL ? in->helo : "");
	field(&req, "From", in->sender != NULL ? in->sender : "");
	/* the local mailboxes: the check sees the accounts, not the envelope's own spelling */
	for (size_t i = 0; i < in->mailbox_count && i < 100; i++)
		field(&req, "Rcpt", in->mailboxes[i]);
	buf_append_str(&req, "\r\n");
	fd = fd_connect_within((const struct sockaddr *)&r->addr, r->addr_len, deadline);
	if (fd >= 0) {
		what = "send";
		if (send_all(fd, req.data, req.len, deadline) == 0 &&
		    send_all(fd, in->msg, in->len, deadline) == 0) {
			shutdown(fd, SHUT_WR);
			what = "read";
			if (read_all(fd, &reply, deadline) == 0) {
				what = "answer";
				rc = spam_rspamd_parse_reply((const char *)reply.data, reply.len, res);
				if (rc < 0)
					errno = EPROTO;
			}
		}
		close(fd);
	}
	if (rc < 0) {
		uint64_t suppressed = 0;
		if (log_limiter_allow(&r->failures, 60000, &suppressed))
			log_warn("spam=rspamd addr=%s op=%s error=\"%s\" elapsed_ms=%llu "
				 "held_back=%llu msg=\"scoring without rspamd\"",
				 r->host, what, strerror(errno),
				 (unsigned long long)(time_now_ms() - started),
				 (unsigned long long)suppressed);
	}
	buf_free(&req);
	buf_free(&reply);
	return rc;
}
