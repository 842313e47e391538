/* DMARC aggregate reports (RFC 7489 §7.2): the XML of Appendix C from counted rows, its gzip
 * compression, the mail that carries it (§7.2.1.1 subject and file name), and the reading of
 * a policy's rua= list (mailto: URIs with an optional !size limit, §6.2). Pure functions over
 * memory: where the rows come from and how the mail is sent is for cli/. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "dkim_internal.h"

static void xml_text(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '&': buf_append_str(out, "&amp;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		default:
			/* control characters are not allowed in XML 1.0 text */
			buf_append_byte(out, (uint8_t)*s < 0x20 ? '?' : (uint8_t)*s);
		}
	}
}

static void xml_element(struct buf *out, const char *indent, const char *name, const char *text)
{
	buf_printf(out, "%s<%s>", indent, name);
	xml_text(out, text);
	buf_printf(out, "</%s>\n", name);
}

static void xml_policy(struct buf *out, const char *domain, const struct dmarc_record *p)
{
	char pct[8];

	snprintf(pct, sizeof(pct), "%u", p->pct);
	buf_append_str(out, "  <policy_published>\n");
	xml_element(out, "    ", "domain", domain);
	xml_element(out, "    ", "adkim", p->strict_dkim ? "s" : "r");
	xml_element(out, "    ", "aspf", p->strict_spf ? "s" : "r");
	xml_element(out, "    ", "p", dmarc_policy_name(p->p));
	xml_element(out, "    ", "sp", dmarc_policy_name(p->sp));
	xml_element(out, "    ", "pct", pct);
	xml_element(out, "    ", "fo", "0"); /* we send no failure reports: the default */
	buf_append_str(out, "  </policy_published>\n");
}

