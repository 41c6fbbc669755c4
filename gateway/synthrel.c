/* synthrel.c - see synthrel.h */
#include "gateway/synthrel.h"

#include <csv.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "gateway/budget.h"

#define SYNTHREL_CELLS_TOTAL_MAX (1u << 24)     /* cells of every 2-way table the selection scores */
#define SYNTHREL_IPF_ROUNDS 200
#define SYNTHREL_NONE ((size_t)-1)

static int64_t
synthrel_floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && (a < 0) != (b < 0))
		q--;
	return q;
}

static int
synthrel_label_range(struct synthrel_col *c, size_t b)
{
	char buf[64];
	int64_t lo = c->lo0 + (int64_t)b * c->width, hi = lo + c->width - 1;

	if (hi > c->top || b + 2 == c->nbins)
		hi = c->top;        /* the last range bin runs to the top */
	if (lo == hi)
		snprintf(buf, sizeof(buf), "%" PRId64, lo);
	else
		snprintf(buf, sizeof(buf), "%" PRId64 "-%" PRId64, lo, hi);
	return (c->labels[b] = strdup(buf)) == NULL ? CG_ERR_NOMEM : 0;
}

/* Index of label s among c->labels[0..n), or n. */
static size_t
synthrel_label_find(char *const *labels, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(labels[i], s) == 0)
			return i;
	return n;
}

static int
synthrel_col_make(struct synthrel_col *c, const struct join_col *jc, uint32_t bins, struct cg_err *err)
{
	const struct policy_column *pc = jc->col;
	size_t b, i, n;

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", jc->name);
	c->jc = jc;
	if (pc->role == POLICY_ROLE_QUASI && pc->gen == POLICY_GEN_BAND) {
		int64_t band = 0, first = 0, last = 0;

		if (!pc->has_min || !pc->has_max)
			return cg_err_set(err, CG_ERR_POLICY, "synthetic release: quasi-identifier '%s' has no min and max in "
			    "the policy, so its bands have no domain to release", jc->name);
		/* The finest level of the hierarchy whose bands between min and max are few enough. */
		for (i = 0; i < pc->nbands; i++) {
			band = pc->bands[i];
			first = synthrel_floordiv(pc->min, band);
			last = synthrel_floordiv(pc->max, band);
			if ((uint64_t)(last - first) < SYNTHREL_BINS_MAX)
				break;
		}
		if (i == pc->nbands)
			return cg_err_set(err, CG_ERR_POLICY, "synthetic release: quasi-identifier '%s' has more than %u bands "
			    "between its min and max even at its coarsest level", jc->name, SYNTHREL_BINS_MAX);
		c->range = 1;
		c->lo0 = first * band;
		c->width = band;
		c->top = last * band + band - 1;
		n = (size_t)(last - first + 1);
	} else if (pc->role == POLICY_ROLE_QUASI && pc->gen == POLICY_GEN_MAP) {
		n = 0;
		if ((c->labels = calloc(pc->nmap + 2, sizeof(*c->labels))) == NULL ||
		    (c->map_bin = calloc(pc->nmap + 1, sizeof(*c->map_bin))) == NULL)
			return CG_ERR_NOMEM;
		for (i = 0; i <= pc->nmap; i++) {
			const char *to = i < pc->nmap ? pc->map[i].to : pc->other;
			size_t at = synthrel_label_find(c->labels, n, to);

			if (at == n && (c->labels[n++] = strdup(to)) == NULL)
				return CG_ERR_NOMEM;
			if (i < pc->nmap)
				c->map_bin[i] = at;
			else
				c->other_bin = at;
		}
		c->nbins = n + 1;
		return (c->labels[n] = strdup(SYNTHREL_STAR)) == NULL ? CG_ERR_NOMEM : 0;
	} else if (pc->type == POLICY_TYPE_CATEGORY) {
		if ((c->labels = calloc(pc->nvalues + 1, sizeof(*c->labels))) == NULL)
			return CG_ERR_NOMEM;
		for (i = 0; i < pc->nvalues; i++)
			if ((c->labels[i] = strdup(pc->values[i])) == NULL)
				return CG_ERR_NOMEM;
		c->nbins = pc->nvalues + 1;
		return (c->labels[pc->nvalues] = strdup(SYNTHREL_STAR)) == NULL ? CG_ERR_NOMEM : 0;
	} else if (pc->type == POLICY_TYPE_INT) {
		uint64_t span, w, nb;

		if (!pc->has_bounds)
			return cg_err_set(err, CG_ERR_POLICY, "synthetic release: column '%s' has no bounds in the policy; an "
			    "int feature is released in bins of its bounds [lo, hi], which the policy must state", jc->name);
		/* width ceil((hi - lo) / bins), so that round bounds give round bins; the last bin ends at hi */
		span = (uint64_t)(pc->hi - pc->lo);
		w = (span + bins - 1) / bins;
		if (w == 0)
			w = 1;
		nb = span / w + 1;
		c->range = 1;
		c->lo0 = pc->lo;
		c->width = (int64_t)w;
		c->top = pc->hi;
		n = (size_t)(nb < bins ? nb : bins);
	} else {
		return CG_ERR_ARG;    /* no domain: the caller leaves it out */
	}
	c->nbins = n + 1;
	if ((c->labels = calloc(c->nbins, sizeof(*c->labels))) == NULL)
		return CG_ERR_NOMEM;
	for (b = 0; b < n; b++)
		if (synthrel_label_range(c, b) != 0)
			return CG_ERR_NOMEM;
	return (c->labels[n] = strdup(SYNTHREL_STAR)) == NULL ? CG_ERR_NOMEM : 0;
}

