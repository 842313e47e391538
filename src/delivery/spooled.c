/* The spooled transaction: used when checks are registered (check.h). The data goes to an
 * unlinked file in DATA_DIR/tmp as it arrives (no fsync: if we crash, nothing was acknowledged
 * and the file is gone with its last descriptor); at the end the file is mapped, the checks run
 * over it in order, and only an accepted message is written into the store save and the queue
 * entry: Return-Path:, Received:, the verdict's header fields, then the data minus the ranges a
 * check dropped, copied from the mapping in bounded chunks so that a large message is never
 * copied whole into memory. Each mailbox whose verdict says junk gets its copy in the account's
 * \Junk mailbox instead of INBOX (one save still serves every mailbox). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/core.h"
#include "delivery_internal.h"

#define SPOOL_COPY_CHUNK (64 * 1024)

static int spool_create(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	char *path = xasprintf("%s/spool-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd;
}

int delivery_spool_open(struct delivery_txn *t, char *err, size_t errlen)
{
	const char *dir = t->d->spool_dir;

	t->spool_fd = spool_create(dir);
	if (t->spool_fd < 0 && errno == ENOENT && fs_mkdir_p(dir) == 0)
		t->spool_fd = spool_create(dir);
	if (t->spool_fd < 0) {
		snprintf(err, errlen, "cannot create a spool file in %s: %s", dir, strerror(errno));
		return -1;
	}
	t->spool_len = 0;
	return 0;
}

int delivery_spool_write(struct delivery_txn *t, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(t->spool_fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("msg=\"spool write failed\" error=\"%s\"",
				  n < 0 ? strerror(errno) : "short write");
			return -1;
		}
		p += n;
		len -= (size_t)n;
		t->spool_len += (uint64_t)n;
	}
	return 0;
}

void delivery_spool_close(struct delivery_txn *t)
{
	if (t->spool_fd >= 0)
		close(t->spool_fd);
	t->spool_fd = -1;
}

/* The name of the account's \Junk mailbox (heap), creating "Junk" with \Junk when it has
 * none; NULL (logged) when neither works, and the copy goes to INBOX. */
static char *junk_mailbox(struct store_account *acct, const char *address)
{
	struct store_err serr = { STORE_OK, "" };
	struct store_mailbox_info *list = NULL;
	struct store_mailbox_info info;
	size_t count = 0;
	char *name = NULL;

	if (store_mailbox_list(acct, &list, &count, &serr) == STORE_OK) {
		for (size_t i = 0; i < count && name == NULL; i++)
			if (list[i].special_use & STORE_SPECIAL_JUNK)
				name = xstrdup(list[i].name);
		store_mailbox_list_free(&list, count);
	}
	if (name != NULL)
		return name;
	memset(&info, 0, sizeof(info));
	if (store_mailbox_create(acct, "Junk", STORE_SPECIAL_JUNK, &serr) == STORE_OK ||
	    store_mailbox_get(acct, "Junk", &info, &serr) == STORE_OK) {
		store_mailbox_info_clear(&info);
		return xstrdup("Junk");
	}
	log_error("msg=\"no Junk mailbox; delivering to INBOX\" mailbox=%s error=\"%s\"", address,
		  serr.text);
	return NULL;
}

