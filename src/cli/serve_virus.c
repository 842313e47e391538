/* Wiring of the virus check ([virus]): the scanner is made once, checked with PING/VERSION at
 * start (a clamd that is down is a warning, not a refusal to start: on_error decides what
 * happens to mail meanwhile), and registered on the delivery. */
#include <stdio.h>

#include "../core/core.h"
#include "../delivery/check.h"
#include "../virus/virus.h"
#include "cli.h"

int serve_virus_start(const struct config *cfg, struct delivery *delivery,
		      struct virus_scanner **scanner_r)
{
	char err[256], version[256];

	*scanner_r = NULL;
	if (cfg->virus_clamd[0] == '\0')
		return 0;
	*scanner_r = virus_scanner_new(cfg, err, sizeof(err));
	if (*scanner_r == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		return -1;
	}
	if (virus_scanner_ping(*scanner_r, version, sizeof(version), err, sizeof(err)) == 0)
		log_info("msg=\"virus scanning on\" clamd=%s version=\"%s\"", cfg->virus_clamd,
			 version);
	else
		log_warn("msg=\"clamd does not answer; scanning will fail until it does\" "
			 "clamd=%s error=\"%s\"",
			 cfg->virus_clamd, err);
	delivery_add_check(delivery, "virus", virus_check, *scanner_r);
	return 0;
}

void serve_virus_stop(struct virus_scanner **scanner)
{
	virus_scanner_free(scanner);
}

int cli_virus_preflight(const struct config *cfg)
{
	struct virus_scanner *scanner;
	char err[256], version[256];

	if (cfg->virus_clamd[0] == '\0')
		return 0;
	scanner = virus_scanner_new(cfg, err, sizeof(err));
	if (scanner == NULL) {
		fprintf(stderr, "roost: %s\n", err);
		return -1;
	}
	if (virus_scanner_ping(scanner, version, sizeof(version), err, sizeof(err)) < 0)
		fprintf(stderr, "roost: warning: [virus] clamd %s does not answer PING: %s\n",
			cfg->virus_clamd, err);
	virus_scanner_free(&scanner);
	return 0;
}
