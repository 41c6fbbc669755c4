/*
 * cli_demo.c - `crossgate demo`: the whole file pipeline on synthetic data.
 *
 * It runs the same commands a user would (the cmd_* functions of the CLI,
 * in-process), keeps every input and output under one directory, and writes
 * steps.sh there with the equivalent command lines, so that each step can be
 * rerun by hand.
 *
 * By default the pipeline runs over the network: certificates are made
 * (`pki init`), the gateway serves on 127.0.0.1 (an ephemeral port unless
 * --port) in a child process, privilege-separated as `gateway serve` is (a
 * monitor with the keys and its sandboxed worker), both agents pack and push,
 * the analyst takes its DP releases (affinity counts, ridge and k-means
 * statistics and the export: rho 0.9 in all), builds the report from the DP
 * releases alone, the
 * auditor fetches the audit log and verifies it, and the
 * gateway is stopped with SIGTERM.  With 4,000 users or more per platform
 * the marketing loop follows (demo_marketing: an audience, an experiment, a
 * simulated campaign with a planted lift, K's outcomes, the DP lift), and the
 * report gains its activation and experiment section.  --offline runs the file pipeline instead
 * (pack, ingest, export, verify on one machine).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "gateway/budget.h"
#include "gateway/join.h"

#include "synth/synth.h"
#include "base/outfile.h"
#include "crypto/keyfile.h"
#include "cli/cli.h"
#include "cli/cliopt.h"

static const unsigned char demo_policy_template[] = {
#include "example_policy.inc"
	0
};

#define DEMO_MARKER ".crossgate-demo"

static const char demo_usage[] = "crossgate demo [--dir DIR] [--users N] [--seed N] [--json] [--offline | --port N | --data-only]";

static const char demo_help[] =
	"Generate realistic synthetic data for the paid-knowledge platform K and the\n"
	"game-streaming platform G (messy identifiers, missing consent, duplicates,\n"
	"a few malformed rows), then generate keys, certificates and a policy, start\n"
	"the gateway on 127.0.0.1 (mutual TLS; an ephemeral port unless --port N) as\n"
	"`gateway serve` runs it, a monitor holding the keys and a sandboxed worker,\n"
	"let both agents pack and push, the analyst take its DP releases (affinity\n"
	"counts, ridge and k-means statistics, the export: rho 0.9 in all) and build\n"
	"out/report.html and out/report.json from the DP releases alone, the auditor\n"
	"fetch and verify the audit log, and stop the gateway with SIGTERM.\n"
	"With --users 4000 or more, the marketing loop follows: an amended policy\n"
	"(policy-marketing.yaml), an audience, an experiment whose campaign K runs,\n"
	"the campaign simulated from the seed (K's users convert at 10%, 15% if\n"
	"reached), K's outcome batch, and the DP lift (out/audience.json,\n"
	"out/lift.json), shown in the report's activation and experiment section.\n"
	"--offline: the file pipeline instead (pack, ingest, export, verify locally).\n"
	"Everything stays under DIR (default ./demo): data/ (inputs and the\n"
	"generator's truth.json), keys/, pki/ (CA and certificates), policy.yaml,\n"
	"batches/, gateway.db, gateway.log (the server's JSON log), gateway.pid (the\n"
	"monitor's pid while it runs), audit-copy.db\n"
	"(the auditor's copy), out/ (the releases and the report), and steps.sh with each step as a\n"
	"command line.  --users N people per platform (default 50000).\n"
	"--json prints one JSON summary object instead of progress lines.\n"
	"--data-only: stop once the data, the keys and the policy are written\n"
	"(nothing packed, ingested or released; steps.sh has the key commands):\n"
	"the inputs for running the steps by hand, as make bench-scale does.\n";

/* ---- the gateway in a child process ---- */

struct demo_gateway {
	pid_t pid;   /* the monitor's */
	int port;
};

/*
 * Bind 127.0.0.1:port here (so the port is known), then serve it in the
 * background exactly as `gateway serve` does (cli_gateway_serve_start): a
 * monitor with the keys, the demo's child, and its sandboxed worker; the
 * JSON log appended to log_path, the monitor's pid in pid_path.
 */
