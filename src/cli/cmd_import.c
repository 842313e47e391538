/* roost import ADDRESS PATH: copies an mbox file or a Maildir/Maildir++ tree into an account
 * through the normal save path, converting line ends to CRLF. Two folder layouts are read:
 * Dovecot's (".Folder.Sub" directories with modified UTF-7 names, keyword letters from
 * dovecot-keywords) and Roost's own (components percent-encoded as store/local/names.c
 * writes them, keyword letters from roost-keywords), told apart by the roost-uidvalidity file
 * every Roost folder holds. Flags come from the ":2," suffix in both. A PATH that is neither
 * (a directory without cur/ or Maildir folders, a file that does not start with "From ") is
 * refused before anything is written. The account's mailbox tree is created by the store when
 * missing; the accounts database is not needed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/core.h"
#include "../store/store.h"
#include "cli.h"

struct import_ctx {
	struct store_account *acct;
	unsigned long messages;
	unsigned long failures;
};

/* Streams bytes into a save, turning bare LF into CRLF (RFC 5322 §2.1). */
struct crlf_writer {
	struct store_save *save;
	struct buf out;
	bool prev_cr;
	enum store_error error;
};

static void crlf_flush(struct crlf_writer *w)
{
	if (w->out.len > 0 && w->error == STORE_OK)
		w->error = store_save_write(w->save, w->out.data, w->out.len, NULL);
	buf_reset(&w->out);
}

static void crlf_write(struct crlf_writer *w, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && !w->prev_cr)
			buf_append_byte(&w->out, '\r');
		buf_append_byte(&w->out, data[i]);
		w->prev_cr = data[i] == '\r';
	}
	if (w->out.len >= 65536)
		crlf_flush(w);
}

static void report_failure(struct import_ctx *ctx, const char *what, enum store_error e)
{
	ctx->failures++;
	fprintf(stderr, "roost import: %s: %s\n", what, store_error_str(e));
}

/* ---- mbox ---- */

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* "From sender Www Mmm dd hh:mm:ss yyyy" -> seconds (UTC), 0 when it does not parse. */
static int64_t from_line_date(const char *line)
{
	const char *p = strchr(line + 5, ' ');
	char mon[4];
	int day, h, m, s, y;
	struct tm tm = { 0 };

	if (p == NULL)
		return 0;
	while (*p == ' ')
		p++;
	p = strchr(p, ' '); /* skip the weekday */
	if (p == NULL || sscanf(p, " %3s %d %d:%d:%d %d", mon, &day, &h, &m, &s, &y) != 6)
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(months); i++)
		if (strcmp(mon, months[i]) == 0)
			tm.tm_mon = (int)i;
	tm.tm_mday = day;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = s;
	tm.tm_year = y - 1900;
	time_t t = timegm(&tm);

	return t > 0 ? (int64_t)t : 0;
}

/* Status: R = seen; X-Status: A answered, F flagged, T draft, D deleted (mutt, Dovecot). */
static uint32_t mbox_status_flags(const char *line)
{
	uint32_t flags = 0;
	const char *v;

	if (str_has_prefix_ci(line, "Status:")) {
		for (v = line + 7; *v != '\0'; v++)
			if (*v == 'R')
				flags |= STORE_FLAG_SEEN;
	} else if (str_has_prefix_ci(line, "X-Status:")) {
		for (v = line + 9; *v != '\0'; v++) {
			if (*v == 'A')
				flags |= STORE_FLAG_ANSWERED;
			else if (*v == 'F')
				flags |= STORE_FLAG_FLAGGED;
			else if (*v == 'T')
				flags |= STORE_FLAG_DRAFT;
			else if (*v == 'D')
				flags |= STORE_FLAG_DELETED;
		}
	}
	return flags;
}

struct mbox_msg {
	struct crlf_writer w;
	uint32_t flags;
	int64_t date;
	bool in_header;
	bool open;
};

