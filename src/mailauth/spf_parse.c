/* SPF record syntax (RFC 7208 §4.6, §12) and macro expansion (§7). A record is parsed whole
 * before any term is evaluated, so a syntax error anywhere is a permerror even when an earlier
 * mechanism would have matched (§4.6). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf_internal.h"

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int fail(char *err, size_t errlen, const char *what, const char *term, size_t len)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %.*s", what, (int)(len > 60 ? 60 : len), term);
	return -1;
}

bool spf_is_record(const char *text, size_t len)
{
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 && (len == 6 || text[6] == ' ');
}

static bool macro_letter(char c, bool exp_text)
{
	switch (c | 0x20) {
	case 's': case 'l': case 'o': case 'd': case 'i': case 'p': case 'h': case 'v':
		return true;
	case 'c': case 'r': case 't':
		return exp_text;
	default:
		return false;
	}
}

static bool is_delimiter(char c)
{
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

/* §7.1: a macro-expand starting at s[0] == '%'; *len_r its length. */
static bool macro_syntax(const char *s, size_t len, bool exp_text, size_t *len_r)
{
	if (len < 2)
		return false;
	if (s[1] == '%' || s[1] == '_' || s[1] == '-') {
		*len_r = 2;
		return true;
	}
	if (s[1] != '{' || len < 4 || !macro_letter(s[2], exp_text))
		return false;
	size_t i = 3;
	bool nonzero = false;
	for (; i < len && is_digit(s[i]); i++)
		if (s[i] != '0')
			nonzero = true;
	if (i > 3 && !nonzero)
		return false; /* §7.1: the DIGIT transformer must be nonzero */
	if (i < len && (s[i] == 'r' || s[i] == 'R'))
		i++;
	while (i < len && is_delimiter(s[i]))
		i++;
	if (i >= len || s[i] != '}')
		return false;
	*len_r = i + 1;
	return true;
}

static bool macro_string_ok(const char *s, size_t len, bool exp_text)
{
	for (size_t i = 0; i < len;) {
		size_t n;
		if (s[i] == '%') {
			if (!macro_syntax(s + i, len - i, exp_text, &n))
				return false;
			i += n;
		} else if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
			if (!(exp_text && s[i] == ' '))
				return false;
			i++;
		} else {
			i++;
		}
	}
	return true;
}

/* §12 domain-end: "." toplabel ["."] or a macro-expand. */
static bool domain_spec_ok(const char *s, size_t len)
{
	if (len == 0 || !macro_string_ok(s, len, false))
		return false;
	if (s[len - 1] == '}')
		return true;
	if (s[len - 1] == '.')
		len--;
	size_t start = len;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == 0 || start == len)
		return false; /* no dot, or an empty last label */
	bool alpha = false;
	for (size_t i = start; i < len; i++) {
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
			return false;
		alpha = alpha || is_alpha(s[i]) || s[i] == '-';
	}
	return alpha && s[start] != '-' && s[len - 1] != '-';
}

/* Reads a cidr length "/N" ending at s[len], N <= max; returns how many characters it took
 * (0: none there). -1 for a malformed one. */
static int cidr_suffix(const char *s, size_t len, unsigned max, unsigned *bits_r)
{
	size_t i = len;
	while (i > 0 && is_digit(s[i - 1]))
		i--;
	if (i == len || i == 0 || s[i - 1] != '/')
		return 0;
	size_t digits = len - i;
	if (digits > 3 || (digits > 1 && s[i] == '0'))
		return -1;
	unsigned v = (unsigned)strtoul(s + i, NULL, 10);
	if (v > max)
		return -1;
	*bits_r = v;
	return (int)(digits + 1);
}

/* a and mx: [":" domain-spec] [ip4-cidr] ["//" ip6-cidr] after the name. */
static int parse_dual(const char *arg, size_t len, struct spf_term *t)
{
	int n;
	unsigned bits;

	/* "//N" at the end: the IPv6 length */
	n = cidr_suffix(arg, len, 128, &bits);
	if (n < 0)
		return -1;
	if (n > 0 && len >= (size_t)n + 1 && arg[len - (size_t)n - 1] == '/') {
		t->cidr6 = bits;
		len -= (size_t)n + 1;
		n = cidr_suffix(arg, len, 32, &bits);
		if (n < 0)
			return -1;
	} else if (n > 0) {
		n = cidr_suffix(arg, len, 32, &bits);
		if (n < 0)
			return -1;
	}
	if (n > 0) {
		t->cidr4 = bits;
		len -= (size_t)n;
	}
	if (len == 0)
		return 0;
	if (arg[0] != ':' || !domain_spec_ok(arg + 1, len - 1))
		return -1;
	t->spec = arg + 1;
	t->spec_len = len - 1;
	return 0;
}

