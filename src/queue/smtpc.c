/* The outbound SMTP client (RFC 5321 client side): one transaction to one server with
 * opportunistic STARTTLS (RFC 3207), PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME,
 * DSN parameters passed on (RFC 3461) and AUTH PLAIN for a smarthost (RFC 4954). The data
 * is sent dot-stuffed with CRLF line ends only, whatever the stored message holds, so no
 * end-of-data ambiguity can leave this server (SMTP smuggling, outbound side). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "../net/client.h"
#include "queue_internal.h"

#define SMTPC_CONNECT_MS 30000
#define SMTPC_COMMAND_MS 300000 /* RFC 5321 §4.5.3.2: minutes, not seconds */
#define SMTPC_REPLY_LINE_MAX 2048
#define SMTPC_REPLY_LINES_MAX 100
/* A kept session is reused only while fresh: remote servers drop idle clients after a few
 * minutes (RFC 5321 §4.5.3.2.7 asks for at least 5), and we should not hold their slots. */
#define SMTPC_REUSE_MS 30000

/* One SMTP session with a server; kept open between messages to the same server. */
struct smtpc {
	struct net_client *conn;
	struct buf line;
	struct buf reply; /* the last reply, lines joined with a space */
	bool starttls, pipelining, eightbit, dsn, smtputf8, auth_plain;
	uint64_t size_limit;
	char ip[64];
	unsigned port;
	char *auth_user;  /* the AUTH identity this session has, or NULL */
	uint64_t idle_since_ms;
	bool reusable;	  /* the last transaction ended cleanly */
};

/* Reads one (possibly multi-line) reply; returns its code, or -1 on a broken connection. */
static int smtpc_reply(struct smtpc *c, char *err, size_t errlen)
{
	int code = -1;

	buf_reset(&c->reply);
	for (int n = 0; n < SMTPC_REPLY_LINES_MAX; n++) {
		if (net_client_read_line(c->conn, SMTPC_REPLY_LINE_MAX, &c->line, err, errlen) < 0)
			return -1;
		const char *l = (const char *)c->line.data;
		if (c->line.len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
		    l[2] < '0' || l[2] > '9' || (c->line.len > 3 && l[3] != ' ' && l[3] != '-')) {
			snprintf(err, errlen, "malformed reply: %.80s", l);
			return -1;
		}
		int this_code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
		if (code >= 0 && this_code != code) {
			snprintf(err, errlen, "inconsistent multi-line reply");
			return -1;
		}
		code = this_code;
		if (c->reply.len > 0)
			buf_append_byte(&c->reply, ' ');
		buf_append(&c->reply, c->line.data, c->line.len);
		if (c->line.len == 3 || l[3] == ' ') {
			buf_cstr(&c->reply);
			return code;
		}
	}
	snprintf(err, errlen, "reply with too many lines");
	return -1;
}

static int smtpc_send(struct smtpc *c, const char *text, char *err, size_t errlen)
{
	return net_client_write(c->conn, text, strlen(text), err, errlen);
}

/* Records the EHLO keywords we use. */
static void smtpc_parse_ehlo(struct smtpc *c)
{
	const char *p = (const char *)c->reply.data;

	c->starttls = c->pipelining = c->eightbit = c->dsn = c->smtputf8 = c->auth_plain = false;
	c->size_limit = 0;
	/* Lines were joined with spaces: each keyword follows "250-" or "250 ". */
	while ((p = strstr(p, "250")) != NULL) {
		p += 3;
		if (*p != '-' && *p != ' ')
			continue;
		p++;
		if (str_has_prefix_ci(p, "STARTTLS"))
			c->starttls = true;
		else if (str_has_prefix_ci(p, "PIPELINING"))
			c->pipelining = true;
		else if (str_has_prefix_ci(p, "8BITMIME"))
			c->eightbit = true;
		else if (str_has_prefix_ci(p, "DSN"))
			c->dsn = true;
		else if (str_has_prefix_ci(p, "SMTPUTF8"))
			c->smtputf8 = true;
		else if (str_has_prefix_ci(p, "SIZE "))
			c->size_limit = strtoull(p + 5, NULL, 10);
		else if (str_has_prefix_ci(p, "AUTH ") || str_has_prefix_ci(p, "AUTH="))
			c->auth_plain = strstr(p, "PLAIN") != NULL;
	}
}

