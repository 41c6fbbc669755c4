/*
 * test_policy_privacy.c - the policy's output keys: the privacy section, the
 * columns' public/bounds/sensitive/band hierarchies and the analysts'
 * row_exports/budget_rho/max_exports, with their defaults and each bad value
 * refused with its line and reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "cgtest.h"
#include "policy/policy.h"
#include "policy_text.h"

static char *example;

/* Parse the example with its first `from` replaced by `to`; NULL and *err set if refused. */
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

/* The variant must be refused, `msg` among its problems (each "v.yaml:LINE:COL: reason"). */
static void
refused(const char *from, const char *to, const char *msg)
{
	struct policy_problems probs = { 0 };
	struct policy *p = NULL;
	struct cg_err err;
	char *t = policy_text_replace(example, from, to, 0);
	size_t i;
	int found = 0;

	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK(policy_parse("v.yaml", t, strlen(t), &p, &probs, &err) != 0);
	for (i = 0; i < probs.n; i++)
		if (strncmp(probs.msgs[i], "v.yaml:", 7) == 0 && strstr(probs.msgs[i], msg) != NULL)
			found = 1;
	if (!found)
		fprintf(stderr, "refused: no problem says '%s' (first: %s)\n", msg, err.msg);
	CHECK(found);
	policy_problems_free(&probs);
	policy_free(p);
	free(t);
}

