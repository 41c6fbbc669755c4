/* test_policy.c - policy parsing, validation, cells, time and generalization. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "crypto/keyfile.h"
#include "crypto/token.h"
#include "policy/policy.h"

#define EXAMPLE "policy/example.yaml"

static char key_line[KEYFILE_LINE_MAX];

static void
make_key_line(void)
{
	struct keyfile_key *sec = NULL, *pub = NULL;
	struct cg_err err;

	if (keyfile_generate(KEYFILE_ED25519_SECRET, &sec, &err) != 0 ||
	    keyfile_public_of(sec, &pub, &err) != 0 ||
	    keyfile_public_line(pub, key_line, sizeof(key_line)) != 0) {
		fprintf(stderr, "cannot make a key line: %s\n", err.msg);
		exit(1);
	}
	keyfile_free(sec);
	keyfile_free(pub);
}

/*
 * The text with every "@KEY@" replaced by a fresh valid key line, and every
 * "@SAMEKEY@" by the line before it.  Caller frees.
 */
static char *
with_key(const char *text)
{
	size_t cap = strlen(text) * 2 + 8 * KEYFILE_LINE_MAX, n = 0;
	char *out = malloc(cap);
	const char *p = text, *q;

	if (out == NULL)
		exit(1);
	while ((q = strchr(p, '@')) != NULL) {
		size_t skip = strncmp(q, "@KEY@", 5) == 0 ? 5 :
		    strncmp(q, "@SAMEKEY@", 9) == 0 ? 9 : 0;

		memcpy(out + n, p, (size_t)(q - p) + (skip == 0));
		n += (size_t)(q - p) + (skip == 0);
		p = q + (skip == 0 ? 1 : skip);
		if (skip == 0)
			continue;
		if (skip == 5)
			make_key_line();
		memcpy(out + n, key_line, strlen(key_line));
		n += strlen(key_line);
	}
	memcpy(out + n, p, strlen(p) + 1);
	return out;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	*len = 0;
	if (f == NULL)
		return NULL;
	buf = malloc(POLICY_FILE_MAX + 1);
	if (buf != NULL)
		*len = fread(buf, 1, POLICY_FILE_MAX + 1, f);
	fclose(f);
	return buf;
}

/* ---- the example ---- */

static const struct policy_column *
col(const struct policy_partner *pp, const char *name)
{
	const struct policy_column *c = policy_column_find(pp, name);

	CHECK(c != NULL);
	return c;
}

static void
check_int_col(const struct policy_partner *pp, const char *name, int64_t min, int64_t max,
    enum policy_role role)
{
	const struct policy_column *c = col(pp, name);

	if (c == NULL)
		return;
	CHECK_EQ_INT(c->type, POLICY_TYPE_INT);
	CHECK_EQ_INT(c->role, role);
	CHECK(c->has_min && c->has_max);
	CHECK_EQ_INT(c->min, min);
	CHECK_EQ_INT(c->max, max);
	CHECK_EQ_INT(c->required, 1);
}

static void
check_category(const struct policy_partner *pp, const char *name, const char *const *values,
    size_t n)
{
	const struct policy_column *c = col(pp, name);
	size_t i;

	if (c == NULL)
		return;
	CHECK_EQ_INT(c->type, POLICY_TYPE_CATEGORY);
	CHECK_EQ_INT(c->role, POLICY_ROLE_FEATURE);
	CHECK_EQ_INT(c->nvalues, n);
	for (i = 0; i < n && i < c->nvalues; i++)
		CHECK_STR(c->values[i], values[i]);
}

static void
check_common_columns(const struct policy_partner *pp)
{
	static const char *const north[] = { "CN-BJ", "CN-TJ", "CN-HE" };
	static const char *const east[] = { "CN-SH", "CN-JS", "CN-ZJ" };
	static const char *const south[] = { "CN-GD", "CN-GX", "CN-HI" };
	const struct policy_column *c;
	char g[32];
	size_t i;

	if ((c = col(pp, "user_id")) != NULL) {
		CHECK_EQ_INT(c->type, POLICY_TYPE_STRING);
		CHECK_EQ_INT(c->role, POLICY_ROLE_LOCAL_ID);
		CHECK_EQ_INT(c->required, 0);
	}
	if ((c = col(pp, "email")) != NULL) {
		CHECK_EQ_INT(c->role, POLICY_ROLE_IDENTIFIER);
		CHECK_EQ_INT(c->id_kind, TOKEN_KIND_EMAIL);
		CHECK_EQ_INT(c->required, 0);
	}
	if ((c = col(pp, "phone")) != NULL) {
		CHECK_EQ_INT(c->role, POLICY_ROLE_IDENTIFIER);
		CHECK_EQ_INT(c->id_kind, TOKEN_KIND_PHONE);
	}
	check_int_col(pp, "age", 13, 120, POLICY_ROLE_QUASI);
	if ((c = col(pp, "age")) != NULL) {
		CHECK_EQ_INT(c->gen, POLICY_GEN_BAND);
		CHECK_EQ_INT(c->band, 10);
	}
	if ((c = col(pp, "region")) != NULL) {
		CHECK_EQ_INT(c->type, POLICY_TYPE_STRING);
		CHECK_EQ_INT(c->role, POLICY_ROLE_QUASI);
		CHECK_EQ_INT(c->gen, POLICY_GEN_MAP);
		CHECK_EQ_INT(c->nmap, 13);
		CHECK_STR(c->other, "Other");
		for (i = 0; i < 3; i++) {
			CHECK(policy_generalize_str(c, north[i], 5, g, sizeof(g)) == 0);
			CHECK_STR(g, "North");
			CHECK(policy_generalize_str(c, east[i], 5, g, sizeof(g)) == 0);
			CHECK_STR(g, "East");
			CHECK(policy_generalize_str(c, south[i], 5, g, sizeof(g)) == 0);
			CHECK_STR(g, "South");
		}
		CHECK(policy_generalize_str(c, "CN-SC", 5, g, sizeof(g)) == 0);
		CHECK_STR(g, "Southwest");
		CHECK(policy_generalize_str(c, "CN-CQ", 5, g, sizeof(g)) == 0);
		CHECK_STR(g, "Southwest");
		CHECK(policy_generalize_str(c, "CN-HB", 5, g, sizeof(g)) == 0);
		CHECK_STR(g, "Central");
		CHECK(policy_generalize_str(c, "CN-HN", 5, g, sizeof(g)) == 0);
		CHECK_STR(g, "Central");
		CHECK(policy_generalize_str(c, "CN-XJ", 5, g, sizeof(g)) == 0);
		CHECK_STR(g, "Other");
	}
	if ((c = col(pp, "consent")) != NULL) {
		CHECK_EQ_INT(c->type, POLICY_TYPE_PURPOSES);
		CHECK_EQ_INT(c->role, POLICY_ROLE_CONSENT);
		CHECK_EQ_INT(c->required, 1);
	}
	if ((c = col(pp, "consent_at")) != NULL) {
		CHECK_EQ_INT(c->type, POLICY_TYPE_TIMESTAMP);
		CHECK_EQ_INT(c->role, POLICY_ROLE_CONSENT_TIME);
		CHECK_EQ_INT(c->required, 1);
	}
}

