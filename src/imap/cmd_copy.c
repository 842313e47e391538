/* COPY and MOVE (RFC 9051 §6.4.7-6.4.8, RFC 6851) with UIDPLUS COPYUID (RFC 4315), EXPUNGE
 * and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1), and the UID command prefix (§6.4.9). */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"
#include "sort.h"

struct copy_job {
	struct store_account *acct;
	uint64_t src_id;
	char *tag;
	char *dst;
	bool move;
	bool expunge_only_deleted;
	struct store_uid_range *r;
	size_t nr;
	struct store_uid_map map;
	uint32_t *expunged;
	size_t expunged_count;
	enum store_error error;
	struct store_err err;
};

static void copy_job_free(struct copy_job *job)
{
	store_uid_map_clear(&job->map);
	free(job->expunged);
	free(job->r);
	free(job->dst);
	free(job->tag);
	free(job);
}

static void copy_work(void *arg)
{
	struct copy_job *job = arg;
	struct store_mailbox_info info;

	job->error = store_mailbox_get(job->acct, job->dst, &info, &job->err);
	if (job->error != STORE_OK)
		return;
	job->error = store_copy(job->acct, job->src_id, job->r, job->nr, info.id, job->move,
				&job->map, &job->err);
	store_mailbox_info_clear(&info);
}

static void copy_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct copy_job *job = arg;
	const char *what = job->move ? "MOVE" : "COPY";

	if (job->error == STORE_ERR_NOT_FOUND) {
		/* RFC 9051 §6.4.7: TRYCREATE when the target does not exist. */
		imap_tagged(s, job->tag, "%s NO [TRYCREATE] Target mailbox does not exist", job->tag);
	} else if (job->error != STORE_OK) {
		imap_store_error(s, job->tag, job->error, &job->err);
	} else if (job->map.count == 0) {
		imap_tagged(s, job->tag, "%s OK %s completed; no messages", job->tag, what);
	} else {
		struct buf code;
		buf_init(&code);
		buf_printf(&code, "COPYUID %u ", job->map.dst_uidvalidity);
		imap_append_uid_set(&code, job->map.src_uids, job->map.count);
		buf_append_byte(&code, ' ');
		imap_append_uid_set(&code, job->map.dst_uids, job->map.count);
		if (job->move) {
			/* RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs. */
			imap_reply(s, "* OK [%s] Moved", buf_cstr(&code));
			imap_view_expunge_many(s, job->map.src_uids, job->map.count);
			imap_tagged(s, job->tag, "%s OK MOVE completed", job->tag);
		} else {
			imap_tagged(s, job->tag, "%s OK [%s] COPY completed", job->tag,
				    buf_cstr(&code));
		}
		buf_free(&code);
	}
	copy_job_free(job);
	imap_command_done(s);
}

