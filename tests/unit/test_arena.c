/* test_arena.c - the bump allocator that protobuf-c decodes records into. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/arena.h"
#include "proto/crossgate.pb-c.h"
#include "tests/unit/cgtest.h"

static void *
arena_alloc(struct pb_arena *a, size_t n)
{
	return a->allocator.alloc(a->allocator.allocator_data, n);
}

static int
aligned16(const void *p)
{
	return ((uintptr_t)p & 15) == 0;
}

static int
in_buf(const struct pb_arena *a, const void *p)
{
	const unsigned char *c = p;
	return c >= a->buf && c < a->buf + a->cap;
}

static void
test_alloc(void)
{
	static const size_t sizes[] = { 1, 3, 16, 17, 100, 15, 32, 1 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct pb_arena a;
	unsigned char *p[N];
	size_t i, j, k;

	CHECK_EQ_INT(pb_arena_init(&a, 1000), 0);
	CHECK(a.buf != NULL);
	CHECK_EQ_INT(a.cap, 1008);                  /* rounded up to the alignment */
	CHECK_EQ_INT(a.used, 0);
	CHECK(aligned16(a.buf));
	for (i = 0; i < N; i++) {
		p[i] = arena_alloc(&a, sizes[i]);
		CHECK(p[i] != NULL);
		CHECK(aligned16(p[i]));
		CHECK(in_buf(&a, p[i]));
		memset(p[i], (int)(0x40 + i), sizes[i]);
	}
	CHECK_EQ_INT(a.nbig, 0);
	CHECK_EQ_INT(a.used, 16 + 16 + 16 + 32 + 112 + 16 + 32 + 16);
	/* Distinct and non-overlapping: every block still holds its own byte. */
	for (i = 0; i < N; i++) {
		for (k = 0; k < sizes[i]; k++)
			if (p[i][k] != (unsigned char)(0x40 + i))
				break;
		CHECK_EQ_INT(k, sizes[i]);
		for (j = i + 1; j < N; j++)
			CHECK(p[i] + sizes[i] <= p[j] || p[j] + sizes[j] <= p[i]);
	}
	pb_arena_free(&a);
	CHECK(a.buf == NULL);
	CHECK_EQ_INT(a.cap, 0);
}

static void
test_fallback_and_reset(void)
{
	struct pb_arena a;
	unsigned char *first, *p, *q[40];
	size_t i, k;

	CHECK_EQ_INT(pb_arena_init(&a, 64), 0);
	first = arena_alloc(&a, 48);
	CHECK(first == a.buf);
	memset(first, 0xee, 48);

	/* Does not fit in what is left: served from the heap, still aligned and usable. */
	p = arena_alloc(&a, 32);
	CHECK(p != NULL);
	CHECK(!in_buf(&a, p));
	CHECK(aligned16(p));
	CHECK_EQ_INT(a.nbig, 1);
	memset(p, 0x11, 32);
	/* What fits still comes from the buffer. */
	CHECK(in_buf(&a, arena_alloc(&a, 16)));
	CHECK_EQ_INT(a.used, 64);

	/* Many large blocks: the list of fallbacks grows past its first size. */
	for (i = 0; i < 40; i++) {
		q[i] = arena_alloc(&a, 1000 + i);
		CHECK(q[i] != NULL && aligned16(q[i]) && !in_buf(&a, q[i]));
		memset(q[i], (int)i, 1000 + i);
	}
	CHECK_EQ_INT(a.nbig, 41);
	CHECK(a.capbig >= 41);
	for (i = 0; i < 40; i++) {
		for (k = 0; k < 1000 + i; k++)
			if (q[i][k] != (unsigned char)i)
				break;
		CHECK_EQ_INT(k, 1000 + i);
	}
	CHECK_EQ_INT(a.failed, 0);

	/* Sizes that cannot be served fail cleanly and are remembered until reset. */
	CHECK(arena_alloc(&a, SIZE_MAX) == NULL);
	CHECK_EQ_INT(a.failed, 1);
	CHECK(arena_alloc(&a, SIZE_MAX - 15) == NULL);
	CHECK_EQ_INT(a.nbig, 41);

	/* Reset frees the fallbacks, wipes what was used and makes the buffer reusable. */
	pb_arena_reset(&a);
	CHECK_EQ_INT(a.used, 0);
	CHECK_EQ_INT(a.nbig, 0);
	CHECK_EQ_INT(a.failed, 0);
	for (k = 0; k < 48; k++)
		if (a.buf[k] != 0)
			break;
	CHECK_EQ_INT(k, 48);
	CHECK(arena_alloc(&a, 64) == first);
	CHECK_EQ_INT(a.used, 64);
	CHECK_EQ_INT(a.nbig, 0);

	/* Reset twice in a row, and free with live fallbacks: no leak (ASan/valgrind). */
	pb_arena_reset(&a);
	pb_arena_reset(&a);
	CHECK(arena_alloc(&a, 500) != NULL);
	CHECK_EQ_INT(a.nbig, 1);
	pb_arena_free(&a);
	CHECK(a.buf == NULL && a.big == NULL);
	CHECK_EQ_INT(a.nbig, 0);
	pb_arena_free(&a);                          /* freed twice: a no-op */
}

