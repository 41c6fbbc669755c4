/* noise.c - see noise.h */
#include "crypto/noise.h"

#include <string.h>
#include <openssl/bn.h>
#include <sodium.h>

typedef unsigned __int128 u128;

/*
 * Random bytes come from libsodium's CSPRNG, fetched 4 KiB at a time: one
 * randombytes_buf() per trial was a system call per trial.  Bytes are wiped
 * as they are used (they determine the noise, so they are secret).
 */
static _Thread_local struct {
	unsigned char buf[4096];
	size_t pos;
} noise_pool = { { 0 }, sizeof(noise_pool.buf) };

static void
noise_random(void *out, size_t n)
{
	if (sizeof(noise_pool.buf) - noise_pool.pos < n) {
		randombytes_buf(noise_pool.buf, sizeof(noise_pool.buf));
		noise_pool.pos = 0;
	}
	memcpy(out, noise_pool.buf + noise_pool.pos, n);
	sodium_memzero(noise_pool.buf + noise_pool.pos, n);
	noise_pool.pos += n;
}

/* Uniform integer in [0, bound), bound > 0, by rejection: no modulo bias. */
static u128
noise_uniform(u128 bound)
{
	if (bound <= UINT32_MAX) {
		uint32_t b = (uint32_t)bound, x, limit = (uint32_t)(-b) % b;
		for (;;) {
			noise_random(&x, sizeof(x));
			if (x >= limit)
				return x % b;
		}
	}
	{
		/* 2^128 mod bound: draws below it are rejected, the rest map evenly */
		u128 x, limit = ((u128)0 - bound) % bound;
		for (;;) {
			noise_random(&x, sizeof(x));
			if (x >= limit)
				return x % bound;
		}
	}
}

/* Bernoulli(exp(-n/d)) for 0 <= n/d <= 1 (CKS Algorithm 1): draw A_k ~ Bernoulli(gamma/k) until one fails. */
static int
noise_bexp_le1(u128 n, u128 d)
{
	u128 k = 1;

	while (noise_uniform(d * k) < n)
		k++;
	return (int)(k & 1);
}

int
noise_bernoulli_exp(u128 n, u128 d)
{
	u128 i, whole = n / d;

	/* exp(-gamma) = exp(-1)^floor(gamma) * exp(-(gamma - floor(gamma))) */
	for (i = 0; i < whole; i++)
		if (!noise_bexp_le1(1, 1))
			return 0;
	return noise_bexp_le1(n - whole * d, d);
}

/*
 * The same with arbitrary-precision n and d, for the discrete Gaussian's
 * acceptance test, whose numerator and denominator outgrow 128 bits.
 * OpenSSL's BIGNUM only does the arithmetic; randomness is libsodium's.
 */
struct noise_bn {
	BN_CTX *ctx;
	BIGNUM *u, *dk, *q, *r, *one;
	unsigned char buf[256];
};

/* u = uniform in [0, bound); -1 if bound is too large or on allocation failure. */
static int
noise_bn_uniform(struct noise_bn *z, const BIGNUM *bound)
{
	int bits = BN_num_bits(bound), bytes = (bits + 7) / 8;
	unsigned char mask = (unsigned char)(0xff >> (8 * bytes - bits));

	if (bytes == 0 || (size_t)bytes > sizeof(z->buf))
		return -1;
	for (;;) {
		noise_random(z->buf, (size_t)bytes);
		z->buf[0] &= mask;
		if (BN_bin2bn(z->buf, bytes, z->u) == NULL)
			return -1;
		if (BN_cmp(z->u, bound) < 0)
			return 0;
	}
}

/* Bernoulli(exp(-n/d)) for 0 <= n/d <= 1; 1, 0, or -1 on failure. */
static int
noise_bn_bexp_le1(struct noise_bn *z, const BIGNUM *n, const BIGNUM *d)
{
	BN_ULONG k = 1;

	for (;;) {
		if (BN_copy(z->dk, d) == NULL || !BN_mul_word(z->dk, k) || noise_bn_uniform(z, z->dk) != 0)
			return -1;
		if (BN_cmp(z->u, n) >= 0)
			break;
		k++;
	}
	return (int)(k & 1);
}

static int
noise_bn_bernoulli_exp(struct noise_bn *z, const BIGNUM *n, const BIGNUM *d)
{
	int r;

	if (!BN_div(z->q, z->r, n, d, z->ctx))
		return -1;
	/* floor(gamma) trials of exp(-1), each ending the draw with probability 1 - 1/e */
	while (!BN_is_zero(z->q)) {
		if ((r = noise_bn_bexp_le1(z, z->one, z->one)) != 1)
			return r;
		if (!BN_sub_word(z->q, 1))
			return -1;
	}
	return noise_bn_bexp_le1(z, z->r, d);
}

