/* Unit tests for content decoding (base64, quoted-printable, charsets), the case-folded search
 * used by SEARCH, and RFC 5322 date parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mime/mime.h"
#include "mime_test_util.h"

static void check_qp(const char *in, const char *want)
{
	struct buf b;

	buf_init(&b);
	mime_decode_qp((const uint8_t *)in, strlen(in), &b);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void test_quoted_printable(void **state)
{
	check_qp("a=3Db", "a=b");
	check_qp("caf=C3=a9", "caf\xc3\xa9");
	/* Soft line breaks, with and without trailing whitespace after the '='. */
	check_qp("long=\r\nline", "longline");
	check_qp("long= \t\nline", "longline");
	/* Hard line ends are kept as they are; trailing whitespace is transport padding. */
	check_qp("a  \r\nb\t\nc", "a\r\nb\nc");
	/* Malformed escapes stay literal; a final '=' is a soft break. */
	check_qp("=ZZ=4", "=ZZ=4");
	check_qp("x=", "x");
	check_qp("", "");
}

static void test_base64(void **state)
{
	struct buf b;

	buf_init(&b);
	mime_decode_base64((const uint8_t *)"aGVs\r\nbG8=", 10, &b);
	assert_string_equal(buf_cstr(&b), "hello");
	buf_reset(&b);
	/* Junk and missing padding are tolerated for SEARCH. */
	mime_decode_base64((const uint8_t *)"a GV*sbG8", 9, &b);
	assert_string_equal(buf_cstr(&b), "hello");
	buf_free(&b);
}

