/* The queue runner; see queue.h.
 *
 * Threads: one scheduler, cfg->threads delivery threads. The scheduler scans active/ (ids
 * sort by arrival, so old mail goes first), and hands every due message that is not already
 * being delivered to the delivery threads through a bounded list. A message is delivered by
 * one thread at a time; its state file is written after each server answered, so a crash
 * repeats at most the transaction in flight.
 *
 * Retry schedule: retry_first * 2^(attempts-1), capped at retry_max; after give_up since
 * arrival every pending recipient fails with 4.4.7. A delay warning goes out once, after
 * warn_after, to senders whose NOTIFY asks for it (or did not say). All of these are divided
 * by time_scale, which tests use to make hours into seconds. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "../core/core.h"
#include "../dns/dns.h"
#include "../mailauth/mailauth.h"
#include "queue_internal.h"

#define RUNNER_MAX_PENDING 256
#define RUNNER_TICK_MS 1000
#define RUNNER_SESSION_IDLE_S 20

struct queue_runner {
	struct queue *q;
	struct queue_runner_config cfg; /* strings copied */
	struct queue_hooks hooks;
	pthread_t scheduler;
	pthread_t *workers;
	unsigned worker_count;
	pthread_mutex_t lock;
	pthread_cond_t wake;	   /* scheduler: a scan was asked for */
	pthread_cond_t work;	   /* workers: a message is waiting */
	char *pending[RUNNER_MAX_PENDING];
	size_t pending_count;
	char **busy; /* ids being delivered */
	size_t busy_count;
	bool scan_requested;
	bool stopping;
	struct dkim_signer_cache *signers; /* NULL without a data directory */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t scaled_ms(const struct queue_runner *r, int64_t seconds)
{
	return seconds * 1000 / (r->cfg.time_scale > 0 ? r->cfg.time_scale : 1);
}

void queue_runner_wake(struct queue_runner *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->scan_requested = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

/* ---------------- one delivery ---------------- */

static bool notify_has(const char *notify, const char *word)
{
	char *copy = xstrdup(notify), *save = NULL;
	bool found = false;

	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save))
		if (str_ieq(w, word))
			found = true;
	free(copy);
	return found;
}

static bool notify_wants(const struct queue_rcpt *rc, const char *what, bool by_default)
{
	if (rc->notify[0] == '\0')
		return by_default;
	return notify_has(rc->notify, what);
}

static const char *domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at ? at + 1 : address;
}

/* Sends a report to the sender: stored directly for a local sender, queued otherwise. */
static void runner_send_dsn(struct queue_runner *r, const struct queue_entry *e,
			    const uint8_t *data, bool delay, const size_t *idx, size_t count)
{
	struct buf dsn;
	char err[256], id[32];

	if (count == 0 || e->sender[0] == '\0')
		return; /* RFC 5321 §4.5.5: never report on a report */
	buf_init(&dsn);
	queue_dsn_compose(&r->cfg, e, data, delay, idx, count, &dsn);
	if (r->hooks.local_domain && r->hooks.local_domain(r->hooks.ctx, domain_of(e->sender))) {
		if (r->hooks.deliver_local(r->hooks.ctx, e->sender, dsn.data, dsn.len) == 0)
			log_info("queue_id=%s msg=\"%s report stored\" to=<%s>", e->id,
				 delay ? "delay" : "failure", e->sender);
		else
			log_error("queue_id=%s msg=\"could not store the report\" to=<%s>", e->id,
				  e->sender);
	} else {
		struct queue_recipient qr = { e->sender, NULL, NULL };
		struct queue_envelope env = { "", NULL, NULL, NULL, &qr, 1 };
		struct queue_entry_writer *w = queue_entry_begin(r->q, &env, err, sizeof(err));
		if (w == NULL || queue_entry_write(w, dsn.data, dsn.len, err, sizeof(err)) < 0 ||
		    queue_entry_commit(&w, id, err, sizeof(err)) < 0) {
			queue_entry_abort(&w);
			log_error("queue_id=%s msg=\"could not queue the report\" error=\"%s\"", e->id,
				  err);
		} else {
			log_info("queue_id=%s msg=\"report queued\" report_id=%s to=<%s>", e->id, id,
				 e->sender);
		}
	}
	buf_free(&dsn);
}

