/* roost reload: asks the running server to re-read its certificate and key, as SIGHUP does
 * (and as systemd's ExecReload does): the signal goes to the pid in the pidfile, the serving
 * process, which has its privileged parent read files that only root may read. Exit codes as
 * `status`: 0 sent, 3 no server running, 4 unknown. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_reload(struct config *cfg, int argc, char **argv)
{
	char *data_dir, *path;
	bool stale;
	long pid;

	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "usage: roost reload\n");
		return 2;
	}
	data_dir = config_resolve_path(cfg, cfg->data_dir);
	path = cli_pidfile_path(cfg, data_dir);
	pid = cli_pidfile_holder(path, &stale);
	free(data_dir);
	if (pid == 0 || stale) {
		fprintf(stderr, "roost: no server is running (pidfile %s)\n", path);
		free(path);
		return 3;
	}
	if (pid < 0 || kill((pid_t)pid, SIGHUP) < 0) {
		fprintf(stderr, "roost: cannot signal the server (pidfile %s): %s\n", path,
			pid < 0 ? "no pid in it yet" : strerror(errno));
		free(path);
		return 4;
	}
	printf("reload requested from pid %ld; the log says whether the certificate was taken\n",
	       pid);
	free(path);
	return 0;
}