static void
synthrel_col_free(struct synthrel_col *c)
{
	size_t i;

	if (c->labels != NULL)
		for (i = 0; i < c->nbins; i++)
			free(c->labels[i]);
	free(c->labels);
	free(c->map_bin);
}

void
synthrel_schema_free(struct synthrel_schema *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->ncols; i++)
		synthrel_col_free(&s->cols[i]);
	free(s);
}

int
synthrel_schema_make(const struct join_col *jc, size_t njc, uint32_t bins, struct synthrel_schema **out,
    struct cg_err *err)
{
	struct synthrel_schema *s;
	uint64_t cells = 0;
	size_t i, j;
	int r = 0;

	*out = NULL;
	if (bins == 0)
		bins = SYNTHREL_BINS_DEFAULT;
	if (bins < 2 || bins > SYNTHREL_BINS_MAX)
		return cg_err_set(err, CG_ERR_ARG, "synthetic release: bins must be between 2 and %u", SYNTHREL_BINS_MAX);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (i = 0; i < njc; i++) {
		const struct policy_column *pc = jc[i].col;
		int has_domain = pc->role == POLICY_ROLE_QUASI || pc->type == POLICY_TYPE_CATEGORY ||
		    pc->type == POLICY_TYPE_INT;

		if (!has_domain) {
			snprintf(s->omitted[s->nomitted++], sizeof(s->omitted[0]), "%s", jc[i].name);
			continue;
		}
		if (s->ncols == SYNTHREL_COLS_MAX) {
			r = cg_err_set(err, CG_ERR_LIMIT, "synthetic release: more than %d columns", SYNTHREL_COLS_MAX);
			goto out;
		}
		r = synthrel_col_make(&s->cols[s->ncols], &jc[i], bins, err);
		s->ncols++;
		if (r == CG_ERR_NOMEM)
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		if (r != 0)
			goto out;
	}
	if (s->ncols == 0) {
		r = cg_err_set(err, CG_ERR_POLICY, "synthetic release: no column of the purpose has a domain to release");
		goto out;
	}
	for (i = 0; i < s->ncols; i++)
		for (j = i + 1; j < s->ncols; j++) {
			uint64_t t = (uint64_t)s->cols[i].nbins * s->cols[j].nbins;
			if (t > SYNTHREL_PAIR_CELLS_MAX) {
				r = cg_err_set(err, CG_ERR_LIMIT, "synthetic release: columns '%s' and '%s' together have %" PRIu64
				    " cells, above %u; ask for fewer bins", s->cols[i].name, s->cols[j].name, t,
				    SYNTHREL_PAIR_CELLS_MAX);
				goto out;
			}
			cells += t;
		}
	if (cells > SYNTHREL_CELLS_TOTAL_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "synthetic release: the pairs of columns have %" PRIu64 " cells in all, "
		    "above %u; ask for fewer bins", cells, SYNTHREL_CELLS_TOTAL_MAX);
		goto out;
	}
	*out = s;
	s = NULL;
