/* FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3501 §6.4.5, RFC 3516 BINARY).
 *
 * The messages are worked through in batches in a worker: metadata from one store_msg_list
 * range scan, bodies from the store's mmap. A batch's output is a list of segments: text
 * built in memory, or byte ranges of mapped messages. Large ranges are never copied. The loop
 * writes every segment in slices and stops while IMAP_OUTPUT_HIGH_WATER or more is queued,
 * resuming on net's drained callback; the next batch is built only after that, so a client
 * that reads slowly gets its mailbox slowly, and a 50 MiB message costs no heap. UID is
 * always the first item of a FETCH response (Thunderbird).
 *
 * CONDSTORE/QRESYNC (RFC 7162 §3.1.4, §3.2.6): MODSEQ is an item; the CHANGEDSINCE modifier
 * narrows the set with one index scan before the first batch, and UID FETCH's VANISHED
 * modifier sends "* VANISHED (EARLIER)" for the set's UIDs expunged since then. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "session.h"

enum fitem_kind {
	FI_UID,
	FI_FLAGS,
	FI_INTERNALDATE,
	FI_SIZE,
	FI_ENVELOPE,
	FI_BODY,
	FI_BODYSTRUCTURE,
	FI_SECTION, /* BODY[...], BINARY[...], RFC822, RFC822.HEADER, RFC822.TEXT */
	FI_BINARY_SIZE,
	FI_PREVIEW, /* RFC 8970 */
	FI_EMAILID,  /* RFC 8474 §5.1 */
	FI_THREADID, /* RFC 8474 §5.2 */
	FI_SAVEDATE, /* RFC 8514 §4.2 */
};

enum fsec {
	SEC_ALL,
	SEC_HEADER,
	SEC_FIELDS,
	SEC_FIELDS_NOT,
	SEC_TEXT,
	SEC_MIME,
};

struct fitem {
	enum fitem_kind kind;
	bool peek;
	bool binary;
	enum fsec sec;
	char part[128]; /* "1.2.3" or "" */
	char **fields;
	size_t field_count;
	bool partial;
	uint64_t start, count;
	char *label; /* response name without <origin> */
};

struct fseg {
	struct buf text;     /* used when data == NULL */
	const uint8_t *data; /* a range of a mapped message */
	size_t len;
};

struct imap_fetch {
	char *tag;
	bool readonly;
	struct fitem *items;
	size_t item_count;
	bool want_seen;  /* a non-PEEK body item: \Seen is set */
	bool need_flags; /* FLAGS requested (or implied by setting \Seen) */
	bool need_data;
	bool need_mime;
	bool want_modseq;   /* MODSEQ in every response (asked, CHANGEDSINCE, or CONDSTORE on) */
	uint64_t changedsince; /* 0 = no CHANGEDSINCE modifier */
	bool want_vanished;
	bool prepared;         /* CHANGEDSINCE and VANISHED were worked out (first job) */
	struct store_uid_range *known; /* VANISHED: the UID set as the client sent it */
	size_t known_count;
	char *mailbox;
	uint32_t *uids, *msns;
	size_t n, next;
	/* UIDs recent in this session (a copy: the view may change while a batch is built) */
	struct store_uid_range *recent;
	size_t recent_count;
	struct store_account *acct;
	uint64_t mailbox_id;
	/* batch output */
	struct fseg *segs;
	size_t seg_count, seg_i, seg_off;
	struct store_message **open;
	size_t open_count;
	const char *fail; /* tagged NO text */
	/* On the loop: a batch is being built in a worker (segs belong to it), or the
	 * writing waits for net's drained callback. */
	bool job_running;
	bool waiting_drain;
};

#define FETCH_BATCH_MSGS 256
#define FETCH_BATCH_BYTES (1024 * 1024)
#define FETCH_INLINE_MAX (64 * 1024)
/* Output is written in slices of at most this, and only while less than
 * IMAP_OUTPUT_HIGH_WATER is queued. */
#define FETCH_SLICE (64 * 1024)

static void fitem_clear(struct fitem *it)
{
	for (size_t i = 0; i < it->field_count; i++)
		free(it->fields[i]);
	free(it->fields);
	free(it->label);
}

static void batch_clear(struct imap_fetch *f)
{
	for (size_t i = 0; i < f->seg_count; i++)
		buf_free(&f->segs[i].text);
	free(f->segs);
	f->segs = NULL;
	f->seg_count = f->seg_i = f->seg_off = 0;
	for (size_t i = 0; i < f->open_count; i++)
		store_message_close(&f->open[i]);
	free(f->open);
	f->open = NULL;
	f->open_count = 0;
}

