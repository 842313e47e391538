/* Unit tests for the store change feed (events for append, flags, expunge, mailbox create,
 * rename, delete, (un)subscription of a mailbox or of a name without one; mailbox and account
 * subscriptions; unsubscribe) and for concurrent appends
 * from 20 threads to one account (distinct, dense UIDs, every message intact, events in UID
 * order). */
#include <pthread.h>

#include "store_test_util.h"

struct recorded {
	pthread_mutex_t lock;
	enum store_event_kind kinds[64];
	uint64_t mailbox_ids[64];
	size_t counts[64];
	uint32_t first_uid[64];
	uint32_t first_flags[64];
	uint64_t highestmodseq[64];
	char names[64][32];
	size_t n;
	/* for the concurrency test */
	uint32_t last_uid;
	size_t total_appended;
	bool out_of_order;
};

static void record(const struct store_event *ev, void *ctx)
{
	struct recorded *r = ctx;

	pthread_mutex_lock(&r->lock);
	if (r->n < 64) {
		r->kinds[r->n] = ev->kind;
		r->mailbox_ids[r->n] = ev->mailbox_id;
		r->counts[r->n] = ev->count;
		r->first_uid[r->n] = ev->count > 0 ? ev->msgs[0].uid : 0;
		r->first_flags[r->n] = ev->count > 0 ? ev->msgs[0].flags : 0;
		r->highestmodseq[r->n] = ev->highestmodseq;
		snprintf(r->names[r->n], sizeof(r->names[0]), "%s", ev->mailbox);
		r->n++;
	}
	if (ev->kind == STORE_EVENT_APPEND) {
		for (size_t i = 0; i < ev->count; i++) {
			if (ev->msgs[i].uid <= r->last_uid)
				r->out_of_order = true;
			r->last_uid = ev->msgs[i].uid;
		}
		r->total_appended += ev->count;
	}
	pthread_mutex_unlock(&r->lock);
}

