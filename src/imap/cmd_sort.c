/* SORT, UID SORT, THREAD and UID THREAD (RFC 5256) with DISPLAYFROM/DISPLAYTO (RFC 5957) and
 * ESORT return options (RFC 5267 §3: MIN MAX ALL COUNT; §4: PARTIAL, and UPDATE kept alive by
 * context.c). The criteria are parsed on the loop;
 * the work runs as bulk pool work like SEARCH: one index scan for the metadata, the search
 * keys (cmd_search.c, same work budget), one index scan for the sort keys the index keeps per
 * message (sort_keys.c encodes them), used in place without copying. Keys missing there
 * (messages saved before the index kept them, or whose envelope was written since) are
 * derived from the cached envelope, for THREAD=REFERENCES also from the References field of
 * the header block, and kept for the next command. Only messages in the client's view take
 * part, numbered as the client knows them (the view does not change while the command runs). */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"
#include "sort.h"

enum sort_kind { SORT_KIND_SORT, SORT_KIND_ORDEREDSUBJECT, SORT_KIND_REFERENCES };

struct sort_job {
	struct net_conn *conn;
	struct store_account *acct;
	uint64_t mailbox_id;
	uint64_t budget;
	char *tag;
	bool uid;
	enum sort_kind kind;
	unsigned needs; /* IMAP_SORT_NEED_*: which keys the envelopes must give */
	struct imap_sort_criterion crit[IMAP_SORT_CRITERIA_MAX];
	size_t crit_count;
	bool esort;
	unsigned ret;
	struct imap_partial partial;
	struct imap_search_keys *keys;
	uint32_t *view; /* the client's UIDs, msn - 1 indexed */
	size_t view_count;
	/* results */
	uint32_t *numbers; /* SORT: in order */
	size_t number_count;
	uint32_t *order_uids; /* SORT RETURN (UPDATE): the same as UIDs */
	struct buf threads; /* THREAD: the thread-list */
	enum imap_search_outcome outcome;
	enum store_error error;
	struct store_err err;
	/* while the command works: the keys it compares, and those it derived */
	struct imap_sort_keys_arena arena;
	struct buf derived;
	/* SORT: keys of every message of the mailbox are collected and ordered, not only of
	 * those that match, so that the order can be kept for the next command */
	bool whole;
};

static void sort_job_free(struct sort_job **jobp)
{
	struct sort_job *job = *jobp;

	imap_search_keys_free(&job->keys);
	free(job->view);
	free(job->numbers);
	free(job->order_uids);
	buf_free(&job->threads);
	imap_sort_keys_arena_free(&job->arena);
	buf_free(&job->derived);
	free(job->tag);
	free(job);
	*jobp = NULL;
}

/* ---------------- work (pool) ---------------- */

/* The References field of a matching message (THREAD=REFERENCES only). */
static void read_refs(struct sort_job *job, struct imap_sort_msg *m)
{
	struct store_message *msg;
	size_t len;

	if (store_message_open(job->acct, job->mailbox_id, m->uid, &msg, NULL) != STORE_OK)
		return;
	const uint8_t *data = store_message_data(msg, &len);
	imap_sort_msg_refs(m, data, len);
	store_message_close(&msg);
}

/* Fewer missing keys than this are derived from one envelope lookup each; more from one scan
 * of every envelope of the mailbox. */
#define SORT_DERIVE_SCAN_MIN 512
/* Keys go back to the index in transactions of this many, so a first SORT of a big mailbox
 * holds the index lock for a short while at a time. */
#define SORT_KEYS_PUT_BATCH 2000

static const char *envelope_of(const struct store_envelope *envs, size_t env_count, size_t *e,
			       uint32_t uid)
{
	while (*e < env_count && envs[*e].uid < uid)
		(*e)++;
	return *e < env_count && envs[*e].uid == uid ? envs[*e].envelope : NULL;
}

