/* LIST with RFC 5258 LIST-EXTENDED selection and return options, RFC 5819 LIST-STATUS,
 * RFC 3348 CHILDREN and RFC 6154 SPECIAL-USE attributes; LSUB (RFC 3501 §6.3.9); NAMESPACE
 * (RFC 2342); STATUS (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 9208 DELETED-STORAGE). Hierarchy separator is "/". */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

enum {
	STATUS_MESSAGES = 1 << 0,
	STATUS_UIDNEXT = 1 << 1,
	STATUS_UIDVALIDITY = 1 << 2,
	STATUS_UNSEEN = 1 << 3,
	STATUS_DELETED = 1 << 4,
	STATUS_SIZE = 1 << 5,
	STATUS_RECENT = 1 << 6,
	STATUS_HIGHESTMODSEQ = 1 << 7, /* RFC 7162 §3.1.6 */
	STATUS_MAILBOXID = 1 << 8,     /* RFC 8474 §4.2 */
	STATUS_DELETED_STORAGE = 1 << 9, /* RFC 9208 §4.1.4 */
};

struct status_items {
	unsigned order[11]; /* items in the order asked */
	size_t count;
};

static const struct {
	const char *name;
	unsigned bit;
} status_names[] = {
	{ "MESSAGES", STATUS_MESSAGES }, { "UIDNEXT", STATUS_UIDNEXT },
	{ "UIDVALIDITY", STATUS_UIDVALIDITY }, { "UNSEEN", STATUS_UNSEEN },
	{ "DELETED", STATUS_DELETED }, { "SIZE", STATUS_SIZE }, { "RECENT", STATUS_RECENT },
	{ "HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ }, { "MAILBOXID", STATUS_MAILBOXID },
	{ "DELETED-STORAGE", STATUS_DELETED_STORAGE },
};

static bool parse_status_items(struct imap_parser *ps, struct status_items *it)
{
	it->count = 0;
	if (!imap_parse_char(ps, '('))
		return false;
	while (!imap_peek(ps, ')')) {
		struct imap_slice a;
		bool found = false;
		if (it->count > 0 && !imap_parse_sp(ps))
			return false;
		if (!imap_parse_atom(ps, &a))
			return false;
		for (size_t i = 0; i < ARRAY_LEN(status_names); i++) {
			if (imap_slice_ieq(&a, status_names[i].name)) {
				found = true;
				if (it->count < ARRAY_LEN(it->order))
					it->order[it->count++] = status_names[i].bit;
			}
		}
		if (!found) {
			ps->error = "Unknown STATUS item";
			return false;
		}
	}
	ps->p++;
	return it->count > 0;
}

/* Worker: one STATUS line for name into out. Returns the store error. */
/* RFC 3501 §6.3.10 RECENT: while a session of this process has the mailbox selected, what
 * no session claimed (recent.c); otherwise the store's count. */
static uint32_t status_recent(struct store_account *acct, const char *user,
			      const struct store_mailbox_status *st)
{
	struct store_list_query q = { 0, 0, 0 };
	struct store_msg *msgs = NULL;
	size_t n = 0;

	if (!imap_recent_unclaimed_from(user, st->id, st->uidvalidity, &q.uid_min))
		return st->recent;
	if (q.uid_min >= st->uidnext ||
	    store_msg_list(acct, st->id, &q, &msgs, &n, NULL) != STORE_OK)
		return 0;
	store_msg_list_free(&msgs, n);
	return (uint32_t)n;
}

static enum store_error status_line(struct store_account *acct, const char *user,
				    const char *name, const struct status_items *it, bool utf8,
				    struct buf *out, struct store_err *err)
{
	struct store_mailbox_status st;
	uint32_t deleted = 0;
	uint64_t deleted_size = 0; /* what an EXPUNGE would free */
	enum store_error e = store_mailbox_status(acct, name, &st, err);
	bool want_deleted = false;

	if (e != STORE_OK)
		return e;
	for (size_t i = 0; i < it->count; i++)
		want_deleted |= it->order[i] == STATUS_DELETED ||
				it->order[i] == STATUS_DELETED_STORAGE;
	if (want_deleted) {
		struct store_list_query q = { 0, 0, 0 };
		struct store_msg *msgs = NULL;
		size_t n = 0;
		e = store_msg_list(acct, st.id, &q, &msgs, &n, err);
		if (e != STORE_OK)
			return e;
		for (size_t i = 0; i < n; i++) {
			if ((msgs[i].flags & STORE_FLAG_DELETED) == 0)
				continue;
			deleted++;
			deleted_size += msgs[i].size;
		}
		store_msg_list_free(&msgs, n);
	}
	buf_append_str(out, "* STATUS ");
	imap_append_mbox(out, name, utf8);
	buf_append_str(out, " (");
	for (size_t i = 0; i < it->count; i++) {
		if (i > 0)
			buf_append_byte(out, ' ');
		switch (it->order[i]) {
		case STATUS_MESSAGES:
			buf_printf(out, "MESSAGES %u", st.messages);
			break;
		case STATUS_UIDNEXT:
			buf_printf(out, "UIDNEXT %u", st.uidnext);
			break;
		case STATUS_UIDVALIDITY:
			buf_printf(out, "UIDVALIDITY %u", st.uidvalidity);
			break;
		case STATUS_UNSEEN:
			buf_printf(out, "UNSEEN %u", st.unseen);
			break;
		case STATUS_DELETED:
			buf_printf(out, "DELETED %u", deleted);
			break;
		case STATUS_SIZE:
			buf_printf(out, "SIZE %llu", (unsigned long long)st.size);
			break;
		case STATUS_DELETED_STORAGE:
			buf_printf(out, "DELETED-STORAGE %llu", (unsigned long long)deleted_size);
			break;
		case STATUS_RECENT:
			buf_printf(out, "RECENT %u", status_recent(acct, user, &st));
			break;
		case STATUS_HIGHESTMODSEQ:
			buf_printf(out, "HIGHESTMODSEQ %llu", (unsigned long long)st.highestmodseq);
			break;
		case STATUS_MAILBOXID:
			buf_append_str(out, "MAILBOXID (");
			imap_append_mailboxid(out, st.id, st.uidvalidity);
			buf_append_byte(out, ')');
			break;
		}
	}
	buf_append_str(out, ")\r\n");
	return STORE_OK;
}

/* ---------------- STATUS ---------------- */

struct status_job {
	struct store_account *acct;
	const char *user; /* the session's, which outlives the job */
	char *tag;
	char *name;
	bool utf8;
	struct status_items items;
	struct buf out;
	enum store_error error;
	struct store_err err;
};

static void status_work(void *arg)
{
	struct status_job *job = arg;

	job->error = status_line(job->acct, job->user, job->name, &job->items, job->utf8, &job->out, &job->err);
}

static void status_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct status_job *job = arg;

	if (job->error == STORE_OK) {
		net_conn_write(s->conn, job->out.data, job->out.len);
		imap_tagged(s, job->tag, "%s OK STATUS completed", job->tag);
	} else if (job->error == STORE_ERR_NOT_FOUND) {
		imap_tagged(s, job->tag, "%s NO [NONEXISTENT] Mailbox does not exist", job->tag);
	} else {
		imap_store_error(s, job->tag, job->error, &job->err);
	}
	buf_free(&job->out);
	free(job->tag);
	free(job->name);
	free(job);
	imap_command_done(s);
}

