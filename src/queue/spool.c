/* The queue spool; the file format and its invariants are described in queue.h.
 *
 * Invariants:
 *  1. A file in active/ is complete: it was fully written and fsync'd in tmp/ before the
 *     rename, and the directory was fsync'd after it, before queue_entry_commit returned.
 *  2. Whatever is in tmp/ at start-up is the remains of an interrupted write that nobody
 *     acknowledged; queue_open deletes it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/core.h"
#include "queue_internal.h"

struct queue_entry_writer {
	struct queue *q;
	int fd;
	char id[32];
	char *tmp_path;
	struct buf header; /* written when the size is known, at commit */
	uint64_t size;
};

static int make_dir(const char *path, char *err, size_t errlen)
{
	if (fs_mkdir_p(path) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

struct queue *queue_open(const char *data_dir, char *err, size_t errlen)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	DIR *d;

	q->dir = xasprintf("%s/queue", data_dir);
	q->tmp_dir = xasprintf("%s/tmp", q->dir);
	q->active_dir = xasprintf("%s/active", q->dir);
	q->state_dir = xasprintf("%s/state", q->dir);
	pthread_mutex_init(&q->state_lock, NULL);
	if (make_dir(q->dir, err, errlen) < 0 || make_dir(q->tmp_dir, err, errlen) < 0 ||
	    make_dir(q->active_dir, err, errlen) < 0 || make_dir(q->state_dir, err, errlen) < 0) {
		queue_close(&q);
		return NULL;
	}
	if (getrandom(&q->salt, sizeof(q->salt), 0) != sizeof(q->salt))
		q->salt = (uint32_t)getpid();
	d = opendir(q->tmp_dir);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char *p = xasprintf("%s/%s", q->tmp_dir, e->d_name);
			unlink(p);
			free(p);
		}
		closedir(d);
	}
	return q;
}

void queue_close(struct queue **qp)
{
	struct queue *q = qp ? *qp : NULL;

	if (q == NULL)
		return;
	free(q->dir);
	free(q->tmp_dir);
	free(q->active_dir);
	free(q->state_dir);
	pthread_mutex_destroy(&q->state_lock);
	free(q);
	*qp = NULL;
}

/* Header values are written one per line: refuse anything that could break the framing. */
static bool header_value_ok(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f)
			return false;
	return true;
}

struct queue_entry_writer *queue_entry_begin(struct queue *q, const struct queue_envelope *env,
					     char *err, size_t errlen)
{
	struct queue_entry_writer *w;
	struct timespec ts;
	uint64_t n = atomic_fetch_add(&q->counter, 1);

	if (!header_value_ok(env->sender) || !header_value_ok(env->envid) ||
	    !header_value_ok(env->ret) || !header_value_ok(env->auth_user)) {
		snprintf(err, errlen, "envelope value with control characters or spaces");
		return NULL;
	}
	for (size_t i = 0; i < env->rcpt_count; i++) {
		if (!header_value_ok(env->rcpts[i].address) ||
		    !header_value_ok(env->rcpts[i].notify) ||
		    !header_value_ok(env->rcpts[i].orcpt)) {
			snprintf(err, errlen, "recipient with control characters or spaces");
			return NULL;
		}
	}
	w = xcalloc(1, sizeof(*w));
	w->q = q;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(w->id, sizeof(w->id), "%010" PRIx64 "%06" PRIx64 "%04" PRIx32,
		 (uint64_t)ts.tv_sec, (uint64_t)(ts.tv_nsec / 1000), (uint32_t)((n ^ q->salt) & 0xffff));
	w->tmp_path = xasprintf("%s/%s", q->tmp_dir, w->id);
	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		snprintf(err, errlen, "cannot create queue file: %s", strerror(errno));
		free(w->tmp_path);
		free(w);
		return NULL;
	}
	buf_init(&w->header);
	buf_printf(&w->header, "ROOSTQ 1\nid %s\narrived %lld\nsender %s\n", w->id,
		   (long long)ts.tv_sec, env->sender);
	if (env->envid)
		buf_printf(&w->header, "envid %s\n", env->envid);
	if (env->ret)
		buf_printf(&w->header, "ret %s\n", env->ret);
	if (env->auth_user)
		buf_printf(&w->header, "auth %s\n", env->auth_user);
	for (size_t i = 0; i < env->rcpt_count; i++)
		buf_printf(&w->header, "rcpt pending %s notify=%s orcpt=%s\n", env->rcpts[i].address,
			   env->rcpts[i].notify ? env->rcpts[i].notify : "",
			   env->rcpts[i].orcpt ? env->rcpts[i].orcpt : "");
	/* The header is followed by "data <size>", known only at the end: reserve a fixed-width
	 * field now so the body can be streamed straight after it. */
	buf_printf(&w->header, "data %020d\n", 0);
	if (write(w->fd, w->header.data, w->header.len) != (ssize_t)w->header.len) {
		snprintf(err, errlen, "cannot write queue file: %s", strerror(errno));
		queue_entry_abort(&w);
		return NULL;
	}
	return w;
}

