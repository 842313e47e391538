/* The mail transaction: MAIL, RCPT, DATA and BDAT (RFC 5321 §3.3, §4.1.1; RFC 3030 CHUNKING;
 * RFC 1870 SIZE; RFC 6152 8BITMIME; RFC 6531 SMTPUTF8; RFC 3461 DSN parameters; RFC 2033
 * LMTP replies). Every check that reads the accounts directory or the store runs on the worker
 * pool; replies go out in command order because the connection is paused meanwhile.
 *
 * Durability: the 250 after the data (or one 250 per LMTP recipient) is sent only after
 * delivery_txn_finish returned, that is after the message is fsync'd in every local mailbox
 * and in the queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/core.h"
#include "path.h"
#include "session.h"

#define SMTP_DATA_CHUNK (64 * 1024)
#define SMTP_HEADER_KEEP (64 * 1024)

static const char *smtp_enhanced_ok = "250 2.0.0";

/* RFC 3463: a full mailbox is 4.2.2 (the sender retries) or 5.2.2 ([quota] smtp_over). */
static const char *smtp_over_quota_code(const struct smtp_session *s)
{
	return s->deps->cfg->quota_smtp_over == QUOTA_SMTP_PERMANENT ? "552 5.2.2" : "452 4.2.2";
}

/* ---------------- the outcome lines ----------------
 * One line per recipient and outcome, so an operator can follow a message by its queue ID,
 * Message-ID or addresses: event=rcpt outcome=delivered|queued|rejected stage=rcpt|data, then
 * proto, conn, client="helo[ip]", queue_id, message_id, from, to, size, reason and reply where
 * they are known (the queue runner goes on with stage=remote and stage=queue lines). */

struct smtp_outcome {
	const char *outcome;
	const char *stage;
	const char *to;
	const char *queue_id; /* NULL or "" when not queued */
	const char *reason;   /* NULL when there is none */
	const char *reply;    /* the reply the client got, NULL when it was a plain 250 */
};

static void smtp_log_outcome(struct smtp_session *s, const struct smtp_outcome *o)
{
	const struct smtp_txn *t = &s->txn;
	char helo[128], from[256], to[256], text[512];
	struct buf line;

	buf_init(&line);
	buf_printf(&line, "event=rcpt outcome=%s stage=%s proto=%s conn=%llu client=\"%s[%s]\"",
		   o->outcome, o->stage, s->lmtp ? "lmtp" : "smtp",
		   (unsigned long long)net_conn_id(s->conn), log_clean(s->helo, helo, sizeof(helo)),
		   net_conn_peer_ip(s->conn));
	if (s->user != NULL)
		buf_printf(&line, " user=%s", log_clean(s->user, from, sizeof(from)));
	if (o->queue_id != NULL && o->queue_id[0] != '\0')
		buf_printf(&line, " queue_id=%s", o->queue_id);
	if (t->msgid != NULL && log_msgid_value(t->msgid)[0] != '\0')
		buf_printf(&line, " message_id=%s", log_msgid_value(t->msgid));
	buf_printf(&line, " from=<%s> to=<%s>", log_clean(t->sender, from, sizeof(from)),
		   log_clean(o->to, to, sizeof(to)));
	if (strcmp(o->stage, "rcpt") != 0)
		buf_printf(&line, " size=%llu", (unsigned long long)t->size);
	if (o->reason != NULL)
		buf_printf(&line, " reason=\"%s\"", log_clean(o->reason, text, sizeof(text)));
	if (o->reply != NULL)
		buf_printf(&line, " reply=\"%s\"", log_clean(o->reply, text, sizeof(text)));
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

static void smtp_log_rcpt_rejected(struct smtp_session *s, const char *to, const char *reason,
				   const char *reply)
{
	struct smtp_outcome o = { "rejected", "rcpt", to, NULL, reason, reply };

	smtp_log_outcome(s, &o);
}

/* MAIL refused for a reason of policy or resources (not syntax): the sender is all we know. */
static void smtp_log_mail_rejected(struct smtp_session *s, const char *sender, const char *reason,
				   const char *reply)
{
	char helo[128], from[256];

	log_info("event=mail outcome=rejected stage=mail proto=%s conn=%llu client=\"%s[%s]\" "
		 "user=%s from=<%s> reason=\"%s\" reply=\"%s\"",
		 s->lmtp ? "lmtp" : "smtp", (unsigned long long)net_conn_id(s->conn),
		 log_clean(s->helo, helo, sizeof(helo)), net_conn_peer_ip(s->conn),
		 s->user ? s->user : "", log_clean(sender, from, sizeof(from)), reason, reply);
}

/* Every accepted recipient of the transaction refused at the end of (or during) the data. */
static void smtp_log_data_rejected(struct smtp_session *s, const char *reason, const char *reply)
{
	for (size_t i = 0; i < s->txn.rcpt_count; i++) {
		struct smtp_outcome o = { "rejected", "data", s->txn.rcpts[i].address, NULL, reason,
					  reply };
		smtp_log_outcome(s, &o);
	}
}

void smtp_txn_reset(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;

	delivery_txn_abort(&t->delivery);
	free(t->sender);
	free(t->envid);
	free(t->ret);
	free(t->delivery_error);
	for (size_t i = 0; i < t->rcpt_count; i++)
		delivery_rcpt_clear(&t->rcpts[i]);
	free(t->rcpts);
	buf_free(&t->header);
	free(t->msgid);
	memset(t, 0, sizeof(*t));
	smtp_enter_idle(s);
	buf_free(&s->out);
}

const char *smtp_mail_refusal(const struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CONNECTED)
		return s->lmtp ? "503 5.5.1 Send LHLO first" : "503 5.5.1 Send EHLO/HELO first";
	return "503 5.5.1 Sender already specified";
}

