/* Unit tests for the spam layer: the tokenizer (field prefixes, RFC 2047 and base64 decoding,
 * case kept with a lower-case form beside it, domains of hosts and addresses, the shape of
 * over-long words, length and count bounds, our own X-Spam fields left out), GTUBE, the
 * combining maths against values worked out by hand, and the store's bounded counters with
 * training that counts a message once and moves it between classes. */
#include <math.h>

#include "spam/spam.h"
#include "store_test_util.h"

struct seen {
	char tokens[64][64];
	size_t n, total;
	bool nul; /* a token held a NUL byte */
};

static void remember(const char *token, size_t len, void *ctx)
{
	struct seen *s = ctx;

	s->total++;
	s->nul = s->nul || memchr(token, '\0', len) != NULL;
	if (s->n < 64 && len < 64) {
		memcpy(s->tokens[s->n], token, len);
		s->tokens[s->n][len] = '\0';
		s->n++;
	}
}

static bool has(const struct seen *s, const char *token)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->tokens[i], token) == 0)
			return true;
	return false;
}

static void tokenize(const char *msg, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	spam_tokenize_text((const uint8_t *)msg, strlen(msg), remember, s);
}

static void test_tokenizer_fields_and_bodies(void **state)
{
	struct seen s;

	(void)state;
	tokenize("Subject: =?UTF-8?B?R3LDvMOfZQ==?= FREE Money!!\r\n"
		 "X-Spam-Status: Yes, score=9.0\r\n"
		 "From: Alice <alice@example.org>\r\n"
		 "Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: base64\r\n\r\n"
		 "SGVsbG8gV29ybGQgb2sgYQ==\r\n", &s);
	assert_true(has(&s, "subject:Grüße"));	/* RFC 2047 decoded, case kept */
	assert_true(has(&s, "subject:FREE"));
	assert_true(has(&s, "subject:Money")); /* trailing punctuation dropped */
	assert_true(has(&s, "from:alice@example.org"));
	assert_true(has(&s, "Hello"));	/* the base64 body, decoded */
	assert_true(has(&s, "World"));
	assert_false(has(&s, "ok"));	/* shorter than SPAM_TOKEN_MIN */
	assert_false(has(&s, "x-spam-status:yes"));
	assert_true(has(&s, "ctype:text/plain"));
}

static void test_tokenizer_bounds(void **state)
{
	(void)state;
	/* A long run (base64-like) is skipped; a huge message stops at the token bound. */
	struct buf big;
	struct seen s;

	buf_init(&big);
	buf_append_str(&big, "Subject: x\r\n\r\n");
	for (int i = 0; i < 50; i++)
		buf_append_byte(&big, 'a');
	buf_append_str(&big, " ");
	for (int i = 0; i < 200000; i++)
		buf_printf(&big, "w%d ", i);
	memset(&s, 0, sizeof(s));
	spam_tokenize_text(big.data, big.len, remember, &s);
	assert_true(s.total <= 4 * SPAM_MAX_TOKENS);
	assert_false(has(&s, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));

	struct spam_tokens t;

	spam_tokenize(big.data, big.len, &t);
	assert_true(t.count > 0 && t.count <= SPAM_MAX_TOKENS);
	for (size_t i = 1; i < t.count; i++)
		assert_true(t.keys[i - 1] < t.keys[i]); /* sorted and distinct */
	for (size_t i = 0; i < t.count; i++)
		assert_true(t.keys[i] >= STORE_COUNT_PINNED);
	spam_tokens_free(&t);
	buf_free(&big);
}

/* The general forms of a word: lower case, the domain of a host or address, the /24 of an
 * IPv4 address, and the shape of an over-long run. */
