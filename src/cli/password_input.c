/* Password entry for the account subcommands: read from stdin, never from argv, so passwords
 * stay out of shell history and the process list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "cli.h"

char *cli_read_password(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n <= 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0 || n > LIMIT_AUTH_FIELD) {
		mem_wipe(line, cap);
		free(line);
		return NULL;
	}
	return line;
}
