/* APPEND (RFC 9051 §6.3.12) with UIDPLUS APPENDUID (RFC 4315 §3), APPENDLIMIT (RFC 7889), the
 * literal8 of BINARY (RFC 3516 §4.4, "~{N}") and the UTF8 data extension of UTF8=ACCEPT
 * (RFC 6855 §4, "UTF8 (~{N})", what Thunderbird sends its Sent copy with).
 *
 * The message literal is never collected in memory: when the assembler sees the literal of an
 * APPEND announced, imap_append_literal parses the command so far, opens the store's save in
 * a worker (store_save_begin), and only then invites the literal with "+" (its size was
 * already checked against message_size, so TOOBIG comes before "+"). The octets go to
 * store_save_write as they arrive (plain buffered writes, acceptable on the loop); the
 * fsyncs of store_save_finish run in a worker, and the tagged OK is sent only after the store
 * acknowledged the message (durability rule).
 *
 * A literal8 may carry NUL octets. We store messages as they came and FETCH BODY[] sends them
 * in an ordinary literal, which must not contain NUL, so such a message is refused with
 * NO [UNKNOWN-CTE] as RFC 3516 §4.4 asks of a mailbox that cannot keep binary content. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

struct imap_append {
	char *tag;
	char *name;
	uint32_t flags;
	char **keywords;
	size_t keyword_count;
	int64_t internal_date;
	uint64_t remaining;
	bool nonsync;
	bool discard;      /* the literal is read and thrown away (error already answered) */
	bool literal8;     /* "~{N}": may contain NUL, which we refuse */
	bool utf8_paren;   /* "UTF8 (~{N})": a ")" follows the literal */
	bool has_nul;
	struct store_account *acct;
	struct store_save *save;
	enum store_error error;
	struct store_err err;
	struct store_save_result result;
};

void imap_append_free(struct imap_session *s)
{
	struct imap_append *a = s->append;

	if (a == NULL)
		return;
	store_save_abort(&a->save);
	imap_keywords_free(&a->keywords, &a->keyword_count);
	free(a->tag);
	free(a->name);
	free(a);
	s->append = NULL;
}

void imap_cmd_append(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	(void)ps;
	/* Reached only when the command carried no literal. */
	imap_bad(s, tag, "APPEND expects the message as a literal");
}

static void begin_work(void *arg)
{
	struct imap_append *a = arg;

	a->error = store_save_begin(a->acct, a->name, &a->save, &a->err);
}

static void begin_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct imap_append *a = arg;

	if (a->error != STORE_OK) {
		/* RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist. */
		if (a->error == STORE_ERR_NOT_FOUND)
			imap_tagged(s, a->tag, "%s NO [TRYCREATE] Mailbox does not exist", a->tag);
		else
			imap_store_error(s, a->tag, a->error, &a->err);
		if (!a->nonsync) {
			/* No "+" was sent: the client will not send the literal. */
			imap_append_free(s);
			imap_reset_command(s);
			imap_command_done(s);
			return;
		}
		a->discard = true;
	} else if (!a->nonsync) {
		net_conn_write_str(s->conn, "+ Ready for literal data\r\n");
	}
	imap_command_done(s);
}

/* What remains after the flags and date: "{N}" / "{N+}", the literal8 "~{N}", or
 * RFC 6855 §4 utf8-literal = "UTF8" SP "(" literal8 ")". The ")" comes after the octets and is
 * checked in imap_append_input. */
static bool append_parse_literal_start(struct imap_session *s, struct imap_append *a,
				       struct imap_parser *ps, const char **why_r)
{
	if (!imap_peek(ps, '{') && !imap_peek(ps, '~')) {
		struct imap_slice ext;

		if (!imap_parse_atom(ps, &ext) || !imap_slice_ieq(&ext, "UTF8") ||
		    !imap_parse_sp(ps) || !imap_parse_char(ps, '(') || !imap_peek(ps, '~'))
			return false;
		if (!s->enabled_utf8) {
			*why_r = "APPEND UTF8 needs ENABLE UTF8=ACCEPT first";
			return false;
		}
		a->utf8_paren = true;
	}
	if (imap_peek(ps, '~')) {
		ps->p++;
		a->literal8 = true;
	}
	return imap_peek(ps, '{');
}

