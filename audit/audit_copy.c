/* audit_copy.c - see audit.h; serving and copying (audit_int.h) */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- serving and copying ------------------------------------------------- */

int
audit_iter(struct store *st, uint64_t from, audit_iter_cb cb, void *arg, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	struct audit_record rec;

	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT e.seq, e.event, e.leaf, c.note, x.erase_event FROM audit_events e "
	    "LEFT JOIN audit_checkpoints c ON c.size = e.seq + 1 LEFT JOIN audit_erased x ON x.seq = e.seq "
	    "WHERE e.seq >= ?1 ORDER BY e.seq", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)from);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&rec, 0, sizeof(rec));
		rec.seq = (uint64_t)sqlite3_column_int64(s, 0);
		rec.event = sqlite3_column_blob(s, 1);
		rec.len = (size_t)sqlite3_column_bytes(s, 1);
		if (sqlite3_column_bytes(s, 2) != MERKLE_HASH_LEN) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu has no leaf hash; run 'crossgate audit verify'",
			    store_path(st), (unsigned long long)rec.seq);
			goto out;
		}
		rec.leaf = sqlite3_column_blob(s, 2);
		rec.checkpoint = (const char *)sqlite3_column_text(s, 3);
		rec.erased = rec.len == 0 && sqlite3_column_type(s, 4) != SQLITE_NULL;
		rec.erased_by = rec.erased ? (uint64_t)sqlite3_column_int64(s, 4) : 0;
		if ((r = cb(&rec, arg)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = audit_dberr(st, "read", err);
out:
	sqlite3_finalize(s);
	return r;
}

/* A copied key-rotate event goes into the copy's key index (audit_verify checks the two agree). */
static int
audit_import_rotation(struct store *st, uint64_t seq, const unsigned char *event, size_t len, struct cg_err *err)
{
	Crossgate__AuditEvent *e;
	struct keyfile_key *k = NULL;
	sqlite3_stmt *s = NULL;
	struct cg_err sub;
	int r;

	if ((e = crossgate__audit_event__unpack(NULL, len, event)) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: event %llu is not a valid audit event", store_path(st),
		    (unsigned long long)seq);
	cg_err_clear(&sub);
	if (e->n_public_keys != 2 || keyfile_parse_public_line(e->public_keys[1], strlen(e->public_keys[1]),
	    KEYFILE_ED25519_PUBLIC, &k, &sub) != 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: key-rotate event %llu does not name its new key %s",
		    store_path(st), (unsigned long long)seq, sub.msg);
		goto out;
	}
	if ((r = audit_prepare(st, "INSERT INTO audit_keys(seq, key_id, pub) VALUES (?1, ?2, ?3)", &s, err)) != 0)
		goto out;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(s, 2, k->id, KEYFILE_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, k->pub, 32, SQLITE_STATIC);
	r = audit_step(st, s, "append key", err);
out:
	sqlite3_finalize(s);
	keyfile_free(k);
	crossgate__audit_event__free_unpacked(e, NULL);
	return r;
}

