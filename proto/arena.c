/* arena.c - see arena.h */
#include "proto/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define PB_ARENA_ALIGN 16

static void *
pb_arena_alloc(void *data, size_t size)
{
	struct pb_arena *a = data;
	size_t need = (size + PB_ARENA_ALIGN - 1) & ~(size_t)(PB_ARENA_ALIGN - 1);
	void *p;

	if (need >= size && a->cap - a->used >= need) {
		p = a->buf + a->used;
		a->used += need;
		return p;
	}
	if (a->nbig == a->capbig) {
		size_t ncap = a->capbig ? a->capbig * 2 : 16;
		void **nb = realloc(a->big, ncap * sizeof(*nb));
		if (nb == NULL) {
			a->failed = 1;
			return NULL;
		}
		a->big = nb;
		a->capbig = ncap;
	}
	/* A header keeps the size, so that reset can wipe it. */
	if (size > SIZE_MAX - PB_ARENA_ALIGN || (p = calloc(1, size + PB_ARENA_ALIGN)) == NULL) {
		a->failed = 1;
		return NULL;
	}
	memcpy(p, &size, sizeof(size));
	a->big[a->nbig++] = p;
	return (unsigned char *)p + PB_ARENA_ALIGN;
}

static void
pb_arena_nofree(void *data, void *p)
{
	(void)data;
	(void)p;   /* everything goes at the next reset */
}

int
pb_arena_init(struct pb_arena *a, size_t cap)
{
	memset(a, 0, sizeof(*a));
	cap = (cap + PB_ARENA_ALIGN - 1) & ~(size_t)(PB_ARENA_ALIGN - 1);
	if ((a->buf = aligned_alloc(PB_ARENA_ALIGN, cap)) == NULL)
		return -1;
	a->cap = cap;
	a->allocator.alloc = pb_arena_alloc;
	a->allocator.free = pb_arena_nofree;
	a->allocator.allocator_data = a;
	return 0;
}

void
pb_arena_reset(struct pb_arena *a)
{
	size_t i;

	if (a->used)
		sodium_memzero(a->buf, a->used);
	a->used = 0;
	for (i = 0; i < a->nbig; i++) {
		size_t n;
		memcpy(&n, a->big[i], sizeof(n));
		sodium_memzero(a->big[i], n + PB_ARENA_ALIGN);
		free(a->big[i]);
	}
	a->nbig = 0;
	a->failed = 0;
}

void
pb_arena_free(struct pb_arena *a)
{
	if (a == NULL || a->buf == NULL)
		return;
	pb_arena_reset(a);
	free(a->big);
	free(a->buf);
	memset(a, 0, sizeof(*a));
}
