/*
 * export.h - join the partners' records on tokens and write an anonymized
 * CSV of merged features.
 *
 * Join rule (deterministic, documented in the README):
 *  1. Within one partner, records sharing a token (transitively) are one user;
 *     the record with the latest consent_at wins (ties: the later stored row),
 *     so a newer batch's consent always overrides an older one.
 *  2. Left and right users are paired on the email token first, then, for
 *     users still unpaired, on the phone token.  A user is paired at most
 *     once.  A user whose other token points at a different, already paired
 *     user is counted as ambiguous and left as it is.
 *  3. A pair is exported only if both sides consent to the export's purpose.
 *
 * Output: one row per exported pair with a fresh random pseudonym (never
 * reused across exports), the quasi-identifiers generalized by the policy
 * (taken from the left partner, or the right where the left lacks the
 * column), then each partner's features as "<partner>_<column>".  Rows in
 * an equivalence class (equal generalized quasi-identifiers) smaller than k
 * are suppressed.  Row order is shuffled.  No token, identifier or local id
 * is ever written.
 */
#ifndef CG_EXPORT_H
#define CG_EXPORT_H

#include <stdint.h>
#include "crypto/err.h"
#include "crypto/keyfile.h"
#include "gateway/audit.h"
#include "gateway/store.h"
#include "policy/policy.h"

struct export_opts {
	const struct policy *pol;
	const char *left;                    /* partner ids; default: the policy's first two */
	const char *right;
	const char *purpose;                 /* e.g. "analytics" */
	const char *out_path;
	const struct keyfile_key *storage;   /* gateway storage key */
	const char *actor;                   /* who asked, for the audit log */
};

struct export_stats {
	uint64_t left_records, right_records;
	uint64_t superseded;                 /* older records of a user, replaced by a newer one */
	uint64_t matched;                    /* pairs */
	uint64_t ambiguous;
	uint64_t no_consent;                 /* pairs left out: a side lacks the purpose */
	uint64_t exported;                   /* rows written */
	uint64_t suppressed;                 /* rows in classes smaller than k */
	uint64_t classes;                    /* equivalence classes written */
	uint32_t k;
	double load_seconds;                 /* reading tokens and consent from the store */
	double join_seconds;                 /* grouping and pairing in memory */
};

int export_run(struct store *st, struct audit *a, const struct export_opts *o, struct export_stats *stats,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
