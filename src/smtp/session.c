/* SMTP connection state machine (RFC 5321): greeting, command lines and their limits, the
 * commands of the session itself (EHLO, HELO, STARTTLS, NOOP, RSET, HELP, VRFY, QUIT) and
 * dispatch to the rest. Every reply carries an enhanced status code (RFC 2034). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	net_conn_vprintf_line(s->conn, fmt, ap);
	va_end(ap);
}

/* Closes once the replies already written have gone out (net flushes before it finalises,
 * also when the close comes from the completion of an offloaded job). */
void smtp_close_after_replies(struct smtp_session *s)
{
	net_conn_close(s->conn);
}

void smtp_error(struct smtp_session *s, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	smtp_reply(s, "%s", buf_cstr(&b));
	buf_free(&b);
	if (++s->bad_count >= (unsigned)s->deps->cfg->bad_commands) {
		smtp_reply(s, "421 4.7.0 %s Too many errors; closing connection",
			   s->deps->cfg->hostname);
		smtp_close_after_replies(s);
	}
}

static const char *const smtp_state_names[] = {
	[SMTP_STATE_CONNECTED] = "connected", [SMTP_STATE_GREETED] = "greeted",
	[SMTP_STATE_AUTH] = "auth",	      [SMTP_STATE_MAIL] = "mail",
	[SMTP_STATE_RCPT] = "rcpt",	      [SMTP_STATE_DATA] = "data",
	[SMTP_STATE_BDAT] = "bdat",	      [SMTP_STATE_CHUNKING] = "chunking",
	[SMTP_STATE_FINISHING] = "finishing",
};

void smtp_enter(struct smtp_session *s, enum smtp_state state)
{
	if (s->state == state)
		return;
	log_debug("proto=smtp conn=%llu msg=\"state\" from=%s to=%s",
		  (unsigned long long)net_conn_id(s->conn), smtp_state_names[s->state],
		  smtp_state_names[state]);
	s->state = state;
}

void smtp_enter_idle(struct smtp_session *s)
{
	smtp_enter(s, s->helo != NULL ? SMTP_STATE_GREETED : SMTP_STATE_CONNECTED);
}

bool smtp_plaintext_allowed(const struct smtp_session *s)
{
	return net_conn_plaintext_allowed(s->conn, s->deps->cfg->plaintext);
}

static void *smtp_open(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	enum listen_kind kind = net_conn_kind(conn);

	s->conn = conn;
	s->deps = ctx;
	s->submission = kind == LISTEN_SUBMISSION || kind == LISTEN_SUBMISSIONS;
	s->lmtp = kind == LISTEN_LMTP;
	auth_login_init(&s->login, s->deps->penalty, "smtp", (unsigned long long)net_conn_id(conn),
			net_conn_peer_ip(conn));
	buf_init(&s->out);
	net_conn_set_timeout(conn, (uint32_t)s->deps->cfg->smtp_timeout);
	smtp_reply(s, "220 %s %s Roost", s->deps->cfg->hostname, s->lmtp ? "LMTP" : "ESMTP");
	return s;
}

