/* Keywords in Maildir file names, so that they survive the loss of the index like the system
 * flags do (design note 2). A folder's first 26 keywords get the letters a..z: the folder's
 * roost-keywords file lists them as "N name" lines (N = 0 for 'a'), and a message file's info
 * carries the letters of its keywords after the system flags, ":2,FSab". A letter is written
 * to the file durably before any file name uses it and is never reassigned (the file is only
 * ever replaced whole by rename, so it cannot be torn; one damaged by hand is read up to the
 * damage), so a name can always be read back. Keywords beyond the 26th of a folder live only
 * in the index. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "local.h"

void local_kwmap_clear(struct local_kwmap *map)
{
	for (unsigned i = 0; i < map->count; i++)
		free(map->names[i]);
	memset(map, 0, sizeof(*map));
}

void local_kwmap_load(struct local_kwmap *map, const char *folder)
{
	char *path = xasprintf("%s/%s", folder, LOCAL_KEYWORDS_FILE);
	FILE *f = fopen(path, "re");
	char line[LIMIT_KEYWORD_LENGTH + 16];

	local_kwmap_clear(map);
	map->loaded = true;
	free(path);
	if (f == NULL)
		return; /* no keyword has a letter in this folder yet */
	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		unsigned long n = strtoul(line, &end, 10);
		size_t len;

		/* Entries are written in letter order; anything else is damage and ends the
		 * list, so no letter is ever read with a meaning it did not have. */
		if (end == line || *end != ' ' || n != map->count || n >= LOCAL_KW_LETTERS)
			break;
		end++;
		len = strcspn(end, "\r\n");
		if (len == 0)
			break;
		map->names[map->count++] = xstrndup(end, len);
	}
	fclose(f);
}

static int kwmap_find(const struct local_kwmap *map, const char *name, size_t len)
{
	for (unsigned i = 0; i < map->count; i++)
		if (strlen(map->names[i]) == len && strncasecmp(map->names[i], name, len) == 0)
			return (int)i;
	return -1;
}

/* Gives NAME the next letter and writes the whole list durably; -1 when the letters are used
 * up or the write failed (the keyword then has no letter, which only costs its survival of
 * an index loss). */
static int kwmap_add(struct local_kwmap *map, const char *folder, const char *name, size_t len)
{
	struct buf text;
	int r;

	if (map->count == LOCAL_KW_LETTERS)
		return -1;
	buf_init(&text);
	for (unsigned i = 0; i < map->count; i++)
		buf_printf(&text, "%u %s\n", i, map->names[i]);
	buf_printf(&text, "%u %.*s\n", map->count, (int)len, name);
	r = local_write_durable(folder, LOCAL_KEYWORDS_FILE, buf_cstr(&text), text.len);
	buf_free(&text);
	if (r < 0) {
		log_warn("store=local op=keyword-letter folder=%s errno=%s", folder, strerror(errno));
		return -1;
	}
	map->names[map->count] = xstrndup(name, len);
	return (int)map->count++;
}

void local_kwmap_letters(struct local_kwmap *map, const char *folder, const char *keywords,
			 char out[LOCAL_KW_LETTERS + 1])
{
	bool have[LOCAL_KW_LETTERS] = { false };
	size_t o = 0;

	if (keywords != NULL && !map->loaded)
		local_kwmap_load(map, folder);
	for (const char *p = keywords; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, " ");
		int i = kwmap_find(map, p, len);

		if (i < 0)
			i = kwmap_add(map, folder, p, len);
		if (i >= 0)
			have[i] = true;
		p += len;
		while (*p == ' ')
			p++;
	}
	for (int i = 0; i < LOCAL_KW_LETTERS; i++)
		if (have[i])
			out[o++] = (char)('a' + i);
	out[o] = '\0';
}

void local_filename_letters(const char *name, char out[LOCAL_KW_LETTERS + 1])
{
	const char *info = strstr(name, ":2,");
	bool have[LOCAL_KW_LETTERS] = { false };
	size_t o = 0;

	if (info != NULL)
		for (const char *p = info + 3; *p != '\0' && *p != ','; p++)
			if (*p >= 'a' && *p <= 'z')
				have[*p - 'a'] = true;
	for (int i = 0; i < LOCAL_KW_LETTERS; i++)
		if (have[i])
			out[o++] = (char)('a' + i);
	out[o] = '\0';
}

char *local_kwmap_keywords(struct local_kwmap *map, const char *folder, const char *name)
{
	char letters[LOCAL_KW_LETTERS + 1];
	const char *kw[LOCAL_KW_LETTERS];
	size_t n = 0;
	char *joined = NULL;

	local_filename_letters(name, letters);
	if (letters[0] == '\0')
		return NULL;
	if (!map->loaded)
		local_kwmap_load(map, folder);
	for (const char *l = letters; *l != '\0'; l++)
		if ((unsigned)(*l - 'a') < map->count)
			kw[n++] = map->names[*l - 'a'];
	/* Names in the file were valid when written; one that is not any more is dropped. */
	if (n > 0 && local_keywords_join(kw, n, &joined, NULL) != STORE_OK)
		joined = NULL;
	return joined;
}
