/* cli_audience.c - crossgate audience (create, take) and crossgate agent audience (gateway/audience.h) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "agent/audience.h"
#include "agent/state.h"
#include "audit/audit.h"
#include "base/outfile.h"
#include "gateway/audience.h"
#include "gateway/budget.h"
#include "gateway/model.h"
#include "gateway/segment.h"
#include "net/rpc.h"
#include "net/client.h"
#include "store/store.h"
#include "policy/policy.h"

static const char audience_usage[] =
	"crossgate audience create --db DB --policy FILE --keys DIR --name NAME\n"
	"                          (--rule RULE | --segment KMEANS.csv --cluster N)\n"
	"                          [--analyst NAME] [--rho R] [--left ID --right ID] [--out FILE.json]\n"
	"       crossgate audience create " CLI_CLIENT_USAGE "\n"
	"                          --name NAME (--rule RULE | --segment KMEANS.csv --cluster N)\n"
	"                          [--rho R] [--left ID --right ID] [--out FILE.json]\n"
	"       crossgate audience take --db DB --policy FILE --keys DIR --partner ID --out-dir DIR [--all]";

static const char audience_help[] =
	"create: an audience for activation under the purpose 'marketing' (the\n"
	"analyst, default 'analyst', must be granted it).  Members are the joined\n"
	"subjects whose newest records consent to 'marketing' at BOTH partners and\n"
	"that --rule selects.  The rule compares columns named as in a query:\n"
	"  int features with = != < <= > >= and an integer (g_watch_minutes >= 600),\n"
	"  categories with = or != and one of their values (k_top_course_category =\n"
	"  programming), quasi-identifiers with = or != and one of their groups\n"
	"  (age = 20-29, region = North); joined by and, or, not and parentheses.\n"
	"A value is a word of letters, digits, '_', '.', '+', '-' or is \"quoted\".\n"
	"A bad rule is refused with the byte offset and the reason.\n"
	"Or --segment FILE --cluster N (instead of --rule): the subjects whose nearest\n"
	"centre of a released k-means model ('crossgate query --model kmeans --out\n"
	"FILE', with FILE.meta.json beside it) is cluster N, in the space the model\n"
	"clustered in (its columns clamped to its bounds, log1p if it used it).  The\n"
	"centres are public DP output: no further charge for them.  A file that is\n"
	"not a released k-means output, a sidecar that does not match it, a column\n"
	"not shared for marketing or a cluster not released is refused, uncharged.\n"
	"The policy's marketing section decides: receivers (partners that get\n"
	"audiences; none: refused), sources (partners whose data may select one),\n"
	"min_audience (default 1000).  An audience below the minimum is refused,\n"
	"decided on a noisy count whose noise is fixed for the same members (asking\n"
	"again reveals nothing new); a refusal charges nothing and counts against\n"
	"max_refusals.  Otherwise the analyst's budget is charged (audience_rho, or\n"
	"--rho, plus the refusal test's epsilon as rho) and the only answer is the\n"
	"noisy size.  Each receiving partner gets a pending delivery: the tokens it\n"
	"sent for its own members, sealed to its signing key.  Every step is an\n"
	"audit event (rule or segment file hash and cluster, purpose, noisy size,\n"
	"recipients).  With --gateway the gateway does it over mutual TLS; the\n"
	"analyst is the certificate's principal (a segment's two files are sent).\n"
	"--out FILE.json also writes the analyst's answer (noisy size, charge,\n"
	"recipients) as JSON, e.g. for 'crossgate analytics report --audience'.\n"
	"\n"
	"take: the operator's offline path (tests, demo): write the deliveries\n"
	"waiting for partner ID as DIR/NAME-ID.sealed (0600) and mark them taken;\n"
	"--all also those taken before.  The partner opens them with 'crossgate agent\n"
	"audience --in'; over the network it pulls its own with 'crossgate agent\n"
	"audience --gateway'.\n";

static const char agent_audience_usage[] =
	"crossgate agent audience --partner ID --sign-key FILE --state FILE --out-dir DIR\n"
	"                         (--in SEALED... | " CLI_CLIENT_USAGE " [--all])";

static const char agent_audience_help[] =
	"Open the audiences the gateway delivered to this partner (sealed to its\n"
	"signing key, --sign-key), map each token back to the partner's own user ids\n"
	"through the agent's --state file (the one 'agent pack --state' wrote), and\n"
	"write DIR/NAME.csv (0600): a header 'user_id', then the user ids.  With\n"
	"--gateway the deliveries waiting for this partner are pulled over mutual TLS\n"
	"(the gateway sends only the deliveries of the partner the certificate names);\n"
	"--all pulls those pulled before too.  With --in, sealed files written by\n"
	"'crossgate audience take' are opened instead (repeatable).  A delivery sealed\n"
	"to another partner does not open.  A token the state file does not know\n"
	"leaves its user out (the output says so).\n";

/* ---- crossgate audience create / take ---- */

