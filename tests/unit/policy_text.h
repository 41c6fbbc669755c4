/*
 * policy_text.h - for the policy tests: the example policy's text, and
 * variants of it made by replacing a piece of text (header-only; each test
 * is its own program).
 */
#ifndef CG_TEST_POLICY_TEXT_H
#define CG_TEST_POLICY_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A whole file as a NUL-terminated string (malloc'd), or NULL. */
static inline char *
policy_text_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = calloc(1, (size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* `text` with the first `from` (every one if `all`) replaced by `to` (malloc'd); NULL if `from` is absent. */
static inline char *
policy_text_replace(const char *text, const char *from, const char *to, int all)
{
	const char *src = text, *at = strstr(text, from);
	size_t nfrom = strlen(from), nto = strlen(to), count = 0;
	char *t, *o;

	if (at == NULL)
		return NULL;
	for (const char *p = at; p != NULL; p = all ? strstr(p + nfrom, from) : NULL)
		count++;
	if ((t = o = malloc(strlen(text) + count * nto + 1)) == NULL)
		return NULL;
	while (at != NULL) {
		memcpy(o, src, (size_t)(at - src));
		o += at - src;
		memcpy(o, to, nto);
		o += nto;
		src = at + nfrom;
		at = all ? strstr(src, from) : NULL;
	}
	strcpy(o, src);
	return t;
}

#endif
