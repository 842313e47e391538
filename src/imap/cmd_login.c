/* LOGIN and AUTHENTICATE (RFC 9051 §6.2.2, §6.2.3; SASL-IR RFC 4959). Password checks run on
 * the worker pool; failures are answered only after the penalty delay, identical for unknown
 * users and wrong passwords. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

void imap_auth_session_end(struct imap_session *s)
{
	free(s->sasl_success_user);
	s->sasl_success_user = NULL;
	sasl_free(&s->sasl);
	free(s->auth_tag);
	s->auth_tag = NULL;
	s->in_sasl_exchange = false;
	auth_login_end(&s->login);
	free(s->user);
	s->user = NULL;
}

static void imap_login_succeeded(struct imap_session *s, const char *tag, const char *canonical)
{
	const char *ip = net_conn_peer_ip(s->conn);
	uint32_t wait_ms;

	if (auth_login_succeeded(&s->login, canonical, 0, &wait_ms) != AUTH_LOGIN_OK) {
		log_warn("proto=imap ip=%s user=%s msg=\"too many connections for user and address\"",
			 ip, canonical);
		imap_reply(s, "%s NO [LIMIT] Too many connections for this user from your address",
			   tag);
		return;
	}
	s->user = xstrdup(canonical);
	s->bad_count = 0;
	net_conn_set_timeout(s->conn, (uint32_t)s->deps->cfg->imap_timeout);
	net_conn_end_prelogin(s->conn);
	log_info("proto=imap conn=%llu ip=%s user=%s msg=\"logged in\"",
		 (unsigned long long)net_conn_id(s->conn), ip, canonical);
	/* The tagged OK follows once the account is open (cmd_select.c). */
	imap_account_open(s, tag);
}

/* After a failed login's delay: the reply its login object held. */
static void imap_send_held_reply(void *session)
{
	char *reply = auth_login_take_reply(&((struct imap_session *)session)->login);

	if (reply != NULL)
		imap_reply(session, "%s", reply);
	free(reply);
}

static void imap_login_failed(struct imap_session *s, const char *tag, const char *claimed,
			      const char *reason)
{
	char *reply = xasprintf("%s NO [AUTHENTICATIONFAILED] Authentication failed", tag);

	net_conn_delay(s->conn, auth_login_failed(&s->login, claimed, reason, reply),
		       imap_send_held_reply);
}

/* Refusals that come before any password is looked at. Returns true when it answered. */
static bool imap_login_precheck(struct imap_session *s, const char *tag)
{
	if (auth_login_address_refused(&s->login, NULL)) {
		imap_reply(s, "%s NO [UNAVAILABLE] Too many failed logins from your address; try later",
			   tag);
		return true;
	}
	return false;
}

/* ---------------- LOGIN ---------------- */

static void login_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct password_job *job = arg;
	char *tag = s->auth_tag;

	s->auth_tag = NULL;
	switch (job->result) {
	case AUTH_OK:
		imap_login_succeeded(s, tag, job->canonical);
		break;
	case AUTH_FAILED:
		imap_login_failed(s, tag, job->user, job->reason);
		break;
	case AUTH_TEMPFAIL:
		auth_login_refused(&s->login, job->user, job->reason);
		imap_reply(s, "%s NO [UNAVAILABLE] Temporary authentication failure", tag);
		break;
	}
	free(tag);
	password_job_free(&job);
}

void imap_cmd_login(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_slice user, pass;
	struct password_job *job;

	if (!imap_parse_astring(ps, &user) || !imap_parse_sp(ps) ||
	    !imap_parse_astring(ps, &pass) || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid LOGIN arguments");
		return;
	}
	if (imap_slice_has_ctl(&user) || imap_slice_has_ctl(&pass) ||
	    user.len > LIMIT_AUTH_FIELD || pass.len > LIMIT_AUTH_FIELD || user.len == 0) {
		imap_bad(s, tag, "Invalid user name or password");
		return;
	}
	if (!imap_plaintext_allowed(s)) {
		auth_login_refused(&s->login, NULL, "plaintext not allowed on this connection");
		imap_reply(s, "%s NO [PRIVACYREQUIRED] Plaintext login requires TLS", tag);
		return;
	}
	if (imap_login_precheck(s, tag))
		return;
	job = password_job_new(s->deps->dir, (const char *)user.data, user.len,
			       (const char *)pass.data, pass.len);
	mem_wipe(pass.data, pass.len);
	s->auth_tag = xstrdup(tag);
	net_conn_offload(s->conn, password_job_run, login_done, job);
}

/* ---------------- AUTHENTICATE ---------------- */

static void imap_sasl_finish(struct imap_session *s)
{
	free(s->sasl_success_user);
	s->sasl_success_user = NULL;
	sasl_free(&s->sasl);
	s->in_sasl_exchange = false;
	free(s->auth_tag);
	s->auth_tag = NULL;
}