static void test_feed_events(void **state)
{
	struct fixture *f = *state;
	struct recorded all = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct recorded inbox_only = { .lock = PTHREAD_MUTEX_INITIALIZER };
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	struct store_subscription *sa = store_subscribe(f->acct, 0, record, &all);
	struct store_subscription *si = store_subscribe(f->acct, inbox, record, &inbox_only);
	struct store_flag_result fr;
	struct store_uid_range r1 = { 1, 1 };
	uint32_t *gone;
	size_t gone_n;

	uint32_t u = append(f->acct, "INBOX", "Subject: x\r\n\r\n\r\n", STORE_FLAG_DRAFT);
	assert_int_equal(store_flags_update(f->acct, inbox, &r1, 1, STORE_FLAGS_ADD,
					    STORE_FLAG_SEEN, NULL, 0, 0, &fr, NULL),
			 STORE_OK);
	store_flag_result_clear(&fr);
	assert_int_equal(store_expunge(f->acct, inbox, NULL, 0, false, &gone, &gone_n, NULL),
			 STORE_OK);
	free(gone);
	assert_int_equal(store_mailbox_create(f->acct, "Feed", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_rename(f->acct, "Feed", "Fed", NULL), STORE_OK);
	assert_int_equal(store_mailbox_delete(f->acct, "Fed", NULL), STORE_OK);

	assert_int_equal(inbox_only.n, 3);
	assert_int_equal(all.n, 6);
	assert_int_equal(all.kinds[0], STORE_EVENT_APPEND);
	assert_int_equal(all.counts[0], 1);
	assert_int_equal(all.first_uid[0], u);
	assert_int_equal(all.first_flags[0], STORE_FLAG_DRAFT);
	assert_int_equal(all.kinds[1], STORE_EVENT_FLAGS);
	assert_int_equal(all.first_flags[1], STORE_FLAG_DRAFT | STORE_FLAG_SEEN);
	assert_true(all.highestmodseq[1] > all.highestmodseq[0]);
	assert_int_equal(all.kinds[2], STORE_EVENT_EXPUNGE);
	assert_int_equal(all.first_uid[2], u);
	assert_true(all.highestmodseq[2] > all.highestmodseq[1]);
	assert_int_equal(all.kinds[3], STORE_EVENT_MAILBOX_CREATE);
	assert_string_equal(all.names[3], "Feed");
	assert_int_equal(all.kinds[4], STORE_EVENT_MAILBOX_RENAME);
	assert_string_equal(all.names[4], "Fed");
	assert_int_equal(all.kinds[5], STORE_EVENT_MAILBOX_DELETE);
	assert_int_equal(all.mailbox_ids[5], all.mailbox_ids[3]);

	store_unsubscribe(&si);
	assert_null(si);
	append(f->acct, "INBOX", "Subject: y\r\n\r\n\r\n", 0);
	assert_int_equal(inbox_only.n, 3);
	assert_int_equal(all.n, 7);
	store_unsubscribe(&sa);
	store_unsubscribe(&sa);
}

#define THREADS 20
#define PER_THREAD 15

struct worker {
	struct store *store;
	int index;
	uint32_t uids[PER_THREAD];
};

static void *append_worker(void *arg)
{
	struct worker *w = arg;
	struct store_account *acct;

	/* Every thread opens the account itself: they share one handle. */
	if (store_account_open(w->store, "user@example.org", &acct, NULL) != STORE_OK)
		return NULL;
	for (int i = 0; i < PER_THREAD; i++) {
		struct store_save *save;
		struct store_save_result res = { 0 };
		char *text = xasprintf("Subject: t%d m%d\r\n\r\nbody of %d/%d\r\n", w->index, i,
				       w->index, i);

		if (store_save_begin(acct, "INBOX", &save, NULL) == STORE_OK &&
		    store_save_write(save, text, strlen(text), NULL) == STORE_OK)
			store_save_finish(&save, NULL, &res, NULL);
		else
			store_save_abort(&save);
		w->uids[i] = res.error == STORE_OK ? res.uid : 0;
		free(text);
	}
	store_account_close(&acct);
	return NULL;
}

static void test_concurrent_append(void **state)
{
	struct fixture *f = *state;
	struct recorded rec = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct store_subscription *sub = store_subscribe(f->acct, 0, record, &rec);
	pthread_t th[THREADS];
	struct worker w[THREADS];
	bool seen[THREADS * PER_THREAD + 1] = { false };
	uint64_t inbox = mbox_id(f->acct, "INBOX");

	for (int i = 0; i < THREADS; i++) {
		w[i].store = f->store;
		w[i].index = i;
		assert_int_equal(pthread_create(&th[i], NULL, append_worker, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	store_unsubscribe(&sub);
	for (int i = 0; i < THREADS; i++) {
		for (int k = 0; k < PER_THREAD; k++) {
			uint32_t uid = w[i].uids[k];

			assert_true(uid >= 1 && uid <= THREADS * PER_THREAD);
			assert_false(seen[uid]);
			seen[uid] = true;
			if (k > 0)
				assert_true(uid > w[i].uids[k - 1]);
			char *want = xasprintf("Subject: t%d m%d\r\n\r\nbody of %d/%d\r\n", i, k, i,
					       k);
			char *got = read_back(f->acct, inbox, uid);

			assert_string_equal(got, want);
			free(want);
			free(got);
		}
	}
	assert_int_equal(rec.total_appended, THREADS * PER_THREAD);
	assert_false(rec.out_of_order);
	struct store_mailbox_status st;

	assert_int_equal(store_mailbox_status(f->acct, "INBOX", &st, NULL), STORE_OK);
	assert_int_equal(st.messages, THREADS * PER_THREAD);
	assert_int_equal(st.uidnext, THREADS * PER_THREAD + 1);
}

/* NOTIFY's SubscriptionChange: subscriptions are on the feed, for account-wide subscribers;
 * a name without a mailbox comes with mailbox id 0; nothing is published when nothing changed. */
static void test_feed_subscriptions(void **state)
{
	struct fixture *f = *state;
	struct recorded all = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct recorded inbox_only = { .lock = PTHREAD_MUTEX_INITIALIZER };
	uint64_t inbox = mbox_id(f->acct, "INBOX");
	struct store_subscription *sa = store_subscribe(f->acct, 0, record, &all);
	struct store_subscription *si = store_subscribe(f->acct, inbox, record, &inbox_only);

	assert_int_equal(store_mailbox_create(f->acct, "Lists", 0, NULL), STORE_OK);
	uint64_t lists = mbox_id(f->acct, "Lists");
	assert_int_equal(store_mailbox_subscribe(f->acct, "Lists", true, NULL), STORE_OK);
	assert_int_equal(store_mailbox_subscribe(f->acct, "Nowhere", true, NULL), STORE_OK);
	assert_int_equal(store_mailbox_subscribe(f->acct, "Lists", false, NULL), STORE_OK);
	assert_int_equal(store_mailbox_subscribe(f->acct, "Gone", false, NULL), STORE_ERR_NOT_FOUND);
	store_unsubscribe(&sa);
	store_unsubscribe(&si);

	assert_int_equal(all.n, 4); /* the create, then three subscription changes */
	assert_int_equal(all.kinds[1], STORE_EVENT_MAILBOX_SUBSCRIBE);
	assert_int_equal(all.mailbox_ids[1], lists);
	assert_string_equal(all.names[1], "Lists");
	assert_int_equal(all.kinds[2], STORE_EVENT_MAILBOX_SUBSCRIBE);
	assert_int_equal(all.mailbox_ids[2], 0);
	assert_string_equal(all.names[2], "Nowhere");
	assert_int_equal(all.kinds[3], STORE_EVENT_MAILBOX_UNSUBSCRIBE);
	assert_string_equal(all.names[3], "Lists");
	assert_int_equal(inbox_only.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_feed_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_feed_subscriptions, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
