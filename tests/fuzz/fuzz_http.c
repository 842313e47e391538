/* libFuzzer target for the request parsing http/ does itself (http/parse.c): the first byte
 * picks the parser, the rest is its input, copied to an exact-size heap block so ASan sees
 * any over-read. Even: a query string's emailaddress value, then the address check on it and
 * the three documents for it; odd: an Autodiscover body, the same after it. Each result must
 * keep its promises: NUL-terminated within its buffer, an accepted address within its limit,
 * and no character of it that XML must escape left unescaped in a document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

static const struct http_mail_ports ports = { "mail.example.test", 143, 993, 110, 995, 587,
					      465 };

/* An address with a character XML must escape never appears in a document as it was. */
static void check_document(struct buf *b, const char *address)
{
	if (memchr(b->data, '\0', b->len) != NULL)
		abort();
	if (strpbrk(address, "&'<>\"") != NULL && strstr(buf_cstr(b), address) != NULL)
		abort();
}

static void documents(char *address)
{
	const char *domain;
	struct buf b;

	if (!http_address_parse(address, &domain))
		return;
	if (strlen(address) > LIMIT_HTTP_ADDRESS || domain < address)
		abort();
	buf_init(&b);
	http_autoconfig_xml(&b, &ports, address, domain);
	http_autodiscover_xml(&b, &ports, address);
	http_mobileconfig(&b, &ports, address, domain);
	check_document(&b, address);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[LIMIT_HTTP_ADDRESS + 1];
	uint8_t *input;
	int r;

	if (size < 1)
		return 0;
	input = malloc(size > 1 ? size - 1 : 1);
	if (input == NULL)
		abort();
	memcpy(input, data + 1, size - 1);
	if (data[0] & 1)
		r = http_autodiscover_address(input, size - 1, out, sizeof(out));
	else
		r = http_query_value((const char *)input, size - 1, "emailaddress", out,
				     sizeof(out));
	if (r == 1) {
		if (strnlen(out, sizeof(out)) == sizeof(out))
			abort();
		documents(out);
	} else if (r != 0 && r != -1) {
		abort();
	}
	free(input);
	return 0;
}
