/* cli_agent.c - crossgate agent */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sodium.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "agent/outcomes.h"
#include "agent/pack.h"
#include "agent/push.h"
#include "net/client.h"
#include "agent/revoke.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"

/* ---- agent ----------------------------------------------------------------- */

static const char agent_usage[] =
	"crossgate agent pack --policy FILE --partner ID --input CSV --out BATCH\n"
	"                     --match-key FILE --sign-key FILE --gateway-pub FILE [--strict] [--state FILE]\n"
	"                     [--receipts DIR] [--threads N]\n"
	"       crossgate agent revoke --policy FILE --partner ID --input CSV --out BATCH\n"
	"                     --match-key FILE --sign-key FILE --gateway-pub FILE [--state FILE]\n"
	"                     [--receipts DIR]\n"
	"       crossgate agent outcomes --policy FILE --partner ID --state FILE --experiment EXP\n"
	"                     --input CSV --out BATCH --match-key FILE --sign-key FILE --gateway-pub FILE\n"
	"       crossgate agent push " CLI_CLIENT_USAGE "\n"
	"                     [--retries N] (BATCH... | --input CSV --out BATCH and the pack options)\n"
	"       crossgate agent stats " CLI_CLIENT_USAGE "\n"
	"       crossgate agent recommend --policy FILE --partner ID --input CSV --aggregates CSV --out CSV\n"
	"       crossgate agent audience --partner ID --sign-key FILE --state FILE --out-dir DIR\n"
	"                     (--in SEALED... | --gateway ... [--all])";

static const char agent_help[] =
	"pack: read the partner's CSV, check every row against the partner's schema in\n"
	"the policy, normalize and pseudonymize identifiers with the match key, merge\n"
	"duplicate rows of one user (latest consent_at wins), seal each record, seal\n"
	"the batch key to the gateway, sign, and write one batch file.  Bad rows are\n"
	"reported as FILE:LINE:COLUMN (name): reason and skipped; with --strict any bad\n"
	"row fails the whole file and nothing is written.  Identifiers and local user\n"
	"ids never leave this machine.  With --state FILE the agent remembers, in FILE\n"
	"(kept here, 0600), which tokens and consent it sent for each user id, so that\n"
	"a later revocation can name users by their user id.  A pack reads the partner's\n"
	"part of FILE into memory once (about 250-350 bytes a user) and writes back\n"
	"what changed when the batch is written.\n"
	"A user whose latest row lacks 'match' gets no data record but a withdrawal,\n"
	"which makes the gateway erase the user: with --state only if the user id was\n"
	"sent before with 'match' (others are never tokenized); without --state for\n"
	"every such user with identifiers (the agent cannot know who was sent).  With\n"
	"--state, a user who keeps 'match' but lost another purpose also gets a\n"
	"narrowing withdrawal that erases the older, wider records.\n"
	"With --receipts DIR every withdrawal (and, for revoke, every user named by an\n"
	"identifier) gets a receipt, DIR/BATCHID-USERID.receipt (or -line-N), one line\n"
	"that fits a QR code: hand it to the user once 'crossgate receipt attach' has\n"
	"added the proof the gateway sends for the batch ('crossgate receipt prove');\n"
	"the user checks it offline with 'crossgate receipt verify'.  Never send\n"
	"receipts to the gateway.\n"
	"--threads N: check, tokenize and seal on N threads (default and 0: one per core); the batch is the same.\n"
	"\n"
	"revoke: write a signed revocation batch that makes the gateway erase users.\n"
	"The CSV's header names some of the partner's identifier columns (email,\n"
	"phone) and/or its user id column; each row names one user by identifier or,\n"
	"with --state, by a user id packed before.  Push it or ingest it like any\n"
	"batch.  A row that names nobody fails the whole file.\n"
	"\n"
	"outcomes: after a campaign, write a signed outcome batch for experiment EXP:\n"
	"what each user did.  The CSV's header is the partner's user id column,\n"
	"converted (0 or 1), value_cents (whole cents, 0 unless converted) and at (ISO\n"
	"8601).  Users are named by the user ids packed before with --state (their\n"
	"tokens come from the state; no identifier is read); a user id the state does\n"
	"not know, or that withdrew 'match', is skipped and counted.  Any bad row fails\n"
	"the whole file (FILE:LINE:COLUMN (name): reason) and nothing is written.\n"
	"\n"
	"push: send batch files to the gateway over mutual TLS (or, with --input, pack\n"
	"the CSV into --out first and push that).  The gateway answers only once a\n"
	"batch is committed; when the connection fails first, the push is retried\n"
	"with backoff (--retries, default 8), and a batch that an earlier attempt\n"
	"committed is answered 'duplicate': it is counted once, whatever happens.\n"
	"The gateway's certificate must chain to --ca and name the host of --gateway.\n"
	"\n"
	"stats: ask the gateway what it holds for this partner: how many records, and\n"
	"how many consent to each purpose.  Counts only: never which users, never\n"
	"whether they matched.\n"
	"\n"
	"recommend: next-best offers for the partner's own users from released DP\n"
	"statistics only (crossgate agent recommend --help).\n"
	"\n"
	"audience: open the audiences the gateway delivered to this partner into CSVs\n"
	"of its own user ids (crossgate agent audience --help).\n";