static int write_range(struct delivery_txn *t, const uint8_t *msg, size_t from, size_t to)
{
	while (from < to) {
		size_t n = to - from > SPOOL_COPY_CHUNK ? SPOOL_COPY_CHUNK : to - from;
		if (delivery_txn_write_outputs(t, msg + from, n) < 0)
			return -1;
		from += n;
	}
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct delivery_range *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The data minus the dropped ranges (in offset order; overlaps and ranges past the end are
 * clipped). */
static int write_kept(struct delivery_txn *t, const uint8_t *msg, size_t len,
		      const struct delivery_verdict *v)
{
	struct delivery_range drops[DELIVERY_VERDICT_MAX_DROPS];
	size_t pos = 0;

	memcpy(drops, v->drops, v->drop_count * sizeof(drops[0]));
	qsort(drops, v->drop_count, sizeof(drops[0]), range_cmp);
	for (size_t i = 0; i < v->drop_count; i++) {
		size_t start = drops[i].offset < len ? drops[i].offset : len;
		size_t end = drops[i].len < len - start ? start + drops[i].len : len;
		if (start > pos && write_range(t, msg, pos, start) < 0)
			return -1;
		if (end > pos)
			pos = end;
	}
	return write_range(t, msg, pos, len);
}

static void run_checks(struct delivery_txn *t, const uint8_t *msg, size_t len,
		       struct delivery_verdict *v)
{
	const struct delivery_envelope *env = &t->env;
	struct delivery_check_input in = {
		.msg = msg,
		.len = len,
		.sender = env->sender,
		.helo = env->helo ? env->helo : "",
		.client_ip = env->client_ip ? env->client_ip : "",
		.auth_user = env->auth_user,
		.rcpts = env->rcpts,
		.rcpt_count = env->rcpt_count,
		.mailboxes = (const char *const *)t->mailboxes,
		.mailbox_count = t->mailbox_count,
	};

	for (size_t i = 0; i < t->d->check_count; i++) {
		const struct delivery_check *c = &t->d->checks[i];
		enum delivery_check_action before = v->action;
		c->fn(c->arg, &in, v);
		if (v->action != before) {
			metrics_message_rejected(metrics_reject_reason_of_check(c->name));
			log_info("msg=\"check refused the message\" check=%s action=%s "
				 "reason=\"%s\"",
				 c->name, v->action == DELIVERY_CHECK_REJECT ? "reject" : "tempfail",
				 v->reason);
		}
	}
}

/* Opens the outputs with each mailbox's target (INBOX or its \Junk) and writes the message. */
static int write_accepted(struct delivery_txn *t, const uint8_t *msg, size_t len,
			  const struct delivery_verdict *v, char *err, size_t errlen)
{
	char **names = xcalloc(t->mailbox_count ? t->mailbox_count : 1, sizeof(*names));
	int rc;

	for (size_t i = 0; i < t->mailbox_count; i++) {
		if (!v->junk[i])
			continue;
		names[i] = junk_mailbox(t->accounts[i], t->mailboxes[i]);
		if (names[i] != NULL)
			log_info("msg=\"filed as junk\" mailbox=%s folder=\"%s\"", t->mailboxes[i],
				 names[i]);
	}
	rc = delivery_txn_open_outputs(t, t->received, (const char *const *)names, err, errlen);
	for (size_t i = 0; i < t->mailbox_count; i++)
		free(names[i]);
	free(names);
	if (rc == 0 && v->headers.len > 0 &&
	    delivery_txn_write_outputs(t, v->headers.data, v->headers.len) < 0)
		rc = -1;
	if (rc == 0 && write_kept(t, msg, len, v) < 0)
		rc = -1;
	if (rc < 0 && err[0] == '\0')
		snprintf(err, errlen, "cannot write the message");
	return rc;
}

int delivery_spool_run(struct delivery_txn *t, struct delivery_refusal *refusal_r, char *err,
		       size_t errlen)
{
	static const uint8_t empty[1];
	struct delivery_verdict v;
	const uint8_t *msg = empty;
	size_t len = (size_t)t->spool_len;
	void *map = NULL;
	int rc;

	if (len > 0) {
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, t->spool_fd, 0);
		if (map == MAP_FAILED) {
			snprintf(err, errlen, "cannot map the spool: %s", strerror(errno));
			return -1;
		}
		madvise(map, len, MADV_SEQUENTIAL);
		msg = map;
	}
	memset(&v, 0, sizeof(v));
	v.action = DELIVERY_CHECK_ACCEPT;
	v.spam_score = NAN;
	buf_init(&v.headers);
	v.junk = xcalloc(t->mailbox_count ? t->mailbox_count : 1, sizeof(*v.junk));

	run_checks(t, msg, len, &v);
	if (v.action != DELIVERY_CHECK_ACCEPT) {
		refusal_r->action = v.action;
		if (v.reply[0] == '\0') /* a check that gave no wording */
			snprintf(v.reply, sizeof(v.reply), "%s",
				 v.action == DELIVERY_CHECK_REJECT
					 ? "554 5.7.0 Message refused"
					 : "451 4.7.0 Message cannot be accepted now; try again later");
		snprintf(refusal_r->reply, sizeof(refusal_r->reply), "%s", v.reply);
		snprintf(refusal_r->reason, sizeof(refusal_r->reason), "%s", v.reason);
		rc = 1;
	} else if (v.discard) {
		log_info("msg=\"kept by a check, delivered nowhere\" sender=<%s>", t->env.sender);
		rc = 0; /* no outputs open: finishing commits nothing, every outcome is ok */
	} else {
		rc = write_accepted(t, msg, len, &v, err, errlen);
	}
	if (map != NULL)
		munmap(map, len);
	buf_free(&v.headers);
	free(v.junk);
	return rc;
}