static int parse_ip(const char *arg, size_t len, bool v6, struct spf_term *t)
{
	char text[64];
	unsigned bits;
	int n;

	if (len < 2 || arg[0] != ':')
		return -1;
	arg++;
	len--;
	n = cidr_suffix(arg, len, v6 ? 128 : 32, &bits);
	if (n < 0)
		return -1;
	if (n > 0) {
		len -= (size_t)n;
		if (v6)
			t->cidr6 = bits;
		else
			t->cidr4 = bits;
	}
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, arg, len);
	text[len] = '\0';
	return inet_pton(v6 ? AF_INET6 : AF_INET, text, t->addr) == 1 ? 0 : -1;
}

static const struct {
	const char *name;
	enum spf_mech mech;
} mechanisms[] = {
	{ "all", SPF_MECH_ALL },	 { "include", SPF_MECH_INCLUDE }, { "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX },		 { "ptr", SPF_MECH_PTR },	  { "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 },	 { "exists", SPF_MECH_EXISTS },
};

static int parse_mechanism(const char *term, size_t len, struct spf_term *t)
{
	size_t name_len = 0;

	t->qualifier = '+';
	if (len > 0 && strchr("+-~?", term[0]) != NULL) {
		t->qualifier = term[0];
		term++;
		len--;
	}
	while (name_len < len && (is_alpha(term[name_len]) || is_digit(term[name_len])))
		name_len++;
	t->spec = NULL;
	t->spec_len = 0;
	t->cidr4 = 32;
	t->cidr6 = 128;
	for (size_t i = 0; i < ARRAY_LEN(mechanisms); i++) {
		if (strlen(mechanisms[i].name) != name_len ||
		    strncasecmp(term, mechanisms[i].name, name_len) != 0)
			continue;
		const char *arg = term + name_len;
		size_t arg_len = len - name_len;
		t->mech = mechanisms[i].mech;
		switch (t->mech) {
		case SPF_MECH_ALL:
			return arg_len == 0 ? 0 : -1;
		case SPF_MECH_INCLUDE:
		case SPF_MECH_EXISTS:
			if (arg_len < 2 || arg[0] != ':' || !domain_spec_ok(arg + 1, arg_len - 1))
				return -1;
			t->spec = arg + 1;
			t->spec_len = arg_len - 1;
			return 0;
		case SPF_MECH_PTR:
			if (arg_len == 0)
				return 0;
			if (arg[0] != ':' || !domain_spec_ok(arg + 1, arg_len - 1))
				return -1;
			t->spec = arg + 1;
			t->spec_len = arg_len - 1;
			return 0;
		case SPF_MECH_A:
		case SPF_MECH_MX:
			return parse_dual(arg, arg_len, t);
		case SPF_MECH_IP4:
		case SPF_MECH_IP6:
			return parse_ip(arg, arg_len, t->mech == SPF_MECH_IP6, t);
		}
	}
	return -1;
}

/* name "=" macro-string (§6); true when term is a modifier at all. */
static bool modifier_name(const char *term, size_t len, size_t *name_len_r)
{
	size_t i = 0;

	if (len == 0 || !is_alpha(term[0]))
		return false;
	while (i < len && (is_alpha(term[i]) || is_digit(term[i]) || term[i] == '-' ||
			   term[i] == '_' || term[i] == '.'))
		i++;
	*name_len_r = i;
	return i < len && term[i] == '=';
}

static int parse_modifier(const char *term, size_t len, size_t name_len, struct spf_record *rec,
			  char *err, size_t errlen)
{
	const char *val = term + name_len + 1;
	size_t val_len = len - name_len - 1;

	if (name_len == 8 && strncasecmp(term, "redirect", 8) == 0) {
		if (rec->redirect != NULL)
			return fail(err, errlen, "redirect= twice", term, len);
		if (!domain_spec_ok(val, val_len))
			return fail(err, errlen, "malformed redirect", term, len);
		rec->redirect = val;
		rec->redirect_len = val_len;
	} else if (name_len == 3 && strncasecmp(term, "exp", 3) == 0) {
		if (rec->exp != NULL)
			return fail(err, errlen, "exp= twice", term, len);
		if (!domain_spec_ok(val, val_len))
			return fail(err, errlen, "malformed exp", term, len);
		rec->exp = val;
		rec->exp_len = val_len;
	} else if (!macro_string_ok(val, val_len, false)) {
		/* §6: unknown modifiers are ignored, but their syntax still counts */
		return fail(err, errlen, "malformed modifier", term, len);
	}
	return 0;
}

int spf_record_parse(const char *text, size_t len, struct spf_record *rec, char *err,
		     size_t errlen)
{
	size_t pos = 6;

	memset(rec, 0, sizeof(*rec));
	if (!spf_is_record(text, len))
		return fail(err, errlen, "not an SPF record", text, len);
	while (pos < len) {
		if (text[pos] != ' ')
			return fail(err, errlen, "terms must be separated by spaces", text + pos,
				    len - pos);
		while (pos < len && text[pos] == ' ')
			pos++;
		if (pos == len)
			break;
		size_t end = pos;
		while (end < len && text[end] != ' ')
			end++;
		const char *term = text + pos;
		size_t term_len = end - pos, name_len;
		if (modifier_name(term, term_len, &name_len)) {
			if (parse_modifier(term, term_len, name_len, rec, err, errlen) < 0)
				return -1;
		} else {
			if (rec->count == LIMIT_SPF_TERMS)
				return fail(err, errlen, "too many terms", term, term_len);
			if (parse_mechanism(term, term_len, &rec->terms[rec->count]) < 0)
				return fail(err, errlen, "unknown or malformed mechanism", term,
					    term_len);
			rec->count++;
		}
		pos = end;
	}
	return 0;
}

