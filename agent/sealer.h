/*
 * sealer.h - what every partner batch starts with, data or revocation: the
 * keys checked against the policy, a fresh random batch key sealed to the
 * gateway's X25519 key, a random batch id, and the signed batch file opened
 * with its header.  pack.h and revoke.h then add their records.
 */
#ifndef CG_SEALER_H
#define CG_SEALER_H

#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"
#include "proto/batch.h"

struct sealer {
	unsigned char *key;                 /* secmem, SEAL_KEY_LEN: the batch key */
	unsigned char batch_id[16];
	struct batch_writer *w;             /* owned */
};

/*
 * Check that match, sign and gateway are a match key, the partner's Ed25519
 * secret key as the policy names it, and the gateway's X25519 public key;
 * `what` names the operation in the message ("packing", "a revocation").
 */
int sealer_check_keys(const struct policy_partner *pp, const struct keyfile_key *match,
    const struct keyfile_key *sign, const struct keyfile_key *gateway, const char *what, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5);

/* Fill s and open `output` with a header of `kind` (proto/batch.h BATCH_KIND_*). */
int sealer_open(struct sealer *s, const char *output, const struct policy *pol, const struct policy_partner *pp,
    const struct keyfile_key *sign, const struct keyfile_key *gateway, uint32_t kind, int64_t created_at,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5, 6);

/* Wipe the key and drop an unfinished batch file; a zeroed sealer is fine. */
void sealer_close(struct sealer *s);

#endif
