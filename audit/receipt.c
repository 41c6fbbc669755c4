/* receipt.c - see receipt.h */
#include "audit/receipt.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "audit/note.h"
#include "base/normalize.h"
#include "crypto/merkle.h"
#include "crypto/receipt.h"

struct receipt_find {
	const unsigned char *batch_id;
	uint64_t seq;
	int found;
};

static int
receipt_find_cb(uint64_t seq, const unsigned char *event, size_t len, int erased, void *arg)
{
	struct receipt_find *rf = arg;
	Crossgate__AuditEvent *ev;

	if (erased || (ev = crossgate__audit_event__unpack(NULL, len, event)) == NULL)
		return 0;
	if (ev->batch_id.len == 16 && memcmp(ev->batch_id.data, rf->batch_id, 16) == 0 &&
	    ev->receipt_root.len == MERKLE_HASH_LEN && ev->outcome != NULL && strcmp(ev->outcome, "ok") == 0) {
		rf->seq = seq;
		rf->found = 1;
	}
	crossgate__audit_event__free_unpacked(ev, NULL);
	return rf->found;
}

int
audit_receipt_prove(struct store *st, const unsigned char batch_id[16], unsigned char **proof, size_t *len,
    struct cg_err *err)
{
	struct receipt_find rf = { batch_id, 0, 0 };
	char hex[33];
	int r;

	*proof = NULL;
	*len = 0;
	if ((r = audit_walk(st, 0, receipt_find_cb, &rf, err)) < 0)
		return r;
	if (!rf.found) {
		sodium_bin2hex(hex, sizeof(hex), batch_id, 16);
		return cg_err_set(err, CG_ERR_NOTFOUND, "the log has no committed event of batch %s with a receipt root "
		    "(not ingested yet, or packed without receipts)", hex);
	}
	return audit_prove(st, rf.seq, proof, len, err);
}

/* The proof's event, unpacked, if it commits the receipt's batch; CG_ERR_VERIFY otherwise. */
static int
receipt_event(const Crossgate__Receipt *r, const struct audit_proof *p, Crossgate__AuditEvent **out,
    struct cg_err *err)
{
	Crossgate__AuditEvent *ev;

	*out = NULL;
	if (p->erased || p->event == NULL)
		return cg_err_set(err, CG_ERR_VERIFY, "the proven audit event was erased for retention: its receipt "
		    "root can no longer be read");
	if ((ev = crossgate__audit_event__unpack(NULL, p->event_len, p->event)) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "the proven audit event does not parse");
	if (ev->batch_id.len != 16 || r->batch_id.len != 16 || memcmp(ev->batch_id.data, r->batch_id.data, 16) != 0) {
		crossgate__audit_event__free_unpacked(ev, NULL);
		return cg_err_set(err, CG_ERR_VERIFY, "the audit proof is for another batch than the receipt's");
	}
	if (ev->partner_id == NULL || r->partner_id == NULL || strcmp(ev->partner_id, r->partner_id) != 0 ||
	    ev->outcome == NULL || strcmp(ev->outcome, "ok") != 0 || ev->receipt_root.len != MERKLE_HASH_LEN) {
		crossgate__audit_event__free_unpacked(ev, NULL);
		return cg_err_set(err, CG_ERR_VERIFY, "the audit event does not commit this partner's batch with a "
		    "receipt root");
	}
	*out = ev;
	return 0;
}

static int
receipt_normalize(const Crossgate__Receipt *r, const char *identifier, char out[NORMALIZE_EMAIL_MAX + 1],
    struct cg_err *err)
{
	struct normalize_email_rules er;
	struct cg_err sub;
	int rc;

	cg_err_clear(&sub);
	if (r->id_kind == CROSSGATE__ID_KIND__ID_KIND_EMAIL) {
		memset(&er, 0, sizeof(er));
		er.gmail_dots = r->gmail_dots;
		er.plus_tags = r->plus_tags;
		er.plus_tags_all = r->plus_tags_all;
		er.googlemail = r->googlemail;
		rc = normalize_email(identifier, strlen(identifier), &er, out, NORMALIZE_EMAIL_MAX + 1, &sub);
	} else if (r->id_kind == CROSSGATE__ID_KIND__ID_KIND_PHONE) {
		rc = normalize_phone(identifier, strlen(identifier), r->default_country ? r->default_country : "",
		    out, NORMALIZE_EMAIL_MAX + 1, &sub);
	} else {
		return cg_err_set(err, CG_ERR_FORMAT, "the receipt names no identifier kind");
	}
	if (rc != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "the identifier is not a valid %s, which this receipt is for: %s",
		    r->id_kind == CROSSGATE__ID_KIND__ID_KIND_EMAIL ? "email" : "phone number", sub.msg);
	return 0;
}

/*
 * Against a copy of the gateway's current log: it verifies, and a
 * consistency proof shows it extends the receipt's checkpoint, so the
 * event the receipt proves is still leaf p->index, unchanged.
 */