/* Derives the keys of the messages ms[need[k]] that the index kept none (or too few) for:
 * saved before the index kept keys, or their envelope was written since. Their encoded keys
 * go one after the other into job->derived, their lengths into rows[k]. */
static bool derive_keys(struct sort_job *job, const struct imap_sort_msg *ms, const size_t *need,
			size_t need_count, struct store_sort_keys *rows)
{
	struct store_envelope *envs = NULL;
	size_t env_count = 0, e = 0;
	bool refs = job->kind == SORT_KIND_REFERENCES;

	if (need_count >= SORT_DERIVE_SCAN_MIN) {
		job->error = store_envelope_list(job->acct, job->mailbox_id, &envs, &env_count,
						 &job->err);
		if (job->error != STORE_OK)
			return false;
	}
	for (size_t k = 0; k < need_count; k++) {
		struct imap_sort_msg m = ms[need[k]];
		char *env = NULL, *bodystructure = NULL;
		size_t start = job->derived.len;
		if (refs && net_conn_gone(job->conn)) { /* the costly case: a file read each */
			job->outcome = IMAP_SEARCH_CANCELLED;
			break;
		}
		if (envs == NULL) {
			if (store_message_cache(job->acct, job->mailbox_id, m.uid, &env,
						&bodystructure, NULL) != STORE_OK)
				env = NULL;
			free(bodystructure);
		}
		imap_sort_msg_from_envelope(&m, envs != NULL ? envelope_of(envs, env_count, &e, m.uid)
							     : env,
					    IMAP_SORT_NEED_ALL);
		free(env);
		if (refs)
			read_refs(job, &m);
		imap_sort_keys_encode(&m, refs, &job->derived);
		rows[k] = (struct store_sort_keys){ m.uid, NULL, job->derived.len - start };
		imap_sort_msg_clear(&m);
	}
	store_envelope_list_free(&envs, env_count);
	return job->outcome != IMAP_SEARCH_CANCELLED;
}

/* Keeps derived keys in the index. A failure costs only deriving them again next time. */
static void put_keys(struct sort_job *job, const struct store_sort_keys *rows, size_t count)
{
	for (size_t i = 0; i < count; i += SORT_KEYS_PUT_BATCH) {
		size_t n = count - i < SORT_KEYS_PUT_BATCH ? count - i : SORT_KEYS_PUT_BATCH;
		if (store_sort_keys_put(job->acct, job->mailbox_id, rows + i, n, NULL) != STORE_OK)
			break;
	}
}

struct scan_ctx {
	struct sort_job *job;
	struct imap_sort_msg *ms; /* in UID order */
	size_t count, next;
};

/* Under the index lock (store_sort_keys_scan): copies what the command compares. */
static void take_kept(void *arg, uint32_t uid, const uint8_t *keys, size_t len)
{
	struct scan_ctx *c = arg;
	size_t refs_n;
	bool refs_known;

	while (c->next < c->count && c->ms[c->next].uid < uid)
		c->next++;
	if (c->next == c->count || c->ms[c->next].uid != uid ||
	    !imap_sort_keys_check(keys, len, &refs_n, &refs_known))
		return;
	/* kept before THREAD=REFERENCES ever read its References: derived again */
	if (!refs_known && c->job->kind == SORT_KIND_REFERENCES)
		return;
	imap_sort_keys_take(&c->ms[c->next], keys, c->job->needs, &c->job->arena);
}

/* Copies the keys the command compares into job->arena, from the index or, for messages it
 * kept none (or too few) for, derived now and kept for the next command. False when the
 * command cannot go on (job->error set, or cancelled). */
