/* The accounts directory: domains, users and aliases in data_dir/accounts.db (SQLite).
 *
 * Invariants:
 * 1. One connection per process, every use under dir->lock; slow work (password hashing) is
 *    done before taking the lock, never while holding it.
 * 2. Every value from outside reaches SQL as a bound parameter; SQL text is constant.
 * 3. Addresses, domains and alias names are stored validated and lower-cased, so equality in
 *    SQL is plain byte equality.
 * 4. WAL with synchronous=FULL: a command that returned 0 survives a power cut. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "auth_internal.h"

#define AUTH_SCHEMA_VERSION 1
#define AUTH_BUSY_TIMEOUT_MS 5000

static const char *const schema_sql =
	"CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS domains (name TEXT PRIMARY KEY NOT NULL);"
	"CREATE TABLE IF NOT EXISTS users ("
	" address TEXT PRIMARY KEY NOT NULL,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" password_hash TEXT NOT NULL,"
	" scram_salt BLOB,"
	" scram_iterations INTEGER,"
	" scram_stored_key BLOB,"
	" scram_server_key BLOB);"
	"CREATE INDEX IF NOT EXISTS users_domain ON users(domain);"
	"CREATE TABLE IF NOT EXISTS aliases ("
	" alias TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" PRIMARY KEY (alias, target));"
	/* Added after version 1 without a version change: IF NOT EXISTS creates it in older
	 * files, and older binaries never look at it. */
	"CREATE TABLE IF NOT EXISTS user_settings ("
	" address TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (address, name));"
	/* Likewise added later: a domain's settings (quota limits of the sum over its accounts),
	 * removed with the domain. */
	"CREATE TABLE IF NOT EXISTS domain_settings ("
	" domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (domain, name));";

void auth_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("event=getrandom_failed errno=%d", errno);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
}

