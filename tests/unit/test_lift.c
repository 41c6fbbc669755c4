/*
 * test_lift.c - the DP lift release (gateway/lift.h), by statistics over
 * many releases of synthetic experiments:
 *  - planted lift: 20,000 subjects per arm, control conversion 10%,
 *    treatment 10.5% (+5% relative, +0.5 points absolute), values of
 *    converters exponential with mean 30.00 capped at 200.00 (cents), at the
 *    policy's default rho 0.05: over 4 blocks of 50 seeded experiments the
 *    95% intervals cover the planted rate lift, relative lift and value lift
 *    in >= 90% of the 200 (each block's count is printed: the "90%
 *    of 50 runs"; one block alone falls below 45 with probability about 4%
 *    even at exactly 95% coverage, so the assertion is on all 200);
 *  - no lift: over 400 experiments the intervals exclude 0 at a rate within
 *    a binomial bound (two-sided, 1e-3) of the nominal 5%;
 *  - the noise term matters: at 2,000 subjects per arm and rho 0.01 the same
 *    intervals without the noise variances (lift_estimate with zero noise)
 *    exclude 0 far more often than 5%, while the release's stay near 5%;
 *  - the noise drawn has the variances the header states (sample variances
 *    over 3,000 releases), and Q's sensitivity bound holds;
 *  - a differencing attack on neighbouring experiments does no better than
 *    rho-zCDP allows, and would catch noise half as large;
 *  - bad inputs are refused with their reason, and no estimate is ever NaN;
 *  - the release's JSON holds its figures, noise scales and intervals.
 * The experiments' data are seeded; the noise is the CSPRNG's.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "cgtest.h"
#include "analytics/prng.h"
#include "gateway/lift.h"

#define CAP 20000                    /* value cap, cents */
#define MU 3000.0                    /* mean value of a converter before the cap */
#define DEMO_RHO 0.05                /* policy/example.yaml: privacy.query_rho */
#define CONF 0.95

/* E[min(V, cap)] for V exponential with mean MU: the per-converter value the arms are built with. */
static double
capped_mean(void)
{
	return MU * (1 - exp(-CAP / MU));
}

static void
arm_fill(struct prng *r, uint64_t n, double p, struct lift_arm *a)
{
	uint64_t i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < n; i++) {
		int conv = prng_unif(r) < p;
		int64_t v = conv ? (int64_t)llround(-MU * log(1 - prng_unif(r))) : 0;

		lift_arm_add(a, conv, v, CAP);
	}
}

static void
experiment(uint64_t seed, uint64_t n, double pc, double pt, struct lift_arm *c, struct lift_arm *t)
{
	struct prng r;

	prng_seed(&r, seed, 14);
	arm_fill(&r, n, pc, c);
	arm_fill(&r, n, pt, t);
}

static int
covers(const struct lift_interval *iv, double x)
{
	return iv->lo <= x && x <= iv->hi;
}

/* P(X <= k) for X ~ Binomial(n, p). */
static double
binom_cdf(unsigned k, unsigned n, double p)
{
	double s = 0;
	unsigned i;

	for (i = 0; i <= k && i <= n; i++)
		s += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) + i * log(p) + (n - i) * log1p(-p));
	return s;
}

/* x successes in n are consistent with rate p: neither tail below alpha / 2. */
static int
binom_consistent(unsigned x, unsigned n, double p, double alpha)
{
	return binom_cdf(x, n, p) >= alpha / 2 && (x == 0 || 1 - binom_cdf(x - 1, n, p) >= alpha / 2);
}

