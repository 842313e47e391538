/* The maildrop a POP3 session works on (RFC 1939 §8: "the maildrop" as it was when the session
 * entered the TRANSACTION state): a compact snapshot of INBOX (and Junk with include_junk) made
 * once at login, DELE marks kept in it, and the UPDATE step that applies [pop3] delete_action.
 *
 * Invariants:
 *  1. Message numbers are positions in msgs[] + 1 and never change during a session.
 *  2. The snapshot holds no message content and no offsets, only (mailbox, UID, size): a message
 *     that another session removed meanwhile is simply not found at RETR time, never read at a
 *     stale position.
 *  3. Nothing in the store changes before UPDATE; a session that ends any other way deletes
 *     nothing.
 *  4. pop3_maildrop_open/commit/free call the store and run on the worker pool; the other
 *     functions touch only memory and run on the session's loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "pop3_internal.h"

static bool pop3_has_keep_keyword(const char *keywords)
{
	size_t klen = strlen(POP3_KEEP_KEYWORD);
	const char *p = keywords;

	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, " ");
		if (n == klen && str_nieq(p, POP3_KEEP_KEYWORD, klen))
			return true;
		p += n;
		while (*p == ' ')
			p++;
	}
	return false;
}

void pop3_maildrop_add(struct pop3_maildrop *md, unsigned box, const struct store_msg *msgs,
		       size_t count)
{
	size_t room = POP3_MAILDROP_MAX - md->count;
	size_t want = 0;

	for (size_t i = 0; i < count; i++)
		if (!pop3_has_keep_keyword(msgs[i].keywords))
			want++;
	if (want > room)
		want = room;
	if (want == 0)
		return;
	md->msgs = xrealloc(md->msgs, ((size_t)md->count + want) * sizeof(*md->msgs));
	for (size_t i = 0; i < count && want > 0; i++) {
		struct pop3_msg *m;

		if (pop3_has_keep_keyword(msgs[i].keywords))
			continue;
		m = &md->msgs[md->count++];
		m->uid = msgs[i].uid;
		m->size = msgs[i].size;
		m->box = (uint8_t)box;
		m->deleted = false;
		md->total_size += msgs[i].size;
		want--;
	}
}

const struct pop3_msg *pop3_maildrop_get(const struct pop3_maildrop *md, uint32_t n)
{
	/* RFC 1939 §5: "may NOT refer to a message marked as deleted". */
	if (n == 0 || n > md->count || md->msgs[n - 1].deleted)
		return NULL;
	return &md->msgs[n - 1];
}

int pop3_maildrop_delete(struct pop3_maildrop *md, uint32_t n)
{
	if (pop3_maildrop_get(md, n) == NULL)
		return -1;
	md->msgs[n - 1].deleted = true;
	md->deleted_count++;
	md->deleted_size += md->msgs[n - 1].size;
	return 0;
}

void pop3_maildrop_reset(struct pop3_maildrop *md)
{
	for (uint32_t i = 0; i < md->count; i++)
		md->msgs[i].deleted = false;
	md->deleted_count = 0;
	md->deleted_size = 0;
}

void pop3_uidl(const struct pop3_maildrop *md, const struct pop3_msg *m, char *out,
	       size_t outlen)
{
	/* RFC 1939 §7: 1 to 70 characters in 0x21..0x7E, unique and persistent across
	 * sessions. UIDVALIDITY + UID survive restarts and index rebuilds (the store keeps both
	 * in the Maildir), and an UID is never reused within one UIDVALIDITY. */
	snprintf(out, outlen, "%s%08X%08X", m->box == POP3_BOX_JUNK ? "J" : "", m->uid,
		 md->uidvalidity[m->box]);
}

/* ---------------- worker-pool side ---------------- */

static enum store_error pop3_maildrop_load_box(struct pop3_maildrop *md, unsigned box,
					       uint64_t id, uint32_t uidvalidity)
{
	struct store_list_query q = { 0, 0, 0 };
	struct store_msg *msgs = NULL;
	size_t count = 0;
	enum store_error e;

	md->box_id[box] = id;
	md->uidvalidity[box] = uidvalidity;
	/* Mail that another program dropped into the Maildir's new/ belongs to the maildrop too. */
	e = store_mailbox_refresh(md->acct, id, NULL);
	if (e != STORE_OK)
		return e;
	e = store_msg_list(md->acct, id, &q, &msgs, &count, NULL);
	if (e != STORE_OK)
		return e;
	pop3_maildrop_add(md, box, msgs, count);
	store_msg_list_free(&msgs, count);
	return STORE_OK;
}

/* The first mailbox with the special-use attribute; *found_r false when there is none. */
static enum store_error pop3_find_special(struct store_account *acct, uint32_t special,
					  uint64_t *id_r, uint32_t *uidvalidity_r, bool *found_r)
{
	struct store_mailbox_info *list = NULL;
	size_t count = 0;
	enum store_error e = store_mailbox_list(acct, &list, &count, NULL);

	*found_r = false;
	if (e != STORE_OK)
		return e;
	for (size_t i = 0; i < count; i++) {
		if (list[i].special_use & special) {
			*id_r = list[i].id;
			*uidvalidity_r = list[i].uidvalidity;
			*found_r = true;
			break;
		}
	}
	store_mailbox_list_free(&list, count);
	return STORE_OK;
}