/* The policy and the keys every batch-writing command loads. */
struct agent_keys {
	struct policy *pol;
	struct keyfile_key *match, *sign, *gw;
};

/* 0, or -1 with the error printed (k is then freed by agent_keys_free all the same). */
static int
agent_keys_load(struct agent_keys *k, const char *policy, const char *mp, const char *sp, const char *gp)
{
	memset(k, 0, sizeof(*k));
	if (cli_load_policy(policy, &k->pol) != 0 || cli_load_key(mp, KEYFILE_MATCH, &k->match) != 0 ||
	    cli_load_key(sp, KEYFILE_ED25519_SECRET, &k->sign) != 0 || cli_load_key(gp, KEYFILE_X25519_PUBLIC, &k->gw) != 0)
		return -1;
	return 0;
}

static void
agent_keys_free(struct agent_keys *k)
{
	policy_free(k->pol);
	keyfile_free(k->match);
	keyfile_free(k->sign);
	keyfile_free(k->gw);
	memset(k, 0, sizeof(*k));
}

static int
agent_pack(struct pack_opts *o, const char *policy, const char *mp, const char *sp, const char *gp,
    struct cli_ctx *ctx)
{
	struct agent_keys k = { 0 };
	struct cg_err err;
	char hex[33];
	int r = 1;

	if ((o->receipts != NULL && cli_mkdir(o->receipts, 0700) != 0) || agent_keys_load(&k, policy, mp, sp, gp) != 0)
		goto out;
	o->pol = k.pol;
	o->match = k.match;
	o->sign = k.sign;
	o->gateway = k.gw;
	o->report = stderr;
	o->report_max = ctx->report_max ? ctx->report_max : 50;
	o->progress = ctx->out != NULL;
	cg_err_clear(&err);
	if (pack_csv(o, &ctx->pack, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->pack.bad_rows > o->report_max)
		fprintf(stderr, "crossgate: ... %llu bad rows in all (first %llu shown)\n",
		    (unsigned long long)ctx->pack.bad_rows, (unsigned long long)o->report_max);
	sodium_bin2hex(hex, sizeof(hex), ctx->pack.batch_id, sizeof(ctx->pack.batch_id));
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu rows read, %llu bad, %llu duplicate rows merged, %llu users without "
		    "match consent never sent, %llu withdrawals sent (%llu lost match, %llu narrowed), %llu records "
		    "packed into %s (batch %s)\n", o->input,
		    (unsigned long long)ctx->pack.rows, (unsigned long long)ctx->pack.bad_rows,
		    (unsigned long long)ctx->pack.duplicates,
		    (unsigned long long)(ctx->pack.no_match - ctx->pack.withdrawn),
		    (unsigned long long)(ctx->pack.withdrawn + ctx->pack.narrowed),
		    (unsigned long long)ctx->pack.withdrawn, (unsigned long long)ctx->pack.narrowed,
		    (unsigned long long)ctx->pack.packed, o->output, hex);
	if (ctx->out && o->receipts != NULL)
		fprintf(ctx->out, "%s: %llu receipts written to %s\n", o->input, (unsigned long long)ctx->pack.receipts,
		    o->receipts);
	r = 0;
out:
	agent_keys_free(&k);
	return r;
}

