/* ingest.c - see ingest.h */
#include "gateway/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "base/workers.h"
#include "crypto/merkle.h"
#include "crypto/receipt.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "gateway/erase.h"
#include "gateway/experiment.h"
#include "proto/arena.h"
#include "proto/batch.h"

int
ingest_wrap_batch_key(const struct keyfile_key *storage, const unsigned char batch_id[16],
    const unsigned char key[32], unsigned char wrapped[INGEST_WRAPPED_KEY_LEN])
{
	unsigned char sub[32];
	struct cg_err ignored;
	int r;

	if (storage->agent != NULL)
		return storage->agent->storage_wrap(storage->agent->ctx, batch_id, key, wrapped, &ignored);
	seal_subkey(storage->key, batch_id, 16, sub);
	r = seal_record(sub, 0, batch_id, 16, key, 32, wrapped);
	sodium_memzero(sub, sizeof(sub));
	return r;
}

int
ingest_unwrap_batch_key(const struct keyfile_key *storage, const unsigned char batch_id[16],
    const unsigned char *wrapped, size_t len, unsigned char key[32], struct cg_err *err)
{
	unsigned char sub[32];
	int r;

	if (len != INGEST_WRAPPED_KEY_LEN)
		return cg_err_set(err, CG_ERR_FORMAT, "stored batch key of %zu bytes", len);
	if (storage->agent != NULL)
		return storage->agent->storage_unwrap(storage->agent->ctx, batch_id, wrapped, len, key, err);
	seal_subkey(storage->key, batch_id, 16, sub);
	r = seal_open_record(sub, 0, batch_id, 16, wrapped, len, key, err);
	sodium_memzero(sub, sizeof(sub));
	if (r != 0)
		return cg_err_set(err, r, "stored batch key does not open with this storage key");
	return 0;
}

/* Check one decrypted field against the partner's schema. */
static int
ingest_field_check(const struct policy_partner *pp, const Crossgate__Field *f, uint64_t idx,
    unsigned char *seen, size_t *cursor, struct cg_err *err)
{
	const struct policy_column *c = NULL;
	size_t i, j;

	/* Agents write fields in schema order: look where the last one was found first. */
	for (j = 0; j < pp->ncolumns; j++) {
		i = (*cursor + j) % pp->ncolumns;
		if (strcmp(pp->columns[i].name, f->name) == 0) {
			c = &pp->columns[i];
			*cursor = i + 1;
			break;
		}
	}
	if (c == NULL || !policy_column_shared(c, -1))
		return cg_err_set(err, CG_ERR_POLICY, "record %llu: field '%.64s' is not a shareable column of "
		    "partner '%s' in the policy", (unsigned long long)idx, f->name, pp->id);
	if (seen[i])
		return cg_err_set(err, CG_ERR_FORMAT, "record %llu: field '%s' appears twice",
		    (unsigned long long)idx, c->name);
	seen[i] = 1;
	if (c->type == POLICY_TYPE_INT) {
		if (f->value_case != CROSSGATE__FIELD__VALUE_INT_VALUE)
			return cg_err_set(err, CG_ERR_FORMAT, "record %llu: field '%s' must be an integer",
			    (unsigned long long)idx, c->name);
		if ((c->has_min && f->int_value < c->min) || (c->has_max && f->int_value > c->max))
			return cg_err_set(err, CG_ERR_POLICY, "record %llu: field '%s' is out of the policy's "
			    "range", (unsigned long long)idx, c->name);
		return 0;
	}
	if (f->value_case != CROSSGATE__FIELD__VALUE_STR_VALUE)
		return cg_err_set(err, CG_ERR_FORMAT, "record %llu: field '%s' must be a string",
		    (unsigned long long)idx, c->name);
	if (c->type == POLICY_TYPE_CATEGORY) {
		for (i = 0; i < c->nvalues; i++)
			if (strcmp(c->values[i], f->str_value) == 0)
				return 0;
		return cg_err_set(err, CG_ERR_POLICY, "record %llu: field '%s' is not one of the category's "
		    "values", (unsigned long long)idx, c->name);
	}
	return 0;
}

/* What the withdrawal and revocation records of one batch did, for its audit event. */
struct ingest_tally {
	uint64_t withdrawn;                  /* withdrawal records without match: the user is erased */
	uint64_t narrowed;                   /* withdrawal records keeping match: older, wider records erased */
	uint64_t receipts;                   /* records with a receipt leaf */
	struct merkle_frontier tree;         /* over the receipt leaves, in record order */
	struct erase_stager *stager;         /* opened at the batch's first withdrawal or revocation record */
	char outcome_exp[65];                /* the experiment an outcome of this batch was last accepted for */
};

/* Stage the record's tokens for erasure up to erase_upto, with tombstones dated revoked_at. */
static int
ingest_erase(struct store *st, const struct keyfile_key *storage, const char *partner, struct ingest_tally *tally,
    const struct token *toks, size_t n, int64_t revoked_at, int64_t erase_upto, struct cg_err *err)
{
	int r;

	if (tally->stager == NULL && (r = erase_stager_open(st, storage, partner, &tally->stager, err)) != 0)
		return r;
	return erase_stager_add(tally->stager, toks, n, revoked_at, erase_upto, err);
}

/*
 * A receipt's tree entry as the gateway vouches for it (crypto/receipt.h):
 * the partner's leaf, the withdrawal's consent_at, and the names of the
 * purposes it withdrew, in the policy the gateway runs.
 */
static int
ingest_receipt_entry(const struct policy *pol, const unsigned char leaf[RECEIPT_LEAF_LEN], int64_t at,
    uint32_t withdrawn, unsigned char out[MERKLE_HASH_LEN])
{
	const char *names[32];
	size_t i, n = 0;

	for (i = 0; i < pol->npurposes && i < 32; i++)
		if (withdrawn & (1u << i))
			names[n++] = pol->purposes[i];
	return receipt_entry_hash(leaf, at, names, n, out);
}

/*
 * The sealed Withdrawal of a withdrawal or revocation record (ciphertext
 * opened with the record's associated data).  What it says was withdrawn
 * must be what the record does: with `match` gone (a revocation, or a
 * withdrawal whose consent lacks it), `match` is withdrawn; a narrowing
 * withdraws something, never `match`, nothing the user still consents to.
 * Its receipt leaf gives the entry the gateway vouches for (*has_entry set),
 * which the writer adds to the batch's receipt tree in record order.  A
 * revocation record may be empty (no receipt).  Any thread may run it.
 */
