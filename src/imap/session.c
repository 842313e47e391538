/* IMAP connection state machine: the greeting, command assembly (lines and literals with their
 * limits), dispatch to the cmd_*.c handlers, and the farewell.
 *
 * A command is assembled completely — every line and every literal — before it is parsed, so
 * a command that turns out to be bad is skipped as a whole: its literals are never read as
 * commands (a literal's bytes are the client's data, never commands, whatever they hold).
 * Sizes are checked when a literal is announced, before any of it
 * is read or any buffer is sized for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"
#include "sort.h"

static const struct imap_command imap_commands[] = {
	{ "CAPABILITY", IMAP_STATES_ANY, imap_cmd_capability },
	{ "NOOP", IMAP_STATES_ANY, imap_cmd_noop },
	{ "LOGOUT", IMAP_STATES_ANY, imap_cmd_logout },
	{ "ID", IMAP_STATES_ANY, imap_cmd_id },
	{ "STARTTLS", IMAP_STATE_NOT_AUTHENTICATED, imap_cmd_starttls },
	{ "LOGIN", IMAP_STATE_NOT_AUTHENTICATED, imap_cmd_login },
	{ "AUTHENTICATE", IMAP_STATE_NOT_AUTHENTICATED, imap_cmd_authenticate },
	{ "ENABLE", IMAP_STATES_AUTHED, imap_cmd_enable },
	{ "COMPRESS", IMAP_STATES_AUTHED, imap_cmd_compress },
	{ "SELECT", IMAP_STATES_AUTHED, imap_cmd_select },
	{ "EXAMINE", IMAP_STATES_AUTHED, imap_cmd_examine },
	{ "CREATE", IMAP_STATES_AUTHED, imap_cmd_create },
	{ "DELETE", IMAP_STATES_AUTHED, imap_cmd_delete },
	{ "RENAME", IMAP_STATES_AUTHED, imap_cmd_rename },
	{ "SUBSCRIBE", IMAP_STATES_AUTHED, imap_cmd_subscribe },
	{ "UNSUBSCRIBE", IMAP_STATES_AUTHED, imap_cmd_unsubscribe },
	{ "LIST", IMAP_STATES_AUTHED, imap_cmd_list },
	{ "LSUB", IMAP_STATES_AUTHED, imap_cmd_lsub },
	{ "NAMESPACE", IMAP_STATES_AUTHED, imap_cmd_namespace },
	{ "STATUS", IMAP_STATES_AUTHED, imap_cmd_status },
	{ "APPEND", IMAP_STATES_AUTHED, imap_cmd_append },
	{ "GETQUOTA", IMAP_STATES_AUTHED, imap_cmd_getquota },
	{ "GETQUOTAROOT", IMAP_STATES_AUTHED, imap_cmd_getquotaroot },
	{ "SETQUOTA", IMAP_STATES_AUTHED, imap_cmd_setquota },
	{ "IDLE", IMAP_STATES_AUTHED, imap_cmd_idle },
	{ "CHECK", IMAP_STATE_SELECTED, imap_cmd_check },
	{ "CLOSE", IMAP_STATE_SELECTED, imap_cmd_close },
	{ "UNSELECT", IMAP_STATE_SELECTED, imap_cmd_unselect },
	{ "EXPUNGE", IMAP_STATE_SELECTED, imap_cmd_expunge },
	{ "SEARCH", IMAP_STATE_SELECTED, imap_cmd_search },
	{ "SORT", IMAP_STATE_SELECTED, imap_cmd_sort },
	{ "THREAD", IMAP_STATE_SELECTED, imap_cmd_thread },
	{ "UNAUTHENTICATE", IMAP_STATES_AUTHED, imap_cmd_unauthenticate },
	{ "NOTIFY", IMAP_STATES_AUTHED, imap_cmd_notify },
	{ "CANCELUPDATE", IMAP_STATE_SELECTED, imap_cmd_cancelupdate },
	{ "FETCH", IMAP_STATE_SELECTED, imap_cmd_fetch },
	{ "STORE", IMAP_STATE_SELECTED, imap_cmd_store },
	{ "COPY", IMAP_STATE_SELECTED, imap_cmd_copy },
	{ "MOVE", IMAP_STATE_SELECTED, imap_cmd_move },
	{ "UID", IMAP_STATE_SELECTED, imap_cmd_uid },
};

/* Pre-authentication literals stay small: nobody needs more than a user name and password. */
#define IMAP_PREAUTH_LITERAL_MAX 8192

