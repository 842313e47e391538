/* roost domain dkim DOMAIN: prints the DNS TXT records that publish a domain's DKIM keys, and
 * the key generation that `roost domain add` runs for a new domain. */
#include <stdio.h>
#include <stdlib.h>

#include "../core/core.h"
#include "../mailauth/mailauth.h"
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

/* Reads a message from standard input (bounded by the default message size), with bare LF
 * line ends turned into CRLF as on the wire, and writes it signed to standard output. */
int cmd_domain_dkim_sign(struct config *cfg, const char *domain)
{
	char err[512];
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	struct dkim_signer *signer = dkim_signer_load(data_dir, domain, err, sizeof(err));
	struct buf msg, sigs;
	int c, prev = 0, status = 0;

	free(data_dir);
	if (signer == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		return 1;
	}
	buf_init(&msg);
	buf_init(&sigs);
	while ((c = getchar()) != EOF) {
		if (msg.len >= (size_t)LIMIT_MESSAGE_SIZE_DEFAULT) {
			fprintf(stderr, "roost: message larger than %lld octets\n",
				(long long)LIMIT_MESSAGE_SIZE_DEFAULT);
			status = 1;
			goto out;
		}
		if (c == '\n' && prev != '\r')
			buf_append_byte(&msg, '\r');
		buf_append_byte(&msg, (uint8_t)c);
		prev = c;
	}
	if (dkim_sign(signer, msg.data, msg.len, time_wall_seconds(), &sigs, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "roost: %s\n", err);
		status = 1;
		goto out;
	}
	fwrite(sigs.data, 1, sigs.len, stdout);
	fwrite(msg.data, 1, msg.len, stdout);
out:
	buf_free(&msg);
	buf_free(&sigs);
	dkim_signer_free(&signer);
	return status;
}
