/* Latency statistics of the load generator: a log-linear histogram (1 us steps below 64 us,
 * then 32 steps per power of two, about 3% resolution) so that millions of samples cost a fixed
 * 16 KiB per thread and the threads' histograms merge by addition. */
#include "loadgen.h"

static unsigned hist_index(uint64_t v)
{
	unsigned e, shift, idx;

	if (v < 64)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
	shift = e - 5;
	idx = 64 + (e - 6) * 32 + (unsigned)((v >> shift) - 32);
	return idx < LG_HIST_BUCKETS ? idx : LG_HIST_BUCKETS - 1;
}

/* The middle of the bucket's range. */
static uint64_t hist_value(unsigned idx)
{
	unsigned e, sub, shift;

	if (idx < 64)
		return idx;
	e = (idx - 64) / 32 + 6;
	sub = (idx - 64) % 32;
	shift = e - 5;
	return ((uint64_t)(32 + sub) << shift) + ((1ull << shift) >> 1);
}

void lg_hist_add(struct lg_hist *h, uint64_t value_us)
{
	h->bucket[hist_index(value_us)]++;
	h->count++;
}

void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from)
{
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	into->count += from->count;
}

uint64_t lg_hist_percentile(const struct lg_hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	/* Nearest rank: the smallest value with at least p% of the samples at or below it. */
	rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			return hist_value(i);
	}
	return hist_value(LG_HIST_BUCKETS - 1);
}

void lg_stats_merge(struct lg_stats *into, const struct lg_stats *from)
{
	into->ops += from->ops;
	into->errors += from->errors;
	into->no_replies += from->no_replies;
	into->bytes += from->bytes;
	into->sessions += from->sessions;
	lg_hist_merge(&into->lat, &from->lat);
}
