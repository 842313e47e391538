/* SMTP AUTH (RFC 4954) on the submission listeners. The SASL exchange runs on the worker pool;
 * the login itself (penalties, delays, per-user counts) is auth's struct auth_login. Failures
 * are answered after the penalty delay, the same for unknown users and bad passwords, so that
 * AUTH cannot tell which accounts exist. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

void smtp_auth_end(struct smtp_session *s)
{
	free(s->sasl_success_user);
	s->sasl_success_user = NULL;
	sasl_free(&s->sasl);
	auth_login_end(&s->login);
	free(s->user);
	s->user = NULL;
}

/* After a failed login's delay: the reply its login object held. */
static void smtp_send_held_reply(void *session)
{
	char *reply = auth_login_take_reply(&((struct smtp_session *)session)->login);

	if (reply != NULL)
		smtp_reply(session, "%s", reply);
	free(reply);
}

void smtp_reply_after(struct smtp_session *s, uint32_t delay_ms)
{
	net_conn_delay(s->conn, delay_ms, smtp_send_held_reply);
}

static void smtp_auth_succeeded(struct smtp_session *s, const char *user)
{
	uint32_t wait_ms;

	if (auth_login_succeeded(&s->login, user, 0, &wait_ms) != AUTH_LOGIN_OK) {
		smtp_reply(s, "454 4.7.0 Too many connections for this user from your address");
		return;
	}
	s->user = xstrdup(user);
	net_conn_end_prelogin(s->conn);
	log_info("proto=smtp conn=%llu ip=%s user=%s msg=\"authenticated\"",
		 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn), user);
	smtp_reply(s, "235 2.7.0 Authentication successful");
}

static void smtp_auth_failed(struct smtp_session *s, const char *claimed, const char *reason)
{
	smtp_reply_after(s, auth_login_failed(&s->login, claimed, reason,
					      xstrdup("535 5.7.8 Authentication credentials invalid")));
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
		smtp_enter(s, SMTP_STATE_AUTH);
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
			smtp_enter(s, SMTP_STATE_AUTH);
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
		auth_login_refused(&s->login, claimed, job->reason);
		smtp_error(s, "501 5.7.0 Authentication cancelled");
		break;
	case SASL_MALFORMED:
		sasl_free(&s->sasl);
		auth_login_refused(&s->login, claimed, job->reason);
		smtp_error(s, "501 5.5.2 Malformed authentication response");
		break;
	case SASL_TEMPFAIL:
		sasl_free(&s->sasl);
		auth_login_refused(&s->login, claimed, job->reason);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	free(user);
	free(claimed);
	sasl_job_free(&job);
}

static void smtp_sasl_submit(struct smtp_session *s, const char *line, size_t len)
{
	smtp_enter(s, SMTP_STATE_GREETED);
	net_conn_offload(s->conn, sasl_job_run, smtp_sasl_done, sasl_job_new(s->sasl, line, len));
}

void smtp_sasl_continue(struct smtp_session *s, const char *line, size_t len)
{
	if (line == NULL) {
		sasl_free(&s->sasl);
		smtp_enter(s, SMTP_STATE_GREETED);
		smtp_error(s, "500 5.5.6 Authentication exchange line is too long");
		return;
	}
	if (s->sasl_success_user != NULL) {
		/* The client's answer to the server-final 334 of a successful exchange. */
		char *user = s->sasl_success_user;
		s->sasl_success_user = NULL;
		smtp_enter(s, SMTP_STATE_GREETED);
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
	bool needs_tls;

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
		auth_login_refused(&s->login, NULL, "plaintext not allowed on this connection");
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (auth_login_address_refused(&s->login, NULL)) {
		smtp_reply(s, "454 4.7.0 Too many failed logins from your address; try later");
		return;
	}
	s->sasl = auth_login_sasl_begin(&s->login, s->deps->dir, mech, true, &needs_tls);
	if (s->sasl == NULL) {
		smtp_error(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	/* Without an initial response the first challenge is the mechanism's (sasl_step): LOGIN's
	 * "Username:", an empty one for the others. */
	smtp_sasl_submit(s, *initial != '\0' ? initial : NULL, strlen(initial));
}
