/*
 * test_noise.c - the exact samplers against their exact distributions.
 *
 * For several scales, 10^6 draws pass a chi-squared goodness-of-fit test
 * against the pmf at that scale, and the same draws fail it against the pmf
 * at 0.7x and 1.3x the scale, so the test has power.  The critical value is
 * for p = 1e-5 (Wilson-Hilferty), so a correct sampler fails about once in
 * 100,000 runs per scale.
 *
 * Then the samplers' time per draw must not depend on the value drawn: see
 * "Timing" below; and a forked child must not draw its parent's noise.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sodium.h>

#include "cgtest.h"
#include "crypto/noise.h"

#define DRAWS 1000000
#define RANGE 4000              /* |x| up to this is binned one by one */

static int64_t draws[DRAWS];

/* Unnormalized log-pmf of each distribution at real scale `scale`. */
static double
lp_laplace(int64_t x, double t)
{
	return -fabs((double)x) / t;
}

static double
lp_gaussian(int64_t x, double s2)
{
	return -(double)x * (double)x / (2.0 * s2);
}

/*
 * Chi-squared statistic of the draws against pmf(scale); bins with an
 * expected count below 20 are merged into their neighbours.  *df is set.
 */
static double
chi2(double (*lp)(int64_t, double), double scale, size_t n, int *df)
{
	static double pmf[2 * RANGE + 1];
	static uint64_t obs[2 * RANGE + 1];
	double z = 0, stat = 0, e_acc = 0;
	uint64_t o_acc = 0;
	size_t i;
	int bins = 0;

	for (i = 0; i < 2 * RANGE + 1; i++) {
		pmf[i] = exp(lp((int64_t)i - RANGE, scale));
		z += pmf[i];
		obs[i] = 0;
	}
	for (i = 0; i < n; i++) {
		int64_t x = draws[i];
		if (x < -RANGE) x = -RANGE;
		if (x > RANGE) x = RANGE;
		obs[x + RANGE]++;
	}
	for (i = 0; i < 2 * RANGE + 1; i++) {
		e_acc += pmf[i] / z * (double)n;
		o_acc += obs[i];
		if (e_acc >= 20 || i == 2 * RANGE) {
			stat += ((double)o_acc - e_acc) * ((double)o_acc - e_acc) / (e_acc > 0 ? e_acc : 1e-300);
			bins++;
			e_acc = 0;
			o_acc = 0;
		}
	}
	*df = bins - 1;
	return stat;
}

static double
critical(int df)
{
	const double zq = 4.265;   /* upper 1e-5 quantile of N(0,1) */
	double k = df;

	return k * pow(1 - 2 / (9 * k) + zq * sqrt(2 / (9 * k)), 3);
}

static void
check_fit(const char *what, double (*lp)(int64_t, double), double scale)
{
	double s, c;
	int df;

	s = chi2(lp, scale, DRAWS, &df);
	c = critical(df);
	if (s >= c)
		fprintf(stderr, "%s at scale %g: chi2 %.1f >= %.1f (df %d)\n", what, scale, s, c, df);
	CHECK(s < c);
	/* The same draws must be told apart from 0.7x and 1.3x the scale. */
	s = chi2(lp, scale * 0.7, DRAWS, &df);
	CHECK(s > critical(df));
	s = chi2(lp, scale * 1.3, DRAWS, &df);
	CHECK(s > critical(df));
}

/*
 * Timing: the attack of Jin, McMurtry, Rubinstein, Ohrimenko (S&P 2022).
 * An observer of the release time must learn nothing about the noise, so
 * the time of a draw must not depend on the value drawn.  Each draw is timed
 * alone; afterwards the times of the draws that came out small (|z| < lo)
 * are compared with those that came out large (|z| >= hi) by two tests with
 * power: Mann-Whitney (a shift) and Kolmogorov-Smirnov (any difference).
 * Both are rank tests, so a busy machine's outliers cannot drive them, and
 * since which draw comes out small is random, load that varies over time
 * slows both groups alike.  Thresholds are for p ~ 1e-6.
 *
 * The old sampler, with its early exits (CKS as written), is kept below
 * only to show that the test sees its dependence (z ~ 88).  Measured once,
 * this file linked against the previous noise.c fails every case (Laplace
 * z 57-100, Gaussian z 19-30), and its fork check too.  Also measured once:
 * a busy loop of ~30 ns (2% of a draw) added to the large draws of the new
 * Laplace gave z ~ 7, KS D 0.064 against 0.040.
 */
