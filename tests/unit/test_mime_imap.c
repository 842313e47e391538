/* Unit tests for the IMAP renderings: strings, ENVELOPE (address lists, groups, defaults),
 * BODY and BODYSTRUCTURE against strings worked out by hand from RFC 3501 §7.4.2 / RFC 9051
 * §7.5.2, and section addressing with HEADER / TEXT / MIME / HEADER.FIELDS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mime/mime.h"
#include "mime_test_util.h"

static struct mime_message *parse_str(const char *s)
{
	return mime_parse((const uint8_t *)s, strlen(s), NULL);
}

static void check_envelope(const char *message, const char *want)
{
	struct mime_message *msg = parse_str(message);
	struct buf b;

	buf_init(&b);
	mime_envelope(msg, mime_root(msg), &b);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
	mime_message_free(&msg);
}

static void check_bodystructure_file(const char *file, bool extended, const char *want)
{
	size_t len;
	uint8_t *data = mime_test_load(file, &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	struct buf b;

	buf_init(&b);
	mime_bodystructure(msg, mime_root(msg), extended, &b);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
	mime_message_free(&msg);
	free(data);
}

static void check_string(const char *in, size_t len, const char *want)
{
	struct buf b;

	buf_init(&b);
	mime_imap_string(&b, in, len);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	buf_free(&b);
}

static void test_imap_string(void **state)
{
	struct buf b;

	check_string("abc", 3, "\"abc\"");
	check_string("", 0, "\"\"");
	check_string("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	check_string("a\r\nb", 4, "{4}\r\na\r\nb");
	check_string("caf\xc3\xa9", 5, "{5}\r\ncaf\xc3\xa9");
	/* NUL bytes never reach the client. */
	check_string("a\0b", 3, "\"ab\"");
	check_string("a\0\n", 3, "{2}\r\na\n");

	buf_init(&b);
	char *longs = xmalloc(2000);
	memset(longs, 'x', 2000);
	mime_imap_string(&b, longs, 2000);
	assert_memory_equal(b.data, "{2000}\r\nxxx", 11);
	assert_int_equal(b.len, 2008);
	free(longs);
	buf_reset(&b);
	mime_imap_nstring(&b, NULL);
	mime_imap_nstring(&b, "x");
	assert_string_equal(buf_cstr(&b), "NIL\"x\"");
	buf_free(&b);
}

