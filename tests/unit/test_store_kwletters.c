/* Keyword letters in Maildir file names (store/local/kwletters.c): letters are handed out in
 * order and written before use, read back case-insensitively, never reassigned; a damaged
 * roost-keywords file ends the list at the damage; the 27th keyword of a folder gets none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/local/local.h"

static char *temp_folder(void)
{
	char tmpl[] = "/tmp/roost-kwl-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void remove_folder(char *dir)
{
	char *path = xasprintf("%s/%s", dir, LOCAL_KEYWORDS_FILE);

	unlink(path);
	free(path);
	rmdir(dir);
	free(dir);
}

static char *read_file(const char *dir)
{
	char *path = xasprintf("%s/%s", dir, LOCAL_KEYWORDS_FILE);
	FILE *f = fopen(path, "r");
	static char text[4096];
	size_t n;

	free(path);
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	return text;
}

static void test_letters_assigned_in_order_and_read_back(void **state)
{
	char *dir = temp_folder();
	struct local_kwmap map = { 0 };
	char letters[LOCAL_KW_LETTERS + 1];
	char *kw;

	(void)state;
	local_kwmap_letters(&map, dir, NULL, letters);
	assert_string_equal(letters, "");
	local_kwmap_letters(&map, dir, "$Forwarded Work", letters);
	assert_string_equal(letters, "ab");
	local_kwmap_letters(&map, dir, "$Label1 work", letters);
	assert_string_equal(letters, "bc"); /* "work" is "Work": same letter */
	assert_string_equal(read_file(dir), "0 $Forwarded\n1 Work\n2 $Label1\n");
	local_kwmap_clear(&map);

	/* A fresh map reads the file: names from letters, in the index's normalised form. */
	kw = local_kwmap_keywords(&map, dir, "1700.M1,U=5,S=10:2,FSac");
	assert_string_equal(kw, "$Forwarded $Label1");
	free(kw);
	assert_null(local_kwmap_keywords(&map, dir, "1700.M1,U=5,S=10:2,FS"));
	assert_null(local_kwmap_keywords(&map, dir, "1700.M1,U=5,S=10"));
	/* A letter past the list stands for nothing. */
	kw = local_kwmap_keywords(&map, dir, "x,U=1,S=1:2,az");
	assert_string_equal(kw, "$Forwarded");
	free(kw);
	local_filename_letters("x,U=1,S=1:2,TcaS", letters);
	assert_string_equal(letters, "ac");
	local_kwmap_clear(&map);
	remove_folder(dir);
}

static void test_27th_keyword_has_no_letter(void **state)
{
	char *dir = temp_folder();
	struct local_kwmap map = { 0 };
	char letters[LOCAL_KW_LETTERS + 1];
	struct buf all;

	(void)state;
	buf_init(&all);
	for (int i = 0; i < 27; i++)
		buf_printf(&all, "%sk%02d", i ? " " : "", i);
	local_kwmap_letters(&map, dir, buf_cstr(&all), letters);
	assert_string_equal(letters, "abcdefghijklmnopqrstuvwxyz");
	assert_int_equal(map.count, 26);
	local_kwmap_letters(&map, dir, "k26 new", letters);
	assert_string_equal(letters, "");
	buf_free(&all);
	local_kwmap_clear(&map);
	remove_folder(dir);
}

static void test_damaged_file_ends_the_list(void **state)
{
	char *dir = temp_folder();
	struct local_kwmap map = { 0 };
	char letters[LOCAL_KW_LETTERS + 1];
	char *path = xasprintf("%s/%s", dir, LOCAL_KEYWORDS_FILE);
	FILE *f = fopen(path, "w");

	(void)state;
	assert_non_null(f);
	fputs("0 one\n1 two\n3 four\ngarbage\n", f);
	fclose(f);
	local_kwmap_load(&map, dir);
	assert_int_equal(map.count, 2);
	/* A new keyword takes the next letter after what could be read, and the file is
	 * rewritten whole. */
	local_kwmap_letters(&map, dir, "three", letters);
	assert_string_equal(letters, "c");
	assert_string_equal(read_file(dir), "0 one\n1 two\n2 three\n");
	free(path);
	local_kwmap_clear(&map);
	remove_folder(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_letters_assigned_in_order_and_read_back),
		cmocka_unit_test(test_27th_keyword_has_no_letter),
		cmocka_unit_test(test_damaged_file_ends_the_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
