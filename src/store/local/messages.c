/* Messages of the local backend once they are saved: listing metadata in UID order, flags and
 * keywords with MODSEQ, expunge, copy/move, mapping a message for reading and the cached
 * ENVELOPE/BODYSTRUCTURE. Write paths follow the orders of local.h design notes 3 and 4. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "local.h"

void store_msg_list_free(struct store_msg **msgsp, size_t count)
{
	struct store_msg *msgs = *msgsp;

	if (msgs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(msgs[i].keywords);
	free(msgs);
	*msgsp = NULL;
}

void local_ranges_sql(struct buf *sql, const struct store_uid_range *ranges, size_t count)
{
	if (ranges == NULL)
		return;
	buf_append_str(sql, " AND (");
	for (size_t i = 0; i < count; i++) {
		uint32_t a = ranges[i].first, b = ranges[i].last;

		if (a > b) { /* RFC 9051 §9: "4:2" is the same as "2:4" */
			uint32_t t = a;
			a = b;
			b = t;
		}
		buf_printf(sql, "%suid BETWEEN %u AND %u", i > 0 ? " OR " : "", a, b);
	}
	if (count == 0)
		buf_append_str(sql, "0");
	buf_append_str(sql, ")");
}

static void msg_from_row(sqlite3_stmt *st, int col, struct store_msg *msg)
{
	const char *kw;

	msg->uid = (uint32_t)sqlite3_column_int64(st, col);
	msg->flags = (uint32_t)sqlite3_column_int64(st, col + 1);
	msg->modseq = (uint64_t)sqlite3_column_int64(st, col + 2);
	msg->internal_date = sqlite3_column_int64(st, col + 3);
	msg->size = (uint64_t)sqlite3_column_int64(st, col + 4);
	kw = (const char *)sqlite3_column_text(st, col + 5);
	msg->keywords = kw != NULL && kw[0] != '\0' ? xstrdup(kw) : NULL;
}

/* RFC 8474/8514 columns after the six of msg_from_row. Rows saved before the index kept
 * them get an EMAILID made of their mailbox id and UID with bit 62 set (new ones are random
 * below it, save.c) and their internal date as SAVEDATE; COPY and MOVE write the EMAILID
 * they read, so a message keeps it from then on. */
#define MSG_COLS                                                                              \
	"uid, flags, modseq, internal_date, size, keywords,"                                  \
	" COALESCE(emailid, (1 << 62) | (mailbox_id << 32) | uid),"                          \
	" COALESCE(savedate, internal_date), threadid"

static void msg_objects_from_row(sqlite3_stmt *st, int col, struct store_msg *msg)
{
	msg->email_id = (uint64_t)sqlite3_column_int64(st, col + 6);
	msg->save_date = sqlite3_column_int64(st, col + 7);
	msg->thread_id = (uint64_t)sqlite3_column_int64(st, col + 8); /* NULL reads 0 */
}

enum store_error local_msg_list_locked(struct store_account *acct, uint64_t mailbox_id,
				      const struct store_list_query *query, struct store_msg **msgs_r,
				      size_t *count_r, struct store_err *err_r)
{
	struct store_msg *msgs = NULL;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	int rc;

	*msgs_r = NULL;
	*count_r = 0;
	if (sqlite3_prepare_v2(acct->db,
			       "SELECT " MSG_COLS " FROM messages WHERE mailbox_id = ?1"
			       " AND uid >= ?2 AND uid <= ?3 AND modseq > ?4 ORDER BY uid",
			       -1, &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "list");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, query != NULL ? query->uid_min : 0);
	sqlite3_bind_int64(st, 3, query != NULL && query->uid_max != 0 ? query->uid_max : UINT32_MAX);
	sqlite3_bind_int64(st, 4, query != NULL ? (sqlite3_int64)query->changedsince : 0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 256;
			msgs = xrealloc(msgs, cap * sizeof(*msgs));
		}
		msg_from_row(st, 0, &msgs[count]);
		msg_objects_from_row(st, 0, &msgs[count++]);
	}
	if (rc != SQLITE_DONE)
		e = local_db_fail(acct, err_r, "list");
	sqlite3_finalize(st);
	if (e != STORE_OK) {
		store_msg_list_free(&msgs, count);
		return e;
	}
	*msgs_r = msgs;
	*count_r = count;
	return STORE_OK;
}

enum store_error store_msg_list(struct store_account *acct, uint64_t mailbox_id,
				const struct store_list_query *query, struct store_msg **msgs_r,
				size_t *count_r, struct store_err *err_r)
{
	enum store_error e;
	struct local_mbox m;

	*msgs_r = NULL;
	*count_r = 0;
	local_read_begin(acct);
	e = local_mbox_by_id(acct, mailbox_id, &m, err_r);
	if (e == STORE_OK)
		e = local_msg_list_locked(acct, mailbox_id, query, msgs_r, count_r, err_r);
	pthread_mutex_unlock(&acct->lock);
	local_mbox_clear(&m);
	return e;
}

/* ---- flags ---- */

void store_flag_result_clear(struct store_flag_result *r)
{
	for (size_t i = 0; i < r->changed_count; i++)
		free(r->changed[i].keywords);
	free(r->changed);
	free(r->failed_uids);
	memset(r, 0, sizeof(*r));
}

