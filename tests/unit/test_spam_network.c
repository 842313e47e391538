/* Unit tests for the spam check's signals about the connecting host, against a dnsmasq on a
 * loopback port serving test zones: a forward-confirmed PTR, a PTR that does not confirm, no
 * PTR at all, and a blocklist that lists one address. Skipped when dnsmasq is missing. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "dns/dns.h"
#include "spam/spam.h"

static const char dnsmasq[] = "/usr/sbin/dnsmasq";
static pid_t dns_pid;
static char resolvers[64];

static bool answers(void)
{
	struct dns_answer a;
	bool ok;

	dns_query(resolvers, "good.test", DNS_A, 500, &a);
	ok = a.status == DNS_OK;
	dns_answer_free(&a);
	return ok;
}

static int start_dns(void **state)
{
	(void)state;
	if (access(dnsmasq, X_OK) != 0)
		return 0;
	for (int attempt = 0; attempt < 5 && dns_pid == 0; attempt++) {
		unsigned port = 20000 + (unsigned)((getpid() * 7 + attempt * 131 + time(NULL)) % 30000);
		char port_arg[32];

		snprintf(port_arg, sizeof(port_arg), "--port=%u", port);
		snprintf(resolvers, sizeof(resolvers), "127.0.0.1:%u", port);
		pid_t pid = fork();

		if (pid == 0) {
			execl(dnsmasq, dnsmasq, "--no-daemon", port_arg, "--listen-address=127.0.0.1",
			      "--bind-interfaces", "--no-resolv", "--no-hosts",
			      "--conf-file=/dev/null", "--user=root", "--pid-file", "--local=/test/",
			      "--local=/in-addr.arpa/", "--log-facility=/dev/null",
			      "--ptr-record=7.2.0.192.in-addr.arpa,good.test",
			      "--host-record=good.test,192.0.2.7",
			      "--ptr-record=8.2.0.192.in-addr.arpa,liar.test",
			      "--host-record=liar.test,192.0.2.99",
			      "--address=/9.2.0.192.bl.test/127.0.0.2", (char *)NULL);
			_exit(127);
		}
		for (int i = 0; i < 50 && !answers(); i++)
			usleep(100 * 1000);
		if (answers()) {
			dns_pid = pid;
		} else {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
		}
	}
	return 0;
}

static int stop_dns(void **state)
{
	(void)state;
	if (dns_pid > 0) {
		kill(dns_pid, SIGTERM);
		waitpid(dns_pid, NULL, 0);
	}
	return 0;
}

static double points(const char *ip, const char *dnsbl, char *tests_r, size_t len)
{
	struct spam_settings set = { .resolvers = resolvers, .fcrdns = true, .dnsbl = dnsbl };
	struct buf tests;
	double p;

	buf_init(&tests);
	p = spam_network_points(&set, ip, &tests);
	snprintf(tests_r, len, "%s", tests.len > 0 ? buf_cstr(&tests) : "");
	buf_free(&tests);
	return p;
}

static void test_fcrdns_and_dnsbl(void **state)
{
	char tests[256];

	(void)state;
	if (dns_pid == 0)
		skip();
	/* The DNS layer tells a name that does not exist from a name without records. */
	struct dns_answer a;

	dns_query(resolvers, "9.2.0.192.in-addr.arpa", DNS_PTR, 2000, &a);
	assert_int_equal(a.status, DNS_NXDOMAIN);
	dns_answer_free(&a);
	dns_query(resolvers, "nothing.bl.test", DNS_A, 2000, &a);
	assert_int_equal(a.status, DNS_NXDOMAIN);
	dns_answer_free(&a);
	assert_true(points("192.0.2.7", "", tests, sizeof(tests)) == 0.0); /* confirmed */
	assert_string_equal(tests, "");
	assert_true(points("192.0.2.8", "", tests, sizeof(tests)) == 0.5); /* PTR, not back */
	assert_string_equal(tests, ",RDNS_UNCONFIRMED");
	assert_true(points("192.0.2.9", "", tests, sizeof(tests)) == 1.0); /* no PTR */
	assert_string_equal(tests, ",RDNS_NONE");
	assert_true(points("192.0.2.9", "bl.test", tests, sizeof(tests)) == 4.0);
	assert_string_equal(tests, ",RDNS_NONE,DNSBL=bl.test");
	assert_true(points("192.0.2.7", "bl.test other.test", tests, sizeof(tests)) == 0.0);
	/* Local peers are never looked up. */
	assert_true(points("127.0.0.1", "bl.test", tests, sizeof(tests)) == 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fcrdns_and_dnsbl),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, start_dns, stop_dns);
}
