/* The bridge between saved bytes and the MIME layer: computes the IMAP ENVELOPE and
 * BODYSTRUCTURE strings that the index caches next to each message, so FETCH of either never
 * parses the message again. */
#include "../../mime/mime.h"
#include "local.h"

void local_mime_cache(const uint8_t *data, size_t len, char **envelope_r, char **bodystructure_r)
{
	struct mime_message *msg = mime_parse(data, len, NULL);
	struct buf b;

	buf_init(&b);
	mime_envelope(msg, mime_root(msg), &b);
	*envelope_r = xstrdup(buf_cstr(&b));
	buf_reset(&b);
	mime_bodystructure(msg, mime_root(msg), true, &b);
	*bodystructure_r = xstrdup(buf_cstr(&b));
	buf_free(&b);
	mime_message_free(&msg);
}