static int
ingest_withdrawal_open(const struct policy *pol, const unsigned char batch_key[32], const Crossgate__SealedRecord *rec,
    const unsigned char *ad, size_t ad_len, int erases, struct pb_arena *arena, unsigned char entry[MERKLE_HASH_LEN],
    int *has_entry, struct cg_err *err)
{
	Crossgate__Withdrawal *w;
	unsigned char pt[128];
	unsigned long long idx = (unsigned long long)rec->index;
	uint32_t match_bit = 1u << policy_purpose_bit(pol, "match");
	size_t pt_len;
	int r = 0;

	*has_entry = 0;
	if (rec->ciphertext.len < SEAL_TAG_LEN || rec->ciphertext.len > SEAL_TAG_LEN + sizeof(pt))
		return cg_err_set(err, CG_ERR_FORMAT, "record %llu: withdrawal of %zu bytes", idx, rec->ciphertext.len);
	pt_len = rec->ciphertext.len - SEAL_TAG_LEN;
	if ((r = seal_open_record(batch_key, rec->index, ad, ad_len, rec->ciphertext.data, rec->ciphertext.len, pt,
	    err)) != 0)
		return cg_err_prefix(err, "record %llu", idx);
	pb_arena_reset(arena);
	if ((w = crossgate__withdrawal__unpack(&arena->allocator, pt_len, pt)) == NULL)
		return cg_err_set(err, arena->failed ? CG_ERR_NOMEM : CG_ERR_FORMAT, "record %llu: malformed "
		    "withdrawal", idx);
	if (pol->npurposes < 32 && (w->withdrawn >> pol->npurposes) != 0)
		r = cg_err_set(err, CG_ERR_POLICY, "record %llu: withdraws a purpose the policy does not have", idx);
	else if (w->receipt_leaf.len != 0 && w->receipt_leaf.len != MERKLE_HASH_LEN)
		r = cg_err_set(err, CG_ERR_FORMAT, "record %llu: receipt leaf of %zu bytes", idx, w->receipt_leaf.len);
	else if (erases && w->withdrawn != 0 && !(w->withdrawn & match_bit))
		r = cg_err_set(err, CG_ERR_POLICY, "record %llu: erases the user but does not say 'match' is withdrawn",
		    idx);
	else if (!erases && (w->withdrawn == 0 || (w->withdrawn & (match_bit | rec->consent_bits)) != 0))
		r = cg_err_set(err, CG_ERR_POLICY, "record %llu: a narrowing must withdraw purposes the user no longer "
		    "has, never 'match'", idx);
	else if (erases && w->withdrawn == 0 && w->receipt_leaf.len != 0)
		r = cg_err_set(err, CG_ERR_POLICY, "record %llu: a receipt must say what was withdrawn", idx);
	else if (w->receipt_leaf.len == RECEIPT_LEAF_LEN) {
		if ((r = ingest_receipt_entry(pol, w->receipt_leaf.data, rec->consent_at, w->withdrawn, entry)) != 0)
			r = cg_err_set(err, r, "record %llu: a purpose name too long for a receipt", idx);
		else
			*has_entry = 1;
	}
	pb_arena_reset(arena);
	return r;
}

/* The stored row of a record (or an outcome): its tokens and consent, its payload kept as sealed by the partner. */
static void
ingest_store_row(const Crossgate__BatchHeader *hdr, int64_t batch_row, const Crossgate__SealedRecord *rec,
    const unsigned char *email, const unsigned char *phone, struct store_record *sr)
{
	memset(sr, 0, sizeof(*sr));
	sr->batch = batch_row;
	sr->partner = hdr->partner_id;
	sr->idx = rec->index;
	sr->email_token = email;
	sr->phone_token = phone;
	sr->consent_bits = rec->consent_bits;
	sr->consent_at = rec->consent_at;
	sr->payload = rec->ciphertext.data;
	sr->payload_len = rec->ciphertext.len;
}

/*
 * One record of an outcome batch (PROTOCOL.md §5.11): the user's consent as
 * the partner last sent it must include match; the Outcome opens under the
 * data records' associated data and obeys batch_outcome_check; a user the
 * partner revoked is skipped as a data record would be.  Kept sealed, in the
 * outcomes table, never among the records.
 */
static int
ingest_outcome(struct store *st, const struct policy *pol, const Crossgate__BatchHeader *hdr,
    const unsigned char batch_key[32], int64_t batch_row, const Crossgate__SealedRecord *rec,
    const struct token *toks, int revoked, struct pb_arena *arena, int *skipped, struct ingest_tally *tally,
    struct cg_err *err)
{
	unsigned char ad[SEAL_AD_MAX], pt[256];
	const unsigned char *email = NULL, *phone = NULL;
	Crossgate__Outcome *oc;
	struct store_record sr;
	unsigned long long idx = (unsigned long long)rec->index;
	size_t ad_len, pt_len = 0, i;
	int r;

	if (rec->withdrawal)
		return cg_err_set(err, CG_ERR_FORMAT, "record %llu: a withdrawal in an outcome batch", idx);
	if (!(rec->consent_bits & (1u << policy_purpose_bit(pol, "match"))))
		return cg_err_set(err, CG_ERR_POLICY, "record %llu: no 'match' consent, so it must not have left "
		    "the partner", idx);
	if (rec->ciphertext.len < SEAL_TAG_LEN || rec->ciphertext.len > SEAL_TAG_LEN + sizeof(pt))
		return cg_err_set(err, CG_ERR_FORMAT, "record %llu: outcome of %zu bytes", idx, rec->ciphertext.len);
	for (i = 0; i < rec->n_tokens; i++) {
		if (toks[i].kind == TOKEN_KIND_EMAIL)
			email = rec->tokens[i]->value.data;
		else
			phone = rec->tokens[i]->value.data;
	}
	if ((r = seal_ad_build(ad, &ad_len, hdr->batch_id.data, hdr->partner_id, rec->index, rec->consent_bits,
	    rec->consent_at, toks, rec->n_tokens)) != 0)
		return cg_err_set(err, r, "record %llu: cannot build associated data", idx);
	pt_len = rec->ciphertext.len - SEAL_TAG_LEN;
	if ((r = seal_open_record(batch_key, rec->index, ad, ad_len, rec->ciphertext.data, rec->ciphertext.len, pt,
	    err)) != 0)
		return cg_err_prefix(err, "record %llu", idx);
	pb_arena_reset(arena);
	if ((oc = crossgate__outcome__unpack(&arena->allocator, pt_len, pt)) == NULL) {
		r = cg_err_set(err, arena->failed ? CG_ERR_NOMEM : CG_ERR_FORMAT, "record %llu: malformed outcome", idx);
		goto out;
	}
	if ((r = batch_outcome_check(oc, err)) != 0) {
		cg_err_prefix(err, "record %llu", idx);
		goto out;
	}
	/*
	 * Only the partner that ran the campaign reports its outcomes: another
	 * partner's could not be joined to the arms it was never given, and
	 * would let it steer the lift.  The whole batch is refused (the caller
	 * rolls back and audits the rejection).  One look-up per experiment a
	 * batch names, not per outcome.
	 */
	if (strcmp(tally->outcome_exp, oc->experiment) != 0) {
		char camp[65];

		if ((r = experiment_partner(st, oc->experiment, camp, err)) != 0) {
			if (r == CG_ERR_NOTFOUND)
				cg_err_set(err, CG_ERR_POLICY, "record %llu: an outcome for experiment '%.64s', which this "
				    "gateway does not have (crossgate experiment create)", idx, oc->experiment);
			r = r == CG_ERR_NOTFOUND ? CG_ERR_POLICY : r;
			goto out;
		}
		if (strcmp(camp, hdr->partner_id) != 0) {
			r = cg_err_set(err, CG_ERR_POLICY, "record %llu: experiment '%.64s' is run by partner '%s'; "
			    "partner '%.64s' may not send its outcomes", idx, oc->experiment, camp, hdr->partner_id);
			goto out;
		}
		snprintf(tally->outcome_exp, sizeof(tally->outcome_exp), "%s", oc->experiment);
	}
	/* its user's tombstone keeps it out (checked with its window's, ingest_window_revoked) */
	if (revoked) {
		*skipped = 1;
		r = 0;
		goto out;
	}
	ingest_store_row(hdr, batch_row, rec, email, phone, &sr);
	r = store_outcome_insert(st, &sr, oc->experiment, err);
out:
	pb_arena_reset(arena);   /* wipes the decoded outcome */
	sodium_memzero(pt, sizeof(pt));
	return r;
}