static bool find_keys(struct sort_job *job, struct imap_sort_msg *ms, size_t count)
{
	struct scan_ctx scan = { job, ms, count, 0 };
	size_t *need, need_count = 0, at = 0;
	struct store_sort_keys *rows;

	job->error = store_sort_keys_scan(job->acct, job->mailbox_id, take_kept, &scan, &job->err);
	if (job->error != STORE_OK)
		return false;
	need = xmalloc((count + 1) * sizeof(*need));
	for (size_t i = 0; i < count; i++)
		if (!ms[i].taken)
			need[need_count++] = i;
	rows = xmalloc((need_count + 1) * sizeof(*rows));
	if (!derive_keys(job, ms, need, need_count, rows)) {
		free(rows);
		free(need);
		return false;
	}
	/* job->derived grows no more: the pointers hold from here */
	for (size_t k = 0; k < need_count; k++) {
		rows[k].keys = job->derived.data + at;
		at += rows[k].keys_len;
		imap_sort_keys_take(&ms[need[k]], rows[k].keys, job->needs, &job->arena);
	}
	put_keys(job, rows, need_count);
	free(rows);
	free(need);
	return true;
}

/* The keys of the messages in the view that match: uid, msn, arrival and size from the index
 * rows, the others from the keys the index kept (or this command derived), copied into the
 * job's arena, which the job holds until the answer is made. */
static struct imap_sort_msg *collect_keys(struct sort_job *job, const struct store_msg *msgs,
					  size_t n, const bool *match, size_t *count_r)
{
	size_t count = 0, v = 0;
	struct imap_sort_msg *ms = xcalloc(n + 1, sizeof(*ms));

	for (size_t i = 0; i < n; i++) { /* msgs and the view both in UID order */
		while (v < job->view_count && job->view[v] < msgs[i].uid)
			v++;
		bool in_view = v < job->view_count && job->view[v] == msgs[i].uid;
		if (!job->whole && (!match[i] || !in_view))
			continue;
		struct imap_sort_msg *m = &ms[count++];
		m->uid = msgs[i].uid;
		/* whole: every message, ranked by UID as the view numbers them (invariant of
		 * sort_whole_mailbox) */
		m->msn = job->whole ? (uint32_t)i + 1 : (uint32_t)v + 1;
		m->arrival = msgs[i].internal_date;
		m->size = msgs[i].size;
		/* ARRIVAL and SIZE come from the index rows: no keys are read for them */
		imap_sort_msg_from_envelope(m, NULL, 0);
	}
	*count_r = count;
	if (job->needs == 0)
		return ms;
	if (!find_keys(job, ms, count)) {
		free(ms);
		return NULL;
	}
	imap_sort_keys_arena_finish(&job->arena, ms, count);
	return ms;
}

/* The key under which the job's answer is kept; false when the index version is unknown. */
static bool kept_key(const struct sort_job *job, struct imap_kept_key *key)
{
	memset(key, 0, sizeof(*key));
	if (store_account_index_version(job->acct, &key->version, NULL) != STORE_OK)
		return false;
	key->mailbox_id = job->mailbox_id;
	key->thread = job->kind != SORT_KIND_SORT;
	key->by_uid = key->thread && job->uid;
	key->algorithm = (int)job->kind;
	key->crit_count = key->thread ? 0 : job->crit_count;
	memcpy(key->crit, job->crit, key->crit_count * sizeof(*key->crit));
	return true;
}

/* Each message's sequence number in the client's view, 0 when the view has it not. */
static uint32_t *view_numbers(const struct sort_job *job, const struct store_msg *msgs, size_t n)
{
	uint32_t *msn = xmalloc((n + 1) * sizeof(*msn));
	size_t v = 0;

	for (size_t i = 0; i < n; i++) {
		while (v < job->view_count && job->view[v] < msgs[i].uid)
			v++;
		msn[i] = v < job->view_count && job->view[v] == msgs[i].uid ? (uint32_t)v + 1 : 0;
	}
	return msn;
}

/* The SORT answer from the order of every message of the mailbox: the messages that match
 * and that the client's view has, in that order. Sorting all messages with ties broken by
 * UID and then filtering gives what sorting the filtered ones by sequence number gives,
 * since the view numbers messages in UID order. */
