/* cli_query.c - crossgate query, crossgate budget */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "net/client.h"
#include "net/rpc.h"
#include "audit/audit.h"
#include "gateway/budget.h"
#include "gateway/model.h"
#include "gateway/query.h"
#include "store/store.h"
#include "policy/policy.h"

static const char query_usage[] =
	"crossgate query --db DB --policy FILE --keys DIR --out CSV [--purpose P]\n"
	"                [--group-by COL[,COL...]] --metric M [--metric M ...]\n"
	"                [--rho R | --epsilon E] [--buckets N] [--analyst NAME] [--left ID --right ID]\n"
	"       crossgate query " CLI_CLIENT_USAGE "\n"
	"                --out CSV [--purpose P] [--group-by ...] --metric M ... [--rho R | --epsilon E]\n"
	"       crossgate query [--db ... | --gateway ...] --out CSV --model ridge --x COL[,COL...] --y COL [--rho R]\n"
	"       crossgate query [--db ... | --gateway ...] --out CSV --model kmeans --cols COL[,COL...] --k K\n"
	"                --steps N [--log1p] [--seed N] [--rho R]";

static const char query_help[] =
	"Differentially private aggregates over the joined subjects that consent to\n"
	"the purpose (default 'analytics'): the default output channel.\n"
	"  --group-by   columns named as in a row export (quasi-identifiers by name,\n"
	"               features as <partner>_<column>); `public` columns of the policy\n"
	"               use their declared domain, others go through partition selection\n"
	"  --metric     count | sum:COL | mean:COL | histogram:COL (COL needs policy bounds)\n"
	"  --rho R      zCDP budget this query spends (discrete Gaussian noise);\n"
	"               default the policy's privacy.query_rho\n"
	"  --epsilon E  pure epsilon instead (discrete Laplace noise), charged E^2/2\n"
	"  --buckets N  ranges of a histogram (default 10)\n"
	"  --analyst    the analyst principal charged (default 'analyst')\n"
	"The charge is recorded in the append-only ledger, with an audit event, before\n"
	"any answer is computed; a query that would overspend the analyst's budget is\n"
	"refused with what remains.  Groups with a noisy count below the policy's\n"
	"threshold are withheld.  Writes CSV and CSV.meta.json (the provenance).\n"
	"With --gateway the gateway answers over mutual TLS; the analyst is the\n"
	"certificate's principal.\n"
	"\n"
	"Model statistics (the README's \"DP model statistics\"), charged like any\n"
	"query, the budget first; columns need policy bounds (values are clamped to\n"
	"them):\n"
	"  --model ridge   noisy sufficient statistics (X^T X, X^T y, y^T y, n) of\n"
	"                  --x COLS and --y COL, each centred and scaled to its bounds;\n"
	"                  one subject moves the m released entries by at most 1/4 each\n"
	"                  (L2 sensitivity sqrt(m)/4 in those units)\n"
	"  --model kmeans  DP k-means (a noisy grid for the initial centres, then\n"
	"                  --steps DPLloyd steps, all charged up front) over --cols COLS\n"
	"                  with --k clusters; --log1p clusters log(1 + value); --seed the\n"
	"                  public seed of the initial centres (default 1)\n"
	"The noise scale of every released statistic is in CSV.meta.json.\n";

/* Send a query request; the answer goes to out_path and its .meta.json, its counts into *qs. */
static int
query_ask(const struct client_opts *co, Crossgate__QueryRequest *qr, const char *out_path, struct query_stats *qs,
    struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct client *c = NULL;
	int r;

	memset(qs, 0, sizeof(*qs));
	req.op_case = CROSSGATE__REQUEST__OP_QUERY;
	req.query = qr;
	if ((r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_QUERY, "a query", &c, &resp, err)) != 0)
		return r;
	qs->groups = resp->query->groups;
	qs->released = resp->query->released;
	qs->suppressed = resp->query->suppressed;
	qs->charged_nano = resp->query->charged_nano;
	qs->remaining_nano = resp->query->remaining_nano;
	if ((r = cli_meta_save(out_path, resp->query->meta_json, err)) == 0)
		r = cli_recv_file(c, resp->query->size, out_path, err);
	crossgate__response__free_unpacked(resp, NULL);
	client_close(c);
	return r;
}

