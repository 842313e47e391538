/* SELECT, EXAMINE (RFC 9051 §6.3.2-6.3.3), CLOSE, UNSELECT (RFC 3691), CHECK (RFC 3501
 * §6.4.1), ENABLE (RFC 5161), and the account opening after login with the Trash/Junk
 * auto-expunge of [imap] autoexpunge_days. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

/* Expunges messages older than days (by internal date) from one mailbox. Worker thread. */
void imap_autoexpunge(struct store_account *acct, uint64_t mailbox_id, int64_t days)
{
	struct store_list_query q = { 0, 0, 0 };
	struct store_msg *msgs = NULL;
	size_t n = 0, nr = 0;
	struct store_uid_range *r;
	int64_t cutoff = time_wall_seconds() - days * 86400;

	if (days <= 0 || store_msg_list(acct, mailbox_id, &q, &msgs, &n, NULL) != STORE_OK)
		return;
	r = xmalloc((n + 1) * sizeof(*r));
	for (size_t i = 0; i < n; i++)
		if (msgs[i].internal_date < cutoff)
			r[nr].first = r[nr].last = msgs[i].uid, nr++;
	if (nr > 0) {
		uint32_t *uids = NULL;
		size_t count = 0;
		if (store_expunge(acct, mailbox_id, r, nr, false, &uids, &count, NULL) == STORE_OK)
			log_info("proto=imap msg=autoexpunge mailbox_id=%llu count=%zu",
				 (unsigned long long)mailbox_id, count);
		free(uids);
	}
	free(r);
	store_msg_list_free(&msgs, n);
}

/* ---------------- account opening after authentication ---------------- */

struct account_job {
	struct store *store;
	char *user;
	char *tag;
	int64_t autoexpunge_days;
	struct store_account *acct;
	enum store_error error;
};

static void account_work(void *arg)
{
	struct account_job *job = arg;
	struct store_mailbox_info *list = NULL;
	size_t n = 0;

	job->error = store_account_open(job->store, job->user, &job->acct, NULL);
	if (job->error != STORE_OK || job->autoexpunge_days <= 0)
		return;
	/* Documented in docs: Trash and Junk lose messages older than N days at login and at
	 * SELECT of those mailboxes. */
	if (store_mailbox_list(job->acct, &list, &n, NULL) != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++)
		if (list[i].special_use & (STORE_SPECIAL_TRASH | STORE_SPECIAL_JUNK))
			imap_autoexpunge(job->acct, list[i].id, job->autoexpunge_days);
	store_mailbox_list_free(&list, n);
}

static void account_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct account_job *job = arg;

	if (job->error != STORE_OK) {
		log_error("proto=imap user=%s msg=\"cannot open the mailbox store\" error=%s",
			  job->user, store_error_str(job->error));
		imap_reply(s, "%s NO [UNAVAILABLE] Mailbox store unavailable, try later", job->tag);
		imap_auth_session_end(s);
		s->state = IMAP_STATE_NOT_AUTHENTICATED;
	} else {
		struct buf caps;
		s->acct = job->acct;
		s->state = IMAP_STATE_AUTHENTICATED;
		buf_init(&caps);
		imap_capabilities(s, &caps);
		imap_reply(s, "%s OK [CAPABILITY %s] Logged in", job->tag, buf_cstr(&caps));
		buf_free(&caps);
	}
	free(job->user);
	free(job->tag);
	free(job);
	imap_command_done(s);
}

void imap_account_open(struct imap_session *s, const char *tag)
{
	struct account_job *job = xcalloc(1, sizeof(*job));

	job->store = s->deps->store;
	job->user = xstrdup(s->user);
	job->tag = xstrdup(tag);
	job->autoexpunge_days = s->deps->cfg->imap_autoexpunge_days;
	s->busy = true;
	net_conn_offload(s->conn, account_work, account_done, job);
}

/* ---------------- ENABLE ---------------- */

/* RFC 5161 §3.1: unknown capabilities are ignored; the ENABLED response lists what was
 * enabled by this command. */
