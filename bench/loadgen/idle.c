/* The imap-idle workload: opens K IMAP connections that log in, SELECT INBOX and IDLE (at most
 * --parallel logins in flight, optionally from --src-addrs source addresses), measures the
 * server's memory per connection, then measures push latency: one more client IDLEs as the
 * first user, and for each sample one message goes over SMTP to that user; the latency is the
 * arrival of "* N EXISTS" minus the arrival of DATA's 250. With --push-fanout there is no extra
 * client: each sample goes to the next user, and every idling connection of that user gives
 * one latency. Samples are spaced --gap to 2 x --gap apart at random, so that they never
 * phase-lock with a server's own timers (Dovecot delays notifications by 0.5 s and fires early
 * when it woke recently). Then --logins fresh sessions log in one after another while the
 * others still idle, each timed from connect to LOGIN's OK. Everything runs on one event loop:
 * this workload is not CPU-bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define IDLE_WARM_PARALLEL 8

enum idle_phase { IP_CONNECT, IP_SETTLE, IP_PROBE, IP_SAMPLING, IP_LOGINS, IP_HOLD, IP_DONE };

struct idle_run {
	struct lg_thread *th;
	const struct lg_options *opt;
	enum idle_phase phase;
	struct lg_client **conns;
	unsigned nconns, started, idling, failed, lost;
	uint64_t t_connect_start, t_all_idle;
	struct lg_client *probe, *sender;
	uint64_t rng;            /* spacing of the samples */
	unsigned mem_procs_before, mem_procs_after, mem_procs_warm;
	uint64_t rss_before, pss_before, rss_after, pss_after, rss_warm, pss_warm;
	/* --warm: one connection per user first, so that opening the accounts (index, caches)
	 * is measured apart from the cost of one more connection */
	bool warm_done, warm_mem_ok;
	unsigned warm_idling;
	uint64_t t_warm;
	bool mem_ok;
	int64_t *samples;        /* push latencies, microseconds (one per message, or per idler) */
	size_t nsamples, samples_cap;
	int64_t *from_dot;       /* --push-fanout: the same arrivals from the end of DATA */
	size_t nfrom_dot, from_dot_cap;
	unsigned sample_no, sample_errors;
	uint32_t exists_base;
	uint64_t t_acked, t_exists, t_dot;
	bool have_acked, have_exists, sample_open;
	/* --push-fanout: the idlers of the sample's user and when their EXISTS came */
	unsigned sample_user, expected, arrived, fanout_idlers;
	uint64_t *arrivals;
	/* --logins */
	struct lg_client *login;
	unsigned login_no, login_errors;
	bool login_ok;
	int64_t *login_lat;
	unsigned nlogins;
	struct event *timer, *push_timer;
};

/* Appends v to a growing array of latencies. */
static void idle_latency_add(int64_t **v, size_t *n, size_t *cap, int64_t value)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = value;
}

static void idle_sample_add(struct idle_run *r, int64_t v)
{
	idle_latency_add(&r->samples, &r->nsamples, &r->samples_cap, v);
}

static void idle_from_dot_add(struct idle_run *r, int64_t v)
{
	idle_latency_add(&r->from_dot, &r->nfrom_dot, &r->from_dot_cap, v);
}

static unsigned idle_nusers(const struct lg_options *opt)
{
	return opt->user_hi - opt->user_lo + 1;
}

static void idle_timer_after(struct idle_run *r, double secs)
{
	struct timeval tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->timer, &tv);
}

static void idle_conn_event(struct lg_client *c, int event, uint64_t value);
static void idle_sample_check(struct idle_run *r);

