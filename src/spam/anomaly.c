/* Header and MIME anomalies that bulk and malicious mail shows far more often than mail people
 * write: each rule is a small, fixed number of points (spam.h lists them) so that none decides
 * alone, and each names itself in X-Spam-Status. The rules are picked for a low false-positive
 * rate on ordinary mail: a plain display name holding another address is left alone (mailing
 * lists write "'alice@example.org' via Group"), only an RFC 2047-encoded one counts, because
 * encoding it hides the address from a naive filter and has no other reason. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../mime/mime.h"
#include "spam.h"

#define DAY_SECONDS 86400

static void add_test(struct buf *tests, const char *name, double points, double *total)
{
	buf_printf(tests, ",%s", name);
	*total += points;
}

/* Date: missing, or beyond a day in the future (a clock that wrong is a forger's), or older
 * than SPAM_ANOMALY_DATE_PAST_DAYS (mail that old arriving now was held back or replayed). */
static void date_rules(const struct mime_message *mm, int64_t now, struct buf *tests,
		       double *total)
{
	struct buf v;
	int64_t when;
	int tz;

	buf_init(&v);
	if (mime_header_get(mm, mime_root(mm), "date", 0, &v) < 0) {
		add_test(tests, "MISSING_DATE", SPAM_POINTS_MISSING_DATE, total);
	} else if (mime_parse_date((const char *)v.data, v.len, &when, &tz) == 0) {
		if (when > now + DAY_SECONDS)
			add_test(tests, "DATE_IN_FUTURE", SPAM_POINTS_DATE_FUTURE, total);
		else if (when < now - (int64_t)SPAM_ANOMALY_DATE_PAST_DAYS * DAY_SECONDS)
			add_test(tests, "DATE_IN_PAST", SPAM_POINTS_DATE_PAST, total);
	}
	buf_free(&v);
}

/* The domain of the first "local@domain.tld" in s (lower case) into out; false without one. */
static bool address_domain_in(const char *s, size_t len, char *out, size_t outlen)
{
	for (size_t i = 1; i + 1 < len; i++) {
		if (s[i] != '@' || s[i - 1] == ' ' || s[i - 1] == '<')
			continue;
		size_t j = i + 1, n = 0;
		bool dot = false;
		while (j < len && n + 1 < outlen &&
		       ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
			(s[j] >= '0' && s[j] <= '9') || s[j] == '-' || s[j] == '.')) {
			dot = dot || s[j] == '.';
			out[n++] = (char)(s[j] >= 'A' && s[j] <= 'Z' ? s[j] + 32 : s[j]);
			j++;
		}
		while (n > 0 && out[n - 1] == '.')
			n--;
		out[n] = '\0';
		if (dot && n > 2)
			return true;
	}
	return false;
}

/* From: an encoded display name that shows an address of another domain than the one the
 * message is really from ("=?utf-8?B?...?=" decoding to "ceo@bank.example" <x@elsewhere>). */
static void from_rule(const struct mime_message *mm, struct buf *tests, double *total)
{
	struct buf v, name;
	char shown[256], real[256];

	buf_init(&v);
	buf_init(&name);
	if (mime_header_get(mm, mime_root(mm), "from", 0, &v) == 0) {
		const char *s = buf_cstr(&v);
		const char *lt = strrchr(s, '<');
		if (lt != NULL && lt > s && strstr(s, "=?") != NULL && strstr(s, "=?") < lt) {
			mime_decode_words(s, (size_t)(lt - s), &name);
			if (address_domain_in((const char *)name.data, name.len, shown,
					      sizeof(shown)) &&
			    address_domain_in(lt, strlen(lt), real, sizeof(real)) &&
			    strcmp(shown, real) != 0)
				add_test(tests, "FROM_NAME_SPOOF", SPAM_POINTS_FROM_NAME_SPOOF, total);
		}
	}
	buf_free(&v);
	buf_free(&name);
}

static void subject_rule(const struct mime_message *mm, struct buf *tests, double *total)
{
	struct buf v, text;
	size_t upper = 0, lower = 0;

	buf_init(&v);
	buf_init(&text);
	if (mime_header_get(mm, mime_root(mm), "subject", 0, &v) == 0) {
		mime_decode_words((const char *)v.data, v.len, &text);
		for (size_t i = 0; i < text.len; i++) {
			upper += text.data[i] >= 'A' && text.data[i] <= 'Z';
			lower += text.data[i] >= 'a' && text.data[i] <= 'z';
		}
		if (upper >= SPAM_ANOMALY_CAPS_LETTERS && lower == 0)
			add_test(tests, "SUBJECT_ALL_CAPS", SPAM_POINTS_SUBJECT_CAPS, total);
	}
	buf_free(&v);
	buf_free(&text);
}

