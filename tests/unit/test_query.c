/*
 * test_query.c - differentially private aggregates, apart from the store:
 * public domains are enumerated whatever the data holds, each subject counts
 * once and its values are clamped (one extreme subject moves a sum by at most
 * the bound), the noise has the calibrated spread, a differencing attack
 * does no better than the noise allows, groups below the threshold are
 * withheld, and keys from the data need partition selection.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "gateway/budget.h"
#include "gateway/query.h"

static struct policy *pol;
static struct join jw;

static const char policy_fmt[] =
    "version: 1\n"
    "name: query-test\n"
    "default_phone_country: CN\n"
    "purposes: [match, analytics, marketing]\n"
    "partners:\n"
    "  - id: k\n"
    "    name: K\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: age, type: int, min: 13, max: 120, role: quasi_identifier, generalize: {band: 10},\n"
    "         public: true}\n"
    "      - {name: region, type: string, role: quasi_identifier, public: true,\n"
    "         generalize: {map: {A: North, B: South}, other: Other}}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: spend, type: int, role: feature, bounds: [0, 1000]}\n"
    "      - {name: cat, type: category, values: [x, y, z], role: feature, public: true}\n"
    "      - {name: tag, type: string, role: feature}\n"
    "  - id: g\n"
    "    name: G\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: watch, type: int, role: feature, bounds: [-50, 100]}\n"
    "      - {name: minutes, type: int, role: feature}\n"
    "privacy: {threshold: 20}\n"
    "principals:\n"
    "  - {name: analyst, role: analyst, identity: \"crossgate:analyst:a\", purposes: [analytics]}\n";

/* One subject's two payloads, built by hand. */
struct subject {
	Crossgate__Field f[2][6], *fp[2][6];
	Crossgate__RecordPayload pl[2];
	Crossgate__RecordPayload *pp[2];
	char tag[32];
};

static void
field_int(struct subject *s, int side, const char *name, int64_t v)
{
	Crossgate__RecordPayload *p = &s->pl[side];
	Crossgate__Field *f = &s->f[side][p->n_fields];

	crossgate__field__init(f);
	f->name = (char *)name;
	f->value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
	f->int_value = v;
	s->fp[side][p->n_fields++] = f;
}

static void
field_str(struct subject *s, int side, const char *name, const char *v)
{
	Crossgate__RecordPayload *p = &s->pl[side];
	Crossgate__Field *f = &s->f[side][p->n_fields];

	crossgate__field__init(f);
	f->name = (char *)name;
	f->value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
	f->str_value = (char *)v;
	s->fp[side][p->n_fields++] = f;
}

static void
subject_make(struct subject *s, int64_t age, const char *region, int64_t spend, const char *cat, int64_t watch)
{
	memset(s, 0, sizeof(*s));
	crossgate__record_payload__init(&s->pl[0]);
	crossgate__record_payload__init(&s->pl[1]);
	s->pl[0].fields = s->fp[0];
	s->pl[1].fields = s->fp[1];
	field_int(s, 0, "age", age);
	field_str(s, 0, "region", region);
	field_int(s, 0, "spend", spend);
	field_str(s, 0, "cat", cat);
	snprintf(s->tag, sizeof(s->tag), "t%lld", (long long)(age % 3));
	field_str(s, 0, "tag", s->tag);
	field_int(s, 1, "watch", watch);
	s->pp[0] = &s->pl[0];
	s->pp[1] = &s->pl[1];
}

static void
spec_init(struct query_spec *q)
{
	memset(q, 0, sizeof(*q));
	q->pol = pol;
	q->purpose = "analytics";
	q->analyst = policy_principal_by_name(pol, "analyst");
}

static struct query_plan *
plan(struct query_spec *q)
{
	struct query_plan *p = NULL;
	struct cg_err err;

	if (query_plan_make(q, &jw, &p, &err) != 0) {
		fprintf(stderr, "plan: %s\n", err.msg);
		return NULL;
	}
	return p;
}

static void
add(struct query_plan *p, int64_t age, const char *region, int64_t spend, const char *cat, int64_t watch)
{
	struct subject s;
	struct cg_err err;

	subject_make(&s, age, region, spend, cat, watch);
	CHECK_EQ_INT(query_plan_add(p, s.pp, &err), 0);
}

