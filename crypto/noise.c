/* noise.c - see noise.h */
#include "crypto/noise.h"

#include <string.h>
#include <unistd.h>
#include <sodium.h>

typedef unsigned __int128 u128;

/*
 * Fixed trial counts (see noise.h for what they cost in failure mass):
 * NOISE_TRIALS for Bernoulli(exp(-g)), g in [0, 1) (CKS Algorithm 1 would
 * need more than that with probability g^27/27! < 2^-93); NOISE_GEOM
 * Bernoulli(exp(-1)) trials for the Laplace's geometric part and for the
 * whole part of a Gaussian acceptance exponent (e^-56 < 2^-80).
 */
#define NOISE_TRIALS 27
#define NOISE_GEOM 56

/*
 * Random bytes: each refill of a 16 KiB pool expands a fresh 32-byte seed
 * from libsodium's CSPRNG (randombytes_buf, a getrandom() call) with
 * randombytes_buf_deterministic (ChaCha20): a getrandom() call per 4 KiB
 * cost more than the sampling, as a draw takes over 1 KiB.  Used bytes
 * determine the noise, so they are secret: each sampler wipes what it used
 * before it returns, and a refill overwrites the rest.  How many bytes a
 * draw consumes depends only on rejections that are independent of every
 * value drawn, so the refills' timing is too.
 */
static _Thread_local struct {
	unsigned char buf[16384];
	size_t pos, wiped;
	pid_t pid;
} noise_pool = { { 0 }, sizeof(noise_pool.buf), sizeof(noise_pool.buf), 0 };

static void
noise_random(void *out, size_t n)
{
	if (sizeof(noise_pool.buf) - noise_pool.pos < n) {
		unsigned char seed[randombytes_SEEDBYTES];

		randombytes_buf(seed, sizeof(seed));
		randombytes_buf_deterministic(noise_pool.buf, sizeof(noise_pool.buf), seed);
		sodium_memzero(seed, sizeof(seed));
		noise_pool.pos = noise_pool.wiped = 0;
	}
	memcpy(out, noise_pool.buf + noise_pool.pos, n);
	noise_pool.pos += n;
}

/*
 * On entry to a sampler: a child forked after its parent drew noise must not
 * use the rest of the parent's pool, or both would draw the same noise.
 */
static void
noise_pool_enter(void)
{
	pid_t pid = getpid();

	if (noise_pool.pid != pid) {
		sodium_memzero(noise_pool.buf, sizeof(noise_pool.buf));
		noise_pool.pos = noise_pool.wiped = sizeof(noise_pool.buf);
		noise_pool.pid = pid;
	}
}

/* Wipe the bytes used since the last wipe. */
static void
noise_pool_wipe(void)
{
	sodium_memzero(noise_pool.buf + noise_pool.wiped, noise_pool.pos - noise_pool.wiped);
	noise_pool.wiped = noise_pool.pos;
}

/*
 * Constant-time helpers.  A secret-dependent comparison is computed as the
 * borrow of a subtraction (sub, sbb: no branch), and passed through an empty
 * asm so that the compiler cannot turn its uses back into branches.
 */
static inline uint64_t
ct_hide(uint64_t x)
{
	__asm__("" : "+r"(x));
	return x;
}

/* 1 if a < b, else 0: the borrow of a 128-bit subtraction (sub, sbb, setc). */
static inline uint64_t
ct_lt128(u128 a, u128 b)
{
	u128 d;

	return ct_hide((uint64_t)__builtin_sub_overflow(a, b, &d));
}

static inline u128
ct_mask128(uint64_t bit)
{
	uint64_t m = -ct_hide(bit);

	return ((u128)m << 64) | m;
}

/* Bit length of a public value (only ever of parameters, never of a secret). */
static unsigned
bits128(u128 v)
{
	uint64_t h = (uint64_t)(v >> 64), l = (uint64_t)v;

	return h != 0 ? 128 - (unsigned)__builtin_clzll(h) : l != 0 ? 64 - (unsigned)__builtin_clzll(l) : 0;
}

