/* Saving messages: the streamed save context (tmp/ file), and the per-account group commit
 * queue that turns many concurrent saves into one directory fsync and one SQLite transaction
 * (local.h design notes 3 and 6). APPEND, SMTP delivery, COPY fallbacks and import all end
 * here. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

struct save_target {
	struct store_account *acct;
	char *mailbox;
	char *tmp_path;
	char base[200];
	struct commit_item item;
};

struct store_save {
	struct save_target *targets;
	size_t count;
	uint64_t max_size;
	int fd;
	uint64_t size;
	enum store_error failed; /* sticky write error */
	bool sealed;             /* the spool file is fsync'd and closed (save_seal) */
	char *envelope;          /* cached at seal time; NULL when the MIME layer could not */
	char *bodystructure;
	uint64_t thread_id;      /* RFC 8474 THREADID, 0 = none */
	bool quota_exempt;       /* local_save_exempt */
};

void local_commit_queue_init(struct store_account *acct)
{
	pthread_mutex_init(&acct->q_lock, NULL);
	pthread_cond_init(&acct->q_cond, NULL);
	acct->q_head = NULL;
	acct->q_tail = &acct->q_head;
	acct->q_leader = false;
}

/* ---- the commit of one batch, performed by the leader ---- */

struct batch_mbox {
	struct local_mbox m;
	enum store_error lookup;
	struct store_msg *added;
	size_t added_count;
	bool touched;
};

static struct batch_mbox *batch_mbox_get(struct store_account *acct, struct batch_mbox **boxes,
					 size_t *count, const char *name)
{
	for (size_t i = 0; i < *count; i++)
		if (strcmp((*boxes)[i].m.name, name) == 0)
			return &(*boxes)[i];
	*boxes = xrealloc(*boxes, (*count + 1) * sizeof(**boxes));
	struct batch_mbox *b = &(*boxes)[(*count)++];

	memset(b, 0, sizeof(*b));
	b->lookup = local_mbox_by_name(acct, name, &b->m, NULL);
	if (b->lookup != STORE_OK)
		b->m.name = xstrdup(name); /* remember the miss */
	return b;
}

/* A new RFC 8474 EMAILID: 62 random bits. Ids of messages saved before the index kept them
 * are made up from the row (bit 62 set, MSG_COLS in messages.c), so the two never meet. */
static uint64_t new_email_id(void)
{
	uint64_t id = 0;

	while (getrandom(&id, sizeof(id), 0) < 0 && errno == EINTR)
		;
	id &= (UINT64_C(1) << 62) - 1;
	return id != 0 ? id : 1;
}

/* The items of a group, from its first one. */
static size_t group_size(const struct commit_item *it)
{
	return it->group_len > 1 ? it->group_len : 1;
}

/* RFC 3502 §6.3.11: a group is stored whole or not at all. Everything that can refuse one
 * item (missing mailbox, quota, UIDs) is checked for the whole group before anything of it
 * is renamed; an error here marks every item of the group and the batch goes on without it. */
static enum store_error group_precheck(struct store_account *acct, struct batch_mbox **boxes,
				       size_t *box_count, const struct commit_item *first,
				       uint64_t quota_bytes, uint64_t quota_msgs,
				       uint64_t used_bytes, uint64_t used_msgs)
{
	size_t n = group_size(first);
	uint64_t bytes = 0;
	const struct commit_item *it = first;

	for (size_t i = 0; i < n; i++, it = it->next) {
		struct batch_mbox *b = batch_mbox_get(acct, boxes, box_count, it->mailbox);

		if (b->lookup != STORE_OK)
			return b->lookup;
		if (b->m.uidnext > UINT32_MAX - n)
			return STORE_ERR_LIMIT;
		bytes += it->size;
	}
	if (!first->quota_exempt &&
	    (used_bytes + bytes > quota_bytes || used_msgs + n > quota_msgs))
		return STORE_ERR_OVER_QUOTA;
	return STORE_OK;
}

