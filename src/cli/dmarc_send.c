/* DMARC aggregate reports out of the report store (store/dmarc_reports.c): one report per policy
 * domain and UTC day, built by mailauth/ (XML, gzip, the mail) and put in the outbound queue
 * for each mailto: of the policy's rua=. Shared by the server's daily run (serve_dmarc.c) and
 * `roost dmarc report` (cmd_dmarc.c).
 *
 * A destination is skipped, with a line saying why, when the report is larger than its !size
 * (RFC 7489 §6.2), or when it lies in another organisational domain that has not published
 * `<policy domain>._report._dmarc.<its domain>` TXT "v=DMARC1..." (§7.1): without that check
 * anyone could point their rua= at a victim and have us mail it daily. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/core.h"
#include "../dns/dns.h"
#include "../mailauth/mailauth.h"
#include "../queue/queue.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_dmarc.h"

#define DMARC_VERIFY_TIMEOUT_MS 5000

/* store.h cannot name the limit (it includes no core header): the two must agree. */
_Static_assert(STORE_DMARC_RUA_TEXT == LIMIT_DMARC_RUA_TEXT, "rua text sizes differ");

char *dmarc_report_sender(const struct config *cfg)
{
	if (cfg->dmarc_report_from != NULL && cfg->dmarc_report_from[0] != '\0')
		return xstrdup(cfg->dmarc_report_from);
	return xasprintf("postmaster@%s", cfg->hostname != NULL ? cfg->hostname : "localhost");
}

static void day_text(int64_t day, char *out, size_t outlen)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y%m%d", &tm);
}

void dmarc_report_recorder(void *ctx, const struct dmarc_report_row *row)
{
	const char *const columns[STORE_DMARC_COLUMNS] = {
		row->header_from, row->source_ip,   row->disposition, row->dkim_aligned,
		row->spf_aligned, row->dkim_domain, row->dkim_result, row->spf_domain,
		row->spf_scope,	  row->spf_result,
	};
	struct store_dmarc_policy *policy = xcalloc(1, sizeof(*policy));
	char err[256] = "";

	policy->p = row->policy.p;
	policy->sp = row->policy.sp;
	policy->pct = row->policy.pct;
	policy->strict_dkim = row->policy.strict_dkim;
	policy->strict_spf = row->policy.strict_spf;
	snprintf(policy->rua, sizeof(policy->rua), "%s", row->policy.rua);
	if (store_dmarc_add(ctx, store_dmarc_today(), row->policy_domain, columns, policy, err,
			    sizeof(err)) < 0)
		log_warn("msg=\"cannot record a DMARC evaluation\" domain=%s error=\"%s\"",
			 row->policy_domain, err);
	free(policy);
}

/* The static name a stored text stands for (unknown text reads as the first). */
static const char *static_name(const char *text, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(text, names[i]) == 0)
			return names[i];
	return names[0];
}

struct read_rows {
	struct dmarc_report_row *rows;
	uint64_t *counts;
	size_t count, cap;
};

static void read_row(const char *const c[STORE_DMARC_COLUMNS], uint64_t count, void *ctx)
{
	static const char *const dispositions[] = { "none", "quarantine", "reject" };
	static const char *const aligned[] = { "fail", "pass" };
	static const char *const dkim_results[] = { "none", "pass", "fail", "temperror",
						    "permerror" };
	static const char *const scopes[] = { "mfrom", "helo" };
	static const char *const spf_results[] = { "none", "neutral", "pass", "fail",
						   "softfail", "temperror", "permerror" };
	struct read_rows *rr = ctx;

	if (rr->count == rr->cap) {
		rr->cap = rr->cap == 0 ? 16 : rr->cap * 2;
		rr->rows = xrealloc(rr->rows, rr->cap * sizeof(*rr->rows));
		rr->counts = xrealloc(rr->counts, rr->cap * sizeof(*rr->counts));
	}
	struct dmarc_report_row *row = &rr->rows[rr->count];
	memset(row, 0, sizeof(*row));
	snprintf(row->header_from, sizeof(row->header_from), "%s", c[0]);
	snprintf(row->source_ip, sizeof(row->source_ip), "%s", c[1]);
	row->disposition = static_name(c[2], dispositions, ARRAY_LEN(dispositions));
	row->dkim_aligned = static_name(c[3], aligned, ARRAY_LEN(aligned));
	row->spf_aligned = static_name(c[4], aligned, ARRAY_LEN(aligned));
	snprintf(row->dkim_domain, sizeof(row->dkim_domain), "%s", c[5]);
	row->dkim_result = static_name(c[6], dkim_results, ARRAY_LEN(dkim_results));
	snprintf(row->spf_domain, sizeof(row->spf_domain), "%s", c[7]);
	row->spf_scope = static_name(c[8], scopes, ARRAY_LEN(scopes));
	row->spf_result = static_name(c[9], spf_results, ARRAY_LEN(spf_results));
	rr->counts[rr->count++] = count;
}

