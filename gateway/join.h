/*
 * join.h - the join of two partners' records, shared by row exports
 * (export.c) and aggregates (query.c), so that both see the same subjects.
 *
 * Join rule (deterministic, order-free, documented in the README):
 *  1. Users.  Within one partner, the records of one key are one user: the
 *     key is the email token, or, for a record without an email, its phone
 *     token.  Nothing else merges records: a phone shared by two emails
 *     leaves two users.  The record with the latest consent_at represents the
 *     user (ties: the later stored row), so a newer batch's consent always
 *     overrides an older one.
 *  2. Email stage.  A left and a right user of the same email are a subject.
 *  3. Phone stage.  Among the users not paired by email, a phone pairs a left
 *     and a right user when they are the only compatible pair carrying it
 *     (compatible: at least one of the two has no email, so a phone never
 *     pairs two different emails) and each carries that one phone.  A phone
 *     with two or more compatible pairs pairs nobody (counted as ambiguous),
 *     so no pair depends on the order of the records.
 *     With the policy's `phone_matching: never` there is no phone stage:
 *     only emails pair users (a shared phone never makes a pair; a person who
 *     gave one partner only a phone is not matched).
 *  4. A subject is used for a purpose only if both sides' newest records
 *     consent to it.
 * Each subject contributes one row to an export and counts once in any
 * aggregate.
 *
 * Privacy unit and sensitivity.  One person has one email that no other
 * person uses, and one phone, which anyone may share (families, recycled
 * numbers: the attack of a person Q who gives A's phone is covered).  At each
 * partner, the person's rows all carry the same identifiers: both, the email
 * only, the phone only, or the person is absent there.  Two people who give
 * a partner nothing but the same phone are one key there, like two people
 * of one email: the gateway cannot tell them apart (their "twin" case is
 * bounded below).  Neighbouring inputs differ by all the rows of one person,
 * at both partners.
 *
 * Lemma: adding (or, symmetrically, removing) one person Q removes at most
 * one subject or adds at most one, never both: JOIN_PERSON_SUBJECTS = 1.
 *  (a) Every user of Q is new: Q's email is Q's own, and Q's phone-only rows
 *      meet no other phone-only rows of that phone at that partner.  No
 *      existing user gains or loses a record, so no user's phones change.
 *  (b) An existing user is paired by email iff its email has users at both
 *      partners.  Q adds only its own email: every email pair stays as it
 *      was, and the only new one is Q's.
 *  (c) A phone bucket holds the carriers not paired by email.  By (a) and (b)
 *      only Q's users enter one, the bucket of Q's phone p.  Every other
 *      bucket, and so its pair, is unchanged.  Compatibility is a property
 *      of two users, so new carriers only add compatible couples, and every
 *      existing user keeps its phone count: bucket p goes from one couple to
 *      two or more (its pair removed), or from none to one (a pair added,
 *      with a user of Q), or keeps its couple and its pair.
 *  (d) If Q is paired by email, Q's users enter no bucket: the only change
 *      is Q's subject, added (the measured attack moves one subject, not
 *      two).  Otherwise there is no new email pair and (c) is the change.
 * So a count moves by at most 1 and a clamped sum by at most max(|lo|, |hi|)
 * in one group, in L1 and L2: the charge the query makes, through
 * join_sensitivity().  Twins: if Q's phone-only rows at a partner join an
 * existing phone-only user, that user's newest row can become Q's, so one
 * subject can change (one out, one in): L1 2b, L2 sqrt(2) b, the group
 * privacy of two people (JOIN_TWIN_SUBJECTS).  Likewise two people of one
 * email, and a person whose identifiers differ between rows at one partner
 * (one person per identity).  tests/unit/test_join.c checks the lemma, the
 * twin bound and the charge on random worlds with shared phones (against
 * the previous rule, 1,496 of its 20,000 worlds broke the charge).
 */
#ifndef CG_JOIN_H
#define CG_JOIN_H

#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "store/store.h"
#include "policy/policy.h"
#include "proto/crossgate.pb-c.h"

#define JOIN_NONE UINT32_MAX

/* The pairs of a join.  Owns every array; join_free releases them. */
struct join {
	const struct policy_partner *side[2];
	int no_phone_stage;                  /* the policy's phone_matching: never (0 for a join built by hand) */
	unsigned threads;                    /* join_pairs' threads: 0 one per core (one below 65,536 records) */
	struct store_ref *refs[2];
	size_t nref[2];
	struct store_payloads pay;           /* the records' sealed payloads, read with the refs (join_run) */
	uint8_t *opened[2];                  /* per record, join_run_open: its payload was opened in place */
	uint32_t *pair;                      /* pair[i], i a left record: its right record, or JOIN_NONE */
	uint64_t superseded;                 /* older records of a user, replaced by a newer one */
	uint64_t matched;                    /* pairs */
	uint64_t ambiguous;                  /* phones left unused: two candidate pairs, or another user's phone */
	uint64_t probes;                     /* hash-table slots inspected: linear in the records, for tests */
	double load_seconds;                 /* reading tokens and consent from the store */
	double join_seconds;                 /* grouping and pairing in memory */
};

