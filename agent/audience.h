/*
 * audience.h - the partner's side of an audience delivery: open what the
 * gateway sealed to this partner (crypto/delivery.h) with its signing key,
 * map each token back to the partner's own user ids through the agent's
 * --state file (agent/state.h: agent_state_users_of), and write a CSV of
 * those user ids, header "user_id", one per line in token order, 0600,
 * whole or not at all (base/outfile.h).
 *
 * A token the state file does not know (a user sent without --state, or
 * whose tokens changed since) maps to no user and is counted in `unknown`:
 * the agent cannot name it.  Nothing leaves the partner.
 * Errors: CG_ERR_CRYPTO (not sealed to this key), CG_ERR_FORMAT, CG_ERR_POLICY
 * (a delivery for another partner), CG_ERR_IO, CG_ERR_DB.
 */
#ifndef CG_AGENT_AUDIENCE_H
#define CG_AGENT_AUDIENCE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "agent/state.h"

struct agent_audience_stats {
	char name[65];                       /* the audience's name */
	char audience_id[33];
	uint64_t tokens, users, unknown;
};

int agent_audience_write(const unsigned char *sealed, size_t len, const struct keyfile_key *sign_key,
    const char *partner, struct agent_state *state, const char *out_csv, struct agent_audience_stats *st,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5, 6, 7);

#endif
