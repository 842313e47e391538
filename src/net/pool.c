/* A small pool of threads for work that may block (password hashing, fsync, large scans), so
 * that no event loop ever waits on it. Jobs run in submission order; each job's complete()
 * runs on the pool thread right after work() and is expected to hand the result back to the
 * owning loop. */
#include <pthread.h>
#include <stdlib.h>

#include "net_internal.h"

struct pool_job {
	struct pool_job *next;
	void (*work)(void *arg);
	void (*complete)(void *arg);
	void *arg;
};

struct net_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pool_job *head, *tail;
	bool stopping;
	int thread_count;
	pthread_t *threads;
};

static void *pool_thread_main(void *arg)
{
	struct net_pool *pool = arg;

	for (;;) {
		struct pool_job *job;

		pthread_mutex_lock(&pool->lock);
		while (pool->head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		job = pool->head;
		if (job == NULL) { /* stopping and drained */
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
		pool->head = job->next;
		if (pool->head == NULL)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->lock);

		job->work(job->arg);
		job->complete(job->arg);
		free(job);
	}
}

struct net_pool *net_pool_new(int threads)
{
	struct net_pool *pool = xcalloc(1, sizeof(*pool));

	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pool->thread_count = threads < 1 ? 1 : threads;
	pool->threads = xcalloc((size_t)pool->thread_count, sizeof(pthread_t));
	for (int i = 0; i < pool->thread_count; i++)
		if (pthread_create(&pool->threads[i], NULL, pool_thread_main, pool) != 0)
			abort();
	return pool;
}

void net_pool_submit(struct net_pool *pool, void (*work)(void *arg), void (*complete)(void *arg),
		     void *arg)
{
	struct pool_job *job = xmalloc(sizeof(*job));

	job->next = NULL;
	job->work = work;
	job->complete = complete;
	job->arg = arg;
	pthread_mutex_lock(&pool->lock);
	if (pool->tail)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

/* Runs every queued job to completion, then joins the threads. */
void net_pool_free(struct net_pool **pool_p)
{
	struct net_pool *pool = pool_p ? *pool_p : NULL;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (int i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	free(pool->threads);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	free(pool);
	*pool_p = NULL;
}
