/*
 * ingest.h - take one partner batch into the store: all or nothing.
 *
 * Order of checks, each failure a rejection event in the audit log and no
 * other change: the batch names a partner of the policy; it is signed by
 * that partner's key (the whole file, before any record is parsed); it was
 * packed under the policy the gateway runs; it is sealed to this gateway's
 * key.  A batch id already committed is a duplicate: reported, logged, and
 * nothing else changes.  Then every record is opened and checked against the
 * policy (match consent, known fields only, types and ranges), and the batch
 * commits in one transaction together with its audit event.
 *
 * A revocation batch (proto/batch.h BATCH_KIND_REVOCATION) erases the
 * partner's records of the users it names and leaves tombstones (erase.h);
 * after its commit the WAL is checkpointed and truncated (a failure there
 * leaves the batch committed: result->checkpoint_pending).  A withdrawal
 * record in a data batch (SealedRecord.withdrawal, proto/crossgate.proto)
 * does the same for the records its consent_at supersedes: all of the
 * user's records up to it when the user lost `match`, the older ones when
 * the user kept `match` but lost another purpose.  Either way the tombstone
 * keeps an older batch arriving later from bringing the user back or
 * widening the purposes.  Receipt leaves of a batch's withdrawal and
 * revocation records are committed to in its audit event (receipt_root).
 *
 * An outcome batch (BATCH_KIND_OUTCOMES, agent/outcomes.h) holds what users
 * did after a campaign: each record must consent to `match`, its Outcome
 * must open and obey batch_outcome_check(), and it goes, sealed as
 * received, into the outcomes table (store.h), never among the records that
 * joins and queries read; a revoked user's outcome is skipped like a data
 * record, and erasures take a user's outcomes with its records (erase.h).
 * Whether the partner takes part in the experiment is the experiment's
 * business when its lift is measured, not checked here.
 *
 * At rest a record keeps the partner's ciphertext, whose associated data binds
 * it to its batch, position, consent and tokens; the batch key is stored
 * sealed under a subkey of the gateway's storage key (envelope encryption), so
 * the database file alone opens nothing.
 */
#ifndef CG_INGEST_H
#define CG_INGEST_H

#include <stdint.h>
#include <stdio.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "store/store.h"
#include "policy/policy.h"

struct ingest_keys {
	const struct keyfile_key *enc;       /* gateway X25519 secret key */
	const struct keyfile_key *storage;   /* gateway storage key */
	unsigned threads;                    /* threads that decode, open and check records (0: one per CPU); one
	                                        thread stores them, and the result is the same for any count */
};

struct ingest_result {
	char partner[65];
	uint64_t records;                    /* data records (outcome batch: outcomes) stored (a duplicate: what its
	                                        first ingest stored) */
	uint64_t skipped_revoked;            /* data records of users the partner revoked earlier: not stored */
	uint64_t revoked_users;              /* revocation batch: users named */
	uint64_t erased;                     /* records erased by a revocation batch or a data batch's withdrawals */
	uint64_t withdrawn;                  /* withdrawal records without match: users erased */
	uint64_t narrowed;                   /* withdrawal records keeping match: users' older, wider records erased */
	int duplicate;                       /* 1: already committed, nothing changed */
	int checkpoint_pending;              /* 1: committed, but the WAL still holds erased pages (the checkpoint
	                                        after the erasure failed; the next one truncates it) */
	unsigned char batch_id[16];
	unsigned char digest[32];
};

/*
 * Returns 0 when the batch is committed or was a duplicate (see
 * result->duplicate); a negative code when it was rejected, with the reason
 * in err (file, offset or record index, and why).
 */
int ingest_batch_file(struct store *st, struct audit *a, const struct policy *pol, const struct ingest_keys *keys,
    const char *path, struct ingest_result *result, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5, 6);

/* The same from an open, seekable stream (taken over, closed even on failure); `name` stands for it in messages. */
int ingest_batch_stream(struct store *st, struct audit *a, const struct policy *pol, const struct ingest_keys *keys,
    FILE *f, const char *name, struct ingest_result *result, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5, 6, 7);

#define INGEST_WRAPPED_KEY_LEN (32 + 16)

/* The batch key at rest: ChaCha20-Poly1305 under seal_subkey(storage, batch id), nonce 0, AD = batch id. */
int ingest_wrap_batch_key(const struct keyfile_key *storage, const unsigned char batch_id[16],
    const unsigned char key[32], unsigned char wrapped[INGEST_WRAPPED_KEY_LEN]) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
int ingest_unwrap_batch_key(const struct keyfile_key *storage, const unsigned char batch_id[16],
    const unsigned char *wrapped, size_t len, unsigned char key[32], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5);

#endif
