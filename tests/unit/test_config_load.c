/* roost.conf loading: defaults, every value type (sizes, durations, booleans, enums, listen
 * lists), error messages that name file, line and reason, the cross-setting checks of
 * config_validate and the effective-settings dump with the relay password masked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/core.h"

#define MiB (1024LL * 1024)

/* Writes text to a fresh file under /tmp; returns its path (caller unlinks and frees). */
static char *conf_write(const char *text)
{
	char tmpl[] = "/tmp/roost-test-conf-XXXXXX";
	int fd = mkstemp(tmpl);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return xstrdup(tmpl);
}

/* config_defaults + config_load of text; the file is removed again before returning. */
static int conf_load_text(struct config *cfg, const char *text, char *err, size_t errlen,
			  char **path_r)
{
	char *path = conf_write(text);
	int ret;

	config_defaults(cfg);
	err[0] = '\0';
	ret = config_load(cfg, path, err, errlen);
	unlink(path);
	if (path_r != NULL)
		*path_r = path;
	else
		free(path);
	return ret;
}

/* Loads text that must succeed. */
static void conf_ok(struct config *cfg, const char *text)
{
	char err[1024];

	if (conf_load_text(cfg, text, err, sizeof(err), NULL) != 0)
		fail_msg("config_load failed: %s", err);
}

/* Loads text that must fail at line with a message "PATH:LINE: ..." containing every reason
 * fragment given (NULL-terminated). */
static void conf_fail(const char *text, int line, ...)
{
	struct config cfg;
	char err[1024];
	char prefix[128];
	char *path;
	va_list ap;
	const char *want;

	const char *missing = NULL;
	int ret = conf_load_text(&cfg, text, err, sizeof(err), &path);

	/* everything is freed before an assertion can end the test (clean LeakSanitizer runs) */
	config_free(&cfg);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	free(path);
	assert_int_equal(ret, -1);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
	va_start(ap, line);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (missing == NULL && strstr(err + strlen(prefix), want) == NULL)
			missing = want;
	}
	va_end(ap);
	if (missing != NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, missing);
}

static void test_defaults(void **state)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	assert_null(cfg.path);
	assert_string_equal(cfg.hostname, "localhost");
	assert_string_equal(cfg.data_dir, "/var/lib/roost");
	assert_string_equal(cfg.run_as, "");
	assert_int_equal(cfg.workers, 0);
	assert_string_equal(cfg.log_level, "info");
	assert_string_equal(cfg.tls_cert, "");
	assert_string_equal(cfg.tls_key, "");
	for (int k = 0; k < LISTEN_KIND_COUNT; k++)
		assert_int_equal(cfg.listen[k].count, 0);
	assert_int_equal(cfg.imap_line_preauth, 8 * 1024);
	assert_int_equal(cfg.imap_line, 64 * 1024);
	assert_int_equal(cfg.imap_literal, 64 * 1024);
	assert_int_equal(cfg.smtp_line, 2 * 1024);
	assert_int_equal(cfg.message_size, 50 * MiB);
	assert_int_equal(cfg.recipients, 1000);
	assert_int_equal(cfg.mime_depth, 100);
	assert_int_equal(cfg.mime_parts, 10000);
	assert_int_equal(cfg.header_block, 1 * MiB);
	assert_int_equal(cfg.connections_per_ip, 100);
	assert_int_equal(cfg.bad_commands, 20);
	assert_int_equal(cfg.plaintext, PLAINTEXT_LOOPBACK);
	assert_int_equal(cfg.failure_delay_ms, 2000);
	assert_int_equal(cfg.failure_delay_max_ms, 15000);
	assert_int_equal(cfg.failure_refuse_after, 50);
	assert_int_equal(cfg.failure_window, 15 * 60);
	assert_int_equal(cfg.user_ip_connections, 30);
	assert_false(cfg.smtp_vrfy);
	assert_int_equal(cfg.smtp_timeout, 5 * 60);
	assert_int_equal(cfg.imap_idle_keepalive, 2 * 60);
	assert_int_equal(cfg.imap_timeout_preauth, 60);
	assert_int_equal(cfg.imap_timeout, 31 * 60); /* RFC 9051 §5.4: at least 30 minutes */
	assert_int_equal(cfg.imap_autoexpunge_days, 0);
	assert_int_equal(cfg.pop3_delete_action, POP3_DELETE_EXPUNGE);
	assert_false(cfg.pop3_include_junk);
	assert_int_equal(cfg.pop3_lock, POP3_LOCK_SHARE);
	assert_int_equal(cfg.pop3_timeout, 10 * 60);
	assert_string_equal(cfg.relay_smarthost, "");
	assert_string_equal(cfg.relay_password, "");
	assert_string_equal(cfg.dns_resolvers, "");
	assert_int_equal(cfg.queue_retry_first, 5 * 60);
	assert_int_equal(cfg.queue_retry_max, 4 * 3600);
	assert_int_equal(cfg.queue_give_up, 5 * 86400);
	assert_int_equal(cfg.queue_warn_after, 4 * 3600);
	assert_int_equal(cfg.queue_time_scale, 1);
	/* the defaults alone pass the cross-setting checks */
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	assert_null(cfg.hostname);
	config_free(&cfg); /* a second free is harmless */
}

