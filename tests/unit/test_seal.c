/* test_seal.c - record sealing, its associated data, and batch key wrapping. */
#include <string.h>

#include <sodium.h>

#include "crypto/seal.h"
#include "tests/unit/cgtest.h"

struct record_fields {
	unsigned char batch_id[SEAL_BATCH_ID_LEN];
	char partner[SEAL_PARTNER_MAX + 2];
	uint64_t index;
	uint32_t consent_bits;
	int64_t consent_at;
	struct token tokens[SEAL_TOKENS_MAX + 1];
	size_t ntokens;
};

static void
fields_init(struct record_fields *f)
{
	memset(f, 0, sizeof(*f));
	randombytes_buf(f->batch_id, sizeof(f->batch_id));
	strcpy(f->partner, "clinic-north");
	f->index = 7;
	f->consent_bits = 0x5;
	f->consent_at = 1700000000;
	f->tokens[0].kind = TOKEN_KIND_EMAIL;
	randombytes_buf(f->tokens[0].value, TOKEN_LEN);
	f->tokens[1].kind = TOKEN_KIND_PHONE;
	randombytes_buf(f->tokens[1].value, TOKEN_LEN);
	f->ntokens = 2;
}

static int
fields_ad(const struct record_fields *f, unsigned char ad[SEAL_AD_MAX], size_t *ad_len)
{
	return seal_ad_build(ad, ad_len, f->batch_id, f->partner, f->index, f->consent_bits,
	    f->consent_at, f->tokens, f->ntokens);
}

static const unsigned char payload[] = "{\"age\":42,\"zip\":\"02139\"}";
#define PT_LEN (sizeof(payload) - 1)

/* Open ct sealed with `orig` while claiming the fields `f`; expect a tag failure. */
static void
expect_reject(const unsigned char key[SEAL_KEY_LEN], const struct record_fields *f,
    const unsigned char *ct, size_t ct_len, const char *what)
{
	unsigned char ad[SEAL_AD_MAX], pt[PT_LEN];
	size_t ad_len = 0;
	struct cg_err err = { 0 };
	int r;

	CHECK_EQ_INT(fields_ad(f, ad, &ad_len), 0);
	memset(pt, 0xaa, sizeof(pt));
	r = seal_open_record(key, f->index, ad, ad_len, ct, ct_len, pt, &err);
	if (r != CG_ERR_CRYPTO)
		fprintf(stderr, "changed %s was not caught\n", what);
	CHECK_EQ_INT(r, CG_ERR_CRYPTO);
	CHECK_EQ_INT(err.code, CG_ERR_CRYPTO);
	CHECK_CONTAINS(err.msg, "does not verify");
	CHECK(sodium_is_zero(pt, ct_len - SEAL_TAG_LEN));
}

