/* STORE and UID STORE (RFC 9051 §6.4.6): FLAGS, +FLAGS, -FLAGS and their .SILENT forms, and
 * the UNCHANGEDSINCE modifier of CONDSTORE (RFC 7162 §3.1.3). */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

struct store_job {
	struct store_account *acct;
	uint64_t mailbox_id;
	char *tag;
	bool silent;
	bool uid;
	bool conditional;        /* UNCHANGEDSINCE given */
	bool with_modseq;        /* CONDSTORE is on: FETCH responses carry MODSEQ */
	uint64_t unchangedsince;
	enum store_flag_op op;
	uint32_t flags;
	char **kw;
	size_t kw_count;
	struct store_uid_range *r;
	size_t nr;
	struct store_msg *msgs; /* flags after the change, for the FETCH responses */
	struct store_flag_result res;
	size_t count;
	enum store_error error;
	struct store_err err;
};

static void store_work(void *arg)
{
	struct store_job *job = arg;
	job->error = store_flags_update(job->acct, job->mailbox_id, job->r, job->nr, job->op,
					job->flags, (const char *const *)job->kw, job->kw_count,
					job->unchangedsince, &job->res, &job->err);
	if (job->error != STORE_OK || job->silent)
		return;
	/* RFC 9051 §6.4.6: report FLAGS of every message in the set, changed or not. */
	struct store_list_query q = { job->r[0].first, 0, 0 };
	for (size_t i = 0; i < job->nr; i++) {
		if (job->r[i].first < q.uid_min)
			q.uid_min = job->r[i].first;
		if (job->r[i].last > q.uid_max)
			q.uid_max = job->r[i].last;
	}
	store_msg_list(job->acct, job->mailbox_id, &q, &job->msgs, &job->count, NULL);
}

static bool failed(const struct store_job *job, uint32_t uid)
{
	for (size_t i = 0; i < job->res.failed_count; i++)
		if (job->res.failed_uids[i] == uid)
			return true;
	return false;
}

/* The tagged OK; with [MODIFIED set] (MSNs, or UIDs for UID STORE) for the messages that
 * failed the UNCHANGEDSINCE test. */
static void store_reply_modified(struct imap_session *s, struct store_job *job)
{
	struct buf set;
	size_t n = 0;

	if (job->res.failed_count == 0) {
		imap_tagged(s, job->tag, "%s OK STORE completed", job->tag);
		return;
	}
	uint32_t *nums = xmalloc(job->res.failed_count * sizeof(uint32_t));

	for (size_t i = 0; i < job->res.failed_count; i++) {
		uint32_t v = job->uid ? job->res.failed_uids[i]
				      : imap_msn_of(s->sel, job->res.failed_uids[i]);
		if (v != 0)
			nums[n++] = v;
	}
	buf_init(&set);
	imap_append_uid_set(&set, nums, n);
	free(nums);
	if (n == 0)
		imap_tagged(s, job->tag, "%s OK STORE completed", job->tag);
	else
		imap_tagged(s, job->tag, "%s OK [MODIFIED %s] Conditional STORE completed",
			    job->tag, buf_cstr(&set));
	buf_free(&set);
}

static void store_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct store_job *job = arg;

	for (size_t i = 0; i < job->res.changed_count; i++)
		imap_pending_forget_flags(s, job->res.changed[i].uid, job->res.changed[i].flags,
					  job->res.changed[i].keywords);
	if (job->error != STORE_OK) {
		imap_store_error(s, job->tag, job->error, &job->err);
	} else {
		struct buf out;
		buf_init(&out);
		for (size_t i = 0; i < job->count; i++) {
			uint32_t msn;
			if (!imap_uid_in_ranges(job->msgs[i].uid, job->r, job->nr) ||
			    failed(job, job->msgs[i].uid))
				continue;
			msn = imap_msn_of(s->sel, job->msgs[i].uid);
			if (msn == 0)
				continue;
			/* Written at once, so ahead of every FETCH in out. */
			imap_keywords_announce(s, job->msgs[i].keywords);
			buf_printf(&out, "* %u FETCH (UID %u FLAGS ", msn, job->msgs[i].uid);
			imap_append_flags_recent(&out, job->msgs[i].flags, job->msgs[i].keywords,
						 !s->enabled_rev2 &&
							 imap_recent_is(s->sel, job->msgs[i].uid));
			if (job->with_modseq)
				buf_printf(&out, " MODSEQ (%llu)",
					   (unsigned long long)job->msgs[i].modseq);
			buf_append_str(&out, ")\r\n");
		}
		/* RFC 7162 §3.1.3: even .SILENT reports the new MODSEQ of what changed. */
		for (size_t i = 0; job->silent && job->with_modseq && i < job->res.changed_count; i++) {
			uint32_t msn = imap_msn_of(s->sel, job->res.changed[i].uid);
			if (msn != 0)
				buf_printf(&out, "* %u FETCH (UID %u MODSEQ (%llu))\r\n", msn,
					   job->res.changed[i].uid,
					   (unsigned long long)job->res.changed[i].modseq);
		}
		net_conn_write(s->conn, out.data, out.len);
		buf_free(&out);
		store_reply_modified(s, job);
	}
	store_flag_result_clear(&job->res);
	store_msg_list_free(&job->msgs, job->count);
	imap_keywords_free(&job->kw, &job->kw_count);
	free(job->r);
	free(job->tag);
	free(job);
	imap_command_done(s);
}