int
main(void)
{
	struct cg_err err;
	struct policy *p;
	const struct policy_principal *an;
	const struct policy_column *c;
	int64_t v;

	if (sodium_init() < 0 || (example = policy_text_slurp("policy/example.yaml")) == NULL)
		return 1;

	/* The example: every key as written. */
	if ((p = variant("privacy:", "privacy:", &err)) != NULL) {
		CHECK_EQ_INT(p->privacy.threshold, 20);
		CHECK_EQ_INT(p->privacy.query_rho_nano, 50000000);
		CHECK_EQ_INT(p->privacy.export_rho_nano, 100000000);
		CHECK_EQ_INT(p->privacy.budget_rho_nano, 1000000000);
		CHECK_EQ_INT(p->privacy.l, 3);
		CHECK_EQ_INT(p->privacy.suppression_ppm, 50000);
		CHECK_EQ_INT(p->privacy.max_exports, 10);
		CHECK(p->privacy.partition_delta == 1e-6);
		an = policy_principal_by_name(p, "analyst");
		CHECK(an != NULL);
		CHECK(policy_principal_may_row_export(p, an, "analytics"));
		CHECK(!policy_principal_may_row_export(p, an, "marketing"));
		CHECK(policy_principal_may_export(p, an, "marketing"));
		CHECK_EQ_INT(policy_principal_budget(p, an), 2000000000);
		CHECK_EQ_INT(policy_principal_max_exports(p, an), 100);
		c = policy_column_find(policy_partner_find(p, "k"), "age");
		CHECK(c != NULL && c->is_public && c->nbands == 3 && c->bands[2] == 40 && c->band == 10);
		c = policy_column_find(policy_partner_find(p, "k"), "course_spend_cents");
		CHECK(c != NULL && c->has_bounds && c->lo == 0 && c->hi == 200000 && !c->is_public);
		c = policy_column_find(policy_partner_find(p, "k"), "top_course_category");
		CHECK(c != NULL && c->sensitive && c->is_public);
		policy_free(p);
	} else
		fprintf(stderr, "example: %s\n", err.msg);

	/* Without the section: the defaults. */
	if ((p = variant("privacy:\n  threshold: 20\n", "privacy:\n", &err)) != NULL) {
		CHECK_EQ_INT(p->privacy.threshold, POLICY_THRESHOLD_DEFAULT);
		policy_free(p);
	}
	if ((p = variant("  export_rho: 0.1\n", "", &err)) != NULL) {
		CHECK_EQ_INT(p->privacy.export_rho_nano, POLICY_EXPORT_RHO_DEFAULT);
		policy_free(p);
	}

	/* Decimals are exact, in nano units. */
	CHECK_EQ_INT(policy_parse_nano("0.05", 4, POLICY_RHO_MAX, &v), 0);
	CHECK_EQ_INT(v, 50000000);
	CHECK_EQ_INT(policy_parse_nano("2", 1, POLICY_RHO_MAX, &v), 0);
	CHECK_EQ_INT(v, 2000000000);
	CHECK_EQ_INT(policy_parse_nano("0.000000001", 11, POLICY_RHO_MAX, &v), 0);
	CHECK_EQ_INT(v, 1);
	CHECK(policy_parse_nano("0.0000000001", 12, POLICY_RHO_MAX, &v) != 0);   /* finer than 1e-9 */
	CHECK(policy_parse_nano("0", 1, POLICY_RHO_MAX, &v) != 0);
	CHECK(policy_parse_nano("-1", 2, POLICY_RHO_MAX, &v) != 0);
	CHECK(policy_parse_nano("1e3", 3, POLICY_RHO_MAX, &v) != 0);
	CHECK(policy_parse_nano("1.", 2, POLICY_RHO_MAX, &v) != 0);
	CHECK(policy_parse_nano("1000001", 7, POLICY_RHO_MAX, &v) != 0);
	CHECK(policy_parse_nano("99999999999999999999", 20, POLICY_RHO_MAX, &v) != 0);

	/* The lift's keys in marketing: as written, else the defaults (value_cap 100.00, lift_rho query_rho's). */
	if ((p = variant("principals:", "marketing:\n  value_cap: 5000\n  lift_rho: 0.2\nprincipals:", &err)) != NULL) {
		CHECK_EQ_INT(p->marketing.value_cap, 5000);
		CHECK_EQ_INT(p->marketing.lift_rho_nano, 200000000);
		policy_free(p);
	} else
		fprintf(stderr, "marketing: %s\n", err.msg);
	if ((p = variant("principals:", "principals:", &err)) != NULL) {
		CHECK_EQ_INT(p->marketing.value_cap, POLICY_VALUE_CAP_DEFAULT);
		CHECK_EQ_INT(p->marketing.lift_rho_nano, 0);
		policy_free(p);
	}
	refused("principals:", "marketing:\n  value_cap: 0\nprincipals:", "value_cap must be between 1 and 1000000000");
	refused("principals:", "marketing:\n  lift_rho: 5\nprincipals:", "lift_rho is larger than privacy.budget_rho");

	/* Each bad value, refused with its reason. */
	refused("  threshold: 20", "  threshold: 0", "threshold must be between 1 and 1000000");
	refused("  query_rho: 0.05", "  query_rho: 5", "query_rho is larger than budget_rho");
	refused("  export_rho: 0.1", "  export_rho: 1.5", "export_rho is larger than budget_rho");
	refused("  export_rho: 0.1", "  export_rho: 0", "export_rho must be a decimal number above 0");
	refused("  budget_rho: 1.0", "  budget_rho: lots", "budget_rho must be a decimal number above 0");
	refused("  suppression_limit: 0.05", "  suppression_limit: 1.5", "suppression_limit must be a number above 0");
	refused("  partition_delta: 0.000001", "  partition_delta: 1", "partition_delta must be a number above 0 and below 1");
	refused("  l: 3", "  l: 0", "l must be between 1 and 1000");
	refused("  max_exports: 10", "  max_exports: 10\n  sparkle: 1", "unknown key 'sparkle' in privacy");
	refused("bounds: [0, 500000]}", "bounds: [500000, 0]}", "bounds: lo is greater than hi");
	refused("bounds: [0, 500000]}", "bounds: 7}", "bounds must be a list [lo, hi]");
	refused("generalize: {band: [10, 20, 40]}", "generalize: {band: [20, 10]}", "band widths must be positive and increasing");
	refused("{name: top_course_category, type: category, role: feature,",
	    "{name: top_course_category, type: category, role: feature, bounds: [0, 1],", "bounds only apply to int columns");
	refused("{name: conversion_value_cents, type: int, min: 0, max: 100000000, role: feature,",
	    "{name: conversion_value_cents, type: int, min: 0, max: 100000000, role: feature, public: true,",
	    "public column 'conversion_value_cents' needs a declared domain");
	refused("{name: user_id, type: string, role: local_id}",
	    "{name: user_id, type: string, role: local_id, sensitive: true}",
	    "public, sensitive and bounds only apply to feature and quasi_identifier columns");
	refused("row_exports: [analytics]", "row_exports: [research]", "purpose 'research' is not in the policy's purposes");
	refused("purposes: [analytics, marketing],\n     row_exports: [analytics]",
	    "purposes: [marketing],\n     row_exports: [analytics]", "row_exports lists a purpose that is not in its purposes");
	refused("{name: auditor, role: auditor,", "{name: auditor, role: auditor, budget_rho: 1,",
	    "only a principal of role analyst has budget_rho or max_exports");
	/* A quasi-identifier both partners have is one export column: it must generalize alike. */
	refused("generalize: {band: [10, 20, 40]}, public: true}", "generalize: {band: 10}, public: true}",
	    "quasi_identifier 'age' of partners 'k' and 'g' must have the same");
	refused("CN-SC: Southwest,", "CN-SC: West,", "quasi_identifier 'region' of partners 'k' and 'g' must have the same");
	/* A column cannot be declared twice in one partner. */
	refused("{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200]}",
	    "{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200]}\n"
	    "      - {name: age, type: int, role: feature}", "duplicate");
	free(example);
	CGT_DONE();
}
