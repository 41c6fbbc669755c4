/*
 * test_analytics_models.c - the analytics core's models on small inputs with
 * known answers: ridge (analytics/ridge.c), k-means and the silhouette
 * (analytics/kmeans.c), segments and their threshold (analytics/segments.c),
 * affinity (analytics/affinity.c), and the whole run with its JSON
 * (analytics/analytics.c, analytics/report.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics/affinity.h"
#include "analytics/analytics.h"
#include "analytics/dataset.h"
#include "analytics/kmeans.h"
#include "analytics/prng.h"
#include "analytics/report.h"
#include "analytics/ridge.h"
#include "analytics/segments.h"
#include "tests/unit/cgtest.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

static void
test_ridge_exact(void)
{
	double x[200 * 2], y[200];
	struct ridge_opts o;
	struct ridge_fit f, g;
	struct cg_err err;
	struct prng r;
	size_t i;

	prng_seed(&r, 3, 0);
	for (i = 0; i < 200; i++) {
		x[2 * i] = 10.0 * prng_unif(&r);
		x[2 * i + 1] = 100.0 * prng_unif(&r) - 50.0;
		y[i] = 3.0 + 2.0 * x[2 * i] - 0.5 * x[2 * i + 1];
	}
	ridge_opts_default(&o);
	CHECK_EQ_INT(ridge_fit_cv(x, y, 200, 2, &o, &f, &err), 0);
	/* Noiseless: the smallest lambda wins and the model is the truth. */
	CHECK(f.lambda == ridge_default_grid[0]);
	CHECK(NEAR(f.coef[0], 2.0, 1e-4) && NEAR(f.coef[1], -0.5, 1e-4));
	CHECK(NEAR(f.intercept, 3.0, 1e-3));
	CHECK(f.cv_r2 > 0.999999 && f.cv_r2 <= 1.0);
	CHECK(NEAR(f.coef_std[0], f.coef[0] * f.scale[0], 1e-9 * fabs(f.coef_std[0])));
	for (i = 0; i < 2; i++)
		CHECK(f.boot_lo[i] <= f.coef_std[i] && f.coef_std[i] <= f.boot_hi[i]);
	/* The same seed gives the same intervals. */
	CHECK_EQ_INT(ridge_fit_cv(x, y, 200, 2, &o, &g, &err), 0);
	CHECK(memcmp(f.boot_lo, g.boot_lo, sizeof(f.boot_lo)) == 0);

	/* One feature and lambda = n: the standardized coefficient is half the least-squares one. */
	{
		double grid[1] = { 200.0 }, z[200];

		for (i = 0; i < 200; i++)
			z[i] = x[2 * i];
		o.grid = grid;
		o.ngrid = 1;
		o.bootstrap = 0;
		CHECK_EQ_INT(ridge_fit_cv(z, y, 200, 1, &o, &g, &err), 0);
		CHECK_EQ_INT(ridge_fit_cv(z, z, 200, 1, &o, &f, &err), 0);
		/* y on z has slope 2 per unit, so per SD 2 * scale; z on z per SD scale. */
		CHECK(NEAR(f.coef_std[0], f.scale[0] / 2.0, 1e-9 * f.scale[0]));
		CHECK(f.bootstrap == 0);
	}
}

