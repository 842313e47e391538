/* Unit tests for DMARC aggregate reports: the rua= list (mailto:, !size, other schemes), the
 * rua text a record keeps, the Appendix C XML with escaping, gzip that zlib reads back, the
 * §7.2.1.1 file name, and the report store's day cap and pruning (store/dmarc_reports.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "core/core.h"
#include "mailauth/mailauth.h"
#include "store/store.h"

static void test_rua_list(void **state)
{
	struct dmarc_rua rua[4];
	size_t n = dmarc_rua_parse("mailto:agg@example.org!10m, https://x.example/r ,"
				   " MAILTO:Rep@Third.Example , mailto:noat, mailto:s@e.org!2k",
				   rua, 4);

	(void)state;
	assert_int_equal(n, 3);
	assert_string_equal(rua[0].address, "agg@example.org");
	assert_string_equal(rua[0].domain, "example.org");
	assert_true(rua[0].max_size == 10u << 20);
	assert_string_equal(rua[1].address, "Rep@Third.Example");
	assert_string_equal(rua[1].domain, "third.example");
	assert_true(rua[1].max_size == 0);
	assert_true(rua[2].max_size == 2048);
	assert_int_equal(dmarc_rua_parse("mailto:a@b.example", rua, 0), 0);
}

static void test_record_keeps_rua(void **state)
{
	struct dmarc_record rec;
	char long_rua[1200] = "v=DMARC1; p=none; rua=";

	(void)state;
	const char *text = "v=DMARC1; p=reject; rua=mailto:d@example.org!5k";
	assert_int_equal(dmarc_record_parse(text, strlen(text), &rec, NULL, 0), 0);
	assert_string_equal(rec.rua, "mailto:d@example.org!5k");
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject", 18, &rec, NULL, 0), 0);
	assert_string_equal(rec.rua, "");
	/* a list longer than we keep is cut after its last whole address */
	while (strlen(long_rua) < sizeof(long_rua) - 40)
		strcat(long_rua, "mailto:reports@example.org,");
	assert_int_equal(dmarc_record_parse(long_rua, strlen(long_rua), &rec, NULL, 0), 0);
	assert_true(strlen(rec.rua) < LIMIT_DMARC_RUA_TEXT);
	assert_true(strlen(rec.rua) % strlen("mailto:reports@example.org,") ==
		    strlen("mailto:reports@example.org"));
}

static struct dmarc_report_row sample_row(const char *ip)
{
	struct dmarc_report_row row;

	memset(&row, 0, sizeof(row));
	snprintf(row.header_from, sizeof(row.header_from), "example.org");
	snprintf(row.source_ip, sizeof(row.source_ip), "%s", ip);
	row.disposition = "quarantine";
	row.dkim_aligned = "fail";
	row.spf_aligned = "pass";
	snprintf(row.dkim_domain, sizeof(row.dkim_domain), "a<b>&.example");
	row.dkim_result = "fail";
	snprintf(row.spf_domain, sizeof(row.spf_domain), "example.org");
	row.spf_scope = "mfrom";
	row.spf_result = "pass";
	return row;
}

