/* CONDSTORE and QRESYNC (RFC 7162) pieces shared by SELECT, FETCH, STORE and SEARCH: the
 * "(MODSEQ n)" style numbers, and working out which known UIDs vanished since a MODSEQ. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

void imap_condstore_enable(struct imap_session *s)
{
	s->enabled_condstore = true;
}

bool imap_parse_modseq(struct imap_parser *ps, uint64_t *modseq_r)
{
	uint64_t v = 0;
	size_t digits = 0;

	/* mod-sequence-value = 1*DIGIT, at most 2^63-1 (RFC 7162 §7). */
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		if (v > (INT64_MAX - 9) / 10) {
			ps->error = "MODSEQ value too large";
			return false;
		}
		v = v * 10 + (uint64_t)(*ps->p - '0');
		ps->p++;
		digits++;
	}
	if (digits == 0) {
		ps->error = "Expected a MODSEQ value";
		return false;
	}
	*modseq_r = v;
	return true;
}

static void ranges_add(struct store_uid_range **r, size_t *n, size_t *cap, uint32_t first,
		       uint32_t last)
{
	if (*n > 0 && (*r)[*n - 1].last + 1 == first) {
		(*r)[*n - 1].last = last;
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*r = xrealloc(*r, *cap * sizeof(**r));
	}
	(*r)[*n].first = first;
	(*r)[(*n)++].last = last;
}

/* The UIDs of KNOWN that are not in PRESENT (sorted), as ranges: bounded by the number of
 * present messages and known ranges, however wide the ranges a client sends. */
static void known_minus_present(const struct store_uid_range *known, size_t known_count,
				const uint32_t *present, size_t present_count,
				struct store_uid_range **r, size_t *n)
{
	size_t cap = 0, j = 0;

	for (size_t i = 0; i < known_count; i++) {
		uint64_t next = known[i].first;
		uint64_t last = known[i].last;

		while (j < present_count && present[j] < next)
			j++;
		while (next <= last) {
			if (j < present_count && present[j] <= last) {
				if (present[j] > next)
					ranges_add(r, n, &cap, (uint32_t)next, present[j] - 1);
				next = (uint64_t)present[j] + 1;
				j++;
			} else {
				ranges_add(r, n, &cap, (uint32_t)next, (uint32_t)last);
				break;
			}
		}
	}
}

static enum store_error vanished_collect(struct store_account *acct, uint64_t mailbox_id,
					 uint64_t since, const struct store_uid_range *known,
					 size_t known_count, struct store_uid_range **ranges_r,
					 size_t *count_r);

static int range_cmp(const void *a, const void *b)
{
	const struct store_uid_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorted, merged copy of R limited to 1..uid_last (a client's set may be in any order). */
static struct store_uid_range *ranges_normalize(const struct store_uid_range *r, size_t n,
						uint32_t uid_last, size_t *n_r)
{
	struct store_uid_range *sorted = xmalloc((n ? n : 1) * sizeof(*sorted));
	struct store_uid_range *out = NULL;
	size_t count = 0, cap = 0;

	memcpy(sorted, r, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), range_cmp);
	for (size_t i = 0; i < n; i++) {
		uint32_t first = sorted[i].first ? sorted[i].first : 1;
		uint32_t last = sorted[i].last < uid_last ? sorted[i].last : uid_last;

		if (first > last)
			continue;
		if (count > 0 && first <= out[count - 1].last) {
			if (last > out[count - 1].last)
				out[count - 1].last = last;
			continue;
		}
		ranges_add(&out, &count, &cap, first, last);
	}
	free(sorted);
	*n_r = count;
	return out;
}

enum store_error imap_vanished_since(struct store_account *acct, uint64_t mailbox_id,
				     uint64_t since, const struct store_uid_range *known_in,
				     size_t known_in_count, uint32_t uid_last,
				     struct store_uid_range **ranges_r, size_t *count_r)
{
	size_t known_count;
	struct store_uid_range *known =
		ranges_normalize(known_in, known_in_count, uid_last, &known_count);
	enum store_error e = vanished_collect(acct, mailbox_id, since, known, known_count,
					      ranges_r, count_r);

	free(known);
	return e;
}

static enum store_error vanished_collect(struct store_account *acct, uint64_t mailbox_id,
					 uint64_t since, const struct store_uid_range *known,
					 size_t known_count, struct store_uid_range **ranges_r,
					 size_t *count_r)
{
	uint32_t *gone = NULL;
	size_t gone_count = 0, cap = 0;
	bool complete = false;
	enum store_error e;

	*ranges_r = NULL;
	*count_r = 0;
	e = store_vanished_list(acct, mailbox_id, since, &gone, &gone_count, &complete, NULL);
	if (e != STORE_OK)
		return e;
	if (complete) {
		for (size_t i = 0; i < gone_count; i++)
			if (imap_uid_in_ranges(gone[i], known, known_count))
				ranges_add(ranges_r, count_r, &cap, gone[i], gone[i]);
		free(gone);
		return STORE_OK;
	}
	free(gone);
	/* RFC 7162 §3.2.5.2: the history no longer reaches back to SINCE, so every known UID
	 * that is not in the mailbox now is reported. Correct, only longer. */
	struct store_list_query q = { 0, 0, 0 };
	struct store_msg *msgs = NULL;
	size_t n = 0;

	e = store_msg_list(acct, mailbox_id, &q, &msgs, &n, NULL);
	if (e != STORE_OK)
		return e;
	uint32_t *present = xmalloc((n ? n : 1) * sizeof(uint32_t));

	for (size_t i = 0; i < n; i++)
		present[i] = msgs[i].uid;
	store_msg_list_free(&msgs, n);
	known_minus_present(known, known_count, present, n, ranges_r, count_r);
	free(present);
	return STORE_OK;
}

void imap_append_ranges(struct buf *out, const struct store_uid_range *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append_byte(out, ',');
		if (r[i].first == r[i].last)
			buf_printf(out, "%u", r[i].first);
		else
			buf_printf(out, "%u:%u", r[i].first, r[i].last);
	}
}
