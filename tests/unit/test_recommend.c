/* test_recommend.c - next-best offers from an affinity table: the lift rule, its ties, and every rejection. */
#include "agent/recommend.h"
#include "cgtest.h"

#include <stdio.h>
#include <unistd.h>

static char dir[] = "/tmp/cg-recommend-XXXXXX";

static const char *
put(const char *name, const char *text)
{
	static char path[4][256];
	static int k;
	FILE *f;
	char *p = path[k++ % 4];

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return p;
}

static void
test_lift(void)
{
	struct recommend_table *t = NULL;
	struct cg_err err;
	const char *to;
	double lift;
	/*
	 * N = 400.  programming: 100 (strategy 60, moba 40); finance: 300 (strategy 40, moba 260).
	 * n_strategy = 100, n_moba = 300.  lift(programming, strategy) = 0.6 / 0.25 = 2.4,
	 * lift(programming, moba) = 0.4 / 0.75; lift(finance, moba) = (260/300) / 0.75.
	 */
	const char *p = put("aff.csv", "k_top_course_category,g_top_game_category,count\n"
	    "programming,strategy,60\nprogramming,moba,40\nfinance,strategy,40\nfinance,moba,260\n"
	    "*,moba,500\nfinance,*,500\n");

	cg_err_clear(&err);
	CHECK_EQ_INT(recommend_table_load(p, "k_top_course_category", "g_top_game_category", &t, &err), 0);
	CHECK_EQ_INT(recommend_best(t, "programming", &to, &lift), 0);
	CHECK_STR(to, "strategy");
	CHECK(lift > 2.3999 && lift < 2.4001);
	CHECK_EQ_INT(recommend_best(t, "finance", &to, &lift), 0);
	CHECK_STR(to, "moba");
	CHECK(lift > (260.0 / 300) / 0.75 - 1e-9 && lift < (260.0 / 300) / 0.75 + 1e-9);
	/* '*' keys are ignored; an unknown category gets no offer. */
	CHECK_EQ_INT(recommend_best(t, "*", &to, &lift), CG_ERR_NOTFOUND);
	CHECK_EQ_INT(recommend_best(t, "history", &to, &lift), CG_ERR_NOTFOUND);
	CHECK(to == NULL);
	recommend_table_free(t);

	/* Noisy counts below zero count as zero; equal lifts go to the larger cell, then the smaller name. */
	p = put("aff2.csv", "a,b,count\nx,p,-5\nx,q,10\ny,p,20\ny,q,20\nz,r,10\nz,s,10\n");
	CHECK_EQ_INT(recommend_table_load(p, "a", "b", &t, &err), 0);
	CHECK_EQ_INT(recommend_best(t, "x", &to, &lift), 0);
	CHECK_STR(to, "q");
	CHECK_EQ_INT(recommend_best(t, "z", &to, &lift), 0);
	CHECK_STR(to, "r");
	recommend_table_free(t);
	/* A category whose cells are all withheld or non-positive gets no offer. */
	p = put("aff3.csv", "a,b,count\nx,p,-3\ny,p,20\n");
	CHECK_EQ_INT(recommend_table_load(p, "a", "b", &t, &err), 0);
	CHECK_EQ_INT(recommend_best(t, "x", &to, &lift), CG_ERR_NOTFOUND);
	recommend_table_free(t);
}

