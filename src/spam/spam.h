/* Spam scoring: a statistical classifier per account (Robinson's f(w) and chi-square
 * combining, the method bogofilter and SpamBayes use), the GTUBE test string, the check that
 * the delivery runs on every received message (X-Spam-* fields, the per-account Junk
 * decision), and learning from what a user moves into and out of Junk.
 *
 * Storage: the token counts of an account live in its index through store_counts_* (keys are
 * 64-bit hashes of tokens; key 1 holds the numbers of messages trained as spam and as ham; a
 * message's own record, keyed by a hash of its bytes, says how it was trained so that it is
 * never counted twice). This layer never opens a file or a database itself.
 *
 * Scores: the classifier gives a spamminess I in [0, 1] (0.5: no opinion). Its points are
 * 10 * (I - 0.5), so from -5 to +5, and only once the account has been trained with at least
 * SPAM_MIN_TRAINED messages of each kind: an untrained account scores 0 and never junks
 * normal mail. The sender checks' results add points (spam_auth_points), GTUBE scores
 * SPAM_GTUBE_SCORE. A message is spam when its score reaches the account's threshold.
 *
 * Threads: every function may block on the store; call from a worker thread. */
#ifndef ROOST_SPAM_H
#define ROOST_SPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../delivery/check.h"
#include "../store/store.h"

#define SPAM_GTUBE_SCORE 1000.0
/* Messages of each kind an account must have trained before its classifier is listened to. */
#define SPAM_MIN_TRAINED 10
/* Tokens of one message, after de-duplication; the rest of a longer message is not read. */
#define SPAM_MAX_TOKENS 4096
/* Bytes of decoded text of one message that are tokenized. */
#define SPAM_MAX_TEXT (512 * 1024)
/* Token length in bytes; shorter and longer words are skipped. */
#define SPAM_TOKEN_MIN 3
#define SPAM_TOKEN_MAX 40
/* The most decisive tokens the combining uses: every decisive token of a message (a bound on
 * the work, not a choice of clues). */
#define SPAM_MAX_CLUES SPAM_MAX_TOKENS

/* ---- tokens ---- */

/* A message's distinct tokens, as sorted hashes (never below STORE_COUNT_PINNED). */
struct spam_tokens {
	uint64_t *keys;
	size_t count;
};

/* Tokenizes a whole message (header fields prefixed by their name, RFC 2047 words and
 * bodies decoded by the MIME layer). Always succeeds; the result is bounded by the limits
 * above. Free with spam_tokens_free. */
void spam_tokenize(const uint8_t *msg, size_t len, struct spam_tokens *tokens_r);
void spam_tokens_free(struct spam_tokens *tokens);
/* Calls fn for every token (text, length) of the message before hashing, in message order
 * and with repetitions; the same limits apply. For tests and the fuzz target. */
void spam_tokenize_text(const uint8_t *msg, size_t len,
			void (*fn)(const char *token, size_t len, void *ctx), void *ctx);
/* True when the message contains the GTUBE test string. */
bool spam_is_gtube(const uint8_t *msg, size_t len);

/* ---- the maths (classify.c) ---- */

/* Robinson's f(w): the token's spam probability from its counts and the trained totals,
 * pulled towards 0.5 when the token was seen rarely. */
double spam_token_prob(uint32_t spam_count, uint32_t ham_count, uint32_t spam_total,
		       uint32_t ham_total);
/* Q(chi2, df): the probability that a chi-square variable with an even df exceeds chi2. */
double spam_chi2_q(double chi2, unsigned df);
/* Fisher/Robinson chi-square combining of n probabilities: the spamminess I in [0, 1]. */
double spam_combine(const double *probs, size_t n);

/* ---- classifying and training an account ---- */

struct spam_result {
	bool gtube;
	bool trained;	  /* the account had enough training for the classifier to count */
	double spamicity; /* I; 0.5 when not trained */
	double score;	  /* the classifier's points (or SPAM_GTUBE_SCORE) */
};

enum store_error spam_classify(struct store_account *acct, const uint8_t *msg, size_t len,
			       struct spam_result *result_r, struct store_err *err_r);

enum spam_class { SPAM_CLASS_HAM = 0, SPAM_CLASS_SPAM = 1 };
/* Learns one message as spam or ham. A message trained before as the other class is
 * un-learned from it first; one trained before as the same class changes nothing
 * (*changed_r false). cap: the most rows the account's token table may keep. */
enum store_error spam_train(struct store_account *acct, const uint8_t *msg, size_t len,
			    enum spam_class cls, uint64_t cap, bool *changed_r,
			    struct store_err *err_r);
/* Messages trained as spam and as ham. */
enum store_error spam_trained_counts(struct store_account *acct, uint32_t *spam_r,
				     uint32_t *ham_r, struct store_err *err_r);

/* ---- the delivery check and learning from moves (check.c, learn.c) ---- */

