/* DMARC (RFC 7489): the From domain, policy discovery at _dmarc.<From domain> then at the
 * organisational domain (the Public Suffix List through libpsl and Debian's publicsuffix data,
 * loaded once), identifier alignment of SPF and DKIM, and p=/sp=/pct=; and the row an aggregate
 * report (§7.2) counts for each evaluation of a policy with rua=, handed to the recorder cli/
 * wires (this layer opens no files). Failure reports (ruf=) are not sent. */
#include <libpsl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim_internal.h"

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static psl_ctx_t *psl_list; /* read-only after psl_load; never freed (process lifetime) */

static void psl_load(void)
{
	/* psl_latest(NULL) picks the newer of the system's list and the built-in one */
	psl_list = psl_latest(NULL);
	if (psl_list == NULL)
		psl_list = (psl_ctx_t *)psl_builtin();
}

const char *dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = { "none", "pass", "fail", "temperror", "permerror" };
	return (size_t)r < ARRAY_LEN(names) ? names[r] : "none";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const names[] = { "none", "quarantine", "reject" };
	return (size_t)p < ARRAY_LEN(names) ? names[p] : "none";
}

static void lower_copy(char *out, size_t outlen, const char *s, size_t len)
{
	size_t n = len < outlen - 1 ? len : outlen - 1;

	for (size_t i = 0; i < n; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	out[n] = '\0';
}

bool dmarc_org_domain(const char *domain, char *out, size_t outlen)
{
	char lower[256];

	pthread_once(&psl_once, psl_load);
	lower_copy(lower, sizeof(lower), domain, strlen(domain));
	size_t n = strlen(lower);
	if (n > 0 && lower[n - 1] == '.')
		lower[n - 1] = '\0';
	const char *reg = psl_list != NULL ? psl_registrable_domain(psl_list, lower) : NULL;
	if (reg == NULL)
		return false;
	snprintf(out, outlen, "%s", reg);
	return true;
}

/* ---- the record (§6.3) ---- */

static bool tag_value_is(const char *v, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

static int policy_of(const char *v, size_t len, enum dmarc_policy *p)
{
	if (tag_value_is(v, len, "none"))
		*p = DMARC_POLICY_NONE;
	else if (tag_value_is(v, len, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (tag_value_is(v, len, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

static int record_fail(char *err, size_t errlen, const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", why);
	return -1;
}

/* A longer list is cut after its last whole address: those that fit are still usable. */
static void rua_copy(char *out, size_t outlen, const char *val, size_t len)
{
	if (len >= outlen) {
		len = outlen - 1;
		while (len > 0 && val[len] != ',')
			len--;
	}
	memcpy(out, val, len);
	out[len] = '\0';
}

int dmarc_record_parse(const char *text, size_t len, struct dmarc_record *rec, char *err,
		       size_t errlen)
{
	bool have_p = false, have_sp = false, bad_p = false, has_rua = false;
	size_t pos = 0, index = 0;

	rec->p = rec->sp = DMARC_POLICY_NONE;
	rec->pct = 100;
	rec->strict_dkim = rec->strict_spf = false;
	rec->rua[0] = '\0';
	while (pos < len) {
		const char *semi = memchr(text + pos, ';', len - pos);
		size_t end = semi != NULL ? (size_t)(semi - text) : len;
		size_t a = pos, b = end;
		pos = semi != NULL ? end + 1 : len;
		while (a < b && dkim_is_fws((uint8_t)text[a]))
			a++;
		while (b > a && dkim_is_fws((uint8_t)text[b - 1]))
			b--;
		if (a == b)
			continue;
		const char *eq = memchr(text + a, '=', b - a);
		if (eq == NULL)
			return record_fail(err, errlen, "a tag without '='");
		size_t na = a, nb = (size_t)(eq - text), va = nb + 1, vb = b;
		while (nb > na && dkim_is_fws((uint8_t)text[nb - 1]))
			nb--;
		while (va < vb && dkim_is_fws((uint8_t)text[va]))
			va++;
		const char *name = text + na, *val = text + va;
		size_t name_len = nb - na, val_len = vb - va;
		if (index++ == 0) { /* §6.4: v=DMARC1 first, exactly */
			if (!tag_value_is(name, name_len, "v") || val_len != 6 ||
			    memcmp(val, "DMARC1", 6) != 0)
				return record_fail(err, errlen, "does not start with v=DMARC1");
			continue;
		}
		if (tag_value_is(name, name_len, "p")) {
			have_p = true;
			bad_p = policy_of(val, val_len, &rec->p) < 0;
		} else if (tag_value_is(name, name_len, "sp")) {
			have_sp = policy_of(val, val_len, &rec->sp) == 0;
		} else if (tag_value_is(name, name_len, "pct")) {
			uint64_t v;
			if (val_len > 0 && val_len <= 3 && str_to_u64(val, val_len, 100, &v) == 0)
				rec->pct = (unsigned)v; /* an invalid pct is ignored: 100 */
		} else if (tag_value_is(name, name_len, "adkim")) {
			rec->strict_dkim = tag_value_is(val, val_len, "s");
		} else if (tag_value_is(name, name_len, "aspf")) {
			rec->strict_spf = tag_value_is(val, val_len, "s");
		} else if (tag_value_is(name, name_len, "rua")) {
			has_rua = val_len > 0;
			rua_copy(rec->rua, sizeof(rec->rua), val, val_len);
		}
	}
	if (index == 0)
		return record_fail(err, errlen, "empty record");
	if (!have_p || bad_p) {
		/* §6.6.3: without a valid p=, a record with rua= counts as p=none */
		if (!has_rua)
			return record_fail(err, errlen, "no valid p= tag");
		rec->p = DMARC_POLICY_NONE;
	}
	if (!have_sp)
		rec->sp = rec->p;
	return 0;
}

/* ---- the From domain (§6.6.1) ---- */

/* Walks a From value outside comments and quoted strings: counts top-level commas (more than
 * one mailbox) and finds the address, in <> when there is an angle-addr. */
static bool from_address(const char *v, size_t len, const char **addr_r, size_t *addr_len_r)
{
	int comment = 0;
	bool quoted = false;
	size_t angle_start = 0, angle_end = 0, commas = 0;

	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
		} else if (comment > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
		} else if (c == '"') {
			quoted = true;
		} else if (c == '(') {
			comment++;
		} else if (c == ',') {
			commas++;
		} else if (c == '<' && angle_start == 0) {
			angle_start = i + 1;
		} else if (c == '>' && angle_start != 0 && angle_end == 0) {
			angle_end = i;
		}
	}
	if (commas > 0)
		return false;
	if (angle_start != 0 && angle_end > angle_start) {
		*addr_r = v + angle_start;
		*addr_len_r = angle_end - angle_start;
	} else {
		*addr_r = v;
		*addr_len_r = len;
	}
	return true;
}

static bool domain_chars_ok(const char *d, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= 'A' && d[i] <= 'Z') ||
		      (d[i] >= '0' && d[i] <= '9') || d[i] == '-' || d[i] == '.' || d[i] == '_'))
			return false;
	return true;
}

bool dmarc_from_domain(const uint8_t *msg, size_t len, char *out, size_t outlen,
		       const char **reason_r)
{
	struct dkim_header h;
	const struct dkim_field *from = NULL;
	bool ok = false;

	*reason_r = "no From field";
	if (dkim_header_parse(msg, len, &h) < 0) {
		*reason_r = "too many header fields";
		return false;
	}
	for (size_t i = 0; i < h.count; i++)
		if (dkim_field_is(&h.fields[i], "from", 4)) {
			if (from != NULL) {
				*reason_r = "more than one From field";
				free(h.fields);
				return false;
			}
			from = &h.fields[i];
		}
	if (from != NULL) {
		const char *v = memchr(from->p, ':', from->len);
		size_t vlen = from->len - (size_t)((const uint8_t *)v + 1 - from->p);
		const char *addr;
		size_t alen;
		v++;
		if (!from_address(v, vlen, &addr, &alen)) {
			*reason_r = "more than one address in From";
		} else {
			const char *at = NULL;
			for (size_t i = 0; i < alen; i++)
				if (addr[i] == '@')
					at = addr + i;
			size_t dlen = at != NULL ? alen - (size_t)(at + 1 - addr) : 0;
			const char *d = at != NULL ? at + 1 : NULL;
			while (dlen > 0 && dkim_is_fws((uint8_t)d[dlen - 1]))
				dlen--;
			while (dlen > 0 && dkim_is_fws((uint8_t)*d)) {
				d++;
				dlen--;
			}
			if (dlen > 0 && d[dlen - 1] == '.')
				dlen--;
			if (d == NULL || !domain_chars_ok(d, dlen)) {
				*reason_r = "no domain in From";
			} else {
				lower_copy(out, outlen, d, dlen);
				ok = true;
			}
		}
	}
	free(h.fields);
	return ok;
}

/* ---- discovery and alignment (§6.6) ---- */

/* 1 found (rec filled), 0 none usable, -1 temporary failure. */
static int record_at(struct mailauth_dns *dns, const char *domain, struct dmarc_record *rec)
{
	struct dns_answer ans;
	char name[300];
	size_t found = 0, which = 0;
	int r = 0;

	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	mailauth_dns_query(dns, name, DNS_TXT, &ans);
	if (ans.status == DNS_TEMPFAIL) {
		dns_answer_free(&ans);
		return -1;
	}
	for (size_t i = 0; ans.status == DNS_OK && i < ans.count; i++)
		if (ans.records[i].text_len >= 8 &&
		    strncmp(ans.records[i].text, "v=DMARC1", 8) == 0) {
			found++;
			which = i;
		}
	/* §6.6.3: several records are as good as none */
	if (found == 1 && dmarc_record_parse(ans.records[which].text, ans.records[which].text_len,
					     rec, NULL, 0) == 0)
		r = 1;
	dns_answer_free(&ans);
	return r;
}

static bool aligned(const char *a, const char *b, bool strict)
{
	char oa[256], ob[256];

	if (strcasecmp(a, b) == 0)
		return true;
	if (strict || !dmarc_org_domain(a, oa, sizeof(oa)) || !dmarc_org_domain(b, ob, sizeof(ob)))
		return false;
	return strcmp(oa, ob) == 0;
}

void dmarc_check(struct mailauth_dns *dns, const char *from_domain, const char *spf_domain,
		 const char *const *dkim_domains, size_t dkim_count, unsigned roll,
		 struct dmarc_outcome *out)
{
	struct dmarc_record rec;
	char org[256];
	bool at_org = false;
	int found;

	memset(out, 0, sizeof(*out));
	snprintf(out->from_domain, sizeof(out->from_domain), "%s", from_domain);
	found = record_at(dns, from_domain, &rec);
	if (found == 0 && dmarc_org_domain(from_domain, org, sizeof(org)) &&
	    strcasecmp(org, from_domain) != 0) {
		found = record_at(dns, org, &rec);
		at_org = true;
	}
	if (found < 0) {
		out->result = DMARC_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason), "DNS lookup of the policy failed");
		return;
	}
	if (found == 0) {
		out->result = DMARC_NONE;
		snprintf(out->reason, sizeof(out->reason), "no policy published");
		return;
	}
	out->policy = at_org ? rec.sp : rec.p;
	out->published = rec;
	snprintf(out->published_domain, sizeof(out->published_domain), "%s",
		 at_org ? org : from_domain);
	bool spf_ok = spf_domain != NULL && aligned(spf_domain, from_domain, rec.strict_spf);
	bool dkim_ok = false;
	for (size_t i = 0; i < dkim_count && !dkim_ok; i++)
		dkim_ok = aligned(dkim_domains[i], from_domain, rec.strict_dkim);
	out->spf_aligned = spf_ok;
	out->dkim_aligned = dkim_ok;
	if (spf_ok || dkim_ok) {
		out->result = DMARC_PASS;
		out->disposition = DMARC_POLICY_NONE;
		snprintf(out->reason, sizeof(out->reason), "%s aligned",
			 dkim_ok ? (spf_ok ? "DKIM and SPF" : "DKIM") : "SPF");
		return;
	}
	out->result = DMARC_FAIL;
	out->disposition = out->policy;
	/* §6.6.4: a message left out by pct gets the next policy down */
	if (roll >= rec.pct && out->disposition != DMARC_POLICY_NONE)
		out->disposition--;
	snprintf(out->reason, sizeof(out->reason), "neither SPF nor DKIM aligned with %.100s",
		 from_domain);
}