static void sort_answer_from_order(struct sort_job *job, const struct store_msg *msgs, size_t n,
				   const bool *match, const uint32_t *order)
{
	uint32_t *msn = view_numbers(job, msgs, n);
	size_t count = 0;

	job->numbers = xmalloc((n + 1) * sizeof(*job->numbers));
	if (job->ret & IMAP_RET_UPDATE)
		job->order_uids = xmalloc((n + 1) * sizeof(*job->order_uids));
	for (size_t k = 0; k < n; k++) {
		uint32_t i = order[k];
		if (!match[i] || msn[i] == 0)
			continue;
		if (job->order_uids != NULL)
			job->order_uids[count] = msgs[i].uid;
		job->numbers[count++] = job->uid ? msgs[i].uid : msn[i];
	}
	job->number_count = count;
	free(msn);
}

/* Orders (or threads) the collected keys into the job's answer. */
static void order_keys(struct sort_job *job, struct imap_sort_msg **order, size_t count)
{
	switch (job->kind) {
	case SORT_KIND_SORT:
		imap_sort_msgs(order, count, job->crit, job->crit_count);
		job->numbers = xmalloc((count + 1) * sizeof(*job->numbers));
		for (size_t i = 0; i < count; i++)
			job->numbers[i] = job->uid ? order[i]->uid : order[i]->msn;
		job->number_count = count;
		if (job->ret & IMAP_RET_UPDATE) {
			job->order_uids = xmalloc((count + 1) * sizeof(uint32_t));
			for (size_t i = 0; i < count; i++)
				job->order_uids[i] = order[i]->uid;
		}
		break;
	case SORT_KIND_ORDEREDSUBJECT:
		imap_thread_orderedsubject(order, count, job->uid, &job->threads);
		break;
	case SORT_KIND_REFERENCES:
		imap_thread_references(order, count, job->uid, &job->threads);
		break;
	}
}

/* SORT of every message of the mailbox (job->whole): the order is kept for the commands
 * that follow, the answer filtered from it. */
static void sort_whole_mailbox(struct sort_job *job, const struct imap_kept_key *key,
			       const struct store_msg *msgs, size_t n, const bool *match,
			       struct imap_sort_msg *keys, struct imap_sort_msg **order)
{
	uint32_t *indices = xmalloc((n + 1) * sizeof(*indices));

	imap_sort_msgs(order, n, job->crit, job->crit_count);
	for (size_t k = 0; k < n; k++)
		indices[k] = (uint32_t)(order[k] - keys); /* keys holds msgs in their order */
	imap_kept_put(key, msgs, n, indices, NULL, 0);
	sort_answer_from_order(job, msgs, n, match, indices);
	free(indices);
}

/* Whether every message of the mailbox matched and the view holds exactly them: a THREAD of
 * the whole mailbox, whose answer can be kept. */
static bool thread_of_whole_mailbox(const struct sort_job *job, const struct store_msg *msgs,
				    size_t n, const bool *match)
{
	if (job->view_count != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!match[i] || job->view[i] != msgs[i].uid)
			return false;
	return true;
}

/* SORT keeps the order of the whole mailbox when the search matches at least this share of
 * it (1/N): ordering all costs less than a second ordering of most of them. A narrow search
 * orders only its matches, as ordering all would cost far more than it answers. */
#define SORT_WHOLE_SHARE 4

/* An answer kept from an earlier command, when one fits: true when the job is answered. */
static bool answer_from_kept(struct sort_job *job, const struct imap_kept_key *key,
			     const struct store_msg *msgs, size_t n, const bool *match,
			     bool whole_thread)
{
	uint32_t *order = NULL;

	if (job->kind == SORT_KIND_SORT) {
		if (!imap_kept_find(key, msgs, n, &order, NULL))
			return false;
		sort_answer_from_order(job, msgs, n, match, order);
		free(order);
		return true;
	}
	return whole_thread && imap_kept_find(key, msgs, n, NULL, &job->threads);
}

