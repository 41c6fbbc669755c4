/*
 * workers.h - a fixed pool of threads that runs one job at a time: a
 * function over tasks 0..n-1, each task claimed by one thread.  The caller
 * starts a job, may do its own sequential work meanwhile (read the next
 * input, write the previous output), then waits for it.
 *
 * With one thread the pool starts none: workers_wait runs the tasks in
 * order on the caller's thread, so `--threads 1` is the sequential program.
 *
 * Ownership: the pool belongs to the caller of workers_new; the job's arg
 * belongs to the caller and must stay valid until workers_wait returns.
 */
#ifndef CG_WORKERS_H
#define CG_WORKERS_H

#include <stddef.h>
#include "base/err.h"

#define WORKERS_MAX 256

struct workers;

/* fn(arg, task, worker): worker is 0..nthreads-1, for per-thread state. Returns 0 or CG_ERR_*. */
typedef int (*workers_fn)(void *arg, size_t task, unsigned worker);

/* nthreads 1..WORKERS_MAX (CG_ERR_ARG otherwise). */
int workers_new(unsigned nthreads, struct workers **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(2);
unsigned workers_count(const struct workers *w) CG_NONNULL(1);

/* Start fn over ntasks tasks; a job must not be running. Returns at once. */
void workers_start(struct workers *w, size_t ntasks, workers_fn fn, void *arg) CG_NONNULL(1, 3);

/*
 * Wait for the job: 0, or the error of the lowest-numbered task that failed
 * (tasks after a failure may still have run).  Without a job, 0.
 */
int workers_wait(struct workers *w) CG_MUST_CHECK CG_NONNULL(1);

/* The number of online CPUs (at least 1). */
unsigned workers_cpus(void);

/* Stops and joins the threads; a running job is waited for first.  NULL is a no-op. */
void workers_free(struct workers *w);

#endif
