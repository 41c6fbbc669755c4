/* dpmodel.c - see dpmodel.h */
#include "analytics/dpmodel.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/prng.h"
#include "base/csvfile.h"

#define DPMODEL_STREAM_BOOT 0x6470626f6f74ull   /* "dpboot" */
#define DPMODEL_META_MAX (64 * 1024)
#define DPMODEL_CSV_MAX (1024 * 1024)
#define DPMODEL_COUNT_MAX 1e12      /* a cluster's noisy count: far above any population, far below overflow */

/* ---- small linear algebra (p <= DPMODEL_P_MAX) ---- */

/* Cholesky a = l l^T; -1 if a is not positive definite. */
static int
dpmodel_chol(const double a[DPMODEL_P_MAX][DPMODEL_P_MAX], size_t p, double l[DPMODEL_P_MAX][DPMODEL_P_MAX])
{
	size_t i, j, k;

	memset(l, 0, sizeof(double) * DPMODEL_P_MAX * DPMODEL_P_MAX);
	for (j = 0; j < p; j++) {
		double s = a[j][j];
		for (k = 0; k < j; k++)
			s -= l[j][k] * l[j][k];
		if (!(s > 0))
			return -1;
		l[j][j] = sqrt(s);
		for (i = j + 1; i < p; i++) {
			double t = a[i][j];
			for (k = 0; k < j; k++)
				t -= l[i][k] * l[j][k];
			l[i][j] = t / l[j][j];
		}
	}
	return 0;
}

/* Solve l l^T x = b. */
static void
dpmodel_chol_solve(const double l[DPMODEL_P_MAX][DPMODEL_P_MAX], size_t p, const double *b, double *x)
{
	double y[DPMODEL_P_MAX];
	size_t i, k;

	for (i = 0; i < p; i++) {
		y[i] = b[i];
		for (k = 0; k < i; k++)
			y[i] -= l[i][k] * y[k];
		y[i] /= l[i][i];
	}
	for (i = p; i-- > 0;) {
		x[i] = y[i];
		for (k = i + 1; k < p; k++)
			x[i] -= l[k][i] * x[k];
		x[i] /= l[i][i];
	}
}

/* The smallest eigenvalue of a symmetric matrix (cyclic Jacobi). */
static double
dpmodel_eig_min(const double a[DPMODEL_P_MAX][DPMODEL_P_MAX], size_t p)
{
	double m[DPMODEL_P_MAX][DPMODEL_P_MAX], mn;
	size_t i, j, k, sweep;

	memcpy(m, a, sizeof(m));
	for (sweep = 0; sweep < 100; sweep++) {
		double off = 0;
		for (i = 0; i < p; i++)
			for (j = i + 1; j < p; j++)
				off += m[i][j] * m[i][j];
		if (off < 1e-24)
			break;
		for (i = 0; i < p; i++)
			for (j = i + 1; j < p; j++) {
				double th, t, c, s;
				if (fabs(m[i][j]) < 1e-300)
					continue;
				th = (m[j][j] - m[i][i]) / (2 * m[i][j]);
				t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
				c = 1 / sqrt(t * t + 1);
				s = t * c;
				for (k = 0; k < p; k++) {
					double x = m[k][i], y = m[k][j];
					m[k][i] = c * x - s * y;
					m[k][j] = s * x + c * y;
				}
				for (k = 0; k < p; k++) {
					double x = m[i][k], y = m[j][k];
					m[i][k] = c * x - s * y;
					m[j][k] = s * x + c * y;
				}
			}
	}
	mn = m[0][0];
	for (i = 1; i < p; i++)
		if (m[i][i] < mn)
			mn = m[i][i];
	return mn;
}

static double
dpmodel_normal(struct prng *r)
{
	double u = prng_unif(r), v = prng_unif(r);

	return sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v);
}

/* ---- the ridge estimator on a (noisy) S in scaled units ---- */

