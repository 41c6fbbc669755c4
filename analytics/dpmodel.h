/*
 * dpmodel.h - the content mix and the segments from the gateway's DP model
 * releases (`crossgate query --model ridge|kmeans`, gateway/model.h), never
 * from rows.  Everything here is post-processing of released statistics: it
 * spends no privacy budget.
 *
 * Ridge.  The release is S = sum z z^T over the subjects, z = (1/2, the
 * features and the target each centred on the middle of its policy bounds
 * and divided by their width), with independent Gaussian noise of a
 * published standard deviation on every entry.  From it: n = 4 S_00, the
 * means, the centred cross-products C = S_jk - S_0j S_0k / S_00, and
 *     b = (C_xx + lambda I)^-1 C_xy
 * in the scaled units, turned back into the columns' units (b_j w_y / w_j).
 * lambda follows AdaSSP (Wang 2018): max(0, 3 sqrt(p) sigma - lambda_min),
 * where sigma is the noise of one entry and lambda_min the smallest
 * eigenvalue of the noisy C_xx (read off the release, so it costs nothing;
 * AdaSSP spends budget on it because it sets lambda before noising X^T X).
 * The ridge term only acts when the noise could make C_xx near singular
 * (collinear or few subjects); otherwise lambda is 0 and the fit is plain SSP.
 *
 * Intervals (95%): a parametric bootstrap over both sources of error
 * (Ferrando, Wang, Sheldon, "Parametric bootstrap for differentially private
 * confidence intervals", AISTATS 2022).  Each of `bootstrap` replicates
 * draws the cross-products a fresh sample would give under the fitted model
 * (C_xy* = C_xx b + N(0, s^2 C_xx), s^2 the residual variance from the noisy
 * y^T y), rebuilds S*, adds fresh noise of the published standard deviation
 * to every entry, and refits; the interval is the basic (pivot) bootstrap
 * interval [2 b - q97.5, 2 b - q2.5] of the replicates.  `noise_share` says
 * how much of the interval's variance the DP noise accounts for.
 *
 * k-means.  The release's clusters: noisy counts and centres; a segment's
 * share is its noisy count over the sum of the released counts.
 *
 * Files: the release CSV and its `<csv>.meta.json` (gateway/model.h).  Every
 * rejection names the file and what is wrong (CG_ERR_FORMAT), CG_ERR_IO,
 * CG_ERR_NOMEM.
 */
#ifndef CG_DPMODEL_H
#define CG_DPMODEL_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define DPMODEL_P_MAX 8
#define DPMODEL_TERMS_MAX (DPMODEL_P_MAX + 2)
#define DPMODEL_K_MAX 16
#define DPMODEL_NAME_MAX 160
#define DPMODEL_BOOTSTRAP_MAX 100000

struct dpmodel_ridge_release {
	size_t p;                                     /* features */
	char names[DPMODEL_P_MAX + 1][DPMODEL_NAME_MAX];   /* the features, then the target */
	double lo[DPMODEL_P_MAX + 1], hi[DPMODEL_P_MAX + 1];
	double s[DPMODEL_TERMS_MAX][DPMODEL_TERMS_MAX];   /* S / F^2, symmetric; term 0 the constant */
	double noise_sd;                              /* of one entry of s */
	double rho;
	char query_id[64];
};

struct dpmodel_ridge_fit {
	size_t p;
	double n;                                     /* noisy */
	double lambda;                                /* in the scaled units */
	double coef[DPMODEL_P_MAX], intercept;        /* in the columns' units */
	double lo95[DPMODEL_P_MAX], hi95[DPMODEL_P_MAX], sd[DPMODEL_P_MAX];
	double noise_share[DPMODEL_P_MAX];            /* of the interval's variance, 0..1 */
	double resid_sd;                              /* in the target's units */
	double r2;                                    /* in-sample R^2 from the noisy statistics, in [0, 1] */
	unsigned bootstrap;
	double rho;
};

/* Read a ridge release (its CSV at most 1 MiB, its .meta.json at most 64 KiB). */
int dpmodel_ridge_load(const char *csv_path, struct dpmodel_ridge_release *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* The same from memory; `name` stands for the CSV file in messages. */
int dpmodel_ridge_parse(const char *name, const char *csv, size_t csv_len, const char *meta, size_t meta_len,
    struct dpmodel_ridge_release *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 6);
/*
 * Fit with `bootstrap` replicates (0: no intervals; at most
 * DPMODEL_BOOTSTRAP_MAX) from `seed`.  include_noise 0 leaves the DP noise
 * out of the intervals: wrong on purpose, for the tests that show coverage
 * is measured with power.  CG_ERR_ARG when the release cannot support a fit
 * (a noisy n below 2 (p + 1)).
 */
int dpmodel_ridge_fit(const struct dpmodel_ridge_release *r, unsigned bootstrap, uint64_t seed, int include_noise,
    struct dpmodel_ridge_fit *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 5);

struct dpmodel_kmeans_release {
	size_t d, k;                                  /* columns, released clusters */
	char names[DPMODEL_P_MAX][DPMODEL_NAME_MAX];
	double count[DPMODEL_K_MAX], centre[DPMODEL_K_MAX][DPMODEL_P_MAX];
	double share[DPMODEL_K_MAX];                  /* count / sum of counts */
	double count_noise_sd;
	double rho;
	unsigned steps;
	int log1p;
	char query_id[64];
};

int dpmodel_kmeans_load(const char *csv_path, struct dpmodel_kmeans_release *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
int dpmodel_kmeans_parse(const char *name, const char *csv, size_t csv_len, const char *meta, size_t meta_len,
    struct dpmodel_kmeans_release *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 6);

/* The rho a release spent, from `<path>.meta.json` ("rho"): for any release, aggregates too. */
int dpmodel_release_rho(const char *path, double *rho, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
