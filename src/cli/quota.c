/* The quota policy the store asks before saves (store_set_quota_policy): an account's limits
 * from its own settings over the [quota] defaults, its domain's limits from the domain's
 * settings, the warning thresholds from [quota] warn. Lives in cli/ because it joins the
 * accounts directory (auth) and the store, which do not know each other. */
#include <stdio.h>
#include <string.h>

#include "../auth/auth.h"
#include "../core/core.h"
#include "../store/store.h"
#include "cli.h"

static void collect_account(const char *name, const char *value, void *ctx)
{
	char err[256];

	/* A stored value this version cannot read is left out, as at login. */
	if (config_account_apply(ctx, name, value, err, sizeof(err)) < 0)
		log_warn("event=account_setting_ignored reason=\"%s\"", err);
}

static void collect_domain(const char *name, const char *value, void *ctx)
{
	struct store_quota_policy *p = ctx;
	char err[256];
	uint64_t v;

	if (config_domain_setting_check(name, value, &v, err, sizeof(err)) < 0) {
		log_warn("event=domain_setting_ignored reason=\"%s\"", err);
		return;
	}
	if (strcmp(name, "quota.storage") == 0)
		p->domain_storage = v;
	else
		p->domain_messages = v;
}

void cli_quota_policy(void *ctx, const char *address, struct store_quota_policy *policy_r)
{
	const struct cli_quota *q = ctx;
	struct account_settings as;
	const char *at = strrchr(address, '@');

	memset(policy_r, 0, sizeof(*policy_r));
	config_account_defaults(q->cfg, &as);
	auth_user_settings(q->dir, address, collect_account, &as);
	policy_r->storage = (uint64_t)as.quota_storage;
	policy_r->messages = (uint64_t)as.quota_messages;
	if (at != NULL)
		auth_domain_settings(q->dir, at + 1, collect_domain, policy_r);
	/* Validated when the configuration was loaded. */
	config_quota_warn(q->cfg->quota_warn, policy_r->warn_percent);
}
