/*
 * outcomes.h - the partner side of an experiment's measurement (issue 14):
 * after a campaign, what each user did, packed as a sealed and signed
 * outcome batch (BatchHeader.kind = BATCH_KIND_OUTCOMES, PROTOCOL.md §5.11).
 *
 *   crossgate agent outcomes --policy P --partner K --state STATE \
 *       --experiment EXP --input outcomes.csv --out outcomes.batch ...
 *
 * Input: a CSV with a header naming exactly these columns, in any order:
 *   <the partner's user id column, as in the policy>, converted, value_cents, at
 * converted is 0 or 1; value_cents a whole number >= 0 (0 when not
 * converted); at a time written as the policy's consent times are (ISO 8601,
 * policy_parse_time).  One row is one user's outcome.
 *
 * Users are named by user id only, through the agent's state file
 * (state.h): the tokens are those the agent sent for the user, and no
 * identifier is read or tokenized again.  A user id the state does not know,
 * or whose last consent sent lacks `match` (withdrawn), is skipped and
 * counted: such a user is in no experiment the gateway made, and must not be
 * named to it again.  Each record carries the user's tokens, the consent
 * last sent (bits and time, so the gateway applies its usual consent rules),
 * and the AEAD (under the data records' associated data, §5.3) of an
 * Outcome {experiment, converted, value_cents, at}.
 *
 * Any malformed row fails the whole file, nothing written, with
 * "file:line:column (name): reason" (never the cell's value): an outcome
 * silently dropped would bias the lift.
 */
#ifndef CG_OUTCOMES_H
#define CG_OUTCOMES_H

#include <stddef.h>
#include <stdint.h>
#include "base/csvfile.h"
#include "base/err.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"

struct outcomes_opts {
	const struct policy *pol;
	const char *partner_id;
	const char *experiment;             /* 1 to BATCH_EXPERIMENT_MAX of [A-Za-z0-9._-] (proto/batch.h) */
	const char *input;                  /* CSV path, "-" for stdin */
	const char *output;                 /* batch file path */
	const char *state;                  /* the agent's state file (required) */
	const struct keyfile_key *match;    /* checked against the policy like any batch's keys */
	const struct keyfile_key *sign;
	const struct keyfile_key *gateway;  /* X25519 public */
	int64_t now;                        /* the batch's created_at */
};

struct outcomes_stats {
	uint64_t rows;
	uint64_t packed;                    /* records written */
	uint64_t converted;                 /* of those, conversions */
	uint64_t unknown;                   /* user ids the state does not know, or withdrawn: skipped */
	unsigned char batch_id[16];
	unsigned char digest[32];
};

/* The column of each field of an outcome row: OUTCOMES_COL_* by header position. */
enum outcomes_col { OUTCOMES_COL_USER = 0, OUTCOMES_COL_CONVERTED, OUTCOMES_COL_VALUE, OUTCOMES_COL_AT, OUTCOMES_NCOLS };

struct outcomes_header {
	size_t nfields;
	size_t pos[OUTCOMES_NCOLS];          /* the field index of each column */
};

struct outcome_row {
	const char *user_id;                /* points into the row */
	size_t user_id_len;
	int converted;
	int64_t value_cents;
	int64_t at;
};

/*
 * The header row: exactly the four columns, the user id one named
 * `user_col`.  CG_ERR_FORMAT "file:line:column: reason".
 */
int outcomes_header_parse(const struct csvfile_row *row, const char *user_col, const char *input,
    struct outcomes_header *h, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/* One data row.  CG_ERR_FORMAT "file:line:column (name): reason"; out points into row. */
int outcomes_row_parse(const struct outcomes_header *h, const struct csvfile_row *row, const char *input,
    struct outcome_row *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/* Pack the CSV into the batch.  On failure nothing is written. */
int outcomes_pack(const struct outcomes_opts *o, struct outcomes_stats *stats, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