static void test_decode_parts(void **state)
{
	size_t len;
	uint8_t *data = mime_test_load("msg_10.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_root(msg);
	struct buf b;

	buf_init(&b);
	/* Mixed-case transfer encoding names are recognised. */
	assert_int_equal(mime_decode_body(msg, mime_part_child(root, 1), &b), 0);
	assert_string_equal(buf_cstr(&b), "\xa1This is a Quoted Printable encoded message!\n");
	buf_reset(&b);
	assert_int_equal(mime_part_text_utf8(msg, mime_part_child(root, 1), &b), 0);
	assert_string_equal(buf_cstr(&b), "\xc2\xa1This is a Quoted Printable encoded message!\n");
	buf_reset(&b);
	assert_int_equal(mime_decode_body(msg, mime_part_child(root, 2), &b), 0);
	assert_string_equal(buf_cstr(&b), "This is a Base64 encoded message.");
	buf_reset(&b);
	assert_int_equal(mime_decode_body(msg, mime_part_child(root, 3), &b), 0);
	assert_string_equal(buf_cstr(&b), "This is a Base64 encoded message.\n");
	buf_reset(&b);
	assert_int_equal(mime_decode_body(msg, mime_part_child(root, 4), &b), 0);
	assert_string_equal(buf_cstr(&b), "This has no Content-Transfer-Encoding: header.\n");
	buf_free(&b);
	mime_message_free(&msg);
	free(data);

	/* Unknown transfer encodings are reported (IMAP BINARY answers UNKNOWN-CTE). */
	const char *m = "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 a\n";
	msg = mime_parse((const uint8_t *)m, strlen(m), NULL);
	buf_init(&b);
	assert_int_equal(mime_decode_body(msg, mime_root(msg), &b), -1);
	assert_int_equal(mime_part_text_utf8(msg, mime_root(msg), &b), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	mime_message_free(&msg);

	/* koi8-r body converted to UTF-8. */
	m = "Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4";
	msg = mime_parse((const uint8_t *)m, strlen(m), NULL);
	buf_init(&b);
	assert_int_equal(mime_part_text_utf8(msg, mime_root(msg), &b), 0);
	assert_string_equal(buf_cstr(&b), "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	assert_true(mime_text_contains((const char *)b.data, b.len, "\xd0\x9f\xd0\xa0\xd0\x98"));
	buf_free(&b);
	mime_message_free(&msg);
}

static void test_text_contains(void **state)
{
	const char *t = "Hello W\xc3\x96rld \xce\xa3\xce\xbf\xcf\x86\xce\xaf\xce\xb1 "
			"\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0 \xc4\x8c\xc3\xa9\xc5\xa1";

	assert_true(mime_text_contains(t, strlen(t), "hello"));
	assert_true(mime_text_contains(t, strlen(t), "HELLO w"));
	assert_true(mime_text_contains(t, strlen(t), ""));
	/* Latin-1: ö matches Ö. */
	assert_true(mime_text_contains(t, strlen(t), "w\xc3\xb6rld"));
	/* Greek: ΣΟΦΊΑ matches Σοφία (with tonos), and final sigma matches sigma. */
	assert_true(mime_text_contains(t, strlen(t),
				       "\xce\xa3\xce\x9f\xce\xa6\xce\x8a\xce\x91"));
	assert_true(mime_text_contains("\xcf\x82", 2, "\xce\xa3"));
	/* Cyrillic: МОСКВА matches Москва. */
	assert_true(mime_text_contains(t, strlen(t),
				       "\xd0\x9c\xd0\x9e\xd0\xa1\xd0\x9a\xd0\x92\xd0\x90"));
	/* Latin Extended-A: čÉŠ matches ČéŠ. */
	assert_true(mime_text_contains(t, strlen(t), "\xc4\x8d\xc3\x89\xc5\xa0"));
	assert_false(mime_text_contains(t, strlen(t), "world"));
	assert_false(mime_text_contains(t, strlen(t), "hello!"));
	/* Length-bounded: text past len is not searched. */
	assert_false(mime_text_contains(t, 4, "hello"));
	/* Invalid UTF-8 does not break the search. */
	assert_true(mime_text_contains("\xff\xfe" "ABC\xc3", 6, "bc"));
}

static void check_date(const char *s, int64_t want, int want_tz)
{
	int64_t t = 0;
	int tz = 99;

	assert_int_equal(mime_parse_date(s, strlen(s), &t, &tz), 0);
	assert_int_equal(t, want);
	assert_int_equal(tz, want_tz);
}

static void check_bad_date(const char *s)
{
	int64_t t;
	int tz;

	assert_int_equal(mime_parse_date(s, strlen(s), &t, &tz), -1);
}

static void test_dates(void **state)
{
	/* 1996-07-17 09:23:25 UTC = 837595405 (RFC 3501 example message). */
	check_date("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)", 837595405, -420);
	check_date("17 Jul 1996 02:23:25 -0700", 837595405, -420);
	check_date("Wed,17 Jul 1996 09:23:25 GMT", 837595405, 0);
	check_date("17-Jul-1996 02:23:25 -0700", 837595405, -420); /* IMAP date-time */
	check_date("wed, 17 JUL 96 04:23:25 CDT", 837595405, -300);
	check_date("Wed, 17 Jul 1996 09:23 +0000", 837595380, 0);
	check_date("  Wed , 17 Jul 1996 (a comment) 09 : 23 : 25 UT", 837595405, 0);
	check_date("Thu, 1 Jan 1970 00:00:00 +0000", 0, 0);
	check_date("Mon, 29 Feb 2016 12:00:00 +0530", 1456727400, 330);
	check_date("Sat, 1 Jan 2000 00:00:00 +0000 extra junk", 946684800, 0);
	/* Two-digit years below 50 are 20xx; three-digit years add 1900. */
	check_date("1 Jan 01 00:00:00 +0000", 978307200, 0);
	check_date("1 Jan 101 00:00:00 +0000", 978307200, 0);
	/* A missing or unknown zone counts as -0000. */
	check_date("1 Jan 2001 00:00:00", 978307200, 0);
	check_date("1 Jan 2001 00:00:00 XYZ", 978307200, 0);

	check_bad_date("");
	check_bad_date("Fri, 20 Apr 2001 27:39:33 -0400"); /* hour 27 (corpus msg_47 variant) */
	check_bad_date("30 Feb 2001 00:00:00 +0000");
	check_bad_date("29 Feb 2001 00:00:00 +0000");
	check_bad_date("1 Foo 2001 00:00:00 +0000");
	check_bad_date("1 Jan 2001");
	check_bad_date("1 Jan 2001 00:60:00 +0000");
	check_bad_date("1 Jan 2001 00:00:00 +2400");
	check_bad_date("1 Jan 20011 00:00:00 +0000");
	check_bad_date("garbage");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quoted_printable),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_decode_parts),
		cmocka_unit_test(test_text_contains),
		cmocka_unit_test(test_dates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
