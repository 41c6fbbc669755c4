/*
 * experiment.h - an A/B experiment on an audience (issue 14, item 3, first step):
 *
 *   crossgate experiment create --audience NAME --name EXP [--partner ID]
 *
 * The audience's members (gateway/audience.h) are split into treatment
 * (arm 1) and control (arm 0) by a keyed hash of the subject: HMAC-SHA-256,
 * under a random key drawn for this experiment and kept at the gateway
 * (sealed with crypto_secretbox under a subkey of the storage key, in
 * `experiments`), of the subject's two key tokens (left then right:
 * kind byte and token each).  A subject is control when the hash's first 8
 * bytes, as a big-endian integer, are below holdout * 2^64 (the policy's
 * marketing: holdout, default 0.5).  The key is secret, so neither partner
 * nor the analyst can tell a subject's arm from its tokens, and no one can
 * steer it.
 *
 * An experiment whose smaller arm would hold fewer than min_audience
 * subjects, judged on the audience's noisy size (released already: the
 * refusal reveals nothing new), times min(holdout, 1 - holdout), is refused.
 *
 * Every member's tokens at both partners are recorded with its arm in
 * `experiment_subjects(experiment TEXT, partner TEXT, token BLOB, arm
 * INTEGER)` (for the outcome batches and the lift estimate of later steps).
 * The campaign partner (--partner, default the audience's only receiver;
 * it must be a receiver in the policy) gets a delivery of its TREATMENT
 * members only, named EXP, sealed like any audience delivery.  So that the
 * control arm never reaches it, the audience's own delivery to that partner
 * must still be pending: it is withdrawn (deleted) here; an audience already
 * fetched by the campaign partner is refused.
 *
 * Audit: an "experiment" event (analyst, audience, partner, holdout in
 * parts per million; never arm sizes, users or tokens) and the delivery's
 * "audience-deliver" event, in one transaction with the tables.
 * Errors: CG_ERR_POLICY (refused, with the reason), CG_ERR_NOTFOUND (no
 * such audience), CG_ERR_ARG (a bad or used name), CG_ERR_DB, CG_ERR_NOMEM.
 */
#ifndef CG_EXPERIMENT_H
#define CG_EXPERIMENT_H

#include <stdint.h>
#include "base/err.h"
#include "audit/audit.h"
#include "crypto/keyfile.h"
#include "store/store.h"
#include "policy/policy.h"

struct experiment_spec {
	const struct policy *pol;
	const struct policy_principal *analyst;
	const char *audience;
	const char *name;                    /* [a-z0-9_-]{1,32}, unique among experiments and audiences */
	const char *partner;                 /* the campaign partner; NULL: the audience's only receiver */
	const struct keyfile_key *storage;
};

struct experiment_stats {
	char partner[65];
	int64_t holdout_nano;
	uint64_t audit_index;
};

int experiment_schema(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

int experiment_create(struct store *st, struct audit *a, const struct experiment_spec *spec,
    struct experiment_stats *stats, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * The campaign partner of experiment `name` (its outcomes may come from it
 * alone: gateway/ingest.c refuses another's).  CG_ERR_NOTFOUND when there is
 * no such experiment, CG_ERR_DB.
 */
int experiment_partner(struct store *st, const char *name, char partner[65], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* The arm of a subject (its two key tokens, 33 bytes each) under an experiment key: 1 treatment, 0 control. */
int experiment_arm(const unsigned char key[32], const unsigned char subject[66], int64_t holdout_nano)
    CG_NONNULL(1, 2);

#endif
