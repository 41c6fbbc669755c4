/*
 * prng.h - the analytics core's deterministic generator (xoshiro256**,
 * seeded through splitmix64).
 *
 * The models must give the same numbers for the same export and seed on
 * every machine (k-means++ seeding, restarts, bootstrap resamples, the
 * silhouette sample), so this is a fixed, documented generator rather than
 * rand() or a CSPRNG.  Nothing it draws is secret.
 */
#ifndef CG_PRNG_H
#define CG_PRNG_H

#include <stdint.h>

struct prng {
	uint64_t s[4];
};

/* Seed from (seed, stream): different streams give independent sequences. */
void prng_seed(struct prng *r, uint64_t seed, uint64_t stream);
uint64_t prng_next(struct prng *r);
/* Uniform in [0, 1), 53 bits. */
double prng_unif(struct prng *r);
/* Uniform in [0, n) without bias (n > 0). */
uint64_t prng_below(struct prng *r, uint64_t n);

#endif