/* The signing key as parsed by keyfile itself from the example's text. */
static void
check_signing_key(const struct policy_partner *pp)
{
	struct keyfile_key *key = NULL;
	struct cg_err err;

	CHECK(pp->signing_key != NULL);
	if (pp->signing_key == NULL)
		return;
	CHECK_CONTAINS(pp->signing_key, "ed25519-public ");
	CHECK(keyfile_parse_public_line(pp->signing_key, strlen(pp->signing_key),
	    KEYFILE_ED25519_PUBLIC, &key, &err) == 0);
	if (key == NULL)
		return;
	CHECK(memcmp(pp->signing_pub, key->pub, 32) == 0);
	CHECK(memcmp(pp->signing_key_id, key->id, KEYFILE_ID_LEN) == 0);
	keyfile_free(key);
}

static void
test_example(void)
{
	static const char *const courses[] = { "programming", "finance", "language", "design",
		"history", "science", "music" };
	static const char *const games[] = { "moba", "fps", "rpg", "strategy", "sports",
		"casual", "card" };
	struct policy *p = NULL;
	struct policy_problems probs = { NULL, 0 };
	const struct policy_partner *k, *g;
	unsigned char h[32];
	struct cg_err err;
	size_t len, i;
	char *buf;

	CHECK_EQ_INT(policy_load(EXAMPLE, &p, &probs, &err), 0);
	CHECK_EQ_INT(probs.n, 0);
	for (i = 0; i < probs.n; i++)
		fprintf(stderr, "  %s\n", probs.msgs[i]);
	policy_problems_free(&probs);
	if (p == NULL)
		return;
	CHECK_EQ_INT(p->version, 1);
	CHECK_STR(p->name, "k-g-cross-marketing");
	CHECK_STR(p->path, EXAMPLE);
	CHECK_EQ_INT(p->k, 10);
	CHECK_STR(p->default_country, "CN");
	CHECK_EQ_INT(p->email.gmail_dots, 1);
	CHECK_EQ_INT(p->email.plus_tags, 1);
	CHECK_EQ_INT(p->email.plus_tags_all, 0);
	CHECK_EQ_INT(p->email.googlemail, 1);
	CHECK_EQ_INT(p->npurposes, 3);
	CHECK_EQ_INT(policy_purpose_bit(p, "match"), 0);
	CHECK_EQ_INT(policy_purpose_bit(p, "analytics"), 1);
	CHECK_EQ_INT(policy_purpose_bit(p, "marketing"), 2);
	CHECK_EQ_INT(policy_purpose_bit(p, "resale"), -1);
	CHECK_EQ_INT(policy_purpose_bit(p, "Match"), -1);
	CHECK_EQ_INT(p->npartners, 2);

	/* hash = SHA-256 of the file's bytes */
	buf = read_file(EXAMPLE, &len);
	CHECK(buf != NULL);
	if (buf != NULL) {
		crypto_hash_sha256(h, (const unsigned char *)buf, len);
		CHECK(memcmp(h, p->hash, 32) == 0);
	}
	free(buf);

	k = policy_partner_find(p, "k");
	g = policy_partner_find(p, "g");
	CHECK(k != NULL && g != NULL);
	CHECK(policy_partner_find(p, "x") == NULL);
	CHECK(policy_partner_find(p, "K") == NULL);
	if (k != NULL) {
		CHECK_STR(k->name, "Paid-knowledge platform");
		CHECK_EQ_INT(k->ncolumns, 12);
		CHECK_EQ_INT(k->line, 19);
		check_signing_key(k);
		check_common_columns(k);
		check_int_col(k, "course_spend_cents", 0, 100000000, POLICY_ROLE_FEATURE);
		check_int_col(k, "learning_minutes", 0, 10000000, POLICY_ROLE_FEATURE);
		check_int_col(k, "courses_bought", 0, 10000, POLICY_ROLE_FEATURE);
		check_int_col(k, "conversion_value_cents", 0, 100000000, POLICY_ROLE_FEATURE);
		check_category(k, "top_course_category", courses, 7);
		CHECK(policy_column_find(k, "watch_minutes") == NULL);
		CHECK(policy_column_find(k, "EMAIL") == NULL);
		CHECK_STR(k->columns[0].name, "user_id");
		CHECK_EQ_INT(k->columns[0].line, 24);
		CHECK_EQ_INT(k->retention_days, 1095);
	}
	if (g != NULL) {
		CHECK_STR(g->name, "Game live-streaming platform");
		CHECK_EQ_INT(g->retention_days, 1095);
		CHECK_EQ_INT(g->ncolumns, 11);
		check_signing_key(g);
		check_common_columns(g);
		check_int_col(g, "watch_minutes", 0, 10000000, POLICY_ROLE_FEATURE);
		check_int_col(g, "gift_spend_cents", 0, 100000000, POLICY_ROLE_FEATURE);
		check_int_col(g, "streams_followed", 0, 100000, POLICY_ROLE_FEATURE);
		check_category(g, "top_game_category", games, 7);
		CHECK(policy_column_find(g, "course_spend_cents") == NULL);
	}
	if (k != NULL && g != NULL)
		CHECK(memcmp(k->signing_pub, g->signing_pub, 32) != 0);
	policy_free(p);
}

/* ---- rejections ---- */

/* Lines 1-7; the partner's columns start on line 8. */
#define HEAD \
	"version: 1\n" \
	"name: t\n" \
	"partners:\n" \
	"  - id: k\n" \
	"    name: K\n" \
	"    signing_key: \"@KEY@\"\n" \
	"    columns:\n"
/* Lines 8-10. */
#define COLS3 \
	"      - {name: email, type: string, role: identifier, kind: email}\n" \
	"      - {name: consent, type: purposes, role: consent}\n" \
	"      - {name: consent_at, type: timestamp, role: consent_time}\n"
