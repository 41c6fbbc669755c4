/*
 * cgtest.h - the unit tests' few macros.  Each test file is its own program:
 * it prints one line per failed check and ends with "N passed, N failed".
 */
#ifndef CG_TEST_H
#define CG_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cgt_pass, cgt_fail;

#define CHECK(cond) do { \
	if (cond) cgt_pass++; \
	else { cgt_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_EQ_INT(a, b) do { \
	long long cgt_a = (long long)(a), cgt_b = (long long)(b); \
	if (cgt_a == cgt_b) cgt_pass++; \
	else { cgt_fail++; fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
	    __FILE__, __LINE__, #a, cgt_a, #b, cgt_b); } \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *cgt_sa = (a), *cgt_sb = (b); \
	if (cgt_sa != NULL && cgt_sb != NULL && strcmp(cgt_sa, cgt_sb) == 0) cgt_pass++; \
	else { cgt_fail++; fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", \
	    __FILE__, __LINE__, #a, cgt_sa ? cgt_sa : "(null)", cgt_sb ? cgt_sb : "(null)"); } \
} while (0)

/* The message of a rejection must say what and where: check a substring. */
#define CHECK_CONTAINS(hay, needle) do { \
	const char *cgt_h = (hay), *cgt_n = (needle); \
	if (cgt_h != NULL && strstr(cgt_h, cgt_n) != NULL) cgt_pass++; \
	else { cgt_fail++; fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", \
	    __FILE__, __LINE__, cgt_h ? cgt_h : "(null)", cgt_n); } \
} while (0)

#define CGT_DONE() do { \
	printf("%s: %d passed, %d failed\n", __FILE__, cgt_pass, cgt_fail); \
	return cgt_fail == 0 ? 0 : 1; \
} while (0)

/* Directory of the published vectors (tests run from the repository root). */
static inline const char *
cgt_vectors_dir(void)
{
	const char *d = getenv("CG_VECTORS");
	return d != NULL ? d : "tests/vectors";
}

#endif
