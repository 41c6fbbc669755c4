/* report.c - see report.h */
#include "analytics/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/outfile.h"

static json_t *
report_num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

const char *
report_level_name(const struct analytics *a, int col, int32_t level)
{
	if (a->data == NULL || col < 0 || col >= DATASET_CAT_COLS || level < 0 ||
	    (size_t)level >= a->data->levels[col].n)
		return "";
	return a->data->levels[col].names[level];
}

static json_t *
report_provenance(const struct analytics *a)
{
	const struct provenance *p = &a->prov;
	json_t *o;

	if (!p->known)
		return json_pack("{s:b, s:s}", "known", 0, "reason", a->prov_note);
	o = json_pack("{s:b, s:s, s:s, s:s, s:I, s:I, s:s}", "known", 1, "release",
	    p->query ? "query" : "export", p->query ? "query_id" : "export_id", p->export_id,
	    "purpose", p->purpose, "k", (json_int_t)p->k, "rows", (json_int_t)p->rows,
	    "policy_hash", p->policy_hash);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "audit_index", p->audit_index >= 0 ?
	    json_integer((json_int_t)p->audit_index) : json_null());
	json_object_set_new(o, "l", json_integer((json_int_t)p->l));
	json_object_set_new(o, "suppressed", json_integer((json_int_t)p->suppressed));
	json_object_set_new(o, "sensitive", json_string(p->sensitive));
	json_object_set_new(o, "created", json_string(p->created));
	json_object_set_new(o, "analyst", json_string(p->analyst));
	json_object_set_new(o, "left", json_string(p->left));
	json_object_set_new(o, "right", json_string(p->right));
	return o;
}

static json_t *
report_mix(const struct analytics *a)
{
	const struct ridge_fit *m = &a->mix;
	json_t *o, *feats, *grid, *folds;
	size_t j;

	if (!a->have_mix)
		return json_pack("{s:b, s:s}", "available", 0, "reason", a->mix_note);
	feats = json_array();
	grid = json_array();
	folds = json_array();
	for (j = 0; j < m->p; j++)
		json_array_append_new(feats, json_pack("{s:s, s:s, s:o, s:o, s:[o,o], s:o, s:o, s:o}",
		    "name", dataset_num_names[analytics_mix_cols[j]], "symbol", analytics_mix_symbols[j],
		    "coef", report_num(m->coef[j]), "coef_standardized", report_num(m->coef_std[j]),
		    "ci95_standardized", report_num(m->boot_lo[j]), report_num(m->boot_hi[j]),
		    "sd_standardized", report_num(m->boot_sd[j]), "mean", report_num(m->mean[j]),
		    "scale", report_num(m->scale[j])));
	for (j = 0; j < m->ngrid; j++)
		json_array_append_new(grid, json_pack("{s:o, s:o}", "lambda", report_num(m->grid[j]),
		    "cv_r2", report_num(m->grid_r2[j])));
	for (j = 0; j < m->folds; j++)
		json_array_append_new(folds, report_num(m->fold_r2[j]));
	o = json_pack("{s:b, s:s, s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o}",
	    "available", 1, "target", dataset_num_names[DATASET_CONV], "rows_used", (json_int_t)m->n,
	    "lambda", report_num(m->lambda), "folds", (json_int_t)m->folds,
	    "cv_r2", report_num(m->cv_r2), "fold_r2", folds, "r2_train", report_num(m->r2_train),
	    "intercept", report_num(m->intercept), "intercept_standardized", report_num(m->intercept_std),
	    "alpha", report_num(m->coef[1]), "beta", report_num(m->coef[2]),
	    "gamma", report_num(m->coef[0]), "bootstrap", (json_int_t)m->bootstrap,
	    "features", feats, "grid", grid);
	return o;
}

static json_t *
report_segment(const struct analytics *a, const struct segments *s, const struct segment *g)
{
	json_t *center = json_object(), *mean = json_object(), *dom = json_object(), *z = json_array();
	size_t t;
	int c;

	for (c = 0; c < SEGMENTS_FEATURES; c++) {
		json_object_set_new(center, dataset_num_names[segments_feature_cols[c]],
		    report_num(g->center[c]));
		json_array_append_new(z, report_num(g->center_z[c]));
	}
	for (c = 0; c < DATASET_NUM_COLS; c++)
		if (a->data->has_num[c])
			json_object_set_new(mean, dataset_num_names[c], report_num(g->mean[c]));
	for (c = 0; c < DATASET_CAT_COLS; c++) {
		json_t *arr;

		if (!a->data->has_cat[c])
			continue;
		arr = json_array();
		for (t = 0; t < g->ntop[c]; t++)
			json_array_append_new(arr, json_pack("{s:s, s:I}", "value",
			    report_level_name(a, c, g->top[c][t].level), "count",
			    (json_int_t)g->top[c][t].count));
		json_object_set_new(dom, dataset_cat_names[c], arr);
	}
	return json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "name", g->name, "traits", g->traits,
	    "size", (json_int_t)g->size, "share", report_num((double)g->size / (double)s->rows_used),
	    "center", center, "center_standardized", z, "mean", mean, "dominant", dom);
}

