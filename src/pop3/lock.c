/* [pop3] lock = refuse: which accounts have a POP3 maildrop open in this process, so that a
 * second session gets -ERR [IN-USE] (RFC 2449 §8.1.2) instead of a second snapshot.
 *
 * This is the one piece of process-wide mutable state in the POP3 server: the lock belongs to
 * the account, not to a listener or a loop, and sessions of every worker thread consult it.
 * It is a plain array under a mutex; it holds one entry per open session of lock=refuse, so
 * it is bounded by the number of connections. A dead connection releases its entry when net
 * closes it (the idle timeout bounds how long a silent peer keeps it). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "pop3_internal.h"

static pthread_mutex_t pop3_lock_mutex = PTHREAD_MUTEX_INITIALIZER;
static char **pop3_lock_users;
static size_t pop3_lock_count;
static size_t pop3_lock_alloc;

bool pop3_lock_acquire(const char *user)
{
	bool ok = true;

	pthread_mutex_lock(&pop3_lock_mutex);
	for (size_t i = 0; i < pop3_lock_count; i++) {
		if (str_ieq(pop3_lock_users[i], user)) {
			ok = false;
			break;
		}
	}
	if (ok) {
		if (pop3_lock_count == pop3_lock_alloc) {
			pop3_lock_alloc = pop3_lock_alloc ? pop3_lock_alloc * 2 : 16;
			pop3_lock_users = xrealloc(pop3_lock_users,
						   pop3_lock_alloc * sizeof(*pop3_lock_users));
		}
		pop3_lock_users[pop3_lock_count++] = xstrdup(user);
	}
	pthread_mutex_unlock(&pop3_lock_mutex);
	return ok;
}

void pop3_lock_release(const char *user)
{
	pthread_mutex_lock(&pop3_lock_mutex);
	for (size_t i = 0; i < pop3_lock_count; i++) {
		if (str_ieq(pop3_lock_users[i], user)) {
			free(pop3_lock_users[i]);
			pop3_lock_users[i] = pop3_lock_users[--pop3_lock_count];
			break;
		}
	}
	if (pop3_lock_count == 0) {
		free(pop3_lock_users);
		pop3_lock_users = NULL;
		pop3_lock_alloc = 0;
	}
	pthread_mutex_unlock(&pop3_lock_mutex);
}