/* Applies op to a stored keyword string; returns a new normalised string (or NULL). */
static char *keywords_apply(const char *cur, enum store_flag_op op, const char *const *kw,
			    size_t n)
{
	const char **list = NULL;
	size_t count = 0, cap = 0;
	char *copy = cur != NULL ? xstrdup(cur) : NULL;
	char *out = NULL, *save = NULL;

	if (op != STORE_FLAGS_SET && copy != NULL) {
		for (char *t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
			bool removed = false;

			for (size_t i = 0; op == STORE_FLAGS_REMOVE && i < n; i++)
				if (strcasecmp(t, kw[i]) == 0)
					removed = true;
			if (removed)
				continue;
			if (count == cap) {
				cap = cap ? cap * 2 : 8;
				list = xrealloc(list, cap * sizeof(*list));
			}
			list[count++] = t;
		}
	}
	for (size_t i = 0; op != STORE_FLAGS_REMOVE && i < n; i++) {
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			list = xrealloc(list, cap * sizeof(*list));
		}
		list[count++] = kw[i];
	}
	/* Inputs were validated; only the count limit can fail here, and then we keep the
	 * old value rather than silently dropping keywords. */
	if (local_keywords_join(list, count, &out, NULL) != STORE_OK)
		out = cur != NULL ? xstrdup(cur) : NULL;
	free(list);
	free(copy);
	return out;
}

static bool str_eq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

struct renamed {
	char *from;
	char *to;
};

static void renames_undo(struct renamed *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rename(r[i].to, r[i].from) < 0)
			log_error("store=local op=undo-rename errno=%s", strerror(errno));
}

static void renames_free(struct renamed *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].from);
		free(r[i].to);
	}
	free(r);
}

enum store_error store_flags_update(struct store_account *acct, uint64_t mailbox_id,
				    const struct store_uid_range *ranges, size_t range_count,
				    enum store_flag_op op, uint32_t flags,
				    const char *const *keywords, size_t keyword_count,
				    uint64_t unchangedsince, struct store_flag_result *result_r,
				    struct store_err *err_r)
{
	struct store_flag_result res = { 0 };
	struct renamed *ren = NULL;
	size_t ren_count = 0;
	struct local_events evs = { 0 };
	struct local_mbox m;
	struct local_kwmap kwmap = { 0 };
	sqlite3_stmt *st = NULL, *up = NULL;
	struct buf sql;
	enum store_error e;
	char *norm_kw = NULL;
	size_t cap_changed = 0, cap_failed = 0;
	int rc;