void imap_cmd_status(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct status_job *job;
	struct status_items items;
	char *name = imap_parse_mailbox(s, tag, ps);

	if (name == NULL)
		return;
	if (!imap_parse_sp(ps) || !parse_status_items(ps, &items) || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid STATUS arguments");
		free(name);
		return;
	}
	for (size_t i = 0; i < items.count; i++)
		if (items.order[i] == STATUS_HIGHESTMODSEQ)
			imap_condstore_enable(s); /* RFC 7162 §3.1 */
	job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->user = s->user;
	job->tag = xstrdup(tag);
	job->name = name;
	job->utf8 = s->enabled_utf8;
	job->items = items;
	buf_init(&job->out);
	s->busy = true;
	net_conn_offload(s->conn, status_work, status_done, job);
}

/* ---------------- LIST / LSUB ---------------- */

enum {
	SEL_SUBSCRIBED = 1 << 0,
	SEL_RECURSIVE = 1 << 1,
	SEL_SPECIAL_USE = 1 << 2,
	RET_SUBSCRIBED = 1 << 3,
	RET_CHILDREN = 1 << 4,
	RET_SPECIAL_USE = 1 << 5,
	RET_STATUS = 1 << 6,
};

struct list_job {
	struct store_account *acct;
	const char *user; /* the session's, which outlives the job */
	char *tag;
	bool lsub;
	bool utf8;
	unsigned opts;
	struct status_items status;
	char **patterns; /* UTF-8, reference already prepended */
	size_t pattern_count;
	bool empty_pattern; /* LIST "" "": the hierarchy delimiter */
	struct buf out;
	enum store_error error;
	struct store_err err;
};