static int
receipt_check_log(struct store *log, const struct keyfile_key *pub, const struct checkpoint *cp, struct cg_err *err)
{
	struct audit_report rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	if ((rc = audit_verify(log, pub, &rep, err)) != 0 || (rc = audit_verify_extends(log, cp, &rep, err)) != 0)
		return cg_err_prefix(err, "the gateway's current log does not extend the receipt's checkpoint "
		    "(rewritten or truncated after the receipt was issued)");
	return 0;
}

int
audit_receipt_verify(const Crossgate__Receipt *r, const struct keyfile_key *pub, const char *identifier,
    const struct audit_witness *w, size_t nw, size_t quorum, struct store *log, struct audit_receipt_result *res,
    struct cg_err *err)
{
	struct audit_proof *p = NULL;
	Crossgate__AuditEvent *ev = NULL;
	struct checkpoint cp;
	unsigned char leaf[RECEIPT_LEAF_LEN], entry[MERKLE_HASH_LEN], path[MERKLE_PROOF_MAX][MERKLE_HASH_LEN];
	char norm[NORMALIZE_EMAIL_MAX + 1];
	size_t i, j;
	int rc;

	memset(res, 0, sizeof(*res));
	if (r->nonce.len != RECEIPT_NONCE_LEN || r->batch_id.len != 16 || r->n_path > MERKLE_PROOF_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "the receipt is malformed (nonce, batch id or path)");
	for (i = 0; i < r->n_path; i++)
		if (r->path[i].len != MERKLE_HASH_LEN)
			return cg_err_set(err, CG_ERR_FORMAT, "the receipt's path hash %zu is not 32 bytes", i);
	if (r->audit_proof.len == 0)
		return cg_err_set(err, CG_ERR_VERIFY, "the receipt has no audit proof yet: the partner attaches it once "
		    "the gateway has ingested the batch ('crossgate receipt attach')");
	/* 1. The gateway's signed log holds the batch's event. */
	if ((rc = audit_proof_parse(r->audit_proof.data, r->audit_proof.len, &p, err)) != 0 ||
	    (rc = audit_proof_verify(p, pub, &cp, err)) != 0) {
		cg_err_prefix(err, "the audit proof does not verify with this gateway key");
		goto out;
	}
	if ((rc = receipt_event(r, p, &ev, err)) != 0)
		goto out;
	/* 2. This identifier's leaf is in the tree whose root the event commits. */
	if ((rc = receipt_normalize(r, identifier, norm, err)) != 0)
		goto out;
	receipt_leaf(r->nonce.data, (uint32_t)r->id_kind, norm, strlen(norm), leaf);
	if (receipt_entry_hash(leaf, r->withdrawn_at, (const char *const *)r->withdrawn, r->n_withdrawn, entry) != 0) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "the receipt names too many or too long purposes");
		goto out;
	}
	for (i = 0; i < r->n_path; i++)
		memcpy(path[i], r->path[i].data, MERKLE_HASH_LEN);
	if (merkle_verify_inclusion(entry, r->leaf_index, r->tree_size, (const unsigned char (*)[MERKLE_HASH_LEN])path,
	    r->n_path, ev->receipt_root.data, err) != 0) {
		rc = cg_err_set(err, CG_ERR_VERIFY, "this identifier, with the receipt's nonce and what it says was "
		    "withdrawn, is not in the batch's receipt tree that the gateway logged (another user's identifier, "
		    "or a receipt changed after it was issued)");
		goto out;
	}
	/* 3. Witnesses: the checkpoint is not one the gateway showed only to this user. */
	for (i = 0; i < nw; i++) {
		size_t tl;
		uint64_t ts;
		for (j = 0; j < i && strcmp(w[j].name, w[i].name) != 0; j++)
			;
		if (j < i)
			continue;   /* a witness named twice counts once */
		if (note_verify_cosignature(p->checkpoint, strlen(p->checkpoint), w[i].name, w[i].pub, &tl, &ts,
		    err) == 0)
			res->witnesses++;
	}
	if (res->witnesses < quorum) {
		rc = cg_err_set(err, CG_ERR_VERIFY, "only %zu of the %zu witnesses cosigned the receipt's checkpoint; "
		    "the quorum is %zu", res->witnesses, nw, quorum);
		goto out;
	}
	/* 4. Optionally, the gateway's log today still holds what the receipt proves. */
	if (log != NULL) {
		if ((rc = receipt_check_log(log, pub, &cp, err)) != 0)
			goto out;
		res->log_checked = 1;
	}
	res->seq = p->index;
	res->log_size = cp.size;
	rc = 0;
out:
	sodium_memzero(norm, sizeof(norm));
	if (ev != NULL)
		crossgate__audit_event__free_unpacked(ev, NULL);
	audit_proof_free(p);
	return rc;
}
