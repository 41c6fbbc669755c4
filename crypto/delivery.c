/* delivery.c - see delivery.h */
#include "crypto/delivery.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

static int
delivery_token_cmp(const void *a, const void *b)
{
	const struct token *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return memcmp(x->value, y->value, TOKEN_LEN);
}

static void
delivery_put_be(unsigned char *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

static uint64_t
delivery_get_be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int
delivery_seal(struct delivery *d, const unsigned char ed25519_pub[32], unsigned char **out, size_t *out_len,
    struct cg_err *err)
{
	size_t plen = strlen(d->partner), nlen = strlen(d->name), len, i, o = 0;
	unsigned char curve[crypto_box_PUBLICKEYBYTES], *pt = NULL, *ct = NULL;
	int r = 0;

	*out = NULL;
	*out_len = 0;
	if (plen == 0 || plen > DELIVERY_NAME_MAX || nlen == 0 || nlen > DELIVERY_NAME_MAX)
		return cg_err_set(err, CG_ERR_ARG, "delivery: partner id and audience name must be 1 to %d bytes",
		    DELIVERY_NAME_MAX);
	if (d->n > DELIVERY_COUNT_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "delivery: more than %u users", DELIVERY_COUNT_MAX);
	if (crypto_sign_ed25519_pk_to_curve25519(curve, ed25519_pub) != 0)
		return cg_err_set(err, CG_ERR_CRYPTO, "delivery: the partner's signing key is not a valid Ed25519 key");
	if (d->n > 0)
		qsort(d->tokens, d->n, sizeof(*d->tokens), delivery_token_cmp);
	for (i = 0; i < d->n; i++) {
		if (d->tokens[i].kind != TOKEN_KIND_EMAIL && d->tokens[i].kind != TOKEN_KIND_PHONE)
			return cg_err_set(err, CG_ERR_ARG, "delivery: a token of unknown kind");
		if (i > 0 && delivery_token_cmp(&d->tokens[i - 1], &d->tokens[i]) == 0)
			return cg_err_set(err, CG_ERR_ARG, "delivery: a token twice");
	}
	len = DELIVERY_MAGIC_LEN + DELIVERY_ID_LEN + 1 + plen + 1 + nlen + 8 + 4 + d->n * DELIVERY_ENTRY_LEN;
	if ((pt = malloc(len)) == NULL || (ct = malloc(len + crypto_box_SEALBYTES)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory sealing a delivery");
		goto out;
	}
	memcpy(pt, DELIVERY_MAGIC, DELIVERY_MAGIC_LEN);
	o = DELIVERY_MAGIC_LEN;
	memcpy(pt + o, d->audience_id, DELIVERY_ID_LEN);
	o += DELIVERY_ID_LEN;
	pt[o++] = (unsigned char)plen;
	memcpy(pt + o, d->partner, plen);
	o += plen;
	pt[o++] = (unsigned char)nlen;
	memcpy(pt + o, d->name, nlen);
	o += nlen;
	delivery_put_be(pt + o, (uint64_t)d->created, 8);
	o += 8;
	delivery_put_be(pt + o, d->n, 4);
	o += 4;
	for (i = 0; i < d->n; i++, o += DELIVERY_ENTRY_LEN) {
		pt[o] = (unsigned char)d->tokens[i].kind;
		memcpy(pt + o + 1, d->tokens[i].value, TOKEN_LEN);
	}
	if (crypto_box_seal(ct, pt, len, curve) != 0) {
		r = cg_err_set(err, CG_ERR_CRYPTO, "delivery: sealing failed");
		goto out;
	}
	*out = ct;
	*out_len = len + crypto_box_SEALBYTES;
	ct = NULL;
out:
	if (pt != NULL)
		sodium_memzero(pt, len);
	free(pt);
	free(ct);
	return r;
}

int
delivery_open(const unsigned char *sealed, size_t len, const unsigned char ed25519_sec[64], struct delivery *d,
    struct cg_err *err)
{
	unsigned char sk[crypto_box_SECRETKEYBYTES], pk[crypto_box_PUBLICKEYBYTES], *pt = NULL;
	size_t plen, o, n, i, l;
	int r = 0;

	memset(d, 0, sizeof(*d));
	if (len < crypto_box_SEALBYTES + DELIVERY_MAGIC_LEN + DELIVERY_ID_LEN + 2 + 12)
		return cg_err_set(err, CG_ERR_FORMAT, "delivery: too short");
	plen = len - crypto_box_SEALBYTES;
	if ((pt = malloc(plen)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory opening a delivery");
	if (crypto_sign_ed25519_sk_to_curve25519(sk, ed25519_sec) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(pk, ed25519_sec + 32) != 0) {
		r = cg_err_set(err, CG_ERR_CRYPTO, "delivery: not an Ed25519 signing key");
		goto out;
	}
	if (crypto_box_seal_open(pt, sealed, len, pk, sk) != 0) {
		r = cg_err_set(err, CG_ERR_CRYPTO, "delivery: not sealed to this partner's key (or altered)");
		goto out;
	}
	r = cg_err_set(err, CG_ERR_FORMAT, "delivery: malformed");
	if (memcmp(pt, DELIVERY_MAGIC, DELIVERY_MAGIC_LEN) != 0)
		goto out;
	o = DELIVERY_MAGIC_LEN;
	memcpy(d->audience_id, pt + o, DELIVERY_ID_LEN);
	o += DELIVERY_ID_LEN;
	for (i = 0; i < 2; i++) {
		char *dst = i == 0 ? d->partner : d->name;

		l = pt[o++];
		if (l == 0 || l > DELIVERY_NAME_MAX || plen - o < l + 1 + 12)
			goto out;
		memcpy(dst, pt + o, l);
		dst[l] = '\0';
		if (strlen(dst) != l)
			goto out;
		o += l;
	}
	if (plen - o < 12)
		goto out;
	d->created = (int64_t)delivery_get_be(pt + o, 8);
	n = (size_t)delivery_get_be(pt + o + 8, 4);
	o += 12;
	if (n > DELIVERY_COUNT_MAX || plen - o != n * DELIVERY_ENTRY_LEN)
		goto out;
	if (n > 0 && (d->tokens = calloc(n, sizeof(*d->tokens))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory opening a delivery");
		goto out;
	}
	for (i = 0; i < n; i++, o += DELIVERY_ENTRY_LEN) {
		d->tokens[i].kind = pt[o];
		memcpy(d->tokens[i].value, pt + o + 1, TOKEN_LEN);
		if ((pt[o] != TOKEN_KIND_EMAIL && pt[o] != TOKEN_KIND_PHONE) ||
		    (i > 0 && delivery_token_cmp(&d->tokens[i - 1], &d->tokens[i]) >= 0))
			goto out;
	}
	d->n = n;
	r = 0;
	cg_err_clear(err);
out:
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(pt, plen);
	free(pt);
	if (r != 0)
		delivery_free(d);
	return r;
}

void
delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	free(d->tokens);
	d->tokens = NULL;
	d->n = 0;
}
