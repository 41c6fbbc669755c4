/* cli_policy.c - crossgate policy */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#include "gateway/cli.h"
#include "policy/policy.h"

/* ---- policy ---------------------------------------------------------------- */

static const char policy_usage[] = "crossgate policy check FILE";

int
cmd_policy(int argc, char **argv, struct cli_ctx *ctx)
{
	struct policy *pol = NULL;
	struct policy_problems probs = { NULL, 0 };
	struct cg_err err;
	size_t i;
	char hex[65];

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: %s\n\nParse and validate a data-sharing policy; print every problem as\n"
		    "FILE:LINE:COLUMN: reason.  Exit 0 if the policy is valid.\n", policy_usage);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "check") != 0)
		return cli_usage(policy_usage, NULL);
	cg_err_clear(&err);
	if (policy_load(argv[2], &pol, &probs, &err) != 0) {
		if (probs.n == 0)
			fprintf(stderr, "%s\n", err.msg);
		for (i = 0; i < probs.n; i++)
			fprintf(stderr, "%s\n", probs.msgs[i]);
		fprintf(stderr, "crossgate: %s: %zu problem%s\n", argv[2], probs.n ? probs.n : 1,
		    probs.n == 1 ? "" : "s");
		policy_problems_free(&probs);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), pol->hash, sizeof(pol->hash));
	if (ctx->out)
		fprintf(ctx->out, "%s: ok: %zu partners, %zu purposes, k = %u, sha256 %s\n", argv[2],
		    pol->npartners, pol->npurposes, pol->k, hex);
	policy_free(pol);
	policy_problems_free(&probs);
	return 0;
}

