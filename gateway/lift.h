/*
 * lift.h - an A/B test's lift released with differential privacy, in the
 * spirit of Meta's Private Lift: from the exact per-arm aggregates of an
 * experiment (issue 14, item 3), noisy per-arm figures, and the conversion
 * rate lift and per-subject value lift with confidence intervals that
 * include the noise.
 *
 * Input.  Per arm (control, treatment): n subjects, how many converted, and
 * the sum and the sum of squares of a per-subject value v.  v is the
 * subject's total value over the campaign window (0 for a subject who did
 * not convert), CLAMPED BY THE CALLER to [0, value_cap]: lift_arm_add() does
 * it, one call per subject.  lift_release_make() checks that the aggregates
 * are consistent with that clamp (0 <= value_sum <= n value_cap, the sum of
 * squares between value_sum^2 / n and value_cap value_sum) and refuses them
 * otherwise: an unclamped sum would break the sensitivity below.
 *
 * Released, per arm, four noisy integers:
 *   N = n + Z_n,  C = conversions + Z_c,  S = value_sum + Z_s,
 *   Q = floor(value_sq_sum / value_cap) + Z_q
 * with independent discrete Gaussian noise (crypto/noise.h: exact and
 * constant-time), and from them, by post-processing only (lift_estimate),
 * the rates, means, lifts and intervals.
 *
 * Privacy unit and sensitivity.  One person is at most one subject of the
 * join (gateway/join.h, JOIN_PERSON_SUBJECTS = 1), and a subject is in one
 * arm (the experiment's split is a keyed hash of the subject alone).
 * Neighbouring inputs differ by one subject, in one arm.  Statistic k (n,
 * conversions, value_sum, Q) is released as the 2-vector (control_k,
 * treatment_k); adding or removing the subject moves one coordinate only,
 * by at most
 *   n: 1,   conversions: 1,   value_sum: value_cap (v in [0, cap]),
 *   Q: value_cap  (for integers A >= 0 and 0 <= v <= cap,
 *                  0 <= floor((A + v^2) / cap) - floor(A / cap) <= ceil(v^2 / cap) <= cap),
 * so its L2 sensitivity is Delta_k (the other coordinate does not move: no
 * sqrt(2)).  Noise of variance sigma_k^2 = Delta_k^2 / (2 rho_k) on both
 * coordinates makes it rho_k-zCDP (Canonne, Kamath, Steinke 2020, Thm 4:
 * the discrete Gaussian of scale sigma on a query of sensitivity Delta is
 * (Delta^2 / 2 sigma^2)-zCDP; the coordinate that does not move adds no
 * privacy loss), and the four compose to sum_k rho_k = rho (Bun, Steinke
 * 2016, Lemma 2.3).  Equivalently: the whole released vector of 8
 * integers, each divided by its sigma_k, has L2 sensitivity
 * sqrt(sum_k Delta_k^2 / sigma_k^2) = sqrt(2 rho).  rho is split in
 * LIFT_SHARE_{N,C,S,Q} tenths (1, 3, 4, 2): n matters little (its noise
 * enters a rate as p^2 var_N, p small); the value sum, whose sensitivity is
 * the cap, needs the most; Q enters only the variance estimate, but its
 * sensitivity (the cap) is large next to a typical v^2 / cap, so it gets
 * more than n.  Noise variances are
 * rounded up, never down (query.h: query_noise_param), and rho is rounded
 * down to a whole nano: the charge is the rho_nano the release reports.
 *
 * Estimator (lift_estimate).  Per arm, from the noisy figures:
 *   rate  p = C / N  clamped to [0, 1];   mean  m = S / N  clamped to [0, cap];
 *   value variance  s2 = cap Q / N - m^2  clamped to [0, m (cap - m)]
 *         (m (cap - m) is the largest variance of a value in [0, cap] with
 *         mean m, Bhatia-Davis; noisy Q can put s2 outside);
 *   var(p) = p (1 - p) / N + (var_C + p^2 var_N) / N^2
 *   var(m) = s2 / N        + (var_S + m^2 var_N) / N^2
 * The first term is the sampling variance (a binomial proportion, a mean),
 * the second the noise's, by the delta method on X / N with X and N noised
 * independently: var(X/N) ~ (var_X + (X/N)^2 var_N) / N^2.  The arms are
 * independent (disjoint subjects, independent noise): a difference's
 * variance is the sum of the arms'.  Released estimates:
 *   rate_diff  = p_t - p_c              the conversion-rate lift (absolute)
 *   rate_rel   = p_t / p_c - 1          relative; delta method:
 *                var = var(p_t) / p_c^2 + p_t^2 var(p_c) / p_c^4
 *   value_diff = m_t - m_c              the value lift per subject (value units)
 * each as est +- z se, z the two-sided normal quantile of `confidence`.  The
 * relative lift is given only when p_c > 0 and se(p_c) / p_c <=
 * LIFT_REL_CV_MAX (beyond, the ratio is skewed, possibly without a mean, and
 * the first-order delta method no guide); otherwise rel_ok = 0 and its
 * fields are 0.  No field is ever NaN or infinite.  With every noise
 * variance 0, the intervals are the textbook ones that ignore the noise.
 *
 * Refusals (CG_ERR_ARG, before any noise is drawn): conversions above n, a negative or unclamped value sum, an inconsistent sum of squares,
 * n above LIFT_N_MAX, value_cap outside [1, LIFT_VALUE_CAP_MAX], rho not in
 * (0, LIFT_RHO_MAX], confidence not in (0, 1).  None of these depends on
 * the data of a correct caller: they are contract checks, not releases.
 * CG_ERR_LIMIT: noise too large to sample (a huge cap at a tiny rho); or,
 * after the noise, an arm whose noisy size is below LIFT_MIN_N: a rate over
 * a handful of subjects, or over a noisy negative denominator, has no
 * meaningful interval.  An empty arm (erasure can empty one) is not a
 * contract error: it is noised and refused so, like any small arm.  That refusal is post-processing of the noisy N (it
 * leaks nothing more), but the noise has been drawn: the caller's charge
 * stands.  No exact figure is in any message.
 *
 * The caller charges rho (lift_release_cost(), known before anything is
 * drawn) to the analyst's ledger first, and audits the release.
 */
