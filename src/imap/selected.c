/* The selected mailbox as this session's client sees it, and the change feed that keeps many
 * sessions of one mailbox in step.
 *
 * Invariants
 *  1. sel->uids is sorted and holds exactly the messages the client was told about: it grows
 *     only when "* n EXISTS" is written and shrinks only when "* n EXPUNGE" is written, so
 *     sequence numbers always mean what the client thinks they mean (RFC 9051 §5.5).
 *  2. Store callbacks run on whatever thread committed a change. They copy the event and post
 *     it to the session's loop (net_conn_post); nothing else of the session is touched there.
 *  3. Posted events are taken into s->updates at once and reported at points where
 *     RFC 9051 §7.5.1 allows: EXISTS and FLAGS after any command, EXPUNGE only when the
 *     command is not a FETCH, STORE or SEARCH by sequence number; during IDLE immediately.
 *  4. Each selection has a generation number; posts from an older selection are dropped.
 *  5. What a session holds for its client is bounded, however many changes it is not told
 *     about (a client that sends no command, an IDLE client that does not read):
 *     - flag changes are coalesced per UID, the latest wins;
 *     - their keywords are kept up to LIMIT_IMAP_PENDING_FLAG_BYTES in all; past that a
 *       new entry keeps only its UID and a hash of its flags ("stale"), and the flags are
 *       read again from the store before the next command runs, or at once during IDLE
 *       ("resync", in batches, waiting for the client to read between batches). Past
 *       LIMIT_IMAP_PENDING_FLAG_UIDS entries even the UIDs go: every message of the view
 *       is re-read;
 *     - appended and expunged UIDs are 4 octets each; past LIMIT_IMAP_PENDING_UIDS of either
 *       the session says "* BYE" and closes (it would cost more to catch up than to
 *       reconnect);
 *     - posts in flight carry keyword text only while the feed has less than
 *       LIMIT_IMAP_FEED_QUEUED_BYTES in flight, UIDs alone beyond (they become stale);
 *     - while IDLE, nothing more is written while IMAP_OUTPUT_HIGH_WATER is queued.
 *     Reporting a stale entry's flags from the store can repeat flags the client has seen,
 *     never leave it with older ones: a flag event always arrives after the commit it
 *     describes, so the last report of a UID is its newest state. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"
#include "sort.h"

/* One per selection; shared by the subscription and the posts in flight. */
struct imap_feed {
	struct net_conn *conn;
	unsigned generation;
	atomic_uint refs;      /* the subscription + each post in flight */
	atomic_size_t queued;  /* octets of posts not yet taken in by the loop */
};

/* One change-feed event copied for the session's loop. FLAGS keep each distinct keyword
 * string once (a STORE on 1:* gives every message the same ones). */
struct feed_post {
	struct imap_feed *feed;
	uint64_t posted_ns; /* for the push latency histogram */
	enum store_event_kind kind;
	unsigned generation;
	size_t count;
	size_t bytes;	   /* counted in feed->queued */
	bool uids_only;	   /* FLAGS without flags: read them from the store */
	uint32_t *uids;
	uint32_t *flags;
	uint64_t *modseqs;  /* FLAGS: each message's MODSEQ (RFC 7162 §3.2.4) */
	uint32_t *kw_off;  /* keywords = kw_pool + kw_off[i] - 1; 0 = none */
	char *kw_pool;
};

/* A coalesced flag change of one UID (uid 0 = free slot). */
struct flag_entry {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	uint64_t hash;	/* of flags and keywords, kept when the keywords are dropped */
	char *keywords; /* NULL when none, or when stale */
	bool stale;
};

struct uid_list {
	uint32_t *v;
	size_t count, cap;
};

/* Batches of stale flags read from the store. */
struct imap_resync {
	struct store_account *acct;
	uint64_t mailbox_id;
	uint32_t *uids; /* sorted snapshot of what to re-read */
	size_t n, next, end;
	bool whole_view; /* the snapshot is the view, not the stale entries */
	bool job_running, waiting_drain, orphaned;
	struct store_msg *msgs;
	size_t count;
	enum store_error error;
	void (*then)(struct imap_session *s); /* NULL during IDLE */
};

struct imap_updates {
	unsigned generation;
	struct uid_list appended, expunged;
	struct flag_entry *slots; /* open addressing, capacity a power of two */
	size_t cap, used, stale, kw_bytes;
	bool all_stale; /* every message of the view needs its flags re-read */
	struct buf new_keywords; /* of appended messages, announced with their EXISTS */
	bool waiting_drain;
	struct imap_resync *resync;
};

