/*
 * test_model.c - DP model statistics (gateway/model.h) and the analytics
 * fit on them (analytics/dpmodel.h), apart from the network:
 *
 *  - sensitivity: one subject with extreme values (beyond the bounds, at
 *    INT64 limits, missing a column) moves no released ridge entry, before
 *    noise, by more than (F/2)^2, and the whole vector by no more than the
 *    L2 sensitivity charged;
 *  - refusals before anything is charged, with their messages: unknown
 *    columns, columns without bounds, a budget that does not fit (the
 *    ledger is unchanged afterwards);
 *  - the noise has the published spread (ridge entries; k-means counts);
 *  - a differencing attack on neighbouring datasets does no better than the
 *    rho charged allows, and would be caught at half the noise;
 *  - coverage with power: over many redraws of the noise on one dataset
 *    drawn like the demo's, the 95% intervals cover the planted
 *    coefficients at least 90% of the time and alpha, beta are within 10%
 *    at least 80% of the time -- while the same intervals built without the
 *    DP noise (a deliberately wrong interval) cover far less: the check can
 *    fail;
 *  - DP k-means finds the planted shares within 3 points.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "analytics/dpmodel.h"
#include "gateway/budget.h"
#include "gateway/model.h"

static struct policy *pol;
static struct join jw;

static const char policy_fmt[] =
    "version: 1\n"
    "name: model-test\n"
    "default_phone_country: CN\n"
    "purposes: [match, analytics]\n"
    "partners:\n"
    "  - id: k\n"
    "    name: K\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: spend, type: int, role: feature, bounds: [0, 200000]}\n"
    "      - {name: learn, type: int, role: feature, bounds: [0, 12000]}\n"
    "      - {name: conv, type: int, role: feature, bounds: [0, 300000]}\n"
    "      - {name: raw, type: int, role: feature}\n"
    "      - {name: neg, type: int, role: feature, bounds: [-10, 10]}\n"
    "  - id: g\n"
    "    name: G\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: watch, type: int, role: feature, bounds: [0, 20000]}\n"
    "      - {name: streams, type: int, role: feature, bounds: [0, 1000]}\n"
    "privacy: {threshold: 20, query_rho: 0.5, budget_rho: 1.0}\n"
    "principals:\n"
    "  - {name: analyst, role: analyst, identity: \"crossgate:analyst:a\", purposes: [analytics]}\n";

/* One subject's payloads; a value of MISSING leaves the field out. */
#define MISSING INT64_C(-0x7fffffffffff)
struct subject {
	Crossgate__Field f[2][6], *fp[2][6];
	Crossgate__RecordPayload pl[2];
	Crossgate__RecordPayload *pp[2];
};

static void
field_int(struct subject *s, int side, const char *name, int64_t v)
{
	Crossgate__RecordPayload *p = &s->pl[side];
	Crossgate__Field *f = &s->f[side][p->n_fields];

	if (v == MISSING)
		return;
	crossgate__field__init(f);
	f->name = (char *)name;
	f->value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
	f->int_value = v;
	s->fp[side][p->n_fields++] = f;
}

static void
subject_make(struct subject *s, int64_t spend, int64_t learn, int64_t conv, int64_t watch, int64_t streams)
{
	memset(s, 0, sizeof(*s));
	crossgate__record_payload__init(&s->pl[0]);
	crossgate__record_payload__init(&s->pl[1]);
	s->pl[0].fields = s->fp[0];
	s->pl[1].fields = s->fp[1];
	field_int(s, 0, "spend", spend);
	field_int(s, 0, "learn", learn);
	field_int(s, 0, "conv", conv);
	field_int(s, 1, "watch", watch);
	field_int(s, 1, "streams", streams);
	s->pp[0] = &s->pl[0];
	s->pp[1] = &s->pl[1];
}