/* An empty file and a file of comments change nothing. */
static void test_empty_file(void **state)
{
	struct config cfg;

	conf_ok(&cfg, "");
	assert_non_null(cfg.path);
	assert_string_equal(cfg.base_dir, "/tmp");
	assert_string_equal(cfg.hostname, "localhost");
	config_free(&cfg);
	conf_ok(&cfg, "; comment\n# another\n\n[server]\n");
	assert_int_equal(cfg.message_size, 50 * MiB);
	config_free(&cfg);
}

static void test_strings(void **state)
{
	struct config cfg;

	conf_ok(&cfg, "[server]\nhostname = mail.example.org\ndata_dir = /srv/mail\n"
		      "run_as = roost\n[relay]\nsmarthost = [192.0.2.1]:587\nuser = relay-user\n"
		      "password = s3cret\n[dns]\nresolvers = 192.0.2.53 198.51.100.53:5353\n");
	assert_string_equal(cfg.hostname, "mail.example.org");
	assert_string_equal(cfg.data_dir, "/srv/mail");
	assert_string_equal(cfg.run_as, "roost");
	assert_string_equal(cfg.relay_smarthost, "[192.0.2.1]:587");
	assert_string_equal(cfg.relay_user, "relay-user");
	assert_string_equal(cfg.relay_password, "s3cret");
	assert_string_equal(cfg.dns_resolvers, "192.0.2.53 198.51.100.53:5353");
	config_free(&cfg);
}

static void test_sizes(void **state)
{
	struct config cfg;

	conf_ok(&cfg, "[limits]\nimap_line_preauth = 2048\nimap_line = 16K\nimap_literal = 2M\n"
		      "smtp_line = 1k\nmessage_size = 1G\nheader_block = 4m\n");
	assert_int_equal(cfg.imap_line_preauth, 2048);
	assert_int_equal(cfg.imap_line, 16 * 1024);
	assert_int_equal(cfg.imap_literal, 2 * MiB);
	assert_int_equal(cfg.smtp_line, 1024);
	assert_int_equal(cfg.message_size, 1024 * MiB);
	assert_int_equal(cfg.header_block, 4 * MiB);
	config_free(&cfg);
	/* the top of a range is inclusive: 2048 MiB = 2G */
	conf_ok(&cfg, "[limits]\nmessage_size = 2G\nimap_line = 1M\n");
	assert_int_equal(cfg.message_size, 2048 * MiB);
	assert_int_equal(cfg.imap_line, 1 * MiB);
	config_free(&cfg);
	conf_ok(&cfg, "[limits]\nmessage_size = 2048M\n");
	assert_int_equal(cfg.message_size, 2048 * MiB);
	config_free(&cfg);
}

static void test_durations(void **state)
{
	struct config cfg;

	conf_ok(&cfg, "[smtp]\ntimeout = 90s\n[imap]\nidle_keepalive = 0\ntimeout_preauth = 45\n"
		      "timeout = 2h\n[pop3]\ntimeout = 3m\n[queue]\nretry_first = 30s\n"
		      "retry_max = 1d\ngive_up = 7d\nwarn_after = 0s\n[auth]\nfailure_window = 1h\n");
	assert_int_equal(cfg.smtp_timeout, 90);
	assert_int_equal(cfg.imap_idle_keepalive, 0);
	assert_int_equal(cfg.imap_timeout_preauth, 45);
	assert_int_equal(cfg.imap_timeout, 7200);
	assert_int_equal(cfg.pop3_timeout, 180);
	assert_int_equal(cfg.queue_retry_first, 30);
	assert_int_equal(cfg.queue_retry_max, 86400);
	assert_int_equal(cfg.queue_give_up, 7 * 86400);
	assert_int_equal(cfg.queue_warn_after, 0);
	assert_int_equal(cfg.failure_window, 3600);
	config_free(&cfg);
	/* exactly the RFC 9051 §5.4 minimum of 30 minutes */
	conf_ok(&cfg, "[imap]\ntimeout = 30m\n");
	assert_int_equal(cfg.imap_timeout, 1800);
	config_free(&cfg);
}