bool imap_append_literal(struct imap_session *s, uint64_t size, bool nonsync)
{
	struct imap_parser ps;
	struct imap_slice tag, cmd;
	struct imap_append *a;
	char tagbuf[256] = "*";
	char *name = NULL;
	const uint8_t *brace = NULL;
	const char *why = NULL;

	/* A literal right after "APPEND " is the mailbox name, not the message: the
	 * assembler collects that one like any other literal. */
	for (size_t i = s->cmd.len; i > 0; i--)
		if (s->cmd.data[i - 1] == '{') {
			brace = s->cmd.data + i - 1;
			break;
		}
	imap_parser_init(&ps, s->cmd.data, s->cmd.len);
	if (imap_parse_tag(&ps, &tag) && imap_parse_sp(&ps) && imap_parse_atom(&ps, &cmd) &&
	    imap_parse_sp(&ps) && ps.p == brace)
		return false;
	a = xcalloc(1, sizeof(*a));
	a->remaining = size;
	a->nonsync = nonsync;
	s->append = a;
	imap_parser_init(&ps, s->cmd.data, s->cmd.len);
	if (!imap_parse_tag(&ps, &tag) || tag.len >= sizeof(tagbuf) || !imap_parse_sp(&ps))
		goto bad;
	memcpy(tagbuf, tag.data, tag.len);
	tagbuf[tag.len] = '\0';
	a->tag = xstrdup(tagbuf);
	if (!imap_parse_atom(&ps, &cmd) || !imap_slice_ieq(&cmd, "APPEND") || !imap_parse_sp(&ps))
		goto bad;
	if ((s->state & IMAP_STATES_AUTHED) == 0)
		goto bad;
	name = imap_parse_mailbox(s, tagbuf, &ps);
	if (name == NULL)
		goto answered;
	a->name = name;
	if (!imap_parse_sp(&ps))
		goto bad;
	if (imap_peek(&ps, '(')) {
		if (!imap_parse_flag_list(&ps, &a->flags, &a->keywords, &a->keyword_count, true) ||
		    !imap_parse_sp(&ps))
			goto bad;
	}
	if (imap_peek(&ps, '"')) {
		if (!imap_parse_date_time(&ps, &a->internal_date) || !imap_parse_sp(&ps))
			goto bad;
	}
	if (!append_parse_literal_start(s, a, &ps, &why))
		goto bad;
	a->acct = s->acct;
	s->busy = true;
	net_conn_offload(s->conn, begin_work, begin_done, a);
	return true;
bad:
	imap_bad(s, tagbuf, why ? why : ps.error ? ps.error : "Invalid APPEND arguments");
answered:
	if (!nonsync || net_conn_is_closing(s->conn)) {
		imap_append_free(s);
		imap_reset_command(s);
		return true;
	}
	/* RFC 7888: a non-synchronising literal arrives anyway; skip it, then its line. */
	a->discard = true;
	return true;
}

static void finish_work(void *arg)
{
	struct imap_append *a = arg;
	struct store_save_meta meta = { a->flags, (const char *const *)a->keywords,
					a->keyword_count, a->internal_date };

	a->error = store_save_finish(&a->save, &meta, &a->result, &a->err);
	if (a->error == STORE_OK)
		a->error = a->result.error;
}

static void finish_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct imap_append *a = arg;

	if (a->error == STORE_OK)
		imap_tagged(s, a->tag, "%s OK [APPENDUID %u %u] APPEND completed", a->tag,
			    a->result.uidvalidity, a->result.uid);
	else if (a->error == STORE_ERR_LIMIT)
		imap_tagged(s, a->tag, "%s NO [TOOBIG] %s", a->tag,
			    a->err.text[0] ? a->err.text : "Message too large");
	else
		imap_store_error(s, a->tag, a->error, &a->err);
	imap_append_free(s);
	imap_reset_command(s);
	imap_command_done(s);
}

void imap_append_input(struct imap_session *s)
{
	struct imap_append *a = s->append;
	struct buf chunk;

	buf_init(&chunk);
	while (a->remaining > 0) {
		size_t want = a->remaining > 65536 ? 65536 : (size_t)a->remaining;
		size_t got;

		buf_reset(&chunk);
		got = net_conn_read_bytes(s->conn, want, &chunk);
		if (got == 0) {
			buf_free(&chunk);
			return;
		}
		a->remaining -= got;
		if (a->literal8 && !a->has_nul && memchr(chunk.data, '\0', chunk.len) != NULL)
			a->has_nul = true;
		if (!a->discard && !a->has_nul && a->error == STORE_OK)
			a->error = store_save_write(a->save, chunk.data, chunk.len, &a->err);
	}
	buf_free(&chunk);

	/* The command line continues after the literal: only its CRLF may follow, after the
	 * ")" of a utf8-literal (no MULTIAPPEND). */
	char *line;
	size_t len;
	enum net_line_status st = net_conn_read_line(s->conn, (size_t)s->deps->cfg->imap_line,
						     &line, &len, NULL);
	if (st == NET_LINE_NONE)
		return;
	if (st == NET_LINE_TOO_LONG) {
		imap_reply(s, "* BYE [TOOBIG] Command line too long");
		imap_append_free(s);
		imap_logout(s);
		return;
	}
	if (a->discard) {
		imap_append_free(s);
		imap_reset_command(s);
		return;
	}
	bool paren_ok = !a->utf8_paren || (len > 0 && line[0] == ')');

	if (a->utf8_paren && paren_ok) {
		line++;
		len--;
	}
	if (!paren_ok || len != 0) {
		/* The rest may announce more literals; they are part of this bad command.
		 * Close rather than guess where the next command starts. */
		imap_bad(s, a->tag, !paren_ok ? "Expected \")\" after the UTF8 message"
					      : "Unexpected data after the APPEND message "
						"(MULTIAPPEND is not supported)");
		imap_append_free(s);
		imap_reset_command(s);
		if (memchr(line, '{', len) != NULL) {
			imap_reply(s, "* BYE Cannot resynchronise after a bad APPEND");
			imap_logout(s);
		}
		return;
	}
	if (a->has_nul) {
		imap_tagged(s, a->tag, "%s NO [UNKNOWN-CTE] Messages with NUL octets cannot be "
				       "stored; send them with a content transfer encoding", a->tag);
		imap_append_free(s);
		imap_reset_command(s);
		return;
	}
	if (a->error != STORE_OK) {
		if (a->error == STORE_ERR_LIMIT)
			imap_tagged(s, a->tag, "%s NO [TOOBIG] Message too large", a->tag);
		else
			imap_store_error(s, a->tag, a->error, &a->err);
		imap_append_free(s);
		imap_reset_command(s);
		return;
	}
	s->busy = true;
	net_conn_offload(s->conn, finish_work, finish_done, a);
}
