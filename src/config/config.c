/* The table of every setting and the INI reader built on it. A setting's default is a string
 * parsed by the same code as the file, so defaults and file values can never disagree in form.
 * The struct is filled once at start-up and is read-only for the life of the process. */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core.h"
#include "config.h"

enum setting_type { T_STR, T_FILE, T_INT, T_SIZE, T_SECONDS, T_BOOL, T_ENUM, T_LISTEN };

struct setting {
	const char *section;
	const char *key;
	enum setting_type type;
	size_t offset;
	const char *default_value;
	int64_t min, max;
	const char *const *enum_names; /* T_ENUM: names in enum order, NULL-terminated */
	const char *help;
};

static const char *const plaintext_names[] = { "loopback", "never", "always", NULL };
static const char *const delete_action_names[] = { "expunge", "trash", "keep", NULL };
static const char *const pop3_lock_names[] = { "share", "refuse", NULL };
static const char *const relay_tls_names[] = { "verify", "encrypt", "none", NULL };
static const char *const log_level_names[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_format_names[] = { "logfmt", "json", NULL };
static const char *const virus_action_names[] = { "reject", "junk", "quarantine", NULL };
static const char *const virus_on_error_names[] = { "tempfail", "accept", NULL };
static const char *const dmarc_reject_names[] = { "reject", "quarantine", NULL };
static const char *const mtasts_mode_names[] = { "none", "testing", "enforce", NULL };
static const char *const quota_smtp_over_names[] = { "temporary", "permanent", NULL };

static const char *const listen_names[LISTEN_KIND_COUNT] = {
	"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "lmtp", "metrics",
	"http",	"https",
};

#define OFF(field) offsetof(struct config, field)
#define LISTEN_OFF(kind) (offsetof(struct config, listen) + (kind) * sizeof(struct listen_list))
#define MiB (1024LL * 1024)
#define DAY (86400LL)
/* A setting that is a limit of core/limits.h takes its default and bounds from there, so the
 * header and the table cannot drift apart: NAME_DEFAULT (a decimal literal, taken as text and
 * parsed like a value from the file), NAME_MIN, NAME_MAX. */
#define LIMIT_TEXT(x) #x
#define LIMIT_DEFAULT_TEXT(x) LIMIT_TEXT(x)
#define FROM_LIMITS(sec, k, t, field, NAME, h)                                              \
	{ sec, k, t, OFF(field), LIMIT_DEFAULT_TEXT(NAME##_DEFAULT), NAME##_MIN, NAME##_MAX, NULL, \
	  h }

static const struct setting settings[] = {
	{ "server", "hostname", T_STR, OFF(hostname), "localhost", 0, 0, NULL,
	  "name in greetings and Received: headers" },
	{ "server", "data_dir", T_STR, OFF(data_dir), "/var/lib/roost", 0, 0, NULL,
	  "accounts, mail store and queue live here" },
	{ "server", "run_as", T_STR, OFF(run_as), "", 0, 0, NULL,
	  "user to switch to after binding when started as root" },
	{ "server", "pidfile", T_STR, OFF(pidfile), "", 0, 0, NULL,
	  "process id of the running server, locked while it runs; empty = DATA_DIR/roost.pid" },
	{ "server", "workers", T_INT, OFF(workers), "0", 0, 256, NULL,
	  "event loop threads; 0 = one per core" },
	{ "server", "log_level", T_ENUM, OFF(log_level), "info", 0, 0, log_level_names, NULL },

	{ "tls", "cert", T_FILE, OFF(tls_cert), "", 0, 0, NULL, "PEM certificate chain" },
	{ "tls", "key", T_FILE, OFF(tls_key), "", 0, 0, NULL, "PEM private key" },

	{ "listen", "smtp", T_LISTEN, LISTEN_OFF(LISTEN_SMTP), "", 0, 0, NULL, "MX, port 25" },
	{ "listen", "submission", T_LISTEN, LISTEN_OFF(LISTEN_SUBMISSION), "", 0, 0, NULL,
	  "587, STARTTLS" },
	{ "listen", "submissions", T_LISTEN, LISTEN_OFF(LISTEN_SUBMISSIONS), "", 0, 0, NULL,
	  "465, implicit TLS" },
	{ "listen", "imap", T_LISTEN, LISTEN_OFF(LISTEN_IMAP), "", 0, 0, NULL, "143, STARTTLS" },
	{ "listen", "imaps", T_LISTEN, LISTEN_OFF(LISTEN_IMAPS), "", 0, 0, NULL,
	  "993, implicit TLS" },
	{ "listen", "pop3", T_LISTEN, LISTEN_OFF(LISTEN_POP3), "", 0, 0, NULL, "110, STLS" },
	{ "listen", "pop3s", T_LISTEN, LISTEN_OFF(LISTEN_POP3S), "", 0, 0, NULL,
	  "995, implicit TLS" },
	{ "listen", "lmtp", T_LISTEN, LISTEN_OFF(LISTEN_LMTP), "", 0, 0, NULL,
	  "LMTP from another MTA" },
	{ "listen", "metrics", T_LISTEN, LISTEN_OFF(LISTEN_METRICS), "", 0, 0, NULL,
	  "Prometheus /metrics only over HTTP (a private address)" },
	{ "listen", "http", T_LISTEN, LISTEN_OFF(LISTEN_HTTP), "", 0, 0, NULL,
	  "/metrics and mail client autoconfiguration" },
	{ "listen", "https", T_LISTEN, LISTEN_OFF(LISTEN_HTTPS), "", 0, 0, NULL,
	  "the same over TLS" },

	FROM_LIMITS("limits", "imap_line_preauth", T_SIZE, imap_line_preauth,
		    LIMIT_IMAP_LINE_PREAUTH, NULL),
	FROM_LIMITS("limits", "imap_line", T_SIZE, imap_line, LIMIT_IMAP_LINE, NULL),
	FROM_LIMITS("limits", "imap_literal", T_SIZE, imap_literal, LIMIT_IMAP_LITERAL,
		    "literal size outside APPEND"),
	FROM_LIMITS("limits", "smtp_line", T_SIZE, smtp_line, LIMIT_SMTP_LINE, NULL),
	FROM_LIMITS("limits", "message_size", T_SIZE, message_size, LIMIT_MESSAGE_SIZE, NULL),
	FROM_LIMITS("limits", "recipients", T_INT, recipients, LIMIT_SMTP_RECIPIENTS, NULL),
	FROM_LIMITS("limits", "mime_depth", T_INT, mime_depth, LIMIT_MIME_DEPTH, NULL),
	FROM_LIMITS("limits", "mime_parts", T_INT, mime_parts, LIMIT_MIME_PARTS, NULL),
	FROM_LIMITS("limits", "header_block", T_SIZE, header_block, LIMIT_HEADER_BLOCK, NULL),
	FROM_LIMITS("limits", "connections_per_ip", T_INT, connections_per_ip,
		    LIMIT_CONNECTIONS_PER_IP, NULL),
	FROM_LIMITS("limits", "bad_commands", T_INT, bad_commands, LIMIT_BAD_COMMANDS,
		    "protocol errors before the connection is closed"),
	FROM_LIMITS("limits", "max_connections", T_INT, max_connections, LIMIT_MAX_CONNECTIONS,
		    "client connections at once, all listeners; 0 = the descriptor limit less a "
		    "reserve"),
	FROM_LIMITS("limits", "prelogin_timeout", T_SECONDS, prelogin_timeout,
		    LIMIT_PRELOGIN_TIMEOUT,
		    "time from connect to login (SMTP: to MAIL), however the bytes trickle; "
		    "0 = none"),

	{ "auth", "plaintext", T_ENUM, OFF(plaintext), "loopback", 0, 0, plaintext_names,
	  "where PLAIN/LOGIN/USER are allowed without TLS" },
	{ "auth", "failure_delay", T_INT, OFF(failure_delay_ms), "2000", 0, 60000, NULL,
	  "ms before answering a failed login" },
	{ "auth", "failure_delay_max", T_INT, OFF(failure_delay_max_ms), "15000", 0, 600000, NULL,
	  "ms, cap of the growing delay" },
	{ "auth", "failure_refuse_after", T_INT, OFF(failure_refuse_after), "50", 1, 100000, NULL,
	  "failures per IP within the window after which logins are refused" },
	{ "auth", "failure_window", T_SECONDS, OFF(failure_window), "15m", 1, DAY, NULL, NULL },
	FROM_LIMITS("auth", "user_ip_connections", T_INT, user_ip_connections,
		    LIMIT_USER_IP_CONNECTIONS, NULL),
	{ "auth", "login_cache", T_SECONDS, OFF(login_cache), "10m", 0, DAY, NULL,
	  "how long a verified login spares the next one the password hash; 0 = off" },
	{ "auth", "min_password_length", T_INT, OFF(min_password_length), "8", 1,
	  LIMIT_AUTH_FIELD, NULL,
	  "characters a password set with `roost user add/passwd` needs at least (NIST SP 800-63B)" },

	{ "smtp", "vrfy", T_BOOL, OFF(smtp_vrfy), "no", 0, 0, NULL, NULL },
	{ "smtp", "timeout", T_SECONDS, OFF(smtp_timeout), "5m", 10, DAY, NULL, NULL },
	{ "smtp", "rate_per_ip", T_INT, OFF(smtp_rate_per_ip), "0", 0, 10000000, NULL,
	  "messages per hour one address may send to the MX (a burst, then evenly); 0 = no limit" },
	{ "smtp", "rate_per_user", T_INT, OFF(smtp_rate_per_user), "1000", 0, 10000000, NULL,
	  "messages per hour one user may submit; 0 = no limit" },

	{ "greylist", "enabled", T_BOOL, OFF(greylist_enabled), "no", 0, 0, NULL,
	  "451 4.7.1 at RCPT for a new (client /24 or /64, sender, recipient) on the MX" },
	{ "greylist", "delay", T_SECONDS, OFF(greylist_delay), "300s", 1, DAY, NULL,
	  "how long a new triplet waits before a retry is accepted" },
	{ "greylist", "expire", T_SECONDS, OFF(greylist_expire), "35d", 60, 365 * DAY, NULL,
	  "how long a passed triplet is remembered after its last message" },
	{ "greylist", "retry_window", T_SECONDS, OFF(greylist_retry_window), "1d", 60, 30 * DAY,
	  NULL, "a new triplet not retried within this is forgotten" },

	{ "srs", "enabled", T_BOOL, OFF(srs_enabled), "yes", 0, 0, NULL,
	  "rewrite the sender of mail an alias forwards to another domain (SRS0/SRS1)" },
	{ "srs", "domain", T_STR, OFF(srs_domain), "", 0, 0, NULL,
	  "domain of the rewritten senders; its MX must be this server; empty = [server] hostname" },
	{ "srs", "max_age", T_SECONDS, OFF(srs_max_age), "21d", DAY, 1000 * DAY, NULL,
	  "how long a rewritten sender takes bounces back (whole days)" },

	{ "imap", "idle_keepalive", T_SECONDS, OFF(imap_idle_keepalive), "2m", 0, DAY, NULL,
	  "interval of '* OK Still here' during IDLE; 0 = off" },
	{ "imap", "timeout_preauth", T_SECONDS, OFF(imap_timeout_preauth), "60", 10, DAY, NULL,
	  NULL },
	{ "imap", "timeout", T_SECONDS, OFF(imap_timeout), "31m", 1800, 7 * DAY, NULL,
	  "RFC 9051 §5.4: at least 30 minutes" },
	{ "imap", "autoexpunge_days", T_INT, OFF(imap_autoexpunge_days), "0", 0, 36500, NULL,
	  "expunge Trash/Junk mail older than this; 0 = off" },
	{ "imap", "search_budget", T_SIZE, OFF(imap_search_budget), "8G", 1 * MiB, 1024 * 1024 * MiB,
	  NULL, "octets one SEARCH may open and scan (one TEXT key over 4G of mail); then NO [LIMIT]" },

	{ "pop3", "delete_action", T_ENUM, OFF(pop3_delete_action), "expunge", 0, 0,
	  delete_action_names, NULL },
	{ "pop3", "include_junk", T_BOOL, OFF(pop3_include_junk), "no", 0, 0, NULL, NULL },
	{ "pop3", "lock", T_ENUM, OFF(pop3_lock), "share", 0, 0, pop3_lock_names, NULL },
	{ "pop3", "timeout", T_SECONDS, OFF(pop3_timeout), "10m", 10, DAY, NULL, NULL },
	{ "pop3", "login_delay", T_SECONDS, OFF(pop3_login_delay), "0", 0, DAY, NULL,
	  "least time between two logins of one user (RFC 2449 LOGIN-DELAY); 0 = none" },

	{ "relay", "smarthost", T_STR, OFF(relay_smarthost), "", 0, 0, NULL, "host:port" },
	{ "relay", "user", T_STR, OFF(relay_user), "", 0, 0, NULL, NULL },
	{ "relay", "password", T_STR, OFF(relay_password), "", 0, 0, NULL, NULL },
	{ "relay", "tls", T_ENUM, OFF(relay_tls), "verify", 0, 0, relay_tls_names,
	  "verify = STARTTLS and a valid certificate; encrypt = STARTTLS only; none" },
	{ "relay", "ca_file", T_FILE, OFF(relay_ca_file), "", 0, 0, NULL,
	  "PEM CAs for tls = verify; empty = the system's" },

	{ "dns", "resolvers", T_STR, OFF(dns_resolvers), "", 0, 0, NULL,
	  "ADDR[:PORT] list; empty = /etc/resolv.conf" },

	{ "mailauth", "verify", T_BOOL, OFF(mailauth_verify), "yes", 0, 0, NULL,
	  "SPF, DKIM and DMARC on mail from other servers (never on authenticated submission)" },
	{ "mailauth", "time_budget", T_SECONDS, OFF(mailauth_time_budget), "10s", 1, 120, NULL,
	  "DNS time for all checks of one message; past it a check gives temperror" },
	{ "mailauth", "arc_trusted", T_STR, OFF(mailauth_arc_trusted), "", 0, 0, NULL,
	  "ARC sealer domains whose pass, with their recorded dmarc=pass, overrides a DMARC fail" },
	{ "dmarc", "reject", T_ENUM, OFF(dmarc_reject), "reject", 0, 0, dmarc_reject_names,
	  "a failing message under p=reject: reject (550 5.7.1) or quarantine (into Junk)" },
	{ "dmarc", "reports", T_BOOL, OFF(dmarc_reports), "no", 0, 0, NULL,
	  "record DMARC evaluations and send daily aggregate reports to the rua= addresses" },
	{ "dmarc", "report_from", T_STR, OFF(dmarc_report_from), "", 0, 0, NULL,
	  "sender of aggregate reports; empty = postmaster@[server] hostname" },
	{ "mtasts", "mode", T_ENUM, OFF(mtasts_mode), "none", 0, 0, mtasts_mode_names,
	  "MTA-STS policy that `roost domain dns` publishes: none, testing or enforce" },
	{ "spam", "enabled", T_BOOL, OFF(spam_enabled), "yes", 0, 0, NULL,
	  "score received mail, file junk into the account's Junk" },
	{ "spam", "threshold", T_INT, OFF(spam_threshold), "4", 1, 1000, NULL,
	  "score from which mail goes to Junk; per account: spam.threshold" },
	{ "spam", "max_tokens", T_INT, OFF(spam_max_tokens), "500000", 1000, 100000000, NULL,
	  "rows of each account's classifier table before the rarest are pruned" },
	{ "spam", "fcrdns", T_BOOL, OFF(spam_fcrdns), "yes", 0, 0, NULL,
	  "points for a client whose address has no forward-confirmed reverse DNS" },
	{ "spam", "dnsbl", T_STR, OFF(spam_dnsbl), "", 0, 0, NULL,
	  "DNS blocklist zones (space-separated, at most 4); empty = none" },
	{ "spam", "rspamd", T_STR, OFF(spam_rspamd), "", 0, 0, NULL,
	  "http://IP:PORT of an rspamd whose score is added to ours; empty = none" },
	{ "spam", "rspamd_timeout", T_SECONDS, OFF(spam_rspamd_timeout), "5", 1, 120, NULL,
	  "seconds one rspamd check may take; then our score alone" },

	{ "queue", "retry_first", T_SECONDS, OFF(queue_retry_first), "5m", 1, DAY, NULL, NULL },
	{ "queue", "retry_max", T_SECONDS, OFF(queue_retry_max), "4h", 1, 7 * DAY, NULL, NULL },
	{ "queue", "give_up", T_SECONDS, OFF(queue_give_up), "5d", 60, 60 * DAY, NULL, NULL },
	{ "queue", "warn_after", T_SECONDS, OFF(queue_warn_after), "4h", 0, 60 * DAY, NULL, NULL },
	{ "queue", "time_scale", T_INT, OFF(queue_time_scale), "1", 1, 1000000, NULL,
	  "divide queue delays by this (tests only)" },
	{ "queue", "smtp_port", T_INT, OFF(queue_smtp_port), "25", 1, 65535, NULL,
	  "port of remote mail servers" },
	{ "queue", "threads", T_INT, OFF(queue_threads), "8", 1, 256, NULL,
	  "concurrent outbound deliveries" },

	{ "log", "format", T_ENUM, OFF(log_format), "logfmt", 0, 0, log_format_names,
	  "logfmt (key=value) or json (one object per line, the same keys)" },

	{ "virus", "clamd", T_STR, OFF(virus_clamd), "", 0, 0, NULL,
	  "unix:/run/clamav/clamd.ctl, IP:PORT or [IPv6]:PORT of clamd; empty = no virus scanning" },
	{ "virus", "action", T_ENUM, OFF(virus_action), "reject", 0, 0, virus_action_names,
	  "infected mail: reject (554 5.7.0), junk (file into \\Junk), quarantine (keep aside)" },
	{ "virus", "on_error", T_ENUM, OFF(virus_on_error), "tempfail", 0, 0,
	  virus_on_error_names, "clamd down or slow: tempfail (451 4.7.0) or accept with a header" },
	{ "virus", "max_size", T_SIZE, OFF(virus_max_size), "25M", 1024, 1024 * MiB, NULL,
	  "larger messages pass unscanned (clamd's StreamMaxLength must be at least this)" },
	{ "virus", "timeout", T_SECONDS, OFF(virus_timeout), "30", 1, 3600, NULL,
	  "one scan, connect to verdict" },

	{ "quota", "storage", T_SIZE, OFF(quota_storage), "0", 0, INT64_MAX, NULL,
	  "octets of mail per account (K, M, G, T); 0 or none = unlimited; per account and "
	  "domain: quota.storage" },
	{ "quota", "messages", T_INT, OFF(quota_messages), "0", 0, INT64_MAX, NULL,
	  "messages per account; 0 = unlimited; per account and domain: quota.messages" },
	{ "quota", "smtp_over", T_ENUM, OFF(quota_smtp_over), "temporary", 0, 0,
	  quota_smtp_over_names,
	  "mail for a full mailbox: temporary (452 4.2.2, retried) or permanent (552 5.2.2)" },
	{ "quota", "warn", T_STR, OFF(quota_warn), "80,95", 0, 0, NULL,
	  "percents of a limit at which one warning goes to the INBOX; none = no warnings" },
};

const char *config_listen_name(enum listen_kind kind)
{
	return kind < LISTEN_KIND_COUNT ? listen_names[kind] : "?";
}

static void *field_of(struct config *cfg, const struct setting *s)
{
	return (char *)cfg + s->offset;
}

static const void *const_field_of(const struct config *cfg, const struct setting *s)
{
	return (const char *)cfg + s->offset;
}

/* "2525", "127.0.0.1:2525", "[::1]:2525", "*:2525" -> addr; -1 with a reason. */
static int parse_listen_addr(const char *text, struct listen_addr *addr, const char **why)
{
	const char *colon = strrchr(text, ':');
	const char *host = text;
	size_t host_len;
	uint64_t port;

	if (colon == NULL) {
		*why = "expected ADDRESS:PORT";
		return -1;
	}
	host_len = (size_t)(colon - text);
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	}
	if (str_to_u64(colon + 1, strlen(colon + 1), 65535, &port) < 0 || port == 0) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	if (host_len == 0 || host_len >= sizeof(addr->host)) {
		*why = "missing or overlong address";
		return -1;
	}
	memcpy(addr->host, host, host_len);
	addr->host[host_len] = '\0';
	addr->port = (uint16_t)port;
	if (strcmp(addr->host, "*") != 0) {
		unsigned char tmp[sizeof(struct in6_addr)];
		if (inet_pton(AF_INET, addr->host, tmp) != 1 &&
		    inet_pton(AF_INET6, addr->host, tmp) != 1) {
			*why = "address must be numeric IPv4, [IPv6] or *";
			return -1;
		}
	}
	return 0;
}

static int parse_listen_list(const char *value, struct listen_list *list, const char **why)
{
	char *copy = xstrdup(value);
	char *save = NULL;
	struct listen_list parsed = { 0, NULL };
	int ret = 0;

	for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		parsed.addrs = xrealloc(parsed.addrs, (parsed.count + 1) * sizeof(*parsed.addrs));
		if (parse_listen_addr(tok, &parsed.addrs[parsed.count], why) < 0) {
			ret = -1;
			break;
		}
		parsed.count++;
	}
	free(copy);
	if (ret < 0) {
		free(parsed.addrs);
		return -1;
	}
	free(list->addrs);
	*list = parsed;
	return 0;
}

