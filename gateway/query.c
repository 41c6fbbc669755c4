/* query.c - see query.h */
#include "gateway/query.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "gateway/budget.h"
#include "base/outfile.h"

#define QUERY_NONE UINT32_MAX
#define QUERY_LABEL_MAX (POLICY_VALUE_MAX + 64)   /* any policy value or band fits whole */

/* One group key: a column's (generalized) values, or a histogram's ranges. */
struct query_dim {
	char name[170];
	struct join_col jc;
	int is_public;
	int is_hist;
	int64_t lo, hi, width;               /* histogram */
	char **labels;
	size_t nlabels, cap;
	uint32_t *slot;                      /* label hash table */
	size_t mask;
	uint32_t star;                       /* index of "*" (a missing value), or QUERY_NONE */
};

/* One measured statistic: the count (stat 0) or the sum of a bounded column. */
struct query_stat {
	struct join_col jc;
	int64_t lo, hi;
	uint64_t delta;                      /* sensitivity */
	uint64_t num, den;                   /* the noise's scale (Laplace) or variance (Gaussian) */
};

/* An output column after the keys and the count: sum_X or mean_X. */
struct query_out {
	enum query_kind kind;
	size_t stat;
	char name[170];
};

struct query_plan {
	const struct query_spec *spec;
	struct query_dim dims[QUERY_GROUP_MAX + 1];
	size_t ndims;
	struct query_stat stats[QUERY_METRIC_MAX + 1];
	size_t nstats;
	struct query_out outs[QUERY_METRIC_MAX];
	size_t nouts;
	int partition;                       /* some key comes from the data */
	/* groups */
	uint32_t *keys;                      /* ngroups x ndims label indexes */
	int64_t *exact, *noisy;              /* ngroups x nstats */
	uint8_t *released;
	size_t ngroups, cap;
	uint32_t *gslot;
	size_t gmask;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
};

int
query_metric_parse(const char *s, struct query_metric *m, struct cg_err *err)
{
	static const struct { const char *name; enum query_kind kind; } tab[] = {
		{ "sum:", QUERY_SUM }, { "mean:", QUERY_MEAN }, { "histogram:", QUERY_HISTOGRAM },
	};
	size_t i;

	memset(m, 0, sizeof(*m));
	if (strcmp(s, "count") == 0) {
		m->kind = QUERY_COUNT;
		return 0;
	}
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		size_t n = strlen(tab[i].name);
		if (strncmp(s, tab[i].name, n) == 0 && s[n] != '\0') {
			m->kind = tab[i].kind;
			m->col = s + n;
			return 0;
		}
	}
	return cg_err_set(err, CG_ERR_ARG, "bad metric '%.64s' (want count, sum:COL, mean:COL or histogram:COL)", s);
}

/* ---- labels ---- */

static uint64_t
query_hash(const struct query_plan *p, const void *b, size_t n)
{
	uint64_t h;

	crypto_shorthash((unsigned char *)&h, b, n, p->hkey);
	return h;
}

static int
query_dim_rehash(struct query_plan *p, struct query_dim *d)
{
	size_t mask = 63, i;
	uint32_t *slot;

	while (mask < d->nlabels * 2 + 16)
		mask = mask * 2 + 1;
	if ((slot = malloc((mask + 1) * sizeof(*slot))) == NULL)
		return CG_ERR_NOMEM;
	memset(slot, 0xff, (mask + 1) * sizeof(*slot));
	for (i = 0; i < d->nlabels; i++) {
		size_t s = query_hash(p, d->labels[i], strlen(d->labels[i])) & mask;
		while (slot[s] != QUERY_NONE)
			s = (s + 1) & mask;
		slot[s] = (uint32_t)i;
	}
	free(d->slot);
	d->slot = slot;
	d->mask = mask;
	return 0;
}

/* The label's index; added if `add` (a key from the data), else QUERY_NONE when absent. */
static int
query_label(struct query_plan *p, struct query_dim *d, const char *label, int add, uint32_t *out)
{
	size_t s;

	*out = QUERY_NONE;
	if (d->slot == NULL && query_dim_rehash(p, d) != 0)
		return CG_ERR_NOMEM;
	for (s = query_hash(p, label, strlen(label)) & d->mask; d->slot[s] != QUERY_NONE; s = (s + 1) & d->mask)
		if (strcmp(d->labels[d->slot[s]], label) == 0) {
			*out = d->slot[s];
			return 0;
		}
	if (!add)
		return 0;
	if (d->nlabels >= UINT32_MAX - 1)
		return CG_ERR_LIMIT;
	if (d->nlabels == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		char **np = realloc(d->labels, ncap * sizeof(*np));
		if (np == NULL)
			return CG_ERR_NOMEM;
		d->labels = np;
		d->cap = ncap;
	}
	if ((d->labels[d->nlabels] = strdup(label)) == NULL)
		return CG_ERR_NOMEM;
	*out = (uint32_t)d->nlabels++;
	if (d->nlabels * 2 + 16 > d->mask)
		return query_dim_rehash(p, d);
	d->slot[s] = *out;
	return 0;
}