static void store_all_modified(struct imap_session *s, const char *tag, bool uid,
			       const struct store_uid_range *r, size_t nr)
{
	uint32_t *nums = xmalloc((s->sel->count ? s->sel->count : 1) * sizeof(uint32_t));
	size_t n = 0;
	struct buf set;

	for (size_t i = 0; i < s->sel->count; i++)
		if (imap_uid_in_ranges(s->sel->uids[i], r, nr))
			nums[n++] = uid ? s->sel->uids[i] : (uint32_t)i + 1;
	buf_init(&set);
	imap_append_uid_set(&set, nums, n);
	if (n == 0)
		imap_tagged(s, tag, "%s OK STORE completed", tag);
	else
		imap_tagged(s, tag, "%s OK [MODIFIED %s] Conditional STORE completed", tag,
			    buf_cstr(&set));
	buf_free(&set);
	free(nums);
}

void imap_store_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid)
{
	struct imap_seqset set;
	struct imap_slice a;
	struct store_job *job;
	enum store_flag_op op = STORE_FLAGS_SET;
	bool silent = false, conditional = false;
	uint64_t unchangedsince = 0;
	uint32_t flags = 0;
	char **kw = NULL;
	size_t kw_count = 0;
	struct store_uid_range *r = NULL;
	size_t nr = 0;

	if (!imap_parse_seqset(ps, &set)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid sequence set");
		return;
	}
	if (!imap_parse_sp(ps))
		goto bad;
	if (imap_peek(ps, '(')) {
		/* store-modifiers (RFC 4466): only UNCHANGEDSINCE is known. */
		ps->p++;
		if (!imap_parse_atom(ps, &a) || !imap_slice_ieq(&a, "UNCHANGEDSINCE")) {
			ps->error = "Unknown STORE modifier";
			goto bad;
		}
		if (!imap_parse_sp(ps) || !imap_parse_modseq(ps, &unchangedsince) ||
		    !imap_parse_char(ps, ')') || !imap_parse_sp(ps))
			goto bad;
		conditional = true;
	}
	if (imap_peek(ps, '+') || imap_peek(ps, '-')) {
		op = *ps->p == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		ps->p++;
	}
	if (!imap_parse_atom(ps, &a))
		goto bad;
	if (imap_slice_ieq(&a, "FLAGS.SILENT"))
		silent = true;
	else if (!imap_slice_ieq(&a, "FLAGS")) {
		ps->error = "Expected FLAGS, +FLAGS or -FLAGS";
		goto bad;
	}
	if (!imap_parse_sp(ps))
		goto bad;
	if (imap_peek(ps, '(')) {
		if (!imap_parse_flag_list(ps, &flags, &kw, &kw_count, true))
			goto bad;
	} else {
		/* flag *(SP flag) without parentheses: wrap it for the list parser. */
		struct buf tmp;
		struct imap_parser sub;
		uint8_t *start = ps->p;
		while (ps->p < ps->end && *ps->p != '\r' && *ps->p != '\n')
			ps->p++;
		buf_init(&tmp);
		buf_append_byte(&tmp, '(');
		buf_append(&tmp, start, (size_t)(ps->p - start));
		buf_append_byte(&tmp, ')');
		imap_parser_init(&sub, tmp.data, tmp.len);
		bool ok = imap_parse_flag_list(&sub, &flags, &kw, &kw_count, true) &&
			  imap_at_end(&sub);
		buf_free(&tmp);
		if (!ok) {
			ps->error = sub.error ? sub.error : "Invalid flags";
			goto bad;
		}
	}
	if (!imap_parse_crlf(ps))
		goto bad;
	if (uid) {
		imap_seqset_uids(s->sel, &set, &r, &nr);
	} else if (!imap_seqset_msn_to_uids(s->sel, &set, &r, &nr)) {
		imap_seqset_free(&set);
		imap_keywords_free(&kw, &kw_count);
		imap_bad(s, tag, "Invalid message sequence number");
		return;
	}
	imap_seqset_free(&set);
	if (conditional)
		imap_condstore_enable(s); /* RFC 7162 §3.1 */
	if (s->sel->readonly) {
		free(r);
		imap_keywords_free(&kw, &kw_count);
		imap_tagged(s, tag, "%s NO [READ-ONLY] Mailbox is read-only", tag);
		return;
	}
	if (conditional && unchangedsince == 0) {
		/* Every message has a MODSEQ of at least 1: all fail (RFC 7162 §3.1.3), and the
		 * store treats 0 as "no condition", so the answer is given here. */
		store_all_modified(s, tag, uid, r, nr);
		free(r);
		imap_keywords_free(&kw, &kw_count);
		return;
	}
	if (nr == 0) {
		free(r);
		imap_keywords_free(&kw, &kw_count);
		imap_tagged(s, tag, "%s OK STORE completed", tag);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->mailbox_id = s->sel->id;
	job->tag = xstrdup(tag);
	job->silent = silent;
	job->uid = uid;
	job->conditional = conditional;
	job->unchangedsince = unchangedsince;
	job->with_modseq = s->enabled_condstore;
	job->op = op;
	job->flags = flags;
	job->kw = kw;
	job->kw_count = kw_count;
	job->r = r;
	job->nr = nr;
	s->busy = true;
	net_conn_offload(s->conn, store_work, store_done, job);
	return;
bad:
	imap_seqset_free(&set);
	imap_keywords_free(&kw, &kw_count);
	imap_bad(s, tag, ps->error ? ps->error : "Invalid STORE arguments");
}

void imap_cmd_store(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_store_run(s, tag, ps, false);
}
