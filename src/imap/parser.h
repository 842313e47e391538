/* IMAP command syntax (RFC 9051 §9, RFC 3501 §9): a tokenizer over one complete command as it
 * came off the wire, literals included (`{N}\r\n` + N octets, RFC 7888 `{N+}`). It never
 * allocates: strings are slices of the command buffer; quoted strings are unescaped in place. */
#ifndef ROOST_IMAP_PARSER_H
#define ROOST_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_slice {
	uint8_t *data;
	size_t len;
};

struct imap_parser {
	uint8_t *p;
	uint8_t *end;
	const char *error; /* first syntax error, for the BAD text */
};

void imap_parser_init(struct imap_parser *ps, uint8_t *data, size_t len);

/* Each returns true and advances on success; on failure sets ps->error (once) and returns
 * false without advancing past the offending byte. */
bool imap_parse_sp(struct imap_parser *ps);
bool imap_parse_crlf(struct imap_parser *ps); /* end of command: CRLF, or end of buffer */
bool imap_at_end(const struct imap_parser *ps);
bool imap_peek(const struct imap_parser *ps, uint8_t c);
bool imap_parse_char(struct imap_parser *ps, uint8_t c);
/* tag: 1*<ASTRING-CHAR except "+"> */
bool imap_parse_tag(struct imap_parser *ps, struct imap_slice *out);
/* atom: 1*ATOM-CHAR */
bool imap_parse_atom(struct imap_parser *ps, struct imap_slice *out);
/* quoted / literal */
bool imap_parse_string(struct imap_parser *ps, struct imap_slice *out);
/* atom-with-"]" / string (RFC 9051 astring) */
bool imap_parse_astring(struct imap_parser *ps, struct imap_slice *out);
/* string / "NIL"; *is_nil_r tells which */
bool imap_parse_nstring(struct imap_parser *ps, struct imap_slice *out, bool *is_nil_r);
/* number: 1*DIGIT fitting in 32 bits (64 with the _64 variant) */
bool imap_parse_number(struct imap_parser *ps, uint32_t *out);
bool imap_parse_number64(struct imap_parser *ps, uint64_t *out);
/* The rest of the line up to CRLF (for ID/unknown extensions' diagnostics). */
bool imap_slice_ieq(const struct imap_slice *s, const char *text);
/* Does the slice contain NUL, CR or LF? (strings with them are refused: CVE-2019-11500) */
bool imap_slice_has_ctl(const struct imap_slice *s);

/* Literal announced at the end of a command line: "... {123}" or "{123+}". Returns 1 and the
 * size when present, 0 when the line has none, -1 when it is malformed or too big to
 * represent ({18446744073709551616}, {-1}). */
int imap_line_literal(const char *line, size_t len, uint64_t *size_r, bool *nonsync_r);

#endif
