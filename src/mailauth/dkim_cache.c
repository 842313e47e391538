/* The queue's DKIM signers, loaded once per domain instead of once per message (reading and
 * parsing two PEM keys costs far more than signing). A domain's entry is loaded again when its
 * selectors file changes, which is what every key generation rewrites.
 *
 * Invariants:
 * 1. An entry handed out by dkim_signer_cache_get stays allocated until the matching put, even
 *    when a reload replaced it meanwhile: a replaced entry is only marked stale, and freed by the
 *    last put.
 * 2. At most DKIM_CACHE_MAX entries; when full, an entry nobody holds is dropped for the new one
 *    (an admin with more signing domains than that pays a reload now and then, nothing worse). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dkim_internal.h"

#define DKIM_CACHE_MAX 256

struct cache_entry {
	char *domain;
	struct dkim_signer *signer;
	struct timespec mtime; /* of DATA_DIR/dkim/<domain>/selectors when loaded */
	unsigned refs;
	bool stale; /* replaced or dropped: freed by the last put */
	struct cache_entry *next;
};

struct dkim_signer_cache {
	char *data_dir;
	pthread_mutex_t lock;
	struct cache_entry *entries; /* current and stale ones, one list */
	size_t current_count;
};

struct dkim_signer_cache *dkim_signer_cache_new(const char *data_dir)
{
	struct dkim_signer_cache *c = xcalloc(1, sizeof(*c));

	c->data_dir = xstrdup(data_dir);
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void entry_free(struct cache_entry *e)
{
	dkim_signer_free(&e->signer);
	free(e->domain);
	free(e);
}

void dkim_signer_cache_free(struct dkim_signer_cache **cache)
{
	struct dkim_signer_cache *c = *cache;

	if (c == NULL)
		return;
	while (c->entries != NULL) {
		struct cache_entry *e = c->entries;
		c->entries = e->next;
		entry_free(e);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->data_dir);
	free(c);
	*cache = NULL;
}

/* The selectors file's change time; zero when it cannot be read (dkim_signer_load says why). */
static struct timespec selectors_mtime(const char *data_dir, const char *domain)
{
	struct timespec none = { 0, 0 };
	struct stat st;

	if (strchr(domain, '/') != NULL || domain[0] == '.')
		return none; /* never a path outside the key folder; the loader rejects the name */
	char *path = xasprintf("%s/dkim/%s/selectors", data_dir, domain);
	int r = stat(path, &st);
	free(path);
	return r == 0 ? st.st_mtim : none;
}

static void unlink_entry(struct dkim_signer_cache *c, struct cache_entry *e)
{
	for (struct cache_entry **pp = &c->entries; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			return;
		}
}

/* Marks e stale and frees it now when nobody holds it. Called with the lock held. */
static void retire(struct dkim_signer_cache *c, struct cache_entry *e)
{
	e->stale = true;
	c->current_count--;
	if (e->refs == 0) {
		unlink_entry(c, e);
		entry_free(e);
	}
}

static void make_room(struct dkim_signer_cache *c)
{
	if (c->current_count < DKIM_CACHE_MAX)
		return;
	for (struct cache_entry *e = c->entries; e != NULL; e = e->next)
		if (!e->stale && e->refs == 0) {
			retire(c, e);
			return;
		}
}

const struct dkim_signer *dkim_signer_cache_get(struct dkim_signer_cache *c,
						const char *any_case_domain, char *err, size_t errlen)
{
	char domain[256];

	/* key folders are named in lower case; so are the entries */
	snprintf(domain, sizeof(domain), "%s", any_case_domain);
	for (char *p = domain; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	struct timespec mtime = selectors_mtime(c->data_dir, domain);
	struct cache_entry *e;
	const struct dkim_signer *out = NULL;

	pthread_mutex_lock(&c->lock);
	for (e = c->entries; e != NULL; e = e->next)
		if (!e->stale && strcasecmp(e->domain, domain) == 0)
			break;
	if (e != NULL && (e->mtime.tv_sec != mtime.tv_sec || e->mtime.tv_nsec != mtime.tv_nsec)) {
		retire(c, e);
		e = NULL;
	}
	if (e == NULL) {
		/* Loading under the lock keeps two threads from loading the same keys; it happens
		 * once per domain and key change. */
		struct dkim_signer *s = dkim_signer_load(c->data_dir, domain, err, errlen);
		if (s != NULL) {
			make_room(c);
			e = xcalloc(1, sizeof(*e));
			e->domain = xstrdup(domain);
			e->signer = s;
			e->mtime = mtime;
			e->next = c->entries;
			c->entries = e;
			c->current_count++;
		}
	}
	if (e != NULL) {
		e->refs++;
		out = e->signer;
	}
	pthread_mutex_unlock(&c->lock);
	return out;
}

void dkim_signer_cache_put(struct dkim_signer_cache *c, const struct dkim_signer *signer)
{
	if (signer == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	for (struct cache_entry *e = c->entries; e != NULL; e = e->next) {
		if (e->signer != signer)
			continue;
		if (--e->refs == 0 && e->stale) {
			unlink_entry(c, e);
			entry_free(e);
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
}