/* Ask a gateway for aggregates. */
static int
query_remote(const struct client_opts *co, const struct query_spec *q, const char *rho, const char *eps,
    char *const *metrics, struct query_stats *qs, struct cg_err *err)
{
	Crossgate__QueryRequest qr = CROSSGATE__QUERY_REQUEST__INIT;

	qr.purpose = (char *)q->purpose;
	qr.group_by = (char **)q->group_by;
	qr.n_group_by = q->ngroup;
	qr.metrics = (char **)metrics;
	qr.n_metrics = q->nmetrics;
	qr.rho = (char *)(rho ? rho : "");
	qr.epsilon = (char *)(eps ? eps : "");
	qr.buckets = q->buckets;
	qr.left = (char *)(q->left ? q->left : "");
	qr.right = (char *)(q->right ? q->right : "");
	return query_ask(co, &qr, q->out_path, qs, err);
}

/* Split a comma-separated --group-by into spec (pointers into the string, which the caller keeps). */
static int
query_groups_add(struct query_spec *q, char *s)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (q->ngroup == QUERY_GROUP_MAX)
			return -1;
		q->group_by[q->ngroup++] = tok;
	}
	return 0;
}

/* Ask a gateway for model statistics. */
static int
query_model_remote(const struct client_opts *co, const struct model_spec *ms, const char *model, const char *rho,
    struct model_stats *st, struct cg_err *err)
{
	Crossgate__QueryRequest qr = CROSSGATE__QUERY_REQUEST__INIT;
	struct query_stats qs;
	int r;

	memset(st, 0, sizeof(*st));
	qr.purpose = (char *)ms->purpose;
	qr.rho = (char *)(rho ? rho : "");
	qr.epsilon = (char *)"";
	qr.left = (char *)(ms->left ? ms->left : "");
	qr.right = (char *)(ms->right ? ms->right : "");
	qr.model = (char *)model;
	qr.model_cols = (char **)ms->cols;
	qr.n_model_cols = ms->ncols;
	qr.model_y = (char *)(ms->y ? ms->y : "");
	qr.model_k = ms->k;
	qr.model_steps = ms->steps;
	qr.model_log1p = ms->log1p;
	qr.model_seed = ms->seed;
	if ((r = query_ask(co, &qr, ms->out_path, &qs, err)) != 0)
		return r;
	st->released = qs.released;
	st->charged_nano = qs.charged_nano;
	st->remaining_nano = qs.remaining_nano;
	return 0;
}

