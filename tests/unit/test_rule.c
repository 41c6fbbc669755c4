/*
 * test_rule.c - audience rules (gateway/rule.h), the audience refusal noise
 * (gateway/audience.h) and the sealed delivery (crypto/delivery.h), apart
 * from the store: every malformed rule is refused with its offset and
 * reason, binding refuses what the policy does not allow, evaluation agrees
 * with the same predicate written in C on random subjects (precedence, not,
 * missing values), the canonical form and hash ignore spacing, the refusal
 * noise is fixed per digest and has the discrete Laplace's spread, and a
 * delivery opens only with its partner's key.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "crypto/delivery.h"
#include "gateway/audience.h"
#include "gateway/rule.h"

static struct policy *pol;
static struct join jw;
static struct join_col cols[JOIN_COLS_MAX];
static size_t ncols;

static const char policy_fmt[] =
    "version: 1\n"
    "name: rule-test\n"
    "default_phone_country: CN\n"
    "purposes: [match, analytics, marketing]\n"
    "partners:\n"
    "  - id: k\n"
    "    name: K\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: age, type: int, min: 13, max: 120, role: quasi_identifier, generalize: {band: 10}}\n"
    "      - {name: region, type: string, role: quasi_identifier,\n"
    "         generalize: {map: {A: North, B: South}, other: Other}}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: spend, type: int, role: feature}\n"
    "      - {name: cat, type: category, values: [x, y, z], role: feature}\n"
    "      - {name: tag, type: string, role: feature}\n"
    "      - {name: secret, type: int, role: feature, purposes: [analytics]}\n"
    "  - id: g\n"
    "    name: G\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: watch, type: int, role: feature}\n"
    "marketing: {min_audience: 500, receivers: [g], sources: [k, g]}\n";

struct subject {
	Crossgate__Field f[2][6], *fp[2][6];
	Crossgate__RecordPayload pl[2];
	Crossgate__RecordPayload *pp[2];
	/* the values, for the C predicates; has_* 0: the field is missing */
	int64_t age, spend, watch;
	int has_age, has_spend, has_watch, has_cat;
	char region[8];
	char cat[2];
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

/* A random subject; each field missing with probability 1/8. */
static void
subject_random(struct subject *s)
{
	static const char *const regions[] = { "A", "B", "C" };

	memset(s, 0, sizeof(*s));
	crossgate__record_payload__init(&s->pl[0]);
	crossgate__record_payload__init(&s->pl[1]);
	s->pl[0].fields = s->fp[0];
	s->pl[1].fields = s->fp[1];
	s->age = 13 + randombytes_uniform(60);
	s->spend = (int64_t)randombytes_uniform(2000) - 100;
	s->watch = randombytes_uniform(1200);
	snprintf(s->region, sizeof(s->region), "%s", regions[randombytes_uniform(3)]);
	s->cat[0] = (char)('x' + randombytes_uniform(3));
	if ((s->has_age = randombytes_uniform(8) != 0))
		field_int(s, 0, "age", s->age);
	field_str(s, 0, "region", s->region);
	if ((s->has_spend = randombytes_uniform(8) != 0))
		field_int(s, 0, "spend", s->spend);
	if ((s->has_cat = randombytes_uniform(8) != 0))
		field_str(s, 0, "cat", s->cat);
	if ((s->has_watch = randombytes_uniform(8) != 0))
		field_int(s, 1, "watch", s->watch);
	s->pp[0] = &s->pl[0];
	s->pp[1] = &s->pl[1];
}

static struct rule *
parse_bind(const char *text, struct cg_err *err)
{
	struct rule *r = NULL;

	if (rule_parse(text, strlen(text), &r, err) != 0)
		return NULL;
	if (rule_bind(r, cols, ncols, err) != 0) {
		rule_free(r);
		return NULL;
	}
	return r;
}

