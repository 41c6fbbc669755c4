/* batch.c - see batch.h */
#include "proto/batch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "base/outfile.h"
#include "base/secmem.h"
#include "proto/arena.h"
#include "proto/frame.h"

#define BATCH_SIGN_PREFIX "crossgate batch v1\n"

struct batch_writer {
	struct outfile of;                   /* the batch file being written (base/outfile.h) */
	FILE *f;                             /* of.f until finished */
	unsigned char *sk;                   /* secmem, 64 bytes */
	crypto_generichash_state hash;
	uint64_t count;
	unsigned char *buf;
	size_t cap;
	int finished;
};

struct batch_reader {
	FILE *f;
	char *path;
	Crossgate__BatchHeader *hdr;
	long records_at;                     /* file offset of the first record frame */
	uint64_t offset;
	uint64_t count;
	uint64_t next_index;
	int verified;
	int done;                         /* pass 2 reached the end and matched */
	int caller_hashes;                /* batch_reader_hash_by_caller: pass 2's frames hashed by the caller */
	unsigned char *buf;
	size_t cap;
	struct pb_arena arena;            /* the current record */
	unsigned char *hdr_bytes;         /* the header frame as decoded at open */
	size_t hdr_len;
	unsigned char digest[BATCH_DIGEST_LEN];
	crypto_generichash_state rehash;  /* pass 2: the bytes actually handed out */
};

void
batch_signed_message(uint64_t count, const unsigned char digest[BATCH_DIGEST_LEN],
    unsigned char out[BATCH_SIGNED_LEN])
{
	int i;

	memcpy(out, BATCH_SIGN_PREFIX, 19);
	for (i = 0; i < 8; i++)
		out[19 + i] = (unsigned char)(count >> (56 - 8 * i));
	memcpy(out + 27, digest, BATCH_DIGEST_LEN);
}

/*
 * `max` is the limit the reader applies to this frame: a frame over it would
 * be signed and shipped, then refused by every reader.
 */
static int
batch_writer_frame(struct batch_writer *w, const ProtobufCMessage *msg, const char *what, size_t max,
    int hashed, struct cg_err *err)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	unsigned char hdr[FRAME_HDR_LEN];
	int r;

	if (n > max)
		return cg_err_set(err, CG_ERR_LIMIT, "%s: %s of %zu bytes is too large (limit %zu)", w->of.path,
		    what, n, max);
	if (n > w->cap) {
		unsigned char *nb = realloc(w->buf, n);
		if (nb == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		w->buf = nb;
		w->cap = n;
	}
	protobuf_c_message_pack(msg, w->buf);
	frame_header(n, hdr);
	if (hashed) {
		crypto_generichash_update(&w->hash, hdr, sizeof(hdr));
		crypto_generichash_update(&w->hash, w->buf, n);
	}
	/* cg_err_prefix cannot know the code when err is NULL: keep it here. */
	if ((r = frame_write(w->f, w->buf, n, err)) != 0) {
		cg_err_prefix(err, "%s", w->of.tmp);
		return r;
	}
	return 0;
}