/* Every tagged NO or BAD goes to the log at info level with the command's name, so an
 * administrator sees why a client's save or sync failed. Replies are recognised by their
 * format ("%s NO ...", "%s BAD ...") so that the others are not formatted twice. */
static void imap_log_failure(struct imap_session *s, const char *fmt, va_list ap)
{
	struct buf line;
	va_list copy;

	if (strncmp(fmt, "%s NO ", 6) != 0 && strncmp(fmt, "%s BAD ", 7) != 0)
		return;
	buf_init(&line);
	va_copy(copy, ap);
	buf_vprintf(&line, fmt, copy);
	va_end(copy);
	log_info("proto=imap conn=%llu ip=%s user=%s cmd=%s reply=\"%.*s\"",
		 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn),
		 s->user ? s->user : "-", s->cmd_name ? s->cmd_name : "-",
		 (int)(line.len > 300 ? 300 : line.len), (const char *)line.data);
	buf_free(&line);
}

void imap_reply(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_log_failure(s, fmt, ap);
	net_conn_vprintf_line(s->conn, fmt, ap);
	va_end(ap);
}

void imap_tagged(struct imap_session *s, const char *tag, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	(void)tag;
	if (s->sel != NULL)
		imap_flush_updates(s, s->expunge_ok);
	buf_init(&b);
	va_start(ap, fmt);
	imap_log_failure(s, fmt, ap);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append(&b, "\r\n", 2);
	net_conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	imap_notify_command_ended(s);
}

/* RFC 5530 response codes for the store's errors. */
const char *imap_store_code(enum store_error e)
{
	switch (e) {
	case STORE_OK:
		return "";
	case STORE_ERR_NOT_FOUND:
		return "[NONEXISTENT] ";
	case STORE_ERR_EXISTS:
		return "[ALREADYEXISTS] ";
	case STORE_ERR_NO_SPACE:
	case STORE_ERR_OVER_QUOTA:
		return "[OVERQUOTA] ";
	case STORE_ERR_IO:
		return "[SERVERBUG] ";
	case STORE_ERR_INVALID:
		return "[CANNOT] ";
	case STORE_ERR_LIMIT:
		return "[LIMIT] ";
	case STORE_ERR_NO_PERMISSION:
		return "[NOPERM] ";
	case STORE_ERR_HAS_CHILDREN:
		return "[HASCHILDREN] ";
	}
	return "";
}

void imap_store_error(struct imap_session *s, const char *tag, enum store_error e,
		      const struct store_err *err)
{
	const char *text = err && err->text[0] ? err->text : store_error_str(e);

	imap_tagged(s, tag, "%s NO %s%s", tag, imap_store_code(e), text);
}

void imap_command_done(struct imap_session *s)
{
	s->busy = false;
	if (!net_conn_is_closing(s->conn))
		net_conn_resume(s->conn);
}

static void imap_count_bad(struct imap_session *s)
{
	unsigned limit = s->state == IMAP_STATE_NOT_AUTHENTICATED
				 ? LIMIT_BAD_COMMANDS_PREAUTH
				 : (unsigned)s->deps->cfg->bad_commands;

	if (++s->bad_count >= limit) {
		imap_reply(s, "* BYE Too many invalid commands");
		s->state = IMAP_STATE_LOGOUT;
		net_conn_close(s->conn);
	}
}

void imap_bad(struct imap_session *s, const char *tag, const char *text)
{
	imap_reply(s, "%s BAD %s", tag ? tag : "*", text);
	imap_count_bad(s);
}

bool imap_plaintext_allowed(const struct imap_session *s)
{
	return net_conn_plaintext_allowed(s->conn, s->deps->cfg->plaintext);
}

