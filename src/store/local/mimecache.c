/* The bridge between saved bytes and the MIME layer: computes the IMAP ENVELOPE and
 * BODYSTRUCTURE strings that the index caches next to each message. */
#include "local.h"

void local_mime_cache(const uint8_t *data, size_t len, char **envelope_r, char **bodystructure_r)
{
	(void)data;
	(void)len;
	/* Until src/mime provides the parser, nothing is cached and the columns stay NULL;
	 * store_message_cache fills them on first request once it can. */
	*envelope_r = NULL;
	*bodystructure_r = NULL;
}