/* A public column's whole domain, from the policy alone. */
static int
query_domain(struct query_plan *p, struct query_dim *d, uint32_t buckets)
{
	const struct policy_column *c = d->jc.col;
	char label[QUERY_LABEL_MAX];
	uint32_t ix;
	size_t i;
	int r = 0;

	if (d->is_hist) {
		for (i = 0; i < buckets && r == 0; i++) {
			int64_t a = d->lo + (int64_t)i * d->width, b = a + d->width - 1;
			if (a > d->hi)
				break;
			snprintf(label, sizeof(label), "%lld-%lld", (long long)a, (long long)(b < d->hi ? b : d->hi));
			r = query_label(p, d, label, 1, &ix);
		}
	} else if (c->role == POLICY_ROLE_QUASI && c->gen == POLICY_GEN_BAND) {
		int64_t q, qlo = c->min / c->band - (c->min % c->band != 0 && c->min < 0);
		int64_t qhi = c->max / c->band - (c->max % c->band != 0 && c->max < 0);
		if ((__int128)qhi - qlo >= QUERY_CELLS_MAX)
			return CG_ERR_LIMIT;
		for (q = qlo; q <= qhi && r == 0; q++) {
			if ((r = policy_generalize_band(c->band, q * c->band, label, sizeof(label))) == 0)
				r = query_label(p, d, label, 1, &ix);
		}
	} else if (c->role == POLICY_ROLE_QUASI && c->gen == POLICY_GEN_MAP) {
		for (i = 0; i < c->nmap && r == 0; i++)
			r = query_label(p, d, c->map[i].to, 1, &ix);
		if (r == 0)
			r = query_label(p, d, c->other, 1, &ix);
	} else {
		for (i = 0; i < c->nvalues && r == 0; i++)
			r = query_label(p, d, c->values[i], 1, &ix);
	}
	/*
	 * "*": a missing value, or one outside the declared domain (a policy
	 * narrowed after the data came).  Always a key of its own: an error
	 * instead would answer, for free, whether such a subject exists.
	 */
	if (r == 0)
		r = query_label(p, d, "*", 1, &d->star);
	if (r == 0 && d->nlabels > QUERY_CELLS_MAX)
		r = CG_ERR_LIMIT;
	return r;
}

/* ---- groups ---- */

static int
query_group(struct query_plan *p, const uint32_t *key, int add, size_t *out)
{
	size_t s, i;

	*out = SIZE_MAX;
	if (p->gslot == NULL || p->ngroups * 2 + 16 > p->gmask) {
		size_t mask = p->gmask ? p->gmask * 2 + 1 : 1023;
		uint32_t *slot = malloc((mask + 1) * sizeof(*slot));
		if (slot == NULL)
			return CG_ERR_NOMEM;
		memset(slot, 0xff, (mask + 1) * sizeof(*slot));
		for (i = 0; i < p->ngroups; i++) {
			s = query_hash(p, &p->keys[i * p->ndims], p->ndims * sizeof(*key)) & mask;
			while (slot[s] != QUERY_NONE)
				s = (s + 1) & mask;
			slot[s] = (uint32_t)i;
		}
		free(p->gslot);
		p->gslot = slot;
		p->gmask = mask;
	}
	for (s = query_hash(p, key, p->ndims * sizeof(*key)) & p->gmask; p->gslot[s] != QUERY_NONE;
	    s = (s + 1) & p->gmask)
		if (memcmp(&p->keys[p->gslot[s] * p->ndims], key, p->ndims * sizeof(*key)) == 0) {
			*out = p->gslot[s];
			return 0;
		}
	if (!add)
		return 0;
	if (p->ngroups == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		void *k = realloc(p->keys, ncap * (p->ndims + 1) * sizeof(*p->keys));
		if (k == NULL)
			return CG_ERR_NOMEM;
		p->keys = k;
		if ((k = realloc(p->exact, ncap * p->nstats * sizeof(*p->exact))) == NULL)
			return CG_ERR_NOMEM;
		p->exact = k;
		p->cap = ncap;
	}
	memcpy(&p->keys[p->ngroups * p->ndims], key, p->ndims * sizeof(*key));
	memset(&p->exact[p->ngroups * p->nstats], 0, p->nstats * sizeof(*p->exact));
	p->gslot[s] = (uint32_t)p->ngroups;
	*out = p->ngroups++;
	return 0;
}

/* Every combination of the public domains, in order: groups exist whether or not the data has them. */
static int
query_groups_enumerate(struct query_plan *p, struct cg_err *err)
{
	uint32_t key[QUERY_GROUP_MAX + 1];
	uint64_t total = 1;
	size_t d, g;
	int r;

	for (d = 0; d < p->ndims; d++) {
		total *= p->dims[d].nlabels;
		if (total > QUERY_CELLS_MAX)
			return cg_err_set(err, CG_ERR_LIMIT, "the query has more than %d groups: group by fewer columns",
			    QUERY_CELLS_MAX);
		key[d] = 0;
	}
	if (total == 0)
		return 0;
	for (;;) {
		if ((r = query_group(p, key, 1, &g)) != 0)
			return cg_err_set(err, r, "out of memory");
		for (d = p->ndims; d-- > 0;) {
			if (++key[d] < p->dims[d].nlabels)
				break;
			key[d] = 0;
		}
		if (d == SIZE_MAX)
			return 0;
	}
}

/* ---- the plan ---- */