static void
test_round_trip_and_tamper(void)
{
	unsigned char key[SEAL_KEY_LEN], ad[SEAL_AD_MAX], ct[PT_LEN + SEAL_TAG_LEN], bad[sizeof(ct)];
	unsigned char pt[PT_LEN];
	struct record_fields f, g;
	struct cg_err err = { 0 };
	size_t ad_len = 0;

	crypto_aead_chacha20poly1305_ietf_keygen(key);
	fields_init(&f);
	CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), 0);
	CHECK_EQ_INT(ad_len, 19 + 16 + 1 + strlen(f.partner) + 8 + 4 + 8 + 1 + 2 * 33);
	CHECK(memcmp(ad, "crossgate record v1", 19) == 0);
	CHECK_EQ_INT(seal_record(key, f.index, ad, ad_len, payload, PT_LEN, ct), 0);
	CHECK(memcmp(ct, payload, PT_LEN) != 0);
	CHECK_EQ_INT(seal_open_record(key, f.index, ad, ad_len, ct, sizeof(ct), pt, &err), 0);
	CHECK(memcmp(pt, payload, PT_LEN) == 0);

	/* Same key and payload at another index: another nonce, another ciphertext. */
	g = f;
	g.index = 8;
	{
		unsigned char ad2[SEAL_AD_MAX], ct2[sizeof(ct)];
		size_t ad2_len = 0;

		CHECK_EQ_INT(fields_ad(&g, ad2, &ad2_len), 0);
		CHECK_EQ_INT(seal_record(key, g.index, ad2, ad2_len, payload, PT_LEN, ct2), 0);
		CHECK(memcmp(ct, ct2, PT_LEN) != 0);
	}

	memcpy(bad, ct, sizeof(ct));
	bad[3] ^= 0x01;
	expect_reject(key, &f, bad, sizeof(bad), "ciphertext byte");
	memcpy(bad, ct, sizeof(ct));
	bad[sizeof(bad) - 1] ^= 0x80;
	expect_reject(key, &f, bad, sizeof(bad), "tag byte");

	{
		unsigned char other[SEAL_KEY_LEN];

		memcpy(other, key, sizeof(other));
		other[0] ^= 1;
		expect_reject(other, &f, ct, sizeof(ct), "key");
	}

	/* Each field of the associated data, changed on its own. */
	g = f; g.batch_id[15] ^= 1;
	expect_reject(key, &g, ct, sizeof(ct), "batch id");
	g = f; strcpy(g.partner, "clinic-south");
	expect_reject(key, &g, ct, sizeof(ct), "partner");
	g = f; strcpy(g.partner, "clinic-nort");
	expect_reject(key, &g, ct, sizeof(ct), "partner length");
	g = f; g.index = 6;   /* wrong index: both the nonce and the AD differ */
	expect_reject(key, &g, ct, sizeof(ct), "index");
	g = f; g.consent_bits ^= 0x2;
	expect_reject(key, &g, ct, sizeof(ct), "consent bits");
	g = f; g.consent_at += 1;
	expect_reject(key, &g, ct, sizeof(ct), "consent_at");
	g = f; g.tokens[1].value[0] ^= 1;
	expect_reject(key, &g, ct, sizeof(ct), "token byte");
	g = f; g.tokens[0].kind = TOKEN_KIND_PHONE;
	expect_reject(key, &g, ct, sizeof(ct), "token kind");
	g = f; g.ntokens = 1;
	expect_reject(key, &g, ct, sizeof(ct), "number of tokens");
	g = f; g.tokens[0] = f.tokens[1]; g.tokens[1] = f.tokens[0];
	expect_reject(key, &g, ct, sizeof(ct), "token order");

	/* Only the AD changed, not the nonce: the index inside the AD alone is bound. */
	{
		struct cg_err e2 = { 0 };
		size_t l2 = 0;

		g = f; g.index = 6;
		CHECK_EQ_INT(fields_ad(&g, ad, &l2), 0);
		CHECK_EQ_INT(seal_open_record(key, f.index, ad, l2, ct, sizeof(ct), pt, &e2),
		    CG_ERR_CRYPTO);
		CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), 0);
		CHECK_EQ_INT(seal_open_record(key, g.index, ad, ad_len, ct, sizeof(ct), pt, &e2),
		    CG_ERR_CRYPTO);
		CHECK_CONTAINS(e2.msg, "does not verify");
	}

	/* Truncated: a ciphertext shorter than its tag, and one byte cut off. */
	memset(pt, 0, sizeof(pt));
	CHECK_EQ_INT(seal_open_record(key, f.index, ad, ad_len, ct, SEAL_TAG_LEN - 1, pt, &err),
	    CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "shorter than its 16-byte tag");
	CHECK_EQ_INT(seal_open_record(key, f.index, ad, ad_len, ct, 0, pt, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "is 0 bytes");
	expect_reject(key, &f, ct, sizeof(ct) - 1, "length");
	sodium_memzero(key, sizeof(key));
}

static void
test_empty_payload(void)
{
	unsigned char key[SEAL_KEY_LEN], ad[SEAL_AD_MAX], ct[SEAL_TAG_LEN], pt[1];
	struct record_fields f;
	struct cg_err err = { 0 };
	size_t ad_len = 0;

	crypto_aead_chacha20poly1305_ietf_keygen(key);
	fields_init(&f);
	f.ntokens = 0;
	CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), 0);
	CHECK_EQ_INT(seal_record(key, 0, ad, ad_len, NULL, 0, ct), 0);
	CHECK_EQ_INT(seal_open_record(key, 0, ad, ad_len, ct, sizeof(ct), pt, &err), 0);
	ct[0] ^= 1;
	CHECK_EQ_INT(seal_open_record(key, 0, ad, ad_len, ct, sizeof(ct), pt, &err), CG_ERR_CRYPTO);
}

