/* DKIM key records for verification, through DNS with a small process-wide cache: a busy
 * sender's key is asked for once every few minutes, not once per message. Found records and
 * "no such record" are kept (KEYCACHE_TTL_MS); a failed lookup is never kept.
 * At most KEYCACHE_SLOTS names; the oldest entry makes room. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim_internal.h"
#include "mailauth_internal.h"

#define KEYCACHE_SLOTS 64
#define KEYCACHE_TTL_MS (5 * 60 * 1000)

struct keycache_slot {
	char *name;
	char *text; /* NULL: no record */
	size_t text_len;
	uint64_t stored_ms;
};

static pthread_mutex_t keycache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct keycache_slot keycache[KEYCACHE_SLOTS];

/* 0 found, 1 no record, 2 not in the cache. Called with the lock held. */
static int cache_find(const char *name, struct buf *txt_r, uint64_t now)
{
	for (size_t i = 0; i < KEYCACHE_SLOTS; i++) {
		struct keycache_slot *s = &keycache[i];
		if (s->name == NULL || strcasecmp(s->name, name) != 0)
			continue;
		if (now - s->stored_ms > KEYCACHE_TTL_MS)
			return 2;
		if (s->text == NULL)
			return 1;
		buf_append(txt_r, s->text, s->text_len);
		return 0;
	}
	return 2;
}

static void cache_store(const char *name, const char *text, size_t text_len, uint64_t now)
{
	struct keycache_slot *slot = &keycache[0];

	for (size_t i = 0; i < KEYCACHE_SLOTS; i++) {
		struct keycache_slot *s = &keycache[i];
		if (s->name != NULL && strcasecmp(s->name, name) == 0) {
			slot = s;
			break;
		}
		if (s->name == NULL || s->stored_ms < slot->stored_ms)
			slot = s;
		if (s->name == NULL)
			break;
	}
	free(slot->name);
	free(slot->text);
	slot->name = xstrdup(name);
	slot->text = NULL;
	slot->text_len = text_len;
	if (text != NULL) {
		slot->text = xmalloc(text_len + 1);
		memcpy(slot->text, text, text_len);
		slot->text[text_len] = '\0';
	}
	slot->stored_ms = now;
}

int mailauth_dkim_key_lookup(const char *name, struct buf *txt_r, void *ctx)
{
	struct mailauth_dns *dns = ctx;
	struct dns_answer ans;
	uint64_t now = time_now_ms();
	int r;

	pthread_mutex_lock(&keycache_lock);
	r = cache_find(name, txt_r, now);
	pthread_mutex_unlock(&keycache_lock);
	if (r != 2)
		return r;
	mailauth_dns_query(dns, name, DNS_TXT, &ans);
	if (ans.status == DNS_TEMPFAIL) {
		dns_answer_free(&ans);
		return -1;
	}
	r = ans.status == DNS_OK && ans.count > 0 ? 0 : 1;
	/* §3.6.2.2: with several records, the first one is used */
	if (r == 0)
		buf_append(txt_r, ans.records[0].text, ans.records[0].text_len);
	pthread_mutex_lock(&keycache_lock);
	cache_store(name, r == 0 ? ans.records[0].text : NULL, r == 0 ? ans.records[0].text_len : 0,
		    now);
	pthread_mutex_unlock(&keycache_lock);
	dns_answer_free(&ans);
	return r;
}
