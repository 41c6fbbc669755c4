/* fuzz_policy.c - libFuzzer harness for the policy parser (YAML and validation). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <sodium.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct policy_problems problems = { NULL, 0 };
	struct policy *p = NULL;
	struct cg_err err;
	struct policy_value v;
	size_t i, j;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	if (policy_parse("fuzz.yaml", (const char *)data, size, &p, &problems, &err) == 0) {
		if (p == NULL || problems.n != 0)
			abort();
		/* A policy that parsed must be usable: run each column over the input too. */
		for (i = 0; i < p->npartners; i++) {
			const struct policy_partner *pp = &p->partners[i];

			if (policy_partner_find(p, pp->id) != pp)
				abort();
			for (j = 0; j < pp->ncolumns; j++) {
				const struct policy_column *c = &pp->columns[j];
				char out[POLICY_VALUE_MAX + 1];

				if (policy_column_find(pp, c->name) != c)
					abort();
				if (policy_value_parse(p, c, (const char *)data, size, &v, &err) == 0 &&
				    !v.is_null) {
					if (c->gen == POLICY_GEN_BAND)
						(void)!policy_generalize_int(c, v.i, out, sizeof(out));
					else if (c->gen == POLICY_GEN_MAP)
						(void)!policy_generalize_str(c, (const char *)data, size,
						    out, sizeof(out));
				}
			}
		}
	} else if (p != NULL || problems.n == 0) {
		abort();
	}
	{
		int64_t t;

		(void)!policy_parse_time((const char *)data, size, &t, &err);
	}
	policy_problems_free(&problems);
	policy_free(p);
	return 0;
}
