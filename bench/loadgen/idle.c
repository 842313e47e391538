/* The imap-idle workload: opens K IMAP connections that log in, SELECT INBOX and IDLE (at most
 * --parallel logins in flight), measures the server's memory per connection, then measures push
 * latency: one more client IDLEs as the first user, and for each sample one message goes over
 * SMTP to that user; the latency is the arrival of "* N EXISTS" minus the arrival of DATA's 250.
 * Samples are spaced --gap to 2 x --gap apart at random, so that they never phase-lock with a
 * server's own timers (Dovecot delays notifications by 0.5 s and fires early when it woke
 * recently). Everything runs on one event loop: this workload is not CPU-bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

enum idle_phase { IP_CONNECT, IP_SETTLE, IP_PROBE, IP_SAMPLING, IP_HOLD, IP_DONE };

struct idle_run {
	struct lg_thread *th;
	const struct lg_options *opt;
	enum idle_phase phase;
	struct lg_client **conns;
	unsigned nconns, started, idling, failed, lost;
	uint64_t t_connect_start, t_all_idle;
	struct lg_client *probe, *sender;
	unsigned mem_procs_before, mem_procs_after;
	uint64_t rss_before, pss_before, rss_after, pss_after;
	bool mem_ok;
	int64_t *samples;
	unsigned nsamples, sample_no, sample_errors;
	uint32_t exists_base;
	uint64_t t_acked, t_exists;
	bool have_acked, have_exists, sample_open;
	struct event *timer, *push_timer;
};

static void idle_timer_after(struct idle_run *r, double secs)
{
	struct timeval tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->timer, &tv);
}

static void idle_conn_event(struct lg_client *c, int event, uint64_t value);

static void idle_start_next(struct idle_run *r)
{
	const struct lg_options *opt = r->opt;

	while (r->started < r->nconns &&
	       r->started - r->idling - r->failed - r->lost < opt->parallel) {
		unsigned i = r->started++;
		struct lg_client *c = lg_client_new(r->th, &lg_proto_imap_idle, i,
						    (const struct sockaddr *)&opt->addr,
						    opt->addr_len);
		c->flags = LG_CLIENT_ONESHOT;
		c->user = opt->user_lo + i % (opt->user_hi - opt->user_lo + 1);
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

	(void)value;
	if (event == LG_EV_IDLING) {
		c->step = 1; /* marks the connection as having reached IDLE */
		r->idling++;
	} else if (event == LG_EV_CLOSED) {
		if (c->step == 1) { /* it was idling: the server dropped it */
			r->idling--;
			r->lost++;
		} else {
			r->failed++;
		}
	}
	if (r->phase == IP_CONNECT)
		idle_start_next(r);
}

static void idle_sample_start(struct idle_run *r);

static void idle_sample_close(struct idle_run *r, bool ok)
{
	const struct lg_options *opt = r->opt;

	if (!r->sample_open)
		return;
	r->sample_open = false;
	evtimer_del(r->push_timer);
	if (ok)
		r->samples[r->nsamples++] = (int64_t)r->t_exists - (int64_t)r->t_acked;
	else
		r->sample_errors++;
	r->sample_no++;
	if (r->sample_no >= opt->samples || r->probe->finished) {
		r->phase = IP_HOLD;
		idle_timer_after(r, opt->hold);
		return;
	}
	idle_timer_after(r, opt->gap * (1.0 + (double)lg_rand_below(&r->probe->rng, 1000) / 1000));
}

static void idle_sample_check(struct idle_run *r)
{
	if (r->sample_open && r->have_acked && r->have_exists)
		idle_sample_close(r, true);
}

