/* \Recent for IMAP4rev1 sessions (RFC 3501 §2.3.2): exactly one session sees a new message
 * as recent.
 *
 * Design notes
 *  1. A process-wide table, keyed by account address and mailbox id, holds for each mailbox
 *     the highest UID some session has claimed as recent ("claimed"). A read-write SELECT
 *     claims every UID up to the last one in its view; a session with the mailbox selected
 *     read-write claims each new UID when it reports its EXISTS. A claim succeeds only above
 *     "claimed", so no UID is recent in two sessions. Every session takes new UIDs in commit
 *     order, so a session that claims UID n has tried every lower one first: none is lost.
 *  2. An entry is created by the first read-write SELECT of a mailbox in this process, from
 *     the store's persisted first_recent (store_mailbox_take_recent); while the process runs
 *     the entry is what counts. Creating it calls the store, which may wait for the account's
 *     lock, so it happens outside the table lock: the entry is marked initialising meanwhile
 *     and other SELECTs (worker threads) wait on the condition variable. Session loops never
 *     wait: they only claim in entries that are ready.
 *  3. Later read-write SELECTs also move the persisted first_recent forward, so after a
 *     restart what was claimed at a SELECT stays old; UIDs claimed only as they arrived are
 *     recent once more after a restart (RFC 3501 lets a new server session see them).
 *  4. EXAMINE never claims: it shows what no session has claimed, as it was at EXAMINE.
 *     IMAP4rev2 sessions have no \Recent and never claim.
 *  5. Entries live as long as the process, one per mailbox ever selected read-write
 *     (about 64 octets and the address each); a new UIDVALIDITY starts the entry afresh.
 *  6. A session's own recent UIDs are ranges in sel->recent, ascending; contiguous claims
 *     extend the last range, so a session holds few ranges however many messages arrive. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

struct recent_entry {
	struct recent_entry *next;
	uint64_t hash;
	uint64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t claimed;
	bool initialising;
	char user[];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	struct recent_entry **buckets;
	size_t cap, count;
} recent_table = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0 };

/* FNV-1a over the address and the id: the keys are ours (addresses of accounts that logged
 * in), not chosen freely by a peer, so a keyed hash buys nothing here. */
static uint64_t recent_hash(const char *user, uint64_t mailbox_id)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)user; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	for (int i = 0; i < 8; i++)
		h = (h ^ ((mailbox_id >> (i * 8)) & 0xff)) * 1099511628211ULL;
	return h;
}

/* Under the lock. */
static struct recent_entry *recent_find(const char *user, uint64_t mailbox_id, uint64_t h)
{
	if (recent_table.cap == 0)
		return NULL;
	for (struct recent_entry *e = recent_table.buckets[h % recent_table.cap]; e; e = e->next)
		if (e->hash == h && e->mailbox_id == mailbox_id && strcmp(e->user, user) == 0)
			return e;
	return NULL;
}

/* Under the lock. */
static void recent_grow(void)
{
	size_t cap = recent_table.cap ? recent_table.cap * 2 : 64;
	struct recent_entry **b = xcalloc(cap, sizeof(*b));

	for (size_t i = 0; i < recent_table.cap; i++) {
		struct recent_entry *e = recent_table.buckets[i];
		while (e != NULL) {
			struct recent_entry *next = e->next;
			e->next = b[e->hash % cap];
			b[e->hash % cap] = e;
			e = next;
		}
	}
	free(recent_table.buckets);
	recent_table.buckets = b;
	recent_table.cap = cap;
}

/* Under the lock. */
static struct recent_entry *recent_add(const char *user, uint64_t mailbox_id, uint64_t h)
{
	size_t len = strlen(user);
	struct recent_entry *e = xcalloc(1, sizeof(*e) + len + 1);

	if (recent_table.count >= recent_table.cap)
		recent_grow();
	memcpy(e->user, user, len + 1);
	e->hash = h;
	e->mailbox_id = mailbox_id;
	e->next = recent_table.buckets[h % recent_table.cap];
	recent_table.buckets[h % recent_table.cap] = e;
	recent_table.count++;
	return e;
}

static void recent_push(struct imap_selected *sel, uint32_t first, uint32_t last)
{
	if (first == 0 || first > last)
		return;
	if (sel->recent_count > 0 && sel->recent[sel->recent_count - 1].last + 1 >= first) {
		if (sel->recent[sel->recent_count - 1].last < last)
			sel->recent[sel->recent_count - 1].last = last;
		return;
	}
	if (sel->recent_count == sel->recent_cap) {
		sel->recent_cap = sel->recent_cap ? sel->recent_cap * 2 : 4;
		sel->recent = xrealloc(sel->recent, sel->recent_cap * sizeof(*sel->recent));
	}
	sel->recent[sel->recent_count].first = first;
	sel->recent[sel->recent_count].last = last;
	sel->recent_count++;
}

