/* CREATE (with RFC 6154 CREATE-SPECIAL-USE), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE
 * (RFC 9051 §6.3.4-6.3.8). The store enforces INBOX's rules: DELETE INBOX is refused and
 * RENAME INBOX moves its messages (§6.3.6).
 *
 * Special-use folders keep their roles: a folder with one (Sent, Drafts, Trash, Junk, Archive)
 * cannot be deleted or renamed, nor can a folder above it, and CREATE with a role that a
 * folder already has is refused with USEATTR (RFC 6154 §3), so each role names at most one
 * folder. Renaming was refused too because the store recreates the default folders with
 * their roles when an account is opened: "Sent" renamed to "Sent Items" would come back
 * beside it as a second \Sent. The check and the change are two steps; two sessions of one
 * user racing to give a role to two new folders is the one way around it. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

enum mbox_op { MBOX_CREATE, MBOX_DELETE, MBOX_RENAME, MBOX_SUBSCRIBE, MBOX_UNSUBSCRIBE };

struct mbox_job {
	struct store_account *acct;
	enum mbox_op op;
	char *tag;
	char *name;
	char *new_name;
	uint32_t special_use;
	const char *refusal; /* NO text when a special-use rule refused the command */
	enum store_error error;
	struct store_err err;
};

static const char *const mbox_op_names[] = { "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
					     "UNSUBSCRIBE" };

/* The roles held by NAME, or by folders below it when with_inferiors, or (NAME NULL) by every
 * folder of the account. */
static enum store_error mbox_roles(struct mbox_job *job, const char *name, bool with_inferiors,
				   uint32_t *roles_r)
{
	struct store_mailbox_info *list = NULL;
	size_t count = 0, name_len = name ? strlen(name) : 0;
	enum store_error e = store_mailbox_list(job->acct, &list, &count, &job->err);

	*roles_r = 0;
	if (e != STORE_OK)
		return e;
	for (size_t i = 0; i < count; i++) {
		const char *n = list[i].name;
		bool match = name == NULL || strcmp(n, name) == 0 ||
			     (with_inferiors && strncmp(n, name, name_len) == 0 &&
			      n[name_len] == '/');
		if (match)
			*roles_r |= list[i].special_use;
	}
	store_mailbox_list_free(&list, count);
	return STORE_OK;
}

/* Applies the special-use rules above; returns false (job->refusal or job->error set) when the
 * command must not go ahead. */
static bool mbox_roles_allow(struct mbox_job *job)
{
	uint32_t roles = 0;

	switch (job->op) {
	case MBOX_CREATE:
		if (job->special_use == 0)
			return true;
		job->error = mbox_roles(job, NULL, false, &roles);
		if (job->error == STORE_OK && (roles & job->special_use) != 0)
			job->refusal = "[USEATTR] Another folder already has that special use";
		break;
	case MBOX_DELETE:
		job->error = mbox_roles(job, job->name, false, &roles);
		if (job->error == STORE_OK && roles != 0)
			job->refusal = "[CANNOT] A special-use folder cannot be deleted";
		break;
	case MBOX_RENAME:
		if (strcmp(job->name, "INBOX") == 0)
			return true;
		job->error = mbox_roles(job, job->name, true, &roles);
		if (job->error == STORE_OK && roles != 0)
			job->refusal = "[CANNOT] A special-use folder (or one above it) cannot be "
				       "renamed";
		break;
	case MBOX_SUBSCRIBE:
	case MBOX_UNSUBSCRIBE:
		return true;
	}
	return job->error == STORE_OK && job->refusal == NULL;
}

static void mbox_work(void *arg)
{
	struct mbox_job *job = arg;

	if (!mbox_roles_allow(job))
		return;
	switch (job->op) {
	case MBOX_CREATE:
		job->error = store_mailbox_create(job->acct, job->name, job->special_use, &job->err);
		break;
	case MBOX_DELETE:
		job->error = store_mailbox_delete(job->acct, job->name, &job->err);
		break;
	case MBOX_RENAME:
		job->error = store_mailbox_rename(job->acct, job->name, job->new_name, &job->err);
		break;
	case MBOX_SUBSCRIBE:
	case MBOX_UNSUBSCRIBE:
		job->error = store_mailbox_subscribe(job->acct, job->name, job->op == MBOX_SUBSCRIBE,
						     &job->err);
		break;
	}
}