static void idle_start_next(struct idle_run *r)
{
	const struct lg_options *opt = r->opt;
	unsigned nwarm = idle_nusers(opt) < r->nconns ? idle_nusers(opt) : r->nconns;
	unsigned limit = opt->warm && !r->warm_done ? nwarm : r->nconns;
	/* A user's first login costs a full password hash and its first SELECT may build the
	 * index: a few at a time is as fast, and nothing waits in the server's pool long
	 * enough to hit the reply timeout. */
	unsigned parallel = opt->warm && !r->warm_done && opt->parallel > IDLE_WARM_PARALLEL
				    ? IDLE_WARM_PARALLEL
				    : opt->parallel;

	if (opt->warm && !r->warm_done && r->idling + r->failed + r->lost == nwarm) {
		r->warm_done = true;
		r->warm_idling = r->idling;
		r->t_warm = lg_now_us();
		if (opt->server_pid > 0)
			r->warm_mem_ok = lg_procmem(opt->server_pid, &r->mem_procs_warm,
						    &r->rss_warm, &r->pss_warm) == 0;
		limit = r->nconns;
		parallel = opt->parallel;
	}
	while (r->started < limit &&
	       r->started - r->idling - r->failed - r->lost < parallel) {
		unsigned i = r->started++;
		struct lg_client *c = lg_client_new(r->th, &lg_proto_imap_idle, i,
						    (const struct sockaddr *)&opt->addr,
						    opt->addr_len);
		c->flags = LG_CLIENT_ONESHOT;
		c->user = opt->user_lo + i % idle_nusers(opt);
		if (opt->src_addrs > 0)
			c->src_ip = lg_src_addr(i % opt->src_addrs);
		c->on_event = idle_conn_event;
		c->owner = r;
		r->conns[i] = c;
		lg_client_connect(c);
	}
	if (r->phase == IP_CONNECT && r->idling + r->failed + r->lost == r->nconns) {
		r->t_all_idle = lg_now_us();
		if (r->idling == 0) { /* nothing to measure: the server takes no IDLE client */
			r->phase = IP_DONE;
			lg_thread_stop(r->th);
			return;
		}
		r->phase = IP_SETTLE;
		idle_timer_after(r, opt->settle);
	}
}

static void idle_conn_event(struct lg_client *c, int event, uint64_t value)
{
	struct idle_run *r = c->owner;

	bool watched = r->sample_open && c->watch_sample == r->sample_no + 1;

	if (event == LG_EV_IDLING) {
		c->step = 1; /* marks the connection as having reached IDLE */
		r->idling++;
	} else if (event == LG_EV_EXISTS && watched && value > c->watch_base) {
		c->watch_sample = 0;
		r->arrivals[r->arrived++] = lg_now_us();
		idle_sample_check(r);
	} else if (event == LG_EV_CLOSED) {
		if (watched) { /* it will never see this sample's EXISTS */
			c->watch_sample = 0;
			r->expected--;
			r->sample_errors++;
		}
		if (c->step == 1) { /* it was idling: the server dropped it */
			r->idling--;
			r->lost++;
		} else {
			r->failed++;
		}
		if (watched)
			idle_sample_check(r);
	}
	if (r->phase == IP_CONNECT)
		idle_start_next(r);
}

static void idle_sample_start(struct idle_run *r);

/* After the push samples: the fresh logins, then the hold. */
static void idle_after_sampling(struct idle_run *r)
{
	if (r->opt->logins > 0) {
		r->phase = IP_LOGINS;
		idle_timer_after(r, 0);
		return;
	}
	r->phase = IP_HOLD;
	idle_timer_after(r, r->opt->hold);
}

/* --push-fanout: one latency per idler that saw the EXISTS; the others are errors. */
static void idle_fanout_close(struct idle_run *r)
{
	if (r->have_acked)
		for (unsigned i = 0; i < r->arrived; i++) {
			idle_sample_add(r, (int64_t)r->arrivals[i] - (int64_t)r->t_acked);
			idle_from_dot_add(r, (int64_t)r->arrivals[i] - (int64_t)r->t_dot);
		}
	else
		r->sample_errors++;
	if (r->arrived < r->expected)
		r->sample_errors += r->expected - r->arrived;
	r->fanout_idlers += r->expected;
	for (unsigned i = 0; i < r->nconns; i++)
		if (r->conns[i] != NULL)
			r->conns[i]->watch_sample = 0;
}