int
batch_writer_open(const char *path, const Crossgate__BatchHeader *hdr, const unsigned char sign_sk[64],
    struct batch_writer **out, struct cg_err *err)
{
	struct batch_writer *w = NULL;
	int r;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL || (w->sk = secmem_alloc(64)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(w->sk, sign_sk, 64);
	crypto_generichash_init(&w->hash, NULL, 0, BATCH_DIGEST_LEN);
	if ((r = outfile_open(&w->of, path, 0600, err)) != 0)
		goto out;
	w->f = w->of.f;
	setvbuf(w->f, NULL, _IOFBF, 1 << 20);
	if ((r = batch_writer_frame(w, &hdr->base, "header", BATCH_HEADER_MAX, 1, err)) != 0)
		goto out;
	*out = w;
	w = NULL; /* transferred */
	r = 0;
out:
	batch_writer_free(w);
	return r;
}

int
batch_writer_add(struct batch_writer *w, const Crossgate__SealedRecord *rec, struct cg_err *err)
{
	int r;

	if (w->finished || w->f == NULL)
		return cg_err_set(err, CG_ERR_ARG, "batch already finished");
	if (rec->index != w->count)
		return cg_err_set(err, CG_ERR_ARG, "record index %llu out of sequence",
		    (unsigned long long)rec->index);
	if ((r = batch_writer_frame(w, &rec->base, "record", BATCH_RECORD_MAX, 1, err)) != 0)
		return r;
	w->count++;
	return 0;
}

/*
 * An upper bound on rec's encoded size without walking it twice: every
 * field at its widest (a 1-byte tag, 10-byte varints and length prefixes),
 * or SIZE_MAX when it holds unknown fields (then the caller measures it).
 */
static size_t
batch_record_bound(const Crossgate__SealedRecord *rec)
{
	size_t n = 11 + 11 + 11 + 2 + 11 + rec->ciphertext.len;   /* index, bits, at, withdrawal, ciphertext */

	/* the bound counts these fields: a schema that grows falls back to measuring, never overflows */
	if (rec->base.n_unknown_fields != 0 || crossgate__sealed_record__descriptor.n_fields != 6 ||
	    crossgate__token__descriptor.n_fields != 2)
		return SIZE_MAX;
	for (size_t i = 0; i < rec->n_tokens; i++) {
		if (rec->tokens[i]->base.n_unknown_fields != 0)
			return SIZE_MAX;
		n += 11 + 11 + 11 + rec->tokens[i]->value.len;       /* the submessage, its kind, its value */
	}
	return n;
}

int
batch_record_append(const Crossgate__SealedRecord *rec, unsigned char **buf, size_t *cap, size_t *len,
    struct cg_err *err)
{
	/* The frame header has a fixed size: pack first, then write the length packed (one walk). */
	size_t n = batch_record_bound(rec);

	if (n > BATCH_RECORD_MAX && (n = protobuf_c_message_get_packed_size(&rec->base)) > BATCH_RECORD_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "record of %zu bytes is too large (limit %d)", n, BATCH_RECORD_MAX);
	if (*cap - *len < FRAME_HDR_LEN + n) {
		size_t ncap = *cap ? *cap : 65536;
		unsigned char *nb;
		while (ncap - *len < FRAME_HDR_LEN + n)
			ncap *= 2;
		if ((nb = realloc(*buf, ncap)) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		*buf = nb;
		*cap = ncap;
	}
	n = protobuf_c_message_pack(&rec->base, *buf + *len + FRAME_HDR_LEN);
	frame_header(n, *buf + *len);
	*len += FRAME_HDR_LEN + n;
	return 0;
}

int
batch_writer_add_encoded(struct batch_writer *w, const unsigned char *frames, size_t len, uint64_t count,
    struct cg_err *err)
{
	if (w->finished || w->f == NULL)
		return cg_err_set(err, CG_ERR_ARG, "batch already finished");
	if (len == 0)
		return 0;
	/* The digest streams: hashing the frames in one call hashes the same bytes. */
	crypto_generichash_update(&w->hash, frames, len);
	if (fwrite(frames, 1, len, w->f) != len)
		return cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", w->of.tmp, strerror(errno));
	w->count += count;
	return 0;
}

int
batch_writer_finish(struct batch_writer *w, unsigned char digest_out[BATCH_DIGEST_LEN], struct cg_err *err)
{
	Crossgate__BatchTrailer tr = CROSSGATE__BATCH_TRAILER__INIT;
	unsigned char digest[BATCH_DIGEST_LEN], msg[BATCH_SIGNED_LEN], sig[crypto_sign_BYTES];
	int r;

	/* The hash state is spent and the stream closed after the first finish. */
	if (w->finished || w->f == NULL)
		return cg_err_set(err, CG_ERR_ARG, "batch already finished");
	crypto_generichash_final(&w->hash, digest, sizeof(digest));
	batch_signed_message(w->count, digest, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), w->sk);
	tr.record_count = w->count;
	tr.digest.data = digest;
	tr.digest.len = sizeof(digest);
	tr.signature.data = sig;
	tr.signature.len = sizeof(sig);
	if ((r = batch_writer_frame(w, &tr.base, "trailer", BATCH_TRAILER_MAX, 0, err)) != 0)
		return r;
	w->f = NULL;
	w->finished = 1;                     /* committed or removed: either way the writer is spent */
	if ((r = outfile_commit(&w->of, err)) != 0)
		return r;
	if (digest_out != NULL)
		memcpy(digest_out, digest, sizeof(digest));
	return 0;
}

void
batch_writer_free(struct batch_writer *w)
{
	if (w == NULL)
		return;
	if (!w->finished)
		outfile_abort(&w->of);
	secmem_free(w->sk, 64);
	free(w->buf);
	sodium_memzero(&w->hash, sizeof(w->hash));
	free(w);
}

int
batch_reader_open(const char *path, struct batch_reader **out, struct cg_err *err)
{
	FILE *f;

	*out = NULL;
	if ((f = fopen(path, "rb")) == NULL)
		return cg_err_set(err, CG_ERR_IO, "cannot open batch %s: %s", path, strerror(errno));
	return batch_reader_open_stream(f, path, out, err);
}

int
batch_reader_open_stream(FILE *f, const char *path, struct batch_reader **out, struct cg_err *err)
{
	struct batch_reader *r = NULL;
	size_t len;
	int rc;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL || (r->path = strdup(path)) == NULL ||
	    pb_arena_init(&r->arena, 4 * BATCH_RECORD_MAX) != 0) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	r->f = f;
	f = NULL; /* transferred */
	rc = frame_read(r->f, BATCH_HEADER_MAX, &r->buf, &r->cap, &len, &r->offset, err);
	if (rc == 0)
		rc = cg_err_set(err, CG_ERR_FORMAT, "empty file");
	if (rc < 0) {
		cg_err_prefix(err, "batch %s", path);
		goto out;
	}
	if ((r->hdr_bytes = malloc(len ? len : 1)) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(r->hdr_bytes, r->buf, len);
	r->hdr_len = len;
	r->hdr = crossgate__batch_header__unpack(NULL, len, r->buf);
	if (r->hdr == NULL) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "batch %s: offset 0: malformed batch header", path);
		goto out;
	}
	if (r->hdr->version != BATCH_VERSION) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "batch %s: unsupported batch version %u", path,
		    r->hdr->version);
		goto out;
	}
	if (r->hdr->batch_id.len != 16) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "batch %s: batch id must be 16 bytes", path);
		goto out;
	}
	r->records_at = (long)r->offset;
	*out = r;
	r = NULL; /* transferred */
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	batch_reader_free(r);
	return rc;
}

