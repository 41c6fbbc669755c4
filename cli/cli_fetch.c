/*
 * cli_fetch.c - crossgate audit fetch: copy a gateway's audit log (events and
 * the checkpoints the gateway signed) into a local database, for offline
 * `crossgate audit verify --db LOCAL.db --pub GATEWAY_SIGN_PUB`.
 *
 * Fetching again continues from the local copy's size: nothing already copied
 * is fetched twice, and verify checks the old events against the new signed
 * checkpoints, so a gateway that rewrote its past is caught.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/client.h"
#include "audit/audit.h"
#include "cli/cli.h"
#include "cli/cliopt.h"
#include "store/store.h"
#include "net/rpc.h"
#include "base/outfile.h"

/*
 * An erased event arrives as its leaf hash and the event that erased it; a
 * cosignature as its line, stored unchecked (verify --witness checks it).
 */
static int
fetch_import(struct store *st, const Crossgate__AuditRecord *ar, struct cg_err *err)
{
	struct audit_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.seq = ar->seq;
	rec.event = ar->event.data;
	rec.len = ar->event.len;
	rec.checkpoint = ar->checkpoint;
	rec.erased = ar->erased;
	rec.erased_by = ar->erased_by;
	rec.leaf = ar->erased ? ar->leaf_hash.data : NULL;
	return audit_import(st, &rec, err);
}

static int
fetch_cosig(struct store *st, const Crossgate__AuditCosignature *ac, struct cg_err *err)
{
	struct audit_cosig c;

	c.size = ac->size;
	c.witness = ac->witness;
	c.key_id = ac->key_id;
	c.time = ac->time;
	c.line = ac->line;
	return audit_cosig_put(st, &c, err);
}

static const char fetch_usage[] =
	"crossgate audit fetch " CLI_CLIENT_USAGE "\n"
	"                      --out LOCAL.db [--pub GATEWAY_SIGN_PUB]\n"
	"       crossgate audit fetch " CLI_CLIENT_USAGE "\n"
	"                      --consistency OLD [--to NEW] --out PROOF";

static const char fetch_help[] =
	"Copy the gateway's audit log (every event and its signed checkpoint) into\n"
	"LOCAL.db over mutual TLS, with an auditor's certificate.  An existing copy is\n"
	"extended from where it ends.  Then run 'crossgate audit verify --db LOCAL.db\n"
	"--pub GATEWAY_SIGN_PUB' (or give --pub here to verify right away): nothing\n"
	"secret is needed, and nothing the gateway sends is trusted until verified.\n"
	"\n"
	"--consistency OLD asks for a consistency proof file instead (as 'audit prove\n"
	"--consistency' writes it): the tree of size NEW (default: the latest) extends\n"
	"the tree of size OLD.  Check it with 'crossgate audit verify-proof PROOF --pub\n"
	"GATEWAY_SIGN_PUB --since SAVED_CHECKPOINT': no copy of the log is needed.\n";

/* The consistency proof file the gateway makes (AuditConsistencyRequest), written to `out` whole or not at all. */
static int
fetch_consistency(const struct client_opts *co, uint64_t old_size, uint64_t new_size, const char *out, size_t *len,
    struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__AuditConsistencyRequest cr = CROSSGATE__AUDIT_CONSISTENCY_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct outfile of;
	int r;

	memset(&of, 0, sizeof(of));
	*len = 0;
	cr.old_size = old_size;
	cr.new_size = new_size;
	req.op_case = CROSSGATE__REQUEST__OP_AUDIT_CONSISTENCY;
	req.audit_consistency = &cr;
	if ((r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_AUDIT_CONSISTENCY, "a consistency request", NULL,
	    &resp, err)) != 0)
		return r;
	if ((r = outfile_open(&of, out, 0644, err)) != 0)
		goto out;
	if (fwrite(resp->audit_consistency->proof.data, 1, resp->audit_consistency->proof.len, of.f) !=
	    resp->audit_consistency->proof.len) {
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", out, strerror(errno));
		goto out;
	}
	if ((r = outfile_commit(&of, err)) != 0)
		goto out;
	*len = resp->audit_consistency->proof.len;
out:
	outfile_abort(&of);
	crossgate__response__free_unpacked(resp, NULL);
	return r;
}

int
cli_fetch_copy(const struct client_opts *co, struct store *st, uint64_t from, uint64_t *got, uint64_t *remote_size,
    struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__AuditFetchRequest fr = CROSSGATE__AUDIT_FETCH_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct client *c = NULL;
	uint64_t count, cosigs, i;
	int r, in_txn = 0;

	*got = 0;
	fr.from = from;
	fr.cosignatures = 1;
	req.op_case = CROSSGATE__REQUEST__OP_AUDIT_FETCH;
	req.audit_fetch = &fr;
	if ((r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_AUDIT_FETCH, "an audit fetch", &c, &resp, err)) != 0)
		return r;
	count = resp->audit_fetch->count;
	cosigs = resp->audit_fetch->cosignatures;
	*remote_size = resp->audit_fetch->size;
	crossgate__response__free_unpacked(resp, NULL);
	resp = NULL;
	/* One transaction: a fetch cut short leaves the copy as it was. */
	if ((r = store_begin(st, err)) != 0)
		goto out;
	in_txn = 1;
	for (i = 0; i < count; i++) {
		if ((r = client_recv(c, &resp, err)) != 0)
			goto out;
		if (resp->result_case != CROSSGATE__RESPONSE__RESULT_AUDIT_RECORD) {
			r = cg_err_set(err, CG_ERR_FORMAT, "gateway: expected audit record %llu of %llu",
			    (unsigned long long)i + 1, (unsigned long long)count);
			goto out;
		}
		if (resp->audit_record->seq != from + i) {
			r = cg_err_set(err, CG_ERR_FORMAT, "gateway: audit record %llu arrived out of order",
			    (unsigned long long)resp->audit_record->seq);
			goto out;
		}
		if ((r = fetch_import(st, resp->audit_record, err)) != 0)
			goto out;
		crossgate__response__free_unpacked(resp, NULL);
		resp = NULL;
	}
	for (i = 0; i < cosigs; i++) {
		if ((r = client_recv(c, &resp, err)) != 0)
			goto out;
		if (resp->result_case != CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGNATURE) {
			r = cg_err_set(err, CG_ERR_FORMAT, "gateway: expected cosignature %llu of %llu",
			    (unsigned long long)i + 1, (unsigned long long)cosigs);
			goto out;
		}
		if ((r = fetch_cosig(st, resp->audit_cosignature, err)) != 0)
			goto out;
		crossgate__response__free_unpacked(resp, NULL);
		resp = NULL;
	}
	if ((r = store_commit(st, err)) != 0)
		goto out;
	in_txn = 0;
	*got = count;
	r = 0;
