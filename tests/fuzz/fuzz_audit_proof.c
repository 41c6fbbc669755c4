/*
 * fuzz_audit_proof.c - libFuzzer harness for inclusion proof files:
 * audit_proof_parse, then audit_proof_verify with a fixed gateway key (so that
 * the seed corpus holds proofs that verify).
 *
 * Beyond "no crash": every rejection carries a message, a parsed proof obeys
 * the parser's rules, and a proof that verifies proves a leaf below the
 * checkpoint's size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "crypto/keyfile.h"
#include "audit/audit.h"

/* The seed corpus's proofs are signed by this key (seed = SHA-256 of the label). */
#define FUZZ_KEY_LABEL "crossgate fuzz_audit_proof key"
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
	struct audit_proof *p = NULL;
	struct checkpoint cp;
	struct cg_err err;

	cg_err_clear(&err);
	if (audit_proof_parse(data, size, &p, &err) != 0) {
		if (err.msg[0] == '\0' || p != NULL)
			abort();
		return 0;
	}
	if (p->n_hashes > 64 || p->checkpoint == NULL || p->checkpoint[0] == '\0' ||
	    (p->erased ? p->event_len != 0 : p->event_len == 0))
		abort();
	cg_err_clear(&err);
	if (audit_proof_verify(p, &fuzz_pub, &cp, &err) == 0) {
		if (p->index >= cp.size)
			abort();
	} else if (err.msg[0] == '\0' || cp.size != 0)
		abort();
	audit_proof_free(p);
	return 0;
}