/* Stale UIDs read per store job: a range scan of at most this many UIDs. */
#define RESYNC_BATCH_SPAN 256

/* ---------------- the feed: posts from committing threads ---------------- */

static void feed_unref(struct imap_feed *feed)
{
	if (atomic_fetch_sub(&feed->refs, 1) == 1)
		free(feed);
}

static void post_free(struct feed_post *p)
{
	free(p->uids);
	free(p->flags);
	free(p->modseqs);
	free(p->kw_off);
	free(p->kw_pool);
	free(p);
}

static void updates_take(struct imap_session *s, struct feed_post *p);

/* On the session's loop. */
static void feed_deliver(void *session, void *arg)
{
	struct imap_session *s = session;
	struct feed_post *p = arg;

	atomic_fetch_sub(&p->feed->queued, p->bytes);
	feed_unref(p->feed);
	/* The current selection, or the one a SELECT job is opening (its events must not be
	 * lost between the subscription and the SELECT reply). */
	if (s != NULL && p->generation == s->sel_generation && !net_conn_is_closing(s->conn)) {
		updates_take(s, p);
		metrics_observe_since(METRICS_HIST_PUSH, p->posted_ns);
	}
	post_free(p);
}

static void post_copy_flags(struct feed_post *p, const struct store_event *ev,
			    size_t queued_before)
{
	struct buf pool;
	const char *prev = NULL;
	size_t prev_off = 0;

	buf_init(&pool);
	p->flags = xmalloc(ev->count * sizeof(uint32_t));
	p->modseqs = xmalloc(ev->count * sizeof(uint64_t));
	p->kw_off = xmalloc(ev->count * sizeof(uint32_t));
	for (size_t i = 0; i < ev->count; i++) {
		const char *kw = ev->msgs[i].keywords;
		p->flags[i] = ev->msgs[i].flags;
		p->modseqs[i] = ev->msgs[i].modseq;
		if (kw == NULL || *kw == '\0') {
			p->kw_off[i] = 0;
			continue;
		}
		if (prev == NULL || strcmp(prev, kw) != 0) {
			prev = kw;
			prev_off = pool.len + 1;
			buf_append(&pool, kw, strlen(kw) + 1);
		}
		p->kw_off[i] = (uint32_t)prev_off;
		if (queued_before + pool.len > LIMIT_IMAP_FEED_QUEUED_BYTES ||
		    pool.len > UINT32_MAX / 2) {
			/* The loop is behind: send UIDs only, the loop reads the rest. */
			free(p->flags);
			free(p->kw_off);
			free(p->modseqs);
			p->flags = p->kw_off = NULL;
			p->modseqs = NULL;
			p->uids_only = true;
			buf_free(&pool);
			return;
		}
	}
	p->kw_pool = (char *)pool.data; /* ownership moves to the post */
	p->bytes += pool.len + ev->count * (2 * sizeof(uint32_t) + sizeof(uint64_t));
}

/* On the committing thread (store contract 4): copy and post, nothing more. */
static void feed_event(const struct store_event *ev, void *ctx)
{
	struct imap_feed *feed = ctx;
	struct feed_post *p;

	if (ev->kind != STORE_EVENT_APPEND && ev->kind != STORE_EVENT_FLAGS &&
	    ev->kind != STORE_EVENT_EXPUNGE)
		return;
	if (ev->count == 0)
		return;
	p = xcalloc(1, sizeof(*p));
	p->feed = feed;
	p->posted_ns = metrics_now_ns();
	p->kind = ev->kind;
	p->generation = feed->generation;
	p->count = ev->count;
	p->uids = xmalloc(ev->count * sizeof(uint32_t));
	for (size_t i = 0; i < ev->count; i++)
		p->uids[i] = ev->msgs[i].uid;
	p->bytes = ev->count * sizeof(uint32_t);
	/* Appended messages bring keywords too: the client hears of new ones in FLAGS. */
	if (ev->kind == STORE_EVENT_FLAGS || ev->kind == STORE_EVENT_APPEND)
		post_copy_flags(p, ev, atomic_load(&feed->queued));
	atomic_fetch_add(&feed->queued, p->bytes);
	atomic_fetch_add(&feed->refs, 1);
	net_conn_post(feed->conn, feed_deliver, p);
}

/* ---------------- the selection ---------------- */

