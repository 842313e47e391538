/* roost serve: placeholder until the server wiring lands in this file. */
#include <stdio.h>

#include "cli.h"

int cmd_serve(struct config *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "roost: serve is not built yet\n");
	return 1;
}