#define TAIL \
	"default_phone_country: CN\n" \
	"purposes: [match, analytics]\n"

struct bad_case {
	const char *yaml;
	const char *where;       /* "t.yaml:LINE:" */
	const char *reason;
};

static const struct bad_case bad_cases[] = {
	{ HEAD COLS3 "      - {name: x, type: int, role: feature, colour: 1}\n" TAIL,
	  "t.yaml:11:", "unknown key 'colour' in column 'x'" },
	{ "version: 1\nname: t\npartners:\n  - id: k\n    name: K\n"
	  "    signing_key: \"@KEY@\"\n    colums:\n" COLS3 TAIL,
	  "t.yaml:7:5:", "unknown key 'colums' in partner 'k'" },
	{ HEAD COLS3 TAIL "kk: 3\n", "t.yaml:13:1:", "unknown key 'kk' at the top level" },
	{ HEAD COLS3 TAIL "email: {gmail_dots: true, dots: false}\n", "t.yaml:13:",
	  "unknown key 'dots' in email" },
	{ HEAD COLS3 "      - {name: a, type: int, role: quasi_identifier,"
	  " generalize: {band: 5, bnd: 3}}\n" TAIL,
	  "t.yaml:11:", "unknown key 'bnd' in generalize of column 'a'" },
	{ HEAD COLS3 "  - id: k\n    name: K2\n    signing_key: \"@KEY@\"\n    columns:\n"
	  COLS3 TAIL, "t.yaml:11:", "duplicate partner id 'k'" },
	{ HEAD COLS3 "  - id: g\n    name: G\n    signing_key: \"@SAMEKEY@\"\n    columns:\n"
	  COLS3 TAIL, "t.yaml:11:", "partner 'g' has the same signing_key as partner 'k'" },
	{ HEAD COLS3 "      - {name: email, type: string, role: identifier, kind: phone}\n" TAIL,
	  "t.yaml:11:", "duplicate column 'email' in partner 'k'" },
	{ HEAD COLS3 "default_phone_country: CN\npurposes: [match, analytics, match]\n",
	  "t.yaml:12:", "duplicate purpose 'match'" },
	{ HEAD COLS3 "default_phone_country: CN\npurposes: [analytics, marketing]\n",
	  "t.yaml:12:", "purposes must include 'match'" },
	{ HEAD COLS3 "default_phone_country: CN\nphone_matching: sometimes\npurposes: [match, analytics]\n",
	  "t.yaml:12:", "phone_matching must be unique or never" },
	{ HEAD COLS3 "default_phone_country: CN\npurposes: [match]\n",
	  "t.yaml:12:", "purposes must include 'analytics'" },
	{ HEAD COLS3 "default_phone_country: CN\npurposes: [match, analytics, Bad Name]\n",
	  "t.yaml:12:", "bad purpose name" },
	{ "version: 1\nname: t\npartners:\n  - id: K!\n    name: K\n"
	  "    signing_key: \"@KEY@\"\n    columns:\n" COLS3 TAIL,
	  "t.yaml:4:9:", "bad partner id" },
	{ "version: 1\nname: t\npartners:\n  - id: abcdefghijklmnopqrstuvwxyz0123456\n"
	  "    name: K\n    signing_key: \"@KEY@\"\n    columns:\n" COLS3 TAIL,
	  "t.yaml:4:", "bad partner id" },
	{ HEAD "      - {name: consent, type: purposes, role: consent}\n"
	  "      - {name: consent_at, type: timestamp, role: consent_time}\n" TAIL,
	  "t.yaml:7:", "partner 'k' has no identifier column" },
	{ HEAD "      - {name: email, type: string, role: identifier, kind: email}\n"
	  "      - {name: consent_at, type: timestamp, role: consent_time}\n" TAIL,
	  "t.yaml:7:", "partner 'k' needs exactly one consent column (found 0)" },
	{ HEAD COLS3 "      - {name: consent2, type: purposes, role: consent}\n" TAIL,
	  "t.yaml:7:", "partner 'k' needs exactly one consent column (found 2)" },
	{ HEAD "      - {name: email, type: string, role: identifier, kind: email}\n"
	  "      - {name: consent, type: purposes, role: consent}\n" TAIL,
	  "t.yaml:7:", "partner 'k' needs exactly one consent_time column (found 0)" },
	{ HEAD COLS3 "      - {name: consent_at2, type: timestamp, role: consent_time}\n" TAIL,
	  "t.yaml:7:", "partner 'k' needs exactly one consent_time column (found 2)" },
	{ HEAD COLS3 "      - {name: age, type: int, role: quasi_identifier}\n" TAIL,
	  "t.yaml:11:", "quasi_identifier column 'age' needs generalize" },
	{ HEAD COLS3 "      - {name: age, type: int, role: quasi_identifier,"
	  " generalize: {band: 0}}\n" TAIL, "t.yaml:11:", "band must be positive" },
	{ HEAD COLS3 "      - {name: age, type: int, role: quasi_identifier,"
	  " generalize: {band: -5}}\n" TAIL, "t.yaml:11:", "band must be positive" },
	{ HEAD COLS3 "      - {name: age, type: int, role: quasi_identifier,"
	  " generalize: {map: {1: a}, other: b}}\n" TAIL,
	  "t.yaml:11:", "map on an int column ('age')" },
	{ HEAD COLS3 "      - {name: r, type: string, role: quasi_identifier,"
	  " generalize: {map: {a: b}}}\n" TAIL, "t.yaml:11:", "map of column 'r' needs 'other'" },
	{ HEAD COLS3 "      - {name: r, type: string, role: quasi_identifier,"
	  " generalize: {band: 10}}\n" TAIL, "t.yaml:11:", "band needs an int column ('r')" },
	{ HEAD COLS3 "      - {name: r, type: string, role: feature, generalize: {band: 10}}\n"
	  TAIL, "t.yaml:11:", "generalize only applies to quasi_identifier columns ('r')" },
	{ HEAD COLS3 "      - {name: age, type: int, min: 120, max: 13, role: feature}\n" TAIL,
	  "t.yaml:11:", "min is greater than max in column 'age'" },
	{ HEAD COLS3 "      - {name: s, type: string, min: 1, role: feature}\n" TAIL,
	  "t.yaml:11:", "min/max only apply to int columns ('s')" },
	{ HEAD COLS3 "      - {name: age, type: int, min: 99999999999999999999, role: feature}\n"
	  TAIL, "t.yaml:11:", "min is out of range" },
	{ HEAD COLS3 "      - {name: age, type: int, max: ten, role: feature}\n" TAIL,
	  "t.yaml:11:", "max is not an integer" },
	{ HEAD COLS3 "      - {name: cat, type: category, role: feature}\n" TAIL,
	  "t.yaml:11:", "category column 'cat' needs values" },
	{ HEAD COLS3 "      - {name: cat, type: category, role: feature, values: []}\n" TAIL,
	  "t.yaml:11:", "category column 'cat' needs values" },
	{ HEAD COLS3 "      - {name: cat, type: category, role: feature, values: [a, b, a]}\n"
	  TAIL, "t.yaml:11:", "duplicate category value in column 'cat'" },
	{ HEAD COLS3 "      - {name: x, type: strng, role: feature}\n" TAIL,
	  "t.yaml:11:", "unknown type in column 'x'" },
	{ HEAD COLS3 "      - {name: x, type: string, role: feeture}\n" TAIL,
	  "t.yaml:11:", "unknown role in column 'x'" },
	{ HEAD COLS3 "      - {name: x, type: string, role: identifier, kind: fax}\n" TAIL,
	  "t.yaml:11:", "unknown kind in column 'x'" },
	{ HEAD COLS3 "      - {name: x, type: string, role: identifier}\n" TAIL,
	  "t.yaml:11:", "identifier column 'x' needs a kind" },
	{ HEAD COLS3 "      - {name: x, type: int, role: identifier, kind: phone}\n" TAIL,
	  "t.yaml:11:", "column 'x' must have type string for its role" },
	{ HEAD COLS3 "      - {name: x, type: string, role: identifier, kind: phone,"
	  " required: true}\n" TAIL, "t.yaml:11:", "identifier column 'x' cannot be required" },
	{ HEAD COLS3 "      - {name: x, type: string, role: feature, required: yes}\n" TAIL,
	  "t.yaml:11:", "required must be true or false" },
	{ HEAD COLS3 "      - {type: string, role: feature}\n" TAIL,
	  "t.yaml:11:", "column without a name" },
	{ HEAD COLS3 "      - {name: \"a b\", type: string, role: feature}\n" TAIL,
	  "t.yaml:11:", "bad column name" },
	{ HEAD "      - {name: email, type: string, role: identifier, kind: email}\n"
	  "      - {name: consent, type: string, role: consent}\n"
	  "      - {name: consent_at, type: timestamp, role: consent_time}\n" TAIL,
	  "t.yaml:9:", "consent column 'consent' must have type purposes" },
	{ HEAD COLS3 "      - {name: x, type: purposes, role: feature}\n" TAIL,
	  "t.yaml:11:", "type purposes is only for the consent column ('x')" },
	{ HEAD COLS3 TAIL "k: 1\n", "t.yaml:13:4:", "k must be between 2" },
	{ HEAD COLS3 TAIL "k: -3\n", "t.yaml:13:", "k must be between 2" },
	{ HEAD COLS3 TAIL "k: 1000001\n", "t.yaml:13:", "k must be between 2" },
	{ HEAD COLS3 "default_phone_country: XX\npurposes: [match, analytics]\n",
	  "t.yaml:11:24:", "unknown default_phone_country" },
	{ HEAD COLS3 "default_phone_country: CHN\npurposes: [match, analytics]\n",
	  "t.yaml:11:", "unknown default_phone_country" },
	{ HEAD COLS3 "purposes: [match, analytics]\n", "t.yaml:1:1:",
	  "missing 'default_phone_country'" },
	{ HEAD COLS3 "default_phone_country: CN\n", "t.yaml:1:1:", "missing 'purposes'" },
	{ "version: 2\nname: t\npartners:\n  - id: k\n    name: K\n"
	  "    signing_key: \"@KEY@\"\n    columns:\n" COLS3 TAIL,
	  "t.yaml:1:10:", "unsupported version" },
	{ "version: 1\nname: t\npartners:\n  - id: k\n    name: K\n"
	  "    signing_key: \"ed25519-public 0000000000000000 AAAA\"\n    columns:\n" COLS3 TAIL,
	  "t.yaml:6:", "bad signing_key of partner 'k'" },
	{ "version: 1\nname: t\npartners:\n  - id: k\n    name: K\n"
	  "    signing_key: not a key\n    columns:\n" COLS3 TAIL,
	  "t.yaml:6:18:", "bad signing_key of partner 'k'" },
	{ "version: 1\nname: t\npartners:\n  - id: k\n    name: K\n    columns:\n" COLS3 TAIL,
	  "t.yaml:4:", "partner 'k' has no signing_key" },
	{ "version: 1\nname: t\npartners: []\n" TAIL, "t.yaml:3:", "no partners" },
	{ HEAD COLS3 TAIL "name: again\n", "t.yaml:13:", "YAML: duplicate key" },
	{ HEAD COLS3 "default_phone_country: CN\npurposes: [match, analytics\n",
	  "t.yaml:", "YAML: " },
	{ "version: 1\nname: &n t\nk: *n\n", "t.yaml:3:", "aliases are not supported" },
	{ HEAD COLS3 TAIL "---\nversion: 1\n", "t.yaml:14:", "more than one YAML document" },
	{ "- a\n- b\n", "t.yaml:1:", "the policy must be a mapping" },
	{ "", "t.yaml:1:1:", "empty policy" },
	{ "# only a comment\n", "t.yaml:1:1:", "empty policy" },
	{ "version: [1]\n", "t.yaml:1:", "version must be a scalar" },
	{ "name:\n", "t.yaml:1:1:", "name has no value" },
	{ HEAD COLS3 TAIL "email: {gmail_dots: 1}\n", "t.yaml:13:21:",
	  "gmail_dots must be true or false" },
};

