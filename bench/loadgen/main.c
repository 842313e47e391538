/* loadgen: the benchmark load generator of Roost. Drives one SMTP, IMAP or POP3 server on a
 * loopback address with C concurrent clients for T seconds or N operations, on one libevent loop
 * per thread, and prints one human line and one "RESULT key=value ..." line. For smtp-deliver
 * it can also poll the recipients' INBOX counts over IMAP to measure end-to-end delivery. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

static const struct {
	const char *name;
	enum lg_workload workload;
} lg_workloads[] = {
	{ "smtp-deliver", LG_SMTP_DELIVER }, { "imap-mixed", LG_IMAP_MIXED },
	{ "imap-idle", LG_IMAP_IDLE },       { "pop3-retr", LG_POP3_RETR },
	{ "imap-fill", LG_IMAP_FILL },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: loadgen --workload W --port P [options]\n"
		"workloads: smtp-deliver imap-mixed imap-idle pop3-retr imap-fill\n"
		"  --host A            target address, loopback only (127.0.0.1)\n"
		"  --port P            target port (SMTP, IMAP or POP3 by workload)\n"
		"  --clients C         concurrent clients / idle connections (10)\n"
		"  --threads N         event-loop threads (1; imap-idle always uses 1)\n"
		"  --secs T            run time (20); for imap-idle and imap-fill a limit (300)\n"
		"  --ops N             stop after N operations (0: time only)\n"
		"  --user-fmt F        login name, %%d = user number (user%%d@bench.test)\n"
		"  --users A-B         user numbers (1-10)\n"
		"  --password S        (pass)\n"
		"  --domain D          recipient domain when --user-fmt has no '@' (bench.test)\n"
		"  --rcpt-fmt F        SMTP recipient, %%d = user number\n"
		"                      (default: from --user-fmt and --domain)\n"
		"  --from ADDR         SMTP envelope sender (loadgen@DOMAIN)\n"
		"  --size B            fixed message size (default: a mix, mean about 24 KiB)\n"
		"  --msgs-per-session M  smtp-deliver: messages per session, RSET between (10)\n"
		"  --rcpts R           smtp-deliver: recipients per message (1)\n"
		"  --track-imap-port P smtp-deliver: poll INBOX counts on this IMAP port\n"
		"  --drain S           smtp-deliver: wait up to S s for tracked mail (60)\n"
		"  --fill N            imap-fill: top each INBOX up to N messages (100)\n"
		"  --smtp-port P       imap-idle: SMTP port for push-latency samples (0: none)\n"
		"  --server-pid PID    imap-idle: measure this process tree's RSS/PSS\n"
		"  --samples N         imap-idle: push-latency samples (20)\n"
		"  --gap S             imap-idle: samples S..2S s apart at random (0.5)\n"
		"  --push-timeout S    imap-idle: give up on one sample after S s (10)\n"
		"  --parallel N        imap-idle: logins in flight (50)\n"
		"  --src-addrs N       imap-idle: idle connections bind to N sources 127.1.x.y (0: no)\n"
		"  --push-fanout       imap-idle: no probe; each sample goes to the next user and\n"
		"                      every connection idling as that user gives a latency\n"
		"  --logins N          imap-idle: then N fresh logins one by one, timed (0)\n"
		"  --warm              imap-idle: one connection per user first, then read memory\n"
		"  --settle S          imap-idle: wait before measuring memory (2)\n"
		"  --hold S            imap-idle: keep the connections S s more (0)\n"
		"  --timeout S         per-reply timeout (30)\n"
		"  --seed N            random seed (1)\n"
		"  -v, --verbose       log every error\n");
}

static int parse_double(const char *s, double lo, double hi, double *v_r)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !(v >= lo && v <= hi))
		return -1;
	*v_r = v;
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *v_r)
{
	return str_to_u64(s, strlen(s), max, v_r);
}

static int parse_users(const char *s, unsigned *lo_r, unsigned *hi_r)
{
	const char *dash = strchr(s, '-');
	uint64_t lo, hi;

	if (dash == NULL) {
		if (parse_uint(s, LG_MAX_USERS, &lo) < 0)
			return -1;
		hi = lo;
	} else if (str_to_u64(s, (size_t)(dash - s), LG_MAX_USERS, &lo) < 0 ||
		   parse_uint(dash + 1, LG_MAX_USERS, &hi) < 0) {
		return -1;
	}
	if (hi < lo || hi - lo + 1 > LG_MAX_USERS)
		return -1;
	*lo_r = (unsigned)lo;
	*hi_r = (unsigned)hi;
	return 0;
}

/* Parses argv into opt; returns 0, or 2 after printing why (the exit status). */
static int parse_options(int argc, char **argv, struct lg_options *opt, char *owned_r[2])
{
	enum {
		O_HOST = 256, O_USER_FMT, O_USERS, O_PASSWORD, O_DOMAIN, O_RCPT_FMT, O_FROM, O_SIZE,
		O_MPS, O_RCPTS, O_TRACK, O_DRAIN, O_FILL, O_SMTP_PORT, O_PID, O_SAMPLES, O_GAP,
		O_PUSH_TIMEOUT, O_PARALLEL, O_SETTLE, O_HOLD, O_TIMEOUT, O_SEED, O_SRC_ADDRS,
		O_PUSH_FANOUT, O_LOGINS, O_WARM
	};
	static const struct option longopts[] = {
		{ "workload", required_argument, NULL, 'w' },
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, 'p' },
		{ "clients", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "secs", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "user-fmt", required_argument, NULL, O_USER_FMT },
		{ "users", required_argument, NULL, O_USERS },
		{ "password", required_argument, NULL, O_PASSWORD },
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "rcpt-fmt", required_argument, NULL, O_RCPT_FMT },
		{ "from", required_argument, NULL, O_FROM },
		{ "size", required_argument, NULL, O_SIZE },
		{ "msgs-per-session", required_argument, NULL, O_MPS },
		{ "rcpts", required_argument, NULL, O_RCPTS },
		{ "track-imap-port", required_argument, NULL, O_TRACK },
		{ "drain", required_argument, NULL, O_DRAIN },
		{ "fill", required_argument, NULL, O_FILL },
		{ "smtp-port", required_argument, NULL, O_SMTP_PORT },
		{ "server-pid", required_argument, NULL, O_PID },
		{ "samples", required_argument, NULL, O_SAMPLES },
		{ "gap", required_argument, NULL, O_GAP },
		{ "push-timeout", required_argument, NULL, O_PUSH_TIMEOUT },
		{ "parallel", required_argument, NULL, O_PARALLEL },
		{ "src-addrs", required_argument, NULL, O_SRC_ADDRS },
		{ "push-fanout", no_argument, NULL, O_PUSH_FANOUT },
		{ "logins", required_argument, NULL, O_LOGINS },
		{ "warm", no_argument, NULL, O_WARM },
		{ "settle", required_argument, NULL, O_SETTLE },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *workload = NULL;
	bool secs_given = false;
	uint64_t u;
	int ch, bad = 0;

	owned_r[0] = owned_r[1] = NULL;
	memset(opt, 0, sizeof(*opt));
	opt->host = "127.0.0.1";
	opt->clients = 10;
	opt->threads = 1;
	opt->secs = 20;
	opt->user_fmt = "user%d@bench.test";
	opt->user_lo = 1;
	opt->user_hi = 10;
	opt->password = "pass";
	opt->domain = "bench.test";
	opt->msgs_per_session = 10;
	opt->rcpts_per_msg = 1;
	opt->drain = 60;
	opt->fill = 100;
	opt->samples = 20;
	opt->gap = 0.5;
	opt->push_timeout = 10;
	opt->parallel = 50;
	opt->settle = 2;
	opt->timeout = 30;
	opt->seed = 1;

	while ((ch = getopt_long(argc, argv, "w:p:c:t:s:n:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'w': workload = optarg; break;
		case O_HOST: opt->host = optarg; break;
		case 'p': bad |= parse_uint(optarg, 65535, &u); opt->port = (unsigned)u; break;
		case 'c':
			bad |= parse_uint(optarg, LG_MAX_CLIENTS, &u);
			opt->clients = (unsigned)u;
			break;
		case 't':
			bad |= parse_uint(optarg, LG_MAX_THREADS, &u);
			opt->threads = (unsigned)u;
			break;
		case 's':
			bad |= parse_double(optarg, 0.1, LG_MAX_SECS, &opt->secs);
			secs_given = true;
			break;
		case 'n': bad |= parse_uint(optarg, UINT64_MAX / 2, &opt->max_ops); break;
		case O_USER_FMT: opt->user_fmt = optarg; break;
		case O_USERS: bad |= parse_users(optarg, &opt->user_lo, &opt->user_hi); break;
		case O_PASSWORD: opt->password = optarg; break;
		case O_DOMAIN: opt->domain = optarg; break;
		case O_RCPT_FMT: opt->rcpt_fmt = optarg; break;
		case O_FROM: opt->from = optarg; break;
		case O_SIZE:
			bad |= parse_uint(optarg, LG_MAX_MSG_SIZE, &u);
			opt->fixed_size = (size_t)u;
			break;
		case O_MPS:
			bad |= parse_uint(optarg, 100000, &u);
			opt->msgs_per_session = (unsigned)u;
			break;
		case O_RCPTS:
			bad |= parse_uint(optarg, 1000, &u);
			opt->rcpts_per_msg = (unsigned)u;
			break;
		case O_TRACK:
			bad |= parse_uint(optarg, 65535, &u);
			opt->track_port = (unsigned)u;
			break;
		case O_DRAIN: bad |= parse_double(optarg, 0, LG_MAX_SECS, &opt->drain); break;
		case O_FILL: bad |= parse_uint(optarg, 1000000, &u); opt->fill = (unsigned)u; break;
		case O_SMTP_PORT:
			bad |= parse_uint(optarg, 65535, &u);
			opt->smtp_port = (unsigned)u;
			break;
		case O_PID:
			bad |= parse_uint(optarg, 1u << 30, &u);
			opt->server_pid = (int)u;
			break;
		case O_SAMPLES:
			bad |= parse_uint(optarg, LG_MAX_SAMPLES, &u);
			opt->samples = (unsigned)u;
			break;
		case O_GAP: bad |= parse_double(optarg, 0, 60, &opt->gap); break;
		case O_PUSH_TIMEOUT:
			bad |= parse_double(optarg, 0.1, 600, &opt->push_timeout);
			break;
		case O_PARALLEL:
			bad |= parse_uint(optarg, LG_MAX_CLIENTS, &u);
			opt->parallel = (unsigned)u;
			break;
		case O_SRC_ADDRS:
			bad |= parse_uint(optarg, LG_MAX_SRC_ADDRS, &u);
			opt->src_addrs = (unsigned)u;
			break;
		case O_PUSH_FANOUT: opt->push_fanout = true; break;
		case O_WARM: opt->warm = true; break;
		case O_LOGINS:
			bad |= parse_uint(optarg, LG_MAX_LOGINS, &u);
			opt->logins = (unsigned)u;
			break;
		case O_SETTLE: bad |= parse_double(optarg, 0, 600, &opt->settle); break;
		case O_HOLD: bad |= parse_double(optarg, 0, LG_MAX_SECS, &opt->hold); break;
		case O_TIMEOUT: bad |= parse_double(optarg, 0.1, 600, &opt->timeout); break;
		case O_SEED: bad |= parse_uint(optarg, UINT64_MAX, &opt->seed); break;
		case 'v': opt->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return 2;
		}
	}
	if (bad || optind != argc) {
		fprintf(stderr, "loadgen: bad option value or extra argument\n");
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; workload != NULL && i < ARRAY_LEN(lg_workloads); i++)
		if (strcmp(workload, lg_workloads[i].name) == 0) {
			opt->workload = lg_workloads[i].workload;
			opt->workload_name = lg_workloads[i].name;
		}
	/* Set-up and idle runs end by themselves; their --secs is only a ceiling. */
	if (!secs_given && (opt->workload == LG_IMAP_IDLE || opt->workload == LG_IMAP_FILL))
		opt->secs = 300;
	if (opt->workload_name == NULL) {
		fprintf(stderr, "loadgen: --workload is one of smtp-deliver, imap-mixed, "
				"imap-idle, pop3-retr, imap-fill\n");
		return 2;
	}
	if (opt->clients == 0 || opt->threads == 0 || opt->parallel == 0 ||
	    opt->msgs_per_session == 0 || opt->rcpts_per_msg == 0) {
		fprintf(stderr, "loadgen: --clients, --threads, --parallel, --msgs-per-session and "
				"--rcpts must be at least 1\n");
		return 2;
	}
	if (opt->threads > opt->clients)
		opt->threads = opt->clients;
	if (lg_loopback_addr(opt->host, opt->port, &opt->addr, &opt->addr_len) < 0 ||
	    (opt->smtp_port != 0 && lg_loopback_addr(opt->host, opt->smtp_port, &opt->smtp_addr,
						     &opt->smtp_addr_len) < 0) ||
	    (opt->track_port != 0 && lg_loopback_addr(opt->host, opt->track_port,
						      &opt->track_addr,
						      &opt->track_addr_len) < 0)) {
		fprintf(stderr, "loadgen: refusing target %s: only loopback addresses "
				"(127.0.0.0/8, ::1) with a port are allowed\n", opt->host);
		return 2;
	}
	if (opt->rcpt_fmt == NULL) {
		if (strchr(opt->user_fmt, '@') != NULL)
			opt->rcpt_fmt = opt->user_fmt;
		else
			opt->rcpt_fmt = owned_r[0] = xasprintf("%s@%s", opt->user_fmt, opt->domain);
	}
	if (opt->from == NULL)
		opt->from = owned_r[1] = xasprintf("loadgen@%s", opt->domain);
	if (lg_name_fmt_check(opt->user_fmt) < 0 || lg_name_fmt_check(opt->rcpt_fmt) < 0 ||
	    lg_name_fmt_check(opt->from) < 0 || strchr(opt->from, '%') != NULL ||
	    lg_name_fmt_check(opt->password) < 0 || strchr(opt->password, '%') != NULL) {
		fprintf(stderr, "loadgen: user/recipient formats take at most one %%d and no "
				"quotes, backslashes, spaces or angle brackets; the same holds "
				"for --from and --password (without %%)\n");
		return 2;
	}
	return 0;
}

