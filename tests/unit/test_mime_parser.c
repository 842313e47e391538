/* Unit tests for the MIME parser: part offsets and line counts, malformed structure, limits
 * (depth, parts, header size), linear-time guards, header access and RFC 2047 / RFC 2231
 * decoding. Messages come from tests/data/mime/ (copies of files in the shared corpus). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <sys/stat.h>

#include "mime/mime.h"
#include "mime_test_util.h"

static struct mime_message *parse_str(const char *s)
{
	return mime_parse((const uint8_t *)s, strlen(s), NULL);
}

static char *body_of(const struct mime_message *msg, const struct mime_part *p)
{
	return xstrndup((const char *)mime_data(msg) + p->body_offset, p->body_size);
}

/* RFC 3501 §6.4.5 example: every leaf body names its own section number. */
static const char *const rfc2060_leaves[] = { "1",	 "2",	    "3.1",     "3.2",	 "4.1",
					      "4.2.1", "4.2.2.1", "4.2.2.2" };

static void check_rfc2060(const uint8_t *data, size_t len)
{
	struct mime_message *msg = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_root(msg);

	assert_int_equal(mime_part_count(msg), 15);
	assert_string_equal(root->type, "multipart");
	assert_int_equal(root->child_count, 4);
	assert_false(mime_limit_hit(msg));
	for (size_t i = 0; i < ARRAY_LEN(rfc2060_leaves); i++) {
		const char *sec = rfc2060_leaves[i];
		const struct mime_part *p = mime_find_section(msg, sec, strlen(sec));
		char *want = xasprintf("This part specifier should be: %s", sec);
		char *body;

		assert_non_null(p);
		body = body_of(msg, p);
		/* The body is the text plus its own line end; the delimiter's CRLF is not in it. */
		assert_memory_equal(body, want, strlen(want));
		assert_true(strcmp(body + strlen(want), "\n") == 0 ||
			    strcmp(body + strlen(want), "\r\n") == 0);
		assert_int_equal(p->body_lines, 1);
		free(want);
		free(body);
	}
	mime_message_free(&msg);
	assert_null(msg);
}

static void test_rfc2060_offsets(void **state)
{
	size_t len, crlf_len;
	uint8_t *data = mime_test_load("rfc2060.txt", &len);
	uint8_t *crlf = mime_test_crlf(data, len, &crlf_len);
	struct mime_message *msg;

	check_rfc2060(data, len);
	check_rfc2060(crlf, crlf_len);

	/* Exact offsets for the LF file, worked out from the file with a hex dump. */
	msg = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_root(msg);
	assert_int_equal(root->header_offset, 0);
	assert_int_equal(root->header_size, 160);
	assert_int_equal(root->body_offset, 160);
	assert_int_equal(root->body_size, len - 160);
	const struct mime_part *p3 = mime_part_child(root, 2);
	assert_string_equal(p3->type, "message");
	assert_string_equal(p3->subtype, "rfc822");
	assert_non_null(p3->message);
	assert_int_equal(p3->message->header_offset, p3->body_offset);
	assert_int_equal(p3->message->body_offset + p3->message->body_size,
			 p3->body_offset + p3->body_size);
	/* Part 1's header is "Content-Type: text/plain\n\n" right after "--x\n". */
	const struct mime_part *p1 = mime_part_child(root, 0);
	assert_int_equal(p1->header_size, 26);
	assert_memory_equal(data + p1->header_offset - 4, "--x\n", 4);
	mime_message_free(&msg);

	/* With CRLF the structure is the same and every body grows by its line count. */
	msg = mime_parse(crlf, crlf_len, NULL);
	p1 = mime_part_child(mime_root(msg), 0);
	assert_int_equal(p1->header_size, 28);
	assert_int_equal(p1->body_size, 34);
	mime_message_free(&msg);
	free(crlf);
	free(data);
}

static void test_line_counts(void **state)
{
	struct mime_message *msg;

	/* Final line without a line end still counts; bare LF and CRLF both end lines. */
	msg = parse_str("Subject: x\r\n\r\na\r\nb\nc");
	assert_int_equal(mime_root(msg)->body_lines, 3);
	assert_int_equal(mime_root(msg)->body_size, 6);
	assert_int_equal(mime_root(msg)->header_lines, 2);
	mime_message_free(&msg);

	msg = parse_str("Subject: x\n\n");
	assert_int_equal(mime_root(msg)->body_lines, 0);
	assert_int_equal(mime_root(msg)->body_size, 0);
	mime_message_free(&msg);

	/* A bare CR is not a line end. */
	msg = parse_str("Subject: x\n\na\rb\n");
	assert_int_equal(mime_root(msg)->body_lines, 1);
	mime_message_free(&msg);
}

