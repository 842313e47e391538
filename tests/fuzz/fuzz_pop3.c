/* libFuzzer target for the POP3 command layer: the input is split into lines, each parsed as a
 * command with its arguments (as the session does), and the whole input is also sent through
 * the byte-stuffer in pieces whose sizes come from the input, then un-stuffed and compared, and
 * TOP's extent is checked to end on a line boundary inside the message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "pop3/pop3_internal.h"

static void fuzz_collect(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

static void fuzz_command(const uint8_t *data, size_t len)
{
	char *line = xstrndup((const char *)data, len);
	const char *arg;
	uint32_t n;
	uint64_t lines;
	bool present;
	enum pop3_verb verb = pop3_command_parse(line, strlen(line), &arg);

	if (arg < line || arg > line + strlen(line))
		abort();
	switch (verb) {
	case POP3_CMD_TOP:
		if (pop3_parse_top(arg, &n, &lines) == 0 && n == 0)
			abort();
		break;
	case POP3_CMD_LIST:
	case POP3_CMD_UIDL:
	case POP3_CMD_RETR:
	case POP3_CMD_DELE:
		if (pop3_parse_msgnum(arg, verb == POP3_CMD_LIST || verb == POP3_CMD_UIDL, &n,
				      &present) == 0 && present && n == 0)
			abort();
		break;
	default:
		break;
	}
	free(line);
}

/* Reverses the stuffing: a '.' at the start of a line is dropped. */
static void fuzz_unstuff(const struct buf *in, struct buf *out)
{
	bool line_start = true;

	for (size_t i = 0; i < in->len; i++) {
		uint8_t c = in->data[i];

		if (line_start && c == '.') {
			if (i + 1 >= in->len || in->data[i + 1] != '.')
				abort(); /* a lone dot at a line start would end the reply */
			i++;
		}
		buf_append_byte(out, in->data[i]);
		line_start = in->data[i] == '\n';
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf stuffed, plain;
	bool line_start = true;
	size_t pos = 0, piece;
	uint64_t lines;
	size_t top;

	for (size_t start = 0; start < size;) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size;
		size_t len = end - start;

		if (len > 0 && data[start + len - 1] == '\r')
			len--;
		fuzz_command(data + start, len);
		start = end + 1;
	}

	buf_init(&stuffed);
	buf_init(&plain);
	piece = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	while (pos < size) {
		size_t n = size - pos < piece ? size - pos : piece;
		pop3_stuff(data + pos, n, &line_start, fuzz_collect, &stuffed);
		pos += n;
	}
	fuzz_unstuff(&stuffed, &plain);
	if (plain.len != size || (size > 0 && memcmp(plain.data, data, size) != 0))
		abort();
	buf_free(&stuffed);
	buf_free(&plain);

	lines = size > 1 ? data[1] % 8 : 0;
	top = pop3_top_length(data, size, lines);
	if (top > size || (top > 0 && top < size && data[top - 1] != '\n'))
		abort();
	return 0;
}