/* ---- worker threads (smtp-deliver, imap-mixed, pop3-retr, imap-fill) ---- */

static void fill_event(struct lg_client *c, int event, uint64_t value)
{
	struct lg_thread *th = c->th;

	(void)value;
	if (event == LG_EV_CLOSED && c->finished && th->live > 0 && --th->live == 0)
		lg_thread_stop(th);
}

static void thread_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lg_thread_stop(arg);
}

static void thread_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg_thread *th = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&th->shared->done))
		lg_thread_stop(th);
}

static const struct lg_proto *workload_proto(enum lg_workload w)
{
	switch (w) {
	case LG_SMTP_DELIVER: return &lg_proto_smtp;
	case LG_IMAP_MIXED: return &lg_proto_imap_mixed;
	case LG_POP3_RETR: return &lg_proto_pop3;
	default: return &lg_proto_imap_fill;
	}
}

static void *thread_main(void *arg)
{
	struct lg_thread *th = arg;
	const struct lg_options *opt = th->opt;
	struct timeval tv = { 0, 100 * 1000 };
	uint64_t now = lg_now_us();
	uint64_t left = th->shared->deadline_us > now ? th->shared->deadline_us - now : 0;
	struct timeval dl = { (time_t)(left / 1000000), (suseconds_t)(left % 1000000) };

	th->deadline_ev = evtimer_new(th->base, thread_deadline_cb, th);
	th->tick_ev = event_new(th->base, -1, EV_PERSIST, thread_tick_cb, th);
	if (th->deadline_ev == NULL || th->tick_ev == NULL)
		abort();
	evtimer_add(th->deadline_ev, &dl);
	evtimer_add(th->tick_ev, &tv);
	for (unsigned i = 0; i < th->nclients; i++)
		lg_client_connect(th->clients[i]);
	if (th->nclients == 0 || (opt->workload == LG_IMAP_FILL && th->live == 0))
		lg_thread_stop(th);
	else
		event_base_dispatch(th->base);
	if (th->end_us == 0)
		th->end_us = lg_now_us();
	th->stopping = true;
	atomic_fetch_sub(&th->shared->threads_running, 1);
	return NULL;
}