static void
test_bad_cases(void)
{
	size_t i, j;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct policy_problems probs = { NULL, 0 };
		struct policy *p = (struct policy *)&probs;    /* must be cleared */
		struct cg_err err;
		char *yaml = with_key(bc->yaml);
		int r, found = 0;

		cg_err_clear(&err);
		r = policy_parse("t.yaml", yaml, strlen(yaml), &p, &probs, &err);
		CHECK_EQ_INT(r, CG_ERR_POLICY);
		CHECK_EQ_INT(err.code, CG_ERR_POLICY);
		CHECK(p == NULL);
		CHECK(probs.n >= 1);
		CHECK_CONTAINS(err.msg, "t.yaml:");
		if (probs.n > 0)
			CHECK_STR(err.msg, probs.msgs[0]);
		for (j = 0; j < probs.n; j++)
			if (strncmp(probs.msgs[j], bc->where, strlen(bc->where)) == 0 &&
			    strstr(probs.msgs[j], bc->reason) != NULL)
				found = 1;
		if (!found) {
			fprintf(stderr, "case %zu: want \"%s ... %s\", got:\n", i, bc->where,
			    bc->reason);
			for (j = 0; j < probs.n; j++)
				fprintf(stderr, "  %s\n", probs.msgs[j]);
		}
		CHECK(found);
		policy_problems_free(&probs);
		CHECK(probs.msgs == NULL && probs.n == 0);
		free(yaml);
	}
}