static void idle_sample_close(struct idle_run *r, bool ok)
{
	const struct lg_options *opt = r->opt;

	if (!r->sample_open)
		return;
	r->sample_open = false;
	evtimer_del(r->push_timer);
	if (opt->push_fanout)
		idle_fanout_close(r);
	else if (ok)
		idle_sample_add(r, (int64_t)r->t_exists - (int64_t)r->t_acked);
	else
		r->sample_errors++;
	r->sample_no++;
	if (r->sample_no >= opt->samples || (r->probe != NULL && r->probe->finished)) {
		idle_after_sampling(r);
		return;
	}
	idle_timer_after(r, opt->gap * (1.0 + (double)lg_rand_below(&r->rng, 1000) / 1000));
}

static void idle_sample_check(struct idle_run *r)
{
	if (!r->sample_open || !r->have_acked)
		return;
	if (r->opt->push_fanout ? r->arrived == r->expected : r->have_exists)
		idle_sample_close(r, true);
}

static void idle_sender_event(struct lg_client *c, int event, uint64_t value)
{
	struct idle_run *r = c->owner;

	if (event == LG_EV_ACCEPTED && r->sample_open) {
		r->t_acked = value;
		r->t_dot = c->t_dot;
		r->have_acked = true;
		idle_sample_check(r);
	} else if (event == LG_EV_CLOSED && r->sample_open && !r->have_acked) {
		idle_sample_close(r, false);
	}
}

static void idle_probe_event(struct lg_client *c, int event, uint64_t value)
{
	struct idle_run *r = c->owner;

	if (event == LG_EV_IDLING && r->phase == IP_PROBE) {
		r->exists_base = c->exists;
		r->phase = IP_SAMPLING;
		idle_sample_start(r);
	} else if (event == LG_EV_EXISTS && r->sample_open && !r->have_exists &&
		   value >= r->exists_base + r->sample_no + 1) {
		/* Counting from the base, a late EXISTS of a timed-out sample never counts
		 * for the next one. */
		r->t_exists = lg_now_us();
		r->have_exists = true;
		idle_sample_check(r);
	} else if (event == LG_EV_CLOSED) {
		if (r->phase == IP_PROBE || r->phase == IP_SAMPLING) {
			r->sample_errors++;
			r->phase = IP_DONE;
			lg_thread_stop(r->th);
		}
	}
}

