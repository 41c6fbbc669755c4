/*
 * arena.h - a bump allocator for protobuf-c decoding.
 *
 * Decoding one record with the default allocator costs a malloc per field
 * and per string; with an arena that is reset between records it costs
 * none.  Memory beyond the arena's buffer falls back to malloc and is freed
 * at the next reset.  Reset wipes what was used: decoded payloads hold
 * feature values.
 */
#ifndef CG_ARENA_H
#define CG_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

struct pb_arena {
	unsigned char *buf;       /* owned */
	size_t cap, used;
	void **big;               /* owned: fallback allocations until the next reset */
	size_t nbig, capbig;
	int failed;               /* an allocation failed since the last reset */
	ProtobufCAllocator allocator;
};

/* 0, or -1 if the buffer cannot be allocated. */
int pb_arena_init(struct pb_arena *a, size_t cap);
void pb_arena_reset(struct pb_arena *a);
void pb_arena_free(struct pb_arena *a);

#endif
