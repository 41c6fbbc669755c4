/*
 * cli_receipt.c - crossgate receipt: the gateway proves a batch's event, the
 * partner attaches the proof to the batch's receipts, a user verifies their
 * own receipt offline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "agent/receipt.h"
#include "audit/audit.h"
#include "audit/receipt.h"
#include "audit/note.h"
#include "base/outfile.h"
#include "crypto/keyfile.h"
#include "store/store.h"

#define RECEIPT_WITNESS_MAX 32

static const char receipt_usage[] =
	"crossgate receipt prove --db DB --batch BATCH_ID --out PROOF\n"
	"       crossgate receipt attach (--proof PROOF | --db DB) RECEIPT...\n"
	"       crossgate receipt verify RECEIPT --pub GATEWAY_SIGN_PUB --identifier EMAIL_OR_PHONE\n"
	"                     [--witness NAME+KEYID+KEY ... --quorum N] [--log DB]";

static const char receipt_help[] =
	"A receipt tells a user that the gateway logged their withdrawal or revocation\n"
	"('crossgate agent pack|revoke --receipts DIR' writes one per user).\n"
	"\n"
	"prove: on the gateway (or an auditor's copy of its log, 'crossgate audit\n"
	"fetch'), write the inclusion proof of the audit event that committed batch\n"
	"BATCH_ID (32 hex digits, as 'agent pack' prints it) with its receipt root, to\n"
	"the latest signed checkpoint and its cosignatures.  It holds no identifier:\n"
	"send it to the partner.  Never send receipts to the gateway: with a receipt's\n"
	"nonce, the leaf the gateway holds could be tested against guessed identifiers.\n"
	"\n"
	"attach: at the partner, add the proof to each receipt of the batch: from\n"
	"--proof (the file 'receipt prove' or 'audit prove' wrote), or looked up by\n"
	"batch id in --db (a copy of the log the partner holds).  The proof must\n"
	"commit the receipt's batch with a receipt root.\n"
	"\n"
	"verify: check offline, with nothing but the receipt, the gateway's public\n"
	"key and the identifier, that the gateway's signed log commits to this\n"
	"identifier's withdrawal: the checkpoint's signature, the event's inclusion,\n"
	"and the identifier's leaf (with the receipt's nonce, what was withdrawn and\n"
	"when) in the batch's receipt tree.  The tree path is hashes only: the receipt\n"
	"reveals no other user.  --witness/--quorum: at least N of the witnesses\n"
	"cosigned the checkpoint.  --log DB: a copy of the gateway's current log\n"
	"('crossgate audit fetch') must verify and extend the receipt's checkpoint, so\n"
	"a log rewritten after the receipt was issued fails.  Exit 1 with the reason.\n";

static int
receipt_attach_cmd(const char *db, const char *proofp, char **files, int n, struct cli_ctx *ctx)
{
	struct store *st = NULL;
	struct cg_err err;
	unsigned char *proof = NULL;
	size_t len = 0;
	int i, r = 1;

	cg_err_clear(&err);
	if (db != NULL && store_open(db, 0, &st, &err) != 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (proofp != NULL) {
		FILE *f = fopen(proofp, "rb");
		if (f == NULL) {
			cli_error("cannot read proof %s: %s", proofp, strerror(errno));
			goto out;
		}
		if ((proof = malloc(AUDIT_PROOF_MAX + 1)) == NULL) {
			fclose(f);
			cli_error("out of memory");
			goto out;
		}
		len = fread(proof, 1, AUDIT_PROOF_MAX + 1, f);
		fclose(f);
		if (len > AUDIT_PROOF_MAX) {
			cli_error("proof %s is larger than %d bytes", proofp, AUDIT_PROOF_MAX);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		Crossgate__Receipt *rc = NULL;
		unsigned char *p = proof;
		size_t plen = len;

		cg_err_clear(&err);
		/* With --db, each receipt's own batch is looked up: receipts of several batches at once. */
		if (st != NULL) {
			int bad = receipt_read(files[i], &rc, &err) != 0;
			if (!bad && rc->batch_id.len != 16)
				bad = cg_err_set(&err, CG_ERR_FORMAT, "receipt without a batch id") != 0;
			if (!bad)
				bad = audit_receipt_prove(st, rc->batch_id.data, &p, &plen, &err) != 0;
			if (rc != NULL)
				crossgate__receipt__free_unpacked(rc, NULL);
			if (bad) {
				cli_error("%s: %s", files[i], err.msg);
				goto out;
			}
		}
		if (receipt_attach(files[i], p, plen, &err) != 0) {
			cli_error("%s", err.msg);
			if (p != proof)
				free(p);
			goto out;
		}
		if (p != proof)
			free(p);
		if (ctx->out)
			fprintf(ctx->out, "%s: audit proof attached\n", files[i]);
	}
	r = 0;
out:
	free(proof);
	store_close(st);
	return r;
}

