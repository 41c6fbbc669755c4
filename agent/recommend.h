/*
 * recommend.h - next-best offers at the partner (the seed's step 3): for each
 * of a partner's own users, the other platform's category to promote.
 *
 * It needs nothing the partner does not already have: its own users' CSV and
 * released DP statistics, namely the affinity table (a `crossgate query`
 * answer grouped by one category column of each partner, with its noisy
 * `count`) and the content-mix weight of the other platform's content (from
 * the analytics report).  No per-user data of the other partner is read or
 * needed, so it runs at the partner and sends nothing anywhere.
 *
 * Rule, for a user whose own category is a:
 *   lift(a, b) = (n_ab / n_a) / (n_b / N)   over the released cells, noisy
 *                counts clamped at 0, cells withheld by the threshold as 0,
 *                '*' keys ignored;
 *   offer      = the b with the highest lift (ties: the larger n_ab, then
 *                the smaller name), only among cells with n_ab > 0;
 *   score      = weight * lift: the expected value per minute of the offered
 *                content (weight: β, the live-stream weight, when the
 *                knowledge platform recommends live streams; α the other way)
 *                times how much likelier the user's group is to take it up.
 * A user whose category is missing or absent from the table gets no offer
 * and is counted, not guessed.
 */
#ifndef CG_RECOMMEND_H
#define CG_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "policy/policy.h"

#define RECOMMEND_CATS_MAX 256

/* The affinity table; owned by the caller of recommend_table_load. */
struct recommend_table;

/*
 * Read an affinity answer: a header naming `from_col`, `to_col` and `count`
 * (other columns are ignored), then one row per released cell.  Errors name
 * the file and line: CG_ERR_FORMAT (a missing column, a count that is not an
 * integer, the same cell twice), CG_ERR_LIMIT (more than RECOMMEND_CATS_MAX
 * categories on a side), CG_ERR_IO, CG_ERR_NOMEM.
 */
int recommend_table_load(const char *path, const char *from_col, const char *to_col,
    struct recommend_table **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
void recommend_table_free(struct recommend_table *t);

/* The offer for category `from`: 0 with *to (owned by t) and *lift, or CG_ERR_NOTFOUND. */
int recommend_best(const struct recommend_table *t, const char *from, const char **to, double *lift)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

struct recommend_opts {
	const struct policy *pol;
	const char *partner;                 /* whose users: the input's partner id */
	const char *input;                   /* the partner's own users' CSV (its policy schema) */
	const char *aggregates;              /* the affinity answer */
	const char *out;                     /* CSV: user id, offered category, lift, score */
	double weight;                       /* content-mix weight of the offered content; 1 if unknown */
};

struct recommend_stats {
	uint64_t users;                      /* data rows read */
	uint64_t offered;
	uint64_t no_offer;                   /* category missing, or not in the table */
	char from_col[160], to_col[160];     /* the table's columns used */
};

/*
 * Write the offers.  The table's columns are found from the aggregates'
 * header: the one named "<partner>_<column>" for a category column of this
 * partner, and one category column of another partner.  CG_ERR_ARG if the
 * header has no such pair; CSV errors as above; the output appears whole or
 * not at all (base/outfile.h).
 */
int recommend_run(const struct recommend_opts *o, struct recommend_stats *st, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