/* Numbers with an optional unit: K/M/G for sizes, s/m/h/d for durations. */
static int parse_number(const char *value, enum setting_type type, int64_t *out,
			const char **why)
{
	size_t len = strlen(value);
	uint64_t mult = 1;
	uint64_t n;

	if (type == T_SIZE && str_ieq(value, "none")) {
		*out = 0;
		return 0;
	}
	if (len > 0 && (type == T_SIZE || type == T_SECONDS)) {
		char unit = value[len - 1];
		if (type == T_SIZE && (unit == 'T' || unit == 't'))
			mult = 1024ULL * 1024 * 1024 * 1024;
		else if (type == T_SIZE && (unit == 'K' || unit == 'k'))
			mult = 1024;
		else if (type == T_SIZE && (unit == 'M' || unit == 'm'))
			mult = 1024 * 1024;
		else if (type == T_SIZE && (unit == 'G' || unit == 'g'))
			mult = 1024ULL * 1024 * 1024;
		else if (type == T_SECONDS && unit == 's')
			mult = 1;
		else if (type == T_SECONDS && unit == 'm')
			mult = 60;
		else if (type == T_SECONDS && unit == 'h')
			mult = 3600;
		else if (type == T_SECONDS && unit == 'd')
			mult = 86400;
		if (mult != 1 || unit == 's')
			len--;
	}
	if (str_to_u64(value, len, (uint64_t)INT64_MAX / mult, &n) < 0) {
		*why = type == T_SIZE	 ? "expected a size such as 512, 64K, 50M"
		       : type == T_SECONDS ? "expected a duration such as 30, 90s, 5m, 4h, 5d"
					   : "expected a whole number";
		return -1;
	}
	*out = (int64_t)(n * mult);
	return 0;
}