static void fetch_destroy(struct imap_fetch *f)
{
	if (f == NULL)
		return;
	batch_clear(f);
	for (size_t i = 0; i < f->item_count; i++)
		fitem_clear(&f->items[i]);
	free(f->items);
	free(f->uids);
	free(f->recent);
	free(f->msns);
	free(f->known);
	free(f->mailbox);
	free(f->tag);
	free(f);
}

void imap_fetch_free(struct imap_session *s)
{
	fetch_destroy(s->fetch);
	s->fetch = NULL;
}

/* ---------------- parsing ---------------- */

static struct fitem *add_item(struct imap_fetch *f, enum fitem_kind kind)
{
	f->items = xrealloc(f->items, (f->item_count + 1) * sizeof(*f->items));
	struct fitem *it = &f->items[f->item_count++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	return it;
}

static bool word_is(struct imap_parser *ps, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(ps->end - ps->p) < n || !str_nieq((const char *)ps->p, w, n))
		return false;
	ps->p += n;
	return true;
}

/* section = "[" [section-spec] "]"  (RFC 9051 §9); binary = true for section-binary. */
static bool parse_section(struct imap_parser *ps, struct fitem *it, bool binary)
{
	uint8_t *start;
	size_t plen = 0;

	if (!imap_parse_char(ps, '['))
		return false;
	start = ps->p;
	while (ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9') {
		uint32_t n;
		if (!imap_parse_number(ps, &n) || n == 0)
			return false;
		if (!imap_peek(ps, '.') || ps->p + 1 >= ps->end || ps->p[1] < '0' || ps->p[1] > '9')
			break;
		ps->p++;
	}
	plen = (size_t)(ps->p - start);
	if (plen >= sizeof(it->part)) {
		ps->error = "Section too long";
		return false;
	}
	memcpy(it->part, start, plen);
	it->part[plen] = '\0';
	it->sec = SEC_ALL;
	if (!binary && !imap_peek(ps, ']')) {
		if (plen > 0 && !imap_parse_char(ps, '.'))
			return false;
		if (word_is(ps, "HEADER.FIELDS.NOT"))
			it->sec = SEC_FIELDS_NOT;
		else if (word_is(ps, "HEADER.FIELDS"))
			it->sec = SEC_FIELDS;
		else if (word_is(ps, "HEADER"))
			it->sec = SEC_HEADER;
		else if (word_is(ps, "TEXT"))
			it->sec = SEC_TEXT;
		else if (plen > 0 && word_is(ps, "MIME"))
			it->sec = SEC_MIME;
		else {
			ps->error = "Invalid section";
			return false;
		}
		if (it->sec == SEC_FIELDS || it->sec == SEC_FIELDS_NOT) {
			if (!imap_parse_sp(ps) || !imap_parse_char(ps, '('))
				return false;
			while (!imap_peek(ps, ')')) {
				struct imap_slice name;
				if (it->field_count > 0 && !imap_parse_sp(ps))
					return false;
				if (!imap_parse_astring(ps, &name) || name.len == 0 ||
				    imap_slice_has_ctl(&name) || memchr(name.data, ':', name.len))
					return false;
				if (it->field_count >= 100) {
					ps->error = "Too many header fields";
					return false;
				}
				it->fields = xrealloc(it->fields,
						      (it->field_count + 1) * sizeof(char *));
				it->fields[it->field_count++] =
					xstrndup((const char *)name.data, name.len);
			}
			ps->p++;
		}
	}
	if (!imap_peek(ps, ']')) {
		ps->error = "Invalid section";
		return false;
	}
	/* The label echoes the section as sent (RFC 9051 §7.5.2 BODY[<section>]). */
	struct buf label;
	buf_init(&label);
	buf_printf(&label, "%s[%.*s]", binary ? "BINARY" : "BODY", (int)(ps->p - start),
		   (const char *)start);
	for (size_t i = 0; i < label.len; i++)
		if (label.data[i] == '\r' || label.data[i] == '\n')
			label.data[i] = ' ';
	it->label = xstrdup(buf_cstr(&label));
	buf_free(&label);
	ps->p++;
	/* partial = "<" number64 "." nz-number64 ">" */
	if (imap_peek(ps, '<')) {
		ps->p++;
		if (!imap_parse_number64(ps, &it->start) || !imap_parse_char(ps, '.') ||
		    !imap_parse_number64(ps, &it->count) || it->count == 0 ||
		    !imap_parse_char(ps, '>')) {
			ps->error = "Invalid partial";
			return false;
		}
		it->partial = true;
	}
	return true;
}

