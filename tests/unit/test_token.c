/* test_token.c - the token PRF and its HMAC-SHA-256 against RFC 4231. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "crypto/token.h"
#include "tests/unit/cgtest.h"

/* Decode a hex string of the vectors file; returns its length, or -1. */
static long
hex_decode(const char *hex, unsigned char *out, size_t out_size)
{
	size_t bin_len = 0;

	if (hex == NULL || sodium_hex2bin(out, out_size, hex, strlen(hex), NULL, &bin_len, NULL) != 0)
		return -1;
	return (long)bin_len;
}

static void
test_rfc4231(void)
{
	char path[512];
	json_t *root, *cases, *c;
	json_error_t jerr;
	unsigned char key[256], data[256], want[32], got[32];
	long klen, dlen, wlen;
	size_t i, ncases = 0;
	const char *full, *trunc;

	snprintf(path, sizeof(path), "%s/rfc4231_hmac_sha256.json", cgt_vectors_dir());
	root = json_load_file(path, 0, &jerr);
	CHECK(root != NULL);
	if (root == NULL) {
		fprintf(stderr, "%s: %s\n", path, jerr.text);
		return;
	}
	cases = json_object_get(root, "cases");
	CHECK(json_is_array(cases));
	json_array_foreach(cases, i, c) {
		klen = hex_decode(json_string_value(json_object_get(c, "key")), key, sizeof(key));
		dlen = hex_decode(json_string_value(json_object_get(c, "data")), data, sizeof(data));
		CHECK(klen > 0);
		CHECK(dlen > 0);
		if (klen <= 0 || dlen <= 0)
			continue;
		full = json_string_value(json_object_get(c, "hmac_sha256"));
		trunc = json_string_value(json_object_get(c, "hmac_sha256_truncated_128"));
		CHECK_EQ_INT(token_hmac_sha256(key, (size_t)klen, data, (size_t)dlen, got), 0);
		if (full != NULL) {
			wlen = hex_decode(full, want, sizeof(want));
			CHECK_EQ_INT(wlen, 32);
			if (memcmp(got, want, 32) != 0)
				fprintf(stderr, "RFC 4231 case %zu differs\n", i + 1);
			CHECK(memcmp(got, want, 32) == 0);
		} else {
			/* Case 5: only the first 128 bits are published. */
			CHECK(trunc != NULL);
			wlen = hex_decode(trunc, want, sizeof(want));
			CHECK_EQ_INT(wlen, 16);
			CHECK(memcmp(got, want, 16) == 0);
		}
		ncases++;
	}
	CHECK_EQ_INT(ncases, 7);
	json_decref(root);
}

static void
test_token_matches_hmac(void)
{
	struct cg_err err = { 0 };
	struct token_ctx *ctx = NULL;
	unsigned char key[32], tok[TOKEN_LEN], want[32], msg[128];
	const char *email = "alice@example.org", *phone = "+15551234567";
	size_t plen;

	randombytes_buf(key, sizeof(key));
	CHECK_EQ_INT(token_ctx_new(key, sizeof(key), &ctx, &err), 0);
	CHECK(ctx != NULL);
	if (ctx == NULL)
		return;

	plen = strlen("crossgate token v1/email/");
	memcpy(msg, "crossgate token v1/email/", plen);
	memcpy(msg + plen, email, strlen(email));
	CHECK_EQ_INT(token_hmac_sha256(key, sizeof(key), msg, plen + strlen(email), want), 0);
	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_EMAIL, email, strlen(email), tok), 0);
	CHECK(memcmp(tok, want, 32) == 0);

	plen = strlen("crossgate token v1/phone/");
	memcpy(msg, "crossgate token v1/phone/", plen);
	memcpy(msg + plen, phone, strlen(phone));
	CHECK_EQ_INT(token_hmac_sha256(key, sizeof(key), msg, plen + strlen(phone), want), 0);
	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_PHONE, phone, strlen(phone), tok), 0);
	CHECK(memcmp(tok, want, 32) == 0);

	/* The precomputed state must not be consumed by a call. */
	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_PHONE, phone, strlen(phone), tok), 0);
	CHECK(memcmp(tok, want, 32) == 0);

	/* Empty identifier: the token is HMAC over the prefix alone. */
	CHECK_EQ_INT(token_hmac_sha256(key, sizeof(key), msg, plen, want), 0);
	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_PHONE, "", 0, tok), 0);
	CHECK(memcmp(tok, want, 32) == 0);
	token_ctx_free(ctx);
}