static int parse_bool(const char *value, bool *out)
{
	if (str_ieq(value, "yes") || str_ieq(value, "true") || str_ieq(value, "on") ||
	    strcmp(value, "1") == 0)
		*out = true;
	else if (str_ieq(value, "no") || str_ieq(value, "false") || str_ieq(value, "off") ||
		 strcmp(value, "0") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

static bool file_readable(const struct config *cfg, const char *path)
{
	char *full = config_resolve_path(cfg, path);
	bool ok = access(full, R_OK) == 0;
	free(full);
	return ok;
}

/* Applies one value; on failure sets *why and returns -1 without changing cfg. */
/* Index of value in a T_ENUM's names (case-insensitive), or -1 with the choices in whybuf. */
static int parse_enum(const struct setting *s, const char *value, char *whybuf, size_t whylen)
{
	for (int i = 0; s->enum_names[i] != NULL; i++)
		if (str_ieq(value, s->enum_names[i]))
			return i;
	snprintf(whybuf, whylen, "expected one of:");
	for (int i = 0; s->enum_names[i] != NULL; i++) {
		size_t used = strlen(whybuf);
		snprintf(whybuf + used, whylen - used, " %s", s->enum_names[i]);
	}
	return -1;
}

static int setting_apply(struct config *cfg, const struct setting *s, const char *value,
			 const char **why, char *whybuf, size_t whylen)
{
	void *field = field_of(cfg, s);

	switch (s->type) {
	case T_STR:
	case T_FILE:
		if (s->type == T_FILE && value[0] != '\0' && !file_readable(cfg, value)) {
			snprintf(whybuf, whylen, "cannot read file '%s': %s", value, strerror(errno));
			*why = whybuf;
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case T_INT:
	case T_SIZE:
	case T_SECONDS: {
		int64_t n;
		if (parse_number(value, s->type, &n, why) < 0)
			return -1;
		if (n < s->min || n > s->max) {
			snprintf(whybuf, whylen, "value %s out of range %lld..%lld", value,
				 (long long)s->min, (long long)s->max);
			*why = whybuf;
			return -1;
		}
		*(int64_t *)field = n;
		return 0;
	}
	case T_BOOL:
		if (parse_bool(value, (bool *)field) < 0) {
			*why = "expected yes or no";
			return -1;
		}
		return 0;
	case T_ENUM: {
		int i = parse_enum(s, value, whybuf, whylen);

		if (i < 0) {
			*why = whybuf;
			return -1;
		}
		if (s->offset == OFF(log_level)) {
			free(cfg->log_level);
			cfg->log_level = xstrdup(s->enum_names[i]);
		} else {
			*(int *)field = i;
		}
		return 0;
	}
	case T_LISTEN:
		return parse_listen_list(value, (struct listen_list *)field, why);
	}
	return -1;
}

/* ---------------- per-account settings ---------------- */

/* Each names a T_ENUM or T_BOOL row of the settings table and its place in both structs. */
static const struct account_setting {
	const char *name; /* "section.key" */
	size_t config_offset;
	size_t account_offset;
} account_settings_table[] = {
	{ "pop3.delete_action", OFF(pop3_delete_action),
	  offsetof(struct account_settings, pop3_delete_action) },
	{ "pop3.include_junk", OFF(pop3_include_junk),
	  offsetof(struct account_settings, pop3_include_junk) },
	{ "spam.threshold", OFF(spam_threshold), offsetof(struct account_settings, spam_threshold) },
	{ "quota.storage", OFF(quota_storage), offsetof(struct account_settings, quota_storage) },
	{ "quota.messages", OFF(quota_messages),
	  offsetof(struct account_settings, quota_messages) },
};

int config_parse_size(const char *text, uint64_t *bytes_r)
{
	const char *why;
	int64_t v;

	if (parse_number(text, T_SIZE, &v, &why) < 0)
		return -1;
	*bytes_r = (uint64_t)v;
	return 0;
}

int config_quota_warn(const char *text, unsigned percent_r[2])
{
	const char *p = text;

	percent_r[0] = percent_r[1] = 0;
	if (text[0] == '\0' || str_ieq(text, "none"))
		return 0;
	for (int i = 0; i < 2; i++) {
		uint64_t n;
		size_t len = strcspn(p, ",");

		while (len > 0 && p[0] == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (str_to_u64(p, len, 100, &n) < 0 || n == 0 ||
		    (i == 1 && n <= percent_r[0]))
			return -1;
		percent_r[i] = (unsigned)n;
		p += strcspn(p, ",");
		if (*p == '\0')
			return 0;
		p++;
	}
	return -1; /* a third value */
}

int config_domain_setting_check(const char *name, const char *value, uint64_t *value_r,
				char *err, size_t errlen)
{
	uint64_t v = 0;
	int64_t n;
	const char *why;

	if (strcmp(name, "quota.storage") == 0) {
		if (config_parse_size(value, &v) < 0) {
			snprintf(err, errlen, "%s: expected a size such as 500M, 2G or a number of "
				 "octets; 0 or none = unlimited", name);
			return -1;
		}
	} else if (strcmp(name, "quota.messages") == 0) {
		if (str_ieq(value, "none")) {
			v = 0;
		} else if (parse_number(value, T_INT, &n, &why) < 0) {
			snprintf(err, errlen, "%s: expected a whole number; 0 or none = unlimited",
				 name);
			return -1;
		} else {
			v = (uint64_t)n;
		}
	} else {
		snprintf(err, errlen, "%s is not a domain setting (those are: quota.storage "
			 "quota.messages)", name);
		return -1;
	}
	if (value_r != NULL)
		*value_r = v;
	return 0;
}

static const struct setting *setting_at(size_t offset)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
		if (settings[i].offset == offset && settings[i].type != T_LISTEN)
			return &settings[i];
	return NULL;
}

void config_account_defaults(const struct config *cfg, struct account_settings *as)
{
	memset(as, 0, sizeof(*as));
	for (size_t i = 0; i < ARRAY_LEN(account_settings_table); i++) {
		const struct account_setting *a = &account_settings_table[i];
		const struct setting *s = setting_at(a->config_offset);
		size_t size = s->type == T_BOOL				 ? sizeof(bool)
			      : s->type == T_INT || s->type == T_SIZE ? sizeof(int64_t)
								   : sizeof(int);

		memcpy((char *)as + a->account_offset, const_field_of(cfg, s), size);
	}
}

int config_account_apply(struct account_settings *as, const char *name, const char *value,
			 char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_LEN(account_settings_table); i++) {
		const struct account_setting *a = &account_settings_table[i];
		const struct setting *s;
		char why[256];
		bool b;
		int n;

		if (strcmp(name, a->name) != 0)
			continue;
		s = setting_at(a->config_offset);
		if (s->type == T_BOOL) {
			if (parse_bool(value, &b) < 0) {
				snprintf(err, errlen, "%s: expected yes or no", name);
				return -1;
			}
			memcpy((char *)as + a->account_offset, &b, sizeof(b));
			as->overridden |= 1u << i;
			return 0;
		}
		if (s->type == T_INT || s->type == T_SIZE) {
			const char *num_why = NULL;
			int64_t v;

			/* A quota of "none" is 0, as in the file. */
			if (s->type == T_INT && s->min == 0 && str_ieq(value, "none"))
				value = "0";
			if (parse_number(value, s->type, &v, &num_why) < 0 || v < s->min ||
			    v > s->max) {
				if (s->type == T_SIZE)
					snprintf(err, errlen, "%s: expected a size such as 500M, 2G or "
						 "a number of octets; 0 or none = unlimited", name);
				else
					snprintf(err, errlen, "%s: expected a whole number from %lld "
						 "to %lld", name, (long long)s->min, (long long)s->max);
				return -1;
			}
			memcpy((char *)as + a->account_offset, &v, sizeof(v));
			as->overridden |= 1u << i;
			return 0;
		}
		n = parse_enum(s, value, why, sizeof(why));
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", name, why);
			return -1;
		}
		memcpy((char *)as + a->account_offset, &n, sizeof(n));
		as->overridden |= 1u << i;
		return 0;
	}
	snprintf(err, errlen, "%s is not a per-account setting (those are: %s)", name,
		 config_account_names());
	return -1;
}

const char *config_account_names(void)
{
	return "pop3.delete_action pop3.include_junk spam.threshold quota.storage quota.messages";
}

bool config_account_known(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(account_settings_table); i++)
		if (strcmp(name, account_settings_table[i].name) == 0)
			return true;
	return false;
}

