/* kmeans.c - see kmeans.h */
#include "analytics/kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/prng.h"

#define KMEANS_STREAM_INIT 0x696e6974ULL    /* "init" */
#define KMEANS_STREAM_SIL 0x73696cULL       /* "sil" */

static double
kmeans_dist2(const double *a, const double *b, size_t d)
{
	double s = 0.0;
	size_t j;

	for (j = 0; j < d; j++)
		s += (a[j] - b[j]) * (a[j] - b[j]);
	return s;
}

void
kmeans_result_free(struct kmeans_result *r)
{
	if (r == NULL)
		return;
	free(r->centers);
	free(r->labels);
	free(r->sizes);
	free(r);
}

void
kmeans_result_keep(struct kmeans_result **best, struct kmeans_result **cur, int better)
{
	if (*best == NULL || better) {
		kmeans_result_free(*best);
		*best = *cur;
	} else {
		kmeans_result_free(*cur);
	}
	*cur = NULL;
}

static int
kmeans_check(const double *x, size_t n, size_t d, size_t k, struct cg_err *err)
{
	size_t i;

	if (k < 1 || k > KMEANS_K_MAX)
		return cg_err_set(err, CG_ERR_ARG, "kmeans: k must be 1 to %d", KMEANS_K_MAX);
	if (d < 1 || d > KMEANS_D_MAX)
		return cg_err_set(err, CG_ERR_ARG, "kmeans: 1 to %d dimensions", KMEANS_D_MAX);
	if (n < k)
		return cg_err_set(err, CG_ERR_ARG, "kmeans: %zu points are fewer than k = %zu", n, k);
	for (i = 0; i < n * d; i++)
		if (!isfinite(x[i]))
			return cg_err_set(err, CG_ERR_ARG, "kmeans: value %zu is not finite", i);
	return 0;
}

static struct kmeans_result *
kmeans_result_new(size_t n, size_t d, size_t k)
{
	struct kmeans_result *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->n = n;
	r->d = d;
	r->k = k;
	r->centers = calloc(k * d, sizeof(*r->centers));
	r->labels = calloc(n, sizeof(*r->labels));
	r->sizes = calloc(k, sizeof(*r->sizes));
	if (r->centers == NULL || r->labels == NULL || r->sizes == NULL) {
		kmeans_result_free(r);
		return NULL;
	}
	return r;
}

/* Nearest center of every point (lowest index on a tie); returns how many labels changed. */
static size_t
kmeans_assign(const double *x, struct kmeans_result *r)
{
	size_t i, c, changed = 0;

	for (i = 0; i < r->n; i++) {
		double best = INFINITY;
		uint32_t lab = 0;

		for (c = 0; c < r->k; c++) {
			double dd = kmeans_dist2(x + i * r->d, r->centers + c * r->d, r->d);

			if (dd < best) {
				best = dd;
				lab = (uint32_t)c;
			}
		}
		changed += r->labels[i] != lab;
		r->labels[i] = lab;
	}
	return changed;
}

/* Centers to the means of their points; an empty cluster takes the point farthest from its center. */
static void
kmeans_update(const double *x, struct kmeans_result *r)
{
	size_t i, j, c, d = r->d;

	memset(r->sizes, 0, r->k * sizeof(*r->sizes));
	for (i = 0; i < r->n; i++)
		r->sizes[r->labels[i]]++;
	for (c = 0; c < r->k; c++) {
		double far = -1.0;
		size_t at = 0;

		if (r->sizes[c] != 0)
			continue;
		for (i = 0; i < r->n; i++) {
			double dd;

			if (r->sizes[r->labels[i]] < 2)
				continue;
			dd = kmeans_dist2(x + i * d, r->centers + r->labels[i] * d, d);
			if (dd > far) {
				far = dd;
				at = i;
			}
		}
		r->sizes[r->labels[at]]--;
		r->labels[at] = (uint32_t)c;
		r->sizes[c] = 1;
	}
	memset(r->centers, 0, r->k * d * sizeof(*r->centers));
	for (i = 0; i < r->n; i++)
		for (j = 0; j < d; j++)
			r->centers[r->labels[i] * d + j] += x[i * d + j];
	for (c = 0; c < r->k; c++)
		for (j = 0; j < d; j++)
			r->centers[c * d + j] /= (double)r->sizes[c];
}

int
kmeans_lloyd(const double *x, size_t n, size_t d, size_t k, const double *init,
    struct kmeans_result **out, struct cg_err *err)
{
	struct kmeans_result *r;
	size_t i;
	unsigned it;
	int rc;

