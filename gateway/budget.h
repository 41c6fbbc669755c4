/*
 * budget.h - the privacy-budget ledger.
 *
 * Budgets are zero-concentrated DP (rho), counted in integer nano-rho
 * (1e-9 rho) so that sums are exact; a pure-epsilon query is charged
 * rho = epsilon^2 / 2 (budget_rho_of_epsilon).  The ledger is an append-only
 * SQLite table (triggers refuse UPDATE and DELETE), one row per charge, per
 * analyst and dataset.  A charge is checked against the cap and recorded, with
 * its audit event, in one IMMEDIATE transaction before any answer may leave:
 * concurrent queries, threads or processes, can never spend more than the
 * cap together, and a crash after the charge never gives a free answer (the
 * charge stays; there are no refunds).
 */
#ifndef CG_BUDGET_H
#define CG_BUDGET_H

#include <stdint.h>
#include "base/err.h"
#include "audit/audit.h"
#include "store/store.h"

#define BUDGET_NANO 1000000000LL     /* nano-rho per rho */

int budget_schema(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/* rho = eps^2 / 2 for a pure-epsilon query, eps in nano units, rounded up (never undercharged; saturates at INT64_MAX). */
int64_t budget_rho_of_epsilon(int64_t eps_nano);

/*
 * Charge `rho_nano` to (analyst, dataset) under `cap_nano`.  Refused with
 * CG_ERR_POLICY, the remaining budget in the message and a "budget-refused"
 * audit event, if it would overspend; otherwise recorded with a
 * "budget-charge" audit event.  *remaining_nano (may be NULL) is what is left
 * after the charge (or, when refused, what is left now).  Opens and commits
 * its own transaction.
 */
int budget_charge(struct store *st, struct audit *a, const char *analyst, const char *dataset, int64_t rho_nano,
    int64_t cap_nano, const char *purpose, int64_t *remaining_nano, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * Whether `rho_nano` would fit under `cap_nano` now: 0, or CG_ERR_POLICY
 * with budget_charge's message (CG_ERR_ARG for a charge that is not
 * positive, as budget_charge).  Reads only: no audit event, no lock, so
 * the charge itself must still be made (and may still be refused).  For a
 * release whose refusal test would answer a question about the data even
 * once the budget cannot pay for the release.
 */
int budget_fits(struct store *st, const char *analyst, const char *dataset, int64_t rho_nano, int64_t cap_nano,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/*
 * Count one row release against the analyst's cap (max_exports), an extra
 * cap beside the rho budget, in the same append-only way: CG_ERR_POLICY with
 * an "export-refused" audit event once the cap is reached.  export.c checks
 * the cap (budget_exports_used) before the rho charge, so that a capped
 * analyst loses no budget, and counts the release right after the charge,
 * before any subject is read; a release that fails later still counts.
 */
int budget_export_charge(struct store *st, struct audit *a, const char *analyst, const char *purpose, uint32_t cap,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
/* Row exports taken so far by `analyst`, for any purpose. */
int budget_exports_used(struct store *st, const char *analyst, uint64_t *used, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* Spent so far by (analyst, dataset). */
int budget_spent(struct store *st, const char *analyst, const char *dataset, int64_t *spent_nano,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
