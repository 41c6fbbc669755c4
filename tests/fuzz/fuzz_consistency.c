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

#include "fuzz_key.h"

/* The seed corpus's proofs are signed by this key (seed = SHA-256 of the label). */
#define FUZZ_KEY_LABEL "crossgate fuzz_consistency key"
static struct keyfile_key fuzz_pub;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_key_public(FUZZ_KEY_LABEL, &fuzz_pub);
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
