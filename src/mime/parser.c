/* The MIME tree parser: one forward pass over a message in memory, recording for every part the
 * byte ranges of its header and body, its line counts and its interpreted MIME fields.
 *
 * Design notes:
 * 1. Single pass, no recursion. The input is walked line by line exactly once. Open multiparts
 *    live on an explicit stack of at most max_depth entries; every line that starts with "--" is
 *    compared with the boundaries on that stack (innermost first), so time is linear in the
 *    input times a factor bounded by max_depth, and stack use is constant.
 * 2. A delimiter line closes every part opened inside the multipart it belongs to (RFC 2046
 *    §5.1.1: an outer boundary also ends inner parts that were never closed). The line end
 *    before "--boundary" belongs to the delimiter, not to the body before it.
 * 3. Headers end at an empty line, at EOF, or (inside a multipart) at a delimiter line: a part
 *    that has no blank line after its header then has an empty body.
 * 4. Limits never fail the parse: a part at max_depth keeps its content as an opaque body, the
 *    part limit turns every later delimiter into ordinary body text, and fields beyond
 *    max_header_block bytes of a header are not interpreted (the block still ends where it
 *    ends).
 * 5. Line counts come from one running LF counter sampled at line starts, never from
 *    re-scanning a part. */
#include <stdlib.h>
#include <string.h>

#include "mime_private.h"

struct mp_frame {
	struct mime_part *part;
	const uint8_t *boundary;
	size_t boundary_len;
	bool closed; /* close-delimiter seen: the rest is epilogue */
};

struct parse_state {
	struct mime_message *msg;
	struct mp_frame *stack;
	size_t depth; /* entries used in stack */
	size_t pos;   /* always at a line start */
	uint64_t nl;  /* LF bytes in data[0, pos) */
	bool overflow;
	struct mime_part *cur;
};

void mime_limits_default(struct mime_limits *lim_r)
{
	lim_r->max_depth = LIMIT_MIME_DEPTH_DEFAULT;
	lim_r->max_parts = LIMIT_MIME_PARTS_DEFAULT;
	lim_r->max_header_block = LIMIT_HEADER_BLOCK_DEFAULT;
}

static struct mime_part *part_new(struct mime_message *msg, struct mime_part *parent,
				  size_t header_offset)
{
	struct mime_part *p = xcalloc(1, sizeof(*p));

	if (msg->part_count == msg->part_cap) {
		msg->part_cap = msg->part_cap ? msg->part_cap * 2 : 8;
		msg->parts = xrealloc(msg->parts, msg->part_cap * sizeof(*msg->parts));
	}
	msg->parts[msg->part_count++] = p;
	p->parent = parent;
	p->depth = parent ? parent->depth + 1 : 0;
	p->header_offset = header_offset;
	p->field_first = msg->field_count;
	return p;
}

static void field_add(struct mime_message *msg, size_t name_off, size_t name_len,
		      size_t value_off, size_t value_len)
{
	if (msg->field_count == msg->field_cap) {
		msg->field_cap = msg->field_cap ? msg->field_cap * 2 : 32;
		msg->fields = xrealloc(msg->fields, msg->field_cap * sizeof(*msg->fields));
	}
	msg->fields[msg->field_count++] = (struct mime_field){
		.name_off = name_off,
		.name_len = name_len,
		.value_off = value_off,
		.value_len = value_len,
	};
}

/* Length of the line starting at pos, line end included. */
static size_t line_len(const struct mime_message *msg, size_t pos)
{
	const uint8_t *nl = memchr(msg->data + pos, '\n', msg->len - pos);

	return nl ? (size_t)(nl - (msg->data + pos)) + 1 : msg->len - pos;
}

/* RFC 2046 §5.1.1 bchars: a boundary followed by one of these is a different boundary. */
static bool is_bchar(uint8_t c)
{
	return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') ||
	       strchr("'()+_,-./:=?", c) != NULL;
}

