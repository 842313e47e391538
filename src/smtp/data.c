/* DATA decoder state machine; see data.h.
 *
 * States:
 *   LINE_START  after a real CRLF (or at the start): a "." here is dot-stuffing or the end
 *   SOFT_START  after a bare CR or LF: a "." here is plain content, never stuffing or the end
 *   MID         inside a line
 *   CR          a CR was seen; LF completes a real line end, anything else makes it bare
 *   DOT         a line began with "." after a real CRLF
 *   DOT_CR      "." CR at a real line start; LF ends the data */
#include <string.h>

#include "data.h"

enum { S_LINE_START, S_SOFT_START, S_MID, S_CR, S_DOT, S_DOT_CR };

void smtp_data_init(struct smtp_data_decoder *d)
{
	memset(d, 0, sizeof(*d));
	d->state = S_LINE_START;
}

static void emit(struct smtp_data_decoder *d, struct buf *out, const void *p, size_t n)
{
	buf_append(out, p, n);
	d->bytes_out += n;
}

size_t smtp_data_feed(struct smtp_data_decoder *d, const uint8_t *in, size_t len,
		      struct buf *out)
{
	size_t i = 0;

	while (i < len && !d->done) {
		uint8_t c = in[i];

		switch (d->state) {
		case S_LINE_START:
			if (c == '.') {
				d->state = S_DOT;
				i++;
				continue;
			}
			__attribute__((fallthrough)); /* otherwise as at any line start */
		case S_SOFT_START:
		case S_MID:
			if (c == '\r') {
				d->state = S_CR;
			} else if (c == '\n') {
				d->bare_line_ends = true;
				emit(d, out, "\r\n", 2);
				d->state = S_SOFT_START;
			} else {
				/* Copy the run of ordinary bytes in one go. */
				size_t j = i;
				while (j < len && in[j] != '\r' && in[j] != '\n')
					j++;
				emit(d, out, in + i, j - i);
				d->state = S_MID;
				i = j;
				continue;
			}
			i++;
			continue;
		case S_CR:
			if (c == '\n') {
				emit(d, out, "\r\n", 2);
				d->state = S_LINE_START;
				i++;
			} else {
				/* A bare CR: it ends nothing; re-read c at a soft line start. */
				d->bare_line_ends = true;
				emit(d, out, "\r\n", 2);
				d->state = S_SOFT_START;
			}
			continue;
		case S_DOT:
			if (c == '\r') {
				d->state = S_DOT_CR;
				i++;
			} else if (c == '\n') {
				/* "\r\n.\n": not the end; the line is "." */
				d->bare_line_ends = true;
				emit(d, out, ".\r\n", 3);
				d->state = S_SOFT_START;
				i++;
			} else {
				/* Dot-stuffing: the first dot goes, the rest of the line stays. */
				d->state = S_MID;
			}
			continue;
		case S_DOT_CR:
			if (c == '\n') {
				d->done = true;
				i++;
			} else {
				/* "\r\n.\r" + something: a bare CR after a lone dot */
				d->bare_line_ends = true;
				emit(d, out, ".\r\n", 3);
				d->state = S_SOFT_START;
			}
			continue;
		}
	}
	return i;
}
