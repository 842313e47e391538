/* FETCH PREVIEW (RFC 8970): a short plain-text extract of a message for a client's message
 * list, made from the first text/plain part that is not an attachment (else the first
 * text/html, its tags dropped), with quoted lines left out and whitespace runs made one
 * space. */
#include <string.h>

#include "../core/core.h"
#include "session.h"

/* RFC 8970 §3: at most 256 characters; 200 is what the RFC recommends. */
#define PREVIEW_CHARS 200
/* Enough of the decoded part to fill the preview even when most of it is markup. */
#define PREVIEW_SCAN_MAX (64 * 1024)

static const struct mime_part *find_text(const struct mime_part *p, const char *subtype,
					 unsigned depth)
{
	if (p == NULL || depth > LIMIT_MIME_DEPTH_MAX)
		return NULL;
	if (mime_part_is_multipart(p)) {
		for (const struct mime_part *k = p->first_child; k; k = k->next_sibling) {
			const struct mime_part *hit = find_text(k, subtype, depth + 1);
			if (hit != NULL)
				return hit;
		}
		return NULL;
	}
	if (strcmp(p->type, "text") != 0 || strcmp(p->subtype, subtype) != 0)
		return NULL;
	if (p->disposition != NULL && strcmp(p->disposition, "attachment") == 0)
		return NULL;
	return p;
}

struct preview_state {
	struct buf *out;
	size_t chars;
	bool space_pending, in_tag, line_start, quoted;
};

static void preview_byte(struct preview_state *st, uint8_t c, bool html)
{
	if (c == '\n') {
		st->line_start = true;
		st->quoted = false;
		st->space_pending = st->out->len > 0;
		return;
	}
	if (st->line_start && c != ' ' && c != '\t') {
		st->line_start = false;
		st->quoted = c == '>' && !html; /* a quoted line of a reply says nothing new */
	}
	if (st->quoted)
		return;
	if (html && (c == '<' || st->in_tag)) {
		st->in_tag = c != '>';
		st->space_pending = st->out->len > 0;
		return;
	}
	if (c == ' ' || c == '\t' || c == '\r' || c < 0x20) {
		st->space_pending = st->out->len > 0;
		return;
	}
	if ((c & 0xc0) != 0x80) { /* a character starts */
		if (st->chars == PREVIEW_CHARS)
			return;
		if (st->space_pending) {
			if (st->chars + 1 == PREVIEW_CHARS)
				return;
			buf_append_byte(st->out, ' ');
			st->chars++;
		}
		st->chars++;
		st->space_pending = false;
	} else if (st->chars == PREVIEW_CHARS && st->out->len > 0 &&
		   (st->out->data[st->out->len - 1] & 0x80) == 0) {
		return; /* continuation of a character that did not fit */
	}
	buf_append_byte(st->out, c);
}

void imap_preview(const struct mime_message *mm, struct buf *out)
{
	const struct mime_part *root = mime_root(mm);
	const struct mime_part *p = find_text(root, "plain", 0);
	bool html = false;
	struct buf text;

	if (p == NULL) {
		p = find_text(root, "html", 0);
		html = p != NULL;
	}
	if (p == NULL)
		return;
	buf_init(&text);
	if (mime_part_text_utf8(mm, p, &text) == 0) {
		struct preview_state st = { .out = out, .line_start = true };
		size_t n = text.len < PREVIEW_SCAN_MAX ? text.len : PREVIEW_SCAN_MAX;
		for (size_t i = 0; i < n && st.chars <= PREVIEW_CHARS; i++)
			preview_byte(&st, text.data[i], html);
	}
	buf_free(&text);
}
