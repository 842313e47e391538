/* Greylisting: the MX answers 451 to a (client network, sender, recipient) triplet it has not
 * seen, and accepts the same triplet once it comes back after the delay. Real MTAs retry
 * (RFC 5321 §4.5.4.1); much bulk software does not.
 *
 * Design notes:
 *  1. The triplets live in SQLite (DATA_DIR/greylist.db), not in memory: a restart must not
 *     forget the senders that already proved themselves (every regular correspondent would
 *     wait another delay after each upgrade), nor restart the wait of those in the middle of
 *     one. WAL with synchronous=NORMAL: a power cut may lose the last few updates, which costs
 *     at most one more delay for those senders, never mail.
 *  2. The client is keyed by network (IPv4 /24, IPv6 /64), as large senders retry from another
 *     address of the same pool.
 *  3. States: absent -> WAITING (first attempt, 451) -> PASSED (a retry at least `delay` after
 *     the first attempt). A WAITING triplet not retried within `retry_window` starts over; a
 *     PASSED one unused for `expire` is forgotten. auth_greylist_check does every transition.
 *  4. Bounded: at most `max_entries` rows; past it the least recently seen go first, and the
 *     stale rows (notes 3's windows) are swept every GREYLIST_SWEEP_EVERY new triplets.
 *  5. Times are milliseconds of the real-time clock, so a delay of one second is one second,
 *     not "the next tick of a seconds counter".
 *  6. A database error lets the message through (logged): greylisting is a filter against
 *     nuisance, and failing closed would refuse all inbound mail. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core.h"
#include "auth.h"

#define GREYLIST_SWEEP_EVERY 1000
#define GREYLIST_BUSY_TIMEOUT_MS 5000

struct auth_greylist {
	pthread_mutex_t lock; /* one connection, used by the pool's threads in turn */
	sqlite3 *db;
	struct auth_greylist_config cfg;
	uint32_t inserts_since_sweep;
};

static const char greylist_schema[] =
	"CREATE TABLE IF NOT EXISTS triplets ("
	" key TEXT PRIMARY KEY,"
	" first_ms INTEGER NOT NULL," /* first attempt of the current wait */
	" last_ms INTEGER NOT NULL,"  /* last attempt or accepted message */
	" passed INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS triplets_last ON triplets(last_ms);";

int auth_greylist_open(const char *path, const struct auth_greylist_config *cfg,
		       struct auth_greylist **g_r, char *err, size_t errlen)
{
	struct auth_greylist *g = xcalloc(1, sizeof(*g));
	int fd, rc;

