/* cli_gateway.c - crossgate gateway */
#define _GNU_SOURCE   /* close_range */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <jansson.h>

#include "base/outfile.h"
#include "cli/cli.h"
#include "cli/cliopt.h"
#include "gateway/erase.h"
#include "gateway/stats.h"
#include "audit/audit.h"
#include "gateway/ingest.h"
#include "gateway/monitor.h"
#include "gateway/sandbox.h"
#include "gateway/server.h"
#include "store/store.h"
#include "policy/policy.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- gateway --------------------------------------------------------------- */

static const char gateway_usage[] =
	"crossgate gateway ingest --db DB --policy FILE --keys DIR [--threads N] BATCH...\n"
	"       crossgate gateway purge  --db DB --policy FILE --keys DIR [--now TIME]\n"
	"       crossgate gateway stats  --db DB --policy FILE --partner ID\n"
	"       crossgate gateway serve  --db DB --policy FILE --keys DIR --cert CERT.pem --key KEY.pem\n"
	"                                [--listen HOST:PORT] [--spool DIR] [--foreground]\n"
	"                                [--pid-file FILE] [--port-file FILE]";

static const char gateway_help[] =
	"Ingest batch files.  Each batch is verified (partner's signature over the\n"
	"whole file, policy, gateway key), opened, checked record by record against\n"
	"the policy, and committed in one transaction: all of it or nothing.  A batch\n"
	"already committed is reported as a duplicate and changes nothing.  Every\n"
	"outcome is an audit event.  DIR holds the gateway keys of 'crossgate keygen\n"
	"gateway' (enc.key, sign.key, storage.key).  Exit 1 if any batch was rejected.\n"
	"A revocation batch (agent revoke) erases the users it names.\n"
	"--threads N: decode, open and check records on N threads (default and 0: one\n"
	"per core) while one thread stores them; the result is the same for any N.\n"
	"\n"
	"purge: erase every partner's records whose consent is older than its\n"
	"retention_days in the policy (secure delete, WAL truncated), one audit event\n"
	"per partner with the count.  --now (YYYY-MM-DD or unix seconds) for a dry\n"
	"clock in tests; default now.\n"
	"\n"
	"stats: a partner's own view: how many of its records are stored and how many\n"
	"consent to each purpose.  Counts only, never which users, never matches.\n"
	"\n"
	"serve: the same over mutual TLS 1.3 (see the policy's network and principals\n"
	"sections): partners push batches, analysts pull exports, auditors fetch the\n"
	"audit log; anything else is refused, answered with an error and logged in\n"
	"the audit log.  A batch is acknowledged only once committed.  Logs are JSON\n"
	"lines on stderr.  Without --foreground the server goes to the background once\n"
	"it listens (the command returns 0 then, or 1 with the reason); --pid-file\n"
	"gets its pid, --port-file the port it listens on (useful with port 0).\n"
	"SIGTERM or SIGINT: stop accepting, finish requests in flight, checkpoint the\n"
	"database, exit 0.  --spool (default DB.spool) holds batches being received\n"
	"and answers being sent: made 0700, and refused unless this user's and 0700.\n"
	"Unauthenticated connections are admitted by the policy's max_startups,\n"
	"per_source_max and penalty_max (sources whose handshakes time out or fail\n"
	"are refused for a while); the partners' networks listed in trusted_sources\n"
	"get trusted_startups slots of their own, which a flood from elsewhere cannot\n"
	"take; every refusal line names the peer.\n"
	"Privilege separation: the process started keeps the keys (the monitor, the\n"
	"pid in --pid-file) and forks a worker that wipes them and serves under\n"
	"seccomp and Landlock, asking the monitor for each key operation; a worker\n"
	"killed by a signal is restarted.\n";

static struct server *gateway_server;

static void
gateway_on_signal(int sig)
{
	(void)sig;
	server_stop(gateway_server);
}

/* A pid or port file: readable by others (0644 less the umask), written the one safe way (base/outfile.h). */
static int
gateway_write_file(const char *path, long value)
{
	struct cg_err err;
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", value);

	if (outfile_write(path, line, (size_t)n, 0644, &err) != 0) {
		cli_error("%s", err.msg);
		return -1;
	}
	return 0;
}