/* The minimal valid policy that the bad cases perturb, and the defaults it gets. */
static void
test_minimal(void)
{
	struct policy *p = NULL;
	struct cg_err err;
	char *yaml = with_key(HEAD COLS3
	    "      - {name: age, type: int, role: quasi_identifier, generalize: {band: 5},"
	    " required: false}\n"
	    "      - {name: note, type: string, role: feature}\n" TAIL
	    "email: {plus_tags_all: true, gmail_dots: false}\n");
	const struct policy_partner *pp;

	CHECK_EQ_INT(policy_parse("m.yaml", yaml, strlen(yaml), &p, NULL, &err), 0);
	if (p != NULL) {
		CHECK_EQ_INT(p->k, POLICY_DEFAULT_K);
		CHECK_EQ_INT(p->email.gmail_dots, 0);
		CHECK_EQ_INT(p->email.plus_tags, 1);
		CHECK_EQ_INT(p->email.plus_tags_all, 1);
		CHECK_EQ_INT(p->email.googlemail, 1);
		CHECK_STR(p->path, "m.yaml");
		pp = policy_partner_find(p, "k");
		CHECK(pp != NULL);
		if (pp != NULL) {
			CHECK_EQ_INT(policy_column_find(pp, "age")->required, 0);
			CHECK_EQ_INT(policy_column_find(pp, "age")->has_min, 0);
			CHECK_EQ_INT(policy_column_find(pp, "note")->required, 1);
			CHECK_EQ_INT(policy_column_find(pp, "email")->required, 0);
			CHECK_EQ_INT(policy_column_find(pp, "consent")->required, 1);
			CHECK_EQ_INT(policy_column_find(pp, "age")->line, 11);
		}
	}
	policy_free(p);
	free(yaml);

	/* the NULL cases of the lookups */
	CHECK(policy_partner_find(NULL, "k") == NULL);
	CHECK(policy_column_find(NULL, "a") == NULL);
	CHECK_EQ_INT(policy_purpose_bit(NULL, "match"), -1);
	policy_free(NULL);
	policy_problems_free(NULL);
}

static void
test_many_problems(void)
{
	struct policy_problems probs = { NULL, 0 };
	struct policy *p = NULL;
	struct cg_err err;
	char *yaml = with_key(HEAD COLS3
	    "      - {name: age, type: int, role: quasi_identifier}\n"          /* 11 */
	    "      - {name: cat, type: category, role: feature}\n"              /* 12 */
	    "      - {name: email, type: string, role: identifier, kind: phone}\n" /* 13 */
	    "default_phone_country: ZZ\n"                                       /* 14 */
	    "purposes: [match, analytics, analytics]\n"                         /* 15 */
	    "k: 1\n");                                                          /* 16 */
	size_t i, j;
	static const char *const want[][2] = {
		{ "t.yaml:11:", "quasi_identifier column 'age' needs generalize" },
		{ "t.yaml:12:", "category column 'cat' needs values" },
		{ "t.yaml:13:", "duplicate column 'email'" },
		{ "t.yaml:14:", "unknown default_phone_country" },
		{ "t.yaml:15:", "duplicate purpose 'analytics'" },
		{ "t.yaml:16:", "k must be between 2" },
	};

	CHECK_EQ_INT(policy_parse("t.yaml", yaml, strlen(yaml), &p, &probs, &err), CG_ERR_POLICY);
	CHECK(p == NULL);
	CHECK_EQ_INT(probs.n, 6);
	for (i = 0; i < 6; i++) {
		int found = 0;

		for (j = 0; j < probs.n; j++)
			if (strncmp(probs.msgs[j], want[i][0], strlen(want[i][0])) == 0 &&
			    strstr(probs.msgs[j], want[i][1]) != NULL)
				found = 1;
		CHECK(found);
	}
	/* Listed in file order; the first is the one in err. */
	CHECK_CONTAINS(err.msg, "t.yaml:11:");
	for (i = 1; i < probs.n; i++)
		CHECK(atoi(probs.msgs[i - 1] + 7) <= atoi(probs.msgs[i] + 7));

	/* Problems are appended to what the caller already has. */
	CHECK_EQ_INT(policy_parse("t.yaml", yaml, strlen(yaml), &p, &probs, &err), CG_ERR_POLICY);
	CHECK_EQ_INT(probs.n, 12);
	policy_problems_free(&probs);
	free(yaml);

	/* A flood of problems is capped. */
	{
		size_t cap = 64 + 40 * 300, n;
		char *big = malloc(cap);

		CHECK(big != NULL);
		n = (size_t)snprintf(big, cap, "version: 1\n");
		for (i = 0; i < 300; i++)
			n += (size_t)snprintf(big + n, cap - n, "unknown%zu: 1\n", i);
		CHECK_EQ_INT(policy_parse("t.yaml", big, n, &p, &probs, &err), CG_ERR_POLICY);
		CHECK_EQ_INT(probs.n, POLICY_PROBLEMS_MAX + 1);
		if (probs.n > 0)
			CHECK_CONTAINS(probs.msgs[probs.n - 1], "too many problems");
		policy_problems_free(&probs);
		free(big);
	}
}