int
noise_laplace(uint64_t num, uint64_t den, int64_t *out)
{
	/* CKS Algorithm 2 with scale t/s: t = num, s = den. */
	u128 t = num, s = den, u, v, x, y;

	*out = 0;
	if (num == 0 || den == 0 || num > NOISE_PARAM_MAX || den > NOISE_PARAM_MAX)
		return CG_ERR_ARG;
	for (;;) {
		int b;

		u = noise_uniform(t);
		if (!noise_bernoulli_exp(u, t))
			continue;
		v = 0;
		while (noise_bernoulli_exp(1, 1))
			v++;
		x = u + t * v;
		y = x / s;
		b = noise_uniform(2) == 1;
		if (b && y == 0)
			continue;
		if (y > (u128)INT64_MAX)
			continue;          /* needs v > 2^23 successes of p = 1/e in a row: never */
		*out = b ? -(int64_t)y : (int64_t)y;
		return 0;
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

/* BIGNUM from a 128-bit value. */
static BIGNUM *
noise_bn_u128(BIGNUM *out, u128 v)
{
	unsigned char be[16];
	int i;

	for (i = 0; i < 16; i++)
		be[i] = (unsigned char)(v >> (8 * (15 - i)));
	return BN_bin2bn(be, 16, out);
}

int
noise_gaussian(uint64_t num, uint64_t den, int64_t *out)
{
	/* CKS Algorithm 3: sigma^2 = a/b, t = floor(sigma) + 1. */
	struct noise_bn z;
	BIGNUM *c = NULL, *d = NULL, *bt = NULL, *tmp = NULL;
	u128 a = num, b = den, t, y;
	int64_t lap;
	int r, acc;

	*out = 0;
	if (num == 0 || den == 0 || num > NOISE_PARAM_MAX || den > NOISE_PARAM_MAX)
		return CG_ERR_ARG;
	/* floor(sqrt(a/b)) = floor(sqrt(floor(a/b))); t <= 2^31 + 1 */
	t = noise_isqrt_div(a, b) + 1;
	memset(&z, 0, sizeof(z));
	r = CG_ERR_NOMEM;
	if ((z.ctx = BN_CTX_new()) == NULL || (z.u = BN_new()) == NULL || (z.dk = BN_new()) == NULL ||
	    (z.q = BN_new()) == NULL || (z.r = BN_new()) == NULL || (z.one = BN_new()) == NULL ||
	    (c = BN_new()) == NULL || (d = BN_new()) == NULL || (bt = BN_new()) == NULL || (tmp = BN_new()) == NULL ||
	    !BN_one(z.one))
		goto out;
	/* d = 2 a b t^2 and bt = b t, once: they do not change between trials */
	if (noise_bn_u128(d, a) == NULL || noise_bn_u128(bt, b * t) == NULL || !BN_mul(d, d, bt, z.ctx) ||
	    noise_bn_u128(tmp, t) == NULL || !BN_mul(d, d, tmp, z.ctx) || !BN_lshift1(d, d))
		goto out;
	for (;;) {
		if ((r = noise_laplace((uint64_t)t, 1, &lap)) != 0)
			goto out;
		y = lap < 0 ? (u128)(-(lap + 1)) + 1 : (u128)lap;
		/*
		 * Accept with probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2))
		 *   = exp(-(|Y| b t - a)^2 / (2 a b t^2)): integers, in BIGNUM.
		 */
		if (noise_bn_u128(c, y) == NULL || !BN_mul(c, c, bt, z.ctx) || noise_bn_u128(tmp, a) == NULL ||
		    !BN_sub(c, c, tmp) || !BN_sqr(c, c, z.ctx))
			goto nomem;
		if ((acc = noise_bn_bernoulli_exp(&z, c, d)) < 0)
			goto nomem;
		if (acc) {
			*out = lap;
			r = 0;
			goto out;
		}
	}
nomem:
	r = CG_ERR_NOMEM;
out:
	BN_free(c);
	BN_free(d);
	BN_free(bt);
	BN_free(tmp);
	BN_free(z.u);
	BN_free(z.dk);
	BN_free(z.q);
	BN_free(z.r);
	BN_free(z.one);
	BN_CTX_free(z.ctx);
	sodium_memzero(z.buf, sizeof(z.buf));
	return r;
}
