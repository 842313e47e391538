/* Arguments shared by several commands: mailbox names, sequence sets (RFC 9051 §9
 * sequence-set), flag lists, dates, and the MSN/UID mapping of the selected view. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/core.h"
#include "session.h"

char *imap_parse_mailbox(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	return imap_parse_mailbox_ex(s, tag, ps, false);
}

char *imap_parse_mailbox_ex(struct imap_session *s, const char *tag, struct imap_parser *ps,
			    bool strip_separator)
{
	struct imap_slice raw;
	struct buf utf8;
	char canon[LIMIT_MAILBOX_NAME + 1];
	struct store_err err = { STORE_OK, "" };

	if (!imap_parse_astring(ps, &raw)) {
		imap_bad(s, tag, "Expected a mailbox name");
		return NULL;
	}
	/* CVE-2019-11500: NUL and line ends never make it into a name. */
	if (imap_slice_has_ctl(&raw)) {
		imap_bad(s, tag, "Control characters in mailbox name");
		return NULL;
	}
	if (raw.len > LIMIT_MAILBOX_NAME * 4) {
		imap_tagged(s, tag, "%s NO [LIMIT] Mailbox name too long", tag);
		return NULL;
	}
	buf_init(&utf8);
	if (s->enabled_utf8) {
		/* RFC 6855 §3: after ENABLE UTF8=ACCEPT names are UTF-8 as they are. */
		if (!imap_utf8_valid(raw.data, raw.len)) {
			imap_tagged(s, tag, "%s NO [CANNOT] Mailbox name is not valid UTF-8", tag);
			buf_free(&utf8);
			return NULL;
		}
		buf_append(&utf8, raw.data, raw.len);
	} else if (imap_mutf7_to_utf8(raw.data, raw.len, &utf8) < 0) {
		/* RFC 3501 §5.1.3 / RFC 9051 Appendix A: refuse malformed modified UTF-7. */
		imap_tagged(s, tag, "%s NO [CANNOT] Invalid modified UTF-7 in mailbox name", tag);
		buf_free(&utf8);
		return NULL;
	}
	/* RFC 9051 §6.3.4: CREATE "foo/" creates "foo". */
	if (strip_separator && utf8.len > 1 && utf8.data[utf8.len - 1] == '/')
		utf8.len--;
	if (store_mailbox_name_check(buf_cstr(&utf8), canon, &err) != STORE_OK) {
		imap_tagged(s, tag, "%s NO [CANNOT] %s", tag,
			    err.text[0] ? err.text : "Invalid mailbox name");
		buf_free(&utf8);
		return NULL;
	}
	buf_free(&utf8);
	return xstrdup(canon);
}

void imap_append_mailbox(struct imap_session *s, struct buf *out, const char *name)
{
	imap_append_mbox(out, name, s->enabled_utf8);
}

void imap_append_mbox(struct buf *out, const char *name, bool utf8)
{
	struct buf enc;

	buf_init(&enc);
	if (utf8 || imap_utf8_to_mutf7(name, &enc) < 0) {
		buf_reset(&enc);
		buf_append_str(&enc, name);
	}
	/* Plain atoms go out bare (clients compare "INBOX" literally); others quoted. */
	bool atom = enc.len > 0 && !(enc.len == 3 && str_nieq((const char *)enc.data, "NIL", 3));
	for (size_t i = 0; atom && i < enc.len; i++) {
		uint8_t c = enc.data[i];
		atom = c > ' ' && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
	}
	bool quotable = true;
	for (size_t i = 0; i < enc.len; i++)
		quotable &= enc.data[i] >= ' ' && enc.data[i] != 0x7f;
	if (atom) {
		buf_append(out, enc.data, enc.len);
	} else if (quotable) {
		/* Mailbox names have no controls; UTF-8 is fine in a quoted string once
		 * UTF8=ACCEPT is enabled (RFC 6855 §3), and mUTF-7 is ASCII. */
		buf_append_byte(out, '"');
		for (size_t i = 0; i < enc.len; i++) {
			if (enc.data[i] == '"' || enc.data[i] == '\\')
				buf_append_byte(out, '\\');
			buf_append_byte(out, enc.data[i]);
		}
		buf_append_byte(out, '"');
	} else {
		mime_imap_string(out, (const char *)enc.data, enc.len);
	}
	buf_free(&enc);
}

/* ---------------- sequence sets ---------------- */

