/*
 * test_join.c - the join's privacy unit, on records built in memory:
 *
 *  - property: over random small worlds whose people share phones, removing
 *    one person's rows (at both partners) moves no count or sum, before
 *    noise, by more than the sensitivity the query charges
 *    (join_sensitivity), in L1 or L2, and moves at most JOIN_PERSON_SUBJECTS
 *    subjects; twins (two people who give a partner only the same phone)
 *    move at most one subject out and one in;
 *  - the measured attack: a person Q with A's phone leaves A's subject alone;
 *  - shared phones never pair people whose emails disagree, and a phone
 *    shared by two candidates pairs nobody;
 *  - the hash tables are keyed: tokens that share any prefix cost linear
 *    work, counted in probes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "gateway/join.h"
#include "gateway/query.h"

static struct policy *pol;
static uint32_t bit_analytics;

static const char policy_fmt[] =
    "version: 1\n"
    "name: join-test\n"
    "default_phone_country: CN\n"
    "purposes: [match, analytics]\n"
    "partners:\n"
    "  - id: k\n"
    "    name: K\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: phone, type: string, role: identifier, kind: phone}\n"
    "      - {name: age, type: int, min: 13, max: 120, role: quasi_identifier, generalize: {band: 10},\n"
    "         public: true}\n"
    "      - {name: region, type: string, role: quasi_identifier, public: true,\n"
    "         generalize: {map: {A: North, B: South}, other: Other}}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: spend, type: int, role: feature, bounds: [0, 1000]}\n"
    "  - id: g\n"
    "    name: G\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: phone, type: string, role: identifier, kind: phone}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: watch, type: int, role: feature, bounds: [-50, 100]}\n"
    "privacy: {threshold: 20}\n"
    "principals:\n"
    "  - {name: analyst, role: analyst, identity: \"crossgate:analyst:a\", purposes: [analytics]}\n";

#define SPEND_BOUND 1000
#define WATCH_BOUND 100

/* A test RNG (splitmix64): reproducible worlds, nothing secret. */
static uint64_t rng_state = 12;

static uint64_t
rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t
below(uint32_t n)
{
	return (uint32_t)(rng() % n);
}

/* A token: the kind, then the value; the join only compares them. */
static void
tok_make(unsigned char out[TOKEN_LEN], int kind, uint32_t v)
{
	memset(out, 0, TOKEN_LEN);
	out[0] = (unsigned char)kind;
	memcpy(out + 1, &v, sizeof(v));
}

/* One stored record with its payload. */
struct trec {
	struct store_ref ref;
	Crossgate__Field f[3], *fp[3];
	Crossgate__RecordPayload pl;
	char region[4];
};

#define MAX_PEOPLE 14
#define MAX_REC (MAX_PEOPLE * 2)

/* A person: one email of their own, one phone anyone may share; at each partner some of the two. */
struct person {
	uint32_t email, phone;
	int ids[2];                          /* 0 absent; 1 email, 2 phone, 3 both */
	int nver[2];
	int64_t at[2][2];
	uint32_t consent[2][2];
	int64_t age[2], spend[2], watch[2];
	int region[2];
};

struct tworld {
	struct trec rec[2][MAX_REC];
	size_t n[2];
};

static void
field_int(struct trec *t, const char *name, int64_t v)
{
	Crossgate__Field *f = &t->f[t->pl.n_fields];

	crossgate__field__init(f);
	f->name = (char *)name;
	f->value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
	f->int_value = v;
	t->fp[t->pl.n_fields++] = f;
}

static void
field_str(struct trec *t, const char *name, const char *v)
{
	Crossgate__Field *f = &t->f[t->pl.n_fields];

	crossgate__field__init(f);
	f->name = (char *)name;
	f->value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
	f->str_value = (char *)v;
	t->fp[t->pl.n_fields++] = f;
}