/* RFC 2046 §5.1.1: "--" boundary, then "--" for the close delimiter, then transport padding
 * (linear whitespace) up to the line end. exact = false also accepts other junk after the
 * boundary, as long as it does not continue the boundary with a bchar (a longer boundary
 * such as "b10" after "b1" is a different one). */
static bool boundary_matches(const uint8_t *line, size_t len, const struct mp_frame *f,
			     bool exact, bool *close_r)
{
	size_t i;

	if (f->closed || len < 2 + f->boundary_len)
		return false;
	if (memcmp(line + 2, f->boundary, f->boundary_len) != 0)
		return false;
	i = 2 + f->boundary_len;
	*close_r = i + 1 < len && line[i] == '-' && line[i + 1] == '-';
	if (*close_r)
		i += 2;
	if (!exact)
		return i == len || !is_bchar(line[i]) || *close_r;
	while (i < len && (mime_is_wsp(line[i]) || line[i] == '\r'))
		i++;
	return i == len || line[i] == '\n';
}

/* Returns the stack index of the multipart whose delimiter the line at pos is, or -1. An exact
 * delimiter line wins anywhere on the stack; otherwise the innermost lenient match is taken.
 * A new part past the part limit switches delimiter recognition off for the rest of the
 * input. */
static long match_delimiter(struct parse_state *st, size_t llen, bool *close_r)
{
	const uint8_t *line = st->msg->data + st->pos;
	long found = -1;
	bool found_close = false;

	if (st->depth == 0 || st->overflow || llen < 2 || line[0] != '-' || line[1] != '-')
		return -1;
	for (size_t i = st->depth; i-- > 0;) {
		bool close;
		if (boundary_matches(line, llen, &st->stack[i], true, &close)) {
			found = (long)i;
			found_close = close;
			break;
		}
		if (found < 0 && st->stack[i].boundary_len > 0 &&
		    boundary_matches(line, llen, &st->stack[i], false, &close)) {
			found = (long)i;
			found_close = close;
		}
	}
	if (found >= 0 && !found_close && st->msg->part_count >= st->msg->lim.max_parts) {
		st->overflow = true;
		st->msg->limit_hit = true;
		return -1;
	}
	*close_r = found_close;
	return found;
}

/* Ends part p's body at end (clamped to its start); lf_before_end is the LF count of
 * data[0, end). */
static void part_end(struct mime_part *p, const struct mime_message *msg, size_t end,
		     uint64_t lf_before_end, uint64_t lf_before_body)
{
	if (end <= p->body_offset) {
		p->body_size = 0;
		p->body_lines = 0;
		return;
	}
	p->body_size = end - p->body_offset;
	p->body_lines = lf_before_end - lf_before_body;
	if (msg->data[end - 1] != '\n')
		p->body_lines++;
}

/* Parses the header fields of header block [start, end) into the field table. */
static void parse_fields(struct mime_message *msg, struct mime_part *part, size_t start,
			 size_t end)
{
	const uint8_t *d = msg->data;
	size_t limit = msg->lim.max_header_block;
	size_t pos = start;
	bool have_field = false;
	size_t last_field = 0;

	if (end - start > limit) {
		end = start + limit;
		msg->limit_hit = true;
	}
	/* A UTF-8 byte order mark before the first field (seen in exported mail). */
	if (start == 0 && end >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf)
		pos = 3;
	while (pos < end) {
		size_t ll = line_len(msg, pos);
		size_t lend = pos + ll > end ? end : pos + ll;
		size_t content_end = lend;

		while (content_end > pos && (d[content_end - 1] == '\n' || d[content_end - 1] == '\r'))
			content_end--;
		if (mime_is_wsp(d[pos])) {
			/* Continuation of the previous field. */
			if (have_field)
				msg->fields[last_field].value_len =
				    content_end - msg->fields[last_field].value_off;
		} else {
			const uint8_t *colon = memchr(d + pos, ':', content_end - pos);
			size_t name_end;
			bool valid = colon != NULL;

			have_field = false;
			if (valid) {
				name_end = (size_t)(colon - d);
				while (name_end > pos && mime_is_wsp(d[name_end - 1]))
					name_end--;
				valid = name_end > pos;
				for (size_t i = pos; valid && i < name_end; i++)
					valid = d[i] > 32 && d[i] < 127;
			}
			if (valid) {
				size_t v = (size_t)(colon - d) + 1;
				field_add(msg, pos, name_end - pos, v, content_end - v);
				last_field = msg->field_count - 1;
				have_field = true;
			}
		}
		pos = lend;
	}
	part->field_count = msg->field_count - part->field_first;
}

