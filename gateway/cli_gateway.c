/* cli_gateway.c - crossgate gateway */
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
#include "gateway/ingest.h"
#include "gateway/store.h"
#include "policy/policy.h"

/* ---- gateway --------------------------------------------------------------- */

static const char gateway_usage[] =
	"crossgate gateway ingest --db DB --policy FILE --keys DIR BATCH...";

static const char gateway_help[] =
	"Ingest batch files.  Each batch is verified (partner's signature over the\n"
	"whole file, policy, gateway key), opened, checked record by record against\n"
	"the policy, and committed in one transaction: all of it or nothing.  A batch\n"
	"already committed is reported as a duplicate and changes nothing.  Every\n"
	"outcome is an audit event.  DIR holds the gateway keys of 'crossgate keygen\n"
	"gateway' (enc.key, sign.key, storage.key).  Exit 1 if any batch was rejected.\n";

int
cmd_gateway(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'b' }, { "policy", required_argument, NULL, 'p' },
		{ "keys", required_argument, NULL, 'k' }, { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	const char *db = NULL, *policy = NULL, *keys = NULL;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct ingest_keys ik;
	struct ingest_result res;
	struct cg_err err;
	int c, i, r = 1, failed = 0;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': db = optarg; break;
		case 'p': policy = optarg; break;
		case 'k': keys = optarg; break;
		case 'h': printf("usage: %s\n\n%s", gateway_usage, gateway_help); return 0;
		default: return cli_usage(gateway_usage, NULL);
		}
	}
	if (optind >= argc || strcmp(argv[optind], "ingest") != 0)
		return cli_usage(gateway_usage, "unknown or missing gateway command (ingest)");
	if (db == NULL) return cli_missing(gateway_usage, "--db");
	if (policy == NULL) return cli_missing(gateway_usage, "--policy");
	if (keys == NULL) return cli_missing(gateway_usage, "--keys");
	if (optind + 1 >= argc)
		return cli_usage(gateway_usage, "no batch file given");
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	cg_err_clear(&err);
	if (store_open(db, STORE_OPEN_CREATE, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	ik.enc = k.enc;
	ik.storage = k.storage;
	for (i = optind + 1; i < argc; i++) {
		cg_err_clear(&err);
		if (ingest_batch_file(st, a, pol, &ik, argv[i], &res, &err) != 0) {
			cli_error("rejected: %s", err.msg);
			ctx->ingest_rejected++;
			failed = 1;
			continue;
		}
		if (res.duplicate) {
			ctx->ingest_duplicates++;
			if (ctx->out)
				fprintf(ctx->out, "%s: duplicate: batch already committed, nothing changed\n", argv[i]);
			continue;
		}
		ctx->ingested_records += res.records;
		if (ctx->out)
			fprintf(ctx->out, "%s: committed %llu records from partner %s\n", argv[i],
			    (unsigned long long)res.records, res.partner);
	}
	if (store_checkpoint(st, &err) != 0)
		cli_error("%s", err.msg);
	r = failed;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

