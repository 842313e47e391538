/* Import of a Dovecot passwd-file (`user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`) into the
 * directory, so a Dovecot installation moves over without resetting passwords. Crypt(3) hashes
 * are kept as they are; {PLAIN} passwords are hashed. The whole file goes in as one
 * transaction: a bad line leaves the directory untouched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_internal.h"

#define AUTH_IMPORT_LINE_MAX 8192

struct import_entry {
	char *address;
	char *hash;
	struct auth_scram_creds creds; /* iterations 0 = none (crypt hash imported) */
};

/* A crypt(3) scheme and the hash prefixes that belong to it. */
static bool scheme_accepts(const char *scheme, const char *hash)
{
	if (strcmp(scheme, "SHA512-CRYPT") == 0)
		return strncmp(hash, "$6$", 3) == 0;
	if (strcmp(scheme, "SHA256-CRYPT") == 0)
		return strncmp(hash, "$5$", 3) == 0;
	if (strcmp(scheme, "BLF-CRYPT") == 0)
		return strncmp(hash, "$2y$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
		       strncmp(hash, "$2a$", 4) == 0;
	return strcmp(scheme, "CRYPT") == 0;
}

/* Parses one non-comment line into e; -1 with err (without the line prefix). */
static int parse_line(char *line, const char *default_domain, struct import_entry *e,
		      char *err, size_t errlen)
{
	char *colon = strchr(line, ':');
	char *user = line, *pass, *scheme = NULL, *full;

	memset(e, 0, sizeof(*e));
	if (colon == NULL) {
		err_setf(err, errlen, "expected user:password");
		return -1;
	}
	*colon = '\0';
	pass = colon + 1;
	colon = strchr(pass, ':');
	if (colon != NULL)
		*colon = '\0';
	full = strchr(user, '@') != NULL ? xstrdup(user) : xasprintf("%s@%s", user,
								      default_domain);
	int rc = auth_address_normalize(full, &e->address, err, errlen);
	free(full);
	if (rc < 0)
		return -1;
	if (pass[0] == '{') {
		char *close = strchr(pass, '}');
		if (close == NULL) {
			err_setf(err, errlen, "unterminated {SCHEME}");
			return -1;
		}
		*close = '\0';
		scheme = pass + 1;
		pass = close + 1;
	}
	/* Dovecot's default scheme for passwd-file is CRYPT. */
	if (scheme == NULL || strcasecmp(scheme, "PLAIN") != 0) {
		const char *name = scheme != NULL ? scheme : "CRYPT";
		char upper[32];
		size_t n = strlen(name);
		if (n >= sizeof(upper)) {
			err_setf(err, errlen, "unsupported password scheme");
			return -1;
		}
		for (size_t i = 0; i <= n; i++) {
			char c = name[i];
			upper[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
		}
		if (!(strcmp(upper, "SHA512-CRYPT") == 0 || strcmp(upper, "SHA256-CRYPT") == 0 ||
		      strcmp(upper, "BLF-CRYPT") == 0 || strcmp(upper, "CRYPT") == 0)) {
			err_setf(err, errlen,
					 "unsupported password scheme {%s} (supported: "
					 "SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, CRYPT, PLAIN)",
					 name);
			return -1;
		}
		if (!scheme_accepts(upper, pass) || !auth_password_hash_usable(pass)) {
			err_setf(err, errlen, "not a valid {%s} hash", upper);
			return -1;
		}
		e->hash = xstrdup(pass);
		return 0;
	}
	if (pass[0] == '\0' || strlen(pass) > LIMIT_AUTH_FIELD) {
		err_setf(err, errlen, "{PLAIN} password must be 1 to %d octets",
				 LIMIT_AUTH_FIELD);
		return -1;
	}
	e->hash = auth_password_hash(pass);
	if (e->hash == NULL || auth_scram_make_creds(pass, &e->creds) < 0) {
		err_setf(err, errlen, "password hashing failed");
		return -1;
	}
	mem_wipe(pass, strlen(pass));
	return 0;
}

static void entries_free(struct import_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].address);
		free(e[i].hash);
		mem_wipe(&e[i].creds, sizeof(e[i].creds));
	}
	free(e);
}

int auth_import_passwd_file(struct auth_directory *dir, const char *path,
			    const char *default_domain_in, int *without_scram_r, char *err,
			    size_t errlen)
{
	struct import_entry *entries = NULL;
	size_t count = 0, lineno = 0, cap = 0;
	char *line = NULL, *default_domain = NULL;
	char why[512];
	size_t linecap = 0;
	ssize_t len;
	int ret = -1;
	FILE *f;

	if (auth_domain_normalize(default_domain_in, &default_domain, err, errlen) < 0)
		return -1;
	f = fopen(path, "r");
	if (f == NULL) {
		err_setf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		free(default_domain);
		return -1;
	}
	while ((len = getline(&line, &linecap, f)) >= 0) {
		lineno++;
		if (len > AUTH_IMPORT_LINE_MAX) {
			err_setf(err, errlen, "%s:%zu: line longer than %d octets", path,
					 lineno, AUTH_IMPORT_LINE_MAX);
			goto out;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			entries = xrealloc(entries, cap * sizeof(*entries));
		}
		if (parse_line(line, default_domain, &entries[count], why, sizeof(why)) < 0) {
			count++;
			err_setf(err, errlen, "%s:%zu: %s", path, lineno, why);
			goto out;
		}
		count++;
		for (size_t i = 0; i + 1 < count; i++) {
			if (strcmp(entries[i].address, entries[count - 1].address) == 0) {
				err_setf(err, errlen, "%s:%zu: user %s appears twice", path,
						 lineno, entries[i].address);
				goto out;
			}
		}
	}
	if (ferror(f)) {
		err_setf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}

	pthread_mutex_lock(&dir->lock);
	if (auth_dir_exec_locked(dir, "BEGIN IMMEDIATE") < 0) {
		pthread_mutex_unlock(&dir->lock);
		err_setf(err, errlen, "accounts database error: %s",
				 sqlite3_errmsg(dir->db));
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		if (auth_dir_insert_user_locked(dir, entries[i].address, entries[i].hash,
						&entries[i].creds, why, sizeof(why)) < 0) {
			auth_dir_exec_locked(dir, "ROLLBACK");
			pthread_mutex_unlock(&dir->lock);
			err_setf(err, errlen, "%s: %s (nothing imported)", path, why);
			goto out;
		}
	}
	if (auth_dir_exec_locked(dir, "COMMIT") < 0) {
		auth_dir_exec_locked(dir, "ROLLBACK");
		pthread_mutex_unlock(&dir->lock);
		err_setf(err, errlen, "accounts database error: %s",
				 sqlite3_errmsg(dir->db));
		goto out;
	}
	pthread_mutex_unlock(&dir->lock);
	ret = (int)count;
	if (without_scram_r != NULL) {
		*without_scram_r = 0;
		for (size_t i = 0; i < count; i++)
			if (entries[i].creds.iterations == 0)
				(*without_scram_r)++;
	}
out:
	fclose(f);
	if (line != NULL)
		mem_wipe(line, linecap);
	free(line);
	entries_free(entries, count);
	free(default_domain);
	return ret;
}