struct dpmodel_est {
	double n, mean[DPMODEL_P_MAX + 1];
	double cxx[DPMODEL_P_MAX][DPMODEL_P_MAX], cxy[DPMODEL_P_MAX], cyy;
	double b[DPMODEL_P_MAX], a;          /* scaled coefficients and intercept */
	double r2;                           /* explained share of C_yy */
	double lambda, s2;                   /* ridge term, residual variance (scaled) */
};

static int
dpmodel_estimate(const double s[DPMODEL_TERMS_MAX][DPMODEL_TERMS_MAX], size_t p, double sd, struct dpmodel_est *e)
{
	double l[DPMODEL_P_MAX][DPMODEL_P_MAX], a[DPMODEL_P_MAX][DPMODEL_P_MAX], fit = 0;
	size_t i, j, y = p + 1;
	unsigned tries;

	e->n = 4 * s[0][0];
	if (!(e->n >= 2.0 * (double)(p + 1)) || !isfinite(e->n))
		return -1;
	for (i = 1; i <= y; i++)
		e->mean[i - 1] = s[0][i] / (2 * s[0][0]);
	for (i = 0; i < p; i++) {
		for (j = 0; j < p; j++)
			e->cxx[i][j] = s[i + 1][j + 1] - s[0][i + 1] * s[0][j + 1] / s[0][0];
		e->cxy[i] = s[i + 1][y] - s[0][i + 1] * s[0][y] / s[0][0];
	}
	e->cyy = s[y][y] - s[0][y] * s[0][y] / s[0][0];
	if (!isfinite(e->cyy))
		return -1;
	for (i = 0; i < p; i++) {
		if (!isfinite(e->cxy[i]))
			return -1;
		for (j = 0; j < p; j++)
			if (!isfinite(e->cxx[i][j]))
				return -1;
	}
	/* AdaSSP's lambda, with lambda_min read off the noisy matrix (post-processing) */
	e->lambda = 3 * sqrt((double)p) * sd - dpmodel_eig_min(e->cxx, p);
	if (e->lambda < 0)
		e->lambda = 0;
	for (tries = 0;; tries++) {
		memcpy(a, e->cxx, sizeof(a));
		for (i = 0; i < p; i++)
			a[i][i] += e->lambda;
		if (dpmodel_chol(a, p, l) == 0)
			break;
		/* the noise made it indefinite beyond the bound: more ridge (a release no ridge can fix is refused) */
		if (tries == 2000 || !isfinite(e->lambda))
			return -1;
		e->lambda = e->lambda > 0 ? e->lambda * 2 : sd > 0 ? sd : 1e-9;
	}
	dpmodel_chol_solve(l, p, e->cxy, e->b);
	e->a = e->mean[p];
	for (i = 0; i < p; i++) {
		e->a -= e->b[i] * e->mean[i];
		fit += e->b[i] * e->cxy[i];
	}
	e->r2 = e->cyy > 0 ? fmin(1, fmax(0, fit / e->cyy)) : 0;
	e->s2 = (e->cyy - fit) / (e->n - (double)p - 1);
	if (!(e->s2 > 0))
		e->s2 = 0;
	return 0;
}

/* Back to the columns' units: coef_j = b_j w_y / w_j; the intercept from the middles of the bounds. */
static void
dpmodel_unscale(const struct dpmodel_ridge_release *r, const struct dpmodel_est *e, double *coef, double *icpt)
{
	size_t p = r->p, j;
	double wy = r->hi[p] - r->lo[p];

	*icpt = (r->lo[p] + r->hi[p]) / 2 + wy * e->a;
	for (j = 0; j < p; j++) {
		coef[j] = e->b[j] * wy / (r->hi[j] - r->lo[j]);
		*icpt -= coef[j] * (r->lo[j] + r->hi[j]) / 2;
	}
}

