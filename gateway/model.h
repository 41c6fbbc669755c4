/*
 * model.h - differentially private model statistics: the releases the
 * analytics core fits the seed's models on (issue 11), computed at the
 * gateway over the joined subjects that consent to the purpose, charged to
 * the same zCDP ledger as every aggregate (budget.h), before anything is read.
 *
 *   crossgate query --model ridge --x C1,C2,C3 --y Y --rho R --out FILE
 *   crossgate query --model kmeans --cols C1,C2,C3 --k 3 --steps 5 [--log1p] --rho R --out FILE
 *
 * Columns are named as in an aggregate (features as <partner>_<column>) and
 * must be numbers with policy `bounds` [lo, hi]: a subject's value is clamped
 * to them, so the bounds are what the sensitivity rests on.  A subject that
 * lacks any of the model's columns contributes nothing (all zeros: the same
 * per-subject bound holds).
 *
 * Fixed point.  Each clamped value x becomes the integer
 *     z = round((x - lo) * MODEL_FIX / (hi - lo)) - MODEL_FIX / 2   in [-MODEL_FIX/2, MODEL_FIX/2]
 * (for k-means with log1p, x, lo and hi are first mapped by log1p), i.e. the
 * value centred on the middle of its bounds in units of 1/MODEL_FIX of their
 * width.  The constant term is z_0 = MODEL_FIX / 2.  So every |z| <= F/2,
 * F = MODEL_FIX.
 *
 * Ridge (sufficient statistics, "SSP"; Wang 2018 "Revisiting differentially
 * private linear regression", whose AdaSSP the analytics core applies).
 * With z = (z_0, z_x1..z_xp, z_y), d = p + 2, the release is the upper
 * triangle of S = sum over subjects of z z^T: m = d (d + 1) / 2 integers
 * (row-major, a <= b), which hold n (= 4 S_00 / F^2), the sums, X^T X, X^T y
 * and y^T y of the centred, scaled columns.  One subject changes each entry
 * by at most (F/2)^2, so the L2 sensitivity of the released vector (add or
 * remove one subject) is
 *     Delta_2 = sqrt(m) * F^2 / 4.
 * Each entry gets independent discrete Gaussian noise of variance
 * sigma^2 = Delta_2^2 / (2 rho): rho-zCDP (Canonne, Kamath, Steinke 2020,
 * Theorem 14; its additive term is below 1e-300 for sigma > 2^20, as here).
 *
 * k-means (Su et al., "Differentially private k-means clustering", 2016 and
 * VLDB J. 2017: the hybrid of EUGkM and DPLloyd).  rho is split evenly over
 * steps + 1 releases, all charged up front:
 *   1. a noisy grid histogram (G cells per column, G^d <= MODEL_GRID_CELLS;
 *      count sensitivity 1), of which the cells whose noisy count reaches 3
 *      standard deviations seed a weighted k-means++ (MODEL_INIT_RESTARTS
 *      seeded restarts, `seed`): the initial centres are post-processing of
 *      a DP release and of public bounds only;
 *   2. `steps` DPLloyd steps: every subject joins its nearest centre; per
 *      cluster the noisy count and coordinate sums are released as the
 *      vector (z_0, z_1..z_d) summed, whose per-subject L2 norm is at most
 *      sqrt(d + 1) F / 2 (one subject is in one cluster); the new centre is
 *      sums / count (kept as it was when the noisy count is below the
 *      policy threshold).
 * Released: the final centres (in the columns' units; expm1 back from
 * log1p) and the last step's noisy counts; clusters whose noisy count is
 * below the policy threshold are withheld.
 *
 * Output: CSV and `out`.meta.json.
 *   ridge:  "row,col,value", one line per released entry: the term names
 *           ("1", the x columns, the y column) and the noisy integer.
 *   kmeans: "cluster,count,<col>..." one line per released cluster.
 * The .meta.json has the members of every release (query.h:
 * query_meta_base) and "model", "columns", "target" (ridge), "bounds"
 * ({col: [lo, hi]}), "fixed_point" (F), "sensitivity_l2" and "noise_sd"
 * (per released entry, in released units), and for k-means "k", "steps",
 * "log1p", "grid", "init_seed", "rho_per_release", "count_noise_sd"
 * (in subjects) -- every noise scale, so that intervals can include the
 * noise.  Nothing exact about the data is in either file.
 *
 * Refusals (CG_ERR_ARG / CG_ERR_POLICY with the reason), always before
 * anything is charged or read: an unknown column, a column without bounds or
 * not a number, a column named twice, a bad k or steps, noise too large to
 * sample, and (budget.h) a rho the analyst's budget cannot fit.
 */
