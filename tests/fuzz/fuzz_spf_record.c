/* libFuzzer target: arbitrary bytes as an SPF record for the parser, and as a macro-string
 * for the expander (RFC 7208 §7) with fixed values for every macro letter. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "mailauth/mailauth.h"
#include "mailauth/spf_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160];
	struct buf out;
	const struct spf_macro_vars vars = {
		.sender = "strong-bad@email.example.com", .local = "strong-bad",
		.sender_domain = "email.example.com", .domain = "email.example.com",
		.ip_text = "192.0.2.3", .ip_dotted = "192.0.2.3", .ipv6 = false,
		.helo = "mx.example.org", .receiver = "mx.roost.test", .now = 1700000000,
	};

	(void)spf_record_check((const char *)data, size, err, sizeof(err));
	buf_init(&out);
	(void)spf_macro_expand(&vars, (const char *)data, size, true, true, &out);
	buf_free(&out);
	return 0;
}