static json_t *
report_segments(const struct analytics *a)
{
	const struct segments *s = a->seg;
	json_t *feats, *sil, *segs;
	size_t i;
	char key[8];

	if (s == NULL)
		return json_pack("{s:b, s:s}", "available", 0, "reason", a->seg_note);
	feats = json_array();
	for (i = 0; i < SEGMENTS_FEATURES; i++)
		json_array_append_new(feats, json_string(dataset_num_names[segments_feature_cols[i]]));
	sil = json_object();
	for (i = 2; s->k_by_silhouette && i <= SEGMENTS_AUTO_K_MAX; i++) {
		if (s->silhouette[i] == 0.0)
			continue;
		snprintf(key, sizeof(key), "%zu", i);
		json_object_set_new(sil, key, report_num(s->silhouette[i]));
	}
	segs = json_array();
	for (i = 0; i < s->nseg; i++)
		json_array_append_new(segs, report_segment(a, s, &s->seg[i]));
	return json_pack("{s:b, s:o, s:s, s:I, s:I, s:I, s:b, s:o, s:o, s:I, s:I, s:I, s:o, s:s}",
	    "available", s->nseg > 0, "features", feats, "transform", "log1p, then standardized",
	    "rows_used", (json_int_t)s->rows_used, "k", (json_int_t)s->nseg, "k_fit", (json_int_t)s->k_fit,
	    "k_by_silhouette", s->k_by_silhouette, "silhouette", sil, "inertia", report_num(s->inertia),
	    "iterations", (json_int_t)s->iterations, "merged", (json_int_t)s->merged,
	    "withheld_rows", (json_int_t)s->withheld_rows, "segments", segs,
	    "reason", a->seg_note);
}

static json_t *
report_levels(const struct dataset_levels *lv, const double *count)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < lv->n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:o}", "value", lv->names[i], "count",
		    report_num(count[i])));
	return arr;
}

static json_t *
report_affinity(const struct analytics *a)
{
	const struct affinity *f = a->aff;
	json_t *pairs;
	size_t i;

	if (f == NULL)
		return json_pack("{s:b, s:s}", "available", 0, "reason", a->aff_note);
	pairs = json_array();
	for (i = 0; i < f->released; i++) {
		const struct affinity_pair *p = &f->pairs[f->rules[i]];

		json_array_append_new(pairs, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}",
		    "course", f->course.names[p->course], "game", f->game.names[p->game],
		    "count", report_num(p->count), "support", report_num(p->support),
		    "confidence", report_num(p->confidence), "lift", report_num(p->lift)));
	}
	return json_pack("{s:b, s:s, s:o, s:I, s:I, s:o, s:o, s:o}", "available", 1,
	    "source", f->source == AFFINITY_FROM_EXPORT ? "export" : "aggregates",
	    "total", report_num(f->total), "released", (json_int_t)f->released,
	    "withheld", (json_int_t)f->withheld,
	    "course_categories", report_levels(&f->course, f->course_count),
	    "game_categories", report_levels(&f->game, f->game_count), "pairs", pairs);
}

/* The content mix from the DP ridge release: coefficients, intervals with the noise, and the rho spent. */
static json_t *
report_dp_mix(const struct analytics *a)
{
	const struct dpmodel_ridge_fit *m = &a->dpmix;
	json_t *coefs;
	size_t i;

	if (!a->have_dpmix)
		return json_null();
	coefs = json_array();
	for (i = 0; i < m->p; i++)
		json_array_append_new(coefs, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "feature",
		    a->dprel.names[i], "symbol", i < ANALYTICS_MIX_FEATURES ? analytics_mix_symbols[i] : "",
		    "coef", report_num(m->coef[i]), "ci95_low", report_num(m->lo95[i]), "ci95_high",
		    report_num(m->hi95[i]), "sd", report_num(m->sd[i]), "noise_share", report_num(m->noise_share[i])));
	return json_pack("{s:b, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:s, s:s, s:o}", "available", 1,
	    "source", "dp-ridge-release", "target", a->dprel.names[m->p], "intercept", report_num(m->intercept),
	    "coefficients", coefs, "n_noisy", report_num(m->n), "lambda", report_num(m->lambda),
	    "noise_sd", report_num(a->dprel.noise_sd), "bootstrap", (json_int_t)m->bootstrap, "r2", report_num(m->r2),
	    "intervals", "95% parametric bootstrap over the published DP noise and the sampling variance (basic)",
	    "release", a->dprel.query_id, "rho", report_num(m->rho));
}