static void
test_planted_lift(void)
{
	enum { BLOCK = 50, RUNS = 4 * BLOCK, N = 20000 };
	double pc = 0.10, pt = 0.105, value_lift = (pt - pc) * capped_mean();
	unsigned cov_rate = 0, cov_rel = 0, cov_value = 0, detected = 0, rel = 0, i;
	unsigned blk[4][3] = { { 0 } };
	double mean_est = 0, mean_se = 0;
	struct lift_arm c, t;
	struct lift_release rl;
	struct cg_err e;

	for (i = 0; i < RUNS; i++) {
		experiment(1000 + i, N, pc, pt, &c, &t);
		if (lift_release_make(&c, &t, CAP, DEMO_RHO, CONF, &rl, &e) != 0) {
			CHECK(!"release refused");
			fprintf(stderr, "  %s\n", e.msg);
			return;
		}
		blk[i / BLOCK][0] += covers(&rl.est.rate_diff, pt - pc);
		blk[i / BLOCK][1] += rl.est.rel_ok && covers(&rl.est.rate_rel, pt / pc - 1);
		blk[i / BLOCK][2] += covers(&rl.est.value_diff, value_lift);
		rel += rl.est.rel_ok;
		detected += rl.est.rate_diff.lo > 0;
		mean_est += rl.est.rate_diff.est / RUNS;
		mean_se += rl.est.rate_diff.se / RUNS;
	}
	for (i = 0; i < 4; i++) {
		cov_rate += blk[i][0];
		cov_rel += blk[i][1];
		cov_value += blk[i][2];
	}
	printf("planted lift (+5%% relative: 10%% -> 10.5%%, %u subjects/arm, rho %.2f, %.0f%% intervals), %u runs:\n"
	    "  covered: rate lift %u, relative lift %u, value lift %u; rate lift detected (lo > 0) in %u\n"
	    "  per block of 50 runs: rate %u %u %u %u, relative %u %u %u %u, value %u %u %u %u\n",
	    N, DEMO_RHO, CONF * 100, RUNS, cov_rate, cov_rel, cov_value, detected,
	    blk[0][0], blk[1][0], blk[2][0], blk[3][0], blk[0][1], blk[1][1], blk[2][1], blk[3][1],
	    blk[0][2], blk[1][2], blk[2][2], blk[3][2]);
	CHECK_EQ_INT(rel, RUNS);
	CHECK(cov_rate >= RUNS * 9 / 10);
	CHECK(cov_rel >= RUNS * 9 / 10);
	CHECK(cov_value >= RUNS * 9 / 10);
	/* the rate lift is centred on the truth: the mean of the estimates is within 4 of its standard errors */
	CHECK(fabs(mean_est - (pt - pc)) < 4 * mean_se / sqrt(RUNS));
	CHECK_EQ_INT(rl.rho_nano, 50000000);
}

/* Over `runs` experiments without a lift: how often each interval excludes 0, with the noise term and without. */
static void
null_runs(unsigned runs, uint64_t n, double rho, unsigned *fp_rate, unsigned *fp_value, unsigned *naive_rate,
    unsigned *naive_value)
{
	static const struct lift_noise zero;
	struct lift_arm c, t;
	struct lift_release rl;
	struct lift_estimates naive;
	struct cg_err e;
	unsigned i;

	*fp_rate = *fp_value = *naive_rate = *naive_value = 0;
	for (i = 0; i < runs; i++) {
		experiment(500000 + n + i, n, 0.10, 0.10, &c, &t);
		if (lift_release_make(&c, &t, CAP, rho, CONF, &rl, &e) != 0 ||
		    lift_estimate(&rl.control, &rl.treatment, &zero, CAP, CONF, &naive, &e) != 0) {
			CHECK(!"release refused");
			fprintf(stderr, "  %s\n", e.msg);
			return;
		}
		*fp_rate += !covers(&rl.est.rate_diff, 0);
		*fp_value += !covers(&rl.est.value_diff, 0);
		*naive_rate += !covers(&naive.rate_diff, 0);
		*naive_value += !covers(&naive.value_diff, 0);
	}
}

static void
test_no_lift(void)
{
	enum { RUNS = 400 };
	unsigned fr, fv, nr, nv;

	null_runs(RUNS, 20000, DEMO_RHO, &fr, &fv, &nr, &nv);
	printf("no lift (20000 subjects/arm, rho %.2f), %u runs: intervals excluding 0: rate %u (%.1f%%), "
	    "value %u (%.1f%%); nominal 5%%\n", DEMO_RHO, RUNS, fr, 100.0 * fr / RUNS, fv, 100.0 * fv / RUNS);
	CHECK(binom_consistent(fr, RUNS, 1 - CONF, 1e-3));
	CHECK(binom_consistent(fv, RUNS, 1 - CONF, 1e-3));
}

