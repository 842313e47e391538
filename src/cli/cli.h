/* The subcommands of the roost binary. Each takes the loaded configuration and the arguments
 * after its name and returns the process exit status. */
#ifndef ROOST_CLI_H
#define ROOST_CLI_H

#include <stdbool.h>

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
int cmd_reload(struct config *cfg, int argc, char **argv);
int cmd_status(struct config *cfg, int argc, char **argv);
/* `mailauth check` (cmd_mailauth.c): the inbound SPF/DKIM/DMARC check on one message. */
int cmd_mailauth(struct config *cfg, int argc, char **argv);
int cmd_spam(struct config *cfg, int argc, char **argv);
/* `dmarc report` (cmd_dmarc.c): DMARC aggregate reports, printed or queued. */
int cmd_dmarc(struct config *cfg, int argc, char **argv);

/* The spam check's settings (cmd_spam.c): the store, the [spam] values and the per-account
 * threshold read from the accounts directory (dir may be NULL: the server default). */
struct cli_spam;
struct auth_directory;
struct store;
struct cli_spam *cli_spam_new(const struct config *cfg, struct auth_directory *dir,
			      struct store *store);
struct spam_settings *cli_spam_settings(struct cli_spam *s);
void cli_spam_free(struct cli_spam **s);

/* DKIM keys of a domain (cmd_dkim.c): generation after `domain add` (a failure is printed as a
 * warning and returns -1), and `domain dkim DOMAIN` printing the TXT records to publish. */
/* quota.c: the store's quota policy (store_quota_policy_fn) from the accounts directory and
 * [quota]; ctx is a struct cli_quota that outlives the store. */
struct auth_directory;
struct store_quota_policy;
struct cli_quota {
	const struct config *cfg;
	struct auth_directory *dir;
};
void cli_quota_policy(void *ctx, const char *address, struct store_quota_policy *policy_r);

int cli_dkim_generate(struct config *cfg, const char *domain);
int cmd_domain_dkim(struct config *cfg, const char *domain);
/* `domain dns DOMAIN` (cmd_domain_dns.c): every record to publish, as zone-file lines; and
 * `domain check DOMAIN`: each looked up, OK/MISSING/WRONG, exit 1 unless all are OK. */
int cmd_domain_dns(struct config *cfg, const char *domain);
int cmd_domain_check(struct config *cfg, const char *domain);
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

/* ---- the running server's pidfile, status socket and readiness (serve_control.c) ---- */

/* [server] pidfile, or DATA_DIR/roost.pid. Heap string. */
char *cli_pidfile_path(const struct config *cfg, const char *data_dir);
/* DATA_DIR/roost.sock, where `roost status` asks the running server. Heap string. */
char *cli_status_socket_path(const char *data_dir);

struct serve_pidfile;
/* Opens and locks the pidfile for this process; -1 with a message on stderr when another
 * server holds it (naming its pid) or it cannot be opened. A file left by a server that died
 * is simply taken over: its lock went with the process. */
int serve_pidfile_claim(const char *path, struct serve_pidfile **pf_r);
/* Writes our pid into the claimed file. */
int serve_pidfile_write(struct serve_pidfile *pf);
/* Removes the file, then lets the lock go. Accepts NULL. */
void serve_pidfile_release(struct serve_pidfile **pf);
/* The pid of the server holding the pidfile at path: > 0 that pid, 0 none (*stale_r tells
 * whether a file without a live server was there), -1 undeterminable (no permission, or a
 * server is starting and has not written its pid yet). */
long cli_pidfile_holder(const char *path, bool *stale_r);

/* Sends state ("READY=1", "STOPPING=1") to $NOTIFY_SOCKET when the service manager set it
 * (systemd Type=notify); nothing otherwise. */
void cli_notify_service_manager(const char *state);

struct net_server;
struct queue;
struct serve_status_source {
	const struct config *cfg;
	struct net_server *srv;
	struct queue *queue;
	struct store *store; /* for "catch-up ADDRESS" after `roost import` */
	struct serve_dmarc *dmarc; /* for "dmarc-send DAY", NULL when [dmarc] reports is off */
};
struct serve_status;
/* cmd_status.c: sends one request line to the running server's status socket and copies its
 * one-line answer (without the newline) to reply. -1 when no server answers there. */
int cli_server_request(const char *data_dir, const char *request, char *reply, size_t replylen);
/* Serves `roost status` on a Unix socket at path (mode 0600, made by the current user) from a
 * thread of its own. NULL, after a warning in the log, when the socket cannot be made: the
 * server runs on without it. */
struct serve_status *serve_status_start(const char *path, const struct serve_status_source *src);
/* Stops the thread and removes the socket. Accepts NULL. */
void serve_status_stop(struct serve_status **st);

/* ---- [virus] (serve_virus.c) ---- */
struct delivery;
struct virus_scanner;
/* With [virus] clamd set: makes the scanner, says in the log whether clamd answers PING (and
 * its version), and registers the virus check on the delivery. 0 when nothing is configured
 * (*scanner_r NULL) or all went well; -1 (on stderr) when the address is unusable. */
int serve_virus_start(const struct config *cfg, struct delivery *delivery,
		      struct virus_scanner **scanner_r);
void serve_virus_stop(struct virus_scanner **scanner);
/* roost check: a warning on stderr when clamd is configured but does not answer PING;
 * -1 when the address is unusable. */
int cli_virus_preflight(const struct config *cfg);

#endif