const struct mime_field *mime_field_find(const struct mime_message *msg,
					 const struct mime_part *part, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < part->field_count; i++) {
		const struct mime_field *f = &msg->fields[part->field_first + i];
		if (f->name_len == nlen &&
		    str_nieq((const char *)msg->data + f->name_off, name, nlen))
			return f;
	}
	return NULL;
}

char *mime_field_strdup(const struct mime_message *msg, const struct mime_field *f)
{
	struct buf b;

	buf_init(&b);
	mime_header_unfold(msg->data + f->value_off, f->value_len, &b);
	buf_cstr(&b);
	return (char *)b.data;
}

void mime_header_unfold(const uint8_t *value, size_t len, struct buf *out)
{
	size_t start = out->len;
	size_t i = 0;

	while (i < len && mime_is_space(value[i]))
		i++;
	for (; i < len; i++) {
		uint8_t c = value[i];
		if (c == '\r' || c == '\n' || c == '\0')
			continue;
		buf_append_byte(out, c);
	}
	while (out->len > start && mime_is_wsp(out->data[out->len - 1]))
		out->len--;
}

static bool is_token_char(unsigned char c)
{
	/* RFC 2045 §5.1: any US-ASCII CHAR except SPACE, CTLs, or tspecials. */
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static char *token_lower(const char *s, size_t len)
{
	char *t = xstrndup(s, len);

	for (size_t i = 0; i < len; i++)
		t[i] = (char)mime_lower((unsigned char)t[i]);
	return t;
}

/* Reads a token at i; returns its end (== i when there is none). */
static size_t token_end(const char *s, size_t len, size_t i)
{
	while (i < len && is_token_char((unsigned char)s[i]))
		i++;
	return i;
}

static void params_add_default_charset(struct mime_part *p)
{
	p->params = xrealloc(p->params, (p->param_count + 1) * sizeof(*p->params));
	p->params[p->param_count].name = xstrdup("charset");
	p->params[p->param_count].value = xstrdup("us-ascii");
	p->param_count++;
}

static void set_content_type(struct mime_message *msg, struct mime_part *p)
{
	const struct mime_field *f = mime_field_find(msg, p, "content-type");
	bool digest_child = p->parent != NULL && p->parent->message != p &&
			    strcmp(p->parent->type, "multipart") == 0 &&
			    strcmp(p->parent->subtype, "digest") == 0;

	if (f != NULL) {
		char *v = mime_field_strdup(msg, f);
		size_t len = strlen(v);
		size_t i = mime_skip_cfws(v, len, 0);
		size_t te = token_end(v, len, i);
		size_t j = mime_skip_cfws(v, len, te);

		if (te > i && j < len && v[j] == '/') {
			size_t s = mime_skip_cfws(v, len, j + 1);
			size_t se = token_end(v, len, s);
			if (se > s) {
				p->type = token_lower(v + i, te - i);
				p->subtype = token_lower(v + s, se - s);
				mime_params_parse(v + se, len - se, &p->params, &p->param_count);
			}
		}
		free(v);
	}
	if (p->type != NULL)
		return;
	/* RFC 2046 §5.1.5 for digests, RFC 2045 §5.2 otherwise: absent or invalid. */
	if (digest_child) {
		p->type = xstrdup("message");
		p->subtype = xstrdup("rfc822");
	} else {
		p->type = xstrdup("text");
		p->subtype = xstrdup("plain");
		params_add_default_charset(p);
	}
}

static char *field_dup(struct mime_message *msg, struct mime_part *p, const char *name)
{
	const struct mime_field *f = mime_field_find(msg, p, name);

	return f ? mime_field_strdup(msg, f) : NULL;
}

static void set_mime_fields(struct mime_message *msg, struct mime_part *p)
{
	char *v;

	set_content_type(msg, p);
	v = field_dup(msg, p, "content-transfer-encoding");
	if (v != NULL) {
		size_t len = strlen(v);
		size_t i = mime_skip_cfws(v, len, 0);
		size_t e = token_end(v, len, i);
		if (e > i)
			p->encoding = token_lower(v + i, e - i);
		free(v);
	}
	if (p->encoding == NULL)
		p->encoding = xstrdup("7bit");
	p->id = field_dup(msg, p, "content-id");
	p->description = field_dup(msg, p, "content-description");
	p->md5 = field_dup(msg, p, "content-md5");
	p->language = field_dup(msg, p, "content-language");
	p->location = field_dup(msg, p, "content-location");
	v = field_dup(msg, p, "content-disposition");
	if (v != NULL) {
		size_t len = strlen(v);
		size_t i = mime_skip_cfws(v, len, 0);
		size_t e = token_end(v, len, i);
		if (e > i) {
			p->disposition = token_lower(v + i, e - i);
			mime_params_parse(v + e, len - e, &p->disp_params, &p->disp_param_count);
		}
		free(v);
	}
}

static const struct mime_param *param_find(const struct mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->param_count; i++) {
		if (strcmp(p->params[i].name, name) == 0)
			return &p->params[i];
	}
	return NULL;
}