static void test_tokenizer_general_forms(void **state)
{
	struct seen s;

	(void)state;
	tokenize("Subject: FREE Money\r\n"
		 "From: Alice <alice@mail.example.org>\r\n"
		 "Received: from relay [192.0.2.7]\r\n\r\n"
		 "see www.shop.example.com or 10.1.2.3.4 "
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", &s);
	assert_true(has(&s, "subject:FREE") && has(&s, "subject:free"));
	assert_true(has(&s, "subject:Money") && has(&s, "subject:money"));
	assert_true(has(&s, "from:dom:example.org"));
	assert_true(has(&s, "received:net:192.0.2"));
	assert_true(has(&s, "dom:example.com"));
	assert_false(has(&s, "net:10.1.2.3")); /* five numbers: no IPv4 address */
	assert_true(has(&s, "skip:a 50"));
}

static const char spam_fmt[] = "Subject: offer %d\r\n\r\nBuy VIAGRA at www%d.pills.example today\r\n";
static const char ham_fmt[] = "Subject: notes %d\r\n\r\nthe minutes of meeting %d are attached\r\n";

static void train_one(struct fixture *f, const char *fmt, int i, enum spam_class cls)
{
	char msg[200];
	bool changed;

	snprintf(msg, sizeof(msg), fmt, i, i);
	assert_int_equal(spam_train(f->acct, (const uint8_t *)msg, strlen(msg), cls, 0, &changed,
				    NULL),
			 STORE_OK);
	assert_true(changed);
}

/* A spelling and a host name never trained still count through their general forms. */
static void test_unseen_spelling_and_host_count(void **state)
{
	static const char msg[] = "Subject: hi\r\n\r\nviagra from store.pills.example\r\n";
	struct fixture *f = *state;
	struct spam_result r;

	for (int i = 0; i < SPAM_MIN_TRAINED; i++) {
		train_one(f, spam_fmt, i, SPAM_CLASS_SPAM);
		train_one(f, ham_fmt, i, SPAM_CLASS_HAM);
	}
	assert_int_equal(spam_classify(f->acct, (const uint8_t *)msg, strlen(msg), &r, NULL),
			 STORE_OK);
	assert_true(r.trained);
	assert_true(r.score >= 4.0);
}

/* Found by fuzzing: strchr() matched the terminator, so a NUL byte joined two words. */
static void test_tokenizer_nul_ends_a_word(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nabc\0def ghi\r\n";
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	spam_tokenize_text((const uint8_t *)msg, sizeof(msg) - 1, remember, &s);
	assert_false(s.nul);
	assert_true(has(&s, "abc") && has(&s, "def") && has(&s, "ghi"));
}

static void test_gtube(void **state)
{
	const char *msg = "Subject: t\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-"
			  "TEST-EMAIL*C.34X\r\n";

	(void)state;
	assert_true(spam_is_gtube((const uint8_t *)msg, strlen(msg)));
	assert_false(spam_is_gtube((const uint8_t *)msg, 30));
}

static void test_combining_maths(void **state)
{
	double half[10], spammy[10], hammy[10];

	(void)state;
	/* Q(chi2, 2) = e^(-chi2/2); Q(chi2, 4) = e^(-m)(1 + m), m = chi2/2. */
	assert_true(fabs(spam_chi2_q(2.0, 2) - exp(-1.0)) < 1e-12);
	assert_true(fabs(spam_chi2_q(4.0, 4) - 3.0 * exp(-2.0)) < 1e-12);
	assert_true(spam_chi2_q(0.0, 10) == 1.0);
	/* Large arguments and many terms neither underflow nor exceed 1. */
	assert_true(spam_chi2_q(3000.0, 3000) > 0.0 && spam_chi2_q(3000.0, 3000) <= 1.0);
	assert_true(spam_chi2_q(3000.0, 10) < 1e-300 || spam_chi2_q(3000.0, 10) == 0.0);

	for (int i = 0; i < 10; i++) {
		half[i] = 0.5;
		spammy[i] = 0.99;
		hammy[i] = 0.01;
	}
	assert_true(fabs(spam_combine(half, 10) - 0.5) < 1e-9);
	assert_true(spam_combine(spammy, 10) > 0.99);
	assert_true(spam_combine(hammy, 10) < 0.01);
	/* Symmetric: mirrored evidence gives the mirrored verdict. */
	assert_true(fabs(spam_combine(spammy, 10) + spam_combine(hammy, 10) - 1.0) < 1e-9);
	assert_true(spam_combine(NULL, 0) == 0.5);

	/* f(w): unseen is x; seen only in spam leans to spam, more so when seen more. */
	assert_true(spam_token_prob(0, 0, 10, 10) == 0.52); /* the prior x */
	assert_true(spam_token_prob(1, 0, 10, 10) > 0.5);
	assert_true(spam_token_prob(8, 0, 10, 10) > spam_token_prob(1, 0, 10, 10));
	assert_true(spam_token_prob(0, 8, 10, 10) < 0.5);
	/* Shares, not raw counts: 10 of 100 ham weigh as 1 of 10 spam. */
	assert_true(fabs(spam_token_prob(1, 10, 10, 100) - 0.5) < 1e-3);
}

/* Three tokens seen only in spam, and often (f = 1 - 1e-5), against ten clearly hammy ones:
 * the clues are clamped, so the many outweigh the few extreme ones. */
static void test_few_extreme_clues_do_not_outweigh_many(void **state)
{
	double probs[13];

	(void)state;
	for (int i = 0; i < 13; i++)
		probs[i] = i < 3 ? 1.0 - 1e-5 : 0.05;
	assert_true(spam_combine(probs, 13) < 0.45);
}

static void test_counts_clamp_and_cap(void **state)
{
	struct fixture *f = *state;
	struct store_count_delta d[300];
	uint64_t keys[2] = { 1, 1000 };
	uint32_t c[2][2];
	uint64_t rows;

	d[0] = (struct store_count_delta){ 1, 5, 7 };
	d[1] = (struct store_count_delta){ 1000, 2, 0 };
	assert_int_equal(store_counts_update(f->acct, d, 2, 0, NULL), STORE_OK);
	d[0] = (struct store_count_delta){ 1000, -5, 3 };
	assert_int_equal(store_counts_update(f->acct, d, 1, 0, NULL), STORE_OK);
	assert_int_equal(store_counts_get(f->acct, keys, 2, c, NULL), STORE_OK);
	assert_int_equal(c[0][0], 5);
	assert_int_equal(c[0][1], 7);
	assert_int_equal(c[1][0], 0); /* never below zero */
	assert_int_equal(c[1][1], 3);

	for (int i = 0; i < 300; i++)
		d[i] = (struct store_count_delta){ 5000 + (uint64_t)i, 1, 0 };
	assert_int_equal(store_counts_update(f->acct, d, 300, 100, NULL), STORE_OK);
	assert_int_equal(store_counts_size(f->acct, &rows, NULL), STORE_OK);
	assert_true(rows <= 100);
	assert_true(rows >= 90);
	assert_int_equal(store_counts_get(f->acct, keys, 1, c, NULL), STORE_OK);
	assert_int_equal(c[0][1], 7); /* pinned keys survive pruning */
}

static const char ham_text[] = "Subject: agenda meeting\r\n\r\nquarterly budget review\r\n";

static void test_train_once_and_move_between_classes(void **state)
{
	struct fixture *f = *state;
	uint32_t nspam, nham;
	bool changed;

	assert_int_equal(spam_train(f->acct, (const uint8_t *)ham_text, strlen(ham_text),
				    SPAM_CLASS_HAM, 0, &changed, NULL),
			 STORE_OK);
	assert_true(changed);
	assert_int_equal(spam_train(f->acct, (const uint8_t *)ham_text, strlen(ham_text),
				    SPAM_CLASS_HAM, 0, &changed, NULL),
			 STORE_OK);
	assert_false(changed);
	assert_int_equal(spam_trained_counts(f->acct, &nspam, &nham, NULL), STORE_OK);
	assert_int_equal(nham, 1);
	assert_int_equal(nspam, 0);
	assert_int_equal(spam_train(f->acct, (const uint8_t *)ham_text, strlen(ham_text),
				    SPAM_CLASS_SPAM, 0, &changed, NULL),
			 STORE_OK);
	assert_true(changed);
	assert_int_equal(spam_trained_counts(f->acct, &nspam, &nham, NULL), STORE_OK);
	assert_int_equal(nham, 0);
	assert_int_equal(nspam, 1);

	struct spam_result r;

	/* Below SPAM_MIN_TRAINED of each kind the classifier says nothing. */
	assert_int_equal(spam_classify(f->acct, (const uint8_t *)ham_text, strlen(ham_text), &r,
				       NULL),
			 STORE_OK);
	assert_false(r.trained);
	assert_true(r.score == 0.0);
}

static void test_network_names(void **state)
{
	char name[320];

	(void)state;
	assert_true(spam_dnsbl_name("192.0.2.7", "bl.example", name, sizeof(name)));
	assert_string_equal(name, "7.2.0.192.bl.example");
	assert_true(spam_dnsbl_name("2001:db8::1", "bl.example", name, sizeof(name)));
	assert_string_equal(name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
				  ".bl.example");
	assert_false(spam_dnsbl_name("not-an-ip", "bl.example", name, sizeof(name)));
	assert_false(spam_dnsbl_name("192.0.2.7", "bl.example", name, 8));

	assert_true(spam_address_is_local("127.0.0.1"));
	assert_true(spam_address_is_local("10.1.2.3"));
	assert_true(spam_address_is_local("172.16.0.1"));
	assert_true(spam_address_is_local("192.168.1.1"));
	assert_true(spam_address_is_local("::1"));
	assert_true(spam_address_is_local("fd00::1"));
	assert_true(spam_address_is_local("fe80::1"));
	assert_false(spam_address_is_local("172.32.0.1"));
	assert_false(spam_address_is_local("192.0.2.7"));
	assert_false(spam_address_is_local("2001:db8::1"));
}

/* A resolver that does not answer gives temporary failures: no points, and the call ends. */
static void test_network_points_dead_resolver(void **state)
{
	struct spam_settings set = { .resolvers = "127.0.0.1:9", .fcrdns = true,
				     .dnsbl = "bl.example" };
	struct buf tests;

	(void)state;
	buf_init(&tests);
	assert_true(spam_network_points(&set, "192.0.2.7", &tests) == 0.0);
	assert_true(spam_network_points(&set, "127.0.0.1", &tests) == 0.0);
	assert_int_equal(tests.len, 0);
	buf_free(&tests);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokenizer_fields_and_bodies),
		cmocka_unit_test(test_tokenizer_bounds),
		cmocka_unit_test(test_tokenizer_nul_ends_a_word),
		cmocka_unit_test(test_tokenizer_general_forms),
		cmocka_unit_test_setup_teardown(test_unseen_spelling_and_host_count, setup,
						teardown),
		cmocka_unit_test(test_gtube),
		cmocka_unit_test(test_network_names),
		cmocka_unit_test(test_network_points_dead_resolver),
		cmocka_unit_test(test_combining_maths),
		cmocka_unit_test(test_few_extreme_clues_do_not_outweigh_many),
		cmocka_unit_test_setup_teardown(test_counts_clamp_and_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_train_once_and_move_between_classes, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
