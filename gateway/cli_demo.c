/*
 * cli_demo.c - `crossgate demo`: the whole file pipeline on synthetic data.
 *
 * It runs the same commands a user would (the cmd_* functions of the CLI,
 * in-process), keeps every input and output under one directory, and writes
 * steps.sh there with the equivalent command lines, so that each step can be
 * rerun by hand.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "agent/synth.h"
#include "crypto/keyfile.h"
#include "gateway/cli.h"

static const unsigned char demo_policy_template[] = {
#include "example_policy.inc"
	0
};

#define DEMO_MARKER ".crossgate-demo"

static const char demo_usage[] = "crossgate demo [--dir DIR] [--users N] [--seed N] [--json]";

static const char demo_help[] =
	"Generate realistic synthetic data for the paid-knowledge platform K and the\n"
	"game-streaming platform G (messy identifiers, missing consent, duplicates,\n"
	"a few malformed rows), then generate keys and a policy, run both agents,\n"
	"ingest, export, and verify the audit log.  Everything stays under DIR\n"
	"(default ./demo): data/ (inputs and the generator's truth.json), keys/,\n"
	"policy.yaml, batches/, gateway.db, out/export.csv, and steps.sh with each\n"
	"step as a command line.  --users N people per platform (default 50000).\n"
	"--json prints one JSON summary object instead of progress lines.\n";

struct demo_paths {
	char dir[1024], data[1100], keys[1100], kgw[1200], kk[1200], kg[1200], match[1200], policy[1100];
	char batches[1100], kbatch[1200], gbatch[1200], db[1100], out[1100], export[1200];
	char kcsv[1200], gcsv[1200], steps[1100];
};

static int
demo_mkdir(const char *d)
{
	if (mkdir(d, 0700) != 0 && errno != EEXIST) {
		cli_error("cannot create %s: %s", d, strerror(errno));
		return -1;
	}
	return 0;
}

/* Run one CLI command in-process and add its command line to steps.sh. */
static int
demo_run(FILE *steps, struct cli_ctx *ctx, int (*fn)(int, char **, struct cli_ctx *), char **argv)
{
	int argc = 0, i;

	while (argv[argc] != NULL)
		argc++;
	if (steps != NULL) {
		fputs("crossgate", steps);
		for (i = 0; i < argc; i++)
			fprintf(steps, " '%s'", argv[i]);
		fputc('\n', steps);
	}
	if (ctx->out != NULL) {
		fprintf(ctx->out, "\n$ crossgate");
		for (i = 0; i < argc; i++)
			fprintf(ctx->out, " %s", argv[i]);
		fputc('\n', ctx->out);
	}
	return fn(argc, argv, ctx);
}