/*
 * Join partners `left` and `right` (NULL: the policy's first two).  The
 * store is only read, in one sequential scan of the records table that
 * also keeps every record's sealed payload in memory, for join_each.  CG_ERR_ARG if they are not two different partners of
 * the policy.
 */
int join_run(struct store *st, const struct policy *pol, const char *left, const char *right, struct join *j,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 5);

/*
 * The same, and the records opened (verified and decrypted, in place) on
 * every core while the scan reads, with the storage key: join_each then
 * only decodes them.  A record that does not open stays sealed; join_each
 * tells why only if a pair it walks needs it.  storage NULL: join_run.
 */
int join_run_open(struct store *st, const struct policy *pol, const struct keyfile_key *storage, const char *left,
    const char *right, struct join *j, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 6);
void join_free(struct join *j);

/*
 * Pair j->refs[0..1] (j->nref[0..1] records, in id order) by the rule above,
 * filling j->pair and the counters; join_run calls it after loading the
 * records, tests call it on records built in memory.  CG_ERR_LIMIT above
 * JOIN_NONE - 1 records on a side, CG_ERR_NOMEM.
 */
int join_pairs(struct join *j, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Sensitivity (the lemma above): one person adds or removes at most
 * JOIN_PERSON_SUBJECTS subjects in all; twins (two people who give one
 * partner only the same phone) change at most JOIN_TWIN_SUBJECTS (one out,
 * one in).  join_sensitivity(b) is the charge, in L1 and L2, of a statistic
 * to which one subject contributes at most b (1 for a count, max(|lo|, |hi|)
 * for a clamped sum) and each subject only once: b times the subjects one
 * person moves, saturating.  Every DP statistic over subjects uses it.
 */
#define JOIN_PERSON_SUBJECTS 1u
#define JOIN_TWIN_SUBJECTS 2u
static inline uint64_t
join_sensitivity(uint64_t per_subject)
{
	return per_subject > UINT64_MAX / JOIN_PERSON_SUBJECTS ? UINT64_MAX : per_subject * JOIN_PERSON_SUBJECTS;
}

/* "g+k": the dataset a join is, for budgets and audit events: the partner ids in sorted order. */
void join_dataset(const struct join *j, char *out, size_t size) CG_NONNULL(1, 2);

/* The field named `name` of a payload, or NULL. */
const Crossgate__Field *join_field(const Crossgate__RecordPayload *p, const char *name);

/*
 * An output column: quasi-identifiers once by their name (from the left
 * partner, or the right where the left lacks it), then each side's features
 * as "<partner>_<column>".  Only columns the policy shares for the purpose.
 */
struct join_col {
	const struct policy_column *col;
	int side;                            /* 0 left, 1 right */
	const struct policy_column *alt;     /* quasi-identifier of the same name on the other side */
	char name[160];
};
#define JOIN_COLS_MAX 512

/* Fill cols (JOIN_COLS_MAX entries); *nqi of them, first, are quasi-identifiers. */
void join_columns(const struct join *j, int purpose_bit, struct join_col *cols, size_t *ncols, size_t *nqi)
    CG_NONNULL(1, 3, 4, 5);

/* The payload sides (JOIN_LEFT, JOIN_RIGHT) jc is read from: join_col_field's fallback reads the other. */
unsigned join_col_sides(const struct join_col *jc) CG_NONNULL(1);

/* A column's field in a subject's two payloads; *c is the column it is read against. NULL: absent. */
const Crossgate__Field *join_col_field(const struct join_col *jc, Crossgate__RecordPayload *const pl[2],
    const struct policy_column **c) CG_NONNULL(1, 2, 3);

/*
 * Call fn for every pair whose both sides consent to purpose bit `pbit`, with
 * the payloads of the sides in `sides` (bit 0 left, bit 1 right) opened
 * (owned by join_each, in an arena: valid during the call only, never
 * freed by fn; a side not asked for is NULL and is not decoded, but its
 * record is verified all the same: its seal binds the consent).  Pairs
 * left out for consent are counted in *no_consent.  fn runs on the calling
 * thread, over the pairs in left record order, while worker threads open
 * and decode the next group of pairs (a record join_run_open opened is only
 * decoded).  The first record of the walk's order that does not open is
 * the error, and no pair of its group reaches fn; fn returns 0 or an error,
 * which stops the walk and is returned.  The join must come from join_run
 * or join_run_open (CG_ERR_ARG otherwise: it holds the payloads).
 */
#define JOIN_LEFT 1u
#define JOIN_RIGHT 2u
#define JOIN_BOTH 3u
typedef int (*join_fn)(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err);
int join_each(struct store *st, const struct keyfile_key *storage, const struct join *j, int pbit, unsigned sides,
    join_fn fn, void *ctx, uint64_t *no_consent, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 6, 8);

#endif
