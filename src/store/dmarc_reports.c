/* The DMARC report counts: DATA_DIR/dmarc-reports.db (SQLite), the evaluations of policies
 * with rua= counted per UTC day, for the aggregate reports (RFC 7489 §7.2) sent the day after.
 * mailauth/ describes an evaluation and never opens a file; cli/ hands its rows here as text
 * columns. The server and `roost dmarc report` open the same file (WAL: one writes while the
 * other reads).
 *
 * Invariants:
 *  1. A day has at most LIMIT_DMARC_REPORT_ROWS_PER_DAY rows: an evaluation that matches a
 *     row counts there, a new combination past the cap is dropped (and logged once a minute).
 *  2. Days older than LIMIT_DMARC_REPORT_KEEP_DAYS are deleted when the store is opened and
 *     after each day's reports are sent.
 *  3. A (day, policy domain) in `sent` is never reported again, so a restart or an admin's
 *     --send does not send the same report twice.
 * Durability: synchronous=NORMAL under WAL, no fsync per message. Losing the last counts in
 * a power cut makes one report a little low, which reports tolerate; an fsync per received
 * message would not be worth it. One connection behind a mutex: the workers record at once. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "store.h"

#define DMARC_STORE_BUSY_MS 5000

struct store_dmarc {
	pthread_mutex_t lock;
	sqlite3 *db;
	int64_t rows_day;     /* the day rows_count counts, -1 before the first record */
	int64_t rows_count;   /* rows of rows_day */
	struct log_limiter dropped_log; /* rows refused by the cap */
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS rows(day INTEGER NOT NULL, policy_domain TEXT NOT NULL,"
	" header_from TEXT NOT NULL, source_ip TEXT NOT NULL, disposition TEXT NOT NULL,"
	" dkim_aligned TEXT NOT NULL, spf_aligned TEXT NOT NULL, dkim_domain TEXT NOT NULL,"
	" dkim_result TEXT NOT NULL, spf_domain TEXT NOT NULL, spf_scope TEXT NOT NULL,"
	" spf_result TEXT NOT NULL, count INTEGER NOT NULL,"
	" PRIMARY KEY(day, policy_domain, header_from, source_ip, disposition, dkim_aligned,"
	" spf_aligned, dkim_domain, dkim_result, spf_domain, spf_scope, spf_result)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS policies(day INTEGER NOT NULL, policy_domain TEXT NOT NULL,"
	" p INTEGER NOT NULL, sp INTEGER NOT NULL, pct INTEGER NOT NULL, adkim INTEGER NOT NULL,"
	" aspf INTEGER NOT NULL, rua TEXT NOT NULL, PRIMARY KEY(day, policy_domain)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS sent(day INTEGER NOT NULL, policy_domain TEXT NOT NULL,"
	" PRIMARY KEY(day, policy_domain)) WITHOUT ROWID;";

int64_t store_dmarc_today(void)
{
	return time_wall_seconds() / 86400;
}

static int store_fail(struct store_dmarc *st, char *err, size_t errlen, const char *what)
{
	err_setf(err, errlen, "%s: %s", what, sqlite3_errmsg(st->db));
	return -1;
}

struct store_dmarc *store_dmarc_open(const char *data_dir, char *err, size_t errlen)
{
	struct store_dmarc *st = xcalloc(1, sizeof(*st));
	char *path = xasprintf("%s/dmarc-reports.db", data_dir);
	int rc;

	pthread_mutex_init(&st->lock, NULL);
	st->rows_day = -1;
	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	free(path);
	if (rc != SQLITE_OK) {
		err_setf(err, errlen, "cannot open the DMARC report store: %s",
			 st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
		store_dmarc_close(&st);
		return NULL;
	}
	sqlite3_busy_timeout(st->db, DMARC_STORE_BUSY_MS);
	if (sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    store_dmarc_prune(st, store_dmarc_today(), err, errlen) < 0) {
		store_fail(st, err, errlen, "DMARC report store");
		store_dmarc_close(&st);
		return NULL;
	}
	return st;
}

void store_dmarc_close(struct store_dmarc **stp)
{
	struct store_dmarc *st = *stp;

	if (st == NULL)
		return;
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
	*stp = NULL;
}

int store_dmarc_prune(struct store_dmarc *st, int64_t today, char *err, size_t errlen)
{
	static const char *const tables[] = { "rows", "policies", "sent" };
	int64_t oldest = today - LIMIT_DMARC_REPORT_KEEP_DAYS;

	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		char sql[80];
		sqlite3_stmt *s;
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE day < ?", tables[i]);
		if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
			return store_fail(st, err, errlen, "prune");
		sqlite3_bind_int64(s, 1, oldest);
		int rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			return store_fail(st, err, errlen, "prune");
	}
	return 0;
}

/* The row's key columns from ?2 on: the policy domain, then the caller's columns. */
static void bind_row_key(sqlite3_stmt *s, const char *policy_domain,
			 const char *const columns[STORE_DMARC_COLUMNS])
{
	sqlite3_bind_text(s, 2, policy_domain, -1, SQLITE_STATIC);
	for (int i = 0; i < STORE_DMARC_COLUMNS; i++)
		sqlite3_bind_text(s, i + 3, columns[i] != NULL ? columns[i] : "", -1,
				  SQLITE_STATIC);
}

static int exec_row(struct store_dmarc *st, const char *sql, int64_t day,
		    const char *policy_domain, const char *const columns[STORE_DMARC_COLUMNS])
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, day);
	bind_row_key(s, policy_domain, columns);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? sqlite3_changes(st->db) : -1;
}

