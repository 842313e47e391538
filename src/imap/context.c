/* Searches kept alive (RFC 5267 §4: CONTEXT=SEARCH and CONTEXT=SORT). A SEARCH or SORT with
 * RETURN (UPDATE) leaves its criteria and its result here; as messages arrive, change flags
 * or go, the session tells the client with "* ESEARCH (TAG ..) ADDTO (position set)" and
 * "REMOVEFROM (position set)" (position 0 for SEARCH, the 1-based place in the sorted list
 * for SORT) until CANCELUPDATE or the end of the selection.
 *
 * Design notes
 *  1. Everything here runs on the session's loop except refresh_work, which reads only what
 *     the job owns or what no one changes while it runs (the criteria).
 *  2. The change feed marks UIDs dirty (imap_context_touch: appends and flag changes).
 *     A refresh (imap_context_refresh) first reports EXISTS and flags, so every dirty UID the
 *     client may hear of has its number, then re-runs every live criteria over the dirty
 *     messages in the pool; its answer is written on the loop. A SORT context whose result
 *     gains a message is sorted again as a whole, to find where the message goes.
 *  3. A refresh runs before the next command (so "NOOP" shows the changes before its OK),
 *     and at once during IDLE or NOTIFY pushes, like the EXISTS and FETCH it follows. While
 *     it runs the session is busy: no command runs and input waits.
 *  4. Expunged messages leave results when the client is told of the EXPUNGE (REMOVEFROM
 *     first, numbered as before it), without any store access (imap_context_expunge).
 *  5. Bounds: LIMIT_IMAP_CONTEXTS live searches, LIMIT_IMAP_CONTEXT_RESULT messages in each
 *     result, LIMIT_IMAP_PENDING_UIDS dirty UIDs (past it the whole view is re-checked).
 *     A search refused, or one whose refresh fails or overflows, gets "* OK [NOUPDATE tag]".
 *  6. A context is shared by the session and the refresh job using it (refs); CANCELUPDATE
 *     or the end of the selection marks it ended, and the last holder frees it. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"
#include "sort.h"

struct imap_context {
	char *tag;
	bool uid, sorted;
	unsigned ret;
	struct imap_search_keys *keys;
	struct imap_sort_criterion crit[IMAP_SORT_CRITERIA_MAX];
	size_t crit_count;
	uint32_t *uids; /* the result: ascending UIDs, or in sort order */
	size_t count;
	unsigned refs;
	bool ended;
};

struct context_job;

struct imap_contexts {
	struct imap_context *live[LIMIT_IMAP_CONTEXTS];
	size_t count;
	unsigned pending; /* UPDATE searches running */
	uint32_t *dirty;
	size_t dirty_count, dirty_cap;
	bool all_dirty;
	struct context_job *job;
};

/* One refresh: the dirty UIDs of the view, checked against every live context. */
struct context_job {
	struct net_conn *conn;
	struct store_account *acct;
	uint64_t mailbox_id;
	uint64_t budget;
	struct imap_context **ctx;
	size_t ctx_count;
	uint32_t *uids; /* ascending */
	size_t n;
	uint32_t *view; /* for sorting again */
	size_t view_count;
	bool *was_in;	/* [k * n + i]: uids[i] was in ctx[k]'s result when the job began */
	uint8_t *state; /* [k * n + i]: STATE_* */
	uint32_t **order; /* [k]: ctx[k]'s new sort order, when it gains a message */
	size_t *order_count;
	bool failed;
	bool orphaned;
	void (*then)(struct imap_session *s);
};

enum { STATE_GONE = 0, STATE_OUT = 1, STATE_IN = 2 };

static void context_unref(struct imap_context *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	imap_search_keys_free(&c->keys);
	free(c->uids);
	free(c->tag);
	free(c);
}

static void dirty_clear(struct imap_contexts *cs)
{
	free(cs->dirty);
	cs->dirty = NULL;
	cs->dirty_count = cs->dirty_cap = 0;
	cs->all_dirty = false;
}

static struct imap_contexts *contexts_get(struct imap_session *s)
{
	if (s->contexts == NULL)
		s->contexts = xcalloc(1, sizeof(*s->contexts));
	return s->contexts;
}