/* What the analyst sees: the noisy size, the charge, the recipients. */
static void
audience_print(const struct cli_ctx *ctx, const char *name, const struct audience_stats *as)
{
	size_t i;

	if (ctx->json) {
		printf("{\"audience\": \"%s\", \"id\": \"%s\", \"rule_sha256\": \"%s\", \"noisy_size\": %lld, "
		    "\"charged_rho\": %.9f, \"remaining_rho\": %.9f, \"recipients\": [", name, as->audience_id,
		    as->rule_hash, (long long)as->noisy_size, (double)as->charged_nano / BUDGET_NANO,
		    (double)as->remaining_nano / BUDGET_NANO);
		for (i = 0; i < as->nrecipients; i++)
			printf("%s\"%s\"", i ? ", " : "", as->recipients[i]);
		printf("]}\n");
	} else if (ctx->out) {
		char what[64];

		if (as->cluster)
			snprintf(what, sizeof(what), "segment sha256 %.16s... cluster %u", as->rule_hash, as->cluster);
		else
			snprintf(what, sizeof(what), "rule sha256 %.16s...", as->rule_hash);
		fprintf(ctx->out, "audience '%s': noisy size %lld (%s); charged rho %.9f, %.9f remains; delivered to", name,
		    (long long)as->noisy_size, what, (double)as->charged_nano / BUDGET_NANO,
		    (double)as->remaining_nano / BUDGET_NANO);
		for (i = 0; i < as->nrecipients; i++)
			fprintf(ctx->out, "%s%s", i ? ", " : " ", as->recipients[i]);
		fprintf(ctx->out, "\n");
	}
}

/* The analyst's answer as a file (what --json prints): for the analytics report. */
static int
audience_write(const char *path, const char *name, const struct audience_stats *as)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:[]}", "audience", name, "id", as->audience_id,
	    "rule_sha256", as->rule_hash, "noisy_size", (json_int_t)as->noisy_size, "charged_rho",
	    (double)as->charged_nano / BUDGET_NANO, "remaining_rho", (double)as->remaining_nano / BUDGET_NANO,
	    "recipients");
	size_t i;
	int r;

	if (j == NULL) {
		cli_error("out of memory");
		return -1;
	}
	if (as->cluster)
		json_object_set_new(j, "segment_cluster", json_integer(as->cluster));
	for (i = 0; i < as->nrecipients; i++)
		json_array_append_new(json_object_get(j, "recipients"), json_string(as->recipients[i]));
	r = cli_json_save(path, j);
	json_decref(j);
	return r;
}