static const struct join_col *
query_col_find(const struct join_col *cols, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(cols[i].name, name) == 0)
			return &cols[i];
	return NULL;
}

int
query_bounded_column(const struct join_col *cols, size_t ncols, const char *name, const struct join_col **out,
    struct cg_err *err)
{
	const struct join_col *jc = query_col_find(cols, ncols, name);

	*out = NULL;
	if (jc == NULL)
		return cg_err_set(err, CG_ERR_ARG, "no column '%.64s' is shared for this purpose (columns are named as in "
		    "a row export: quasi-identifiers by name, features as <partner>_<column>)", name);
	if (jc->col->type != POLICY_TYPE_INT)
		return cg_err_set(err, CG_ERR_ARG, "column '%s' is not a number", jc->name);
	if (!jc->col->has_bounds)
		return cg_err_set(err, CG_ERR_POLICY, "column '%s' has no bounds in the policy: it cannot be summed "
		    "(contributions must be bounded)", jc->name);
	*out = jc;
	return 0;
}

int
query_noise_param(unsigned __int128 a, unsigned __int128 c, uint64_t *num, uint64_t *den)
{
	while (a > NOISE_PARAM_MAX || c > NOISE_PARAM_MAX) {
		a = (a + 1) / 2;
		c /= 2;
		if (c == 0)
			return CG_ERR_LIMIT;
	}
	*num = (uint64_t)a;
	*den = (uint64_t)c;
	return a == 0 ? CG_ERR_LIMIT : 0;
}

void
query_plan_free(struct query_plan *p)
{
	size_t d, i;

	if (p == NULL)
		return;
	for (d = 0; d < p->ndims; d++) {
		for (i = 0; i < p->dims[d].nlabels; i++)
			free(p->dims[d].labels[i]);
		free(p->dims[d].labels);
		free(p->dims[d].slot);
	}
	free(p->keys);
	free(p->exact);
	free(p->noisy);
	free(p->released);
	free(p->gslot);
	sodium_memzero(p->hkey, sizeof(p->hkey));
	free(p);
}

int
query_plan_make(const struct query_spec *spec, const struct join *j, struct query_plan **out, struct cg_err *err)
{
	struct join_col cols[JOIN_COLS_MAX];
	struct query_plan *p = NULL;
	size_t ncols, nqi, i, k;
	uint32_t buckets = spec->buckets ? spec->buckets : QUERY_BUCKETS_DEFAULT;
	int pbit, r, has_hist = 0;

	*out = NULL;
	if ((pbit = policy_purpose_bit(spec->pol, spec->purpose)) < 0)
		return cg_err_set(err, CG_ERR_POLICY, "purpose '%.64s' is not in the policy", spec->purpose);
	if (spec->ngroup > QUERY_GROUP_MAX || spec->nmetrics > QUERY_METRIC_MAX || buckets > QUERY_BUCKETS_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "at most %d group columns, %d metrics and %u buckets",
		    QUERY_GROUP_MAX, QUERY_METRIC_MAX, QUERY_BUCKETS_MAX);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	p->spec = spec;
	randombytes_buf(p->hkey, sizeof(p->hkey));
	join_columns(j, pbit, cols, &ncols, &nqi);

	for (i = 0; i < spec->ngroup; i++) {
		const struct join_col *jc = query_col_find(cols, ncols, spec->group_by[i]);
		struct query_dim *d = &p->dims[p->ndims];

		if (jc == NULL) {
			r = cg_err_set(err, CG_ERR_ARG, "no column '%.64s' is shared for purpose '%s' (quasi-identifiers by "
			    "name, features as <partner>_<column>)", spec->group_by[i], spec->purpose);
			goto fail;
		}
		for (k = 0; k < p->ndims; k++)
			if (strcmp(p->dims[k].name, jc->name) == 0) {
				r = cg_err_set(err, CG_ERR_ARG, "column '%s' is grouped by twice", jc->name);
				goto fail;
			}
		if (jc->col->type == POLICY_TYPE_INT && jc->col->role != POLICY_ROLE_QUASI) {
			r = cg_err_set(err, CG_ERR_ARG, "column '%s' is a number: use --metric histogram:%s", jc->name,
			    jc->name);
			goto fail;
		}
		if (jc->col->type == POLICY_TYPE_TIMESTAMP) {
			r = cg_err_set(err, CG_ERR_ARG, "column '%s' cannot be a group key", jc->name);
			goto fail;
		}
		d->jc = *jc;
		snprintf(d->name, sizeof(d->name), "%s", jc->name);
		d->star = QUERY_NONE;
		d->is_public = jc->col->is_public;
		p->ndims++;
	}
	/* The count first; then each bounded column summed once, whatever asks for it. */
	p->nstats = 1;
	p->stats[0].delta = join_sensitivity(1);     /* one person moves up to that many subjects (join.h) */
	for (i = 0; i < spec->nmetrics; i++) {
		const struct query_metric *m = &spec->metrics[i];
		const struct join_col *jc;

		if (m->kind == QUERY_COUNT)
			continue;
		if ((r = query_bounded_column(cols, ncols, m->col, &jc, err)) != 0)
			goto fail;
		if (m->kind == QUERY_HISTOGRAM) {
			struct query_dim *d = &p->dims[p->ndims];
			unsigned __int128 span = (unsigned __int128)(jc->col->hi - jc->col->lo) + 1;

			if (has_hist++ || p->ndims == QUERY_GROUP_MAX + 1) {
				r = cg_err_set(err, CG_ERR_ARG, "one histogram per query");
				goto fail;
			}
			d->jc = *jc;
			d->is_hist = 1;
			d->is_public = 1;      /* ranges of the policy's bounds: nothing from the data */
			d->lo = jc->col->lo;
			d->hi = jc->col->hi;
			d->width = (int64_t)((span + buckets - 1) / buckets);
			d->star = QUERY_NONE;
			snprintf(d->name, sizeof(d->name), "%s_range", jc->name);
			p->ndims++;
			continue;
		}
		for (k = 1; k < p->nstats; k++)
			if (strcmp(p->stats[k].jc.name, jc->name) == 0)
				break;
		if (k == p->nstats) {
			struct query_stat *s = &p->stats[p->nstats++];
			uint64_t alo = jc->col->lo < 0 ? (uint64_t)-jc->col->lo : (uint64_t)jc->col->lo;
			uint64_t ahi = jc->col->hi < 0 ? (uint64_t)-jc->col->hi : (uint64_t)jc->col->hi;

			s->jc = *jc;
			s->lo = jc->col->lo;
			s->hi = jc->col->hi;
			s->delta = alo > ahi ? alo : ahi;
			if (s->delta == 0)
				s->delta = 1;
			s->delta = join_sensitivity(s->delta);   /* times the subjects one person moves (join.h) */
		}
		p->outs[p->nouts].kind = m->kind;
		p->outs[p->nouts].stat = k;
		snprintf(p->outs[p->nouts].name, sizeof(p->outs[p->nouts].name), "%s_%s",
		    m->kind == QUERY_SUM ? "sum" : "mean", jc->name);
		p->nouts++;
	}
	for (i = 0; i < p->ndims; i++)
		if (!p->dims[i].is_public)
			p->partition = 1;
	for (i = 0; i < p->ndims; i++)
		if (p->dims[i].is_public && (r = query_domain(p, &p->dims[i], buckets)) != 0) {
			r = cg_err_set(err, r, "cannot enumerate the keys of '%s'", p->dims[i].name);
			goto fail;
		}
	if (!p->partition && (r = query_groups_enumerate(p, err)) != 0)
		goto fail;
	*out = p;
	return 0;
fail:
	query_plan_free(p);
	return r;
}

