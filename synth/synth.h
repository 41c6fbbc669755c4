/*
 * synth.h - realistic synthetic partner data for the demo and the benchmarks.
 *
 * Writes the two demo inputs, K's users (paid-knowledge platform) and G's
 * viewers (game live-streaming platform), with the messiness real exports
 * have: mixed case and stray (also Unicode) white space in emails, gmail dots,
 * "+tags" and googlemail.com, phones in several national and international
 * formats, duplicate rows of one user, missing consent, a few malformed
 * rows, and on request phones shared between people.  Alongside it writes the ground truth the pipeline must reproduce.
 *
 * The data is deterministic for a given seed (a non-cryptographic generator:
 * this is test data, nothing here is secret).
 */
#ifndef CG_SYNTH_H
#define CG_SYNTH_H

#include <stdint.h>
#include "base/err.h"

struct synth_opts {
	uint64_t users;          /* distinct people per platform (default 50000) */
	double shared_frac;      /* fraction of K's people who also use G (default 0.30) */
	double no_match_frac;    /* rows without `match` consent (default 0.10) */
	double no_analytics_frac;/* rows with match but without `analytics` (default 0.10) */
	double bad_frac;         /* malformed rows (default 0.002) */
	double dup_frac;         /* people written twice in one file (default 0.01) */
	double phone_share_frac; /* people who give another random person's phone, a family's or a recycled
	                            number: random phone collisions (default 0); every person keeps one email
	                            of their own, so the truth (who is whom) stays exact */
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

/*
 * The structure planted in the features, which the analytics core must
 * recover from the anonymized export alone (tests/e2e/test_analytics_planted.sh):
 *
 *   - conversion: F = 0.3 C^K + 20 T^K + 5 T^G + N(0, 1500^2) cents for
 *     people on both platforms (C^K course spend in cents, T^K learning and
 *     T^G watch minutes), clamped at 0 (which these values never reach);
 *   - segments: every person belongs to one of SYNTH_SEGMENTS segments drawn
 *     with the given shares; learning minutes, watch minutes and streams
 *     followed are log-normal around the segment's medians with log standard
 *     deviation SYNTH_SEGMENT_SIGMA, and each segment tilts the category
 *     weights (learners lean to programming and finance, gamers to moba);
 *   - affinity: a shared person whose top course category is programming has
 *     strategy as top game category with probability SYNTH_AFFINITY_P more.
 *
 * truth.json repeats all of it under "planted".
 */
#define SYNTH_COEF_SPEND 0.3
#define SYNTH_COEF_LEARN 20.0
#define SYNTH_COEF_WATCH 5.0
#define SYNTH_CONV_NOISE 1500.0
#define SYNTH_SEGMENTS 3
#define SYNTH_SEGMENT_SIGMA 0.5
#define SYNTH_AFFINITY_COURSE "programming"
#define SYNTH_AFFINITY_GAME "strategy"
#define SYNTH_AFFINITY_P 0.5

struct synth_segment {
	const char *name;
	double share;
	double learn_median, watch_median, streams_median;
};
extern const struct synth_segment synth_segments[SYNTH_SEGMENTS];

void synth_opts_default(struct synth_opts *o);

/*
 * Write k_users.csv (LF line ends), g_viewers.csv (CRLF) and truth.json into
 * dir (which must exist).  The schemas are the demo policy's
 * (policy/example.yaml).  truth.json holds every field of *truth, an
 * "opts" object with the options used (a seed above 2^63-1 is written as a
 * decimal string) and the "planted" structure (above).  1,000,000 users per platform take about two seconds.
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