out:
	synthrel_schema_free(s);
	return r;
}

uint16_t
synthrel_bin_of(const struct synthrel_col *c, int absent, int is_int, int64_t v, const char *sv)
{
	const struct policy_column *pc = c->jc->col;
	size_t star = c->nbins - 1, i;

	if (absent)
		return (uint16_t)star;
	if (c->range) {
		if (!is_int || v < c->lo0 || v > c->top)
			return (uint16_t)star;
		/* v - lo0 cannot overflow: both lie within the column's policy range, itself within int64 */
		i = (size_t)((uint64_t)(v - c->lo0) / (uint64_t)c->width);
		return (uint16_t)(i < star ? i : star - 1);
	}
	if (is_int || sv == NULL)
		return (uint16_t)star;
	if (c->map_bin != NULL) {
		for (i = 0; i < pc->nmap; i++)
			if (strcmp(pc->map[i].from, sv) == 0)
				return (uint16_t)c->map_bin[i];
		return (uint16_t)c->other_bin;
	}
	i = synthrel_label_find(c->labels, star, sv);
	return (uint16_t)i;       /* star when not one of the values */
}

void
synthrel_encode(const struct synthrel_schema *s, Crossgate__RecordPayload *const pl[2], uint16_t *row)
{
	size_t i;

	for (i = 0; i < s->ncols; i++) {
		const struct policy_column *pc;
		const Crossgate__Field *f = join_col_field(s->cols[i].jc, pl, &pc);
		int is_int = f != NULL && f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE;

		row[i] = synthrel_bin_of(&s->cols[i], f == NULL, is_int, is_int ? f->int_value : 0,
		    f != NULL && !is_int && f->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE ? f->str_value : NULL);
	}
}

void
synthrel_marginal1(const struct synthrel_schema *s, const uint16_t *codes, size_t n, size_t i, int64_t *out)
{
	size_t r, d = s->ncols;

	memset(out, 0, s->cols[i].nbins * sizeof(*out));
	for (r = 0; r < n; r++)
		out[codes[r * d + i]]++;
}

void
synthrel_marginal2(const struct synthrel_schema *s, const uint16_t *codes, size_t n, size_t i, size_t j,
    int64_t *out)
{
	size_t r, d = s->ncols, dj = s->cols[j].nbins;

	memset(out, 0, s->cols[i].nbins * dj * sizeof(*out));
	for (r = 0; r < n; r++)
		out[(size_t)codes[r * d + i] * dj + codes[r * d + j]]++;
}

int
synthrel_params(size_t d, int64_t rho_nano, struct synthrel_params *p, struct cg_err *err)
{
	memset(p, 0, sizeof(*p));
	if (rho_nano <= 0 || d == 0 || d > SYNTHREL_COLS_MAX)
		return cg_err_set(err, CG_ERR_ARG, "synthetic release: rho must be positive");
	if (d == 1) {
		/* one column: no pair to choose or measure, all of rho to its marginal: variance 1 / (2 rho) */
		p->rho1_nano = rho_nano;
		p->var1_num = (uint64_t)BUDGET_NANO;
		p->var1_den = 2 * (uint64_t)rho_nano;
		return 0;
	}
	/* rho/3 each; variance d / (2 rho/3) = 3 d 1e9 / (2 rho_nano): exact rationals */
	p->rho1_nano = p->rho_sel_nano = p->rho2_nano = rho_nano / 3;
	p->var1_num = 3 * (uint64_t)d * (uint64_t)BUDGET_NANO;
	p->var1_den = 2 * (uint64_t)rho_nano;
	p->var2_num = 3 * (uint64_t)(d - 1) * (uint64_t)BUDGET_NANO;
	p->var2_den = 2 * (uint64_t)rho_nano;
	/* eps with eps^2/8 = (rho/3) / (d-1); a hair below, so rounding never overspends */
	p->eps_round = sqrt(8.0 * (double)rho_nano / (3.0 * (double)BUDGET_NANO * (double)(d - 1))) * (1 - 1e-12);
	return 0;
}