static void
test_noise_term_matters(void)
{
	enum { RUNS = 400 };
	unsigned fr, fv, nr, nv;

	null_runs(RUNS, 2000, 0.01, &fr, &fv, &nr, &nv);
	printf("no lift (2000 subjects/arm, rho 0.01), %u runs: excluding 0 with the noise term: rate %u, value %u; "
	    "without it: rate %u (%.1f%%), value %u (%.1f%%)\n", RUNS, fr, fv, nr, 100.0 * nr / RUNS, nv,
	    100.0 * nv / RUNS);
	CHECK(binom_consistent(fr, RUNS, 1 - CONF, 1e-3));
	CHECK(binom_consistent(fv, RUNS, 1 - CONF, 1e-3));
	/* without the noise the intervals are too narrow: their false positives are not a 5% rate */
	CHECK(!binom_consistent(nr, RUNS, 1 - CONF, 1e-3) && nr > RUNS / 20);
	CHECK(!binom_consistent(nv, RUNS, 1 - CONF, 1e-3) && nv > RUNS / 20);
}

/* The noise drawn on each statistic has the stated variance Delta^2 / (2 rho share / 10). */
static void
test_noise_scale(void)
{
	enum { RUNS = 3000 };
	const double rho = 0.2, share[4] = { LIFT_SHARE_N, LIFT_SHARE_C, LIFT_SHARE_S, LIFT_SHARE_Q };
	const double delta[4] = { 1, 1, CAP, CAP };
	double sum[4] = { 0 }, sq[4] = { 0 };
	struct lift_arm c, t;
	struct lift_release rl;
	struct cg_err e;
	unsigned i, k;

	experiment(7, 5000, 0.1, 0.1, &c, &t);
	CHECK_EQ_INT(share[0] + share[1] + share[2] + share[3], 10);
	for (i = 0; i < RUNS; i++) {
		double d[4];

		if (lift_release_make(&c, &t, CAP, rho, CONF, &rl, &e) != 0) {
			CHECK(!"release refused");
			return;
		}
		d[0] = rl.control.n - (double)c.n;
		d[1] = rl.control.conversions - (double)c.conversions;
		d[2] = rl.control.value_sum - (double)c.value_sum;
		d[3] = rl.control.value_sq - (double)(c.value_sq_sum / CAP);
		for (k = 0; k < 4; k++) {
			sum[k] += d[k];
			sq[k] += d[k] * d[k];
		}
	}
	for (k = 0; k < 4; k++) {
		double want = delta[k] * delta[k] / (2 * rho * share[k] / 10), got = sq[k] / RUNS;
		const double *v = &rl.noise.var_n;

		/* the variance the estimator is given is the stated one (rounded up by at most a part in 1e9) */
		CHECK(v[k] >= want && v[k] <= want * (1 + 1e-9));
		/* the sample variance of 3,000 draws is within 15% (4.7 standard errors) and the mean near 0 */
		CHECK(fabs(got / want - 1) < 0.15);
		CHECK(fabs(sum[k] / RUNS) < 5 * sqrt(want / RUNS));
	}
}

/* floor((A + v^2) / cap) - floor(A / cap) is in [0, cap] for v in [0, cap]: Q's sensitivity. */
static void
test_q_sensitivity(void)
{
	struct prng r;
	uint64_t caps[4] = { 1, 7, CAP, 1000000000 }, worst = 0, bad = 0;
	unsigned i, k;

	prng_seed(&r, 3, 3);
	for (k = 0; k < 4; k++)
		for (i = 0; i < 100000; i++) {
			uint64_t cap = caps[k], a = prng_next(&r) >> 4, v = i < 10 ? cap - i % 2 : prng_below(&r, cap + 1);
			uint64_t d = (a + v * v) / cap - a / cap;

			bad += d > cap;
			if (d == cap)
				worst++;
		}
	CHECK_EQ_INT(bad, 0);
	CHECK(worst > 0);        /* the bound is reached: it is not loose */
}

/*
 * The differencing attack: neighbouring experiments, with and without one
 * treatment subject who converted with the capped value (every statistic
 * moves by its whole sensitivity: n and conversions by 1, the value sum and
 * Q by the cap).  The attacker weighs each noisy figure's distance from the
 * public neighbour by d_k / sigma_k^2 and guesses "with" above the midpoint:
 * the best test against Gaussian noise, right with probability
 * Phi(sqrt(2 rho) / 2) at the rho charged.  Over 2,000 releases of each it
 * must do no better (+ 3 standard errors); against the noise halved (a
 * sensitivity understated by 2) the same attack is far above the bound.
 */