static int smtpc_ehlo(struct smtpc *c, const char *helo, char *err, size_t errlen)
{
	char cmd[300];
	int code;

	snprintf(cmd, sizeof(cmd), "EHLO %s\r\n", helo);
	if (smtpc_send(c, cmd, err, errlen) < 0 || (code = smtpc_reply(c, err, errlen)) < 0)
		return -1;
	if (code == 250) {
		smtpc_parse_ehlo(c);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "HELO %s\r\n", helo);
	if (smtpc_send(c, cmd, err, errlen) < 0 || (code = smtpc_reply(c, err, errlen)) < 0)
		return -1;
	if (code != 250) {
		snprintf(err, errlen, "HELO refused: %s", buf_cstr(&c->reply));
		return -1;
	}
	smtpc_parse_ehlo(c); /* no extensions */
	return 0;
}

static bool has_8bit(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (data[i] & 0x80)
			return true;
	return false;
}

/* Sends data dot-stuffed, with every line end as CRLF, and the final ".". */
static int smtpc_send_data(struct smtpc *c, const uint8_t *prefix, size_t prefix_len,
			   const uint8_t *data, size_t len, char *err, size_t errlen)
{
	struct buf out;
	bool line_start = true;
	int ret = 0;
	const uint8_t *parts[2] = { prefix, data };
	size_t lens[2] = { prefix_len, len };

	buf_init(&out);
	for (int part = 0; part < 2 && ret == 0; part++) {
		for (size_t i = 0; i < lens[part]; i++) {
			uint8_t ch = parts[part][i];
			if (line_start && ch == '.')
				buf_append_byte(&out, '.');
			if (ch == '\r') {
				/* CR only as part of CRLF: a bare CR becomes a line end. */
				if (i + 1 < lens[part] && parts[part][i + 1] == '\n')
					i++;
				buf_append(&out, "\r\n", 2);
				line_start = true;
			} else if (ch == '\n') {
				buf_append(&out, "\r\n", 2);
				line_start = true;
			} else {
				buf_append_byte(&out, ch);
				line_start = false;
			}
			if (out.len >= 65536) {
				ret = net_client_write(c->conn, out.data, out.len, err, errlen);
				buf_reset(&out);
				if (ret < 0)
					break;
			}
		}
	}
	if (ret == 0) {
		if (!line_start)
			buf_append(&out, "\r\n", 2);
		buf_append(&out, ".\r\n", 3);
		ret = net_client_write(c->conn, out.data, out.len, err, errlen);
	}
	buf_free(&out);
	return ret;
}

static void set_all(const struct smtpc_request *req, int *codes, char **replies, int code,
		    const char *text)
{
	for (size_t i = 0; i < req->rcpt_count; i++) {
		if (codes[i] >= 500 || (codes[i] >= 200 && codes[i] < 300 && code < 300))
			continue; /* keep an earlier final refusal */
		codes[i] = code;
		free(replies[i]);
		replies[i] = xstrdup(text);
	}
}

static void smtpc_free(struct smtpc *c)
{
	net_client_close(&c->conn);
	buf_free(&c->line);
	buf_free(&c->reply);
	free(c->auth_user);
	free(c);
}

void smtpc_close(struct smtpc **cp)
{
	struct smtpc *c = cp ? *cp : NULL;
	char err[64];

	if (c == NULL)
		return;
	if (c->conn != NULL && c->reusable) {
		smtpc_send(c, "QUIT\r\n", err, sizeof(err));
		smtpc_reply(c, err, sizeof(err));
	}
	smtpc_free(c);
	*cp = NULL;
}

