/* The bridge between saved bytes and the MIME layer: computes the IMAP ENVELOPE and
 * BODYSTRUCTURE strings that the index caches next to each message, so FETCH of either never
 * parses the message again. */
#include <string.h>

#include "../../mime/mime.h"
#include "local.h"

/* The first "<...>" of TEXT, NUL-terminated in place; NULL when there is none. */
static char *first_msg_id(char *text)
{
	char *open = strchr(text, '<'), *close;

	if (open == NULL || (close = strchr(open, '>')) == NULL || close == open + 1)
		return NULL;
	close[1] = '\0';
	return open;
}

/* RFC 8474 §5.2 THREADID: the thread's root is the first message-id of References, else
 * that of In-Reply-To, else the message's own Message-ID; its FNV-1a hash (below bit 62, never
 * 0) is the thread. Replies that keep References (RFC 5322 §3.6.4) share their root's. */
static uint64_t thread_id(const struct mime_message *msg)
{
	static const char *const fields[] = { "References", "In-Reply-To", "Message-ID" };
	struct buf b;
	uint64_t h = 0;

	buf_init(&b);
	for (size_t i = 0; i < ARRAY_LEN(fields) && h == 0; i++) {
		char *id;

		buf_reset(&b);
		if (mime_header_get(msg, mime_root(msg), fields[i], 0, &b) < 0 ||
		    (id = first_msg_id((char *)buf_cstr(&b))) == NULL)
			continue;
		h = UINT64_C(0xcbf29ce484222325);
		for (const char *p = id; *p != '\0'; p++)
			if (*p != ' ' && *p != '\t')
				h = (h ^ (uint8_t)*p) * UINT64_C(0x100000001b3);
		h &= (UINT64_C(1) << 62) - 1;
		if (h == 0)
			h = 1;
	}
	buf_free(&b);
	return h;
}

void local_mime_cache(const uint8_t *data, size_t len, char **envelope_r, char **bodystructure_r,
		      uint64_t *thread_id_r)
{
	struct mime_message *msg = mime_parse(data, len, NULL);
	struct buf b;

	if (thread_id_r != NULL)
		*thread_id_r = thread_id(msg);
	buf_init(&b);
	mime_envelope(msg, mime_root(msg), &b);
	*envelope_r = xstrdup(buf_cstr(&b));
	buf_reset(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	*bodystructure_r = xstrdup(buf_cstr(&b));
	buf_free(&b);
	mime_message_free(&msg);
}