const char *smtp_rcpt_refusal(const struct smtp_session *s)
{
	(void)s;
	return "503 5.5.1 Need MAIL before RCPT";
}

const char *smtp_data_refusal(const struct smtp_session *s)
{
	switch (s->state) {
	case SMTP_STATE_MAIL:
		/* RFC 2033 §4.2: LMTP answers 503 here, SMTP 554 (RFC 5321 §3.3) */
		return s->lmtp ? "503 5.5.1 No valid recipients" : "554 5.5.1 No valid recipients";
	case SMTP_STATE_CHUNKING:
		return "503 5.5.1 DATA cannot follow BDAT";
	default:
		return "503 5.5.1 Need MAIL command";
	}
}

/* Pipelining rule (RFC 2920 §3.1, CVE-2023-51765): after a command that ends a batch (EHLO,
 * DATA's 354) the client must wait for the reply. Bytes already waiting prove it did not. */
static bool smtp_pipelining_violation(struct smtp_session *s)
{
	if (net_conn_input_length(s->conn) == 0)
		return false;
	log_warn("proto=smtp conn=%llu ip=%s msg=\"client did not wait for the reply\"",
		 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn));
	smtp_reply(s, "554 5.5.0 Improper use of SMTP command pipelining");
	smtp_close_after_replies(s);
	return true;
}

/* ---------------- MAIL ---------------- */

struct mail_job {
	struct delivery *delivery;
	struct smtp_path path;
	char *user;
	bool owned;
};

static void mail_job_work(void *arg)
{
	struct mail_job *job = arg;

	job->owned = delivery_address_owned_by(job->delivery, job->path.mailbox, job->user);
}

static void smtp_mail_accept(struct smtp_session *s, struct smtp_path *path)
{
	struct smtp_txn *t = &s->txn;
	const char *body = smtp_path_param(path, "BODY", NULL);

	memset(t, 0, sizeof(*t));
	t->sender = xstrdup(path->mailbox);
	smtp_path_param(path, "SMTPUTF8", &t->smtputf8);
	t->body_8bit = body != NULL && str_ieq(body, "8BITMIME");
	if (smtp_path_param(path, "ENVID", NULL))
		t->envid = xstrdup(smtp_path_param(path, "ENVID", NULL));
	if (smtp_path_param(path, "RET", NULL))
		t->ret = xstrdup(smtp_path_param(path, "RET", NULL));
	buf_init(&t->header);
	t->msgid = xcalloc(1, sizeof(*t->msgid));
	smtp_enter(s, SMTP_STATE_MAIL);
	net_conn_end_prelogin(s->conn); /* a transaction is what an MX client logs in for */
	smtp_reply(s, "250 2.1.0 Sender <%s> OK", t->sender);
}

static void mail_job_done(void *session, void *arg)
{
	struct smtp_session *s = session;
	struct mail_job *job = arg;

	if (!job->owned) {
		smtp_log_mail_rejected(s, job->path.mailbox, "sender address not owned by the user",
				       "553 5.7.1");
		smtp_reply(s, "553 5.7.1 Sender address <%s> not owned by user %s",
			   job->path.mailbox, s->user);
	} else
		smtp_mail_accept(s, &job->path);
	smtp_path_clear(&job->path);
	free(job->user);
	free(job);
}

/* Checks the MAIL parameters we support; returns the error reply or NULL. */
static const char *smtp_check_mail_params(struct smtp_session *s, const struct smtp_path *p)
{
	for (size_t i = 0; i < p->param_count; i++) {
		const char *k = p->params[i].keyword, *v = p->params[i].value;
		if (strcmp(k, "SIZE") == 0) {
			uint64_t size;
			if (v == NULL || str_to_u64(v, strlen(v), UINT64_MAX >> 1, &size) < 0)
				return "501 5.5.4 Bad SIZE parameter";
			if (size > (uint64_t)s->deps->cfg->message_size)
				return "552 5.3.4 Message size exceeds fixed maximum message size";
		} else if (strcmp(k, "BODY") == 0) {
			if (v == NULL || !(str_ieq(v, "7BIT") || str_ieq(v, "8BITMIME")))
				return "501 5.5.4 BODY must be 7BIT or 8BITMIME";
		} else if (strcmp(k, "SMTPUTF8") == 0) {
			if (v != NULL)
				return "501 5.5.4 SMTPUTF8 takes no value";
		} else if (strcmp(k, "RET") == 0) {
			if (v == NULL || !(str_ieq(v, "FULL") || str_ieq(v, "HDRS")))
				return "501 5.5.4 RET must be FULL or HDRS";
		} else if (strcmp(k, "ENVID") == 0) {
			if (v == NULL || strlen(v) > 100 || !smtp_xtext_clean(v, false))
				return "501 5.5.4 Bad ENVID parameter";
		} else if (strcmp(k, "AUTH") == 0) {
			/* RFC 4954 §5: accepted; we do not trust other servers' claims. */
			if (v == NULL || (strcmp(v, "<>") != 0 && !smtp_xtext_clean(v, true)))
				return "501 5.5.4 Bad AUTH parameter";
		} else {
			return "555 5.5.4 Unsupported MAIL parameter";
		}
	}
	return NULL;
}

