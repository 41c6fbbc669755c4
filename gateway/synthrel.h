/*
 * synthrel.h - differentially private synthetic rows in the MST family
 * (McKenna, Miklau, Sheldon, "Winning the NIST Contest: A scalable and
 * general approach to differentially private synthetic data", JPC 2021;
 * REFERENCES.md), written for crossgate; the row channel of export.h.
 *
 * 1. Schema (policy only, never the data): every released column is cut
 *    into bins; the last bin of every column is "*" (a missing value, or one
 *    outside the column's domain).
 *      - quasi-identifier with bands: the finest band level of the policy's
 *        hierarchy that gives at most SYNTHREL_BINS_MAX bands between the
 *        column's min and max (needs min and max), labelled as the policy
 *        generalizes ("20-29");
 *      - quasi-identifier with a map: the map's groups, then `other`;
 *      - category feature: its values;
 *      - int feature: its policy `bounds` [lo, hi] (needed) cut into at
 *        most `bins` ranges of integer width w = ceil((hi-lo)/bins) from lo,
 *        the last one running to hi (so [0, 500000] in 10 gives 0-49999,
 *        ..., 450000-500000), labelled "LO-HI" (inclusive) or the plain
 *        integer for a range of one value; a value outside the bounds is
 *        "*" (never clamped into an edge bin, whose label would then be
 *        false).  Equal width is the one rule that needs no look at the
 *        data.
 *      - a free string or timestamp feature has no domain: it is left out of
 *        the release and listed as omitted.
 * 2. Mechanism, rho-zCDP under add/remove of one subject (one joined pair,
 *    one row): with d columns, rho is split in three equal parts (all of it
 *    to the 1-way marginals when d = 1):
 *      - every 1-way marginal, discrete Gaussian noise of variance
 *        d / (2 rho/3) per cell (a subject changes each of the d tables by 1
 *        in one cell: L2 sensitivity sqrt(d));
 *      - a spanning tree of 2-way marginals, chosen in d-1 rounds of the
 *        exponential mechanism (each eps = sqrt(8 (rho/3) / (d-1)), so
 *        eps^2/8-zCDP by its bounded range) among the pairs joining two
 *        components so far, scored by the L1 distance between the pair's
 *        exact 2-way marginal and the independent estimate from the noisy
 *        1-way marginals (sensitivity 1).  The sampling itself is in double
 *        precision from libsodium's CSPRNG: the known floating-point caveat
 *        of the exponential mechanism (Ilvento 2020) applies to this step;
 *      - the d-1 chosen 2-way marginals, noise variance (d-1) / (2 rho/3).
 *    Noise variances are exact rationals, never rounded down.
 * 3. Model (post-processing): the number of rows is the inverse-variance
 *    weighted mean of every measured table's total; each column's marginal
 *    is the inverse-variance weighted mean of its 1-way measurement and the
 *    margins of its edges' 2-way measurements, projected (Euclidean) onto
 *    the non-negative tables of that total; each edge's table is projected
 *    the same way and fitted by iterative proportional fitting to its two
 *    columns' marginals; the tree model is then P(root) times P(child |
 *    parent) along the tree.  Rows are drawn independently from it.
 *
 * Ownership: a schema owns its labels; a model owns its tables and keeps a
 * pointer to its schema, which must outlive it.  Errors: CG_ERR_POLICY for a
 * column the policy gives no domain to bin by (with the column in the
 * message), CG_ERR_LIMIT for a table too large, CG_ERR_NOMEM.
 */
#ifndef CG_SYNTHREL_H
#define CG_SYNTHREL_H

#include <stdint.h>
#include <stdio.h>
#include "base/err.h"
#include "gateway/join.h"

#define SYNTHREL_BINS_DEFAULT 10u
#define SYNTHREL_BINS_MAX 100u
#define SYNTHREL_COLS_MAX 64
#define SYNTHREL_PAIR_CELLS_MAX (1u << 20)       /* cells of one 2-way table */
#define SYNTHREL_ROWS_MAX 10000000ull
#define SYNTHREL_STAR "*"

struct synthrel_col {
	char name[160];                      /* as in join_col: "age", "k_course_spend_cents" */
	const struct join_col *jc;           /* how to read it from a subject's payloads */
	int range;                           /* int bins by arithmetic (bands, bounds), else labels */
	int64_t lo0, width, top;             /* range: bin b holds [lo0 + b*width, that + width - 1]; the last to top */
	size_t nbins;                        /* including the final "*" bin */
	char **labels;                       /* nbins labels, the last one "*" */
	size_t *map_bin;                     /* map quasi-identifier: entry i's bin; `other` is other_bin */
	size_t other_bin;
};

