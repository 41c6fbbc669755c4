/* cli_experiment.c - crossgate experiment create (gateway/experiment.h) */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "audit/audit.h"
#include "gateway/experiment.h"
#include "store/store.h"
#include "policy/policy.h"

static const char experiment_usage[] =
	"crossgate experiment create --db DB --policy FILE --keys DIR --audience NAME --name EXP\n"
	"                            [--partner ID] [--analyst NAME]";

static const char experiment_help[] =
	"create: an A/B experiment on an audience ('crossgate audience create').  Its\n"
	"members are split into treatment and control by HMAC-SHA-256 of the subject\n"
	"(its two partners' tokens) under a random key drawn for the experiment and\n"
	"kept at the gateway; the share held out as control is the policy's\n"
	"marketing: holdout (default 0.5).  The arms are recorded at the gateway\n"
	"(table experiment_subjects) for the outcomes and the lift of later steps.\n"
	"The campaign partner (--partner, default the audience's only receiver) gets a\n"
	"delivery named EXP with its TREATMENT users only, pulled and opened like any\n"
	"audience ('crossgate agent audience'); the audience's own pending delivery to\n"
	"it is withdrawn, and an audience it has already fetched is refused, so that\n"
	"control users never reach it.  An experiment whose smaller arm would hold\n"
	"fewer than min_audience subjects (judged on the audience's noisy size) is\n"
	"refused.  Nothing is charged: no statistic is released.\n"
	"The analyst (default 'analyst') must be the audience's.  An audit event\n"
	"records the experiment (audience, partner, holdout), never the arms' sizes.\n";

int
cmd_experiment(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *policy = NULL, *keys = NULL, *analyst = "analyst";
	struct experiment_spec sp;
	struct experiment_stats es;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int argi, r;
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_REQ("policy", &policy), CLIOPT_REQ("keys", &keys),
		CLIOPT_REQ("audience", &sp.audience), CLIOPT_REQ("name", &sp.name), CLIOPT_STR("partner", &sp.partner),
		CLIOPT_STR("analyst", &analyst), CLIOPT_END };

	memset(&sp, 0, sizeof(sp));
	cg_err_clear(&err);
	if (cliopt_parse(argc, argv, experiment_usage, experiment_help, opts, &argi, &r))
		return r;
	if (argi + 1 != argc || strcmp(argv[argi], "create") != 0)
		return cli_usage(experiment_usage, argi >= argc ? "missing experiment command (create)" :
		    "unknown experiment command (create) or an extra argument");
	r = 1;
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	sp.pol = pol;
	sp.storage = k.storage;
	if ((sp.analyst = policy_principal_by_name(pol, analyst)) == NULL) {
		cli_error("%s: no principal '%s' in the policy (--analyst)", policy, analyst);
		goto out;
	}
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    audit_policy_seen(a, pol->hash, &err) != 0 || experiment_create(st, a, &sp, &es, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out)
		fprintf(ctx->out, "experiment '%s' on audience '%s': holdout %.9g; treatment delivered to %s as '%s'\n",
		    sp.name, sp.audience, (double)es.holdout_nano / 1e9, es.partner, sp.name);
	r = 0;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}
