/*
 * segment.h - an audience defined by a DP segment: the k-means centres the
 * gateway released (model.h), and one of their clusters.
 *
 *   crossgate query --model kmeans --cols C1,C2 --k 4 [--log1p] --rho R --out seg.csv
 *   crossgate audience create ... --segment seg.csv --cluster 2
 *
 * The released CSV ("cluster,count,<col>..." one line per released cluster)
 * and its sidecar seg.csv.meta.json ("model": "kmeans", "columns", "bounds",
 * "log1p", "fixed_point", "k", "clusters_released") are read back.  A
 * subject belongs to cluster N when, of the released centres, centre N is
 * the nearest (Euclidean; ties to the lowest cluster number) in the space the
 * model clustered in: each value clamped to the sidecar's bounds [lo, hi],
 * mapped by log1p when the model was, and scaled to the fixed point of
 * model.h (model_coord: the very function the model used), and each centre
 * mapped the same way (without the rounding: the released centre is a real
 * number).  A subject lacking any of the columns is in no cluster (the model
 * left it out too).  The centres are public DP output: using them costs no
 * privacy; the audience's own size release is charged by audience.c.
 *
 * Errors (CG_ERR_ARG, CG_ERR_FORMAT, CG_ERR_IO, CG_ERR_POLICY, CG_ERR_NOMEM)
 * say "segment FILE: reason": not a released k-means output, a missing or
 * inconsistent sidecar, a cluster that was not released, and (segment_bind)
 * a column the policy does not share for marketing as a bounded number.
 * Owned by the caller of segment_load; segment_free releases it.
 */
#ifndef CG_SEGMENT_H
#define CG_SEGMENT_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "gateway/join.h"
#include "gateway/model.h"

struct segment;

/* Read PATH and PATH.meta.json; `cluster` (1-based, as in the CSV) must be a released cluster. */
int segment_load(const char *path, uint32_t cluster, struct segment **out, struct cg_err *err) CG_MUST_CHECK
    CG_NONNULL(1, 3, 4);
/* The two files' bytes (malloc'd, the caller frees them), e.g. to send them to a gateway. */
int segment_read(const char *path, char **csv, size_t *len, char **meta, size_t *mlen, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5);
/* The same from the two files' bytes (a request over the network); `name` is used in messages. */
int segment_load_mem(const char *name, const char *csv, size_t len, const char *meta, size_t mlen, uint32_t cluster,
    struct segment **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 7, 8);
void segment_free(struct segment *s);

/* Resolve the columns against cols (join_columns' output for marketing, kept by the caller while used). */
int segment_bind(struct segment *s, const struct join_col *cols, size_t ncols, struct cg_err *err) CG_MUST_CHECK
    CG_NONNULL(1, 2, 4);

/* The nearest released cluster's number for values x[0..ncols) in the file's column order. */
uint32_t segment_nearest(const struct segment *s, const int64_t *x) CG_NONNULL(1, 2);
/* Does the subject belong (its nearest centre is the chosen cluster)?  1 or 0.  Bound first. */
int segment_eval(const struct segment *s, Crossgate__RecordPayload *const pl[2]) CG_NONNULL(1, 2);

size_t segment_ncols(const struct segment *s) CG_NONNULL(1);
/* SHA-256 of the CSV file's bytes, in hex (65 bytes with the NUL). */
void segment_hash_hex(const struct segment *s, char out[65]) CG_NONNULL(1, 2);
/* "segment sha256 HEX cluster N of K columns C1,C2 log1p|linear" into out (as snprintf). */
size_t segment_canon(const struct segment *s, char *out, size_t size) CG_NONNULL(1);

#endif
