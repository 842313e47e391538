/* Delivery status notifications (RFC 3464, RFC 3462 multipart/report): the report sent to the
 * sender when recipients failed for good, or are delayed. It goes out from the null sender
 * (RFC 5321 §4.5.5), so a report can never cause another report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../core/core.h"
#include "queue_internal.h"

static void rfc5322_date(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* "5.1.1" out of "550 5.1.1 text"; a code-derived default otherwise. */
static void status_of(const char *reply, bool delayed, char *out, size_t outlen)
{
	if (reply && strlen(reply) > 9 && reply[3] == ' ' && (reply[4] == '4' || reply[4] == '5') &&
	    reply[5] == '.') {
		size_t n = strcspn(reply + 4, " ");
		snprintf(out, outlen, "%.*s", (int)n, reply + 4);
		return;
	}
	snprintf(out, outlen, "%s", delayed ? "4.0.0" : "5.0.0");
}

/* The original message's header block (RET=HDRS), up to the first empty line. */
static size_t header_length(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n')
			return i + 2;
	return len;
}

void queue_dsn_compose(const struct queue_runner_config *cfg, const struct queue_entry *e,
		       const uint8_t *data, bool delay_warning, const size_t *rcpt_index,
		       size_t count, struct buf *out)
{
	char date[64], arrived[64], boundary[64];
	uint32_t rnd = 0;
	bool headers_only = e->ret != NULL && str_ieq(e->ret, "HDRS");

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)time_now_ms();
	snprintf(boundary, sizeof(boundary), "%s.%08x/%s", e->id, rnd, cfg->hostname);
	rfc5322_date(time_wall_seconds(), date, sizeof(date));
	rfc5322_date(e->arrived, arrived, sizeof(arrived));

	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", cfg->hostname);
	buf_printf(out, "To: <%s>\r\n", e->sender);
	buf_printf(out, "Subject: %s\r\n",
		   delay_warning ? "Delayed Mail (still being retried)"
				 : "Undelivered Mail Returned to Sender");
	buf_printf(out, "Date: %s\r\n", date);
	buf_printf(out, "Message-ID: <%s.%08x.dsn@%s>\r\n", e->id, rnd, cfg->hostname);
	buf_printf(out, "Auto-Submitted: auto-replied\r\n");
	buf_printf(out, "MIME-Version: 1.0\r\n");
	buf_printf(out,
		   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		   "\tboundary=\"%s\"\r\n\r\n",
		   boundary);
	buf_printf(out, "This is a MIME-encapsulated message.\r\n\r\n");

	/* 1: for people */
	buf_printf(out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	buf_printf(out, "This is the mail system at host %s.\r\n\r\n", cfg->hostname);
	if (delay_warning)
		buf_printf(out, "Your message could not be delivered yet to the recipients below.\r\n"
				"It will be retried; you do not need to send it again.\r\n\r\n");
	else
		buf_printf(out, "Your message could not be delivered to the recipients below.\r\n"
				"This is a permanent error.\r\n\r\n");
	for (size_t k = 0; k < count; k++) {
		const struct queue_rcpt *r = &e->rcpts[rcpt_index[k]];
		buf_printf(out, "<%s>: %s\r\n", r->address,
			   r->last_reply ? r->last_reply : "no reply recorded");
	}
	buf_printf(out, "\r\n");

	/* 2: for programs (RFC 3464 §2) */
	buf_printf(out, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
	buf_printf(out, "Reporting-MTA: dns; %s\r\n", cfg->hostname);
	if (e->envid)
		buf_printf(out, "Original-Envelope-Id: %s\r\n", e->envid);
	buf_printf(out, "Arrival-Date: %s\r\n", arrived);
	for (size_t k = 0; k < count; k++) {
		const struct queue_rcpt *r = &e->rcpts[rcpt_index[k]];
		char status[32];
		status_of(r->last_reply, delay_warning, status, sizeof(status));
		buf_printf(out, "\r\n");
		if (r->orcpt[0])
			buf_printf(out, "Original-Recipient: %s\r\n", r->orcpt);
		buf_printf(out, "Final-Recipient: rfc822; %s\r\n", r->address);
		buf_printf(out, "Action: %s\r\n", delay_warning ? "delayed" : "failed");
		buf_printf(out, "Status: %s\r\n", status);
		if (r->remote_host)
			buf_printf(out, "Remote-MTA: dns; %s\r\n", r->remote_host);
		if (r->last_reply && r->last_reply[0] >= '2' && r->last_reply[0] <= '5' &&
		    r->remote_host)
			buf_printf(out, "Diagnostic-Code: smtp; %s\r\n", r->last_reply);
	}
	buf_printf(out, "\r\n");

	/* 3: the message, or its header (RET=HDRS) */
	if (headers_only) {
		buf_printf(out, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
		buf_append(out, data, header_length(data, e->data_size));
	} else {
		buf_printf(out, "--%s\r\nContent-Type: message/rfc822\r\n\r\n", boundary);
		buf_append(out, data, e->data_size);
	}
	if (out->len < 2 || out->data[out->len - 1] != '\n')
		buf_printf(out, "\r\n");
	buf_printf(out, "--%s--\r\n", boundary);
}