struct synthrel_schema {
	struct synthrel_col cols[SYNTHREL_COLS_MAX];
	size_t ncols;
	char omitted[JOIN_COLS_MAX][160];     /* columns with no domain, left out */
	size_t nomitted;
};

/*
 * The schema of jc[0..njc) (join_columns' output, which must outlive the
 * schema) with int features cut into `bins` (0: SYNTHREL_BINS_DEFAULT).
 * CG_ERR_POLICY, naming the column, if one needs bounds or min/max it lacks.
 */
int synthrel_schema_make(const struct join_col *jc, size_t njc, uint32_t bins, struct synthrel_schema **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4);
void synthrel_schema_free(struct synthrel_schema *s);

/* One subject's bins (row[0..ncols)), from its two payloads. */
void synthrel_encode(const struct synthrel_schema *s, Crossgate__RecordPayload *const pl[2], uint16_t *row)
    CG_NONNULL(1, 2, 3);
/* A value's bin in column c: int v (is_int) or string sv; missing (absent) is the "*" bin. */
uint16_t synthrel_bin_of(const struct synthrel_col *c, int absent, int is_int, int64_t v, const char *sv);

/*
 * Exact marginals of codes[n x ncols]: 1-way of column i into out[nbins_i];
 * 2-way of (i, j) into out[a * nbins_j + b].  For tests and the mechanism.
 */
void synthrel_marginal1(const struct synthrel_schema *s, const uint16_t *codes, size_t n, size_t i, int64_t *out);
void synthrel_marginal2(const struct synthrel_schema *s, const uint16_t *codes, size_t n, size_t i, size_t j,
    int64_t *out);

/* The mechanism's parameters for d columns and rho (nano), as the meta reports them. */
struct synthrel_params {
	uint64_t var1_num, var1_den;         /* noise variance of a 1-way cell */
	uint64_t var2_num, var2_den;         /* of a 2-way cell */
	double eps_round;                    /* exponential mechanism, each of the d-1 rounds */
	int64_t rho1_nano, rho_sel_nano, rho2_nano;
};
int synthrel_params(size_t d, int64_t rho_nano, struct synthrel_params *p, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(3);

struct synthrel_model;

/*
 * Measure codes[n x ncols] under rho_nano and fit the tree model.  With
 * `noiseless` (benchmarks and tests only: NOT private) no noise is drawn and
 * the tree is the best-scoring one.
 */
int synthrel_fit(const struct synthrel_schema *s, const uint16_t *codes, size_t n, int64_t rho_nano, int noiseless,
    struct synthrel_model **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 6);
void synthrel_model_free(struct synthrel_model *m);

/* The estimated number of rows (noisy: a release may use it), >= 0. */
double synthrel_model_rows(const struct synthrel_model *m);
/* The tree: nedges = ncols - 1 pairs (a, b) of column indexes, in the order chosen. */
size_t synthrel_model_edges(const struct synthrel_model *m, size_t (*edges)[2], size_t max);
const struct synthrel_params *synthrel_model_params(const struct synthrel_model *m);
/*
 * A noisy measurement as drawn (before any projection): 1-way of column idx,
 * or (two_way) 2-way of the idx-th edge, cell a * nbins_b + b.  For tests of
 * the noise's calibration; 0 out of range.
 */
double synthrel_model_measured(const struct synthrel_model *m, int two_way, size_t idx, size_t cell);
/* The model's probability of bin a of column i (its 1-way marginal). */
double synthrel_model_p1(const struct synthrel_model *m, size_t i, size_t a);

/* Draw rows (out[rows x ncols] bins). */
int synthrel_sample(const struct synthrel_model *m, uint64_t rows, uint16_t *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

/*
 * Draw `rows` rows and write them to f as CSV: the header of the columns'
 * names, then one row per line of bin labels (quoted only when a label holds
 * a comma, quote or line break), drawn and written SYNTHREL_CHUNK rows at a
 * time so that memory does not grow with rows.  CG_ERR_IO on a write error.
 */
#define SYNTHREL_CHUNK 65536u
int synthrel_write_csv(const struct synthrel_model *m, uint64_t rows, FILE *f, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

#endif
