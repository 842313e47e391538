/* Hooks for tests of SCRAM-SHA-256 only: fixing the server nonce and a user's salt lets a test
 * replay the exchange of RFC 7677 §3 byte for byte. Production code never calls these. */
#ifndef ROOST_SCRAM_INTERNAL_H
#define ROOST_SCRAM_INTERNAL_H

#include "auth.h"

/* The server nonce the next server-first message uses instead of a random one. */
void auth_scram_fix_server_nonce(struct sasl_session *s, const char *nonce);

/* Replaces an existing user's SCRAM keys with ones derived from password, salt, iterations. */
int auth_scram_set_user_keys(struct auth_directory *dir, const char *address,
			     const char *password, const uint8_t *salt, size_t salt_len,
			     uint32_t iterations);

#endif
