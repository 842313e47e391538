/* SMTP session state shared by the files of this folder. */
#ifndef ROOST_SMTP_SESSION_H
#define ROOST_SMTP_SESSION_H

#include "data.h"
#include "smtp.h"

/* Where the session is (RFC 5321 §4.1.4, RFC 3030, RFC 4954). The state alone says what the
 * next input is (a command, a SASL response, message octets) and which commands may run; facts
 * that hold across states (the HELO name, TLS, the authenticated user) are fields. Every
 * change goes through smtp_enter, which logs it at debug level.
 *   CONNECTED -EHLO/HELO/LHLO-> GREETED -MAIL-> MAIL -RCPT-> RCPT -DATA-> DATA -end-> FINISHING
 *   GREETED -AUTH-> AUTH (while the client answers challenges) -> GREETED
 *   RCPT -BDAT-> BDAT -chunk-> CHUNKING -BDAT-> BDAT -LAST chunk-> FINISHING
 *   FINISHING, RSET, EHLO: back to GREETED (CONNECTED after STARTTLS). A BDAT outside a
 *   transaction is read (BDAT) and refused at its end, as the size is all the client said. */
enum smtp_state {
	SMTP_STATE_CONNECTED, /* greeting sent; no EHLO/HELO/LHLO (since STARTTLS either) */
	SMTP_STATE_GREETED,   /* hello given, no transaction */
	SMTP_STATE_AUTH,      /* in a SASL exchange: input lines are responses */
	SMTP_STATE_MAIL,      /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,      /* at least one recipient accepted */
	SMTP_STATE_DATA,      /* reading the message after DATA's 354 */
	SMTP_STATE_BDAT,      /* reading the octets of a BDAT chunk */
	SMTP_STATE_CHUNKING,  /* between the chunks of a BDAT transaction */
	SMTP_STATE_FINISHING, /* end of data: the delivery is finished on the pool */
};
#define SMTP_IN(state) (1u << (state))
/* The states in which a line is a command. */
#define SMTP_COMMAND_STATES                                                            \
	(SMTP_IN(SMTP_STATE_CONNECTED) | SMTP_IN(SMTP_STATE_GREETED) | SMTP_IN(SMTP_STATE_MAIL) | \
	 SMTP_IN(SMTP_STATE_RCPT) | SMTP_IN(SMTP_STATE_CHUNKING))

/* The mail transaction (RFC 5321 §3.3): from MAIL to the end of data, RSET, or a new EHLO. */
struct smtp_txn {
	char *sender; /* "" for the null reverse-path */
	bool smtputf8;
	bool body_8bit;
	char *envid;
	char *ret;
	struct delivery_rcpt *rcpts;
	size_t rcpt_count;
	struct delivery_txn *delivery; /* open from DATA/first BDAT to the end of data */
	bool begin_pending;	       /* the job opening `delivery` is still running */
	bool delivery_failed;	       /* begin failed: consume the data, then answer 4xx */
	char *delivery_error;
	uint64_t size;		       /* octets received so far */
	bool too_big;
	bool write_failed;
	struct smtp_data_decoder decoder;
	uint64_t bdat_remaining;
	bool bdat_last;
	bool bdat_cr;	 /* the last chunk octet seen was a CR */
	bool bdat_bare;	 /* a bare CR or LF was seen in the chunks */
	struct buf header;	       /* the first octets, for the From: check on submission */
	struct log_msgid_scan *msgid;  /* the Message-ID for the log, from MAIL on */
};

struct smtp_session {
	struct net_conn *conn;
	const struct smtp_deps *deps;
	bool submission; /* submission/submissions listener: AUTH offered and required */
	bool lmtp;	 /* LMTP listener: LHLO, one reply per recipient after DATA */
	char *helo;	 /* client's EHLO/HELO name once given */
	bool esmtp;
	unsigned bad_count;
	enum smtp_state state; /* changed only by smtp_enter */

	/* AUTH exchange */
	struct sasl_session *sasl;
	char *sasl_success_user; /* authenticated, awaiting the client's final empty response */
	char *user; /* authenticated address */
	struct auth_login login; /* penalties, the held reply, the user+address count */

	struct smtp_txn txn; /* in use from MAIL to the end of FINISHING */
	struct buf out; /* decoded message bytes waiting to be written */
};

/* The one place the state changes. */
void smtp_enter(struct smtp_session *s, enum smtp_state state);
/* GREETED, or CONNECTED when no hello stands: where a transaction's end leads. */
void smtp_enter_idle(struct smtp_session *s);
void smtp_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A protocol error: reply, count it, and close after too many. */
void smtp_error(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool smtp_plaintext_allowed(const struct smtp_session *s);
void smtp_close_after_replies(struct smtp_session *s);
/* Runs the session's input loop again: for work that waited on a job and needs no new input. */
void smtp_continue(struct smtp_session *s);

/* txn.c */
void smtp_cmd_mail(struct smtp_session *s, const char *args);
void smtp_cmd_rcpt(struct smtp_session *s, const char *args);
void smtp_cmd_data(struct smtp_session *s, const char *args);
void smtp_cmd_bdat(struct smtp_session *s, const char *args);
void smtp_txn_reset(struct smtp_session *s);
/* The replies to MAIL, RCPT and DATA (and a BDAT chunk) outside the states they run in. */
const char *smtp_mail_refusal(const struct smtp_session *s);
const char *smtp_rcpt_refusal(const struct smtp_session *s);
const char *smtp_data_refusal(const struct smtp_session *s);
/* Consumes message data in SMTP_STATE_DATA / SMTP_STATE_BDAT; false when it needs more input. */
bool smtp_receive(struct smtp_session *s);

/* header_from.c: calls cb for each address of every header field called field ("From",
 * "Sender", ...) in the header block at the start of msg; returns the count, or -1 (and no
 * call) when such a field holds a NUL octet. *header_end_r: the header block ended within msg. */
int smtp_header_addresses(const uint8_t *msg, size_t len, const char *field,
			  void (*cb)(const char *address, void *ctx), void *ctx, bool *header_end_r);

/* auth.c */
void smtp_cmd_auth(struct smtp_session *s, const char *args);
void smtp_sasl_continue(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_end(struct smtp_session *s);
/* Sends the reply held in s->login after delay_ms (0: at the loop's next turn); the session is
 * paused meanwhile, so pipelined commands wait. */
void smtp_reply_after(struct smtp_session *s, uint32_t delay_ms);

#endif