struct spam_settings {
	struct store *store;
	uint64_t max_tokens; /* cap of each account's token table */
	double default_threshold;
	/* The account's own threshold (`roost user set ADDRESS spam.threshold N`), or
	 * default_threshold; set by cli/, which sees the accounts directory. */
	double (*threshold)(void *ctx, const char *address);
	void *threshold_ctx;
	/* Signals about the connecting host (network.c). */
	const char *resolvers; /* [dns] resolvers */
	bool fcrdns;	       /* [spam] fcrdns */
	const char *dnsbl;     /* [spam] dnsbl: zones, space- or comma-separated; "" = none */
	/* [spam] rspamd: its score is added to ours (score = ours + rspamd's); NULL = none */
	struct spam_rspamd *rspamd;
};

/* ---- the connecting host (network.c) ---- */

/* Loopback, private (RFC 1918, fc00::/7), link-local or not an address at all. */
bool spam_address_is_local(const char *ip);
/* The blocklist query name of ip in zone ("1.2.3.4", "bl.example" -> "4.3.2.1.bl.example");
 * false when ip is not an address or the name does not fit. */
bool spam_dnsbl_name(const char *ip, const char *zone, char *out, size_t outlen);
/* Points for a host without forward-confirmed reverse DNS and for each blocklist that lists
 * it; appends ",NAME" for each to tests. Blocks on DNS within its own deadlines. */
double spam_network_points(const struct spam_settings *set, const char *ip, struct buf *tests);

/* ---- header and MIME anomalies (anomaly.c) ---- */

/* Points of each rule; the names are what X-Spam-Status shows. */
#define SPAM_POINTS_MISSING_DATE 1.0       /* MISSING_DATE: no Date field */
#define SPAM_POINTS_DATE_FUTURE 1.5        /* DATE_IN_FUTURE: more than a day ahead */
#define SPAM_POINTS_DATE_PAST 1.0          /* DATE_IN_PAST: older than the days below */
#define SPAM_ANOMALY_DATE_PAST_DAYS 365
#define SPAM_POINTS_MISSING_MESSAGE_ID 0.5 /* MISSING_MESSAGE_ID */
#define SPAM_POINTS_FROM_NAME_SPOOF 2.0    /* FROM_NAME_SPOOF: an encoded display name showing
					    * an address of another domain */
#define SPAM_POINTS_SUBJECT_CAPS 0.5       /* SUBJECT_ALL_CAPS: letters, none lower case */
#define SPAM_ANOMALY_CAPS_LETTERS 10       /* ...at least this many */
#define SPAM_POINTS_MANY_RECIPIENTS 1.0    /* MANY_RECIPIENTS: To and Cc beyond the number */
#define SPAM_ANOMALY_MAX_RECIPIENTS 50
#define SPAM_POINTS_EXECUTABLE 3.0         /* EXECUTABLE_ATTACHMENT: .exe, .scr, .js, ... */
#define SPAM_POINTS_NO_TEXT_PART 1.0       /* NO_TEXT_PART: multipart without any text part */

/* The points of every rule msg matches, ",NAME" appended to tests for each. now: the wall
 * clock (seconds) the Date rules compare with. */
double spam_anomaly_points(const uint8_t *msg, size_t len, int64_t now, struct buf *tests);

/* ---- the rspamd hand-off (rspamd.c) ---- */

struct spam_rspamd;
/* url: "http://IP:port" (numeric). timeout_ms bounds one whole check. */
struct spam_rspamd *spam_rspamd_new(const char *url, unsigned timeout_ms, char *err,
				    size_t errlen);
void spam_rspamd_free(struct spam_rspamd **r);

struct spam_rspamd_result {
	double score;
	char action[32]; /* rspamd's action, spaces made '_' ("add_header") */
};
/* POSTs the message to /checkv2 with the envelope; 0 with the result, -1 when rspamd is
 * down, slow or answers nonsense (logged at most once a minute). Blocks up to the time limit. */
int spam_rspamd_check(struct spam_rspamd *r, const struct delivery_check_input *in,
		      struct spam_rspamd_result *res);
/* Reads an HTTP answer of /checkv2: 0 with score and action, -1 when it is not a 200 with a
 * JSON object holding a numeric top-level "score". For tests. */
int spam_rspamd_parse_reply(const char *reply, size_t len, struct spam_rspamd_result *res);

/* Points the sender checks' results add (negative for a pass). */
double spam_auth_points(const struct delivery_verdict *v);
/* delivery_check_fn: arg is a struct spam_settings. */
void spam_check(void *arg, const struct delivery_check_input *in, struct delivery_verdict *v);
/* store_copy_cb: arg is a struct spam_settings. Into \Junk: learn as spam; out of \Junk
 * into any mailbox but \Trash: learn as ham. */
void spam_learn_on_copy(const struct store_copy_event *event, void *arg);

#endif
