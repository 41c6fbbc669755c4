/* outcome.c - see outcome.h */
#include "gateway/outcome.h"

#include <string.h>
#include <sodium.h>

#include "crypto/seal.h"
#include "gateway/ingest.h"
#include "proto/batch.h"

/* Open one row of the walk's statement into *o (the Outcome decoded, checked, freed). */
static int
outcome_open(struct store *st, const struct keyfile_key *storage, sqlite3_stmt *q, struct outcome_seen *o,
    struct cg_err *err)
{
	unsigned char key[32], ad[SEAL_AD_MAX], pt[256];
	const unsigned char *ct = sqlite3_column_blob(q, 5);
	size_t ad_len, ct_len = (size_t)sqlite3_column_bytes(q, 5);
	long long id = (long long)sqlite3_column_int64(q, 9);
	uint64_t idx = (uint64_t)sqlite3_column_int64(q, 0);
	Crossgate__Outcome *oc = NULL;
	int c, r;

	memset(o, 0, sizeof(*o));
	o->partner = (const char *)sqlite3_column_text(q, 8);
	for (c = 1; c <= 2; c++)
		if (sqlite3_column_type(q, c) == SQLITE_BLOB && sqlite3_column_bytes(q, c) == TOKEN_LEN) {
			o->tokens[o->ntokens].kind = c == 1 ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
			memcpy(o->tokens[o->ntokens++].value, sqlite3_column_blob(q, c), TOKEN_LEN);
		}
	o->consent_bits = (uint32_t)sqlite3_column_int64(q, 3);
	o->consent_at = sqlite3_column_int64(q, 4);
	if (o->partner == NULL || o->ntokens == 0 || ct_len < SEAL_TAG_LEN || ct_len > SEAL_TAG_LEN + sizeof(pt) ||
	    sqlite3_column_bytes(q, 6) != 16)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: stored outcome %lld is malformed", store_path(st), id);
	if ((r = ingest_unwrap_batch_key(storage, sqlite3_column_blob(q, 6), sqlite3_column_blob(q, 7),
	    (size_t)sqlite3_column_bytes(q, 7), key, err)) != 0)
		return cg_err_prefix(err, "%s: outcome %lld", store_path(st), id);
	if ((r = seal_ad_build(ad, &ad_len, sqlite3_column_blob(q, 6), o->partner, idx, o->consent_bits,
	    o->consent_at, o->tokens, o->ntokens)) != 0)
		r = cg_err_set(err, r, "outcome %lld: cannot build associated data", id);
	else if (seal_open_record(key, idx, ad, ad_len, ct, ct_len, pt, err) != 0)
		/* tokens, consent or position edited in the database fail here: the AEAD binds them */
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: stored outcome %lld does not verify (database altered?)",
		    store_path(st), id);
	else if ((oc = crossgate__outcome__unpack(NULL, ct_len - SEAL_TAG_LEN, pt)) == NULL)
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: stored outcome %lld: malformed", store_path(st), id);
	else if ((r = batch_outcome_check(oc, err)) != 0)
		cg_err_prefix(err, "%s: stored outcome %lld", store_path(st), id);
	else {
		o->converted = oc->converted;
		o->value_cents = oc->value_cents;
		o->at = oc->at;
	}
	if (oc != NULL)
		crossgate__outcome__free_unpacked(oc, NULL);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(pt, sizeof(pt));
	return r;
}

int
outcome_each(struct store *st, const struct keyfile_key *storage, const char *experiment,
    int (*fn)(void *ctx, const struct outcome_seen *o, struct cg_err *err), void *ctx, struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	struct outcome_seen o;
	int r = 0, rc;

	if (sqlite3_prepare_v2(store_db(st), "SELECT o.idx, o.email_token, o.phone_token, o.consent_bits, "
	    "o.consent_at, o.payload, b.batch_id, b.wrapped_key, o.partner, o.id FROM outcomes o "
	    "JOIN batches b ON b.id = o.batch WHERE o.experiment = ?1 ORDER BY o.id", -1, &q, NULL) != SQLITE_OK)
		return cg_err_set(err, CG_ERR_DB, "%s: read outcomes: %s", store_path(st), sqlite3_errmsg(store_db(st)));
	sqlite3_bind_text(q, 1, experiment, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW)
		if ((r = outcome_open(st, storage, q, &o, err)) == 0)
			r = fn(ctx, &o, err);
	if (r == 0 && rc != SQLITE_DONE)
		r = cg_err_set(err, CG_ERR_DB, "%s: read outcomes: %s", store_path(st), sqlite3_errmsg(store_db(st)));
	sodium_memzero(&o, sizeof(o));
	sqlite3_finalize(q);
	return r;
}