/* A subject's label in one dimension. */
static int
query_subject_label(struct query_plan *p, struct query_dim *d, Crossgate__RecordPayload *const pl[2], uint32_t *out)
{
	const struct policy_column *c;
	const Crossgate__Field *f = join_col_field(&d->jc, pl, &c);
	char label[QUERY_LABEL_MAX];
	int r;

	*out = QUERY_NONE;
	if (f == NULL)
		return query_label(p, d, "*", !d->is_public, out);
	if (d->is_hist) {
		int64_t v;
		if (f->value_case != CROSSGATE__FIELD__VALUE_INT_VALUE) {
			*out = d->star;
			return 0;
		}
		v = f->int_value < d->lo ? d->lo : f->int_value > d->hi ? d->hi : f->int_value;
		*out = (uint32_t)(((__int128)v - d->lo) / d->width);
		return 0;
	}
	if (f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE)
		r = c->gen == POLICY_GEN_BAND ? policy_generalize_int(c, f->int_value, label, sizeof(label)) : CG_ERR_ARG;
	else if (c->role == POLICY_ROLE_QUASI)
		r = policy_generalize_str(c, f->str_value, strlen(f->str_value), label, sizeof(label));
	else {
		snprintf(label, sizeof(label), "%s", f->str_value);
		r = 0;
	}
	if (r == CG_ERR_NOMEM)
		return r;
	if (r == 0 && (r = query_label(p, d, label, !d->is_public, out)) != 0)
		return r;
	/* not generalizable, or outside the declared domain: counted under "*", never an error (see query_domain) */
	if (*out == QUERY_NONE)
		return d->is_public ? (*out = d->star, 0) : query_label(p, d, "*", 1, out);
	return 0;
}

int
query_plan_add(struct query_plan *p, Crossgate__RecordPayload *const pl[2], struct cg_err *err)
{
	uint32_t key[QUERY_GROUP_MAX + 1];
	size_t d, s, g;
	int64_t *acc;
	int r;

	for (d = 0; d < p->ndims; d++) {
		if ((r = query_subject_label(p, &p->dims[d], pl, &key[d])) != 0)
			return cg_err_set(err, r == CG_ERR_NOMEM ? r : CG_ERR_INTERNAL, "cannot group a subject");
		if (key[d] == QUERY_NONE)
			return cg_err_set(err, CG_ERR_INTERNAL, "cannot group a subject");
	}
	if ((r = query_group(p, key, p->partition, &g)) != 0)
		return cg_err_set(err, r, "out of memory");
	if (g == SIZE_MAX)
		return cg_err_set(err, CG_ERR_INTERNAL, "a subject's group is outside the enumerated domain");
	acc = &p->exact[g * p->nstats];
	/* One subject, one group, counted once: the bound the noise is calibrated to. */
	if (__builtin_add_overflow(acc[0], 1, &acc[0]))
		return cg_err_set(err, CG_ERR_LIMIT, "count overflow");
	for (s = 1; s < p->nstats; s++) {
		const struct policy_column *c;
		const Crossgate__Field *f = join_col_field(&p->stats[s].jc, pl, &c);
		int64_t v = 0;

		if (f != NULL && f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE)
			v = f->int_value < p->stats[s].lo ? p->stats[s].lo :
			    f->int_value > p->stats[s].hi ? p->stats[s].hi : f->int_value;
		/* Saturate rather than fail: an error here would tell, for free, that the sum is huge. */
		if (__builtin_add_overflow(acc[s], v, &acc[s]))
			acc[s] = v > 0 ? INT64_MAX : INT64_MIN;
	}
	return 0;
}