static void
test_limits_and_io(void)
{
	struct policy_problems probs = { NULL, 0 };
	struct policy *p = NULL;
	struct cg_err err;
	char *big = malloc(POLICY_FILE_MAX + 1);

	CHECK(big != NULL);
	if (big != NULL) {
		memset(big, '#', POLICY_FILE_MAX + 1);
		CHECK_EQ_INT(policy_parse("big.yaml", big, POLICY_FILE_MAX + 1, &p, &probs, &err),
		    CG_ERR_POLICY);
		CHECK_CONTAINS(err.msg, "big.yaml: policy file is larger than 1048576 bytes");
		CHECK_EQ_INT(probs.n, 1);
		policy_problems_free(&probs);
	}
	free(big);

	CHECK_EQ_INT(policy_load("tests/no/such/policy.yaml", &p, NULL, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "tests/no/such/policy.yaml: cannot open");
	CHECK(p == NULL);
	CHECK_EQ_INT(policy_load("tests", &p, NULL, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "not a regular file");

	/* Not text: rejected with the position of the first bad byte. */
	{
		static const char *const junk[][2] = {
			{ "version: 1\nname: \"\xff\"\n", "j.yaml:2:8: the policy file is not valid UTF-8" },
			{ "%\xf2", "j.yaml:1:2: the policy file is not valid UTF-8" },
			{ "%\xc2", "j.yaml:1:2: the policy file is not valid UTF-8" },
			{ "a: \xc0\xaf\n", "j.yaml:1:4: the policy file is not valid UTF-8" },
			{ "a: \xed\xa0\x80\n", "j.yaml:1:4: the policy file is not valid UTF-8" },
			{ "a: \xf4\x90\x80\x80\n", "j.yaml:1:4: the policy file is not valid UTF-8" },
			{ "a: \xe4\xb8\xad\xff\n", "j.yaml:1:5: the policy file is not valid UTF-8" },
			{ "a: b\x01\n", "j.yaml:1:5: control character" },
			{ "a: b\n\x7f", "j.yaml:2:1: control character" },
			/* what libfyaml 0.7.12 crashes on (fuzz_policy): refused before it sees them */
			{ "\n? ?5 {}:\n? {}:\t?  {}\n", "j.yaml:2:1: an explicit YAML key ('? ')" },
			{ "a:\n  - ? b:\t? c\n", "j.yaml:2:5: an explicit YAML key ('? ')" },
			{ "?", "j.yaml:1:1: an explicit YAML key ('? ')" },
			{ "a:\tb\n", "j.yaml:1:3: a tab: a policy is indented and separated with spaces only" },
			{ "# a\tcomment\n", "j.yaml:1:4: a tab" },
		};
		static const char nul[] = "a: b\0c\n";
		size_t i;

		for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
			CHECK_EQ_INT(policy_parse("j.yaml", junk[i][0], strlen(junk[i][0]), &p, NULL,
			    &err), CG_ERR_POLICY);
			CHECK_CONTAINS(err.msg, junk[i][1]);
		}
		CHECK_EQ_INT(policy_parse("j.yaml", nul, sizeof(nul) - 1, &p, NULL, &err),
		    CG_ERR_POLICY);
		CHECK_CONTAINS(err.msg, "j.yaml:1:5: control character");
		/* valid UTF-8 in a name is fine */
		{
			char *yaml = with_key("version: 1\nname: t\npartners:\n  - id: k\n"
			    "    name: \xe7\x9f\xa5\n    signing_key: \"@KEY@\"\n    columns:\n"
			    COLS3 TAIL);

			CHECK_EQ_INT(policy_parse("u.yaml", yaml, strlen(yaml), &p, NULL, &err), 0);
			if (p != NULL)
				CHECK_STR(p->partners[0].name, "\xe7\x9f\xa5");
			policy_free(p);
			free(yaml);
		}
	}
}

/* ---- cells ---- */

static struct policy *
example(void)
{
	struct policy *p = NULL;
	struct cg_err err;

	if (policy_load(EXAMPLE, &p, NULL, &err) != 0) {
		fprintf(stderr, "example: %s\n", err.msg);
		exit(1);
	}
	return p;
}

struct int_case {
	const char *cell;
	int rc;
	int64_t v;
	const char *msg;
};

static void
test_values_int(const struct policy *p)
{
	static const struct int_case age[] = {
		{ "13", 0, 13, NULL }, { "120", 0, 120, NULL }, { "042", 0, 42, NULL },
		{ "12", CG_ERR_FORMAT, 0, "below min 13" },
		{ "121", CG_ERR_FORMAT, 0, "above max 120" },
		{ "-5", CG_ERR_FORMAT, 0, "below min 13" },
		{ " 42", CG_ERR_FORMAT, 0, "not an integer" },
		{ "42 ", CG_ERR_FORMAT, 0, "not an integer" },
		{ "+42", CG_ERR_FORMAT, 0, "not an integer" },
		{ "4.2", CG_ERR_FORMAT, 0, "not an integer" },
		{ "0x10", CG_ERR_FORMAT, 0, "not an integer" },
		{ "-", CG_ERR_FORMAT, 0, "not an integer" },
		{ "9223372036854775808", CG_ERR_FORMAT, 0, "integer out of range" },
		{ "99999999999999999999999", CG_ERR_FORMAT, 0, "integer out of range" },
		{ "", CG_ERR_FORMAT, 0, "required" },
	};
	const struct policy_partner *k = policy_partner_find(p, "k");
	const struct policy_column *c = policy_column_find(k, "age");
	struct policy_column unbounded;
	struct policy_value v;
	struct cg_err err;
	size_t i;

	for (i = 0; i < sizeof(age) / sizeof(age[0]); i++) {
		cg_err_clear(&err);
		CHECK_EQ_INT(policy_value_parse(p, c, age[i].cell, strlen(age[i].cell), &v, &err),
		    age[i].rc);
		if (age[i].rc == 0) {
			CHECK_EQ_INT(v.i, age[i].v);
			CHECK_EQ_INT(v.is_null, 0);
		} else {
			CHECK_EQ_INT(err.code, CG_ERR_FORMAT);
			CHECK_CONTAINS(err.msg, age[i].msg);
			/* never quote the cell */
			if (strlen(age[i].cell) > 2)
				CHECK(strstr(err.msg, age[i].cell) == NULL);
		}
	}

	/* full int64 range without min/max */
	unbounded = *c;
	unbounded.has_min = unbounded.has_max = 0;
	CHECK_EQ_INT(policy_value_parse(p, &unbounded, "9223372036854775807", 19, &v, &err), 0);
	CHECK(v.i == INT64_MAX);
	CHECK_EQ_INT(policy_value_parse(p, &unbounded, "-9223372036854775808", 20, &v, &err), 0);
	CHECK(v.i == INT64_MIN);
	CHECK_EQ_INT(policy_value_parse(p, &unbounded, "-9223372036854775809", 20, &v, &err),
	    CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "integer out of range");
	CHECK_EQ_INT(policy_value_parse(p, &unbounded, "-0", 2, &v, &err), 0);
	CHECK_EQ_INT(v.i, 0);

	/* not required: empty is null */
	unbounded.required = 0;
	CHECK_EQ_INT(policy_value_parse(p, &unbounded, "", 0, &v, &err), 0);
	CHECK_EQ_INT(v.is_null, 1);

	/* an embedded NUL is not a digit */
	CHECK_EQ_INT(policy_value_parse(p, c, "4\0" "2", 3, &v, &err), CG_ERR_FORMAT);
}

static void
test_values_other(const struct policy *p)
{
	const struct policy_partner *k = policy_partner_find(p, "k");
	const struct policy_column *cat = policy_column_find(k, "top_course_category");
	const struct policy_column *con = policy_column_find(k, "consent");
	const struct policy_column *at = policy_column_find(k, "consent_at");
	const struct policy_column *email = policy_column_find(k, "email");
	const struct policy_column *region = policy_column_find(k, "region");
	struct policy_value v;
	struct cg_err err;
	char long_cell[POLICY_VALUE_MAX + 2];

	/* categories: exact match */
	CHECK_EQ_INT(policy_value_parse(p, cat, "finance", 7, &v, &err), 0);
	CHECK(v.slen == 7 && memcmp(v.s, "finance", 7) == 0);
	CHECK_EQ_INT(policy_value_parse(p, cat, "music!", 5, &v, &err), 0);    /* len counts */
	CHECK_EQ_INT(policy_value_parse(p, cat, "Finance", 7, &v, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "not one of the category's values");
	CHECK(strstr(err.msg, "Finance") == NULL);
	CHECK_EQ_INT(policy_value_parse(p, cat, "financ", 6, &v, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(policy_value_parse(p, cat, "finance ", 8, &v, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(policy_value_parse(p, cat, "", 0, &v, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "required");

	/* purposes */
	CHECK_EQ_INT(policy_value_parse(p, con, "match;analytics", 15, &v, &err), 0);
	CHECK_EQ_INT(v.bits, 0x3);
	CHECK_EQ_INT(policy_value_parse(p, con, " marketing ; match ", 19, &v, &err), 0);
	CHECK_EQ_INT(v.bits, 0x5);
	CHECK_EQ_INT(policy_value_parse(p, con, "match;match", 11, &v, &err), 0);
	CHECK_EQ_INT(v.bits, 0x1);
	CHECK_EQ_INT(policy_value_parse(p, con, "match;resale", 12, &v, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(v.bits, 0);
	CHECK_EQ_INT(policy_value_parse(p, con, "", 0, &v, &err), 0);
	CHECK_EQ_INT(v.bits, 0);
	CHECK_EQ_INT(v.is_null, 0);
	CHECK_EQ_INT(policy_value_parse(p, con, "  ", 2, &v, &err), 0);
	CHECK_EQ_INT(v.bits, 0);
	CHECK_EQ_INT(policy_value_parse(p, con, "match;resale", 12, &v, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "unknown purpose");
	CHECK(strstr(err.msg, "resale") == NULL);
	CHECK_EQ_INT(policy_value_parse(p, con, "Match", 5, &v, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "unknown purpose");
	CHECK_EQ_INT(policy_value_parse(p, con, "match,analytics", 15, &v, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(policy_value_parse(p, con, "match;;analytics", 16, &v, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "empty purpose");
	CHECK_EQ_INT(policy_value_parse(p, con, "match;", 6, &v, &err), CG_ERR_FORMAT);

	/* timestamps go through policy_parse_time */
	CHECK_EQ_INT(policy_value_parse(p, at, "2024-01-15T10:30:00+08:00", 25, &v, &err), 0);
	CHECK_EQ_INT(v.i, 1705285800);
	CHECK_EQ_INT(policy_value_parse(p, at, "2024-01-15T10:30", 16, &v, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(policy_value_parse(p, at, "", 0, &v, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "required");

	/* strings and identifiers: only the length */
	CHECK_EQ_INT(policy_value_parse(p, email, "a@b.c", 5, &v, &err), 0);
	CHECK(v.s != NULL && v.slen == 5);
	CHECK_EQ_INT(policy_value_parse(p, email, "", 0, &v, &err), 0);
	CHECK_EQ_INT(v.is_null, 1);
	CHECK_EQ_INT(policy_value_parse(p, region, "", 0, &v, &err), CG_ERR_FORMAT);
	memset(long_cell, 'a', sizeof(long_cell));
	CHECK_EQ_INT(policy_value_parse(p, email, long_cell, POLICY_VALUE_MAX, &v, &err), 0);
	CHECK_EQ_INT(policy_value_parse(p, email, long_cell, POLICY_VALUE_MAX + 1, &v, &err),
	    CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "longer than 1024 bytes");
	CHECK_EQ_INT(policy_value_parse(p, region, "a\0b", 3, &v, &err), CG_ERR_FORMAT);
}

struct time_case {
	const char *s;
	int rc;
	int64_t t;
	const char *msg;
};

static void
test_time(void)
{
	static const struct time_case cases[] = {
		{ "1970-01-01", 0, 0, NULL },
		{ "1970-01-01T00:00:00Z", 0, 0, NULL },
		{ "1969-12-31T23:59:59Z", 0, -1, NULL },
		{ "2000-02-29", 0, 951782400, NULL },
		{ "2024-02-29T12:00:00Z", 0, 1709208000, NULL },
		{ "2024-01-15T10:30:00", 0, 1705314600, NULL },
		{ "2024-01-15 10:30:00", 0, 1705314600, NULL },
		{ "2024-01-15T10:30:00.123456789Z", 0, 1705314600, NULL },
		{ "2024-01-15T10:30:00.5", 0, 1705314600, NULL },
		{ "2024-01-15T10:30:00+08:00", 0, 1705285800, NULL },
		{ "2024-01-15T10:30:00-05:30", 0, 1705334400, NULL },
		{ "2024-01-15T10:30:00.25+00:00", 0, 1705314600, NULL },
		{ "2024-01-15T10:30:00-00:00", 0, 1705314600, NULL },
		{ "9999-12-31T23:59:59Z", 0, 253402300799LL, NULL },
		{ "0001-01-01", 0, -62135596800LL, NULL },
		{ "1600-02-29", 0, -11670998400LL, NULL },
		{ "2023-02-29", CG_ERR_FORMAT, 0, "day out of range" },
		{ "1900-02-29", CG_ERR_FORMAT, 0, "day out of range" },
		{ "2100-02-29", CG_ERR_FORMAT, 0, "day out of range" },
		{ "2024-04-31", CG_ERR_FORMAT, 0, "day out of range" },
		{ "2024-01-00", CG_ERR_FORMAT, 0, "day out of range" },
		{ "2024-13-01", CG_ERR_FORMAT, 0, "month out of range" },
		{ "2024-00-10", CG_ERR_FORMAT, 0, "month out of range" },
		{ "2024-01-15T24:00:00Z", CG_ERR_FORMAT, 0, "time of day out of range" },
		{ "2024-01-15T23:60:00Z", CG_ERR_FORMAT, 0, "time of day out of range" },
		{ "2024-01-15T23:59:60Z", CG_ERR_FORMAT, 0, "time of day out of range" },
		{ "2024-01-15T10:30:00+24:00", CG_ERR_FORMAT, 0, "offset out of range" },
		{ "2024-01-15T10:30:00+08:60", CG_ERR_FORMAT, 0, "offset out of range" },
		{ "2024-1-15", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "24-01-15", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024/01/15", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T10:30", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T10:30:00+0800", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T10:30:00+08", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T10:30:00.Z", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T10:30:00.1234567890Z", CG_ERR_FORMAT, 0, "not an ISO 8601" },
		{ "2024-01-15T10:30:00z", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15t10:30:00Z", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T10:30:00ZZ", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T10:30:00 ", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15 ", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ " 2024-01-15", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T1:30:00Z", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "2024-01-15T-1:30:00", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "+024-01-15", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
		{ "", CG_ERR_FORMAT, 0, "not an ISO 8601 timestamp" },
	};
	struct cg_err err;
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cg_err_clear(&err);
		t = 12345;
		CHECK_EQ_INT(policy_parse_time(cases[i].s, strlen(cases[i].s), &t, &err),
		    cases[i].rc);
		if (cases[i].rc == 0) {
			if (t != cases[i].t)
				fprintf(stderr, "time case %zu (%s)\n", i, cases[i].s);
			CHECK_EQ_INT(t, cases[i].t);
		} else {
			CHECK_EQ_INT(t, 0);
			CHECK_CONTAINS(err.msg, cases[i].msg);
			if (strlen(cases[i].s) > 0)
				CHECK(strstr(err.msg, cases[i].s) == NULL);
		}
	}
	/* the length is honoured: a valid prefix of a longer buffer */
	CHECK_EQ_INT(policy_parse_time("2024-01-15T10:30:00Zjunk", 20, &t, &err), 0);
	CHECK_EQ_INT(t, 1705314600);
	CHECK_EQ_INT(policy_parse_time("2024-01-15", 9, &t, &err), CG_ERR_FORMAT);
}

/* ---- generalization ---- */

static void
test_generalize(const struct policy *p)
{
	const struct policy_partner *k = policy_partner_find(p, "k");
	const struct policy_column *age = policy_column_find(k, "age");
	const struct policy_column *region = policy_column_find(k, "region");
	struct policy_column band7;
	char out[64];

	CHECK_EQ_INT(policy_generalize_int(age, 29, out, sizeof(out)), 0);
	CHECK_STR(out, "20-29");
	CHECK_EQ_INT(policy_generalize_int(age, 20, out, sizeof(out)), 0);
	CHECK_STR(out, "20-29");
	CHECK_EQ_INT(policy_generalize_int(age, 0, out, sizeof(out)), 0);
	CHECK_STR(out, "0-9");
	CHECK_EQ_INT(policy_generalize_int(age, 9, out, sizeof(out)), 0);
	CHECK_STR(out, "0-9");
	CHECK_EQ_INT(policy_generalize_int(age, 120, out, sizeof(out)), 0);
	CHECK_STR(out, "120-129");
	CHECK_EQ_INT(policy_generalize_int(age, -1, out, sizeof(out)), 0);
	CHECK_STR(out, "-10--1");
	CHECK_EQ_INT(policy_generalize_int(age, -10, out, sizeof(out)), 0);
	CHECK_STR(out, "-10--1");
	CHECK_EQ_INT(policy_generalize_int(age, -11, out, sizeof(out)), 0);
	CHECK_STR(out, "-20--11");
	CHECK_EQ_INT(policy_generalize_int(age, INT64_MAX, out, sizeof(out)), 0);
	CHECK_STR(out, "9223372036854775800-9223372036854775807");
	CHECK_EQ_INT(policy_generalize_int(age, INT64_MIN, out, sizeof(out)), 0);
	CHECK_STR(out, "-9223372036854775808--9223372036854775801");

	band7 = *age;
	band7.band = 7;
	CHECK_EQ_INT(policy_generalize_int(&band7, 13, out, sizeof(out)), 0);
	CHECK_STR(out, "7-13");
	CHECK_EQ_INT(policy_generalize_int(&band7, 14, out, sizeof(out)), 0);
	CHECK_STR(out, "14-20");

	/* too small an output, and the wrong kind of column */
	CHECK_EQ_INT(policy_generalize_int(age, 29, out, 5), CG_ERR_LIMIT);
	CHECK_STR(out, "");
	CHECK_EQ_INT(policy_generalize_int(age, 29, out, 6), 0);
	CHECK_EQ_INT(policy_generalize_int(region, 29, out, sizeof(out)), CG_ERR_ARG);
	CHECK_EQ_INT(policy_generalize_str(age, "x", 1, out, sizeof(out)), CG_ERR_ARG);

	CHECK_EQ_INT(policy_generalize_str(region, "CN-BJ", 5, out, sizeof(out)), 0);
	CHECK_STR(out, "North");
	CHECK_EQ_INT(policy_generalize_str(region, "CN-BJX", 5, out, sizeof(out)), 0);
	CHECK_STR(out, "North");
	CHECK_EQ_INT(policy_generalize_str(region, "CN-B", 4, out, sizeof(out)), 0);
	CHECK_STR(out, "Other");
	CHECK_EQ_INT(policy_generalize_str(region, "cn-bj", 5, out, sizeof(out)), 0);
	CHECK_STR(out, "Other");
	CHECK_EQ_INT(policy_generalize_str(region, "", 0, out, sizeof(out)), 0);
	CHECK_STR(out, "Other");
	CHECK_EQ_INT(policy_generalize_str(region, "CN-BJ", 5, out, 5), CG_ERR_LIMIT);
	CHECK_EQ_INT(policy_generalize_str(region, "CN-BJ", 5, out, 6), 0);
	CHECK_STR(out, "North");
}

int
main(void)
{
	struct policy *p;

	if (sodium_init() < 0)
		return 1;
	make_key_line();
	test_example();
	test_minimal();
	test_bad_cases();
	test_many_problems();
	test_limits_and_io();
	p = example();
	test_values_int(p);
	test_values_other(p);
	test_time();
	test_generalize(p);
	policy_free(p);
	CGT_DONE();
}