static void mbox_finish(struct import_ctx *ctx, struct mbox_msg *m)
{
	struct store_save_meta meta = { .flags = m->flags, .internal_date = m->date };
	struct store_save_result res;
	enum store_error e;

	if (!m->open)
		return;
	crlf_flush(&m->w);
	if (m->w.error != STORE_OK) {
		store_save_abort(&m->w.save);
		report_failure(ctx, "mbox message", m->w.error);
	} else if ((e = store_save_finish(&m->w.save, &meta, &res, NULL)) != STORE_OK) {
		report_failure(ctx, "mbox message", e);
	} else {
		ctx->messages++;
	}
	buf_free(&m->w.out);
	m->open = false;
}

static int import_mbox(struct import_ctx *ctx, const char *path, const char *mailbox)
{
	FILE *fp = fopen(path, "re");
	struct mbox_msg m = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	bool pending_blank = false;

	if (fp == NULL) {
		fprintf(stderr, "roost import: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		bool blank = (len == 1 && line[0] == '\n') ||
			     (len == 2 && line[0] == '\r' && line[1] == '\n');

		/* A message starts with "From " at the start of the file or after a blank
		 * line; that blank line is the mbox separator, not part of the message. */
		if (len >= 5 && memcmp(line, "From ", 5) == 0 && (!m.open || pending_blank)) {
			enum store_error e;

			mbox_finish(ctx, &m);
			memset(&m, 0, sizeof(m));
			pending_blank = false;
			e = store_save_begin(ctx->acct, mailbox, &m.w.save, NULL);
			if (e != STORE_OK) {
				report_failure(ctx, mailbox, e);
				break;
			}
			buf_init(&m.w.out);
			m.open = true;
			m.in_header = true;
			m.date = from_line_date(line);
			continue;
		}
		if (!m.open)
			continue;
		if (pending_blank) {
			crlf_write(&m.w, (const uint8_t *)"\n", 1);
			pending_blank = false;
		}
		if (blank) {
			pending_blank = true;
			m.in_header = false;
			continue;
		}
		if (m.in_header)
			m.flags |= mbox_status_flags(line);
		/* mboxrd: ">From ", ">>From ", ... lose one '>'. */
		const char *out = line;
		size_t olen = (size_t)len;
		size_t q = 0;

		while (q < olen && out[q] == '>')
			q++;
		if (q > 0 && olen - q >= 5 && memcmp(out + q, "From ", 5) == 0) {
			out++;
			olen--;
		}
		crlf_write(&m.w, (const uint8_t *)out, olen);
	}
	mbox_finish(ctx, &m);
	free(line);
	fclose(fp);
	return 0;
}

/* ---- Maildir ---- */

/* RFC 3501 §5.1.3 modified UTF-7 -> UTF-8; -1 when malformed. */
static int mutf7_decode(const char *in, struct buf *out)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

	for (const char *p = in; *p != '\0'; p++) {
		if (*p != '&') {
			buf_append_byte(out, (uint8_t)*p);
			continue;
		}
		p++;
		if (*p == '-') {
			buf_append_byte(out, '&');
			continue;
		}
		uint32_t bits = 0, nbits = 0, hi = 0;

		for (; *p != '-'; p++) {
			const char *c = *p != '\0' ? strchr(b64, *p) : NULL;

			if (c == NULL)
				return -1;
			bits = (bits << 6) | (uint32_t)(c - b64);
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;

			if (u >= 0xd800 && u <= 0xdbff) {
				hi = u;
				continue;
			}
			if (u >= 0xdc00 && u <= 0xdfff) {
				if (hi == 0)
					return -1;
				u = 0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00);
				hi = 0;
			}
			if (u < 0x80) {
				buf_append_byte(out, (uint8_t)u);
			} else if (u < 0x800) {
				buf_append_byte(out, (uint8_t)(0xc0 | (u >> 6)));
				buf_append_byte(out, (uint8_t)(0x80 | (u & 0x3f)));
			} else if (u < 0x10000) {
				buf_append_byte(out, (uint8_t)(0xe0 | (u >> 12)));
				buf_append_byte(out, (uint8_t)(0x80 | ((u >> 6) & 0x3f)));
				buf_append_byte(out, (uint8_t)(0x80 | (u & 0x3f)));
			} else {
				buf_append_byte(out, (uint8_t)(0xf0 | (u >> 18)));
				buf_append_byte(out, (uint8_t)(0x80 | ((u >> 12) & 0x3f)));
				buf_append_byte(out, (uint8_t)(0x80 | ((u >> 6) & 0x3f)));
				buf_append_byte(out, (uint8_t)(0x80 | (u & 0x3f)));
			}
		}
	}
	return 0;
}