/* Addresses for a smarthost "host:port" (numeric or a name from the system resolver). */
static int smarthost_targets(const char *spec, struct dns_mx_target **t_r, size_t *n_r,
			     unsigned *port_r, char *err, size_t errlen)
{
	const char *colon = strrchr(spec, ':');
	char host[256];
	struct addrinfo hints, *res = NULL;
	size_t n = 0;

	*t_r = NULL;
	*n_r = 0;
	if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "[relay] smarthost must be host:port");
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	*port_r = (unsigned)strtoul(colon + 1, NULL, 10);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
		snprintf(err, errlen, "cannot resolve smarthost %s", host);
		return -1;
	}
	for (struct addrinfo *a = res; a && n < 8; a = a->ai_next) {
		*t_r = xrealloc(*t_r, (n + 1) * sizeof(**t_r));
		snprintf((*t_r)[n].host, sizeof((*t_r)[n].host), "%s", host);
		const void *addr = a->ai_family == AF_INET
					   ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
					   : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		inet_ntop(a->ai_family, addr, (*t_r)[n].ip, sizeof((*t_r)[n].ip));
		n++;
	}
	freeaddrinfo(res);
	*n_r = n;
	return 0;
}

/* One line per recipient and outcome, in the words the SMTP side uses (event=rcpt
 * outcome=delivered|deferred|bounced, stage=remote|dns|queue), so a message can be followed
 * from its arrival by queue_id or message_id. The Message-ID comes from the queued header. */
struct runner_rcpt_log {
	const char *outcome;
	const char *stage;
	const char *relay_host; /* NULL when no server was reached */
	const char *relay_ip;
	int64_t next_retry_s;	/* deferrals: seconds until the next attempt; else -1 */
};

static void runner_log_rcpt(const struct queue_entry *e, const char *message_id,
			    const struct queue_rcpt *rc, const struct runner_rcpt_log *l)
{
	char from[256], to[256], reply[512], relay[300] = "", retry[48] = "";

	if (l->relay_host != NULL && l->relay_ip != NULL)
		snprintf(relay, sizeof(relay), " relay=%s[%s]", l->relay_host, l->relay_ip);
	else if (l->relay_host != NULL)
		snprintf(relay, sizeof(relay), " relay=%s", l->relay_host);
	if (l->next_retry_s >= 0)
		snprintf(retry, sizeof(retry), " next_retry_s=%lld", (long long)l->next_retry_s);
	/* every recipient outcome is logged here once, so it is counted here too */
	if (strcmp(l->outcome, "delivered") == 0)
		metrics_message_delivered();
	else if (strcmp(l->outcome, "deferred") == 0)
		metrics_message_deferred();
	else
		metrics_message_bounced();
	/* status= is the older word for outcome, kept for scripts that read it */
	log_info("event=rcpt outcome=%s stage=%s queue_id=%s%s%s from=<%s> to=<%s> size=%llu%s "
		 "status=%s reply=\"%s\"%s",
		 l->outcome, l->stage, e->id, message_id[0] ? " message_id=" : "", message_id,
		 log_clean(e->sender, from, sizeof(from)), log_clean(rc->address, to, sizeof(to)),
		 (unsigned long long)e->data_size, relay,
		 strcmp(l->outcome, "delivered") == 0 ? "sent" : l->outcome,
		 log_clean(rc->last_reply ? rc->last_reply : "", reply, sizeof(reply)), retry);
}

static void set_rcpt(struct queue_rcpt *rc, enum queue_rcpt_state st, const char *host,
		     const char *reply)
{
	/* host or reply may be the recipient's own strings: copy before freeing */
	char *new_host = host ? xstrdup(host) : NULL;
	char *new_reply = xstrdup(reply);

	rc->state = st;
	free(rc->remote_host);
	rc->remote_host = new_host;
	free(rc->last_reply);
	rc->last_reply = new_reply;
}

/* Delivers the pending recipients of one domain (or all, through a smarthost). */
static void runner_deliver_group(struct queue_runner *r, struct queue_entry *e,
				 const char *message_id, const uint8_t *data,
				 const struct buf *prefix, struct queue_rcpt **group, size_t n,
				 struct smtpc **session)
{
	struct dns_mx_target *targets = NULL;
	size_t target_count = 0;
	unsigned port = r->cfg.smtp_port ? r->cfg.smtp_port : 25;
	char err[512] = "";
	const char *domain = domain_of(group[0]->address);
	bool smarthost = r->cfg.smarthost && r->cfg.smarthost[0];