/*
 * Uniform integer in [0, bound), bound > 0 public: draws of bitlen(bound)
 * bits, rejected while >= bound.  The number of draws is independent of the
 * value returned, and no division touches the value (no modulo bias either).
 */
static u128
noise_uniform(u128 bound)
{
	unsigned bits = bits128(bound), bytes = (bits + 7) / 8, i;
	u128 top = bits == 128 ? ~(u128)0 : ((u128)1 << bits) - 1;
	unsigned char b[16];
	uint64_t h, l;

	for (;;) {
		u128 x;

		noise_random(b, bytes);
		if (bytes >= 8) {
			/* a whole low half in any byte order (all its bits are random) */
			memcpy(&l, b, 8);
			for (h = 0, i = 8; i < bytes; i++)
				h |= (uint64_t)b[i] << (8 * (i - 8));
		} else
			for (h = l = 0, i = 0; i < bytes; i++)
				l |= (uint64_t)b[i] << (8 * i);
		x = (((u128)h << 64) | l) & top;
		if (ct_lt128(x, bound))
			return x;
	}
}

/*
 * Bernoulli(exp(-1)) with fixed work.  CKS Algorithm 1 at gamma = 1 draws
 * A_k ~ Bernoulli(1/k) for k = 2, 3, ... until one fails at K, and returns
 * 1 iff K is odd: P(K > j) = 1/j!.  Two uniform draws give all of them at
 * once, as the digits of a mixed-radix number: N1 in [0, 7 * 20!) and N2 in
 * [0, 28!/20!), both below 2^64.  "K > j" is "N1 < 7 * 20!/j!" for j <= 20
 * and "N1 < 7 and N2 < 28!/j!" for 20 < j <= 28: events of probability 1/j!,
 * nested as they must be.  So K - 2 counts the thresholds below which the
 * draws fall: 27 constant-time 64-bit comparisons.  K beyond 28 (N1 < 7 and
 * N2 = 0, probability 1/28! < 2^-97) sets *fail: the caller retries its
 * whole round.
 */
static const uint64_t noise_fact20[19] = {      /* 7 * 20!/j!, j = 2..20 */
	0x762bea33c9760000ull,
	0x2763f8bbedd20000ull,
	0x09d8fe2efb748000ull,
	0x01f832d6324a8000ull,
	0x005408790861c000ull,
	0x000c0135dca04000ull,
	0x00018026bb940800ull,
	0x00002aaef865c800ull,
	0x00000444b2709400ull,
	0x00000063560a3c00ull,
	0x00000008472b8500ull,
	0x00000000a3035900ull,
	0x000000000ba4cf80ull,
	0x0000000000c6b880ull,
	0x00000000000c6b88ull,
	0x000000000000bb08ull,
	0x0000000000000a64ull,
	0x000000000000008cull,
	0x0000000000000007ull
};
static const uint64_t noise_fact28[8] = {       /* 28!/j!, j = 21..28 */
	0x0000000163b1c380ull,
	0x00000000102afd40ull,
	0x0000000000b3f4c0ull,
	0x0000000000077f88ull,
	0x0000000000004cc8ull,
	0x00000000000002f4ull,
	0x000000000000001cull,
	0x0000000000000001ull
};
#define NOISE_FACT20_BOUND 0xec57d46792ec0000ull   /* 7 * 20! */
#define NOISE_FACT28_BOUND 0x0000001d2d950980ull   /* 28!/20! < 2^37 */

/* 1 if a < b, else 0, for 64-bit values (cmp, adc: no branch). */
static inline uint64_t
ct_lt64(uint64_t a, uint64_t b)
{
	uint64_t d;

	return (uint64_t)__builtin_sub_overflow(a, b, &d);
}

