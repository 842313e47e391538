/* The mail-authentication check: SPF, DKIM and DMARC over one received message, the
 * Authentication-Results field that reports them, and what the DMARC policy asks for, turned
 * into a delivery verdict (delivery/check.h). `roost mailauth check` runs mailauth_evaluate,
 * the same code, on one message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "../delivery/check.h"
#include "dkim_internal.h"
#include "mailauth_internal.h"

struct mailauth_settings *mailauth_settings_new(const struct config *cfg)
{
	struct mailauth_settings *s = xcalloc(1, sizeof(*s));

	s->authserv_id = xstrdup(cfg->hostname != NULL ? cfg->hostname : "localhost");
	s->resolvers = xstrdup(cfg->dns_resolvers != NULL ? cfg->dns_resolvers : "");
	s->time_budget_ms = (unsigned)cfg->mailauth_time_budget * 1000u;
	s->verify = cfg->mailauth_verify;
	s->reject_quarantines = cfg->dmarc_reject == DMARC_REJECT_QUARANTINE;
	s->arc_trusted = xstrdup(cfg->mailauth_arc_trusted != NULL ? cfg->mailauth_arc_trusted : "");
	return s;
}

void mailauth_settings_free(struct mailauth_settings **sp)
{
	struct mailauth_settings *s = *sp;

	if (s == NULL)
		return;
	free(s->authserv_id);
	free(s->resolvers);
	free(s->arc_trusted);
	free(s);
	*sp = NULL;
}

void mailauth_report_free(struct mailauth_report *r)
{
	buf_free(&r->field);
}

/* The SPF identity's domain when SPF passed (what DMARC aligns), else NULL. */
static const char *spf_pass_domain(const struct mailauth_report *r)
{
	return r->spf.result == SPF_PASS ? r->spf.domain : NULL;
}

/* Whether domain is one of the space- or comma-separated names of list (case-insensitive). */
static bool sealer_trusted(const char *list, const char *domain)
{
	size_t dlen = strlen(domain);

	for (const char *p = list; dlen > 0 && *p != '\0';) {
		size_t n = strcspn(p, " \t,");
		if (n == dlen && str_nieq(p, domain, n))
			return true;
		p += n;
		p += strspn(p, " \t,");
	}
	return false;
}

/* RFC 7489 §6.7 local policy, RFC 8617 §7.2: mail a trusted intermediary saw pass DMARC and
 * then changed (a list footer, a forward that breaks SPF) arrives failing; its seal vouches
 * for the original result, so the From domain's policy is not applied. */
static void arc_override(const struct mailauth_settings *s, struct mailauth_report *r)
{
	if (r->dmarc.result != DMARC_FAIL || r->arc.result != ARC_PASS ||
	    !r->arc.sealer_dmarc_pass || !sealer_trusted(s->arc_trusted, r->arc.domain))
		return;
	r->dmarc.disposition = DMARC_POLICY_NONE;
	r->dmarc_arc_override = true;
}

void mailauth_evaluate(const struct mailauth_settings *s, struct mailauth_dns *dns,
		       const uint8_t *msg, size_t len, const char *ip, const char *helo,
		       const char *sender, struct mailauth_report *r)
{
	struct mailauth_dns own = { .resolvers = s->resolvers,
				    .deadline_ms = time_now_ms() + s->time_budget_ms };
	const char *dkim_domains[LIMIT_DKIM_SIGNATURES];
	size_t dkim_pass = 0;
	const char *why;
	char from[256];

	memset(r, 0, sizeof(*r));
	buf_init(&r->field);
	if (dns == NULL)
		dns = &own;
	mailauth_find_forged(msg, len, s->authserv_id, r);
	spf_check(dns, ip, helo, sender, s->authserv_id, &r->spf);
	r->dkim_count = dkim_verify(msg, len, mailauth_dkim_key_lookup, dns, time_wall_seconds(),
				    r->dkim, ARRAY_LEN(r->dkim));
	/* A signature whose l= leaves part of the body unsigned vouches for none of what
	 * follows: it does not make the From domain's DMARC pass (RFC 6376 §8.2). */
	for (int i = 0; i < r->dkim_count; i++)
		if (r->dkim[i].status == DKIM_PASS && !r->dkim[i].body_partial)
			dkim_domains[dkim_pass++] = r->dkim[i].domain;
	if (dmarc_from_domain(msg, len, from, sizeof(from), &why)) {
		dmarc_check(dns, from, spf_pass_domain(r), dkim_domains, dkim_pass,
			    arc4random_uniform(100), &r->dmarc);
	} else {
		/* §6.6.1: a message without one From domain cannot be judged; say why */
		r->dmarc.result = strcmp(why, "no From field") == 0 ? DMARC_NONE : DMARC_PERMERROR;
		snprintf(r->dmarc.reason, sizeof(r->dmarc.reason), "%s", why);
	}
	arc_verify(msg, len, mailauth_dkim_key_lookup, dns, time_wall_seconds(), &r->arc);
	snprintf(r->arc.remote_ip, sizeof(r->arc.remote_ip), "%s", ip != NULL ? ip : "");
	arc_override(s, r);
	mailauth_write_field(s->authserv_id, r);
}