void imap_cmd_enable(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct buf enabled;
	int count = 0;

	buf_init(&enabled);
	while (!imap_at_end(ps)) {
		struct imap_slice cap;
		if (count++ > 0 && !imap_parse_sp(ps))
			break;
		if (!imap_parse_atom(ps, &cap))
			break;
		if (imap_slice_ieq(&cap, "IMAP4rev2") && !s->enabled_rev2) {
			s->enabled_rev2 = true;
			buf_append_str(&enabled, " IMAP4rev2");
		} else if ((imap_slice_ieq(&cap, "UTF8=ACCEPT") || imap_slice_ieq(&cap, "UTF8=ONLY")) &&
			   !s->enabled_utf8 && imap_slice_ieq(&cap, "UTF8=ACCEPT")) {
			s->enabled_utf8 = true;
			buf_append_str(&enabled, " UTF8=ACCEPT");
		} else if (imap_slice_ieq(&cap, "CONDSTORE") && !s->enabled_condstore) {
			imap_condstore_enable(s);
			buf_append_str(&enabled, " CONDSTORE");
		} else if (imap_slice_ieq(&cap, "QRESYNC") && !s->enabled_qresync) {
			/* RFC 7162 §3.2.3: QRESYNC implies CONDSTORE. */
			imap_condstore_enable(s);
			s->enabled_qresync = true;
			buf_append_str(&enabled, " QRESYNC");
		}
	}
	if (count == 0 || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, "ENABLE expects capability names");
		buf_free(&enabled);
		return;
	}
	imap_reply(s, "* ENABLED%s", buf_cstr(&enabled));
	imap_tagged(s, tag, "%s OK ENABLE completed", tag);
	buf_free(&enabled);
}

/* ---------------- SELECT / EXAMINE ---------------- */

struct select_job {
	struct store_account *acct;
	char *tag;
	char *name;
	bool readonly;
	bool rev2;
	int64_t autoexpunge_days;
	struct imap_selected *sel;
	enum store_error error;
	struct store_err err;
	struct store_mailbox_info info;
	struct store_mailbox_status st;
	char *user;
	bool condstore;
	struct buf keywords; /* " kw1 kw2" */
	uint32_t first_unseen_msn;
	uint32_t recent;
	/* SELECT (QRESYNC (uidvalidity modseq [known-uids])), RFC 7162 §3.2.5. */
	bool qresync;
	uint32_t q_uidvalidity;
	uint64_t q_modseq;
	struct store_uid_range *q_known; /* NULL: 1:UIDNEXT-1 */
	size_t q_known_count;
	struct store_uid_range *vanished;
	size_t vanished_count;
	struct buf changed; /* the FETCH lines of messages changed since q_modseq */
};

static void keyword_collect(struct buf *out, const char *kws)
{
	const char *p = kws;

	while (p && *p) {
		size_t n = strcspn(p, " ");
		bool seen = false;
		const char *q = (const char *)out->data;
		size_t qlen = out->len;
		/* Linear membership test: at most LIMIT_KEYWORDS_PER_MAILBOX names. */
		for (size_t i = 0; q && i < qlen;) {
			size_t m = 0;
			i++; /* space */
			while (i + m < qlen && q[i + m] != ' ')
				m++;
			if (m == n && memcmp(q + i, p, n) == 0)
				seen = true;
			i += m;
		}
		if (!seen) {
			buf_append_byte(out, ' ');
			buf_append(out, p, n);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
}

/* RFC 7162 §3.2.5.1: what changed since the client's MODSEQ among the UIDs it knows, as if
 * it had sent UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED). The view is the
 * list just read, so msn i+1 is msgs[i]. */
static void select_qresync(struct select_job *job, const struct store_msg *msgs, size_t n)
{
	struct store_uid_range all = { 1, job->st.uidnext - 1 };
	const struct store_uid_range *known = job->q_known ? job->q_known : &all;
	size_t known_count = job->q_known ? job->q_known_count : 1;

	if (job->st.uidnext <= 1)
		return; /* never had a message: the known set is empty */
	if (imap_vanished_since(job->acct, job->info.id, job->q_modseq, known, known_count,
				job->st.uidnext - 1, &job->vanished,
				&job->vanished_count) != STORE_OK)
		job->vanished_count = 0;
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].modseq <= job->q_modseq ||
		    !imap_uid_in_ranges(msgs[i].uid, known, known_count))
			continue;
		buf_printf(&job->changed, "* %zu FETCH (UID %u FLAGS ", i + 1, msgs[i].uid);
		imap_append_flags(&job->changed, msgs[i].flags, msgs[i].keywords);
		buf_printf(&job->changed, " MODSEQ (%llu))\r\n", (unsigned long long)msgs[i].modseq);
	}
}