	memset(result_r, 0, sizeof(*result_r));
	flags &= STORE_FLAGS_ALL;
	/* Validate the keywords before touching anything. */
	e = local_keywords_join(keywords, keyword_count, &norm_kw, err_r);
	free(norm_kw);
	if (e != STORE_OK)
		return e;
	local_write_begin(acct);
	e = local_mbox_by_id(acct, mailbox_id, &m, err_r);
	if (e != STORE_OK) {
		local_write_end(acct);
		return e;
	}
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0) {
		e = local_db_fail(acct, err_r, "flags");
		goto out;
	}
	buf_init(&sql);
	buf_printf(&sql, "SELECT uid, flags, modseq, internal_date, size, keywords, file "
			 "FROM messages WHERE mailbox_id = %llu",
		   (unsigned long long)mailbox_id);
	local_ranges_sql(&sql, ranges, range_count);
	buf_append_str(&sql, " ORDER BY uid");
	rc = sqlite3_prepare_v2(acct->db, buf_cstr(&sql), -1, &st, NULL);
	buf_free(&sql);
	if (rc != SQLITE_OK ||
	    sqlite3_prepare_v2(acct->db,
			       "UPDATE messages SET flags = ?, keywords = ?, modseq = ?, file = ?"
			       " WHERE mailbox_id = ? AND uid = ?",
			       -1, &up, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "flags");
		goto rollback;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_msg cur;
		const char *file = (const char *)sqlite3_column_text(st, 6);
		uint32_t nflags;
		char *nkw;

		msg_from_row(st, 0, &cur);
		nflags = op == STORE_FLAGS_SET ? flags
			 : op == STORE_FLAGS_ADD ? (cur.flags | flags)
						 : (cur.flags & ~flags);
		nkw = keywords_apply(cur.keywords, op, keywords, keyword_count);
		if (nflags == cur.flags && str_eq_null(nkw, cur.keywords)) {
			free(nkw);
			free(cur.keywords);
			continue;
		}
		/* RFC 7162 §3.2: UNCHANGEDSINCE fails for messages modified after the value. */
		if (unchangedsince != 0 && cur.modseq > unchangedsince) {
			if (res.failed_count == cap_failed) {
				cap_failed = cap_failed ? cap_failed * 2 : 16;
				res.failed_uids = xrealloc(res.failed_uids,
							   cap_failed * sizeof(uint32_t));
			}
			res.failed_uids[res.failed_count++] = cur.uid;
			free(nkw);
			free(cur.keywords);
			continue;
		}
		char *nfile = xstrdup(file);
		char old_letters[LOCAL_KW_LETTERS + 1], new_letters[LOCAL_KW_LETTERS + 1];

		local_filename_letters(file, old_letters);
		local_kwmap_letters(&kwmap, m.dir, nkw, new_letters);
		if (nflags != cur.flags || strcmp(old_letters, new_letters) != 0) {
			uint32_t u, fl;
			uint64_t sz;
			size_t base_len;

			local_parse_filename(file, &u, &sz, &fl, &base_len);
			char *base = xstrndup(file, base_len);

			free(nfile);
			nfile = local_make_filename(base, cur.uid, cur.size, nflags, new_letters);
			free(base);
			char *from = xasprintf("%s/cur/%s", m.dir, file);
			char *to = xasprintf("%s/cur/%s", m.dir, nfile);

			/* The name carries the flags only so they survive an index loss; a failed
			 * rename keeps the old name and the index still has the truth. */
			if (rename(from, to) == 0) {
				ren = xrealloc(ren, (ren_count + 1) * sizeof(*ren));
				ren[ren_count].from = from;
				ren[ren_count++].to = to;
			} else {
				free(from);
				free(to);
				free(nfile);
				nfile = xstrdup(file);
			}
		}
		m.highestmodseq++;
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, nflags);
		if (nkw != NULL)
			sqlite3_bind_text(up, 2, nkw, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(up, 2);
		sqlite3_bind_int64(up, 3, (sqlite3_int64)m.highestmodseq);
		sqlite3_bind_text(up, 4, nfile, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(up, 5, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(up, 6, cur.uid);
		free(nfile);
		if (sqlite3_step(up) != SQLITE_DONE) {
			free(nkw);
			free(cur.keywords);
			e = local_db_fail(acct, err_r, "flags");
			goto rollback;
		}
		if (res.changed_count == cap_changed) {
			cap_changed = cap_changed ? cap_changed * 2 : 16;
			res.changed = xrealloc(res.changed, cap_changed * sizeof(*res.changed));
		}
		res.changed[res.changed_count].uid = cur.uid;
		res.changed[res.changed_count].flags = nflags;
		res.changed[res.changed_count].modseq = m.highestmodseq;
		res.changed[res.changed_count++].keywords = nkw;
		free(cur.keywords);
	}
	if (rc != SQLITE_DONE) {
		e = local_db_fail(acct, err_r, "flags");
		goto rollback;
	}
	if (res.changed_count > 0 && (e = local_update_counters(acct, &m, err_r)) != STORE_OK)
		goto rollback;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	st = up = NULL;
	if (local_exec(acct, "COMMIT") < 0) {
		e = local_db_fail(acct, err_r, "flags");
		goto rollback;
	}
	if (res.changed_count > 0) {
		/* The event carries full metadata so watchers need not read the index. */
		struct store_msg *msgs = xcalloc(res.changed_count, sizeof(*msgs));
		size_t n = 0;

		if (sqlite3_prepare_v2(acct->db,
				       "SELECT " MSG_COLS " FROM messages WHERE mailbox_id = ?"
				       " AND uid = ?",
				       -1, &st, NULL) == SQLITE_OK) {
			for (size_t i = 0; i < res.changed_count; i++) {
				sqlite3_reset(st);
				sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
				sqlite3_bind_int64(st, 2, res.changed[i].uid);
				if (sqlite3_step(st) == SQLITE_ROW) {
					msg_from_row(st, 0, &msgs[n]);
					msg_objects_from_row(st, 0, &msgs[n++]);
				}
			}
			sqlite3_finalize(st);
			st = NULL;
		}
		local_events_add(&evs, STORE_EVENT_FLAGS, &m, NULL, msgs, n);
	}
	renames_free(ren, ren_count);
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
	local_mbox_clear(&m);
	local_kwmap_clear(&kwmap);
	*result_r = res;
	return STORE_OK;

rollback:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	local_exec(acct, "ROLLBACK");
	renames_undo(ren, ren_count);
out:
	renames_free(ren, ren_count);
	local_write_end(acct);
	local_mbox_clear(&m);
	local_kwmap_clear(&kwmap);
	store_flag_result_clear(&res);
	return e;
}

/* ---- expunge ---- */

enum store_error local_floor_update(struct store_account *acct, struct local_mbox *m,
				    struct store_err *err_r)
{
	sqlite3_stmt *st;
	uint32_t floor = 0;
	char *sql;

	if (sqlite3_prepare_v2(acct->db, "SELECT uid_floor FROM mailboxes WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "floor");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)m->id);
	if (sqlite3_step(st) == SQLITE_ROW)
		floor = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (floor >= m->uidnext)
		return STORE_OK;
	if (local_uidv_write(m->dir, m->uidvalidity, m->uidnext) < 0) {
		int err = errno;

		log_error("store=local op=floor account=%s errno=%s", acct->address, strerror(err));
		return local_fail(err_r, local_errno_code(err), "%s",
				  store_error_str(local_errno_code(err)));
	}
	sql = xasprintf("UPDATE mailboxes SET uid_floor = %u WHERE id = %llu", m->uidnext,
			(unsigned long long)m->id);
	/* Best effort: a stale uid_floor only means one more durable write next time. */
	local_exec(acct, sql);
	free(sql);
	return STORE_OK;
}

/* ---- expunge history (QRESYNC) ---- */

uint64_t local_modseq_floor_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Keeps the newest LIMIT_EXPUNGE_HISTORY rows of the mailbox; the floor moves up to the
 * MODSEQ of the newest row forgotten, so store_vanished_list knows what it cannot answer. */
static enum store_error expunged_trim(struct store_account *acct, uint64_t mailbox_id,
				      struct store_err *err_r)
{
	sqlite3_stmt *st;
	sqlite3_int64 cut = -1;
	int rc;

	if (sqlite3_prepare_v2(acct->db,
			       "SELECT modseq FROM expunged WHERE mailbox_id = ?1"
			       " ORDER BY modseq DESC LIMIT 1 OFFSET ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "expunge-history");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, LIMIT_EXPUNGE_HISTORY);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		cut = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return local_db_fail(acct, err_r, "expunge-history");
	if (cut < 0)
		return STORE_OK;
	char *sql = xasprintf("DELETE FROM expunged WHERE mailbox_id = %llu AND modseq <= %lld;"
			      " UPDATE expunge_floor SET modseq = max(modseq, %lld)"
			      " WHERE mailbox_id = %llu",
			      (unsigned long long)mailbox_id, (long long)cut, (long long)cut,
			      (unsigned long long)mailbox_id);

	rc = local_exec(acct, sql);
	free(sql);
	return rc == 0 ? STORE_OK : local_db_fail(acct, err_r, "expunge-history");
}

enum store_error local_expunged_record(struct store_account *acct, uint64_t mailbox_id,
				       const uint32_t *uids, size_t count, uint64_t modseq,
				       struct store_err *err_r)
{
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;

	if (count == 0)
		return STORE_OK;
	if (sqlite3_prepare_v2(acct->db,
			       "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq)"
			       " VALUES(?1, ?2, ?3)",
			       -1, &st, NULL) != SQLITE_OK)
		return local_db_fail(acct, err_r, "expunge-history");
	for (size_t i = 0; i < count && e == STORE_OK; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(st, 2, uids[i]);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		if (sqlite3_step(st) != SQLITE_DONE)
			e = local_db_fail(acct, err_r, "expunge-history");
	}
	sqlite3_finalize(st);
	return e == STORE_OK ? expunged_trim(acct, mailbox_id, err_r) : e;
}

enum store_error store_vanished_list(struct store_account *acct, uint64_t mailbox_id,
				     uint64_t since, uint32_t **uids_r, size_t *count_r,
				     bool *complete_r, struct store_err *err_r)
{
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	int rc;

	*uids_r = NULL;
	*count_r = 0;
	*complete_r = false;
	local_read_begin(acct);
	if (sqlite3_prepare_v2(acct->db,
			       "SELECT modseq FROM expunge_floor WHERE mailbox_id = ?1", -1, &st,
			       NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "vanished");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		*complete_r = since >= (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(acct->db,
			       "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2"
			       " ORDER BY uid",
			       -1, &st, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "vanished");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			uids = xrealloc(uids, cap * sizeof(*uids));
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(uids);
		uids = NULL;
		count = 0;
		e = local_db_fail(acct, err_r, "vanished");
	}
	*uids_r = uids;
	*count_r = count;
out:
	pthread_mutex_unlock(&acct->lock);
	return e;
}

enum store_error store_expunge(struct store_account *acct, uint64_t mailbox_id,
			       const struct store_uid_range *ranges, size_t range_count,
			       bool only_deleted, uint32_t **uids_r, size_t *count_r,
			       struct store_err *err_r)
{
	struct local_events evs = { 0 };
	struct local_mbox m;
	struct store_msg *gone = NULL;
	char **files = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	struct buf sql;
	enum store_error e;
	int rc;

	*uids_r = NULL;
	*count_r = 0;
	local_write_begin(acct);
	e = local_mbox_by_id(acct, mailbox_id, &m, err_r);
	if (e != STORE_OK) {
		local_write_end(acct);
		return e;
	}
	buf_init(&sql);
	buf_printf(&sql, "SELECT uid, file FROM messages WHERE mailbox_id = %llu",
		   (unsigned long long)mailbox_id);
	if (only_deleted)
		buf_printf(&sql, " AND (flags & %u) != 0", STORE_FLAG_DELETED);
	local_ranges_sql(&sql, ranges, range_count);
	buf_append_str(&sql, " ORDER BY uid");
	rc = sqlite3_prepare_v2(acct->db, buf_cstr(&sql), -1, &st, NULL);
	buf_free(&sql);
	if (rc != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "expunge");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			gone = xrealloc(gone, cap * sizeof(*gone));
			files = xrealloc(files, cap * sizeof(*files));
		}
		memset(&gone[n], 0, sizeof(gone[n]));
		gone[n].uid = (uint32_t)sqlite3_column_int64(st, 0);
		files[n++] = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		e = local_db_fail(acct, err_r, "expunge");
		goto out;
	}
	if (n == 0)
		goto out;
	if ((e = local_floor_update(acct, &m, err_r)) != STORE_OK)
		goto out;
	char *cur = xasprintf("%s/cur", m.dir);

	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", cur, files[i]);

		if (unlink(p) < 0 && errno != ENOENT)
			log_error("store=local op=expunge-unlink account=%s errno=%s",
				  acct->address, strerror(errno));
		free(p);
	}
	if (fs_fsync_dir(cur) < 0)
		log_error("store=local op=expunge-fsync account=%s errno=%s", acct->address,
			  strerror(errno));
	free(cur);
	/* From here the files are gone: the index must follow. If this commit fails, the
	 * open-time sync drops the rows whose files are missing. */
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0) {
		e = local_db_fail(acct, err_r, "expunge");
		goto out;
	}
	if (sqlite3_prepare_v2(acct->db,
			       "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2", -1, &st,
			       NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "expunge");
		local_exec(acct, "ROLLBACK");
		goto out;
	}
	sqlite3_stmt *st2 = NULL;

	if (sqlite3_prepare_v2(acct->db,
			       "DELETE FROM message_cache WHERE mailbox_id = ?1 AND uid = ?2", -1,
			       &st2, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		e = local_db_fail(acct, err_r, "expunge");
		local_exec(acct, "ROLLBACK");
		goto out;
	}
	for (size_t i = 0; i < n && e == STORE_OK; i++) {
		sqlite3_stmt *both[2] = { st, st2 };

		for (int k = 0; k < 2; k++) {
			sqlite3_reset(both[k]);
			sqlite3_bind_int64(both[k], 1, (sqlite3_int64)mailbox_id);
			sqlite3_bind_int64(both[k], 2, gone[i].uid);
			if (sqlite3_step(both[k]) != SQLITE_DONE)
				e = local_db_fail(acct, err_r, "expunge");
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(st2);
	m.highestmodseq++; /* RFC 7162 §3.2.10: expunges raise HIGHESTMODSEQ too */
	uint32_t *uids = xcalloc(n, sizeof(*uids));

	for (size_t i = 0; i < n; i++)
		uids[i] = gone[i].uid;
	if (e == STORE_OK)
		e = local_expunged_record(acct, mailbox_id, uids, n, m.highestmodseq, err_r);
	if (e == STORE_OK)
		e = local_update_counters(acct, &m, err_r);
	if (e == STORE_OK && local_exec(acct, "COMMIT") < 0)
		e = local_db_fail(acct, err_r, "expunge");
	if (e != STORE_OK) {
		free(uids);
		local_exec(acct, "ROLLBACK");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	local_events_add(&evs, STORE_EVENT_EXPUNGE, &m, NULL, gone, n);
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
	local_mbox_clear(&m);
	*uids_r = uids;
	*count_r = n;
	local_quota_after_change(acct); /* the space is free now: a warning may be forgotten */
	return STORE_OK;
out:
	local_write_end(acct);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	free(gone);
	local_mbox_clear(&m);
	return e;
}

/* ---- copy / move ---- */

void store_uid_map_clear(struct store_uid_map *map)
{
	free(map->src_uids);
	free(map->dst_uids);
	memset(map, 0, sizeof(*map));
}

/* Hard link when possible (same file system, no bytes copied); otherwise a durable copy. */
int local_link_or_copy(const char *from, const char *to)
{
	int in, out;
	uint8_t block[65536];
	ssize_t r;

	if (link(from, to) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((r = read(in, block, sizeof(block))) > 0) {
		if (write(out, block, (size_t)r) != r) {
			r = -1;
			break;
		}
	}
	if (r == 0 && fsync(out) < 0)
		r = -1;
	int saved = errno;

	close(in);
	close(out);
	if (r < 0) {
		unlink(to);
		errno = saved ? saved : EIO;
		return -1;
	}
	return 0;
}

enum store_error local_copy_locked(struct store_account *acct, struct local_mbox *src,
				   const struct store_uid_range *ranges, size_t range_count,
				   struct local_mbox *dst, bool move, struct store_uid_map *map_r,
				   struct local_events *evs, struct store_err *err_r)
{
	struct store_uid_map map = { 0 };
	struct store_msg *added = NULL, *removed = NULL;
	struct renamed *done = NULL;
	size_t done_count = 0, cap = 0;
	sqlite3_stmt *sel = NULL, *ins = NULL, *cache = NULL, *del = NULL, *delc = NULL;
	struct local_mbox dst_before = *dst, src_before = *src;
	struct local_kwmap dst_kwmap = { 0 };
	struct buf sql;
	enum store_error e = STORE_OK;
	int rc;

	/* RFC 6851 §3.3 lets MOVE name the source mailbox: the messages get new UIDs there.
	 * src and dst are then two copies of one row, and only dst's counters are written. */
	bool same = src->id == dst->id;
	int64_t now = time_wall_seconds();

	map.dst_uidvalidity = dst->uidvalidity;
	if (move && (e = local_floor_update(acct, src, err_r)) != STORE_OK)
		return e;
	if (local_exec(acct, "BEGIN IMMEDIATE") < 0)
		return local_db_fail(acct, err_r, "copy");
	buf_init(&sql);
	buf_printf(&sql, "SELECT " MSG_COLS ", file FROM messages WHERE mailbox_id = %llu",
		   (unsigned long long)src->id);
	local_ranges_sql(&sql, ranges, range_count);
	buf_append_str(&sql, " ORDER BY uid");
	rc = sqlite3_prepare_v2(acct->db, buf_cstr(&sql), -1, &sel, NULL);
	buf_free(&sql);
	if (rc != SQLITE_OK ||
	    sqlite3_prepare_v2(acct->db,
			       "INSERT INTO messages(mailbox_id, uid, file, flags, keywords, modseq,"
			       " internal_date, size, emailid, savedate, threadid)"
			       " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(acct->db,
			       "INSERT OR REPLACE INTO message_cache(mailbox_id, uid, envelope,"
			       " bodystructure) SELECT ?1, ?2, envelope, bodystructure"
			       " FROM message_cache WHERE mailbox_id = ?3 AND uid = ?4",
			       -1, &cache, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(acct->db, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", -1,
			       &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(acct->db,
			       "DELETE FROM message_cache WHERE mailbox_id = ? AND uid = ?", -1,
			       &delc, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "copy");
		goto fail;
	}
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		struct store_msg msg;
		char base[200];
		const char *file = (const char *)sqlite3_column_text(sel, 9);

		msg_from_row(sel, 0, &msg);
		msg_objects_from_row(sel, 0, &msg);
		msg.save_date = now; /* RFC 8514 §3: a copy is saved now; EMAILID goes along */
		if (dst->uidnext == UINT32_MAX) {
			free(msg.keywords);
			e = local_fail(err_r, STORE_ERR_LIMIT, "Mailbox is out of UIDs");
			goto fail;
		}
		local_new_base(acct->store, base, sizeof(base));
		uint32_t src_uid = msg.uid;
		char letters[LOCAL_KW_LETTERS + 1];

		/* Letters belong to a folder: the destination's may differ from the source's. */
		local_kwmap_letters(&dst_kwmap, dst->dir, msg.keywords, letters);
		char *nfile = local_make_filename(base, dst->uidnext, msg.size, msg.flags, letters);
		char *from = xasprintf("%s/cur/%s", src->dir, file);
		char *to = xasprintf("%s/cur/%s", dst->dir, nfile);

		if ((move ? rename(from, to) : local_link_or_copy(from, to)) < 0) {
			int err = errno;

			log_error("store=local op=copy account=%s errno=%s", acct->address,
				  strerror(err));
			free(from);
			free(to);
			free(nfile);
			free(msg.keywords);
			e = err == ENOENT ? local_fail(err_r, STORE_ERR_IO, "Message file missing")
					  : local_fail(err_r, local_errno_code(err), "%s",
						       store_error_str(local_errno_code(err)));
			goto fail;
		}
		if (done_count == cap) {
			cap = cap ? cap * 2 : 32;
			done = xrealloc(done, cap * sizeof(*done));
			map.src_uids = xrealloc(map.src_uids, cap * sizeof(uint32_t));
			map.dst_uids = xrealloc(map.dst_uids, cap * sizeof(uint32_t));
			added = xrealloc(added, cap * sizeof(*added));
			removed = xrealloc(removed, cap * sizeof(*removed));
		}
		done[done_count].from = from;
		done[done_count].to = to;
		map.src_uids[done_count] = src_uid;
		map.dst_uids[done_count] = dst->uidnext;
		msg.uid = dst->uidnext++;
		msg.modseq = ++dst->highestmodseq;
		added[done_count] = msg;
		memset(&removed[done_count], 0, sizeof(removed[done_count]));
		removed[done_count].uid = src_uid;
		done_count++;

		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)dst->id);
		sqlite3_bind_int64(ins, 2, msg.uid);
		sqlite3_bind_text(ins, 3, nfile, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins, 4, msg.flags);
		if (msg.keywords != NULL)
			sqlite3_bind_text(ins, 5, msg.keywords, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(ins, 5);
		sqlite3_bind_int64(ins, 6, (sqlite3_int64)msg.modseq);
		sqlite3_bind_int64(ins, 7, msg.internal_date);
		sqlite3_bind_int64(ins, 8, (sqlite3_int64)msg.size);
		sqlite3_bind_int64(ins, 9, (sqlite3_int64)msg.email_id);
		sqlite3_bind_int64(ins, 10, msg.save_date);
		if (msg.thread_id != 0)
			sqlite3_bind_int64(ins, 11, (sqlite3_int64)msg.thread_id);
		else
			sqlite3_bind_null(ins, 11);
		free(nfile);
		sqlite3_reset(cache);
		sqlite3_bind_int64(cache, 1, (sqlite3_int64)dst->id);
		sqlite3_bind_int64(cache, 2, msg.uid);
		sqlite3_bind_int64(cache, 3, (sqlite3_int64)src->id);
		sqlite3_bind_int64(cache, 4, src_uid);
		if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_step(cache) != SQLITE_DONE) {
			e = local_db_fail(acct, err_r, "copy");
			goto fail;
		}
		if (move) {
			sqlite3_stmt *both[2] = { del, delc };

			for (int k = 0; k < 2; k++) {
				sqlite3_reset(both[k]);
				sqlite3_bind_int64(both[k], 1, (sqlite3_int64)src->id);
				sqlite3_bind_int64(both[k], 2, src_uid);
				if (sqlite3_step(both[k]) != SQLITE_DONE) {
					e = local_db_fail(acct, err_r, "copy");
					goto fail;
				}
			}
		}
	}
	if (rc != SQLITE_DONE) {
		e = local_db_fail(acct, err_r, "copy");
		goto fail;
	}
	/* RFC 9208 §4.3: a copy that would pass a limit stores nothing. The triggers have
	 * already counted the new rows, so the row is the usage after the commit. */
	if (!move && done_count > 0) {
		uint64_t bytes, messages;

		if (local_quota_usage(acct, &bytes, &messages) != STORE_OK) {
			e = local_db_fail(acct, err_r, "copy-quota");
			goto fail;
		}
		if (local_quota_exceeded(acct, bytes, messages)) {
			e = local_fail(err_r, STORE_ERR_OVER_QUOTA, "%s",
				       store_error_str(STORE_ERR_OVER_QUOTA));
			goto fail;
		}
	}
	if (done_count > 0) {
		char *d = xasprintf("%s/cur", dst->dir);
		int r = fs_fsync_dir(d);

		free(d);
		if (r == 0 && move) {
			d = xasprintf("%s/cur", src->dir);
			r = fs_fsync_dir(d);
			free(d);
		}
		if (r < 0) {
			int err = errno;

			log_error("store=local op=copy-fsync account=%s errno=%s", acct->address,
				  strerror(err));
			e = local_fail(err_r, local_errno_code(err), "%s",
				       store_error_str(local_errno_code(err)));
			goto fail;
		}
		if (move) {
			/* Moved within one mailbox, only dst's counters are written (see same). */
			uint64_t *modseq = same ? &dst->highestmodseq : &src->highestmodseq;
			uint32_t *gone_uids = xcalloc(done_count, sizeof(*gone_uids));

			(*modseq)++;
			for (size_t i = 0; i < done_count; i++)
				gone_uids[i] = removed[i].uid;
			e = local_expunged_record(acct, src->id, gone_uids, done_count, *modseq,
						  err_r);
			free(gone_uids);
			if (e != STORE_OK)
				goto fail;
		}
		if ((e = local_update_counters(acct, dst, err_r)) != STORE_OK ||
		    (move && !same && (e = local_update_counters(acct, src, err_r)) != STORE_OK))
			goto fail;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(cache);
	sqlite3_finalize(del);
	sqlite3_finalize(delc);
	sel = ins = cache = del = delc = NULL;
	if (local_exec(acct, "COMMIT") < 0) {
		e = local_db_fail(acct, err_r, "copy");
		goto fail;
	}
	renames_free(done, done_count);
	map.count = done_count;
	if (done_count > 0) {
		local_events_add(evs, STORE_EVENT_APPEND, dst, NULL, added, done_count);
		added = NULL;
		if (move) {
			local_events_add(evs, STORE_EVENT_EXPUNGE, src, NULL, removed, done_count);
			removed = NULL;
		}
	}
	free(added);
	free(removed);
	local_kwmap_clear(&dst_kwmap);
	if (map_r != NULL)
		*map_r = map;
	else
		store_uid_map_clear(&map);
	return STORE_OK;
fail:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(cache);
	sqlite3_finalize(del);
	sqlite3_finalize(delc);
	local_exec(acct, "ROLLBACK");
	/* Undo in reverse: a move renames back, a copy unlinks the new name. */
	for (size_t i = done_count; i-- > 0;) {
		if (move)
			renames_undo(&done[i], 1);
		else
			unlink(done[i].to);
	}
	renames_free(done, done_count);
	if (added != NULL)
		store_msg_list_free(&added, done_count);
	free(removed);
	store_uid_map_clear(&map);
	dst->uidnext = dst_before.uidnext;
	dst->highestmodseq = dst_before.highestmodseq;
	src->highestmodseq = src_before.highestmodseq;
	local_kwmap_clear(&dst_kwmap);
	return e;
}

enum store_error store_copy(struct store_account *acct, uint64_t src_id,
			    const struct store_uid_range *ranges, size_t range_count,
			    uint64_t dst_id, bool move, struct store_uid_map *map_r,
			    struct store_err *err_r)
{
	struct local_events evs = { 0 };
	struct local_mbox src, dst;
	enum store_error e;

	if (map_r != NULL)
		memset(map_r, 0, sizeof(*map_r));
	if (!move)
		local_quota_refresh(acct);
	local_write_begin(acct);
	e = local_mbox_by_id(acct, src_id, &src, err_r);
	if (e != STORE_OK) {
		local_write_end(acct);
		return e;
	}
	e = local_mbox_by_id(acct, dst_id, &dst, err_r);
	if (e != STORE_OK) {
		local_write_end(acct);
		local_mbox_clear(&src);
		return e;
	}
	/* The observer needs the UID map even when the caller does not. */
	struct store_uid_map own_map = { 0 };
	struct store_uid_map *map = map_r != NULL ? map_r : &own_map;
	e = local_copy_locked(acct, &src, ranges, range_count, &dst, move, map, &evs, err_r);
	local_unlock_publish(acct, true, evs.ev, evs.count);
	local_events_clear(&evs);
	if (e == STORE_OK && acct->store->copy_cb != NULL && map->count > 0) {
		struct store_copy_event ev = {
			.acct = acct, .address = acct->address, .src_id = src.id, .dst_id = dst.id,
			.src_special = src.special_use, .dst_special = dst.special_use,
			.move = move, .map = map,
		};
		acct->store->copy_cb(&ev, acct->store->copy_ctx);
	}
	store_uid_map_clear(&own_map);
	local_mbox_clear(&src);
	local_mbox_clear(&dst);
	if (e == STORE_OK && !move)
		local_quota_after_change(acct);
	return e;
}

void store_set_copy_observer(struct store *store, store_copy_cb *cb, void *ctx)
{
	store->copy_cb = cb;
	store->copy_ctx = ctx;
}

/* ---- reading ---- */

/* Messages up to this size are read into the heap; larger ones are mapped. Mapping is what
 * keeps a large message out of memory, but each munmap in a multi-threaded process flushes the
 * TLB of every CPU the process runs on, which costs more than copying a small message. */
#define LOCAL_READ_MAX (128 * 1024)

struct store_message {
	uint8_t *data;
	size_t len;
	bool mapped; /* data is an mmap (else heap) */
};

/* Reads or maps the whole file behind FD into MSG; -1 with errno on failure. */
static int message_load(int fd, size_t size, struct store_message *msg)
{
	if (size > LOCAL_READ_MAX) {
		void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);

		if (p == MAP_FAILED)
			return -1;
		msg->data = p;
		msg->mapped = true;
		msg->len = size;
		return 0;
	}
	msg->data = xmalloc(size);
	msg->len = 0;
	while (msg->len < size) {
		ssize_t n = pread(fd, msg->data + msg->len, size - msg->len, (off_t)msg->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A file shorter than its fstat means it changed under us: Maildir files are
			 * written once, so this is damage, not a race to wait out. */
			if (n == 0)
				errno = EIO;
			free(msg->data);
			msg->data = NULL;
			return -1;
		}
		msg->len += (size_t)n;
	}
	return 0;
}

static const char message_file_sql[] = "SELECT file FROM messages WHERE mailbox_id = ? AND uid = ?";

enum store_error store_message_open(struct store_account *acct, uint64_t mailbox_id, uint32_t uid,
				    struct store_message **msg_r, struct store_err *err_r)
{
	struct local_mbox m;
	sqlite3_stmt *st;
	enum store_error e;
	int fd = -1, rc;
	struct stat sb;

	*msg_r = NULL;
	local_read_begin(acct);
	e = local_mbox_by_id(acct, mailbox_id, &m, err_r);
	if (e != STORE_OK) {
		pthread_mutex_unlock(&acct->lock);
		return e;
	}
	st = local_stmt(acct, message_file_sql);
	if (st == NULL) {
		e = local_db_fail(acct, err_r, "message-open");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* Opened under the lock so a concurrent flag rename cannot race the lookup. */
		char *p = xasprintf("%s/cur/%s", m.dir, (const char *)sqlite3_column_text(st, 0));

		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int saved = errno;
			log_error("store=local op=message-open account=%s uid=%u path=%s errno=%s",
				  acct->address, uid, p, strerror(saved));
			e = local_fail(err_r, STORE_ERR_IO, "%s",
				       saved == ENOENT ? "Message file is missing"
						       : "Message file cannot be read");
		}
		free(p);
	} else if (rc == SQLITE_DONE) {
		e = local_fail(err_r, STORE_ERR_NOT_FOUND, "No such message");
	} else {
		e = local_db_fail(acct, err_r, "message-open");
	}
	local_stmt_done(st);
out:
	pthread_mutex_unlock(&acct->lock);
	local_mbox_clear(&m);
	if (e != STORE_OK)
		return e;
	struct store_message *msg = xcalloc(1, sizeof(*msg));

	if (fstat(fd, &sb) < 0) {
		close(fd);
		free(msg);
		return local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
	}
	if (sb.st_size > 0 && message_load(fd, (size_t)sb.st_size, msg) < 0) {
		log_error("store=local op=message-read account=%s mailbox_id=%llu uid=%u errno=%s",
			  acct->address, (unsigned long long)mailbox_id, uid, strerror(errno));
		close(fd);
		free(msg);
		return local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
	}
	close(fd);
	*msg_r = msg;
	return STORE_OK;
}

const uint8_t *store_message_data(const struct store_message *msg, size_t *len_r)
{
	static const uint8_t empty[1] = { 0 };

	*len_r = msg->len;
	return msg->data != NULL ? msg->data : empty;
}

void store_message_close(struct store_message **msgp)
{
	struct store_message *msg = *msgp;

	if (msg == NULL)
		return;
	if (msg->mapped)
		munmap(msg->data, msg->len);
	else
		free(msg->data);
	free(msg);
	*msgp = NULL;
}

static char *column_dup(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	return t != NULL ? xstrdup(t) : NULL;
}

enum store_error store_message_cache(struct store_account *acct, uint64_t mailbox_id,
				     uint32_t uid, char **envelope_r, char **bodystructure_r,
				     struct store_err *err_r)
{
	struct store_message *msg;
	sqlite3_stmt *st;
	enum store_error e = STORE_OK;
	bool found = false;
	int rc;

	*envelope_r = NULL;
	*bodystructure_r = NULL;
	local_read_begin(acct);
	if (!local_db_ready(acct, err_r)) {
		pthread_mutex_unlock(&acct->lock);
		return STORE_ERR_IO;
	}
	if (sqlite3_prepare_v2(acct->db,
			       "SELECT envelope, bodystructure FROM message_cache"
			       " WHERE mailbox_id = ? AND uid = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "cache");
		pthread_mutex_unlock(&acct->lock);
		return e;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*envelope_r = column_dup(st, 0);
		*bodystructure_r = column_dup(st, 1);
		found = *envelope_r != NULL && *bodystructure_r != NULL;
	} else if (rc != SQLITE_DONE) {
		e = local_db_fail(acct, err_r, "cache");
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&acct->lock);
	if (e != STORE_OK || found)
		return e;
	free(*envelope_r);
	free(*bodystructure_r);
	*envelope_r = NULL;
	*bodystructure_r = NULL;
	/* Not cached (found on disk, or saved before the MIME layer could parse it): compute it
	 * now and remember it. */
	e = store_message_open(acct, mailbox_id, uid, &msg, err_r);
	if (e != STORE_OK)
		return e;
	size_t len;
	const uint8_t *data = store_message_data(msg, &len);

	local_mime_cache(data, len, envelope_r, bodystructure_r, NULL);
	store_message_close(&msg);
	if (*envelope_r == NULL && *bodystructure_r == NULL)
		return STORE_OK;
	local_read_begin(acct);
	if (acct->db != NULL &&
	    sqlite3_prepare_v2(acct->db,
			       "INSERT OR REPLACE INTO message_cache(mailbox_id, uid, envelope,"
			       " bodystructure) SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM"
			       " messages WHERE mailbox_id = ?1 AND uid = ?2)",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(st, 2, uid);
		sqlite3_bind_text(st, 3, *envelope_r, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, *bodystructure_r, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
		/* a message's envelope appeared: the keys derived without it are stale */
		local_note_index_write(acct);
	}
	pthread_mutex_unlock(&acct->lock);
	return STORE_OK;
}
