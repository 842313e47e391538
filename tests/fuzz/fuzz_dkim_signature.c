/* libFuzzer target: arbitrary bytes as the value of one DKIM-Signature field (the tag-list of
 * RFC 6376 §3.2 and §3.5) in front of a fixed message, verified with a fixed key lookup; and as
 * the value of an Authentication-Results field (RFC 8601 authserv-id). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "mailauth/mailauth.h"

static int fixed_lookup(const char *name, struct buf *txt_r, void *ctx)
{
	(void)ctx;
	if (strncmp(name, "brisbane.", 9) == 0) {
		buf_append_str(txt_r, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
		return 0;
	}
	if (name[0] == 't')
		return -1;
	if (name[0] == 'n')
		return 1;
	buf_append_str(txt_r, "v=DKIM1; k=rsa; p=");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char rest[] = "\r\nFrom: Joe SixPack <joe@football.example.com>\r\n"
				   "Subject: Is dinner ready?\r\n\r\nHi.\r\n";
	struct dkim_result res[LIMIT_DKIM_SIGNATURES];
	struct buf msg;
	char id[256];

	buf_init(&msg);
	buf_append_str(&msg, "DKIM-Signature:");
	buf_append(&msg, data, size);
	buf_append_str(&msg, rest);
	(void)dkim_verify(msg.data, msg.len, fixed_lookup, NULL, 1528637909, res, ARRAY_LEN(res));
	buf_free(&msg);
	(void)authres_authserv_id(data, size, id, sizeof(id));
	return 0;
}