static int
dpmodel_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
dpmodel_quantile(const double *v, size_t n, double q)
{
	double h = q * (double)(n - 1), f = floor(h);
	size_t i = (size_t)f;

	return i + 1 < n ? v[i] + (h - f) * (v[i + 1] - v[i]) : v[n - 1];
}

/* One bootstrap replicate's S*: a fresh sample under the fitted model, then fresh DP noise. */
static void
dpmodel_replicate(const struct dpmodel_est *e, const double l[DPMODEL_P_MAX][DPMODEL_P_MAX], size_t p,
    double sd, struct prng *rg, double s[DPMODEL_TERMS_MAX][DPMODEL_TERMS_MAX])
{
	double g[DPMODEL_P_MAX], cxy[DPMODEL_P_MAX], sig = sqrt(e->s2), cyy = 0;
	size_t i, j, y = p + 1;

	for (i = 0; i < p; i++)
		g[i] = dpmodel_normal(rg);
	for (i = 0; i < p; i++) {
		cxy[i] = 0;
		for (j = 0; j < p; j++)
			cxy[i] += e->cxx[i][j] * e->b[j];
		for (j = 0; j <= i; j++)
			cxy[i] += sig * l[i][j] * g[j];
		cyy += e->b[i] * cxy[i];
	}
	cyy += e->s2 * (e->n - (double)p - 1);
	s[0][0] = e->n / 4;
	for (i = 1; i <= y; i++)
		s[0][i] = s[i][0] = e->n * e->mean[i - 1] / 2;
	for (i = 0; i < p; i++) {
		for (j = 0; j < p; j++)
			s[i + 1][j + 1] = e->cxx[i][j] + e->n * e->mean[i] * e->mean[j];
		s[i + 1][y] = s[y][i + 1] = cxy[i] + e->n * e->mean[i] * e->mean[p];
	}
	s[y][y] = cyy + e->n * e->mean[p] * e->mean[p];
	/* fresh noise on the upper triangle, mirrored: the release is symmetric */
	for (i = 0; i <= y; i++)
		for (j = i; j <= y; j++) {
			s[i][j] += sd * dpmodel_normal(rg);
			s[j][i] = s[i][j];
		}
}

int
dpmodel_ridge_fit(const struct dpmodel_ridge_release *r, unsigned bootstrap, uint64_t seed, int include_noise,
    struct dpmodel_ridge_fit *out, struct cg_err *err)
{
	struct dpmodel_est e, eb;
	double l[DPMODEL_P_MAX][DPMODEL_P_MAX], cx[DPMODEL_P_MAX][DPMODEL_P_MAX], s[DPMODEL_TERMS_MAX][DPMODEL_TERMS_MAX];
	double *rep = NULL, c[DPMODEL_P_MAX], icpt, wy;
	size_t p = r->p, i, j, b;
	struct prng rg;
	int pass, rc = 0;

