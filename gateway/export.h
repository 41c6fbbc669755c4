/*
 * export.h - the row channel: differentially private synthetic rows of the
 * joined subjects (gateway/join.h), made by the MST-family mechanism of
 * gateway/synthrel.h.  No row of the output is a subject's: every row is
 * drawn from a model fitted to noisy marginals, and the whole release is
 * charged to the SAME zCDP ledger as aggregates (budget.h), so nothing is
 * released once the budget is spent.
 *
 *  - only an analyst principal whose policy entry lists the purpose under
 *    `row_exports` gets one; `max_exports` caps how many it takes, beside
 *    (never instead of) the budget;
 *  - refusals that need no data come first and charge nothing: the purpose,
 *    the analyst, a column without the policy domain a release bins it by
 *    (an int feature without `bounds`, a band without min/max), a row count
 *    out of range, the cap; then the charge (refused, with the remaining
 *    budget, if it does not fit); only then are the subjects read.
 *  - the number of rows is the model's noisy estimate of the subjects, or
 *    the `rows` asked for.
 *
 * Output: `out_path`, CSV: a header of the released columns (quasi-
 * identifiers by name, then "<partner>_<column>" features; a free-string
 * feature has no domain and is left out, listed in the meta), no pseudonym,
 * then one synthetic row per line whose cells are bin labels: "LO-HI"
 * (inclusive integers) or a plain integer for a numeric bin, a category's
 * or a map group's value, "*" for missing or outside the domain.
 * `out_path`.meta.json, the provenance: {"release_id", "purpose", "analyst",
 * "dataset", "mechanism", "rho", "rho_split", "remaining_rho", "noise",
 * "columns": [{"name", "bins"}], "omitted", "edges", "synthetic_rows",
 * "rows_from", "binning", "policy_hash", "audit_index", "created", "left",
 * "right"}.  No exact figure about people is in either, in the audit event
 * or in any message: not how many subjects, matched, consented or were
 * read ("synthetic_rows" is the noisy estimate, or what was asked).
 * The release's audit event ("export") carries the release id as its
 * batch_id.
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
	int64_t rho_nano;                    /* 0: the policy's privacy.export_rho */
	uint64_t rows;                       /* synthetic rows wanted; 0: the noisy estimate */
	uint32_t bins;                       /* bins of an int feature's bounds; 0: SYNTHREL_BINS_DEFAULT */
};

struct export_stats {
	uint64_t rows;                       /* synthetic rows written */
	size_t columns, edges, omitted;
	int64_t charged_nano, remaining_nano;
	char release_id[33];                 /* hex */
	uint64_t audit_index;                /* of the release's audit event */
	double load_seconds;                 /* reading tokens and consent from the store */
	double join_seconds;                 /* grouping and pairing in memory */
	double collect_seconds;              /* reading, opening and binning the subjects' records */
	double fit_seconds;                  /* measuring, choosing the tree, fitting */
	double sample_seconds;               /* drawing and writing the rows */
};

/*
 * Make the release.  Refusals (not allowed, no domain, cap, budget) are
 * CG_ERR_POLICY (CG_ERR_ARG for a bad option) with an audit event; nothing
 * is written then.
 */
int export_run(struct store *st, struct audit *a, const struct export_opts *o, struct export_stats *stats,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