static void test_envelope_basic(void **state)
{
	/* RFC 3501 §7.4.2: sender and reply-to default to from; absent fields are NIL. */
	check_envelope("Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
		       "From: Terry Gray <gray@cac.washington.edu>\r\n"
		       "Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
		       "To: imap@cac.washington.edu\r\n"
		       "cc: minutes@CNRI.Reston.VA.US,\r\n"
		       "  John Klensin <KLENSIN@MIT.EDU>\r\n"
		       "Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
		       "\r\n"
		       "body\r\n",
		       "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
		       "\"IMAP4rev1 WG mtg summary and minutes\" "
		       "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		       "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		       "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		       "((NIL NIL \"imap\" \"cac.washington.edu\")) "
		       "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")"
		       "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
		       "\"<B27397-0100000@cac.washington.edu>\")");

	check_envelope("Subject: x\n\n",
		       "(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)");

	/* Explicit sender and reply-to, in-reply-to, bcc. */
	check_envelope("From: a@x\nSender: b@y\nReply-To: c@z\nBcc: d@w\n"
		       "In-Reply-To: <1@x>\n\n",
		       "(NIL NIL ((NIL NIL \"a\" \"x\")) ((NIL NIL \"b\" \"y\")) "
		       "((NIL NIL \"c\" \"z\")) NIL NIL ((NIL NIL \"d\" \"w\")) \"<1@x>\" NIL)");

	/* An empty Reply-To still defaults to From. */
	check_envelope("From: a@x\nReply-To:\n\n",
		       "(NIL NIL ((NIL NIL \"a\" \"x\")) ((NIL NIL \"a\" \"x\")) "
		       "((NIL NIL \"a\" \"x\")) NIL NIL NIL NIL NIL)");
}

static void test_envelope_addresses(void **state)
{
	/* Quoted display name with escapes and a comma; comment as the name; source route. */
	check_envelope("To: \"Doe, \\\"J\\\"\" <j@x.org>, k@y.org (Kay Why),\n"
		       " <@r1,@r2:m@z.org>, Plain Name <p@q>\n\n",
		       "(NIL NIL NIL NIL NIL "
		       "((\"Doe, \\\"J\\\"\" NIL \"j\" \"x.org\")"
		       "(\"Kay Why\" NIL \"k\" \"y.org\")"
		       "(NIL \"@r1,@r2\" \"m\" \"z.org\")"
		       "(\"Plain Name\" NIL \"p\" \"q\")) NIL NIL NIL NIL)");

	/* RFC 3501 group syntax: start (NIL NIL "name" NIL), end (NIL NIL NIL NIL). */
	check_envelope("To: friends: a@b, C <c@d>;, e@f\nCc: undisclosed-recipients:;\n\n",
		       "(NIL NIL NIL NIL NIL "
		       "((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"b\")(\"C\" NIL \"c\" \"d\")"
		       "(NIL NIL NIL NIL)(NIL NIL \"e\" \"f\")) "
		       "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)");

	/* No domain: a host that is not NIL, so it is not mistaken for a group. */
	check_envelope("To: postmaster\n\n",
		       "(NIL NIL NIL NIL NIL ((NIL NIL \"postmaster\" \"MISSING_DOMAIN\")) "
		       "NIL NIL NIL NIL)");

	/* Quoted local part keeps its quotes; 8-bit name goes out as a literal; encoded-words
	 * are sent raw. */
	check_envelope("From: \"a b\"@c.d\nTo: J\xc3\xb6rg <j@e>\n"
		       "Cc: =?utf-8?q?J=C3=B6rg?= <j@e>\n\n",
		       "(NIL NIL ((NIL NIL \"\\\"a b\\\"\" \"c.d\")) ((NIL NIL \"\\\"a b\\\"\" \"c.d\")) "
		       "((NIL NIL \"\\\"a b\\\"\" \"c.d\")) (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"e\")) "
		       "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"e\")) NIL NIL NIL)");

	/* Empty angle brackets: an address with neither mailbox nor host. */
	check_envelope("To: <>\n\n",
		       "(NIL NIL NIL NIL NIL ((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
		       "NIL NIL NIL NIL)");

	/* Garbage does not crash and yields a well-formed envelope. */
	static const char *const garbage[] = { "<<>>,,;:\"", "(((", "\"\\", ":;:;:;", "@@@,<@",
						"a:b:c;d;e", "<a@b", "\xff\xfe<\x80@\x81>" };
	for (size_t i = 0; i < ARRAY_LEN(garbage); i++) {
		char *m = xasprintf("From: %s\nTo: %s\nCc: x, %s\n\n", garbage[i], garbage[i],
				    garbage[i]);
		struct mime_message *msg = parse_str(m);
		struct buf b;
		buf_init(&b);
		mime_envelope(msg, mime_root(msg), &b);
		assert_true(mime_test_wellformed(b.data, b.len));
		buf_free(&b);
		mime_message_free(&msg);
		free(m);
	}
}

static void test_envelope_repeated_field(void **state)
{
	size_t len;
	uint8_t *data = mime_test_load("msg_20.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	struct buf b;

	/* Cc appears three times (Cc, CC, cc): the first one is used. */
	buf_init(&b);
	mime_envelope(msg, mime_root(msg), &b);
	assert_non_null(strstr(buf_cstr(&b), " ((NIL NIL \"ccc\" \"zzz.org\")) NIL NIL "));
	buf_free(&b);
	mime_message_free(&msg);
	free(data);
}

/* rfc2060.txt, worked out from RFC 3501 §6.4.5 and the file's bytes: part bodies are the
 * "This part specifier should be: N\n" lines (33 + section-length bytes, one line). */
static const char rfc2060_body[] =
    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 33 1)"
    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 33)"
    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 302 "
    "(NIL \"This part specifier should be: 3\" ((NIL NIL \"me\" \"myself.com\")) "
    "((NIL NIL \"me\" \"myself.com\")) ((NIL NIL \"me\" \"myself.com\")) "
    "((NIL NIL \"me\" \"myself.com\")) NIL NIL NIL NIL) "
    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 35 1)"
    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 35) \"MIXED\") 17)"
    "((\"IMAGE\" \"GIF\" NIL NIL NIL \"7BIT\" 35)"
    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 462 "
    "(NIL \"This part specifier should be: 4.2\" ((NIL NIL \"me\" \"myself.com\")) "
    "((NIL NIL \"me\" \"myself.com\")) ((NIL NIL \"me\" \"myself.com\")) "
    "((NIL NIL \"me\" \"myself.com\")) NIL NIL NIL NIL) "
    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 37 1)"
    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 39 1)"
    "(\"TEXT\" \"RICHTEXT\" NIL NIL NIL \"7BIT\" 39 1) \"ALTERNATIVE\") \"MIXED\") 26) "
    "\"MIXED\") \"MIXED\")";