/* The segments from the DP k-means release: shares from the noisy counts. */
static json_t *
report_dp_segments(const struct analytics *a)
{
	const struct dpmodel_kmeans_release *k = &a->dpseg;
	json_t *segs, *centre;
	size_t i, t;

	if (!a->have_dpseg)
		return json_null();
	segs = json_array();
	for (i = 0; i < k->k; i++) {
		centre = json_object();
		for (t = 0; t < k->d; t++)
			json_object_set_new(centre, k->names[t], report_num(k->centre[i][t]));
		json_array_append_new(segs, json_pack("{s:s, s:o, s:o, s:o}", "name", a->dpseg_name[i], "count_noisy",
		    report_num(k->count[i]), "share", report_num(k->share[i]), "center", centre));
	}
	return json_pack("{s:b, s:s, s:I, s:b, s:o, s:o, s:s, s:o}", "available", 1, "source", "dp-kmeans-release",
	    "steps", (json_int_t)k->steps, "log1p", k->log1p, "count_noise_sd", report_num(k->count_noise_sd),
	    "segments", segs, "release", k->query_id, "rho", report_num(k->rho));
}

static json_t *
report_interval(const struct activation_interval *iv)
{
	return json_pack("{s:o, s:o, s:o}", "est", report_num(iv->est), "lo", report_num(iv->lo), "hi",
	    report_num(iv->hi));
}

/* The activation and experiment section: noisy figures from the released files, as read. */
static json_t *
report_activation(const struct analytics *a)
{
	const struct activation *c = &a->act;
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "audience", !c->have_audience ? json_null() : json_pack("{s:s, s:o, s:o}", "name",
	    c->audience, "noisy_size", report_num(c->audience_noisy), "rho", report_num(c->audience_rho)));
	json_object_set_new(o, "lift", !c->have_lift ? json_null() : json_pack("{s:s, s:s, s:o, s:o, s:o, s:[o,o], "
	    "s:[o,o], s:o, s:o, s:o}", "experiment", c->experiment, "campaign_partner", c->partner,
	    "rho", report_num(c->rho), "confidence", report_num(c->confidence), "value_cap", report_num(c->value_cap),
	    "noisy_n", report_num(c->n[0]), report_num(c->n[1]), "rate", report_num(c->rate[0]), report_num(c->rate[1]),
	    "rate_lift", report_interval(&c->rate_diff),
	    "rate_lift_relative", c->rel_ok ? report_interval(&c->rate_rel) : json_null(),
	    "value_lift_per_subject", report_interval(&c->value_diff)));
	json_object_set_new(o, "rho", report_num((c->have_audience ? c->audience_rho : 0) + (c->have_lift ? c->rho : 0)));
	return o;
}

int
report_json(const struct analytics *a, json_t **out, struct cg_err *err)
{
	json_t *o;

	*out = NULL;
	o = json_pack("{s:s, s:i, s:I, s:{s:o, s:o, s:o, s:o, s:I}, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "tool", "crossgate analytics", "version", 1, "threshold", (json_int_t)a->threshold,
	    "input", "export", a->opts.export_path ? json_string(a->opts.export_path) : json_null(),
	    "aggregates", a->opts.aggregates_path ? json_string(a->opts.aggregates_path) : json_null(),
	    "ridge", a->opts.ridge_path ? json_string(a->opts.ridge_path) : json_null(),
	    "kmeans", a->opts.kmeans_path ? json_string(a->opts.kmeans_path) : json_null(),
	    "rows", (json_int_t)a->rows,
	    "provenance", report_provenance(a), "content_mix", report_mix(a),
	    "segments", report_segments(a), "affinity", report_affinity(a),
	    "dp_content_mix", report_dp_mix(a), "dp_segments", report_dp_segments(a),
	    "affinity_rho", a->aff_rho > 0 ? report_num(a->aff_rho) : json_null());
	if (o == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "cannot build the JSON report");
	if ((a->act.have_audience || a->act.have_lift) && json_object_set_new(o, "activation", report_activation(a)) != 0) {
		json_decref(o);
		return cg_err_set(err, CG_ERR_NOMEM, "cannot build the JSON report");
	}
	*out = o;
	return 0;
}
int
report_write_json(const struct analytics *a, const char *path, struct cg_err *err)
{
	json_t *o = NULL;
	int rc;

	if ((rc = report_json(a, &o, err)) != 0)
		return rc;
	if (strcmp(path, "-") == 0) {
		rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0 ||
		    fputc('\n', stdout) == EOF || fflush(stdout) != 0;
	} else {
		rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	}
	json_decref(o);
	if (rc != 0)
		return cg_err_set(err, CG_ERR_IO, "%s: cannot write the JSON report", path);
	return 0;
}

