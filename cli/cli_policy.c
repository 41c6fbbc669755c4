/* cli_policy.c - crossgate policy check|diff */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "base/escape.h"
#include "cli/cli.h"
#include "cli/cliopt.h"
#include "policy/diff.h"
#include "policy/policy.h"

static const char policy_usage[] =
	"crossgate policy check FILE\n"
	"       crossgate policy diff OLD NEW";

static const char policy_help[] =
	"check  parse and validate a data-sharing policy; print every problem as\n"
	"       FILE:LINE:COLUMN: reason.  Exit 0 if the policy is valid.\n"
	"diff   what changing OLD into NEW does, one line per difference marked\n"
	"       WIDER (more shared or less protected), NARROWER, BREAKS (stored data\n"
	"       changes meaning: purposes reordered, normalization or keys changed)\n"
	"       or CHANGE.  Exit 0 if they agree, 1 if they differ, 2 on errors.\n";

static void
policy_problem_print(const char *msg)
{
	char *e = escape_text_dup(msg);

	fprintf(stderr, "%s\n", e != NULL ? e : "(out of memory)");
	free(e);
}

static int
policy_check(const char *path, struct cli_ctx *ctx)
{
	struct policy *pol = NULL;
	struct policy_problems probs = { NULL, 0 };
	struct cg_err err;
	size_t i;
	char hex[65];

	cg_err_clear(&err);
	if (policy_load(path, &pol, &probs, &err) != 0) {
		/* problems quote the file (keys, values): escaped, as every message is (base/escape.h) */
		if (probs.n == 0)
			policy_problem_print(err.msg);
		for (i = 0; i < probs.n; i++)
			policy_problem_print(probs.msgs[i]);
		fprintf(stderr, "crossgate: %s: %zu problem%s\n", path, probs.n ? probs.n : 1,
		    probs.n == 1 ? "" : "s");
		policy_problems_free(&probs);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), pol->hash, sizeof(pol->hash));
	if (ctx->out)
		fprintf(ctx->out, "%s: ok: %zu partners, %zu purposes, k = %u, sha256 %s\n", path,
		    pol->npartners, pol->npurposes, pol->k, hex);
	policy_free(pol);
	policy_problems_free(&probs);
	return 0;
}

static int
policy_diff_cmd(const char *old_path, const char *new_path, struct cli_ctx *ctx)
{
	struct policy *a = NULL, *b = NULL;
	struct policy_diff_counts c;
	char ha[65], hb[65];
	int r = CLI_USAGE;

	if (cli_load_policy(old_path, &a) != 0 || cli_load_policy(new_path, &b) != 0)
		goto out;
	sodium_bin2hex(ha, sizeof(ha), a->hash, sizeof(a->hash));
	sodium_bin2hex(hb, sizeof(hb), b->hash, sizeof(b->hash));
	policy_diff(a, b, ctx->out, &c);
	if (ctx->out)
		fprintf(ctx->out, "%zu difference%s (%zu wider, %zu narrower, %zu breaking); sha256 %.16s -> %.16s\n",
		    c.total, c.total == 1 ? "" : "s", c.wider, c.narrower, c.breaks, ha, hb);
	r = c.total == 0 ? 0 : 1;
out:
	policy_free(a);
	policy_free(b);
	return r;
}

int
cmd_policy(int argc, char **argv, struct cli_ctx *ctx)
{
	/* No option but --help, from the same table helper as every command (crossgate policy diff --help too). */
	const struct cliopt opts[] = { CLIOPT_END };
	int argi, r, n;

	if (cliopt_parse(argc, argv, policy_usage, policy_help, opts, &argi, &r))
		return r;
	n = argc - argi;
	if (n == 2 && strcmp(argv[argi], "check") == 0)
		return policy_check(argv[argi + 1], ctx);
	if (n == 3 && strcmp(argv[argi], "diff") == 0)
		return policy_diff_cmd(argv[argi + 1], argv[argi + 2], ctx);
	return cli_usage(policy_usage, NULL);
}
