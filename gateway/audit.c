/* audit.c - see audit.h */
#include "gateway/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "crypto/merkle.h"
#include "crypto/note.h"

struct audit {
	struct store *st;
	const struct keyfile_key *sign;
	char origin[AUDIT_ORIGIN_MAX];
	struct merkle_frontier committed;
	struct merkle_frontier pending;
	sqlite3_stmt *ins_event, *ins_cp;
};

void
audit_origin(const unsigned char key_id[KEYFILE_ID_LEN], char out[AUDIT_ORIGIN_MAX])
{
	char hex[2 * KEYFILE_ID_LEN + 1];

	keyfile_id_hex(key_id, hex);
	snprintf(out, AUDIT_ORIGIN_MAX, "crossgate/gateway/%s", hex);
}

static int
audit_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: audit log: %s: %s", store_path(st), what,
	    sqlite3_errmsg(store_db(st)));
}

int
audit_open(struct store *st, const struct keyfile_key *sign, struct audit **out, struct cg_err *err)
{
	struct audit *a = NULL;
	sqlite3_stmt *s = NULL;
	sqlite3 *db = store_db(st);
	int rc, r;

	*out = NULL;
	if (sign->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "the audit log needs the gateway's Ed25519 signing key");
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	a->st = st;
	a->sign = sign;
	audit_origin(sign->id, a->origin);
	merkle_frontier_init(&a->committed);
	/*
	 * Leaves are hashed from the event bytes, as audit_verify does, not read
	 * from the leaf column: a leaf that disagreed with its event would pass
	 * verification yet make the next checkpoint sign a tree that is not the
	 * stored one, and verification would then blame the new, honest event.
	 */
	if (sqlite3_prepare_v2(db, "SELECT seq, event FROM audit_events ORDER BY seq", -1, &s, NULL) != SQLITE_OK) {
		r = audit_dberr(st, "read", err);
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		unsigned char leaf[MERKLE_HASH_LEN];

		if ((uint64_t)sqlite3_column_int64(s, 0) != a->committed.size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log is damaged at event %llu; run "
			    "'crossgate audit verify'", store_path(st), (unsigned long long)a->committed.size);
			goto out;
		}
		merkle_leaf_hash(sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1), leaf);
		merkle_frontier_append(&a->committed, leaf);
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(st, "read", err);
		goto out;
	}
	a->pending = a->committed;
	if (sqlite3_prepare_v2(db, "INSERT INTO audit_events(seq, event, leaf) VALUES (?1, ?2, ?3)", -1,
	    &a->ins_event, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO audit_checkpoints(size, note) VALUES (?1, ?2)", -1,
	    &a->ins_cp, NULL) != SQLITE_OK) {
		r = audit_dberr(st, "prepare", err);
		goto out;
	}
	*out = a;
	a = NULL; /* transferred */
	r = 0;
out:
	sqlite3_finalize(s);
	audit_free(a);
	return r;
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->ins_event);
	sqlite3_finalize(a->ins_cp);
	free(a);
}

uint64_t
audit_size(const struct audit *a)
{
	return a->committed.size;
}

static int
audit_step(struct audit *a, sqlite3_stmt *s, const char *what, struct cg_err *err)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return audit_dberr(a->st, what, err);
	return 0;
}

int
audit_append(struct audit *a, Crossgate__AuditEvent *ev, struct cg_err *err)
{
	struct merkle_frontier next = a->pending;
	struct checkpoint cp;
	unsigned char leaf[MERKLE_HASH_LEN], *buf = NULL;
	char body[NOTE_NAME_MAX + 80], *note = NULL;
	size_t len, body_len;
	int r;

	ev->seq = next.size;
	ev->time = (int64_t)time(NULL);
	len = protobuf_c_message_get_packed_size(&ev->base);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	protobuf_c_message_pack(&ev->base, buf);
	merkle_leaf_hash(buf, len, leaf);
	merkle_frontier_append(&next, leaf);

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", a->origin);
	cp.size = next.size;
	merkle_frontier_root(&next, cp.root);
	if ((r = checkpoint_format(&cp, body, sizeof(body), &body_len)) != 0) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "cannot format checkpoint");
		goto out;
	}
	if ((r = note_sign(body, body_len, a->origin, a->sign->key, &note, err)) != 0)
		goto out;

	sqlite3_bind_int64(a->ins_event, 1, (sqlite3_int64)ev->seq);
	sqlite3_bind_blob(a->ins_event, 2, buf, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(a->ins_event, 3, leaf, sizeof(leaf), SQLITE_STATIC);
	if ((r = audit_step(a, a->ins_event, "append event", err)) != 0)
		goto out;
	sqlite3_bind_int64(a->ins_cp, 1, (sqlite3_int64)cp.size);
	sqlite3_bind_text(a->ins_cp, 2, note, -1, SQLITE_STATIC);
	if ((r = audit_step(a, a->ins_cp, "append checkpoint", err)) != 0)
		goto out;
	a->pending = next;
	r = 0;
out:
	free(note);
	free(buf);
	return r;
}

