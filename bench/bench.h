/*
 * bench.h - what every benchmark program needs: a monotonic clock, a fatal
 * error, and a key from a demo directory.  Header-only: each bench program is
 * its own program.
 */
#ifndef CG_BENCH_H
#define CG_BENCH_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "crypto/keyfile.h"

/* Seconds on the monotonic clock. */
static inline double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Print what failed (the error's message, else errno's) and exit 1. */
static inline void
bench_die(const char *what, const struct cg_err *e)
{
	fprintf(stderr, "bench: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(1);
}

/* DIR/keys/NAME of type t, or exit. */
static inline struct keyfile_key *
bench_key(const char *dir, const char *name, enum keyfile_type t)
{
	char path[4096];
	struct keyfile_key *k = NULL;
	struct cg_err e;

	snprintf(path, sizeof(path), "%s/keys/%s", dir, name);
	if (keyfile_load(path, t, &k, &e) != 0)
		bench_die(path, &e);
	return k;
}

#endif
