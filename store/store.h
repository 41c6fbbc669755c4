/*
 * store.h - the gateway's storage: SQLite, one file.
 *
 * The storage layer is an interface so that a deployment that outgrows one
 * machine can move to PostgreSQL; today SQLite is the only engine.  Tables:
 *
 *   batches(id, batch_id, partner, digest, records, policy_hash, received_at,
 *           wrapped_key)               batch key sealed under the storage key
 *   records(id, batch, partner, idx, email_token, phone_token, consent_bits,
 *           consent_at, payload)       payload = the partner's AEAD ciphertext
 *   outcomes(id, batch, partner, idx, email_token, phone_token, consent_bits,
 *           consent_at, payload, experiment)   an outcome batch's records,
 *                                      payload = AEAD(Outcome) as received
 *   audit_events(seq, event, leaf)     see audit.h
 *   audit_checkpoints(size, note)
 *
 * Tokens and consent bits are plain columns (the join needs them; tokens are
 * keyed PRF outputs the gateway cannot invert); feature values exist only
 * inside `payload`.  The connection is opened with SQLITE_DBCONFIG_DEFENSIVE,
 * secure_delete, WAL and synchronous=FULL: an acknowledged batch survives a
 * crash.  Every statement is prepared; no SQL is built from strings.
 */
#ifndef CG_STORE_H
#define CG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include "base/err.h"
#include "crypto/token.h"

struct store;   /* owned by the caller of store_open */

#define STORE_OPEN_CREATE 1

int store_open(const char *path, int flags, struct store **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);
void store_close(struct store *st);

/* The connection, for modules that keep their own tables in the same file (audit). */
sqlite3 *store_db(struct store *st) CG_NONNULL(1);
const char *store_path(const struct store *st) CG_NONNULL(1);

/* One transaction per logical operation; BEGIN IMMEDIATE takes the write lock up front. */
int store_begin(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
int store_commit(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
void store_rollback(struct store *st);

/* Checkpoint the WAL into the main file and truncate it. */
int store_checkpoint(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

int store_batch_exists(struct store *st, const unsigned char *batch_id, size_t len, int *exists,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 4);
/* The same, and the committed batch's digest (zeros if none), so that a reused batch id is told from a retry. */
int store_batch_digest(struct store *st, const unsigned char *batch_id, size_t len, int *exists,
    unsigned char digest[32], struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 4, 5);
int store_batch_insert(struct store *st, const unsigned char *batch_id, size_t id_len, const char *partner,
    const unsigned char digest[32], uint64_t records, const unsigned char policy_hash[32], int64_t received_at,
    const unsigned char *wrapped_key, size_t wrapped_len, int64_t *rowid, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 4, 5, 7, 9, 11);

struct store_record {
	int64_t batch;                        /* batches.id */
	const char *partner;
	uint64_t idx;
	const unsigned char *email_token;     /* TOKEN_LEN bytes or NULL */
	const unsigned char *phone_token;
	uint32_t consent_bits;
	int64_t consent_at;
	const unsigned char *payload;
	size_t payload_len;
};
int store_record_insert(struct store *st, const struct store_record *rec, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/*
 * A record of an outcome batch, into the `outcomes` table (the same columns
 * and the experiment id): never a records row, so no join or query sees it.
 */
int store_outcome_insert(struct store *st, const struct store_record *rec, const char *experiment,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* What the join needs of a record: no payload. */
struct store_ref {
	int64_t id;                           /* records.id */
	int64_t consent_at;
	uint32_t consent_bits;
	uint8_t has_email, has_phone;
	unsigned char email[TOKEN_LEN];
	unsigned char phone[TOKEN_LEN];
};

/* The record's tokens as its seal binds them (crypto/seal.h): the email's, then the phone's; how many. */
size_t store_ref_tokens(const struct store_ref *ref, struct token out[2]) CG_NONNULL(1, 2);

/* All of one partner's records (malloc'd array, caller frees), in id order. */
int store_refs_load(struct store *st, const char *partner, struct store_ref **refs, size_t *n,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * A record's sealed payload, as the join's scan read it, so that it is
 * opened without another read: the ciphertext points into the arena.
 */
struct store_payload {
	int64_t batch;                        /* batches.id */
	uint64_t idx;
	unsigned char *ct;                    /* the arena's: a reader may open it in place */
	size_t len;
};
struct store_payloads {
	struct store_payload *rec[2];         /* parallel to the refs of each partner */
	unsigned char **blocks;               /* the arena */
	size_t *block_len, nblocks, cblocks;
};
void store_payloads_free(struct store_payloads *pay) CG_NONNULL(1);

/*
 * The refs of two partners in one pass over the table in rowid order (the
 * table has no index on partner: a scan per partner would read every row
 * twice), and, if pay is not NULL, their payloads (free with
 * store_payloads_free; on error nothing is left to free).  fn, if not NULL,
 * sees each row as it is added (partner k, its index i; p NULL without
 * payloads), so that work on the rows can start while the scan reads on
 * (the arrays may move between calls: copy what a thread keeps, except the
 * payload bytes, which stay put); it is called once more with k = -1 when
 * the scan ends, well or not, before anything is freed.  A non-zero return
 * stops the scan and is returned.
 */
typedef int (*store_row_fn)(void *ctx, int k, size_t i, const struct store_ref *ref, const struct store_payload *p);
int store_refs_load_pair(struct store *st, const char *const partner[2], struct store_ref *refs[2], size_t n[2],
    struct store_payloads *pay, store_row_fn fn, void *ctx, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/* Every batch (malloc'd array in id order, caller frees); damaged: a batch_id, partner or wrapped key of a bad size. */
struct store_batch {
	int64_t id;
	unsigned char batch_id[16];
	unsigned char wrapped_key[64];
	size_t wrapped_len;
	int damaged;
};
int store_batches_load(struct store *st, struct store_batch **out, size_t *n, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* A record's stored payload and the fields it is sealed with. *payload is malloc'd; caller frees. */
struct store_sealed {
	int64_t batch;
	uint64_t idx;
	unsigned char batch_id[16];
	char partner[65];
	unsigned char wrapped_key[64];
	size_t wrapped_len;
	unsigned char *payload;
	size_t payload_len;
};
int store_sealed_get(struct store *st, int64_t id, struct store_sealed *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

/* Counts for summaries. */
int store_count_records(struct store *st, const char *partner, uint64_t *n, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

#endif
