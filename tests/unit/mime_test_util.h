/* Code shared by the MIME unit tests: loading test messages from tests/data/mime/. */
#ifndef ROOST_MIME_TEST_UTIL_H
#define ROOST_MIME_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

/* CPU milliseconds this thread has used. The CPU-exhaustion tests (CVE-2020-12100 and
 * friends) bound the work a hostile message costs by CPU time, not wall time: a machine busy
 * with other work stretches wall time without any regression. */
static inline uint64_t mime_test_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads tests/data/mime/<name> (tests run from the repository root); aborts the test run
 * when the file is missing, since every test depending on it would be meaningless. */
static inline uint8_t *mime_test_load(const char *name, size_t *len_r)
{
	char *path = xasprintf("tests/data/mime/%s", name);
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	long n;

	if (f == NULL) {
		fprintf(stderr, "cannot open %s (run tests from the repository root)\n", path);
		abort();
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	data = xmalloc((size_t)n + 1);
	if (fread(data, 1, (size_t)n, f) != (size_t)n)
		abort();
	data[n] = '\0';
	fclose(f);
	free(path);
	*len_r = (size_t)n;
	return data;
}

/* Converts bare LF line ends to CRLF (a store keeps messages with CRLF). */
static inline uint8_t *mime_test_crlf(const uint8_t *in, size_t len, size_t *len_r)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			buf_append_byte(&b, '\r');
		buf_append_byte(&b, in[i]);
	}
	buf_cstr(&b);
	*len_r = b.len;
	return b.data;
}

/* Checks that s is exactly one IMAP parenthesised list built from NIL, numbers, quoted strings
 * and literals (the shape of ENVELOPE and BODYSTRUCTURE), separated as the grammar allows. */
static inline bool mime_test_wellformed(const uint8_t *s, size_t len)
{
	size_t i = 0;
	int depth = 0;

	if (len == 0 || s[0] != '(')
		return false;
	while (i < len) {
		uint8_t c = s[i];
		if (c == '(') {
			depth++;
			i++;
		} else if (c == ')') {
			if (--depth < 0)
				return false;
			i++;
			if (depth == 0)
				return i == len;
		} else if (c == ' ') {
			i++;
		} else if (c == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\')
					i++;
				else if (s[i] == '\r' || s[i] == '\n' || s[i] == 0 || s[i] >= 0x80)
					return false;
			}
			if (i >= len)
				return false;
			i++;
		} else if (c == '{') {
			size_t n = 0;
			for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
				n = n * 10 + (size_t)(s[i] - '0');
			if (i + 3 > len || s[i] != '}' || s[i + 1] != '\r' || s[i + 2] != '\n')
				return false;
			i += 3;
			if (n > len - i || memchr(s + i, 0, n) != NULL)
				return false;
			i += n;
		} else if (len - i >= 3 && memcmp(s + i, "NIL", 3) == 0) {
			i += 3;
		} else if (c >= '0' && c <= '9') {
			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
		} else {
			return false;
		}
	}
	return false;
}

#endif