	memset(out, 0, sizeof(*out));
	if (p < 1 || p > DPMODEL_P_MAX || bootstrap > DPMODEL_BOOTSTRAP_MAX)
		return cg_err_set(err, CG_ERR_ARG, "ridge: 1 to %d features and at most %d bootstrap replicates",
		    DPMODEL_P_MAX, DPMODEL_BOOTSTRAP_MAX);
	if (dpmodel_estimate(r->s, p, r->noise_sd, &e) != 0)
		return cg_err_set(err, CG_ERR_ARG, "ridge: the release cannot support a fit of %zu features (its noisy "
		    "count of subjects is too small, or its statistics are out of range)", p);
	out->p = p;
	out->n = e.n;
	out->lambda = e.lambda;
	out->rho = r->rho;
	out->bootstrap = bootstrap;
	wy = r->hi[p] - r->lo[p];
	out->resid_sd = sqrt(e.s2) * wy;
	out->r2 = e.r2;
	dpmodel_unscale(r, &e, out->coef, &out->intercept);
	if (bootstrap == 0)
		return 0;
	/* the sampling part draws C_xy around C_xx b with covariance s^2 C_xx: its Cholesky factor */
	memcpy(cx, e.cxx, sizeof(cx));
	for (i = 0; i < p; i++)
		cx[i][i] += e.lambda;
	/* the estimate's own system factored with this lambda: it is positive definite */
	if (dpmodel_chol(cx, p, l) != 0)
		return cg_err_set(err, CG_ERR_INTERNAL, "ridge: the fitted system is not positive definite");
	if ((rep = malloc((size_t)bootstrap * p * sizeof(*rep))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	/* pass 0: noise and sampling (the interval); pass 1: sampling only (the noise's share) */
	for (pass = 0; pass < 2; pass++) {
		double var[DPMODEL_P_MAX] = { 0 };

		prng_seed(&rg, seed, DPMODEL_STREAM_BOOT + (uint64_t)pass);
		for (b = 0; b < bootstrap; b++) {
			dpmodel_replicate(&e, l, p, pass == 0 && include_noise ? r->noise_sd : 0, &rg, s);
			if (dpmodel_estimate(s, p, r->noise_sd, &eb) != 0) {
				/* a replicate whose noisy n collapsed: as far off as it gets, kept (never dropped) */
				memcpy(&eb, &e, sizeof(eb));
				for (i = 0; i < p; i++)
					eb.b[i] = 0;
			}
			dpmodel_unscale(r, &eb, c, &icpt);
			for (i = 0; i < p; i++)
				rep[i * bootstrap + b] = c[i];
		}
		for (i = 0; i < p; i++) {
			double *v = &rep[i * bootstrap], mu = 0;
			for (b = 0; b < bootstrap; b++)
				mu += v[b];
			mu /= bootstrap;
			for (b = 0; b < bootstrap; b++)
				var[i] += (v[b] - mu) * (v[b] - mu);
			var[i] /= bootstrap > 1 ? bootstrap - 1 : 1;
			if (pass == 0) {
				qsort(v, bootstrap, sizeof(*v), dpmodel_cmp);
				out->sd[i] = sqrt(var[i]);
				out->lo95[i] = 2 * out->coef[i] - dpmodel_quantile(v, bootstrap, 0.975);
				out->hi95[i] = 2 * out->coef[i] - dpmodel_quantile(v, bootstrap, 0.025);
			} else {
				double tot = out->sd[i] * out->sd[i];
				out->noise_share[i] = tot > 0 ? 1 - var[i] / tot : 0;
				if (out->noise_share[i] < 0)
					out->noise_share[i] = 0;
			}
		}
	}
	(void)j;
	free(rep);
	return rc;
}

/* ---- files ---- */

static int
dpmodel_meta(const char *csv_path, json_t **out, struct cg_err *err)
{
	char path[4200];
	json_error_t je;

	*out = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s.meta.json", csv_path) >= sizeof(path))
		return cg_err_set(err, CG_ERR_ARG, "%s: path too long", csv_path);
	if ((*out = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return cg_err_set(err, CG_ERR_FORMAT, "%s: %s (line %d)", path, je.text, je.line);
	}
	return 0;
}

static int
dpmodel_meta_mem(const char *name, const char *buf, size_t len, json_t **out, struct cg_err *err)
{
	json_error_t je;

	*out = NULL;
	if (len > DPMODEL_META_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "%s.meta.json: larger than %d bytes", name, DPMODEL_META_MAX);
	if ((*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je)) == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: %s (line %d)", name, je.text, je.line);
	}
	return 0;
}

/* A whole file of at most `max` bytes into a malloc'd buffer. */
static int
dpmodel_slurp(const char *path, size_t max, char **out, size_t *len, struct cg_err *err)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t n = 0, got;

	*out = NULL;
	*len = 0;
	if (f == NULL)
		return cg_err_set(err, CG_ERR_IO, "%s: cannot open", path);
	if ((b = malloc(max + 1)) == NULL) {
		fclose(f);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	while ((got = fread(b + n, 1, max + 1 - n, f)) > 0 && n + got <= max)
		n += got;
	if (got > 0 || ferror(f)) {
		free(b);
		fclose(f);
		return got > 0 ? cg_err_set(err, CG_ERR_LIMIT, "%s: larger than %zu bytes", path, max) :
		    cg_err_set(err, CG_ERR_IO, "%s: read error", path);
	}
	fclose(f);
	*out = b;
	*len = n;
	return 0;
}

/* Read a release's CSV and its .meta.json, then parse them with fn. */
static int
dpmodel_load(const char *path, int (*fn)(const char *, const char *, size_t, const char *, size_t, void *,
    struct cg_err *), void *out, struct cg_err *err)
{
	char mpath[4200], *csv = NULL, *meta = NULL;
	size_t clen, mlen;
	int r;

	if ((size_t)snprintf(mpath, sizeof(mpath), "%s.meta.json", path) >= sizeof(mpath))
		return cg_err_set(err, CG_ERR_ARG, "%s: path too long", path);
	if ((r = dpmodel_slurp(path, DPMODEL_CSV_MAX, &csv, &clen, err)) == 0 &&
	    (r = dpmodel_slurp(mpath, DPMODEL_META_MAX, &meta, &mlen, err)) == 0)
		r = fn(path, csv, clen, meta, mlen, out, err);
	free(csv);
	free(meta);
	return r;
}

static int
dpmodel_meta_num(const char *path, json_t *m, const char *key, double *out, struct cg_err *err)
{
	json_t *v = json_object_get(m, key);
	char *end;

	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		*out = strtod(json_string_value(v), &end);
		if (end != json_string_value(v) && *end == '\0' && isfinite(*out))
			return 0;
	}
	return cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: member \"%s\" must be a number", path, key);
}

