/*
 * export.h - the row-export channel: the joined subjects (gateway/join.h)
 * as an anonymized CSV of merged features.  Aggregates (gateway/query.h)
 * are the default channel; a row export is the exception and is hardened:
 *
 *  - only an analyst principal whose policy entry lists the purpose under
 *    `row_exports` gets one, and at most `max_exports` in all (counted in an
 *    append-only ledger before the export is made; budget.h);
 *  - quasi-identifiers are generalized by the policy's hierarchies (band
 *    levels, then '*'; a map, then '*').  Equivalence classes (equal
 *    generalized quasi-identifiers) smaller than k, or with fewer than l
 *    distinct values of a `sensitive` column, are suppressed.  Starting
 *    from the finest level, while more than the suppression limit would be
 *    suppressed, the quasi-identifier with the most distinct values climbs
 *    one level (Datafly); if even the coarsest levels suppress too much the
 *    export fails and nothing is written;
 *  - every row gets a pseudonym keyed by a fresh random key that lives in
 *    locked memory for the export only and is then wiped: pseudonyms never
 *    repeat across exports and cannot be recomputed, even by the gateway;
 *  - rows are shuffled; no token, identifier or local id is ever written.
 *
 * Output: `out_path` (CSV: pseudonym, the quasi-identifiers by name, then
 * each partner's features as "<partner>_<column>") and `out_path`.meta.json,
 * the provenance a reader traces the numbers by: {"export_id", "purpose",
 * "analyst", "k", "l", "sensitive": [...], "suppression_limit", "rows",
 * "suppressed", "candidates", "levels": {qi: level}, "policy_hash",
 * "audit_index", "created", "left", "right"}.  The export's audit event
 * carries the export id as its batch_id.
 */
#ifndef CG_EXPORT_H
#define CG_EXPORT_H

#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "store/store.h"
#include "policy/policy.h"

struct export_opts {
	const struct policy *pol;
	const char *left;                    /* partner ids; default: the policy's first two */
	const char *right;
	const char *purpose;                 /* e.g. "analytics" */
	const char *out_path;
	const struct keyfile_key *storage;   /* gateway storage key */
	const struct policy_principal *analyst;  /* who asks; must be allowed row exports for the purpose */
};

struct export_stats {
	uint64_t left_records, right_records;
	uint64_t superseded;                 /* older records of a user, replaced by a newer one */
	uint64_t matched;                    /* pairs */
	uint64_t ambiguous;
	uint64_t no_consent;                 /* pairs left out: a side lacks the purpose */
	uint64_t candidates;                 /* rows before suppression */
	uint64_t exported;                   /* rows written */
	uint64_t suppressed;                 /* rows in classes smaller than k or less than l-diverse */
	uint64_t classes;                    /* equivalence classes written */
	uint32_t k, l;
	uint32_t suppression_ppm;            /* the limit applied */
	char levels[256];                    /* "age=1 region=0": the generalization levels chosen */
	char export_id[33];                  /* hex */
	uint64_t audit_index;                /* of the export's audit event */
	double load_seconds;                 /* reading tokens and consent from the store */
	double join_seconds;                 /* grouping and pairing in memory */
};

/*
 * Make the export.  Refusals (not allowed, cap reached, suppression limit)
 * are CG_ERR_POLICY with an audit event; nothing is written then.
 */
int export_run(struct store *st, struct audit *a, const struct export_opts *o, struct export_stats *stats,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
