/* One-line structured logs to stderr. The level is process-wide configuration, set once at
 * start-up before any thread runs, and read-only afterwards. */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "core.h"

static enum log_level log_threshold = LOG_INFO;

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char line[2048];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level < log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so that lines of different threads do not interleave. */
	fprintf(stderr, "ts=%s.%03ldZ level=%s %s\n", stamp, ts.tv_nsec / 1000000, names[level],
		line);
}

bool log_limiter_allow(struct log_limiter *lim, uint32_t interval_ms, uint64_t *suppressed_r)
{
	uint64_t now = time_now_ms();
	uint64_t next = atomic_load(&lim->next_ms);

	/* Of the threads that find the interval over, exactly one wins the exchange and writes. */
	if (now < next || !atomic_compare_exchange_strong(&lim->next_ms, &next, now + interval_ms)) {
		atomic_fetch_add(&lim->suppressed, 1);
		return false;
	}
	*suppressed_r = atomic_exchange(&lim->suppressed, 0);
	return true;
}

uint64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t time_wall_seconds(void)
{
	return (int64_t)time(NULL);
}
