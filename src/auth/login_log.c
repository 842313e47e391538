/* The log line of a login that did not succeed, shared by SMTP, IMAP and POP3 so the three
 * use one vocabulary: event=login outcome=failed (credentials checked and wrong, after which
 * the penalty delay runs) or outcome=refused (turned away before or after the check: plaintext
 * on this connection, a refused address, too many connections, a malformed exchange), with
 * the real reason. The client's reply never carries the reason; only this line does. */
#include "auth.h"

void auth_log_login_failure(const char *proto, unsigned long long conn, const char *ip,
			    const char *user, const char *reason, int64_t delay_ms)
{
	char name[LIMIT_AUTH_FIELD + 1], why[256];

	log_clean(user ? user : "", name, sizeof(name));
	log_clean(reason ? reason : "unknown", why, sizeof(why));
	if (delay_ms >= 0)
		log_info("event=login outcome=failed proto=%s conn=%llu ip=%s user=\"%s\" "
			 "msg=\"authentication failed\" delay_ms=%lld reason=\"%s\"",
			 proto, conn, ip, name, (long long)delay_ms, why);
	else
		log_info("event=login outcome=refused proto=%s conn=%llu ip=%s user=\"%s\" "
			 "msg=\"login refused\" reason=\"%s\"",
			 proto, conn, ip, name, why);
}