/* A packed RecordPayload with n fields alternating int and string values. */
static size_t
payload_pack(unsigned char *out, size_t outsz, size_t n)
{
	Crossgate__RecordPayload msg = CROSSGATE__RECORD_PAYLOAD__INIT;
	Crossgate__Field f[16], *fp[16];
	char names[16][32], strs[16][48];
	size_t i, len;

	if (n > 16)
		return 0;
	for (i = 0; i < n; i++) {
		crossgate__field__init(&f[i]);
		snprintf(names[i], sizeof(names[i]), "col%zu", i);
		f[i].name = names[i];
		if (i % 2 == 0) {
			f[i].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
			f[i].int_value = -1000 * (int64_t)i - 7;
		} else {
			snprintf(strs[i], sizeof(strs[i]), "value number %zu", i);
			f[i].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
			f[i].str_value = strs[i];
		}
		fp[i] = &f[i];
	}
	msg.n_fields = n;
	msg.fields = fp;
	len = crossgate__record_payload__get_packed_size(&msg);
	if (len > outsz)
		return 0;
	return crossgate__record_payload__pack(&msg, out);
}

static void
payload_check(const Crossgate__RecordPayload *m, size_t n)
{
	char want[48];
	size_t i;

	CHECK(m != NULL);
	if (m == NULL)
		return;
	CHECK_EQ_INT(m->n_fields, n);
	for (i = 0; i < n && i < m->n_fields; i++) {
		snprintf(want, sizeof(want), "col%zu", i);
		CHECK_STR(m->fields[i]->name, want);
		if (i % 2 == 0) {
			CHECK_EQ_INT(m->fields[i]->value_case, CROSSGATE__FIELD__VALUE_INT_VALUE);
			CHECK_EQ_INT(m->fields[i]->int_value, -1000 * (int64_t)i - 7);
		} else {
			snprintf(want, sizeof(want), "value number %zu", i);
			CHECK_EQ_INT(m->fields[i]->value_case, CROSSGATE__FIELD__VALUE_STR_VALUE);
			CHECK_STR(m->fields[i]->str_value, want);
		}
	}
}

static void
test_decode(void)
{
	unsigned char packed[2048];
	size_t len = payload_pack(packed, sizeof(packed), 12), round;
	struct pb_arena a;
	Crossgate__RecordPayload *m;

	CHECK(len > 0);
	CHECK_EQ_INT(pb_arena_init(&a, 4096), 0);
	m = crossgate__record_payload__unpack(&a.allocator, len, packed);
	payload_check(m, 12);
	CHECK(a.used > 0);
	CHECK_EQ_INT(a.nbig, 0);                   /* all of it from the buffer */
	CHECK(in_buf(&a, m));
	/* Freeing through the arena's allocator is a no-op, so callers may do it. */
	if (m != NULL)
		crossgate__record_payload__free_unpacked(m, &a.allocator);
	pb_arena_reset(&a);

	/* One record after another, reset between them: the arena never grows. */
	for (round = 0; round < 200; round++) {
		m = crossgate__record_payload__unpack(&a.allocator, len, packed);
		CHECK(m != NULL && m->n_fields == 12);
		pb_arena_reset(&a);
	}
	CHECK_EQ_INT(a.nbig, 0);
	CHECK(a.big == NULL);
	pb_arena_free(&a);

	/* An arena too small for the record spills to the heap and still decodes it. */
	CHECK_EQ_INT(pb_arena_init(&a, 64), 0);
	m = crossgate__record_payload__unpack(&a.allocator, len, packed);
	payload_check(m, 12);
	CHECK(a.nbig > 0);
	CHECK_EQ_INT(a.failed, 0);
	pb_arena_reset(&a);
	CHECK_EQ_INT(a.nbig, 0);
	/* Decode, then free the arena without a reset: the spilled blocks go too. */
	m = crossgate__record_payload__unpack(&a.allocator, len, packed);
	payload_check(m, 12);
	pb_arena_free(&a);

	/* Malformed input fails without leaking what was allocated before the error. */
	CHECK_EQ_INT(pb_arena_init(&a, 32), 0);
	CHECK(crossgate__record_payload__unpack(&a.allocator, len - 1, packed) == NULL);
	pb_arena_free(&a);
}

static void
test_free_zeroed(void)
{
	struct pb_arena a;

	memset(&a, 0, sizeof(a));
	pb_arena_free(&a);
	CHECK(a.buf == NULL);
	pb_arena_reset(&a);                        /* nothing used, nothing to wipe */
	CHECK_EQ_INT(a.used, 0);
	pb_arena_free(NULL);
	CHECK(1);
}

int
main(void)
{
	test_alloc();
	test_fallback_and_reset();
	test_decode();
	test_free_zeroed();
	CGT_DONE();
}
