/* The clamd client against a fake clamd on a unix socket: INSTREAM framing across chunk
 * boundaries and the empty message, the three kinds of answer, a clamd that never answers
 * (the time limit), PING/VERSION; and which [virus] clamd addresses are accepted. */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/core.h"
#include "virus/virus.h"

struct fake_clamd {
	int listen_fd;
	char path[108];
	const char *answer; /* NULL: read the stream, then never answer */
	struct buf received;
	char command[32];
};

static int read_full(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *fake_serve(void *arg)
{
	struct fake_clamd *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	size_t used = 0;
	char c;

	if (fd < 0)
		return NULL;
	while (used + 1 < sizeof(f->command) && read(fd, &c, 1) == 1 && c != '\0')
		f->command[used++] = c;
	f->command[used] = '\0';
	if (strcmp(f->command, "zINSTREAM") == 0) {
		for (;;) {
			uint32_t be;
			if (read_full(fd, &be, 4) < 0)
				break;
			uint32_t n = ntohl(be);
			if (n == 0)
				break;
			uint8_t *chunk = xmalloc(n);
			if (read_full(fd, chunk, n) == 0)
				buf_append(&f->received, chunk, n);
			free(chunk);
		}
	}
	if (f->answer != NULL) {
		if (write(fd, f->answer, strlen(f->answer) + 1) < 0)
			fprintf(stderr, "fake clamd: write failed\n");
	} else {
		sleep(3); /* longer than the client's limit */
	}
	close(fd);
	return NULL;
}

static struct virus_scanner *fake_start(struct fake_clamd *f, pthread_t *th, const char *answer)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct config cfg;
	char err[256];

	memset(f, 0, sizeof(*f));
	buf_init(&f->received);
	f->answer = answer;
	snprintf(f->path, sizeof(f->path), "/tmp/roost-fake-clamd.%d", (int)getpid());
	unlink(f->path);
	memcpy(un.sun_path, f->path, strlen(f->path) + 1);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&un, sizeof(un)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(pthread_create(th, NULL, fake_serve, f), 0);
	config_defaults(&cfg);
	free(cfg.virus_clamd);
	cfg.virus_clamd = xasprintf("unix:%s", f->path);
	cfg.virus_timeout = 1;
	struct virus_scanner *s = virus_scanner_new(&cfg, err, sizeof(err));
	assert_non_null(s);
	config_free(&cfg);
	return s;
}

/* After the join, what the fake received may be read. */
static void fake_join(struct fake_clamd *f, pthread_t th)
{
	(void)f;
	pthread_join(th, NULL);
}

static void fake_stop(struct fake_clamd *f, struct virus_scanner **s)
{
	close(f->listen_fd);
	unlink(f->path);
	buf_free(&f->received);
	virus_scanner_free(s);
}

static void test_instream_chunks_and_found(void **state)
{
	struct fake_clamd f;
	pthread_t th;
	size_t len = 3 * 64 * 1024 + 17; /* several chunks and a short last one */
	uint8_t *data = xmalloc(len);
	char name[128];

	(void)state;
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7);
	struct virus_scanner *s = fake_start(&f, &th, "stream: Test.Sig FOUND");
	assert_int_equal(virus_scan(s, data, len, name, sizeof(name)), VIRUS_SCAN_INFECTED);
	assert_string_equal(name, "Test.Sig");
	fake_join(&f, th);
	assert_string_equal(f.command, "zINSTREAM");
	assert_int_equal(f.received.len, len);
	assert_memory_equal(f.received.data, data, len);
	fake_stop(&f, &s);
	free(data);
}

static void test_clean_empty_and_error(void **state)
{
	struct fake_clamd f;
	pthread_t th;
	char name[128] = "";

	(void)state;
	struct virus_scanner *s = fake_start(&f, &th, "stream: OK");
	assert_int_equal(virus_scan(s, (const uint8_t *)"", 0, name, sizeof(name)),
			 VIRUS_SCAN_CLEAN);
	fake_join(&f, th);
	assert_int_equal(f.received.len, 0);
	fake_stop(&f, &s);

	s = fake_start(&f, &th, "INSTREAM size limit exceeded. ERROR");
	assert_int_equal(virus_scan(s, (const uint8_t *)"x", 1, name, sizeof(name)),
			 VIRUS_SCAN_ERROR);
	assert_string_equal(name, "clamd: INSTREAM size limit exceeded. ERROR");
	fake_join(&f, th);
	fake_stop(&f, &s);
}

static void test_silent_clamd_hits_the_time_limit(void **state)
{
	struct fake_clamd f;
	pthread_t th;
	char name[128] = "";

	(void)state;
	struct virus_scanner *s = fake_start(&f, &th, NULL);
	assert_int_equal(virus_scan(s, (const uint8_t *)"abc", 3, name, sizeof(name)),
			 VIRUS_SCAN_ERROR);
	/* it gave up at its own limit, not when the fake closed without a word */
	assert_non_null(strstr(name, "timed out"));
	fake_join(&f, th);
	fake_stop(&f, &s);
}

static void test_ping_then_version(void **state)
{
	struct fake_clamd f;
	pthread_t th;
	char version[64], err[256];

	(void)state;
	/* one connection per command: the fake answers the PING only, so VERSION fails */
	struct virus_scanner *s = fake_start(&f, &th, "PONG");
	assert_int_equal(virus_scanner_ping(s, version, sizeof(version), err, sizeof(err)), -1);
	fake_join(&f, th);
	assert_string_equal(f.command, "zPING");
	fake_stop(&f, &s);
}

static void test_addresses(void **state)
{
	static const struct {
		const char *text;
		bool ok;
	} cases[] = {
		{ "unix:/run/clamav/clamd.ctl", true }, { "127.0.0.1:3310", true },
		{ "[::1]:3310", true },			{ "unix:relative", false },
		{ "clamd.example:3310", false },	{ "127.0.0.1", false },
		{ "127.0.0.1:0", false },		{ "127.0.0.1:65536", false },
	};
	struct config cfg;
	char err[256];

	(void)state;
	config_defaults(&cfg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		free(cfg.virus_clamd);
		cfg.virus_clamd = xstrdup(cases[i].text);
		struct virus_scanner *s = virus_scanner_new(&cfg, err, sizeof(err));
		if (cases[i].ok)
			assert_non_null(s);
		else
			assert_null(s);
		virus_scanner_free(&s);
	}
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instream_chunks_and_found),
		cmocka_unit_test(test_clean_empty_and_error),
		cmocka_unit_test(test_silent_clamd_hits_the_time_limit),
		cmocka_unit_test(test_ping_then_version),
		cmocka_unit_test(test_addresses),
	};
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
