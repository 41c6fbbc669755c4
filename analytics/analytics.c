/* analytics.c - see analytics.h */
#include "analytics/analytics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const enum dataset_num analytics_mix_cols[ANALYTICS_MIX_FEATURES] = {
	DATASET_SPEND, DATASET_LEARN, DATASET_WATCH,
};
const char *const analytics_mix_symbols[ANALYTICS_MIX_FEATURES] = { "C^K", "T^K", "T^G" };

void
analytics_opts_default(struct analytics_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threshold = ANALYTICS_THRESHOLD_DEFAULT;
	o->seed = 1;
	o->restarts = 10;
	o->folds = 5;
	o->bootstrap = 200;
	o->dp_bootstrap = 2000;
}

void
analytics_free(struct analytics *a)
{
	if (a == NULL)
		return;
	dataset_free(a->data);
	segments_free(a->seg);
	affinity_free(a->aff);
	free(a);
}

/* Only out-of-memory is fatal for a model; anything else makes it unavailable. */
static int
analytics_unavailable(struct cg_err *e, char *note)
{
	snprintf(note, ANALYTICS_NOTE_MAX, "%s", e->msg);
	return e->code == CG_ERR_NOMEM ? e->code : 0;
}

static int
analytics_mix(struct analytics *a, const struct analytics_opts *o, struct cg_err *err)
{
	const struct dataset *d = a->data;
	double *x = NULL, *y = NULL;
	struct ridge_opts ro;
	struct cg_err e;
	size_t n = 0, i;
	int f, rc = 0;

	if (!d->has_num[DATASET_CONV]) {
		snprintf(a->mix_note, sizeof(a->mix_note), "the export has no column %s",
		    dataset_num_names[DATASET_CONV]);
		return 0;
	}
	for (f = 0; f < ANALYTICS_MIX_FEATURES; f++) {
		if (!d->has_num[analytics_mix_cols[f]]) {
			snprintf(a->mix_note, sizeof(a->mix_note), "the export has no column %s",
			    dataset_num_names[analytics_mix_cols[f]]);
			return 0;
		}
	}
	x = malloc((d->nrows + 1) * ANALYTICS_MIX_FEATURES * sizeof(*x));
	y = malloc((d->nrows + 1) * sizeof(*y));
	if (x == NULL || y == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Rows missing any of the four values are left out; the row order is kept (the folds). */
	for (i = 0; i < d->nrows; i++) {
		int ok = !isnan(d->num[DATASET_CONV][i]);

		for (f = 0; f < ANALYTICS_MIX_FEATURES; f++) {
			x[n * ANALYTICS_MIX_FEATURES + f] = d->num[analytics_mix_cols[f]][i];
			ok &= !isnan(x[n * ANALYTICS_MIX_FEATURES + f]);
		}
		if (ok)
			y[n++] = d->num[DATASET_CONV][i];
	}
	if (n < a->threshold) {
		snprintf(a->mix_note, sizeof(a->mix_note), "%zu usable rows, fewer than the threshold %u",
		    n, a->threshold);
		goto out;
	}
	ridge_opts_default(&ro);
	ro.folds = o->folds;
	ro.bootstrap = o->bootstrap;
	ro.seed = o->seed;
	cg_err_clear(&e);
	if (ridge_fit_cv(x, y, n, ANALYTICS_MIX_FEATURES, &ro, &a->mix, &e) != 0) {
		if ((rc = analytics_unavailable(&e, a->mix_note)) != 0)
			cg_err_set(err, rc, "%s", e.msg);
		goto out;
	}
	a->have_mix = 1;
 out:
	free(x);
	free(y);
	return rc;
}

static int
analytics_segments(struct analytics *a, const struct analytics_opts *o, struct cg_err *err)
{
	struct segments_opts so;
	struct cg_err e;
	int rc;

	segments_opts_default(&so);
	so.k = o->segments_k;
	so.restarts = o->restarts;
	so.seed = o->seed;
	so.threshold = a->threshold;
	so.init_first_rows = o->kmeans_init_first_rows;
	cg_err_clear(&e);
	if (segments_fit(a->data, &so, &a->seg, &e) != 0) {
		if ((rc = analytics_unavailable(&e, a->seg_note)) != 0)
			return cg_err_set(err, rc, "%s", e.msg);
		return 0;
	}
	if (a->seg->nseg == 0)
		snprintf(a->seg_note, sizeof(a->seg_note), "%zu usable rows, fewer than the threshold %u",
		    a->seg->rows_used, a->threshold);
	return 0;
}

static int
analytics_affinity(struct analytics *a, const struct analytics_opts *o, struct cg_err *err)
{
	struct dataset_pairs *p = NULL;
	struct cg_err e;
	int rc;

	cg_err_clear(&e);
	if (o->aggregates_path != NULL) {
		/* A malformed release file is an error, not a missing model. */
		if ((rc = dataset_pairs_load(o->aggregates_path, dataset_cat_names[DATASET_COURSE_CAT],
		    dataset_cat_names[DATASET_GAME_CAT], "count", &p, err)) != 0)
			return rc;
		rc = affinity_from_pairs(p, a->threshold, &a->aff, err);
		dataset_pairs_free(p);
		return rc;
	}
	if (a->data == NULL) {
		snprintf(a->aff_note, sizeof(a->aff_note), "needs DP aggregates by both categories (crossgate query "
		    "--group-by %s,%s --metric count)", dataset_cat_names[DATASET_COURSE_CAT],
		    dataset_cat_names[DATASET_GAME_CAT]);
		return 0;
	}
	if (affinity_from_dataset(a->data, a->threshold, &a->aff, &e) != 0) {
		if ((rc = analytics_unavailable(&e, a->aff_note)) != 0)
			return cg_err_set(err, rc, "%s", e.msg);
	}
	return 0;
}

/*
 * A segment's name from its DP centre: learning and watching are "high" when
 * above the geometric middle of the released centres' range (the clusters
 * are compared with each other, as the row segments are with the mean).
 */
static void
analytics_dpseg_names(struct analytics *a)
{
	struct dpmodel_kmeans_release *k = &a->dpseg;
	int learn = -1, watch = -1;
	size_t i, c;

	for (i = 0; i < k->d; i++) {
		if (strcmp(k->names[i], dataset_num_names[DATASET_LEARN]) == 0)
			learn = (int)i;
		if (strcmp(k->names[i], dataset_num_names[DATASET_WATCH]) == 0)
			watch = (int)i;
	}
	for (c = 0; c < k->k; c++) {
		int hi[2] = { 0, 0 }, f;
		for (f = 0; f < 2; f++) {
			int col = f == 0 ? learn : watch;
			double mn = INFINITY, mx = -INFINITY;
			if (col < 0)
				continue;
			for (i = 0; i < k->k; i++) {
				mn = fmin(mn, k->centre[i][col]);
				mx = fmax(mx, k->centre[i][col]);
			}
			hi[f] = k->centre[c][col] > sqrt(fmax(mn, 1) * fmax(mx, 1));
		}
		snprintf(a->dpseg_name[c], sizeof(a->dpseg_name[c]), "%s", hi[0] && hi[1] ? "All-round fans" :
		    hi[0] ? "Learners" : hi[1] ? "Gamers" : "Light users");
	}
}

/* The content mix and the segments from DP releases: malformed files fail the run. */
static int
analytics_dp(struct analytics *a, const struct analytics_opts *o, struct cg_err *err)
{
	struct cg_err e;
	int rc;

	if (o->ridge_path != NULL) {
		if ((rc = dpmodel_ridge_load(o->ridge_path, &a->dprel, err)) != 0)
			return rc;
		cg_err_clear(&e);
		if (dpmodel_ridge_fit(&a->dprel, o->dp_bootstrap, o->seed, 1, &a->dpmix, &e) != 0) {
			if ((rc = analytics_unavailable(&e, a->mix_note)) != 0)
				return cg_err_set(err, rc, "%s", e.msg);
		} else {
			a->have_dpmix = 1;
		}
	}
	if (o->kmeans_path != NULL) {
		if ((rc = dpmodel_kmeans_load(o->kmeans_path, &a->dpseg, err)) != 0)
			return rc;
		a->have_dpseg = a->dpseg.k > 0;
		if (!a->have_dpseg)
			snprintf(a->seg_note, sizeof(a->seg_note), "every cluster's noisy count is below the threshold");
		analytics_dpseg_names(a);
	}
	if (o->aggregates_path != NULL && dpmodel_release_rho(o->aggregates_path, &a->aff_rho, &e) != 0)
		a->aff_rho = 0;
	return 0;
}

int
analytics_run(const struct analytics_opts *o, struct analytics **out, struct cg_err *err)
{
	struct analytics *a = NULL;
	char meta[4096];
	struct cg_err e;
	int rc;

	*out = NULL;
	if (o->export_path == NULL && o->aggregates_path == NULL && o->ridge_path == NULL && o->kmeans_path == NULL)
		return cg_err_set(err, CG_ERR_ARG, "analytics: no input (DP releases, aggregates or an export)");
	if (o->threshold < 1)
		return cg_err_set(err, CG_ERR_ARG, "analytics: the threshold must be at least 1");
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	a->opts = *o;
	a->threshold = o->threshold;
	a->prov.audit_index = -1;
	if (o->export_path != NULL) {
		if ((rc = dataset_load(o->export_path, &a->data, err)) != 0)
			goto out;
		a->rows = a->data->nrows;
	}
	if (o->meta_path != NULL) {
		snprintf(meta, sizeof(meta), "%s", o->meta_path);
	} else if ((rc = provenance_sidecar_path(o->export_path != NULL ? o->export_path : o->aggregates_path != NULL ?
	    o->aggregates_path : o->ridge_path != NULL ? o->ridge_path : o->kmeans_path, meta, sizeof(meta), err)) != 0) {
		goto out;
	}
	cg_err_clear(&e);
	if ((rc = provenance_load(meta, &a->prov, &e)) == CG_ERR_NOTFOUND) {
		snprintf(a->prov_note, sizeof(a->prov_note), "no provenance sidecar (%s)", e.msg);
	} else if (rc != 0) {
		cg_err_set(err, rc, "%s", e.msg);
		goto out;
	}
	if (a->data != NULL) {
		if ((rc = analytics_mix(a, o, err)) != 0 || (rc = analytics_segments(a, o, err)) != 0)
			goto out;
	} else {
		snprintf(a->mix_note, sizeof(a->mix_note), "needs a DP ridge release (crossgate query --model ridge)");
		snprintf(a->seg_note, sizeof(a->seg_note), "needs a DP k-means release (crossgate query --model kmeans)");
	}
	if ((rc = analytics_dp(a, o, err)) != 0)
		goto out;
	if ((rc = analytics_affinity(a, o, err)) != 0)
		goto out;
	if ((rc = activation_load(o->audience_path, o->lift_path, &a->act, err)) != 0)
		goto out;
	*out = a;
	a = NULL;   /* transferred */
	rc = 0;
 out:
	analytics_free(a);
	return rc;
}