static bool parse_seq_number(struct imap_parser *ps, uint32_t *n_r)
{
	if (imap_peek(ps, '*')) {
		ps->p++;
		*n_r = UINT32_MAX;
		return true;
	}
	if (imap_peek(ps, '$')) {
		/* RFC 9051 §6.4.4.1 SEARCHRES is not offered. */
		ps->error = "Saved search results ($) are not supported";
		return false;
	}
	if (!imap_parse_number(ps, n_r) || *n_r == 0) {
		if (ps->error == NULL || *n_r == 0)
			ps->error = "Invalid sequence set";
		return false;
	}
	/* UINT32_MAX stands for "*" from here on. The number 4294967295 itself means that UID,
	 * which the store never assigns (its uidnext stops there), so it becomes the highest
	 * assignable one: "n:4294967295" past the last UID then matches nothing instead of
	 * the last message (RFC 9051 §9, only "*" means the last). */
	if (*n_r == UINT32_MAX)
		*n_r = UINT32_MAX - 1;
	return true;
}

bool imap_parse_seqset(struct imap_parser *ps, struct imap_seqset *set_r)
{
	size_t cap = 0;

	set_r->r = NULL;
	set_r->count = 0;
	set_r->saved = false;
	if (imap_peek(ps, '$')) { /* RFC 5182 §2.2: "$" stands alone, never in a list */
		ps->p++;
		set_r->saved = true;
		return true;
	}
	for (;;) {
		uint32_t a, b;

		if (!parse_seq_number(ps, &a))
			goto fail;
		b = a;
		if (imap_peek(ps, ':')) {
			ps->p++;
			if (!parse_seq_number(ps, &b))
				goto fail;
		}
		if (set_r->count == cap) {
			cap = cap ? cap * 2 : 4;
			set_r->r = xrealloc(set_r->r, cap * sizeof(*set_r->r));
		}
		/* Ranges may come in either order (RFC 9051 §9 seq-range). */
		set_r->r[set_r->count].first = a < b ? a : b;
		set_r->r[set_r->count].last = a < b ? b : a;
		set_r->count++;
		if (!imap_peek(ps, ','))
			return true;
		ps->p++;
	}
fail:
	if (ps->error == NULL)
		ps->error = "Invalid sequence set";
	imap_seqset_free(set_r);
	return false;
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->count = 0;
}

static void ranges_push(struct store_uid_range **r, size_t *n, size_t *cap, uint32_t a, uint32_t b)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		*r = xrealloc(*r, *cap * sizeof(**r));
	}
	(*r)[*n].first = a;
	(*r)[*n].last = b;
	(*n)++;
}

/* "$": the saved UIDs still in the view, those adjacent in the view as one range (no UID
 * between them can be outside it, as for sequence ranges). */
static void saved_ranges(const struct imap_selected *sel, struct store_uid_range **ranges_r,
			 size_t *count_r)
{
	size_t cap = 1;
	uint32_t last_msn = 0;

	/* Never NULL: to the store, no ranges at all means every message. */
	*ranges_r = xmalloc(sizeof(**ranges_r));
	for (size_t i = 0; i < sel->saved_count; i++) {
		uint32_t msn = imap_msn_of(sel, sel->saved_uids[i]);
		if (msn == 0)
			continue; /* expunged since it was saved */
		if (*count_r > 0 && msn == last_msn + 1)
			(*ranges_r)[*count_r - 1].last = sel->saved_uids[i];
		else
			ranges_push(ranges_r, count_r, &cap, sel->saved_uids[i], sel->saved_uids[i]);
		last_msn = msn;
	}
}

bool imap_seqset_msn_to_uids(const struct imap_selected *sel, const struct imap_seqset *set,
			     struct store_uid_range **ranges_r, size_t *count_r)
{
	size_t cap = 0;
	uint32_t count = (uint32_t)sel->count;

	*ranges_r = NULL;
	*count_r = 0;
	if (set->saved) {
		saved_ranges(sel, ranges_r, count_r);
		return true;
	}
	for (size_t i = 0; i < set->count; i++) {
		uint32_t a = set->r[i].first == UINT32_MAX ? count : set->r[i].first;
		uint32_t b = set->r[i].last == UINT32_MAX ? count : set->r[i].last;
		if (a > b) {
			uint32_t t = a;
			a = b;
			b = t;
		}
		/* RFC 9051 §9: a sequence number beyond the mailbox is an error. */
		if (a == 0 || b > count) {
			free(*ranges_r);
			*ranges_r = NULL;
			*count_r = 0;
			return false;
		}
		/* Consecutive MSNs map to the UID interval between their UIDs: no UID in
		 * between can be outside the view (new UIDs are always higher). */
		ranges_push(ranges_r, count_r, &cap, sel->uids[a - 1], sel->uids[b - 1]);
	}
	return true;
}

void imap_seqset_uids(const struct imap_selected *sel, const struct imap_seqset *set,
		      struct store_uid_range **ranges_r, size_t *count_r)
{
	size_t cap = 0;
	uint32_t max = sel->count > 0 ? sel->uids[sel->count - 1] : 0;

