/*
 * test_analytics_dataset.c - the analytics core's parsers: the export and
 * aggregates CSV (analytics/dataset.c) and the provenance sidecar
 * (analytics/provenance.c).  Every rejection is checked with its message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics/dataset.h"
#include "analytics/provenance.h"
#include "tests/unit/cgtest.h"

static const char hdr[] =
    "pseudonym,age,region,k_course_spend_cents,k_learning_minutes,k_courses_bought,"
    "k_top_course_category,k_conversion_value_cents,g_watch_minutes,g_gift_spend_cents,"
    "g_streams_followed,g_top_game_category\n";

static int
load(const char *text, struct dataset **d, struct cg_err *err)
{
	return dataset_load_mem("x.csv", text, strlen(text), d, err);
}

static void
test_export_ok(void)
{
	char buf[2048];
	struct dataset *d = NULL;
	struct cg_err err;

	snprintf(buf, sizeof(buf), "%s"
	    "aa,\"20-29\",\"North\",100,20,1,\"music\",900,30,0,4,\"rpg\"\r\n"
	    "bb,\"30-39\",\"East\",0,5,0,\"art, \"\"modern\"\"\",12.5,,7,1,\"moba\"\n"
	    "cc,\"20-29\",\"North\",-3,0,2,\"music\",1,2,3,4,\n", hdr);
	CHECK_EQ_INT(load(buf, &d, &err), 0);
	if (d == NULL)
		return;
	CHECK_EQ_INT(d->nrows, 3);
	CHECK(d->has_num[DATASET_SPEND] && d->has_cat[DATASET_GAME_CAT]);
	CHECK(d->num[DATASET_SPEND][0] == 100.0 && d->num[DATASET_SPEND][2] == -3.0);
	CHECK(d->num[DATASET_CONV][1] == 12.5);
	CHECK(isnan(d->num[DATASET_WATCH][1]));
	/* Levels are sorted, so the row order of an export does not matter. */
	CHECK_EQ_INT(d->levels[DATASET_COURSE_CAT].n, 2);
	CHECK_STR(d->levels[DATASET_COURSE_CAT].names[0], "art, \"modern\"");
	CHECK_STR(d->levels[DATASET_COURSE_CAT].names[1], "music");
	CHECK_EQ_INT(d->cat[DATASET_COURSE_CAT][0], 1);
	CHECK_EQ_INT(d->cat[DATASET_COURSE_CAT][1], 0);
	CHECK_EQ_INT(d->cat[DATASET_GAME_CAT][2], -1);
	CHECK_STR(d->levels[DATASET_AGE].names[d->cat[DATASET_AGE][1]], "30-39");
	dataset_free(d);

	/* Columns in another order, an unknown one, a missing one: found by name. */
	CHECK_EQ_INT(load("pseudonym,extra,g_watch_minutes,k_learning_minutes\nz,q,10,20\n", &d, &err), 0);
	if (d != NULL) {
		CHECK(!d->has_num[DATASET_CONV] && d->num[DATASET_CONV] == NULL);
		CHECK(d->num[DATASET_WATCH][0] == 10.0 && d->num[DATASET_LEARN][0] == 20.0);
	}
	dataset_free(d);
	/* A header and no rows. */
	CHECK_EQ_INT(load(hdr, &d, &err), 0);
	CHECK(d != NULL && d->nrows == 0);
	dataset_free(d);
	dataset_free(NULL);
}

