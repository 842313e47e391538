/* IMAP drivers of the load generator (RFC 9051 / RFC 3501 syntax): a response reader that
 * follows literals, and four clients on top of it: the imaptest-like mixed session, the
 * mailbox filler (APPEND up to N messages), the IDLE client and the STATUS poller that counts
 * delivered mail. One command is in flight per connection at a time. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

enum imap_kind { IK_UNTAGGED, IK_CONTINUE, IK_TAGGED, IK_OTHER };
enum imap_status { IS_OK, IS_NO, IS_BAD };

typedef int (*imap_handler)(struct lg_client *c, const char *line, enum imap_kind kind,
			    enum imap_status status);

static void imap_cmd(struct lg_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void imap_cmd(struct lg_client *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	c->tag++;
	c->t_op = lg_now_us();
	evbuffer_add_printf(out, "a%u ", c->tag);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* RFC 9051 §4.3: a line ending in "{N}" (or "{N+}") is followed by N octets of literal. */
static int imap_literal_suffix(const char *line, size_t len, size_t *n_r)
{
	size_t i;
	uint64_t n;

	if (len < 3 || line[len - 1] != '}')
		return 0;
	i = len - 2;
	if (line[i] == '+')
		i--;
	size_t end = i + 1;
	while (i > 0 && line[i] >= '0' && line[i] <= '9')
		i--;
	if (line[i] != '{' || end == i + 1)
		return 0;
	if (str_to_u64(line + i + 1, end - i - 1, UINT64_MAX, &n) < 0)
		return -1;
	if (n > LG_MAX_LITERAL)
		return -1;
	*n_r = (size_t)n;
	return 1;
}

/* Classifies the first line of a response and keeps the EXISTS count up to date. */
static enum imap_kind imap_classify(struct lg_client *c, const char *line,
				    enum imap_status *status_r)
{
	char tag[16];
	int tl = snprintf(tag, sizeof(tag), "a%u ", c->tag);

	*status_r = IS_BAD;
	if (line[0] == '+')
		return IK_CONTINUE;
	if (line[0] == '*' && line[1] == ' ') {
		char *end;
		unsigned long n = strtoul(line + 2, &end, 10);
		if (end != line + 2 && str_has_prefix_ci(end, " EXISTS"))
			c->exists = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
		else if (end != line + 2 && str_has_prefix_ci(end, " EXPUNGE") && c->exists > 0)
			c->exists--;
		return IK_UNTAGGED;
	}
	if (strncmp(line, tag, (size_t)tl) == 0) {
		const char *s = line + tl;
		if (str_has_prefix_ci(s, "OK"))
			*status_r = IS_OK;
		else if (str_has_prefix_ci(s, "NO"))
			*status_r = IS_NO;
		return IK_TAGGED;
	}
	return IK_OTHER;
}

/* Reads whole responses, draining literals (counted as bytes), and hands the first line of
 * each to the handler. Returns what input() returns. */
static int imap_pump(struct lg_client *c, imap_handler handler)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		size_t len, lit = 0;
		int err, r = 0, has_lit;
		bool first;
		char *line;
		enum imap_status status;
		enum imap_kind kind;

		if (c->lit_left > 0) {
			size_t have = evbuffer_get_length(in);
			size_t n = have < c->lit_left ? have : c->lit_left;
			evbuffer_drain(in, n);
			c->lit_left -= n;
			c->th->st.bytes += n;
			if (c->lit_left > 0)
				return 0;
			continue;
		}
		line = lg_readline(c, &len, &err);
		if (line == NULL)
			return err ? -1 : 0;
		first = !c->in_cont;
		has_lit = imap_literal_suffix(line, len, &lit);
		if (has_lit < 0) {
			free(line);
			return -1;
		}
		c->in_cont = has_lit == 1;
		c->lit_left = lit;
		if (first) {
			kind = imap_classify(c, line, &status);
			if (kind == IK_OTHER) {
				if (c->th->opt->verbose)
					fprintf(stderr, "loadgen: imap client %u: '%s'\n", c->id,
						line);
				r = -1;
			} else {
				r = handler(c, line, kind, status);
				if (r < 0 && c->th->opt->verbose)
					fprintf(stderr, "loadgen: imap client %u: '%s'\n", c->id,
						line);
			}
		}
		free(line);
		if (r != 0)
			return r;
	}
}

static void imap_login(struct lg_client *c)
{
	char name[LG_MAX_NAME];

	lg_user_login(c->th->opt, c->user, name, sizeof(name));
	imap_cmd(c, "LOGIN \"%s\" \"%s\"", name, c->th->opt->password);
}

