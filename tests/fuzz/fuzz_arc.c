/* libFuzzer target: arbitrary bytes as the top of a message's header (ARC sets, our
 * Authentication-Results) over a fixed rest: the ARC structure check, chain verification with
 * a fixed key lookup, sealing with a fixed RSA key, and the arc= lookup in an
 * Authentication-Results value (RFC 8617, RFC 8601). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "mailauth/mailauth.h"

static const char rsa_pem[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n"
	"Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n"
	"KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n"
	"AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n"
	"6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n"
	"zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n"
	"6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n"
	"uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n"
	"WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n"
	"WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n"
	"licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n"
	"o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n"
	"uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n"
	"-----END RSA PRIVATE KEY-----\n";

static int fixed_lookup(const char *name, struct buf *txt_r, void *ctx)
{
	(void)ctx;
	if (strncmp(name, "temp", 4) == 0)
		return -1;
	if (strncmp(name, "none", 4) == 0)
		return 1;
	if (name[0] == 'e') {
		buf_append_str(txt_r, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
		return 0;
	}
	buf_append_str(txt_r, "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
			      "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
			      "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
			      "Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
	return 0;
}

/* Made once: loading a key per input would be most of the run. */
static struct dkim_signer *fixed_signer(void)
{
	static struct dkim_signer *signer;
	char err[256];

	if (signer == NULL) {
		signer = dkim_signer_new("hop.example");
		if (dkim_signer_add_pem(signer, "test", (const uint8_t *)rsa_pem, strlen(rsa_pem),
					err, sizeof(err)) < 0)
			__builtin_trap();
	}
	return signer;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char rest[] = "From: Joe <joe@football.example.com>\r\n"
				   "Subject: Is dinner ready?\r\n\r\nHi.\r\n";
	struct arc_chain *chain = xmalloc(sizeof(*chain));
	struct arc_outcome out;
	struct buf msg, sealed;
	const char *reason;
	char err[256], result[16];

	buf_init(&msg);
	buf_init(&sealed);
	buf_append(&msg, data, size);
	buf_append_str(&msg, rest);
	(void)arc_chain_parse(msg.data, msg.len, chain, &reason);
	arc_verify(msg.data, msg.len, fixed_lookup, NULL, 1700000000, &out);
	(void)arc_seal(fixed_signer(), msg.data, msg.len, "mx.hop.example", 1700000000, &sealed,
		       err, sizeof(err));
	(void)authres_method_result(data, size, "arc", result, sizeof(result));
	buf_free(&msg);
	buf_free(&sealed);
	free(chain);
	return 0;
}
