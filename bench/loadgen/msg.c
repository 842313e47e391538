/* User names and test messages of the load generator. Message bodies are built once per size
 * class at start-up and shared read-only by every thread; each message only gets its own
 * headers (From, To, Subject, Message-ID). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

/* The size mix when --size is not given: median about 4 KiB, mean about 24 KiB, like a real
 * mailbox (mostly short text, some attachments). Sizes are of the whole message. */
static const struct {
	size_t size;
	unsigned weight;
} msg_mix[] = {
	{ 2048, 50 }, { 8192, 25 }, { 32768, 15 }, { 102400, 8 }, { 409600, 2 },
};
#define MSG_CLASSES_MAX 5
#define MSG_HEADER_ROOM 320 /* the generated headers stay below this */

struct lg_msgpool {
	unsigned nclasses;
	size_t size[MSG_CLASSES_MAX];
	unsigned weight[MSG_CLASSES_MAX];
	unsigned weight_total;
	char *body[MSG_CLASSES_MAX];
	size_t body_len[MSG_CLASSES_MAX];
};

int lg_name_fmt_check(const char *fmt)
{
	unsigned conversions = 0;

	if (strlen(fmt) == 0 || strlen(fmt) >= LG_MAX_NAME / 2)
		return -1;
	for (const char *p = fmt; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || *p == '\r' || *p == '\n' || *p == ' ' ||
		    *p == '<' || *p == '>')
			return -1;
		if (*p == '%') {
			if (p[1] != 'd')
				return -1;
			conversions++;
			p++;
		}
	}
	return conversions <= 1 ? 0 : -1;
}

int lg_name_format(const char *fmt, unsigned n, char *out, size_t cap)
{
	const char *conv = strstr(fmt, "%d");
	int len;

	if (conv == NULL)
		len = snprintf(out, cap, "%s", fmt);
	else
		len = snprintf(out, cap, "%.*s%u%s", (int)(conv - fmt), fmt, n, conv + 2);
	return len < 0 || (size_t)len >= cap ? -1 : 0;
}

static const char *const msg_words[] = {
	"the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on",
	"report", "meeting", "budget", "quarter", "release", "server", "mailbox", "message",
	"invoice", "schedule", "deadline", "review", "draft", "project", "customer", "update",
	"numbers", "team", "please", "thanks", "regards", "tomorrow", "monday", "attached",
};

/* Text lines of up to 76 characters, each starting with a letter (so no dot-stuffing is ever
 * needed), CRLF line ends, exactly len bytes. */
static char *msg_body_new(size_t len, uint64_t *rng)
{
	char *b = xmalloc(len + 1);
	size_t pos = 0;

	while (len - pos > 80) {
		size_t line_start = pos;
		while (pos - line_start < 64) {
			const char *w = msg_words[lg_rand_below(rng, ARRAY_LEN(msg_words))];
			size_t wl = strlen(w);
			memcpy(b + pos, w, wl);
			pos += wl;
			b[pos++] = ' ';
		}
		b[pos - 1] = '.';
		b[pos++] = '\r';
		b[pos++] = '\n';
	}
	/* Last line: letters up to the exact length. */
	while (len - pos > 2)
		b[pos++] = 'x';
	if (len - pos == 2)
		b[pos++] = '\r';
	if (len - pos == 1)
		b[pos++] = '\n';
	b[len] = '\0';
	return b;
}

struct lg_msgpool *lg_msgpool_new(size_t fixed_size, uint64_t seed)
{
	struct lg_msgpool *pool = xcalloc(1, sizeof(*pool));
	uint64_t rng = seed | 1;

	if (fixed_size > 0) {
		pool->nclasses = 1;
		pool->size[0] = fixed_size;
		pool->weight[0] = 1;
	} else {
		pool->nclasses = (unsigned)ARRAY_LEN(msg_mix);
		for (unsigned i = 0; i < pool->nclasses; i++) {
			pool->size[i] = msg_mix[i].size;
			pool->weight[i] = msg_mix[i].weight;
		}
	}
	for (unsigned i = 0; i < pool->nclasses; i++) {
		size_t body = pool->size[i] > MSG_HEADER_ROOM + 16 ? pool->size[i] - MSG_HEADER_ROOM
								   : 16;
		pool->weight_total += pool->weight[i];
		pool->body[i] = msg_body_new(body, &rng);
		pool->body_len[i] = body;
	}
	return pool;
}

void lg_msgpool_free(struct lg_msgpool **pool)
{
	if (*pool == NULL)
		return;
	for (unsigned i = 0; i < (*pool)->nclasses; i++)
		free((*pool)->body[i]);
	free(*pool);
	*pool = NULL;
}

size_t lg_msg_mean_size(const struct lg_msgpool *pool)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < pool->nclasses; i++)
		sum += (uint64_t)pool->size[i] * pool->weight[i];
	return (size_t)(sum / pool->weight_total);
}

static unsigned msg_pick_class(const struct lg_msgpool *pool, uint64_t *rng)
{
	unsigned r = lg_rand_below(rng, pool->weight_total);

	for (unsigned i = 0; i < pool->nclasses; i++) {
		if (r < pool->weight[i])
			return i;
		r -= pool->weight[i];
	}
	return 0;
}

void lg_msg_build(const struct lg_msgpool *pool, struct evbuffer *out, uint64_t *rng,
		  const char *from, const char *to, uint64_t serial, bool small)
{
	unsigned cls = small ? 0 : msg_pick_class(pool, rng);

	evbuffer_add_printf(out,
			    "From: Bench Sender <%s>\r\n"
			    "To: <%s>\r\n"
			    "Subject: bench message %llu\r\n"
			    "Date: Mon, 05 Jan 2026 08:00:00 +0000\r\n"
			    "Message-ID: <%llu.%016llx@loadgen.bench.test>\r\n"
			    "MIME-Version: 1.0\r\n"
			    "Content-Type: text/plain; charset=us-ascii\r\n"
			    "\r\n",
			    from, to, (unsigned long long)serial, (unsigned long long)serial,
			    (unsigned long long)lg_rand(rng));
	/* The pool outlives every connection, so the body is referenced, not copied. */
	evbuffer_add_reference(out, pool->body[cls], pool->body_len[cls], NULL, NULL);
}