static int64_t count_rows(struct store_dmarc *st, int64_t day)
{
	sqlite3_stmt *s;
	int64_t n = -1;

	if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM rows WHERE day = ?", -1, &s, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, day);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static int save_policy(struct store_dmarc *st, int64_t day, const char *policy_domain,
		       const struct store_dmarc_policy *policy)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(st->db,
			       "INSERT OR REPLACE INTO policies VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1,
			       &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, day);
	sqlite3_bind_text(s, 2, policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, (int)policy->p);
	sqlite3_bind_int(s, 4, (int)policy->sp);
	sqlite3_bind_int(s, 5, (int)policy->pct);
	sqlite3_bind_int(s, 6, policy->strict_dkim);
	sqlite3_bind_int(s, 7, policy->strict_spf);
	sqlite3_bind_text(s, 8, policy->rua, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Called with the lock held, inside a transaction: 1 counted, 0 dropped by the cap. */
static int add_locked(struct store_dmarc *st, int64_t day, const char *policy_domain,
		      const char *const columns[STORE_DMARC_COLUMNS],
		      const struct store_dmarc_policy *policy)
{
	int n = exec_row(st,
			 "UPDATE rows SET count = count + 1 WHERE day = ?1 AND policy_domain = ?2 "
			 "AND header_from = ?3 AND source_ip = ?4 AND disposition = ?5 AND "
			 "dkim_aligned = ?6 AND spf_aligned = ?7 AND dkim_domain = ?8 AND "
			 "dkim_result = ?9 AND spf_domain = ?10 AND spf_scope = ?11 AND "
			 "spf_result = ?12",
			 day, policy_domain, columns);
	if (n < 0)
		return -1;
	if (n == 0) {
		if (st->rows_day != day) {
			st->rows_count = count_rows(st, day);
			if (st->rows_count < 0)
				return -1;
			st->rows_day = day;
		}
		if (st->rows_count >= LIMIT_DMARC_REPORT_ROWS_PER_DAY)
			return 0;
		if (exec_row(st, "INSERT INTO rows VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
				 "?11, ?12, 1)",
			     day, policy_domain, columns) < 0)
			return -1;
		st->rows_count++;
	}
	return save_policy(st, day, policy_domain, policy) < 0 ? -1 : 1;
}

int store_dmarc_add(struct store_dmarc *st, int64_t day, const char *policy_domain,
		    const char *const columns[STORE_DMARC_COLUMNS],
		    const struct store_dmarc_policy *policy, char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		r = store_fail(st, err, errlen, "begin");
		pthread_mutex_unlock(&st->lock);
		return r;
	}
	r = add_locked(st, day, policy_domain, columns, policy);
	if (r < 0) {
		store_fail(st, err, errlen, "record");
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->rows_day = -1; /* the count may include the row rolled back */
	} else if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		r = store_fail(st, err, errlen, "commit");
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->rows_day = -1;
	}
	uint64_t suppressed = 0;
	if (r == 0 && log_limiter_allow(&st->dropped_log, 60000, &suppressed))
		log_warn("msg=\"DMARC report rows of the day at their cap; new ones dropped\" "
			 "cap=%d held_back=%llu",
			 LIMIT_DMARC_REPORT_ROWS_PER_DAY, (unsigned long long)suppressed);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_dmarc_domains(struct store_dmarc *st, int64_t day, bool unsent_only,
			void (*cb)(const char *domain, void *ctx), void *ctx, char *err,
			size_t errlen)
{
	const char *sql = unsent_only
		? "SELECT policy_domain FROM policies WHERE day = ?1 AND policy_domain NOT IN "
		  "(SELECT policy_domain FROM sent WHERE day = ?1) ORDER BY policy_domain"
		: "SELECT policy_domain FROM policies WHERE day = ?1 ORDER BY policy_domain";
	sqlite3_stmt *s;
	int rc, n = 0;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, err, errlen, "domains");
		pthread_mutex_unlock(&st->lock);
		return rc;
	}
	sqlite3_bind_int64(s, 1, day);
	/* the names are copied first: cb may take the lock again */
	struct buf names;
	buf_init(&names);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		buf_append_str(&names, (const char *)sqlite3_column_text(s, 0));
		buf_append_byte(&names, '\0');
		n++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		n = store_fail(st, err, errlen, "domains");
	pthread_mutex_unlock(&st->lock);
	for (size_t off = 0; n > 0 && off < names.len; off += strlen((char *)names.data + off) + 1)
		cb((const char *)names.data + off, ctx);
	buf_free(&names);
	return n;
}

