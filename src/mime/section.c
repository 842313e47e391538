/* IMAP section addressing (RFC 3501 §6.4.5, RFC 9051 §6.4.5): numeric part paths, the
 * HEADER / TEXT / MIME byte ranges, and the HEADER.FIELDS filters. */
#include <string.h>

#include "mime_private.h"

const struct mime_part *mime_find_section(const struct mime_message *msg, const char *section,
					  size_t len)
{
	const struct mime_part *cur = msg->parts[0];
	/* True while cur is a message whose body the next number indexes (the root, or the
	 * message inside a message/rfc822 part). */
	bool at_message = true;
	size_t i = 0;

	while (i < len) {
		uint64_t n = 0;
		size_t start = i;

		while (i < len && section[i] >= '0' && section[i] <= '9') {
			n = n * 10 + (uint64_t)(section[i] - '0');
			if (n > LIMIT_MIME_PARTS_DEFAULT * 100ULL)
				return NULL;
			i++;
		}
		if (i == start || n == 0 || section[start] == '0')
			return NULL;
		if (i < len) {
			if (section[i] != '.' || i + 1 == len)
				return NULL;
			i++;
		}
		if (!at_message && mime_part_is_message(cur)) {
			/* Numbers below a message/rfc822 part address the encapsulated message. */
			if (cur->message == NULL)
				return NULL;
			cur = cur->message;
			at_message = true;
		}
		if (mime_part_is_multipart(cur)) {
			cur = mime_part_child(cur, (size_t)n - 1);
			if (cur == NULL)
				return NULL;
		} else if (n != 1 || !at_message) {
			/* A non-multipart message has one part, its body (§6.4.5); a leaf part
			 * has none. */
			return NULL;
		}
		at_message = false;
	}
	return cur;
}

int mime_section_range(const struct mime_message *msg, const char *section, size_t len,
		       enum mime_section_kind kind, size_t *offset_r, size_t *size_r)
{
	const struct mime_part *p = mime_find_section(msg, section, len);
	const struct mime_part *m;

	if (p == NULL)
		return -1;
	switch (kind) {
	case MIME_SECTION_PART:
		if (len == 0) {
			*offset_r = 0;
			*size_r = msg->len;
		} else {
			*offset_r = p->body_offset;
			*size_r = p->body_size;
		}
		return 0;
	case MIME_SECTION_MIME:
		if (len == 0)
			return -1;
		*offset_r = p->header_offset;
		*size_r = p->header_size;
		return 0;
	case MIME_SECTION_HEADER:
	case MIME_SECTION_TEXT:
		if (len == 0) {
			m = p;
		} else {
			if (!mime_part_is_message(p) || p->message == NULL)
				return -1;
			m = p->message;
		}
		if (kind == MIME_SECTION_HEADER) {
			*offset_r = m->header_offset;
			*size_r = m->header_size;
		} else {
			*offset_r = m->body_offset;
			*size_r = m->body_size;
		}
		return 0;
	}
	return -1;
}

static bool name_listed(const uint8_t *name, size_t len, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (strlen(names[i]) == len && str_nieq((const char *)name, names[i], len))
			return true;
	}
	return false;
}

void mime_header_filter(const uint8_t *h, size_t len, const char *const *names,
			size_t name_count, bool exclude, struct buf *out)
{
	size_t pos = 0;
	bool keep = false;

	while (pos < len) {
		const uint8_t *nl = memchr(h + pos, '\n', len - pos);
		size_t lend = nl ? (size_t)(nl - h) + 1 : len;
		size_t content = lend;

		while (content > pos && (h[content - 1] == '\n' || h[content - 1] == '\r'))
			content--;
		if (content == pos)
			break; /* the blank line ending the block */
		if (!mime_is_wsp(h[pos])) {
			const uint8_t *colon = memchr(h + pos, ':', content - pos);
			if (colon == NULL) {
				keep = false;
			} else {
				size_t ne = (size_t)(colon - h);
				while (ne > pos && mime_is_wsp(h[ne - 1]))
					ne--;
				keep = name_listed(h + pos, ne - pos, names, name_count) != exclude;
			}
		}
		if (keep) {
			/* Keep the field's text but always end its lines with CRLF. */
			buf_append(out, h + pos, content - pos);
			buf_append_str(out, "\r\n");
		}
		pos = lend;
	}
	buf_append_str(out, "\r\n");
}
