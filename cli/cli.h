/*
 * cli.h - the command-line front end's shared declarations: crossgate_main.c
 * (the command table and these helpers) and one cli/cli_<command>.c per
 * command.  Only the front end knows every module; its files are linked into
 * the binary, not the library.
 *
 * Each command is int cmd_x(int argc, char **argv, struct cli_ctx *ctx): it
 * declares its options in a table that cli/cliopt.c parses (so --help, an
 * unknown option, a missing or out-of-range one read the same everywhere),
 * prints what it did to ctx->out
 * (NULL: silent) and errors to stderr, fills ctx's result for the demo, and
 * returns a process exit code: 0 success, 1 failure, 2 usage error.
 */
#ifndef CG_CLI_H
#define CG_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "crypto/keyfile.h"
#include "policy/policy.h"
#include "agent/pack.h"
#include "audit/audit.h"
#include "gateway/export.h"

struct cli_ctx {
	FILE *out;                          /* human-readable progress and summaries */
	int json;                           /* print one JSON object instead */
	uint64_t report_max;                /* bad-row lines shown per file (0: 50) */
	/* results, for the demo */
	struct pack_stats pack;
	uint64_t ingested_records, ingest_duplicates, ingest_rejected;
	struct export_stats export;
	struct audit_report audit;
	int audit_ok;
	/* network results, for the demo */
	uint64_t pushed_records, push_duplicates;
	unsigned push_attempts;               /* over every push */
	uint64_t fetched_events;
};

int cmd_keygen(int argc, char **argv, struct cli_ctx *ctx);
int cmd_policy(int argc, char **argv, struct cli_ctx *ctx);
int cmd_agent(int argc, char **argv, struct cli_ctx *ctx);
/* `crossgate agent recommend` (cli_recommend.c), dispatched by cmd_agent. */
int cmd_agent_recommend(int argc, char **argv, struct cli_ctx *ctx);
/* `crossgate audience` and `crossgate agent audience` (cli_audience.c). */
int cmd_audience(int argc, char **argv, struct cli_ctx *ctx);
int cmd_agent_audience(int argc, char **argv, struct cli_ctx *ctx);
/* `crossgate experiment` (cli_experiment.c). */
int cmd_experiment(int argc, char **argv, struct cli_ctx *ctx);
int cmd_gateway(int argc, char **argv, struct cli_ctx *ctx);
int cmd_export(int argc, char **argv, struct cli_ctx *ctx);
int cmd_query(int argc, char **argv, struct cli_ctx *ctx);
int cmd_budget(int argc, char **argv, struct cli_ctx *ctx);
int cmd_audit(int argc, char **argv, struct cli_ctx *ctx);
int cmd_demo(int argc, char **argv, struct cli_ctx *ctx);
int cmd_pki(int argc, char **argv, struct cli_ctx *ctx);
int cmd_analytics(int argc, char **argv, struct cli_ctx *ctx);
int cmd_receipt(int argc, char **argv, struct cli_ctx *ctx);
/* `crossgate audit fetch` (cli/cli_fetch.c); reachable as `crossgate fetch` until audit dispatches it. */
int cli_audit_fetch(int argc, char **argv, struct cli_ctx *ctx);
/* cli/cli_fetch.c, for `audit witness`: extend a local copy from `from`; submit a cosignature line. */
struct client_opts;
int cli_fetch_copy(const struct client_opts *co, struct store *st, uint64_t from, uint64_t *got, uint64_t *remote_size,
    struct cg_err *err);
int cli_submit_cosignature(const struct client_opts *co, uint64_t size, const char *vkey, const char *line,
    struct cg_err *err);

/* The client options every network command shares: --gateway, --ca, --cert, --key, --timeout. */
struct client_opts;
#define CLI_CLIENT_USAGE "--gateway HOST:PORT --ca CA.pem --cert CERT.pem --key KEY.pem [--timeout SECONDS]"
/* Check that the client options are all there; prints a usage error (returns CLI_USAGE) if not. */
int cli_client_check(const struct client_opts *o, const char *usage);
struct client;
/* Receive `size` bytes of Chunk frames into out_path (through out_path.tmp, renamed when complete). */
int cli_recv_file(struct client *c, uint64_t size, const char *out_path, struct cg_err *err);
/* The provenance a gateway sent, beside out_path as out_path.meta.json. */
int cli_meta_save(const char *out_path, const char *meta, struct cg_err *err);
/* j, indented with sorted keys, as the file path (base/outfile.h); prints the error; 0 or -1.  j stays the caller's. */
struct json_t;
int cli_json_save(const char *path, const struct json_t *j);

#define CLI_USAGE 2   /* exit code of a usage error */

/* Print "crossgate: <msg>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage error (and `bad`, if not NULL); returns CLI_USAGE. */
int cli_usage(const char *usage, const char *bad);
int cli_missing(const char *usage, const char *opt);
int cli_mkdir(const char *dir, mode_t mode);

/* Load a policy or a key, printing the error; 0 or -1. */
int cli_load_policy(const char *path, struct policy **pol);
int cli_load_key(const char *path, enum keyfile_type type, struct keyfile_key **k);

/* The gateway's keys in a directory made by `crossgate keygen gateway`. */
struct cli_gw_keys {
	struct keyfile_key *enc, *sign, *storage;
};
int cli_load_gateway_keys(const char *dir, struct cli_gw_keys *k);
void cli_gateway_keys_free(struct cli_gw_keys *k);

/*
 * `crossgate gateway serve` in the background (cli_gateway.c), the one way
 * the gateway is served, also by the demo: a forked process that loads the
 * policy and keys and stays as the monitor of a sandboxed network worker
 * (gateway/monitor.h, gateway/sandbox.h).  It keeps stdin and stdout on
 * /dev/null, stderr (its JSON log) on log_fd if >= 0, and closes every other
 * descriptor it inherited but listen_fd.  Returns once the worker is set up
 * and sandboxed: 0 with *pid the monitor's (SIGTERM stops both; its exit
 * status is the worker's, 0 when it stopped cleanly), or -1 with the reason
 * in why, the process reaped.  listen_fd stays the caller's to close.
 */
struct cli_gateway_serve {
	const char *db, *policy, *keys, *cert, *key;
	const char *listen;     /* HOST:PORT to bind (NULL: the policy's network.listen); with listen_fd, its address */
	const char *spool;      /* or NULL: DB.spool */
	const char *pid_file;   /* or NULL: gets the monitor's pid, removed when it stops cleanly */
	const char *port_file;  /* or NULL: gets the port */
	int listen_fd;          /* a socket already listening, served instead of binding; or -1 */
	int log_fd;             /* the server's stderr, or -1: the caller's */
	int detach;             /* 1: a session of its own, outliving the caller; 0: SIGTERM when the caller dies */
};
int cli_gateway_serve_start(const struct cli_gateway_serve *a, pid_t *pid, char *why, size_t why_size);

#endif