static void select_work(void *arg)
{
	struct select_job *job = arg;
	struct store_list_query q = { 0, 0, 0 };
	struct store_msg *msgs = NULL;
	size_t n = 0;

	job->error = store_mailbox_get(job->acct, job->name, &job->info, &job->err);
	if (job->error != STORE_OK)
		return;
	if (job->info.special_use & (STORE_SPECIAL_TRASH | STORE_SPECIAL_JUNK))
		imap_autoexpunge(job->acct, job->info.id, job->autoexpunge_days);
	store_mailbox_refresh(job->acct, job->info.id, NULL);
	job->sel->id = job->info.id;
	job->sel->uidvalidity = job->info.uidvalidity;
	/* Subscribe before listing: nothing committed after the list can be missed. */
	imap_feed_subscribe(NULL, job->acct, job->sel);
	job->error = store_mailbox_status(job->acct, job->name, &job->st, &job->err);
	if (job->error == STORE_OK)
		job->error = store_msg_list(job->acct, job->info.id, &q, &msgs, &n, &job->err);
	if (job->error != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		imap_view_add(job->sel, msgs[i].uid);
		if (!(msgs[i].flags & STORE_FLAG_SEEN) && job->first_unseen_msn == 0)
			job->first_unseen_msn = (uint32_t)job->sel->count;
		if (job->keywords.len < 16384)
			keyword_collect(&job->keywords, msgs[i].keywords);
	}
	/* IMAP4rev2 has no \Recent: its sessions neither see nor claim it. */
	if (!job->rev2) {
		/* The store counts the newest st.recent messages as not yet claimed. */
		uint32_t last = n > 0 ? msgs[n - 1].uid : job->st.uidnext - 1;
		uint32_t unclaimed = last + 1;
		if (job->st.recent > 0 && n > 0)
			unclaimed = job->st.recent >= n ? msgs[0].uid : msgs[n - job->st.recent].uid;
		imap_recent_select(job->acct, job->user, job->sel, last, unclaimed, !job->readonly);
		job->recent = imap_recent_count(job->sel);
	}
	if (job->qresync && job->q_uidvalidity == job->sel->uidvalidity)
		select_qresync(job, msgs, n);
	store_msg_list_free(&msgs, n);
}

static void select_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct select_job *job = arg;
	struct imap_selected *sel = job->sel;

	if (job->error != STORE_OK) {
		imap_selected_discard(&job->sel);
		imap_selected_free(s); /* drops pending events of the failed selection */
		s->sel_generation++;
		if (job->error == STORE_ERR_NOT_FOUND)
			imap_reply(s, "%s NO [NONEXISTENT] Mailbox does not exist", job->tag);
		else
			imap_reply(s, "%s NO %s%s", job->tag, imap_store_code(job->error),
				   job->err.text[0] ? job->err.text : store_error_str(job->error));
		s->state = IMAP_STATE_AUTHENTICATED;
	} else {
		struct buf out;
		const char *kw = buf_cstr(&job->keywords);

		s->sel = sel;
		job->sel = NULL;
		imap_keywords_collect(&sel->keywords, buf_cstr(&job->keywords));
		s->state = IMAP_STATE_SELECTED;
		buf_init(&out);
		buf_printf(&out, "* %zu EXISTS\r\n", sel->count);
		if (!s->enabled_rev2)
			buf_printf(&out, "* %u RECENT\r\n", job->recent);
		buf_printf(&out,
			   "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s)\r\n"
			   "* OK [PERMANENTFLAGS (%s)] Flags permitted\r\n"
			   "* OK [UIDVALIDITY %u] UIDs valid\r\n"
			   "* OK [UIDNEXT %u] Predicted next UID\r\n",
			   kw, job->readonly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*",
			   sel->uidvalidity, job->st.uidnext);
		if (!s->enabled_rev2 && job->first_unseen_msn > 0)
			buf_printf(&out, "* OK [UNSEEN %u] First unseen\r\n", job->first_unseen_msn);
		/* RFC 7162 §3.1.2.1: modseqs are persistent, so every SELECT says HIGHESTMODSEQ. */
		buf_printf(&out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
			   (unsigned long long)job->st.highestmodseq);
		/* RFC 8474 §4.1 */
		buf_append_str(&out, "* OK [MAILBOXID (");
		imap_append_mailboxid(&out, job->st.id, sel->uidvalidity);
		buf_append_str(&out, ")] Ok\r\n");
		if (s->enabled_rev2) {
			/* RFC 9051 §6.3.2: a LIST response with the mailbox name. */
			buf_append_str(&out, "* LIST () \"/\" ");
			imap_append_mailbox(s, &out, sel->name);
			buf_append_str(&out, "\r\n");
		}
		if (job->vanished_count > 0) {
			buf_append_str(&out, "* VANISHED (EARLIER) ");
			imap_append_ranges(&out, job->vanished, job->vanished_count);
			buf_append_str(&out, "\r\n");
		}
		buf_append(&out, job->changed.data, job->changed.len);
		net_conn_write(s->conn, out.data, out.len);
		buf_free(&out);
		imap_tagged(s, job->tag, "%s OK [%s] %s completed", job->tag,
			    job->readonly ? "READ-ONLY" : "READ-WRITE",
			    job->readonly ? "EXAMINE" : "SELECT");
	}
	store_mailbox_info_clear(&job->info);
	buf_free(&job->keywords);
	buf_free(&job->changed);
	free(job->q_known);
	free(job->vanished);
	free(job->tag);
	free(job->name);
	free(job->user);
	free(job);
	imap_command_done(s);
}

