/*
 * outcome.h - reading an experiment's stored outcomes (outcome batches,
 * PROTOCOL.md §5.11; ingest.h keeps them sealed in the outcomes table), for
 * the lift (lift.h): each one opened with its batch's key and checked
 * against the tokens, consent and position its AEAD binds, so an outcome
 * edited or moved in the database fails instead of counting.
 *
 * A user may have several outcomes (several batches, several rows): the
 * caller decides how they make one subject's figures (lift.h: one value per
 * subject, clamped).  Only the callback sees an outcome; nothing is logged.
 */
#ifndef CG_OUTCOME_H
#define CG_OUTCOME_H

#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "crypto/token.h"
#include "store/store.h"

struct outcome_seen {
	const char *partner;
	struct token tokens[2];              /* the email token first when both */
	size_t ntokens;
	uint32_t consent_bits;               /* as the partner last sent them */
	int64_t consent_at;
	int converted;
	int64_t value_cents;
	int64_t at;
};

/*
 * Call fn for every stored outcome of `experiment`, in storage order; a
 * non-zero return from fn stops the walk and is returned.  CG_ERR_VERIFY for
 * an outcome that does not open (database altered), CG_ERR_FORMAT for one
 * that breaks the format's rules, CG_ERR_DB.
 */
int outcome_each(struct store *st, const struct keyfile_key *storage, const char *experiment,
    int (*fn)(void *ctx, const struct outcome_seen *o, struct cg_err *err), void *ctx, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