/* The group holding (age band of `age`, region group): groups are enumerated band-major, '*' last in each. */
static size_t
group_of(int64_t age, int region)
{
	return (size_t)((age / 10 - 1) * 4 + region);
}

static void
test_public_domain_and_bounding(void)
{
	struct query_spec q;
	struct query_plan *p;
	struct cg_err err;
	size_t g, s, i;
	int64_t before[64][3];
	static const int64_t extremes[] = { INT64_MAX, INT64_MIN, 1000000000, -1000000000, 1001, -51, 0 };

	spec_init(&q);
	q.group_by[q.ngroup++] = "age";
	q.group_by[q.ngroup++] = "region";
	CHECK_EQ_INT(query_metric_parse("count", &q.metrics[q.nmetrics++], &err), 0);
	CHECK_EQ_INT(query_metric_parse("sum:k_spend", &q.metrics[q.nmetrics++], &err), 0);
	CHECK_EQ_INT(query_metric_parse("mean:g_watch", &q.metrics[q.nmetrics++], &err), 0);
	if ((p = plan(&q)) == NULL)
		return;
	/* (12 age bands 10-19 .. 120-129, and '*') x (North, South, Other, and '*'), before any data. */
	CHECK_EQ_INT(query_plan_groups(p), 52);
	CHECK_EQ_INT(query_plan_stats(p), 3);
	for (i = 0; i < 30; i++)
		add(p, 20 + (int64_t)(i % 10), i % 2 ? "A" : "B", (int64_t)(i * 10), "x", (int64_t)i);
	add(p, 45, "Q", 5, "y", 1);                     /* region outside the map: Other */
	add(p, 500, "A", 7, "y", 1);                    /* age outside the declared 13..120: '*', not an error */
	CHECK_EQ_INT(query_plan_groups(p), 52);       /* the data never adds a public key */
	CHECK_EQ_INT(query_plan_exact(p, group_of(20, 0), 0), 15);
	CHECK_EQ_INT(query_plan_exact(p, group_of(20, 1), 0), 15);
	CHECK_EQ_INT(query_plan_exact(p, group_of(45, 2), 0), 1);
	CHECK_EQ_INT(query_plan_exact(p, group_of(45, 2), 1), 5);
	CHECK_EQ_INT(query_plan_exact(p, group_of(60, 0), 0), 0);
	CHECK_EQ_INT(query_plan_exact(p, 12 * 4 + 0, 0), 1);      /* ('*', North) */
	CHECK_EQ_INT(query_plan_exact(p, 12 * 4 + 0, 1), 7);

	/* One subject with extreme values moves one count by 1 and each sum by at most its bound. */
	for (i = 0; i < sizeof(extremes) / sizeof(extremes[0]); i++) {
		for (g = 0; g < 52; g++)
			for (s = 0; s < 3; s++)
				before[g][s] = query_plan_exact(p, g, s);
		add(p, 120, "A", extremes[i], "z", extremes[i]);
		for (g = 0; g < 52; g++) {
			int64_t dc = query_plan_exact(p, g, 0) - before[g][0];
			int64_t ds = query_plan_exact(p, g, 1) - before[g][1];
			int64_t dw = query_plan_exact(p, g, 2) - before[g][2];
			if (g == group_of(120, 0)) {
				CHECK_EQ_INT(dc, 1);
				CHECK(ds >= 0 && ds <= 1000);     /* spend clamped to [0, 1000] */
				CHECK(dw >= -50 && dw <= 100);    /* watch clamped to [-50, 100] */
			} else {
				CHECK_EQ_INT(dc, 0);
				CHECK_EQ_INT(ds, 0);
				CHECK_EQ_INT(dw, 0);
			}
		}
	}
	CHECK_EQ_INT(query_plan_exact(p, group_of(120, 0), 1), 1000 + 0 + 1000 + 0 + 1000 + 0 + 0);
	CHECK_EQ_INT(query_plan_exact(p, group_of(120, 0), 2), 100 - 50 + 100 - 50 + 100 - 50 + 0);
	query_plan_free(p);
}

/* Phi, the standard normal distribution function. */
static double
phi(double x)
{
	return 0.5 * erfc(-x / sqrt(2));
}

