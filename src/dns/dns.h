/* DNS lookups with c-ares for every layer that needs them: MX resolution for outbound
 * delivery (RFC 5321 §5.1, null MX RFC 7505), the TXT, address and PTR queries of the
 * inbound checks (SPF, DKIM keys, DMARC policies, blocklists, reverse DNS), and the SRV and
 * CNAME queries with which `roost domain check` reads a domain's published records.
 *
 * Every call blocks, bounded by a deadline: call from queue delivery threads or the worker
 * pool, never from an event loop. resolvers: "ADDR[:PORT] ..." ([dns] resolvers) or "" for
 * the system's. Results are heap-allocated and owned by the caller (dns_answer_free). */
#ifndef ROOST_DNS_H
#define ROOST_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- generic queries ---- */

enum dns_status {
	DNS_OK,		 /* one or more records */
	DNS_NXDOMAIN,	 /* the name does not exist */
	DNS_NODATA,	 /* the name exists, but has no record of this type */
	DNS_TEMPFAIL,	 /* timeout, SERVFAIL, refused, no resolver: try again later */
	DNS_BADNAME,	 /* the name cannot be queried (too long, empty label) */
};

enum dns_type { DNS_TXT, DNS_A, DNS_AAAA, DNS_MX, DNS_PTR, DNS_SRV, DNS_CNAME };

struct dns_record {
	char *text;	   /* TXT: the strings of one record concatenated (RFC 7208 §3.3);
			      A/AAAA: the address in text form; MX/PTR/SRV/CNAME: the host name,
			      no trailing dot ("" for the root, the SRV "no service" target) */
	size_t text_len;   /* TXT may contain NUL octets: the exact length */
	uint16_t priority; /* MX and SRV */
	uint16_t weight;   /* SRV only */
	uint16_t port;	   /* SRV only */
};

struct dns_answer {
	enum dns_status status;
	struct dns_record *records;
	size_t count;
	bool authenticated; /* the resolver set the AD bit (DNSSEC-validated answer) */
	char error[128];    /* on DNS_TEMPFAIL: the resolver's words */
};

/* One query of one type. timeout_ms bounds the whole call (0: the default of 20 s).
 * Always fills *answer (free it with dns_answer_free). At most 64 records are kept. */
void dns_query(const char *resolvers, const char *name, enum dns_type type, unsigned timeout_ms,
	       struct dns_answer *answer);
void dns_answer_free(struct dns_answer *answer);

/* The reverse-lookup name of an address in text form ("1.2.3.4" -> "4.3.2.1.in-addr.arpa",
 * IPv6 nibbles under ip6.arpa). false for text that is not an address. */
bool dns_reverse_name(const char *ip, char *out, size_t outlen);

/* ---- MX resolution for the queue ---- */

enum dns_mx_status {
	DNS_MX_OK,
	DNS_MX_NO_SUCH_DOMAIN, /* permanent: NXDOMAIN, or no MX and no address */
	DNS_MX_NULL_MX,	       /* permanent: the domain accepts no mail (RFC 7505) */
	DNS_MX_TEMPFAIL,       /* try again later */
};

struct dns_mx_target {
	char host[256]; /* the MX host name (or the domain itself for the implicit MX) */
	char ip[64];
};

/* Addresses to try for domain, best MX first. *targets_r is heap (free), *count_r >= 1 on
 * DNS_MX_OK. */
enum dns_mx_status dns_mx_resolve(const char *resolvers, const char *domain,
				  struct dns_mx_target **targets_r, size_t *count_r, char *err,
				  size_t errlen);

#endif
