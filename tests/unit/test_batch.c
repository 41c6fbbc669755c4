/* test_batch.c - signed batch files: round trip, and every kind of damage caught. */
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "proto/arena.h"
#include "proto/batch.h"
#include "proto/frame.h"
#include "tests/unit/cgtest.h"

#define PARTNER "clinic-north"
#define NREC 5

static char dir[64];
static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
static unsigned char batch_id[16];

static void
path_of(char *out, size_t outsz, const char *name)
{
	snprintf(out, outsz, "%s/%s", dir, name);
}

static int
file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Deterministic content for record i, so the reader's view can be checked field by field. */
struct rec_data {
	unsigned char token[32];
	unsigned char ct[64];
	size_t ct_len;
};

static void
rec_data_make(struct rec_data *d, uint64_t i)
{
	size_t k;

	for (k = 0; k < sizeof(d->token); k++)
		d->token[k] = (unsigned char)(i * 31 + k);
	/* Different lengths per record, so that swapping two is not a no-op on the layout. */
	d->ct_len = 17 + (size_t)i * 3;
	for (k = 0; k < d->ct_len; k++)
		d->ct[k] = (unsigned char)(0xc0 ^ (i + k));
}

static void
rec_build(Crossgate__SealedRecord *rec, Crossgate__Token *tok, Crossgate__Token **tokp, struct rec_data *d,
    uint64_t i)
{
	rec_data_make(d, i);
	crossgate__token__init(tok);
	tok->kind = CROSSGATE__ID_KIND__ID_KIND_EMAIL;
	tok->value.data = d->token;
	tok->value.len = sizeof(d->token);
	*tokp = tok;
	crossgate__sealed_record__init(rec);
	rec->index = i;
	rec->n_tokens = 1;
	rec->tokens = tokp;
	rec->consent_bits = (uint32_t)(0x5 + i);
	rec->consent_at = 1700000000 + (int64_t)i;
	rec->ciphertext.data = d->ct;
	rec->ciphertext.len = d->ct_len;
}

static void
header_build(Crossgate__BatchHeader *hdr, uint32_t version, size_t id_len)
{
	crossgate__batch_header__init(hdr);
	hdr->version = version;
	hdr->partner_id = (char *)PARTNER;
	hdr->batch_id.data = batch_id;
	hdr->batch_id.len = id_len;
	hdr->aead = CROSSGATE__AEAD__AEAD_CHACHA20POLY1305_IETF;
	hdr->created_at = 1700001234;
}

/* Write a batch of n records with the writer; 0 or the failing code. */
static int
write_batch(const char *path, uint64_t n, uint32_t version, size_t id_len, unsigned char digest[BATCH_DIGEST_LEN])
{
	Crossgate__BatchHeader hdr;
	struct batch_writer *w = NULL;
	struct cg_err err = { 0 };
	uint64_t i;
	int r;

	header_build(&hdr, version, id_len);
	if ((r = batch_writer_open(path, &hdr, sk, &w, &err)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		Crossgate__SealedRecord rec;
		Crossgate__Token tok, *tokp;
		struct rec_data d;

		rec_build(&rec, &tok, &tokp, &d, i);
		if ((r = batch_writer_add(w, &rec, &err)) != 0)
			goto out;
	}
	r = batch_writer_finish(w, digest, &err);
out:
	if (r != 0)
		fprintf(stderr, "write_batch: %s\n", err.msg);
	batch_writer_free(w);
	return r;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (p = malloc((size_t)n + 1)) == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

static int
spew(const char *path, const unsigned char *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = (len == 0 || fwrite(p, 1, len, f) == len);
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Where each frame starts; returns the number of frames (the file must parse whole). */
static size_t
frame_offsets(const unsigned char *p, size_t len, size_t *off, size_t *flen, size_t max)
{
	const unsigned char *pl;
	size_t at = 0, n = 0, plen, used;

	while (at < len && n < max) {
		if (frame_parse(p + at, len - at, FRAME_MAX, &pl, &plen, &used, NULL) != 0)
			return 0;
		off[n] = at;
		flen[n] = used;
		n++;
		at += used;
	}
	return at == len ? n : 0;
}

/* Open (must succeed) and verify (must fail with code and msg, naming the file). */
static void
expect_verify_fail(const char *path, const unsigned char *key, int code, const char *msg, const char *what)
{
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	unsigned char digest[BATCH_DIGEST_LEN];
	uint64_t count = 99;
	Crossgate__SealedRecord *rec = (Crossgate__SealedRecord *)&err;
	int rc;

	rc = batch_reader_open(path, &r, &err);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "%s: open: %s\n", what, err.msg);
		return;
	}
	rc = batch_reader_verify(r, key, &count, digest, &err);
	if (rc != code)
		fprintf(stderr, "%s: verify gave %d (%s)\n", what, rc, err.msg);
	CHECK_EQ_INT(rc, code);
	CHECK_EQ_INT(err.code, code);
	CHECK_EQ_INT(count, 0);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, msg);
	/* A batch that failed verification yields no record. */
	CHECK_EQ_INT(batch_reader_next(r, &rec, &err), CG_ERR_ARG);
	CHECK(rec == NULL);
	batch_reader_free(r);
}

static void
expect_open_fail(const char *path, int code, const char *msg)
{
	struct batch_reader *r = (struct batch_reader *)&r;
	struct cg_err err = { 0 };

	CHECK_EQ_INT(batch_reader_open(path, &r, &err), code);
	CHECK(r == NULL);
	CHECK_EQ_INT(err.code, code);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, msg);
}

