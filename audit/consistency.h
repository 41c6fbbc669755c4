/*
 * consistency.h - consistency proof files (proto/audit.proto ConsistencyProof,
 * docs/PROTOCOL.md §9.6): two signed checkpoints of the log and the RFC 6962
 * §2.1.2 proof that the newer tree extends the older one, with the key
 * rotations needed to check both signatures from the log's first key.  An
 * auditor that kept an old checkpoint checks a new one offline, without the
 * events in between (audit verify --since needs the database).
 *
 * Buffers returned through `out` are malloc'd and owned by the caller.
 * Errors: CG_ERR_NOTFOUND (no checkpoint of that size: inside a span of
 * audit_append_many, or beyond the log), CG_ERR_ARG (sizes out of order),
 * CG_ERR_FORMAT/CG_ERR_LIMIT (a malformed file), CG_ERR_VERIFY (a signature,
 * the origin or the proof fails), each message naming the size or field.
 */
#ifndef CG_CONSISTENCY_H
#define CG_CONSISTENCY_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "audit/note.h"
#include "store/store.h"

#define CONSISTENCY_FORMAT "crossgate-consistency-proof/v1"
#define CONSISTENCY_FILE_MAX (256 * 1024)

/* The proof file from tree size `old_size` (> 0) to `new_size` (0: the latest checkpoint's). */
int consistency_prove(struct store *st, uint64_t old_size, uint64_t new_size, unsigned char **out, size_t *out_len,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4, 5);

/* Whether buf is a consistency proof file (its format field says so), not an inclusion proof. */
int consistency_is_file(const unsigned char *buf, size_t len) CG_NONNULL(1);

/*
 * Check a proof file with the gateway's (first) Ed25519 public key: the
 * rotations it carries, both checkpoints' signatures by the keys in force at
 * their sizes and their origin, then the proof between their roots.  *older
 * and *newer are the proven checkpoints on success.
 */
int consistency_verify(const unsigned char *buf, size_t len, const struct keyfile_key *pub, struct checkpoint *older,
    struct checkpoint *newer, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5);

#endif
