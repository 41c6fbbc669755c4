/*
 * fuzz_segment.c - libFuzzer harness for a segment audience's files
 * (gateway/segment.c), which a gateway reads from an analyst's request: the
 * input is a cluster byte, a two-byte CSV length, the CSV and the sidecar.
 * Whatever they hold, a refusal is "segment NAME: ..." and leaves nothing;
 * an accepted segment has 1 to MODEL_COLS_MAX columns, puts every subject in
 * one of its released clusters (the chosen one among them), and its
 * canonical form is as long as segment_canon says.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct segment *s = NULL;
	struct cg_err err;
	int64_t x[MODEL_COLS_MAX];
	char canon[1024];
	size_t clen, i, n;
	uint32_t cluster, c;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	if (size < 3)
		return 0;
	cluster = data[0] % (MODEL_K_MAX + 2);
	clen = ((size_t)data[1] << 8 | data[2]) % (size - 2);
	if (segment_load_mem("fuzz", (const char *)data + 3, clen, (const char *)data + 3 + clen, size - 3 - clen,
	    cluster, &s, &err) != 0) {
		if (s != NULL || strncmp(err.msg, "segment fuzz", 12) != 0)
			abort();
		return 0;
	}
	n = segment_ncols(s);
	if (n < 1 || n > MODEL_COLS_MAX)
		abort();
	for (i = 0; i < n; i++)
		x[i] = (int64_t)(i * 7919) - 3;
	c = segment_nearest(s, x);
	if (c < 1 || c > MODEL_K_MAX)
		abort();
	x[0] = INT64_MAX;
	c = segment_nearest(s, x);
	if (c < 1 || c > MODEL_K_MAX)
		abort();
	if (segment_canon(s, canon, sizeof(canon)) < sizeof(canon) && strlen(canon) != segment_canon(s, NULL, 0))
		abort();
	segment_free(s);
	return 0;
}