static void test_body_rfc2060(void **state)
{
	check_bodystructure_file("rfc2060.txt", false, rfc2060_body);
}

static void test_bodystructure_rfc2060(void **state)
{
	check_bodystructure_file(
	    "rfc2060.txt", true,
	    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 33 1 NIL NIL NIL NIL)"
	    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 33 NIL NIL NIL NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 302 "
	    "(NIL \"This part specifier should be: 3\" ((NIL NIL \"me\" \"myself.com\")) "
	    "((NIL NIL \"me\" \"myself.com\")) ((NIL NIL \"me\" \"myself.com\")) "
	    "((NIL NIL \"me\" \"myself.com\")) NIL NIL NIL NIL) "
	    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 35 1 NIL NIL NIL NIL)"
	    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 35 NIL NIL NIL NIL) "
	    "\"MIXED\" (\"BOUNDARY\" \"3.x\") NIL NIL NIL) 17 NIL NIL NIL NIL)"
	    "((\"IMAGE\" \"GIF\" NIL NIL NIL \"7BIT\" 35 NIL NIL NIL NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 462 "
	    "(NIL \"This part specifier should be: 4.2\" ((NIL NIL \"me\" \"myself.com\")) "
	    "((NIL NIL \"me\" \"myself.com\")) ((NIL NIL \"me\" \"myself.com\")) "
	    "((NIL NIL \"me\" \"myself.com\")) NIL NIL NIL NIL) "
	    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 37 1 NIL NIL NIL NIL)"
	    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 39 1 NIL NIL NIL NIL)"
	    "(\"TEXT\" \"RICHTEXT\" NIL NIL NIL \"7BIT\" 39 1 NIL NIL NIL NIL) \"ALTERNATIVE\" "
	    "(\"BOUNDARY\" \"4.2.2.x\") NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"4.2.x\") NIL NIL "
	    "NIL) 26 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"4.x\") NIL NIL NIL) \"MIXED\" "
	    "(\"BOUNDARY\" \"x\") NIL NIL NIL)");
}

static void test_bodystructure_embedded(void **state)
{
	/* Body sizes 26 and 35, message/rfc822 body 208 bytes in 8 lines (from the file). */
	check_bodystructure_file(
	    "simple-embedded-message.eml", true,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 26 1 NIL NIL NIL NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 208 "
	    "(\"Tue, 12 Nov 2013 09:12:42 -0500\" \"embedded message\" "
	    "((NIL NIL \"mimekit\" \"example.com\")) ((NIL NIL \"mimekit\" \"example.com\")) "
	    "((NIL NIL \"mimekit\" \"example.com\")) ((NIL NIL \"mimekit\" \"example.com\")) "
	    "NIL NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 35 1 NIL NIL NIL NIL) "
	    "8 NIL NIL NIL NIL) \"MIXED\" "
	    "(\"BOUNDARY\" \"----=_NextPart_000_003F_01CE98CE.6E826F90\") NIL NIL NIL)");
}