	*ranges_r = NULL;
	*count_r = 0;
	if (set->saved) {
		saved_ranges(sel, ranges_r, count_r);
		return;
	}
	for (size_t i = 0; i < set->count; i++) {
		uint32_t a = set->r[i].first == UINT32_MAX ? max : set->r[i].first;
		uint32_t b = set->r[i].last == UINT32_MAX ? max : set->r[i].last;
		if (a > b) {
			uint32_t t = a;
			a = b;
			b = t;
		}
		/* Messages the client has not been told about yet stay out of reach. */
		if (b > max)
			b = max;
		if (a == 0)
			a = 1;
		if (a > b)
			continue;
		ranges_push(ranges_r, count_r, &cap, a, b);
	}
}

bool imap_uid_in_ranges(uint32_t uid, const struct store_uid_range *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (uid >= r[i].first && uid <= r[i].last)
			return true;
	return false;
}

size_t imap_view_lower_bound(const struct imap_selected *sel, uint32_t uid)
{
	size_t lo = 0, hi = sel->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sel->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint32_t imap_msn_of(const struct imap_selected *sel, uint32_t uid)
{
	size_t lo = imap_view_lower_bound(sel, uid);

	return lo < sel->count && sel->uids[lo] == uid ? (uint32_t)lo + 1 : 0;
}

void imap_append_uid_set(struct buf *out, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			buf_append_byte(out, ',');
		if (j > i)
			buf_printf(out, "%u:%u", uids[i], uids[j]);
		else
			buf_printf(out, "%u", uids[i]);
		i = j + 1;
	}
}

/* ---------------- flags ---------------- */

