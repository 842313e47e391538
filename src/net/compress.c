/* COMPRESS=DEFLATE (RFC 4978) for a connection: raw deflate both ways, under TLS when TLS is
 * on (the transport bufferevent carries compressed octets, whatever it is).
 *
 * Output is deflated as it is written, with Z_SYNC_FLUSH at the end of every write call, so
 * each reply reaches the peer whole; a command's output is written in few large calls (FETCH
 * batches, SEARCH lines), so the flush markers (5 octets each) cost little. Input is inflated
 * on demand into a plain buffer the readers use, at most NET_ZIN_HIGH octets ahead of what the
 * protocol has consumed: a small compressed input that inflates hugely stays compressed in
 * the transport's buffer, whose read watermark then stops reading from the socket.
 *
 * Memory, counted with a counting zalloc on this zlib (1.2.13): the deflater, with a 1 KiB
 * window and memLevel 4, holds 18 KiB; the inflater 7 KiB, plus the 32 KiB window zlib gives
 * it at the first compressed input (it must accept the peer's window, which may be the
 * largest). So a compressed connection, idle or busy, costs about 57 KiB more than a plain
 * one; connections that never send COMPRESS pay nothing. A smaller deflate window costs some
 * ratio on IMAP text, which repeats mostly within a line or a FETCH batch. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <event2/buffer.h>

#include "../core/core.h"
#include "net_internal.h"

#define NET_ZIN_HIGH (256 * 1024)
#define NET_ZCHUNK (16 * 1024)
#define NET_DEFLATE_WINDOW_BITS 10
#define NET_DEFLATE_MEM_LEVEL 4

struct net_zstream {
	z_stream def, inf;
	bool def_ready, inf_ready;
	bool failed;		/* corrupt input: the connection must close */
	struct evbuffer *plain_in;
};

struct net_zstream *net_zstream_new(void)
{
	struct net_zstream *z = xcalloc(1, sizeof(*z));

	/* Negative window bits: raw deflate, no zlib header (RFC 4978 §4). */
	if (deflateInit2(&z->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -NET_DEFLATE_WINDOW_BITS,
			 NET_DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK ||
	    inflateInit2(&z->inf, -MAX_WBITS) != Z_OK) {
		net_zstream_free(&z);
		return NULL;
	}
	z->def_ready = z->inf_ready = true;
	z->plain_in = evbuffer_new();
	if (z->plain_in == NULL)
		abort();
	return z;
}

void net_zstream_free(struct net_zstream **zp)
{
	struct net_zstream *z = *zp;

	if (z == NULL)
		return;
	if (z->def_ready)
		deflateEnd(&z->def);
	if (z->inf_ready)
		inflateEnd(&z->inf);
	if (z->plain_in != NULL)
		evbuffer_free(z->plain_in);
	free(z);
	*zp = NULL;
}

void net_zstream_deflate(struct net_zstream *z, const void *data, size_t len,
			 struct evbuffer *out)
{
	uint8_t chunk[NET_ZCHUNK];

	z->def.next_in = (Bytef *)(uintptr_t)data;
	/* zlib counts in uInt: feed very large writes in slices. */
	while (len > 0 || z->def.avail_in > 0) {
		if (z->def.avail_in == 0) {
			size_t n = len > (1u << 30) ? (1u << 30) : len;
			z->def.avail_in = (uInt)n;
			len -= n;
		}
		do {
			z->def.next_out = chunk;
			z->def.avail_out = sizeof(chunk);
			deflate(&z->def, len > 0 ? Z_NO_FLUSH : Z_SYNC_FLUSH);
			evbuffer_add(out, chunk, sizeof(chunk) - z->def.avail_out);
		} while (z->def.avail_out == 0);
		if (len == 0)
			break;
	}
}

struct evbuffer *net_zstream_input(struct net_zstream *z, struct evbuffer *compressed)
{
	uint8_t chunk[NET_ZCHUNK];

	while (!z->failed && evbuffer_get_length(z->plain_in) < NET_ZIN_HIGH &&
	       evbuffer_get_length(compressed) > 0) {
		size_t avail = evbuffer_get_contiguous_space(compressed);
		uint8_t *src = evbuffer_pullup(compressed, (ssize_t)avail);
		int rc;

		z->inf.next_in = src;
		z->inf.avail_in = (uInt)(avail > (1u << 30) ? (1u << 30) : avail);
		z->inf.next_out = chunk;
		z->inf.avail_out = sizeof(chunk);
		rc = inflate(&z->inf, Z_SYNC_FLUSH);
		evbuffer_drain(compressed, (size_t)(z->inf.next_in - src));
		evbuffer_add(z->plain_in, chunk, sizeof(chunk) - z->inf.avail_out);
		if (rc == Z_BUF_ERROR)
			break; /* needs more input */
		if (rc != Z_OK) {
			z->failed = true; /* corrupt stream, or its end: nothing more can follow */
			break;
		}
	}
	return z->plain_in;
}

struct evbuffer *net_zstream_input_buffer(const struct net_zstream *z)
{
	return z->plain_in;
}

bool net_zstream_failed(const struct net_zstream *z)
{
	return z->failed;
}