static void
test_ad_limits(void)
{
	unsigned char ad[SEAL_AD_MAX];
	struct record_fields f;
	size_t ad_len = 99;

	fields_init(&f);
	/* The largest AD fits SEAL_AD_MAX exactly. */
	memset(f.partner, 'p', SEAL_PARTNER_MAX);
	f.partner[SEAL_PARTNER_MAX] = '\0';
	f.ntokens = SEAL_TOKENS_MAX;
	CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), 0);
	CHECK_EQ_INT(ad_len, SEAL_AD_MAX);

	f.partner[SEAL_PARTNER_MAX] = 'p';
	f.partner[SEAL_PARTNER_MAX + 1] = '\0';
	ad_len = 99;
	CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), CG_ERR_ARG);
	CHECK_EQ_INT(ad_len, 0);

	fields_init(&f);
	f.ntokens = SEAL_TOKENS_MAX + 1;
	CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), CG_ERR_ARG);
	CHECK_EQ_INT(ad_len, 0);

	fields_init(&f);
	f.tokens[0].kind = 0x100;   /* would not fit the AD's u8 */
	CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), CG_ERR_ARG);

	/* Layout: big-endian index, consent bits and time after the partner id. */
	fields_init(&f);
	f.index = 0x0102030405060708ULL;
	f.consent_bits = 0x0a0b0c0d;
	f.consent_at = -2;
	f.ntokens = 0;
	CHECK_EQ_INT(fields_ad(&f, ad, &ad_len), 0);
	{
		size_t p = 19 + 16;
		static const unsigned char idx[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
		static const unsigned char cb[4] = { 0x0a, 0x0b, 0x0c, 0x0d };
		static const unsigned char at[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe };

		CHECK_EQ_INT(ad[p], strlen("clinic-north"));
		p += 1 + strlen("clinic-north");
		CHECK(memcmp(ad + p, idx, 8) == 0);
		CHECK(memcmp(ad + p + 8, cb, 4) == 0);
		CHECK(memcmp(ad + p + 12, at, 8) == 0);
		CHECK_EQ_INT(ad[p + 20], 0);
		CHECK_EQ_INT(ad_len, p + 21);
	}
}

static void
test_wrap(void)
{
	unsigned char gpub[32], gsec[32], opub[32], osec[32];
	unsigned char key[SEAL_KEY_LEN], got[SEAL_KEY_LEN], wrapped[SEAL_WRAPPED_LEN];
	struct cg_err err = { 0 };

	crypto_box_keypair(gpub, gsec);
	crypto_box_keypair(opub, osec);
	randombytes_buf(key, sizeof(key));
	CHECK_EQ_INT(seal_wrap_key(key, gpub, wrapped), 0);
	CHECK_EQ_INT(seal_unwrap_key(wrapped, sizeof(wrapped), gpub, gsec, got, &err), 0);
	CHECK(memcmp(key, got, sizeof(key)) == 0);

	memset(got, 0xaa, sizeof(got));
	CHECK_EQ_INT(seal_unwrap_key(wrapped, sizeof(wrapped), opub, osec, got, &err), CG_ERR_CRYPTO);
	CHECK_CONTAINS(err.msg, "not sealed to this gateway's key");
	CHECK(sodium_is_zero(got, sizeof(got)));

	CHECK_EQ_INT(seal_unwrap_key(wrapped, sizeof(wrapped) - 1, gpub, gsec, got, &err),
	    CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "wrapped batch key is 79 bytes, expected 80");
	CHECK_EQ_INT(seal_unwrap_key(wrapped, 0, gpub, gsec, got, &err), CG_ERR_FORMAT);

	wrapped[40] ^= 1;
	CHECK_EQ_INT(seal_unwrap_key(wrapped, sizeof(wrapped), gpub, gsec, got, &err), CG_ERR_CRYPTO);
	CHECK(sodium_is_zero(got, sizeof(got)));
	sodium_memzero(gsec, sizeof(gsec));
	sodium_memzero(osec, sizeof(osec));
}

static void
test_subkey(void)
{
	unsigned char master[SEAL_KEY_LEN], a[SEAL_KEY_LEN], b[SEAL_KEY_LEN], c[SEAL_KEY_LEN];
	unsigned char id1[16] = { 1 }, id2[16] = { 2 }, msg[20 + 16];

	randombytes_buf(master, sizeof(master));
	seal_subkey(master, id1, sizeof(id1), a);
	seal_subkey(master, id1, sizeof(id1), b);
	seal_subkey(master, id2, sizeof(id2), c);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	CHECK(memcmp(a, c, sizeof(a)) != 0);
	CHECK(memcmp(a, master, sizeof(a)) != 0);
	/* The documented construction, so that stored data outlives this code. */
	memcpy(msg, "crossgate subkey v1\n", 20);
	memcpy(msg + 20, id1, sizeof(id1));
	crypto_generichash(b, sizeof(b), msg, sizeof(msg), master, sizeof(master));
	CHECK(memcmp(a, b, sizeof(a)) == 0);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_round_trip_and_tamper();
	test_empty_payload();
	test_ad_limits();
	test_wrap();
	test_subkey();
	CGT_DONE();
}
