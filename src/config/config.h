/* roost.conf: an INI file read with inih into one typed, validated, read-only struct config.
 * Every setting is declared once in the table in config.c with its default and bounds;
 * `roost check` prints the effective values from that same table. */
#ifndef ROOST_CONFIG_H
#define ROOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum listen_kind {
	LISTEN_SMTP,
	LISTEN_SUBMISSION,
	LISTEN_SUBMISSIONS,
	LISTEN_IMAP,
	LISTEN_IMAPS,
	LISTEN_POP3,
	LISTEN_POP3S,
	LISTEN_LMTP,
	LISTEN_METRICS,
	LISTEN_HTTP,
	LISTEN_HTTPS,
	LISTEN_KIND_COUNT
};

/* One address to bind. host is a numeric IPv4/IPv6 address; "*" means every address. */
struct listen_addr {
	char host[64];
	uint16_t port;
};

/* The socket address to bind for la into ss, and its length: "*" is the IPv6 any address
 * (which takes IPv4 too unless IPV6_V6ONLY), a host with ':' IPv6, anything else IPv4. The
 * host was checked when the config was read. */
socklen_t listen_addr_sockaddr(const struct listen_addr *la, struct sockaddr_storage *ss);

/* In the file a listen key may be repeated or continued on indented lines: the first
 * occurrence replaces the default, later ones add addresses; an empty value means off. */
struct listen_list {
	size_t count;
	struct listen_addr *addrs;
};

enum plaintext_policy {
	PLAINTEXT_LOOPBACK, /* plaintext AUTH without TLS only from loopback peers */
	PLAINTEXT_NEVER,    /* never without TLS, not even from loopback */
	PLAINTEXT_ALWAYS    /* anywhere (not advised) */
};

enum pop3_delete_action { POP3_DELETE_EXPUNGE, POP3_DELETE_TRASH, POP3_DELETE_KEEP };
/* What a DMARC p=reject does to a failing message: refuse it, or file it into Junk. */
enum dmarc_reject_action { DMARC_REJECT_REJECT, DMARC_REJECT_QUARANTINE };
enum pop3_lock_policy { POP3_LOCK_SHARE, POP3_LOCK_REFUSE };
/* [relay] tls: what the smarthost connection must have before the password goes out. */
enum relay_tls {
	RELAY_TLS_VERIFY,  /* STARTTLS with a certificate valid for the smarthost's name */
	RELAY_TLS_ENCRYPT, /* STARTTLS, any certificate (a private smarthost's own) */
	RELAY_TLS_NONE     /* whatever the server offers, clear text included */
};

/* [virus]: what happens to an infected message, and to one clamd could not scan. */
/* A delivery the quota refuses: 452 4.2.2 (the sender retries) or 552 5.2.2 (RFC 3463). */
enum quota_smtp_over { QUOTA_SMTP_TEMPORARY, QUOTA_SMTP_PERMANENT };
enum virus_action { VIRUS_ACTION_REJECT, VIRUS_ACTION_JUNK, VIRUS_ACTION_QUARANTINE };
enum virus_on_error { VIRUS_ON_ERROR_TEMPFAIL, VIRUS_ON_ERROR_ACCEPT };
/* [mtasts] mode: the MTA-STS policy (RFC 8461 §3.2) `roost domain dns` publishes; none prints
 * no MTA-STS records (this version does not serve the policy file itself). */
enum mtasts_mode { MTASTS_MODE_NONE, MTASTS_MODE_TESTING, MTASTS_MODE_ENFORCE };

struct config {
	char *path;     /* the file read, or NULL when running on defaults */
	char *base_dir; /* relative paths in the file are relative to this folder */

	/* [server] */
	char *hostname;
	char *data_dir;
	char *run_as;
	char *pidfile; /* "" = DATA_DIR/roost.pid */
	int64_t workers; /* 0 = one per core */
	char *log_level;
	int log_format; /* [log] format: enum log_format order (logfmt, json) */