bool mime_part_is_multipart(const struct mime_part *part)
{
	return strcmp(part->type, "multipart") == 0;
}

bool mime_part_is_message(const struct mime_part *part)
{
	return strcmp(part->type, "message") == 0 &&
	       (strcmp(part->subtype, "rfc822") == 0 || strcmp(part->subtype, "global") == 0);
}

static void append_child(struct mime_part *parent, struct mime_part *child)
{
	if (parent->last_child == NULL)
		parent->first_child = child;
	else
		parent->last_child->next_sibling = child;
	parent->last_child = child;
	parent->child_count++;
}

/* Closes every part from st->cur up to (not including) stop, their bodies ending at end;
 * lf_end counts the LFs in data[0, end). */
static void close_parts(struct parse_state *st, struct mime_part *stop, size_t end,
			uint64_t lf_end)
{
	for (struct mime_part *p = st->cur; p != NULL && p != stop; p = p->parent)
		part_end(p, st->msg, end, lf_end, p->body_first_line);
}

/* Runs the header state for st->cur: returns the stack index of a delimiter that ended the
 * header early (-1 otherwise, with the blank line or EOF reached). */
static long parse_header(struct parse_state *st, bool *close_r, size_t *delim_len_r)
{
	struct mime_message *msg = st->msg;
	struct mime_part *p = st->cur;
	uint64_t nl0 = st->nl;

	while (st->pos < msg->len) {
		size_t ll = line_len(msg, st->pos);
		const uint8_t *line = msg->data + st->pos;
		long k = match_delimiter(st, ll, close_r);

		if (k >= 0) {
			*delim_len_r = ll;
			p->header_size = st->pos - p->header_offset;
			p->header_lines = st->nl - nl0;
			p->body_offset = st->pos;
			p->body_first_line = st->nl;
			return k;
		}
		st->pos += ll;
		if (line[ll - 1] == '\n')
			st->nl++;
		if (ll == 1 || (ll == 2 && line[0] == '\r' && line[1] == '\n'))
			break;
	}
	p->header_size = st->pos - p->header_offset;
	p->header_lines = st->nl - nl0;
	p->body_offset = st->pos;
	p->body_first_line = st->nl;
	return -1;
}

