/* Loading a queued message (its immutable active/ file) together with its delivery state
 * (state/ID, rewritten whole and atomically), and removing both once the message is done.
 *
 * state/ID lines:  attempts N / next UNIX / warned 0|1 / rcpt INDEX sent|failed|pending
 * HOST|- REPLY-TEXT. A recipient's state is written (and fsync'd) right after the remote
 * server answered for it, before anything else happens, so a crash can at worst repeat the
 * last transaction, never lose a recipient. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/core.h"
#include "queue_internal.h"

#define QUEUE_HEADER_LINE_MAX 4096
#define QUEUE_MAX_RCPTS 100000

void queue_entry_free(struct queue_entry **ep)
{
	struct queue_entry *e = ep ? *ep : NULL;

	if (e == NULL)
		return;
	for (size_t i = 0; i < e->rcpt_count; i++) {
		free(e->rcpts[i].address);
		free(e->rcpts[i].notify);
		free(e->rcpts[i].orcpt);
		free(e->rcpts[i].last_reply);
		free(e->rcpts[i].remote_host);
	}
	free(e->rcpts);
	free(e->sender);
	free(e->envid);
	free(e->ret);
	free(e->auth_user);
	free(e);
	*ep = NULL;
}

/* "rcpt pending ADDRESS notify=X orcpt=Y" */
static int parse_rcpt(struct queue_entry *e, char *rest)
{
	char *save = NULL;
	char *state = strtok_r(rest, " ", &save);
	char *address = strtok_r(NULL, " ", &save);
	char *notify = strtok_r(NULL, " ", &save);
	char *orcpt = strtok_r(NULL, " ", &save);

	if (state == NULL || address == NULL || e->rcpt_count >= QUEUE_MAX_RCPTS)
		return -1;
	e->rcpts = xrealloc(e->rcpts, (e->rcpt_count + 1) * sizeof(*e->rcpts));
	struct queue_rcpt *r = &e->rcpts[e->rcpt_count++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->notify = xstrdup(notify && strncmp(notify, "notify=", 7) == 0 ? notify + 7 : "");
	r->orcpt = xstrdup(orcpt && strncmp(orcpt, "orcpt=", 6) == 0 ? orcpt + 6 : "");
	r->state = QUEUE_RCPT_PENDING;
	return 0;
}

static void load_state(struct queue *q, struct queue_entry *e)
{
	char *path = xasprintf("%s/%s", q->state_dir, e->id);
	FILE *f = fopen(path, "r");
	char line[QUEUE_HEADER_LINE_MAX];

	free(path);
	if (f == NULL)
		return; /* never tried yet */
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "attempts ", 9) == 0) {
			e->attempts = (unsigned)strtoul(line + 9, NULL, 10);
		} else if (strncmp(line, "next ", 5) == 0) {
			e->next_attempt = strtoll(line + 5, NULL, 10);
		} else if (strncmp(line, "warned ", 7) == 0) {
			e->warned = line[7] == '1';
		} else if (strncmp(line, "rcpt ", 5) == 0) {
			char *p = line + 5, *end;
			unsigned long idx = strtoul(p, &end, 10);
			if (end == p || *end != ' ' || idx >= e->rcpt_count)
				continue;
			struct queue_rcpt *r = &e->rcpts[idx];
			p = end + 1;
			size_t w = strcspn(p, " ");
			if (strncmp(p, "sent", w) == 0 && w == 4)
				r->state = QUEUE_RCPT_SENT;
			else if (strncmp(p, "failed", w) == 0 && w == 6)
				r->state = QUEUE_RCPT_FAILED;
			else
				r->state = QUEUE_RCPT_PENDING;
			p += w;
			if (*p == ' ') {
				p++;
				size_t h = strcspn(p, " ");
				free(r->remote_host);
				r->remote_host = strcmp(p, "-") == 0 || h == 1 ? NULL : xstrndup(p, h);
				p += h;
				if (*p == ' ') {
					free(r->last_reply);
					r->last_reply = xstrdup(p + 1);
				}
			}
		}
	}
	fclose(f);
}