static void idle_sample_start(struct idle_run *r)
{
	const struct lg_options *opt = r->opt;
	struct timeval tv;

	/* The previous sender finished inside its own callback; it is safe to free it here. */
	lg_client_free(&r->sender);
	r->sender = lg_client_new(r->th, &lg_proto_smtp, r->nconns + 1 + r->sample_no,
				  (const struct sockaddr *)&opt->smtp_addr, opt->smtp_addr_len);
	r->sender->flags = LG_CLIENT_ONESHOT;
	if (opt->push_fanout) {
		/* Users in turn; a sample's watch list is every connection idling as it. */
		r->sample_user = opt->user_lo + r->sample_no % idle_nusers(opt);
		r->expected = r->arrived = 0;
		for (unsigned i = 0; i < r->nconns; i++) {
			struct lg_client *c = r->conns[i];
			if (c == NULL || c->step != 1 || c->finished || c->user != r->sample_user)
				continue;
			c->watch_sample = r->sample_no + 1;
			c->watch_base = c->exists;
			r->expected++;
		}
		free(r->arrivals);
		r->arrivals = xcalloc(r->expected + 1, sizeof(*r->arrivals));
		r->sender->user = r->sample_user;
	} else {
		r->sender->user = r->probe->user;
	}
	r->sender->on_event = idle_sender_event;
	r->sender->owner = r;
	r->have_acked = r->have_exists = false;
	r->sample_open = true;
	tv.tv_sec = (time_t)opt->push_timeout;
	tv.tv_usec = (suseconds_t)((opt->push_timeout - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->push_timer, &tv);
	lg_client_connect(r->sender);
}

static void idle_login_event(struct lg_client *c, int event, uint64_t value)
{
	struct idle_run *r = c->owner;

	if (event == LG_EV_LOGGED_IN && !r->login_ok) {
		r->login_ok = true;
		r->login_lat[r->nlogins++] = (int64_t)value - (int64_t)c->t_session;
	} else if (event == LG_EV_CLOSED) {
		if (!r->login_ok)
			r->login_errors++;
		/* The next one starts from the timer, outside this client's own callbacks. */
		r->login_no++;
		idle_timer_after(r, 0);
	}
}

static void idle_login_next(struct idle_run *r)
{
	const struct lg_options *opt = r->opt;

	lg_client_free(&r->login);
	if (r->login_no >= opt->logins) {
		r->phase = IP_HOLD;
		idle_timer_after(r, opt->hold);
		return;
	}
	r->login = lg_client_new(r->th, &lg_proto_imap_login,
				 r->nconns + 1 + opt->samples + r->login_no,
				 (const struct sockaddr *)&opt->addr, opt->addr_len);
	r->login->flags = LG_CLIENT_ONESHOT;
	r->login->user = opt->user_lo + r->login_no % idle_nusers(opt);
	r->login->on_event = idle_login_event;
	r->login->owner = r;
	r->login_ok = false;
	lg_client_connect(r->login);
}

static void idle_push_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct idle_run *r = arg;

	(void)fd;
	(void)what;
	if (r->opt->verbose)
		fprintf(stderr, "loadgen: push sample %u: no EXISTS within %.1f s\n", r->sample_no,
			r->opt->push_timeout);
	idle_sample_close(r, false);
}

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct idle_run *r = arg;
	const struct lg_options *opt = r->opt;

	(void)fd;
	(void)what;
	switch (r->phase) {
	case IP_SETTLE:
		if (opt->server_pid > 0)
			r->mem_ok = lg_procmem(opt->server_pid, &r->mem_procs_after,
					       &r->rss_after, &r->pss_after) == 0;
		if (opt->samples == 0 || opt->smtp_port == 0) {
			idle_after_sampling(r);
			return;
		}
		if (opt->push_fanout) {
			r->phase = IP_SAMPLING;
			idle_sample_start(r);
			return;
		}
		r->phase = IP_PROBE;
		r->probe = lg_client_new(r->th, &lg_proto_imap_idle, r->nconns,
					 (const struct sockaddr *)&opt->addr, opt->addr_len);
		r->probe->flags = LG_CLIENT_ONESHOT;
		r->probe->user = opt->user_lo;
		r->probe->on_event = idle_probe_event;
		r->probe->owner = r;
		lg_client_connect(r->probe);
		return;
	case IP_SAMPLING:
		idle_sample_start(r);
		return;
	case IP_LOGINS:
		idle_login_next(r);
		return;
	case IP_HOLD:
		r->phase = IP_DONE;
		lg_thread_stop(r->th);
		return;
	default:
		return;
	}
}

static void idle_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct idle_run *r = arg;

	(void)fd;
	(void)what;
	if (r->phase != IP_DONE)
		fprintf(stderr, "loadgen: imap-idle stopped by --secs before it finished\n");
	lg_thread_stop(r->th);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double idle_percentile_ms(const int64_t *sorted, size_t n, double p)
{
	double rank = ceil(p / 100.0 * (double)n);
	size_t i = rank < 1 ? 0 : (size_t)rank - 1;

	return n == 0 ? 0 : (double)sorted[i < n ? i : n - 1] / 1000.0;
}

static void idle_report_memory(const struct idle_run *r, unsigned n)
{
	const struct lg_options *opt = r->opt;

	printf("; server pid %d: %u -> %u processes, RSS %.1f -> %.1f MiB, "
	       "PSS %.1f -> %.1f MiB; per connection RSS %.0f KiB (%.0f added), "
	       "PSS %.0f KiB (%.1f added)",
	       opt->server_pid, r->mem_procs_before, r->mem_procs_after, r->rss_before / 1024.0,
	       r->rss_after / 1024.0, r->pss_before / 1024.0, r->pss_after / 1024.0,
	       (double)r->rss_after / n, ((double)r->rss_after - (double)r->rss_before) / n,
	       (double)r->pss_after / n, ((double)r->pss_after - (double)r->pss_before) / n);
}

