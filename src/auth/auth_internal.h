/* Private to src/auth/: the pieces the directory, password, SCRAM, SASL and recipient files
 * share. Nothing outside this folder includes it (tests use scram_internal.h). */
#ifndef ROOST_AUTH_INTERNAL_H
#define ROOST_AUTH_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "auth.h"

/* RFC 7677 §4 asks for at least 4096; a stored value above the ceiling would make clients
 * spin, so it is treated as damage in the store. */
#define AUTH_SCRAM_ITERATIONS 4096
#define AUTH_SCRAM_ITERATIONS_MAX 1000000
#define AUTH_SCRAM_SALT_LEN 16
#define AUTH_SCRAM_KEY_LEN 32 /* SHA-256 output */
#define AUTH_ADDRESS_MAX (64 + 1 + 253)
/* Alias expansion: nesting depth, targets read per alias, and distinct addresses one
 * recipient may expand to (a list bigger than SMTP's recipient ceiling is a mistake). */
#define AUTH_ALIAS_DEPTH_MAX 8
#define AUTH_ALIAS_TARGETS_MAX 10000
#define AUTH_RESOLVE_MAX 10000

struct auth_directory {
	sqlite3 *db;
	/* Serialises every use of db: statements of one operation must not interleave with
	 * another thread's transaction on the shared connection. Never held while hashing. */
	pthread_mutex_t lock;
	/* yescrypt hash of a random password: verifying unknown users against it costs the same
	 * as a real verification. */
	char *dummy_hash;
	/* Per-process secret for the fake SCRAM salts of unknown users. */
	uint8_t scram_secret[32];
	/* Recently verified logins (login_cache.c); NULL when off. */
	struct auth_login_cache *login_cache;
};

/* login_cache.c */
struct auth_login_cache;
bool auth_login_cache_hit(struct auth_directory *dir, const char *user, const char *hash,
			  const char *password);
void auth_login_cache_store(struct auth_directory *dir, const char *user, const char *hash,
			    const char *password);
void auth_login_cache_free(struct auth_login_cache **c);

struct auth_scram_creds {
	uint8_t salt[AUTH_SCRAM_SALT_LEN * 4];
	size_t salt_len;
	uint32_t iterations;
	uint8_t stored_key[AUTH_SCRAM_KEY_LEN];
	uint8_t server_key[AUTH_SCRAM_KEY_LEN];
};

enum auth_sasl_mech { AUTH_MECH_PLAIN, AUTH_MECH_LOGIN, AUTH_MECH_SCRAM_SHA_256 };

/* SCRAM-SHA-256 exchange state (RFC 5802 §5). */
struct auth_scram_state {
	char *gs2_header;        /* "n,," etc., as the client sent it */
	char *client_first_bare; /* for AuthMessage */
	char *server_first;      /* for AuthMessage */
	char *nonce;             /* client nonce + server nonce */
	char *fixed_server_nonce; /* tests only: replaces the random server nonce */
	char *address;           /* canonical address, NULL when unknown */
	bool known;              /* address exists and has SCRAM keys */
	struct auth_scram_creds creds;
};

struct sasl_session {
	struct auth_directory *dir;
	enum auth_sasl_mech mech;
	int step;  /* responses consumed so far */
	bool done; /* a final status was returned: further input is refused */
	char *username; /* canonical, after SASL_OK */
	char *claimed;  /* what the client said its name was */
	char *login_user; /* LOGIN: the name between the two challenges */
	const char *fail_reason; /* static text for the log; see sasl_failure_reason */
	struct auth_scram_state scram;
};

/* ---- address.c ---- */
/* Lower-cases and validates local@domain into *addr_r (caller frees); -1 with err. */
int auth_address_normalize(const char *in, char **addr_r, char *err, size_t errlen);
/* Same for a bare domain. */
int auth_domain_normalize(const char *in, char **domain_r, char *err, size_t errlen);
/* Validates an already lower-case local part of len octets. */
bool auth_local_part_valid(const char *local, size_t len);

/* ---- directory.c ---- */
/* Turns what a client typed into the stored form: lower-case, validated, a bare "user" put in
 * the only domain. 1 and *addr_r set, 0 when the name is not acceptable, -1 storage error. */
int auth_dir_canonical_user(struct auth_directory *dir, const char *user, char **addr_r);
/* Looks up a canonical address: 1 found (hash_r and creds filled; creds->iterations is 0 when
 * the user has no SCRAM keys), 0 unknown, -1 storage error. */
int auth_dir_user_lookup(struct auth_directory *dir, const char *address, char **hash_r,
			 struct auth_scram_creds *creds_r);
/* 1 / 0 / -1 (storage error) for a canonical address or domain. */
int auth_dir_user_known(struct auth_directory *dir, const char *address);
int auth_dir_domain_known(struct auth_directory *dir, const char *domain);
/* The targets of an alias ("a@b" or "@b"), at most AUTH_ALIAS_TARGETS_MAX; -1 on error. */
int auth_dir_alias_targets(struct auth_directory *dir, const char *alias, char ***targets_r,
			   size_t *count_r);
/* Stores SCRAM keys for an existing user. */
int auth_dir_store_scram(struct auth_directory *dir, const char *address,
			 const struct auth_scram_creds *creds);
/* Inserts a user row with a ready hash (creds may be NULL) inside the caller's locked
 * transaction; -1 with err. */
int auth_dir_insert_user_locked(struct auth_directory *dir, const char *address,
				const char *hash, const struct auth_scram_creds *creds, char *err,
				size_t errlen);
int auth_dir_exec_locked(struct auth_directory *dir, const char *sql);
/* Runs one statement with up to three text parameters (NULL ones left unbound) under the
 * caller's dir->lock; the sqlite3_step result (SQLITE_DONE when it went through). */
int auth_dir_run_locked(struct auth_directory *dir, const char *sql, const char *a,
			const char *b, const char *c);

/* ---- password.c ---- */
/* New yescrypt hash of password (caller frees), or NULL on a library failure. */
char *auth_password_hash(const char *password);
/* true when password matches the crypt(3) hash; constant time in the comparison. */
bool auth_password_check(const char *password, const char *hash);
/* Is text a crypt(3) hash libxcrypt can verify? */
bool auth_password_hash_usable(const char *hash);

/* ---- scram.c ---- */
/* SaltedPassword -> StoredKey, ServerKey (RFC 5802 §3). -1 on a libcrypto failure. */
int auth_scram_derive(const char *password, size_t password_len, const uint8_t *salt,
		      size_t salt_len, uint32_t iterations, uint8_t stored_key_r[32],
		      uint8_t server_key_r[32]);
/* Fresh random salt, 4096 iterations, keys for password. */
int auth_scram_make_creds(const char *password, struct auth_scram_creds *creds_r);
/* One SCRAM step on a decoded client message; raw_out gets the decoded server message. */
enum sasl_status auth_scram_step(struct sasl_session *s, const char *msg, size_t len,
				 struct buf *raw_out);
void auth_scram_state_free(struct auth_scram_state *st);

/* ---- random bytes for secrets and seeds; aborts if the kernel has none to give ---- */
void auth_random_bytes(void *buf, size_t len);

#endif
