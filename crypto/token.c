/* token.c - see token.h */
#include "crypto/token.h"

#include <string.h>

#include <sodium.h>

#include "base/secmem.h"

#define TOKEN_PREFIX_EMAIL "crossgate token v1/email/"
#define TOKEN_PREFIX_PHONE "crossgate token v1/phone/"
/* A shorter key would make the tokens guessable offline. */
#define TOKEN_KEY_MIN 16

/*
 * HMAC states that have already absorbed the key and the kind's domain
 * prefix: a token is then one copy, one update and one final.  The states are
 * key material (they stand in for the key), hence secmem.
 */
struct token_ctx {
	crypto_auth_hmacsha256_state email;
	crypto_auth_hmacsha256_state phone;
};

/* sodium_malloc places an allocation at the end of a page: only a size that is a
 * multiple of the alignment keeps the struct aligned. */
_Static_assert(sizeof(struct token_ctx) % 16 == 0, "token_ctx size breaks secmem alignment");

int
token_ctx_new(const unsigned char *match_key, size_t key_len, struct token_ctx **out,
    struct cg_err *err)
{
	struct token_ctx *ctx = NULL;
	crypto_auth_hmacsha256_state keyed;
	int r;

	*out = NULL;
	if (key_len < TOKEN_KEY_MIN) {
		r = cg_err_set(err, CG_ERR_ARG, "match key is shorter than %d bytes", TOKEN_KEY_MIN);
		goto out;
	}
	if ((ctx = secmem_alloc(sizeof(*ctx))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (crypto_auth_hmacsha256_init(&keyed, match_key, key_len) != 0) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "HMAC initialization failed");
		goto out;
	}
	memcpy(&ctx->email, &keyed, sizeof(keyed));
	memcpy(&ctx->phone, &keyed, sizeof(keyed));
	if (crypto_auth_hmacsha256_update(&ctx->email, (const unsigned char *)TOKEN_PREFIX_EMAIL,
	    strlen(TOKEN_PREFIX_EMAIL)) != 0 ||
	    crypto_auth_hmacsha256_update(&ctx->phone, (const unsigned char *)TOKEN_PREFIX_PHONE,
	    strlen(TOKEN_PREFIX_PHONE)) != 0) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "HMAC update failed");
		goto out;
	}
	*out = ctx;
	ctx = NULL; /* transferred */
	r = 0;
out:
	sodium_memzero(&keyed, sizeof(keyed));
	secmem_free(ctx, sizeof(*ctx));
	return r;
}

void
token_ctx_free(struct token_ctx *ctx)
{
	secmem_free(ctx, sizeof(*ctx));
}

int
token_compute(const struct token_ctx *ctx, uint32_t kind, const char *normalized, size_t len,
    unsigned char out[TOKEN_LEN])
{
	crypto_auth_hmacsha256_state st;
	int r;

	switch (kind) {
	case TOKEN_KIND_EMAIL:
		memcpy(&st, &ctx->email, sizeof(st));
		break;
	case TOKEN_KIND_PHONE:
		memcpy(&st, &ctx->phone, sizeof(st));
		break;
	default:
		sodium_memzero(out, TOKEN_LEN);
		return CG_ERR_ARG;
	}
	/* The local copy is the only thing written, so a shared ctx is thread-safe. */
	if (crypto_auth_hmacsha256_update(&st, (const unsigned char *)normalized, len) != 0 ||
	    crypto_auth_hmacsha256_final(&st, out) != 0) {
		sodium_memzero(out, TOKEN_LEN);
		r = CG_ERR_INTERNAL;
		goto out;
	}
	r = 0;
out:
	sodium_memzero(&st, sizeof(st));
	return r;
}

void
token_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
    size_t msg_len, unsigned char out[32])
{
	crypto_auth_hmacsha256_state st;

	/* _init takes any key length (hashing keys over 64 bytes, RFC 2104 §2). */
	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, msg, msg_len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}
