/* The keys SORT and THREAD compare (RFC 5256 §2-3, RFC 5957 DISPLAY), taken from the ENVELOPE
 * the store cached when the message was saved, so ordering a mailbox never parses a message
 * again; only THREAD=REFERENCES reads the References field from the header block. Strings are
 * compared as their case-folded UTF-8 octets, the order of i;unicode-casemap. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../mime/mime.h"
#include "parser.h"
#include "sort.h"

/* References beyond this many are ignored (the oldest are kept: they name the thread's root). */
#define SORT_REFS_MAX 1000

/* ---------------- base subject (RFC 5256 §2.1) ---------------- */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; the length matched at p, 0 when none. */
static size_t blob_len(const char *p, size_t len)
{
	size_t i = 1;

	if (len == 0 || p[0] != '[')
		return 0;
	while (i < len && p[i] != '[' && p[i] != ']')
		i++;
	if (i >= len || p[i] != ']')
		return 0;
	i++;
	while (i < len && is_wsp(p[i]))
		i++;
	return i;
}

/* subj-leader's refwd form: *subj-blob ("re" / "fw" ["d"]) *WSP [subj-blob] ":". */
static size_t refwd_leader_len(const char *p, size_t len)
{
	size_t i = 0, b;

	while ((b = blob_len(p + i, len - i)) > 0)
		i += b;
	if (len - i >= 3 && strncasecmp(p + i, "fwd", 3) == 0)
		i += 3;
	else if (len - i >= 2 && (strncasecmp(p + i, "fw", 2) == 0 || strncasecmp(p + i, "re", 2) == 0))
		i += 2;
	else
		return 0;
	while (i < len && is_wsp(p[i]))
		i++;
	i += blob_len(p + i, len - i);
	if (i >= len || p[i] != ':')
		return 0;
	return i + 1;
}

/* Step (1): tabs and line breaks become spaces, runs of spaces one space. */
static char *subject_normalize(const char *subject, size_t len, size_t *len_r)
{
	char *w = xmalloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = subject[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == '\0' || (c == ' ' && n > 0 && w[n - 1] == ' '))
			continue;
		w[n++] = c;
	}
	w[n] = '\0';
	*len_r = n;
	return w;
}

bool imap_base_subject(const char *subject, size_t len, struct buf *out)
{
	size_t n;
	char *w = subject_normalize(subject, len, &n);
	const char *p = w;
	bool reply = false;

	for (;;) {
		/* (2) trailers: "(fwd)" and whitespace */
		for (;;) {
			if (n > 0 && is_wsp(p[n - 1])) {
				n--;
			} else if (n >= 5 && strncasecmp(p + n - 5, "(fwd)", 5) == 0) {
				n -= 5;
				reply = true;
			} else {
				break;
			}
		}
		/* (3)-(5) leaders and blobs, until nothing changes */
		for (bool changed = true; changed;) {
			size_t k;
			changed = false;
			if (n > 0 && is_wsp(p[0])) {
				p++;
				n--;
				changed = true;
			} else if ((k = refwd_leader_len(p, n)) > 0) {
				p += k;
				n -= k;
				reply = true;
				changed = true;
			} else if ((k = blob_len(p, n)) > 0 && k < n) {
				p += k;
				n -= k;
				changed = true;
			}
		}
		/* (6) "[fwd: ...]" wrapper */
		if (n >= 6 && strncasecmp(p, "[fwd:", 5) == 0 && p[n - 1] == ']') {
			p += 5;
			n -= 6;
			reply = true;
			continue;
		}
		break;
	}
	mime_fold_utf8(p, n, out);
	free(w);
	return reply;
}

/* ---------------- keys from the ENVELOPE ---------------- */

static char *fold_dup(const char *text, size_t len)
{
	struct buf b;
	char *out;

	buf_init(&b);
	mime_fold_utf8(text, len, &b);
	out = xstrndup(b.len ? (const char *)b.data : "", b.len);
	buf_free(&b);
	return out;
}

