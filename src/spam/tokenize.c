/* The tokenizer of the spam classifier: a message becomes the words of its header fields
 * (each prefixed by the field's name, so "free" in Subject and in the body count apart), of
 * its text parts (decoded by the MIME layer to UTF-8, HTML included as text: tags and URLs
 * are telling) and the media types and file names of its other parts.
 *
 * A word is a run of letters, digits, bytes of UTF-8 sequences and the characters in
 * WORD_INNER, leading and trailing punctuation dropped. Besides the word itself a few more
 * general tokens are emitted, so that a word never seen in training can still be judged by
 * what it shares with words that were (each with the same field prefix):
 *  - case is kept ("FREE" in capitals is a clue of its own), and a word with capitals also
 *    gives its ASCII lower-case form, which carries the evidence of every spelling;
 *  - a host name or mail address also gives its last two labels ("dom:example.com"), an
 *    IPv4 address its /24 ("net:192.0.2"): spam changes host names faster than domains;
 *  - a word longer than SPAM_TOKEN_MAX bytes (mostly base64, hashes, encoded URLs, which
 *    never repeat) gives only its first byte and length in tens ("skip:a 50"), as
 *    SpamBayes does; words shorter than SPAM_TOKEN_MIN are skipped.
 * On the benchmark's tuning halves (bench/RESULTS-spam.md) the three together gained about
 * three points of recall at FP <= 0.1 %. Everything is bounded (spam.h): at most
 * SPAM_MAX_TEXT bytes of decoded text and SPAM_MAX_TOKENS distinct tokens. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../mime/mime.h"
#include "spam.h"

#define WORD_INNER "-_'$.!@"

/* The GTUBE string as published by SpamAssassin (its test pattern, not a secret). */
static const char gtube[] =
	"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

struct tok_state {
	void (*fn)(const char *token, size_t len, void *ctx);
	void *ctx;
	size_t text_left; /* bytes of SPAM_MAX_TEXT not used yet */
	size_t emitted;	  /* calls of fn; stops at a multiple of SPAM_MAX_TOKENS */
};

static bool word_byte(uint8_t c)
{
	/* c != 0: strchr finds the terminator, and a NUL must end a word, not join one. */
	return isalnum(c) || c >= 0x80 || (c != 0 && strchr(WORD_INNER, c) != NULL);
}

static bool edge_punct(uint8_t c)
{
	return c < 0x80 && !isalnum(c);
}

static bool tok_full(const struct tok_state *st)
{
	/* Repetitions count too: a message of one word repeated does not tokenize forever. */
	return st->emitted >= 4 * SPAM_MAX_TOKENS;
}

static void emit_token(struct tok_state *st, const char *token, size_t len)
{
	st->emitted++;
	st->fn(token, len, st->ctx);
}

/* The rest of the word's host part after its last '@'; the host's last two labels (or the
 * /24 of an IPv4 address) as a token; false when the word is no host name or address. */
static bool domain_token(const uint8_t *w, size_t len, char *out, size_t outlen, size_t *len_r)
{
	size_t start = 0, dots = 0, digits = 0, last_dot = 0, prev_dot = 0;

	for (size_t i = 0; i < len; i++)
		if (w[i] == '@')
			start = i + 1;
	for (size_t i = start; i < len; i++) {
		if (w[i] == '.') {
			dots++;
			prev_dot = last_dot;
			last_dot = i;
		} else if (isdigit(w[i])) {
			digits++;
		} else if (!isalpha(w[i]) && w[i] != '-') {
			return false;
		}
	}
	if (dots == 0 || last_dot + 1 >= len)
		return false;
	int n;

	if (dots == 3 && digits + dots == len - start)
		n = snprintf(out, outlen, "net:%.*s", (int)(last_dot - start),
			     (const char *)w + start);
	else if (isalpha(w[len - 1]))
		n = snprintf(out, outlen, "dom:%.*s", (int)(len - (dots >= 2 ? prev_dot + 1 : start)),
			     (const char *)w + (dots >= 2 ? prev_dot + 1 : start));
	else
		return false;
	if (n <= 0 || (size_t)n >= outlen)
		return false;
	*len_r = (size_t)n;
	return true;
}

static void emit_word(struct tok_state *st, const char *prefix, const uint8_t *w, size_t len)
{
	/* The prefix is at most 25 bytes (a field name of 24 and ':'), the rest one of the forms
	 * above: the fuzz target checks the bound of SPAM_TOKEN_MAX + 32. */
	char token[SPAM_TOKEN_MAX + 32];
	size_t plen = strlen(prefix), extra_len;
	bool capitals = false;

	while (len > 0 && edge_punct(w[0])) {
		w++;
		len--;
	}
	while (len > 0 && edge_punct(w[len - 1]))
		len--;
	if (len < SPAM_TOKEN_MIN || tok_full(st))
		return;
	memcpy(token, prefix, plen);
	if (len > SPAM_TOKEN_MAX) {
		int n = snprintf(token + plen, sizeof(token) - plen, "skip:%c %zu",
				 w[0] < 0x80 ? w[0] : '8', len / 10 * 10);

		emit_token(st, token, plen + (size_t)n);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		token[plen + i] = (char)w[i];
		capitals = capitals || (w[i] >= 'A' && w[i] <= 'Z');
	}
	emit_token(st, token, plen + len);
	if (capitals && !tok_full(st)) {
		for (size_t i = 0; i < len; i++)
			token[plen + i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + ('a' - 'A') : w[i]);
		emit_token(st, token, plen + len);
	}
	if (!tok_full(st) &&
	    domain_token(w, len, token + plen, sizeof(token) - plen, &extra_len))
		emit_token(st, token, plen + extra_len);
}