static void test_ints(void **state)
{
	struct config cfg;

	conf_ok(&cfg, "[server]\nworkers = 256\n[limits]\nrecipients = 100\nmime_depth = 2\n"
		      "mime_parts = 1000000\nconnections_per_ip = 1\nbad_commands = 1000\n"
		      "[auth]\nfailure_delay = 0\nfailure_delay_max = 600000\n"
		      "failure_refuse_after = 7\nuser_ip_connections = 100000\n"
		      "[imap]\nautoexpunge_days = 36500\n[queue]\ntime_scale = 100000\n");
	assert_int_equal(cfg.workers, 256);
	assert_int_equal(cfg.recipients, 100);
	assert_int_equal(cfg.mime_depth, 2);
	assert_int_equal(cfg.mime_parts, 1000000);
	assert_int_equal(cfg.connections_per_ip, 1);
	assert_int_equal(cfg.bad_commands, 1000);
	assert_int_equal(cfg.failure_delay_ms, 0);
	assert_int_equal(cfg.failure_delay_max_ms, 600000);
	assert_int_equal(cfg.failure_refuse_after, 7);
	assert_int_equal(cfg.user_ip_connections, 100000);
	assert_int_equal(cfg.imap_autoexpunge_days, 36500);
	assert_int_equal(cfg.queue_time_scale, 100000);
	config_free(&cfg);
}

static void test_bools(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off", "0" };
	struct config cfg;
	char text[128];

	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		snprintf(text, sizeof(text), "[smtp]\nvrfy = %s\n[pop3]\ninclude_junk = %s\n",
			 yes[i], yes[i]);
		conf_ok(&cfg, text);
		assert_true(cfg.smtp_vrfy);
		assert_true(cfg.pop3_include_junk);
		config_free(&cfg);
	}
	for (size_t i = 0; i < ARRAY_LEN(no); i++) {
		/* set first, then cleared by a later line: the last value wins */
		snprintf(text, sizeof(text), "[smtp]\nvrfy = yes\nvrfy = %s\n", no[i]);
		conf_ok(&cfg, text);
		assert_false(cfg.smtp_vrfy);
		config_free(&cfg);
	}
}

static void test_enums(void **state)
{
	struct config cfg;

	conf_ok(&cfg, "[auth]\nplaintext = never\n[pop3]\ndelete_action = trash\nlock = refuse\n"
		      "[server]\nlog_level = DEBUG\n");
	assert_int_equal(cfg.plaintext, PLAINTEXT_NEVER);
	assert_int_equal(cfg.pop3_delete_action, POP3_DELETE_TRASH);
	assert_int_equal(cfg.pop3_lock, POP3_LOCK_REFUSE);
	assert_string_equal(cfg.log_level, "debug"); /* stored in its canonical spelling */
	config_free(&cfg);
	conf_ok(&cfg, "[auth]\nplaintext = Always\n[pop3]\ndelete_action = keep\n"
		      "[server]\nlog_level = error\n");
	assert_int_equal(cfg.plaintext, PLAINTEXT_ALWAYS);
	assert_int_equal(cfg.pop3_delete_action, POP3_DELETE_KEEP);
	assert_string_equal(cfg.log_level, "error");
	config_free(&cfg);
}

static void assert_account_print(const struct account_settings *as, const char *want)
{
	char *text = NULL;
	size_t text_len = 0;
	FILE *out = open_memstream(&text, &text_len);

	config_account_print(as, out);
	fclose(out);
	assert_string_equal(text, want);
	free(text);
}