/* ---- the delivery check ---- */

static enum delivery_auth_result spf_auth(enum spf_result r)
{
	switch (r) {
	case SPF_NONE: return DELIVERY_AUTH_NONE;
	case SPF_NEUTRAL: return DELIVERY_AUTH_NEUTRAL;
	case SPF_PASS: return DELIVERY_AUTH_PASS;
	case SPF_FAIL: return DELIVERY_AUTH_FAIL;
	case SPF_SOFTFAIL: return DELIVERY_AUTH_SOFTFAIL;
	case SPF_TEMPERROR: return DELIVERY_AUTH_TEMPERROR;
	default: return DELIVERY_AUTH_PERMERROR;
	}
}

/* One DKIM result for the message: pass when any signature passed, else the worst. */
static enum delivery_auth_result dkim_auth(const struct mailauth_report *r)
{
	enum delivery_auth_result best = DELIVERY_AUTH_NONE;

	if (r->dkim_count < 0)
		return DELIVERY_AUTH_PERMERROR;
	for (int i = 0; i < r->dkim_count; i++) {
		switch (r->dkim[i].status) {
		case DKIM_PASS: return DELIVERY_AUTH_PASS;
		case DKIM_FAIL: best = DELIVERY_AUTH_FAIL; break;
		case DKIM_TEMPERROR:
			if (best != DELIVERY_AUTH_FAIL)
				best = DELIVERY_AUTH_TEMPERROR;
			break;
		default:
			if (best == DELIVERY_AUTH_NONE)
				best = DELIVERY_AUTH_PERMERROR;
			break;
		}
	}
	return best;
}

static enum delivery_auth_result dmarc_auth(enum dmarc_result r)
{
	switch (r) {
	case DMARC_PASS: return DELIVERY_AUTH_PASS;
	case DMARC_FAIL: return DELIVERY_AUTH_FAIL;
	case DMARC_TEMPERROR: return DELIVERY_AUTH_TEMPERROR;
	case DMARC_PERMERROR: return DELIVERY_AUTH_PERMERROR;
	default: return DELIVERY_AUTH_NONE;
	}
}

static enum delivery_auth_result arc_auth(enum arc_result r)
{
	switch (r) {
	case ARC_PASS: return DELIVERY_AUTH_PASS;
	case ARC_FAIL: return DELIVERY_AUTH_FAIL;
	default: return DELIVERY_AUTH_NONE;
	}
}

static void junk_all(const struct delivery_check_input *in, struct delivery_verdict *v)
{
	for (size_t i = 0; v->junk != NULL && i < in->mailbox_count; i++)
		v->junk[i] = true;
}

static void apply_policy(const struct mailauth_settings *s, const struct mailauth_report *r,
			 const struct delivery_check_input *in, struct delivery_verdict *v)
{
	char reply[sizeof(v->reply)], reason[sizeof(v->reason)];

	if (r->dmarc.result != DMARC_FAIL)
		return;
	if (r->dmarc.disposition == DMARC_POLICY_REJECT && !s->reject_quarantines) {
		snprintf(reply, sizeof(reply),
			 "550 5.7.1 Message refused: it fails the DMARC policy of %.200s",
			 r->dmarc.from_domain);
		snprintf(reason, sizeof(reason), "mailauth: DMARC p=reject for %.200s",
			 r->dmarc.from_domain);
		delivery_verdict_refuse(v, DELIVERY_CHECK_REJECT, reply, reason);
	} else if (r->dmarc.disposition != DMARC_POLICY_NONE) {
		junk_all(in, v);
	}
}

void mailauth_apply(const struct mailauth_settings *s, struct mailauth_report *r,
		    const struct delivery_check_input *in, struct delivery_verdict *verdict)
{
	for (size_t i = 0; i < r->forged_count; i++)
		if (!delivery_verdict_drop(verdict, r->forged_off[i], r->forged_len[i]))
			break; /* the table is full: the rest stay, under our own field */
	buf_append_byte(&r->field, '\0');
	r->field.len--;
	delivery_verdict_add_header(verdict, (const char *)r->field.data);
	verdict->spf = spf_auth(r->spf.result);
	verdict->dkim = dkim_auth(r);
	verdict->dmarc = dmarc_auth(r->dmarc.result);
	verdict->arc = arc_auth(r->arc.result);
	apply_policy(s, r, in, verdict);
}

void mailauth_check(void *arg, const struct delivery_check_input *in,
		    struct delivery_verdict *verdict)
{
	const struct mailauth_settings *s = arg;
	struct mailauth_report *r;

	/* Mail our own users submitted was authenticated by their login; DMARC would only
	 * penalise a From they are allowed to use. */
	if (!s->verify || in->auth_user != NULL)
		return;
	r = xmalloc(sizeof(*r));
	mailauth_evaluate(s, NULL, in->msg, in->len, in->client_ip, in->helo, in->sender, r);
	dmarc_report_record(s, r, in->client_ip);
	mailauth_apply(s, r, in, verdict);
	mailauth_report_free(r);
	free(r);
}
