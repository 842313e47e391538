/* Login penalties and per-user+IP session limits, shared by every worker thread.
 *
 * Four hash tables under one mutex: failures (keyed by IP and by claimed user), live session
 * counts (keyed by user+IP), the last login of each user (POP3 LOGIN-DELAY) and message rates
 * (keyed by IP or by user). Keys are
 * hashed with SipHash-2-4 under a per-process random key so nobody can aim collisions at one
 * bucket and turn a lookup into a linear scan. Each table holds at most
 * LIMIT_AUTH_PENALTY_ENTRIES; inserting into a full table drops the least recently touched
 * entry (an LRU list), so a flood of distinct addresses costs bounded memory. A failure record
 * is forgotten window_seconds after its last failure. */
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"
#include "penalty_internal.h"

#define PEN_BUCKETS 16384 /* power of two; about 4 entries per bucket when full */
#define PEN_KEY_MAX (LIMIT_AUTH_FIELD + 64)

struct pen_entry {
	struct pen_entry *hnext;
	struct pen_entry *newer, *older; /* LRU list */
	uint64_t hash;
	uint64_t last_ms; /* last failure (failures) or last acquire (sessions) */
	uint32_t count;   /* failures in the window, or live sessions */
	size_t key_len;
	uint8_t key[];
};

struct pen_table {
	struct pen_entry **buckets;
	struct pen_entry *newest, *oldest;
	size_t count;
};

struct auth_penalty {
	pthread_mutex_t lock;
	struct auth_penalty_config cfg;
	uint64_t sip_k0, sip_k1;
	struct pen_table failures;
	struct pen_table userip;
	struct pen_table logins;
	struct pen_table rates;
	uint64_t (*now_fn)(void *ctx);
	void *now_ctx;
};

/* ---- SipHash-2-4 (Aumasson and Bernstein, 2012) ---- */

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIP_ROUND(v0, v1, v2, v3)                                                              \
	do {                                                                                   \
		v0 += v1;                                                                      \
		v1 = ROTL64(v1, 13);                                                           \
		v1 ^= v0;                                                                      \
		v0 = ROTL64(v0, 32);                                                           \
		v2 += v3;                                                                      \
		v3 = ROTL64(v3, 16);                                                           \
		v3 ^= v2;                                                                      \
		v0 += v3;                                                                      \
		v3 = ROTL64(v3, 21);                                                           \
		v3 ^= v0;                                                                      \
		v2 += v1;                                                                      \
		v1 = ROTL64(v1, 17);                                                           \
		v1 ^= v2;                                                                      \
		v2 = ROTL64(v2, 32);                                                           \
	} while (0)

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *data, size_t len)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	size_t full = len - len % 8;
	uint64_t m, last = (uint64_t)len << 56;

	for (size_t i = 0; i < full; i += 8) {
		m = load_le64(data + i);
		v3 ^= m;
		SIP_ROUND(v0, v1, v2, v3);
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t i = 0; i < len % 8; i++)
		last |= (uint64_t)data[full + i] << (8 * i);
	v3 ^= last;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- tables ---- */

