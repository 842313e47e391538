/* The one door of mailauth/ to DNS: every lookup of a check shares the check's deadline, so
 * that a resolver that does not answer costs the budget once, not once per lookup. */
#include <stdio.h>
#include <string.h>

#include "mailauth.h"

void mailauth_dns_query(struct mailauth_dns *dns, const char *name, enum dns_type type,
			struct dns_answer *answer)
{
	uint64_t now = time_now_ms();

	if (now >= dns->deadline_ms) {
		memset(answer, 0, sizeof(*answer));
		answer->status = DNS_TEMPFAIL;
		snprintf(answer->error, sizeof(answer->error), "time budget spent");
		return;
	}
	unsigned left = (unsigned)(dns->deadline_ms - now > 60000 ? 60000 : dns->deadline_ms - now);
	if (dns->query != NULL)
		dns->query(dns->query_arg, name, type, left, answer);
	else
		dns_query(dns->resolvers, name, type, left, answer);
}