static void idle_report(struct idle_run *r)
{
	const struct lg_options *opt = r->opt;
	unsigned n = r->idling > 0 ? r->idling : 1;
	double p50, p99, lp50, lp99, dp50, dp99, connect_s;
	uint64_t errors = r->th->st.errors + r->sample_errors;
	double secs = (double)(r->th->end_us - r->th->shared->start_us) / 1e6;

	qsort(r->samples, r->nsamples, sizeof(r->samples[0]), cmp_i64);
	p50 = idle_percentile_ms(r->samples, r->nsamples, 50);
	p99 = idle_percentile_ms(r->samples, r->nsamples, 99);
	qsort(r->from_dot, r->nfrom_dot, sizeof(r->from_dot[0]), cmp_i64);
	dp50 = idle_percentile_ms(r->from_dot, r->nfrom_dot, 50);
	dp99 = idle_percentile_ms(r->from_dot, r->nfrom_dot, 99);
	qsort(r->login_lat, r->nlogins, sizeof(r->login_lat[0]), cmp_i64);
	lp50 = idle_percentile_ms(r->login_lat, r->nlogins, 50);
	lp99 = idle_percentile_ms(r->login_lat, r->nlogins, 99);
	connect_s = r->t_all_idle > 0 ? (double)(r->t_all_idle - r->t_connect_start) / 1e6 : 0;
	printf("imap-idle %s:%u: %u of %u connections idling after %.1f s (%u failed, %u dropped "
	       "later)",
	       opt->host, opt->port, r->idling, r->nconns, connect_s, r->failed, r->lost);
	if (opt->src_addrs > 0)
		printf(" from %u source addresses", opt->src_addrs);
	if (opt->server_pid > 0 && r->mem_ok)
		idle_report_memory(r, n);
	if (r->warm_mem_ok && r->mem_ok && r->idling > r->warm_idling)
		printf("; after one connection per user (%u, %.1f s): PSS %.1f MiB, then %.2f KiB "
		       "added per further connection",
		       r->warm_idling, (double)(r->t_warm - r->t_connect_start) / 1e6,
		       r->pss_warm / 1024.0,
		       ((double)r->pss_after - (double)r->pss_warm) / (r->idling - r->warm_idling));
	if (r->nsamples > 0 && opt->push_fanout)
		printf("; push latency over %zu idlers of %u messages (%u idlers watched): "
		       "p50 %.2f ms, p99 %.2f ms, min %.2f, max %.2f; from the end of DATA: "
		       "p50 %.2f ms, p99 %.2f ms",
		       r->nsamples, r->sample_no, r->fanout_idlers, p50, p99,
		       r->samples[0] / 1000.0, r->samples[r->nsamples - 1] / 1000.0, dp50, dp99);
	else if (r->nsamples > 0)
		printf("; push latency over %zu samples: p50 %.1f ms, p99 %.1f ms, "
		       "min %.1f, max %.1f",
		       r->nsamples, p50, p99, r->samples[0] / 1000.0,
		       r->samples[r->nsamples - 1] / 1000.0);
	if (opt->logins > 0)
		printf("; %u of %u fresh logins meanwhile (connect to LOGIN OK): p50 %.2f ms, "
		       "p99 %.2f ms, max %.2f",
		       r->nlogins, opt->logins, lp50, lp99,
		       r->nlogins > 0 ? r->login_lat[r->nlogins - 1] / 1000.0 : 0);
	printf("; %llu errors\n", (unsigned long long)errors);
	printf("RESULT workload=imap-idle ops=%zu secs=%.2f ops_per_s=%.2f p50_ms=%.2f p99_ms=%.2f "
	       "errors=%llu conns=%u idling=%u connect_s=%.2f",
	       r->nsamples, secs, secs > 0 ? (double)r->nsamples / secs : 0, p50, p99,
	       (unsigned long long)errors, r->nconns, r->idling, connect_s);
	if (opt->server_pid > 0 && r->mem_ok)
		printf(" server_procs=%u rss_kib_per_conn=%.0f pss_kib_per_conn=%.0f "
		       "rss_added_kib_per_conn=%.0f pss_added_kib_per_conn=%.0f "
		       "pss_before_kib=%llu pss_after_kib=%llu pss_added_bytes_per_conn=%.0f",
		       r->mem_procs_after, (double)r->rss_after / n, (double)r->pss_after / n,
		       ((double)r->rss_after - (double)r->rss_before) / n,
		       ((double)r->pss_after - (double)r->pss_before) / n,
		       (unsigned long long)r->pss_before, (unsigned long long)r->pss_after,
		       ((double)r->pss_after - (double)r->pss_before) * 1024.0 / n);
	else
		printf(" rss_kib_per_conn=n/a pss_kib_per_conn=n/a");
	if (r->warm_mem_ok && r->mem_ok && r->idling > r->warm_idling)
		printf(" warm_conns=%u pss_warm_kib=%llu pss_added_kib_per_conn_after_warm=%.2f",
		       r->warm_idling, (unsigned long long)r->pss_warm,
		       ((double)r->pss_after - (double)r->pss_warm) / (r->idling - r->warm_idling));
	printf(" push_samples=%zu push_messages=%u push_errors=%u", r->nsamples, r->sample_no,
	       r->sample_errors);
	if (opt->push_fanout)
		printf(" push_from_dot_p50_ms=%.2f push_from_dot_p99_ms=%.2f", dp50, dp99);
	if (opt->logins > 0)
		printf(" logins=%u login_errors=%u login_p50_ms=%.2f login_p99_ms=%.2f", r->nlogins,
		       r->login_errors, lp50, lp99);
	printf("\n");
}

