/* libFuzzer target for the MIME layer: parses the input, renders ENVELOPE and BODY /
 * BODYSTRUCTURE, resolves every section the tree has (checking that each resolves back to its
 * part), and runs the header, parameter, date and content decoders over what it finds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

static void check_part(const struct mime_message *msg, const struct mime_part *p)
{
	size_t len = mime_data_len(msg);

	if (p->header_offset + p->header_size != p->body_offset || p->body_offset > len ||
	    p->body_size > len - p->body_offset)
		abort();
	/* Every part lies inside its parent's body. */
	if (p->parent != NULL &&
	    (p->header_offset < p->parent->body_offset ||
	     p->body_offset + p->body_size > p->parent->body_offset + p->parent->body_size))
		abort();
}

static void exercise_part(const struct mime_message *msg, const struct mime_part *p)
{
	struct buf b;

	buf_init(&b);
	check_part(msg, p);
	mime_param_decode(p->params, p->param_count, "name", &b);
	mime_param_decode(p->disp_params, p->disp_param_count, "filename", &b);
	if (mime_header_get(msg, p, "subject", 0, &b) == 0) {
		struct buf d;
		buf_init(&d);
		mime_decode_words((const char *)b.data, b.len, &d);
		mime_text_contains((const char *)d.data, d.len, "\xc3\xa9t\xc3\x89");
		buf_free(&d);
	}
	buf_reset(&b);
	if (mime_header_get(msg, p, "date", 0, &b) == 0) {
		int64_t t;
		int tz;
		mime_parse_date((const char *)b.data, b.len, &t, &tz);
	}
	buf_reset(&b);
	if (p->body_size < 65536 && !mime_part_is_multipart(p))
		mime_part_text_utf8(msg, p, &b);
	buf_reset(&b);
	static const char *const names[] = { "subject", "from", "content-type" };
	mime_header_filter(mime_data(msg) + p->header_offset, p->header_size, names, 3, false, &b);
	mime_header_filter(mime_data(msg) + p->header_offset, p->header_size, names, 3, true, &b);
	buf_free(&b);
}

/* Visits the part named by sec; as_message says that numbers below address the body of a
 * message (the root, or an encapsulated message). */
static void walk(const struct mime_message *msg, const struct mime_part *p, struct buf *sec,
		 bool as_message)
{
	size_t mark = sec->len;

	if (sec->len > 0 && !as_message) {
		size_t off, size;
		if (mime_find_section(msg, (const char *)sec->data, sec->len) != p)
			abort();
		for (int k = MIME_SECTION_PART; k <= MIME_SECTION_MIME; k++) {
			if (mime_section_range(msg, (const char *)sec->data, sec->len, k, &off,
					       &size) == 0 &&
			    (off > mime_data_len(msg) || size > mime_data_len(msg) - off))
				abort();
		}
		exercise_part(msg, p);
	}
	if (as_message && !mime_part_is_multipart(p)) {
		buf_append_str(sec, sec->len ? ".1" : "1");
		walk(msg, p, sec, false);
		sec->len = mark;
		return;
	}
	if (mime_part_is_multipart(p)) {
		size_t i = 1;
		for (const struct mime_part *c = p->first_child; c != NULL; c = c->next_sibling) {
			buf_printf(sec, sec->len ? ".%zu" : "%zu", i++);
			walk(msg, c, sec, false);
			sec->len = mark;
		}
	} else if (mime_part_is_message(p) && p->message != NULL) {
		walk(msg, p->message, sec, true);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits lim;
	struct mime_message *msg;
	struct buf out, sec;

	mime_limits_default(&lim);
	lim.max_depth = 30; /* keeps the section walk cheap; the parser logic is the same */
	lim.max_parts = 500;
	msg = mime_parse(data, size, &lim);
	buf_init(&out);
	buf_init(&sec);
	mime_envelope(msg, mime_root(msg), &out);
	mime_bodystructure(msg, mime_root(msg), true, &out);
	mime_bodystructure(msg, mime_root(msg), false, &out);
	walk(msg, mime_root(msg), &sec, true);
	buf_free(&out);
	buf_free(&sec);
	mime_message_free(&msg);
	return 0;
}