static uint64_t
noise_bexp1(uint64_t *fail)
{
	uint64_t n1, n2, k1 = 0, k2 = 0, z;
	unsigned char b[5];
	size_t j;

	do
		noise_random(&n1, sizeof(n1));         /* any byte order: all 64 bits are random */
	while (!ct_lt64(n1, NOISE_FACT20_BOUND));
	do {
		noise_random(b, sizeof(b));             /* 37 bits */
		n2 = (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
		    (uint64_t)(b[4] & 0x1f) << 32;
	} while (!ct_lt64(n2, NOISE_FACT28_BOUND));
	for (j = 0; j < 19; j++)
		k1 += ct_lt64(n1, noise_fact20[j]);
	for (j = 0; j < 8; j++)
		k2 += ct_lt64(n2, noise_fact28[j]);
	z = ct_hide(ct_lt64(n1, 7));                    /* K > 20 */
	*fail |= z & ct_hide(ct_lt64(n2, 1));
	return (k1 + (k2 & -z)) & 1;
}

/*
 * Bernoulli(exp(-n/d)) for 0 <= n < d, d public (CKS Algorithm 1): A_k ~
 * Bernoulli(n/(d k)) for all k = 1..NOISE_TRIALS, every one drawn; K is one
 * more than the number of leading successes, and the answer is K odd.  All
 * successes (K beyond the trials) sets *fail.
 */
static uint64_t
noise_bexp_frac(u128 n, u128 d, uint64_t *fail)
{
	uint64_t alive = 1, lead = 0, k;

	for (k = 1; k <= NOISE_TRIALS; k++) {
		alive &= ct_lt128(noise_uniform(d * k), n);
		lead += alive;
	}
	*fail |= alive;
	return (lead & 1) ^ 1;
}

/*
 * Fixed-width integers for the Gaussian's acceptance test, whose numerator
 * reaches 2^262 (see noise_gaussian): little-endian 64-bit limbs, every
 * operation on all limbs.  OpenSSL's BIGNUM is not used: its length, and so
 * its running time, follows the value.
 */
#define WIDE 5
struct wide {
	uint64_t l[WIDE];
};

static void
wide_set(struct wide *w, u128 v)
{
	memset(w, 0, sizeof(*w));
	w->l[0] = (uint64_t)v;
	w->l[1] = (uint64_t)(v >> 64);
}

/* out = a - b mod 2^320; returns the borrow (1 if a < b). */
static uint64_t
wide_sub(struct wide *out, const struct wide *a, const struct wide *b)
{
	uint64_t br = 0, d, e, b1, b2;
	size_t i;

	for (i = 0; i < WIDE; i++) {
		b1 = __builtin_sub_overflow(a->l[i], b->l[i], &d);
		b2 = __builtin_sub_overflow(d, br, &e);
		out->l[i] = e;
		br = b1 | b2;
	}
	return ct_hide(br);
}

static uint64_t
wide_lt(const struct wide *a, const struct wide *b)
{
	struct wide t;

	return wide_sub(&t, a, b);
}

static void
wide_add(struct wide *out, const struct wide *a, const struct wide *b)
{
	u128 c = 0;
	size_t i;

	for (i = 0; i < WIDE; i++) {
		c += (u128)a->l[i] + b->l[i];
		out->l[i] = (uint64_t)c;
		c >>= 64;
	}
}

/* out = a * b mod 2^320 (out may alias neither). */
static void
wide_mul(struct wide *out, const struct wide *a, const struct wide *b)
{
	size_t i, j;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < WIDE; i++) {
		u128 c = 0;

		for (j = 0; i + j < WIDE; j++) {
			c += (u128)a->l[i] * b->l[j] + out->l[i + j];
			out->l[i + j] = (uint64_t)c;
			c >>= 64;
		}
	}
}

/* out = bit ? a : b */
static void
wide_select(struct wide *out, uint64_t bit, const struct wide *a, const struct wide *b)
{
	uint64_t m = -ct_hide(bit);
	size_t i;

	for (i = 0; i < WIDE; i++)
		out->l[i] = (a->l[i] & m) | (b->l[i] & ~m);
}

