/* The verdict helpers of check.h and the list of registered checks. The checks only ever add
 * to a verdict: the strongest action wins, and the first check to ask for it words the reply,
 * so a later, weaker complaint cannot hide an earlier refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "delivery_internal.h"

static int action_strength(enum delivery_check_action a)
{
	switch (a) {
	case DELIVERY_CHECK_REJECT:
		return 2;
	case DELIVERY_CHECK_TEMPFAIL:
		return 1;
	default:
		return 0;
	}
}

void delivery_verdict_refuse(struct delivery_verdict *v, enum delivery_check_action action,
			     const char *reply, const char *reason)
{
	if (action_strength(action) <= action_strength(v->action))
		return;
	v->action = action;
	snprintf(v->reply, sizeof(v->reply), "%s", reply ? reply : "");
	snprintf(v->reason, sizeof(v->reason), "%s", reason ? reason : "");
	/* A reply is one line: a CR or LF in it would let a check's input (a virus name, a DNS
	 * text) write a second reply to the client. */
	for (char *p = v->reply; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
}

void delivery_verdict_add_header(struct delivery_verdict *v, const char *field)
{
	buf_append_str(&v->headers, field);
	buf_append(&v->headers, "\r\n", 2);
}

bool delivery_verdict_drop(struct delivery_verdict *v, size_t offset, size_t len)
{
	if (v->drop_count >= DELIVERY_VERDICT_MAX_DROPS)
		return false;
	v->drops[v->drop_count].offset = offset;
	v->drops[v->drop_count].len = len;
	v->drop_count++;
	return true;
}

void delivery_add_check(struct delivery *d, const char *name, delivery_check_fn fn, void *arg)
{
	d->checks = xrealloc(d->checks, (d->check_count + 1) * sizeof(*d->checks));
	d->checks[d->check_count].name = xstrdup(name);
	d->checks[d->check_count].fn = fn;
	d->checks[d->check_count].arg = arg;
	d->check_count++;
}
