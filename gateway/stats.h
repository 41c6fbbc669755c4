/*
 * stats.h - a partner's own view of what the gateway holds for it: how many
 * of its records are stored, and how many consent to each purpose.  Counts
 * only: never which users, never whether they matched anyone.
 */
#ifndef CG_STATS_H
#define CG_STATS_H

#include <stdint.h>
#include "base/err.h"
#include "store/store.h"
#include "policy/policy.h"

struct stats_partner {
	uint64_t records;                         /* stored records */
	uint64_t batches;                         /* committed batches (data and revocations) */
	uint64_t with_purpose[POLICY_PURPOSES_MAX];   /* records consenting to purpose i */
	int64_t oldest_consent, newest_consent;   /* unix seconds; 0 if no records */
};

int stats_partner_get(struct store *st, const struct policy *pol, const char *partner, struct stats_partner *out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
