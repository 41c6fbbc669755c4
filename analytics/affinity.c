/* affinity.c - see affinity.h */
#include "analytics/affinity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
affinity_free(struct affinity *a)
{
	if (a == NULL)
		return;
	dataset_levels_clear(&a->course);
	dataset_levels_clear(&a->game);
	free(a->course_count);
	free(a->game_count);
	free(a->pairs);
	free(a->rules);
	free(a);
}

/* A fresh affinity with the level names copied and the tables allocated (counts zero). */
static int
affinity_new(const struct dataset_levels *course, const struct dataset_levels *game,
    enum affinity_source source, struct affinity **out, struct cg_err *err)
{
	struct affinity *a = calloc(1, sizeof(*a));
	size_t nc = course->n, ng = game->n;

	*out = NULL;
	if (a == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	a->source = source;
	if (dataset_levels_copy(course, &a->course, NULL) != 0 ||
	    dataset_levels_copy(game, &a->game, NULL) != 0 ||
	    (a->course_count = calloc(nc + 1, sizeof(double))) == NULL ||
	    (a->game_count = calloc(ng + 1, sizeof(double))) == NULL ||
	    (a->pairs = calloc(nc * ng + 1, sizeof(*a->pairs))) == NULL ||
	    (a->rules = calloc(nc * ng + 1, sizeof(*a->rules))) == NULL) {
		affinity_free(a);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	*out = a;
	return 0;
}

static int
affinity_cmp_lift(const void *x, const void *y)
{
	const struct affinity_pair *a = *(const struct affinity_pair *const *)x;
	const struct affinity_pair *b = *(const struct affinity_pair *const *)y;

	if (a->lift != b->lift)
		return a->lift < b->lift ? 1 : -1;
	/* Ties: the larger support, then the table order, so the order is total. */
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return (a > b) - (a < b);
}

/* From pair counts already in a->pairs[].count: marginals, measures, the threshold, the rules. */
static int
affinity_finish(struct affinity *a, uint32_t threshold, struct cg_err *err)
{
	size_t nc = a->course.n, ng = a->game.n, c, g;
	struct affinity_pair **order = malloc((nc * ng + 1) * sizeof(*order));

	if (order == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");

	a->total = 0.0;
	for (c = 0; c < nc; c++)
		for (g = 0; g < ng; g++) {
			double v = a->pairs[c * ng + g].count;

			a->course_count[c] += v;
			a->game_count[g] += v;
			a->total += v;
		}
	a->released = a->withheld = 0;
	for (c = 0; c < nc; c++) {
		for (g = 0; g < ng; g++) {
			struct affinity_pair *p = &a->pairs[c * ng + g];

			p->course = c;
			p->game = g;
			p->released = p->count >= (double)threshold && p->count > 0.0 &&
			    a->course_count[c] >= (double)threshold && a->game_count[g] >= (double)threshold;
			if (!p->released) {
				p->count = 0.0;
				a->withheld++;
				continue;
			}
			p->support = p->count / a->total;
			p->confidence = p->count / a->course_count[c];
			p->lift = p->count * a->total / (a->course_count[c] * a->game_count[g]);
			order[a->released++] = p;
		}
	}
	/* Marginals below the threshold are withheld as well. */
	for (c = 0; c < nc; c++)
		if (a->course_count[c] < (double)threshold)
			a->course_count[c] = NAN;
	for (g = 0; g < ng; g++)
		if (a->game_count[g] < (double)threshold)
			a->game_count[g] = NAN;
	if (a->total < (double)threshold)
		a->total = NAN;
	qsort(order, a->released, sizeof(*order), affinity_cmp_lift);
	for (c = 0; c < a->released; c++)
		a->rules[c] = (size_t)(order[c] - a->pairs);
	free(order);
	return 0;
}

int
affinity_from_dataset(const struct dataset *d, uint32_t threshold, struct affinity **out,
    struct cg_err *err)
{
	const int32_t *cc, *gc;
	struct affinity *a;
	size_t i, ng;
	int rc;

	*out = NULL;
	if (!d->has_cat[DATASET_COURSE_CAT] || !d->has_cat[DATASET_GAME_CAT])
		return cg_err_set(err, CG_ERR_ARG, "affinity: the export needs columns %s and %s",
		    dataset_cat_names[DATASET_COURSE_CAT], dataset_cat_names[DATASET_GAME_CAT]);
	if ((rc = affinity_new(&d->levels[DATASET_COURSE_CAT], &d->levels[DATASET_GAME_CAT],
	    AFFINITY_FROM_EXPORT, &a, err)) != 0)
		return rc;
	cc = d->cat[DATASET_COURSE_CAT];
	gc = d->cat[DATASET_GAME_CAT];
	ng = a->game.n;
	for (i = 0; i < d->nrows; i++)
		if (cc[i] >= 0 && gc[i] >= 0)
			a->pairs[(size_t)cc[i] * ng + (size_t)gc[i]].count += 1.0;
	if ((rc = affinity_finish(a, threshold, err)) != 0) {
		affinity_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

int
affinity_from_pairs(const struct dataset_pairs *p, uint32_t threshold, struct affinity **out,
    struct cg_err *err)
{
	struct affinity *a;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = affinity_new(&p->a, &p->b, AFFINITY_FROM_AGGREGATES, &a, err)) != 0)
		return rc;
	/* Absent (suppressed) and negative noisy counts add nothing. */
	for (i = 0; i < p->a.n * p->b.n; i++)
		a->pairs[i].count = p->count[i] > 0.0 ? p->count[i] : 0.0;
	if ((rc = affinity_finish(a, threshold, err)) != 0) {
		affinity_free(a);
		return rc;
	}
	*out = a;
	return 0;
}
