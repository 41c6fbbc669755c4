/*
 * secmem.h - memory for long-lived secrets.
 *
 * secmem_alloc() is sodium_malloc() (guard pages, mlock, canary); under
 * AddressSanitizer (CG_ASAN) it is plain calloc so that ASan sees the
 * allocation.  secmem_free() wipes before freeing; secmem_free(NULL, n) is a
 * no-op.
 */
#ifndef CG_SECMEM_H
#define CG_SECMEM_H

#include <stddef.h>

void *secmem_alloc(size_t len);
void secmem_free(void *p, size_t len);

#endif
