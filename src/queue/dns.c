/* MX and address lookups with c-ares; see dns.h. Each lookup gets its own channel because a
 * channel is not thread-safe, and the wait loop is bounded (QUEUE_DNS_TIMEOUT_MS). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "dns.h"

#define QUEUE_DNS_TIMEOUT_MS 20000
#define QUEUE_DNS_MAX_MX 10
#define QUEUE_DNS_MAX_TARGETS 20

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

/* c-ares's ARES_GETSOCK_READABLE/WRITABLE shift a signed 1 by up to 31 places (undefined
 * behaviour); the same tests done unsigned. */
static bool sock_readable(int bits, int i)
{
	return ((unsigned)bits & (1u << i)) != 0;
}

static bool sock_writable(int bits, int i)
{
	return ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM))) != 0;
}

/* Runs the channel until every query finished or the time bound passed. */
static void run_channel(ares_channel ch)
{
	uint64_t deadline = time_now_ms() + QUEUE_DNS_TIMEOUT_MS;

	for (;;) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		nfds_t n = 0;
		struct timeval tv, *tvp;
		uint64_t now = time_now_ms();

		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			if (!sock_readable(bits, i) && !sock_writable(bits, i))
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((sock_readable(bits, i) ? POLLIN : 0) |
						(sock_writable(bits, i) ? POLLOUT : 0));
			pfd[n].revents = 0;
			n++;
		}
		if (n == 0 || now >= deadline)
			break;
		tvp = ares_timeout(ch, NULL, &tv);
		int wait = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
		if (wait > (int)(deadline - now))
			wait = (int)(deadline - now);
		poll(pfd, n, wait);
		ares_socket_t rd[ARES_GETSOCK_MAXNUM], wr[ARES_GETSOCK_MAXNUM];
		for (nfds_t i = 0; i < n; i++) {
			rd[i] = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd
										   : ARES_SOCKET_BAD;
			wr[i] = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
			ares_process_fd(ch, rd[i], wr[i]);
		}
		ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
	}
}

static pthread_once_t dns_library_once = PTHREAD_ONCE_INIT;

static void dns_library_init(void)
{
	ares_library_init(ARES_LIB_INIT_ALL);
}

static int open_channel(const char *resolvers, ares_channel *ch, char *err, size_t errlen)
{
	struct ares_options opts;
	int rc;

	pthread_once(&dns_library_once, dns_library_init);
	memset(&opts, 0, sizeof(opts));
	opts.timeout = 3000;
	opts.tries = 2;
	opts.lookups = (char *)"b"; /* DNS only: MX targets come from DNS, not /etc/hosts */
	rc = ares_init_options(ch, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(rc));
		return -1;
	}
	if (resolvers && resolvers[0]) {
		/* "a:p b:p" -> "a:p,b:p" as c-ares wants */
		char *csv = xstrdup(resolvers);
		for (char *p = csv; *p; p++)
			if (*p == ' ')
				*p = ',';
		rc = ares_set_servers_ports_csv(*ch, csv);
		free(csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "[dns] resolvers: %s", ares_strerror(rc));
			ares_destroy(*ch);
			return -1;
		}
	}
	return 0;
}

static int mx_compare(const void *a, const void *b)
{
	const struct ares_mx_reply *x = *(const struct ares_mx_reply *const *)a;
	const struct ares_mx_reply *y = *(const struct ares_mx_reply *const *)b;

	return (int)x->priority - (int)y->priority;
}

/* *temp_r: the c-ares status of a lookup that failed temporarily (ARES_SUCCESS: none did). */
static void add_host(ares_channel ch, const char *host, struct queue_dns_target **targets,
		     size_t *count, int *temp_r)
{
	int families[2] = { AF_INET, AF_INET6 };

	for (int f = 0; f < 2; f++) {
		struct host_answer ha = { ARES_ENOTFOUND, { { 0 } }, 0 };
		ares_gethostbyname(ch, host, families[f], host_callback, &ha);
		run_channel(ch);
		if (ha.status != ARES_SUCCESS && ha.status != ARES_ENOTFOUND &&
		    ha.status != ARES_ENODATA)
			*temp_r = ha.status;
		for (size_t i = 0; i < ha.count && *count < QUEUE_DNS_MAX_TARGETS; i++) {
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

enum queue_dns_status queue_dns_resolve(const char *resolvers, const char *domain,
					struct queue_dns_target **targets_r, size_t *count_r,
					char *err, size_t errlen)
{
	ares_channel ch;
	struct mx_answer mx = { ARES_ENOTFOUND, NULL };
	struct queue_dns_target *targets = NULL;
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
			return QUEUE_DNS_NO_SUCH_DOMAIN;
		}
		if (str_nieq(ip, "IPv6:", 5))
			ip += 5;
		targets = xcalloc(1, sizeof(*targets));
		snprintf(targets->host, sizeof(targets->host), "%s", domain);
		snprintf(targets->ip, sizeof(targets->ip), "%.*s", (int)(domain + n - 1 - ip), ip);
		*targets_r = targets;
		*count_r = 1;
		return QUEUE_DNS_OK;
	}
	if (open_channel(resolvers, &ch, err, errlen) < 0) {
		log_dns_deferral(domain, "MX", err);
		return QUEUE_DNS_TEMPFAIL;
	}
	ares_query(ch, domain, ns_c_in, ns_t_mx, mx_callback, &mx);
	run_channel(ch);
	if (mx.status == ARES_SUCCESS && mx.mx != NULL) {
		struct ares_mx_reply *list[QUEUE_DNS_MAX_MX];
		size_t n = 0;
		for (struct ares_mx_reply *r = mx.mx; r && n < QUEUE_DNS_MAX_MX; r = r->next)
			list[n++] = r;
		/* RFC 7505 §3: a single MX of "." means: no mail for this domain. */
		if (n == 1 && (list[0]->host[0] == '\0' || strcmp(list[0]->host, ".") == 0)) {
			ares_free_data(mx.mx);
			ares_destroy(ch);
			snprintf(err, errlen, "%s accepts no mail (null MX)", domain);
			return QUEUE_DNS_NULL_MX;
		}
		qsort(list, n, sizeof(list[0]), mx_compare);
		for (size_t i = 0; i < n; i++)
			if (list[i]->host[0] != '\0')
				add_host(ch, list[i]->host, &targets, &count, &temp);
		ares_free_data(mx.mx);
	} else if (mx.status == ARES_ENODATA) {
		/* RFC 5321 §5.1: no MX records: the domain itself is the implicit MX. */
		add_host(ch, domain, &targets, &count, &temp);
	} else if (mx.status == ARES_ENOTFOUND) {
		ares_destroy(ch);
		snprintf(err, errlen, "domain %s does not exist", domain);
		return QUEUE_DNS_NO_SUCH_DOMAIN;
	} else {
		ares_destroy(ch);
		snprintf(err, errlen, "MX lookup for %s: %s", domain, ares_strerror(mx.status));
		log_dns_deferral(domain, "MX", ares_strerror(mx.status));
		return QUEUE_DNS_TEMPFAIL;
	}
	ares_destroy(ch);
	if (count == 0) {
		snprintf(err, errlen, "no address for the mail servers of %s", domain);
		if (temp == ARES_SUCCESS)
			return QUEUE_DNS_NO_SUCH_DOMAIN;
		log_dns_deferral(domain, "A/AAAA", ares_strerror(temp));
		return QUEUE_DNS_TEMPFAIL;
	}
	*targets_r = targets;
	*count_r = count;
	return QUEUE_DNS_OK;
}