int auth_dir_exec_locked(struct auth_directory *dir, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(dir->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("event=accounts_db_error sql=\"%.40s\" error=\"%s\"", sql,
			  msg != NULL ? msg : sqlite3_errmsg(dir->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *prepare(struct auth_directory *dir, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(dir->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("event=accounts_db_error error=\"%s\"", sqlite3_errmsg(dir->db));
		return NULL;
	}
	return st;
}

static void db_error(struct auth_directory *dir, char *err, size_t errlen)
{
	log_error("event=accounts_db_error error=\"%s\"", sqlite3_errmsg(dir->db));
	err_setf(err, errlen, "accounts database error: %s", sqlite3_errmsg(dir->db));
}

static int schema_init(struct auth_directory *dir, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int version = 0;
	int rc;

	if (auth_dir_exec_locked(dir, "BEGIN IMMEDIATE") < 0)
		goto fail;
	if (auth_dir_exec_locked(dir, schema_sql) < 0)
		goto rollback;
	st = prepare(dir, "SELECT version FROM schema_version LIMIT 1");
	if (st == NULL)
		goto rollback;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto rollback;
	if (version == 0) {
		if (auth_dir_exec_locked(dir, "INSERT INTO schema_version VALUES (1)") < 0)
			goto rollback;
	} else if (version != AUTH_SCHEMA_VERSION) {
		auth_dir_exec_locked(dir, "ROLLBACK");
		err_setf(err, errlen, "accounts.db has schema version %d, this roost "
				 "knows %d", version, AUTH_SCHEMA_VERSION);
		return -1;
	}
	if (auth_dir_exec_locked(dir, "COMMIT") < 0)
		goto rollback;
	return 0;
rollback:
	auth_dir_exec_locked(dir, "ROLLBACK");
fail:
	db_error(dir, err, errlen);
	return -1;
}

int auth_directory_open(const char *data_dir, struct auth_directory **dir_r, char *err,
			size_t errlen)
{
	struct auth_directory *dir = xcalloc(1, sizeof(*dir));
	char *path = xasprintf("%s/accounts.db", data_dir);
	uint8_t pw[16];
	struct buf pwtext;
	int rc;

	*dir_r = NULL;
	pthread_mutex_init(&dir->lock, NULL);
	/* Password hashes live here: create the file owner-only before SQLite does (its -wal and
	 * -shm files copy the database file's mode). */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_setf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	rc = sqlite3_open_v2(path, &dir->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		err_setf(err, errlen, "cannot open %s: %s", path,
				 dir->db != NULL ? sqlite3_errmsg(dir->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(dir->db, AUTH_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(dir->db, 1);
	if (auth_dir_exec_locked(dir, "PRAGMA journal_mode=WAL") < 0 ||
	    auth_dir_exec_locked(dir, "PRAGMA synchronous=FULL") < 0 ||
	    auth_dir_exec_locked(dir, "PRAGMA foreign_keys=ON") < 0) {
		err_setf(err, errlen, "cannot set up %s: %s", path,
				 sqlite3_errmsg(dir->db));
		goto fail;
	}
	if (schema_init(dir, err, errlen) < 0)
		goto fail;

	auth_random_bytes(dir->scram_secret, sizeof(dir->scram_secret));
	auth_random_bytes(pw, sizeof(pw));
	buf_init(&pwtext);
	b64_encode(&pwtext, pw, sizeof(pw));
	dir->dummy_hash = auth_password_hash(buf_cstr(&pwtext));
	mem_wipe(pwtext.data, pwtext.len);
	buf_free(&pwtext);
	if (dir->dummy_hash == NULL) {
		err_setf(err, errlen, "libxcrypt cannot make a yescrypt hash");
		goto fail;
	}
	free(path);
	*dir_r = dir;
	return 0;
fail:
	free(path);
	auth_directory_close(&dir);
	return -1;
}

void auth_directory_close(struct auth_directory **dirp)
{
	struct auth_directory *dir = *dirp;

	if (dir == NULL)
		return;
	if (dir->db != NULL)
		sqlite3_close_v2(dir->db);
	pthread_mutex_destroy(&dir->lock);
	free(dir->dummy_hash);
	auth_login_cache_free(&dir->login_cache);
	mem_wipe(dir->scram_secret, sizeof(dir->scram_secret));
	free(dir);
	*dirp = NULL;
}

/* Runs one statement with up to three text parameters; returns the sqlite3_step code. */
int auth_dir_run_locked(struct auth_directory *dir, const char *sql, const char *a,
			const char *b, const char *c)
{
	sqlite3_stmt *st = prepare(dir, sql);
	int rc;

	if (st == NULL)
		return SQLITE_ERROR;
	if (a != NULL)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	if (c != NULL)
		sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc;
}

/* SELECT count(*) with one or two parameters; -1 on error. */
static int64_t count_locked(struct auth_directory *dir, const char *sql, const char *a,
			    const char *b)
{
	sqlite3_stmt *st = prepare(dir, sql);
	int64_t n = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static bool domain_exists_locked(struct auth_directory *dir, const char *domain)
{
	return count_locked(dir, "SELECT count(*) FROM domains WHERE name = ?", domain, NULL) > 0;
}

/* ---------------- domains ---------------- */

int auth_domain_add(struct auth_directory *dir, const char *domain_in, char *err, size_t errlen)
{
	char *domain;
	int rc;

	if (auth_domain_normalize(domain_in, &domain, err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&dir->lock);
	rc = auth_dir_run_locked(dir, "INSERT INTO domains (name) VALUES (?)", domain, NULL, NULL);
	pthread_mutex_unlock(&dir->lock);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
		err_setf(err, errlen, "domain %s exists", domain);
		free(domain);
		return -1;
	}
	if (rc != SQLITE_DONE) {
		db_error(dir, err, errlen);
		free(domain);
		return -1;
	}
	free(domain);
	return 0;
}

int auth_domain_del(struct auth_directory *dir, const char *domain_in, char *err, size_t errlen)
{
	char *domain;
	int64_t users, aliases;
	int ret = -1;

	if (auth_domain_normalize(domain_in, &domain, err, errlen) < 0)
		return -1;
	char *suffix = xasprintf("%%@%s", domain);
	pthread_mutex_lock(&dir->lock);
	if (!domain_exists_locked(dir, domain)) {
		err_setf(err, errlen, "domain %s does not exist", domain);
		goto out;
	}
	/* Refuse rather than cascade: deleting a domain must not silently drop mailboxes' owners
	 * or leave aliases pointing nowhere. LIKE is safe here: domain holds no % or _ wildcard
	 * except '_' which is not a valid LDH character. */
	users = count_locked(dir, "SELECT count(*) FROM users WHERE domain = ?", domain, NULL);
	aliases = count_locked(dir, "SELECT count(*) FROM aliases WHERE alias LIKE ? OR alias = ?",
			       suffix, suffix + 1);
	if (users < 0 || aliases < 0) {
		db_error(dir, err, errlen);
		goto out;
	}
	if (users > 0 || aliases > 0) {
		err_setf(err, errlen,
				 "domain %s still has %lld user(s) and %lld alias(es); "
				 "delete them first",
				 domain, (long long)users, (long long)aliases);
		goto out;
	}
	if (auth_dir_run_locked(dir, "DELETE FROM domains WHERE name = ?", domain, NULL, NULL) !=
	    SQLITE_DONE) {
		db_error(dir, err, errlen);
		goto out;
	}
	ret = 0;
out:
	pthread_mutex_unlock(&dir->lock);
	free(suffix);
	free(domain);
	return ret;
}

bool auth_domain_exists(struct auth_directory *dir, const char *domain_in)
{
	char *domain;
	bool found;

	if (auth_domain_normalize(domain_in, &domain, NULL, 0) < 0)
		return false;
	pthread_mutex_lock(&dir->lock);
	found = domain_exists_locked(dir, domain);
	pthread_mutex_unlock(&dir->lock);
	free(domain);
	return found;
}

/* Collects one or two text columns under the lock, then calls cb without it, so a callback
 * may call back into the directory. */
static int list_rows(struct auth_directory *dir, const char *sql, const char *param,
		     int columns, void (*cb1)(const char *, void *),
		     void (*cb2)(const char *, const char *, void *), void *ctx)
{
	sqlite3_stmt *st;
	char **rows = NULL;
	size_t count = 0, cap = 0;
	int rc;

	pthread_mutex_lock(&dir->lock);
	st = prepare(dir, sql);
	if (st == NULL) {
		pthread_mutex_unlock(&dir->lock);
		return -1;
	}
	if (param != NULL)
		sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count + (size_t)columns > cap) {
			cap = cap == 0 ? 64 : cap * 2;
			rows = xrealloc(rows, cap * sizeof(*rows));
		}
		for (int c = 0; c < columns; c++) {
			const unsigned char *t = sqlite3_column_text(st, c);
			rows[count++] = xstrdup(t != NULL ? (const char *)t : "");
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&dir->lock);
	if (rc != SQLITE_DONE) {
		log_error("event=accounts_db_error error=\"%s\"", sqlite3_errstr(rc));
		for (size_t i = 0; i < count; i++)
			free(rows[i]);
		free(rows);
		return -1;
	}
	for (size_t i = 0; i < count; i += (size_t)columns) {
		if (columns == 1)
			cb1(rows[i], ctx);
		else
			cb2(rows[i], rows[i + 1], ctx);
	}
	for (size_t i = 0; i < count; i++)
		free(rows[i]);
	free(rows);
	return (int)(count / (size_t)columns);
}

int auth_domain_list(struct auth_directory *dir, void (*cb)(const char *domain, void *ctx),
		     void *ctx)
{
	return list_rows(dir, "SELECT name FROM domains ORDER BY name", NULL, 1, cb, NULL, ctx);
}

/* ---------------- users ---------------- */

static void bind_creds(sqlite3_stmt *st, int first, const struct auth_scram_creds *creds)
{
	if (creds == NULL || creds->iterations == 0) {
		for (int i = 0; i < 4; i++)
			sqlite3_bind_null(st, first + i);
		return;
	}
	sqlite3_bind_blob(st, first, creds->salt, (int)creds->salt_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, first + 1, creds->iterations);
	sqlite3_bind_blob(st, first + 2, creds->stored_key, AUTH_SCRAM_KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, first + 3, creds->server_key, AUTH_SCRAM_KEY_LEN, SQLITE_STATIC);
}

int auth_dir_insert_user_locked(struct auth_directory *dir, const char *address,
				const char *hash, const struct auth_scram_creds *creds, char *err,
				size_t errlen)
{
	const char *domain = strchr(address, '@') + 1;
	sqlite3_stmt *st;
	int rc;

	if (!domain_exists_locked(dir, domain)) {
		err_setf(err, errlen, "domain %s does not exist", domain);
		return -1;
	}
	if (count_locked(dir, "SELECT count(*) FROM users WHERE address = ?", address, NULL) != 0) {
		err_setf(err, errlen, "user %s exists", address);
		return -1;
	}
	st = prepare(dir, "INSERT INTO users (address, domain, password_hash, scram_salt, "
		     "scram_iterations, scram_stored_key, scram_server_key) "
		     "VALUES (?, ?, ?, ?, ?, ?, ?)");
	if (st == NULL) {
		db_error(dir, err, errlen);
		return -1;
	}
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
	bind_creds(st, 4, creds);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		db_error(dir, err, errlen);
		return -1;
	}
	return 0;
}

/* Hashing is slow: do it before taking the lock (invariant 1). */
static int make_secrets(const char *password, char **hash_r, struct auth_scram_creds *creds,
			char *err, size_t errlen)
{
	if (password == NULL || password[0] == '\0' || strlen(password) > LIMIT_AUTH_FIELD) {
		err_setf(err, errlen, "password must be 1 to %d octets", LIMIT_AUTH_FIELD);
		return -1;
	}
	*hash_r = auth_password_hash(password);
	if (*hash_r == NULL || auth_scram_make_creds(password, creds) < 0) {
		free(*hash_r);
		*hash_r = NULL;
		err_setf(err, errlen, "password hashing failed");
		return -1;
	}
	return 0;
}

int auth_user_add(struct auth_directory *dir, const char *address_in, const char *password,
		  char *err, size_t errlen)
{
	struct auth_scram_creds creds;
	char *address, *hash;
	int ret;

	if (auth_address_normalize(address_in, &address, err, errlen) < 0)
		return -1;
	if (make_secrets(password, &hash, &creds, err, errlen) < 0) {
		free(address);
		return -1;
	}
	pthread_mutex_lock(&dir->lock);
	ret = auth_dir_insert_user_locked(dir, address, hash, &creds, err, errlen);
	pthread_mutex_unlock(&dir->lock);
	mem_wipe(&creds, sizeof(creds));
	free(hash);
	free(address);
	return ret;
}

int auth_user_del(struct auth_directory *dir, const char *address_in, char *err, size_t errlen)
{
	char *address;
	int rc;

	if (auth_address_normalize(address_in, &address, err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&dir->lock);
	rc = auth_dir_run_locked(dir, "DELETE FROM users WHERE address = ?", address, NULL, NULL);
	int changes = sqlite3_changes(dir->db);
	pthread_mutex_unlock(&dir->lock);
	if (rc != SQLITE_DONE) {
		db_error(dir, err, errlen);
		free(address);
		return -1;
	}
	if (changes == 0) {
		err_setf(err, errlen, "user %s does not exist", address);
		free(address);
		return -1;
	}
	free(address);
	return 0;
}

int auth_user_passwd(struct auth_directory *dir, const char *address_in, const char *password,
		     char *err, size_t errlen)
{
	struct auth_scram_creds creds;
	char *address, *hash;
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR, changes = 0;

	if (auth_address_normalize(address_in, &address, err, errlen) < 0)
		return -1;
	if (make_secrets(password, &hash, &creds, err, errlen) < 0) {
		free(address);
		return -1;
	}
	pthread_mutex_lock(&dir->lock);
	st = prepare(dir, "UPDATE users SET password_hash = ?, scram_salt = ?, "
		     "scram_iterations = ?, scram_stored_key = ?, scram_server_key = ? "
		     "WHERE address = ?");
	if (st != NULL) {
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
		bind_creds(st, 2, &creds);
		sqlite3_bind_text(st, 6, address, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		changes = sqlite3_changes(dir->db);
	}
	if (rc != SQLITE_DONE)
		db_error(dir, err, errlen);
	pthread_mutex_unlock(&dir->lock);
	mem_wipe(&creds, sizeof(creds));
	free(hash);
	if (rc == SQLITE_DONE && changes == 0) {
		err_setf(err, errlen, "user %s does not exist", address);
		rc = SQLITE_ERROR;
	}
	free(address);
	return rc == SQLITE_DONE ? 0 : -1;
}

bool auth_user_exists(struct auth_directory *dir, const char *address_in)
{
	char *address;
	int64_t n;

	if (auth_address_normalize(address_in, &address, NULL, 0) < 0)
		return false;
	pthread_mutex_lock(&dir->lock);
	n = count_locked(dir, "SELECT count(*) FROM users WHERE address = ?", address, NULL);
	pthread_mutex_unlock(&dir->lock);
	free(address);
	return n > 0;
}

int auth_user_addable(struct auth_directory *dir, const char *address_in, char *err,
		      size_t errlen)
{
	char *address;
	int ret = -1;

	if (auth_address_normalize(address_in, &address, err, errlen) < 0)
		return -1;
	const char *domain = strchr(address, '@') + 1;
	pthread_mutex_lock(&dir->lock);
	int64_t users = count_locked(dir, "SELECT count(*) FROM users WHERE address = ?",
				     address, NULL);
	if (!domain_exists_locked(dir, domain))
		err_setf(err, errlen, "domain %s does not exist", domain);
	else if (users != 0)
		err_setf(err, errlen, users > 0 ? "user %s exists"
							: "accounts database error (%s)",
				 address);
	else
		ret = 0;
	pthread_mutex_unlock(&dir->lock);
	free(address);
	return ret;
}

/* Characters as NIST SP 800-63B counts them: each UTF-8 lead byte (or ASCII byte) starts one
 * code point; continuation bytes 10xxxxxx do not. Invalid UTF-8 still counts one per octet
 * that is not a continuation byte, which never overstates an ASCII password. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if ((*p & 0xC0) != 0x80)
			n++;
	return n;
}

int auth_password_acceptable(const char *address, const char *password, uint32_t min_length,
			     char *err, size_t errlen)
{
	const char *at = strrchr(address, '@');
	size_t local_len = at != NULL ? (size_t)(at - address) : strlen(address);
	size_t chars = utf8_chars(password);

	if (password[0] == '\0' || strlen(password) > LIMIT_AUTH_FIELD) {
		err_setf(err, errlen, "password must be 1 to %d octets", LIMIT_AUTH_FIELD);
		return -1;
	}
	if (chars < min_length) {
		err_setf(err, errlen,
				 "password too short: %zu character(s), at least %u needed "
				 "([auth] min_password_length)",
				 chars, min_length);
		return -1;
	}
	/* The address is the first guess of anyone who knows it; so is its local part. */
	if (str_ieq(password, address) ||
	    (strlen(password) == local_len && strncasecmp(password, address, local_len) == 0)) {
		err_setf(err, errlen, "password must not be the address or its local part");
		return -1;
	}
	return 0;
}

int auth_user_list(struct auth_directory *dir, const char *domain_in,
		   void (*cb)(const char *address, void *ctx), void *ctx)
{
	char *domain;
	int n;

	if (domain_in == NULL)
		return list_rows(dir, "SELECT address FROM users ORDER BY address", NULL, 1, cb,
				 NULL, ctx);
	if (auth_domain_normalize(domain_in, &domain, NULL, 0) < 0)
		return -1;
	n = list_rows(dir, "SELECT address FROM users WHERE domain = ? ORDER BY address", domain,
		      1, cb, NULL, ctx);
	free(domain);
	return n;
}

int auth_dir_store_scram(struct auth_directory *dir, const char *address,
			 const struct auth_scram_creds *creds)
{
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR;

	pthread_mutex_lock(&dir->lock);
	st = prepare(dir, "UPDATE users SET scram_salt = ?, scram_iterations = ?, "
		     "scram_stored_key = ?, scram_server_key = ? WHERE address = ?");
	if (st != NULL) {
		bind_creds(st, 1, creds);
		sqlite3_bind_text(st, 5, address, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE)
		log_error("event=accounts_db_error error=\"%s\"", sqlite3_errmsg(dir->db));
	pthread_mutex_unlock(&dir->lock);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Copies a blob column of exactly want octets (or up to want when exact is false). */
static bool column_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t want, bool exact,
			size_t *len_r)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (p == NULL || n <= 0 || (size_t)n > want || (exact && (size_t)n != want))
		return false;
	memcpy(out, p, (size_t)n);
	if (len_r != NULL)
		*len_r = (size_t)n;
	return true;
}

int auth_dir_user_lookup(struct auth_directory *dir, const char *address, char **hash_r,
			 struct auth_scram_creds *creds_r)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	memset(creds_r, 0, sizeof(*creds_r));
	pthread_mutex_lock(&dir->lock);
	st = prepare(dir, "SELECT password_hash, scram_salt, scram_iterations, "
		     "scram_stored_key, scram_server_key FROM users WHERE address = ?");
	if (st == NULL)
		goto out;
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 0;
	} else if (rc == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);
		sqlite3_int64 iter = sqlite3_column_int64(st, 2);
		*hash_r = xstrdup(h != NULL ? (const char *)h : "");
		if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
			/* A row whose keys are damaged or whose count would make clients spin
			 * is a storage error, never a quiet success or failure. */
			if (iter < 1 || iter > AUTH_SCRAM_ITERATIONS_MAX ||
			    !column_blob(st, 1, creds_r->salt, sizeof(creds_r->salt), false,
					 &creds_r->salt_len) ||
			    !column_blob(st, 3, creds_r->stored_key, AUTH_SCRAM_KEY_LEN, true,
					 NULL) ||
			    !column_blob(st, 4, creds_r->server_key, AUTH_SCRAM_KEY_LEN, true,
					 NULL)) {
				log_error("event=accounts_db_bad_scram address=%s", address);
				free(*hash_r);
				*hash_r = NULL;
				memset(creds_r, 0, sizeof(*creds_r));
				goto out;
			}
			creds_r->iterations = (uint32_t)iter;
		}
		ret = 1;
	} else {
		log_error("event=accounts_db_error error=\"%s\"", sqlite3_errmsg(dir->db));
	}
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&dir->lock);
	return ret;
}

int auth_dir_canonical_user(struct auth_directory *dir, const char *user, char **addr_r)
{
	char *addr;
	size_t len = strnlen(user, AUTH_ADDRESS_MAX + 1);

	*addr_r = NULL;
	if (len > AUTH_ADDRESS_MAX)
		return 0;
	if (strchr(user, '@') == NULL) {
		/* A bare name is tried in the only domain; with several it is ambiguous. */
		sqlite3_stmt *st;
		char *domain = NULL;
		int rc, rows = 0;

		pthread_mutex_lock(&dir->lock);
		st = prepare(dir, "SELECT name FROM domains LIMIT 2");
		if (st == NULL) {
			pthread_mutex_unlock(&dir->lock);
			return -1;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (rows++ == 0)
				domain = xstrdup((const char *)sqlite3_column_text(st, 0));
		}
		sqlite3_finalize(st);
		pthread_mutex_unlock(&dir->lock);
		if (rc != SQLITE_DONE) {
			free(domain);
			return -1;
		}
		if (rows != 1) {
			free(domain);
			return 0;
		}
		char *full = xasprintf("%s@%s", user, domain);
		free(domain);
		int ok = auth_address_normalize(full, &addr, NULL, 0);
		free(full);
		if (ok < 0)
			return 0;
	} else if (auth_address_normalize(user, &addr, NULL, 0) < 0) {
		return 0;
	}
	*addr_r = addr;
	return 1;
}

/* ---------------- aliases ---------------- */

/* An alias is a full address or "@domain"; its domain must be ours. */
static int normalize_alias(struct auth_directory *dir, const char *alias_in, char **alias_r,
			   char *err, size_t errlen)
{
	char *alias;
	const char *domain;

	if (alias_in[0] == '@') {
		char *d;
		if (auth_domain_normalize(alias_in + 1, &d, err, errlen) < 0)
			return -1;
		alias = xasprintf("@%s", d);
		free(d);
	} else if (auth_address_normalize(alias_in, &alias, err, errlen) < 0) {
		return -1;
	}
	domain = strchr(alias, '@') + 1;
	if (!auth_domain_exists(dir, domain)) {
		err_setf(err, errlen, "domain %s does not exist", domain);
		free(alias);
		return -1;
	}
	*alias_r = alias;
	return 0;
}

/* The addresses alias resolution visits from a start, breadth first (recipient.c's rules):
 * an alias's targets (its own name among them means "deliver to the user too", not
 * recursion), nothing after a user or a remote address, and for an unknown address of our
 * domain the name without its +tag and the domain's catch-all. Bounded like a resolution. */
struct alias_walk {
	struct auth_directory *dir;
	char **nodes; /* every address queued so far: the queue and the seen set in one */
	size_t count, next;
	bool too_big;
};

static void walk_push(struct alias_walk *w, const char *addr)
{
	for (size_t i = 0; i < w->count; i++)
		if (strcmp(w->nodes[i], addr) == 0)
			return;
	if (w->count >= AUTH_RESOLVE_MAX) {
		w->too_big = true;
		return;
	}
	w->nodes = xrealloc(w->nodes, (w->count + 1) * sizeof(*w->nodes));
	w->nodes[w->count++] = xstrdup(addr);
}

/* Queues the targets of alias other than alias itself; the count of targets, or -1. */
static int walk_push_targets(struct alias_walk *w, const char *alias)
{
	char **targets;
	size_t n;

	if (auth_dir_alias_targets(w->dir, alias, &targets, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(targets[i], alias) != 0)
			walk_push(w, targets[i]);
		free(targets[i]);
	}
	free(targets);
	return (int)n;
}

/* Queues where resolution goes from one unaliased address of our domains; -1 on error. */
static int walk_push_unaliased(struct alias_walk *w, const char *addr)
{
	const char *at = strchr(addr, '@');
	const char *plus = memchr(addr, '+', (size_t)(at - addr));
	int user = auth_dir_user_known(w->dir, addr);

	if (user != 0)
		return user < 0 ? -1 : 0;
	if (plus != NULL && plus > addr && auth_local_part_valid(addr, (size_t)(plus - addr))) {
		char *base = xasprintf("%.*s%s", (int)(plus - addr), addr, at);
		char **targets;
		size_t n;
		int base_user = auth_dir_user_known(w->dir, base);
		int rc = auth_dir_alias_targets(w->dir, base, &targets, &n);

		walk_push(w, base);
		free(base);
		if (rc < 0 || base_user < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			free(targets[i]);
		free(targets);
		/* The catch-all only gets what the base name does not take. */
		if (base_user > 0 || n > 0)
			return 0;
	}
	char *catchall = xasprintf("@%s", at + 1);
	walk_push(w, catchall);
	free(catchall);
	return 0;
}

/* 1 when resolving start reaches alias, 0 when it does not, -1 on a storage error or a graph
 * too big to follow (err says which). */
static int alias_reaches(struct auth_directory *dir, const char *start, const char *alias,
			 char *err, size_t errlen)
{
	struct alias_walk w = { .dir = dir };
	int found = 0;

	walk_push(&w, start);
	while (found == 0 && w.next < w.count) {
		const char *addr = w.nodes[w.next++];

		if (strcmp(addr, alias) == 0) {
			found = 1;
			break;
		}
		if (addr[0] == '@') {
			found = walk_push_targets(&w, addr) < 0 ? -1 : 0;
			continue;
		}
		int ours = auth_dir_domain_known(dir, strchr(addr, '@') + 1);
		int n = ours > 0 ? walk_push_targets(&w, addr) : 0;
		if (ours < 0 || n < 0)
			found = -1;
		else if (ours > 0 && n == 0 && walk_push_unaliased(&w, addr) < 0)
			found = -1;
	}
	if (found == 0 && w.too_big) {
		err_setf(err, errlen, "aliases reached from %s are more than %d addresses; "
				 "cannot check for a loop", start, AUTH_RESOLVE_MAX);
		found = -1;
	} else if (found < 0) {
		err_setf(err, errlen, "accounts database error");
	}
	for (size_t i = 0; i < w.count; i++)
		free(w.nodes[i]);
	free(w.nodes);
	return found;
}

/* The checks of auth_alias_add before anything is written; alias and target normalised. */
static int alias_check(struct auth_directory *dir, const char *alias, const char *target,
		       bool shadowing, char *err, size_t errlen)
{
	int user = alias[0] == '@' ? 0 : auth_dir_user_known(dir, alias);

	if (user < 0) {
		err_setf(err, errlen, "accounts database error");
		return -1;
	}
	if (user > 0 && !shadowing) {
		err_setf(err, errlen,
				 "%s is a user's address: an alias of it would take that user's "
				 "mail away (--force adds it anyway; list %s among the targets to "
				 "keep a copy)",
				 alias, alias);
		return -1;
	}
	if (strcmp(alias, target) == 0) {
		/* Only a user may be its own target: it means "deliver to me as well". */
		if (user > 0)
			return 0;
		err_setf(err, errlen, "alias %s cannot point to itself", alias);
		return -1;
	}
	int loop = alias_reaches(dir, target, alias, err, errlen);
	if (loop > 0)
		err_setf(err, errlen, "alias %s -> %s would make a loop: %s leads back to %s",
				 alias, target, target, alias);
	return loop == 0 ? 0 : -1;
}

static int alias_add(struct auth_directory *dir, const char *alias_in, const char *target_in,
		     bool shadowing, char *err, size_t errlen)
{
	char *alias, *target;
	int rc;

	if (normalize_alias(dir, alias_in, &alias, err, errlen) < 0)
		return -1;
	if (auth_address_normalize(target_in, &target, err, errlen) < 0) {
		free(alias);
		return -1;
	}
	/* Checked, then inserted under separate locks: two administrators adding the two halves
	 * of a loop at the same instant could still make one, which resolution cuts. */
	if (alias_check(dir, alias, target, shadowing, err, errlen) < 0) {
		free(alias);
		free(target);
		return -1;
	}
	pthread_mutex_lock(&dir->lock);
	rc = auth_dir_run_locked(dir, "INSERT INTO aliases (alias, target) VALUES (?, ?)", alias,
				 target, NULL);
	pthread_mutex_unlock(&dir->lock);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
		err_setf(err, errlen, "alias %s -> %s exists", alias, target);
	else if (rc != SQLITE_DONE)
		db_error(dir, err, errlen);
	free(alias);
	free(target);
	return rc == SQLITE_DONE ? 0 : -1;
}

int auth_alias_add(struct auth_directory *dir, const char *alias, const char *target, char *err,
		   size_t errlen)
{
	return alias_add(dir, alias, target, false, err, errlen);
}

int auth_alias_add_shadowing(struct auth_directory *dir, const char *alias, const char *target,
			     char *err, size_t errlen)
{
	return alias_add(dir, alias, target, true, err, errlen);
}

int auth_alias_del(struct auth_directory *dir, const char *alias_in, const char *target_in,
		   char *err, size_t errlen)
{
	char *alias, *target;
	int rc, changes;

	if (normalize_alias(dir, alias_in, &alias, err, errlen) < 0)
		return -1;
	if (auth_address_normalize(target_in, &target, err, errlen) < 0) {
		free(alias);
		return -1;
	}
	pthread_mutex_lock(&dir->lock);
	rc = auth_dir_run_locked(dir, "DELETE FROM aliases WHERE alias = ? AND target = ?", alias,
				 target, NULL);
	changes = sqlite3_changes(dir->db);
	pthread_mutex_unlock(&dir->lock);
	if (rc != SQLITE_DONE) {
		db_error(dir, err, errlen);
	} else if (changes == 0) {
		err_setf(err, errlen, "alias %s -> %s does not exist", alias, target);
		rc = SQLITE_ERROR;
	}
	free(alias);
	free(target);
	return rc == SQLITE_DONE ? 0 : -1;
}

int auth_alias_list(struct auth_directory *dir,
		    void (*cb)(const char *alias, const char *target, void *ctx), void *ctx)
{
	return list_rows(dir, "SELECT alias, target FROM aliases ORDER BY alias, target", NULL, 2,
			 NULL, cb, ctx);
}

/* ---------------- lookups for recipient resolution ---------------- */

int auth_dir_user_known(struct auth_directory *dir, const char *address)
{
	int64_t n;

	pthread_mutex_lock(&dir->lock);
	n = count_locked(dir, "SELECT count(*) FROM users WHERE address = ?", address, NULL);
	pthread_mutex_unlock(&dir->lock);
	return n < 0 ? -1 : n > 0;
}

int auth_dir_domain_known(struct auth_directory *dir, const char *domain)
{
	int64_t n;

	pthread_mutex_lock(&dir->lock);
	n = count_locked(dir, "SELECT count(*) FROM domains WHERE name = ?", domain, NULL);
	pthread_mutex_unlock(&dir->lock);
	return n < 0 ? -1 : n > 0;
}

int auth_dir_alias_targets(struct auth_directory *dir, const char *alias, char ***targets_r,
			   size_t *count_r)
{
	sqlite3_stmt *st;
	char **t = NULL;
	size_t n = 0;
	int rc;

	*targets_r = NULL;
	*count_r = 0;
	pthread_mutex_lock(&dir->lock);
	st = prepare(dir, "SELECT target FROM aliases WHERE alias = ? ORDER BY target LIMIT ?");
	if (st == NULL) {
		pthread_mutex_unlock(&dir->lock);
		return -1;
	}
	sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, AUTH_ALIAS_TARGETS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		t = xrealloc(t, (n + 1) * sizeof(*t));
		t[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&dir->lock);
	if (rc != SQLITE_DONE) {
		log_error("event=accounts_db_error error=\"%s\"", sqlite3_errstr(rc));
		for (size_t i = 0; i < n; i++)
			free(t[i]);
		free(t);
		return -1;
	}
	*targets_r = t;
	*count_r = n;
	return 0;
}
