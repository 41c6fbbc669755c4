/* cli_recommend.c - crossgate agent recommend (agent/recommend.h) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "agent/recommend.h"
#include "policy/policy.h"

static const char recommend_usage[] =
	"crossgate agent recommend --policy FILE --partner ID --input CSV --aggregates AFFINITY.csv\n"
	"                          --out OFFERS.csv [--weight W]";

static const char recommend_help[] =
	"Next-best offers, at the partner: for each of the partner's own users (--input,\n"
	"its own CSV), the other platform's category to promote.  It reads nothing but\n"
	"the partner's own data and released DP statistics: the affinity table\n"
	"(--aggregates: a 'crossgate query' answer grouped by one category column of\n"
	"each partner, with --metric count) and the content-mix weight of the offered\n"
	"content from the analytics report (--weight: beta, the live-stream weight, when\n"
	"the knowledge platform recommends live streams; alpha the other way; default 1).\n"
	"\n"
	"For a user whose category is a, the offer is the category b with the highest\n"
	"lift(a, b) = (n_ab / n_a) / (n_b / N) over the released noisy counts (below zero\n"
	"counted as 0, withheld cells as 0); score = weight * lift.  OFFERS.csv (0600):\n"
	"user_id, offer, lift, score.  A user whose category is missing or not in the\n"
	"table gets no offer and is counted.  Nothing is sent anywhere.\n";

int
cmd_agent_recommend(int argc, char **argv, struct cli_ctx *ctx)
{
	struct recommend_opts o;
	struct recommend_stats st;
	struct policy *pol = NULL;
	struct cg_err err;
	const char *policy = NULL, *weight = NULL;
	char *end;
	int r = 1;
	const struct cliopt opts[] = { CLIOPT_REQ("policy", &policy), CLIOPT_REQ("partner", &o.partner),
		CLIOPT_REQ("input", &o.input), CLIOPT_REQ("aggregates", &o.aggregates), CLIOPT_REQ("out", &o.out),
		CLIOPT_STR("weight", &weight), CLIOPT_END };

	memset(&o, 0, sizeof(o));
	o.weight = 1;
	if (cliopt_parse(argc, argv, recommend_usage, recommend_help, opts, NULL, &r))
		return r;
	r = 1;
	if (weight != NULL) {
		errno = 0;
		o.weight = strtod(weight, &end);
		if (errno != 0 || end == weight || *end != '\0' || !isfinite(o.weight) || o.weight < 0)
			return cli_usage(recommend_usage, "--weight must be a finite number, 0 or more");
	}
	if (cli_load_policy(policy, &pol) != 0)
		return 1;
	o.pol = pol;
	cg_err_clear(&err);
	if (recommend_run(&o, &st, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu offers to %llu users (%llu without an offer), %s -> %s\n", o.out,
		    (unsigned long long)st.offered, (unsigned long long)st.users, (unsigned long long)st.no_offer,
		    st.from_col, st.to_col);
	r = 0;
out:
	policy_free(pol);
	return r;
}
