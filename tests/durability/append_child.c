/* Driver for the store durability tests (the Python runners in tests/durability). It appends numbered messages
 * to one account and prints, flushed, one line per result *after* the store returned, so a
 * parent that kills it knows exactly what was acknowledged:
 *   A uid crc     append acknowledged          F code   append failed (store_error)
 *   P uid         expunge about to start       X uid    expunge acknowledged
 *   L uid crc ok|BAD   a message in the listing (crc recomputed, checked against its header)
 *   N uidnext     after open                   R        ready (appends follow)
 *   O code        account open failed
 * Modes:
 *   run DATA      (kill -9 loop) list, then append forever, expunging old mail now and then
 *   fsync DATA N  append N messages, reopening after failures, then list
 *   fill DATA     append 256 KiB messages until the disk is full, expunge 3, append again, list
 *   list DATA     list only */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/core.h"
#include "store/store.h"

#define ADDRESS "durable@example.org"

static uint32_t body_crc(const uint8_t *body, size_t len)
{
	return (uint32_t)crc32(0L, body, (uInt)len);
}

/* "Subject: seq N\r\nX-Check: CRC\r\n\r\n" + body + "END\r\n" (body includes END). */
static char *make_message(unsigned long seq, size_t body_len, uint32_t *crc_r)
{
	struct buf body, msg;
	char *out;

	buf_init(&body);
	buf_init(&msg);
	while (body.len + 80 < body_len)
		buf_printf(&body, "seq %lu line %zu %08x abcdefghijklmnopqrstuvwxyz0123456789\r\n", seq,
			   body.len, (unsigned)rand());
	buf_append_str(&body, "END\r\n");
	*crc_r = body_crc(body.data, body.len);
	buf_printf(&msg, "Subject: seq %lu\r\nX-Check: %08x\r\n\r\n", seq, *crc_r);
	buf_append(&msg, body.data, body.len);
	out = xstrdup(buf_cstr(&msg));
	buf_free(&body);
	buf_free(&msg);
	return out;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static enum store_error open_account(struct store *store, struct store_account **acct)
{
	enum store_error e = store_account_open(store, ADDRESS, acct, NULL);

	if (e != STORE_OK)
		say("O %d\n", (int)e);
	return e;
}

static uint64_t inbox_id(struct store_account *acct)
{
	struct store_mailbox_status st;

	if (store_mailbox_status(acct, "INBOX", &st, NULL) != STORE_OK)
		return 0;
	return st.id;
}

static void list_all(struct store_account *acct)
{
	uint64_t id = inbox_id(acct);
	struct store_msg *msgs;
	size_t n;
	struct store_mailbox_status st;

	if (store_msg_list(acct, id, NULL, &msgs, &n, NULL) != STORE_OK) {
		say("E list\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_message *m;
		size_t len;

		if (store_message_open(acct, id, msgs[i].uid, &m, NULL) != STORE_OK) {
			say("L %u 0 BAD\n", msgs[i].uid);
			continue;
		}
		const uint8_t *d = store_message_data(m, &len);
		const uint8_t *sep = memmem(d, len, "\r\n\r\n", 4);
		const uint8_t *hdr = memmem(d, len, "X-Check: ", 9);
		bool ok = false;
		uint32_t crc = 0;

		if (sep != NULL && hdr != NULL && len == msgs[i].size) {
			const uint8_t *body = sep + 4;

			crc = body_crc(body, len - (size_t)(body - d));
			ok = strtoul((const char *)hdr + 9, NULL, 16) == crc && len >= 5 &&
			     memcmp(d + len - 5, "END\r\n", 5) == 0;
		}
		say("L %u %08x %s\n", msgs[i].uid, crc, ok ? "ok" : "BAD");
		store_message_close(&m);
	}
	store_msg_list_free(&msgs, n);
	if (store_mailbox_status(acct, "INBOX", &st, NULL) == STORE_OK)
		say("N %u\n", st.uidnext);
}

static enum store_error append_one(struct store_account *acct, unsigned long seq, size_t size)
{
	uint32_t crc;
	char *text = make_message(seq, size, &crc);
	struct store_save *save;
	struct store_save_result res;
	enum store_error e;
	size_t len = strlen(text);

	e = store_save_begin(acct, "INBOX", &save, NULL);
	/* Written in two pieces so a kill can land between writes. */
	if (e == STORE_OK)
		e = store_save_write(save, text, len / 2, NULL);
	if (e == STORE_OK)
		e = store_save_write(save, text + len / 2, len - len / 2, NULL);
	if (e == STORE_OK) {
		e = store_save_finish(&save, NULL, &res, NULL);
		if (e == STORE_OK)
			say("A %u %08x\n", res.uid, crc);
	} else {
		store_save_abort(&save);
	}
	if (e != STORE_OK)
		say("F %d\n", (int)e);
	free(text);
	return e;
}

static void expunge_oldest(struct store_account *acct, size_t count)
{
	uint64_t id = inbox_id(acct);
	struct store_msg *msgs;
	size_t n;

	if (store_msg_list(acct, id, NULL, &msgs, &n, NULL) != STORE_OK)
		return;
	for (size_t i = 0; i < count && i < n; i++) {
		struct store_uid_range r = { msgs[i].uid, msgs[i].uid };
		uint32_t *gone;
		size_t gn;

		say("P %u\n", msgs[i].uid);
		if (store_expunge(acct, id, &r, 1, false, &gone, &gn, NULL) == STORE_OK) {
			if (gn == 1)
				say("X %u\n", msgs[i].uid);
			free(gone);
		}
	}
	store_msg_list_free(&msgs, n);
}

int main(int argc, char **argv)
{
	struct store_settings set = { 0 };
	struct store *store;
	struct store_account *acct = NULL;
	unsigned long seq = (unsigned long)getpid() * 100000UL;

	if (argc < 3) {
		fprintf(stderr, "usage: append_child run|fsync|fill|list DATA [N]\n");
		return 2;
	}
	log_set_level(LOG_ERROR);
	srand((unsigned)getpid());
	set.data_dir = argv[2];
	store = store_open(&set, NULL);
	if (store == NULL)
		return 1;
	if (strcmp(argv[1], "list") == 0) {
		if (open_account(store, &acct) == STORE_OK)
			list_all(acct);
	} else if (strcmp(argv[1], "run") == 0) {
		if (open_account(store, &acct) != STORE_OK)
			return 1;
		list_all(acct);
		say("R\n");
		for (unsigned long i = 0;; i++) {
			append_one(acct, seq++, 200 + (size_t)(rand() % 20000));
			if (i % 8 == 7) {
				struct store_mailbox_status st;

				if (store_mailbox_status(acct, "INBOX", &st, NULL) == STORE_OK &&
				    st.messages > 60)
					expunge_oldest(acct, 4);
			}
		}
	} else if (strcmp(argv[1], "fsync") == 0 && argc > 3) {
		int n = atoi(argv[3]);

		for (int i = 0; i < n; i++) {
			if (acct == NULL && open_account(store, &acct) != STORE_OK)
				continue;
			if (append_one(acct, seq++, 300 + (size_t)(rand() % 3000)) != STORE_OK) {
				/* Start over with a fresh handle, as a server would after an
				 * index error. */
				store_account_close(&acct);
			}
		}
		if (acct != NULL || open_account(store, &acct) == STORE_OK)
			list_all(acct);
	} else if (strcmp(argv[1], "fill") == 0) {
		enum store_error e = STORE_OK;

		if (open_account(store, &acct) != STORE_OK)
			return 1;
		for (int i = 0; i < 1000 && e == STORE_OK; i++)
			e = append_one(acct, seq++, 256 * 1024);
		expunge_oldest(acct, 3);
		append_one(acct, seq++, 1000);
		list_all(acct);
	} else {
		fprintf(stderr, "append_child: unknown mode %s\n", argv[1]);
		return 2;
	}
	store_account_close(&acct);
	store_close(&store);
	return 0;
}