/* Connects, reads the greeting, EHLO, STARTTLS when offered, AUTH for a smarthost. */
static struct smtpc *smtpc_open(const struct smtpc_request *req, char *err, size_t errlen)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));
	int code;

	buf_init(&c->line);
	buf_init(&c->reply);
	snprintf(c->ip, sizeof(c->ip), "%s", req->ip);
	c->port = req->port;
	c->conn = net_client_connect(req->ip, req->port, SMTPC_CONNECT_MS, err, errlen);
	if (c->conn == NULL)
		goto fail;
	net_client_set_timeout(c->conn, SMTPC_COMMAND_MS);
	code = smtpc_reply(c, err, errlen);
	if (code < 0)
		goto fail;
	if (code != 220) {
		snprintf(err, errlen, "greeting: %s", buf_cstr(&c->reply));
		goto fail;
	}
	if (smtpc_ehlo(c, req->helo, err, errlen) < 0)
		goto fail;
	/* The smarthost gets a password: unless [relay] tls = none, no TLS means no delivery
	 * (and the password never leaves in clear text). */
	if (!c->starttls && req->tls != RELAY_TLS_NONE) {
		snprintf(err, errlen, "server does not offer STARTTLS ([relay] tls = %s)",
			 req->tls == RELAY_TLS_VERIFY ? "verify" : "encrypt");
		goto fail;
	}
	if (c->starttls) {
		struct net_client_verify verify = { req->ca_file };

		if (smtpc_send(c, "STARTTLS\r\n", err, errlen) < 0 ||
		    (code = smtpc_reply(c, err, errlen)) < 0)
			goto fail;
		if (code != 220 && req->tls != RELAY_TLS_NONE) {
			snprintf(err, errlen, "STARTTLS refused: %s", buf_cstr(&c->reply));
			goto fail;
		}
		if (code == 220) {
			if (net_client_starttls(c->conn, req->host,
						req->tls == RELAY_TLS_VERIFY ? &verify : NULL, err,
						errlen) < 0 ||
			    smtpc_ehlo(c, req->helo, err, errlen) < 0)
				goto fail;
		}
	}
	if (req->auth_user && req->auth_user[0]) {
		struct buf plain, b64, cmd;
		buf_init(&plain);
		buf_init(&b64);
		buf_init(&cmd);
		buf_append_byte(&plain, 0);
		buf_append_str(&plain, req->auth_user);
		buf_append_byte(&plain, 0);
		buf_append_str(&plain, req->auth_password ? req->auth_password : "");
		b64_encode(&b64, plain.data, plain.len);
		mem_wipe(plain.data, plain.len);
		buf_printf(&cmd, "AUTH PLAIN %s\r\n", buf_cstr(&b64));
		mem_wipe(b64.data, b64.len);
		int w = smtpc_send(c, buf_cstr(&cmd), err, errlen);
		mem_wipe(cmd.data, cmd.len);
		buf_free(&plain);
		buf_free(&b64);
		buf_free(&cmd);
		if (w < 0 || (code = smtpc_reply(c, err, errlen)) < 0)
			goto fail;
		if (code != 235) {
			snprintf(err, errlen, "smarthost refused AUTH: %s", buf_cstr(&c->reply));
			goto fail;
		}
		c->auth_user = xstrdup(req->auth_user);
	}
	return c;
fail:
	smtpc_free(c);
	return NULL;
}

/* One mail transaction on an open session. Returns 0 when the server answered for every
 * recipient (codes/replies filled), -1 when the connection failed before that. On return
 * c->reusable tells whether the session may carry another message. */