static void sort_work(void *arg)
{
	struct sort_job *job = arg;
	struct store_list_query q = { 0, 0, 0 };
	struct store_msg *msgs = NULL;
	size_t n = 0, count = 0, matched = 0;
	struct imap_sort_msg *keys = NULL;
	struct imap_sort_msg **order;
	struct imap_kept_key key;
	bool *match, keep, whole_thread = false;

	if (net_conn_gone(job->conn)) {
		job->outcome = IMAP_SEARCH_CANCELLED;
		return;
	}
	/* read before the listing: a change after it makes what is kept now a miss later */
	keep = kept_key(job, &key);
	job->error = store_msg_list(job->acct, job->mailbox_id, &q, &msgs, &n, &job->err);
	if (job->error != STORE_OK)
		return;
	match = xmalloc((n + 1) * sizeof(*match));
	job->outcome = imap_search_match(job->conn, job->acct, job->mailbox_id, job->keys,
					 job->budget, msgs, n, match);
	if (job->outcome != IMAP_SEARCH_DONE)
		goto out;
	for (size_t i = 0; i < n; i++)
		matched += match[i];
	if (job->kind != SORT_KIND_SORT)
		whole_thread = thread_of_whole_mailbox(job, msgs, n, match);
	if (keep && answer_from_kept(job, &key, msgs, n, match, whole_thread))
		goto out;
	job->whole = keep && job->kind == SORT_KIND_SORT && matched * SORT_WHOLE_SHARE >= n;
	keys = collect_keys(job, msgs, n, match, &count);
	if (keys == NULL)
		goto out;
	order = xmalloc((count + 1) * sizeof(*order));
	for (size_t i = 0; i < count; i++)
		order[i] = &keys[i];
	if (job->outcome == IMAP_SEARCH_DONE) {
		if (job->whole) {
			sort_whole_mailbox(job, &key, msgs, n, match, keys, order);
		} else {
			order_keys(job, order, count);
			if (keep && whole_thread)
				imap_kept_put(&key, msgs, n, NULL, job->threads.data,
					      job->threads.len);
		}
	}
	for (size_t i = 0; i < count; i++)
		imap_sort_msg_clear(&keys[i]);
	free(keys);
	free(order);
	/* the answer is made: what the keys borrowed from can go before it is sent */
	imap_sort_keys_arena_free(&job->arena);
	buf_free(&job->derived);
out:
	free(match);
	store_msg_list_free(&msgs, n);
}

static unsigned sort_needs(const struct sort_job *job);

enum imap_search_outcome imap_sort_uids(struct net_conn *conn, struct store_account *acct,
					uint64_t mailbox_id, const struct imap_search_keys *keys,
					const struct imap_sort_criterion *crit, size_t crit_count,
					const uint32_t *view, size_t view_count, uint64_t budget,
					uint32_t **uids_r, size_t *count_r)
{
	struct sort_job *job = xcalloc(1, sizeof(*job));
	enum imap_search_outcome outcome;

	buf_init(&job->threads);
	buf_init(&job->derived);
	imap_sort_keys_arena_init(&job->arena);
	job->conn = conn;
	job->acct = acct;
	job->mailbox_id = mailbox_id;
	job->budget = budget;
	job->uid = true;
	job->kind = SORT_KIND_SORT;
	job->crit_count = crit_count < IMAP_SORT_CRITERIA_MAX ? crit_count : IMAP_SORT_CRITERIA_MAX;
	memcpy(job->crit, crit, job->crit_count * sizeof(*crit));
	/* borrowed for the work: never freed through the job */
	job->keys = (struct imap_search_keys *)keys;
	job->needs = sort_needs(job);
	job->view_count = view_count;
	job->view = xmalloc((view_count + 1) * sizeof(*job->view));
	memcpy(job->view, view, view_count * sizeof(*job->view));
	sort_work(job);
	outcome = job->error != STORE_OK ? IMAP_SEARCH_OVER_BUDGET : job->outcome;
	*uids_r = job->numbers;
	*count_r = job->number_count;
	job->numbers = NULL;
	job->keys = NULL;
	sort_job_free(&job);
	return outcome;
}

/* ---------------- answer (loop) ---------------- */

