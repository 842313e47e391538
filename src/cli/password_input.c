/* Password entry for the account subcommands: read from stdin, never from argv, so passwords
 * stay out of shell history and the process list. On a terminal a new password is typed
 * twice without echo, so a typing mistake cannot lock the user out. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

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

static void password_free(char **pw)
{
	if (*pw != NULL) {
		mem_wipe(*pw, strlen(*pw));
		free(*pw);
		*pw = NULL;
	}
}

static void no_password(void)
{
	fprintf(stderr, "roost: no password on standard input (one line of 1 to %d octets)\n",
		LIMIT_AUTH_FIELD);
}

/* Both prompts with echo off for the whole exchange; the prompts go to stderr so that
 * stdout stays the command's output. Echo is turned off before the first prompt is shown,
 * and TCSAFLUSH drops anything typed ahead while it was still on. */
static char *read_twice_from_terminal(void)
{
	struct termios saved, quiet;
	char *first = NULL, *second = NULL;
	bool hidden = tcgetattr(STDIN_FILENO, &saved) == 0;

	if (hidden) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		hidden = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
	}
	fprintf(stderr, "Password: ");
	fflush(stderr);
	first = cli_read_password();
	if (first != NULL) {
		fprintf(stderr, "Password again: ");
		fflush(stderr);
		second = cli_read_password();
	}
	if (hidden)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (first == NULL || second == NULL) {
		no_password();
		password_free(&first);
		password_free(&second);
		return NULL;
	}
	if (strcmp(first, second) != 0) {
		fprintf(stderr, "roost: the two passwords differ; nothing changed\n");
		password_free(&first);
		password_free(&second);
		return NULL;
	}
	password_free(&second);
	return first;
}

char *cli_read_new_password(void)
{
	char *pw;

	if (isatty(STDIN_FILENO))
		return read_twice_from_terminal();
	pw = cli_read_password();
	if (pw == NULL)
		no_password();
	return pw;
}
