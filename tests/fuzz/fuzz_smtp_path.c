/* libFuzzer target for MAIL/RCPT argument parsing (smtp/path.c) and the xtext checks. The first
 * byte holds the flags (FROM:/TO:, lenient space, UTF-8, null path allowed); the rest, up to a
 * NUL, is the argument string, copied to an exact-size heap block so ASan sees any over-read.
 * On success the result must obey the grammar's promises: a mailbox without control
 * characters, at most 254 octets, an '@' unless it is <postmaster> or <>, at most
 * SMTP_MAX_PARAMS parameters with upper-case keywords and no control characters in values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "smtp/path.h"

static void check_text(const char *s, bool allow_space)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 32 || c == 127 || (c == ' ' && !allow_space))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_path p;
	const char *why = NULL;
	uint8_t flags;
	char *args;
	size_t len;

	if (size < 1)
		return 0;
	flags = data[0];
	len = strnlen((const char *)data + 1, size - 1);
	args = malloc(len + 1);
	if (args == NULL)
		abort();
	memcpy(args, data + 1, len);
	args[len] = '\0';

	const char *prefix = (flags & 1) ? "TO:" : "FROM:";
	bool utf8 = (flags & 4) != 0;
	if (smtp_path_parse(args, prefix, (flags & 2) != 0, utf8, (flags & 8) != 0, &p, &why) ==
	    0) {
		size_t mlen = strlen(p.mailbox);
		if (mlen > 254)
			abort();
		/* a quoted local part may hold spaces; nothing may hold control characters */
		check_text(p.mailbox, p.mailbox[0] == '"');
		if (!utf8)
			for (size_t i = 0; i < mlen; i++)
				if ((unsigned char)p.mailbox[i] >= 0x80)
					abort();
		if (mlen > 0 && strchr(p.mailbox, '@') == NULL &&
		    !((flags & 1) && str_ieq(p.mailbox, "postmaster")))
			abort();
		if (mlen == 0 && !(flags & 8))
			abort();
		if (p.param_count > SMTP_MAX_PARAMS)
			abort();
		for (size_t i = 0; i < p.param_count; i++) {
			for (const char *k = p.params[i].keyword; *k; k++)
				if (!((*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '-'))
					abort();
			if (p.params[i].value != NULL) {
				check_text(p.params[i].value, false);
				smtp_xtext_valid(p.params[i].value);
				smtp_xtext_clean(p.params[i].value, (flags & 16) != 0);
			}
		}
		smtp_path_param(&p, "SIZE", NULL);
		smtp_path_clear(&p);
	} else if (why == NULL || why[0] != '5') {
		abort();
	}
	if (smtp_xtext_clean(args, (flags & 16) != 0) && !smtp_xtext_valid(args))
		abort();
	free(args);
	return 0;
}
