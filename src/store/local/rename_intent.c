/* The rename intent record, which makes RENAME of a mailbox with inferiors all-or-nothing
 * across a crash. Maildir++ folders are flat (".Big" and ".Big.Child" are siblings in the
 * account directory), so such a rename is one directory rename per folder and cannot be a
 * single atomic step. Design note 8 in local.h gives the write order; this file writes and
 * removes the record and finishes a rename that a crash interrupted.
 *
 * Finishing rolls forward, never back: the record is written before the first folder moves,
 * so from then on the new hierarchy is the one that must exist. Rolling forward needs nothing
 * but the two folder prefixes (every folder still under the old prefix moves, whatever the
 * index says), and it is idempotent, so a crash while finishing is finished at the next open.
 *
 * Record format, one item a line: "roost-rename 1", the old folder prefix, the new folder
 * prefix, "end". Folder names are local_folder_name output (".A.B", bytes outside a safe set
 * percent-encoded), so they never contain a line break. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

#define INTENT_MAGIC "roost-rename 1"
#define INTENT_MAX 1024

int local_rename_intent_write(struct store_account *acct, const char *old_canon,
			      const char *new_canon)
{
	char old_folder[260], new_folder[260];

	if (local_folder_name(old_canon, old_folder, sizeof(old_folder)) < 0 ||
	    local_folder_name(new_canon, new_folder, sizeof(new_folder)) < 0 ||
	    old_folder[0] == '\0' || new_folder[0] == '\0') {
		errno = ENAMETOOLONG;
		return -1;
	}
	char *text = xasprintf(INTENT_MAGIC "\n%s\n%s\nend\n", old_folder, new_folder);
	int r = local_write_durable(acct->dir, LOCAL_RENAME_INTENT_FILE, text, strlen(text));

	free(text);
	return r;
}

int local_rename_intent_clear(struct store_account *acct)
{
	char *path = xasprintf("%s/%s", acct->dir, LOCAL_RENAME_INTENT_FILE);
	int r = unlink(path);

	free(path);
	if (r < 0 && errno != ENOENT)
		return -1;
	return fs_fsync_dir(acct->dir);
}

/* Reads the record into the two folder prefixes. 1 when there is one, 0 when there is none,
 * -1 on a read error; a record that does not parse is reported as -2. */
static int intent_read(struct store_account *acct, char old_r[260], char new_r[260])
{
	char *path = xasprintf("%s/%s", acct->dir, LOCAL_RENAME_INTENT_FILE);
	char text[INTENT_MAX + 1];
	FILE *fp = fopen(path, "re");
	size_t len;

	free(path);
	if (fp == NULL)
		return errno == ENOENT ? 0 : -1;
	len = fread(text, 1, INTENT_MAX, fp);
	if (ferror(fp)) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	text[len] = '\0';

	char *lines[4] = { 0 }, *save = NULL, *p = text;
	size_t n = 0;

	/* Four lines, each ended by '\n'; a torn or foreign file fails here. */
	if (len == 0 || text[len - 1] != '\n')
		return -2;
	for (char *line; n < 4 && (line = strtok_r(p, "\n", &save)) != NULL; p = NULL)
		lines[n++] = line;
	if (n != 4 || strcmp(lines[0], INTENT_MAGIC) != 0 ||
	    strcmp(lines[3], "end") != 0 || lines[1][0] != '.' || lines[2][0] != '.' ||
	    strlen(lines[1]) >= 260 || strlen(lines[2]) >= 260 || strchr(lines[1], '/') != NULL ||
	    strchr(lines[2], '/') != NULL)
		return -2;
	memcpy(old_r, lines[1], strlen(lines[1]) + 1);
	memcpy(new_r, lines[2], strlen(lines[2]) + 1);
	return 1;
}

/* True when dirent is the folder PREFIX itself or one of its inferiors ("PREFIX.x"). */
static bool folder_under(const char *dirent, const char *prefix, size_t prefix_len)
{
	return strncmp(dirent, prefix, prefix_len) == 0 &&
	       (dirent[prefix_len] == '\0' || dirent[prefix_len] == '.');
}

