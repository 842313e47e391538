/* A blocking client connection with timeouts and optional STARTTLS, for the outbound SMTP
 * client of the queue, which runs on its own threads (never on an event loop). */
#ifndef ROOST_NET_CLIENT_H
#define ROOST_NET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/core.h"

struct net_client;

/* Connects to a numeric address (IPv4 or IPv6) within timeout_ms. NULL with a reason. */
struct net_client *net_client_connect(const char *ip, unsigned port, unsigned timeout_ms,
				      char *err, size_t errlen);
/* Upgrades to TLS (client side). verify NULL: opportunistic, no certificate check. Otherwise
 * the certificate must be valid for server_name under the CAs of verify->ca_file (the
 * system's when empty). -1 with a reason. */
struct net_client_verify {
	const char *ca_file;
};
int net_client_starttls(struct net_client *c, const char *server_name,
			const struct net_client_verify *verify, char *err, size_t errlen);
bool net_client_is_tls(const struct net_client *c);
/* One line without CRLF (at most max bytes) into line; -1 on timeout, close or an over-long
 * line, with a reason in err. */
int net_client_read_line(struct net_client *c, size_t max, struct buf *line, char *err,
			 size_t errlen);
int net_client_write(struct net_client *c, const void *data, size_t len, char *err,
		     size_t errlen);
void net_client_set_timeout(struct net_client *c, unsigned timeout_ms);
void net_client_close(struct net_client **c);

#endif
