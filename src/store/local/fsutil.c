/* File-system helpers of the local backend: durable small files, directory fsync, recursive
 * create/remove, unique names and the mapping of errno to store errors. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "local.h"

enum store_error local_fail(struct store_err *err_r, enum store_error code, const char *fmt, ...)
{
	va_list ap;

	if (err_r != NULL) {
		err_r->code = code;
		va_start(ap, fmt);
		vsnprintf(err_r->text, sizeof(err_r->text), fmt, ap);
		va_end(ap);
	}
	return code;
}

enum store_error local_errno_code(int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return STORE_ERR_NO_SPACE;
	return STORE_ERR_IO;
}

/* cur/ new/ tmp/ of a folder, made durable so a later rename into them survives a crash. */
int local_folder_create_dirs(const char *folder)
{
	static const char *const subs[] = { "cur", "new", "tmp" };

	if (mkdir(folder, 0700) < 0 && errno != EEXIST)
		return -1;
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		char *p = xasprintf("%s/%s", folder, subs[i]);
		int r = mkdir(p, 0700);

		free(p);
		if (r < 0 && errno != EEXIST)
			return -1;
	}
	if (fs_fsync_dir(folder) < 0)
		return -1;
	char *parent = xstrdup(folder);
	char *slash = strrchr(parent, '/');
	int r = 0;

	if (slash != NULL && slash != parent) {
		*slash = '\0';
		r = fs_fsync_dir(parent);
	}
	free(parent);
	return r;
}

/* Fallback for a full disk: rewrite the existing file in place. The fixed-width format keeps
 * the size, so no block has to be allocated and expunge can still free space. */
static int uidv_overwrite(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	struct stat sb;
	int ret = -1, saved;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) == 0 && (size_t)sb.st_size == len &&
	    pwrite(fd, text, len, 0) == (ssize_t)len && fsync(fd) == 0)
		ret = 0;
	else if (errno == 0)
		errno = ENOSPC;
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

int local_write_durable(const char *folder, const char *name, const char *text, size_t len)
{
	char *tmp = xasprintf("%s/%s.tmp", folder, name);
	char *dst = xasprintf("%s/%s", folder, name);
	int fd, ret = -1, saved = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	errno = 0;
	if (write(fd, text, len) != (ssize_t)len) {
		if (errno == 0)
			errno = ENOSPC;
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto out;
	}
	if (fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto out;
	}
	close(fd);
	if (rename(tmp, dst) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto out;
	}
	ret = fs_fsync_dir(folder);
out:
	free(tmp);
	free(dst);
	return ret;
}

int local_uidv_write(const char *folder, uint32_t uidvalidity, uint32_t uidnext_floor)
{
	char *dst = xasprintf("%s/%s", folder, LOCAL_UIDV_FILE);
	char text[64];
	int len = snprintf(text, sizeof(text), "V %010u\nN %010u\n", uidvalidity, uidnext_floor);
	int ret = local_write_durable(folder, LOCAL_UIDV_FILE, text, (size_t)len);

	/* A full disk must not stop expunges (they free space): the file has a fixed size, so
	 * it can be overwritten in place. */
	if (ret < 0 && (errno == ENOSPC || errno == EDQUOT) &&
	    uidv_overwrite(dst, text, (size_t)len) == 0)
		ret = 0;
	free(dst);
	return ret;
}

int local_uidv_read(const char *folder, uint32_t *uidvalidity_r, uint32_t *floor_r)
{
	char *path = xasprintf("%s/%s", folder, LOCAL_UIDV_FILE);
	FILE *f = fopen(path, "re");
	unsigned long v = 0, n = 0;
	char line[64];

	free(path);
	*uidvalidity_r = 0;
	*floor_r = 0;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == 'V')
			v = strtoul(line + 1, NULL, 10);
		else if (line[0] == 'N')
			n = strtoul(line + 1, NULL, 10);
	}
	fclose(f);
	if (v == 0 || v > UINT32_MAX || n > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	*uidvalidity_r = (uint32_t)v;
	*floor_r = (uint32_t)n;
	return 0;
}

int local_rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int ret = 0;

	if (d == NULL)
		return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *p = xasprintf("%s/%s", path, de->d_name);
		struct stat st;

		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (local_rm_rf(p) < 0)
				ret = -1;
		} else if (unlink(p) < 0 && errno != ENOENT) {
			ret = -1;
		}
		free(p);
	}
	closedir(d);
	if (rmdir(path) < 0 && errno != ENOENT)
		ret = -1;
	return ret;
}

/* Maildir unique name: seconds, microseconds, pid, a per-process counter and the host. */
void local_new_base(struct store *store, char *out, size_t outlen)
{
	struct timeval tv;
	uint64_t n = atomic_fetch_add(&store->counter, 1);

	gettimeofday(&tv, NULL);
	snprintf(out, outlen, "%lld.M%06ldP%dQ%llu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
		 (int)getpid(), (unsigned long long)n, store->host);
}