static void
test_rejections(void)
{
	struct recommend_table *t = NULL;
	struct cg_err err;
	const char *p;

	cg_err_clear(&err);
	p = put("r1.csv", "a,b\nx,y\n");
	CHECK_EQ_INT(recommend_table_load(p, "a", "b", &t, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "r1.csv:1: the header lacks column count");
	CHECK(t == NULL);
	p = put("r2.csv", "a,b,count\nx,y,12\nx,z,1.5\n");
	CHECK_EQ_INT(recommend_table_load(p, "a", "b", &t, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "r2.csv:3 (count): not an integer");
	p = put("r3.csv", "a,b,count\nx,y,12\nx,y,3\n");
	CHECK_EQ_INT(recommend_table_load(p, "a", "b", &t, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "r3.csv:3: the same pair of categories twice");
	p = put("r4.csv", "a,b,count\nx,12\n");
	CHECK_EQ_INT(recommend_table_load(p, "a", "b", &t, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "r4.csv:2: 2 fields");
	p = put("r5.csv", "");
	CHECK_EQ_INT(recommend_table_load(p, "a", "b", &t, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "empty file");
	CHECK(recommend_table_load("/nonexistent/aff.csv", "a", "b", &t, &err) < 0);
	CHECK(t == NULL);
}

static void
test_run(void)
{
	struct policy *pol = NULL;
	struct recommend_opts o = { 0 };
	struct recommend_stats st;
	struct cg_err err;
	char out[256], line[256];
	FILE *f;

	cg_err_clear(&err);
	CHECK_EQ_INT(policy_load("policy/example.yaml", &pol, NULL, &err), 0);
	if (pol == NULL)
		return;
	snprintf(out, sizeof(out), "%s/offers.csv", dir);
	o.pol = pol;
	o.partner = "k";
	o.aggregates = put("run-aff.csv", "k_top_course_category,g_top_game_category,count\n"
	    "programming,strategy,60\nprogramming,moba,40\nfinance,strategy,40\nfinance,moba,260\n");
	o.input = put("users.csv", "user_id,email,top_course_category\nu1,a@x,programming\n"
	    "\"u,2\",b@x,finance\nu3,c@x,history\nu4,d@x,\n");
	o.out = out;
	o.weight = 5;
	CHECK_EQ_INT(recommend_run(&o, &st, &err), 0);
	CHECK_EQ_INT(st.users, 4);
	CHECK_EQ_INT(st.offered, 2);
	CHECK_EQ_INT(st.no_offer, 2);
	CHECK_STR(st.from_col, "k_top_course_category");
	CHECK_STR(st.to_col, "g_top_game_category");
	f = fopen(out, "r");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK(fgets(line, sizeof(line), f) != NULL);
		CHECK_STR(line, "user_id,offer,lift,score\n");
		CHECK(fgets(line, sizeof(line), f) != NULL);
		CHECK_STR(line, "\"u1\",\"strategy\",2.4000,12.0000\n");
		CHECK(fgets(line, sizeof(line), f) != NULL);
		CHECK_CONTAINS(line, "\"u,2\",\"moba\",");
		fclose(f);
	}
	/* G's users are offered K's categories from the same table. */
	o.partner = "g";
	o.input = put("viewers.csv", "user_id,top_game_category\nv1,strategy\n");
	CHECK_EQ_INT(recommend_run(&o, &st, &err), 0);
	CHECK_STR(st.from_col, "g_top_game_category");
	CHECK_EQ_INT(st.offered, 1);

	/* Rejections leave no output behind. */
	unlink(out);
	o.partner = "k";
	o.aggregates = put("bad-aff.csv", "region,count\nCN,40\n");
	CHECK_EQ_INT(recommend_run(&o, &st, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "names no category column of partner k");
	CHECK(access(out, F_OK) != 0);
	o.aggregates = put("run-aff2.csv", "k_top_course_category,g_top_game_category,count\nx,y,1\n");
	o.input = put("users2.csv", "email,top_course_category\na@x,programming\n");
	CHECK_EQ_INT(recommend_run(&o, &st, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "users2.csv:1: the header lacks the partner's local_id column");
	CHECK(access(out, F_OK) != 0);
	o.partner = "nosuch";
	CHECK_EQ_INT(recommend_run(&o, &st, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "partner nosuch is not in the policy");
	policy_free(pol);
}

int
main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_lift();
	test_rejections();
	test_run();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	CGT_DONE();
}
