/* The request parsing http/ does itself: a query string's value, an e-mail address, and the
 * address inside an Autodiscover POST body. Everything else of HTTP is libevent's. Each
 * function reads at most the length it is given and writes at most outlen octets. */
#include <string.h>

#include "http_internal.h"

static int percent_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (len - i < 3)
				return -1;
			int hi = hex_digit_value(in[i + 1]);
			int lo = hex_digit_value(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0' || n + 1 >= outlen)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 1;
}

int http_query_value(const char *query, size_t query_len, const char *name, char *out,
		     size_t outlen)
{
	size_t name_len = strlen(name);
	size_t pos = 0;

	if (outlen == 0)
		return -1;
	while (pos < query_len) {
		const char *pair = query + pos;
		const char *amp = memchr(pair, '&', query_len - pos);
		size_t pair_len = amp != NULL ? (size_t)(amp - pair) : query_len - pos;

		if (pair_len > name_len && memcmp(pair, name, name_len) == 0 &&
		    pair[name_len] == '=')
			return percent_decode(pair + name_len + 1, pair_len - name_len - 1, out,
					      outlen);
		pos += pair_len + 1;
	}
	return 0;
}

/* RFC 5322 §3.2.3 atext, plus the dots of a dot-atom. */
static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool local_part_ok(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static bool domain_ok(const char *s, size_t len)
{
	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (!alnum && c != '-' && c != '.')
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

bool http_address_parse(char *address, const char **domain_r)
{
	size_t len = strnlen(address, LIMIT_HTTP_ADDRESS + 1);
	char *at = memchr(address, '@', len);

	if (len > LIMIT_HTTP_ADDRESS || at == NULL)
		return false;
	size_t local_len = (size_t)(at - address);
	char *domain = at + 1;
	size_t domain_len = len - local_len - 1;

	if (!local_part_ok(address, local_len) || !domain_ok(domain, domain_len))
		return false;
	for (size_t i = 0; i < domain_len; i++)
		if (domain[i] >= 'A' && domain[i] <= 'Z')
			domain[i] = (char)(domain[i] - 'A' + 'a');
	*domain_r = domain;
	return true;
}

/* The first "<EMailAddress>" or "<prefix:EMailAddress>"; *start_r is just past its '>'. */
static bool find_open_tag(const uint8_t *body, size_t len, size_t *start_r)
{
	static const char tag[] = "EMailAddress>";
	const size_t tag_len = sizeof(tag) - 1;

	for (size_t i = 0; i + tag_len <= len; i++) {
		if (memcmp(body + i, tag, tag_len) != 0 || i == 0)
			continue;
		if (body[i - 1] == '/')
			continue; /* a closing tag before any opening one */
		size_t lt = i;
		/* back over an optional namespace prefix "ns:" to the '<' */
		while (lt > 0 && body[lt - 1] != '<' && body[lt - 1] != '>' && i - lt < 64)
			lt--;
		if (lt == 0 || body[lt - 1] != '<')
			continue;
		if (lt != i && body[i - 1] != ':')
			continue;
		*start_r = i + tag_len;
		return true;
	}
	return false;
}

static bool is_xml_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int http_autodiscover_address(const uint8_t *body, size_t len, char *out, size_t outlen)
{
	size_t start, end;

	if (outlen == 0 || !find_open_tag(body, len, &start))
		return 0;
	end = start;
	while (end < len && body[end] != '<')
		end++;
	if (end == len)
		return 0; /* no closing tag: not a request */
	while (start < end && is_xml_space(body[start]))
		start++;
	while (end > start && is_xml_space(body[end - 1]))
		end--;
	if (end - start + 1 > outlen || memchr(body + start, '\0', end - start) != NULL)
		return -1;
	memcpy(out, body + start, end - start);
	out[end - start] = '\0';
	return 1;
}
