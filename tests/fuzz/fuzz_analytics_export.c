/*
 * fuzz_analytics_export.c - libFuzzer harness for the analytics core's
 * readers of released CSV (analytics/dataset.c): the row export, and the
 * same bytes as DP aggregates.  Whatever is accepted must be consistent, and
 * the models must run on it without a crash.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/affinity.h"
#include "analytics/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dataset *d = NULL;
	struct dataset_pairs *p = NULL;
	struct affinity *a = NULL;
	struct cg_err err;
	size_t i;
	int c, rc;

	rc = dataset_load_mem("fuzz.csv", (const char *)data, size, &d, &err);
	if (rc != 0) {
		if (d != NULL || err.code != rc || strncmp(err.msg, "fuzz.csv", 8) != 0)
			abort();
	} else {
		for (c = 0; c < DATASET_CAT_COLS; c++) {
			for (i = 0; i + 1 < d->levels[c].n; i++)
				if (strcmp(d->levels[c].names[i], d->levels[c].names[i + 1]) >= 0)
					abort();
			for (i = 0; d->has_cat[c] && i < d->nrows; i++)
				if (d->cat[c][i] < -1 || d->cat[c][i] >= (int32_t)d->levels[c].n)
					abort();
		}
		for (c = 0; c < DATASET_NUM_COLS; c++)
			for (i = 0; d->has_num[c] && i < d->nrows; i++)
				if (isinf(d->num[c][i]) || fabs(d->num[c][i]) > DATASET_VALUE_MAX)
					abort();
		if (affinity_from_dataset(d, 2, &a, &err) == 0) {
			for (i = 0; i < a->released; i++)
				if (a->pairs[a->rules[i]].count < 2.0 || !a->pairs[a->rules[i]].released)
					abort();
			affinity_free(a);
		}
		dataset_free(d);
	}
	rc = dataset_pairs_load_mem("fuzz.csv", (const char *)data, size,
	    "k_top_course_category", "g_top_game_category", "count", &p, &err);
	if (rc == 0) {
		if (affinity_from_pairs(p, 3, &a, &err) == 0)
			affinity_free(a);
		dataset_pairs_free(p);
	} else if (p != NULL || strncmp(err.msg, "fuzz.csv", 8) != 0) {
		abort();
	}
	return 0;
}
