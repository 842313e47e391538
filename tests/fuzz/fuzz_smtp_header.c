/* libFuzzer target for the originator-field reader of submission (smtp/header_from.c). The
 * input is the start of a message as kept for the check. Invariants checked:
 *   - every address handed to the callback is a NUL-terminated string with an '@', no longer
 *     than the input;
 *   - the count returned equals the number of callbacks (none for -1: a NUL in the field);
 *   - reading is deterministic (a second pass gives the same count and end-of-header flag). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "smtp/session.h"

struct seen {
	size_t limit;
	int calls;
};

static void on_address(const char *address, void *arg)
{
	struct seen *s = arg;
	size_t n = strlen(address);

	if (n == 0 || n > s->limit || memchr(address, '@', n) == NULL)
		abort();
	s->calls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = { "From", "Sender", "Resent-From", "Resent-Sender" };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct seen a = { size, 0 }, b = { size, 0 };
		bool end_a = false, end_b = false;
		int n = smtp_header_addresses(data, size, fields[i], on_address, &a, &end_a);
		int m = smtp_header_addresses(data, size, fields[i], on_address, &b, &end_b);
		if ((n >= 0 ? n : 0) != a.calls || n != m || end_a != end_b)
			abort();
	}
	return 0;
}