/* ---- aggregate report data (§7.2) ---- */

static const char *dkim_status_report_name(enum dkim_status st)
{
	switch (st) {
	case DKIM_PASS: return "pass";
	case DKIM_FAIL: return "fail";
	case DKIM_TEMPERROR: return "temperror";
	default: return "permerror";
	}
}

/* The signature a report shows: the first that passed, else the first there is. Appendix C
 * allows several; one keeps the rows few, and the aligned flag says the rest. */
static void report_dkim(const struct mailauth_report *r, struct dmarc_report_row *row)
{
	int pick = -1;

	for (int i = 0; i < r->dkim_count && pick < 0; i++)
		if (r->dkim[i].status == DKIM_PASS && !r->dkim[i].body_partial)
			pick = i;
	if (pick < 0 && r->dkim_count > 0)
		pick = 0;
	row->dkim_result = pick < 0 ? "none" : dkim_status_report_name(r->dkim[pick].status);
	if (pick >= 0)
		lower_copy(row->dkim_domain, sizeof(row->dkim_domain), r->dkim[pick].domain,
			   strlen(r->dkim[pick].domain));
}

bool dmarc_report_row_make(const struct mailauth_report *r, const char *ip,
			   struct dmarc_report_row *row)
{
	const struct dmarc_outcome *d = &r->dmarc;

