/* Commands valid in every state: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), and STARTTLS. */
#include <string.h>

#include "../core/core.h"
#include "session.h"

void imap_cmd_capability(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct buf caps;

	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "CAPABILITY takes no arguments");
		return;
	}
	buf_init(&caps);
	imap_capabilities(s, &caps);
	imap_reply(s, "* CAPABILITY %s", buf_cstr(&caps));
	imap_reply(s, "%s OK CAPABILITY completed", tag);
	buf_free(&caps);
}

void imap_cmd_noop(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "NOOP takes no arguments");
		return;
	}
	/* RFC 9051 §6.1.2: NOOP is how clients poll for updates. */
	imap_tagged(s, tag, "%s OK NOOP completed", tag);
}

void imap_cmd_logout(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "LOGOUT takes no arguments");
		return;
	}
	imap_reply(s, "* BYE Logging out");
	imap_reply(s, "%s OK LOGOUT completed", tag);
	imap_logout(s);
}

/* RFC 2971 §3.3: at most 30 field-value pairs, fields at most 30 octets, values 1024. Clients
 * send odd things here (NIL, "()", iOS's "event" field), so anything well-formed is accepted
 * and merely logged. */
void imap_cmd_id(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct buf seen;
	int pairs = 0;
	bool nil;
	struct imap_slice field, value;

	buf_init(&seen);
	if (!imap_peek(ps, '(')) {
		if (!imap_parse_nstring(ps, &field, &nil) || !nil)
			ps->error = "ID expects NIL or a parenthesized list";
	} else {
		ps->p++;
		while (!imap_peek(ps, ')')) {
			if (pairs > 0 && !imap_parse_sp(ps))
				break;
			if (!imap_parse_string(ps, &field) || !imap_parse_sp(ps) ||
			    !imap_parse_nstring(ps, &value, &nil))
				break;
			if (++pairs > 30 || field.len > 30 || value.len > 1024 ||
			    imap_slice_has_ctl(&field) || imap_slice_has_ctl(&value)) {
				ps->error = "ID parameters exceed RFC 2971 limits";
				break;
			}
			buf_printf(&seen, "%s%.*s=%.*s", pairs > 1 ? "," : "", (int)field.len,
				   field.data, nil ? 3 : (int)value.len,
				   nil ? "NIL" : (const char *)value.data);
		}
		if (ps->error == NULL)
			imap_parse_char(ps, ')');
	}
	if (ps->error != NULL || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid ID arguments");
		buf_free(&seen);
		return;
	}
	if (seen.len > 0)
		log_info("proto=imap conn=%llu ip=%s client_id=\"%s\"",
			 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn),
			 buf_cstr(&seen));
	imap_reply(s, "* ID (\"name\" \"Roost\" \"version\" \"%s\")", ROOST_VERSION);
	imap_reply(s, "%s OK ID completed", tag);
	buf_free(&seen);
}

void imap_cmd_starttls(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "STARTTLS takes no arguments");
		return;
	}
	if (!net_conn_tls_available(s->conn)) {
		imap_bad(s, tag, net_conn_is_tls(s->conn) ? "TLS is already active"
							   : "TLS is not configured");
		return;
	}
	imap_reply(s, "%s OK Begin TLS negotiation now", tag);
	net_conn_starttls(s->conn);
}