void config_account_print(const struct account_settings *as, void *stream)
{
	for (size_t i = 0; i < ARRAY_LEN(account_settings_table); i++) {
		const struct account_setting *a = &account_settings_table[i];
		const struct setting *s = setting_at(a->config_offset);
		const char *field = (const char *)as + a->account_offset;
		char number[32];
		bool numeric = s->type == T_INT || s->type == T_SIZE;
		const char *value = s->type == T_BOOL ? (*(const bool *)field ? "yes" : "no")
				    : numeric		  ? number
							  : s->enum_names[*(const int *)field];

		if (numeric) {
			int64_t v;

			memcpy(&v, field, sizeof(v));
			/* A quota of 0 is no limit: say so rather than print a limit of nothing. */
			if (v == 0 && strncmp(a->name, "quota.", 6) == 0)
				snprintf(number, sizeof(number), "none");
			else
				snprintf(number, sizeof(number), "%lld", (long long)v);
		}
		fprintf(stream, "%s = %s (%s)\n", a->name, value,
			as->overridden & (1u << i) ? "account" : "server");
	}
}

void config_defaults(struct config *cfg)
{
	char whybuf[256];
	const char *why;

	memset(cfg, 0, sizeof(*cfg));
	cfg->base_dir = xstrdup(".");
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		if (setting_apply(cfg, &settings[i], settings[i].default_value, &why, whybuf,
				  sizeof(whybuf)) < 0)
			abort(); /* a broken default is a programming error */
	}
}

