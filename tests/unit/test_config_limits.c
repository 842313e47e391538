/* core/limits.h and the settings table agree: every setting that is a limit starts from the
 * header's NAME_DEFAULT and accepts exactly NAME_MIN to NAME_MAX, so the header stays the one
 * place where a limit's numbers are read and changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/core.h"

struct limit_setting {
	const char *section;
	const char *key;
	size_t offset;
	int64_t def, min, max;
};

#define LIMIT_ROW(sec, key, field, NAME)                                                    \
	{ sec, key, offsetof(struct config, field), NAME##_DEFAULT, NAME##_MIN, NAME##_MAX }

static const struct limit_setting limit_settings[] = {
	LIMIT_ROW("limits", "imap_line_preauth", imap_line_preauth, LIMIT_IMAP_LINE_PREAUTH),
	LIMIT_ROW("limits", "imap_line", imap_line, LIMIT_IMAP_LINE),
	LIMIT_ROW("limits", "imap_literal", imap_literal, LIMIT_IMAP_LITERAL),
	LIMIT_ROW("limits", "smtp_line", smtp_line, LIMIT_SMTP_LINE),
	LIMIT_ROW("limits", "message_size", message_size, LIMIT_MESSAGE_SIZE),
	LIMIT_ROW("limits", "recipients", recipients, LIMIT_SMTP_RECIPIENTS),
	LIMIT_ROW("limits", "mime_depth", mime_depth, LIMIT_MIME_DEPTH),
	LIMIT_ROW("limits", "mime_parts", mime_parts, LIMIT_MIME_PARTS),
	LIMIT_ROW("limits", "header_block", header_block, LIMIT_HEADER_BLOCK),
	LIMIT_ROW("limits", "connections_per_ip", connections_per_ip, LIMIT_CONNECTIONS_PER_IP),
	LIMIT_ROW("limits", "bad_commands", bad_commands, LIMIT_BAD_COMMANDS),
	LIMIT_ROW("limits", "max_connections", max_connections, LIMIT_MAX_CONNECTIONS),
	LIMIT_ROW("limits", "prelogin_timeout", prelogin_timeout, LIMIT_PRELOGIN_TIMEOUT),
	LIMIT_ROW("auth", "user_ip_connections", user_ip_connections, LIMIT_USER_IP_CONNECTIONS),
};

static int64_t field_value(const struct config *cfg, const struct limit_setting *ls)
{
	int64_t v;

	memcpy(&v, (const char *)cfg + ls->offset, sizeof(v));
	return v;
}

/* Loads "[section]\nkey = value\n" over the defaults: 0 and the value read, or -1. */
static int load_one(const struct limit_setting *ls, long long value, int64_t *read_r)
{
	char tmpl[] = "/tmp/roost-test-limits-XXXXXX";
	char text[256], err[512];
	struct config cfg;
	int fd = mkstemp(tmpl);
	int n = snprintf(text, sizeof(text), "[%s]\n%s = %lld\n", ls->section, ls->key, value);
	int ret;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, (size_t)n), n);
	assert_int_equal(close(fd), 0);
	config_defaults(&cfg);
	ret = config_load(&cfg, tmpl, err, sizeof(err));
	unlink(tmpl);
	*read_r = field_value(&cfg, ls);
	config_free(&cfg);
	return ret;
}

static void test_defaults_come_from_limits(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	for (size_t i = 0; i < ARRAY_LEN(limit_settings); i++) {
		const struct limit_setting *ls = &limit_settings[i];
		if (field_value(&cfg, ls) != ls->def)
			fail_msg("[%s] %s defaults to %lld, core/limits.h says %lld", ls->section,
				 ls->key, (long long)field_value(&cfg, ls), (long long)ls->def);
		assert_true(ls->min <= ls->def && ls->def <= ls->max);
	}
	config_free(&cfg);
}

static void test_bounds_come_from_limits(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(limit_settings); i++) {
		const struct limit_setting *ls = &limit_settings[i];
		int64_t read;

		assert_int_equal(load_one(ls, ls->min, &read), 0);
		assert_int_equal(read, ls->min);
		assert_int_equal(load_one(ls, ls->max, &read), 0);
		assert_int_equal(read, ls->max);
		if (load_one(ls, ls->max + 1, &read) != -1)
			fail_msg("[%s] %s accepts %lld over core/limits.h's maximum", ls->section,
				 ls->key, (long long)ls->max + 1);
		if (ls->min > 0 && load_one(ls, ls->min - 1, &read) != -1)
			fail_msg("[%s] %s accepts %lld under core/limits.h's minimum", ls->section,
				 ls->key, (long long)ls->min - 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_come_from_limits),
		cmocka_unit_test(test_bounds_come_from_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