static void lru_unlink(struct pen_table *t, struct pen_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push_newest(struct pen_table *t, struct pen_entry *e)
{
	e->older = t->newest;
	e->newer = NULL;
	if (t->newest != NULL)
		t->newest->newer = e;
	t->newest = e;
	if (t->oldest == NULL)
		t->oldest = e;
}

static void table_remove(struct pen_table *t, struct pen_entry *e)
{
	struct pen_entry **pp = &t->buckets[e->hash & (PEN_BUCKETS - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(t, e);
	t->count--;
	free(e);
}

static struct pen_entry *table_find(struct pen_table *t, uint64_t hash, const uint8_t *key,
				    size_t key_len)
{
	for (struct pen_entry *e = t->buckets[hash & (PEN_BUCKETS - 1)]; e != NULL; e = e->hnext)
		if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
			return e;
	return NULL;
}

static struct pen_entry *table_get(struct pen_table *t, uint64_t hash, const uint8_t *key,
				   size_t key_len)
{
	struct pen_entry *e = table_find(t, hash, key, key_len);

	if (e != NULL) {
		lru_unlink(t, e);
		lru_push_newest(t, e);
		return e;
	}
	if (t->count >= LIMIT_AUTH_PENALTY_ENTRIES)
		table_remove(t, t->oldest);
	e = xcalloc(1, sizeof(*e) + key_len);
	e->hash = hash;
	e->key_len = key_len;
	memcpy(e->key, key, key_len);
	e->hnext = t->buckets[hash & (PEN_BUCKETS - 1)];
	t->buckets[hash & (PEN_BUCKETS - 1)] = e;
	lru_push_newest(t, e);
	t->count++;
	return e;
}

static void table_free(struct pen_table *t)
{
	struct pen_entry *e = t->newest;

	while (e != NULL) {
		struct pen_entry *next = e->older;
		free(e);
		e = next;
	}
	free(t->buckets);
}

/* Keys: a kind byte, then the text lower-cased (user names are case-insensitive), then for
 * user+IP a NUL and the IP. Over-long text is cut: it is still one bounded key. */
static size_t make_key(uint8_t *key, char kind, const char *a, const char *b)
{
	size_t n = 0;

	key[n++] = (uint8_t)kind;
	for (; *a != '\0' && n < PEN_KEY_MAX / 2; a++)
		key[n++] = (uint8_t)(*a >= 'A' && *a <= 'Z' ? *a + 32 : *a);
	if (b != NULL) {
		key[n++] = 0;
		for (; *b != '\0' && n < PEN_KEY_MAX; b++)
			key[n++] = (uint8_t)*b;
	}
	return n;
}

static uint64_t pen_now(struct auth_penalty *p)
{
	return p->now_fn != NULL ? p->now_fn(p->now_ctx) : time_now_ms();
}

struct auth_penalty *auth_penalty_new(const struct auth_penalty_config *cfg)
{
	struct auth_penalty *p = xcalloc(1, sizeof(*p));
	uint64_t k[2];

	pthread_mutex_init(&p->lock, NULL);
	p->cfg = *cfg;
	auth_random_bytes(k, sizeof(k));
	p->sip_k0 = k[0];
	p->sip_k1 = k[1];
	p->failures.buckets = xcalloc(PEN_BUCKETS, sizeof(struct pen_entry *));
	p->userip.buckets = xcalloc(PEN_BUCKETS, sizeof(struct pen_entry *));
	p->logins.buckets = xcalloc(PEN_BUCKETS, sizeof(struct pen_entry *));
	p->rates.buckets = xcalloc(PEN_BUCKETS, sizeof(struct pen_entry *));
	return p;
}

void auth_penalty_free(struct auth_penalty **pp)
{
	struct auth_penalty *p = *pp;

	if (p == NULL)
		return;
	table_free(&p->failures);
	table_free(&p->userip);
	table_free(&p->logins);
	table_free(&p->rates);
	pthread_mutex_destroy(&p->lock);
	free(p);
	*pp = NULL;
}

void auth_penalty_set_clock(struct auth_penalty *p, uint64_t (*now_ms)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&p->lock);
	p->now_fn = now_ms;
	p->now_ctx = ctx;
	pthread_mutex_unlock(&p->lock);
}

void auth_penalty_counts(struct auth_penalty *p, size_t *failures_r, size_t *userip_r)
{
	pthread_mutex_lock(&p->lock);
	*failures_r = p->failures.count;
	*userip_r = p->userip.count;
	pthread_mutex_unlock(&p->lock);
}

static bool expired(const struct auth_penalty *p, const struct pen_entry *e, uint64_t now)
{
	return now - e->last_ms > (uint64_t)p->cfg.window_seconds * 1000;
}

/* failure_delay * 2^(n-1), capped */
static uint32_t delay_for(const struct auth_penalty *p, uint32_t n)
{
	uint64_t d;

	if (n == 0)
		return 0;
	d = n - 1 >= 32 ? UINT64_MAX : (uint64_t)p->cfg.failure_delay_ms << (n - 1);
	if (n - 1 >= 32 || d > p->cfg.failure_delay_max_ms)
		d = p->cfg.failure_delay_max_ms;
	return (uint32_t)d;
}

/* Records one failure under key; returns the delay it earns. Called locked. */
static uint32_t record_failure(struct auth_penalty *p, const uint8_t *key, size_t len,
			       uint64_t now)
{
	struct pen_entry *e = table_get(&p->failures, siphash24(p->sip_k0, p->sip_k1, key, len),
					key, len);

	if (e->count > 0 && expired(p, e, now))
		e->count = 0;
	if (e->count < UINT32_MAX)
		e->count++;
	e->last_ms = now;
	return delay_for(p, e->count);
}

uint32_t auth_penalty_fail(struct auth_penalty *p, const char *ip, const char *user)
{
	uint8_t key[PEN_KEY_MAX + 2];
	uint32_t d_ip, d_user = 0;
	size_t len;

	pthread_mutex_lock(&p->lock);
	uint64_t now = pen_now(p);
	len = make_key(key, 'i', ip, NULL);
	d_ip = record_failure(p, key, len, now);
	if (user != NULL && user[0] != '\0') {
		len = make_key(key, 'u', user, NULL);
		d_user = record_failure(p, key, len, now);
	}
	pthread_mutex_unlock(&p->lock);
	return d_ip > d_user ? d_ip : d_user;
}

bool auth_penalty_refused(struct auth_penalty *p, const char *ip)
{
	uint8_t key[PEN_KEY_MAX + 2];
	struct pen_entry *e;
	bool refused = false;
	size_t len = make_key(key, 'i', ip, NULL);

	if (p->cfg.refuse_after == 0)
		return false;
	pthread_mutex_lock(&p->lock);
	e = table_find(&p->failures, siphash24(p->sip_k0, p->sip_k1, key, len), key, len);
	if (e != NULL && !expired(p, e, pen_now(p)) && e->count >= p->cfg.refuse_after)
		refused = true;
	pthread_mutex_unlock(&p->lock);
	return refused;
}

static void forget(struct auth_penalty *p, const uint8_t *key, size_t len)
{
	struct pen_entry *e =
		table_find(&p->failures, siphash24(p->sip_k0, p->sip_k1, key, len), key, len);

	if (e != NULL)
		table_remove(&p->failures, e);
}

void auth_penalty_success(struct auth_penalty *p, const char *ip, const char *user)
{
	uint8_t key[PEN_KEY_MAX + 2];
	size_t len;

	pthread_mutex_lock(&p->lock);
	len = make_key(key, 'i', ip, NULL);
	forget(p, key, len);
	if (user != NULL && user[0] != '\0') {
		len = make_key(key, 'u', user, NULL);
		forget(p, key, len);
	}
	pthread_mutex_unlock(&p->lock);
}

bool auth_userip_acquire(struct auth_penalty *p, const char *user, const char *ip)
{
	uint8_t key[PEN_KEY_MAX + 2];
	size_t len = make_key(key, 's', user, ip);
	uint64_t hash = siphash24(p->sip_k0, p->sip_k1, key, len);
	struct pen_entry *e;
	bool ok = true;

	pthread_mutex_lock(&p->lock);
	e = table_find(&p->userip, hash, key, len);
	if (p->cfg.user_ip_connections != 0 && e != NULL &&
	    e->count >= p->cfg.user_ip_connections) {
		ok = false;
	} else {
		e = table_get(&p->userip, hash, key, len);
		e->count++;
		e->last_ms = pen_now(p);
	}
	pthread_mutex_unlock(&p->lock);
	return ok;
}

void auth_userip_release(struct auth_penalty *p, const char *user, const char *ip)
{
	uint8_t key[PEN_KEY_MAX + 2];
	size_t len = make_key(key, 's', user, ip);
	struct pen_entry *e;

	pthread_mutex_lock(&p->lock);
	e = table_find(&p->userip, siphash24(p->sip_k0, p->sip_k1, key, len), key, len);
	/* The entry may have been dropped by the size bound: then there is nothing to undo. */
	if (e != NULL && e->count > 0 && --e->count == 0)
		table_remove(&p->userip, e);
	pthread_mutex_unlock(&p->lock);
}

uint32_t auth_login_interval_claim(struct auth_penalty *p, const char *user, uint32_t min_ms)
{
	uint8_t key[PEN_KEY_MAX + 2];
	size_t len = make_key(key, 'l', user, NULL);
	uint64_t hash = siphash24(p->sip_k0, p->sip_k1, key, len);
	struct pen_entry *e;
	uint32_t left = 0;

	pthread_mutex_lock(&p->lock);
	uint64_t now = pen_now(p);
	e = table_find(&p->logins, hash, key, len);
	if (e != NULL && now - e->last_ms < min_ms) {
		left = (uint32_t)(min_ms - (now - e->last_ms));
	} else {
		/* A full table forgets its least recent login: LOGIN-DELAY sheds load, it is not
		 * a security boundary, so a user let in early is the worst case. */
		e = table_get(&p->logins, hash, key, len);
		e->last_ms = now;
	}
	pthread_mutex_unlock(&p->lock);
	return left;
}

void auth_login_interval_release(struct auth_penalty *p, const char *user)
{
	uint8_t key[PEN_KEY_MAX + 2];
	size_t len = make_key(key, 'l', user, NULL);
	struct pen_entry *e;

	pthread_mutex_lock(&p->lock);
	e = table_find(&p->logins, siphash24(p->sip_k0, p->sip_k1, key, len), key, len);
	if (e != NULL)
		table_remove(&p->logins, e);
	pthread_mutex_unlock(&p->lock);
}

/* GCRA (the "virtual scheduling" form of a token bucket): last_ms holds the theoretical
 * arrival time of the next message. Each message moves it on by one interval; a message is
 * refused while that time lies more than a full hour minus one interval ahead, so up to
 * per_hour messages may come at once and then one per interval. */
uint32_t auth_rate_take(struct auth_penalty *p, enum auth_rate_kind kind, const char *key,
			uint32_t per_hour)
{
	uint8_t k[PEN_KEY_MAX + 2];
	size_t len = make_key(k, kind == AUTH_RATE_USER ? 'r' : 'a', key, NULL);
	uint64_t hash = siphash24(p->sip_k0, p->sip_k1, k, len);
	const uint64_t hour_ms = 3600 * 1000;
	uint64_t interval, tolerance, tat;
	struct pen_entry *e;
	uint32_t wait_s = 0;

	if (per_hour == 0)
		return 0;
	interval = hour_ms / per_hour;
	if (interval == 0)
		interval = 1;
	tolerance = hour_ms - interval;
	pthread_mutex_lock(&p->lock);
	uint64_t now = pen_now(p);
	e = table_get(&p->rates, hash, k, len);
	tat = e->last_ms > now ? e->last_ms : now;
	if (tat - now > tolerance)
		wait_s = (uint32_t)((tat - now - tolerance + 999) / 1000);
	else
		e->last_ms = tat + interval;
	pthread_mutex_unlock(&p->lock);
	return wait_s;
}
