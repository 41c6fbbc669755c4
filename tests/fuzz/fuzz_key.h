/*
 * fuzz_key.h - for the harnesses whose seed corpus is signed by a fixed
 * gateway key: the public key derived from a label, as a keyfile_key with
 * its id (keyfile.h: id = BLAKE2b-64("crossgate key id v1" || type byte ||
 * pub)), so that seeds verify and the fuzzer explores past the signature.
 * The seed is SHA-256 of the label; the secret half is wiped at once.
 */
#ifndef CG_FUZZ_KEY_H
#define CG_FUZZ_KEY_H

#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "crypto/keyfile.h"

static inline void
fuzz_key_public(const char *label, struct keyfile_key *pub)
{
	static const char idlabel[] = "crossgate key id v1";
	unsigned char seed[32], sk[64], msg[sizeof(idlabel) - 1 + 1 + 32];

	if (sodium_init() < 0)
		abort();
	crypto_hash_sha256(seed, (const unsigned char *)label, strlen(label));
	if (crypto_sign_seed_keypair(pub->pub, sk, seed) != 0)
		abort();
	sodium_memzero(sk, sizeof(sk));
	memcpy(msg, idlabel, sizeof(idlabel) - 1);
	msg[sizeof(idlabel) - 1] = KEYFILE_ED25519_PUBLIC;
	memcpy(msg + sizeof(idlabel), pub->pub, 32);
	crypto_generichash(pub->id, KEYFILE_ID_LEN, msg, sizeof(msg), NULL, 0);
	pub->type = KEYFILE_ED25519_PUBLIC;
	pub->key = pub->pub;
	pub->key_len = 32;
}

#endif
