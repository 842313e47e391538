/* The POP3 server protocol (RFC 1939, RFC 2449, RFC 5034, STLS from RFC 2595) for the pop3
 * and pop3s listeners. cli/ fills struct pop3_deps and registers pop3_protocol. */
#ifndef ROOST_POP3_H
#define ROOST_POP3_H

#include "../auth/auth.h"
#include "../config/config.h"
#include "../net/net.h"
#include "../store/store.h"

struct pop3_deps {
	const struct config *cfg;
	struct auth_directory *dir;
	struct auth_penalty *penalty;
	struct store *store;
};

extern const struct net_protocol pop3_protocol;

#endif