	*g_r = NULL;
	pthread_mutex_init(&g->lock, NULL);
	g->cfg = *cfg;
	/* owner-only before SQLite creates it: the file lists who mails whom */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_setf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	rc = sqlite3_open_v2(path, &g->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		err_setf(err, errlen, "cannot open %s: %s", path,
			 g->db ? sqlite3_errmsg(g->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(g->db, GREYLIST_BUSY_TIMEOUT_MS);
	if (sqlite3_exec(g->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(g->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(g->db, greylist_schema, NULL, NULL, NULL) != SQLITE_OK) {
		err_setf(err, errlen, "cannot set up %s: %s", path, sqlite3_errmsg(g->db));
		goto fail;
	}
	*g_r = g;
	return 0;
fail:
	auth_greylist_close(&g);
	return -1;
}

void auth_greylist_close(struct auth_greylist **gp)
{
	if (gp == NULL || *gp == NULL)
		return;
	sqlite3_close((*gp)->db);
	pthread_mutex_destroy(&(*gp)->lock);
	free(*gp);
	*gp = NULL;
}

int auth_greylist_network(const char *ip, char *out, size_t outlen)
{
	struct in_addr v4;
	struct in6_addr v6;
	char text[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, ip, &v4) == 1) {
		v4.s_addr &= htonl(0xffffff00u);
		inet_ntop(AF_INET, &v4, text, sizeof(text));
		snprintf(out, outlen, "%s/24", text);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &v6) == 1) {
		/* an IPv4-mapped address is the IPv4 client it maps */
		if (IN6_IS_ADDR_V4MAPPED(&v6)) {
			memcpy(&v4, &v6.s6_addr[12], 4);
			inet_ntop(AF_INET, &v4, text, sizeof(text));
			return auth_greylist_network(text, out, outlen);
		}
		memset(&v6.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &v6, text, sizeof(text));
		snprintf(out, outlen, "%s/64", text);
		return 0;
	}
	return -1;
}

static char *greylist_key(const char *net, const char *sender, const char *rcpt)
{
	char *key = xasprintf("%s %s %s", net, sender, rcpt);

	for (char *p = key; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return key;
}

/* Runs one statement with ?1 = key (when not NULL), ?2 = a, ?3 = b; a statement without some
 * of them leaves the bind refused (SQLITE_RANGE), which is harmless. */
static int greylist_exec(struct auth_greylist *g, const char *sql, const char *key,
			 int64_t a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(g->db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		if (key != NULL)
			sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, a);
		sqlite3_bind_int64(st, 3, b);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Forgets what notes 3 and 4 say may go. */
static void greylist_sweep(struct auth_greylist *g, int64_t now_ms)
{
	int64_t wait_cut = now_ms - (int64_t)g->cfg.retry_window_s * 1000;
	int64_t pass_cut = now_ms - (int64_t)g->cfg.expire_s * 1000;

	greylist_exec(g,
		      "DELETE FROM triplets WHERE "
		      "(passed = 0 AND first_ms < ?2) OR (passed = 1 AND last_ms < ?3)",
		      NULL, wait_cut, pass_cut);
	greylist_exec(g,
		      "DELETE FROM triplets WHERE key IN (SELECT key FROM triplets ORDER BY "
		      "last_ms LIMIT max(0, (SELECT count(*) FROM triplets) - ?2))",
		      NULL, (int64_t)g->cfg.max_entries, 0);
}

/* Reads the triplet: 1 found (fields set), 0 absent, -1 error. */
static int greylist_find(struct auth_greylist *g, const char *key, int64_t *first_r,
			 int64_t *last_r, bool *passed_r)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(g->db,
				    "SELECT first_ms, last_ms, passed FROM triplets WHERE key = ?1",
				    -1, &st, NULL);
	int found = -1;

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*first_r = sqlite3_column_int64(st, 0);
			*last_r = sqlite3_column_int64(st, 1);
			*passed_r = sqlite3_column_int(st, 2) != 0;
			found = 1;
		} else if (rc == SQLITE_DONE) {
			found = 0;
		}
	}
	sqlite3_finalize(st);
	return found;
}

/* The transitions of note 3 for one triplet; -1 on a database error. */
static int greylist_step(struct auth_greylist *g, const char *key, int64_t now_ms,
			 uint32_t *wait_s_r)
{
	int64_t delay_ms = (int64_t)g->cfg.delay_s * 1000, first = 0, last = 0;
	bool passed = false;
	int found = greylist_find(g, key, &first, &last, &passed);

	if (found < 0)
		return -1;
	if (found && passed && now_ms - last <= (int64_t)g->cfg.expire_s * 1000)
		return greylist_exec(g, "UPDATE triplets SET last_ms = ?2 WHERE key = ?1",
				     key, now_ms, 0);
	if (found && !passed && now_ms - first <= (int64_t)g->cfg.retry_window_s * 1000) {
		if (now_ms - first >= delay_ms)
			return greylist_exec(g,
					     "UPDATE triplets SET last_ms = ?2, passed = 1 "
					     "WHERE key = ?1",
					     key, now_ms, 0);
		*wait_s_r = (uint32_t)((delay_ms - (now_ms - first) + 999) / 1000);
		return greylist_exec(g, "UPDATE triplets SET last_ms = ?2 WHERE key = ?1",
				     key, now_ms, 0);
	}
	/* new, or its window is over: the wait starts now */
	*wait_s_r = g->cfg.delay_s;
	if (++g->inserts_since_sweep >= GREYLIST_SWEEP_EVERY) {
		g->inserts_since_sweep = 0;
		greylist_sweep(g, now_ms);
	}
	return greylist_exec(g,
			     "INSERT OR REPLACE INTO triplets (key, first_ms, last_ms, passed) "
			     "VALUES (?1, ?2, ?3, 0)",
			     key, now_ms, now_ms);
}

enum auth_greylist_verdict auth_greylist_check(struct auth_greylist *g, const char *ip,
					       const char *sender, const char *rcpt,
					       int64_t now_ms, uint32_t *wait_s_r)
{
	char net[INET6_ADDRSTRLEN + 8];
	char *key;
	uint32_t wait_s = 0;
	int rc;

	*wait_s_r = 0;
	if (auth_greylist_network(ip, net, sizeof(net)) < 0)
		snprintf(net, sizeof(net), "%s", ip); /* not an IP (a unix socket): as it is */
	key = greylist_key(net, sender, rcpt);
	pthread_mutex_lock(&g->lock);
	rc = greylist_step(g, key, now_ms, &wait_s);
	if (rc < 0)
		log_error("msg=\"greylist database error, message let through\" error=\"%s\"",
			  sqlite3_errmsg(g->db));
	pthread_mutex_unlock(&g->lock);
	free(key);
	if (rc < 0)
		return AUTH_GREYLIST_ERROR;
	*wait_s_r = wait_s;
	return wait_s > 0 ? AUTH_GREYLIST_WAIT : AUTH_GREYLIST_PASS;
}

int64_t auth_greylist_count(struct auth_greylist *g)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	pthread_mutex_lock(&g->lock);
	if (sqlite3_prepare_v2(g->db, "SELECT count(*) FROM triplets", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&g->lock);
	return n;
}
