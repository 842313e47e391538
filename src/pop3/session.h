/* Private to src/pop3: the state of one POP3 connection, shared by session.c (AUTHORIZATION
 * state, dispatch, connection callbacks) and transaction.c (maildrop commands, UPDATE).
 *
 * States (RFC 1939 §3): AUTHORIZATION -> (login, maildrop opened) -> TRANSACTION -> QUIT ->
 * UPDATE -> closed. Between commands a session keeps the maildrop snapshot (16 bytes per
 * message) and the messages its last RETR job opened: those read ahead and those already
 * sent, which the next store job closes (together within about POP3_AHEAD_BYTES plus one
 * message). */
#ifndef ROOST_POP3_SESSION_H
#define ROOST_POP3_SESSION_H

#include "../core/core.h"
#include "pop3.h"
#include "pop3_internal.h"

enum pop3_state { POP3_AUTHORIZATION, POP3_TRANSACTION, POP3_UPDATE };

/* What the session is streaming out (multi-line replies that may not fit the output queue). */
enum pop3_output { POP3_OUT_NONE, POP3_OUT_LIST, POP3_OUT_UIDL, POP3_OUT_MESSAGE };

struct pop3_session {
	struct net_conn *conn;
	const struct pop3_deps *deps;
	enum pop3_state state;
	unsigned bad_count;
	char *user_arg; /* USER given, waiting for PASS */
	struct sasl_session *sasl;
	bool in_sasl_exchange;
	char *user;
	struct auth_login login; /* penalties, the held reply, the user+address count */
	bool locked;		 /* holds the lock=refuse entry for user */
	bool close_when_drained; /* UPDATE done: close once the farewell is sent */

	/* TRANSACTION state */
	struct pop3_maildrop *md;
	enum pop3_output out;
	uint32_t out_next;	     /* LIST/UIDL: next message number */
	struct store_message *msg; /* RETR/TOP: the mapped message being sent */
	const uint8_t *out_data;
	size_t out_pos, out_end;
	bool out_line_start;
	struct pop3_readahead ahead; /* opened by the last RETR job, not asked for yet */
	struct pop3_spent spent;     /* sent or dropped; closed by the next store job */
};

void pop3_reply(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* -ERR for a bad command; closes after [limits] bad_commands of them. */
void pop3_error(struct pop3_session *s, const char *text);
/* Reads and runs buffered commands; returns when input runs dry, a job or a stream is busy. */
void pop3_input(void *session);

/* transaction.c */
/* Login accepted: take the lock (refuse mode), open the maildrop on the pool, then +OK. */
void pop3_transaction_begin(struct pop3_session *s, const char *user);
void pop3_transaction_command(struct pop3_session *s, enum pop3_verb verb, const char *arg);
void pop3_transaction_drained(void *session);
/* Frees the TRANSACTION state of a connection that is going away without QUIT. */
void pop3_transaction_end(struct pop3_session *s);

#endif
