/* The statistical classifier: Gary Robinson's method ("A Statistical Approach to the Spam
 * Problem", 2003), written from the published description.
 *
 *  - Each token w gets p(w) = b / (b + g), b and g being the share of trained spam and of
 *    trained ham that contained it, then f(w) = (s * x + n * p(w)) / (s + n) with n the
 *    number of trained messages that contained w: a token seen rarely stays near x.
 *  - Tokens with |f(w) - 0.5| < MIN_DEV say nothing and are left out; all the rest count (as
 *    in bogofilter; SPAM_MAX_CLUES only bounds the work).
 *  - Fisher's combining: H = Q(-2 sum ln f, 2n) and S = Q(-2 sum ln (1 - f), 2n), and the
 *    spamminess is I = (1 + H - S) / 2: near 1 when the tokens lean to spam, near 0 when they
 *    lean to ham, and 0.5 when they disagree or say nothing. Each f is first kept within
 *    [CLUE_CLAMP, 1 - CLUE_CLAMP]: with the weak prior a token seen in a hundred spam and no
 *    ham has f = 1 - 1e-4, and a few such tokens would outweigh dozens of hammy ones; the
 *    clamp makes the number of clues on each side count, not how extreme each one is.
 *
 * How the constants were chosen (bench/RESULTS-spam.md): s, x and MIN_DEV are bogofilter's
 * published defaults or close to them; MIN_DEV, the clue bound and the clamp were compared on
 * the benchmark's tuning halves (its training halves split again), never on a test half.
 *
 * Per-message records make training idempotent: a message's key holds (trained as ham,
 * trained as spam); training it again as the same class does nothing, as the other class
 * moves its counts over in the same commit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spam.h"

/* bogofilter's published defaults: a weak prior (a token seen in a few messages already
 * counts) and only decisive tokens in the combining. */
#define ROBINSON_S 0.0178 /* strength of the prior x */
#define ROBINSON_X 0.52	  /* the prior for a token never seen */
#define MIN_DEV 0.4
#define CLUE_CLAMP 0.01
#define TOTALS_KEY 1u	     /* c0: messages trained as ham, c1: as spam */
#define MESSAGE_SALT 0x5bd1e995u

double spam_token_prob(uint32_t spam_count, uint32_t ham_count, uint32_t spam_total,
		       uint32_t ham_total)
{
	double b = spam_total > 0 ? (double)spam_count / spam_total : 0.0;
	double g = ham_total > 0 ? (double)ham_count / ham_total : 0.0;
	double n = (double)spam_count + ham_count;

	if (b + g <= 0.0)
		return ROBINSON_X;
	if (b > 1.0)
		b = 1.0;
	if (g > 1.0)
		g = 1.0;
	return (ROBINSON_S * ROBINSON_X + n * (b / (b + g))) / (ROBINSON_S + n);
}

/* Even df only (2n for n probabilities): Q = e^-m * sum_{i<df/2} m^i / i!, m = chi2 / 2,
 * summed in the log domain so that large m and many terms neither underflow nor overflow. */
double spam_chi2_q(double chi2, unsigned df)
{
	double m = chi2 / 2.0, log_sum = -INFINITY;

	if (chi2 <= 0.0)
		return 1.0;
	for (unsigned i = 0; i < df / 2; i++) {
		double log_term = -m + i * log(m) - lgamma((double)i + 1.0);
		double hi = log_sum > log_term ? log_sum : log_term;

		log_sum = hi + log(exp(log_sum - hi) + exp(log_term - hi));
	}
	double q = exp(log_sum);

	return q > 1.0 ? 1.0 : q;
}

double spam_combine(const double *probs, size_t n)
{
	double ln_f = 0.0, ln_not_f = 0.0;

	if (n == 0)
		return 0.5;
	for (size_t i = 0; i < n; i++) {
		/* Clamped away from 0 and 1: one certain token must not decide alone (above). */
		double f = probs[i] < CLUE_CLAMP	 ? CLUE_CLAMP
			   : probs[i] > 1 - CLUE_CLAMP ? 1 - CLUE_CLAMP
						       : probs[i];

		ln_f += log(f);
		ln_not_f += log(1.0 - f);
	}
	double h = spam_chi2_q(-2.0 * ln_f, (unsigned)(2 * n));
	double s = spam_chi2_q(-2.0 * ln_not_f, (unsigned)(2 * n));

	return (1.0 + h - s) / 2.0;
}

