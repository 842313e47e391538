/* libFuzzer target: arbitrary bytes as a message for the DKIM verifier, with a fixed key lookup
 * answering the RFC 8463 Appendix A records (and a junk record for any other name). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "mailauth/mailauth.h"

static int fixed_lookup(const char *name, struct buf *txt_r, void *ctx)
{
	(void)ctx;
	if (strcmp(name, "brisbane._domainkey.football.example.com") == 0) {
		buf_append_str(txt_r, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
		return 0;
	}
	if (strcmp(name, "test._domainkey.football.example.com") == 0) {
		buf_append_str(txt_r,
			       "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
			       "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
			       "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
			       "Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
		return 0;
	}
	if (name[0] == 't')
		return -1;
	buf_append_str(txt_r, "v=DKIM1; k=rsa; h=sha1:sha256; p=AAAA");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_result res[LIMIT_DKIM_SIGNATURES];
	struct buf out;

	(void)dkim_verify(data, size, fixed_lookup, NULL, 1528637909, res, ARRAY_LEN(res));
	buf_init(&out);
	dkim_canon_body_relaxed(data, size, &out);
	buf_reset(&out);
	if (size > 0 && memchr(data, '\n', size) == NULL)
		dkim_canon_header_relaxed(data, size, &out);
	buf_free(&out);
	return 0;
}