static void
test_export_bad(void)
{
	struct dataset *d = (struct dataset *)1;
	struct cg_err err;
	char buf[4096];
	size_t n, i;

	CHECK_EQ_INT(load("", &d, &err), CG_ERR_FORMAT);
	CHECK(d == NULL);
	CHECK_CONTAINS(err.msg, "x.csv: empty file");
	CHECK_EQ_INT(load("user_id,email\nk1,a@b\n", &d, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "x.csv:1:1: not an export");
	CHECK_EQ_INT(load("pseudonym,foo\n", &d, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "none of the feature columns");
	CHECK_EQ_INT(load("pseudonym,age,age\n", &d, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "x.csv:1:3: column age appears twice");
	CHECK_EQ_INT(load("pseudonym,,age\n", &d, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "x.csv:1:2: empty column name");
	CHECK_EQ_INT(load("pseudonym,age\na,1\nb\n", &d, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "x.csv:3: row has 1 fields, the header 2");
	/* Numbers: plain decimals only, and the value never in the message. */
	{
		static const char *const bad[] = { "1x", "+1", "1 2", "1e5", "inf", "nan", "0x10", "-",
			".", "1.2.3", "2000000000000000", NULL };

		for (i = 0; bad[i] != NULL; i++) {
			snprintf(buf, sizeof(buf), "pseudonym,k_learning_minutes\na,1\nb,%s\n", bad[i]);
			CHECK_EQ_INT(load(buf, &d, &err), CG_ERR_FORMAT);
			CHECK_CONTAINS(err.msg, "x.csv:3:2 (k_learning_minutes): not a decimal number");
			CHECK(strstr(err.msg, bad[i]) == NULL || strlen(bad[i]) < 2);
		}
	}
	/* A CSV syntax error in a row fails the whole release. */
	CHECK_EQ_INT(dataset_load_mem("x.csv", "pseudonym,age\na,x\0y\n", 22, &d, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "x.csv:2");
	/* Too many distinct values of one category. */
	n = (size_t)snprintf(buf, sizeof(buf), "pseudonym,region\n");
	for (i = 0; i <= DATASET_LEVELS_MAX && n < sizeof(buf) - 16; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "p,r%zu\n", i);
	CHECK_EQ_INT(load(buf, &d, &err), CG_ERR_LIMIT);
	CHECK_CONTAINS(err.msg, "(region): more than 256 distinct values");
	CHECK_EQ_INT(dataset_load("/nonexistent/x.csv", &d, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "/nonexistent/x.csv");
}

static void
test_pairs(void)
{
	static const char agg[] =
	    "age,k_top_course_category,g_top_game_category,count\n"
	    "\"20-29\",\"music\",\"rpg\",30\n"
	    "\"30-39\",\"music\",\"rpg\",12\n"
	    "\"20-29\",\"art\",\"moba\",-2\n";
	struct dataset_pairs *p = NULL;
	struct cg_err err;

	CHECK_EQ_INT(dataset_pairs_load_mem("a.csv", agg, strlen(agg), "k_top_course_category",
	    "g_top_game_category", "count", &p, &err), 0);
	if (p != NULL) {
		CHECK_EQ_INT(p->groups, 3);
		CHECK_EQ_INT(p->a.n, 2);
		CHECK_EQ_INT(p->b.n, 2);
		/* art < music, moba < rpg; the two music/rpg groups are summed; absent pairs NAN. */
		CHECK(p->count[1 * 2 + 1] == 42.0);
		CHECK(p->count[0 * 2 + 0] == -2.0);
		CHECK(isnan(p->count[0 * 2 + 1]) && isnan(p->count[1 * 2 + 0]));
	}
	dataset_pairs_free(p);
	CHECK_EQ_INT(dataset_pairs_load_mem("a.csv", "x,count\n", 8, "k_top_course_category",
	    "g_top_game_category", "count", &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "a.csv:1: the header has no column k_top_course_category");
	CHECK_EQ_INT(dataset_pairs_load_mem("a.csv", "a,b,count\nx,y,z\n", 16, "a", "b", "count", &p,
	    &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "a.csv:2:3 (count): not a decimal number");
	CHECK_EQ_INT(dataset_pairs_load_mem("a.csv", "a,b,count\n,y,3\n", 15, "a", "b", "count", &p,
	    &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "a.csv:2:1 (a): empty group value");
	CHECK(p == NULL);
}

static int
prov(const char *text, struct provenance *p, struct cg_err *err)
{
	return provenance_parse("m.json", text, strlen(text), p, err);
}

static void
test_provenance(void)
{
	struct provenance p;
	struct cg_err err;
	char path[64], big[PROVENANCE_FILE_MAX + 2];
	FILE *f;

	CHECK_EQ_INT(prov("{\"export_id\":\"ab01\",\"purpose\":\"analytics\",\"k\":10,\"rows\":5,"
	    "\"policy_hash\":\"ff\",\"audit_index\":7,\"sensitive\":[\"a\",\"b\"],\"new\":1}", &p, &err), 0);
	CHECK(p.known && !p.query);
	CHECK_STR(p.export_id, "ab01");
	CHECK_EQ_INT(p.k, 10);
	CHECK_EQ_INT(p.rows, 5);
	CHECK_EQ_INT(p.audit_index, 7);
	CHECK_STR(p.sensitive, "a, b");
	CHECK_STR(p.created, "");
	/* A query's sidecar. */
	CHECK_EQ_INT(prov("{\"query_id\":\"cd\",\"purpose\":\"analytics\",\"policy_hash\":\"00\"}", &p,
	    &err), 0);
	CHECK(p.known && p.query && p.audit_index == -1);
	CHECK_STR(p.export_id, "cd");

	CHECK_EQ_INT(prov("{\"export_id\":\"ab\"", &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "m.json:1:");
	CHECK(!p.known && p.audit_index == -1);
	CHECK_EQ_INT(prov("[]", &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "not a JSON object");
	CHECK_EQ_INT(prov("{\"purpose\":\"a\",\"k\":1,\"rows\":1,\"policy_hash\":\"00\"}", &p, &err),
	    CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "m.json: member export_id is missing");
	CHECK_EQ_INT(prov("{\"export_id\":\"AB\",\"purpose\":\"a\",\"k\":1,\"rows\":1,\"policy_hash\":\"00\"}",
	    &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "export_id is not lowercase hex");
	CHECK_EQ_INT(prov("{\"export_id\":\"abc\",\"purpose\":\"a\",\"k\":1,\"rows\":1,\"policy_hash\":\"00\"}",
	    &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "odd number of hex digits");
	CHECK_EQ_INT(prov("{\"export_id\":\"ab\",\"purpose\":\"a\",\"k\":-1,\"rows\":1,\"policy_hash\":\"00\"}",
	    &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "member k is not a non-negative integer");
	CHECK_EQ_INT(prov("{\"export_id\":\"ab\",\"purpose\":\"<b>\\n\",\"k\":1,\"rows\":1,"
	    "\"policy_hash\":\"00\"}", &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "member purpose holds a control");
	CHECK_EQ_INT(prov("{\"export_id\":\"ab\",\"export_id\":\"cd\"}", &p, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(prov("{\"export_id\":\"ab\",\"purpose\":\"a\",\"k\":1,\"rows\":1,\"policy_hash\":\"00\","
	    "\"sensitive\":[1]}", &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "member sensitive is not a string");

	CHECK_EQ_INT(provenance_load("/nonexistent/m.json", &p, &err), CG_ERR_NOTFOUND);
	snprintf(path, sizeof(path), "/tmp/cg_prov_%d.json", (int)getpid());
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	if ((f = fopen(path, "wb")) != NULL) {
		fwrite(big, 1, sizeof(big), f);
		fclose(f);
	}
	CHECK_EQ_INT(provenance_load(path, &p, &err), CG_ERR_LIMIT);
	CHECK_CONTAINS(err.msg, "larger than 65536 bytes");
	unlink(path);
	CHECK_EQ_INT(provenance_sidecar_path("e.csv", path, sizeof(path), &err), 0);
	CHECK_STR(path, "e.csv.meta.json");
	CHECK_EQ_INT(provenance_sidecar_path("e.csv", path, 8, &err), CG_ERR_ARG);
}

int
main(void)
{
	test_export_ok();
	test_export_bad();
	test_pairs();
	test_provenance();
	CGT_DONE();
}
