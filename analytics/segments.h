/*
 * segments.h - audience segments of an export: k-means on standardized
 * log1p(k_learning_minutes), log1p(g_watch_minutes) and
 * log1p(g_streams_followed).
 *
 * Why those: time and engagement on each platform describe behaviour, and
 * none of them is zero-inflated (spend and gifts are zero for many users, a
 * point mass that k-means would make a segment of its own); log1p because
 * they are heavy-tailed.  Scaling is StandardScaler's.  k is given, or the
 * one of 2..SEGMENTS_AUTO_K_MAX with the highest silhouette (on a fixed
 * sample); each k takes the best of `restarts` seeded k-means++ runs.
 *
 * Privacy: a segment of fewer than `threshold` rows is merged into the
 * segment with the nearest center (repeatedly, smallest first); if all rows
 * together are fewer than `threshold`, nothing is released.  A category is
 * listed among a segment's dominant ones only if it counts >= threshold rows
 * there.
 */
#ifndef CG_SEGMENTS_H
#define CG_SEGMENTS_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "analytics/dataset.h"
#include "analytics/kmeans.h"

#define SEGMENTS_FEATURES 3
#define SEGMENTS_AUTO_K_MAX 8
#define SEGMENTS_TOP 3                /* dominant categories listed per column */
#define SEGMENTS_SILHOUETTE_SAMPLE 2000

/* The clustering features, as dataset columns. */
extern const enum dataset_num segments_feature_cols[SEGMENTS_FEATURES];

struct segments_opts {
	size_t k;                  /* 0: by silhouette */
	unsigned restarts;         /* default 10 */
	uint64_t seed;             /* default 1 */
	uint32_t threshold;        /* smallest segment or category count released */
	int init_first_rows;       /* tests: one Lloyd run from the first k usable rows, no k-means++ */
};

struct segments_top {
	int32_t level;             /* index into the dataset's levels */
	size_t count;
};

struct segment {
	size_t size;
	double center_z[SEGMENTS_FEATURES];      /* standardized, as clustered */
	double center[SEGMENTS_FEATURES];        /* back in original units: expm1 of the log center */
	double mean[DATASET_NUM_COLS];           /* mean of each numeric column (NAN: absent) */
	struct segments_top top[DATASET_CAT_COLS][SEGMENTS_TOP];
	size_t ntop[DATASET_CAT_COLS];
	char name[48];                           /* e.g. "Learners" */
	char traits[96];                         /* e.g. "learning high, watching low" */
};

/* Owned by the caller of segments_fit; free with segments_free. */
struct segments {
	size_t rows_used;          /* rows with every clustering feature present and >= 0 */
	size_t k_fit;              /* clusters of the model */
	int k_by_silhouette;
	double silhouette[SEGMENTS_AUTO_K_MAX + 1];   /* by k (0 where not computed) */
	double inertia;            /* of the fit, in standardized units */
	unsigned iterations;
	size_t merged;             /* clusters merged away for being below threshold */
	size_t withheld_rows;      /* rows in no released segment */
	double mean[SEGMENTS_FEATURES], scale[SEGMENTS_FEATURES];   /* of the log1p features */
	struct segment *seg;       /* nseg, largest first */
	size_t nseg;
};

void segments_opts_default(struct segments_opts *o);

/*
 * CG_ERR_ARG when the export lacks a clustering column, or has fewer usable
 * rows than 2 (or than the k asked for); CG_ERR_NOMEM.
 */
int segments_fit(const struct dataset *d, const struct segments_opts *o, struct segments **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);
void segments_free(struct segments *s);

#endif
