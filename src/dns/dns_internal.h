/* What the files of dns/ share: one c-ares channel per lookup (a channel is not
 * thread-safe, and lookups happen on many threads) run to completion under a deadline. */
#ifndef ROOST_DNS_INTERNAL_H
#define ROOST_DNS_INTERNAL_H

#include <ares.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_DEFAULT_TIMEOUT_MS 20000

int dns_channel_open(const char *resolvers, ares_channel *ch, char *err, size_t errlen);
/* Runs the channel until every query finished or deadline_ms (time_now_ms clock) passed. */
void dns_channel_run(ares_channel ch, uint64_t deadline_ms);

#endif
