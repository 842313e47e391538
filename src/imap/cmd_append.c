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
 * NO [UNKNOWN-CTE] as RFC 3516 §4.4 asks of a mailbox that cannot keep binary content.
 *
 * MULTIAPPEND (RFC 3502): after a message's octets the line may go on with the next
 * message's flags, date and literal. Each message streams into its own save; between two
 * messages a worker seals the finished one (fsync, file closed, so a long MULTIAPPEND holds no
 * descriptor per message) and begins the next, and only then is "+" sent. At the final CRLF
 * store_save_finish_all commits them in one index transaction: all of them or none
 * (RFC 3502 §6.3.11), with one APPENDUID carrying the UID set. A refusal on the way (too big,
 * NUL, an error of the store) answers the tagged NO at once and aborts every save; a
 * non-synchronising literal that follows is read and thrown away, a synchronising one is
 * never invited. At most LIMIT_IMAP_MULTIAPPEND_MESSAGES messages per command. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

/* One message of an APPEND. */
struct append_msg {
	uint32_t flags;
	char **keywords;
	size_t keyword_count;
	int64_t internal_date;
	struct store_save *save;
};

struct imap_append {
	char *tag;
	char *name;
	struct append_msg *msgs; /* the last one is the one arriving */
	size_t count;
	uint64_t remaining;
	bool nonsync;
	bool discard;      /* the literal is read and thrown away (error already answered) */
	bool literal8;     /* "~{N}": may contain NUL, which we refuse */
	bool utf8_paren;   /* "UTF8 (~{N})": a ")" follows the literal */
	bool has_nul;
	struct store_account *acct;
	enum store_error error;
	struct store_err err;
	struct store_save_result *results; /* one per message, after the commit */
};

static struct append_msg *append_current(struct imap_append *a)
{
	return &a->msgs[a->count - 1];
}

static struct append_msg *append_add_msg(struct imap_append *a)
{
	a->msgs = xrealloc(a->msgs, (a->count + 1) * sizeof(*a->msgs));
	memset(&a->msgs[a->count], 0, sizeof(a->msgs[a->count]));
	return &a->msgs[a->count++];
}

/* Aborts every save of the command (nothing of it is stored). */
static void append_abort_all(struct imap_append *a)
{
	for (size_t i = 0; i < a->count; i++)
		store_save_abort(&a->msgs[i].save);
}