/* Record ids are a function of (person, side, version): the same in a world with and without someone. */
static void
world_build(struct tworld *w, const struct person *pp, size_t np, size_t skip)
{
	size_t i;
	int s, v;

	memset(w, 0, sizeof(*w));
	for (i = 0; i < np; i++) {
		if (i == skip)
			continue;
		for (s = 0; s < 2; s++) {
			for (v = 0; v < pp[i].nver[s] && pp[i].ids[s] != 0; v++) {
				struct trec *t = &w->rec[s][w->n[s]++];
				t->ref.id = (int64_t)(i * 8 + (size_t)s * 4 + (size_t)v + 1);
				t->ref.consent_at = pp[i].at[s][v];
				t->ref.consent_bits = pp[i].consent[s][v];
				t->ref.has_email = (pp[i].ids[s] & 1) != 0;
				t->ref.has_phone = (pp[i].ids[s] & 2) != 0;
				if (t->ref.has_email)
					tok_make(t->ref.email, 1, pp[i].email);
				if (t->ref.has_phone)
					tok_make(t->ref.phone, 2, pp[i].phone);
				crossgate__record_payload__init(&t->pl);
				t->pl.fields = t->fp;
				/* Each version its own values: which one wins must show in the sums. */
				if (s == 0) {
					field_int(t, "age", pp[i].age[v]);
					snprintf(t->region, sizeof(t->region), "%c", "ABC"[pp[i].region[v]]);
					field_str(t, "region", t->region);
					field_int(t, "spend", pp[i].spend[v]);
				} else {
					field_int(t, "watch", pp[i].watch[v]);
				}
			}
		}
	}
}

/* The policy's phone_matching: never for the joins below (test_property's second run). */
static int phone_never;

/* The join of a world: refs copied out (join_free frees them). */
static int
world_join(const struct tworld *w, struct join *j)
{
	struct cg_err err;
	int s;
	size_t i;

	memset(j, 0, sizeof(*j));
	j->no_phone_stage = phone_never;
	j->side[0] = policy_partner_find(pol, "k");
	j->side[1] = policy_partner_find(pol, "g");
	for (s = 0; s < 2; s++) {
		j->nref[s] = w->n[s];
		if ((j->refs[s] = calloc(w->n[s] + 1, sizeof(struct store_ref))) == NULL)
			return -1;
		for (i = 0; i < w->n[s]; i++)
			j->refs[s][i] = w->rec[s][i].ref;
	}
	if (join_pairs(j, &err) != 0) {
		fprintf(stderr, "join: %s\n", err.msg);
		join_free(j);
		return -1;
	}
	return 0;
}

/* The subjects of a join that consent to analytics, as (left id, right id), and their payloads. */
struct subjects {
	int64_t id[MAX_REC][2];
	Crossgate__RecordPayload *pl[MAX_REC][2];
	size_t n;
};

static void
subjects_of(const struct tworld *w, const struct join *j, struct subjects *out)
{
	size_t i;

	out->n = 0;
	for (i = 0; i < j->nref[0]; i++) {
		const struct trec *l, *r;
		if (j->pair[i] == JOIN_NONE)
			continue;
		l = &w->rec[0][i];
		r = &w->rec[1][j->pair[i]];
		if (!(l->ref.consent_bits & bit_analytics) || !(r->ref.consent_bits & bit_analytics))
			continue;
		out->id[out->n][0] = l->ref.id;
		out->id[out->n][1] = r->ref.id;
		out->pl[out->n][0] = (Crossgate__RecordPayload *)&l->pl;
		out->pl[out->n][1] = (Crossgate__RecordPayload *)&r->pl;
		out->n++;
	}
}

/* Subjects of a that b lacks (a subject whose payload changed counts in both directions). */
static size_t
subjects_missing(const struct subjects *a, const struct subjects *b)
{
	size_t i, k, n = 0;

	for (i = 0; i < a->n; i++) {
		for (k = 0; k < b->n; k++)
			if (a->id[i][0] == b->id[k][0] && a->id[i][1] == b->id[k][1])
				break;
		n += k == b->n;
	}
	return n;
}

