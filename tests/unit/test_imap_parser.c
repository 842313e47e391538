/* IMAP tokenizer (RFC 9051 §9): tags, atoms, quoted strings unescaped in place, literals
 * inside a command buffer, astring/nstring, numbers, and the literal announced at the end of a
 * line. Every valid input is also fed cut short at each length from an exact-size heap copy,
 * so a read past the end shows up under ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "imap/parser.h"

/* A command buffer in its own allocation of exactly len bytes (no NUL after it). */
struct cmdbuf {
	uint8_t *data;
	size_t len;
	struct imap_parser ps;
};

static void cmd_init(struct cmdbuf *c, const void *bytes, size_t len)
{
	c->data = xmalloc(len > 0 ? len : 1);
	memcpy(c->data, bytes, len);
	c->len = len;
	imap_parser_init(&c->ps, c->data, len);
}

static void cmd_init_str(struct cmdbuf *c, const char *text)
{
	cmd_init(c, text, strlen(text));
}

static void cmd_free(struct cmdbuf *c)
{
	free(c->data);
	c->data = NULL;
}

static size_t cmd_pos(const struct cmdbuf *c)
{
	return (size_t)(c->ps.p - c->data);
}

static void assert_slice(const struct imap_slice *s, const char *want)
{
	if (s->len != strlen(want) || memcmp(s->data, want, s->len) != 0)
		fail_msg("slice \"%.*s\" != \"%s\"", (int)s->len, (const char *)s->data, want);
}

/* ---- tags ---- */

static void test_tag_valid(void **state)
{
	static const char *const tags[] = { "A001", "a", "1", "x.y-z_1!#$&'", "~tag", "a]b",
					    "tag]", "A[1]", "=", "<x>", "a/b", "a:b;c@d" };
	struct cmdbuf c;
	struct imap_slice tag;
	struct imap_slice atom;

	cmd_init_str(&c, "A001 NOOP\r\n");
	assert_true(imap_parse_tag(&c.ps, &tag));
	assert_slice(&tag, "A001");
	assert_true(tag.data == c.data); /* a slice of the buffer, not a copy */
	assert_true(imap_parse_sp(&c.ps));
	assert_true(imap_parse_atom(&c.ps, &atom));
	assert_slice(&atom, "NOOP");
	assert_true(imap_at_end(&c.ps));
	assert_true(imap_parse_crlf(&c.ps));
	assert_int_equal(cmd_pos(&c), c.len);
	assert_null(c.ps.error);
	cmd_free(&c);

	for (size_t i = 0; i < ARRAY_LEN(tags); i++) {
		char line[64];
		snprintf(line, sizeof(line), "%s NOOP", tags[i]);
		cmd_init_str(&c, line);
		assert_true(imap_parse_tag(&c.ps, &tag));
		assert_slice(&tag, tags[i]);
		assert_true(imap_parse_sp(&c.ps));
		cmd_free(&c);
	}
}

/* RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">; CVE-2020-24386 came from tags with
 * characters that should have been refused. */
static void test_tag_rejected(void **state)
{
	static const uint8_t bad[] = { '+', '*', '"', '{', ' ',	 '\0', 0x80, 0xff, 0xc3, '(',
				       ')', '%', '\\', '\t', '\r', '\n', 0x7f, 0x01, 0x1f };
	struct cmdbuf c;
	struct imap_slice tag = { NULL, 0 };

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		uint8_t first[] = { bad[i], '1', ' ', 'N' };
		uint8_t mid[] = { 'a', bad[i], '1', ' ', 'N' };

		/* the bad byte first: no tag at all */
		cmd_init(&c, first, sizeof(first));
		assert_false(imap_parse_tag(&c.ps, &tag));
		assert_non_null(c.ps.error);
		assert_int_equal(cmd_pos(&c), 0);
		cmd_free(&c);

		/* inside: the tag ends before it and the space the grammar needs is missing */
		if (bad[i] == ' ')
			continue;
		cmd_init(&c, mid, sizeof(mid));
		assert_true(imap_parse_tag(&c.ps, &tag));
		assert_slice(&tag, "a");
		assert_false(imap_parse_sp(&c.ps));
		assert_non_null(c.ps.error);
		cmd_free(&c);
	}

	/* empty buffer */
	cmd_init(&c, "", 0);
	assert_false(imap_parse_tag(&c.ps, &tag));
	cmd_free(&c);
}

