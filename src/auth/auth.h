/* Accounts directory (domains, users, aliases in SQLite under data_dir), password hashing and
 * verification, SASL mechanisms shared by SMTP, IMAP and POP3, and login penalties. */
#ifndef ROOST_AUTH_H
#define ROOST_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../core/core.h"

/* ---------------- accounts directory ---------------- */

/* Thread-safe handle on data_dir/accounts.db (SQLite, WAL, synchronous=FULL). Several threads
 * may call every function below at once. */
struct auth_directory;

int auth_directory_open(const char *data_dir, struct auth_directory **dir_r, char *err,
			size_t errlen);
void auth_directory_close(struct auth_directory **dir);

/* Every mutating call returns 0 or -1 with a human-readable reason in err (e.g. "domain
 * example.org does not exist", "user a@b exists"). Addresses and domains are stored
 * lower-cased; domains are validated (LDH labels), local parts validated (dot-atom, <= 64). */
int auth_domain_add(struct auth_directory *dir, const char *domain, char *err, size_t errlen);
int auth_domain_del(struct auth_directory *dir, const char *domain, char *err, size_t errlen);
bool auth_domain_exists(struct auth_directory *dir, const char *domain);
/* Calls cb once per item, sorted; returns the count or -1. */
int auth_domain_list(struct auth_directory *dir, void (*cb)(const char *domain, void *ctx),
		     void *ctx);

/* password: plain text; stored as a libxcrypt yescrypt hash plus SCRAM-SHA-256 keys
 * (RFC 5802/7677: salt, iterations 4096, StoredKey, ServerKey). */
int auth_user_add(struct auth_directory *dir, const char *address, const char *password,
		  char *err, size_t errlen);
int auth_user_del(struct auth_directory *dir, const char *address, char *err, size_t errlen);
int auth_user_passwd(struct auth_directory *dir, const char *address, const char *password,
		     char *err, size_t errlen);
bool auth_user_exists(struct auth_directory *dir, const char *address);
/* 0 when auth_user_add could add address as far as the directory goes (valid, its domain
 * ours, no such user yet), else -1 with the reason: lets a caller refuse before it asks for a
 * password. */
int auth_user_addable(struct auth_directory *dir, const char *address, char *err,
		      size_t errlen);
/* The rule for a password an administrator sets (user add/passwd; not imported hashes): at
 * least min_length characters (UTF-8 code points, as NIST SP 800-63B counts them) and not the
 * address or its local part, in any case. 0, or -1 with the reason in err. */
int auth_password_acceptable(const char *address, const char *password, uint32_t min_length,
			     char *err, size_t errlen);
/* domain NULL = all users. */
int auth_user_list(struct auth_directory *dir, const char *domain,
		   void (*cb)(const char *address, void *ctx), void *ctx);
/* Per-account settings (user_settings.c): name/value overrides of server-wide settings for
 * one user, removed with the user. The names and values are checked by the caller
 * (config_account_apply); the directory only keeps them. value NULL removes the override.
 * -1 with err (unknown user, storage error). */
int auth_user_setting_set(struct auth_directory *dir, const char *address, const char *name,
			  const char *value, char *err, size_t errlen);
/* Calls cb for each override of address (canonical or as typed), ordered by name; 0, or -1
 * on a storage error. An unknown user simply has none. */
int auth_user_settings(struct auth_directory *dir, const char *address,
		       void (*cb)(const char *name, const char *value, void *ctx), void *ctx);
/* Per-domain settings, the same way (the names and values are checked by the caller,
 * config_domain_setting_check), removed with the domain. -1 with err (unknown domain,
 * storage error); auth_domain_settings: 0, or -1 on a storage error. */
int auth_domain_setting_set(struct auth_directory *dir, const char *domain, const char *name,
			    const char *value, char *err, size_t errlen);
int auth_domain_settings(struct auth_directory *dir, const char *domain,
			 void (*cb)(const char *name, const char *value, void *ctx), void *ctx);
/* Dovecot passwd-file lines `user:{SCHEME}hash[:...]` (or `user@dom:...`); users without a
 * domain get default_domain. Keeps {SHA512-CRYPT}, {BLF-CRYPT}, {SHA256-CRYPT}, {CRYPT} hashes
 * as they are (crypt(3) verifies them), converts {PLAIN} to our hash. Returns the number of
 * users imported, or -1 (err names the file line). A user imported with a crypt hash has no
 * SCRAM-SHA-256 keys (they derive from the plaintext, which the hash does not give back):
 * SCRAM fails for them, like a wrong password, until their first successful plaintext login
 * (PLAIN, LOGIN, IMAP LOGIN, POP3 USER/PASS) adds the keys, or `user passwd` sets a new
 * password. *without_scram_r (may be NULL) gets how many of the users are in that state. */
