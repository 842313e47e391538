/* IMAP renderings of a parsed message: strings, ENVELOPE with RFC 5322 address lists, and
 * BODY / BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2).
 *
 * Choices the RFCs leave open:
 * - Media type, subtype, transfer encoding, disposition type and parameter names go out
 *   uppercased, as the RFC 3501 examples show ("TEXT" "PLAIN" ("CHARSET" "US-ASCII")); values
 *   go out as sent, since boundaries and file names are case-sensitive.
 * - ENVELOPE fields take the first occurrence of a repeated header field (RFC 5322 §3.6 allows
 *   one); this also keeps a message with 100 k To: lines cheap (CVE-2024-23184).
 * - Strings are sent raw (unfolded, encoded-words not decoded) as RFC 3501 asks; an address
 *   without a domain gets host "MISSING_DOMAIN" so that it is not mistaken for group syntax.
 * - A multipart without parsed children (empty, or stopped by a limit) is rendered with one
 *   empty text/plain child, because the grammar requires at least one body. */
#include <stdlib.h>
#include <string.h>

#include "mime_private.h"

/* Quoted strings longer than this go out as literals, which clients handle at any length. */
#define IMAP_QUOTED_MAX 1024

void mime_imap_string(struct buf *out, const char *s, size_t len)
{
	bool literal = len > IMAP_QUOTED_MAX;
	size_t nuls = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			nuls++;
		else if (c == '\r' || c == '\n' || c >= 0x80)
			literal = true;
	}
	if (literal) {
		buf_printf(out, "{%zu}\r\n", len - nuls);
		for (size_t i = 0; i < len; i++) {
			if (s[i] != '\0')
				buf_append_byte(out, (uint8_t)s[i]);
		}
		return;
	}
	buf_append_byte(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			continue;
		if (s[i] == '"' || s[i] == '\\')
			buf_append_byte(out, '\\');
		buf_append_byte(out, (uint8_t)s[i]);
	}
	buf_append_byte(out, '"');
}

void mime_imap_nstring(struct buf *out, const char *s)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		mime_imap_string(out, s, strlen(s));
}

static void imap_string_upper(struct buf *out, const char *s)
{
	char *u = xstrdup(s);

	for (char *c = u; *c; c++)
		*c = (char)mime_upper((unsigned char)*c);
	mime_imap_string(out, u, strlen(u));
	free(u);
}

/* ---- addresses (RFC 5322 §3.4, lenient) ---- */

struct addr_state {
	struct buf phrase;   /* display name: quoted strings unquoted, whitespace collapsed */
	struct buf spec;     /* addr-spec text outside <>: quotes kept, whitespace dropped */
	struct buf comment;  /* last comment, a name for "user@host (Name)" */
	struct buf angle;    /* text inside <> without whitespace and comments */
	bool has_angle;
	bool pending_space;  /* whitespace seen since the last phrase word */
	unsigned emitted;
};

static void addr_reset(struct addr_state *a)
{
	buf_reset(&a->phrase);
	buf_reset(&a->spec);
	buf_reset(&a->comment);
	buf_reset(&a->angle);
	a->has_angle = false;
	a->pending_space = false;
}

static void list_open(struct buf *out, struct addr_state *a)
{
	if (a->emitted++ == 0)
		buf_append_byte(out, '(');
}

static void emit_address(struct buf *out, struct addr_state *a, const char *name, size_t nlen,
			 const char *adl, size_t adl_len, const char *mbox, size_t mlen,
			 const char *host, size_t hlen)
{
	list_open(out, a);
	buf_append_byte(out, '(');
	if (name != NULL && nlen > 0)
		mime_imap_string(out, name, nlen);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ' ');
	if (adl != NULL && adl_len > 0)
		mime_imap_string(out, adl, adl_len);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ' ');
	if (mbox != NULL)
		mime_imap_string(out, mbox, mlen);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ' ');
	if (host != NULL)
		mime_imap_string(out, host, hlen);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ')');
}