/* ---- delivery tracker: INBOX counts of every recipient over IMAP STATUS ---- */

#define TRACK_TIMELINE_MAX 3600

struct tracker {
	struct lg_thread th;
	struct lg_shared *shared;
	unsigned n, based;
	struct lg_client **conns;
	uint32_t *base, *cur;
	bool *have;
	bool baseline_done, finished, drain_timed_out;
	uint64_t delivered, t_last_change, t_workers_end;
	uint64_t timeline[TRACK_TIMELINE_MAX];
	unsigned ntimeline;
	struct event *poll_ev;
};

static void tracker_event(struct lg_client *c, int event, uint64_t value)
{
	struct tracker *t = c->owner;
	unsigned i = c->user - c->th->opt->user_lo;

	if (event != LG_EV_STATUS || i >= t->n)
		return;
	if (!t->have[i]) {
		t->have[i] = true;
		t->base[i] = (uint32_t)value;
		if (++t->based == t->n && !t->baseline_done)
			event_base_loopbreak(t->th.base);
	}
	t->cur[i] = (uint32_t)value;
}

static void tracker_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;
	struct lg_shared *sh = t->shared;
	uint64_t now = lg_now_us(), sum = 0;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < t->n; i++) {
		if (t->have[i] && t->cur[i] > t->base[i])
			sum += t->cur[i] - t->base[i];
		lg_imap_status_poll(t->conns[i]);
	}
	if (!t->baseline_done)
		return;
	if (sum != t->delivered) {
		t->delivered = sum;
		t->t_last_change = now;
	}
	while (t->ntimeline < TRACK_TIMELINE_MAX &&
	       now >= sh->start_us + (uint64_t)(t->ntimeline + 1) * 1000000u)
		t->timeline[t->ntimeline++] = t->delivered;
	if (atomic_load(&sh->threads_running) == 0) {
		if (t->t_workers_end == 0)
			t->t_workers_end = now;
		if (t->delivered >= atomic_load(&sh->accepted)) {
			t->finished = true;
			event_base_loopexit(t->th.base, NULL);
		} else if (now > t->t_workers_end + (uint64_t)(sh->opt->drain * 1e6)) {
			t->drain_timed_out = true;
			t->finished = true;
			event_base_loopexit(t->th.base, NULL);
		}
	}
}

