/* NOTIFY (RFC 5465): one connection hears of new mail, expunges and flag changes in mailboxes
 * other than the selected one (as STATUS), of mailbox-list and subscription changes (as LIST),
 * and of its selected mailbox's changes between commands, not only during IDLE.
 *
 * Design notes
 *  1. A session that never sends NOTIFY has s->notify NULL and pays nothing: no subscription,
 *     no memory, no work per event.
 *  2. NOTIFY SET takes one account-wide subscription of the store's change feed (whatever the
 *     number of mailboxes it watches). The callback runs on the committing thread (store
 *     contract 4) and copies only the event's kind and names into a post for the session's
 *     loop; the loop decides whether a filter matches. Filters are kept as rules (personal,
 *     subtree X, ...) plus the set of subscribed names, so created, renamed and deleted
 *     mailboxes are re-evaluated by construction (RFC 5465 §6.4).
 *  3. Bounds: a NOTIFY SET may name and match at most LIMIT_IMAP_NOTIFY_MAILBOXES mailboxes
 *     (NO [LIMIT] beyond; a set that grows past it later counts as an overflow). STATUS
 *     notifications are coalesced per mailbox name; LIST notifications per name, at most
 *     LIMIT_IMAP_NOTIFY_PENDING_LISTS of them; posts in flight at most
 *     LIMIT_IMAP_NOTIFY_POSTS. Past a bound the session gets "* OK [NOTIFICATIONOVERFLOW]" and
 *     behaves as after NOTIFY NONE (§5.8).
 *  4. Notifications go out whenever the client may receive untagged data: at once when no
 *     command is running (or during IDLE), otherwise after the command's tagged reply (§3).
 *     STATUS and LIST contents are read from the store when they are sent, in a pool job, so
 *     they always describe the mailbox as it is then; many deliveries make one STATUS.
 *  5. The selected mailbox keeps its own feed (selected.c); NOTIFY only says when its
 *     EXISTS/EXPUNGE/FETCH may be pushed (SELECTED: at once, SELECTED-DELAYED: EXPUNGE waits
 *     for a command that allows it) and which FETCH data follows an EXISTS (UID, FLAGS,
 *     MODSEQ: what the feed carries, so new mail costs no disk read). Without a SELECTED
 *     filter the selected mailbox's changes are reported as RFC 3501 requires at the end of
 *     commands, and not pushed during IDLE (§3.1, §4). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../core/core.h"
#include "session.h"

enum {
	EV_NEW = 1 << 0,
	EV_EXPUNGE = 1 << 1,
	EV_FLAGS = 1 << 2,
	EV_NAME = 1 << 3,
	EV_SUBSCRIPTION = 1 << 4,
};
#define EV_MESSAGE (EV_NEW | EV_EXPUNGE | EV_FLAGS)

enum { FA_UID = 1 << 0, FA_FLAGS = 1 << 1, FA_MODSEQ = 1 << 2 };

#define SUPPORTED_EVENTS "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"

/* Entries read per pool job when notifications are sent. */
#define NOTIFY_BATCH 64

enum notify_filter { F_INBOXES, F_PERSONAL, F_SUBSCRIBED, F_SUBTREE, F_MAILBOXES };

struct notify_group {
	enum notify_filter kind;
	unsigned events;
	char **names; /* SUBTREE and MAILBOXES: canonical UTF-8 names */
	size_t count;
};

/* Shared by the subscription and the posts in flight (freed with the last reference). */
struct notify_feed {
	struct net_conn *conn;
	atomic_uint refs;
	atomic_uint in_flight;
	atomic_bool overflowed;
};

struct notify_post {
	struct notify_feed *feed;
	uint64_t posted_ns; /* for the push latency histogram */
	bool overflow; /* the feed stopped posting: too many in flight */
	enum store_event_kind kind;
	uint64_t mailbox_id;
	char *name;
	char *old_name;
};

struct notify_pending {
	char *name;
	char *old_name; /* LIST after RENAME: OLDNAME */
	bool list;	/* LIST, else STATUS */
};

struct names {
	char **v;
	size_t count, cap;
};

struct imap_notify {
	struct notify_feed *feed;
	struct store_subscription *sub;
	bool selected_set;     /* a SELECTED or SELECTED-DELAYED filter was given */
	bool selected_delayed;
	unsigned selected_events;
	unsigned fetch_atts;   /* MessageNew's fetch-att list for the selected mailbox */
	struct notify_group *groups;
	size_t group_count;
	struct names subscribed; /* for F_SUBSCRIBED */
	size_t watched;		 /* existing mailboxes some group matches */
	struct notify_pending *pending;
	size_t pending_count, pending_cap, pending_lists;
	bool job_running;
	bool overflow;
	/* The last RENAME seen: its inferiors' events follow and are not reported (§5.4). */
	char *rename_old, *rename_new;
};