/* ---- atoms ---- */

static void test_atom(void **state)
{
	static const struct {
		const char *in;
		const char *atom;
	} cases[] = {
		{ "NOOP", "NOOP" },	      { "FLAGS (\\Seen)", "FLAGS" }, { "BODY[TEXT]", "BODY[TEXT" },
		{ "a{5}", "a" },	      { "UID%", "UID" },	     { "x*y", "x" },
		{ "ab\"c", "ab" },	      { "ab\\c", "ab" },	     { "ab)c", "ab" },
		{ "RFC822.SIZE x", "RFC822.SIZE" }, { "a\r\n", "a" },	     { "a+b", "a+b" },
	};
	static const char *const no_atom[] = { "(", ")", "{", " ", "%", "*", "\"", "\\", "]",
					       "\r\n" };
	struct cmdbuf c;
	struct imap_slice atom;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		cmd_init_str(&c, cases[i].in);
		assert_true(imap_parse_atom(&c.ps, &atom));
		assert_slice(&atom, cases[i].atom);
		cmd_free(&c);
	}
	for (size_t i = 0; i < ARRAY_LEN(no_atom); i++) {
		cmd_init_str(&c, no_atom[i]);
		assert_false(imap_parse_atom(&c.ps, &atom));
		assert_non_null(c.ps.error);
		assert_int_equal(cmd_pos(&c), 0);
		cmd_free(&c);
	}
	/* NUL and 8-bit bytes end an atom */
	cmd_init(&c, "ab\0cd", 5);
	assert_true(imap_parse_atom(&c.ps, &atom));
	assert_slice(&atom, "ab");
	cmd_free(&c);
	cmd_init(&c, "ab\xc3\xa9", 4);
	assert_true(imap_parse_atom(&c.ps, &atom));
	assert_slice(&atom, "ab");
	cmd_free(&c);
	cmd_init(&c, "", 0);
	assert_false(imap_parse_atom(&c.ps, &atom));
	cmd_free(&c);
}

/* ---- quoted strings ---- */

static void test_quoted_valid(void **state)
{
	struct cmdbuf c;
	struct imap_slice s;

	cmd_init_str(&c, "\"INBOX\" rest");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "INBOX");
	assert_int_equal(cmd_pos(&c), 7);
	assert_true(imap_parse_sp(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "\"\"");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_int_equal(s.len, 0);
	assert_true(imap_at_end(&c.ps));
	cmd_free(&c);

	/* \" and \\ are unescaped in place: the slice points into the command buffer */
	cmd_init_str(&c, "\"a\\\"b\\\\c\" x");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "a\"b\\c");
	assert_true(s.data == c.data + 1);
	assert_int_equal(cmd_pos(&c), 9);
	assert_true(imap_parse_sp(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "\"\\\\\"");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "\\");
	cmd_free(&c);

	cmd_init_str(&c, "\"\\\"\\\"\"");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "\"\"");
	cmd_free(&c);

	/* atom-specials are ordinary inside quotes */
	cmd_init_str(&c, "\"a (b) {5} %*]\"");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "a (b) {5} %*]");
	cmd_free(&c);
}

