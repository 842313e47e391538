/* roost serve: wires the layers together and runs the listeners in the foreground.
 * Order matters for least privilege (OpenSMTPD's habit): open the data, load keys and bind
 * while still root, then switch to run_as before the first byte from a client is read. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../auth/auth.h"
#include "../core/core.h"
#include "../delivery/check.h"
#include "../delivery/delivery.h"
#include "../http/http.h"
#include "../imap/imap.h"
#include "../mailauth/mailauth.h"
#include "../net/net.h"
#include "../pop3/pop3.h"
#include "../queue/queue.h"
#include "../smtp/smtp.h"
#include "../spam/spam.h"
#include "../store/store.h"
#include "../tls/tls.h"
#include "cli.h"
#include "cli_dmarc.h"

struct serve_context {
	struct tls_context *tls;
	struct privsep *privsep; /* the privileged parent, when there is one (privsep.c) */
	struct delivery *delivery;
	struct queue *queue;
};

/* The queue calls up through these (it may not include the delivery layer). */
static bool serve_local_domain(void *arg, const char *domain)
{
	struct serve_context *ctx = arg;

	/* the SRS domain too: reports to a rewritten sender are decoded here, not sent to
	 * our own MX */
	return delivery_domain_is_local(ctx->delivery, domain) ||
	       delivery_srs_domain(ctx->delivery, domain);
}

static int serve_deliver_local(void *arg, const char *recipient, const uint8_t *msg, size_t len)
{
	struct serve_context *ctx = arg;

	return delivery_store_local(ctx->delivery, recipient, msg, len);
}

/* The HTTP layer asks through these: autoconfiguration only for our domains, and the queue's
 * gauges read afresh for each scrape (a scrape is rare; the queue has no counter of its own). */
static bool serve_http_local_domain(void *arg, const char *domain)
{
	struct serve_context *ctx = arg;

	return delivery_domain_is_local(ctx->delivery, domain);
}

struct serve_queue_gauges {
	uint64_t entries;
	int64_t oldest_arrived;
};

static void serve_queue_gauge_add(const struct queue_entry_info *info, void *arg)
{
	struct serve_queue_gauges *g = arg;

	if (g->entries == 0 || info->arrived < g->oldest_arrived)
		g->oldest_arrived = info->arrived;
	g->entries++;
}

static void serve_http_before_scrape(void *arg)
{
	struct serve_context *ctx = arg;
	struct serve_queue_gauges g = { 0, 0 };
	char err[256];

	if (queue_list(ctx->queue, serve_queue_gauge_add, &g, err, sizeof(err)) < 0)
		return; /* the gauges keep their last values */
	int64_t age = g.entries > 0 ? (int64_t)time(NULL) - g.oldest_arrived : 0;
	metrics_set_queue(g.entries, (uint64_t)(age > 0 ? age : 0));
}

/* After the switch to run_as the files may be readable by root only: the privileged parent
 * reads them. Without a parent (no run_as, or running as root) the server reads them itself. */
static int serve_reload_certificate(struct serve_context *ctx, char *err, size_t errlen)
{
	struct tls_pem cert, key;
	int r;

	if (ctx->privsep == NULL)
		return tls_context_reload(ctx->tls, err, errlen);
	if (privsep_fetch_certificate(ctx->privsep, &cert, &key, err, errlen) < 0)
		return -1;
	r = tls_context_reload_pem(ctx->tls, &cert, &key, err, errlen);
	tls_pem_free(&cert);
	tls_pem_free(&key);
	return r;
}

/* A parent is worth having when the server will give up root and has certificates to reload. */
static bool serve_wants_privsep(const struct config *cfg)
{
	struct passwd *pw;

	if (getuid() != 0 || cfg->run_as[0] == '\0' || cfg->tls_cert[0] == '\0')
		return false;
	pw = getpwnam(cfg->run_as);
	return pw != NULL && pw->pw_uid != 0;
}

static void serve_reload(void *arg)
{
	struct serve_context *ctx = arg;
	char err[512];

	if (ctx->tls == NULL)
		return;
	if (serve_reload_certificate(ctx, err, sizeof(err)) < 0)
		log_error("msg=\"certificate reload failed; keeping the old one\" error=\"%s\"", err);
	else
		log_info("msg=\"certificate reloaded\"");
}

/* Switches to run_as for good (privileges.c), or warns that the server keeps running as root. */
static int drop_privileges(const struct config *cfg, const char *data_dir)
{
	if (getuid() != 0)
		return 0;
	if (cfg->run_as[0] == '\0') {
		log_warn("msg=\"running as root; set [server] run_as to drop privileges\"");
		return 0;
	}
	if (cli_become_run_as(cfg, data_dir) < 0)
		return -1;
	log_info("msg=\"switched user\" user=%s uid=%u", cfg->run_as, (unsigned)getuid());
	return 0;
}