static void
test_noise_and_differencing(void)
{
	struct query_spec q;
	struct query_plan *d0, *d1;
	struct cg_err err;
	int64_t rho = 0;
	double delta, sum = 0, sq = 0, sigma2, bound, acc;
	int part = -1, trials = 1500, right = 0, t, released_ok = 1;
	size_t g, G = group_of(30, 0);

	spec_init(&q);
	q.group_by[q.ngroup++] = "age";
	q.group_by[q.ngroup++] = "region";
	CHECK_EQ_INT(query_metric_parse("count", &q.metrics[q.nmetrics++], &err), 0);
	q.rho_nano = BUDGET_NANO / 2;                 /* rho 0.5, one statistic: sigma^2 = 1/(2 rho) = 1 */
	if ((d0 = plan(&q)) == NULL || (d1 = plan(&q)) == NULL)
		return;
	for (t = 0; t < 40; t++) {
		add(d0, 30, "A", 1, "x", 1);
		add(d1, 30, "A", 1, "x", 1);
	}
	add(d1, 31, "A", 1, "x", 1);                  /* D' = D plus one user */
	/* Without noise the attack is certain: the counts differ by exactly one. */
	CHECK_EQ_INT(query_plan_exact(d1, G, 0) - query_plan_exact(d0, G, 0), 1);
	CHECK_EQ_INT(query_plan_cost(d0, &rho, &part, &delta, &err), 0);
	CHECK_EQ_INT(query_plan_cost(d1, &rho, &part, &delta, &err), 0);
	CHECK_EQ_INT(rho, BUDGET_NANO / 2);
	CHECK_EQ_INT(part, 0);
	sigma2 = 1.0;
	for (t = 0; t < trials; t++) {
		struct query_plan *pd = (t & 1) ? d1 : d0;
		int64_t noisy;

		CHECK_EQ_INT(query_plan_release(pd, &err), 0);
		noisy = query_plan_noisy(pd, G, 0);
		/* the attacker's best test: is the count above the midpoint? */
		if ((noisy >= 41) == (pd == d1))
			right++;
		sum += (double)(noisy - query_plan_exact(pd, G, 0));
		sq += (double)(noisy - query_plan_exact(pd, G, 0)) * (double)(noisy - query_plan_exact(pd, G, 0));
		for (g = 0; g < query_plan_groups(pd); g++)
			if (query_plan_released(pd, g) != (query_plan_noisy(pd, g, 0) >= 20))
				released_ok = 0;
	}
	CHECK(released_ok);                           /* withheld exactly below the threshold of 20 */
	/* The noise is centred with the calibrated variance (discrete Gaussian, sigma^2 = 1: within 15%). */
	CHECK(fabs(sum / trials) < 6 * sqrt(sigma2 / trials));
	CHECK(fabs(sq / trials / sigma2 - 1) < 0.15);
	/*
	 * A test between neighbours under Gaussian noise of sigma 1 is right with
	 * probability at most Phi(1 / (2 sigma)) ~ 0.69 (a discrete Gaussian is a
	 * little kinder still): allow 4 standard errors, and insist the attack
	 * is not hopeless either (the noise is calibrated, not inflated).
	 */
	acc = (double)right / trials;
	bound = phi(1 / (2 * sqrt(sigma2))) + 4 * sqrt(0.25 / trials);
	if (acc > bound || acc < 0.55)
		fprintf(stderr, "differencing: attacker right %.3f of the time (bound %.3f)\n", acc, bound);
	CHECK(acc <= bound);
	CHECK(acc >= 0.55);
	query_plan_free(d0);
	query_plan_free(d1);
}

static void
test_partition_selection(void)
{
	struct query_spec q;
	struct query_plan *p;
	struct cg_err err;
	int64_t rho = 0;
	double delta = 0;
	int part = 0;

	/* k_tag is not public: keys come from the data, released only past a noisy threshold. */
	spec_init(&q);
	q.group_by[q.ngroup++] = "k_tag";
	CHECK_EQ_INT(query_metric_parse("count", &q.metrics[q.nmetrics++], &err), 0);
	if ((p = plan(&q)) == NULL)
		return;
	CHECK_EQ_INT(query_plan_groups(p), 0);
	add(p, 30, "A", 1, "x", 1);                    /* tag t0 */
	add(p, 31, "A", 1, "x", 1);                    /* tag t1 */
	CHECK_EQ_INT(query_plan_groups(p), 2);
	CHECK_EQ_INT(query_plan_cost(p, &rho, &part, &delta, &err), 0);
	CHECK_EQ_INT(part, 1);
	CHECK_EQ_INT(rho, POLICY_QUERY_RHO_DEFAULT);
	/* rho 0.05: sigma^2 = 10; a lone subject's key reaches 20 with P(N >= 19) ~ 1e-9, within the policy's 1e-6. */
	CHECK(delta > 0 && delta < pol->privacy.partition_delta);
	query_plan_free(p);

	/* A small rho makes a lone key likely to show: the delta grows past the policy's 1e-6. */
	q.rho_nano = 1000000;                           /* rho 0.001: sigma^2 = 500 */
	if ((p = plan(&q)) == NULL)
		return;
	CHECK_EQ_INT(query_plan_cost(p, &rho, &part, &delta, &err), 0);
	CHECK(delta > pol->privacy.partition_delta);
	query_plan_free(p);
}

