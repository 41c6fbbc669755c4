/*
 * test_payload.c - payload_unpack gives protobuf-c's own result: on random
 * payloads as an agent encodes them (the fast path), on payloads it leaves
 * to protobuf-c (non-ASCII and NUL strings, repeated or unknown tags, long
 * varints), and on every kind of damage (flipped bytes, cuts, insertions),
 * where both agree that it is malformed or decode the same thing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/arena.h"
#include "proto/payload.h"
#include "tests/unit/cgtest.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Two decodings are the same message: fields, names, value kinds and values. */
static int
same(const Crossgate__RecordPayload *a, const Crossgate__RecordPayload *b)
{
	size_t i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->n_fields != b->n_fields || a->base.n_unknown_fields != b->base.n_unknown_fields)
		return 0;
	for (i = 0; i < a->n_fields; i++) {
		const Crossgate__Field *x = a->fields[i], *y = b->fields[i];
		if (strcmp(x->name, y->name) != 0 || x->value_case != y->value_case ||
		    x->base.n_unknown_fields != y->base.n_unknown_fields)
			return 0;
		if (x->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE && x->int_value != y->int_value)
			return 0;
		if (x->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE && strcmp(x->str_value, y->str_value) != 0)
			return 0;
	}
	return 1;
}

static int64_t
rnd_int(void)
{
	static const int64_t edge[] = { 0, 1, -1, 63, -64, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN };

	switch (rnd() % 3) {
	case 0:
		return edge[rnd() % (sizeof(edge) / sizeof(edge[0]))];
	case 1:
		return (int64_t)(rnd() % 200000) - 100000;
	default:
		return (int64_t)rnd();
	}
}

/* A string: mostly ASCII, sometimes with a byte the fast path leaves to protobuf-c (sets *odd). */
static void
rnd_str(char *s, size_t cap, int *odd)
{
	size_t n = rnd() % (cap - 1), i;

	for (i = 0; i < n; i++) {
		s[i] = (char)(' ' + rnd() % 95);
		if (rnd() % 200 == 0) {
			s[i] = (char)(0x80 + rnd() % 0x80);
			*odd = 1;
		}
	}
	s[n] = '\0';
}

/* A random payload packed by protobuf-c into buf; returns its length. */
static size_t
rnd_payload(uint8_t *buf, int *odd)
{
	static char names[24][40], strs[24][40];
	Crossgate__Field f[24], *fp[24];
	Crossgate__RecordPayload p;
	size_t n = rnd() % 24, i;

	crossgate__record_payload__init(&p);
	for (i = 0; i < n; i++) {
		crossgate__field__init(&f[i]);
		rnd_str(names[i], sizeof(names[i]), odd);
		f[i].name = names[i];
		switch (rnd() % 3) {
		case 0:
			f[i].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
			f[i].int_value = rnd_int();
			break;
		case 1:
			f[i].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
			rnd_str(strs[i], sizeof(strs[i]), odd);
			f[i].str_value = strs[i];
			break;
		default:
			break;               /* no value */
		}
		fp[i] = &f[i];
	}
	p.fields = fp;
	p.n_fields = n;
	return crossgate__record_payload__pack(&p, buf);
}

/* Decode with both; CHECK they agree.  Returns 1 if both decoded. */
static int
agree(struct pb_arena *a, const uint8_t *buf, size_t len)
{
	Crossgate__RecordPayload *ref = crossgate__record_payload__unpack(NULL, len, buf), *got;
	int ok;

	pb_arena_reset(a);
	got = payload_unpack(a, len, buf);
	ok = same(ref, got);
	CHECK(ok);
	if (!ok)
		fprintf(stderr, "payload of %zu bytes: protobuf-c %s, payload_unpack %s\n", len, ref ? "decodes" : "fails",
		    got ? "decodes" : "fails");
	crossgate__record_payload__free_unpacked(ref, NULL);
	return ref != NULL && got != NULL;
}

int
main(void)
{
	struct pb_arena a;
	uint8_t buf[4096], mut[4200];
	int t, decoded = 0, odd_seen = 0;

	CHECK_EQ_INT(pb_arena_init(&a, 1 << 16), 0);
	/* valid encodings */
	for (t = 0; t < 20000; t++) {
		int odd = 0;
		size_t len = rnd_payload(buf, &odd);
		decoded += agree(&a, buf, len);
		odd_seen += odd;
	}
	CHECK_EQ_INT(decoded, 20000);
	CHECK(odd_seen > 100);                       /* the fallback was exercised */

	/* what the fast path hands over: repeated and unknown tags, a 2-byte tag, a 10-byte varint */
	{
		static const uint8_t twice_name[] = { 0x0a, 0x06, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b' };
		static const uint8_t int_then_str[] = { 0x0a, 0x05, 0x10, 0x02, 0x1a, 0x01, 'x' };
		static const uint8_t unknown[] = { 0x0a, 0x05, 0x0a, 0x01, 'a', 0x20, 0x01 };
		static const uint8_t outer_unknown[] = { 0x12, 0x00 };
		static const uint8_t long_tag[] = { 0x8a, 0x00, 0x00 };
		static const uint8_t big[] = { 0x0a, 0x0b, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
		static const uint8_t nul[] = { 0x0a, 0x05, 0x0a, 0x03, 'a', 0, 'b' };
		static const uint8_t cut[] = { 0x0a, 0x05, 0x0a, 0x03, 'a' };
		Crossgate__RecordPayload *p;

		CHECK_EQ_INT(agree(&a, twice_name, sizeof(twice_name)), 1);
		CHECK_EQ_INT(agree(&a, int_then_str, sizeof(int_then_str)), 1);
		agree(&a, unknown, sizeof(unknown));
		agree(&a, outer_unknown, sizeof(outer_unknown));
		agree(&a, long_tag, sizeof(long_tag));
		CHECK_EQ_INT(agree(&a, big, sizeof(big)), 1);
		agree(&a, nul, sizeof(nul));
		CHECK_EQ_INT(agree(&a, cut, sizeof(cut)), 0);
		pb_arena_reset(&a);
		CHECK((p = payload_unpack(&a, sizeof(big), big)) != NULL && p->n_fields == 1 &&
		    p->fields[0]->int_value == INT64_MIN);
	}

	/* damage: a byte changed, the end cut, a byte inserted */
	for (t = 0; t < 20000; t++) {
		int odd = 0;
		size_t len = rnd_payload(buf, &odd), pos;
		if (len == 0)
			continue;
		memcpy(mut, buf, len);
		pos = rnd() % len;
		switch (t % 3) {
		case 0:
			mut[pos] ^= (uint8_t)(1 + rnd() % 255);
			agree(&a, mut, len);
			break;
		case 1:
			agree(&a, mut, pos);
			break;
		default:
			memmove(mut + pos + 1, mut + pos, len - pos);
			mut[pos] = (uint8_t)rnd();
			agree(&a, mut, len + 1);
			break;
		}
	}
	pb_arena_free(&a);
	CGT_DONE();
}