const Crossgate__BatchHeader *
batch_reader_header(const struct batch_reader *r)
{
	return r->hdr;
}

int
batch_reader_verify(struct batch_reader *r, const unsigned char pub[32], uint64_t *count,
    unsigned char digest_out[BATCH_DIGEST_LEN], struct cg_err *err)
{
	crypto_generichash_state h;
	unsigned char digest[BATCH_DIGEST_LEN], msg[BATCH_SIGNED_LEN], hdr[FRAME_HDR_LEN];
	unsigned char *pending = NULL;
	size_t pending_len = 0, pending_cap = 0, len;
	uint64_t frames = 0;
	Crossgate__BatchTrailer *tr = NULL;
	int rc;

	*count = 0;
	r->verified = 0;
	r->done = 0;
	crypto_generichash_init(&h, NULL, 0, BATCH_DIGEST_LEN);
	/* The header frame is hashed from the bytes we already decoded. */
	if (fseek(r->f, 0, SEEK_SET) != 0) {
		rc = cg_err_set(err, CG_ERR_IO, "batch %s: seek failed: %s", r->path, strerror(errno));
		goto out;
	}
	r->offset = 0;
	/*
	 * Every frame but the last is hashed; the last is the trailer.  Frames
	 * are held back by one so that we know which is last.
	 */
	for (;;) {
		rc = frame_read(r->f, frames == 0 ? BATCH_HEADER_MAX : BATCH_RECORD_MAX, &r->buf, &r->cap,
		    &len, &r->offset, err);
		if (rc < 0) {
			cg_err_prefix(err, "batch %s", r->path);
			goto out;
		}
		if (rc == 0)
			break;
		/* The header decoded at open must be the one that is signed. */
		if (frames == 0 && (len != r->hdr_len || memcmp(r->buf, r->hdr_bytes, len) != 0)) {
			rc = cg_err_set(err, CG_ERR_CRYPTO, "batch %s: file changed while being read", r->path);
			goto out;
		}
		if (frames > 0) {
			frame_header(pending_len, hdr);
			crypto_generichash_update(&h, hdr, sizeof(hdr));
			crypto_generichash_update(&h, pending, pending_len);
		}
		if (len > pending_cap) {
			unsigned char *nb = realloc(pending, len);
			if (nb == NULL) {
				rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			pending = nb;
			pending_cap = len;
		}
		if (len > 0)
			memcpy(pending, r->buf, len);
		pending_len = len;
		frames++;
	}
	if (frames < 2) {
		rc = cg_err_set(err, CG_ERR_INCOMPLETE, "batch %s: offset %llu: no trailer (file truncated?)",
		    r->path, (unsigned long long)r->offset);
		goto out;
	}
	crypto_generichash_final(&h, digest, sizeof(digest));
	if (pending_len > BATCH_TRAILER_MAX ||
	    (tr = crossgate__batch_trailer__unpack(NULL, pending_len, pending)) == NULL ||
	    tr->digest.len != BATCH_DIGEST_LEN || tr->signature.len != crypto_sign_BYTES) {
		rc = cg_err_set(err, CG_ERR_FORMAT,
		    "batch %s: offset %llu: malformed trailer (file truncated or damaged)", r->path,
		    (unsigned long long)(r->offset - FRAME_HDR_LEN - pending_len));
		goto out;
	}
	if (tr->record_count != frames - 2) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "batch %s: trailer counts %llu records, file holds %llu",
		    r->path, (unsigned long long)tr->record_count, (unsigned long long)(frames - 2));
		goto out;
	}
	if (memcmp(tr->digest.data, digest, sizeof(digest)) != 0) {
		rc = cg_err_set(err, CG_ERR_CRYPTO, "batch %s: content does not match its signed digest "
		    "(altered or damaged)", r->path);
		goto out;
	}
	batch_signed_message(tr->record_count, digest, msg);
	if (crypto_sign_verify_detached(tr->signature.data, msg, sizeof(msg), pub) != 0) {
		rc = cg_err_set(err, CG_ERR_CRYPTO, "batch %s: signature does not verify with the partner's "
		    "key", r->path);
		goto out;
	}
	if (fseek(r->f, r->records_at, SEEK_SET) != 0) {
		rc = cg_err_set(err, CG_ERR_IO, "batch %s: seek failed: %s", r->path, strerror(errno));
		goto out;
	}
	r->offset = (uint64_t)r->records_at;
	r->count = tr->record_count;
	r->next_index = 0;
	r->verified = 1;
	memcpy(r->digest, digest, sizeof(digest));
	crypto_generichash_init(&r->rehash, NULL, 0, BATCH_DIGEST_LEN);
	frame_header(r->hdr_len, hdr);
	crypto_generichash_update(&r->rehash, hdr, sizeof(hdr));
	crypto_generichash_update(&r->rehash, r->hdr_bytes, r->hdr_len);
	*count = r->count;
	memcpy(digest_out, digest, sizeof(digest));
	rc = 0;