/* The payload sides the plan's columns are read from: join_each decodes only those. */
static unsigned
query_plan_sides(const struct query_plan *p)
{
	unsigned m = 0;
	size_t i;

	for (i = 0; i < p->ndims; i++)
		m |= join_col_sides(&p->dims[i].jc);
	for (i = 1; i < p->nstats; i++)
		if (p->stats[i].jc.col != NULL)
			m |= join_col_sides(&p->stats[i].jc);
	return m;
}

size_t
query_plan_groups(const struct query_plan *p)
{
	return p->ngroups;
}

size_t
query_plan_stats(const struct query_plan *p)
{
	return p->nstats;
}

int64_t
query_plan_exact(const struct query_plan *p, size_t group, size_t stat)
{
	return group < p->ngroups && stat < p->nstats ? p->exact[group * p->nstats + stat] : 0;
}

int64_t
query_plan_noisy(const struct query_plan *p, size_t group, size_t stat)
{
	return p->noisy != NULL && group < p->ngroups && stat < p->nstats ? p->noisy[group * p->nstats + stat] : 0;
}

int
query_plan_released(const struct query_plan *p, size_t group)
{
	return p->released != NULL && group < p->ngroups && p->released[group];
}

int
query_plan_cost(struct query_plan *p, int64_t *rho_nano, int *partition, double *delta, struct cg_err *err)
{
	const struct query_spec *sp = p->spec;
	uint64_t m = p->nstats;
	size_t s;
	int r;

	*partition = p->partition;
	*delta = 0;
	if (sp->epsilon_nano > QUERY_EPSILON_MAX_NANO)
		return cg_err_set(err, CG_ERR_ARG, "epsilon above %lld is not a privacy guarantee",
		    (long long)(QUERY_EPSILON_MAX_NANO / BUDGET_NANO));
	if (sp->epsilon_nano > 0) {
		*rho_nano = budget_rho_of_epsilon(sp->epsilon_nano);
		/* Laplace scale of stat s: delta_s / (epsilon / m) = delta_s * m * 1e9 / eps_nano */
		for (s = 0; s < p->nstats; s++)
			if ((r = query_noise_param((unsigned __int128)p->stats[s].delta * m * BUDGET_NANO,
			    (unsigned __int128)sp->epsilon_nano, &p->stats[s].num,
			    &p->stats[s].den)) != 0)
				return cg_err_set(err, CG_ERR_LIMIT, "the noise for '%s' would be too large: lower its bounds "
				    "or ask for a larger epsilon", s ? p->stats[s].jc.name : "count");
	} else {
		*rho_nano = sp->rho_nano > 0 ? sp->rho_nano : sp->pol->privacy.query_rho_nano;
		/* Gaussian variance of stat s: delta_s^2 / (2 rho / m) = delta_s^2 * m * 1e9 / (2 rho_nano) */
		for (s = 0; s < p->nstats; s++)
			if ((r = query_noise_param((unsigned __int128)p->stats[s].delta * p->stats[s].delta * m * BUDGET_NANO,
			    (unsigned __int128)2 * (uint64_t)*rho_nano, &p->stats[s].num,
			    &p->stats[s].den)) != 0)
				return cg_err_set(err, CG_ERR_LIMIT, "the noise for '%s' would be too large: lower its bounds "
				    "or ask for a larger rho", s ? p->stats[s].jc.name : "count");
	}
	if (p->partition) {
		/* The chance that one lone subject's key is released: its count 1 plus noise reaches the threshold. */
		double x = (double)sp->pol->privacy.threshold - 1, scale = (double)p->stats[0].num / (double)p->stats[0].den;
		if (sp->epsilon_nano > 0)
			*delta = exp(-x / scale) / (1 + exp(-1 / scale));
		else
			/*
			 * P(Z >= x) for the discrete Gaussian, bounded above by the
			 * continuous tail from x - 1 (its normaliser is at least
			 * sqrt(2 pi sigma^2)): never an underestimate.
			 */
			*delta = 0.5 * erfc((x - 1) / sqrt(2 * scale));
	}
	return 0;
}

