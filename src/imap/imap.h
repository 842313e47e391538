/* The IMAP4rev2/IMAP4rev1 server protocol. cli/ fills struct imap_deps and registers
 * imap_protocol for the imap and imaps listeners. */
#ifndef ROOST_IMAP_H
#define ROOST_IMAP_H

#include "../auth/auth.h"
#include "../config/config.h"
#include "../net/net.h"
#include "../store/store.h"

struct imap_deps {
	const struct config *cfg;
	struct auth_directory *dir;
	struct auth_penalty *penalty;
	struct store *store;
};

extern const struct net_protocol imap_protocol;

#endif
