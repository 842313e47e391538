/* Modified UTF-7 mailbox names (RFC 3501 §5.1.3): valid names round-trip, every malformed or
 * non-canonical form (bad or unterminated base64, non-zero padding bits, lone surrogates,
 * encoded printable ASCII, adjacent shifts, raw 8-bit or control octets) is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "imap/session.h"

static void test_round_trip(void **state)
{
	static const char *const pairs[][2] = {
		{ "Entw&APw-rfe", "Entw\xc3\xbc" "rfe" }, { "R&-D", "R&D" }, { "INBOX", "INBOX" },
		{ "&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
		{ "&2D3eAA-", "\xf0\x9f\x98\x80" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		struct buf u, m;
		buf_init(&u);
		buf_init(&m);
		assert_int_equal(imap_mutf7_to_utf8((const uint8_t *)pairs[i][0],
						    strlen(pairs[i][0]), &u), 0);
		assert_string_equal(buf_cstr(&u), pairs[i][1]);
		assert_int_equal(imap_utf8_to_mutf7(pairs[i][1], &m), 0);
		assert_string_equal(buf_cstr(&m), pairs[i][0]);
		buf_free(&u);
		buf_free(&m);
	}
}

static void test_invalid(void **state)
{
	static const char *const bad[] = { "&Jjo!", "&AGE-", "&U,BTF", "&-&-", "&AOQ-&AOQ-",
					   "&", "&A-", "&2D0-", "&3gA-", "a\x01" "b", "\xc3\xbc",
					   "&AOQ", "&AOR-" };
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct buf u;
		buf_init(&u);
		if (imap_mutf7_to_utf8((const uint8_t *)bad[i], strlen(bad[i]), &u) == 0)
			fail_msg("accepted %s", bad[i]);
		buf_free(&u);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