/* sep and n in decimal: the answer to a SORT of 100,000 messages is that many numbers, and a
 * printf per number cost a tenth of a kept order's answer. */
static void append_number(struct buf *line, char sep, uint32_t n)
{
	char digits[11];
	size_t at = sizeof(digits);

	do {
		digits[--at] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	digits[--at] = sep;
	buf_append(line, digits + at, sizeof(digits) - at);
}

/* RFC 5267 §3.2: for ESORT, MIN and MAX are the first and last in sort order, ALL lists the
 * numbers in that order. */
static void esort_line(const struct sort_job *job, struct buf *line)
{
	size_t n = job->number_count;

	buf_printf(line, "* ESEARCH (TAG ");
	mime_imap_string(line, job->tag, strlen(job->tag));
	buf_append_byte(line, ')');
	if (job->uid)
		buf_append_str(line, " UID");
	if ((job->ret & IMAP_RET_MIN) && n > 0)
		buf_printf(line, " MIN %u", job->numbers[0]);
	if ((job->ret & IMAP_RET_MAX) && n > 0)
		buf_printf(line, " MAX %u", job->numbers[n - 1]);
	if ((job->ret & IMAP_RET_ALL) && n > 0) {
		buf_append_str(line, " ALL");
		for (size_t i = 0; i < n; i++)
			append_number(line, i ? ',' : ' ', job->numbers[i]);
	}
	if (job->ret & IMAP_RET_PARTIAL) /* RFC 5267 §4.4, in sort order */
		imap_append_partial(line, &job->partial, job->numbers, n, false);
	if (job->ret & IMAP_RET_COUNT)
		buf_printf(line, " COUNT %zu", n);
}

/* RFC 5267 §4.3 RETURN (UPDATE): the criteria and the sorted result stay alive. */
static void sort_keep(struct imap_session *s, struct sort_job *job)
{
	struct imap_context_spec spec = {
		.tag = job->tag,
		.uid = job->uid,
		.sorted = true,
		.ret = job->ret,
		.keys = job->keys,
		.crit = job->crit,
		.crit_count = job->crit_count,
		.uids = job->order_uids,
		.count = job->number_count,
	};

	job->keys = NULL; /* the context has them now */
	imap_context_add(s, &spec);
}

static void sort_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct sort_job *job = arg;
	const char *name = job->kind == SORT_KIND_SORT ? "SORT" : "THREAD";

	if ((job->ret & IMAP_RET_UPDATE) &&
	    (job->outcome != IMAP_SEARCH_DONE || job->error != STORE_OK))
		imap_context_abandon(s);

	if (job->outcome == IMAP_SEARCH_CANCELLED) {
		log_info("proto=imap conn=%llu ip=%s user=%s msg=\"%s stopped: connection closed\"",
			 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn), s->user,
			 name);
	} else if (job->outcome == IMAP_SEARCH_OVER_BUDGET) {
		imap_tagged(s, job->tag, "%s NO [LIMIT] %s needs too much work; narrow it", job->tag,
			    name);
	} else if (job->error != STORE_OK) {
		imap_store_error(s, job->tag, job->error, &job->err);
	} else {
		struct buf line;
		buf_init(&line);
		if (job->kind != SORT_KIND_SORT) {
			buf_append_str(&line, "* THREAD ");
			buf_append(&line, job->threads.data, job->threads.len);
		} else if (job->esort) {
			esort_line(job, &line);
		} else {
			buf_append_str(&line, "* SORT");
			buf_reserve(&line, job->number_count * 8 + 2);
			for (size_t i = 0; i < job->number_count; i++)
				append_number(&line, ' ', job->numbers[i]);
		}
		buf_append_str(&line, "\r\n");
		net_conn_write(s->conn, line.data, line.len);
		buf_free(&line);
		if (job->ret & IMAP_RET_UPDATE)
			sort_keep(s, job);
		imap_tagged(s, job->tag, "%s OK %s completed", job->tag, name);
	}
	sort_job_free(&job);
	imap_command_done(s);
}

