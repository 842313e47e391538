/* SMTP driver of the load generator (RFC 5321): EHLO, then per message MAIL, RCPT..., DATA and
 * the message; RSET between messages of one session, QUIT after --msgs-per-session. One
 * operation is one message answered 250 after its final dot; its latency runs from MAIL to
 * that 250. One-shot clients (the imap-idle push sender) send one message and hang up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

enum { SM_GREET, SM_EHLO, SM_MAIL, SM_RCPT, SM_DATA, SM_BODY, SM_RSET, SM_QUIT };

void lg_user_login(const struct lg_options *opt, unsigned n, char *out, size_t cap)
{
	if (lg_name_format(opt->user_fmt, n, out, cap) < 0)
		out[0] = '\0';
}

void lg_user_rcpt(const struct lg_options *opt, unsigned n, char *out, size_t cap)
{
	if (lg_name_format(opt->rcpt_fmt, n, out, cap) < 0)
		out[0] = '\0';
}

static unsigned smtp_nusers(const struct lg_options *opt)
{
	return opt->user_hi - opt->user_lo + 1;
}

/* Recipient k of the current message: consecutive users from a random start. */
static unsigned smtp_rcpt_user(struct lg_client *c, unsigned k)
{
	const struct lg_options *opt = c->th->opt;

	if (c->flags & LG_CLIENT_ONESHOT)
		return c->user;
	return opt->user_lo + (c->user - opt->user_lo + k) % smtp_nusers(opt);
}

static void smtp_send_mail(struct lg_client *c)
{
	const struct lg_options *opt = c->th->opt;

	if (!(c->flags & LG_CLIENT_ONESHOT))
		c->user = opt->user_lo + lg_rand_below(&c->rng, smtp_nusers(opt));
	c->rcpt_sent = 0;
	c->t_op = lg_now_us();
	lg_send(c, "MAIL FROM:<%s>\r\n", opt->from);
	c->state = SM_MAIL;
}

static void smtp_send_rcpt(struct lg_client *c)
{
	char rcpt[LG_MAX_NAME];

	lg_user_rcpt(c->th->opt, smtp_rcpt_user(c, c->rcpt_sent), rcpt, sizeof(rcpt));
	lg_send(c, "RCPT TO:<%s>\r\n", rcpt);
	c->rcpt_sent++;
	c->state = SM_RCPT;
}

static void smtp_send_body(struct lg_client *c)
{
	struct lg_thread *th = c->th;
	char rcpt[LG_MAX_NAME];
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t before = evbuffer_get_length(out);

	lg_user_rcpt(th->opt, smtp_rcpt_user(c, 0), rcpt, sizeof(rcpt));
	lg_msg_build(th->shared->pool, out, &c->rng, th->opt->from, rcpt,
		     ((uint64_t)c->id << 32) | (c->sessions << 12) | c->msgs_in_session,
		     false);
	th->st.bytes += evbuffer_get_length(out) - before;
	/* RFC 5321 §4.1.1.4: the body's lines never start with '.', so no stuffing is needed. */
	evbuffer_add(out, ".\r\n", 3);
	c->t_dot = lg_now_us();
	c->state = SM_BODY;
}

static void smtp_begin(struct lg_client *c)
{
	c->state = SM_GREET;
	c->msgs_in_session = 0;
}

/* Handles one complete reply (its last line); 0 to go on, -1 on error, 1 when closed. */
static int smtp_reply(struct lg_client *c, int code)
{
	struct lg_thread *th = c->th;
	const struct lg_options *opt = th->opt;
	unsigned rcpts = (c->flags & LG_CLIENT_ONESHOT) ? 1 : opt->rcpts_per_msg;

	switch (c->state) {
	case SM_GREET:
		if (code != 220)
			return -1;
		lg_send(c, "EHLO loadgen.%s\r\n", opt->domain);
		c->state = SM_EHLO;
		return 0;
	case SM_EHLO:
	case SM_RSET:
		if (code != 250)
			return -1;
		smtp_send_mail(c);
		return 0;
	case SM_MAIL:
		if (code != 250)
			return -1;
		smtp_send_rcpt(c);
		return 0;
	case SM_RCPT:
		if (code != 250 && code != 251)
			return -1;
		if (c->rcpt_sent < rcpts) {
			smtp_send_rcpt(c);
		} else {
			lg_send(c, "DATA\r\n");
			c->state = SM_DATA;
		}
		return 0;
	case SM_DATA:
		if (code != 354)
			return -1;
		smtp_send_body(c);
		return 0;
	case SM_BODY:
		if (code != 250)
			return -1;
		c->msgs_in_session++;
		atomic_fetch_add(&th->shared->accepted, rcpts);
		if (c->on_event != NULL)
			c->on_event(c, LG_EV_ACCEPTED, lg_now_us());
		lg_count_op(c, lg_now_us() - c->t_op);
		if (!(c->flags & LG_CLIENT_ONESHOT) && c->msgs_in_session < opt->msgs_per_session) {
			lg_send(c, "RSET\r\n");
			c->state = SM_RSET;
		} else {
			lg_send(c, "QUIT\r\n");
			c->state = SM_QUIT;
		}
		return 0;
	case SM_QUIT:
		lg_client_finish(c);
		return 1;
	default:
		return -1;
	}
}

static int smtp_input(struct lg_client *c)
{
	for (;;) {
		size_t len;
		int err, r;
		char *line = lg_readline(c, &len, &err);

		if (line == NULL)
			return err ? -1 : 0;
		/* RFC 5321 §4.2.1: "NNN-" continues a reply, "NNN " or "NNN" ends it. */
		if (len < 3 || line[0] < '2' || line[0] > '5') {
			free(line);
			return -1;
		}
		if (len > 3 && line[3] == '-') {
			free(line);
			continue;
		}
		r = smtp_reply(c, atoi(line));
		if (r != 0 && c->th->opt->verbose && r < 0)
			fprintf(stderr, "loadgen: smtp client %u: unexpected reply '%s'\n", c->id,
				line);
		free(line);
		if (r != 0)
			return r;
	}
}

const struct lg_proto lg_proto_smtp = { "smtp", smtp_begin, smtp_input };