static int
receipt_prove_cmd(const char *db, const char *batch, const char *outp, struct cli_ctx *ctx)
{
	struct store *st = NULL;
	struct outfile of = { 0 };
	struct cg_err err;
	unsigned char id[16], *proof = NULL;
	size_t len = 0, idlen = 0;
	int r = 1;

	if (strlen(batch) != 32 || sodium_hex2bin(id, sizeof(id), batch, 32, NULL, &idlen, NULL) != 0 || idlen != 16)
		return cli_usage(receipt_usage, "--batch must be a batch id: 32 hex digits");
	cg_err_clear(&err);
	if (store_open(db, 0, &st, &err) != 0 || audit_receipt_prove(st, id, &proof, &len, &err) != 0 ||
	    outfile_open(&of, outp, 0644, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (fwrite(proof, 1, len, of.f) != len) {
		outfile_abort(&of);
		cli_error("cannot write %s", outp);
		goto out;
	}
	if (outfile_commit(&of, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out)
		fprintf(ctx->out, "proof of batch %s written to %s (%zu bytes)\n", batch, outp, len);
	r = 0;
out:
	free(proof);
	store_close(st);
	return r;
}

static int
receipt_verify_cmd(const char *file, const char *pubp, const char *identifier, const struct audit_witness *w,
    size_t nw, size_t quorum, const char *logp, struct cli_ctx *ctx)
{
	Crossgate__Receipt *rc = NULL;
	struct keyfile_key *pub = NULL;
	struct store *log = NULL;
	struct audit_receipt_result res;
	struct cg_err err;
	char hex[33], at[AUDIT_TIME_MAX];
	size_t i;
	int r = 1;

	cg_err_clear(&err);
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0)
		goto out;
	if (logp != NULL && store_open(logp, 0, &log, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (receipt_read(file, &rc, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (audit_receipt_verify(rc, pub, identifier, w, nw, quorum, log, &res, &err) != 0) {
		cli_error("%s: receipt verification FAILED: %s", file, err.msg);
		goto out;
	}
	if (ctx->out) {
		sodium_bin2hex(hex, sizeof(hex), rc->batch_id.data, 16);
		audit_format_time(rc->withdrawn_at, at);
		fprintf(ctx->out, "receipt ok: the %s of ", rc->batch_kind == 1 ? "revocation" : "withdrawal");
		for (i = 0; i < rc->n_withdrawn; i++)
			fprintf(ctx->out, "%s%s", i ? "," : "", rc->withdrawn[i]);
		fprintf(ctx->out, " by partner %s at %s (batch %s) is committed in event %llu of the gateway's log of "
		    "%llu events (root signed by the gateway key", rc->partner_id, at, hex,
		    (unsigned long long)res.seq, (unsigned long long)res.log_size);
		if (nw > 0)
			fprintf(ctx->out, ", cosigned by %zu of %zu witnesses", res.witnesses, nw);
		fprintf(ctx->out, ")%s\n", res.log_checked ? "; the current log still extends it" : "");
	}
	r = 0;
out:
	if (rc != NULL)
		crossgate__receipt__free_unpacked(rc, NULL);
	store_close(log);
	keyfile_free(pub);
	return r;
}

int
cmd_receipt(int argc, char **argv, struct cli_ctx *ctx)
{
	static struct audit_witness wit[RECEIPT_WITNESS_MAX];
	const char *db = NULL, *proofp = NULL, *pubp = NULL, *identifier = NULL, *logp = NULL, *batch = NULL;
	const char *outp = NULL, *sub, *witv[RECEIPT_WITNESS_MAX];
	struct cliopt_list wits = { witv, 0, RECEIPT_WITNESS_MAX };
	struct cg_err err;
	unsigned long quorum = 0;   /* 0: not given */
	size_t nw = 0;
	int argi, have_quorum, r;
	const struct cliopt opts[] = { CLIOPT_STR("db", &db), CLIOPT_STR("proof", &proofp), CLIOPT_STR("pub", &pubp),
		CLIOPT_STR("identifier", &identifier), CLIOPT_LIST("witness", &wits),
		CLIOPT_UINT("quorum", &quorum, 1, RECEIPT_WITNESS_MAX), CLIOPT_STR("log", &logp),
		CLIOPT_STR("batch", &batch), CLIOPT_STR("out", &outp), CLIOPT_END };

	if (cliopt_parse(argc, argv, receipt_usage, receipt_help, opts, &argi, &r))
		return r;
	have_quorum = quorum > 0;
	for (nw = 0; nw < wits.n; nw++) {
		cg_err_clear(&err);
		if (note_parse_cosig_key(witv[nw], wit[nw].name, wit[nw].pub, &err) != 0)
			return cli_usage(receipt_usage, err.msg);
	}
	if (argi >= argc || (strcmp(argv[argi], "attach") != 0 && strcmp(argv[argi], "verify") != 0 &&
	    strcmp(argv[argi], "prove") != 0))
		return cli_usage(receipt_usage, "unknown or missing receipt command (prove, attach, verify)");
	sub = argv[argi++];
	if (strcmp(sub, "prove") == 0) {
		if (argi != argc)
			return cli_usage(receipt_usage, "unexpected argument");
		if (db == NULL) return cli_missing(receipt_usage, "--db");
		if (batch == NULL) return cli_missing(receipt_usage, "--batch");
		if (outp == NULL) return cli_missing(receipt_usage, "--out");
		return receipt_prove_cmd(db, batch, outp, ctx);
	}
	if (strcmp(sub, "attach") == 0) {
		if ((db == NULL) == (proofp == NULL))
			return cli_usage(receipt_usage, "attach takes one of --db or --proof");
		if (argi >= argc)
			return cli_usage(receipt_usage, "no RECEIPT to attach to");
		return receipt_attach_cmd(db, proofp, argv + argi, argc - argi, ctx);
	}
	if (argi + 1 != argc)
		return cli_usage(receipt_usage, "verify takes one RECEIPT");
	if (pubp == NULL) return cli_missing(receipt_usage, "--pub");
	if (identifier == NULL) return cli_missing(receipt_usage, "--identifier");
	if (have_quorum != (nw > 0))
		return cli_usage(receipt_usage, "--witness and --quorum go together");
	if (quorum > nw)
		return cli_usage(receipt_usage, "--quorum exceeds the number of --witness keys");
	return receipt_verify_cmd(argv[argi], pubp, identifier, wit, nw, (size_t)quorum, logp, ctx);
}
