/* POP3 connection state machine: the connection callbacks, command dispatch, and the
 * AUTHORIZATION state (CAPA, USER/PASS, AUTH, STLS, QUIT) with the shared SASL mechanisms and
 * login penalties. Password checks run on the worker pool; the TRANSACTION and UPDATE states
 * live in transaction.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/core.h"
#include "session.h"

void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	net_conn_vprintf_line(s->conn, fmt, ap);
	va_end(ap);
}

void pop3_error(struct pop3_session *s, const char *text)
{
	pop3_reply(s, "-ERR %s", text);
	if (++s->bad_count >= (unsigned)s->deps->cfg->bad_commands) {
		pop3_reply(s, "-ERR Too many errors; closing connection");
		net_conn_close(s->conn);
	}
}

static bool pop3_plaintext_allowed(const struct pop3_session *s)
{
	return net_conn_plaintext_allowed(s->conn, s->deps->cfg->plaintext);
}

static void *pop3_open(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->conn = conn;
	s->deps = ctx;
	s->state = POP3_AUTHORIZATION;
	auth_login_init(&s->login, s->deps->penalty, "pop3", (unsigned long long)net_conn_id(conn),
			net_conn_peer_ip(conn));
	net_conn_set_timeout(conn, (uint32_t)s->deps->cfg->pop3_timeout);
	pop3_reply(s, "+OK Roost POP3 ready");
	return s;
}

/* ---------------- login ---------------- */

static void pop3_login_succeeded(struct pop3_session *s, const char *user)
{
	int64_t min_interval_s = s->deps->cfg->pop3_login_delay;
	uint32_t wait_ms;

	switch (auth_login_succeeded(&s->login, user,
				     min_interval_s > 0 ? (uint32_t)(min_interval_s * 1000) : 0,
				     &wait_ms)) {
	case AUTH_LOGIN_OK:
		pop3_transaction_begin(s, user);
		break;
	case AUTH_LOGIN_TOO_SOON: /* RFC 2449 §6.5, §8.1.1 */
		log_info("proto=pop3 conn=%llu ip=%s user=%s msg=\"login within login_delay\" "
			 "wait_ms=%u", (unsigned long long)net_conn_id(s->conn),
			 net_conn_peer_ip(s->conn), user, wait_ms);
		pop3_reply(s, "-ERR [LOGIN-DELAY] Logins are at least %lld seconds apart; try "
			   "again in %u seconds", (long long)min_interval_s, (wait_ms + 999) / 1000);
		break;
	case AUTH_LOGIN_LIMIT:
		pop3_reply(s, "-ERR [IN-USE] Too many connections for this user from your address");
		break;
	}
}

/* After a failed login's delay: the reply its login object held. */
static void pop3_send_held_reply(void *session)
{
	char *reply = auth_login_take_reply(&((struct pop3_session *)session)->login);

	if (reply != NULL)
		pop3_reply(session, "%s", reply);
	free(reply);
}

static void pop3_login_failed(struct pop3_session *s, const char *claimed, const char *reason)
{
	net_conn_delay(s->conn, auth_login_failed(&s->login, claimed, reason,
						  xstrdup("-ERR [AUTH] Authentication failed")),
		       pop3_send_held_reply);
}

static void pop3_sasl_done(void *session, void *arg)
{
	struct pop3_session *s = session;
	struct sasl_job *job = arg;
	char *claimed = sasl_claimed_user(s->sasl) ? xstrdup(sasl_claimed_user(s->sasl)) : NULL;

	if (job->status == SASL_CONTINUE) {
		pop3_reply(s, "+ %s", buf_cstr(&job->challenge));
		s->in_sasl_exchange = true;
		goto out;
	}
	if (job->status == SASL_OK && job->challenge.len > 0) {
		/* RFC 5034 §4: additional data with success is sent as a challenge, and the
		 * exchange completes on the client's empty response. */
		pop3_reply(s, "+ %s", buf_cstr(&job->challenge));
		free(s->user_arg);
		s->user_arg = xstrdup(sasl_username(s->sasl));
		sasl_free(&s->sasl);
		s->in_sasl_exchange = true;
		goto out;
	}
	switch (job->status) {
	case SASL_OK:
		pop3_login_succeeded(s, sasl_username(s->sasl));
		break;
	case SASL_FAILED:
		pop3_login_failed(s, claimed, job->reason);
		break;
	case SASL_CANCELLED:
		auth_login_refused(&s->login, claimed, job->reason);
		pop3_error(s, "Authentication cancelled");
		break;
	case SASL_MALFORMED:
		auth_login_refused(&s->login, claimed, job->reason);
		pop3_error(s, "Malformed authentication response");
		break;
	case SASL_TEMPFAIL:
	case SASL_CONTINUE:
		auth_login_refused(&s->login, claimed, job->reason);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
		break;
	}
	sasl_free(&s->sasl);
out:
	free(claimed);
	sasl_job_free(&job);
}

