/* Store micro-benchmark: durable appends per second with 1 and with 20 writer threads (fsync
 * on, group commit doing its work), and the cost of a 100,000-message mailbox: rebuilding the
 * index from the Maildir, the first open in a process (full sync) and the listing call a
 * SELECT makes. Usage: store_bench [DIR] [MESSAGES_PER_THREAD] [BIG_MAILBOX]. DIR must be on
 * the file system under test (default: a new directory in /var/tmp). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct writer {
	struct store *store;
	const char *address;
	int count;
	const char *msg;
	size_t msg_len;
	int failures;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct store_account *acct;

	if (store_account_open(w->store, w->address, &acct, NULL) != STORE_OK) {
		w->failures = w->count;
		return NULL;
	}
	for (int i = 0; i < w->count; i++) {
		struct store_save *save;
		struct store_save_result res;

		if (store_save_begin(acct, "INBOX", &save, NULL) != STORE_OK ||
		    store_save_write(save, w->msg, w->msg_len, NULL) != STORE_OK ||
		    store_save_finish(&save, NULL, &res, NULL) != STORE_OK) {
			store_save_abort(&save);
			w->failures++;
		}
	}
	store_account_close(&acct);
	return NULL;
}

static double run_writers(struct store *store, const char *address, int threads, int per_thread,
			  const char *msg)
{
	pthread_t th[64];
	struct writer w[64];
	double t0 = now_s();
	int failures = 0;

	for (int i = 0; i < threads; i++) {
		w[i] = (struct writer){ store, address, per_thread, msg, strlen(msg), 0 };
		pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		failures += w[i].failures;
	}
	if (failures > 0)
		fprintf(stderr, "bench: %d failed appends\n", failures);
	return (double)(threads * per_thread - failures) / (now_s() - t0);
}

static char *make_message(size_t size)
{
	struct buf b;
	char *s;

	buf_init(&b);
	buf_append_str(&b, "From: bench@example.org\r\nTo: user@example.org\r\n"
			   "Subject: benchmark message\r\nMessage-ID: <bench@example.org>\r\n\r\n");
	while (b.len < size)
		buf_append_str(&b, "The quick brown fox jumps over the lazy dog 0123456789.\r\n");
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

/* Fills INBOX of ADDRESS with n small message files written straight into cur/ (as a restore
 * from backup would), then removes the index so the next open rebuilds it. */
static int populate_big(const char *data, const char *address, int n)
{
	struct store_settings set = { .data_dir = data };
	struct store *store = store_open(&set, NULL);
	struct store_account *acct;
	const char *text = "From: a@example.org\r\nSubject: big mailbox\r\n\r\nhello\r\n";
	size_t len = strlen(text);

	if (store == NULL || store_account_open(store, address, &acct, NULL) != STORE_OK)
		return -1;
	store_account_close(&acct);
	store_close(&store);
	for (int i = 1; i <= n; i++) {
		char *p = xasprintf("%s/mail/example.org/big/cur/1700000000.M%dP1.bench,U=%d,S=%zu:2,%s",
				    data, i, i, len, i % 3 == 0 ? "S" : "");
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		free(p);
		if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	char *idx = xasprintf("%s/mail/example.org/big/roost-index.sqlite", data);

	unlink(idx);
	free(idx);
	return 0;
}

int main(int argc, char **argv)
{
	char tmpl[] = "/var/tmp/roost-bench.XXXXXX";
	const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
	int per_thread = argc > 2 ? atoi(argv[2]) : 25;
	int big = argc > 3 ? atoi(argv[3]) : 100000;
	struct store_settings set = { .data_dir = dir };
	struct store *store;
	char *msg = make_message(4096);
	double rate1, rate20;

	if (dir == NULL || per_thread <= 0 || big <= 0) {
		fprintf(stderr, "usage: store_bench [DIR] [MESSAGES_PER_THREAD] [BIG_MAILBOX]\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	store = store_open(&set, NULL);
	if (store == NULL)
		return 1;
	printf("store benchmark in %s (4 KiB messages, fsync on)\n", dir);
	rate1 = run_writers(store, "one@example.org", 1, per_thread * 8, msg);
	printf("append, 1 writer:    %8.0f messages/s\n", rate1);
	rate20 = run_writers(store, "twenty@example.org", 20, per_thread, msg);
	printf("append, 20 writers:  %8.0f messages/s (one account, group commit; %.1fx)\n", rate20,
	       rate20 / rate1);
	store_close(&store);
	free(msg);

	if (populate_big(dir, "big@example.org", big) < 0) {
		fprintf(stderr, "bench: cannot create the big mailbox: %s\n", strerror(errno));
		return 1;
	}
	struct store_account *acct;
	struct store_msg *msgs;
	size_t n;
	double t0 = now_s();

	store = store_open(&set, NULL);
	if (store_account_open(store, "big@example.org", &acct, NULL) != STORE_OK)
		return 1;
	printf("%d messages: index rebuild from Maildir  %7.0f ms\n", big, (now_s() - t0) * 1e3);
	store_account_close(&acct);
	store_close(&store);

	t0 = now_s();
	store = store_open(&set, NULL);
	if (store_account_open(store, "big@example.org", &acct, NULL) != STORE_OK)
		return 1;
	printf("%d messages: first open in a process      %7.0f ms (full Maildir sync)\n", big,
	       (now_s() - t0) * 1e3);
	struct store_mailbox_status st;

	t0 = now_s();
	if (store_mailbox_status(acct, "INBOX", &st, NULL) != STORE_OK)
		return 1;
	printf("%d messages: STATUS                       %7.1f ms\n", big, (now_s() - t0) * 1e3);
	t0 = now_s();
	if (store_msg_list(acct, st.id, NULL, &msgs, &n, NULL) != STORE_OK)
		return 1;
	printf("%d messages: listing (SELECT)             %7.1f ms (%zu rows)\n", big,
	       (now_s() - t0) * 1e3, n);
	store_msg_list_free(&msgs, n);
	store_account_close(&acct);
	store_close(&store);
	if (argc <= 1) {
		char *cmd = xasprintf("rm -rf '%s'", dir);

		if (system(cmd) != 0)
			fprintf(stderr, "bench: cleanup failed\n");
		free(cmd);
	}
	return 0;
}
