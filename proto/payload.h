/*
 * payload.h - decoding a record payload (crossgate.RecordPayload) fast.
 *
 * protobuf-c's generic unpacker costs about 2 us for a record of ten
 * fields, more than opening its AEAD; a query decodes every record of every
 * joined subject.  payload_unpack decodes the plain encoding an agent
 * writes (fields in order, each a name and one value, strings of ASCII) in
 * one pass, into the allocator's memory, and hands anything else (unknown
 * or repeated tags, other wire types, overlong varints, non-ASCII or NUL
 * bytes in a string) to protobuf-c's unpacker, so the result is always
 * protobuf-c's own: tests/unit/test_payload.c compares the two on valid and
 * mutated encodings.
 *
 * Ownership: the result and its strings live in the arena until its next
 * reset (never free_unpacked: the fast path allocates the fields in one
 * block).  NULL: malformed, or out of memory (a->failed).
 */
#ifndef CG_PAYLOAD_H
#define CG_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include "proto/arena.h"
#include "proto/crossgate.pb-c.h"

Crossgate__RecordPayload *payload_unpack(struct pb_arena *a, size_t len, const uint8_t *data);

#endif