void
audit_txn_end(struct audit *a, int committed)
{
	if (committed)
		a->committed = a->pending;
	else
		a->pending = a->committed;
}

int
audit_log(struct audit *a, Crossgate__AuditEvent *ev, struct cg_err *err)
{
	int r;

	if ((r = store_begin(a->st, err)) != 0)
		return r;
	if ((r = audit_append(a, ev, err)) != 0) {
		store_rollback(a->st);
		audit_txn_end(a, 0);
		return r;
	}
	if ((r = store_commit(a->st, err)) != 0) {
		store_rollback(a->st);
		audit_txn_end(a, 0);
		return r;
	}
	audit_txn_end(a, 1);
	return 0;
}

/* Check one stored checkpoint against the tree we recomputed at its size. */
static int
audit_check_checkpoint(const char *path, const char *origin, const struct keyfile_key *pub, uint64_t size,
    const char *note, size_t note_len, const unsigned char root[32], struct cg_err *err)
{
	struct checkpoint cp;
	struct cg_err sub;
	size_t text_len;

	cg_err_clear(&sub);
	if (note_verify(note, note_len, origin, pub->pub, &text_len, &sub) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint at size %llu: %s", path,
		    (unsigned long long)size, sub.msg);
	if (checkpoint_parse(note, text_len, &cp, &sub) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint at size %llu: %s", path,
		    (unsigned long long)size, sub.msg);
	if (strcmp(cp.origin, origin) != 0 || cp.size != size)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint stored at size %llu signs size %llu of "
		    "origin %s", path, (unsigned long long)size, (unsigned long long)cp.size, cp.origin);
	if (memcmp(cp.root, root, 32) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu does not match the signed checkpoint at "
		    "size %llu: the event was changed, removed, reordered or inserted", path,
		    (unsigned long long)(size - 1), (unsigned long long)size);
	return 0;
}

