/* Quota (RFC 9208 STORAGE and MESSAGE): the usage row of the account's index, the limits a
 * commit enforces (the account's own, lowered to what its domain has left), the domain's
 * usage summed over its accounts, and the warnings stored in INBOX when usage crosses a
 * threshold.
 *
 * Design notes
 *  1. Usage is never counted outside the index: triggers on the messages table keep
 *     quota_usage in the same transaction as the rows (account.c), so concurrent commits
 *     and a kill -9 at any point leave it equal to the sum over the rows. A rebuilt or
 *     recovered index recounts it from the rows.
 *  2. The domain's usage is computed on demand, one indexed lookup per account of the
 *     domain, and only when the domain has a limit: nothing is kept in the accounts
 *     directory that could disagree with the indexes. Two accounts of a domain saving at
 *     the same moment may together pass the domain limit by at most one message each; a
 *     per-account limit is exact (the check is inside the account's commit).
 *  3. The warning decision runs under acct->warn_lock, so one crossing gives one warning,
 *     and the warning is saved before the threshold is written down: a crash in between
 *     repeats a warning rather than losing one. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "local.h"

enum store_error local_quota_usage(struct store_account *acct, uint64_t *bytes_r,
				   uint64_t *messages_r)
{
	sqlite3_stmt *st = local_stmt(acct, "SELECT bytes, messages FROM quota_usage WHERE id = 1");
	enum store_error e = STORE_ERR_IO;

	*bytes_r = 0;
	*messages_r = 0;
	if (st == NULL)
		return e;
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		sqlite3_int64 b = sqlite3_column_int64(st, 0), m = sqlite3_column_int64(st, 1);

		*bytes_r = b > 0 ? (uint64_t)b : 0;
		*messages_r = m > 0 ? (uint64_t)m : 0;
		e = STORE_OK;
	}
	local_stmt_done(st);
	return e;
}

bool local_quota_exceeded(struct store_account *acct, uint64_t bytes, uint64_t messages)
{
	return bytes > atomic_load(&acct->quota_bytes) ||
	       messages > atomic_load(&acct->quota_messages);
}

enum store_error local_quota_recount(struct store_account *acct)
{
	if (local_exec(acct, "INSERT OR IGNORE INTO quota_usage(id, bytes, messages)"
			     " VALUES(1, 0, 0);"
			     "UPDATE quota_usage SET"
			     " bytes = (SELECT COALESCE(SUM(size), 0) FROM messages),"
			     " messages = (SELECT COUNT(*) FROM messages) WHERE id = 1") < 0)
		return local_db_fail(acct, NULL, "quota-recount");
	return STORE_OK;
}

void store_set_quota_policy(struct store *store, store_quota_policy_fn *fn, void *ctx)
{
	store->quota_fn = fn;
	store->quota_ctx = ctx;
}

bool store_quota_limited(struct store *store, const char *address)
{
	struct store_quota_policy p;

	if (store->quota_fn == NULL)
		return true; /* limits set on open handles: only the account can say */
	memset(&p, 0, sizeof(p));
	store->quota_fn(store->quota_ctx, address, &p);
	return p.storage != 0 || p.messages != 0 || p.domain_storage != 0 ||
	       p.domain_messages != 0;
}

/* Usage of an account this process does not have open, read from its index without opening
 * the account (which would create it). 0 when it has no index yet. */
static int usage_of_closed(const char *dir, uint64_t *bytes_r, uint64_t *messages_r)
{
	char *path = xasprintf("%s/%s", dir, LOCAL_INDEX_FILE);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int r = 0;

	*bytes_r = *messages_r = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		free(path);
		return 0;
	}
	sqlite3_busy_timeout(db, 5000);
	/* An index of an older version has no usage row: the rows then. */
	if (sqlite3_prepare_v2(db, "SELECT bytes, messages FROM quota_usage WHERE id = 1", -1, &st,
			       NULL) != SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages", -1,
			       &st, NULL) != SQLITE_OK)
		r = -1;
	else if (sqlite3_step(st) == SQLITE_ROW) {
		*bytes_r = (uint64_t)sqlite3_column_int64(st, 0);
		*messages_r = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(path);
	return r;
}