static void commit_batch(struct store_account *acct, struct commit_item *batch)
{
	struct batch_mbox *boxes = NULL;
	size_t box_count = 0;
	char **renamed = NULL;
	size_t renamed_count = 0;
	struct local_events evs = { 0 };
	sqlite3_stmt *ins = NULL, *cache = NULL;
	enum store_error batch_err = STORE_OK;
	uint64_t quota_bytes = atomic_load(&acct->quota_bytes);
	uint64_t quota_msgs = atomic_load(&acct->quota_messages);
	uint64_t used_bytes = 0, used_msgs = 0;
	int64_t now = time_wall_seconds();
	size_t group_left = 0; /* items of the current group still to come, this one included */

	local_write_begin(acct);
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0 ||
	    sqlite3_prepare_v2(acct->db,
			       "INSERT INTO messages(mailbox_id, uid, file, flags, keywords, modseq,"
			       " internal_date, size, emailid, savedate, threadid)"
			       " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(acct->db,
			       "INSERT OR REPLACE INTO message_cache(mailbox_id, uid, envelope,"
			       " bodystructure) VALUES(?, ?, ?, ?)",
			       -1, &cache, NULL) != SQLITE_OK) {
		batch_err = local_db_fail(acct, NULL, "save-begin");
		goto fail;
	}
	if (local_quota_usage(acct, &used_bytes, &used_msgs) != STORE_OK) {
		batch_err = local_db_fail(acct, NULL, "save-quota");
		goto fail;
	}
	for (struct commit_item *it = batch; it != NULL; it = it->next) {
		if (group_left == 0 && group_size(it) > 1) {
			enum store_error ge = group_precheck(acct, &boxes, &box_count, it, quota_bytes,
							     quota_msgs, used_bytes, used_msgs);

			if (ge != STORE_OK) {
				for (size_t i = group_size(it); i > 1; i--, it = it->next)
					it->error = ge;
				it->error = ge;
				continue;
			}
			group_left = group_size(it);
		}
		bool in_group = group_left > 0;

		if (group_left > 0)
			group_left--;
		struct batch_mbox *b = batch_mbox_get(acct, &boxes, &box_count, it->mailbox);

		if (b->lookup != STORE_OK) {
			it->error = b->lookup;
			continue;
		}
		if (!it->quota_exempt &&
		    (used_bytes + it->size > quota_bytes || used_msgs + 1 > quota_msgs)) {
			it->error = STORE_ERR_OVER_QUOTA;
			continue;
		}
		if (b->m.uidnext == UINT32_MAX) {
			it->error = STORE_ERR_LIMIT;
			continue;
		}
		uint32_t uid = b->m.uidnext;
		struct local_kwmap kwmap = { 0 };
		char letters[LOCAL_KW_LETTERS + 1];

		/* Only APPEND with keywords reads the folder's letters (deliveries have none). */
		local_kwmap_letters(&kwmap, b->m.dir, it->keywords, letters);
		local_kwmap_clear(&kwmap);
		char *fname = local_make_filename(it->base, uid, it->size, it->flags, letters);
		char *dest = xasprintf("%s/cur/%s", b->m.dir, fname);

		if (rename(it->tmp_path, dest) < 0) {
			int err = errno;

			log_error("store=local op=save-rename account=%s errno=%s", acct->address,
				  strerror(err));
			it->error = local_errno_code(err);
			free(fname);
			free(dest);
			/* Part of a group is already in: only the whole batch can be taken back. */
			if (in_group) {
				batch_err = it->error;
				goto fail;
			}
			continue;
		}
		renamed = xrealloc(renamed, (renamed_count + 1) * sizeof(*renamed));
		renamed[renamed_count++] = dest;
		b->m.uidnext++;
		b->m.highestmodseq++;
		b->touched = true;
		used_bytes += it->size;
		used_msgs++;
		it->uid = uid;
		it->uidvalidity = b->m.uidvalidity;

		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)b->m.id);
		sqlite3_bind_int64(ins, 2, uid);
		sqlite3_bind_text(ins, 3, fname, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins, 4, it->flags);
		if (it->keywords != NULL)
			sqlite3_bind_text(ins, 5, it->keywords, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 5);
		sqlite3_bind_int64(ins, 6, (sqlite3_int64)b->m.highestmodseq);
		sqlite3_bind_int64(ins, 7, it->internal_date);
		sqlite3_bind_int64(ins, 8, (sqlite3_int64)it->size);
		uint64_t email_id = new_email_id();

		sqlite3_bind_int64(ins, 9, (sqlite3_int64)email_id);
		sqlite3_bind_int64(ins, 10, now);
		if (it->thread_id != 0)
			sqlite3_bind_int64(ins, 11, (sqlite3_int64)it->thread_id);
		else
			sqlite3_bind_null(ins, 11);
		free(fname);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			batch_err = local_db_fail(acct, NULL, "save-insert");
			goto fail;
		}
		if (it->envelope != NULL || it->bodystructure != NULL) {
			sqlite3_reset(cache);
			sqlite3_bind_int64(cache, 1, (sqlite3_int64)b->m.id);
			sqlite3_bind_int64(cache, 2, uid);
			sqlite3_bind_text(cache, 3, it->envelope, -1, SQLITE_STATIC);
			sqlite3_bind_text(cache, 4, it->bodystructure, -1, SQLITE_STATIC);
			if (sqlite3_step(cache) != SQLITE_DONE) {
				batch_err = local_db_fail(acct, NULL, "save-cache");
				goto fail;
			}
		}
		b->added = xrealloc(b->added, (b->added_count + 1) * sizeof(*b->added));
		struct store_msg *msg = &b->added[b->added_count++];

		msg->uid = uid;
		msg->flags = it->flags;
		msg->modseq = b->m.highestmodseq;
		msg->internal_date = it->internal_date;
		msg->size = it->size;
		msg->keywords = it->keywords != NULL ? xstrdup(it->keywords) : NULL;
		msg->email_id = email_id;
		msg->save_date = now;
		msg->thread_id = it->thread_id;
	}
	/* One fsync per touched cur/ for the whole batch: the renames are durable. */
	for (size_t i = 0; i < box_count; i++) {
		if (!boxes[i].touched)
			continue;
		char *cur = xasprintf("%s/cur", boxes[i].m.dir);
		int r = fs_fsync_dir(cur);
		int err = errno;

		free(cur);
		if (r < 0) {
			log_error("store=local op=save-fsync-dir account=%s errno=%s", acct->address,
				  strerror(err));
			batch_err = local_errno_code(err);
			goto fail;
		}
		if (local_update_counters(acct, &boxes[i].m, NULL) != STORE_OK) {
			batch_err = STORE_ERR_IO;
			goto fail;
		}
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(cache);
	ins = cache = NULL;
	if (local_exec(acct, "COMMIT") < 0) {
		batch_err = local_db_fail(acct, NULL, "save-commit");
		goto fail;
	}
	for (size_t i = 0; i < renamed_count; i++)
		free(renamed[i]);
	free(renamed);
	for (size_t i = 0; i < box_count; i++) {
		if (boxes[i].added_count > 0)
			local_events_add(&evs, STORE_EVENT_APPEND, &boxes[i].m, NULL, boxes[i].added,
					 boxes[i].added_count);
		local_mbox_clear(&boxes[i].m);
	}
	free(boxes);
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
	return;

fail:
	sqlite3_finalize(ins);
	sqlite3_finalize(cache);
	local_exec(acct, "ROLLBACK");
	/* Nothing of this batch may stay visible: take the renamed files out again. */
	for (size_t i = 0; i < renamed_count; i++) {
		if (unlink(renamed[i]) < 0)
			log_error("store=local op=save-undo account=%s errno=%s", acct->address,
				  strerror(errno));
		free(renamed[i]);
	}
	free(renamed);
	for (size_t i = 0; i < box_count; i++) {
		if (boxes[i].touched) {
			char *cur = xasprintf("%s/cur", boxes[i].m.dir);

			fs_fsync_dir(cur);
			free(cur);
		}
		store_msg_list_free(&boxes[i].added, boxes[i].added_count);
		local_mbox_clear(&boxes[i].m);
	}
	free(boxes);
	for (struct commit_item *it = batch; it != NULL; it = it->next) {
		if (it->error == STORE_OK)
			it->error = batch_err;
		it->uid = 0;
	}
	local_write_end(acct);
}

