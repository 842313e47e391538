/* MX resolution for outbound delivery (RFC 5321 §5.1, null MX RFC 7505), with c-ares.
 * Blocking with a bound: called on queue delivery threads only. */
#ifndef ROOST_QUEUE_DNS_H
#define ROOST_QUEUE_DNS_H

#include <stddef.h>

enum queue_dns_status {
	QUEUE_DNS_OK,
	QUEUE_DNS_NO_SUCH_DOMAIN, /* permanent: NXDOMAIN, or no MX and no address */
	QUEUE_DNS_NULL_MX,	  /* permanent: the domain accepts no mail (RFC 7505) */
	QUEUE_DNS_TEMPFAIL,	  /* try again later */
};

struct queue_dns_target {
	char host[256]; /* the MX host name (or the domain itself for the implicit MX) */
	char ip[64];
};

/* Addresses to try for domain, best MX first. resolvers: "ADDR[:PORT] ..." or "" for the
 * system's. *targets_r is heap (free), *count_r >= 1 on QUEUE_DNS_OK. */
enum queue_dns_status queue_dns_resolve(const char *resolvers, const char *domain,
					struct queue_dns_target **targets_r, size_t *count_r,
					char *err, size_t errlen);

#endif
