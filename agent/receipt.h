/*
 * receipt.h - a receipt a user can check: that the gateway logged their
 * withdrawal or revocation, showing nothing about any other user.
 *
 * For each user of a withdrawal (pack.h) or a revocation (revoke.h) the
 * agent draws a random 32-byte nonce and puts
 *
 *   leaf = SHA-256("crossgate receipt v1\n" || nonce || id kind (1 byte) ||
 *                  the normalized identifier)
 *
 * in the user's sealed Withdrawal (proto/crossgate.proto), next to the
 * purposes withdrawn.  The gateway checks those against what the record
 * does (a withdrawal without match withdraws match; a narrowing withdraws
 * only purposes the user no longer has, never match) and makes the tree
 * entry itself, from what it applied:
 *
 *   entry = "crossgate receipt entry v1\n" || leaf || withdrawn_at (8 bytes,
 *           big-endian) || for each withdrawn purpose, in policy order:
 *           length (1 byte) || name
 *
 * and commits the RFC 6962 root over the batch's entries, in record order,
 * in the batch's audit event (AuditEvent.receipt_root), which it signs into
 * its log.  So the receipt's "what and when" is the gateway's word, not
 * only the partner's; the nonce keeps the leaf from being tested against
 * guessed identifiers by anyone without the receipt, the gateway included.
 *
 * The receipt (proto Receipt) holds the nonce, what was withdrawn, the leaf's
 * tree path (hashes only: nothing about any other user), the normalization
 * rules, and, once attached after the batch is ingested, the inclusion proof
 * of the batch's audit event in the gateway's signed log (audit.h).  On disk
 * and in a QR code it is one line: RECEIPT_PREFIX and the base64url of the
 * message.  receipt_verify needs only the receipt, the gateway's public key
 * and the user's identifier; witnesses and a copy of the current log are
 * optional, stronger checks.
 *
 * A receipt never goes to the gateway: the gateway holds every leaf, and a
 * leaf with its nonce can be tested against guessed identifiers.  The
 * gateway sends the partner the proof of the batch's event
 * (receipt_prove_batch), which names no user.
 */
#ifndef CG_RECEIPT_H
#define CG_RECEIPT_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "audit/audit.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"
#include "proto/crossgate.pb-c.h"
#include "store/store.h"

#define RECEIPT_FORMAT "crossgate-receipt/v1"
#define RECEIPT_PREFIX "CGR1:"
#define RECEIPT_NONCE_LEN 32
#define RECEIPT_LEAF_LEN 32
#define RECEIPT_FILE_MAX (512 * 1024)

/* The leaf of one receipt (the formula above). */
void receipt_leaf(const unsigned char nonce[RECEIPT_NONCE_LEN], uint32_t id_kind, const char *normalized, size_t len,
    unsigned char leaf[RECEIPT_LEAF_LEN]) CG_NONNULL(1, 3, 5);

/*
 * The tree's leaf hash (merkle_leaf_hash) of the entry above, for n purpose
 * names (at most 32, each at most 255 bytes: CG_ERR_LIMIT otherwise).
 * gateway/ingest.c builds the same entry from the policy it runs.
 */
int receipt_entry_hash(const unsigned char leaf[RECEIPT_LEAF_LEN], int64_t withdrawn_at, const char *const *names,
    size_t n, unsigned char out[MERKLE_HASH_LEN]) CG_MUST_CHECK CG_NONNULL(1, 5);

/*
 * The receipts of one batch, collected while it is packed.  Owned by the
 * caller of receipt_batch_new; free wipes the nonces.
 */
struct receipt_batch;

/* `dir` must exist; files are DIR/<batch id hex>-<name>.receipt, mode 0600. */
int receipt_batch_new(const char *dir, const struct policy *pol, const char *partner, uint32_t batch_kind,
    struct receipt_batch **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5);

/*
 * One user's receipt: draws the nonce and writes the leaf the Withdrawal
 * carries to leaf.  The file the partner hands over is named by the user id
 * (uid, not NUL-terminated; may be NULL) when it is a plain file name of at
 * most 64 characters, else by the CSV line: "line-N".
 */
int receipt_batch_add(struct receipt_batch *rb, const char *uid, size_t uid_len, uint64_t line, uint32_t id_kind,
    const char *normalized, size_t len, uint32_t withdrawn, int64_t withdrawn_at, unsigned char leaf[RECEIPT_LEAF_LEN],
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 6, 10);

/* After the batch file is finished: one file per receipt, with its path in the whole tree. */
int receipt_batch_write(struct receipt_batch *rb, const unsigned char batch_id[16], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
uint64_t receipt_batch_count(const struct receipt_batch *rb) CG_NONNULL(1);
void receipt_batch_free(struct receipt_batch *rb);

/*
 * Parse a receipt's text (RECEIPT_PREFIX and base64url, a final newline
 * allowed); *out is freed with crossgate__receipt__free_unpacked.
 * CG_ERR_FORMAT or CG_ERR_LIMIT with why.
 */
int receipt_parse(const char *text, size_t len, Crossgate__Receipt **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);
/* The same from a file; messages name it. */
int receipt_read(const char *path, Crossgate__Receipt **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
int receipt_write(const char *path, const Crossgate__Receipt *r, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * The inclusion proof (audit.h audit_prove) of the audit event that
 * committed batch_id with a receipt root, from a gateway's store or an
 * auditor's copy (crossgate audit fetch).  CG_ERR_NOTFOUND if there is none.
 */
int receipt_prove_batch(struct store *st, const unsigned char batch_id[16], unsigned char **proof, size_t *len,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * Put `proof` into the receipt file at path, after checking that it proves
 * the receipt's batch (its event names the batch, partner and a receipt
 * root).  The signature is checked by receipt_verify, with the key the user
 * trusts.
 */
int receipt_attach(const char *path, const unsigned char *proof, size_t len, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

struct receipt_result {
	uint64_t seq;                        /* the batch's audit event */
	uint64_t log_size;                   /* of the checkpoint that proves it */
	size_t witnesses;                    /* named witnesses that cosigned that checkpoint */
	int log_checked;                     /* a copy of the current log was checked too */
};

/*
 * Check the receipt for `identifier` (as the user writes it; normalized with
 * the receipt's rules): the attached proof verifies under pub (audit.h), its
 * event commits this batch with a receipt root, the leaf of (nonce,
 * identifier, what was withdrawn, when) has the receipt's path to that root;
 * with witnesses, at least `quorum` of them cosigned the checkpoint; with
 * `log` (a copy of the gateway's current log), that log verifies, extends
 * the receipt's checkpoint and still holds the event.  CG_ERR_VERIFY (or
 * CG_ERR_FORMAT for a malformed receipt) with the reason.
 */
int receipt_verify(const Crossgate__Receipt *r, const struct keyfile_key *pub, const char *identifier,
    const struct audit_witness *w, size_t nw, size_t quorum, struct store *log, struct receipt_result *res,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 8);

#endif
