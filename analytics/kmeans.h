/*
 * kmeans.h - k-means clustering: k-means++ seeding, Lloyd iterations to a
 * fixed point, the best of several seeded restarts, and the silhouette.
 *
 * Lloyd's algorithm as scikit-learn's KMeans(algorithm="lloyd", tol=0) runs
 * it, so that the same initial centers give the same inertia
 * (tests/e2e/test_analytics_sklearn.sh): assign every point to its nearest
 * center (the lowest index on a tie), move each center to the mean of its
 * points, stop when no assignment changes or after KMEANS_ITER_MAX rounds;
 * an empty cluster takes the point farthest from its center.  Inertia is
 * the sum of squared distances to the final centers.
 *
 * Points are n rows of d doubles, row-major; every value must be finite.
 */
#ifndef CG_KMEANS_H
#define CG_KMEANS_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define KMEANS_K_MAX 16
#define KMEANS_D_MAX 16
#define KMEANS_ITER_MAX 300

/* Owned by the caller of kmeans_*; free with kmeans_result_free. */
struct kmeans_result {
	size_t n, d, k;
	double *centers;        /* k * d */
	uint32_t *labels;       /* n */
	size_t *sizes;          /* k */
	double inertia;
	unsigned iterations;
};

/* Lloyd from the k given initial centers (k * d values). */
int kmeans_lloyd(const double *x, size_t n, size_t d, size_t k, const double *init,
    struct kmeans_result **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 5, 6);

/* k-means++ (greedy over 2 + log k candidates, as scikit-learn) from `seed`, then Lloyd; best of `restarts`. */
int kmeans_fit(const double *x, size_t n, size_t d, size_t k, unsigned restarts, uint64_t seed,
    struct kmeans_result **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 7);

/*
 * Mean silhouette of the labelling, as scikit-learn's silhouette_score with
 * sample_size: over at most `sample` points (all if n <= sample) drawn
 * without replacement from `seed`, distances among those points only.
 * 0 when fewer than two clusters occur in the sample.
 */
int kmeans_silhouette(const double *x, size_t n, size_t d, const uint32_t *labels, size_t k,
    size_t sample, uint64_t seed, double *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 4, 8);

void kmeans_result_free(struct kmeans_result *r);
/* Of two runs keep *cur in *best if `better` (or *best is NULL), free the other; *cur becomes NULL. */
void kmeans_result_keep(struct kmeans_result **best, struct kmeans_result **cur, int better)
    CG_NONNULL(1, 2);

#endif