static int cmp_dev_desc(const void *a, const void *b)
{
	double x = fabs(*(const double *)a - 0.5), y = fabs(*(const double *)b - 0.5);

	return x < y ? 1 : x > y ? -1 : 0;
}

enum store_error spam_trained_counts(struct store_account *acct, uint32_t *spam_r,
				     uint32_t *ham_r, struct store_err *err_r)
{
	uint64_t key = TOTALS_KEY;
	uint32_t c[1][2];
	enum store_error e = store_counts_get(acct, &key, 1, c, err_r);

	*ham_r = c[0][0];
	*spam_r = c[0][1];
	return e;
}

enum store_error spam_classify(struct store_account *acct, const uint8_t *msg, size_t len,
			       struct spam_result *result_r, struct store_err *err_r)
{
	struct spam_tokens tokens;
	uint32_t nspam, nham;
	enum store_error e;

	memset(result_r, 0, sizeof(*result_r));
	result_r->spamicity = 0.5;
	if (spam_is_gtube(msg, len)) {
		result_r->gtube = true;
		result_r->score = SPAM_GTUBE_SCORE;
		return STORE_OK;
	}
	e = spam_trained_counts(acct, &nspam, &nham, err_r);
	if (e != STORE_OK || nspam < SPAM_MIN_TRAINED || nham < SPAM_MIN_TRAINED)
		return e;
	result_r->trained = true;
	spam_tokenize(msg, len, &tokens);
	uint32_t (*counts)[2] = xcalloc(tokens.count + 1, sizeof(*counts));
	double *probs = xcalloc(tokens.count + 1, sizeof(*probs));
	size_t n = 0;

	e = store_counts_get(acct, tokens.keys, tokens.count, counts, err_r);
	for (size_t i = 0; e == STORE_OK && i < tokens.count; i++) {
		double f = spam_token_prob(counts[i][1], counts[i][0], nspam, nham);

		if (fabs(f - 0.5) >= MIN_DEV)
			probs[n++] = f;
	}
	qsort(probs, n, sizeof(*probs), cmp_dev_desc);
	result_r->spamicity = spam_combine(probs, n < SPAM_MAX_CLUES ? n : SPAM_MAX_CLUES);
	result_r->score = 10.0 * (result_r->spamicity - 0.5);
	free(counts);
	free(probs);
	spam_tokens_free(&tokens);
	return e;
}

/* The key of a message's training record: a hash of its bytes, so that the same message
 * moved back and forth, or given to `roost spam train` again, is recognised. */
static uint64_t message_key(const uint8_t *msg, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ MESSAGE_SALT;

	for (size_t i = 0; i < len; i++) {
		h ^= msg[i];
		h *= 0x100000001b3ULL;
	}
	return h < STORE_COUNT_PINNED ? h + STORE_COUNT_PINNED : h;
}

enum store_error spam_train(struct store_account *acct, const uint8_t *msg, size_t len,
			    enum spam_class cls, uint64_t cap, bool *changed_r,
			    struct store_err *err_r)
{
	uint64_t mkey = message_key(msg, len);
	uint32_t record[1][2];
	enum store_error e;

	*changed_r = false;
	e = store_counts_get(acct, &mkey, 1, record, err_r);
	if (e != STORE_OK || record[0][cls] > 0)
		return e;
	bool was_other = record[0][!cls] > 0;
	int32_t d_this = 1, d_other = was_other ? -1 : 0;
	struct spam_tokens tokens;

	spam_tokenize(msg, len, &tokens);
	struct store_count_delta *deltas = xcalloc(tokens.count + 2, sizeof(*deltas));
	size_t n = 0;

	/* d0 counts ham, d1 spam: the class's own count goes up, the other's down. */
	for (size_t i = 0; i < tokens.count; i++)
		deltas[n++] = (struct store_count_delta){ tokens.keys[i],
							  cls == SPAM_CLASS_HAM ? d_this : d_other,
							  cls == SPAM_CLASS_SPAM ? d_this : d_other };
	deltas[n++] = (struct store_count_delta){ TOTALS_KEY,
						  cls == SPAM_CLASS_HAM ? d_this : d_other,
						  cls == SPAM_CLASS_SPAM ? d_this : d_other };
	deltas[n++] = (struct store_count_delta){ mkey, cls == SPAM_CLASS_HAM ? 1 : -1,
						  cls == SPAM_CLASS_SPAM ? 1 : -1 };
	e = store_counts_update(acct, deltas, n, cap, err_r);
	*changed_r = e == STORE_OK;
	free(deltas);
	spam_tokens_free(&tokens);
	return e;
}