/* Addresses in To and Cc together, counted by their '@' (every field of each name). */
static void recipients_rule(const struct mime_message *mm, struct buf *tests, double *total)
{
	static const char *const fields[] = { "to", "cc" };
	size_t count = 0;

	for (size_t f = 0; f < ARRAY_LEN(fields); f++) {
		for (size_t nth = 0; nth < 16; nth++) {
			struct buf v;
			buf_init(&v);
			if (mime_header_get(mm, mime_root(mm), fields[f], nth, &v) < 0) {
				buf_free(&v);
				break;
			}
			for (size_t i = 0; i < v.len; i++)
				count += v.data[i] == '@';
			buf_free(&v);
		}
	}
	if (count > SPAM_ANOMALY_MAX_RECIPIENTS)
		add_test(tests, "MANY_RECIPIENTS", SPAM_POINTS_MANY_RECIPIENTS, total);
}

static bool executable_name(const char *name, size_t len)
{
	static const char *const exts[] = { ".exe", ".scr", ".pif", ".com", ".bat", ".cmd",
					     ".vbs", ".vbe", ".js",  ".jse", ".wsf", ".hta",
					     ".jar", ".msi", ".lnk", ".ps1", ".cpl", ".iso" };

	while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '.'))
		len--; /* Windows ignores trailing dots and spaces: "x.exe." runs */
	for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
		size_t n = strlen(exts[i]);
		if (len > n && strncasecmp(name + len - n, exts[i], n) == 0)
			return true;
	}
	return false;
}

static bool part_is_executable(const struct mime_part *p)
{
	struct buf name;
	bool exe = false;

	buf_init(&name);
	if (mime_param_decode(p->disp_params, p->disp_param_count, "filename", &name) == 0)
		exe = executable_name((const char *)name.data, name.len);
	buf_reset(&name);
	if (!exe && mime_param_decode(p->params, p->param_count, "name", &name) == 0)
		exe = executable_name((const char *)name.data, name.len);
	buf_free(&name);
	return exe;
}

struct walk {
	bool text, executable;
	unsigned parts;
};

/* Every part of the tree (encapsulated messages included), bounded by the parser's limits. */
static void walk_parts(const struct mime_part *p, struct walk *w)
{
	if (p == NULL || w->parts++ > 1000)
		return;
	if (strcmp(p->type, "text") == 0 && p->disposition == NULL)
		w->text = true;
	if (!mime_part_is_multipart(p) && part_is_executable(p))
		w->executable = true;
	for (const struct mime_part *c = p->first_child; c != NULL; c = c->next_sibling)
		walk_parts(c, w);
	walk_parts(p->message, w);
}

static void mime_rules(const struct mime_message *mm, struct buf *tests, double *total)
{
	const struct mime_part *root = mime_root(mm);
	struct walk w = { false, false, 0 };

	walk_parts(root, &w);
	if (w.executable)
		add_test(tests, "EXECUTABLE_ATTACHMENT", SPAM_POINTS_EXECUTABLE, total);
	if (mime_part_is_multipart(root) && !w.text)
		add_test(tests, "NO_TEXT_PART", SPAM_POINTS_NO_TEXT_PART, total);
}

double spam_anomaly_points(const uint8_t *msg, size_t len, int64_t now, struct buf *tests)
{
	struct mime_message *mm = mime_parse(msg, len, NULL);
	struct buf v;
	double total = 0.0;

	date_rules(mm, now, tests, &total);
	buf_init(&v);
	if (mime_header_get(mm, mime_root(mm), "message-id", 0, &v) < 0)
		add_test(tests, "MISSING_MESSAGE_ID", SPAM_POINTS_MISSING_MESSAGE_ID, &total);
	buf_free(&v);
	from_rule(mm, tests, &total);
	subject_rule(mm, tests, &total);
	recipients_rule(mm, tests, &total);
	mime_rules(mm, tests, &total);
	mime_message_free(&mm);
	return total;
}