static struct tracker *tracker_new(struct lg_shared *sh)
{
	const struct lg_options *opt = sh->opt;
	struct tracker *t = xcalloc(1, sizeof(*t));
	struct timeval tv = { 0, LG_STATUS_POLL_MS * 1000 };

	t->shared = sh;
	t->th.shared = sh;
	t->th.opt = opt;
	t->th.base = event_base_new();
	if (t->th.base == NULL)
		abort();
	t->n = opt->user_hi - opt->user_lo + 1;
	t->conns = xcalloc(t->n, sizeof(*t->conns));
	t->base = xcalloc(t->n, sizeof(*t->base));
	t->cur = xcalloc(t->n, sizeof(*t->cur));
	t->have = xcalloc(t->n, sizeof(*t->have));
	for (unsigned i = 0; i < t->n; i++) {
		struct lg_client *c = lg_client_new(&t->th, &lg_proto_imap_status,
						    LG_MAX_CLIENTS + i,
						    (const struct sockaddr *)&opt->track_addr,
						    opt->track_addr_len);
		c->user = opt->user_lo + i;
		c->on_event = tracker_event;
		c->owner = t;
		t->conns[i] = c;
		lg_client_connect(c);
	}
	t->poll_ev = event_new(t->th.base, -1, EV_PERSIST, tracker_poll_cb, t);
	if (t->poll_ev == NULL)
		abort();
	event_add(t->poll_ev, &tv);
	return t;
}