static void pop3_password_done(void *session, void *arg)
{
	struct pop3_session *s = session;
	struct password_job *job = arg;

	if (job->result == AUTH_OK) {
		pop3_login_succeeded(s, job->canonical);
	} else if (job->result == AUTH_FAILED) {
		pop3_login_failed(s, job->user, job->reason);
	} else {
		auth_login_refused(&s->login, job->user, job->reason);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
	}
	password_job_free(&job);
}

static void pop3_submit_sasl(struct pop3_session *s, const char *line, size_t len)
{
	s->in_sasl_exchange = false;
	net_conn_offload(s->conn, sasl_job_run, pop3_sasl_done, sasl_job_new(s->sasl, line, len));
}

static bool pop3_login_precheck(struct pop3_session *s)
{
	if (!pop3_plaintext_allowed(s)) {
		auth_login_refused(&s->login, s->user_arg, "plaintext not allowed on this connection");
		pop3_reply(s, "-ERR [AUTH] Plaintext authentication requires TLS (use STLS)");
		return false;
	}
	if (auth_login_address_refused(&s->login, s->user_arg)) {
		pop3_reply(s, "-ERR [SYS/TEMP] Too many failed logins from your address; try later");
		return false;
	}
	return true;
}

static void pop3_cmd_user(struct pop3_session *s, const char *arg)
{
	if (arg[0] == '\0' || strlen(arg) > LIMIT_AUTH_FIELD) {
		pop3_error(s, "Syntax: USER name");
		return;
	}
	if (!pop3_plaintext_allowed(s)) {
		auth_login_refused(&s->login, arg, "plaintext not allowed on this connection");
		pop3_reply(s, "-ERR [AUTH] Plaintext authentication requires TLS (use STLS)");
		return;
	}
	free(s->user_arg);
	s->user_arg = xstrdup(arg);
	pop3_reply(s, "+OK");
}

static void pop3_cmd_pass(struct pop3_session *s, char *arg)
{
	struct password_job *job;

	if (s->user_arg == NULL) {
		pop3_error(s, "USER first");
		return;
	}
	if (!pop3_login_precheck(s))
		return;
	job = password_job_new(s->deps->dir, s->user_arg, strlen(s->user_arg), arg, strlen(arg));
	mem_wipe(arg, strlen(arg));
	free(s->user_arg);
	s->user_arg = NULL;
	net_conn_offload(s->conn, password_job_run, pop3_password_done, job);
}

static void pop3_cmd_auth(struct pop3_session *s, const char *arg)
{
	char mech[32];
	size_t mech_len = strcspn(arg, " ");
	const char *initial = arg + mech_len;
	bool needs_tls;

	if (mech_len == 0) {
		/* Pre-RFC 5034 clients ask for the list this way. */
		const char *m = sasl_mechanisms(pop3_plaintext_allowed(s));
		pop3_reply(s, "+OK Mechanisms follow");
		while (*m) {
			size_t n = strcspn(m, " ");
			pop3_reply(s, "%.*s", (int)n, m);
			m += n;
			while (*m == ' ')
				m++;
		}
		pop3_reply(s, ".");
		return;
	}
	if (mech_len >= sizeof(mech)) {
		pop3_error(s, "Unknown mechanism");
		return;
	}
	memcpy(mech, arg, mech_len);
	mech[mech_len] = '\0';
	while (*initial == ' ')
		initial++;
	if (auth_login_address_refused(&s->login, NULL)) {
		pop3_reply(s, "-ERR [SYS/TEMP] Too many failed logins from your address; try later");
		return;
	}
	s->sasl = auth_login_sasl_begin(&s->login, s->deps->dir, mech, pop3_plaintext_allowed(s),
					&needs_tls);
	if (s->sasl == NULL) {
		if (needs_tls)
			pop3_reply(s, "-ERR [AUTH] This mechanism requires TLS (use STLS)");
		else
			pop3_error(s, "Unknown mechanism");
		return;
	}
	/* Without an initial response the first challenge is the mechanism's (sasl_step): LOGIN's
	 * "Username:", an empty one for the others. */
	pop3_submit_sasl(s, *initial != '\0' ? initial : NULL, strlen(initial));
}