/* What checking a record needs, the same for every record of the batch; read-only, shared by the workers. */
struct ingest_ctx {
	const struct policy *pol;
	const struct policy_partner *pp;
	const Crossgate__BatchHeader *hdr;
	const unsigned char *batch_key;      /* the batch's, wiped by ingest_batch */
	const char *path;                    /* the batch's name in messages */
	uint32_t match_bit;
};

/* One thread's memory for a decrypted payload: wiped after each record. */
struct ingest_scratch {
	unsigned char *pt;
	size_t pt_cap;
	struct pb_arena arena;
};

/* ingest_record_check: a withdrawal or revocation record, checked, for the writer to stage its erasure. */
#define INGEST_ERASE 1
/* ingest_record_check: an outcome record, for the writer to check further (it looks up its experiment). */
#define INGEST_DEFER 2

/* A record as ingest_record_check left it, for the writer. */
struct ingest_checked {
	Crossgate__SealedRecord *rec;        /* decoded into its task's arena; NULL if decoding failed */
	int rc;                              /* 0: ready to store; INGEST_ERASE; INGEST_DEFER; or the record's error */
	int decode_failed;                   /* the error is the reader's (its message names the batch already) */
	struct token toks[2], key;           /* the record's tokens; the user's key (email, else phone) */
	size_t ntoks;
	const unsigned char *email, *phone;  /* into rec */
	unsigned char entry[MERKLE_HASH_LEN];   /* INGEST_ERASE: the receipt entry, if has_entry */
	int has_entry;
	int revoked;                         /* rc 0 or INGEST_DEFER: a tombstone keeps the user out */
};

/*
 * Every check of a record that needs no store: its tokens, its consent, and
 * its seal (the associated data binds batch, position, consent and tokens)
 * with what it holds: a data record's payload against the partner's schema,
 * a withdrawal or revocation record's Withdrawal.  Returns 0 when a data
 * record may be stored as it is, INGEST_ERASE for a checked withdrawal or
 * revocation record, INGEST_DEFER for an outcome (the writer goes on, in
 * ingest_record_store), or the error.  Any thread may run it.
 */
static int
ingest_record_check(const struct ingest_ctx *c, const Crossgate__SealedRecord *rec, struct ingest_scratch *s,
    struct ingest_checked *k, struct cg_err *err)
{
	const struct policy *pol = c->pol;
	const Crossgate__BatchHeader *hdr = c->hdr;
	unsigned char ad[SEAL_AD_MAX], seen[POLICY_COLUMNS_MAX];
	Crossgate__RecordPayload *payload = NULL;
	unsigned long long idx = (unsigned long long)rec->index;
	size_t ad_len, i, pt_len = 0, cursor = 0;
	int r;