static void test_quoted_invalid(void **state)
{
	static const struct {
		const char *in;
		size_t len;
	} bad[] = {
		{ "\"a\\nb\"", 6 },	   /* invalid escape */
		{ "\"a\\ab\"", 6 },	   /* invalid escape */
		{ "\"a\\ b\"", 6 },	   /* invalid escape */
		{ "\"a\\", 3 },	   /* backslash at the end */
		{ "\"a\\\"", 4 },	   /* escaped quote, then the end */
		{ "\"a\rb\"", 5 },	   /* CR inside */
		{ "\"a\nb\"", 5 },	   /* LF inside */
		{ "\"a\r\n", 4 },	   /* line ends inside */
		{ "\"a\0b\"", 5 },	   /* NUL inside (CVE-2019-11500) */
		{ "\"IN\\\\\0BOX\"", 9 }, /* NUL after an escape */
		{ "\"a\\\0\"", 5 },	   /* escaped NUL */
		{ "\"abc", 4 },	   /* unterminated */
		{ "\"", 1 },		   /* unterminated */
	};
	struct cmdbuf c;
	struct imap_slice s;

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		cmd_init(&c, bad[i].in, bad[i].len);
		if (imap_parse_string(&c.ps, &s))
			fail_msg("quoted case %zu accepted", i);
		assert_non_null(c.ps.error);
		assert_true(c.ps.p <= c.ps.end);
		cmd_free(&c);
	}
	/* a string is neither quoted nor literal */
	cmd_init_str(&c, "INBOX");
	assert_false(imap_parse_string(&c.ps, &s));
	assert_int_equal(cmd_pos(&c), 0);
	cmd_free(&c);
	cmd_init(&c, "", 0);
	assert_false(imap_parse_string(&c.ps, &s));
	cmd_free(&c);
}

/* ---- literals ---- */

static void test_literal_valid(void **state)
{
	struct cmdbuf c;
	struct imap_slice s;

	cmd_init_str(&c, "{5}\r\nhello");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "hello");
	assert_true(s.data == c.data + 5);
	assert_int_equal(cmd_pos(&c), c.len);
	cmd_free(&c);

	cmd_init_str(&c, "{5+}\r\nhello\r\n"); /* RFC 7888 LITERAL+ */
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "hello");
	assert_true(imap_parse_crlf(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "{0}\r\n");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_int_equal(s.len, 0);
	assert_true(imap_at_end(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "{0+}\r\n x");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_int_equal(s.len, 0);
	assert_true(imap_parse_sp(&c.ps));
	cmd_free(&c);

	/* literal octets are taken as they are: CRLF, NUL, quotes, braces */
	cmd_init(&c, "{7}\r\na\r\n\0\"{}", 12);
	assert_true(imap_parse_string(&c.ps, &s));
	assert_int_equal(s.len, 7);
	assert_memory_equal(s.data, "a\r\n\0\"{}", 7);
	assert_true(imap_slice_has_ctl(&s));
	assert_int_equal(cmd_pos(&c), 12);
	cmd_free(&c);

	/* leading zeros in the size */
	cmd_init_str(&c, "{003}\r\nabc");
	assert_true(imap_parse_string(&c.ps, &s));
	assert_slice(&s, "abc");
	cmd_free(&c);
}

static void test_literal_invalid(void **state)
{
	static const char *const bad[] = {
		"{5}\r\nhell",		  /* truncated literal */
		"{5}\r\n",		  /* no octets at all */
		"{1}\r\n",		  /* no octets at all */
		"{5}hello",		  /* no CRLF */
		"{5}\nhello",		  /* bare LF */
		"{5}\rhello",		  /* bare CR */
		"{5} \r\nhello",	  /* space before CRLF */
		"{}\r\n",		  /* no size */
		"{+}\r\n",		  /* no size */
		"{-1}\r\n",		  /* sign */
		"{ 5}\r\nhello",	  /* space */
		"{5++}\r\nhello",	  /* double plus */
		"{5-}\r\nhello",	  /* LITERAL- is written {N+}, never {N-} */
		"{5",			  /* unterminated */
		"{5}",			  /* nothing after the brace */
		"{5}\r",		  /* half a CRLF */
		"{",			  /* brace only */
		"{x}\r\n",		  /* not a number */
		"{99999999999999999999}\r\n", /* 20 digits */
		"{18446744073709551616}\r\n", /* 2^64 */
		"{9999999999999999999}\r\nx",	/* far more than is there */
	};
	struct cmdbuf c;
	struct imap_slice s;

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		cmd_init_str(&c, bad[i]);
		if (imap_parse_string(&c.ps, &s))
			fail_msg("literal \"%s\" accepted", bad[i]);
		assert_non_null(c.ps.error);
		assert_int_equal(cmd_pos(&c), 0);
		cmd_free(&c);
	}
}