/* The delimiter line at st->pos belongs to multipart stack[k]: close the parts inside it and
 * open the next part, or mark the multipart closed. Returns true when a new part's header
 * follows. */
static bool handle_delimiter(struct parse_state *st, long k, bool close, size_t llen)
{
	struct mime_message *msg = st->msg;
	struct mp_frame *f = &st->stack[k];
	size_t end = st->pos;
	uint64_t lf_end = st->nl;

	/* RFC 2046 §5.1.1: the CRLF preceding the boundary is part of the delimiter. */
	if (end > 0 && msg->data[end - 1] == '\n') {
		end--;
		lf_end--;
		if (end > 0 && msg->data[end - 1] == '\r')
			end--;
	}
	/* Except where that line end also ends the current part's header (a part with no body,
	 * or a delimiter right after another): taking it back would leave the part's header
	 * sticking out of its parent. */
	if (end < st->cur->body_offset) {
		end = st->cur->body_offset;
		lf_end = st->cur->body_first_line;
	}
	close_parts(st, f->part, end, lf_end);
	st->depth = (size_t)k + 1;
	st->cur = f->part;
	if (msg->data[st->pos + llen - 1] == '\n')
		st->nl++;
	st->pos += llen;
	if (close) {
		f->closed = true;
		return false;
	}
	struct mime_part *child = part_new(msg, f->part, st->pos);
	append_child(f->part, child);
	st->cur = child;
	return true;
}

/* After a header: decides whether the part contains children. Returns true when the next
 * state is the header of an encapsulated message. */
static bool enter_body(struct parse_state *st)
{
	struct mime_message *msg = st->msg;
	struct mime_part *p = st->cur;

	if (mime_part_is_multipart(p)) {
		const struct mime_param *b = param_find(p, "boundary");
		bool depth_ok = p->depth < msg->lim.max_depth && st->depth < msg->lim.max_depth;

		if (b == NULL || strlen(b->value) > LIMIT_MIME_BOUNDARY || !depth_ok ||
		    st->overflow) {
			p->truncated = true;
			if (!depth_ok || st->overflow)
				msg->limit_hit = true;
			return false;
		}
		st->stack[st->depth++] = (struct mp_frame){
			.part = p,
			.boundary = (const uint8_t *)b->value,
			.boundary_len = strlen(b->value),
		};
		return false;
	}
	if (mime_part_is_message(p)) {
		if (p->depth >= msg->lim.max_depth || st->overflow ||
		    msg->part_count >= msg->lim.max_parts) {
			p->truncated = true;
			msg->limit_hit = true;
			return false;
		}
		p->message = part_new(msg, p, st->pos);
		st->cur = p->message;
		return true;
	}
	return false;
}

struct mime_message *mime_parse(const uint8_t *data, size_t len, const struct mime_limits *lim)
{
	struct mime_message *msg = xcalloc(1, sizeof(*msg));
	struct parse_state st = { .msg = msg };
	bool in_header = true;

	static const uint8_t empty[1];

	/* A NULL input is the empty message; a real pointer keeps offset arithmetic defined. */
	msg->data = data ? data : empty;
	msg->len = data ? len : 0;
	if (lim != NULL)
		msg->lim = *lim;
	else
		mime_limits_default(&msg->lim);
	if (msg->lim.max_depth > LIMIT_MIME_DEPTH_MAX)
		msg->lim.max_depth = LIMIT_MIME_DEPTH_MAX;
	if (msg->lim.max_parts < 1)
		msg->lim.max_parts = 1;
	st.stack = xcalloc((size_t)msg->lim.max_depth + 1, sizeof(*st.stack));
	st.cur = part_new(msg, NULL, 0);