static void
test_histogram_laplace_and_errors(void)
{
	struct query_spec q;
	struct query_plan *p;
	struct cg_err err;
	int64_t rho = 0;
	double delta;
	int part;

	spec_init(&q);
	CHECK_EQ_INT(query_metric_parse("histogram:k_spend", &q.metrics[q.nmetrics++], &err), 0);
	q.buckets = 4;
	q.epsilon_nano = BUDGET_NANO;                   /* epsilon 1: charged rho 0.5 */
	if ((p = plan(&q)) != NULL) {
		CHECK_EQ_INT(query_plan_groups(p), 5);      /* 0-250, 251-501, 502-752, 753-1000, and '*' */
		add(p, 30, "A", -7, "x", 1);                /* clamped into the first range */
		add(p, 30, "A", 999999, "x", 1);            /* clamped into the last */
		CHECK_EQ_INT(query_plan_exact(p, 0, 0), 1);
		CHECK_EQ_INT(query_plan_exact(p, 3, 0), 1);
		CHECK_EQ_INT(query_plan_cost(p, &rho, &part, &delta, &err), 0);
		CHECK_EQ_INT(rho, BUDGET_NANO / 2);
		CHECK_EQ_INT(query_plan_release(p, &err), 0);
		query_plan_free(p);
	}

	/* Refusals name the problem. */
	spec_init(&q);
	CHECK_EQ_INT(query_metric_parse("sum:g_minutes", &q.metrics[q.nmetrics++], &err), 0);
	CHECK(query_plan_make(&q, &jw, &p, &err) == CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "column 'g_minutes' has no bounds in the policy");
	spec_init(&q);
	q.group_by[q.ngroup++] = "k_spend";
	CHECK_EQ_INT(query_metric_parse("count", &q.metrics[q.nmetrics++], &err), 0);
	CHECK(query_plan_make(&q, &jw, &p, &err) == CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "use --metric histogram:k_spend");
	spec_init(&q);
	q.group_by[q.ngroup++] = "k_email";
	CHECK_EQ_INT(query_metric_parse("count", &q.metrics[q.nmetrics++], &err), 0);
	CHECK(query_plan_make(&q, &jw, &p, &err) == CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "no column 'k_email'");
	spec_init(&q);
	q.purpose = "telepathy";
	CHECK(query_plan_make(&q, &jw, &p, &err) == CG_ERR_POLICY);
	CHECK(query_metric_parse("median:k_spend", &q.metrics[0], &err) == CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "bad metric");
	CHECK(query_metric_parse("sum:", &q.metrics[0], &err) == CG_ERR_ARG);
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	char *text;
	size_t cap;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	cap = sizeof(policy_fmt) + 2 * KEYFILE_LINE_MAX;
	if ((text = malloc(cap)) == NULL)
		return 1;
	snprintf(text, cap, policy_fmt, w.kline, w.gline);
	if (policy_parse("query-test.yaml", text, strlen(text), &pol, NULL, &err) != 0) {
		fprintf(stderr, "policy: %s\n", err.msg);
		return 1;
	}
	free(text);
	memset(&jw, 0, sizeof(jw));
	jw.side[0] = policy_partner_find(pol, "k");
	jw.side[1] = policy_partner_find(pol, "g");

	test_public_domain_and_bounding();
	test_noise_and_differencing();
	test_partition_selection();
	test_histogram_laplace_and_errors();

	policy_free(pol);
	world_free(&w);
	CGT_DONE();
}