static bool smtp_helo_name_ok(const char *name)
{
	if (name[0] == '\0' || strlen(name) > 255)
		return false;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

/* RFC 5321 §4.1.4: EHLO resets the transaction and states the extensions. */
static void smtp_cmd_ehlo(struct smtp_session *s, const char *args, bool extended,
			  const char *verb)
{
	if (!smtp_helo_name_ok(args)) {
		smtp_error(s, "501 5.5.4 Syntax: %s hostname", verb);
		return;
	}
	smtp_txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(args);
	s->esmtp = extended;
	smtp_enter(s, SMTP_STATE_GREETED);
	if (!extended) {
		smtp_reply(s, "250 %s", s->deps->cfg->hostname);
	} else {
		smtp_reply(s, "250-%s Hello %s", s->deps->cfg->hostname, args);
		if (net_conn_tls_available(s->conn) && !s->lmtp)
			smtp_reply(s, "250-STARTTLS");
		if (s->submission && s->user == NULL && smtp_plaintext_allowed(s))
			smtp_reply(s, "250-AUTH %s", sasl_mechanisms(true));
		smtp_reply(s, "250-SIZE %lld", (long long)s->deps->cfg->message_size);
		if (!s->submission && !s->lmtp)
			smtp_reply(s, "250-ETRN");
		smtp_reply(s, "250-8BITMIME");
		smtp_reply(s, "250-SMTPUTF8");
		smtp_reply(s, "250-CHUNKING");
		smtp_reply(s, "250-DSN");
		smtp_reply(s, "250-PIPELINING");
		smtp_reply(s, "250 ENHANCEDSTATUSCODES");
	}
	/* RFC 2920 §3.1: the client waits for the EHLO reply before sending more. */
	if (net_conn_input_length(s->conn) > 0) {
		smtp_reply(s, "554 5.5.0 Improper use of SMTP command pipelining");
		net_conn_close(s->conn);
	}
}

static void smtp_cmd_starttls(struct smtp_session *s, const char *args)
{
	(void)args;
	if (net_conn_is_tls(s->conn)) {
		smtp_error(s, "503 5.5.1 TLS already active");
		return;
	}
	if (!net_conn_tls_available(s->conn)) {
		smtp_error(s, "454 4.7.0 TLS not available");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	net_conn_starttls(s->conn);
}

static void smtp_tls_ready(void *session)
{
	struct smtp_session *s = session;

	/* RFC 3207 §4.2: forget everything learned before TLS; the client starts over. */
	smtp_txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	smtp_enter(s, SMTP_STATE_CONNECTED);
}

/* A command runs only in the states of its mask; elsewhere the client gets refusal's reply
 * (counted as an error). A command that takes no arguments is refused with them first.
 * Commands whose checks come in an order of their own (AUTH, ETRN, BDAT) run in every
 * command state and check inside. */
struct smtp_command {
	const char *verb;
	void (*run)(struct smtp_session *s, const char *args);
	unsigned states;
	const char *(*refusal)(const struct smtp_session *s);
	bool no_args;
};

static void cmd_ehlo(struct smtp_session *s, const char *args)
{
	if (s->lmtp) {
		smtp_error(s, "500 5.5.1 This is LMTP: use LHLO");
		return;
	}
	smtp_cmd_ehlo(s, args, true, "EHLO");
}

static void cmd_helo(struct smtp_session *s, const char *args)
{
	if (s->lmtp) {
		smtp_error(s, "500 5.5.1 This is LMTP: use LHLO");
		return;
	}
	smtp_cmd_ehlo(s, args, false, "HELO");
}

static void cmd_lhlo(struct smtp_session *s, const char *args)
{
	if (!s->lmtp) {
		smtp_error(s, "500 5.5.2 Command unrecognized");
		return;
	}
	smtp_cmd_ehlo(s, args, true, "LHLO");
}

/* ETRN (RFC 1985 §4): start a queue run for the domain's waiting mail. The queue's state
 * files are rewritten (fsync), so the work runs on the pool. */
struct etrn_job {
	struct delivery *delivery;
	char *domain;
	int flushed;
};

static void etrn_work(void *arg)
{
	struct etrn_job *job = arg;

	job->flushed = delivery_flush_domain(job->delivery, job->domain);
}

static void etrn_done(void *session, void *arg)
{
	struct smtp_session *s = session;
	struct etrn_job *job = arg;

	if (job->flushed < 0)
		smtp_reply(s, "458 4.3.0 Unable to queue messages for %s", job->domain);
	else if (job->flushed == 0)
		smtp_reply(s, "251 2.0.0 No messages waiting for %s", job->domain);
	else
		smtp_reply(s, "250 2.0.0 Queuing for node %s started", job->domain);
	free(job->domain);
	free(job);
}

static void cmd_etrn(struct smtp_session *s, const char *args)
{
	struct etrn_job *job;

	if (s->submission || s->lmtp) {
		smtp_error(s, "502 5.5.1 ETRN is offered on the MX port only");
		return;
	}
	if (s->state == SMTP_STATE_CONNECTED) {
		smtp_error(s, "503 5.5.1 Send EHLO/HELO first");
		return;
	}
	if (args[0] == '\0' || args[0] == '@' || args[0] == '#' || strchr(args, ' ') != NULL ||
	    strlen(args) > 255) {
		smtp_error(s, "501 5.5.4 Syntax: ETRN domain");
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->delivery = s->deps->delivery;
	job->domain = xstrdup(args);
	net_conn_offload(s->conn, etrn_work, etrn_done, job);
}

static void cmd_mail(struct smtp_session *s, const char *args)
{
	smtp_cmd_mail(s, args);
}

static void cmd_rcpt(struct smtp_session *s, const char *args)
{
	smtp_cmd_rcpt(s, args);
}

static void cmd_data(struct smtp_session *s, const char *args)
{
	smtp_cmd_data(s, args);
}

static void cmd_bdat(struct smtp_session *s, const char *args)
{
	smtp_cmd_bdat(s, args);
}

static void cmd_noop(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, "250 2.0.0 OK");
}

static void cmd_rset(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_txn_reset(s);
	smtp_reply(s, "250 2.0.0 OK");
}

static void cmd_help(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, "214 2.0.0 Roost ESMTP; see RFC 5321");
}

/* VRFY answers the same for every address, so it is no oracle for which accounts exist. */
static void cmd_vrfy(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, "252 2.5.2 Cannot VRFY user; send some mail and we will try our best");
}

static void cmd_quit(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, "221 2.0.0 %s closing connection", s->deps->cfg->hostname);
	net_conn_close(s->conn);
}

