/* lift.c - an A/B test's lift with differential privacy (lift.h). */
#include "gateway/lift.h"

#include <math.h>
#include <string.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "gateway/budget.h"
#include "gateway/query.h"

/* ---- the estimator (post-processing of noisy figures) ---- */

double
lift_z(double confidence)
{
	double lo = 0, hi = 40, tail;
	int i;

	if (!(confidence > 0 && confidence < 1))
		return 0;
	/* P(|Z| > z) = erfc(z / sqrt 2) decreases in z: bisect for the tail 1 - confidence, to double precision. */
	tail = 1 - confidence;
	for (i = 0; i < 200; i++) {
		double mid = (lo + hi) / 2;

		if (erfc(mid / sqrt(2.0)) > tail)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

static double
lift_clamp(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

static int
lift_noisy_finite(const struct lift_noisy *a)
{
	return isfinite(a->n) && isfinite(a->conversions) && isfinite(a->value_sum) && isfinite(a->value_sq);
}

/* One arm's rate and mean, with standard errors that add the noise's variance to the sampling variance. */
static void
lift_arm_estimate(const struct lift_noisy *a, const struct lift_noise *nz, double cap, struct lift_arm_est *e)
{
	double n = a->n, p, m, s2;

	p = lift_clamp(a->conversions / n, 0, 1);
	m = lift_clamp(a->value_sum / n, 0, cap);
	s2 = lift_clamp(cap * a->value_sq / n - m * m, 0, m * (cap - m));
	e->rate = p;
	e->rate_se = sqrt(p * (1 - p) / n + (nz->var_conversions + p * p * nz->var_n) / (n * n));
	e->value_mean = m;
	e->value_sd = sqrt(s2);
	e->value_se = sqrt(s2 / n + (nz->var_value_sum + m * m * nz->var_n) / (n * n));
}

static void
lift_interval_set(struct lift_interval *iv, double est, double se, double z)
{
	iv->est = est;
	iv->se = se;
	iv->lo = est - z * se;
	iv->hi = est + z * se;
}

int
lift_estimate(const struct lift_noisy *control, const struct lift_noisy *treatment, const struct lift_noise *noise,
    double value_cap, double confidence, struct lift_estimates *out, struct cg_err *err)
{
	const struct lift_arm_est *c = &out->control, *t = &out->treatment;
	double vsum;

	memset(out, 0, sizeof(*out));
	if (!(confidence > 0 && confidence < 1))
		return cg_err_set(err, CG_ERR_ARG, "the confidence level must be strictly between 0 and 1");
	if (!(value_cap > 0) || !isfinite(value_cap))
		return cg_err_set(err, CG_ERR_ARG, "the value cap must be positive");
	vsum = noise->var_n + noise->var_conversions + noise->var_value_sum + noise->var_value_sq;
	if (!(noise->var_n >= 0 && noise->var_conversions >= 0 && noise->var_value_sum >= 0 &&
	    noise->var_value_sq >= 0) || !isfinite(vsum))
		return cg_err_set(err, CG_ERR_ARG, "noise variances must be finite and non-negative");
	if (!lift_noisy_finite(control) || !lift_noisy_finite(treatment))
		return cg_err_set(err, CG_ERR_ARG, "an arm's figures must be finite numbers");
	if (control->n < LIFT_MIN_N || treatment->n < LIFT_MIN_N)
		return cg_err_set(err, CG_ERR_LIMIT, "the %s arm's noisy size is below %.0f: too few subjects to "
		    "estimate a lift from", control->n < LIFT_MIN_N ? "control" : "treatment", LIFT_MIN_N);
	out->z = lift_z(confidence);
	lift_arm_estimate(control, noise, value_cap, &out->control);
	lift_arm_estimate(treatment, noise, value_cap, &out->treatment);
	lift_interval_set(&out->rate_diff, t->rate - c->rate, hypot(t->rate_se, c->rate_se), out->z);
	lift_interval_set(&out->value_diff, t->value_mean - c->value_mean, hypot(t->value_se, c->value_se), out->z);
	if (c->rate > 0 && c->rate_se <= LIFT_REL_CV_MAX * c->rate) {
		double pc2 = c->rate * c->rate;

		out->rel_ok = 1;
		lift_interval_set(&out->rate_rel, t->rate / c->rate - 1,
		    sqrt(t->rate_se * t->rate_se / pc2 + t->rate * t->rate * c->rate_se * c->rate_se / (pc2 * pc2)),
		    out->z);
	}
	return 0;
}

/* ---- the release ---- */

int
lift_release_cost(double rho, int64_t *rho_nano, struct cg_err *err)
{
	*rho_nano = 0;
	if (!(rho > 0 && rho <= LIFT_RHO_MAX))
		return cg_err_set(err, CG_ERR_ARG, "rho must be positive and at most %.0f", LIFT_RHO_MAX);
	*rho_nano = (int64_t)floor(rho * (double)BUDGET_NANO);
	if (*rho_nano <= 0)
		return cg_err_set(err, CG_ERR_ARG, "rho must be at least 1e-9");
	return 0;
}

/* The exact aggregates of one arm agree with per-subject values clamped to [0, cap]. */
static int
lift_arm_check(const struct lift_arm *a, const char *arm, int64_t cap, struct cg_err *err)
{
	unsigned __int128 n = a->n, s = (unsigned __int128)(a->value_sum < 0 ? 0 : a->value_sum), c = (uint64_t)cap;

	if (a->n > LIFT_N_MAX)
		return cg_err_set(err, CG_ERR_ARG, "the %s arm has more than 2^40 subjects", arm);
	if (a->conversions > a->n)
		return cg_err_set(err, CG_ERR_ARG, "the %s arm has more conversions than subjects", arm);
	if (a->value_sum < 0)
		return cg_err_set(err, CG_ERR_ARG, "the %s arm's value sum is negative: values must be clamped to "
		    "[0, value_cap] per subject", arm);
	if (s > n * c)
		return cg_err_set(err, CG_ERR_ARG, "the %s arm's value sum exceeds n x value_cap: values must be clamped "
		    "to [0, value_cap] per subject", arm);
	/*
	 * Cauchy-Schwarz below, (sum v)^2 <= n sum v^2, as a division so that it
	 * stays within 128 bits (s^2 < 2^126); above, v^2 <= cap v (< 2^93).
	 * Also catches a sum of squares left 0.  An empty arm has s = 0, so its
	 * sum of squares must be 0 too.
	 */
	if ((n > 0 && (s * s + n - 1) / n > a->value_sq_sum) || a->value_sq_sum > c * s)
		return cg_err_set(err, CG_ERR_ARG, "the %s arm's sum of squared values does not agree with its value sum "
		    "and the cap", arm);
	return 0;
}

static int
lift_noisy_draw(uint64_t num, uint64_t den, int64_t exact, double *out, struct cg_err *err)
{
	int64_t z, v;
	int r;

	if ((r = noise_gaussian(num, den, &z)) != 0)
		return cg_err_set(err, r, "cannot draw the noise");
	if (__builtin_add_overflow(exact, z, &v))
		v = z > 0 ? INT64_MAX : INT64_MIN;
	*out = (double)v;
	return 0;
}

int
lift_release_make(const struct lift_arm *control, const struct lift_arm *treatment, int64_t value_cap, double rho,
    double confidence, struct lift_release *out, struct cg_err *err)
{
	static const char *const stat_name[4] = { "subjects", "conversions", "value sum", "value sum of squares" };
	const unsigned share[4] = { LIFT_SHARE_N, LIFT_SHARE_C, LIFT_SHARE_S, LIFT_SHARE_Q };
	const struct lift_arm *arm[2] = { control, treatment };
	struct lift_noisy *noisy[2];
	uint64_t num[4], den[4], delta[4];
	double *var[4];
	int64_t exact[2][4] = { { 0 } };
	size_t k, i;
	int r;

	memset(out, 0, sizeof(*out));
	noisy[0] = &out->control;
	noisy[1] = &out->treatment;
	if (!(confidence > 0 && confidence < 1))
		return cg_err_set(err, CG_ERR_ARG, "the confidence level must be strictly between 0 and 1");
	if (value_cap < 1 || value_cap > LIFT_VALUE_CAP_MAX)
		return cg_err_set(err, CG_ERR_ARG, "the value cap must be between 1 and %lld", (long long)LIFT_VALUE_CAP_MAX);
	if ((r = lift_release_cost(rho, &out->rho_nano, err)) != 0 ||
	    (r = lift_arm_check(control, "control", value_cap, err)) != 0 ||
	    (r = lift_arm_check(treatment, "treatment", value_cap, err)) != 0)
		goto out;
	delta[0] = delta[1] = 1;
	delta[2] = delta[3] = (uint64_t)value_cap;
	var[0] = &out->noise.var_n;
	var[1] = &out->noise.var_conversions;
	var[2] = &out->noise.var_value_sum;
	var[3] = &out->noise.var_value_sq;
	for (k = 0; k < 4; k++) {
		/* sigma_k^2 = Delta_k^2 / (2 rho_k), rho_k = rho_nano share_k / (10 1e9): all in integers, rounded up */
		if (query_noise_param((unsigned __int128)delta[k] * delta[k] * 10 * BUDGET_NANO,
		    (unsigned __int128)2 * (uint64_t)out->rho_nano * share[k], &num[k], &den[k]) != 0) {
			r = cg_err_set(err, CG_ERR_LIMIT, "the noise for the %s would be too large to draw: lower the "
			    "value cap or ask for a larger rho", stat_name[k]);
			goto out;
		}
		*var[k] = (double)num[k] / (double)den[k];
	}
	for (i = 0; i < 2; i++) {
		exact[i][0] = (int64_t)arm[i]->n;
		exact[i][1] = (int64_t)arm[i]->conversions;
		exact[i][2] = arm[i]->value_sum;
		exact[i][3] = (int64_t)(arm[i]->value_sq_sum / (uint64_t)value_cap);    /* <= sum v < 2^63: checked */
		if ((r = lift_noisy_draw(num[0], den[0], exact[i][0], &noisy[i]->n, err)) != 0 ||
		    (r = lift_noisy_draw(num[1], den[1], exact[i][1], &noisy[i]->conversions, err)) != 0 ||
		    (r = lift_noisy_draw(num[2], den[2], exact[i][2], &noisy[i]->value_sum, err)) != 0 ||
		    (r = lift_noisy_draw(num[3], den[3], exact[i][3], &noisy[i]->value_sq, err)) != 0)
			goto out;
	}
	out->value_cap = value_cap;
	out->confidence = confidence;
	out->rho = (double)out->rho_nano / (double)BUDGET_NANO;
	r = lift_estimate(&out->control, &out->treatment, &out->noise, (double)value_cap, confidence, &out->est, err);
out:
	sodium_memzero(exact, sizeof(exact));
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* ---- JSON ---- */

static json_t *
lift_interval_json(const struct lift_interval *iv)
{
	return json_pack("{s:f, s:f, s:f, s:f}", "est", iv->est, "se", iv->se, "lo", iv->lo, "hi", iv->hi);
}

static json_t *
lift_arm_json(const struct lift_noisy *a, const struct lift_arm_est *e)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f}", "n", (json_int_t)a->n, "conversions",
	    (json_int_t)a->conversions, "value_sum", (json_int_t)a->value_sum, "value_sq_over_cap",
	    (json_int_t)a->value_sq, "rate", e->rate, "rate_se", e->rate_se, "value_mean", e->value_mean, "value_se",
	    e->value_se);
}

/* One number per statistic, in the order n, conversions, value sum, Q. */
static json_t *
lift_per_stat_json(double n, double c, double s, double q)
{
	return json_pack("{s:f, s:f, s:f, s:f}", "n", n, "conversions", c, "value_sum", s, "value_sq_over_cap", q);
}

json_t *
lift_release_json(const struct lift_release *rl)
{
	const struct lift_noise *nz = &rl->noise;
	const struct lift_estimates *e = &rl->est;
	double cap = (double)rl->value_cap;

	/* json_pack's "o" steals each reference, and on failure releases every one (jansson >= 2.11) */
	return json_pack("{s:s, s:f, s:I, s:o, s:f, s:f, s:I, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}}",
	    "mechanism", "discrete Gaussian, rho-zCDP", "rho", rl->rho, "rho_nano", (json_int_t)rl->rho_nano,
	    "rho_share", lift_per_stat_json(LIFT_SHARE_N / 10.0, LIFT_SHARE_C / 10.0, LIFT_SHARE_S / 10.0,
	    LIFT_SHARE_Q / 10.0),
	    "confidence", rl->confidence, "z", e->z, "value_cap", (json_int_t)rl->value_cap,
	    "sensitivity", lift_per_stat_json(1, 1, cap, cap),
	    "noise_sd", lift_per_stat_json(sqrt(nz->var_n), sqrt(nz->var_conversions), sqrt(nz->var_value_sum),
	    sqrt(nz->var_value_sq)),
	    "control", lift_arm_json(&rl->control, &e->control),
	    "treatment", lift_arm_json(&rl->treatment, &e->treatment),
	    "lift", "rate", lift_interval_json(&e->rate_diff),
	    "rate_relative", e->rel_ok ? lift_interval_json(&e->rate_rel) : json_null(),
	    "value_per_subject", lift_interval_json(&e->value_diff));
}
