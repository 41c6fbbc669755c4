/*
 * fuzz_dpmodel.c - libFuzzer harness for the DP model release readers
 * (analytics/dpmodel.c) and the fit on what they accept.  Input: the first
 * byte picks ridge (even) or k-means (odd); the rest is the .meta.json, a NUL
 * byte, then the CSV.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/dpmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *meta, *csv, *nul;
	size_t mlen, clen, i;
	struct cg_err err;
	int rc;

	if (size < 1)
		return 0;
	meta = (const char *)data + 1;
	if ((nul = memchr(meta, '\0', size - 1)) == NULL)
		return 0;
	mlen = (size_t)(nul - meta);
	csv = nul + 1;
	clen = size - 1 - mlen - 1;
	if (data[0] % 2 == 0) {
		struct dpmodel_ridge_release r;
		struct dpmodel_ridge_fit f;

		rc = dpmodel_ridge_parse("fuzz.csv", csv, clen, meta, mlen, &r, &err);
		if (rc != 0) {
			if (strncmp(err.msg, "fuzz.csv", 8) != 0)
				abort();
			return 0;
		}
		if (r.p < 1 || r.p > DPMODEL_P_MAX || !(r.noise_sd >= 0))
			abort();
		for (i = 0; i <= r.p; i++)
			if (!(r.hi[i] > r.lo[i]))
				abort();
		/* the fit on anything the reader accepts ends, with a result or a refusal */
		if (dpmodel_ridge_fit(&r, 8, 1, 1, &f, &err) == 0 && f.p != r.p)
			abort();
	} else {
		struct dpmodel_kmeans_release k;
		double total = 0;

		rc = dpmodel_kmeans_parse("fuzz.csv", csv, clen, meta, mlen, &k, &err);
		if (rc != 0) {
			if (strncmp(err.msg, "fuzz.csv", 8) != 0)
				abort();
			return 0;
		}
		if (k.d < 1 || k.d > DPMODEL_P_MAX || k.k > DPMODEL_K_MAX)
			abort();
		for (i = 0; i < k.k; i++) {
			if (!(k.count[i] > 0))
				abort();
			total += k.share[i];
		}
		if (k.k > 0 && isfinite(total) && fabs(total - 1) > 1e-6)
			abort();
	}
	return 0;
}