#ifndef CG_LIFT_H
#define CG_LIFT_H

#include <stdint.h>
#include <jansson.h>
#include "base/err.h"

#define LIFT_N_MAX (1ull << 40)
#define LIFT_VALUE_CAP_MAX 1000000000LL      /* value units (e.g. cents) */
#define LIFT_RHO_MAX 1000.0
#define LIFT_SHARE_N 1                       /* tenths of rho for each statistic */
#define LIFT_SHARE_C 3
#define LIFT_SHARE_S 4
#define LIFT_SHARE_Q 2
#define LIFT_MIN_N 30.0                      /* the smallest noisy arm size estimated from */
#define LIFT_REL_CV_MAX 0.25                 /* the largest se(p_c) / p_c a relative lift is given for */

/*
 * One arm's exact aggregates.  value_sq_sum is the sum of v^2 over the arm's
 * subjects, v clamped: 128 bits, so that no size of experiment or cap is
 * refused for overflowing it (n cap^2 < 2^40 2^60).
 */
struct lift_arm {
	uint64_t n;
	uint64_t conversions;
	int64_t value_sum;
	unsigned __int128 value_sq_sum;
};

/* One arm's noisy figures, as released (doubles: lift_estimate also takes figures from elsewhere). */
struct lift_noisy {
	double n, conversions, value_sum;
	double value_sq;                     /* noisy floor(value_sq_sum / value_cap) */
};

/* The noise variance of each figure, the same in both arms. */
struct lift_noise {
	double var_n, var_conversions, var_value_sum, var_value_sq;
};