struct imap_selected *imap_selected_new(struct imap_session *s, uint64_t id, const char *name,
					uint32_t uidvalidity, bool readonly)
{
	struct imap_selected *sel = xcalloc(1, sizeof(*sel));

	sel->id = id;
	sel->name = xstrdup(name);
	sel->uidvalidity = uidvalidity;
	sel->readonly = readonly;
	sel->generation = ++s->sel_generation;
	buf_init(&sel->keywords);
	sel->feed = xcalloc(1, sizeof(*sel->feed));
	sel->feed->conn = s->conn;
	sel->feed->generation = sel->generation;
	atomic_init(&sel->feed->refs, 1);
	atomic_init(&sel->feed->queued, 0);
	/* The feed holds a reference so posts stay valid until it is unsubscribed. */
	net_conn_ref(s->conn);
	return sel;
}

void imap_feed_subscribe(struct net_conn *conn, struct store_account *acct,
			 struct imap_selected *sel)
{
	(void)conn;
	sel->sub = store_subscribe(acct, sel->id, feed_event, sel->feed);
}

void imap_view_add(struct imap_selected *sel, uint32_t uid)
{
	if (sel->count > 0 && uid <= sel->uids[sel->count - 1])
		return;
	if (sel->count == sel->cap) {
		sel->cap = sel->cap ? sel->cap * 2 : 16;
		sel->uids = xrealloc(sel->uids, sel->cap * sizeof(uint32_t));
	}
	sel->uids[sel->count++] = uid;
}

static void selected_destroy(struct imap_selected **selp)
{
	struct imap_selected *sel = *selp;

	if (sel == NULL)
		return;
	/* After this returns no callback of ours runs (store contract); posts already made
	 * carry the generation and are dropped on arrival, and hold the feed until then. */
	store_unsubscribe(&sel->sub);
	net_conn_unref(sel->feed->conn);
	feed_unref(sel->feed);
	free(sel->uids);
	free(sel->recent);
	buf_free(&sel->keywords);
	free(sel->saved_uids);
	free(sel->name);
	free(sel);
	*selp = NULL;
}

void imap_selected_discard(struct imap_selected **sel)
{
	selected_destroy(sel);
}

/* ---------------- coalesced flag changes ---------------- */

static uint64_t flags_hash(uint32_t flags, const char *keywords)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ flags;

	/* FNV-1a: only ever compared with what this session itself reported. */
	for (const char *k = keywords ? keywords : ""; *k; k++) {
		h ^= (uint8_t)*k;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static size_t uid_slot(uint32_t uid, size_t cap)
{
	return (size_t)((uid * 2654435761u) & (cap - 1));
}

static struct flag_entry *flag_find(struct imap_updates *u, uint32_t uid)
{
	if (u->cap == 0)
		return NULL;
	for (size_t i = uid_slot(uid, u->cap);; i = (i + 1) & (u->cap - 1)) {
		if (u->slots[i].uid == uid)
			return &u->slots[i];
		if (u->slots[i].uid == 0)
			return NULL;
	}
}

static void flag_table_resize(struct imap_updates *u, size_t cap)
{
	struct flag_entry *old = u->slots;
	size_t old_cap = u->cap;

	u->slots = cap ? xcalloc(cap, sizeof(*u->slots)) : NULL;
	u->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].uid == 0)
			continue;
		size_t j = uid_slot(old[i].uid, cap);
		while (u->slots[j].uid != 0)
			j = (j + 1) & (cap - 1);
		u->slots[j] = old[i];
	}
	free(old);
}

static struct flag_entry *flag_get(struct imap_updates *u, uint32_t uid)
{
	struct flag_entry *e = flag_find(u, uid);

	if (e != NULL)
		return e;
	if ((u->used + 1) * 4 > u->cap * 3)
		flag_table_resize(u, u->cap ? u->cap * 2 : 64);
	size_t i = uid_slot(uid, u->cap);
	while (u->slots[i].uid != 0)
		i = (i + 1) & (u->cap - 1);
	e = &u->slots[i];
	memset(e, 0, sizeof(*e));
	e->uid = uid;
	u->used++;
	return e;
}

static void flag_entry_drop_keywords(struct imap_updates *u, struct flag_entry *e)
{
	if (e->keywords != NULL) {
		u->kw_bytes -= strlen(e->keywords) + 1;
		free(e->keywords);
		e->keywords = NULL;
	}
}

