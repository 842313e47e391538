/* Syntax of the addresses and domains the directory stores. Deliberately narrower than RFC 5322:
 * a name that reaches SQL, file paths or logs must never carry quoting, routing characters
 * (`%`, `!`, `/`) or expansion syntax (`%u`, `%{...}`; Dovecot CVE-2017-2669). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"

#define AUTH_LOCAL_MAX 64   /* RFC 5321 §4.5.3.1.1 */
#define AUTH_DOMAIN_MAX 253 /* RFC 1035 §2.3.4 less the root's dot and length octet */
#define AUTH_LABEL_MAX 63

/* RFC 5322 §3.2.3 atext, less the characters with a routing or quoting meaning somewhere in
 * mail software: ! % / ' ` and the quote. */
static bool local_char_ok(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("#$&*+-=?^_{|}~", c) != NULL;
}

bool auth_local_part_valid(const char *local, size_t len)
{
	if (len == 0 || len > AUTH_LOCAL_MAX)
		return false;
	/* dot-atom: no leading, trailing or doubled dots (RFC 5322 §3.2.3) */
	if (local[0] == '.' || local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (local[i] == '.') {
			if (local[i + 1] == '.')
				return false;
			continue;
		}
		if (!local_char_ok(local[i]))
			return false;
	}
	return true;
}

/* LDH labels (RFC 1035 §2.3.1, RFC 1123 §2.1 allows a leading digit). */
static bool domain_valid(const char *d, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > AUTH_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? d[i] : '.';
		if (c == '.') {
			if (label == 0 || label > AUTH_LABEL_MAX)
				return false;
			if (d[i - 1] == '-' || d[i - label] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		label++;
	}
	return true;
}

/* Lower-cases ASCII into a fresh string; NULL when over max or when a byte is not printable
 * ASCII (controls, DEL and 8-bit bytes are refused before any other check). */
static char *lower_copy(const char *in, size_t max)
{
	size_t len = strnlen(in, max + 1);

	if (len > max)
		return NULL;
	char *out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= 0x20 || c >= 0x7f) {
			free(out);
			return NULL;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[len] = '\0';
	return out;
}

int auth_domain_normalize(const char *in, char **domain_r, char *err, size_t errlen)
{
	char *d = lower_copy(in, AUTH_DOMAIN_MAX);

	if (d == NULL || !domain_valid(d, strlen(d))) {
		free(d);
		err_setf(err, errlen, "invalid domain name");
		return -1;
	}
	*domain_r = d;
	return 0;
}

int auth_address_normalize(const char *in, char **addr_r, char *err, size_t errlen)
{
	char *a = lower_copy(in, AUTH_ADDRESS_MAX);
	const char *at;

	if (a == NULL) {
		err_setf(err, errlen, "invalid address (control, space or 8-bit "
				 "characters, or too long)");
		return -1;
	}
	at = strchr(a, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL) {
		free(a);
		err_setf(err, errlen, "invalid address: expected local@domain");
		return -1;
	}
	if (!auth_local_part_valid(a, (size_t)(at - a))) {
		free(a);
		err_setf(err, errlen, "invalid local part (allowed: letters, digits, "
				 "#$&*+-=?^_{|}~ and single inner dots, at most 64)");
		return -1;
	}
	if (!domain_valid(at + 1, strlen(at + 1))) {
		free(a);
		err_setf(err, errlen, "invalid domain name in address");
		return -1;
	}
	*addr_r = a;
	return 0;
}