struct lift_interval {
	double est, se, lo, hi;
};

struct lift_arm_est {
	double rate, rate_se;                /* conversions per subject and its standard error */
	double value_mean, value_se;         /* value per subject and its standard error */
	double value_sd;                     /* the per-subject standard deviation of the value, estimated */
};

struct lift_estimates {
	struct lift_arm_est control, treatment;
	struct lift_interval rate_diff;      /* the conversion-rate lift, absolute */
	struct lift_interval rate_rel;       /* relative (0.05 = +5%), if rel_ok */
	struct lift_interval value_diff;     /* the value lift per subject */
	int rel_ok;
	double z;                            /* the normal quantile the intervals use */
};

struct lift_release {
	struct lift_noisy control, treatment;   /* integers, as drawn */
	struct lift_noise noise;                 /* their variances (upper bounds: the sampler's are below) */
	struct lift_estimates est;
	int64_t value_cap;
	double confidence;
	int64_t rho_nano;                        /* charged: the four statistics' shares sum to it */
	double rho;                              /* rho_nano / 1e9 */
};

/*
 * Add one subject to an arm: converted (nonzero: yes) and its value, clamped
 * here to [0, value_cap].  The value sum saturates (lift_release_make then
 * refuses it).
 * Inline: it runs once per subject of an experiment.
 */
static inline void
lift_arm_add(struct lift_arm *a, int converted, int64_t value, int64_t value_cap)
{
	uint64_t v = value <= 0 || value_cap <= 0 ? 0 : value > value_cap ? (uint64_t)value_cap : (uint64_t)value;

	a->n += a->n < UINT64_MAX;
	a->conversions += converted != 0 && a->conversions < UINT64_MAX;
	if (__builtin_add_overflow(a->value_sum, (int64_t)v, &a->value_sum))
		a->value_sum = INT64_MAX;
	/* v <= cap <= LIFT_VALUE_CAP_MAX < 2^30 for any arm a release accepts: far from 128 bits */
	a->value_sq_sum += (unsigned __int128)v * v;
}

/* The rho (nano) a release at `rho` charges.  CG_ERR_ARG for rho outside (0, LIFT_RHO_MAX]. */
int lift_release_cost(double rho, int64_t *rho_nano, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(2);

/* The release described above.  *out is zeroed first and valid only on success. */
int lift_release_make(const struct lift_arm *control, const struct lift_arm *treatment, int64_t value_cap,
    double rho, double confidence, struct lift_release *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 6);

/*
 * The estimates above from noisy figures and their noise variances (all
 * finite, variances >= 0).  CG_ERR_ARG for bad parameters, CG_ERR_LIMIT for a
 * noisy arm size below LIFT_MIN_N.  *out is zeroed first.
 */
int lift_estimate(const struct lift_noisy *control, const struct lift_noisy *treatment,
    const struct lift_noise *noise, double value_cap, double confidence, struct lift_estimates *out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 6);

/*
 * The release as JSON, for a .meta.json or a report: {"mechanism",
 * "rho", "rho_nano", "rho_share" {n, conversions, value_sum,
 * value_sq_over_cap}, "confidence", "z", "value_cap", "sensitivity" and
 * "noise_sd" (per statistic, as rho_share), "control" and "treatment"
 * (noisy n, conversions, value_sum, value_sq_over_cap, and rate, rate_se,
 * value_mean, value_se), "lift" {"rate", "rate_relative" (null when not
 * estimated), "value_per_subject"}, each {est, se, lo, hi}}.  Only noisy
 * figures and what follows from them.  NULL when out of memory; the
 * caller owns the result (json_decref).
 */
json_t *lift_release_json(const struct lift_release *rl) CG_NONNULL(1);

/* The normal quantile z with P(|Z| <= z) = confidence, for 0 < confidence < 1 (else 0). */
double lift_z(double confidence);

#endif
