/* Recovery: reconciles the Maildir++ tree with the SQLite index. Run when an account is first
 * opened by this process (repairing whatever a crash left between a file operation and its
 * commit), when the index had to be rebuilt, and for new/ when a session refreshes. UIDs and
 * system flags come from the file names, UIDVALIDITY and the UID floor from roost-uidvalidity
 * (local.h design notes 2-4). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "local.h"

struct index_row {
	uint32_t uid;
	char *file;
	bool seen;
};

struct found_file {
	char *name;
	bool in_new; /* found in new/ rather than cur/ */
	uint32_t uid;
};

struct file_list {
	struct found_file *v;
	size_t count;
};

static void file_list_add(struct file_list *l, const char *name, bool in_new, uint32_t uid)
{
	l->v = xrealloc(l->v, (l->count + 1) * sizeof(*l->v));
	l->v[l->count].name = xstrdup(name);
	l->v[l->count].in_new = in_new;
	l->v[l->count].uid = uid;
	l->count++;
}

static void file_list_free(struct file_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cmp_uid(const void *a, const void *b)
{
	const struct found_file *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int cmp_name(const void *a, const void *b)
{
	const struct found_file *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static struct index_row *row_find(struct index_row *rows, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rows[mid].uid == uid)
			return &rows[mid];
		if (rows[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Unreferenced tmp/ files older than LIMIT_STORE_TMP_AGE are leftovers of crashed saves. */
static void clean_tmp(const char *folder)
{
	char *tmp = xasprintf("%s/tmp", folder);
	DIR *d = opendir(tmp);
	struct dirent *de;
	time_t now = time(NULL);

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			struct stat st;

			if (de->d_name[0] == '.')
				continue;
			char *p = xasprintf("%s/%s", tmp, de->d_name);

			if (stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
			    now - st.st_mtime > LIMIT_STORE_TMP_AGE)
				unlink(p);
			free(p);
		}
		closedir(d);
	}
	free(tmp);
}

static enum store_error insert_row(struct store_account *acct, sqlite3_stmt *ins,
				   struct local_mbox *m, uint32_t uid, const char *file,
				   uint32_t flags, const char *keywords, int64_t idate,
				   uint64_t size, struct store_msg **added, size_t *added_count)
{
	m->highestmodseq++;
	sqlite3_reset(ins);
	sqlite3_bind_int64(ins, 1, (sqlite3_int64)m->id);
	sqlite3_bind_int64(ins, 2, uid);
	sqlite3_bind_text(ins, 3, file, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(ins, 4, flags);
	if (keywords != NULL)
		sqlite3_bind_text(ins, 5, keywords, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(ins, 5);
	sqlite3_bind_int64(ins, 6, (sqlite3_int64)m->highestmodseq);
	sqlite3_bind_int64(ins, 7, idate);
	sqlite3_bind_int64(ins, 8, (sqlite3_int64)size);
	if (sqlite3_step(ins) != SQLITE_DONE)
		return local_db_fail(acct, NULL, "sync-insert");
	*added = xrealloc(*added, (*added_count + 1) * sizeof(**added));
	struct store_msg *msg = &(*added)[(*added_count)++];

	memset(msg, 0, sizeof(*msg));
	msg->uid = uid;
	msg->flags = flags;
	msg->keywords = keywords != NULL ? xstrdup(keywords) : NULL;
	msg->modseq = m->highestmodseq;
	msg->internal_date = idate;
	msg->size = size;
	return STORE_OK;
}

enum store_error local_sync_mailbox(struct store_account *acct, struct local_mbox *m, bool full,
				    bool adopt_any, struct store_msg **added_r,
				    size_t *added_count_r, struct store_err *err_r)
{
	struct index_row *rows = NULL;
	size_t row_count = 0;
	struct file_list adopt = { 0 }, fresh = { 0 }, renames = { 0 };
	struct store_msg *added = NULL;
	size_t added_count = 0;
	struct local_kwmap kwmap = { 0 };
	char *cur = xasprintf("%s/cur", m->dir), *newdir = xasprintf("%s/new", m->dir);
	sqlite3_stmt *st = NULL, *ins = NULL;
	enum store_error e = STORE_OK;
	bool dropped = false, used_new = false;
	DIR *d;
	struct dirent *de;

	*added_r = NULL;
	*added_count_r = 0;
	if (full) {
		clean_tmp(m->dir);
		if (sqlite3_prepare_v2(acct->db,
				       "SELECT uid, file FROM messages WHERE mailbox_id = ? ORDER BY uid",
				       -1, &st, NULL) != SQLITE_OK) {
			e = local_db_fail(acct, err_r, "sync");
			goto out;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)m->id);
		size_t cap = 0;

		while (sqlite3_step(st) == SQLITE_ROW) {
			if (row_count == cap) {
				cap = cap ? cap * 2 : 1024;
				rows = xrealloc(rows, cap * sizeof(*rows));
			}
			rows[row_count].uid = (uint32_t)sqlite3_column_int64(st, 0);
			rows[row_count].file = xstrdup((const char *)sqlite3_column_text(st, 1));
			rows[row_count++].seen = false;
		}
		sqlite3_finalize(st);
		st = NULL;
		d = opendir(cur);
		if (d == NULL && errno == ENOENT && local_folder_create_dirs(m->dir) == 0)
			d = opendir(cur); /* cur/ removed by hand: an empty folder again */
		if (d == NULL) {
			e = local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
			log_error("store=local op=sync account=%s errno=%s", acct->address,
				  strerror(errno));
			goto out;
		}
		while ((de = readdir(d)) != NULL) {
			uint32_t uid, flags;
			uint64_t size;
			size_t base_len;

			if (de->d_name[0] == '.')
				continue;
			local_parse_filename(de->d_name, &uid, &size, &flags, &base_len);
			struct index_row *r = uid != 0 ? row_find(rows, row_count, uid) : NULL;

			if (r != NULL && !r->seen) {
				r->seen = true;
				if (strcmp(r->file, de->d_name) != 0)
					file_list_add(&renames, de->d_name, false, uid);
			} else if (r == NULL && uid != 0 && (adopt_any || uid >= m->uidnext)) {
				file_list_add(&adopt, de->d_name, false, uid);
			} else {
				file_list_add(&fresh, de->d_name, false, 0);
			}
		}
		closedir(d);
		for (size_t i = 0; i < row_count; i++)
			if (!rows[i].seen)
				dropped = true;
	}
	/* new/ holds mail other programs delivered: always a fresh UID. */
	d = opendir(newdir);
	if (d != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				file_list_add(&fresh, de->d_name, true, 0);
		closedir(d);
	}
	if (adopt.count == 0 && fresh.count == 0 && renames.count == 0 && !dropped)
		goto out;

	if (local_exec(acct, "BEGIN IMMEDIATE") < 0 ||
	    sqlite3_prepare_v2(acct->db,
			       "INSERT INTO messages(mailbox_id, uid, file, flags, keywords, modseq,"
			       " internal_date, size) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &ins, NULL) != SQLITE_OK) {
		e = local_db_fail(acct, err_r, "sync");
		goto rollback;
	}
	/* Index rows whose file is gone: a removal whose commit did not happen, or a file
	 * deleted by hand. */
	for (size_t i = 0; i < row_count; i++) {
		if (rows[i].seen)
			continue;
		/* The QRESYNC history gets the MODSEQ this sync's commit will carry. */
		char *sql = xasprintf("DELETE FROM messages WHERE mailbox_id = %llu AND uid = %u;"
				      " DELETE FROM message_cache WHERE mailbox_id = %llu AND uid = %u;"
				      " INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq)"
				      " VALUES(%llu, %u, %llu)",
				      (unsigned long long)m->id, rows[i].uid,
				      (unsigned long long)m->id, rows[i].uid,
				      (unsigned long long)m->id, rows[i].uid,
				      (unsigned long long)(m->highestmodseq + 1));
		int r = local_exec(acct, sql);

		free(sql);
		if (r < 0) {
			e = local_db_fail(acct, err_r, "sync");
			goto rollback;
		}
		log_warn("store=local op=sync account=%s mailbox_id=%llu uid=%u action=drop-missing",
			 acct->address, (unsigned long long)m->id, rows[i].uid);
		local_note_removal(acct);
	}
	for (size_t i = 0; i < renames.count; i++) {
		char *sql = xasprintf("UPDATE messages SET file = ? WHERE mailbox_id = %llu AND uid = %u",
				      (unsigned long long)m->id, renames.v[i].uid);

		if (sqlite3_prepare_v2(acct->db, sql, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, renames.v[i].name, -1, SQLITE_STATIC);
			sqlite3_step(st);
			sqlite3_finalize(st);
			st = NULL;
		}
		free(sql);
	}
	/* Files that kept their UID (a save whose commit did not happen, or a rebuild). */
	if (adopt.count > 1)
		qsort(adopt.v, adopt.count, sizeof(*adopt.v), cmp_uid);
	for (size_t i = 0; i < adopt.count; i++) {
		uint32_t uid, flags;
		uint64_t size;
		size_t base_len;
		struct stat sb;

		if (i > 0 && adopt.v[i].uid == adopt.v[i - 1].uid) {
			file_list_add(&fresh, adopt.v[i].name, false, 0);
			continue;
		}
		char *p = xasprintf("%s/%s", cur, adopt.v[i].name);
		int r = stat(p, &sb);

		free(p);
		if (r < 0 || !S_ISREG(sb.st_mode))
			continue;
		local_parse_filename(adopt.v[i].name, &uid, &size, &flags, &base_len);
		/* A file we named: its letters give back the keywords (kwletters.c). */
		char *keywords = local_kwmap_keywords(&kwmap, m->dir, adopt.v[i].name);

		e = insert_row(acct, ins, m, uid, adopt.v[i].name, flags, keywords, sb.st_mtime,
			       (uint64_t)sb.st_size, &added, &added_count);
		free(keywords);
		if (e != STORE_OK)
			goto rollback;
		if (uid >= m->uidnext)
			m->uidnext = uid == UINT32_MAX ? UINT32_MAX : uid + 1;
	}
	/* Everything else gets the next UIDs, in name order (Maildir names start with the
	 * delivery time). */
	if (fresh.count > 1)
		qsort(fresh.v, fresh.count, sizeof(*fresh.v), cmp_name);
	for (size_t i = 0; i < fresh.count; i++) {
		uint32_t uid, flags;
		uint64_t size;
		size_t base_len;
		struct stat sb;
		char *from = xasprintf("%s/%s", fresh.v[i].in_new ? newdir : cur, fresh.v[i].name);

		if (stat(from, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0 ||
		    m->uidnext == UINT32_MAX) {
			if (sb.st_size == 0)
				log_warn("store=local op=sync account=%s file=empty action=skip",
					 acct->address);
			free(from);
			continue;
		}
		local_parse_filename(fresh.v[i].name, &uid, &size, &flags, &base_len);
		char *base = xstrndup(fresh.v[i].name, base_len);
		/* Names from other programs may hold anything; keep only safe bytes. */
		for (char *c = base; *c != '\0'; c++)
			if (*c == '/' || *c == ':' || *c == ',' || (unsigned char)*c < 0x21)
				*c = '_';
		uid = m->uidnext++;
		/* Letters in names we did not make mean nothing here: no keywords. */
		char *nname = local_make_filename(base, uid, (uint64_t)sb.st_size, flags, NULL);
		char *to = xasprintf("%s/%s", cur, nname);

		free(base);
		if (rename(from, to) < 0) {
			log_error("store=local op=sync-rename account=%s errno=%s", acct->address,
				  strerror(errno));
			free(from);
			free(to);
			free(nname);
			continue;
		}
		used_new |= fresh.v[i].in_new;
		free(from);
		free(to);
		e = insert_row(acct, ins, m, uid, nname, flags, NULL, sb.st_mtime,
			       (uint64_t)sb.st_size, &added, &added_count);
		free(nname);
		if (e != STORE_OK)
			goto rollback;
	}
	if (fs_fsync_dir(cur) < 0 || (used_new && fs_fsync_dir(newdir) < 0)) {
		int err = errno;

		e = local_fail(err_r, local_errno_code(err), "%s",
			       store_error_str(local_errno_code(err)));
		goto rollback;
	}
	if (dropped)
		m->highestmodseq++;
	if ((e = local_update_counters(acct, m, err_r)) != STORE_OK)
		goto rollback;
	sqlite3_finalize(ins);
	ins = NULL;
	if (local_exec(acct, "COMMIT") < 0) {
		e = local_db_fail(acct, err_r, "sync");
		goto rollback;
	}
	*added_r = added;
	*added_count_r = added_count;
	added = NULL;
	goto out;
rollback:
	/* Renamed files keep their new U= names; the next sync adopts them. */
	sqlite3_finalize(ins);
	ins = NULL;
	local_exec(acct, "ROLLBACK");
out:
	sqlite3_finalize(ins);
	store_msg_list_free(&added, added_count);
	for (size_t i = 0; i < row_count; i++)
		free(rows[i].file);
	free(rows);
	file_list_free(&adopt);
	file_list_free(&fresh);
	file_list_free(&renames);
	local_kwmap_clear(&kwmap);
	free(cur);
	free(newdir);
	return e;
}

struct folder {
	char *name;
	bool has_row;
};

enum store_error local_sync_account(struct store_account *acct, struct store_err *err_r)
{
	struct folder *folders = NULL;
	size_t folder_count = 0;
	uint64_t *new_ids = NULL;
	size_t new_count = 0;
	enum store_error e = STORE_OK;
	sqlite3_stmt *st;
	DIR *d;
	struct dirent *de;
	char name[LIMIT_MAILBOX_NAME + 1];

	d = opendir(acct->dir);
	if (d == NULL)
		return local_fail(err_r, STORE_ERR_IO, "%s", store_error_str(STORE_ERR_IO));
	while ((de = readdir(d)) != NULL) {
		char *p = xasprintf("%s/%s", acct->dir, de->d_name);
		struct stat sb;

		if (strncmp(de->d_name, "roost-deleted.", 14) == 0) {
			local_rm_rf(p); /* a DELETE interrupted after its commit */
		} else if (local_folder_decode(de->d_name, name, sizeof(name)) == 0 &&
			   stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			folders = xrealloc(folders, (folder_count + 1) * sizeof(*folders));
			folders[folder_count].name = xstrdup(name);
			folders[folder_count++].has_row = false;
		}
		free(p);
	}
	closedir(d);
	char *root_cur = xasprintf("%s/cur", acct->dir);

	if (access(root_cur, F_OK) == 0) {
		folders = xrealloc(folders, (folder_count + 1) * sizeof(*folders));
		folders[folder_count].name = xstrdup("INBOX");
		folders[folder_count++].has_row = false;
	}
	free(root_cur);

	if (local_exec(acct, "BEGIN IMMEDIATE") < 0) {
		e = local_db_fail(acct, err_r, "sync-account");
		goto out;
	}
	if (sqlite3_prepare_v2(acct->db, "SELECT id, name FROM mailboxes", -1, &st, NULL) !=
	    SQLITE_OK) {
		e = local_db_fail(acct, err_r, "sync-account");
		local_exec(acct, "ROLLBACK");
		goto out;
	}
	uint64_t *gone = NULL;
	size_t gone_count = 0;

	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *nm = (const char *)sqlite3_column_text(st, 1);
		bool found = false;

		for (size_t i = 0; i < folder_count; i++) {
			if (strcmp(folders[i].name, nm) == 0) {
				folders[i].has_row = true;
				found = true;
			}
		}
		if (!found) {
			gone = xrealloc(gone, (gone_count + 1) * sizeof(*gone));
			gone[gone_count++] = (uint64_t)sqlite3_column_int64(st, 0);
			log_warn("store=local op=sync account=%s mailbox_folder=missing action=drop",
				 acct->address);
		}
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < gone_count && e == STORE_OK; i++) {
		char *sql = xasprintf("DELETE FROM messages WHERE mailbox_id = %llu;"
				      " DELETE FROM message_cache WHERE mailbox_id = %llu;"
				      " DELETE FROM mailboxes WHERE id = %llu",
				      (unsigned long long)gone[i], (unsigned long long)gone[i],
				      (unsigned long long)gone[i]);
		if (local_exec(acct, sql) < 0)
			e = local_db_fail(acct, err_r, "sync-account");
		free(sql);
		local_note_removal(acct);
	}
	free(gone);
	for (size_t i = 0; i < folder_count && e == STORE_OK; i++) {
		struct local_mbox m;
		uint32_t uidv = 0, floor = 0;

		if (folders[i].has_row)
			continue;
		char *dir = local_folder_path(acct, folders[i].name);

		if (dir == NULL)
			continue;
		/* Keep the folder's UIDVALIDITY when its file is intact; otherwise a new one,
		 * which tells clients to forget what they cached (RFC 9051 §2.3.1.1). */
		if (local_uidv_read(dir, &uidv, &floor) < 0)
			uidv = 0;
		free(dir);
		e = local_mbox_insert(acct, folders[i].name, 0, uidv, floor, &m, err_r);
		if (e == STORE_OK) {
			new_ids = xrealloc(new_ids, (new_count + 1) * sizeof(*new_ids));
			new_ids[new_count++] = m.id;
			local_mbox_clear(&m);
		}
	}
	if (e == STORE_OK && local_exec(acct, "COMMIT") < 0)
		e = local_db_fail(acct, err_r, "sync-account");
	if (e != STORE_OK) {
		local_exec(acct, "ROLLBACK");
		goto out;
	}
	/* Then the messages of every mailbox. */
	uint64_t *ids = NULL;
	size_t id_count = 0;

	if (sqlite3_prepare_v2(acct->db, "SELECT id FROM mailboxes", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			ids = xrealloc(ids, (id_count + 1) * sizeof(*ids));
			ids[id_count++] = (uint64_t)sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
	}
	for (size_t i = 0; i < id_count && e == STORE_OK; i++) {
		struct local_mbox m;
		struct store_msg *added = NULL;
		size_t added_count = 0;
		bool adopt_any = false;

		for (size_t k = 0; k < new_count; k++)
			if (new_ids[k] == ids[i])
				adopt_any = true;
		if ((e = local_mbox_by_id(acct, ids[i], &m, err_r)) != STORE_OK)
			break;
		e = local_sync_mailbox(acct, &m, true, adopt_any, &added, &added_count, err_r);
		store_msg_list_free(&added, added_count);
		local_mbox_clear(&m);
	}
	free(ids);
out:
	for (size_t i = 0; i < folder_count; i++)
		free(folders[i].name);
	free(folders);
	free(new_ids);
	return e;
}
