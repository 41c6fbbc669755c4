/*
 * batch.h - batch files: BatchHeader, SealedRecord x N, BatchTrailer, each a
 * frame (frame.h).  The trailer signs
 *
 *   "crossgate batch v1\n" || u64be record count || BLAKE2b-256(all frames before the trailer)
 *
 * with the partner's Ed25519 key: signing a digest instead of the raw bytes
 * keeps the signature cheap and lets both sides stream.
 *
 * Reading is two passes over the file.  batch_reader_verify() hashes every
 * frame without parsing records and checks the signature; only then does
 * batch_reader_next() parse records, so no unauthenticated record is ever
 * decoded.
 */
#ifndef CG_BATCH_H
#define CG_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/err.h"
#include "proto/crossgate.pb-c.h"

#define BATCH_VERSION 1
#define BATCH_KIND_DATA 0              /* BatchHeader.kind: records with sealed payloads */
#define BATCH_KIND_REVOCATION 1        /* records naming users (tokens only) to erase */
#define BATCH_KIND_OUTCOMES 2          /* records with a sealed Outcome each (agent/outcomes.h) */
#define BATCH_DIGEST_LEN 32
#define BATCH_HEADER_MAX 4096          /* before the signature is checked */
#define BATCH_RECORD_MAX (64 * 1024)
#define BATCH_TRAILER_MAX 1024

/* Owned by the caller of batch_writer_open; batch_writer_free removes an unfinished file. */
struct batch_writer;

/*
 * Start writing the batch to `path` (mode 0600, through base/outfile.h:
 * a temporary file renamed by batch_writer_finish, so a half-written batch
 * never has the final name).
 * `sign_sk` is the partner's 64-byte Ed25519 secret key; it is copied into
 * secmem and wiped by batch_writer_free.
 */
int batch_writer_open(const char *path, const Crossgate__BatchHeader *hdr, const unsigned char sign_sk[64],
    struct batch_writer **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
int batch_writer_add(struct batch_writer *w, const Crossgate__SealedRecord *rec, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/*
 * Records encoded away from the writer (e.g. by worker threads): append
 * rec as one frame (4-byte length, SealedRecord) at *len in *buf, growing
 * *buf (owned by the caller; *cap its size).  CG_ERR_LIMIT over
 * BATCH_RECORD_MAX, CG_ERR_NOMEM.
 */
int batch_record_append(const Crossgate__SealedRecord *rec, unsigned char **buf, size_t *cap, size_t *len,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
/*
 * Add `count` frames made by batch_record_append, whose records carry the
 * next `count` indexes in order (the caller's contract: the writer does not
 * decode them).  The file and its digest are byte for byte what
 * batch_writer_add of the same records gives.
 */
int batch_writer_add_encoded(struct batch_writer *w, const unsigned char *frames, size_t len, uint64_t count,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
/* Sign, write the trailer, fsync and rename into place. *digest (may be NULL) gets the batch digest. */
int batch_writer_finish(struct batch_writer *w, unsigned char digest[BATCH_DIGEST_LEN], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1);
void batch_writer_free(struct batch_writer *w);

/* Owned by the caller of batch_reader_open. */
struct batch_reader;

/* Open the file and decode its header frame. Messages name the path and offset. */
int batch_reader_open(const char *path, struct batch_reader **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* The same on an open stream (which must be seekable); takes ownership of f, even on failure. */
int batch_reader_open_stream(FILE *f, const char *name, struct batch_reader **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);
const Crossgate__BatchHeader *batch_reader_header(const struct batch_reader *r) CG_NONNULL(1);

/*
 * Pass 1: hash every frame, check the trailer (the last frame) and its
 * signature by `pub`.  On success *count and digest are set and the reader
 * is positioned at the first record.  CG_ERR_CRYPTO for a bad signature,
 * CG_ERR_FORMAT / CG_ERR_INCOMPLETE / CG_ERR_LIMIT for a damaged file.
 */
int batch_reader_verify(struct batch_reader *r, const unsigned char pub[32], uint64_t *count,
    unsigned char digest[BATCH_DIGEST_LEN], struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * Pass 2 (only after a successful verify): the next record, 1 with *rec set,
 * 0 after the last one.  Pass 2 hashes again what it hands out: if the file
 * changed after verification, the final call fails with CG_ERR_CRYPTO
 * instead of returning 0, so a caller must not commit anything before it
 * has seen the 0.  The record belongs to the reader and stays valid
 * until the next call (it is decoded into an arena, not malloc'd field by
 * field).  Records must carry indexes 0, 1, 2, ... in order.
 */
int batch_reader_next(struct batch_reader *r, Crossgate__SealedRecord **rec, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
void batch_reader_free(struct batch_reader *r);

/*
 * batch_reader_next in two halves, so that records can be decoded away from
 * the reader (by worker threads).  batch_reader_next_frame hands out the
 * next record's frame as read and hashed (fr->data is the reader's, valid
 * until its next call; fr->offset its file offset, fr->index the index the
 * record must carry); it returns 1, or 0 after the last record with the same
 * end-of-batch check as batch_reader_next.  batch_record_decode decodes a
 * frame into `arena` (the record lives until the arena is reset) with the
 * checks and messages of batch_reader_next; `name` is
 * batch_reader_name(r).  It touches no reader: any thread may call it.
 */
struct pb_arena;
struct batch_frame {
	const unsigned char *data;
	size_t len;
	uint64_t offset;
	uint64_t index;
};
int batch_reader_next_frame(struct batch_reader *r, struct batch_frame *fr, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
const char *batch_reader_name(const struct batch_reader *r) CG_NONNULL(1);
int batch_record_decode(const char *name, const struct batch_frame *fr, struct pb_arena *arena,
    Crossgate__SealedRecord **rec, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * Pass 2's hashing off the reading thread.  After batch_reader_hash_by_caller
 * (before the first frame), batch_reader_next_frame no longer hashes the
 * frames it hands out and returns 0 after the last one without the
 * end-of-batch check; the caller passes every frame, in order, to
 * batch_reader_rehash (any one thread at a time, never concurrently with
 * another rehash), then calls batch_reader_finish, which is that check:
 * CG_ERR_CRYPTO "file changed while being read" if the frames hashed are not
 * the ones verified.  Nothing may be committed before it returns 0.
 */
void batch_reader_hash_by_caller(struct batch_reader *r) CG_NONNULL(1);
void batch_reader_rehash(struct batch_reader *r, const unsigned char *frame, size_t len) CG_NONNULL(1);
int batch_reader_finish(struct batch_reader *r, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/*
 * The content rules of an Outcome (an outcome batch's record, PROTOCOL.md
 * §5.11), which the agent packs by and the gateway checks: experiment 1 to
 * BATCH_EXPERIMENT_MAX of [A-Za-z0-9._-]; value_cents in [0,
 * BATCH_OUTCOME_VALUE_MAX], 0 unless converted.  CG_ERR_FORMAT with the
 * reason (never the value).
 */
#define BATCH_EXPERIMENT_MAX 64
#define BATCH_OUTCOME_VALUE_MAX 1000000000000LL   /* 10^12 cents: beyond is a unit mistake */
int batch_experiment_check(const char *experiment, struct cg_err *err) CG_MUST_CHECK;
int batch_outcome_check(const Crossgate__Outcome *o, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/* The signed message for a count and digest (for tests and other transports). */
#define BATCH_SIGNED_LEN (19 + 8 + BATCH_DIGEST_LEN)
void batch_signed_message(uint64_t count, const unsigned char digest[BATCH_DIGEST_LEN],
    unsigned char out[BATCH_SIGNED_LEN]);

#endif