static void
add(struct model_plan *p, int64_t spend, int64_t learn, int64_t conv, int64_t watch, int64_t streams)
{
	struct subject s;
	struct cg_err err;

	subject_make(&s, spend, learn, conv, watch, streams);
	CHECK_EQ_INT(model_plan_add(p, s.pp, &err), 0);
}

static void
ridge_spec(struct model_spec *m, int64_t rho_nano)
{
	memset(m, 0, sizeof(*m));
	m->pol = pol;
	m->purpose = "analytics";
	m->analyst = policy_principal_by_name(pol, "analyst");
	m->kind = MODEL_RIDGE;
	m->cols[m->ncols++] = "k_spend";
	m->cols[m->ncols++] = "k_learn";
	m->cols[m->ncols++] = "g_watch";
	m->y = "k_conv";
	m->rho_nano = rho_nano;
}

/* ---- a demo-like population (synth.h's planted structure, simplified) ---- */

static uint64_t rng_state = 12345;

static double
unif(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static double
normal(void)
{
	return sqrt(-2 * log(1 - unif())) * cos(2 * M_PI * unif());
}

/* One person: segment 0 learners (35%), 1 gamers (40%), 2 all-round (25%). */
static void
person(int64_t v[5], int *seg)
{
	static const double learn_med[3] = { 2400, 150, 2400 }, watch_med[3] = { 250, 4000, 4000 };
	static const double streams_med[3] = { 4, 40, 12 };
	double u = unif(), learn, watch, spend, conv;
	int s = u < 0.35 ? 0 : u < 0.75 ? 1 : 2;

	learn = round(learn_med[s] * exp(0.5 * normal()));
	watch = round(watch_med[s] * exp(0.5 * normal()));
	spend = unif() < 0.1 ? 0 : round((8 * learn + 100) * exp(0.6 * normal()));
	conv = 0.3 * spend + 20 * learn + 5 * watch + 1500 * normal();
	v[0] = (int64_t)spend;
	v[1] = (int64_t)learn;
	v[2] = (int64_t)(conv < 0 ? 0 : round(conv));
	v[3] = (int64_t)watch;
	v[4] = (int64_t)round(streams_med[s] * exp(0.5 * normal()));
	*seg = s;
}

/* ---- sensitivity ---- */

static void
test_ridge_sensitivity(void)
{
	static const int64_t ext[][5] = {
		{ INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, 0 },
		{ INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN, 0 },
		{ 200000, 0, 300000, 0, 0 },
		{ 0, 12000, 0, 20000, 0 },
		{ -5, 999999, -1, 1 << 30, 0 },
		{ 200000, 12000, 300000, 20000, 0 },
		{ 0, 0, 0, 0, 0 },
	};
	struct model_spec m;
	struct model_plan *p = NULL;
	struct cg_err err;
	int64_t before[64];
	double bound = (double)MODEL_FIX * MODEL_FIX / 4, l2, worst = 0;
	size_t i, e, n;

	ridge_spec(&m, BUDGET_NANO / 2);
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), 0);
	if (p == NULL)
		return;
	CHECK_EQ_INT(model_plan_cost(p, &(int64_t){ 0 }, &err), 0);
	n = model_plan_entries(p);
	CHECK_EQ_INT(n, 15);       /* (3 + 2)(3 + 3) / 2 */
	CHECK(fabs(model_plan_sensitivity(p) - sqrt(15.0) * bound) < 1e-6 * bound);
	for (i = 0; i < 300; i++) {
		int64_t x[5];
		int s;
		person(x, &s);
		add(p, x[0], x[1], x[2], x[3], x[4]);
	}
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]) + 1; i++) {
		for (e = 0; e < n; e++)
			before[e] = model_plan_exact(p, e);
		if (i < sizeof(ext) / sizeof(ext[0]))
			add(p, ext[i][0], ext[i][1], ext[i][2], ext[i][3], ext[i][4]);
		else
			add(p, 5, 5, MISSING, 5, 5);      /* lacks the target: adds nothing at all */
		l2 = 0;
		for (e = 0; e < n; e++) {
			double d = fabs((double)(model_plan_exact(p, e) - before[e]));
			if (d > worst)
				worst = d;
			l2 += d * d;
			if (i == sizeof(ext) / sizeof(ext[0]))
				CHECK_EQ_INT(model_plan_exact(p, e), before[e]);
		}
		CHECK(sqrt(l2) <= model_plan_sensitivity(p) * (1 + 1e-12));
	}
	CHECK(worst <= bound);
	CHECK(worst == bound);     /* the bound is reached: it is the tight one (a subject at a corner of the box) */
	/* the count entry moves by exactly (F/2)^2 per subject */
	for (e = 0; e < n; e++)
		before[e] = model_plan_exact(p, e);
	add(p, 1, 1, 1, 1, 1);
	CHECK_EQ_INT(model_plan_exact(p, 0) - before[0], (int64_t)bound);
	model_plan_free(p);
}