	if (smarthost) {
		if (smarthost_targets(r->cfg.smarthost, &targets, &target_count, &port, err,
				      sizeof(err)) < 0) {
			for (size_t i = 0; i < n; i++)
				set_rcpt(group[i], QUEUE_RCPT_PENDING, NULL,
					 "451 4.4.3 smarthost unavailable");
			return;
		}
	} else {
		enum dns_mx_status st = dns_mx_resolve(r->cfg.resolvers, domain, &targets,
							     &target_count, err, sizeof(err));
		if (st != DNS_MX_OK) {
			char *reply = st == DNS_MX_NULL_MX ? xasprintf("556 5.1.10 %s", err)
				      : st == DNS_MX_NO_SUCH_DOMAIN ? xasprintf("550 5.1.2 %s", err)
								       : xasprintf("451 4.4.3 %s", err);
			for (size_t i = 0; i < n; i++) {
				set_rcpt(group[i],
					 st == DNS_MX_TEMPFAIL ? QUEUE_RCPT_PENDING
								  : QUEUE_RCPT_FAILED,
					 NULL, reply);
				/* deferrals are logged once the next attempt is known */
				struct runner_rcpt_log l = { "bounced", "dns", NULL, NULL, -1 };
				if (st != DNS_MX_TEMPFAIL)
					runner_log_rcpt(e, message_id, group[i], &l);
			}
			free(reply);
			return;
		}
	}
	int *codes = xcalloc(n, sizeof(int));
	char **replies = xcalloc(n, sizeof(char *));
	bool reached = false;
	for (size_t t = 0; t < target_count && !reached; t++) {
		struct smtpc_request req = {
			.ip = targets[t].ip,
			.host = targets[t].host,
			.port = port,
			.helo = r->cfg.hostname,
			.auth_user = smarthost ? r->cfg.relay_user : NULL,
			.auth_password = smarthost ? r->cfg.relay_password : NULL,
			.tls = smarthost ? r->cfg.relay_tls : RELAY_TLS_NONE,
			.ca_file = r->cfg.relay_ca_file,
			.sender = e->sender,
			.envid = e->envid,
			.ret = e->ret,
			.rcpts = group,
			.rcpt_count = n,
			.prefix = prefix->data,
			.prefix_len = prefix->len,
			.data = data,
			.len = e->data_size,
		};
		if (smtpc_deliver(session, &req, codes, replies, err, sizeof(err)) < 0) {
			log_info("queue_id=%s host=%s ip=%s msg=\"delivery attempt failed\" error=\"%s\"",
				 e->id, targets[t].host, targets[t].ip, err);
			for (size_t i = 0; i < n; i++) {
				free(replies[i]);
				replies[i] = NULL;
			}
			continue;
		}
		reached = true;
		for (size_t i = 0; i < n; i++) {
			enum queue_rcpt_state st = codes[i] >= 200 && codes[i] < 300 ? QUEUE_RCPT_SENT
						   : codes[i] >= 500		      ? QUEUE_RCPT_FAILED
										      : QUEUE_RCPT_PENDING;
			set_rcpt(group[i], st, targets[t].host,
				 replies[i] ? replies[i] : "451 4.4.0 no reply");
			struct runner_rcpt_log l = { st == QUEUE_RCPT_SENT ? "delivered" : "bounced",
						     "remote", targets[t].host, targets[t].ip, -1 };
			if (st != QUEUE_RCPT_PENDING)
				runner_log_rcpt(e, message_id, group[i], &l);
		}
	}
	if (!reached) {
		char *reply = xasprintf("451 4.4.1 %s", err[0] ? err : "no server reachable");
		for (size_t i = 0; i < n; i++)
			set_rcpt(group[i], QUEUE_RCPT_PENDING, NULL, reply);
		free(reply);
	}
	for (size_t i = 0; i < n; i++)
		free(replies[i]);
	free(replies);
	free(codes);
	free(targets);
}

