/*
 * erase.h - erasing a user's data for real: revocation and retention.
 *
 * Rows are deleted with SQLite's secure_delete on (store.h), and callers run
 * store_checkpoint() after the transaction so that the WAL, which still holds
 * the old pages, is checkpointed and truncated: afterwards neither the
 * database file nor the WAL holds the erased tokens or ciphertexts.
 *
 * A revocation leaves a tombstone so that an older batch arriving later
 * cannot bring the user back: the tombstone is a keyed hash of the token
 * (BLAKE2b keyed with a subkey of the storage key), never the token itself.
 * A record is refused at ingest when a tombstone of its partner matches one
 * of its tokens and the record's consent_at is not newer than the
 * revocation: a user who consents again later is welcome back.
 */
#ifndef CG_ERASE_H
#define CG_ERASE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "crypto/token.h"
#include "store/store.h"

/*
 * The tombstones of n tokens under `storage` (out[i] for tokens[i]); with a
 * key agent (gateway/monitor.h) the process that holds the key computes them.
 * What the monitor answers a TOMBSTONES request with.
 */
int erase_tombstones(const struct keyfile_key *storage, const struct token *tokens, size_t n, unsigned char (*out)[32],
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 4);

/* Create the tombstone table if needed (idempotent). */
int erase_schema(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/*
 * Inside the caller's transaction, for the records of one batch: stage the
 * tokens (users' keys, join.h: an email token, or the phone token of a user
 * without an email) for a tombstone dated `revoked_at` and for erasure of
 * the records with that key whose consent_at is at most `erase_upto`
 * (INT64_MAX: all of them, as a revocation does; a withdrawal erases only
 * what its consent_at supersedes, so that a newer consent already stored
 * stays).  A token staged twice keeps the later of each date.  The tokens
 * are staged in memory, wiped by close; nothing is written until
 * erase_apply(), which records the tombstones (computed together: with a
 * key agent, a message per KEYFILE_AGENT_TOMBSTONES_MAX tokens) and deletes
 * every staged token's records in one pass over the table (a revocation of
 * many users costs one scan, not one per user) and empties the stager; a
 * stager closed without erase_apply leaves nothing.  Memory: up to about
 * 150 bytes per staged token (the tokens, in an array that doubles, and
 * their hash table, which erase_apply also probes each stored row in),
 * which a revocation of 10 million users needs in RAM.  The statements are
 * prepared and the tombstone subkey derived once per stager; owned by the
 * caller of erase_stager_open, close wipes the subkey.
 */
struct erase_stager;
int erase_stager_open(struct store *st, const struct keyfile_key *storage, const char *partner,
    struct erase_stager **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
int erase_stager_add(struct erase_stager *s, const struct token *tokens, size_t n, int64_t revoked_at,
    int64_t erase_upto, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
void erase_stager_close(struct erase_stager *s);
/* 1 if a token staged (and not yet applied) covers the user `key` at consent time consent_at, as its tombstone will. */
int erase_stager_covers(const struct erase_stager *s, const struct token *key, int64_t consent_at) CG_NONNULL(1, 2);

/*
 * Inside the same transaction: delete the stager's partner's records whose
 * key is a staged token (a staged email: the records with that email; a staged
 * phone: the records with that phone and no email) with consent_at at most
 * its erase_upto, and the outcomes (store.h) of that key alike; *erased
 * counts both.
 */
int erase_apply(struct erase_stager *s, uint64_t *erased, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * For the records of one batch: which are kept out by a tombstone of
 * `partner`.  For n records of one key each (keys[i], a user's key, dated
 * consent_at[i]): revoked[i] = 1 if the key's tombstone is dated at or after
 * consent_at[i], else 0.  The tombstones are computed together, in calls of
 * KEYFILE_AGENT_TOMBSTONES_MAX with a key agent: one message to the process
 * that holds the key per call, not one per record.  The statement is
 * prepared and the tombstone subkey derived once per check; owned by the
 * caller of erase_check_open, close wipes the subkey.
 */
struct erase_check;
int erase_check_open(struct store *st, const struct keyfile_key *storage, const char *partner,
    struct erase_check **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
int erase_check_keys(struct erase_check *c, const struct token *keys, const int64_t *consent_at, size_t n,
    unsigned char *revoked, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5);
void erase_check_close(struct erase_check *c);

/* *any = 1 if `partner` has tombstones at all (so that ingest can skip the per-record check). */
int erase_any(struct store *st, const char *partner, int *any, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* Inside the caller's transaction: delete `partner`'s records and outcomes whose consent_at is before `before`. */
int erase_expired(struct store *st, const char *partner, int64_t before, uint64_t *erased, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 4);

/*
 * Retention: for every partner whose policy entry has retention_days, erase
 * its records whose consent_at is older than now - retention_days, one
 * transaction and one "purge" audit event (counts only) per partner, then
 * checkpoint and truncate the WAL.  *erased is the total.  With `quiet`
 * (the server's periodic run) partners with nothing to erase get no event.
 */
struct audit;
struct policy;
int erase_purge(struct store *st, struct audit *a, const struct policy *pol, int64_t now, int quiet,
    uint64_t *erased, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 6);

#endif
