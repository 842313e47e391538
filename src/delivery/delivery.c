/* Recipient resolution and the delivery transaction; see delivery.h.
 *
 * A transaction writes the message once into one store save whose targets are the INBOXes of
 * every distinct local mailbox (store_save_begin_multi: shared file, shared fsyncs), and once
 * into a queue entry holding every remote recipient. The local copy starts with Return-Path:
 * (RFC 5321 §4.4: added by the final delivery) and Received:; the queued copy with Received:
 * only. Nothing is acknowledged before delivery_txn_finish has returned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../core/core.h"
#include "delivery_internal.h"

/* How many domains the postmaster fallback looks at (the host name's first); bounds the work
 * one RCPT can cause on a server with very many domains. */
#define DELIVERY_POSTMASTER_DOMAINS_MAX 1000

struct delivery *delivery_new(const struct config *cfg, struct auth_directory *dir,
			      struct store *store, struct queue *queue)
{
	struct delivery *d = xcalloc(1, sizeof(*d));

	d->cfg = cfg;
	d->dir = dir;
	d->store = store;
	d->queue = queue;
	d->data_dir = config_resolve_path(cfg, cfg->data_dir);
	d->spool_dir = xasprintf("%s/tmp", d->data_dir);
	return d;
}

void delivery_free(struct delivery **dp)
{
	if (dp == NULL || *dp == NULL)
		return;
	for (size_t i = 0; i < (*dp)->check_count; i++)
		free((*dp)->checks[i].name);
	free((*dp)->checks);
	free((*dp)->spool_dir);
	free((*dp)->data_dir);
	free((*dp)->srs_domain);
	mem_wipe((*dp)->srs_secret, sizeof((*dp)->srs_secret));
	free(*dp);
	*dp = NULL;
}

void delivery_rcpt_clear(struct delivery_rcpt *r)
{
	free(r->address);
	free(r->notify);
	free(r->orcpt);
	for (size_t i = 0; i < r->local_count; i++)
		free(r->local[i]);
	free(r->local);
	for (size_t i = 0; i < r->remote_count; i++)
		free(r->remote[i]);
	free(r->remote);
	memset(r, 0, sizeof(*r));
}