/* The example policy with the freshly generated partner keys pasted in. */
static int
demo_write_policy(const struct demo_paths *p)
{
	const char *tmpl = (const char *)demo_policy_template, *at = tmpl, *q;
	const char *partners[2] = { p->kk, p->kg };
	struct keyfile_key *pub = NULL;
	struct cg_err err;
	char path[1300], line[KEYFILE_LINE_MAX];
	FILE *f;
	int i, r = -1;

	if ((f = fopen(p->policy, "w")) == NULL) {
		cli_error("cannot write %s: %s", p->policy, strerror(errno));
		return -1;
	}
	fputs("# Written by 'crossgate demo' from policy/example.yaml with this run's partner keys.\n", f);
	for (i = 0; i < 2; i++) {
		cg_err_clear(&err);
		if ((q = strstr(at, "signing_key: \"")) == NULL) {
			cli_error("policy template has no signing_key for partner %d", i + 1);
			goto out;
		}
		q += strlen("signing_key: \"");
		fwrite(at, 1, (size_t)(q - at), f);
		snprintf(path, sizeof(path), "%s/sign.pub", partners[i]);
		if (keyfile_load(path, KEYFILE_ED25519_PUBLIC, &pub, &err) != 0 ||
		    keyfile_public_line(pub, line, sizeof(line)) != 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		keyfile_free(pub);
		pub = NULL;
		fputs(line, f);
		if ((at = strchr(q, '"')) == NULL) {
			cli_error("policy template: unterminated signing_key");
			goto out;
		}
	}
	fputs(at, f);
	r = 0;
out:
	keyfile_free(pub);
	if (fclose(f) != 0 && r == 0) {
		cli_error("cannot write %s: %s", p->policy, strerror(errno));
		r = -1;
	}
	return r;
}

/* Only ever clear a directory that an earlier demo made. */
static int
demo_prepare_dir(const struct demo_paths *p)
{
	char marker[1200], path[1300];
	const char *old[] = { "gateway.db", "gateway.db-wal", "gateway.db-shm", "batches/k.batch",
		"batches/g.batch", "out/export.csv", NULL };
	struct stat sb;
	int i;

	snprintf(marker, sizeof(marker), "%s/%s", p->dir, DEMO_MARKER);
	if (stat(p->dir, &sb) == 0) {
		if (stat(marker, &sb) != 0) {
			if (rmdir(p->dir) != 0 && errno != ENOENT) {
				cli_error("%s exists and was not made by 'crossgate demo'; choose another --dir",
				    p->dir);
				return -1;
			}
		} else {
			for (i = 0; old[i] != NULL; i++) {
				snprintf(path, sizeof(path), "%s/%s", p->dir, old[i]);
				if (unlink(path) != 0 && errno != ENOENT) {
					cli_error("cannot remove %s: %s", path, strerror(errno));
					return -1;
				}
			}
		}
	}
	if (demo_mkdir(p->dir) != 0)
		return -1;
	{
		FILE *f = fopen(marker, "w");
		if (f == NULL) {
			cli_error("cannot write %s: %s", marker, strerror(errno));
			return -1;
		}
		fputs("made by crossgate demo\n", f);
		fclose(f);
	}
	if (demo_mkdir(p->data) || demo_mkdir(p->keys) || demo_mkdir(p->batches) || demo_mkdir(p->out))
		return -1;
	return 0;
}

static void
demo_paths_init(struct demo_paths *p, const char *dir)
{
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	snprintf(p->data, sizeof(p->data), "%s/data", dir);
	snprintf(p->keys, sizeof(p->keys), "%s/keys", dir);
	snprintf(p->kgw, sizeof(p->kgw), "%s/gateway", p->keys);
	snprintf(p->kk, sizeof(p->kk), "%s/k", p->keys);
	snprintf(p->kg, sizeof(p->kg), "%s/g", p->keys);
	snprintf(p->match, sizeof(p->match), "%s/match.key", p->keys);
	snprintf(p->policy, sizeof(p->policy), "%s/policy.yaml", dir);
	snprintf(p->batches, sizeof(p->batches), "%s/batches", dir);
	snprintf(p->kbatch, sizeof(p->kbatch), "%s/k.batch", p->batches);
	snprintf(p->gbatch, sizeof(p->gbatch), "%s/g.batch", p->batches);
	snprintf(p->db, sizeof(p->db), "%s/gateway.db", dir);
	snprintf(p->out, sizeof(p->out), "%s/out", dir);
	snprintf(p->export, sizeof(p->export), "%s/export.csv", p->out);
	snprintf(p->kcsv, sizeof(p->kcsv), "%s/k_users.csv", p->data);
	snprintf(p->gcsv, sizeof(p->gcsv), "%s/g_viewers.csv", p->data);
	snprintf(p->steps, sizeof(p->steps), "%s/steps.sh", dir);
}

int
cmd_demo(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' }, { "users", required_argument, NULL, 'u' },
		{ "seed", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	struct demo_paths p;
	struct synth_opts so;
	struct synth_truth truth;
	struct cli_ctx sub;
	struct pack_stats kstats, gstats;
	struct cg_err err;
	const char *dir = "demo";
	FILE *steps = NULL;
	char path[1300], *end, kpath[1300], gpath[1300], gwpub[1300], gwsign[1300];
	int c, json = 0, r = 1;

	synth_opts_default(&so);
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'u':
			errno = 0;
			so.users = strtoull(optarg, &end, 10);
			if (errno || *end || so.users < 100 || so.users > 20000000) {
				cli_error("--users must be a number from 100 to 20000000");
				return 2;
			}
			break;
		case 's':
			errno = 0;
			so.seed = strtoull(optarg, &end, 10);
			if (errno || *end) {
				cli_error("--seed must be a number");
				return 2;
			}
			break;
		case 'j': json = 1; break;
		case 'h': printf("usage: %s\n\n%s", demo_usage, demo_help); return 0;
		default: fprintf(stderr, "usage: %s\n", demo_usage); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "crossgate: unexpected argument '%s'\nusage: %s\n", argv[optind], demo_usage);
		return 2;
	}
	demo_paths_init(&p, dir);
	if (demo_prepare_dir(&p) != 0)
		return 1;
	memset(&sub, 0, sizeof(sub));
	sub.out = json ? NULL : ctx->out;
	sub.report_max = 5;   /* the demo shows a few bad rows; `agent pack` by hand shows up to 50 */

	if (sub.out)
		fprintf(sub.out, "generating %llu users per platform into %s ...\n", (unsigned long long)so.users,
		    p.data);
	cg_err_clear(&err);
	if (synth_write(p.data, &so, &truth, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if ((steps = fopen(p.steps, "w")) == NULL) {
		cli_error("cannot write %s: %s", p.steps, strerror(errno));
		goto out;
	}
	fprintf(steps, "#!/bin/sh\n# The demo's steps, as command lines (run from the directory the demo ran in).\n"
	    "set -e\n");
	{
		char *kg_gw[] = { "keygen", "gateway", "--dir", p.kgw, "--db", p.db, "--force", NULL };
		char *kg_k[] = { "keygen", "partner", "--id", "k", "--dir", p.kk, "--force", NULL };
		char *kg_g[] = { "keygen", "partner", "--id", "g", "--dir", p.kg, "--force", NULL };
		char *kg_m[] = { "keygen", "match", "--out", p.match, "--force", NULL };
		if (demo_run(steps, &sub, cmd_keygen, kg_gw) || demo_run(steps, &sub, cmd_keygen, kg_k) ||
		    demo_run(steps, &sub, cmd_keygen, kg_g) || demo_run(steps, &sub, cmd_keygen, kg_m))
			goto out;
	}
	if (demo_write_policy(&p) != 0)
		goto out;
	fprintf(steps, "# policy.yaml: policy/example.yaml with the partners' sign.pub lines pasted in\n");
	{
		char *pc[] = { "policy", "check", p.policy, NULL };
		if (demo_run(steps, &sub, cmd_policy, pc))
			goto out;
	}
	snprintf(kpath, sizeof(kpath), "%s/sign.key", p.kk);
	snprintf(gpath, sizeof(gpath), "%s/sign.key", p.kg);
	snprintf(gwpub, sizeof(gwpub), "%s/enc.pub", p.kgw);
	{
		char *pk[] = { "agent", "pack", "--policy", p.policy, "--partner", "k", "--input", p.kcsv, "--out",
			p.kbatch, "--match-key", p.match, "--sign-key", kpath, "--gateway-pub", gwpub, NULL };
		char *pg[] = { "agent", "pack", "--policy", p.policy, "--partner", "g", "--input", p.gcsv, "--out",
			p.gbatch, "--match-key", p.match, "--sign-key", gpath, "--gateway-pub", gwpub, NULL };
		if (demo_run(steps, &sub, cmd_agent, pk))
			goto out;
		kstats = sub.pack;
		if (demo_run(steps, &sub, cmd_agent, pg))
			goto out;
		gstats = sub.pack;
	}
	{
		char *in[] = { "gateway", "ingest", "--db", p.db, "--policy", p.policy, "--keys", p.kgw, p.kbatch,
			p.gbatch, NULL };
		char *ex[] = { "export", "--db", p.db, "--policy", p.policy, "--keys", p.kgw, "--purpose",
			"analytics", "--out", p.export, NULL };
		if (demo_run(steps, &sub, cmd_gateway, in) || demo_run(steps, &sub, cmd_export, ex))
			goto out;
	}
	snprintf(path, sizeof(path), "%s/sign.pub", p.kgw);
	snprintf(gwsign, sizeof(gwsign), "%s/sign.key", p.kgw);
	{
		char *av[] = { "audit", "verify", "--db", p.db, "--pub", path, "--record-key", gwsign, NULL };
		(void)demo_run(steps, &sub, cmd_audit, av);
	}

	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		    "s:I, s:b, s:s, s:{s:I, s:I}}",
		    "dir", p.dir,
		    "k_rows", (json_int_t)kstats.rows, "g_rows", (json_int_t)gstats.rows,
		    "rejected_rows", (json_int_t)(kstats.bad_rows + gstats.bad_rows),
		    "duplicate_rows", (json_int_t)(kstats.duplicates + gstats.duplicates),
		    "no_match_consent", (json_int_t)(kstats.no_match + gstats.no_match),
		    "k_packed", (json_int_t)kstats.packed, "g_packed", (json_int_t)gstats.packed,
		    "ingested_records", (json_int_t)sub.ingested_records,
		    "matched_subjects", (json_int_t)sub.export.matched,
		    "left_out_for_consent", (json_int_t)sub.export.no_consent,
		    "ambiguous", (json_int_t)sub.export.ambiguous,
		    "exported_rows", (json_int_t)sub.export.exported,
		    "suppressed_rows", (json_int_t)sub.export.suppressed,
		    "k", (json_int_t)sub.export.k,
		    "audit_events", (json_int_t)sub.audit.events,
		    "audit_verified", sub.audit_ok,
		    "export", p.export,
		    "truth", "matched", (json_int_t)truth.matched,
		    "exported_before_suppression", (json_int_t)truth.exported_before_suppression);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s == NULL) {
			cli_error("cannot format the JSON summary");
			json_decref(o);
			goto out;
		}
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else if (ctx->out) {
		fprintf(ctx->out,
		    "\n== crossgate demo summary (%s) ==\n"
		    "rows read           K %llu, G %llu\n"
		    "rows rejected       %llu (the first few per file reported above with file:line:column)\n"
		    "duplicates merged   %llu\n"
		    "no match consent    %llu users never left their partner\n"
		    "records ingested    %llu\n"
		    "matched subjects    %llu (generator's truth: %llu)\n"
		    "left out, consent   %llu\n"
		    "exported rows       %llu (suppressed below k=%u: %llu; truth before suppression: %llu)\n"
		    "audit log           %llu events, %s\n"
		    "export              %s\n"
		    "every step by hand  %s\n",
		    p.dir, (unsigned long long)kstats.rows, (unsigned long long)gstats.rows,
		    (unsigned long long)(kstats.bad_rows + gstats.bad_rows),
		    (unsigned long long)(kstats.duplicates + gstats.duplicates),
		    (unsigned long long)(kstats.no_match + gstats.no_match),
		    (unsigned long long)sub.ingested_records, (unsigned long long)sub.export.matched,
		    (unsigned long long)truth.matched, (unsigned long long)sub.export.no_consent,
		    (unsigned long long)sub.export.exported, sub.export.k, (unsigned long long)sub.export.suppressed,
		    (unsigned long long)truth.exported_before_suppression, (unsigned long long)sub.audit.events,
		    sub.audit_ok ? "verified" : "VERIFICATION FAILED", p.export, p.steps);
	}
	r = sub.audit_ok ? 0 : 1;
out:
	if (steps != NULL)
		fclose(steps);
	return r;
}