/* Uniform in [0, bound), bound > 0 public; as noise_uniform. */
static void
wide_uniform(struct wide *x, const struct wide *bound)
{
	unsigned char b[8 * WIDE];
	size_t i, bits = 0, bytes;

	for (i = WIDE; i-- > 0;)
		if (bound->l[i] != 0) {
			bits = 64 * i + bits128(bound->l[i]);
			break;
		}
	bytes = (bits + 7) / 8;
	for (;;) {
		memset(x, 0, sizeof(*x));
		noise_random(b, bytes);
		/* whole limbs in any byte order (all their bits are random), the top one byte by byte */
		memcpy(x->l, b, bytes / 8 * 8);
		for (i = bytes / 8 * 8; i < bytes; i++)
			x->l[i / 8] |= (uint64_t)b[i] << (8 * (i % 8));
		if (bits % 64 != 0)
			x->l[bits / 64] &= ((uint64_t)1 << (bits % 64)) - 1;
		if (wide_lt(x, bound))
			return;
	}
}

/*
 * Bernoulli(exp(-n/d)) for any n >= 0 and public d > 0, with fixed work:
 * exp(-n/d) = exp(-1)^w exp(-r/d) with w = floor(n/d), r = n - w d.  w is
 * found by comparing n with d, 2d, ..., (NOISE_GEOM + 1) d, all of them; all
 * NOISE_GEOM Bernoulli(exp(-1)) trials are drawn and the first w count.  For
 * n/d >= NOISE_GEOM + 1 the answer is 0, wrong with probability at most
 * e^-57 < 2^-82.
 */
static uint64_t
noise_bexp_wide(const struct wide *n, const struct wide *d, uint64_t *fail)
{
	struct wide id = *d, r = *n, t, dk = *d, u;
	uint64_t w = 0, ge, ok = 1, alive = 1, lead = 0, capped, frac_fail, i;

	for (i = 1; i <= NOISE_GEOM + 1; i++) {
		ge = wide_sub(&t, n, &id) ^ 1;
		w += ge;
		wide_select(&r, ge, &t, &r);
		wide_add(&id, &id, d);
	}
	capped = ct_hide((NOISE_GEOM - w) >> 63);   /* w == NOISE_GEOM + 1 */
	for (i = 0; i < NOISE_GEOM; i++)
		ok &= noise_bexp1(fail) | ct_hide((w - 1 - i) >> 63);   /* trial i counts iff i < w */
	/* exp(-r/d), r < d, as noise_bexp_frac */
	for (i = 1; i <= NOISE_TRIALS; i++) {
		wide_uniform(&u, &dk);
		alive &= wide_lt(&u, &r);
		lead += alive;
		wide_add(&dk, &dk, d);
	}
	frac_fail = alive & (capped ^ 1);
	*fail |= frac_fail;
	ok &= (lead & 1) ^ 1;
	sodium_memzero(&r, sizeof(r));
	sodium_memzero(&u, sizeof(u));
	return ok & (capped ^ 1);
}

int
noise_bernoulli_exp(u128 n, u128 d)
{
	struct wide wn, wd;
	uint64_t fail, b;

	if (d == 0)
		return 0;
	noise_pool_enter();
	wide_set(&wn, n);
	wide_set(&wd, d);
	do {
		fail = 0;
		b = noise_bexp_wide(&wn, &wd, &fail);
	} while (fail);
	noise_pool_wipe();
	return (int)b;
}

/* floor(x / s) for public s > 0 and x < 2^bits: restoring division, one step per bit, no branch on x. */
static u128
noise_div(u128 x, u128 s, unsigned bits)
{
	u128 q = 0, r = 0;
	uint64_t ge;

	while (bits-- > 0) {
		r = (r << 1) | ((x >> bits) & 1);
		ge = ct_lt128(r, s) ^ 1;
		r -= s & ct_mask128(ge);
		q |= (u128)ge << bits;
	}
	return q;
}