/* Ends the mailbox being collected and emits it when it has an address. */
static void addr_finish(struct buf *out, struct addr_state *a)
{
	const char *spec;
	size_t len;
	const char *adl = NULL;
	size_t adl_len = 0;
	const char *name = NULL;
	size_t nlen = 0;

	if (a->has_angle) {
		spec = (const char *)a->angle.data;
		len = a->angle.len;
		name = (const char *)a->phrase.data;
		nlen = a->phrase.len;
		/* Obsolete source route: "@a,@b:user@host" (RFC 5322 §4.4). */
		if (len > 0 && spec[0] == '@') {
			const char *colon = memchr(spec, ':', len);
			if (colon != NULL) {
				adl = spec;
				adl_len = (size_t)(colon - spec);
				len -= adl_len + 1;
				spec = colon + 1;
			}
		}
	} else {
		spec = (const char *)a->spec.data;
		len = a->spec.len;
	}
	if (nlen == 0 && a->comment.len > 0) {
		name = (const char *)a->comment.data;
		nlen = a->comment.len;
	}
	if (len == 0 && !a->has_angle) {
		addr_reset(a);
		return;
	}
	const char *at = NULL;
	for (size_t i = len; i-- > 0;) {
		if (spec[i] == '@') {
			at = spec + i;
			break;
		}
	}
	if (at != NULL) {
		size_t mlen = (size_t)(at - spec);
		emit_address(out, a, name, nlen, adl, adl_len, mlen ? spec : "MISSING_MAILBOX",
			     mlen ? mlen : strlen("MISSING_MAILBOX"), at + 1,
			     len - mlen - 1);
	} else if (len > 0) {
		emit_address(out, a, name, nlen, adl, adl_len, spec, len, "MISSING_DOMAIN",
			     strlen("MISSING_DOMAIN"));
	} else {
		emit_address(out, a, name, nlen, adl, adl_len, "MISSING_MAILBOX",
			     strlen("MISSING_MAILBOX"), "MISSING_DOMAIN", strlen("MISSING_DOMAIN"));
	}
	addr_reset(a);
}

static void phrase_add(struct addr_state *a, const char *s, size_t len)
{
	if (a->pending_space && a->phrase.len > 0)
		buf_append_byte(&a->phrase, ' ');
	a->pending_space = false;
	buf_append(&a->phrase, s, len);
}

/* Reads a quoted string at s[i] == '"'; appends its content unescaped to unq and raw (with
 * quotes) to raw. Returns the index after it. */
static size_t read_quoted(const char *s, size_t len, size_t i, struct buf *unq, struct buf *raw)
{
	size_t start = i;

	for (i++; i < len && s[i] != '"'; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		if (s[i] != '\r' && s[i] != '\n')
			buf_append_byte(unq, (uint8_t)s[i]);
	}
	if (i < len)
		i++;
	buf_append(raw, s + start, i - start);
	return i;
}

/* Reads a comment at s[i] == '('; keeps its text in a->comment. */
static size_t read_comment(const char *s, size_t len, size_t i, struct addr_state *a)
{
	unsigned level = 0;

	buf_reset(&a->comment);
	for (; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			i++;
			buf_append_byte(&a->comment, (uint8_t)s[i]);
		} else if (s[i] == '(') {
			if (level++ > 0)
				buf_append_byte(&a->comment, '(');
		} else if (s[i] == ')') {
			if (--level == 0)
				return i + 1;
			buf_append_byte(&a->comment, ')');
		} else {
			buf_append_byte(&a->comment, (uint8_t)s[i]);
		}
	}
	return i;
}

