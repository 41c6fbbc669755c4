/* model.c - see model.h */
#include "gateway/model.h"

#include <csv.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "base/outfile.h"
#include "crypto/noise.h"
#include "gateway/budget.h"

#define MODEL_HALF (MODEL_FIX / 2)

struct model_col {
	struct join_col jc;
	int64_t lo, hi;
	double tlo, thi;                     /* the bounds after the transform (k-means log1p) */
};

struct model_plan {
	const struct model_spec *spec;
	struct model_col cols[MODEL_TERMS_MAX];   /* ridge: x columns then y; k-means: the columns */
	size_t ncols;
	int64_t threshold;
	/* ridge */
	size_t nterms, nent;                 /* d = ncols + 1, m = d (d + 1) / 2 */
	int64_t *exact, *noisy;
	/* k-means */
	int16_t *pts;                        /* npts x ncols fixed-point coordinates */
	size_t npts, cap;
	size_t grid;                         /* cells per column */
	/* noise: the variance num/den of a ridge entry, or of a grid count and of a DPLloyd step entry */
	uint64_t num, den, gnum, gden;
	double sens, sd, grid_sd, step_sd;
	int64_t rho_nano;
	double centre[MODEL_K_MAX][MODEL_COLS_MAX];   /* fixed-point units */
	double count[MODEL_K_MAX];           /* noisy, in subjects */
	int released;
};

int
model_kind_parse(const char *s, enum model_kind *out, struct cg_err *err)
{
	if (strcmp(s, "ridge") == 0)
		*out = MODEL_RIDGE;
	else if (strcmp(s, "kmeans") == 0)
		*out = MODEL_KMEANS;
	else
		return cg_err_set(err, CG_ERR_ARG, "unknown model '%.32s' (want ridge or kmeans)", s);
	return 0;
}

void
model_plan_free(struct model_plan *p)
{
	if (p == NULL)
		return;
	free(p->exact);
	free(p->noisy);
	if (p->pts != NULL) {
		/* the subjects' values, even transformed: wiped */
		sodium_memzero(p->pts, p->cap * p->ncols * sizeof(*p->pts));
		free(p->pts);
	}
	free(p);
}

static int
model_col_add(struct model_plan *p, const struct join_col *cols, size_t ncols, const char *name, struct cg_err *err)
{
	const struct join_col *jc;
	struct model_col *mc;
	size_t i;
	int r;

	if ((r = query_bounded_column(cols, ncols, name, &jc, err)) != 0)
		return r;
	for (i = 0; i < p->ncols; i++)
		if (strcmp(p->cols[i].jc.name, jc->name) == 0)
			return cg_err_set(err, CG_ERR_ARG, "column '%s' is named twice in the model", jc->name);
	if (jc->col->hi <= jc->col->lo)
		return cg_err_set(err, CG_ERR_POLICY, "column '%s' has empty bounds in the policy", jc->name);
	mc = &p->cols[p->ncols++];
	mc->jc = *jc;
	mc->lo = jc->col->lo;
	mc->hi = jc->col->hi;
	mc->tlo = (double)mc->lo;
	mc->thi = (double)mc->hi;
	if (p->spec->kind == MODEL_KMEANS && p->spec->log1p) {
		if (mc->lo < 0)
			return cg_err_set(err, CG_ERR_ARG, "column '%s' has negative bounds: no log1p", jc->name);
		mc->tlo = log1p((double)mc->lo);
		mc->thi = log1p((double)mc->hi);
	}
	return 0;
}