struct synthrel_model {
	const struct synthrel_schema *s;
	struct synthrel_params par;
	double rows;
	size_t nedges;
	size_t edges[SYNTHREL_COLS_MAX][2];
	size_t order[SYNTHREL_COLS_MAX];     /* columns, each after its parent */
	size_t parent[SYNTHREL_COLS_MAX];    /* SYNTHREL_NONE for the root */
	double *y1[SYNTHREL_COLS_MAX];       /* the noisy 1-way measurements (DP outputs, kept for tests) */
	double *y2[SYNTHREL_COLS_MAX];       /* the noisy 2-way measurements of edges[e], [a * nbins_b + b] */
	double *p1[SYNTHREL_COLS_MAX];       /* each column's marginal */
	double *cum[SYNTHREL_COLS_MAX];      /* root: cumulative p1; child: per parent bin, cumulative P(child | parent) */
};

void
synthrel_model_free(struct synthrel_model *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < SYNTHREL_COLS_MAX; i++) {
		free(m->y1[i]);
		free(m->y2[i]);
		free(m->p1[i]);
		free(m->cum[i]);
	}
	free(m);
}

double
synthrel_model_rows(const struct synthrel_model *m)
{
	return m->rows;
}

size_t
synthrel_model_edges(const struct synthrel_model *m, size_t (*edges)[2], size_t max)
{
	size_t i;

	for (i = 0; i < m->nedges && i < max; i++) {
		edges[i][0] = m->edges[i][0];
		edges[i][1] = m->edges[i][1];
	}
	return m->nedges;
}

const struct synthrel_params *
synthrel_model_params(const struct synthrel_model *m)
{
	return &m->par;
}

double
synthrel_model_measured(const struct synthrel_model *m, int two_way, size_t idx, size_t cell)
{
	const struct synthrel_schema *s = m->s;

	if (!two_way)
		return idx < s->ncols && cell < s->cols[idx].nbins ? m->y1[idx][cell] : 0;
	if (idx >= m->nedges || cell >= s->cols[m->edges[idx][0]].nbins * s->cols[m->edges[idx][1]].nbins)
		return 0;
	return m->y2[idx][cell];
}

double
synthrel_model_p1(const struct synthrel_model *m, size_t i, size_t a)
{
	return i < m->s->ncols && a < m->s->cols[i].nbins ? m->p1[i][a] : 0;
}

