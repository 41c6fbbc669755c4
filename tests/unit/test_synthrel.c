/* test_synthrel.c - the MST synthetic-data mechanism: bins, sensitivity, noise, the tree model. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "gateway/synthrel.h"

/* Columns as the policy would declare them (only what synthrel reads). */
static char *course_values[] = { "programming", "finance", "language", "design", "history", "science", "music" };
static char *game_values[] = { "moba", "fps", "rpg", "strategy", "sports", "casual", "card" };
static struct policy_map_entry region_map[] = { { "CN-BJ", "North" }, { "CN-TJ", "North" }, { "CN-SH", "East" } };

static struct policy_column col_age, col_region, col_course, col_game, col_spend, col_note, col_nobounds;
static struct join_col jc[8];

static void
columns_init(void)
{
	memset(&col_age, 0, sizeof(col_age));
	col_age.name = "age";
	col_age.type = POLICY_TYPE_INT;
	col_age.role = POLICY_ROLE_QUASI;
	col_age.gen = POLICY_GEN_BAND;
	col_age.has_min = col_age.has_max = 1;
	col_age.min = 13;
	col_age.max = 120;
	col_age.bands[0] = col_age.band = 10;
	col_age.bands[1] = 20;
	col_age.nbands = 2;
	memset(&col_region, 0, sizeof(col_region));
	col_region.name = "region";
	col_region.type = POLICY_TYPE_STRING;
	col_region.role = POLICY_ROLE_QUASI;
	col_region.gen = POLICY_GEN_MAP;
	col_region.map = region_map;
	col_region.nmap = 3;
	col_region.other = "Other";
	memset(&col_course, 0, sizeof(col_course));
	col_course.name = "top_course_category";
	col_course.type = POLICY_TYPE_CATEGORY;
	col_course.role = POLICY_ROLE_FEATURE;
	col_course.values = course_values;
	col_course.nvalues = 7;
	col_game = col_course;
	col_game.name = "top_game_category";
	col_game.values = game_values;
	memset(&col_spend, 0, sizeof(col_spend));
	col_spend.name = "course_spend_cents";
	col_spend.type = POLICY_TYPE_INT;
	col_spend.role = POLICY_ROLE_FEATURE;
	col_spend.has_bounds = 1;
	col_spend.lo = 0;
	col_spend.hi = 500000;
	memset(&col_note, 0, sizeof(col_note));
	col_note.name = "coupon_code";
	col_note.type = POLICY_TYPE_STRING;
	col_note.role = POLICY_ROLE_FEATURE;
	col_nobounds = col_spend;
	col_nobounds.name = "watch_minutes";
	col_nobounds.has_bounds = 0;
	memset(jc, 0, sizeof(jc));
	jc[0].col = &col_age;
	snprintf(jc[0].name, sizeof(jc[0].name), "age");
	jc[1].col = &col_region;
	snprintf(jc[1].name, sizeof(jc[1].name), "region");
	jc[2].col = &col_course;
	snprintf(jc[2].name, sizeof(jc[2].name), "k_top_course_category");
	jc[3].col = &col_spend;
	snprintf(jc[3].name, sizeof(jc[3].name), "k_course_spend_cents");
	jc[4].col = &col_game;
	jc[4].side = 1;
	snprintf(jc[4].name, sizeof(jc[4].name), "g_top_game_category");
	jc[5].col = &col_note;
	snprintf(jc[5].name, sizeof(jc[5].name), "k_coupon_code");
	jc[6].col = &col_nobounds;
	jc[6].side = 1;
	snprintf(jc[6].name, sizeof(jc[6].name), "g_watch_minutes");
}

