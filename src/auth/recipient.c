/* Recipient resolution for delivery: aliases (nested up to 8 levels, loops cut), plus-addressing
 * and catch-all aliases, producing each distinct final address once.
 *
 * Order for one address: its own aliases win; then a user of that name; then the name without
 * its +tag; then the domain's catch-all "@domain". An alias listing itself as a target delivers
 * to the user of that name as well (the usual "keep a copy" idiom). */
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"

struct resolve_ctx {
	struct auth_directory *dir;
	void (*cb)(const char *target, bool is_local, void *ctx);
	void *cb_ctx;
	char **seen; /* addresses already expanded: the loop cut */
	size_t seen_count;
	char **emitted; /* final addresses already reported: the dedupe */
	size_t emitted_count;
	bool error;
};

static bool in_list(char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static void emit(struct resolve_ctx *rc, const char *addr, bool is_local)
{
	if (in_list(rc->emitted, rc->emitted_count, addr))
		return;
	if (rc->emitted_count >= AUTH_RESOLVE_MAX) {
		log_warn("event=alias_expansion_truncated address=%s max=%d", addr,
			 AUTH_RESOLVE_MAX);
		return;
	}
	rc->emitted = xrealloc(rc->emitted, (rc->emitted_count + 1) * sizeof(char *));
	rc->emitted[rc->emitted_count++] = xstrdup(addr);
	rc->cb(addr, is_local, rc->cb_ctx);
}

static void resolve(struct resolve_ctx *rc, const char *addr, int depth);

static void expand(struct resolve_ctx *rc, const char *alias, const char *self, int depth)
{
	char **targets;
	size_t n;

	if (auth_dir_alias_targets(rc->dir, alias, &targets, &n) < 0) {
		rc->error = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (rc->error)
			break;
		if (self != NULL && strcmp(targets[i], self) == 0) {
			int u = auth_dir_user_known(rc->dir, self);
			if (u < 0)
				rc->error = true;
			else if (u > 0)
				emit(rc, self, true);
			continue;
		}
		resolve(rc, targets[i], depth + 1);
	}
	for (size_t i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
}

static bool has_aliases(struct resolve_ctx *rc, const char *alias)
{
	char **targets;
	size_t n;

	if (auth_dir_alias_targets(rc->dir, alias, &targets, &n) < 0) {
		rc->error = true;
		return false;
	}
	for (size_t i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
	return n > 0;
}

static void resolve(struct resolve_ctx *rc, const char *addr, int depth)
{
	const char *at = strchr(addr, '@');
	const char *plus;
	int known;

	if (rc->error)
		return;
	if (depth > AUTH_ALIAS_DEPTH_MAX) {
		log_warn("event=alias_too_deep address=%s depth=%d", addr, depth);
		return;
	}
	if (in_list(rc->seen, rc->seen_count, addr))
		return; /* a loop, or a second path to an address already handled */
	rc->seen = xrealloc(rc->seen, (rc->seen_count + 1) * sizeof(char *));
	rc->seen[rc->seen_count++] = xstrdup(addr);

	known = auth_dir_domain_known(rc->dir, at + 1);
	if (known < 0) {
		rc->error = true;
		return;
	}
	if (known == 0) {
		/* Only an alias can lead out of our domains; a remote address given to us
		 * directly is not a recipient of ours. */
		if (depth > 0)
			emit(rc, addr, false);
		return;
	}
	if (has_aliases(rc, addr)) {
		expand(rc, addr, addr, depth);
		return;
	}
	if (rc->error)
		return;
	known = auth_dir_user_known(rc->dir, addr);
	if (known < 0) {
		rc->error = true;
		return;
	}
	if (known > 0) {
		emit(rc, addr, true);
		return;
	}
	/* Plus-addressing: user+tag@dom is user@dom (the tag never names a mailbox here). */
	plus = memchr(addr, '+', (size_t)(at - addr));
	if (plus != NULL && plus > addr) {
		size_t before = rc->emitted_count;
		char *base = xasprintf("%.*s%s", (int)(plus - addr), addr, at);
		if (auth_local_part_valid(base, (size_t)(plus - addr)))
			resolve(rc, base, depth);
		free(base);
		if (rc->emitted_count > before || rc->error)
			return;
	}
	char *catchall = xasprintf("@%s", at + 1);
	expand(rc, catchall, NULL, depth);
	free(catchall);
}

int auth_resolve_recipient(struct auth_directory *dir, const char *address,
			   void (*cb)(const char *target, bool is_local, void *ctx), void *ctx)
{
	struct resolve_ctx rc = { .dir = dir, .cb = cb, .cb_ctx = ctx };
	char *addr;
	int count;

	if (auth_address_normalize(address, &addr, NULL, 0) < 0)
		return 0;
	resolve(&rc, addr, 0);
	count = rc.error ? -1 : (int)rc.emitted_count;
	for (size_t i = 0; i < rc.seen_count; i++)
		free(rc.seen[i]);
	for (size_t i = 0; i < rc.emitted_count; i++)
		free(rc.emitted[i]);
	free(rc.seen);
	free(rc.emitted);
	free(addr);
	return count;
}