/* crossgate query --model ...: DP model statistics (gateway/model.h), locally or from a gateway. */
static int
query_model_cmd(const struct client_opts *co, const char *db, const char *policy, const char *keys,
    const char *analyst, const char *model, char *cols, struct model_spec *ms, const struct query_spec *q,
    const char *rho, const char *eps, struct cli_ctx *ctx)
{
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct model_stats mst;
	struct cg_err err;
	char *save = NULL, *tok;
	int r = CLI_USAGE;

	cg_err_clear(&err);
	if (model == NULL)
		return cli_missing(query_usage, "--model");
	if (model_kind_parse(model, &ms->kind, &err) != 0)
		return cli_usage(query_usage, err.msg);
	if (eps != NULL || q->nmetrics || q->ngroup || q->buckets)
		return cli_usage(query_usage, "--model takes no --epsilon, --metric, --group-by or --buckets");
	if (cols == NULL)
		return cli_missing(query_usage, ms->kind == MODEL_RIDGE ? "--x" : "--cols");
	for (tok = strtok_r(cols, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (ms->ncols == MODEL_COLS_MAX)
			return cli_usage(query_usage, "too many model columns");
		ms->cols[ms->ncols++] = tok;
	}
	if (ms->kind == MODEL_RIDGE && (ms->y == NULL || ms->k || ms->steps || ms->log1p))
		return ms->y == NULL ? cli_missing(query_usage, "--y") :
		    cli_usage(query_usage, "--k, --steps and --log1p are k-means options");
	if (ms->kind == MODEL_KMEANS && (ms->y != NULL || ms->k == 0 || ms->steps == 0))
		return ms->y != NULL ? cli_usage(query_usage, "--y is a ridge option") :
		    cli_missing(query_usage, ms->k == 0 ? "--k" : "--steps");
	if (q->out_path == NULL)
		return cli_missing(query_usage, "--out");
	ms->purpose = q->purpose;
	ms->left = q->left;
	ms->right = q->right;
	ms->rho_nano = q->rho_nano;
	ms->out_path = q->out_path;
	if (co->gateway != NULL) {
		if ((r = cli_client_check(co, query_usage)) != 0)
			return r;
		if (db != NULL || keys != NULL || policy != NULL)
			return cli_usage(query_usage, "--gateway queries the gateway: no --db, --keys or --policy");
		if (query_model_remote(co, ms, model, rho, &mst, &err) != 0) {
			cli_error("%s", err.msg);
			return 1;
		}
	} else {
		if (db == NULL) return cli_missing(query_usage, "--db");
		if (policy == NULL) return cli_missing(query_usage, "--policy");
		if (keys == NULL) return cli_missing(query_usage, "--keys");
		r = 1;
		if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
			goto out;
		ms->pol = pol;
		ms->storage = k.storage;
		if ((ms->analyst = policy_principal_by_name(pol, analyst)) == NULL) {
			cli_error("%s: no principal '%s' in the policy (--analyst names who is charged)", policy, analyst);
			goto out;
		}
		if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
		    audit_policy_seen(a, pol->hash, &err) != 0 || model_run(st, a, ms, &mst, &err) != 0) {
			cli_error("%s", err.msg);
			goto out;
		}
	}
	if (ctx->out)
		fprintf(ctx->out, "%s: %s statistics released (%llu %s); charged rho %.9f, %.9f remains (noise scales in "
		    "%s.meta.json)\n", q->out_path, model, (unsigned long long)mst.released,
		    ms->kind == MODEL_RIDGE ? "entries" : "clusters", (double)mst.charged_nano / BUDGET_NANO,
		    (double)mst.remaining_nano / BUDGET_NANO, q->out_path);
	r = 0;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

int
cmd_query(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *policy = NULL, *keys = NULL, *analyst = "analyst", *rho = NULL, *eps = NULL;
	const char *model = NULL, *cols = NULL, *metricv[QUERY_METRIC_MAX], *groupv[QUERY_GROUP_MAX];
	struct cliopt_list metric_l = { metricv, 0, QUERY_METRIC_MAX }, group_l = { groupv, 0, QUERY_GROUP_MAX };
	char *mcols = NULL;
	struct model_spec ms;
	char *metrics[QUERY_METRIC_MAX];
	struct client_opts co;
	char *groups[QUERY_GROUP_MAX];
	size_t ngroups = 0, i;
	struct query_spec q;
	struct query_stats qs;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int r = 1;
	/* --x and --cols are two names of one option: the last one given counts. */
	const struct cliopt opts[] = { CLIOPT_STR("db", &db), CLIOPT_STR("policy", &policy), CLIOPT_STR("keys", &keys),
		CLIOPT_STR("out", &q.out_path), CLIOPT_STR("purpose", &q.purpose), CLIOPT_LIST("group-by", &group_l),
		CLIOPT_LIST("metric", &metric_l), CLIOPT_STR("rho", &rho), CLIOPT_STR("epsilon", &eps),
		CLIOPT_UINT("buckets", &q.buckets, 1, QUERY_BUCKETS_MAX), CLIOPT_STR("analyst", &analyst),
		CLIOPT_STR("left", &q.left), CLIOPT_STR("right", &q.right), CLIOPT_CLIENT_OPT(&co),
		CLIOPT_STR("model", &model), CLIOPT_STR("x", &cols), CLIOPT_STR("cols", &cols), CLIOPT_STR("y", &ms.y),
		CLIOPT_UINT("k", &ms.k, 1, MODEL_K_MAX), CLIOPT_UINT("steps", &ms.steps, 1, MODEL_STEPS_MAX),
		CLIOPT_FLAG("log1p", &ms.log1p), CLIOPT_UINT("seed", &ms.seed, 0, UINT32_MAX), CLIOPT_END };

	memset(&q, 0, sizeof(q));
	memset(&co, 0, sizeof(co));
	memset(&ms, 0, sizeof(ms));
	ms.seed = 1;
	q.purpose = "analytics";
	cg_err_clear(&err);
	if (cliopt_parse(argc, argv, query_usage, query_help, opts, NULL, &r))
		return r;
	r = CLI_USAGE;
	for (ngroups = 0; ngroups < group_l.n; ) {
		if ((groups[ngroups] = strdup(groupv[ngroups])) == NULL || query_groups_add(&q, groups[ngroups++]) != 0) {
			r = cli_usage(query_usage, "too many --group-by columns");
			goto out;
		}
	}
	for (; q.nmetrics < metric_l.n; q.nmetrics++) {
		if (query_metric_parse(metricv[q.nmetrics], &q.metrics[q.nmetrics], &err) != 0) {
			r = cli_usage(query_usage, err.msg);
			goto out;
		}
		metrics[q.nmetrics] = (char *)metricv[q.nmetrics];
	}
	if (rho != NULL && policy_parse_nano(rho, strlen(rho), POLICY_RHO_MAX, &q.rho_nano) != 0) {
		r = cli_usage(query_usage, "--rho wants a decimal above 0 (at most 9 decimals)");
		goto out;
	}
	if (eps != NULL && policy_parse_nano(eps, strlen(eps), QUERY_EPSILON_MAX_NANO, &q.epsilon_nano) != 0) {
		r = cli_usage(query_usage, "--epsilon wants a decimal above 0 and at most 1000 (at most 9 decimals)");
		goto out;
	}
	if (cols != NULL && (mcols = strdup(cols)) == NULL) {
		r = 1;
		goto out;
	}
	if (model != NULL || mcols != NULL || ms.y != NULL || ms.k != 0 || ms.steps != 0 || ms.log1p) {
		r = query_model_cmd(&co, db, policy, keys, analyst, model, mcols, &ms, &q, rho, eps, ctx);
		goto out;
	}
	if (q.rho_nano > 0 && q.epsilon_nano > 0) {
		r = cli_usage(query_usage, "--rho and --epsilon are two different mechanisms: give one");
		goto out;
	}
	if (co.gateway != NULL) {
		if ((r = cli_client_check(&co, query_usage)) != 0)
			goto out;
		if (q.out_path == NULL) { r = cli_missing(query_usage, "--out"); goto out; }
		if (q.nmetrics == 0) { r = cli_missing(query_usage, "--metric"); goto out; }
		if (db != NULL || keys != NULL || policy != NULL) {
			r = cli_usage(query_usage, "--gateway queries the gateway: no --db, --keys or --policy");
			goto out;
		}
		r = 1;
		if (query_remote(&co, &q, rho, eps, metrics, &qs, &err) != 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		if (ctx->out)
			fprintf(ctx->out, "%s: %llu groups released; charged rho %.9f, %.9f remains (details in %s.meta.json)\n",
			    q.out_path, (unsigned long long)qs.released, (double)qs.charged_nano / BUDGET_NANO,
			    (double)qs.remaining_nano / BUDGET_NANO, q.out_path);
		r = 0;
		goto out;
	}
	if (db == NULL) { r = cli_missing(query_usage, "--db"); goto out; }
	if (policy == NULL) { r = cli_missing(query_usage, "--policy"); goto out; }
	if (keys == NULL) { r = cli_missing(query_usage, "--keys"); goto out; }
	if (q.out_path == NULL) { r = cli_missing(query_usage, "--out"); goto out; }
	if (q.nmetrics == 0) { r = cli_missing(query_usage, "--metric"); goto out; }
	r = 1;
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	q.pol = pol;
	q.storage = k.storage;
	if ((q.analyst = policy_principal_by_name(pol, analyst)) == NULL) {
		cli_error("%s: no principal '%s' in the policy (--analyst names who is charged)", policy, analyst);
		goto out;
	}
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    audit_policy_seen(a, pol->hash, &err) != 0 || query_run(st, a, &q, &qs, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out && qs.partition_selection)
		fprintf(ctx->out, "%s: %llu groups released (keys from the data: how many were withheld below the "
		    "threshold of %u is not told); charged rho %.9f to '%s', %.9f remains\n", q.out_path,
		    (unsigned long long)qs.released, pol->privacy.threshold, (double)qs.charged_nano / BUDGET_NANO,
		    q.analyst->name, (double)qs.remaining_nano / BUDGET_NANO);
	else if (ctx->out)
		fprintf(ctx->out, "%s: %llu of %llu groups released (%llu below the threshold of %u withheld); "
		    "charged rho %.9f to '%s', %.9f remains\n", q.out_path, (unsigned long long)qs.released,
		    (unsigned long long)qs.groups, (unsigned long long)qs.suppressed, pol->privacy.threshold,
		    (double)qs.charged_nano / BUDGET_NANO, q.analyst->name, (double)qs.remaining_nano / BUDGET_NANO);
	r = 0;
out:
	free(mcols);
	for (i = 0; i < ngroups; i++)
		free(groups[i]);
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

/* ---- budget ---- */

static const char budget_usage[] = "crossgate budget --db DB --policy FILE [--analyst NAME] [--json]";

static const char budget_help[] =
	"Show each analyst's privacy budget on each dataset (a pair of partners):\n"
	"rho spent (queries and synthetic row releases alike: one ledger), the cap\n"
	"and what remains, and row releases taken against max_exports.  Read from\n"
	"the append-only ledgers in the gateway's database.\n";

int
cmd_budget(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *policy = NULL, *only = NULL;
	struct policy *pol = NULL;
	struct store *st = NULL;
	struct cg_err err;
	json_t *rows = NULL;
	size_t i, x, y, shown = 0;
	int json = 0, r = 1;
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_REQ("policy", &policy),
		CLIOPT_STR("analyst", &only), CLIOPT_FLAG("json", &json), CLIOPT_END };

	(void)ctx;
	if (cliopt_parse(argc, argv, budget_usage, budget_help, opts, NULL, &r))
		return r;
	r = 1;
	if (cli_load_policy(policy, &pol) != 0)
		return 1;
	cg_err_clear(&err);
	if (only != NULL && policy_principal_by_name(pol, only) == NULL) {
		cli_error("%s: no principal '%s' in the policy", policy, only);
		goto out;
	}
	if (store_open(db, 0, &st, &err) != 0 || (rows = json_array()) == NULL) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (!json)
		printf("%-16s %-12s %14s %14s %14s %10s\n", "analyst", "dataset", "rho spent", "rho cap", "rho left",
		    "exports");
	for (i = 0; i < pol->nprincipals; i++) {
		const struct policy_principal *pr = &pol->principals[i];

		if (pr->role != POLICY_PRINCIPAL_ANALYST || (only != NULL && strcmp(pr->name, only) != 0))
			continue;
		for (x = 0; x < pol->npartners; x++) {
			for (y = x + 1; y < pol->npartners; y++) {
				const char *a = pol->partners[x].id, *b = pol->partners[y].id;
				char ds[80], exports[32] = "";
				int64_t spent = 0, cap = policy_principal_budget(pol, pr);
				uint64_t total = 0;

				snprintf(ds, sizeof(ds), "%s+%s", strcmp(a, b) < 0 ? a : b, strcmp(a, b) < 0 ? b : a);
				if (budget_spent(st, pr->name, ds, &spent, &err) != 0) {
					cli_error("%s", err.msg);
					goto out;
				}
				if (budget_exports_used(st, pr->name, &total, &err) != 0) {
					cli_error("%s", err.msg);
					goto out;
				}
				snprintf(exports, sizeof(exports), "%llu/%u", (unsigned long long)total,
				    policy_principal_max_exports(pol, pr));
				if (json) {
					json_array_append_new(rows, json_pack("{s:s, s:s, s:f, s:f, s:f, s:I, s:i}", "analyst",
					    pr->name, "dataset", ds, "rho_spent", (double)spent / BUDGET_NANO, "rho_cap",
					    (double)cap / BUDGET_NANO, "rho_remaining", (double)(cap > spent ? cap - spent : 0) /
					    BUDGET_NANO, "row_exports", (json_int_t)total, "max_exports",
					    (int)policy_principal_max_exports(pol, pr)));
				} else
					printf("%-16s %-12s %14.9f %14.9f %14.9f %10s\n", pr->name, ds, (double)spent / BUDGET_NANO,
					    (double)cap / BUDGET_NANO, (double)(cap > spent ? cap - spent : 0) / BUDGET_NANO,
					    exports);
				shown++;
			}
		}
	}
	if (json) {
		char *s = json_dumps(rows, JSON_COMPACT);
		if (s != NULL)
			puts(s);
		free(s);
	} else if (shown == 0)
		printf("(no analyst principals in the policy)\n");
	r = 0;
out:
	json_decref(rows);
	store_close(st);
	policy_free(pol);
	return r;
}