enum store_error pop3_maildrop_open(struct store *store, const char *user,
				    const struct account_settings *settings,
				    struct pop3_maildrop **md_r)
{
	struct pop3_maildrop *md = xcalloc(1, sizeof(*md));
	struct store_mailbox_info inbox = { 0 };
	enum store_error e;

	*md_r = NULL;
	md->settings = *settings;
	e = store_account_open(store, user, &md->acct, NULL);
	if (e != STORE_OK) {
		free(md);
		return e;
	}
	e = store_mailbox_get(md->acct, "INBOX", &inbox, NULL);
	if (e == STORE_OK) {
		e = pop3_maildrop_load_box(md, POP3_BOX_INBOX, inbox.id, inbox.uidvalidity);
		store_mailbox_info_clear(&inbox);
	}
	if (e == STORE_OK && settings->pop3_include_junk) {
		uint64_t id = 0;
		uint32_t uidvalidity = 0;
		bool found;

		e = pop3_find_special(md->acct, STORE_SPECIAL_JUNK, &id, &uidvalidity, &found);
		if (e == STORE_OK && found)
			e = pop3_maildrop_load_box(md, POP3_BOX_JUNK, id, uidvalidity);
	}
	if (e != STORE_OK) {
		pop3_maildrop_free(&md);
		return e;
	}
	*md_r = md;
	return STORE_OK;
}

/* UIDs of the box's deleted messages as coalesced ranges (msgs[] is in UID order per box). */
static size_t pop3_deleted_ranges(const struct pop3_maildrop *md, unsigned box,
				  struct store_uid_range **ranges_r)
{
	struct store_uid_range *r = NULL;
	size_t n = 0;

	for (uint32_t i = 0; i < md->count; i++) {
		const struct pop3_msg *m = &md->msgs[i];

		if (!m->deleted || m->box != box)
			continue;
		if (n > 0 && r[n - 1].last + 1 == m->uid) {
			r[n - 1].last = m->uid;
			continue;
		}
		if (r == NULL)
			r = xcalloc(md->deleted_count, sizeof(*r));
		r[n].first = r[n].last = m->uid;
		n++;
	}
	*ranges_r = r;
	return n;
}

static enum store_error pop3_commit_box(struct pop3_maildrop *md, unsigned box,
					uint64_t trash_id)
{
	struct store_uid_range *ranges;
	size_t n = pop3_deleted_ranges(md, box, &ranges);
	enum store_error e = STORE_OK;

	if (n == 0)
		return STORE_OK;
	switch (md->settings.pop3_delete_action) {
	case POP3_DELETE_EXPUNGE: {
		uint32_t *uids = NULL;
		size_t count = 0;

		e = store_expunge(md->acct, md->box_id[box], ranges, n, false, &uids, &count, NULL);
		free(uids);
		break;
	}
	case POP3_DELETE_TRASH: {
		struct store_uid_map map = { 0 };

		e = store_copy(md->acct, md->box_id[box], ranges, n, trash_id, true, &map, NULL);
		store_uid_map_clear(&map);
		break;
	}
	case POP3_DELETE_KEEP: {
		const char *const kw[] = { POP3_KEEP_KEYWORD };
		struct store_flag_result res = { 0 };

		e = store_flags_update(md->acct, md->box_id[box], ranges, n, STORE_FLAGS_ADD,
				       STORE_FLAG_SEEN, kw, 1, 0, &res, NULL);
		store_flag_result_clear(&res);
		break;
	}
	}
	free(ranges);
	return e;
}

enum store_error pop3_maildrop_commit(struct pop3_maildrop *md)
{
	uint64_t trash_id = 0;
	enum store_error e = STORE_OK;

	if (md->deleted_count == 0)
		return STORE_OK;
	if (md->settings.pop3_delete_action == POP3_DELETE_TRASH) {
		uint32_t uidvalidity;
		bool found;

		e = pop3_find_special(md->acct, STORE_SPECIAL_TRASH, &trash_id, &uidvalidity,
				      &found);
		if (e == STORE_OK && !found) {
			/* The account lost its Trash: make one rather than delete for good. */
			struct store_mailbox_info info = { 0 };

			e = store_mailbox_create(md->acct, "Trash", STORE_SPECIAL_TRASH, NULL);
			if (e == STORE_OK || e == STORE_ERR_EXISTS)
				e = store_mailbox_get(md->acct, "Trash", &info, NULL);
			trash_id = info.id;
			store_mailbox_info_clear(&info);
		}
		if (e != STORE_OK)
			return e;
	}
	for (unsigned box = 0; box < POP3_BOX_COUNT; box++) {
		enum store_error be;

		if (md->box_id[box] == 0 || md->box_id[box] == trash_id)
			continue;
		be = pop3_commit_box(md, box, trash_id);
		if (be != STORE_OK && e == STORE_OK)
			e = be;
	}
	return e;
}

void pop3_maildrop_free(struct pop3_maildrop **md)
{
	if (md == NULL || *md == NULL)
		return;
	store_account_close(&(*md)->acct);
	free((*md)->msgs);
	free(*md);
	*md = NULL;
}