static void runner_dkim_sign(struct queue_runner *r, const struct queue_entry *e,
			     const uint8_t *data, struct buf *prefix)
{
	char err[256];
	const struct dkim_signer *signer;

	if (r->signers == NULL)
		return;
	signer = dkim_signer_cache_get(r->signers, domain_of(e->sender), err, sizeof(err));
	if (signer == NULL) {
		/* Only mail of our own domains comes here: leaving it unsigned makes it fail
		 * DKIM (and DMARC) at the receiver, so the admin must hear of it. */
		log_warn("queue_id=%s domain=%s msg=\"no DKIM key to sign with; sending unsigned\" "
			 "error=\"%s\"",
			 e->id, domain_of(e->sender), err);
		return;
	}
	if (dkim_sign(signer, data, e->data_size, time_wall_seconds(), prefix, err,
		      sizeof(err)) < 0) {
		buf_reset(prefix);
		log_warn("queue_id=%s msg=\"DKIM signing failed; sending unsigned\" error=\"%s\"",
			 e->id, err);
	}
	dkim_signer_cache_put(r->signers, signer);
}

/* The key that seals what we forward: that of [server] hostname or of the nearest parent of
 * it that is one of our domains with a DKIM key (mail.example.org seals as example.org; the
 * hostname may be ours only as the SRS domain, which has no key). NULL, with the reason in
 * err, when there is none; the caller puts it back in the cache. */
static const struct dkim_signer *arc_seal_signer(struct queue_runner *r, char *err, size_t errlen)
{
	const char *d = r->cfg.hostname;

	snprintf(err, errlen, "[server] hostname is in none of our domains");
	while (d != NULL && d[0] != '\0') {
		if (r->hooks.local_domain(r->hooks.ctx, d)) {
			const struct dkim_signer *signer =
				dkim_signer_cache_get(r->signers, d, err, errlen);
			if (signer != NULL)
				return signer;
		}
		const char *dot = strchr(d, '.');
		d = dot != NULL && strchr(dot + 1, '.') != NULL ? dot + 1 : NULL;
	}
	return NULL;
}

/* ARC (RFC 8617 §5.1): mail from another server that we pass on (an alias pointing
 * elsewhere) carries the Authentication-Results our delivery check added; the next hop gets
 * those results sealed under our key, so it can trust them when our forwarding breaks SPF. */
static void runner_arc_seal(struct queue_runner *r, const struct queue_entry *e,
			    const uint8_t *data, struct buf *prefix)
{
	char err[256];
	const struct dkim_signer *signer;

	if (!r->cfg.arc_seal || r->signers == NULL || data == NULL ||
	    !arc_has_own_results(data, e->data_size, r->cfg.hostname))
		return;
	signer = arc_seal_signer(r, err, sizeof(err));
	if (signer == NULL) {
		log_warn("queue_id=%s msg=\"no key to ARC-seal forwarded mail with; sending unsealed\" "
			 "error=\"%s\"",
			 e->id, err);
		return;
	}
	if (arc_seal(signer, data, e->data_size, r->cfg.hostname, time_wall_seconds(), prefix,
		     err, sizeof(err)) < 0) {
		buf_reset(prefix);
		log_warn("queue_id=%s msg=\"ARC sealing failed; sending unsealed\" error=\"%s\"",
			 e->id, err);
	}
	dkim_signer_cache_put(r->signers, signer);
}

