/* MX resolution for the queue (RFC 5321 §5.1, RFC 7505); see dns.h. The MX query and the
 * address lookups of its hosts share one channel and one deadline. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "dns.h"
#include "dns_internal.h"

#define DNS_MX_MAX_MX 10
#define DNS_MX_MAX_TARGETS 20

struct mx_answer {
	int status;
	struct ares_mx_reply *mx;
};

struct host_answer {
	int status;
	char ips[8][64];
	size_t count;
};

static void mx_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mx_answer *a = arg;

	(void)timeouts;
	a->status = status;
	if (status == ARES_SUCCESS && ares_parse_mx_reply(abuf, alen, &a->mx) != ARES_SUCCESS)
		a->status = ARES_EBADRESP;
}

static void host_callback(void *arg, int status, int timeouts, struct hostent *h)
{
	struct host_answer *a = arg;

	(void)timeouts;
	a->status = status;
	if (status != ARES_SUCCESS || h == NULL)
		return;
	for (size_t i = 0; h->h_addr_list[i] != NULL && a->count < 8; i++)
		inet_ntop(h->h_addrtype, h->h_addr_list[i], a->ips[a->count++], 64);
}

static int mx_compare(const void *a, const void *b)
{
	const struct ares_mx_reply *x = *(const struct ares_mx_reply *const *)a;
	const struct ares_mx_reply *y = *(const struct ares_mx_reply *const *)b;

	return (int)x->priority - (int)y->priority;
}

/* *temp_r: the c-ares status of a lookup that failed temporarily (ARES_SUCCESS: none did). */
static void add_host(ares_channel ch, uint64_t deadline, const char *host, struct dns_mx_target **targets,
		     size_t *count, int *temp_r)
{
	int families[2] = { AF_INET, AF_INET6 };

	for (int f = 0; f < 2; f++) {
		struct host_answer ha = { ARES_ENOTFOUND, { { 0 } }, 0 };
		ares_gethostbyname(ch, host, families[f], host_callback, &ha);
		dns_channel_run(ch, deadline);
		if (ha.status != ARES_SUCCESS && ha.status != ARES_ENOTFOUND &&
		    ha.status != ARES_ENODATA)
			*temp_r = ha.status;
		for (size_t i = 0; i < ha.count && *count < DNS_MX_MAX_TARGETS; i++) {
			*targets = xrealloc(*targets, (*count + 1) * sizeof(**targets));
			snprintf((*targets)[*count].host, sizeof((*targets)[*count].host), "%s", host);
			snprintf((*targets)[*count].ip, sizeof((*targets)[*count].ip), "%s", ha.ips[i]);
			(*count)++;
		}
	}
}

/* A lookup that failed for now: the mail waits, and the operator needs the resolver's own
 * words (timeout, refused, server failure) to tell a local resolver problem from the
 * destination's. */
static void log_dns_deferral(const char *domain, const char *query, const char *error)
{
	log_warn("event=dns outcome=deferred domain=%s query=%s error=\"%s\"", domain, query,
		 error);
}

enum dns_mx_status dns_mx_resolve(const char *resolvers, const char *domain,
					struct dns_mx_target **targets_r, size_t *count_r,
					char *err, size_t errlen)
{
	ares_channel ch;
	struct mx_answer mx = { ARES_ENOTFOUND, NULL };
	struct dns_mx_target *targets = NULL;
	size_t count = 0;
	int temp = ARES_SUCCESS;

	*targets_r = NULL;
	*count_r = 0;
	/* An address literal: [1.2.3.4] or [IPv6:...] */
	if (domain[0] == '[') {
		size_t n = strlen(domain);
		const char *ip = domain + 1;
		if (n < 3 || domain[n - 1] != ']') {
			snprintf(err, errlen, "bad address literal %s", domain);
			return DNS_MX_NO_SUCH_DOMAIN;
		}
		if (str_nieq(ip, "IPv6:", 5))
			ip += 5;
		targets = xcalloc(1, sizeof(*targets));
		snprintf(targets->host, sizeof(targets->host), "%s", domain);
		snprintf(targets->ip, sizeof(targets->ip), "%.*s", (int)(domain + n - 1 - ip), ip);
		*targets_r = targets;
		*count_r = 1;
		return DNS_MX_OK;
	}
	uint64_t deadline = time_now_ms() + DNS_DEFAULT_TIMEOUT_MS;
	if (dns_channel_open(resolvers, &ch, err, errlen) < 0) {
		log_dns_deferral(domain, "MX", err);
		return DNS_MX_TEMPFAIL;
	}
	ares_query(ch, domain, ns_c_in, ns_t_mx, mx_callback, &mx);
	dns_channel_run(ch, deadline);
	if (mx.status == ARES_SUCCESS && mx.mx != NULL) {
		struct ares_mx_reply *list[DNS_MX_MAX_MX];
		size_t n = 0;
		for (struct ares_mx_reply *r = mx.mx; r && n < DNS_MX_MAX_MX; r = r->next)
			list[n++] = r;
		/* RFC 7505 §3: a single MX of "." means: no mail for this domain. */
		if (n == 1 && (list[0]->host[0] == '\0' || strcmp(list[0]->host, ".") == 0)) {
			ares_free_data(mx.mx);
			ares_destroy(ch);
			snprintf(err, errlen, "%s accepts no mail (null MX)", domain);
			return DNS_MX_NULL_MX;
		}
		qsort(list, n, sizeof(list[0]), mx_compare);
		for (size_t i = 0; i < n; i++)
			if (list[i]->host[0] != '\0')
				add_host(ch, deadline, list[i]->host, &targets, &count, &temp);
		ares_free_data(mx.mx);
	} else if (mx.status == ARES_ENODATA) {
		/* RFC 5321 §5.1: no MX records: the domain itself is the implicit MX. */
		add_host(ch, deadline, domain, &targets, &count, &temp);
	} else if (mx.status == ARES_ENOTFOUND) {
		ares_destroy(ch);
		snprintf(err, errlen, "domain %s does not exist", domain);
		return DNS_MX_NO_SUCH_DOMAIN;
	} else {
		ares_destroy(ch);
		snprintf(err, errlen, "MX lookup for %s: %s", domain, ares_strerror(mx.status));
		log_dns_deferral(domain, "MX", ares_strerror(mx.status));
		return DNS_MX_TEMPFAIL;
	}
	ares_destroy(ch);
	if (count == 0) {
		snprintf(err, errlen, "no address for the mail servers of %s", domain);
		if (temp == ARES_SUCCESS)
			return DNS_MX_NO_SUCH_DOMAIN;
		log_dns_deferral(domain, "A/AAAA", ares_strerror(temp));
		return DNS_MX_TEMPFAIL;
	}
	*targets_r = targets;
	*count_r = count;
	return DNS_MX_OK;
}
