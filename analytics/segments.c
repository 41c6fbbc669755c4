/* segments.c - see segments.h */
#include "analytics/segments.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const enum dataset_num segments_feature_cols[SEGMENTS_FEATURES] = {
	DATASET_LEARN, DATASET_WATCH, DATASET_STREAMS,
};
static const char *const segments_feature_words[SEGMENTS_FEATURES] = {
	"learning", "watching", "streams followed",
};
/* A center this many standard deviations from the mean counts as high or low. */
#define SEGMENTS_TRAIT_Z 0.5

void
segments_opts_default(struct segments_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->restarts = 10;
	o->seed = 1;
	o->threshold = 20;
}

void
segments_free(struct segments *s)
{
	if (s == NULL)
		return;
	free(s->seg);
	free(s);
}

/* The log1p features of usable rows, standardized; rows[i] is the dataset row of point i. */
static int
segments_matrix(const struct dataset *d, struct segments *s, double **xout, size_t **rows_out,
    struct cg_err *err)
{
	double *x = NULL;
	size_t *rows = NULL, n = 0, i, j;
	int f;

	*xout = NULL;
	*rows_out = NULL;
	for (f = 0; f < SEGMENTS_FEATURES; f++)
		if (!d->has_num[segments_feature_cols[f]])
			return cg_err_set(err, CG_ERR_ARG, "segments: the export has no column %s",
			    dataset_num_names[segments_feature_cols[f]]);
	x = malloc((d->nrows ? d->nrows : 1) * SEGMENTS_FEATURES * sizeof(*x));
	rows = malloc((d->nrows ? d->nrows : 1) * sizeof(*rows));
	if (x == NULL || rows == NULL) {
		free(x);
		free(rows);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < d->nrows; i++) {
		int ok = 1;

		for (f = 0; f < SEGMENTS_FEATURES; f++) {
			double v = d->num[segments_feature_cols[f]][i];

			ok &= v >= 0.0;   /* false for NAN too */
			x[n * SEGMENTS_FEATURES + f] = log1p(v);
		}
		if (ok)
			rows[n++] = i;
	}
	for (f = 0; f < SEGMENTS_FEATURES; f++) {
		double m = 0.0, v = 0.0;

		for (j = 0; j < n; j++)
			m += x[j * SEGMENTS_FEATURES + f];
		m = n ? m / (double)n : 0.0;
		for (j = 0; j < n; j++)
			v += (x[j * SEGMENTS_FEATURES + f] - m) * (x[j * SEGMENTS_FEATURES + f] - m);
		v = n ? sqrt(v / (double)n) : 0.0;
		if (v < 10.0 * 2.220446049250313e-16)
			v = 1.0;
		s->mean[f] = m;
		s->scale[f] = v;
		for (j = 0; j < n; j++)
			x[j * SEGMENTS_FEATURES + f] = (x[j * SEGMENTS_FEATURES + f] - m) / v;
	}
	s->rows_used = n;
	*xout = x;
	*rows_out = rows;
	return 0;
}

static int
segments_cluster(const double *x, size_t n, const struct segments_opts *o, struct segments *s,
    struct kmeans_result **out, struct cg_err *err)
{
	struct kmeans_result *best = NULL, *cur = NULL;
	double sil, best_sil = -INFINITY;
	size_t k, kmax;
	int rc = 0;

	*out = NULL;
	if (o->init_first_rows) {
		if (o->k < 1 || o->k > n)
			return cg_err_set(err, CG_ERR_ARG, "segments: a fixed initialization needs k "
			    "from 1 to the %zu usable rows", n);
		return kmeans_lloyd(x, n, SEGMENTS_FEATURES, o->k, x, out, err);
	}
	if (o->k != 0) {
		if (o->k > n)
			return cg_err_set(err, CG_ERR_ARG, "segments: k = %zu but only %zu usable rows",
			    o->k, n);
		return kmeans_fit(x, n, SEGMENTS_FEATURES, o->k, o->restarts, o->seed, out, err);
	}
	kmax = n - 1 < SEGMENTS_AUTO_K_MAX ? n - 1 : SEGMENTS_AUTO_K_MAX;
	if (kmax < 2)
		return cg_err_set(err, CG_ERR_ARG, "segments: %zu usable rows are too few to choose k", n);
	s->k_by_silhouette = 1;
	for (k = 2; k <= kmax; k++) {
		if ((rc = kmeans_fit(x, n, SEGMENTS_FEATURES, k, o->restarts, o->seed, &cur, err)) != 0 ||
		    (rc = kmeans_silhouette(x, n, SEGMENTS_FEATURES, cur->labels, k,
		    SEGMENTS_SILHOUETTE_SAMPLE, o->seed, &sil, err)) != 0)
			goto out;
		s->silhouette[k] = sil;
		kmeans_result_keep(&best, &cur, sil > best_sil);
		if (sil > best_sil)
			best_sil = sil;
	}
	*out = best;
	best = NULL;   /* transferred */
 out:
	kmeans_result_free(cur);
	kmeans_result_free(best);
	return rc;
}