static void job_free(struct context_job *job)
{
	for (size_t k = 0; k < job->ctx_count; k++) {
		context_unref(job->ctx[k]);
		if (job->order != NULL)
			free(job->order[k]);
	}
	free(job->ctx);
	free(job->uids);
	free(job->view);
	free(job->was_in);
	free(job->state);
	free(job->order);
	free(job->order_count);
	free(job);
}

/* ---------------- writing ---------------- */

static void line_begin(struct buf *line, const struct imap_context *c)
{
	buf_append_str(line, "* ESEARCH (TAG ");
	mime_imap_string(line, c->tag, strlen(c->tag));
	buf_append_byte(line, ')');
	if (c->uid)
		buf_append_str(line, " UID");
}

static void line_end(struct imap_session *s, struct buf *line)
{
	buf_append_str(line, "\r\n");
	net_conn_write(s->conn, line->data, line->len);
}

static uint32_t number_of(const struct imap_session *s, const struct imap_context *c,
			  uint32_t uid)
{
	return c->uid ? uid : imap_msn_of(s->sel, uid);
}

/* MIN, MAX and COUNT as the client asked for them (RFC 4731 §3.1; for SORT the first and
 * last in sort order, RFC 5267 §3.2). */
struct summary {
	uint32_t min, max;
	size_t count;
};

static struct summary summary_of(const struct imap_session *s, const struct imap_context *c)
{
	struct summary sum = { 0, 0, c->count };

	if (c->count > 0) {
		sum.min = number_of(s, c, c->uids[0]);
		sum.max = number_of(s, c, c->uids[c->count - 1]);
	}
	return sum;
}

