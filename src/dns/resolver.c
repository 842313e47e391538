/* The c-ares channel and the generic query of dns.h (TXT, A, AAAA, MX, PTR, SRV, CNAME).
 * Each query sets the AD bit in its header, which asks a validating resolver to say whether
 * the answer was DNSSEC-validated (RFC 6840 §5.7); the answer's AD bit is reported, never
 * trusted for anything else. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "dns.h"
#include "dns_internal.h"

#define DNS_MAX_RECORDS 64
#define DNS_HEADER_FLAGS2 3 /* the octet holding RA, Z, AD, CD, RCODE */
#define DNS_FLAG_AD 0x20

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

void dns_channel_run(ares_channel ch, uint64_t deadline)
{
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
		if (n == 0)
			break;
		if (now >= deadline) {
			ares_cancel(ch); /* callbacks run with ARES_ECANCELLED */
			break;
		}
		tvp = ares_timeout(ch, NULL, &tv);
		int wait = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
		if (wait > (int)(deadline - now))
			wait = (int)(deadline - now);
		poll(pfd, n, wait);
		for (nfds_t i = 0; i < n; i++) {
			ares_socket_t rd = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
						   ? pfd[i].fd
						   : ARES_SOCKET_BAD;
			ares_socket_t wr = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
			ares_process_fd(ch, rd, wr);
		}
		ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
	}
}

static pthread_once_t dns_library_once = PTHREAD_ONCE_INIT;

static void dns_library_init(void)
{
	ares_library_init(ARES_LIB_INIT_ALL);
}

int dns_channel_open(const char *resolvers, ares_channel *ch, char *err, size_t errlen)
{
	struct ares_options opts;
	int rc;

	pthread_once(&dns_library_once, dns_library_init);
	memset(&opts, 0, sizeof(opts));
	opts.timeout = 3000;
	opts.tries = 2;
	opts.lookups = (char *)"b"; /* DNS only: answers come from DNS, not /etc/hosts */
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

struct query_state {
	enum dns_type type;
	struct dns_answer *answer;
	bool done;
};

static void add_record(struct dns_answer *a, const void *text, size_t len, uint16_t priority)
{
	if (a->count >= DNS_MAX_RECORDS)
		return;
	a->records = xrealloc(a->records, (a->count + 1) * sizeof(*a->records));
	struct dns_record *r = &a->records[a->count++];
	r->text = xmalloc(len + 1);
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	r->text_len = len;
	r->priority = priority;
	r->weight = 0;
	r->port = 0;
}

/* Host names without the trailing dot some resolvers leave. */
static void add_host_record(struct dns_answer *a, const char *host, uint16_t priority)
{
	size_t n = strlen(host);
	if (n > 0 && host[n - 1] == '.')
		n--;
	add_record(a, host, n, priority);
}

static void parse_txt(struct dns_answer *a, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL;
	struct buf joined;

	if (ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS) {
		a->status = DNS_TEMPFAIL;
		snprintf(a->error, sizeof(a->error), "malformed TXT answer");
		return;
	}
	buf_init(&joined);
	for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
		if (t->record_start && t != txt) {
			add_record(a, joined.data ? (const void *)joined.data : "", joined.len, 0);
			buf_reset(&joined);
		}
		buf_append(&joined, t->txt, t->length);
	}
	if (txt != NULL)
		add_record(a, joined.data ? (const void *)joined.data : "", joined.len, 0);
	buf_free(&joined);
	ares_free_data(txt);
}

