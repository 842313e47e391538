/* SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4) with RFC 4731 ESEARCH return
 * options (MIN MAX ALL COUNT), RFC 5267's PARTIAL and UPDATE (search_return.c, context.c)
 * and WITHIN's YOUNGER and OLDER (RFC 5032). The key tree is
 * parsed on the loop (sequence numbers become UIDs there), evaluated as bulk pool work over
 * store_msg_list metadata, opening and parsing a message only for header, body and sent-date
 * keys, once per command, within a work budget (see "evaluation" below). Nesting is limited
 * to SEARCH_DEPTH_MAX levels and SEARCH_KEYS_MAX keys. SORT and THREAD
 * (cmd_sort.c) use the same keys through imap_search_keys_parse and imap_search_match. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/core.h"
#include "session.h"
#include "sort.h"

#define SEARCH_DEPTH_MAX 32
#define SEARCH_KEYS_MAX 1000

enum skind {
	SK_ALL,
	SK_AND,
	SK_OR,
	SK_NOT,
	SK_FLAG,   /* flag set */
	SK_UNFLAG, /* flag clear */
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_HEADER, /* hdr in str, value in str2 */
	SK_BODY,
	SK_TEXT,
	SK_BEFORE,
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE,
	SK_SENTON,
	SK_SENTSINCE,
	SK_LARGER,
	SK_SMALLER,
	SK_UIDS,
	SK_NONE, /* matches nothing */
	SK_MODSEQ, /* RFC 7162 §3.1.5: modseq >= num */
	SK_YOUNGER, /* RFC 5032: INTERNALDATE at or after num (now - interval, when parsed) */
	SK_OLDER,   /* RFC 5032: INTERNALDATE before num */
	SK_SAVEDBEFORE, /* RFC 8514 §4.3: the day of the save date */
	SK_SAVEDON,
	SK_SAVEDSINCE,
	SK_EMAILID, /* RFC 8474 §6: EMAILID equal to num */
	SK_THREADID,
};

struct skey {
	enum skind kind;
	struct skey **kids;
	size_t kid_count;
	uint32_t flag;
	char *str, *str2;
	char *folded; /* the text to find, case-folded (HEADER, BODY, TEXT) */
	int64_t num;
	struct store_uid_range *r;
	size_t nr;
};

struct search_job {
	struct net_conn *conn; /* only for net_conn_gone in the worker */
	struct store_account *acct;
	uint64_t mailbox_id;
	char *tag;
	bool uid;
	bool esearch;
	unsigned ret;
	struct imap_partial partial;
	struct skey *root;
	uint32_t *hits;
	uint64_t *hit_modseqs; /* with a MODSEQ key: for the "(MODSEQ n)" of the reply */
	size_t hit_count;
	bool modseq_key;
	enum store_error error;
	struct store_err err;
	uint64_t budget_left; /* octets still to parse, decode or scan */
	bool stopped;	      /* over_budget or cancelled: the result is incomplete */
	bool over_budget;
	bool cancelled;
};

struct search_parse {
	struct imap_session *s;
	struct imap_parser *ps;
	unsigned keys;
	bool modseq_key;
};

static void skey_free(struct skey *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->kid_count; i++)
		skey_free(k->kids[i]);
	free(k->kids);
	free(k->str);
	free(k->str2);
	free(k->folded);
	free(k->r);
	free(k);
}

static void skey_add(struct skey *parent, struct skey *kid)
{
	parent->kids = xrealloc(parent->kids, (parent->kid_count + 1) * sizeof(*parent->kids));
	parent->kids[parent->kid_count++] = kid;
}

static bool sp_astring(struct search_parse *sp, char **out)
{
	struct imap_slice a;

	if (!imap_parse_sp(sp->ps) || !imap_parse_astring(sp->ps, &a))
		return false;
	if (memchr(a.data, '\0', a.len) != NULL) {
		sp->ps->error = "NUL in search string";
		return false;
	}
	*out = xstrndup((const char *)a.data, a.len);
	return true;
}

/* The needle as the evaluation compares it (mime_text_contains' folding, done once). */
static char *fold_needle(const char *text)
{
	struct buf f;
	char *out;

	buf_init(&f);
	mime_fold_utf8(text, strlen(text), &f);
	out = f.len > 0 ? xstrndup((const char *)f.data, f.len) : xstrdup("");
	buf_free(&f);
	return out;
}

static const struct {
	const char *name;
	enum skind kind;
	uint32_t flag;
} simple_keys[] = {
	{ "ALL", SK_ALL, 0 },
	{ "ANSWERED", SK_FLAG, STORE_FLAG_ANSWERED },
	{ "DELETED", SK_FLAG, STORE_FLAG_DELETED },
	{ "DRAFT", SK_FLAG, STORE_FLAG_DRAFT },
	{ "FLAGGED", SK_FLAG, STORE_FLAG_FLAGGED },
	{ "SEEN", SK_FLAG, STORE_FLAG_SEEN },
	{ "UNANSWERED", SK_UNFLAG, STORE_FLAG_ANSWERED },
	{ "UNDELETED", SK_UNFLAG, STORE_FLAG_DELETED },
	{ "UNDRAFT", SK_UNFLAG, STORE_FLAG_DRAFT },
	{ "UNFLAGGED", SK_UNFLAG, STORE_FLAG_FLAGGED },
	{ "UNSEEN", SK_UNFLAG, STORE_FLAG_SEEN },
};