static void
test_schema(void)
{
	struct synthrel_schema *s = NULL;
	struct cg_err err;
	struct policy_column wide;
	struct join_col wjc;

	CHECK_EQ_INT(synthrel_schema_make(jc, 6, 0, &s, &err), 0);
	if (s == NULL)
		return;
	CHECK_EQ_INT(s->ncols, 5);                 /* the free string has no domain */
	CHECK_EQ_INT(s->nomitted, 1);
	CHECK_STR(s->omitted[0], "k_coupon_code");
	/* age: bands of 10 between 13 and 120 (10-19 .. 120-129), then '*' */
	CHECK_EQ_INT(s->cols[0].nbins, 13);
	CHECK_STR(s->cols[0].labels[0], "10-19");
	CHECK_STR(s->cols[0].labels[11], "120-129");
	CHECK_STR(s->cols[0].labels[12], "*");
	/* region: the map's groups once each, then other, then '*' */
	CHECK_EQ_INT(s->cols[1].nbins, 4);
	CHECK_STR(s->cols[1].labels[0], "North");
	CHECK_STR(s->cols[1].labels[1], "East");
	CHECK_STR(s->cols[1].labels[2], "Other");
	CHECK_EQ_INT(s->cols[2].nbins, 8);
	CHECK_STR(s->cols[2].labels[0], "programming");
	/* spend: [0, 500000] in 10 bins of 50000, the last running to 500000 */
	CHECK_EQ_INT(s->cols[3].nbins, 11);
	CHECK_STR(s->cols[3].labels[0], "0-49999");
	CHECK_STR(s->cols[3].labels[9], "450000-500000");
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[3], 0, 1, 0, NULL), 0);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[3], 0, 1, 49999, NULL), 0);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[3], 0, 1, 50000, NULL), 1);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[3], 0, 1, 500000, NULL), 9);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[3], 0, 1, 500001, NULL), 10);   /* outside the bounds: '*' */
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[3], 0, 1, -1, NULL), 10);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[3], 1, 0, 0, NULL), 10);        /* missing: '*' */
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[0], 0, 1, 13, NULL), 0);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[0], 0, 1, 120, NULL), 11);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[1], 0, 0, 0, "CN-TJ"), 0);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[1], 0, 0, 0, "CN-SH"), 1);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[1], 0, 0, 0, "XX-YY"), 2);      /* the map's other */
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[2], 0, 0, 0, "music"), 6);
	CHECK_EQ_INT(synthrel_bin_of(&s->cols[2], 0, 0, 0, "cooking"), 7);
	synthrel_schema_free(s);
	s = NULL;

	/* a narrow range: one value per bin, labelled as the plain integer */
	col_spend.hi = 4;
	CHECK_EQ_INT(synthrel_schema_make(&jc[3], 1, 10, &s, &err), 0);
	if (s != NULL) {
		CHECK_EQ_INT(s->cols[0].nbins, 6);
		CHECK_STR(s->cols[0].labels[0], "0");
		CHECK_STR(s->cols[0].labels[4], "4");
	}
	synthrel_schema_free(s);
	s = NULL;
	col_spend.hi = 500000;

	/* refusals name the column and what it lacks */
	CHECK_EQ_INT(synthrel_schema_make(jc, 7, 0, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "column 'g_watch_minutes' has no bounds in the policy");
	CHECK(s == NULL);
	col_age.has_max = 0;
	CHECK_EQ_INT(synthrel_schema_make(jc, 1, 0, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "quasi-identifier 'age' has no min and max");
	col_age.has_max = 1;
	CHECK_EQ_INT(synthrel_schema_make(jc, 5, 1, &s, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "bins must be between 2 and 100");
	CHECK_EQ_INT(synthrel_schema_make(&jc[5], 1, 0, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "no column of the purpose has a domain");
	/* a band hierarchy too fine for 100 bins climbs to its next level */
	wide = col_age;
	wide.min = 0;
	wide.max = 1999;
	wide.bands[0] = 10;
	wide.bands[1] = 100;
	wjc = jc[0];
	wjc.col = &wide;
	CHECK_EQ_INT(synthrel_schema_make(&wjc, 1, 0, &s, &err), 0);
	if (s != NULL)
		CHECK_STR(s->cols[0].labels[1], "100-199");
	synthrel_schema_free(s);
}

/* A planted world: course programming -> game strategy; age, region and spend independent of them. */
static uint16_t *
planted(const struct synthrel_schema *s, size_t n, double p_strategy)
{
	uint16_t *codes = malloc(n * s->ncols * sizeof(*codes));
	size_t r;

	if (codes == NULL)
		abort();
	for (r = 0; r < n; r++) {
		uint16_t *x = codes + r * s->ncols;
		uint32_t course = randombytes_uniform(7);

		x[0] = (uint16_t)randombytes_uniform(7);              /* age 10-19 .. 70-79 */
		x[1] = (uint16_t)randombytes_uniform(3);
		x[2] = (uint16_t)course;
		x[3] = (uint16_t)(randombytes_uniform(100) < 70 ? 0 : randombytes_uniform(10));
		if (course == 0 && randombytes_uniform(1000000) < (uint32_t)(p_strategy * 1e6))
			x[4] = 3;
		else
			x[4] = (uint16_t)randombytes_uniform(7);
	}
	return codes;
}

/* Add/remove one subject: every 1-way and 2-way table moves by exactly 1 in one cell (before noise). */
static void
test_sensitivity(const struct synthrel_schema *s)
{
	size_t n = 500, i, j, k, d = s->ncols;
	uint16_t *codes = planted(s, n, 0.5);
	int64_t *a = calloc(1 << 16, sizeof(*a)), *b = calloc(1 << 16, sizeof(*b));
	int ok1 = 1, ok2 = 1;

	if (a == NULL || b == NULL)
		abort();
	for (i = 0; i < d; i++) {
		int64_t l1 = 0;
		synthrel_marginal1(s, codes, n, i, a);
		synthrel_marginal1(s, codes + d, n - 1, i, b);     /* the first subject removed */
		for (k = 0; k < s->cols[i].nbins; k++)
			l1 += llabs(a[k] - b[k]);
		ok1 &= l1 == 1;
		for (j = i + 1; j < d; j++) {
			synthrel_marginal2(s, codes, n, i, j, a);
			synthrel_marginal2(s, codes + d, n - 1, i, j, b);
			l1 = 0;
			for (k = 0; k < s->cols[i].nbins * s->cols[j].nbins; k++)
				l1 += llabs(a[k] - b[k]);
			ok2 &= l1 == 1;
		}
	}
	CHECK(ok1);
	CHECK(ok2);
	free(a);
	free(b);
	free(codes);
}

static void
test_params(void)
{
	struct synthrel_params p;
	struct cg_err err;

	/* d = 5, rho = 0.3: 0.1 each; 1-way variance 5 / 0.2 = 25, 2-way 4 / 0.2 = 20, eps sqrt(8 * 0.1 / 4) */
	CHECK_EQ_INT(synthrel_params(5, 300000000, &p, &err), 0);
	CHECK(fabs((double)p.var1_num / (double)p.var1_den - 25) < 1e-9);
	CHECK(fabs((double)p.var2_num / (double)p.var2_den - 20) < 1e-9);
	CHECK(fabs(p.eps_round - sqrt(0.2)) < 1e-9 && p.eps_round <= sqrt(0.2));
	/* the three parts never sum above rho: zCDP composes by addition */
	CHECK(p.rho1_nano + p.rho_sel_nano + p.rho2_nano <= 300000000);
	CHECK(p.eps_round * p.eps_round / 8 * 4 <= 0.1 + 1e-15);
	CHECK_EQ_INT(synthrel_params(1, 100000000, &p, &err), 0);
	CHECK(fabs((double)p.var1_num / (double)p.var1_den - 5) < 1e-9);   /* 1 / (2 * 0.1) */
	CHECK_EQ_INT(p.var2_num, 0);
	CHECK_EQ_INT(synthrel_params(5, 0, &p, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "rho must be positive");
}

/*
 * The noise the fit really draws: the estimated number of rows is the
 * inverse-variance mean of every measured table's total, so over many fits
 * its variance must be 1 / sum(1 / (cells_k * v_k)) and its mean n.
 */
static void
test_noise_spread(const struct synthrel_schema *s)
{
	const size_t n = 3000, runs = 300;
	const int64_t rho = 50000000;      /* 0.05 */
	uint16_t *codes = planted(s, n, 0.5);
	struct synthrel_params p;
	struct cg_err err;
	double sum = 0, sq = 0, winv = 0, want, mean, var;
	size_t i, run, ok = 1;

	CHECK_EQ_INT(synthrel_params(s->ncols, rho, &p, &err), 0);
	for (run = 0; run < runs && ok; run++) {
		struct synthrel_model *m = NULL;
		size_t e[SYNTHREL_COLS_MAX][2], ne;

		if (synthrel_fit(s, codes, n, rho, 0, &m, &err) != 0) {
			ok = 0;
			break;
		}
		if (run == 0) {
			ne = synthrel_model_edges(m, e, SYNTHREL_COLS_MAX);
			for (i = 0; i < s->ncols; i++)
				winv += 1 / ((double)s->cols[i].nbins * (double)p.var1_num / (double)p.var1_den);
			for (i = 0; i < ne; i++)
				winv += 1 / ((double)s->cols[e[i][0]].nbins * s->cols[e[i][1]].nbins * (double)p.var2_num /
				    (double)p.var2_den);
		}
		sum += synthrel_model_rows(m);
		sq += synthrel_model_rows(m) * synthrel_model_rows(m);
		synthrel_model_free(m);
	}
	CHECK(ok);
	/* the tree differs run to run, but every tree's edges have cells of similar size: use the first's */
	want = 1 / winv;
	mean = sum / (double)runs;
	var = sq / (double)runs - mean * mean;
	fprintf(stderr, "  noise: rows estimate mean %.1f (n %zu), variance %.1f (calibrated %.1f)\n", mean, n, var, want);
	CHECK(fabs(mean - (double)n) < 5 * sqrt(want / (double)runs));
	CHECK(var > 0.6 * want && var < 1.6 * want);
	free(codes);
}

/*
 * The noise of each measured cell, as the fit draws it: over many fits, the
 * residual (measured - exact) of every 1-way and 2-way cell has mean 0 and
 * the variance the parameters state (d / (2 rho/3) and (d-1) / (2 rho/3)).
 */
static void
test_cell_noise(const struct synthrel_schema *s)
{
	const size_t n = 2000, runs = 150;
	const int64_t rho = 300000000;           /* 0.3: rho/3 = 0.1; variances 25 and 20 for d = 5 */
	uint16_t *codes = planted(s, n, 0.5);
	int64_t *exact = malloc((1u << 16) * sizeof(*exact));
	double s1 = 0, q1 = 0, s2 = 0, q2 = 0, n1 = 0, n2 = 0, v1, v2;
	struct cg_err err;
	size_t run, i, e, k;

	if (exact == NULL)
		abort();
	for (run = 0; run < runs; run++) {
		struct synthrel_model *m = NULL;
		size_t ed[SYNTHREL_COLS_MAX][2], ne;

		if (synthrel_fit(s, codes, n, rho, 0, &m, &err) != 0) {
			CHECK(0);
			break;
		}
		for (i = 0; i < s->ncols; i++) {
			synthrel_marginal1(s, codes, n, i, exact);
			for (k = 0; k < s->cols[i].nbins; k++) {
				double z = synthrel_model_measured(m, 0, i, k) - (double)exact[k];
				s1 += z;
				q1 += z * z;
				n1++;
			}
		}
		ne = synthrel_model_edges(m, ed, SYNTHREL_COLS_MAX);
		for (e = 0; e < ne; e++) {
			synthrel_marginal2(s, codes, n, ed[e][0], ed[e][1], exact);
			for (k = 0; k < s->cols[ed[e][0]].nbins * s->cols[ed[e][1]].nbins; k++) {
				double z = synthrel_model_measured(m, 1, e, k) - (double)exact[k];
				s2 += z;
				q2 += z * z;
				n2++;
			}
		}
		synthrel_model_free(m);
	}
	v1 = q1 / n1 - (s1 / n1) * (s1 / n1);
	v2 = q2 / n2 - (s2 / n2) * (s2 / n2);
	fprintf(stderr, "  cell noise: 1-way variance %.2f (calibrated 25, %.0f cells), 2-way %.2f (calibrated 20, %.0f "
	    "cells)\n", v1, n1, v2, n2);
	CHECK(fabs(s1 / n1) < 5 * sqrt(25 / n1));
	CHECK(fabs(s2 / n2) < 5 * sqrt(20 / n2));
	CHECK(fabs(v1 - 25) < 0.15 * 25);
	CHECK(fabs(v2 - 20) < 0.15 * 20);
	free(exact);
	free(codes);
}

/*
 * Differencing with power: D, and D' = D plus one subject alone in a bin
 * (age 120-129).  The attacker draws rows from the release and says "D'"
 * when any falls in that bin.  Without noise it is right every time; under
 * rho-zCDP no test is right more often than 1/2 + TV/2 with TV <= sqrt(rho/2)
 * (Pinsker, KL <= rho), whatever the mechanism does inside.
 */
static int
differencing_right(const struct synthrel_schema *s, const uint16_t *codes, size_t n, int64_t rho, int noiseless,
    size_t trials, size_t rows)
{
	uint16_t *out = malloc(rows * s->ncols * sizeof(*out));
	struct cg_err err;
	size_t t, r, right = 0;

	if (out == NULL)
		abort();
	for (t = 0; t < trials; t++) {
		int with = (int)(t & 1), said = 0;
		struct synthrel_model *m = NULL;

		if (synthrel_fit(s, codes, n + (size_t)with, rho, noiseless, &m, &err) != 0 ||
		    synthrel_sample(m, rows, out, &err) != 0) {
			synthrel_model_free(m);
			free(out);
			return -1;
		}
		for (r = 0; r < rows; r++)
			said |= out[r * s->ncols] == 11;
		right += said == with;
		synthrel_model_free(m);
	}
	free(out);
	return (int)right;
}

static void
test_differencing(const struct synthrel_schema *s)
{
	const size_t n = 300, trials = 400;
	const int64_t rho = 1000000000;            /* 1.0: enough for the attack to have some power */
	uint16_t *codes = planted(s, n + 1, 0.5);
	double acc, bound = 0.5 + sqrt(1.0 / 2) / 2 + 4 * sqrt(0.25 / trials);
	int right;

	codes[n * s->ncols] = 11;                  /* the added subject: age 120-129, nobody else there */
	/*
	 * Noiseless, the subject's bin has probability 1/301 per row: 20,000 rows
	 * miss it with probability e^-66 (2,000 rows missed it one run in forty).
	 */
	right = differencing_right(s, codes, n, rho, 1, 40, 20000);
	CHECK_EQ_INT(right, 40);                   /* noiseless: the subject shows every time */
	right = differencing_right(s, codes, n, rho, 0, trials, 2000);
	acc = (double)right / (double)trials;
	fprintf(stderr, "  differencing: attacker right %.3f of the time (bound %.3f; noiseless 1.000)\n", acc, bound);
	CHECK(right >= 0 && acc <= bound);
	CHECK(acc >= 0.5 - 4 * sqrt(0.25 / trials));
	free(codes);
}

/* The fitted tree carries the planted affinity into the sampled rows; the unplanted pairs stay independent. */
static void
test_planted(const struct synthrel_schema *s, int noiseless)
{
	const size_t n = 20000, rows = 200000;
	uint16_t *codes = planted(s, n, 0.6), *out = malloc(rows * s->ncols * sizeof(*out));
	struct synthrel_model *m = NULL;
	struct cg_err err;
	size_t e[SYNTHREL_COLS_MAX][2], ne, i, found = 0, prog = 0, prog_strat = 0, strat = 0, bad = 0;
	double want = 0.6 + 0.4 / 7, cond, lift;

	if (out == NULL)
		abort();
	CHECK_EQ_INT(synthrel_fit(s, codes, n, 100000000, noiseless, &m, &err), 0);   /* rho 0.1 */
	if (m == NULL)
		goto out;
	ne = synthrel_model_edges(m, e, SYNTHREL_COLS_MAX);
	CHECK_EQ_INT(ne, s->ncols - 1);
	for (i = 0; i < ne; i++)
		if ((e[i][0] == 2 && e[i][1] == 4) || (e[i][0] == 4 && e[i][1] == 2))
			found = 1;
	CHECK(found);
	CHECK(fabs(synthrel_model_rows(m) - (double)n) < 200);
	CHECK_EQ_INT(synthrel_sample(m, rows, out, &err), 0);
	for (i = 0; i < rows; i++) {
		const uint16_t *x = out + i * s->ncols;
		size_t c;

		for (c = 0; c < s->ncols; c++)
			bad += x[c] >= s->cols[c].nbins;
		prog += x[2] == 0;
		prog_strat += x[2] == 0 && x[4] == 3;
		strat += x[4] == 3;
	}
	CHECK_EQ_INT(bad, 0);
	cond = (double)prog_strat / (double)prog;
	lift = cond / ((double)strat / (double)rows);
	fprintf(stderr, "  planted (%s): P(strategy | programming) %.3f (planted %.3f), lift %.2f\n",
	    noiseless ? "noiseless" : "rho 0.1", cond, want, lift);
	CHECK(fabs(cond - want) < 0.05);
	CHECK(lift > 2);
	/* spend was planted independent of course: the model must not invent a dependence */
	{
		size_t p0 = 0, p0s0 = 0, s0 = 0;
		for (i = 0; i < rows; i++) {
			const uint16_t *x = out + i * s->ncols;
			p0 += x[2] == 0;
			p0s0 += x[2] == 0 && x[3] == 0;
			s0 += x[3] == 0;
		}
		CHECK(fabs((double)p0s0 / (double)p0 - (double)s0 / (double)rows) < 0.05);
		CHECK(fabs((double)s0 / (double)rows - 0.73) < 0.03);    /* 70% + 30% / 10 in the first bin */
	}
out:
	synthrel_model_free(m);
	free(codes);
	free(out);
}

int
main(void)
{
	struct synthrel_schema *s = NULL;
	struct cg_err err;

	if (sodium_init() < 0)
		return 1;
	columns_init();
	test_schema();
	test_params();
	if (synthrel_schema_make(jc, 5, 0, &s, &err) != 0) {
		fprintf(stderr, "schema: %s\n", err.msg);
		return 1;
	}
	test_sensitivity(s);
	test_noise_spread(s);
	test_cell_noise(s);
	test_differencing(s);
	test_planted(s, 1);
	test_planted(s, 0);
	synthrel_schema_free(s);
	CGT_DONE();
}
