/*
 * revoke.h - the partner asks the gateway to erase users.
 *
 * Input: a CSV whose header names some of the partner's identifier columns
 * and/or its local id column (as in the policy).  A row names one user by
 * its identifiers (normalized and tokenized as pack.h does) and/or by a user
 * id the agent packed before with a state file (state.h).  Output: a signed
 * revocation batch (BatchHeader.kind = BATCH_KIND_REVOCATION) whose records
 * carry only the user's tokens and the revocation time, sealed like data
 * records so that the tokens are bound to the batch.  Identifiers never
 * leave the partner.  With `receipts`, each user named by an identifier
 * gets a receipt (receipt.h) bound to it; the record's sealed payload is
 * then a Withdrawal of every purpose carrying the receipt leaf (else empty).
 */
#ifndef CG_REVOKE_H
#define CG_REVOKE_H

#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"

struct revoke_opts {
	const struct policy *pol;
	const char *partner_id;
	const char *input;                  /* CSV of users to revoke */
	const char *output;                 /* revocation batch path */
	const struct keyfile_key *match;
	const struct keyfile_key *sign;
	const struct keyfile_key *gateway;  /* X25519 public */
	const char *state;                  /* agent state file, needed for rows given by user id only */
	int64_t now;                        /* revocation time (unix seconds) */
	const char *receipts;               /* directory for the users' receipts (receipt.h), or NULL */
};

struct revoke_stats {
	uint64_t rows, bad_rows, users;
	uint64_t receipts;                  /* receipt files written */
	uint64_t no_receipt;                /* users named by user id only: no identifier to bind a receipt to */
	unsigned char batch_id[16];
	unsigned char digest[32];
};

int revoke_pack(const struct revoke_opts *o, struct revoke_stats *stats, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