int
noise_laplace(uint64_t num, uint64_t den, int64_t *out)
{
	/* CKS Algorithm 2 with scale t/s: t = num, s = den. */
	u128 t = num, s = den, u, x, y;
	unsigned char sign;
	unsigned xbits;

	*out = 0;
	if (num == 0 || den == 0 || num > NOISE_PARAM_MAX || den > NOISE_PARAM_MAX)
		return CG_ERR_ARG;
	noise_pool_enter();
	xbits = bits128(t * (NOISE_GEOM + 1));
	/*
	 * A round that is kept does the same work whatever it draws, and a
	 * round is kept or thrown away whole: the rounds are independent, so
	 * how many are thrown away, and so the time taken, is independent of
	 * the value returned.
	 */
	for (;;) {
		uint64_t fail = 0, reject, alive = 1, v = 0, b, i;

		u = noise_uniform(t);
		reject = noise_bexp_frac(u, t, &fail) ^ 1;
		/*
		 * A round known to be rejected can stop here: its values are
		 * thrown away, and the round that is kept always goes on.
		 */
		if ((ct_hide(fail) | reject) != 0)
			continue;
		/* V: the number of Bernoulli(exp(-1)) successes before the first failure */
		for (i = 0; i < NOISE_GEOM; i++) {
			alive &= noise_bexp1(&fail);
			v += alive;
		}
		fail |= alive;
		x = u + t * v;
		y = s == 1 ? x : noise_div(x, s, xbits);
		noise_random(&sign, 1);
		b = ct_hide(sign & 1);
		reject |= b & ct_lt128(y, 1);                           /* -0 */
		reject |= ct_lt128(y, (u128)INT64_MAX + 1) ^ 1;         /* beyond int64 (scales near 2^62) */
		if ((ct_hide(fail) | reject) == 0) {
			*out = (int64_t)(((uint64_t)y ^ -b) + b);
			noise_pool_wipe();
			return 0;
		}
	}
}

/* floor(sqrt(a / b)) for b > 0, exactly, by Newton's method on the integer q = floor(a / b). */
static u128
noise_isqrt_div(u128 a, u128 b)
{
	u128 q = a / b, x, y;

	if (q < 2)
		return q;
	x = q;
	y = (x + 1) / 2;
	while (y < x) {
		x = y;
		y = (x + q / x) / 2;
	}
	return x;
}

int
noise_gaussian(uint64_t num, uint64_t den, int64_t *out)
{
	/* CKS Algorithm 3: sigma^2 = a/b, t = floor(sigma) + 1. */
	struct wide wa, wbt, d, c, c2, wy;
	u128 a = num, b = den, t;
	uint64_t fail, acc, neg, m, y;
	int64_t lap;
	int r;

	*out = 0;
	if (num == 0 || den == 0 || num > NOISE_PARAM_MAX || den > NOISE_PARAM_MAX)
		return CG_ERR_ARG;
	/* floor(sqrt(a/b)) = floor(sqrt(floor(a/b))); t <= 2^31 + 1 (public: it depends on the scale only) */
	t = noise_isqrt_div(a, b) + 1;
	noise_pool_enter();
	/* d = 2 a b t^2 < 2^188 and bt = b t < 2^94, once */
	wide_set(&wa, a);
	wide_set(&wbt, b * t);
	wide_set(&c, 2 * a * t);
	wide_mul(&d, &c, &wbt);
	for (;;) {
		if ((r = noise_laplace((uint64_t)t, 1, &lap)) != 0)
			return r;
		/* |Y| < 57 t < 2^37, without a branch on the sign */
		m = (uint64_t)(lap >> 63);
		y = ((uint64_t)lap ^ m) - m;
		/*
		 * Accept with probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2))
		 *   = exp(-(|Y| b t - a)^2 / (2 a b t^2)); |Y| b t < 2^131, its square < 2^262.
		 */
		wide_set(&wy, y);
		wide_mul(&c, &wy, &wbt);
		neg = wide_sub(&c2, &c, &wa);
		wide_sub(&wy, &wa, &c);
		wide_select(&c, neg, &wy, &c2);
		wide_mul(&c2, &c, &c);
		fail = 0;
		acc = noise_bexp_wide(&c2, &d, &fail);
		if ((ct_hide(fail) | (acc ^ 1)) == 0)
			break;
	}
	*out = lap;
	noise_pool_wipe();
	sodium_memzero(&c, sizeof(c));
	sodium_memzero(&c2, sizeof(c2));
	sodium_memzero(&wy, sizeof(wy));
	return 0;
}
