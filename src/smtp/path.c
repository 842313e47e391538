/* MAIL/RCPT argument parsing. Strict by design (21Nails CVE-2020-28022, OpenSMTPD
 * CVE-2020-7247): every byte of the path and of each parameter is checked against the RFC
 * grammar before anything uses it, so a path can never carry shell or header metacharacters
 * and parameters can never be read past their end. */
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "path.h"

/* RFC 5322 atext */
static bool is_atext(unsigned char c, bool utf8)
{
	if (c >= 0x80)
		return utf8;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

/* Dot-string = Atom *("." Atom) */
static const char *parse_dot_string(const char *p, bool utf8)
{
	const char *start = p;

	for (;;) {
		const char *atom = p;
		while (is_atext((unsigned char)*p, utf8))
			p++;
		if (p == atom)
			return NULL;
		if (*p != '.')
			break;
		p++;
	}
	return p == start ? NULL : p;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE */
static const char *parse_quoted(const char *p, bool utf8)
{
	if (*p != '"')
		return NULL;
	p++;
	while (*p && *p != '"') {
		unsigned char c = (unsigned char)*p;
		if (c == '\\') {
			unsigned char e = (unsigned char)p[1];
			if (e < 32 || e > 126)
				return NULL;
			p += 2;
			continue;
		}
		if (c >= 0x80 ? !utf8 : (c < 32 || c > 126))
			return NULL;
		p++;
	}
	return *p == '"' ? p + 1 : NULL;
}

static bool is_let_dig(unsigned char c, bool utf8)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (utf8 && c >= 0x80);
}

/* Domain = sub-domain *("." sub-domain), or an address-literal "[...]" */
static const char *parse_domain(const char *p, bool utf8)
{
	if (*p == '[') {
		const char *q = p + 1;
		while (*q && *q != ']' && (unsigned char)*q > 32 && (unsigned char)*q < 127 &&
		       *q != '[' && *q != '\\')
			q++;
		return *q == ']' && q > p + 1 ? q + 1 : NULL;
	}
	for (;;) {
		const char *label = p;
		if (!is_let_dig((unsigned char)*p, utf8))
			return NULL;
		while (is_let_dig((unsigned char)*p, utf8) || *p == '-')
			p++;
		if (p[-1] == '-' || p - label > 63)
			return NULL;
		if (*p != '.')
			return p;
		p++;
		if (*p == '>' || *p == '\0') /* a trailing dot: "user@example.org." */
			return p;
	}
}

void smtp_path_clear(struct smtp_path *p)
{
	free(p->mailbox);
	for (size_t i = 0; i < p->param_count; i++) {
		free(p->params[i].keyword);
		free(p->params[i].value);
	}
	memset(p, 0, sizeof(*p));
}

const char *smtp_path_param(const struct smtp_path *p, const char *keyword, bool *present_r)
{
	for (size_t i = 0; i < p->param_count; i++) {
		if (str_ieq(p->params[i].keyword, keyword)) {
			if (present_r)
				*present_r = true;
			return p->params[i].value;
		}
	}
	if (present_r)
		*present_r = false;
	return NULL;
}

bool smtp_xtext_valid(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '+') {
			if (!strchr("0123456789ABCDEF", s[1]) || !s[1] ||
			    !strchr("0123456789ABCDEF", s[2]) || !s[2])
				return false;
			s += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

static int hex_value(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool smtp_xtext_clean(const char *s, bool want_mailbox)
{
	size_t n = 0, at = 0;
	bool has_at = false;

	if (!smtp_xtext_valid(s))
		return false;
	for (; *s; s++, n++) {
		int c = (unsigned char)*s;
		if (c == '+') {
			c = hex_value(s[1]) * 16 + hex_value(s[2]);
			s += 2;
		}
		if (c < 32 || c == 127)
			return false; /* CR, LF, NUL: never into a queue file or a header */
		if (c == '@') {
			has_at = true;
			at = n;
		}
	}
	return !want_mailbox || (has_at && at > 0 && at + 1 < n);
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2) */
static int parse_params(const char *p, struct smtp_path *out, bool utf8, const char **why)
{
	while (*p) {
		const char *kw = p, *eq = NULL, *end;
		if (*p != ' ') {
			*why = "555 5.5.4 Syntax error in parameters";
			return -1;
		}
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		kw = p;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			goto bad;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '-')
			p++;
		if (*p == '=') {
			eq = p;
			p++;
			const char *v = p;
			while (*p && *p != ' ') {
				unsigned char c = (unsigned char)*p;
				if (c == '=' || (c < 33) || c == 127 || (c >= 0x80 && !utf8))
					goto bad;
				p++;
			}
			if (p == v)
				goto bad;
		} else if (*p != ' ' && *p != '\0') {
			goto bad;
		}
		end = p;
		if (out->param_count >= SMTP_MAX_PARAMS) {
			*why = "555 5.5.4 Too many parameters";
			return -1;
		}
		struct smtp_param *prm = &out->params[out->param_count];
		size_t kwlen = (size_t)((eq ? eq : end) - kw);
		prm->keyword = xstrndup(kw, kwlen);
		for (char *c = prm->keyword; *c; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 'a' + 'A');
		for (size_t i = 0; i < out->param_count; i++) {
			if (strcmp(out->params[i].keyword, prm->keyword) == 0) {
				free(prm->keyword);
				prm->keyword = NULL;
				*why = "555 5.5.4 Duplicate parameter";
				return -1;
			}
		}
		prm->value = eq ? xstrndup(eq + 1, (size_t)(end - eq - 1)) : NULL;
		out->param_count++;
	}
	return 0;
bad:
	*why = "555 5.5.4 Syntax error in parameters";
	return -1;
}

int smtp_path_parse(const char *args, const char *prefix, bool lenient_space, bool utf8,
		    bool allow_null, struct smtp_path *out, const char **why)
{
	size_t plen = strlen(prefix);
	const char *p = args, *mb_start, *at = NULL, *q;

	memset(out, 0, sizeof(*out));
	if (!str_nieq(p, prefix, plen)) {
		*why = "501 5.5.4 Syntax error: expected an address in angle brackets";
		return -1;
	}
	p += plen;
	if (*p == ' ' && lenient_space)
		while (*p == ' ')
			p++;
	if (*p != '<') {
		*why = "501 5.5.4 Syntax error: expected an address in angle brackets";
		return -1;
	}
	p++;
	if (*p == '>') {
		if (!allow_null) {
			*why = "501 5.1.3 Empty address not allowed here";
			return -1;
		}
		out->mailbox = xstrdup("");
		p++;
		goto params;
	}
	/* A-d-l (source route): RFC 5321 §4.1.1.3 says to ignore it; only the mailbox counts. */
	if (*p == '@') {
		q = strchr(p, ':');
		if (q == NULL || q - p > 255) {
			*why = "501 5.1.3 Bad source route";
			return -1;
		}
		p = q + 1;
	}
	mb_start = p;
	q = *p == '"' ? parse_quoted(p, utf8) : parse_dot_string(p, utf8);
	if (q == NULL) {
		*why = "501 5.1.3 Bad address syntax";
		return -1;
	}
	if (*q == '@') {
		at = q;
		q = parse_domain(q + 1, utf8);
		if (q == NULL) {
			*why = "501 5.1.3 Bad address syntax";
			return -1;
		}
	}
	if (*q != '>') {
		*why = "501 5.1.3 Bad address syntax";
		return -1;
	}
	if (at == NULL && !str_ieq(prefix, "TO:")) {
		*why = "501 5.1.3 Address needs a domain";
		return -1;
	}
	if ((at && at - mb_start > 64 && !utf8) || q - mb_start > 254) {
		*why = "501 5.1.3 Address too long";
		return -1;
	}
	out->mailbox = xstrndup(mb_start, (size_t)(q - mb_start));
	/* RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted; nothing else is. */
	if (at == NULL && !str_ieq(out->mailbox, "postmaster")) {
		smtp_path_clear(out);
		*why = "501 5.1.3 Address needs a domain";
		return -1;
	}
	p = q + 1;
params:
	if (parse_params(p, out, utf8, why) < 0) {
		smtp_path_clear(out);
		return -1;
	}
	return 0;
}