	k->email = k->phone = NULL;
	k->ntoks = 0;
	if (rec->n_tokens == 0 || rec->n_tokens > 2)
		return cg_err_set(err, CG_ERR_FORMAT, "record %llu: %zu tokens (1 or 2 expected)", idx,
		    rec->n_tokens);
	for (i = 0; i < rec->n_tokens; i++) {
		const Crossgate__Token *t = rec->tokens[i];
		if (t->value.len != TOKEN_LEN)
			return cg_err_set(err, CG_ERR_FORMAT, "record %llu: token of %zu bytes", idx, t->value.len);
		if (t->kind == CROSSGATE__ID_KIND__ID_KIND_EMAIL && k->email == NULL)
			k->email = t->value.data;
		else if (t->kind == CROSSGATE__ID_KIND__ID_KIND_PHONE && k->phone == NULL)
			k->phone = t->value.data;
		else
			return cg_err_set(err, CG_ERR_FORMAT, "record %llu: unknown or repeated token kind", idx);
		k->toks[i].kind = (uint32_t)t->kind;
		memcpy(k->toks[i].value, t->value.data, TOKEN_LEN);
	}
	k->ntoks = rec->n_tokens;
	/*
	 * The user's key, as the join groups records (join.h): the email token,
	 * else the phone token.  Erasures, tombstones and the tombstone check
	 * go by the key alone, so that a phone another person gives too never
	 * erases or blocks that person's records.
	 */
	k->key.kind = k->email != NULL ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
	memcpy(k->key.value, k->email != NULL ? k->email : k->phone, TOKEN_LEN);
	k->has_entry = 0;
	if (hdr->kind == BATCH_KIND_REVOCATION) {
		/* A revocation record names a user by its tokens; its sealed payload is empty or a receipt. */
		if (rec->consent_bits != 0 || rec->withdrawal)
			return cg_err_set(err, CG_ERR_FORMAT, "record %llu: not a revocation record", idx);
		if ((r = seal_ad_build(ad, &ad_len, hdr->batch_id.data, hdr->partner_id, rec->index, 0,
		    rec->consent_at, k->toks, k->ntoks)) != 0)
			return cg_err_set(err, r, "record %llu: cannot build associated data", idx);
		if ((r = ingest_withdrawal_open(pol, c->batch_key, rec, ad, ad_len, 1, &s->arena, k->entry, &k->has_entry,
		    err)) != 0)
			return r;
		return INGEST_ERASE;
	}
	if (pol->npurposes < 32 && (rec->consent_bits >> pol->npurposes) != 0)
		return cg_err_set(err, CG_ERR_POLICY, "record %llu: consent names a purpose the policy does not "
		    "have", idx);
	if (hdr->kind == BATCH_KIND_OUTCOMES)
		return INGEST_DEFER;
	if (rec->withdrawal) {
		if ((r = seal_ad_build(ad, &ad_len, hdr->batch_id.data, hdr->partner_id, rec->index, rec->consent_bits,
		    rec->consent_at, k->toks, k->ntoks)) != 0)
			return cg_err_set(err, r, "record %llu: cannot build associated data", idx);
		if ((r = ingest_withdrawal_open(pol, c->batch_key, rec, ad, ad_len, !(rec->consent_bits & c->match_bit),
		    &s->arena, k->entry, &k->has_entry, err)) != 0)
			return r;
		if (rec->consent_at == INT64_MIN)
			return cg_err_set(err, CG_ERR_FORMAT, "record %llu: withdrawal time out of range", idx);
		return INGEST_ERASE;
	}
	if (!(rec->consent_bits & c->match_bit))
		return cg_err_set(err, CG_ERR_POLICY, "record %llu: no 'match' consent, so it must not have left "
		    "the partner", idx);
	if (rec->ciphertext.len < SEAL_TAG_LEN || rec->ciphertext.len > BATCH_RECORD_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "record %llu: ciphertext of %zu bytes", idx,
		    rec->ciphertext.len);
	if ((r = seal_ad_build(ad, &ad_len, hdr->batch_id.data, hdr->partner_id, rec->index, rec->consent_bits,
	    rec->consent_at, k->toks, rec->n_tokens)) != 0)
		return cg_err_set(err, r, "record %llu: cannot build associated data", idx);
	pt_len = rec->ciphertext.len - SEAL_TAG_LEN;
	if (s->pt_cap < pt_len + 1) {
		unsigned char *nb;
		if (s->pt != NULL)
			sodium_memzero(s->pt, s->pt_cap);
		free(s->pt);
		s->pt = NULL;
		s->pt_cap = 0;
		if ((nb = malloc(pt_len + 1)) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		s->pt = nb;
		s->pt_cap = pt_len + 1;
	}
	if ((r = seal_open_record(c->batch_key, rec->index, ad, ad_len, rec->ciphertext.data, rec->ciphertext.len,
	    s->pt, err)) != 0)
		return cg_err_prefix(err, "record %llu", idx);
	pb_arena_reset(&s->arena);
	if ((payload = crossgate__record_payload__unpack(&s->arena.allocator, pt_len, s->pt)) == NULL) {
		r = cg_err_set(err, s->arena.failed ? CG_ERR_NOMEM : CG_ERR_FORMAT, "record %llu: malformed payload",
		    idx);
		goto out;
	}
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < payload->n_fields; i++)
		if ((r = ingest_field_check(c->pp, payload->fields[i], rec->index, seen, &cursor, err)) != 0)
			goto out;
	for (i = 0; i < c->pp->ncolumns && i < sizeof(seen); i++) {
		const struct policy_column *col = &c->pp->columns[i];
		if (policy_column_shared(col, -1) && col->required && !seen[i]) {
			r = cg_err_set(err, CG_ERR_POLICY, "record %llu: required field '%s' is missing", idx,
			    col->name);
			goto out;
		}
	}
	r = 0;
out:
	pb_arena_reset(&s->arena);   /* wipes the decoded payload */
	sodium_memzero(s->pt, pt_len);
	return r;
}

/*
 * The writer's part of a record ingest_record_check passed: a data record
 * is stored unless its user was revoked; a withdrawal or revocation record
 * stages its erasure and tombstone; an outcome is checked further and
 * stored (s: the writer's scratch).
 */
static int
ingest_record_store(struct store *st, const struct ingest_ctx *c, int64_t batch_row, const struct ingest_checked *k,
    struct ingest_scratch *s, const struct keyfile_key *storage, struct erase_check *tombstones, int *skipped,
    struct ingest_tally *tally, struct cg_err *err)
{
	const Crossgate__SealedRecord *rec = k->rec;
	const Crossgate__BatchHeader *hdr = c->hdr;
	struct store_record sr;
	int64_t at;

	*skipped = 0;
	if (k->rc == 0) {
		/*
		 * A user the partner revoked stays erased, whatever older batch
		 * arrives later: by a committed tombstone (checked per window),
		 * or by a withdrawal earlier in this batch (still staged).
		 */
		if (k->revoked || (tombstones != NULL && tally->stager != NULL &&
		    erase_stager_covers(tally->stager, &k->key, rec->consent_at))) {
			*skipped = 1;
			return 0;
		}
		ingest_store_row(hdr, batch_row, rec, k->email, k->phone, &sr);
		return store_record_insert(st, &sr, err);
	}
	if (k->rc == INGEST_DEFER)
		return ingest_outcome(st, c->pol, hdr, c->batch_key, batch_row, rec, k->toks, k->revoked, &s->arena,
		    skipped, tally, err);
	if (k->has_entry) {
		/* Users check their receipts against the batch's root (agent/receipt.h): entries in record order. */
		merkle_frontier_append(&tally->tree, k->entry);
		tally->receipts++;
	}
	if (hdr->kind == BATCH_KIND_REVOCATION)
		return ingest_erase(st, storage, hdr->partner_id, tally, &k->key, 1, rec->consent_at, INT64_MAX, err);
	/*
	 * Without match the user goes, as in a revocation dated consent_at;
	 * with match a data record dated consent_at stays (in this batch or
	 * another), and everything older, which consented more widely, goes.
	 */
	at = rec->consent_at;
	if (rec->consent_bits & c->match_bit) {
		tally->narrowed++;
		at--;
	} else {
		tally->withdrawn++;
	}
	return ingest_erase(st, storage, hdr->partner_id, tally, &k->key, 1, at, at, err);
}

/*
 * The records in windows: the writer reads a window of frames while the
 * workers decode and check the previous one (ingest_record_check), then
 * stores that one in record order.  The first failure in record order is
 * the batch's, as one thread would have met it: records before it are
 * stored (and rolled back with the batch), none after it is looked at.
 * Memory: two windows of frames and their decoded records.
 */
#define INGEST_TASK_RECORDS 256
#define INGEST_WINDOW_TASKS 16
#define INGEST_WINDOW (INGEST_TASK_RECORDS * INGEST_WINDOW_TASKS)

struct ingest_task {
	struct pb_arena arena;               /* the task's decoded records, until its window is stored */
	struct cg_err err;                   /* the message of its first failure */
};

struct ingest_window {
	const struct ingest_ctx *c;
	struct batch_reader *br;             /* task 0 hashes the window's frames into its pass-2 digest */
	struct ingest_scratch *scratch;      /* one per worker */
	unsigned char *bytes;                /* the frames, one after the other */
	size_t len, cap, n;
	size_t off[INGEST_WINDOW], flen[INGEST_WINDOW];
	uint64_t at[INGEST_WINDOW], first_index;
	struct ingest_checked out[INGEST_WINDOW];
	struct ingest_task task[INGEST_WINDOW_TASKS];
	/* the data records' keys, checked against the tombstones together */
	struct token ckey[INGEST_WINDOW];
	int64_t cat[INGEST_WINDOW];
	size_t cidx[INGEST_WINDOW];
	unsigned char crev[INGEST_WINDOW];
};

