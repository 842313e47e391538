/* THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §2.2, §3). Both work on the keys of
 * sort_keys.c and write the thread-list of the answer. A thread can be as deep as the mailbox
 * is large (each message answering the one before), so every walk of the tree uses an
 * explicit stack, never recursion. */
#include <stdlib.h>
#include <string.h>

#include "sort.h"

/* ---------------- ORDEREDSUBJECT ---------------- */

static int cmp_subject_date(const void *pa, const void *pb, void *ctx)
{
	const struct imap_sort_msg *a = *(struct imap_sort_msg *const *)pa;
	const struct imap_sort_msg *b = *(struct imap_sort_msg *const *)pb;
	int c = strcmp(a->subject, b->subject);

	(void)ctx;
	if (c != 0)
		return c;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

static int cmp_first_date(const void *pa, const void *pb, void *ctx)
{
	const struct imap_sort_msg *a = **(struct imap_sort_msg **const *)pa;
	const struct imap_sort_msg *b = **(struct imap_sort_msg **const *)pb;

	(void)ctx;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

static uint32_t number_of(const struct imap_sort_msg *m, bool by_uid)
{
	return by_uid ? m->uid : m->msn;
}

void imap_thread_orderedsubject(struct imap_sort_msg **msgs, size_t n, bool by_uid,
				struct buf *out)
{
	struct imap_sort_msg **sorted = xmalloc((n + 1) * sizeof(*sorted));
	struct imap_sort_msg ***starts = xmalloc((n + 1) * sizeof(*starts));
	size_t thread_count = 0;

	memcpy(sorted, msgs, n * sizeof(*sorted));
	imap_merge_sort(sorted, n, sizeof(*sorted), cmp_subject_date, NULL);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(sorted[i]->subject, sorted[i - 1]->subject) != 0)
			starts[thread_count++] = &sorted[i];
	/* Threads in the order of their first message's sent date. */
	imap_merge_sort(starts, thread_count, sizeof(*starts), cmp_first_date, NULL);
	for (size_t t = 0; t < thread_count; t++) {
		struct imap_sort_msg **first = starts[t];
		size_t len = 1;
		while (first + len < sorted + n && strcmp(first[len]->subject, first[0]->subject) == 0)
			len++;
		/* The first message is the parent of all the others (RFC 5256 §3). */
		buf_printf(out, "(%u", number_of(first[0], by_uid));
		if (len == 2) {
			buf_printf(out, " %u", number_of(first[1], by_uid));
		} else if (len > 2) {
			buf_append_byte(out, ' ');
			for (size_t i = 1; i < len; i++)
				buf_printf(out, "(%u)", number_of(first[i], by_uid));
		}
		buf_append_byte(out, ')');
	}
	free(starts);
	free(sorted);
}

/* ---------------- REFERENCES ---------------- */

#define NONE SIZE_MAX

struct container {
	struct imap_sort_msg *msg; /* NULL: a dummy */
	/* siblings are doubly linked: unlinking one from a parent with thousands of children
	 * (the root of a big mailbox) must not walk them */
	size_t parent, first_child, next_sibling, prev_sibling;
};

struct id_entry {
	const char *id; /* NULL: a free slot */
	size_t container;
};

struct threader {
	struct container *c;
	size_t count, cap;
	/* message-id -> container, open addressing, grown when half full: sized for the number
	 * of distinct ids, not for every reference (most name the same few messages) */
	struct id_entry *ids;
	size_t id_count, table_size;
};

static size_t container_new(struct threader *t, struct imap_sort_msg *msg)
{
	if (t->count == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->c = xrealloc(t->c, t->cap * sizeof(*t->c));
	}
	t->c[t->count] = (struct container){ msg, NONE, NONE, NONE, NONE };
	return t->count++;
}

static uint64_t id_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static void id_table_grow(struct threader *t)
{
	struct id_entry *old = t->ids;
	size_t old_size = t->table_size;

	t->table_size = old_size * 2;
	t->ids = xcalloc(t->table_size, sizeof(*t->ids));
	for (size_t k = 0; k < old_size; k++) {
		if (old[k].id == NULL)
			continue;
		size_t i = (size_t)(id_hash(old[k].id) & (t->table_size - 1));
		while (t->ids[i].id != NULL)
			i = (i + 1) & (t->table_size - 1);
		t->ids[i] = old[k];
	}
	free(old);
}

/* The container of ID, created (as a dummy) on first sight. */
static size_t container_of_id(struct threader *t, const char *id, bool *created_r)
{
	size_t i;

	if (2 * (t->id_count + 1) > t->table_size)
		id_table_grow(t);
	i = (size_t)(id_hash(id) & (t->table_size - 1));
	*created_r = false;
	while (t->ids[i].id != NULL) {
		if (strcmp(t->ids[i].id, id) == 0)
			return t->ids[i].container;
		i = (i + 1) & (t->table_size - 1);
	}
	t->ids[i].id = id;
	t->ids[i].container = container_new(t, NULL);
	t->id_count++;
	*created_r = true;
	return t->ids[i].container;
}

static bool is_ancestor(const struct threader *t, size_t maybe_ancestor, size_t node)
{
	for (size_t p = node; p != NONE; p = t->c[p].parent)
		if (p == maybe_ancestor)
			return true;
	return false;
}

static void unlink_child(struct threader *t, size_t child)
{
	struct container *c = &t->c[child];

	if (c->prev_sibling != NONE)
		t->c[c->prev_sibling].next_sibling = c->next_sibling;
	else
		t->c[c->parent].first_child = c->next_sibling;
	if (c->next_sibling != NONE)
		t->c[c->next_sibling].prev_sibling = c->prev_sibling;
	c->parent = NONE;
	c->next_sibling = NONE;
	c->prev_sibling = NONE;
}

static void link_child(struct threader *t, size_t parent, size_t child)
{
	size_t first = t->c[parent].first_child;

	t->c[child].parent = parent;
	t->c[child].prev_sibling = NONE;
	t->c[child].next_sibling = first;
	if (first != NONE)
		t->c[first].prev_sibling = child;
	t->c[parent].first_child = child;
}

/* After a parent's child list was rebuilt through next_sibling alone. */
static void relink_prev(struct threader *t, size_t parent)
{
	size_t prev = NONE;

	for (size_t k = t->c[parent].first_child; k != NONE; k = t->c[k].next_sibling) {
		t->c[k].prev_sibling = prev;
		prev = k;
	}
}

/* Step 1: containers linked by References. */
static void link_message(struct threader *t, struct imap_sort_msg *m)
{
	size_t self, prev = NONE;
	bool created;

	if (m->message_id != NULL) {
		self = container_of_id(t, m->message_id, &created);
		if (t->c[self].msg != NULL) /* a duplicate Message-ID: treated as none */
			self = container_new(t, m);
		else
			t->c[self].msg = m;
	} else {
		self = container_new(t, m);
	}
	for (size_t i = 0; i < m->ref_count; i++) {
		size_t ref = container_of_id(t, m->refs[i], &created);
		/* (1B) link each reference to the one before it, unless already linked or that
		 * would make a loop */
		if (prev != NONE && t->c[ref].parent == NONE && ref != prev &&
		    !is_ancestor(t, ref, prev))
			link_child(t, prev, ref);
		prev = ref;
	}
	/* (1C) the message becomes a child of its last reference */
	if (t->c[self].parent != NONE)
		unlink_child(t, self);
	if (prev != NONE && prev != self && !is_ancestor(t, self, prev))
		link_child(t, prev, self);
}

/* Every container under root, parents before children (pre-order). */
static size_t *preorder(const struct threader *t, size_t root, size_t *n_r)
{
	size_t *order = xmalloc(t->count * sizeof(*order));
	size_t *stack = xmalloc(t->count * sizeof(*stack));
	size_t n = 0, top = 0;

	stack[top++] = root;
	while (top > 0) {
		size_t x = stack[--top];
		order[n++] = x;
		for (size_t k = t->c[x].first_child; k != NONE; k = t->c[k].next_sibling)
			stack[top++] = k;
	}
	free(stack);
	*n_r = n;
	return order;
}

/* Step 3: dummies without children go; a dummy's children take its place, except that at
 * the root level a dummy with several children stays (it holds their thread together). */
static void prune(struct threader *t, size_t root)
{
	size_t n, *order = preorder(t, root, &n);

	for (size_t i = n; i-- > 0;) { /* children before parents */
		size_t x = order[i], kid = t->c[x].first_child, head = NONE, tail = NONE;
		while (kid != NONE) {
			size_t next = t->c[kid].next_sibling;
			struct container *k = &t->c[kid];
			size_t from = kid, to = kid; /* the run of containers that replaces kid */
			if (k->msg == NULL && k->first_child == NONE) {
				kid = next;
				continue;
			}
			if (k->msg == NULL && (x != root || t->c[k->first_child].next_sibling == NONE)) {
				from = k->first_child;
				for (to = from; t->c[to].next_sibling != NONE; to = t->c[to].next_sibling)
					t->c[to].parent = x;
				t->c[to].parent = x;
			}
			if (tail == NONE)
				head = from;
			else
				t->c[tail].next_sibling = from;
			tail = to;
			kid = next;
		}
		if (tail != NONE)
			t->c[tail].next_sibling = NONE;
		t->c[x].first_child = head;
		relink_prev(t, x);
	}
	free(order);
}

/* The message that dates a container: its own, or for a dummy its first child's. */
static const struct imap_sort_msg *dating_msg(const struct threader *t, size_t x)
{
	while (t->c[x].msg == NULL && t->c[x].first_child != NONE)
		x = t->c[x].first_child;
	return t->c[x].msg;
}

struct sibling_ctx {
	const struct threader *t;
};

static int cmp_siblings(const void *pa, const void *pb, void *arg)
{
	const struct sibling_ctx *ctx = arg;
	const struct imap_sort_msg *a = dating_msg(ctx->t, *(const size_t *)pa);
	const struct imap_sort_msg *b = dating_msg(ctx->t, *(const size_t *)pb);

	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

/* Steps 4 and 6: siblings by sent date, children sorted before their parent is placed. */
static void sort_siblings(struct threader *t, size_t root)
{
	size_t n, *order = preorder(t, root, &n);
	size_t *kids = xmalloc((t->count + 1) * sizeof(*kids));
	struct sibling_ctx ctx = { t };

	for (size_t i = n; i-- > 0;) {
		size_t x = order[i], k = 0;
		for (size_t c = t->c[x].first_child; c != NONE; c = t->c[c].next_sibling)
			kids[k++] = c;
		if (k < 2)
			continue;
		imap_merge_sort(kids, k, sizeof(*kids), cmp_siblings, &ctx);
		t->c[x].first_child = kids[0];
		for (size_t j = 0; j + 1 < k; j++)
			t->c[kids[j]].next_sibling = kids[j + 1];
		t->c[kids[k - 1]].next_sibling = NONE;
		relink_prev(t, x);
	}
	free(kids);
	free(order);
}

static const char *root_subject(const struct threader *t, size_t x)
{
	const struct imap_sort_msg *m = t->c[x].msg != NULL ? t->c[x].msg
							      : t->c[t->c[x].first_child].msg;
	return m != NULL ? m->subject : "";
}

static bool root_is_reply(const struct threader *t, size_t x)
{
	return t->c[x].msg != NULL && t->c[x].msg->subject_is_reply;
}

/* Step 5: threads of the root set whose base subjects are equal are merged. */
static void group_by_subject(struct threader *t, size_t root)
{
	size_t n = 0, size = 16;
	const char **keys;
	size_t *vals;

	for (size_t x = t->c[root].first_child; x != NONE; x = t->c[x].next_sibling)
		n++;
	while (size < n * 2)
		size *= 2;
	keys = xcalloc(size, sizeof(*keys));
	vals = xcalloc(size, sizeof(*vals));
	/* (5B-C) the table: a dummy wins over a message, a non-reply over a reply */
	for (size_t x = t->c[root].first_child; x != NONE; x = t->c[x].next_sibling) {
		const char *subj = root_subject(t, x);
		size_t i;
		if (subj[0] == '\0')
			continue;
		for (i = (size_t)(id_hash(subj) & (size - 1)); keys[i] != NULL; i = (i + 1) & (size - 1))
			if (strcmp(keys[i], subj) == 0)
				break;
		if (keys[i] == NULL) {
			keys[i] = subj;
			vals[i] = x;
		} else if ((t->c[x].msg == NULL && t->c[vals[i]].msg != NULL) ||
			   (root_is_reply(t, vals[i]) && !root_is_reply(t, x) && t->c[x].msg != NULL &&
			    t->c[vals[i]].msg != NULL)) {
			vals[i] = x;
		}
	}
	/* (5E) merge every other root into the table's; the roots are taken first, as merging
	 * moves them */
	size_t *roots = xmalloc((n + 1) * sizeof(*roots)), r = 0;
	for (size_t x = t->c[root].first_child; x != NONE; x = t->c[x].next_sibling)
		roots[r++] = x;
	for (size_t j = 0; j < r; j++) {
		size_t x = roots[j];
		const char *subj = root_subject(t, x);
		size_t i, keep;
		if (subj[0] == '\0' || t->c[x].parent != root)
			continue;
		for (i = (size_t)(id_hash(subj) & (size - 1)); strcmp(keys[i], subj) != 0;
		     i = (i + 1) & (size - 1))
			;
		keep = vals[i];
		if (keep == x)
			continue;
		if (t->c[keep].msg == NULL && t->c[x].msg == NULL) {
			unlink_child(t, x);
			while (t->c[x].first_child != NONE) {
				size_t kid = t->c[x].first_child;
				unlink_child(t, kid);
				link_child(t, keep, kid);
			}
		} else if (t->c[keep].msg == NULL) {
			unlink_child(t, x);
			link_child(t, keep, x);
		} else if (t->c[x].msg != NULL && root_is_reply(t, x) && !root_is_reply(t, keep)) {
			unlink_child(t, x);
			link_child(t, keep, x);
		} else {
			/* both siblings under a new dummy, which takes keep's place in the table */
			size_t dummy = container_new(t, NULL);
			unlink_child(t, x);
			unlink_child(t, keep);
			link_child(t, root, dummy);
			link_child(t, dummy, keep);
			link_child(t, dummy, x);
			vals[i] = dummy;
			keys[i] = root_subject(t, dummy);
		}
	}
	free(roots);
	free(keys);
	free(vals);
}

enum render_step { RENDER_NODE, RENDER_OPEN, RENDER_CLOSE };

/* RFC 5256 §4 thread-list: "(a b (c)(d e))", a dummy adds no number. */
static void render(const struct threader *t, size_t root, bool by_uid, struct buf *out)
{
	size_t cap = 3 * (t->count + 1), top = 0;
	struct {
		enum render_step step;
		size_t node;
	} *stack = xmalloc(cap * sizeof(*stack));

	for (size_t x = t->c[root].first_child; x != NONE; x = t->c[x].next_sibling) {
		buf_append_byte(out, '(');
		stack[top].step = RENDER_NODE;
		stack[top++].node = x;
		while (top > 0) {
			enum render_step step = stack[--top].step;
			size_t node = stack[top].node;
			size_t kids = 0;
			if (step == RENDER_OPEN) {
				buf_append_byte(out, '(');
				continue;
			}
			if (step == RENDER_CLOSE) {
				buf_append_byte(out, ')');
				continue;
			}
			for (size_t k = t->c[node].first_child; k != NONE; k = t->c[k].next_sibling)
				kids++;
			if (t->c[node].msg != NULL) {
				buf_printf(out, "%u", number_of(t->c[node].msg, by_uid));
				if (kids > 0)
					buf_append_byte(out, ' ');
			}
			if (kids == 1) {
				stack[top].step = RENDER_NODE;
				stack[top++].node = t->c[node].first_child;
				continue;
			}
			/* several children: each its own parenthesised subthread, in order */
			top += 3 * kids;
			size_t slot = top;
			for (size_t k = t->c[node].first_child; k != NONE; k = t->c[k].next_sibling) {
				stack[--slot].step = RENDER_OPEN;
				stack[slot].node = k;
				stack[--slot].step = RENDER_NODE;
				stack[slot].node = k;
				stack[--slot].step = RENDER_CLOSE;
				stack[slot].node = k;
			}
		}
		buf_append_byte(out, ')');
	}
	free(stack);
}

static int cmp_msn(const void *pa, const void *pb, void *ctx)
{
	const struct imap_sort_msg *a = *(struct imap_sort_msg *const *)pa;
	const struct imap_sort_msg *b = *(struct imap_sort_msg *const *)pb;

	(void)ctx;
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

void imap_thread_references(struct imap_sort_msg **msgs, size_t n, bool by_uid, struct buf *out)
{
	struct threader t = { 0 };
	size_t root;
	struct imap_sort_msg **in_order = xmalloc((n + 1) * sizeof(*in_order));

	/* Messages are linked in mailbox order, so the first of two with one Message-ID keeps it
	 * whatever order the caller has them in. */
	memcpy(in_order, msgs, n * sizeof(*msgs));
	imap_merge_sort(in_order, n, sizeof(*in_order), cmp_msn, NULL);
	msgs = in_order;

	t.table_size = 16;
	while (t.table_size < n * 2)
		t.table_size *= 2;
	t.ids = xcalloc(t.table_size, sizeof(*t.ids));
	t.cap = n + n / 2 + 64; /* the messages and some dummies, without regrowing */
	t.c = xmalloc(t.cap * sizeof(*t.c));
	for (size_t i = 0; i < n; i++)
		link_message(&t, msgs[i]);
	/* (2) the root set: a container above every parentless one */
	root = container_new(&t, NULL);
	for (size_t x = 0; x < root; x++)
		if (t.c[x].parent == NONE)
			link_child(&t, root, x);
	prune(&t, root);
	sort_siblings(&t, root);
	group_by_subject(&t, root);
	sort_siblings(&t, root);
	render(&t, root, by_uid, out);
	free(in_order);
	free(t.ids);
	free(t.c);
}