static const struct {
	const char *name;
	enum skind kind;
} date_keys[] = {
	{ "BEFORE", SK_BEFORE },	 { "ON", SK_ON },	  { "SINCE", SK_SINCE },
	{ "SENTBEFORE", SK_SENTBEFORE }, { "SENTON", SK_SENTON }, { "SENTSINCE", SK_SENTSINCE },
	{ "SAVEDBEFORE", SK_SAVEDBEFORE }, { "SAVEDON", SK_SAVEDON }, { "SAVEDSINCE", SK_SAVEDSINCE },
};

static const char *const header_keys[] = { "BCC", "CC", "FROM", "SUBJECT", "TO" };

static struct skey *parse_key(struct search_parse *sp, unsigned depth);

/* Sequence numbers become UID ranges now, against the view the client sees. */
static void msn_ranges(const struct imap_selected *sel, const struct imap_seqset *set,
		       struct store_uid_range **r, size_t *nr)
{
	uint32_t count = (uint32_t)sel->count;

	*r = xmalloc((set->count + 1) * sizeof(**r));
	*nr = 0;
	for (size_t i = 0; i < set->count; i++) {
		uint32_t a = set->r[i].first == UINT32_MAX ? count : set->r[i].first;
		uint32_t b = set->r[i].last == UINT32_MAX ? count : set->r[i].last;
		if (a > b) {
			uint32_t t = a;
			a = b;
			b = t;
		}
		if (b > count)
			b = count;
		if (a == 0 || a > b)
			continue;
		(*r)[*nr].first = sel->uids[a - 1];
		(*r)[*nr].last = sel->uids[b - 1];
		(*nr)++;
	}
}

/* RFC 3501 §6.4.4 RECENT, OLD (NOT RECENT) and NEW (RECENT UNSEEN) against the UIDs recent
 * in this session (recent.c), taken now: they change only between commands. */
static struct skey *recent_key(const struct imap_session *s, struct skey *k,
			       const struct imap_slice *name)
{
	struct skey *recent = k;

	if (!imap_slice_ieq(name, "RECENT")) {
		recent = xcalloc(1, sizeof(*recent));
		k->kind = imap_slice_ieq(name, "OLD") ? SK_NOT : SK_AND;
		skey_add(k, recent);
		if (k->kind == SK_AND) {
			struct skey *unseen = xcalloc(1, sizeof(*unseen));
			unseen->kind = SK_UNFLAG;
			unseen->flag = STORE_FLAG_SEEN;
			skey_add(k, unseen);
		}
	}
	recent->kind = SK_UIDS;
	if (s->sel->recent_count > 0) {
		recent->nr = s->sel->recent_count;
		recent->r = xmalloc(recent->nr * sizeof(*recent->r));
		memcpy(recent->r, s->sel->recent, recent->nr * sizeof(*recent->r));
	}
	return k;
}

static struct skey *parse_key(struct search_parse *sp, unsigned depth)
{
	struct imap_parser *ps = sp->ps;
	struct skey *k = xcalloc(1, sizeof(*k));
	struct imap_slice a;

