/*
 * analytics.h - the analytics core: the seed's three analyses on what the
 * gateway releases, and nothing else.
 *
 *   content mix   ridge regression of F = k_conversion_value_cents on
 *                 C^K = k_course_spend_cents, T^K = k_learning_minutes and
 *                 T^G = g_watch_minutes (ridge.h); alpha, the knowledge-content
 *                 weight, is the coefficient of T^K, beta, the live-stream
 *                 weight, that of T^G (conversion cents per minute)
 *   segments      k-means (segments.h)
 *   affinity      course category -> game category rules (affinity.h)
 *
 * Inputs: DP releases only -- the ridge and k-means model statistics
 * (dpmodel.h) and DP aggregates for the affinity -- or, as before, an
 * anonymized row export (dataset.h) with its provenance sidecar
 * (provenance.h).  With DP releases the report states the rho each figure
 * spent (from each release's .meta.json).  This
 * folder includes and links nothing of the store, ingest, export, keys or
 * tokens: tests/e2e/test_analytics_boundary.sh checks it.
 *
 * Every count released is >= threshold (segments, categories, pairs, rows
 * of a model); a model that cannot meet it is reported unavailable with the
 * reason, as is one whose columns the export lacks.
 */
#ifndef CG_ANALYTICS_H
#define CG_ANALYTICS_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "analytics/activation.h"
#include "analytics/affinity.h"
#include "analytics/dataset.h"
#include "analytics/dpmodel.h"
#include "analytics/provenance.h"
#include "analytics/ridge.h"
#include "analytics/segments.h"

#define ANALYTICS_NOTE_MAX (CG_ERR_MSG_MAX + 64)
#define ANALYTICS_THRESHOLD_DEFAULT 20
#define ANALYTICS_MIX_FEATURES 3

/* The content-mix features in order: C^K, T^K, T^G. */
extern const enum dataset_num analytics_mix_cols[ANALYTICS_MIX_FEATURES];
extern const char *const analytics_mix_symbols[ANALYTICS_MIX_FEATURES];

struct analytics_opts {
	const char *export_path;       /* the row export, or NULL (aggregates only) */
	const char *aggregates_path;   /* DP aggregates with both category columns and count, or NULL */
	const char *meta_path;         /* NULL: "<export_path>.meta.json" */
	uint32_t threshold;            /* >= 1 */
	uint64_t seed;
	size_t segments_k;             /* 0: by silhouette */
	unsigned restarts;
	int kmeans_init_first_rows;    /* tests only: see segments.h */
	size_t folds;
	unsigned bootstrap;
	const char *ridge_path;        /* a DP ridge release (gateway/model.h), or NULL */
	const char *kmeans_path;       /* a DP k-means release, or NULL */
	unsigned dp_bootstrap;         /* replicates of the DP intervals (dpmodel.h; default 2000) */
	const char *audience_path;     /* an audience's answer (audience create --out), or NULL */
	const char *lift_path;         /* an experiment's lift release (experiment lift --out), or NULL */
};

/* Owned by the caller of analytics_run; free with analytics_free. */
struct analytics {
	struct analytics_opts opts;    /* paths point into the caller's strings */
	uint32_t threshold;
	struct dataset *data;          /* NULL without an export */
	size_t rows;                   /* rows in the export */
	struct provenance prov;
	char prov_note[ANALYTICS_NOTE_MAX];   /* why provenance is unknown */
	int have_mix;
	struct ridge_fit mix;
	char mix_note[ANALYTICS_NOTE_MAX];
	struct segments *seg;          /* NULL when unavailable */
	char seg_note[ANALYTICS_NOTE_MAX];
	struct affinity *aff;          /* NULL when unavailable */
	char aff_note[ANALYTICS_NOTE_MAX];
	double aff_rho;                /* what the aggregates spent (0: unknown, or from an export) */
	/* From DP releases (dpmodel.h): the content mix and the segments without any row. */
	int have_dpmix;
	struct dpmodel_ridge_release dprel;
	struct dpmodel_ridge_fit dpmix;
	int have_dpseg;
	struct dpmodel_kmeans_release dpseg;
	char dpseg_name[DPMODEL_K_MAX][48];   /* e.g. "Learners", from the centres */
	struct activation act;         /* the activation and experiment section (activation.h) */
};

void analytics_opts_default(struct analytics_opts *o);

/*
 * Read the inputs and run every analysis.  Bad input files fail the run
 * (CG_ERR_IO, CG_ERR_FORMAT, CG_ERR_LIMIT, and CG_ERR_ARG for no input at
 * all); a model that the data cannot support is only marked unavailable.
 * A missing sidecar leaves provenance unknown; a malformed one fails.
 */
int analytics_run(const struct analytics_opts *o, struct analytics **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
void analytics_free(struct analytics *a);

#endif