/* Merge clusters below the threshold into the nearest one; root[c] is where cluster c went. */
static void
segments_merge(const struct kmeans_result *km, uint32_t threshold, size_t *root, double *center,
    size_t *size, struct segments *s)
{
	size_t k = km->k, c, t, alive = k;

	for (c = 0; c < k; c++) {
		root[c] = c;
		size[c] = km->sizes[c];
	}
	memcpy(center, km->centers, k * SEGMENTS_FEATURES * sizeof(*center));
	while (alive > 1) {
		size_t small = k, near = k;
		double nd = INFINITY;
		int f;

		for (c = 0; c < k; c++)
			if (root[c] == c && size[c] < threshold && (small == k || size[c] < size[small]))
				small = c;
		if (small == k)
			break;
		for (t = 0; t < k; t++) {
			double dd = 0.0;

			if (root[t] != t || t == small)
				continue;
			for (f = 0; f < SEGMENTS_FEATURES; f++)
				dd += (center[t * SEGMENTS_FEATURES + f] - center[small * SEGMENTS_FEATURES + f]) *
				    (center[t * SEGMENTS_FEATURES + f] - center[small * SEGMENTS_FEATURES + f]);
			if (dd < nd) {
				nd = dd;
				near = t;
			}
		}
		for (f = 0; f < SEGMENTS_FEATURES; f++)
			center[near * SEGMENTS_FEATURES + f] = (center[near * SEGMENTS_FEATURES + f] *
			    (double)size[near] + center[small * SEGMENTS_FEATURES + f] * (double)size[small]) /
			    (double)(size[near] + size[small]);
		size[near] += size[small];
		size[small] = 0;
		for (c = 0; c < k; c++)
			if (root[c] == small)
				root[c] = near;
		alive--;
		s->merged++;
	}
}

static void
segments_name(struct segment *g)
{
	double zl = g->center_z[0], zw = g->center_z[1];
	size_t n = 0;
	int f;

	if (zl > SEGMENTS_TRAIT_Z && zw > SEGMENTS_TRAIT_Z)
		snprintf(g->name, sizeof(g->name), "All-round fans");
	else if (zl > SEGMENTS_TRAIT_Z)
		snprintf(g->name, sizeof(g->name), "Learners");
	else if (zw > SEGMENTS_TRAIT_Z)
		snprintf(g->name, sizeof(g->name), "Gamers");
	else if (zl < -SEGMENTS_TRAIT_Z && zw < -SEGMENTS_TRAIT_Z)
		snprintf(g->name, sizeof(g->name), "Light users");
	else
		snprintf(g->name, sizeof(g->name), "Mainstream");
	g->traits[0] = '\0';
	for (f = 0; f < SEGMENTS_FEATURES; f++) {
		const char *lvl = g->center_z[f] > SEGMENTS_TRAIT_Z ? "high" :
		    g->center_z[f] < -SEGMENTS_TRAIT_Z ? "low" : "typical";

		n += (size_t)snprintf(g->traits + n, sizeof(g->traits) - n, "%s%s %s", f ? ", " : "",
		    segments_feature_words[f], lvl);
		if (n >= sizeof(g->traits))
			break;
	}
}

static int
segments_cmp_size(const void *a, const void *b)
{
	const struct segment *x = a, *y = b;

	return (x->size < y->size) - (x->size > y->size);
}

