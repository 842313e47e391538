/* Password hashes with libxcrypt: yescrypt for every new hash; any crypt(3) hash libxcrypt knows
 * (imported $6$ SHA512-CRYPT, $5$, $2y$/$2b$ BLF-CRYPT) is still verified. Also the plaintext
 * verification entry point, which hides whether a user exists by always hashing once. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"

char *auth_password_hash(const char *password)
{
	struct crypt_data *data;
	char *setting, *out, *hash = NULL;

	/* count 0 = libxcrypt's default cost for yescrypt */
	setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (setting == NULL)
		return NULL;
	data = xcalloc(1, sizeof(*data));
	out = crypt_rn(password, setting, data, sizeof(*data));
	if (out != NULL && out[0] == '$')
		hash = xstrdup(out);
	mem_wipe(data, sizeof(*data));
	free(data);
	free(setting);
	return hash;
}

bool auth_password_hash_usable(const char *hash)
{
	/* CRYPT_SALT_METHOD_LEGACY (DES, MD5) still verifies; only unknown syntax is refused. */
	int rc = crypt_checksalt(hash);

	return hash[0] != '\0' && (rc == CRYPT_SALT_OK || rc == CRYPT_SALT_METHOD_LEGACY);
}

bool auth_password_check(const char *password, const char *hash)
{
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	size_t hlen = strlen(hash);
	bool ok = false;
	char *out;

	out = crypt_rn(password, hash, data, sizeof(*data));
	/* crypt_rn returns NULL for a setting it cannot parse (a damaged or non-crypt entry):
	 * that is a mismatch, never a match. */
	if (out != NULL && out[0] != '*' && strlen(out) == hlen)
		ok = mem_equal_ct(out, hash, hlen);
	mem_wipe(data, sizeof(*data));
	free(data);
	return ok;
}

/* Fills in SCRAM keys for a user imported with a crypt hash only, now that the plaintext is
 * known to be right. Failure only costs SCRAM for that user; the login itself succeeded. */
static void upgrade_scram(struct auth_directory *dir, const char *address, const char *password)
{
	struct auth_scram_creds creds;

	if (auth_scram_make_creds(password, &creds) == 0 &&
	    auth_dir_store_scram(dir, address, &creds) == 0)
		log_info("event=scram_keys_added user=%s", address);
	mem_wipe(&creds, sizeof(creds));
}

enum auth_result auth_verify_password(struct auth_directory *dir, const char *user,
				      const char *password, char **canonical_r)
{
	const char *reason;

	return auth_verify_password_reason(dir, user, password, canonical_r, &reason);
}

enum auth_result auth_verify_password_reason(struct auth_directory *dir, const char *user,
					     const char *password, char **canonical_r,
					     const char **reason_r)
{
	struct auth_scram_creds creds;
	char *address = NULL, *hash = NULL;
	int found = 0;
	bool ok;

	memset(&creds, 0, sizeof(creds));
	if (canonical_r != NULL)
		*canonical_r = NULL;
	*reason_r = "accounts directory error";
	if (strnlen(password, LIMIT_AUTH_FIELD + 1) > LIMIT_AUTH_FIELD)
		password = "";
	int rc = auth_dir_canonical_user(dir, user, &address);
	if (rc < 0)
		return AUTH_TEMPFAIL;
	if (rc > 0) {
		found = auth_dir_user_lookup(dir, address, &hash, &creds);
		if (found < 0) {
			free(address);
			return AUTH_TEMPFAIL;
		}
	}
	/* Unknown and malformed names cost the same one hash as a real user. A repeat of a
	 * recently verified login skips it (only ever for the right password). */
	bool cached = found > 0 && password[0] != '\0' &&
		      auth_login_cache_hit(dir, address, hash, password);
	ok = cached || auth_password_check(password, found > 0 ? hash : dir->dummy_hash);
	ok = ok && found > 0 && password[0] != '\0';
	if (ok && !cached)
		auth_login_cache_store(dir, address, hash, password);
	if (ok && creds.iterations == 0)
		upgrade_scram(dir, address, password);
	mem_wipe(&creds, sizeof(creds));
	free(hash);
	if (!ok) {
		free(address);
		*reason_r = found <= 0		 ? "unknown user"
			    : password[0] == '\0' ? "empty or over-long password"
						 : "wrong password";
		return AUTH_FAILED;
	}
	*reason_r = NULL;
	if (canonical_r != NULL)
		*canonical_r = address;
	else
		free(address);
	return AUTH_OK;
}
