/* The counters behind /metrics (see metrics.h): one static table of C11 atomics, incremented
 * without a lock from any thread, and its text exposition (Prometheus format 0.0.4). */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

/* Upper bounds of the histogram buckets in nanoseconds, and their le="" labels. One set for
 * every histogram: the latencies measured (an fsync, a group commit, a push to an idling
 * client) all lie between a tenth of a millisecond and a few seconds. */
static const uint64_t bucket_bound_ns[] = {
	100000,	   250000,    500000,	  1000000,    2500000,	  5000000,
	10000000,  25000000,  50000000,	  100000000,  250000000,  500000000,
	1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const bucket_label[] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
	"0.05",	  "0.1",     "0.25",   "0.5",	"1",	  "2.5",   "5",	    "10",
};
#define BUCKETS (sizeof(bucket_bound_ns) / sizeof(bucket_bound_ns[0]))

struct histogram {
	atomic_uint_fast64_t bucket[BUCKETS + 1]; /* not cumulative; the last one is +Inf */
	atomic_uint_fast64_t sum_ns;
};

static struct {
	atomic_uint_fast64_t connections[METRICS_PROTO_COUNT];
	atomic_int_fast64_t sessions[METRICS_PROTO_COUNT];
	atomic_uint_fast64_t logins_ok[METRICS_PROTO_COUNT];
	atomic_uint_fast64_t logins_failed[METRICS_PROTO_COUNT];
	atomic_uint_fast64_t accepted, delivered, deferred, bounced;
	atomic_uint_fast64_t rejected[METRICS_REJECT_COUNT];
	atomic_uint_fast64_t spam[METRICS_SPAM_COUNT];
	atomic_int_fast64_t pool_queued;
	atomic_uint_fast64_t queue_entries, queue_oldest_age;
	struct histogram hist[METRICS_HIST_COUNT];
} metrics;

static const char *const protocol_label[METRICS_PROTO_COUNT] = {
	"smtp", "submission", "lmtp", "imap", "pop3",
};
static const char *const reject_label[METRICS_REJECT_COUNT] = {
	"recipient", "relay", "size", "greylist", "mailauth", "virus", "spam", "other",
};
static const char *const spam_label[METRICS_SPAM_COUNT] = { "ham", "spam", "junk" };

static const struct {
	const char *name, *help;
} hist_meta[METRICS_HIST_COUNT] = {
	{ "roost_store_commit_duration_seconds",
	  "Time of one group commit of the mail store (index transaction and renames)." },
	{ "roost_fsync_duration_seconds", "Time of one fsync of a message file." },
	{ "roost_push_latency_seconds",
	  "Time from a store change posted by the committing thread to the loop of a selected "
	  "or NOTIFY session taking it (IDLE writes it at once)." },
};

enum metrics_protocol metrics_protocol_named(const char *name)
{
	static const struct {
		const char *name;
		enum metrics_protocol proto;
	} names[] = {
		{ "smtp", METRICS_PROTO_SMTP },	      { "submission", METRICS_PROTO_SUBMISSION },
		{ "submissions", METRICS_PROTO_SUBMISSION }, { "lmtp", METRICS_PROTO_LMTP },
		{ "imap", METRICS_PROTO_IMAP },	      { "imaps", METRICS_PROTO_IMAP },
		{ "pop3", METRICS_PROTO_POP3 },	      { "pop3s", METRICS_PROTO_POP3 },
	};

	for (size_t i = 0; name != NULL && i < ARRAY_LEN(names); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].proto;
	return METRICS_PROTO_COUNT;
}

static void add(atomic_uint_fast64_t *v)
{
	atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
}

void metrics_connection_opened(const char *listen_name)
{
	enum metrics_protocol p = metrics_protocol_named(listen_name);

	if (p == METRICS_PROTO_COUNT)
		return;
	add(&metrics.connections[p]);
	atomic_fetch_add_explicit(&metrics.sessions[p], 1, memory_order_relaxed);
}

void metrics_connection_closed(const char *listen_name)
{
	enum metrics_protocol p = metrics_protocol_named(listen_name);

	if (p != METRICS_PROTO_COUNT)
		atomic_fetch_sub_explicit(&metrics.sessions[p], 1, memory_order_relaxed);
}

void metrics_login(const char *proto, bool ok)
{
	enum metrics_protocol p = metrics_protocol_named(proto);

	if (p != METRICS_PROTO_COUNT)
		add(ok ? &metrics.logins_ok[p] : &metrics.logins_failed[p]);
}

void metrics_message_accepted(void) { add(&metrics.accepted); }
void metrics_message_delivered(void) { add(&metrics.delivered); }
void metrics_message_deferred(void) { add(&metrics.deferred); }
void metrics_message_bounced(void) { add(&metrics.bounced); }

void metrics_message_rejected(enum metrics_reject_reason reason)
{
	if (reason < METRICS_REJECT_COUNT)
		add(&metrics.rejected[reason]);
}

enum metrics_reject_reason metrics_reject_reason_of_check(const char *check_name)
{
	for (size_t i = 0; check_name != NULL && i < METRICS_REJECT_COUNT; i++)
		if (strcmp(check_name, reject_label[i]) == 0)
			return (enum metrics_reject_reason)i;
	return METRICS_REJECT_OTHER;
}

void metrics_spam_verdict(enum metrics_spam_verdict verdict)
{
	if (verdict < METRICS_SPAM_COUNT)
		add(&metrics.spam[verdict]);
}

void metrics_pool_queued(int delta)
{
	atomic_fetch_add_explicit(&metrics.pool_queued, delta, memory_order_relaxed);
}

