/* POP3 driver of the load generator (RFC 1939): USER, PASS, STAT, RETR of every message (no
 * DELE, so mailboxes stay the same run after run), QUIT, over and over, cycling through the
 * users. One operation is one message retrieved; its latency runs from RETR to the final dot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

enum { PS_GREET, PS_USER, PS_PASS, PS_STAT, PS_RETR_STATUS, PS_RETR_BODY, PS_QUIT };

static void pop3_begin(struct lg_client *c)
{
	const struct lg_options *opt = c->th->opt;
	unsigned nusers = opt->user_hi - opt->user_lo + 1;

	c->state = PS_GREET;
	c->user = opt->user_lo + (unsigned)((c->id + c->sessions) % nusers);
}

static void pop3_next_retr(struct lg_client *c)
{
	if (c->pop_next > c->pop_count) {
		lg_send(c, "QUIT\r\n");
		c->state = PS_QUIT;
		return;
	}
	c->t_op = lg_now_us();
	c->scan_off = 0;
	lg_send(c, "RETR %u\r\n", c->pop_next);
	c->pop_next++;
	c->state = PS_RETR_STATUS;
}

/* Consumes a multi-line RETR answer up to its terminating ".CRLF"; 1 when complete. */
static int pop3_body(struct lg_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t have = evbuffer_get_length(in);
	struct evbuffer_ptr start, hit;
	unsigned char head[3];

	/* RFC 1939 §3: an empty message is the terminator line alone. */
	if (c->scan_off == 0) {
		if (have < 3)
			return 0;
		evbuffer_copyout(in, head, 3);
		if (memcmp(head, ".\r\n", 3) == 0) {
			evbuffer_drain(in, 3);
			return 1;
		}
	}
	if (have < 5)
		return 0;
	if (evbuffer_ptr_set(in, &start, c->scan_off, EVBUFFER_PTR_SET) < 0)
		return -1;
	hit = evbuffer_search(in, "\r\n.\r\n", 5, &start);
	if (hit.pos < 0) {
		if (have > (size_t)LG_MAX_MSG_SIZE * 2)
			return -1;
		c->scan_off = have - 4;
		return 0;
	}
	c->th->st.bytes += (uint64_t)hit.pos + 2;
	evbuffer_drain(in, (size_t)hit.pos + 5);
	return 1;
}

static int pop3_input(struct lg_client *c)
{
	const struct lg_options *opt = c->th->opt;
	char name[LG_MAX_NAME];

	for (;;) {
		size_t len;
		int err;
		char *line;

		if (c->state == PS_RETR_BODY) {
			int r = pop3_body(c);
			if (r <= 0)
				return r;
			lg_count_op(c, lg_now_us() - c->t_op);
			if (c->th->stopping)
				return 1;
			pop3_next_retr(c);
			continue;
		}
		line = lg_readline(c, &len, &err);
		if (line == NULL)
			return err ? -1 : 0;
		if (strncmp(line, "+OK", 3) != 0) {
			if (opt->verbose)
				fprintf(stderr, "loadgen: pop3 client %u: '%s'\n", c->id, line);
			free(line);
			return -1;
		}
		switch (c->state) {
		case PS_GREET:
			lg_user_login(opt, c->user, name, sizeof(name));
			lg_send(c, "USER %s\r\n", name);
			c->state = PS_USER;
			break;
		case PS_USER:
			lg_send(c, "PASS %s\r\n", opt->password);
			c->state = PS_PASS;
			break;
		case PS_PASS:
			lg_send(c, "STAT\r\n");
			c->state = PS_STAT;
			break;
		case PS_STAT: {
			unsigned long count = strtoul(line + 3, NULL, 10);
			c->pop_count = count > 1000000 ? 1000000 : (uint32_t)count;
			c->pop_next = 1;
			pop3_next_retr(c);
			break;
		}
		case PS_RETR_STATUS:
			c->state = PS_RETR_BODY;
			break;
		case PS_QUIT:
			free(line);
			lg_client_finish(c);
			return 1;
		default:
			free(line);
			return -1;
		}
		free(line);
	}
}

const struct lg_proto lg_proto_pop3 = { "pop3", pop3_begin, pop3_input };