static void
test_round_trip(void)
{
	char path[128], tmp[160];
	unsigned char wdigest[BATCH_DIGEST_LEN], rdigest[BATCH_DIGEST_LEN], own[BATCH_DIGEST_LEN];
	unsigned char msg[BATCH_SIGNED_LEN], *file;
	size_t off[NREC + 2], flen[NREC + 2], len, nframes;
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	const Crossgate__BatchHeader *h;
	Crossgate__SealedRecord *rec;
	Crossgate__BatchTrailer *tr;
	uint64_t count = 0, i;

	path_of(path, sizeof(path), "round.cgb");
	CHECK_EQ_INT(write_batch(path, NREC, BATCH_VERSION, 16, wdigest), 0);
	CHECK(file_exists(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	CHECK(!file_exists(tmp));

	CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
	if (r == NULL)
		return;
	h = batch_reader_header(r);
	CHECK_EQ_INT(h->version, BATCH_VERSION);
	CHECK_STR(h->partner_id, PARTNER);
	CHECK_EQ_INT(h->batch_id.len, 16);
	CHECK(h->batch_id.len == 16 && memcmp(h->batch_id.data, batch_id, 16) == 0);
	CHECK_EQ_INT(h->aead, CROSSGATE__AEAD__AEAD_CHACHA20POLY1305_IETF);
	CHECK_EQ_INT(h->created_at, 1700001234);

	CHECK_EQ_INT(batch_reader_verify(r, pk, &count, rdigest, &err), 0);
	CHECK_EQ_INT(count, NREC);
	CHECK(memcmp(rdigest, wdigest, BATCH_DIGEST_LEN) == 0);

	for (i = 0; i < NREC; i++) {
		struct rec_data d;

		rec = NULL;
		CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 1);
		CHECK(rec != NULL);
		if (rec == NULL)
			break;
		rec_data_make(&d, i);
		CHECK_EQ_INT(rec->index, i);
		CHECK_EQ_INT(rec->consent_bits, 0x5 + i);
		CHECK_EQ_INT(rec->consent_at, 1700000000 + (int64_t)i);
		CHECK_EQ_INT(rec->n_tokens, 1);
		if (rec->n_tokens == 1) {
			CHECK_EQ_INT(rec->tokens[0]->kind, CROSSGATE__ID_KIND__ID_KIND_EMAIL);
			CHECK(rec->tokens[0]->value.len == 32 &&
			    memcmp(rec->tokens[0]->value.data, d.token, 32) == 0);
		}
		CHECK(rec->ciphertext.len == d.ct_len && memcmp(rec->ciphertext.data, d.ct, d.ct_len) == 0);
	}
	CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 0);
	CHECK(rec == NULL);
	CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 0);

	/* Verifying again rewinds: the records can be read a second time. */
	CHECK_EQ_INT(batch_reader_verify(r, pk, &count, rdigest, &err), 0);
	CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 1);
	CHECK(rec != NULL && rec->index == 0);
	batch_reader_free(r);

	/*
	 * The format as batch.h states it, checked from the bytes: the digest is
	 * BLAKE2b-256 of every frame before the trailer, and the trailer signs
	 * the prefix, the big-endian count and that digest.
	 */
	file = slurp(path, &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	nframes = frame_offsets(file, len, off, flen, NREC + 2);
	CHECK_EQ_INT(nframes, NREC + 2);
	if (nframes == NREC + 2) {
		crypto_generichash(own, sizeof(own), file, off[NREC + 1], NULL, 0);
		CHECK(memcmp(own, wdigest, sizeof(own)) == 0);
		tr = crossgate__batch_trailer__unpack(NULL, flen[NREC + 1] - FRAME_HDR_LEN,
		    file + off[NREC + 1] + FRAME_HDR_LEN);
		CHECK(tr != NULL);
		if (tr != NULL) {
			CHECK_EQ_INT(tr->record_count, NREC);
			CHECK(tr->digest.len == 32 && memcmp(tr->digest.data, own, 32) == 0);
			batch_signed_message(NREC, own, msg);
			CHECK(memcmp(msg, "crossgate batch v1\n", 19) == 0);
			CHECK(msg[19] == 0 && msg[25] == 0 && msg[26] == NREC);
			CHECK(memcmp(msg + 27, own, 32) == 0);
			CHECK(tr->signature.len == crypto_sign_BYTES &&
			    crypto_sign_verify_detached(tr->signature.data, msg, sizeof(msg), pk) == 0);
			crossgate__batch_trailer__free_unpacked(tr, NULL);
		}
	}
	free(file);
}

static void
test_signed_message(void)
{
	unsigned char digest[BATCH_DIGEST_LEN], msg[BATCH_SIGNED_LEN];
	static const unsigned char count_be[8] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };

	memset(digest, 0xab, sizeof(digest));
	batch_signed_message(0x0102030405060708ULL, digest, msg);
	CHECK_EQ_INT(BATCH_SIGNED_LEN, 59);
	CHECK(memcmp(msg, "crossgate batch v1\n", 19) == 0);
	CHECK(memcmp(msg + 19, count_be, 8) == 0);
	CHECK(memcmp(msg + 27, digest, 32) == 0);
}

static void
test_zero_records(void)
{
	char path[128];
	unsigned char wdigest[BATCH_DIGEST_LEN], rdigest[BATCH_DIGEST_LEN];
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	Crossgate__SealedRecord *rec;
	uint64_t count = 7;

	path_of(path, sizeof(path), "empty-batch.cgb");
	CHECK_EQ_INT(write_batch(path, 0, BATCH_VERSION, 16, wdigest), 0);
	CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
	if (r == NULL)
		return;
	CHECK_EQ_INT(batch_reader_verify(r, pk, &count, rdigest, &err), 0);
	CHECK_EQ_INT(count, 0);
	CHECK(memcmp(rdigest, wdigest, sizeof(wdigest)) == 0);
	CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 0);
	CHECK(rec == NULL);
	batch_reader_free(r);
}