static void
test_ridge_errors(void)
{
	double x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct ridge_opts o;
	struct ridge_fit f;
	struct cg_err err;
	double bad[1] = { -1.0 };

	ridge_opts_default(&o);
	CHECK_EQ_INT(ridge_fit_cv(x, y, 8, 1, &o, &f, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "8 rows are too few for 5 folds");
	o.folds = 2;
	CHECK_EQ_INT(ridge_fit_cv(x, y, 8, 0, &o, &f, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "0 features");
	o.folds = 1;
	CHECK_EQ_INT(ridge_fit_cv(x, y, 8, 1, &o, &f, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "folds must be 2 to 20");
	o.folds = 2;
	o.grid = bad;
	o.ngrid = 1;
	CHECK_EQ_INT(ridge_fit_cv(x, y, 8, 1, &o, &f, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "lambda 1 is not a finite value >= 0");
	o.grid = NULL;
	x[3] = NAN;
	CHECK_EQ_INT(ridge_fit_cv(x, y, 8, 1, &o, &f, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "feature value 3 is not finite");
	x[3] = 4;
	CHECK_EQ_INT(ridge_fit_cv(x, y, 8, 1, &o, &f, &err), 0);
	CHECK_EQ_INT(f.folds, 2);
}

static void
test_kmeans(void)
{
	double pts[8] = { 0, 1, 10, 11, 0.5, 10.5, 100, 101 }, init[2] = { 0, 1 }, sil;
	double blob[300 * 2];
	struct kmeans_result *r = NULL;
	struct cg_err err;
	struct prng g;
	size_t i;

	/* {0, 1} and {10, 11} from the two leftmost points: inertia 4 * 0.25. */
	CHECK_EQ_INT(kmeans_lloyd(pts, 4, 1, 2, init, &r, &err), 0);
	if (r != NULL) {
		CHECK(NEAR(r->inertia, 1.0, 1e-12));
		CHECK(r->labels[0] == r->labels[1] && r->labels[2] == r->labels[3] &&
		    r->labels[0] != r->labels[2]);
		CHECK_EQ_INT(r->sizes[0] + r->sizes[1], 4);
	}
	kmeans_result_free(r);
	/* Three separated blobs of 100: k-means++ with restarts finds them. */
	prng_seed(&g, 9, 0);
	for (i = 0; i < 300; i++) {
		blob[2 * i] = (double)(i / 100) * 20.0 + prng_unif(&g);
		blob[2 * i + 1] = (double)(i % 3) + prng_unif(&g);
	}
	CHECK_EQ_INT(kmeans_fit(blob, 300, 2, 3, 5, 1, &r, &err), 0);
	if (r != NULL) {
		CHECK(r->sizes[0] == 100 && r->sizes[1] == 100 && r->sizes[2] == 100);
		CHECK_EQ_INT(kmeans_silhouette(blob, 300, 2, r->labels, 3, 2000, 1, &sil, &err), 0);
		CHECK(sil > 0.9 && sil <= 1.0);
		/* On a sample, still high. */
		CHECK_EQ_INT(kmeans_silhouette(blob, 300, 2, r->labels, 3, 50, 1, &sil, &err), 0);
		CHECK(sil > 0.9);
		memset(r->labels, 0, 300 * sizeof(*r->labels));
		CHECK_EQ_INT(kmeans_silhouette(blob, 300, 2, r->labels, 3, 2000, 1, &sil, &err), 0);
		CHECK(sil == 0.0);
	}
	kmeans_result_free(r);
	r = NULL;
	CHECK_EQ_INT(kmeans_fit(pts, 4, 1, 5, 1, 1, &r, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "4 points are fewer than k = 5");
	CHECK(r == NULL);
	CHECK_EQ_INT(kmeans_fit(pts, 4, 1, 0, 1, 1, &r, &err), CG_ERR_ARG);
	pts[2] = INFINITY;
	CHECK_EQ_INT(kmeans_lloyd(pts, 4, 1, 2, init, &r, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "value 2 is not finite");
	kmeans_result_free(NULL);
}

/* A small export as text: n rows of each (learn, watch, streams) blob, with categories. */
static char *
make_export(const size_t *sizes, size_t nblobs)
{
	static const double centers[3][3] = { { 3000, 100, 3 }, { 100, 3000, 40 }, { 3000, 3000, 12 } };
	static const char *const cats[3] = { "programming", "language", "finance" };
	size_t cap = 1 << 20, n = 0, b, i, row = 0;
	char *buf = malloc(cap);
	struct prng r;

	if (buf == NULL)
		abort();
	prng_seed(&r, 5, 0);
	n += (size_t)snprintf(buf + n, cap - n, "pseudonym,k_course_spend_cents,k_learning_minutes,"
	    "k_conversion_value_cents,g_watch_minutes,g_streams_followed,k_top_course_category,"
	    "g_top_game_category\n");
	for (b = 0; b < nblobs; b++) {
		for (i = 0; i < sizes[b]; i++, row++) {
			double l = centers[b][0] * (0.9 + 0.2 * prng_unif(&r));
			double w = centers[b][1] * (0.9 + 0.2 * prng_unif(&r));
			double s = centers[b][2] * (0.9 + 0.2 * prng_unif(&r));
			double c = 1000.0 * prng_unif(&r);

			n += (size_t)snprintf(buf + n, cap - n, "p%zu,%.0f,%.0f,%.0f,%.0f,%.0f,%s,%s\n", row,
			    c, l, 0.3 * c + 20 * l + 5 * w + 50.0 * (prng_unif(&r) - 0.5), w, s, cats[b],
			    i % 4 == 0 ? "strategy" : "moba");
		}
	}
	return buf;
}

static void
test_segments_threshold(void)
{
	size_t sizes[3] = { 60, 50, 8 };
	struct segments_opts o;
	struct segments *s = NULL;
	struct dataset *d = NULL;
	struct cg_err err;
	char *text = make_export(sizes, 3);
	size_t i, total = 0;

	CHECK_EQ_INT(dataset_load_mem("s.csv", text, strlen(text), &d, &err), 0);
	free(text);
	if (d == NULL)
		return;
	segments_opts_default(&o);
	o.threshold = 5;
	CHECK_EQ_INT(segments_fit(d, &o, &s, &err), 0);
	if (s != NULL) {
		CHECK(s->k_by_silhouette);
		CHECK_EQ_INT(s->nseg, 3);
		CHECK_EQ_INT(s->seg[0].size, 60);
		CHECK_EQ_INT(s->seg[2].size, 8);
		CHECK_STR(s->seg[0].name, "Learners");
		CHECK(NEAR(s->seg[0].center[0], 3000, 300) && NEAR(s->seg[0].center[1], 100, 10));
		CHECK_EQ_INT(s->seg[0].ntop[DATASET_COURSE_CAT], 1);
		CHECK_STR(d->levels[DATASET_COURSE_CAT].names[s->seg[0].top[DATASET_COURSE_CAT][0].level],
		    "programming");
	}
	segments_free(s);
	/* Threshold 10: the 8-row segment is merged, and no listed count is below 10. */
	o.threshold = 10;
	CHECK_EQ_INT(segments_fit(d, &o, &s, &err), 0);
	if (s != NULL) {
		CHECK_EQ_INT(s->merged, 1);
		CHECK_EQ_INT(s->nseg, 2);
		for (i = 0; i < s->nseg; i++) {
			int c;
			size_t t;

			total += s->seg[i].size;
			CHECK(s->seg[i].size >= 10);
			for (c = 0; c < DATASET_CAT_COLS; c++)
				for (t = 0; t < s->seg[i].ntop[c]; t++)
					CHECK(s->seg[i].top[c][t].count >= 10);
		}
		CHECK_EQ_INT(total, 118);
	}
	segments_free(s);
	/* Above the rows: nothing released. */
	o.threshold = 1000;
	CHECK_EQ_INT(segments_fit(d, &o, &s, &err), 0);
	if (s != NULL) {
		CHECK_EQ_INT(s->nseg, 0);
		CHECK_EQ_INT(s->withheld_rows, 118);
	}
	segments_free(s);
	/* A fixed initialisation needs a k no larger than the rows. */
	o.threshold = 1;
	o.init_first_rows = 1;
	o.k = 500;
	CHECK_EQ_INT(segments_fit(d, &o, &s, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "fixed initialization needs k from 1 to the 118 usable rows");
	dataset_free(d);
	/* An export without the clustering columns. */
	CHECK_EQ_INT(dataset_load_mem("s.csv", "pseudonym,age\na,1\n", 18, &d, &err), 0);
	CHECK_EQ_INT(segments_fit(d, &o, &s, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "no column k_learning_minutes");
	dataset_free(d);
}

static void
test_affinity(void)
{
	char buf[8192];
	size_t n = 0, i;
	struct dataset *d = NULL;
	struct affinity *a = NULL;
	struct cg_err err;
	static const struct { const char *c, *g; int count; } cells[4] = {
		{ "a", "x", 30 }, { "a", "y", 10 }, { "b", "x", 10 }, { "b", "y", 30 },
	};
	int k, j;

	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "pseudonym,k_top_course_category,g_top_game_category\n");
	for (k = 0; k < 4; k++)
		for (j = 0; j < cells[k].count; j++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "p,%s,%s\n", cells[k].c, cells[k].g);
	CHECK_EQ_INT(dataset_load_mem("a.csv", buf, n, &d, &err), 0);
	if (d == NULL)
		return;
	CHECK_EQ_INT(affinity_from_dataset(d, 20, &a, &err), 0);
	if (a != NULL) {
		const struct affinity_pair *top = &a->pairs[a->rules[0]];

		CHECK_EQ_INT(a->released, 2);
		CHECK_EQ_INT(a->withheld, 2);
		CHECK(a->total == 80.0 && a->course_count[0] == 40.0);
		CHECK(top->count == 30.0 && NEAR(top->lift, 1.5, 1e-12));
		CHECK(NEAR(top->confidence, 0.75, 1e-12) && NEAR(top->support, 0.375, 1e-12));
		/* Withheld pairs carry nothing. */
		for (i = 0; i < 4; i++)
			if (!a->pairs[i].released)
				CHECK(a->pairs[i].count == 0.0 && a->pairs[i].lift == 0.0);
	}
	affinity_free(a);
	/* Threshold above a marginal: that category is withheld whole. */
	CHECK_EQ_INT(affinity_from_dataset(d, 41, &a, &err), 0);
	if (a != NULL) {
		CHECK_EQ_INT(a->released, 0);
		CHECK(isnan(a->course_count[0]) && a->total == 80.0);
	}
	affinity_free(a);
	dataset_free(d);
	CHECK_EQ_INT(dataset_load_mem("a.csv", "pseudonym,age\na,1\n", 18, &d, &err), 0);
	CHECK_EQ_INT(affinity_from_dataset(d, 1, &a, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "needs columns k_top_course_category and g_top_game_category");
	dataset_free(d);
	affinity_free(NULL);
}

static void
test_run_and_json(void)
{
	size_t sizes[3] = { 60, 50, 40 };
	char path[64], meta[96];
	struct analytics_opts o;
	struct analytics *a = NULL;
	struct cg_err err;
	json_t *j = NULL;
	char *text = make_export(sizes, 3);
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/cg_analytics_%d.csv", (int)getpid());
	snprintf(meta, sizeof(meta), "%s.meta.json", path);
	if ((f = fopen(path, "w")) != NULL) {
		fputs(text, f);
		fclose(f);
	}
	free(text);
	analytics_opts_default(&o);
	o.export_path = path;
	o.threshold = 10;
	CHECK_EQ_INT(analytics_run(&o, &a, &err), 0);
	if (a != NULL) {
		CHECK(a->have_mix && !a->prov.known);
		CHECK_CONTAINS(a->prov_note, "no provenance sidecar");
		CHECK(NEAR(a->mix.coef[1], 20.0, 0.2) && NEAR(a->mix.coef[2], 5.0, 0.2));
		CHECK(a->seg != NULL && a->seg->nseg == 3);
		CHECK(a->aff != NULL);
		CHECK_EQ_INT(report_json(a, &j, &err), 0);
		CHECK(json_is_false(json_object_get(json_object_get(j, "provenance"), "known")));
		CHECK_EQ_INT(json_integer_value(json_object_get(j, "threshold")), 10);
		CHECK(json_real_value(json_object_get(json_object_get(j, "content_mix"), "alpha")) ==
		    a->mix.coef[1]);
		json_decref(j);
	}
	analytics_free(a);
	a = NULL;
	/* A malformed sidecar fails the run; a threshold above the rows makes models unavailable. */
	if ((f = fopen(meta, "w")) != NULL) {
		fputs("{\"export_id\": 1}", f);
		fclose(f);
	}
	CHECK_EQ_INT(analytics_run(&o, &a, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "member export_id is not a string");
	CHECK(a == NULL);
	unlink(meta);
	o.threshold = 1000;
	CHECK_EQ_INT(analytics_run(&o, &a, &err), 0);
	if (a != NULL) {
		CHECK(!a->have_mix);
		CHECK_CONTAINS(a->mix_note, "150 usable rows, fewer than the threshold 1000");
		CHECK(a->seg != NULL && a->seg->nseg == 0);
		CHECK(a->aff != NULL && a->aff->released == 0);
	}
	analytics_free(a);
	o.export_path = NULL;
	CHECK_EQ_INT(analytics_run(&o, &a, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "no input");
	o.export_path = path;
	o.threshold = 0;
	CHECK_EQ_INT(analytics_run(&o, &a, &err), CG_ERR_ARG);
	unlink(path);
}

int
main(void)
{
	test_ridge_exact();
	test_ridge_errors();
	test_kmeans();
	test_segments_threshold();
	test_affinity();
	test_run_and_json();
	CGT_DONE();
}
