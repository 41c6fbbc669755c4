/*
 * audit.h - the append-only audit log.
 *
 * Each event (crossgate.AuditEvent, protobuf) is a leaf of an RFC 6962 Merkle
 * tree kept in the store's audit_events table.  After every event the gateway
 * signs a checkpoint (C2SP tlog-checkpoint as a C2SP signed note, Ed25519) of
 * the new tree size and root, stored in audit_checkpoints.  Because there is a
 * signed checkpoint for every size, a verifier that recomputes the tree from
 * the stored event bytes can name the first event that was changed, removed,
 * reordered or inserted.
 *
 * The checkpoint origin and key name are "crossgate/gateway/<key id>", from the
 * gateway's Ed25519 signing key, so a verifier needs only the public key.
 *
 * Events never carry identifiers, tokens or feature values: only actions,
 * counts, digests, key ids, policy hashes and reasons.
 */
#ifndef CG_AUDIT_H
#define CG_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include "crypto/err.h"
#include "crypto/keyfile.h"
#include "gateway/store.h"
#include "proto/crossgate.pb-c.h"

#define AUDIT_ORIGIN_MAX 64

struct audit;   /* owned by the caller of audit_open; borrows the store and the key */

/* Load the log's current state. `sign` (ED25519 secret) is borrowed and must outlive the audit. */
int audit_open(struct store *st, const struct keyfile_key *sign, struct audit **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);
void audit_free(struct audit *a);

/*
 * Append an event and its checkpoint inside the caller's open transaction.
 * seq and time are set here.  After the transaction ends the caller must
 * call audit_txn_end() with whether it committed.
 */
int audit_append(struct audit *a, Crossgate__AuditEvent *ev, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
void audit_txn_end(struct audit *a, int committed);

/* Append one event in a transaction of its own (rejections, exports, keygen). */
int audit_log(struct audit *a, Crossgate__AuditEvent *ev, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

uint64_t audit_size(const struct audit *a);

/* The origin string for a gateway signing (public) key. */
void audit_origin(const unsigned char key_id[KEYFILE_ID_LEN], char out[AUDIT_ORIGIN_MAX]);

/*
 * Walk the stored log from event `from` on, in order: cb gets each event's
 * index, its bytes and the signed checkpoint note for the tree that ends
 * with it.  A non-zero return from cb stops the walk and is returned.  For
 * serving the log to auditors (who verify it themselves).
 */
typedef int (*audit_iter_cb)(uint64_t seq, const unsigned char *event, size_t len, const char *checkpoint,
    void *arg);
int audit_iter(struct store *st, uint64_t from, audit_iter_cb cb, void *arg, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

/*
 * Append an event with the checkpoint the gateway signed for it, as fetched
 * from a gateway: no key needed, nothing is re-signed, seq must be the next
 * index.  For an auditor's local copy, which audit_verify() then checks.
 */
int audit_import(struct store *st, uint64_t seq, const unsigned char *event, size_t len, const char *checkpoint,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 5);

struct audit_report {
	uint64_t events;
	uint64_t checkpoints;
	unsigned char root[32];
	char latest_checkpoint[512];
};

/*
 * Recompute the tree from the stored event bytes and check every checkpoint's
 * signature by `pub` (an ED25519 public key) and root.  On the first problem
 * returns CG_ERR_VERIFY with a message naming the event or checkpoint.
 */
int audit_verify(struct store *st, const struct keyfile_key *pub, struct audit_report *rep,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

#endif