void imap_append_free(struct imap_session *s)
{
	struct imap_append *a = s->append;

	if (a == NULL)
		return;
	append_abort_all(a);
	for (size_t i = 0; i < a->count; i++)
		imap_keywords_free(&a->msgs[i].keywords, &a->msgs[i].keyword_count);
	free(a->msgs);
	free(a->results);
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

/* Seals the message before the current one (MULTIAPPEND), then begins the current one. */
static void begin_work(void *arg)
{
	struct imap_append *a = arg;

	if (a->count > 1) {
		a->error = store_save_seal(a->msgs[a->count - 2].save, &a->err);
		if (a->error != STORE_OK)
			return;
	}
	a->error = store_save_begin(a->acct, a->name, &append_current(a)->save, &a->err);
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
		append_abort_all(a);
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

/* append-message up to its literal: [SP flag-list] [SP date-time] SP literal-start
 * (RFC 3502 §6.3.11), into a new message of the command. */
static bool append_parse_message_start(struct imap_session *s, struct imap_append *a,
				       struct imap_parser *ps, const char **why_r)
{
	struct append_msg *m = append_add_msg(a);

	a->literal8 = false;
	a->utf8_paren = false;
	if (imap_peek(ps, '(')) {
		if (!imap_parse_flag_list(ps, &m->flags, &m->keywords, &m->keyword_count, true) ||
		    !imap_parse_sp(ps))
			return false;
	}
	if (imap_peek(ps, '"')) {
		if (!imap_parse_date_time(ps, &m->internal_date) || !imap_parse_sp(ps))
			return false;
	}
	return append_parse_literal_start(s, a, ps, why_r);
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
	if (!imap_parse_sp(&ps) || !append_parse_message_start(s, a, &ps, &why))
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
	struct store_save_meta *metas = xcalloc(a->count, sizeof(*metas));
	struct store_save **saves = xcalloc(a->count, sizeof(*saves));

	for (size_t i = 0; i < a->count; i++) {
		struct append_msg *m = &a->msgs[i];

		metas[i] = (struct store_save_meta){ m->flags, (const char *const *)m->keywords,
						     m->keyword_count, m->internal_date };
		saves[i] = m->save;
		m->save = NULL; /* store_save_finish_all frees them */
	}
	a->results = xcalloc(a->count, sizeof(*a->results));
	a->error = store_save_finish_all(saves, a->count, metas, a->results, &a->err);
	free(saves);
	free(metas);
}

static void finish_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct imap_append *a = arg;

	if (a->error == STORE_OK) {
		/* RFC 4315 §3: one APPENDUID with the UIDs in the order of the messages. */
		uint32_t *uids = xcalloc(a->count, sizeof(*uids));
		struct buf set;

		for (size_t i = 0; i < a->count; i++)
			uids[i] = a->results[i].uid;
		buf_init(&set);
		imap_append_uid_set(&set, uids, a->count);
		imap_tagged(s, a->tag, "%s OK [APPENDUID %u %s] APPEND completed", a->tag,
			    a->results[0].uidvalidity, buf_cstr(&set));
		buf_free(&set);
		free(uids);
	} else if (a->error == STORE_ERR_LIMIT)
		imap_tagged(s, a->tag, "%s NO [TOOBIG] %s", a->tag,
			    a->err.text[0] ? a->err.text : "Message too large");
	else
		imap_store_error(s, a->tag, a->error, &a->err);
	imap_append_free(s);
	imap_reset_command(s);
	imap_command_done(s);
}

/* Ends a bad APPEND whose rest (LINE) could not be parsed. A synchronising literal it
 * announces is never sent (the client sees the tagged BAD instead of "+"); after any other
 * we cannot tell where the next command starts, so the connection closes. */
static void append_end_bad(struct imap_session *s, const char *line, size_t len)
{
	uint64_t size;
	bool nonsync = true;
	int lit = imap_line_literal(line, len, &size, &nonsync);

	imap_append_free(s);
	imap_reset_command(s);
	if (lit < 0 || (lit > 0 && nonsync) || (lit == 0 && memchr(line, '{', len) != NULL)) {
		imap_reply(s, "* BYE Cannot resynchronise after a bad APPEND");
		imap_logout(s);
	}
}

/* After the tagged reply went out: a non-synchronising literal the line announces is read and
 * thrown away (RFC 7888 §4), like the rest of its line; otherwise the command is over (a
 * client waiting for "+" sees the tagged reply instead, RFC 3502 §6.3.11). */
static bool append_discard_next(struct imap_session *s, struct imap_append *a, const char *line,
				size_t len)
{
	uint64_t size;
	bool nonsync;

	if (imap_line_literal(line, len, &size, &nonsync) > 0 && nonsync) {
		a->remaining = size;
		a->utf8_paren = memmem(line, len, "UTF8 (", 6) != NULL;
		a->literal8 = false;
		return true;
	}
	imap_append_free(s);
	imap_reset_command(s);
	return false;
}

/* A message already known to be refused (NUL octets, an error of the store) answers the
 * command now; true when it did, and every save is aborted. */
static bool append_refuse_now(struct imap_session *s, struct imap_append *a)
{
	if (a->has_nul)
		imap_tagged(s, a->tag, "%s NO [UNKNOWN-CTE] Messages with NUL octets cannot be "
				       "stored; send them with a content transfer encoding", a->tag);
	else if (a->error == STORE_ERR_LIMIT)
		imap_tagged(s, a->tag, "%s NO [TOOBIG] Message too large", a->tag);
	else if (a->error != STORE_OK)
		imap_store_error(s, a->tag, a->error, &a->err);
	else
		return false;
	append_abort_all(a);
	a->discard = true;
	return true;
}

/* MULTIAPPEND: LINE (not empty) should be SP append-message's start and literal. */
static void append_next_message(struct imap_session *s, struct imap_append *a, const char *line,
				size_t len)
{
	struct imap_parser ps;
	const char *why = NULL;
	uint64_t size;
	bool nonsync;
	int lit = imap_line_literal(line, len, &size, &nonsync);

	imap_parser_init(&ps, (uint8_t *)line, len);
	if (lit <= 0 || !imap_parse_sp(&ps) || !append_parse_message_start(s, a, &ps, &why) ||
	    (const char *)ps.p != memrchr(line, '{', len)) {
		imap_bad(s, a->tag, why != NULL ? why
				    : lit == 0 && ps.error == NULL
					    ? "Unexpected data after the APPEND message"
					    : "Invalid MULTIAPPEND message");
		append_end_bad(s, line, len);
		return;
	}
	if (a->count > LIMIT_IMAP_MULTIAPPEND_MESSAGES || size > (uint64_t)s->deps->cfg->message_size) {
		if (nonsync) {
			/* RFC 7888 §4: the client sends it anyway; we will not read it. */
			imap_reply(s, "* BYE [TOOBIG] Literal too large");
			imap_append_free(s);
			imap_logout(s);
			return;
		}
		if (a->count > LIMIT_IMAP_MULTIAPPEND_MESSAGES)
			imap_tagged(s, a->tag, "%s NO [LIMIT] At most %d messages in one APPEND",
				    a->tag, LIMIT_IMAP_MULTIAPPEND_MESSAGES);
		else
			imap_tagged(s, a->tag, "%s NO [TOOBIG] Message too large", a->tag);
		imap_append_free(s);
		imap_reset_command(s);
		return;
	}
	a->remaining = size;
	a->nonsync = nonsync;
	a->has_nul = false;
	s->busy = true;
	net_conn_offload(s->conn, begin_work, begin_done, a);
}

/* Reads what arrived of the command after its first literal was invited. True when a
 * literal to drop follows at once (its octets may be buffered already). */
static bool append_input_step(struct imap_session *s)
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
			return false;
		}
		a->remaining -= got;
		if (a->literal8 && !a->has_nul && memchr(chunk.data, '\0', chunk.len) != NULL)
			a->has_nul = true;
		if (!a->discard && !a->has_nul && a->error == STORE_OK)
			a->error = store_save_write(append_current(a)->save, chunk.data, chunk.len,
						    &a->err);
	}
	buf_free(&chunk);

	/* The command line continues after the literal: its CRLF, or (MULTIAPPEND) the next
	 * message; after the ")" of a utf8-literal. */
	char *line;
	size_t len;
	enum net_line_status st = net_conn_read_line(s->conn, (size_t)s->deps->cfg->imap_line,
						     &line, &len, NULL);
	if (st == NET_LINE_NONE)
		return false;
	if (st == NET_LINE_TOO_LONG) {
		imap_reply(s, "* BYE [TOOBIG] Command line too long");
		imap_append_free(s);
		imap_logout(s);
		return false;
	}
	bool paren_ok = !a->utf8_paren || (len > 0 && line[0] == ')');

	if (a->utf8_paren && paren_ok) {
		line++;
		len--;
	}
	if (a->discard)
		return append_discard_next(s, a, line, len);
	if (!paren_ok) {
		imap_bad(s, a->tag, "Expected \")\" after the UTF8 message");
		append_end_bad(s, line, len);
		return false;
	}
	if (append_refuse_now(s, a))
		return append_discard_next(s, a, line, len);
	if (len != 0) {
		append_next_message(s, a, line, len);
		return false;
	}
	s->busy = true;
	net_conn_offload(s->conn, finish_work, finish_done, a);
	return false;
}

void imap_append_input(struct imap_session *s)
{
	while (append_input_step(s))
		;
}
