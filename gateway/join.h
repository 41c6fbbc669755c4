/*
 * join.h - the join of two partners' records, shared by row exports
 * (export.c) and aggregates (query.c), so that both see the same subjects.
 *
 * Join rule (deterministic, documented in the README):
 *  1. Within one partner, records sharing a token (transitively) are one user;
 *     the record with the latest consent_at wins (ties: the later stored row),
 *     so a newer batch's consent always overrides an older one.
 *  2. Left and right users are paired on the email token first, then, for
 *     users still unpaired, on the phone token.  A user is paired at most
 *     once.  A user whose other token points at a different, already paired
 *     user is counted as ambiguous and left as it is.
 *  3. A pair is used for a purpose only if both sides consent to it.
 *
 * One pair is one subject: it contributes one row to an export and counts
 * once in any aggregate.
 */
#ifndef CG_JOIN_H
#define CG_JOIN_H

#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "store/store.h"
#include "policy/policy.h"
#include "proto/crossgate.pb-c.h"

#define JOIN_NONE UINT32_MAX

/* The pairs of a join.  Owns every array; join_free releases them. */
struct join {
	const struct policy_partner *side[2];
	struct store_ref *refs[2];
	size_t nref[2];
	uint32_t *pair;                      /* pair[i], i a left record: its right record, or JOIN_NONE */
	uint64_t superseded;                 /* older records of a user, replaced by a newer one */
	uint64_t matched;                    /* pairs */
	uint64_t ambiguous;
	double load_seconds;                 /* reading tokens and consent from the store */
	double join_seconds;                 /* grouping and pairing in memory */
};

/*
 * Join partners `left` and `right` (NULL: the policy's first two).  The
 * store is only read.  CG_ERR_ARG if they are not two different partners of
 * the policy.
 */
int join_run(struct store *st, const struct policy *pol, const char *left, const char *right, struct join *j,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 5);
void join_free(struct join *j);

/* "g+k": the dataset a join is, for budgets and audit events: the partner ids in sorted order. */
void join_dataset(const struct join *j, char *out, size_t size) CG_NONNULL(1, 2);

/* Open one stored record's payload. Caller frees *out with crossgate__record_payload__free_unpacked. */
int join_open(struct store *st, const struct keyfile_key *storage, const struct store_ref *ref,
    Crossgate__RecordPayload **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/* The field named `name` of a payload, or NULL. */
const Crossgate__Field *join_field(const Crossgate__RecordPayload *p, const char *name);

/*
 * An output column: quasi-identifiers once by their name (from the left
 * partner, or the right where the left lacks it), then each side's features
 * as "<partner>_<column>".  Only columns the policy shares for the purpose.
 */
struct join_col {
	const struct policy_column *col;
	int side;                            /* 0 left, 1 right */
	const struct policy_column *alt;     /* quasi-identifier of the same name on the other side */
	char name[160];
};
#define JOIN_COLS_MAX 512

/* Fill cols (JOIN_COLS_MAX entries); *nqi of them, first, are quasi-identifiers. */
void join_columns(const struct join *j, int purpose_bit, struct join_col *cols, size_t *ncols, size_t *nqi)
    CG_NONNULL(1, 3, 4, 5);

/* A column's field in a subject's two payloads; *c is the column it is read against. NULL: absent. */
const Crossgate__Field *join_col_field(const struct join_col *jc, Crossgate__RecordPayload *const pl[2],
    const struct policy_column **c) CG_NONNULL(1, 2, 3);

/*
 * Call fn for every pair whose both sides consent to purpose bit `pbit`, with
 * the payloads of the sides in `sides` (bit 0 left, bit 1 right) opened
 * (owned by join_each; valid during the call; a side not asked for is NULL,
 * so it costs no read and no decryption).  Pairs left out for consent are
 * counted in *no_consent.  fn returns 0 or an error, which stops the walk
 * and is returned.
 */
#define JOIN_BOTH 3u
typedef int (*join_fn)(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err);
int join_each(struct store *st, const struct keyfile_key *storage, const struct join *j, int pbit, unsigned sides,
    join_fn fn, void *ctx, uint64_t *no_consent, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 6, 8);

#endif
