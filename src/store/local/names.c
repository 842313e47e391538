/* Mapping between store names and Maildir++ file names: mailbox names to folder directories
 * (a safe encoding that no name can turn into a path outside the account), message file names
 * with UID, size and flags, and keyword normalisation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

/* Bytes kept as they are in a folder name. Everything else, including '.', '/', '%', and all
 * non-ASCII bytes, becomes %XX, so a folder name is always one safe path component made of
 * "." + components joined by "." (the Maildir++ convention). */
static bool folder_byte_plain(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return strchr(" -_+,=@&!#$'()[]{}~^;", c) != NULL && c != '\0';
}

int local_folder_name(const char *mailbox, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (strcmp(mailbox, "INBOX") == 0) {
		if (outlen == 0)
			return -1;
		out[0] = '\0';
		return 0;
	}
	/* NAME_MAX: the folder must be one directory entry. */
	if (outlen > 256)
		outlen = 256;
	if (o + 1 >= outlen)
		return -1;
	out[o++] = '.';
	for (const unsigned char *p = (const unsigned char *)mailbox; *p != '\0'; p++) {
		if (*p == '/') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '.';
		} else if (folder_byte_plain(*p)) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= outlen)
				return -1;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

int local_folder_decode(const char *dirent, char *out, size_t outlen)
{
	size_t o = 0;

	if (dirent[0] != '.' || dirent[1] == '\0' || dirent[1] == '.')
		return -1;
	for (const char *p = dirent + 1; *p != '\0'; p++) {
		int c;

		if (*p == '.') {
			c = '/';
		} else if (*p == '%') {
			int hi = hex_digit_value(p[1]);
			int lo = hi < 0 ? -1 : hex_digit_value(p[2]);

			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			p += 2;
		} else {
			c = (unsigned char)*p;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (store_mailbox_name_check(out, out, NULL) != STORE_OK)
		return -1;
	/* Only the one spelling local_folder_name produces is ours ("%2F" or lower-case hex
	 * would name the same mailbox as another directory). */
	char again[260];

	if (local_folder_name(out, again, sizeof(again)) < 0 || strcmp(again, dirent) != 0)
		return -1;
	return 0;
}

char *local_folder_path(struct store_account *acct, const char *mailbox)
{
	char folder[260];

	if (local_folder_name(mailbox, folder, sizeof(folder)) < 0)
		return NULL;
	if (folder[0] == '\0')
		return xstrdup(acct->dir);
	return xasprintf("%s/%s", acct->dir, folder);
}

/* Maildir info letters in the ASCII order the specification asks for. */
static const struct {
	char letter;
	uint32_t flag;
} flag_letters[] = {
	{ 'D', STORE_FLAG_DRAFT },   { 'F', STORE_FLAG_FLAGGED }, { 'R', STORE_FLAG_ANSWERED },
	{ 'S', STORE_FLAG_SEEN },    { 'T', STORE_FLAG_DELETED },
};

void local_flags_suffix(uint32_t flags, char out[8])
{
	size_t o = 0;

	for (size_t i = 0; i < ARRAY_LEN(flag_letters); i++)
		if (flags & flag_letters[i].flag)
			out[o++] = flag_letters[i].letter;
	out[o] = '\0';
}

uint32_t local_flags_from_suffix(const char *s)
{
	uint32_t flags = 0;

	for (; *s != '\0' && *s != ','; s++)
		for (size_t i = 0; i < ARRAY_LEN(flag_letters); i++)
			if (*s == flag_letters[i].letter)
				flags |= flag_letters[i].flag;
	return flags;
}

void local_parse_filename(const char *name, uint32_t *uid_r, uint64_t *size_r, uint32_t *flags_r,
			  size_t *base_len_r)
{
	const char *info = strstr(name, ":2,");
	size_t head_len = info != NULL ? (size_t)(info - name) : strlen(name);
	size_t base_len = head_len;

	*uid_r = 0;
	*size_r = 0;
	*flags_r = info != NULL ? local_flags_from_suffix(info + 3) : 0;
	/* Fields are ",KEY=digits" after the base; the base itself may contain commas from other
	 * programs, so the base ends at the first ",U=" / ",S=" / ",W=" field. */
	for (size_t i = 0; i + 2 < head_len; i++) {
		if (name[i] != ',' || name[i + 2] != '=')
			continue;
		char key = name[i + 1];
		size_t j = i + 3;
		uint64_t v = 0;

		if (key != 'U' && key != 'S' && key != 'W')
			continue;
		if (base_len == head_len)
			base_len = i;
		while (j < head_len && name[j] >= '0' && name[j] <= '9' && v < (1ULL << 60))
			v = v * 10 + (uint64_t)(name[j++] - '0');
		if (key == 'U' && v <= UINT32_MAX)
			*uid_r = (uint32_t)v;
		else if (key == 'S')
			*size_r = v;
	}
	*base_len_r = base_len;
}

char *local_make_filename(const char *base, uint32_t uid, uint64_t size, uint32_t flags,
			  const char *letters)
{
	char suffix[8];

	local_flags_suffix(flags, suffix);
	/* Maildir wants the info letters in ASCII order: system flags (upper case) first. */
	return xasprintf("%s,U=%u,S=%llu:2,%s%s", base, uid, (unsigned long long)size, suffix,
			 letters != NULL ? letters : "");
}

/* flag-keyword = atom (RFC 9051 §9): no specials, no control characters, no '\'. */
static bool keyword_valid(const char *k)
{
	size_t len = strlen(k);

	if (len == 0 || len > LIMIT_KEYWORD_LENGTH)
		return false;
	for (const unsigned char *p = (const unsigned char *)k; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
			return false;
	return true;
}

static int keyword_cmp(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

enum store_error local_keywords_join(const char *const *kw, size_t n, char **out_r,
				     struct store_err *err_r)
{
	const char **sorted;
	struct buf b;

	*out_r = NULL;
	if (n == 0)
		return STORE_OK;
	if (n > LIMIT_KEYWORDS_PER_MAILBOX)
		return local_fail(err_r, STORE_ERR_LIMIT, "Too many keywords");
	for (size_t i = 0; i < n; i++)
		if (!keyword_valid(kw[i]))
			return local_fail(err_r, STORE_ERR_INVALID, "Invalid keyword");
	sorted = xcalloc(n, sizeof(*sorted));
	memcpy(sorted, kw, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), keyword_cmp);
	buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcasecmp(sorted[i], sorted[i - 1]) == 0)
			continue;
		if (b.len > 0)
			buf_append_byte(&b, ' ');
		buf_append_str(&b, sorted[i]);
	}
	free(sorted);
	*out_r = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return STORE_OK;
}
