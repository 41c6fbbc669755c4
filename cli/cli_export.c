/* cli_export.c - crossgate export */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#include "cli/cli.h"
#include "net/client.h"
#include "net/rpc.h"
#include <fcntl.h>
#include <unistd.h>
#include "audit/audit.h"
#include "gateway/export.h"
#include "base/outfile.h"
#include "store/store.h"
#include "policy/policy.h"

/* ---- export ---------------------------------------------------------------- */

static const char export_usage[] =
	"crossgate export --db DB --policy FILE --keys DIR --out CSV [--purpose P]\n"
	"                 [--analyst NAME] [--left ID --right ID]\n"
	"       crossgate export " CLI_CLIENT_USAGE "\n"
	"                 --out CSV [--purpose P] [--left ID --right ID]";

static const char export_help[] =
	"A row export, the exception channel (aggregates, `crossgate query`, are the\n"
	"default): join the partners' records on tokens and write an anonymized CSV of\n"
	"merged features, with its provenance in CSV.meta.json.  Pseudonyms come from a\n"
	"fresh key destroyed after the export; quasi-identifiers are generalized by the\n"
	"policy's hierarchies; classes smaller than k or less than l-diverse on a\n"
	"sensitive column are suppressed, and the export fails (nothing written) if that\n"
	"would suppress more than the policy's suppression_limit.  Only subjects whose\n"
	"records on both sides consent to the purpose (default 'analytics') are used.\n"
	"The analyst (--analyst, default 'analyst', a principal of the policy) needs the\n"
	"purpose under row_exports and counts one export against its max_exports.\n"
	"The export, or its refusal, is an audit event.\n"
	"With --gateway the gateway does it and sends the CSV over mutual TLS; the\n"
	"certificate must be an analyst's whose policy entry allows it.\n";

int
cli_meta_save(const char *out_path, const char *meta, struct cg_err *err)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s.meta.json", out_path);
	if (meta == NULL || meta[0] == '\0')
		return cg_err_set(err, CG_ERR_FORMAT, "gateway: the export came without its provenance");
	return outfile_write(path, meta, strlen(meta), 0600, err);
}

int
cli_recv_file(struct client *c, uint64_t size, const char *out_path, struct cg_err *err)
{
	Crossgate__Response *resp = NULL;
	struct outfile of;
	uint64_t got = 0;
	int r, last = 0;

	if ((r = outfile_open(&of, out_path, 0600, err)) != 0)
		return r;
	while (!last) {
		if ((r = client_recv(c, &resp, err)) != 0)
			goto out;
		if (resp->result_case != CROSSGATE__RESPONSE__RESULT_CHUNK ||
		    resp->chunk->data.len > size - got) {
			r = cg_err_set(err, CG_ERR_FORMAT, "gateway: the stream does not match its announced size");
			goto out;
		}
		if (resp->chunk->data.len > 0 && fwrite(resp->chunk->data.data, 1, resp->chunk->data.len, of.f) !=
		    resp->chunk->data.len) {
			r = cg_err_set(err, CG_ERR_IO, "cannot write %s: %s", of.tmp, strerror(errno));
			goto out;
		}
		got += resp->chunk->data.len;
		last = resp->chunk->last;
		crossgate__response__free_unpacked(resp, NULL);
		resp = NULL;
	}
	if (got != size)
		r = cg_err_set(err, CG_ERR_FORMAT, "gateway: the stream ended after %llu of %llu bytes",
		    (unsigned long long)got, (unsigned long long)size);
	else
		r = outfile_commit(&of, err);
out:
	outfile_abort(&of);
	if (resp != NULL)
		crossgate__response__free_unpacked(resp, NULL);
	return r;
}

/* Pull the export from a gateway into out_path (through a .tmp file, renamed when complete). */
static int
export_remote(const struct client_opts *co, const char *out_path, const char *purpose, const char *left,
    const char *right, struct export_stats *st, struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__ExportRequest er = CROSSGATE__EXPORT_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct client *c = NULL;
	uint64_t size;
	int r;

	if ((r = client_open(co, &c, err)) != 0)
		return r;
	er.purpose = (char *)purpose;
	er.left = (char *)(left != NULL ? left : "");
	er.right = (char *)(right != NULL ? right : "");
	req.op_case = CROSSGATE__REQUEST__OP_EXPORT;
	req.export = &er;
	if ((r = client_send(c, &req, err)) != 0 || (r = client_recv(c, &resp, err)) != 0)
		goto out;
	if (resp->result_case != CROSSGATE__RESPONSE__RESULT_EXPORT) {
		r = cg_err_set(err, CG_ERR_FORMAT, "gateway: unexpected answer to an export");
		goto out;
	}
	memset(st, 0, sizeof(*st));
	st->left_records = resp->export->left_records;
	st->right_records = resp->export->right_records;
	st->matched = resp->export->matched;
	st->ambiguous = resp->export->ambiguous;
	st->no_consent = resp->export->no_consent;
	st->exported = resp->export->exported;
	st->suppressed = resp->export->suppressed;
	st->superseded = resp->export->superseded;
	st->k = resp->export->k;
	size = resp->export->size;
	if ((r = cli_meta_save(out_path, resp->export->meta_json, err)) != 0)
		goto out;
	r = cli_recv_file(c, size, out_path, err);
out:
	if (resp != NULL)
		crossgate__response__free_unpacked(resp, NULL);
	client_close(c);
	return r;
}