static void mbox_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct mbox_job *job = arg;

	if (job->refusal != NULL)
		imap_tagged(s, job->tag, "%s NO %s", job->tag, job->refusal);
	else if (job->error == STORE_OK)
		imap_tagged(s, job->tag, "%s OK %s completed", job->tag, mbox_op_names[job->op]);
	else if (job->error == STORE_ERR_NO_PERMISSION && job->op == MBOX_DELETE)
		imap_tagged(s, job->tag, "%s NO [CANNOT] INBOX cannot be deleted", job->tag);
	else
		imap_store_error(s, job->tag, job->error, &job->err);
	free(job->tag);
	free(job->name);
	free(job->new_name);
	free(job);
	imap_command_done(s);
}

static void mbox_submit(struct imap_session *s, const char *tag, enum mbox_op op, char *name,
			char *new_name, uint32_t special_use)
{
	struct mbox_job *job = xcalloc(1, sizeof(*job));

	job->acct = s->acct;
	job->op = op;
	job->tag = xstrdup(tag);
	job->name = name;
	job->new_name = new_name;
	job->special_use = special_use;
	s->busy = true;
	net_conn_offload(s->conn, mbox_work, mbox_done, job);
}

/* RFC 6154 §3: CREATE name (USE (\Sent ...)) */
static bool parse_create_params(struct imap_parser *ps, uint32_t *use_r, bool *unknown_use_r)
{
	struct imap_slice kw;

	if (!imap_parse_char(ps, '(') || !imap_parse_atom(ps, &kw) || !imap_slice_ieq(&kw, "USE") ||
	    !imap_parse_sp(ps) || !imap_parse_char(ps, '('))
		return false;
	for (int n = 0; !imap_peek(ps, ')'); n++) {
		struct imap_slice a;
		if (n > 0 && !imap_parse_sp(ps))
			return false;
		if (!imap_parse_char(ps, '\\') || !imap_parse_atom(ps, &a))
			return false;
		if (imap_slice_ieq(&a, "Sent"))
			*use_r |= STORE_SPECIAL_SENT;
		else if (imap_slice_ieq(&a, "Drafts"))
			*use_r |= STORE_SPECIAL_DRAFTS;
		else if (imap_slice_ieq(&a, "Trash"))
			*use_r |= STORE_SPECIAL_TRASH;
		else if (imap_slice_ieq(&a, "Junk"))
			*use_r |= STORE_SPECIAL_JUNK;
		else if (imap_slice_ieq(&a, "Archive"))
			*use_r |= STORE_SPECIAL_ARCHIVE;
		else
			*unknown_use_r = true;
	}
	ps->p++;
	return imap_parse_char(ps, ')');
}

void imap_cmd_create(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	uint32_t use = 0;
	bool unknown_use = false;
	char *name = imap_parse_mailbox_ex(s, tag, ps, true);

	if (name == NULL)
		return;
	if (imap_peek(ps, ' ')) {
		ps->p++;
		if (!parse_create_params(ps, &use, &unknown_use)) {
			imap_bad(s, tag, "Invalid CREATE parameters");
			free(name);
			return;
		}
	}
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "Unexpected CREATE arguments");
		free(name);
		return;
	}
	if (unknown_use) {
		/* RFC 6154 §3: USEATTR for special-use attributes we cannot honour. */
		imap_tagged(s, tag, "%s NO [USEATTR] Unsupported special-use attribute", tag);
		free(name);
		return;
	}
	mbox_submit(s, tag, MBOX_CREATE, name, NULL, use);
}

static void single_mailbox(struct imap_session *s, const char *tag, struct imap_parser *ps,
			   enum mbox_op op)
{
	char *name = imap_parse_mailbox(s, tag, ps);

	if (name == NULL)
		return;
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "Unexpected arguments");
		free(name);
		return;
	}
	mbox_submit(s, tag, op, name, NULL, 0);
}

void imap_cmd_delete(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	single_mailbox(s, tag, ps, MBOX_DELETE);
}

void imap_cmd_subscribe(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	single_mailbox(s, tag, ps, MBOX_SUBSCRIBE);
}

void imap_cmd_unsubscribe(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	single_mailbox(s, tag, ps, MBOX_UNSUBSCRIBE);
}

void imap_cmd_rename(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	char *from = imap_parse_mailbox(s, tag, ps);
	char *to;

	if (from == NULL)
		return;
	if (!imap_parse_sp(ps)) {
		imap_bad(s, tag, "RENAME expects two mailbox names");
		free(from);
		return;
	}
	to = imap_parse_mailbox_ex(s, tag, ps, true);
	if (to == NULL) {
		free(from);
		return;
	}
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "Unexpected RENAME arguments");
		free(from);
		free(to);
		return;
	}
	mbox_submit(s, tag, MBOX_RENAME, from, to, 0);
}