static void column_copy(sqlite3_stmt *s, int col, char *out, size_t outlen)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "");
}

static int read_policy(struct store_dmarc *st, int64_t day, const char *domain,
		       struct store_dmarc_policy *policy)
{
	sqlite3_stmt *s;
	int found = 0;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT p, sp, pct, adkim, aspf, rua FROM policies WHERE day = ? AND "
			       "policy_domain = ?",
			       -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, day);
	sqlite3_bind_text(s, 2, domain, -1, SQLITE_STATIC);
	memset(policy, 0, sizeof(*policy));
	if (sqlite3_step(s) == SQLITE_ROW) {
		policy->p = (unsigned)sqlite3_column_int(s, 0);
		policy->sp = (unsigned)sqlite3_column_int(s, 1);
		policy->pct = (unsigned)sqlite3_column_int(s, 2);
		policy->strict_dkim = sqlite3_column_int(s, 3) != 0;
		policy->strict_spf = sqlite3_column_int(s, 4) != 0;
		column_copy(s, 5, policy->rua, sizeof(policy->rua));
		found = 1;
	}
	sqlite3_finalize(s);
	return found;
}

int store_dmarc_read(struct store_dmarc *st, int64_t day, const char *domain,
		     struct store_dmarc_policy *policy_r, store_dmarc_row_cb *cb, void *ctx,
		     char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc, rows = 0;

	pthread_mutex_lock(&st->lock);
	rc = read_policy(st, day, domain, policy_r);
	if (rc <= 0) {
		if (rc < 0)
			store_fail(st, err, errlen, "policy");
		else
			err_setf(err, errlen, "no DMARC evaluations of %s that day", domain);
		pthread_mutex_unlock(&st->lock);
		return rc;
	}
	if (sqlite3_prepare_v2(st->db,
			       "SELECT header_from, source_ip, disposition, dkim_aligned, "
			       "spf_aligned, dkim_domain, dkim_result, spf_domain, spf_scope, "
			       "spf_result, count FROM rows WHERE day = ? AND policy_domain = ? "
			       "ORDER BY count DESC, source_ip",
			       -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, err, errlen, "rows");
		pthread_mutex_unlock(&st->lock);
		return rc;
	}
	sqlite3_bind_int64(s, 1, day);
	sqlite3_bind_text(s, 2, domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *columns[STORE_DMARC_COLUMNS];
		for (int i = 0; i < STORE_DMARC_COLUMNS; i++) {
			const unsigned char *t = sqlite3_column_text(s, i);
			columns[i] = t != NULL ? (const char *)t : "";
		}
		cb(columns, (uint64_t)sqlite3_column_int64(s, STORE_DMARC_COLUMNS), ctx);
		rows++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		rows = store_fail(st, err, errlen, "rows");
	else if (rows == 0)
		err_setf(err, errlen, "no DMARC evaluations of %s that day", domain);
	pthread_mutex_unlock(&st->lock);
	return rows > 0 ? 1 : rows;
}

int store_dmarc_mark_sent(struct store_dmarc *st, int64_t day, const char *domain, char *err,
			  size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "INSERT OR IGNORE INTO sent VALUES (?, ?)", -1, &s,
			       NULL) != SQLITE_OK) {
		rc = store_fail(st, err, errlen, "sent");
		pthread_mutex_unlock(&st->lock);
		return rc;
	}
	sqlite3_bind_int64(s, 1, day);
	sqlite3_bind_text(s, 2, domain, -1, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, err, errlen, "sent");
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return rc;
}
