/*
 * token.h - the pseudonymization PRF.
 *
 * token = HMAC-SHA-256(match key, "crossgate token v1/" kind "/" || normalized id)
 * with kind "email" or "phone": the per-kind domain prefix keeps an email and a
 * phone that happen to be the same string from colliding.  The match key is
 * shared by the partners and never given to the gateway, so a stolen gateway
 * database cannot be reversed by hashing a list of emails.
 *
 * HMAC is OpenSSL's EVP_MAC "HMAC" (SHA-256 with the CPU's SHA extensions
 * where present).  The key's inner and outer pads are hashed once, when the
 * context is made; a token then costs two SHA-256 compressions for an
 * identifier of up to 30 bytes.  OpenSSL keeps its copy of the key and the
 * padded states in its own allocations, which EVP_MAC_CTX_free cleanses:
 * token_ctx_free and token_hasher_free free them on every path.
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

/* The keyed HMAC for one match key; owned by the caller of token_ctx_new. */
struct token_ctx;

/* CG_ERR_ARG for a key shorter than 16 bytes, CG_ERR_CRYPTO if OpenSSL has no HMAC-SHA-256. */
int token_ctx_new(const unsigned char *match_key, size_t key_len, struct token_ctx **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3);
void token_ctx_free(struct token_ctx *ctx);

/*
 * kind is TOKEN_KIND_*; returns CG_ERR_ARG for another kind (out is zeroed),
 * CG_ERR_NOMEM/CG_ERR_CRYPTO if OpenSSL fails.  Thread-safe on a shared ctx
 * (it duplicates the keyed context: one allocation per call; a loop over
 * many identifiers uses a token_hasher instead).
 */
int token_compute(const struct token_ctx *ctx, uint32_t kind, const char *normalized, size_t len,
    unsigned char out[TOKEN_LEN]) CG_MUST_CHECK CG_NONNULL(1, 3, 5);

/*
 * A working copy of a token_ctx for one thread: token_hasher_compute
 * reuses it, so a token costs no duplication.  Not thread-safe: one hasher
 * per thread, each made from the shared ctx (which may be freed first).
 */
struct token_hasher;

int token_hasher_new(const struct token_ctx *ctx, struct token_hasher **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
void token_hasher_free(struct token_hasher *h);
/* The same token as token_compute, and the same errors. */
int token_hasher_compute(struct token_hasher *h, uint32_t kind, const char *normalized, size_t len,
    unsigned char out[TOKEN_LEN]) CG_MUST_CHECK CG_NONNULL(1, 3, 5);

/*
 * Plain HMAC-SHA-256 with any key length (RFC 4231 known answers), through
 * the same OpenSSL path as the tokens.  CG_ERR_NOMEM/CG_ERR_CRYPTO if
 * OpenSSL fails (out is zeroed).
 */
int token_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
    size_t msg_len, unsigned char out[32]) CG_MUST_CHECK;

#endif
