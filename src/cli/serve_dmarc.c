/* [dmarc] reports = on in the server: the report store's recorder wired into the mailauth
 * check, and one thread that sends the previous UTC day's aggregate reports shortly after
 * each midnight. A thread of its own rather than a timer on the main loop: building a report
 * reads SQLite, queueing it fsyncs, and neither may stall a loop. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../core/core.h"
#include "../mailauth/mailauth.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_dmarc.h"

/* After midnight, wait this long: late evaluations of the day before are in by then. */
#define DMARC_SEND_DELAY_SECONDS 300

struct serve_dmarc {
	const struct config *cfg;
	struct queue *queue;
	struct store_dmarc *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
};

/* Sends what is due (the day before today, unless sent already) and prunes. */
static void send_due(struct serve_dmarc *sd)
{
	int64_t today = store_dmarc_today();
	char err[256] = "";
	int n = dmarc_reports_send(sd->store, sd->queue, sd->cfg, today - 1, NULL);

	if (n > 0)
		log_info("msg=\"DMARC aggregate reports queued\" count=%d", n);
	if (store_dmarc_prune(sd->store, today, err, sizeof(err)) < 0)
		log_warn("msg=\"cannot prune the DMARC report store\" error=\"%s\"", err);
}

static void *dmarc_thread(void *arg)
{
	struct serve_dmarc *sd = arg;

	pthread_mutex_lock(&sd->lock);
	while (!sd->stopping) {
		pthread_mutex_unlock(&sd->lock);
		send_due(sd);
		pthread_mutex_lock(&sd->lock);
		/* the next midnight plus the delay, on the wall clock */
		int64_t now = time_wall_seconds();
		struct timespec until = { .tv_sec = (time_t)((now / 86400 + 1) * 86400 +
							     DMARC_SEND_DELAY_SECONDS) };
		while (!sd->stopping &&
		       pthread_cond_timedwait(&sd->wake, &sd->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&sd->lock);
	return NULL;
}

void serve_dmarc_send(struct serve_dmarc *sd, int64_t day, struct buf *out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int n;

	if (f == NULL) {
		buf_printf(out, "error: out of memory\n");
		return;
	}
	n = dmarc_reports_send(sd->store, sd->queue, sd->cfg, day, f);
	fclose(f);
	buf_append(out, text, len);
	free(text);
	if (n < 0)
		buf_printf(out, "error: some reports could not be queued; see the log\n");
	else
		buf_printf(out, "%d report%s queued\n", n, n == 1 ? "" : "s");
}

int serve_dmarc_start(const struct config *cfg, const char *data_dir, struct queue *q,
		      struct mailauth_settings *mailauth, struct serve_dmarc **sd_r)
{
	struct serve_dmarc *sd;
	char err[512];

	*sd_r = NULL;
	if (!cfg->dmarc_reports)
		return 0;
	sd = xcalloc(1, sizeof(*sd));
	sd->cfg = cfg;
	sd->queue = q;
	sd->store = store_dmarc_open(data_dir, err, sizeof(err));
	if (sd->store == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		free(sd);
		return -1;
	}
	pthread_mutex_init(&sd->lock, NULL);
	pthread_cond_init(&sd->wake, NULL); /* CLOCK_REALTIME: the wait is for a wall-clock time */
	if (pthread_create(&sd->thread, NULL, dmarc_thread, sd) != 0) {
		fprintf(stderr, "roost: cannot start the DMARC report thread\n");
		pthread_cond_destroy(&sd->wake);
		pthread_mutex_destroy(&sd->lock);
		store_dmarc_close(&sd->store);
		free(sd);
		return -1;
	}
	mailauth->dmarc_recorder = dmarc_report_recorder;
	mailauth->dmarc_recorder_ctx = sd->store;
	*sd_r = sd;
	return 0;
}

void serve_dmarc_stop(struct serve_dmarc **sdp)
{
	struct serve_dmarc *sd = *sdp;

	if (sd == NULL)
		return;
	pthread_mutex_lock(&sd->lock);
	sd->stopping = true;
	pthread_cond_signal(&sd->wake);
	pthread_mutex_unlock(&sd->lock);
	pthread_join(sd->thread, NULL);
	pthread_cond_destroy(&sd->wake);
	pthread_mutex_destroy(&sd->lock);
	store_dmarc_close(&sd->store);
	free(sd);
	*sdp = NULL;
}