int auth_import_passwd_file(struct auth_directory *dir, const char *path,
			    const char *default_domain, int *without_scram_r, char *err,
			    size_t errlen);

/* Aliases: alias is a full address or "@domain" (catch-all). Several targets allowed.
 * auth_alias_add refuses an alias that is a user's own address (its aliases would take that
 * user's mail away), an alias naming itself, and a target from which resolution leads back
 * to the alias at any depth (through aliases, plus-addressing and catch-alls). Loops already
 * in the database (from older versions) are still cut by auth_resolve_recipient.
 * auth_alias_add_shadowing allows the alias to be a user's address (`alias add --force`),
 * and then also the user as its own target: the "keep a copy" idiom; loops stay refused. */
int auth_alias_add(struct auth_directory *dir, const char *alias, const char *target, char *err,
		   size_t errlen);
int auth_alias_add_shadowing(struct auth_directory *dir, const char *alias, const char *target,
			     char *err, size_t errlen);
int auth_alias_del(struct auth_directory *dir, const char *alias, const char *target,
		   char *err, size_t errlen);
int auth_alias_list(struct auth_directory *dir,
		    void (*cb)(const char *alias, const char *target, void *ctx), void *ctx);

/* Recipient resolution for delivery: expands aliases (recursively, depth <= 8, loops cut),
 * plus-addressing (user+tag@dom -> user@dom), catch-all (@dom). Calls cb for each distinct
 * local mailbox address. Returns the count (0 = no such recipient), or -1 on a storage error
 * (temporary failure). Remote targets of aliases are passed with is_local=false. */
int auth_resolve_recipient(struct auth_directory *dir, const char *address,
			   void (*cb)(const char *target, bool is_local, void *ctx), void *ctx);

/* ---------------- verification ---------------- */

enum auth_result { AUTH_OK, AUTH_FAILED, AUTH_TEMPFAIL };

/* Verifies a password in constant time; an unknown user costs the same hash computation as a
 * known one (a dummy hash), so timing reveals nothing. On AUTH_OK *canonical_r (may be NULL)
 * gets the stored lower-case address (caller frees). Slow (tens of ms): call it off the event
 * loop. Accepts "user@domain"; a bare "user" is tried in the only domain when there is just one. */
enum auth_result auth_verify_password(struct auth_directory *dir, const char *user,
				      const char *password, char **canonical_r);
/* The same, and *reason_r (static text, for the log only, never for the client) says why a
 * login did not succeed: "unknown user", "wrong password", "empty or over-long password",
 * "accounts directory error"; NULL on AUTH_OK. */
enum auth_result auth_verify_password_reason(struct auth_directory *dir, const char *user,
					     const char *password, char **canonical_r,
					     const char **reason_r);

/* Turns on the verified-login cache (login_cache.c): a login that repeats, with the same
 * password, one verified within ttl_seconds skips the slow hash. 0 turns it off. Call before
 * the directory is shared between threads. */
void auth_directory_set_login_cache(struct auth_directory *dir, uint32_t ttl_seconds);

/* ---------------- SASL ---------------- */

enum sasl_status {
	SASL_CONTINUE,  /* send the challenge in *challenge_r (base64 text, may be empty) */
	SASL_OK,        /* authenticated; sasl_username() is set; challenge may hold
			   server-final data to send (SCRAM) per the protocol's rules */
	SASL_FAILED,    /* wrong credentials (same for unknown user), or an authzid other than
			   the user (we allow no proxy authorization) */
	SASL_CANCELLED, /* client sent "*" */
	SASL_MALFORMED, /* bad base64, bad message syntax, over-long fields */
	SASL_TEMPFAIL   /* storage error */
};

struct sasl_session;

/* Mechanisms offered, space separated: "PLAIN LOGIN SCRAM-SHA-256" when plaintext
 * mechanisms are allowed on this connection, else "SCRAM-SHA-256". */
const char *sasl_mechanisms(bool plaintext_allowed);

/* NULL if mech is unknown or (plaintext mech and !plaintext_allowed). Case-insensitive name. */
struct sasl_session *sasl_new(struct auth_directory *dir, const char *mech,
			      bool plaintext_allowed);