#define TIMED 40000
#define MW_Z_MAX 5.0            /* two-sided p = 5.7e-7 */
#define KS_C 2.694              /* sqrt(-ln(1e-6 / 2) / 2): p = 1e-6 */

static int
old_bexp_le1(uint32_t n, uint32_t d)
{
	uint32_t k = 1;

	while (randombytes_uniform(d * k) < n)
		k++;
	return (int)(k & 1);
}

static int
old_laplace(uint64_t num, uint64_t den, int64_t *out)
{
	uint32_t t = (uint32_t)num, u, x;
	int64_t v;

	(void)den;
	for (;;) {
		u = randombytes_uniform(t);
		if (!old_bexp_le1(u, t))
			continue;
		v = 0;
		while (old_bexp_le1(1, 1))
			v++;
		x = u + t * (uint32_t)v;
		if (randombytes_uniform(2) == 1) {
			if (x == 0)
				continue;
			*out = -(int64_t)x;
		} else
			*out = x;
		return 0;
	}
}

struct timed {
	double t;
	int large;
};

static int
cmp_timed(const void *a, const void *b)
{
	double x = ((const struct timed *)a)->t, y = ((const struct timed *)b)->t;

	return (x > y) - (x < y);
}

struct timing_stats {
	size_t small, large;
	double mw_z;            /* > 0: large draws are slower */
	double ks_d, ks_crit;
	double med_small, med_large;
};

/* Both statistics over the n timed draws (sorted here). */
static void
timing_compare(struct timed *s, size_t n, struct timing_stats *st)
{
	double n1 = 0, n2 = 0, rank_large = 0, ties = 0, f1 = 0, f2 = 0, u, var;
	size_t i, j, k, seen_small = 0, seen_large = 0;

	qsort(s, n, sizeof(*s), cmp_timed);
	for (i = 0; i < n; i++)
		s[i].large ? n2++ : n1++;
	st->ks_d = 0;
	for (i = 0; i < n; i = j) {
		/* a run of equal times: each gets the average rank */
		for (j = i; j < n && s[j].t == s[i].t; j++)
			;
		for (k = i; k < j; k++) {
			if (s[k].large) {
				rank_large += (double)(i + j + 1) / 2;
				seen_large++;
			} else
				seen_small++;
		}
		ties += (double)(j - i) * (double)(j - i) * (double)(j - i) - (double)(j - i);
		f1 = (double)seen_small / n1;
		f2 = (double)seen_large / n2;
		if (fabs(f1 - f2) > st->ks_d)
			st->ks_d = fabs(f1 - f2);
	}
	u = rank_large - n2 * (n2 + 1) / 2;
	var = n1 * n2 / 12 * ((double)n + 1 - ties / ((double)n * ((double)n - 1)));
	st->mw_z = (u - n1 * n2 / 2) / sqrt(var);
	st->ks_crit = KS_C * sqrt((n1 + n2) / (n1 * n2));
	st->small = (size_t)n1;
	st->large = (size_t)n2;
	for (i = 0, k = 0; i < n; i++)
		if (s[i].large && k++ == (size_t)n2 / 2)
			st->med_large = s[i].t;
	for (i = 0, k = 0; i < n; i++)
		if (!s[i].large && k++ == (size_t)n1 / 2)
			st->med_small = s[i].t;
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef int (*sampler_fn)(uint64_t, uint64_t, int64_t *);

/*
 * TIMED draws of each of the two samplers, interleaved so that both see the
 * same machine; draws with lo <= |z| < hi are left out.
 */
static void
timing_measure(sampler_fn f[2], const uint64_t par[2][2], const int64_t lo[2], const int64_t hi[2],
    struct timing_stats st[2])
{
	static struct timed s[2][TIMED];
	size_t n[2] = { 0, 0 }, i, w;

	for (i = 0; i < TIMED; i++) {
		for (w = 0; w < 2; w++) {
			int64_t z;
			double t0, t1;

			t0 = now_ns();
			if (f[w](par[w][0], par[w][1], &z) != 0)
				abort();
			t1 = now_ns();
			z = z < 0 ? -z : z;
			if (z < lo[w] || z >= hi[w]) {
				s[w][n[w]].t = t1 - t0;
				s[w][n[w]].large = z >= hi[w];
				n[w]++;
			}
		}
	}
	for (w = 0; w < 2; w++)
		timing_compare(s[w], n[w], &st[w]);
}

static int
timing_leaks(const struct timing_stats *st)
{
	return fabs(st->mw_z) >= MW_Z_MAX || st->ks_d >= st->ks_crit;
}

static void
timing_print(const char *what, const struct timing_stats *st)
{
	printf("timing %s: %zu small, %zu large draws; median %.0f vs %.0f ns; Mann-Whitney z %.2f (|z| < %.1f), "
	    "KS D %.4f (critical %.4f)\n", what, st->small, st->large, st->med_small, st->med_large, st->mw_z, MW_Z_MAX,
	    st->ks_d, st->ks_crit);
}

/*
 * One check: sampler A (a new one) against B, timed interleaved.  A must not
 * leak; one retry is allowed, as a 2-core CI machine can be very busy.  If
 * B is the old sampler it must be caught, which shows that the test has
 * power on this machine at this sample size.
 */
static void
check_timing(const char *what_a, sampler_fn a, uint64_t an, uint64_t ad, int64_t alo, int64_t ahi,
    const char *what_b, sampler_fn b, uint64_t bn, uint64_t bd, int64_t blo, int64_t bhi, int b_leaks)
{
	sampler_fn f[2] = { a, b };
	const uint64_t par[2][2] = { { an, ad }, { bn, bd } };
	const int64_t lo[2] = { alo, blo }, hi[2] = { ahi, bhi };
	struct timing_stats st[2];
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		timing_measure(f, par, lo, hi, st);
		timing_print(what_a, &st[0]);
		timing_print(what_b, &st[1]);
		if (!timing_leaks(&st[0]) && timing_leaks(&st[1]) == b_leaks)
			break;
	}
	CHECK(!timing_leaks(&st[0]));
	CHECK_EQ_INT(timing_leaks(&st[1]), b_leaks);
	/* the old sampler's large draws are the slow ones */
	if (b_leaks)
		CHECK(st[1].mw_z > MW_Z_MAX);
}

