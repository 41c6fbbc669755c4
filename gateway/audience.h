/*
 * audience.h - audiences for activation under `marketing` consent (issue 14).
 *
 *   crossgate audience create --name NAME --rule "k_top_course_category = programming and g_watch_minutes >= 600"
 *
 *   crossgate audience create --name NAME --segment KMEANS.csv --cluster 2
 *
 * An analyst granted the purpose `marketing` defines an audience by a rule
 * (gateway/rule.h) over the joined columns shared for marketing, or by a DP
 * segment (gateway/segment.h): the subjects whose nearest released k-means
 * centre is the given cluster.  Members are the joined subjects
 * (gateway/join.h) whose newest records consent to `marketing` on BOTH sides
 * and that the rule or segment selects.  Then, in order:
 *
 *  1. Policy checks (nothing read yet): the analyst holds `marketing`, the
 *     policy names receivers (marketing: receivers; none: refused), both
 *     partners are sources (marketing: sources), the name is new, and the
 *     analyst has refusals left (marketing: max_refusals).
 *  2. The refusal test.  With n members, the audience is refused when
 *     n + Z < min_audience, Z a discrete Laplace variable of scale
 *     t = refusal_noise drawn from HMAC-SHA-256 under a subkey of the
 *     gateway's storage key over a digest of the member set: the same data
 *     and the same members always give the same Z (asking again, or with a
 *     rule rewritten to select the same members, reveals nothing new), and a
 *     member set that differs by anyone gives an independent Z.  So one
 *     request is an epsilon = 1/t noisy threshold test (the Laplace mechanism
 *     on a count of sensitivity 1, then a comparison).  A refusal charges
 *     nothing (it is recorded, audited and counted against max_refusals, so
 *     refusals reveal at most max_refusals such bits per analyst); an
 *     accepted audience is charged that epsilon (as rho = eps^2 / 2) on top
 *     of its size's rho.  The exact size is never printed, logged or stored.
 *  3. The charge (budget.h), committed before any noise is drawn: rho =
 *     audience_rho (or --rho; default privacy.query_rho) + (1/t)^2 / 2.
 *  4. The noisy size: n plus discrete Gaussian noise of variance 1 / (2 rho)
 *     (sensitivity 1, join_sensitivity), the analyst's only answer.
 *  5. Deliveries: the members' key tokens at both partners are stored in
 *     `audience_members` (by subject); for each of the two partners that may
 *     receive (marketing: receivers) a pending delivery is recorded in
 *     `audience_deliveries`.  When the partner fetches it (only its own,
 *     audience_fetch), the tokens that partner sent for its members are
 *     sealed to it (crypto/delivery.h); a user erased in the meantime
 *     (revocation, withdrawal, retention: gateway/erase.h) is no longer a
 *     member.
 *  6. Audit events: "audience" (ok or refused; reason: the rule's SHA-256,
 *     or "segment sha256 H cluster N", H the released CSV's, and the recipients; counts: noisy_size, rho_nano, recipients; never a
 *     user, a token or an exact count), "audience-deliver" per delivery, and
 *     "audience-fetch" when a partner takes one.
 *
 * Errors: CG_ERR_POLICY (refused; the message says why and how to proceed),
 * CG_ERR_FORMAT (a bad rule: "rule: offset N: reason"; a file that is not a
 * released k-means output: "segment FILE: reason"), CG_ERR_ARG (a bad name,
 * both or neither of a rule and a segment, a cluster that was not released), CG_ERR_DB / CG_ERR_IO / CG_ERR_NOMEM.
 */
#ifndef CG_AUDIENCE_H
#define CG_AUDIENCE_H

#include <stdint.h>
#include "base/err.h"
#include "audit/audit.h"
#include "crypto/keyfile.h"
#include "crypto/token.h"
#include "store/store.h"
#include "policy/policy.h"

#define AUDIENCE_NAME_MAX 32
#define AUDIENCE_PURPOSE "marketing"

