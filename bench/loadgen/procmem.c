/* Memory of a server process tree, for the imap-idle workload: RSS and PSS from
 * /proc/PID/smaps_rollup summed over a process and all its descendants (a multi-process server
 * such as Dovecot is its master plus every login, imap and auth child). PSS splits shared pages
 * among the processes mapping them, so it is the fair figure for multi-process servers. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define PROCMEM_MAX_PROCS 65536

struct procmem_entry {
	int pid, ppid;
};

static int procmem_ppid(int pid)
{
	char path[64], buf[512];
	FILE *f;
	size_t n;
	char *close_paren;
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields resume after the last ')'. */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

static int procmem_rollup(int pid, uint64_t *rss_r, uint64_t *pss_r)
{
	char path[64], line[256];
	FILE *f;
	int found = 0;
	unsigned long long v;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Rss: %llu kB", &v) == 1) {
			*rss_r += v;
			found |= 1;
		} else if (sscanf(line, "Pss: %llu kB", &v) == 1) {
			*pss_r += v;
			found |= 2;
		}
	}
	fclose(f);
	return found == 3 ? 0 : -1;
}

int lg_procmem(int pid, unsigned *nproc_r, uint64_t *rss_kib_r, uint64_t *pss_kib_r)
{
	struct procmem_entry *all = xcalloc(PROCMEM_MAX_PROCS, sizeof(*all));
	int *tree = xcalloc(PROCMEM_MAX_PROCS, sizeof(*tree));
	size_t nall = 0, ntree = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	*nproc_r = 0;
	*rss_kib_r = 0;
	*pss_kib_r = 0;
	if (d == NULL) {
		free(all);
		free(tree);
		return -1;
	}
	while ((de = readdir(d)) != NULL && nall < PROCMEM_MAX_PROCS) {
		char *end;
		long p = strtol(de->d_name, &end, 10);
		if (*end != '\0' || p <= 0)
			continue;
		all[nall].pid = (int)p;
		all[nall].ppid = procmem_ppid((int)p);
		nall++;
	}
	closedir(d);
	/* Breadth-first over the parent links; the list only grows, so it terminates. */
	tree[ntree++] = pid;
	for (size_t i = 0; i < ntree; i++)
		for (size_t k = 0; k < nall && ntree < PROCMEM_MAX_PROCS; k++)
			if (all[k].ppid == tree[i])
				tree[ntree++] = all[k].pid;
	for (size_t i = 0; i < ntree; i++)
		if (procmem_rollup(tree[i], rss_kib_r, pss_kib_r) == 0)
			(*nproc_r)++;
	free(all);
	free(tree);
	return *nproc_r > 0 ? 0 : -1;
}