/* Appends an address list (or NIL) for an unfolded header value. */
static void address_list(struct buf *out, const char *s, size_t len)
{
	struct addr_state a = { .emitted = 0 };
	bool in_group = false;
	struct buf scratch;

	buf_init(&a.phrase);
	buf_init(&a.spec);
	buf_init(&a.comment);
	buf_init(&a.angle);
	buf_init(&scratch);
	for (size_t i = 0; i < len;) {
		char c = s[i];

		if (mime_is_space((unsigned char)c)) {
			a.pending_space = true;
			i++;
		} else if (c == '(') {
			i = read_comment(s, len, i, &a);
			a.pending_space = true;
		} else if (c == '"') {
			buf_reset(&scratch);
			if (a.pending_space && a.phrase.len > 0)
				buf_append_byte(&a.phrase, ' ');
			a.pending_space = false;
			i = read_quoted(s, len, i, &a.phrase, &scratch);
			buf_append(&a.spec, scratch.data, scratch.len);
		} else if (c == '<') {
			struct buf dummy;
			buf_init(&dummy);
			a.has_angle = true;
			buf_reset(&a.angle);
			for (i++; i < len && s[i] != '>';) {
				if (s[i] == '"') {
					buf_reset(&dummy);
					i = read_quoted(s, len, i, &dummy, &a.angle);
				} else if (s[i] == '(') {
					struct buf keep = a.comment;
					buf_init(&a.comment);
					i = read_comment(s, len, i, &a);
					buf_free(&a.comment);
					a.comment = keep;
				} else {
					if (!mime_is_space((unsigned char)s[i]))
						buf_append_byte(&a.angle, (uint8_t)s[i]);
					i++;
				}
			}
			buf_free(&dummy);
			if (i < len)
				i++;
		} else if (c == ':' && !a.has_angle && !in_group) {
			/* RFC 3501 §7.4.2: group start is (NIL NIL "name" NIL). */
			list_open(out, &a);
			buf_append_str(out, "(NIL NIL ");
			mime_imap_string(out, (const char *)a.phrase.data, a.phrase.len);
			buf_append_str(out, " NIL)");
			addr_reset(&a);
			in_group = true;
			i++;
		} else if (c == ';' && in_group) {
			addr_finish(out, &a);
			list_open(out, &a);
			buf_append_str(out, "(NIL NIL NIL NIL)");
			in_group = false;
			i++;
		} else if (c == ',') {
			addr_finish(out, &a);
			i++;
		} else {
			size_t start = i;
			while (i < len && !mime_is_space((unsigned char)s[i]) &&
			       strchr("(\"<:;,", s[i]) == NULL)
				i++;
			if (i == start) {
				/* A ':' or ';' that is not group syntax: keep it as text. */
				i++;
			}
			phrase_add(&a, s + start, i - start);
			buf_append(&a.spec, s + start, i - start);
		}
	}
	addr_finish(out, &a);
	if (in_group) {
		list_open(out, &a);
		buf_append_str(out, "(NIL NIL NIL NIL)");
	}
	if (a.emitted == 0)
		buf_append_str(out, "NIL");
	else
		buf_append_byte(out, ')');
	buf_free(&a.phrase);
	buf_free(&a.spec);
	buf_free(&a.comment);
	buf_free(&a.angle);
	buf_free(&scratch);
}

static void envelope_string(struct buf *out, const struct mime_message *msg,
			    const struct mime_part *part, const char *name)
{
	struct buf v;

	buf_init(&v);
	if (mime_header_get(msg, part, name, 0, &v) < 0 || v.len == 0)
		buf_append_str(out, "NIL");
	else
		mime_imap_string(out, (const char *)v.data, v.len);
	buf_free(&v);
}

/* Appends the address list of the first field named name; returns false when the field is
 * absent or holds no address. */
static bool envelope_addresses(struct buf *out, const struct mime_message *msg,
			       const struct mime_part *part, const char *name)
{
	struct buf v;
	size_t before = out->len;
	bool found;

	buf_init(&v);
	if (mime_header_get(msg, part, name, 0, &v) < 0) {
		buf_append_str(out, "NIL");
		found = false;
	} else {
		address_list(out, (const char *)v.data, v.len);
		found = !(out->len - before == 3 && memcmp(out->data + before, "NIL", 3) == 0);
	}
	buf_free(&v);
	return found;
}

void mime_envelope(const struct mime_message *msg, const struct mime_part *part, struct buf *out)
{
	struct buf from;

	buf_append_byte(out, '(');
	envelope_string(out, msg, part, "date");
	buf_append_byte(out, ' ');
	envelope_string(out, msg, part, "subject");
	buf_append_byte(out, ' ');
	buf_init(&from);
	envelope_addresses(&from, msg, part, "from");
	buf_append(out, from.data, from.len);
	/* RFC 3501 §7.4.2: sender and reply-to default to from. */
	buf_append_byte(out, ' ');
	{
		size_t mark = out->len;
		if (!envelope_addresses(out, msg, part, "sender")) {
			out->len = mark;
			buf_append(out, from.data, from.len);
		}
		buf_append_byte(out, ' ');
		mark = out->len;
		if (!envelope_addresses(out, msg, part, "reply-to")) {
			out->len = mark;
			buf_append(out, from.data, from.len);
		}
	}
	buf_free(&from);
	buf_append_byte(out, ' ');
	envelope_addresses(out, msg, part, "to");
	buf_append_byte(out, ' ');
	envelope_addresses(out, msg, part, "cc");
	buf_append_byte(out, ' ');
	envelope_addresses(out, msg, part, "bcc");
	buf_append_byte(out, ' ');
	envelope_string(out, msg, part, "in-reply-to");
	buf_append_byte(out, ' ');
	envelope_string(out, msg, part, "message-id");
	buf_append_byte(out, ')');
}

/* ---- BODYSTRUCTURE ---- */

