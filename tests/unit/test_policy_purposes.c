/* test_policy_purposes.c - per-column purposes (data minimization) in the policy */
#include <sodium.h>

#include "cgtest.h"
#include "policy/policy.h"
#include "policy_text.h"

static char *example;

/* Parse the example with `from` replaced by `to`; *err gets the first problem. */
static struct policy *
variant(const char *from, const char *to, struct cg_err *err)
{
	struct policy *p = NULL;
	char *t = policy_text_replace(example, from, to, 0);

	CHECK(t != NULL);
	if (t == NULL)
		return NULL;
	cg_err_clear(err);
	if (policy_parse("v.yaml", t, strlen(t), &p, NULL, err) != 0)
		p = NULL;
	free(t);
	return p;
}

static const char spend[] = "{name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature,\n         bounds: [0, 200000]}";

int
main(void)
{
	struct policy *p;
	struct cg_err err;
	const struct policy_column *c;
	int an, mk;

	if (sodium_init() < 0 || (example = policy_text_slurp("policy/example.yaml")) == NULL)
		return 1;

	/* Without the key, a column serves every purpose. */
	p = variant(spend, spend, &err);
	CHECK(p != NULL);
	if (p != NULL) {
		c = policy_column_find(policy_partner_find(p, "k"), "course_spend_cents");
		CHECK(c != NULL && !c->has_purposes && policy_column_shared(c, -1) &&
		    policy_column_shared(c, policy_purpose_bit(p, "marketing")));
		c = policy_column_find(policy_partner_find(p, "k"), "email");
		CHECK(c != NULL && !policy_column_shared(c, -1));   /* identifiers are never shared */
		policy_free(p);
	}
	p = variant(spend, "{name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature, "
	    "purposes: [marketing]}", &err);
	CHECK(p != NULL);
	if (p != NULL) {
		an = policy_purpose_bit(p, "analytics");
		mk = policy_purpose_bit(p, "marketing");
		c = policy_column_find(policy_partner_find(p, "k"), "course_spend_cents");
		CHECK(c != NULL && c->has_purposes);
		if (c != NULL) {
			CHECK_EQ_INT(c->purposes, 1u << mk);
			CHECK(policy_column_shared(c, -1));
			CHECK(policy_column_shared(c, mk));
			CHECK(!policy_column_shared(c, an));
		}
		policy_free(p);
	}
	p = variant(spend, "{name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature, "
	    "purposes: []}", &err);
	CHECK(p != NULL);
	if (p != NULL) {
		c = policy_column_find(policy_partner_find(p, "k"), "course_spend_cents");
		CHECK(c != NULL && !policy_column_shared(c, -1));    /* never leaves the partner */
		policy_free(p);
	}

	/* Problems, each with its line. */
	p = variant(spend, "{name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature, "
	    "purposes: [telepathy]}", &err);
	CHECK(p == NULL);
	CHECK_CONTAINS(err.msg, "v.yaml:");
	CHECK_CONTAINS(err.msg, "column 'course_spend_cents': purpose 'telepathy' is not in the policy's purposes");
	p = variant(spend, "{name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature, "
	    "purposes: [match]}", &err);
	CHECK(p == NULL);
	CHECK_CONTAINS(err.msg, "'match' is not a purpose a column is shared for");
	p = variant("{name: email, type: string, role: identifier, kind: email}",
	    "{name: email, type: string, role: identifier, kind: email, purposes: [analytics]}", &err);
	CHECK(p == NULL);
	CHECK_CONTAINS(err.msg, "purposes only apply to feature and quasi_identifier columns ('email')");
	p = variant(spend, "{name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature, "
	    "purposes: analytics}", &err);
	CHECK(p == NULL);
	CHECK_CONTAINS(err.msg, "v.yaml:");
	free(example);
	CGT_DONE();
}
