/* MAIL FROM / RCPT TO argument syntax (RFC 5321 §4.1.2, §4.1.3; RFC 6531 for UTF-8). */
#ifndef ROOST_SMTP_PATH_H
#define ROOST_SMTP_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_MAX_PARAMS 16

struct smtp_param {
	char *keyword; /* upper-cased */
	char *value;   /* NULL when the parameter has no "=value" */
};

struct smtp_path {
	char *mailbox; /* "local@domain", "" for the null reverse-path <>, "postmaster" */
	struct smtp_param params[SMTP_MAX_PARAMS];
	size_t param_count;
};

/* Parses `FROM:<path> [params]` (prefix "FROM:") or `TO:<path> [params]` (prefix "TO:").
 * lenient_space: accept a space after the colon (known submission client quirk, never on the
 * MX). utf8: allow UTF-8 in the mailbox (after SMTPUTF8). Returns 0, or -1 with the reply
 * text for a 501/555 in *why. */
int smtp_path_parse(const char *args, const char *prefix, bool lenient_space, bool utf8,
		    bool allow_null, struct smtp_path *out, const char **why);
void smtp_path_clear(struct smtp_path *p);
/* The value of a parameter, or NULL; *present_r tells whether the keyword was given. */
const char *smtp_path_param(const struct smtp_path *p, const char *keyword, bool *present_r);
/* xtext (RFC 3461 §4): '+' HEX HEX escapes; true when well formed. */
bool smtp_xtext_valid(const char *s);
/* Well-formed xtext whose decoded octets hold no control character (CR, LF, NUL...); with
 * want_mailbox, the decoded text must also look like local@domain (RFC 4954 §5 AUTH=,
 * RFC 3461 §4.2 ORCPT). */
bool smtp_xtext_clean(const char *s, bool want_mailbox);

#endif
