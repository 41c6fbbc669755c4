/*
 * fuzz_keyfile.c - key files and pasted key lines.
 *
 * The first byte picks the parser (key file or public key line) and the
 * expected type; the rest is the input.  A parsed public key must format back
 * to a line that parses to the same key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	struct keyfile_key *k = NULL, *again = NULL;
	struct cg_err err = { 0 };
	enum keyfile_type expect;
	char line[KEYFILE_LINE_MAX];
	const char *buf;
	int as_file;

	if (!inited) {
		if (sodium_init() < 0)
			abort();
		inited = 1;
	}
	if (size < 1)
		return 0;
	as_file = data[0] & 0x80;
	expect = (enum keyfile_type)(1 + (data[0] & 0x7f) % 6);
	buf = (const char *)data + 1;
	size--;

	if (as_file) {
		if (keyfile_parse("fuzz", buf, size, expect, &k, &err) == 0) {
			if (k == NULL || k->type != expect)
				abort();
		} else if (k != NULL || err.msg[0] == '\0') {
			abort();
		}
	} else if (keyfile_parse_public_line(buf, size, expect, &k, &err) == 0) {
		if (k == NULL || k->type != expect)
			abort();
		if (keyfile_public_line(k, line, sizeof(line)) != 0 ||
		    keyfile_parse_public_line(line, strlen(line), expect, &again, &err) != 0 ||
		    again->key_len != k->key_len || memcmp(again->key, k->key, k->key_len) != 0 ||
		    memcmp(again->id, k->id, KEYFILE_ID_LEN) != 0)
			abort();
	} else if (k != NULL || err.msg[0] == '\0') {
		abort();
	}
	keyfile_free(again);
	keyfile_free(k);
	return 0;
}