/* Runs the tracker's loop until every recipient's INBOX has a first count or timeout_s passed. */
static void tracker_baseline_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(t->th.base);
}

static int tracker_baseline(struct tracker *t, double timeout_s)
{
	struct timeval tv = { (time_t)timeout_s, 0 };
	struct event *timeout = evtimer_new(t->th.base, tracker_baseline_timeout_cb, t);

	/* A timer of our own, not a loopexit timeout: that would also end the later run. */
	if (timeout == NULL)
		abort();
	evtimer_add(timeout, &tv);
	event_base_dispatch(t->th.base);
	event_free(timeout);
	t->baseline_done = true;
	return t->based == t->n ? 0 : -1;
}

static void tracker_free(struct tracker **tp)
{
	struct tracker *t = *tp;

	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->n; i++)
		lg_client_free(&t->conns[i]);
	event_free(t->poll_ev);
	event_base_free(t->th.base);
	free(t->conns);
	free(t->base);
	free(t->cur);
	free(t->have);
	free(t);
	*tp = NULL;
}

/* ---- reporting ---- */

static void report(const struct lg_options *opt, const struct lg_stats *st, double secs,
		   const struct tracker *t, uint64_t accepted)
{
	double p50 = lg_hist_percentile(&st->lat, 50) / 1000.0;
	double p99 = lg_hist_percentile(&st->lat, 99) / 1000.0;
	double rate = secs > 0 ? st->ops / secs : 0;
	double mbs = secs > 0 ? st->bytes / secs / 1e6 : 0;

	printf("%s %s:%u clients=%u threads=%u: %.1f ops/s over %.1f s (%llu ops, %llu sessions), "
	       "p50 %.2f ms, p99 %.2f ms, %.1f MB/s, %llu errors",
	       opt->workload_name, opt->host, opt->port, opt->clients, opt->threads, rate, secs,
	       (unsigned long long)st->ops, (unsigned long long)st->sessions, p50, p99, mbs,
	       (unsigned long long)st->errors);
	if (st->no_replies > 0)
		printf(", %llu NO replies", (unsigned long long)st->no_replies);
	if (t != NULL) {
		double e2e = t->t_last_change > t->shared->start_us
				     ? (double)(t->t_last_change - t->shared->start_us) / 1e6
				     : 0;
		printf("; in the mailboxes: %llu of %llu accepted (%.1f msgs/s end-to-end, last "
		       "arrival at %.1f s%s)",
		       (unsigned long long)t->delivered, (unsigned long long)accepted,
		       e2e > 0 ? t->delivered / e2e : 0, e2e,
		       t->drain_timed_out ? ", drain timed out" : "");
	}
	printf("\n");
	if (t != NULL && opt->verbose) {
		printf("mailbox timeline (second:delivered):");
		for (unsigned i = 0; i < t->ntimeline; i++)
			printf(" %u:%llu", i + 1, (unsigned long long)t->timeline[i]);
		printf("\n");
	}
	printf("RESULT workload=%s ops=%llu secs=%.2f ops_per_s=%.2f p50_ms=%.2f p99_ms=%.2f "
	       "errors=%llu clients=%u no_replies=%llu sessions=%llu bytes=%llu mb_per_s=%.2f",
	       opt->workload_name, (unsigned long long)st->ops, secs, rate, p50, p99,
	       (unsigned long long)st->errors, opt->clients, (unsigned long long)st->no_replies,
	       (unsigned long long)st->sessions, (unsigned long long)st->bytes, mbs);
	if (t != NULL) {
		double e2e = t->t_last_change > t->shared->start_us
				     ? (double)(t->t_last_change - t->shared->start_us) / 1e6
				     : 0;
		printf(" accepted=%llu delivered=%llu e2e_secs=%.2f delivered_per_s=%.2f "
		       "drain_timeout=%d",
		       (unsigned long long)accepted, (unsigned long long)t->delivered, e2e,
		       e2e > 0 ? t->delivered / e2e : 0, t->drain_timed_out ? 1 : 0);
	}
	printf("\n");
}

