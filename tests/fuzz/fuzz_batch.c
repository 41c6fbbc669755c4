/*
 * fuzz_batch.c - batch file decoding: header, frame walk, trailer and
 * signature check, then every frame decoded as each message type the
 * gateway parses (records, payloads, trailer, audit events).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "proto/batch.h"
#include "proto/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char pub[32];
	struct batch_reader *r = NULL;
	struct cg_err err;
	unsigned char digest[BATCH_DIGEST_LEN];
	const unsigned char *p;
	size_t plen, used, off = 0;
	uint64_t count;
	FILE *f;

	if (sodium_init() < 0)
		return 0;
	if (size > 0 && (f = fmemopen((void *)data, size, "rb")) != NULL &&
	    batch_reader_open_stream(f, "fuzz", &r, &err) == 0) {
		/* A random key: the signature never holds, but every frame is walked. */
		(void)batch_reader_verify(r, pub, &count, digest, &err);
		batch_reader_free(r);
	}
	while (off < size && frame_parse(data + off, size - off, BATCH_RECORD_MAX, &p, &plen, &used, &err) == 0) {
		Crossgate__SealedRecord *rec = crossgate__sealed_record__unpack(NULL, plen, p);
		Crossgate__RecordPayload *pl = crossgate__record_payload__unpack(NULL, plen, p);
		Crossgate__BatchTrailer *tr = crossgate__batch_trailer__unpack(NULL, plen, p);
		Crossgate__AuditEvent *ev = crossgate__audit_event__unpack(NULL, plen, p);
		Crossgate__BatchHeader *h = crossgate__batch_header__unpack(NULL, plen, p);
		if (rec) crossgate__sealed_record__free_unpacked(rec, NULL);
		if (pl) crossgate__record_payload__free_unpacked(pl, NULL);
		if (tr) crossgate__batch_trailer__free_unpacked(tr, NULL);
		if (ev) crossgate__audit_event__free_unpacked(ev, NULL);
		if (h) crossgate__batch_header__free_unpacked(h, NULL);
		off += used;
	}
	return 0;
}
