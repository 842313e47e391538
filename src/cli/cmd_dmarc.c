/* roost dmarc report [--day today|yesterday|YYYY-MM-DD] --print DOMAIN | --send | --list:
 * DMARC aggregate reports (RFC 7489 §7.2) out of DATA_DIR/dmarc-reports.db for operators and
 * tests. --print writes one domain's XML to standard output; --send queues the day's reports
 * not sent yet, as the server does each night (the day defaults to yesterday, the one the
 * server reports), through the running server when it counts reports (so the spool is not
 * opened beside it), else on the files directly, like `roost queue`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/core.h"
#include "../queue/queue.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_dmarc.h"

static const char usage_text[] =
	"usage: roost dmarc report [--day today|yesterday|YYYY-MM-DD] "
	"--print DOMAIN | --send | --list\n";

static int parse_day(const char *text, int64_t *day_r)
{
	unsigned y, m, d;
	char tail;

	if (strcmp(text, "today") == 0) {
		*day_r = store_dmarc_today();
		return 0;
	}
	if (strcmp(text, "yesterday") == 0) {
		*day_r = store_dmarc_today() - 1;
		return 0;
	}
	if (sscanf(text, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 ||
	    d > 31)
		return -1;
	*day_r = time_days_from_civil(y, m, d);
	return 0;
}

static void print_domain(const char *domain, void *ctx)
{
	(void)ctx;
	printf("%s\n", domain);
}

static int report_print(struct store_dmarc *st, const struct config *cfg, int64_t day,
			const char *domain)
{
	struct dmarc_record policy;
	struct buf xml;
	char err[512] = "";
	int rc;

	buf_init(&xml);
	rc = dmarc_report_build(st, cfg, day, domain, &xml, &policy, err, sizeof(err));
	if (rc > 0)
		fwrite(xml.data, 1, xml.len, stdout);
	else
		fprintf(stderr, "roost: %s\n", err);
	buf_free(&xml);
	return rc > 0 ? 0 : 1;
}

/* Building and queueing reports may wait on DNS (the §7.1 check) and fsyncs. */
#define DMARC_SEND_REPLY_SECONDS 120

/* Asks the running server to send (its status socket, "dmarc-send DAY") and prints its
 * answer. -1 when no server answers or it does not count reports: the caller sends itself. */
static int send_through_server(const char *data_dir, int64_t day, int *status_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { DMARC_SEND_REPLY_SECONDS, 0 };
	char *path = cli_status_socket_path(data_dir);
	char request[64];
	struct buf reply;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		free(path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	free(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(request, sizeof(request), "dmarc-send %lld\n", (long long)day);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
		close(fd);
		return -1;
	}
	buf_init(&reply);
	for (;;) {
		buf_reserve(&reply, 4096);
		ssize_t n = read(fd, reply.data + reply.len, 4096);
		if (n <= 0)
			break;
		reply.len += (size_t)n;
	}
	close(fd);
	const char *text = buf_cstr(&reply);
	int rc = 0;
	if (reply.len == 0 || strncmp(text, "error: [dmarc] reports is off", 29) == 0) {
		rc = -1;
	} else {
		fputs(text, stdout);
		*status_r = strstr(text, "error:") != NULL ? 1 : 0;
	}
	buf_free(&reply);
	return rc;
}

static int report_send(struct store_dmarc *st, const struct config *cfg, const char *data_dir,
		       int64_t day)
{
	char err[512];
	struct queue *q;
	int n, status;

	if (send_through_server(data_dir, day, &status) == 0)
		return status;
	q = queue_open(data_dir, err, sizeof(err));
	if (q == NULL) {
		fprintf(stderr, "roost: cannot open the queue: %s\n", err);
		return 1;
	}
	n = dmarc_reports_send(st, q, cfg, day, stdout);
	queue_close(&q);
	if (n < 0) {
		fprintf(stderr, "roost: some reports could not be queued; see the log\n");
		return 1;
	}
	printf("%d report%s queued\n", n, n == 1 ? "" : "s");
	return 0;
}

int cmd_dmarc(struct config *cfg, int argc, char **argv)
{
	const char *print_domain_name = NULL;
	bool send = false, list = false;
	int64_t day = store_dmarc_today() - 1;
	char err[512];
	int status;

	if (argc < 1 || strcmp(argv[0], "report") != 0)
		goto usage;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--day") == 0 && i + 1 < argc) {
			if (parse_day(argv[++i], &day) < 0)
				goto usage;
		} else if (strcmp(argv[i], "--print") == 0 && i + 1 < argc) {
			print_domain_name = argv[++i];
		} else if (strcmp(argv[i], "--send") == 0) {
			send = true;
		} else if (strcmp(argv[i], "--list") == 0) {
			list = true;
		} else {
			goto usage;
		}
	}
	if ((print_domain_name != NULL) + send + list != 1)
		goto usage;
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	struct store_dmarc *st = store_dmarc_open(data_dir, err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		free(data_dir);
		return 1;
	}
	if (print_domain_name != NULL) {
		status = report_print(st, cfg, day, print_domain_name);
	} else if (send) {
		status = report_send(st, cfg, data_dir, day);
	} else {
		status = store_dmarc_domains(st, day, false, print_domain, NULL, err, sizeof(err)) < 0;
		if (status != 0)
			fprintf(stderr, "roost: %s\n", err);
	}
	store_dmarc_close(&st);
	free(data_dir);
	return status;
usage:
	fputs(usage_text, stderr);
	return 2;
}
