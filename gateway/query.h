/*
 * query.h - differentially private aggregates, the default output channel.
 *
 *   crossgate query --purpose P --group-by age,region --metric count --metric sum:k_course_spend_cents
 *
 * Over the subjects of the join (gateway/join.h) that consent to the purpose:
 *
 *  - Group keys: columns by their export names (quasi-identifiers by name,
 *    features as "<partner>_<column>").  A `public: true` column's keys are
 *    its domain enumerated from the policy (band ranges between min and max,
 *    a map's groups, a category's values), every one evaluated whether or not
 *    the data has it.  Keys of other columns come from the data and go
 *    through DP partition selection: a key is released only if its noisy
 *    count reaches the threshold, and the query is refused before anything is
 *    charged if the chance that a single subject's key is released (delta,
 *    bounded from above) would exceed the policy's partition_delta.  A value
 *    that is missing, or outside a public domain, counts under the key "*".
 *  - Contribution bounding: each subject counts once, in one group; a summed
 *    value is clamped to the column's policy `bounds` (a missing value adds
 *    0), in 64-bit integer arithmetic of the column's own units that
 *    saturates rather than wraps.
 *  - Metrics: count, sum:COL, mean:COL (noisy sum / noisy count: no extra
 *    cost), histogram:COL (COL's bounds cut into --buckets ranges, an extra
 *    group key).  The count is always measured (it decides suppression) and
 *    released.
 *  - Noise: the discrete Gaussian (rho-zCDP), or with `epsilon_nano` the
 *    discrete Laplace (pure epsilon, charged rho = epsilon^2 / 2), from the
 *    exact samplers of crypto/noise.h.  The query's rho (or epsilon) is split
 *    evenly over the measured statistics (count and each summed column);
 *    sensitivity 1 for a count, max(|lo|, |hi|) for a sum.  Noise scales are
 *    rounded up, never down.
 *  - Groups whose noisy count is below the policy's threshold are withheld.
 *  - Budget: the charge is recorded (budget.h: atomic, append-only, audited)
 *    before any noise is drawn or anything written; a query that would
 *    overspend is refused with the remaining budget in the message.
 *
 * Output: CSV (group keys, count, then sum_COL / mean_COL in the order
 * asked) and `out_path`.meta.json with the provenance: {"query_id",
 * "purpose", "analyst", "dataset", "group_by", "metrics", "mechanism",
 * "rho", "epsilon", "threshold", "groups", "released", "suppressed",
 * "partition_selection", "delta", "remaining_rho", "policy_hash",
 * "audit_index", "created", "left", "right"}.  Nothing exact about the data
 * (not even the number of subjects) is in either: with keys from the data
 * "groups" and "suppressed" are left out (how many keys the data has is an
 * exact count), and query_stats.groups is the released count.
 *
 * Test hook: with CROSSGATE_FAULT=after-charge in the environment the
 * process exits (status 70) right after the charge is committed, to show
 * that a crash between charge and answer never gives a free answer.
 */
#ifndef CG_QUERY_H
#define CG_QUERY_H

#include <stdint.h>
#include <jansson.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "gateway/join.h"
#include "store/store.h"
#include "policy/policy.h"

#define QUERY_GROUP_MAX 8
#define QUERY_METRIC_MAX 16
#define QUERY_CELLS_MAX 1000000          /* groups of a public domain evaluated by one query */
#define QUERY_BUCKETS_DEFAULT 10u
#define QUERY_BUCKETS_MAX 1000u
#define QUERY_EPSILON_MAX_NANO (1000LL * 1000000000LL)   /* epsilon 1000: rho 500,000, within any budget's range */

enum query_kind {
	QUERY_COUNT = 1,
	QUERY_SUM,
	QUERY_MEAN,
	QUERY_HISTOGRAM,
};

struct query_metric {
	enum query_kind kind;
	const char *col;                     /* NULL for count */
};

struct query_spec {
	const struct policy *pol;
	const char *left, *right;            /* partner ids; default: the policy's first two */
	const char *purpose;
	const char *group_by[QUERY_GROUP_MAX];
	size_t ngroup;
	struct query_metric metrics[QUERY_METRIC_MAX];
	size_t nmetrics;
	int64_t rho_nano;                    /* 0: the policy's query_rho */
	int64_t epsilon_nano;                /* > 0: pure epsilon with discrete Laplace noise instead */
	uint32_t buckets;                    /* histogram ranges; 0: QUERY_BUCKETS_DEFAULT */
	const struct policy_principal *analyst;
	const char *out_path;
	const struct keyfile_key *storage;
};