static void imap_append(struct lg_client *c, bool small)
{
	struct lg_thread *th = c->th;
	char rcpt[LG_MAX_NAME];

	if (c->pending == NULL)
		c->pending = evbuffer_new();
	evbuffer_drain(c->pending, evbuffer_get_length(c->pending));
	lg_user_rcpt(th->opt, c->user, rcpt, sizeof(rcpt));
	lg_msg_build(th->shared->pool, c->pending, &c->rng, th->opt->from, rcpt,
		     ((uint64_t)c->id << 32) | (uint64_t)c->tag, small);
	imap_cmd(c, "APPEND INBOX {%zu}", evbuffer_get_length(c->pending));
}

/* After "+ ": the literal of the APPEND in flight, then the end of the command line. */
static int imap_append_literal(struct lg_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->pending == NULL || evbuffer_get_length(c->pending) == 0)
		return -1;
	c->th->st.bytes += evbuffer_get_length(c->pending);
	evbuffer_add_buffer(out, c->pending);
	evbuffer_add(out, "\r\n", 2);
	return 0;
}

static unsigned imap_nusers(const struct lg_options *opt)
{
	return opt->user_hi - opt->user_lo + 1;
}

/* ---- imap-mixed: an imaptest-like session ---- */

enum {
	MX_GREET, MX_LOGIN, MX_LIST, MX_SELECT, MX_FETCH_FLAGS, MX_FETCH_HDR, MX_FETCH_BODY,
	MX_STORE_SEEN, MX_STORE_DEL, MX_APPEND, MX_EXPUNGE, MX_LOGOUT, MX_END
};

/* Percent chance of each step in a session, after imaptest's default profile (LIST and the
 * \Seen STORE half the time; one message marked \Deleted and one appended per session, so
 * mailboxes keep their size). */
static const unsigned mx_chance[MX_END] = {
	[MX_LOGIN] = 100, [MX_LIST] = 50, [MX_SELECT] = 100, [MX_FETCH_FLAGS] = 100,
	[MX_FETCH_HDR] = 100, [MX_FETCH_BODY] = 100, [MX_STORE_SEEN] = 50,
	[MX_STORE_DEL] = 100, [MX_APPEND] = 100, [MX_EXPUNGE] = 100, [MX_LOGOUT] = 100,
};

static void mx_send(struct lg_client *c, int step)
{
	uint32_t n = c->exists;
	unsigned a = n ? 1 + lg_rand_below(&c->rng, n) : 1;

	c->state = step;
	switch (step) {
	case MX_LOGIN:
		imap_login(c);
		break;
	case MX_LIST:
		imap_cmd(c, "LIST \"\" \"*\"");
		break;
	case MX_SELECT:
		imap_cmd(c, "SELECT INBOX");
		break;
	case MX_FETCH_FLAGS:
		imap_cmd(c, "FETCH 1:* (UID FLAGS)");
		break;
	case MX_FETCH_HDR: {
		/* Up to five random messages' headers, like a client filling its list view. */
		unsigned b = 1 + lg_rand_below(&c->rng, n), d = 1 + lg_rand_below(&c->rng, n);
		imap_cmd(c, "FETCH %u,%u,%u (UID BODY.PEEK[HEADER])", a, b, d);
		break;
	}
	case MX_FETCH_BODY:
		imap_cmd(c, "FETCH %u (UID BODY.PEEK[])", a);
		break;
	case MX_STORE_SEEN: {
		unsigned e = a + lg_rand_below(&c->rng, 5);
		imap_cmd(c, "STORE %u:%u +FLAGS (\\Seen)", a, e > n ? n : e);
		break;
	}
	case MX_STORE_DEL:
		imap_cmd(c, "STORE %u +FLAGS (\\Deleted)", a);
		break;
	case MX_APPEND:
		imap_append(c, true);
		break;
	case MX_EXPUNGE:
		imap_cmd(c, "EXPUNGE");
		break;
	default:
		imap_cmd(c, "LOGOUT");
		c->state = MX_LOGOUT;
		break;
	}
}

static void mx_next(struct lg_client *c)
{
	for (int step = c->state + 1; step < MX_END; step++) {
		bool needs_msgs = step == MX_FETCH_HDR || step == MX_FETCH_BODY ||
				  step == MX_STORE_SEEN || step == MX_STORE_DEL;
		if (needs_msgs && c->exists == 0)
			continue;
		if (lg_rand_below(&c->rng, 100) >= mx_chance[step])
			continue;
		mx_send(c, step);
		return;
	}
	mx_send(c, MX_LOGOUT);
}

