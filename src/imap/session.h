/* IMAP session state shared by the files of this folder (one cmd_*.c per command group). */
#ifndef ROOST_IMAP_SESSION_H
#define ROOST_IMAP_SESSION_H

#include "imap.h"
#include "parser.h"

enum imap_state {
	IMAP_STATE_NOT_AUTHENTICATED = 1 << 0,
	IMAP_STATE_AUTHENTICATED = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};
#define IMAP_STATES_ANY (IMAP_STATE_NOT_AUTHENTICATED | IMAP_STATE_AUTHENTICATED | IMAP_STATE_SELECTED)
#define IMAP_STATES_AUTHED (IMAP_STATE_AUTHENTICATED | IMAP_STATE_SELECTED)

struct imap_session {
	struct net_conn *conn;
	const struct imap_deps *deps;
	enum imap_state state;

	/* Command assembly: the wire bytes of the command being read, literals included. */
	struct buf cmd;
	uint64_t literal_remaining;
	unsigned literal_count;
	uint64_t literal_bytes;
	unsigned bad_count;

	/* Authentication in progress (AUTHENTICATE continuation or an offloaded check). */
	struct sasl_session *sasl;
	char *auth_tag;
	bool in_sasl_exchange;
	char *pending_reply;	   /* sent after a failure delay */
	char *sasl_success_user; /* authenticated, awaiting the client's final empty response */

	char *user; /* canonical address once authenticated */
	bool userip_counted;
	bool enabled_rev2;
};

/* One command: tag and the parser positioned after the command name (and its SP, if any). */
typedef void imap_command_fn(struct imap_session *s, const char *tag, struct imap_parser *ps);

struct imap_command {
	const char *name;
	unsigned states; /* IMAP_STATE_* bitmask where the command is allowed */
	imap_command_fn *run;
};

/* session.c */
void imap_reply(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_bad(struct imap_session *s, const char *tag, const char *text);
/* Capability list (without "CAPABILITY") for the current state, into out. */
void imap_capabilities(struct imap_session *s, struct buf *out);
bool imap_plaintext_allowed(const struct imap_session *s);
void imap_logout(struct imap_session *s);

/* cmd_any.c */
imap_command_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_id,
	imap_cmd_starttls;
/* cmd_login.c */
imap_command_fn imap_cmd_login, imap_cmd_authenticate;
/* Feeds one continuation line of AUTHENTICATE. */
void imap_sasl_continue(struct imap_session *s, const char *line, size_t len);
void imap_auth_session_end(struct imap_session *s);

#endif