	*out = NULL;
	if ((rc = kmeans_check(x, n, d, k, err)) != 0)
		return rc;
	for (i = 0; i < k * d; i++)
		if (!isfinite(init[i]))
			return cg_err_set(err, CG_ERR_ARG, "kmeans: initial center value %zu is not finite", i);
	if ((r = kmeans_result_new(n, d, k)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	memcpy(r->centers, init, k * d * sizeof(*init));
	for (it = 0; it < KMEANS_ITER_MAX; it++) {
		size_t changed = kmeans_assign(x, r);

		/* Labels unchanged: the centers are already their means (a fixed point). */
		if (it > 0 && changed == 0)
			break;
		kmeans_update(x, r);
	}
	r->iterations = it;
	if (it == KMEANS_ITER_MAX) {
		(void)kmeans_assign(x, r);
		memset(r->sizes, 0, k * sizeof(*r->sizes));
		for (i = 0; i < n; i++)
			r->sizes[r->labels[i]]++;
	}
	r->inertia = 0.0;
	for (i = 0; i < n; i++)
		r->inertia += kmeans_dist2(x + i * d, r->centers + r->labels[i] * d, d);
	*out = r;
	return 0;
}

/* Index of the first cumulative weight above u (binary search). */
static size_t
kmeans_pick(const double *cum, size_t n, double u)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cum[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* k-means++ with 2 + floor(ln k) candidates per step, keeping the one that lowers the potential most. */
static int
kmeans_plusplus(const double *x, size_t n, size_t d, size_t k, struct prng *r, double *centers,
    struct cg_err *err)
{
	double *closest = malloc(n * sizeof(double)), *cum = malloc(n * sizeof(double));
	size_t trials = 2 + (size_t)log((double)k), c, t, i;
	int rc = 0;

	if (closest == NULL || cum == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(centers, x + prng_below(r, n) * d, d * sizeof(double));
	for (i = 0; i < n; i++)
		closest[i] = kmeans_dist2(x + i * d, centers, d);
	for (c = 1; c < k; c++) {
		double total = 0.0, best_pot = INFINITY;
		size_t best = 0;

		for (i = 0; i < n; i++) {
			total += closest[i];
			cum[i] = total;
		}
		for (t = 0; t < trials; t++) {
			/* All points on the centers so far: any point will do. */
			size_t at = total > 0.0 ? kmeans_pick(cum, n, prng_unif(r) * total) :
			    (size_t)prng_below(r, n);
			double pot = 0.0;

			for (i = 0; i < n; i++) {
				double dd = kmeans_dist2(x + i * d, x + at * d, d);

				pot += dd < closest[i] ? dd : closest[i];
			}
			if (pot < best_pot) {
				best_pot = pot;
				best = at;
			}
		}
		memcpy(centers + c * d, x + best * d, d * sizeof(double));
		for (i = 0; i < n; i++) {
			double dd = kmeans_dist2(x + i * d, x + best * d, d);

			if (dd < closest[i])
				closest[i] = dd;
		}
	}
 out:
	free(closest);
	free(cum);
	return rc;
}

int
kmeans_fit(const double *x, size_t n, size_t d, size_t k, unsigned restarts, uint64_t seed,
    struct kmeans_result **out, struct cg_err *err)
{
	struct kmeans_result *best = NULL, *cur = NULL;
	double init[KMEANS_K_MAX * KMEANS_D_MAX];
	struct prng r;
	unsigned s;
	int rc;

	*out = NULL;
	if ((rc = kmeans_check(x, n, d, k, err)) != 0)
		return rc;
	if (restarts < 1)
		return cg_err_set(err, CG_ERR_ARG, "kmeans: at least one restart");
	prng_seed(&r, seed, KMEANS_STREAM_INIT);
	for (s = 0; s < restarts; s++) {
		if ((rc = kmeans_plusplus(x, n, d, k, &r, init, err)) != 0 ||
		    (rc = kmeans_lloyd(x, n, d, k, init, &cur, err)) != 0)
			goto out;
		kmeans_result_keep(&best, &cur, best == NULL || cur->inertia < best->inertia);
	}
	*out = best;
	best = NULL;   /* transferred */
 out:
	kmeans_result_free(best);
	return rc;
}

int
kmeans_silhouette(const double *x, size_t n, size_t d, const uint32_t *labels, size_t k,
    size_t sample, uint64_t seed, double *out, struct cg_err *err)
{
	size_t *idx = NULL, m, i, j, c, present = 0;
	double *sum = NULL, total = 0.0;
	size_t *cnt = NULL;
	struct prng r;
	int rc = 0;

	*out = 0.0;
	if (k < 1 || k > KMEANS_K_MAX)
		return cg_err_set(err, CG_ERR_ARG, "kmeans: k must be 1 to %d", KMEANS_K_MAX);
	m = n < sample ? n : sample;
	idx = malloc((n ? n : 1) * sizeof(*idx));
	sum = malloc(k * sizeof(*sum));
	cnt = calloc(k, sizeof(*cnt));
	if (idx == NULL || sum == NULL || cnt == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		idx[i] = i;
	/* A partial Fisher-Yates shuffle draws the sample. */
	prng_seed(&r, seed, KMEANS_STREAM_SIL);
	for (i = 0; m < n && i < m; i++) {
		size_t t, s = i + (size_t)prng_below(&r, n - i);

		t = idx[i]; idx[i] = idx[s]; idx[s] = t;
	}
	for (i = 0; i < m; i++) {
		if (labels[idx[i]] >= k) {
			rc = cg_err_set(err, CG_ERR_ARG, "kmeans: label out of range");
			goto out;
		}
		present += cnt[labels[idx[i]]]++ == 0;
	}
	if (present < 2)
		goto out;
	for (i = 0; i < m; i++) {
		uint32_t li = labels[idx[i]];
		double a, b = INFINITY;

		for (c = 0; c < k; c++)
			sum[c] = 0.0;
		for (j = 0; j < m; j++)
			sum[labels[idx[j]]] += sqrt(kmeans_dist2(x + idx[i] * d, x + idx[j] * d, d));
		/* A point alone in its cluster scores 0. */
		if (cnt[li] < 2)
			continue;
		a = sum[li] / (double)(cnt[li] - 1);
		for (c = 0; c < k; c++)
			if (c != li && cnt[c] > 0 && sum[c] / (double)cnt[c] < b)
				b = sum[c] / (double)cnt[c];
		if (a < b || a > b)
			total += (b - a) / (a > b ? a : b);
	}
	*out = total / (double)m;
 out:
	free(idx);
	free(sum);
	free(cnt);
	return rc;
}
