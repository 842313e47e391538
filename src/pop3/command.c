/* POP3 command line parsing: the keyword table and the numeric arguments of the TRANSACTION
 * commands. Pure functions over the line, shared by the session, the unit tests and the fuzz
 * target. */
#include <string.h>

#include "../core/core.h"
#include "pop3_internal.h"

static const struct {
	const char *name;
	enum pop3_verb verb;
} pop3_verbs[] = {
	{ "USER", POP3_CMD_USER }, { "PASS", POP3_CMD_PASS }, { "APOP", POP3_CMD_APOP },
	{ "AUTH", POP3_CMD_AUTH }, { "STLS", POP3_CMD_STLS }, { "CAPA", POP3_CMD_CAPA },
	{ "QUIT", POP3_CMD_QUIT }, { "NOOP", POP3_CMD_NOOP }, { "STAT", POP3_CMD_STAT },
	{ "LIST", POP3_CMD_LIST }, { "RETR", POP3_CMD_RETR }, { "DELE", POP3_CMD_DELE },
	{ "RSET", POP3_CMD_RSET }, { "TOP", POP3_CMD_TOP },   { "UIDL", POP3_CMD_UIDL },
};

enum pop3_verb pop3_command_parse(const char *line, size_t len, const char **arg_r)
{
	const char *sp = memchr(line, ' ', len);
	size_t verb_len = sp ? (size_t)(sp - line) : len;

	*arg_r = sp ? sp + 1 : line + len;
	/* RFC 1939 §3: keywords are three or four characters. */
	if (verb_len < 3 || verb_len > 4)
		return POP3_CMD_UNKNOWN;
	for (size_t i = 0; i < ARRAY_LEN(pop3_verbs); i++)
		if (strlen(pop3_verbs[i].name) == verb_len &&
		    str_nieq(line, pop3_verbs[i].name, verb_len))
			return pop3_verbs[i].verb;
	return POP3_CMD_UNKNOWN;
}

/* Length of arg without trailing spaces: some clients send "LIST " for "LIST". */
static size_t pop3_arg_len(const char *arg)
{
	size_t n = strlen(arg);

	while (n > 0 && arg[n - 1] == ' ')
		n--;
	return n;
}

/* RFC 1939 §5: a message-number is a decimal number, 1 or more (leading zeros allowed). */
static int pop3_number(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	if (len == 0 || len > 20)
		return -1;
	return str_to_u64(s, len, max, v_r);
}

int pop3_parse_msgnum(const char *arg, bool optional, uint32_t *n_r, bool *present_r)
{
	size_t len = pop3_arg_len(arg);
	uint64_t v;

	*n_r = 0;
	if (present_r)
		*present_r = false;
	if (len == 0)
		return optional ? 0 : -1;
	if (pop3_number(arg, len, UINT32_MAX, &v) < 0 || v == 0)
		return -1;
	*n_r = (uint32_t)v;
	if (present_r)
		*present_r = true;
	return 0;
}

int pop3_parse_top(const char *arg, uint32_t *n_r, uint64_t *lines_r)
{
	size_t len = pop3_arg_len(arg);
	const char *sp = memchr(arg, ' ', len);
	uint64_t v;

	if (sp == NULL)
		return -1;
	if (pop3_number(arg, (size_t)(sp - arg), UINT32_MAX, &v) < 0 || v == 0)
		return -1;
	*n_r = (uint32_t)v;
	/* RFC 1939 §7: the line count is a non-negative number. */
	if (pop3_number(sp + 1, len - (size_t)(sp + 1 - arg), UINT64_MAX, lines_r) < 0)
		return -1;
	return 0;
}