static void cmd_auth(struct smtp_session *s, const char *args)
{
	smtp_cmd_auth(s, args);
}

#define SMTP_TXN_STATES                                                                     \
	(SMTP_IN(SMTP_STATE_MAIL) | SMTP_IN(SMTP_STATE_RCPT) | SMTP_IN(SMTP_STATE_CHUNKING))

static const struct smtp_command smtp_commands[] = {
	{ "EHLO", cmd_ehlo, SMTP_COMMAND_STATES, NULL, false },
	{ "HELO", cmd_helo, SMTP_COMMAND_STATES, NULL, false },
	{ "LHLO", cmd_lhlo, SMTP_COMMAND_STATES, NULL, false },
	{ "STARTTLS", smtp_cmd_starttls, SMTP_COMMAND_STATES, NULL, true },
	{ "AUTH", cmd_auth, SMTP_COMMAND_STATES, NULL, false },
	{ "MAIL", cmd_mail, SMTP_IN(SMTP_STATE_GREETED), smtp_mail_refusal, false },
	/* RCPT between BDAT chunks is accepted: the recipients are read at the end of data. */
	{ "RCPT", cmd_rcpt, SMTP_TXN_STATES, smtp_rcpt_refusal, false },
	{ "DATA", cmd_data, SMTP_IN(SMTP_STATE_RCPT), smtp_data_refusal, true },
	{ "BDAT", cmd_bdat, SMTP_COMMAND_STATES, NULL, false },
	{ "NOOP", cmd_noop, SMTP_COMMAND_STATES, NULL, false },
	{ "RSET", cmd_rset, SMTP_COMMAND_STATES, NULL, true },
	{ "HELP", cmd_help, SMTP_COMMAND_STATES, NULL, false },
	{ "VRFY", cmd_vrfy, SMTP_COMMAND_STATES, NULL, false },
	{ "ETRN", cmd_etrn, SMTP_COMMAND_STATES, NULL, false },
	{ "QUIT", cmd_quit, SMTP_COMMAND_STATES, NULL, false },
};

static void smtp_command(struct smtp_session *s, char *line, size_t len)
{
	size_t verb_len = strcspn(line, " ");
	const char *args = line + verb_len;

	if (memchr(line, '\0', len) != NULL) {
		smtp_error(s, "500 5.5.2 NUL character in command");
		return;
	}
	while (*args == ' ')
		args++;
	for (size_t i = 0; i < ARRAY_LEN(smtp_commands); i++) {
		const struct smtp_command *c = &smtp_commands[i];
		if (strlen(c->verb) == verb_len && str_nieq(line, c->verb, verb_len)) {
			if (c->no_args && args[0] != '\0')
				smtp_error(s, "501 5.5.4 %s takes no arguments", c->verb);
			else if (c->states & SMTP_IN(s->state))
				c->run(s, args);
			else
				smtp_error(s, "%s", c->refusal(s));
			return;
		}
	}
	smtp_error(s, "500 5.5.2 Command unrecognized");
}

static void smtp_input(void *session)
{
	struct smtp_session *s = session;

	while (!net_conn_is_closing(s->conn)) {
		char *line;
		size_t len;
		if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT) {
			if (!smtp_receive(s))
				return;
			continue;
		}
		size_t max = s->state == SMTP_STATE_AUTH ? LIMIT_SASL_RESPONSE
						 : (size_t)s->deps->cfg->smtp_line;
		enum net_line_status st = net_conn_read_line(s->conn, max, &line, &len, NULL);

		if (st == NET_LINE_NONE)
			return;
		if (s->state == SMTP_STATE_AUTH) {
			smtp_sasl_continue(s, st == NET_LINE_TOO_LONG ? NULL : line, len);
			continue;
		}
		if (st == NET_LINE_TOO_LONG) {
			smtp_error(s, "500 5.5.2 Line too long");
			continue;
		}
		smtp_command(s, line, len);
	}
}

void smtp_continue(struct smtp_session *s)
{
	smtp_input(s);
}

static void smtp_timeout(void *session)
{
	struct smtp_session *s = session;

	smtp_reply(s, "421 4.4.2 %s Timeout; closing connection", s->deps->cfg->hostname);
	net_conn_close(s->conn);
}

static void smtp_close(void *session)
{
	struct smtp_session *s = session;

	smtp_txn_reset(s);
	smtp_auth_end(s);
	free(s->helo);
	free(s);
}

const struct net_protocol smtp_protocol = {
	.name = "smtp",
	.refuse_line = "421 4.7.0 Too many connections from your address\r\n",
	.busy_line = "421 4.3.2 Too many connections; try again later\r\n",
	.open = smtp_open,
	.input = smtp_input,
	.tls_ready = smtp_tls_ready,
	.timeout = smtp_timeout,
	.drained = NULL,
	.close = smtp_close,
};
