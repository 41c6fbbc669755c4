/* audit_proof.c - see audit.h; proofs (audit_int.h) */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <stdlib.h>
#include <string.h>

#include "proto/audit.pb-c.h"

/* ---- proofs -------------------------------------------------------------- */

int
audit_inclusion_proof(struct store *st, uint64_t index, uint64_t size, unsigned char (*proof)[MERKLE_HASH_LEN],
    size_t *len, struct cg_err *err)
{
	struct audit_nodes nodes;
	uint64_t stored;
	int r;

	*len = 0;
	if ((r = audit_stored_size(st, &stored, err)) != 0)
		return r;
	if (size > stored)
		return cg_err_set(err, CG_ERR_ARG, "%s: inclusion proof: tree size %llu exceeds the log's %llu events",
		    store_path(st), (unsigned long long)size, (unsigned long long)stored);
	if (index >= size)
		return cg_err_set(err, CG_ERR_ARG, "%s: event %llu is not in the log of %llu events", store_path(st),
		    (unsigned long long)index, (unsigned long long)size);
	if ((r = audit_nodes_open(st, &nodes, err)) != 0)
		return r;
	r = merkle_inclusion_proof_nodes(audit_node_get, &nodes, size, index, proof, len, err);
	audit_nodes_close(&nodes);
	return r;
}

int
audit_consistency_proof(struct store *st, uint64_t m, uint64_t n, unsigned char (*proof)[MERKLE_HASH_LEN],
    size_t *len, struct cg_err *err)
{
	struct audit_nodes nodes;
	uint64_t stored;
	int r;

	*len = 0;
	if ((r = audit_stored_size(st, &stored, err)) != 0)
		return r;
	if (n > stored)
		return cg_err_set(err, CG_ERR_ARG, "%s: consistency proof: tree size %llu exceeds the log's %llu "
		    "events", store_path(st), (unsigned long long)n, (unsigned long long)stored);
	if ((r = audit_nodes_open(st, &nodes, err)) != 0)
		return r;
	r = merkle_consistency_proof_nodes(audit_node_get, &nodes, m, n, proof, len, err);
	audit_nodes_close(&nodes);
	return r;
}

void
audit_rotations_free(struct audit_proof_rotation *rot, size_t n)
{
	size_t i;

	if (rot == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(rot[i].event);
		free(rot[i].checkpoint);
	}
	free(rot);
}

Crossgate__Audit__KeyRotation **
audit_rotations_pb(const struct audit_proof_rotation *rot, size_t n)
{
	Crossgate__Audit__KeyRotation **p, *kr;
	ProtobufCBinaryData *hd;
	size_t i, j, nh = 0;

	for (i = 0; i < n; i++)
		nh += rot[i].n_hashes;
	/* One block: the pointers, the messages, the hash descriptors (all 8-byte multiples). */
	if ((p = calloc(1, n * (sizeof(*p) + sizeof(*kr)) + nh * sizeof(*hd) + 1)) == NULL)
		return NULL;
	kr = (Crossgate__Audit__KeyRotation *)(p + n);
	hd = (ProtobufCBinaryData *)(kr + n);
	for (i = 0; i < n; i++) {
		crossgate__audit__key_rotation__init(&kr[i]);
		kr[i].index = rot[i].index;
		kr[i].event.data = rot[i].event;
		kr[i].event.len = rot[i].event_len;
		kr[i].checkpoint = rot[i].checkpoint;
		kr[i].hashes = hd;
		kr[i].n_hashes = rot[i].n_hashes;
		for (j = 0; j < rot[i].n_hashes; j++) {
			hd->data = (uint8_t *)rot[i].hashes[j];
			(hd++)->len = MERKLE_HASH_LEN;
		}
		p[i] = &kr[i];
	}
	return p;
}

/*
 * The stored key-rotate events below tree size `below`, each with its
 * inclusion proof in its own checkpoint (size seq + 1) and that checkpoint:
 * what a verifier needs to follow the chain of keys (nothing here is checked).
 */
int
audit_rotations_load(struct store *st, uint64_t below, struct audit_proof_rotation **out, size_t *n,
    struct cg_err *err)
{
	struct audit_proof_rotation *rot = NULL, *x;
	sqlite3_stmt *s = NULL;
	size_t cnt = 0;
	int rc, r;