/* '*' matches anything, '%' anything but the separator (RFC 9051 §6.3.9). Dynamic
 * programming over the pattern: linear in name x pattern, no backtracking blow-up. */
static bool list_match(const char *name, const char *pat)
{
	size_t m = strlen(pat);
	bool *cur = xcalloc(m + 1, sizeof(bool));
	bool *next = xcalloc(m + 1, sizeof(bool));
	bool result;

	cur[0] = true;
	for (size_t j = 0; j < m && (pat[j] == '*' || pat[j] == '%'); j++)
		cur[j + 1] = true;
	for (const char *c = name; *c; c++) {
		memset(next, 0, (m + 1) * sizeof(bool));
		for (size_t j = 0; j < m; j++) {
			if (!cur[j])
				continue;
			if (pat[j] == '*' || (pat[j] == '%' && *c != '/'))
				next[j] = true; /* wildcard absorbs c */
			else if (pat[j] == *c)
				next[j + 1] = true;
		}
		/* A wildcard may also match nothing. */
		for (size_t j = 0; j < m; j++)
			if (next[j] && (pat[j] == '*' || pat[j] == '%'))
				next[j + 1] = true;
		bool *t = cur;
		cur = next;
		next = t;
	}
	result = cur[m];
	free(cur);
	free(next);
	return result;
}

static bool is_inbox_name(const char *name)
{
	return strncmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/');
}

static bool pattern_match(const char *name, const char *pat)
{
	if (list_match(name, pat))
		return true;
	/* RFC 9051 §5.1: any case variant of INBOX is INBOX. */
	if (is_inbox_name(name) && strlen(pat) >= 5 && str_nieq(pat, "INBOX", 5)) {
		char *up = xstrdup(pat);
		memcpy(up, "INBOX", 5);
		bool r = list_match(name, up);
		free(up);
		return r;
	}
	return false;
}

static bool any_pattern(const struct list_job *job, const char *name)
{
	for (size_t i = 0; i < job->pattern_count; i++)
		if (pattern_match(name, job->patterns[i]))
			return true;
	return false;
}

/* True when a subscribed descendant of mb is left out of the listing because no pattern
 * matches it: what RECURSIVEMATCH reports with CHILDINFO (RFC 5258 §3.5, redundant ones
 * suppressed as it asks) and LSUB with \Noselect on the parent (RFC 3501 §6.3.9). */