int
query_plan_release(struct query_plan *p, struct cg_err *err)
{
	size_t g, s;
	int r;

	free(p->noisy);
	free(p->released);
	p->noisy = NULL;
	p->released = NULL;
	if ((p->noisy = malloc((p->ngroups + 1) * p->nstats * sizeof(*p->noisy))) == NULL ||
	    (p->released = malloc(p->ngroups + 1)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (g = 0; g < p->ngroups; g++) {
		for (s = 0; s < p->nstats; s++) {
			int64_t z, *v = &p->noisy[g * p->nstats + s];

			r = p->spec->epsilon_nano > 0 ? noise_laplace(p->stats[s].num, p->stats[s].den, &z)
						      : noise_gaussian(p->stats[s].num, p->stats[s].den, &z);
			if (r != 0)
				return cg_err_set(err, r, "cannot draw the noise");
			if (__builtin_add_overflow(p->exact[g * p->nstats + s], z, v))
				*v = z > 0 ? INT64_MAX : INT64_MIN;
		}
		p->released[g] = p->noisy[g * p->nstats] >= (int64_t)p->spec->pol->privacy.threshold;
	}
	return 0;
}

/* ---- files ---- */

static void
query_csv_cell(FILE *f, const char *s)
{
	char buf[2 * QUERY_LABEL_MAX + 3];
	size_t n = strlen(s);

	if (n > QUERY_LABEL_MAX)
		n = QUERY_LABEL_MAX;
	fwrite(buf, 1, csv_write(buf, sizeof(buf), s, n), f);
}

/* A released group, by its keys joined: the order of rows when the keys come from the data. */
struct query_row {
	char *key;
	size_t g;
};

static int
query_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct query_row *)a)->key, ((const struct query_row *)b)->key);
}

/*
 * The order the groups are written in: the enumeration's, which comes from
 * the policy; or, for keys from the data (met in store order), sorted by key.
 * *order is malloc'd (caller frees); released groups only.
 */
static int
query_row_order(const struct query_plan *p, size_t **order, size_t *n)
{
	struct query_row *rows = NULL;
	size_t g, d, k = 0, i;
	int r = CG_ERR_NOMEM;

	*n = 0;
	if ((*order = malloc((p->ngroups + 1) * sizeof(**order))) == NULL)
		return CG_ERR_NOMEM;
	if (!p->partition) {
		for (g = 0; g < p->ngroups; g++)
			if (p->released[g])
				(*order)[k++] = g;
		*n = k;
		return 0;
	}
	if ((rows = calloc(p->ngroups + 1, sizeof(*rows))) == NULL)
		goto out;
	for (g = 0; g < p->ngroups; g++) {
		size_t len = 1;

		if (!p->released[g])
			continue;
		for (d = 0; d < p->ndims; d++)
			len += strlen(p->dims[d].labels[p->keys[g * p->ndims + d]]) + 1;
		if ((rows[k].key = malloc(len)) == NULL)
			goto out;
		rows[k].key[0] = '\0';
		for (d = 0; d < p->ndims; d++) {
			strcat(rows[k].key, p->dims[d].labels[p->keys[g * p->ndims + d]]);
			strcat(rows[k].key, "\x1f");
		}
		rows[k++].g = g;
	}
	qsort(rows, k, sizeof(*rows), query_row_cmp);
	for (i = 0; i < k; i++)
		(*order)[i] = rows[i].g;
	*n = k;
	r = 0;
out:
	for (i = 0; rows != NULL && i < k; i++)
		free(rows[i].key);
	free(rows);
	if (r != 0) {
		free(*order);
		*order = NULL;
	}
	return r;
}

static int
query_write_csv(const struct query_plan *p, const char *path, struct query_stats *stats, struct cg_err *err)
{
	struct outfile of;
	size_t *order = NULL, n, i, g, d, o;
	FILE *f;
	int r;

	if ((r = query_row_order(p, &order, &n)) != 0)
		return cg_err_set(err, r, "out of memory");
	if ((r = outfile_open(&of, path, 0640, err)) != 0) {
		free(order);
		return r;
	}
	f = of.f;
	for (d = 0; d < p->ndims; d++)
		fprintf(f, "%s,", p->dims[d].name);
	fputs("count", f);
	for (o = 0; o < p->nouts; o++)
		fprintf(f, ",%s", p->outs[o].name);
	fputc('\n', f);
	stats->released = n;
	stats->suppressed = p->ngroups - n;
	for (i = 0; i < n; i++) {
		const int64_t *v;

		g = order[i];
		v = &p->noisy[g * p->nstats];
		for (d = 0; d < p->ndims; d++) {
			query_csv_cell(f, p->dims[d].labels[p->keys[g * p->ndims + d]]);
			fputc(',', f);
		}
		fprintf(f, "%lld", (long long)v[0]);
		for (o = 0; o < p->nouts; o++) {
			if (p->outs[o].kind == QUERY_SUM)
				fprintf(f, ",%lld", (long long)v[p->outs[o].stat]);
			else    /* post-processing of two released values: free */
				fprintf(f, ",%.2f", (double)v[p->outs[o].stat] / (double)v[0]);
		}
		fputc('\n', f);
	}
	free(order);
	return outfile_commit(&of, err);
}