static bool parse_att(struct imap_parser *ps, struct imap_fetch *f)
{
	struct fitem *it;

	if (word_is(ps, "BODY.PEEK[") || word_is(ps, "BINARY.PEEK[") || word_is(ps, "BODY[") ||
	    word_is(ps, "BINARY[")) {
		uint8_t *q = ps->p - 1;
		bool binary, peek;
		while (*q != 'B' && *q != 'b')
			q--;
		binary = str_nieq((const char *)q, "BINARY", 6);
		peek = memchr(q, '.', (size_t)(ps->p - q)) != NULL;
		ps->p--; /* back to "[" */
		it = add_item(f, FI_SECTION);
		it->binary = binary;
		it->peek = peek;
		if (!parse_section(ps, it, binary))
			return false;
		if (!peek)
			f->want_seen = true;
		f->need_data = true;
		f->need_mime = f->need_mime || binary || it->part[0] || it->sec != SEC_ALL;
		return true;
	}
	if (word_is(ps, "BINARY.SIZE[")) {
		ps->p--;
		it = add_item(f, FI_BINARY_SIZE);
		if (!parse_section(ps, it, true) || it->partial)
			return false;
		free(it->label);
		it->label = xasprintf("BINARY.SIZE[%s]", it->part);
		f->need_data = f->need_mime = true;
		return true;
	}
	struct imap_slice a;
	if (!imap_parse_atom(ps, &a))
		return false;
	if (imap_slice_ieq(&a, "UID")) {
		add_item(f, FI_UID);
	} else if (imap_slice_ieq(&a, "FLAGS")) {
		add_item(f, FI_FLAGS);
		f->need_flags = true;
	} else if (imap_slice_ieq(&a, "INTERNALDATE")) {
		add_item(f, FI_INTERNALDATE);
	} else if (imap_slice_ieq(&a, "RFC822.SIZE")) {
		add_item(f, FI_SIZE);
	} else if (imap_slice_ieq(&a, "EMAILID")) {
		add_item(f, FI_EMAILID);
	} else if (imap_slice_ieq(&a, "THREADID")) {
		add_item(f, FI_THREADID);
	} else if (imap_slice_ieq(&a, "SAVEDATE")) {
		add_item(f, FI_SAVEDATE);
	} else if (imap_slice_ieq(&a, "ENVELOPE")) {
		add_item(f, FI_ENVELOPE);
	} else if (imap_slice_ieq(&a, "BODYSTRUCTURE")) {
		add_item(f, FI_BODYSTRUCTURE);
	} else if (imap_slice_ieq(&a, "PREVIEW")) {
		/* RFC 8970 §3: an optional modifier list; LAZY is the only one, and computing
		 * the preview costs no more than the FETCH itself, so it is always sent */
		add_item(f, FI_PREVIEW);
		f->need_data = f->need_mime = true;
		if (ps->end - ps->p >= 2 && ps->p[0] == ' ' && ps->p[1] == '(') {
			ps->p += 2;
			if (!word_is(ps, "LAZY") || !imap_parse_char(ps, ')')) {
				ps->error = "Unknown PREVIEW modifier";
				return false;
			}
		}
	} else if (imap_slice_ieq(&a, "BODY")) {
		add_item(f, FI_BODY);
		f->need_data = f->need_mime = true;
	} else if (imap_slice_ieq(&a, "RFC822") || imap_slice_ieq(&a, "RFC822.PEEK")) {
		/* RFC822.PEEK is not in any RFC, but Outlook sends it. */
		it = add_item(f, FI_SECTION);
		it->label = xstrdup("RFC822");
		it->peek = imap_slice_ieq(&a, "RFC822.PEEK");
		f->want_seen |= !it->peek;
		f->need_data = true;
	} else if (imap_slice_ieq(&a, "MODSEQ")) {
		/* RFC 7162 §3.1.4.2; the response item itself is added once, at the end. */
		f->want_modseq = true;
	} else if (imap_slice_ieq(&a, "RFC822.HEADER")) {
		it = add_item(f, FI_SECTION);
		it->label = xstrdup("RFC822.HEADER");
		it->peek = true;
		it->sec = SEC_HEADER;
		f->need_data = f->need_mime = true;
	} else if (imap_slice_ieq(&a, "RFC822.TEXT")) {
		it = add_item(f, FI_SECTION);
		it->label = xstrdup("RFC822.TEXT");
		it->sec = SEC_TEXT;
		f->want_seen = true;
		f->need_data = f->need_mime = true;
	} else {
		ps->error = "Unknown FETCH item";
		return false;
	}
	return true;
}

