/* roost check: the config was already loaded and validated by main(); run the checks serve
 * makes before it binds (preflight.c), then print what is in force. */
#include <stdio.h>

#include "cli.h"

int cmd_check(struct config *cfg, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (cli_preflight(cfg) < 0 || cli_virus_preflight(cfg) < 0) {
		fprintf(stderr, "roost: configuration refused: serve would not start\n");
		return 1;
	}
	config_print(cfg, stdout);
	printf("\n# configuration OK\n");
	return 0;
}
