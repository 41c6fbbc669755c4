/*
 * bench_lift.c - the DP lift release (gateway/lift.h) over N outcomes in
 * memory (default 1,000,000: one per subject, half in each arm), against a
 * plain C pass over the same array in the same run:
 *
 *   DP     lift_arm_add per subject (clamp, count, sum, sum of squares),
 *          then lift_release_make (checks, 8 discrete Gaussian draws from
 *          the exact constant-time sampler, estimates and intervals);
 *   plain  the same per-arm counts, sums and sums of squares in a loop,
 *          then the textbook (Wald) intervals of the rate and value lift.
 *
 * Each is run BENCH_REPS times alternately and the best time of each is
 * compared; the release alone (the noise and the arithmetic after the
 * aggregates) is timed too, over many releases.
 *
 * usage: bench_lift [N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "bench/bench.h"
#include "analytics/prng.h"
#include "gateway/lift.h"

#define BENCH_REPS 20
#define CAP 20000

struct outcome {
	uint8_t arm;                         /* 0 control, 1 treatment */
	uint8_t converted;
	int64_t value;
};

struct plain {
	uint64_t n[2], conv[2];
	double sum[2], sq[2];
	double rate_lo, rate_hi, value_lo, value_hi;
};

static void
plain_pass(const struct outcome *o, size_t n, struct plain *p)
{
	double var_r = 0, var_v = 0, rate[2], mean[2];
	size_t i;
	int a;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < n; i++) {
		double v = (double)o[i].value;

		p->n[o[i].arm]++;
		p->conv[o[i].arm] += o[i].converted;
		p->sum[o[i].arm] += v;
		p->sq[o[i].arm] += v * v;
	}
	for (a = 0; a < 2; a++) {
		double m = (double)p->n[a];

		rate[a] = (double)p->conv[a] / m;
		mean[a] = p->sum[a] / m;
		var_r += rate[a] * (1 - rate[a]) / m;
		var_v += (p->sq[a] / m - mean[a] * mean[a]) / m;
	}
	p->rate_lo = rate[1] - rate[0] - 1.96 * sqrt(var_r);
	p->rate_hi = rate[1] - rate[0] + 1.96 * sqrt(var_r);
	p->value_lo = mean[1] - mean[0] - 1.96 * sqrt(var_v);
	p->value_hi = mean[1] - mean[0] + 1.96 * sqrt(var_v);
}

static void
dp_pass(const struct outcome *o, size_t n, struct lift_release *rl)
{
	struct lift_arm arm[2];
	struct cg_err e;
	size_t i;

	memset(arm, 0, sizeof(arm));
	for (i = 0; i < n; i++)
		lift_arm_add(&arm[o[i].arm], o[i].converted, o[i].value, CAP);
	if (lift_release_make(&arm[0], &arm[1], CAP, 0.05, 0.95, rl, &e) != 0)
		bench_die("lift_release_make", &e);
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000, i;
	struct outcome *o;
	struct prng r;
	struct plain pl;
	struct lift_release rl;
	struct lift_arm c, t;
	struct cg_err e;
	double best_dp = 1e300, best_pl = 1e300, t0, t_rel;
	int rep, k;

	if (sodium_init() < 0)
		bench_die("sodium_init", NULL);
	if (n < 1000 || (o = calloc(n, sizeof(*o))) == NULL)
		bench_die("usage: bench_lift [N >= 1000]", NULL);
	/* control converts at 10%, treatment at 10.5%; a converter's value is exponential, mean 30.00, capped at 200.00 */
	prng_seed(&r, 1, 14);
	for (i = 0; i < n; i++) {
		o[i].arm = (uint8_t)(i & 1);
		o[i].converted = prng_unif(&r) < (o[i].arm ? 0.105 : 0.10);
		o[i].value = o[i].converted ? (int64_t)fmin(CAP, llround(-3000 * log(1 - prng_unif(&r)))) : 0;
	}
	for (rep = 0; rep < BENCH_REPS; rep++) {
		t0 = bench_now();
		dp_pass(o, n, &rl);
		best_dp = fmin(best_dp, bench_now() - t0);
		t0 = bench_now();
		plain_pass(o, n, &pl);
		best_pl = fmin(best_pl, bench_now() - t0);
	}
	printf("lift      %zu outcomes in memory, two arms, rho 0.05, 95%% intervals; the best of %d runs each\n", n,
	    BENCH_REPS);
	printf("          DP (clamp, aggregate, noise, intervals) %.4f s; plain C aggregate + Wald intervals %.4f s: "
	    "ratio %.2fx\n", best_dp, best_pl, best_dp / best_pl);
	printf("          rate lift DP [%.4f, %.4f], plain [%.4f, %.4f]; value lift DP [%.1f, %.1f], plain [%.1f, %.1f]\n",
	    rl.est.rate_diff.lo, rl.est.rate_diff.hi, pl.rate_lo, pl.rate_hi, rl.est.value_diff.lo, rl.est.value_diff.hi,
	    pl.value_lo, pl.value_hi);
	/* the release alone, from the aggregates: what the noise and the checks cost */
	memset(&c, 0, sizeof(c));
	memset(&t, 0, sizeof(t));
	for (i = 0; i < n; i++)
		lift_arm_add(o[i].arm ? &t : &c, o[i].converted, o[i].value, CAP);
	t0 = bench_now();
	for (k = 0; k < 1000; k++)
		if (lift_release_make(&c, &t, CAP, 0.05, 0.95, &rl, &e) != 0)
			bench_die("lift_release_make", &e);
	t_rel = (bench_now() - t0) / 1000;
	printf("          the release alone (8 exact Gaussian draws, checks, estimates): %.1f us, %.2f%% of the plain "
	    "pass\n", t_rel * 1e6, 100 * t_rel / best_pl);
	free(o);
	return 0;
}
