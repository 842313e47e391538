/* The addresses in a message's originator fields (From:, Sender:, Resent-From:, Resent-Sender:;
 * RFC 5322 §3.6.2, §3.6.6, §3.4), for the submission rule that a user may only send as an
 * address of their own. Reads only the header block. */
#include <string.h>

#include "../core/core.h"
#include "session.h"

/* Length of the field name plus optional white space (RFC 5322 §4.5.3 obs-optional) plus ":"
 * at the start of line, or 0 when the line is not that field. */
static size_t field_name_length(const uint8_t *line, size_t len, const char *name)
{
	size_t i = strlen(name);

	if (len < i + 1 || !str_nieq((const char *)line, name, i))
		return 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < len && line[i] == ':' ? i + 1 : 0;
}

/* Appends the unfolded values of every field called name in the header block to value,
 * separated by commas. A message may carry only one From: (RFC 5322 §3.6), but mail readers
 * differ in which of several they show, so each one is checked. *end_r tells whether the end
 * of the header block (an empty line) was within msg. Returns the number of such fields. */
static int find_fields(const uint8_t *msg, size_t len, const char *name, struct buf *value,
		       bool *end_r)
{
	size_t i = 0;
	int fields = 0;

	*end_r = false;
	while (i < len) {
		size_t eol = i;
		while (eol < len && msg[eol] != '\n')
			eol++;
		size_t line_len = eol - i;
		if (line_len > 0 && msg[i + line_len - 1] == '\r')
			line_len--;
		if (line_len == 0) {
			*end_r = eol < len;
			return fields;
		}
		size_t name_len = field_name_length(msg + i, line_len, name);
		if (name_len == 0) {
			i = eol + 1;
			continue;
		}
		if (fields++ > 0)
			buf_append_byte(value, ',');
		buf_append(value, msg + i + name_len, line_len - name_len);
		i = eol + 1;
		/* continuation lines start with white space */
		while (i < len && (msg[i] == ' ' || msg[i] == '\t')) {
			size_t e = i;
			while (e < len && msg[e] != '\n')
				e++;
			size_t l = e - i;
			if (l > 0 && msg[i + l - 1] == '\r')
				l--;
			buf_append(value, msg + i, l);
			i = e + 1;
		}
	}
	return fields;
}

int smtp_header_addresses(const uint8_t *msg, size_t len, const char *field,
			  void (*cb)(const char *address, void *ctx), void *ctx, bool *header_end_r)
{
	struct buf value, addr;
	int count = 0;
	bool in_quote = false, in_angle = false, saw_angle = false, word_ended = false;
	int comment = 0;

	buf_init(&value);
	buf_init(&addr);
	if (find_fields(msg, len, field, &value, header_end_r) == 0) {
		buf_free(&value);
		return 0;
	}
	/* RFC 5322 has no NUL in a header; readers differ in what they show for one (the text
	 * up to it, or around it), so no address is read from such a field. */
	if (value.len > 0 && memchr(value.data, '\0', value.len) != NULL) {
		buf_free(&value);
		return -1;
	}
	buf_append_byte(&value, ','); /* flush the last mailbox */
	for (size_t i = 0; i < value.len; i++) {
		char c = (char)value.data[i];
		if (in_quote) {
			if (c == '\\' && i + 1 < value.len)
				i++;
			else if (c == '"')
				in_quote = false;
			if (!saw_angle && !in_angle)
				buf_reset(&addr); /* a quoted display name is no address */
			continue;
		}
		if (comment > 0) {
			if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
			continue;
		}
		if (c == '(') {
			comment = 1;
		} else if (c == '"') {
			in_quote = true;
		} else if (c == '<') {
			in_angle = true;
			saw_angle = true;
			buf_reset(&addr);
		} else if (c == '>') {
			in_angle = false;
		} else if (c == ',' && !in_angle) {
			buf_cstr(&addr);
			if (addr.len > 0 && memchr(addr.data, '@', addr.len) != NULL) {
				cb((const char *)addr.data, ctx);
				count++;
			}
			buf_reset(&addr);
			saw_angle = false;
			word_ended = false;
		} else if (c == ' ' || c == '\t') {
			word_ended = !in_angle && !saw_angle;
		} else if (in_angle || !saw_angle) {
			if (word_ended) /* a new word: the earlier ones were a display name */
				buf_reset(&addr);
			word_ended = false;
			buf_append_byte(&addr, (uint8_t)c);
		}
	}
	buf_free(&value);
	buf_free(&addr);
	return count;
}
