/* The subcommands of the roost binary. Each takes the loaded configuration and the arguments
 * after its name and returns the process exit status. */
#ifndef ROOST_CLI_H
#define ROOST_CLI_H

#include "../config/config.h"

struct cli_command {
	const char *name;
	const char *usage;
	int (*run)(struct config *cfg, int argc, char **argv);
};

int cmd_serve(struct config *cfg, int argc, char **argv);
int cmd_check(struct config *cfg, int argc, char **argv);
int cmd_domain(struct config *cfg, int argc, char **argv);
int cmd_user(struct config *cfg, int argc, char **argv);
int cmd_alias(struct config *cfg, int argc, char **argv);
int cmd_import(struct config *cfg, int argc, char **argv);
int cmd_queue(struct config *cfg, int argc, char **argv);

/* DKIM keys of a domain (cmd_dkim.c): generation after `domain add` (a failure is printed as a
 * warning and returns -1), and `domain dkim DOMAIN` printing the TXT records to publish. */
int cli_dkim_generate(struct config *cfg, const char *domain);
int cmd_domain_dkim(struct config *cfg, const char *domain);
/* `domain dkim-sign DOMAIN`: signs the message on standard input, writes it to standard output. */
int cmd_domain_dkim_sign(struct config *cfg, const char *domain);

/* Reads a password from standard input: one line, without its line end. Returns a heap string
 * (caller wipes and frees) or NULL on EOF/empty/too long. */
char *cli_read_password(void);

/* Everything serve refuses before binding (preflight.c); -1 after printing each problem. */
int cli_preflight(const struct config *cfg);

/* Creates the data directory (mode 0700) when missing; -1 with a message on stderr. */
int cli_ensure_data_dir(const char *path);

#endif
