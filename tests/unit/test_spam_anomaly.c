/* Unit tests for the header and MIME anomaly rules of the spam score: a normal message scores
 * nothing, and each rule, alone, adds its points and names itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "spam/spam.h"

/* 2026-12-04 10:00:00 UTC */
#define NOW 1796378400

static const char date_ok[] = "Date: Fri, 04 Dec 2026 09:00:00 +0000\r\n";
static const char msgid_ok[] = "Message-ID: <a1@example.org>\r\n";

static double score(const char *msg, char *tests, size_t testslen)
{
	struct buf t;
	double p;

	buf_init(&t);
	p = spam_anomaly_points((const uint8_t *)msg, strlen(msg), NOW, &t);
	snprintf(tests, testslen, "%s", t.len > 0 ? buf_cstr(&t) : "");
	buf_free(&t);
	return p;
}

static void expect(const char *msg, double points, const char *tests_expected)
{
	char tests[256];
	double p = score(msg, tests, sizeof(tests));

	if (p != points || strcmp(tests, tests_expected) != 0)
		fail_msg("got %.2f \"%s\", wanted %.2f \"%s\"", p, tests, points, tests_expected);
}

static char *message(char *out, size_t outlen, const char *date, const char *msgid,
		     const char *rest)
{
	snprintf(out, outlen, "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
			      "Subject: Lunch on Friday\r\n%s%s%s", date, msgid, rest);
	return out;
}

static void test_normal_message_scores_nothing(void **state)
{
	char m[4096];

	(void)state;
	expect(message(m, sizeof(m), date_ok, msgid_ok, "\r\nSee you there.\r\n"), 0.0, "");
	/* a plain display name with an address (list rewriting) is not counted */
	expect("From: \"alice@example.org via List\" <list@lists.example.net>\r\n"
	       "Date: Fri, 04 Dec 2026 09:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n",
	       0.0, "");
}

static void test_date_rules(void **state)
{
	char m[4096];

	(void)state;
	expect(message(m, sizeof(m), "", msgid_ok, "\r\nhi\r\n"), SPAM_POINTS_MISSING_DATE,
	       ",MISSING_DATE");
	expect(message(m, sizeof(m), "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n", msgid_ok,
		       "\r\nhi\r\n"),
	       SPAM_POINTS_DATE_FUTURE, ",DATE_IN_FUTURE");
	expect(message(m, sizeof(m), "Date: Mon, 01 Dec 2025 10:00:00 +0000\r\n", msgid_ok,
		       "\r\nhi\r\n"),
	       SPAM_POINTS_DATE_PAST, ",DATE_IN_PAST");
	/* a few hours of clock skew is normal */
	expect(message(m, sizeof(m), "Date: Fri, 04 Dec 2026 18:00:00 +0000\r\n", msgid_ok,
		       "\r\nhi\r\n"),
	       0.0, "");
}

static void test_missing_message_id(void **state)
{
	char m[4096];

	(void)state;
	expect(message(m, sizeof(m), date_ok, "", "\r\nhi\r\n"), SPAM_POINTS_MISSING_MESSAGE_ID,
	       ",MISSING_MESSAGE_ID");
}

static void test_encoded_from_name_spoof(void **state)
{
	char m[4096];

	(void)state;
	/* "=?utf-8?B?c2VydmljZUBiYW5rLmV4YW1wbGU=?=" is "service@bank.example" */
	snprintf(m, sizeof(m), "From: =?utf-8?B?c2VydmljZUBiYW5rLmV4YW1wbGU=?= "
			       "<x@elsewhere.example>\r\n%s%s\r\nhi\r\n", date_ok, msgid_ok);
	expect(m, SPAM_POINTS_FROM_NAME_SPOOF, ",FROM_NAME_SPOOF");
	/* the same name from the bank itself is fine */
	snprintf(m, sizeof(m), "From: =?utf-8?B?c2VydmljZUBiYW5rLmV4YW1wbGU=?= "
			       "<service@bank.example>\r\n%s%s\r\nhi\r\n", date_ok, msgid_ok);
	expect(m, 0.0, "");
}

static void test_subject_all_caps(void **state)
{
	char m[4096];

	(void)state;
	snprintf(m, sizeof(m), "From: a@example.org\r\nSubject: =?utf-8?Q?URGENT_ACTION_REQUIRED?="
			       "\r\n%s%s\r\nhi\r\n", date_ok, msgid_ok);
	expect(m, SPAM_POINTS_SUBJECT_CAPS, ",SUBJECT_ALL_CAPS");
	snprintf(m, sizeof(m), "From: a@example.org\r\nSubject: RE: NDA\r\n%s%s\r\nhi\r\n",
		 date_ok, msgid_ok);
	expect(m, 0.0, ""); /* short acronyms are not shouting */
}

static void test_many_recipients(void **state)
{
	char m[8192], to[6000] = "To: ";

	(void)state;
	for (int i = 0; i <= SPAM_ANOMALY_MAX_RECIPIENTS; i++) {
		char one[32];
		snprintf(one, sizeof(one), "%su%d@example.net", i ? ", " : "", i);
		strcat(to, one);
	}
	snprintf(m, sizeof(m), "From: a@example.org\r\n%s\r\n%s%s\r\nhi\r\n", to, date_ok,
		 msgid_ok);
	expect(m, SPAM_POINTS_MANY_RECIPIENTS, ",MANY_RECIPIENTS");
}

static void test_mime_rules(void **state)
{
	char m[4096];

	(void)state;
	snprintf(m, sizeof(m),
		 "From: a@example.org\r\n%s%sMIME-Version: 1.0\r\n"
		 "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nSee the invoice.\r\n"
		 "--b\r\nContent-Type: application/octet-stream\r\n"
		 "Content-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\r\nMZ\r\n"
		 "--b--\r\n", date_ok, msgid_ok);
	expect(m, SPAM_POINTS_EXECUTABLE, ",EXECUTABLE_ATTACHMENT");
	snprintf(m, sizeof(m),
		 "From: a@example.org\r\n%s%sMIME-Version: 1.0\r\n"
		 "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: image/png\r\n\r\nPNG\r\n"
		 "--b--\r\n", date_ok, msgid_ok);
	expect(m, SPAM_POINTS_NO_TEXT_PART, ",NO_TEXT_PART");
	snprintf(m, sizeof(m),
		 "From: a@example.org\r\n%s%sMIME-Version: 1.0\r\n"
		 "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
		 "--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n"
		 "--b--\r\n", date_ok, msgid_ok);
	expect(m, 0.0, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_message_scores_nothing),
		cmocka_unit_test(test_date_rules),
		cmocka_unit_test(test_missing_message_id),
		cmocka_unit_test(test_encoded_from_name_spoof),
		cmocka_unit_test(test_subject_all_caps),
		cmocka_unit_test(test_many_recipients),
		cmocka_unit_test(test_mime_rules),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