static void xml_record(struct buf *out, const struct dmarc_report_row *row, uint64_t count)
{
	buf_append_str(out, "  <record>\n    <row>\n");
	xml_element(out, "      ", "source_ip", row->source_ip);
	buf_printf(out, "      <count>%llu</count>\n", (unsigned long long)count);
	buf_append_str(out, "      <policy_evaluated>\n");
	xml_element(out, "        ", "disposition", row->disposition);
	xml_element(out, "        ", "dkim", row->dkim_aligned);
	xml_element(out, "        ", "spf", row->spf_aligned);
	buf_append_str(out, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
	xml_element(out, "      ", "header_from", row->header_from);
	buf_append_str(out, "    </identifiers>\n    <auth_results>\n");
	if (row->dkim_domain[0] != '\0') {
		buf_append_str(out, "      <dkim>\n");
		xml_element(out, "        ", "domain", row->dkim_domain);
		xml_element(out, "        ", "result", row->dkim_result);
		buf_append_str(out, "      </dkim>\n");
	}
	buf_append_str(out, "      <spf>\n");
	xml_element(out, "        ", "domain", row->spf_domain);
	xml_element(out, "        ", "scope", row->spf_scope);
	xml_element(out, "        ", "result", row->spf_result);
	buf_append_str(out, "      </spf>\n    </auth_results>\n  </record>\n");
}

void dmarc_report_xml(const struct dmarc_report_meta *m, const struct dmarc_report_row *rows,
		      const uint64_t *counts, size_t n, struct buf *out)
{
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
	buf_append_str(out, "  <version>1.0</version>\n  <report_metadata>\n");
	xml_element(out, "    ", "org_name", m->org_name);
	xml_element(out, "    ", "email", m->email);
	xml_element(out, "    ", "report_id", m->report_id);
	buf_printf(out, "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n"
			"    </date_range>\n  </report_metadata>\n",
		   (long long)m->begin, (long long)m->end);
	xml_policy(out, m->policy_domain, m->policy);
	for (size_t i = 0; i < n; i++)
		xml_record(out, &rows[i], counts[i]);
	buf_append_str(out, "</feedback>\n");
}

int dmarc_report_gzip(const uint8_t *data, size_t len, struct buf *out)
{
	z_stream z;
	int rc;

	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper (RFC 1952), not zlib's own */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -1;
	size_t bound = deflateBound(&z, (uLong)len);
	buf_reserve(out, bound);
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = out->data + out->len;
	z.avail_out = (uInt)bound;
	rc = deflate(&z, Z_FINISH);
	if (rc == Z_STREAM_END)
		out->len += bound - z.avail_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

void dmarc_report_file_name(const struct dmarc_report_meta *m, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s!%s!%lld!%lld.xml.gz", m->org_name, m->policy_domain,
		 (long long)m->begin, (long long)m->end);
}

static void rfc5322_date(int64_t when, char *out, size_t outlen)
{
	time_t t = (time_t)when;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

void dmarc_report_message(const struct dmarc_report_meta *m, const char *to, int64_t now,
			  const uint8_t *gz, size_t gz_len, struct buf *out)
{
	char date[64], name[600];
	struct buf b64;

	rfc5322_date(now, date, sizeof(date));
	dmarc_report_file_name(m, name, sizeof(name));
	buf_printf(out, "From: %s\r\nTo: %s\r\nDate: %s\r\n", m->email, to, date);
	buf_printf(out, "Message-ID: <%s@%s>\r\n", m->report_id, m->org_name);
	/* §7.2.1.1 dmarc-subject, folded as its example is */
	buf_printf(out, "Subject: Report Domain: %s\r\n Submitter: %s\r\n Report-ID: <%s>\r\n",
		   m->policy_domain, m->org_name, m->report_id);
	buf_printf(out, "MIME-Version: 1.0\r\n"
			"Content-Type: multipart/mixed; boundary=\"=_dmarc_%s\"\r\n\r\n",
		   m->report_id);
	buf_printf(out, "--=_dmarc_%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
			"This is a DMARC aggregate report (RFC 7489) for %s from %s.\r\n\r\n",
		   m->report_id, m->policy_domain, m->org_name);
	buf_printf(out, "--=_dmarc_%s\r\nContent-Type: application/gzip; name=\"%s\"\r\n"
			"Content-Transfer-Encoding: base64\r\n"
			"Content-Disposition: attachment; filename=\"%s\"\r\n\r\n",
		   m->report_id, name, name);
	buf_init(&b64);
	b64_encode(&b64, gz, gz_len);
	for (size_t i = 0; i < b64.len; i += 76) {
		size_t n = b64.len - i < 76 ? b64.len - i : 76;
		buf_append(out, b64.data + i, n);
		buf_append_str(out, "\r\n");
	}
	buf_free(&b64);
	buf_printf(out, "--=_dmarc_%s--\r\n", m->report_id);
}

/* "!10m": a size with an optional k/m/g/t unit (§6.2); 0 when absent or unreadable. */
static uint64_t rua_size_limit(const char *s, size_t len)
{
	uint64_t v, mult = 1;

	if (len == 0)
		return 0;
	switch (s[len - 1] | 0x20) {
	case 'k': mult = 1ull << 10; len--; break;
	case 'm': mult = 1ull << 20; len--; break;
	case 'g': mult = 1ull << 30; len--; break;
	case 't': mult = 1ull << 40; len--; break;
	default: break;
	}
	if (len == 0 || len > 12 || str_to_u64(s, len, UINT64_MAX / (1ull << 40), &v) < 0)
		return 0;
	return v * mult;
}

/* One URI of the list: "mailto:" address ["!" size]; false for another scheme or no '@'. */
static bool rua_entry(const char *s, size_t len, struct dmarc_rua *out)
{
	while (len > 0 && dkim_is_fws((uint8_t)*s)) {
		s++;
		len--;
	}
	while (len > 0 && dkim_is_fws((uint8_t)s[len - 1]))
		len--;
	if (len < 7 || strncasecmp(s, "mailto:", 7) != 0)
		return false;
	s += 7;
	len -= 7;
	const char *bang = memchr(s, '!', len);
	size_t addr_len = bang != NULL ? (size_t)(bang - s) : len;
	out->max_size = bang != NULL ? rua_size_limit(bang + 1, len - addr_len - 1) : 0;
	const char *at = memchr(s, '@', addr_len);
	if (at == NULL || at == s || addr_len >= sizeof(out->address) ||
	    (size_t)(at - s) + 1 == addr_len || memchr(s, '?', addr_len) != NULL)
		return false;
	memcpy(out->address, s, addr_len);
	out->address[addr_len] = '\0';
	snprintf(out->domain, sizeof(out->domain), "%s", out->address + (at - s) + 1);
	for (char *p = out->domain; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return true;
}

size_t dmarc_rua_parse(const char *rua, struct dmarc_rua *out, size_t max)
{
	size_t n = 0, len = strlen(rua), pos = 0;

	while (pos < len && n < max) {
		const char *comma = memchr(rua + pos, ',', len - pos);
		size_t end = comma != NULL ? (size_t)(comma - rua) : len;
		if (rua_entry(rua + pos, end - pos, &out[n]))
			n++;
		pos = end + 1;
	}
	return n;
}
