/* Learning from the user: a message copied or moved into the account's \Junk mailbox is
 * trained as spam; one moved or copied out of \Junk into any mailbox but \Trash (deleting junk
 * says nothing about it) as ham, un-learning the spam it was trained as before.
 *
 * Why the store's copy observer and not its change feed: the feed reports a move as an
 * EXPUNGE in one mailbox and an APPEND in another, with new UIDs and nothing that ties the
 * two together, and its callbacks may not call the store, which reading and training need.
 * The copy observer sees source and destination in one call, after the commit, on the worker
 * thread that ran the copy (IMAP COPY/MOVE, POP3's move to Trash), so the training is done
 * when the client's command completes. Protocol code knows nothing of it. */
#include "spam.h"

static void learn_one(const struct spam_settings *set, const struct store_copy_event *ev,
		      uint32_t uid, enum spam_class cls)
{
	struct store_message *msg = NULL;
	struct store_err err = { 0 };
	const uint8_t *data;
	size_t len;
	bool changed;

	if (store_message_open(ev->acct, ev->dst_id, uid, &msg, &err) != STORE_OK) {
		log_warn("spam=learn op=open account=%s uid=%u error=\"%s\"", ev->address, uid,
			 err.text);
		return;
	}
	data = store_message_data(msg, &len);
	if (spam_train(ev->acct, data, len, cls, set->max_tokens, &changed, &err) != STORE_OK)
		log_warn("spam=learn op=train account=%s uid=%u error=\"%s\"", ev->address, uid,
			 err.text);
	else if (changed)
		log_info("spam=learn account=%s uid=%u as=%s", ev->address, uid,
			 cls == SPAM_CLASS_SPAM ? "spam" : "ham");
	store_message_close(&msg);
}

void spam_learn_on_copy(const struct store_copy_event *ev, void *arg)
{
	const struct spam_settings *set = arg;
	bool into_junk = (ev->dst_special & STORE_SPECIAL_JUNK) != 0;
	bool out_of_junk = (ev->src_special & STORE_SPECIAL_JUNK) != 0 && !into_junk &&
			   (ev->dst_special & STORE_SPECIAL_TRASH) == 0;

	if (!into_junk && !out_of_junk)
		return;
	for (size_t i = 0; i < ev->map->count; i++)
		learn_one(set, ev, ev->map->dst_uids[i], into_junk ? SPAM_CLASS_SPAM : SPAM_CLASS_HAM);
}