#ifndef CG_MODEL_H
#define CG_MODEL_H

#include <stdint.h>
#include "base/err.h"
#include "audit/audit.h"
#include "crypto/keyfile.h"
#include "gateway/join.h"
#include "gateway/query.h"
#include "policy/policy.h"
#include "store/store.h"

#define MODEL_FIX 4096
#define MODEL_COLS_MAX 8                 /* ridge features, or k-means columns */
#define MODEL_K_MAX 16
#define MODEL_STEPS_MAX 50
#define MODEL_GRID_CELLS 512
#define MODEL_INIT_RESTARTS 10
#define MODEL_TERMS_MAX (MODEL_COLS_MAX + 2)

enum model_kind {
	MODEL_RIDGE = 1,
	MODEL_KMEANS,
};

struct model_spec {
	const struct policy *pol;
	const char *left, *right;            /* partner ids; default: the policy's first two */
	const char *purpose;
	enum model_kind kind;
	const char *cols[MODEL_COLS_MAX];    /* ridge: the features; k-means: the clustering columns */
	size_t ncols;
	const char *y;                       /* ridge: the target */
	uint32_t k, steps;                   /* k-means */
	int log1p;                           /* k-means: cluster log1p of the values (bounds must be >= 0) */
	uint64_t seed;                       /* k-means: the public seed of the initial centres */
	int64_t rho_nano;                    /* 0: the policy's query_rho */
	const struct policy_principal *analyst;
	const char *out_path;
	const struct keyfile_key *storage;
};

struct model_stats {
	int64_t charged_nano, remaining_nano;
	uint64_t released;                   /* entries (ridge) or clusters (k-means) released */
	uint64_t audit_index;
	char query_id[33];
	double collect_seconds, release_seconds;
};

/*
 * The fixed-point coordinate z above of value x for a column with bounds
 * [lo, hi] (lo < hi; with log1p, lo >= 0): clamped, transformed, scaled.
 * The one definition the model and a segment audience (segment.h) share.
 */
int64_t model_coord(int64_t x, int64_t lo, int64_t hi, int log1p_);

/* "ridge" or "kmeans"; CG_ERR_ARG otherwise. */
int model_kind_parse(const char *s, enum model_kind *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * The computation apart from the store, for tests and the benchmark: a plan
 * resolves the spec against the join's columns (every refusal above but the
 * budget's), subjects are added one by one, model_plan_release draws the
 * noise (again on every call: a test may redraw it over one dataset).
 */
struct model_plan;
int model_plan_make(const struct model_spec *spec, const struct join *j, struct model_plan **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);
void model_plan_free(struct model_plan *p);
int model_plan_add(struct model_plan *p, Crossgate__RecordPayload *const pl[2], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* The rho (nano) it costs; fixes the noise scales.  CG_ERR_LIMIT if the noise would be too large. */
int model_plan_cost(struct model_plan *p, int64_t *rho_nano, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
int model_plan_release(struct model_plan *p, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
/* Ridge: m released entries; exact (noiseless, tests only) and noisy value of entry i. */
size_t model_plan_entries(const struct model_plan *p);
int64_t model_plan_exact(const struct model_plan *p, size_t i);
int64_t model_plan_noisy(const struct model_plan *p, size_t i);
/* The L2 sensitivity charged and the noise standard deviation of one released entry, in released units. */
double model_plan_sensitivity(const struct model_plan *p);
double model_plan_noise_sd(const struct model_plan *p);
/* k-means after a release: cluster c's noisy count, its centre in the columns' units; 0 if withheld. */
int model_plan_cluster(const struct model_plan *p, size_t c, double *count, double *centre);
/* Write the CSV and .meta.json of the last release to `path` (stats filled by model_run). */
int model_plan_write(const struct model_plan *p, const struct join *j, const char *path, const char *dataset,
    const struct model_stats *stats, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5);

int model_run(struct store *st, struct audit *a, const struct model_spec *spec, struct model_stats *stats,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