/* The usage of every account of ACCT's domain but ACCT itself. */
static void domain_others_usage(struct store_account *acct, uint64_t *bytes_r,
				uint64_t *messages_r)
{
	struct store *store = acct->store;
	const char *domain = strrchr(acct->address, '@') + 1;
	char *domain_dir = xasprintf("%s/%s", store->mail_dir, domain);
	DIR *d = opendir(domain_dir);
	struct dirent *de;

	*bytes_r = *messages_r = 0;
	while (d != NULL && (de = readdir(d)) != NULL) {
		uint64_t b = 0, m = 0;

		if (de->d_name[0] == '.')
			continue; /* ".", "..", and accounts being removed */
		char *address = xasprintf("%s@%s", de->d_name, domain);
		struct store_account *open = NULL;

		if (strcmp(address, acct->address) == 0) {
			free(address);
			continue;
		}
		if (local_account_find_open(store, address, &open) == 0) {
			store_account_usage(open, &b, &m, NULL);
			store_account_close(&open);
		} else {
			char *dir = xasprintf("%s/%s", domain_dir, de->d_name);

			if (usage_of_closed(dir, &b, &m) < 0)
				log_warn("store=local op=domain-usage account=%s unreadable", address);
			free(dir);
		}
		*bytes_r += b;
		*messages_r += m;
		free(address);
	}
	if (d != NULL)
		closedir(d);
	free(domain_dir);
}

/* The account's own limit (0 = none), lowered to what the domain has left when the domain
 * has a limit. STORE_QUOTA_NONE when neither limits; 0 when the domain has no room left. */
static uint64_t limit_in_effect(uint64_t own, uint64_t domain, uint64_t others)
{
	uint64_t limit = own != 0 ? own : STORE_QUOTA_NONE;

	if (domain != 0) {
		uint64_t room = domain > others ? domain - others : 0;

		if (room < limit)
			limit = room;
	}
	return limit;
}

enum store_error store_account_quota(struct store_account *acct, struct store_quota *q,
				     struct store_err *err_r)
{
	struct store *store = acct->store;
	uint64_t others_bytes = 0, others_messages = 0;
	enum store_error e;

	memset(q, 0, sizeof(*q));
	if (store->quota_fn != NULL)
		store->quota_fn(store->quota_ctx, acct->address, &q->policy);
	e = store_account_usage(acct, &q->used_bytes, &q->used_messages, err_r);
	if (e != STORE_OK)
		return e;
	if (q->policy.domain_storage != 0 || q->policy.domain_messages != 0)
		domain_others_usage(acct, &others_bytes, &others_messages);
	q->domain_used_bytes = q->used_bytes + others_bytes;
	q->domain_used_messages = q->used_messages + others_messages;
	if (store->quota_fn == NULL) {
		q->limit_bytes = atomic_load(&acct->quota_bytes);
		q->limit_messages = atomic_load(&acct->quota_messages);
		return STORE_OK;
	}
	q->limit_bytes = limit_in_effect(q->policy.storage, q->policy.domain_storage, others_bytes);
	q->limit_messages = limit_in_effect(q->policy.messages, q->policy.domain_messages,
					    others_messages);
	atomic_store(&acct->quota_bytes, q->limit_bytes);
	atomic_store(&acct->quota_messages, q->limit_messages);
	return STORE_OK;
}

void local_quota_refresh(struct store_account *acct)
{
	struct store_quota q;

	if (acct->store->quota_fn != NULL)
		store_account_quota(acct, &q, NULL);
}

/* ---- warnings ---- */

enum { RESOURCE_STORAGE = 1, RESOURCE_MESSAGE = 2 };

static unsigned level_reached(const struct store_quota_policy *p, uint64_t used, uint64_t limit)
{
	unsigned level = 0;

	if (limit == STORE_QUOTA_NONE)
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(p->warn_percent); i++)
		if (p->warn_percent[i] != 0 &&
		    used * 100 >= (uint64_t)p->warn_percent[i] * limit && p->warn_percent[i] > level)
			level = p->warn_percent[i];
	return level;
}

static unsigned warned_get(struct store_account *acct, int resource)
{
	unsigned level = 0;

	pthread_mutex_lock(&acct->lock);
	sqlite3_stmt *st = local_stmt(acct, "SELECT percent FROM quota_warned WHERE resource = ?");

	if (st != NULL) {
		sqlite3_bind_int(st, 1, resource);
		if (sqlite3_step(st) == SQLITE_ROW)
			level = (unsigned)sqlite3_column_int(st, 0);
		local_stmt_done(st);
	}
	pthread_mutex_unlock(&acct->lock);
	return level;
}

