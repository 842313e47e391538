/* Read-ahead for RETR (see pop3_internal.h): the messages a session opened before its client
 * asked for them, and the list of those it is done with. The fill runs in a store job; take
 * and drop run on the event loop and never call into the store except for the non-blocking
 * store_account_removals(). */
#include <string.h>

#include "../core/core.h"
#include "pop3_internal.h"

void pop3_spent_add(struct pop3_spent *sp, struct store_message **msg)
{
	if (*msg == NULL)
		return;
	if (sp->count == ARRAY_LEN(sp->msg)) {
		/* Cannot happen by the bound in pop3_internal.h; closing here is still correct. */
		store_message_close(msg);
		return;
	}
	sp->msg[sp->count++] = *msg;
	*msg = NULL;
}

void pop3_spent_close(struct pop3_spent *sp)
{
	for (unsigned i = 0; i < sp->count; i++)
		store_message_close(&sp->msg[i]);
	sp->count = 0;
}

void pop3_readahead_fill(struct pop3_readahead *ra, const struct pop3_maildrop *md,
			 uint32_t after, uint64_t removals)
{
	uint64_t bytes = 0;

	ra->count = 0;
	ra->removals = removals;
	for (uint32_t n = after + 1; n <= md->count && ra->count < POP3_AHEAD_MAX &&
				     bytes < POP3_AHEAD_BYTES; n++) {
		const struct pop3_msg *m = pop3_maildrop_get(md, n);
		struct store_message *msg;

		if (m == NULL)
			continue;
		if (store_message_open(md->acct, md->box_id[m->box], m->uid, &msg, NULL) !=
		    STORE_OK)
			break;
		ra->n[ra->count] = n;
		ra->msg[ra->count] = msg;
		ra->count++;
		bytes += m->size;
	}
}

void pop3_readahead_drop(struct pop3_readahead *ra, struct pop3_spent *sp)
{
	for (unsigned i = 0; i < ra->count; i++)
		pop3_spent_add(sp, &ra->msg[i]);
	ra->count = 0;
}

struct store_message *pop3_readahead_take(struct pop3_readahead *ra, uint32_t n,
					  struct store_account *acct, struct pop3_spent *sp)
{
	struct store_message *msg;
	unsigned i = 0;

	if (ra->count == 0)
		return NULL;
	while (i < ra->count && ra->n[i] != n)
		i++;
	if (i == ra->count || store_account_removals(acct) != ra->removals) {
		pop3_readahead_drop(ra, sp);
		return NULL;
	}
	/* Entries before n were skipped by the client (DELE'd, or it jumped ahead). */
	for (unsigned k = 0; k < i; k++)
		pop3_spent_add(sp, &ra->msg[k]);
	msg = ra->msg[i];
	ra->count -= i + 1;
	memmove(ra->n, ra->n + i + 1, ra->count * sizeof(ra->n[0]));
	memmove(ra->msg, ra->msg + i + 1, ra->count * sizeof(ra->msg[0]));
	return msg;
}