/* The first msg-id "<...>" of text, without the brackets; NULL when none. */
static char *first_msgid(const uint8_t *text, size_t len, size_t *used_r)
{
	const uint8_t *lt = memchr(text, '<', len);
	const uint8_t *gt;

	if (lt == NULL) {
		*used_r = len;
		return NULL;
	}
	gt = memchr(lt, '>', len - (size_t)(lt - text));
	if (gt == NULL) {
		*used_r = len;
		return NULL;
	}
	*used_r = (size_t)(gt + 1 - text);
	if (gt - lt < 2 || memchr(lt + 1, '<', (size_t)(gt - lt - 1)) != NULL)
		return NULL;
	return xstrndup((const char *)lt + 1, (size_t)(gt - lt - 1));
}

struct envelope_address {
	struct imap_slice name, mailbox, host;
	bool found;
};

/* env-from and the other address lists: NIL or "(" 1*address ")"; keeps the first address
 * that is not a group marker (RFC 3501 §7.4.2: host NIL). */
static bool parse_addresses(struct imap_parser *ps, struct envelope_address *first)
{
	struct imap_slice adl;
	bool nil;

	memset(first, 0, sizeof(*first));
	if (imap_parse_nstring(ps, &adl, &nil))
		return nil; /* a string is not an address list */
	ps->error = NULL;
	if (!imap_parse_char(ps, '('))
		return false;
	while (imap_peek(ps, '(')) {
		struct envelope_address a = { 0 };
		bool n1, n2, n3, n4;
		ps->p++;
		if (!imap_parse_nstring(ps, &a.name, &n1) || !imap_parse_sp(ps) ||
		    !imap_parse_nstring(ps, &adl, &n2) || !imap_parse_sp(ps) ||
		    !imap_parse_nstring(ps, &a.mailbox, &n3) || !imap_parse_sp(ps) ||
		    !imap_parse_nstring(ps, &a.host, &n4) || !imap_parse_char(ps, ')'))
			return false;
		if (!first->found && !n4) {
			*first = a;
			first->found = true;
		}
		if (imap_peek(ps, ' '))
			ps->p++;
	}
	return imap_parse_char(ps, ')');
}

static char *address_mailbox(const struct envelope_address *a)
{
	return a->found ? fold_dup((const char *)a->mailbox.data, a->mailbox.len) : xstrdup("");
}

