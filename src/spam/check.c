/* The spam check the delivery runs on every received message (delivery/check.h): the score
 * of each local account the message goes to, X-Spam-Score and X-Spam-Status fields, and
 * verdict->junk[i] for each account whose threshold the score reaches. The sender checks run
 * before this one, so their results are in the verdict and add points here.
 *
 * A message to several local accounts carries the highest of their scores in its fields (the
 * fields are shared by every copy); each account's Junk decision uses its own classifier and
 * threshold. A store failure is not a reason to refuse mail: the account is scored on the
 * signals alone and the log says why. */
#include <math.h>
#include <stdio.h>

#include "spam.h"

double spam_auth_points(const struct delivery_verdict *v)
{
	double points = 0.0;

	switch (v->spf) {
	case DELIVERY_AUTH_FAIL: points += 1.5; break;
	case DELIVERY_AUTH_SOFTFAIL: points += 0.5; break;
	default: break;
	}
	switch (v->dkim) {
	case DELIVERY_AUTH_FAIL: points += 1.0; break;
	case DELIVERY_AUTH_PASS: points -= 0.5; break;
	default: break;
	}
	switch (v->dmarc) {
	case DELIVERY_AUTH_FAIL: points += 3.0; break;
	case DELIVERY_AUTH_PASS: points -= 1.0; break;
	default: break;
	}
	return points;
}

/* The score of one account: its classifier's points plus the shared signals. */
static double account_score(const struct spam_settings *set, const char *address,
			    const struct delivery_check_input *in, double signals)
{
	struct store_account *acct = NULL;
	struct store_err err = { 0 };
	struct spam_result r;

	if (spam_is_gtube(in->msg, in->len))
		return SPAM_GTUBE_SCORE + signals;
	if (store_account_open(set->store, address, &acct, &err) != STORE_OK) {
		log_warn("spam=check op=open account=%s error=\"%s\"", address, err.text);
		return signals;
	}
	if (spam_classify(acct, in->msg, in->len, &r, &err) != STORE_OK) {
		log_warn("spam=check op=classify account=%s error=\"%s\"", address, err.text);
		r.score = 0.0;
	}
	store_account_close(&acct);
	return r.score + signals;
}

static double account_threshold(const struct spam_settings *set, const char *address)
{
	return set->threshold != NULL ? set->threshold(set->threshold_ctx, address)
				      : set->default_threshold;
}

void spam_check(void *arg, const struct delivery_check_input *in, struct delivery_verdict *v)
{
	const struct spam_settings *set = arg;
	struct buf tests;
	double signals = spam_auth_points(v);
	struct spam_rspamd_result rspamd;
	char rspamd_text[64] = "";

	buf_init(&tests);
	if (spam_is_gtube(in->msg, in->len))
		buf_append_str(&tests, ",GTUBE");
	/* A submission comes from our own user: where it connects from, and how its client
	 * writes headers, say nothing. */
	if (in->auth_user == NULL) {
		signals += spam_network_points(set, in->client_ip, &tests);
		signals += spam_anomaly_points(in->msg, in->len, time_wall_seconds(), &tests);
		if (set->rspamd != NULL && spam_rspamd_check(set->rspamd, in, &rspamd) == 0) {
			signals += rspamd.score;
			snprintf(rspamd_text, sizeof(rspamd_text), " rspamd=%.1f/%s", rspamd.score,
				 rspamd.action);
		}
	}
	double best = signals, best_threshold = set->default_threshold;
	bool any_junk = false;
	char field[640];

	for (size_t i = 0; i < in->mailbox_count; i++) {
		double score = account_score(set, in->mailboxes[i], in, signals);
		double threshold = account_threshold(set, in->mailboxes[i]);
		bool junk = score >= threshold;

		if (v->junk != NULL)
			v->junk[i] = v->junk[i] || junk;
		if (junk)
			metrics_spam_verdict(METRICS_SPAM_JUNK);
		any_junk = any_junk || junk;
		if (i == 0 || score > best) {
			best = score;
			best_threshold = threshold;
		}
	}
	v->spam_score = best;
	metrics_spam_verdict(any_junk ? METRICS_SPAM_SPAM : METRICS_SPAM_HAM);
	snprintf(field, sizeof(field), "X-Spam-Score: %.1f", best);
	delivery_verdict_add_header(v, field);
	snprintf(field, sizeof(field), "X-Spam-Status: %s, score=%.1f threshold=%.1f%s%s%s",
		 any_junk ? "Yes" : "No", best, best_threshold, rspamd_text,
		 tests.len > 0 ? " tests=" : "", tests.len > 0 ? buf_cstr(&tests) + 1 : "");
	delivery_verdict_add_header(v, field);
	buf_free(&tests);
}
