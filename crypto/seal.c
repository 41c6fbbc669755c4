/* seal.c - see seal.h */
#include "crypto/seal.h"

#include <string.h>

#include <sodium.h>

#define SEAL_AD_CONTEXT "crossgate record v1"
#define SEAL_SUBKEY_PREFIX "crossgate subkey v1\n"

_Static_assert(sizeof(SEAL_AD_CONTEXT) - 1 == 19, "SEAL_AD_MAX counts a 19-byte context");
_Static_assert(SEAL_WRAPPED_LEN == SEAL_KEY_LEN + crypto_box_SEALBYTES, "wrapped key size");
_Static_assert(SEAL_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "tag size");

static void
seal_put_be(unsigned char *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

int
seal_ad_build(unsigned char *ad, size_t *ad_len, const unsigned char batch_id[SEAL_BATCH_ID_LEN],
    const char *partner_id, uint64_t index, uint32_t consent_bits, int64_t consent_at,
    const struct token *tokens, size_t ntokens)
{
	size_t plen, pos = 0, i;

	*ad_len = 0;
	plen = strnlen(partner_id, SEAL_PARTNER_MAX + 1);
	if (plen > SEAL_PARTNER_MAX || ntokens > SEAL_TOKENS_MAX ||
	    (ntokens > 0 && tokens == NULL))
		return CG_ERR_ARG;
	for (i = 0; i < ntokens; i++)
		if (tokens[i].kind > 0xff)
			return CG_ERR_ARG;
	memcpy(ad + pos, SEAL_AD_CONTEXT, sizeof(SEAL_AD_CONTEXT) - 1);
	pos += sizeof(SEAL_AD_CONTEXT) - 1;
	memcpy(ad + pos, batch_id, SEAL_BATCH_ID_LEN);
	pos += SEAL_BATCH_ID_LEN;
	ad[pos++] = (unsigned char)plen;
	memcpy(ad + pos, partner_id, plen);
	pos += plen;
	seal_put_be(ad + pos, index, 8);
	pos += 8;
	seal_put_be(ad + pos, consent_bits, 4);
	pos += 4;
	seal_put_be(ad + pos, (uint64_t)consent_at, 8);
	pos += 8;
	ad[pos++] = (unsigned char)ntokens;
	for (i = 0; i < ntokens; i++) {
		ad[pos++] = (unsigned char)tokens[i].kind;
		memcpy(ad + pos, tokens[i].value, TOKEN_LEN);
		pos += TOKEN_LEN;
	}
	*ad_len = pos;
	return 0;
}

/* The index as nonce is unique per record because each batch key is fresh. */
static void
seal_nonce(uint64_t index, unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES])
{
	size_t i;

	memset(nonce, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
	for (i = 0; i < 8; i++)
		nonce[i] = (unsigned char)(index >> (8 * i));
}

int
seal_record(const unsigned char key[SEAL_KEY_LEN], uint64_t index, const unsigned char *ad,
    size_t ad_len, const unsigned char *pt, size_t pt_len, unsigned char *ct)
{
	unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

	if (pt == NULL && pt_len > 0)
		return CG_ERR_ARG;
	if (pt_len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
		return CG_ERR_LIMIT;
	seal_nonce(index, nonce);
	if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(ct, ct + pt_len, NULL, pt, pt_len,
	    ad, ad_len, NULL, nonce, key) != 0)
		return CG_ERR_INTERNAL;
	return 0;
}

int
seal_open_record(const unsigned char key[SEAL_KEY_LEN], uint64_t index, const unsigned char *ad,
    size_t ad_len, const unsigned char *ct, size_t ct_len, unsigned char *pt, struct cg_err *err)
{
	unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	size_t pt_len;

	if (ct_len < SEAL_TAG_LEN)
		return cg_err_set(err, CG_ERR_FORMAT,
		    "sealed record is %zu bytes, shorter than its %d-byte tag", ct_len, SEAL_TAG_LEN);
	pt_len = ct_len - SEAL_TAG_LEN;
	seal_nonce(index, nonce);
	/* _detached checks the tag in constant time before it decrypts anything. */
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(pt, NULL, ct, pt_len,
	    ct + pt_len, ad, ad_len, nonce, key) != 0) {
		sodium_memzero(pt, pt_len);
		return cg_err_set(err, CG_ERR_CRYPTO,
		    "sealed record %llu does not verify (wrong key, wrong position or "
		    "associated data, or tampered)", (unsigned long long)index);
	}
	return 0;
}

int
seal_wrap_key(const unsigned char key[SEAL_KEY_LEN], const unsigned char gateway_pub[32],
    unsigned char wrapped[SEAL_WRAPPED_LEN])
{
	if (crypto_box_seal(wrapped, key, SEAL_KEY_LEN, gateway_pub) != 0) {
		sodium_memzero(wrapped, SEAL_WRAPPED_LEN);
		return CG_ERR_CRYPTO;
	}
	return 0;
}

int
seal_unwrap_key(const unsigned char *wrapped, size_t wrapped_len, const unsigned char gateway_pub[32],
    const unsigned char gateway_sec[32], unsigned char key[SEAL_KEY_LEN], struct cg_err *err)
{
	sodium_memzero(key, SEAL_KEY_LEN);
	if (wrapped_len != SEAL_WRAPPED_LEN)
		return cg_err_set(err, CG_ERR_FORMAT, "wrapped batch key is %zu bytes, expected %d",
		    wrapped_len, SEAL_WRAPPED_LEN);
	if (crypto_box_seal_open(key, wrapped, wrapped_len, gateway_pub, gateway_sec) != 0) {
		sodium_memzero(key, SEAL_KEY_LEN);
		return cg_err_set(err, CG_ERR_CRYPTO,
		    "wrapped batch key does not open: not sealed to this gateway's key, or tampered");
	}
	return 0;
}

void
seal_subkey(const unsigned char master[SEAL_KEY_LEN], const unsigned char *id, size_t id_len,
    unsigned char out[SEAL_KEY_LEN])
{
	crypto_generichash_state st;

	/* Keyed BLAKE2b is a PRF: one independent key per id, with no counter to keep. */
	crypto_generichash_init(&st, master, SEAL_KEY_LEN, SEAL_KEY_LEN);
	crypto_generichash_update(&st, (const unsigned char *)SEAL_SUBKEY_PREFIX, sizeof(SEAL_SUBKEY_PREFIX) - 1);
	crypto_generichash_update(&st, id, id_len);
	crypto_generichash_final(&st, out, SEAL_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}
