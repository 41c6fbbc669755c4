/* cli_experiment.c - crossgate experiment create (gateway/experiment.h) and lift (gateway/explift.h) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "audit/audit.h"
#include "gateway/budget.h"
#include "gateway/experiment.h"
#include "gateway/explift.h"
#include "store/store.h"
#include "policy/policy.h"

static const char experiment_usage[] =
	"crossgate experiment create --db DB --policy FILE --keys DIR --audience NAME --name EXP\n"
	"                            [--partner ID] [--analyst NAME]\n"
	"crossgate experiment lift --db DB --policy FILE --keys DIR --name EXP --out FILE.json\n"
	"                          [--rho R] [--confidence C] [--analyst NAME]";

static const char experiment_help[] =
	"create: an A/B experiment on an audience ('crossgate audience create').  Its\n"
	"members are split into treatment and control by HMAC-SHA-256 of the subject\n"
	"(its two partners' tokens) under a random key drawn for the experiment and\n"
	"kept at the gateway; the share held out as control is the policy's\n"
	"marketing: holdout (default 0.5).  The arms are recorded at the gateway\n"
	"(table experiment_subjects) for the outcomes and the lift.\n"
	"The campaign partner (--partner, default the audience's only receiver) gets a\n"
	"delivery named EXP with its TREATMENT users only, pulled and opened like any\n"
	"audience ('crossgate agent audience'); the audience's own pending delivery to\n"
	"it is withdrawn, and an audience it has already fetched is refused, so that\n"
	"control users never reach it.  An experiment whose smaller arm would hold\n"
	"fewer than min_audience subjects (judged on the audience's noisy size) is\n"
	"refused.  Nothing is charged: no statistic is released.  Only the campaign\n"
	"partner's outcome batches for EXP are accepted ('crossgate agent outcomes').\n"
	"lift: the conversion-rate lift and the value lift per subject of EXP, with\n"
	"differential privacy (noisy per-arm figures, intervals that include the\n"
	"noise).  A subject converted if any outcome its campaign partner pushed with\n"
	"converted=1 has 'at' between the experiment's creation and now; its value is\n"
	"the sum of those outcomes' value_cents, clamped to marketing: value_cap; a\n"
	"subject without outcomes is a non-converter.  Charged rho (--rho, default\n"
	"marketing: lift_rho, else privacy.query_rho) to the analyst's budget for the\n"
	"audience's partner pair; refused without charge for an analyst without\n"
	"marketing, another analyst's experiment, or a charge over the budget.  An\n"
	"arm whose noisy size is below 30 is refused after the charge.  --confidence\n"
	"(default 0.95) sets the intervals.  Writes the release as JSON to --out and\n"
	"a summary on stdout; an 'experiment-lift' audit event records the noisy\n"
	"figures and rho only.\n"
	"The analyst (default 'analyst') must be the audience's / experiment's.\n";

/* The lift release file: lift.h's JSON with the experiment, window and charge. */
static int
experiment_lift_write(const char *path, const struct explift_spec *sp, const struct explift_result *lr)
{
	json_t *j = lift_release_json(&lr->rl);
	int r = -1;

	if (j == NULL || json_object_set_new(j, "experiment", json_string(sp->name)) != 0 ||
	    json_object_set_new(j, "experiment_id", json_string(lr->experiment_id)) != 0 ||
	    json_object_set_new(j, "audience", json_string(lr->audience)) != 0 ||
	    json_object_set_new(j, "campaign_partner", json_string(lr->partner)) != 0 ||
	    json_object_set_new(j, "dataset", json_string(lr->dataset)) != 0 ||
	    json_object_set_new(j, "window", json_pack("{s:I, s:I}", "from", (json_int_t)lr->window_from, "to",
	    (json_int_t)lr->window_to)) != 0 ||
	    json_object_set_new(j, "charged_rho", json_real((double)lr->charged_nano / BUDGET_NANO)) != 0 ||
	    json_object_set_new(j, "remaining_rho", json_real((double)lr->remaining_nano / BUDGET_NANO)) != 0)
		cli_error("out of memory");
	else
		r = cli_json_save(path, j);
	json_decref(j);
	return r;
}