static bool parse_fetch_atts(struct imap_parser *ps, struct imap_fetch *f)
{
	struct imap_parser save = *ps;
	struct imap_slice a;

	if (imap_parse_atom(ps, &a) && (imap_slice_ieq(&a, "ALL") || imap_slice_ieq(&a, "FAST") ||
					imap_slice_ieq(&a, "FULL"))) {
		add_item(f, FI_FLAGS);
		add_item(f, FI_INTERNALDATE);
		add_item(f, FI_SIZE);
		f->need_flags = true;
		if (!imap_slice_ieq(&a, "FAST"))
			add_item(f, FI_ENVELOPE);
		if (imap_slice_ieq(&a, "FULL")) {
			add_item(f, FI_BODY);
			f->need_data = f->need_mime = true;
		}
		return true;
	}
	*ps = save;
	if (!imap_peek(ps, '('))
		return parse_att(ps, f);
	ps->p++;
	for (int n = 0; !imap_peek(ps, ')'); n++) {
		if (n > 0 && !imap_parse_sp(ps))
			return false;
		if (f->item_count > 100) {
			ps->error = "Too many FETCH items";
			return false;
		}
		if (!parse_att(ps, f))
			return false;
	}
	ps->p++;
	return true;
}

/* ---------------- the worker: one batch ---------------- */

static struct fseg *seg_text(struct imap_fetch *f)
{
	if (f->seg_count > 0 && f->segs[f->seg_count - 1].data == NULL)
		return &f->segs[f->seg_count - 1];
	f->segs = xrealloc(f->segs, (f->seg_count + 1) * sizeof(*f->segs));
	struct fseg *g = &f->segs[f->seg_count++];
	memset(g, 0, sizeof(*g));
	buf_init(&g->text);
	return g;
}

static void seg_raw(struct imap_fetch *f, const uint8_t *data, size_t len)
{
	f->segs = xrealloc(f->segs, (f->seg_count + 1) * sizeof(*f->segs));
	struct fseg *g = &f->segs[f->seg_count++];
	memset(g, 0, sizeof(*g));
	buf_init(&g->text);
	g->data = data;
	g->len = len;
}

static size_t batch_bytes(const struct imap_fetch *f)
{
	size_t n = 0;

	for (size_t i = 0; i < f->seg_count; i++)
		n += f->segs[i].data ? f->segs[i].len : f->segs[i].text.len;
	return n;
}

/* A literal of data[0..len) (after <partial>); raw ranges of the mapped message stay
 * uncopied when big. */
static void emit_literal(struct imap_fetch *f, const struct fitem *it, const uint8_t *data,
			 size_t len, bool from_map, bool binary_literal)
{
	struct buf *t = &seg_text(f)->text;
	size_t start = 0;
	bool nul = false;

	if (it->partial) {
		start = it->start > len ? len : (size_t)it->start;
		len = len - start;
		if (it->count < len)
			len = (size_t)it->count;
		buf_printf(t, "<%llu>", (unsigned long long)it->start);
	}
	data += start;
	if (binary_literal)
		nul = memchr(data, '\0', len) != NULL;
	/* RFC 3516 §4.3: literal8 when the data holds NUL. */
	buf_printf(t, " %s{%zu}\r\n", nul ? "~" : "", len);
	if (from_map && len > FETCH_INLINE_MAX)
		seg_raw(f, data, len);
	else
		buf_append(t, data, len);
}

/* RFC 3516 §4.2: a multipart part has no transfer encoding of its own, so its BINARY
 * content is its body as stored (the same octets as BODY[part]), never NIL. True with the
 * range when p is such a part. */
static bool binary_part_raw(const struct mime_message *mm, const char *part,
			    const struct mime_part *p, size_t *off_r, size_t *size_r)
{
	if (!mime_part_is_multipart(p))
		return false;
	if (mime_section_range(mm, part, strlen(part), MIME_SECTION_PART, off_r, size_r) < 0)
		*off_r = *size_r = 0;
	return true;
}

