/* token.c - see token.h */
#include "crypto/token.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#define TOKEN_PREFIX_EMAIL "crossgate token v1/email/"
#define TOKEN_PREFIX_PHONE "crossgate token v1/phone/"
/* A shorter key would make the tokens guessable offline. */
#define TOKEN_KEY_MIN 16

/*
 * An HMAC-SHA-256 context that has absorbed the key (its pads are hashed)
 * and nothing else.  It stands in for the key: OpenSSL holds the key and the
 * padded states, and EVP_MAC_CTX_free cleanses them.
 */
struct token_ctx {
	EVP_MAC_CTX *keyed;
};

/* A private copy, re-initialized per token (EVP_MAC_init with no key reuses the pads). */
struct token_hasher {
	EVP_MAC_CTX *work;
};

/* A new context keyed with key; NULL if OpenSSL fails (out of memory or no HMAC-SHA-256). */
static EVP_MAC_CTX *
token_mac_new(const unsigned char *key, size_t key_len)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac;
	EVP_MAC_CTX *m = NULL;

	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return NULL;
	/* The context holds its own reference to the algorithm. */
	if ((m = EVP_MAC_CTX_new(mac)) != NULL && EVP_MAC_init(m, key, key_len, params) != 1) {
		EVP_MAC_CTX_free(m);
		m = NULL;
	}
	EVP_MAC_free(mac);
	return m;
}

static const char *
token_prefix(uint32_t kind)
{
	switch (kind) {
	case TOKEN_KIND_EMAIL:
		return TOKEN_PREFIX_EMAIL;
	case TOKEN_KIND_PHONE:
		return TOKEN_PREFIX_PHONE;
	default:
		return NULL;
	}
}

/* Absorb prefix || msg into m (keyed, nothing absorbed yet) and finish; out is zeroed on failure. */
static int
token_mac_finish(EVP_MAC_CTX *m, const char *prefix, const unsigned char *msg, size_t len, unsigned char out[32])
{
	size_t outl = 0;

	if ((prefix != NULL && EVP_MAC_update(m, (const unsigned char *)prefix, strlen(prefix)) != 1) ||
	    EVP_MAC_update(m, msg, len) != 1 || EVP_MAC_final(m, out, &outl, 32) != 1 || outl != 32) {
		sodium_memzero(out, 32);
		return CG_ERR_CRYPTO;
	}
	return 0;
}

int
token_ctx_new(const unsigned char *match_key, size_t key_len, struct token_ctx **out,
    struct cg_err *err)
{
	struct token_ctx *ctx = NULL;
	int r;

	*out = NULL;
	if (key_len < TOKEN_KEY_MIN) {
		r = cg_err_set(err, CG_ERR_ARG, "match key is shorter than %d bytes", TOKEN_KEY_MIN);
		goto out;
	}
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((ctx->keyed = token_mac_new(match_key, key_len)) == NULL) {
		r = cg_err_set(err, CG_ERR_CRYPTO, "cannot set up HMAC-SHA-256 (OpenSSL)");
		goto out;
	}
	*out = ctx;
	ctx = NULL; /* transferred */
	r = 0;
out:
	token_ctx_free(ctx);
	return r;
}

void
token_ctx_free(struct token_ctx *ctx)
{
	if (ctx == NULL)
		return;
	EVP_MAC_CTX_free(ctx->keyed);
	free(ctx);
}

int
token_compute(const struct token_ctx *ctx, uint32_t kind, const char *normalized, size_t len,
    unsigned char out[TOKEN_LEN])
{
	const char *prefix = token_prefix(kind);
	EVP_MAC_CTX *m;
	int r;

	if (prefix == NULL) {
		sodium_memzero(out, TOKEN_LEN);
		return CG_ERR_ARG;
	}
	/* EVP_MAC_CTX_dup takes a const source: concurrent calls on one ctx are safe. */
	if ((m = EVP_MAC_CTX_dup(ctx->keyed)) == NULL) {
		sodium_memzero(out, TOKEN_LEN);
		return CG_ERR_NOMEM;
	}
	r = token_mac_finish(m, prefix, (const unsigned char *)normalized, len, out);
	EVP_MAC_CTX_free(m);
	return r;
}

int
token_hasher_new(const struct token_ctx *ctx, struct token_hasher **out, struct cg_err *err)
{
	struct token_hasher *h;

	*out = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL || (h->work = EVP_MAC_CTX_dup(ctx->keyed)) == NULL) {
		free(h);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	*out = h;
	return 0;
}

void
token_hasher_free(struct token_hasher *h)
{
	if (h == NULL)
		return;
	EVP_MAC_CTX_free(h->work);
	free(h);
}

int
token_hasher_compute(struct token_hasher *h, uint32_t kind, const char *normalized, size_t len,
    unsigned char out[TOKEN_LEN])
{
	const char *prefix = token_prefix(kind);

	if (prefix == NULL) {
		sodium_memzero(out, TOKEN_LEN);
		return CG_ERR_ARG;
	}
	/* No key: OpenSSL restarts from the inner pad it hashed at token_ctx_new (RFC 2104 §4). */
	if (EVP_MAC_init(h->work, NULL, 0, NULL) != 1) {
		sodium_memzero(out, TOKEN_LEN);
		return CG_ERR_CRYPTO;
	}
	return token_mac_finish(h->work, prefix, (const unsigned char *)normalized, len, out);
}

int
token_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
    size_t msg_len, unsigned char out[32])
{
	EVP_MAC_CTX *m;
	int r;

	/* OpenSSL hashes keys longer than the block first (RFC 2104 §2). */
	if ((m = token_mac_new(key, key_len)) == NULL) {
		sodium_memzero(out, 32);
		return CG_ERR_CRYPTO;
	}
	r = token_mac_finish(m, NULL, msg, msg_len, out);
	EVP_MAC_CTX_free(m);
	return r;
}