static bool subscribed_descendant_hidden(const struct list_job *job,
					 const struct store_mailbox_info *list, size_t n,
					 const struct store_mailbox_info *mb)
{
	size_t len = strlen(mb->name);

	for (size_t k = 0; k < n; k++)
		if (list[k].subscribed && strncmp(list[k].name, mb->name, len) == 0 &&
		    list[k].name[len] == '/' && !any_pattern(job, list[k].name))
			return true;
	return false;
}

/* Subscribed names without a mailbox: LSUB lists them as it lists any subscription, LIST
 * (SUBSCRIBED) with \NonExistent (RFC 5258 §3.4); never with STATUS. */
static void list_orphan_subscriptions(struct list_job *job)
{
	char **names = NULL;
	size_t n = 0;

	if (store_orphan_subscriptions(job->acct, &names, &n, NULL) != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!any_pattern(job, names[i]))
			continue;
		buf_append_str(&job->out, job->lsub ? "* LSUB () \"/\" "
						     : "* LIST (\\NonExistent \\Subscribed) \"/\" ");
		imap_append_mbox(&job->out, names[i], job->utf8);
		buf_append_str(&job->out, "\r\n");
	}
	store_names_free(&names, n);
}

static void list_work(void *arg)
{
	struct list_job *job = arg;
	struct store_mailbox_info *list = NULL;
	size_t n = 0;

	if (job->empty_pattern) {
		/* RFC 9051 §6.3.9: the delimiter and the root. */
		buf_append_str(&job->out, job->lsub ? "* LSUB (\\Noselect) \"/\" \"\"\r\n"
						     : "* LIST (\\Noselect) \"/\" \"\"\r\n");
		if (job->pattern_count == 0)
			return;
	}
	job->error = store_mailbox_list(job->acct, &list, &n, &job->err);
	if (job->error != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct store_mailbox_info *mb = &list[i];
		bool match = any_pattern(job, mb->name);
		bool child_subscribed = false;

		if (!match)
			continue;
		if ((job->opts & SEL_SPECIAL_USE) && mb->special_use == 0)
			continue;
		if (job->opts & SEL_SUBSCRIBED) {
			if ((job->opts & SEL_RECURSIVE) || (job->lsub && !mb->subscribed))
				child_subscribed = subscribed_descendant_hidden(job, list, n, mb);
			if (!mb->subscribed && !child_subscribed)
				continue;
		}
		buf_append_str(&job->out, job->lsub ? "* LSUB (" : "* LIST (");
		size_t mark = job->out.len;
#define ATTR(a)                                                        \
	do {                                                           \
		if (job->out.len > mark)                               \
			buf_append_byte(&job->out, ' ');               \
		buf_append_str(&job->out, a);                          \
	} while (0)
		/* RFC 3348 / RFC 5258 §4: children information is cheap here. */
		if (!job->lsub)
			ATTR(mb->has_children ? "\\HasChildren" : "\\HasNoChildren");
		else if (!mb->subscribed)
			ATTR("\\Noselect"); /* only listed for a subscribed descendant */
		if (mb->subscribed && ((job->opts & (SEL_SUBSCRIBED | RET_SUBSCRIBED)) && !job->lsub))
			ATTR("\\Subscribed");
		if (!job->lsub || (job->opts & RET_SPECIAL_USE)) {
			if (mb->special_use & STORE_SPECIAL_SENT)
				ATTR("\\Sent");
			if (mb->special_use & STORE_SPECIAL_DRAFTS)
				ATTR("\\Drafts");
			if (mb->special_use & STORE_SPECIAL_TRASH)
				ATTR("\\Trash");
			if (mb->special_use & STORE_SPECIAL_JUNK)
				ATTR("\\Junk");
			if (mb->special_use & STORE_SPECIAL_ARCHIVE)
				ATTR("\\Archive");
		}
#undef ATTR
		buf_append_str(&job->out, ") \"/\" ");
		imap_append_mbox(&job->out, mb->name, job->utf8);
		if (child_subscribed && !job->lsub)
			buf_append_str(&job->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		buf_append_str(&job->out, "\r\n");
		if (job->opts & RET_STATUS) {
			struct store_err err;
			/* RFC 5819: STATUS follows the LIST line; a failure just omits it. */
			status_line(job->acct, job->user, mb->name, &job->status, job->utf8, &job->out, &err);
		}
	}
	store_mailbox_list_free(&list, n);
	if ((job->opts & SEL_SUBSCRIBED) && !(job->opts & SEL_SPECIAL_USE))
		list_orphan_subscriptions(job);
}

static void list_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct list_job *job = arg;

	if (job->error == STORE_OK) {
		net_conn_write(s->conn, job->out.data, job->out.len);
		imap_tagged(s, job->tag, "%s OK %s completed", job->tag, job->lsub ? "LSUB" : "LIST");
	} else {
		imap_store_error(s, job->tag, job->error, &job->err);
	}
	for (size_t i = 0; i < job->pattern_count; i++)
		free(job->patterns[i]);
	free(job->patterns);
	buf_free(&job->out);
	free(job->tag);
	free(job);
	imap_command_done(s);
}