static int mx_handle(struct lg_client *c, const char *line, enum imap_kind kind,
		     enum imap_status status)
{
	if (c->state == MX_GREET) {
		if (kind != IK_UNTAGGED || !str_has_prefix_ci(line, "* OK"))
			return -1;
		mx_send(c, MX_LOGIN);
		return 0;
	}
	if (kind == IK_CONTINUE)
		return c->state == MX_APPEND ? imap_append_literal(c) : -1;
	if (kind != IK_TAGGED)
		return 0;
	if (status == IS_BAD)
		return -1;
	if (status == IS_NO) {
		/* A message expunged by a concurrent session can make FETCH/STORE fail; that is
		 * the server being right, not an error of the run. */
		if (c->state == MX_LOGIN || c->state == MX_SELECT || c->state == MX_APPEND)
			return -1;
		c->th->st.no_replies++;
	} else {
		lg_count_op(c, lg_now_us() - c->t_op);
		if (c->th->stopping)
			return 1;
	}
	if (c->state == MX_LOGOUT) {
		lg_client_finish(c);
		return 1;
	}
	mx_next(c);
	return 0;
}

static void mx_begin(struct lg_client *c)
{
	const struct lg_options *opt = c->th->opt;

	c->state = MX_GREET;
	c->exists = 0;
	c->user = opt->user_lo + (unsigned)((c->id + c->sessions) % imap_nusers(opt));
}

static int mx_input(struct lg_client *c)
{
	return imap_pump(c, mx_handle);
}

const struct lg_proto lg_proto_imap_mixed = { "imap-mixed", mx_begin, mx_input };

/* ---- imap-fill: top INBOXes up to --fill messages (client i fills users i, i+C, ...) ---- */

enum { FL_GREET, FL_LOGIN, FL_SELECT, FL_APPEND, FL_LOGOUT };

static void fl_begin(struct lg_client *c)
{
	c->state = FL_GREET;
	c->exists = 0;
}

static void fl_append_or_logout(struct lg_client *c)
{
	if (c->step < c->th->opt->fill) {
		c->state = FL_APPEND;
		imap_append(c, false);
	} else {
		c->state = FL_LOGOUT;
		imap_cmd(c, "LOGOUT");
	}
}

static int fl_handle(struct lg_client *c, const char *line, enum imap_kind kind,
		     enum imap_status status)
{
	const struct lg_options *opt = c->th->opt;

	if (c->state == FL_GREET) {
		if (kind != IK_UNTAGGED || !str_has_prefix_ci(line, "* OK"))
			return -1;
		c->state = FL_LOGIN;
		imap_login(c);
		return 0;
	}
	if (kind == IK_CONTINUE)
		return c->state == FL_APPEND ? imap_append_literal(c) : -1;
	if (kind != IK_TAGGED)
		return 0;
	if (status != IS_OK)
		return -1;
	switch (c->state) {
	case FL_LOGIN:
		c->state = FL_SELECT;
		imap_cmd(c, "SELECT INBOX");
		return 0;
	case FL_SELECT:
		c->step = c->exists; /* from SELECT's untagged EXISTS */
		fl_append_or_logout(c);
		return 0;
	case FL_APPEND:
		lg_count_op(c, lg_now_us() - c->t_op);
		if (c->th->stopping)
			return 1;
		c->step++;
		fl_append_or_logout(c);
		return 0;
	default:
		c->user += c->th->shared->opt->clients;
		if (c->user > opt->user_hi)
			c->finished = true;
		lg_client_finish(c);
		return 1;
	}
}

static int fl_input(struct lg_client *c)
{
	return imap_pump(c, fl_handle);
}

const struct lg_proto lg_proto_imap_fill = { "imap-fill", fl_begin, fl_input };

/* ---- imap-idle: LOGIN, SELECT INBOX, IDLE, then report every EXISTS ---- */

enum { ID_GREET, ID_LOGIN, ID_SELECT, ID_IDLE_WAIT, ID_IDLING, ID_DONE };

static void id_begin(struct lg_client *c)
{
	c->state = ID_GREET;
	c->exists = 0;
}