static void
test_differencing(void)
{
	enum { DRAWS = 2000 };
	const double rho = 0.5;
	struct lift_arm c, t, t1;
	struct lift_release rl;
	struct cg_err e;
	double d[4], w[4], mid = 0, right = 0, right_half = 0, bound, se;
	unsigned i, k;

	experiment(21, 1000, 0.1, 0.1, &c, &t);
	t1 = t;
	lift_arm_add(&t1, 1, CAP, CAP);
	d[0] = (double)(t1.n - t.n);
	d[1] = (double)(t1.conversions - t.conversions);
	d[2] = (double)(t1.value_sum - t.value_sum);
	d[3] = (double)(t1.value_sq_sum / CAP) - (double)(t.value_sq_sum / CAP);
	CHECK(d[0] == 1 && d[1] == 1 && d[2] == CAP && d[3] == CAP);     /* the worst neighbour */
	for (i = 0; i < 2 * DRAWS; i++) {
		const struct lift_arm *tr = i % 2 ? &t1 : &t;
		double x[4], ex[4], s = 0, sh = 0;

		if (lift_release_make(&c, tr, CAP, rho, CONF, &rl, &e) != 0) {
			CHECK(!"release refused");
			return;
		}
		if (i == 0) {
			const double *v = &rl.noise.var_n;

			for (k = 0; k < 4; k++) {
				w[k] = d[k] / v[k];
				mid += w[k] * d[k] / 2;
			}
		}
		x[0] = rl.treatment.n;
		x[1] = rl.treatment.conversions;
		x[2] = rl.treatment.value_sum;
		x[3] = rl.treatment.value_sq;
		ex[0] = (double)tr->n;
		ex[1] = (double)tr->conversions;
		ex[2] = (double)tr->value_sum;
		ex[3] = (double)(tr->value_sq_sum / CAP);
		for (k = 0; k < 4; k++) {
			/* from the release and the public neighbour without the subject */
			s += w[k] * (x[k] - (ex[k] - (i % 2 ? d[k] : 0)));
			/* the same, had the noise been half as large */
			sh += w[k] * ((i % 2 ? d[k] : 0) + (x[k] - ex[k]) / 2);
		}
		right += (s > mid) == (i % 2 == 1);
		right_half += (sh > mid) == (i % 2 == 1);
	}
	right /= 2.0 * DRAWS;
	right_half /= 2.0 * DRAWS;
	bound = 0.5 * erfc(-(sqrt(2 * rl.rho) / 2) / sqrt(2.0));      /* Phi(sqrt(2 rho) / 2), the rho charged */
	se = sqrt(bound * (1 - bound) / (2.0 * DRAWS));
	printf("differencing on the lift release: attacker right %.3f (bound %.3f at rho %.2g); against half the noise "
	    "%.3f\n", right, bound, rho, right_half);
	CHECK(fabs(2 * mid - 2 * rl.rho) < 1e-6);       /* sum d_k^2 / sigma_k^2 = 2 rho: the split adds up */
	CHECK(right <= bound + 3 * se);
	CHECK(right_half > bound + 3 * se);
}

static void
test_arm_add(void)
{
	struct lift_arm a;

	memset(&a, 0, sizeof(a));
	lift_arm_add(&a, 1, -500, 100);   /* a refund: counts as 0 */
	lift_arm_add(&a, 1, 250, 100);    /* above the cap: 100 */
	lift_arm_add(&a, 0, 30, 100);
	lift_arm_add(&a, 0, 0, 100);
	CHECK_EQ_INT(a.n, 4);
	CHECK_EQ_INT(a.conversions, 2);
	CHECK_EQ_INT(a.value_sum, 130);
	CHECK_EQ_INT(a.value_sq_sum, 100 * 100 + 30 * 30);
}

static void
refused(const struct lift_arm *c, const struct lift_arm *t, int64_t cap, double rho, double conf, int code,
    const char *msg)
{
	struct lift_release rl;
	struct cg_err e;

	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(lift_release_make(c, t, cap, rho, conf, &rl, &e), code);
	CHECK_CONTAINS(e.msg, msg);
	CHECK_EQ_INT(rl.rho_nano, 0);
	CHECK(rl.est.rate_diff.se == 0 && rl.control.n == 0);
}