static void pop3_sasl_line(struct pop3_session *s, const char *line, size_t len)
{
	if (line == NULL) {
		sasl_free(&s->sasl);
		s->in_sasl_exchange = false;
		pop3_error(s, "Authentication response too long");
		return;
	}
	if (s->sasl == NULL) { /* reply to the server-final challenge */
		char *user = s->user_arg;
		s->user_arg = NULL;
		s->in_sasl_exchange = false;
		if (user != NULL && (len == 0 || (len == 1 && line[0] == '=')))
			pop3_login_succeeded(s, user);
		else
			pop3_error(s, "Authentication cancelled");
		free(user);
		return;
	}
	pop3_submit_sasl(s, line, len);
}

/* ---------------- other commands ---------------- */

/* RFC 2449 §5 CAPA; the list differs between the states (§6: USER, SASL and STLS only before
 * login). */
static void pop3_cmd_capa(struct pop3_session *s)
{
	const struct config *cfg = s->deps->cfg;

	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	if (s->state == POP3_AUTHORIZATION) {
		if (pop3_plaintext_allowed(s))
			pop3_reply(s, "USER");
		pop3_reply(s, "SASL %s", sasl_mechanisms(pop3_plaintext_allowed(s)));
		if (net_conn_tls_available(s->conn))
			pop3_reply(s, "STLS");
	}
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	/* RFC 2449 §6.7: messages leave the maildrop only through the client's DELE (whatever
	 * delete_action does with them afterwards), except that [imap] autoexpunge_days removes
	 * old Junk mail, which is part of the maildrop with include_junk. include_junk may be
	 * set per account, so before login the smallest value any user could have is announced
	 * with "USER", and the user's own after it. */
	if (cfg->imap_autoexpunge_days <= 0)
		pop3_reply(s, "EXPIRE NEVER");
	else if (s->state == POP3_AUTHORIZATION)
		pop3_reply(s, "EXPIRE %lld USER", (long long)cfg->imap_autoexpunge_days);
	else if (s->md != NULL && s->md->settings.pop3_include_junk)
		pop3_reply(s, "EXPIRE %lld", (long long)cfg->imap_autoexpunge_days);
	else
		pop3_reply(s, "EXPIRE NEVER");
	/* RFC 2449 §6.5: the same for every user, so no "USER" suffix; 0 means none. */
	pop3_reply(s, "LOGIN-DELAY %lld", (long long)cfg->pop3_login_delay);
	pop3_reply(s, "IMPLEMENTATION Roost");
	pop3_reply(s, ".");
}

