/*
 * fuzz_payload.c - libFuzzer harness for proto/payload.c, differential:
 * whatever the bytes, payload_unpack and protobuf-c's unpacker agree (both
 * fail, or both decode the same fields, names and values), with the arena
 * reused across inputs as join_each reuses it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/arena.h"
#include "proto/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const Crossgate__RecordPayload *a, const Crossgate__RecordPayload *b)
{
	size_t i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->n_fields != b->n_fields)
		return 0;
	for (i = 0; i < a->n_fields; i++) {
		const Crossgate__Field *x = a->fields[i], *y = b->fields[i];
		if (strcmp(x->name, y->name) != 0 || x->value_case != y->value_case)
			return 0;
		if (x->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE && x->int_value != y->int_value)
			return 0;
		if (x->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE && strcmp(x->str_value, y->str_value) != 0)
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pb_arena a;
	static int ready;
	Crossgate__RecordPayload *ref, *got;

	if (!ready) {
		if (pb_arena_init(&a, 1 << 16) != 0)
			abort();
		ready = 1;
	}
	pb_arena_reset(&a);
	ref = crossgate__record_payload__unpack(NULL, size, data);
	got = payload_unpack(&a, size, data);
	if (!same(ref, got))
		abort();
	crossgate__record_payload__free_unpacked(ref, NULL);
	return 0;
}