static void append_summary_changes(struct buf *line, const struct imap_context *c,
				   const struct summary *before, const struct summary *after)
{
	if ((c->ret & IMAP_RET_MIN) && after->count > 0 &&
	    (before->count == 0 || after->min != before->min))
		buf_printf(line, " MIN %u", after->min);
	if ((c->ret & IMAP_RET_MAX) && after->count > 0 &&
	    (before->count == 0 || after->max != before->max))
		buf_printf(line, " MAX %u", after->max);
	if ((c->ret & IMAP_RET_COUNT) && after->count != before->count)
		buf_printf(line, " COUNT %zu", after->count);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The result's UIDs in ascending order, for membership tests: the result itself for SEARCH,
 * a sorted copy (heap, *copy_r, freed by the caller) for SORT. */
static const uint32_t *members_of(const struct imap_context *c, uint32_t **copy_r)
{
	*copy_r = NULL;
	if (!c->sorted)
		return c->uids;
	*copy_r = xmalloc((c->count + 1) * sizeof(uint32_t));
	memcpy(*copy_r, c->uids, c->count * sizeof(uint32_t));
	qsort(*copy_r, c->count, sizeof(uint32_t), u32_cmp);
	return *copy_r;
}

static bool is_member(const uint32_t *members, size_t count, uint32_t uid)
{
	return bsearch(&uid, members, count, sizeof(uint32_t), u32_cmp) != NULL;
}

/* " REMOVEFROM (0 set)" or " ADDTO (0 set)" of an unsorted search; nums are sorted here. */
static void append_set_item(struct buf *line, const char *name, uint32_t *nums, size_t n)
{
	qsort(nums, n, sizeof(uint32_t), u32_cmp);
	buf_printf(line, " %s (0 ", name);
	imap_append_uid_set(line, nums, n);
	buf_append_byte(line, ')');
}

/* Takes the UIDs of drop (ascending) out of c's result in one pass. SORT gets a REMOVEFROM
 * per message, its position as the client finds it when it applies them in order; SEARCH one
 * REMOVEFROM with the set. Returns how many left. */
static size_t result_remove_set(struct imap_session *s, struct imap_context *c,
				const uint32_t *drop, size_t n, struct buf *line)
{
	uint32_t *nums = xmalloc((n + 1) * sizeof(uint32_t));
	size_t kept = 0, removed = 0;

	for (size_t i = 0; i < c->count; i++) {
		uint32_t uid = c->uids[i];
		if (n == 0 || !is_member(drop, n, uid)) {
			c->uids[kept++] = uid;
			continue;
		}
		if (c->sorted)
			buf_printf(line, " REMOVEFROM (%zu %u)", kept + 1, number_of(s, c, uid));
		else
			nums[removed] = number_of(s, c, uid);
		removed++;
	}
	c->count = kept;
	if (!c->sorted && removed > 0)
		append_set_item(line, "REMOVEFROM", nums, removed);
	free(nums);
	return removed;
}

/* SEARCH: merges the UIDs of add (ascending, none in the result) into it. */
static void result_merge(struct imap_context *c, const uint32_t *add, size_t n)
{
	uint32_t *merged = xmalloc((c->count + n + 1) * sizeof(uint32_t));
	size_t i = 0, j = 0, m = 0;

	while (i < c->count || j < n)
		merged[m++] = j == n || (i < c->count && c->uids[i] < add[j]) ? c->uids[i++]
									  : add[j++];
	free(c->uids);
	c->uids = merged;
	c->count = m;
}

/* ---------------- ending contexts ---------------- */

static void write_noupdate(struct imap_session *s, const char *tag, const char *why)
{
	struct buf line;

	buf_init(&line);
	buf_append_str(&line, "* OK [NOUPDATE ");
	mime_imap_string(&line, tag, strlen(tag));
	buf_printf(&line, "] %s", why);
	line_end(s, &line);
	buf_free(&line);
}

static void context_end(struct imap_session *s, size_t index)
{
	struct imap_contexts *cs = s->contexts;
	struct imap_context *c = cs->live[index];

	c->ended = true;
	memmove(cs->live + index, cs->live + index + 1,
		(cs->count - index - 1) * sizeof(cs->live[0]));
	cs->count--;
	context_unref(c);
	if (cs->count == 0 && cs->pending == 0)
		dirty_clear(cs);
}

static size_t context_index(const struct imap_contexts *cs, const struct imap_context *c)
{
	for (size_t i = 0; i < cs->count; i++)
		if (cs->live[i] == c)
			return i;
	return SIZE_MAX;
}

static void context_drop(struct imap_session *s, struct imap_context *c, const char *why)
{
	size_t i = context_index(s->contexts, c);

	if (i == SIZE_MAX)
		return;
	write_noupdate(s, c->tag, why);
	context_end(s, i);
}

/* ---------------- starting ---------------- */

void imap_context_prepare(struct imap_session *s)
{
	contexts_get(s)->pending++;
}

void imap_context_abandon(struct imap_session *s)
{
	struct imap_contexts *cs = s->contexts;

	if (cs == NULL || cs->pending == 0)
		return;
	if (--cs->pending == 0 && cs->count == 0)
		dirty_clear(cs);
}

static const char *refusal(const struct imap_session *s, const struct imap_context_spec *spec)
{
	if (spec->ret & IMAP_RET_PARTIAL)
		return "Results with PARTIAL are not kept up to date";
	if (s->contexts->count >= LIMIT_IMAP_CONTEXTS)
		return "Too many searches kept up to date; CANCELUPDATE one first";
	if (spec->count > LIMIT_IMAP_CONTEXT_RESULT)
		return "Result too large to keep up to date";
	return NULL;
}

void imap_context_add(struct imap_session *s, struct imap_context_spec *spec)
{
	struct imap_contexts *cs = contexts_get(s);
	const char *why = refusal(s, spec);
	struct imap_context *c;

	if (why != NULL) {
		write_noupdate(s, spec->tag, why);
		imap_search_keys_free(&spec->keys);
		imap_context_abandon(s);
		return;
	}
	/* A tag already live names the new search from now on. */
	for (size_t i = 0; i < cs->count; i++)
		if (strcmp(cs->live[i]->tag, spec->tag) == 0) {
			context_end(s, i);
			break;
		}
	c = xcalloc(1, sizeof(*c));
	c->tag = xstrdup(spec->tag);
	c->uid = spec->uid;
	c->sorted = spec->sorted;
	c->ret = spec->ret;
	c->keys = spec->keys;
	spec->keys = NULL;
	c->crit_count = spec->crit_count < IMAP_SORT_CRITERIA_MAX ? spec->crit_count
								   : IMAP_SORT_CRITERIA_MAX;
	if (c->crit_count > 0)
		memcpy(c->crit, spec->crit, c->crit_count * sizeof(c->crit[0]));
	c->uids = xmalloc((spec->count + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < spec->count; i++)
		if (imap_msn_of(s->sel, spec->uids[i]) != 0) /* only what the client knows */
			c->uids[c->count++] = spec->uids[i];
	c->refs = 1;
	cs->live[cs->count++] = c;
	if (cs->pending > 0)
		cs->pending--;
	/* New messages the client has not heard of yet are checked once it has. */
	imap_updates_touch_appended(s);
}

/* ---------------- changes ---------------- */

void imap_context_touch(struct imap_session *s, const uint32_t *uids, size_t n)
{
	struct imap_contexts *cs = s->contexts;

	if (cs == NULL || (cs->count == 0 && cs->pending == 0) || cs->all_dirty || n == 0)
		return;
	if (cs->dirty_count + n > LIMIT_IMAP_PENDING_UIDS) {
		dirty_clear(cs);
		cs->all_dirty = true; /* every message of the view is checked again */
		return;
	}
	if (cs->dirty_count + n > cs->dirty_cap) {
		cs->dirty_cap = cs->dirty_count + n > cs->dirty_cap * 2 ? cs->dirty_count + n
									 : cs->dirty_cap * 2;
		cs->dirty = xrealloc(cs->dirty, cs->dirty_cap * sizeof(uint32_t));
	}
	memcpy(cs->dirty + cs->dirty_count, uids, n * sizeof(uint32_t));
	cs->dirty_count += n;
}

static void expunge_from(struct imap_session *s, struct imap_context *c, const uint32_t *sorted,
			 size_t n)
{
	struct summary before = summary_of(s, c);
	struct buf line;

	buf_init(&line);
	line_begin(&line, c);
	if (result_remove_set(s, c, sorted, n, &line) > 0) {
		struct summary after = summary_of(s, c);
		append_summary_changes(&line, c, &before, &after);
		line_end(s, &line);
	}
	buf_free(&line);
}

void imap_context_expunge(struct imap_session *s, const uint32_t *uids, size_t n)
{
	struct imap_contexts *cs = s->contexts;

	uint32_t *sorted;

	if (cs == NULL || s->sel == NULL || cs->count == 0 || n == 0)
		return;
	sorted = xmalloc(n * sizeof(uint32_t));
	memcpy(sorted, uids, n * sizeof(uint32_t));
	qsort(sorted, n, sizeof(uint32_t), u32_cmp);
	for (size_t k = 0; k < cs->count; k++)
		expunge_from(s, cs->live[k], sorted, n);
	free(sorted);
}

/* ---------------- refresh: work (pool) ---------------- */

/* Keeps the messages of msgs that are among uids (both ascending); at[i] is where uids[i]
 * went in picked, SIZE_MAX for one no longer in the store. */
static size_t pick_dirty(const struct store_msg *msgs, size_t count, const uint32_t *uids,
			 size_t n, struct store_msg *picked, size_t *at)
{
	size_t m = 0, j = 0;

	for (size_t i = 0; i < n; i++) {
		while (j < count && msgs[j].uid < uids[i])
			j++;
		at[i] = SIZE_MAX;
		if (j < count && msgs[j].uid == uids[i]) {
			picked[m] = msgs[j]; /* shallow: msgs owns the strings */
			at[i] = m++;
		}
	}
	return m;
}

static bool check_context(struct context_job *job, size_t k, const struct store_msg *picked,
			  size_t m, const size_t *at, bool *match)
{
	const struct imap_context *c = job->ctx[k];
	bool gains = false;

	if (imap_search_match(job->conn, job->acct, job->mailbox_id, c->keys, job->budget, picked,
			      m, match) != IMAP_SEARCH_DONE)
		return false;
	for (size_t i = 0; i < job->n; i++) {
		uint8_t st = at[i] == SIZE_MAX ? STATE_GONE : match[at[i]] ? STATE_IN : STATE_OUT;
		job->state[k * job->n + i] = st;
		gains |= st == STATE_IN && !job->was_in[k * job->n + i];
	}
	if (!c->sorted || !gains)
		return true;
	return imap_sort_uids(job->conn, job->acct, job->mailbox_id, c->keys, c->crit,
			      c->crit_count, job->view, job->view_count, job->budget,
			      &job->order[k], &job->order_count[k]) == IMAP_SEARCH_DONE;
}

static void refresh_work(void *arg)
{
	struct context_job *job = arg;
	struct store_list_query q = { job->uids[0], job->uids[job->n - 1], 0 };
	struct store_msg *msgs = NULL, *picked;
	size_t count = 0, m, *at;
	bool *match;

	if (net_conn_gone(job->conn) ||
	    store_msg_list(job->acct, job->mailbox_id, &q, &msgs, &count, NULL) != STORE_OK) {
		job->failed = true;
		return;
	}
	picked = xmalloc((job->n + 1) * sizeof(*picked));
	at = xmalloc((job->n + 1) * sizeof(*at));
	match = xmalloc(job->n + 1);
	m = pick_dirty(msgs, count, job->uids, job->n, picked, at);
	for (size_t k = 0; k < job->ctx_count && !job->failed; k++)
		job->failed = !check_context(job, k, picked, m, at, match);
	free(match);
	free(at);
	free(picked);
	store_msg_list_free(&msgs, count);
}

/* ---------------- refresh: answer (loop) ---------------- */

/* Rank of each UID in a sort order, for finding where an added message goes. */
struct rank {
	uint32_t uid;
	size_t rank;
};

static int rank_cmp(const void *a, const void *b)
{
	return u32_cmp(&((const struct rank *)a)->uid, &((const struct rank *)b)->uid);
}

static size_t rank_of(const struct rank *ranks, size_t n, uint32_t uid)
{
	struct rank key = { uid, 0 };
	const struct rank *r = bsearch(&key, ranks, n, sizeof(*ranks), rank_cmp);

	return r == NULL ? SIZE_MAX : r->rank;
}

/* SORT: each added UID goes before the first entry that sorts after it; entries the new
 * order lacks (expunged, EXPUNGE not yet reported) keep their places. One merge by rank;
 * the ADDTO items come in ascending positions, each right once the earlier ones are in. */
static void sorted_add(struct imap_session *s, struct imap_context *c, const uint32_t *order,
		       size_t order_count, const uint32_t *added, size_t added_count,
		       struct buf *line)
{
	struct rank *ranks = xmalloc((order_count + 1) * sizeof(*ranks));
	struct rank *adds = xmalloc((added_count + 1) * sizeof(*adds));
	uint32_t *merged = xmalloc((c->count + added_count + 1) * sizeof(uint32_t));
	size_t a = 0, m = 0, j = 0;

	for (size_t i = 0; i < order_count; i++) {
		ranks[i] = (struct rank){ order[i], i };
		if (is_member(added, added_count, order[i])) /* in sort order */
			adds[a++] = ranks[i];
	}
	qsort(ranks, order_count, sizeof(*ranks), rank_cmp);
	for (size_t i = 0; i <= c->count; i++) {
		size_t r = i < c->count ? rank_of(ranks, order_count, c->uids[i]) : SIZE_MAX - 1;
		while (r != SIZE_MAX && j < a && adds[j].rank < r) {
			merged[m++] = adds[j].uid;
			buf_printf(line, " ADDTO (%zu %u)", m, number_of(s, c, adds[j].uid));
			j++;
		}
		if (i < c->count)
			merged[m++] = c->uids[i];
	}
	free(c->uids);
	c->uids = merged;
	c->count = m;
	free(adds);
	free(ranks);
}

/* The changes the job found for context k, written as one ESEARCH line. */
static void apply_context(struct imap_session *s, const struct context_job *job, size_t k)
{
	struct imap_context *c = job->ctx[k];
	struct summary before = summary_of(s, c);
	uint32_t *removed = xmalloc((job->n + 1) * sizeof(uint32_t));
	uint32_t *added = xmalloc((job->n + 1) * sizeof(uint32_t));
	size_t removed_count = 0, added_count = 0;
	uint32_t *copy;
	const uint32_t *members = members_of(c, &copy);
	struct buf line;

	for (size_t i = 0; i < job->n; i++) { /* ascending UIDs */
		uint32_t uid = job->uids[i];
		uint8_t st = job->state[k * job->n + i];
		bool member = is_member(members, c->count, uid);
		if (st == STATE_OUT && member)
			removed[removed_count++] = uid;
		else if (st == STATE_IN && !member && imap_msn_of(s->sel, uid) != 0)
			added[added_count++] = uid;
	}
	free(copy);
	buf_init(&line);
	line_begin(&line, c);
	result_remove_set(s, c, removed, removed_count, &line);
	if (c->count + added_count > LIMIT_IMAP_CONTEXT_RESULT ||
	    (added_count > 0 && c->sorted && job->order[k] == NULL)) {
		/* (the job sorts whenever a message joins a SORT result: without a new order,
		 * rather end the context than guess positions) */
		context_drop(s, c, c->count + added_count > LIMIT_IMAP_CONTEXT_RESULT
					   ? "Result too large to keep up to date"
					   : "Cannot keep this search up to date");
		goto out;
	}
	if (added_count > 0 && c->sorted) {
		sorted_add(s, c, job->order[k], job->order_count[k], added, added_count, &line);
	} else if (added_count > 0) {
		result_merge(c, added, added_count);
		for (size_t i = 0; i < added_count; i++)
			added[i] = number_of(s, c, added[i]);
		append_set_item(&line, "ADDTO", added, added_count);
	}
	if (removed_count + added_count > 0) {
		struct summary after = summary_of(s, c);
		append_summary_changes(&line, c, &before, &after);
		line_end(s, &line);
	}
out:
	buf_free(&line);
	free(removed);
	free(added);
}

static void refresh_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct context_job *job = arg;
	void (*then)(struct imap_session *s) = job->then;

	if (job->orphaned || s == NULL) {
		job_free(job);
		return;
	}
	s->contexts->job = NULL;
	s->busy = false;
	if (net_conn_is_closing(s->conn)) {
		job_free(job);
		return;
	}
	for (size_t k = 0; k < job->ctx_count; k++) {
		if (job->ctx[k]->ended)
			continue;
		if (job->failed)
			context_drop(s, job->ctx[k], "Cannot keep this search up to date");
		else
			apply_context(s, job, k);
	}
	job_free(job);
	if (then != NULL) {
		then(s);
		return;
	}
	if (s->idle_tag != NULL || imap_notify_push_selected(s))
		imap_updates_push(s);
	if (!s->busy)
		imap_command_done(s);
}

/* The dirty UIDs the client knows, ascending and once each; the others are forgotten
 * (expunged and reported, or never to be shown). */
static uint32_t *dirty_in_view(struct imap_session *s, size_t *n_r)
{
	struct imap_contexts *cs = s->contexts;
	const struct imap_selected *sel = s->sel;
	uint32_t *uids;
	size_t n = 0;

	if (cs->all_dirty) {
		uids = xmalloc((sel->count + 1) * sizeof(uint32_t));
		memcpy(uids, sel->uids, sel->count * sizeof(uint32_t));
		*n_r = sel->count;
		return uids;
	}
	qsort(cs->dirty, cs->dirty_count, sizeof(uint32_t), u32_cmp);
	uids = xmalloc((cs->dirty_count + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < cs->dirty_count; i++) {
		if (n > 0 && uids[n - 1] == cs->dirty[i])
			continue;
		if (imap_msn_of(sel, cs->dirty[i]) != 0)
			uids[n++] = cs->dirty[i];
	}
	*n_r = n;
	return uids;
}

static struct context_job *job_new(struct imap_session *s, uint32_t *uids, size_t n)
{
	struct imap_contexts *cs = s->contexts;
	struct context_job *job = xcalloc(1, sizeof(*job));

	job->conn = s->conn;
	job->acct = s->acct;
	job->mailbox_id = s->sel->id;
	job->budget = (uint64_t)s->deps->cfg->imap_search_budget;
	job->uids = uids;
	job->n = n;
	job->view_count = s->sel->count;
	job->view = xmalloc((job->view_count + 1) * sizeof(uint32_t));
	memcpy(job->view, s->sel->uids, job->view_count * sizeof(uint32_t));
	job->ctx_count = cs->count;
	job->ctx = xmalloc(cs->count * sizeof(*job->ctx));
	job->was_in = xcalloc(cs->count * n + 1, sizeof(bool));
	job->state = xcalloc(cs->count * n + 1, 1);
	job->order = xcalloc(cs->count, sizeof(*job->order));
	job->order_count = xcalloc(cs->count, sizeof(*job->order_count));
	for (size_t k = 0; k < cs->count; k++) {
		struct imap_context *c = cs->live[k];
		uint32_t *copy;
		const uint32_t *members = members_of(c, &copy);
		job->ctx[k] = c;
		c->refs++;
		for (size_t i = 0; i < n; i++)
			job->was_in[k * n + i] = is_member(members, c->count, uids[i]);
		free(copy);
	}
	return job;
}

bool imap_context_refresh(struct imap_session *s, void (*then)(struct imap_session *s))
{
	struct imap_contexts *cs = s->contexts;
	uint32_t *uids;
	size_t n;

	if (cs == NULL || cs->count == 0 || cs->job != NULL || s->sel == NULL ||
	    (cs->dirty_count == 0 && !cs->all_dirty))
		return false;
	/* The client hears of new messages (EXISTS) before any ADDTO names them. */
	imap_flush_updates(s, false);
	uids = dirty_in_view(s, &n);
	dirty_clear(cs);
	if (n == 0) {
		free(uids);
		return false;
	}
	cs->job = job_new(s, uids, n);
	cs->job->then = then;
	s->busy = true;
	net_conn_offload_bulk(s->conn, refresh_work, refresh_done, cs->job);
	return true;
}

void imap_contexts_free(struct imap_session *s)
{
	struct imap_contexts *cs = s->contexts;

	if (cs == NULL)
		return;
	if (cs->job != NULL)
		cs->job->orphaned = true; /* its done() frees it */
	for (size_t i = 0; i < cs->count; i++) {
		cs->live[i]->ended = true;
		context_unref(cs->live[i]);
	}
	dirty_clear(cs);
	free(cs);
	s->contexts = NULL;
}

/* ---------------- CANCELUPDATE ---------------- */

/* RFC 5267 §4.2: CANCELUPDATE SP quoted *(SP quoted). Every tag must name a live search;
 * none is cancelled unless all do. */
void imap_cmd_cancelupdate(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_contexts *cs = s->contexts;
	struct imap_context *found[LIMIT_IMAP_CONTEXTS];
	size_t found_count = 0;

	for (int n = 0; n == 0 || !imap_at_end(ps); n++) {
		struct imap_slice t;
		struct imap_context *c = NULL;
		if ((n > 0 && !imap_parse_sp(ps)) || !imap_parse_string(ps, &t)) {
			imap_bad(s, tag, "CANCELUPDATE needs quoted tags");
			return;
		}
		for (size_t i = 0; cs != NULL && i < cs->count && c == NULL; i++)
			if (strlen(cs->live[i]->tag) == t.len &&
			    memcmp(cs->live[i]->tag, t.data, t.len) == 0)
				c = cs->live[i];
		if (c == NULL) {
			imap_bad(s, tag, "No search kept up to date has that tag");
			return;
		}
		bool seen = false;
		for (size_t i = 0; i < found_count; i++)
			seen |= found[i] == c;
		if (!seen)
			found[found_count++] = c;
	}
	if (!imap_parse_crlf(ps)) {
		imap_bad(s, tag, "Invalid CANCELUPDATE arguments");
		return;
	}
	for (size_t i = 0; i < found_count; i++)
		context_end(s, context_index(cs, found[i]));
	imap_tagged(s, tag, "%s OK CANCELUPDATE completed", tag);
}