/* Feeds one client response: base64 text exactly as received on the wire without CRLF ("" or
 * "=" mean an empty response, "*" cancels). For the initial response (SASL-IR, AUTH PLAIN xyz)
 * call it right after sasl_new; for mechanisms where the server speaks first (LOGIN), call
 * sasl_step with line == NULL to obtain the first challenge. challenge_r receives base64 text.
 * May be slow (password hashing): call off the event loop. */
enum sasl_status sasl_step(struct sasl_session *s, const char *line, size_t len,
			   struct buf *challenge_r);
/* The authenticated canonical address after SASL_OK, else NULL. Owned by the session. */
const char *sasl_username(const struct sasl_session *s);
/* The user name the client claimed (for penalties/logging), or NULL if not yet known. */
const char *sasl_claimed_user(const struct sasl_session *s);
/* Why the last step did not succeed, for the log only (static text: "unknown user", "wrong
 * password", "malformed SASL response", ...); NULL after SASL_CONTINUE or SASL_OK. */
const char *sasl_failure_reason(const struct sasl_session *s);
void sasl_free(struct sasl_session **s);

/* One sasl_step as work for a worker thread (sasl_job.c). line NULL asks for the server's
 * first challenge. The session is borrowed: it must outlive the job. */
struct sasl_job {
	struct sasl_session *sasl;
	char *line;
	size_t len;
	enum sasl_status status; /* set by sasl_job_run */
	struct buf challenge;	 /* set by sasl_job_run: base64 text to send */
	const char *reason;	 /* set by sasl_job_run: sasl_failure_reason, for the log */
};
struct sasl_job *sasl_job_new(struct sasl_session *sasl, const char *line, size_t len);
/* Runs the step; the signature fits a worker pool's work callback. */
void sasl_job_run(void *job);
void sasl_job_free(struct sasl_job **job);

/* One auth_verify_password as work for a worker thread (password_job.c): IMAP LOGIN and POP3
 * USER/PASS. The job keeps its own copies of user and password (wiped when freed). */
struct password_job {
	struct auth_directory *dir;
	char *user;
	char *password;
	size_t password_len;
	enum auth_result result; /* set by password_job_run */
	char *canonical;	 /* set by password_job_run when result is AUTH_OK */
	const char *reason;	 /* set by password_job_run: why it failed, for the log */
};
struct password_job *password_job_new(struct auth_directory *dir, const char *user,
				      size_t user_len, const char *password, size_t password_len);
/* Runs the check; the signature fits a worker pool's work callback. */
void password_job_run(void *job);
void password_job_free(struct password_job **job);

/* One log line for a login that did not succeed (login_log.c): delay_ms >= 0 after a credentials
 * check that failed (outcome=failed, the penalty delay), -1 for a refusal (outcome=refused).
 * reason is for the operator only and never goes to the client. */
void auth_log_login_failure(const char *proto, unsigned long long conn, const char *ip,
			    const char *user, const char *reason, int64_t delay_ms);

/* ---------------- the login lifecycle (login.c) ----------------
 * One per session, embedded in it: auth_login_init at open, auth_login_end at close (and when a
 * login is taken back). Between them: auth_login_address_refused before any password is
 * checked, then auth_login_succeeded or auth_login_failed with the result of the check. The
 * protocol answers with its own wording; after a failure it sends the reply it handed over
 * (auth_login_take_reply) once the returned delay has passed, so an unknown user and a wrong
 * password look the same from outside. Not thread-safe: used on the session's loop only. */

enum auth_login_outcome {
	AUTH_LOGIN_OK,	     /* counted against user+address, the failure record cleared */
	AUTH_LOGIN_TOO_SOON, /* POP3 LOGIN-DELAY: *wait_ms_r left; nothing counted */
	AUTH_LOGIN_LIMIT     /* too many sessions of the user from the address; nothing counted */
};

struct auth_login {
	struct auth_penalty *penalty;
	const char *proto;	/* "smtp", "imap", "pop3": static text for the log */
	unsigned long long conn;
	const char *ip;		/* borrowed from the connection, which outlives the session */
	char *user;		/* the counted user after AUTH_LOGIN_OK; owned */
	bool interval_claimed;	/* LOGIN-DELAY recorded this login; taken back if it fails */
	char *held_reply;	/* the answer to a failure, held through its delay; owned */
};

