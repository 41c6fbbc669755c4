/*
 * token.h - the pseudonymization PRF.
 *
 * token = HMAC-SHA-256(match key, "crossgate token v1/" kind "/" || normalized id)
 * with kind "email" or "phone": the per-kind domain prefix keeps an email and a
 * phone that happen to be the same string from colliding.  The match key is
 * shared by the partners and never given to the gateway, so a stolen gateway
 * database cannot be reversed by hashing a list of emails.
 */
#ifndef CG_TOKEN_H
#define CG_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define TOKEN_LEN 32
#define TOKEN_KIND_EMAIL 1   /* = crossgate.IdKind values */
#define TOKEN_KIND_PHONE 2

struct token {
	uint32_t kind;
	unsigned char value[TOKEN_LEN];
};

/* Precomputed HMAC state for one match key (in secmem); owned by the caller of token_ctx_new. */
struct token_ctx;

int token_ctx_new(const unsigned char *match_key, size_t key_len, struct token_ctx **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3);
void token_ctx_free(struct token_ctx *ctx);

/* kind is TOKEN_KIND_*; returns CG_ERR_ARG for another kind. Thread-safe on a shared ctx. */
int token_compute(const struct token_ctx *ctx, uint32_t kind, const char *normalized, size_t len,
    unsigned char out[TOKEN_LEN]) CG_MUST_CHECK CG_NONNULL(1, 3, 5);

/* Plain HMAC-SHA-256 with any key length (RFC 4231 known answers). */
void token_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
    size_t msg_len, unsigned char out[32]);

#endif