static void
spec_init(struct query_spec *q)
{
	struct cg_err err;

	memset(q, 0, sizeof(*q));
	q->pol = pol;
	q->purpose = "analytics";
	q->analyst = policy_principal_by_name(pol, "analyst");
	q->group_by[q->ngroup++] = "age";
	q->group_by[q->ngroup++] = "region";
	if (query_metric_parse("count", &q->metrics[q->nmetrics++], &err) != 0 ||
	    query_metric_parse("sum:k_spend", &q->metrics[q->nmetrics++], &err) != 0 ||
	    query_metric_parse("sum:g_watch", &q->metrics[q->nmetrics++], &err) != 0)
		world_die("metrics", &err);
}

#define NSTATS 3
#define MAX_GROUPS 64

/* The exact (noiseless) statistics of the subjects: exact[g][s]. */
static int
aggregate(const struct join *j, const struct subjects *sub, int64_t exact[MAX_GROUPS][NSTATS], size_t *ngroups)
{
	struct query_spec q;
	struct query_plan *p = NULL;
	struct cg_err err;
	size_t i, g;
	int s;

	spec_init(&q);
	if (query_plan_make(&q, j, &p, &err) != 0) {
		fprintf(stderr, "plan: %s\n", err.msg);
		return -1;
	}
	for (i = 0; i < sub->n; i++)
		if (query_plan_add(p, sub->pl[i], &err) != 0) {
			query_plan_free(p);
			return -1;
		}
	*ngroups = query_plan_groups(p);
	if (*ngroups > MAX_GROUPS || query_plan_stats(p) != NSTATS) {
		query_plan_free(p);
		return -1;
	}
	for (g = 0; g < *ngroups; g++)
		for (s = 0; s < NSTATS; s++)
			exact[g][s] = query_plan_exact(p, g, (size_t)s);
	query_plan_free(p);
	return 0;
}

static void
person_random(struct person *p, uint32_t email, uint32_t nphones)
{
	int s, v;

	memset(p, 0, sizeof(*p));
	p->email = email;
	p->phone = below(nphones);           /* few phones for many people: they collide */
	for (s = 0; s < 2; s++) {
		uint32_t u = below(10);
		p->ids[s] = u < 2 ? 0 : u < 5 ? 3 : u < 8 ? 1 : 2;
		p->nver[s] = 1 + (int)below(2);
		for (v = 0; v < 2; v++) {
			p->at[s][v] = (int64_t)below(5);      /* ties too: the later record wins them */
			p->consent[s][v] = 1u | (below(6) != 0 ? bit_analytics : 0);
		}
	}
	for (v = 0; v < 2; v++) {
		p->age[v] = 13 + below(100);
		p->region[v] = (int)below(3);
		p->spend[v] = below(SPEND_BOUND + 1);
		p->watch[v] = (int64_t)below(151) - 50;
	}
}

/* Does q give some partner only a phone that another person there gives alone too? */
static int
person_twin(const struct person *pp, size_t np, size_t q)
{
	size_t i;
	int s;

	for (s = 0; s < 2; s++)
		for (i = 0; i < np; i++)
			if (i != q && pp[q].ids[s] == 2 && pp[i].ids[s] == 2 && pp[i].phone == pp[q].phone)
				return 1;
	return 0;
}

/* What one trial measured. */
struct delta {
	size_t removed, added;
	double l1[NSTATS], l2[NSTATS];
};

