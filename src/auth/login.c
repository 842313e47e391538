/* The lifecycle of one login, the same for SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3
 * USER/PASS/AUTH: the address check before any password is looked at, the penalty and its
 * delay after a failure, the per-user+address session count and POP3's LOGIN-DELAY after a
 * success, and the release of both when the session ends. The protocols keep only their reply
 * wording and the scheduling of the delayed reply on their connection (auth has no event
 * loop). Every path that turns a login away writes the one log line of login_log.c. */
#include <stdlib.h>

#include "auth.h"

void auth_login_init(struct auth_login *l, struct auth_penalty *penalty, const char *proto,
		     unsigned long long conn, const char *ip)
{
	*l = (struct auth_login){ .penalty = penalty, .proto = proto, .conn = conn, .ip = ip };
}

void auth_login_refused(const struct auth_login *l, const char *user, const char *reason)
{
	auth_log_login_failure(l->proto, l->conn, l->ip, user, reason, -1);
}

bool auth_login_address_refused(const struct auth_login *l, const char *user)
{
	if (!auth_penalty_refused(l->penalty, l->ip))
		return false;
	auth_login_refused(l, user, "address refused after too many failed logins");
	return true;
}

struct sasl_session *auth_login_sasl_begin(const struct auth_login *l, struct auth_directory *dir,
					   const char *mech, bool plaintext_allowed,
					   bool *needs_tls_r)
{
	struct sasl_session *sasl = sasl_new(dir, mech, plaintext_allowed);

	*needs_tls_r = false;
	if (sasl != NULL)
		return sasl;
	*needs_tls_r = !plaintext_allowed && (str_ieq(mech, "PLAIN") || str_ieq(mech, "LOGIN"));
	auth_login_refused(l, NULL, *needs_tls_r ? "plaintext not allowed on this connection"
						 : "unknown SASL mechanism");
	return NULL;
}

/* RFC 2449 §6.5: the interval is claimed only once the password was right (never at USER,
 * which would tell who exists). */
static bool auth_login_too_soon(struct auth_login *l, const char *user, uint32_t min_interval_ms,
				uint32_t *wait_ms_r)
{
	uint32_t left;

	if (min_interval_ms == 0)
		return false;
	left = auth_login_interval_claim(l->penalty, user, min_interval_ms);
	if (left == 0) {
		l->interval_claimed = true;
		return false;
	}
	*wait_ms_r = left;
	return true;
}

enum auth_login_outcome auth_login_succeeded(struct auth_login *l, const char *user,
					     uint32_t min_interval_ms, uint32_t *wait_ms_r)
{
	*wait_ms_r = 0;
	if (auth_login_too_soon(l, user, min_interval_ms, wait_ms_r))
		return AUTH_LOGIN_TOO_SOON;
	if (!auth_userip_acquire(l->penalty, user, l->ip)) {
		if (l->interval_claimed)
			auth_login_interval_release(l->penalty, user);
		l->interval_claimed = false;
		auth_login_refused(l, user, "too many connections for user and address");
		return AUTH_LOGIN_LIMIT;
	}
	auth_penalty_success(l->penalty, l->ip, user);
	metrics_login(l->proto, true);
	free(l->user);
	l->user = xstrdup(user);
	return AUTH_LOGIN_OK;
}

uint32_t auth_login_failed(struct auth_login *l, const char *claimed, const char *reason,
			   char *reply)
{
	uint32_t delay = auth_penalty_fail(l->penalty, l->ip, claimed);

	auth_log_login_failure(l->proto, l->conn, l->ip, claimed, reason, delay);
	metrics_login(l->proto, false);
	auth_login_hold_reply(l, reply);
	return delay;
}

uint32_t auth_login_probe_failed(struct auth_login *l)
{
	return auth_penalty_fail(l->penalty, l->ip, NULL);
}

void auth_login_hold_reply(struct auth_login *l, char *reply)
{
	free(l->held_reply);
	l->held_reply = reply;
}

char *auth_login_take_reply(struct auth_login *l)
{
	char *reply = l->held_reply;

	l->held_reply = NULL;
	return reply;
}

void auth_login_confirm(struct auth_login *l)
{
	l->interval_claimed = false;
}

const char *auth_login_user(const struct auth_login *l)
{
	return l->user;
}

void auth_login_end(struct auth_login *l)
{
	if (l->user != NULL) {
		if (l->interval_claimed)
			auth_login_interval_release(l->penalty, l->user);
		auth_userip_release(l->penalty, l->user, l->ip);
	}
	l->interval_claimed = false;
	free(l->user);
	l->user = NULL;
	free(l->held_reply);
	l->held_reply = NULL;
}