/* ---------------- parsing (loop) ---------------- */

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", IMAP_SORT_ARRIVAL },	  { "CC", IMAP_SORT_CC },
	{ "DATE", IMAP_SORT_DATE },		  { "FROM", IMAP_SORT_FROM },
	{ "SIZE", IMAP_SORT_SIZE },		  { "SUBJECT", IMAP_SORT_SUBJECT },
	{ "TO", IMAP_SORT_TO },			  { "DISPLAYFROM", IMAP_SORT_DISPLAYFROM },
	{ "DISPLAYTO", IMAP_SORT_DISPLAYTO },
};

/* sort-criteria = "(" sort-criterion *(SP sort-criterion) ")" */
static bool parse_criteria(struct imap_parser *ps, struct sort_job *job)
{
	if (!imap_parse_char(ps, '('))
		return false;
	for (int n = 0; !imap_peek(ps, ')'); n++) {
		struct imap_slice a;
		bool reverse = false, known = false;
		if ((n > 0 && !imap_parse_sp(ps)) || !imap_parse_atom(ps, &a))
			return false;
		if (imap_slice_ieq(&a, "REVERSE")) {
			reverse = true;
			if (!imap_parse_sp(ps) || !imap_parse_atom(ps, &a))
				return false;
		}
		if (job->crit_count == IMAP_SORT_CRITERIA_MAX) {
			ps->error = "Too many sort criteria";
			return false;
		}
		for (size_t i = 0; i < ARRAY_LEN(sort_keys) && !known; i++) {
			if (imap_slice_ieq(&a, sort_keys[i].name)) {
				job->crit[job->crit_count].key = sort_keys[i].key;
				job->crit[job->crit_count++].reverse = reverse;
				known = true;
			}
		}
		if (!known) {
			ps->error = "Unknown sort criterion";
			return false;
		}
	}
	ps->p++;
	if (job->crit_count == 0) {
		ps->error = "Empty sort criteria";
		return false;
	}
	return true;
}

/* RFC 5267 §3.1: "RETURN (" [return options] ") " before the criteria; §4: UPDATE,
 * CONTEXT and PARTIAL as for SEARCH (no SAVE: RFC 5182 defines it for SEARCH only). */
static bool parse_return(struct imap_parser *ps, struct sort_job *job)
{
	struct imap_parser save = *ps;
	struct imap_return_opts opts;
	struct imap_slice a;

	if (!imap_parse_atom(ps, &a) || !imap_slice_ieq(&a, "RETURN")) {
		*ps = save;
		ps->error = NULL;
		return true;
	}
	job->esort = true;
	if (!imap_parse_sp(ps) ||
	    !imap_parse_return_opts(ps, IMAP_RET_MIN | IMAP_RET_MAX | IMAP_RET_ALL |
						IMAP_RET_COUNT | IMAP_RET_UPDATE | IMAP_RET_CONTEXT |
						IMAP_RET_PARTIAL,
				    &opts))
		return false;
	job->ret = opts.ret;
	job->partial = opts.partial;
	return imap_parse_sp(ps);
}

/* charset SP: only UTF-8 and US-ASCII, as SEARCH. Returns false after answering NO. */
static bool parse_charset(struct imap_session *s, const char *tag, struct imap_parser *ps,
			  bool *syntax_ok_r)
{
	struct imap_slice cs;

	*syntax_ok_r = imap_parse_astring(ps, &cs) && imap_parse_sp(ps);
	if (!*syntax_ok_r)
		return false;
	if (!imap_slice_ieq(&cs, "UTF-8") && !imap_slice_ieq(&cs, "US-ASCII")) {
		imap_tagged(s, tag, "%s NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset", tag);
		return false;
	}
	return true;
}