static void parse_addresses(struct dns_answer *a, const unsigned char *abuf, int alen, int family)
{
	char text[INET6_ADDRSTRLEN];
	int rc;

	if (family == AF_INET) {
		struct ares_addrttl addrs[DNS_MAX_RECORDS];
		int n = DNS_MAX_RECORDS;
		rc = ares_parse_a_reply(abuf, alen, NULL, addrs, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
			if (inet_ntop(AF_INET, &addrs[i].ipaddr, text, sizeof(text)))
				add_record(a, text, strlen(text), 0);
	} else {
		struct ares_addr6ttl addrs[DNS_MAX_RECORDS];
		int n = DNS_MAX_RECORDS;
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, addrs, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
			if (inet_ntop(AF_INET6, &addrs[i].ip6addr, text, sizeof(text)))
				add_record(a, text, strlen(text), 0);
	}
	if (rc != ARES_SUCCESS && rc != ARES_ENODATA) {
		a->status = DNS_TEMPFAIL;
		snprintf(a->error, sizeof(a->error), "malformed address answer");
	}
}

static void parse_mx(struct dns_answer *a, const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL;

	if (ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS) {
		a->status = DNS_TEMPFAIL;
		snprintf(a->error, sizeof(a->error), "malformed MX answer");
		return;
	}
	for (struct ares_mx_reply *r = mx; r != NULL; r = r->next)
		add_host_record(a, r->host, r->priority);
	ares_free_data(mx);
}

static void parse_ptr(struct dns_answer *a, const unsigned char *abuf, int alen)
{
	struct hostent *h = NULL;

	if (ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &h) != ARES_SUCCESS || h == NULL) {
		a->status = DNS_TEMPFAIL;
		snprintf(a->error, sizeof(a->error), "malformed PTR answer");
		return;
	}
	if (h->h_name)
		add_host_record(a, h->h_name, 0);
	for (size_t i = 0; h->h_aliases && h->h_aliases[i]; i++)
		add_host_record(a, h->h_aliases[i], 0);
	ares_free_hostent(h);
}

static void parse_srv(struct dns_answer *a, const unsigned char *abuf, int alen)
{
	struct ares_srv_reply *srv = NULL;

	if (ares_parse_srv_reply(abuf, alen, &srv) != ARES_SUCCESS) {
		a->status = DNS_TEMPFAIL;
		snprintf(a->error, sizeof(a->error), "malformed SRV answer");
		return;
	}
	for (struct ares_srv_reply *r = srv; r != NULL; r = r->next) {
		size_t before = a->count;
		add_host_record(a, r->host, r->priority);
		if (a->count > before) {
			a->records[before].weight = r->weight;
			a->records[before].port = r->port;
		}
	}
	ares_free_data(srv);
}

static unsigned wire_u16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* c-ares 1.18 has no CNAME parser: the answer section is walked here, each name expanded by
 * ares_expand_name (which bounds compression pointers), each RDATA length checked against the
 * message. Only the CNAME records of the answer are kept. */
static void parse_cname(struct dns_answer *a, const unsigned char *abuf, int alen)
{
	const unsigned char *p = abuf + 12, *end = abuf + alen;
	unsigned questions = wire_u16(abuf + 4), answers = wire_u16(abuf + 6);
	char *name = NULL;
	long used = 0;

	for (unsigned i = 0; i < questions + answers; i++) {
		if (ares_expand_name(p, abuf, alen, &name, &used) != ARES_SUCCESS)
			goto malformed;
		ares_free_string(name);
		p += used;
		size_t fixed = i < questions ? 4 : 10; /* type, class[, ttl, rdlength] */
		if (end - p < (long)fixed)
			goto malformed;
		if (i < questions) {
			p += fixed;
			continue;
		}
		unsigned type = wire_u16(p), rdlength = wire_u16(p + 8);
		if (end - p - 10 < (long)rdlength)
			goto malformed;
		if (type == ns_t_cname) {
			if (ares_expand_name(p + 10, abuf, alen, &name, &used) != ARES_SUCCESS)
				goto malformed;
			add_host_record(a, name, 0);
			ares_free_string(name);
		}
		p += 10 + rdlength;
	}
	return;
malformed:
	a->status = DNS_TEMPFAIL;
	snprintf(a->error, sizeof(a->error), "malformed CNAME answer");
}