void
query_meta_base(json_t *m, const struct policy *pol, const char *query_id, const char *purpose, const char *analyst,
    const char *dataset, const struct join *j, const char *mechanism, int64_t charged_nano, int64_t remaining_nano,
    uint64_t audit_index)
{
	char hash[65], when[32], num[64];
	time_t now = time(NULL);
	struct tm tm;

	sodium_bin2hex(hash, sizeof(hash), pol->hash, sizeof(pol->hash));
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(m, "query_id", json_string(query_id));
	json_object_set_new(m, "purpose", json_string(purpose));
	json_object_set_new(m, "analyst", json_string(analyst));
	json_object_set_new(m, "dataset", json_string(dataset));
	json_object_set_new(m, "mechanism", json_string(mechanism));
	snprintf(num, sizeof(num), "%.9f", (double)charged_nano / BUDGET_NANO);
	json_object_set_new(m, "rho", json_string(num));
	snprintf(num, sizeof(num), "%.9f", (double)remaining_nano / BUDGET_NANO);
	json_object_set_new(m, "remaining_rho", json_string(num));
	json_object_set_new(m, "policy_hash", json_string(hash));
	json_object_set_new(m, "audit_index", json_integer((json_int_t)audit_index));
	json_object_set_new(m, "created", json_string(when));
	json_object_set_new(m, "left", json_string(j->side[0]->id));
	json_object_set_new(m, "right", json_string(j->side[1]->id));
}

