/* Core runtime shared by every layer: allocation that aborts on exhaustion, growable byte
 * buffers, length-carrying strings, base64, logging and small text helpers. Nothing here
 * knows about mail, sockets or files beyond stderr. */
#ifndef ROOST_CORE_H
#define ROOST_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "limits.h"

#define ROOST_VERSION "0.1.0"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation: out of memory is not recoverable for a mail server, so we abort ---- */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);
/* printf into a fresh heap string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- growable byte buffer; owner calls buf_free ---- */
struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};
void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_byte(struct buf *b, uint8_t c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* NUL-terminates without counting the NUL in len; returns data as text. */
const char *buf_cstr(struct buf *b);
/* Releases the memory when the buffer grew beyond keep bytes (idle sessions stay small). */
void buf_shrink(struct buf *b, size_t keep);

/* ---- base64 (RFC 4648, strict: no whitespace, correct padding) ---- */
size_t b64_encoded_len(size_t raw_len);
/* Appends the encoding of data to out. */
void b64_encode(struct buf *out, const uint8_t *data, size_t len);
/* Decodes text into out; -1 on any invalid character, bad padding or bad length. */
int b64_decode(struct buf *out, const char *text, size_t len);

/* ---- text helpers ---- */
bool str_ieq(const char *a, const char *b);
bool str_nieq(const char *a, const char *b, size_t n);
bool str_has_prefix_ci(const char *s, const char *prefix);
/* Parses a whole decimal number with no sign; -1 on junk or overflow past max. */
int str_to_u64(const char *s, size_t len, uint64_t max, uint64_t *value_r);
/* Writes an error message into a caller's buffer; nothing when err is NULL or errlen 0 (the
 * caller did not ask for a reason). */
void err_setf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The value of one hexadecimal digit, either case; -1 for any other character. */
int hex_digit_value(int c);
/* Constant-time comparison of two equal-length byte strings. */
bool mem_equal_ct(const void *a, const void *b, size_t len);
/* Overwrites memory the compiler may not optimise away (passwords). */
void mem_wipe(void *p, size_t len);

/* ---- logging: one line per event, key=value pairs, to stderr ---- */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* [log] format: logfmt (key=value, the default) or one JSON object per line. Set once at
 * start-up like the level; call sites always write logfmt and log_msg converts. */
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };
void log_set_format(enum log_format format);
/* Converts one logfmt line (key=value, key="quoted \"value\"") into a JSON object, keys and
 * values as JSON strings; any input gives valid JSON (a word without "=" becomes a key with
 * the value true, invalid UTF-8 becomes U+FFFD). Returns 0, or -1 when out was too small (out
 * then holds "{}" if it fits). */
int log_logfmt_to_json(const char *line, char *out, size_t outlen);
/* Copies text for a quoted logfmt value: '"' becomes '\'', '\\' becomes '/', control
 * characters become spaces; truncated to fit. Returns dst. */
char *log_clean(const char *text, char *dst, size_t dstlen);

/* Finds the Message-ID header field while a message's header block streams past, keeping at
 * most LOG_MSGID_MAX octets of its value (white space, quotes and control characters dropped
 * so the value is one logfmt token). Zero it to start; feed it any chunking of the message;
 * it ignores everything after the header block. */
#define LOG_MSGID_MAX 256
struct log_msgid_scan {
	bool done;	/* header block over, or the field's value complete */
	bool at_line_start;
	bool started;	/* the first octet was seen */
	bool capturing; /* inside the Message-ID field's value */
	uint8_t matched; /* octets of "message-id:" matched on this line; 0xff: not this field */
	size_t len;
	char value[LOG_MSGID_MAX + 1];
};
void log_msgid_feed(struct log_msgid_scan *scan, const void *data, size_t len);
/* The value found so far, or "" (never NULL). */
const char *log_msgid_value(const struct log_msgid_scan *scan);

/* For events a peer can repeat at will (refused connections, failed accepts): at most one line
 * per interval, the line telling how many were held back since the previous one. A zeroed
 * (static) limiter is ready to use; any thread may call. */
struct log_limiter {
	_Atomic uint64_t next_ms;    /* monotonic time before which lines are held back */
	_Atomic uint64_t suppressed; /* held back since the last line written */
};
/* true: write the line now, mentioning *suppressed_r; false: it was counted instead. */
bool log_limiter_allow(struct log_limiter *lim, uint32_t interval_ms, uint64_t *suppressed_r);

/* ---- time ---- */
uint64_t time_now_ms(void);      /* monotonic milliseconds */
int64_t time_wall_seconds(void); /* seconds since the epoch */
/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian calendar (calendar.c). */
int64_t time_days_from_civil(int64_t year, unsigned month, unsigned day);

/* ---- sockets with a deadline (deadline_io.c; deadline in time_now_ms units): -1 with errno
 * set on failure, ETIMEDOUT when the deadline passed ---- */
/* 0 when fd is ready for events (POLLIN, POLLOUT) before the deadline. */
int fd_wait_ready(int fd, short events, uint64_t deadline);
/* A connected non-blocking, close-on-exec stream socket to addr; the caller closes it. */
int fd_connect_within(const struct sockaddr *addr, socklen_t addr_len, uint64_t deadline);

/* ---- files (fs.c): -1 with errno set on failure ---- */
/* fsync of a directory, so that what was renamed or created in it survives a crash. */
int fs_fsync_dir(const char *path);
/* mkdir -p, mode 0700 for what it creates; existing directories are left as they are. */
int fs_mkdir_p(const char *path);

/* The counters behind /metrics, which every layer increments. */
#include "metrics.h"

#endif