static int
trial(const struct person *pp, size_t np, size_t q, struct delta *d)
{
	static struct tworld w[2];
	struct join j[2];
	struct subjects sub[2];
	static int64_t ex[2][MAX_GROUPS][NSTATS];
	size_t ng[2], g;
	int k, s, r = -1;

	memset(j, 0, sizeof(j));
	world_build(&w[0], pp, np, SIZE_MAX);
	world_build(&w[1], pp, np, q);
	for (k = 0; k < 2; k++)
		if (world_join(&w[k], &j[k]) != 0)
			goto out;
	for (k = 0; k < 2; k++) {
		subjects_of(&w[k], &j[k], &sub[k]);
		if (aggregate(&j[k], &sub[k], ex[k], &ng[k]) != 0)
			goto out;
	}
	if (ng[0] != ng[1])
		goto out;
	d->removed = subjects_missing(&sub[0], &sub[1]);
	d->added = subjects_missing(&sub[1], &sub[0]);
	for (s = 0; s < NSTATS; s++) {
		double l1 = 0, l2 = 0;
		for (g = 0; g < ng[0]; g++) {
			double x = (double)(ex[0][g][s] - ex[1][g][s]);
			l1 += fabs(x);
			l2 += x * x;
		}
		d->l1[s] = l1;
		d->l2[s] = sqrt(l2);
	}
	r = 0;
out:
	join_free(&j[0]);
	join_free(&j[1]);
	return r;
}

/*
 * Random worlds of 2..MAX_PEOPLE people and few phones; remove one random
 * person.  Every statistic must move by at most what is charged for it
 * (twins: what the group privacy of two allows).  Run with the default
 * rule, then with phone_matching: never (emails only: removing a person can
 * only remove their subject).
 */
static void
test_property(int never)
{
	static const uint64_t bound[NSTATS] = { 1, SPEND_BOUND, WATCH_BOUND };
	struct person pp[MAX_PEOPLE];
	struct delta d, worst[2];
	size_t trials = 20000, t, i, fails = 0, ntwin = 0;
	int s;

	memset(worst, 0, sizeof(worst));
	phone_never = never;
	for (t = 0; t < trials; t++) {
		size_t np = 2 + below(MAX_PEOPLE - 1), q = below((uint32_t)np);
		uint32_t nphones = 1 + below((uint32_t)np);
		int bad = 0, twin;
		struct delta *w;

		for (i = 0; i < np; i++)
			person_random(&pp[i], (uint32_t)i, nphones);
		if (trial(pp, np, q, &d) != 0) {
			CHECK(!"trial could not run");
			return;
		}
		twin = person_twin(pp, np, q);
		ntwin += (size_t)twin;
		w = &worst[twin];
		for (s = 0; s < NSTATS; s++) {
			/* twins: two people's charge, and L2 of one subject out and one in */
			double l1 = (double)join_sensitivity(bound[s]) * (twin ? JOIN_TWIN_SUBJECTS : 1);
			double l2 = twin ? sqrt((double)JOIN_TWIN_SUBJECTS) * (double)bound[s] : (double)join_sensitivity(bound[s]);
			if (d.l1[s] > l1 + 1e-9 || d.l2[s] > l2 + 1e-9)
				bad = 1;
			if (d.l1[s] > w->l1[s])
				w->l1[s] = d.l1[s];
			if (d.l2[s] > w->l2[s])
				w->l2[s] = d.l2[s];
		}
		if (twin ? d.removed > 1 || d.added > 1 : d.removed + d.added > JOIN_PERSON_SUBJECTS)
			bad = 1;
		w->removed = d.removed > w->removed ? d.removed : w->removed;
		w->added = d.added > w->added ? d.added : w->added;
		if (bad && fails++ == 0) {
			/* The first counterexample, whole: enough to replay it by hand. */
			fprintf(stderr, "counterexample (trial %zu): %zu people, person %zu removed%s: %zu subjects removed "
			    "or changed, %zu added; count moved L1 %.0f, spend L1 %.0f\n", t, np, q, twin ? " (a twin)" : "",
			    d.removed, d.added, d.l1[0], d.l1[1]);
			for (i = 0; i < np; i++)
				fprintf(stderr, "  person %zu: email e%u phone p%u; k ids %d x%d, g ids %d x%d\n", i,
				    pp[i].email, pp[i].phone, pp[i].ids[0], pp[i].nver[0], pp[i].ids[1], pp[i].nver[1]);
		}
	}
	phone_never = 0;
	for (i = 0; i < 2; i++)
		printf("property%s (%s): worst %zu removed, %zu added, count L1 %.0f L2 %.3f, spend L1 %.0f L2 %.1f, "
		    "watch L1 %.0f L2 %.1f\n", never ? ", phone_matching never" : "", i ? "twins" : "people", worst[i].removed, worst[i].added, worst[i].l1[0],
		    worst[i].l2[0], worst[i].l1[1], worst[i].l2[1], worst[i].l1[2], worst[i].l2[2]);
	printf("property: %zu trials (%zu twins), %zu over the charge (%llu, %llu, %llu)\n", trials, ntwin, fails,
	    (unsigned long long)join_sensitivity(1), (unsigned long long)join_sensitivity(SPEND_BOUND),
	    (unsigned long long)join_sensitivity(WATCH_BOUND));
	CHECK_EQ_INT(fails, 0);
	/* The test has power: the worlds reach the bounds, and twins do occur. */
	CHECK(ntwin > trials / 100);
	CHECK(worst[0].l1[1] > SPEND_BOUND / 2);
	if (never) {
		/* no phone stage: no pair to reshuffle, a removal only removes */
		CHECK(worst[0].removed == 1 && worst[0].added == 0);
		CHECK(worst[1].removed <= 1 && worst[1].added == 0);
		return;
	}
	CHECK(worst[0].removed == 1 && worst[0].added == 1);
	CHECK(worst[1].removed == 1 && worst[1].added == 1);
}