static int
agent_outcomes(const struct pack_opts *po, const char *experiment, const char *policy, const char *mp,
    const char *sp, const char *gp, struct cli_ctx *ctx)
{
	struct outcomes_opts o;
	struct outcomes_stats os;
	struct agent_keys k = { 0 };
	struct cg_err err;
	char hex[33];
	int r = 1;

	if (agent_keys_load(&k, policy, mp, sp, gp) != 0)
		goto out;
	memset(&o, 0, sizeof(o));
	o.pol = k.pol;
	o.partner_id = po->partner_id;
	o.experiment = experiment;
	o.input = po->input;
	o.output = po->output;
	o.state = po->state;
	o.match = k.match;
	o.sign = k.sign;
	o.gateway = k.gw;
	o.now = (int64_t)time(NULL);
	cg_err_clear(&err);
	if (outcomes_pack(&o, &os, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	sodium_bin2hex(hex, sizeof(hex), os.batch_id, sizeof(os.batch_id));
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu rows, %llu outcomes packed (%llu skipped: user ids never packed with "
		    "'match' in this state), outcome batch %s written to %s\n", o.input, (unsigned long long)os.rows,
		    (unsigned long long)os.packed, (unsigned long long)os.unknown, hex, o.output);
	r = 0;
out:
	agent_keys_free(&k);
	return r;
}

/* The options every batch-writing command needs: 0, or the usage status. */
static int
agent_batch_opts_check(const char *policy, const struct pack_opts *o, const char *mp, const char *sp, const char *gp)
{
	if (policy == NULL) return cli_missing(agent_usage, "--policy");
	if (o->partner_id == NULL) return cli_missing(agent_usage, "--partner");
	if (o->input == NULL) return cli_missing(agent_usage, "--input");
	if (o->output == NULL) return cli_missing(agent_usage, "--out");
	if (mp == NULL) return cli_missing(agent_usage, "--match-key");
	if (sp == NULL) return cli_missing(agent_usage, "--sign-key");
	if (gp == NULL) return cli_missing(agent_usage, "--gateway-pub");
	return 0;
}

static int
agent_revoke(const struct pack_opts *po, const char *policy, const char *mp, const char *sp, const char *gp,
    struct cli_ctx *ctx)
{
	struct revoke_opts o;
	struct revoke_stats rs;
	struct agent_keys k = { 0 };
	struct cg_err err;
	char hex[33];
	int r = 1;

	if ((po->receipts != NULL && cli_mkdir(po->receipts, 0700) != 0) || agent_keys_load(&k, policy, mp, sp, gp) != 0)
		goto out;
	memset(&o, 0, sizeof(o));
	o.pol = k.pol;
	o.partner_id = po->partner_id;
	o.input = po->input;
	o.output = po->output;
	o.match = k.match;
	o.sign = k.sign;
	o.gateway = k.gw;
	o.state = po->state;
	o.receipts = po->receipts;
	o.now = (int64_t)time(NULL);
	cg_err_clear(&err);
	if (revoke_pack(&o, &rs, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	sodium_bin2hex(hex, sizeof(hex), rs.batch_id, sizeof(rs.batch_id));
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu users to erase, revocation batch %s written to %s\n", o.input,
		    (unsigned long long)rs.users, hex, o.output);
	if (ctx->out && o.receipts != NULL)
		fprintf(ctx->out, "%s: %llu receipts written to %s (%llu users named by user id only have no "
		    "identifier to bind a receipt to)\n", o.input, (unsigned long long)rs.receipts, o.receipts,
		    (unsigned long long)rs.no_receipt);
	r = 0;
out:
	agent_keys_free(&k);
	return r;
}

static int
agent_stats(const struct client_opts *co, struct cli_ctx *ctx)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__StatsRequest sq = CROSSGATE__STATS_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct cg_err err;
	size_t i;

	cg_err_clear(&err);
	req.op_case = CROSSGATE__REQUEST__OP_STATS;
	req.stats = &sq;
	if (client_call(co, &req, CROSSGATE__RESPONSE__RESULT_STATS, "a stats request", NULL, &resp, &err) != 0) {
		cli_error("stats: %s", err.msg);
		return 1;
	}
	if (ctx->out) {
		fprintf(ctx->out, "partner %s: %llu records stored from %llu batches\n", resp->stats->partner,
		    (unsigned long long)resp->stats->records, (unsigned long long)resp->stats->batches);
		for (i = 0; i < resp->stats->n_purposes; i++)
			fprintf(ctx->out, "  %-12s %llu consent, %llu do not\n", resp->stats->purposes[i]->purpose,
			    (unsigned long long)resp->stats->purposes[i]->consenting,
			    (unsigned long long)(resp->stats->records - resp->stats->purposes[i]->consenting));
	}
	crossgate__response__free_unpacked(resp, NULL);
	return 0;
}

static int
agent_push_one(const struct push_opts *po, const char *path, struct cli_ctx *ctx)
{
	struct push_result res;
	struct cg_err err;
	char hex[33];

	cg_err_clear(&err);
	if (push_batch(po, path, &res, &err) != 0) {
		cli_error("push failed: %s", err.msg);
		ctx->push_attempts += res.attempts;
		return 1;
	}
	ctx->push_attempts += res.attempts;
	sodium_bin2hex(hex, sizeof(hex), res.batch_id, sizeof(res.batch_id));
	if (res.duplicate)
		ctx->push_duplicates++;
	else
		ctx->pushed_records += res.records;
	if (ctx->out)
		fprintf(ctx->out, "%s: %s: %llu records of partner %s (batch %s), %u attempt%s, %.2f s\n", path,
		    res.duplicate ? "duplicate: already committed, counted once" : "committed",
		    (unsigned long long)res.records, res.partner, hex, res.attempts, res.attempts == 1 ? "" : "s",
		    res.seconds);
	/* one line per acknowledged batch, as it happens: a script may watch them */
	if (ctx->out)
		fflush(ctx->out);
	return 0;
}

int
cmd_agent(int argc, char **argv, struct cli_ctx *ctx)
{
	struct pack_opts o;
	struct push_opts po;
	const char *policy = NULL, *mp = NULL, *sp = NULL, *gp = NULL, *experiment = NULL, *sub;
	int argi, i, r, push;
	/* Required options depend on the subcommand (pack, revoke, push, stats), checked after it is known. */
	const struct cliopt opts[] = { CLIOPT_STR("policy", &policy), CLIOPT_STR("partner", &o.partner_id),
		CLIOPT_STR("input", &o.input), CLIOPT_STR("out", &o.output), CLIOPT_STR("match-key", &mp),
		CLIOPT_STR("sign-key", &sp), CLIOPT_STR("gateway-pub", &gp), CLIOPT_FLAG("strict", &o.strict),
		CLIOPT_CLIENT_OPT(&po.client), CLIOPT_UINT("retries", &po.retries, 0, 100), CLIOPT_STR("state", &o.state),
		CLIOPT_STR("receipts", &o.receipts), CLIOPT_UINT("threads", &o.threads, 0, 256),
		CLIOPT_STR("experiment", &experiment), CLIOPT_END };

	if (argc >= 2 && strcmp(argv[1], "recommend") == 0)
		return cmd_agent_recommend(argc - 1, argv + 1, ctx);
	if (argc >= 2 && strcmp(argv[1], "audience") == 0)
		return cmd_agent_audience(argc - 1, argv + 1, ctx);
	memset(&o, 0, sizeof(o));
	push_opts_default(&po);
	if (cliopt_parse(argc, argv, agent_usage, agent_help, opts, &argi, &r))
		return r;
	if (argi >= argc || (strcmp(argv[argi], "pack") != 0 && strcmp(argv[argi], "push") != 0 &&
	    strcmp(argv[argi], "revoke") != 0 && strcmp(argv[argi], "stats") != 0 &&
	    strcmp(argv[argi], "outcomes") != 0))
		return cli_usage(agent_usage, "unknown or missing agent command (pack, revoke, outcomes, push, stats)");
	sub = argv[argi];
	if (strcmp(sub, "stats") == 0) {
		if (argi + 1 != argc)
			return cli_usage(agent_usage, "unexpected argument");
		if ((r = cli_client_check(&po.client, agent_usage)) != 0)
			return r;
		return agent_stats(&po.client, ctx);
	}
	if (strcmp(sub, "revoke") == 0 || strcmp(sub, "outcomes") == 0) {
		if (argi + 1 != argc)
			return cli_usage(agent_usage, "unexpected argument");
		if ((r = agent_batch_opts_check(policy, &o, mp, sp, gp)) != 0)
			return r;
		if (sub[0] == 'r')
			return agent_revoke(&o, policy, mp, sp, gp, ctx);
		if (o.state == NULL) return cli_missing(agent_usage, "--state");
		if (experiment == NULL) return cli_missing(agent_usage, "--experiment");
		return agent_outcomes(&o, experiment, policy, mp, sp, gp, ctx);
	}
	push = strcmp(sub, "push") == 0;
	if (push) {
		if ((r = cli_client_check(&po.client, agent_usage)) != 0)
			return r;
		if (o.input == NULL && argi + 1 >= argc)
			return cli_usage(agent_usage, "nothing to push: give BATCH files or --input CSV");
		if (o.input != NULL && argi + 1 < argc)
			return cli_usage(agent_usage, "give BATCH files or --input CSV, not both");
		po.log = stderr;
	} else if (argi + 1 != argc)
		return cli_usage(agent_usage, "unexpected argument");
	if (!push || o.input != NULL) {
		if ((r = agent_batch_opts_check(policy, &o, mp, sp, gp)) != 0)
			return r;
		if (agent_pack(&o, policy, mp, sp, gp, ctx) != 0)
			return 1;
		if (!push)
			return 0;
		return agent_push_one(&po, o.output, ctx);
	}
	r = 0;
	for (i = argi + 1; i < argc; i++)
		if (agent_push_one(&po, argv[i], ctx) != 0)
			r = 1;
	return r;
}