static void sasl_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct sasl_job *job = arg;
	char *tag = xstrdup(s->auth_tag ? s->auth_tag : "*");
	char *claimed = sasl_claimed_user(s->sasl) ? xstrdup(sasl_claimed_user(s->sasl)) : NULL;

	switch (job->status) {
	case SASL_CONTINUE:
		imap_reply(s, "+ %s", buf_cstr(&job->challenge));
		s->in_sasl_exchange = true;
		break;
	case SASL_OK: {
		char *user = xstrdup(sasl_username(s->sasl));
		if (job->challenge.len > 0) {
			/* RFC 4422 §5: the server's final data (SCRAM's v=) travels in a
			 * continuation; the client answers with an empty response and only
			 * then does the tagged OK follow. */
			imap_reply(s, "+ %s", buf_cstr(&job->challenge));
			s->sasl_success_user = user;
			s->in_sasl_exchange = true;
			break;
		}
		imap_sasl_finish(s);
		imap_login_succeeded(s, tag, user);
		free(user);
		break;
	}
	case SASL_FAILED:
		imap_sasl_finish(s);
		imap_login_failed(s, tag, claimed, job->reason);
		break;
	case SASL_CANCELLED:
		imap_sasl_finish(s);
		auth_login_refused(&s->login, claimed, job->reason);
		/* RFC 9051 §6.2.2: a cancelled exchange is answered with BAD. */
		/* RFC 9051 §6.2.2 wants BAD, but a client that cancels made no syntax
		 * error: it does not count toward the bad-command limit. */
		imap_reply(s, "%s BAD Authentication cancelled", tag);
		break;
	case SASL_MALFORMED:
		imap_sasl_finish(s);
		auth_login_refused(&s->login, claimed, job->reason);
		imap_bad(s, tag, "Malformed authentication response");
		break;
	case SASL_TEMPFAIL:
		imap_sasl_finish(s);
		auth_login_refused(&s->login, claimed, job->reason);
		imap_reply(s, "%s NO [UNAVAILABLE] Temporary authentication failure", tag);
		break;
	}
	free(tag);
	free(claimed);
	sasl_job_free(&job);
}

static void imap_sasl_submit(struct imap_session *s, const char *line, size_t len)
{
	s->in_sasl_exchange = false;
	net_conn_offload(s->conn, sasl_job_run, sasl_done, sasl_job_new(s->sasl, line, len));
}

void imap_sasl_continue(struct imap_session *s, const char *line, size_t len)
{
	if (line == NULL) { /* over LIMIT_SASL_RESPONSE */
		char *tag = xstrdup(s->auth_tag ? s->auth_tag : "*");
		imap_sasl_finish(s);
		imap_bad(s, tag, "[TOOBIG] Authentication response too long");
		free(tag);
		return;
	}
	if (s->sasl_success_user != NULL) {
		char *tag = xstrdup(s->auth_tag ? s->auth_tag : "*");
		char *user = s->sasl_success_user;
		s->sasl_success_user = NULL;
		imap_sasl_finish(s);
		if (len == 0 || (len == 1 && line[0] == '='))
			imap_login_succeeded(s, tag, user);
		else if (len == 1 && line[0] == '*')
			imap_reply(s, "%s BAD Authentication cancelled", tag);
		else
			imap_bad(s, tag, "Expected an empty response");
		free(user);
		free(tag);
		return;
	}
	imap_sasl_submit(s, line, len);
}

void imap_cmd_authenticate(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_slice mech, initial;
	char mech_name[32];
	bool has_initial = false, needs_tls;

	if (!imap_parse_atom(ps, &mech) || mech.len >= sizeof(mech_name)) {
		imap_bad(s, tag, "Expected a mechanism name");
		return;
	}
	if (imap_peek(ps, ' ')) {
		ps->p++;
		/* SASL-IR: base64 or "=" for empty, as an atom. */
		uint8_t *start = ps->p;
		while (ps->p < ps->end && *ps->p != '\r' && *ps->p != '\n' && *ps->p != ' ')
			ps->p++;
		initial.data = start;
		initial.len = (size_t)(ps->p - start);
		has_initial = initial.len > 0;
	}
	if (!imap_parse_crlf(ps) || (has_initial && initial.len > LIMIT_SASL_RESPONSE)) {
		imap_bad(s, tag, "Invalid AUTHENTICATE arguments");
		return;
	}
	memcpy(mech_name, mech.data, mech.len);
	mech_name[mech.len] = '\0';
	s->sasl = auth_login_sasl_begin(&s->login, s->deps->dir, mech_name,
					imap_plaintext_allowed(s), &needs_tls);
	if (s->sasl == NULL) {
		if (needs_tls)
			imap_reply(s, "%s NO [PRIVACYREQUIRED] This mechanism requires TLS", tag);
		else
			imap_reply(s, "%s NO Unsupported authentication mechanism", tag);
		return;
	}
	if (imap_login_precheck(s, tag)) {
		sasl_free(&s->sasl);
		return;
	}
	s->auth_tag = xstrdup(tag);
	/* Without an initial response the first challenge is the mechanism's (sasl_step): LOGIN's
	 * "Username:", an empty one for the others. */
	if (has_initial)
		imap_sasl_submit(s, (const char *)initial.data, initial.len);
	else
		imap_sasl_submit(s, NULL, 0);
}