/* A hand-made world: records (side, email or 0, phone or 0, consent_at, spend/watch). */
struct hrec {
	int side;
	uint32_t email, phone;
	int64_t at, value;
};

static void
hand_world(struct tworld *w, const struct hrec *h, size_t n)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	for (i = 0; i < n; i++) {
		struct trec *t = &w->rec[h[i].side][w->n[h[i].side]++];
		t->ref.id = (int64_t)i + 1;
		t->ref.consent_at = h[i].at;
		t->ref.consent_bits = 1u | bit_analytics;
		t->ref.has_email = h[i].email != 0;
		t->ref.has_phone = h[i].phone != 0;
		tok_make(t->ref.email, 1, h[i].email);
		tok_make(t->ref.phone, 2, h[i].phone);
		crossgate__record_payload__init(&t->pl);
		t->pl.fields = t->fp;
		if (h[i].side == 0) {
			field_int(t, "age", 30);
			field_str(t, "region", "A");
			field_int(t, "spend", h[i].value);
		} else {
			field_int(t, "watch", h[i].value);
		}
	}
}

/* The subjects' spend values (left payload), ascending, as text: "111 222". */
static void
hand_spends(const struct hrec *h, size_t n, char *out, size_t size, struct join *jout)
{
	static struct tworld w;
	struct join j;
	struct subjects sub;
	int64_t v[MAX_REC];
	size_t i, k, len = 0;

	out[0] = '\0';
	hand_world(&w, h, n);
	if (world_join(&w, &j) != 0)
		return;
	subjects_of(&w, &j, &sub);
	for (i = 0; i < sub.n; i++)
		v[i] = sub.pl[i][0]->fields[2]->int_value;
	for (i = 1; i < sub.n; i++)
		for (k = i; k > 0 && v[k - 1] > v[k]; k--) {
			int64_t t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	for (i = 0; i < sub.n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%lld", i ? " " : "", (long long)v[i]);
	if (jout != NULL)
		*jout = j;
	else
		join_free(&j);
}

/*
 * The measured attack: Q gives A's phone.  The previous rule merged A's and
 * Q's K records over the phone, kept Q's newer one, and the spends went from
 * "111 222" to "222 999": A's subject out, Q's in.  Now Q's subject is the
 * only change.
 */
static void
test_attack(void)
{
	static const struct hrec h[] = {
		{ 0, 1, 7, 10, 111 }, { 1, 1, 7, 10, 11 },     /* A: a@ and phone 7 at both */
		{ 0, 2, 0, 10, 222 }, { 1, 2, 0, 10, 22 },     /* B */
		{ 0, 3, 7, 20, 999 }, { 1, 3, 7, 20, 99 },     /* Q: q@ and A's phone, newer */
	};
	char out[64];

	hand_spends(h, 4, out, sizeof(out), NULL);
	CHECK_STR(out, "111 222");
	hand_spends(h, 6, out, sizeof(out), NULL);
	CHECK_STR(out, "111 222 999");
}

/* A hand-made world's subjects (their spends) and its ambiguous and superseded counts. */
static void
expect(const struct hrec *h, size_t n, const char *spends, uint64_t ambiguous, uint64_t superseded)
{
	struct join j;
	char out[64];

	hand_spends(h, n, out, sizeof(out), &j);
	CHECK_STR(out, spends);
	CHECK_EQ_INT(j.ambiguous, ambiguous);
	CHECK_EQ_INT(j.superseded, superseded);
	join_free(&j);
}

/* When a phone pairs, when it does not, and what is counted. */
static void
test_phone_rules(void)
{
	/* A is phone-only at K; B and C share A's phone but are paired by their emails. */
	static const struct hrec family[] = {
		{ 0, 0, 5, 10, 100 }, { 1, 1, 5, 10, 1 },
		{ 0, 2, 5, 10, 200 }, { 1, 2, 5, 10, 2 },
		{ 0, 3, 5, 10, 300 }, { 1, 3, 0, 10, 3 },
	};
	/* Two emails never pair on a shared phone. */
	static const struct hrec disagree[] = { { 0, 1, 5, 10, 100 }, { 1, 2, 5, 10, 1 } };
	/* One phone-only K user, two G users with its phone and their own emails: which one? Nobody. */
	static const struct hrec twoc[] = { { 0, 0, 5, 10, 100 }, { 1, 1, 5, 10, 1 }, { 1, 2, 5, 10, 2 } };
	/* A K user who gave two phones could pair once per phone: it pairs by neither. */
	static const struct hrec twop[] = {
		{ 0, 1, 5, 10, 100 }, { 0, 1, 6, 11, 101 }, { 1, 0, 5, 10, 1 }, { 1, 0, 6, 10, 2 },
	};
	/* Versions: the newer record of a user is its subject's, whatever the order. */
	static const struct hrec versions[] = {
		{ 0, 1, 0, 30, 130 }, { 0, 1, 0, 20, 120 }, { 1, 1, 0, 10, 1 },
		{ 0, 0, 4, 10, 110 }, { 0, 0, 4, 40, 140 }, { 1, 0, 4, 10, 2 },
	};

	expect(family, 6, "100 200 300", 3, 0);     /* B, C: email pairs whose phone others carry too */
	expect(disagree, 2, "", 0, 0);
	expect(twoc, 3, "", 1, 0);
	expect(twop, 4, "", 2, 1);
	expect(versions, 6, "130 140", 0, 2);
}

/*
 * Keyed hashing: tokens a partner makes alike in their first 24 bytes (any
 * fixed slice of them would do) cost the tables what random tokens cost,
 * counted in probes: linear in the records.
 */
static void
test_probes(void)
{
	static const size_t n = 40000;
	struct join j;
	struct cg_err err;
	uint64_t probes[2];
	size_t i;
	int alike, s;

	for (alike = 0; alike < 2; alike++) {
		memset(&j, 0, sizeof(j));
		for (s = 0; s < 2; s++) {
			j.nref[s] = n;
			if ((j.refs[s] = calloc(n, sizeof(struct store_ref))) == NULL)
				return;
			for (i = 0; i < n; i++) {
				struct store_ref *r = &j.refs[s][i];
				uint64_t v = i;
				r->id = (int64_t)i + 1;
				r->has_email = r->has_phone = 1;
				memset(r->email, 0x41, TOKEN_LEN);
				memset(r->phone, 0x42, TOKEN_LEN);
				if (!alike)      /* random-looking, the same on both sides */
					crypto_generichash(r->email, 24, (const unsigned char *)&v, sizeof(v), NULL, 0);
				memcpy(r->email + 24, &v, sizeof(v));
				memcpy(r->phone + 24, &v, sizeof(v));
			}
		}
		CHECK_EQ_INT(join_pairs(&j, &err), 0);
		probes[alike] = j.probes;
		CHECK_EQ_INT(j.matched, n);
		join_free(&j);
	}
	printf("probes: %llu for %zu records with random tokens, %llu with tokens alike in 24 bytes\n",
	    (unsigned long long)probes[0], 2 * n, (unsigned long long)probes[1]);
	/* A few probes a record, either way (a quadratic table would take about n^2/2 = 8e8). */
	CHECK(probes[0] < 20 * 2 * n);
	CHECK(probes[1] < 20 * 2 * n);
	CHECK(probes[1] < 2 * probes[0]);
}

/*
 * The pairing on several threads is the pairing on one: a world of many
 * people with few phones (so the phone stage pairs, and finds ambiguity),
 * joined on 1 and on 2, 3 and 8 threads, gives the same pairs and counters.
 */
static void
test_threads(void)
{
	static const size_t np = 40000;
	static const unsigned nth[] = { 1, 2, 3, 8 };
	struct join j[4];
	struct cg_err err;
	struct person p;
	size_t i, t;
	int s, v;

	memset(j, 0, sizeof(j));
	for (t = 0; t < 4; t++) {
		j[t].threads = nth[t];
		for (s = 0; s < 2; s++)
			if ((j[t].refs[s] = calloc(np * 2 + 1, sizeof(struct store_ref))) == NULL)
				return;
	}
	rng_state = 99;
	for (i = 0; i < np; i++) {
		person_random(&p, (uint32_t)i, (uint32_t)(np / 2));
		for (s = 0; s < 2; s++)
			for (v = 0; v < p.nver[s] && p.ids[s] != 0; v++) {
				struct store_ref r;
				memset(&r, 0, sizeof(r));
				r.id = (int64_t)(i * 8 + (size_t)s * 4 + (size_t)v + 1);
				r.consent_at = p.at[s][v];
				r.consent_bits = p.consent[s][v];
				r.has_email = (p.ids[s] & 1) != 0;
				r.has_phone = (p.ids[s] & 2) != 0;
				if (r.has_email)
					tok_make(r.email, 1, p.email);
				if (r.has_phone)
					tok_make(r.phone, 2, p.phone);
				for (t = 0; t < 4; t++)
					j[t].refs[s][j[t].nref[s]++] = r;
			}
	}
	for (t = 0; t < 4; t++)
		CHECK_EQ_INT(join_pairs(&j[t], &err), 0);
	printf("threads: %llu pairs, %llu ambiguous, %llu superseded over %zu + %zu records\n",
	    (unsigned long long)j[0].matched, (unsigned long long)j[0].ambiguous,
	    (unsigned long long)j[0].superseded, j[0].nref[0], j[0].nref[1]);
	CHECK(j[0].matched > np / 4);
	CHECK(j[0].ambiguous > 100);
	for (t = 1; t < 4; t++) {
		CHECK_EQ_INT(j[t].matched, j[0].matched);
		CHECK_EQ_INT(j[t].ambiguous, j[0].ambiguous);
		CHECK_EQ_INT(j[t].superseded, j[0].superseded);
		CHECK(memcmp(j[t].pair, j[0].pair, j[0].nref[0] * sizeof(*j[0].pair)) == 0);
	}
	for (t = 0; t < 4; t++)
		join_free(&j[t]);
}

int
main(void)
{
	struct world w;
	int b;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	pol = world_policy_fmt(&w, "join-test.yaml", policy_fmt);
	if ((b = policy_purpose_bit(pol, "analytics")) < 0)
		return 1;
	bit_analytics = 1u << b;

	test_property(0);
	test_property(1);
	test_attack();
	test_phone_rules();
	test_probes();
	test_threads();

	policy_free(pol);
	world_free(&w);
	CGT_DONE();
}