/* list-mailbox = 1*list-char / string */
static bool parse_list_mailbox(struct imap_parser *ps, struct imap_slice *out)
{
	uint8_t *start = ps->p;

	if (imap_peek(ps, '"') || imap_peek(ps, '{'))
		return imap_parse_string(ps, out);
	while (ps->p < ps->end && *ps->p > ' ' && *ps->p < 0x7f && !strchr("(){\"\\", *ps->p))
		ps->p++;
	if (ps->p == start) {
		ps->error = "Expected a mailbox pattern";
		return false;
	}
	out->data = start;
	out->len = (size_t)(ps->p - start);
	return true;
}

static bool add_pattern(struct imap_session *s, struct list_job *job, const struct imap_slice *ref,
			const struct imap_slice *pat)
{
	struct buf raw, utf8;
	bool ok = true;

	if (imap_slice_has_ctl(pat) || imap_slice_has_ctl(ref))
		return false;
	if (pat->len == 0) {
		job->empty_pattern = true;
		return true;
	}
	buf_init(&raw);
	buf_init(&utf8);
	buf_append(&raw, ref->data, ref->len);
	/* RFC 3501 §6.3.8: the reference is prefixed; a pattern starting with the separator
	 * is absolute. */
	if (ref->len > 0 && pat->data[0] == '/')
		buf_reset(&raw);
	else if (ref->len > 0 && ref->data[ref->len - 1] != '/')
		buf_append_byte(&raw, '/');
	buf_append(&raw, pat->data, pat->len);
	if (s->enabled_utf8)
		buf_append(&utf8, raw.data, raw.len);
	else if (imap_mutf7_to_utf8(raw.data, raw.len, &utf8) < 0)
		ok = false; /* matches nothing */
	if (ok && job->pattern_count < 64) {
		job->patterns = xrealloc(job->patterns, (job->pattern_count + 1) * sizeof(char *));
		job->patterns[job->pattern_count++] = xstrdup(buf_cstr(&utf8));
	}
	buf_free(&raw);
	buf_free(&utf8);
	return true;
}