int
main(void)
{
	static const struct { uint64_t num, den; } lap[] = { { 1, 1 }, { 7, 2 }, { 20, 1 } };
	static const struct { uint64_t num, den; } gau[] = { { 1, 1 }, { 10, 1 }, { 1000, 7 }, { 250000, 1 } };
	size_t i, j;
	int64_t x, sum;

	if (sodium_init() < 0)
		return 1;
	for (i = 0; i < sizeof(lap) / sizeof(lap[0]); i++) {
		for (j = 0; j < DRAWS; j++)
			if (noise_laplace(lap[i].num, lap[i].den, &draws[j]) != 0)
				break;
		CHECK_EQ_INT(j, DRAWS);
		check_fit("discrete Laplace", lp_laplace, (double)lap[i].num / (double)lap[i].den);
	}
	for (i = 0; i < sizeof(gau) / sizeof(gau[0]); i++) {
		for (j = 0; j < DRAWS; j++)
			if (noise_gaussian(gau[i].num, gau[i].den, &draws[j]) != 0)
				break;
		CHECK_EQ_INT(j, DRAWS);
		check_fit("discrete Gaussian", lp_gaussian, (double)gau[i].num / (double)gau[i].den);
	}

	/*
	 * The largest scale (sums in cents need sigma in the millions) works and
	 * is centred with the right spread: sigma = sqrt(2^62 / 3) ~ 1.24e9, so
	 * the mean of 1000 draws has a standard deviation of ~3.9e7 (allow 6),
	 * and their root mean square is within 15% of sigma.
	 */
	sum = 0;
	{
		double sq = 0, sigma = sqrt((double)NOISE_PARAM_MAX / 3);
		for (j = 0; j < 1000; j++) {
			CHECK_EQ_INT(noise_gaussian(NOISE_PARAM_MAX, 3, &x), 0);
			sum += x;
			sq += (double)x * (double)x;
		}
		CHECK(fabs((double)sum / 1000) < 6 * sigma / sqrt(1000));
		CHECK(fabs(sqrt(sq / 1000) / sigma - 1) < 0.15);
	}

	/* Bad parameters. */
	CHECK_EQ_INT(noise_laplace(0, 1, &x), CG_ERR_ARG);
	CHECK_EQ_INT(noise_laplace(1, 0, &x), CG_ERR_ARG);
	CHECK_EQ_INT(noise_gaussian(NOISE_PARAM_MAX + 1, 1, &x), CG_ERR_ARG);
	CHECK_EQ_INT(noise_gaussian(1, 0, &x), CG_ERR_ARG);

	/*
	 * Bernoulli(exp(-n/d)) frequencies: exp(-1/2), exp(-5/2), and exp(-1),
	 * which is read off one factorial draw (tolerances ~5 standard
	 * deviations).  Beyond the fixed trials (n/d >= 57) the answer is 0.
	 */
	{
		int hits[3] = { 0, 0, 0 }, beyond = 0;
		for (j = 0; j < 200000; j++) {
			hits[0] += noise_bernoulli_exp(1, 2);
			hits[1] += noise_bernoulli_exp(5, 2);
			hits[2] += noise_bernoulli_exp(7, 7);
		}
		CHECK(fabs(hits[0] / 200000.0 - exp(-0.5)) < 0.005);
		CHECK(fabs(hits[1] / 200000.0 - exp(-2.5)) < 0.003);
		CHECK(fabs(hits[2] / 200000.0 - exp(-1)) < 0.005);
		for (j = 0; j < 1000; j++)
			beyond += noise_bernoulli_exp(58, 1) + noise_bernoulli_exp((unsigned __int128)1 << 100, 3);
		CHECK_EQ_INT(beyond, 0);
		CHECK_EQ_INT(noise_bernoulli_exp(1, 0), 0);
	}

	/*
	 * A child forked after its parent drew noise draws other noise: the
	 * samplers' pool of random bytes is not inherited (if it were, parent
	 * and child would draw the same sequence, as the old pool did).
	 */
	{
		int64_t mine[8], theirs[8];
		int pfd[2], st;
		pid_t pid;

		CHECK_EQ_INT(noise_laplace(1000000000, 1, &x), 0);
		CHECK_EQ_INT(pipe(pfd), 0);
		if ((pid = fork()) == 0) {
			for (j = 0; j < 8; j++)
				if (noise_laplace(1000000000, 1, &theirs[j]) != 0)
					_exit(1);
			_exit(write(pfd[1], theirs, sizeof(theirs)) == (ssize_t)sizeof(theirs) ? 0 : 1);
		}
		CHECK(pid > 0);
		close(pfd[1]);
		for (j = 0; j < 8; j++)
			CHECK_EQ_INT(noise_laplace(1000000000, 1, &mine[j]), 0);
		CHECK_EQ_INT(read(pfd[0], theirs, sizeof(theirs)), sizeof(theirs));
		close(pfd[0]);
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		CHECK(memcmp(mine, theirs, sizeof(mine)) != 0);
	}

	/*
	 * Timing.  Laplace at scale 20 (small: |z| < 20, large: |z| >= 40), with
	 * the old sampler interleaved, which must be caught; then the Gaussian
	 * at sigma 20 (|z| < 10 against |z| >= 30) interleaved with the Laplace
	 * at scale 41/2, whose scale's denominator takes the division path;
	 * small is below half a standard deviation, large from 1.5 (Gaussian),
	 * or below one scale and from two (Laplace).
	 */
	check_timing("discrete Laplace, scale 20", noise_laplace, 20, 1, 20, 40,
	    "old discrete Laplace, scale 20", old_laplace, 20, 1, 20, 40, 1);
	check_timing("discrete Gaussian, sigma 20", noise_gaussian, 400, 1, 10, 30,
	    "discrete Laplace, scale 41/2", noise_laplace, 41, 2, 20, 41, 0);
	/* and at a sum's scales, where the acceptance test's numerator and denominator pass 2^64 */
	check_timing("discrete Gaussian, sigma 2.2e6", noise_gaussian, 5000000000000ull, 1, 1118034, 3354102,
	    "discrete Laplace, scale 1e12/3", noise_laplace, 1000000000000ull, 3, 333333333333ll, 666666666666ll, 0);
	CGT_DONE();
}