/*
 * The differencing attack on the ridge release: neighbouring datasets, with
 * and without one subject at a corner of the bounds (its entries all move by
 * (F/2)^2: the whole sensitivity).  The attacker projects the noisy release
 * on the known difference and guesses "with" above the midpoint: the best
 * test there is against Gaussian noise, right with probability
 * Phi(sqrt(2 rho) / 2) at the rho charged.  Measured over 3,000 releases of
 * each dataset, it must do no better (+ 3 standard errors); against noise of
 * half the charged scale (a sensitivity understated by 2) the same attack is
 * far above the bound, so the check has the power to catch it.
 */
static void
test_ridge_differencing(void)
{
	struct model_spec m;
	struct model_plan *with = NULL, *without = NULL;
	struct cg_err err;
	const size_t draws = 3000;
	double diff[64], norm = 0, sd, right = 0, right_half = 0, bound, se;
	size_t i, e, n;
	int64_t rho;
	uint64_t saved = rng_state;       /* the later tests' populations stay what they were */

	ridge_spec(&m, BUDGET_NANO / 2);
	CHECK_EQ_INT(model_plan_make(&m, &jw, &with, &err), 0);
	CHECK_EQ_INT(model_plan_make(&m, &jw, &without, &err), 0);
	if (with == NULL || without == NULL)
		goto out;
	CHECK_EQ_INT(model_plan_cost(with, &rho, &err), 0);
	CHECK_EQ_INT(model_plan_cost(without, &rho, &err), 0);
	rng_state = 777;
	for (i = 0; i < 200; i++) {
		int64_t x[5];
		int sg;
		person(x, &sg);
		add(with, x[0], x[1], x[2], x[3], x[4]);
		add(without, x[0], x[1], x[2], x[3], x[4]);
	}
	add(with, 200000, 12000, 300000, 20000, 0);
	n = model_plan_entries(with);
	for (e = 0; e < n; e++) {
		diff[e] = (double)(model_plan_exact(with, e) - model_plan_exact(without, e));
		norm += diff[e] * diff[e];
	}
	norm = sqrt(norm);
	CHECK(fabs(norm - model_plan_sensitivity(with)) < 1e-6 * norm);   /* the worst neighbour */
	sd = model_plan_noise_sd(with);
	for (i = 0; i < 2 * draws; i++) {
		struct model_plan *p = i % 2 ? with : without;
		double t = 0, th = 0;

		CHECK_EQ_INT(model_plan_release(p, &err), 0);
		for (e = 0; e < n; e++) {
			double noise = (double)(model_plan_noisy(p, e) - model_plan_exact(p, e));
			/* the statistic, from the release and the public neighbour */
			t += ((double)model_plan_noisy(p, e) - (double)model_plan_exact(without, e)) * diff[e] / norm;
			/* the same attack against half the noise (the release had it been calibrated to half the sensitivity) */
			th += ((double)(model_plan_exact(p, e) - model_plan_exact(without, e)) + noise / 2) * diff[e] / norm;
		}
		right += (t > norm / 2) == (i % 2 == 1);
		right_half += (th > norm / 2) == (i % 2 == 1);
	}
	right /= 2.0 * draws;
	right_half /= 2.0 * draws;
	bound = 0.5 * erfc(-(norm / sd / 2) / sqrt(2.0));     /* Phi(Delta / (2 sigma)) */
	se = sqrt(bound * (1 - bound) / (2.0 * draws));
	printf("differencing on the ridge release: attacker right %.3f (bound %.3f at rho 0.5); against half the noise "
	    "%.3f\n", right, bound, right_half);
	CHECK(fabs(bound - 0.5 * erfc(-(sqrt(2 * 0.5) / 2) / sqrt(2.0))) < 1e-3);
	CHECK(right <= bound + 3 * se);
	CHECK(right_half > bound + 3 * se);
out:
	rng_state = saved;
	model_plan_free(with);
	model_plan_free(without);
}

