/* The SMTP server protocol for the MX (smtp), submission (submission, submissions) and LMTP
 * (RFC 2033) listeners. cli/ fills struct smtp_deps and registers smtp_protocol. */
#ifndef ROOST_SMTP_H
#define ROOST_SMTP_H

#include "../auth/auth.h"
#include "../config/config.h"
#include "../delivery/delivery.h"
#include "../net/net.h"

struct smtp_deps {
	const struct config *cfg;
	struct auth_directory *dir;
	struct auth_penalty *penalty;
	struct delivery *delivery;
	struct auth_greylist *greylist; /* NULL: [greylist] enabled = no */
};

extern const struct net_protocol smtp_protocol;

#endif
