/*
 * receipt.h - the log's side of a user's receipt (agent/receipt.h): the
 * gateway proves the event that committed a batch's receipt root, and a
 * user checks their receipt against it, offline.
 */
#ifndef CG_AUDIT_RECEIPT_H
#define CG_AUDIT_RECEIPT_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "audit/audit.h"
#include "crypto/keyfile.h"
#include "proto/crossgate.pb-c.h"
#include "store/store.h"

/*
 * The inclusion proof (audit.h audit_prove) of the audit event that
 * committed batch_id with a receipt root, from a gateway's store or an
 * auditor's copy (crossgate audit fetch); *proof malloc'd, caller frees.
 * CG_ERR_NOTFOUND if there is none.
 */
int audit_receipt_prove(struct store *st, const unsigned char batch_id[16], unsigned char **proof, size_t *len,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

struct audit_receipt_result {
	uint64_t seq;                        /* the batch's audit event */
	uint64_t log_size;                   /* of the checkpoint that proves it */
	size_t witnesses;                    /* named witnesses that cosigned that checkpoint */
	int log_checked;                     /* a copy of the current log was checked too */
};

/*
 * Check the receipt for `identifier` (as the user writes it; normalized with
 * the receipt's rules): the attached proof verifies under pub (audit.h), its
 * event commits this batch of this partner with a receipt root, and the
 * entry of (nonce, identifier, what was withdrawn, when; crypto/receipt.h)
 * has the receipt's path to that root; with witnesses, at least `quorum` of
 * them cosigned the checkpoint; with `log` (a copy of the gateway's current
 * log), that log verifies, extends the receipt's checkpoint and so still
 * holds the event.  CG_ERR_VERIFY (or CG_ERR_FORMAT for a malformed
 * receipt) with the reason.
 */
int audit_receipt_verify(const Crossgate__Receipt *r, const struct keyfile_key *pub, const char *identifier,
    const struct audit_witness *w, size_t nw, size_t quorum, struct store *log, struct audit_receipt_result *res,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 8);

#endif
