/* The selected mailbox as this session's client sees it, and the change feed that keeps many
 * sessions of one mailbox in step.
 *
 * Invariants
 *  1. sel->uids is sorted and holds exactly the messages the client was told about: it grows
 *     only when "* n EXISTS" is written and shrinks only when "* n EXPUNGE" is written, so
 *     sequence numbers always mean what the client thinks they mean (RFC 9051 §5.5).
 *  2. Store callbacks run on whatever thread committed a change. They copy the event and post
 *     it to the session's loop (net_conn_post); nothing else of the session is touched there.
 *  3. Posted events queue in s->pending and are reported at points where RFC 9051 §7.5.1
 *     allows: EXISTS and FLAGS after any command, EXPUNGE only when the command is not a
 *     FETCH, STORE or SEARCH by sequence number; during IDLE immediately.
 *  4. Each selection has a generation number; posts from an older selection are dropped. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

struct imap_feed {
	struct net_conn *conn;
	unsigned generation;
};

static void pending_free(struct imap_pending *p)
{
	for (size_t i = 0; p->keywords && i < p->count; i++)
		free(p->keywords[i]);
	free(p->keywords);
	free(p->flags);
	free(p->uids);
	free(p);
}

/* On the session's loop. */
static void feed_deliver(void *session, void *arg)
{
	struct imap_session *s = session;
	struct imap_pending *p = arg;

	/* The current selection, or the one a SELECT job is opening (its events must not be
	 * lost between the subscription and the SELECT reply). */
	if (s == NULL || p->generation != s->sel_generation) {
		pending_free(p);
		return;
	}
	if (s->pending_tail)
		s->pending_tail->next = p;
	else
		s->pending_head = p;
	s->pending_tail = p;
	/* RFC 2177: while idling, updates go out at once. */
	if (s->idle_tag != NULL && s->sel != NULL)
		imap_flush_updates(s, true);
}

/* On the committing thread (store contract 4): copy and post, nothing more. */
static void feed_event(const struct store_event *ev, void *ctx)
{
	struct imap_feed *feed = ctx;
	struct imap_pending *p;

	if (ev->kind != STORE_EVENT_APPEND && ev->kind != STORE_EVENT_FLAGS &&
	    ev->kind != STORE_EVENT_EXPUNGE)
		return;
	if (ev->count == 0)
		return;
	p = xcalloc(1, sizeof(*p));
	p->kind = ev->kind;
	p->generation = feed->generation;
	p->count = ev->count;
	p->uids = xmalloc(ev->count * sizeof(uint32_t));
	for (size_t i = 0; i < ev->count; i++)
		p->uids[i] = ev->msgs[i].uid;
	if (ev->kind == STORE_EVENT_FLAGS) {
		p->flags = xmalloc(ev->count * sizeof(uint32_t));
		p->keywords = xcalloc(ev->count, sizeof(char *));
		for (size_t i = 0; i < ev->count; i++) {
			p->flags[i] = ev->msgs[i].flags;
			p->keywords[i] = ev->msgs[i].keywords ? xstrdup(ev->msgs[i].keywords) : NULL;
		}
	}
	net_conn_post(feed->conn, feed_deliver, p);
}

struct imap_selected *imap_selected_new(struct imap_session *s, uint64_t id, const char *name,
					uint32_t uidvalidity, bool readonly)
{
	struct imap_selected *sel = xcalloc(1, sizeof(*sel));

	sel->id = id;
	sel->name = xstrdup(name);
	sel->uidvalidity = uidvalidity;
	sel->readonly = readonly;
	sel->generation = ++s->sel_generation;
	sel->feed = xcalloc(1, sizeof(*sel->feed));
	sel->feed->conn = s->conn;
	sel->feed->generation = sel->generation;
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
	 * carry the generation and are dropped on arrival. */
	store_unsubscribe(&sel->sub);
	net_conn_unref(sel->feed->conn);
	free(sel->feed);
	free(sel->uids);
	free(sel->name);
	free(sel);
	*selp = NULL;
}

void imap_selected_discard(struct imap_selected **sel)
{
	selected_destroy(sel);
}

void imap_selected_free(struct imap_session *s)
{
	struct imap_pending *p = s->pending_head;

	while (p) {
		struct imap_pending *next = p->next;
		pending_free(p);
		p = next;
	}
	s->pending_head = s->pending_tail = NULL;
	if (s->sel != NULL)
		s->sel_generation++;
	selected_destroy(&s->sel);
}

void imap_view_expunge(struct imap_session *s, uint32_t uid)
{
	struct imap_selected *sel = s->sel;
	uint32_t msn = imap_msn_of(sel, uid);

	if (msn == 0)
		return;
	memmove(sel->uids + msn - 1, sel->uids + msn, (sel->count - msn) * sizeof(uint32_t));
	sel->count--;
	imap_reply(s, "* %u EXPUNGE", msn);
}

void imap_flush_updates(struct imap_session *s, bool allow_expunge)
{
	struct imap_pending **pp = &s->pending_head;
	struct imap_pending *last = NULL;
	struct buf line;

	if (s->sel == NULL)
		return;
	buf_init(&line);
	while (*pp != NULL) {
		struct imap_pending *p = *pp;

		if (p->generation != s->sel->generation) {
			*pp = p->next;
			pending_free(p);
			continue;
		}
		if (p->kind == STORE_EVENT_EXPUNGE && !allow_expunge) {
			/* Held back; appends after it only add higher UIDs, so reporting
			 * them first keeps every sequence number right. */
			last = p;
			pp = &p->next;
			continue;
		}
		if (p->kind == STORE_EVENT_APPEND) {
			size_t before = s->sel->count;
			for (size_t i = 0; i < p->count; i++)
				imap_view_add(s->sel, p->uids[i]);
			if (s->sel->count != before)
				imap_reply(s, "* %zu EXISTS", s->sel->count);
		} else if (p->kind == STORE_EVENT_EXPUNGE) {
			for (size_t i = 0; i < p->count; i++)
				imap_view_expunge(s, p->uids[i]);
		} else {
			for (size_t i = 0; i < p->count; i++) {
				uint32_t msn = p->uids[i] ? imap_msn_of(s->sel, p->uids[i]) : 0;
				if (msn == 0)
					continue;
				buf_reset(&line);
				/* UID first in every FETCH (Thunderbird, TESTPLAN §6). */
				buf_printf(&line, "* %u FETCH (UID %u FLAGS ", msn, p->uids[i]);
				imap_append_flags(&line, p->flags[i], p->keywords[i]);
				buf_append_str(&line, ")\r\n");
				net_conn_write(s->conn, line.data, line.len);
			}
		}
		*pp = p->next;
		pending_free(p);
	}
	s->pending_tail = last;
	buf_free(&line);
}

void imap_pending_forget_flags(struct imap_session *s, uint32_t uid, uint32_t flags,
			       const char *keywords)
{
	/* Our own STORE already reported these flags; its echo from the feed would only
	 * repeat them (and break .SILENT, RFC 9051 §6.4.6). */
	for (struct imap_pending *p = s->pending_head; p != NULL; p = p->next) {
		if (p->kind != STORE_EVENT_FLAGS)
			continue;
		for (size_t i = 0; i < p->count; i++) {
			const char *kw = p->keywords[i] ? p->keywords[i] : "";
			if (p->uids[i] == uid && p->flags[i] == flags &&
			    strcmp(kw, keywords ? keywords : "") == 0)
				p->uids[i] = 0;
		}
	}
}