static const struct {
	const char *name;
	uint32_t bit;
} imap_system_flags[] = {
	{ "\\Seen", STORE_FLAG_SEEN },	     { "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED }, { "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

void imap_keywords_free(char ***kw, size_t *count)
{
	for (size_t i = 0; i < *count; i++)
		free((*kw)[i]);
	free(*kw);
	*kw = NULL;
	*count = 0;
}

bool imap_parse_flag_list(struct imap_parser *ps, uint32_t *flags_r, char ***kw_r,
			  size_t *kw_count_r, bool allow_recent)
{
	*flags_r = 0;
	*kw_r = NULL;
	*kw_count_r = 0;
	if (!imap_parse_char(ps, '('))
		return false;
	while (!imap_peek(ps, ')')) {
		struct imap_slice a;
		bool system = false;

		if ((*kw_count_r > 0 || *flags_r != 0) && !imap_parse_sp(ps))
			goto fail;
		if (imap_peek(ps, '\\')) {
			ps->p++;
			system = true;
		}
		if (!imap_parse_atom(ps, &a))
			goto fail;
		if (system) {
			bool found = false;
			for (size_t i = 0; i < ARRAY_LEN(imap_system_flags); i++) {
				if (a.len + 1 == strlen(imap_system_flags[i].name) &&
				    str_nieq((const char *)a.data, imap_system_flags[i].name + 1,
					     a.len)) {
					*flags_r |= imap_system_flags[i].bit;
					found = true;
				}
			}
			if (!found && allow_recent && a.len == 6 &&
			    str_nieq((const char *)a.data, "Recent", 6))
				found = true; /* RFC 3501: \Recent may not be set; ignored */
			if (!found) {
				ps->error = "Unknown system flag";
				goto fail;
			}
			continue;
		}
		if (a.len > LIMIT_KEYWORD_LENGTH || memchr(a.data, ']', a.len) != NULL) {
			ps->error = "Invalid keyword";
			goto fail;
		}
		if (*kw_count_r >= LIMIT_KEYWORDS_PER_MAILBOX) {
			ps->error = "Too many keywords";
			goto fail;
		}
		*kw_r = xrealloc(*kw_r, (*kw_count_r + 1) * sizeof(char *));
		(*kw_r)[(*kw_count_r)++] = xstrndup((const char *)a.data, a.len);
	}
	ps->p++;
	return true;
fail:
	if (ps->error == NULL)
		ps->error = "Invalid flag list";
	imap_keywords_free(kw_r, kw_count_r);
	return false;
}

void imap_append_flags(struct buf *out, uint32_t flags, const char *keywords)
{
	imap_append_flags_recent(out, flags, keywords, false);
}

void imap_append_flags_recent(struct buf *out, uint32_t flags, const char *keywords,
			      bool recent)
{
	bool first = !recent;

	buf_append_byte(out, '(');
	if (recent)
		buf_append_str(out, "\\Recent");
	for (size_t i = 0; i < ARRAY_LEN(imap_system_flags); i++) {
		if (flags & imap_system_flags[i].bit) {
			if (!first)
				buf_append_byte(out, ' ');
			buf_append_str(out, imap_system_flags[i].name);
			first = false;
		}
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			buf_append_byte(out, ' ');
		buf_append_str(out, keywords);
	}
	buf_append_byte(out, ')');
}

/* ---------------- dates ---------------- */

static const char imap_months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void imap_append_date_time(struct buf *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		   imap_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool parse_digits(const uint8_t **p, const uint8_t *end, unsigned n, unsigned *v_r)
{
	unsigned v = 0;

	for (unsigned i = 0; i < n; i++) {
		if (*p >= end || **p < '0' || **p > '9')
			return false;
		v = v * 10 + (unsigned)(**p - '0');
		(*p)++;
	}
	*v_r = v;
	return true;
}

/* date-text = date-day "-" date-month "-" date-year; date-day is 1 or 2 digits (or a space
 * and one digit in date-day-fixed). */
static bool parse_date_text(const uint8_t **pp, const uint8_t *end, int64_t *day_r)
{
	const uint8_t *p = *pp;
	unsigned d, y;
	int mon = -1;

	if (p < end && *p == ' ')
		p++;
	if (!parse_digits(&p, end, 1, &d))
		return false;
	if (p < end && *p >= '0' && *p <= '9')
		d = d * 10 + (unsigned)(*p++ - '0');
	if (p >= end || *p++ != '-' || end - p < 4)
		return false;
	for (int i = 0; i < 12; i++)
		if (str_nieq((const char *)p, imap_months[i], 3))
			mon = i;
	if (mon < 0 || p[3] != '-')
		return false;
	p += 4;
	if (!parse_digits(&p, end, 4, &y) || d < 1 || d > 31)
		return false;
	*day_r = time_days_from_civil(y, (unsigned)mon + 1, d) * 86400;
	*pp = p;
	return true;
}

bool imap_parse_date(struct imap_parser *ps, int64_t *day_r)
{
	const uint8_t *p = ps->p;
	bool quoted = p < ps->end && *p == '"';

	if (quoted)
		p++;
	if (!parse_date_text(&p, ps->end, day_r) || (quoted && (p >= ps->end || *p++ != '"'))) {
		ps->error = "Invalid date";
		return false;
	}
	ps->p = (uint8_t *)p;
	return true;
}

/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE */
bool imap_parse_date_time(struct imap_parser *ps, int64_t *t_r)
{
	const uint8_t *p = ps->p;
	int64_t day;
	unsigned hh, mm, ss, zh, zm;
	int sign;

	if (p >= ps->end || *p++ != '"' || !parse_date_text(&p, ps->end, &day))
		goto fail;
	if (p >= ps->end || *p++ != ' ' || !parse_digits(&p, ps->end, 2, &hh) || p >= ps->end ||
	    *p++ != ':' || !parse_digits(&p, ps->end, 2, &mm) || p >= ps->end || *p++ != ':' ||
	    !parse_digits(&p, ps->end, 2, &ss) || p >= ps->end || *p++ != ' ' || p >= ps->end)
		goto fail;
	if (*p != '+' && *p != '-')
		goto fail;
	sign = *p++ == '-' ? -1 : 1;
	if (!parse_digits(&p, ps->end, 2, &zh) || !parse_digits(&p, ps->end, 2, &zm) ||
	    p >= ps->end || *p++ != '"' || hh > 23 || mm > 59 || ss > 60 || zm > 59)
		goto fail;
	*t_r = day + hh * 3600 + mm * 60 + ss - sign * (int64_t)(zh * 3600 + zm * 60);
	ps->p = (uint8_t *)p;
	return true;
fail:
	ps->error = "Invalid date-time";
	return false;
}

void imap_append_mailboxid(struct buf *out, uint64_t mailbox_id, uint32_t uidvalidity)
{
	buf_printf(out, "M%08x%llx", uidvalidity, (unsigned long long)mailbox_id);
}

void imap_append_emailid(struct buf *out, uint64_t email_id)
{
	buf_printf(out, "E%016llx", (unsigned long long)email_id);
}

void imap_append_threadid(struct buf *out, uint64_t thread_id)
{
	if (thread_id == 0)
		buf_append_str(out, "NIL");
	else
		buf_printf(out, "(T%016llx)", (unsigned long long)thread_id);
}

bool imap_parse_objectid(const struct imap_slice *id, char prefix, int64_t *num_r)
{
	uint64_t v = 0;

	if (id->len != 17 || id->data[0] != prefix)
		return false;
	for (size_t i = 1; i < id->len; i++) {
		int c = id->data[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return false; /* we write lower case only: objectids are case-sensitive */
		v = v << 4 | (uint64_t)d;
	}
	*num_r = (int64_t)v;
	return true;
}