/* dovecot-keywords: "N name" lines; letter 'a'+N in a file name means keyword N. */
struct keyword_map {
	char *names[26];
};

static void keywords_load(const char *folder, const char *file, struct keyword_map *km)
{
	char *path = xasprintf("%s/%s", folder, file);
	FILE *fp = fopen(path, "re");
	char line[256];

	memset(km, 0, sizeof(*km));
	free(path);
	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL) {
		char name[128];
		int idx;

		if (sscanf(line, "%d %127s", &idx, name) == 2 && idx >= 0 && idx < 26)
			km->names[idx] = xstrdup(name);
	}
	fclose(fp);
}

static void keywords_free(struct keyword_map *km)
{
	for (int i = 0; i < 26; i++)
		free(km->names[i]);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void import_file(struct import_ctx *ctx, const char *mailbox, const char *path,
			const char *name, const struct keyword_map *km)
{
	const char *info = strstr(name, ":2,");
	struct store_save_meta meta = { 0 };
	const char *kw[26];
	struct crlf_writer w = { 0 };
	struct store_save_result res;
	struct stat sb;
	uint8_t block[65536];
	size_t n;
	FILE *fp;
	enum store_error e;

	if (info != NULL) {
		for (const char *p = info + 3; *p != '\0' && *p != ','; p++) {
			if (*p == 'S')
				meta.flags |= STORE_FLAG_SEEN;
			else if (*p == 'R')
				meta.flags |= STORE_FLAG_ANSWERED;
			else if (*p == 'F')
				meta.flags |= STORE_FLAG_FLAGGED;
			else if (*p == 'T')
				meta.flags |= STORE_FLAG_DELETED;
			else if (*p == 'D')
				meta.flags |= STORE_FLAG_DRAFT;
			else if (*p >= 'a' && *p <= 'z' && km->names[*p - 'a'] != NULL)
				kw[meta.keyword_count++] = km->names[*p - 'a'];
		}
	}
	meta.keywords = kw;
	fp = fopen(path, "re");
	if (fp == NULL || fstat(fileno(fp), &sb) < 0) {
		fprintf(stderr, "roost import: %s: %s\n", path, strerror(errno));
		ctx->failures++;
		if (fp != NULL)
			fclose(fp);
		return;
	}
	meta.internal_date = sb.st_mtime;
	e = store_save_begin(ctx->acct, mailbox, &w.save, NULL);
	if (e != STORE_OK) {
		fclose(fp);
		report_failure(ctx, mailbox, e);
		return;
	}
	buf_init(&w.out);
	while ((n = fread(block, 1, sizeof(block), fp)) > 0)
		crlf_write(&w, block, n);
	crlf_flush(&w);
	buf_free(&w.out);
	if (ferror(fp) && w.error == STORE_OK)
		w.error = STORE_ERR_IO;
	fclose(fp);
	if (w.error != STORE_OK) {
		store_save_abort(&w.save);
		report_failure(ctx, path, w.error);
		return;
	}
	e = store_save_finish(&w.save, &meta, &res, NULL);
	if (e != STORE_OK)
		report_failure(ctx, path, e);
	else
		ctx->messages++;
}

/* Roost writes this file into every folder it creates (store/local/local.h note 1). */
#define ROOST_FOLDER_MARK "roost-uidvalidity"

static bool is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool has_file(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	bool found = access(path, F_OK) == 0;

	free(path);
	return found;
}

static bool is_maildir_folder(const char *dir)
{
	char *cur = xasprintf("%s/cur", dir);
	bool found = is_dir(cur);

	free(cur);
	return found;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Roost's folder name (".A.B", every byte outside a safe set written as %XX with upper-case
 * hex, see store/local/names.c) -> mailbox name; -1 when malformed. */
static int roost_folder_decode(const char *in, struct buf *out)
{
	for (const char *p = in; *p != '\0'; p++) {
		if (*p == '.') {
			buf_append_byte(out, '/');
		} else if (*p == '%') {
			int hi = hex_digit(p[1]);
			int lo = hi < 0 ? -1 : hex_digit(p[2]);

			if (lo < 0)
				return -1;
			buf_append_byte(out, (uint8_t)(hi * 16 + lo));
			p += 2;
		} else {
			buf_append_byte(out, (uint8_t)*p);
		}
	}
	return 0;
}

/* Dovecot's folder name (modified UTF-7, '.' as separator) -> mailbox name; -1 when
 * malformed. */
static int dovecot_folder_decode(const char *in, struct buf *out)
{
	if (mutf7_decode(in, out) < 0)
		return -1;
	for (size_t k = 0; k < out->len; k++)
		if (out->data[k] == '.')
			out->data[k] = '/';
	return 0;
}

/* One Maildir folder (cur/ and new/), messages in file-name (delivery time) order. */
static void import_folder(struct import_ctx *ctx, const char *folder, const char *mailbox,
			  bool roost_layout)
{
	static const char *const subs[] = { "cur", "new" };
	struct keyword_map km;
	enum store_error e = store_mailbox_create(ctx->acct, mailbox, 0, NULL);

	if (e != STORE_OK && e != STORE_ERR_EXISTS) {
		report_failure(ctx, mailbox, e);
		return;
	}
	keywords_load(folder, roost_layout ? "roost-keywords" : "dovecot-keywords", &km);
	for (size_t s = 0; s < ARRAY_LEN(subs); s++) {
		char *dir = xasprintf("%s/%s", folder, subs[s]);
		DIR *d = opendir(dir);
		struct dirent *de;
		char **names = NULL;
		size_t count = 0;

		if (d == NULL) {
			free(dir);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			names = xrealloc(names, (count + 1) * sizeof(*names));
			names[count++] = xstrdup(de->d_name);
		}
		closedir(d);
		if (count > 1)
			qsort(names, count, sizeof(*names), cmp_str);
		for (size_t i = 0; i < count; i++) {
			char *p = xasprintf("%s/%s", dir, names[i]);

			import_file(ctx, mailbox, p, names[i], &km);
			free(p);
			free(names[i]);
		}
		free(names);
		free(dir);
	}
	keywords_free(&km);
}

static int import_maildir(struct import_ctx *ctx, const char *root)
{
	/* A Roost account directory: every folder below it uses Roost's names. */
	bool roost_root = has_file(root, "roost-index.sqlite") || has_file(root, ROOST_FOLDER_MARK);
	DIR *d;
	struct dirent *de;
	char **folders = NULL;
	size_t count = 0;

	if (is_maildir_folder(root))
		import_folder(ctx, root, "INBOX", roost_root);
	d = opendir(root);
	if (d == NULL) {
		fprintf(stderr, "roost import: %s: %s\n", root, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			folders = xrealloc(folders, (count + 1) * sizeof(*folders));
			folders[count++] = xstrdup(de->d_name);
		}
	closedir(d);
	/* Sorted, so a parent folder is imported before its children. */
	if (count > 1)
		qsort(folders, count, sizeof(*folders), cmp_str);
	for (size_t i = 0; i < count; i++) {
		char *path = xasprintf("%s/%s", root, folders[i]);
		struct buf name;

		buf_init(&name);
		if (is_maildir_folder(path)) {
			bool roost = roost_root || has_file(path, ROOST_FOLDER_MARK);
			int r = roost ? roost_folder_decode(folders[i] + 1, &name)
				      : dovecot_folder_decode(folders[i] + 1, &name);

			if (r == 0 && store_mailbox_name_check(buf_cstr(&name), NULL, NULL) == STORE_OK) {
				import_folder(ctx, path, buf_cstr(&name), roost);
			} else {
				fprintf(stderr, "roost import: skipping folder %s (not a valid %s "
						"folder name)\n",
					folders[i], roost ? "Roost" : "Maildir++");
				ctx->failures++;
			}
		}
		buf_free(&name);
		free(path);
		free(folders[i]);
	}
	free(folders);
	return 0;
}

/* Is PATH something import can read? A directory must be a Maildir (cur/) or a Maildir++ root
 * (at least one ".Folder" with cur/); a file must be empty or start with an mbox "From " line.
 * Returns 0, or -1 after telling the user why not. */
static int import_source_check(const char *path, const struct stat *sb)
{
	bool ok = false;

	if (S_ISDIR(sb->st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;

		ok = is_maildir_folder(path);
		while (!ok && d != NULL && (de = readdir(d)) != NULL) {
			if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			char *sub = xasprintf("%s/%s", path, de->d_name);

			ok = is_maildir_folder(sub);
			free(sub);
		}
		if (d != NULL)
			closedir(d);
	} else if (S_ISREG(sb->st_mode)) {
		FILE *fp = fopen(path, "re");
		char head[5];
		size_t n = fp ? fread(head, 1, sizeof(head), fp) : 0;

		ok = fp != NULL && (n == 0 ? !ferror(fp) : n == 5 && memcmp(head, "From ", 5) == 0);
		if (fp != NULL)
			fclose(fp);
	}
	if (!ok)
		fprintf(stderr, "roost import: %s is neither a Maildir (a directory with cur/, or "
				".Folder directories with cur/) nor an mbox (a file starting with "
				"\"From \")\n",
			path);
	return ok ? 0 : -1;
}

/* A running server shares the index but not its change feed: ask it to announce what was
 * added, so sessions with the mailbox open see it now. No server, nothing to do. */
static void tell_running_server(const struct config *cfg, const char *address)
{
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	char *request = xasprintf("catch-up %s", address);
	char reply[256];

	if (cli_server_request(data_dir, request, reply, sizeof(reply)) == 0 &&
	    strncmp(reply, "ok", 2) != 0)
		fprintf(stderr, "roost import: the running server did not take the new messages "
				"in (%s); its sessions see them after they select the mailbox again\n",
			reply);
	free(request);
	free(data_dir);
}

int cmd_import(struct config *cfg, int argc, char **argv)
{
	struct store_settings set = { .data_dir = cfg->data_dir,
				      .max_message_size = (uint64_t)cfg->message_size };
	struct import_ctx ctx = { 0 };
	struct store_err err = { 0 };
	struct store *store;
	struct stat sb;
	enum store_error e;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: roost import ADDRESS PATH\n");
		return 2;
	}
	if (stat(argv[1], &sb) < 0) {
		fprintf(stderr, "roost import: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (import_source_check(argv[1], &sb) < 0)
		return 1;
	store = store_open(&set, &err);
	if (store == NULL) {
		fprintf(stderr, "roost import: %s\n", err.text);
		return 1;
	}
	e = store_account_open(store, argv[0], &ctx.acct, &err);
	if (e != STORE_OK) {
		fprintf(stderr, "roost import: %s: %s\n", argv[0], err.text);
		store_close(&store);
		return 1;
	}
	r = S_ISDIR(sb.st_mode) ? import_maildir(&ctx, argv[1]) : import_mbox(&ctx, argv[1], "INBOX");
	printf("imported %lu message(s) into %s, %lu failure(s)\n", ctx.messages, argv[0],
	       ctx.failures);
	store_account_close(&ctx.acct);
	store_close(&store);
	if (ctx.messages > 0)
		tell_running_server(cfg, argv[0]);
	return r < 0 || ctx.failures > 0 ? 1 : 0;
}
