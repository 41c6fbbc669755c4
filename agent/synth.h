/*
 * synth.h - realistic synthetic partner data for the demo and the benchmarks.
 *
 * Writes the two demo inputs, K's users (paid-knowledge platform) and G's
 * viewers (game live-streaming platform), with the messiness real exports
 * have: mixed case and stray (also Unicode) white space in emails, gmail dots,
 * "+tags" and googlemail.com, phones in several national and international
 * formats, duplicate rows of one user, missing consent, and a few malformed
 * rows.  Alongside it writes the ground truth the pipeline must reproduce.
 *
 * The data is deterministic for a given seed (a non-cryptographic generator:
 * this is test data, nothing here is secret).
 */
#ifndef CG_SYNTH_H
#define CG_SYNTH_H

#include <stdint.h>
#include "crypto/err.h"

struct synth_opts {
	uint64_t users;          /* distinct people per platform (default 50000) */
	double shared_frac;      /* fraction of K's people who also use G (default 0.30) */
	double no_match_frac;    /* rows without `match` consent (default 0.10) */
	double no_analytics_frac;/* rows with match but without `analytics` (default 0.10) */
	double bad_frac;         /* malformed rows (default 0.002) */
	double dup_frac;         /* people written twice in one file (default 0.01) */
	uint64_t seed;           /* default 1 */
};

/* What the pipeline must find; every number is exact. */
struct synth_truth {
	uint64_t k_rows, g_rows;             /* data rows written (header excluded) */
	uint64_t k_bad_rows, g_bad_rows;     /* malformed rows the agent must reject */
	uint64_t k_dup_rows, g_dup_rows;     /* rows that a later row of the same person supersedes */
	uint64_t k_no_match, g_no_match;     /* valid, latest rows without `match` consent */
	uint64_t k_packed, g_packed;         /* records each agent must write to its batch */
	uint64_t shared_people;              /* people in both files (any consent, any validity) */
	uint64_t matched;                    /* subjects the join must find: both sides packed, a common identifier kind */
	uint64_t exported_before_suppression;/* matched with `analytics` consent on both sides */
	uint64_t matched_marketing;          /* matched with `marketing` consent on both sides */
};

void synth_opts_default(struct synth_opts *o);

/*
 * Write k_users.csv (LF line ends), g_viewers.csv (CRLF) and truth.json into
 * dir (which must exist).  The schemas are the demo policy's
 * (policy/example.yaml).  truth.json holds every field of *truth and an
 * "opts" object with the options used (a seed above 2^63-1 is written as a
 * decimal string).  1,000,000 users per platform take about two seconds.
 * Errors: CG_ERR_ARG (a fraction outside [0, 1], or no_match_frac +
 * no_analytics_frac or bad_frac + dup_frac above 1), CG_ERR_LIMIT (more than
 * 40,000,000 users), CG_ERR_IO, CG_ERR_NOMEM.  *truth is zeroed on failure.
 */
int synth_write(const char *dir, const struct synth_opts *opts, struct synth_truth *truth,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/*
 * For tests: the canonical (normalized) email and E.164 phone of the person
 * behind a user_id ("k..."/"g...") of the data synth_write writes with these
 * opts.  Every person has both, whatever the files show.  email needs
 * SYNTH_EMAIL_MAX bytes, phone SYNTH_PHONE_MAX.  CG_ERR_NOTFOUND for an id
 * that is not one of them.
 */
#define SYNTH_EMAIL_MAX 80
#define SYNTH_PHONE_MAX 16
int synth_canonical_ids(const struct synth_opts *opts, const char *user_id, char *email,
    size_t email_size, char *phone, size_t phone_size, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5);

#endif
