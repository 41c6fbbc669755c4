/*
 * fuzz_receipt.c - libFuzzer harness for a user's receipt (agent/receipt.h):
 * receipt_parse, then receipt_verify with a fixed gateway key and identifier.
 *
 * Beyond "no crash": every rejection carries a message, a parsed receipt has
 * the receipt format, and nothing verifies under a key no gateway holds (the
 * seed corpus's receipts were proven under another key).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "agent/receipt.h"
#include "audit/receipt.h"

static struct keyfile_key fuzz_pub;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char seed[32], sk[64];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	crypto_hash_sha256(seed, (const unsigned char *)"crossgate fuzz_receipt key", 26);
	if (crypto_sign_seed_keypair(fuzz_pub.pub, sk, seed) != 0)
		abort();
	sodium_memzero(sk, sizeof(sk));
	fuzz_pub.type = KEYFILE_ED25519_PUBLIC;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Crossgate__Receipt *r = NULL;
	struct audit_receipt_result res;
	struct cg_err err;

	cg_err_clear(&err);
	if (receipt_parse((const char *)data, size, &r, &err) != 0) {
		if (err.msg[0] == '\0' || r != NULL)
			abort();
		return 0;
	}
	if (r == NULL || strcmp(r->format, RECEIPT_FORMAT) != 0)
		abort();
	cg_err_clear(&err);
	if (audit_receipt_verify(r, &fuzz_pub, "user1@example.com", NULL, 0, 0, NULL, &res, &err) == 0 || err.msg[0] == '\0')
		abort();
	crossgate__receipt__free_unpacked(r, NULL);
	return 0;
}