static void
experiment_lift_print(FILE *f, const char *name, const struct explift_result *lr)
{
	const struct lift_estimates *e = &lr->rl.est;
	double pct = lr->rl.confidence * 100;

	fprintf(f, "experiment '%s' (campaign partner %s): noisy arms control %.0f, treatment %.0f\n", name, lr->partner,
	    lr->rl.control.n, lr->rl.treatment.n);
	fprintf(f, "  conversion rate: control %.4f, treatment %.4f; lift %+.4f (%.4g%% interval %+.4f .. %+.4f)\n",
	    e->control.rate, e->treatment.rate, e->rate_diff.est, pct, e->rate_diff.lo, e->rate_diff.hi);
	if (e->rel_ok)
		fprintf(f, "  relative lift %+.1f%% (%+.1f%% .. %+.1f%%)\n", e->rate_rel.est * 100, e->rate_rel.lo * 100,
		    e->rate_rel.hi * 100);
	else
		fprintf(f, "  relative lift: not estimated (the control rate is too uncertain)\n");
	fprintf(f, "  value per subject: lift %+.2f cents (%+.2f .. %+.2f), values capped at %lld\n", e->value_diff.est,
	    e->value_diff.lo, e->value_diff.hi, (long long)lr->rl.value_cap);
	fprintf(f, "  charged rho %.9g on %s, %.9g remains\n", (double)lr->charged_nano / BUDGET_NANO, lr->dataset,
	    (double)lr->remaining_nano / BUDGET_NANO);
}

int
cmd_experiment(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *policy = NULL, *keys = NULL, *analyst = "analyst", *rho = NULL, *conf = NULL,
	    *outp = NULL, *audience = NULL, *partner = NULL, *name = NULL;
	struct experiment_spec sp;
	struct experiment_stats es;
	struct explift_spec ls;
	struct explift_result *lr = NULL;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int argi, r, lift;
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_REQ("policy", &policy), CLIOPT_REQ("keys", &keys),
		CLIOPT_STR("audience", &audience), CLIOPT_REQ("name", &name), CLIOPT_STR("partner", &partner),
		CLIOPT_STR("analyst", &analyst), CLIOPT_STR("rho", &rho), CLIOPT_STR("confidence", &conf),
		CLIOPT_STR("out", &outp), CLIOPT_END };

	memset(&sp, 0, sizeof(sp));
	memset(&ls, 0, sizeof(ls));
	cg_err_clear(&err);
	if (cliopt_parse(argc, argv, experiment_usage, experiment_help, opts, &argi, &r))
		return r;
	if (argi + 1 != argc || (strcmp(argv[argi], "create") != 0 && strcmp(argv[argi], "lift") != 0))
		return cli_usage(experiment_usage, argi >= argc ? "missing experiment command (create, lift)" :
		    "unknown experiment command (create, lift) or an extra argument");
	lift = strcmp(argv[argi], "lift") == 0;
	if (!lift && (rho != NULL || conf != NULL || outp != NULL))
		return cli_usage(experiment_usage, "'create' takes no --rho, --confidence or --out");
	if (!lift && audience == NULL)
		return cli_usage(experiment_usage, "'create' needs --audience");
	if (lift && (audience != NULL || partner != NULL))
		return cli_usage(experiment_usage, "'lift' takes no --audience or --partner (the experiment names them)");
	if (lift && outp == NULL)
		return cli_usage(experiment_usage, "'lift' needs --out FILE.json");
	if (rho != NULL && policy_parse_nano(rho, strlen(rho), POLICY_RHO_MAX, &ls.rho_nano) != 0)
		return cli_usage(experiment_usage, "--rho wants a decimal above 0 (at most 9 decimals)");
	if (conf != NULL) {
		char *end;

		ls.confidence = strtod(conf, &end);
		if (*conf == '\0' || *end != '\0' || !(ls.confidence > 0 && ls.confidence < 1))
			return cli_usage(experiment_usage, "--confidence wants a number above 0 and below 1 (e.g. 0.95)");
	}
	r = 1;
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	sp.pol = ls.pol = pol;
	sp.storage = ls.storage = k.storage;
	sp.audience = audience;
	sp.name = ls.name = name;
	sp.partner = partner;
	if ((sp.analyst = ls.analyst = policy_principal_by_name(pol, analyst)) == NULL) {
		cli_error("%s: no principal '%s' in the policy (--analyst)", policy, analyst);
		goto out;
	}
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    audit_policy_seen(a, pol->hash, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (!lift) {
		if (experiment_create(st, a, &sp, &es, &err) != 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		if (ctx->out)
			fprintf(ctx->out, "experiment '%s' on audience '%s': holdout %.9g; treatment delivered to %s as "
			    "'%s'\n", sp.name, sp.audience, (double)es.holdout_nano / 1e9, es.partner, sp.name);
		r = 0;
		goto out;
	}
	if ((lr = calloc(1, sizeof(*lr))) == NULL) {
		cli_error("out of memory");
		goto out;
	}
	if (explift_run(st, a, &ls, lr, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (experiment_lift_write(outp, &ls, lr) != 0)
		goto out;
	if (ctx->out)
		experiment_lift_print(ctx->out, name, lr);
	r = 0;
out:
	free(lr);
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}
