/*
 * receipt.h - the two hashes of a user's receipt for a withdrawal or a
 * revocation (the whole story: agent/receipt.h).
 *
 *   leaf  = SHA-256("crossgate receipt v1\n" || nonce (32 bytes) ||
 *                   id kind (1 byte) || the normalized identifier)
 *   entry = "crossgate receipt entry v1\n" || leaf || withdrawn_at (8 bytes,
 *           big-endian) || for each withdrawn purpose, in policy order:
 *           length (1 byte) || name
 *
 * The partner's agent makes the leaf (it knows the identifier and the
 * nonce), the gateway makes the entry from what it applied, the tree over a
 * batch's entries is RFC 6962 (merkle.h), and a user's verifier recomputes
 * both.  Here, below all three, so that they hash the same bytes.
 */
#ifndef CG_CRYPTO_RECEIPT_H
#define CG_CRYPTO_RECEIPT_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/merkle.h"

#define RECEIPT_NONCE_LEN 32
#define RECEIPT_LEAF_LEN 32
#define RECEIPT_NAME_MAX 255           /* a purpose name's length byte */

void receipt_leaf(const unsigned char nonce[RECEIPT_NONCE_LEN], uint32_t id_kind, const char *normalized, size_t len,
    unsigned char leaf[RECEIPT_LEAF_LEN]) CG_NONNULL(1, 3, 5);

/*
 * The tree's leaf hash (merkle_leaf_hash) of the entry, for n purpose names
 * (at most 32, each at most 255 bytes: CG_ERR_LIMIT otherwise).
 */
int receipt_entry_hash(const unsigned char leaf[RECEIPT_LEAF_LEN], int64_t withdrawn_at, const char *const *names,
    size_t n, unsigned char out[MERKLE_HASH_LEN]) CG_MUST_CHECK CG_NONNULL(1, 5);

#endif
