/* The virus check: scans the message through clamd and turns the answer into the verdict
 * (check.h). Every copy that is stored says what happened in X-Virus-Scanned/X-Virus-Status;
 * fields of those names that came with the message are dropped first, so a sender cannot
 * pass for scanned and clean. Submitted mail that is infected is always refused, whatever
 * [virus] action says: we do not relay viruses, and the user can be told at once. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core.h"
#include "virus_internal.h"

static bool field_is(const uint8_t *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && line[n] == ':' && str_nieq((const char *)line, name, n);
}

/* Drops X-Virus-Scanned/X-Virus-Status fields (with their folded lines) from the header. */
static void drop_forged_fields(const struct delivery_check_input *in, struct delivery_verdict *v)
{
	size_t pos = 0;

	while (pos < in->len) {
		const uint8_t *eol = memchr(in->msg + pos, '\n', in->len - pos);
		size_t end = eol ? (size_t)(eol - in->msg) + 1 : in->len;
		const uint8_t *line = in->msg + pos;
		if (end - pos <= 2 && (line[0] == '\r' || line[0] == '\n'))
			return; /* the empty line: end of the header */
		while (end < in->len && (in->msg[end] == ' ' || in->msg[end] == '\t')) {
			eol = memchr(in->msg + end, '\n', in->len - end);
			end = eol ? (size_t)(eol - in->msg) + 1 : in->len;
		}
		if (field_is(line, end - pos, "X-Virus-Scanned") ||
		    field_is(line, end - pos, "X-Virus-Status"))
			delivery_verdict_drop(v, pos, end - pos);
		pos = end;
	}
}

static void add_status(struct delivery_verdict *v, const struct virus_scanner *s,
		       const char *status)
{
	char field[320];

	snprintf(field, sizeof(field), "X-Virus-Scanned: ClamAV on %s", s->hostname);
	delivery_verdict_add_header(v, field);
	snprintf(field, sizeof(field), "X-Virus-Status: %s", status);
	delivery_verdict_add_header(v, field);
}

/* Keeps the message in DATA_DIR/quarantine/ for the administrator, with the envelope on top.
 * -1 when it could not be written durably. */
static int quarantine(const struct virus_scanner *s, const struct delivery_check_input *in,
		      const char *virus, char *path, size_t pathlen)
{
	struct buf head;
	int fd, rc = 0;

	if (fs_mkdir_p(s->quarantine_dir) < 0)
		return -1;
	snprintf(path, pathlen, "%s/%lld-XXXXXX", s->quarantine_dir,
		 (long long)time_wall_seconds());
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -1;
	buf_init(&head);
	buf_printf(&head, "Return-Path: <%s>\r\nX-Quarantine-Client: %s [%s]\r\n", in->sender,
		   in->helo, in->client_ip);
	/* the local mailboxes it was for (check.h gives a check no other view of the rcpts) */
	for (size_t i = 0; i < in->mailbox_count; i++)
		buf_printf(&head, "X-Quarantine-Mailbox: <%s>\r\n", in->mailboxes[i]);
	buf_printf(&head, "X-Virus-Status: Infected (%s)\r\n", virus);
	if (write(fd, head.data, head.len) != (ssize_t)head.len)
		rc = -1;
	for (size_t off = 0; rc == 0 && off < in->len;) {
		ssize_t n = write(fd, in->msg + off, in->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = -1;
		else
			off += (size_t)n;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -1;
	if (close(fd) < 0 || (rc == 0 && fs_fsync_dir(s->quarantine_dir) < 0))
		rc = -1;
	if (rc < 0)
		unlink(path);
	buf_free(&head);
	return rc;
}

static void on_infected(const struct virus_scanner *s, const struct delivery_check_input *in,
			struct delivery_verdict *v, const char *virus)
{
	char reply[384], reason[256], status[192], path[512];

	v->virus = DELIVERY_VIRUS_INFECTED;
	snprintf(v->virus_name, sizeof(v->virus_name), "%.120s", virus);
	snprintf(reason, sizeof(reason), "virus: %.200s", virus);
	snprintf(reply, sizeof(reply), "554 5.7.0 Message refused: infected with %s", virus);
	if (in->auth_user != NULL || s->action == VIRUS_ACTION_REJECT) {
		delivery_verdict_refuse(v, DELIVERY_CHECK_REJECT, reply, reason);
		return;
	}
	if (s->action == VIRUS_ACTION_QUARANTINE) {
		if (quarantine(s, in, virus, path, sizeof(path)) < 0) {
			log_error("msg=\"cannot quarantine an infected message\" virus=\"%s\" "
				  "error=\"%s\"",
				  virus, strerror(errno));
			delivery_verdict_refuse(v, DELIVERY_CHECK_TEMPFAIL,
						"451 4.7.0 Message cannot be accepted now; try "
						"again later",
						"virus: quarantine failed");
			return;
		}
		log_info("msg=quarantined virus=\"%s\" path=%s sender=<%s>", virus, path,
			 in->sender);
		v->discard = true;
		return;
	}
	/* junk: every local copy goes to the account's \Junk, marked */
	log_info("msg=\"infected, filed as junk\" virus=\"%s\" sender=<%s>", virus, in->sender);
	for (size_t i = 0; i < in->mailbox_count; i++)
		v->junk[i] = true;
	snprintf(status, sizeof(status), "Infected (%.160s)", virus);
	add_status(v, s, status);
}

static void on_error(const struct virus_scanner *s, struct delivery_verdict *v, const char *why)
{
	char reason[256];

	v->virus = DELIVERY_VIRUS_SCAN_FAILED;
	snprintf(reason, sizeof(reason), "virus scan failed: %.200s", why);
	if (s->on_error == VIRUS_ON_ERROR_TEMPFAIL) {
		log_warn("msg=\"virus scan failed; message deferred\" clamd=%s error=\"%s\"",
			 s->display, why);
		delivery_verdict_refuse(v, DELIVERY_CHECK_TEMPFAIL,
					"451 4.7.0 Virus scanner unavailable; try again later",
					reason);
		return;
	}
	log_warn("msg=\"virus scan failed; message passed unscanned\" clamd=%s error=\"%s\"",
		 s->display, why);
	delivery_verdict_add_header(v, "X-Virus-Status: Unscanned (scanner unavailable)");
}

void virus_check(void *arg, const struct delivery_check_input *in,
		 struct delivery_verdict *verdict)
{
	const struct virus_scanner *s = arg;
	char name[256] = "";
	char status[128];

	drop_forged_fields(in, verdict);
	if (in->len > s->max_size) {
		log_info("msg=\"message larger than [virus] max_size, not scanned\" size=%zu",
			 in->len);
		snprintf(status, sizeof(status), "X-Virus-Status: Unscanned (larger than %llu octets)",
			 (unsigned long long)s->max_size);
		delivery_verdict_add_header(verdict, status);
		return;
	}
	switch (virus_scan(s, in->msg, in->len, name, sizeof(name))) {
	case VIRUS_SCAN_CLEAN:
		verdict->virus = DELIVERY_VIRUS_CLEAN;
		add_status(verdict, s, "Clean");
		break;
	case VIRUS_SCAN_INFECTED:
		on_infected(s, in, verdict, name);
		break;
	case VIRUS_SCAN_ERROR:
		on_error(s, verdict, name);
		break;
	}
}
