/* libFuzzer target for the DATA decoder (smtp/data.c). The first byte picks how the rest is cut
 * into feeds; the rest is the stream after the DATA command's CRLF. Invariants checked:
 *   - every feed consumes at most what it was given, and all of it unless the data ended;
 *   - the output has CRLF line ends only (no bare CR, no bare LF);
 *   - the data ends exactly at the first real CRLF "." CRLF of CRLF + stream (the DATA line's
 *     CRLF counts), and never without one: no smuggling sequence ends it;
 *   - cutting the input differently changes nothing (output, consumed count, bare flag);
 *   - output length equals bytes_out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "smtp/data.h"

struct run {
	struct buf out;
	size_t consumed;
	bool done, bare;
};

static void run_decoder(const uint8_t *in, size_t len, uint8_t cut, struct run *r)
{
	struct smtp_data_decoder d;
	size_t pos = 0, k = 0;

	smtp_data_init(&d);
	buf_init(&r->out);
	while (pos < len && !d.done) {
		/* feed sizes from the cut byte: 1..16, varying per feed; 0 means all at once */
		size_t n = cut == 0 ? len - pos : 1 + ((size_t)(cut * (k + 1) * 7) % 16);
		if (n > len - pos)
			n = len - pos;
		size_t used = smtp_data_feed(&d, in + pos, n, &r->out);
		if (used > n || (!d.done && used != n))
			abort();
		pos += used;
		k++;
	}
	if (d.bytes_out != r->out.len)
		abort();
	r->consumed = pos;
	r->done = d.done;
	r->bare = d.bare_line_ends;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, cut;
	uint8_t *framed;
	size_t end = 0;
	bool has_end = false;

	if (size < 1)
		return 0;
	run_decoder(data + 1, size - 1, 0, &whole);
	run_decoder(data + 1, size - 1, data[0] ? data[0] : 1, &cut);

	for (size_t i = 0; i < whole.out.len; i++) {
		if (whole.out.data[i] == '\r' &&
		    (i + 1 >= whole.out.len || whole.out.data[i + 1] != '\n'))
			abort();
		if (whole.out.data[i] == '\n' && (i == 0 || whole.out.data[i - 1] != '\r'))
			abort();
	}

	/* Where the data must end: the first "\r\n.\r\n" in "\r\n" + stream. */
	framed = malloc(size + 1);
	if (framed == NULL)
		abort();
	framed[0] = '\r';
	framed[1] = '\n';
	memcpy(framed + 2, data + 1, size - 1);
	const uint8_t *hit = memmem(framed, size + 1, "\r\n.\r\n", 5);
	if (hit != NULL) {
		has_end = true;
		end = (size_t)(hit - framed) + 5 - 2;
	}
	free(framed);
	if (whole.done != has_end || (has_end && whole.consumed != end) ||
	    (!has_end && whole.consumed != size - 1))
		abort();

	if (cut.done != whole.done || cut.consumed != whole.consumed || cut.bare != whole.bare ||
	    cut.out.len != whole.out.len ||
	    (cut.out.len > 0 && memcmp(cut.out.data, whole.out.data, cut.out.len) != 0))
		abort();
	buf_free(&whole.out);
	buf_free(&cut.out);
	return 0;
}