static void warned_set(struct store_account *acct, int resource, unsigned level)
{
	local_write_begin(acct);
	sqlite3_stmt *st = local_stmt(acct, "INSERT OR REPLACE INTO quota_warned(resource, percent)"
					    " VALUES(?, ?)");

	if (st == NULL || (sqlite3_bind_int(st, 1, resource), sqlite3_bind_int(st, 2, (int)level),
			   sqlite3_step(st)) != SQLITE_DONE)
		local_db_fail(acct, NULL, "quota-warned");
	if (st != NULL)
		local_stmt_done(st);
	local_write_end(acct);
}

/* "1.5 MiB", "300 KiB": what a person reads in the warning. */
static void human_size(uint64_t bytes, char *out, size_t len)
{
	if (bytes >= 1024ULL * 1024 * 1024)
		snprintf(out, len, "%.1f GiB", (double)bytes / (1024.0 * 1024 * 1024));
	else if (bytes >= 1024 * 1024)
		snprintf(out, len, "%.1f MiB", (double)bytes / (1024.0 * 1024));
	else
		snprintf(out, len, "%llu KiB", (unsigned long long)((bytes + 1023) / 1024));
}

static void store_warning(struct store_account *acct, int resource, unsigned level,
			  uint64_t used, uint64_t limit)
{
	const char *domain = strrchr(acct->address, '@') + 1;
	char used_text[32], limit_text[32], date[64];
	struct tm tm;
	time_t now = time(NULL);
	uint64_t nonce = 0;

	if (resource == RESOURCE_STORAGE) {
		human_size(used, used_text, sizeof(used_text));
		human_size(limit, limit_text, sizeof(limit_text));
	} else {
		snprintf(used_text, sizeof(used_text), "%llu messages", (unsigned long long)used);
		snprintf(limit_text, sizeof(limit_text), "%llu", (unsigned long long)limit);
	}
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	while (getrandom(&nonce, sizeof(nonce), 0) < 0 && errno == EINTR)
		;
	char *text = xasprintf(
		"From: Mail Delivery System <postmaster@%s>\r\n"
		"To: <%s>\r\n"
		"Subject: Your mailbox is %u%% full\r\n"
		"Date: %s\r\n"
		"Message-ID: <quota.%lld.%016llx@%s>\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"Your mailbox %s uses %s of its limit of %s (%u%% or more).\r\n"
		"\r\n"
		"When the limit is reached, new mail for you is refused and you cannot\r\n"
		"save messages. To free space, delete messages you no longer need\r\n"
		"(large ones first), empty the Trash and Junk folders, and expunge;\r\n"
		"expunged messages free their space at once.\r\n",
		domain, acct->address, level, date, (long long)now, (unsigned long long)nonce,
		domain, acct->address, used_text, limit_text, level);
	enum store_error e = local_save_exempt(acct, text, strlen(text));

	if (e != STORE_OK)
		log_error("store=local op=quota-warning account=%s error=\"%s\"", acct->address,
			  store_error_str(e));
	else
		log_info("store=local op=quota-warning account=%s resource=%s percent=%u",
			 acct->address, resource == RESOURCE_STORAGE ? "storage" : "message", level);
	free(text);
}

static void check_resource(struct store_account *acct, const struct store_quota *q, int resource)
{
	bool storage = resource == RESOURCE_STORAGE;
	uint64_t used = storage ? q->used_bytes : q->used_messages;
	uint64_t limit = storage ? q->limit_bytes : q->limit_messages;
	unsigned level = level_reached(&q->policy, used, limit);
	unsigned warned = warned_get(acct, resource);

	if (level == warned)
		return;
	if (level > warned)
		store_warning(acct, resource, level, used, limit);
	warned_set(acct, resource, level);
}

void local_quota_after_change(struct store_account *acct)
{
	struct store_quota q;

	if (acct->store->quota_fn == NULL)
		return;
	pthread_mutex_lock(&acct->warn_lock);
	if (store_account_quota(acct, &q, NULL) == STORE_OK) {
		check_resource(acct, &q, RESOURCE_STORAGE);
		check_resource(acct, &q, RESOURCE_MESSAGE);
	}
	pthread_mutex_unlock(&acct->warn_lock);
}
