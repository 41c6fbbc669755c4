/* consistency.c - see consistency.h */
#include "audit/consistency.h"

#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "crypto/merkle.h"
#include "proto/audit.pb-c.h"

/* The stored signed note of tree `size`; CG_ERR_NOTFOUND inside a span or beyond the log. */
static int
consistency_note_at(struct store *st, uint64_t size, char **note, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	*note = NULL;
	if (sqlite3_prepare_v2(store_db(st), "SELECT note FROM audit_checkpoints WHERE size = ?1", -1, &s, NULL) !=
	    SQLITE_OK)
		return cg_err_set(err, CG_ERR_DB, "%s: audit log: %s", store_path(st), sqlite3_errmsg(store_db(st)));
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(size > INT64_MAX ? INT64_MAX : size));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if ((*note = strdup((const char *)sqlite3_column_text(s, 0))) == NULL)
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		else
			r = 0;
	} else if (rc == SQLITE_DONE)
		r = cg_err_set(err, CG_ERR_NOTFOUND, "%s: the log has no signed checkpoint of size %llu (past its end, "
		    "or inside a batch of events signed together)", store_path(st), (unsigned long long)size);
	else
		r = cg_err_set(err, CG_ERR_DB, "%s: audit log: %s", store_path(st), sqlite3_errmsg(store_db(st)));
	sqlite3_finalize(s);
	return r;
}

