/* COMPRESS DEFLATE (RFC 4978): after the tagged OK, both directions are deflate streams. The
 * net layer owns zlib (net_conn_start_compress); this file only speaks the command. */
#include "../core/core.h"
#include "session.h"

void imap_cmd_compress(struct imap_session *s, const char *tag, struct imap_parser *ps)
{
	struct imap_slice mech;

	if (!imap_parse_atom(ps, &mech) || !imap_parse_crlf(ps)) {
		imap_bad(s, tag, "COMPRESS expects a mechanism");
		return;
	}
	if (!imap_slice_ieq(&mech, "DEFLATE")) {
		imap_bad(s, tag, "Unknown compression mechanism");
		return;
	}
	/* RFC 4978 §3: only once per connection. */
	if (net_conn_compressed(s->conn)) {
		imap_tagged(s, tag, "%s NO [COMPRESSIONACTIVE] DEFLATE already active", tag);
		return;
	}
	/* The OK goes out as it is; everything after it is compressed. */
	imap_tagged(s, tag, "%s OK DEFLATE active", tag);
	if (net_conn_start_compress(s->conn) < 0)
		net_conn_close(s->conn);
}