/* The window's tasks: its frames' hash, then one per INGEST_TASK_RECORDS records. */
static size_t
ingest_window_tasks(const struct ingest_window *w)
{
	return 1 + (w->n + INGEST_TASK_RECORDS - 1) / INGEST_TASK_RECORDS;
}

/*
 * Worker: task 0 hashes the window's frames for the reader's end-of-batch
 * check (windows are hashed in order: a window's job ends before the next
 * one starts); the others decode and check a slice of records, up to the
 * first that fails.
 */
static int
ingest_task_run(void *arg, size_t task, unsigned worker)
{
	struct ingest_window *w = arg;
	struct ingest_task *t;
	size_t i, end;

	if (task == 0) {
		for (i = 0; i < w->n; i++)
			batch_reader_rehash(w->br, w->bytes + w->off[i], w->flen[i]);
		return 0;
	}
	t = &w->task[--task];
	end = (task + 1) * INGEST_TASK_RECORDS;

	pb_arena_reset(&t->arena);
	cg_err_clear(&t->err);
	if (end > w->n)
		end = w->n;
	for (i = task * INGEST_TASK_RECORDS; i < end; i++) {
		struct ingest_checked *k = &w->out[i];
		struct batch_frame fr = { w->bytes + w->off[i], w->flen[i], w->at[i], w->first_index + i };

		k->decode_failed = 0;
		k->revoked = 0;
		if ((k->rc = batch_record_decode(w->c->path, &fr, &t->arena, &k->rec, &t->err)) != 0)
			k->decode_failed = 1;
		else
			k->rc = ingest_record_check(w->c, k->rec, &w->scratch[worker], k, &t->err);
		if (k->rc < 0)
			break;
	}
	return 0;   /* a failure is the record's, found by the writer in record order */
}