static void flag_mark_stale(struct imap_updates *u, struct flag_entry *e, bool hash_known)
{
	flag_entry_drop_keywords(u, e);
	if (!hash_known)
		e->hash = 0;
	if (!e->stale)
		u->stale++;
	e->stale = true;
}

/* Removes the entry at e (backward-shift deletion keeps every probe chain unbroken). */
static void flag_remove(struct imap_updates *u, struct flag_entry *e)
{
	size_t mask = u->cap - 1;
	size_t i = (size_t)(e - u->slots);

	flag_entry_drop_keywords(u, e);
	if (e->stale)
		u->stale--;
	u->used--;
	for (size_t j = i;;) {
		j = (j + 1) & mask;
		if (u->slots[j].uid == 0)
			break;
		size_t k = uid_slot(u->slots[j].uid, u->cap);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		u->slots[i] = u->slots[j];
		i = j;
	}
	memset(&u->slots[i], 0, sizeof(u->slots[i]));
}

static void flag_table_clear(struct imap_updates *u)
{
	for (size_t i = 0; i < u->cap; i++)
		free(u->slots[i].keywords);
	free(u->slots);
	u->slots = NULL;
	u->cap = u->used = u->stale = u->kw_bytes = 0;
}

static void flag_record(struct imap_updates *u, uint32_t uid, uint32_t flags, uint64_t modseq,
			const char *kw)
{
	struct flag_entry *e = flag_get(u, uid);

	flag_entry_drop_keywords(u, e);
	e->flags = flags;
	e->modseq = modseq;
	e->hash = flags_hash(flags, kw);
	if (kw != NULL && u->kw_bytes + strlen(kw) + 1 > LIMIT_IMAP_PENDING_FLAG_BYTES) {
		/* Past the budget: the UID and the hash stay, the store has the rest. */
		flag_mark_stale(u, e, true);
		return;
	}
	if (e->stale)
		u->stale--;
	e->stale = false;
	if (kw != NULL) {
		e->keywords = xstrdup(kw);
		u->kw_bytes += strlen(kw) + 1;
	}
}

/* ---------------- taking events in ---------------- */

static void uid_list_add(struct uid_list *l, const uint32_t *uids, size_t n)
{
	if (l->count + n > l->cap) {
		l->cap = l->count + n > l->cap * 2 ? l->count + n : l->cap * 2;
		l->v = xrealloc(l->v, l->cap * sizeof(uint32_t));
	}
	memcpy(l->v + l->count, uids, n * sizeof(uint32_t));
	l->count += n;
}

