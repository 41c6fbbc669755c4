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

#include "fuzz_key.h"

/* The seed corpus's proofs are signed by this key (seed = SHA-256 of the label). */
#define FUZZ_KEY_LABEL "crossgate fuzz_audit_proof key"
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