int
consistency_prove(struct store *st, uint64_t old_size, uint64_t new_size, unsigned char **out, size_t *out_len,
    struct cg_err *err)
{
	Crossgate__Audit__ConsistencyProof pf = CROSSGATE__AUDIT__CONSISTENCY_PROOF__INIT;
	Crossgate__Audit__KeyRotation **krp = NULL;
	ProtobufCBinaryData hd[MERKLE_PROOF_MAX];
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH_LEN], *buf = NULL;
	struct audit_proof_rotation *rot = NULL;
	char *old_note = NULL, *new_note = NULL;
	size_t plen = 0, n_rot = 0, i, len;
	int r;

	*out = NULL;
	*out_len = 0;
	if (new_size == 0)
		r = audit_latest_checkpoint(st, 1, &new_note, &new_size, err);
	else
		r = consistency_note_at(st, new_size, &new_note, err);
	if (r != 0)
		goto out;
	if (old_size == 0 || old_size > new_size) {
		r = cg_err_set(err, CG_ERR_ARG, "consistency proof: the old tree size %llu must be between 1 and the new "
		    "size %llu", (unsigned long long)old_size, (unsigned long long)new_size);
		goto out;
	}
	if ((r = consistency_note_at(st, old_size, &old_note, err)) != 0 ||
	    (r = audit_consistency_proof(st, old_size, new_size, proof, &plen, err)) != 0 ||
	    (r = audit_rotations_load(st, new_size, &rot, &n_rot, err)) != 0)
		goto out;
	pf.format = (char *)CONSISTENCY_FORMAT;
	pf.old_checkpoint = old_note;
	pf.new_checkpoint = new_note;
	for (i = 0; i < plen; i++) {
		hd[i].data = proof[i];
		hd[i].len = MERKLE_HASH_LEN;
	}
	pf.hashes = hd;
	pf.n_hashes = plen;
	if (n_rot > 0 && (krp = audit_rotations_pb(rot, n_rot)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	pf.rotations = krp;
	pf.n_rotations = n_rot;
	len = crossgate__audit__consistency_proof__get_packed_size(&pf);
	if (len > CONSISTENCY_FILE_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "consistency proof would exceed %d bytes", CONSISTENCY_FILE_MAX);
		goto out;
	}
	if ((buf = malloc(len)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	crossgate__audit__consistency_proof__pack(&pf, buf);
	*out = buf;
	*out_len = len;
	buf = NULL; /* transferred */
	r = 0;
out:
	free(buf);
	free(krp);
	free(old_note);
	free(new_note);
	audit_rotations_free(rot, n_rot);
	return r;
}

int
consistency_is_file(const unsigned char *buf, size_t len)
{
	Crossgate__Audit__ConsistencyProof *pf;
	int yes;

	/* An inclusion proof's field 2 is a number: it does not decode as this message. */
	if (len > CONSISTENCY_FILE_MAX || (pf = crossgate__audit__consistency_proof__unpack(NULL, len, buf)) == NULL)
		return 0;
	yes = strcmp(pf->format, CONSISTENCY_FORMAT) == 0;
	crossgate__audit__consistency_proof__free_unpacked(pf, NULL);
	return yes;
}

/* The carried rotations, as audit_keychain_follow() takes them (pointing into pf). */
static int
consistency_rotations(const Crossgate__Audit__ConsistencyProof *pf, struct audit_proof_rotation **out,
    struct cg_err *err)
{
	struct audit_proof_rotation *rot;
	size_t i, j;

	*out = NULL;
	if (pf->n_rotations > AUDIT_KEYS_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "consistency proof: %zu key rotations, at most %d", pf->n_rotations,
		    AUDIT_KEYS_MAX);
	if (pf->n_rotations == 0)
		return 0;
	if ((rot = calloc(pf->n_rotations, sizeof(*rot))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (i = 0; i < pf->n_rotations; i++) {
		const Crossgate__Audit__KeyRotation *k = pf->rotations[i];

		if (k->event.len == 0 || k->checkpoint == NULL || strlen(k->checkpoint) > NOTE_MAX ||
		    k->n_hashes > MERKLE_PROOF_MAX / 2) {
			free(rot);
			return cg_err_set(err, CG_ERR_FORMAT, "consistency proof: key rotation %zu is malformed", i);
		}
		rot[i].index = k->index;
		rot[i].event = k->event.data;
		rot[i].event_len = k->event.len;
		rot[i].checkpoint = k->checkpoint;
		rot[i].n_hashes = k->n_hashes;
		for (j = 0; j < k->n_hashes; j++) {
			if (k->hashes[j].len != MERKLE_HASH_LEN) {
				free(rot);
				return cg_err_set(err, CG_ERR_FORMAT, "consistency proof: key rotation %zu: hash %zu has "
				    "%zu bytes, expected 32", i, j, k->hashes[j].len);
			}
			memcpy(rot[i].hashes[j], k->hashes[j].data, MERKLE_HASH_LEN);
		}
	}
	*out = rot;
	return 0;
}

int
consistency_verify(const unsigned char *buf, size_t len, const struct keyfile_key *pub, struct checkpoint *older,
    struct checkpoint *newer, struct cg_err *err)
{
	Crossgate__Audit__ConsistencyProof *pf = NULL;
	struct audit_proof_rotation *rot = NULL;
	struct audit_keychain kc;
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH_LEN];
	struct cg_err sub;
	size_t i, tl;
	int r;

	memset(older, 0, sizeof(*older));
	memset(newer, 0, sizeof(*newer));
	if (len > CONSISTENCY_FILE_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "consistency proof is larger than %d bytes", CONSISTENCY_FILE_MAX);
	if ((pf = crossgate__audit__consistency_proof__unpack(NULL, len, buf)) == NULL ||
	    strcmp(pf->format, CONSISTENCY_FORMAT) != 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "not a consistency proof file (format %s)", CONSISTENCY_FORMAT);
		goto out;
	}
	if (pf->n_hashes > MERKLE_PROOF_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "consistency proof: %zu hashes, at most %d", pf->n_hashes,
		    MERKLE_PROOF_MAX);
		goto out;
	}
	for (i = 0; i < pf->n_hashes; i++) {
		if (pf->hashes[i].len != MERKLE_HASH_LEN) {
			r = cg_err_set(err, CG_ERR_FORMAT, "consistency proof: hash %zu has %zu bytes, expected 32", i,
			    pf->hashes[i].len);
			goto out;
		}
		memcpy(proof[i], pf->hashes[i].data, MERKLE_HASH_LEN);
	}
	if (strlen(pf->old_checkpoint) > NOTE_MAX || strlen(pf->new_checkpoint) > NOTE_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "consistency proof: a checkpoint is larger than %d bytes", NOTE_MAX);
		goto out;
	}
	if ((r = consistency_rotations(pf, &rot, err)) != 0 || (r = audit_keychain_init(&kc, pub, err)) != 0 ||
	    (r = audit_keychain_follow(&kc, rot, pf->n_rotations, err)) != 0)
		goto out;
	cg_err_clear(&sub);
	if (audit_keychain_check(&kc, pf->old_checkpoint, strlen(pf->old_checkpoint), older, &tl, &sub) != 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "the old %s", sub.msg);
		goto out;
	}
	if (audit_keychain_check(&kc, pf->new_checkpoint, strlen(pf->new_checkpoint), newer, &tl, &sub) != 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "the new %s", sub.msg);
		goto out;
	}
	for (i = 0; i < pf->n_rotations; i++) {
		if (rot[i].index >= newer->size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "consistency proof: key-rotate event %llu is not below the new "
			    "tree size %llu", (unsigned long long)rot[i].index, (unsigned long long)newer->size);
			goto out;
		}
	}
	if (older->size == 0 || older->size > newer->size) {
		r = cg_err_set(err, CG_ERR_VERIFY, "consistency proof: the old tree (size %llu) is not older than the new "
		    "one (size %llu)", (unsigned long long)older->size, (unsigned long long)newer->size);
		goto out;
	}
	if (merkle_verify_consistency(older->size, newer->size, older->root, newer->root,
	    (const unsigned char (*)[MERKLE_HASH_LEN])proof, pf->n_hashes, &sub) != 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "the tree of size %llu does not extend the tree of size %llu: %s",
		    (unsigned long long)newer->size, (unsigned long long)older->size, sub.msg);
		goto out;
	}
	r = 0;
out:
	if (r != 0) {
		memset(older, 0, sizeof(*older));
		memset(newer, 0, sizeof(*newer));
	}
	free(rot);
	if (pf != NULL)
		crossgate__audit__consistency_proof__free_unpacked(pf, NULL);
	return r;
}