/* ---- CSV ------------------------------------------------------------------ */

/* RFC 4180: text always quoted, quotes doubled. */
static void
report_csv_text(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void
report_csv_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.17g", v);
}

static int
report_csv_open(const char *dir, const char *name, const char *header, struct outfile *out,
    struct cg_err *err)
{
	char path[4200];
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return cg_err_set(err, CG_ERR_ARG, "%s: directory path too long", dir);
	if ((rc = outfile_open(out, path, 0600, err)) != 0)
		return rc;
	fprintf(out->f, "%s\n", header);
	return 0;
}

static void
report_csv_mix(const struct analytics *a, FILE *f)
{
	const struct ridge_fit *m = &a->mix;
	size_t j;

	for (j = 0; a->have_mix && j < m->p; j++) {
		report_csv_text(f, dataset_num_names[analytics_mix_cols[j]]);
		fputc(',', f);
		report_csv_text(f, analytics_mix_symbols[j]);
		fputc(',', f);
		report_csv_num(f, m->coef[j]);
		fputc(',', f);
		report_csv_num(f, m->coef_std[j]);
		fputc(',', f);
		report_csv_num(f, m->boot_lo[j]);
		fputc(',', f);
		report_csv_num(f, m->boot_hi[j]);
		fprintf(f, ",%zu,", m->n);
		report_csv_num(f, m->cv_r2);
		fputc(',', f);
		report_csv_num(f, m->lambda);
		fputc('\n', f);
	}
}

static void
report_csv_segments(const struct analytics *a, FILE *f, FILE *cats)
{
	const struct segments *s = a->seg;
	size_t i, t;
	int c;

	for (i = 0; s != NULL && i < s->nseg; i++) {
		const struct segment *g = &s->seg[i];

		fprintf(f, "%zu,", i + 1);
		report_csv_text(f, g->name);
		fprintf(f, ",%zu,", g->size);
		report_csv_num(f, (double)g->size / (double)s->rows_used);
		for (c = 0; c < SEGMENTS_FEATURES; c++) {
			fputc(',', f);
			report_csv_num(f, g->center[c]);
		}
		for (c = 0; c < DATASET_NUM_COLS; c++) {
			fputc(',', f);
			report_csv_num(f, g->mean[c]);
		}
		fputc('\n', f);
		for (c = 0; c < DATASET_CAT_COLS; c++) {
			for (t = 0; t < g->ntop[c]; t++) {
				fprintf(cats, "%zu,", i + 1);
				report_csv_text(cats, dataset_cat_names[c]);
				fputc(',', cats);
				report_csv_text(cats, report_level_name(a, c, g->top[c][t].level));
				fprintf(cats, ",%zu\n", g->top[c][t].count);
			}
		}
	}
}

static void
report_csv_affinity(const struct analytics *a, FILE *f)
{
	const struct affinity *af = a->aff;
	size_t i;

	for (i = 0; af != NULL && i < af->released; i++) {
		const struct affinity_pair *p = &af->pairs[af->rules[i]];

		report_csv_text(f, af->course.names[p->course]);
		fputc(',', f);
		report_csv_text(f, af->game.names[p->game]);
		fputc(',', f);
		report_csv_num(f, p->count);
		fputc(',', f);
		report_csv_num(f, p->support);
		fputc(',', f);
		report_csv_num(f, p->confidence);
		fputc(',', f);
		report_csv_num(f, p->lift);
		fputc('\n', f);
	}
}