struct load_state {
	struct config *cfg;
	char reason[512]; /* the first error only: inih goes on and reports the first line */
	bool listen_seen[LISTEN_KIND_COUNT];
};

/* A listen key may be given again, or continued on indented lines (inih hands those over as
 * repeats of the key): the first occurrence replaces the default, later ones add addresses. */
static int listen_line(struct load_state *st, const struct setting *s, const char *value)
{
	enum listen_kind kind = (enum listen_kind)((s->offset - LISTEN_OFF(0)) /
						   sizeof(struct listen_list));
	struct listen_list *list = field_of(st->cfg, s);
	struct listen_list more = { 0, NULL };
	const char *why = NULL;

	if (parse_listen_list(value, &more, &why) < 0) {
		snprintf(st->reason, sizeof(st->reason), "[listen] %s: %s", s->key, why);
		return 0;
	}
	if (!st->listen_seen[kind]) {
		st->listen_seen[kind] = true;
		free(list->addrs);
		*list = more;
		return 1;
	}
	if (more.count > 0) { /* an empty repeat adds nothing (and more.addrs is NULL then) */
		list->addrs = xrealloc(list->addrs,
				       (list->count + more.count) * sizeof(*list->addrs));
		memcpy(list->addrs + list->count, more.addrs, more.count * sizeof(*more.addrs));
		list->count += more.count;
	}
	free(more.addrs);
	return 1;
}