static void emit_section(struct imap_fetch *f, const struct fitem *it, const uint8_t *data,
			 size_t len, const struct mime_message *mm)
{
	struct buf *t = &seg_text(f)->text;
	size_t off = 0, size = len;

	buf_append_str(t, it->label);
	if (it->binary) {
		const struct mime_part *p = mime_find_section(mm, it->part, strlen(it->part));
		struct buf dec;
		size_t part_off = 0, part_size = 0;
		if (it->part[0] == '\0') {
			emit_literal(f, it, data, len, true, true);
			return;
		}
		if (p == NULL) {
			buf_append_str(t, " NIL");
			return;
		}
		if (binary_part_raw(mm, it->part, p, &part_off, &part_size)) {
			emit_literal(f, it, data + part_off, part_size, true, true);
			return;
		}
		buf_init(&dec);
		if (mime_decode_body(mm, p, &dec) < 0) {
			f->fail = "[UNKNOWN-CTE] Cannot decode this part's transfer encoding";
			buf_append_str(t, " NIL");
			buf_free(&dec);
			return;
		}
		emit_literal(f, it, dec.data, dec.len, false, true);
		buf_free(&dec);
		return;
	}
	if (it->part[0] == '\0' && it->sec == SEC_ALL) {
		emit_literal(f, it, data, len, true, false);
		return;
	}
	enum mime_section_kind kind = MIME_SECTION_PART;
	switch (it->sec) {
	case SEC_ALL:
		kind = MIME_SECTION_PART;
		break;
	case SEC_HEADER:
	case SEC_FIELDS:
	case SEC_FIELDS_NOT:
		kind = MIME_SECTION_HEADER;
		break;
	case SEC_TEXT:
		kind = MIME_SECTION_TEXT;
		break;
	case SEC_MIME:
		kind = MIME_SECTION_MIME;
		break;
	}
	if (mime_section_range(mm, it->part, strlen(it->part), kind, &off, &size) < 0) {
		/* A section that does not exist: empty, as most servers answer. */
		emit_literal(f, it, (const uint8_t *)"", 0, false, false);
		return;
	}
	if (it->sec == SEC_FIELDS || it->sec == SEC_FIELDS_NOT) {
		struct buf filtered;
		buf_init(&filtered);
		mime_header_filter(data + off, size, (const char *const *)it->fields,
				   it->field_count, it->sec == SEC_FIELDS_NOT, &filtered);
		emit_literal(f, it, filtered.data, filtered.len, false, false);
		buf_free(&filtered);
		return;
	}
	emit_literal(f, it, data + off, size, true, false);
}