void imap_capabilities(struct imap_session *s, struct buf *out)
{
	buf_append_str(out, "IMAP4rev1 IMAP4rev2 SASL-IR ID LITERAL+");
	if (s->state != IMAP_STATE_NOT_AUTHENTICATED) {
		/* Only what is implemented (RFC 9051 §6.1.1). */
		buf_printf(out,
			   " ENABLE IDLE UIDPLUS MOVE NAMESPACE UNSELECT CHILDREN SPECIAL-USE"
			   " CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH BINARY"
			   " STATUS=SIZE APPENDLIMIT=%llu UTF8=ACCEPT",
			   (unsigned long long)s->deps->cfg->message_size);
		buf_append_str(out, " CONDSTORE QRESYNC"); /* RFC 7162, condstore.c */
		if (!net_conn_compressed(s->conn))
			buf_append_str(out, " COMPRESS=DEFLATE"); /* RFC 4978 §4 */
		/* RFC 5256, 5957, 5267 §3 (cmd_sort.c), RFC 5032, 5182 (cmd_search.c),
		 * RFC 8437 (cmd_unauth.c), RFC 8970 (preview.c) */
		buf_append_str(out, " SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT WITHIN"
			       " SEARCHRES UNAUTHENTICATE PREVIEW");
		buf_append_str(out, " NOTIFY"); /* RFC 5465, notify.c */
		buf_append_str(out, " CONTEXT=SEARCH CONTEXT=SORT"); /* RFC 5267 §4, context.c */
		buf_append_str(out, " MULTIAPPEND"); /* RFC 3502, cmd_append.c */
		buf_append_str(out, " OBJECTID SAVEDATE"); /* RFC 8474, RFC 8514 */
		/* RFC 9208, cmd_quota.c; no QUOTASET: SETQUOTA is refused */
		buf_append_str(out, " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE");
	}
	if (s->state == IMAP_STATE_NOT_AUTHENTICATED) {
		const char *mechs = sasl_mechanisms(imap_plaintext_allowed(s));
		if (net_conn_tls_available(s->conn))
			buf_append_str(out, " STARTTLS");
		/* RFC 9051 §6.2.3: advertise LOGINDISABLED where LOGIN would be refused. */
		if (!imap_plaintext_allowed(s))
			buf_append_str(out, " LOGINDISABLED");
		for (const char *m = mechs; *m;) {
			size_t n = strcspn(m, " ");
			buf_printf(out, " AUTH=%.*s", (int)n, m);
			m += n;
			while (*m == ' ')
				m++;
		}
	}
}

void imap_logout(struct imap_session *s)
{
	s->state = IMAP_STATE_LOGOUT;
	net_conn_close(s->conn);
}

static void *imap_open(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct buf caps;

	s->conn = conn;
	s->deps = ctx;
	s->state = IMAP_STATE_NOT_AUTHENTICATED;
	auth_login_init(&s->login, s->deps->penalty, "imap", (unsigned long long)net_conn_id(conn),
			net_conn_peer_ip(conn));
	buf_init(&s->cmd);
	net_conn_set_timeout(conn, (uint32_t)s->deps->cfg->imap_timeout_preauth);
	buf_init(&caps);
	imap_capabilities(s, &caps);
	/* Never PREAUTH: every session authenticates, so penalties and per-user limits apply
	 * to all of them. */
	imap_reply(s, "* OK [CAPABILITY %s] Roost IMAP ready", buf_cstr(&caps));
	buf_free(&caps);
	log_debug("proto=imap conn=%llu ip=%s msg=connected", (unsigned long long)net_conn_id(conn),
		  net_conn_peer_ip(conn));
	return s;
}

void imap_reset_command(struct imap_session *s)
{
	buf_reset(&s->cmd);
	buf_shrink(&s->cmd, 4096);
	s->literal_remaining = 0;
	s->literal_count = 0;
	s->literal_bytes = 0;
}

/* The tag of the command being assembled, copied into out (for replies before it is parsed). */
static void imap_peek_tag(const struct imap_session *s, char *out, size_t outlen)
{
	size_t n = 0;

	while (n < s->cmd.len && n + 1 < outlen) {
		uint8_t c = s->cmd.data[n];
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\+", c))
			break;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, outlen, "*");
}

/* True when the command being assembled is APPEND (its literals may be message-sized). */
static bool imap_assembling_append(const struct imap_session *s)
{
	const char *sp = memchr(s->cmd.data, ' ', s->cmd.len);
	size_t rest;

	if (sp == NULL)
		return false;
	sp++;
	rest = s->cmd.len - (size_t)(sp - (const char *)s->cmd.data);
	if (rest >= 4 && str_nieq(sp, "UID ", 4)) {
		sp += 4;
		rest -= 4;
	}
	return rest >= 7 && str_nieq(sp, "APPEND ", 7);
}

