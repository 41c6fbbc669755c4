/* test_workers.c - the worker pool: every task once, the first failure's error, one thread runs in order. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/workers.h"
#include "tests/unit/cgtest.h"

#define NTASKS 5000

struct job {
	unsigned runs[NTASKS];             /* each slot written by the one thread that claims the task */
	unsigned worker_of[NTASKS];
	size_t order[NTASKS];
	size_t norder;
	pthread_mutex_t mu;
	size_t fail_from;                  /* tasks >= fail_from fail with their own code */
	pthread_t caller;
	int off_caller;                    /* some task ran on a thread other than the caller's */
};

static int
job_task(void *arg, size_t task, unsigned worker)
{
	struct job *j = arg;

	j->runs[task]++;
	j->worker_of[task] = worker;
	pthread_mutex_lock(&j->mu);
	j->order[j->norder++] = task;
	if (!pthread_equal(pthread_self(), j->caller))
		j->off_caller = 1;
	pthread_mutex_unlock(&j->mu);
	if (task >= j->fail_from)
		return -(int)(1 + task % 7);
	return 0;
}

static struct job *
job_new(size_t fail_from)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		abort();
	pthread_mutex_init(&j->mu, NULL);
	j->fail_from = fail_from;
	j->caller = pthread_self();
	return j;
}

static void
job_free(struct job *j)
{
	pthread_mutex_destroy(&j->mu);
	free(j);
}

static void
test_every_task_once(void)
{
	struct cg_err err = { 0 };
	struct workers *w = NULL;
	struct job *j;
	size_t i, once = 0, bad_worker = 0;
	int round;

	CHECK_EQ_INT(workers_new(4, &w, &err), 0);
	if (w == NULL)
		return;
	CHECK_EQ_INT(workers_count(w), 4);
	/* Many jobs on one pool: each start is seen by the threads exactly once. */
	for (round = 0; round < 50; round++) {
		j = job_new(SIZE_MAX);
		workers_start(w, NTASKS, job_task, j);
		CHECK_EQ_INT(workers_wait(w), 0);
		for (i = 0, once = 0, bad_worker = 0; i < NTASKS; i++) {
			once += j->runs[i] == 1;
			bad_worker += j->worker_of[i] >= 4;
		}
		CHECK_EQ_INT(once, NTASKS);
		CHECK_EQ_INT(bad_worker, 0);
		CHECK(j->off_caller);
		job_free(j);
	}
	/* No tasks, and a wait without a job. */
	j = job_new(SIZE_MAX);
	workers_start(w, 0, job_task, j);
	CHECK_EQ_INT(workers_wait(w), 0);
	CHECK_EQ_INT(j->norder, 0);
	CHECK_EQ_INT(workers_wait(w), 0);
	job_free(j);
	workers_free(w);
	workers_free(NULL);
}

static void
test_first_failure(void)
{
	struct cg_err err = { 0 };
	struct workers *w = NULL;
	struct job *j;
	unsigned n;

	for (n = 1; n <= 3; n += 2) {
		CHECK_EQ_INT(workers_new(n, &w, &err), 0);
		if (w == NULL)
			return;
		/* Tasks from 1234 on fail: the error is task 1234's, whatever finished first. */
		j = job_new(1234);
		workers_start(w, NTASKS, job_task, j);
		CHECK_EQ_INT(workers_wait(w), -(int)(1 + 1234 % 7));
		job_free(j);
		/* The pool is usable after a failure. */
		j = job_new(SIZE_MAX);
		workers_start(w, 10, job_task, j);
		CHECK_EQ_INT(workers_wait(w), 0);
		CHECK_EQ_INT(j->norder, 10);
		job_free(j);
		workers_free(w);
		w = NULL;
	}
}

static void
test_one_thread_in_order(void)
{
	struct cg_err err = { 0 };
	struct workers *w = NULL;
	struct job *j;
	size_t i, in_order = 0;

	CHECK_EQ_INT(workers_new(1, &w, &err), 0);
	if (w == NULL)
		return;
	j = job_new(SIZE_MAX);
	workers_start(w, NTASKS, job_task, j);
	/* Nothing runs before the wait: the caller's thread runs the tasks, in order. */
	CHECK_EQ_INT(j->norder, 0);
	CHECK_EQ_INT(workers_wait(w), 0);
	for (i = 0; i < NTASKS; i++)
		in_order += j->order[i] == i;
	CHECK_EQ_INT(in_order, NTASKS);
	CHECK(!j->off_caller);
	job_free(j);
	workers_free(w);
}

static void
test_rejects(void)
{
	struct cg_err err = { 0 };
	struct workers *w = (struct workers *)&err;   /* must be cleared on entry */

	CHECK_EQ_INT(workers_new(0, &w, &err), CG_ERR_ARG);
	CHECK(w == NULL);
	CHECK_CONTAINS(err.msg, "thread count 0 is not between 1 and 256");
	CHECK_EQ_INT(workers_new(WORKERS_MAX + 1, &w, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "thread count 257");
	CHECK(workers_cpus() >= 1);
}

int
main(void)
{
	test_every_task_once();
	test_first_failure();
	test_one_thread_in_order();
	test_rejects();
	CGT_DONE();
}