	if ((d->result != DMARC_PASS && d->result != DMARC_FAIL) || d->published.rua[0] == '\0')
		return false;
	memset(row, 0, sizeof(*row));
	snprintf(row->header_from, sizeof(row->header_from), "%s", d->from_domain);
	snprintf(row->source_ip, sizeof(row->source_ip), "%s", ip != NULL ? ip : "");
	row->disposition = dmarc_policy_name(d->disposition);
	row->dkim_aligned = d->dkim_aligned ? "pass" : "fail";
	row->spf_aligned = d->spf_aligned ? "pass" : "fail";
	report_dkim(r, row);
	lower_copy(row->spf_domain, sizeof(row->spf_domain), r->spf.domain, strlen(r->spf.domain));
	row->spf_scope = r->spf.helo_identity ? "helo" : "mfrom";
	row->spf_result = spf_result_name(r->spf.result);
	snprintf(row->policy_domain, sizeof(row->policy_domain), "%s", d->published_domain);
	row->policy = d->published;
	return true;
}

void dmarc_report_record(const struct mailauth_settings *s, const struct mailauth_report *r,
			 const char *ip)
{
	struct dmarc_report_row *row;

	if (s->dmarc_recorder == NULL)
		return;
	row = xmalloc(sizeof(*row)); /* about 2 KiB: kept off the worker's stack */
	if (dmarc_report_row_make(r, ip, row))
		s->dmarc_recorder(s->dmarc_recorder_ctx, row);
	free(row);
}