/* Every client connection is a descriptor, so the soft limit (often 1024) would cap the
 * server long before memory does: raise it to the hard limit the administrator allows. Then
 * keep a reserve for what the server opens itself (store files, SQLite, the queue, the
 * refusals of connections over the cap) and let clients have the rest, unless [limits]
 * max_connections says otherwise. Returns the connection cap. */
static uint32_t serve_connection_cap(const struct config *cfg)
{
	struct rlimit rl;
	uint64_t fds, reserve, budget;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return cfg->max_connections > 0 ? (uint32_t)cfg->max_connections : 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = { rl.rlim_max, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl = raised;
		else
			log_warn("msg=\"cannot raise the descriptor limit\" soft=%llu hard=%llu "
				 "error=\"%s\"", (unsigned long long)rl.rlim_cur,
				 (unsigned long long)rl.rlim_max, strerror(errno));
	}
	fds = rl.rlim_cur == RLIM_INFINITY ? UINT32_MAX : (uint64_t)rl.rlim_cur;
	reserve = fds / LIMIT_FD_RESERVE_DIVISOR;
	if (reserve < LIMIT_FD_RESERVE_MIN)
		reserve = LIMIT_FD_RESERVE_MIN;
	budget = fds > reserve + 1 ? fds - reserve : 1;
	if (budget > UINT32_MAX)
		budget = UINT32_MAX;
	if (cfg->max_connections == 0) {
		log_info("msg=\"connection cap\" fd_limit=%llu max_connections=%llu",
			 (unsigned long long)fds, (unsigned long long)budget);
		return (uint32_t)budget;
	}
	/* An explicit cap is kept even above the budget (accept then fails and pauses instead
	 * of refusing cleanly), but the operator is told why that is unwise. */
	if ((uint64_t)cfg->max_connections > budget)
		log_warn("msg=\"[limits] max_connections leaves less than the reserve of the "
			 "descriptor limit; raise the hard limit (LimitNOFILE=, ulimit -Hn)\" "
			 "fd_limit=%llu max_connections=%lld reserve=%llu",
			 (unsigned long long)fds, (long long)cfg->max_connections,
			 (unsigned long long)reserve);
	return (uint32_t)cfg->max_connections;
}

/* Before binding, so a second server says who runs instead of failing on a busy port. */
static int claim_pidfile(const struct config *cfg, const char *data_dir,
			 struct serve_pidfile **pidfile_r)
{
	char *path = cli_pidfile_path(cfg, data_dir);
	int rc = serve_pidfile_claim(path, pidfile_r);

	free(path);
	return rc;
}

static struct serve_status *start_status_socket(const struct config *cfg, const char *data_dir,
						struct net_server *srv, struct queue *queue,
						struct store *store, struct serve_dmarc *dmarc)
{
	struct serve_status_source src = { cfg, srv, queue, store, dmarc };
	char *path = cli_status_socket_path(data_dir);
	struct serve_status *st = serve_status_start(path, &src);

	free(path);
	return st;
}

/* [greylist] enabled: the triplet store in DATA_DIR/greylist.db. */
static int serve_greylist_open(const struct config *cfg, const char *data_dir,
			       struct auth_greylist **greylist_r)
{
	struct auth_greylist_config gcfg = {
		.delay_s = (uint32_t)cfg->greylist_delay,
		.retry_window_s = (uint32_t)cfg->greylist_retry_window,
		.expire_s = (uint32_t)cfg->greylist_expire,
		.max_entries = LIMIT_GREYLIST_ENTRIES,
	};
	char *path = xasprintf("%s/greylist.db", data_dir);
	char err[512];
	int rc = auth_greylist_open(path, &gcfg, greylist_r, err, sizeof(err));

	free(path);
	if (rc < 0)
		fprintf(stderr, "roost: %s\n", err);
	return rc;
}

