/* payload.c - see payload.h */
#include "proto/payload.h"

#include <string.h>

#define PAYLOAD_FIELDS_MAX 4096          /* beyond: protobuf-c decodes it */

/* A varint of at most 10 bytes, as protobuf-c reads it; 0 if it is longer or cut. */
static size_t
payload_varint(const uint8_t *p, size_t len, uint64_t *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < len && i < 10; i++) {
		*v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80))
			return i + 1;
	}
	return 0;
}

/* A length-delimited value at p: its n bytes start `skip` bytes in; returns skip + n, 0 if cut. */
static size_t
payload_delimited(const uint8_t *p, size_t len, size_t *skip, size_t *n)
{
	uint64_t v;
	size_t h = payload_varint(p, len, &v);

	if (h == 0 || v > len - h)
		return 0;
	*skip = h;
	*n = (size_t)v;
	return h + (size_t)v;
}

/* Printable-or-control ASCII without NUL: what the fast path copies as is. */
static int
payload_plain(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == 0 || p[i] >= 0x80)
			return 0;
	return 1;
}

static char *
payload_str(ProtobufCAllocator *a, const uint8_t *p, size_t n)
{
	char *s = a->alloc(a->allocator_data, n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/*
 * One Field: 1 if decoded, 0 if the fast path does not apply (or memory
 * ran out: protobuf-c then tries, and fails the same way).
 */
static int
payload_field(ProtobufCAllocator *a, const uint8_t *p, size_t len, Crossgate__Field *f)
{
	size_t pos = 0, skip, n, used;
	int have_name = 0;
	uint64_t v;

	crossgate__field__init(f);
	while (pos < len) {
		uint8_t tag = p[pos++];
		switch (tag) {
		case 0x0a:                   /* 1: name */
		case 0x1a:                   /* 3: str_value */
			if ((used = payload_delimited(p + pos, len - pos, &skip, &n)) == 0 ||
			    !payload_plain(p + pos + skip, n))
				return 0;
			if (tag == 0x0a) {
				if (have_name++ || (f->name = payload_str(a, p + pos + skip, n)) == NULL)
					return 0;
			} else {
				if (f->value_case != CROSSGATE__FIELD__VALUE__NOT_SET ||
				    (f->str_value = payload_str(a, p + pos + skip, n)) == NULL)
					return 0;
				f->value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
			}
			pos += used;
			break;
		case 0x10:                   /* 2: int_value, zigzag */
			if (f->value_case != CROSSGATE__FIELD__VALUE__NOT_SET ||
			    (used = payload_varint(p + pos, len - pos, &v)) == 0)
				return 0;
			f->int_value = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
			f->value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
			pos += used;
			break;
		default:
			return 0;
		}
	}
	return 1;
}

static Crossgate__RecordPayload *
payload_fast(ProtobufCAllocator *a, size_t len, const uint8_t *data)
{
	Crossgate__RecordPayload *r;
	Crossgate__Field *f;
	size_t pos, n = 0, i, skip, m, used;

	/* Pass 1: count the fields, and check that the message is one run of them. */
	for (pos = 0; pos < len; pos += 1 + used, n++) {
		if (data[pos] != 0x0a || n == PAYLOAD_FIELDS_MAX ||
		    (used = payload_delimited(data + pos + 1, len - pos - 1, &skip, &m)) == 0)
			return NULL;
	}
	if ((r = a->alloc(a->allocator_data, sizeof(*r))) == NULL)
		return NULL;
	crossgate__record_payload__init(r);
	if (n == 0)
		return r;
	if ((r->fields = a->alloc(a->allocator_data, n * sizeof(*r->fields))) == NULL ||
	    (f = a->alloc(a->allocator_data, n * sizeof(*f))) == NULL)
		return NULL;
	for (pos = 0, i = 0; i < n; i++, pos += used) {
		used = 1 + payload_delimited(data + pos + 1, len - pos - 1, &skip, &m);
		if (!payload_field(a, data + pos + 1 + skip, m, &f[i]))
			return NULL;
		r->fields[i] = &f[i];
	}
	r->n_fields = n;
	return r;
}

Crossgate__RecordPayload *
payload_unpack(struct pb_arena *a, size_t len, const uint8_t *data)
{
	Crossgate__RecordPayload *r = payload_fast(&a->allocator, len, data);

	/* What the fast path left half built stays in the arena until its reset. */
	return r != NULL ? r : crossgate__record_payload__unpack(&a->allocator, len, data);
}