int
audit_import(struct store *st, const struct audit_record *rec, struct cg_err *err)
{
	sqlite3_stmt *ev = NULL, *cp = NULL, *n = NULL, *nd = NULL, *er = NULL;
	struct audit_nodes nodes;
	struct merkle_frontier f;
	struct audit_view v;
	unsigned char leaf[MERKLE_HASH_LEN], hashes[64][MERKLE_HASH_LEN];
	const unsigned char *event = rec->event;
	const char *checkpoint = rec->checkpoint != NULL ? rec->checkpoint : "";
	unsigned int k, l;
	uint64_t size, seq = rec->seq;
	size_t len = rec->len;
	int r;

	memset(&nodes, 0, sizeof(nodes));
	if (event == NULL && len != 0)
		return cg_err_set(err, CG_ERR_ARG, "audit import: no event bytes");
	if ((r = audit_schema(st, err)) != 0)
		return r;
	if ((r = audit_prepare(st, "SELECT max(seq) FROM audit_events", &n, err)) != 0 ||
	    (r = audit_prepare(st, "INSERT INTO audit_events(seq, event, leaf) VALUES (?1, ?2, ?3)", &ev, err)) != 0 ||
	    (r = audit_prepare(st, "INSERT INTO audit_checkpoints(size, note) VALUES (?1, ?2)", &cp, err)) != 0 ||
	    (r = audit_prepare(st, "INSERT OR REPLACE INTO audit_nodes(id, hash) VALUES (?1, ?2)", &nd, err)) != 0)
		goto out;
	if ((r = audit_size_of(st, n, &size, err)) != 0)
		goto out;
	if (size != seq) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: event %llu is not the next one of the local copy",
		    store_path(st), (unsigned long long)seq);
		goto out;
	}
	/* The copy keeps its own nodes, so that the auditor can prove from it too. */
	if ((r = audit_nodes_open(st, &nodes, err)) != 0 ||
	    (r = merkle_frontier_load(audit_node_get, &nodes, size, &f, err)) != 0)
		goto out;
	if (len == 0) {
		/* Erased at the gateway: the leaf hash stands for the event, and the erasure must be accounted for. */
		if (!rec->erased || rec->leaf == NULL || rec->erased_by <= seq) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s: event %llu is empty but does not come as an erased event "
			    "(its leaf hash and the later audit-erase event)", store_path(st), (unsigned long long)seq);
			goto out;
		}
		memcpy(leaf, rec->leaf, MERKLE_HASH_LEN);
		if ((r = audit_prepare(st, "INSERT INTO audit_erased(seq, erase_event) VALUES (?1, ?2)", &er, err)) != 0)
			goto out;
		sqlite3_bind_int64(er, 1, (sqlite3_int64)seq);
		sqlite3_bind_int64(er, 2, (sqlite3_int64)rec->erased_by);
		if ((r = audit_step(st, er, "append erasure", err)) != 0)
			goto out;
	} else {
		if (rec->erased) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s: event %llu is marked erased but carries a payload",
			    store_path(st), (unsigned long long)seq);
			goto out;
		}
		merkle_leaf_hash(event, len, leaf);
		if (audit_view_parse(event, len, &v) == 0 && audit_view_is(&v, AUDIT_ROTATE_ACTION) &&
		    (r = audit_import_rotation(st, seq, event, len, err)) != 0)
			goto out;
	}
	merkle_frontier_append_nodes(&f, leaf, hashes, &k);
	sqlite3_bind_int64(ev, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(ev, 2, len > 0 ? event : (const unsigned char *)"", (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(ev, 3, leaf, sizeof(leaf), SQLITE_STATIC);
	if ((r = audit_step(st, ev, "append", err)) != 0)
		goto out;
	/* Marked on every import: a copy made before the mark existed gets it at its next fetch. */
	if ((r = audit_meta_set(st, "copy", "\1", 1, err)) != 0)
		goto out;
	if (checkpoint[0] != '\0') {
		sqlite3_bind_int64(cp, 1, (sqlite3_int64)(seq + 1));
		sqlite3_bind_text(cp, 2, checkpoint, -1, SQLITE_STATIC);
		r = audit_step(st, cp, "append", err);
	} else {
		/* Inside a span of audit_append_many(): the span's checkpoint comes with its last event. */
		sqlite3_stmt *sp = NULL;

		if ((r = audit_prepare(st, "UPDATE audit_spans SET end = ?1 + 2 WHERE end = ?1 + 1", &sp, err)) == 0) {
			sqlite3_bind_int64(sp, 1, (sqlite3_int64)seq);
			if ((r = audit_step(st, sp, "append span", err)) == 0 && sqlite3_changes(store_db(st)) == 0) {
				sqlite3_finalize(sp);
				sp = NULL;
				if ((r = audit_prepare(st, "INSERT INTO audit_spans(end, first) VALUES (?1 + 2, ?1)", &sp,
				    err)) == 0) {
					sqlite3_bind_int64(sp, 1, (sqlite3_int64)seq);
					r = audit_step(st, sp, "append span", err);
				}
			}
		}
		sqlite3_finalize(sp);
	}
	if (r != 0)
		goto out;
	for (l = 1; l <= k; l++) {
		sqlite3_bind_int64(nd, 1, audit_node_id(l, seq >> l));
		sqlite3_bind_blob(nd, 2, hashes[l - 1], MERKLE_HASH_LEN, SQLITE_STATIC);
		if ((r = audit_step(st, nd, "append tree node", err)) != 0)
			goto out;
	}
	r = 0;
out:
	audit_nodes_close(&nodes);
	sqlite3_finalize(n);
	sqlite3_finalize(ev);
	sqlite3_finalize(cp);
	sqlite3_finalize(nd);
	sqlite3_finalize(er);
	return r;
}

int
audit_walk(struct store *st, uint64_t from, audit_event_cb cb, void *arg, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT e.seq, e.event, x.seq IS NOT NULL FROM audit_events e "
	    "LEFT JOIN audit_erased x ON x.seq = e.seq WHERE e.seq >= ?1 ORDER BY e.seq", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)from);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(s, 1);

		if ((r = cb((uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1), len,
		    len == 0 && sqlite3_column_int(s, 2), arg)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : audit_dberr(st, "read", err);
out:
	sqlite3_finalize(s);
	return r;
}

int
audit_latest_checkpoint(struct store *st, int with_cosignatures, char **note, uint64_t *size, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	char *n = NULL, *tmp;
	size_t len;
	int rc, r;

	*note = NULL;
	*size = 0;
	if ((r = audit_schema(st, err)) != 0 || (r = audit_latest_row(st, size, &n, err)) < 0)
		return r;
	if (r == 0)
		return cg_err_set(err, CG_ERR_NOTFOUND, "%s: the audit log is empty: no checkpoint yet", store_path(st));
	if (with_cosignatures) {
		if ((r = audit_prepare(st, "SELECT line FROM audit_cosignatures WHERE size = ?1 ORDER BY witness, "
		    "key_id", &s, err)) != 0)
			goto out;
		sqlite3_bind_int64(s, 1, (sqlite3_int64)*size);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *line = (const char *)sqlite3_column_text(s, 0);

			len = strlen(n);
			if ((tmp = realloc(n, len + strlen(line) + 1)) == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			n = tmp;
			memcpy(n + len, line, strlen(line) + 1);
		}
		if (rc != SQLITE_DONE) {
			r = audit_dberr(st, "read cosignatures", err);
			goto out;
		}
	}
	*note = n;
	n = NULL; /* transferred */
	r = 0;
out:
	if (r != 0)
		*size = 0;
	sqlite3_finalize(s);
	free(n);
	return r;
}