int lg_run_idle(struct lg_shared *shared)
{
	const struct lg_options *opt = shared->opt;
	struct lg_thread th = { 0 };
	struct idle_run r = { 0 };
	struct timeval tv;

	th.shared = shared;
	th.opt = opt;
	th.base = event_base_new();
	if (th.base == NULL)
		return -1;
	r.th = &th;
	r.opt = opt;
	r.rng = (opt->seed * 0x9E3779B97F4A7C15ULL) | 1;
	r.nconns = opt->clients;
	r.conns = xcalloc(r.nconns, sizeof(*r.conns));
	r.login_lat = xcalloc(opt->logins + 1, sizeof(*r.login_lat));
	r.timer = evtimer_new(th.base, idle_timer_cb, &r);
	r.push_timer = evtimer_new(th.base, idle_push_timeout_cb, &r);
	struct event *deadline = evtimer_new(th.base, idle_deadline_cb, &r);
	if (r.timer == NULL || r.push_timer == NULL || deadline == NULL)
		abort();
	if (opt->server_pid > 0 && lg_procmem(opt->server_pid, &r.mem_procs_before, &r.rss_before,
					      &r.pss_before) < 0)
		fprintf(stderr, "loadgen: cannot read the memory of pid %d\n", opt->server_pid);
	tv.tv_sec = (time_t)opt->secs;
	tv.tv_usec = (suseconds_t)((opt->secs - (double)tv.tv_sec) * 1e6);
	evtimer_add(deadline, &tv);

	shared->start_us = lg_now_us();
	r.t_connect_start = shared->start_us;
	r.phase = IP_CONNECT;
	idle_start_next(&r);
	event_base_dispatch(th.base);
	if (th.end_us == 0)
		th.end_us = lg_now_us();
	idle_report(&r);

	for (unsigned i = 0; i < r.nconns; i++)
		lg_client_free(&r.conns[i]);
	lg_client_free(&r.probe);
	lg_client_free(&r.sender);
	lg_client_free(&r.login);
	free(r.arrivals);
	free(r.login_lat);
	event_free(r.timer);
	event_free(r.push_timer);
	event_free(deadline);
	free(r.conns);
	free(r.samples);
	free(r.from_dot);
	event_base_free(th.base);
	return r.idling > 0 ? 0 : 1;
}