/* Ask a gateway for an audience; fills the analyst's answer into *as. */
static int
audience_remote(const struct client_opts *co, const struct audience_spec *sp, const char *rho,
    struct audience_stats *as, struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__AudienceCreateRequest ar = CROSSGATE__AUDIENCE_CREATE_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	char *csv = NULL, *meta = NULL;
	size_t i;
	int r;

	memset(as, 0, sizeof(*as));
	ar.name = (char *)sp->name;
	ar.rule = (char *)(sp->rule ? sp->rule : "");
	if (sp->segment != NULL) {
		/* the released files' bytes go as they are: the gateway checks them as it would read them */
		if ((r = segment_read(sp->segment, &csv, &ar.segment_csv.len, &meta, &ar.segment_meta.len, err)) != 0)
			return r;
		if (ar.segment_csv.len > RPC_SEGMENT_MAX || ar.segment_meta.len > RPC_SEGMENT_MAX) {
			r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: larger than a released k-means output", sp->segment);
			goto out;
		}
		ar.segment_csv.data = (uint8_t *)csv;
		ar.segment_meta.data = (uint8_t *)meta;
		ar.cluster = sp->cluster;
	}
	ar.rho = (char *)(rho ? rho : "");
	ar.left = (char *)(sp->left ? sp->left : "");
	ar.right = (char *)(sp->right ? sp->right : "");
	req.op_case = CROSSGATE__REQUEST__OP_AUDIENCE_CREATE;
	req.audience_create = &ar;
	if ((r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_AUDIENCE_CREATE, "an audience", NULL, &resp,
	    err)) != 0)
		goto out;
	snprintf(as->audience_id, sizeof(as->audience_id), "%s", resp->audience_create->id);
	snprintf(as->rule_hash, sizeof(as->rule_hash), "%s", resp->audience_create->rule_sha256);
	as->noisy_size = resp->audience_create->noisy_size;
	as->cluster = resp->audience_create->cluster;
	as->charged_nano = resp->audience_create->charged_nano;
	as->remaining_nano = resp->audience_create->remaining_nano;
	for (i = 0; i < resp->audience_create->n_recipients && i < 2; i++)
		snprintf(as->recipients[as->nrecipients++], sizeof(as->recipients[0]), "%s",
		    resp->audience_create->recipients[i]);
out:
	if (resp != NULL)
		crossgate__response__free_unpacked(resp, NULL);
	free(csv);
	free(meta);
	return r;
}

static int
audience_take(struct store *st, struct audit *a, const struct policy *pol, const char *partner, const char *dir, int all, struct cli_ctx *ctx,
    struct cg_err *err)
{
	struct audience_delivery *d = NULL;
	size_t n = 0, i;
	char path[4096];
	int r;

	if ((r = audience_fetch(st, a, pol, partner, all, &d, &n, err)) != 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		snprintf(path, sizeof(path), "%s/%s-%s.sealed", dir, d[i].audience, d[i].id);
		r = outfile_write(path, d[i].sealed, d[i].len, 0600, err);
		if (r == 0 && ctx->out)
			fprintf(ctx->out, "%s: audience '%s' for partner %s (sealed to its signing key)\n", path,
			    d[i].audience, partner);
	}
	if (r == 0 && n == 0 && ctx->out)
		fprintf(ctx->out, "no delivery waiting for partner %s\n", partner);
	audience_deliveries_free(d, n);
	return r;
}

/* --rule, or --segment with --cluster: one of them. */
static int
audience_target(struct audience_spec *sp, const char *segment, uint32_t cluster)
{
	if (sp->rule != NULL && segment != NULL)
		return cli_usage(audience_usage, "--rule and --segment exclude each other: an audience is one or the other");
	if (segment != NULL && cluster == 0)
		return cli_missing(audience_usage, "--cluster");
	if (segment == NULL && cluster != 0)
		return cli_usage(audience_usage, "--cluster goes with --segment");
	if (sp->rule == NULL && segment == NULL)
		return cli_missing(audience_usage, "--rule (or --segment)");
	sp->segment = segment;
	sp->cluster = cluster;
	return 0;
}

