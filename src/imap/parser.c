/* IMAP tokenizer; see parser.h. Character classes are those of RFC 9051 §9 (formal syntax). */
#include <string.h>

#include "../core/core.h"
#include "parser.h"

void imap_parser_init(struct imap_parser *ps, uint8_t *data, size_t len)
{
	ps->p = data;
	ps->end = data + len;
	ps->error = NULL;
}

static bool fail(struct imap_parser *ps, const char *why)
{
	if (ps->error == NULL)
		ps->error = why;
	return false;
}

/* ATOM-CHAR = any CHAR except atom-specials: "(" ")" "{" SP CTL list-wildcards quoted-specials
 * resp-specials. */
static bool is_atom_char(uint8_t c)
{
	if (c <= 0x1f || c >= 0x7f)
		return false;
	return strchr("(){ %*\"\\]", c) == NULL;
}

static bool is_astring_char(uint8_t c)
{
	return is_atom_char(c) || c == ']';
}

bool imap_parse_sp(struct imap_parser *ps)
{
	if (ps->p < ps->end && *ps->p == ' ') {
		ps->p++;
		return true;
	}
	return fail(ps, "Expected a space");
}

bool imap_at_end(const struct imap_parser *ps)
{
	return ps->p >= ps->end || (ps->end - ps->p == 2 && ps->p[0] == '\r' && ps->p[1] == '\n');
}

bool imap_parse_crlf(struct imap_parser *ps)
{
	if (imap_at_end(ps)) {
		ps->p = ps->end;
		return true;
	}
	return fail(ps, "Unexpected characters at the end of the command");
}

bool imap_peek(const struct imap_parser *ps, uint8_t c)
{
	return ps->p < ps->end && *ps->p == c;
}

bool imap_parse_char(struct imap_parser *ps, uint8_t c)
{
	if (imap_peek(ps, c)) {
		ps->p++;
		return true;
	}
	return fail(ps, "Unexpected character");
}

bool imap_parse_tag(struct imap_parser *ps, struct imap_slice *out)
{
	uint8_t *start = ps->p;

	while (ps->p < ps->end && is_astring_char(*ps->p) && *ps->p != '+')
		ps->p++;
	if (ps->p == start)
		return fail(ps, "Invalid tag");
	out->data = start;
	out->len = (size_t)(ps->p - start);
	return true;
}

bool imap_parse_atom(struct imap_parser *ps, struct imap_slice *out)
{
	uint8_t *start = ps->p;

	while (ps->p < ps->end && is_atom_char(*ps->p))
		ps->p++;
	if (ps->p == start)
		return fail(ps, "Expected an atom");
	out->data = start;
	out->len = (size_t)(ps->p - start);
	return true;
}

/* quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> /
 * "\" quoted-specials (and UTF-8 after UTF8=ACCEPT, which the caller validates). */
static bool parse_quoted(struct imap_parser *ps, struct imap_slice *out)
{
	uint8_t *write;
	uint8_t *start;

	ps->p++; /* opening quote */
	start = write = ps->p;
	while (ps->p < ps->end) {
		uint8_t c = *ps->p;
		if (c == '"') {
			ps->p++;
			out->data = start;
			out->len = (size_t)(write - start);
			return true;
		}
		if (c == '\r' || c == '\n' || c == '\0')
			return fail(ps, "Invalid character in quoted string");
		if (c == '\\') {
			if (ps->p + 1 >= ps->end || (ps->p[1] != '"' && ps->p[1] != '\\'))
				return fail(ps, "Invalid escape in quoted string");
			ps->p++;
			c = *ps->p;
		}
		*write++ = c;
		ps->p++;
	}
	return fail(ps, "Unterminated quoted string");
}

