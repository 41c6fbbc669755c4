/* receipt.c - see receipt.h */
#include "crypto/receipt.h"

#include <string.h>
#include <sodium.h>

static const char receipt_domain[] = "crossgate receipt v1\n";
static const char receipt_entry_domain[] = "crossgate receipt entry v1\n";

#define RECEIPT_ENTRY_MAX (sizeof(receipt_entry_domain) - 1 + RECEIPT_LEAF_LEN + 8 + 32 * (1 + RECEIPT_NAME_MAX))

void
receipt_leaf(const unsigned char nonce[RECEIPT_NONCE_LEN], uint32_t id_kind, const char *normalized, size_t len,
    unsigned char leaf[RECEIPT_LEAF_LEN])
{
	crypto_hash_sha256_state h;
	unsigned char kind = (unsigned char)id_kind;

	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, (const unsigned char *)receipt_domain, sizeof(receipt_domain) - 1);
	crypto_hash_sha256_update(&h, nonce, RECEIPT_NONCE_LEN);
	crypto_hash_sha256_update(&h, &kind, 1);
	crypto_hash_sha256_update(&h, (const unsigned char *)normalized, len);
	crypto_hash_sha256_final(&h, leaf);
	sodium_memzero(&h, sizeof(h));
}

int
receipt_entry_hash(const unsigned char leaf[RECEIPT_LEAF_LEN], int64_t withdrawn_at, const char *const *names,
    size_t n, unsigned char out[MERKLE_HASH_LEN])
{
	unsigned char e[RECEIPT_ENTRY_MAX];
	uint64_t u = (uint64_t)withdrawn_at;
	size_t len = sizeof(receipt_entry_domain) - 1, i, nl;
	int k;

	if (n > 32)
		return CG_ERR_LIMIT;
	memcpy(e, receipt_entry_domain, len);
	memcpy(e + len, leaf, RECEIPT_LEAF_LEN);
	len += RECEIPT_LEAF_LEN;
	for (k = 7; k >= 0; k--, u >>= 8)
		e[len + (size_t)k] = (unsigned char)(u & 0xff);
	len += 8;
	for (i = 0; i < n; i++) {
		if ((nl = strlen(names[i])) > RECEIPT_NAME_MAX)
			return CG_ERR_LIMIT;
		e[len++] = (unsigned char)nl;
		memcpy(e + len, names[i], nl);
		len += nl;
	}
	merkle_leaf_hash(e, len, out);
	return 0;
}
