/* cli_analytics.c - crossgate analytics: the seed's models and the report, on released outputs only. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "analytics/analytics.h"
#include "analytics/html.h"
#include "analytics/report.h"
#include "policy/policy.h"

static const char analytics_usage[] =
	"crossgate analytics summary|report [--ridge RIDGE.csv] [--kmeans KMEANS.csv] [--aggregates AGG.csv]\n"
	"                 [--input EXPORT.csv] [--dp-bootstrap N] [--audience A.json] [--lift L.json]\n"
	"                 [--meta FILE] [--policy FILE] [--threshold N] [--format html|json|csv]\n"
	"                 [--out PATH] [--segments K] [--seed N] [--restarts N] [--folds N]\n"
	"                 [--bootstrap N] [--kmeans-init first]";

static const char analytics_help[] =
	"The analytics core, on what the gateway releases and nothing else.  From\n"
	"DP releases (the default channel; no row is read):\n"
	"  --ridge FILE   `crossgate query --model ridge` of k_conversion_value_cents on\n"
	"                 course spend, learning and watch minutes: the content mix, with\n"
	"                 95% intervals that include the DP noise (a parametric bootstrap\n"
	"                 of --dp-bootstrap replicates, default 2000, over the published\n"
	"                 noise scales and the sampling variance)\n"
	"  --kmeans FILE  `crossgate query --model kmeans`: the segments, their shares\n"
	"                 from the noisy counts\n"
	"  --aggregates   the affinity, as below\n"
	"Each figure states the rho its release spent (its .meta.json).  Or, from rows\n"
	"of exact values (--input: a CSV headed pseudonym, as `crossgate export` wrote\n"
	"before its rows became DP synthetic data; synthetic bins are refused; the tests\n"
	"build such rows from the demo's inputs to check the fits) with a sidecar\n"
	"EXPORT.csv.meta.json if any (--meta to name another), and/or DP aggregates\n"
	"(`crossgate query` grouped by k_top_course_category,g_top_game_category with a\n"
	"count) for the affinity.\n"
	"  --audience FILE, --lift FILE   the activation and experiment section: an\n"
	"                 audience's answer (`crossgate audience create --out`: its noisy\n"
	"                 size) and an experiment's DP lift (`crossgate experiment lift\n"
	"                 --out`: the lift with its interval), and the rho they spent\n"
	"\n"
	"  content mix  ridge regression of k_conversion_value_cents on course spend,\n"
	"               learning minutes and watch minutes; penalty by --folds-fold\n"
	"               cross-validation (default 5), --bootstrap intervals (default 200)\n"
	"  segments     k-means on log learning, watch and streams followed; k by\n"
	"               silhouette unless --segments K; --restarts seeded runs (10)\n"
	"  affinity     course category -> game category: support, confidence, lift\n"
	"\n"
	"No count below the threshold is released: segments below it are merged into\n"
	"the nearest, category pairs below it withheld.  The threshold is the policy's\n"
	"privacy.threshold with --policy, else 20; --threshold N may raise it, never\n"
	"lower it below the policy's.\n"
	"\n"
	"summary prints the results.  report writes them: --format html (default; one\n"
	"self-contained file, --out required), json (--out FILE, or standard output),\n"
	"csv (--out DIR: one CSV per table).  --kmeans-init first (tests) runs one\n"
	"k-means from the first K rows instead of k-means++; it needs --segments.\n";

static void
analytics_print(FILE *o, const struct analytics *a)
{
	size_t i, t;
	int c;

	fprintf(o, "rows                %zu (threshold %u)\n", a->rows, a->threshold);
	if (a->prov.known)
		fprintf(o, "provenance          %s %s, purpose %s, k %llu, policy %.16s...\n",
		    a->prov.query ? "query" : "export", a->prov.export_id, a->prov.purpose,
		    (unsigned long long)a->prov.k, a->prov.policy_hash);
	else
		fprintf(o, "provenance          unknown: %s\n", a->prov_note);
	if (a->have_dpmix) {
		const struct dpmodel_ridge_fit *m = &a->dpmix;

		fprintf(o, "content mix (DP)    F = %.6g + %.6g C^K + %.6g T^K + %.6g T^G   (rho %.4g)\n", m->intercept,
		    m->coef[0], m->coef[1], m->coef[2], m->rho);
		for (i = 0; i < m->p && i < ANALYTICS_MIX_FEATURES; i++)
			fprintf(o, "                    %-4s %.6g, 95%% interval %.6g .. %.6g (DP noise %.0f%% of its variance)\n",
			    analytics_mix_symbols[i], m->coef[i], m->lo95[i], m->hi95[i], 100 * m->noise_share[i]);
		fprintf(o, "                    noisy n %.0f, lambda %.4g, residual sd %.4g\n", m->n, m->lambda,
		    m->resid_sd);
	}
	if (a->have_dpseg) {
		const struct dpmodel_kmeans_release *k = &a->dpseg;

		fprintf(o, "segments (DP)       %zu, DP k-means %u steps (rho %.4g)\n", k->k, k->steps, k->rho);
		for (i = 0; i < k->k; i++) {
			fprintf(o, "  %zu. %-16s %5.1f%%  ", i + 1, a->dpseg_name[i], 100 * k->share[i]);
			for (t = 0; t < k->d; t++)
				fprintf(o, " %s %.4g", k->names[t], k->centre[i][t]);
			fputc('\n', o);
		}
	}
	if (a->have_mix) {
		const struct ridge_fit *m = &a->mix;

		fprintf(o, "content mix         F = %.6g + %.6g C^K + %.6g T^K + %.6g T^G\n", m->intercept,
		    m->coef[0], m->coef[1], m->coef[2]);
		fprintf(o, "                    alpha (knowledge) %.6g, beta (live stream) %.6g cents/minute\n",
		    m->coef[1], m->coef[2]);
		fprintf(o, "                    held-out R^2 %.4f (%zu folds), lambda %.4g, %zu rows\n",
		    m->cv_r2, m->folds, m->lambda, m->n);
		for (i = 0; i < m->p; i++)
			fprintf(o, "                    %s per SD %.6g, 95%% interval %.6g .. %.6g\n",
			    analytics_mix_symbols[i], m->coef_std[i], m->boot_lo[i], m->boot_hi[i]);
	} else if (!a->have_dpmix) {
		fprintf(o, "content mix         unavailable: %s\n", a->mix_note);
	}
	if (a->seg != NULL && a->seg->nseg > 0) {
		fprintf(o, "segments            %zu (%s; %zu merged below threshold; inertia %.6g)\n",
		    a->seg->nseg, a->seg->k_by_silhouette ? "k by silhouette" : "k given",
		    a->seg->merged, a->seg->inertia);
		for (i = 0; i < a->seg->nseg; i++) {
			const struct segment *g = &a->seg->seg[i];

			fprintf(o, "  %zu. %-16s %6zu rows  learn %.0f min, watch %.0f min, streams %.0f;",
			    i + 1, g->name, g->size, g->center[0], g->center[1], g->center[2]);
			for (c = DATASET_COURSE_CAT; c <= DATASET_GAME_CAT; c++)
				for (t = 0; t < g->ntop[c] && t < 1; t++)
					fprintf(o, " %s", report_level_name(a, c, g->top[c][t].level));
			fputc('\n', o);
		}
	} else if (!a->have_dpseg) {
		fprintf(o, "segments            unavailable: %s\n", a->seg_note);
	}
	if (a->aff != NULL) {
		fprintf(o, "affinity            %zu pairs released, %zu withheld (from the %s", a->aff->released,
		    a->aff->withheld, a->aff->source == AFFINITY_FROM_EXPORT ? "export" : "aggregates");
		if (a->aff_rho > 0)
			fprintf(o, ", rho %.4g", a->aff_rho);
		fputs(")\n", o);
		for (i = 0; i < a->aff->released && i < 5; i++) {
			const struct affinity_pair *p = &a->aff->pairs[a->aff->rules[i]];

			fprintf(o, "  %s -> %s: lift %.3f, confidence %.3f, support %.4f (%.0f)\n",
			    a->aff->course.names[p->course], a->aff->game.names[p->game], p->lift,
			    p->confidence, p->support, p->count);
		}
	} else {
		fprintf(o, "affinity            unavailable: %s\n", a->aff_note);
	}
}

int
cmd_analytics(int argc, char **argv, struct cli_ctx *ctx)
{
	struct analytics_opts ao;
	struct analytics *a = NULL;
	struct policy *pol = NULL;
	const char *policy_path = NULL, *format = "html", *out = NULL, *sub, *kinit = NULL;
	unsigned long threshold = 0;   /* 0: the policy's */
	struct cg_err err;
	int r = 1, report;
	const struct cliopt opts[] = {
		CLIOPT_STR("input", &ao.export_path), CLIOPT_STR("aggregates", &ao.aggregates_path),
		CLIOPT_STR("meta", &ao.meta_path), CLIOPT_STR("policy", &policy_path),
		CLIOPT_UINT("threshold", &threshold, 1, 1000000000UL), CLIOPT_STR("format", &format),
		CLIOPT_STR("out", &out), CLIOPT_UINT("segments", &ao.segments_k, 1, KMEANS_K_MAX),
		CLIOPT_UINT("seed", &ao.seed, 0, 4294967295UL), CLIOPT_UINT("restarts", &ao.restarts, 1, 1000),
		CLIOPT_UINT("folds", &ao.folds, 2, RIDGE_FOLDS_MAX),
		CLIOPT_UINT("bootstrap", &ao.bootstrap, 0, RIDGE_BOOTSTRAP_MAX), CLIOPT_STR("kmeans-init", &kinit),
		CLIOPT_STR("ridge", &ao.ridge_path), CLIOPT_STR("kmeans", &ao.kmeans_path),
		CLIOPT_UINT("dp-bootstrap", &ao.dp_bootstrap, 0, DPMODEL_BOOTSTRAP_MAX),
		CLIOPT_STR("audience", &ao.audience_path), CLIOPT_STR("lift", &ao.lift_path), CLIOPT_END };

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		if (argc >= 2) {
			printf("usage: %s\n\n%s", analytics_usage, analytics_help);
			return 0;
		}
		return cli_usage(analytics_usage, NULL);
	}
	sub = argv[1];
	if (strcmp(sub, "summary") != 0 && strcmp(sub, "report") != 0)
		return cli_usage(analytics_usage, "analytics: the subcommand is summary or report");
	report = strcmp(sub, "report") == 0;
	analytics_opts_default(&ao);
	argc--;
	argv++;
	if (cliopt_parse(argc, argv, analytics_usage, analytics_help, opts, NULL, &r))
		return r;
	r = 1;
	if (kinit != NULL && strcmp(kinit, "first") != 0)
		return cli_usage(analytics_usage, "--kmeans-init takes only 'first'");
	ao.kmeans_init_first_rows = kinit != NULL;
	if (ao.export_path == NULL && ao.aggregates_path == NULL && ao.ridge_path == NULL && ao.kmeans_path == NULL)
		return cli_missing(analytics_usage, "--ridge, --kmeans, --aggregates (or --input)");
	if (ao.kmeans_init_first_rows && ao.segments_k == 0)
		return cli_usage(analytics_usage, "--kmeans-init first needs --segments K");
	if (strcmp(format, "html") != 0 && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
		return cli_usage(analytics_usage, "--format is html, json or csv");
	if (report && out == NULL && strcmp(format, "json") != 0)
		return cli_missing(analytics_usage, "--out");
	if (policy_path != NULL) {
		if (cli_load_policy(policy_path, &pol) != 0)
			goto out;
		ao.threshold = pol->privacy.threshold;
		if (threshold != 0 && threshold < ao.threshold) {
			cli_error("--threshold %lu is below the policy's privacy.threshold %u", threshold,
			    ao.threshold);
			r = CLI_USAGE;
			goto out;
		}
	}
	if (threshold != 0)
		ao.threshold = (uint32_t)threshold;
	cg_err_clear(&err);
	if (analytics_run(&ao, &a, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (!report) {
		if (ctx->out != NULL)
			analytics_print(ctx->out, a);
	} else if (strcmp(format, "json") == 0) {
		if (report_write_json(a, out != NULL ? out : "-", &err) != 0) {
			cli_error("%s", err.msg);
			goto out;
		}
	} else if (strcmp(format, "csv") == 0) {
		if (report_write_csv(a, out, &err) != 0) {
			cli_error("%s", err.msg);
			goto out;
		}
	} else if (html_write(a, out, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (report && out != NULL && ctx->out != NULL)
		fprintf(ctx->out, "report              %s\n", out);
	r = 0;
 out:
	analytics_free(a);
	policy_free(pol);
	return r;
}