int
audit_verify(struct store *st, const struct keyfile_key *pub, struct audit_report *rep, struct cg_err *err)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *ev = NULL, *cp = NULL;
	struct merkle_frontier f;
	char origin[AUDIT_ORIGIN_MAX];
	unsigned char leaf[MERKLE_HASH_LEN], root[MERKLE_HASH_LEN];
	const char *path = store_path(st);
	uint64_t seq, cp_size = 0;
	int rc, cp_rc, r;

	memset(rep, 0, sizeof(*rep));
	if (pub->type != KEYFILE_ED25519_PUBLIC && pub->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "audit verification needs the gateway's Ed25519 public key");
	audit_origin(pub->id, origin);
	merkle_frontier_init(&f);
	if (sqlite3_prepare_v2(db, "SELECT seq, event FROM audit_events ORDER BY seq", -1, &ev, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT size, note FROM audit_checkpoints ORDER BY size", -1, &cp, NULL)
	    != SQLITE_OK) {
		r = audit_dberr(st, "read", err);
		goto out;
	}
	cp_rc = sqlite3_step(cp);
	if (cp_rc == SQLITE_ROW)
		cp_size = (uint64_t)sqlite3_column_int64(cp, 0);
	while ((rc = sqlite3_step(ev)) == SQLITE_ROW) {
		Crossgate__AuditEvent *e;
		const unsigned char *bytes = sqlite3_column_blob(ev, 1);
		size_t len = (size_t)sqlite3_column_bytes(ev, 1);

		seq = (uint64_t)sqlite3_column_int64(ev, 0);
		if (seq != f.size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is missing (the log jumps to %llu)",
			    path, (unsigned long long)f.size, (unsigned long long)seq);
			goto out;
		}
		e = crossgate__audit_event__unpack(NULL, len, bytes);
		if (e == NULL) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is not a valid audit event", path,
			    (unsigned long long)seq);
			goto out;
		}
		if (e->seq != seq) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu says it is event %llu (moved)", path,
			    (unsigned long long)seq, (unsigned long long)e->seq);
			crossgate__audit_event__free_unpacked(e, NULL);
			goto out;
		}
		crossgate__audit_event__free_unpacked(e, NULL);
		merkle_leaf_hash(bytes, len, leaf);
		merkle_frontier_append(&f, leaf);
		merkle_frontier_root(&f, root);

		if (cp_rc != SQLITE_ROW || cp_size > f.size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: no signed checkpoint for size %llu: event %llu "
			    "was inserted or its checkpoint removed", path, (unsigned long long)f.size,
			    (unsigned long long)seq);
			goto out;
		}
		if (cp_size < f.size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint at size %llu out of order", path,
			    (unsigned long long)cp_size);
			goto out;
		}
		if ((r = audit_check_checkpoint(path, origin, pub, cp_size, (const char *)sqlite3_column_text(cp, 1),
		    (size_t)sqlite3_column_bytes(cp, 1), root, err)) != 0)
			goto out;
		snprintf(rep->latest_checkpoint, sizeof(rep->latest_checkpoint), "%s",
		    (const char *)sqlite3_column_text(cp, 1));
		rep->checkpoints++;
		cp_rc = sqlite3_step(cp);
		if (cp_rc == SQLITE_ROW)
			cp_size = (uint64_t)sqlite3_column_int64(cp, 0);
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(st, "read", err);
		goto out;
	}
	if (cp_rc == SQLITE_ROW) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: a checkpoint signs size %llu but the log holds only %llu "
		    "events: events were removed from the end", path, (unsigned long long)cp_size,
		    (unsigned long long)f.size);
		goto out;
	}
	if (cp_rc != SQLITE_DONE) {
		r = audit_dberr(st, "read checkpoints", err);
		goto out;
	}
	rep->events = f.size;
	merkle_frontier_root(&f, rep->root);
	r = 0;
out:
	sqlite3_finalize(ev);
	sqlite3_finalize(cp);
	return r;
}

int
audit_iter(struct store *st, uint64_t from, audit_iter_cb cb, void *arg, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(store_db(st), "SELECT e.seq, e.event, c.note FROM audit_events e "
	    "JOIN audit_checkpoints c ON c.size = e.seq + 1 WHERE e.seq >= ?1 ORDER BY e.seq", -1, &s, NULL)
	    != SQLITE_OK)
		return audit_dberr(st, "read", err);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)from);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = cb((uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
		    (size_t)sqlite3_column_bytes(s, 1), (const char *)sqlite3_column_text(s, 2), arg)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = audit_dberr(st, "read", err);
out:
	sqlite3_finalize(s);
	return r;
}

int
audit_import(struct store *st, uint64_t seq, const unsigned char *event, size_t len, const char *checkpoint,
    struct cg_err *err)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *ev = NULL, *cp = NULL, *n = NULL;
	unsigned char leaf[MERKLE_HASH_LEN];
	int r;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM audit_events", -1, &n, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO audit_events(seq, event, leaf) VALUES (?1, ?2, ?3)", -1, &ev,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO audit_checkpoints(size, note) VALUES (?1, ?2)", -1, &cp, NULL)
	    != SQLITE_OK) {
		r = audit_dberr(st, "prepare", err);
		goto out;
	}
	if (sqlite3_step(n) != SQLITE_ROW || (uint64_t)sqlite3_column_int64(n, 0) != seq) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: event %llu is not the next one of the local copy",
		    store_path(st), (unsigned long long)seq);
		goto out;
	}
	merkle_leaf_hash(event, len, leaf);
	sqlite3_bind_int64(ev, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(ev, 2, event, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(ev, 3, leaf, sizeof(leaf), SQLITE_STATIC);
	sqlite3_bind_int64(cp, 1, (sqlite3_int64)(seq + 1));
	sqlite3_bind_text(cp, 2, checkpoint, -1, SQLITE_STATIC);
	if (sqlite3_step(ev) != SQLITE_DONE || sqlite3_step(cp) != SQLITE_DONE) {
		r = audit_dberr(st, "append", err);
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(n);
	sqlite3_finalize(ev);
	sqlite3_finalize(cp);
	return r;
}
