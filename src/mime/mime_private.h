/* Internals shared by the files of src/mime/: the message object and small text functions. */
#ifndef ROOST_MIME_PRIVATE_H
#define ROOST_MIME_PRIVATE_H

#include "mime.h"

struct mime_field {
	size_t name_off, name_len;
	size_t value_off, value_len; /* raw, folded, after the colon */
};

struct mime_message {
	const uint8_t *data;
	size_t len;
	struct mime_limits lim;
	struct mime_part **parts; /* every part, in parse order; parts[0] is the root */
	size_t part_count, part_cap;
	struct mime_field *fields;
	size_t field_count, field_cap;
	bool limit_hit;
};

/* Finds the first field named name in part; NULL when absent. */
const struct mime_field *mime_field_find(const struct mime_message *msg,
					 const struct mime_part *part, const char *name);
/* Unfolded, trimmed, NUL-free copy of a field value; caller frees. */
char *mime_field_strdup(const struct mime_message *msg, const struct mime_field *f);

/* Skips whitespace and (nested) comments in s from i; returns the new index. */
size_t mime_skip_cfws(const char *s, size_t len, size_t i);

static inline bool mime_is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static inline bool mime_is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline int mime_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static inline int mime_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

#endif
