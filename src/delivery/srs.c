/* SRS at delivery: which sender a forwarded copy leaves with, and where mail to one of our SRS
 * addresses (a bounce of a forwarded message) goes. The scheme itself is auth/srs.c.
 *
 * Policy:
 *  - Only mail from a peer that did not authenticate is rewritten (the MX and LMTP): what our
 *    users submit carries their own address, which our SPF covers already.
 *  - The null sender is never rewritten (there is nothing to bounce to), nor a sender in one of
 *    our domains or in the SRS domain itself (SPF passes for it as it is).
 *  - Only the copies for alias targets in other domains get the SRS sender; local copies keep
 *    the original Return-Path.
 *  - An SRS address routes out only when its hash verifies and it is not older than max_age;
 *    anything else at the SRS domain in SRS form is an unknown user. That keeps the decoder
 *    from being an open relay: only an address we made, recently, leads anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/core.h"
#include "delivery_internal.h"

int delivery_srs_setup(struct delivery *d, char *err, size_t errlen)
{
	const char *domain = d->cfg->srs_domain[0] ? d->cfg->srs_domain : d->cfg->hostname;
	size_t n = strlen(domain);
	char *path;
	int rc;

	if (!d->cfg->srs_enabled)
		return 0;
	if (n > 0 && domain[n - 1] == '.')
		n--;
	free(d->srs_domain);
	d->srs_domain = xstrndup(domain, n);
	for (char *p = d->srs_domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	path = xasprintf("%s/srs.key", d->data_dir);
	rc = auth_srs_secret_load(path, d->srs_secret, &d->srs_secret_len, err, errlen);
	free(path);
	if (rc < 0)
		return -1;
	d->srs_max_age_days = d->cfg->srs_max_age / 86400;
	d->srs_on = true;
	log_info("msg=\"srs enabled\" domain=%s max_age_days=%lld", d->srs_domain,
		 (long long)d->srs_max_age_days);
	return 0;
}

bool delivery_srs_domain(struct delivery *d, const char *domain)
{
	size_t n;

	if (!d->srs_on)
		return false;
	n = strlen(d->srs_domain);
	return str_nieq(domain, d->srs_domain, n) &&
	       (domain[n] == '\0' || (domain[n] == '.' && domain[n + 1] == '\0'));
}

/* The decoded address of a verified SRS address: its mailboxes when it is ours, itself as the
 * one remote recipient otherwise. */
static enum delivery_rcpt_status srs_route(struct delivery *d, const char *original,
					   struct delivery_rcpt *out)
{
	const char *at = strrchr(original, '@');
	char *again = NULL;

	/* An SRS address that decodes to another of our SRS addresses was not made by us. */
	if (auth_srs_reverse(d->srs_secret, d->srs_secret_len, d->srs_domain, original, time(NULL),
			     d->srs_max_age_days, &again) != AUTH_SRS_NOT_SRS || at == NULL) {
		free(again);
		return DELIVERY_RCPT_UNKNOWN;
	}
	if (delivery_domain_is_local(d, at + 1)) {
		struct delivery_rcpt local;
		enum delivery_rcpt_status st;

		memset(&local, 0, sizeof(local));
		st = delivery_resolve(d, original, false, &local);
		out->local = local.local;
		out->local_count = local.local_count;
		out->remote = local.remote;
		out->remote_count = local.remote_count;
		out->forwarded = local.forwarded;
		local.local = local.remote = NULL;
		local.local_count = local.remote_count = 0;
		delivery_rcpt_clear(&local);
		return st;
	}
	for (const char *c = original; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return DELIVERY_RCPT_UNSUPPORTED;
	out->remote = xcalloc(1, sizeof(char *));
	out->remote[0] = xstrdup(original);
	out->remote_count = 1;
	return DELIVERY_RCPT_OK;
}

bool delivery_srs_resolve(struct delivery *d, const char *address, struct delivery_rcpt *out,
			  enum delivery_rcpt_status *status_r)
{
	char *original = NULL;
	enum auth_srs_result r;

	if (!d->srs_on)
		return false;
	r = auth_srs_reverse(d->srs_secret, d->srs_secret_len, d->srs_domain, address, time(NULL),
			     d->srs_max_age_days, &original);
	if (r == AUTH_SRS_NOT_SRS)
		return false;
	if (r != AUTH_SRS_OK) {
		log_info("msg=\"srs address refused\" rcpt=<%s> reason=\"%s\"", address,
			 auth_srs_result_str(r));
		*status_r = DELIVERY_RCPT_UNKNOWN;
		return true;
	}
	*status_r = srs_route(d, original, out);
	log_info("msg=\"srs address decoded\" rcpt=<%s> to=<%s> status=%d", address, original,
		 (int)*status_r);
	free(original);
	return true;
}

char *delivery_srs_sender(struct delivery *d, const struct delivery_envelope *env)
{
	const char *at = strrchr(env->sender, '@');
	bool forwarded = false;
	char *srs;

	if (!d->srs_on || env->auth_user != NULL || at == NULL)
		return NULL;
	for (size_t i = 0; i < env->rcpt_count && !forwarded; i++)
		forwarded = env->rcpts[i].forwarded && env->rcpts[i].remote_count > 0;
	if (!forwarded || delivery_srs_domain(d, at + 1) || delivery_domain_is_local(d, at + 1))
		return NULL;
	srs = auth_srs_forward(d->srs_secret, d->srs_secret_len, d->srs_domain, env->sender,
			       time(NULL));
	if (srs == NULL)
		log_warn("msg=\"sender not rewritten: the SRS address would be too long\" "
			 "sender=<%s>",
			 env->sender);
	return srs;
}
