/*
 * frame.h - length-prefixed frames: a 4-byte big-endian length, then that
 * many bytes of protobuf.  Used for batch files and, later, the network.
 *
 * Every read states a maximum; the length is checked against it before
 * anything is allocated.  A frame cut short is CG_ERR_INCOMPLETE, never a
 * silent end of input.
 */
#ifndef CG_FRAME_H
#define CG_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/err.h"

#define FRAME_HDR_LEN 4
#define FRAME_MAX (16u * 1024 * 1024)

/*
 * Parse one frame at the start of buf.  On success *payload points into buf,
 * *consumed = FRAME_HDR_LEN + *payload_len.  CG_ERR_INCOMPLETE if buf holds
 * less than a whole frame, CG_ERR_LIMIT if the length exceeds max.  err may
 * be NULL: a reader that meets "incomplete" once per network read skips
 * formatting a message it drops.
 */
int frame_parse(const unsigned char *buf, size_t len, size_t max, const unsigned char **payload,
    size_t *payload_len, size_t *consumed, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4, 5, 6);

/* Encode the 4-byte header for a payload of len bytes (len <= FRAME_MAX). */
void frame_header(size_t len, unsigned char hdr[FRAME_HDR_LEN]);

/*
 * Read one frame from f into *buf (grown as needed up to max; the caller owns
 * *buf and frees it).  Returns 1 with *len set, 0 at a clean end of input (no
 * byte of a new frame), or an error: CG_ERR_INCOMPLETE (file ends inside a
 * frame), CG_ERR_LIMIT, CG_ERR_IO.  *offset is advanced by the bytes read.
 */
int frame_read(FILE *f, size_t max, unsigned char **buf, size_t *cap, size_t *len, uint64_t *offset,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5, 6);

/* Write header and payload. */
int frame_write(FILE *f, const unsigned char *payload, size_t len, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1);

#endif