int
query_meta_write(json_t *m, const char *out_path, struct cg_err *err)
{
	struct outfile of = { 0 };
	char *mpath;
	int r;

	if ((mpath = malloc(strlen(out_path) + 16)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	sprintf(mpath, "%s.meta.json", out_path);
	if ((r = outfile_open(&of, mpath, 0640, err)) == 0) {
		if (json_dumpf(m, of.f, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
			r = cg_err_set(err, CG_ERR_IO, "cannot write %s", mpath);
		r = r != 0 ? r : outfile_commit(&of, err);
		outfile_abort(&of);
	}
	free(mpath);
	return r;
}

static int
query_write_meta(const struct query_plan *p, const struct join *j, const struct query_stats *stats,
    const char *dataset, struct cg_err *err)
{
	const struct query_spec *sp = p->spec;
	json_t *m = json_object(), *gb = json_array(), *mt = json_array();
	char num[64];
	size_t i;
	int r = 0;

	if (m == NULL || gb == NULL || mt == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < sp->ngroup; i++)
		json_array_append_new(gb, json_string(sp->group_by[i]));
	for (i = 0; i < sp->nmetrics; i++) {
		const struct query_metric *q = &sp->metrics[i];
		snprintf(num, sizeof(num), "%s%s%.40s", q->kind == QUERY_COUNT ? "count" : q->kind == QUERY_SUM ? "sum" :
		    q->kind == QUERY_MEAN ? "mean" : "histogram", q->col ? ":" : "", q->col ? q->col : "");
		json_array_append_new(mt, json_string(num));
	}
	query_meta_base(m, sp->pol, stats->query_id, sp->purpose, sp->analyst->name, dataset, j,
	    sp->epsilon_nano > 0 ? "discrete-laplace" : "discrete-gaussian", stats->charged_nano,
	    stats->remaining_nano, stats->audit_index);
	json_object_set_new(m, "group_by", gb);
	gb = NULL;
	json_object_set_new(m, "metrics", mt);
	mt = NULL;
	if (sp->epsilon_nano > 0) {
		snprintf(num, sizeof(num), "%.9f", (double)sp->epsilon_nano / BUDGET_NANO);
		json_object_set_new(m, "epsilon", json_string(num));
	}
	json_object_set_new(m, "threshold", json_integer(sp->pol->privacy.threshold));
	json_object_set_new(m, "released", json_integer((json_int_t)stats->released));
	if (!stats->partition_selection) {
		/* the declared domain's size, and what of it was withheld: nothing from the data */
		json_object_set_new(m, "groups", json_integer((json_int_t)stats->groups));
		json_object_set_new(m, "suppressed", json_integer((json_int_t)stats->suppressed));
	}
	json_object_set_new(m, "partition_selection", json_boolean(stats->partition_selection));
	json_object_set_new(m, "delta", json_real(stats->delta));
	r = query_meta_write(m, sp->out_path, err);
out:
	json_decref(m);
	json_decref(gb);
	json_decref(mt);
	return r;
}

int
query_audit_event(struct audit *a, const struct policy *pol, const char *analyst, const char *action,
    const char *purpose, const char *outcome, const char *reason, const unsigned char qid[16],
    const char *const *names, const uint64_t *vals, size_t n, uint64_t *seq, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[QUERY_AUDIT_COUNTS_MAX], *cep[QUERY_AUDIT_COUNTS_MAX];
	size_t i;
	int r;

	if (n > QUERY_AUDIT_COUNTS_MAX)
		return cg_err_set(err, CG_ERR_INTERNAL, "too many audit counts");
	crossgate__audit_event__init(&ev);
	ev.actor = (char *)(analyst != NULL ? analyst : "analyst");
	ev.action = (char *)action;
	ev.outcome = (char *)outcome;
	ev.reason = (char *)(reason ? reason : "");
	ev.purpose = (char *)purpose;
	ev.policy_hash.data = (uint8_t *)pol->hash;
	ev.policy_hash.len = sizeof(pol->hash);
	ev.batch_id.data = (uint8_t *)qid;
	ev.batch_id.len = 16;
	for (i = 0; i < n; i++) {
		crossgate__audit_event__counts_entry__init(&ce[i]);
		ce[i].key = (char *)names[i];
		ce[i].value = vals[i];
		cep[i] = &ce[i];
	}
	ev.counts = cep;
	ev.n_counts = n;
	if ((r = audit_log(a, &ev, err)) == 0 && seq != NULL)
		*seq = ev.seq;
	return r;
}

static int
query_log(struct audit *a, const struct query_spec *sp, const struct query_stats *stats, const char *outcome,
    const char *reason, const unsigned char *qid, uint64_t *seq, struct cg_err *err)
{
	static const char *const names[4] = { "groups", "released", "suppressed", "rho_nano" };
	uint64_t vals[4] = { stats->groups, stats->released, stats->suppressed, (uint64_t)stats->charged_nano };

	return query_audit_event(a, sp->pol, sp->analyst != NULL ? sp->analyst->name : NULL, "query", sp->purpose,
	    outcome, reason, qid, names, vals, 4, seq, err);
}

struct query_walk {
	struct query_plan *p;
};

double
query_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
query_collect(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err)
{
	(void)ref;
	return query_plan_add(((struct query_walk *)ctx)->p, pl, err);
}

int
query_run(struct store *st, struct audit *a, const struct query_spec *spec, struct query_stats *stats,
    struct cg_err *err)
{
	const struct policy *pol = spec->pol;
	struct query_plan *p = NULL;
	struct query_walk w;
	struct join j;
	unsigned char qid[16];
	char dataset[80], reason[256];
	uint64_t no_consent = 0;
	const char *fault;
	double t0 = query_clock();
	int pbit, r;

	memset(stats, 0, sizeof(*stats));
	memset(&j, 0, sizeof(j));
	randombytes_buf(qid, sizeof(qid));
	sodium_bin2hex(stats->query_id, sizeof(stats->query_id), qid, sizeof(qid));
	if ((pbit = policy_purpose_bit(pol, spec->purpose)) < 0)
		return cg_err_set(err, CG_ERR_POLICY, "purpose '%.64s' is not in the policy", spec->purpose);
	if (spec->analyst == NULL || !policy_principal_may_export(pol, spec->analyst, spec->purpose)) {
		if ((r = query_log(a, spec, stats, "refused", "the analyst does not hold the purpose", qid, NULL, err)) != 0)
			return r;
		return cg_err_set(err, CG_ERR_POLICY, "analyst '%s' may not query for purpose '%s' (its policy purposes)",
		    spec->analyst ? spec->analyst->name : "?", spec->purpose);
	}
	if ((r = join_run_open(st, pol, spec->storage, spec->left, spec->right, &j, err)) != 0)
		goto out;
	join_dataset(&j, dataset, sizeof(dataset));
	stats->join_seconds = query_clock() - t0;
	if ((r = query_plan_make(spec, &j, &p, err)) != 0 ||
	    (r = query_plan_cost(p, &stats->charged_nano, &stats->partition_selection, &stats->delta, err)) != 0)
		goto out;
	if (stats->partition_selection && stats->delta > pol->privacy.partition_delta) {
		snprintf(reason, sizeof(reason), "group keys from the data: delta %.3g above the policy's %.3g",
		    stats->delta, pol->privacy.partition_delta);
		if ((r = query_log(a, spec, stats, "refused", reason, qid, NULL, err)) != 0)
			goto out;
		r = cg_err_set(err, CG_ERR_POLICY, "query refused: some group keys are not public in the policy, and with "
		    "this rho and threshold %u a single subject's key would be released with probability %.3g, above "
		    "the policy's partition_delta %.3g; ask for a larger rho, or group by public columns",
		    pol->privacy.threshold, stats->delta, pol->privacy.partition_delta);
		goto out;
	}
	/*
	 * The charge is committed before the subjects are even read: no answer,
	 * and no error that depends on the data, without it; and no refunds.
	 */
	t0 = query_clock();
	if ((r = budget_charge(st, a, spec->analyst->name, dataset, stats->charged_nano,
	    policy_principal_budget(pol, spec->analyst), spec->purpose, &stats->remaining_nano, err)) != 0)
		goto out;
	if ((fault = getenv("CROSSGATE_FAULT")) != NULL && strcmp(fault, "after-charge") == 0)
		_exit(70);
	stats->release_seconds = query_clock() - t0;
	w.p = p;
	t0 = query_clock();
	if ((r = join_each(st, spec->storage, &j, pbit, query_plan_sides(p), query_collect, &w, &no_consent,
	    err)) != 0)
		goto out;
	stats->collect_seconds = query_clock() - t0;
	t0 = query_clock();
	stats->groups = query_plan_groups(p);
	if ((r = query_plan_release(p, err)) != 0 || (r = query_write_csv(p, spec->out_path, stats, err)) != 0)
		goto out;
	/*
	 * Keys from the data: how many there were, and so how many were withheld,
	 * is an exact count (one new key tells one new subject).  Only the
	 * released groups are told, anywhere.
	 */
	if (stats->partition_selection) {
		stats->groups = stats->released;
		stats->suppressed = 0;
	}
	if ((r = query_log(a, spec, stats, "ok", NULL, qid, &stats->audit_index, err)) != 0)
		goto out;
	r = query_write_meta(p, &j, stats, dataset, err);
	stats->release_seconds += query_clock() - t0;
out:
	query_plan_free(p);
	join_free(&j);
	return r;
}
