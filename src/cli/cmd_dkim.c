/* roost domain dkim DOMAIN: prints the DNS TXT records that publish a domain's DKIM keys, and
 * the key generation that `roost domain add` runs for a new domain. */
#include <stdio.h>
#include <stdlib.h>

#include "../core/core.h"
#include "../queue/dkim.h"
#include "cli.h"

int cli_dkim_generate(struct config *cfg, const char *domain)
{
	char err[512];
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	int r = dkim_keys_generate(data_dir, domain, err, sizeof(err));

	if (r < 0)
		fprintf(stderr, "roost: warning: no DKIM keys for %s: %s\n", domain, err);
	free(data_dir);
	return r;
}

int cmd_domain_dkim(struct config *cfg, const char *domain)
{
	char err[512];
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	struct buf out;
	int status = 0;

	buf_init(&out);
	if (dkim_dns_records(data_dir, domain, &out, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: %s\n", err);
		status = 1;
	} else {
		fwrite(out.data, 1, out.len, stdout);
	}
	buf_free(&out);
	free(data_dir);
	return status;
}