/* What the monitor hands its worker (gateway/monitor.h): everything but the keys, which stay behind. */
struct gateway_worker {
	const struct cli_gateway_serve *a;
	const struct policy *pol;
	struct cli_gw_keys *keys;            /* the monitor's; wiped in the worker before it serves */
	const char *spool;
	int lfd;                             /* the monitor's listening socket; each worker gets a copy */
	int ready;                           /* the first worker's report to a waiting parent, or -1 */
	pid_t monitor;
};

static void
gateway_worker_wipe(void *arg)
{
	cli_gateway_keys_free(((struct gateway_worker *)arg)->keys);
}

/*
 * The sandbox, unless CROSSGATE_TEST_NO_SANDBOX=1 (tests only: it shows the
 * probe would succeed without it); then CROSSGATE_TEST_SANDBOX_PROBE=1 makes
 * the worker try to open the key files and read the monitor's memory, and
 * log what happened (docs/DESIGN.md, tests/e2e/test_privsep.sh).
 */
static int
gateway_worker_sandbox(const struct gateway_worker *w, const char *spool, struct cg_err *err)
{
	static const char *const names[] = { "enc.key", "sign.key", "storage.key" };
	const char *env = getenv("CROSSGATE_TEST_NO_SANDBOX"), *probe = getenv("CROSSGATE_TEST_SANDBOX_PROBE");
	char paths[3][4200], why[256];
	const char *files[3];
	unsigned applied = 0;
	size_t i;
	int r;

	if (env != NULL && strcmp(env, "1") == 0)
		monitor_log(stderr, "warn", "sandbox", "process", json_string("worker"), "state",
		    json_string("off (CROSSGATE_TEST_NO_SANDBOX)"), NULL);
	else {
		if ((r = sandbox_apply(w->a->db, spool, &applied, why, sizeof(why), err)) != 0)
			return r;
		monitor_log(stderr, "info", "sandbox", "process", json_string("worker"), "state",
		    json_string((applied & SANDBOX_LANDLOCK) ? "seccomp and landlock" : "seccomp"), NULL);
		if (!(applied & SANDBOX_LANDLOCK))
			monitor_log(stderr, "warn", "sandbox", "process", json_string("worker"), "landlock", json_string(why),
			    NULL);
	}
	if (probe != NULL && strcmp(probe, "1") == 0) {
		for (i = 0; i < 3; i++) {
			snprintf(paths[i], sizeof(paths[i]), "%s/%s", w->a->keys, names[i]);
			files[i] = paths[i];
		}
		sandbox_probe(files, 3, w->monitor, stderr);
	}
	return 0;
}

