/*
 * crossgate_main.c - the `crossgate` command: a table of subcommands (one
 * cli/cli_<command>.c each, all with --help) and the helpers they share.
 * Commands only parse options, call the modules and print.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sodium.h>

#include "base/err.h"
#include "base/escape.h"
#include "crypto/keyfile.h"
#include "net/client.h"
#include "net/tls.h"
#include "cli/cli.h"
#include "policy/policy.h"

/*
 * Messages quote what came from outside (a batch header's partner_id, CSV
 * field names, server errors): written escaped (base/escape.h), one line,
 * nothing a terminal would act on.
 */
void
cli_error(const char *fmt, ...)
{
	char msg[4096], *e;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = escape_text_dup(msg);
	fprintf(stderr, "crossgate: %s\n", e != NULL ? e : "(out of memory)");
	free(e);
}

int
cli_usage(const char *usage, const char *bad)
{
	if (bad != NULL)
		cli_error("%s", bad);
	fprintf(stderr, "usage: %s\n(try --help)\n", usage);
	return CLI_USAGE;
}

int
cli_missing(const char *usage, const char *opt)
{
	fprintf(stderr, "crossgate: missing required option %s\nusage: %s\n", opt, usage);
	return CLI_USAGE;
}

int
cli_mkdir(const char *dir, mode_t mode)
{
	if (mkdir(dir, mode) != 0 && errno != EEXIST) {
		cli_error("cannot create directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}


int
cli_load_policy(const char *path, struct policy **pol)
{
	struct cg_err err;

	cg_err_clear(&err);
	if (policy_load(path, pol, NULL, &err) != 0) {
		cli_error("%s (run 'crossgate policy check %s' for every problem)", err.msg, path);
		return -1;
	}
	return 0;
}

int
cli_load_key(const char *path, enum keyfile_type type, struct keyfile_key **k)
{
	struct cg_err err;

	cg_err_clear(&err);
	if (keyfile_load(path, type, k, &err) != 0) {
		cli_error("%s", err.msg);
		return -1;
	}
	return 0;
}

int
cli_load_gateway_keys(const char *dir, struct cli_gw_keys *k)
{
	char path[4096];

	memset(k, 0, sizeof(*k));
	snprintf(path, sizeof(path), "%s/enc.key", dir);
	if (cli_load_key(path, KEYFILE_X25519_SECRET, &k->enc) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/sign.key", dir);
	if (cli_load_key(path, KEYFILE_ED25519_SECRET, &k->sign) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/storage.key", dir);
	if (cli_load_key(path, KEYFILE_STORAGE, &k->storage) != 0)
		return -1;
	return 0;
}

void
cli_gateway_keys_free(struct cli_gw_keys *k)
{
	keyfile_free(k->enc);
	keyfile_free(k->sign);
	keyfile_free(k->storage);
	memset(k, 0, sizeof(*k));
}


int
cli_client_check(const struct client_opts *o, const char *usage)
{
	if (o->gateway == NULL) return cli_missing(usage, "--gateway");
	if (o->ca == NULL) return cli_missing(usage, "--ca");
	if (o->cert == NULL) return cli_missing(usage, "--cert");
	if (o->key == NULL) return cli_missing(usage, "--key");
	return 0;
}


/* ---- main ------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*fn)(int, char **, struct cli_ctx *);
	const char *what;
} commands[] = {
	{ "demo", cmd_demo, "run the whole pipeline on synthetic data (make demo)" },
	{ "keygen", cmd_keygen, "generate gateway, partner and match keys" },
	{ "policy", cmd_policy, "check a data-sharing policy file" },
	{ "pki", cmd_pki, "make the CA and the TLS certificates of the gateway and its principals" },
	{ "agent", cmd_agent, "partner side: pack a CSV into a sealed, signed batch; push it" },
	{ "gateway", cmd_gateway, "gateway side: ingest batch files, or serve them over mutual TLS" },
	{ "query", cmd_query, "differentially private aggregates, charged to the analyst's privacy budget" },
	{ "export", cmd_export, "row export: DP synthetic rows of the joined subjects, on the budget (locally or from a gateway)" },
	{ "audience", cmd_audience, "audiences under marketing consent: a noisy size for the analyst, sealed deliveries to partners" },
	{ "experiment", cmd_experiment, "A/B experiments on an audience: keyed treatment/control split, treatment delivered; DP lift" },
	{ "budget", cmd_budget, "show each analyst's privacy budget spent and remaining" },
	{ "audit", cmd_audit, "verify the audit log with the gateway's public key" },
	{ "receipt", cmd_receipt, "a user's receipt for a withdrawal: attach the gateway's proof, verify it" },
	{ "analytics", cmd_analytics, "the seed's models and an HTML report, on released outputs only" },
};

static void
main_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: crossgate COMMAND [OPTIONS]   (crossgate COMMAND --help for each)\n\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].what);
}

/*
 * Every command holds secrets: the gateway's keys and decrypted records, a
 * partner's match and signing keys, a TLS client key.  No core dump may
 * carry them away (RLIMIT_CORE 0), and the process is not dumpable
 * (PR_SET_DUMPABLE 0: no core, no ptrace attach or /proc/PID/mem by the
 * same unprivileged user).  OpenSSL's secure heap keeps TLS private keys in
 * locked pages, as secmem (sodium_malloc) does for the others.
 */
static int
main_harden(void)
{
	struct rlimit no_core = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0) {
		cli_error("cannot disable core dumps: %s", strerror(errno));
		return -1;
	}
	tls_secure_heap_init();
	return 0;
}

int
main(int argc, char **argv)
{
	struct cli_ctx ctx;
	size_t i;

	if (sodium_init() < 0) {
		cli_error("cannot initialize libsodium");
		return 1;
	}
	if (main_harden() != 0)
		return 1;
	if (argc < 2) {
		main_usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	/*
	 * Nothing crossgate creates is for others unless it says so: databases
	 * (and SQLite's WAL and SHM, which take the database's mode), spool
	 * files, exports, answers and keys start 0600 or 0700.
	 */
	umask(077);
	/* A peer that hangs up must be an error return from a write, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	memset(&ctx, 0, sizeof(ctx));
	ctx.out = stdout;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1, &ctx);
	cli_error("unknown command '%s'", argv[1]);
	main_usage(stderr);
	return CLI_USAGE;
}

