/* Per-account settings in accounts.db (table user_settings): the overrides `roost user set`
 * stores and a protocol reads at login; and per-domain settings (table domain_settings, the
 * domain's quota) kept the same way. Which names exist and which values are valid is the
 * config layer's knowledge (config_account_apply); this file only stores and lists them, with
 * the directory's rules: bound parameters, every use under dir->lock, rows go with the user
 * (ON DELETE CASCADE). */
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"

int auth_user_setting_set(struct auth_directory *dir, const char *address_in, const char *name,
			  const char *value, char *err, size_t errlen)
{
	char *address;
	int known, rc = SQLITE_DONE;

	if (auth_address_normalize(address_in, &address, err, errlen) < 0)
		return -1;
	/* A user deleted between the check and the write fails the foreign key instead. */
	known = auth_dir_user_known(dir, address);
	if (known == 1) {
		pthread_mutex_lock(&dir->lock);
		rc = value != NULL
			     ? auth_dir_run_locked(dir, "INSERT OR REPLACE INTO user_settings(address,"
						   " name, value) VALUES (?, ?, ?)",
						   address, name, value)
			     : auth_dir_run_locked(dir, "DELETE FROM user_settings WHERE address = ?"
						   " AND name = ?",
						   address, name, NULL);
		if (rc != SQLITE_DONE)
			err_setf(err, errlen, "accounts database error: %s",
					 sqlite3_errmsg(dir->db));
		pthread_mutex_unlock(&dir->lock);
	} else if (known == 0) {
		err_setf(err, errlen, "user %s does not exist", address);
	} else {
		err_setf(err, errlen, "cannot read the accounts database");
	}
	free(address);
	return known == 1 && rc == SQLITE_DONE ? 0 : -1;
}

int auth_user_settings(struct auth_directory *dir, const char *address_in,
		       void (*cb)(const char *name, const char *value, void *ctx), void *ctx)
{
	char err[128];
	char *address;
	sqlite3_stmt *st = NULL;
	int rc;

	/* A name that is not an address has no settings (POP3 logins are canonical already). */
	if (auth_address_normalize(address_in, &address, err, sizeof(err)) < 0)
		return 0;
	pthread_mutex_lock(&dir->lock);
	rc = sqlite3_prepare_v2(dir->db,
				"SELECT name, value FROM user_settings WHERE address = ?"
				" ORDER BY name",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			cb((const char *)sqlite3_column_text(st, 0),
			   (const char *)sqlite3_column_text(st, 1), ctx);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		log_error("event=accounts_db_error op=user_settings error=\"%s\"",
			  sqlite3_errmsg(dir->db));
	pthread_mutex_unlock(&dir->lock);
	free(address);
	return rc == SQLITE_DONE ? 0 : -1;
}

int auth_domain_setting_set(struct auth_directory *dir, const char *domain_in, const char *name,
			    const char *value, char *err, size_t errlen)
{
	char *domain;
	int known, rc = SQLITE_DONE;

	if (auth_domain_normalize(domain_in, &domain, err, errlen) < 0)
		return -1;
	known = auth_dir_domain_known(dir, domain);
	if (known == 1) {
		pthread_mutex_lock(&dir->lock);
		rc = value != NULL
			     ? auth_dir_run_locked(dir, "INSERT OR REPLACE INTO domain_settings(domain,"
						   " name, value) VALUES (?, ?, ?)",
						   domain, name, value)
			     : auth_dir_run_locked(dir, "DELETE FROM domain_settings WHERE domain = ?"
						   " AND name = ?",
						   domain, name, NULL);
		if (rc != SQLITE_DONE)
			err_setf(err, errlen, "accounts database error: %s",
				 sqlite3_errmsg(dir->db));
		pthread_mutex_unlock(&dir->lock);
	} else if (known == 0) {
		err_setf(err, errlen, "domain %s does not exist", domain);
	} else {
		err_setf(err, errlen, "cannot read the accounts database");
	}
	free(domain);
	return known == 1 && rc == SQLITE_DONE ? 0 : -1;
}

int auth_domain_settings(struct auth_directory *dir, const char *domain_in,
			 void (*cb)(const char *name, const char *value, void *ctx), void *ctx)
{
	char *domain;
	sqlite3_stmt *st = NULL;
	int rc;

	if (auth_domain_normalize(domain_in, &domain, NULL, 0) < 0)
		return 0;
	pthread_mutex_lock(&dir->lock);
	rc = sqlite3_prepare_v2(dir->db,
				"SELECT name, value FROM domain_settings WHERE domain = ?"
				" ORDER BY name",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			cb((const char *)sqlite3_column_text(st, 0),
			   (const char *)sqlite3_column_text(st, 1), ctx);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		log_error("event=accounts_db_error op=domain_settings error=\"%s\"",
			  sqlite3_errmsg(dir->db));
	pthread_mutex_unlock(&dir->lock);
	free(domain);
	return rc == SQLITE_DONE ? 0 : -1;
}