/* Queues ITEMS (count of them, linked in this order) under one lock, so that a group stays
 * contiguous in the queue. */
static void queue_push_items(struct store_account *acct, struct commit_item **items, size_t count)
{
	pthread_mutex_lock(&acct->q_lock);
	for (size_t i = 0; i < count; i++) {
		items[i]->next = NULL;
		items[i]->done = false;
		*acct->q_tail = items[i];
		acct->q_tail = &items[i]->next;
	}
	pthread_mutex_unlock(&acct->q_lock);
}

static void queue_push(struct store_account *acct, struct commit_item *item)
{
	queue_push_items(acct, &item, 1);
}

/* The last item of the group (or lone item) that starts at IT. */
static struct commit_item *group_last(struct commit_item *it)
{
	for (size_t i = group_size(it); i > 1; i--)
		it = it->next;
	return it;
}

/* Waits until item is committed, leading batches whenever no other thread does. */
static void queue_wait(struct store_account *acct, struct commit_item *item)
{
	pthread_mutex_lock(&acct->q_lock);
	while (!item->done) {
		if (acct->q_leader || acct->q_head == NULL) {
			pthread_cond_wait(&acct->q_cond, &acct->q_lock);
			continue;
		}
		struct commit_item *batch = acct->q_head, *last = group_last(batch);
		size_t n = group_size(batch);

		/* A group is never split between batches (it may make one batch larger). */
		while (last->next != NULL && n + group_size(last->next) <= LIMIT_STORE_COMMIT_BATCH) {
			n += group_size(last->next);
			last = group_last(last->next);
		}
		acct->q_head = last->next;
		if (acct->q_head == NULL)
			acct->q_tail = &acct->q_head;
		last->next = NULL;
		acct->q_leader = true;
		pthread_mutex_unlock(&acct->q_lock);

		uint64_t commit_start = metrics_now_ns();
		commit_batch(acct, batch);
		metrics_observe_since(METRICS_HIST_STORE_COMMIT, commit_start);

		pthread_mutex_lock(&acct->q_lock);
		for (struct commit_item *it = batch, *nx; it != NULL; it = nx) {
			nx = it->next;
			it->done = true;
		}
		acct->q_leader = false;
		pthread_cond_broadcast(&acct->q_cond);
	}
	pthread_mutex_unlock(&acct->q_lock);
}

