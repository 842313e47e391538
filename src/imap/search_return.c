/* The RETURN options of SEARCH and SORT: RFC 4731 (MIN MAX ALL COUNT), RFC 5182 (SAVE) and
 * RFC 5267 §4 (UPDATE, CONTEXT, PARTIAL), parsed into struct imap_return_opts, and the PARTIAL
 * answer (a window of positions of the result). Shared by cmd_search.c and cmd_sort.c, which
 * say which options they take. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"
#include "sort.h"

/* partial-range-first / partial-range-last (RFC 9394 §2, which refines RFC 5267 §4.4): two
 * non-zero numbers of the same sign; "low:high" in either order. */
bool imap_parse_partial_range(struct imap_parser *ps, struct imap_partial *range_r)
{
	int64_t v[2];

	for (int i = 0; i < 2; i++) {
		bool negative = imap_peek(ps, '-');
		uint32_t n;
		if (negative)
			ps->p++;
		if (!imap_parse_number(ps, &n) || n == 0) {
			ps->error = "Invalid PARTIAL range";
			return false;
		}
		v[i] = negative ? -(int64_t)n : (int64_t)n;
		if (i == 0 && !imap_parse_char(ps, ':')) {
			ps->error = "Invalid PARTIAL range";
			return false;
		}
	}
	if ((v[0] < 0) != (v[1] < 0)) {
		ps->error = "PARTIAL range ends must have the same sign";
		return false;
	}
	/* first is the end nearer the edge the range counts from: 1:500, -1:-100 */
	bool swap = v[0] < 0 ? v[0] < v[1] : v[0] > v[1];
	range_r->first = swap ? v[1] : v[0];
	range_r->last = swap ? v[0] : v[1];
	return true;
}

static const struct {
	const char *name;
	unsigned bit;
} return_options[] = {
	{ "MIN", IMAP_RET_MIN },	 { "MAX", IMAP_RET_MAX },
	{ "ALL", IMAP_RET_ALL },	 { "COUNT", IMAP_RET_COUNT },
	{ "SAVE", IMAP_RET_SAVE },	 { "UPDATE", IMAP_RET_UPDATE },
	{ "CONTEXT", IMAP_RET_CONTEXT }, { "PARTIAL", IMAP_RET_PARTIAL },
};

/* One option into opts; false with ps->error on an unknown, unsupported or repeated one. */
static bool parse_one_option(struct imap_parser *ps, unsigned allowed,
			     struct imap_return_opts *opts)
{
	struct imap_slice a;
	unsigned bit = 0;

	if (!imap_parse_atom(ps, &a))
		return false;
	for (size_t i = 0; i < ARRAY_LEN(return_options) && bit == 0; i++)
		if (imap_slice_ieq(&a, return_options[i].name))
			bit = return_options[i].bit;
	if (bit == 0 || (bit & allowed) == 0) {
		ps->error = "Unknown or unsupported RETURN option";
		return false;
	}
	if (bit == IMAP_RET_PARTIAL) {
		if ((opts->ret & IMAP_RET_PARTIAL) != 0) {
			ps->error = "PARTIAL given twice";
			return false;
		}
		if (!imap_parse_sp(ps) || !imap_parse_partial_range(ps, &opts->partial))
			return false;
	}
	opts->ret |= bit;
	return true;
}

bool imap_parse_return_opts(struct imap_parser *ps, unsigned allowed,
			    struct imap_return_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	if (!imap_parse_char(ps, '('))
		return false;
	for (int n = 0; !imap_peek(ps, ')'); n++) {
		if ((n > 0 && !imap_parse_sp(ps)) || !parse_one_option(ps, allowed, opts))
			return false;
	}
	ps->p++;
	/* RFC 9394 §3.1: PARTIAL and ALL ask for two different answers to one search. */
	if ((opts->ret & IMAP_RET_PARTIAL) && (opts->ret & IMAP_RET_ALL)) {
		ps->error = "PARTIAL and ALL cannot be combined";
		return false;
	}
	/* What "$" would hold after a PARTIAL search is not settled by RFC 5267, so the two
	 * are refused together rather than guessed at. */
	if ((opts->ret & IMAP_RET_PARTIAL) && (opts->ret & IMAP_RET_SAVE)) {
		ps->error = "PARTIAL and SAVE cannot be combined";
		return false;
	}
	/* RFC 4731 §3.1: RETURN () means ALL. CONTEXT is a hint only (RFC 5267 §4.2). */
	if ((opts->ret & ~(unsigned)IMAP_RET_CONTEXT) == 0)
		opts->ret |= IMAP_RET_ALL;
	return true;
}

void imap_partial_window(const struct imap_partial *p, size_t n, size_t *from_r, size_t *to_r)
{
	uint64_t a, b; /* 1-based positions from the start, a <= b */

	if (p->first > 0) {
		a = (uint64_t)p->first;
		b = (uint64_t)p->last;
	} else {
		/* -1 is the last entry; a range reaching before the first is cut there */
		uint64_t near = (uint64_t)-p->first, far = (uint64_t)-p->last;
		if (near > n) {
			*from_r = *to_r = 0;
			return;
		}
		b = n - near + 1;
		a = far >= n ? 1 : n - far + 1;
	}
	if (a > n) {
		*from_r = *to_r = 0;
		return;
	}
	*from_r = (size_t)a - 1;
	*to_r = b > n ? n : (size_t)b;
}

void imap_append_partial(struct buf *out, const struct imap_partial *p, const uint32_t *nums,
			 size_t n, bool ascending)
{
	size_t from, to;

	imap_partial_window(p, n, &from, &to);
	buf_printf(out, " PARTIAL (%lld:%lld ", (long long)p->first, (long long)p->last);
	if (from == to) {
		buf_append_str(out, "NIL)");
		return;
	}
	if (ascending) {
		imap_append_uid_set(out, nums + from, to - from);
	} else {
		/* a sorted result keeps its order: no ranges */
		for (size_t i = from; i < to; i++)
			buf_printf(out, "%s%u", i > from ? "," : "", nums[i]);
	}
	buf_append_byte(out, ')');
}