int
cmd_audience(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *policy = NULL, *keys = NULL, *rho = NULL, *partner = NULL, *dir = NULL, *sub;
	const char *outp = NULL, *segment = NULL;
	uint32_t cluster = 0;
	struct audience_spec sp;
	struct audience_stats as;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	const char *analyst = "analyst";
	struct cg_err err;
	struct client_opts co;
	int all = 0, argi, r;
	const struct cliopt opts[] = { CLIOPT_STR("db", &db), CLIOPT_STR("policy", &policy), CLIOPT_STR("keys", &keys),
		CLIOPT_STR("name", &sp.name), CLIOPT_STR("rule", &sp.rule), CLIOPT_STR("analyst", &analyst),
		CLIOPT_STR("segment", &segment), CLIOPT_UINT("cluster", &cluster, 1, MODEL_K_MAX),
		CLIOPT_STR("rho", &rho), CLIOPT_STR("left", &sp.left), CLIOPT_STR("right", &sp.right),
		CLIOPT_STR("partner", &partner), CLIOPT_STR("out-dir", &dir), CLIOPT_FLAG("all", &all),
		CLIOPT_STR("out", &outp), CLIOPT_CLIENT_OPT(&co), CLIOPT_END };

	memset(&sp, 0, sizeof(sp));
	memset(&co, 0, sizeof(co));
	cg_err_clear(&err);
	if (cliopt_parse(argc, argv, audience_usage, audience_help, opts, &argi, &r))
		return r;
	if (argi + 1 != argc || (strcmp(argv[argi], "create") != 0 && strcmp(argv[argi], "take") != 0))
		return cli_usage(audience_usage, argi >= argc ? "missing audience command (create, take)" :
		    "unknown audience command (create, take) or an extra argument");
	sub = argv[argi];
	if (co.gateway != NULL) {
		if (strcmp(sub, "create") != 0)
			return cli_usage(audience_usage, "only 'create' goes to a gateway (a partner pulls with 'crossgate "
			    "agent audience --gateway')");
		if ((r = cli_client_check(&co, audience_usage)) != 0)
			return r;
		if (db != NULL || keys != NULL || policy != NULL || partner != NULL || dir != NULL || all)
			return cli_usage(audience_usage, "--gateway asks the gateway: no --db, --keys, --policy or 'take' options");
		if (sp.name == NULL) return cli_missing(audience_usage, "--name");
		if ((r = audience_target(&sp, segment, cluster)) != 0)
			return r;
		if (rho != NULL && policy_parse_nano(rho, strlen(rho), POLICY_RHO_MAX, &sp.rho_nano) != 0)
			return cli_usage(audience_usage, "--rho wants a decimal above 0 (at most 9 decimals)");
		if ((sp.left == NULL) != (sp.right == NULL))
			return cli_usage(audience_usage, "--left and --right go together");
		if (audience_remote(&co, &sp, rho, &as, &err) != 0) {
			cli_error("%s", err.msg);
			return 1;
		}
		audience_print(ctx, sp.name, &as);
		return outp != NULL && audience_write(outp, sp.name, &as) != 0;
	}
	if (db == NULL) return cli_missing(audience_usage, "--db");
	if (policy == NULL) return cli_missing(audience_usage, "--policy");
	if (keys == NULL) return cli_missing(audience_usage, "--keys");
	if (strcmp(sub, "create") == 0) {
		if (sp.name == NULL) return cli_missing(audience_usage, "--name");
		if ((r = audience_target(&sp, segment, cluster)) != 0)
			return r;
		if (partner != NULL || dir != NULL || all)
			return cli_usage(audience_usage, "--partner, --out-dir and --all are options of 'take'");
		if (rho != NULL && policy_parse_nano(rho, strlen(rho), POLICY_RHO_MAX, &sp.rho_nano) != 0)
			return cli_usage(audience_usage, "--rho wants a decimal above 0 (at most 9 decimals)");
	} else {
		if (outp != NULL)
			return cli_usage(audience_usage, "--out is an option of 'create' (take writes into --out-dir)");
		if (partner == NULL) return cli_missing(audience_usage, "--partner");
		if (dir == NULL) return cli_missing(audience_usage, "--out-dir");
		if (sp.name != NULL || sp.rule != NULL || segment != NULL || cluster != 0 || rho != NULL ||
		    sp.left != NULL || sp.right != NULL)
			return cli_usage(audience_usage, "'take' takes no --name, --rule, --segment, --cluster, --rho, --left "
			    "or --right");
	}
	r = 1;
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    audit_policy_seen(a, pol->hash, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (strcmp(sub, "take") == 0) {
		if (policy_partner_find(pol, partner) == NULL) {
			cli_error("%s: no partner '%s' in the policy", policy, partner);
			goto out;
		}
		if (cli_mkdir(dir, 0700) != 0)
			goto out;
		if (audience_take(st, a, pol, partner, dir, all, ctx, &err) != 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		r = 0;
		goto out;
	}
	sp.pol = pol;
	sp.storage = k.storage;
	if ((sp.analyst = policy_principal_by_name(pol, analyst)) == NULL) {
		cli_error("%s: no principal '%s' in the policy (--analyst names who is charged)", policy, analyst);
		goto out;
	}
	if (audience_create(st, a, &sp, &as, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	audience_print(ctx, sp.name, &as);
	r = outp != NULL && audience_write(outp, sp.name, &as) != 0;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

/* ---- crossgate agent audience ---- */

static int
agent_audience_open_one(const unsigned char *buf, size_t len, const struct keyfile_key *sk, const char *partner,
    struct agent_state *state, const char *dir, struct cli_ctx *ctx, struct cg_err *err)
{
	struct agent_audience_stats st;
	char path[4096], tmp[4096];
	int r;

	/* the audience's name is checked by the gateway ([a-z0-9_-]); write through a temporary name, then rename */
	snprintf(tmp, sizeof(tmp), "%s/.audience-open.csv", dir);
	if ((r = agent_audience_write(buf, len, sk, partner, state, tmp, &st, err)) != 0)
		return r;
	if (strspn(st.name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(st.name) || st.name[0] == '\0') {
		remove(tmp);
		return cg_err_set(err, CG_ERR_FORMAT, "a delivery names its audience with characters outside a-z 0-9 _ -");
	}
	snprintf(path, sizeof(path), "%s/%s.csv", dir, st.name);
	if (rename(tmp, path) != 0) {
		remove(tmp);
		return cg_err_set(err, CG_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	}
	if (ctx->out)
		/* the partner's own users, but still no count of people on the terminal or in a log */
		fprintf(ctx->out, "%s: audience '%s', this partner's user ids%s\n", path, st.name,
		    st.unknown ? " (some tokens are not in the state file: those users are left out)" : "");
	return 0;
}

/* Read a whole sealed file (at most 4 GiB). */
static int
agent_audience_read(const char *path, unsigned char **buf, size_t *len, struct cg_err *err)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;

	*buf = NULL;
	*len = 0;
	if (f == NULL || fstat(fileno(f), &sb) != 0 || sb.st_size <= 0 || (uint64_t)sb.st_size > (4ull << 30)) {
		if (f != NULL)
			fclose(f);
		return cg_err_set(err, CG_ERR_IO, "cannot read %s", path);
	}
	if ((*buf = malloc((size_t)sb.st_size)) == NULL || fread(*buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
		free(*buf);
		*buf = NULL;
		fclose(f);
		return cg_err_set(err, CG_ERR_IO, "cannot read %s", path);
	}
	fclose(f);
	*len = (size_t)sb.st_size;
	return 0;
}

/* Pull this partner's deliveries over mutual TLS, each through DIR/.audience-pull.sealed, and open them. */
static int
agent_audience_pull(const struct client_opts *co, int all, const struct keyfile_key *sk, const char *partner,
    struct agent_state *state, const char *dir, struct cli_ctx *ctx, struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__AudienceFetchRequest ar = CROSSGATE__AUDIENCE_FETCH_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct client *c = NULL;
	char tmp[4096];
	uint32_t n, i;
	int r;

	snprintf(tmp, sizeof(tmp), "%s/.audience-pull.sealed", dir);
	ar.all = all != 0;
	req.op_case = CROSSGATE__REQUEST__OP_AUDIENCE_FETCH;
	req.audience_fetch = &ar;
	if ((r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_AUDIENCE_FETCH, "an audience fetch", &c, &resp,
	    err)) != 0)
		return r;
	if (strcmp(resp->audience_fetch->partner, partner) != 0) {
		r = cg_err_set(err, CG_ERR_ARG, "the certificate is partner '%s''s, not '%s''s",
		    resp->audience_fetch->partner, partner);
		goto out;
	}
	n = resp->audience_fetch->deliveries;
	if (n == 0 && ctx->out)
		fprintf(ctx->out, "no delivery waiting for partner %s\n", partner);
	for (i = 0; i < n; i++) {
		unsigned char *buf = NULL;
		size_t len = 0;
		uint64_t size;

		crossgate__response__free_unpacked(resp, NULL);
		resp = NULL;
		if ((r = client_recv(c, &resp, err)) != 0)
			goto out;
		if (resp->result_case != CROSSGATE__RESPONSE__RESULT_AUDIENCE_DELIVERY) {
			r = cg_err_set(err, CG_ERR_FORMAT, "gateway: expected an audience delivery");
			goto out;
		}
		size = resp->audience_delivery->size;
		if ((r = cli_recv_file(c, size, tmp, err)) != 0 || (r = agent_audience_read(tmp, &buf, &len, err)) != 0)
			goto out;
		remove(tmp);
		r = agent_audience_open_one(buf, len, sk, partner, state, dir, ctx, err);
		free(buf);
		if (r != 0)
			goto out;
	}
out:
	remove(tmp);
	if (resp != NULL)
		crossgate__response__free_unpacked(resp, NULL);
	client_close(c);
	return r;
}

int
cmd_agent_audience(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *partner = NULL, *skp = NULL, *statep = NULL, *dir = NULL, *inv[64];
	struct cliopt_list in_l = { inv, 0, 64 };
	struct client_opts co;
	struct keyfile_key *sk = NULL;
	struct agent_state *state = NULL;
	struct cg_err err;
	int all = 0, r;
	size_t i;
	const struct cliopt opts[] = { CLIOPT_REQ("partner", &partner), CLIOPT_REQ("sign-key", &skp),
		CLIOPT_REQ("state", &statep), CLIOPT_REQ("out-dir", &dir), CLIOPT_LIST("in", &in_l),
		CLIOPT_FLAG("all", &all), CLIOPT_CLIENT_OPT(&co), CLIOPT_END };

	memset(&co, 0, sizeof(co));
	cg_err_clear(&err);
	if (cliopt_parse(argc, argv, agent_audience_usage, agent_audience_help, opts, NULL, &r))
		return r;
	if ((in_l.n > 0) == (co.gateway != NULL))
		return cli_usage(agent_audience_usage, "give --in SEALED... or --gateway (one of them)");
	if (co.gateway != NULL && (r = cli_client_check(&co, agent_audience_usage)) != 0)
		return r;
	if (in_l.n > 0 && all)
		return cli_usage(agent_audience_usage, "--all goes with --gateway");
	r = 1;
	if (cli_load_key(skp, KEYFILE_ED25519_SECRET, &sk) != 0)
		return 1;
	if (cli_mkdir(dir, 0700) != 0)
		goto out;
	if (agent_state_open(statep, &state, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	for (i = 0; i < in_l.n; i++) {
		unsigned char *buf = NULL;
		size_t len = 0;
		int e = agent_audience_read(inv[i], &buf, &len, &err);

		if (e == 0)
			e = agent_audience_open_one(buf, len, sk, partner, state, dir, ctx, &err);
		free(buf);
		if (e != 0) {
			cli_error("%s: %s", inv[i], err.msg);
			goto out;
		}
	}
	if (co.gateway != NULL && agent_audience_pull(&co, all, sk, partner, state, dir, ctx, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	r = 0;
out:
	agent_state_close(state);
	keyfile_free(sk);
	return r;
}
