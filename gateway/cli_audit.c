/* cli_audit.c - crossgate audit */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#include "gateway/cli.h"
#include "crypto/keyfile.h"
#include "gateway/audit.h"
#include "gateway/store.h"

/* ---- audit ----------------------------------------------------------------- */

static const char audit_usage[] =
	"crossgate audit verify --db DB --pub GATEWAY_SIGN_PUB [--record-key GATEWAY_SIGN_KEY]";

static const char audit_help[] =
	"Recompute the audit log's Merkle tree (RFC 6962) from the stored events and\n"
	"check every signed checkpoint with the gateway's public key.  Exit 1, naming\n"
	"the first bad event or checkpoint, if anything was changed, removed,\n"
	"reordered or inserted.  Needs nothing secret.  With --record-key (the\n"
	"gateway's signing key) the outcome is itself appended to the log.\n";

int
cmd_audit(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'b' }, { "pub", required_argument, NULL, 'p' },
		{ "record-key", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 } };
	const char *db = NULL, *pubp = NULL, *recp = NULL;
	struct keyfile_key *pub = NULL, *rec = NULL;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err, logerr;
	struct stat sb;
	int c, r = 1, vr;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': db = optarg; break;
		case 'p': pubp = optarg; break;
		case 'r': recp = optarg; break;
		case 'h': printf("usage: %s\n\n%s", audit_usage, audit_help); return 0;
		default: return cli_usage(audit_usage, NULL);
		}
	}
	if (optind >= argc || strcmp(argv[optind], "verify") != 0)
		return cli_usage(audit_usage, "unknown or missing audit command (verify)");
	if (db == NULL) return cli_missing(audit_usage, "--db");
	if (pubp == NULL) return cli_missing(audit_usage, "--pub");
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0)
		goto out;
	if (recp != NULL && cli_load_key(recp, KEYFILE_ED25519_SECRET, &rec) != 0)
		goto out;
	if (stat(db, &sb) != 0) {
		cli_error("cannot open database %s: %s", db, strerror(errno));
		goto out;
	}
	cg_err_clear(&err);
	if (store_open(db, 0, &st, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	vr = audit_verify(st, pub, &ctx->audit, &err);
	ctx->audit_ok = vr == 0;
	if (vr != 0)
		cli_error("audit log verification FAILED: %s", err.msg);
	else if (ctx->out)
		fprintf(ctx->out, "audit log ok: %llu events, %llu signed checkpoints; latest checkpoint:\n%s",
		    (unsigned long long)ctx->audit.events, (unsigned long long)ctx->audit.checkpoints,
		    ctx->audit.latest_checkpoint);
	if (rec != NULL) {
		Crossgate__AuditEvent ev;
		Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;

		cg_err_clear(&logerr);
		crossgate__audit_event__init(&ev);
		ev.actor = (char *)"auditor";
		ev.action = (char *)"audit-verify";
		ev.outcome = (char *)(vr == 0 ? "ok" : "failed");
		if (vr != 0)
			ev.reason = err.msg;
		crossgate__audit_event__counts_entry__init(&ce);
		ce.key = (char *)"events";
		ce.value = ctx->audit.events;
		ev.counts = &cep;
		ev.n_counts = 1;
		if (audit_open(st, rec, &a, &logerr) != 0 || audit_log(a, &ev, &logerr) != 0) {
			cli_error("cannot record the verification: %s", logerr.msg);
			goto out;
		}
	}
	r = vr == 0 ? 0 : 1;
out:
	audit_free(a);
	store_close(st);
	keyfile_free(pub);
	keyfile_free(rec);
	return r;
}