static int run_workers(struct lg_shared *sh)
{
	const struct lg_options *opt = sh->opt;
	struct lg_thread *ths = xcalloc(opt->threads, sizeof(*ths));
	pthread_t *tids = xcalloc(opt->threads, sizeof(*tids));
	struct tracker *t = NULL;
	struct lg_stats total = { 0 };
	uint64_t end = 0;
	int status = 0;

	if (opt->workload == LG_SMTP_DELIVER && opt->track_port != 0) {
		t = tracker_new(sh);
		if (tracker_baseline(t, 15) < 0) {
			fprintf(stderr, "loadgen: could not read every INBOX count on port %u; "
					"delivery tracking is off\n", opt->track_port);
			tracker_free(&t);
		}
	}
	for (unsigned k = 0; k < opt->threads; k++) {
		struct lg_thread *th = &ths[k];
		th->shared = sh;
		th->opt = opt;
		th->index = k;
		th->base = event_base_new();
		if (th->base == NULL)
			abort();
		th->clients = xcalloc(opt->clients / opt->threads + 1, sizeof(*th->clients));
	}
	for (unsigned i = 0; i < opt->clients; i++) {
		struct lg_thread *th = &ths[i % opt->threads];
		struct lg_client *c;
		if (opt->workload == LG_IMAP_FILL && opt->user_lo + i > opt->user_hi)
			break; /* more fillers than users */
		c = lg_client_new(th, workload_proto(opt->workload), i,
				  (const struct sockaddr *)&opt->addr, opt->addr_len);
		if (opt->workload == LG_IMAP_FILL) {
			c->user = opt->user_lo + i;
			c->on_event = fill_event;
			th->live++;
		}
		th->clients[th->nclients++] = c;
	}
	sh->start_us = lg_now_us();
	sh->deadline_us = sh->start_us + (uint64_t)(opt->secs * 1e6);
	atomic_store(&sh->threads_running, opt->threads);
	for (unsigned k = 0; k < opt->threads; k++)
		if (pthread_create(&tids[k], NULL, thread_main, &ths[k]) != 0)
			abort();
	if (t != NULL)
		event_base_dispatch(t->th.base); /* returns when delivery is complete or drained */
	for (unsigned k = 0; k < opt->threads; k++) {
		struct lg_thread *th = &ths[k];
		pthread_join(tids[k], NULL);
		lg_stats_merge(&total, &th->st);
		if (th->end_us > end)
			end = th->end_us;
		for (unsigned i = 0; i < th->nclients; i++)
			lg_client_free(&th->clients[i]);
		free(th->clients);
		event_free(th->deadline_ev);
		event_free(th->tick_ev);
		event_base_free(th->base);
	}
	report(opt, &total, (double)(end - sh->start_us) / 1e6, t, atomic_load(&sh->accepted));
	if (total.ops == 0)
		status = 1;
	tracker_free(&t);
	free(ths);
	free(tids);
	return status;
}

int main(int argc, char **argv)
{
	struct lg_options opt;
	struct lg_shared shared;
	char *owned[2] = { NULL, NULL };
	int status;

	status = parse_options(argc, argv, &opt, owned);
	if (status != 0) {
		free(owned[0]);
		free(owned[1]);
		return status;
	}
	/* A server that closes on us must not kill the generator with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	memset(&shared, 0, sizeof(shared));
	shared.opt = &opt;
	shared.pool = lg_msgpool_new(opt.fixed_size, opt.seed);
	if (opt.workload == LG_IMAP_IDLE)
		status = lg_run_idle(&shared);
	else
		status = run_workers(&shared);
	lg_msgpool_free(&shared.pool);
	free(owned[0]);
	free(owned[1]);
	fflush(stdout);
	return status;
}
