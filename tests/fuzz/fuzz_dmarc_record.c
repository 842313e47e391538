/* libFuzzer target: arbitrary bytes as a DMARC record (RFC 7489 §6.3) for the parser, and as a
 * message for the From-domain extraction (§6.6.1). */
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "mailauth/mailauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record rec;
	char err[160], domain[256];
	const char *reason;

	(void)dmarc_record_parse((const char *)data, size, &rec, err, sizeof(err));
	(void)dmarc_from_domain(data, size, domain, sizeof(domain), &reason);
	return 0;
}