/* RFC 6531 §3.4: a UTF-8 address is allowed only in a transaction that asked for SMTPUTF8. */
static bool smtp_ascii(const char *str)
{
	for (; *str; str++)
		if ((unsigned char)*str >= 0x80)
			return false;
	return true;
}

/* [smtp] rate_per_ip (MX) and rate_per_user (submission): a message over the rate gets a
 * temporary refusal at MAIL, which well-behaved senders retry later (RFC 5321 §4.2.5). LMTP
 * comes from our own front end and is not limited here. */
static bool smtp_rate_refused(struct smtp_session *s)
{
	const struct config *cfg = s->deps->cfg;
	const char *ip = net_conn_peer_ip(s->conn);
	uint32_t wait_s;

	if (s->lmtp)
		return false;
	if (s->submission)
		wait_s = auth_rate_take(s->deps->penalty, AUTH_RATE_USER, s->user,
					(uint32_t)cfg->smtp_rate_per_user);
	else
		wait_s = auth_rate_take(s->deps->penalty, AUTH_RATE_IP, ip,
					(uint32_t)cfg->smtp_rate_per_ip);
	if (wait_s == 0)
		return false;
	log_info("event=mail outcome=rejected stage=mail proto=smtp conn=%llu ip=%s user=%s "
		 "msg=\"message rate exceeded\" wait_s=%u reason=\"rate limit\"",
		 (unsigned long long)net_conn_id(s->conn), ip, s->user ? s->user : "", wait_s);
	smtp_reply(s, "451 4.7.1 Too many messages %s; try again in %u minute%s",
		   s->submission ? "from this account" : "from your address",
		   (wait_s + 59) / 60, (wait_s + 59) / 60 == 1 ? "" : "s");
	return true;
}

void smtp_cmd_mail(struct smtp_session *s, const char *args)
{
	struct smtp_path path;
	const char *why = NULL;
	bool utf8 = false;

	if (s->submission && s->user == NULL) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (smtp_path_parse(args, "FROM:", s->submission, true, true, &path, &why) < 0) {
		smtp_error(s, "%s", why);
		return;
	}
	why = smtp_check_mail_params(s, &path);
	smtp_path_param(&path, "SMTPUTF8", &utf8);
	if (why == NULL && !utf8 && !smtp_ascii(path.mailbox))
		why = "553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter";
	if (why != NULL) {
		smtp_error(s, "%s", why);
		smtp_path_clear(&path);
		return;
	}
	if (!delivery_disk_ok(s->deps->delivery)) {
		smtp_log_mail_rejected(s, path.mailbox, "insufficient system storage", "452 4.3.1");
		smtp_reply(s, "452 4.3.1 Insufficient system storage");
		smtp_path_clear(&path);
		return;
	}
	if (smtp_rate_refused(s)) {
		smtp_path_clear(&path);
		return;
	}
	if (s->submission) {
		struct mail_job *job = xcalloc(1, sizeof(*job));
		if (path.mailbox[0] == '\0') {
			smtp_reply(s, "553 5.7.1 The null sender is not allowed for submission");
			smtp_path_clear(&path);
			free(job);
			return;
		}
		job->delivery = s->deps->delivery;
		job->path = path;
		job->user = xstrdup(s->user);
		net_conn_offload(s->conn, mail_job_work, mail_job_done, job);
		return;
	}
	smtp_mail_accept(s, &path);
	smtp_path_clear(&path);
}

/* ---------------- RCPT ---------------- */

struct rcpt_job {
	struct delivery *delivery;
	bool relay_allowed;
	enum delivery_rcpt_status status;
	struct delivery_rcpt rcpt;
	char *address;
	/* greylisting: greylist NULL when this session is not greylisted */
	struct auth_greylist *greylist;
	char *client_ip;
	char *sender;
	uint32_t greylist_wait_s; /* > 0: answer 451 */
};

/* Greylisting applies to the MX only: never to LMTP (our own front end), submission or a
 * client that authenticated. The null sender is greylisted too: the MTAs that send bounces
 * retry like any other. Only a recipient that exists is greylisted, so an unknown one still
 * gets its 550 at once. */
static bool smtp_greylisted_session(const struct smtp_session *s)
{
	return s->deps->greylist != NULL && !s->lmtp && !s->submission && s->user == NULL;
}

