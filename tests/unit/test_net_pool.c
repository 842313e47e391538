/* The worker pool's two classes: a normal job runs while every bulk job it could run is
 * blocked (one thread is always kept from bulk work), and stopping the pool still drains
 * bulk jobs that waited for a slot. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "net/net_internal.h"

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool open;	   /* bulk jobs block until this is set */
	int bulk_started;
	int bulk_finished;
	int normal_finished;
};

static struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0 };

static void gate_reset(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = false;
	gate.bulk_started = gate.bulk_finished = gate.normal_finished = 0;
	pthread_mutex_unlock(&gate.lock);
}

static void blocking_bulk_work(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate.lock);
	gate.bulk_started++;
	pthread_cond_broadcast(&gate.changed);
	while (!gate.open)
		pthread_cond_wait(&gate.changed, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

static void bulk_complete(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate.lock);
	gate.bulk_finished++;
	pthread_mutex_unlock(&gate.lock);
}

static void normal_work(void *arg)
{
	(void)arg;
}

static void normal_complete(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate.lock);
	gate.normal_finished++;
	pthread_cond_broadcast(&gate.changed);
	pthread_mutex_unlock(&gate.lock);
}

/* Waits (at most 10 s) until *counter reaches want; returns the value seen. */
static int wait_for(int *counter, int want)
{
	struct timespec until;
	int seen;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&gate.lock);
	while (*counter < want &&
	       pthread_cond_timedwait(&gate.changed, &gate.lock, &until) != ETIMEDOUT)
		;
	seen = *counter;
	pthread_mutex_unlock(&gate.lock);
	return seen;
}

static void test_normal_job_runs_beside_blocked_bulk_jobs(void **state)
{
	struct net_pool *pool = net_pool_new(4);

	(void)state;
	gate_reset();
	for (int i = 0; i < 6; i++)
		net_pool_submit_bulk(pool, blocking_bulk_work, bulk_complete, NULL);
	assert_int_equal(wait_for(&gate.bulk_started, 3), 3);
	net_pool_submit(pool, normal_work, normal_complete, NULL);
	assert_int_equal(wait_for(&gate.normal_finished, 1), 1);
	pthread_mutex_lock(&gate.lock);
	assert_int_equal(gate.bulk_started, 3); /* the fourth thread stayed for normal work */
	gate.open = true;
	pthread_cond_broadcast(&gate.changed);
	pthread_mutex_unlock(&gate.lock);
	net_pool_free(&pool);
	assert_null(pool);
	assert_int_equal(gate.bulk_finished, 6);
}

static void test_one_thread_pool_still_keeps_a_normal_thread(void **state)
{
	struct net_pool *pool = net_pool_new(1);

	(void)state;
	gate_reset();
	net_pool_submit_bulk(pool, blocking_bulk_work, bulk_complete, NULL);
	net_pool_submit_bulk(pool, blocking_bulk_work, bulk_complete, NULL);
	assert_int_equal(wait_for(&gate.bulk_started, 1), 1);
	net_pool_submit(pool, normal_work, normal_complete, NULL);
	assert_int_equal(wait_for(&gate.normal_finished, 1), 1);
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.changed);
	pthread_mutex_unlock(&gate.lock);
	net_pool_free(&pool);
	assert_int_equal(gate.bulk_finished, 2);
}

static void test_stopping_drains_waiting_bulk_jobs(void **state)
{
	struct net_pool *pool = net_pool_new(2);

	(void)state;
	gate_reset();
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_mutex_unlock(&gate.lock);
	for (int i = 0; i < 20; i++)
		net_pool_submit_bulk(pool, blocking_bulk_work, bulk_complete, NULL);
	for (int i = 0; i < 5; i++)
		net_pool_submit(pool, normal_work, normal_complete, NULL);
	net_pool_free(&pool);
	assert_int_equal(gate.bulk_finished, 20);
	assert_int_equal(gate.normal_finished, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_job_runs_beside_blocked_bulk_jobs),
		cmocka_unit_test(test_one_thread_pool_still_keeps_a_normal_thread),
		cmocka_unit_test(test_stopping_drains_waiting_bulk_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
