/* Counts open connections per peer address so one address cannot take every slot. A chained
 * hash table keyed with a per-process random seed (attackers choose the keys: CVE-2021-33582
 * class), guarded by one mutex: it is touched once at accept and once at close. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/random.h>

#include "net_internal.h"

#define IPLIMIT_BUCKETS 4096

struct ip_entry {
	struct ip_entry *next;
	uint32_t count;
	char ip[64];
};

struct net_iplimit {
	pthread_mutex_t lock;
	uint32_t max_per_ip;
	uint64_t seed;
	struct ip_entry *buckets[IPLIMIT_BUCKETS];
};

static uint32_t iplimit_hash(const struct net_iplimit *lim, const char *ip)
{
	uint64_t h = lim->seed ^ 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)ip; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return (uint32_t)(h % IPLIMIT_BUCKETS);
}

struct net_iplimit *net_iplimit_new(uint32_t max_per_ip)
{
	struct net_iplimit *lim = xcalloc(1, sizeof(*lim));

	pthread_mutex_init(&lim->lock, NULL);
	lim->max_per_ip = max_per_ip;
	if (getrandom(&lim->seed, sizeof(lim->seed), 0) != sizeof(lim->seed))
		lim->seed = (uint64_t)time_now_ms() * 0x9e3779b97f4a7c15ULL;
	return lim;
}

bool net_iplimit_acquire(struct net_iplimit *lim, const char *ip)
{
	uint32_t b = iplimit_hash(lim, ip);
	struct ip_entry *e;
	bool ok = true;

	pthread_mutex_lock(&lim->lock);
	for (e = lim->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->ip, ip) == 0)
			break;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->ip, sizeof(e->ip), "%s", ip);
		e->next = lim->buckets[b];
		lim->buckets[b] = e;
	}
	if (e->count >= lim->max_per_ip)
		ok = false;
	else
		e->count++;
	pthread_mutex_unlock(&lim->lock);
	return ok;
}

void net_iplimit_release(struct net_iplimit *lim, const char *ip)
{
	uint32_t b = iplimit_hash(lim, ip);
	struct ip_entry **pp;

	pthread_mutex_lock(&lim->lock);
	for (pp = &lim->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
		struct ip_entry *e = *pp;
		if (strcmp(e->ip, ip) != 0)
			continue;
		if (e->count > 0)
			e->count--;
		if (e->count == 0) { /* entries exist only while connections do */
			*pp = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&lim->lock);
}

void net_iplimit_free(struct net_iplimit **lim_p)
{
	struct net_iplimit *lim = lim_p ? *lim_p : NULL;

	if (lim == NULL)
		return;
	for (size_t i = 0; i < IPLIMIT_BUCKETS; i++) {
		struct ip_entry *e = lim->buckets[i];
		while (e) {
			struct ip_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	pthread_mutex_destroy(&lim->lock);
	free(lim);
	*lim_p = NULL;
}
