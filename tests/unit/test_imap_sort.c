/* SORT and THREAD building blocks: the RFC 5256 §2.1 base subject, the keys read back from a
 * cached ENVELOPE, and the ORDEREDSUBJECT and REFERENCES threading of RFC 5256 §2.2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "imap/sort.h"

static void check_base(const char *subject, const char *base, bool reply)
{
	struct buf b;

	buf_init(&b);
	bool r = imap_base_subject(subject, strlen(subject), &b);
	if (strcmp(buf_cstr(&b), base) != 0 || r != reply)
		fail_msg("\"%s\" -> \"%s\" (reply %d), expected \"%s\" (reply %d)", subject,
			 buf_cstr(&b), r, base, reply);
	buf_free(&b);
}

static void test_base_subject(void **state)
{
	(void)state;
	check_base("Hello", "hello", false);
	check_base("Re: Hello", "hello", true);
	check_base("RE:Hello", "hello", true);
	check_base("Fwd: Hello", "hello", true);
	check_base("fw: Hello", "hello", true);
	check_base("Re: Re[2]: Hello", "hello", true);
	check_base("Re : Hello", "hello", true);
	check_base("[list] Re: Hello", "hello", true);
	check_base("[list] Hello", "hello", false);
	check_base("Re: [list] Re: Hello", "hello", true);
	check_base("Hello (fwd)", "hello", true);
	check_base("Hello (FWD) (fwd)  ", "hello", true);
	check_base("[Fwd: Re: Hello]", "hello", true);
	check_base("[fwd: [fwd: Hello]]", "hello", true);
	check_base("  Hello \t  world  ", "hello world", false);
	check_base("Hello\r\n world", "hello world", false);
	/* a blob alone is the subject: it is not removed */
	check_base("[only]", "[only]", false);
	check_base("Re: [only]", "[only]", true);
	/* not leaders */
	check_base("Reply: x", "reply: x", false);
	check_base("Ref", "ref", false);
	check_base("Re", "re", false);
	check_base("", "", false);
	check_base("Re:", "", true);
	/* non-ASCII case folding */
	check_base("AW: Grüße", "aw: grüße", false);
	check_base("Re: GRÜSSE", "grüsse", true);
}

static void test_envelope_keys(void **state)
{
	struct imap_sort_msg m = { .arrival = 42 };
	(void)state;
	imap_sort_msg_from_envelope(
		&m, "(\"Mon, 1 Jan 2024 10:00:00 +0100\" \"=?utf-8?q?Re=3A_Gr=C3=BC=C3=9Fe?=\""
		    " ((\"Alice =?utf-8?q?B=C3=B6?=\" NIL \"Alice\" \"example.test\"))"
		    " ((NIL NIL \"s\" \"example.test\")) ((NIL NIL \"r\" \"example.test\"))"
		    " ((NIL NIL \"team\" NIL)(NIL NIL \"Bob\" \"Example.Test\")(NIL NIL NIL NIL))"
		    " NIL NIL \"<parent@x>\" \"<self@x>\")",
		IMAP_SORT_NEED_ALL);
	assert_int_equal(m.sent, 1704099600);
	assert_string_equal(m.subject, "grüße");
	assert_true(m.subject_is_reply);
	assert_string_equal(m.from, "alice");
	assert_string_equal(m.to, "bob"); /* the group marker is skipped */
	assert_string_equal(m.cc, "");
	assert_string_equal(m.display_from, "alice bö");
	assert_string_equal(m.display_to, "bob@example.test");
	assert_string_equal(m.message_id, "self@x");
	assert_int_equal(m.ref_count, 1);
	assert_string_equal(m.refs[0], "parent@x");
	const char *hdr = "Subject: x\r\nReferences: <a@x>\r\n <b@x> junk <c@x>\r\n\r\n"
			  "References: <body@x>\r\n";
	imap_sort_msg_refs(&m, (const uint8_t *)hdr, strlen(hdr));
	assert_int_equal(m.ref_count, 3);
	assert_string_equal(m.refs[2], "c@x");
	imap_sort_msg_clear(&m);

	/* only what is asked for */
	m.arrival = 42;
	imap_sort_msg_from_envelope(&m, "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"Re: x\" NIL NIL NIL"
					" NIL NIL NIL NIL \"<id@x>\")",
				    IMAP_SORT_NEED_SUBJECT);
	assert_string_equal(m.subject, "x");
	assert_int_equal(m.sent, 42);
	assert_null(m.message_id);
	imap_sort_msg_clear(&m);

	/* no envelope: empty keys, the arrival as sent date */
	m.arrival = 42;
	imap_sort_msg_from_envelope(&m, NULL, IMAP_SORT_NEED_ALL);
	assert_int_equal(m.sent, 42);
	assert_string_equal(m.subject, "");
	assert_null(m.message_id);
	imap_sort_msg_clear(&m);
}

struct fixture_msg {
	const char *subject;
	int64_t sent;
	const char *id;
	const char *refs[4];
};

