/* What `serve` refuses before it binds a port, checked the same way for `serve` and `check`,
 * so that `roost check` passing means `roost serve` will not stop on the configuration:
 * a run_as user that does not exist, a certificate or key that cannot be read or do not match, a relay CA file that cannot be read. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core.h"
#include "../spam/spam.h"
#include "../tls/tls.h"
#include "cli.h"

static int preflight_run_as(const struct config *cfg)
{
	if (cfg->run_as[0] == '\0')
		return 0;
	errno = 0;
	if (getpwnam(cfg->run_as) == NULL) {
		fprintf(stderr, "roost: [server] run_as: no such user '%s'\n", cfg->run_as);
		return 1;
	}
	return 0;
}

static int preflight_tls(const struct config *cfg)
{
	char err[1024];
	struct tls_context *tls;

	if (cfg->tls_cert[0] == '\0')
		return 0;
	char *cert = config_resolve_path(cfg, cfg->tls_cert);
	char *key = config_resolve_path(cfg, cfg->tls_key);
	tls = tls_context_new(cert, key, err, sizeof(err));
	free(cert);
	free(key);
	if (tls == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		return 1;
	}
	tls_context_free(&tls);
	return 0;
}

static int preflight_relay_ca(const struct config *cfg)
{
	int problems = 0;

	if (cfg->relay_ca_file[0] == '\0')
		return 0;
	char *path = config_resolve_path(cfg, cfg->relay_ca_file);
	if (access(path, R_OK) != 0) {
		fprintf(stderr, "roost: [relay] ca_file %s: %s\n", path, strerror(errno));
		problems = 1;
	}
	free(path);
	return problems;
}

/* [spam] rspamd must be an address a check can use without a name lookup. */
static int preflight_rspamd(const struct config *cfg)
{
	char err[256];
	struct spam_rspamd *r;

	if (!cfg->spam_enabled || cfg->spam_rspamd[0] == '\0')
		return 0;
	r = spam_rspamd_new(cfg->spam_rspamd, 1000, err, sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		return 1;
	}
	spam_rspamd_free(&r);
	return 0;
}

int cli_preflight(const struct config *cfg)
{
	int problems = preflight_run_as(cfg);
	problems += preflight_tls(cfg);
	problems += preflight_relay_ca(cfg);
	problems += preflight_rspamd(cfg);
	return problems == 0 ? 0 : -1;
}
