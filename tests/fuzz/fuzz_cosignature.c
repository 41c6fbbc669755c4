/*
 * fuzz_cosignature.c - libFuzzer harness for witness cosignatures (C2SP
 * tlog-cosignature): note_parse_cosig_key on the whole input, and
 * note_verify_cosignature / note_verify_cosig_line with a fixed witness key
 * (so that the seed corpus can hold cosigned notes that verify).
 *
 * Beyond "no crash": a parsed key formats back and parses the same, a
 * verified cosignature's body is a proper prefix of the note, and every
 * rejection carries a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "audit/note.h"

#define FUZZ_KEY_LABEL "crossgate fuzz_cosignature key"
static const char fuzz_name[] = "witness.example/fuzz";
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char name[NOTE_NAME_MAX + 1], again[NOTE_NAME_MAX + 80], *str;
	unsigned char pub[32], pub2[32];
	struct cg_err err;
	size_t text_len;
	uint64_t t;
	int r;

	cg_err_clear(&err);
	r = note_verify_cosignature(in, size, fuzz_name, fuzz_pub, &text_len, &t, &err);
	if (r == 0) {
		if (text_len == 0 || text_len >= size || in[text_len] != '\n' || t > (uint64_t)INT64_MAX)
			abort();
	} else if (err.msg[0] == '\0' || text_len != 0 || t != 0)
		abort();

	/* The input as one signature line over a fixed body. */
	cg_err_clear(&err);
	r = note_verify_cosig_line("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 48, in, size, fuzz_name, fuzz_pub, &t,
	    &err);
	if (r != 0 && err.msg[0] == '\0')
		abort();

	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	cg_err_clear(&err);
	if (note_parse_cosig_key(str, name, pub, &err) == 0) {
		if (note_format_cosig_key(name, pub, again, sizeof(again)) != 0 ||
		    note_parse_cosig_key(again, name, pub2, &err) != 0 || memcmp(pub, pub2, 32) != 0)
			abort();
	} else if (err.msg[0] == '\0')
		abort();
	free(str);
	return 0;
}