static void query_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query_state *q = arg;
	struct dns_answer *a = q->answer;

	(void)timeouts;
	q->done = true;
	if (status == ARES_ENOTFOUND) {
		a->status = DNS_NXDOMAIN;
		return;
	}
	if (status == ARES_ENODATA) {
		a->status = DNS_NODATA;
		return;
	}
	if (status != ARES_SUCCESS || abuf == NULL || alen < 12) {
		a->status = DNS_TEMPFAIL;
		snprintf(a->error, sizeof(a->error), "%s", ares_strerror(status));
		return;
	}
	/* ares_send hands over every answer it did not retry, NXDOMAIN and empty ones included,
	 * as ARES_SUCCESS: the header says which it is. */
	int rcode = abuf[DNS_HEADER_FLAGS2] & 0x0f;
	if (rcode == ns_r_nxdomain) {
		a->status = DNS_NXDOMAIN;
		return;
	}
	if (rcode != ns_r_noerror) {
		a->status = DNS_TEMPFAIL;
		snprintf(a->error, sizeof(a->error), "DNS error code %d", rcode);
		return;
	}
	if (abuf[6] == 0 && abuf[7] == 0) { /* ANCOUNT: the name exists, without this type */
		a->status = DNS_NODATA;
		return;
	}
	a->status = DNS_OK;
	a->authenticated = (abuf[DNS_HEADER_FLAGS2] & DNS_FLAG_AD) != 0;
	switch (q->type) {
	case DNS_TXT: parse_txt(a, abuf, alen); break;
	case DNS_A: parse_addresses(a, abuf, alen, AF_INET); break;
	case DNS_AAAA: parse_addresses(a, abuf, alen, AF_INET6); break;
	case DNS_MX: parse_mx(a, abuf, alen); break;
	case DNS_PTR: parse_ptr(a, abuf, alen); break;
	case DNS_SRV: parse_srv(a, abuf, alen); break;
	case DNS_CNAME: parse_cname(a, abuf, alen); break;
	}
	if (a->status == DNS_OK && a->count == 0)
		a->status = DNS_NODATA;
}

static int wire_type(enum dns_type type)
{
	switch (type) {
	case DNS_TXT: return ns_t_txt;
	case DNS_A: return ns_t_a;
	case DNS_AAAA: return ns_t_aaaa;
	case DNS_MX: return ns_t_mx;
	case DNS_PTR: return ns_t_ptr;
	case DNS_SRV: return ns_t_srv;
	case DNS_CNAME: return ns_t_cname;
	}
	return ns_t_txt;
}

static bool name_queryable(const char *name)
{
	size_t n = strlen(name), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '.') {
			if (label == 0 && !(i == n - 1 && n > 1))
				return false;
			label = 0;
		} else if (++label > 63) {
			return false;
		}
	}
	return true;
}

void dns_query(const char *resolvers, const char *name, enum dns_type type, unsigned timeout_ms,
	       struct dns_answer *answer)
{
	struct query_state q = { type, answer, false };
	unsigned char *qbuf = NULL;
	int qlen = 0;
	ares_channel ch;

	memset(answer, 0, sizeof(*answer));
	answer->status = DNS_TEMPFAIL;
	if (!name_queryable(name)) {
		answer->status = DNS_BADNAME;
		return;
	}
	if (dns_channel_open(resolvers, &ch, answer->error, sizeof(answer->error)) < 0)
		return;
	/* EDNS with a 1232-octet payload (large TXT sets), then the AD bit set by hand. */
	if (ares_create_query(name, ns_c_in, wire_type(type), 0, 1, &qbuf, &qlen, 1232) !=
		    ARES_SUCCESS ||
	    qlen < 12) {
		snprintf(answer->error, sizeof(answer->error), "cannot build the query");
		ares_destroy(ch);
		return;
	}
	qbuf[DNS_HEADER_FLAGS2] |= DNS_FLAG_AD;
	ares_send(ch, qbuf, qlen, query_callback, &q);
	ares_free_string(qbuf);
	dns_channel_run(ch, time_now_ms() + (timeout_ms ? timeout_ms : DNS_DEFAULT_TIMEOUT_MS));
	ares_destroy(ch);
	if (!q.done) {
		answer->status = DNS_TEMPFAIL;
		snprintf(answer->error, sizeof(answer->error), "timed out");
	}
}

void dns_answer_free(struct dns_answer *answer)
{
	for (size_t i = 0; i < answer->count; i++)
		free(answer->records[i].text);
	free(answer->records);
	answer->records = NULL;
	answer->count = 0;
}

bool dns_reverse_name(const char *ip, char *out, size_t outlen)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, ip, addr) == 1) {
		int n = snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", addr[3], addr[2], addr[1],
				 addr[0]);
		return n > 0 && (size_t)n < outlen;
	}
	if (inet_pton(AF_INET6, ip, addr) != 1 || outlen < 73)
		return false;
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 15; i >= 0; i--) {
		out[o++] = hex[addr[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[addr[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", 9);
	return true;
}
