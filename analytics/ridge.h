/*
 * ridge.h - ridge regression on standardized features, the penalty chosen by
 * k-fold cross-validation, with bootstrap intervals for the coefficients.
 *
 * The definitions are scikit-learn's, so that an independent run gives the
 * same numbers (tests/e2e/test_analytics_sklearn.sh):
 *   - standardizing: mean and population standard deviation (StandardScaler;
 *     a constant feature keeps scale 1);
 *   - the fit minimizes ||y - Xs w - b||^2 + lambda ||w||^2 with an
 *     unpenalized intercept b (Ridge(alpha=lambda)), solved exactly;
 *   - folds are contiguous blocks in row order, the first n % folds blocks one
 *     row longer (KFold(folds) without shuffling: the export's rows are
 *     already in random order); within each fold the scaler is fit on the
 *     training rows only;
 *   - R^2 of a fold is 1 - SSres/SStot around the held-out rows' own mean
 *     (r2_score), and cv_r2 the mean over folds;
 *   - lambda is the first grid value with the highest cv_r2.
 * The final model is refit on all rows with that lambda.  Bootstrap:
 * `bootstrap` resamples of the rows with replacement (fixed seed), each refit
 * with the chosen lambda; the 2.5% and 97.5% quantiles (linear interpolation)
 * and the standard deviation of each standardized coefficient.
 */
#ifndef CG_RIDGE_H
#define CG_RIDGE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define RIDGE_P_MAX 8
#define RIDGE_FOLDS_MAX 20
#define RIDGE_GRID_MAX 64
#define RIDGE_BOOTSTRAP_MAX 10000

struct ridge_opts {
	size_t folds;              /* 2..RIDGE_FOLDS_MAX (default 5) */
	const double *grid;        /* candidate lambdas >= 0; NULL: ridge_default_grid */
	size_t ngrid;
	unsigned bootstrap;        /* resamples, 0..RIDGE_BOOTSTRAP_MAX (default 200) */
	uint64_t seed;
};

struct ridge_fit {
	size_t n, p;
	double lambda;
	double mean[RIDGE_P_MAX], scale[RIDGE_P_MAX];   /* the scaler fit on all rows */
	double coef_std[RIDGE_P_MAX];   /* per standard deviation of the feature */
	double coef[RIDGE_P_MAX];       /* per unit of the feature: coef_std / scale */
	double intercept_std;           /* on standardized features: the mean of y */
	double intercept;               /* in original units */
	double r2_train;                /* on all rows, for reference */
	double cv_r2;                   /* mean held-out R^2 at lambda */
	double fold_r2[RIDGE_FOLDS_MAX];
	size_t folds;
	double grid[RIDGE_GRID_MAX], grid_r2[RIDGE_GRID_MAX];
	size_t ngrid;
	unsigned bootstrap;
	double boot_lo[RIDGE_P_MAX], boot_hi[RIDGE_P_MAX], boot_sd[RIDGE_P_MAX];   /* coef_std */
};

void ridge_opts_default(struct ridge_opts *o);
/* Half-decade steps from 1e-3 to 1e5 (17 values). */
extern const double ridge_default_grid[17];

/*
 * Fit y (n values) on x (n rows of p features, row-major).  Needs
 * n >= 2 * folds and 1 <= p <= RIDGE_P_MAX; every value finite.
 * CG_ERR_ARG (bad sizes or options), CG_ERR_NOMEM, CG_ERR_INTERNAL (a
 * system that is not positive definite, which lambda > 0 rules out).
 */
int ridge_fit_cv(const double *x, const double *y, size_t n, size_t p, const struct ridge_opts *o,
    struct ridge_fit *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 5, 6);

#endif