/* RFC 5957 §3: the display name when there is one, else the address itself. */
static char *address_display(const struct envelope_address *a)
{
	struct buf b;
	char *out;

	if (!a->found)
		return xstrdup("");
	buf_init(&b);
	mime_decode_words((const char *)a->name.data, a->name.len, &b);
	while (b.len > 0 && (b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
		b.len--;
	if (b.len == 0) {
		buf_append(&b, a->mailbox.data, a->mailbox.len);
		buf_append_byte(&b, '@');
		buf_append(&b, a->host.data, a->host.len);
	}
	out = fold_dup((const char *)b.data, b.len);
	buf_free(&b);
	return out;
}

/* The value of every key not computed: shared, never freed, never written. */
static char empty_key[] = "";

static void sort_msg_defaults(struct imap_sort_msg *m)
{
	m->sent = m->arrival;
	m->subject = m->from = m->to = m->cc = m->display_from = m->display_to = empty_key;
}

static void free_key(char **field)
{
	if (*field != empty_key)
		free(*field);
	*field = NULL;
}

static void set_str(char **field, char *value)
{
	free_key(field);
	*field = value;
}

void imap_sort_msg_from_envelope(struct imap_sort_msg *m, const char *envelope, unsigned needs)
{
	struct imap_parser ps;
	struct imap_slice date, subject, irt, mid;
	struct envelope_address from, sender, reply_to, to, cc, bcc;
	bool nil_date, nil_subject, nil_irt, nil_mid;
	char *copy;

	sort_msg_defaults(m);
	if (envelope == NULL)
		return;
	copy = xstrdup(envelope);
	imap_parser_init(&ps, (uint8_t *)copy, strlen(copy));
	if (!imap_parse_char(&ps, '(') || !imap_parse_nstring(&ps, &date, &nil_date) ||
	    !imap_parse_sp(&ps) || !imap_parse_nstring(&ps, &subject, &nil_subject) ||
	    !imap_parse_sp(&ps) || !parse_addresses(&ps, &from) || !imap_parse_sp(&ps) ||
	    !parse_addresses(&ps, &sender) || !imap_parse_sp(&ps) ||
	    !parse_addresses(&ps, &reply_to) || !imap_parse_sp(&ps) || !parse_addresses(&ps, &to) ||
	    !imap_parse_sp(&ps) || !parse_addresses(&ps, &cc) || !imap_parse_sp(&ps) ||
	    !parse_addresses(&ps, &bcc) || !imap_parse_sp(&ps) ||
	    !imap_parse_nstring(&ps, &irt, &nil_irt) || !imap_parse_sp(&ps) ||
	    !imap_parse_nstring(&ps, &mid, &nil_mid)) {
		free(copy);
		return;
	}
	if (!nil_date && (needs & IMAP_SORT_NEED_DATE)) {
		int64_t t;
		int tz;
		if (mime_parse_date((const char *)date.data, date.len, &t, &tz) == 0) {
			m->sent = t;
			m->sent_from_date = true;
		}
	}
	if (!nil_subject && (needs & IMAP_SORT_NEED_SUBJECT)) {
		struct buf dec, base;
		buf_init(&dec);
		buf_init(&base);
		mime_decode_words((const char *)subject.data, subject.len, &dec);
		m->subject_is_reply = imap_base_subject((const char *)dec.data, dec.len, &base);
		set_str(&m->subject, xstrndup(base.len ? (const char *)base.data : "", base.len));
		buf_free(&dec);
		buf_free(&base);
	}
	if (needs & IMAP_SORT_NEED_FROM)
		set_str(&m->from, address_mailbox(&from));
	if (needs & IMAP_SORT_NEED_TO)
		set_str(&m->to, address_mailbox(&to));
	if (needs & IMAP_SORT_NEED_CC)
		set_str(&m->cc, address_mailbox(&cc));
	if (needs & IMAP_SORT_NEED_DISPLAYFROM)
		set_str(&m->display_from, address_display(&from));
	if (needs & IMAP_SORT_NEED_DISPLAYTO)
		set_str(&m->display_to, address_display(&to));
	if (!(needs & IMAP_SORT_NEED_IDS)) {
		free(copy);
		return;
	}
	if (!nil_mid) {
		size_t used;
		m->message_id = first_msgid(mid.data, mid.len, &used);
	}
	if (!nil_irt) {
		/* kept until imap_sort_msg_refs looks for References */
		size_t used;
		char *id = first_msgid(irt.data, irt.len, &used);
		if (id != NULL) {
			m->refs = xmalloc(sizeof(*m->refs));
			m->refs[0] = id;
			m->ref_count = 1;
		}
	}
	free(copy);
}

/* The unfolded value of the first NAME field of the header block, false when absent. */
static bool header_field(const uint8_t *data, size_t len, const char *name, struct buf *out)
{
	size_t nlen = strlen(name);
	size_t i = 0;

	while (i < len) {
		size_t eol = i;
		while (eol < len && data[eol] != '\n')
			eol++;
		size_t line_len = eol - i;
		if (line_len == 0 || (line_len == 1 && data[i] == '\r'))
			return false; /* end of the header block */
		if (line_len > nlen && strncasecmp((const char *)data + i, name, nlen) == 0 &&
		    data[i + nlen] == ':') {
			size_t start = i + nlen + 1, end = eol;
			/* continuation lines */
			while (end + 1 < len && (data[end + 1] == ' ' || data[end + 1] == '\t')) {
				end++;
				while (end < len && data[end] != '\n')
					end++;
			}
			mime_header_unfold(data + start, end - start, out);
			return true;
		}
		i = eol + 1;
	}
	return false;
}

void imap_sort_msg_refs(struct imap_sort_msg *m, const uint8_t *data, size_t len)
{
	struct buf v;

	buf_init(&v);
	if (header_field(data, len, "References", &v)) {
		const uint8_t *p = v.data;
		size_t left = v.len;
		char **refs = NULL;
		size_t n = 0;
		while (left > 0 && n < SORT_REFS_MAX) {
			size_t used;
			char *id = first_msgid(p, left, &used);
			if (id != NULL) {
				refs = xrealloc(refs, (n + 1) * sizeof(*refs));
				refs[n++] = id;
			}
			p += used;
			left -= used;
		}
		if (n > 0) { /* References wins over In-Reply-To (RFC 5256 §2.2 step 1) */
			for (size_t i = 0; i < m->ref_count; i++)
				free(m->refs[i]);
			free(m->refs);
			m->refs = refs;
			m->ref_count = n;
		}
	}
	buf_free(&v);
}

void imap_sort_msg_clear(struct imap_sort_msg *m)
{
	if (m->borrowed) {
		memset(m, 0, sizeof(*m));
		return;
	}
	free_key(&m->subject);
	free_key(&m->from);
	free_key(&m->to);
	free_key(&m->cc);
	free_key(&m->display_from);
	free_key(&m->display_to);
	free(m->message_id);
	for (size_t i = 0; i < m->ref_count; i++)
		free(m->refs[i]);
	free(m->refs);
	memset(m, 0, sizeof(*m));
}

/* ---------------- keys kept in the index ---------------- */

/* Format 1, integers little-endian:
 *   u8 version, u8 flags (KEPT_*), i64 sent, u32 ref count,
 *   then subject, from, to, cc, display from, display to, message-id and each ref as
 *   u32 length, the bytes and a NUL (so a decoded key is a C string in place).
 * A message without Message-ID keeps an empty one with KEPT_HAS_MSGID clear. A format change
 * takes a new version: older keys then read as missing and are derived again. */
#define KEPT_VERSION 1
#define KEPT_HEADER (1 + 1 + 8 + 4)
#define KEPT_STRINGS 7
enum {
	KEPT_REFS_KNOWN = 1 << 0,
	KEPT_SUBJECT_REPLY = 1 << 1,
	KEPT_SENT_FROM_DATE = 1 << 2,
	KEPT_HAS_MSGID = 1 << 3,
};

static void put_u32(struct buf *out, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	buf_append(out, b, sizeof(b));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_string(struct buf *out, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	put_u32(out, (uint32_t)len);
	buf_append(out, s != NULL ? s : "", len);
	buf_append_byte(out, '\0');
}

void imap_sort_keys_encode(const struct imap_sort_msg *m, bool refs_known, struct buf *out)
{
	uint64_t sent = (uint64_t)m->sent;
	uint8_t flags = (uint8_t)((refs_known ? KEPT_REFS_KNOWN : 0) |
				  (m->subject_is_reply ? KEPT_SUBJECT_REPLY : 0) |
				  (m->sent_from_date ? KEPT_SENT_FROM_DATE : 0) |
				  (m->message_id != NULL ? KEPT_HAS_MSGID : 0));

	buf_append_byte(out, KEPT_VERSION);
	buf_append_byte(out, flags);
	for (int i = 0; i < 8; i++)
		buf_append_byte(out, (uint8_t)(sent >> (8 * i)));
	put_u32(out, (uint32_t)m->ref_count);
	put_string(out, m->subject);
	put_string(out, m->from);
	put_string(out, m->to);
	put_string(out, m->cc);
	put_string(out, m->display_from);
	put_string(out, m->display_to);
	put_string(out, m->message_id);
	for (size_t i = 0; i < m->ref_count; i++)
		put_string(out, m->refs[i]);
}

bool imap_sort_keys_check(const uint8_t *keys, size_t len, size_t *ref_count_r,
			  bool *refs_known_r)
{
	size_t at = KEPT_HEADER, strings;

	if (keys == NULL || len < KEPT_HEADER || keys[0] != KEPT_VERSION)
		return false;
	*ref_count_r = get_u32(keys + 10);
	*refs_known_r = (keys[1] & KEPT_REFS_KNOWN) != 0;
	if (*ref_count_r > len / 5) /* each string takes at least 5 bytes */
		return false;
	strings = KEPT_STRINGS + *ref_count_r;
	/* every string fits and ends in its NUL, so decoding needs no more checks */
	for (size_t i = 0; i < strings; i++) {
		if (len - at < 5)
			return false;
		size_t slen = get_u32(keys + at);
		if (slen > len - at - 5 || keys[at + 4 + slen] != '\0')
			return false;
		at += 5 + slen;
	}
	return at == len;
}

void imap_sort_keys_arena_init(struct imap_sort_keys_arena *a)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->bytes);
	buf_append_byte(&a->bytes, '\0'); /* offset 0: every key not taken */
}

void imap_sort_keys_arena_free(struct imap_sort_keys_arena *a)
{
	buf_free(&a->bytes);
	free(a->refs);
	free(a->ref_ptrs);
	memset(a, 0, sizeof(*a));
}

/* Copies the string at *at (which moves past it) into the arena when wanted; its offset
 * there, 0 ("") when not wanted. */
static size_t take_string(const uint8_t *keys, size_t *at, bool wanted,
			  struct imap_sort_keys_arena *a)
{
	size_t len = get_u32(keys + *at), offset = 0;

	if (wanted && len > 0) {
		offset = a->bytes.len;
		buf_append(&a->bytes, keys + *at + 4, len + 1);
	}
	*at += 5 + len;
	return offset;
}

/* An arena offset kept in a string field until imap_sort_keys_arena_finish. */
static char *offset_field(size_t offset)
{
	return (char *)(uintptr_t)offset;
}

void imap_sort_keys_take(struct imap_sort_msg *m, const uint8_t *keys, unsigned needs,
			 struct imap_sort_keys_arena *a)
{
	size_t at = KEPT_HEADER, msgid, refs = get_u32(keys + 10);
	uint64_t sent = 0;
	bool ids = (needs & IMAP_SORT_NEED_IDS) != 0;

	for (int i = 0; i < 8; i++)
		sent |= (uint64_t)keys[2 + i] << (8 * i);
	m->taken = true;
	m->sent_from_date = (keys[1] & KEPT_SENT_FROM_DATE) != 0;
	m->sent = m->sent_from_date ? (int64_t)sent : m->arrival;
	m->subject_is_reply = (keys[1] & KEPT_SUBJECT_REPLY) != 0;
	m->subject = offset_field(take_string(keys, &at, needs & IMAP_SORT_NEED_SUBJECT, a));
	m->from = offset_field(take_string(keys, &at, needs & IMAP_SORT_NEED_FROM, a));
	m->to = offset_field(take_string(keys, &at, needs & IMAP_SORT_NEED_TO, a));
	m->cc = offset_field(take_string(keys, &at, needs & IMAP_SORT_NEED_CC, a));
	m->display_from = offset_field(take_string(keys, &at, needs & IMAP_SORT_NEED_DISPLAYFROM, a));
	m->display_to = offset_field(take_string(keys, &at, needs & IMAP_SORT_NEED_DISPLAYTO, a));
	msgid = take_string(keys, &at, ids, a);
	/* an id is never empty, so offset 0 means none */
	m->message_id = ids && (keys[1] & KEPT_HAS_MSGID) ? offset_field(msgid) : NULL;
	m->ref_count = 0;
	m->ref_first = a->ref_count;
	if (!ids)
		return;
	for (size_t i = 0; i < refs; i++) {
		if (a->ref_count == a->ref_cap) {
			a->ref_cap = a->ref_cap ? a->ref_cap * 2 : 1024;
			a->refs = xrealloc(a->refs, a->ref_cap * sizeof(*a->refs));
		}
		a->refs[a->ref_count++] = take_string(keys, &at, true, a);
	}
	m->ref_count = refs;
}

static char *field_pointer(const struct imap_sort_keys_arena *a, char *field)
{
	return (char *)a->bytes.data + (uintptr_t)field;
}

void imap_sort_keys_arena_finish(struct imap_sort_keys_arena *a, struct imap_sort_msg *ms,
				 size_t n)
{
	a->ref_ptrs = xmalloc((a->ref_count + 1) * sizeof(*a->ref_ptrs));
	for (size_t i = 0; i < a->ref_count; i++)
		a->ref_ptrs[i] = (char *)a->bytes.data + a->refs[i];
	for (size_t i = 0; i < n; i++) {
		struct imap_sort_msg *m = &ms[i];
		if (!m->taken)
			continue;
		m->taken = false;
		m->borrowed = true;
		m->subject = field_pointer(a, m->subject);
		m->from = field_pointer(a, m->from);
		m->to = field_pointer(a, m->to);
		m->cc = field_pointer(a, m->cc);
		m->display_from = field_pointer(a, m->display_from);
		m->display_to = field_pointer(a, m->display_to);
		if (m->message_id != NULL)
			m->message_id = field_pointer(a, m->message_id);
		m->refs = m->ref_count > 0 ? a->ref_ptrs + m->ref_first : NULL;
	}
}

/* ---------------- ordering ---------------- */

static void merge_pass(char *base, char *tmp, size_t n, size_t size, imap_cmp_fn *cmp, void *ctx)
{
	if (n < 2)
		return;
	size_t mid = n / 2;
	merge_pass(base, tmp, mid, size, cmp, ctx);
	merge_pass(base + mid * size, tmp, n - mid, size, cmp, ctx);
	size_t i = 0, j = mid, k = 0;
	while (i < mid && j < n) {
		if (cmp(base + j * size, base + i * size, ctx) < 0)
			memcpy(tmp + k++ * size, base + j++ * size, size);
		else
			memcpy(tmp + k++ * size, base + i++ * size, size);
	}
	while (i < mid)
		memcpy(tmp + k++ * size, base + i++ * size, size);
	while (j < n)
		memcpy(tmp + k++ * size, base + j++ * size, size);
	memcpy(base, tmp, n * size);
}

/* merge_pass for elements of a pointer's size, what every sort of this folder orders: each
 * memcpy has a size known at compile time, so it is one move, not a library call (memcpy
 * rather than assignment keeps it valid for size_t elements too). */
#define WORD sizeof(void *)
static void merge_pass_word(char *base, char *tmp, size_t n, imap_cmp_fn *cmp, void *ctx)
{
	if (n < 2)
		return;
	size_t mid = n / 2;
	merge_pass_word(base, tmp, mid, cmp, ctx);
	merge_pass_word(base + mid * WORD, tmp, n - mid, cmp, ctx);
	if (cmp(base + mid * WORD, base + (mid - 1) * WORD, ctx) >= 0)
		return; /* already in order: common for dates that follow arrival */
	size_t i = 0, j = mid, k = 0;
	while (i < mid && j < n) {
		if (cmp(base + j * WORD, base + i * WORD, ctx) < 0)
			memcpy(tmp + k++ * WORD, base + j++ * WORD, WORD);
		else
			memcpy(tmp + k++ * WORD, base + i++ * WORD, WORD);
	}
	while (i < mid)
		memcpy(tmp + k++ * WORD, base + i++ * WORD, WORD);
	/* what is left of the second half is in place already */
	memcpy(base, tmp, k * WORD);
}

void imap_merge_sort(void *base, size_t n, size_t size, imap_cmp_fn *cmp, void *ctx)
{
	if (n < 2)
		return;
	if (size == WORD) {
		char *tmp = xmalloc(n * WORD);
		merge_pass_word(base, tmp, n, cmp, ctx);
		free(tmp);
		return;
	}
	char *tmp = xmalloc(n * size);
	merge_pass(base, tmp, n, size, cmp, ctx); /* depth log2(n): no deep recursion */
	free(tmp);
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_key(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
		   enum imap_sort_key key)
{
	switch (key) {
	case IMAP_SORT_ARRIVAL:
		return cmp_i64(a->arrival, b->arrival);
	case IMAP_SORT_CC:
		return strcmp(a->cc, b->cc);
	case IMAP_SORT_DATE:
		return cmp_i64(a->sent, b->sent);
	case IMAP_SORT_FROM:
		return strcmp(a->from, b->from);
	case IMAP_SORT_SIZE:
		return a->size < b->size ? -1 : a->size > b->size;
	case IMAP_SORT_SUBJECT:
		return strcmp(a->subject, b->subject);
	case IMAP_SORT_TO:
		return strcmp(a->to, b->to);
	case IMAP_SORT_DISPLAYFROM:
		return strcmp(a->display_from, b->display_from);
	case IMAP_SORT_DISPLAYTO:
		return strcmp(a->display_to, b->display_to);
	}
	return 0;
}

struct sort_ctx {
	const struct imap_sort_criterion *crit;
	size_t count;
};

static int cmp_msgs(const void *pa, const void *pb, void *arg)
{
	const struct imap_sort_msg *a = *(struct imap_sort_msg *const *)pa;
	const struct imap_sort_msg *b = *(struct imap_sort_msg *const *)pb;
	const struct sort_ctx *ctx = arg;

	for (size_t i = 0; i < ctx->count; i++) {
		int c = cmp_key(a, b, ctx->crit[i].key);
		if (c != 0)
			return ctx->crit[i].reverse ? -c : c;
	}
	/* RFC 5256 §3: all keys equal, the sequence number decides */
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

void imap_sort_msgs(struct imap_sort_msg **msgs, size_t n, const struct imap_sort_criterion *crit,
		    size_t crit_count)
{
	struct sort_ctx ctx = { crit, crit_count };

	imap_merge_sort(msgs, n, sizeof(*msgs), cmp_msgs, &ctx);
}
