/* MAIL FROM / RCPT TO argument parsing (smtp/path.c): RFC 5321 §4.1.2 path syntax, the
 * postmaster and null-path special cases, source routes, quoted local parts, domain and
 * address-literal rules, length limits, UTF-8 only with SMTPUTF8, ESMTP parameters (21Nails
 * CVE-2020-28022 shapes) and xtext (RFC 3461 §4). Every input is a heap copy of its exact
 * length so that an over-read shows under ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "smtp/path.h"

static int parse(const char *args, const char *prefix, bool lenient, bool utf8, bool allow_null,
		 struct smtp_path *p, const char **why)
{
	char *copy = xstrdup(args);
	int rc;

	*why = NULL;
	rc = smtp_path_parse(copy, prefix, lenient, utf8, allow_null, p, why);
	free(copy);
	if (rc < 0) {
		assert_non_null(*why);
		assert_true((*why)[0] == '5' && (*why)[3] == ' ');
		assert_null(p->mailbox);
		assert_int_equal(p->param_count, 0);
	}
	return rc;
}

static void ok_mailbox(const char *args, const char *prefix, bool utf8, const char *mailbox)
{
	struct smtp_path p;
	const char *why;

	if (parse(args, prefix, false, utf8, true, &p, &why) != 0)
		fail_msg("'%s' refused: %s", args, why);
	assert_string_equal(p.mailbox, mailbox);
	smtp_path_clear(&p);
}

static const char *refused(const char *args, const char *prefix, bool utf8)
{
	struct smtp_path p;
	const char *why;

	if (parse(args, prefix, false, utf8, true, &p, &why) == 0)
		fail_msg("'%s' accepted as '%s'", args, p.mailbox);
	return why;
}

static void test_basic_paths(void **state)
{
	ok_mailbox("FROM:<a@b.example>", "FROM:", false, "a@b.example");
	ok_mailbox("from:<A.B-c+d@Example.ORG>", "FROM:", false, "A.B-c+d@Example.ORG");
	ok_mailbox("TO:<x@y>", "TO:", false, "x@y");
	ok_mailbox("FROM:<>", "FROM:", false, "");
	ok_mailbox("FROM:<a@example.org.>", "FROM:", false, "a@example.org.");
	ok_mailbox("TO:<a@[192.0.2.1]>", "TO:", false, "a@[192.0.2.1]");
	ok_mailbox("TO:<a@[IPv6:2001:db8::1]>", "TO:", false, "a@[IPv6:2001:db8::1]");
	ok_mailbox("TO:<\"a b\\\"c\"@d>", "TO:", false, "\"a b\\\"c\"@d");
	/* RFC 5321 §4.1.1.3: the source route is dropped */
	ok_mailbox("TO:<@r1.example,@r2.example:a@b>", "TO:", false, "a@b");
	ok_mailbox("TO:<`id`@x>", "TO:", false, "`id`@x"); /* legal atext, never a shell */
}

static void test_postmaster_and_null(void **state)
{
	struct smtp_path p;
	const char *why;

	ok_mailbox("TO:<postmaster>", "TO:", false, "postmaster");
	ok_mailbox("TO:<PostMaster>", "TO:", false, "PostMaster");
	refused("TO:<bob>", "TO:", false);
	refused("FROM:<postmaster>", "FROM:", false);
	assert_int_equal(parse("TO:<>", "TO:", false, false, false, &p, &why), -1);
}

static void test_syntax_errors(void **state)
{
	static const char *const bad[] = {
		"FROM:a@b",	     "FROM:<a@b",	   "FROM:<a@b>x",	"FROM <a@b>",
		"FROM:<;sleep 10;>", "FROM:<$(id)>",	   "FROM:<a@b;c>",	"FROM:<a b@c>",
		"FROM:<a@b c>",	     "FROM:<a..b@c>",	   "FROM:<.a@c>",	"FROM:<a.@c>",
		"FROM:<a@-b>",	     "FROM:<a@b->",	   "FROM:<a@b..c>",	"FROM:<a@.b>",
		"FROM:<a@>",	     "FROM:<@b>",	   "FROM:<a@[]>",	"FROM:<a@[a b]>",
		"FROM:<a@[1.2.3.4>", "FROM:<\"a@b>",	   "FROM:<\"a\x01\"@b>", "FROM:<a@b@c>",
		"FROM:<@x.y a@b>",   "FROM:<@nocolon>",	   "FROM:<a\x7f@b>",	"FROM:<a@b\x01>",
		"FROM:<a@b>\x01",    "FROM:",		   "",			"TO:<a@b>",
		"FROM:<a@b_c>",	     "FROM:<\"a\\\x01\"@b>",
	};

	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		refused(bad[i], "FROM:", false);
}

static void test_lenient_space(void **state)
{
	struct smtp_path p;
	const char *why;

	assert_int_equal(parse("FROM: <a@b>", "FROM:", false, false, true, &p, &why), -1);
	assert_int_equal(parse("FROM: <a@b>", "FROM:", true, false, true, &p, &why), 0);
	assert_string_equal(p.mailbox, "a@b");
	smtp_path_clear(&p);
}