/* A uniform double in [0, 1) with 53 random bits. */
static double
synthrel_uniform(void)
{
	uint64_t x;

	randombytes_buf(&x, sizeof(x));
	return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

/* Add discrete Gaussian noise of variance num/den to every cell (nothing when num is 0). */
static int
synthrel_noise(double *y, const int64_t *exact, size_t n, uint64_t num, uint64_t den, struct cg_err *err)
{
	size_t i;
	int64_t z;

	for (i = 0; i < n; i++) {
		z = 0;
		if (num > 0 && noise_gaussian(num, den, &z) != 0)
			return cg_err_set(err, CG_ERR_INTERNAL, "cannot draw the noise");
		y[i] = (double)exact[i] + (double)z;
	}
	return 0;
}

static int
synthrel_dbl_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Euclidean projection of v[n] onto {x >= 0, sum x = z} (Duchi et al.,
 * ICML 2008, Fig. 1), in place; tmp has n doubles.  z <= 0 gives the
 * uniform table of mass 1, so that a model always normalizes.
 */
static void
synthrel_project(double *v, size_t n, double z, double *tmp)
{
	double sum = 0, theta = 0;
	size_t i;

	if (!(z > 0)) {
		for (i = 0; i < n; i++)
			v[i] = 1.0 / (double)n;
		return;
	}
	memcpy(tmp, v, n * sizeof(*tmp));
	qsort(tmp, n, sizeof(*tmp), synthrel_dbl_desc);
	for (i = 0; i < n; i++) {
		sum += tmp[i];
		if (tmp[i] - (sum - z) / (double)(i + 1) > 0)
			theta = (sum - z) / (double)(i + 1);
	}
	for (i = 0; i < n; i++)
		v[i] = v[i] - theta > 0 ? v[i] - theta : 0;
}

static size_t
synthrel_find(size_t *comp, size_t i)
{
	while (comp[i] != i)
		i = comp[i] = comp[comp[i]];
	return i;
}

/* Fit table t[da x db] (>= 0) to margins ra (rows) and rb (columns) by iterative proportional fitting. */
static void
synthrel_ipf(double *t, size_t da, size_t db, const double *ra, const double *rb)
{
	size_t a, b, it;

	for (a = 0; a < da; a++)
		for (b = 0; b < db; b++)
			t[a * db + b] += 1e-9 * ra[a] * rb[b];   /* a row or column with no mass still meets its margin */
	for (it = 0; it < SYNTHREL_IPF_ROUNDS; it++) {
		double dev = 0;

		for (a = 0; a < da; a++) {
			double s = 0;
			for (b = 0; b < db; b++)
				s += t[a * db + b];
			for (b = 0; b < db; b++)
				t[a * db + b] = s > 0 ? t[a * db + b] * ra[a] / s : 0;
		}
		for (b = 0; b < db; b++) {
			double s = 0;
			for (a = 0; a < da; a++)
				s += t[a * db + b];
			dev = fmax(dev, fabs(s - rb[b]));
			for (a = 0; a < da; a++)
				t[a * db + b] = s > 0 ? t[a * db + b] * rb[b] / s : 0;
		}
		if (dev < 1e-12)
			break;
	}
}

int
synthrel_fit(const struct synthrel_schema *s, const uint16_t *codes, size_t n, int64_t rho_nano, int noiseless,
    struct synthrel_model **out, struct cg_err *err)
{
	const size_t d = s->ncols;
	struct synthrel_model *m = NULL;
	double *y1[SYNTHREL_COLS_MAX] = { 0 }, *y2[SYNTHREL_COLS_MAX] = { 0 }, *score = NULL, *tmp = NULL, *t = NULL;
	size_t (*pairs)[2] = NULL, npairs = 0, comp[SYNTHREL_COLS_MAX], i, j, k, e, maxcells = 0;
	int64_t *cnt = NULL;
	double v1, v2, wsum = 0, tsum = 0;
	int r;

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	m->s = s;
	if ((r = synthrel_params(d, rho_nano, &m->par, err)) != 0)
		goto out;
	for (i = 0; i < d; i++)
		for (j = i; j < d; j++)
			if ((size_t)s->cols[i].nbins * s->cols[j].nbins > maxcells)
				maxcells = (size_t)s->cols[i].nbins * s->cols[j].nbins;
	if ((cnt = malloc(maxcells * sizeof(*cnt))) == NULL || (tmp = malloc(maxcells * sizeof(*tmp))) == NULL ||
	    (t = malloc(maxcells * sizeof(*t))) == NULL ||
	    (pairs = malloc((d * (d - 1) / 2 + 1) * sizeof(*pairs))) == NULL ||
	    (score = malloc((d * (d - 1) / 2 + 1) * sizeof(*score))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}

	/* 1. The 1-way marginals, measured; the independent model they imply. */
	for (i = 0; i < d; i++) {
		size_t nb = s->cols[i].nbins;
		double tot = 0;

		if ((y1[i] = malloc(nb * sizeof(double))) == NULL || (m->p1[i] = malloc(nb * sizeof(double))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		synthrel_marginal1(s, codes, n, i, cnt);
		if ((r = synthrel_noise(y1[i], cnt, nb, noiseless ? 0 : m->par.var1_num, m->par.var1_den, err)) != 0)
			goto out;
		for (k = 0; k < nb; k++)
			tot += y1[i][k];
		v1 = noiseless ? 1 : (double)nb * (double)m->par.var1_num / (double)m->par.var1_den;
		tsum += tot / v1;
		wsum += 1 / v1;
	}
	m->rows = tsum / wsum;          /* refined below with the 2-way totals */
	for (i = 0; i < d; i++) {
		memcpy(m->p1[i], y1[i], s->cols[i].nbins * sizeof(double));
		synthrel_project(m->p1[i], s->cols[i].nbins, m->rows, tmp);
		if (m->rows > 0)
			for (k = 0; k < s->cols[i].nbins; k++)
				m->p1[i][k] /= m->rows;
	}

	/* 2. The tree: d-1 rounds of the exponential mechanism over the pairs that join two components. */
	for (i = 0; i < d; i++)
		for (j = i + 1; j < d; j++) {
			size_t da = s->cols[i].nbins, db = s->cols[j].nbins;
			double l1 = 0;

			synthrel_marginal2(s, codes, n, i, j, cnt);
			for (k = 0; k < da * db; k++)
				l1 += fabs((double)cnt[k] - m->rows * m->p1[i][k / db] * m->p1[j][k % db]);
			pairs[npairs][0] = i;
			pairs[npairs][1] = j;
			score[npairs++] = l1;
		}
	for (i = 0; i < d; i++)
		comp[i] = i;
	for (e = 0; e + 1 < d; e++) {
		double best = -INFINITY, total = 0, u;
		size_t pick = SYNTHREL_NONE, last = SYNTHREL_NONE;

		for (k = 0; k < npairs; k++)
			if (synthrel_find(comp, pairs[k][0]) != synthrel_find(comp, pairs[k][1]) && score[k] > best) {
				best = score[k];
				pick = k;
			}
		if (!noiseless) {
			/* P(k) proportional to exp(eps * score / (2 * sensitivity 1)), shifted by the best for range */
			for (k = 0; k < npairs; k++)
				if (synthrel_find(comp, pairs[k][0]) != synthrel_find(comp, pairs[k][1]))
					total += exp(0.5 * m->par.eps_round * (score[k] - best));
			u = synthrel_uniform() * total;
			for (k = 0; k < npairs; k++)
				if (synthrel_find(comp, pairs[k][0]) != synthrel_find(comp, pairs[k][1])) {
					last = k;
					u -= exp(0.5 * m->par.eps_round * (score[k] - best));
					if (u < 0)
						break;
				}
			pick = k < npairs ? k : last;
		}
		m->edges[e][0] = pairs[pick][0];
		m->edges[e][1] = pairs[pick][1];
		comp[synthrel_find(comp, pairs[pick][0])] = synthrel_find(comp, pairs[pick][1]);
	}
	m->nedges = d - 1;

	/* 3. The chosen 2-way marginals, measured; every total refines the number of rows. */
	for (e = 0; e < m->nedges; e++) {
		size_t a = m->edges[e][0], b = m->edges[e][1], nc = s->cols[a].nbins * s->cols[b].nbins;
		double tot = 0;

		if ((y2[e] = malloc(nc * sizeof(double))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		synthrel_marginal2(s, codes, n, a, b, cnt);
		if ((r = synthrel_noise(y2[e], cnt, nc, noiseless ? 0 : m->par.var2_num, m->par.var2_den, err)) != 0)
			goto out;
		for (k = 0; k < nc; k++)
			tot += y2[e][k];
		v2 = noiseless ? 1 : (double)nc * (double)m->par.var2_num / (double)m->par.var2_den;
		tsum += tot / v2;
		wsum += 1 / v2;
	}
	m->rows = tsum / wsum;
	if (m->rows < 0)
		m->rows = 0;

	/* 4. Each column's marginal: its measurement and its edges' margins, by inverse variance, projected. */
	v1 = (double)m->par.var1_num / (double)m->par.var1_den;
	v2 = m->nedges > 0 ? (double)m->par.var2_num / (double)m->par.var2_den : 1;
	for (i = 0; i < d; i++) {
		size_t nb = s->cols[i].nbins;
		double w = noiseless ? 1 : 1 / v1;

		for (k = 0; k < nb; k++)
			t[k] = y1[i][k] * w;
		for (e = 0; e < m->nedges && !noiseless; e++) {
			size_t a = m->edges[e][0], b = m->edges[e][1], other, db = s->cols[b].nbins;
			double we;

			if (a != i && b != i)
				continue;
			other = a == i ? b : a;
			we = 1 / ((double)s->cols[other].nbins * v2);
			for (k = 0; k < s->cols[a].nbins * db; k++)
				t[a == i ? k / db : k % db] += y2[e][k] * we;
			w += we;
		}
		for (k = 0; k < nb; k++)
			m->p1[i][k] = t[k] / w;
		synthrel_project(m->p1[i], nb, m->rows, tmp);
		if (m->rows > 0)
			for (k = 0; k < nb; k++)
				m->p1[i][k] /= m->rows;
	}

	/* 5. The tree from column 0; each child's table projected, fitted to both marginals, conditioned. */
	for (i = 0; i < d; i++)
		m->parent[i] = SYNTHREL_NONE;
	m->order[0] = 0;
	{
		size_t done = 1, head = 0;
		uint8_t seen[SYNTHREL_COLS_MAX] = { 0 };

		seen[0] = 1;
		while (head < done) {
			size_t p = m->order[head++];

			for (e = 0; e < m->nedges; e++) {
				size_t a = m->edges[e][0], b = m->edges[e][1], c = a == p ? b : b == p ? a : SYNTHREL_NONE;
				size_t dp = s->cols[p].nbins, dc, x;
				double *ra, *rb;

				if (c == SYNTHREL_NONE || seen[c])
					continue;
				seen[c] = 1;
				m->parent[c] = p;
				m->order[done++] = c;
				dc = s->cols[c].nbins;
				/* orient the measured table as [parent][child] */
				for (x = 0; x < dp * dc; x++)
					t[x] = a == p ? y2[e][x] : y2[e][(x % dc) * dp + x / dc];
				synthrel_project(t, dp * dc, m->rows, tmp);
				if ((ra = malloc(dp * sizeof(*ra))) == NULL || (rb = malloc(dc * sizeof(*rb))) == NULL ||
				    (m->cum[c] = malloc(dp * dc * sizeof(double))) == NULL) {
					free(ra);
					r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
					goto out;
				}
				for (x = 0; x < dp; x++)
					ra[x] = m->p1[p][x];
				for (x = 0; x < dc; x++)
					rb[x] = m->p1[c][x];
				/* fit in probabilities: the table's mass becomes 1 like its margins' */
				{
					double mass = 0;
					for (x = 0; x < dp * dc; x++)
						mass += t[x];
					for (x = 0; x < dp * dc; x++)
						t[x] = mass > 0 ? t[x] / mass : 0;
				}
				synthrel_ipf(t, dp, dc, ra, rb);
				for (x = 0; x < dp; x++) {
					double acc = 0, row = 0;
					size_t y;

					for (y = 0; y < dc; y++)
						row += t[x * dc + y];
					for (y = 0; y < dc; y++) {
						/* a parent bin the model never draws: any valid conditional, the child's marginal */
						acc += row > 0 ? t[x * dc + y] / row : rb[y];
						m->cum[c][x * dc + y] = acc;
					}
				}
				free(ra);
				free(rb);
			}
		}
		if (done != d) {
			r = cg_err_set(err, CG_ERR_INTERNAL, "synthetic release: the chosen pairs do not span the columns");
			goto out;
		}
	}
	{
		size_t root = m->order[0], nb = s->cols[root].nbins;
		double acc = 0;

		if ((m->cum[root] = malloc(nb * sizeof(double))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		for (k = 0; k < nb; k++) {
			acc += m->p1[root][k];
			m->cum[root][k] = acc;
		}
	}
	for (i = 0; i < SYNTHREL_COLS_MAX; i++) {
		m->y1[i] = y1[i];
		m->y2[i] = y2[i];
		y1[i] = y2[i] = NULL;     /* transferred */
	}
	*out = m;
	m = NULL;
	r = 0;
out:
	for (i = 0; i < SYNTHREL_COLS_MAX; i++) {
		free(y1[i]);
		free(y2[i]);
	}
	free(cnt);
	free(tmp);
	free(t);
	free(pairs);
	free(score);
	synthrel_model_free(m);
	return r;
}

/* The first index whose cumulative value exceeds u * cum[n-1]. */
static size_t
synthrel_draw(const double *cum, size_t n, uint64_t bits)
{
	double u = (double)(bits >> 11) * (1.0 / 9007199254740992.0) * cum[n - 1];
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cum[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int
synthrel_sample(const struct synthrel_model *m, uint64_t rows, uint16_t *out, struct cg_err *err)
{
	const struct synthrel_schema *s = m->s;
	const size_t d = s->ncols;
	uint64_t rnd[1024], row;
	size_t used = sizeof(rnd) / sizeof(rnd[0]), k;

	if (rows > SYNTHREL_ROWS_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "synthetic release: more than %llu rows asked",
		    (unsigned long long)SYNTHREL_ROWS_MAX);
	/* Sampling is post-processing: any good generator would do; libsodium's is at hand and fast. */
	for (row = 0; row < rows; row++) {
		uint16_t *x = out + row * d;

		for (k = 0; k < d; k++) {
			size_t c = m->order[k], dc = s->cols[c].nbins;

			if (used == sizeof(rnd) / sizeof(rnd[0])) {
				randombytes_buf(rnd, sizeof(rnd));
				used = 0;
			}
			if (m->parent[c] == SYNTHREL_NONE)
				x[c] = (uint16_t)synthrel_draw(m->cum[c], dc, rnd[used++]);
			else
				x[c] = (uint16_t)synthrel_draw(m->cum[c] + (size_t)x[m->parent[c]] * dc, dc, rnd[used++]);
		}
	}
	return 0;
}

/* A label as a CSV cell: as is, or quoted by libcsv when it holds a separator, quote or line break. */
static char *
synthrel_cell(const char *label)
{
	size_t n = strlen(label), cap = 2 * n + 3;
	char *out;

	if (strpbrk(label, ",\"\r\n") == NULL)
		return strdup(label);
	if ((out = malloc(cap + 1)) == NULL)
		return NULL;
	out[csv_write(out, cap, label, n)] = '\0';
	return out;
}

int
synthrel_write_csv(const struct synthrel_model *m, uint64_t rows, FILE *f, struct cg_err *err)
{
	const struct synthrel_schema *s = m->s;
	char **cells[SYNTHREL_COLS_MAX] = { 0 }, *h, *text = NULL;
	uint16_t *buf = NULL;
	uint64_t done = 0, r;
	size_t i, b, linemax = 0;
	int rc = 0;

	if (rows > SYNTHREL_ROWS_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "synthetic release: more than %llu rows asked",
		    (unsigned long long)SYNTHREL_ROWS_MAX);
	for (i = 0; i < s->ncols && rc == 0; i++) {
		if ((cells[i] = calloc(s->cols[i].nbins, sizeof(char *))) == NULL)
			rc = CG_ERR_NOMEM;
		for (b = 0; rc == 0 && b < s->cols[i].nbins; b++)
			if ((cells[i][b] = synthrel_cell(s->cols[i].labels[b])) == NULL)
				rc = CG_ERR_NOMEM;
	}
	if (rc != 0 || (buf = malloc((size_t)SYNTHREL_CHUNK * s->ncols * sizeof(*buf))) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < s->ncols; i++) {
		if ((h = synthrel_cell(s->cols[i].name)) == NULL) {
			rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		fprintf(f, "%s%s", i ? "," : "", h);
		free(h);
	}
	fputc('\n', f);
	/* one line at a time into a buffer, one fwrite per chunk: stdio per cell is most of the cost */
	for (i = 0; i < s->ncols; i++)
		for (b = 0; b < s->cols[i].nbins; b++)
			linemax += strlen(cells[i][b]) + 1;
	if ((text = malloc(linemax * SYNTHREL_CHUNK + 1)) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	while (done < rows) {
		uint64_t n = rows - done < SYNTHREL_CHUNK ? rows - done : SYNTHREL_CHUNK;
		size_t len = 0;

		if ((rc = synthrel_sample(m, n, buf, err)) != 0)
			goto out;
		for (r = 0; r < n; r++) {
			for (i = 0; i < s->ncols; i++) {
				const char *cell = cells[i][buf[r * s->ncols + i]];
				size_t cl = strlen(cell);

				memcpy(text + len, cell, cl);
				len += cl;
				text[len++] = i + 1 < s->ncols ? ',' : '\n';
			}
		}
		if (fwrite(text, 1, len, f) != len)
			break;
		done += n;
	}
	if (ferror(f))
		rc = cg_err_set(err, CG_ERR_IO, "cannot write the synthetic rows");
out:
	for (i = 0; i < s->ncols; i++) {
		if (cells[i] != NULL)
			for (b = 0; b < s->cols[i].nbins; b++)
				free(cells[i][b]);
		free(cells[i]);
	}
	free(buf);
	free(text);
	return rc;
}