static int smtpc_transaction(struct smtpc *c, const struct smtpc_request *req, int *codes,
			     char **replies, char *err, size_t errlen)
{
	struct buf cmd;
	int code, ret = -1;
	size_t accepted = 0;
	bool eight = has_8bit(req->data, req->len);

	c->reusable = false;
	buf_init(&cmd);
	if (c->size_limit > 0 && req->len + req->prefix_len > c->size_limit) {
		set_all(req, codes, replies, 552, "552 5.3.4 message larger than the server accepts");
		c->reusable = true;
		buf_free(&cmd);
		return 0;
	}
	/* MAIL and every RCPT in one write when the server pipelines (RFC 2920 §3.1). */
	buf_printf(&cmd, "MAIL FROM:<%s>", req->sender);
	if (c->size_limit > 0)
		buf_printf(&cmd, " SIZE=%zu", req->len + req->prefix_len);
	if (eight && c->eightbit)
		buf_append_str(&cmd, " BODY=8BITMIME");
	if (c->dsn && req->ret)
		buf_printf(&cmd, " RET=%s", req->ret);
	if (c->dsn && req->envid)
		buf_printf(&cmd, " ENVID=%s", req->envid);
	buf_append_str(&cmd, "\r\n");
	if (!c->pipelining) {
		if (smtpc_send(c, buf_cstr(&cmd), err, errlen) < 0)
			goto out;
		buf_reset(&cmd);
		if ((code = smtpc_reply(c, err, errlen)) < 0)
			goto out;
		if (code != 250) {
			set_all(req, codes, replies, code, buf_cstr(&c->reply));
			ret = 0;
			goto reset;
		}
	}
	for (size_t i = 0; i < req->rcpt_count; i++) {
		const struct queue_rcpt *r = req->rcpts[i];
		buf_printf(&cmd, "RCPT TO:<%s>", r->address);
		if (c->dsn && r->notify[0])
			buf_printf(&cmd, " NOTIFY=%s", r->notify);
		if (c->dsn && r->orcpt[0])
			buf_printf(&cmd, " ORCPT=%s", r->orcpt);
		buf_append_str(&cmd, "\r\n");
		if (!c->pipelining) {
			if (smtpc_send(c, buf_cstr(&cmd), err, errlen) < 0)
				goto out;
			buf_reset(&cmd);
			if ((code = smtpc_reply(c, err, errlen)) < 0)
				goto out;
			codes[i] = code;
			replies[i] = xstrdup(buf_cstr(&c->reply));
			if (code >= 200 && code < 300)
				accepted++;
		}
	}
	if (c->pipelining) {
		if (smtpc_send(c, buf_cstr(&cmd), err, errlen) < 0)
			goto out;
		buf_reset(&cmd);
		if ((code = smtpc_reply(c, err, errlen)) < 0)
			goto out;
		bool mail_ok = code == 250;
		char *mail_reply = xstrdup(buf_cstr(&c->reply));
		for (size_t i = 0; i < req->rcpt_count; i++) {
			if ((code = smtpc_reply(c, err, errlen)) < 0) {
				free(mail_reply);
				goto out;
			}
			codes[i] = mail_ok ? code : (code >= 500 ? code : 451);
			replies[i] = xstrdup(mail_ok ? buf_cstr(&c->reply) : mail_reply);
			if (mail_ok && code >= 200 && code < 300)
				accepted++;
		}
		free(mail_reply);
	}
	if (accepted == 0) {
		ret = 0;
		goto reset;
	}
	if (smtpc_send(c, "DATA\r\n", err, errlen) < 0 || (code = smtpc_reply(c, err, errlen)) < 0)
		goto out;
	if (code != 354) {
		for (size_t i = 0; i < req->rcpt_count; i++) {
			if (codes[i] < 200 || codes[i] >= 300)
				continue;
			codes[i] = code;
			free(replies[i]);
			replies[i] = xstrdup(buf_cstr(&c->reply));
		}
		ret = 0;
		goto reset;
	}
	if (smtpc_send_data(c, req->prefix, req->prefix_len, req->data, req->len, err, errlen) < 0 ||
	    (code = smtpc_reply(c, err, errlen)) < 0) {
		/* After the data, a lost reply leaves us not knowing: treat as temporary. */
		for (size_t i = 0; i < req->rcpt_count; i++) {
			if (codes[i] >= 200 && codes[i] < 300) {
				codes[i] = 451;
				free(replies[i]);
				replies[i] = xasprintf("451 4.4.2 no reply after data: %s", err);
			}
		}
		ret = 0;
		goto out;
	}
	for (size_t i = 0; i < req->rcpt_count; i++) {
		if (codes[i] < 200 || codes[i] >= 300)
			continue;
		codes[i] = code;
		free(replies[i]);
		replies[i] = xstrdup(buf_cstr(&c->reply));
	}
	c->reusable = true; /* a finished transaction leaves the session ready for the next */
	ret = 0;
	goto out;
reset:
	/* The transaction was refused part way: RSET makes the session clean again. */
	if (smtpc_send(c, "RSET\r\n", err, errlen) == 0 && smtpc_reply(c, err, errlen) == 250)
		c->reusable = true;
out:
	buf_free(&cmd);
	return ret;
}

int smtpc_deliver(struct smtpc **session, const struct smtpc_request *req, int *codes,
		  char **replies, char *err, size_t errlen)
{
	struct smtpc *c = *session;
	const char *auth = req->auth_user && req->auth_user[0] ? req->auth_user : NULL;
	int ret;

	for (size_t i = 0; i < req->rcpt_count; i++) {
		codes[i] = 0;
		replies[i] = NULL;
	}
	/* Reuse the session kept from the previous message when it goes to the same server, as
	 * the same client, and is still fresh; a RSET proves it is alive. */
	if (c != NULL) {
		bool same = strcmp(c->ip, req->ip) == 0 && c->port == req->port &&
			    ((auth == NULL && c->auth_user == NULL) ||
			     (auth && c->auth_user && strcmp(auth, c->auth_user) == 0));
		if (!same || !c->reusable || time_now_ms() - c->idle_since_ms > SMTPC_REUSE_MS ||
		    smtpc_send(c, "RSET\r\n", err, errlen) < 0 || smtpc_reply(c, err, errlen) != 250)
			smtpc_close(session);
		c = *session;
	}
	if (c == NULL) {
		c = smtpc_open(req, err, errlen);
		if (c == NULL)
			return -1;
		*session = c;
	}
	ret = smtpc_transaction(c, req, codes, replies, err, errlen);
	if (ret < 0 || !c->reusable) {
		c->reusable = false;
		smtpc_close(session);
	} else {
		c->idle_since_ms = time_now_ms();
	}
	return ret;
}
