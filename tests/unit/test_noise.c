/*
 * test_noise.c - the exact samplers against their exact distributions.
 *
 * For several scales, 10^6 draws pass a chi-squared goodness-of-fit test
 * against the pmf at that scale, and the same draws fail it against the pmf
 * at 0.7x and 1.3x the scale, so the test has power.  The critical value is
 * for p = 1e-5 (Wilson-Hilferty), so a correct sampler fails about once in
 * 100,000 runs per scale.
 */
#include <math.h>
#include <stdint.h>
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

	/* Bernoulli(exp(-n/d)) frequencies: exp(-1/2) and exp(-5/2). */
	{
		int hits[2] = { 0, 0 };
		for (j = 0; j < 200000; j++) {
			hits[0] += noise_bernoulli_exp(1, 2);
			hits[1] += noise_bernoulli_exp(5, 2);
		}
		CHECK(fabs(hits[0] / 200000.0 - exp(-0.5)) < 0.005);
		CHECK(fabs(hits[1] / 200000.0 - exp(-2.5)) < 0.003);
	}
	CGT_DONE();
}
