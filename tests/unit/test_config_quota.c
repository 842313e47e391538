/* The quota settings' parsers: sizes as `roost user set ... quota.storage` and [quota] storage
 * take them (octets, K/M/G/T in powers of 1024, 0 or none = unlimited), the [quota] warn
 * thresholds, and the per-domain settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

static void test_size_units(void **state)
{
	uint64_t v = 1;

	(void)state;
	assert_int_equal(config_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	v = 1;
	assert_int_equal(config_parse_size("none", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_size("NONE", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_size("123456", &v), 0);
	assert_int_equal(v, 123456);
	assert_int_equal(config_parse_size("64K", &v), 0);
	assert_int_equal(v, 64 * 1024);
	assert_int_equal(config_parse_size("500M", &v), 0);
	assert_int_equal(v, 500ULL * 1024 * 1024);
	assert_int_equal(config_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ULL * 1024 * 1024 * 1024);
	assert_int_equal(config_parse_size("2g", &v), 0);
	assert_int_equal(v, 2ULL * 1024 * 1024 * 1024);
	assert_int_equal(config_parse_size("3T", &v), 0);
	assert_int_equal(v, 3ULL * 1024 * 1024 * 1024 * 1024);
}

static void test_size_refusals(void **state)
{
	static const char *const bad[] = { "", "M", "-1", "1.5G", "10MB", "10 M", "G10", "5X",
					   "unlimited", "99999999999999999999",
					   /* 2^63 octets and more do not fit the settings' range */
					   "8388608T" };
	uint64_t v = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (config_parse_size(bad[i], &v) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(v, 7); /* untouched on failure */
	}
}

static void test_warn_thresholds(void **state)
{
	unsigned w[2];

	(void)state;
	assert_int_equal(config_quota_warn("80,95", w), 0);
	assert_int_equal(w[0], 80);
	assert_int_equal(w[1], 95);
	assert_int_equal(config_quota_warn("90", w), 0);
	assert_int_equal(w[0], 90);
	assert_int_equal(w[1], 0);
	assert_int_equal(config_quota_warn(" 70 , 100 ", w), 0);
	assert_int_equal(w[0], 70);
	assert_int_equal(w[1], 100);
	assert_int_equal(config_quota_warn("none", w), 0);
	assert_int_equal(w[0], 0);
	assert_int_equal(config_quota_warn("", w), 0);
	assert_int_equal(w[0], 0);
	assert_int_equal(config_quota_warn("95,80", w), -1);
	assert_int_equal(config_quota_warn("80,80", w), -1);
	assert_int_equal(config_quota_warn("0", w), -1);
	assert_int_equal(config_quota_warn("101", w), -1);
	assert_int_equal(config_quota_warn("50,60,70", w), -1);
	assert_int_equal(config_quota_warn("80,", w), -1);
	assert_int_equal(config_quota_warn("eighty", w), -1);
}

static void test_domain_settings(void **state)
{
	char err[256];
	uint64_t v;

	(void)state;
	assert_int_equal(config_domain_setting_check("quota.storage", "2G", &v, err, sizeof(err)),
			 0);
	assert_int_equal(v, 2ULL * 1024 * 1024 * 1024);
	assert_int_equal(config_domain_setting_check("quota.messages", "1000", &v, err,
						     sizeof(err)), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(config_domain_setting_check("quota.messages", "none", &v, err,
						     sizeof(err)), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_domain_setting_check("quota.messages", "1K", &v, err,
						     sizeof(err)), -1);
	assert_int_equal(config_domain_setting_check("quota.storage", "lots", &v, err,
						     sizeof(err)), -1);
	assert_non_null(strstr(err, "quota.storage"));
	assert_int_equal(config_domain_setting_check("pop3.include_junk", "yes", &v, err,
						     sizeof(err)), -1);
	assert_non_null(strstr(err, "not a domain setting"));
}

static void test_account_setting(void **state)
{
	struct account_settings as;
	char err[256];

	(void)state;
	memset(&as, 0, sizeof(as));
	assert_int_equal(config_account_apply(&as, "quota.storage", "500M", err, sizeof(err)), 0);
	assert_int_equal(as.quota_storage, 500LL * 1024 * 1024);
	assert_int_equal(config_account_apply(&as, "quota.messages", "none", err, sizeof(err)), 0);
	assert_int_equal(as.quota_messages, 0);
	assert_int_equal(config_account_apply(&as, "quota.storage", "1.5G", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "500M"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_refusals),
		cmocka_unit_test(test_warn_thresholds),
		cmocka_unit_test(test_domain_settings),
		cmocka_unit_test(test_account_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
