/* One-line structured logs to stderr. The level and the format are process-wide
 * configuration, set once at start-up before any thread runs, and read-only afterwards.
 * Call sites write logfmt (key=value, values with spaces in double quotes); with
 * [log] format = json the finished line is converted here, so no call site knows the format. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core.h"

static enum log_level log_threshold = LOG_INFO;
static enum log_format log_output_format = LOG_FORMAT_LOGFMT;

void log_set_format(enum log_format format)
{
	log_output_format = format;
}

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
	if (log_output_format == LOG_FORMAT_JSON) {
		char full[2200];
		char json[6 * sizeof(full) + 64]; /* worst case: every octet as \ufffd */

		snprintf(full, sizeof(full), "ts=%s.%03ldZ level=%s %s", stamp,
			 ts.tv_nsec / 1000000, names[level], line);
		log_logfmt_to_json(full, json, sizeof(json));
		fprintf(stderr, "%s\n", json);
		return;
	}
	/* One fprintf per line so that lines of different threads do not interleave. */
	fprintf(stderr, "ts=%s.%03ldZ level=%s %s\n", stamp, ts.tv_nsec / 1000000, names[level],
		line);
}

/* ---------------- logfmt to JSON ---------------- */

struct json_out {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void json_put(struct json_out *o, const char *s, size_t n)
{
	if (o->overflow || n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* Length of the valid UTF-8 sequence at s (at most n octets), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	size_t want;
	unsigned min_second = 0x80, max_second = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		want = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		want = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		want = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		min_second = 0xa0; /* overlong */
	else if (s[0] == 0xed)
		max_second = 0x9f; /* surrogates */
	else if (s[0] == 0xf0)
		min_second = 0x90;
	else if (s[0] == 0xf4)
		max_second = 0x8f;
	if (n < want || s[1] < min_second || s[1] > max_second)
		return 0;
	for (size_t i = 2; i < want; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return want;
}

/* Writes s[0..n) as a JSON string; logfmt escapes (\" and \\) are undone on the way when
 * unescape is set. */
static void json_string(struct json_out *o, const char *s, size_t n, bool unescape)
{
	const unsigned char *u = (const unsigned char *)s;

	json_put(o, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		if (unescape && c == '\\' && i + 1 < n && (u[i + 1] == '"' || u[i + 1] == '\\')) {
			c = u[i + 1];
			i++;
		}
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			json_put(o, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			char esc[8];
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			json_put(o, esc, 6);
			i++;
		} else {
			size_t seq = utf8_sequence(u + i, n - i);
			if (seq == 0) {
				json_put(o, "\\ufffd", 6);
				i++;
			} else {
				json_put(o, s + i, seq);
				i += seq;
			}
		}
	}
	json_put(o, "\"", 1);
}

/* The end of a quoted value starting after its opening quote: the first '"' not escaped by a
 * backslash, or the end of the line. */
static size_t quoted_length(const char *s)
{
	size_t i = 0;

	while (s[i] != '\0' && s[i] != '"') {
		if (s[i] == '\\' && (s[i + 1] == '"' || s[i + 1] == '\\'))
			i++;
		i++;
	}
	return i;
}

int log_logfmt_to_json(const char *line, char *out, size_t outlen)
{
	struct json_out o = { out, 0, outlen, outlen == 0 };
	bool first = true;
	const char *p = line;

	if (outlen > 0)
		out[0] = '\0';
	json_put(&o, "{", 1);
	while (*p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		size_t key_len = strcspn(p, " =");
		if (!first)
			json_put(&o, ",", 1);
		first = false;
		json_string(&o, p, key_len, false);
		json_put(&o, ":", 1);
		p += key_len;
		if (*p != '=') {
			json_put(&o, "true", 4);
			continue;
		}
		p++;
		if (*p == '"') {
			size_t n = quoted_length(p + 1);
			json_string(&o, p + 1, n, true);
			p += 1 + n;
			if (*p == '"')
				p++;
		} else {
			size_t n = strcspn(p, " ");
			json_string(&o, p, n, false);
			p += n;
		}
	}
	json_put(&o, "}", 1);
	if (o.overflow) {
		if (outlen >= 3)
			memcpy(out, "{}", 3);
		return -1;
	}
	return 0;
}

char *log_clean(const char *text, char *dst, size_t dstlen)
{
	size_t n = 0;

	if (dstlen == 0)
		return dst;
	for (; text != NULL && *text != '\0' && n + 1 < dstlen; text++) {
		unsigned char c = (unsigned char)*text;
		dst[n++] = c == '"' ? '\'' : c == '\\' ? '/' : c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	dst[n] = '\0';
	return dst;
}

/* ---------------- Message-ID while the header streams ---------------- */

static void msgid_keep(struct log_msgid_scan *scan, unsigned char c)
{
	/* One logfmt token: nothing that would end or quote it. */
	if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || scan->len >= LOG_MSGID_MAX)
		return;
	scan->value[scan->len++] = (char)c;
	scan->value[scan->len] = '\0';
}

void log_msgid_feed(struct log_msgid_scan *scan, const void *data, size_t len)
{
	static const char field[] = "message-id:";
	const unsigned char *in = data;

	if (!scan->started) {
		scan->started = true;
		scan->at_line_start = true;
	}
	for (size_t i = 0; i < len && !scan->done; i++) {
		unsigned char c = in[i];
		if (scan->at_line_start) {
			bool folded = c == ' ' || c == '\t';
			if (c == '\r' || c == '\n' || (scan->capturing && !folded)) {
				scan->done = true; /* the header ended, or the field did */
				break;
			}
			scan->at_line_start = false;
			scan->matched = folded ? 0xff : 0;
		}
		if (c == '\n') {
			scan->at_line_start = true;
		} else if (scan->capturing) {
			msgid_keep(scan, c);
		} else if (scan->matched < sizeof(field) - 1) {
			char lower = c >= 'A' && c <= 'Z' ? (char)(c + 32) : (char)c;
			scan->matched = lower == field[scan->matched] ? scan->matched + 1 : 0xff;
			if (scan->matched == sizeof(field) - 1)
				scan->capturing = true;
		}
	}
}

const char *log_msgid_value(const struct log_msgid_scan *scan)
{
	return scan->len > 0 ? scan->value : "";
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