void imap_copy_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid,
		   bool move)
{
	struct imap_seqset set;
	struct copy_job *job;
	char *dst;
	struct store_uid_range *r = NULL;
	size_t nr = 0;

	if (!imap_parse_seqset(ps, &set)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid sequence set");
		return;
	}
	if (!imap_parse_sp(ps)) {
		imap_seqset_free(&set);
		imap_bad(s, tag, "Expected a mailbox name");
		return;
	}
	dst = imap_parse_mailbox(s, tag, ps);
	if (dst == NULL) {
		imap_seqset_free(&set);
		return;
	}
	if (!imap_parse_crlf(ps)) {
		imap_seqset_free(&set);
		free(dst);
		imap_bad(s, tag, "Unexpected arguments");
		return;
	}
	if (uid) {
		imap_seqset_uids(s->sel, &set, &r, &nr);
	} else if (!imap_seqset_msn_to_uids(s->sel, &set, &r, &nr)) {
		imap_seqset_free(&set);
		free(dst);
		imap_bad(s, tag, "Invalid message sequence number");
		return;
	}
	imap_seqset_free(&set);
	if (move && s->sel->readonly) {
		free(r);
		free(dst);
		imap_tagged(s, tag, "%s NO [READ-ONLY] Mailbox is read-only", tag);
		return;
	}
	if (nr == 0) {
		free(r);
		free(dst);
		imap_tagged(s, tag, "%s OK %s completed; no messages", tag, move ? "MOVE" : "COPY");
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->src_id = s->sel->id;
	job->tag = xstrdup(tag);
	job->dst = dst;
	job->move = move;
	job->r = r;
	job->nr = nr;
	s->busy = true;
	net_conn_offload(s->conn, copy_work, copy_done, job);
}

void imap_cmd_copy(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_copy_run(s, tag, ps, false, false);
}

void imap_cmd_move(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_copy_run(s, tag, ps, false, true);
}

/* ---------------- EXPUNGE ---------------- */

static void expunge_work(void *arg)
{
	struct copy_job *job = arg;

	job->error = store_expunge(job->acct, job->src_id, job->r, job->nr, true, &job->expunged,
				   &job->expunged_count, &job->err);
}

static void expunge_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct copy_job *job = arg;

	if (job->error != STORE_OK) {
		imap_store_error(s, job->tag, job->error, &job->err);
	} else {
		imap_view_expunge_many(s, job->expunged, job->expunged_count);
		imap_tagged(s, job->tag, "%s OK EXPUNGE completed", job->tag);
	}
	copy_job_free(job);
	imap_command_done(s);
}

void imap_expunge_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid)
{
	struct copy_job *job;
	struct store_uid_range *r = NULL;
	size_t nr = 0;

	if (uid) {
		struct imap_seqset set;
		if (!imap_parse_seqset(ps, &set)) {
			imap_bad(s, tag, ps->error ? ps->error : "Invalid sequence set");
			return;
		}
		imap_seqset_uids(s->sel, &set, &r, &nr);
		imap_seqset_free(&set);
	}
	if (!imap_parse_crlf(ps)) {
		free(r);
		imap_bad(s, tag, "Unexpected EXPUNGE arguments");
		return;
	}
	if (s->sel->readonly) {
		free(r);
		imap_tagged(s, tag, "%s NO [READ-ONLY] Mailbox is read-only", tag);
		return;
	}
	if (uid && nr == 0) {
		imap_tagged(s, tag, "%s OK EXPUNGE completed", tag);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->src_id = s->sel->id;
	job->tag = xstrdup(tag);
	job->r = r;
	job->nr = nr;
	s->busy = true;
	net_conn_offload(s->conn, expunge_work, expunge_done, job);
}

void imap_cmd_expunge(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_expunge_run(s, tag, ps, false);
}

/* ---------------- UID ---------------- */

void imap_cmd_uid(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_slice cmd;

	if (!imap_parse_atom(ps, &cmd) || !imap_parse_sp(ps)) {
		imap_bad(s, tag, "UID expects a command");
		return;
	}
	/* RFC 9051 §7.5.1: EXPUNGE responses are allowed during UID commands. */
	s->expunge_ok = true;
	if (imap_slice_ieq(&cmd, "FETCH"))
		imap_fetch_run(s, tag, ps, true);
	else if (imap_slice_ieq(&cmd, "STORE"))
		imap_store_run(s, tag, ps, true);
	else if (imap_slice_ieq(&cmd, "SEARCH"))
		imap_search_run(s, tag, ps, true);
	else if (imap_slice_ieq(&cmd, "SORT"))
		imap_sort_run(s, tag, ps, true);
	else if (imap_slice_ieq(&cmd, "THREAD"))
		imap_thread_run(s, tag, ps, true);
	else if (imap_slice_ieq(&cmd, "COPY"))
		imap_copy_run(s, tag, ps, true, false);
	else if (imap_slice_ieq(&cmd, "MOVE"))
		imap_copy_run(s, tag, ps, true, true);
	else if (imap_slice_ieq(&cmd, "EXPUNGE"))
		imap_expunge_run(s, tag, ps, true);
	else
		imap_bad(s, tag, "Unknown UID command");
}