	if (depth > SEARCH_DEPTH_MAX || ++sp->keys > SEARCH_KEYS_MAX) {
		ps->error = "[LIMIT] Search too complex";
		goto fail;
	}
	if (imap_peek(ps, '(')) {
		ps->p++;
		k->kind = SK_AND;
		for (int n = 0; !imap_peek(ps, ')'); n++) {
			struct skey *kid;
			if (n > 0 && !imap_parse_sp(ps))
				goto fail;
			kid = parse_key(sp, depth + 1);
			if (kid == NULL)
				goto fail;
			skey_add(k, kid);
		}
		ps->p++;
		if (k->kid_count == 0) {
			ps->error = "Empty search list";
			goto fail;
		}
		return k;
	}
	if (ps->p < ps->end && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '*' ||
				*ps->p == '$')) {
		struct imap_seqset set;
		if (!imap_parse_seqset(ps, &set))
			goto fail;
		k->kind = SK_UIDS;
		if (set.saved)
			imap_seqset_uids(sp->s->sel, &set, &k->r, &k->nr);
		else
			msn_ranges(sp->s->sel, &set, &k->r, &k->nr);
		imap_seqset_free(&set);
		return k;
	}
	if (!imap_parse_atom(ps, &a))
		goto fail;
	if (imap_slice_ieq(&a, "RECENT") || imap_slice_ieq(&a, "OLD") || imap_slice_ieq(&a, "NEW"))
		return recent_key(sp->s, k, &a);
	for (size_t i = 0; i < ARRAY_LEN(simple_keys); i++) {
		if (imap_slice_ieq(&a, simple_keys[i].name)) {
			k->kind = simple_keys[i].kind;
			k->flag = simple_keys[i].flag;
			return k;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(date_keys); i++) {
		if (imap_slice_ieq(&a, date_keys[i].name)) {
			k->kind = date_keys[i].kind;
			if (!imap_parse_sp(ps) || !imap_parse_date(ps, &k->num))
				goto fail;
			return k;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(header_keys); i++) {
		if (imap_slice_ieq(&a, header_keys[i])) {
			k->kind = SK_HEADER;
			k->str = xstrdup(header_keys[i]);
			if (!sp_astring(sp, &k->str2))
				goto fail;
			k->folded = fold_needle(k->str2);
			return k;
		}
	}
	if (imap_slice_ieq(&a, "HEADER")) {
		k->kind = SK_HEADER;
		if (!sp_astring(sp, &k->str) || !sp_astring(sp, &k->str2))
			goto fail;
		k->folded = fold_needle(k->str2);
	} else if (imap_slice_ieq(&a, "BODY") || imap_slice_ieq(&a, "TEXT")) {
		k->kind = imap_slice_ieq(&a, "BODY") ? SK_BODY : SK_TEXT;
		if (!sp_astring(sp, &k->str))
			goto fail;
		k->folded = fold_needle(k->str);
	} else if (imap_slice_ieq(&a, "KEYWORD") || imap_slice_ieq(&a, "UNKEYWORD")) {
		struct imap_slice kw;
		k->kind = imap_slice_ieq(&a, "KEYWORD") ? SK_KEYWORD : SK_UNKEYWORD;
		if (!imap_parse_sp(ps) || !imap_parse_atom(ps, &kw))
			goto fail;
		k->str = xstrndup((const char *)kw.data, kw.len);
	} else if (imap_slice_ieq(&a, "LARGER") || imap_slice_ieq(&a, "SMALLER")) {
		uint64_t n;
		k->kind = imap_slice_ieq(&a, "LARGER") ? SK_LARGER : SK_SMALLER;
		if (!imap_parse_sp(ps) || !imap_parse_number64(ps, &n))
			goto fail;
		k->num = (int64_t)n;
	} else if (imap_slice_ieq(&a, "MODSEQ")) {
		/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer: messages have one
		 * MODSEQ for all their metadata, so the entry is checked and not used. */
		struct imap_slice entry;
		uint64_t v;
		k->kind = SK_MODSEQ;
		if (!imap_parse_sp(ps))
			goto fail;
		if (imap_peek(ps, '"')) {
			if (!imap_parse_string(ps, &entry) || !imap_parse_sp(ps) ||
			    !imap_parse_atom(ps, &entry) || !imap_parse_sp(ps))
				goto fail;
			if (!imap_slice_ieq(&entry, "priv") && !imap_slice_ieq(&entry, "shared") &&
			    !imap_slice_ieq(&entry, "all")) {
				ps->error = "MODSEQ entry type must be priv, shared or all";
				goto fail;
			}
		}
		if (!imap_parse_modseq(ps, &v))
			goto fail;
		k->num = (int64_t)v;
		sp->modseq_key = true;
	} else if (imap_slice_ieq(&a, "SAVEDATESUPPORTED")) {
		/* RFC 8514 §4.3: every mailbox keeps save dates */
		k->kind = SK_ALL;
	} else if (imap_slice_ieq(&a, "EMAILID") || imap_slice_ieq(&a, "THREADID")) {
		/* RFC 8474 §6; an objectid that is not one of ours matches nothing. */
		struct imap_slice id;
		bool email = imap_slice_ieq(&a, "EMAILID");

		if (!imap_parse_sp(ps) || !imap_parse_atom(ps, &id))
			goto fail;
		k->kind = !imap_parse_objectid(&id, email ? 'E' : 'T', &k->num) ? SK_NONE
			  : email ? SK_EMAILID : SK_THREADID;
	} else if (imap_slice_ieq(&a, "YOUNGER") || imap_slice_ieq(&a, "OLDER")) {
		/* RFC 5032 WITHIN: an interval in seconds, counted back from when the command
		 * arrived */
		uint32_t secs;
		k->kind = imap_slice_ieq(&a, "YOUNGER") ? SK_YOUNGER : SK_OLDER;
		if (!imap_parse_sp(ps) || !imap_parse_number(ps, &secs))
			goto fail;
		k->num = (int64_t)time(NULL) - (int64_t)secs;
	} else if (imap_slice_ieq(&a, "NOT")) {
		struct skey *kid;
		k->kind = SK_NOT;
		if (!imap_parse_sp(ps) || (kid = parse_key(sp, depth + 1)) == NULL)
			goto fail;
		skey_add(k, kid);
	} else if (imap_slice_ieq(&a, "OR")) {
		struct skey *kid;
		k->kind = SK_OR;
		for (int i = 0; i < 2; i++) {
			if (!imap_parse_sp(ps) || (kid = parse_key(sp, depth + 1)) == NULL)
				goto fail;
			skey_add(k, kid);
		}
	} else if (imap_slice_ieq(&a, "UID")) {
		struct imap_seqset set;
		k->kind = SK_UIDS;
		if (!imap_parse_sp(ps) || !imap_parse_seqset(ps, &set))
			goto fail;
		if (set.saved) {
			imap_seqset_uids(sp->s->sel, &set, &k->r, &k->nr);
			return k;
		}
		/* "*" is the highest UID in the view. */
		uint32_t max = sp->s->sel->count ? sp->s->sel->uids[sp->s->sel->count - 1] : 0;
		k->r = xmalloc((set.count + 1) * sizeof(*k->r));
		for (size_t i = 0; i < set.count; i++) {
			uint32_t x = set.r[i].first == UINT32_MAX ? max : set.r[i].first;
			uint32_t y = set.r[i].last == UINT32_MAX ? max : set.r[i].last;
			k->r[k->nr].first = x < y ? x : y;
			k->r[k->nr].last = x < y ? y : x;
			k->nr++;
		}
		imap_seqset_free(&set);
	} else {
		ps->error = "Unknown search key";
		goto fail;
	}
	return k;
fail:
	if (ps->error == NULL)
		ps->error = "Invalid search key";
	skey_free(k);
	return NULL;
}

/* The criteria of SEARCH, SORT and THREAD: one or more keys up to the end of the line, as an
 * AND node (heap, the caller frees with skey_free); NULL with ps->error on bad input. */
static struct skey *parse_criteria(struct search_parse *sp)
{
	struct skey *root = xcalloc(1, sizeof(*root));

	root->kind = SK_AND;
	for (int n = 0; !imap_at_end(sp->ps); n++) {
		struct skey *k;
		if (n > 0 && !imap_parse_sp(sp->ps))
			goto bad;
		k = parse_key(sp, 1);
		if (k == NULL)
			goto bad;
		skey_add(root, k);
	}
	if (root->kid_count > 0 && imap_parse_crlf(sp->ps))
		return root;
bad:
	skey_free(root);
	return NULL;
}

/* ---------------- evaluation (worker) ----------------
 *
 * Cost model. A message is opened, parsed and decoded at most once per SEARCH, whatever the
 * number of keys: the first text key builds the message's searchable text (header block
 * unfolded, RFC 2047-decoded, case-folded; then each text part decoded to UTF-8 and
 * case-folded), the first HEADER key on a field name collects that field's folded values, and
 * every later key is one memmem over what is cached. Needles are folded once, when parsed.
 * Pieces of text are joined with NUL, which a needle never contains (sp_astring refuses it),
 * so a match never spans two parts, as when each part was searched alone.
 *
 * Work is charged to the command's budget ([imap] search_budget) in octets: a message's size
 * when it is opened (parsing, decoding and folding it are linear in it, and done once), the
 * header block for each field lookup, and the length of every text scanned for a key. Past the
 * budget the search stops and answers NO [LIMIT]. The search also stops when its connection
 * has gone (net_conn_gone): nobody would read the answer. */

struct header_values {
	char *name;
	bool present;
	struct buf folded; /* the field's values, decoded and folded, NUL-separated */
};

struct eval_ctx {
	struct search_job *job;
	const struct store_msg *m;
	struct store_message *msg;
	struct mime_message *mm;
	bool opened, failed;
	bool text_ready;
	struct buf text;       /* folded header, NUL, folded text parts NUL-separated */
	size_t body_offset;    /* where the parts start in text */
	size_t text_parts;     /* BODY "" matches a message with at least one text part */
	struct header_values *headers;
	size_t header_count;
	int sent_state; /* 0 not looked at, 1 sent_day valid, -1 no usable Date */
	int64_t sent_day;
};

/* Charges n octets of work; false once the budget is spent or nobody waits for the answer. */
static bool charge(struct eval_ctx *c, uint64_t n)
{
	struct search_job *job = c->job;

	if (job->stopped)
		return false;
	if (net_conn_gone(job->conn)) {
		job->stopped = true;
		job->cancelled = true;
		return false;
	}
	if (n > job->budget_left) {
		job->stopped = true;
		job->over_budget = true;
		return false;
	}
	job->budget_left -= n;
	return true;
}

static bool eval_open(struct eval_ctx *c)
{
	if (!c->opened) {
		c->opened = true;
		if (!charge(c, c->m->size) ||
		    store_message_open(c->job->acct, c->job->mailbox_id, c->m->uid, &c->msg, NULL) !=
			    STORE_OK) {
			c->failed = true;
		} else {
			size_t len;
			const uint8_t *data = store_message_data(c->msg, &len);
			c->mm = mime_parse(data, len, NULL);
		}
	}
	return !c->failed;
}

static void eval_ctx_free(struct eval_ctx *c)
{
	for (size_t i = 0; i < c->header_count; i++) {
		free(c->headers[i].name);
		buf_free(&c->headers[i].folded);
	}
	free(c->headers);
	buf_free(&c->text);
	mime_message_free(&c->mm);
	store_message_close(&c->msg);
}

/* A search in cached folded text, charged by the octets scanned. */
static bool folded_contains(struct eval_ctx *c, const uint8_t *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	if (!charge(c, len))
		return false;
	return len >= n && memmem(hay, len, needle, n) != NULL;
}

static void append_folded(struct buf *out, const char *text, size_t len)
{
	buf_append_byte(out, '\0');
	mime_fold_utf8(text, len, out);
}

static void collect_text_parts(struct eval_ctx *c, const struct mime_part *p, unsigned depth)
{
	if (depth > LIMIT_MIME_DEPTH_MAX || c->job->stopped)
		return;
	if (mime_part_is_multipart(p)) {
		for (const struct mime_part *k = p->first_child; k; k = k->next_sibling)
			collect_text_parts(c, k, depth + 1);
		return;
	}
	if (p->message != NULL) {
		collect_text_parts(c, p->message, depth + 1);
		return;
	}
	if (strcmp(p->type, "text") != 0)
		return;
	struct buf text;
	buf_init(&text);
	if (mime_part_text_utf8(c->mm, p, &text) < 0) {
		buf_reset(&text);
		buf_append(&text, mime_data(c->mm) + p->body_offset, p->body_size);
	}
	append_folded(&c->text, (const char *)text.data, text.len);
	c->text_parts++;
	buf_free(&text);
}

/* The message's searchable text, built on first use. */
static bool eval_text(struct eval_ctx *c)
{
	if (c->text_ready)
		return !c->failed && !c->job->stopped;
	c->text_ready = true;
	if (!eval_open(c))
		return false;
	const struct mime_part *root = mime_root(c->mm);
	struct buf h, dec;
	buf_init(&h);
	buf_init(&dec);
	mime_header_unfold(mime_data(c->mm) + root->header_offset, root->header_size, &h);
	mime_decode_words((const char *)h.data, h.len, &dec);
	mime_fold_utf8((const char *)dec.data, dec.len, &c->text);
	buf_free(&h);
	buf_free(&dec);
	c->body_offset = c->text.len;
	collect_text_parts(c, root, 0);
	return !c->job->stopped;
}

static bool body_contains(struct eval_ctx *c, const struct skey *k, bool with_header)
{
	if (!eval_text(c))
		return false;
	if (k->str[0] == '\0') /* as an empty needle always matched a text part */
		return with_header || c->text_parts > 0;
	if (with_header)
		return folded_contains(c, c->text.data, c->text.len, k->folded);
	return folded_contains(c, c->text.data + c->body_offset, c->text.len - c->body_offset,
			       k->folded);
}

/* The folded values of one header field of the top-level header, collected on first use. */
static const struct header_values *header_values(struct eval_ctx *c, const char *name)
{
	for (size_t i = 0; i < c->header_count; i++)
		if (strcasecmp(c->headers[i].name, name) == 0)
			return &c->headers[i];
	if (!eval_open(c))
		return NULL;
	c->headers = xrealloc(c->headers, (c->header_count + 1) * sizeof(*c->headers));
	struct header_values *hv = &c->headers[c->header_count++];
	const struct mime_part *root = mime_root(c->mm);
	struct buf raw, dec;

	hv->name = xstrdup(name);
	hv->present = false;
	buf_init(&hv->folded);
	buf_init(&raw);
	buf_init(&dec);
	for (size_t nth = 0; nth < 1000 && charge(c, root->header_size); nth++) {
		buf_reset(&raw);
		if (mime_header_get(c->mm, root, name, nth, &raw) < 0)
			break;
		hv->present = true;
		buf_reset(&dec);
		mime_decode_words((const char *)raw.data, raw.len, &dec);
		append_folded(&hv->folded, (const char *)dec.data, dec.len);
	}
	buf_free(&raw);
	buf_free(&dec);
	return c->job->stopped ? NULL : hv;
}

static bool header_contains(struct eval_ctx *c, const struct skey *k)
{
	const struct header_values *hv = header_values(c, k->str);

	if (hv == NULL || !hv->present)
		return false;
	if (k->str2[0] == '\0')
		return true; /* RFC 9051 §6.4.4 HEADER with an empty string: field present */
	return folded_contains(c, hv->folded.data, hv->folded.len, k->folded);
}

static int64_t day_of(int64_t t)
{
	return (t >= 0 ? t / 86400 : (t - 86399) / 86400) * 86400;
}

static bool sent_day(struct eval_ctx *c, int64_t *day_r)
{
	if (c->sent_state == 0) {
		struct buf d;
		int64_t t;
		int tz;

		c->sent_state = -1;
		if (!eval_open(c) || !charge(c, mime_root(c->mm)->header_size))
			return false;
		buf_init(&d);
		if (mime_header_get(c->mm, mime_root(c->mm), "Date", 0, &d) == 0 &&
		    mime_parse_date((const char *)d.data, d.len, &t, &tz) == 0) {
			/* RFC 9051 §6.4.4: the date in its own time zone, time disregarded */
			c->sent_day = day_of(t + (int64_t)tz * 60);
			c->sent_state = 1;
		}
		buf_free(&d);
	}
	*day_r = c->sent_day;
	return c->sent_state == 1;
}

static bool has_keyword(const char *list, const char *kw)
{
	size_t n = strlen(kw);

	for (const char *p = list; p && *p;) {
		size_t m = strcspn(p, " ");
		if (m == n && str_nieq(p, kw, n))
			return true;
		p += m;
		while (*p == ' ')
			p++;
	}
	return false;
}

static bool eval(struct eval_ctx *c, const struct skey *k)
{
	const struct store_msg *m = c->m;
	int64_t d;

	switch (k->kind) {
	case SK_ALL:
		return true;
	case SK_NONE:
		return false;
	case SK_AND:
		for (size_t i = 0; i < k->kid_count; i++)
			if (!eval(c, k->kids[i]))
				return false;
		return true;
	case SK_OR:
		return eval(c, k->kids[0]) || eval(c, k->kids[1]);
	case SK_NOT:
		return !eval(c, k->kids[0]);
	case SK_FLAG:
		return (m->flags & k->flag) != 0;
	case SK_UNFLAG:
		return (m->flags & k->flag) == 0;
	case SK_KEYWORD:
		return has_keyword(m->keywords, k->str);
	case SK_UNKEYWORD:
		return !has_keyword(m->keywords, k->str);
	case SK_HEADER:
		return header_contains(c, k);
	case SK_BODY:
		return body_contains(c, k, false);
	case SK_TEXT:
		return body_contains(c, k, true);
	case SK_BEFORE:
		return day_of(m->internal_date) < k->num;
	case SK_ON:
		return day_of(m->internal_date) == k->num;
	case SK_SINCE:
		return day_of(m->internal_date) >= k->num;
	case SK_SENTBEFORE:
		return sent_day(c, &d) && d < k->num;
	case SK_SENTON:
		return sent_day(c, &d) && d == k->num;
	case SK_SENTSINCE:
		return sent_day(c, &d) && d >= k->num;
	case SK_LARGER:
		return m->size > (uint64_t)k->num;
	case SK_SMALLER:
		return m->size < (uint64_t)k->num;
	case SK_UIDS:
		return imap_uid_in_ranges(m->uid, k->r, k->nr);
	case SK_MODSEQ:
		return m->modseq >= (uint64_t)k->num;
	case SK_YOUNGER:
		return m->internal_date >= k->num;
	case SK_OLDER:
		return m->internal_date < k->num;
	case SK_SAVEDBEFORE:
		return day_of(m->save_date) < k->num;
	case SK_SAVEDON:
		return day_of(m->save_date) == k->num;
	case SK_SAVEDSINCE:
		return day_of(m->save_date) >= k->num;
	case SK_EMAILID:
		return m->email_id == (uint64_t)k->num;
	case SK_THREADID:
		return m->thread_id != 0 && m->thread_id == (uint64_t)k->num;
	}
	return false;
}

static void search_work(void *arg)
{
	struct search_job *job = arg;
	struct store_list_query q = { 0, 0, 0 };
	struct store_msg *msgs = NULL;
	size_t n = 0;

	if (net_conn_gone(job->conn)) { /* gone while the job was queued */
		job->stopped = job->cancelled = true;
		return;
	}
	job->error = store_msg_list(job->acct, job->mailbox_id, &q, &msgs, &n, &job->err);
	if (job->error != STORE_OK)
		return;
	job->hits = xmalloc((n + 1) * sizeof(uint32_t));
	if (job->modseq_key)
		job->hit_modseqs = xmalloc((n + 1) * sizeof(uint64_t));
	for (size_t i = 0; i < n && !job->stopped; i++) {
		struct eval_ctx c = { .job = job, .m = &msgs[i] };
		buf_init(&c.text);
		/* A verdict reached after the budget ran out is not trusted. */
		if (eval(&c, job->root) && !job->stopped) {
			if (job->hit_modseqs != NULL)
				job->hit_modseqs[job->hit_count] = msgs[i].modseq;
			job->hits[job->hit_count++] = msgs[i].uid;
		}
		eval_ctx_free(&c);
	}
	store_msg_list_free(&msgs, n);
}

/* RFC 5182 §2.1: RETURN (SAVE) keeps the UIDs found for "$"; with MIN and/or MAX but neither
 * ALL nor COUNT only those messages. A search that fails leaves "$" empty. */
static void search_save(struct imap_session *s, const struct search_job *job, bool failed)
{
	struct imap_selected *sel = s->sel;
	bool ends_only = (job->ret & (IMAP_RET_MIN | IMAP_RET_MAX)) &&
			 !(job->ret & (IMAP_RET_ALL | IMAP_RET_COUNT));
	size_t first = SIZE_MAX, last = 0;

	if (!(job->ret & IMAP_RET_SAVE) || sel == NULL)
		return;
	free(sel->saved_uids);
	sel->saved_uids = xmalloc((job->hit_count + 1) * sizeof(uint32_t));
	sel->saved_count = 0;
	if (failed)
		return;
	for (size_t i = 0; i < job->hit_count; i++) {
		if (imap_msn_of(sel, job->hits[i]) == 0)
			continue;
		if (first == SIZE_MAX)
			first = i;
		last = i;
		if (!ends_only)
			sel->saved_uids[sel->saved_count++] = job->hits[i];
	}
	if (ends_only && first != SIZE_MAX) {
		if (job->ret & IMAP_RET_MIN)
			sel->saved_uids[sel->saved_count++] = job->hits[first];
		if ((job->ret & IMAP_RET_MAX) && (last != first || !(job->ret & IMAP_RET_MIN)))
			sel->saved_uids[sel->saved_count++] = job->hits[last];
	}
}

static struct imap_search_keys *keys_wrap(struct skey **root);

/* RFC 5267 §4.3 RETURN (UPDATE): the criteria and the result stay alive (context.c). */
static void search_keep(struct imap_session *s, struct search_job *job)
{
	struct imap_context_spec spec = {
		.tag = job->tag,
		.uid = job->uid,
		.ret = job->ret,
		.keys = keys_wrap(&job->root),
		.uids = job->hits,
		.count = job->hit_count,
	};

	imap_context_add(s, &spec);
}

static void search_done(void *session, void *arg)
{
	struct imap_session *s = session;
	struct search_job *job = arg;

	search_save(s, job, job->cancelled || job->over_budget || job->error != STORE_OK);
	if ((job->ret & IMAP_RET_UPDATE) &&
	    (job->cancelled || job->over_budget || job->error != STORE_OK))
		imap_context_abandon(s);
	if (job->cancelled) {
		log_info("proto=imap conn=%llu ip=%s user=%s msg=\"search stopped: connection closed\"",
			 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn), s->user);
	} else if (job->over_budget) {
		log_info("proto=imap conn=%llu ip=%s user=%s msg=\"search over its work budget\"",
			 (unsigned long long)net_conn_id(s->conn), net_conn_peer_ip(s->conn), s->user);
		imap_tagged(s, job->tag, "%s NO [LIMIT] Search needs too much work; narrow it",
			    job->tag);
	} else if (job->error != STORE_OK) {
		imap_store_error(s, job->tag, job->error, &job->err);
	} else {
		/* Only messages the client knows; numbers as the client knows them. */
		uint32_t *out = xmalloc((job->hit_count + 1) * sizeof(uint32_t));
		size_t n = 0;
		uint64_t top_modseq = 0;
		struct buf line;
		for (size_t i = 0; i < job->hit_count; i++) {
			uint32_t msn = imap_msn_of(s->sel, job->hits[i]);
			if (msn == 0)
				continue;
			out[n++] = job->uid ? job->hits[i] : msn;
			if (job->hit_modseqs != NULL && job->hit_modseqs[i] > top_modseq)
				top_modseq = job->hit_modseqs[i];
		}
		buf_init(&line);
		if (job->esearch) {
			/* RFC 4731 §3.1 */
			buf_printf(&line, "* ESEARCH (TAG ");
			mime_imap_string(&line, job->tag, strlen(job->tag));
			buf_append_byte(&line, ')');
			if (job->uid)
				buf_append_str(&line, " UID");
			if ((job->ret & IMAP_RET_MIN) && n > 0)
				buf_printf(&line, " MIN %u", out[0]);
			if ((job->ret & IMAP_RET_MAX) && n > 0)
				buf_printf(&line, " MAX %u", out[n - 1]);
			if ((job->ret & IMAP_RET_ALL) && n > 0) {
				buf_append_str(&line, " ALL ");
				imap_append_uid_set(&line, out, n);
			}
			/* RFC 5267 §4.4: a window of positions of the result */
			if (job->ret & IMAP_RET_PARTIAL)
				imap_append_partial(&line, &job->partial, out, n, true);
			if (job->ret & IMAP_RET_COUNT)
				buf_printf(&line, " COUNT %zu", n);
			/* RFC 7162 §3.1.5: the highest MODSEQ of the messages found. */
			if (top_modseq != 0)
				buf_printf(&line, " MODSEQ %llu", (unsigned long long)top_modseq);
		} else {
			buf_append_str(&line, "* SEARCH");
			for (size_t i = 0; i < n; i++)
				buf_printf(&line, " %u", out[i]);
			if (top_modseq != 0)
				buf_printf(&line, " (MODSEQ %llu)", (unsigned long long)top_modseq);
		}
		buf_append_str(&line, "\r\n");
		/* RFC 5182 §2.4: SAVE alone answers no ESEARCH */
		if ((job->ret & ~(unsigned)IMAP_RET_CONTEXT) != IMAP_RET_SAVE)
			net_conn_write(s->conn, line.data, line.len);
		buf_free(&line);
		free(out);
		if (job->ret & IMAP_RET_UPDATE)
			search_keep(s, job);
		imap_tagged(s, job->tag, "%s OK SEARCH completed", job->tag);
	}
	skey_free(job->root);
	free(job->hits);
	free(job->hit_modseqs);
	free(job->tag);
	free(job);
	imap_command_done(s);
}