static void
test_bad_input(void)
{
	struct lift_arm c, t, x;

	experiment(11, 1000, 0.1, 0.1, &c, &t);
	x = c;
	x.n = 0;
	x.conversions = 0;
	x.value_sum = 0;
	x.value_sq_sum = 0;
	/*
	 * An empty arm (erasure can empty one) is released like any other: its
	 * noisy size, far below LIFT_MIN_N, refuses it after the noise, so that
	 * the refusal says nothing exact about the arm.
	 */
	refused(&x, &t, CAP, DEMO_RHO, CONF, CG_ERR_LIMIT, "the control arm's noisy size is below 30");
	refused(&c, &x, CAP, DEMO_RHO, CONF, CG_ERR_LIMIT, "the treatment arm's noisy size is below 30");
	x = c;
	x.value_sum = -1;
	refused(&c, &x, CAP, DEMO_RHO, CONF, CG_ERR_ARG, "value sum is negative: values must be clamped");
	x = c;
	x.value_sum = (int64_t)c.n * CAP + 1;
	refused(&x, &t, CAP, DEMO_RHO, CONF, CG_ERR_ARG, "value sum exceeds n x value_cap");
	x = c;
	x.value_sq_sum = 0;               /* a caller that never filled it */
	refused(&x, &t, CAP, DEMO_RHO, CONF, CG_ERR_ARG, "sum of squared values does not agree");
	x.value_sq_sum = (uint64_t)c.value_sum * CAP + 1;
	refused(&x, &t, CAP, DEMO_RHO, CONF, CG_ERR_ARG, "sum of squared values does not agree");
	x = c;
	x.conversions = c.n + 1;
	refused(&x, &t, CAP, DEMO_RHO, CONF, CG_ERR_ARG, "more conversions than subjects");
	refused(&c, &t, CAP, 0, CONF, CG_ERR_ARG, "rho must be positive");
	refused(&c, &t, CAP, -1, CONF, CG_ERR_ARG, "rho must be positive");
	refused(&c, &t, CAP, NAN, CONF, CG_ERR_ARG, "rho must be positive");
	refused(&c, &t, CAP, 1e-12, CONF, CG_ERR_ARG, "rho must be at least 1e-9");
	refused(&c, &t, 0, DEMO_RHO, CONF, CG_ERR_ARG, "the value cap must be between 1 and");
	refused(&c, &t, CAP, DEMO_RHO, 1.0, CG_ERR_ARG, "confidence level");
	refused(&c, &t, CAP, DEMO_RHO, NAN, CG_ERR_ARG, "confidence level");
	/* a cap whose noise the sampler cannot draw at this rho */
	refused(&c, &t, 100000000, 1e-6, CONF, CG_ERR_LIMIT, "the noise for the value sum would be too large");
	/* no size of experiment is refused for its sum of squares: 2^30 subjects at a cap of 10^6 (n cap^2 ~ 2^70) */
	{
		struct lift_arm big = { 1ull << 30, 1ull << 26, (int64_t)(1ull << 26) * 1000000, 0 };
		struct lift_release rl;
		struct cg_err e;

		big.value_sq_sum = (unsigned __int128)(1ull << 26) * 1000000 * 1000000;   /* 2^26 converters at the cap */
		CHECK_EQ_INT(lift_release_make(&big, &big, 1000000, 1.0, CONF, &rl, &e), 0);
		CHECK(fabs(rl.est.control.rate - 1.0 / 16) < 1e-4 && fabs(rl.est.control.value_mean - 62500) < 1);
	}
	/* a handful of subjects: the noisy size (sd 2.2) is below 30 whatever is drawn */
	x = c;
	x.n = 3;
	x.conversions = 1;
	x.value_sum = 50;
	x.value_sq_sum = 2500;
	refused(&c, &x, CAP, 1.0, CONF, CG_ERR_LIMIT, "the treatment arm's noisy size is below 30");
}

