/* prng.c - see prng.h (xoshiro256** by Blackman and Vigna; splitmix64 seeding). */
#include "analytics/prng.h"

static uint64_t
prng_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
prng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
prng_seed(struct prng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = prng_splitmix(&x);
}

uint64_t
prng_next(struct prng *r)
{
	uint64_t *s = r->s;
	uint64_t out = prng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = prng_rotl(s[3], 45);
	return out;
}

double
prng_unif(struct prng *r)
{
	return (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
prng_below(struct prng *r, uint64_t n)
{
	/* Rejection keeps it unbiased: redraw below 2^64 mod n. */
	uint64_t floor = (0 - n) % n, x;

	do
		x = prng_next(r);
	while (x < floor);
	return x % n;
}
