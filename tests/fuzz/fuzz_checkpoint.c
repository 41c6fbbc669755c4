/*
 * fuzz_checkpoint.c - libFuzzer harness for the audit log's checkpoint
 * parsers: checkpoint_parse, note_verify (with a fixed key, so that the seed
 * corpus can hold notes that verify) and note_parse_verifier_key.
 *
 * Beyond "no crash": a parsed checkpoint must format back to the exact bytes
 * it came from, a verified note's text must be a proper prefix, and every
 * rejection must carry a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "audit/note.h"

/* The seed corpus's notes are signed by this key (seed = SHA-256 of the label). */
#define FUZZ_KEY_LABEL "crossgate fuzz_checkpoint key"
static const char fuzz_name[] = "fuzz.example/log";
static unsigned char fuzz_pub[32];

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
	crypto_hash_sha256(seed, (const unsigned char *)FUZZ_KEY_LABEL, strlen(FUZZ_KEY_LABEL));
	if (crypto_sign_seed_keypair(fuzz_pub, sk, seed) != 0)
		abort();
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(seed, sizeof(seed));
	return 0;
}

static void
fuzz_checkpoint(const char *text, size_t len)
{
	struct checkpoint cp;
	struct cg_err err;
	char body[NOTE_NAME_MAX + 80];
	size_t body_len;

	cg_err_clear(&err);
	if (checkpoint_parse(text, len, &cp, &err) != 0) {
		if (err.msg[0] == '\0')
			abort();
		return;
	}
	/* Strict parsing means one spelling per checkpoint. */
	if (checkpoint_format(&cp, body, sizeof(body), &body_len) != 0 || body_len > len ||
	    memcmp(body, text, body_len) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char name[NOTE_NAME_MAX + 1], again[NOTE_NAME_MAX + 80], *str;
	unsigned char pub[32], pub2[32];
	struct cg_err err;
	size_t text_len;

	fuzz_checkpoint(in, size);

	cg_err_clear(&err);
	if (note_verify(in, size, fuzz_name, fuzz_pub, &text_len, &err) == 0) {
		if (text_len == 0 || text_len >= size || in[text_len] != '\n')
			abort();
		fuzz_checkpoint(in, text_len);
	} else if (err.msg[0] == '\0' || text_len != 0)
		abort();

	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	cg_err_clear(&err);
	if (note_parse_verifier_key(str, name, pub, &err) == 0) {
		if (note_format_verifier_key(name, pub, again, sizeof(again)) != 0 ||
		    note_parse_verifier_key(again, name, pub2, &err) != 0 || memcmp(pub, pub2, 32) != 0)
			abort();
	} else if (err.msg[0] == '\0')
		abort();
	free(str);
	return 0;
}