static int id_handle(struct lg_client *c, const char *line, enum imap_kind kind,
		     enum imap_status status)
{
	switch (c->state) {
	case ID_GREET:
		if (kind != IK_UNTAGGED || !str_has_prefix_ci(line, "* OK"))
			return -1;
		c->state = ID_LOGIN;
		imap_login(c);
		return 0;
	case ID_LOGIN:
	case ID_SELECT:
		if (kind != IK_TAGGED)
			return 0;
		if (status != IS_OK)
			return -1;
		if (c->state == ID_LOGIN) {
			c->state = ID_SELECT;
			imap_cmd(c, "SELECT INBOX");
		} else {
			/* RFC 2177 */
			c->state = ID_IDLE_WAIT;
			imap_cmd(c, "IDLE");
		}
		return 0;
	case ID_IDLE_WAIT:
		if (kind == IK_TAGGED)
			return -1;
		if (kind != IK_CONTINUE)
			return 0;
		c->state = ID_IDLING;
		/* Idle connections are silent by design: no read timeout from here on. */
		bufferevent_set_timeouts(c->bev, NULL, NULL);
		if (c->on_event != NULL)
			c->on_event(c, LG_EV_IDLING, lg_now_us());
		return 0;
	case ID_IDLING:
		if (kind == IK_UNTAGGED && strstr(line, "EXISTS") != NULL && c->on_event != NULL)
			c->on_event(c, LG_EV_EXISTS, c->exists);
		return kind == IK_TAGGED ? -1 : 0;
	default:
		return 0;
	}
}

static int id_input(struct lg_client *c)
{
	return imap_pump(c, id_handle);
}

const struct lg_proto lg_proto_imap_idle = { "imap-idle", id_begin, id_input };

/* ---- STATUS poller: counts the messages in one user's INBOX for smtp-deliver --track ---- */

enum { ST_GREET, ST_LOGIN, ST_STATUS, ST_WAIT };

static void st_begin(struct lg_client *c)
{
	c->state = ST_GREET;
}

void lg_imap_status_poll(struct lg_client *c)
{
	if (c->bev == NULL || c->state != ST_WAIT)
		return;
	c->state = ST_STATUS;
	imap_cmd(c, "STATUS INBOX (MESSAGES)");
}

static int st_handle(struct lg_client *c, const char *line, enum imap_kind kind,
		     enum imap_status status)
{
	if (c->state == ST_GREET) {
		if (kind != IK_UNTAGGED || !str_has_prefix_ci(line, "* OK"))
			return -1;
		c->state = ST_LOGIN;
		imap_login(c);
		return 0;
	}
	if (kind == IK_UNTAGGED && str_has_prefix_ci(line, "* STATUS")) {
		const char *m = strcasestr(line, "MESSAGES ");
		if (m != NULL)
			c->status_messages = (uint32_t)strtoul(m + 9, NULL, 10);
		return 0;
	}
	if (kind != IK_TAGGED)
		return 0;
	if (status != IS_OK)
		return -1;
	if (c->state == ST_STATUS) {
		c->status_valid = true;
		if (c->on_event != NULL)
			c->on_event(c, LG_EV_STATUS, c->status_messages);
	}
	c->state = ST_WAIT;
	if (!c->status_valid)
		lg_imap_status_poll(c);
	return 0;
}

static int st_input(struct lg_client *c)
{
	return imap_pump(c, st_handle);
}

const struct lg_proto lg_proto_imap_status = { "imap-status", st_begin, st_input };

/* ---- fresh login while the others idle: greeting, LOGIN, LOGOUT ---- */

enum { LI_GREET, LI_LOGIN, LI_LOGOUT };

static void li_begin(struct lg_client *c)
{
	c->state = LI_GREET;
}

static int li_handle(struct lg_client *c, const char *line, enum imap_kind kind,
		     enum imap_status status)
{
	if (c->state == LI_GREET) {
		if (kind != IK_UNTAGGED || !str_has_prefix_ci(line, "* OK"))
			return -1;
		c->state = LI_LOGIN;
		imap_login(c);
		return 0;
	}
	if (kind != IK_TAGGED)
		return 0;
	if (status != IS_OK)
		return -1;
	if (c->state == LI_LOGIN) {
		if (c->on_event != NULL)
			c->on_event(c, LG_EV_LOGGED_IN, lg_now_us());
		c->state = LI_LOGOUT;
		imap_cmd(c, "LOGOUT");
		return 0;
	}
	lg_client_finish(c);
	return 1;
}

static int li_input(struct lg_client *c)
{
	return imap_pump(c, li_handle);
}

const struct lg_proto lg_proto_imap_login = { "imap-login", li_begin, li_input };
