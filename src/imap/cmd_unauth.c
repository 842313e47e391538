/* UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same connection, so a
 * client (or a proxy pooling connections) can log in as someone else without a new TLS
 * handshake. */
#include "../core/core.h"
#include "session.h"

/* RFC 8437 §3: the mailbox is closed without expunging, the account and every per-user state
 * (ENABLEd extensions included) are dropped, as if the connection had just been greeted. */
void imap_cmd_unauthenticate(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "UNAUTHENTICATE takes no arguments");
		return;
	}
	imap_selected_free(s);
	imap_notify_free(s); /* its subscription is the account's */
	store_account_close(&s->acct);
	imap_auth_session_end(s);
	s->enabled_rev2 = false;
	s->enabled_utf8 = false;
	s->state = IMAP_STATE_NOT_AUTHENTICATED;
	imap_reply(s, "%s OK UNAUTHENTICATE completed", tag);
}