static void
test_parse_errors(void)
{
	static const struct { const char *rule, *msg; } bad[] = {
		{ "", "rule: empty" },
		{ "   ", "rule: empty" },
		{ "spend", "rule: offset 5: expected a comparison" },
		{ "spend >", "rule: offset 7: expected a value, found the end of the rule" },
		{ "k_spend >= 10 and", "rule: offset 17: expected a column name, found the end of the rule" },
		{ "k_spend >= 10 k_spend", "rule: offset 14: expected 'and', 'or' or the end of the rule" },
		{ "(k_spend >= 10", "rule: offset 14: expected ')' to close the '(' at offset 0" },
		{ "k_spend >= 10)", "rule: offset 13: a ')' without its '('" },
		{ "K_spend = 1", "rule: offset 0: expected a column name" },
		{ "and = 1", "rule: offset 0: expected a column name, found a keyword" },
		{ "k_cat = \"x", "rule: offset 8: a quoted value is not closed" },
		{ "k_cat = \"x\ty\"", "rule: offset 10: a control character in a quoted value" },
		{ "k_cat == x", "rule: offset 7: expected a value" },
		{ "k_cat = x or or", "rule: offset 13: expected a column name, found a keyword" },
		{ "k_ca$t = x", "rule: offset 4: expected a comparison" },
		{ "not", "rule: offset 3: expected a column name, found the end of the rule" },
	};
	struct rule *r;
	struct cg_err err;
	char deep[200];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		cg_err_clear(&err);
		CHECK_EQ_INT(rule_parse(bad[i].rule, strlen(bad[i].rule), &r, &err), CG_ERR_FORMAT);
		CHECK(r == NULL);
		CHECK_CONTAINS(err.msg, bad[i].msg);
	}
	/* NUL bytes, nesting, length */
	CHECK_EQ_INT(rule_parse("k_cat = x\0y", 11, &r, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "offset 9: a NUL byte");
	memset(deep, '(', 40);
	snprintf(deep + 40, sizeof(deep) - 40, "k_cat = x");
	CHECK_EQ_INT(rule_parse(deep, strlen(deep), &r, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "nested too deeply");
	{
		char *big = malloc(RULE_TEXT_MAX + 2);
		memset(big, ' ', RULE_TEXT_MAX + 1);
		CHECK_EQ_INT(rule_parse(big, RULE_TEXT_MAX + 1, &r, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "longer than 4096 bytes");
		free(big);
	}
}

static void
test_bind_errors(void)
{
	static const struct { const char *rule, *msg; } bad[] = {
		{ "k_nope = 1", "rule: offset 0: no column 'k_nope' shared for marketing" },
		{ "k_secret >= 1", "no column 'k_secret' shared for marketing" },     /* purposes: [analytics] only */
		{ "k_tag = t1", "rule: offset 0: 'k_tag' cannot be in a rule" },
		{ "k_cat = w", "rule: offset 8: 'w' is not one of the values of 'k_cat'" },
		{ "k_cat < x", "'k_cat' is a category: compare it with = or !=" },
		{ "k_spend >= ten", "rule: offset 11: 'k_spend' is an int column: compare it to an integer" },
		{ "k_spend >= \"10\"", "'k_spend' is an int column" },
		{ "age >= 30", "'age' is a quasi-identifier: compare it with = or != to one of its groups" },
		{ "age = 25-34", "rule: offset 6: '25-34' is not a group of 'age'" },
		{ "age = 20-30", "'20-30' is not a group of 'age'" },
		{ "region = A", "'A' is not a group of 'region'" },          /* a raw value, not its group */
		{ "k_spend = 1 and (g_watch > 3 or region = East)", "'East' is not a group of 'region'" },
	};
	struct cg_err err;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cg_err_clear(&err);
		CHECK(parse_bind(bad[i].rule, &err) == NULL);
		CHECK_CONTAINS(err.msg, bad[i].msg);
	}
}

/* The C predicates the rules below must agree with. */
static int p0(const struct subject *s) { return s->has_spend && s->spend >= 500 && s->has_watch && s->watch < 300; }
static int p1(const struct subject *s)
{
	/* and binds tighter than or */
	return (s->has_cat && s->cat[0] == 'x') || ((s->has_age && s->age / 10 == 2) && !(strcmp(s->region, "A") == 0));
}
static int p2(const struct subject *s)
{
	/* not over a comparison on a missing value holds */
	return !(s->has_watch && s->watch > 600) && (strcmp(s->region, "C") == 0 || (s->has_cat && s->cat[0] != 'z'));
}
static int p3(const struct subject *s) { return s->has_spend && s->spend != -5 && s->spend <= 10 && s->spend > -100; }

static void
test_eval_matches_c(void)
{
	static const char *const rules[] = {
		"k_spend >= 500 and g_watch < 300",
		"k_cat = x or age = 20-29 and not region = North",
		"not g_watch > 600 and (region = Other or k_cat != z)",
		"k_spend != -5 and k_spend <= 10 and k_spend > -100",
	};
	int (*const pred[])(const struct subject *) = { p0, p1, p2, p3 };
	struct subject s;
	struct rule *r[4];
	struct cg_err err;
	size_t i, k, agree[4] = { 0 }, hits[4] = { 0 };

	for (k = 0; k < 4; k++) {
		r[k] = parse_bind(rules[k], &err);
		if (r[k] == NULL)
			fprintf(stderr, "rule %zu: %s\n", k, err.msg);
		CHECK(r[k] != NULL);
		if (r[k] == NULL)
			return;
	}
	for (i = 0; i < 20000; i++) {
		subject_random(&s);
		for (k = 0; k < 4; k++) {
			int got = rule_eval(r[k], s.pp), want = pred[k](&s);
			agree[k] += got == want;
			hits[k] += got;
		}
	}
	for (k = 0; k < 4; k++) {
		CHECK_EQ_INT(agree[k], 20000);
		CHECK(hits[k] > 100 && hits[k] < 19900);          /* the rules select some, not all */
		rule_free(r[k]);
	}
}

static void
test_canon(void)
{
	struct rule *a, *b, *c;
	struct cg_err err;
	char ca[256], ha[65], hb[65], hc[65];

	a = parse_bind("k_cat=x or age=20-29 and not region=North", &err);
	b = parse_bind("  k_cat = \"x\"   or (age = 20-29 and not region = \"North\")\n", &err);
	c = parse_bind("(k_cat = x or age = 20-29) and not region = North", &err);
	CHECK(a != NULL && b != NULL && c != NULL);
	if (a == NULL || b == NULL || c == NULL)
		return;
	rule_canon(a, ca, sizeof(ca));
	CHECK_STR(ca, "k_cat = \"x\" or age = \"20-29\" and not region = \"North\"");
	rule_canon(c, ca, sizeof(ca));
	CHECK_STR(ca, "(k_cat = \"x\" or age = \"20-29\") and not region = \"North\"");
	rule_hash_hex(a, ha);
	rule_hash_hex(b, hb);
	rule_hash_hex(c, hc);
	CHECK_STR(ha, hb);                                   /* spacing and quotes do not matter */
	CHECK(strcmp(ha, hc) != 0);                          /* grouping does */
	CHECK_EQ_INT(rule_canon(c, NULL, 0), strlen(ca));
	rule_free(a);
	rule_free(b);
	rule_free(c);
	/* parentheses that change the tree stay; others go */
	a = parse_bind("((k_spend = 1)) or (k_spend = 2 or k_spend = 3) or not (k_cat = x and ((k_cat = y)))", &err);
	CHECK(a != NULL);
	if (a != NULL) {
		rule_canon(a, ca, sizeof(ca));
		CHECK_STR(ca, "k_spend = 1 or (k_spend = 2 or k_spend = 3) or not (k_cat = \"x\" and k_cat = \"y\")");
		rule_free(a);
	}
	a = parse_bind("k_spend >= 0600", &err);
	CHECK(a != NULL);
	if (a != NULL) {
		rule_canon(a, ca, sizeof(ca));
		CHECK_STR(ca, "k_spend >= 600");
		rule_free(a);
	}
}

static void
test_refusal_noise(void)
{
	unsigned char key[32], d[32];
	const uint32_t t = 50;
	const int n = 40000;
	double sum = 0, sq = 0, p, var, mean;
	int i, ge = 0;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(d, sizeof(d));
	/* fixed per (key, digest): asking again gives the same draw */
	CHECK_EQ_INT(audience_refusal_noise(key, d, t), audience_refusal_noise(key, d, t));
	for (i = 0; i < n; i++) {
		int64_t z;

		randombytes_buf(d, sizeof(d));
		z = audience_refusal_noise(key, d, t);
		sum += (double)z;
		sq += (double)z * (double)z;
		ge += z >= 100;
	}
	/* discrete Laplace, P(x) ~ exp(-|x|/t): variance 2p/(1-p)^2 with p = exp(-1/t); P(Z >= k) = p^k / (1 + p) */
	p = exp(-1.0 / t);
	var = 2 * p / ((1 - p) * (1 - p));
	mean = sum / n;
	CHECK(fabs(mean) < 5 * sqrt(var / n));
	CHECK(fabs(sq / n - var) < 0.05 * var);
	{
		double want = pow(p, 100) / (1 + p), sd = sqrt(want * (1 - want) / n);
		CHECK(fabs((double)ge / n - want) < 5 * sd);
	}
	/* another key: other draws */
	{
		unsigned char k2[32];
		int same = 0;
		randombytes_buf(k2, sizeof(k2));
		for (i = 0; i < 100; i++) {
			randombytes_buf(d, sizeof(d));
			same += audience_refusal_noise(key, d, t) == audience_refusal_noise(k2, d, t);
		}
		CHECK(same < 20);
	}
}

static void
test_delivery(const struct world *w)
{
	struct delivery d, o;
	struct token tk[3];
	unsigned char *sealed = NULL;
	size_t len = 0, i;
	struct cg_err err;

	memset(&d, 0, sizeof(d));
	for (i = 0; i < 3; i++) {
		tk[i].kind = i == 1 ? TOKEN_KIND_PHONE : TOKEN_KIND_EMAIL;
		randombytes_buf(tk[i].value, TOKEN_LEN);
	}
	randombytes_buf(d.audience_id, sizeof(d.audience_id));
	snprintf(d.partner, sizeof(d.partner), "k");
	snprintf(d.name, sizeof(d.name), "young");
	d.created = 1700000000;
	d.tokens = tk;
	d.n = 3;
	CHECK_EQ_INT(delivery_seal(&d, w->kpub->pub, &sealed, &len, &err), 0);
	CHECK_EQ_INT(delivery_open(sealed, len, w->ksign->key, &o, &err), 0);
	CHECK_EQ_INT(o.n, 3);
	CHECK_STR(o.partner, "k");
	CHECK_STR(o.name, "young");
	CHECK_EQ_INT(o.created, 1700000000);
	CHECK(memcmp(o.audience_id, d.audience_id, 16) == 0);
	for (i = 0; i < 3; i++)
		CHECK(o.tokens[i].kind == tk[i].kind && memcmp(o.tokens[i].value, tk[i].value, TOKEN_LEN) == 0);
	CHECK(o.tokens[0].kind == TOKEN_KIND_EMAIL && o.tokens[2].kind == TOKEN_KIND_PHONE);   /* sorted by kind */
	delivery_free(&o);
	/* the other partner's key does not open it; a flipped byte does not open */
	CHECK_EQ_INT(delivery_open(sealed, len, w->gsign->key, &o, &err), CG_ERR_CRYPTO);
	CHECK_CONTAINS(err.msg, "not sealed to this partner's key");
	sealed[len / 2] ^= 1;
	CHECK_EQ_INT(delivery_open(sealed, len, w->ksign->key, &o, &err), CG_ERR_CRYPTO);
	free(sealed);
	/* a token twice is refused */
	tk[2] = tk[0];
	CHECK_EQ_INT(delivery_seal(&d, w->kpub->pub, &sealed, &len, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "a token twice");
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	char *text;
	size_t cap, nqi;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	cap = sizeof(policy_fmt) + 2 * KEYFILE_LINE_MAX;
	if ((text = malloc(cap)) == NULL)
		return 1;
	snprintf(text, cap, policy_fmt, w.kline, w.gline);
	if (policy_parse("rule-test.yaml", text, strlen(text), &pol, NULL, &err) != 0) {
		fprintf(stderr, "policy: %s\n", err.msg);
		return 1;
	}
	free(text);
	memset(&jw, 0, sizeof(jw));
	jw.side[0] = policy_partner_find(pol, "k");
	jw.side[1] = policy_partner_find(pol, "g");
	join_columns(&jw, policy_purpose_bit(pol, "marketing"), cols, &ncols, &nqi);
	CHECK_EQ_INT(pol->marketing.min_audience, 500);
	CHECK(policy_partner_may_receive(pol, "g") && !policy_partner_may_receive(pol, "k"));
	CHECK(policy_partner_may_source(pol, "k") && policy_partner_may_source(pol, "g"));

	test_parse_errors();
	test_bind_errors();
	test_eval_matches_c();
	test_canon();
	test_refusal_noise();
	test_delivery(&w);

	policy_free(pol);
	world_free(&w);
	CGT_DONE();
}
