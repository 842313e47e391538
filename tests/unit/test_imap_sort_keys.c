/* The SORT/THREAD keys as the index keeps them: encoded, checked and copied back into an
 * arena they equal the keys decoded from the envelope, only the keys asked for are copied,
 * and bytes that are not in the format (cut short, garbled) are refused, never read past. */
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

static const char *const envelope =
	"(\"Mon, 1 Jan 2024 10:00:00 +0100\" \"=?utf-8?q?Re=3A_Gr=C3=BC=C3=9Fe?=\""
	" ((\"Alice =?utf-8?q?B=C3=B6?=\" NIL \"Alice\" \"example.test\"))"
	" ((NIL NIL \"s\" \"example.test\")) ((NIL NIL \"r\" \"example.test\"))"
	" ((NIL NIL \"Bob\" \"Example.Test\")) ((NIL NIL \"Cy\" \"example.test\")) NIL"
	" \"<parent@x>\" \"<self@x>\")";

static void encoded(struct buf *out, bool with_refs)
{
	struct imap_sort_msg m = { .arrival = 42 };
	const char *hdr = "References: <a@x> <b@x>\r\n\r\n";

	imap_sort_msg_from_envelope(&m, envelope, IMAP_SORT_NEED_ALL);
	if (with_refs)
		imap_sort_msg_refs(&m, (const uint8_t *)hdr, strlen(hdr));
	imap_sort_keys_encode(&m, with_refs, out);
	imap_sort_msg_clear(&m);
}

static void test_round_trip(void **state)
{
	struct buf b;
	struct imap_sort_keys_arena a;
	struct imap_sort_msg ms[2] = { { .uid = 7, .arrival = 42 }, { .uid = 8, .arrival = 43 } };
	size_t refs;
	bool known;
	(void)state;

	buf_init(&b);
	encoded(&b, true);
	assert_true(imap_sort_keys_check(b.data, b.len, &refs, &known));
	assert_int_equal(refs, 2);
	assert_true(known);
	imap_sort_keys_arena_init(&a);
	imap_sort_msg_from_envelope(&ms[1], NULL, 0); /* not taken: keeps its defaults */
	imap_sort_keys_take(&ms[0], b.data, IMAP_SORT_NEED_ALL, &a);
	imap_sort_keys_arena_finish(&a, ms, 2);
	assert_int_equal(ms[0].uid, 7);
	assert_int_equal(ms[0].sent, 1704099600);
	assert_string_equal(ms[0].subject, "grüße");
	assert_true(ms[0].subject_is_reply);
	assert_string_equal(ms[0].from, "alice");
	assert_string_equal(ms[0].to, "bob");
	assert_string_equal(ms[0].cc, "cy");
	assert_string_equal(ms[0].display_from, "alice bö");
	assert_string_equal(ms[0].display_to, "bob@example.test");
	assert_string_equal(ms[0].message_id, "self@x");
	assert_int_equal(ms[0].ref_count, 2);
	assert_string_equal(ms[0].refs[0], "a@x");
	assert_string_equal(ms[0].refs[1], "b@x");
	assert_string_equal(ms[1].subject, "");
	assert_int_equal(ms[1].sent, 43);
	imap_sort_msg_clear(&ms[0]);
	imap_sort_msg_clear(&ms[1]);
	imap_sort_keys_arena_free(&a);
	buf_free(&b);
}

static void test_only_what_is_needed(void **state)
{
	struct buf b;
	struct imap_sort_keys_arena a;
	struct imap_sort_msg m = { .arrival = 42 };
	size_t refs;
	bool known;
	(void)state;

	buf_init(&b);
	encoded(&b, false);
	assert_true(imap_sort_keys_check(b.data, b.len, &refs, &known));
	assert_int_equal(refs, 1); /* In-Reply-To until References were read */
	assert_false(known);
	imap_sort_keys_arena_init(&a);
	imap_sort_keys_take(&m, b.data, IMAP_SORT_NEED_DATE | IMAP_SORT_NEED_FROM, &a);
	imap_sort_keys_arena_finish(&a, &m, 1);
	assert_int_equal(m.sent, 1704099600);
	assert_string_equal(m.from, "alice");
	assert_string_equal(m.subject, "");
	assert_string_equal(m.display_to, "");
	assert_null(m.message_id);
	assert_int_equal(m.ref_count, 0);
	/* the arena holds "" and "alice" only */
	assert_int_equal(a.bytes.len, 1 + strlen("alice") + 1);
	imap_sort_msg_clear(&m);
	imap_sort_keys_arena_free(&a);
	buf_free(&b);
}

static void test_no_date_takes_arrival(void **state)
{
	struct buf b;
	struct imap_sort_keys_arena a;
	struct imap_sort_msg m = { .arrival = 42 };
	size_t refs;
	bool known;
	(void)state;

	buf_init(&b);
	imap_sort_msg_from_envelope(&m, NULL, IMAP_SORT_NEED_ALL);
	imap_sort_keys_encode(&m, true, &b);
	imap_sort_msg_clear(&m);
	assert_true(imap_sort_keys_check(b.data, b.len, &refs, &known));
	m.arrival = 99; /* the kept keys follow the index row's internal date */
	imap_sort_keys_arena_init(&a);
	imap_sort_keys_take(&m, b.data, IMAP_SORT_NEED_ALL, &a);
	imap_sort_keys_arena_finish(&a, &m, 1);
	assert_int_equal(m.sent, 99);
	assert_null(m.message_id);
	imap_sort_msg_clear(&m);
	imap_sort_keys_arena_free(&a);
	buf_free(&b);
}

static void test_bad_bytes_refused(void **state)
{
	struct buf b;
	size_t refs;
	bool known;
	(void)state;

	buf_init(&b);
	encoded(&b, true);
	assert_false(imap_sort_keys_check(NULL, 0, &refs, &known));
	for (size_t len = 0; len < b.len; len++) /* every cut */
		assert_false(imap_sort_keys_check(b.data, len, &refs, &known));
	b.data[0] = 99; /* another format version */
	assert_false(imap_sort_keys_check(b.data, b.len, &refs, &known));
	b.data[0] = 1;
	b.data[10] = 0xff; /* a ref count the bytes cannot hold */
	assert_false(imap_sort_keys_check(b.data, b.len, &refs, &known));
	b.data[10] = 2;
	b.data[14] = 0xff; /* a string longer than what is left */
	assert_false(imap_sort_keys_check(b.data, b.len, &refs, &known));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_only_what_is_needed),
		cmocka_unit_test(test_no_date_takes_arrival),
		cmocka_unit_test(test_bad_bytes_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