static void pop3_cmd_stls(struct pop3_session *s)
{
	if (s->state != POP3_AUTHORIZATION || !net_conn_tls_available(s->conn)) {
		pop3_error(s, net_conn_is_tls(s->conn) ? "TLS already active"
						       : "STLS not available");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	net_conn_starttls(s->conn);
}

static void pop3_authorization_command(struct pop3_session *s, enum pop3_verb verb, char *arg)
{
	switch (verb) {
	case POP3_CMD_USER:
		pop3_cmd_user(s, arg);
		break;
	case POP3_CMD_PASS:
		pop3_cmd_pass(s, arg);
		break;
	case POP3_CMD_AUTH:
		pop3_cmd_auth(s, arg);
		break;
	case POP3_CMD_STLS:
		pop3_cmd_stls(s);
		break;
	case POP3_CMD_APOP:
		/* RFC 1939 §7 makes APOP optional; it needs the plaintext password stored on
		 * the server, which Roost never keeps, so it is neither announced nor accepted. */
		pop3_error(s, "APOP is not supported; use USER/PASS or AUTH");
		break;
	default:
		pop3_error(s, "Unknown command or not allowed before login");
		break;
	}
}

static void pop3_command(struct pop3_session *s, char *line, size_t len)
{
	const char *carg;
	enum pop3_verb verb;
	size_t max = POP3_COMMAND_MAX;

	if (memchr(line, '\0', len) != NULL) {
		pop3_error(s, "NUL character in command");
		return;
	}
	verb = pop3_command_parse(line, len, &carg);
	/* AUTH carries an initial response (RFC 5034 §4) and PASS a password, both beyond RFC
	 * 2449 §4's 255 octets: AUTH up to what pop3_line_cap lets it read, PASS up to
	 * LIMIT_POP3_LINE (a longer password goes through AUTH PLAIN). */
	if (verb == POP3_CMD_AUTH)
		max = LIMIT_SASL_RESPONSE;
	else if (verb == POP3_CMD_PASS)
		max = LIMIT_POP3_LINE;
	if (len > max) {
		pop3_error(s, "Command line too long");
		return;
	}
	switch (verb) {
	case POP3_CMD_QUIT:
		if (s->state == POP3_TRANSACTION) {
			pop3_transaction_command(s, verb, carg);
			return;
		}
		pop3_reply(s, "+OK Roost POP3 signing off");
		net_conn_close(s->conn);
		return;
	case POP3_CMD_CAPA:
		pop3_cmd_capa(s);
		return;
	default:
		break;
	}
	if (s->state == POP3_AUTHORIZATION)
		pop3_authorization_command(s, verb, line + (carg - line));
	else if (s->state == POP3_TRANSACTION)
		pop3_transaction_command(s, verb, carg);
}

/* How long the next line may be. Command lines, before login too, are read only up to
 * LIMIT_POP3_LINE, so a client holds no more of the server's memory than that, with one
 * exception decided from the line's first octets: an AUTH line, whose initial response may be
 * as long as a SASL response (RFC 4616's 255-octet PLAIN fields are over 255 octets once
 * encoded, whatever RFC 5034 §4 advises clients), and the responses of an exchange. */
static size_t pop3_line_cap(struct pop3_session *s)
{
	const uint8_t *head;
	size_t len;

	if (s->in_sasl_exchange)
		return LIMIT_SASL_RESPONSE;
	if (s->state != POP3_AUTHORIZATION)
		return LIMIT_POP3_LINE;
	head = net_conn_peek(s->conn, 5, &len);
	if (len == 5 && strncasecmp((const char *)head, "AUTH ", 5) == 0)
		return LIMIT_SASL_RESPONSE;
	return LIMIT_POP3_LINE;
}

void pop3_input(void *session)
{
	struct pop3_session *s = session;

	/* One command at a time: while a reply is still being streamed or a store job runs,
	 * pipelined commands wait in the input buffer (RFC 2449 §6.6 keeps their order). */
	while (!net_conn_is_closing(s->conn) && s->out == POP3_OUT_NONE &&
	       s->state != POP3_UPDATE) {
		char *line;
		size_t len;
		enum net_line_status st =
			net_conn_read_line(s->conn, pop3_line_cap(s), &line, &len, NULL);

		if (st == NET_LINE_NONE)
			return;
		if (s->in_sasl_exchange) {
			pop3_sasl_line(s, st == NET_LINE_TOO_LONG ? NULL : line, len);
			continue;
		}
		if (st == NET_LINE_TOO_LONG) {
			pop3_error(s, "Command line too long");
			continue;
		}
		pop3_command(s, line, len);
	}
}

static void pop3_tls_ready(void *session)
{
	struct pop3_session *s = session;

	free(s->user_arg);
	s->user_arg = NULL;
}

static void pop3_timeout(void *session)
{
	struct pop3_session *s = session;

	pop3_reply(s, "-ERR Autologout; idle for too long");
	net_conn_close(s->conn);
}

static void pop3_close(void *session)
{
	struct pop3_session *s = session;

	pop3_transaction_end(s);
	sasl_free(&s->sasl);
	auth_login_end(&s->login);
	free(s->user);
	free(s->user_arg);
	free(s);
}

const struct net_protocol pop3_protocol = {
	.name = "pop3",
	.refuse_line = "-ERR [SYS/TEMP] Too many connections from your address\r\n",
	.busy_line = "-ERR [SYS/TEMP] Too many connections; try again later\r\n",
	.open = pop3_open,
	.input = pop3_input,
	.tls_ready = pop3_tls_ready,
	.timeout = pop3_timeout,
	.drained = pop3_transaction_drained,
	.close = pop3_close,
};