static void fetch_one(struct imap_fetch *f, uint32_t uid, uint32_t msn, const struct store_msg *m)
{
	struct store_message *msg = NULL;
	const uint8_t *data = NULL;
	size_t len = 0;
	struct mime_message *mm = NULL;
	char *envelope = NULL, *bodystructure = NULL;
	struct buf *t;

	if (f->need_data) {
		enum store_error e = store_message_open(f->acct, f->mailbox_id, uid, &msg, NULL);
		if (e == STORE_ERR_NOT_FOUND)
			return; /* expunged meanwhile: nothing to report */
		if (e != STORE_OK) {
			/* Never a tagged OK over data that could not be read (the store logged the
			 * path); the client keeps the message and may try again. */
			f->fail = "[UNAVAILABLE] A message cannot be read now";
			return;
		}
		data = store_message_data(msg, &len);
		f->open = xrealloc(f->open, (f->open_count + 1) * sizeof(*f->open));
		f->open[f->open_count++] = msg;
		if (f->need_mime)
			mm = mime_parse(data, len, NULL);
	}
	t = &seg_text(f)->text;
	buf_printf(t, "* %u FETCH (UID %u", msn, uid);
	for (size_t i = 0; i < f->item_count; i++) {
		const struct fitem *it = &f->items[i];

		t = &seg_text(f)->text;
		switch (it->kind) {
		case FI_UID:
			break;
		case FI_FLAGS:
			buf_append_str(t, " FLAGS ");
			imap_append_flags_recent(t, m->flags, m->keywords,
						 imap_uid_in_ranges(uid, f->recent, f->recent_count));
			break;
		case FI_INTERNALDATE:
			buf_append_str(t, " INTERNALDATE ");
			imap_append_date_time(t, m->internal_date);
			break;
		case FI_SIZE:
			buf_printf(t, " RFC822.SIZE %llu", (unsigned long long)m->size);
			break;
		case FI_EMAILID:
			buf_append_str(t, " EMAILID (");
			imap_append_emailid(t, m->email_id);
			buf_append_byte(t, ')');
			break;
		case FI_THREADID:
			buf_append_str(t, " THREADID ");
			imap_append_threadid(t, m->thread_id);
			break;
		case FI_SAVEDATE:
			buf_append_str(t, " SAVEDATE ");
			imap_append_date_time(t, m->save_date);
			break;
		case FI_ENVELOPE:
		case FI_BODYSTRUCTURE:
			if (envelope == NULL && bodystructure == NULL)
				store_message_cache(f->acct, f->mailbox_id, uid, &envelope,
						    &bodystructure, NULL);
			if (it->kind == FI_ENVELOPE)
				buf_printf(t, " ENVELOPE %s",
					   envelope ? envelope : "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
			else
				buf_printf(t, " BODYSTRUCTURE %s",
					   bodystructure ? bodystructure
							 : "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
			break;
		case FI_BODY:
			buf_append_str(t, " BODY ");
			mime_bodystructure(mm, mime_root(mm), false, t);
			break;
		case FI_SECTION:
			buf_append_byte(t, ' ');
			emit_section(f, it, data, len, mm);
			break;
		case FI_BINARY_SIZE: {
			const struct mime_part *p = mime_find_section(mm, it->part, strlen(it->part));
			struct buf dec;
			buf_init(&dec);
			size_t off = 0, size = 0;
			if (it->part[0] == '\0')
				buf_printf(t, " %s %zu", it->label, len);
			else if (p == NULL)
				buf_printf(t, " %s NIL", it->label);
			else if (binary_part_raw(mm, it->part, p, &off, &size))
				buf_printf(t, " %s %zu", it->label, size);
			else if (mime_decode_body(mm, p, &dec) < 0)
				f->fail = "[UNKNOWN-CTE] Cannot decode this part's transfer encoding";
			else
				buf_printf(t, " %s %zu", it->label, dec.len);
			buf_free(&dec);
			break;
		}
		case FI_PREVIEW: {
			struct buf pv;
			buf_init(&pv);
			imap_preview(mm, &pv);
			buf_append_str(t, " PREVIEW ");
			mime_imap_string(t, (const char *)pv.data, pv.len);
			buf_free(&pv);
			break;
		}
		}
	}
	if (f->want_modseq)
		buf_printf(&seg_text(f)->text, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_append_str(&seg_text(f)->text, ")\r\n");
	free(envelope);
	free(bodystructure);
	mime_message_free(&mm);
}

/* RFC 7162 §3.2.6: the UIDs of the set expunged since CHANGEDSINCE, ahead of the FETCHes. */
static void fetch_vanished(struct imap_fetch *f)
{
	struct store_mailbox_status st;
	struct store_uid_range *gone = NULL;
	size_t gone_count = 0;

	if (store_mailbox_status(f->acct, f->mailbox, &st, NULL) != STORE_OK ||
	    imap_vanished_since(f->acct, f->mailbox_id, f->changedsince, f->known, f->known_count,
				st.uidnext - 1, &gone, &gone_count) != STORE_OK) {
		f->fail = "[SERVERBUG] Cannot read the mailbox index";
		return;
	}
	if (gone_count > 0) {
		struct buf *t = &seg_text(f)->text;

		buf_append_str(t, "* VANISHED (EARLIER) ");
		imap_append_ranges(t, gone, gone_count);
		buf_append_str(t, "\r\n");
	}
	free(gone);
}

/* CHANGEDSINCE: one range scan keeps only the messages changed since, so a resync of a big
 * mailbox costs one query, not one per batch. */
static void fetch_narrow(struct imap_fetch *f)
{
	struct store_list_query q = { f->uids[0], f->uids[f->n - 1], f->changedsince };
	struct store_msg *msgs = NULL;
	size_t count = 0, j = 0, kept = 0;

	if (store_msg_list(f->acct, f->mailbox_id, &q, &msgs, &count, NULL) != STORE_OK) {
		f->fail = "[SERVERBUG] Cannot read the mailbox index";
		f->n = 0;
		return;
	}
	for (size_t i = 0; i < f->n; i++) {
		while (j < count && msgs[j].uid < f->uids[i])
			j++;
		if (j < count && msgs[j].uid == f->uids[i]) {
			f->uids[kept] = f->uids[i];
			f->msns[kept++] = f->msns[i];
		}
	}
	f->n = kept;
	store_msg_list_free(&msgs, count);
}

static void fetch_work(void *arg)
{
	struct imap_fetch *f = arg;
	size_t end = f->next;
	struct store_list_query q = { 0, 0, f->changedsince };
	struct store_msg *msgs = NULL;
	size_t count = 0;

	if (!f->prepared) {
		f->prepared = true;
		if (f->want_vanished)
			fetch_vanished(f);
		if (f->changedsince != 0 && f->n > 0)
			fetch_narrow(f);
		if (f->next >= f->n)
			return;
	}
	while (end < f->n && end - f->next < FETCH_BATCH_MSGS)
		end++;
	q.uid_min = f->uids[f->next];
	q.uid_max = f->uids[end - 1];
	if (f->want_seen && !f->readonly) {
		/* RFC 9051 §6.4.5: BODY[] without PEEK sets \Seen. */
		struct store_uid_range r = { q.uid_min, q.uid_max };
		struct store_flag_result res = { 0 };
		store_flags_update(f->acct, f->mailbox_id, &r, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
				   NULL, 0, 0, &res, NULL);
		store_flag_result_clear(&res);
	}
	if (store_msg_list(f->acct, f->mailbox_id, &q, &msgs, &count, NULL) != STORE_OK) {
		f->fail = "[SERVERBUG] Cannot read the mailbox index";
		f->next = f->n;
		return;
	}
	size_t j = 0;
	for (size_t i = f->next; i < end; i++) {
		while (j < count && msgs[j].uid < f->uids[i])
			j++;
		if (j < count && msgs[j].uid == f->uids[i])
			fetch_one(f, f->uids[i], f->msns[i], &msgs[j]);
		if (batch_bytes(f) > FETCH_BATCH_BYTES) {
			end = i + 1;
			break;
		}
	}
	f->next = end;
	store_msg_list_free(&msgs, count);
}

/* ---------------- the loop: writing a batch ---------------- */

static void fetch_done(void *session, void *arg);

static void fetch_finish(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	char *tag = xstrdup(f->tag);
	const char *fail = f->fail;

	if (fail)
		imap_tagged(s, tag, "%s NO %s", tag, fail);
	else
		imap_tagged(s, tag, "%s OK FETCH completed", tag);
	imap_fetch_free(s);
	free(tag);
	imap_command_done(s);
}

/* True when the client has not yet read what was written: stop producing and ask net to call
 * back once the queue is down to the low-water mark. Every kind of output waits here (text
 * built in memory as much as mapped ranges), so a slow reader is slowed down, never left to
 * pile up output until net drops it. */
static bool fetch_output_full(struct imap_session *s)
{
	if (net_conn_output_length(s->conn) < IMAP_OUTPUT_HIGH_WATER)
		return false;
	s->fetch->waiting_drain = true;
	net_conn_want_drain(s->conn, IMAP_OUTPUT_LOW_WATER);
	return true;
}

static void fetch_pump(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;

	f->waiting_drain = false;
	while (f->seg_i < f->seg_count) {
		struct fseg *g = &f->segs[f->seg_i];
		const uint8_t *data = g->data ? g->data : g->text.data;
		size_t len = g->data ? g->len : g->text.len;

		if (net_conn_is_closing(s->conn))
			break;
		if (fetch_output_full(s))
			return;
		size_t n = len - f->seg_off;
		if (n > FETCH_SLICE)
			n = FETCH_SLICE;
		net_conn_write(s->conn, data + f->seg_off, n);
		f->seg_off += n;
		if (f->seg_off == len) {
			f->seg_i++;
			f->seg_off = 0;
		}
	}
	batch_clear(f);
	if (f->next < f->n && !net_conn_is_closing(s->conn)) {
		/* The next batch is built only once this one is mostly read: at most one
		 * batch and the high-water mark of output per FETCH. */
		if (fetch_output_full(s))
			return;
		f->job_running = true;
		net_conn_offload(s->conn, fetch_work, fetch_done, f);
		return;
	}
	fetch_finish(s);
}

void imap_fetch_drained(struct imap_session *s)
{
	if (s->fetch != NULL && s->fetch->waiting_drain && !s->fetch->job_running)
		fetch_pump(s);
}

static void fetch_done(void *session, void *arg)
{
	struct imap_session *s = session;

	(void)arg;
	s->fetch->job_running = false;
	fetch_pump(s);
}

/* fetch-modifiers (RFC 4466): " (CHANGEDSINCE n [VANISHED])" in any order. */
static bool parse_fetch_modifiers(struct imap_parser *ps, struct imap_fetch *f)
{
	if (!imap_peek(ps, ' '))
		return true;
	if (!imap_parse_sp(ps) || !imap_peek(ps, '('))
		return false;
	ps->p++;
	for (int n = 0; !imap_peek(ps, ')'); n++) {
		struct imap_slice a;

		if ((n > 0 && !imap_parse_sp(ps)) || n > 4 || !imap_parse_atom(ps, &a))
			return false;
		if (imap_slice_ieq(&a, "CHANGEDSINCE")) {
			if (!imap_parse_sp(ps) || !imap_parse_modseq(ps, &f->changedsince))
				return false;
		} else if (imap_slice_ieq(&a, "VANISHED")) {
			f->want_vanished = true;
		} else {
			ps->error = "Unknown FETCH modifier";
			return false;
		}
	}
	ps->p++;
	if (f->changedsince == 0 && f->want_vanished) {
		ps->error = "VANISHED needs CHANGEDSINCE";
		return false;
	}
	return true;
}

void imap_fetch_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid)
{
	struct imap_fetch *f = xcalloc(1, sizeof(*f));
	struct imap_seqset set;
	struct store_uid_range *r = NULL;
	size_t nr = 0;

	if (!imap_parse_seqset(ps, &set)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid sequence set");
		fetch_destroy(f);
		return;
	}
	if (!imap_parse_sp(ps) || !parse_fetch_atts(ps, f) || !parse_fetch_modifiers(ps, f) ||
	    !imap_parse_crlf(ps)) {
		imap_bad(s, tag, ps->error ? ps->error : "Invalid FETCH arguments");
		imap_seqset_free(&set);
		fetch_destroy(f);
		return;
	}
	/* RFC 7162 §3.2.6: VANISHED only in UID FETCH, once QRESYNC is enabled. */
	if (f->want_vanished && (!uid || !s->enabled_qresync)) {
		imap_bad(s, tag, "VANISHED needs UID FETCH and ENABLE QRESYNC");
		imap_seqset_free(&set);
		fetch_destroy(f);
		return;
	}
	if (f->want_vanished) {
		/* The set as sent, "*" being the highest UID the client knows of. */
		uint32_t max = s->sel->count > 0 ? s->sel->uids[s->sel->count - 1] : 0;

		f->known = xmalloc((set.count ? set.count : 1) * sizeof(*f->known));
		for (size_t i = 0; i < set.count; i++) {
			uint32_t a = set.r[i].first == UINT32_MAX ? max : set.r[i].first;
			uint32_t b = set.r[i].last == UINT32_MAX ? max : set.r[i].last;

			f->known[i].first = a < b ? a : b;
			f->known[i].last = a < b ? b : a;
		}
		f->known_count = set.count;
		f->mailbox = xstrdup(s->sel->name);
	}
	/* RFC 7162 §3.1: MODSEQ and CHANGEDSINCE turn CONDSTORE on; once on, every FETCH that
	 * reports flags carries MODSEQ. */
	if (f->want_modseq || f->changedsince != 0)
		imap_condstore_enable(s);
	if (f->changedsince != 0 || (s->enabled_condstore && f->need_flags))
		f->want_modseq = true;
	if (uid) {
		imap_seqset_uids(s->sel, &set, &r, &nr);
	} else if (!imap_seqset_msn_to_uids(s->sel, &set, &r, &nr)) {
		imap_bad(s, tag, "Invalid message sequence number");
		imap_seqset_free(&set);
		fetch_destroy(f);
		return;
	}
	imap_seqset_free(&set);
	f->readonly = s->sel->readonly;
	if (f->want_seen && !f->readonly && !f->need_flags) {
		/* The flag change is reported in the same response. */
		add_item(f, FI_FLAGS);
		f->need_flags = true;
	}
	f->uids = xmalloc((s->sel->count + 1) * sizeof(uint32_t));
	f->msns = xmalloc((s->sel->count + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < s->sel->count; i++) {
		if (imap_uid_in_ranges(s->sel->uids[i], r, nr)) {
			f->uids[f->n] = s->sel->uids[i];
			f->msns[f->n] = (uint32_t)i + 1;
			f->n++;
		}
	}
	free(r);
	f->tag = xstrdup(tag);
	f->acct = s->acct;
	f->mailbox_id = s->sel->id;
	if (!s->enabled_rev2 && s->sel->recent_count > 0) {
		f->recent_count = s->sel->recent_count;
		f->recent = xmalloc(f->recent_count * sizeof(*f->recent));
		memcpy(f->recent, s->sel->recent, f->recent_count * sizeof(*f->recent));
	}
	s->fetch = f;
	if (f->n == 0 && !f->want_vanished) {
		fetch_finish(s);
		return;
	}
	s->busy = true;
	f->job_running = true;
	net_conn_offload(s->conn, fetch_work, fetch_done, f);
}

void imap_cmd_fetch(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_fetch_run(s, tag, ps, false);
}