/* inih reads at most INI_MAX_LINE - 1 characters a line and silently splits longer ones; a
 * split line would be parsed as something else, so such a file is refused up front. */
static int check_line_lengths(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	int line = 1;
	size_t len = 0;
	int c;

	if (f == NULL)
		return 0; /* ini_parse reports it */
	while ((c = fgetc(f)) != EOF) {
		if (c == '\n') {
			line++;
			len = 0;
			continue;
		}
		if (++len >= INI_MAX_LINE - 1) {
			snprintf(err, errlen,
				 "%s:%d: line too long (at most %d characters); continue a value on "
				 "indented lines",
				 path, line, INI_MAX_LINE - 2);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;
	char whybuf[400];
	const char *why = NULL;
	bool section_known = false;

	if (st->reason[0] != '\0')
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		const struct setting *s = &settings[i];
		if (strcmp(s->section, section) != 0)
			continue;
		section_known = true;
		if (strcmp(s->key, name) != 0)
			continue;
		if (s->type == T_LISTEN)
			return listen_line(st, s, value);
		if (setting_apply(st->cfg, s, value, &why, whybuf, sizeof(whybuf)) < 0) {
			snprintf(st->reason, sizeof(st->reason), "[%s] %s: %s", section, name, why);
			return 0;
		}
		return 1;
	}
	if (!section_known)
		snprintf(st->reason, sizeof(st->reason), "unknown section [%s]", section);
	else
		snprintf(st->reason, sizeof(st->reason), "unknown key '%s' in [%s]", name, section);
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct load_state st = { .cfg = cfg, .reason = "" };
	char *dir_copy = xstrdup(path);
	int line;

	free(cfg->path);
	cfg->path = xstrdup(path);
	free(cfg->base_dir);
	cfg->base_dir = xstrdup(dirname(dir_copy));
	free(dir_copy);

	if (check_line_lengths(path, err, errlen) < 0)
		return -1;
	line = ini_parse(path, config_ini_line, &st);
	if (line == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory while parsing", path);
		return -1;
	}
	if (line > 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line,
			 st.reason[0] ? st.reason : "syntax error (expected [section] or key = value)");
		return -1;
	}
	return 0;
}