/* UIDs of a QRESYNC parameter: a sequence-set without "*" (RFC 7162 §7). */
static bool parse_known_uids(struct imap_parser *ps, struct store_uid_range **r_r, size_t *n_r)
{
	struct imap_seqset set;

	if (!imap_parse_seqset(ps, &set))
		return false;
	for (size_t i = 0; i < set.count; i++) {
		if (set.r[i].first == UINT32_MAX || set.r[i].last == UINT32_MAX) {
			imap_seqset_free(&set);
			ps->error = "\"*\" is not allowed in QRESYNC UIDs";
			return false;
		}
	}
	*r_r = set.r;
	*n_r = set.count;
	return true;
}

/* "QRESYNC (uidvalidity modseq [known-uids] [(seq-match-data)])". The sequence match data is
 * checked and not used: the expunge history or the known UIDs answer without it. */
static bool parse_qresync(struct imap_parser *ps, struct select_job *job)
{
	uint32_t v;

	if (!imap_parse_sp(ps) || !imap_peek(ps, '('))
		return false;
	ps->p++;
	if (!imap_parse_number(ps, &v) || v == 0 || !imap_parse_sp(ps) ||
	    !imap_parse_modseq(ps, &job->q_modseq)) {
		ps->error = "QRESYNC expects (uidvalidity modseq [known-uids])";
		return false;
	}
	job->q_uidvalidity = v;
	if (imap_peek(ps, ' ')) {
		ps->p++;
		if (!imap_peek(ps, '(') &&
		    !parse_known_uids(ps, &job->q_known, &job->q_known_count))
			return false;
		if (imap_peek(ps, ' '))
			ps->p++;
		if (imap_peek(ps, '(')) {
			struct store_uid_range *r = NULL;
			size_t n = 0;
			bool ok;

			ps->p++;
			ok = parse_known_uids(ps, &r, &n);
			free(r);
			ok = ok && imap_parse_sp(ps) && parse_known_uids(ps, &r, &n);
			if (ok)
				free(r);
			if (!ok || !imap_peek(ps, ')'))
				return false;
			ps->p++;
		}
	}
	if (!imap_peek(ps, ')'))
		return false;
	ps->p++;
	job->qresync = true;
	return true;
}