int cmd_serve(struct config *cfg, int argc, char **argv)
{
	struct serve_context ctx = { .tls = NULL, .delivery = NULL };
	struct auth_directory *dir = NULL;
	struct auth_penalty *penalty = NULL;
	struct auth_greylist *greylist = NULL;
	struct net_server *srv = NULL;
	struct store *store = NULL;
	struct cli_quota quota = { cfg, NULL };
	struct queue *queue = NULL;
	struct delivery *delivery = NULL;
	struct virus_scanner *virus = NULL;
	struct mailauth_settings *mailauth = NULL;
	struct serve_dmarc *dmarc = NULL;
	struct cli_spam *spam = NULL;
	struct queue_runner *runner = NULL;
	struct serve_pidfile *pidfile = NULL;
	struct serve_status *status_socket = NULL;
	struct http_server *http = NULL;
	struct store_err serr = { STORE_OK, "" };
	char err[1024];
	char *data_dir;
	char *relay_ca_file;
	int status = 1;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "usage: roost serve\n");
		return 2;
	}
	if (cli_preflight(cfg) < 0)
		return 1;
	data_dir = config_resolve_path(cfg, cfg->data_dir);
	relay_ca_file = cfg->relay_ca_file[0] != '\0' ? config_resolve_path(cfg, cfg->relay_ca_file)
						      : xstrdup("");
	if (cli_ensure_data_dir(data_dir) < 0 || claim_pidfile(cfg, data_dir, &pidfile) < 0)
		goto out;
	/* Least privilege: the key and the ports while still root... */
	if (cfg->tls_cert[0] != '\0') {
		char *cert = config_resolve_path(cfg, cfg->tls_cert);
		char *key = config_resolve_path(cfg, cfg->tls_key);
		ctx.tls = tls_context_new(cert, key, err, sizeof(err));
		free(cert);
		free(key);
		if (ctx.tls == NULL) {
			fprintf(stderr, "roost: %s\n", err);
			goto out;
		}
	}
	/* The fork comes before any thread exists (net_server_new starts the pool). */
	if (serve_wants_privsep(cfg)) {
		char *cert = config_resolve_path(cfg, cfg->tls_cert);
		char *key = config_resolve_path(cfg, cfg->tls_key);
		int r = privsep_fork(cert, key, &ctx.privsep);
		free(cert);
		free(key);
		if (r < 0)
			goto out;
	}
	/* The protocols get their dependencies below, after the switch; no connection is
	 * accepted before net_server_run. */
	struct smtp_deps smtp = { cfg, NULL, NULL, NULL, NULL };
	struct imap_deps imap = { cfg, NULL, NULL, NULL };
	struct pop3_deps pop3 = { cfg, NULL, NULL, NULL };
	struct net_server_options opts = {
		.cfg = cfg,
		.tls = ctx.tls,
		.workers = cfg->workers > 0 ? (int)cfg->workers : (int)(cores > 0 ? cores : 1),
		.pool_threads = (int)(cores > 0 ? cores : 1) * 2,
		.connections_per_ip = (uint32_t)cfg->connections_per_ip,
		.max_connections = serve_connection_cap(cfg),
		.prelogin_seconds = (uint32_t)cfg->prelogin_timeout,
		.reload = serve_reload,
		.reload_ctx = &ctx,
	};
	srv = net_server_new(&opts);
	net_server_set_protocol(srv, LISTEN_SMTP, &smtp_protocol, &smtp);
	net_server_set_protocol(srv, LISTEN_SUBMISSION, &smtp_protocol, &smtp);
	net_server_set_protocol(srv, LISTEN_SUBMISSIONS, &smtp_protocol, &smtp);
	net_server_set_protocol(srv, LISTEN_LMTP, &smtp_protocol, &smtp);
	net_server_set_protocol(srv, LISTEN_IMAP, &imap_protocol, &imap);
	net_server_set_protocol(srv, LISTEN_IMAPS, &imap_protocol, &imap);
	net_server_set_protocol(srv, LISTEN_POP3, &pop3_protocol, &pop3);
	net_server_set_protocol(srv, LISTEN_POP3S, &pop3_protocol, &pop3);
	if (net_server_bind(srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: %s\n", err);
		goto out;
	}
	http = http_server_new(cfg, ctx.tls, err, sizeof(err));
	if (http == NULL && err[0] != '\0') {
		fprintf(stderr, "roost: %s\n", err);
		goto out;
	}
	if (serve_pidfile_write(pidfile) < 0)
		goto out;
	/* ...then become run_as before any data is opened or any client byte is read. */
	if (drop_privileges(cfg, data_dir) < 0)
		goto out;
	if (auth_directory_open(data_dir, &dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: %s\n", err);
		goto out;
	}
	auth_directory_set_login_cache(dir, (uint32_t)cfg->login_cache);
	struct auth_penalty_config pcfg = {
		.failure_delay_ms = (uint32_t)cfg->failure_delay_ms,
		.failure_delay_max_ms = (uint32_t)cfg->failure_delay_max_ms,
		.refuse_after = (uint32_t)cfg->failure_refuse_after,
		.window_seconds = (uint32_t)cfg->failure_window,
		.user_ip_connections = (uint32_t)cfg->user_ip_connections,
	};
	penalty = auth_penalty_new(&pcfg);
	struct store_settings ssettings = {
		.data_dir = data_dir,
		.max_message_size = (uint64_t)cfg->message_size,
	};
	store = store_open(&ssettings, &serr);
	if (store == NULL) {
		fprintf(stderr, "roost: cannot open the mail store in %s: %s\n", data_dir, serr.text);
		goto out;
	}
	queue = queue_open(data_dir, err, sizeof(err));
	if (queue == NULL) {
		fprintf(stderr, "roost: cannot open the queue: %s\n", err);
		goto out;
	}
	quota = (struct cli_quota){ cfg, dir };
	store_set_quota_policy(store, cli_quota_policy, &quota);
	delivery = delivery_new(cfg, dir, store, queue);
	if (delivery_srs_setup(delivery, err, sizeof(err)) < 0) {
		fprintf(stderr, "roost: cannot set up SRS: %s\n", err);
		goto out;
	}

	ctx.delivery = delivery;
	ctx.queue = queue;
	/* Checks, in the order they run. mailauth first: its DMARC reject is the cheapest refusal
	 * and its Authentication-Results is in place before the content checks. Then virus
	 * (clamd), then spam, which scores what got through and learns from moves into and out
	 * of Junk. */
	mailauth = mailauth_settings_new(cfg);
	delivery_add_check(delivery, "mailauth", mailauth_check, mailauth);
	if (serve_dmarc_start(cfg, data_dir, queue, mailauth, &dmarc) < 0)
		goto out;
	if (serve_virus_start(cfg, delivery, &virus) < 0)
		goto out;
	if (cfg->spam_enabled) {
		spam = cli_spam_new(cfg, dir, store);
		store_set_copy_observer(store, spam_learn_on_copy, cli_spam_settings(spam));
		delivery_add_check(delivery, "spam", spam_check, cli_spam_settings(spam));
	}
	if (cfg->greylist_enabled && serve_greylist_open(cfg, data_dir, &greylist) < 0)
		goto out;
	smtp = (struct smtp_deps){ cfg, dir, penalty, delivery, greylist };
	imap = (struct imap_deps){ cfg, dir, penalty, store };
	pop3 = (struct pop3_deps){ cfg, dir, penalty, store };
	struct queue_runner_config qcfg = {
		.hostname = cfg->hostname,
		.resolvers = cfg->dns_resolvers,
		.smtp_port = (unsigned)cfg->queue_smtp_port,
		.smarthost = cfg->relay_smarthost,
		.relay_user = cfg->relay_user,
		.relay_password = cfg->relay_password,
		.relay_tls = cfg->relay_tls,
		.relay_ca_file = relay_ca_file,
		.retry_first = cfg->queue_retry_first,
		.retry_max = cfg->queue_retry_max,
		.give_up = cfg->queue_give_up,
		.warn_after = cfg->queue_warn_after,
		.time_scale = cfg->queue_time_scale,
		.threads = (unsigned)cfg->queue_threads,
		.data_dir = data_dir,
		.arc_seal = cfg->mailauth_verify,
	};
	struct queue_hooks hooks = {
		.ctx = &ctx,
		.local_domain = serve_local_domain,
		.deliver_local = serve_deliver_local,
	};
	runner = queue_runner_start(queue, &qcfg, &hooks);
	status_socket = start_status_socket(cfg, data_dir, srv, queue, store, dmarc);
	struct http_hooks http_hooks = { &ctx, serve_http_local_domain, serve_http_before_scrape };
	if (http != NULL && http_server_start(http, &http_hooks) < 0) {
		fprintf(stderr, "roost: cannot start the HTTP thread\n");
		goto out;
	}
	cli_notify_service_manager("READY=1");
	status = net_server_run(srv) < 0 ? 1 : 0;
	cli_notify_service_manager("STOPPING=1");
out:
	http_server_free(&http);
	serve_status_stop(&status_socket);
	queue_runner_stop(&runner);
	net_server_free(&srv);
	delivery_free(&delivery);
	serve_virus_stop(&virus);
	serve_dmarc_stop(&dmarc);
	mailauth_settings_free(&mailauth);
	queue_close(&queue);
	store_close(&store);
	cli_spam_free(&spam);
	auth_penalty_free(&penalty);
	auth_greylist_close(&greylist);
	auth_directory_close(&dir);
	tls_context_free(&ctx.tls);
	privsep_free(&ctx.privsep);
	serve_pidfile_release(&pidfile);
	free(data_dir);
	free(relay_ca_file);
	return status;
}
