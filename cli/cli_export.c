/* cli_export.c - crossgate export */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "net/client.h"
#include "net/rpc.h"
#include <fcntl.h>
#include <unistd.h>
#include "audit/audit.h"
#include "gateway/budget.h"
#include "gateway/export.h"
#include "gateway/synthrel.h"
#include "base/outfile.h"
#include "store/store.h"
#include "policy/policy.h"

/* ---- export ---------------------------------------------------------------- */

static const char export_usage[] =
	"crossgate export --db DB --policy FILE --keys DIR --out CSV [--purpose P]\n"
	"                 [--rho R] [--rows N] [--bins B] [--analyst NAME] [--left ID --right ID]\n"
	"       crossgate export " CLI_CLIENT_USAGE "\n"
	"                 --out CSV [--purpose P] [--rho R] [--rows N] [--bins B] [--left ID --right ID]";

static const char export_help[] =
	"A row release of differentially private SYNTHETIC data (MST: McKenna et al.\n"
	"2021).  No row is a subject's: the gateway bins every released column by the\n"
	"policy, measures noisy 1-way marginals, chooses a tree of 2-way marginals with\n"
	"the exponential mechanism, measures them, fits a tree model and draws rows\n"
	"from it.  The release is charged to the same zCDP budget as `crossgate query`\n"
	"(per analyst and dataset) before any subject is read; once the budget is spent\n"
	"nothing is released.  Only subjects whose records on both sides consent to the\n"
	"purpose (default 'analytics') are used.\n"
	"  --rho R      zCDP budget the release spends; default the policy's\n"
	"               privacy.export_rho\n"
	"  --rows N     synthetic rows to draw (at most 10000000); default the model's\n"
	"               noisy estimate of the number of subjects\n"
	"  --bins B     equal-width bins of an int feature's policy bounds (2-100,\n"
	"               default 10); an int feature without bounds is refused\n"
	"CSV: the released columns (quasi-identifiers, then <partner>_<column>), one\n"
	"synthetic row per line, each cell a bin label (\"LO-HI\", an integer, a value,\n"
	"\"*\" for missing); CSV.meta.json: the provenance (bins, tree, noise, rho).\n"
	"The analyst (--analyst, default 'analyst', a principal of the policy) needs the\n"
	"purpose under row_exports; max_exports caps its releases beside the budget.\n"
	"The release, or its refusal, is an audit event.\n"
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
cli_json_save(const char *path, const json_t *j)
{
	struct outfile of = { 0 };
	struct cg_err err;
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	int r = -1;

	cg_err_clear(&err);
	if (s == NULL)
		cli_error("out of memory");
	else if (outfile_open(&of, path, 0600, &err) != 0 || fprintf(of.f, "%s\n", s) < 0 ||
	    outfile_commit(&of, &err) != 0) {
		outfile_abort(&of);
		cli_error("%s", err.msg);
	} else
		r = 0;
	free(s);
	return r;
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
export_remote(const struct client_opts *co, const struct export_opts *o, const char *rho, struct export_stats *st,
    struct cg_err *err)
{
	const char *out_path = o->out_path;
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__ExportRequest er = CROSSGATE__EXPORT_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct client *c = NULL;
	uint64_t size;
	int r;

	er.purpose = (char *)o->purpose;
	er.left = (char *)(o->left != NULL ? o->left : "");
	er.right = (char *)(o->right != NULL ? o->right : "");
	er.rho = (char *)(rho != NULL ? rho : "");
	er.rows = o->rows;
	er.bins = o->bins;
	req.op_case = CROSSGATE__REQUEST__OP_EXPORT;
	req.export = &er;
	if ((r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_EXPORT, "an export", &c, &resp, err)) != 0)
		return r;
	memset(st, 0, sizeof(*st));
	st->rows = resp->export->exported;
	st->charged_nano = resp->export->charged_nano;
	st->remaining_nano = resp->export->remaining_nano;
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
	struct client_opts co;
	unsigned long long v;
	const char *db = NULL, *policy = NULL, *keys = NULL, *analyst = "analyst", *rho = NULL, *bins = NULL;
	struct export_opts o;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int r = 1;
	const struct cliopt opts[] = { CLIOPT_STR("db", &db), CLIOPT_STR("policy", &policy), CLIOPT_STR("keys", &keys),
		CLIOPT_STR("out", &o.out_path), CLIOPT_STR("purpose", &o.purpose), CLIOPT_STR("left", &o.left),
		CLIOPT_STR("right", &o.right), CLIOPT_CLIENT_OPT(&co), CLIOPT_STR("analyst", &analyst),
		CLIOPT_STR("rho", &rho), CLIOPT_UINT("rows", &o.rows, 0, SYNTHREL_ROWS_MAX), CLIOPT_STR("bins", &bins),
		CLIOPT_END };

	memset(&o, 0, sizeof(o));
	memset(&co, 0, sizeof(co));
	o.purpose = "analytics";
	if (cliopt_parse(argc, argv, export_usage, export_help, opts, NULL, &r))
		return r;
	r = 1;
	if (rho != NULL && policy_parse_nano(rho, strlen(rho), POLICY_RHO_MAX, &o.rho_nano) != 0)
		return cli_usage(export_usage, "--rho wants a decimal above 0 (at most 9 decimals)");
	/* "--bins wants 2 to 100" is the message users (and test_privacy.sh) know, below the range too. */
	if (bins != NULL) {
		if (cliopt_number("bins", bins, 0, SYNTHREL_BINS_MAX, &v) != 0)
			return CLI_USAGE;
		if (v < 2)
			return cli_usage(export_usage, "--bins wants 2 to 100");
		o.bins = (uint32_t)v;
	}
	if (co.gateway != NULL) {
		if ((r = cli_client_check(&co, export_usage)) != 0)
			return r;
		if (o.out_path == NULL) return cli_missing(export_usage, "--out");
		if (db != NULL || keys != NULL || policy != NULL)
			return cli_usage(export_usage, "--gateway exports on the gateway: no --db, --keys or --policy");
		cg_err_clear(&err);
		if (export_remote(&co, &o, rho, &ctx->export, &err) != 0) {
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
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu synthetic rows for '%s' (DP, MST); charged rho %.9f, %.9f remains "
		    "(provenance in %s.meta.json)\n", o.out_path, (unsigned long long)ctx->export.rows, o.purpose,
		    (double)ctx->export.charged_nano / BUDGET_NANO, (double)ctx->export.remaining_nano / BUDGET_NANO,
		    o.out_path);
	if (co.gateway != NULL)
		return r;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

