/*
 * seal.h - sealing records and batch keys.
 *
 * Each batch has a fresh random 32-byte key.  Records are sealed with
 * ChaCha20-Poly1305 (IETF) under it; the nonce is the record's index in the
 * batch (little-endian in the first 8 of 12 bytes), unique because the key is
 * never reused.  The associated data binds the record to its batch, partner,
 * position, consent and tokens, so none of them can be swapped between records:
 *
 *   "crossgate record v1" || batch_id (16) || u8 len || partner_id || u64be index
 *   || u32be consent_bits || i64be consent_at || u8 ntokens || (u8 kind || token[32])*
 *
 * The batch key is sealed to the gateway's X25519 key with crypto_box_seal.
 * At rest the gateway keeps the partner's ciphertext and seals the batch key
 * under a subkey of its storage key (gateway/ingest.h).
 */
#ifndef CG_SEAL_H
#define CG_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/token.h"

#define SEAL_KEY_LEN 32
#define SEAL_TAG_LEN 16
#define SEAL_WRAPPED_LEN (32 + 48)     /* crypto_box_SEALBYTES = 48 */
#define SEAL_BATCH_ID_LEN 16
#define SEAL_PARTNER_MAX 64
#define SEAL_TOKENS_MAX 4
#define SEAL_AD_MAX (19 + 16 + 1 + SEAL_PARTNER_MAX + 8 + 4 + 8 + 1 + SEAL_TOKENS_MAX * 33)

/*
 * Build the associated data into ad (SEAL_AD_MAX bytes); *ad_len is set.
 * CG_ERR_ARG if the partner id is longer than SEAL_PARTNER_MAX or there are
 * more than SEAL_TOKENS_MAX tokens.
 */
int seal_ad_build(unsigned char *ad, size_t *ad_len, const unsigned char batch_id[SEAL_BATCH_ID_LEN],
    const char *partner_id, uint64_t index, uint32_t consent_bits, int64_t consent_at,
    const struct token *tokens, size_t ntokens) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/* ct must hold pt_len + SEAL_TAG_LEN bytes. */
int seal_record(const unsigned char key[SEAL_KEY_LEN], uint64_t index, const unsigned char *ad,
    size_t ad_len, const unsigned char *pt, size_t pt_len, unsigned char *ct)
    CG_MUST_CHECK CG_NONNULL(1, 3, 7);

/*
 * Verify then decrypt; pt must hold ct_len - SEAL_TAG_LEN bytes.  A short
 * ciphertext is CG_ERR_FORMAT, a bad tag CG_ERR_CRYPTO; on failure pt is wiped.
 */
int seal_open_record(const unsigned char key[SEAL_KEY_LEN], uint64_t index, const unsigned char *ad,
    size_t ad_len, const unsigned char *ct, size_t ct_len, unsigned char *pt, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3, 5, 7);

/* crypto_box_seal of the batch key to the gateway's X25519 public key. */
int seal_wrap_key(const unsigned char key[SEAL_KEY_LEN], const unsigned char gateway_pub[32],
    unsigned char wrapped[SEAL_WRAPPED_LEN]) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* Open a wrapped batch key with the gateway's key pair. CG_ERR_CRYPTO if it was not sealed to it. */
int seal_unwrap_key(const unsigned char *wrapped, size_t wrapped_len, const unsigned char gateway_pub[32],
    const unsigned char gateway_sec[32], unsigned char key[SEAL_KEY_LEN], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5);

/*
 * Derive a subkey for an id (e.g. a stored batch's id) from a long-lived key:
 * BLAKE2b-256 keyed with master over "crossgate subkey v1\n" || id.
 */
void seal_subkey(const unsigned char master[SEAL_KEY_LEN], const unsigned char *id, size_t id_len,
    unsigned char out[SEAL_KEY_LEN]) CG_NONNULL(1, 2, 4);

#endif