static void test_account_settings(void **state)
{
	struct config cfg;
	struct account_settings as;
	char err[256];

	(void)state;
	conf_ok(&cfg, "[pop3]\ndelete_action = trash\ninclude_junk = yes\n");
	config_account_defaults(&cfg, &as);
	assert_int_equal(as.pop3_delete_action, POP3_DELETE_TRASH);
	assert_true(as.pop3_include_junk);
	assert_int_equal(as.overridden, 0);
	assert_int_equal(config_account_apply(&as, "pop3.delete_action", "KEEP", err, sizeof(err)),
			 0);
	assert_int_equal(as.pop3_delete_action, POP3_DELETE_KEEP);
	assert_int_equal(config_account_apply(&as, "pop3.include_junk", "no", err, sizeof(err)), 0);
	assert_false(as.pop3_include_junk);
	/* Bad values and names leave everything as it was. */
	assert_int_equal(config_account_apply(&as, "pop3.delete_action", "shred", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "expunge trash keep"));
	assert_int_equal(config_account_apply(&as, "pop3.include_junk", "maybe", err, sizeof(err)),
			 -1);
	assert_int_equal(config_account_apply(&as, "pop3.lock", "refuse", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a per-account setting"));
	assert_int_equal(as.pop3_delete_action, POP3_DELETE_KEEP);
	assert_false(as.pop3_include_junk);
	assert_true(config_account_known("pop3.include_junk"));
	assert_false(config_account_known("pop3.lock"));
	assert_account_print(&as, "pop3.delete_action = keep (account)\n"
				  "pop3.include_junk = no (account)\n"
				  "spam.threshold = 4 (server)\n"
				  "quota.storage = none (server)\n"
				  "quota.messages = none (server)\n");
	/* A whole number within the bounds of [spam] threshold. */
	assert_int_equal(config_account_apply(&as, "spam.threshold", "7", err, sizeof(err)), 0);
	assert_int_equal(as.spam_threshold, 7);
	assert_int_equal(config_account_apply(&as, "spam.threshold", "0", err, sizeof(err)), -1);
	assert_int_equal(config_account_apply(&as, "spam.threshold", "2.5", err, sizeof(err)), -1);
	assert_int_equal(as.spam_threshold, 7);
	config_account_defaults(&cfg, &as);
	assert_account_print(&as, "pop3.delete_action = trash (server)\n"
				  "pop3.include_junk = yes (server)\n"
				  "spam.threshold = 4 (server)\n"
				  "quota.storage = none (server)\n"
				  "quota.messages = none (server)\n");
	config_free(&cfg);
}

static void test_listen_lists(void **state)
{
	struct config cfg;
	const struct listen_list *l;

	conf_ok(&cfg, "[listen]\nsmtp = 127.0.0.1:2525\nimap = [::1]:1143\nimaps = *:993\n"
		      "pop3 = 0.0.0.0:110 [::]:110, 192.0.2.7:1110\n"
		      "submission = [2001:db8::1]:587\nmetrics = 127.0.0.1:65535\n");
	l = &cfg.listen[LISTEN_SMTP];
	assert_int_equal(l->count, 1);
	assert_string_equal(l->addrs[0].host, "127.0.0.1");
	assert_int_equal(l->addrs[0].port, 2525);
	l = &cfg.listen[LISTEN_IMAP];
	assert_int_equal(l->count, 1);
	assert_string_equal(l->addrs[0].host, "::1"); /* brackets removed */
	assert_int_equal(l->addrs[0].port, 1143);
	l = &cfg.listen[LISTEN_IMAPS];
	assert_int_equal(l->count, 1);
	assert_string_equal(l->addrs[0].host, "*");
	assert_int_equal(l->addrs[0].port, 993);
	l = &cfg.listen[LISTEN_POP3];
	assert_int_equal(l->count, 3);
	assert_string_equal(l->addrs[0].host, "0.0.0.0");
	assert_int_equal(l->addrs[0].port, 110);
	assert_string_equal(l->addrs[1].host, "::");
	assert_int_equal(l->addrs[1].port, 110);
	assert_string_equal(l->addrs[2].host, "192.0.2.7");
	assert_int_equal(l->addrs[2].port, 1110);
	l = &cfg.listen[LISTEN_SUBMISSION];
	assert_int_equal(l->count, 1);
	assert_string_equal(l->addrs[0].host, "2001:db8::1");
	assert_int_equal(l->addrs[0].port, 587);
	assert_int_equal(cfg.listen[LISTEN_METRICS].addrs[0].port, 65535);
	assert_int_equal(cfg.listen[LISTEN_POP3S].count, 0);
	assert_int_equal(cfg.listen[LISTEN_LMTP].count, 0);
	config_free(&cfg);

	/* a repeated key, or an indented continuation line, adds addresses to the list */
	conf_ok(&cfg, "[listen]\nsmtp = 127.0.0.1:25 127.0.0.2:25\nsmtp = [::1]:25\n"
		      "lmtp = 127.0.0.1:24\n  127.0.0.3:24\n");
	assert_int_equal(cfg.listen[LISTEN_SMTP].count, 3);
	assert_string_equal(cfg.listen[LISTEN_SMTP].addrs[2].host, "::1");
	assert_int_equal(cfg.listen[LISTEN_LMTP].count, 2);
	assert_string_equal(cfg.listen[LISTEN_LMTP].addrs[1].host, "127.0.0.3");
	config_free(&cfg);

	/* an empty repeat adds nothing (found by fuzz_config: NULL passed to memcpy) */
	conf_ok(&cfg, "[listen]\nsmtp = 127.0.0.1:25\nsmtp =\n");
	assert_int_equal(cfg.listen[LISTEN_SMTP].count, 1);
	config_free(&cfg);

	/* an empty value in the file turns a listener off */
	conf_ok(&cfg, "[listen]\nsmtp =\n");
	assert_int_equal(cfg.listen[LISTEN_SMTP].count, 0);
	config_free(&cfg);
}

static void test_listen_names(void **state)
{
	assert_string_equal(config_listen_name(LISTEN_SMTP), "smtp");
	assert_string_equal(config_listen_name(LISTEN_SUBMISSIONS), "submissions");
	assert_string_equal(config_listen_name(LISTEN_IMAPS), "imaps");
	assert_string_equal(config_listen_name(LISTEN_METRICS), "metrics");
	assert_string_equal(config_listen_name(LISTEN_KIND_COUNT), "?");
}

/* A relative [tls] path is read from the folder of the config file. */
static void test_tls_files(void **state)
{
	struct config cfg;
	char *cert = conf_write("-----BEGIN CERTIFICATE-----\n");
	char *key = conf_write("-----BEGIN PRIVATE KEY-----\n");
	char text[256];
	char err[256];
	char *full;

	snprintf(text, sizeof(text), "[tls]\ncert = %s\nkey = %s\n[listen]\nimaps = *:993\n",
		 cert + strlen("/tmp/"), key);
	conf_ok(&cfg, text);
	assert_string_equal(cfg.tls_cert, cert + strlen("/tmp/"));
	assert_string_equal(cfg.tls_key, key);
	full = config_resolve_path(&cfg, cfg.tls_cert);
	assert_string_equal(full, cert);
	free(full);
	full = config_resolve_path(&cfg, cfg.tls_key);
	assert_string_equal(full, key);
	free(full);
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	unlink(cert);
	unlink(key);
	free(cert);
	free(key);
}

static void test_error_unknown_key(void **state)
{
	conf_fail("[server]\nhostname = a\nhostnme = b\n", 3, "unknown key", "hostnme", "[server]",
		  NULL);
	/* keys are per section: a key of [smtp] is unknown in [imap] */
	conf_fail("# c\n\n[imap]\nvrfy = yes\n", 4, "unknown key", "vrfy", "[imap]", NULL);
}

static void test_error_unknown_section(void **state)
{
	conf_fail("[server]\nhostname = a\n[bogus]\nx = 1\n", 4, "unknown section", "bogus", NULL);
	/* a key before any section belongs to none */
	conf_fail("hostname = a\n", 1, "unknown section", NULL);
}

static void test_error_syntax(void **state)
{
	conf_fail("[server]\nhostname\n", 2, "syntax", NULL);
	conf_fail("[server\nhostname = a\n", 1, NULL);
}

static void test_error_bad_number(void **state)
{
	conf_fail("[server]\nworkers = four\n", 2, "[server] workers", "whole number", NULL);
	conf_fail("[server]\nworkers = -1\n", 2, "workers", "whole number", NULL);
	conf_fail("[server]\nworkers = 4K\n", 2, "workers", "whole number", NULL);
	conf_fail("[server]\nworkers = 1.5\n", 2, "workers", "whole number", NULL);
	conf_fail("[limits]\nmessage_size = 10T\n", 2, "[limits] message_size", "size", NULL);
	conf_fail("[limits]\nmessage_size = M\n", 2, "message_size", "size", NULL);
	conf_fail("[limits]\nmessage_size = 10 M\n", 2, "message_size", "size", NULL);
	conf_fail("[limits]\nmessage_size = 10s\n", 2, "message_size", "size", NULL);
	conf_fail("[smtp]\ntimeout = 5w\n", 2, "[smtp] timeout", "duration", NULL);
	conf_fail("[smtp]\ntimeout = 5M\n", 2, "timeout", "duration", NULL); /* M is not minutes */
	conf_fail("[smtp]\ntimeout = 5K\n", 2, "timeout", "duration", NULL);
	conf_fail("[smtp]\ntimeout = s\n", 2, "timeout", "duration", NULL);
	/* overflow of the unit multiplication is refused, not wrapped */
	conf_fail("[limits]\nmessage_size = 9007199254740992K\n", 2, "message_size", "size", NULL);
	conf_fail("[limits]\nmessage_size = 18446744073709551616\n", 2, "message_size", NULL);
	conf_fail("[queue]\ngive_up = 106751991167301d\n", 2, "give_up", "duration", NULL);
}

static void test_error_out_of_range(void **state)
{
	conf_fail("[server]\nworkers = 257\n", 2, "[server] workers", "out of range", "0..256",
		  NULL);
	conf_fail("[limits]\nmessage_size = 3G\n", 2, "message_size", "out of range", NULL);
	conf_fail("[limits]\nmessage_size = 1023\n", 2, "message_size", "out of range", NULL);
	conf_fail("[limits]\nimap_line = 8191\n", 2, "imap_line", "out of range", NULL);
	conf_fail("[imap]\ntimeout = 29m\n", 2, "[imap] timeout", "out of range", NULL);
	conf_fail("[limits]\nrecipients = 0\n", 2, "recipients", "out of range", NULL);
	conf_fail("[server]\nworkers = 9223372036854775807\n", 2, "workers", "out of range", NULL);
	conf_fail("[queue]\ntime_scale = 0\n", 2, "time_scale", "out of range", NULL);
}

static void test_error_bad_bool_enum(void **state)
{
	conf_fail("[smtp]\nvrfy = maybe\n", 2, "[smtp] vrfy", "yes or no", NULL);
	conf_fail("[smtp]\nvrfy =\n", 2, "vrfy", NULL);
	conf_fail("[auth]\nplaintext = sometimes\n", 2, "[auth] plaintext", "loopback", "never",
		  "always", NULL);
	conf_fail("[pop3]\ndelete_action = shred\n", 2, "delete_action", "expunge", "trash", "keep",
		  NULL);
	conf_fail("[server]\nlog_level = verbose\n", 2, "log_level", "debug", NULL);
}

static void test_error_bad_listen(void **state)
{
	conf_fail("[listen]\nsmtp = 1.2.3:99\n", 2, "[listen] smtp", "numeric", NULL);
	conf_fail("[listen]\nsmtp = 127.0.0.1:0\n", 2, "smtp", "port", NULL);
	conf_fail("[listen]\nsmtp = 127.0.0.1:70000\n", 2, "smtp", "port", NULL);
	conf_fail("[listen]\nsmtp = 127.0.0.1:65536\n", 2, "smtp", "port", NULL);
	conf_fail("[listen]\nsmtp = 127.0.0.1:\n", 2, "smtp", "port", NULL);
	conf_fail("[listen]\nsmtp = 127.0.0.1:-25\n", 2, "smtp", "port", NULL);
	conf_fail("[listen]\nsmtp = 127.0.0.1:2x\n", 2, "smtp", "port", NULL);
	conf_fail("[listen]\nsmtp = example.com:25\n", 2, "smtp", "numeric", NULL);
	conf_fail("[listen]\nsmtp = localhost:25\n", 2, "smtp", "numeric", NULL);
	conf_fail("[listen]\nsmtp = 256.0.0.1:25\n", 2, "smtp", "numeric", NULL);
	conf_fail("[listen]\nsmtp = [::1:25\n", 2, "smtp", "numeric", NULL);
	conf_fail("[listen]\nsmtp = [fe80::zz]:25\n", 2, "smtp", "numeric", NULL);
	conf_fail("[listen]\nsmtp = :25\n", 2, "smtp", "address", NULL);
	conf_fail("[listen]\nsmtp = []:25\n", 2, "smtp", NULL);
	conf_fail("[listen]\nsmtp = 127.0.0.1\n", 2, "smtp", "ADDRESS:PORT", NULL);
	/* one bad address spoils the whole list, reported on its own line */
	conf_fail("[listen]\nimap = [::1]:143\nsmtp = 127.0.0.1:25 host:0\n", 3, "smtp", "port",
		  NULL);
	/* hosts longer than an address can be are refused, not truncated */
	conf_fail("[listen]\nsmtp = [1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc]:25\n",
		  2, "smtp", NULL);
}

static void test_error_missing_cert(void **state)
{
	conf_fail("[tls]\ncert = /nonexistent/roost/cert.pem\n", 2, "[tls] cert", "cannot read",
		  "/nonexistent/roost/cert.pem", NULL);
	conf_fail("[tls]\n\nkey = no-such-key-file.pem\n", 3, "[tls] key", "cannot read",
		  "no-such-key-file.pem", NULL);
}

/* The cfg keeps its earlier values for a setting whose line was refused. */
static void test_error_leaves_value(void **state)
{
	struct config cfg;
	char err[512];

	assert_int_equal(conf_load_text(&cfg, "[listen]\nsmtp = 127.0.0.1:25\nsmtp = host:0\n", err,
					sizeof(err), NULL),
			 -1);
	assert_int_equal(cfg.listen[LISTEN_SMTP].count, 1);
	assert_string_equal(cfg.listen[LISTEN_SMTP].addrs[0].host, "127.0.0.1");
	config_free(&cfg);
}

static void test_error_missing_file(void **state)
{
	struct config cfg;
	char err[512];

	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, "/nonexistent/roost.conf", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/roost.conf"));
	assert_non_null(strstr(err, "cannot open"));
	config_free(&cfg);
}

static void expect_invalid(const char *text, const char *want)
{
	struct config cfg;
	char err[512];
	char *path;

	assert_int_equal(conf_load_text(&cfg, text, err, sizeof(err), &path), 0);
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), -1);
	if (strncmp(err, path, strlen(path)) != 0 || strstr(err, want) == NULL)
		fail_msg("validate error \"%s\" lacks \"%s\" or the path", err, want);
	free(path);
	config_free(&cfg);
}