/* ---- the save context ---- */

static void save_free(struct store_save *save)
{
	for (size_t i = 0; i < save->count; i++) {
		struct save_target *t = &save->targets[i];

		if (t->tmp_path != NULL) {
			unlink(t->tmp_path);
			free(t->tmp_path);
		}
		free(t->mailbox);
		free(t->item.keywords);
	}
	if (save->fd >= 0)
		close(save->fd);
	free(save->envelope);
	free(save->bodystructure);
	free(save->targets);
	free(save);
}

enum store_error store_save_begin_multi(const struct store_save_target *targets, size_t count,
					struct store_save **save_r, struct store_err *err_r)
{
	struct store_save *save;
	enum store_error e;

	*save_r = NULL;
	if (count == 0)
		return local_fail(err_r, STORE_ERR_INVALID, "No target mailbox");
	if (count > LIMIT_SMTP_RECIPIENTS_MAX)
		return local_fail(err_r, STORE_ERR_LIMIT, "Too many target mailboxes");
	save = xcalloc(1, sizeof(*save));
	save->fd = -1;
	save->targets = xcalloc(count, sizeof(*save->targets));
	save->count = count;
	save->max_size = targets[0].acct->store->max_message_size;
	for (size_t i = 0; i < count; i++) {
		char canon[LIMIT_MAILBOX_NAME + 1];
		struct save_target *t = &save->targets[i];
		struct local_mbox m;

		t->acct = targets[i].acct;
		local_quota_refresh(t->acct);
		e = store_mailbox_name_check(targets[i].mailbox != NULL ? targets[i].mailbox : "INBOX",
					     canon, err_r);
		if (e != STORE_OK)
			goto fail;
		t->mailbox = xstrdup(canon);
		/* Fail early (before the client sends the bytes); checked again at commit. */
		pthread_mutex_lock(&t->acct->lock);
		e = local_mbox_by_name(t->acct, canon, &m, err_r);
		pthread_mutex_unlock(&t->acct->lock);
		local_mbox_clear(&m);
		if (e != STORE_OK)
			goto fail;
	}
	struct save_target *t0 = &save->targets[0];