static void test_header_fields(void **state)
{
	const char *m = "From: a@b\r\n"
			"Subject: one\r\n two\r\n\tthree\r\n"
			"X-Empty:\r\n"
			"no colon here\r\n"
			"X-Sp  : spaced\r\n"
			"subject: second\r\n"
			"X-Bin: a\xff\x01z\r\n"
			"\r\n"
			"body\r\n";
	struct mime_message *msg = parse_str(m);
	const struct mime_part *root = mime_root(msg);
	struct buf b;
	const uint8_t *name, *value;
	size_t nlen, vlen;

	buf_init(&b);
	assert_int_equal(mime_header_count(msg, root), 6);
	assert_int_equal(mime_header_get(msg, root, "SUBJECT", 0, &b), 0);
	assert_string_equal(buf_cstr(&b), "one two\tthree");
	buf_reset(&b);
	assert_int_equal(mime_header_get(msg, root, "Subject", 1, &b), 0);
	assert_string_equal(buf_cstr(&b), "second");
	buf_reset(&b);
	assert_int_equal(mime_header_get(msg, root, "Subject", 2, &b), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(mime_header_get(msg, root, "x-empty", 0, &b), 0);
	assert_int_equal(b.len, 0);
	/* Whitespace between a field name and its colon is tolerated. */
	assert_int_equal(mime_header_get(msg, root, "x-sp", 0, &b), 0);
	assert_string_equal(buf_cstr(&b), "spaced");
	buf_reset(&b);
	assert_int_equal(mime_header_get(msg, root, "x-bin", 0, &b), 0);
	assert_memory_equal(b.data, "a\xff\x01z", 4);
	buf_reset(&b);
	assert_int_equal(mime_header_field(msg, root, 1, &name, &nlen, &value, &vlen), 0);
	assert_memory_equal(name, "Subject", nlen);
	assert_memory_equal(value, " one\r\n two\r\n\tthree", vlen);
	assert_int_equal(mime_header_field(msg, root, 6, &name, &nlen, &value, &vlen), -1);
	char *body = body_of(msg, root);
	assert_string_equal(body, "body\r\n");
	free(body);
	buf_free(&b);
	mime_message_free(&msg);
}

static void test_nul_and_8bit(void **state)
{
	static const uint8_t m[] = "Subject: a\0b\xe9\n"
				   "Content-Type: text/plain; charset=\"iso-8859-1\"\n"
				   "\n"
				   "x\0y\n";
	struct mime_message *msg = mime_parse(m, sizeof(m) - 1, NULL);
	const struct mime_part *root = mime_root(msg);
	struct buf b;

	buf_init(&b);
	assert_int_equal(mime_header_get(msg, root, "subject", 0, &b), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "ab\xe9", 3);
	assert_int_equal(root->body_size, 4);
	assert_int_equal(root->body_lines, 1);
	assert_string_equal(root->params[0].value, "iso-8859-1");
	buf_free(&b);
	mime_message_free(&msg);
}

static void test_missing_boundary(void **state)
{
	size_t len;
	uint8_t *data = mime_test_load("msg_17.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_root(msg);

	/* The boundary never occurs: no children, the whole body stays with the multipart. */
	assert_string_equal(root->subtype, "mixed");
	assert_int_equal(root->child_count, 0);
	assert_int_equal(root->body_offset + root->body_size, len);
	mime_message_free(&msg);
	free(data);

	/* No boundary parameter at all. */
	msg = parse_str("Content-Type: multipart/alternative;\n\n--x\nhi\n--x--\n");
	assert_int_equal(mime_root(msg)->child_count, 0);
	assert_true(mime_root(msg)->truncated);
	mime_message_free(&msg);

	/* Unterminated multipart: the last part runs to the end of the input. */
	msg = parse_str("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nlast\n");
	const struct mime_part *c = mime_part_child(mime_root(msg), 0);
	assert_non_null(c);
	assert_int_equal(c->body_size, 5);
	assert_int_equal(c->body_lines, 1);
	mime_message_free(&msg);
}

static void test_empty_multipart(void **state)
{
	size_t len;
	uint8_t *data = mime_test_load("empty-multipart.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_root(msg);

	/* mixed -> (alternative with no parts, text/plain): the outer boundary ends the
	 * alternative, whose own boundary never appears. */
	assert_int_equal(root->child_count, 2);
	assert_string_equal(mime_part_child(root, 0)->subtype, "alternative");
	assert_int_equal(mime_part_child(root, 0)->child_count, 0);
	assert_string_equal(mime_part_child(root, 1)->type, "text");
	mime_message_free(&msg);
	free(data);
}

static void test_preamble_epilogue_padding(void **state)
{
	const char *m = "Content-Type: multipart/mixed; boundary=\"b\"\r\n"
			"\r\n"
			"preamble\r\n"
			"--b  \t\r\n"
			"\r\n"
			"one\r\n"
			"--bb\r\n" /* not a delimiter: a boundary character follows "--b" */
			"--b\r\n"
			"Content-Type: text/html\r\n"
			"\r\n"
			"two\r\n"
			"--b--  \r\n"
			"epilogue\r\n"
			"--b\r\n";
	struct mime_message *msg = parse_str(m);
	const struct mime_part *root = mime_root(msg);
	char *b1, *b2;

	assert_int_equal(root->child_count, 2);
	b1 = body_of(msg, mime_part_child(root, 0));
	assert_string_equal(b1, "one\r\n--bb");
	b2 = body_of(msg, mime_part_child(root, 1));
	assert_string_equal(b2, "two");
	assert_string_equal(mime_part_child(root, 1)->subtype, "html");
	assert_int_equal(mime_part_child(root, 0)->body_lines, 2);
	/* After the close delimiter the rest is epilogue: no fourth part. */
	assert_int_equal(root->body_offset + root->body_size, strlen(m));
	free(b1);
	free(b2);
	mime_message_free(&msg);
}

static void test_nested_same_boundary(void **state)
{
	/* The inner multipart reuses the outer boundary: the innermost match wins. */
	const char *m = "Content-Type: multipart/mixed; boundary=x\n\n"
			"--x\nContent-Type: multipart/mixed; boundary=x\n\n"
			"--x\nContent-Type: text/plain\n\ninner\n"
			"--x--\n";
	struct mime_message *msg = parse_str(m);
	const struct mime_part *root = mime_root(msg);

	assert_int_equal(root->child_count, 1);
	assert_int_equal(mime_part_child(root, 0)->child_count, 1);
	mime_message_free(&msg);
}

static void test_defaults(void **state)
{
	size_t len;
	uint8_t *data = mime_test_load("missing-subtype.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_root(msg);

	/* "Content-Type: text" is invalid: RFC 2045 §5.2 default. */
	assert_string_equal(root->type, "text");
	assert_string_equal(root->subtype, "plain");
	assert_int_equal(root->param_count, 1);
	assert_string_equal(root->params[0].name, "charset");
	assert_string_equal(root->params[0].value, "us-ascii");
	assert_string_equal(root->encoding, "7bit");
	mime_message_free(&msg);
	free(data);

	msg = parse_str("Content-Type: application-x-gzip\n"
			"Content-Transfer-Encoding: (c) BASE64 (d)\n\nx");
	assert_string_equal(mime_root(msg)->type, "text");
	assert_string_equal(mime_root(msg)->encoding, "base64");
	mime_message_free(&msg);

	msg = parse_str("Content-Type: TEXT / HTML (comment) ; CharSet = \"UTF-8\" ; x=y;;\n\n");
	assert_string_equal(mime_root(msg)->type, "text");
	assert_string_equal(mime_root(msg)->subtype, "html");
	assert_int_equal(mime_root(msg)->param_count, 2);
	assert_string_equal(mime_root(msg)->params[0].name, "charset");
	assert_string_equal(mime_root(msg)->params[0].value, "UTF-8");
	mime_message_free(&msg);

	/* RFC 2046 §5.1.5: parts of a digest default to message/rfc822. */
	data = mime_test_load("msg_02.txt", &len);
	msg = mime_parse(data, len, NULL);
	const struct mime_part *digest = mime_part_child(mime_root(msg), 2);
	assert_string_equal(digest->subtype, "digest");
	assert_int_equal(digest->child_count, 5);
	for (size_t i = 0; i < 5; i++) {
		const struct mime_part *c = mime_part_child(digest, i);
		assert_string_equal(c->type, "message");
		assert_non_null(c->message);
	}
	mime_message_free(&msg);
	free(data);
}

static void test_truncated_prefixes(void **state)
{
	static const char *const files[] = { "rfc2060.txt", "msg_02.txt", "msg_26.txt",
					     "msg_29.txt", "japanese.txt", "msg_47.txt" };

	for (size_t f = 0; f < ARRAY_LEN(files); f++) {
		size_t len;
		uint8_t *data = mime_test_load(files[f], &len);
		for (size_t n = 0; n <= len; n++) {
			/* A private copy of exactly n bytes lets ASan catch any overread. */
			uint8_t *copy = xmalloc(n ? n : 1);
			memcpy(copy, data, n);
			struct mime_message *msg = mime_parse(copy, n, NULL);
			struct buf b;
			const struct mime_part *root = mime_root(msg);
			assert_true(root->body_offset + root->body_size <= n);
			buf_init(&b);
			mime_envelope(msg, root, &b);
			assert_true(mime_test_wellformed(b.data, b.len));
			buf_reset(&b);
			mime_bodystructure(msg, root, true, &b);
			assert_true(mime_test_wellformed(b.data, b.len));
			buf_reset(&b);
			mime_bodystructure(msg, root, false, &b);
			assert_true(mime_test_wellformed(b.data, b.len));
			buf_free(&b);
			mime_message_free(&msg);
			free(copy);
		}
		free(data);
	}
}

/* "Content-Type: multipart/mixed; boundary=bN" nested n deep, then a text part. */
static char *nested_message(size_t n, size_t *len_r)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%zu\n\n--b%zu\n", i, i);
	buf_append_str(&b, "Content-Type: text/plain\n\ndeep\n");
	for (size_t i = n; i-- > 0;)
		buf_printf(&b, "--b%zu--\n", i);
	*len_r = b.len;
	buf_cstr(&b);
	return (char *)b.data;
}

static void test_depth_limit(void **state)
{
	size_t len;
	char *m = nested_message(1000, &len);
	struct mime_message *msg = mime_parse((const uint8_t *)m, len, NULL);
	const struct mime_part *p = mime_root(msg);
	unsigned depth = 0;
	struct buf b;

	assert_true(mime_limit_hit(msg));
	while (p->first_child != NULL) {
		p = p->first_child;
		depth++;
	}
	/* The default depth is 100: the part at depth 100 keeps the rest as opaque body. */
	assert_int_equal(depth, LIMIT_MIME_DEPTH_DEFAULT);
	assert_true(p->truncated);
	assert_true(p->body_size > 0);
	buf_init(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	mime_envelope(msg, mime_root(msg), &b);
	buf_free(&b);
	mime_message_free(&msg);

	/* A configured limit is honoured up to its ceiling. */
	struct mime_limits lim;
	mime_limits_default(&lim);
	lim.max_depth = 5000;
	msg = mime_parse((const uint8_t *)m, len, &lim);
	p = mime_root(msg);
	depth = 0;
	while (p->first_child != NULL) {
		p = p->first_child;
		depth++;
	}
	assert_int_equal(depth, 1000);
	assert_string_equal(p->type, "text");
	mime_message_free(&msg);
	free(m);

	/* CVE-2020-12100: 100 000 levels parse quickly with bounded stack; the tree stops at the
	 * depth limit, so BODYSTRUCTURE stays small. */
	m = nested_message(100000, &len);
	uint64_t t0 = mime_test_cpu_ms();
	msg = mime_parse((const uint8_t *)m, len, NULL);
	buf_init(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	assert_true(mime_test_cpu_ms() - t0 < 2000);
	assert_true(b.len < 100 * 1000);
	buf_free(&b);
	mime_message_free(&msg);
	free(m);
}

static void test_message_rfc822_depth(void **state)
{
	/* message/rfc822 nested 300 deep: each level counts toward the depth limit. */
	struct buf b;
	struct mime_message *msg;
	const struct mime_part *p;
	unsigned depth = 0;

	buf_init(&b);
	for (int i = 0; i < 300; i++)
		buf_append_str(&b, "Content-Type: message/rfc822\n\n");
	buf_append_str(&b, "Subject: deep\n\nbody\n");
	msg = mime_parse(b.data, b.len, NULL);
	p = mime_root(msg);
	while (p->message != NULL) {
		p = p->message;
		depth++;
	}
	assert_int_equal(depth, LIMIT_MIME_DEPTH_DEFAULT);
	assert_true(p->truncated);
	buf_reset(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	assert_true(b.len > 0);
	buf_free(&b);
	mime_message_free(&msg);
}

static void test_part_limit(void **state)
{
	/* CVE-2020-25275: 9 999 / 10 000 / 10 001 parts, clean cut-off, no assert. */
	static const size_t counts[] = { 9998, 9999, 10000, 20000 };

	for (size_t c = 0; c < ARRAY_LEN(counts); c++) {
		struct buf b;
		buf_init(&b);
		buf_append_str(&b, "Content-Type: multipart/mixed; boundary=z\n\n");
		for (size_t i = 0; i < counts[c]; i++)
			buf_printf(&b, "--z\n\npart %zu\n", i);
		struct mime_message *msg = mime_parse(b.data, b.len, NULL);
		size_t want = counts[c] + 1 > LIMIT_MIME_PARTS_DEFAULT ? LIMIT_MIME_PARTS_DEFAULT
								    : counts[c] + 1;
		assert_int_equal(mime_part_count(msg), want);
		assert_int_equal(mime_limit_hit(msg), counts[c] + 1 > LIMIT_MIME_PARTS_DEFAULT);
		const struct mime_part *root = mime_root(msg);
		assert_int_equal(root->child_count, want - 1);
		/* The last part holds the rest of the input. */
		const struct mime_part *last = mime_part_child(root, root->child_count - 1);
		assert_int_equal(last->body_offset + last->body_size, b.len);
		buf_reset(&b);
		mime_bodystructure(msg, root, true, &b);
		buf_free(&b);
		mime_message_free(&msg);
	}
}

static void test_many_to_lines(void **state)
{
	/* CVE-2024-23184: 100 k To: lines must parse (and render) in well under a second. */
	struct buf b, out;
	struct mime_message *msg;
	uint64_t t0;

	buf_init(&b);
	buf_init(&out);
	buf_append_str(&b, "From: a@example.com\n");
	for (int i = 0; i < 100000; i++)
		buf_printf(&b, "To: user%d@example.com\n", i);
	buf_append_str(&b, "\nbody\n");
	/* 2.3 MB of header: the default 1 MiB limit interprets only the first part of it. */
	t0 = mime_test_cpu_ms();
	msg = mime_parse(b.data, b.len, NULL);
	mime_envelope(msg, mime_root(msg), &out);
	assert_true(mime_test_cpu_ms() - t0 < 1000);
	assert_true(mime_limit_hit(msg));
	assert_true(mime_header_count(msg, mime_root(msg)) < 100001);
	assert_int_equal(mime_root(msg)->body_size, 5);
	mime_message_free(&msg);

	/* With a limit above the block every field is indexed, still in linear time. */
	struct mime_limits lim;
	mime_limits_default(&lim);
	lim.max_header_block = 16 * 1024 * 1024;
	buf_reset(&out);
	t0 = mime_test_cpu_ms();
	msg = mime_parse(b.data, b.len, &lim);
	mime_envelope(msg, mime_root(msg), &out);
	mime_bodystructure(msg, mime_root(msg), true, &out);
	assert_true(mime_test_cpu_ms() - t0 < 1000);
	assert_false(mime_limit_hit(msg));
	assert_int_equal(mime_header_count(msg, mime_root(msg)), 100001);
	assert_non_null(strstr(buf_cstr(&out), "((NIL NIL \"user0\" \"example.com\"))"));
	assert_null(strstr(buf_cstr(&out), "user1@"));
	buf_free(&b);
	buf_free(&out);
	mime_message_free(&msg);
}

static void test_header_block_limit(void **state)
{
	struct mime_limits lim;
	struct buf b;
	struct mime_message *msg;

	mime_limits_default(&lim);
	lim.max_header_block = 64;
	buf_init(&b);
	buf_append_str(&b, "Subject: early\n");
	for (int i = 0; i < 10; i++)
		buf_append_str(&b, "X-Filler: 0123456789\n");
	buf_append_str(&b, "Content-Type: text/html\n\nbody\n");
	msg = mime_parse(b.data, b.len, &lim);
	/* Fields past the limit are not interpreted, but the block still ends at the blank
	 * line. */
	assert_true(mime_limit_hit(msg));
	assert_string_equal(mime_root(msg)->subtype, "plain");
	assert_int_equal(mime_root(msg)->body_size, 5);
	mime_message_free(&msg);
	buf_free(&b);
}

static void test_rfc2231_bomb(void **state)
{
	/* CVE-2026-27859: 100 k continuations must stay cheap. */
	struct buf b, out;
	struct mime_message *msg;
	uint64_t t0;

	buf_init(&b);
	buf_init(&out);
	buf_append_str(&b, "Content-Type: application/octet-stream");
	for (int i = 0; i < 100000; i++)
		buf_printf(&b, ";\n name*%d*=a%%41", i);
	buf_append_str(&b, "\n\nx\n");
	t0 = mime_test_cpu_ms();
	msg = mime_parse(b.data, b.len, NULL);
	const struct mime_part *root = mime_root(msg);
	assert_int_equal(root->param_count, LIMIT_MIME_PARAMS);
	assert_int_equal(mime_param_decode(root->params, root->param_count, "name", &out), 0);
	/* Sections 0..LIMIT_MIME_PARAM_SECTIONS are joined, the rest ignored. */
	assert_int_equal(out.len, 2 * (LIMIT_MIME_PARAM_SECTIONS + 1));
	assert_memory_equal(out.data, "aAaA", 4);
	buf_reset(&out);
	mime_bodystructure(msg, root, true, &out);
	assert_true(mime_test_cpu_ms() - t0 < 1000);
	buf_free(&b);
	buf_free(&out);
	mime_message_free(&msg);
}

static void test_rfc2231(void **state)
{
	size_t len;
	uint8_t *data = mime_test_load("msg_29.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_root(msg);
	struct buf b;

	buf_init(&b);
	assert_int_equal(mime_param_decode(root->params, root->param_count, "title", &b), 0);
	assert_string_equal(buf_cstr(&b), "This is even more ***fun*** isn't it!");
	buf_reset(&b);
	assert_int_equal(mime_param_decode(root->params, root->param_count, "nope", &b), -1);
	mime_message_free(&msg);
	free(data);

	msg = parse_str("Content-Type: application/pdf\n"
			"Content-Disposition: attachment;\n"
			" filename*=iso-8859-1'fr'r%E9sum%E9.pdf;\n"
			" name*0*=UTF-8''%C3%A9t%C3%A9; name*1=\" 2024\"; name*3=skipped\n\n");
	root = mime_root(msg);
	assert_string_equal(root->disposition, "attachment");
	assert_int_equal(
	    mime_param_decode(root->disp_params, root->disp_param_count, "filename", &b), 0);
	assert_string_equal(buf_cstr(&b), "r\xc3\xa9sum\xc3\xa9.pdf");
	buf_reset(&b);
	/* A gap in the section numbers ends the value. */
	assert_int_equal(mime_param_decode(root->disp_params, root->disp_param_count, "name", &b),
			 0);
	assert_string_equal(buf_cstr(&b), "\xc3\xa9t\xc3\xa9 2024");
	buf_reset(&b);
	mime_message_free(&msg);

	/* Encoded-words in a quoted value (common, though RFC 2047 §5 forbids it). */
	msg = parse_str("Content-Type: text/plain; name=\"=?UTF-8?B?w6ku?= txt\"\n\n");
	root = mime_root(msg);
	assert_int_equal(mime_param_decode(root->params, root->param_count, "name", &b), 0);
	assert_string_equal(buf_cstr(&b), "\xc3\xa9. txt");
	buf_free(&b);
	mime_message_free(&msg);
}

static void check_words(const char *in, const char *want)
{
	struct buf b;

	buf_init(&b);
	mime_decode_words(in, strlen(in), &b);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void test_encoded_words(void **state)
{
	check_words("=?UTF-8?B?w6l0w6k=?=", "\xc3\xa9t\xc3\xa9");
	check_words("=?iso-8859-1?q?caf=E9_cr=E8me?=", "caf\xc3\xa9 cr\xc3\xa8me");
	check_words("=?ISO-8859-2?Q?=B1?=", "\xc4\x85");
	check_words("=?koi8-r?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	/* Whitespace between adjacent words disappears (RFC 2047 §6.2), not around text. */
	check_words("a =?utf-8?q?b?= =?utf-8?q?c?= d", "a bc d");
	/* RFC 2231 §5 language suffix. */
	check_words("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
	/* Invalid words are left as they are. */
	check_words("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	check_words("=?no-such-charset?q?abc?=", "=?no-such-charset?q?abc?=");
	check_words("=?utf-8?q?unterminated", "=?utf-8?q?unterminated");
	check_words("plain text", "plain text");
	/* Invalid bytes for the charset become U+FFFD. */
	check_words("=?utf-8?q?a=FFb?=", "a\xef\xbf\xbd" "b");

	/* ISO-2022-JP split over two words mid-sequence: decoded bytes are joined first. */
	size_t len;
	uint8_t *data = mime_test_load("japanese.txt", &len);
	struct mime_message *msg = mime_parse(data, len, NULL);
	struct buf raw, out;
	buf_init(&raw);
	buf_init(&out);
	assert_int_equal(mime_header_get(msg, mime_root(msg), "subject", 0, &raw), 0);
	mime_decode_words((const char *)raw.data, raw.len, &out);
	/* 日本語メールテスト (testing Japanese emails) */
	assert_string_equal(buf_cstr(&out), "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\xa1"
					    "\xe3\x83\xbc\xe3\x83\xab\xe3\x83\x86\xe3\x82\xb9"
					    "\xe3\x83\x88 (testing Japanese emails)");
	buf_free(&raw);
	buf_free(&out);
	mime_message_free(&msg);
	free(data);
}

static void test_charset_conversion(void **state)
{
	struct buf b;

	buf_init(&b);
	assert_int_equal(mime_charset_to_utf8("windows-1252", (const uint8_t *)"\x80", 1, &b), 0);
	assert_string_equal(buf_cstr(&b), "\xe2\x82\xac");
	buf_reset(&b);
	assert_int_equal(mime_charset_to_utf8("x-bogus", (const uint8_t *)"a", 1, &b), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(mime_charset_to_utf8("utf-8", (const uint8_t *)"a\xc3", 2, &b), 0);
	assert_string_equal(buf_cstr(&b), "a\xef\xbf\xbd");
	buf_free(&b);
}

/* Checks the structural invariants of every part below p and returns the parts seen. */
static size_t check_tree(const struct mime_message *msg, const struct mime_part *p)
{
	size_t len = mime_data_len(msg), seen = 1, kids = 0;

	assert_int_equal(p->header_offset + p->header_size, p->body_offset);
	assert_true(p->body_offset <= len && p->body_size <= len - p->body_offset);
	if (p->parent != NULL) {
		assert_true(p->header_offset >= p->parent->body_offset);
		assert_true(p->body_offset + p->body_size <=
			    p->parent->body_offset + p->parent->body_size);
	}
	for (const struct mime_part *c = p->first_child; c != NULL; c = c->next_sibling) {
		assert_ptr_equal(c->parent, p);
		seen += check_tree(msg, c);
		kids++;
	}
	assert_int_equal(kids, p->child_count);
	if (p->message != NULL)
		seen += check_tree(msg, p->message);
	return seen;
}

static void sweep_file(const char *path, size_t *files_r)
{
	FILE *f = fopen(path, "rb");
	struct buf data, out;

	assert_non_null(f);
	buf_init(&data);
	buf_init(&out);
	for (;;) {
		buf_reserve(&data, 65536);
		size_t n = fread(data.data + data.len, 1, 65536, f);
		data.len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	struct mime_message *msg = mime_parse(data.data, data.len, NULL);
	assert_int_equal(check_tree(msg, mime_root(msg)), mime_part_count(msg));
	mime_envelope(msg, mime_root(msg), &out);
	if (!mime_test_wellformed(out.data, out.len))
		fail_msg("bad ENVELOPE for %s", path);
	buf_reset(&out);
	mime_bodystructure(msg, mime_root(msg), true, &out);
	if (!mime_test_wellformed(out.data, out.len))
		fail_msg("bad BODYSTRUCTURE for %s", path);
	buf_free(&out);
	buf_free(&data);
	mime_message_free(&msg);
	(*files_r)++;
}

static void sweep_dir(const char *dir, size_t *files_r)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char *path;

		if (e->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			sweep_dir(path, files_r);
		else if (S_ISREG(st.st_mode))
			sweep_file(path, files_r);
		free(path);
	}
	closedir(d);
}

struct offsets_cursor {
	FILE *table;
	size_t base; /* file offset of the message being compared */
	size_t checked;
};

/* Compares p and everything below it (children, then an encapsulated message) with the next
 * "P" lines of the table. */
static void compare_offsets(struct offsets_cursor *c, const struct mime_part *p, unsigned depth)
{
	char line[256];
	unsigned d;
	size_t hb, bb, be;
	long lines;

	do {
		assert_non_null(fgets(line, sizeof(line), c->table));
	} while (line[0] == '#');
	assert_int_equal(sscanf(line, "P %u %zu %zu %zu %ld", &d, &hb, &bb, &be, &lines), 5);
	assert_int_equal(d, depth);
	assert_int_equal(p->header_offset + c->base, hb);
	assert_int_equal(p->body_offset + c->base, bb);
	assert_int_equal(p->body_offset + p->body_size + c->base, be);
	if (lines >= 0)
		assert_int_equal(p->body_lines, (uint64_t)lines);
	c->checked++;
	for (const struct mime_part *ch = p->first_child; ch != NULL; ch = ch->next_sibling)
		compare_offsets(c, ch, depth + 1);
	if (p->message != NULL)
		compare_offsets(c, p->message, depth + 1);
}

/* Splits the mbox at the message ranges of the table and compares every part. */
static size_t check_mbox_offsets(const uint8_t *mbox, size_t mbox_len, const char *table)
{
	char *path = xasprintf("tests/data/mime/%s", table);
	struct offsets_cursor c = { .table = fopen(path, "r") };
	char line[256];

	assert_non_null(c.table);
	while (fgets(line, sizeof(line), c.table) != NULL) {
		size_t begin, end;
		if (line[0] != 'M')
			continue;
		assert_int_equal(sscanf(line, "M %zu %zu", &begin, &end), 2);
		assert_true(begin <= end && end <= mbox_len);
		struct mime_message *msg = mime_parse(mbox + begin, end - begin, NULL);
		c.base = begin;
		compare_offsets(&c, mime_root(msg), 0);
		mime_message_free(&msg);
	}
	fclose(c.table);
	free(path);
	return c.checked;
}

static void test_mbox_offsets(void **state)
{
	/* Independent expected offsets: MimeKit's parser results for the same mbox files. */
	size_t len;
	uint8_t *data = mime_test_load("issue1189.mbox.txt", &len);

	assert_int_equal(check_mbox_offsets(data, len, "issue1189.offsets.txt"), 14);
	free(data);

	/* The 935 KB mbox is read from the shared corpus when it is there. */
	const char *dir = getenv("ROOST_CORPUS");
	char *path = xasprintf("%s/mimekit/mbox/content-length.mbox.txt",
			       dir ? dir : "../shared/corpus");
	FILE *f = fopen(path, "rb");
	free(path);
	if (f == NULL)
		skip();
	struct buf b;
	buf_init(&b);
	for (size_t n = 1; n > 0;) {
		buf_reserve(&b, 65536);
		n = fread(b.data + b.len, 1, 65536, f);
		b.len += n;
	}
	fclose(f);
	assert_int_equal(check_mbox_offsets(b.data, b.len, "content-length.offsets.txt"), 105);
	buf_free(&b);
}

static void test_empty_parts_stay_inside_parent(void **state)
{
	/* Regression (found by the corpus sweep): a part whose header runs up to a delimiter
	 * must not reach past its parent, which the delimiter closes at the same point. */
	static const char *const cases[] = {
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		"Content-Type: message/rfc822\n\nSubject: only a header\n\n--b--\n",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		"Content-Type: multipart/mixed; boundary=a\n\n--a\n--b\n\nx\n--b--\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n--b--",
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mime_message *msg = parse_str(cases[i]);
		assert_int_equal(check_tree(msg, mime_root(msg)), mime_part_count(msg));
		mime_message_free(&msg);
	}

	/* The message/rfc822 part keeps the line end that ends its message's header. */
	struct mime_message *msg = parse_str(cases[0]);
	const struct mime_part *m = mime_part_child(mime_root(msg), 0);
	assert_non_null(m->message);
	assert_int_equal(m->message->header_size, strlen("Subject: only a header\n\n"));
	assert_int_equal(m->message->body_size, 0);
	assert_int_equal(m->body_size, m->message->header_size);
	mime_message_free(&msg);
}

static void test_corpus_sweep(void **state)
{
	/* The whole shared corpus when it is present (ROOST_CORPUS, else ../shared/corpus
	 * from the repository root); the copies in tests/data/mime cover the exact checks. */
	const char *dir = getenv("ROOST_CORPUS");
	struct stat st;
	size_t files = 0;

	if (dir == NULL)
		dir = "../shared/corpus";
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		skip();
	sweep_dir(dir, &files);
	assert_true(files > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc2060_offsets),
		cmocka_unit_test(test_line_counts),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_nul_and_8bit),
		cmocka_unit_test(test_missing_boundary),
		cmocka_unit_test(test_empty_multipart),
		cmocka_unit_test(test_preamble_epilogue_padding),
		cmocka_unit_test(test_nested_same_boundary),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_truncated_prefixes),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_message_rfc822_depth),
		cmocka_unit_test(test_part_limit),
		cmocka_unit_test(test_many_to_lines),
		cmocka_unit_test(test_header_block_limit),
		cmocka_unit_test(test_rfc2231_bomb),
		cmocka_unit_test(test_rfc2231),
		cmocka_unit_test(test_encoded_words),
		cmocka_unit_test(test_charset_conversion),
		cmocka_unit_test(test_mbox_offsets),
		cmocka_unit_test(test_empty_parts_stay_inside_parent),
		cmocka_unit_test(test_corpus_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