/* The line of the file where [section] key is set (the first time), or 0. Errors about a
 * combination of settings point at the line an operator should look at. */
static int config_line_of(const struct config *cfg, const char *section, const char *key)
{
	FILE *f = cfg->path ? fopen(cfg->path, "r") : NULL;
	char line[INI_MAX_LINE + 2];
	char current[64] = "";
	int n = 0;
	size_t key_len = strlen(key);

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line;
		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {
			size_t len = strcspn(p + 1, "]");
			snprintf(current, sizeof(current), "%.*s", (int)len, p + 1);
			continue;
		}
		if (strcmp(current, section) == 0 && strncmp(p, key, key_len) == 0) {
			char *q = p + key_len;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '=' || *q == ':') {
				fclose(f);
				return n;
			}
		}
	}
	fclose(f);
	return 0;
}

/* "FILE:LINE: " for a setting, "FILE: " when it is not in the file. */
static void config_where(const struct config *cfg, const char *section, const char *key,
			 char *out, size_t outlen)
{
	int line = config_line_of(cfg, section, key);

	if (cfg->path == NULL)
		snprintf(out, outlen, "(defaults)");
	else if (line > 0)
		snprintf(out, outlen, "%s:%d", cfg->path, line);
	else
		snprintf(out, outlen, "%s", cfg->path);
}