	local_new_base(t0->acct->store, t0->base, sizeof(t0->base));
	t0->tmp_path = xasprintf("%s/tmp/%s", t0->acct->dir, t0->base);
	save->fd = open(t0->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (save->fd < 0) {
		int err = errno;

		log_error("store=local op=save-open account=%s errno=%s", t0->acct->address,
			  strerror(err));
		free(t0->tmp_path);
		t0->tmp_path = NULL;
		e = local_fail(err_r, local_errno_code(err), "%s",
			       store_error_str(local_errno_code(err)));
		goto fail;
	}
	*save_r = save;
	return STORE_OK;
fail:
	save_free(save);
	return e;
}

enum store_error store_save_begin(struct store_account *acct, const char *mailbox,
				  struct store_save **save_r, struct store_err *err_r)
{
	struct store_save_target t = { acct, mailbox };

	return store_save_begin_multi(&t, 1, save_r, err_r);
}

enum store_error store_save_write(struct store_save *save, const void *data, size_t len,
				  struct store_err *err_r)
{
	const uint8_t *p = data;

	if (save->failed != STORE_OK)
		return local_fail(err_r, save->failed, "%s", store_error_str(save->failed));
	if (save->sealed)
		return local_fail(err_r, STORE_ERR_INVALID, "Message already complete");
	if (len > save->max_size || save->size + len > save->max_size) {
		save->failed = STORE_ERR_LIMIT;
		return local_fail(err_r, STORE_ERR_LIMIT, "Message too large");
	}
	while (len > 0) {
		ssize_t w = write(save->fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = w < 0 ? errno : ENOSPC;

			log_error("store=local op=save-write account=%s errno=%s",
				  save->targets[0].acct->address, strerror(err));
			save->failed = local_errno_code(err);
			return local_fail(err_r, save->failed, "%s", store_error_str(save->failed));
		}
		p += w;
		len -= (size_t)w;
		save->size += (uint64_t)w;
	}
	return STORE_OK;
}

void store_save_abort(struct store_save **savep)
{
	if (*savep == NULL)
		return;
	save_free(*savep);
	*savep = NULL;
}

/* Makes the spooled octets durable and caches ENVELOPE/BODYSTRUCTURE, outside every lock.
 * Once sealed a save holds no file descriptor, which is what lets a MULTIAPPEND keep many
 * messages waiting for their common commit. */
static enum store_error save_seal(struct store_save *save, struct store_err *err_r)
{
	struct save_target *t0 = &save->targets[0];

