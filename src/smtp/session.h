/* SMTP session state shared by the files of this folder. */
#ifndef ROOST_SMTP_SESSION_H
#define ROOST_SMTP_SESSION_H

#include "smtp.h"

struct smtp_session {
	struct net_conn *conn;
	const struct smtp_deps *deps;
	bool submission; /* submission/submissions listener: AUTH offered and required */
	char *helo;	 /* client's EHLO/HELO name once given */
	bool esmtp;
	unsigned bad_count;

	/* AUTH exchange */
	struct sasl_session *sasl;
	bool in_sasl_exchange;
	char *pending_reply;	   /* sent after a failure delay */
	char *sasl_success_user; /* authenticated, awaiting the client's final empty response */
	char *user; /* authenticated address */
	bool userip_counted;
};

void smtp_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A protocol error: reply, count it, and close after too many. */
void smtp_error(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool smtp_plaintext_allowed(const struct smtp_session *s);

/* auth.c */
void smtp_cmd_auth(struct smtp_session *s, const char *args);
void smtp_sasl_continue(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_end(struct smtp_session *s);

#endif
