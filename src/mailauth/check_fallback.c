/* Weak stand-ins for the delivery side of delivery/check.h, so that this layer and its
 * registration link before that side exists; the delivery layer's own definitions replace
 * them at link time. With these, a registered check is never called. */
#include <stdio.h>
#include <string.h>

#include "../delivery/check.h"

__attribute__((weak)) void delivery_add_check(struct delivery *d, const char *name,
					      delivery_check_fn fn, void *arg)
{
	(void)d;
	(void)name;
	(void)fn;
	(void)arg;
}

__attribute__((weak)) void delivery_verdict_refuse(struct delivery_verdict *v,
						   enum delivery_check_action action,
						   const char *reply, const char *reason)
{
	if (action <= v->action)
		return;
	v->action = action;
	snprintf(v->reply, sizeof(v->reply), "%s", reply);
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
}

__attribute__((weak)) void delivery_verdict_add_header(struct delivery_verdict *v,
						       const char *field)
{
	buf_append_str(&v->headers, field);
	buf_append(&v->headers, "\r\n", 2);
}

__attribute__((weak)) bool delivery_verdict_drop(struct delivery_verdict *v, size_t offset,
						 size_t len)
{
	if (v->drop_count == DELIVERY_VERDICT_MAX_DROPS)
		return false;
	v->drops[v->drop_count].offset = offset;
	v->drops[v->drop_count++].len = len;
	return true;
}