	/* [tls] */
	char *tls_cert;
	char *tls_key;

	/* [listen] */
	struct listen_list listen[LISTEN_KIND_COUNT];

	/* [limits] */
	int64_t imap_line_preauth;
	int64_t imap_line;
	int64_t imap_literal;
	int64_t smtp_line;
	int64_t message_size;
	int64_t recipients;
	int64_t mime_depth;
	int64_t mime_parts;
	int64_t header_block;
	int64_t connections_per_ip;
	int64_t bad_commands;
	int64_t max_connections;  /* all listeners together; 0 = from the descriptor limit */
	int64_t prelogin_timeout; /* seconds from connect to login (SMTP: to MAIL); 0 = none */

	/* [auth] */
	enum plaintext_policy plaintext;
	int64_t failure_delay_ms;
	int64_t failure_delay_max_ms;
	int64_t failure_refuse_after; /* failures per IP in the window before refusing outright */
	int64_t failure_window;       /* seconds a failure is remembered */
	int64_t user_ip_connections;
	int64_t login_cache;	      /* seconds a verified login is remembered; 0 = off */
	int64_t min_password_length;  /* characters, for passwords set with user add/passwd */

	/* [smtp] */
	bool smtp_vrfy;
	int64_t smtp_timeout;
	int64_t smtp_rate_per_ip;   /* MX messages per hour per client address; 0 = off */
	int64_t smtp_rate_per_user; /* submitted messages per hour per user; 0 = off */

	/* [greylist] */
	bool greylist_enabled;
	int64_t greylist_delay;	       /* seconds a new triplet waits */
	int64_t greylist_expire;       /* seconds a passed triplet is kept after its last use */
	int64_t greylist_retry_window; /* seconds a new triplet waits for its retry */

	/* [srs] */
	bool srs_enabled;
	char *srs_domain; /* "" = hostname */
	int64_t srs_max_age; /* seconds; counted in whole days */

	/* [imap] */
	int64_t imap_idle_keepalive;
	int64_t imap_timeout_preauth;
	int64_t imap_timeout;
	int64_t imap_autoexpunge_days;
	int64_t imap_search_budget; /* octets one SEARCH may decode and scan */

	/* [pop3] */
	enum pop3_delete_action pop3_delete_action;
	bool pop3_include_junk;
	enum pop3_lock_policy pop3_lock;
	int64_t pop3_timeout;
	int64_t pop3_login_delay;

	/* [relay] */
	char *relay_smarthost;
	char *relay_user;
	char *relay_password;
	enum relay_tls relay_tls;
	char *relay_ca_file;

	/* [dns] */
	char *dns_resolvers;

	/* [virus] */
	char *virus_clamd; /* "" = no scanning; unix:/path or host:port */
	enum virus_action virus_action;
	enum virus_on_error virus_on_error;
	int64_t virus_max_size; /* larger messages pass unscanned, with a header saying so */
	int64_t virus_timeout;	/* seconds one scan may take, connect to verdict */
	/* [mailauth], [dmarc] */
	bool mailauth_verify;
	int64_t mailauth_time_budget; /* seconds for all lookups of one message */
	char *mailauth_arc_trusted;   /* ARC sealer domains trusted to override a DMARC fail */
	enum dmarc_reject_action dmarc_reject;
	bool dmarc_reports;	    /* record evaluations, send aggregate reports */
	char *dmarc_report_from;    /* "" = postmaster@hostname */
	/* [mtasts] */
	enum mtasts_mode mtasts_mode;

	/* [queue] */
	int64_t queue_retry_first;
	int64_t queue_retry_max;
	int64_t queue_give_up;
	int64_t queue_warn_after;
	int64_t queue_time_scale; /* divide every queue delay by this; tests use it */
	int64_t queue_smtp_port;  /* port of remote SMTP servers (25; tests use others) */
	int64_t queue_threads;	  /* concurrent outbound deliveries */

