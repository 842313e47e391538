/* Sort orders and thread-lists kept between commands, shared by every session of the process:
 * a repeated SORT of a mailbox that did not change only filters the kept order of all its
 * messages by the SEARCH result, and a repeated THREAD of the whole mailbox answers with the
 * kept thread-list, where computing them again costs a scan of every message's keys and a
 * sort or a threading of 100,000 messages.
 *
 * Invariants:
 *  1. An entry is used only when the index version (store_account_index_version: envelopes
 *     this process wrote, other processes' commits, the account's opening) equals the one
 *     read before the entry's inputs were, and the mailbox's UID list equals the entry's one:
 *     new mail, expunges and a cached envelope written since all make it a miss. Flags change
 *     no key (the search that filters the order runs afresh each time).
 *  2. Memory is bounded by LIMIT_IMAP_SORT_KEPT_BYTES over all entries and
 *     LIMIT_IMAP_SORT_KEPT_ENTRIES entries; the least recently used entry goes first, and one
 *     that would take more than a quarter of the bound is not kept.
 *  3. Entries are copied in and out under one mutex: no caller holds a pointer into one. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sort.h"

struct kept_entry {
	struct imap_kept_key key;
	uint32_t *uids;   /* the mailbox's UIDs, ascending, as listed when computed */
	size_t count;
	uint32_t *order;  /* SORT: indices into uids in sort order (NULL for THREAD) */
	uint8_t *text;    /* THREAD: the thread-list */
	size_t text_len;
	size_t bytes;
	uint64_t used;    /* tick of the last use, for eviction */
};

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept_entry kept[LIMIT_IMAP_SORT_KEPT_ENTRIES];
static size_t kept_bytes;
static uint64_t kept_tick;

static bool key_equal(const struct imap_kept_key *a, const struct imap_kept_key *b)
{
	if (!store_index_version_equal(&a->version, &b->version) || a->mailbox_id != b->mailbox_id ||
	    a->thread != b->thread || a->by_uid != b->by_uid || a->algorithm != b->algorithm || a->crit_count != b->crit_count)
		return false;
	for (size_t i = 0; i < a->crit_count; i++)
		if (a->crit[i].key != b->crit[i].key || a->crit[i].reverse != b->crit[i].reverse)
			return false;
	return true;
}

static bool uids_equal(const struct kept_entry *e, const struct store_msg *msgs, size_t n)
{
	if (e->count != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (e->uids[i] != msgs[i].uid)
			return false;
	return true;
}

static void entry_clear(struct kept_entry *e)
{
	kept_bytes -= e->bytes;
	free(e->uids);
	free(e->order);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

/* Under kept_lock: the entry for key, NULL when none. */
static struct kept_entry *entry_find(const struct imap_kept_key *key)
{
	for (size_t i = 0; i < LIMIT_IMAP_SORT_KEPT_ENTRIES; i++)
		if (kept[i].uids != NULL && key_equal(&kept[i].key, key))
			return &kept[i];
	return NULL;
}

bool imap_kept_find(const struct imap_kept_key *key, const struct store_msg *msgs, size_t n,
		    uint32_t **order_r, struct buf *text_r)
{
	struct kept_entry *e;
	bool found = false;

	pthread_mutex_lock(&kept_lock);
	e = entry_find(key);
	if (e != NULL && !uids_equal(e, msgs, n)) {
		entry_clear(e); /* the version alone should have told: never kept stale */
		e = NULL;
	}
	if (e != NULL && (key->thread ? text_r != NULL : order_r != NULL)) {
		e->used = ++kept_tick;
		if (key->thread) {
			buf_append(text_r, e->text, e->text_len);
		} else {
			*order_r = xmalloc((n + 1) * sizeof(**order_r));
			memcpy(*order_r, e->order, n * sizeof(**order_r));
		}
		found = true;
	}
	pthread_mutex_unlock(&kept_lock);
	return found;
}

/* Under kept_lock: a free slot, made by evicting the least recently used entries until the
 * slot and `bytes` more fit. */
static struct kept_entry *entry_make_room(size_t bytes)
{
	for (;;) {
		struct kept_entry *free_slot = NULL, *oldest = NULL;
		for (size_t i = 0; i < LIMIT_IMAP_SORT_KEPT_ENTRIES; i++) {
			if (kept[i].uids == NULL)
				free_slot = free_slot != NULL ? free_slot : &kept[i];
			else if (oldest == NULL || kept[i].used < oldest->used)
				oldest = &kept[i];
		}
		if (free_slot != NULL && kept_bytes + bytes <= LIMIT_IMAP_SORT_KEPT_BYTES)
			return free_slot;
		if (oldest == NULL)
			return NULL;
		entry_clear(oldest);
	}
}

void imap_kept_put(const struct imap_kept_key *key, const struct store_msg *msgs, size_t n,
		   const uint32_t *order, const uint8_t *text, size_t text_len)
{
	size_t bytes = n * sizeof(uint32_t) + (order != NULL ? n * sizeof(uint32_t) : text_len);
	struct kept_entry *e;

	if (bytes > LIMIT_IMAP_SORT_KEPT_BYTES / 4 || (order == NULL) != key->thread)
		return;
	pthread_mutex_lock(&kept_lock);
	e = entry_find(key);
	if (e != NULL)
		entry_clear(e);
	e = entry_make_room(bytes);
	if (e != NULL) {
		e->key = *key;
		e->count = n;
		e->uids = xmalloc((n + 1) * sizeof(*e->uids));
		for (size_t i = 0; i < n; i++)
			e->uids[i] = msgs[i].uid;
		if (order != NULL) {
			e->order = xmalloc((n + 1) * sizeof(*e->order));
			memcpy(e->order, order, n * sizeof(*e->order));
		} else {
			e->text = xmalloc(text_len + 1);
			memcpy(e->text, text, text_len);
			e->text_len = text_len;
		}
		e->bytes = bytes;
		e->used = ++kept_tick;
		kept_bytes += bytes;
	}
	pthread_mutex_unlock(&kept_lock);
}