static enum dmarc_policy policy_from_number(unsigned n)
{
	return n <= DMARC_POLICY_REJECT ? (enum dmarc_policy)n : DMARC_POLICY_NONE;
}

int dmarc_report_build(struct store_dmarc *st, const struct config *cfg, int64_t day,
		       const char *domain, struct buf *xml_r, struct dmarc_record *policy_r,
		       char *err, size_t errlen)
{
	struct store_dmarc_policy *stored = xcalloc(1, sizeof(*stored));
	struct read_rows rr = { 0 };
	char date[16], report_id[300];
	char *sender;
	int rc = store_dmarc_read(st, day, domain, stored, read_row, &rr, err, errlen);

	if (rc <= 0)
		goto out;
	memset(policy_r, 0, sizeof(*policy_r));
	policy_r->p = policy_from_number(stored->p);
	policy_r->sp = policy_from_number(stored->sp);
	policy_r->pct = stored->pct;
	policy_r->strict_dkim = stored->strict_dkim;
	policy_r->strict_spf = stored->strict_spf;
	snprintf(policy_r->rua, sizeof(policy_r->rua), "%s", stored->rua);
	day_text(day, date, sizeof(date));
	snprintf(report_id, sizeof(report_id), "%s.%s", date, domain);
	sender = dmarc_report_sender(cfg);
	struct dmarc_report_meta meta = {
		.org_name = cfg->hostname,
		.email = sender,
		.report_id = report_id,
		.begin = day * 86400,
		.end = day * 86400 + 86399,
		.policy_domain = domain,
		.policy = policy_r,
	};
	dmarc_report_xml(&meta, rr.rows, rr.counts, rr.count, xml_r);
	free(sender);
out:
	free(rr.rows);
	free(rr.counts);
	free(stored);
	return rc;
}

/* §7.1: true when the destination may receive reports about domain. */
static bool destination_verified(const struct config *cfg, const char *domain,
				 const struct dmarc_rua *rua)
{
	char org_a[256], org_b[256], name[600];
	struct dns_answer ans;
	bool ok = false;

	if (strcasecmp(domain, rua->domain) == 0 ||
	    (dmarc_org_domain(domain, org_a, sizeof(org_a)) &&
	     dmarc_org_domain(rua->domain, org_b, sizeof(org_b)) && strcmp(org_a, org_b) == 0))
		return true;
	snprintf(name, sizeof(name), "%s._report._dmarc.%s", domain, rua->domain);
	dns_query(cfg->dns_resolvers, name, DNS_TXT, DMARC_VERIFY_TIMEOUT_MS, &ans);
	for (size_t i = 0; ans.status == DNS_OK && i < ans.count && !ok; i++)
		ok = ans.records[i].text_len >= 8 && strncmp(ans.records[i].text, "v=DMARC1", 8) == 0;
	dns_answer_free(&ans);
	return ok;
}

static int queue_report(struct queue *q, const char *sender, const char *to,
			const struct buf *msg, char *err, size_t errlen)
{
	struct queue_recipient rcpt = { .address = to };
	/* auth_user: the runner DKIM-signs mail of our own domains that carries one, and §7.2.1.1
	 * asks for reports that pass DMARC */
	struct queue_envelope env = { .sender = sender, .auth_user = sender, .rcpts = &rcpt,
				      .rcpt_count = 1 };
	struct queue_entry_writer *w = queue_entry_begin(q, &env, err, errlen);
	char id[64];

	if (w == NULL)
		return -1;
	if (queue_entry_write(w, msg->data, msg->len, err, errlen) < 0) {
		queue_entry_abort(&w);
		return -1;
	}
	return queue_entry_commit(&w, id, err, errlen);
}