int spf_record_check(const char *text, size_t len, char *err, size_t errlen)
{
	struct spf_record *rec = xmalloc(sizeof(*rec));
	int r = spf_record_parse(text, len, rec, err, errlen);

	free(rec);
	return r;
}

/* ---- macros (§7) ---- */

static const char *macro_value(const struct spf_macro_vars *v, char letter, char *tmp,
			       size_t tmplen)
{
	switch (letter | 0x20) {
	case 's': return v->sender;
	case 'l': return v->local;
	case 'o': return v->sender_domain;
	case 'd': return v->domain;
	case 'i': return v->ip_dotted;
	case 'p': return "unknown"; /* §7.3 discourages p; "unknown" is what it gives without a
				       validated name, and it saves the PTR lookups */
	case 'v': return v->ipv6 ? "ip6" : "in-addr";
	case 'h': return v->helo;
	case 'c': return v->ip_text;
	case 'r': return v->receiver;
	case 't': snprintf(tmp, tmplen, "%lld", (long long)v->now); return tmp;
	default: return "";
	}
}

/* Splits value at delims, reverses when asked, keeps the right-most keep parts (0: all),
 * joined with '.' (§7.3). */
static void transform(const char *value, const char *delims, size_t ndelims, bool reverse,
		      unsigned long keep, bool escape, struct buf *out)
{
	const char *parts[128];
	size_t lens[128], n = 0, start = 0, vlen = strlen(value);

	for (size_t i = 0; i <= vlen && n < ARRAY_LEN(parts); i++) {
		bool delim = i == vlen || memchr(delims, value[i], ndelims) != NULL;
		if (!delim)
			continue;
		parts[n] = value + start;
		lens[n++] = i - start;
		start = i + 1;
	}
	if (reverse)
		for (size_t a = 0, b = n; a + 1 < b; a++, b--) {
			const char *tp = parts[a];
			size_t tl = lens[a];
			parts[a] = parts[b - 1];
			lens[a] = lens[b - 1];
			parts[b - 1] = tp;
			lens[b - 1] = tl;
		}
	size_t first = keep > 0 && keep < n ? n - keep : 0;
	for (size_t k = first; k < n; k++) {
		if (k > first)
			buf_append_byte(out, '.');
		for (size_t j = 0; j < lens[k]; j++) {
			char c = parts[k][j];
			if (escape && !(is_alpha(c) || is_digit(c) || strchr("-._~", c) != NULL)) {
				char hex[4];
				snprintf(hex, sizeof(hex), "%%%02X", (unsigned char)c);
				buf_append_str(out, hex);
			} else {
				buf_append_byte(out, (uint8_t)c);
			}
		}
	}
}

static void truncate_domain(struct buf *out, size_t start)
{
	/* §7.3: over 253 octets, labels go from the left until it fits */
	size_t from = start;
	while (out->len - from > 253) {
		const uint8_t *dot = memchr(out->data + from, '.', out->len - from);
		if (dot == NULL)
			break;
		from = (size_t)(dot - out->data) + 1;
	}
	if (from > start) {
		memmove(out->data + start, out->data + from, out->len - from);
		out->len -= from - start;
	}
}

int spf_macro_expand(const struct spf_macro_vars *v, const char *s, size_t len, bool exp_text,
		     bool domain, struct buf *out)
{
	size_t start = out->len;
	char tmp[32];

	for (size_t i = 0; i < len;) {
		size_t n;
		if (s[i] != '%') {
			buf_append_byte(out, (uint8_t)s[i++]);
			continue;
		}
		if (!macro_syntax(s + i, len - i, exp_text, &n))
			return -1;
		if (s[i + 1] == '%')
			buf_append_byte(out, '%');
		else if (s[i + 1] == '_')
			buf_append_byte(out, ' ');
		else if (s[i + 1] == '-')
			buf_append_str(out, "%20");
		else {
			char letter = s[i + 2];
			size_t j = i + 3;
			unsigned long keep = 0;
			while (is_digit(s[j])) {
				if (keep < 1000)
					keep = keep * 10 + (unsigned long)(s[j] - '0');
				j++;
			}
			bool reverse = s[j] == 'r' || s[j] == 'R';
			if (reverse)
				j++;
			size_t dstart = j;
			while (s[j] != '}')
				j++;
			const char *value = macro_value(v, letter, tmp, sizeof(tmp));
			transform(value != NULL ? value : "", j > dstart ? s + dstart : ".",
				  j > dstart ? j - dstart : 1, reverse, keep,
				  letter >= 'A' && letter <= 'Z', out);
		}
		i += n;
	}
	if (domain)
		truncate_domain(out, start);
	return 0;
}