static char *domain_key(const char *domain)
{
	size_t n = strlen(domain);
	char *k;

	if (n > 0 && domain[n - 1] == '.') /* "example.org." is example.org */
		n--;
	k = xstrndup(domain, n);
	for (char *p = k; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return k;
}

bool delivery_domain_is_local(struct delivery *d, const char *domain)
{
	char *k = domain_key(domain);
	bool local = k[0] != '[' && auth_domain_exists(d->dir, k);

	free(k);
	return local;
}

struct resolve_ctx {
	struct delivery_rcpt *out;
};

static void add_unique(char ***list, size_t *count, const char *item)
{
	for (size_t i = 0; i < *count; i++)
		if (str_ieq((*list)[i], item))
			return;
	*list = xrealloc(*list, (*count + 1) * sizeof(char *));
	(*list)[(*count)++] = xstrdup(item);
}

static void collect_target(const char *target, bool is_local, void *arg)
{
	struct resolve_ctx *ctx = arg;

	if (is_local)
		add_unique(&ctx->out->local, &ctx->out->local_count, target);
	else
		add_unique(&ctx->out->remote, &ctx->out->remote_count, target);
}

struct domain_names {
	char **names;
	size_t count;
};

static void collect_domain(const char *domain, void *arg)
{
	struct domain_names *dn = arg;

	if (dn->count < DELIVERY_POSTMASTER_DOMAINS_MAX) {
		dn->names = xrealloc(dn->names, (dn->count + 1) * sizeof(char *));
		dn->names[dn->count++] = xstrdup(domain);
	}
}

/* RFC 5321 §4.5.1: mail to postmaster must be accepted for every domain we take mail for and
 * for the host name itself, while most domains never define one. When the address named has
 * no postmaster of its own (alias, user or catch-all), the postmaster of the host name's
 * domain receives it, else that of the first local domain (in name order) that has one.
 * Returns the number of targets found, or -1 when the directory could not be read. */
static int resolve_postmaster_fallback(struct delivery *d, struct resolve_ctx *ctx)
{
	struct domain_names dn = { NULL, 0 };
	char *host = domain_key(d->cfg->hostname);
	int n = 0;

	collect_domain(host, &dn);
	free(host);
	if (auth_domain_list(d->dir, collect_domain, &dn) < 0)
		n = -1;
	for (size_t i = 0; i < dn.count; i++) {
		if (n == 0 && auth_domain_exists(d->dir, dn.names[i])) {
			char *pm = xasprintf("postmaster@%s", dn.names[i]);
			n = auth_resolve_recipient(d->dir, pm, collect_target, ctx);
			free(pm);
		}
		free(dn.names[i]);
	}
	free(dn.names);
	return n;
}

static bool is_postmaster(const char *address, const char *at)
{
	return at - address == 10 && str_nieq(address, "postmaster", 10);
}

/* RCPT time (RFC 9208 §4.3's spirit for SMTP): a mailbox already at a limit cannot take any
 * message, so say so before the data is sent. The exact check is the store's, at commit. */
static bool mailbox_full(struct delivery *d, const char *mailbox)
{
	struct store_account *acct = NULL;
	struct store_quota q;
	bool full = false;

	/* most accounts have no limit: opening each one's index per RCPT would cost an SQLite
	 * open and its page cache for nothing */
	if (!store_quota_limited(d->store, mailbox))
		return false;
	if (store_account_open(d->store, mailbox, &acct, NULL) != STORE_OK)
		return false; /* the delivery itself reports what is wrong */
	if (store_account_quota(acct, &q, NULL) == STORE_OK)
		full = q.used_bytes >= q.limit_bytes || q.used_messages >= q.limit_messages;
	store_account_close(&acct);
	return full;
}

/* True when the recipient leads to local mailboxes only and every one of them is full: an
 * alias with one full member still reaches the others. */
static bool all_mailboxes_full(struct delivery *d, const struct delivery_rcpt *r)
{
	for (size_t i = 0; i < r->local_count; i++)
		if (!mailbox_full(d, r->local[i]))
			return false;
	return r->local_count > 0;
}

enum delivery_rcpt_status delivery_resolve(struct delivery *d, const char *address,
					   bool relay_allowed, struct delivery_rcpt *out)
{
	const char *at = strrchr(address, '@');
	char *normalized;
	struct resolve_ctx ctx = { out };
	enum delivery_rcpt_status srs_status;
	int n;

	if (at == NULL || at == address)
		return DELIVERY_RCPT_UNKNOWN;
	out->address = xstrdup(address);
	if (delivery_srs_resolve(d, address, out, &srs_status))
		return srs_status;
	if (is_postmaster(address, at) && !delivery_domain_is_local(d, at + 1)) {
		/* postmaster@<our host name> is ours even when the host name is no mail domain */
		char *dom = domain_key(at + 1), *host = domain_key(d->cfg->hostname);
		bool ours = strcmp(dom, host) == 0;
		free(dom);
		free(host);
		if (ours) {
			n = resolve_postmaster_fallback(d, &ctx);
			if (n < 0)
				return DELIVERY_RCPT_TEMPFAIL;
			out->forwarded = out->remote_count > 0;
			return n > 0 ? DELIVERY_RCPT_OK : DELIVERY_RCPT_UNKNOWN;
		}
	}
	if (!delivery_domain_is_local(d, at + 1)) {
		if (!relay_allowed)
			return DELIVERY_RCPT_RELAY_DENIED;
		/* A quoted local part may hold spaces (RFC 5321 §4.1.2), which the queue's
		 * line format cannot carry: refuse it now rather than fail at every DATA. */
		for (const char *c = address; *c; c++)
			if ((unsigned char)*c <= ' ' || *c == 0x7f)
				return DELIVERY_RCPT_UNSUPPORTED;
		add_unique(&out->remote, &out->remote_count, address);
		return DELIVERY_RCPT_OK;
	}
	/* Relay tricks through a local domain ("user%remote@local", "remote!user@local",
	 * "@local:user@remote"): a local part that itself holds a routing character never names
	 * a local mailbox, and is never routed onwards, or we would be an open relay. */
	if (strpbrk(address, "%!") != NULL || memchr(address, '@', (size_t)(at - address)) != NULL)
		return relay_allowed ? DELIVERY_RCPT_UNKNOWN : DELIVERY_RCPT_RELAY_DENIED;
	{
		char *dom = domain_key(at + 1);
		normalized = xasprintf("%.*s@%s", (int)(at - address), address, dom);
		free(dom);
	}
	n = auth_resolve_recipient(d->dir, normalized, collect_target, &ctx);
	free(normalized);
	if (n == 0 && is_postmaster(address, at))
		n = resolve_postmaster_fallback(d, &ctx);
	if (n < 0)
		return DELIVERY_RCPT_TEMPFAIL;
	if (n == 0 || (out->local_count == 0 && out->remote_count == 0))
		return DELIVERY_RCPT_UNKNOWN;
	/* remote targets of a local address can only come from aliases and catch-alls */
	out->forwarded = out->remote_count > 0;
	if (out->remote_count == 0 && all_mailboxes_full(d, out))
		return DELIVERY_RCPT_OVER_QUOTA;
	return DELIVERY_RCPT_OK;
}

struct owned_ctx {
	struct delivery *d;
	const char *alias; /* the address asked about, without its +tag */
	const char *user;
	bool owned;
};

static void check_alias_owner(const char *target, bool is_local, void *arg)
{
	struct owned_ctx *ctx = arg;

	if (is_local && str_ieq(target, ctx->user))
		ctx->owned = true;
}

static void check_alias(const char *alias, const char *target, void *arg)
{
	struct owned_ctx *ctx = arg;

	(void)target;
	if (ctx->owned || !str_ieq(alias, ctx->alias))
		return;
	/* An explicit alias of this address: does it lead to the user? */
	auth_resolve_recipient(ctx->d->dir, alias, check_alias_owner, ctx);
}

bool delivery_address_owned_by(struct delivery *d, const char *address, const char *user)
{
	const char *at = strrchr(address, '@');
	const char *plus;
	char *base;
	struct owned_ctx ctx = { d, NULL, user, false };

	if (at == NULL)
		return false;
	if (str_ieq(address, user))
		return true;
	/* user+tag@domain is the user's */
	plus = memchr(address, '+', (size_t)(at - address));
	base = plus ? xasprintf("%.*s%s", (int)(plus - address), address, at) : xstrdup(address);
	if (str_ieq(base, user)) {
		free(base);
		return true;
	}
	/* Someone else's address, or an alias of the user's (never a catch-all: owning "@domain"
	 * does not make every address of the domain one's own). */
	if (!auth_user_exists(d->dir, base)) {
		ctx.alias = base;
		auth_alias_list(d->dir, check_alias, &ctx);
	}
	free(base);
	return ctx.owned;
}

bool delivery_disk_ok(struct delivery *d)
{
	struct statvfs st;

	if (statvfs(d->data_dir, &st) < 0)
		return true; /* cannot tell: let the write itself report */
	return (double)st.f_bavail * (double)st.f_frsize >= 1.5 * (double)d->cfg->message_size;
}

/* ---------------- the transaction ---------------- */

static void txn_free(struct delivery_txn *t)
{
	delivery_spool_close(t);
	free(t->received);
	store_save_abort(&t->save);
	queue_entry_abort(&t->queued);
	queue_entry_abort(&t->queued_srs);
	free(t->srs_sender);
	for (size_t i = 0; i < t->mailbox_count; i++) {
		if (t->accounts && t->accounts[i])
			store_account_close(&t->accounts[i]);
		free(t->mailboxes[i]);
	}
	free(t->accounts);
	free(t->mailboxes);
	free(t);
}

/* Opens every local mailbox's account now, also on the spooled path, so that a mailbox that
 * cannot be opened refuses the data before the client sends it. */
static int txn_open_accounts(struct delivery_txn *t, char *err, size_t errlen)
{
	struct store_err serr = { STORE_OK, "" };

	t->accounts = xcalloc(t->mailbox_count ? t->mailbox_count : 1, sizeof(*t->accounts));
	for (size_t i = 0; i < t->mailbox_count; i++) {
		if (store_account_open(t->d->store, t->mailboxes[i], &t->accounts[i], &serr) !=
		    STORE_OK) {
			snprintf(err, errlen, "mailbox unavailable: %s", serr.text);
			return -1;
		}
	}
	return 0;
}

static int txn_open_local(struct delivery_txn *t, const char *received,
			  const char *const *mailbox_names, char *err, size_t errlen)
{
	struct store_err serr = { STORE_OK, "" };
	struct store_save_target *targets = xcalloc(t->mailbox_count, sizeof(*targets));
	enum store_error e;

	for (size_t i = 0; i < t->mailbox_count; i++) {
		targets[i].acct = t->accounts[i];
		targets[i].mailbox = mailbox_names ? mailbox_names[i] : NULL; /* NULL = INBOX */
	}
	e = store_save_begin_multi(targets, t->mailbox_count, &t->save, &serr);
	free(targets);
	if (e != STORE_OK) {
		snprintf(err, errlen, "cannot store the message: %s", serr.text);
		return -1;
	}
	char *return_path = xasprintf("Return-Path: <%s>\r\n", t->env.sender);
	e = store_save_write(t->save, return_path, strlen(return_path), &serr);
	free(return_path);
	if (e == STORE_OK)
		e = store_save_write(t->save, received, strlen(received), &serr);
	if (e != STORE_OK) {
		snprintf(err, errlen, "cannot store the message: %s", serr.text);
		return -1;
	}
	return 0;
}

/* Does this recipient's copy leave with the SRS sender (the entry queued_srs)? */
static bool rcpt_uses_srs(const struct delivery_txn *t, const struct delivery_rcpt *r)
{
	return t->srs_sender != NULL && r->forwarded;
}

/* Opens one queue entry for the remote recipients whose rcpt_uses_srs is `srs`; none when
 * there are none. */
static int txn_open_queue_entry(struct delivery_txn *t, bool srs, const char *received,
				struct queue_entry_writer **entry_r, char *err, size_t errlen)
{
	const struct delivery_envelope *env = &t->env;
	struct queue_recipient *qr = NULL;
	size_t qr_count = 0;

	for (size_t i = 0; i < env->rcpt_count; i++) {
		if (rcpt_uses_srs(t, &env->rcpts[i]) != srs)
			continue;
		for (size_t k = 0; k < env->rcpts[i].remote_count; k++) {
			qr = xrealloc(qr, (qr_count + 1) * sizeof(*qr));
			qr[qr_count].address = env->rcpts[i].remote[k];
			qr[qr_count].notify = env->rcpts[i].notify;
			qr[qr_count].orcpt = env->rcpts[i].orcpt;
			qr_count++;
		}
	}
	if (qr_count == 0)
		return 0;
	struct queue_envelope qenv = {
		.sender = srs ? t->srs_sender : env->sender,
		.envid = env->envid,
		.ret = env->ret,
		.auth_user = env->auth_user,
		.rcpts = qr,
		.rcpt_count = qr_count,
	};
	if (t->d->queue == NULL) {
		snprintf(err, errlen, "outbound queue unavailable");
	} else {
		*entry_r = queue_entry_begin(t->d->queue, &qenv, err, errlen);
		if (*entry_r != NULL &&
		    queue_entry_write(*entry_r, received, strlen(received), err, errlen) < 0)
			queue_entry_abort(entry_r);
	}
	free(qr);
	return *entry_r == NULL ? -1 : 0;
}

static int txn_open_queued(struct delivery_txn *t, const char *received, char *err,
			   size_t errlen)
{
	if (txn_open_queue_entry(t, false, received, &t->queued, err, errlen) < 0)
		return -1;
	return txn_open_queue_entry(t, true, received, &t->queued_srs, err, errlen);
}

int delivery_txn_open_outputs(struct delivery_txn *t, const char *received,
			      const char *const *mailbox_names, char *err, size_t errlen)
{
	if (t->mailbox_count > 0 && txn_open_local(t, received, mailbox_names, err, errlen) < 0)
		return -1;
	return txn_open_queued(t, received, err, errlen);
}

static struct delivery_txn *txn_begin(struct delivery *d, const struct delivery_envelope *env,
				      bool run_checks, char *err, size_t errlen)
{
	struct delivery_txn *t = xcalloc(1, sizeof(*t));
	int rc;

	t->d = d;
	t->env = *env;
	t->env.received = NULL; /* valid only during begin; the spooled path keeps a copy */
	t->spool_fd = -1;
	t->srs_sender = delivery_srs_sender(d, env);
	for (size_t i = 0; i < env->rcpt_count; i++)
		for (size_t k = 0; k < env->rcpts[i].local_count; k++)
			add_unique(&t->mailboxes, &t->mailbox_count, env->rcpts[i].local[k]);

	rc = txn_open_accounts(t, err, errlen);
	if (rc == 0 && run_checks && d->check_count > 0) {
		/* The outputs open after the checks, when the target mailboxes and the header
		 * fields to add are known; until then the data goes to the spool only. */
		t->received = xstrdup(env->received);
		rc = delivery_spool_open(t, err, errlen);
	} else if (rc == 0) {
		rc = delivery_txn_open_outputs(t, env->received, NULL, err, errlen);
	}
	if (rc < 0) {
		txn_free(t);
		return NULL;
	}
	return t;
}

struct delivery_txn *delivery_txn_begin(struct delivery *d, const struct delivery_envelope *env,
					char *err, size_t errlen)
{
	return txn_begin(d, env, true, err, errlen);
}

int delivery_txn_write(struct delivery_txn *t, const void *data, size_t len)
{
	if (t->write_failed)
		return -1;
	if (t->spool_fd >= 0) {
		if (delivery_spool_write(t, data, len) < 0)
			t->write_failed = true;
		return t->write_failed ? -1 : 0;
	}
	return delivery_txn_write_outputs(t, data, len);
}

int delivery_txn_write_outputs(struct delivery_txn *t, const void *data, size_t len)
{
	struct store_err serr;
	char err[256];

	if (t->save && store_save_write(t->save, data, len, &serr) != STORE_OK) {
		log_error("msg=\"delivery write failed\" error=\"%s\"", serr.text);
		t->write_failed = true;
		return -1;
	}
	if ((t->queued && queue_entry_write(t->queued, data, len, err, sizeof(err)) < 0) ||
	    (t->queued_srs && queue_entry_write(t->queued_srs, data, len, err, sizeof(err)) < 0)) {
		log_error("msg=\"queue write failed\" error=\"%s\"", err);
		t->write_failed = true;
		return -1;
	}
	return 0;
}

static bool rcpt_uses_mailbox(const struct delivery_rcpt *r, const char *mailbox)
{
	for (size_t k = 0; k < r->local_count; k++)
		if (str_ieq(r->local[k], mailbox))
			return true;
	return false;
}

/* The checks refused the message, or the spool could not be read: nothing is stored. */
static int txn_finish_refused(struct delivery_txn **tp, struct delivery_outcome *outcomes,
			      int action, const struct delivery_refusal *refusal_r,
			      const char *io_error)
{
	struct delivery_txn *t = *tp;
	bool temporary = io_error != NULL || action != DELIVERY_CHECK_REJECT;
	/* the text must outlive the call: the caller's refusal does, ours does not */
	const char *text = io_error	     ? "local delivery failed"
			   : refusal_r != NULL ? refusal_r->reply
					       : "refused by a check";

	if (io_error != NULL)
		log_error("msg=\"delivery failed\" error=\"%s\"", io_error);
	for (size_t i = 0; i < t->env.rcpt_count; i++)
		outcomes[i] = (struct delivery_outcome){ false, temporary, text, "", false };
	txn_free(t);
	*tp = NULL;
	return -1;
}

/* Commits one queue entry (none open: nothing to do); false when it failed. id_r: its id. */
static bool txn_commit_queued(struct queue_entry_writer **entry, const char *sender,
			      char id_r[32])
{
	char err[256];

	if (*entry == NULL)
		return true;
	if (queue_entry_commit(entry, id_r, err, sizeof(err)) < 0) {
		log_error("msg=\"queueing failed\" error=\"%s\"", err);
		id_r[0] = '\0';
		return false;
	}
	log_info("msg=queued queue_id=%s sender=<%s>", id_r, sender);
	return true;
}

int delivery_txn_finish(struct delivery_txn **tp, struct delivery_outcome *outcomes,
			struct delivery_refusal *refusal_r)
{
	struct delivery_txn *t = *tp;
	const struct delivery_envelope *env = &t->env;
	struct store_save_result *results = NULL;
	struct delivery_refusal refusal = { DELIVERY_CHECK_ACCEPT, "", "" };
	int failures = 0;

	if (t->spool_fd >= 0) {
		char err[256] = "";
		int rc = delivery_spool_run(t, &refusal, err, sizeof(err));
		if (refusal_r != NULL)
			*refusal_r = refusal;
		if (rc != 0) {
			return txn_finish_refused(tp, outcomes, refusal.action, refusal_r,
						  rc < 0 ? err : NULL);
		}
	} else if (refusal_r != NULL) {
		*refusal_r = refusal;
	}
	for (size_t i = 0; i < env->rcpt_count; i++)
		outcomes[i] = (struct delivery_outcome){ true, false, "delivered", "", false };

	if (t->save) {
		struct store_err serr = { STORE_OK, "" };
		struct store_save_meta meta = { 0, NULL, 0, 0 };
		results = xcalloc(t->mailbox_count, sizeof(*results));
		store_save_finish(&t->save, &meta, results, &serr);
		for (size_t m = 0; m < t->mailbox_count; m++) {
			if (results[m].error == STORE_OK)
				continue;
			log_error("msg=\"local delivery failed\" mailbox=%s error=\"%s\"",
				  t->mailboxes[m], store_error_str(results[m].error));
			for (size_t i = 0; i < env->rcpt_count; i++) {
				if (!rcpt_uses_mailbox(&env->rcpts[i], t->mailboxes[m]))
					continue;
				outcomes[i].ok = false;
				outcomes[i].temporary = true;
				outcomes[i].over_quota = results[m].error == STORE_ERR_OVER_QUOTA;
				outcomes[i].text = results[m].error == STORE_ERR_OVER_QUOTA
							   ? "mailbox full"
						   : results[m].error == STORE_ERR_NO_SPACE
							   ? "insufficient system storage"
							   : "local delivery failed";
			}
		}
	}
	char id[32] = "", srs_id[32] = "";
	bool queue_ok = txn_commit_queued(&t->queued, env->sender, id);
	bool srs_ok = txn_commit_queued(&t->queued_srs, t->srs_sender, srs_id);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		bool srs = rcpt_uses_srs(t, &env->rcpts[i]);
		if (env->rcpts[i].remote_count > 0 && !(srs ? srs_ok : queue_ok)) {
			outcomes[i].ok = false;
			outcomes[i].temporary = true;
			outcomes[i].text = "cannot queue the message";
		} else if (env->rcpts[i].remote_count > 0) {
			snprintf(outcomes[i].queue_id, sizeof(outcomes[i].queue_id), "%s",
				 srs ? srs_id : id);
		}
		if (!outcomes[i].ok)
			failures++;
		else if (env->rcpts[i].local_count > 0)
			metrics_message_delivered();
	}
	free(results);
	txn_free(t);
	*tp = NULL;
	return failures == 0 ? 0 : -1;
}