static void test_bodystructure_malformed(void **state)
{
	/* An empty multipart gets one empty text/plain child (the grammar needs 1*body). */
	check_bodystructure_file(
	    "empty-multipart.txt", false,
	    "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) "
	    "\"ALTERNATIVE\")(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 84 1) \"MIXED\")");
	/* "Content-Type: text" without subtype: RFC 2045 default. */
	check_bodystructure_file("missing-subtype.txt", true,
				 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
				 "15 1 NIL NIL NIL NIL)");
	/* Multipart whose boundary never occurs. */
	check_bodystructure_file(
	    "msg_17.txt", true,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) "
	    "\"MIXED\" (\"BOUNDARY\" \"BOUNDARY\") NIL NIL NIL)");
	/* Parts whose header has no blank line before the next delimiter have empty bodies. */
	check_bodystructure_file("msg_47.txt", false,
				 "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)"
				 "(\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 0 0) \"MIXED\")");
}

static void test_bodystructure_fields(void **state)
{
	/* CRLF message; parameters, disposition with parameters, BASE64 body 866 bytes. */
	check_bodystructure_file(
	    "msg_26.txt", true,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 33 2 NIL NIL NIL NIL)"
	    "(\"APPLICATION\" \"RISCOS\" (\"NAME\" \"clock.bmp,69c\" \"TYPE\" \"BMP\" \"LOAD\" "
	    "\"&fff69c4b\" \"EXEC\" \"&355dd4d1\" \"ACCESS\" \"&03\") NIL NIL \"BASE64\" 866 NIL "
	    "(\"ATTACHMENT\" (\"FILENAME\" \"clock.bmp\")) NIL NIL) \"MIXED\" "
	    "(\"BOUNDARY\" \"1618492860--2051301190--113853680\") NIL NIL NIL)");
	/* RFC 2231 sections are sent as they are (clients decode them). */
	check_bodystructure_file(
	    "msg_29.txt", false,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\" \"TITLE*0*\" "
	    "\"us-ascii'en'This%20is%20even%20more%20\" \"TITLE*1*\" \"%2A%2A%2Afun%2A%2A%2A%20\" "
	    "\"TITLE*2\" \"isn't it!\") NIL NIL \"7BIT\" 37 6)");

	/* id, description, md5, disposition, single and multiple languages, location. */
	const char *m = "Content-Type: image/png; name=\"a.png\"\r\n"
			"Content-ID: <id@x>\r\n"
			"Content-Description: a \"picture\"\r\n"
			"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
			"Content-Disposition: inline\r\n"
			"Content-Language: en, de (German)\r\n"
			"Content-Location: http://x/a.png\r\n"
			"Content-Transfer-Encoding: Base64\r\n"
			"\r\n"
			"AAAA\r\n";
	struct mime_message *msg = parse_str(m);
	struct buf b;
	buf_init(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	assert_string_equal(buf_cstr(&b),
			    "(\"IMAGE\" \"PNG\" (\"NAME\" \"a.png\") \"<id@x>\" "
			    "\"a \\\"picture\\\"\" \"BASE64\" 6 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" "
			    "(\"INLINE\" NIL) (\"en\" \"de\") \"http://x/a.png\")");
	mime_message_free(&msg);

	/* A single language is a plain string; message/global is rendered as a message. */
	msg = parse_str("Content-Type: message/global\nContent-Language: fr\n\n"
			"Subject: s\n\nhi\n");
	buf_reset(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	assert_string_equal(buf_cstr(&b),
			    "(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 15 "
			    "(NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL) "
			    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 1 NIL "
			    "NIL NIL NIL) 3 NIL NIL \"fr\" NIL)");
	buf_free(&b);
	mime_message_free(&msg);
}

static void test_bodystructure_related(void **state)
{
	/* Sizes by hand: the HTML body is the 21 bytes <img src="cid:img@x">, the GIF body the
	 * 20 base64 characters; the CRLF before each delimiter belongs to the delimiter. */
	const char *m = "From: a@b\r\n"
			"Content-Type: multipart/related; type=\"text/html\"; start=\"<root@x>\";\r\n"
			"\tboundary=\"R\"\r\n"
			"\r\n"
			"--R\r\n"
			"Content-Type: text/html; charset=utf-8\r\n"
			"Content-ID: <root@x>\r\n"
			"\r\n"
			"<img src=\"cid:img@x\">\r\n"
			"--R\r\n"
			"Content-Type: image/gif; name=\"a.gif\"\r\n"
			"Content-ID: <img@x>\r\n"
			"Content-Transfer-Encoding: base64\r\n"
			"Content-Disposition: inline; filename=\"a.gif\"\r\n"
			"\r\n"
			"R0lGODlhAQABAAAAACw=\r\n"
			"--R--\r\n";
	struct mime_message *msg = parse_str(m);
	struct buf b;

	buf_init(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	assert_string_equal(buf_cstr(&b),
			    "((\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") \"<root@x>\" NIL \"7BIT\" 21 1 "
			    "NIL NIL NIL NIL)(\"IMAGE\" \"GIF\" (\"NAME\" \"a.gif\") \"<img@x>\" NIL "
			    "\"BASE64\" 20 NIL (\"INLINE\" (\"FILENAME\" \"a.gif\")) NIL NIL) \"RELATED\" "
			    "(\"TYPE\" \"text/html\" \"START\" \"<root@x>\" \"BOUNDARY\" \"R\") NIL NIL "
			    "NIL)");
	buf_reset(&b);
	mime_bodystructure(msg, mime_root(msg), false, &b);
	assert_string_equal(buf_cstr(&b),
			    "((\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") \"<root@x>\" NIL \"7BIT\" 21 1)"
			    "(\"IMAGE\" \"GIF\" (\"NAME\" \"a.gif\") \"<img@x>\" NIL \"BASE64\" 20) "
			    "\"RELATED\")");
	buf_free(&b);
	mime_message_free(&msg);
}

