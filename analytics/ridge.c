/* ridge.c - see ridge.h */
#include "analytics/ridge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/prng.h"

const double ridge_default_grid[17] = {
	1e-3, 3.1622776601683795e-3, 1e-2, 3.1622776601683795e-2, 1e-1, 3.1622776601683795e-1,
	1.0, 3.1622776601683795, 1e1, 3.1622776601683795e1, 1e2, 3.1622776601683795e2,
	1e3, 3.1622776601683795e3, 1e4, 3.1622776601683795e4, 1e5,
};

#define RIDGE_STREAM_BOOT 0x626f6f74ULL   /* "boot" */

/* What a fit needs from its training rows, independent of lambda. */
struct ridge_moments {
	size_t p;
	double wsum;
	double mean[RIDGE_P_MAX], scale[RIDGE_P_MAX], ymean;
	double a[RIDGE_P_MAX * RIDGE_P_MAX];   /* sum w z z^T */
	double b[RIDGE_P_MAX];                 /* sum w z (y - ymean) */
};

void
ridge_opts_default(struct ridge_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->folds = 5;
	o->grid = NULL;
	o->ngrid = 0;
	o->bootstrap = 200;
	o->seed = 1;
}

/* Moments of the rows with weight w[i] (NULL: all 1).  Two passes: means first, for accuracy. */
static void
ridge_moments(const double *x, const double *y, size_t n, size_t p, const uint32_t *w,
    struct ridge_moments *m)
{
	double z[RIDGE_P_MAX];
	size_t i, j, l;

	memset(m, 0, sizeof(*m));
	m->p = p;
	for (i = 0; i < n; i++) {
		double wi = w ? (double)w[i] : 1.0;

		if (wi == 0.0)
			continue;
		m->wsum += wi;
		for (j = 0; j < p; j++)
			m->mean[j] += wi * x[i * p + j];
		m->ymean += wi * y[i];
	}
	for (j = 0; j < p; j++)
		m->mean[j] /= m->wsum;
	m->ymean /= m->wsum;
	for (i = 0; i < n; i++) {
		double wi = w ? (double)w[i] : 1.0;

		for (j = 0; wi != 0.0 && j < p; j++) {
			double d = x[i * p + j] - m->mean[j];

			m->scale[j] += wi * d * d;
		}
	}
	for (j = 0; j < p; j++) {
		m->scale[j] = sqrt(m->scale[j] / m->wsum);
		/* StandardScaler: a (near) constant feature is left unscaled. */
		if (m->scale[j] < 10.0 * 2.220446049250313e-16)
			m->scale[j] = 1.0;
	}
	for (i = 0; i < n; i++) {
		double wi = w ? (double)w[i] : 1.0, dy;

		if (wi == 0.0)
			continue;
		dy = y[i] - m->ymean;
		for (j = 0; j < p; j++)
			z[j] = (x[i * p + j] - m->mean[j]) / m->scale[j];
		for (j = 0; j < p; j++) {
			m->b[j] += wi * z[j] * dy;
			for (l = 0; l <= j; l++)
				m->a[j * p + l] += wi * z[j] * z[l];
		}
	}
	for (j = 0; j < p; j++)
		for (l = 0; l < j; l++)
			m->a[l * p + j] = m->a[j * p + l];
}

/* Solve (A + lambda I) w = b by Cholesky; -1 if not positive definite. */
static int
ridge_solve(const struct ridge_moments *m, double lambda, double *coef)
{
	double c[RIDGE_P_MAX * RIDGE_P_MAX], t[RIDGE_P_MAX];
	size_t p = m->p, i, j, k;

	for (i = 0; i < p; i++) {
		for (j = 0; j <= i; j++) {
			double s = m->a[i * p + j] + (i == j ? lambda : 0.0);

			for (k = 0; k < j; k++)
				s -= c[i * p + k] * c[j * p + k];
			if (i == j) {
				if (!(s > 0.0))
					return -1;
				c[i * p + i] = sqrt(s);
			} else {
				c[i * p + j] = s / c[j * p + j];
			}
		}
	}
	for (i = 0; i < p; i++) {
		double s = m->b[i];

		for (k = 0; k < i; k++)
			s -= c[i * p + k] * t[k];
		t[i] = s / c[i * p + i];
	}
	for (i = p; i-- > 0;) {
		double s = t[i];

		for (k = i + 1; k < p; k++)
			s -= c[k * p + i] * coef[k];
		coef[i] = s / c[i * p + i];
	}
	return 0;
}

