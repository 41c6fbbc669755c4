/*
 * delivery.h - an audience delivery: the tokens of one partner's own users in
 * an audience, sealed to that partner (docs/PROTOCOL.md §8.8).
 *
 * Plaintext (all integers big-endian):
 *
 *   "crossgate audience v1\n"  (22 bytes)
 *   audience_id[16]
 *   u8 partner_len || partner id
 *   u8 name_len    || audience name
 *   i64 created    (unix seconds)
 *   u32 count
 *   count x (u8 kind || token[32])     kind 1 email, 2 phone; sorted by (kind, token), no duplicates
 *
 * Each entry is the token that keys one user at the gateway (join.h: the
 * email token, or for a user without an email the phone token): the same
 * token the partner sent for that user.  Sealed with libsodium's
 * crypto_box_seal to the X25519 key of the partner's Ed25519 signing key
 * (crypto_sign_ed25519_pk_to_curve25519 of the policy's signing_key), so
 * only the holder of the partner's signing key can open it and the gateway
 * needs no other key of the partner.  The sealed form is what the gateway
 * stores and sends.
 */
#ifndef CG_DELIVERY_H
#define CG_DELIVERY_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/token.h"

#define DELIVERY_MAGIC "crossgate audience v1\n"
#define DELIVERY_MAGIC_LEN 22
#define DELIVERY_ID_LEN 16
#define DELIVERY_NAME_MAX 64
#define DELIVERY_ENTRY_LEN (1 + TOKEN_LEN)
#define DELIVERY_COUNT_MAX (64u * 1024 * 1024)

struct delivery {
	unsigned char audience_id[DELIVERY_ID_LEN];
	char partner[DELIVERY_NAME_MAX + 1];
	char name[DELIVERY_NAME_MAX + 1];
	int64_t created;
	struct token *tokens;                /* owned; sorted by (kind, value) */
	size_t n;
};

/*
 * Sort and seal d (its tokens are sorted in place) to the partner's Ed25519
 * public key.  *out is malloc'd (caller frees), *out_len its length.
 * CG_ERR_ARG for a name or partner too long, a bad kind, a duplicate;
 * CG_ERR_CRYPTO if the key is not a valid Ed25519 point.
 */
int delivery_seal(struct delivery *d, const unsigned char ed25519_pub[32], unsigned char **out, size_t *out_len,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * Open a sealed delivery with the partner's Ed25519 secret key (64 bytes,
 * the signing key), and check its form.  CG_ERR_CRYPTO if it was not sealed
 * to this key, CG_ERR_FORMAT if malformed (unsorted or duplicate entries
 * included).  d->tokens is malloc'd; delivery_free releases it.
 */
int delivery_open(const unsigned char *sealed, size_t len, const unsigned char ed25519_sec[64],
    struct delivery *d, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4);
void delivery_free(struct delivery *d);

#endif