out:
	if (in_txn)
		store_rollback(st);
	if (resp != NULL)
		crossgate__response__free_unpacked(resp, NULL);
	client_close(c);
	return r;
}

int
cli_audit_fetch(int argc, char **argv, struct cli_ctx *ctx)
{
	struct client_opts co;
	struct keyfile_key *pub = NULL;
	struct store *st = NULL;
	struct cg_err err;
	const char *out = NULL, *pubp = NULL, *oldp = NULL, *top = NULL;
	uint64_t from = 0, got = 0, remote = 0, old_size = 0, new_size = 0;
	size_t plen;
	unsigned long long v;
	const struct cliopt opts[] = { CLIOPT_CLIENT(&co), CLIOPT_REQ("out", &out), CLIOPT_STR("pub", &pubp),
		CLIOPT_STR("consistency", &oldp), CLIOPT_STR("to", &top), CLIOPT_END };
	int r = 1, first = 1;

	memset(&co, 0, sizeof(co));
	if (cliopt_parse(argc, argv, fetch_usage, fetch_help, opts, NULL, &r))
		return r;
	r = 1;
	if (top != NULL && oldp == NULL)
		return cli_usage(fetch_usage, "--to goes with --consistency");
	if (oldp != NULL) {
		if (pubp != NULL)
			return cli_usage(fetch_usage, "--pub goes with a copy; check the proof with 'audit verify-proof'");
		if (cliopt_number("consistency", oldp, 0, ULONG_MAX, &v) != 0)
			return CLI_USAGE;
		old_size = v;
		if (top != NULL && cliopt_number("to", top, 0, ULONG_MAX, &v) != 0)
			return CLI_USAGE;
		new_size = top != NULL ? v : 0;
		if (old_size == 0 || (top != NULL && new_size < old_size))
			return cli_usage(fetch_usage, "--consistency and --to must be tree sizes, 0 < OLD <= NEW");
		cg_err_clear(&err);
		if (fetch_consistency(&co, old_size, new_size, out, &plen, &err) != 0) {
			cli_error("consistency proof fetch failed: %s", err.msg);
			return 1;
		}
		if (ctx->out)
			fprintf(ctx->out, "%s: the consistency proof from tree size %llu (%zu bytes); check it with "
			    "'crossgate audit verify-proof'\n", out, (unsigned long long)old_size, plen);
		return 0;
	}
	if (pubp != NULL && cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0)
		goto out;
	cg_err_clear(&err);
	if (store_open(out, STORE_OPEN_CREATE, &st, &err) != 0 || audit_schema(st, &err) != 0 ||
	    audit_stored_size(st, &from, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	first = from == 0;
	if (cli_fetch_copy(&co, st, from, &got, &remote, &err) != 0) {
		cli_error("audit fetch failed: %s", err.msg);
		goto out;
	}
	ctx->fetched_events = got;
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu events fetched%s (%llu in the copy; the gateway's log had %llu)\n", out,
		    (unsigned long long)got, first ? "" : " after the ones already copied",
		    (unsigned long long)(from + got), (unsigned long long)remote);
	if (pub != NULL) {
		if (audit_verify(st, pub, &ctx->audit, &err) != 0) {
			ctx->audit_ok = 0;
			cli_error("audit log verification FAILED: %s", err.msg);
			goto out;
		}
		ctx->audit_ok = 1;
		if (ctx->out)
			fprintf(ctx->out, "audit log ok: %llu events, %llu signed checkpoints; latest checkpoint:\n%s",
			    (unsigned long long)ctx->audit.events, (unsigned long long)ctx->audit.checkpoints,
			    ctx->audit.latest_checkpoint);
	}
	r = 0;
out:
	store_close(st);
	keyfile_free(pub);
	return r;
}

int
cli_submit_cosignature(const struct client_opts *co, uint64_t size, const char *vkey, const char *line,
    struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__AuditCosignRequest cr = CROSSGATE__AUDIT_COSIGN_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	int r;

	cr.size = size;
	cr.witness_key = (char *)vkey;
	cr.line = (char *)line;
	req.op_case = CROSSGATE__REQUEST__OP_AUDIT_COSIGN;
	req.audit_cosign = &cr;
	if ((r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGN, "a cosignature", NULL, &resp, err)) != 0)
		return r;
	if (resp->audit_cosign->size != size)
		r = cg_err_set(err, CG_ERR_FORMAT, "gateway: unexpected answer to a cosignature");
	crossgate__response__free_unpacked(resp, NULL);
	return r;
}
