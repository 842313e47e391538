/* http/: the request parsing written here (query values, addresses, the Autodiscover body)
 * and the generated documents: what the listeners offer, in order, and every value from the
 * request XML-escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_internal.h"

static const struct http_mail_ports all_ports = { "mail.example.test", 143, 993, 110, 995, 587,
						  465 };

static void test_query_value(void **state)
{
	char out[64];
	const char *q = "a=1&emailaddress=first.last%2Btag%40Example.test&x=%41";

	(void)state;
	assert_int_equal(http_query_value(q, strlen(q), "emailaddress", out, sizeof(out)), 1);
	assert_string_equal(out, "first.last+tag@Example.test");
	assert_int_equal(http_query_value(q, strlen(q), "x", out, sizeof(out)), 1);
	assert_string_equal(out, "A");
	assert_int_equal(http_query_value(q, strlen(q), "email", out, sizeof(out)), 0);
	assert_int_equal(http_query_value("e=a+b", 5, "e", out, sizeof(out)), 1);
	assert_string_equal(out, "a b");
	/* bad escapes, a NUL, a value too long, an escape cut at the end of the length given */
	assert_int_equal(http_query_value("e=%zz", 5, "e", out, sizeof(out)), -1);
	assert_int_equal(http_query_value("e=%00", 5, "e", out, sizeof(out)), -1);
	assert_int_equal(http_query_value("e=%4", 4, "e", out, sizeof(out)), -1);
	assert_int_equal(http_query_value("e=%41", 4, "e", out, sizeof(out)), -1);
	assert_int_equal(http_query_value("e=abcd", 6, "e", out, 4), -1);
	assert_int_equal(http_query_value("e=abc", 5, "e", out, 4), 1);
}

static void test_address_parse(void **state)
{
	const char *domain;
	char ok[] = "o'brien&co+x@Mail.Example.TEST";
	const char *bad[] = { "", "@example.test", "user@", "no-at", "a@b@c", "a..b@example.test",
			      ".a@example.test", "a@.example.test", "a@example..test",
			      "a b@example.test", "<a>@example.test", "a@exa_mple.test",
			      "a@example.test.", "\"q\"@example.test" };

	(void)state;
	assert_true(http_address_parse(ok, &domain));
	assert_string_equal(domain, "mail.example.test");
	assert_string_equal(ok, "o'brien&co+x@mail.example.test");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *copy = xstrdup(bad[i]);
		if (http_address_parse(copy, &domain))
			fail_msg("accepted %s", bad[i]);
		free(copy);
	}
	char *long_address = xmalloc(LIMIT_HTTP_ADDRESS + 2);
	memset(long_address, 'a', LIMIT_HTTP_ADDRESS + 1);
	memcpy(long_address + LIMIT_HTTP_ADDRESS - 8, "@ex.test", 8);
	long_address[LIMIT_HTTP_ADDRESS] = '\0';
	assert_true(http_address_parse(long_address, &domain));
	memset(long_address, 'a', LIMIT_HTTP_ADDRESS + 1);
	memcpy(long_address + LIMIT_HTTP_ADDRESS - 7, "@ex.test", 8);
	long_address[LIMIT_HTTP_ADDRESS + 1] = '\0';
	assert_false(http_address_parse(long_address, &domain));
	free(long_address);
}

static void test_autodiscover_address(void **state)
{
	char out[64];
	const char *plain = "<Request>\n  <EMailAddress> u@example.test\r\n</EMailAddress></Request>";
	const char *prefixed = "<a:Request><a:EMailAddress>p@example.test</a:EMailAddress>";
	const char *none = "<Request><LegacyDN>x</LegacyDN></Request>";
	const char *unclosed = "<EMailAddress>u@example.test";
	const char *closing_first = "</EMailAddress><EMailAddress>v@example.test</EMailAddress>";

	(void)state;
	assert_int_equal(http_autodiscover_address((const uint8_t *)plain, strlen(plain), out,
						   sizeof(out)), 1);
	assert_string_equal(out, "u@example.test");
	assert_int_equal(http_autodiscover_address((const uint8_t *)prefixed, strlen(prefixed), out,
						   sizeof(out)), 1);
	assert_string_equal(out, "p@example.test");
	assert_int_equal(http_autodiscover_address((const uint8_t *)none, strlen(none), out,
						   sizeof(out)), 0);
	assert_int_equal(http_autodiscover_address((const uint8_t *)unclosed, strlen(unclosed),
						   out, sizeof(out)), 0);
	assert_int_equal(http_autodiscover_address((const uint8_t *)closing_first,
						   strlen(closing_first), out, sizeof(out)), 1);
	assert_string_equal(out, "v@example.test");
	assert_int_equal(http_autodiscover_address((const uint8_t *)plain, strlen(plain), out, 8),
			 -1);
}

static void test_xml_escape(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	http_xml_escape(&b, "a<b>&\"c'");
	assert_string_equal(buf_cstr(&b), "a&lt;b&gt;&amp;&quot;c&apos;");
	buf_free(&b);
}

static void test_autoconfig_lists_implicit_tls_first(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	http_autoconfig_xml(&b, &all_ports, "u@example.test", "example.test");
	const char *x = buf_cstr(&b);
	const char *imaps = strstr(x, "<port>993</port>");
	const char *imap = strstr(x, "<port>143</port>");
	const char *pop3s = strstr(x, "<port>995</port>");
	const char *smtps = strstr(x, "<port>465</port>");
	const char *smtp = strstr(x, "<port>587</port>");
	assert_non_null(imaps);
	assert_non_null(imap);
	assert_true(imaps < imap && imap < pop3s && pop3s < smtps && smtps < smtp);
	assert_non_null(strstr(x, "<emailProvider id=\"example.test\">"));
	assert_non_null(strstr(x, "<outgoingServer type=\"smtp\">"));
	buf_free(&b);

	/* listeners that are off are not offered */
	struct http_mail_ports only_imaps = { "mx.example.test", 0, 993, 0, 0, 0, 0 };
	buf_init(&b);
	http_autoconfig_xml(&b, &only_imaps, "u@example.test", "example.test");
	assert_null(strstr(buf_cstr(&b), "pop3"));
	assert_null(strstr(buf_cstr(&b), "outgoingServer"));
	buf_free(&b);
}

static void test_documents_escape_the_request(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	http_autodiscover_xml(&b, &all_ports, "o'b&c@example.test");
	assert_non_null(strstr(buf_cstr(&b), "<LoginName>o&apos;b&amp;c@example.test</LoginName>"));
	assert_non_null(strstr(buf_cstr(&b), "<Type>POP3</Type>"));
	assert_non_null(strstr(buf_cstr(&b), "<Encryption>SSL</Encryption>"));
	assert_null(strstr(buf_cstr(&b), "o'b"));
	buf_reset(&b);
	http_mobileconfig(&b, &all_ports, "o'b&c@example.test", "example.test");
	assert_non_null(strstr(buf_cstr(&b), "<string>o&apos;b&amp;c@example.test</string>"));
	assert_non_null(strstr(buf_cstr(&b), "<integer>993</integer>"));
	assert_null(strstr(buf_cstr(&b), "o'b"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_value),
		cmocka_unit_test(test_address_parse),
		cmocka_unit_test(test_autodiscover_address),
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_autoconfig_lists_implicit_tls_first),
		cmocka_unit_test(test_documents_escape_the_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
