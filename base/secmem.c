/* secmem.c - see secmem.h */
#include "base/secmem.h"

#include <stdlib.h>
#include <sodium.h>

void *
secmem_alloc(size_t len)
{
#ifdef CG_ASAN
	return calloc(1, len);
#else
	return sodium_malloc(len);
#endif
}

void
secmem_free(void *p, size_t len)
{
	if (p == NULL)
		return;
#ifdef CG_ASAN
	sodium_memzero(p, len);
	free(p);
#else
	(void)len;
	sodium_free(p);   /* wipes, then unmaps */
#endif
}
