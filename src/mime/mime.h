/* Roost's view of a message as data: an RFC 5322 / MIME parser that records exact byte offsets of
 * every part, header access and decoding, and the IMAP renderings built on it (ENVELOPE,
 * BODYSTRUCTURE, section addressing). Nothing here does I/O; every function works on bytes the
 * caller holds in memory.
 *
 * Ownership: mime_parse() never copies the message. The caller keeps the bytes alive and
 * unchanged for as long as the struct mime_message lives, and passes the same bytes back where a
 * function takes `data`. Every struct mime_part belongs to its message and dies with
 * mime_message_free(). Strings in a part are NUL-terminated, owned by the message, unfolded, and
 * have NUL bytes of the input removed. Output goes to a caller-owned struct buf (appended). */
#ifndef ROOST_MIME_H
#define ROOST_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

/* Parser limits; mime_limits_default() fills the defaults from limits.h. Beyond a limit the rest
 * of the input is kept as opaque body of the part being parsed: never an error, never a crash. */
struct mime_limits {
	unsigned max_depth;      /* multipart / message nesting; ceiling LIMIT_MIME_DEPTH_MAX */
	unsigned max_parts;      /* parts in the whole tree, root included */
	size_t max_header_block; /* bytes of one header block whose fields are interpreted */
};

void mime_limits_default(struct mime_limits *lim_r);

/* One parameter of Content-Type or Content-Disposition exactly as sent: name lowercased, value
 * unquoted (RFC 2231 sections stay separate, `title*0*`, `title*1`). Use mime_part_param() for
 * the decoded UTF-8 value. */
struct mime_param {
	char *name;
	char *value;
};

struct mime_part {
	/* Byte ranges in the message data. The header block includes its terminating blank line;
	 * the body excludes the line end that belongs to a following multipart delimiter. */
	size_t header_offset, header_size;
	size_t body_offset, body_size;
	/* Lines of the body: LF (bare or in CRLF) counted, plus one for a final line with no line
	 * end. This is what IMAP's body-fld-lines reports. */
	uint64_t body_lines;
	/* Number of line ends in the header block (its blank line included), and the number of
	 * LFs in the message before body_offset (the body's 0-based line number). */
	uint64_t header_lines;
	uint64_t body_first_line;

	/* Lowercased media type; RFC 2045 §5.2 defaults (text/plain; charset=us-ascii, or
	 * message/rfc822 inside multipart/digest) replace a missing or invalid Content-Type. */
	char *type, *subtype;
	struct mime_param *params;
	size_t param_count;
	/* Lowercased Content-Transfer-Encoding token, "7bit" when absent. */
	char *encoding;
	/* Raw unfolded field values, NULL when absent. */
	char *id, *description, *md5, *language, *location;
	/* Content-Disposition: lowercased type (NULL when absent) and its parameters. */
	char *disposition;
	struct mime_param *disp_params;
	size_t disp_param_count;

	struct mime_part *parent;
	struct mime_part *first_child, *next_sibling; /* children of a multipart */
	struct mime_part *last_child;
	size_t child_count;
	/* message/rfc822 and message/global: the encapsulated message (its header is at this part's
	 * body_offset). NULL when the part is not such a message or the depth limit stopped us. */
	struct mime_part *message;
	unsigned depth;
	/* A multipart whose children were not parsed (depth or part limit, unusable boundary). */
	bool truncated;

	/* Header fields of this part: indexes into the message's field table. */
	size_t field_first, field_count;
};

struct mime_message;

/* Parses len bytes at data. Never returns NULL; any input yields a tree. lim may be NULL for
 * the defaults. The message does not copy data: keep it alive until mime_message_free(). */
struct mime_message *mime_parse(const uint8_t *data, size_t len, const struct mime_limits *lim);
void mime_message_free(struct mime_message **msg);

const struct mime_part *mime_root(const struct mime_message *msg);
const uint8_t *mime_data(const struct mime_message *msg);
size_t mime_data_len(const struct mime_message *msg);
size_t mime_part_count(const struct mime_message *msg);
/* True when a limit cut the parse short (the tree is still consistent). */
bool mime_limit_hit(const struct mime_message *msg);
/* The n-th child (0-based) of a multipart, or NULL. */
const struct mime_part *mime_part_child(const struct mime_part *part, size_t n);
bool mime_part_is_multipart(const struct mime_part *part);
bool mime_part_is_message(const struct mime_part *part);

/* ---- header fields ---- */
/* Number of fields in the part's header and the i-th one: raw name and raw (folded) value
 * bytes, both pointing into the message data. Returns -1 when i is out of range. */
size_t mime_header_count(const struct mime_message *msg, const struct mime_part *part);
int mime_header_field(const struct mime_message *msg, const struct mime_part *part, size_t i,
		      const uint8_t **name_r, size_t *name_len_r, const uint8_t **value_r,
		      size_t *value_len_r);
/* Finds the nth (0-based) field named name (case-insensitive) and appends its unfolded value
 * (leading/trailing whitespace trimmed, NUL bytes dropped) to out. Returns 0, or -1 when
 * there is no such field (out untouched). */
int mime_header_get(const struct mime_message *msg, const struct mime_part *part,
		    const char *name, size_t nth, struct buf *out);
/* Unfolds a raw value: line ends followed by whitespace are removed, NULs dropped, ends
 * trimmed. */
void mime_header_unfold(const uint8_t *value, size_t len, struct buf *out);

