/* test_diff.c - policy/diff.c: each kind of change is found and classified */
#include <sodium.h>

#include "cgtest.h"
#include "policy/diff.h"
#include "policy_text.h"

static char *example;

/*
 * The example with the first `from` replaced by `to`, or every one while
 * `both_partners` is set (a quasi-identifier shared by both partners must be
 * changed on both, or the policy is refused).
 */
static int both_partners;

static struct policy *
variant(const char *from, const char *to)
{
	struct policy *p = NULL;
	struct cg_err err = { 0 };
	char *t = from != NULL ? policy_text_replace(example, from, to, both_partners) : strdup(example);

	CHECK(t != NULL);
	if (t == NULL)
		return NULL;
	if (policy_parse("variant.yaml", t, strlen(t), &p, NULL, &err) != 0)
		fprintf(stderr, "variant: %s\n", err.msg);
	free(t);
	return p;
}

/* Diff variant A against variant B; check the counts and that `line` is printed. */
static void
expect2(const char *afrom, const char *ato, const char *from, const char *to, size_t wider, size_t narrower,
    size_t breaks, const char *line)
{
	struct policy *a = variant(afrom, ato), *b = variant(from, to);
	struct policy_diff_counts c;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	CHECK(a != NULL && b != NULL && out != NULL);
	if (a != NULL && b != NULL && out != NULL) {
		policy_diff(a, b, out, &c);
		fclose(out);
		out = NULL;
		if (c.wider != wider || c.narrower != narrower || c.breaks != breaks)
			fprintf(stderr, "diff printed:\n%s", text != NULL ? text : "");
		CHECK_EQ_INT(c.wider, wider);
		CHECK_EQ_INT(c.narrower, narrower);
		CHECK_EQ_INT(c.breaks, breaks);
		if (line != NULL)
			CHECK_CONTAINS(text, line);
		else
			CHECK_EQ_INT(c.total, 0);
	}
	if (out != NULL)
		fclose(out);
	free(text);
	policy_free(a);
	policy_free(b);
}

/* Diff the example against a variant. */
static void
expect(const char *from, const char *to, size_t wider, size_t narrower, size_t breaks, const char *line)
{
	expect2(NULL, NULL, from, to, wider, narrower, breaks, line);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	example = policy_text_slurp("policy/example.yaml");
	CHECK(example != NULL);
	if (example == NULL)
		CGT_DONE();
	expect("# crossgate", "# a comment changed\n# crossgate", 0, 0, 0, NULL);
	expect("k: 10", "k: 5", 1, 0, 0, "WIDER     k-anonymity: k 10 -> 5");
	expect("k: 10", "k: 20", 0, 1, 0, "NARROWER  k-anonymity: k 10 -> 20");
	expect("[match, analytics, marketing]", "[match, analytics, marketing, research]", 1, 0, 0,
	    "new purpose 'research'");
	expect2("[match, analytics, marketing]", "[match, analytics, marketing, research]", NULL, NULL, 0, 1, 0,
	    "purpose 'research' removed");
	expect("[match, analytics, marketing]", "[match, marketing, analytics]", 0, 0, 2,
	    "'analytics' moved from bit 1 to 2");
	expect("default_phone_country: CN", "default_phone_country: US", 0, 0, 1, "default phone country CN -> US");
	expect("gmail_dots: true", "gmail_dots: false", 0, 0, 1, "email rules changed");
	expect("phone_matching: unique", "phone_matching: never", 0, 1, 0,
	    "NARROWER  matching: phone_matching unique -> never");
	expect("phone_matching: unique", "phone_matching: unique ", 0, 0, 0, NULL);
	both_partners = 1;
	expect("generalize: {band: [10, 20, 40]}", "generalize: {band: [5, 20, 40]}", 2, 0, 0, "column age: bands of 10 -> 5 (finer)");
	both_partners = 0;
	expect("      - {name: conversion_value_cents", "      - {name: loyalty, type: int, role: feature}\n"
	    "      - {name: conversion_value_cents", 1, 0, 0, "partner k: new column loyalty (feature)");
	expect("      - {name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200]}\n", "", 0, 1, 0,
	    "partner k: column courses_bought removed");
	expect("{name: courses_bought, type: int, min: 0, max: 10000,", "{name: courses_bought, type: int, min: 0, "
	    "max: 20000,", 1, 0, 0, "column courses_bought: range widened");
	expect("values: [programming, finance,", "values: [programming, finance, cooking,", 1, 0, 0,
	    "new category value 'cooking'");
	both_partners = 1;
	expect("CN-SC: Southwest,", "CN-SC: West,", 0, 0, 0, "'CN-SC' now generalizes to 'West'");
	both_partners = 0;
	expect("{name: age, type: int, min: 13, max: 120, role: quasi_identifier,\n         generalize: {band: [10, 20, 40]}, public: true}",
	    "{name: age, type: int, min: 13, max: 120, role: feature}", 1, 0, 0,
	    "role quasi_identifier -> feature (exported without generalization)");
	expect("{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200]}",
	    "{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200], purposes: [marketing]}",
	    0, 1, 0,
	    "column courses_bought: used for fewer purposes");
	expect2("{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200]}",
	    "{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200], purposes: []}", NULL,
	    NULL, 1, 0, 0,
	    "column courses_bought: used for more purposes");
	/* The outputs' privacy: who may see what, and how much noise and suppression protect it. */
	expect("  threshold: 20", "  threshold: 10", 1, 0, 0, "WIDER     privacy: threshold 20 -> 10");
	expect("  budget_rho: 1.0", "  budget_rho: 0.5", 0, 1, 0, "privacy: default budget rho 1 -> 0.5");
	expect("  l: 3", "  l: 2", 1, 0, 0, "privacy: l-diversity l 3 -> 2");
	expect("  suppression_limit: 0.05", "  suppression_limit: 0.1", 1, 0, 0, "privacy: suppression limit 5% -> 10%");
	expect("  query_rho: 0.05", "  query_rho: 0.1", 0, 0, 0, "CHANGE    privacy: default query rho 0.05 -> 0.1");
	expect("  export_rho: 0.1", "  export_rho: 0.3", 0, 0, 0, "CHANGE    privacy: default export rho 0.1 -> 0.3");
	expect("row_exports: [analytics]", "row_exports: [analytics, marketing]", 1, 0, 0,
	    "analyst 'analyst' may take row exports for more purposes");
	expect("budget_rho: 2.0, max_exports: 100", "budget_rho: 3.0, max_exports: 100", 1, 0, 0,
	    "analyst 'analyst' budget rho 2 -> 3");
	expect("values: [moba, fps, rpg, strategy, sports, casual, card], public: true}",
	    "values: [moba, fps, rpg, strategy, sports, casual, card]}", 0, 1, 0, "column top_game_category: no longer public");
	expect("{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 200]}",
	    "{name: courses_bought, type: int, min: 0, max: 10000, role: feature, bounds: [0, 500]}", 0, 0, 0,
	    "column courses_bought: bounds [0, 200] -> [0, 500]");
	free(example);
	CGT_DONE();
}
