/* The subcommands of the roost binary. Each takes the loaded configuration and the arguments
 * after its name and returns the process exit status. */
#ifndef ROOST_CLI_H
#define ROOST_CLI_H

#include "../config/config.h"

struct cli_command {
	const char *name;
	const char *usage;
	int (*run)(struct config *cfg, int argc, char **argv);
	bool writes_data; /* runs as [server] run_as (privileges.c) */
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
/* A password being set (user add/passwd): on a terminal asked twice without echo, a mismatch
 * refused; otherwise one line as cli_read_password. NULL after printing why. */
char *cli_read_new_password(void);

/* privsep.c: the privileged parent of serve. privsep_fork forks; the parent stays root, reads
 * cert_path and key_path whenever the child asks, passes SIGHUP/SIGTERM/SIGINT on and exits
 * with the child's status (it never returns); the child gets *child_r and returns 0. -1 with
 * a message on stderr when the fork fails. */
struct privsep;
struct tls_pem;
int privsep_fork(const char *cert_path, const char *key_path, struct privsep **child_r);
/* Child: the current certificate chain and key as read by the parent (caller frees both with
 * tls_pem_free). */
int privsep_fetch_certificate(struct privsep *p, struct tls_pem *cert, struct tls_pem *key,
			      char *err, size_t errlen);
void privsep_free(struct privsep **p);

/* Everything serve refuses before binding (preflight.c); -1 after printing each problem. */
int cli_preflight(const struct config *cfg);

/* Creates the data directory (mode 0700) when missing; -1 with a message on stderr. */
int cli_ensure_data_dir(const char *path);
/* privileges.c: with [server] run_as set, a root caller hands the files root owns in data_dir
 * (created when missing) to run_as and becomes run_as for good; another caller must be
 * run_as. 0 without run_as. -1 with a message on stderr. */
int cli_become_run_as(const struct config *cfg, const char *data_dir);

#endif
