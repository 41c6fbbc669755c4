/* cli_export.c - crossgate export */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#include "gateway/cli.h"
#include "gateway/audit.h"
#include "gateway/export.h"
#include "gateway/store.h"
#include "policy/policy.h"

/* ---- export ---------------------------------------------------------------- */

static const char export_usage[] =
	"crossgate export --db DB --policy FILE --keys DIR --out CSV [--purpose P]\n"
	"                 [--left ID --right ID]";

static const char export_help[] =
	"Join the partners' records on tokens and write an anonymized CSV of merged\n"
	"features: a fresh random pseudonym per row, quasi-identifiers generalized by\n"
	"the policy, classes smaller than the policy's k suppressed, no token and no\n"
	"identifier.  Only subjects whose records on both sides consent to the purpose\n"
	"(default 'analytics') are exported.  The export is an audit event.\n";

int
cmd_export(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'b' }, { "policy", required_argument, NULL, 'p' },
		{ "keys", required_argument, NULL, 'k' }, { "out", required_argument, NULL, 'o' },
		{ "purpose", required_argument, NULL, 'u' }, { "left", required_argument, NULL, 'l' },
		{ "right", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	const char *db = NULL, *policy = NULL, *keys = NULL;
	struct export_opts o;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int c, r = 1;

	memset(&o, 0, sizeof(o));
	o.purpose = "analytics";
	o.actor = "analyst";
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': db = optarg; break;
		case 'p': policy = optarg; break;
		case 'k': keys = optarg; break;
		case 'o': o.out_path = optarg; break;
		case 'u': o.purpose = optarg; break;
		case 'l': o.left = optarg; break;
		case 'r': o.right = optarg; break;
		case 'h': printf("usage: %s\n\n%s", export_usage, export_help); return 0;
		default: return cli_usage(export_usage, NULL);
		}
	}
	if (optind != argc)
		return cli_usage(export_usage, "unexpected argument");
	if (db == NULL) return cli_missing(export_usage, "--db");
	if (policy == NULL) return cli_missing(export_usage, "--policy");
	if (keys == NULL) return cli_missing(export_usage, "--keys");
	if (o.out_path == NULL) return cli_missing(export_usage, "--out");
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	o.pol = pol;
	o.storage = k.storage;
	cg_err_clear(&err);
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    export_run(st, a, &o, &ctx->export, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu rows exported for '%s' (matched %llu, left out for consent %llu, "
		    "suppressed below k=%u %llu, ambiguous %llu, superseded %llu)\n", o.out_path,
		    (unsigned long long)ctx->export.exported, o.purpose, (unsigned long long)ctx->export.matched,
		    (unsigned long long)ctx->export.no_consent, ctx->export.k,
		    (unsigned long long)ctx->export.suppressed, (unsigned long long)ctx->export.ambiguous,
		    (unsigned long long)ctx->export.superseded);
	r = 0;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