/* literal = "{" number64 ["+"] "}" CRLF *CHAR8; the assembler guarantees the octets follow. */
static bool parse_literal(struct imap_parser *ps, struct imap_slice *out)
{
	uint64_t size = 0;
	uint8_t *p = ps->p + 1;
	size_t digits = 0;

	while (p < ps->end && *p >= '0' && *p <= '9' && digits < 20) {
		size = size * 10 + (uint64_t)(*p - '0');
		p++;
		digits++;
	}
	if (digits == 0 || digits >= 20)
		return fail(ps, "Invalid literal size");
	if (p < ps->end && *p == '+')
		p++;
	if (p + 3 > ps->end || p[0] != '}' || p[1] != '\r' || p[2] != '\n')
		return fail(ps, "Invalid literal");
	p += 3;
	if ((uint64_t)(ps->end - p) < size)
		return fail(ps, "Truncated literal");
	out->data = p;
	out->len = (size_t)size;
	ps->p = p + size;
	return true;
}

bool imap_parse_string(struct imap_parser *ps, struct imap_slice *out)
{
	if (imap_peek(ps, '"'))
		return parse_quoted(ps, out);
	if (imap_peek(ps, '{'))
		return parse_literal(ps, out);
	return fail(ps, "Expected a string");
}

bool imap_parse_astring(struct imap_parser *ps, struct imap_slice *out)
{
	uint8_t *start;

	if (imap_peek(ps, '"') || imap_peek(ps, '{'))
		return imap_parse_string(ps, out);
	start = ps->p;
	while (ps->p < ps->end && is_astring_char(*ps->p))
		ps->p++;
	if (ps->p == start)
		return fail(ps, "Expected an atom or string");
	out->data = start;
	out->len = (size_t)(ps->p - start);
	return true;
}

bool imap_parse_nstring(struct imap_parser *ps, struct imap_slice *out, bool *is_nil_r)
{
	if (ps->end - ps->p >= 3 && str_nieq((const char *)ps->p, "NIL", 3) &&
	    (ps->end - ps->p == 3 || !is_atom_char(ps->p[3]))) {
		ps->p += 3;
		out->data = NULL;
		out->len = 0;
		*is_nil_r = true;
		return true;
	}
	*is_nil_r = false;
	return imap_parse_string(ps, out);
}

bool imap_parse_number64(struct imap_parser *ps, uint64_t *out)
{
	uint8_t *start = ps->p;
	uint64_t v;

	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	if (str_to_u64((const char *)start, (size_t)(ps->p - start), UINT64_MAX >> 1, &v) < 0) {
		ps->p = start;
		return fail(ps, "Expected a number");
	}
	*out = v;
	return true;
}

bool imap_parse_number(struct imap_parser *ps, uint32_t *out)
{
	uint8_t *start = ps->p;
	uint64_t v;

	if (!imap_parse_number64(ps, &v))
		return false;
	if (v > UINT32_MAX) {
		ps->p = start;
		return fail(ps, "Number out of range");
	}
	*out = (uint32_t)v;
	return true;
}

bool imap_slice_ieq(const struct imap_slice *s, const char *text)
{
	size_t n = strlen(text);

	return s->len == n && str_nieq((const char *)s->data, text, n);
}

bool imap_slice_has_ctl(const struct imap_slice *s)
{
	for (size_t i = 0; i < s->len; i++)
		if (s->data[i] == '\0' || s->data[i] == '\r' || s->data[i] == '\n')
			return true;
	return false;
}

int imap_line_literal(const char *line, size_t len, uint64_t *size_r, bool *nonsync_r)
{
	size_t i;
	size_t digits_end;
	uint64_t size;

	if (len < 3 || line[len - 1] != '}')
		return 0;
	i = len - 1;
	bool nonsync = false;
	bool minus = false;
	if (line[i - 1] == '+') { /* RFC 7888 */
		nonsync = true;
		i--;
	} else if (line[i - 1] == '-') { /* "{5-}" looks like a literal but is none */
		minus = true;
		i--;
	}
	digits_end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i > 0 && line[i - 1] == '-' && i >= 2 && line[i - 2] == '{')
		return -1; /* "{-1}" */
	if (i == 0 || line[i - 1] != '{')
		return 0;
	if (i == digits_end || minus)
		return -1;
	if (str_to_u64(line + i, digits_end - i, UINT64_MAX >> 1, &size) < 0)
		return -1;
	*size_r = size;
	*nonsync_r = nonsync;
	return 1;
}