/* ---------------- names ---------------- */

static void names_add(struct names *n, const char *name)
{
	if (n->count == n->cap) {
		n->cap = n->cap ? n->cap * 2 : 8;
		n->v = xrealloc(n->v, n->cap * sizeof(char *));
	}
	n->v[n->count++] = xstrdup(name);
}

static ssize_t names_find(const struct names *n, const char *name)
{
	for (size_t i = 0; i < n->count; i++)
		if (strcmp(n->v[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

static void names_remove(struct names *n, const char *name)
{
	ssize_t i = names_find(n, name);

	if (i < 0)
		return;
	free(n->v[i]);
	n->v[i] = n->v[--n->count];
}

static void names_clear(struct names *n)
{
	for (size_t i = 0; i < n->count; i++)
		free(n->v[i]);
	free(n->v);
	memset(n, 0, sizeof(*n));
}

/* ---------------- the rules ---------------- */

static bool group_matches(const struct imap_notify *nt, const struct notify_group *g,
			  const char *name)
{
	switch (g->kind) {
	case F_INBOXES:
		/* Delivery only ever writes to INBOX (plus-addressing included). */
		return strcmp(name, "INBOX") == 0;
	case F_PERSONAL:
		return true;
	case F_SUBSCRIBED:
		return names_find(&nt->subscribed, name) >= 0;
	case F_SUBTREE:
		for (size_t i = 0; i < g->count; i++) {
			size_t n = strlen(g->names[i]);
			if (strncmp(name, g->names[i], n) == 0 && (name[n] == '\0' || name[n] == '/'))
				return true;
		}
		return false;
	case F_MAILBOXES:
		for (size_t i = 0; i < g->count; i++)
			if (strcmp(name, g->names[i]) == 0)
				return true;
		return false;
	}
	return false;
}

/* The events the filters other than SELECTED ask for on name. */
static unsigned events_for(const struct imap_notify *nt, const char *name)
{
	unsigned ev = 0;

	for (size_t i = 0; i < nt->group_count; i++)
		if (group_matches(nt, &nt->groups[i], name))
			ev |= nt->groups[i].events;
	return ev;
}

static bool watched(const struct imap_notify *nt, const char *name)
{
	for (size_t i = 0; i < nt->group_count; i++)
		if (nt->groups[i].events != 0 && group_matches(nt, &nt->groups[i], name))
			return true;
	return false;
}

/* ---------------- lifetime ---------------- */

static void feed_unref(struct notify_feed *feed)
{
	if (atomic_fetch_sub(&feed->refs, 1) == 1)
		free(feed);
}

static void pending_clear(struct imap_notify *nt)
{
	for (size_t i = 0; i < nt->pending_count; i++) {
		free(nt->pending[i].name);
		free(nt->pending[i].old_name);
	}
	nt->pending_count = 0;
	nt->pending_lists = 0;
}

static void notify_free(struct imap_notify **ntp)
{
	struct imap_notify *nt = *ntp;

	if (nt == NULL)
		return;
	/* After this no callback of ours runs; posts in flight hold the feed and are dropped
	 * on arrival because it is no longer the session's. */
	store_unsubscribe(&nt->sub);
	if (nt->feed != NULL) {
		net_conn_unref(nt->feed->conn);
		feed_unref(nt->feed);
	}
	for (size_t i = 0; i < nt->group_count; i++) {
		for (size_t j = 0; j < nt->groups[i].count; j++)
			free(nt->groups[i].names[j]);
		free(nt->groups[i].names);
	}
	free(nt->groups);
	names_clear(&nt->subscribed);
	pending_clear(nt);
	free(nt->pending);
	free(nt->rename_old);
	free(nt->rename_new);
	free(nt);
	*ntp = NULL;
}

void imap_notify_free(struct imap_session *s)
{
	notify_free(&s->notify);
}

/* ---------------- when the client may be told ---------------- */

/* RFC 5465 §3: any time no command is in progress (IDLE counts as none). */
static bool may_send(const struct imap_session *s)
{
	return s->cmd.len == 0 && !s->busy && s->append == NULL && s->fetch == NULL &&
	       !s->skipping_command && !s->in_sasl_exchange && s->literal_remaining == 0 &&
	       s->state != IMAP_STATE_LOGOUT && !net_conn_is_closing(s->conn);
}

bool imap_notify_push_selected(const struct imap_session *s)
{
	return s->notify != NULL && s->notify->selected_set && s->notify->selected_events != 0 &&
	       may_send(s);
}

bool imap_notify_push_selected_event(const struct imap_session *s, enum store_event_kind kind)
{
	unsigned want = kind == STORE_EVENT_APPEND    ? EV_NEW
			: kind == STORE_EVENT_EXPUNGE ? EV_EXPUNGE
						      : EV_FLAGS;

	/* A kind not asked for waits for the next command (or another push); so does an
	 * expunge under SELECTED-DELAYED, which could not be reported now anyway. */
	if (kind == STORE_EVENT_EXPUNGE && s->notify != NULL && s->notify->selected_delayed)
		return false;
	return imap_notify_push_selected(s) && (s->notify->selected_events & want);
}

bool imap_notify_mutes_selected(const struct imap_session *s)
{
	return s->notify != NULL && (!s->notify->selected_set || s->notify->selected_events == 0);
}

bool imap_notify_expunge_now(const struct imap_session *s)
{
	return s->notify == NULL || !s->notify->selected_delayed;
}

bool imap_notify_new_wants_flags(const struct imap_session *s)
{
	return s->notify != NULL && (s->notify->selected_events & EV_NEW) &&
	       (s->notify->fetch_atts & FA_FLAGS);
}

void imap_notify_new_messages(struct imap_session *s, size_t first)
{
	struct imap_notify *nt = s->notify;

	/* With FLAGS the FETCH comes from the flag changes recorded for the new UIDs. */
	if (nt == NULL || !(nt->selected_events & EV_NEW) || nt->fetch_atts == 0 ||
	    (nt->fetch_atts & FA_FLAGS) || s->sel == NULL)
		return;
	for (size_t i = first; i < s->sel->count; i++)
		imap_reply(s, "* %zu FETCH (UID %u)", i + 1, s->sel->uids[i]);
}

static void notify_kick(struct imap_session *s);

static void kick_posted(void *session, void *arg)
{
	(void)arg;
	if (session != NULL)
		notify_kick(session);
}

void imap_notify_command_ended(struct imap_session *s)
{
	struct imap_notify *nt = s->notify;

	/* The command's state is cleared only after this returns: look again at the loop's
	 * next turn (the feed holds a reference to the connection). */
	if (nt != NULL && (nt->pending_count > 0 || nt->overflow))
		net_conn_post(nt->feed->conn, kick_posted, NULL);
}

void imap_notify_drained(struct imap_session *s)
{
	notify_kick(s);
}

/* ---------------- sending: a pool job reads what the lines say ---------------- */

struct notify_job {
	struct store_account *acct;
	struct notify_pending *entries;
	size_t count;
	bool utf8, condstore;
	struct buf out;
};

/* A name without a mailbox may be subscribed (RFC 3501 §6.3.6); there are at most
 * LIMIT_ORPHAN_SUBSCRIPTIONS of them. */
static bool orphan_subscribed(struct store_account *acct, const char *name)
{
	char **names = NULL;
	size_t n = 0;
	bool found = false;

	if (store_orphan_subscriptions(acct, &names, &n, NULL) != STORE_OK)
		return false;
	for (size_t i = 0; i < n && !found; i++)
		found = strcmp(names[i], name) == 0;
	store_names_free(&names, n);
	return found;
}

static void append_list_line(struct store_account *acct, const struct notify_pending *e,
			     bool utf8, struct buf *out)
{
	struct store_mailbox_info info;
	enum store_error err = store_mailbox_get(acct, e->name, &info, NULL);

	/* §5.5: attributes as LIST computes them, \Subscribed exactly when subscribed now. */
	buf_append_str(out, "* LIST (");
	if (err == STORE_OK) {
		buf_append_str(out, info.has_children ? "\\HasChildren" : "\\HasNoChildren");
		if (info.subscribed)
			buf_append_str(out, " \\Subscribed");
		store_mailbox_info_clear(&info);
	} else {
		buf_append_str(out, "\\NonExistent");
		if (orphan_subscribed(acct, e->name))
			buf_append_str(out, " \\Subscribed");
	}
	buf_append_str(out, ") \"/\" ");
	imap_append_mbox(out, e->name, utf8);
	if (e->old_name != NULL) {
		/* RFC 5465 §5.4, RFC 5258 mbox-list-extended-item */
		buf_append_str(out, " (\"OLDNAME\" (");
		imap_append_mbox(out, e->old_name, utf8);
		buf_append_str(out, "))");
	}
	buf_append_str(out, "\r\n");
}

/* §5.1-5.3: MESSAGES, UIDNEXT and UIDVALIDITY for new and expunged messages, UNSEEN for
 * flag changes, HIGHESTMODSEQ once CONDSTORE is on: one line serves every event kind. */
static void append_status_line(struct store_account *acct, const char *name, bool utf8,
			       bool condstore, struct buf *out)
{
	struct store_mailbox_status st;

	if (store_mailbox_status(acct, name, &st, NULL) != STORE_OK)
		return; /* gone meanwhile: its LIST \NonExistent says so, if asked for */
	buf_append_str(out, "* STATUS ");
	imap_append_mbox(out, name, utf8);
	buf_printf(out, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u UNSEEN %u", st.messages,
		   st.uidnext, st.uidvalidity, st.unseen);
	if (condstore)
		buf_printf(out, " HIGHESTMODSEQ %llu", (unsigned long long)st.highestmodseq);
	buf_append_str(out, ")\r\n");
}

static void notify_work(void *arg)
{
	struct notify_job *job = arg;

	for (size_t i = 0; i < job->count; i++) {
		if (job->entries[i].list)
			append_list_line(job->acct, &job->entries[i], job->utf8, &job->out);
		else
			append_status_line(job->acct, job->entries[i].name, job->utf8,
					   job->condstore, &job->out);
	}
}

static void notify_job_free(struct notify_job *job)
{
	for (size_t i = 0; i < job->count; i++) {
		free(job->entries[i].name);
		free(job->entries[i].old_name);
	}
	free(job->entries);
	buf_free(&job->out);
	free(job);
}

static void notify_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct notify_job *job = arg;

	if (s->notify != NULL)
		s->notify->job_running = false;
	if (!net_conn_is_closing(s->conn) && s->notify != NULL)
		net_conn_write(s->conn, job->out.data, job->out.len);
	notify_job_free(job);
	imap_command_done(s);
	if (s->idle_tag != NULL)
		imap_updates_idle_start(s); /* what the selected feed held back meanwhile */
	notify_kick(s);
}

static void notify_overflow_now(struct imap_session *s)
{
	imap_reply(s, "* OK [NOTIFICATIONOVERFLOW] Too many events; notifications are off");
	log_info("proto=imap conn=%llu user=%s msg=\"notify overflow; notifications off\"",
		 (unsigned long long)net_conn_id(s->conn), s->user ? s->user : "-");
	notify_free(&s->notify);
}

static void notify_kick(struct imap_session *s)
{
	struct imap_notify *nt = s->notify;
	struct notify_job *job;
	size_t n;

	if (nt == NULL || nt->job_running || !may_send(s))
		return;
	if (nt->overflow) {
		notify_overflow_now(s);
		return;
	}
	if (nt->pending_count == 0)
		return;
	if (net_conn_output_length(s->conn) >= IMAP_OUTPUT_HIGH_WATER) {
		net_conn_want_drain(s->conn, IMAP_OUTPUT_LOW_WATER);
		return;
	}
	n = nt->pending_count < NOTIFY_BATCH ? nt->pending_count : NOTIFY_BATCH;
	job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->utf8 = s->enabled_utf8;
	job->condstore = s->enabled_condstore;
	job->entries = xmalloc(n * sizeof(*job->entries));
	job->count = n;
	memcpy(job->entries, nt->pending, n * sizeof(*job->entries));
	for (size_t i = 0; i < n; i++)
		nt->pending_lists -= nt->pending[i].list;
	memmove(nt->pending, nt->pending + n, (nt->pending_count - n) * sizeof(*nt->pending));
	nt->pending_count -= n;
	buf_init(&job->out);
	nt->job_running = true;
	s->busy = true;
	net_conn_offload(s->conn, notify_work, notify_done, job);
}

/* ---------------- events from the feed ---------------- */

static void pending_add(struct imap_notify *nt, const char *name, const char *old_name,
			bool list)
{
	for (size_t i = 0; i < nt->pending_count; i++) {
		struct notify_pending *e = &nt->pending[i];
		if (e->list == list && strcmp(e->name, name) == 0 &&
		    ((e->old_name == NULL && old_name == NULL) ||
		     (e->old_name != NULL && old_name != NULL && strcmp(e->old_name, old_name) == 0)))
			return; /* read when sent: one line tells the latest state */
	}
	if (list && nt->pending_lists >= LIMIT_IMAP_NOTIFY_PENDING_LISTS) {
		nt->overflow = true;
		return;
	}
	if (nt->pending_count == nt->pending_cap) {
		nt->pending_cap = nt->pending_cap ? nt->pending_cap * 2 : 8;
		nt->pending = xrealloc(nt->pending, nt->pending_cap * sizeof(*nt->pending));
	}
	nt->pending[nt->pending_count].name = xstrdup(name);
	nt->pending[nt->pending_count].old_name = old_name ? xstrdup(old_name) : NULL;
	nt->pending[nt->pending_count].list = list;
	nt->pending_count++;
	nt->pending_lists += list;
}

/* §5.4: a created or deleted mailbox and its direct parent are affected. */
static void list_with_parent(struct imap_notify *nt, const char *name)
{
	const char *slash = strrchr(name, '/');

	if (events_for(nt, name) & EV_NAME)
		pending_add(nt, name, NULL, true);
	if (slash != NULL) {
		char *parent = xstrndup(name, (size_t)(slash - name));
		if (events_for(nt, parent) & EV_NAME)
			pending_add(nt, parent, NULL, true);
		free(parent);
	}
}

static void watched_changed(struct imap_notify *nt, bool before, bool after)
{
	if (before && !after && nt->watched > 0)
		nt->watched--;
	if (!before && after && ++nt->watched > LIMIT_IMAP_NOTIFY_MAILBOXES)
		nt->overflow = true;
}

/* The inferiors of a renamed mailbox are renamed with it, without events of their own. */
static bool rename_is_inferior(struct imap_notify *nt, const char *old_name, const char *name)
{
	size_t n;

	if (nt->rename_old == NULL)
		return false;
	n = strlen(nt->rename_old);
	return strncmp(old_name, nt->rename_old, n) == 0 && old_name[n] == '/' &&
	       strncmp(name, nt->rename_new, strlen(nt->rename_new)) == 0 &&
	       strcmp(name + strlen(nt->rename_new), old_name + n) == 0;
}

static void take_rename(struct imap_notify *nt, const struct notify_post *p)
{
	bool before = watched(nt, p->old_name), inferior;

	if (names_find(&nt->subscribed, p->old_name) >= 0) {
		names_remove(&nt->subscribed, p->old_name);
		names_add(&nt->subscribed, p->name);
	}
	watched_changed(nt, before, watched(nt, p->name));
	inferior = rename_is_inferior(nt, p->old_name, p->name);
	if (!inferior) {
		free(nt->rename_old);
		free(nt->rename_new);
		nt->rename_old = xstrdup(p->old_name);
		nt->rename_new = xstrdup(p->name);
		if ((events_for(nt, p->name) | events_for(nt, p->old_name)) & EV_NAME)
			pending_add(nt, p->name, p->old_name, true);
	}
}

static void take_subscription(struct imap_notify *nt, const struct notify_post *p)
{
	bool subscribed = p->kind == STORE_EVENT_MAILBOX_SUBSCRIBE;
	bool before = p->mailbox_id != 0 && watched(nt, p->name);

	if (subscribed && names_find(&nt->subscribed, p->name) < 0)
		names_add(&nt->subscribed, p->name);
	else if (!subscribed)
		names_remove(&nt->subscribed, p->name);
	if (p->mailbox_id != 0)
		watched_changed(nt, before, watched(nt, p->name));
	if (events_for(nt, p->name) & EV_SUBSCRIPTION)
		pending_add(nt, p->name, NULL, true);
}

static void take_event(struct imap_session *s, const struct notify_post *p)
{
	struct imap_notify *nt = s->notify;
	bool selected = s->sel != NULL && s->sel->id == p->mailbox_id;

	switch (p->kind) {
	case STORE_EVENT_APPEND:
	case STORE_EVENT_EXPUNGE:
	case STORE_EVENT_FLAGS: {
		unsigned want = p->kind == STORE_EVENT_APPEND	 ? EV_NEW
				: p->kind == STORE_EVENT_EXPUNGE ? EV_EXPUNGE
								 : EV_FLAGS;
		/* §3.1: the selected mailbox's messages are SELECTED's business (selected.c). */
		if (!selected && (events_for(nt, p->name) & want))
			pending_add(nt, p->name, NULL, false);
		break;
	}
	case STORE_EVENT_MAILBOX_CREATE:
		watched_changed(nt, false, watched(nt, p->name));
		list_with_parent(nt, p->name);
		break;
	case STORE_EVENT_MAILBOX_DELETE:
		watched_changed(nt, watched(nt, p->name), false);
		list_with_parent(nt, p->name);
		break;
	case STORE_EVENT_MAILBOX_RENAME:
		take_rename(nt, p);
		break;
	case STORE_EVENT_MAILBOX_SUBSCRIBE:
	case STORE_EVENT_MAILBOX_UNSUBSCRIBE:
		take_subscription(nt, p);
		break;
	}
}

static void post_free(struct notify_post *p)
{
	free(p->name);
	free(p->old_name);
	free(p);
}

/* On the session's loop. */
static void notify_deliver(void *session, void *arg)
{
	struct imap_session *s = session;
	struct notify_post *p = arg;

	atomic_fetch_sub(&p->feed->in_flight, 1);
	if (s != NULL && s->notify != NULL && s->notify->feed == p->feed &&
	    !net_conn_is_closing(s->conn)) {
		if (p->overflow)
			s->notify->overflow = true;
		else if (!s->notify->overflow)
			take_event(s, p);
		notify_kick(s);
		metrics_observe_since(METRICS_HIST_PUSH, p->posted_ns);
	}
	feed_unref(p->feed);
	post_free(p);
}

/* On the committing thread (store contract 4): copy the names and post, nothing more. */
static void notify_event(const struct store_event *ev, void *ctx)
{
	struct notify_feed *feed = ctx;
	struct notify_post *p;
	bool overflow = false;

	if (atomic_load(&feed->overflowed))
		return;
	if (atomic_load(&feed->in_flight) >= LIMIT_IMAP_NOTIFY_POSTS) {
		/* The loop is far behind: one last post tells it to give up. */
		atomic_store(&feed->overflowed, true);
		overflow = true;
	}
	p = xcalloc(1, sizeof(*p));
	p->feed = feed;
	p->posted_ns = metrics_now_ns();
	p->overflow = overflow;
	p->kind = ev->kind;
	p->mailbox_id = ev->mailbox_id;
	p->name = xstrdup(ev->mailbox != NULL ? ev->mailbox : "");
	p->old_name = ev->old_name != NULL ? xstrdup(ev->old_name) : NULL;
	atomic_fetch_add(&feed->in_flight, 1);
	atomic_fetch_add(&feed->refs, 1);
	net_conn_post(feed->conn, notify_deliver, p);
}

/* ---------------- NOTIFY SET / NONE ---------------- */

struct notify_set_job {
	struct store_account *acct;
	struct imap_notify *nt; /* built by the parser; owned by the job until done */
	char *tag;
	char *selected_name; /* excluded from the initial STATUS (§3.1) */
	bool want_status, utf8, condstore;
	bool over_limit;
	enum store_error error;
	struct store_err err;
	struct buf out;
};

static enum store_error set_evaluate(struct notify_set_job *job)
{
	struct imap_notify *nt = job->nt;
	struct store_mailbox_info *list = NULL;
	char **orphans = NULL;
	size_t n = 0, orphan_count = 0;
	enum store_error e;

	e = store_mailbox_list(job->acct, &list, &n, &job->err);
	if (e != STORE_OK)
		return e;
	e = store_orphan_subscriptions(job->acct, &orphans, &orphan_count, &job->err);
	if (e != STORE_OK) {
		store_mailbox_list_free(&list, n);
		return e;
	}
	for (size_t i = 0; i < n; i++)
		if (list[i].subscribed)
			names_add(&nt->subscribed, list[i].name);
	for (size_t i = 0; i < orphan_count; i++)
		names_add(&nt->subscribed, orphans[i]);
	store_names_free(&orphans, orphan_count);
	for (size_t i = 0; i < n && !job->over_limit; i++) {
		if (!watched(nt, list[i].name))
			continue;
		if (++nt->watched > LIMIT_IMAP_NOTIFY_MAILBOXES) {
			job->over_limit = true;
			break;
		}
		/* §3.1: STATUS for each mailbox with message events, the selected one aside. */
		if (job->want_status && (events_for(nt, list[i].name) & EV_MESSAGE) &&
		    (job->selected_name == NULL || strcmp(job->selected_name, list[i].name) != 0))
			append_status_line(job->acct, list[i].name, job->utf8, job->condstore,
					   &job->out);
	}
	store_mailbox_list_free(&list, n);
	return STORE_OK;
}

static void set_work(void *arg)
{
	struct notify_set_job *job = arg;

	job->error = set_evaluate(job);
	if (job->error == STORE_OK && !job->over_limit)
		job->nt->sub = store_subscribe(job->acct, 0, notify_event, job->nt->feed);
}

static void set_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct notify_set_job *job = arg;

	if (job->error != STORE_OK) {
		imap_store_error(s, job->tag, job->error, &job->err);
		notify_free(&job->nt);
	} else if (job->over_limit) {
		imap_tagged(s, job->tag, "%s NO [LIMIT] NOTIFY watches at most %d mailboxes",
			    job->tag, LIMIT_IMAP_NOTIFY_MAILBOXES);
		notify_free(&job->nt);
	} else {
		notify_free(&s->notify);
		s->notify = job->nt;
		job->nt = NULL;
		net_conn_write(s->conn, job->out.data, job->out.len);
		/* §3.1: NOTIFY SET implies a NOOP, which imap_tagged performs. */
		imap_tagged(s, job->tag, "%s OK NOTIFY completed", job->tag);
	}
	buf_free(&job->out);
	free(job->tag);
	free(job->selected_name);
	free(job);
	imap_command_done(s);
}

/* MessageNew's fetch-att list (SELECTED only): what the change feed carries. MODSEQ comes
 * in the FETCH that reports FLAGS, so it brings FLAGS along. */
static bool parse_fetch_atts(struct imap_session *s, struct imap_parser *ps, unsigned *fetch_r)
{
	struct imap_slice a;

	if (!imap_parse_char(ps, '('))
		return false;
	for (;;) {
		if (!imap_parse_atom(ps, &a))
			return false;
		if (imap_slice_ieq(&a, "UID"))
			*fetch_r |= FA_UID;
		else if (imap_slice_ieq(&a, "FLAGS"))
			*fetch_r |= FA_FLAGS | FA_UID;
		else if (imap_slice_ieq(&a, "MODSEQ"))
			*fetch_r |= FA_MODSEQ | FA_FLAGS | FA_UID;
		else {
			ps->error = "MessageNew may ask for UID, FLAGS and MODSEQ only";
			return false;
		}
		if (imap_peek(ps, ')'))
			break;
		if (!imap_parse_sp(ps))
			return false;
	}
	ps->p++;
	if (*fetch_r & FA_MODSEQ)
		imap_condstore_enable(s); /* RFC 7162 §3.1 */
	return true;
}

/* events: "(" event *(SP event) ")" / "NONE" into *events_r (MessageNew's fetch-att list
 * into *fetch_r); an event this server does not support sets *bad_r (§3.1: NO, not BAD). */
static bool parse_events(struct imap_session *s, struct imap_parser *ps, bool selected,
			 unsigned *events_r, unsigned *fetch_r, bool *bad_r)
{
	struct imap_slice a;

	*events_r = 0;
	if (!imap_peek(ps, '(')) {
		if (!imap_parse_atom(ps, &a) || !imap_slice_ieq(&a, "NONE")) {
			ps->error = "Expected an event list or NONE";
			return false;
		}
		return true;
	}
	ps->p++;
	for (;;) {
		if (!imap_parse_atom(ps, &a))
			return false;
		if (imap_slice_ieq(&a, "MessageNew")) {
			*events_r |= EV_NEW;
			if (imap_peek(ps, ' ') && ps->p + 1 < ps->end && ps->p[1] == '(') {
				ps->p++;
				if (!selected) {
					ps->error = "A fetch-att list is for SELECTED only";
					return false;
				}
				if (!parse_fetch_atts(s, ps, fetch_r))
					return false;
			}
		} else if (imap_slice_ieq(&a, "MessageExpunge")) {
			*events_r |= EV_EXPUNGE;
		} else if (imap_slice_ieq(&a, "FlagChange")) {
			*events_r |= EV_FLAGS;
		} else if (imap_slice_ieq(&a, "MailboxName")) {
			*events_r |= EV_NAME;
		} else if (imap_slice_ieq(&a, "SubscriptionChange")) {
			*events_r |= EV_SUBSCRIPTION;
		} else {
			*bad_r = true; /* AnnotationChange, the METADATA ones, extensions */
		}
		if (imap_peek(ps, ')'))
			break;
		if (!imap_parse_sp(ps))
			return false;
	}
	ps->p++;
	if (selected && (*events_r & ~(unsigned)EV_MESSAGE)) {
		ps->error = "SELECTED takes message events only";
		return false;
	}
	/* §5: MessageNew and MessageExpunge go together; FlagChange needs both. */
	if (((*events_r & EV_NEW) != 0) != ((*events_r & EV_EXPUNGE) != 0) ||
	    ((*events_r & EV_FLAGS) && !(*events_r & EV_NEW))) {
		ps->error = "MessageNew and MessageExpunge go together, and FlagChange needs both";
		return false;
	}
	return true;
}

/* one-or-more-mailbox into g->names; false after a reply was sent (*replied_r) or on a
 * syntax error. */
static bool parse_mailboxes(struct imap_session *s, const char *tag, struct imap_parser *ps,
			    struct notify_group *g, size_t *total, bool *replied_r)
{
	bool many = imap_peek(ps, '(');

	if (many)
		ps->p++;
	for (;;) {
		char *name = imap_parse_mailbox(s, tag, ps);
		if (name == NULL) {
			*replied_r = true;
			return false;
		}
		g->names = xrealloc(g->names, (g->count + 1) * sizeof(char *));
		g->names[g->count++] = name;
		if (++*total > LIMIT_IMAP_NOTIFY_MAILBOXES) {
			imap_tagged(s, tag, "%s NO [LIMIT] NOTIFY watches at most %d mailboxes", tag,
				    LIMIT_IMAP_NOTIFY_MAILBOXES);
			*replied_r = true;
			return false;
		}
		if (!many)
			return true;
		if (imap_peek(ps, ')')) {
			ps->p++;
			return true;
		}
		if (!imap_parse_sp(ps))
			return false;
	}
}

static struct notify_group *group_new(struct imap_notify *nt)
{
	nt->groups = xrealloc(nt->groups, (nt->group_count + 1) * sizeof(*nt->groups));
	memset(&nt->groups[nt->group_count], 0, sizeof(*nt->groups));
	return &nt->groups[nt->group_count++];
}

/* event-group: "(" filter-mailboxes SP events ")". */
static bool parse_group(struct imap_session *s, const char *tag, struct imap_parser *ps,
			struct imap_notify *nt, size_t *total, bool *bad_r, bool *replied_r)
{
	struct imap_slice a;

	if (!imap_parse_char(ps, '(') || !imap_parse_atom(ps, &a))
		return false;
	if (imap_slice_ieq(&a, "selected") || imap_slice_ieq(&a, "selected-delayed")) {
		if (nt->selected_set) {
			ps->error = "SELECTED given twice";
			return false;
		}
		nt->selected_set = true;
		nt->selected_delayed = imap_slice_ieq(&a, "selected-delayed");
		if (!imap_parse_sp(ps) ||
		    !parse_events(s, ps, true, &nt->selected_events, &nt->fetch_atts, bad_r))
			return false;
	} else {
		struct notify_group *g = group_new(nt);
		unsigned unused = 0;

		if (imap_slice_ieq(&a, "inboxes"))
			g->kind = F_INBOXES;
		else if (imap_slice_ieq(&a, "personal"))
			g->kind = F_PERSONAL;
		else if (imap_slice_ieq(&a, "subscribed"))
			g->kind = F_SUBSCRIBED;
		else if (imap_slice_ieq(&a, "subtree"))
			g->kind = F_SUBTREE;
		else if (imap_slice_ieq(&a, "mailboxes"))
			g->kind = F_MAILBOXES;
		else {
			ps->error = "Unknown mailbox filter";
			return false;
		}
		if ((g->kind == F_SUBTREE || g->kind == F_MAILBOXES) &&
		    (!imap_parse_sp(ps) || !parse_mailboxes(s, tag, ps, g, total, replied_r)))
			return false;
		if (!imap_parse_sp(ps) || !parse_events(s, ps, false, &g->events, &unused, bad_r))
			return false;
	}
	return imap_parse_char(ps, ')');
}

static struct imap_notify *notify_new(struct imap_session *s)
{
	struct imap_notify *nt = xcalloc(1, sizeof(*nt));

	nt->feed = xcalloc(1, sizeof(*nt->feed));
	nt->feed->conn = s->conn;
	atomic_init(&nt->feed->refs, 1);
	atomic_init(&nt->feed->in_flight, 0);
	atomic_init(&nt->feed->overflowed, false);
	/* The feed holds a reference so posts stay valid until it is unsubscribed. */
	net_conn_ref(s->conn);
	return nt;
}

static void notify_set(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_notify *nt = notify_new(s);
	struct notify_set_job *job;
	struct imap_slice a;
	bool want_status = false, bad = false, replied = false;
	size_t total = 0;
	uint8_t *save = ps->p;

	if (imap_parse_atom(ps, &a) && imap_slice_ieq(&a, "STATUS")) {
		want_status = true;
	} else {
		ps->p = save; /* no STATUS indicator: the groups follow */
		ps->error = NULL;
	}
	if (want_status && !imap_parse_sp(ps))
		goto syntax;
	for (;;) {
		if (!parse_group(s, tag, ps, nt, &total, &bad, &replied)) {
			if (replied) {
				notify_free(&nt);
				return;
			}
			goto syntax;
		}
		if (!imap_peek(ps, ' '))
			break;
		ps->p++;
	}
	if (!imap_parse_crlf(ps))
		goto syntax;
	if (bad) {
		/* §3.1: NO with BADEVENT listing every event the server supports. */
		imap_tagged(s, tag, "%s NO [BADEVENT (" SUPPORTED_EVENTS ")] Event not supported",
			    tag);
		notify_free(&nt);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->nt = nt;
	job->tag = xstrdup(tag);
	job->selected_name = s->sel != NULL ? xstrdup(s->sel->name) : NULL;
	job->want_status = want_status;
	job->utf8 = s->enabled_utf8;
	job->condstore = s->enabled_condstore;
	buf_init(&job->out);
	s->busy = true;
	net_conn_offload(s->conn, set_work, set_done, job);
	return;
syntax:
	imap_bad(s, tag, ps->error ? ps->error : "Invalid NOTIFY arguments");
	notify_free(&nt);
}

void imap_cmd_notify(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_slice a;

	if (!imap_parse_atom(ps, &a)) {
		imap_bad(s, tag, "Expected SET or NONE");
		return;
	}
	if (imap_slice_ieq(&a, "NONE")) {
		if (!imap_parse_crlf(ps)) {
			imap_bad(s, tag, "NOTIFY NONE takes no arguments");
			return;
		}
		notify_free(&s->notify);
		imap_tagged(s, tag, "%s OK NOTIFY completed", tag);
		return;
	}
	if (!imap_slice_ieq(&a, "SET") || !imap_parse_sp(ps)) {
		imap_bad(s, tag, "Expected SET or NONE");
		return;
	}
	notify_set(s, tag, ps);
}
