/* Signals about the connecting host, through the DNS layer (never c-ares directly):
 * forward-confirmed reverse DNS (the PTR names of the address, one of which must resolve back
 * to it) and DNS blocklists (`[spam] dnsbl`, none by default). Each query has its own deadline
 * (SPAM_DNS_TIMEOUT_MS) and there are at most 1 + SPAM_FCRDNS_NAMES * 2 + SPAM_MAX_DNSBL of
 * them; a temporary failure adds no points, so a slow or dead resolver only costs time, never
 * a verdict. Loopback, private and link-local peers and authenticated submissions are not
 * looked up: their names say nothing about spam. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../dns/dns.h"
#include "spam.h"

#define SPAM_DNS_TIMEOUT_MS 2000
#define SPAM_FCRDNS_NAMES 2
#define SPAM_MAX_DNSBL 4
#define POINTS_NO_PTR 1.0
#define POINTS_PTR_UNCONFIRMED 0.5
#define POINTS_DNSBL 3.0

bool spam_address_is_local(const char *ip)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, ip, &v4) == 1) {
		uint32_t a = ntohl(v4.s_addr);

		return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) ||
		       (a >> 16) == (192u << 8 | 168) || (a >> 16) == (169u << 8 | 254) || a == 0;
	}
	if (inet_pton(AF_INET6, ip, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) ||
		       IN6_IS_ADDR_UNSPECIFIED(&v6) || (v6.s6_addr[0] & 0xfe) == 0xfc ||
		       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	return true; /* not an address: nothing to look up */
}

bool spam_dnsbl_name(const char *ip, const char *zone, char *out, size_t outlen)
{
	char reverse[128];
	const char *suffix;
	size_t keep;

	if (!dns_reverse_name(ip, reverse, sizeof(reverse)))
		return false;
	suffix = strstr(reverse, ".in-addr.arpa");
	if (suffix == NULL)
		suffix = strstr(reverse, ".ip6.arpa");
	if (suffix == NULL)
		return false;
	keep = (size_t)(suffix - reverse);
	int n = snprintf(out, outlen, "%.*s.%s", (int)keep, reverse, zone);

	return n > 0 && (size_t)n < outlen;
}

/* 1: a PTR name resolves back to ip; 0: no PTR, or none resolves back; -1: temporary. */
static int fcrdns(const char *resolvers, const char *ip, bool *has_ptr_r)
{
	char reverse[128];
	struct dns_answer ptr;
	int result = 0;

	*has_ptr_r = false;
	if (!dns_reverse_name(ip, reverse, sizeof(reverse)))
		return 0;
	dns_query(resolvers, reverse, DNS_PTR, SPAM_DNS_TIMEOUT_MS, &ptr);
	if (ptr.status == DNS_TEMPFAIL)
		result = -1;
	*has_ptr_r = ptr.status == DNS_OK && ptr.count > 0;
	for (size_t i = 0; i < ptr.count && i < SPAM_FCRDNS_NAMES && result == 0; i++) {
		struct dns_answer fwd;

		dns_query(resolvers, ptr.records[i].text, strchr(ip, ':') ? DNS_AAAA : DNS_A,
			  SPAM_DNS_TIMEOUT_MS, &fwd);
		for (size_t k = 0; k < fwd.count && result == 0; k++) {
			char a[16], b[16];
			int af = strchr(ip, ':') ? AF_INET6 : AF_INET;

			/* Compared as binary: "::1" and "0::1" are the same address. */
			if (inet_pton(af, ip, a) == 1 && inet_pton(af, fwd.records[k].text, b) == 1 &&
			    memcmp(a, b, af == AF_INET ? 4 : 16) == 0)
				result = 1;
		}
		dns_answer_free(&fwd);
	}
	dns_answer_free(&ptr);
	return result;
}

static bool dnsbl_listed(const char *resolvers, const char *ip, const char *zone)
{
	char name[320];
	struct dns_answer a;
	bool listed = false;

	if (!spam_dnsbl_name(ip, zone, name, sizeof(name)))
		return false;
	dns_query(resolvers, name, DNS_A, SPAM_DNS_TIMEOUT_MS, &a);
	/* Listings answer in 127.0.0.0/8; anything else is a zone's error or a hijack. */
	for (size_t i = 0; i < a.count && !listed; i++)
		listed = strncmp(a.records[i].text, "127.", 4) == 0;
	dns_answer_free(&a);
	return listed;
}

double spam_network_points(const struct spam_settings *set, const char *ip, struct buf *tests)
{
	double points = 0.0;
	bool has_ptr;
	char zones[512];
	char *save = NULL;
	size_t used = 0;

	if (ip == NULL || spam_address_is_local(ip))
		return 0.0;
	if (set->fcrdns && fcrdns(set->resolvers, ip, &has_ptr) == 0) {
		points += has_ptr ? POINTS_PTR_UNCONFIRMED : POINTS_NO_PTR;
		buf_append_str(tests, has_ptr ? ",RDNS_UNCONFIRMED" : ",RDNS_NONE");
	}
	snprintf(zones, sizeof(zones), "%s", set->dnsbl != NULL ? set->dnsbl : "");
	for (char *zone = strtok_r(zones, " ,", &save); zone != NULL && used < SPAM_MAX_DNSBL;
	     zone = strtok_r(NULL, " ,", &save), used++) {
		if (dnsbl_listed(set->resolvers, ip, zone)) {
			points += POINTS_DNSBL;
			buf_printf(tests, ",DNSBL=%s", zone);
		}
	}
	return points;
}
