/*
 * bench_synthrel.c - a DP synthetic release (gateway/synthrel.h: MST, rho
 * 0.1) of N rows (default 1,000,000) from N subjects against the same
 * non-private computation: the same marginals without noise and the best
 * tree instead of the exponential mechanism's, then the same model fit,
 * sampling and CSV writing.  Both run on the same binned subjects in memory,
 * in the same run, alternating, three times each (the medians are shown):
 * reading and opening the store is the same for both and is measured by the
 * query and pipeline benches.
 *
 * usage: bench_synthrel DEMO_DIR [N]   (the policy of a demo directory; the
 * subjects' bins are drawn here, with the demo's course -> game affinity)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "bench/bench.h"
#include "gateway/join.h"
#include "gateway/synthrel.h"
#include "policy/policy.h"

#define BENCH_RHO_NANO 100000000LL

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One release: fit, then draw and write `rows` rows to path; *fit and *draw get the seconds. */
static void
bench_release(const struct synthrel_schema *s, const uint16_t *codes, size_t n, int noiseless, const char *path,
    double *fit, double *draw)
{
	struct synthrel_model *m = NULL;
	struct cg_err e;
	FILE *f;
	double t = bench_now();

	if (synthrel_fit(s, codes, n, BENCH_RHO_NANO, noiseless, &m, &e) != 0)
		bench_die("fit", &e);
	*fit = bench_now() - t;
	t = bench_now();
	if ((f = fopen(path, "w")) == NULL)
		bench_die(path, NULL);
	if (synthrel_write_csv(m, n, f, &e) != 0)
		bench_die("write", &e);
	if (fclose(f) != 0)
		bench_die(path, NULL);
	*draw = bench_now() - t;
	synthrel_model_free(m);
}

int
main(int argc, char **argv)
{
	struct policy *pol = NULL;
	struct join pre;
	struct join_col *cols;
	struct synthrel_schema *s = NULL;
	struct cg_err e;
	char path[4096], out[4200];
	size_t ncols = 0, nqi = 0, n = 1000000, r, c, course = 0, game = 0, k;
	uint16_t *codes;
	uint64_t x;
	double fit[2][3], draw[2][3], tot[2][3], t0;
	int round;

	if (argc < 2 || argc > 3 || sodium_init() < 0) {
		fprintf(stderr, "usage: bench_synthrel DEMO_DIR [N]\n");
		return 2;
	}
	if (argc == 3)
		n = strtoul(argv[2], NULL, 10);
	snprintf(path, sizeof(path), "%s/policy.yaml", argv[1]);
	snprintf(out, sizeof(out), "%s/bench-synthrel.csv", argv[1]);
	if (policy_load(path, &pol, NULL, &e) != 0)
		bench_die(path, &e);
	memset(&pre, 0, sizeof(pre));
	pre.side[0] = &pol->partners[0];
	pre.side[1] = &pol->partners[1];
	if ((cols = calloc(JOIN_COLS_MAX, sizeof(*cols))) == NULL)
		bench_die("calloc", NULL);
	join_columns(&pre, policy_purpose_bit(pol, "analytics"), cols, &ncols, &nqi);
	if (synthrel_schema_make(cols, ncols, 0, &s, &e) != 0)
		bench_die("schema", &e);
	for (c = 0; c < s->ncols; c++) {
		if (strcmp(s->cols[c].name, "k_top_course_category") == 0)
			course = c;
		if (strcmp(s->cols[c].name, "g_top_game_category") == 0)
			game = c;
	}
	/* Bins skewed to the first ones (like spends), and programming -> strategy as in the demo. */
	if ((codes = malloc(n * s->ncols * sizeof(*codes))) == NULL)
		bench_die("malloc", NULL);
	t0 = bench_now();
	randombytes_buf(&x, sizeof(x));
	x |= 1;
	for (r = 0; r < n; r++) {
		for (c = 0; c < s->ncols; c++) {
			/* xorshift64*: test data, not secrets */
			uint64_t v;
			uint32_t nb = (uint32_t)s->cols[c].nbins - 1, b;

			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			v = x * 2685821657736338717ull;
			b = (uint32_t)((v >> 32) % nb);
			if (v & 1)
				b /= 4;
			codes[r * s->ncols + c] = (uint16_t)b;
		}
		if (codes[r * s->ncols + course] == 0 && (x & 2))
			codes[r * s->ncols + game] = 3;
	}
	printf("synthrel %zu subjects, %zu columns (drawn in %.2f s)\n", n, s->ncols, bench_now() - t0);
	for (round = 0; round < 3; round++)
		for (k = 0; k < 2; k++) {
			int noiseless = (round + (int)k) % 2;   /* alternate which goes first */

			bench_release(s, codes, n, noiseless, out, &fit[noiseless][round], &draw[noiseless][round]);
			tot[noiseless][round] = fit[noiseless][round] + draw[noiseless][round];
		}
	for (k = 0; k < 2; k++) {
		qsort(fit[k], 3, sizeof(double), bench_cmp);
		qsort(draw[k], 3, sizeof(double), bench_cmp);
		qsort(tot[k], 3, sizeof(double), bench_cmp);
	}
	printf("         DP release (rho 0.1): %.3f s = fit %.3f s + draw and write %zu rows %.3f s\n", tot[0][1],
	    fit[0][1], n, draw[0][1]);
	printf("         same without noise:   %.3f s = fit %.3f s + draw and write %zu rows %.3f s\n", tot[1][1],
	    fit[1][1], n, draw[1][1]);
	printf("         ratio %.2fx the non-private computation (fit alone %.2fx)\n", tot[0][1] / tot[1][1],
	    fit[0][1] / fit[1][1]);
	remove(out);
	synthrel_schema_free(s);
	free(codes);
	free(cols);
	policy_free(pol);
	return 0;
}
