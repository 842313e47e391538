/* SMTP AUTH (RFC 4954) on the submission listeners. The SASL exchange runs on the worker pool;
 * failures are answered after the penalty delay, the same for unknown users and bad
 * passwords (TESTPLAN §3.11). */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

void smtp_auth_end(struct smtp_session *s)
{
	free(s->sasl_success_user);
	s->sasl_success_user = NULL;
	sasl_free(&s->sasl);
	s->in_sasl_exchange = false;
	free(s->pending_reply);
	s->pending_reply = NULL;
	if (s->userip_counted)
		auth_userip_release(s->deps->penalty, s->user, net_conn_peer_ip(s->conn));
	s->userip_counted = false;
	free(s->user);
	s->user = NULL;
}

static void smtp_send_pending_reply(void *session)
{
	struct smtp_session *s = session;

	if (s->pending_reply) {
		smtp_reply(s, "%s", s->pending_reply);
		free(s->pending_reply);
		s->pending_reply = NULL;
	}
}

static void smtp_log_login_refused(struct smtp_session *s, const char *user, const char *reason)
{
	auth_log_login_failure("smtp", (unsigned long long)net_conn_id(s->conn),
			       net_conn_peer_ip(s->conn), user, reason, -1);
}

static void smtp_auth_succeeded(struct smtp_session *s, const char *user)
{
	const char *ip = net_conn_peer_ip(s->conn);

	if (!auth_userip_acquire(s->deps->penalty, user, ip)) {
		smtp_log_login_refused(s, user, "too many connections for user and address");
		smtp_reply(s, "454 4.7.0 Too many connections for this user from your address");
		return;
	}
	auth_penalty_success(s->deps->penalty, ip, user);
	s->user = xstrdup(user);
	s->userip_counted = true;
	net_conn_end_prelogin(s->conn);
	log_info("proto=smtp conn=%llu ip=%s user=%s msg=\"authenticated\"",
		 (unsigned long long)net_conn_id(s->conn), ip, user);
	smtp_reply(s, "235 2.7.0 Authentication successful");
}

static void smtp_auth_failed(struct smtp_session *s, const char *claimed, const char *reason)
{
	const char *ip = net_conn_peer_ip(s->conn);
	uint32_t delay = auth_penalty_fail(s->deps->penalty, ip, claimed);

	auth_log_login_failure("smtp", (unsigned long long)net_conn_id(s->conn), ip, claimed,
			       reason, delay);
	free(s->pending_reply);
	s->pending_reply = xstrdup("535 5.7.8 Authentication credentials invalid");
	if (delay == 0)
		smtp_send_pending_reply(s);
	else
		net_conn_delay(s->conn, delay, smtp_send_pending_reply);
}

static void smtp_sasl_done(void *session, void *arg)
{
	struct smtp_session *s = session;
	struct sasl_job *job = arg;
	char *claimed = sasl_claimed_user(s->sasl) ? xstrdup(sasl_claimed_user(s->sasl)) : NULL;
	char *user = NULL;

	switch (job->status) {
	case SASL_CONTINUE:
		smtp_reply(s, "334 %s", buf_cstr(&job->challenge));
		s->in_sasl_exchange = true;
		break;
	case SASL_OK:
		user = xstrdup(sasl_username(s->sasl));
		sasl_free(&s->sasl);
		/* RFC 4422 §5: where the protocol has no room for additional data with
		 * success (RFC 4954's 235 has none), SCRAM's server-final goes out as a
		 * challenge and the exchange completes on the client's empty response. */
		if (job->challenge.len > 0) {
			smtp_reply(s, "334 %s", buf_cstr(&job->challenge));
			s->sasl_success_user = user;
			s->in_sasl_exchange = true;
			user = NULL;
			break;
		}
		smtp_auth_succeeded(s, user);
		break;
	case SASL_FAILED:
		sasl_free(&s->sasl);
		smtp_auth_failed(s, claimed, job->reason);
		break;
	case SASL_CANCELLED:
		sasl_free(&s->sasl);
		smtp_log_login_refused(s, claimed, job->reason);
		smtp_error(s, "501 5.7.0 Authentication cancelled");
		break;
	case SASL_MALFORMED:
		sasl_free(&s->sasl);
		smtp_log_login_refused(s, claimed, job->reason);
		smtp_error(s, "501 5.5.2 Malformed authentication response");
		break;
	case SASL_TEMPFAIL:
		sasl_free(&s->sasl);
		smtp_log_login_refused(s, claimed, job->reason);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	free(user);
	free(claimed);
	sasl_job_free(&job);
}

static void smtp_sasl_submit(struct smtp_session *s, const char *line, size_t len)
{
	s->in_sasl_exchange = false;
	net_conn_offload(s->conn, sasl_job_run, smtp_sasl_done, sasl_job_new(s->sasl, line, len));
}

void smtp_sasl_continue(struct smtp_session *s, const char *line, size_t len)
{
	if (line == NULL) {
		sasl_free(&s->sasl);
		s->in_sasl_exchange = false;
		smtp_error(s, "500 5.5.6 Authentication exchange line is too long");
		return;
	}
	if (s->sasl_success_user != NULL) {
		/* The client's answer to the server-final 334 of a successful exchange. */
		char *user = s->sasl_success_user;
		s->sasl_success_user = NULL;
		s->in_sasl_exchange = false;
		if (len == 0 || (len == 1 && line[0] == '='))
			smtp_auth_succeeded(s, user);
		else
			smtp_error(s, "501 5.7.0 Authentication cancelled");
		free(user);
		return;
	}
	smtp_sasl_submit(s, line, len);
}

void smtp_cmd_auth(struct smtp_session *s, const char *args)
{
	char mech[32];
	size_t mech_len = strcspn(args, " ");
	const char *initial = args + mech_len;

	if (!s->submission) {
		smtp_error(s, "503 5.5.1 AUTH is offered on the submission ports only");
		return;
	}
	if (s->helo == NULL || !s->esmtp) {
		smtp_error(s, "503 5.5.1 Send EHLO first");
		return;
	}
	if (s->user != NULL) {
		smtp_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (mech_len == 0 || mech_len >= sizeof(mech)) {
		smtp_error(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	memcpy(mech, args, mech_len);
	mech[mech_len] = '\0';
	while (*initial == ' ')
		initial++;
	if (!smtp_plaintext_allowed(s)) {
		/* RFC 3207 §4: the plain form of RFC 4954's 538 */
		smtp_log_login_refused(s, NULL, "plaintext not allowed on this connection");
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (auth_penalty_refused(s->deps->penalty, net_conn_peer_ip(s->conn))) {
		smtp_log_login_refused(s, NULL, "address refused after too many failed logins");
		smtp_reply(s, "454 4.7.0 Too many failed logins from your address; try later");
		return;
	}
	s->sasl = sasl_new(s->deps->dir, mech, true);
	if (s->sasl == NULL) {
		smtp_log_login_refused(s, NULL, "unknown SASL mechanism");
		smtp_error(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	if (*initial != '\0')
		smtp_sasl_submit(s, initial, strlen(initial));
	else if (str_ieq(mech, "LOGIN"))
		smtp_sasl_submit(s, NULL, 0);
	else {
		smtp_reply(s, "334 ");
		s->in_sasl_exchange = true;
	}
}