static void test_validate(void **state)
{
	char *cert = conf_write("cert\n");
	char *key = conf_write("key\n");
	char text[256];

	/* every implicit-TLS listener needs a cert and key */
	expect_invalid("[listen]\nimaps = *:993\n", "cert and key are required");
	expect_invalid("[listen]\nsubmissions = *:465\n", "cert and key are required");
	expect_invalid("[listen]\npop3s = [::1]:995\n", "cert and key are required");
	snprintf(text, sizeof(text), "[tls]\ncert = %s\n[listen]\nimaps = *:993\n", cert);
	expect_invalid(text, "cert and key are required");
	/* a cert without a key (or a key without a cert) is refused even with no TLS listener */
	snprintf(text, sizeof(text), "[tls]\ncert = %s\n", cert);
	expect_invalid(text, "cert and key must be set together");
	snprintf(text, sizeof(text), "[tls]\nkey = %s\n", key);
	expect_invalid(text, "cert and key must be set together");
	expect_invalid("[auth]\nfailure_delay = 5000\nfailure_delay_max = 4999\n",
		       "failure_delay_max");
	expect_invalid("[server]\ndata_dir =\n", "data_dir");
	unlink(cert);
	unlink(key);
	free(cert);
	free(key);
}

/* Plain listeners need no cert; the equal-delay boundary is fine. */
static void test_validate_ok(void **state)
{
	struct config cfg;
	char err[256];

	conf_ok(&cfg, "[listen]\nsmtp = *:25\nimap = *:143\npop3 = *:110\nsubmission = *:587\n"
		      "[auth]\nfailure_delay = 3000\nfailure_delay_max = 3000\n");
	assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
}

