/* The DATA stream decoder (RFC 5321 §4.1.1.4, §4.5.2): finds the end of data and removes
 * dot-stuffing, safe against SMTP smuggling (CVE-2023-51764 class).
 *
 * Only <CRLF>.<CRLF> ends the data, where the first CRLF is a real CR LF pair (or the end of
 * the DATA command line). A bare LF or a bare CR never starts a line that could end the data
 * or be un-stuffed; it is reported (bare_line_ends) and written out as CRLF, so a caller that
 * accepts such mail stores only CRLF line ends, and a caller that refuses it can. */
#ifndef ROOST_SMTP_DATA_H
#define ROOST_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

struct smtp_data_decoder {
	int state;
	bool done;
	bool bare_line_ends; /* a bare CR or LF was seen */
	uint64_t bytes_out;
};

void smtp_data_init(struct smtp_data_decoder *d);
/* Decodes as much of in as belongs to the message, appending message bytes to out. Returns
 * the number of input bytes consumed; when d->done is set, the end-of-data sequence was the
 * last of them and the rest of in belongs to the next command. */
size_t smtp_data_feed(struct smtp_data_decoder *d, const uint8_t *in, size_t len,
		      struct buf *out);

#endif