int
cmd_export(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'b' }, { "policy", required_argument, NULL, 'p' },
		{ "keys", required_argument, NULL, 'k' }, { "out", required_argument, NULL, 'o' },
		{ "purpose", required_argument, NULL, 'u' }, { "left", required_argument, NULL, 'l' },
		{ "right", required_argument, NULL, 'r' }, { "gateway", required_argument, NULL, 'G' },
		{ "ca", required_argument, NULL, 'C' }, { "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'K' }, { "timeout", required_argument, NULL, 't' },
		{ "analyst", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	struct client_opts co;
	unsigned long v;
	const char *db = NULL, *policy = NULL, *keys = NULL, *analyst = "analyst";
	struct export_opts o;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int c, r = 1;

	memset(&o, 0, sizeof(o));
	memset(&co, 0, sizeof(co));
	o.purpose = "analytics";
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': db = optarg; break;
		case 'p': policy = optarg; break;
		case 'k': keys = optarg; break;
		case 'o': o.out_path = optarg; break;
		case 'u': o.purpose = optarg; break;
		case 'a': analyst = optarg; break;
		case 'l': o.left = optarg; break;
		case 'r': o.right = optarg; break;
		case 'G': co.gateway = optarg; break;
		case 'C': co.ca = optarg; break;
		case 'c': co.cert = optarg; break;
		case 'K': co.key = optarg; break;
		case 't':
			if (cli_parse_uint("--timeout", optarg, 3600, &v) != 0)
				return CLI_USAGE;
			co.timeout_s = (unsigned)v;
			break;
		case 'h': printf("usage: %s\n\n%s", export_usage, export_help); return 0;
		default: return cli_usage(export_usage, NULL);
		}
	}
	if (optind != argc)
		return cli_usage(export_usage, "unexpected argument");
	if (co.gateway != NULL) {
		if ((r = cli_client_check(&co, export_usage)) != 0)
			return r;
		if (o.out_path == NULL) return cli_missing(export_usage, "--out");
		if (db != NULL || keys != NULL || policy != NULL)
			return cli_usage(export_usage, "--gateway exports on the gateway: no --db, --keys or --policy");
		cg_err_clear(&err);
		if (export_remote(&co, o.out_path, o.purpose, o.left, o.right, &ctx->export, &err) != 0) {
			cli_error("%s", err.msg);
			return 1;
		}
		r = 0;
		goto summary;
	}
	if (db == NULL) return cli_missing(export_usage, "--db");
	if (policy == NULL) return cli_missing(export_usage, "--policy");
	if (keys == NULL) return cli_missing(export_usage, "--keys");
	if (o.out_path == NULL) return cli_missing(export_usage, "--out");
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	o.pol = pol;
	o.storage = k.storage;
	if ((o.analyst = policy_principal_by_name(pol, analyst)) == NULL) {
		cli_error("%s: no principal '%s' in the policy (--analyst names the analyst the export is for)",
		    policy, analyst);
		goto out;
	}
	cg_err_clear(&err);
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    audit_policy_seen(a, pol->hash, &err) != 0 || export_run(st, a, &o, &ctx->export, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	r = 0;
summary:
	if (ctx->out && co.gateway != NULL)
		fprintf(ctx->out, "%s: %llu rows exported for '%s' (suppressed below k=%u or l: %llu; provenance in "
		    "%s.meta.json)\n", o.out_path, (unsigned long long)ctx->export.exported, o.purpose, ctx->export.k,
		    (unsigned long long)ctx->export.suppressed, o.out_path);
	else if (ctx->out)
		fprintf(ctx->out, "%s: %llu rows exported for '%s' (matched %llu, left out for consent %llu, "
		    "suppressed below k=%u or l=%u %llu, ambiguous %llu, superseded %llu)\n", o.out_path,
		    (unsigned long long)ctx->export.exported, o.purpose, (unsigned long long)ctx->export.matched,
		    (unsigned long long)ctx->export.no_consent, ctx->export.k, ctx->export.l,
		    (unsigned long long)ctx->export.suppressed, (unsigned long long)ctx->export.ambiguous,
		    (unsigned long long)ctx->export.superseded);
	if (co.gateway != NULL)
		return r;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