static void
test_wrong_key(const char *good)
{
	unsigned char pk2[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];

	crypto_sign_keypair(pk2, sk2);
	expect_verify_fail(good, pk2, CG_ERR_CRYPTO, "signature does not verify with the partner's key",
	    "wrong key");
	sodium_memzero(sk2, sizeof(sk2));
}

static void
test_tamper(const char *good)
{
	char path[128];
	unsigned char *file, *copy;
	size_t off[NREC + 2], flen[NREC + 2], len, n, at, k;

	file = slurp(good, &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	n = frame_offsets(file, len, off, flen, NREC + 2);
	CHECK_EQ_INT(n, NREC + 2);
	if (n != NREC + 2 || (copy = malloc(len)) == NULL) {
		free(file);
		return;
	}
	path_of(path, sizeof(path), "tampered.cgb");

	/* One flipped bit anywhere in a record's payload (record 2 here), byte by byte. */
	for (at = off[3] + FRAME_HDR_LEN; at < off[3] + flen[3]; at++) {
		memcpy(copy, file, len);
		copy[at] ^= 0x01;
		CHECK_EQ_INT(spew(path, copy, len), 0);
		expect_verify_fail(path, pk, CG_ERR_CRYPTO, "does not match its signed digest", "flipped record byte");
	}

	/* The header is covered too: change one letter of the partner id. */
	memcpy(copy, file, len);
	for (k = off[0]; k + strlen(PARTNER) <= off[1]; k++)
		if (memcmp(copy + k, PARTNER, strlen(PARTNER)) == 0)
			break;
	CHECK(k + strlen(PARTNER) <= off[1]);
	copy[k] ^= 0x20;
	CHECK_EQ_INT(spew(path, copy, len), 0);
	expect_verify_fail(path, pk, CG_ERR_CRYPTO, "does not match its signed digest", "header byte");

	/* The last byte of the trailer lies in the signature. */
	memcpy(copy, file, len);
	copy[len - 1] ^= 0x80;
	CHECK_EQ_INT(spew(path, copy, len), 0);
	expect_verify_fail(path, pk, CG_ERR_CRYPTO, "signature does not verify", "signature byte");

	/* A record frame removed, nothing else adjusted. */
	memcpy(copy, file, off[2]);
	memcpy(copy + off[2], file + off[3], len - off[3]);
	CHECK_EQ_INT(spew(path, copy, len - flen[2]), 0);
	expect_verify_fail(path, pk, CG_ERR_FORMAT, "trailer counts 5 records, file holds 4", "record removed");

	/* The last record removed. */
	memcpy(copy, file, off[NREC]);
	memcpy(copy + off[NREC], file + off[NREC + 1], len - off[NREC + 1]);
	CHECK_EQ_INT(spew(path, copy, len - flen[NREC]), 0);
	expect_verify_fail(path, pk, CG_ERR_FORMAT, "trailer counts 5 records, file holds 4", "last removed");

	/* Records 1 and 3 swapped. */
	at = 0;
	memcpy(copy, file, off[2]);
	at = off[2];
	memcpy(copy + at, file + off[4], flen[4]);
	at += flen[4];
	memcpy(copy + at, file + off[3], flen[3]);
	at += flen[3];
	memcpy(copy + at, file + off[2], flen[2]);
	at += flen[2];
	memcpy(copy + at, file + off[5], len - off[5]);
	CHECK(memcmp(copy, file, len) != 0);
	CHECK_EQ_INT(spew(path, copy, len), 0);
	expect_verify_fail(path, pk, CG_ERR_CRYPTO, "does not match its signed digest", "records swapped");

	/* A record duplicated in place of another. */
	memcpy(copy, file, off[2]);
	memcpy(copy + off[2], file + off[1], flen[1]);
	memcpy(copy + off[2] + flen[1], file + off[3], len - off[3]);
	CHECK_EQ_INT(spew(path, copy, off[2] + flen[1] + len - off[3]), 0);
	expect_verify_fail(path, pk, CG_ERR_CRYPTO, "does not match its signed digest", "record replaced");

	free(copy);
	free(file);
}

static void
test_trailing(const char *good)
{
	char path[128];
	unsigned char *file, *copy;
	size_t off[NREC + 2], flen[NREC + 2], len, n, tl;
	static const unsigned char zero_frame[4] = { 0, 0, 0, 0 };

	file = slurp(good, &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	n = frame_offsets(file, len, off, flen, NREC + 2);
	CHECK_EQ_INT(n, NREC + 2);
	tl = flen[NREC + 1];
	if (n != NREC + 2 || (copy = malloc(len + tl + 16)) == NULL) {
		free(file);
		return;
	}
	path_of(path, sizeof(path), "trailing.cgb");
	memcpy(copy, file, len);

	/* Stray bytes shorter than a frame header. */
	memcpy(copy + len, "gar", 3);
	CHECK_EQ_INT(spew(path, copy, len + 3), 0);
	expect_verify_fail(path, pk, CG_ERR_INCOMPLETE, "frame header cut short", "3 stray bytes");

	/* Text: its first four bytes read as an absurd length. */
	memcpy(copy + len, "garbage", 7);
	CHECK_EQ_INT(spew(path, copy, len + 7), 0);
	expect_verify_fail(path, pk, CG_ERR_LIMIT, "exceeds the limit", "garbage text");

	/* An empty frame after the trailer. */
	memcpy(copy + len, zero_frame, 4);
	CHECK_EQ_INT(spew(path, copy, len + 4), 0);
	expect_verify_fail(path, pk, CG_ERR_FORMAT, "malformed trailer", "empty frame");

	/* The trailer twice. */
	memcpy(copy + len, file + off[NREC + 1], tl);
	CHECK_EQ_INT(spew(path, copy, len + tl), 0);
	expect_verify_fail(path, pk, CG_ERR_FORMAT, "trailer counts 5 records, file holds 6", "trailer twice");

	free(copy);
	free(file);
}

static void
test_truncated(const char *good)
{
	char path[128];
	unsigned char *file;
	size_t off[NREC + 2], flen[NREC + 2], len, n, cut;
	struct batch_reader *r;
	struct cg_err err;
	unsigned char digest[BATCH_DIGEST_LEN];
	uint64_t count;
	int rc, failures = 0;

	file = slurp(good, &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	n = frame_offsets(file, len, off, flen, NREC + 2);
	CHECK_EQ_INT(n, NREC + 2);
	path_of(path, sizeof(path), "truncated.cgb");

	/* Every possible length short of the whole file is refused, naming the file. */
	for (cut = 0; cut < len; cut++) {
		CHECK_EQ_INT(spew(path, file, cut), 0);
		r = NULL;
		memset(&err, 0, sizeof(err));
		rc = batch_reader_open(path, &r, &err);
		if (rc == 0) {
			rc = batch_reader_verify(r, pk, &count, digest, &err);
			batch_reader_free(r);
		}
		if ((rc != CG_ERR_INCOMPLETE && rc != CG_ERR_FORMAT) || strstr(err.msg, path) == NULL) {
			fprintf(stderr, "cut at %zu: %d (%s)\n", cut, rc, err.msg);
			failures++;
		}
	}
	CHECK_EQ_INT(failures, 0);

	/* The messages for a few telling lengths. */
	CHECK_EQ_INT(spew(path, file, 0), 0);
	expect_open_fail(path, CG_ERR_FORMAT, "empty file");
	CHECK_EQ_INT(spew(path, file, 2), 0);
	expect_open_fail(path, CG_ERR_INCOMPLETE, "offset 0: frame header cut short");
	CHECK_EQ_INT(spew(path, file, flen[0] - 1), 0);
	expect_open_fail(path, CG_ERR_INCOMPLETE, "offset 0: frame cut short");

	/* The header alone: no trailer. */
	CHECK_EQ_INT(spew(path, file, off[1]), 0);
	expect_verify_fail(path, pk, CG_ERR_INCOMPLETE, "no trailer", "header only");
	/* Cut inside a record: the message gives that record's offset. */
	{
		char want[64];
		snprintf(want, sizeof(want), "offset %zu: frame cut short", off[3]);
		CHECK_EQ_INT(spew(path, file, off[3] + 6), 0);
		expect_verify_fail(path, pk, CG_ERR_INCOMPLETE, want, "inside record");
	}
	/* Cut exactly before the trailer: the last record is not a trailer. */
	CHECK_EQ_INT(spew(path, file, off[NREC + 1]), 0);
	expect_verify_fail(path, pk, CG_ERR_FORMAT, "malformed trailer", "no trailer frame");
	/* One byte short of the end. */
	CHECK_EQ_INT(spew(path, file, len - 1), 0);
	expect_verify_fail(path, pk, CG_ERR_INCOMPLETE, "frame cut short", "last byte");
	free(file);
}

static void
test_bad_header(void)
{
	char path[128];
	unsigned char digest[BATCH_DIGEST_LEN];

	path_of(path, sizeof(path), "v2.cgb");
	CHECK_EQ_INT(write_batch(path, 2, 2, 16, digest), 0);
	expect_open_fail(path, CG_ERR_FORMAT, "unsupported batch version 2");

	path_of(path, sizeof(path), "v0.cgb");
	CHECK_EQ_INT(write_batch(path, 2, 0, 16, digest), 0);
	expect_open_fail(path, CG_ERR_FORMAT, "unsupported batch version 0");

	path_of(path, sizeof(path), "id15.cgb");
	CHECK_EQ_INT(write_batch(path, 2, BATCH_VERSION, 15, digest), 0);
	expect_open_fail(path, CG_ERR_FORMAT, "batch id must be 16 bytes");

	path_of(path, sizeof(path), "id0.cgb");
	CHECK_EQ_INT(write_batch(path, 0, BATCH_VERSION, 0, digest), 0);
	expect_open_fail(path, CG_ERR_FORMAT, "batch id must be 16 bytes");

	/* Bytes that are no protobuf at all. */
	{
		static const unsigned char junk[] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };
		path_of(path, sizeof(path), "junk.cgb");
		CHECK_EQ_INT(spew(path, junk, sizeof(junk)), 0);
		expect_open_fail(path, CG_ERR_FORMAT, "offset 0: malformed batch header");
	}
	/* A header frame larger than the pre-authentication limit. */
	{
		unsigned char hdr[FRAME_HDR_LEN];
		frame_header(BATCH_HEADER_MAX + 1, hdr);
		path_of(path, sizeof(path), "bighdr.cgb");
		CHECK_EQ_INT(spew(path, hdr, sizeof(hdr)), 0);
		expect_open_fail(path, CG_ERR_LIMIT, "exceeds the limit of 4096");
	}
	path_of(path, sizeof(path), "does-not-exist.cgb");
	expect_open_fail(path, CG_ERR_IO, "cannot open batch");
}

static void
test_read_before_verify(const char *good)
{
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	Crossgate__SealedRecord *rec = (Crossgate__SealedRecord *)&err;

	CHECK_EQ_INT(batch_reader_open(good, &r, &err), 0);
	if (r == NULL)
		return;
	CHECK_EQ_INT(batch_reader_next(r, &rec, &err), CG_ERR_ARG);
	CHECK(rec == NULL);
	CHECK_CONTAINS(err.msg, good);
	CHECK_CONTAINS(err.msg, "records read before verification");
	batch_reader_free(r);
	batch_reader_free(NULL);
}

/* How many files match a glob pattern. */
static size_t
glob_count(const char *pattern)
{
	glob_t g;
	size_t n;

	if (glob(pattern, GLOB_PERIOD, NULL, &g) != 0)
		return 0;
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

static void
test_writer_misuse(void)
{
	char path[128], tmp[160];
	Crossgate__BatchHeader hdr;
	Crossgate__SealedRecord rec;
	Crossgate__Token tok, *tokp;
	struct rec_data d;
	struct batch_writer *w = NULL;
	struct cg_err err = { 0 };
	unsigned char digest[BATCH_DIGEST_LEN];
	uint64_t count;
	struct batch_reader *r = NULL;

	/* Freed without finish: neither the batch nor its temporary file (".unfinished.cgb.<hex>.tmp") remains. */
	path_of(path, sizeof(path), "unfinished.cgb");
	path_of(tmp, sizeof(tmp), ".unfinished.cgb.*.tmp");
	header_build(&hdr, BATCH_VERSION, 16);
	CHECK_EQ_INT(batch_writer_open(path, &hdr, sk, &w, &err), 0);
	CHECK_EQ_INT(glob_count(tmp), 1);
	CHECK(!file_exists(path));
	rec_build(&rec, &tok, &tokp, &d, 0);
	CHECK_EQ_INT(batch_writer_add(w, &rec, &err), 0);
	batch_writer_free(w);
	w = NULL;
	CHECK_EQ_INT(glob_count(tmp), 0);
	CHECK(!file_exists(path));
	batch_writer_free(NULL);

	/* Out of sequence: refused, and the writer goes on with the right index. */
	path_of(path, sizeof(path), "sequence.cgb");
	CHECK_EQ_INT(batch_writer_open(path, &hdr, sk, &w, &err), 0);
	if (w == NULL)
		return;
	rec_build(&rec, &tok, &tokp, &d, 1);
	CHECK_EQ_INT(batch_writer_add(w, &rec, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "record index 1 out of sequence");
	rec_build(&rec, &tok, &tokp, &d, 0);
	CHECK_EQ_INT(batch_writer_add(w, &rec, &err), 0);
	CHECK_EQ_INT(batch_writer_add(w, &rec, &err), CG_ERR_ARG);      /* 0 again */
	CHECK_CONTAINS(err.msg, "record index 0 out of sequence");
	rec_build(&rec, &tok, &tokp, &d, 1);
	CHECK_EQ_INT(batch_writer_add(w, &rec, &err), 0);
	CHECK_EQ_INT(batch_writer_finish(w, NULL, &err), 0);              /* digest may be NULL */
	CHECK_EQ_INT(batch_writer_add(w, &rec, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "batch already finished");
	cg_err_clear(&err);
	CHECK_EQ_INT(batch_writer_finish(w, digest, &err), CG_ERR_ARG);   /* twice */
	CHECK_CONTAINS(err.msg, "batch already finished");
	batch_writer_free(w);                                              /* keeps a finished file */
	w = NULL;
	CHECK(file_exists(path));
	CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
	if (r != NULL) {
		CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
		CHECK_EQ_INT(count, 2);
		batch_reader_free(r);
	}

	/* A directory that does not exist. */
	path_of(path, sizeof(path), "no/such/dir.cgb");
	w = (struct batch_writer *)&w;
	CHECK_EQ_INT(batch_writer_open(path, &hdr, sk, &w, &err), CG_ERR_IO);
	CHECK(w == NULL);
	CHECK_CONTAINS(err.msg, "cannot create");
	CHECK_CONTAINS(err.msg, "cannot create a temporary file for ");
	CHECK_CONTAINS(err.msg, "no/such/dir.cgb: No such file or directory");
}

/*
 * The writer refuses what the reader would refuse: a record or header over
 * the reader's limits would otherwise be signed and shipped, then rejected.
 */
static void
test_writer_limits(void)
{
	char path[128], tmp[160];
	Crossgate__BatchHeader hdr;
	Crossgate__SealedRecord rec;
	Crossgate__Token tok, *tokp;
	struct rec_data d;
	struct batch_writer *w = NULL;
	struct cg_err err = { 0 };
	unsigned char *big = calloc(1, BATCH_RECORD_MAX + 1);

	CHECK(big != NULL);
	if (big == NULL)
		return;
	path_of(path, sizeof(path), "bigrec.cgb");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	header_build(&hdr, BATCH_VERSION, 16);
	CHECK_EQ_INT(batch_writer_open(path, &hdr, sk, &w, &err), 0);
	if (w != NULL) {
		rec_build(&rec, &tok, &tokp, &d, 0);
		rec.ciphertext.data = big;
		rec.ciphertext.len = BATCH_RECORD_MAX;     /* plus the other fields: over */
		CHECK_EQ_INT(batch_writer_add(w, &rec, &err), CG_ERR_LIMIT);
		CHECK_CONTAINS(err.msg, path);
		CHECK_CONTAINS(err.msg, "too large");
		batch_writer_free(w);
		w = NULL;
	}
	CHECK(!file_exists(tmp));

	/* Exactly at the limit: written, verified and read back. */
	CHECK_EQ_INT(batch_writer_open(path, &hdr, sk, &w, &err), 0);
	if (w != NULL) {
		crossgate__sealed_record__init(&rec);       /* index 0, only a ciphertext */
		rec.ciphertext.data = big;
		rec.ciphertext.len = BATCH_RECORD_MAX - 4;  /* tag + 3-byte length */
		big[0] = 0x5e;
		big[BATCH_RECORD_MAX - 5] = 0xe5;
		CHECK_EQ_INT(crossgate__sealed_record__get_packed_size(&rec), BATCH_RECORD_MAX);
		CHECK_EQ_INT(batch_writer_add(w, &rec, &err), 0);
		CHECK_EQ_INT(batch_writer_finish(w, NULL, &err), 0);
		batch_writer_free(w);
		w = NULL;
	}
	{
		struct batch_reader *r = NULL;
		unsigned char digest[BATCH_DIGEST_LEN];
		Crossgate__SealedRecord *got = NULL;
		uint64_t count = 0;

		CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
		if (r != NULL) {
			CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
			CHECK_EQ_INT(count, 1);
			CHECK_EQ_INT(batch_reader_next(r, &got, &err), 1);
			CHECK(got != NULL && got->ciphertext.len == BATCH_RECORD_MAX - 4 &&
			    got->ciphertext.data[0] == 0x5e && got->ciphertext.data[BATCH_RECORD_MAX - 5] == 0xe5);
			batch_reader_free(r);
		}
		unlink(path);
	}

	hdr.wrapped_key.data = big;
	hdr.wrapped_key.len = BATCH_HEADER_MAX;
	CHECK_EQ_INT(batch_writer_open(path, &hdr, sk, &w, &err), CG_ERR_LIMIT);
	CHECK(w == NULL);
	CHECK_CONTAINS(err.msg, "too large");
	CHECK(!file_exists(tmp));
	free(big);
}

/*
 * A batch built by hand and properly signed, whose records break the rules
 * the writer enforces: the reader must still refuse it.
 */
static int
write_raw(const char *path, const uint64_t *indexes, size_t n, uint64_t claimed)
{
	Crossgate__BatchHeader hdr;
	Crossgate__BatchTrailer tr = CROSSGATE__BATCH_TRAILER__INIT;
	unsigned char buf[512], hh[FRAME_HDR_LEN], digest[BATCH_DIGEST_LEN], msg[BATCH_SIGNED_LEN];
	unsigned char sig[crypto_sign_BYTES];
	crypto_generichash_state h;
	size_t i, len;
	FILE *f = fopen(path, "wb");
	int r = -1;

	if (f == NULL)
		return -1;
	crypto_generichash_init(&h, NULL, 0, BATCH_DIGEST_LEN);
	header_build(&hdr, BATCH_VERSION, 16);
	len = crossgate__batch_header__pack(&hdr, buf);
	frame_header(len, hh);
	crypto_generichash_update(&h, hh, sizeof(hh));
	crypto_generichash_update(&h, buf, len);
	if (frame_write(f, buf, len, NULL) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		Crossgate__SealedRecord rec;
		Crossgate__Token tok, *tokp;
		struct rec_data d;

		rec_build(&rec, &tok, &tokp, &d, indexes[i]);
		len = crossgate__sealed_record__pack(&rec, buf);
		frame_header(len, hh);
		crypto_generichash_update(&h, hh, sizeof(hh));
		crypto_generichash_update(&h, buf, len);
		if (frame_write(f, buf, len, NULL) != 0)
			goto out;
	}
	crypto_generichash_final(&h, digest, sizeof(digest));
	batch_signed_message(claimed, digest, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
	tr.record_count = claimed;
	tr.digest.data = digest;
	tr.digest.len = sizeof(digest);
	tr.signature.data = sig;
	tr.signature.len = sizeof(sig);
	len = crossgate__batch_trailer__pack(&tr, buf);
	if (frame_write(f, buf, len, NULL) != 0)
		goto out;
	r = 0;
out:
	if (fclose(f) != 0)
		r = -1;
	return r;
}

static void
test_signed_but_wrong(void)
{
	static const uint64_t swapped[] = { 0, 2, 1 }, good[] = { 0, 1, 2 };
	char path[128];
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	unsigned char digest[BATCH_DIGEST_LEN];
	Crossgate__SealedRecord *rec;
	uint64_t count;

	/* The raw writer agrees with batch_writer on a well-formed batch. */
	path_of(path, sizeof(path), "raw-good.cgb");
	CHECK_EQ_INT(write_raw(path, good, 3, 3), 0);
	CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
	if (r != NULL) {
		CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
		CHECK_EQ_INT(count, 3);
		batch_reader_free(r);
		r = NULL;
	}

	/* Signed, but the indexes are out of order: refused record by record. */
	path_of(path, sizeof(path), "raw-order.cgb");
	CHECK_EQ_INT(write_raw(path, swapped, 3, 3), 0);
	CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
	if (r != NULL) {
		CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
		CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 1);
		CHECK_EQ_INT(batch_reader_next(r, &rec, &err), CG_ERR_FORMAT);
		CHECK(rec == NULL);
		CHECK_CONTAINS(err.msg, path);
		CHECK_CONTAINS(err.msg, "record index 2, expected 1");
		batch_reader_free(r);
		r = NULL;
	}

	/* Signed, but the count does not match the records. */
	path_of(path, sizeof(path), "raw-count.cgb");
	CHECK_EQ_INT(write_raw(path, good, 3, 4), 0);
	expect_verify_fail(path, pk, CG_ERR_FORMAT, "trailer counts 4 records, file holds 3", "signed count");
}

/*
 * The file changes between the two passes (here: cut short after verify).
 * The failure keeps its code even when the caller passes no err.
 */
static void
test_changed_after_verify(void)
{
	char path[128];
	unsigned char digest[BATCH_DIGEST_LEN], *file;
	size_t off[NREC + 2], flen[NREC + 2], len, n;
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	Crossgate__SealedRecord *rec;
	uint64_t count;
	int pass;

	path_of(path, sizeof(path), "changing.cgb");
	CHECK_EQ_INT(write_batch(path, NREC, BATCH_VERSION, 16, digest), 0);
	file = slurp(path, &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	n = frame_offsets(file, len, off, flen, NREC + 2);
	CHECK_EQ_INT(n, NREC + 2);
	for (pass = 0; pass < 4 && n == NREC + 2; pass++) {
		/* Cut inside record 1, or right after record 0; with and without err. */
		off_t cut = (off_t)(pass < 2 ? off[2] + FRAME_HDR_LEN + 2 : off[2]);
		int want = CG_ERR_INCOMPLETE;

		CHECK_EQ_INT(spew(path, file, len), 0);
		CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
		if (r == NULL)
			break;
		CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
		CHECK_EQ_INT(truncate(path, cut), 0);
		CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 1);
		cg_err_clear(&err);
		CHECK_EQ_INT(batch_reader_next(r, &rec, pass % 2 ? NULL : &err), want);
		CHECK(rec == NULL);
		if (pass == 0) {
			CHECK_CONTAINS(err.msg, path);
			CHECK_CONTAINS(err.msg, "frame cut short");
		} else if (pass == 2) {
			CHECK_CONTAINS(err.msg, path);
			CHECK_CONTAINS(err.msg, "file changed while reading");
		}
		batch_reader_free(r);
		r = NULL;
	}
	unlink(path);
	free(file);
}

/*
 * A record rewritten in place after verification (same length, so every
 * frame still parses) must not be taken for the verified one: the final
 * call fails instead of returning 0, and so does a rewritten header.
 */
static void
test_rewritten_after_verify(void)
{
	char path[128];
	unsigned char digest[BATCH_DIGEST_LEN], *file;
	size_t off[NREC + 2], flen[NREC + 2], len, n;
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	Crossgate__SealedRecord *rec;
	uint64_t count;
	int rc = 0, got = 0;

	path_of(path, sizeof(path), "rewritten.cgb");
	CHECK_EQ_INT(write_batch(path, NREC, BATCH_VERSION, 16, digest), 0);
	file = slurp(path, &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	n = frame_offsets(file, len, off, flen, NREC + 2);
	CHECK_EQ_INT(n, NREC + 2);
	CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
	if (r != NULL && n == NREC + 2) {
		CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
		/* the last byte of record 1's ciphertext, which no decoder checks */
		file[off[2] + flen[2] - 1] ^= 0x01;
		CHECK_EQ_INT(spew(path, file, len), 0);
		while ((rc = batch_reader_next(r, &rec, &err)) == 1)
			got++;
		CHECK_EQ_INT(got, NREC);
		CHECK_EQ_INT(rc, CG_ERR_CRYPTO);
		CHECK_CONTAINS(err.msg, "file changed while being read");
		CHECK_CONTAINS(err.msg, path);
	}
	batch_reader_free(r);
	r = NULL;

	/* The header is decoded at open; a different one at verify time is refused. */
	file[off[2] + flen[2] - 1] ^= 0x01;
	CHECK_EQ_INT(spew(path, file, len), 0);
	CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
	if (r != NULL) {
		file[flen[0] - 1] ^= 0x01;
		CHECK_EQ_INT(spew(path, file, len), 0);
		CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), CG_ERR_CRYPTO);
		CHECK_CONTAINS(err.msg, "file changed while being read");
	}
	batch_reader_free(r);
	unlink(path);
	free(file);
}

/* An open stream that is not a file (batch_reader_open_stream) works the same. */
static void
test_open_stream(const char *good)
{
	struct batch_reader *r = NULL;
	struct cg_err err = { 0 };
	unsigned char digest[BATCH_DIGEST_LEN], *file;
	Crossgate__SealedRecord *rec;
	uint64_t count = 0;
	size_t len;
	FILE *f;

	file = slurp(good, &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	f = fmemopen(file, len, "rb");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK_EQ_INT(batch_reader_open_stream(f, "in-memory", &r, &err), 0);
		if (r != NULL) {
			CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
			CHECK_EQ_INT(count, NREC);
			CHECK_EQ_INT(batch_reader_next(r, &rec, &err), 1);
			batch_reader_free(r);
		}
	}
	/* Ownership of the stream passes even on failure (valgrind/ASan see a leak otherwise). */
	f = fmemopen(file, 2, "rb");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK_EQ_INT(batch_reader_open_stream(f, "in-memory", &r, &err), CG_ERR_INCOMPLETE);
		CHECK(r == NULL);
		CHECK_CONTAINS(err.msg, "batch in-memory: offset 0: frame header cut short");
	}
	free(file);
}

static void
cleanup_dir(void)
{
	static const char *names[] = { "round.cgb", "empty-batch.cgb", "tampered.cgb", "trailing.cgb",
		"truncated.cgb", "v2.cgb", "v0.cgb", "id15.cgb", "id0.cgb", "junk.cgb", "bighdr.cgb",
		"sequence.cgb", "raw-good.cgb", "raw-order.cgb", "raw-count.cgb" };
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_of(path, sizeof(path), names[i]);
		unlink(path);
	}
	if (rmdir(dir) != 0)
		fprintf(stderr, "%s left behind (unexpected files)\n", dir);
}

/*
 * Frames encoded away from the writer (the agent's worker threads) and
 * added in two runs give the file batch_writer_add gives, byte for byte
 * (the header is fixed and Ed25519 is deterministic), and its digest.
 */
static void
test_encoded(const char *good)
{
	Crossgate__BatchHeader hdr;
	struct batch_writer *w = NULL;
	struct cg_err err = { 0 };
	unsigned char *buf = NULL, *a = NULL, *b = NULL, want[BATCH_DIGEST_LEN], got[BATCH_DIGEST_LEN];
	unsigned char big[BATCH_RECORD_MAX + 1];
	char path[128];
	size_t cap = 0, len = 0, first_len = 0, alen, blen;
	uint64_t i;

	CHECK_EQ_INT(write_batch(good, NREC, BATCH_VERSION, 16, want), 0);
	path_of(path, sizeof(path), "encoded.cgb");
	header_build(&hdr, BATCH_VERSION, 16);
	CHECK_EQ_INT(batch_writer_open(path, &hdr, sk, &w, &err), 0);
	if (w == NULL)
		return;
	for (i = 0; i < NREC; i++) {
		Crossgate__SealedRecord rec;
		Crossgate__Token tok, *tokp;
		struct rec_data d;

		rec_build(&rec, &tok, &tokp, &d, i);
		CHECK_EQ_INT(batch_record_append(&rec, &buf, &cap, &len, &err), 0);
		if (i == 1)
			first_len = len;
	}
	CHECK_EQ_INT(batch_writer_add_encoded(w, buf, first_len, 2, &err), 0);
	CHECK_EQ_INT(batch_writer_add_encoded(w, buf + first_len, len - first_len, NREC - 2, &err), 0);
	CHECK_EQ_INT(batch_writer_add_encoded(w, buf, 0, 0, &err), 0);
	CHECK_EQ_INT(batch_writer_finish(w, got, &err), 0);
	CHECK(memcmp(want, got, sizeof(want)) == 0);
	a = slurp(good, &alen);
	b = slurp(path, &blen);
	CHECK(a != NULL && b != NULL && alen == blen && memcmp(a, b, alen) == 0);
	/* The writer is spent after finish. */
	CHECK_EQ_INT(batch_writer_add_encoded(w, buf, len, NREC, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "already finished");
	batch_writer_free(w);

	/* A record over the reader's limit is refused before it is encoded. */
	{
		Crossgate__SealedRecord rec;
		Crossgate__Token tok, *tokp;
		struct rec_data d;
		size_t before = len;

		rec_build(&rec, &tok, &tokp, &d, 0);
		memset(big, 0x11, sizeof(big));
		rec.ciphertext.data = big;
		rec.ciphertext.len = sizeof(big);
		CHECK_EQ_INT(batch_record_append(&rec, &buf, &cap, &len, &err), CG_ERR_LIMIT);
		CHECK_CONTAINS(err.msg, "too large (limit 65536)");
		CHECK_EQ_INT(len, before);
	}
	free(a);
	free(b);
	free(buf);
	unlink(path);
}

/*
 * Pass 2 hashed by the caller (as ingest's workers do): the frames come out
 * unhashed, the caller's hash of them is checked by batch_reader_finish, and
 * a file rewritten after verification is caught there, not before.
 */
static void
test_hash_by_caller(void)
{
	char path[128];
	unsigned char digest[BATCH_DIGEST_LEN], *file;
	size_t off[NREC + 2], flen[NREC + 2], len, n;
	struct batch_reader *r = NULL;
	struct batch_frame fr;
	Crossgate__SealedRecord *rec;
	struct pb_arena arena;
	struct cg_err err = { 0 };
	uint64_t count;
	int rc, got, pass;

	path_of(path, sizeof(path), "byhand.cgb");
	CHECK_EQ_INT(write_batch(path, NREC, BATCH_VERSION, 16, digest), 0);
	file = slurp(path, &len);
	CHECK(file != NULL);
	if (file == NULL || pb_arena_init(&arena, 65536) != 0)
		return;
	n = frame_offsets(file, len, off, flen, NREC + 2);
	CHECK_EQ_INT(n, NREC + 2);
	for (pass = 0; pass < 2 && n == NREC + 2; pass++) {
		CHECK_EQ_INT(batch_reader_open(path, &r, &err), 0);
		if (r == NULL)
			break;
		CHECK_EQ_INT(batch_reader_verify(r, pk, &count, digest, &err), 0);
		batch_reader_hash_by_caller(r);
		if (pass == 1) {
			/* the last byte of record 1's ciphertext, which no decoder checks */
			file[off[2] + flen[2] - 1] ^= 0x01;
			CHECK_EQ_INT(spew(path, file, len), 0);
		}
		got = 0;
		while ((rc = batch_reader_next_frame(r, &fr, &err)) == 1) {
			CHECK_EQ_INT(fr.index, got);
			CHECK_EQ_INT(fr.offset, off[got + 1]);
			if (got == 0)
				CHECK_EQ_INT(batch_reader_finish(r, &err), CG_ERR_ARG);
			CHECK_EQ_INT(batch_record_decode(batch_reader_name(r), &fr, &arena, &rec, &err), 0);
			CHECK(rec != NULL && rec->index == (uint64_t)got);
			batch_reader_rehash(r, fr.data, fr.len);
			pb_arena_reset(&arena);
			got++;
		}
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(got, NREC);
		if (pass == 0) {
			CHECK_EQ_INT(batch_reader_finish(r, &err), 0);
		} else {
			CHECK_EQ_INT(batch_reader_finish(r, &err), CG_ERR_CRYPTO);
			CHECK_CONTAINS(err.msg, "file changed while being read");
			CHECK_CONTAINS(err.msg, path);
			file[off[2] + flen[2] - 1] ^= 0x01;
			CHECK_EQ_INT(spew(path, file, len), 0);
		}
		batch_reader_free(r);
		r = NULL;
	}
	pb_arena_free(&arena);
	free(file);
	unlink(path);
}

int
main(void)
{
	char good[128];
	unsigned char digest[BATCH_DIGEST_LEN];

	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof(dir), "%s", "/tmp/cg-test-batch-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	crypto_sign_keypair(pk, sk);
	randombytes_buf(batch_id, sizeof(batch_id));

	test_signed_message();
	test_round_trip();
	test_zero_records();
	path_of(good, sizeof(good), "round.cgb");
	CHECK_EQ_INT(write_batch(good, NREC, BATCH_VERSION, 16, digest), 0);
	test_wrong_key(good);
	test_tamper(good);
	test_trailing(good);
	test_truncated(good);
	test_bad_header();
	test_read_before_verify(good);
	test_writer_misuse();
	test_writer_limits();
	test_signed_but_wrong();
	test_changed_after_verify();
	test_rewritten_after_verify();
	test_hash_by_caller();
	test_open_stream(good);
	test_encoded(good);

	sodium_memzero(sk, sizeof(sk));
	cleanup_dir();
	CGT_DONE();
}