static void tokenize_words(struct tok_state *st, const char *prefix, const uint8_t *text,
			   size_t len)
{
	size_t i = 0;

	if (len > st->text_left)
		len = st->text_left;
	st->text_left -= len;
	while (i < len && !tok_full(st)) {
		while (i < len && !word_byte(text[i]))
			i++;
		size_t start = i;
		while (i < len && word_byte(text[i]))
			i++;
		if (i > start)
			emit_word(st, prefix, text + start, i - start);
	}
}

/* Fields the classifier must not learn from: our own verdicts (they would teach it its own
 * past opinion) and the trace fields every message has in the same shape. */
static bool field_skipped(const char *name)
{
	return strncasecmp(name, "x-spam-", 7) == 0 || strcasecmp(name, "return-path") == 0 ||
	       strcasecmp(name, "date") == 0 || strcasecmp(name, "delivered-to") == 0;
}

static void tokenize_header(struct tok_state *st, const struct mime_message *mm,
			    const struct mime_part *part)
{
	size_t n = mime_header_count(mm, part);
	struct buf unfolded, decoded;

	buf_init(&unfolded);
	buf_init(&decoded);
	for (size_t i = 0; i < n && !tok_full(st); i++) {
		const uint8_t *name, *value;
		size_t name_len, value_len;
		char prefix[40];

		if (mime_header_field(mm, part, i, &name, &name_len, &value, &value_len) < 0 ||
		    name_len == 0 || name_len > 24)
			continue;
		for (size_t k = 0; k < name_len; k++)
			prefix[k] = (char)tolower(name[k]);
		prefix[name_len] = ':';
		prefix[name_len + 1] = '\0';
		prefix[name_len] = '\0';
		if (field_skipped(prefix))
			continue;
		prefix[name_len] = ':';
		buf_reset(&unfolded);
		buf_reset(&decoded);
		mime_header_unfold(value, value_len, &unfolded);
		mime_decode_words((const char *)unfolded.data, unfolded.len, &decoded);
		tokenize_words(st, prefix, decoded.data, decoded.len);
	}
	buf_free(&unfolded);
	buf_free(&decoded);
}

static void tokenize_leaf(struct tok_state *st, const struct mime_message *mm,
			  const struct mime_part *part)
{
	char type[96];
	struct buf text;

	snprintf(type, sizeof(type), "%s/%s", part->type, part->subtype);
	emit_word(st, "ctype:", (const uint8_t *)type, strlen(type));
	if (strcmp(part->type, "text") != 0) {
		buf_init(&text);
		if (mime_param_decode(part->disp_params, part->disp_param_count, "filename",
				      &text) == 0 ||
		    mime_param_decode(part->params, part->param_count, "name", &text) == 0)
			tokenize_words(st, "file:", text.data, text.len);
		buf_free(&text);
		return;
	}
	buf_init(&text);
	if (mime_part_text_utf8(mm, part, &text) == 0)
		tokenize_words(st, "", text.data, text.len);
	buf_free(&text);
}

/* Depth-first over the tree; the parser bounds its depth and part count. */
static void tokenize_part(struct tok_state *st, const struct mime_message *mm,
			  const struct mime_part *part)
{
	if (part->message != NULL) {
		tokenize_header(st, mm, part->message);
		tokenize_part(st, mm, part->message);
		return;
	}
	if (mime_part_is_multipart(part)) {
		for (const struct mime_part *c = part->first_child; c != NULL && !tok_full(st);
		     c = c->next_sibling)
			tokenize_part(st, mm, c);
		return;
	}
	tokenize_leaf(st, mm, part);
}

void spam_tokenize_text(const uint8_t *msg, size_t len,
			void (*fn)(const char *token, size_t len, void *ctx), void *ctx)
{
	struct tok_state st = { .fn = fn, .ctx = ctx, .text_left = SPAM_MAX_TEXT };
	struct mime_message *mm = mime_parse(msg, len, NULL);
	const struct mime_part *root = mime_root(mm);

	tokenize_header(&st, mm, root);
	tokenize_part(&st, mm, root);
	mime_message_free(&mm);
}

/* FNV-1a, 64 bits: tokens need a stable, well-spread key, not a secret one. */
static uint64_t token_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 0x100000001b3ULL;
	}
	return h < STORE_COUNT_PINNED ? h + STORE_COUNT_PINNED : h;
}

struct key_set {
	uint64_t *keys;
	size_t count, cap;
};

static void collect_key(const char *token, size_t len, void *ctx)
{
	struct key_set *ks = ctx;

	if (ks->count == ks->cap) {
		ks->cap = ks->cap ? 2 * ks->cap : 256;
		ks->keys = xrealloc(ks->keys, ks->cap * sizeof(*ks->keys));
	}
	ks->keys[ks->count++] = token_hash(token, len);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void spam_tokenize(const uint8_t *msg, size_t len, struct spam_tokens *tokens_r)
{
	struct key_set ks = { 0 };
	size_t n = 0;

	spam_tokenize_text(msg, len, collect_key, &ks);
	if (ks.count > 0)
		qsort(ks.keys, ks.count, sizeof(*ks.keys), cmp_u64);
	for (size_t i = 0; i < ks.count && n < SPAM_MAX_TOKENS; i++)
		if (n == 0 || ks.keys[i] != ks.keys[n - 1])
			ks.keys[n++] = ks.keys[i];
	tokens_r->keys = ks.keys;
	tokens_r->count = n;
}

void spam_tokens_free(struct spam_tokens *tokens)
{
	free(tokens->keys);
	tokens->keys = NULL;
	tokens->count = 0;
}

bool spam_is_gtube(const uint8_t *msg, size_t len)
{
	return memmem(msg, len, gtube, sizeof(gtube) - 1) != NULL;
}
