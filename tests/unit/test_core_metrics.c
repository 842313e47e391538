/* The exposition of core/metrics.c: every family has HELP and TYPE before its samples, counters
 * count exactly, labels come from fixed tables, histogram buckets are cumulative with +Inf equal
 * to _count and _sum in seconds; protocol names of the listeners map to their protocol. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

static char *scrape(struct buf *b)
{
	buf_reset(b);
	metrics_format(b);
	return (char *)buf_cstr(b);
}

static void assert_line(const char *text, const char *line)
{
	char *want = xasprintf("\n%s\n", line);

	if (strstr(text, want) == NULL)
		fail_msg("missing line: %s", line);
	free(want);
}

static void test_counters_count_exactly(void **state)
{
	struct buf b;

	(void)state;
	metrics_reset_for_tests();
	buf_init(&b);
	for (int i = 0; i < 3; i++)
		metrics_message_accepted();
	metrics_login("imap", true);
	metrics_login("imap", false);
	metrics_login("imap", false);
	metrics_login("nntp", true); /* not a counted protocol: ignored */
	metrics_connection_opened("imaps");
	metrics_connection_opened("submissions");
	metrics_connection_closed("imaps");
	metrics_message_rejected(metrics_reject_reason_of_check("virus"));
	metrics_message_rejected(metrics_reject_reason_of_check("something-new"));
	metrics_spam_verdict(METRICS_SPAM_JUNK);
	metrics_set_queue(7, 3600);
	char *text = scrape(&b);
	assert_line(text, "roost_messages_accepted_total 3");
	assert_line(text, "roost_logins_total{protocol=\"imap\",result=\"ok\"} 1");
	assert_line(text, "roost_logins_total{protocol=\"imap\",result=\"failed\"} 2");
	assert_line(text, "roost_connections_total{protocol=\"imap\"} 1");
	assert_line(text, "roost_connections_total{protocol=\"submission\"} 1");
	assert_line(text, "roost_sessions{protocol=\"imap\"} 0");
	assert_line(text, "roost_sessions{protocol=\"submission\"} 1");
	assert_line(text, "roost_messages_rejected_total{reason=\"virus\"} 1");
	assert_line(text, "roost_messages_rejected_total{reason=\"other\"} 1");
	assert_line(text, "roost_spam_verdicts_total{verdict=\"junk\"} 1");
	assert_line(text, "roost_queue_messages 7");
	assert_line(text, "roost_queue_oldest_age_seconds 3600");
	buf_free(&b);
}

static void test_every_family_has_help_and_type_first(void **state)
{
	struct buf b;

	(void)state;
	metrics_reset_for_tests();
	buf_init(&b);
	char *text = xstrdup(scrape(&b));
	char current[128] = "";

	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			snprintf(current, sizeof(current), "%.*s", (int)strcspn(line + 7, " "),
				 line + 7);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(strncmp(line + 7, current, strlen(current)), 0);
			continue;
		}
		/* a sample belongs to the family announced last (histograms add suffixes) */
		assert_int_equal(strncmp(line, current, strlen(current)), 0);
		assert_true(strlen(current) > 0);
	}
	free(text);
	buf_free(&b);
}

static void test_histogram_is_cumulative(void **state)
{
	struct buf b;

	(void)state;
	metrics_reset_for_tests();
	buf_init(&b);
	metrics_observe_ns(METRICS_HIST_FSYNC, 50000);	    /* 0.05 ms: first bucket */
	metrics_observe_ns(METRICS_HIST_FSYNC, 1000000);    /* exactly 1 ms: le="0.001" */
	metrics_observe_ns(METRICS_HIST_FSYNC, 3000000000); /* 3 s: le="5" */
	metrics_observe_ns(METRICS_HIST_FSYNC, 60000000000ull); /* a minute: only +Inf */
	char *text = scrape(&b);
	assert_line(text, "roost_fsync_duration_seconds_bucket{le=\"0.0001\"} 1");
	assert_line(text, "roost_fsync_duration_seconds_bucket{le=\"0.0005\"} 1");
	assert_line(text, "roost_fsync_duration_seconds_bucket{le=\"0.001\"} 2");
	assert_line(text, "roost_fsync_duration_seconds_bucket{le=\"2.5\"} 2");
	assert_line(text, "roost_fsync_duration_seconds_bucket{le=\"5\"} 3");
	assert_line(text, "roost_fsync_duration_seconds_bucket{le=\"10\"} 3");
	assert_line(text, "roost_fsync_duration_seconds_bucket{le=\"+Inf\"} 4");
	assert_line(text, "roost_fsync_duration_seconds_count 4");
	assert_line(text, "roost_fsync_duration_seconds_sum 63.001050000");
	assert_line(text, "roost_store_commit_duration_seconds_count 0");
	buf_free(&b);
}

static void test_protocol_names(void **state)
{
	(void)state;
	assert_int_equal(metrics_protocol_named("imaps"), METRICS_PROTO_IMAP);
	assert_int_equal(metrics_protocol_named("pop3s"), METRICS_PROTO_POP3);
	assert_int_equal(metrics_protocol_named("lmtp"), METRICS_PROTO_LMTP);
	assert_int_equal(metrics_protocol_named("http"), METRICS_PROTO_COUNT);
	assert_int_equal(metrics_protocol_named(NULL), METRICS_PROTO_COUNT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_count_exactly),
		cmocka_unit_test(test_every_family_has_help_and_type_first),
		cmocka_unit_test(test_histogram_is_cumulative),
		cmocka_unit_test(test_protocol_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