int
dpmodel_release_rho(const char *path, double *rho, struct cg_err *err)
{
	json_t *m;
	int r;

	*rho = 0;
	if ((r = dpmodel_meta(path, &m, err)) != 0)
		return r;
	r = dpmodel_meta_num(path, m, "rho", rho, err);
	json_decref(m);
	return r;
}

/* The model's kind, columns (and bounds), noise and rho, common to both releases. */
static int
dpmodel_meta_common(const char *path, json_t *m, const char *kind, char names[][DPMODEL_NAME_MAX], size_t *n,
    double *rho, char *qid, struct cg_err *err)
{
	json_t *cols = json_object_get(m, "columns"), *v;
	const char *s;
	size_t i;

	if (!json_is_string(json_object_get(m, "model")) || strcmp(json_string_value(json_object_get(m, "model")),
	    kind) != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: not a %s release (member \"model\")", path, kind);
	if (!json_is_array(cols) || json_array_size(cols) < 1 || json_array_size(cols) > DPMODEL_P_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: member \"columns\" must list 1 to %d columns", path,
		    DPMODEL_P_MAX);
	json_array_foreach(cols, i, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) >= DPMODEL_NAME_MAX)
			return cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: column %zu is not a name", path, i);
		snprintf(names[i], DPMODEL_NAME_MAX, "%s", json_string_value(v));
	}
	*n = json_array_size(cols);
	s = json_string_value(json_object_get(m, "query_id"));
	snprintf(qid, 64, "%s", s != NULL ? s : "");
	return dpmodel_meta_num(path, m, "rho", rho, err);
}

static int
dpmodel_bounds(const char *path, json_t *m, const char *name, double *lo, double *hi, struct cg_err *err)
{
	json_t *b = json_object_get(json_object_get(m, "bounds"), name);

	if (!json_is_array(b) || json_array_size(b) != 2 || !json_is_number(json_array_get(b, 0)) ||
	    !json_is_number(json_array_get(b, 1)))
		return cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: no bounds [lo, hi] for '%s'", path, name);
	*lo = json_number_value(json_array_get(b, 0));
	*hi = json_number_value(json_array_get(b, 1));
	if (!(*hi > *lo))
		return cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: empty bounds for '%s'", path, name);
	return 0;
}