/* Worker thread, SELECT: the table entry, created from the store when missing (note 2).
 * Returns with the lock held and the entry ready, or NULL (lock released) when the store
 * cannot say. */
static struct recent_entry *recent_entry_ready(struct store_account *acct, const char *user,
					       const struct imap_selected *sel)
{
	uint64_t h = recent_hash(user, sel->id);
	struct recent_entry *e;
	uint32_t first = 0;

	pthread_mutex_lock(&recent_table.lock);
	for (;;) {
		e = recent_find(user, sel->id, h);
		if (e == NULL || !e->initialising)
			break;
		pthread_cond_wait(&recent_table.ready, &recent_table.lock);
	}
	if (e != NULL && e->uidvalidity == sel->uidvalidity)
		return e;
	if (e == NULL)
		e = recent_add(user, sel->id, h);
	e->initialising = true;
	e->uidvalidity = sel->uidvalidity;
	pthread_mutex_unlock(&recent_table.lock);
	enum store_error err = store_mailbox_take_recent(acct, sel->id, &first, NULL);
	pthread_mutex_lock(&recent_table.lock);
	e->initialising = false;
	e->claimed = err == STORE_OK && first > 0 ? first - 1 : UINT32_MAX - 1;
	pthread_cond_broadcast(&recent_table.ready);
	return e;
}

void imap_recent_select(struct store_account *acct, const char *user, struct imap_selected *sel,
			uint32_t last_uid, uint32_t unclaimed_from, bool claim)
{
	struct recent_entry *e;
	uint32_t first;
	bool existed;

	if (!claim) {
		/* EXAMINE: what nobody claimed; the table knows better than the store. */
		uint64_t h = recent_hash(user, sel->id);
		pthread_mutex_lock(&recent_table.lock);
		e = recent_find(user, sel->id, h);
		if (e != NULL && !e->initialising && e->uidvalidity == sel->uidvalidity)
			unclaimed_from = e->claimed + 1;
		pthread_mutex_unlock(&recent_table.lock);
		recent_push(sel, unclaimed_from, last_uid);
		return;
	}
	{
		uint64_t h = recent_hash(user, sel->id);
		pthread_mutex_lock(&recent_table.lock);
		e = recent_find(user, sel->id, h);
		existed = e != NULL && !e->initialising && e->uidvalidity == sel->uidvalidity;
		pthread_mutex_unlock(&recent_table.lock);
	}
	e = recent_entry_ready(acct, user, sel);
	first = e->claimed + 1;
	if (e->claimed < last_uid)
		e->claimed = last_uid;
	pthread_mutex_unlock(&recent_table.lock);
	recent_push(sel, first, last_uid);
	sel->recent_claims = true;
	if (existed) {
		/* Note 3: keep the persisted mark near; its answer is not needed. */
		uint32_t ignored;
		store_mailbox_take_recent(acct, sel->id, &ignored, NULL);
	}
}

void imap_recent_arrived(struct imap_session *s, uint32_t uid)
{
	struct imap_selected *sel = s->sel;
	uint64_t h;
	struct recent_entry *e;
	bool mine = false;

	if (!sel->recent_claims || s->enabled_rev2)
		return;
	h = recent_hash(s->user, sel->id);
	pthread_mutex_lock(&recent_table.lock);
	e = recent_find(s->user, sel->id, h);
	if (e != NULL && !e->initialising && e->uidvalidity == sel->uidvalidity &&
	    e->claimed < uid) {
		e->claimed = uid;
		mine = true;
	}
	pthread_mutex_unlock(&recent_table.lock);
	if (mine)
		recent_push(sel, uid, uid);
}

bool imap_recent_unclaimed_from(const char *user, uint64_t mailbox_id, uint32_t uidvalidity,
				uint32_t *first_r)
{
	uint64_t h = recent_hash(user, mailbox_id);
	struct recent_entry *e;
	bool found = false;

	pthread_mutex_lock(&recent_table.lock);
	e = recent_find(user, mailbox_id, h);
	if (e != NULL && !e->initialising && e->uidvalidity == uidvalidity) {
		*first_r = e->claimed + 1;
		found = true;
	}
	pthread_mutex_unlock(&recent_table.lock);
	return found;
}

bool imap_recent_is(const struct imap_selected *sel, uint32_t uid)
{
	return sel != NULL && imap_uid_in_ranges(uid, sel->recent, sel->recent_count);
}

uint32_t imap_recent_count(const struct imap_selected *sel)
{
	size_t n = 0;

	for (size_t i = 0; i < sel->recent_count; i++) {
		size_t a = imap_view_lower_bound(sel, sel->recent[i].first);
		size_t b = sel->recent[i].last == UINT32_MAX
				   ? sel->count
				   : imap_view_lower_bound(sel, sel->recent[i].last + 1);
		n += b - a;
	}
	return (uint32_t)n;
}