static void imap_execute(struct imap_session *s)
{
	struct imap_parser ps;
	struct imap_slice tag_slice, name;
	char tag[256];
	char name_text[32];
	const struct imap_command *cmd = NULL;

	imap_parser_init(&ps, s->cmd.data, s->cmd.len);
	if (!imap_parse_tag(&ps, &tag_slice) || tag_slice.len >= sizeof(tag) ||
	    !imap_parse_sp(&ps)) {
		imap_bad(s, NULL, "Invalid tag");
		return;
	}
	memcpy(tag, tag_slice.data, tag_slice.len);
	tag[tag_slice.len] = '\0';
	if (!imap_parse_atom(&ps, &name) || name.len >= sizeof(name_text)) {
		imap_bad(s, tag, "Invalid command name");
		return;
	}
	memcpy(name_text, name.data, name.len);
	name_text[name.len] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(imap_commands); i++)
		if (str_ieq(imap_commands[i].name, name_text))
			cmd = &imap_commands[i];
	s->cmd_name = cmd ? cmd->name : NULL;
	if (cmd == NULL) {
		imap_bad(s, tag, "Unknown command");
		return;
	}
	if ((cmd->states & s->state) == 0) {
		imap_bad(s, tag,
			 s->state == IMAP_STATE_NOT_AUTHENTICATED
				 ? "Log in first"
				 : "Command not allowed in this state");
		return;
	}
	if (imap_peek(&ps, ' '))
		ps.p++;
	/* RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH by sequence
	 * number (and UID commands are dispatched through UID, which allows it). */
	s->expunge_ok = !(str_ieq(cmd->name, "FETCH") || str_ieq(cmd->name, "STORE") ||
			  str_ieq(cmd->name, "SEARCH") || str_ieq(cmd->name, "SORT") ||
			  str_ieq(cmd->name, "THREAD"));
	log_debug("proto=imap conn=%llu cmd=%s", (unsigned long long)net_conn_id(s->conn),
		  cmd->name);
	cmd->run(s, tag, &ps);
}

/* The command that waited for a resync of the updates (imap_command_line). */
static void imap_execute_held(struct imap_session *s)
{
	imap_execute(s);
	imap_reset_command(s);
	if (!s->busy)
		imap_command_done(s);
}

/* After a resync: live searches (context.c) hear of the changes before the command runs. */
static void imap_execute_after_resync(struct imap_session *s)
{
	if (!imap_context_refresh(s, imap_execute_held))
		imap_execute_held(s);
}

/* A line of the command arrived. Returns false when the connection is being closed. */
static bool imap_command_line(struct imap_session *s, const char *line, size_t len)
{
	uint64_t size;
	bool nonsync;
	int lit;
	char tag[64];

	if (s->cmd.len == 0)
		s->cmd_name = NULL; /* a new command; named once known */
	buf_append(&s->cmd, line, len);
	buf_append(&s->cmd, "\r\n", 2);
	lit = imap_line_literal(line, len, &size, &nonsync);
	if (lit == 0) {
		/* Changes whose flags the session could not keep are read and reported
		 * first; the command waits in s->cmd, input paused (s->busy). */
		if (imap_updates_resync(s, imap_execute_after_resync))
			return true;
		/* Live searches are checked against the changes first, so the command's
		 * answer comes after their ADDTO and REMOVEFROM (context.c). */
		if (imap_context_refresh(s, imap_execute_held))
			return true;
		imap_execute(s);
		imap_reset_command(s);
		return !net_conn_is_closing(s->conn);
	}
	imap_peek_tag(s, tag, sizeof(tag));
	if (imap_assembling_append(s))
		s->cmd_name = "APPEND";
	if (lit < 0) {
		imap_bad(s, tag, "Invalid literal size");
		imap_reset_command(s);
		return !net_conn_is_closing(s->conn);
	}
	uint64_t limit = s->state == IMAP_STATE_NOT_AUTHENTICATED ? IMAP_PREAUTH_LITERAL_MAX
			 : imap_assembling_append(s) ? (uint64_t)s->deps->cfg->message_size
						     : (uint64_t)s->deps->cfg->imap_literal;
	bool too_many = ++s->literal_count > LIMIT_IMAP_LITERALS_PER_COMMAND;
	bool too_big = size > limit ||
		       (!imap_assembling_append(s) &&
			s->literal_bytes + size > LIMIT_IMAP_COMMAND_BYTES_DEFAULT);
	if (too_many || too_big) {
		if (nonsync) {
			/* RFC 7888 §4: the client sends it anyway; we will not read it. */
			imap_reply(s, "* BYE [TOOBIG] Literal too large");
			imap_logout(s);
			return false;
		}
		if (imap_assembling_append(s))
			imap_reply(s, "%s NO [TOOBIG] Message too large", tag);
		else
			imap_bad(s, tag, too_many ? "[LIMIT] Too many literals" : "[TOOBIG] Literal too large");
		imap_reset_command(s);
		return !net_conn_is_closing(s->conn);
	}
	/* The message goes straight to the store as it arrives (cmd_append.c). */
	if (imap_assembling_append(s) && s->state != IMAP_STATE_NOT_AUTHENTICATED &&
	    imap_append_literal(s, size, nonsync))
		return !net_conn_is_closing(s->conn);
	s->literal_bytes += size;
	s->literal_remaining = size;
	if (!nonsync)
		net_conn_write_str(s->conn, "+ Ready for literal data\r\n");
	return true;
}