static void runner_deliver(struct queue_runner *r, const char *id, struct smtpc **session)
{
	struct queue_entry *e = NULL;
	char err[256];
	void *cookie = NULL;
	const uint8_t *data;
	struct buf prefix;
	enum queue_rcpt_state *before;

	if (queue_entry_load(r->q, id, &e, err, sizeof(err)) < 0) {
		log_error("queue_id=%s msg=\"cannot load queued message\" error=\"%s\"", id, err);
		return;
	}
	data = queue_data_map(r->q, e, &cookie);
	if (data == NULL && e->data_size > 0) {
		log_error("queue_id=%s msg=\"queued message unreadable or damaged; left alone\"", id);
		queue_entry_free(&e);
		return;
	}
	struct log_msgid_scan *scan = xcalloc(1, sizeof(*scan));
	if (data != NULL)
		log_msgid_feed(scan, data, e->data_size);
	const char *message_id = log_msgid_value(scan);
	before = xcalloc(e->rcpt_count, sizeof(*before));
	for (size_t i = 0; i < e->rcpt_count; i++)
		before[i] = e->rcpts[i].state;
	buf_init(&prefix);
	/* DKIM: mail our users submitted is signed for the sender's domain. */
	if (e->auth_user && r->hooks.local_domain &&
	    r->hooks.local_domain(r->hooks.ctx, domain_of(e->sender)))
		runner_dkim_sign(r, e, data, &prefix);
	else if (!e->auth_user && r->hooks.local_domain)
		runner_arc_seal(r, e, data, &prefix);

	bool smarthost = r->cfg.smarthost && r->cfg.smarthost[0];
	bool *done = xcalloc(e->rcpt_count, sizeof(bool));
	struct queue_rcpt **group = xcalloc(e->rcpt_count, sizeof(*group));
	for (size_t i = 0; i < e->rcpt_count; i++) {
		if (done[i] || e->rcpts[i].state != QUEUE_RCPT_PENDING)
			continue;
		size_t n = 0;
		for (size_t k = i; k < e->rcpt_count; k++) {
			if (done[k] || e->rcpts[k].state != QUEUE_RCPT_PENDING)
				continue;
			if (!smarthost && !str_ieq(domain_of(e->rcpts[k].address),
						   domain_of(e->rcpts[i].address)))
				continue;
			group[n++] = &e->rcpts[k];
			done[k] = true;
		}
		runner_deliver_group(r, e, message_id, data, &prefix, group, n, session);
		if (queue_state_save(r->q, e, err, sizeof(err)) < 0)
			log_error("queue_id=%s msg=\"%s\"", id, err);
	}
	free(group);
	free(done);

	/* Reports for recipients that failed in this run. */
	size_t *idx = xcalloc(e->rcpt_count, sizeof(size_t));
	size_t failed = 0, pending = 0;
	for (size_t i = 0; i < e->rcpt_count; i++) {
		if (e->rcpts[i].state == QUEUE_RCPT_PENDING)
			pending++;
		if (e->rcpts[i].state == QUEUE_RCPT_FAILED && before[i] != QUEUE_RCPT_FAILED &&
		    !notify_has(e->rcpts[i].notify, "NEVER") &&
		    (e->rcpts[i].notify[0] == '\0' || notify_has(e->rcpts[i].notify, "FAILURE")))
			idx[failed++] = i;
	}
	int64_t now = now_ms();
	if (pending > 0 && now - e->arrived * 1000 >= scaled_ms(r, r->cfg.give_up)) {
		for (size_t i = 0; i < e->rcpt_count; i++) {
			struct queue_rcpt *rc = &e->rcpts[i];
			if (rc->state != QUEUE_RCPT_PENDING)
				continue;
			char *reply = xasprintf("550 4.4.7 delivery time expired; last reply: %s",
						rc->last_reply ? rc->last_reply : "none");
			set_rcpt(rc, QUEUE_RCPT_FAILED, rc->remote_host, reply);
			free(reply);
			struct runner_rcpt_log l = { "bounced", "queue", NULL, NULL, -1 };
			runner_log_rcpt(e, message_id, rc, &l);
			if (!notify_has(rc->notify, "NEVER") &&
			    (rc->notify[0] == '\0' || notify_has(rc->notify, "FAILURE")))
				idx[failed++] = i;
		}
		pending = 0;
	}
	runner_send_dsn(r, e, data, false, idx, failed);
	if (pending == 0) {
		queue_entry_remove(r->q, id);
		log_info("queue_id=%s msg=\"done\"", id);
	} else {
		e->attempts++;
		int64_t delay = scaled_ms(r, r->cfg.retry_first);
		for (unsigned a = 1; a < e->attempts && delay < scaled_ms(r, r->cfg.retry_max); a++)
			delay *= 2;
		if (delay > scaled_ms(r, r->cfg.retry_max))
			delay = scaled_ms(r, r->cfg.retry_max);
		e->next_attempt = now + delay;
		for (size_t i = 0; i < e->rcpt_count; i++) {
			const struct queue_rcpt *rc = &e->rcpts[i];
			struct runner_rcpt_log l = { "deferred", rc->remote_host ? "remote" : "queue",
						     rc->remote_host, NULL, delay / 1000 };
			if (rc->state == QUEUE_RCPT_PENDING && before[i] == QUEUE_RCPT_PENDING)
				runner_log_rcpt(e, message_id, rc, &l);
		}
		if (!e->warned && r->cfg.warn_after > 0 &&
		    now - e->arrived * 1000 >= scaled_ms(r, r->cfg.warn_after)) {
			size_t warn = 0;
			for (size_t i = 0; i < e->rcpt_count; i++)
				if (e->rcpts[i].state == QUEUE_RCPT_PENDING &&
				    notify_wants(&e->rcpts[i], "DELAY", true) &&
				    !notify_has(e->rcpts[i].notify, "NEVER"))
					idx[warn++] = i;
			runner_send_dsn(r, e, data, true, idx, warn);
			e->warned = true;
		}
		if (queue_state_save(r->q, e, err, sizeof(err)) < 0)
			log_error("queue_id=%s msg=\"%s\"", id, err);
	}
	free(idx);
	free(before);
	free(scan);
	buf_free(&prefix);
	queue_data_unmap(cookie, e);
	queue_entry_free(&e);
}