out:
	if (tr != NULL)
		crossgate__batch_trailer__free_unpacked(tr, NULL);
	free(pending);
	return rc;
}

int
batch_reader_next_frame(struct batch_reader *r, struct batch_frame *fr, struct cg_err *err)
{
	unsigned char fh[FRAME_HDR_LEN];
	uint64_t at = r->offset;
	size_t len;
	int rc;

	memset(fr, 0, sizeof(*fr));
	if (r->done)
		return 0;
	if (!r->verified)
		return cg_err_set(err, CG_ERR_ARG, "batch %s: records read before verification", r->path);
	if (r->next_index == r->count)
		return r->caller_hashes ? 0 : batch_reader_finish(r, err);
	rc = frame_read(r->f, BATCH_RECORD_MAX, &r->buf, &r->cap, &len, &r->offset, err);
	if (rc == 0)
		rc = cg_err_set(err, CG_ERR_INCOMPLETE, "file changed while reading");
	if (rc < 0) {
		cg_err_prefix(err, "batch %s", r->path);
		return rc;
	}
	if (!r->caller_hashes) {
		frame_header(len, fh);
		crypto_generichash_update(&r->rehash, fh, sizeof(fh));
		crypto_generichash_update(&r->rehash, r->buf, len);
	}
	fr->data = r->buf;
	fr->len = len;
	fr->offset = at;
	fr->index = r->next_index++;
	return 1;
}

