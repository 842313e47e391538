/* Content-Type / Content-Disposition parameters: the lenient list parser (quoted strings,
 * comments, junk) and the decoder that joins RFC 2231 continuations and converts their
 * charset'lang'%XX values to UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "mime_private.h"

size_t mime_skip_cfws(const char *s, size_t len, size_t i)
{
	while (i < len) {
		if (mime_is_space((unsigned char)s[i])) {
			i++;
		} else if (s[i] == '(') {
			/* RFC 5322 §3.2.2 comments nest; an unterminated one runs to the end. */
			unsigned level = 0;
			for (; i < len; i++) {
				if (s[i] == '\\' && i + 1 < len) {
					i++;
				} else if (s[i] == '(') {
					level++;
				} else if (s[i] == ')' && --level == 0) {
					i++;
					break;
				}
			}
		} else {
			break;
		}
	}
	return i;
}

static bool is_name_char(unsigned char c)
{
	return c > 32 && c != '=' && c != ';' && c != '(' && c != '"' && c != 127;
}

void mime_params_parse(const char *s, size_t len, struct mime_param **params_r,
		       size_t *count_r)
{
	struct mime_param *params = *params_r;
	size_t count = *count_r;
	size_t i = 0;
	struct buf val;

	buf_init(&val);
	while (i < len) {
		size_t name_start, name_end;

		i = mime_skip_cfws(s, len, i);
		if (i >= len)
			break;
		if (s[i] == ';') {
			i++;
			continue;
		}
		name_start = i;
		while (i < len && is_name_char((unsigned char)s[i]))
			i++;
		name_end = i;
		if (name_end == name_start) {
			i++; /* a stray character: skip it */
			continue;
		}
		i = mime_skip_cfws(s, len, i);
		if (i >= len || s[i] != '=') {
			while (i < len && s[i] != ';')
				i++;
			continue;
		}
		i = mime_skip_cfws(s, len, i + 1);
		buf_reset(&val);
		if (i < len && s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				buf_append_byte(&val, (uint8_t)s[i]);
			}
			if (i < len)
				i++;
		} else {
			while (i < len && s[i] != ';' && !mime_is_space((unsigned char)s[i]))
				buf_append_byte(&val, (uint8_t)s[i++]);
		}
		/* Junk after the value runs to the next separator. */
		while (i < len && s[i] != ';')
			i++;
		if (count >= LIMIT_MIME_PARAMS)
			break;
		params = xrealloc(params, (count + 1) * sizeof(*params));
		params[count].name = xstrndup(s + name_start, name_end - name_start);
		for (char *c = params[count].name; *c; c++)
			*c = (char)mime_lower((unsigned char)*c);
		params[count].value = xstrndup(val.len ? (const char *)val.data : "", val.len);
		count++;
	}
	buf_free(&val);
	*params_r = params;
	*count_r = count;
}

/* RFC 2231 §4: charset'language'%XX-encoded text. Splits off the charset (into charset_r,
 * at most cap-1 bytes) on the first section and appends the percent-decoded bytes. */
static void pct_decode(const char *v, struct buf *out)
{
	for (size_t i = 0; v[i] != '\0'; i++) {
		int h, l;
		if (v[i] == '%' && (h = hex_digit_value((unsigned char)v[i + 1])) >= 0 &&
		    (l = hex_digit_value((unsigned char)v[i + 2])) >= 0) {
			buf_append_byte(out, (uint8_t)(h * 16 + l));
			i += 2;
		} else {
			buf_append_byte(out, (uint8_t)v[i]);
		}
	}
}

/* Matches "name*N" or "name*N*" (N decimal, no leading zeros but "0"); returns N or -1. */
static long section_number(const char *pname, const char *name, size_t nlen, bool *ext_r)
{
	const char *p;
	long n = 0;

	if (strncmp(pname, name, nlen) != 0 || pname[nlen] != '*')
		return -1;
	p = pname + nlen + 1;
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > LIMIT_MIME_PARAM_SECTIONS)
			return -1;
	}
	*ext_r = *p == '*';
	if (*ext_r)
		p++;
	return *p == '\0' ? n : -1;
}

static void extended_to_utf8(const char *charset, size_t charset_len, const struct buf *raw,
			     struct buf *out)
{
	char *cs = xstrndup(charset, charset_len);

	if (charset_len == 0 || mime_charset_to_utf8(cs, raw->data, raw->len, out) < 0)
		buf_append(out, raw->data, raw->len);
	free(cs);
}

int mime_param_decode(const struct mime_param *params, size_t count, const char *name,
		      struct buf *out)
{
	size_t nlen = strlen(name);
	const struct mime_param *sections[LIMIT_MIME_PARAM_SECTIONS + 1];
	bool ext[LIMIT_MIME_PARAM_SECTIONS + 1];
	const struct mime_param *plain = NULL, *star = NULL;

	memset(sections, 0, sizeof(sections));
	for (size_t i = 0; i < count; i++) {
		const char *pn = params[i].name;
		bool e = false;
		long n;

		if (strcmp(pn, name) == 0) {
			if (plain == NULL)
				plain = &params[i];
		} else if (strncmp(pn, name, nlen) == 0 && strcmp(pn + nlen, "*") == 0) {
			if (star == NULL)
				star = &params[i];
		} else if ((n = section_number(pn, name, nlen, &e)) >= 0 && sections[n] == NULL) {
			sections[n] = &params[i];
			ext[n] = e;
		}
	}
	if (sections[0] != NULL) {
		/* RFC 2231 §4.1: only the first section carries charset'language'. */
		struct buf raw;
		const char *charset = "";
		size_t charset_len = 0;

		buf_init(&raw);
		for (size_t n = 0; n <= LIMIT_MIME_PARAM_SECTIONS && sections[n] != NULL; n++) {
			const char *v = sections[n]->value;
			if (n == 0 && ext[0]) {
				const char *q1 = strchr(v, '\'');
				const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
				if (q2 != NULL) {
					charset = v;
					charset_len = (size_t)(q1 - v);
					v = q2 + 1;
				}
			}
			if (ext[n])
				pct_decode(v, &raw);
			else
				buf_append_str(&raw, v);
		}
		extended_to_utf8(charset, charset_len, &raw, out);
		buf_free(&raw);
		return 0;
	}
	if (star != NULL) {
		const char *v = star->value;
		const char *q1 = strchr(v, '\'');
		const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
		struct buf raw;

		buf_init(&raw);
		if (q2 != NULL) {
			pct_decode(q2 + 1, &raw);
			extended_to_utf8(v, (size_t)(q1 - v), &raw, out);
		} else {
			pct_decode(v, &raw);
			buf_append(out, raw.data, raw.len);
		}
		buf_free(&raw);
		return 0;
	}
	if (plain != NULL) {
		/* Not allowed by RFC 2047 §5, but common: encoded-words inside quoted values. */
		mime_decode_words(plain->value, strlen(plain->value), out);
		return 0;
	}
	return -1;
}