/* ---- refusals ---- */

static void
test_refusals(struct world *w)
{
	struct model_spec m;
	struct model_plan *p = NULL;
	struct model_stats st;
	struct cg_err err;
	int64_t spent = -1;

	ridge_spec(&m, 0);
	m.cols[1] = "k_nope";
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "no column 'k_nope' is shared");
	ridge_spec(&m, 0);
	m.cols[2] = "k_raw";
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "column 'k_raw' has no bounds in the policy");
	ridge_spec(&m, 0);
	m.cols[2] = "k_spend";
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "column 'k_spend' is named twice");
	ridge_spec(&m, 0);
	m.y = NULL;
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "needs a target column");
	memset(&m, 0, sizeof(m));
	m.pol = pol;
	m.purpose = "analytics";
	m.kind = MODEL_KMEANS;
	m.cols[m.ncols++] = "k_learn";
	m.k = 3;
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "k-means needs k in 1..16 and steps in 1..50");
	m.steps = 5;
	m.log1p = 1;
	m.cols[0] = "k_neg";
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "negative bounds: no log1p");
	CHECK(p == NULL);

	/* Through the store: refused before the charge, the ledger unchanged. */
	ridge_spec(&m, 0);
	m.cols[2] = "k_raw";
	m.out_path = "/nonexistent/never-written.csv";
	m.storage = w->storage;
	CHECK_EQ_INT(model_run(w->st, w->au, &m, &st, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "has no bounds");
	CHECK_EQ_INT(budget_spent(w->st, "analyst", "g+k", &spent, &err), 0);
	CHECK_EQ_INT(spent, 0);
	ridge_spec(&m, 3 * BUDGET_NANO / 2);        /* 1.5 of a 1.0 budget */
	m.out_path = "/nonexistent/never-written.csv";
	m.storage = w->storage;
	CHECK_EQ_INT(model_run(w->st, w->au, &m, &st, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "exhausted: the query needs rho 1.500000000, 1.000000000 of 1.000000000 remains");
	CHECK_EQ_INT(budget_spent(w->st, "analyst", "g+k", &spent, &err), 0);
	CHECK_EQ_INT(spent, 0);
	/* a tiny rho: the noise cannot be sampled, refused before the charge */
	ridge_spec(&m, 1);
	m.out_path = "/nonexistent/never-written.csv";
	m.storage = w->storage;
	CHECK_EQ_INT(model_run(w->st, w->au, &m, &st, &err), CG_ERR_LIMIT);
	CHECK_CONTAINS(err.msg, "would be too large: ask for a larger rho");
	CHECK_EQ_INT(budget_spent(w->st, "analyst", "g+k", &spent, &err), 0);
	CHECK_EQ_INT(spent, 0);
}

/* ---- the fit: noise spread, coverage with power ---- */

/* The release as the analytics core reads it from the files: S / F^2 and its noise. */
static void
release_of(const struct model_plan *p, struct dpmodel_ridge_release *r)
{
	static const char *const names[4] = { "k_spend", "k_learn", "g_watch", "k_conv" };
	static const double lo[4] = { 0, 0, 0, 0 }, hi[4] = { 200000, 12000, 20000, 300000 };
	const double f2 = (double)MODEL_FIX * MODEL_FIX;
	size_t a, b, e, i;

	memset(r, 0, sizeof(*r));
	r->p = 3;
	for (i = 0; i < 4; i++) {
		snprintf(r->names[i], sizeof(r->names[i]), "%s", names[i]);
		r->lo[i] = lo[i];
		r->hi[i] = hi[i];
	}
	for (a = 0, e = 0; a < 5; a++)
		for (b = a; b < 5; b++, e++)
			r->s[a][b] = r->s[b][a] = (double)model_plan_noisy(p, e) / f2;
	r->noise_sd = model_plan_noise_sd(p) / f2;
	r->rho = 0.7;
}

static void
test_ridge_noise_and_coverage(void)
{
	static const double planted[3] = { 0.3, 20, 5 };
	struct model_spec m;
	struct model_plan *p = NULL;
	struct dpmodel_ridge_release rel;
	struct dpmodel_ridge_fit fit, wrong;
	struct cg_err err;
	const size_t draws = 400, people = 8000;
	size_t i, e, c, cover[3] = { 0 }, cover_wrong[3] = { 0 }, within = 0;
	double ss = 0, sd;
	int64_t rho;

	ridge_spec(&m, 7 * BUDGET_NANO / 10);
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), 0);
	if (p == NULL)
		return;
	CHECK_EQ_INT(model_plan_cost(p, &rho, &err), 0);
	CHECK_EQ_INT(rho, 7 * BUDGET_NANO / 10);
	/* sigma^2 = Delta_2^2 / (2 rho), rounded up (never less noise) by a hair */
	sd = model_plan_sensitivity(p) / sqrt(2 * 0.7);
	CHECK(model_plan_noise_sd(p) >= sd * (1 - 1e-12) && model_plan_noise_sd(p) < sd * (1 + 1e-3));
	for (i = 0; i < people; i++) {
		int64_t x[5];
		int s;
		person(x, &s);
		add(p, x[0], x[1], x[2], x[3], x[4]);
	}
	for (i = 0; i < draws; i++) {
		CHECK_EQ_INT(model_plan_release(p, &err), 0);
		for (e = 0; e < model_plan_entries(p); e++) {
			double d = (double)(model_plan_noisy(p, e) - model_plan_exact(p, e));
			ss += d * d;
		}
		release_of(p, &rel);
		if (dpmodel_ridge_fit(&rel, 400, i + 1, 1, &fit, &err) != 0 ||
		    dpmodel_ridge_fit(&rel, 400, i + 1, 0, &wrong, &err) != 0) {
			CHECK(!"fit");
			break;
		}
		for (c = 0; c < 3; c++) {
			cover[c] += fit.lo95[c] <= planted[c] && planted[c] <= fit.hi95[c];
			cover_wrong[c] += wrong.lo95[c] <= planted[c] && planted[c] <= wrong.hi95[c];
		}
		within += fabs(fit.coef[1] / 20 - 1) <= 0.1 && fabs(fit.coef[2] / 5 - 1) <= 0.1;
	}
	/* the spread of the noise: 6000 draws, the sd within 5% of the published one (its sampling sd is ~0.9%) */
	sd = sqrt(ss / (double)(draws * model_plan_entries(p)));
	CHECK(fabs(sd / model_plan_noise_sd(p) - 1) < 0.05);
	printf("ridge over %zu noise draws: coverage gamma %zu, alpha %zu, beta %zu; without the DP noise %zu, %zu, %zu; "
	    "alpha and beta within 10%%: %zu\n", draws, cover[0], cover[1], cover[2], cover_wrong[0], cover_wrong[1],
	    cover_wrong[2], within);
	for (c = 0; c < 3; c++) {
		/* a 95% interval covers >= 90% of 400 (one that really covers 94% misses that with chance < 0.1%) */
		CHECK(cover[c] >= draws * 9 / 10);
		/* the deliberately wrong interval is caught by the same check */
		CHECK(cover_wrong[c] < draws * 9 / 10);
	}
	CHECK(within >= draws * 8 / 10);
	model_plan_free(p);
}

