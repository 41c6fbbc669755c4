/*
 * bench_noise.c - the exact samplers' throughput, as a ratio against
 * libsodium's uniform draws measured in the same run, and their time per
 * draw split by the size of the value drawn (the timing channel of Jin et
 * al., S&P 2022: it should not depend on |z|).
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench.h"
#include "crypto/noise.h"

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

int
main(void)
{
	static const struct { const char *what; int gauss; uint64_t num, den, small, large; } sc[] = {
		{ "discrete Gaussian, sigma^2 = 20 (a count at rho 0.05)", 1, 20, 1, 5, 10 },
		{ "discrete Gaussian, sigma = 2.2e6 (a sum bounded by 5e5 at rho 0.05)", 1, 5000000000000ull, 1,
		  2236068, 4472136 },
		{ "discrete Laplace, scale 20 (a count at epsilon 0.1)", 0, 20, 1, 20, 40 },
	};
	enum { DRAWS = 200000, TIMED = 20000 };
	static double t_small[TIMED], t_large[TIMED];
	int64_t x, acc = 0;
	uint32_t u = 0;
	size_t i, j, ns, nl;
	double t, t_rng;

	if (sodium_init() < 0)
		bench_die("sodium_init", NULL);
	t_rng = bench_now();
	for (j = 0; j < DRAWS * 10; j++)
		u ^= randombytes_uniform(1000000007u);
	t_rng = bench_now() - t_rng;
	printf("sampler %9.0f uniform draws/s from libsodium's CSPRNG (randombytes_uniform), the baseline\n",
	    (double)DRAWS * 10 / t_rng);
	for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		t = bench_now();
		for (j = 0; j < DRAWS; j++) {
			if ((sc[i].gauss ? noise_gaussian(sc[i].num, sc[i].den, &x) : noise_laplace(sc[i].num, sc[i].den,
			    &x)) != 0)
				bench_die("sampler", NULL);
			acc += x;
		}
		t = bench_now() - t;
		printf("        %9.0f draws/s %s: %.1f%% of the uniform rate\n", (double)DRAWS / t, sc[i].what,
		    100.0 * ((double)DRAWS / t) / ((double)DRAWS * 10 / t_rng));
		/* each draw timed alone, then filed by the size of what it drew */
		for (j = ns = nl = 0; j < TIMED; j++) {
			uint64_t a;

			t = bench_now();
			if ((sc[i].gauss ? noise_gaussian(sc[i].num, sc[i].den, &x) : noise_laplace(sc[i].num, sc[i].den,
			    &x)) != 0)
				bench_die("sampler", NULL);
			t = bench_now() - t;
			a = x < 0 ? (uint64_t)-x : (uint64_t)x;
			if (a < sc[i].small)
				t_small[ns++] = t;
			else if (a >= sc[i].large)
				t_large[nl++] = t;
		}
		printf("        median %.0f ns per draw for |z| < %llu, %.0f ns for |z| >= %llu\n", median(t_small, ns) * 1e9,
		    (unsigned long long)sc[i].small, median(t_large, nl) * 1e9, (unsigned long long)sc[i].large);
	}
	if (acc == 42 && u == 42)
		printf(" \n");    /* keeps the loops from being optimized away */
	return 0;
}