static int
dpmodel_term(const struct dpmodel_ridge_release *r, const char *name)
{
	size_t i;

	if (strcmp(name, "1") == 0)
		return 0;
	for (i = 0; i <= r->p; i++)
		if (strcmp(r->names[i], name) == 0)
			return (int)i + 1;
	return -1;
}

static int
dpmodel_ridge_parse_v(const char *name, const char *csv, size_t csv_len, const char *meta, size_t meta_len,
    void *out, struct cg_err *err)
{
	return dpmodel_ridge_parse(name, csv, csv_len, meta, meta_len, out, err);
}

int
dpmodel_ridge_load(const char *path, struct dpmodel_ridge_release *out, struct cg_err *err)
{
	memset(out, 0, sizeof(*out));
	return dpmodel_load(path, dpmodel_ridge_parse_v, out, err);
}

int
dpmodel_ridge_parse(const char *path, const char *csv, size_t csv_len, const char *meta, size_t meta_len,
    struct dpmodel_ridge_release *out, struct cg_err *err)
{
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	json_t *m = NULL, *t;
	int seen[DPMODEL_TERMS_MAX][DPMODEL_TERMS_MAX] = { { 0 } };
	double fix;
	size_t i, j, d;
	int r, a, b;

	memset(out, 0, sizeof(*out));
	if ((r = dpmodel_meta_mem(path, meta, meta_len, &m, err)) != 0)
		return r;
	if ((r = dpmodel_meta_common(path, m, "ridge", out->names, &out->p, &out->rho, out->query_id, err)) != 0 ||
	    (r = dpmodel_meta_num(path, m, "fixed_point", &fix, err)) != 0 ||
	    (r = dpmodel_meta_num(path, m, "noise_sd", &out->noise_sd, err)) != 0)
		goto out;
	t = json_object_get(m, "target");
	if (!json_is_string(t) || strlen(json_string_value(t)) >= DPMODEL_NAME_MAX || out->p >= DPMODEL_P_MAX + 1) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: member \"target\" must name a column", path);
		goto out;
	}
	snprintf(out->names[out->p], DPMODEL_NAME_MAX, "%s", json_string_value(t));
	if (!(fix >= 2) || !(out->noise_sd >= 0)) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s.meta.json: bad fixed_point or noise_sd", path);
		goto out;
	}
	for (i = 0; i <= out->p; i++)
		if ((r = dpmodel_bounds(path, m, out->names[i], &out->lo[i], &out->hi[i], err)) != 0)
			goto out;
	out->noise_sd /= fix * fix;
	d = out->p + 2;
	if ((r = csvfile_open_mem(path, csv, csv_len, &f, err)) != 0)
		goto out;
	if ((r = csvfile_next(f, &row, err)) != 1 || row->nfields != 3 || strcmp(row->fields[0], "row") != 0 ||
	    strcmp(row->fields[1], "col") != 0 || strcmp(row->fields[2], "value") != 0) {
		r = r < 0 ? r : cg_err_set(err, CG_ERR_FORMAT, "%s:1: header must be row,col,value", path);
		goto out;
	}
	while ((r = csvfile_next(f, &row, err)) == 1) {
		char *end;
		double v;

		if (row->nfields != 3 || (a = dpmodel_term(out, row->fields[0])) < 0 ||
		    (b = dpmodel_term(out, row->fields[1])) < 0 || a > b || seen[a][b]++) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: not an entry of the release (or a repeated one)", path,
			    (unsigned long long)row->line);
			goto out;
		}
		v = strtod(row->fields[2], &end);
		if (end == row->fields[2] || *end != '\0' || !isfinite(v)) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: value must be a number", path,
			    (unsigned long long)row->line);
			goto out;
		}
		out->s[a][b] = out->s[b][a] = v / (fix * fix);
	}
	if (r < 0)
		goto out;
	for (i = 0; i < d; i++)
		for (j = i; j < d; j++)
			if (!seen[i][j]) {
				r = cg_err_set(err, CG_ERR_FORMAT, "%s: the entry %s,%s is missing", path,
				    i ? out->names[i - 1] : "1", j ? out->names[j - 1] : "1");
				goto out;
			}
	r = 0;
