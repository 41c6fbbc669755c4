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
 * message.  Checking it (audit/receipt.h) needs only the receipt, the
 * gateway's public key and the user's identifier; witnesses and a copy of
 * the current log are optional, stronger checks.  The hashes are in
 * crypto/receipt.h, shared with the gateway and the verifier.
 *
 * A receipt never goes to the gateway: the gateway holds every leaf, and a
 * leaf with its nonce can be tested against guessed identifiers.  The
 * gateway sends the partner the proof of the batch's event
 * (audit/receipt.h), which names no user.
 */
#ifndef CG_RECEIPT_H
#define CG_RECEIPT_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/receipt.h"
#include "policy/policy.h"
#include "proto/crossgate.pb-c.h"

#define RECEIPT_FORMAT "crossgate-receipt/v1"
#define RECEIPT_PREFIX "CGR1:"
#define RECEIPT_FILE_MAX (512 * 1024)

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

/*
 * After the batch file is finished: one file per receipt, with its path in
 * the whole tree, each written whole under a temporary name, all flushed by
 * one syncfs before this returns.
 */
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
/* Write a receipt file (0600, whole or not at all). */
int receipt_write(const char *path, const Crossgate__Receipt *r, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Put `proof` (an inclusion proof file, audit/audit.h, as audit_receipt_prove
 * writes it) into the receipt file at path, after checking that its event
 * commits the receipt's batch, of the receipt's partner, with a receipt
 * root.  Its signature is checked by audit_receipt_verify, with the key the
 * user trusts.
 */
int receipt_attach(const char *path, const unsigned char *proof, size_t len, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
