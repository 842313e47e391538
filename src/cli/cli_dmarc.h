/* DMARC aggregate reports on the cli side (private to cli/): the report store in the data
 * directory (store/, through dmarc_send.c), building and queueing the reports (dmarc_send.c), the server's
 * recorder and daily run (serve_dmarc.c). mailauth/ builds the XML and the mail. */
#ifndef ROOST_CLI_DMARC_H
#define ROOST_CLI_DMARC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../config/config.h"
#include "../mailauth/mailauth.h"

struct queue;
struct store_dmarc;

/* dmarc_recorder_fn over a struct store_dmarc: counts the row on today's date (a failure is
 * logged, the delivery goes on). */
void dmarc_report_recorder(void *ctx, const struct dmarc_report_row *row);

/* [dmarc] report_from, or postmaster@[server] hostname. Heap string. */
char *dmarc_report_sender(const struct config *cfg);
/* Appends the XML report of domain for day to xml_r: 1 built, 0 nothing recorded, -1. */
int dmarc_report_build(struct store_dmarc *st, const struct config *cfg, int64_t day,
		       const char *domain, struct buf *xml_r, struct dmarc_record *policy_r,
		       char *err, size_t errlen);
/* Queues the reports of day not sent before, each domain then marked sent; a line per
 * destination to out when not NULL. Returns how many messages were queued, -1 when some
 * domain failed (it is tried again on the next run). */
int dmarc_reports_send(struct store_dmarc *st, struct queue *q, const struct config *cfg,
		       int64_t day, FILE *out);

/* With [dmarc] reports = on: opens the store, sets the recorder in the mailauth settings and
 * starts the thread that sends the previous day's reports after each UTC midnight (and at
 * start, for a day missed while the server was down). 0 when off or started; -1 (stderr) when
 * the store cannot be opened. */
struct serve_dmarc;
struct mailauth_settings;
int serve_dmarc_start(const struct config *cfg, const char *data_dir, struct queue *q,
		      struct mailauth_settings *mailauth, struct serve_dmarc **sd_r);
void serve_dmarc_stop(struct serve_dmarc **sd);
/* The reports of day not sent yet, queued now through the server's queue (the status
 * socket's "dmarc-send DAY"): a line per destination, then "N reports queued", to out. */
void serve_dmarc_send(struct serve_dmarc *sd, int64_t day, struct buf *out);

#endif