void imap_search_run(struct imap_session *s, const char *tag, struct imap_parser *ps, bool uid)
{
	struct search_parse sp = { s, ps, 0, false };
	struct search_job *job = xcalloc(1, sizeof(*job));
	struct imap_parser save;
	struct imap_slice a;

	job->esearch = s->enabled_rev2; /* IMAP4rev2 has only ESEARCH */
	job->ret = IMAP_RET_ALL;
	save = *ps;
	if (imap_parse_atom(ps, &a) && imap_slice_ieq(&a, "RETURN")) {
		/* RFC 4731 §3.1 search-return-opts, RFC 5267 §4 */
		struct imap_return_opts opts;
		job->esearch = true;
		if (!imap_parse_sp(ps) ||
		    !imap_parse_return_opts(ps, IMAP_RET_MIN | IMAP_RET_MAX | IMAP_RET_ALL |
							IMAP_RET_COUNT | IMAP_RET_SAVE |
							IMAP_RET_UPDATE | IMAP_RET_CONTEXT |
							IMAP_RET_PARTIAL,
					    &opts) ||
		    !imap_parse_sp(ps))
			goto bad;
		job->ret = opts.ret;
		job->partial = opts.partial;
		save = *ps;
	}
	*ps = save;
	save = *ps;
	if (imap_parse_atom(ps, &a) && imap_slice_ieq(&a, "CHARSET")) {
		struct imap_slice cs;
		if (!imap_parse_sp(ps) || !imap_parse_astring(ps, &cs) || !imap_parse_sp(ps))
			goto bad;
		if (!imap_slice_ieq(&cs, "UTF-8") && !imap_slice_ieq(&cs, "US-ASCII")) {
			imap_tagged(s, tag, "%s NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset",
				    tag);
			free(job);
			return;
		}
	} else {
		*ps = save;
	}
	job->root = parse_criteria(&sp);
	if (job->root == NULL)
		goto bad;
	job->conn = s->conn;
	job->budget_left = (uint64_t)s->deps->cfg->imap_search_budget;
	job->acct = s->acct;
	job->mailbox_id = s->sel->id;
	job->tag = xstrdup(tag);
	job->uid = uid;
	job->modseq_key = sp.modseq_key;
	if (sp.modseq_key)
		imap_condstore_enable(s); /* RFC 7162 §3.1 */
	if (job->ret & IMAP_RET_UPDATE)
		imap_context_prepare(s);
	s->busy = true;
	net_conn_offload_bulk(s->conn, search_work, search_done, job);
	return;
bad:
	imap_bad(s, tag, ps->error ? ps->error : "Invalid SEARCH arguments");
	skey_free(job->root);
	free(job);
}