/* The report of one domain to each of its destinations; the number queued, -1 on an error
 * that should be tried again (the domain is then not marked sent). */
static int send_domain(struct store_dmarc *st, struct queue *q, const struct config *cfg,
		       int64_t day, const char *domain, FILE *out)
{
	struct dmarc_rua rua[LIMIT_DMARC_RUA_ADDRESSES];
	struct dmarc_record policy;
	struct buf xml, gz, msg;
	char err[512] = "", date[16], report_id[300];
	char *sender = dmarc_report_sender(cfg);
	int queued = 0, rc;

	buf_init(&xml);
	buf_init(&gz);
	buf_init(&msg);
	rc = dmarc_report_build(st, cfg, day, domain, &xml, &policy, err, sizeof(err));
	if (rc <= 0 || dmarc_report_gzip(xml.data, xml.len, &gz) < 0) {
		if (rc != 0)
			log_warn("msg=\"cannot build a DMARC report\" domain=%s error=\"%s\"", domain,
				 rc < 0 ? err : "compression failed");
		queued = rc == 0 ? 0 : -1;
		goto out;
	}
	day_text(day, date, sizeof(date));
	snprintf(report_id, sizeof(report_id), "%s.%s", date, domain);
	struct dmarc_report_meta meta = { .org_name = cfg->hostname, .email = sender,
					  .report_id = report_id, .begin = day * 86400,
					  .end = day * 86400 + 86399, .policy_domain = domain,
					  .policy = &policy };
	size_t n = dmarc_rua_parse(policy.rua, rua, ARRAY_LEN(rua));
	for (size_t i = 0; i < n; i++) {
		buf_reset(&msg);
		dmarc_report_message(&meta, rua[i].address, time_wall_seconds(), gz.data, gz.len,
				     &msg);
		const char *skip = NULL;
		if (rua[i].max_size > 0 && msg.len > rua[i].max_size)
			skip = "larger than its size limit";
		else if (!destination_verified(cfg, domain, &rua[i]))
			skip = "outside the domain and not authorised by a _report._dmarc record";
		if (skip != NULL) {
			log_info("msg=\"DMARC report not sent\" domain=%s to=%s reason=\"%s\"",
				 domain, rua[i].address, skip);
			if (out != NULL)
				fprintf(out, "skipped %s to %s: %s\n", domain, rua[i].address, skip);
			continue;
		}
		if (queue_report(q, sender, rua[i].address, &msg, err, sizeof(err)) < 0) {
			log_warn("msg=\"cannot queue a DMARC report\" domain=%s to=%s error=\"%s\"",
				 domain, rua[i].address, err);
			queued = -1;
			goto out;
		}
		log_info("msg=\"DMARC report queued\" domain=%s to=%s size=%zu", domain,
			 rua[i].address, msg.len);
		if (out != NULL)
			fprintf(out, "queued %s to %s (%zu bytes)\n", domain, rua[i].address, msg.len);
		queued++;
	}
out:
	buf_free(&xml);
	buf_free(&gz);
	buf_free(&msg);
	free(sender);
	return queued;
}

struct send_run {
	struct store_dmarc *st;
	struct queue *q;
	const struct config *cfg;
	int64_t day;
	FILE *out;
	int queued;
	bool failed;
};

static void send_one(const char *domain, void *arg)
{
	struct send_run *run = arg;
	char err[256] = "";
	int n = send_domain(run->st, run->q, run->cfg, run->day, domain, run->out);

	if (n < 0) {
		run->failed = true;
		return;
	}
	run->queued += n;
	/* marked even when every destination was skipped: the answer will not change today */
	if (store_dmarc_mark_sent(run->st, run->day, domain, err, sizeof(err)) < 0)
		log_warn("msg=\"cannot mark a DMARC report sent\" domain=%s error=\"%s\"", domain,
			 err);
}

int dmarc_reports_send(struct store_dmarc *st, struct queue *q, const struct config *cfg,
		       int64_t day, FILE *out)
{
	struct send_run run = { st, q, cfg, day, out, 0, false };
	char err[256] = "";

	if (store_dmarc_domains(st, day, true, send_one, &run, err, sizeof(err)) < 0) {
		log_warn("msg=\"cannot read the DMARC report store\" error=\"%s\"", err);
		return -1;
	}
	return run.failed ? -1 : run.queued;
}