static void idle_sender_event(struct lg_client *c, int event, uint64_t value)
{
	struct idle_run *r = c->owner;

	if (event == LG_EV_ACCEPTED && r->sample_open) {
		r->t_acked = value;
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
	r->sender->user = r->probe->user;
	r->sender->on_event = idle_sender_event;
	r->sender->owner = r;
	r->have_acked = r->have_exists = false;
	r->sample_open = true;
	tv.tv_sec = (time_t)opt->push_timeout;
	tv.tv_usec = (suseconds_t)((opt->push_timeout - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->push_timer, &tv);
	lg_client_connect(r->sender);
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
			r->phase = IP_HOLD;
			idle_timer_after(r, opt->hold);
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

static double idle_percentile_ms(const int64_t *sorted, unsigned n, double p)
{
	double rank = ceil(p / 100.0 * n);
	unsigned i = rank < 1 ? 0 : (unsigned)rank - 1;

	return n == 0 ? 0 : (double)sorted[i < n ? i : n - 1] / 1000.0;
}

static void idle_report(struct idle_run *r)
{
	const struct lg_options *opt = r->opt;
	unsigned n = r->idling > 0 ? r->idling : 1;
	double p50, p99, connect_s;
	uint64_t errors = r->th->st.errors + r->sample_errors;
	double secs = (double)(r->th->end_us - r->th->shared->start_us) / 1e6;

	qsort(r->samples, r->nsamples, sizeof(r->samples[0]), cmp_i64);
	p50 = idle_percentile_ms(r->samples, r->nsamples, 50);
	p99 = idle_percentile_ms(r->samples, r->nsamples, 99);
	connect_s = r->t_all_idle > 0 ? (double)(r->t_all_idle - r->t_connect_start) / 1e6 : 0;
	printf("imap-idle %s:%u: %u of %u connections idling after %.1f s (%u failed, %u dropped "
	       "later)",
	       opt->host, opt->port, r->idling, r->nconns, connect_s, r->failed, r->lost);
	if (opt->server_pid > 0 && r->mem_ok)
		printf("; server pid %d: %u -> %u processes, RSS %.1f -> %.1f MiB, "
		       "PSS %.1f -> %.1f MiB; per connection RSS %.0f KiB (%.0f added), "
		       "PSS %.0f KiB (%.0f added)",
		       opt->server_pid, r->mem_procs_before, r->mem_procs_after,
		       r->rss_before / 1024.0, r->rss_after / 1024.0, r->pss_before / 1024.0,
		       r->pss_after / 1024.0, (double)r->rss_after / n,
		       ((double)r->rss_after - (double)r->rss_before) / n, (double)r->pss_after / n,
		       ((double)r->pss_after - (double)r->pss_before) / n);
	if (r->nsamples > 0)
		printf("; push latency over %u samples: p50 %.1f ms, p99 %.1f ms, "
		       "min %.1f, max %.1f",
		       r->nsamples, p50, p99, r->samples[0] / 1000.0,
		       r->samples[r->nsamples - 1] / 1000.0);
	printf("; %llu errors\n", (unsigned long long)errors);
	printf("RESULT workload=imap-idle ops=%u secs=%.2f ops_per_s=%.2f p50_ms=%.2f p99_ms=%.2f "
	       "errors=%llu conns=%u idling=%u connect_s=%.2f",
	       r->nsamples, secs, secs > 0 ? r->nsamples / secs : 0, p50, p99,
	       (unsigned long long)errors, r->nconns, r->idling, connect_s);
	if (opt->server_pid > 0 && r->mem_ok)
		printf(" server_procs=%u rss_kib_per_conn=%.0f pss_kib_per_conn=%.0f "
		       "rss_added_kib_per_conn=%.0f pss_added_kib_per_conn=%.0f",
		       r->mem_procs_after, (double)r->rss_after / n, (double)r->pss_after / n,
		       ((double)r->rss_after - (double)r->rss_before) / n,
		       ((double)r->pss_after - (double)r->pss_before) / n);
	else
		printf(" rss_kib_per_conn=n/a pss_kib_per_conn=n/a");
	printf(" push_samples=%u\n", r->nsamples);
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
	r.nconns = opt->clients;
	r.conns = xcalloc(r.nconns, sizeof(*r.conns));
	r.samples = xcalloc(opt->samples + 1, sizeof(*r.samples));
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
	event_free(r.timer);
	event_free(r.push_timer);
	event_free(deadline);
	free(r.conns);
	free(r.samples);
	event_base_free(th.base);
	return r.idling > 0 ? 0 : 1;
}