/* Per segment: means, counts per category level, the dominant levels at or above the threshold. */
static int
segments_profile(const struct dataset *d, const size_t *rows, size_t n, const uint32_t *lab,
    uint32_t threshold, struct segments *s, struct cg_err *err)
{
	size_t *cnt = NULL, *nmean = NULL, i, g, l, t;
	size_t nlev = 0;
	int c;

	for (c = 0; c < DATASET_CAT_COLS; c++)
		nlev += d->levels[c].n;
	cnt = calloc(s->nseg * (nlev + 1), sizeof(*cnt));
	nmean = calloc(s->nseg * DATASET_NUM_COLS, sizeof(*nmean));
	if (cnt == NULL || nmean == NULL) {
		free(cnt);
		free(nmean);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		struct segment *sg = &s->seg[lab[i]];
		size_t off = lab[i] * (nlev + 1);

		for (c = 0; c < DATASET_NUM_COLS; c++) {
			double v = d->has_num[c] ? d->num[c][rows[i]] : NAN;

			if (isnan(v))
				continue;
			sg->mean[c] += v;
			nmean[lab[i] * DATASET_NUM_COLS + c]++;
		}
		for (c = 0; c < DATASET_CAT_COLS; c++) {
			if (d->has_cat[c] && d->cat[c][rows[i]] >= 0)
				cnt[off + (size_t)d->cat[c][rows[i]]]++;
			off += d->levels[c].n;
		}
	}
	for (g = 0; g < s->nseg; g++) {
		struct segment *sg = &s->seg[g];
		size_t off = g * (nlev + 1);

		for (c = 0; c < DATASET_NUM_COLS; c++) {
			size_t m = nmean[g * DATASET_NUM_COLS + c];

			sg->mean[c] = m ? sg->mean[c] / (double)m : NAN;
		}
		for (c = 0; c < DATASET_CAT_COLS; c++) {
			sg->ntop[c] = 0;
			for (l = 0; l < d->levels[c].n; l++) {
				size_t v = cnt[off + l];

				if (v < threshold || v == 0)
					continue;
				/* Insertion into the top list, largest first (ties: level order). */
				for (t = sg->ntop[c]; t > 0 && sg->top[c][t - 1].count < v; t--)
					if (t < SEGMENTS_TOP)
						sg->top[c][t] = sg->top[c][t - 1];
				if (t < SEGMENTS_TOP) {
					sg->top[c][t].level = (int32_t)l;
					sg->top[c][t].count = v;
					if (sg->ntop[c] < SEGMENTS_TOP)
						sg->ntop[c]++;
				}
			}
			off += d->levels[c].n;
		}
	}
	free(cnt);
	free(nmean);
	return 0;
}

int
segments_fit(const struct dataset *d, const struct segments_opts *o, struct segments **out,
    struct cg_err *err)
{
	struct kmeans_result *km = NULL;
	struct segments *s = NULL;
	double *x = NULL, center[KMEANS_K_MAX * SEGMENTS_FEATURES];
	size_t *rows = NULL, root[KMEANS_K_MAX], size[KMEANS_K_MAX], slot[KMEANS_K_MAX];
	uint32_t *lab = NULL;
	size_t i, c, n = 0;
	int f, rc;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	if ((rc = segments_matrix(d, s, &x, &rows, err)) != 0)
		goto out;
	if (s->rows_used < 2) {
		rc = cg_err_set(err, CG_ERR_ARG, "segments: %zu usable rows are too few", s->rows_used);
		goto out;
	}
	if ((rc = segments_cluster(x, s->rows_used, o, s, &km, err)) != 0)
		goto out;
	s->k_fit = km->k;
	s->inertia = km->inertia;
	s->iterations = km->iterations;
	if (s->rows_used < o->threshold) {
		/* Even all rows together are too few to release anything about them. */
		s->withheld_rows = s->rows_used;
		*out = s;
		s = NULL;
		rc = 0;
		goto out;
	}
	segments_merge(km, o->threshold, root, center, size, s);
	for (c = 0; c < km->k; c++)
		if (root[c] == c)
			slot[c] = n++;
	if ((s->seg = calloc(n, sizeof(*s->seg))) == NULL ||
	    (lab = malloc(s->rows_used * sizeof(*lab))) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	s->nseg = n;
	for (c = 0; c < km->k; c++) {
		struct segment *g;

		if (root[c] != c)
			continue;
		g = &s->seg[slot[c]];
		g->size = size[c];
		for (f = 0; f < SEGMENTS_FEATURES; f++) {
			g->center_z[f] = center[c * SEGMENTS_FEATURES + f];
			g->center[f] = expm1(g->center_z[f] * s->scale[f] + s->mean[f]);
		}
		segments_name(g);
	}
	for (i = 0; i < s->rows_used; i++)
		lab[i] = (uint32_t)slot[root[km->labels[i]]];
	if ((rc = segments_profile(d, rows, s->rows_used, lab, o->threshold, s, err)) != 0)
		goto out;
	/* Largest first; the profile is computed, so reordering the array is all it takes. */
	qsort(s->seg, s->nseg, sizeof(*s->seg), segments_cmp_size);
	*out = s;
	s = NULL;   /* transferred */
	rc = 0;
 out:
	kmeans_result_free(km);
	segments_free(s);
	free(x);
	free(rows);
	free(lab);
	return rc;
}