	for (;;) {
		bool close = false;
		long k;

		if (in_header) {
			size_t dlen = 0;
			struct mime_part *p = st.cur;

			k = parse_header(&st, &close, &dlen);
			parse_fields(msg, p, p->header_offset, p->header_offset + p->header_size);
			set_mime_fields(msg, p);
			if (k >= 0) {
				if (mime_part_is_multipart(p))
					p->truncated = true;
				in_header = handle_delimiter(&st, k, close, dlen);
				continue;
			}
			in_header = enter_body(&st);
			continue;
		}
		/* Body: look for the next delimiter line. */
		k = -1;
		while (st.pos < msg->len) {
			size_t ll = line_len(msg, st.pos);
			k = match_delimiter(&st, ll, &close);
			if (k >= 0) {
				in_header = handle_delimiter(&st, k, close, ll);
				break;
			}
			if (msg->data[st.pos + ll - 1] == '\n')
				st.nl++;
			st.pos += ll;
		}
		if (k < 0)
			break;
	}
	close_parts(&st, NULL, msg->len, st.nl);
	free(st.stack);
	return msg;
}

static void params_free(struct mime_param *params, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
}

void mime_params_free(struct mime_param **params, size_t *count)
{
	if (params == NULL || *params == NULL)
		return;
	params_free(*params, count ? *count : 0);
	*params = NULL;
	if (count)
		*count = 0;
}

void mime_message_free(struct mime_message **msgp)
{
	struct mime_message *msg;

	if (msgp == NULL || *msgp == NULL)
		return;
	msg = *msgp;
	for (size_t i = 0; i < msg->part_count; i++) {
		struct mime_part *p = msg->parts[i];
		free(p->type);
		free(p->subtype);
		params_free(p->params, p->param_count);
		free(p->encoding);
		free(p->id);
		free(p->description);
		free(p->md5);
		free(p->language);
		free(p->location);
		free(p->disposition);
		params_free(p->disp_params, p->disp_param_count);
		free(p);
	}
	free(msg->parts);
	free(msg->fields);
	free(msg);
	*msgp = NULL;
}

const struct mime_part *mime_root(const struct mime_message *msg)
{
	return msg->parts[0];
}

const uint8_t *mime_data(const struct mime_message *msg)
{
	return msg->data;
}

size_t mime_data_len(const struct mime_message *msg)
{
	return msg->len;
}

size_t mime_part_count(const struct mime_message *msg)
{
	return msg->part_count;
}

bool mime_limit_hit(const struct mime_message *msg)
{
	return msg->limit_hit;
}

const struct mime_part *mime_part_child(const struct mime_part *part, size_t n)
{
	const struct mime_part *c = part->first_child;

	while (c != NULL && n-- > 0)
		c = c->next_sibling;
	return c;
}

size_t mime_header_count(const struct mime_message *msg, const struct mime_part *part)
{
	return part->field_count;
}

int mime_header_field(const struct mime_message *msg, const struct mime_part *part, size_t i,
		      const uint8_t **name_r, size_t *name_len_r, const uint8_t **value_r,
		      size_t *value_len_r)
{
	const struct mime_field *f;

	if (i >= part->field_count)
		return -1;
	f = &msg->fields[part->field_first + i];
	*name_r = msg->data + f->name_off;
	*name_len_r = f->name_len;
	*value_r = msg->data + f->value_off;
	*value_len_r = f->value_len;
	return 0;
}

int mime_header_get(const struct mime_message *msg, const struct mime_part *part,
		    const char *name, size_t nth, struct buf *out)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < part->field_count; i++) {
		const struct mime_field *f = &msg->fields[part->field_first + i];
		if (f->name_len != nlen ||
		    !str_nieq((const char *)msg->data + f->name_off, name, nlen))
			continue;
		if (nth-- == 0) {
			mime_header_unfold(msg->data + f->value_off, f->value_len, out);
			return 0;
		}
	}
	return -1;
}