/* Whatever the noisy figures (negative, inconsistent, huge), every estimate is finite. */
static void
test_extreme_figures(void)
{
	static const double vals[] = { -1e18, -5, 0, 0.5, 30, 1e3, 1e9, 1e18 };
	const size_t nv = sizeof(vals) / sizeof(vals[0]);
	struct lift_noise nz = { 100, 100, 1e10, 1e10 };
	struct lift_estimates est;
	struct cg_err e;
	size_t a, b, c, d;
	unsigned finite = 1, runs = 0, refused_small = 0;

	for (a = 0; a < nv; a++)
		for (b = 0; b < nv; b++)
			for (c = 0; c < nv; c++)
				for (d = 0; d < nv; d++) {
					struct lift_noisy x = { vals[a], vals[b], vals[c], vals[d] }, y = { 500, 40, 1e5, 1e6 };
					const double *f = (const double *)&est;
					size_t i;
					int r = lift_estimate(&x, &y, &nz, CAP, CONF, &est, &e);

					if (r == CG_ERR_LIMIT) {
						refused_small++;
						continue;
					}
					runs++;
					for (i = 0; i < offsetof(struct lift_estimates, rel_ok) / sizeof(double); i++)
						finite &= isfinite(f[i]) != 0;
					finite &= isfinite(est.z) != 0 && est.rate_diff.lo <= est.rate_diff.hi;
				}
	CHECK(finite);
	CHECK_EQ_INT(refused_small, 4 * nv * nv * nv);   /* noisy n of -1e18, -5, 0, 0.5 (30 is allowed) */
	CHECK(runs > 0);
	/* a control rate of 0 gives no relative lift, not a division by 0 */
	{
		struct lift_noisy x = { 500, 0, 0, 0 }, y = { 500, 40, 1e5, 1e6 };

		CHECK_EQ_INT(lift_estimate(&x, &y, &nz, CAP, CONF, &est, &e), 0);
		CHECK_EQ_INT(est.rel_ok, 0);
		CHECK(est.rate_rel.lo == 0 && est.rate_rel.hi == 0);
	}
	CHECK(fabs(lift_z(0.95) - 1.959963985) < 1e-8);
	CHECK(fabs(lift_z(0.9) - 1.644853627) < 1e-8);
	CHECK(lift_z(1.0) == 0 && lift_z(0) == 0);
}

/* The JSON of a release holds its noisy figures, noise scales, shares and intervals, and nothing else. */
static void
test_json(void)
{
	struct lift_arm c, t;
	struct lift_release rl;
	struct cg_err e;
	json_t *j, *v;
	const char *key;
	size_t nkeys = 0;

	experiment(31, 5000, 0.1, 0.12, &c, &t);
	CHECK_EQ_INT(lift_release_make(&c, &t, CAP, DEMO_RHO, CONF, &rl, &e), 0);
	if ((j = lift_release_json(&rl)) == NULL) {
		CHECK(!"no JSON");
		return;
	}
	json_object_foreach(j, key, v)
		nkeys++;
	CHECK_EQ_INT(nkeys, 12);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "rho_nano")), 50000000);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "treatment"), "n")), (long long)rl.treatment.n);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "control"), "value_sq_over_cap")),
	    (long long)rl.control.value_sq);
	CHECK(json_real_value(json_object_get(json_object_get(json_object_get(j, "lift"), "rate"), "lo")) ==
	    rl.est.rate_diff.lo);
	CHECK(json_real_value(json_object_get(json_object_get(json_object_get(j, "lift"), "value_per_subject"), "hi")) ==
	    rl.est.value_diff.hi);
	CHECK(json_real_value(json_object_get(json_object_get(j, "noise_sd"), "value_sum")) ==
	    sqrt(rl.noise.var_value_sum));
	CHECK(json_real_value(json_object_get(json_object_get(j, "sensitivity"), "value_sq_over_cap")) == CAP);
	CHECK(json_is_object(json_object_get(json_object_get(j, "lift"), "rate_relative")));
	json_decref(j);
	rl.est.rel_ok = 0;
	j = lift_release_json(&rl);
	CHECK(j != NULL && json_is_null(json_object_get(json_object_get(j, "lift"), "rate_relative")));
	json_decref(j);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_arm_add();
	test_bad_input();
	test_extreme_figures();
	test_q_sensitivity();
	test_json();
	test_noise_scale();
	test_differencing();
	test_planted_lift();
	test_no_lift();
	test_noise_term_matters();
	CGT_DONE();
}