int queue_entry_write(struct queue_entry_writer *w, const void *data, size_t len, char *err,
		      size_t errlen)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot write queue file: %s", strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
		w->size += (uint64_t)n;
	}
	return 0;
}

int queue_entry_commit(struct queue_entry_writer **wp, char *id_r, char *err, size_t errlen)
{
	struct queue_entry_writer *w = *wp;
	char field[32];
	char *final_path;
	off_t size_at = (off_t)w->header.len - 21; /* the 20 digits before the newline */

	snprintf(field, sizeof(field), "%020" PRIu64, w->size);
	if (pwrite(w->fd, field, 20, size_at) != 20 || fsync(w->fd) < 0) {
		snprintf(err, errlen, "cannot make the queue file durable: %s", strerror(errno));
		queue_entry_abort(wp);
		return -1;
	}
	final_path = xasprintf("%s/%s", w->q->active_dir, w->id);
	if (rename(w->tmp_path, final_path) < 0 || fs_fsync_dir(w->q->active_dir) < 0) {
		snprintf(err, errlen, "cannot move the message into the queue: %s",
			 strerror(errno));
		unlink(final_path);
		free(final_path);
		queue_entry_abort(wp);
		return -1;
	}
	free(final_path);
	snprintf(id_r, 32, "%s", w->id);
	if (atomic_load(&w->q->runner) != NULL)
		queue_runner_wake(atomic_load(&w->q->runner));
	close(w->fd);
	buf_free(&w->header);
	free(w->tmp_path);
	free(w);
	*wp = NULL;
	return 0;
}

void queue_entry_abort(struct queue_entry_writer **wp)
{
	struct queue_entry_writer *w = wp ? *wp : NULL;

	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlink(w->tmp_path);
	free(w->tmp_path);
	buf_free(&w->header);
	free(w);
	*wp = NULL;
}

/* ---------------- reading the spool ---------------- */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids in active/, oldest first (ids start with the arrival time). Caller frees. */
int queue_ids(struct queue *q, char ***ids_r, size_t *count_r)
{
	DIR *d = opendir(q->active_dir);
	char **names = NULL;
	size_t count = 0;
	struct dirent *ent;

	*ids_r = NULL;
	*count_r = 0;
	if (d == NULL)
		return -1;
	while ((ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		names = xrealloc(names, (count + 1) * sizeof(char *));
		names[count++] = xstrdup(ent->d_name);
	}
	closedir(d);
	if (count > 0)
		qsort(names, count, sizeof(char *), compare_names);
	*ids_r = names;
	*count_r = count;
	return 0;
}

int queue_list(struct queue *q, void (*cb)(const struct queue_entry_info *info, void *ctx),
	       void *ctx, char *err, size_t errlen)
{
	char **ids;
	size_t count;
	int listed = 0;

	if (queue_ids(q, &ids, &count) < 0) {
		snprintf(err, errlen, "cannot read the queue: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		struct queue_entry *e = NULL;
		char why[256];
		if (queue_entry_load(q, ids[i], &e, why, sizeof(why)) == 0) {
			const char **pending = xcalloc(e->rcpt_count + 1, sizeof(char *));
			size_t np = 0;
			const char *last_error = NULL;
			for (size_t k = 0; k < e->rcpt_count; k++) {
				if (e->rcpts[k].state != QUEUE_RCPT_PENDING)
					continue;
				pending[np++] = e->rcpts[k].address;
				if (e->rcpts[k].last_reply)
					last_error = e->rcpts[k].last_reply;
			}
			struct queue_entry_info info = {
				.id = e->id,
				.arrived = e->arrived,
				.sender = e->sender,
				.rcpt_total = e->rcpt_count,
				.rcpt_pending = np,
				.pending = pending,
				.size = e->data_size,
				.last_error = last_error,
				.next_attempt = e->next_attempt,
				.attempts = e->attempts,
			};
			cb(&info, ctx);
			free(pending);
			listed++;
			queue_entry_free(&e);
		} else {
			log_warn("queue_id=%s msg=\"unreadable queue file left alone\" error=\"%s\"",
				 ids[i], why);
		}
		free(ids[i]);
	}
	free(ids);
	return listed;
}

int queue_delete(struct queue *q, const char *id, char *err, size_t errlen)
{
	char *path;
	int ret = 0;

	for (const char *p = id; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
			snprintf(err, errlen, "no message %s in the queue", id);
			return -1;
		}
	}
	path = xasprintf("%s/%s", q->active_dir, id);
	if (access(path, F_OK) < 0) {
		snprintf(err, errlen, "no message %s in the queue", id);
		ret = -1;
	} else {
		queue_entry_remove(q, id);
	}
	free(path);
	return ret;
}