/* Add the reader's current frame to the window. */
static int
ingest_window_add(struct ingest_window *w, const struct batch_frame *fr, struct cg_err *err)
{
	if (w->n == 0)
		w->first_index = fr->index;
	if (w->cap - w->len < fr->len) {
		size_t ncap = w->cap ? w->cap : (size_t)1 << 20;
		unsigned char *nb;

		while (ncap - w->len < fr->len)
			ncap *= 2;
		/* not realloc: the old frames (tokens in clear) are wiped before they are freed */
		if ((nb = malloc(ncap)) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		if (w->bytes != NULL) {
			memcpy(nb, w->bytes, w->len);
			sodium_memzero(w->bytes, w->cap);
			free(w->bytes);
		}
		w->bytes = nb;
		w->cap = ncap;
	}
	if (fr->len > 0)
		memcpy(w->bytes + w->len, fr->data, fr->len);
	w->off[w->n] = w->len;
	w->flen[w->n] = fr->len;
	w->at[w->n] = fr->offset;
	w->len += fr->len;
	w->n++;
	return 0;
}

/* The running counts of a batch's records, as the writer stores them. */
struct ingest_counts {
	uint64_t stored, skipped;
};

/* r, with err named after the batch unless the store or memory failed (their messages say where already). */
static int
ingest_batch_err(struct cg_err *err, int r, const char *path)
{
	if (r != CG_ERR_DB && r != CG_ERR_NOMEM)
		cg_err_prefix(err, "batch %s", path);
	return r;
}

/*
 * Writer, before storing a window: which of its data records and outcomes
 * (up to the first that failed) a tombstone keeps out, all checked together, so that
 * with privilege separation the key's process gets a message per
 * KEYFILE_AGENT_TOMBSTONES_MAX records rather than one per record.
 */
static int
ingest_window_revoked(struct ingest_window *w, struct erase_check *tombstones, struct cg_err *err)
{
	size_t i, n = 0;
	int r;

	for (i = 0; i < w->n && w->out[i].rc >= 0; i++)
		if (w->out[i].rc == 0 || w->out[i].rc == INGEST_DEFER) {   /* a data record or an outcome */
			w->ckey[n] = w->out[i].key;
			w->cat[n] = w->out[i].rec->consent_at;
			w->cidx[n++] = i;
		}
	if ((r = erase_check_keys(tombstones, w->ckey, w->cat, n, w->crev, err)) != 0)
		return r;
	for (i = 0; i < n; i++)
		w->out[w->cidx[i]].revoked = w->crev[i];
	return 0;
}

/* Writer: store a checked window in record order; the first failure is the batch's. */
static int
ingest_window_store(struct store *st, const struct ingest_ctx *c, int64_t batch_row, struct ingest_window *w,
    struct ingest_scratch *s, const struct keyfile_key *storage, struct erase_check *tombstones,
    struct ingest_tally *tally, struct ingest_counts *counts, struct cg_err *err)
{
	size_t i;
	int r, skipped;

	if (tombstones != NULL && (r = ingest_window_revoked(w, tombstones, err)) != 0)
		return ingest_batch_err(err, r, c->path);
	for (i = 0; i < w->n; i++) {
		const struct ingest_checked *k = &w->out[i];

		r = k->rc;
		if (r < 0)
			*err = w->task[i / INGEST_TASK_RECORDS].err;
		else
			r = ingest_record_store(st, c, batch_row, k, s, storage, tombstones, &skipped, tally, err);
		if (r != 0)
			return k->decode_failed ? r : ingest_batch_err(err, r, c->path);
		if (skipped)
			counts->skipped++;
		else if (!k->rec->withdrawal)
			counts->stored++;
	}
	return 0;
}

static void
ingest_scratch_free(struct ingest_scratch *s)
{
	if (s->pt != NULL)
		sodium_memzero(s->pt, s->pt_cap);
	free(s->pt);
	pb_arena_free(&s->arena);
}

/* The batch's records, read, checked on `nthreads` threads and stored (inside the batch's transaction). */
static int
ingest_records(struct store *st, const struct ingest_ctx *c, struct batch_reader *br, unsigned nthreads,
    int64_t batch_row, const struct keyfile_key *storage, struct erase_check *tombstones, struct ingest_tally *tally,
    struct ingest_counts *counts, struct cg_err *err)
{
	struct workers *pool = NULL;
	struct ingest_scratch *scratch = NULL;     /* [nthreads] is the writer's */
	struct ingest_window *win[2] = { NULL, NULL }, *w, *pending = NULL;
	struct batch_frame fr;
	struct cg_err readerr;
	unsigned i;
	int r, rr = 1, cur = 0, k;

	memset(counts, 0, sizeof(*counts));
	if ((scratch = calloc(nthreads + 1, sizeof(*scratch))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (i = 0; i <= nthreads; i++)
		if (pb_arena_init(&scratch[i].arena, 4 * BATCH_RECORD_MAX) != 0) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
	for (k = 0; k < 2; k++) {
		if ((win[k] = calloc(1, sizeof(*win[k]))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		win[k]->c = c;
		win[k]->br = br;
		win[k]->scratch = scratch;
		for (i = 0; i < INGEST_WINDOW_TASKS; i++)
			if (pb_arena_init(&win[k]->task[i].arena, (size_t)INGEST_TASK_RECORDS * 512) != 0) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
	}
	if ((r = workers_new(nthreads, &pool, err)) != 0)
		goto out;
	batch_reader_hash_by_caller(br);
	/*
	 * A read error, or the reader's end-of-batch check, is the batch's
	 * only after the records before it: it is reported once they are stored.
	 */
	do {
		w = win[cur];
		w->n = 0;
		w->len = 0;
		while (w->n < INGEST_WINDOW && (rr = batch_reader_next_frame(br, &fr, &readerr)) == 1)
			if ((r = ingest_window_add(w, &fr, &readerr)) != 0) {
				rr = r;
				break;
			}
		/* A task returns 0: its failure is its record's, for the writer. */
		if (pending != NULL && workers_wait(pool) != 0) {
			r = cg_err_set(err, CG_ERR_INTERNAL, "a worker failed");
			goto out;
		}
		if (w->n > 0)
			workers_start(pool, ingest_window_tasks(w), ingest_task_run, w);
		if (pending != NULL && (r = ingest_window_store(st, c, batch_row, pending, &scratch[nthreads], storage,
		    tombstones, tally, counts, err)) != 0)
			goto out;
		pending = w->n > 0 ? w : NULL;
		cur ^= 1;
	} while (rr == 1);
	if (pending != NULL) {
		if (workers_wait(pool) != 0) {
			r = cg_err_set(err, CG_ERR_INTERNAL, "a worker failed");
			goto out;
		}
		if ((r = ingest_window_store(st, c, batch_row, pending, &scratch[nthreads], storage, tombstones, tally,
		    counts, err)) != 0)
			goto out;
	}
	/* The frames' hash is complete: were they the ones verified? */
	if (rr == 0)
		rr = batch_reader_finish(br, &readerr);
	if (rr < 0) {
		*err = readerr;
		r = rr;
		goto out;
	}
	r = 0;
out:
	workers_free(pool);   /* waits for a job still running on a window */
	for (k = 0; k < 2; k++) {
		if (win[k] == NULL)
			continue;
		for (i = 0; i < INGEST_WINDOW_TASKS; i++)
			pb_arena_free(&win[k]->task[i].arena);
		if (win[k]->bytes != NULL)
			sodium_memzero(win[k]->bytes, win[k]->cap);
		free(win[k]->bytes);
		sodium_memzero(win[k], sizeof(*win[k]));   /* the records' tokens and keys */
		free(win[k]);
	}
	if (scratch != NULL)
		for (i = 0; i <= nthreads; i++)
			ingest_scratch_free(&scratch[i]);
	free(scratch);
	return r;
}

/* The record count stored for a committed batch. */
static int
ingest_batch_stored(struct store *st, const unsigned char batch_id[16], uint64_t *n, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r = 0;

	*n = 0;
	if (sqlite3_prepare_v2(store_db(st), "SELECT records FROM batches WHERE batch_id = ?1", -1, &s, NULL) != SQLITE_OK)
		return cg_err_set(err, CG_ERR_DB, "%s: prepare: %s", store_path(st), sqlite3_errmsg(store_db(st)));
	sqlite3_bind_blob(s, 1, batch_id, 16, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(s, 0);
	else
		r = cg_err_set(err, CG_ERR_DB, "%s: read the batch's records: %s", store_path(st),
		    sqlite3_errmsg(store_db(st)));
	sqlite3_finalize(s);
	return r;
}

/* Set the stored batch's record count (inside the batch's transaction). */
static int
ingest_batch_records(struct store *st, int64_t batch_row, uint64_t n, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(store_db(st), "UPDATE batches SET records = ?1 WHERE id = ?2", -1, &s, NULL) != SQLITE_OK)
		return cg_err_set(err, CG_ERR_DB, "%s: prepare: %s", store_path(st), sqlite3_errmsg(store_db(st)));
	sqlite3_bind_int64(s, 1, (sqlite3_int64)n);
	sqlite3_bind_int64(s, 2, batch_row);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = cg_err_set(err, CG_ERR_DB, "%s: count the batch's records: %s", store_path(st),
		    sqlite3_errmsg(store_db(st)));
	sqlite3_finalize(s);
	return r;
}

static void
ingest_event_init(Crossgate__AuditEvent *ev, const struct policy *pol, const char *action, const char *outcome)
{
	crossgate__audit_event__init(ev);
	ev->actor = (char *)"gateway";
	ev->action = (char *)action;
	ev->outcome = (char *)outcome;
	ev->policy_hash.data = (uint8_t *)pol->hash;
	ev->policy_hash.len = sizeof(pol->hash);
}

/* A rejection is logged on its own; the batch leaves no other trace. */
static int
ingest_reject(struct audit *a, const struct policy *pol, const Crossgate__BatchHeader *hdr, const unsigned char *digest,
    const char *reason, int code, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	struct cg_err logerr;

	ingest_event_init(&ev, pol, "ingest", "rejected");
	ev.reason = (char *)reason;
	if (hdr != NULL) {
		ev.partner_id = hdr->partner_id;
		if (hdr->batch_id.len == 16) {
			ev.batch_id.data = hdr->batch_id.data;
			ev.batch_id.len = 16;
		}
	}
	if (digest != NULL) {
		ev.batch_digest.data = (uint8_t *)digest;
		ev.batch_digest.len = 32;
	}
	if (audit_log(a, &ev, &logerr) != 0)
		return cg_err_set(err, logerr.code, "%s (and the rejection could not be logged: %s)", reason,
		    logerr.msg);
	(void)err;
	return code;
}

/*
 * The reason logged for a rejection: the error message without the local
 * path, copied into buf (so that it does not alias err->msg, which
 * ingest_reject may rewrite).  "batch PATH: why" becomes "why"; a path inside
 * the message is cut out with the words before it kept ("cannot open batch
 * PATH: why" -> "cannot open batch: why").
 */
static const char *
ingest_reason(const struct cg_err *e, const char *path, char buf[CG_ERR_MSG_MAX])
{
	const char *m = e->msg;
	size_t plen = strlen(path);
	const char *p = strstr(m, path);
	int keep;

	if (p == NULL || p[plen] != ':' || p[plen + 1] != ' ') {
		snprintf(buf, CG_ERR_MSG_MAX, "%s", m);
		return buf;
	}
	keep = (int)(p - m);
	if (keep > 0 && m[keep - 1] == ' ')
		keep--;
	if (keep == 5 && strncmp(m, "batch", 5) == 0)
		snprintf(buf, CG_ERR_MSG_MAX, "%s", p + plen + 2);
	else
		snprintf(buf, CG_ERR_MSG_MAX, "%.*s%s", keep, m, p + plen);
	return buf;
}

/* A batch from the file at `path`, or from `f` (owned from here on) named `path` in messages. */
static int
ingest_batch(struct store *st, struct audit *a, const struct policy *pol, const struct ingest_keys *keys,
    const char *path, FILE *f, struct ingest_result *result, struct cg_err *err)
{
	struct batch_reader *br = NULL;
	const Crossgate__BatchHeader *hdr;
	const struct policy_partner *pp;
	struct ingest_ctx ctx;
	struct ingest_counts counts;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[5], *cev[5];
	struct ingest_tally tally;
	unsigned char root[MERKLE_HASH_LEN];
	unsigned char digest[32], old_digest[32], batch_key[32], wrapped[INGEST_WRAPPED_KEY_LEN];
	char want[17], got[17], reason[CG_ERR_MSG_MAX];
	uint64_t count = 0, n = 0, nskipped = 0, erased = 0;
	int64_t batch_row;
	uint64_t withdrawals;
	struct erase_check *tombstones = NULL;
	int r, exists, in_txn = 0, have_digest = 0, revocation, any = 0;
	unsigned nthreads;
	size_t i;

	memset(result, 0, sizeof(*result));
	memset(&tally, 0, sizeof(tally));
	merkle_frontier_init(&tally.tree);
	sodium_memzero(batch_key, sizeof(batch_key));
	if ((r = f != NULL ? batch_reader_open_stream(f, path, &br, err) : batch_reader_open(path, &br, err)) != 0) {
		r = ingest_reject(a, pol, NULL, NULL, ingest_reason(err, path, reason), r, err);
		goto out;
	}
	hdr = batch_reader_header(br);
	if ((pp = policy_partner_find(pol, hdr->partner_id)) == NULL) {
		cg_err_set(err, CG_ERR_POLICY, "batch %s: partner '%.64s' is not in the policy", path,
		    hdr->partner_id);
		r = ingest_reject(a, pol, hdr, NULL, ingest_reason(err, path, reason), CG_ERR_POLICY, err);
		goto out;
	}
	snprintf(result->partner, sizeof(result->partner), "%s", pp->id);
	if (hdr->signer_key_id.len != KEYFILE_ID_LEN ||
	    memcmp(hdr->signer_key_id.data, pp->signing_key_id, KEYFILE_ID_LEN) != 0) {
		keyfile_id_hex(pp->signing_key_id, want);
		if (hdr->signer_key_id.len == KEYFILE_ID_LEN)
			keyfile_id_hex(hdr->signer_key_id.data, got);
		else
			snprintf(got, sizeof(got), "(none)");
		cg_err_set(err, CG_ERR_CRYPTO, "batch %s: signed with unknown key %s; the policy's key for "
		    "partner '%s' is %s", path, got, pp->id, want);
		r = ingest_reject(a, pol, hdr, NULL, ingest_reason(err, path, reason), CG_ERR_CRYPTO, err);
		goto out;
	}
	if ((r = batch_reader_verify(br, pp->signing_pub, &count, digest, err)) != 0) {
		r = ingest_reject(a, pol, hdr, NULL, ingest_reason(err, path, reason), r, err);
		goto out;
	}
	have_digest = 1;
	memcpy(result->digest, digest, 32);
	memcpy(result->batch_id, hdr->batch_id.data, 16);
	if (hdr->policy_hash.len != 32 || memcmp(hdr->policy_hash.data, pol->hash, 32) != 0) {
		cg_err_set(err, CG_ERR_POLICY, "batch %s: packed under a different policy than the gateway's "
		    "(%s); repack with the current policy", path, pol->path ? pol->path : "policy");
		r = ingest_reject(a, pol, hdr, digest, ingest_reason(err, path, reason), CG_ERR_POLICY, err);
		goto out;
	}
	if (hdr->gateway_key_id.len != KEYFILE_ID_LEN ||
	    memcmp(hdr->gateway_key_id.data, keys->enc->id, KEYFILE_ID_LEN) != 0) {
		keyfile_id_hex(keys->enc->id, want);
		if (hdr->gateway_key_id.len == KEYFILE_ID_LEN)
			keyfile_id_hex(hdr->gateway_key_id.data, got);
		else
			snprintf(got, sizeof(got), "(none)");
		cg_err_set(err, CG_ERR_CRYPTO, "batch %s: sealed to gateway key %s, but this gateway's key is %s",
		    path, got, want);
		r = ingest_reject(a, pol, hdr, digest, ingest_reason(err, path, reason), CG_ERR_CRYPTO, err);
		goto out;
	}
	if ((r = store_batch_digest(st, hdr->batch_id.data, 16, &exists, old_digest, err)) != 0)
		goto out;
	/* A retry is the same signed content; another batch under a committed id would be lost as a "duplicate". */
	if (exists && sodium_memcmp(old_digest, digest, sizeof(old_digest)) != 0) {
		char idhex[33];

		sodium_bin2hex(idhex, sizeof(idhex), hdr->batch_id.data, 16);
		cg_err_set(err, CG_ERR_FORMAT, "batch %s: batch id %s was committed before with other content; every "
		    "batch needs a fresh random id", path, idhex);
		r = ingest_reject(a, pol, hdr, digest, ingest_reason(err, path, reason), CG_ERR_FORMAT, err);
		goto out;
	}
	if (exists) {
		ingest_event_init(&ev, pol, "ingest", "duplicate");
		ev.partner_id = hdr->partner_id;
		ev.batch_id = hdr->batch_id;
		ev.batch_digest.data = digest;
		ev.batch_digest.len = 32;
		if ((r = audit_log(a, &ev, err)) != 0)
			goto out;
		result->duplicate = 1;
		/* What the first ingest stored (a withdrawal record is in count, never stored). */
		if ((r = ingest_batch_stored(st, hdr->batch_id.data, &result->records, err)) != 0)
			goto out;
		goto out;
	}
	if (hdr->kind != BATCH_KIND_DATA && hdr->kind != BATCH_KIND_REVOCATION && hdr->kind != BATCH_KIND_OUTCOMES) {
		/* Unknown kinds are not data: never store them as records. */
		cg_err_set(err, CG_ERR_FORMAT, "batch %s: batch kind %u is not supported by this gateway", path,
		    hdr->kind);
		r = ingest_reject(a, pol, hdr, digest, ingest_reason(err, path, reason), CG_ERR_FORMAT, err);
		goto out;
	}
	if (hdr->aead != CROSSGATE__AEAD__AEAD_CHACHA20POLY1305_IETF) {
		cg_err_set(err, CG_ERR_FORMAT, "batch %s: unsupported AEAD %d", path, (int)hdr->aead);
		r = ingest_reject(a, pol, hdr, digest, ingest_reason(err, path, reason), CG_ERR_FORMAT, err);
		goto out;
	}
	if (keys->enc->agent != NULL)
		r = keys->enc->agent->unwrap_key(keys->enc->agent->ctx, hdr->wrapped_key.data, hdr->wrapped_key.len,
		    batch_key, err);
	else
		r = seal_unwrap_key(hdr->wrapped_key.data, hdr->wrapped_key.len, keys->enc->pub, keys->enc->key,
		    batch_key, err);
	if (r != 0) {
		cg_err_prefix(err, "batch %s", path);
		r = ingest_reject(a, pol, hdr, digest, ingest_reason(err, path, reason), r, err);
		goto out;
	}

	if ((r = ingest_wrap_batch_key(keys->storage, hdr->batch_id.data, batch_key, wrapped)) != 0) {
		r = cg_err_set(err, r, "cannot seal the batch key for storage");
		goto out;
	}
	if ((r = erase_schema(st, err)) != 0)
		goto out;
	if ((r = store_begin(st, err)) != 0)
		goto out;
	in_txn = 1;
	if ((r = erase_any(st, pp->id, &any, err)) != 0 ||
	    (any && (r = erase_check_open(st, keys->storage, pp->id, &tombstones, err)) != 0) ||
	    (r = store_batch_insert(st, hdr->batch_id.data, 16, pp->id, digest, count, pol->hash,
	    (int64_t)time(NULL), wrapped, sizeof(wrapped), &batch_row, err)) != 0)
		goto reject_in_txn;
	ctx.pol = pol;
	ctx.pp = pp;
	ctx.hdr = hdr;
	ctx.batch_key = batch_key;
	ctx.path = path;
	ctx.match_bit = 1u << policy_purpose_bit(pol, "match");
	/* Threads beyond the batch's tasks would idle. */
	nthreads = keys->threads ? keys->threads : workers_cpus();
	if (nthreads > WORKERS_MAX)
		nthreads = WORKERS_MAX;
	if ((uint64_t)nthreads > (count + INGEST_TASK_RECORDS - 1) / INGEST_TASK_RECORDS)
		nthreads = count > 0 ? (unsigned)((count + INGEST_TASK_RECORDS - 1) / INGEST_TASK_RECORDS) : 1;
	if ((r = ingest_records(st, &ctx, br, nthreads, batch_row, keys->storage, tombstones, &tally, &counts,
	    err)) != 0)
		goto reject_in_txn;
	n = counts.stored;
	nskipped = counts.skipped;
	revocation = hdr->kind == BATCH_KIND_REVOCATION;
	withdrawals = tally.withdrawn + tally.narrowed;
	/*
	 * A data batch's row counts the records it stored: its withdrawal
	 * records and the records of users it may no longer bring back are not
	 * stored, and every stored batch must be whole (records == its rows).
	 */
	if (!revocation && n != count && (r = ingest_batch_records(st, batch_row, n, err)) != 0)
		goto reject_in_txn;
	/* Every named user's records go in one pass, inside this transaction. */
	if (tally.stager != NULL && (r = erase_apply(tally.stager, &erased, err)) != 0) {
		ingest_batch_err(err, r, path);   /* e.g. a tombstone the key's process refused */
		goto reject_in_txn;
	}
	ingest_event_init(&ev, pol, revocation ? "revoke" : "ingest", "ok");
	ev.partner_id = hdr->partner_id;
	ev.batch_id = hdr->batch_id;
	ev.batch_digest.data = digest;
	ev.batch_digest.len = 32;
	/* Counts only: how many were erased, never which. */
	for (i = 0; i < 5; i++) {
		crossgate__audit_event__counts_entry__init(&ce[i]);
		cev[i] = &ce[i];
	}
	ce[0].key = (char *)(revocation ? "users" : hdr->kind == BATCH_KIND_OUTCOMES ? "outcomes" : "records");
	ce[0].value = n;
	ce[1].key = (char *)(revocation ? "erased" : "skipped_revoked");
	ce[1].value = revocation ? erased : nskipped;
	ev.counts = cev;
	ev.n_counts = 2;
	if (!revocation && withdrawals > 0) {
		/* Withdrawals in a data batch: how many, and how many records they erased; never whose. */
		ce[2].key = (char *)"withdrawn";
		ce[2].value = tally.withdrawn;
		ce[3].key = (char *)"narrowed";
		ce[3].value = tally.narrowed;
		ce[4].key = (char *)"erased";
		ce[4].value = erased;
		ev.n_counts = 5;
	}
	if (tally.receipts > 0) {
		/* Users check their receipts against this root (agent/receipt.h). */
		merkle_frontier_root(&tally.tree, root);
		ev.receipt_root.data = root;
		ev.receipt_root.len = sizeof(root);
	}
	/* A failed append or commit (an I/O error, a full disk) is a rejection like any other: logged, nothing kept. */
	if ((r = audit_append(a, &ev, err)) != 0 || (r = store_commit(st, err)) != 0)
		goto reject_in_txn;
	in_txn = 0;
	audit_txn_end(a, 1);
	result->records = revocation ? 0 : n;
	result->revoked_users = revocation ? n : 0;
	result->erased = erased;
	result->skipped_revoked = nskipped;
	result->withdrawn = tally.withdrawn;
	result->narrowed = tally.narrowed;
	/*
	 * The WAL still holds the erased pages until it is checkpointed and
	 * truncated.  The batch is committed whatever happens here: a failed
	 * checkpoint is not a rejection, it is left to the next one (the CLI's
	 * at its end, the server's at its next erasure or at stop) and said in
	 * result->checkpoint_pending.
	 */
	if (erased > 0) {
		struct cg_err cperr;

		result->checkpoint_pending = store_checkpoint(st, &cperr) != 0;
	}
	r = 0;
	goto out;

reject_in_txn:
	store_rollback(st);
	audit_txn_end(a, 0);
	in_txn = 0;
	r = ingest_reject(a, pol, hdr, have_digest ? digest : NULL, ingest_reason(err, path, reason), r, err);
out:
	if (in_txn) {
		store_rollback(st);
		audit_txn_end(a, 0);
	}
	erase_check_close(tombstones);
	erase_stager_close(tally.stager);
	sodium_memzero(batch_key, sizeof(batch_key));
	batch_reader_free(br);
	return r;
}

int
ingest_batch_file(struct store *st, struct audit *a, const struct policy *pol, const struct ingest_keys *keys,
    const char *path, struct ingest_result *result, struct cg_err *err)
{
	return ingest_batch(st, a, pol, keys, path, NULL, result, err);
}

int
ingest_batch_stream(struct store *st, struct audit *a, const struct policy *pol, const struct ingest_keys *keys,
    FILE *f, const char *name, struct ingest_result *result, struct cg_err *err)
{
	return ingest_batch(st, a, pol, keys, name, f, result, err);
}
