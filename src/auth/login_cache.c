/* The verified-login cache: skips the password hash (yescrypt, ~15 ms of CPU) for a login that
 * repeats one which was verified the slow way a short while ago. Mail clients log in again and
 * again with the same password (every POP3 poll, every IMAP connection of a phone), and the
 * hash would otherwise be most of what a login costs.
 *
 * What is kept per user: HMAC-SHA256(per-process key, stored hash || NUL || password) and an
 * expiry. Rules that keep this safe:
 *  1. Only a success that the real hash check confirmed is stored; failures never are, so a
 *     wrong password or an unknown user always costs the full hash (no timing oracle).
 *  2. The stored hash is part of the MAC, and it is read from the directory on every login:
 *     after `roost user passwd` (any process) the old password no longer matches the entry.
 *  3. The key is random per process and never leaves memory; entries expire after the TTL;
 *     the table is bounded: one entry per slot, a newcomer takes a colliding slot over. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_internal.h"

#define LOGIN_CACHE_SLOTS 4096

struct login_cache_entry {
	char *user;
	uint8_t mac[32];
	uint64_t expires_ms;
	uint64_t stored_ms;
};

struct auth_login_cache {
	pthread_mutex_t lock;
	uint8_t key[32];
	uint64_t ttl_ms;
	struct login_cache_entry slots[LOGIN_CACHE_SLOTS];
};

static void login_mac(const struct auth_login_cache *c, const char *hash, const char *password,
		      uint8_t out[32])
{
	unsigned int len = 32;
	uint8_t *buf;
	size_t hl = strlen(hash), pl = strlen(password);

	buf = xmalloc(hl + 1 + pl);
	memcpy(buf, hash, hl);
	buf[hl] = 0;
	memcpy(buf + hl + 1, password, pl);
	HMAC(EVP_sha256(), c->key, sizeof(c->key), buf, hl + 1 + pl, out, &len);
	mem_wipe(buf, hl + 1 + pl);
	free(buf);
}

static size_t login_slot(const char *user)
{
	/* FNV-1a; the key is the account name, not attacker-chosen in bulk (only users that
	 * exist and logged in successfully are ever stored), so an unkeyed hash will do. */
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h % LOGIN_CACHE_SLOTS);
}

void auth_directory_set_login_cache(struct auth_directory *dir, uint32_t ttl_seconds)
{
	if (dir->login_cache == NULL) {
		dir->login_cache = xcalloc(1, sizeof(*dir->login_cache));
		pthread_mutex_init(&dir->login_cache->lock, NULL);
		if (RAND_bytes(dir->login_cache->key, sizeof(dir->login_cache->key)) != 1)
			abort();
	}
	dir->login_cache->ttl_ms = (uint64_t)ttl_seconds * 1000;
}

bool auth_login_cache_hit(struct auth_directory *dir, const char *user, const char *hash,
			  const char *password)
{
	struct auth_login_cache *c = dir->login_cache;
	uint8_t mac[32];
	bool hit = false;

	if (c == NULL || c->ttl_ms == 0)
		return false;
	login_mac(c, hash, password, mac);
	pthread_mutex_lock(&c->lock);
	struct login_cache_entry *e = &c->slots[login_slot(user)];
	if (e->user != NULL && strcmp(e->user, user) == 0 && e->expires_ms > time_now_ms() &&
	    mem_equal_ct(e->mac, mac, sizeof(mac)))
		hit = true;
	pthread_mutex_unlock(&c->lock);
	mem_wipe(mac, sizeof(mac));
	return hit;
}

void auth_login_cache_store(struct auth_directory *dir, const char *user, const char *hash,
			    const char *password)
{
	struct auth_login_cache *c = dir->login_cache;
	uint8_t mac[32];

	if (c == NULL || c->ttl_ms == 0)
		return;
	login_mac(c, hash, password, mac);
	pthread_mutex_lock(&c->lock);
	struct login_cache_entry *e = &c->slots[login_slot(user)];
	if (e->user == NULL || strcmp(e->user, user) != 0) {
		free(e->user);
		e->user = xstrdup(user); /* a colliding user simply takes the slot over */
	}
	memcpy(e->mac, mac, sizeof(mac));
	e->stored_ms = time_now_ms();
	e->expires_ms = e->stored_ms + c->ttl_ms;
	pthread_mutex_unlock(&c->lock);
	mem_wipe(mac, sizeof(mac));
}

void auth_login_cache_free(struct auth_login_cache **cp)
{
	struct auth_login_cache *c = cp ? *cp : NULL;

	if (c == NULL)
		return;
	for (size_t i = 0; i < LOGIN_CACHE_SLOTS; i++)
		free(c->slots[i].user);
	mem_wipe(c->key, sizeof(c->key));
	pthread_mutex_destroy(&c->lock);
	free(c);
	*cp = NULL;
}
