/*
 * activation.h - the report's "Activation and experiment" section, from two
 * released files only (issue 14, item 4):
 *
 *   the audience's answer   `crossgate audience create --out A.json`:
 *                           {"audience", "noisy_size", "charged_rho", ...}
 *   the lift release        `crossgate experiment lift --out L.json`:
 *                           gateway/lift.h's JSON (noisy arms, intervals, rho)
 *                           with "experiment", "campaign_partner", "charged_rho"
 *
 * Both hold noisy figures and what follows from them; nothing here is exact.
 * Either may be absent (NULL path).  A file that does not parse, or lacks a
 * field the section shows, is CG_ERR_FORMAT with the file and the field;
 * CG_ERR_IO when it cannot be read.
 */
#ifndef CG_ACTIVATION_H
#define CG_ACTIVATION_H

#include <stdint.h>
#include "base/err.h"

struct activation_interval {
	double est, lo, hi;
};

struct activation {
	int have_audience;
	char audience[65];
	double audience_noisy;               /* the noisy size */
	double audience_rho;                 /* what the audience charged */
	int have_lift;
	char experiment[65], partner[65];
	double rho, confidence, value_cap;   /* the lift's charge, its intervals' level, the value clamp (cents) */
	double n[2], rate[2], value_mean[2]; /* noisy, per arm: 0 control, 1 treatment */
	struct activation_interval rate_diff, rate_rel, value_diff;
	int rel_ok;
};

int activation_load(const char *audience_path, const char *lift_path, struct activation *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(4);

#endif