static void test_lengths(void **state)
{
	char buf[600], want[600];
	char part[70];

	/* local part: 64 octets ok, 65 refused (RFC 5321 §4.5.3.1.1) */
	memset(part, 'a', 64);
	part[64] = '\0';
	snprintf(buf, sizeof(buf), "FROM:<%s@b>", part);
	snprintf(want, sizeof(want), "%s@b", part);
	ok_mailbox(buf, "FROM:", false, want);
	snprintf(buf, sizeof(buf), "FROM:<%sa@b>", part);
	refused(buf, "FROM:", false);
	/* a domain label of 64 octets is refused */
	memset(part, 'd', 64);
	snprintf(buf, sizeof(buf), "FROM:<a@%s.example>", part);
	refused(buf, "FROM:", false);
	/* the whole mailbox: at most 254 octets */
	memset(part, 'd', 60);
	part[60] = '\0';
	snprintf(buf, sizeof(buf), "FROM:<a@%s.%s.%s.%s.eeeeeeeee>", part, part, part, part);
	refused(buf, "FROM:", false); /* 255 */
	snprintf(buf, sizeof(buf), "FROM:<a@%s.%s.%s.%s.eeeeeeee>", part, part, part, part);
	snprintf(want, sizeof(want), "a@%s.%s.%s.%s.eeeeeeee", part, part, part, part); /* 254 */
	ok_mailbox(buf, "FROM:", false, want);
}

static void test_label_63_accepted(void **state)
{
	char buf[200], want[200];
	char label[64];

	memset(label, 'd', 63);
	label[63] = '\0';
	snprintf(buf, sizeof(buf), "TO:<a@%s.example>", label);
	snprintf(want, sizeof(want), "a@%s.example", label);
	ok_mailbox(buf, "TO:", false, want);
}

static void test_utf8(void **state)
{
	refused("FROM:<j\xc3\xbcrgen@b>", "FROM:", false);
	ok_mailbox("FROM:<j\xc3\xbcrgen@b\xc3\xbc.example>", "FROM:", true,
		   "j\xc3\xbcrgen@b\xc3\xbc.example");
	refused("FROM:<a@b> X=\xc3\xbc", "FROM:", false);
}

static void test_params(void **state)
{
	struct smtp_path p;
	const char *why;
	bool present;

	assert_int_equal(parse("FROM:<a@b> size=10  BODY=8BITMIME SMTPUTF8 ", "FROM:", false, true,
			       true, &p, &why),
			 0);
	assert_int_equal(p.param_count, 3);
	assert_string_equal(p.params[0].keyword, "SIZE");
	assert_string_equal(p.params[0].value, "10");
	assert_string_equal(smtp_path_param(&p, "body", &present), "8BITMIME");
	assert_true(present);
	assert_null(smtp_path_param(&p, "SMTPUTF8", &present));
	assert_true(present);
	assert_null(smtp_path_param(&p, "RET", &present));
	assert_false(present);
	smtp_path_clear(&p);
	assert_null(p.mailbox);
}

static void test_bad_params(void **state)
{
	static const char *const bad[] = {
		"FROM:<a@b> SIZE=",	"FROM:<a@b> =x",	  "FROM:<a@b> BODY=8BITMIME BODY=7BIT",
		"FROM:<a@b> A==b",	"FROM:<a@b> A=b=c",	  "FROM:<a@b> -A=1",
		"FROM:<a@b> A_B=1",	"FROM:<a@b> A=\x01",	  "FROM:<a@b> A=\x7f",
		"FROM:<a@b>SIZE=1",	"FROM:<a@b> size=1 SIZE=2", "FROM:<a@b> A\tB",
		"FROM:<a@b> AUTH=\"=",
	};

	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		refused(bad[i], "FROM:", false);
}

static void test_param_count_limit(void **state)
{
	struct buf b;
	struct smtp_path p;
	const char *why;

	buf_init(&b);
	buf_printf(&b, "FROM:<a@b>");
	for (int i = 0; i < SMTP_MAX_PARAMS; i++)
		buf_printf(&b, " P%d=%d", i, i);
	assert_int_equal(parse(buf_cstr(&b), "FROM:", false, false, true, &p, &why), 0);
	assert_int_equal(p.param_count, SMTP_MAX_PARAMS);
	smtp_path_clear(&p);
	buf_printf(&b, " ONE=MORE");
	assert_int_equal(parse(buf_cstr(&b), "FROM:", false, false, true, &p, &why), -1);
	assert_string_equal(why, "555 5.5.4 Too many parameters");
	/* 10,000 parameters: refused, bounded */
	buf_reset(&b);
	buf_printf(&b, "FROM:<a@b>");
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, " X%d", i);
	assert_int_equal(parse(buf_cstr(&b), "FROM:", false, false, true, &p, &why), -1);
	buf_free(&b);
}

static void test_xtext(void **state)
{
	assert_true(smtp_xtext_valid("abc"));
	assert_true(smtp_xtext_valid("a+2Bb"));
	assert_true(smtp_xtext_valid(""));
	assert_false(smtp_xtext_valid("a+2b")); /* hex is upper case */
	assert_false(smtp_xtext_valid("a+2"));
	assert_false(smtp_xtext_valid("a+"));
	assert_false(smtp_xtext_valid("a=b"));
	assert_false(smtp_xtext_valid("a b"));
	assert_false(smtp_xtext_valid("a\x80"));

	assert_true(smtp_xtext_clean("a@b", true));
	assert_true(smtp_xtext_clean("a+40b@c", true));
	assert_true(smtp_xtext_clean("anything", false));
	assert_false(smtp_xtext_clean("anything", true));
	assert_false(smtp_xtext_clean("\"", true));
	assert_false(smtp_xtext_clean("@b", true));
	assert_false(smtp_xtext_clean("a@", true));
	assert_false(smtp_xtext_clean("+40b", true));
	assert_false(smtp_xtext_clean("a+0Ab@c", true));
	assert_false(smtp_xtext_clean("a+0Db", false));
	assert_false(smtp_xtext_clean("a+00b", false));
	assert_false(smtp_xtext_clean("a+7Fb", false));
	assert_false(smtp_xtext_clean("a+0", false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_paths),
		cmocka_unit_test(test_postmaster_and_null),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_lenient_space),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_label_63_accepted),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_param_count_limit),
		cmocka_unit_test(test_xtext),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
