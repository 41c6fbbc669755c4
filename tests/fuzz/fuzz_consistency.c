/*
 * fuzz_consistency.c - libFuzzer harness for consistency proof files
 * (audit/consistency.h): consistency_is_file, then consistency_verify with a
 * fixed gateway key, so that the seed corpus holds proofs that verify (some
 * across a key rotation).
 *
 * Beyond "no crash": every rejection carries a message and leaves both
 * checkpoints zeroed, and a proof that verifies relates two trees with
 * 0 < old size <= new size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "crypto/keyfile.h"
#include "audit/consistency.h"

/* The seed corpus's proofs are signed by this key (seed = SHA-256 of the label). */
#define FUZZ_KEY_LABEL "crossgate fuzz_consistency key"
static struct keyfile_key fuzz_pub;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char label[] = "crossgate key id v1";
	unsigned char seed[32], sk[64], msg[sizeof(label) - 1 + 1 + 32];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	crypto_hash_sha256(seed, (const unsigned char *)FUZZ_KEY_LABEL, strlen(FUZZ_KEY_LABEL));
	if (crypto_sign_seed_keypair(fuzz_pub.pub, sk, seed) != 0)
		abort();
	sodium_memzero(sk, sizeof(sk));
	/* keyfile.h: id = BLAKE2b-64("crossgate key id v1" || type byte 4 || pub) */
	memcpy(msg, label, sizeof(label) - 1);
	msg[sizeof(label) - 1] = KEYFILE_ED25519_PUBLIC;
	memcpy(msg + sizeof(label), fuzz_pub.pub, 32);
	crypto_generichash(fuzz_pub.id, KEYFILE_ID_LEN, msg, sizeof(msg), NULL, 0);
	fuzz_pub.type = KEYFILE_ED25519_PUBLIC;
	fuzz_pub.key = fuzz_pub.pub;
	fuzz_pub.key_len = 32;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct checkpoint older, newer;
	struct cg_err err;
	static const unsigned char zero[sizeof(struct checkpoint)];

	(void)consistency_is_file(data, size);
	cg_err_clear(&err);
	if (consistency_verify(data, size, &fuzz_pub, &older, &newer, &err) == 0) {
		if (older.size == 0 || older.size > newer.size)
			abort();
	} else if (err.msg[0] == '\0' || memcmp(&older, zero, sizeof(older)) != 0 ||
	    memcmp(&newer, zero, sizeof(newer)) != 0)
		abort();
	return 0;
}
