/* libFuzzer target for the SRS decoder (auth/srs.c). The input, up to a NUL, is an address
 * that reaches RCPT TO, copied to an exact-size heap block so ASan sees any over-read. A
 * decoded address must be non-empty text with an '@'. A plain sender (one '@', no SRS tag of its
 * own) that decodes must survive encoding and decoding again with the same clock. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"

static const uint8_t secret[] = "fuzzing secret, thirty-two chars";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const time_t now = 1700000000;
	size_t len = strnlen((const char *)data, size);
	char *addr = malloc(len + 1), *orig = NULL;

	if (addr == NULL)
		abort();
	memcpy(addr, data, len);
	addr[len] = '\0';
	enum auth_srs_result r =
		auth_srs_reverse(secret, sizeof(secret) - 1, "fwd.test", addr, now, 21, &orig);
	if (r != AUTH_SRS_OK && orig != NULL)
		abort();
	if (r == AUTH_SRS_OK) {
		if (orig == NULL || orig[0] == '\0' || strchr(orig, '@') == NULL)
			abort();
		const char *at = strchr(orig, '@');
		bool plain = at == strrchr(orig, '@') && strncasecmp(orig, "srs", 3) != 0;
		char *again = !plain ? NULL : auth_srs_forward(secret, sizeof(secret) - 1, "fwd.test", orig, now);
		if (again != NULL) {
			char *back = NULL;
			if (auth_srs_reverse(secret, sizeof(secret) - 1, "fwd.test", again, now, 21,
					     &back) != AUTH_SRS_OK ||
			    strcmp(back, orig) != 0)
				abort();
			free(back);
			free(again);
		}
	}
	free(orig);
	free(addr);
	return 0;
}
