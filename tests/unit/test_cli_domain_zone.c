/* The zone-file text of `roost domain dns` (cli/domain_zone.c): TXT strings cut at 255 octets
 * and escaped, read back by the parser the DKIM records go through, the other record types'
 * lines, the MTA-STS id, and which listen addresses count as public. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/domain_zone.h"
#include "core/core.h"

static char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* The lengths of the quoted strings of a TXT line's data, unescaped. */
static size_t string_lengths(const char *data, size_t *lens, size_t max)
{
	size_t count = 0;

	for (const char *p = data; *p;) {
		if (*p++ != '"')
			continue;
		size_t n = 0;
		while (*p && *p != '"') {
			if (*p == '\\')
				p++;
			p++;
			n++;
		}
		if (*p == '"')
			p++;
		if (count < max)
			lens[count] = n;
		count++;
	}
	return count;
}

static void test_txt_chunks(void **state)
{
	static const size_t sizes[] = { 0, 1, 254, 255, 256, 510, 511, 1000 };
	(void)state;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *text = repeat('a', sizes[i]);
		struct buf out;
		size_t lens[8];
		buf_init(&out);
		zone_txt_append(&out, text);
		size_t n = string_lengths(buf_cstr(&out), lens, 8);
		size_t want = sizes[i] == 0 ? 1 : (sizes[i] + 254) / 255;
		assert_int_equal(n, want);
		size_t total = 0;
		for (size_t k = 0; k < n; k++) {
			assert_true(lens[k] <= 255);
			if (k + 1 < n)
				assert_int_equal(lens[k], 255);
			total += lens[k];
		}
		assert_int_equal(total, sizes[i]);
		buf_free(&out);
		free(text);
	}
}

static void test_txt_escapes_and_parses_back(void **state)
{
	/* 254 plain octets then a quote: the escape does not count towards the 255. */
	char *text = repeat('x', 300);
	text[254] = '"';
	text[255] = '\\';
	struct buf line;
	char *name = NULL, *back = NULL;
	size_t lens[4];
	(void)state;

	buf_init(&line);
	buf_append_str(&line, "sel._domainkey.example.test. IN TXT");
	zone_txt_append(&line, text);
	assert_int_equal(string_lengths(strstr(buf_cstr(&line), " \""), lens, 4), 2);
	assert_int_equal(lens[0], 255);
	assert_int_equal(zone_txt_parse((const char *)line.data, line.len, &name, &back), 0);
	assert_string_equal(name, "sel._domainkey.example.test");
	assert_string_equal(back, text);
	free(name);
	free(back);
	assert_int_equal(zone_txt_parse("no record here", 14, &name, &back), -1);
	assert_int_equal(zone_txt_parse("a. IN TXT \"open", 15, &name, &back), -1);
	buf_free(&line);
	free(text);
}

static void format_one(const struct zone_item *it, const char *want)
{
	struct buf out;
	buf_init(&out);
	zone_item_format(&out, it);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
}

static void test_record_lines(void **state)
{
	struct zone_item it = { .kind = ZONE_RECORD };
	(void)state;

	it.name = "example.test";
	it.text = "mail.example.test";
	it.type = DNS_MX;
	it.priority = 10;
	format_one(&it, "example.test. IN MX 10 mail.example.test.\n");
	it.name = "_imaps._tcp.example.test";
	it.type = DNS_SRV;
	it.priority = 0;
	it.weight = 1;
	it.port = 993;
	format_one(&it, "_imaps._tcp.example.test. IN SRV 0 1 993 mail.example.test.\n");
	it.text = "";
	it.weight = 0;
	it.port = 0;
	format_one(&it, "_imaps._tcp.example.test. IN SRV 0 0 0 .\n");
	it.name = "10.2.0.192.in-addr.arpa";
	it.text = "mail.example.test";
	it.type = DNS_PTR;
	it.published_elsewhere = true;
	format_one(&it, "; 10.2.0.192.in-addr.arpa. IN PTR mail.example.test.\n");
	it = (struct zone_item){ .kind = ZONE_COMMENT, .text = "what it is for" };
	format_one(&it, "; what it is for\n");
}

static void test_mtasts_id_follows_the_policy(void **state)
{
	char *testing = zone_mtasts_policy(MTASTS_MODE_TESTING, "mail.example.test");
	char *enforce = zone_mtasts_policy(MTASTS_MODE_ENFORCE, "mail.example.test");
	char *other_mx = zone_mtasts_policy(MTASTS_MODE_ENFORCE, "mx.example.test");
	char a[17], b[17], c[17], again[17];
	(void)state;

	assert_string_equal(enforce, "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\n"
				     "max_age: 604800\r\n");
	zone_mtasts_id(testing, a);
	zone_mtasts_id(enforce, b);
	zone_mtasts_id(other_mx, c);
	zone_mtasts_id(enforce, again);
	assert_int_equal(strlen(a), 16);
	assert_string_not_equal(a, b);
	assert_string_not_equal(b, c);
	assert_string_equal(b, again);
	free(testing);
	free(enforce);
	free(other_mx);
}

static void test_public_addresses(void **state)
{
	(void)state;
	assert_true(zone_address_is_public("192.0.2.10"));
	assert_true(zone_address_is_public("203.0.113.5"));
	assert_true(zone_address_is_public("2001:db8::25"));
	assert_false(zone_address_is_public("127.0.0.1"));
	assert_false(zone_address_is_public("10.1.2.3"));
	assert_false(zone_address_is_public("172.20.0.1"));
	assert_false(zone_address_is_public("192.168.1.1"));
	assert_false(zone_address_is_public("100.64.0.1"));
	assert_false(zone_address_is_public("169.254.1.1"));
	assert_false(zone_address_is_public("0.0.0.0"));
	assert_false(zone_address_is_public("*"));
	assert_false(zone_address_is_public("::"));
	assert_false(zone_address_is_public("::1"));
	assert_false(zone_address_is_public("fe80::1"));
	assert_false(zone_address_is_public("fd00::1"));
	assert_false(zone_address_is_public("::ffff:10.0.0.1"));
	assert_true(zone_address_is_public("::ffff:192.0.2.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_chunks),
		cmocka_unit_test(test_txt_escapes_and_parses_back),
		cmocka_unit_test(test_record_lines),
		cmocka_unit_test(test_mtasts_id_follows_the_policy),
		cmocka_unit_test(test_public_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
