/* The bytes of RETR and TOP: byte-stuffing of a message as it goes out (RFC 1939 §3) and the
 * extent of TOP's header-plus-n-lines. Both work on the mapped message in place: stuffing emits
 * the spans between dots straight from the mapping, so no copy of the message is made here. */
#include <string.h>

#include "pop3_internal.h"

/* Offset of the next '.' after POS that starts a line, or len. Searching for the rarer '.'
 * with memchr (vectorised) and checking the byte before it is several times faster than a
 * two-byte memmem for "\n.", which glibc runs a byte at a time. */
static size_t pop3_next_dot_line(const uint8_t *data, size_t pos, size_t len)
{
	const uint8_t *p = data + pos + 1;
	const uint8_t *end = data + len;

	while (p < end && (p = memchr(p, '.', (size_t)(end - p))) != NULL) {
		if (p[-1] == '\n')
			return (size_t)(p - data);
		p++;
	}
	return len;
}

void pop3_stuff(const uint8_t *data, size_t len, bool *line_start, pop3_emit_fn *emit, void *ctx)
{
	size_t pos = 0;

	if (len == 0)
		return;
	/* Lines that start with '.' are rare, so whole spans between them go out in one call. */
	while (pos < len) {
		size_t end;

		/* RFC 1939 §3: "If any line begins with the termination octet, the line is
		 * 'byte-stuffed' by pre-pending the termination octet to that line." */
		if (*line_start && data[pos] == '.')
			emit(ctx, ".", 1);
		end = pop3_next_dot_line(data, pos, len);
		emit(ctx, data + pos, end - pos);
		pos = end;
		*line_start = true;
	}
	*line_start = data[len - 1] == '\n';
}

/* Offset just past the blank line that ends the header, or len when there is none. */
static size_t pop3_header_end(const uint8_t *data, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *nl = memchr(data + pos, '\n', len - pos);
		size_t line_len;

		if (nl == NULL)
			return len;
		line_len = (size_t)(nl - (data + pos));
		if (line_len == 0 || (line_len == 1 && data[pos] == '\r'))
			return (size_t)(nl - data) + 1;
		pos = (size_t)(nl - data) + 1;
	}
	return len;
}

size_t pop3_top_length(const uint8_t *data, size_t len, uint64_t lines)
{
	size_t pos = pop3_header_end(data, len);

	while (lines > 0 && pos < len) {
		const uint8_t *nl = memchr(data + pos, '\n', len - pos);

		if (nl == NULL)
			return len;
		pos = (size_t)(nl - data) + 1;
		lines--;
	}
	return pos;
}