static void list_common(struct imap_session *s, const char *tag, struct imap_parser *ps, bool lsub)
{
	struct list_job *job = xcalloc(1, sizeof(*job));
	struct imap_slice ref, pat, a;
	const char *why = NULL;

	job->lsub = lsub;
	job->utf8 = s->enabled_utf8;
	buf_init(&job->out);
	if (lsub)
		job->opts |= SEL_SUBSCRIBED;
	/* list-select-opts (RFC 5258 §6) */
	if (!lsub && imap_peek(ps, '(')) {
		ps->p++;
		for (int n = 0; !imap_peek(ps, ')'); n++) {
			if ((n > 0 && !imap_parse_sp(ps)) || !imap_parse_atom(ps, &a)) {
				why = "Invalid LIST selection options";
				goto bad;
			}
			if (imap_slice_ieq(&a, "SUBSCRIBED"))
				job->opts |= SEL_SUBSCRIBED;
			else if (imap_slice_ieq(&a, "RECURSIVEMATCH"))
				job->opts |= SEL_RECURSIVE;
			else if (imap_slice_ieq(&a, "SPECIAL-USE"))
				job->opts |= SEL_SPECIAL_USE;
			else if (imap_slice_ieq(&a, "REMOTE"))
				; /* no remote mailboxes here */
			else {
				why = "Unknown LIST selection option";
				goto bad;
			}
		}
		ps->p++;
		if (!imap_parse_sp(ps))
			goto bad;
		/* RFC 5258 §3.1: RECURSIVEMATCH needs another selection option. */
		if ((job->opts & SEL_RECURSIVE) && !(job->opts & (SEL_SUBSCRIBED | SEL_SPECIAL_USE))) {
			why = "RECURSIVEMATCH needs another selection option";
			goto bad;
		}
	}
	if (!imap_parse_astring(ps, &ref) || !imap_parse_sp(ps))
		goto bad;
	if (!lsub && imap_peek(ps, '(')) {
		ps->p++;
		for (int n = 0; !imap_peek(ps, ')'); n++) {
			if ((n > 0 && !imap_parse_sp(ps)) || !parse_list_mailbox(ps, &pat) ||
			    !add_pattern(s, job, &ref, &pat))
				goto bad;
		}
		ps->p++;
	} else if (!parse_list_mailbox(ps, &pat) || !add_pattern(s, job, &ref, &pat)) {
		goto bad;
	}
	/* list-return-opts */
	if (!lsub && imap_peek(ps, ' ')) {
		ps->p++;
		if (!imap_parse_atom(ps, &a) || !imap_slice_ieq(&a, "RETURN") || !imap_parse_sp(ps) ||
		    !imap_parse_char(ps, '('))
			goto bad;
		for (int n = 0; !imap_peek(ps, ')'); n++) {
			if ((n > 0 && !imap_parse_sp(ps)) || !imap_parse_atom(ps, &a))
				goto bad;
			if (imap_slice_ieq(&a, "SUBSCRIBED"))
				job->opts |= RET_SUBSCRIBED;
			else if (imap_slice_ieq(&a, "CHILDREN"))
				job->opts |= RET_CHILDREN;
			else if (imap_slice_ieq(&a, "SPECIAL-USE"))
				job->opts |= RET_SPECIAL_USE;
			else if (imap_slice_ieq(&a, "STATUS")) {
				if (!imap_parse_sp(ps) || !parse_status_items(ps, &job->status))
					goto bad;
				job->opts |= RET_STATUS;
			} else {
				why = "Unknown LIST return option";
				goto bad;
			}
		}
		ps->p++;
	}
	if (!imap_parse_crlf(ps))
		goto bad;
	job->acct = s->acct;
	job->user = s->user;
	job->tag = xstrdup(tag);
	s->busy = true;
	net_conn_offload(s->conn, list_work, list_done, job);
	return;
bad:
	imap_bad(s, tag, why ? why : ps->error ? ps->error : "Invalid LIST arguments");
	for (size_t i = 0; i < job->pattern_count; i++)
		free(job->patterns[i]);
	free(job->patterns);
	buf_free(&job->out);
	free(job);
}

void imap_cmd_list(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	list_common(s, tag, ps, false);
}

void imap_cmd_lsub(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	list_common(s, tag, ps, true);
}

/* RFC 2342: one personal namespace, no others. */
void imap_cmd_namespace(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "NAMESPACE takes no arguments");
		return;
	}
	imap_reply(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, tag, "%s OK NAMESPACE completed", tag);
}