/* The network worker: no key but handles on the monitor's (gateway/monitor.h); sandboxed once set up. */
static int
gateway_worker_run(const struct monitor_keys *keys, unsigned restarts, void *arg)
{
	struct gateway_worker *w = arg;
	const struct cli_gateway_serve *a = w->a;
	struct server_config cfg;
	struct server *srv = NULL;
	struct sigaction sa;
	struct cg_err err;
	int r = 1, ready = restarts == 0 ? w->ready : -1;

	cg_err_clear(&err);
	if (restarts > 0 && w->ready >= 0)
		close(w->ready);
	memset(&cfg, 0, sizeof(cfg));
	cfg.pol = w->pol;
	cfg.enc = keys->enc;
	cfg.sign = keys->sign;
	cfg.storage = keys->storage;
	cfg.db_path = a->db;
	cfg.spool_dir = w->spool;
	cfg.cert = a->cert;
	cfg.key = a->key;
	cfg.listen = a->listen;
	if ((cfg.listen_fd = fcntl(w->lfd, F_DUPFD_CLOEXEC, 0)) < 0) {
		cg_err_set(&err, CG_ERR_IO, "listening socket: %s", strerror(errno));
		goto fail;
	}
	close(w->lfd);
	if (server_new(&cfg, &srv, &err) != 0)
		goto fail;
	/* before the port file: whoever waits for it may signal at once */
	gateway_server = srv;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = gateway_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (restarts == 0 && a->port_file != NULL && gateway_write_file(a->port_file, server_port(srv)) != 0) {
		cg_err_set(&err, CG_ERR_IO, "cannot write %s", a->port_file);
		goto fail;
	}
	/* the pid to signal is the monitor's: it passes SIGTERM on, and outlives a worker's crash */
	if (restarts == 0 && a->pid_file != NULL && gateway_write_file(a->pid_file, (long)w->monitor) != 0) {
		cg_err_set(&err, CG_ERR_IO, "cannot write %s", a->pid_file);
		goto fail;
	}
	if (gateway_worker_sandbox(w, w->spool, &err) != 0)
		goto fail;
	if (ready >= 0) {
		if (write(ready, "", 1) != 1) {
			/* the parent is gone: serve anyway */
		}
		close(ready);
		ready = -1;
	}
	if (server_run(srv, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	r = 0;
	goto out;
fail:
	if (ready >= 0) {
		if (write(ready, err.msg, strlen(err.msg)) < 0) {
			/* nothing more to do */
		}
		close(ready);
	} else
		cli_error("%s", err.msg);
out:
	gateway_server = NULL;
	server_free(srv);
	return r;
}

/*
 * Set up and run: the monitor (this process) loads the keys and binds the
 * port (or takes a->listen_fd over), then runs the worker and restarts it if
 * it dies.  `ready` (>= 0) is a pipe to the parent that waits for the
 * background server: one byte 0 when listening, or the error text.
 */
static int
gateway_serve_run(const struct cli_gateway_serve *a, int ready)
{
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct monitor_keys mk;
	struct gateway_worker w;
	struct cg_err err;
	char spool[4200];
	int lfd = -1, r = 1;

	cg_err_clear(&err);
	if (policy_load(a->policy, &pol, NULL, &err) != 0)
		goto fail;
	if (cli_load_gateway_keys(a->keys, &k) != 0) {
		cg_err_set(&err, CG_ERR_IO, "cannot load the gateway keys from %s", a->keys);
		goto fail;
	}
	if (a->listen_fd >= 0)
		lfd = a->listen_fd;
	else if (server_listen(a->listen != NULL ? a->listen : pol->net.listen != NULL ? pol->net.listen : "", &lfd,
	    &err) != 0)
		goto fail;
	snprintf(spool, sizeof(spool), "%s.spool", a->db);
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.pol = pol;
	w.keys = &k;
	w.spool = a->spool != NULL ? a->spool : spool;
	w.lfd = lfd;
	w.ready = ready;
	w.monitor = getpid();
	mk.enc = k.enc;
	mk.sign = k.sign;
	mk.storage = k.storage;
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	r = monitor_run(&mk, gateway_worker_run, gateway_worker_wipe, &w, stderr, &err);
	if (err.msg[0] != '\0')
		cli_error("%s", err.msg);
	if (ready >= 0)
		close(ready);
	if (a->pid_file != NULL && r == 0)
		unlink(a->pid_file);
	goto out;
fail:
	if (ready >= 0) {
		if (write(ready, err.msg, strlen(err.msg)) < 0) {
			/* nothing more to do */
		}
		close(ready);
	} else
		cli_error("%s", err.msg);
out:
	if (lfd >= 0)
		close(lfd);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

/*
 * Close every descriptor from 3 up but keep1 and keep2 (-1: none): a
 * background server inherits nothing else of its caller's, such as the
 * demo's open steps.sh, which a compromised worker could otherwise write to.
 */
static void
gateway_close_inherited(int keep1, int keep2)
{
	int keep[2] = { keep1 < keep2 ? keep1 : keep2, keep1 < keep2 ? keep2 : keep1 };
	unsigned from = 3;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < from)
			continue;
		if ((unsigned)keep[i] > from)
			(void)close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	(void)close_range(from, ~0u, 0);
}

/* The background server's process, forked: its descriptors set up, then the monitor (gateway_serve_run). */
static void __attribute__((noreturn))
gateway_serve_child(const struct cli_gateway_serve *a, int ready, pid_t parent)
{
	struct cli_gateway_serve b = *a;
	int devnull;

	if (a->detach)
		setsid();
	else if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
		_exit(1);   /* the caller, who would stop it, is gone already */
	/* what must outlive the redirections below goes above stderr (a caller may have closed its stdin) */
	if (ready < 3)
		ready = fcntl(ready, F_DUPFD_CLOEXEC, 3);
	if (a->listen_fd >= 0 && a->listen_fd < 3)
		b.listen_fd = fcntl(a->listen_fd, F_DUPFD_CLOEXEC, 3);
	if (ready < 0 || (a->listen_fd >= 0 && b.listen_fd < 0))
		_exit(1);
	if (a->log_fd >= 0 && a->log_fd != STDERR_FILENO)
		dup2(a->log_fd, STDERR_FILENO);
	if ((devnull = open("/dev/null", O_RDWR)) >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
	}
	gateway_close_inherited(ready, b.listen_fd);
	_exit(gateway_serve_run(&b, ready));
}

int
cli_gateway_serve_start(const struct cli_gateway_serve *a, pid_t *pid, char *why, size_t why_size)
{
	char msg[CG_ERR_MSG_MAX + 1];
	pid_t parent = getpid();
	int pfd[2], st;
	ssize_t n;

	*pid = -1;
	/* Fork first: the store is opened in the process that uses it (SQLite locks do not survive fork). */
	fflush(NULL);
	if (pipe(pfd) != 0) {
		snprintf(why, why_size, "cannot start the server in the background: %s", strerror(errno));
		return -1;
	}
	if ((*pid = fork()) < 0) {
		snprintf(why, why_size, "cannot start the server in the background: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (*pid == 0) {
		close(pfd[0]);
		gateway_serve_child(a, pfd[1], parent);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == 1 && msg[0] == '\0')
		return 0;
	msg[n > 0 ? n : 0] = '\0';
	snprintf(why, why_size, "%s", n > 0 ? msg : "the server exited during start-up");
	while (waitpid(*pid, &st, 0) < 0 && errno == EINTR)
		;
	*pid = -1;
	return -1;
}

static int
gateway_serve(const struct cli_gateway_serve *a, int foreground)
{
	char why[CG_ERR_MSG_MAX + 1];
	pid_t pid;

	if (foreground)
		return gateway_serve_run(a, -1);
	if (cli_gateway_serve_start(a, &pid, why, sizeof(why)) != 0) {
		cli_error("%s", why);
		return 1;
	}
	return 0;
}

static int
gateway_purge(const char *db, const char *policy, const char *keys, const char *now_arg, struct cli_ctx *ctx)
{
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	uint64_t erased = 0;
	int64_t now = (int64_t)time(NULL);
	int r = 1;

	cg_err_clear(&err);
	if (now_arg != NULL && audit_parse_time(now_arg, &now, &err) != 0) {
		cli_error("--now: %s", err.msg);
		return CLI_USAGE;
	}
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    audit_policy_seen(a, pol->hash, &err) != 0 || erase_purge(st, a, pol, now, 0, &erased, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu records past their partner's retention erased\n", db,
		    (unsigned long long)erased);
	r = 0;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

static int
gateway_stats(const char *db, const char *policy, const char *partner, struct cli_ctx *ctx)
{
	struct policy *pol = NULL;
	struct store *st = NULL;
	struct stats_partner sp;
	struct cg_err err;
	size_t i;
	int r = 1;

	cg_err_clear(&err);
	if (cli_load_policy(policy, &pol) != 0)
		goto out;
	if (store_open(db, 0, &st, &err) != 0 || stats_partner_get(st, pol, partner, &sp, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out) {
		fprintf(ctx->out, "partner %s: %llu records stored from %llu batches\n", partner,
		    (unsigned long long)sp.records, (unsigned long long)sp.batches);
		for (i = 0; i < pol->npurposes; i++)
			fprintf(ctx->out, "  %-12s %llu consent, %llu do not\n", pol->purposes[i],
			    (unsigned long long)sp.with_purpose[i], (unsigned long long)(sp.records - sp.with_purpose[i]));
	}
	r = 0;
out:
	store_close(st);
	policy_free(pol);
	return r;
}

int
cmd_gateway(int argc, char **argv, struct cli_ctx *ctx)
{
	struct cli_gateway_serve sa = { .listen_fd = -1, .log_fd = -1, .detach = 1 };
	const char *db = NULL, *policy = NULL, *keys = NULL, *now_arg = NULL, *partner = NULL;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct ingest_keys ik;
	struct ingest_result res;
	struct cg_err err;
	int argi, i, r = 1, failed = 0, foreground = 0;
	unsigned threads = 0;
	/* Required options depend on the subcommand, checked after it is known. */
	const struct cliopt opts[] = { CLIOPT_STR("db", &db), CLIOPT_STR("policy", &policy), CLIOPT_STR("keys", &keys),
		CLIOPT_STR("cert", &sa.cert), CLIOPT_STR("key", &sa.key), CLIOPT_STR("listen", &sa.listen),
		CLIOPT_STR("spool", &sa.spool), CLIOPT_FLAG("foreground", &foreground),
		CLIOPT_STR("pid-file", &sa.pid_file), CLIOPT_STR("port-file", &sa.port_file), CLIOPT_STR("now", &now_arg),
		CLIOPT_STR("partner", &partner), CLIOPT_UINT("threads", &threads, 0, 256), CLIOPT_END };

	if (cliopt_parse(argc, argv, gateway_usage, gateway_help, opts, &argi, &r))
		return r;
	r = 1;
	if (argi >= argc || (strcmp(argv[argi], "ingest") != 0 && strcmp(argv[argi], "serve") != 0 &&
	    strcmp(argv[argi], "purge") != 0 && strcmp(argv[argi], "stats") != 0))
		return cli_usage(gateway_usage, "unknown or missing gateway command (ingest, serve, purge, stats)");
	if (db == NULL) return cli_missing(gateway_usage, "--db");
	if (policy == NULL) return cli_missing(gateway_usage, "--policy");
	if (strcmp(argv[argi], "stats") == 0) {
		if (partner == NULL) return cli_missing(gateway_usage, "--partner");
		if (argi + 1 != argc)
			return cli_usage(gateway_usage, "unexpected argument");
		return gateway_stats(db, policy, partner, ctx);
	}
	if (keys == NULL) return cli_missing(gateway_usage, "--keys");
	if (strcmp(argv[argi], "serve") == 0) {
		if (sa.cert == NULL) return cli_missing(gateway_usage, "--cert");
		if (sa.key == NULL) return cli_missing(gateway_usage, "--key");
		if (argi + 1 != argc)
			return cli_usage(gateway_usage, "unexpected argument");
		sa.db = db;
		sa.policy = policy;
		sa.keys = keys;
		return gateway_serve(&sa, foreground);
	}
	if (strcmp(argv[argi], "purge") == 0) {
		if (argi + 1 != argc)
			return cli_usage(gateway_usage, "unexpected argument");
		return gateway_purge(db, policy, keys, now_arg, ctx);
	}
	if (argi + 1 >= argc)
		return cli_usage(gateway_usage, "no batch file given");
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	cg_err_clear(&err);
	/* A policy the log has not seen before is itself an audit event (old and new hash). */
	if (store_open(db, STORE_OPEN_CREATE, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    audit_policy_seen(a, pol->hash, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	ik.enc = k.enc;
	ik.storage = k.storage;
	ik.threads = threads;
	for (i = argi + 1; i < argc; i++) {
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
		if (ctx->out && res.revoked_users > 0)
			fprintf(ctx->out, "%s: revocation from partner %s: %llu users, %llu records erased\n", argv[i],
			    res.partner, (unsigned long long)res.revoked_users, (unsigned long long)res.erased);
		else if (ctx->out && res.withdrawn + res.narrowed > 0)
			fprintf(ctx->out, "%s: committed %llu records from partner %s%s; %llu withdrawals without match, "
			    "%llu narrowings, %llu records erased\n", argv[i], (unsigned long long)res.records, res.partner,
			    res.skipped_revoked ? " (users it revoked earlier left out)" : "",
			    (unsigned long long)res.withdrawn, (unsigned long long)res.narrowed,
			    (unsigned long long)res.erased);
		else if (ctx->out)
			fprintf(ctx->out, "%s: committed %llu records from partner %s%s\n", argv[i],
			    (unsigned long long)res.records, res.partner,
			    res.skipped_revoked ? " (users it revoked earlier left out)" : "");
	}
	/* What was committed is safe in the WAL; a failed checkpoint only postpones folding it in. */
	if (store_checkpoint(st, &err) != 0)
		cli_error("warning: %s (what was committed stays committed; the next checkpoint folds it in)", err.msg);
	r = failed;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