/* The first implicit-TLS listener that is configured, or -1. */
static int first_listener(const struct config *cfg, const enum listen_kind *kinds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cfg->listen[kinds[i]].count > 0)
			return (int)kinds[i];
	return -1;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
	static const enum listen_kind tls_kinds[] = { LISTEN_SUBMISSIONS, LISTEN_IMAPS,
						      LISTEN_POP3S, LISTEN_HTTPS };
	char where[512];
	int tls_listener = first_listener(cfg, tls_kinds, ARRAY_LEN(tls_kinds));

	if (tls_listener >= 0 && (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0')) {
		config_where(cfg, "listen", listen_names[tls_listener], where, sizeof(where));
		snprintf(err, errlen,
			 "%s: [listen] %s: [tls] cert and key are required by the implicit-TLS "
			 "listeners (submissions, imaps, pop3s, https)",
			 where, listen_names[tls_listener]);
		return -1;
	}
	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
		config_where(cfg, "tls", cfg->tls_cert[0] ? "cert" : "key", where, sizeof(where));
		snprintf(err, errlen, "%s: [tls] cert and key must be set together", where);
		return -1;
	}
	if (cfg->failure_delay_max_ms < cfg->failure_delay_ms) {
		config_where(cfg, "auth", "failure_delay_max", where, sizeof(where));
		snprintf(err, errlen, "%s: [auth] failure_delay_max is below failure_delay", where);
		return -1;
	}
	unsigned warn[2];
	if (config_quota_warn(cfg->quota_warn, warn) < 0) {
		config_where(cfg, "quota", "warn", where, sizeof(where));
		snprintf(err, errlen, "%s: [quota] warn: expected one or two percents from 1 to 100, "
			 "ascending, such as 80,95 (or none)", where);
		return -1;
	}
	if (cfg->data_dir[0] == '\0') {
		config_where(cfg, "server", "data_dir", where, sizeof(where));
		snprintf(err, errlen, "%s: [server] data_dir must not be empty", where);
		return -1;
	}
	return 0;
}

static void print_value(const struct config *cfg, const struct setting *s, FILE *out)
{
	const void *field = const_field_of(cfg, s);

	switch (s->type) {
	case T_STR:
	case T_FILE:
		fprintf(out, "%s", *(char *const *)field);
		break;
	case T_INT:
	case T_SIZE:
	case T_SECONDS:
		fprintf(out, "%lld", (long long)*(const int64_t *)field);
		break;
	case T_BOOL:
		fprintf(out, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case T_ENUM:
		if (s->offset == OFF(log_level))
			fprintf(out, "%s", cfg->log_level);
		else
			fprintf(out, "%s", s->enum_names[*(const int *)field]);
		break;
	case T_LISTEN: {
		const struct listen_list *l = field;
		for (size_t i = 0; i < l->count; i++) {
			const char *h = l->addrs[i].host;
			bool v6 = strchr(h, ':') != NULL;
			fprintf(out, "%s%s%s%s:%u", i ? " " : "", v6 ? "[" : "", h, v6 ? "]" : "",
				l->addrs[i].port);
		}
		break;
	}
	}
}

void config_print(const struct config *cfg, void *stream)
{
	FILE *out = stream;
	const char *section = "";

	fprintf(out, "# effective settings%s%s\n", cfg->path ? " from " : " (defaults only)",
		cfg->path ? cfg->path : "");
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		const struct setting *s = &settings[i];
		if (strcmp(s->section, section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", s->section);
			section = s->section;
		}
		fprintf(out, "%s = ", s->key);
		if (s->type == T_STR && strcmp(s->key, "password") == 0 &&
		    (*(char *const *)const_field_of(cfg, s))[0] != '\0')
			fprintf(out, "(set)");
		else
			print_value(cfg, s, out);
		fprintf(out, "\n");
	}
}

char *config_resolve_path(const struct config *cfg, const char *path)
{
	if (path[0] == '/' || cfg->base_dir == NULL || strcmp(cfg->base_dir, ".") == 0)
		return xstrdup(path);
	return xasprintf("%s/%s", cfg->base_dir, path);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		const struct setting *s = &settings[i];
		void *field = field_of(cfg, s);
		if (s->type == T_STR || s->type == T_FILE) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (s->type == T_LISTEN) {
			struct listen_list *l = field;
			free(l->addrs);
			l->addrs = NULL;
			l->count = 0;
		}
	}
	free(cfg->log_level);
	cfg->log_level = NULL;
	free(cfg->path);
	cfg->path = NULL;
	free(cfg->base_dir);
	cfg->base_dir = NULL;
}

socklen_t listen_addr_sockaddr(const struct listen_addr *la, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strcmp(la->host, "*") == 0 || strchr(la->host, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_any;
		if (strcmp(la->host, "*") != 0)
			inet_pton(AF_INET6, la->host, &in6->sin6_addr);
		in6->sin6_port = htons(la->port);
		return sizeof(*in6);
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	in->sin_family = AF_INET;
	inet_pton(AF_INET, la->host, &in->sin_addr);
	in->sin_port = htons(la->port);
	return sizeof(*in);
}
