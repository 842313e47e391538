/* roost: one binary, git-style subcommands (see docs/ARCHITECTURE.md). main() finds the config
 * file (a command without one stops), loads it, and hands over to the subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core.h"
#include "cli.h"

static const struct cli_command commands[] = {
	{ "serve", "serve", cmd_serve, false },
	{ "check", "check", cmd_check, false },
	{ "domain", "domain add|del|list|dkim|dkim-sign|dns|check [DOMAIN]", cmd_domain, true },
	{ "user",
	  "user add|passwd ADDRESS | user del [--purge] ADDRESS | user list [DOMAIN] | "
	  "user import-passwd FILE DOMAIN",
	  cmd_user, true },
	{ "alias", "alias add [--force] ALIAS TARGET... | alias del ALIAS TARGET... | alias list", cmd_alias, true },
	{ "import", "import ADDRESS PATH", cmd_import, true },
	{ "spam", "spam train ADDRESS [--spam PATH]... [--ham PATH]... | spam classify ADDRESS",
	  cmd_spam, true },
	{ "queue", "queue list | flush [DOMAIN] | delete ID", cmd_queue, true },
	{ "status", "status", cmd_status, false },
	{ "reload", "reload", cmd_reload, false },
	{ "mailauth", "mailauth check --ip IP --helo NAME --mail-from ADDR < MESSAGE", cmd_mailauth,
	  false },
	{ "dmarc", "dmarc report [--day today|yesterday|YYYY-MM-DD] --print DOMAIN | --send | --list",
	  cmd_dmarc, true },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: roost [--config FILE] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		fprintf(out, "  roost %s\n", commands[i].usage);
	fprintf(out, "  roost version\n");
}

/* DESIGN: ./roost.conf if present, else /etc/roost/roost.conf. */
static const char *default_config_path(void)
{
	if (access("roost.conf", F_OK) == 0)
		return "roost.conf";
	if (access("/etc/roost/roost.conf", F_OK) == 0)
		return "/etc/roost/roost.conf";
	return NULL;
}

/* A command that writes into data_dir runs as the server's user, so that nothing it creates
 * (a domain folder, an imported message, a DKIM key) is unreadable to the server. */
static int become_run_as(const struct config *cfg)
{
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	int r = cli_become_run_as(cfg, data_dir);

	free(data_dir);
	return r;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	struct config cfg;
	char err[1024];
	int i = 1;
	int status;

	while (i < argc && argv[i][0] == '-') {
		if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) &&
		    i + 1 < argc) {
			config_path = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
			i++;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("roost %s\n", ROOST_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "roost: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "version") == 0) {
		printf("roost %s\n", ROOST_VERSION);
		return 0;
	}

	const struct cli_command *cmd = NULL;
	for (size_t k = 0; k < ARRAY_LEN(commands); k++)
		if (strcmp(commands[k].name, argv[i]) == 0)
			cmd = &commands[k];
	if (cmd == NULL) {
		fprintf(stderr, "roost: unknown command '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}

	config_defaults(&cfg);
	if (config_path == NULL)
		config_path = default_config_path();
	if (config_path == NULL) {
		/* Built-in defaults would put a data directory in /var/lib/roost that nobody
		 * asked for; an administrator who forgot the file should hear so. */
		fprintf(stderr, "roost: no configuration file: neither ./roost.conf nor "
				"/etc/roost/roost.conf exists; give one with --config FILE\n");
		config_free(&cfg);
		return 1;
	}
	if (config_load(&cfg, config_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (config_validate(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (strcmp(cfg.log_level, "debug") == 0)
		log_set_level(LOG_DEBUG);
	else if (strcmp(cfg.log_level, "warn") == 0)
		log_set_level(LOG_WARN);
	else if (strcmp(cfg.log_level, "error") == 0)
		log_set_level(LOG_ERROR);
	log_set_format(cfg.log_format == LOG_FORMAT_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_LOGFMT);

	if (cmd->writes_data && become_run_as(&cfg) < 0) {
		config_free(&cfg);
		return 1;
	}
	status = cmd->run(&cfg, argc - i - 1, argv + i + 1);
	config_free(&cfg);
	return status;
}
