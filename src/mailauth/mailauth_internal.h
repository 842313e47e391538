/* Pieces of mailauth/ shared between its files but not its users. */
#ifndef ROOST_MAILAUTH_INTERNAL_H
#define ROOST_MAILAUTH_INTERNAL_H

#include "mailauth.h"

/* dkim_lookup_fn for dkim_verify: ctx is a struct mailauth_dns; cached (dkim_keycache.c). */
int mailauth_dkim_key_lookup(const char *name, struct buf *txt_r, void *ctx);

/* Finds the Authentication-Results fields of msg that claim authserv_id (authres.c). */
size_t mailauth_find_forged(const uint8_t *msg, size_t len, const char *authserv_id,
			    struct mailauth_report *r);
/* Writes r->field from the results in r (authres.c). */
void mailauth_write_field(const char *authserv_id, struct mailauth_report *r);

/* The data an ARC-Seal signs (RFC 8617 §5.1.1): the sets first..inst of chain, each AAR, AMS,
 * AS relaxed, the last seal as given (its b= emptied) without the final CRLF (arc.c). */
void arc_seal_data(const struct arc_chain *c, unsigned first, unsigned inst, struct buf *out);

#endif
