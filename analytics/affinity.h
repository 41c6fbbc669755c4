/*
 * affinity.h - cross-platform affinity: association rules "course category
 * c -> game category g" over the shared audience.
 *
 *   support(c, g)    = n(c, g) / N
 *   confidence(c->g) = n(c, g) / n(c)
 *   lift(c, g)       = n(c, g) N / (n(c) n(g))
 *
 * From an export the counts are exact.  From DP aggregates they are the
 * released noisy counts; the marginals n(c), n(g) and N are then the sums of
 * the released pairs (suppressed pairs are absent, so those sums are lower
 * bounds) and the report says so.
 *
 * Privacy: a pair whose count is below `threshold` is withheld (its count,
 * support, confidence and lift are not released), and so is every pair of a
 * category whose own count is below it.
 */
#ifndef CG_AFFINITY_H
#define CG_AFFINITY_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "analytics/dataset.h"

enum affinity_source {
	AFFINITY_FROM_EXPORT = 1,
	AFFINITY_FROM_AGGREGATES,
};

struct affinity_pair {
	size_t course, game;       /* level indexes */
	int released;
	double count, support, confidence, lift;   /* 0 when withheld */
};

/* Owned by the caller; free with affinity_free. */
struct affinity {
	enum affinity_source source;
	struct dataset_levels course, game;        /* copies of the level names */
	double *course_count, *game_count;         /* marginals; NAN where withheld */
	double total;
	struct affinity_pair *pairs;               /* ncourse * ngame, row-major by course */
	size_t released, withheld;
	size_t *rules;                             /* released pair indexes by lift, highest first */
};

/* Exact counts from an export's rows with both categories.  CG_ERR_ARG if a column is absent. */
int affinity_from_dataset(const struct dataset *d, uint32_t threshold, struct affinity **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3);
/* From aggregates read by dataset_pairs_load (a = course, b = game). */
int affinity_from_pairs(const struct dataset_pairs *p, uint32_t threshold, struct affinity **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3);
void affinity_free(struct affinity *a);

#endif