int queue_entry_load(struct queue *q, const char *id, struct queue_entry **e_r, char *err,
		     size_t errlen)
{
	char *path = xasprintf("%s/%s", q->active_dir, id);
	FILE *f = fopen(path, "r");
	char line[QUEUE_HEADER_LINE_MAX];
	struct queue_entry *e;
	bool magic = false;

	free(path);
	*e_r = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return -1;
	}
	e = xcalloc(1, sizeof(*e));
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);
		if (n == 0 || line[n - 1] != '\n')
			break; /* over-long or truncated header line */
		line[n - 1] = '\0';
		if (!magic) {
			if (strcmp(line, "ROOSTQ 1") != 0)
				break;
			magic = true;
		} else if (strncmp(line, "id ", 3) == 0) {
			snprintf(e->id, sizeof(e->id), "%.31s", line + 3);
		} else if (strncmp(line, "arrived ", 8) == 0) {
			e->arrived = strtoll(line + 8, NULL, 10);
		} else if (strncmp(line, "sender ", 7) == 0) {
			e->sender = xstrdup(line + 7);
		} else if (strcmp(line, "sender") == 0) {
			e->sender = xstrdup("");
		} else if (strncmp(line, "envid ", 6) == 0) {
			e->envid = xstrdup(line + 6);
		} else if (strncmp(line, "ret ", 4) == 0) {
			e->ret = xstrdup(line + 4);
		} else if (strncmp(line, "auth ", 5) == 0) {
			e->auth_user = xstrdup(line + 5);
		} else if (strncmp(line, "rcpt ", 5) == 0) {
			if (parse_rcpt(e, line + 5) < 0)
				break;
		} else if (strncmp(line, "data ", 5) == 0) {
			e->data_size = strtoull(line + 5, NULL, 10);
			e->data_offset = (uint64_t)ftell(f);
			fclose(f);
			if (e->id[0] == '\0' || e->sender == NULL || e->rcpt_count == 0) {
				snprintf(err, errlen, "incomplete header");
				queue_entry_free(&e);
				return -1;
			}
			load_state(q, e);
			*e_r = e;
			return 0;
		}
	}
	fclose(f);
	snprintf(err, errlen, "malformed queue file");
	queue_entry_free(&e);
	return -1;
}

int queue_state_save(struct queue *q, const struct queue_entry *e, char *err, size_t errlen)
{
	struct buf b;
	char *tmp = xasprintf("%s/state-%s", q->tmp_dir, e->id);
	char *path = xasprintf("%s/%s", q->state_dir, e->id);
	int fd, ret = -1;

	buf_init(&b);
	buf_printf(&b, "attempts %u\nnext %lld\nwarned %d\n", e->attempts,
		   (long long)e->next_attempt, e->warned ? 1 : 0);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct queue_rcpt *r = &e->rcpts[i];
		if (r->state == QUEUE_RCPT_PENDING && r->last_reply == NULL)
			continue;
		/* Reply text is kept on one line whatever the remote sent. */
		buf_printf(&b, "rcpt %zu %s %s ", i,
			   r->state == QUEUE_RCPT_SENT	   ? "sent"
			   : r->state == QUEUE_RCPT_FAILED ? "failed"
							   : "pending",
			   r->remote_host ? r->remote_host : "-");
		for (const char *p = r->last_reply ? r->last_reply : ""; *p; p++)
			buf_append_byte(&b, (*p == '\r' || *p == '\n') ? ' ' : (uint8_t)*p);
		buf_append_byte(&b, '\n');
	}
	pthread_mutex_lock(&q->state_lock);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0 &&
	    close(fd) == 0) {
		fd = -1;
		if (rename(tmp, path) == 0 && fs_fsync_dir(q->state_dir) == 0)
			ret = 0;
	}
	if (fd >= 0)
		close(fd);
	if (ret < 0) {
		snprintf(err, errlen, "cannot save queue state: %s", strerror(errno));
		unlink(tmp);
	}
	pthread_mutex_unlock(&q->state_lock);
	buf_free(&b);
	free(tmp);
	free(path);
	return ret;
}

void queue_entry_remove(struct queue *q, const char *id)
{
	char *a = xasprintf("%s/%s", q->active_dir, id);
	char *s = xasprintf("%s/%s", q->state_dir, id);

	unlink(a);
	unlink(s);
	fs_fsync_dir(q->active_dir);
	fs_fsync_dir(q->state_dir);
	free(a);
	free(s);
}

const uint8_t *queue_data_map(struct queue *q, const struct queue_entry *e, void **cookie_r)
{
	char *path = xasprintf("%s/%s", q->active_dir, e->id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *map;

	free(path);
	*cookie_r = NULL;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != e->data_offset + e->data_size) {
		close(fd); /* a size mismatch means a damaged file: never send half a message */
		return NULL;
	}
	map = mmap(NULL, (size_t)st.st_size ? (size_t)st.st_size : 1, PROT_READ, MAP_PRIVATE, fd,
		   0);
	close(fd);
	if (map == MAP_FAILED)
		return NULL;
	*cookie_r = map;
	return (const uint8_t *)map + e->data_offset;
}

void queue_data_unmap(void *cookie, const struct queue_entry *e)
{
	if (cookie != NULL)
		munmap(cookie, (size_t)(e->data_offset + e->data_size) ? (size_t)(e->data_offset + e->data_size) : 1);
}