static void test_xml_gzip_and_name(void **state)
{
	struct dmarc_record policy = { .p = DMARC_POLICY_QUARANTINE, .sp = DMARC_POLICY_NONE,
				       .pct = 50, .strict_dkim = true };
	struct dmarc_report_meta meta = { .org_name = "mx.example.net",
					  .email = "postmaster@mx.example.net",
					  .report_id = "20261203.example.org",
					  .begin = 86400,
					  .end = 2 * 86400 - 1,
					  .policy_domain = "example.org",
					  .policy = &policy };
	struct dmarc_report_row rows[2] = { sample_row("192.0.2.1"), sample_row("2001:db8::1") };
	uint64_t counts[2] = { 7, 1 };
	struct buf xml, gz;
	char name[200];

	(void)state;
	buf_init(&xml);
	buf_init(&gz);
	dmarc_report_xml(&meta, rows, counts, 2, &xml);
	const char *x = buf_cstr(&xml);
	assert_non_null(strstr(x, "<org_name>mx.example.net</org_name>"));
	assert_non_null(strstr(x, "<begin>86400</begin>"));
	assert_non_null(strstr(x, "<end>172799</end>"));
	assert_non_null(strstr(x, "<adkim>s</adkim>"));
	assert_non_null(strstr(x, "<aspf>r</aspf>"));
	assert_non_null(strstr(x, "<p>quarantine</p>"));
	assert_non_null(strstr(x, "<sp>none</sp>"));
	assert_non_null(strstr(x, "<pct>50</pct>"));
	assert_non_null(strstr(x, "<count>7</count>"));
	assert_non_null(strstr(x, "<source_ip>2001:db8::1</source_ip>"));
	assert_non_null(strstr(x, "<domain>a&lt;b&gt;&amp;.example</domain>"));
	assert_null(strstr(x, "a<b>"));

	assert_int_equal(dmarc_report_gzip(xml.data, xml.len, &gz), 0);
	assert_true(gz.len > 10 && gz.data[0] == 0x1f && gz.data[1] == 0x8b);
	uint8_t *back = malloc(xml.len + 1);
	z_stream z = { 0 };
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = gz.data;
	z.avail_in = (uInt)gz.len;
	z.next_out = back;
	z.avail_out = (uInt)xml.len + 1;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_true(z.total_out == xml.len);
	assert_memory_equal(back, xml.data, xml.len);
	inflateEnd(&z);
	free(back);

	dmarc_report_file_name(&meta, name, sizeof(name));
	assert_string_equal(name, "mx.example.net!example.org!86400!172799.xml.gz");
	buf_free(&xml);
	buf_free(&gz);
}

static void count_rows(const char *const columns[STORE_DMARC_COLUMNS], uint64_t count, void *ctx)
{
	(void)columns;
	*(uint64_t *)ctx += count;
}

static void test_store_cap_and_prune(void **state)
{
	char dir[] = "/tmp/roost-dmarc-XXXXXX";
	char err[256] = "", ip[32];
	struct store_dmarc_policy policy = { .p = 1, .sp = 1, .pct = 100 };
	const char *columns[STORE_DMARC_COLUMNS] = { "example.org", ip, "none", "pass", "pass",
						      "", "none", "example.org", "mfrom", "pass" };
	struct store_dmarc *st;
	uint64_t total = 0;
	int64_t today = store_dmarc_today();

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(policy.rua, sizeof(policy.rua), "mailto:r@example.org");
	st = store_dmarc_open(dir, err, sizeof(err));
	assert_non_null(st);
	/* new rows up to the cap, then only matches count */
	for (int i = 0; i < LIMIT_DMARC_REPORT_ROWS_PER_DAY; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		assert_int_equal(store_dmarc_add(st, today, "example.org", columns, &policy, err,
						 sizeof(err)), 1);
	}
	snprintf(ip, sizeof(ip), "192.0.2.77");
	assert_int_equal(store_dmarc_add(st, today, "example.org", columns, &policy, err,
					 sizeof(err)), 0);
	snprintf(ip, sizeof(ip), "10.0.0.5");
	assert_int_equal(store_dmarc_add(st, today, "example.org", columns, &policy, err,
					 sizeof(err)), 1);
	/* another day has its own cap */
	assert_int_equal(store_dmarc_add(st, today - 3, "example.org", columns, &policy, err,
					 sizeof(err)), 1);
	struct store_dmarc_policy read;
	assert_int_equal(store_dmarc_read(st, today, "example.org", &read, count_rows, &total, err,
					  sizeof(err)), 1);
	assert_true(total == LIMIT_DMARC_REPORT_ROWS_PER_DAY + 1);
	assert_string_equal(read.rua, "mailto:r@example.org");
	/* old days go */
	assert_int_equal(store_dmarc_prune(st, today - 3 + LIMIT_DMARC_REPORT_KEEP_DAYS + 1, err,
					   sizeof(err)), 0);
	total = 0;
	assert_int_equal(store_dmarc_read(st, today - 3, "example.org", &read, count_rows, &total,
					  err, sizeof(err)), 0);
	assert_int_equal(store_dmarc_read(st, today, "example.org", &read, count_rows, &total, err,
					  sizeof(err)), 1);
	store_dmarc_close(&st);
	assert_null(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rua_list),
		cmocka_unit_test(test_record_keeps_rua),
		cmocka_unit_test(test_xml_gzip_and_name),
		cmocka_unit_test(test_store_cap_and_prune),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
