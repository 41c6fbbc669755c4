/*
 * diff.h - what a change of the data-sharing agreement does.
 *
 * `crossgate policy diff OLD NEW` prints one line per difference, each
 * marked with what it means for the people in the data:
 *   WIDER    more is shared, or with more parties, or less protected
 *            (a new purpose, a new column, a wider range, a smaller k,
 *            a finer generalization, a new partner)
 *   NARROWER less is shared
 *   BREAKS   stored data changes meaning (purposes reordered: consent bits
 *            are positions; normalization changed: tokens of the same person
 *            no longer match older batches; a partner's key changed)
 *   CHANGE   anything else
 */
#ifndef CG_POLICY_DIFF_H
#define CG_POLICY_DIFF_H

#include <stddef.h>
#include <stdio.h>
#include "policy/policy.h"

struct policy_diff_counts {
	size_t total, wider, narrower, breaks;
};

/* Write the differences to out (may be NULL to only count them). */
void policy_diff(const struct policy *old, const struct policy *new_, FILE *out, struct policy_diff_counts *counts)
    CG_NONNULL(1, 2, 4);

#endif