static char *threads_of(const struct fixture_msg *f, size_t n, bool references)
{
	struct imap_sort_msg *m = calloc(n, sizeof(*m));
	struct imap_sort_msg **p = calloc(n, sizeof(*p));
	struct buf out;
	char *text;

	for (size_t i = 0; i < n; i++) {
		struct buf b;
		buf_init(&b);
		m[i].msn = (uint32_t)i + 1;
		m[i].uid = (uint32_t)i + 101;
		m[i].sent = f[i].sent;
		m[i].subject_is_reply = imap_base_subject(f[i].subject, strlen(f[i].subject), &b);
		m[i].subject = xstrdup(buf_cstr(&b));
		buf_free(&b);
		m[i].message_id = f[i].id ? xstrdup(f[i].id) : NULL;
		while (m[i].ref_count < 4 && f[i].refs[m[i].ref_count] != NULL)
			m[i].ref_count++;
		m[i].refs = calloc(m[i].ref_count + 1, sizeof(char *));
		for (size_t r = 0; r < m[i].ref_count; r++)
			m[i].refs[r] = xstrdup(f[i].refs[r]);
		p[n - 1 - i] = &m[i]; /* any input order */
	}
	buf_init(&out);
	if (references)
		imap_thread_references(p, n, false, &out);
	else
		imap_thread_orderedsubject(p, n, false, &out);
	text = xstrdup(buf_cstr(&out));
	buf_free(&out);
	for (size_t i = 0; i < n; i++)
		imap_sort_msg_clear(&m[i]);
	free(m);
	free(p);
	return text;
}

static void test_orderedsubject(void **state)
{
	static const struct fixture_msg f[] = {
		{ "Re: a", 30, NULL, { NULL } }, { "b", 10, NULL, { NULL } },
		{ "a", 20, NULL, { NULL } },     { "Fwd: a", 25, NULL, { NULL } },
		{ "re: b", 5, NULL, { NULL } },  { "c", 1, NULL, { NULL } },
	};
	(void)state;
	char *t = threads_of(f, ARRAY_LEN(f), false);
	assert_string_equal(t, "(6)(5 2)(3 (4)(1))");
	free(t);
}

static void test_references(void **state)
{
	/* The example tree of RFC 5256 §2.2 in small: a chain, a fork, a missing parent with
	 * two children (a dummy at the root), a subject merge, and a self-reference. */
	static const struct fixture_msg f[] = {
		{ "root", 1, "r@x", { NULL } },
		{ "Re: root", 2, "c1@x", { "r@x", NULL } },
		{ "Re: root", 3, "c2@x", { "r@x", NULL } },
		{ "Re: root", 4, "g1@x", { "r@x", "c1@x", NULL } },
		{ "Re: lost", 5, "l1@x", { "gone@x", NULL } },
		{ "Re: lost", 6, "l2@x", { "gone@x", NULL } },
		{ "Re: root", 7, "late@x", { NULL } }, /* no References: joins by subject */
		{ "self", 8, "s@x", { "s@x", NULL } },
		{ "dup", 9, "r@x", { NULL } }, /* duplicate Message-ID: stands alone */
	};
	(void)state;
	char *t = threads_of(f, ARRAY_LEN(f), true);
	assert_string_equal(t, "(1 (2 4)(3)(7))((5)(6))(8)(9)");
	free(t);
}

static void test_references_loop_and_empty(void **state)
{
	static const struct fixture_msg f[] = {
		{ "x", 1, "a@x", { "b@x", NULL } },
		{ "y", 2, "b@x", { "a@x", NULL } },
		{ "", 3, NULL, { NULL } },
		{ "", 4, NULL, { NULL } },
	};
	(void)state;
	char *t = threads_of(f, ARRAY_LEN(f), true);
	/* the loop is cut; empty subjects are never merged */
	assert_string_equal(t, "(2 1)(3)(4)"); /* 1 was put under 2 first */
	free(t);
	t = threads_of(f, 0, true);
	assert_string_equal(t, "");
	free(t);
}

static void test_references_deep(void **state)
{
	/* 20,000 messages each answering the one before: walks without recursion */
	enum { N = 20000 };
	struct imap_sort_msg *m = calloc(N, sizeof(*m));
	struct imap_sort_msg **p = calloc(N, sizeof(*p));
	struct buf out;
	(void)state;

	for (size_t i = 0; i < N; i++) {
		char id[32];
		m[i].msn = (uint32_t)i + 1;
		m[i].sent = (int64_t)i;
		m[i].subject = xstrdup("deep");
		snprintf(id, sizeof(id), "%zu@x", i);
		m[i].message_id = xstrdup(id);
		if (i > 0) {
			snprintf(id, sizeof(id), "%zu@x", i - 1);
			m[i].refs = calloc(1, sizeof(char *));
			m[i].refs[0] = xstrdup(id);
			m[i].ref_count = 1;
		}
		p[i] = &m[i];
	}
	buf_init(&out);
	imap_thread_references(p, N, false, &out);
	assert_true(strncmp(buf_cstr(&out), "(1 2 3 ", 7) == 0);
	assert_true(strstr(buf_cstr(&out), " 19999 20000)") != NULL);
	assert_null(strchr(buf_cstr(&out) + 1, '('));
	buf_free(&out);
	for (size_t i = 0; i < N; i++)
		imap_sort_msg_clear(&m[i]);
	free(m);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test(test_envelope_keys),
		cmocka_unit_test(test_orderedsubject),
		cmocka_unit_test(test_references),
		cmocka_unit_test(test_references_loop_and_empty),
		cmocka_unit_test(test_references_deep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