/* ---------------- threads ---------------- */

static bool runner_busy(struct queue_runner *r, const char *id)
{
	for (size_t i = 0; i < r->busy_count; i++)
		if (strcmp(r->busy[i], id) == 0)
			return true;
	for (size_t i = 0; i < r->pending_count; i++)
		if (strcmp(r->pending[i], id) == 0)
			return true;
	return false;
}

/* Each delivery thread keeps the session of its last delivery open for the next message to
 * the same server (queue ids sort by arrival, so mail for one destination tends to come in
 * runs); an unused session is closed after a while. */
static void *runner_worker_main(void *arg)
{
	struct queue_runner *r = arg;
	struct smtpc *session = NULL;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (r->pending_count == 0 && !r->stopping) {
			if (session == NULL) {
				pthread_cond_wait(&r->work, &r->lock);
				continue;
			}
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += RUNNER_SESSION_IDLE_S;
			if (pthread_cond_timedwait(&r->work, &r->lock, &until) != 0 &&
			    r->pending_count == 0) {
				pthread_mutex_unlock(&r->lock);
				smtpc_close(&session);
				pthread_mutex_lock(&r->lock);
			}
		}
		if (r->stopping)
			break;
		char *id = r->pending[0];
		memmove(r->pending, r->pending + 1, (r->pending_count - 1) * sizeof(char *));
		r->pending_count--;
		r->busy = xrealloc(r->busy, (r->busy_count + 1) * sizeof(char *));
		r->busy[r->busy_count++] = id;
		pthread_mutex_unlock(&r->lock);

		runner_deliver(r, id, &session);

		pthread_mutex_lock(&r->lock);
		for (size_t i = 0; i < r->busy_count; i++) {
			if (r->busy[i] == id) {
				r->busy[i] = r->busy[--r->busy_count];
				break;
			}
		}
		free(id);
	}
	pthread_mutex_unlock(&r->lock);
	smtpc_close(&session);
	return NULL;
}

static void runner_scan(struct queue_runner *r)
{
	char **ids;
	size_t count;
	int64_t now = now_ms();

	if (queue_ids(r->q, &ids, &count) < 0)
		return;
	for (size_t i = 0; i < count; i++) {
		struct queue_entry *e = NULL;
		char err[128];
		bool due = false;

		pthread_mutex_lock(&r->lock);
		bool skip = runner_busy(r, ids[i]) || r->pending_count >= RUNNER_MAX_PENDING;
		pthread_mutex_unlock(&r->lock);
		if (!skip && queue_entry_load(r->q, ids[i], &e, err, sizeof(err)) == 0) {
			due = e->next_attempt <= now;
			queue_entry_free(&e);
		}
		pthread_mutex_lock(&r->lock);
		if (due && !r->stopping && r->pending_count < RUNNER_MAX_PENDING &&
		    !runner_busy(r, ids[i])) {
			r->pending[r->pending_count++] = ids[i];
			ids[i] = NULL;
			pthread_cond_signal(&r->work);
		}
		pthread_mutex_unlock(&r->lock);
		free(ids[i]);
	}
	free(ids);
}