static double
ridge_predict(const struct ridge_moments *m, const double *coef, const double *xi)
{
	double s = m->ymean;
	size_t j;

	for (j = 0; j < m->p; j++)
		s += coef[j] * (xi[j] - m->mean[j]) / m->scale[j];
	return s;
}

/* R^2 of the model on rows [lo, hi). */
static double
ridge_r2(const struct ridge_moments *m, const double *coef, const double *x, const double *y,
    size_t lo, size_t hi)
{
	double mean = 0.0, res = 0.0, tot = 0.0;
	size_t i;

	for (i = lo; i < hi; i++)
		mean += y[i];
	mean /= (double)(hi - lo);
	for (i = lo; i < hi; i++) {
		double e = y[i] - ridge_predict(m, coef, x + i * m->p);

		res += e * e;
		tot += (y[i] - mean) * (y[i] - mean);
	}
	/* r2_score's convention for a constant target. */
	if (tot == 0.0)
		return res == 0.0 ? 1.0 : 0.0;
	return 1.0 - res / tot;
}

static int
ridge_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* numpy's default quantile: linear interpolation between order statistics. */
static double
ridge_quantile(const double *sorted, size_t n, double q)
{
	double h = q * (double)(n - 1);
	size_t lo = (size_t)floor(h);

	if (lo + 1 >= n)
		return sorted[n - 1];
	return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

static int
ridge_bootstrap(const double *x, const double *y, size_t n, size_t p, const struct ridge_opts *o,
    struct ridge_fit *out, struct cg_err *err)
{
	uint32_t *w = NULL;
	double *draws = NULL, coef[RIDGE_P_MAX];
	struct ridge_moments m;
	struct prng r;
	size_t b, i, j;
	int rc;

	if (o->bootstrap == 0)
		return 0;
	w = malloc(n * sizeof(*w));
	draws = malloc((size_t)o->bootstrap * p * sizeof(*draws));
	if (w == NULL || draws == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory for the bootstrap");
		goto out;
	}
	prng_seed(&r, o->seed, RIDGE_STREAM_BOOT);
	for (b = 0; b < o->bootstrap; b++) {
		memset(w, 0, n * sizeof(*w));
		for (i = 0; i < n; i++)
			w[prng_below(&r, n)]++;
		ridge_moments(x, y, n, p, w, &m);
		if (ridge_solve(&m, out->lambda, coef) != 0) {
			rc = cg_err_set(err, CG_ERR_INTERNAL, "ridge: a bootstrap system is singular");
			goto out;
		}
		for (j = 0; j < p; j++)
			draws[j * o->bootstrap + b] = coef[j];
	}
	for (j = 0; j < p; j++) {
		double *d = draws + j * o->bootstrap, mean = 0.0, ss = 0.0;

		for (b = 0; b < o->bootstrap; b++)
			mean += d[b];
		mean /= (double)o->bootstrap;
		for (b = 0; b < o->bootstrap; b++)
			ss += (d[b] - mean) * (d[b] - mean);
		out->boot_sd[j] = o->bootstrap > 1 ? sqrt(ss / (double)(o->bootstrap - 1)) : 0.0;
		qsort(d, o->bootstrap, sizeof(*d), ridge_cmp_double);
		out->boot_lo[j] = ridge_quantile(d, o->bootstrap, 0.025);
		out->boot_hi[j] = ridge_quantile(d, o->bootstrap, 0.975);
	}
	out->bootstrap = o->bootstrap;
	rc = 0;
 out:
	free(w);
	free(draws);
	return rc;
}

int
ridge_fit_cv(const double *x, const double *y, size_t n, size_t p, const struct ridge_opts *o,
    struct ridge_fit *out, struct cg_err *err)
{
	const double *grid = o->grid ? o->grid : ridge_default_grid;
	size_t ngrid = o->grid ? o->ngrid : sizeof(ridge_default_grid) / sizeof(ridge_default_grid[0]);
	double coef[RIDGE_P_MAX], best = -INFINITY, sum;
	struct ridge_moments m;
	uint32_t *train = NULL;
	size_t f, g, i, j, lo, hi;
	int rc;

	memset(out, 0, sizeof(*out));
	if (p < 1 || p > RIDGE_P_MAX)
		return cg_err_set(err, CG_ERR_ARG, "ridge: %zu features (1 to %d)", p, RIDGE_P_MAX);
	if (o->folds < 2 || o->folds > RIDGE_FOLDS_MAX)
		return cg_err_set(err, CG_ERR_ARG, "ridge: folds must be 2 to %d", RIDGE_FOLDS_MAX);
	if (ngrid < 1 || ngrid > RIDGE_GRID_MAX)
		return cg_err_set(err, CG_ERR_ARG, "ridge: 1 to %d lambdas", RIDGE_GRID_MAX);
	if (o->bootstrap > RIDGE_BOOTSTRAP_MAX)
		return cg_err_set(err, CG_ERR_ARG, "ridge: at most %d bootstrap resamples",
		    RIDGE_BOOTSTRAP_MAX);
	if (n < 2 * o->folds)
		return cg_err_set(err, CG_ERR_ARG, "ridge: %zu rows are too few for %zu folds", n,
		    o->folds);
	for (g = 0; g < ngrid; g++)
		if (!(grid[g] >= 0.0) || !isfinite(grid[g]))
			return cg_err_set(err, CG_ERR_ARG, "ridge: lambda %zu is not a finite value >= 0",
			    g + 1);
	for (i = 0; i < n * p; i++)
		if (!isfinite(x[i]))
			return cg_err_set(err, CG_ERR_ARG, "ridge: feature value %zu is not finite", i);
	for (i = 0; i < n; i++)
		if (!isfinite(y[i]))
			return cg_err_set(err, CG_ERR_ARG, "ridge: target value %zu is not finite", i);
	if ((train = malloc(n * sizeof(*train))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	out->n = n;
	out->p = p;
	out->folds = o->folds;
	out->ngrid = ngrid;
	memcpy(out->grid, grid, ngrid * sizeof(*grid));

	/* KFold: fold f holds rows [lo, hi), the first n % folds folds one row longer. */
	for (f = 0, lo = 0; f < o->folds; f++, lo = hi) {
		hi = lo + n / o->folds + (f < n % o->folds ? 1 : 0);
		for (i = 0; i < n; i++)
			train[i] = i < lo || i >= hi;
		ridge_moments(x, y, n, p, train, &m);
		for (g = 0; g < ngrid; g++) {
			if (ridge_solve(&m, grid[g], coef) != 0) {
				/* Only lambda = 0 on collinear features: never the best choice. */
				out->grid_r2[g] = -INFINITY;
				continue;
			}
			out->grid_r2[g] += ridge_r2(&m, coef, x, y, lo, hi) / (double)o->folds;
		}
	}
	for (g = 0; g < ngrid; g++) {
		if (out->grid_r2[g] > best) {
			best = out->grid_r2[g];
			out->lambda = grid[g];
		}
	}
	if (!isfinite(best)) {
		rc = cg_err_set(err, CG_ERR_INTERNAL, "ridge: no lambda gives a solvable system");
		goto out;
	}
	/* The chosen lambda's fold scores, each as r2_score computes it. */
	sum = 0.0;
	for (f = 0, lo = 0; f < o->folds; f++, lo = hi) {
		hi = lo + n / o->folds + (f < n % o->folds ? 1 : 0);
		for (i = 0; i < n; i++)
			train[i] = i < lo || i >= hi;
		ridge_moments(x, y, n, p, train, &m);
		if (ridge_solve(&m, out->lambda, coef) != 0) {
			rc = cg_err_set(err, CG_ERR_INTERNAL, "ridge: singular system");
			goto out;
		}
		out->fold_r2[f] = ridge_r2(&m, coef, x, y, lo, hi);
		sum += out->fold_r2[f];
	}
	out->cv_r2 = sum / (double)o->folds;

	ridge_moments(x, y, n, p, NULL, &m);
	if (ridge_solve(&m, out->lambda, out->coef_std) != 0) {
		rc = cg_err_set(err, CG_ERR_INTERNAL, "ridge: singular system");
		goto out;
	}
	out->intercept_std = m.ymean;
	out->intercept = m.ymean;
	for (j = 0; j < p; j++) {
		out->mean[j] = m.mean[j];
		out->scale[j] = m.scale[j];
		out->coef[j] = out->coef_std[j] / m.scale[j];
		out->intercept -= out->coef[j] * m.mean[j];
	}
	out->r2_train = ridge_r2(&m, out->coef_std, x, y, 0, n);
	rc = ridge_bootstrap(x, y, n, p, o, out, err);
 out:
	free(train);
	return rc;
}