static void params_list(struct buf *out, const struct mime_param *params, size_t count)
{
	if (count == 0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_byte(out, '(');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			buf_append_byte(out, ' ');
		imap_string_upper(out, params[i].name);
		buf_append_byte(out, ' ');
		mime_imap_string(out, params[i].value, strlen(params[i].value));
	}
	buf_append_byte(out, ')');
}

/* body-fld-lang: a single string, or a list when the field names several languages. */
static void language_field(struct buf *out, const char *lang)
{
	size_t len, i = 0, n = 0;
	struct buf list;

	if (lang == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	len = strlen(lang);
	buf_init(&list);
	while (i < len) {
		size_t start;

		i = mime_skip_cfws(lang, len, i);
		start = i;
		while (i < len && lang[i] != ',' && lang[i] != '(' &&
		       !mime_is_space((unsigned char)lang[i]))
			i++;
		if (i > start) {
			if (n++ > 0)
				buf_append_byte(&list, ' ');
			mime_imap_string(&list, lang + start, i - start);
		}
		i = mime_skip_cfws(lang, len, i);
		if (i < len && (lang[i] == ',' || i == start))
			i++;
	}
	if (n == 0)
		buf_append_str(out, "NIL");
	else if (n == 1)
		buf_append(out, list.data, list.len);
	else
		buf_printf(out, "(%s)", buf_cstr(&list));
	buf_free(&list);
}

static void disposition_field(struct buf *out, const struct mime_part *p)
{
	if (p->disposition == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_byte(out, '(');
	imap_string_upper(out, p->disposition);
	buf_append_byte(out, ' ');
	params_list(out, p->disp_params, p->disp_param_count);
	buf_append_byte(out, ')');
}

/* dsp, lang, loc: the extension fields every body type ends with. */
static void ext_tail(struct buf *out, const struct mime_part *p)
{
	buf_append_byte(out, ' ');
	disposition_field(out, p);
	buf_append_byte(out, ' ');
	language_field(out, p->language);
	buf_append_byte(out, ' ');
	mime_imap_nstring(out, p->location);
}

static void empty_text_body(struct buf *out, bool extended)
{
	buf_append_str(out, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0");
	if (extended)
		buf_append_str(out, " NIL NIL NIL NIL");
	buf_append_byte(out, ')');
}

static void body(const struct mime_message *msg, const struct mime_part *p, bool extended,
		 struct buf *out)
{
	buf_append_byte(out, '(');
	if (mime_part_is_multipart(p)) {
		/* RFC 3501 §7.4.2: body+ SP subtype [SP params dsp lang loc]. */
		if (p->child_count == 0)
			empty_text_body(out, extended);
		for (const struct mime_part *c = p->first_child; c != NULL; c = c->next_sibling)
			body(msg, c, extended, out);
		buf_append_byte(out, ' ');
		imap_string_upper(out, p->subtype);
		if (extended) {
			buf_append_byte(out, ' ');
			params_list(out, p->params, p->param_count);
			ext_tail(out, p);
		}
		buf_append_byte(out, ')');
		return;
	}
	imap_string_upper(out, p->type);
	buf_append_byte(out, ' ');
	imap_string_upper(out, p->subtype);
	buf_append_byte(out, ' ');
	params_list(out, p->params, p->param_count);
	buf_append_byte(out, ' ');
	mime_imap_nstring(out, p->id);
	buf_append_byte(out, ' ');
	mime_imap_nstring(out, p->description);
	buf_append_byte(out, ' ');
	imap_string_upper(out, p->encoding);
	buf_printf(out, " %zu", p->body_size);
	if (mime_part_is_message(p)) {
		buf_append_byte(out, ' ');
		if (p->message != NULL) {
			mime_envelope(msg, p->message, out);
			buf_append_byte(out, ' ');
			body(msg, p->message, extended, out);
		} else {
			buf_append_str(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ");
			empty_text_body(out, extended);
		}
		buf_printf(out, " %llu", (unsigned long long)p->body_lines);
	} else if (strcmp(p->type, "text") == 0) {
		buf_printf(out, " %llu", (unsigned long long)p->body_lines);
	}
	if (extended) {
		buf_append_byte(out, ' ');
		mime_imap_nstring(out, p->md5);
		ext_tail(out, p);
	}
	buf_append_byte(out, ')');
}

void mime_bodystructure(const struct mime_message *msg, const struct mime_part *part,
			bool extended, struct buf *out)
{
	body(msg, part, extended, out);
}