static void uid_list_clear(struct uid_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void resync_free(struct imap_resync **rp)
{
	struct imap_resync *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	if (r->job_running) {
		/* The job's done() frees it. */
		r->orphaned = true;
		return;
	}
	store_msg_list_free(&r->msgs, r->count);
	free(r->uids);
	free(r);
}

static void updates_clear(struct imap_updates *u)
{
	uid_list_clear(&u->appended);
	uid_list_clear(&u->expunged);
	flag_table_clear(u);
	buf_free(&u->new_keywords);
	u->all_stale = false;
	u->waiting_drain = false;
	resync_free(&u->resync);
}

static bool updates_need_resync(const struct imap_updates *u)
{
	return u != NULL && (u->stale > 0 || u->all_stale);
}

static void updates_overflow(struct imap_session *s)
{
	log_info("proto=imap conn=%llu user=%s msg=\"too many changes not yet reported; "
		 "disconnecting\"",
		 (unsigned long long)net_conn_id(s->conn), s->user ? s->user : "-");
	imap_reply(s, "* BYE [LIMIT] Too many changes to this mailbox; please reconnect");
	imap_logout(s);
}

static void idle_push(struct imap_session *s);

static void updates_take(struct imap_session *s, struct feed_post *p)
{
	struct imap_updates *u = s->updates;

	if (u == NULL)
		u = s->updates = xcalloc(1, sizeof(*u));
	if (u->generation != p->generation) {
		updates_clear(u);
		u->generation = p->generation;
	}
	/* Live searches check appended and changed messages again (context.c). */
	if (p->kind == STORE_EVENT_APPEND || p->kind == STORE_EVENT_FLAGS)
		imap_context_touch(s, p->uids, p->count);
	switch (p->kind) {
	case STORE_EVENT_APPEND:
		uid_list_add(&u->appended, p->uids, p->count);
		/* NOTIFY MessageNew (FLAGS): the FETCH after EXISTS comes from these. */
		if (p->flags != NULL && imap_notify_new_wants_flags(s))
			for (size_t i = 0; i < p->count; i++)
				flag_record(u, p->uids[i], p->flags[i], p->modseqs[i],
					    p->kw_off[i] ? p->kw_pool + p->kw_off[i] - 1 : NULL);
		for (size_t i = 0; p->kw_off != NULL && i < p->count; i++)
			if (p->kw_off[i] != 0 && u->new_keywords.len < LIMIT_IMAP_ANNOUNCED_KEYWORDS)
				imap_keywords_collect(&u->new_keywords,
						      p->kw_pool + p->kw_off[i] - 1);
		break;
	case STORE_EVENT_EXPUNGE:
		uid_list_add(&u->expunged, p->uids, p->count);
		break;
	default:
		if (u->all_stale)
			break; /* every flag is read again anyway */
		for (size_t i = 0; i < p->count; i++) {
			if (p->uids_only) {
				flag_mark_stale(u, flag_get(u, p->uids[i]), false);
				continue;
			}
			const char *kw = p->kw_off[i] ? p->kw_pool + p->kw_off[i] - 1 : NULL;
			flag_record(u, p->uids[i], p->flags[i], p->modseqs[i], kw);
		}
		if (u->used > LIMIT_IMAP_PENDING_FLAG_UIDS) {
			flag_table_clear(u);
			u->all_stale = true;
		}
		break;
	}
	if (u->appended.count > LIMIT_IMAP_PENDING_UIDS ||
	    u->expunged.count > LIMIT_IMAP_PENDING_UIDS) {
		updates_clear(u);
		updates_overflow(s);
		return;
	}
	/* RFC 2177: while idling, updates go out at once; with NOTIFY SELECTED, whenever no
	 * command runs (RFC 5465 §3). */
	if (s->sel != NULL && (s->idle_tag != NULL || imap_notify_push_selected_event(s, p->kind)))
		idle_push(s);
}

void imap_selected_free(struct imap_session *s)
{
	imap_contexts_free(s); /* RFC 5267 §4.2: they end with the selection */
	if (s->updates != NULL) {
		updates_clear(s->updates);
		free(s->updates);
		s->updates = NULL;
	}
	if (s->sel != NULL)
		s->sel_generation++;
	selected_destroy(&s->sel);
}

/* ---------------- reporting ---------------- */

/* Takes uid out of the view; returns its former sequence number, 0 when it was not in it. */
static uint32_t view_remove(struct imap_selected *sel, uint32_t uid)
{
	uint32_t msn = imap_msn_of(sel, uid);

	if (msn == 0)
		return 0;
	memmove(sel->uids + msn - 1, sel->uids + msn, (sel->count - msn) * sizeof(uint32_t));
	sel->count--;
	return msn;
}

void imap_view_expunge(struct imap_session *s, uint32_t uid)
{
	imap_view_expunge_many(s, &uid, 1);
}

void imap_view_expunge_many(struct imap_session *s, const uint32_t *uids, size_t n)
{
	imap_context_expunge(s, uids, n); /* REMOVEFROM, numbered as before the EXPUNGE */
	if (!s->enabled_qresync) {
		for (size_t i = 0; i < n; i++) {
			uint32_t msn = view_remove(s->sel, uids[i]);
			if (msn != 0)
				imap_reply(s, "* %u EXPUNGE", msn);
		}
		return;
	}
	/* RFC 7162 §3.2.10: after ENABLE QRESYNC, VANISHED replaces EXPUNGE. */
	uint32_t *gone = xmalloc((n ? n : 1) * sizeof(uint32_t));
	size_t count = 0;
	struct buf line;

	for (size_t i = 0; i < n; i++)
		if (view_remove(s->sel, uids[i]) != 0)
			gone[count++] = uids[i];
	if (count > 0) {
		buf_init(&line);
		buf_append_str(&line, "* VANISHED ");
		imap_append_uid_set(&line, gone, count);
		buf_append_str(&line, "\r\n");
		net_conn_write(s->conn, line.data, line.len);
		buf_free(&line);
	}
	free(gone);
}

static void write_flags(struct imap_session *s, struct buf *line, uint32_t uid, uint32_t flags,
			uint64_t modseq, const char *keywords)
{
	uint32_t msn = imap_msn_of(s->sel, uid);

	if (msn == 0)
		return;
	imap_keywords_announce(s, keywords);
	buf_reset(line);
	/* UID first in every FETCH, unsolicited ones too: Thunderbird relies on finding it. */
	buf_printf(line, "* %u FETCH (UID %u FLAGS ", msn, uid);
	imap_append_flags_recent(line, flags, keywords,
				 !s->enabled_rev2 && imap_recent_is(s->sel, uid));
	/* RFC 7162 §3.2.4: unsolicited FETCH carries MODSEQ once CONDSTORE is on. */
	if (s->enabled_condstore && modseq != 0)
		buf_printf(line, " MODSEQ (%llu)", (unsigned long long)modseq);
	buf_append_str(line, ")\r\n");
	net_conn_write(s->conn, line->data, line->len);
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Writes the flag changes held with their flags, in UID order; stale ones stay. */
static void flush_cached_flags(struct imap_session *s, struct imap_updates *u)
{
	uint32_t *uids;
	size_t n = 0;
	struct buf line;

	if (u->used == u->stale)
		return;
	uids = xmalloc((u->used - u->stale) * sizeof(uint32_t));
	for (size_t i = 0; i < u->cap; i++)
		if (u->slots[i].uid != 0 && !u->slots[i].stale)
			uids[n++] = u->slots[i].uid;
	qsort(uids, n, sizeof(uint32_t), uid_cmp);
	buf_init(&line);
	for (size_t i = 0; i < n; i++) {
		struct flag_entry *e = flag_find(u, uids[i]);
		write_flags(s, &line, e->uid, e->flags, e->modseq, e->keywords);
		flag_remove(u, e);
	}
	buf_free(&line);
	free(uids);
	if (u->used == 0)
		flag_table_clear(u);
}

void imap_flush_updates(struct imap_session *s, bool allow_expunge)
{
	struct imap_updates *u = s->updates;

	if (s->sel == NULL || u == NULL)
		return;
	if (u->generation != s->sel->generation) {
		updates_clear(u);
		return;
	}
	if (u->new_keywords.len > 0) {
		imap_keywords_announce(s, buf_cstr(&u->new_keywords));
		buf_reset(&u->new_keywords);
	}
	if (u->appended.count > 0) {
		size_t before = s->sel->count;
		/* Appends only add UIDs above the view's, so reporting them ahead of an
		 * EXPUNGE held back keeps every sequence number right. */
		for (size_t i = 0; i < u->appended.count; i++) {
			size_t had = s->sel->count;
			imap_view_add(s->sel, u->appended.v[i]);
			if (s->sel->count != had)
				imap_recent_arrived(s, u->appended.v[i]);
		}
		uid_list_clear(&u->appended);
		if (s->sel->count != before) {
			imap_reply(s, "* %zu EXISTS", s->sel->count);
			/* RFC 3501 §7.3.2: RECENT goes with every change of EXISTS. */
			if (!s->enabled_rev2)
				imap_reply(s, "* %u RECENT", imap_recent_count(s->sel));
			imap_notify_new_messages(s, before); /* RFC 5465 §5.2 */
		}
	}
	flush_cached_flags(s, u);
	if (allow_expunge && u->expunged.count > 0) {
		for (size_t i = 0; i < u->expunged.count; i++) {
			struct flag_entry *e = flag_find(u, u->expunged.v[i]);
			if (e != NULL)
				flag_remove(u, e);
		}
		qsort(u->expunged.v, u->expunged.count, sizeof(uint32_t), uid_cmp);
		imap_view_expunge_many(s, u->expunged.v, u->expunged.count);
		uid_list_clear(&u->expunged);
	}
}

void imap_pending_forget_flags(struct imap_session *s, uint32_t uid, uint32_t flags,
			       const char *keywords)
{
	struct imap_updates *u = s->updates;
	struct flag_entry *e = u ? flag_find(u, uid) : NULL;

	/* Our own STORE already reported these flags; its echo from the feed would only
	 * repeat them (and break .SILENT, RFC 9051 §6.4.6). */
	if (e != NULL && e->flags == flags && e->hash == flags_hash(flags, keywords) &&
	    (e->stale || strcmp(e->keywords ? e->keywords : "", keywords ? keywords : "") == 0))
		flag_remove(u, e);
}

/* ---------------- resync: stale flags read from the store ---------------- */

static void resync_step(struct imap_session *s);

static void resync_work(void *arg)
{
	struct imap_resync *r = arg;
	struct store_list_query q = { r->uids[r->next], r->uids[r->end - 1], 0 };

	r->error = store_msg_list(r->acct, r->mailbox_id, &q, &r->msgs, &r->count, NULL);
}

/* Ends the resync: the held command runs, or IDLE reports what else came in. */
static void resync_finish(struct imap_session *s)
{
	struct imap_updates *u = s->updates;
	void (*then)(struct imap_session *) = u->resync->then;

	resync_free(&u->resync);
	s->busy = false;
	if (then != NULL) {
		then(s);
		return;
	}
	if (s->idle_tag != NULL || imap_notify_push_selected(s))
		idle_push(s);
	if (!s->busy)
		imap_command_done(s);
}

static void resync_report(struct imap_session *s, struct imap_resync *r)
{
	struct imap_updates *u = s->updates;
	struct buf line;
	size_t j = 0;

	buf_init(&line);
	for (size_t i = r->next; i < r->end; i++) {
		uint32_t uid = r->uids[i];
		struct flag_entry *e = flag_find(u, uid);
		while (j < r->count && r->msgs[j].uid < uid)
			j++;
		bool found = j < r->count && r->msgs[j].uid == uid;
		if (r->whole_view) {
			if (found)
				write_flags(s, &line, uid, r->msgs[j].flags, r->msgs[j].modseq,
					    r->msgs[j].keywords);
			continue;
		}
		/* An entry that got its flags from a newer event meanwhile is reported with
		 * the cached flags; one gone from the store waits for its EXPUNGE. */
		if (e == NULL || !e->stale)
			continue;
		if (found)
			write_flags(s, &line, uid, r->msgs[j].flags, r->msgs[j].modseq,
					    r->msgs[j].keywords);
		flag_remove(u, e);
	}
	buf_free(&line);
	if (u->used == 0)
		flag_table_clear(u);
	store_msg_list_free(&r->msgs, r->count);
	r->next = r->end;
}

static void resync_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct imap_resync *r = arg;

	r->job_running = false;
	if (r->orphaned || s == NULL || s->updates == NULL || s->updates->resync != r) {
		resync_free(&r);
		return;
	}
	if (net_conn_is_closing(s->conn)) {
		resync_free(&s->updates->resync);
		return;
	}
	if (r->error != STORE_OK) {
		log_error("proto=imap conn=%llu msg=\"cannot read flags to report\"",
			  (unsigned long long)net_conn_id(s->conn));
		resync_free(&s->updates->resync);
		imap_reply(s, "* BYE [SERVERBUG] Cannot read the mailbox index");
		imap_logout(s);
		return;
	}
	resync_report(s, r);
	resync_step(s);
}

/* Next batch, unless the client has not read what was written yet. */
static void resync_step(struct imap_session *s)
{
	struct imap_resync *r = s->updates->resync;

	r->waiting_drain = false;
	if (net_conn_is_closing(s->conn)) {
		resync_free(&s->updates->resync);
		return;
	}
	if (net_conn_output_length(s->conn) >= IMAP_OUTPUT_HIGH_WATER) {
		r->waiting_drain = true;
		net_conn_want_drain(s->conn, IMAP_OUTPUT_LOW_WATER);
		return;
	}
	if (r->next >= r->n) {
		resync_finish(s);
		return;
	}
	r->end = r->next + 1;
	while (r->end < r->n && r->uids[r->end] - r->uids[r->next] < RESYNC_BATCH_SPAN)
		r->end++;
	r->job_running = true;
	net_conn_offload(s->conn, resync_work, resync_done, r);
}

/* Snapshots what is stale and starts reading it; then(s) runs when it is all reported (NULL
 * during IDLE). Appends and cached flags go first, so every stale UID has its number. */
static void resync_start(struct imap_session *s, void (*then)(struct imap_session *s))
{
	struct imap_updates *u = s->updates;
	struct imap_resync *r = xcalloc(1, sizeof(*r));

	imap_flush_updates(s, false);
	r->acct = s->acct;
	r->mailbox_id = s->sel->id;
	r->then = then;
	if (u->all_stale) {
		r->whole_view = true;
		r->n = s->sel->count;
		r->uids = xmalloc((r->n + 1) * sizeof(uint32_t));
		memcpy(r->uids, s->sel->uids, r->n * sizeof(uint32_t));
		u->all_stale = false;
	} else {
		r->uids = xmalloc((u->stale + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < u->cap; i++)
			if (u->slots[i].uid != 0 && u->slots[i].stale)
				r->uids[r->n++] = u->slots[i].uid;
		qsort(r->uids, r->n, sizeof(uint32_t), uid_cmp);
	}
	u->resync = r;
	s->busy = true;
	resync_step(s);
}

bool imap_updates_resync(struct imap_session *s, void (*then)(struct imap_session *s))
{
	if (s->sel == NULL || !updates_need_resync(s->updates) || s->updates->resync != NULL ||
	    s->updates->generation != s->sel->generation)
		return false;
	resync_start(s, then);
	return true;
}

/* ---------------- IDLE ---------------- */

/* RFC 2177: report now, as far as the client keeps reading. */
static void idle_push(struct imap_session *s)
{
	struct imap_updates *u = s->updates;

	if (u == NULL || u->resync != NULL || s->busy)
		return; /* the resync reports the rest when it ends */
	if (imap_notify_mutes_selected(s))
		return; /* RFC 5465 §4: IDLE sends what NOTIFY asked for, nothing of the selected */
	if (net_conn_output_length(s->conn) >= IMAP_OUTPUT_HIGH_WATER) {
		u->waiting_drain = true;
		net_conn_want_drain(s->conn, IMAP_OUTPUT_LOW_WATER);
		return;
	}
	u->waiting_drain = false;
	if (updates_need_resync(u)) {
		resync_start(s, NULL);
		return;
	}
	/* RFC 5465 §6.1.2: SELECTED-DELAYED holds EXPUNGE for a command that allows it. */
	imap_flush_updates(s, s->idle_tag != NULL || imap_notify_expunge_now(s));
	(void)imap_context_refresh(s, NULL); /* ADDTO/REMOVEFROM follow, from the pool */
}

void imap_updates_push(struct imap_session *s)
{
	idle_push(s);
}

void imap_updates_touch_appended(struct imap_session *s)
{
	struct imap_updates *u = s->updates;

	if (u != NULL && s->sel != NULL && u->generation == s->sel->generation)
		imap_context_touch(s, u->appended.v, u->appended.count);
}

void imap_updates_idle_start(struct imap_session *s)
{
	if (s->updates != NULL)
		idle_push(s);
	imap_notify_command_ended(s);
}

void imap_updates_drained(struct imap_session *s)
{
	struct imap_updates *u = s->updates;

	if (u == NULL)
		return;
	if (u->resync != NULL) {
		if (u->resync->waiting_drain && !u->resync->job_running)
			resync_step(s);
		return;
	}
	if (u->waiting_drain && s->sel != NULL &&
	    (s->idle_tag != NULL || imap_notify_push_selected(s)))
		idle_push(s);
}

/* ---------------- keywords the client knows ---------------- */

/* Membership in " kw1 kw2" (exact: the store keeps one spelling per keyword). */
static bool keyword_listed(const struct buf *list, const char *kw, size_t n)
{
	const char *q = (const char *)list->data;

	for (size_t i = 0; q != NULL && i < list->len;) {
		size_t m = 0;
		i++; /* space */
		while (i + m < list->len && q[i + m] != ' ')
			m++;
		if (m == n && memcmp(q + i, kw, n) == 0)
			return true;
		i += m;
	}
	return false;
}

void imap_keywords_collect(struct buf *out, const char *keywords)
{
	const char *p = keywords;

	while (p != NULL && *p) {
		size_t n = strcspn(p, " ");
		if (n > 0 && !keyword_listed(out, p, n)) {
			buf_append_byte(out, ' ');
			buf_append(out, p, n);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
}

/* RFC 3501 §7.2.6: the FLAGS response lists the flags a client may see; a keyword first set
 * by a STORE, APPEND or COPY (of any session) is announced before a FETCH shows it, with the
 * PERMANENTFLAGS that go with it. Past LIMIT_IMAP_ANNOUNCED_KEYWORDS octets of keywords the
 * list stops growing: \* in PERMANENTFLAGS already says any keyword may appear. */
void imap_keywords_announce(struct imap_session *s, const char *keywords)
{
	struct imap_selected *sel = s->sel;
	size_t before;
	const char *kw;

	if (sel == NULL || keywords == NULL || *keywords == '\0' ||
	    sel->keywords.len >= LIMIT_IMAP_ANNOUNCED_KEYWORDS)
		return;
	before = sel->keywords.len;
	imap_keywords_collect(&sel->keywords, keywords);
	if (sel->keywords.len == before)
		return;
	kw = buf_cstr(&sel->keywords);
	imap_reply(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s)", kw);
	if (sel->readonly)
		imap_reply(s, "* OK [PERMANENTFLAGS ()] Flags permitted");
	else
		imap_reply(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen"
			      " \\Draft%s \\*)] Flags permitted", kw);
}