static void rcpt_job_work(void *arg)
{
	struct rcpt_job *job = arg;
	struct timespec now;

	job->status = delivery_resolve(job->delivery, job->address, job->relay_allowed,
				       &job->rcpt);
	if (job->status != DELIVERY_RCPT_OK || job->greylist == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	auth_greylist_check(job->greylist, job->client_ip, job->sender, job->address,
			    (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
			    &job->greylist_wait_s);
}

static void rcpt_job_free(struct rcpt_job *job)
{
	delivery_rcpt_clear(&job->rcpt);
	free(job->address);
	free(job->client_ip);
	free(job->sender);
	free(job);
}

static void rcpt_job_done(void *session, void *arg)
{
	struct smtp_session *s = session;
	struct rcpt_job *job = arg;
	struct smtp_txn *t = &s->txn;

	if (job->status == DELIVERY_RCPT_OK && job->greylist_wait_s > 0) {
		smtp_log_rcpt_rejected(s, job->address, "greylisted", "451 4.7.1");
		metrics_message_rejected(METRICS_REJECT_GREYLIST);
		smtp_reply(s, "451 4.7.1 <%s>: Greylisted, please try again in %u second%s",
			   job->address, job->greylist_wait_s, job->greylist_wait_s == 1 ? "" : "s");
		rcpt_job_free(job);
		return;
	}
	switch (job->status) {
	case DELIVERY_RCPT_OK:
		t->rcpts = xrealloc(t->rcpts, (t->rcpt_count + 1) * sizeof(*t->rcpts));
		t->rcpts[t->rcpt_count++] = job->rcpt;
		memset(&job->rcpt, 0, sizeof(job->rcpt));
		if (s->state == SMTP_STATE_MAIL)
			smtp_enter(s, SMTP_STATE_RCPT);
		smtp_reply(s, "250 2.1.5 Recipient <%s> OK", job->address);
		break;
	case DELIVERY_RCPT_UNKNOWN: {
		/* Unknown recipients cost the sender the same growing delay as
		 * failed logins, so RCPT is no faster an account oracle than AUTH. A trusted
		 * LMTP client is not slowed down. */
		char *reply = xasprintf("550 5.1.1 <%s>: Recipient address rejected: "
					"no such user here",
					job->address);
		smtp_log_rcpt_rejected(s, job->address, "unknown user", reply);
		metrics_message_rejected(METRICS_REJECT_RECIPIENT);
		auth_login_hold_reply(&s->login, reply);
		smtp_reply_after(s, s->lmtp ? 0 : auth_login_probe_failed(&s->login));
		break;
	}
	case DELIVERY_RCPT_RELAY_DENIED:
		smtp_log_rcpt_rejected(s, job->address, "relay denied", "554 5.7.1");
		metrics_message_rejected(METRICS_REJECT_RELAY);
		smtp_reply(s, "554 5.7.1 <%s>: Relay access denied", job->address);
		break;
	case DELIVERY_RCPT_TEMPFAIL:
		smtp_log_rcpt_rejected(s, job->address, "accounts directory lookup failed",
				       "451 4.3.0");
		smtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", job->address);
		break;
	case DELIVERY_RCPT_UNSUPPORTED:
		smtp_log_rcpt_rejected(s, job->address, "address the queue cannot carry",
				       "553 5.1.3");
		smtp_reply(s, "553 5.1.3 <%s>: Address cannot be relayed", job->address);
		break;
	case DELIVERY_RCPT_OVER_QUOTA: {
		const char *code = smtp_over_quota_code(s);

		smtp_log_rcpt_rejected(s, job->address, "mailbox full", code);
		smtp_reply(s, "%s <%s>: Mailbox full", code, job->address);
		break;
	}
	}
	rcpt_job_free(job);
}

/* Checks the RCPT parameters; returns the error reply or NULL. */
static const char *smtp_check_rcpt_params(const struct smtp_path *p)
{
	for (size_t i = 0; i < p->param_count; i++) {
		const char *k = p->params[i].keyword, *v = p->params[i].value;
		if (strcmp(k, "NOTIFY") == 0) {
			if (v == NULL)
				return "501 5.5.4 Bad NOTIFY parameter";
			bool never = false, other = false;
			char *copy = xstrdup(v), *save = NULL;
			for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
				if (str_ieq(w, "NEVER"))
					never = true;
				else if (str_ieq(w, "SUCCESS") || str_ieq(w, "FAILURE") ||
					 str_ieq(w, "DELAY"))
					other = true;
				else
					never = other = true; /* unknown word: invalid */
			}
			free(copy);
			if (never && other)
				return "501 5.5.4 Bad NOTIFY parameter";
		} else if (strcmp(k, "ORCPT") == 0) {
			const char *semi = v ? strchr(v, ';') : NULL;
			if (semi == NULL || semi == v || strlen(v) > 500 ||
			    !smtp_xtext_clean(semi + 1, false))
				return "501 5.5.4 Bad ORCPT parameter";
		} else {
			return "555 5.5.4 Unsupported RCPT parameter";
		}
	}
	return NULL;
}

void smtp_cmd_rcpt(struct smtp_session *s, const char *args)
{
	struct smtp_path path;
	const char *why = NULL;
	struct rcpt_job *job;

	if (s->txn.rcpt_count >= (size_t)s->deps->cfg->recipients) {
		/* not parsed (a syntax error must not count here): the text between < and > */
		const char *lt = strchr(args, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		char to[256];
		snprintf(to, sizeof(to), "%.*s", gt ? (int)(gt - lt - 1) : (int)strlen(args),
			 gt ? lt + 1 : args);
		smtp_log_rcpt_rejected(s, to, "recipient limit", "452 4.5.3");
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (smtp_path_parse(args, "TO:", s->submission, s->txn.smtputf8, false, &path, &why) < 0) {
		smtp_error(s, "%s", why);
		return;
	}
	why = smtp_check_rcpt_params(&path);
	if (why != NULL) {
		smtp_error(s, "%s", why);
		smtp_path_clear(&path);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->delivery = s->deps->delivery;
	job->relay_allowed = s->user != NULL && !s->lmtp;
	if (strchr(path.mailbox, '@') == NULL) /* <Postmaster>, RFC 5321 §4.5.1 */
		job->address = xasprintf("postmaster@%s", s->deps->cfg->hostname);
	else
		job->address = xstrdup(path.mailbox);
	if (smtp_path_param(&path, "NOTIFY", NULL))
		job->rcpt.notify = xstrdup(smtp_path_param(&path, "NOTIFY", NULL));
	if (smtp_path_param(&path, "ORCPT", NULL))
		job->rcpt.orcpt = xstrdup(smtp_path_param(&path, "ORCPT", NULL));
	if (smtp_greylisted_session(s)) {
		job->greylist = s->deps->greylist;
		job->client_ip = xstrdup(net_conn_peer_ip(s->conn));
		job->sender = xstrdup(s->txn.sender);
	}
	smtp_path_clear(&path);
	net_conn_offload(s->conn, rcpt_job_work, rcpt_job_done, job);
}

/* ---------------- the data ---------------- */

static void smtp_received_header(struct smtp_session *s, struct buf *out)
{
	char date[64], tls[128];
	time_t now = time(NULL);
	struct tm tm;
	const char *with;
	bool tls_on = net_conn_tls_description(s->conn, tls, sizeof(tls)) != NULL;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* RFC 3848 protocol types */
	if (s->lmtp)
		with = "LMTP";
	else if (!s->esmtp)
		with = "SMTP";
	else if (tls_on && s->user)
		with = "ESMTPSA";
	else if (tls_on)
		with = "ESMTPS";
	else if (s->user)
		with = "ESMTPA";
	else
		with = "ESMTP";
	buf_printf(out, "Received: from %s ([%s])\r\n\tby %s (Roost) with %s", s->helo,
		   net_conn_peer_ip(s->conn), s->deps->cfg->hostname, with);
	if (tls_on)
		buf_printf(out, "\r\n\t(%s)", tls);
	if (s->txn.rcpt_count == 1)
		buf_printf(out, "\r\n\tfor <%s>", s->txn.rcpts[0].address);
	buf_printf(out, "; %s\r\n", date);
}

struct begin_job {
	struct delivery *delivery;
	struct delivery_envelope env;
	struct buf received;
	struct delivery_txn *txn;
	char err[256];
};

static void begin_job_work(void *arg)
{
	struct begin_job *job = arg;

	job->txn = delivery_txn_begin(job->delivery, &job->env, job->err, sizeof(job->err));
}

static void smtp_begin_done_common(struct smtp_session *s, struct begin_job *job)
{
	struct smtp_txn *t = &s->txn;

	t->delivery = job->txn;
	if (t->delivery == NULL) {
		t->delivery_failed = true;
		t->delivery_error = xstrdup(job->err);
		log_error("proto=smtp conn=%llu msg=\"cannot start delivery\" error=\"%s\"",
			  (unsigned long long)net_conn_id(s->conn), job->err);
	}
	buf_free(&job->received);
	free(job);
}

static struct begin_job *smtp_begin_job(struct smtp_session *s)
{
	struct begin_job *job = xcalloc(1, sizeof(*job));
	struct smtp_txn *t = &s->txn;

	job->delivery = s->deps->delivery;
	buf_init(&job->received);
	smtp_received_header(s, &job->received);
	buf_cstr(&job->received);
	/* The envelope points into the session's transaction, which outlives the job: the
	 * connection is paused until the job is done. */
	job->env.sender = t->sender;
	job->env.auth_user = s->user;
	job->env.envid = t->envid;
	job->env.ret = t->ret;
	job->env.received = (const char *)job->received.data;
	job->env.rcpts = t->rcpts;
	job->env.rcpt_count = t->rcpt_count;
	job->env.helo = s->helo;
	job->env.client_ip = net_conn_peer_ip(s->conn);
	return job;
}

static void data_begin_done(void *session, void *arg)
{
	struct smtp_session *s = session;

	smtp_begin_done_common(s, arg);
	if (s->txn.delivery_failed) {
		smtp_reply(s, "451 4.3.0 Cannot accept the message now; try again later");
		smtp_txn_reset(s);
		return;
	}
	smtp_data_init(&s->txn.decoder);
	smtp_enter(s, SMTP_STATE_DATA);
	smtp_reply(s, "354 Start mail input; end with <CRLF>.<CRLF>");
	smtp_pipelining_violation(s);
}

void smtp_cmd_data(struct smtp_session *s, const char *args)
{
	(void)args;
	net_conn_offload(s->conn, begin_job_work, data_begin_done, smtp_begin_job(s));
}

static void bdat_begin_done(void *session, void *arg)
{
	struct smtp_session *s = session;

	s->txn.begin_pending = false;
	smtp_begin_done_common(s, arg);
	/* A chunk that was already complete (BDAT 0 LAST, or a chunk whose octets all arrived
	 * before the job ended) waited for the delivery; no new input will announce it. */
	if (s->state == SMTP_STATE_BDAT)
		smtp_continue(s);
}

void smtp_cmd_bdat(struct smtp_session *s, const char *args)
{
	struct smtp_txn *t = &s->txn;
	size_t digits = strspn(args, "0123456789");
	uint64_t size;
	bool last = false, first_chunk;

	if (digits == 0 || digits > 19 || str_to_u64(args, digits, UINT64_MAX >> 1, &size) < 0 ||
	    (args[digits] != '\0' && !str_ieq(args + digits, " LAST"))) {
		/* The chunk's size is unknown: nothing after this can be trusted to be a
		 * command, so the session cannot go on (RFC 3030 §4.2 leaves it to us). */
		smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]; closing connection");
		net_conn_close(s->conn);
		return;
	}
	last = args[digits] != '\0';
	if (s->state != SMTP_STATE_RCPT && s->state != SMTP_STATE_CHUNKING) {
		/* Read and drop the chunk, then refuse it. */
		free(t->delivery_error);
		t->delivery_error = xstrdup(smtp_data_refusal(s));
		t->delivery_failed = true;
		t->bdat_remaining = size;
		t->bdat_last = last;
		smtp_enter(s, SMTP_STATE_BDAT);
		return;
	}
	first_chunk = s->state == SMTP_STATE_RCPT;
	t->bdat_remaining = size;
	t->bdat_last = last;
	smtp_enter(s, SMTP_STATE_BDAT);
	if (first_chunk) {
		t->begin_pending = true;
		net_conn_offload(s->conn, begin_job_work, bdat_begin_done, smtp_begin_job(s));
	}
}

/* ---------------- end of data ---------------- */

struct finish_job {
	struct smtp_session *s; /* read-only use of the transaction while paused */
	struct delivery *delivery;
	struct delivery_txn *txn;
	struct delivery_outcome *outcomes;
	size_t count;
	int result;
	struct delivery_refusal refusal; /* a check refused the message */
	bool from_refused;
	char *from_bad;
	const char *from_field; /* static: the originator field that was refused */
	const char *user;
	struct buf *header;
};

struct from_check {
	struct delivery *delivery;
	const char *user;
	char *bad;
};

static void check_from_address(const char *address, void *arg)
{
	struct from_check *fc = arg;

	if (fc->bad == NULL && !delivery_address_owned_by(fc->delivery, address, fc->user))
		fc->bad = xstrdup(address);
}

/* The originator fields a submitted message may carry only with the user's own addresses.
 * Sender: and the Resent- fields count as much as From: — a reader shows them as who sent
 * the message, and DKIM signs them with our domain — so a user can name someone else in
 * none of them. (A "bounce"/redirect of someone else's message therefore has to go out as a
 * forward; see ARCHITECTURE.md.) */
static const char *const originator_fields[] = { "From", "Sender", "Resent-From",
						 "Resent-Sender" };

/* Checks the header against the submission rule; on refusal sets job->from_bad and
 * job->from_field. */
static bool submission_header_allowed(struct finish_job *job)
{
	bool header_end = false;
	int from_count = 0;

	for (size_t i = 0; i < ARRAY_LEN(originator_fields); i++) {
		struct from_check fc = { job->delivery, job->user, NULL };
		int n = smtp_header_addresses(job->header->data, job->header->len,
					      originator_fields[i], check_from_address, &fc,
					      &header_end);
		if (i == 0)
			from_count = n;
		if (n < 0)
			fc.bad = xstrdup("(NUL in the field)");
		if (fc.bad != NULL) {
			job->from_bad = fc.bad;
			job->from_field = originator_fields[i];
			return false;
		}
	}
	job->from_field = "From";
	/* A header block longer than what was kept could hide another originator field. */
	if (!header_end && job->header->len >= SMTP_HEADER_KEEP) {
		job->from_bad = xstrdup("(header too long to check)");
		return false;
	}
	if (from_count == 0) {
		job->from_bad = xstrdup("(no From: address)");
		return false;
	}
	return true;
}

static void finish_job_work(void *arg)
{
	struct finish_job *job = arg;

	/* Submission: the originator fields must name the user too (553). */
	if (job->user != NULL && !submission_header_allowed(job)) {
		job->from_refused = true;
		delivery_txn_abort(&job->txn);
		return;
	}
	job->result = delivery_txn_finish(&job->txn, job->outcomes, &job->refusal);
}

static void finish_job_done(void *session, void *arg)
{
	struct smtp_session *s = session;
	struct finish_job *job = arg;

	if (job->from_refused) {
		char *reason = xasprintf("%s: address %s not owned by the user", job->from_field,
					 job->from_bad);
		smtp_log_data_rejected(s, reason, "553 5.7.1");
		free(reason);
		smtp_reply(s, "553 5.7.1 %s: address %s not owned by user %s", job->from_field,
			   job->from_bad, s->user);
		goto done;
	}
	if (job->refusal.action != DELIVERY_CHECK_ACCEPT) {
		/* A check (virus, sender authentication, spam) refused the whole message:
		 * its own reply, once per recipient for LMTP (RFC 2033 §4.2). */
		size_t n = s->lmtp && job->count > 0 ? job->count : 1;
		smtp_log_data_rejected(s, job->refusal.reason, job->refusal.reply);
		for (size_t i = 0; i < n; i++)
			smtp_reply(s, "%s", job->refusal.reply);
		goto done;
	}
	for (size_t i = 0; i < job->count; i++) {
		const struct delivery_rcpt *r = &s->txn.rcpts[i];
		const struct delivery_outcome *oc = &job->outcomes[i];
		struct smtp_outcome o = { r->local_count > 0 ? "delivered" : "queued", "data",
					  r->address, oc->queue_id, NULL, NULL };
		if (!oc->ok) {
			o.outcome = "rejected";
			o.reason = oc->text;
			o.reply = oc->over_quota ? smtp_over_quota_code(s) : "451 4.3.0";
		} else if (!s->lmtp && job->result != 0) {
			/* Stored, but the client is told to send the whole message again. */
			o.reason = "another recipient failed; the client will retry";
		}
		smtp_log_outcome(s, &o);
	}
	if (job->result == 0)
		metrics_message_accepted();
	if (s->lmtp) {
		/* RFC 2033 §4.2: one reply per accepted recipient, in order. */
		for (size_t i = 0; i < job->count; i++) {
			if (job->outcomes[i].ok)
				smtp_reply(s, "250 2.0.0 <%s> delivered", s->txn.rcpts[i].address);
			else
				smtp_reply(s, "%s <%s> %s",
					   job->outcomes[i].over_quota ? smtp_over_quota_code(s)
								       : "452 4.3.0",
					   s->txn.rcpts[i].address, job->outcomes[i].text);
		}
	} else if (job->result == 0) {
		smtp_reply(s, "%s Message accepted for delivery", smtp_enhanced_ok);
		log_info("proto=smtp conn=%llu ip=%s from=<%s> rcpts=%zu size=%llu msg=accepted",
			 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn),
			 s->txn.sender, job->count, (unsigned long long)s->txn.size);
	} else {
		/* Some recipient could not be stored. The client will retry the whole message;
		 * a recipient that did get it may see it twice, but none loses it. */
		const char *text = "local delivery failed";
		bool all_over_quota = true;
		for (size_t i = 0; i < job->count; i++) {
			if (job->outcomes[i].ok)
				continue;
			text = job->outcomes[i].text;
			all_over_quota &= job->outcomes[i].over_quota;
		}
		/* One reply covers every recipient: the quota's code only when the quota is all
		 * that failed, so a permanent 552 never stands for a disk error. */
		if (all_over_quota)
			smtp_reply(s, "%s Message not accepted: %s", smtp_over_quota_code(s), text);
		else
			smtp_reply(s, "451 4.3.0 Message not accepted: %s; try again later", text);
	}
done:
	free(job->from_bad);
	free(job->outcomes);
	free(job);
	smtp_txn_reset(s);
}

static void smtp_flush_out(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;

	if (s->out.len == 0)
		return;
	if (s->submission && t->header.len < SMTP_HEADER_KEEP) {
		size_t keep = SMTP_HEADER_KEEP - t->header.len;
		buf_append(&t->header, s->out.data, s->out.len < keep ? s->out.len : keep);
	}
	if (t->delivery && !t->too_big && !t->write_failed &&
	    delivery_txn_write(t->delivery, s->out.data, s->out.len) < 0)
		t->write_failed = true;
	buf_reset(&s->out);
}

/* Refuses the whole message at the end of its data. RFC 2033 §4.2: after the end of the data
 * an LMTP server sends one reply for each accepted recipient, also when every one of them is
 * the same refusal; a single reply would leave the client waiting for the others. An error on
 * a BDAT chunk that is not the last (end_of_data false) is the answer to that chunk: one reply
 * (RFC 3030 §3: the client sends no more chunks). */
static void smtp_data_refuse(struct smtp_session *s, bool end_of_data, const char *text,
			     const char *reason)
{
	size_t n = s->lmtp && end_of_data && s->txn.rcpt_count > 0 ? s->txn.rcpt_count : 1;

	smtp_log_data_rejected(s, reason, text);

	for (size_t i = 0; i < n; i++)
		smtp_reply(s, "%s", text);
	smtp_txn_reset(s);
}

static void smtp_data_complete(struct smtp_session *s, bool bare_line_ends, bool end_of_data)
{
	struct smtp_txn *t = &s->txn;
	struct finish_job *job;

	smtp_flush_out(s);
	smtp_enter(s, SMTP_STATE_FINISHING);
	if (t->delivery_failed) {
		if (t->delivery_error && t->delivery_error[0] >= '2' && t->delivery_error[0] <= '5' &&
		    t->delivery_error[3] == ' ')
			smtp_data_refuse(s, end_of_data, t->delivery_error, "no valid recipients");
		else
			smtp_data_refuse(s, end_of_data,
					 "451 4.3.0 Cannot accept the message now; try again later",
					 t->delivery_error ? t->delivery_error
							   : "cannot start delivery");
		return;
	}
	if (t->too_big) {
		metrics_message_rejected(METRICS_REJECT_SIZE);
		smtp_data_refuse(s, end_of_data,
				 "552 5.3.4 Message size exceeds fixed maximum message size",
				 "message too big");
		return;
	}
	if (bare_line_ends && !s->submission) {
		/* RFC 5321 §2.3.8: CR and LF only as CRLF. Refusing them on the MX leaves no
		 * room for an end-of-data ambiguity with a relaying server (SMTP smuggling). */
		smtp_data_refuse(s, end_of_data,
				 "554 5.6.0 Message contains bare CR or LF characters",
				 "bare CR or LF");
		return;
	}
	if (t->write_failed) {
		smtp_data_refuse(s, end_of_data,
				 "451 4.3.0 Cannot store the message now; try again later",
				 "storage write failed");
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->delivery = s->deps->delivery;
	job->txn = t->delivery;
	t->delivery = NULL;
	job->count = t->rcpt_count;
	job->outcomes = xcalloc(t->rcpt_count ? t->rcpt_count : 1, sizeof(*job->outcomes));
	job->user = s->submission ? s->user : NULL;
	job->header = &t->header;
	net_conn_offload(s->conn, finish_job_work, finish_job_done, job);
}

static void smtp_count(struct smtp_session *s, size_t n)
{
	struct smtp_txn *t = &s->txn;

	t->size += n;
	if (t->size > (uint64_t)s->deps->cfg->message_size)
		t->too_big = true; /* keep reading to the end, store nothing more */
}

/* The same line-end rule for BDAT as for DATA (data.h): without BINARYMIME a chunked message
 * is still made of CRLF lines (RFC 3030 §3), so a bare CR or LF is flagged (the MX and LMTP
 * refuse the message) and written as CRLF (submission). Otherwise a message submitted with
 * BDAT could carry "\n.\n" into the queue and on to a next server that reads it as the end
 * of data (SMTP smuggling, with us as the sender). A CR at the end of a chunk waits for the
 * next chunk's first octet. */
static void smtp_bdat_lines(struct smtp_txn *t, const uint8_t *in, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		if (t->bdat_cr) {
			t->bdat_cr = false;
			buf_append(out, "\r\n", 2);
			if (in[i] == '\n') {
				i++;
				continue;
			}
			t->bdat_bare = true;
		}
		size_t j = i;
		while (j < len && in[j] != '\r' && in[j] != '\n')
			j++;
		buf_append(out, in + i, j - i);
		if (j == len)
			break;
		if (in[j] == '\n') {
			t->bdat_bare = true;
			buf_append(out, "\r\n", 2);
		} else {
			t->bdat_cr = true;
		}
		i = j + 1;
	}
}

bool smtp_receive(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;

	while (!net_conn_is_closing(s->conn)) {
		size_t avail;
		if (s->state == SMTP_STATE_DATA) {
			const uint8_t *in = net_conn_peek(s->conn, SMTP_DATA_CHUNK, &avail);
			if (avail == 0)
				return false;
			size_t before = s->out.len;
			size_t used = smtp_data_feed(&t->decoder, in, avail, &s->out);
			net_conn_skip_bytes(s->conn, used);
			if (t->msgid != NULL)
				log_msgid_feed(t->msgid, s->out.data + before, s->out.len - before);
			smtp_count(s, s->out.len - before);
			if (t->too_big)
				buf_reset(&s->out);
			if (s->out.len >= SMTP_DATA_CHUNK)
				smtp_flush_out(s);
			if (t->decoder.done) {
				smtp_data_complete(s, t->decoder.bare_line_ends, true);
				return true;
			}
			continue;
		}
		/* BDAT: exactly bdat_remaining octets, no dot-stuffing (RFC 3030 §2). */
		if (t->bdat_remaining > 0) {
			size_t want = t->bdat_remaining > SMTP_DATA_CHUNK ? SMTP_DATA_CHUNK
									  : (size_t)t->bdat_remaining;
			const uint8_t *in = net_conn_peek(s->conn, want, &avail);
			if (avail == 0)
				return false;
			smtp_count(s, avail);
			if (!t->too_big && !t->delivery_failed) {
				size_t before = s->out.len;
				smtp_bdat_lines(t, in, avail, &s->out);
				if (t->msgid != NULL)
					log_msgid_feed(t->msgid, s->out.data + before,
						       s->out.len - before);
			}
			net_conn_skip_bytes(s->conn, avail);
			t->bdat_remaining -= avail;
			if (s->out.len >= SMTP_DATA_CHUNK)
				smtp_flush_out(s);
			continue;
		}
		/* A whole chunk arrived. Nothing ends the transaction, and no chunk is acknowledged,
		 * before the job that opens its delivery has ended: completing earlier would hand
		 * the finish job a delivery that does not exist yet, and leak the one that follows. */
		if (t->begin_pending)
			return false;
		if (t->bdat_last || t->delivery_failed || t->too_big) {
			if (t->bdat_last && t->bdat_cr) {
				/* the message ended in a bare CR */
				buf_append(&s->out, "\r\n", 2);
				t->bdat_bare = true;
			}
			smtp_data_complete(s, t->bdat_bare, t->bdat_last);
			return true;
		}
		smtp_flush_out(s);
		smtp_enter(s, SMTP_STATE_CHUNKING);
		smtp_reply(s, "250 2.0.0 %llu octets received", (unsigned long long)t->size);
		return true;
	}
	return false;
}
