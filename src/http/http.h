/* The HTTP listeners: [listen] http and https serve Prometheus metrics and mail client
 * autoconfiguration; [listen] metrics serves /metrics only. libevent's evhttp on one thread
 * of its own with its own event loop: requests are rare and small, and nothing here touches
 * the mail loops. Every other path is 404; no file is ever read from disk.
 *
 * Ownership: http_server_new binds (while still root) and http_server_start runs the thread;
 * http_server_free stops it and closes everything. The hooks run on the HTTP thread. */
#ifndef ROOST_HTTP_H
#define ROOST_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "../config/config.h"

struct tls_context;
struct http_server;

/* Where a lower layer's knowledge comes from; cli/ wires them. */
struct http_hooks {
	void *ctx;
	/* Is the domain (lower case, no trailing dot) one of ours? */
	bool (*local_domain)(void *ctx, const char *domain);
	/* Called before each scrape: refresh the gauges that are computed, not counted (the
	 * queue's size and oldest age). May be NULL. */
	void (*before_scrape)(void *ctx);
};

/* NULL with nothing bound when no HTTP listener is configured (and err empty), or on error
 * (err says why). tls may be NULL unless [listen] https is set. */
struct http_server *http_server_new(const struct config *cfg, struct tls_context *tls,
				    char *err, size_t errlen);
/* Wires the hooks (after the layers behind them are open) and starts serving. */
int http_server_start(struct http_server *srv, const struct http_hooks *hooks);
void http_server_free(struct http_server **srv);

#endif