/* RFC 2047: decodes encoded-words (B and Q, any charset iconv knows) in text and appends UTF-8.
 * Whitespace between adjacent encoded-words is dropped; invalid words are kept as they are. */
void mime_decode_words(const char *text, size_t len, struct buf *out);
/* Converts len bytes from charset to UTF-8, appending to out. Invalid sequences become U+FFFD.
 * Returns -1 (out untouched) when iconv does not know the charset. */
int mime_charset_to_utf8(const char *charset, const uint8_t *in, size_t len, struct buf *out);

/* Parameter parsing for Content-Type-like values ("; a=b; c="d e" (comment)", starting after
 * the type token): appends name/value pairs to *params_r / *count_r, which start as NULL / 0
 * or hold an earlier list; the caller frees with mime_params_free(). At most
 * LIMIT_MIME_PARAMS parameters are kept in all. */
void mime_params_parse(const char *value, size_t len, struct mime_param **params_r,
		       size_t *count_r);
void mime_params_free(struct mime_param **params, size_t *count);
/* The decoded UTF-8 value of parameter name from a list: RFC 2231 continuations and
 * charset'lang'%XX decoding, else the plain value with RFC 2047 words decoded. Appends to out;
 * -1 when the parameter is absent. */
int mime_param_decode(const struct mime_param *params, size_t count, const char *name,
		      struct buf *out);

/* ---- IMAP renderings (RFC 3501 §7.4.2, RFC 9051 §7.5.2) ---- */
/* IMAP string: quoted when short printable ASCII, else a literal {n}\r\n...; NUL bytes are
 * dropped (IMAP forbids them outside literal8). */
void mime_imap_string(struct buf *out, const char *s, size_t len);
/* As mime_imap_string, or NIL when s is NULL. */
void mime_imap_nstring(struct buf *out, const char *s);
/* ENVELOPE of a message part: the root, or the `message` of a message/rfc822 part. */
void mime_envelope(const struct mime_message *msg, const struct mime_part *part, struct buf *out);
/* BODYSTRUCTURE (extended = true) or BODY (false) of part and everything below it. Media
 * type, subtype, transfer encoding, disposition type and parameter names are sent uppercased
 * as in the RFC 3501 examples; parameter values and all other strings as sent. */
void mime_bodystructure(const struct mime_message *msg, const struct mime_part *part,
			bool extended, struct buf *out);

/* ---- sections (RFC 3501 §6.4.5) ---- */
/* The part named by a numeric section ("1.2.3"; empty = the whole message), or NULL. */
const struct mime_part *mime_find_section(const struct mime_message *msg, const char *section,
					  size_t len);
enum mime_section_kind {
	MIME_SECTION_PART,   /* BODY[1.2]: the part's body; BODY[] for the empty section */
	MIME_SECTION_HEADER, /* BODY[1.2.HEADER]: header of the encapsulated message */
	MIME_SECTION_TEXT,   /* BODY[1.2.TEXT]: body of the encapsulated message */
	MIME_SECTION_MIME,   /* BODY[1.2.MIME]: the part's own MIME header */
};
/* Byte range of a section; -1 when the section does not exist or the kind does not apply
 * (HEADER/TEXT need the empty section or a message/rfc822 part, MIME a non-empty section). */
int mime_section_range(const struct mime_message *msg, const char *section, size_t len,
		       enum mime_section_kind kind, size_t *offset_r, size_t *size_r);
/* HEADER.FIELDS (exclude = false) / HEADER.FIELDS.NOT (true): copies the fields of a header
 * block whose names are (or are not) in names, raw with their continuation lines, then a
 * terminating CRLF blank line. */
void mime_header_filter(const uint8_t *header, size_t len, const char *const *names,
			size_t name_count, bool exclude, struct buf *out);

/* ---- decoding for SEARCH and BINARY ---- */
/* Decodes the part's body by its Content-Transfer-Encoding into out. base64 and
 * quoted-printable are decoded leniently (junk skipped); 7bit/8bit/binary pass through.
 * Returns -1 for an unknown encoding (IMAP's UNKNOWN-CTE), out untouched. */
int mime_decode_body(const struct mime_message *msg, const struct mime_part *part,
		     struct buf *out);
void mime_decode_base64(const uint8_t *in, size_t len, struct buf *out);
void mime_decode_qp(const uint8_t *in, size_t len, struct buf *out);
/* The part's body decoded and converted to UTF-8 from its charset (us-ascii / unknown charsets
 * are taken as UTF-8). Returns -1 for an unknown transfer encoding. */
int mime_part_text_utf8(const struct mime_message *msg, const struct mime_part *part,
			struct buf *out);
/* Case-insensitive substring search: ASCII plus simple case folding of Latin-1 Supplement,
 * Latin Extended-A, Greek and Cyrillic. Linear in len. */
bool mime_text_contains(const char *haystack_utf8, size_t len, const char *needle_utf8);
/* Appends the case-folded form of UTF-8 text (as used by mime_text_contains). */
void mime_fold_utf8(const char *s, size_t len, struct buf *out);

/* ---- dates ---- */
/* RFC 5322 date-time with obsolete forms (2/3-digit years, named zones, missing seconds or
 * weekday, comments) and IMAP's dd-Mon-yyyy form. Returns 0 with the UTC time and the zone
 * offset in minutes, or -1 for text that is not a valid date. */
int mime_parse_date(const char *s, size_t len, int64_t *unix_r, int *tz_minutes_r);

#endif