/* ---- k-means ---- */

static void
test_kmeans(void)
{
	static const double planted[3] = { 0.35, 0.40, 0.25 };
	struct model_spec m;
	struct model_plan *p = NULL;
	struct cg_err err;
	const size_t people = 8000, draws = 100;
	double total, sum = 0, ss = 0, count, centre[MODEL_COLS_MAX], worst = 0;
	size_t i, c, j;
	int64_t rho;

	memset(&m, 0, sizeof(m));
	m.pol = pol;
	m.purpose = "analytics";
	m.kind = MODEL_KMEANS;
	m.cols[m.ncols++] = "k_learn";
	m.cols[m.ncols++] = "g_watch";
	m.cols[m.ncols++] = "g_streams";
	m.k = 3;
	m.steps = 5;
	m.log1p = 1;
	m.seed = 1;
	m.rho_nano = 15 * BUDGET_NANO / 100;
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), 0);
	if (p == NULL)
		return;
	CHECK_EQ_INT(model_plan_cost(p, &rho, &err), 0);
	for (i = 0; i < people; i++) {
		int64_t x[5];
		int s;
		person(x, &s);
		add(p, x[0], x[1], x[2], x[3], x[4]);
	}
	for (i = 0; i < draws; i++) {
		double share[3] = { 0 };
		CHECK_EQ_INT(model_plan_release(p, &err), 0);
		total = 0;
		for (c = 0; c < 3; c++) {
			CHECK(model_plan_cluster(p, c, &count, centre));
			total += count;
			/* the planted segment by its centre: learning high and watching low, etc. */
			j = centre[0] > 800 && centre[1] < 1000 ? 0 : centre[0] < 800 ? 1 : 2;
			share[j] += count;
		}
		for (j = 0; j < 3; j++)
			worst = fmax(worst, fabs(share[j] / total - planted[j]));
		/* every subject is in one cluster: the counts' sum is n plus the sum of 3 noises */
		sum += total - (double)people;
		ss += (total - (double)people) * (total - (double)people);
	}
	printf("k-means over %zu noise draws: worst share error %.2f points; count sum sd %.2f (published %.2f x sqrt 3)\n",
	    draws, 100 * worst, sqrt(ss / draws), model_plan_noise_sd(p) / (MODEL_FIX / 2));
	/* sampling of the population itself moves shares by ~0.5 points at n = 8000 */
	CHECK(worst < 0.03);
	/* the count noise has the published spread: sd of the sum sqrt(3) x count sd, within 25% over 100 draws */
	CHECK(fabs(sqrt(ss / draws) / (sqrt(3.0) * model_plan_noise_sd(p) / (MODEL_FIX / 2)) - 1) < 0.25);
	(void)sum;
	model_plan_free(p);
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	char *text;
	size_t cap;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	world_open_store(&w);
	cap = sizeof(policy_fmt) + 2 * KEYFILE_LINE_MAX;
	if ((text = malloc(cap)) == NULL)
		return 1;
	snprintf(text, cap, policy_fmt, w.kline, w.gline);
	if (policy_parse("model-test.yaml", text, strlen(text), &pol, NULL, &err) != 0) {
		fprintf(stderr, "policy: %s\n", err.msg);
		return 1;
	}
	free(text);
	memset(&jw, 0, sizeof(jw));
	jw.side[0] = policy_partner_find(pol, "k");
	jw.side[1] = policy_partner_find(pol, "g");

	test_ridge_sensitivity();
	test_ridge_differencing();
	test_refusals(&w);
	test_ridge_noise_and_coverage();
	test_kmeans();

	policy_free(pol);
	world_free(&w);
	CGT_DONE();
}