struct audience_spec {
	const struct policy *pol;
	const struct policy_principal *analyst;
	const char *name;                    /* [a-z0-9_-]{1,32}, unique */
	const char *rule;                    /* a rule (rule.h), or else: */
	const char *segment;                 /* a released k-means CSV (segment.h), read from this path, */
	const char *segment_csv, *segment_meta;   /* or, if set, from these bytes (segment's name in messages) */
	size_t segment_csv_len, segment_meta_len;
	uint32_t cluster;                    /* the cluster of it whose subjects are the audience */
	const char *left, *right;            /* partner ids; default the policy's first two */
	int64_t rho_nano;                    /* 0: marketing.audience_rho, else privacy.query_rho */
	const struct keyfile_key *storage;
};

struct audience_stats {
	char audience_id[33];
	char rule_hash[65];                  /* or the segment file's SHA-256 */
	uint32_t cluster;                    /* a segment's cluster; 0 for a rule */
	int64_t noisy_size;
	int64_t charged_nano, remaining_nano;
	char recipients[2][65];
	size_t nrecipients;
	uint32_t refusals_left;              /* after this request */
	uint64_t audit_index;
};

int audience_schema(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

int audience_create(struct store *st, struct audit *a, const struct audience_spec *spec, struct audience_stats *stats,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * A pending delivery to partner pp named `name` (id: the audience's or the
 * experiment's 16-byte id), with an "audience-deliver" audit event, in the
 * caller's transaction (store_begin, audit_append).  It holds the audience's
 * members at pp or, with `experiment`, experiment `name`'s treatment arm at
 * pp (gateway/experiment.h), read and sealed when pp fetches it.
 */
int audience_delivery_add(struct store *st, struct audit *a, const struct policy *pol, const char *name,
    const unsigned char id[16], const struct policy_partner *pp, int experiment, int64_t created, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5, 6);

/* One stored delivery, sealed (crypto/delivery.h). */
struct audience_delivery {
	char id[33];                         /* hex of 16 random bytes */
	char audience[AUDIENCE_NAME_MAX + 1];
	int64_t created;
	unsigned char *sealed;
	size_t len;
};

/*
 * The deliveries waiting for partner `partner` (all of them with `all`,
 * fetched before or not), oldest first, each sealed now to the partner's
 * signing key in `pol` from the members as they are now (a user erased
 * since, gateway/erase.h, is left out); each is marked fetched, with an
 * "audience-fetch" audit event, in one transaction.  *out is malloc'd:
 * audience_deliveries_free.  Only the partner's own: the caller has
 * authenticated the partner (server: its certificate's principal).
 */
int audience_fetch(struct store *st, struct audit *a, const struct policy *pol, const char *partner, int all,
    struct audience_delivery **out, size_t *n, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 6, 7);

/*
 * In the caller's transaction (erase.c, with the tokens staged in
 * temp.erase_pending as erase_apply deletes records by): remove the erased
 * users of `partner` from every audience (the whole subject, both partners'
 * rows) and experiment, so that no pending delivery holds them.
 */
int audience_erase_staged(struct store *st, const char *partner, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* The same for the users of `partner` left with no record at all (retention, erase.c's erase_expired). */
int audience_erase_orphans(struct store *st, const char *partner, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
void audience_deliveries_free(struct audience_delivery *d, size_t n);

/*
 * The discrete Laplace variable of scale t that the refusal test adds for
 * a member-set digest under `key` (32 bytes): deterministic, for the tests
 * of its distribution.
 */
int64_t audience_refusal_noise(const unsigned char key[32], const unsigned char digest[32], uint32_t t)
    CG_NONNULL(1, 2);
/*
 * The refusal test's HMAC of a member-set digest under the refusal subkey of
 * `storage` (the noise is drawn from it); with a key agent the monitor
 * computes it (gateway/monitor.h), the subkey never leaves it.
 */
int audience_refusal_mac(const struct keyfile_key *storage, const unsigned char digest[32], unsigned char h[32],
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

#endif