int
model_plan_make(const struct model_spec *spec, const struct join *j, struct model_plan **out, struct cg_err *err)
{
	struct join_col cols[JOIN_COLS_MAX];
	struct model_plan *p;
	size_t ncols, nqi, i;
	int pbit, r;

	*out = NULL;
	if ((pbit = policy_purpose_bit(spec->pol, spec->purpose)) < 0)
		return cg_err_set(err, CG_ERR_POLICY, "purpose '%.64s' is not in the policy", spec->purpose);
	if (spec->ncols == 0 || spec->ncols > MODEL_COLS_MAX)
		return cg_err_set(err, CG_ERR_ARG, "a model needs 1 to %d columns", MODEL_COLS_MAX);
	if (spec->kind == MODEL_RIDGE && spec->y == NULL)
		return cg_err_set(err, CG_ERR_ARG, "a ridge model needs a target column (--y)");
	if (spec->kind == MODEL_KMEANS && (spec->k < 1 || spec->k > MODEL_K_MAX || spec->steps < 1 ||
	    spec->steps > MODEL_STEPS_MAX))
		return cg_err_set(err, CG_ERR_ARG, "k-means needs k in 1..%d and steps in 1..%d", MODEL_K_MAX,
		    MODEL_STEPS_MAX);
	if (spec->kind != MODEL_RIDGE && spec->kind != MODEL_KMEANS)
		return cg_err_set(err, CG_ERR_ARG, "unknown model");
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	p->spec = spec;
	p->threshold = spec->pol->privacy.threshold;
	join_columns(j, pbit, cols, &ncols, &nqi);
	for (i = 0; i < spec->ncols; i++)
		if ((r = model_col_add(p, cols, ncols, spec->cols[i], err)) != 0)
			goto fail;
	if (spec->kind == MODEL_RIDGE) {
		if ((r = model_col_add(p, cols, ncols, spec->y, err)) != 0)
			goto fail;
		p->nterms = p->ncols + 1;
		p->nent = p->nterms * (p->nterms + 1) / 2;
		if ((p->exact = calloc(p->nent, sizeof(*p->exact))) == NULL ||
		    (p->noisy = calloc(p->nent, sizeof(*p->noisy))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto fail;
		}
	} else {
		/* the largest G with G^d <= MODEL_GRID_CELLS */
		for (p->grid = 1;; p->grid++) {
			size_t c = 1, t;
			for (t = 0; t < p->ncols; t++)
				c *= p->grid + 1;
			if (c > MODEL_GRID_CELLS)
				break;
		}
		if (p->grid < 2) {
			r = cg_err_set(err, CG_ERR_ARG, "k-means over %zu columns: at most 9 (the initial grid needs 2 "
			    "cells a column)", p->ncols);
			goto fail;
		}
	}
	*out = p;
	return 0;
fail:
	model_plan_free(p);
	return r;
}

int64_t
model_coord(int64_t x, int64_t lo, int64_t hi, int log1p_)
{
	int64_t z;

	x = x < lo ? lo : x > hi ? hi : x;
	if (log1p_) {
		double tlo = log1p((double)lo), u = (log1p((double)x) - tlo) / (log1p((double)hi) - tlo);
		z = (int64_t)llround(u * MODEL_FIX) - MODEL_HALF;
	} else {
		/* exact integer rounding: (x - lo) F / (hi - lo), to nearest */
		unsigned __int128 span = (unsigned __int128)((__int128)hi - lo);
		unsigned __int128 v = (unsigned __int128)((__int128)x - lo) * MODEL_FIX + span / 2;
		z = (int64_t)(v / span) - MODEL_HALF;
	}
	return z < -MODEL_HALF ? -MODEL_HALF : z > MODEL_HALF ? MODEL_HALF : z;
}

/* The fixed-point coordinate of a column's value (model.h); 0 and no value if absent. */
static int
model_fix(const struct model_plan *p, const struct model_col *mc, Crossgate__RecordPayload *const pl[2],
    int64_t *z)
{
	const struct policy_column *c;
	const Crossgate__Field *f = join_col_field(&mc->jc, pl, &c);

	if (f == NULL || f->value_case != CROSSGATE__FIELD__VALUE_INT_VALUE)
		return -1;
	*z = model_coord(f->int_value, mc->lo, mc->hi, p->spec->kind == MODEL_KMEANS && p->spec->log1p);
	return 0;
}

int
model_plan_add(struct model_plan *p, Crossgate__RecordPayload *const pl[2], struct cg_err *err)
{
	int64_t z[MODEL_TERMS_MAX];
	size_t i, a, b, e;

	for (i = 0; i < p->ncols; i++)
		if (model_fix(p, &p->cols[i], pl, &z[i + (p->spec->kind == MODEL_RIDGE)]) != 0)
			return 0;     /* lacks a column: contributes nothing */
	if (p->spec->kind == MODEL_RIDGE) {
		z[0] = MODEL_HALF;
		/* each product is at most 2^22 and a sum of 2^40 subjects stays within int64: no overflow to test */
		for (a = 0, e = 0; a < p->nterms; a++)
			for (b = a; b < p->nterms; b++, e++)
				p->exact[e] += z[a] * z[b];
		return 0;
	}
	if (p->npts == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 4096;
		int16_t *np = malloc(ncap * p->ncols * sizeof(*np));
		if (np == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		if (p->pts != NULL) {
			memcpy(np, p->pts, p->npts * p->ncols * sizeof(*np));
			sodium_memzero(p->pts, p->cap * p->ncols * sizeof(*np));
			free(p->pts);
		}
		p->pts = np;
		p->cap = ncap;
	}
	for (i = 0; i < p->ncols; i++)
		p->pts[p->npts * p->ncols + i] = (int16_t)z[i];
	p->npts++;
	return 0;
}

size_t
model_plan_entries(const struct model_plan *p)
{
	return p->nent;
}

int64_t
model_plan_exact(const struct model_plan *p, size_t i)
{
	return i < p->nent ? p->exact[i] : 0;
}

int64_t
model_plan_noisy(const struct model_plan *p, size_t i)
{
	return i < p->nent && p->released ? p->noisy[i] : 0;
}

double
model_plan_sensitivity(const struct model_plan *p)
{
	return p->sens;
}

double
model_plan_noise_sd(const struct model_plan *p)
{
	return p->spec->kind == MODEL_RIDGE ? p->sd : p->step_sd;
}

int
model_plan_cost(struct model_plan *p, int64_t *rho_nano, struct cg_err *err)
{
	const struct model_spec *sp = p->spec;
	uint64_t d2;

	*rho_nano = sp->rho_nano > 0 ? sp->rho_nano : sp->pol->privacy.query_rho_nano;
	p->rho_nano = *rho_nano;
	if (sp->kind == MODEL_RIDGE) {
		/* Delta_2^2 = m F^4 / 16; variance Delta_2^2 / (2 rho) = m F^4 1e9 / (32 rho_nano) */
		d2 = (uint64_t)p->nent * MODEL_FIX * MODEL_FIX / 16 * MODEL_FIX * MODEL_FIX;
		p->sens = sqrt((double)p->nent) * MODEL_FIX * MODEL_FIX / 4;
		if (query_noise_param((unsigned __int128)d2 * BUDGET_NANO, (unsigned __int128)2 * (uint64_t)*rho_nano,
		    &p->num, &p->den) != 0 || (double)p->num / (double)p->den > 4e18)
			return cg_err_set(err, CG_ERR_LIMIT, "the noise of the ridge statistics would be too large: ask "
			    "for a larger rho");
		p->sd = sqrt((double)p->num / (double)p->den);
		return 0;
	}
	/*
	 * steps + 1 releases of rho / (steps + 1) each: the grid's counts
	 * (sensitivity 1: variance (steps + 1) 1e9 / (2 rho_nano)) and each
	 * step's (z_0, z) sums (Delta_2^2 = (d + 1) F^2 / 4).
	 */
	d2 = (uint64_t)(p->ncols + 1) * MODEL_FIX * MODEL_FIX / 4;
	p->sens = sqrt((double)d2);
	if (query_noise_param((unsigned __int128)(sp->steps + 1) * BUDGET_NANO, (unsigned __int128)2 * (uint64_t)*rho_nano,
	    &p->gnum, &p->gden) != 0 ||
	    query_noise_param((unsigned __int128)d2 * (sp->steps + 1) * BUDGET_NANO,
	    (unsigned __int128)2 * (uint64_t)*rho_nano, &p->num, &p->den) != 0 ||
	    (double)p->num / (double)p->den > 4e18)
		return cg_err_set(err, CG_ERR_LIMIT, "the noise of the k-means statistics would be too large: ask for a "
		    "larger rho or fewer steps");
	p->grid_sd = sqrt((double)p->gnum / (double)p->gden);
	p->step_sd = sqrt((double)p->num / (double)p->den);
	return 0;
}

static int
model_noisy(uint64_t num, uint64_t den, int64_t exact, int64_t *out, struct cg_err *err)
{
	int64_t z;
	int r;

	if ((r = noise_gaussian(num, den, &z)) != 0)
		return cg_err_set(err, r, "cannot draw the noise");
	if (__builtin_add_overflow(exact, z, out))
		*out = z > 0 ? INT64_MAX : INT64_MIN;
	return 0;
}

/* ---- k-means ---- */

/* A public, deterministic generator for the initial centres' seeding (not for noise): splitmix64. */
static uint64_t
model_rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
model_unif(uint64_t *s)
{
	return (double)(model_rng(s) >> 11) / 9007199254740992.0;
}

static size_t
model_nearest(const double (*c)[MODEL_COLS_MAX], size_t k, const double *x, size_t d, double *dist)
{
	size_t i, t, best = 0;
	double bd = INFINITY;

	for (i = 0; i < k; i++) {
		double s = 0;
		for (t = 0; t < d; t++)
			s += (x[t] - c[i][t]) * (x[t] - c[i][t]);
		if (s < bd) {
			bd = s;
			best = i;
		}
	}
	if (dist != NULL)
		*dist = bd;
	return best;
}

/*
 * Weighted k-means++ and Lloyd over the kept grid cells (post-processing of
 * the noisy grid): the best of MODEL_INIT_RESTARTS seeded runs.
 */
static void
model_init_centres(struct model_plan *p, const double *cell, const double *w, size_t ncell)
{
	const size_t k = p->spec->k, d = p->ncols;
	double best = INFINITY, c[MODEL_K_MAX][MODEL_COLS_MAX], sum[MODEL_K_MAX][MODEL_COLS_MAX + 1];
	uint64_t s = p->spec->seed;
	size_t run, i, t, j, it;

	for (run = 0; run < MODEL_INIT_RESTARTS; run++) {
		double inertia = 0, total = 0, dist;

		for (j = 0; j < k; j++) {
			/* the first centre by weight, the others by weight x squared distance (k-means++) */
			double tot = 0, u;
			for (i = 0; i < ncell; i++)
				tot += j == 0 ? w[i] : (model_nearest((const double (*)[MODEL_COLS_MAX])c, j, &cell[i * d], d,
				    &dist), w[i] * dist);
			u = model_unif(&s) * tot;
			for (i = 0; i + 1 < ncell; i++) {
				double wi = j == 0 ? w[i] : (model_nearest((const double (*)[MODEL_COLS_MAX])c, j, &cell[i * d],
				    d, &dist), w[i] * dist);
				if (u < wi)
					break;
				u -= wi;
			}
			for (t = 0; t < d; t++)
				c[j][t] = ncell ? cell[i * d + t] : (model_unif(&s) - 0.5) * MODEL_FIX;
		}
		for (it = 0; it < 100; it++) {
			memset(sum, 0, sizeof(sum));
			for (i = 0; i < ncell; i++) {
				j = model_nearest((const double (*)[MODEL_COLS_MAX])c, k, &cell[i * d], d, NULL);
				sum[j][d] += w[i];
				for (t = 0; t < d; t++)
					sum[j][t] += w[i] * cell[i * d + t];
			}
			for (j = 0; j < k; j++)
				if (sum[j][d] > 0)
					for (t = 0; t < d; t++)
						c[j][t] = sum[j][t] / sum[j][d];
		}
		for (i = 0; i < ncell; i++) {
			model_nearest((const double (*)[MODEL_COLS_MAX])c, k, &cell[i * d], d, &dist);
			inertia += w[i] * dist;
			total += w[i];
		}
		(void)total;
		if (inertia < best) {
			best = inertia;
			memcpy(p->centre, c, sizeof(c));
		}
	}
}

static int
model_kmeans_release(struct model_plan *p, struct cg_err *err)
{
	const size_t k = p->spec->k, d = p->ncols, g = p->grid;
	size_t ncell = 1, i, t, j, step, kept = 0;
	int64_t *cnt = NULL, acc[MODEL_K_MAX][MODEL_COLS_MAX + 1];
	double *cell = NULL, *w = NULL, x[MODEL_COLS_MAX];
	int r = 0;

	for (t = 0; t < d; t++)
		ncell *= g;
	if ((cnt = calloc(ncell, sizeof(*cnt))) == NULL || (cell = malloc(ncell * d * sizeof(*cell))) == NULL ||
	    (w = malloc(ncell * sizeof(*w))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* 1. the grid: cell of a coordinate z in [-F/2, F/2] is floor((z + F/2) g / (F + 1)) */
	for (i = 0; i < p->npts; i++) {
		size_t c = 0;
		for (t = 0; t < d; t++)
			c = c * g + (size_t)(((int64_t)p->pts[i * d + t] + MODEL_HALF) * (int64_t)g / (MODEL_FIX + 1));
		cnt[c]++;
	}
	for (i = 0; i < ncell; i++) {
		int64_t v = 0;
		size_t rest = i;

		if ((r = model_noisy(p->gnum, p->gden, cnt[i], &v, err)) != 0)
			goto out;
		if ((double)v < 3 * p->grid_sd)
			continue;
		for (t = d; t-- > 0;) {
			cell[kept * d + t] = ((double)(rest % g) + 0.5) * (MODEL_FIX + 1) / (double)g - MODEL_HALF;
			rest /= g;
		}
		w[kept++] = (double)v;
	}
	sodium_memzero(cnt, ncell * sizeof(*cnt));
	model_init_centres(p, cell, w, kept);
	/* 2. DPLloyd */
	for (step = 0; step < p->spec->steps; step++) {
		memset(acc, 0, sizeof(acc));
		for (i = 0; i < p->npts; i++) {
			for (t = 0; t < d; t++)
				x[t] = p->pts[i * d + t];
			j = model_nearest((const double (*)[MODEL_COLS_MAX])p->centre, k, x, d, NULL);
			acc[j][0] += MODEL_HALF;
			for (t = 0; t < d; t++)
				acc[j][t + 1] += p->pts[i * d + t];
		}
		for (j = 0; j < k; j++) {
			int64_t v[MODEL_COLS_MAX + 1];
			for (t = 0; t <= d; t++)
				if ((r = model_noisy(p->num, p->den, acc[j][t], &v[t], err)) != 0)
					goto out;
			p->count[j] = (double)v[0] / MODEL_HALF;
			/* a centre whose noisy count is below the threshold keeps its place: its sums are mostly noise */
			if (p->count[j] >= (double)p->threshold)
				for (t = 0; t < d; t++)
					p->centre[j][t] = (double)v[t + 1] / (double)v[0] * MODEL_HALF;
		}
	}
	sodium_memzero(acc, sizeof(acc));
out:
	free(cnt);
	free(cell);
	free(w);
	return r;
}

int
model_plan_release(struct model_plan *p, struct cg_err *err)
{
	size_t e;
	int r;

	p->released = 0;
	if (p->spec->kind == MODEL_KMEANS) {
		if ((r = model_kmeans_release(p, err)) != 0)
			return r;
	} else {
		for (e = 0; e < p->nent; e++)
			if ((r = model_noisy(p->num, p->den, p->exact[e], &p->noisy[e], err)) != 0)
				return r;
	}
	p->released = 1;
	return 0;
}

int
model_plan_cluster(const struct model_plan *p, size_t c, double *count, double *centre)
{
	size_t t;

	if (!p->released || p->spec->kind != MODEL_KMEANS || c >= p->spec->k || p->count[c] < (double)p->threshold)
		return 0;
	*count = p->count[c];
	for (t = 0; t < p->ncols; t++) {
		const struct model_col *mc = &p->cols[t];
		double u = (p->centre[c][t] + MODEL_HALF) / MODEL_FIX, v = mc->tlo + u * (mc->thi - mc->tlo);
		centre[t] = p->spec->log1p ? expm1(v) : v;
	}
	return 1;
}

/* ---- files ---- */

static const char *
model_term(const struct model_plan *p, size_t a)
{
	return a == 0 ? "1" : p->cols[a - 1].jc.name;
}

static void
model_csv_cell(FILE *f, const char *s)
{
	char buf[2 * 170 + 3];
	size_t n = strlen(s);

	if (n > 170)
		n = 170;
	fwrite(buf, 1, csv_write(buf, sizeof(buf), s, n), f);
}

static int
model_write_csv(const struct model_plan *p, const char *path, struct cg_err *err)
{
	struct outfile of;
	size_t a, b, e, t;
	double cnt, centre[MODEL_COLS_MAX];
	int r;

	if ((r = outfile_open(&of, path, 0640, err)) != 0)
		return r;
	if (p->spec->kind == MODEL_RIDGE) {
		fputs("row,col,value\n", of.f);
		for (a = 0, e = 0; a < p->nterms; a++)
			for (b = a; b < p->nterms; b++, e++) {
				model_csv_cell(of.f, model_term(p, a));
				fputc(',', of.f);
				model_csv_cell(of.f, model_term(p, b));
				fprintf(of.f, ",%lld\n", (long long)p->noisy[e]);
			}
	} else {
		fputs("cluster,count", of.f);
		for (t = 0; t < p->ncols; t++) {
			fputc(',', of.f);
			model_csv_cell(of.f, p->cols[t].jc.name);
		}
		fputc('\n', of.f);
		for (a = 0; a < p->spec->k; a++) {
			if (!model_plan_cluster(p, a, &cnt, centre))
				continue;
			fprintf(of.f, "%zu,%.0f", a + 1, cnt);
			for (t = 0; t < p->ncols; t++)
				fprintf(of.f, ",%.6g", centre[t]);
			fputc('\n', of.f);
		}
	}
	return outfile_commit(&of, err);
}

int
model_plan_write(const struct model_plan *p, const struct join *j, const char *path, const char *dataset,
    const struct model_stats *stats, struct cg_err *err)
{
	const struct model_spec *sp = p->spec;
	json_t *m = json_object(), *cols = json_array(), *bounds = json_object();
	char num[64];
	size_t i;
	int r;

	if ((r = model_write_csv(p, path, err)) != 0)
		goto out;
	if (m == NULL || cols == NULL || bounds == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	query_meta_base(m, sp->pol, stats->query_id, sp->purpose, sp->analyst != NULL ? sp->analyst->name : "analyst",
	    dataset, j, "discrete-gaussian", stats->charged_nano, stats->remaining_nano, stats->audit_index);
	for (i = 0; i < p->ncols; i++) {
		if (sp->kind != MODEL_RIDGE || i + 1 < p->ncols)
			json_array_append_new(cols, json_string(p->cols[i].jc.name));
		json_object_set_new(bounds, p->cols[i].jc.name, json_pack("[I, I]", (json_int_t)p->cols[i].lo,
		    (json_int_t)p->cols[i].hi));
	}
	json_object_set_new(m, "model", json_string(sp->kind == MODEL_RIDGE ? "ridge" : "kmeans"));
	json_object_set_new(m, "columns", cols);
	cols = NULL;
	json_object_set_new(m, "bounds", bounds);
	bounds = NULL;
	json_object_set_new(m, "fixed_point", json_integer(MODEL_FIX));
	json_object_set_new(m, "sensitivity_l2", json_real(p->sens));
	json_object_set_new(m, "noise_sd", json_real(model_plan_noise_sd(p)));
	json_object_set_new(m, "threshold", json_integer(p->threshold));
	if (sp->kind == MODEL_RIDGE) {
		json_object_set_new(m, "target", json_string(p->cols[p->ncols - 1].jc.name));
		json_object_set_new(m, "released", json_string("upper triangle of sum z z^T, z = (F/2, round((x - lo) F / "
		    "(hi - lo)) - F/2 for each column then the target), row-major"));
	} else {
		json_object_set_new(m, "k", json_integer(sp->k));
		json_object_set_new(m, "steps", json_integer(sp->steps));
		json_object_set_new(m, "log1p", json_boolean(sp->log1p));
		json_object_set_new(m, "grid", json_integer((json_int_t)p->grid));
		json_object_set_new(m, "grid_noise_sd", json_real(p->grid_sd));
		json_object_set_new(m, "init_seed", json_integer((json_int_t)sp->seed));
		json_object_set_new(m, "count_noise_sd", json_real(p->step_sd / MODEL_HALF));
		snprintf(num, sizeof(num), "%.9f", (double)p->rho_nano / BUDGET_NANO / (sp->steps + 1));
		json_object_set_new(m, "rho_per_release", json_string(num));
		json_object_set_new(m, "clusters_released", json_integer((json_int_t)stats->released));
	}
	r = query_meta_write(m, path, err);
out:
	json_decref(m);
	json_decref(cols);
	json_decref(bounds);
	return r;
}

/* ---- the run ---- */

static int
model_collect(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err)
{
	(void)ref;
	return model_plan_add(ctx, pl, err);
}

static int
model_log(struct audit *a, const struct model_spec *sp, const char *outcome, const char *reason,
    const unsigned char *qid, const struct model_stats *stats, uint64_t *seq, struct cg_err *err)
{
	static const char *const names[2] = { "released", "rho_nano" };
	uint64_t vals[2] = { stats->released, (uint64_t)stats->charged_nano };

	return query_audit_event(a, sp->pol, sp->analyst != NULL ? sp->analyst->name : NULL,
	    sp->kind == MODEL_RIDGE ? "model-ridge" : "model-kmeans", sp->purpose, outcome, reason, qid, names, vals, 2,
	    seq, err);
}

int
model_run(struct store *st, struct audit *a, const struct model_spec *spec, struct model_stats *stats,
    struct cg_err *err)
{
	const struct policy *pol = spec->pol;
	struct model_plan *p = NULL;
	struct join j;
	unsigned char qid[16];
	char dataset[80];
	uint64_t no_consent = 0;
	double t0;
	size_t c;
	int pbit, r;

	memset(stats, 0, sizeof(*stats));
	memset(&j, 0, sizeof(j));
	randombytes_buf(qid, sizeof(qid));
	sodium_bin2hex(stats->query_id, sizeof(stats->query_id), qid, sizeof(qid));
	if ((pbit = policy_purpose_bit(pol, spec->purpose)) < 0)
		return cg_err_set(err, CG_ERR_POLICY, "purpose '%.64s' is not in the policy", spec->purpose);
	if (spec->analyst == NULL || !policy_principal_may_export(pol, spec->analyst, spec->purpose)) {
		if ((r = model_log(a, spec, "refused", "the analyst does not hold the purpose", qid, stats, NULL, err)) != 0)
			return r;
		return cg_err_set(err, CG_ERR_POLICY, "analyst '%s' may not query for purpose '%s' (its policy purposes)",
		    spec->analyst ? spec->analyst->name : "?", spec->purpose);
	}
	if ((r = join_run_open(st, pol, spec->storage, spec->left, spec->right, &j, err)) != 0)
		goto out;
	join_dataset(&j, dataset, sizeof(dataset));
	/* every refusal that does not depend on the data, before the charge */
	if ((r = model_plan_make(spec, &j, &p, err)) != 0 || (r = model_plan_cost(p, &stats->charged_nano, err)) != 0)
		goto out;
	if ((r = budget_charge(st, a, spec->analyst->name, dataset, stats->charged_nano,
	    policy_principal_budget(pol, spec->analyst), spec->purpose, &stats->remaining_nano, err)) != 0)
		goto out;
	t0 = query_clock();
	if ((r = join_each(st, spec->storage, &j, pbit, JOIN_BOTH, model_collect, p, &no_consent, err)) != 0)
		goto out;
	stats->collect_seconds = query_clock() - t0;
	t0 = query_clock();
	if ((r = model_plan_release(p, err)) != 0)
		goto out;
	if (spec->kind == MODEL_RIDGE)
		stats->released = p->nent;
	else
		for (c = 0; c < spec->k; c++)
			stats->released += p->count[c] >= (double)p->threshold;
	if ((r = model_log(a, spec, "ok", NULL, qid, stats, &stats->audit_index, err)) != 0 ||
	    (r = model_plan_write(p, &j, spec->out_path, dataset, stats, err)) != 0)
		goto out;
	stats->release_seconds = query_clock() - t0;
out:
	model_plan_free(p);
	join_free(&j);
	return r;
}
