/*
 * cli.h - the command-line front end's shared declarations (crossgate_main.c
 * and demo_main.c).  Only the front end knows every module.
 *
 * Each command is int cmd_x(int argc, char **argv, struct cli_ctx *ctx): it
 * parses its own options (each has --help), prints what it did to ctx->out
 * (NULL: silent) and errors to stderr, fills ctx's result for the demo, and
 * returns a process exit code: 0 success, 1 failure, 2 usage error.
 */
#ifndef CG_CLI_H
#define CG_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "agent/pack.h"
#include "gateway/audit.h"
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
};

int cmd_keygen(int argc, char **argv, struct cli_ctx *ctx);
int cmd_policy(int argc, char **argv, struct cli_ctx *ctx);
int cmd_agent(int argc, char **argv, struct cli_ctx *ctx);
int cmd_gateway(int argc, char **argv, struct cli_ctx *ctx);
int cmd_export(int argc, char **argv, struct cli_ctx *ctx);
int cmd_audit(int argc, char **argv, struct cli_ctx *ctx);
int cmd_demo(int argc, char **argv, struct cli_ctx *ctx);

/* Print "crossgate: <msg>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