/* Moves every folder still under old_folder to the same place under new_folder. */
static int finish_folders(struct store_account *acct, const char *old_folder,
			  const char *new_folder)
{
	size_t old_len = strlen(old_folder), count = 0, cap = 0;
	char **names = NULL;
	int ret = 0;
	DIR *d = opendir(acct->dir);
	struct dirent *de;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!folder_under(de->d_name, old_folder, old_len))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[count++] = xstrdup(de->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < count; i++) {
		char *from = xasprintf("%s/%s", acct->dir, names[i]);
		char *to = xasprintf("%s/%s%s", acct->dir, new_folder, names[i] + old_len);
		struct stat sb;

		if (strlen(new_folder) + strlen(names[i] + old_len) > 255) {
			log_error("store=local op=rename-finish account=%s folder=%s error=too-long",
				  acct->address, names[i]);
			ret = -1;
		} else if (lstat(to, &sb) == 0) {
			/* Cannot happen through the store (the target names were checked free under
			 * the write lock); never overwrite a folder with mail in it. */
			log_error("store=local op=rename-finish account=%s folder=%s error=target-exists",
				  acct->address, names[i]);
		} else if (rename(from, to) < 0) {
			log_error("store=local op=rename-finish account=%s folder=%s errno=%s",
				  acct->address, names[i], strerror(errno));
			ret = -1;
		}
		free(from);
		free(to);
		free(names[i]);
	}
	free(names);
	if (ret == 0 && count > 0 && fs_fsync_dir(acct->dir) < 0)
		ret = -1;
	return ret;
}

/* The parents of the new name, which the rename created before moving anything: they are
 * there unless the rename was being undone after an error. A folder without an index row is
 * adopted by the sync that follows. */
static int finish_parents(struct store_account *acct, const char *new_canon)
{
	char *work = xstrdup(new_canon);
	int ret = 0;

	for (char *slash = strchr(work, '/'); slash != NULL && ret == 0;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		char *dir = local_folder_path(acct, work);
		struct stat sb;

		if (dir != NULL && stat(dir, &sb) < 0 && errno == ENOENT)
			ret = local_folder_create_dirs(dir);
		free(dir);
		*slash = '/';
	}
	free(work);
	return ret;
}

/* True when the index already has the new name: the rename's commit (which comes after every
 * folder moved) happened, since the name was checked free when the record was written. */
static bool rename_committed(struct store_account *acct, const char *new_canon)
{
	struct local_mbox m;

	if (local_mbox_by_name(acct, new_canon, &m, NULL) != STORE_OK)
		return false;
	local_mbox_clear(&m);
	return true;
}

int local_rename_intent_finish(struct store_account *acct)
{
	char old_folder[260], new_folder[260];
	char old_canon[LIMIT_MAILBOX_NAME + 1], new_canon[LIMIT_MAILBOX_NAME + 1];
	int r = intent_read(acct, old_folder, new_folder);

	if (r == 0)
		return 0;
	if (r == -1) {
		log_error("store=local op=rename-finish account=%s errno=%s", acct->address,
			  strerror(errno));
		return -1;
	}
	if (r == -2 || local_folder_decode(old_folder, old_canon, sizeof(old_canon)) < 0 ||
	    local_folder_decode(new_folder, new_canon, sizeof(new_canon)) < 0) {
		/* Only something outside the store writes such a file; the sync that follows
		 * makes the index agree with whatever folders there are. */
		log_error("store=local op=rename-finish account=%s error=unreadable-intent "
			  "action=remove", acct->address);
		return local_rename_intent_clear(acct) < 0 ? -1 : 1;
	}
	if (rename_committed(acct, new_canon)) {
		/* Only the removal of the record was lost. Moving folders now could take a
		 * mailbox created under the old name since. */
		return local_rename_intent_clear(acct) < 0 ? -1 : 0;
	}
	log_warn("store=local op=rename-finish account=%s (a rename was interrupted; completing it)",
		 acct->address);
	if (finish_folders(acct, old_folder, new_folder) < 0 ||
	    finish_parents(acct, new_canon) < 0)
		return -1;
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0) {
		local_db_fail(acct, NULL, "rename-finish");
		return -1;
	}
	if (local_rename_rows(acct, old_canon, new_canon, NULL) != STORE_OK) {
		local_exec(acct, "ROLLBACK");
		return -1;
	}
	if (local_exec(acct, "COMMIT") < 0) {
		local_db_fail(acct, NULL, "rename-finish");
		local_exec(acct, "ROLLBACK");
		return -1;
	}
	if (local_rename_intent_clear(acct) < 0) {
		log_error("store=local op=rename-finish account=%s errno=%s", acct->address,
			  strerror(errno));
		return -1;
	}
	return 1;
}