static void *runner_scheduler_main(void *arg)
{
	struct queue_runner *r = arg;
	int64_t tick = scaled_ms(r, r->cfg.retry_first) / 4;

	if (tick > RUNNER_TICK_MS)
		tick = RUNNER_TICK_MS;
	if (tick < 50)
		tick = 50;
	for (;;) {
		runner_scan(r);
		pthread_mutex_lock(&r->lock);
		if (!r->scan_requested && !r->stopping) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += tick / 1000;
			until.tv_nsec += (tick % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->wake, &r->lock, &until);
		}
		r->scan_requested = false;
		bool stop = r->stopping;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			return NULL;
	}
}

static char *copy_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}

struct queue_runner *queue_runner_start(struct queue *q, const struct queue_runner_config *cfg,
					const struct queue_hooks *hooks)
{
	struct queue_runner *r = xcalloc(1, sizeof(*r));

	r->q = q;
	r->cfg = *cfg;
	r->cfg.hostname = copy_or_empty(cfg->hostname);
	r->cfg.resolvers = copy_or_empty(cfg->resolvers);
	r->cfg.smarthost = copy_or_empty(cfg->smarthost);
	r->cfg.relay_user = copy_or_empty(cfg->relay_user);
	r->cfg.relay_password = copy_or_empty(cfg->relay_password);
	r->cfg.relay_ca_file = copy_or_empty(cfg->relay_ca_file);
	r->cfg.data_dir = copy_or_empty(cfg->data_dir);
	if (r->cfg.data_dir[0] != '\0')
		r->signers = dkim_signer_cache_new(r->cfg.data_dir);
	r->hooks = *hooks;
	r->worker_count = cfg->threads ? cfg->threads : 4;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	pthread_cond_init(&r->work, NULL);
	r->workers = xcalloc(r->worker_count, sizeof(pthread_t));
	for (unsigned i = 0; i < r->worker_count; i++)
		if (pthread_create(&r->workers[i], NULL, runner_worker_main, r) != 0)
			abort();
	if (pthread_create(&r->scheduler, NULL, runner_scheduler_main, r) != 0)
		abort();
	atomic_store(&q->runner, r);
	return r;
}

void queue_runner_stop(struct queue_runner **rp)
{
	struct queue_runner *r = rp ? *rp : NULL;

	if (r == NULL)
		return;
	atomic_store(&r->q->runner, NULL);
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->wake);
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->scheduler, NULL);
	for (unsigned i = 0; i < r->worker_count; i++)
		pthread_join(r->workers[i], NULL); /* a delivery in progress finishes first */
	for (size_t i = 0; i < r->pending_count; i++)
		free(r->pending[i]);
	free(r->busy);
	free(r->workers);
	free((char *)r->cfg.hostname);
	free((char *)r->cfg.resolvers);
	free((char *)r->cfg.smarthost);
	free((char *)r->cfg.relay_user);
	free((char *)r->cfg.relay_password);
	free((char *)r->cfg.relay_ca_file);
	free((char *)r->cfg.data_dir);
	dkim_signer_cache_free(&r->signers);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->work);
	free(r);
	*rp = NULL;
}

/* ---------------- flush ---------------- */

int queue_flush(struct queue *q, const char *domain, char *err, size_t errlen)
{
	char **ids;
	size_t count;
	int flushed = 0;

	if (queue_ids(q, &ids, &count) < 0) {
		snprintf(err, errlen, "cannot read the queue: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		struct queue_entry *e = NULL;
		char why[256];
		if (queue_entry_load(q, ids[i], &e, why, sizeof(why)) == 0) {
			bool match = domain == NULL;
			for (size_t k = 0; k < e->rcpt_count && !match; k++)
				match = e->rcpts[k].state == QUEUE_RCPT_PENDING &&
					str_ieq(domain_of(e->rcpts[k].address), domain);
			if (match && e->next_attempt != 0) {
				e->next_attempt = 0;
				if (queue_state_save(q, e, why, sizeof(why)) == 0)
					flushed++;
			} else if (match) {
				flushed++;
			}
			queue_entry_free(&e);
		}
		free(ids[i]);
	}
	free(ids);
	if (atomic_load(&q->runner) != NULL)
		queue_runner_wake(atomic_load(&q->runner));
	return flushed;
}