void
batch_reader_hash_by_caller(struct batch_reader *r)
{
	r->caller_hashes = 1;
}

void
batch_reader_rehash(struct batch_reader *r, const unsigned char *frame, size_t len)
{
	unsigned char fh[FRAME_HDR_LEN];

	frame_header(len, fh);
	crypto_generichash_update(&r->rehash, fh, sizeof(fh));
	crypto_generichash_update(&r->rehash, frame, len);
}

int
batch_reader_finish(struct batch_reader *r, struct cg_err *err)
{
	unsigned char digest[BATCH_DIGEST_LEN];

	if (r->done)
		return 0;
	if (!r->verified || r->next_index != r->count)
		return cg_err_set(err, CG_ERR_ARG, "batch %s: finished before its last record", r->path);
	/* The records handed out must be the ones that were verified, even if the file changed. */
	crypto_generichash_final(&r->rehash, digest, sizeof(digest));
	r->verified = 0;
	if (memcmp(digest, r->digest, sizeof(digest)) != 0)
		return cg_err_set(err, CG_ERR_CRYPTO, "batch %s: file changed while being read", r->path);
	r->done = 1;
	return 0;
}

const char *
batch_reader_name(const struct batch_reader *r)
{
	return r->path;
}

int
batch_record_decode(const char *name, const struct batch_frame *fr, struct pb_arena *arena,
    Crossgate__SealedRecord **rec, struct cg_err *err)
{
	Crossgate__SealedRecord *sr;

	*rec = NULL;
	sr = crossgate__sealed_record__unpack(&arena->allocator, fr->len, fr->data);
	if (sr == NULL)
		return cg_err_set(err, arena->failed ? CG_ERR_NOMEM : CG_ERR_FORMAT,
		    "batch %s: offset %llu: malformed record %llu", name,
		    (unsigned long long)fr->offset, (unsigned long long)fr->index);
	if (sr->index != fr->index)
		return cg_err_set(err, CG_ERR_FORMAT, "batch %s: offset %llu: record index %llu, expected %llu",
		    name, (unsigned long long)fr->offset, (unsigned long long)sr->index,
		    (unsigned long long)fr->index);
	*rec = sr;
	return 0;
}

int
batch_reader_next(struct batch_reader *r, Crossgate__SealedRecord **rec, struct cg_err *err)
{
	struct batch_frame fr;
	int rc;

	*rec = NULL;
	pb_arena_reset(&r->arena);
	if ((rc = batch_reader_next_frame(r, &fr, err)) != 1)
		return rc;
	if ((rc = batch_record_decode(r->path, &fr, &r->arena, rec, err)) != 0)
		return rc;
	return 1;
}

void
batch_reader_free(struct batch_reader *r)
{
	if (r == NULL)
		return;
	if (r->f != NULL)
		fclose(r->f);
	if (r->hdr != NULL)
		crossgate__batch_header__free_unpacked(r->hdr, NULL);
	free(r->hdr_bytes);
	pb_arena_free(&r->arena);
	free(r->buf);
	free(r->path);
	free(r);
}

int
batch_experiment_check(const char *experiment, struct cg_err *err)
{
	size_t n = experiment != NULL ? strlen(experiment) : 0;

	if (n == 0 || n > BATCH_EXPERIMENT_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "an experiment id is 1 to %d characters", BATCH_EXPERIMENT_MAX);
	if (strspn(experiment, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return cg_err_set(err, CG_ERR_FORMAT, "an experiment id is letters, digits, '.', '_' and '-' only");
	return 0;
}

int
batch_outcome_check(const Crossgate__Outcome *o, struct cg_err *err)
{
	int r;

	if ((r = batch_experiment_check(o->experiment, err)) != 0)
		return r;
	if (o->value_cents < 0 || o->value_cents > BATCH_OUTCOME_VALUE_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "an outcome's value is 0 to 10^12 cents");
	if (!o->converted && o->value_cents != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "an outcome without a conversion has value 0");
	return 0;
}