/* A whole command with literals, as the line assembler hands it over. */
static void test_command_with_literals(void **state)
{
	struct cmdbuf c;
	struct imap_slice tag;
	struct imap_slice cmd;
	struct imap_slice user;
	struct imap_slice pass;

	cmd_init_str(&c, "a1 LOGIN {5}\r\nalice {8+}\r\np\"a ss\\w\r\n");
	assert_true(imap_parse_tag(&c.ps, &tag));
	assert_slice(&tag, "a1");
	assert_true(imap_parse_sp(&c.ps));
	assert_true(imap_parse_atom(&c.ps, &cmd));
	assert_true(imap_slice_ieq(&cmd, "login"));
	assert_false(imap_slice_ieq(&cmd, "logi"));
	assert_false(imap_slice_ieq(&cmd, "logins"));
	assert_true(imap_parse_sp(&c.ps));
	assert_true(imap_parse_astring(&c.ps, &user));
	assert_slice(&user, "alice");
	assert_true(imap_parse_sp(&c.ps));
	assert_true(imap_parse_astring(&c.ps, &pass));
	assert_slice(&pass, "p\"a ss\\w");
	assert_false(imap_slice_has_ctl(&pass));
	assert_true(imap_parse_crlf(&c.ps));
	assert_null(c.ps.error);
	cmd_free(&c);

	/* text after the last argument is refused, and only the first error is kept */
	cmd_init_str(&c, "a1 NOOP x\r\n");
	assert_true(imap_parse_tag(&c.ps, &tag));
	assert_true(imap_parse_sp(&c.ps));
	assert_true(imap_parse_atom(&c.ps, &cmd));
	assert_false(imap_parse_crlf(&c.ps));
	assert_non_null(c.ps.error);
	{
		const char *first = c.ps.error;
		assert_false(imap_parse_char(&c.ps, '('));
		assert_ptr_equal(c.ps.error, first);
	}
	cmd_free(&c);

	/* a lone CR or LF is not the end of a command */
	cmd_init_str(&c, "\r");
	assert_false(imap_at_end(&c.ps));
	assert_false(imap_parse_crlf(&c.ps));
	cmd_free(&c);
	cmd_init_str(&c, "\n");
	assert_false(imap_parse_crlf(&c.ps));
	cmd_free(&c);
	cmd_init_str(&c, "\r\n\r\n");
	assert_false(imap_parse_crlf(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "(x)");
	assert_true(imap_peek(&c.ps, '('));
	assert_false(imap_peek(&c.ps, 'x'));
	assert_true(imap_parse_char(&c.ps, '('));
	assert_false(imap_parse_char(&c.ps, ')'));
	assert_int_equal(cmd_pos(&c), 1);
	cmd_free(&c);
}

/* ---- astring / nstring ---- */

static void test_astring(void **state)
{
	struct cmdbuf c;
	struct imap_slice s;

	cmd_init_str(&c, "INBOX.Sent] x"); /* astring allows "]" */
	assert_true(imap_parse_astring(&c.ps, &s));
	assert_slice(&s, "INBOX.Sent]");
	assert_true(imap_parse_sp(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "\"My Box\"");
	assert_true(imap_parse_astring(&c.ps, &s));
	assert_slice(&s, "My Box");
	cmd_free(&c);

	cmd_init_str(&c, "{3}\r\nbox");
	assert_true(imap_parse_astring(&c.ps, &s));
	assert_slice(&s, "box");
	cmd_free(&c);

	/* a bad quoted string or literal is not re-read as an atom */
	cmd_init_str(&c, "\"open");
	assert_false(imap_parse_astring(&c.ps, &s));
	cmd_free(&c);
	cmd_init_str(&c, "{3}\r\nab");
	assert_false(imap_parse_astring(&c.ps, &s));
	cmd_free(&c);

	static const char *const none[] = { "(", ")", " ", "%", "*", "\\", "\r\n" };
	for (size_t i = 0; i < ARRAY_LEN(none); i++) {
		cmd_init_str(&c, none[i]);
		assert_false(imap_parse_astring(&c.ps, &s));
		assert_int_equal(cmd_pos(&c), 0);
		cmd_free(&c);
	}
	cmd_init(&c, "\0a", 2);
	assert_false(imap_parse_astring(&c.ps, &s));
	cmd_free(&c);
	cmd_init(&c, "", 0);
	assert_false(imap_parse_astring(&c.ps, &s));
	cmd_free(&c);
}

static void test_nstring(void **state)
{
	struct cmdbuf c;
	struct imap_slice s;
	bool nil = false;

	cmd_init_str(&c, "NIL");
	assert_true(imap_parse_nstring(&c.ps, &s, &nil));
	assert_true(nil);
	assert_null(s.data);
	assert_int_equal(s.len, 0);
	assert_true(imap_at_end(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "nil)");
	assert_true(imap_parse_nstring(&c.ps, &s, &nil));
	assert_true(nil);
	assert_true(imap_parse_char(&c.ps, ')'));
	cmd_free(&c);

	cmd_init_str(&c, "NiL \"x\"");
	assert_true(imap_parse_nstring(&c.ps, &s, &nil));
	assert_true(nil);
	assert_true(imap_parse_sp(&c.ps));
	assert_true(imap_parse_nstring(&c.ps, &s, &nil));
	assert_false(nil);
	assert_slice(&s, "x");
	cmd_free(&c);

	/* the quoted string "NIL" is a string, not NIL */
	cmd_init_str(&c, "\"NIL\"");
	assert_true(imap_parse_nstring(&c.ps, &s, &nil));
	assert_false(nil);
	assert_slice(&s, "NIL");
	cmd_free(&c);

	cmd_init_str(&c, "{3}\r\nNIL");
	nil = true;
	assert_true(imap_parse_nstring(&c.ps, &s, &nil));
	assert_false(nil);
	assert_slice(&s, "NIL");
	cmd_free(&c);

	/* atoms that only start with NIL, and other atoms, are not nstrings */
	static const char *const bad[] = { "NILS", "NIL1", "NI", "N", "nothing", "", "NIL\"" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		cmd_init_str(&c, bad[i]);
		if (imap_parse_nstring(&c.ps, &s, &nil) && strcmp(bad[i], "NIL\"") != 0)
			fail_msg("nstring \"%s\" accepted", bad[i]);
		cmd_free(&c);
	}
}

/* ---- numbers ---- */

static void test_numbers(void **state)
{
	struct cmdbuf c;
	uint32_t n = 7;
	uint64_t n64 = 7;

	cmd_init_str(&c, "4294967295");
	assert_true(imap_parse_number(&c.ps, &n));
	assert_int_equal(n, UINT32_MAX);
	assert_true(imap_at_end(&c.ps));
	cmd_free(&c);

	cmd_init_str(&c, "0:12");
	assert_true(imap_parse_number(&c.ps, &n));
	assert_int_equal(n, 0);
	assert_true(imap_parse_char(&c.ps, ':'));
	assert_true(imap_parse_number(&c.ps, &n));
	assert_int_equal(n, 12);
	cmd_free(&c);

	n = 7;
	static const char *const bad32[] = { "4294967296", "99999999999", "18446744073709551616",
					     "",	   "x1",	  "-1",
					     " 1",	   "+1" };
	for (size_t i = 0; i < ARRAY_LEN(bad32); i++) {
		cmd_init_str(&c, bad32[i]);
		if (imap_parse_number(&c.ps, &n))
			fail_msg("number \"%s\" accepted", bad32[i]);
		assert_int_equal(cmd_pos(&c), 0); /* not advanced */
		assert_non_null(c.ps.error);
		cmd_free(&c);
	}
	assert_int_equal(n, 7);

	/* number64 is 63 bits (RFC 9051 §9) */
	cmd_init_str(&c, "9223372036854775807 x");
	assert_true(imap_parse_number64(&c.ps, &n64));
	assert_true(n64 == (uint64_t)INT64_MAX);
	assert_true(imap_parse_sp(&c.ps));
	cmd_free(&c);
	cmd_init_str(&c, "4294967296");
	assert_true(imap_parse_number64(&c.ps, &n64));
	assert_true(n64 == 4294967296ULL);
	cmd_free(&c);
	n64 = 7;
	static const char *const bad64[] = { "9223372036854775808", "18446744073709551615",
					     "18446744073709551616", "", "a" };
	for (size_t i = 0; i < ARRAY_LEN(bad64); i++) {
		cmd_init_str(&c, bad64[i]);
		if (imap_parse_number64(&c.ps, &n64))
			fail_msg("number64 \"%s\" accepted", bad64[i]);
		assert_int_equal(cmd_pos(&c), 0);
		cmd_free(&c);
	}
	assert_true(n64 == 7);
}

/* ---- literal announced at the end of a line ---- */

static void test_line_literal(void **state)
{
	static const struct {
		const char *line;
		int ret;
		uint64_t size;
		bool nonsync;
	} cases[] = {
		{ "a APPEND INBOX {123}", 1, 123, false },
		{ "a APPEND INBOX {123+}", 1, 123, true },
		{ "a LOGIN {5}", 1, 5, false },
		{ "{0}", 1, 0, false },
		{ "{0+}", 1, 0, true },
		{ "x {9223372036854775807}", 1, INT64_MAX, false },
		{ "a SELECT {-1}", -1, 0, false },
		{ "a SELECT {18446744073709551616}", -1, 0, false },
		{ "a SELECT {9223372036854775808}", -1, 0, false },
		{ "a SELECT {99999999999999999999999}", -1, 0, false },
		{ "a SELECT {}", -1, 0, false },
		{ "a SELECT {+}", -1, 0, false },
		{ "a SELECT {5-}", -1, 0, false },
		{ "a NOOP", 0, 0, false },
		{ "a SELECT {5}x", 0, 0, false },
		{ "a SELECT {5} ", 0, 0, false },
		{ "a LOGIN foo}", 0, 0, false },
		{ "a LOGIN 12}", 0, 0, false },
		{ "a LOGIN 12+}", 0, 0, false },
		{ "}", 0, 0, false },
		{ "a}", 0, 0, false },
		{ "", 0, 0, false },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint64_t size = 424242;
		bool nonsync = !cases[i].nonsync;
		size_t len = strlen(cases[i].line);
		char *copy = xmalloc(len + 1);
		int ret;

		memcpy(copy, cases[i].line, len + 1);
		ret = imap_line_literal(copy, len, &size, &nonsync);
		if (ret != cases[i].ret)
			fail_msg("\"%s\": %d, want %d", cases[i].line, ret, cases[i].ret);
		if (ret == 1) {
			assert_true(size == cases[i].size);
			assert_int_equal(nonsync, cases[i].nonsync);
		}
		free(copy);
	}
}

/* ---- every valid input cut short, from an exact-size buffer ---- */

enum piece { P_TAG, P_ATOM, P_STRING, P_ASTRING, P_NSTRING, P_NUMBER, P_NUMBER64 };

static bool parse_piece(struct imap_parser *ps, enum piece kind)
{
	struct imap_slice s;
	bool nil;
	uint32_t n;
	uint64_t n64;

	switch (kind) {
	case P_TAG:
		return imap_parse_tag(ps, &s);
	case P_ATOM:
		return imap_parse_atom(ps, &s);
	case P_STRING:
		return imap_parse_string(ps, &s);
	case P_ASTRING:
		return imap_parse_astring(ps, &s);
	case P_NSTRING:
		return imap_parse_nstring(ps, &s, &nil);
	case P_NUMBER:
		return imap_parse_number(ps, &n);
	case P_NUMBER64:
		return imap_parse_number64(ps, &n64);
	}
	return false;
}

static void test_prefixes(void **state)
{
	static const struct {
		enum piece kind;
		const char *in;
		bool prefix_ok; /* a shorter non-empty prefix is still valid (atoms, numbers) */
	} cases[] = {
		{ P_TAG, "A001", true },
		{ P_ATOM, "FLAGS", true },
		{ P_STRING, "\"a\\\"b\\\\c\"", false },
		{ P_STRING, "\"INBOX\"", false },
		{ P_STRING, "{5}\r\nhello", false },
		{ P_STRING, "{5+}\r\nhello", false },
		{ P_STRING, "{0}\r\n", false },
		{ P_ASTRING, "\"x\"", false },
		{ P_ASTRING, "{2}\r\nab", false },
		{ P_NSTRING, "\"NIL\"", false },
		{ P_NSTRING, "{3+}\r\nabc", false },
		{ P_NUMBER, "4294967295", true },
		{ P_NUMBER64, "9223372036854775807", true },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		size_t n = strlen(cases[i].in);

		for (size_t k = 0; k <= n; k++) {
			struct cmdbuf c;
			bool ok;

			cmd_init(&c, cases[i].in, k);
			ok = parse_piece(&c.ps, cases[i].kind);
			assert_true(c.ps.p >= c.data && c.ps.p <= c.ps.end);
			if (k == n)
				assert_true(ok);
			else if (k == 0 || !cases[i].prefix_ok)
				if (ok)
					fail_msg("prefix %zu of case %zu accepted", k, i);
			if (ok && cases[i].prefix_ok)
				assert_int_equal(cmd_pos(&c), k);
			cmd_free(&c);
		}
	}

	/* NIL itself: every prefix is refused, the whole is NIL */
	for (size_t k = 0; k <= 3; k++) {
		struct cmdbuf c;
		struct imap_slice s;
		bool nil = false;

		cmd_init(&c, "NIL", k);
		assert_int_equal(imap_parse_nstring(&c.ps, &s, &nil), k == 3);
		cmd_free(&c);
	}

	/* line literals: every prefix of every announcing line, from an exact-size copy */
	static const char *const lines[] = { "a APPEND INBOX {123}", "a APPEND INBOX {123+}",
					     "a SELECT {-1}", "a SELECT {18446744073709551616}",
					     "a {}", "a {+}" };
	for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
		size_t n = strlen(lines[i]);
		for (size_t k = 0; k < n; k++) {
			char *copy = xmalloc(k > 0 ? k : 1);
			uint64_t size;
			bool nonsync;

			memcpy(copy, lines[i], k);
			/* no prefix ends in "}", so none announces a literal */
			assert_int_equal(imap_line_literal(copy, k, &size, &nonsync), 0);
			free(copy);
		}
	}
}

/* Only len bytes of the line may be looked at: a "{" in memory after the line must not turn
 * "a -1}" (no literal, answer 0) into a malformed literal (-1). The '{' and NUL sit inside the
 * allocation, so this fails the same way with and without ASan. */
static void test_bug_line_literal_reads_past_len(void **state)
{
	char *mem = xmalloc(7);
	uint64_t size;
	bool nonsync;
	int ret;

	memcpy(mem, "a -1}{", 7);
	ret = imap_line_literal(mem, 5, &size, &nonsync);
	free(mem);
	assert_int_equal(ret, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_valid),
		cmocka_unit_test(test_tag_rejected),
		cmocka_unit_test(test_atom),
		cmocka_unit_test(test_quoted_valid),
		cmocka_unit_test(test_quoted_invalid),
		cmocka_unit_test(test_literal_valid),
		cmocka_unit_test(test_literal_invalid),
		cmocka_unit_test(test_command_with_literals),
		cmocka_unit_test(test_astring),
		cmocka_unit_test(test_nstring),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_line_literal),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_bug_line_literal_reads_past_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
