/* roost queue list | flush [DOMAIN] | delete ID: the outbound queue for operators. Works on
 * the spool directly, so it needs no running server; a running server sees the changes on
 * its next scan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/core.h"
#include "../queue/queue.h"
#include "cli.h"

static void print_entry(const struct queue_entry_info *info, void *ctx)
{
	int64_t now = time_wall_seconds();
	char next[64];

	(void)ctx;
	if (info->next_attempt == 0)
		snprintf(next, sizeof(next), "now");
	else if (info->next_attempt / 1000 <= now)
		snprintf(next, sizeof(next), "due");
	else
		snprintf(next, sizeof(next), "in %llds",
			 (long long)(info->next_attempt / 1000 - now));
	printf("%s  age %llds  %llu bytes  from <%s>  tries %u  next %s\n", info->id,
	       (long long)(now - info->arrived), (unsigned long long)info->size, info->sender,
	       info->attempts, next);
	for (size_t i = 0; i < info->rcpt_pending; i++)
		printf("    to <%s>\n", info->pending[i]);
	if (info->last_error)
		printf("    last error: %s\n", info->last_error);
}

int cmd_queue(struct config *cfg, int argc, char **argv)
{
	char err[512];
	char *data_dir;
	struct queue *q;
	int status = 1;

	if (argc < 1 || (strcmp(argv[0], "delete") == 0 && argc != 2) ||
	    (strcmp(argv[0], "list") == 0 && argc != 1) ||
	    (strcmp(argv[0], "flush") == 0 && argc > 2)) {
		fprintf(stderr, "usage: roost queue list | flush [DOMAIN] | delete ID\n");
		return 2;
	}
	data_dir = config_resolve_path(cfg, cfg->data_dir);
	if (cli_ensure_data_dir(data_dir) < 0) {
		free(data_dir);
		return 1;
	}
	q = queue_open(data_dir, err, sizeof(err));
	free(data_dir);
	if (q == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		return 1;
	}
	if (strcmp(argv[0], "list") == 0) {
		int n = queue_list(q, print_entry, NULL, err, sizeof(err));
		if (n >= 0) {
			printf("%d message%s in the queue\n", n, n == 1 ? "" : "s");
			status = 0;
		}
	} else if (strcmp(argv[0], "flush") == 0) {
		int n = queue_flush(q, argc == 2 ? argv[1] : NULL, err, sizeof(err));
		if (n >= 0) {
			printf("%d message%s due now\n", n, n == 1 ? "" : "s");
			status = 0;
		}
	} else if (strcmp(argv[0], "delete") == 0) {
		if (queue_delete(q, argv[1], err, sizeof(err)) == 0) {
			printf("deleted %s\n", argv[1]);
			status = 0;
		}
	} else {
		fprintf(stderr, "usage: roost queue list | flush [DOMAIN] | delete ID\n");
		queue_close(&q);
		return 2;
	}
	if (status != 0)
		fprintf(stderr, "roost: %s\n", err);
	queue_close(&q);
	return status;
}