static char *print_config(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	config_print(cfg, f);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void test_print(void **state)
{
	static const char *const sections[] = { "[server]", "[tls]",  "[listen]", "[limits]",
						"[auth]",   "[smtp]", "[imap]",   "[pop3]",
						"[relay]",  "[dns]",  "[queue]" };
	struct config cfg;
	char *text;

	conf_ok(&cfg, "[relay]\nsmarthost = 192.0.2.1:587\nuser = bob\npassword = hunter2-secret\n"
		      "[listen]\nsmtp = 127.0.0.1:25 [::1]:25\n[limits]\nmessage_size = 10M\n"
		      "[smtp]\nvrfy = yes\n[auth]\nplaintext = never\n");
	text = print_config(&cfg);
	for (size_t i = 0; i < ARRAY_LEN(sections); i++) {
		char line[32];
		snprintf(line, sizeof(line), "%s\n", sections[i]);
		if (strstr(text, line) == NULL)
			fail_msg("section %s missing from:\n%s", sections[i], text);
	}
	assert_null(strstr(text, "hunter2"));
	assert_non_null(strstr(text, "\npassword = (set)\n"));
	assert_non_null(strstr(text, "\nuser = bob\n"));
	assert_non_null(strstr(text, "\nsmarthost = 192.0.2.1:587\n"));
	assert_non_null(strstr(text, "\nsmtp = 127.0.0.1:25 [::1]:25\n"));
	assert_non_null(strstr(text, "\nmessage_size = 10485760\n"));
	assert_non_null(strstr(text, "\nvrfy = yes\n"));
	assert_non_null(strstr(text, "\nplaintext = never\n"));
	assert_non_null(strstr(text, "\nlog_level = info\n"));
	assert_non_null(strstr(text, cfg.path));
	free(text);
	config_free(&cfg);

	/* an unset password prints as empty, not as "(set)" */
	config_defaults(&cfg);
	text = print_config(&cfg);
	assert_non_null(strstr(text, "\npassword = \n"));
	assert_non_null(strstr(text, "defaults only"));
	free(text);
	config_free(&cfg);
}

/* What config_print writes loads back to the same settings. */
static void test_print_roundtrip(void **state)
{
	struct config a;
	struct config b;
	char *text_a;
	char *text_b;
	char *first_nl;

	conf_ok(&a, "[server]\nhostname = mx.example.net\nworkers = 4\n[listen]\n"
		    "imap = 127.0.0.1:143 [::1]:143\n[queue]\nretry_max = 2h\n[pop3]\nlock = refuse\n");
	text_a = print_config(&a);
	conf_ok(&b, text_a);
	text_b = print_config(&b);
	/* the first line names the file read; the settings after it must be identical */
	first_nl = strchr(text_a, '\n');
	assert_non_null(first_nl);
	assert_non_null(strchr(text_b, '\n'));
	assert_string_equal(first_nl, strchr(text_b, '\n'));
	assert_int_equal(b.queue_retry_max, 7200);
	assert_int_equal(b.pop3_lock, POP3_LOCK_REFUSE);
	assert_int_equal(b.listen[LISTEN_IMAP].count, 2);
	free(text_a);
	free(text_b);
	config_free(&a);
	config_free(&b);
}

/* With two bad lines the message must pair the first line's number with the first line's
 * reason, not with the reason of a later line. */
static void test_bug_error_reason_matches_line(void **state)
{
	conf_fail("[server]\nworkers = four\nhostnme = x\n", 2, "workers", "whole number", NULL);
}

/* A listen line with 20 addresses (about 280 bytes) is a legitimate setting: it must load
 * whole, or be refused as too long; never split into a second line that is parsed as a key. */
static void test_bug_long_line_split(void **state)
{
	struct config cfg;
	struct buf text;
	char err[512];
	int ret;
	size_t count;

	buf_init(&text);
	buf_append_str(&text, "[listen]\nsmtp =");
	for (int i = 1; i <= 20; i++)
		buf_printf(&text, " 127.0.0.%d:25", i);
	buf_append_str(&text, "\n");
	ret = conf_load_text(&cfg, buf_cstr(&text), err, sizeof(err), NULL);
	count = cfg.listen[LISTEN_SMTP].count;
	config_free(&cfg);
	buf_free(&text);
	if (ret == 0)
		assert_int_equal(count, 20);
	else if (strstr(err, "too long") == NULL)
		fail_msg("long line misparsed: %s", err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_account_settings),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_bools),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_listen_lists),
		cmocka_unit_test(test_listen_names),
		cmocka_unit_test(test_tls_files),
		cmocka_unit_test(test_error_unknown_key),
		cmocka_unit_test(test_error_unknown_section),
		cmocka_unit_test(test_error_syntax),
		cmocka_unit_test(test_error_bad_number),
		cmocka_unit_test(test_error_out_of_range),
		cmocka_unit_test(test_error_bad_bool_enum),
		cmocka_unit_test(test_error_bad_listen),
		cmocka_unit_test(test_error_missing_cert),
		cmocka_unit_test(test_error_leaves_value),
		cmocka_unit_test(test_error_missing_file),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_validate_ok),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_bug_error_reason_matches_line),
		cmocka_unit_test(test_bug_long_line_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
