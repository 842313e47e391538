/* libFuzzer target for the spam tokenizer: any message yields tokens within the bounds of
 * spam.h (length, count), distinct sorted keys, and the GTUBE test never reads out of range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spam/spam.h"

struct bounds {
	size_t calls;
};

static void check_token(const char *token, size_t len, void *ctx)
{
	struct bounds *b = ctx;

	/* A prefix ("subject:", "ctype:") plus at most SPAM_TOKEN_MAX bytes of the word. */
	if (len == 0 || len > SPAM_TOKEN_MAX + 32 || memchr(token, '\0', len) != NULL)
		abort();
	b->calls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bounds b = { 0 };
	struct spam_tokens t;

	spam_tokenize_text(data, size, check_token, &b);
	if (b.calls > 4 * SPAM_MAX_TOKENS)
		abort();
	spam_tokenize(data, size, &t);
	if (t.count > SPAM_MAX_TOKENS)
		abort();
	for (size_t i = 1; i < t.count; i++)
		if (t.keys[i - 1] >= t.keys[i])
			abort();
	spam_tokens_free(&t);
	(void)spam_is_gtube(data, size);
	return 0;
}