	/* [spam] */
	bool spam_enabled;
	int64_t spam_threshold;	 /* points from which a message goes to Junk */
	int64_t spam_max_tokens; /* rows of each account's token table */
	bool spam_fcrdns;	 /* points for a client without forward-confirmed reverse DNS */
	char *spam_dnsbl;	 /* blocklist zones; "" = none */
	char *spam_rspamd;	 /* "http://IP:PORT" of rspamd; "" = none */
	int64_t spam_rspamd_timeout; /* seconds for one rspamd check */

	/* [quota] (RFC 9208): defaults of quota.storage and quota.messages, 0 = none */
	int64_t quota_storage;
	int64_t quota_messages;
	enum quota_smtp_over quota_smtp_over;
	char *quota_warn; /* "80,95": percents of a limit that get a warning (config_quota_warn) */
};

/* The settings one account may override (`roost user set ADDRESS NAME VALUE`, stored in the
 * accounts database), resolved for one user: the server's values with the account's on top. */
struct account_settings {
	enum pop3_delete_action pop3_delete_action; /* "pop3.delete_action" */
	bool pop3_include_junk;			    /* "pop3.include_junk" */
	int64_t spam_threshold;			    /* "spam.threshold" */
	int64_t quota_storage;			    /* "quota.storage", octets, 0 = none */
	int64_t quota_messages;			    /* "quota.messages", 0 = none */
	unsigned overridden; /* bit i: the i-th per-account setting came from the account */
};

/* The server-wide values of every per-account setting. */
void config_account_defaults(const struct config *cfg, struct account_settings *as);
/* Applies one override: name is "section.key" of a per-account setting, value is parsed as
 * in the file. -1 with a reason in err when the name is not per-account or the value is bad;
 * `roost user set` calls it to refuse a bad value before storing it. */
int config_account_apply(struct account_settings *as, const char *name, const char *value,
			 char *err, size_t errlen);
/* The per-account names, space-separated (for help and error texts). */
const char *config_account_names(void);
bool config_account_known(const char *name);
/* Prints "name = value (account|server)" for every per-account setting to the stream
 * (FILE *): where the value in effect comes from. */
void config_account_print(const struct account_settings *as, void *stream);

/* A size as `roost user set ... quota.storage` and [quota] storage take it: a whole number
 * of octets, or with K, M, G or T (powers of 1024); "none" is 0. -1 when it is none of those. */
int config_parse_size(const char *text, uint64_t *bytes_r);
/* The warning thresholds of [quota] warn ("80,95": at most two percents from 1 to 100,
 * ascending; "" or "none" = no warnings); unused entries 0. -1 when malformed. */
int config_quota_warn(const char *text, unsigned percent_r[2]);
/* The settings a domain may have (`roost domain set DOMAIN NAME VALUE`): quota.storage and
 * quota.messages, limits of the sum over the domain's accounts. -1 with a reason when the
 * name or value is bad; *value_r (may be NULL) gets the number. */
int config_domain_setting_check(const char *name, const char *value, uint64_t *value_r,
				char *err, size_t errlen);

/* Fills *cfg with the defaults of every setting. */
void config_defaults(struct config *cfg);

/* Reads path into cfg (after config_defaults). On error returns -1 and puts a message naming
 * file, line and reason into err (size errlen). */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Checks the cross-setting rules that no single line can (a TLS listener needs a cert, ...). */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* Prints every setting as INI, in table order, to the stream (FILE *). */
void config_print(const struct config *cfg, void *stream);

/* The [listen] key of a listener kind ("smtp", "imaps", ...). */
const char *config_listen_name(enum listen_kind kind);

/* Absolute form of a path from the config: relative ones are taken from base_dir. Caller frees. */
char *config_resolve_path(const struct config *cfg, const char *path);

void config_free(struct config *cfg);

#endif