void auth_login_init(struct auth_login *l, struct auth_penalty *penalty, const char *proto,
		     unsigned long long conn, const char *ip);
/* true (and one log line naming user, which may be NULL) when the address is refused outright
 * after too many failures. */
bool auth_login_address_refused(const struct auth_login *l, const char *user);
/* Starts a SASL exchange of mech (as sasl_new). NULL after the refusal's log line; then
 * *needs_tls_r tells a plaintext mechanism refused on this connection from an unknown one. */
struct sasl_session *auth_login_sasl_begin(const struct auth_login *l, struct auth_directory *dir,
					   const char *mech, bool plaintext_allowed,
					   bool *needs_tls_r);
/* The log line of a login turned away for reason (user may be NULL). */
void auth_login_refused(const struct auth_login *l, const char *user, const char *reason);
/* The credentials of user were right. min_interval_ms > 0 asks for POP3's LOGIN-DELAY. */
enum auth_login_outcome auth_login_succeeded(struct auth_login *l, const char *user,
					     uint32_t min_interval_ms, uint32_t *wait_ms_r);
/* The credentials were wrong (claimed may be NULL): records and logs the failure, takes
 * ownership of reply and returns the delay in ms after which to send it. */
uint32_t auth_login_failed(struct auth_login *l, const char *claimed, const char *reason,
			   char *reply);
/* An unknown SMTP recipient costs the same delay as a failed login (no account oracle):
 * records a failure against the address and returns the delay. Logs nothing. */
uint32_t auth_login_probe_failed(struct auth_login *l);
/* Holds reply (owned) for later, replacing one still held. */
void auth_login_hold_reply(struct auth_login *l, char *reply);
/* The held reply, now the caller's to free; NULL when none is held. */
char *auth_login_take_reply(struct auth_login *l);
/* The login is complete: LOGIN-DELAY keeps counting it. */
void auth_login_confirm(struct auth_login *l);
/* The counted user, or NULL before a success and after auth_login_end. */
const char *auth_login_user(const struct auth_login *l);
/* Releases the user+address count and an unconfirmed LOGIN-DELAY claim, frees what is held.
 * The object may be used for another login afterwards. */
void auth_login_end(struct auth_login *l);

/* ---------------- penalties and per-user connection limits ---------------- */

struct auth_penalty_config {
	uint32_t failure_delay_ms;     /* first delay after a failure (2000) */
	uint32_t failure_delay_max_ms; /* cap (15000) */
	uint32_t refuse_after;         /* failures per IP in window -> refuse (50) */
	uint32_t window_seconds;       /* how long failures are remembered (900) */
	uint32_t user_ip_connections;  /* max concurrent sessions per user+IP (30) */
};

/* Shared by all threads (internally locked, hash tables seeded per process, bounded size with
 * eviction of the oldest entries so an attacker cannot grow it without limit). */
struct auth_penalty;
struct auth_penalty *auth_penalty_new(const struct auth_penalty_config *cfg);
void auth_penalty_free(struct auth_penalty **p);

/* ip: numeric text form. Returns the delay in ms to wait before answering a failure that just
 * happened (it also records the failure against the IP and the claimed user, if any): grows
 * 2 s, 4 s, 8 s, ... capped at failure_delay_max, both per IP and per user (the larger wins). */
uint32_t auth_penalty_fail(struct auth_penalty *p, const char *ip, const char *user);
/* true when this IP must be refused outright now (too many recent failures). */
bool auth_penalty_refused(struct auth_penalty *p, const char *ip);
/* A success clears the IP's and the user's failure record. */
void auth_penalty_success(struct auth_penalty *p, const char *ip, const char *user);

/* Counts a new session of user from ip; false (and nothing counted) when the limit is
 * reached, in which case the protocol answers NO [LIMIT] / -ERR [IN-USE] / 421. */
bool auth_userip_acquire(struct auth_penalty *p, const char *user, const char *ip);
void auth_userip_release(struct auth_penalty *p, const char *user, const char *ip);

/* POP3 LOGIN-DELAY (RFC 2449 §6.5): when user's last recorded login is less than min_ms ago,
 * returns the milliseconds left and records nothing; otherwise records now as the user's last
 * login and returns 0. */
uint32_t auth_login_interval_claim(struct auth_penalty *p, const char *user, uint32_t min_ms);
/* Takes back a claim whose login did not complete (refused or the maildrop would not open). */
void auth_login_interval_release(struct auth_penalty *p, const char *user);