static void
report_csv_provenance(const struct analytics *a, FILE *f)
{
	const struct provenance *p = &a->prov;

	if (!p->known) {
		fputs("\"known\",\"false\"\n\"reason\",", f);
		report_csv_text(f, a->prov_note);
		fputc('\n', f);
		return;
	}
	fputs("\"known\",\"true\"\n\"export_id\",", f);
	report_csv_text(f, p->export_id);
	fputs("\n\"purpose\",", f);
	report_csv_text(f, p->purpose);
	fprintf(f, "\n\"k\",%llu\n\"rows\",%llu\n\"policy_hash\",", (unsigned long long)p->k,
	    (unsigned long long)p->rows);
	report_csv_text(f, p->policy_hash);
	if (p->audit_index >= 0)
		fprintf(f, "\n\"audit_index\",%lld", (long long)p->audit_index);
	fputs("\n\"created\",", f);
	report_csv_text(f, p->created);
	fputc('\n', f);
}

/* The DP content mix and segments (empty tables, headers only, without their releases). */
static void
report_csv_dp(const struct analytics *a, FILE *mix, FILE *seg)
{
	size_t i;

	for (i = 0; a->have_dpmix && i < a->dpmix.p; i++) {
		report_csv_text(mix, a->dprel.names[i]);
		fputc(',', mix);
		report_csv_num(mix, a->dpmix.coef[i]);
		fputc(',', mix);
		report_csv_num(mix, a->dpmix.lo95[i]);
		fputc(',', mix);
		report_csv_num(mix, a->dpmix.hi95[i]);
		fputc(',', mix);
		report_csv_num(mix, a->dpmix.noise_share[i]);
		fputc(',', mix);
		report_csv_num(mix, a->dpmix.rho);
		fputc('\n', mix);
	}
	for (i = 0; a->have_dpseg && i < a->dpseg.k; i++) {
		fprintf(seg, "%zu,", i + 1);
		report_csv_text(seg, a->dpseg_name[i]);
		fputc(',', seg);
		report_csv_num(seg, a->dpseg.count[i]);
		fputc(',', seg);
		report_csv_num(seg, a->dpseg.share[i]);
		fputc(',', seg);
		report_csv_num(seg, a->dpseg.rho);
		fputc('\n', seg);
	}
}

int
report_write_csv(const struct analytics *a, const char *dir, struct cg_err *err)
{
	static const char *const names[7] = {
		"content_mix.csv", "segments.csv", "segment_categories.csv", "affinity.csv",
		"provenance.csv", "dp_content_mix.csv", "dp_segments.csv",
	};
	char seg_header[1024];
	struct outfile of[7];
	FILE *f[7];
	size_t n = 0;
	int i, c, rc = 0;

	memset(of, 0, sizeof(of));
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return cg_err_set(err, CG_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
	n = (size_t)snprintf(seg_header, sizeof(seg_header), "segment,name,size,share");
	for (c = 0; c < SEGMENTS_FEATURES; c++)
		n += (size_t)snprintf(seg_header + n, sizeof(seg_header) - n, ",center_%s",
		    dataset_num_names[segments_feature_cols[c]]);
	for (c = 0; c < DATASET_NUM_COLS; c++)
		n += (size_t)snprintf(seg_header + n, sizeof(seg_header) - n, ",mean_%s",
		    dataset_num_names[c]);
	{
		const char *headers[7] = {
			"feature,symbol,coef,coef_standardized,ci95_low_standardized,"
			"ci95_high_standardized,rows_used,cv_r2,lambda",
			seg_header, "segment,column,value,count",
			"course,game,count,support,confidence,lift", "field,value",
			"feature,coef,ci95_low,ci95_high,noise_share,rho", "segment,name,count_noisy,share,rho",
		};

		for (i = 0; i < 7; i++)
			if ((rc = report_csv_open(dir, names[i], headers[i], &of[i], err)) != 0)
				goto out;
			else
				f[i] = of[i].f;
	}
	report_csv_mix(a, f[0]);
	report_csv_segments(a, f[1], f[2]);
	report_csv_affinity(a, f[3]);
	report_csv_provenance(a, f[4]);
	report_csv_dp(a, f[5], f[6]);
	/* each file appears whole; after a failure the rest are not written */
	for (i = 0; i < 7; i++)
		if (rc == 0)
			rc = outfile_commit(&of[i], err);
		else
			outfile_abort(&of[i]);
 out:
	for (i = 0; i < 7; i++)
		outfile_abort(&of[i]);
	return rc;
}