void imap_cmd_search(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	imap_search_run(s, tag, ps, false);
}

/* ---------------- shared with SORT and THREAD ---------------- */

struct imap_search_keys {
	struct skey *root;
};

static struct imap_search_keys *keys_wrap(struct skey **root)
{
	struct imap_search_keys *keys = xcalloc(1, sizeof(*keys));

	keys->root = *root;
	*root = NULL;
	return keys;
}

struct imap_search_keys *imap_search_keys_parse(struct imap_session *s, struct imap_parser *ps)
{
	struct search_parse sp = { s, ps, 0, false };
	struct imap_search_keys *keys = xcalloc(1, sizeof(*keys));

	keys->root = parse_criteria(&sp);
	if (keys->root == NULL)
		goto bad;
	/* RFC 7162 §3.1: a MODSEQ search key enables CONDSTORE. (The SORT and THREAD replies
	 * carry no (MODSEQ n) item yet.) */
	if (sp.modseq_key)
		imap_condstore_enable(s);
	return keys;
bad:
	if (ps->error == NULL)
		ps->error = "Invalid search criteria";
	imap_search_keys_free(&keys);
	return NULL;
}

void imap_search_keys_free(struct imap_search_keys **keys)
{
	if (*keys == NULL)
		return;
	skey_free((*keys)->root);
	free(*keys);
	*keys = NULL;
}

enum imap_search_outcome imap_search_match(struct net_conn *conn, struct store_account *acct,
					   uint64_t mailbox_id, const struct imap_search_keys *keys,
					   uint64_t budget, const struct store_msg *msgs, size_t n,
					   bool *match_r)
{
	struct search_job job = { .conn = conn, .acct = acct, .mailbox_id = mailbox_id,
				  .budget_left = budget };

	for (size_t i = 0; i < n; i++) {
		struct eval_ctx c = { .job = &job, .m = &msgs[i] };
		match_r[i] = false;
		if (job.stopped)
			continue;
		buf_init(&c.text);
		match_r[i] = eval(&c, keys->root) && !job.stopped;
		eval_ctx_free(&c);
	}
	if (job.cancelled)
		return IMAP_SEARCH_CANCELLED;
	return job.over_budget ? IMAP_SEARCH_OVER_BUDGET : IMAP_SEARCH_DONE;
}
