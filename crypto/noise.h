/*
 * noise.h - exact, integer-only samplers for differential privacy.
 *
 * Discrete Laplace and discrete Gaussian as in Canonne, Kamath, Steinke,
 * "The Discrete Gaussian for Differential Privacy" (2020), Algorithms 1-3:
 * every step is a Bernoulli trial with a rational probability decided by an
 * integer drawn uniformly from libsodium's CSPRNG, so no floating-point
 * rounding can leak the noiseless value (Mironov 2012).  Scales are
 * rationals num/den with positive 64-bit parts.
 *
 * Distributions, for integer x:
 *   discrete Laplace, scale t:      P(x) proportional to exp(-|x| / t)
 *   discrete Gaussian, variance s2: P(x) proportional to exp(-x^2 / (2 s2))
 */
#ifndef CG_NOISE_H
#define CG_NOISE_H

#include <stdint.h>
#include "base/err.h"

/*
 * The largest scale numerator/denominator accepted: the Laplace sampler's
 * products stay within 128 bits; the Gaussian's acceptance test is computed
 * in arbitrary precision.  Standard deviations up to 2^31.
 */
#define NOISE_PARAM_MAX (1ull << 62)

/* One sample of the discrete Laplace distribution with scale num/den. CG_ERR_ARG for bad parameters. */
int noise_laplace(uint64_t num, uint64_t den, int64_t *out) CG_MUST_CHECK CG_NONNULL(3);

/* One sample of the discrete Gaussian with variance sigma2 = num/den. CG_ERR_ARG for bad parameters. */
int noise_gaussian(uint64_t num, uint64_t den, int64_t *out) CG_MUST_CHECK CG_NONNULL(3);

/* Bernoulli(exp(-n/d)) (Algorithm 1), exposed for its tests: 1 or 0. */
int noise_bernoulli_exp(unsigned __int128 n, unsigned __int128 d);

#endif
