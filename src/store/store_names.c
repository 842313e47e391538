/* Backend-neutral parts of the store API: error texts and the mailbox name rules every
 * backend applies before a name reaches its storage. */
#include <stdio.h>
#include <string.h>

#include "../core/core.h"
#include "store.h"

const char *store_error_str(enum store_error code)
{
	switch (code) {
	case STORE_OK:
		return "OK";
	case STORE_ERR_NOT_FOUND:
		return "No such mailbox or message";
	case STORE_ERR_EXISTS:
		return "Mailbox already exists";
	case STORE_ERR_NO_SPACE:
		return "Not enough disk space, try again later";
	case STORE_ERR_OVER_QUOTA:
		return "Quota exceeded";
	case STORE_ERR_IO:
		return "Internal storage error, try again later";
	case STORE_ERR_INVALID:
		return "Invalid argument";
	case STORE_ERR_LIMIT:
		return "Limit exceeded";
	case STORE_ERR_NO_PERMISSION:
		return "Operation not permitted";
	case STORE_ERR_HAS_CHILDREN:
		return "Mailbox has inferior hierarchical names";
	}
	return "Unknown error";
}

/* Length of the UTF-8 sequence at s (at most avail bytes), 0 when it is not well-formed:
 * overlong forms, surrogates and code points past U+10FFFF are refused (RFC 3629 §3). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static enum store_error name_fail(struct store_err *err_r, enum store_error code, const char *text)
{
	if (err_r != NULL) {
		err_r->code = code;
		snprintf(err_r->text, sizeof(err_r->text), "%s", text);
	}
	return code;
}

enum store_error store_mailbox_name_check(const char *name, char *canon_r, struct store_err *err_r)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len = strlen(name);
	size_t comp_start = 0;

	if (len == 0)
		return name_fail(err_r, STORE_ERR_INVALID, "Empty mailbox name");
	if (len > LIMIT_MAILBOX_NAME)
		return name_fail(err_r, STORE_ERR_LIMIT, "Mailbox name too long");
	for (size_t i = 0; i <= len;) {
		if (i == len || s[i] == '/') {
			size_t clen = i - comp_start;

			if (clen == 0)
				return name_fail(err_r, STORE_ERR_INVALID,
						 "Empty component in mailbox name");
			if ((clen == 1 && s[comp_start] == '.') ||
			    (clen == 2 && s[comp_start] == '.' && s[comp_start + 1] == '.'))
				return name_fail(err_r, STORE_ERR_INVALID,
						 "Mailbox name component '.' or '..' not allowed");
			comp_start = i + 1;
			i++;
			continue;
		}
		if (s[i] < 0x20 || s[i] == 0x7f)
			return name_fail(err_r, STORE_ERR_INVALID,
					 "Control character in mailbox name");
		/* LIST wildcards (RFC 9051 §6.3.9) would make the name unlistable. */
		if (s[i] == '*' || s[i] == '%')
			return name_fail(err_r, STORE_ERR_INVALID, "Wildcard in mailbox name");
		size_t n = utf8_seq_len(s + i, len - i);
		if (n == 0)
			return name_fail(err_r, STORE_ERR_INVALID, "Mailbox name is not UTF-8");
		i += n;
	}
	if (canon_r != NULL) {
		memcpy(canon_r, name, len + 1);
		/* RFC 9051 §5.1: every case variant of INBOX is INBOX; we extend that to the first
		 * component so that "inbox/Sub" and "INBOX/Sub" are the same mailbox. */
		if ((len == 5 || (len > 5 && name[5] == '/')) && str_nieq(name, "INBOX", 5))
			memcpy(canon_r, "INBOX", 5);
	}
	return STORE_OK;
}