void metrics_set_queue(uint64_t entries, uint64_t oldest_age_seconds)
{
	atomic_store_explicit(&metrics.queue_entries, entries, memory_order_relaxed);
	atomic_store_explicit(&metrics.queue_oldest_age, oldest_age_seconds, memory_order_relaxed);
}

uint64_t metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void metrics_observe_ns(enum metrics_histogram h, uint64_t ns)
{
	size_t b = 0;

	if (h >= METRICS_HIST_COUNT)
		return;
	while (b < BUCKETS && ns > bucket_bound_ns[b])
		b++;
	add(&metrics.hist[h].bucket[b]);
	atomic_fetch_add_explicit(&metrics.hist[h].sum_ns, ns, memory_order_relaxed);
}

void metrics_observe_since(enum metrics_histogram h, uint64_t start_ns)
{
	uint64_t now = metrics_now_ns();

	metrics_observe_ns(h, now > start_ns ? now - start_ns : 0);
}

void metrics_reset_for_tests(void)
{
	memset(&metrics, 0, sizeof(metrics));
}

/* ---- exposition ---- */

static uint64_t load(atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void header(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(struct buf *out, const char *name, const char *type, const char *help,
		   uint64_t value)
{
	header(out, name, type, help);
	buf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

/* One sample per label value: name{label="value"} count. */
static void labelled(struct buf *out, const char *name, const char *label,
		     const char *const *values, atomic_uint_fast64_t *counts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
			   (unsigned long long)load(&counts[i]));
}

static void format_protocols(struct buf *out)
{
	header(out, "roost_connections_total", "counter", "Connections accepted, per protocol.");
	labelled(out, "roost_connections_total", "protocol", protocol_label, metrics.connections,
		 METRICS_PROTO_COUNT);
	header(out, "roost_sessions", "gauge", "Connections open now, per protocol.");
	for (size_t i = 0; i < METRICS_PROTO_COUNT; i++) {
		int_fast64_t v = atomic_load_explicit(&metrics.sessions[i], memory_order_relaxed);
		buf_printf(out, "roost_sessions{protocol=\"%s\"} %lld\n", protocol_label[i],
			   (long long)(v > 0 ? v : 0));
	}
	header(out, "roost_logins_total", "counter", "Logins, per protocol and result.");
	for (size_t i = 0; i < METRICS_PROTO_COUNT; i++) {
		buf_printf(out, "roost_logins_total{protocol=\"%s\",result=\"ok\"} %llu\n",
			   protocol_label[i], (unsigned long long)load(&metrics.logins_ok[i]));
		buf_printf(out, "roost_logins_total{protocol=\"%s\",result=\"failed\"} %llu\n",
			   protocol_label[i], (unsigned long long)load(&metrics.logins_failed[i]));
	}
}

static void format_messages(struct buf *out)
{
	scalar(out, "roost_messages_accepted_total", "counter",
	       "Messages accepted from clients (SMTP, submission, LMTP).",
	       load(&metrics.accepted));
	header(out, "roost_messages_rejected_total", "counter",
	       "Messages or recipients refused, per reason.");
	labelled(out, "roost_messages_rejected_total", "reason", reject_label, metrics.rejected,
		 METRICS_REJECT_COUNT);
	scalar(out, "roost_messages_delivered_total", "counter",
	       "Deliveries done: to a local mailbox or to a remote server.",
	       load(&metrics.delivered));
	scalar(out, "roost_messages_deferred_total", "counter",
	       "Remote delivery attempts that failed temporarily.", load(&metrics.deferred));
	scalar(out, "roost_messages_bounced_total", "counter",
	       "Messages given up on (permanent failure or expiry) and reported to the sender.",
	       load(&metrics.bounced));
	scalar(out, "roost_queue_messages", "gauge", "Messages in the outbound queue.",
	       load(&metrics.queue_entries));
	scalar(out, "roost_queue_oldest_age_seconds", "gauge",
	       "Age of the oldest message in the outbound queue.",
	       load(&metrics.queue_oldest_age));
	header(out, "roost_spam_verdicts_total", "counter", "Spam check verdicts: ham or spam per message (X-Spam-Status), junk per mailbox it was "
	       "filed into Junk for.");
	labelled(out, "roost_spam_verdicts_total", "verdict", spam_label, metrics.spam,
		 METRICS_SPAM_COUNT);
	int_fast64_t queued = atomic_load_explicit(&metrics.pool_queued, memory_order_relaxed);
	scalar(out, "roost_pool_queued_jobs", "gauge",
	       "Worker-pool jobs waiting for a thread.", (uint64_t)(queued > 0 ? queued : 0));
}

static void format_histogram(struct buf *out, enum metrics_histogram h)
{
	struct histogram *hg = &metrics.hist[h];
	const char *name = hist_meta[h].name;
	uint64_t cumulative = 0;

	header(out, name, "histogram", hist_meta[h].help);
	for (size_t b = 0; b < BUCKETS; b++) {
		cumulative += load(&hg->bucket[b]);
		buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, bucket_label[b],
			   (unsigned long long)cumulative);
	}
	cumulative += load(&hg->bucket[BUCKETS]);
	buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
	buf_printf(out, "%s_sum %.9f\n", name, (double)load(&hg->sum_ns) / 1e9);
	/* _count from the buckets read, so that it equals the +Inf bucket in every scrape */
	buf_printf(out, "%s_count %llu\n", name, (unsigned long long)cumulative);
}

void metrics_format(struct buf *out)
{
	format_protocols(out);
	format_messages(out);
	for (size_t h = 0; h < METRICS_HIST_COUNT; h++)
		format_histogram(out, (enum metrics_histogram)h);
}
