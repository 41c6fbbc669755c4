/*
 * state.h - the agent's own memory, at the partner's site: which tokens it
 * sent for which local user id, so that a later revocation can name users by
 * their user id, and which consent it last sent for them, so that a later
 * row that lost a purpose becomes a withdrawal (pack.h).  An SQLite file
 * (0600) that never leaves the partner; it holds tokens, which are already
 * in the partner's batches, consent bits and times, which are too, and user
 * ids, which are the partner's own.
 */
#ifndef CG_AGENT_STATE_H
#define CG_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/token.h"

struct agent_state;   /* owned by the caller of agent_state_open */

int agent_state_open(const char *path, struct agent_state **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
void agent_state_close(struct agent_state *s);

/*
 * Read every user remembered for `partner` into memory (one sequential
 * read), inside a transaction: from then on lookups about that partner are
 * answered from memory and changes are kept there, to be written, in user
 * id order, by agent_state_commit() (agent_state_users_of() writes them
 * first).  For a caller that looks up most users, as a pack of a partner's
 * file does; memory grows with the users (250-350 bytes each, measured at
 * 1M and 10M).  CG_ERR_NOMEM, CG_ERR_DB.
 */
int agent_state_cache(struct agent_state *s, const char *partner, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/* Group many puts in one transaction. */
int agent_state_begin(struct agent_state *s, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
int agent_state_commit(struct agent_state *s, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/* Remember the tokens sent for a user (replacing what was remembered before). */
int agent_state_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    const struct token *tokens, size_t n, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5);

/* The tokens remembered for a user: *n = 0 if none. out holds up to 2. */
int agent_state_get(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    struct token out[2], size_t *n, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5, 6);

/*
 * What was last sent for a user, in one lookup: the tokens (*n = 0 if none,
 * as agent_state_get), and the consent (a data record's, or a
 * withdrawal's): *found = 0 if none is remembered (a state file written
 * before consents were remembered knows only the tokens).
 */
int agent_state_lookup(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    struct token out[2], size_t *n, uint32_t *bits, int64_t *at, int *found, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5, 6, 7, 8, 9);
/* Remember the consent sent for a user (replacing what was remembered before). */
int agent_state_consent_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    uint32_t bits, int64_t at, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/*
 * The user ids whose remembered tokens make `t` their key at the gateway
 * (gateway/join.h): for an email token, the users who sent it; for a phone
 * token, the users who sent it and no email.  fn is called once per user id
 * (not NUL-terminated; len bytes), in user id order; a nonzero return stops
 * the walk and is returned.
 */
typedef int (*agent_state_user_fn)(void *ctx, const char *user_id, size_t len, struct cg_err *err);
int agent_state_users_of(struct agent_state *s, const char *partner, const struct token *t, agent_state_user_fn fn,
    void *ctx, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
