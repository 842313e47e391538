/* roost check: the config was already loaded and validated by main(); print what is in force. */
#include <stdio.h>

#include "cli.h"

int cmd_check(struct config *cfg, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	config_print(cfg, stdout);
	printf("\n# configuration OK\n");
	return 0;
}
