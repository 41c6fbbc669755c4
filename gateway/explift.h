/*
 * explift.h - an experiment's lift, released with differential privacy
 * (issue 14, item 3, last step):
 *
 *   crossgate experiment lift --name EXP [--rho R] [--confidence C]
 *
 * joins the arms `experiment create` recorded (experiment.h:
 * experiment_subjects) with the outcomes the campaign partner pushed
 * (outcome.h), and releases lift.h's noisy figures and intervals.
 *
 * Subjects.  Every subject of the experiment, by its token at the campaign
 * partner, in its arm.  A subject without any outcome counts as a
 * non-converter of value 0 (the partner reports what its users did; silence
 * is no conversion).
 *
 * The outcome window.  An outcome counts when its `at` is at or after the
 * experiment's creation and not after the lift's own time: what happened
 * before the split cannot be the campaign's effect, and an `at` in the
 * future is not an observation.  Outcomes of users not in the experiment,
 * or outside the window, are ignored; only the campaign partner's outcomes
 * are read (ingest.c refuses any other's).
 *
 * One value per subject.  A subject converted when any outcome in the window
 * has converted = 1; its value is the sum of those converting outcomes'
 * value_cents (saturating), clamped by lift_arm_add() to [0, the policy's
 * marketing: value_cap].  One call of lift_arm_add per subject.
 *
 * Charge and audit.  Refused before anything is charged (with an
 * "experiment-lift" audit event, outcome "refused"): an analyst without
 * the purpose marketing, an experiment that is another analyst's, and a
 * charge over the budget (budget.h logs its own refusal): none depends on
 * the data.  Otherwise lift_release_cost(rho) is charged to the analyst's
 * ledger for the audience's dataset (the joined partner pair, as the
 * audience was charged), then the noise is drawn.  An arm whose noisy size
 * is below LIFT_MIN_N is refused after the noise (CG_ERR_LIMIT): the charge
 * stands, as lift.h says.  So is an arm that erasure emptied: refusing it
 * before the charge would tell, for free, that it holds no one.  A release is audited by an "experiment-lift"
 * event: the experiment's id, rho, and in its reason the noisy figures and
 * intervals only; never an exact count, a user or a token.
 *
 * Errors: CG_ERR_NOTFOUND (no such experiment), CG_ERR_POLICY (refused,
 * with the reason), CG_ERR_ARG (bad rho or confidence),
 * CG_ERR_LIMIT, CG_ERR_VERIFY (an outcome altered in the database),
 * CG_ERR_DB, CG_ERR_NOMEM.
 */
#ifndef CG_EXPLIFT_H
#define CG_EXPLIFT_H

#include <stdint.h>
#include "base/err.h"
#include "audit/audit.h"
#include "crypto/keyfile.h"
#include "gateway/lift.h"
#include "policy/policy.h"
#include "store/store.h"

#define EXPLIFT_CONFIDENCE_DEFAULT 0.95

struct explift_spec {
	const struct policy *pol;
	const struct policy_principal *analyst;
	const char *name;                    /* the experiment */
	int64_t rho_nano;                    /* 0: marketing: lift_rho, else privacy.query_rho */
	double confidence;                   /* 0: EXPLIFT_CONFIDENCE_DEFAULT */
	int64_t now;                         /* the window's end; 0: the current time */
	const struct keyfile_key *storage;
};

struct explift_result {
	struct lift_release rl;
	char experiment_id[33];
	char audience[65];
	char partner[65];                    /* the campaign partner */
	char dataset[80];                    /* the ledger charged */
	int64_t window_from, window_to;      /* unix seconds, both included */
	int64_t charged_nano, remaining_nano;
	uint64_t audit_index;
};

int explift_run(struct store *st, struct audit *a, const struct explift_spec *spec, struct explift_result *out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
