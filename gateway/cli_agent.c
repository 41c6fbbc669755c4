/* cli_agent.c - crossgate agent */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#include "gateway/cli.h"
#include "agent/pack.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"

/* ---- agent ----------------------------------------------------------------- */

static const char agent_usage[] =
	"crossgate agent pack --policy FILE --partner ID --input CSV --out BATCH\n"
	"                     --match-key FILE --sign-key FILE --gateway-pub FILE [--strict]";

static const char agent_help[] =
	"Read the partner's CSV, check every row against the partner's schema in the\n"
	"policy, normalize and pseudonymize identifiers with the match key, drop users\n"
	"without 'match' consent, merge duplicate rows of one user (latest consent_at\n"
	"wins), seal each record, seal the batch key to the gateway, sign, and write\n"
	"one batch file.  Bad rows are reported as FILE:LINE:COLUMN (name): reason and\n"
	"skipped; with --strict any bad row fails the whole file and nothing is written.\n"
	"Identifiers and local user ids never leave this machine.\n";

int
cmd_agent(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' }, { "partner", required_argument, NULL, 'P' },
		{ "input", required_argument, NULL, 'i' }, { "out", required_argument, NULL, 'o' },
		{ "match-key", required_argument, NULL, 'm' }, { "sign-key", required_argument, NULL, 's' },
		{ "gateway-pub", required_argument, NULL, 'g' }, { "strict", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	struct pack_opts o;
	struct policy *pol = NULL;
	struct keyfile_key *match = NULL, *sign = NULL, *gw = NULL;
	const char *policy = NULL, *mp = NULL, *sp = NULL, *gp = NULL;
	struct cg_err err;
	char hex[33];
	int c, r = 1;

	memset(&o, 0, sizeof(o));
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': policy = optarg; break;
		case 'P': o.partner_id = optarg; break;
		case 'i': o.input = optarg; break;
		case 'o': o.output = optarg; break;
		case 'm': mp = optarg; break;
		case 's': sp = optarg; break;
		case 'g': gp = optarg; break;
		case 'S': o.strict = 1; break;
		case 'h': printf("usage: %s\n\n%s", agent_usage, agent_help); return 0;
		default: return cli_usage(agent_usage, NULL);
		}
	}
	if (optind >= argc || strcmp(argv[optind], "pack") != 0)
		return cli_usage(agent_usage, "unknown or missing agent command (pack)");
	if (policy == NULL) return cli_missing(agent_usage, "--policy");
	if (o.partner_id == NULL) return cli_missing(agent_usage, "--partner");
	if (o.input == NULL) return cli_missing(agent_usage, "--input");
	if (o.output == NULL) return cli_missing(agent_usage, "--out");
	if (mp == NULL) return cli_missing(agent_usage, "--match-key");
	if (sp == NULL) return cli_missing(agent_usage, "--sign-key");
	if (gp == NULL) return cli_missing(agent_usage, "--gateway-pub");
	if (cli_load_policy(policy, &pol) != 0 ||
	    cli_load_key(mp, KEYFILE_MATCH, &match) != 0 ||
	    cli_load_key(sp, KEYFILE_ED25519_SECRET, &sign) != 0 ||
	    cli_load_key(gp, KEYFILE_X25519_PUBLIC, &gw) != 0)
		goto out;
	o.pol = pol;
	o.match = match;
	o.sign = sign;
	o.gateway = gw;
	o.report = stderr;
	o.report_max = ctx->report_max ? ctx->report_max : 50;
	o.progress = ctx->out != NULL;
	cg_err_clear(&err);
	if (pack_csv(&o, &ctx->pack, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->pack.bad_rows > o.report_max)
		fprintf(stderr, "crossgate: ... %llu bad rows in all (first %llu shown)\n",
		    (unsigned long long)ctx->pack.bad_rows, (unsigned long long)o.report_max);
	sodium_bin2hex(hex, sizeof(hex), ctx->pack.batch_id, sizeof(ctx->pack.batch_id));
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu rows read, %llu bad, %llu duplicate rows merged, %llu users without "
		    "match consent dropped, %llu records packed into %s (batch %s)\n", o.input,
		    (unsigned long long)ctx->pack.rows, (unsigned long long)ctx->pack.bad_rows,
		    (unsigned long long)ctx->pack.duplicates, (unsigned long long)ctx->pack.no_match,
		    (unsigned long long)ctx->pack.packed, o.output, hex);
	r = 0;
out:
	policy_free(pol);
	keyfile_free(match);
	keyfile_free(sign);
	keyfile_free(gw);
	return r;
}