	*out = NULL;
	*n = 0;
	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT k.seq, e.event, c.note FROM audit_keys k LEFT JOIN audit_events e ON "
	    "e.seq = k.seq LEFT JOIN audit_checkpoints c ON c.size = k.seq + 1 WHERE k.seq < ?1 ORDER BY k.seq", &s,
	    err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(below > INT64_MAX ? INT64_MAX : below));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(s, 0);
		size_t elen = (size_t)sqlite3_column_bytes(s, 1);

		if (cnt == AUDIT_KEYS_MAX) {
			r = cg_err_set(err, CG_ERR_LIMIT, "%s: the log rotated its key more than %d times", store_path(st),
			    AUDIT_KEYS_MAX);
			goto out;
		}
		if (elen == 0 || sqlite3_column_type(s, 2) == SQLITE_NULL) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: key-rotate event %llu or its checkpoint is missing; run "
			    "'crossgate audit verify'", store_path(st), (unsigned long long)seq);
			goto out;
		}
		if ((x = realloc(rot, (cnt + 1) * sizeof(*rot))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		rot = x;
		x = &rot[cnt++];
		memset(x, 0, sizeof(*x));
		x->index = seq;
		if ((x->event = malloc(elen)) == NULL ||
		    (x->checkpoint = strdup((const char *)sqlite3_column_text(s, 2))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		memcpy(x->event, sqlite3_column_blob(s, 1), elen);
		x->event_len = elen;
		if ((r = audit_inclusion_proof(st, seq, seq + 1, x->hashes, &x->n_hashes, err)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(st, "read keys", err);
		goto out;
	}
	*out = rot;
	*n = cnt;
	rot = NULL; /* transferred */
	r = 0;
out:
	audit_rotations_free(rot, cnt);
	sqlite3_finalize(s);
	return r;
}

/* Follow rotations from the chain's last key: each proven in its own checkpoint, signed by the key before. */
int
audit_keychain_follow(struct audit_keychain *kc, const struct audit_proof_rotation *rot, size_t n,
    struct cg_err *err)
{
	struct checkpoint cp;
	struct cg_err sub;
	unsigned char leaf[MERKLE_HASH_LEN];
	size_t i, tl;
	int r;

	for (i = 0; i < n; i++) {
		cg_err_clear(&sub);
		if (audit_keychain_check(kc, rot[i].checkpoint, strlen(rot[i].checkpoint), &cp, &tl, &sub) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu: %s", (unsigned long long)rot[i].index,
			    sub.msg);
		if (rot[i].index == UINT64_MAX || cp.size != rot[i].index + 1)
			return cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu: its checkpoint is for size %llu, "
			    "not its own", (unsigned long long)rot[i].index, (unsigned long long)cp.size);
		merkle_leaf_hash(rot[i].event, rot[i].event_len, leaf);
		if (merkle_verify_inclusion(leaf, rot[i].index, cp.size,
		    (const unsigned char (*)[MERKLE_HASH_LEN])rot[i].hashes, rot[i].n_hashes, cp.root, &sub) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu is not in the tree its checkpoint "
			    "signs: %s", (unsigned long long)rot[i].index, sub.msg);
		if ((r = audit_keychain_apply(kc, rot[i].index, rot[i].event, rot[i].event_len, err)) != 0)
			return r;
	}
	return 0;
}

int
audit_keychain_load(struct store *st, const struct keyfile_key *pub, struct audit_keychain *kc, struct cg_err *err)
{
	struct audit_proof_rotation *rot = NULL;
	size_t n = 0;
	int r;

	if ((r = audit_keychain_init(kc, pub, err)) != 0)
		return r;
	if ((r = audit_rotations_load(st, UINT64_MAX, &rot, &n, err)) == 0 &&
	    (r = audit_keychain_follow(kc, rot, n, err)) != 0)
		cg_err_prefix(err, "%s", store_path(st));
	audit_rotations_free(rot, n);
	return r;
}

int
audit_prove(struct store *st, uint64_t index, unsigned char **out, size_t *out_len, struct cg_err *err)
{
	Crossgate__Audit__InclusionProof pf = CROSSGATE__AUDIT__INCLUSION_PROOF__INIT;
	Crossgate__Audit__KeyRotation **krp = NULL;
	ProtobufCBinaryData hd[MERKLE_PROOF_MAX];
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN], *event = NULL, *buf = NULL;
	struct audit_proof_rotation *rot = NULL;
	sqlite3_stmt *s = NULL;
	char *note = NULL;
	uint64_t size;
	size_t plen, elen = 0, i, len, n_rot = 0;
	int rc, r, erased = 0;

	*out = NULL;
	*out_len = 0;
	if ((r = audit_latest_checkpoint(st, 1, &note, &size, err)) != 0)
		return r;
	if (index >= size) {
		r = cg_err_set(err, CG_ERR_NOTFOUND, "%s: event %llu is not in the log (it holds %llu events)",
		    store_path(st), (unsigned long long)index, (unsigned long long)size);
		goto out;
	}
	if ((r = audit_prepare(st, "SELECT e.event, e.leaf, x.seq IS NOT NULL FROM audit_events e "
	    "LEFT JOIN audit_erased x ON x.seq = e.seq WHERE e.seq = ?1", &s, err)) != 0)
		goto out;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)index);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is missing; run 'crossgate "
		    "audit verify'", store_path(st), (unsigned long long)index) : audit_dberr(st, "read", err);
		goto out;
	}
	elen = (size_t)sqlite3_column_bytes(s, 0);
	erased = elen == 0 && sqlite3_column_int(s, 2);
	if (sqlite3_column_bytes(s, 1) != MERKLE_HASH_LEN) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu has no leaf hash; run 'crossgate audit verify'",
		    store_path(st), (unsigned long long)index);
		goto out;
	}
	memcpy(leaf, sqlite3_column_blob(s, 1), MERKLE_HASH_LEN);
	if (elen > 0) {
		if ((event = malloc(elen)) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		memcpy(event, sqlite3_column_blob(s, 0), elen);
		/* The proof is of the bytes it carries, whatever the leaf column says. */
		merkle_leaf_hash(event, elen, leaf);
	}
	if ((r = audit_inclusion_proof(st, index, size, proof, &plen, err)) != 0)
		goto out;
	pf.format = (char *)AUDIT_PROOF_FORMAT;
	pf.index = index;
	pf.event.data = event;
	pf.event.len = elen;
	pf.erased = erased;
	pf.leaf_hash.data = leaf;
	pf.leaf_hash.len = MERKLE_HASH_LEN;
	for (i = 0; i < plen; i++) {
		hd[i].data = proof[i];
		hd[i].len = MERKLE_HASH_LEN;
	}
	pf.hashes = hd;
	pf.n_hashes = plen;
	pf.checkpoint = note;
	/* The chain of keys from the log's first one to the one that signed `note`. */
	if ((r = audit_rotations_load(st, size, &rot, &n_rot, err)) != 0)
		goto out;
	if (n_rot > 0 && (krp = audit_rotations_pb(rot, n_rot)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	pf.rotations = krp;
	pf.n_rotations = n_rot;
	len = crossgate__audit__inclusion_proof__get_packed_size(&pf);
	if (len > AUDIT_PROOF_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "event %llu: proof would exceed %d bytes", (unsigned long long)index,
		    AUDIT_PROOF_MAX);
		goto out;
	}
	if ((buf = malloc(len)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	crossgate__audit__inclusion_proof__pack(&pf, buf);
	*out = buf;
	*out_len = len;
	buf = NULL; /* transferred */
	r = 0;
out:
	sqlite3_finalize(s);
	free(buf);
	free(event);
	free(note);
	free(krp);
	audit_rotations_free(rot, n_rot);
	return r;
}

void
audit_proof_free(struct audit_proof *p)
{
	if (p == NULL)
		return;
	free(p->event);
	free(p->checkpoint);
	audit_rotations_free(p->rotations, p->n_rotations);
	free(p);
}

int
audit_proof_parse(const unsigned char *buf, size_t len, struct audit_proof **out, struct cg_err *err)
{
	Crossgate__Audit__InclusionProof *pf = NULL;
	struct audit_proof *p = NULL;
	size_t i, clen;
	int r;

	*out = NULL;
	if (len > AUDIT_PROOF_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "proof file is larger than %d bytes", AUDIT_PROOF_MAX);
	if (len == 0 || buf == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "proof file is empty");
	if ((pf = crossgate__audit__inclusion_proof__unpack(NULL, len, buf)) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "proof file is not a crossgate inclusion proof (it does not "
		    "parse)");
	if (pf->format == NULL || strcmp(pf->format, AUDIT_PROOF_FORMAT) != 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "proof file: format is not %s", AUDIT_PROOF_FORMAT);
		goto out;
	}
	if (pf->leaf_hash.len != MERKLE_HASH_LEN) {
		r = cg_err_set(err, CG_ERR_FORMAT, "proof file: leaf_hash has %zu bytes, expected 32", pf->leaf_hash.len);
		goto out;
	}
	/* An inclusion proof in a tree of < 2^64 leaves has at most 64 hashes. */
	if (pf->n_hashes > 64) {
		r = cg_err_set(err, CG_ERR_LIMIT, "proof file: %zu proof hashes, at most 64", pf->n_hashes);
		goto out;
	}
	for (i = 0; i < pf->n_hashes; i++) {
		if (pf->hashes[i].len != MERKLE_HASH_LEN) {
			r = cg_err_set(err, CG_ERR_FORMAT, "proof file: proof hash %zu has %zu bytes, expected 32", i,
			    pf->hashes[i].len);
			goto out;
		}
	}
	if (pf->erased && pf->event.len != 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "proof file: an erased event carries event bytes");
		goto out;
	}
	if (!pf->erased && pf->event.len == 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "proof file: the event bytes are missing");
		goto out;
	}
	clen = pf->checkpoint != NULL ? strlen(pf->checkpoint) : 0;
	if (clen == 0 || clen > NOTE_MAX) {
		r = cg_err_set(err, CG_ERR_FORMAT, "proof file: the checkpoint is missing or larger than %d bytes",
		    NOTE_MAX);
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->checkpoint = strdup(pf->checkpoint)) == NULL ||
	    (pf->event.len > 0 && (p->event = malloc(pf->event.len)) == NULL)) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (pf->n_rotations > AUDIT_KEYS_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "proof file: %zu key rotations, at most %d", pf->n_rotations,
		    AUDIT_KEYS_MAX);
		goto out;
	}
	if (pf->n_rotations > 0 && (p->rotations = calloc(pf->n_rotations, sizeof(*p->rotations))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < pf->n_rotations; i++) {
		const Crossgate__Audit__KeyRotation *k = pf->rotations[i];
		struct audit_proof_rotation *x = &p->rotations[i];
		size_t j;

		p->n_rotations = i + 1;   /* what is allocated so far is freed with p */
		clen = k->checkpoint != NULL ? strlen(k->checkpoint) : 0;
		if (k->event.len == 0 || clen == 0 || clen > NOTE_MAX || k->n_hashes > 64) {
			r = cg_err_set(err, CG_ERR_FORMAT, "proof file: key rotation %zu: the event or checkpoint is "
			    "missing, or it has more than 64 proof hashes", i);
			goto out;
		}
		for (j = 0; j < k->n_hashes; j++) {
			if (k->hashes[j].len != MERKLE_HASH_LEN) {
				r = cg_err_set(err, CG_ERR_FORMAT, "proof file: key rotation %zu: proof hash %zu has %zu "
				    "bytes, expected 32", i, j, k->hashes[j].len);
				goto out;
			}
			memcpy(x->hashes[j], k->hashes[j].data, MERKLE_HASH_LEN);
		}
		x->n_hashes = k->n_hashes;
		x->index = k->index;
		if ((x->event = malloc(k->event.len)) == NULL || (x->checkpoint = strdup(k->checkpoint)) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		memcpy(x->event, k->event.data, k->event.len);
		x->event_len = k->event.len;
	}
	p->index = pf->index;
	p->erased = pf->erased != 0;
	if (pf->event.len > 0)
		memcpy(p->event, pf->event.data, pf->event.len);
	p->event_len = pf->event.len;
	memcpy(p->leaf, pf->leaf_hash.data, MERKLE_HASH_LEN);
	for (i = 0; i < pf->n_hashes; i++)
		memcpy(p->hashes[i], pf->hashes[i].data, MERKLE_HASH_LEN);
	p->n_hashes = pf->n_hashes;
	*out = p;
	p = NULL; /* transferred */
	r = 0;
out:
	audit_proof_free(p);
	crossgate__audit__inclusion_proof__free_unpacked(pf, NULL);
	return r;
}

int
audit_checkpoint_check(const char *note, size_t len, const struct keyfile_key *pub, struct checkpoint *cp,
    struct cg_err *err)
{
	struct audit_keychain kc;
	size_t text_len;

	memset(cp, 0, sizeof(*cp));
	if (audit_keychain_init(&kc, pub, err) != 0)
		return cg_err_set(err, CG_ERR_ARG, "checking a checkpoint needs the gateway's Ed25519 public key");
	return audit_keychain_check(&kc, note, len, cp, &text_len, err);
}

int
audit_proof_verify(const struct audit_proof *p, const struct keyfile_key *pub, struct checkpoint *cp,
    struct cg_err *err)
{
	struct checkpoint c;
	struct audit_view v;
	struct audit_keychain kc;
	struct cg_err sub;
	unsigned char leaf[MERKLE_HASH_LEN];
	size_t tl;
	int r;

	memset(cp, 0, sizeof(*cp));
	if ((r = audit_keychain_init(&kc, pub, err)) != 0)
		return r;
	if ((r = audit_keychain_follow(&kc, p->rotations, p->n_rotations, err)) != 0 ||
	    (r = audit_keychain_check(&kc, p->checkpoint, strlen(p->checkpoint), &c, &tl, err)) != 0)
		return cg_err_prefix(err, "proof");
	if (p->index >= c.size)
		return cg_err_set(err, CG_ERR_VERIFY, "proof: event %llu is not below the checkpoint's tree size %llu",
		    (unsigned long long)p->index, (unsigned long long)c.size);
	if (p->erased) {
		memcpy(leaf, p->leaf, MERKLE_HASH_LEN);
	} else {
		merkle_leaf_hash(p->event, p->event_len, leaf);
		if (memcmp(leaf, p->leaf, MERKLE_HASH_LEN) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "proof: the leaf hash does not match the event bytes");
		if (audit_view_parse(p->event, p->event_len, &v) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "proof: the event is not a valid audit event");
		if (v.seq != p->index)
			return cg_err_set(err, CG_ERR_VERIFY, "proof: the event says it is event %llu, not %llu",
			    (unsigned long long)v.seq, (unsigned long long)p->index);
	}
	cg_err_clear(&sub);
	if (merkle_verify_inclusion(leaf, p->index, c.size, (const unsigned char (*)[MERKLE_HASH_LEN])p->hashes,
	    p->n_hashes, c.root, &sub) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "proof: event %llu is not in the tree the checkpoint signs "
		    "(size %llu): %s", (unsigned long long)p->index, (unsigned long long)c.size, sub.msg);
	*cp = c;
	return 0;
}

/* RFC 6962 §2.1.2 between (m, root_m) and the verified tree (n, root_n), from stored nodes. */
int
audit_consistent(struct store *st, uint64_t m, const unsigned char root_m[MERKLE_HASH_LEN], uint64_t n,
    const unsigned char root_n[MERKLE_HASH_LEN], struct cg_err *sub)
{
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH_LEN], empty[MERKLE_HASH_LEN];
	size_t len;
	int r;

	if (m == 0) {
		merkle_root(NULL, 0, empty);
		if (memcmp(root_m, empty, MERKLE_HASH_LEN) != 0)
			return cg_err_set(sub, CG_ERR_VERIFY, "a tree of size 0 has another root");
		return 0;
	}
	if ((r = audit_consistency_proof(st, m, n, proof, &len, sub)) != 0)
		return r;
	return merkle_verify_consistency(m, n, root_m, root_n, (const unsigned char (*)[MERKLE_HASH_LEN])proof, len,
	    sub);
}

int
audit_verify_extends(struct store *st, const struct checkpoint *saved, const struct audit_report *rep,
    struct cg_err *err)
{
	struct cg_err sub;
	int r;

	if (saved->size > rep->events)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: the log holds %llu events but the saved checkpoint is for "
		    "%llu: the log was truncated or rolled back", store_path(st), (unsigned long long)rep->events,
		    (unsigned long long)saved->size);
	cg_err_clear(&sub);
	if ((r = audit_consistent(st, saved->size, saved->root, rep->events, rep->root, &sub)) != 0) {
		if (r != CG_ERR_VERIFY)
			return cg_err_set(err, r, "%s", sub.msg);
		return cg_err_set(err, CG_ERR_VERIFY, "%s: the log does not extend the saved checkpoint at size %llu: "
		    "an event below %llu was changed, removed, reordered or inserted since it was saved (%s)",
		    store_path(st), (unsigned long long)saved->size, (unsigned long long)saved->size, sub.msg);
	}
	return 0;
}