/* Message rates ([smtp] rate_per_ip, rate_per_user): counts one message of key (an address
 * or an authenticated user) against per_hour, which may come in a burst and then evenly
 * spread. 0 when it may go now (and it is counted), else the seconds until it may. per_hour 0
 * means no limit. A table bounded like the others: under a flood of distinct keys the least
 * recently seen are forgotten. */
enum auth_rate_kind { AUTH_RATE_IP, AUTH_RATE_USER };
uint32_t auth_rate_take(struct auth_penalty *p, enum auth_rate_kind kind, const char *key,
			uint32_t per_hour);

/* ---- SRS (srs.c): sender rewriting for forwarded mail ---- */

/* Longest address either direction produces or accepts (RFC 5321 §4.5.3.1.3's path less <>). */
#define AUTH_SRS_ADDRESS_MAX 254
/* Longest secret accepted from the secret file. */
#define AUTH_SRS_SECRET_MAX 256

/* The sender a forwarded copy leaves with: SRS0=HHHH=TT=domain=local@srs_domain, or SRS1 for
 * an SRS address (SRS0 or SRS1) of another forwarder. NULL (do not rewrite) when sender has
 * no domain or the result would be longer than AUTH_SRS_ADDRESS_MAX. Caller frees. */
char *auth_srs_forward(const uint8_t *secret, size_t secret_len, const char *srs_domain,
		       const char *sender, time_t now);

enum auth_srs_result {
	AUTH_SRS_OK,
	AUTH_SRS_NOT_SRS,   /* not SRS0/SRS1 at srs_domain: resolve as any other address */
	AUTH_SRS_MALFORMED, /* SRS form at our domain, fields missing */
	AUTH_SRS_BAD_HASH,  /* the hash does not verify */
	AUTH_SRS_EXPIRED,   /* SRS0 older than max_age_days */
};
/* Decodes an SRS address at srs_domain (case-insensitive) back to where a bounce must go: the
 * original sender for SRS0, the first forwarder's SRS0 address for SRS1. *original_r
 * (caller frees) is set only for AUTH_SRS_OK. */
enum auth_srs_result auth_srs_reverse(const uint8_t *secret, size_t secret_len,
				      const char *srs_domain, const char *address, time_t now,
				      int64_t max_age_days, char **original_r);
const char *auth_srs_result_str(enum auth_srs_result r);

/* Reads the secret (one line of text) from path, creating it first (mode 0600, 32 random
 * bytes as hex, fsync'd) when it does not exist. secret_r has AUTH_SRS_SECRET_MAX bytes. */
int auth_srs_secret_load(const char *path, uint8_t *secret_r, size_t *len_r, char *err,
			 size_t errlen);

/* ---- greylisting (greylist.c): the MX's triplet store ---- */

struct auth_greylist_config {
	uint32_t delay_s;	 /* a new triplet is accepted from this long after its first try */
	uint32_t retry_window_s; /* a new triplet not retried within this starts over */
	uint32_t expire_s;	 /* a passed triplet unused for this long is forgotten */
	uint32_t max_entries;	 /* rows kept; the least recently seen go first */
};
struct auth_greylist;
/* Opens (creating, mode 0600) the SQLite file at path. */
int auth_greylist_open(const char *path, const struct auth_greylist_config *cfg,
		       struct auth_greylist **g_r, char *err, size_t errlen);
void auth_greylist_close(struct auth_greylist **g);
enum auth_greylist_verdict {
	AUTH_GREYLIST_PASS,
	AUTH_GREYLIST_WAIT,  /* answer 451; *wait_s_r seconds until a retry passes */
	AUTH_GREYLIST_ERROR, /* the database failed (logged): let it through */
};
/* Looks up and updates the triplet (ip's network, sender, rcpt; case-insensitive) at now_ms
 * (milliseconds of the real-time clock). Blocking (SQLite): call it off the event loop.
 * Thread-safe. */
enum auth_greylist_verdict auth_greylist_check(struct auth_greylist *g, const char *ip,
					       const char *sender, const char *rcpt,
					       int64_t now_ms, uint32_t *wait_s_r);
/* The network a client address is greylisted as: "192.0.2.0/24", "2001:db8::/64" (an
 * IPv4-mapped IPv6 address as its IPv4 network). -1 when ip is not an address. */
int auth_greylist_network(const char *ip, char *out, size_t outlen);
/* Rows in the store (tests); -1 on error. */
int64_t auth_greylist_count(struct auth_greylist *g);

#endif