	if (save->failed != STORE_OK)
		return local_fail(err_r, save->failed, "%s", store_error_str(save->failed));
	if (save->sealed)
		return STORE_OK;
	uint64_t fsync_start = metrics_now_ns();
	int fsync_rc = fsync(save->fd);
	metrics_observe_since(METRICS_HIST_FSYNC, fsync_start);
	if (fsync_rc < 0) {
		int err = errno;

		log_error("store=local op=save-fsync account=%s errno=%s", t0->acct->address,
			  strerror(err));
		save->failed = local_errno_code(err);
		return local_fail(err_r, save->failed, "%s", store_error_str(save->failed));
	}
	close(save->fd);
	save->fd = -1;
	save->sealed = true;
	if (save->size > 0) {
		int fd = open(t0->tmp_path, O_RDONLY | O_CLOEXEC);
		void *map = fd >= 0 ? mmap(NULL, save->size, PROT_READ, MAP_SHARED, fd, 0)
				    : MAP_FAILED;

		if (map != MAP_FAILED) {
			local_mime_cache(map, save->size, &save->envelope, &save->bodystructure,
					 &save->thread_id);
			munmap(map, save->size);
		}
		if (fd >= 0)
			close(fd);
	}
	return STORE_OK;
}

enum store_error store_save_seal(struct store_save *save, struct store_err *err_r)
{
	return save_seal(save, err_r);
}

static void item_fill(struct commit_item *item, struct save_target *t, const struct store_save *save,
		      const struct store_save_meta *meta, const char *keywords, int64_t idate)
{
	item->mailbox = t->mailbox;
	item->tmp_path = t->tmp_path;
	item->base = t->base;
	item->size = save->size;
	item->flags = meta != NULL ? (meta->flags & STORE_FLAGS_ALL) : 0;
	item->keywords = keywords != NULL ? xstrdup(keywords) : NULL;
	item->internal_date = idate;
	item->envelope = save->envelope;
	item->bodystructure = save->bodystructure;
	item->thread_id = save->thread_id;
	item->quota_exempt = save->quota_exempt;
	item->group_len = 0;
}

static int64_t meta_date(const struct store_save_meta *meta)
{
	return meta != NULL && meta->internal_date != 0 ? meta->internal_date : time_wall_seconds();
}

enum store_error store_save_finish(struct store_save **savep, const struct store_save_meta *meta,
				   struct store_save_result *results_r, struct store_err *err_r)
{
	struct store_save *save = *savep;
	struct save_target *t0 = &save->targets[0];
	char *keywords = NULL;
	enum store_error e, first_err = STORE_OK;
	int64_t idate = meta_date(meta);

	*savep = NULL;
	if (results_r != NULL)
		memset(results_r, 0, save->count * sizeof(*results_r));
	if (meta != NULL &&
	    (e = local_keywords_join(meta->keywords, meta->keyword_count, &keywords, err_r)) !=
		    STORE_OK)
		goto out;
	if ((e = save_seal(save, err_r)) != STORE_OK)
		goto out;
	for (size_t i = 0; i < save->count; i++) {
		struct save_target *t = &save->targets[i];

		if (i > 0) {
			local_new_base(t->acct->store, t->base, sizeof(t->base));
			t->tmp_path = xasprintf("%s/tmp/%s", t->acct->dir, t->base);
			if (local_link_or_copy(t0->tmp_path, t->tmp_path) < 0) {
				int err = errno;

				log_error("store=local op=save-link account=%s errno=%s",
					  t->acct->address, strerror(err));
				free(t->tmp_path);
				t->tmp_path = NULL;
				t->item.error = local_errno_code(err);
				t->item.done = true;
				continue;
			}
		}
		item_fill(&t->item, t, save, meta, keywords, idate);
		queue_push(t->acct, &t->item);
	}
	for (size_t i = 0; i < save->count; i++) {
		struct save_target *t = &save->targets[i];

		if (!t->item.done)
			queue_wait(t->acct, &t->item);
		if (t->item.error == STORE_OK) {
			free(t->tmp_path); /* renamed into cur/: nothing to unlink */
			t->tmp_path = NULL;
		} else if (first_err == STORE_OK) {
			first_err = t->item.error;
		}
		if (results_r != NULL) {
			results_r[i].error = t->item.error;
			results_r[i].uid = t->item.uid;
			results_r[i].uidvalidity = t->item.uidvalidity;
		}
	}
	e = first_err;
	if (e != STORE_OK)
		local_fail(err_r, e, "%s", store_error_str(e));
	for (size_t i = 0; i < save->count && !save->quota_exempt; i++)
		if (save->targets[i].item.error == STORE_OK)
			local_quota_after_change(save->targets[i].acct);
out:
	if (e != STORE_OK && results_r != NULL)
		for (size_t i = 0; i < save->count; i++)
			if (results_r[i].error == STORE_OK && results_r[i].uid == 0)
				results_r[i].error = e;
	free(keywords);
	save_free(save);
	return e;
}

/* Fails every result with E, frees every save. */
static enum store_error finish_all_fail(struct store_save **saves, size_t count,
					struct store_save_result *results_r, enum store_error e)
{
	for (size_t i = 0; i < count; i++) {
		if (results_r != NULL) {
			results_r[i].error = e;
			results_r[i].uid = 0;
			results_r[i].uidvalidity = 0;
		}
		store_save_abort(&saves[i]);
	}
	return e;
}

enum store_error store_save_finish_all(struct store_save **saves, size_t count,
				       const struct store_save_meta *metas,
				       struct store_save_result *results_r, struct store_err *err_r)
{
	struct commit_item **items;
	struct store_account *acct;
	enum store_error e = STORE_OK;