static unsigned sort_needs(const struct sort_job *job)
{
	unsigned needs = 0;

	if (job->kind == SORT_KIND_ORDEREDSUBJECT)
		return IMAP_SORT_NEED_DATE | IMAP_SORT_NEED_SUBJECT;
	if (job->kind == SORT_KIND_REFERENCES)
		return IMAP_SORT_NEED_DATE | IMAP_SORT_NEED_SUBJECT | IMAP_SORT_NEED_IDS;
	for (size_t i = 0; i < job->crit_count; i++) {
		switch (job->crit[i].key) {
		case IMAP_SORT_ARRIVAL:
		case IMAP_SORT_SIZE:
			break;
		case IMAP_SORT_CC:
			needs |= IMAP_SORT_NEED_CC;
			break;
		case IMAP_SORT_DATE:
			needs |= IMAP_SORT_NEED_DATE;
			break;
		case IMAP_SORT_FROM:
			needs |= IMAP_SORT_NEED_FROM;
			break;
		case IMAP_SORT_SUBJECT:
			needs |= IMAP_SORT_NEED_SUBJECT;
			break;
		case IMAP_SORT_TO:
			needs |= IMAP_SORT_NEED_TO;
			break;
		case IMAP_SORT_DISPLAYFROM:
			needs |= IMAP_SORT_NEED_DISPLAYFROM;
			break;
		case IMAP_SORT_DISPLAYTO:
			needs |= IMAP_SORT_NEED_DISPLAYTO;
			break;
		}
	}
	return needs;
}

static void sort_start(struct imap_session *s, struct sort_job *job)
{
	job->needs = sort_needs(job);
	job->conn = s->conn;
	job->acct = s->acct;
	job->mailbox_id = s->sel->id;
	job->budget = (uint64_t)s->deps->cfg->imap_search_budget;
	job->view_count = s->sel->count;
	job->view = xmalloc((job->view_count + 1) * sizeof(*job->view));
	memcpy(job->view, s->sel->uids, job->view_count * sizeof(*job->view));
	if (job->ret & IMAP_RET_UPDATE)
		imap_context_prepare(s);
	s->busy = true;
	net_conn_offload_bulk(s->conn, sort_work, sort_done, job);
}

static void sort_or_thread(struct imap_session *s, const char *tag, struct imap_parser *ps,
			   bool uid, bool thread)
{
	struct sort_job *job = xcalloc(1, sizeof(*job));
	bool syntax_ok;

	buf_init(&job->threads);
	buf_init(&job->derived);
	imap_sort_keys_arena_init(&job->arena);
	job->tag = xstrdup(tag);
	job->uid = uid;
	if (thread) {
		struct imap_slice alg;
		if (!imap_parse_atom(ps, &alg) || !imap_parse_sp(ps))
			goto bad;
		if (imap_slice_ieq(&alg, "ORDEREDSUBJECT")) {
			job->kind = SORT_KIND_ORDEREDSUBJECT;
		} else if (imap_slice_ieq(&alg, "REFERENCES")) {
			job->kind = SORT_KIND_REFERENCES;
		} else {
			ps->error = "Unknown threading algorithm";
			goto bad;
		}
	} else if (!parse_return(ps, job) || !parse_criteria(ps, job) || !imap_parse_sp(ps)) {
		goto bad;
	}
	if (!parse_charset(s, tag, ps, &syntax_ok)) {
		if (!syntax_ok)
			goto bad;
		sort_job_free(&job);
		return;
	}
	job->keys = imap_search_keys_parse(s, ps);
	if (job->keys == NULL)
		goto bad;
	sort_start(s, job);
	return;
bad:
	imap_bad(s, tag, ps->error ? ps->error : thread ? "Invalid THREAD arguments"
							  : "Invalid SORT arguments");
	sort_job_free(&job);
}

void imap_sort_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid)
{
	sort_or_thread(s, tag, ps, uid, false);
}

void imap_thread_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid)
{
	sort_or_thread(s, tag, ps, uid, true);
}

void imap_cmd_sort(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_sort_run(s, tag, ps, false);
}

void imap_cmd_thread(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_thread_run(s, tag, ps, false);
}