void delivery_txn_abort(struct delivery_txn **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	txn_free(*tp);
	*tp = NULL;
}

int delivery_store_local(struct delivery *d, const char *recipient, const uint8_t *msg,
			 size_t len)
{
	struct delivery_rcpt rcpt;
	struct delivery_outcome outcome;
	struct delivery_txn *t;
	char err[256];
	char received[512];
	int ret = -1;

	memset(&rcpt, 0, sizeof(rcpt));
	/* A report to one of our SRS addresses (about a forwarded copy) goes on to the sender
	 * the address names, wherever that is, and leaves from the null sender. */
	bool srs = delivery_srs_domain(d, strrchr(recipient, '@') ? strrchr(recipient, '@') + 1
								   : "");
	if (delivery_resolve(d, recipient, false, &rcpt) != DELIVERY_RCPT_OK ||
	    (rcpt.local_count == 0 && !(srs && rcpt.remote_count > 0))) {
		delivery_rcpt_clear(&rcpt);
		return -1;
	}
	size_t remote_count = rcpt.remote_count;
	if (!srs)
		rcpt.remote_count = 0; /* otherwise a report goes to the local mailbox only */
	snprintf(received, sizeof(received), "Received: by %s (Roost) for <%s>\r\n",
		 d->cfg->hostname, recipient);
	struct delivery_envelope env = { "", NULL, NULL, NULL, received, &rcpt, 1, NULL, NULL };
	/* A delivery report is our own message: the checks are for what clients send. */
	t = txn_begin(d, &env, false, err, sizeof(err));
	if (t != NULL && delivery_txn_write(t, msg, len) == 0)
		ret = delivery_txn_finish(&t, &outcome, NULL);
	delivery_txn_abort(&t);
	rcpt.remote_count = remote_count;
	delivery_rcpt_clear(&rcpt);
	return ret;
}

int delivery_flush_domain(struct delivery *d, const char *domain)
{
	char err[256];

	if (d->queue == NULL)
		return -1;
	return queue_flush(d->queue, domain, err, sizeof(err));
}