static void
test_kinds_and_keys(void)
{
	struct cg_err err = { 0 };
	struct token_ctx *ctx = NULL, *ctx2 = NULL;
	unsigned char key[32], key2[32], a[TOKEN_LEN], b[TOKEN_LEN], c[TOKEN_LEN];
	const char *same = "15551234567";

	randombytes_buf(key, sizeof(key));
	memcpy(key2, key, sizeof(key2));
	key2[31] ^= 1;
	CHECK_EQ_INT(token_ctx_new(key, sizeof(key), &ctx, &err), 0);
	CHECK_EQ_INT(token_ctx_new(key2, sizeof(key2), &ctx2, &err), 0);
	if (ctx == NULL || ctx2 == NULL)
		goto out;

	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_EMAIL, same, strlen(same), a), 0);
	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_PHONE, same, strlen(same), b), 0);
	CHECK(memcmp(a, b, TOKEN_LEN) != 0);

	/* Deterministic: the same person must produce the same token. */
	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_EMAIL, same, strlen(same), c), 0);
	CHECK(memcmp(a, c, TOKEN_LEN) == 0);

	/* Another match key gives unrelated tokens. */
	CHECK_EQ_INT(token_compute(ctx2, TOKEN_KIND_EMAIL, same, strlen(same), c), 0);
	CHECK(memcmp(a, c, TOKEN_LEN) != 0);

	/* The length is honoured, not a NUL. */
	CHECK_EQ_INT(token_compute(ctx, TOKEN_KIND_EMAIL, same, strlen(same) - 1, c), 0);
	CHECK(memcmp(a, c, TOKEN_LEN) != 0);

	memset(c, 0xaa, sizeof(c));
	CHECK_EQ_INT(token_compute(ctx, 0, same, strlen(same), c), CG_ERR_ARG);
	CHECK(sodium_is_zero(c, sizeof(c)));
	CHECK_EQ_INT(token_compute(ctx, 3, same, strlen(same), c), CG_ERR_ARG);
	CHECK_EQ_INT(token_compute(ctx, 0x101, same, strlen(same), c), CG_ERR_ARG);
out:
	token_ctx_free(ctx);
	token_ctx_free(ctx2);
}

/*
 * The tokens every partner and every stored record already hold were made
 * with libsodium's HMAC-SHA-256: the OpenSSL path must give the same bytes,
 * for every identifier length around the SHA-256 block boundaries (the
 * prefix is 25 bytes: 30 and 31 bytes of identifier straddle one block,
 * 94 and 95 two), through token_compute and through a hasher reused
 * across calls and kinds.
 */
static void
test_same_as_libsodium(void)
{
	struct cg_err err = { 0 };
	struct token_ctx *ctx = NULL;
	struct token_hasher *h = NULL, *h2 = NULL;
	crypto_auth_hmacsha256_state st;
	unsigned char key[32], id[300], msg[400], want[32], got[TOKEN_LEN], got2[TOKEN_LEN];
	size_t len, plen, mismatches = 0, n = 0;
	int k;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(id, sizeof(id));
	CHECK_EQ_INT(token_ctx_new(key, sizeof(key), &ctx, &err), 0);
	if (ctx == NULL)
		return;
	CHECK_EQ_INT(token_hasher_new(ctx, &h, &err), 0);
	CHECK_EQ_INT(token_hasher_new(ctx, &h2, &err), 0);
	/* A hasher outlives the ctx it was made from. */
	token_ctx_free(ctx);
	ctx = NULL;
	CHECK_EQ_INT(token_ctx_new(key, sizeof(key), &ctx, &err), 0);
	if (h == NULL || h2 == NULL || ctx == NULL)
		goto out;
	for (len = 0; len < sizeof(id); len++) {
		for (k = TOKEN_KIND_EMAIL; k <= TOKEN_KIND_PHONE; k++) {
			const char *prefix = k == TOKEN_KIND_EMAIL ? "crossgate token v1/email/" : "crossgate token v1/phone/";
			plen = strlen(prefix);
			memcpy(msg, prefix, plen);
			memcpy(msg + plen, id, len);
			crypto_auth_hmacsha256_init(&st, key, sizeof(key));
			crypto_auth_hmacsha256_update(&st, msg, plen + len);
			crypto_auth_hmacsha256_final(&st, want);
			CHECK_EQ_INT(token_hasher_compute(h, (uint32_t)k, (const char *)id, len, got), 0);
			mismatches += memcmp(got, want, 32) != 0;
			CHECK_EQ_INT(token_compute(ctx, (uint32_t)k, (const char *)id, len, got2), 0);
			mismatches += memcmp(got2, want, 32) != 0;
			n++;
		}
	}
	CHECK_EQ_INT(n, 2 * sizeof(id));
	CHECK_EQ_INT(mismatches, 0);
	/* The other hasher, untouched so far, agrees; a bad kind zeroes and fails. */
	CHECK_EQ_INT(token_hasher_compute(h2, TOKEN_KIND_PHONE, (const char *)id, sizeof(id) - 1, got2), 0);
	CHECK(memcmp(got, got2, TOKEN_LEN) == 0);
	memset(got, 0xaa, sizeof(got));
	CHECK_EQ_INT(token_hasher_compute(h, 3, (const char *)id, 4, got), CG_ERR_ARG);
	CHECK(sodium_is_zero(got, sizeof(got)));
	/* ... and leaves the hasher usable. */
	CHECK_EQ_INT(token_hasher_compute(h, TOKEN_KIND_PHONE, (const char *)id, sizeof(id) - 1, got), 0);
	CHECK(memcmp(got, got2, TOKEN_LEN) == 0);
out:
	sodium_memzero(&st, sizeof(st));
	token_hasher_free(h);
	token_hasher_free(h2);
	token_hasher_free(NULL);
	token_ctx_free(ctx);
}

static void
test_ctx_new_rejects(void)
{
	struct cg_err err = { 0 };
	struct token_ctx *ctx = (struct token_ctx *)&err;  /* must be cleared on entry */
	unsigned char key[8] = { 0 };

	CHECK_EQ_INT(token_ctx_new(key, sizeof(key), &ctx, &err), CG_ERR_ARG);
	CHECK(ctx == NULL);
	CHECK_CONTAINS(err.msg, "match key is shorter than 16 bytes");
	token_ctx_free(NULL);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_rfc4231();
	test_token_matches_hmac();
	test_kinds_and_keys();
	test_same_as_libsodium();
	test_ctx_new_rejects();
	CGT_DONE();
}
