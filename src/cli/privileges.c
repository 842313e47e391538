/* Becoming [server] run_as: for `serve` after it has bound its ports and loaded its keys, and
 * for every administrative command that writes into data_dir, before it opens anything there.
 * Files that root created in data_dir are handed to run_as on the way, so whatever the server
 * and the commands create is always run_as's: a command run as root can no longer leave a
 * folder, message or key that the server cannot read. */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/core.h"
#include "cli.h"

/* The uid/gid files are handed to by hand_over_entry (nftw takes no context argument; set
 * once, before any thread starts, and only read by the walk). */
static uid_t handover_uid;
static gid_t handover_gid;

static int hand_over_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	if (st->st_uid == 0 && lchown(path, handover_uid, handover_gid) < 0)
		log_warn("path=%s msg=\"cannot hand over to run_as\" error=\"%s\"", path,
			 strerror(errno));
	return 0;
}

int cli_ensure_data_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "roost: cannot create data directory %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Not root: only run_as itself may write into run_as's data directory. */
static int check_unprivileged_caller(const struct config *cfg, const struct passwd *pw)
{
	if (pw->pw_uid == getuid())
		return 0;
	fprintf(stderr,
		"roost: the data directory belongs to [server] run_as = %s; run this command as "
		"root or as %s\n",
		cfg->run_as, cfg->run_as);
	return -1;
}

int cli_become_run_as(const struct config *cfg, const char *data_dir)
{
	struct passwd *pw;

	if (cfg->run_as[0] == '\0')
		return 0;
	pw = getpwnam(cfg->run_as);
	if (pw == NULL) {
		fprintf(stderr, "roost: [server] run_as: no such user '%s'\n", cfg->run_as);
		return -1;
	}
	if (getuid() != 0)
		return check_unprivileged_caller(cfg, pw);
	if (pw->pw_uid == 0)
		return 0; /* run_as names root: nothing to drop */
	if (cli_ensure_data_dir(data_dir) < 0)
		return -1;
	handover_uid = pw->pw_uid;
	handover_gid = pw->pw_gid;
	if (nftw(data_dir, hand_over_entry, 32, FTW_PHYS) < 0) {
		fprintf(stderr, "roost: cannot hand %s over to %s: %s\n", data_dir, cfg->run_as,
			strerror(errno));
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		fprintf(stderr, "roost: cannot switch to user %s: %s\n", cfg->run_as,
			strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		fprintf(stderr, "roost: privileges could not be dropped\n");
		return -1;
	}
	return 0;
}