struct query_stats {
	uint64_t groups;                     /* groups evaluated */
	uint64_t released, suppressed;
	int64_t charged_nano, remaining_nano;
	int partition_selection;
	double delta;
	uint64_t audit_index;                /* of the "query" event */
	char query_id[33];
	double join_seconds;                 /* scanning and opening the records, pairing */
	double load_seconds;                 /* of which the scan: reading and opening every record */
	double collect_seconds;              /* decoding and aggregating the opened records */
	double release_seconds;              /* the charge, the noise and the files */
};

/* "count", "sum:COL", "mean:COL", "histogram:COL" into *m (m->col points into s). CG_ERR_ARG if malformed. */
int query_metric_parse(const char *s, struct query_metric *m, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * The aggregation itself, apart from the store, for tests: a plan resolves a
 * spec against the join's columns; subjects are added one by one with their
 * two payloads; query_groups_release adds the noise and applies the
 * threshold.  query_run does all of it, with the budget and the files.
 */
struct query_plan;
int query_plan_make(const struct query_spec *spec, const struct join *j, struct query_plan **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);
void query_plan_free(struct query_plan *p);
/* Add one subject. CG_ERR_LIMIT if a sum would overflow. */
int query_plan_add(struct query_plan *p, Crossgate__RecordPayload *const pl[2], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* Groups so far, and one group's exact (noiseless) count and sums, for tests. */
size_t query_plan_groups(const struct query_plan *p);
int64_t query_plan_exact(const struct query_plan *p, size_t group, size_t stat);  /* stat 0: count, i: i-th sum */
/* The rho (nano) the query costs, and whether its keys come from the data (and the delta it implies). */
int query_plan_cost(struct query_plan *p, int64_t *rho_nano, int *partition, double *delta,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
/* Draw the noise: noisy[g * nstats + s] for every group; released[g] = noisy count >= threshold. */
int query_plan_release(struct query_plan *p, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
int64_t query_plan_noisy(const struct query_plan *p, size_t group, size_t stat);
int query_plan_released(const struct query_plan *p, size_t group);
size_t query_plan_stats(const struct query_plan *p);    /* 1 + summed columns */

/*
 * Pieces of a release that the model statistics (model.h) share with the
 * aggregates, so that every release is bounded, noised, audited and
 * described alike.
 */
/* A column summed or modelled: an int with policy bounds, by its output name.  CG_ERR_ARG / CG_ERR_POLICY. */
int query_bounded_column(const struct join_col *cols, size_t ncols, const char *name, const struct join_col **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4);
/* The noise parameter a / c rounded UP into num/den <= NOISE_PARAM_MAX: never less noise. CG_ERR_LIMIT. */
int query_noise_param(unsigned __int128 a, unsigned __int128 c, uint64_t *num, uint64_t *den) CG_MUST_CHECK
    CG_NONNULL(3, 4);
#define QUERY_AUDIT_COUNTS_MAX 8
/* A release's audit event: `action` by `analyst`, with up to QUERY_AUDIT_COUNTS_MAX counts; *seq its index. */
int query_audit_event(struct audit *a, const struct policy *pol, const char *analyst, const char *action,
    const char *purpose, const char *outcome, const char *reason, const unsigned char qid[16],
    const char *const *names, const uint64_t *vals, size_t n, uint64_t *seq, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 4, 5, 6, 8, 13);
/* The provenance members of every release's .meta.json (query_id, purpose, analyst, dataset, mechanism, rho, ...). */
void query_meta_base(json_t *m, const struct policy *pol, const char *query_id, const char *purpose,
    const char *analyst, const char *dataset, const struct join *j, const char *mechanism, int64_t charged_nano,
    int64_t remaining_nano, uint64_t audit_index);
/* Write `out_path`.meta.json from m (sorted keys), whole or not at all (base/outfile.h). */
int query_meta_write(json_t *m, const char *out_path, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* Seconds on the monotonic clock, for the stats' timings. */
double query_clock(void);

int query_run(struct store *st, struct audit *a, const struct query_spec *spec, struct query_stats *stats,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

#endif
