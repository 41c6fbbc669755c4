/* workers.c - see workers.h */
#include "base/workers.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct workers {
	unsigned n;                        /* threads, counting none for n == 1 */
	pthread_t *threads;
	unsigned started;                  /* threads actually created */
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	uint64_t generation;               /* bumped by each start */
	int quit;
	int running;                       /* a job was started and not yet waited for */
	workers_fn fn;
	void *arg;
	size_t ntasks, next, finished;
	size_t err_task;                   /* lowest failed task, SIZE_MAX if none */
	int err;
};

/* Claim and run tasks of the current job until none is left. Called with mu held; returns with it held. */
static void
workers_drain(struct workers *w, unsigned id)
{
	while (w->next < w->ntasks) {
		size_t t = w->next++;
		workers_fn fn = w->fn;
		void *arg = w->arg;
		int r;

		pthread_mutex_unlock(&w->mu);
		r = fn(arg, t, id);
		pthread_mutex_lock(&w->mu);
		if (r != 0 && t < w->err_task) {
			w->err_task = t;
			w->err = r;
		}
		if (++w->finished == w->ntasks)
			pthread_cond_broadcast(&w->done);
	}
}

struct workers_thread {
	struct workers *w;
	unsigned id;
};

static void *
workers_main(void *p)
{
	struct workers_thread *self = p;
	struct workers *w = self->w;
	unsigned id = self->id;
	uint64_t seen = 0;

	free(self);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->quit && w->generation == seen)
			pthread_cond_wait(&w->go, &w->mu);
		if (w->quit)
			break;
		seen = w->generation;
		workers_drain(w, id);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int
workers_new(unsigned nthreads, struct workers **out, struct cg_err *err)
{
	struct workers *w;
	unsigned i;

	*out = NULL;
	if (nthreads < 1 || nthreads > WORKERS_MAX)
		return cg_err_set(err, CG_ERR_ARG, "thread count %u is not between 1 and %d", nthreads, WORKERS_MAX);
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	w->n = nthreads;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->go, NULL);
	pthread_cond_init(&w->done, NULL);
	if (nthreads > 1) {
		if ((w->threads = calloc(nthreads, sizeof(*w->threads))) == NULL) {
			workers_free(w);
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		}
		for (i = 0; i < nthreads; i++) {
			struct workers_thread *t = malloc(sizeof(*t));
			if (t == NULL) {
				workers_free(w);
				return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			}
			t->w = w;
			t->id = i;
			if (pthread_create(&w->threads[i], NULL, workers_main, t) != 0) {
				free(t);
				workers_free(w);
				return cg_err_set(err, CG_ERR_NOMEM, "cannot start worker thread %u", i + 1);
			}
			w->started++;
		}
	}
	*out = w;
	return 0;
}

unsigned
workers_count(const struct workers *w)
{
	return w->n;
}

void
workers_start(struct workers *w, size_t ntasks, workers_fn fn, void *arg)
{
	pthread_mutex_lock(&w->mu);
	w->fn = fn;
	w->arg = arg;
	w->ntasks = ntasks;
	w->next = 0;
	w->finished = 0;
	w->err_task = SIZE_MAX;
	w->err = 0;
	w->running = 1;
	if (w->n > 1) {
		w->generation++;
		pthread_cond_broadcast(&w->go);
	}
	pthread_mutex_unlock(&w->mu);
}

static int
workers_wait_job(struct workers *w)
{
	int r;

	pthread_mutex_lock(&w->mu);
	if (!w->running) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	if (w->n == 1)
		workers_drain(w, 0);           /* no threads: the tasks run here, in order */
	while (w->finished < w->ntasks)
		pthread_cond_wait(&w->done, &w->mu);
	w->running = 0;
	r = w->err;
	pthread_mutex_unlock(&w->mu);
	return r;
}

int
workers_wait(struct workers *w)
{
	return workers_wait_job(w);
}

unsigned
workers_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
}

void
workers_free(struct workers *w)
{
	unsigned i;

	if (w == NULL)
		return;
	workers_wait_job(w);            /* its error has no one to go to */
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->go);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->started; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	pthread_cond_destroy(&w->go);
	pthread_cond_destroy(&w->done);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