out:
	csvfile_free(f);
	json_decref(m);
	return r;
}

static int
dpmodel_kmeans_parse_v(const char *name, const char *csv, size_t csv_len, const char *meta, size_t meta_len,
    void *out, struct cg_err *err)
{
	return dpmodel_kmeans_parse(name, csv, csv_len, meta, meta_len, out, err);
}

int
dpmodel_kmeans_load(const char *path, struct dpmodel_kmeans_release *out, struct cg_err *err)
{
	memset(out, 0, sizeof(*out));
	return dpmodel_load(path, dpmodel_kmeans_parse_v, out, err);
}

int
dpmodel_kmeans_parse(const char *path, const char *csv, size_t csv_len, const char *meta, size_t meta_len,
    struct dpmodel_kmeans_release *out, struct cg_err *err)
{
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	json_t *m = NULL;
	double steps, total = 0;
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = dpmodel_meta_mem(path, meta, meta_len, &m, err)) != 0)
		return r;
	if ((r = dpmodel_meta_common(path, m, "kmeans", out->names, &out->d, &out->rho, out->query_id, err)) != 0 ||
	    (r = dpmodel_meta_num(path, m, "count_noise_sd", &out->count_noise_sd, err)) != 0 ||
	    (r = dpmodel_meta_num(path, m, "steps", &steps, err)) != 0)
		goto out;
	out->steps = steps > 0 && steps < 1e6 ? (unsigned)steps : 0;
	out->log1p = json_is_true(json_object_get(m, "log1p"));
	if ((r = csvfile_open_mem(path, csv, csv_len, &f, err)) != 0)
		goto out;
	if ((r = csvfile_next(f, &row, err)) != 1 || row->nfields != out->d + 2 || strcmp(row->fields[0], "cluster") != 0 ||
	    strcmp(row->fields[1], "count") != 0) {
		r = r < 0 ? r : cg_err_set(err, CG_ERR_FORMAT, "%s:1: header must be cluster,count and the %zu columns",
		    path, out->d);
		goto out;
	}
	for (i = 0; i < out->d; i++)
		if (strcmp(row->fields[i + 2], out->names[i]) != 0) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:1: column %zu is not '%s'", path, i + 3, out->names[i]);
			goto out;
		}
	while ((r = csvfile_next(f, &row, err)) == 1) {
		char *end;

		if (out->k == DPMODEL_K_MAX || row->nfields != out->d + 2) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: more than %d clusters, or a short row", path,
			    (unsigned long long)row->line, DPMODEL_K_MAX);
			goto out;
		}
		for (i = 0; i <= out->d; i++) {
			double v = strtod(row->fields[i + 1], &end);
			if (end == row->fields[i + 1] || *end != '\0' || !isfinite(v) || (i == 0 && (v <= 0 ||
			    v > DPMODEL_COUNT_MAX))) {
				r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: field %zu must be a number%s", path,
				    (unsigned long long)row->line, i + 2, i == 0 ? " above 0 and at most 1e12" : "");
				goto out;
			}
			if (i == 0)
				out->count[out->k] = v;
			else
				out->centre[out->k][i - 1] = v;
		}
		total += out->count[out->k++];
	}
	if (r < 0)
		goto out;
	for (i = 0; i < out->k; i++)
		out->share[i] = out->count[i] / total;
	r = 0;
out:
	csvfile_free(f);
	json_decref(m);
	return r;
}