/* ---- over-long commands: answer BAD [TOOBIG], skip the rest, keep the connection ---- */

static void imap_skip_begin(struct imap_session *s, const char *head, size_t len)
{
	size_t n = 0;

	/* The tag is at the start of the line (unless the tag itself is what is too long). */
	while (n < len && n < 64 && head[n] > ' ' && head[n] < 0x7f &&
	       strchr("(){%*\"\\+", head[n]) == NULL)
		n++;
	free(s->skip_tag);
	s->skip_tag = n > 0 && n < len && head[n] == ' ' ? xstrndup(head, n) : xstrdup("*");
	s->skipping_long_line = true;
	s->skipping_command = true;
	imap_reset_command(s);
}

static void imap_skip_end(struct imap_session *s)
{
	char *tag = s->skip_tag ? s->skip_tag : xstrdup("*");

	s->skip_tag = NULL;
	s->skipping_command = false;
	imap_bad(s, tag, "[TOOBIG] Command line too long");
	free(tag);
}

/* A line of a command being skipped ended; tail is its end. Decides whether the command goes
 * on (a non-synchronising literal follows) or is over. Returns false when closing. */
static bool imap_skip_line_end(struct imap_session *s, const char *tail, size_t len)
{
	uint64_t size = 0;
	bool nonsync = false;

	if (imap_line_literal(tail, len, &size, &nonsync) == 1 && nonsync) {
		/* RFC 7888: the client sends it without waiting; read past it unparsed. */
		uint64_t limit = s->state == IMAP_STATE_NOT_AUTHENTICATED
					 ? IMAP_PREAUTH_LITERAL_MAX
					 : (uint64_t)s->deps->cfg->message_size;
		if (size > limit) {
			imap_reply(s, "* BYE [TOOBIG] Literal too large");
			imap_logout(s);
			return false;
		}
		s->skip_literal = size;
		return true;
	}
	/* No literal, or a synchronising one the client waits for in vain: the command ends. */
	imap_skip_end(s);
	return !net_conn_is_closing(s->conn);
}

/* Continues skipping; returns false when it needs more input or the connection closes. */
static bool imap_skip_input(struct imap_session *s)
{
	char *line;
	size_t len;
	enum net_line_status st;

	if (s->skipping_long_line) {
		/* Before login a stranger gets little rope: 8 lines' worth; after, 1 MiB. */
		size_t cap = s->state == IMAP_STATE_NOT_AUTHENTICATED
				     ? 8 * (size_t)s->deps->cfg->imap_line_preauth
				     : LIMIT_IMAP_LINE_MAX;
		st = net_conn_skip_long_line(s->conn, cap, &line, &len);
		if (st == NET_LINE_NONE)
			return false;
		if (st == NET_LINE_TOO_LONG) {
			/* No line end in sight: a flood, not a command. */
			imap_reply(s, "* BYE [TOOBIG] Command line too long");
			imap_logout(s);
			return false;
		}
		s->skipping_long_line = false;
		return imap_skip_line_end(s, line, len);
	}
	if (s->skip_literal > 0) {
		size_t want = s->skip_literal > SIZE_MAX ? SIZE_MAX : (size_t)s->skip_literal;
		size_t got = net_conn_skip_bytes(s->conn, want);
		if (got == 0)
			return false;
		s->skip_literal -= got;
		return true;
	}
	/* The next line of the skipped command. */
	st = net_conn_read_line(s->conn, (size_t)s->deps->cfg->imap_line, &line, &len, NULL);
	if (st == NET_LINE_NONE)
		return false;
	if (st == NET_LINE_TOO_LONG) {
		s->skipping_long_line = true;
		return true;
	}
	return imap_skip_line_end(s, line, len);
}