/* select-params (RFC 4466): " (CONDSTORE)" and " (QRESYNC (...))", RFC 7162 §3.1.8, §3.2.5. */
static bool parse_select_params(struct imap_session *s, struct imap_parser *ps,
				struct select_job *job)
{
	if (!imap_peek(ps, ' '))
		return true;
	ps->p++;
	if (!imap_peek(ps, '('))
		return false;
	ps->p++;
	for (int n = 0; !imap_peek(ps, ')'); n++) {
		struct imap_slice a;

		if ((n > 0 && !imap_parse_sp(ps)) || n > 4 || !imap_parse_atom(ps, &a))
			return false;
		if (imap_slice_ieq(&a, "CONDSTORE")) {
			job->condstore = true;
		} else if (imap_slice_ieq(&a, "QRESYNC") && !job->qresync) {
			if (!s->enabled_qresync) {
				ps->error = "QRESYNC needs ENABLE QRESYNC first";
				return false;
			}
			if (!parse_qresync(ps, job))
				return false;
		} else {
			ps->error = "Unknown SELECT parameter";
			return false;
		}
	}
	ps->p++;
	return true;
}

static void select_common(struct imap_session *s, const char *tag, struct imap_parser *ps,
			  bool readonly)
{
	struct select_job *job;
	char *name = imap_parse_mailbox(s, tag, ps);

	if (name == NULL)
		return;
	job = xcalloc(1, sizeof(*job));
	buf_init(&job->keywords);
	buf_init(&job->changed);
	/* Every parameter is checked before anything changes (RFC 7162 §3.2.5). */
	if (!parse_select_params(s, ps, job) || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid SELECT arguments");
		buf_free(&job->keywords);
		buf_free(&job->changed);
		free(job->q_known);
		free(job);
		free(name);
		return;
	}
	if (job->condstore)
		imap_condstore_enable(s);
	if (s->sel != NULL) {
		imap_selected_free(s);
		s->state = IMAP_STATE_AUTHENTICATED;
		/* RFC 9051 §7.1, RFC 7162 §3.2.11 CLOSED: the previous mailbox is no longer
		 * selected (its VANISHED and FETCH end here). */
		if (s->enabled_rev2 || s->enabled_qresync)
			imap_reply(s, "* OK [CLOSED] Previous mailbox closed");
	}
	job->acct = s->acct;
	job->tag = xstrdup(tag);
	job->name = name;
	job->readonly = readonly;
	job->rev2 = s->enabled_rev2;
	job->user = xstrdup(s->user);
	job->autoexpunge_days = s->deps->cfg->imap_autoexpunge_days;
	job->sel = imap_selected_new(s, 0, name, 0, readonly);
	s->busy = true;
	net_conn_offload(s->conn, select_work, select_done, job);
}

void imap_cmd_select(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	select_common(s, tag, ps, false);
}

void imap_cmd_examine(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	select_common(s, tag, ps, true);
}

/* ---------------- CLOSE / UNSELECT / CHECK ---------------- */

struct close_job {
	struct store_account *acct;
	uint64_t id;
	char *tag;
};

static void close_work(void *arg)
{
	struct close_job *job = arg;
	uint32_t *uids = NULL;
	size_t n = 0;

	/* RFC 9051 §6.4.1: CLOSE expunges silently; a failure does not change the result. */
	store_expunge(job->acct, job->id, NULL, 0, true, &uids, &n, NULL);
	free(uids);
}

static void close_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct close_job *job = arg;

	imap_reply(s, "%s OK CLOSE completed", job->tag);
	free(job->tag);
	free(job);
	imap_command_done(s);
}

void imap_cmd_close(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	bool readonly;
	uint64_t id;

	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "CLOSE takes no arguments");
		return;
	}
	readonly = s->sel->readonly;
	id = s->sel->id;
	imap_selected_free(s);
	s->state = IMAP_STATE_AUTHENTICATED;
	if (readonly) {
		imap_reply(s, "%s OK CLOSE completed", tag);
		return;
	}
	struct close_job *job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->id = id;
	job->tag = xstrdup(tag);
	s->busy = true;
	net_conn_offload(s->conn, close_work, close_done, job);
}

void imap_cmd_unselect(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "UNSELECT takes no arguments");
		return;
	}
	imap_selected_free(s);
	s->state = IMAP_STATE_AUTHENTICATED;
	imap_reply(s, "%s OK UNSELECT completed", tag);
}

void imap_cmd_check(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "CHECK takes no arguments");
		return;
	}
	/* Every change is durable when acknowledged; CHECK only reports updates. */
	imap_tagged(s, tag, "%s OK CHECK completed", tag);
}