static int
demo_gateway_start(const char *policy_path, const char *keys, const char *db, const char *cert, const char *key,
    const char *log_path, const char *pid_path, int port, struct demo_gateway *g)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char why[CG_ERR_MSG_MAX + 1], addr[32];
	int fd, logfd = -1, one = 1, r = -1;

	g->pid = -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
		cli_error("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
		goto out;
	}
	g->port = ntohs(sin.sin_port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", g->port);
	if ((logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		cli_error("cannot open %s: %s", log_path, strerror(errno));
		goto out;
	}
	{
		/* listen: what the log says it listens on, fd being that socket; not detached: the demo stops it,
		 * and if the demo dies it gets SIGTERM */
		const struct cli_gateway_serve sa = { .db = db, .policy = policy_path, .keys = keys, .cert = cert,
			.key = key, .pid_file = pid_path, .listen = addr, .listen_fd = fd, .log_fd = logfd, .detach = 0 };

		r = cli_gateway_serve_start(&sa, &g->pid, why, sizeof(why));
	}
	if (r != 0) {
		cli_error("the gateway did not start: %s (see %s)", why, log_path);
	}
out:
	if (logfd >= 0)
		close(logfd);
	if (fd >= 0)
		close(fd);
	return r;
}

/* SIGTERM and wait: the gateway finishes what is in flight, checkpoints and exits 0. */
static int
demo_gateway_stop(struct demo_gateway *g)
{
	int st;

	if (g->pid <= 0)
		return -1;
	kill(g->pid, SIGTERM);
	while (waitpid(g->pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	g->pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/*
 * The analyst's DP releases, which the report is built from (no row): course
 * category x game category counts for the affinity map, the ridge statistics
 * of the content mix and the DP k-means of the segments.  With the synthetic
 * rows (the policy's export_rho, 0.1) they spend rho 0.9 of the analyst's
 * budget on the dataset (most of it on the ridge, whose coefficients need it
 * most; README "DP model statistics"), so that with the marketing loop's 0.1
 * every release of the demo together spends rho 1 per analyst and dataset.
 * The affinity's counts are large at the demo's sizes: rho 0.05 leaves the
 * planted lift plain.
 */
#define DEMO_AFFINITY_KEYS "k_top_course_category,g_top_game_category"
#define DEMO_AFFINITY_RHO "0.05"
#define DEMO_RIDGE_RHO "0.6"
#define DEMO_RIDGE_X "k_course_spend_cents,k_learning_minutes,g_watch_minutes"
#define DEMO_RIDGE_Y "k_conversion_value_cents"
#define DEMO_KMEANS_RHO "0.15"
#define DEMO_KMEANS_COLS "k_learning_minutes,g_watch_minutes,g_streams_followed"

/*
 * The operator's own view of the join (matched, consenting, ambiguous), read
 * here from the store with the gateway's keys after the run.  Exact counts:
 * the operator's, shown by the demo to compare with the generator's truth;
 * no analyst-facing output (the release, its sidecar, its audit event)
 * carries them.
 */
struct demo_join {
	uint64_t matched, consenting, no_consent, ambiguous;
};

static int
demo_join_count(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err)
{
	(void)ref;
	(void)pl;
	(void)err;
	((struct demo_join *)ctx)->consenting++;
	return 0;
}

static void
demo_join_counts(const char *db_path, const char *policy_path, const char *keys, struct demo_join *dj)
{
	struct policy *pol = NULL;
	struct store *st = NULL;
	struct cli_gw_keys k = { 0 };
	struct join j;
	struct cg_err err;

	memset(&j, 0, sizeof(j));
	cg_err_clear(&err);
	if (policy_load(policy_path, &pol, NULL, &err) != 0 || cli_load_gateway_keys(keys, &k) != 0 ||
	    store_open(db_path, 0, &st, &err) != 0 || join_run(st, pol, NULL, NULL, &j, &err) != 0 ||
	    join_each(st, k.storage, &j, policy_purpose_bit(pol, "analytics"), 0, demo_join_count, dj, &dj->no_consent,
	    &err) != 0)
		cli_error("%s: cannot count the join: %s", db_path, err.msg);
	else {
		dj->matched = j.matched;
		dj->ambiguous = j.ambiguous;
	}
	join_free(&j);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
}

struct demo_paths {
	char dir[1024], data[1100], keys[1100], kgw[1200], kk[1200], kg[1200], match[1200], policy[1100];
	char batches[1100], kbatch[1200], gbatch[1200], db[1100], out[1100], export[1200], affinity[1200];
	char ridge[1200], kmeans[1200], report_json[1200];
	char kcsv[1200], gcsv[1200], steps[1100];
	char pki[1100], ca[1200], gwcert[1200], gwkey[1200], log[1100], pid[1100], copy[1100];
	/* the marketing loop (issue 14): K's agent state, the amended policy, the campaign's files */
	char kstate[1100], mpolicy[1100], deliveries[1200], kaud[1200], outcomes[1200], obatch[1200];
	char audience_json[1200], lift[1200];
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

/*
 * ---- the marketing loop (issue 14): audience, experiment, campaign, outcomes, lift ----
 *
 * After the analytics releases, the partners amend the agreement with a
 * marketing section (policy-marketing.yaml: K may receive audiences, both
 * are sources), and the analyst, granted marketing in the example policy,
 * defines an audience, splits it into an experiment whose campaign K runs,
 * and measures the lift of the campaign from the outcomes K pushes.  The
 * analyst's spend on this: the audience's noisy size (audience_rho 0.0498)
 * and its refusal test ((1/50)^2 / 2 = 0.0002), the lift (query_rho 0.05):
 * rho 0.1, on the same ledger as the analytics releases' rho 0.9, rho 1 in
 * all (the example policy gives this analyst budget_rho 2).
 */
#define DEMO_MKT_USERS_MIN 4000            /* below, the arms would be too small to measure (min_audience) */
#define DEMO_MKT_POLICY "marketing:\n  min_audience: 100\n  receivers: [k]\n  sources: [k, g]\n  audience_rho: 0.0498\n"
#define DEMO_AUDIENCE "reachable"
#define DEMO_AUDIENCE_RULE "g_watch_minutes >= 0"
#define DEMO_EXPERIMENT "spring"
#define DEMO_RATE_CONTROL 0.10             /* a K user's conversion rate without the campaign */
#define DEMO_RATE_TREATED 0.15             /* with it: the planted lift, +5 points */

/* The amended policy: the demo's policy and a marketing section. */
static int
demo_write_mpolicy(const struct demo_paths *p)
{
	struct outfile of = { 0 };
	struct cg_err err;
	char buf[8192];
	size_t n;
	FILE *in;
	int r = -1;

	cg_err_clear(&err);
	if ((in = fopen(p->policy, "r")) == NULL) {
		cli_error("cannot read %s: %s", p->policy, strerror(errno));
		return -1;
	}
	if (outfile_open(&of, p->mpolicy, 0600, &err) != 0)
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, of.f);
	fputs("\n# Amended by 'crossgate demo': K may receive audiences; both partners are sources.\n" DEMO_MKT_POLICY,
	    of.f);
	if (ferror(in) || outfile_commit(&of, &err) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		cli_error("%s: %s", p->mpolicy, err.msg[0] ? err.msg : "cannot write");
	outfile_abort(&of);
	fclose(in);
	return r;
}

/* The one file in dir whose name starts with prefix (the delivery `audience take` wrote). */
static int
demo_find(const char *dir, const char *prefix, char *out, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(out, size, "%s/%s", dir, e->d_name);
			found++;
		}
	closedir(d);
	return found == 1 ? 0 : -1;
}

static int
demo_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The campaign, simulated from the seed: every K user converts with
 * DEMO_RATE_TREATED if the campaign reached it (it is in the experiment's
 * delivery, K's own treatment list) and DEMO_RATE_CONTROL otherwise; a
 * converter spends 5.00 to 30.00.  K reports every user it knows (its
 * agent's state): it cannot tell control users from anyone else, and the
 * gateway counts only the experiment's subjects.  Deterministic: a BLAKE2b
 * of the seed and the user id decides.
 */
static int
demo_simulate(const struct demo_paths *p, uint64_t seed)
{
	char treated_path[1300], line[512], **treated = NULL, ts[32];
	size_t nt = 0, cap = 0;
	struct outfile of = { 0 };
	struct cg_err err;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	unsigned char key[32], h[16];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;
	int r = -1, i;

	cg_err_clear(&err);
	snprintf(treated_path, sizeof(treated_path), "%s/%s.csv", p->kaud, DEMO_EXPERIMENT);
	if ((f = fopen(treated_path, "r")) == NULL) {
		cli_error("cannot read %s: %s", treated_path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "user_id") == 0 || line[0] == '\0')
			continue;
		if (nt == cap) {
			char **nb = realloc(treated, (cap = cap ? 2 * cap : 1024) * sizeof(*nb));
			if (nb == NULL)
				break;
			treated = nb;
		}
		if ((treated[nt] = strdup(line)) == NULL)
			break;
		nt++;
	}
	fclose(f);
	qsort(treated, nt, sizeof(*treated), demo_cmp_str);
	for (i = 0; i < 8; i++)
		key[i] = (unsigned char)(seed >> (8 * i));
	memcpy(key + 8, "crossgate demo campaign v1\0\0\0\0\0\0", 24);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (sqlite3_open_v2(p->kstate, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT DISTINCT user_id FROM sent WHERE partner = 'k' ORDER BY user_id", -1, &q,
	    NULL) != SQLITE_OK) {
		cli_error("%s: %s", p->kstate, db ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	if (outfile_open(&of, p->outcomes, 0600, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	fputs("user_id,converted,value_cents,at\n", of.f);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(q, 0);
		int in = bsearch(&u, treated, nt, sizeof(*treated), demo_cmp_str) != NULL;
		uint64_t x = 0, y = 0;

		crypto_generichash(h, sizeof(h), (const unsigned char *)u, strlen(u), key, sizeof(key));
		for (i = 0; i < 8; i++) {
			x = x << 8 | h[i];
			y = y << 8 | h[8 + i];
		}
		if ((double)(x >> 11) / 9007199254740992.0 < (in ? DEMO_RATE_TREATED : DEMO_RATE_CONTROL))
			fprintf(of.f, "%s,1,%llu,%s\n", u, (unsigned long long)(500 + y % 2501), ts);
		else
			fprintf(of.f, "%s,0,0,%s\n", u, ts);
	}
	if (outfile_commit(&of, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	r = 0;
out:
	outfile_abort(&of);
	sqlite3_finalize(q);
	sqlite3_close(db);
	while (nt > 0)
		free(treated[--nt]);
	free(treated);
	return r;
}

/* The loop's commands, offline against the gateway's store (the gateway is stopped). */
static int
demo_marketing(FILE *steps, struct cli_ctx *sub, const struct demo_paths *p, uint64_t seed, const char *kpath,
    const char *gwpub)
{
	char sealed[1600];
	char *ac[] = { "audience", "create", "--db", (char *)p->db, "--policy", (char *)p->mpolicy, "--keys",
		(char *)p->kgw, "--name", DEMO_AUDIENCE, "--rule", DEMO_AUDIENCE_RULE, "--out", (char *)p->audience_json,
		NULL };
	char *ec[] = { "experiment", "create", "--db", (char *)p->db, "--policy", (char *)p->mpolicy, "--keys",
		(char *)p->kgw, "--audience", DEMO_AUDIENCE, "--name", DEMO_EXPERIMENT, "--partner", "k", NULL };
	char *tk[] = { "audience", "take", "--db", (char *)p->db, "--policy", (char *)p->mpolicy, "--keys",
		(char *)p->kgw, "--partner", "k", "--out-dir", (char *)p->deliveries, NULL };
	char *ag[] = { "agent", "audience", "--partner", "k", "--sign-key", (char *)kpath, "--state", (char *)p->kstate,
		"--out-dir", (char *)p->kaud, "--in", sealed, NULL };
	char *oc[] = { "agent", "outcomes", "--policy", (char *)p->mpolicy, "--partner", "k", "--state",
		(char *)p->kstate, "--experiment", DEMO_EXPERIMENT, "--input", (char *)p->outcomes, "--out",
		(char *)p->obatch, "--match-key", (char *)p->match, "--sign-key", (char *)kpath, "--gateway-pub",
		(char *)gwpub, NULL };
	char *in[] = { "gateway", "ingest", "--db", (char *)p->db, "--policy", (char *)p->mpolicy, "--keys",
		(char *)p->kgw, (char *)p->obatch, NULL };
	char *lf[] = { "experiment", "lift", "--db", (char *)p->db, "--policy", (char *)p->mpolicy, "--keys",
		(char *)p->kgw, "--name", DEMO_EXPERIMENT, "--out", (char *)p->lift, NULL };
	char prefix[64];

	if (demo_write_mpolicy(p) != 0 || demo_mkdir(p->deliveries) != 0 || demo_mkdir(p->kaud) != 0)
		return -1;
	{
		/* an earlier run's deliveries (the directory is the demo's own: demo_prepare_dir checked) */
		DIR *d = opendir(p->deliveries);
		struct dirent *e;
		char old[1600];

		while (d != NULL && (e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);

			if (l > 7 && strcmp(e->d_name + l - 7, ".sealed") == 0) {
				snprintf(old, sizeof(old), "%s/%s", p->deliveries, e->d_name);
				(void)unlink(old);
			}
		}
		if (d != NULL)
			closedir(d);
	}
	fprintf(steps, "# policy-marketing.yaml: policy.yaml and a marketing section (K receives; K and G are sources)\n");
	if (demo_run(steps, sub, cmd_audience, ac) || demo_run(steps, sub, cmd_experiment, ec) ||
	    demo_run(steps, sub, cmd_audience, tk))
		return -1;
	snprintf(prefix, sizeof(prefix), "%s-", DEMO_EXPERIMENT);
	if (demo_find(p->deliveries, prefix, sealed, sizeof(sealed)) != 0) {
		cli_error("%s: no single delivery of experiment '%s'", p->deliveries, DEMO_EXPERIMENT);
		return -1;
	}
	if (demo_run(steps, sub, cmd_agent, ag))
		return -1;
	fprintf(steps, "# data/k_outcomes.csv: the campaign simulated from the seed (cli_demo.c demo_simulate)\n");
	if (sub->out)
		fprintf(sub->out, "\nsimulating the campaign: K's users convert at %.0f%%, %.0f%% if the campaign reached "
		    "them -> %s\n", DEMO_RATE_CONTROL * 100, DEMO_RATE_TREATED * 100, p->outcomes);
	if (demo_simulate(p, seed) != 0)
		return -1;
	if (demo_run(steps, sub, cmd_agent, oc) || demo_run(steps, sub, cmd_gateway, in) ||
	    demo_run(steps, sub, cmd_experiment, lf))
		return -1;
	return 0;
}

/* The example policy with the freshly generated partner keys pasted in. */
static int
demo_write_policy(const struct demo_paths *p)
{
	const char *tmpl = (const char *)demo_policy_template, *at = tmpl, *q;
	const char *partners[2] = { p->kk, p->kg };
	struct keyfile_key *pub = NULL;
	struct outfile of;
	struct cg_err err;
	char path[1300], line[KEYFILE_LINE_MAX];
	FILE *f;
	int i, r = -1;

	cg_err_clear(&err);
	if (outfile_open(&of, p->policy, 0600, &err) != 0) {
		cli_error("%s", err.msg);
		return -1;
	}
	f = of.f;
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
	cg_err_clear(&err);
	if (outfile_commit(&of, &err) != 0)
		cli_error("%s", err.msg);
	else
		r = 0;
out:
	keyfile_free(pub);
	outfile_abort(&of);
	return r;
}

/* Only ever clear a directory that an earlier demo made. */
static int
demo_prepare_dir(const struct demo_paths *p)
{
	char marker[1200], path[1300];
	const char *old[] = { "gateway.db", "gateway.db-wal", "gateway.db-shm", "batches/k.batch",
		"batches/g.batch", "out/export.csv", "out/export.csv.meta.json", "out/affinity.csv",
		"out/affinity.csv.meta.json", "out/ridge.csv", "out/ridge.csv.meta.json", "out/kmeans.csv",
		"out/kmeans.csv.meta.json", "out/report.json", "audit-copy.db", "audit-copy.db-wal", "audit-copy.db-shm",
		"gateway.log", "gateway.pid", "k.state", "k.state-wal", "k.state-shm", "out/audience.json",
		"out/lift.json", "batches/k-outcomes.batch", NULL };
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
		static const char made[] = "made by crossgate demo\n";
		struct cg_err err;

		cg_err_clear(&err);
		if (outfile_write(marker, made, sizeof(made) - 1, 0600, &err) != 0) {
			cli_error("%s", err.msg);
			return -1;
		}
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
	snprintf(p->affinity, sizeof(p->affinity), "%s/affinity.csv", p->out);
	snprintf(p->ridge, sizeof(p->ridge), "%s/ridge.csv", p->out);
	snprintf(p->kmeans, sizeof(p->kmeans), "%s/kmeans.csv", p->out);
	snprintf(p->report_json, sizeof(p->report_json), "%s/report.json", p->out);
	snprintf(p->kcsv, sizeof(p->kcsv), "%s/k_users.csv", p->data);
	snprintf(p->gcsv, sizeof(p->gcsv), "%s/g_viewers.csv", p->data);
	snprintf(p->steps, sizeof(p->steps), "%s/steps.sh", dir);
	snprintf(p->pki, sizeof(p->pki), "%s/pki", dir);
	snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->pki);
	snprintf(p->gwcert, sizeof(p->gwcert), "%s/gateway.pem", p->pki);
	snprintf(p->gwkey, sizeof(p->gwkey), "%s/gateway.key", p->pki);
	snprintf(p->log, sizeof(p->log), "%s/gateway.log", dir);
	snprintf(p->pid, sizeof(p->pid), "%s/gateway.pid", dir);
	snprintf(p->copy, sizeof(p->copy), "%s/audit-copy.db", dir);
	snprintf(p->kstate, sizeof(p->kstate), "%s/k.state", dir);
	snprintf(p->mpolicy, sizeof(p->mpolicy), "%s/policy-marketing.yaml", dir);
	snprintf(p->deliveries, sizeof(p->deliveries), "%s/deliveries", p->out);
	snprintf(p->kaud, sizeof(p->kaud), "%s/k-audiences", p->data);
	snprintf(p->outcomes, sizeof(p->outcomes), "%s/k_outcomes.csv", p->data);
	snprintf(p->obatch, sizeof(p->obatch), "%s/k-outcomes.batch", p->batches);
	snprintf(p->audience_json, sizeof(p->audience_json), "%s/audience.json", p->out);
	snprintf(p->lift, sizeof(p->lift), "%s/lift.json", p->out);
}

/*
 * --data-only: where the inputs are, for whoever runs the steps by hand
 * (make bench-scale reads the JSON).  Row counts are of the files written,
 * as the generator's truth.json has them.
 */
static int
demo_data_only_summary(const struct demo_paths *p, const struct synth_truth *t, int json, FILE *out)
{
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "dir", p->dir, "k_csv", p->kcsv,
		    "g_csv", p->gcsv, "policy", p->policy, "keys", p->keys, "match_key", p->match, "steps", p->steps,
		    "k_rows", (json_int_t)t->k_rows, "g_rows", (json_int_t)t->g_rows);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

		json_decref(o);
		if (s == NULL) {
			cli_error("cannot format the JSON summary");
			return 1;
		}
		printf("%s\n", s);
		free(s);
	} else if (out) {
		fprintf(out, "\n== crossgate demo --data-only (%s) ==\n"
		    "inputs              %s (%llu rows), %s (%llu rows)\n"
		    "keys                %s (gateway/, k/, g/, match.key)\n"
		    "policy              %s\n"
		    "nothing was packed, ingested or released; the steps: crossgate demo --offline does them\n",
		    p->dir, p->kcsv, (unsigned long long)t->k_rows, p->gcsv, (unsigned long long)t->g_rows, p->keys,
		    p->policy);
	}
	return 0;
}

int
cmd_demo(int argc, char **argv, struct cli_ctx *ctx)
{
	struct demo_gateway gw = { -1, 0 };
	char report[1300];
	char gwaddr[64] = "", kcert[1300], kkey[1300], gcert[1300], gkey[1300], acert[1300], akey[1300];
	char ucert[1300], ukey[1300];
	int offline = 0, port = 0, server_exit = -1;
	struct demo_paths p;
	struct demo_join dj = { 0, 0, 0, 0 };
	struct synth_opts so;
	struct synth_truth truth;
	struct cli_ctx sub;
	struct pack_stats kstats, gstats;
	struct cg_err err;
	const char *dir = "demo";
	struct outfile steps_of = { 0 };
	FILE *steps = NULL;
	char path[1300], kpath[1300], gpath[1300], gwpub[1300], gwsign[1300];
	int json = 0, r = 1, mkt, data_only = 0;
	const struct cliopt opts[] = { CLIOPT_STR("dir", &dir), CLIOPT_UINT("users", &so.users, 100, 20000000),
		CLIOPT_UINT("seed", &so.seed, 0, UINT64_MAX), CLIOPT_FLAG("json", &json), CLIOPT_FLAG("offline", &offline),
		CLIOPT_UINT("port", &port, 0, 65535), CLIOPT_FLAG("data-only", &data_only), CLIOPT_END };

	synth_opts_default(&so);
	if (cliopt_parse(argc, argv, demo_usage, demo_help, opts, NULL, &r))
		return r;
	r = 1;
	if (data_only && port != 0)
		return cli_usage(demo_usage, "--data-only runs no gateway: --port has no use with it");
	mkt = so.users >= DEMO_MKT_USERS_MIN;
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
	if (outfile_open(&steps_of, p.steps, 0600, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	steps = steps_of.f;
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
	if (!offline && !data_only) {
		char *pk[] = { "pki", "init", "--dir", p.pki, "--client", "partner:k", "--client", "partner:g",
			"--client", "analyst:analyst", "--client", "auditor:auditor", "--force", NULL };
		if (demo_run(steps, &sub, cmd_pki, pk))
			goto out;
	}
	if (demo_write_policy(&p) != 0)
		goto out;
	fprintf(steps, "# policy.yaml: policy/example.yaml with the partners' sign.pub lines pasted in\n");
	snprintf(kpath, sizeof(kpath), "%s/sign.key", p.kk);
	snprintf(gpath, sizeof(gpath), "%s/sign.key", p.kg);
	snprintf(gwpub, sizeof(gwpub), "%s/enc.pub", p.kgw);
	snprintf(path, sizeof(path), "%s/sign.pub", p.kgw);
	snprintf(gwsign, sizeof(gwsign), "%s/sign.key", p.kgw);
	if (data_only) {
		r = demo_data_only_summary(&p, &truth, json, ctx->out);
		goto out;
	}
	if (offline) {
		{
			char *pc[] = { "policy", "check", p.policy, NULL };
			if (demo_run(steps, &sub, cmd_policy, pc))
				goto out;
		}
		{
			char *pk[] = { "agent", "pack", "--policy", p.policy, "--partner", "k", "--input", p.kcsv, "--out",
				p.kbatch, "--match-key", p.match, "--sign-key", kpath, "--gateway-pub", gwpub, "--state",
				p.kstate, NULL };
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
			char *qu[] = { "query", "--db", p.db, "--policy", p.policy, "--keys", p.kgw, "--purpose", "analytics",
				"--group-by", DEMO_AFFINITY_KEYS, "--metric", "count", "--rho", DEMO_AFFINITY_RHO, "--out",
				p.affinity, NULL };
			char *qr[] = { "query", "--db", p.db, "--policy", p.policy, "--keys", p.kgw, "--purpose", "analytics",
				"--model", "ridge", "--x", DEMO_RIDGE_X, "--y", DEMO_RIDGE_Y, "--rho", DEMO_RIDGE_RHO, "--out",
				p.ridge, NULL };
			char *qk[] = { "query", "--db", p.db, "--policy", p.policy, "--keys", p.kgw, "--purpose", "analytics",
				"--model", "kmeans", "--cols", DEMO_KMEANS_COLS, "--k", "3", "--steps", "5", "--log1p", "--rho",
				DEMO_KMEANS_RHO, "--out", p.kmeans, NULL };
			if (demo_run(steps, &sub, cmd_gateway, in) || demo_run(steps, &sub, cmd_query, qu) ||
			    demo_run(steps, &sub, cmd_query, qr) || demo_run(steps, &sub, cmd_query, qk) ||
			    demo_run(steps, &sub, cmd_export, ex))
				goto out;
		}
		if (mkt && demo_marketing(steps, &sub, &p, so.seed, kpath, gwpub) != 0)
			goto out;
		{
			char *av[] = { "audit", "verify", "--db", p.db, "--pub", path, "--record-key", gwsign, NULL };
			(void)demo_run(steps, &sub, cmd_audit, av);
		}
	} else {
		/* The gateway serves in a child (its monitor); the clients below are this process, as separate machines would be. */
		if (demo_gateway_start(p.policy, p.kgw, p.db, p.gwcert, p.gwkey, p.log, p.pid, port, &gw) != 0)
			goto out;
		snprintf(gwaddr, sizeof(gwaddr), "localhost:%d", gw.port);
		snprintf(kcert, sizeof(kcert), "%s/k.pem", p.pki);
		snprintf(kkey, sizeof(kkey), "%s/k.key", p.pki);
		snprintf(gcert, sizeof(gcert), "%s/g.pem", p.pki);
		snprintf(gkey, sizeof(gkey), "%s/g.key", p.pki);
		snprintf(acert, sizeof(acert), "%s/analyst.pem", p.pki);
		snprintf(akey, sizeof(akey), "%s/analyst.key", p.pki);
		snprintf(ucert, sizeof(ucert), "%s/auditor.pem", p.pki);
		snprintf(ukey, sizeof(ukey), "%s/auditor.key", p.pki);
		fprintf(steps, "crossgate 'gateway' 'serve' '--db' '%s' '--policy' '%s' '--keys' '%s' '--cert' '%s' "
		    "'--key' '%s' '--listen' '127.0.0.1:%d' '--pid-file' '%s' 2>>'%s'\n", p.db, p.policy, p.kgw, p.gwcert,
		    p.gwkey, gw.port, p.pid, p.log);
		if (sub.out)
			fprintf(sub.out, "\n$ crossgate gateway serve --db %s --policy %s --keys %s --cert %s --key %s "
			    "--listen 127.0.0.1:%d --pid-file %s   (in the background: a monitor with the keys and its "
			    "sandboxed worker; JSON log in %s)\n", p.db, p.policy, p.kgw, p.gwcert, p.gwkey, gw.port, p.pid,
			    p.log);
		{
			char *pk[] = { "agent", "push", "--gateway", gwaddr, "--ca", p.ca, "--cert", kcert, "--key", kkey,
				"--policy", p.policy, "--partner", "k", "--input", p.kcsv, "--out", p.kbatch,
				"--match-key", p.match, "--sign-key", kpath, "--gateway-pub", gwpub, "--state", p.kstate, NULL };
			char *pg[] = { "agent", "push", "--gateway", gwaddr, "--ca", p.ca, "--cert", gcert, "--key", gkey,
				"--policy", p.policy, "--partner", "g", "--input", p.gcsv, "--out", p.gbatch,
				"--match-key", p.match, "--sign-key", gpath, "--gateway-pub", gwpub, NULL };
			if (demo_run(steps, &sub, cmd_agent, pk))
				goto out;
			kstats = sub.pack;
			if (demo_run(steps, &sub, cmd_agent, pg))
				goto out;
			gstats = sub.pack;
			sub.ingested_records = sub.pushed_records;
		}
		{
			char *ex[] = { "export", "--gateway", gwaddr, "--ca", p.ca, "--cert", acert, "--key", akey,
				"--purpose", "analytics", "--out", p.export, NULL };
			char *qu[] = { "query", "--gateway", gwaddr, "--ca", p.ca, "--cert", acert, "--key", akey,
				"--purpose", "analytics", "--group-by", DEMO_AFFINITY_KEYS, "--metric", "count", "--rho",
				DEMO_AFFINITY_RHO, "--out", p.affinity, NULL };
			char *qr[] = { "query", "--gateway", gwaddr, "--ca", p.ca, "--cert", acert, "--key", akey,
				"--purpose", "analytics", "--model", "ridge", "--x", DEMO_RIDGE_X, "--y", DEMO_RIDGE_Y, "--rho",
				DEMO_RIDGE_RHO, "--out", p.ridge, NULL };
			char *qk[] = { "query", "--gateway", gwaddr, "--ca", p.ca, "--cert", acert, "--key", akey,
				"--purpose", "analytics", "--model", "kmeans", "--cols", DEMO_KMEANS_COLS, "--k", "3", "--steps",
				"5", "--log1p", "--rho", DEMO_KMEANS_RHO, "--out", p.kmeans, NULL };
			/* DP statistics first, the default channel; then DP synthetic rows, charged to the same budget */
			if (demo_run(steps, &sub, cmd_query, qu) || demo_run(steps, &sub, cmd_query, qr) ||
			    demo_run(steps, &sub, cmd_query, qk) || demo_run(steps, &sub, cmd_export, ex))
				goto out;
		}
		{
			char *fe[] = { "audit", "fetch", "--gateway", gwaddr, "--ca", p.ca, "--cert", ucert, "--key", ukey,
				"--out", p.copy, "--pub", path, NULL };
			(void)demo_run(steps, &sub, cmd_audit, fe);
		}
		fprintf(steps, "kill \"$(cat '%s')\"\n", p.pid);
		server_exit = demo_gateway_stop(&gw);
		if (sub.out)
			fprintf(sub.out, "\ngateway stopped (SIGTERM), exit status %d\n", server_exit);
		if (server_exit != 0) {
			cli_error("the gateway exited with status %d (see %s)", server_exit, p.log);
			sub.audit_ok = 0;
		}
		/* experiments are made and measured at the gateway's store (no RPC for them yet): after the stop */
		if (mkt && demo_marketing(steps, &sub, &p, so.seed, kpath, gwpub) != 0)
			goto out;
	}
	demo_join_counts(p.db, p.policy, p.kgw, &dj);
	/* The analyst's last step: the report, from the DP releases alone (no row). */
	snprintf(report, sizeof(report), "%s/report.html", p.out);
	{
		char *an[] = { "analytics", "report", "--ridge", p.ridge, "--kmeans", p.kmeans, "--aggregates", p.affinity,
			"--policy", p.policy, "--out", report, mkt ? "--audience" : NULL, p.audience_json, "--lift", p.lift,
			NULL };
		char *aj[] = { "analytics", "report", "--ridge", p.ridge, "--kmeans", p.kmeans, "--aggregates", p.affinity,
			"--policy", p.policy, "--format", "json", "--out", p.report_json, mkt ? "--audience" : NULL,
			p.audience_json, "--lift", p.lift, NULL };
		if (demo_run(steps, &sub, cmd_analytics, an) || demo_run(steps, &sub, cmd_analytics, aj))
			goto out;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, "
		    "s:I, s:b, s:s, s:s, s:{s:I, s:I}}",
		    "dir", p.dir,
		    "k_rows", (json_int_t)kstats.rows, "g_rows", (json_int_t)gstats.rows,
		    "rejected_rows", (json_int_t)(kstats.bad_rows + gstats.bad_rows),
		    "duplicate_rows", (json_int_t)(kstats.duplicates + gstats.duplicates),
		    "no_match_consent", (json_int_t)(kstats.no_match + gstats.no_match),
		    "k_packed", (json_int_t)kstats.packed, "g_packed", (json_int_t)gstats.packed,
		    "ingested_records", (json_int_t)sub.ingested_records,
		    "matched_subjects", (json_int_t)dj.matched,
		    "left_out_for_consent", (json_int_t)dj.no_consent,
		    "ambiguous", (json_int_t)dj.ambiguous,
		    "consenting_subjects", (json_int_t)dj.consenting,
		    "synthetic_rows", (json_int_t)sub.export.rows,
		    "export_rho", (double)sub.export.charged_nano / BUDGET_NANO,
		    "audit_events", (json_int_t)sub.audit.events,
		    "audit_verified", sub.audit_ok,
		    "export", p.export,
		    "aggregates", p.affinity,
		    "truth", "matched", (json_int_t)truth.matched,
		    "exported_before_suppression", (json_int_t)truth.exported_before_suppression);
		if (o != NULL) {
			json_object_set_new(o, "mode", json_string(offline ? "offline" : "network"));
			json_object_set_new(o, "report", json_string(report));
			json_object_set_new(o, "report_json", json_string(p.report_json));
			json_object_set_new(o, "ridge", json_string(p.ridge));
			json_object_set_new(o, "kmeans", json_string(p.kmeans));
			if (mkt) {
				json_object_set_new(o, "audience", json_string(p.audience_json));
				json_object_set_new(o, "lift", json_string(p.lift));
				json_object_set_new(o, "planted_rate_lift", json_real(DEMO_RATE_TREATED - DEMO_RATE_CONTROL));
			}
			if (!offline) {
				json_object_set_new(o, "gateway", json_string(gwaddr));
				json_object_set_new(o, "pushed_records", json_integer((json_int_t)sub.pushed_records));
				json_object_set_new(o, "push_duplicates", json_integer((json_int_t)sub.push_duplicates));
				json_object_set_new(o, "push_attempts", json_integer((json_int_t)sub.push_attempts));
				json_object_set_new(o, "fetched_events", json_integer((json_int_t)sub.fetched_events));
				json_object_set_new(o, "gateway_exit", json_integer(server_exit));
				json_object_set_new(o, "gateway_log", json_string(p.log));
				json_object_set_new(o, "audit_copy", json_string(p.copy));
			}
		}
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
		    "no match consent    %llu users: their data never left their partner (a withdrawal did)\n"
		    "records ingested    %llu%s\n"
		    "matched subjects    %llu (generator's truth: %llu; the operator's view, never released)\n"
		    "left out, consent   %llu\n"
		    "synthetic rows      %llu (DP synthetic release, rho %.3f; consenting subjects: %llu, truth %llu)\n"
		    "audit log           %llu events, %s\n"
		    "aggregates          %s (DP counts, course x game category)\n"
		    "model statistics    %s, %s (DP ridge and k-means)\n"
		    "synthetic export    %s\n"
		    "every step by hand  %s\n"
		    "analytics report    %s\n",
		    p.dir, (unsigned long long)kstats.rows, (unsigned long long)gstats.rows,
		    (unsigned long long)(kstats.bad_rows + gstats.bad_rows),
		    (unsigned long long)(kstats.duplicates + gstats.duplicates),
		    (unsigned long long)(kstats.no_match + gstats.no_match),
		    (unsigned long long)sub.ingested_records, offline ? "" : " (pushed over mutual TLS, acknowledged after commit)",
		    (unsigned long long)dj.matched,
		    (unsigned long long)truth.matched, (unsigned long long)dj.no_consent,
		    (unsigned long long)sub.export.rows, (double)sub.export.charged_nano / BUDGET_NANO,
		    (unsigned long long)dj.consenting, (unsigned long long)truth.exported_before_suppression, (unsigned long long)sub.audit.events,
		    sub.audit_ok ? "verified" : "VERIFICATION FAILED", p.affinity, p.ridge, p.kmeans, p.export, p.steps,
		    report);
	}
	if (!offline && ctx->out && !json)
		fprintf(ctx->out, "gateway             %s, log %s, auditor's copy %s\n", gwaddr, p.log, p.copy);
	if (ctx->out && !json) {
		json_t *l = mkt ? json_load_file(p.lift, 0, NULL) : NULL;
		json_t *rt = json_object_get(json_object_get(l, "lift"), "rate");

		if (!mkt)
			fprintf(ctx->out, "marketing loop      skipped: fewer than %d users per platform\n", DEMO_MKT_USERS_MIN);
		else if (rt != NULL)
			fprintf(ctx->out, "audience            %s (noisy size)\n"
			    "experiment lift     %s: conversion %+.2f points (95%% interval %+.2f to %+.2f; planted %+.0f), "
			    "rho %.2f\n", p.audience_json, p.lift,
			    100 * json_number_value(json_object_get(rt, "est")),
			    100 * json_number_value(json_object_get(rt, "lo")), 100 * json_number_value(json_object_get(rt, "hi")),
			    100 * (DEMO_RATE_TREATED - DEMO_RATE_CONTROL), json_number_value(json_object_get(l, "rho")));
		json_decref(l);
	}
	r = sub.audit_ok ? 0 : 1;
out:
	if (gw.pid > 0)
		(void)demo_gateway_stop(&gw);
	/* the steps that ran are written even when one failed: they are how to rerun it */
	cg_err_clear(&err);
	if (steps != NULL && outfile_commit(&steps_of, &err) != 0) {
		cli_error("%s", err.msg);
		r = 1;
	}
	return r;
}
