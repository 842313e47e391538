/* SRS: the SRS0 form and its hash against a vector computed independently (HMAC-SHA1 of the
 * lowercased fields), the round trip, a hash compared without case, tampering, expiry at
 * max_age and the day after, SRS1 wrapping and unwrapping, addresses that are not ours, and the
 * secret file (created 0600, read back the same). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";
#define SECRET_LEN (sizeof(secret) - 1)
#define DAY 86400
/* 2023-11-14: day 19675 since the epoch, 219 modulo 1024, "G3" in base32 */
static const time_t now = 1700000000;

static void test_forward_vector(void **state)
{
	char *srs = auth_srs_forward(secret, SECRET_LEN, "fwd.test", "Alice@example.org", now);

	(void)state;
	assert_non_null(srs);
	assert_string_equal(srs, "SRS0=tQOi=G3=example.org=Alice@fwd.test");
	free(srs);
}

static void test_round_trip(void **state)
{
	char *srs = auth_srs_forward(secret, SECRET_LEN, "fwd.test", "bob=x@example.org", now);
	char *orig = NULL;

	(void)state;
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", srs, now + 3 * DAY, 21,
					  &orig),
			 AUTH_SRS_OK);
	assert_string_equal(orig, "bob=x@example.org");
	free(orig);
	free(srs);
}

static void test_case_insensitive(void **state)
{
	char *orig = NULL;

	(void)state;
	/* a relay that lowercased the whole address, domain in capitals, trailing dot */
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "srs0=tqoi=g3=example.org=alice@FWD.test.", now, 21, &orig),
			 AUTH_SRS_OK);
	assert_string_equal(orig, "alice@example.org");
	free(orig);
}

static void test_tampered(void **state)
{
	char *orig = NULL;

	(void)state;
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "SRS0=tQOj=G3=example.org=Alice@fwd.test", now, 21, &orig),
			 AUTH_SRS_BAD_HASH);
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "SRS0=tQOi=G3=example.org=mallory@fwd.test", now, 21, &orig),
			 AUTH_SRS_BAD_HASH);
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "SRS0=tQOi=G3=evil.example=Alice@fwd.test", now, 21, &orig),
			 AUTH_SRS_BAD_HASH);
	assert_int_equal(auth_srs_reverse((const uint8_t *)"another secret, quite different",
					  31, "fwd.test", "SRS0=tQOi=G3=example.org=Alice@fwd.test",
					  now, 21, &orig),
			 AUTH_SRS_BAD_HASH);
	assert_null(orig);
}

static void test_expiry(void **state)
{
	const char *addr = "SRS0=tQOi=G3=example.org=Alice@fwd.test";
	char *orig = NULL;

	(void)state;
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", addr, now + 21 * DAY, 21,
					  &orig),
			 AUTH_SRS_OK);
	free(orig);
	orig = NULL;
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", addr, now + 22 * DAY, 21,
					  &orig),
			 AUTH_SRS_EXPIRED);
	/* a stamp from "tomorrow" is 1023 days old, not young */
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", addr, now - DAY, 21,
					  &orig),
			 AUTH_SRS_EXPIRED);
	assert_null(orig);
}

static void test_srs1(void **state)
{
	const char *theirs = "SRS0=tQOi=G3=example.org=Alice@other.net";
	char *srs1 = auth_srs_forward(secret, SECRET_LEN, "fwd.test", theirs, now);
	char *orig = NULL, *again;

	(void)state;
	assert_string_equal(srs1, "SRS1=0Qde=other.net==tQOi=G3=example.org=Alice@fwd.test");
	/* SRS1 has no stamp of its own: it verifies long after (the SRS0 inside is checked by
	 * other.net) */
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", srs1, now + 400 * DAY, 21,
					  &orig),
			 AUTH_SRS_OK);
	assert_string_equal(orig, theirs);
	free(orig);
	/* an SRS1 of yet another forwarder keeps its first host and is signed again */
	again = auth_srs_forward(secret, SECRET_LEN, "third.test",
				 "SRS1=XXXX=other.net==tQOi=G3=example.org=Alice@second.test", now);
	assert_string_equal(again, "SRS1=0Qde=other.net==tQOi=G3=example.org=Alice@third.test");
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "SRS1=0Qdf=other.net==tQOi=G3=example.org=Alice@fwd.test",
					  now, 21, &orig),
			 AUTH_SRS_BAD_HASH);
	free(again);
	free(srs1);
}

static void test_not_ours(void **state)
{
	char *orig = NULL;

	(void)state;
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "SRS0=tQOi=G3=example.org=Alice@other.net", now, 21, &orig),
			 AUTH_SRS_NOT_SRS);
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", "alice@fwd.test", now,
					  21, &orig),
			 AUTH_SRS_NOT_SRS);
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "SRS0=tQOi=G3=example.org=Alice@xfwd.test", now, 21, &orig),
			 AUTH_SRS_NOT_SRS);
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", "SRS0=x@fwd.test", now,
					  21, &orig),
			 AUTH_SRS_MALFORMED);
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test",
					  "SRS0=tQOi=G3=example.org=@fwd.test", now, 21, &orig),
			 AUTH_SRS_MALFORMED);
	assert_int_equal(auth_srs_reverse(secret, SECRET_LEN, "fwd.test", "SRS1=abcd=@fwd.test",
					  now, 21, &orig),
			 AUTH_SRS_MALFORMED);
	assert_null(orig);
	/* no domain: nothing to rewrite */
	assert_null(auth_srs_forward(secret, SECRET_LEN, "fwd.test", "alice", now));
}

static void test_too_long(void **state)
{
	char sender[300];

	(void)state;
	memset(sender, 'a', 240);
	strcpy(sender + 240, "@example.org");
	assert_null(auth_srs_forward(secret, SECRET_LEN, "fwd.test", sender, now));
}

static void test_secret_file(void **state)
{
	char dir[] = "/tmp/roost-srs-XXXXXX", path[64], err[256];
	uint8_t a[AUTH_SRS_SECRET_MAX], b[AUTH_SRS_SECRET_MAX];
	size_t alen = 0, blen = 0;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/srs.key", dir);
	assert_int_equal(auth_srs_secret_load(path, a, &alen, err, sizeof(err)), 0);
	assert_int_equal(alen, 64);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(auth_srs_secret_load(path, b, &blen, err, sizeof(err)), 0);
	assert_int_equal(blen, alen);
	assert_memory_equal(a, b, alen);
	/* a secret too short to be one is refused, not used */
	FILE *f = fopen(path, "w");
	fputs("short\n", f);
	fclose(f);
	assert_int_equal(auth_srs_secret_load(path, b, &blen, err, sizeof(err)), -1);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forward_vector), cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_case_insensitive), cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_expiry),	       cmocka_unit_test(test_srs1),
		cmocka_unit_test(test_not_ours),       cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_secret_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
