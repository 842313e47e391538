/* A small pool of threads for work that may block (password hashing, fsync, large scans), so
 * that no event loop ever waits on it. Each job's complete() runs on the pool thread right
 * after work() and is expected to hand the result back to the owning loop.
 *
 * Two classes of work share the threads. Normal jobs (a password check, a SASL step, a store
 * call, the end of a delivery) are short and someone waits on each; bulk jobs (SEARCH over a
 * whole mailbox) may run for seconds. Normal jobs are always taken first, and at most
 * thread_count - 1 threads run bulk jobs at any moment, so one thread is always left for
 * normal work: a login never queues behind searches, however many are submitted. Within a
 * class jobs start in submission order. A single FIFO was the alternative rejected: four
 * long searches on a four-thread pool held every login for as long as they ran.
 *
 * Invariants (under lock):
 *  1. bulk_running <= bulk_max < thread_count.
 *  2. A thread takes a bulk job only when the normal queue is empty. */
#include <pthread.h>
#include <stdlib.h>

#include "net_internal.h"

struct pool_job {
	struct pool_job *next;
	void (*work)(void *arg);
	void (*complete)(void *arg);
	void *arg;
	bool bulk;
};

struct pool_queue {
	struct pool_job *head, *tail;
};

struct net_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pool_queue normal, bulk;
	int bulk_running;
	int bulk_max;
	bool stopping;
	int thread_count;
	pthread_t *threads;
};

static void queue_push(struct pool_queue *q, struct pool_job *job)
{
	job->next = NULL;
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	metrics_pool_queued(1);
}

static struct pool_job *queue_pop(struct pool_queue *q)
{
	struct pool_job *job = q->head;

	if (job != NULL) {
		q->head = job->next;
		if (q->head == NULL)
			q->tail = NULL;
		metrics_pool_queued(-1);
	}
	return job;
}

/* The next job this thread may run, or NULL when it must wait (invariant 2 first). */
static struct pool_job *pool_take(struct net_pool *pool)
{
	struct pool_job *job = queue_pop(&pool->normal);

	if (job == NULL && pool->bulk_running < pool->bulk_max) {
		job = queue_pop(&pool->bulk);
		if (job != NULL)
			pool->bulk_running++;
	}
	return job;
}

static void *pool_thread_main(void *arg)
{
	struct net_pool *pool = arg;

	for (;;) {
		struct pool_job *job;

		pthread_mutex_lock(&pool->lock);
		while ((job = pool_take(pool)) == NULL) {
			/* Stopping drains both queues: a thread leaves only when nothing is left
			 * that it could ever take. */
			if (pool->stopping && pool->normal.head == NULL && pool->bulk.head == NULL) {
				pthread_mutex_unlock(&pool->lock);
				return NULL;
			}
			pthread_cond_wait(&pool->wake, &pool->lock);
		}
		pthread_mutex_unlock(&pool->lock);

		job->work(job->arg);
		job->complete(job->arg);

		if (job->bulk) {
			pthread_mutex_lock(&pool->lock);
			pool->bulk_running--;
			/* A bulk job may be waiting for this slot, and it may be a thread other
			 * than this one that is free to take it; when stopping, threads that
			 * waited for the slot may now find nothing left and leave. */
			if (pool->bulk.head != NULL || pool->stopping)
				pthread_cond_broadcast(&pool->wake);
			pthread_mutex_unlock(&pool->lock);
		}
		free(job);
	}
}

struct net_pool *net_pool_new(int threads)
{
	struct net_pool *pool = xcalloc(1, sizeof(*pool));

	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	/* At least two threads, so that one can always be kept from bulk work. */
	pool->thread_count = threads < 2 ? 2 : threads;
	pool->bulk_max = pool->thread_count - 1;
	pool->threads = xcalloc((size_t)pool->thread_count, sizeof(pthread_t));
	for (int i = 0; i < pool->thread_count; i++)
		if (pthread_create(&pool->threads[i], NULL, pool_thread_main, pool) != 0)
			abort();
	return pool;
}

static void pool_submit(struct net_pool *pool, bool bulk, void (*work)(void *arg),
			void (*complete)(void *arg), void *arg)
{
	struct pool_job *job = xmalloc(sizeof(*job));

	job->work = work;
	job->complete = complete;
	job->arg = arg;
	job->bulk = bulk;
	pthread_mutex_lock(&pool->lock);
	queue_push(bulk ? &pool->bulk : &pool->normal, job);
	/* Any idle thread can take a normal job; for a bulk job the woken thread may find the
	 * bulk slots full, and then no idle thread could have taken it either. */
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

void net_pool_submit(struct net_pool *pool, void (*work)(void *arg), void (*complete)(void *arg),
		     void *arg)
{
	pool_submit(pool, false, work, complete, arg);
}

void net_pool_submit_bulk(struct net_pool *pool, void (*work)(void *arg),
			  void (*complete)(void *arg), void *arg)
{
	pool_submit(pool, true, work, complete, arg);
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