	if (count == 0)
		return local_fail(err_r, STORE_ERR_INVALID, "No message");
	acct = saves[0]->targets[0].acct;
	for (size_t i = 0; i < count && e == STORE_OK; i++) {
		const struct store_save_meta *meta = metas != NULL ? &metas[i] : NULL;
		struct store_save *save = saves[i];
		struct save_target *t = &save->targets[0];
		char *keywords = NULL;

		if (save->count != 1 || t->acct != acct) {
			e = local_fail(err_r, STORE_ERR_INVALID, "Messages of one account only");
			break;
		}
		if (meta != NULL &&
		    (e = local_keywords_join(meta->keywords, meta->keyword_count, &keywords,
					     err_r)) != STORE_OK)
			break;
		if ((e = save_seal(save, err_r)) == STORE_OK)
			item_fill(&t->item, t, save, meta, keywords, meta_date(meta));
		free(keywords);
	}
	if (e != STORE_OK)
		return finish_all_fail(saves, count, results_r, e);
	items = xcalloc(count, sizeof(*items));
	for (size_t i = 0; i < count; i++)
		items[i] = &saves[i]->targets[0].item;
	items[0]->group_len = count;
	queue_push_items(acct, items, count);
	/* The group commits in one batch: waiting for its last item waits for all. */
	for (size_t i = 0; i < count; i++)
		if (!items[i]->done)
			queue_wait(acct, items[i]);
	for (size_t i = 0; i < count; i++) {
		struct save_target *t = &saves[i]->targets[0];

		if (t->item.error != STORE_OK && e == STORE_OK)
			e = t->item.error;
		if (results_r != NULL) {
			results_r[i].error = t->item.error;
			results_r[i].uid = t->item.uid;
			results_r[i].uidvalidity = t->item.uidvalidity;
		}
	}
	free(items);
	if (e != STORE_OK) {
		/* Never a part: the group's checks come before any of it is renamed, and a
		 * failure after that takes the whole batch back, so no item is in the index. */
		local_fail(err_r, e, "%s", store_error_str(e));
		for (size_t i = 0; i < count; i++) {
			if (results_r != NULL) {
				results_r[i].error = e;
				results_r[i].uid = 0;
			}
			store_save_abort(&saves[i]);
		}
		return e;
	}
	for (size_t i = 0; i < count; i++) {
		struct save_target *t = &saves[i]->targets[0];

		free(t->tmp_path); /* renamed into cur/: nothing to unlink */
		t->tmp_path = NULL;
		store_save_abort(&saves[i]);
	}
	local_quota_after_change(acct);
	return STORE_OK;
}

enum store_error local_save_exempt(struct store_account *acct, const char *text, size_t len)
{
	struct store_save *save;
	enum store_error e = store_save_begin(acct, NULL, &save, NULL);

	if (e != STORE_OK)
		return e;
	save->quota_exempt = true;
	e = store_save_write(save, text, len, NULL);
	if (e != STORE_OK) {
		store_save_abort(&save);
		return e;
	}
	return store_save_finish(&save, NULL, NULL, NULL);
}
