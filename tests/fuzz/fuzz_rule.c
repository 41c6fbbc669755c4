/*
 * fuzz_rule.c - libFuzzer harness for the audience rule parser (gateway/rule.c):
 * whatever the input, a refusal is "rule: ..." and names an offset within the
 * input; a parsed rule's canonical form parses again to the same canonical
 * form (so the rule hash of the audit events is stable), and its length is
 * what rule_canon says.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway/rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct rule *r = NULL, *r2 = NULL;
	struct cg_err err;
	char *c1, *c2, h1[65], h2[65];
	size_t n1, n2;
	unsigned long long off;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	if (rule_parse((const char *)data, size, &r, &err) != 0) {
		if (r != NULL || strncmp(err.msg, "rule: ", 6) != 0)
			abort();
		if (sscanf(err.msg, "rule: offset %llu:", &off) == 1 && off > size)
			abort();
		return 0;
	}
	n1 = rule_canon(r, NULL, 0);
	if ((c1 = malloc(n1 + 1)) == NULL)
		abort();
	if (rule_canon(r, c1, n1 + 1) != n1 || strlen(c1) != n1)
		abort();
	/* the canonical form may exceed RULE_TEXT_MAX (parentheses added); only shorter ones must re-parse */
	if (n1 <= RULE_TEXT_MAX) {
		if (rule_parse(c1, n1, &r2, &err) != 0)
			abort();
		n2 = rule_canon(r2, NULL, 0);
		if ((c2 = malloc(n2 + 1)) == NULL)
			abort();
		rule_canon(r2, c2, n2 + 1);
		if (n2 != n1 || memcmp(c1, c2, n1) != 0)
			abort();
		rule_hash_hex(r, h1);
		rule_hash_hex(r2, h2);
		if (strcmp(h1, h2) != 0)
			abort();
		free(c2);
		rule_free(r2);
	}
	free(c1);
	rule_free(r);
	return 0;
}
