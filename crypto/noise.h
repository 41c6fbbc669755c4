/*
 * noise.h - exact, integer-only samplers for differential privacy, whose
 * running time does not depend on the value they return.
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
 *
 * Timing (Jin, McMurtry, Rubinstein, Ohrimenko, S&P 2022: CKS as written
 * loops once per unit of |x|, so the release time tells the noise).  Here
 * every loop of the algorithms runs a fixed number of times, chosen from the
 * public scale only, and results are combined with constant-time selects
 * (no branch, early exit, table index or division on anything that can end
 * up in the result).  What still varies is independent of the value
 * returned:
 *   - a uniform draw below a bound rejects and redraws while the draw is
 *     above the bound: how often is independent of the value it returns;
 *   - CKS's rounds ("reject and start again") are independent, and a round
 *     is kept or thrown away whole; the round that is kept has done the
 *     same work whatever it drew (a round may stop as soon as it is known
 *     to be rejected: its values are thrown away), so the number of rounds
 *     and their times are independent of the value the kept round returns.
 * So the time of a call is a random variable independent of its result,
 * which tests/unit/test_noise.c checks statistically on 40,000 draws.
 *
 * The fixed counts truncate the algorithms; a round that would have needed
 * more is thrown away whole: more than 27 Bernoulli(gamma/k) trials
 * (probability < 1/27! < 2^-93), a Bernoulli(exp(-1)) whose K passes 28
 * (1/28! < 2^-97 each), a geometric reaching 56 or an acceptance exponent
 * of 57 or more (e^-56 < 2^-80).  So a round differs from the exact
 * algorithm's with probability below 2^-80, and as rounds are kept with
 * probability above 1/4 (Laplace above 0.31, Gaussian above 0.44), a result
 * is within total variation 2^-77 (Laplace) or 2^-74 (Gaussian) of the
 * exact distribution: counted as delta, negligible next to any delta a
 * release uses.
 */
#ifndef CG_NOISE_H
#define CG_NOISE_H

#include <stdint.h>
#include "base/err.h"

/*
 * The largest scale numerator/denominator accepted: the Laplace sampler's
 * products stay within 128 bits; the Gaussian's acceptance test within 320
 * (fixed-width integers).  Standard deviations up to 2^31.
 */
#define NOISE_PARAM_MAX (1ull << 62)

/*
 * One sample of the discrete Laplace distribution with scale num/den.
 * CG_ERR_ARG for bad parameters.  A value beyond int64 (which needs a scale
 * near 2^62) is drawn again: the distribution is conditioned on |x| < 2^63.
 */
int noise_laplace(uint64_t num, uint64_t den, int64_t *out) CG_MUST_CHECK CG_NONNULL(3);

/* One sample of the discrete Gaussian with variance sigma2 = num/den. CG_ERR_ARG for bad parameters. */
int noise_gaussian(uint64_t num, uint64_t den, int64_t *out) CG_MUST_CHECK CG_NONNULL(3);

/*
 * Bernoulli(exp(-n/d)) (Algorithm 1), exposed for its tests: 1 or 0, with
 * fixed work; 0 when n/d >= 57 (wrong with probability <= e^-57) or d == 0.
 */
int noise_bernoulli_exp(unsigned __int128 n, unsigned __int128 d);

#endif
