/* GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208) with the STORAGE and MESSAGE resources.
 * Every mailbox of an account is under one quota root, "", whose limits are those the store
 * enforces: the account's own, lowered to what its domain has left. The accounts directory
 * has no administrators, and a user must not raise their own limit, so SETQUOTA is answered
 * NO [NOPERM] and QUOTASET is not advertised. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

struct quota_job {
	struct store_account *acct;
	char *tag;
	char *mailbox; /* GETQUOTAROOT: the name as the client gave it, decoded; else NULL */
	bool utf8;
	struct buf out;
	enum store_error error;
	struct store_err err;
};

/* RFC 9208 §4.2.1: resources without a limit are left out of the list. STORAGE counts
 * units of 1024 octets (§5.1), rounded up so that a used octet never shows as nothing. */
static void append_quota(struct buf *out, const struct store_quota *q)
{
	bool first = true;

	buf_append_str(out, "* QUOTA \"\" (");
	if (q->limit_bytes != STORE_QUOTA_NONE) {
		buf_printf(out, "STORAGE %llu %llu", (unsigned long long)((q->used_bytes + 1023) / 1024),
			   (unsigned long long)(q->limit_bytes / 1024));
		first = false;
	}
	if (q->limit_messages != STORE_QUOTA_NONE)
		buf_printf(out, "%sMESSAGE %llu %llu", first ? "" : " ",
			   (unsigned long long)q->used_messages,
			   (unsigned long long)q->limit_messages);
	buf_append_str(out, ")\r\n");
}

static void quota_work(void *arg)
{
	struct quota_job *job = arg;
	struct store_quota q;

	job->error = store_account_quota(job->acct, &q, &job->err);
	if (job->error != STORE_OK)
		return;
	if (job->mailbox != NULL) {
		buf_append_str(&job->out, "* QUOTAROOT ");
		imap_append_mbox(&job->out, job->mailbox, job->utf8);
		buf_append_str(&job->out, " \"\"\r\n");
	}
	append_quota(&job->out, &q);
}

static void quota_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct quota_job *job = arg;

	if (job->error == STORE_OK) {
		net_conn_write(s->conn, job->out.data, job->out.len);
		imap_tagged(s, job->tag, "%s OK %s completed", job->tag,
			    job->mailbox != NULL ? "GETQUOTAROOT" : "GETQUOTA");
	} else {
		imap_store_error(s, job->tag, job->error, &job->err);
	}
	buf_free(&job->out);
	free(job->tag);
	free(job->mailbox);
	free(job);
	imap_command_done(s);
}

static void quota_submit(struct imap_session *s, const char *tag, char *mailbox)
{
	struct quota_job *job = xcalloc(1, sizeof(*job));

	job->acct = s->acct;
	job->tag = xstrdup(tag);
	job->mailbox = mailbox;
	job->utf8 = s->enabled_utf8;
	buf_init(&job->out);
	s->busy = true;
	net_conn_offload(s->conn, quota_work, quota_done, job);
}

/* GETQUOTA quota-root: only "" exists. */
void imap_cmd_getquota(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_slice root;

	if (!imap_parse_astring(ps, &root) || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, "GETQUOTA expects a quota root");
		return;
	}
	if (root.len != 0) {
		imap_tagged(s, tag, "%s NO [NONEXISTENT] No such quota root", tag);
		return;
	}
	quota_submit(s, tag, NULL);
}

/* GETQUOTAROOT mailbox: the mailbox need not exist (§4.1.2); its root would be "". */
void imap_cmd_getquotaroot(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	char *name = imap_parse_mailbox(s, tag, ps);

	if (name == NULL)
		return;
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "Unexpected GETQUOTAROOT arguments");
		free(name);
		return;
	}
	quota_submit(s, tag, name);
}

/* SETQUOTA quota-root (resource limit ...): the syntax is checked (a malformed command is
 * BAD, as for any command), then refused. */
void imap_cmd_setquota(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_slice root, resource;
	uint64_t limit;
	bool ok = imap_parse_astring(ps, &root) && imap_parse_sp(ps) && imap_parse_char(ps, '(');

	for (int n = 0; ok && !imap_peek(ps, ')'); n++)
		ok = (n == 0 || imap_parse_sp(ps)) && imap_parse_atom(ps, &resource) &&
		     imap_parse_sp(ps) && imap_parse_number64(ps, &limit);
	if (!ok || !imap_parse_char(ps, ')') || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, "SETQUOTA expects a quota root and a list of limits");
		return;
	}
	imap_tagged(s, tag, "%s NO [NOPERM] Quota limits are set by the administrator", tag);
}