static void test_empty_input(void **state)
{
	struct mime_message *msg = mime_parse(NULL, 0, NULL);
	struct buf b;

	buf_init(&b);
	mime_envelope(msg, mime_root(msg), &b);
	assert_string_equal(buf_cstr(&b), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	buf_reset(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	assert_string_equal(buf_cstr(&b), "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL "
					  "\"7BIT\" 0 0 NIL NIL NIL NIL)");
	assert_non_null(mime_find_section(msg, "1", 1));

	/* Regression (fuzzing, UBSan): empty values may come with a NULL pointer. */
	int64_t t;
	int tz;
	buf_reset(&b);
	assert_int_equal(mime_decode_body(msg, mime_root(msg), &b), 0);
	assert_int_equal(mime_part_text_utf8(msg, mime_root(msg), &b), 0);
	mime_decode_words(NULL, 0, &b);
	mime_decode_qp(NULL, 0, &b);
	mime_decode_base64(NULL, 0, &b);
	mime_fold_utf8(NULL, 0, &b);
	mime_header_unfold(NULL, 0, &b);
	assert_int_equal(mime_charset_to_utf8("koi8-r", NULL, 0, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(mime_parse_date(NULL, 0, &t, &tz), -1);
	assert_false(mime_text_contains(NULL, 0, "x"));
	buf_free(&b);
	mime_message_free(&msg);
	mime_message_free(&msg); /* NULL is accepted */
}

static void section_text(const struct mime_message *msg, const char *sec,
			 enum mime_section_kind kind, char **out_r)
{
	size_t off, size;

	*out_r = NULL;
	if (mime_section_range(msg, sec, strlen(sec), kind, &off, &size) < 0)
		return;
	*out_r = xstrndup((const char *)mime_data(msg) + off, size);
}

static void test_sections(void **state)
{
	size_t len;
	uint8_t *data = mime_test_load("rfc2060.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	char *s;

	section_text(msg, "", MIME_SECTION_PART, &s);
	assert_int_equal(strlen(s), len);
	free(s);
	section_text(msg, "", MIME_SECTION_HEADER, &s);
	assert_true(strncmp(s, "From: me@myself.com\n", 20) == 0);
	assert_int_equal(strlen(s), 160);
	free(s);
	section_text(msg, "", MIME_SECTION_TEXT, &s);
	assert_true(strncmp(s, "--x\n", 4) == 0);
	free(s);
	section_text(msg, "", MIME_SECTION_MIME, &s);
	assert_null(s);

	/* Section text is numeric only: the caller splits off ".HEADER". */
	section_text(msg, "3.HEADER", MIME_SECTION_HEADER, &s);
	assert_null(s);
	section_text(msg, "3", MIME_SECTION_HEADER, &s);
	assert_non_null(strstr(s, "Subject: This part specifier should be: 3\n"));
	assert_true(s[strlen(s) - 1] == '\n' && s[strlen(s) - 2] == '\n');
	free(s);
	section_text(msg, "3", MIME_SECTION_TEXT, &s);
	assert_true(strncmp(s, "--3.x\n", 6) == 0);
	free(s);
	section_text(msg, "4.1", MIME_SECTION_MIME, &s);
	assert_string_equal(s, "Content-Type: IMAGE/GIF\n\n");
	free(s);
	section_text(msg, "4.2.2.1", MIME_SECTION_PART, &s);
	assert_string_equal(s, "This part specifier should be: 4.2.2.1\n");
	free(s);
	/* HEADER of a part that is not message/rfc822 does not exist. */
	section_text(msg, "1", MIME_SECTION_HEADER, &s);
	assert_null(s);

	static const char *const bad[] = { "0", "5", "1.1", "4.3", "3.3", "01", "1.", ".1",
					   "4..1", "4.2.2.3", "99999999999999999999" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_null(mime_find_section(msg, bad[i], strlen(bad[i])));
	mime_message_free(&msg);
	free(data);

	/* Non-multipart message: part 1 is its body; 1.1 does not exist. */
	msg = parse_str("Subject: x\n\nhello\n");
	section_text(msg, "1", MIME_SECTION_PART, &s);
	assert_string_equal(s, "hello\n");
	free(s);
	assert_null(mime_find_section(msg, "1.1", 3));
	assert_null(mime_find_section(msg, "2", 1));
	mime_message_free(&msg);

	/* Top-level message/rfc822: 1 is the encapsulated message, 1.1 its body. */
	msg = parse_str("Content-Type: message/rfc822\n\nSubject: inner\n\ninner body\n");
	section_text(msg, "1", MIME_SECTION_PART, &s);
	assert_string_equal(s, "Subject: inner\n\ninner body\n");
	free(s);
	section_text(msg, "1", MIME_SECTION_HEADER, &s);
	assert_string_equal(s, "Subject: inner\n\n");
	free(s);
	section_text(msg, "1.1", MIME_SECTION_PART, &s);
	assert_string_equal(s, "inner body\n");
	free(s);
	mime_message_free(&msg);
}

static void test_header_filter(void **state)
{
	const char *h = "From: a@b\r\n"
			"Subject: one\r\n two\r\n"
			"To: c@d\n"
			"X-Other: z\r\n"
			"\r\n";
	const char *names[] = { "subject", "TO" };
	struct buf b;

	buf_init(&b);
	mime_header_filter((const uint8_t *)h, strlen(h), names, 2, false, &b);
	assert_string_equal(buf_cstr(&b), "Subject: one\r\n two\r\nTo: c@d\r\n\r\n");
	buf_reset(&b);
	mime_header_filter((const uint8_t *)h, strlen(h), names, 2, true, &b);
	assert_string_equal(buf_cstr(&b), "From: a@b\r\nX-Other: z\r\n\r\n");
	buf_reset(&b);
	mime_header_filter((const uint8_t *)h, strlen(h), names, 0, false, &b);
	assert_string_equal(buf_cstr(&b), "\r\n");
	buf_free(&b);
}

/* One header field whose value repeats unit to about 1 MiB. */
static char *bomb(const char *field, const char *prefix, const char *unit)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s: %s", field, prefix);
	while (b.len < 1000000)
		buf_append_str(&b, unit);
	buf_append_str(&b, "\r\n\r\nbody\r\n");
	buf_cstr(&b);
	return (char *)b.data;
}

static void test_pathological_headers(void **state)
{
	/* Every rendering and decoder stays linear on 1 MiB single-field values built to hit
	 * rescans: unterminated encoded-words, nested comments, commas, quotes, parameters. */
	static const struct {
		const char *field, *prefix, *unit;
	} cases[] = {
		{ "Subject", "", "=?utf-8?q?a" },
		{ "Subject", "", "=?utf-8?q?=C3=A9?= " },
		{ "Subject", "", "=?" },
		{ "To", "", "a@b," },
		{ "To", "", "(" },
		{ "To", "", "\"" },
		{ "To", "g:", "<@a,@b:c@d>;" },
		{ "Content-Language", "", "en," },
		{ "Content-Language", "", "(" },
		{ "Content-Type", "text/plain", ";a=b" },
		{ "Content-Type", "text/plain; name=\"", "=?x?q?" },
		{ "Content-Type", "multipart/mixed; boundary=", "x" },
		{ "Content-Disposition", "attachment", "; filename*1*=%41" },
		{ "Date", "", "1 Jan 2001 (" },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *m = bomb(cases[i].field, cases[i].prefix, cases[i].unit);
		uint64_t t0 = mime_test_cpu_ms();
		struct mime_message *msg = parse_str(m);
		const struct mime_part *root = mime_root(msg);
		struct buf b, d;
		int64_t t;
		int tz;

		buf_init(&b);
		buf_init(&d);
		mime_envelope(msg, root, &b);
		assert_true(mime_test_wellformed(b.data, b.len));
		buf_reset(&b);
		mime_bodystructure(msg, root, true, &b);
		assert_true(mime_test_wellformed(b.data, b.len));
		buf_reset(&b);
		mime_header_get(msg, root, cases[i].field, 0, &b);
		mime_decode_words((const char *)b.data, b.len, &d);
		mime_parse_date((const char *)b.data, b.len, &t, &tz);
		mime_param_decode(root->params, root->param_count, "name", &d);
		mime_param_decode(root->disp_params, root->disp_param_count, "filename", &d);
		uint64_t ms = mime_test_cpu_ms() - t0;
		if (ms >= 2000)
			fail_msg("case %zu (%s) took %llu ms", i, cases[i].field,
				 (unsigned long long)ms);
		buf_free(&b);
		buf_free(&d);
		mime_message_free(&msg);
		free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_string),
		cmocka_unit_test(test_envelope_basic),
		cmocka_unit_test(test_envelope_addresses),
		cmocka_unit_test(test_envelope_repeated_field),
		cmocka_unit_test(test_body_rfc2060),
		cmocka_unit_test(test_bodystructure_rfc2060),
		cmocka_unit_test(test_bodystructure_embedded),
		cmocka_unit_test(test_bodystructure_malformed),
		cmocka_unit_test(test_bodystructure_fields),
		cmocka_unit_test(test_bodystructure_related),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_header_filter),
		cmocka_unit_test(test_pathological_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