static void imap_input(void *session)
{
	struct imap_session *s = session;

	while (!net_conn_is_closing(s->conn)) {
		char *line;
		size_t len;
		enum net_line_status st;

		if (s->busy) {
			/* A command is still answering (streamed FETCH, APPEND commit):
			 * pipelined input waits, bounded by net's read watermark. */
			net_conn_pause(s->conn);
			return;
		}
		if (s->append != NULL) {
			imap_append_input(s);
			if (s->append != NULL || s->busy)
				return;
			continue;
		}
		if (s->idle_tag != NULL) {
			st = net_conn_read_line(s->conn, 64, &line, &len, NULL);
			if (st == NET_LINE_NONE)
				return;
			imap_idle_line(s, st == NET_LINE_TOO_LONG ? NULL : line, len);
			continue;
		}

		if (s->skipping_command) {
			if (!imap_skip_input(s))
				return;
			continue;
		}
		if (s->literal_remaining > 0) {
			size_t want = s->literal_remaining > SIZE_MAX ? SIZE_MAX
								      : (size_t)s->literal_remaining;
			size_t got = net_conn_read_bytes(s->conn, want, &s->cmd);
			if (got == 0)
				return;
			s->literal_remaining -= got;
			continue;
		}
		if (s->in_sasl_exchange) {
			st = net_conn_read_line(s->conn, LIMIT_SASL_RESPONSE, &line, &len, NULL);
			if (st == NET_LINE_NONE)
				return;
			if (st == NET_LINE_TOO_LONG) {
				line = NULL;
				len = SIZE_MAX;
			}
			imap_sasl_continue(s, line, len);
			continue;
		}
		size_t max = s->state == IMAP_STATE_NOT_AUTHENTICATED
				     ? (size_t)s->deps->cfg->imap_line_preauth
				     : (size_t)s->deps->cfg->imap_line;
		st = net_conn_read_line(s->conn, max, &line, &len, NULL);
		if (st == NET_LINE_NONE)
			return;
		if (st == NET_LINE_TOO_LONG) {
			imap_skip_begin(s, line, len);
			continue;
		}
		if (!imap_command_line(s, line, len))
			return;
	}
}

static void imap_tls_ready(void *session)
{
	struct imap_session *s = session;

	/* Anything pipelined before the handshake was dropped by net; start clean. */
	imap_reset_command(s);
}

static void imap_timeout(void *session)
{
	struct imap_session *s = session;

	imap_reply(s, "* BYE Autologout; idle for too long");
	imap_logout(s);
}

static void imap_drained(void *session)
{
	struct imap_session *s = session;

	if (s->fetch != NULL)
		imap_fetch_drained(s);
	else
		imap_updates_drained(s);
	imap_notify_drained(s);
}

static void imap_close(void *session)
{
	struct imap_session *s = session;

	imap_idle_end(s);
	imap_append_free(s);
	imap_fetch_free(s);
	imap_selected_free(s);
	imap_notify_free(s);
	store_account_close(&s->acct);
	imap_auth_session_end(s);
	free(s->skip_tag);
	buf_free(&s->cmd);
	free(s);
}

const struct net_protocol imap_protocol = {
	.name = "imap",
	.refuse_line = "* BYE [UNAVAILABLE] Too many connections from your address\r\n",
	.busy_line = "* BYE [UNAVAILABLE] Too many connections; try again later\r\n",
	.open = imap_open,
	.input = imap_input,
	.tls_ready = imap_tls_ready,
	.timeout = imap_timeout,
	.drained = imap_drained,
	.close = imap_close,
};
