/* audit.c - see audit.h; opening, schema, stored nodes, appending and time (audit_int.h for the split) */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

static const char audit_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS audit_events("
	"  seq INTEGER PRIMARY KEY,"
	"  event BLOB NOT NULL,"
	"  leaf BLOB NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_checkpoints("
	"  size INTEGER PRIMARY KEY,"
	"  note TEXT NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_nodes("
	"  id INTEGER PRIMARY KEY,"
	"  hash BLOB NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_spans("
	"  end INTEGER PRIMARY KEY,"
	"  first INTEGER NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_erased("
	"  seq INTEGER PRIMARY KEY,"
	"  erase_event INTEGER NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_cosignatures("
	"  size INTEGER NOT NULL,"
	"  witness TEXT NOT NULL,"
	"  key_id INTEGER NOT NULL,"
	"  time INTEGER NOT NULL,"
	"  line TEXT NOT NULL,"
	"  PRIMARY KEY(size, witness, key_id)) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_keys("
	"  seq INTEGER PRIMARY KEY,"
	"  key_id BLOB NOT NULL,"
	"  pub BLOB NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_meta(key TEXT PRIMARY KEY, value BLOB) STRICT;";

void
audit_origin(const unsigned char key_id[KEYFILE_ID_LEN], char out[AUDIT_ORIGIN_MAX])
{
	char hex[2 * KEYFILE_ID_LEN + 1];

	keyfile_id_hex(key_id, hex);
	snprintf(out, AUDIT_ORIGIN_MAX, "crossgate/gateway/%s", hex);
}

int
audit_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: audit log: %s: %s", store_path(st), what,
	    sqlite3_errmsg(store_db(st)));
}

int
audit_prepare(struct store *st, const char *sql, sqlite3_stmt **s, struct cg_err *err)
{
	*s = NULL;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, s, NULL) != SQLITE_OK)
		return audit_dberr(st, "prepare", err);
	return 0;
}

int
audit_step(struct store *st, sqlite3_stmt *s, const char *what, struct cg_err *err)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return audit_dberr(st, what, err);
	return 0;
}

sqlite3_int64
audit_node_id(unsigned int level, uint64_t index)
{
	return (sqlite3_int64)((((index + 1) << level) << 6) | level);
}

/* ---- schema ------------------------------------------------------------ */

int
audit_meta_get(struct store *st, const char *key, unsigned char *out, size_t out_size, size_t *out_len,
    struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	*out_len = 0;
	if ((r = audit_prepare(st, "SELECT value FROM audit_meta WHERE key = ?1", &s, err)) != 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s, 0);

		if (n > out_size)
			n = out_size;
		if (n > 0)
			memcpy(out, sqlite3_column_blob(s, 0), n);
		*out_len = n;
		r = 1;
	} else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = audit_dberr(st, "read meta", err);
	sqlite3_finalize(s);
	return r;
}

int
audit_meta_set(struct store *st, const char *key, const void *value, size_t len, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = audit_prepare(st, "INSERT OR REPLACE INTO audit_meta(key, value) VALUES (?1, ?2)", &s, err)) != 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, value, (int)len, SQLITE_STATIC);
	r = audit_step(st, s, "write meta", err);
	sqlite3_finalize(s);
	return r;
}

/* A log written before audit_nodes existed: hash its events once into the node table. */
static int
audit_rebuild_nodes(struct store *st, struct cg_err *err)
{
	sqlite3_stmt *ev = NULL, *ins = NULL;
	struct merkle_frontier f;
	unsigned char leaf[MERKLE_HASH_LEN], nodes[64][MERKLE_HASH_LEN];
	unsigned int k, l;
	int rc, r;

	merkle_frontier_init(&f);
	if ((r = audit_prepare(st, "SELECT seq, event FROM audit_events ORDER BY seq", &ev, err)) != 0 ||
	    (r = audit_prepare(st, "INSERT OR REPLACE INTO audit_nodes(id, hash) VALUES (?1, ?2)", &ins, err)) != 0)
		goto out;
	while ((rc = sqlite3_step(ev)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(ev, 0);

		if (seq != f.size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log is damaged at event %llu; run "
			    "'crossgate audit verify'", store_path(st), (unsigned long long)f.size);
			goto out;
		}
		merkle_leaf_hash(sqlite3_column_blob(ev, 1), (size_t)sqlite3_column_bytes(ev, 1), leaf);
		merkle_frontier_append_nodes(&f, leaf, nodes, &k);
		for (l = 1; l <= k; l++) {
			sqlite3_bind_int64(ins, 1, audit_node_id(l, seq >> l));
			sqlite3_bind_blob(ins, 2, nodes[l - 1], MERKLE_HASH_LEN, SQLITE_STATIC);
			if ((r = audit_step(st, ins, "rebuild tree nodes", err)) != 0)
				goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(st, "read", err);
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(ev);
	sqlite3_finalize(ins);
	return r;
}

int
audit_schema(struct store *st, struct cg_err *err)
{
	unsigned char v[8];
	size_t vlen;
	int own, r;

	/* Fast path: every later call on an up-to-date file is one indexed read. */
	if (audit_meta_get(st, "schema", v, sizeof(v), &vlen, NULL) == 1 && vlen == 1 && v[0] == AUDIT_SCHEMA_VERSION)
		return 0;
	own = sqlite3_get_autocommit(store_db(st));
	if (own && (r = store_begin(st, err)) != 0)
		return r;
	if (sqlite3_exec(store_db(st), audit_schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		r = audit_dberr(st, "create tables", err);
		goto out;
	}
	/* Re-read under the write lock: another process may have migrated meanwhile. */
	if ((r = audit_meta_get(st, "schema", v, sizeof(v), &vlen, err)) < 0)
		goto out;
	if (r == 0 || vlen != 1 || v[0] != AUDIT_SCHEMA_VERSION) {
		/* Version 3 only added audit_keys (created above): nodes are rebuilt for files before version 2. */
		if ((r == 0 || vlen != 1 || v[0] < 2) && (r = audit_rebuild_nodes(st, err)) != 0)
			goto out;
		v[0] = AUDIT_SCHEMA_VERSION;
		if ((r = audit_meta_set(st, "schema", v, 1, err)) != 0)
			goto out;
	}
	if (own && (r = store_commit(st, err)) != 0)
		goto out;
	return 0;
out:
	if (own)
		store_rollback(st);
	return r;
}

/* ---- stored nodes -------------------------------------------------------- */


int
audit_nodes_open(struct store *st, struct audit_nodes *n, struct cg_err *err)
{
	int r;

	memset(n, 0, sizeof(*n));
	n->st = st;
	if ((r = audit_prepare(st, "SELECT leaf FROM audit_events WHERE seq = ?1", &n->leaf, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT hash FROM audit_nodes WHERE id = ?1", &n->node, err)) != 0) {
		sqlite3_finalize(n->leaf);
		n->leaf = NULL;
		return r;
	}
	return 0;
}

void
audit_nodes_close(struct audit_nodes *n)
{
	sqlite3_finalize(n->leaf);
	sqlite3_finalize(n->node);
	n->leaf = n->node = NULL;
}

/* merkle_node_fn over the store: level 0 is the leaf column, above it audit_nodes. */
int
audit_node_get(void *arg, unsigned int level, uint64_t index, unsigned char out[MERKLE_HASH_LEN], struct cg_err *err)
{
	struct audit_nodes *n = arg;
	sqlite3_stmt *s;
	int rc, r = 0;

	if (level >= 57 || index >= (AUDIT_NODE_END_MAX >> level))
		return cg_err_set(err, CG_ERR_ARG, "%s: audit log: tree node out of range", store_path(n->st));
	if (level == 0) {
		s = n->leaf;
		sqlite3_bind_int64(s, 1, (sqlite3_int64)index);
	} else {
		s = n->node;
		sqlite3_bind_int64(s, 1, audit_node_id(level, index));
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == MERKLE_HASH_LEN)
		memcpy(out, sqlite3_column_blob(s, 0), MERKLE_HASH_LEN);
	else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log is damaged: the stored tree node at level %u, "
		    "index %llu is missing; run 'crossgate audit verify'", store_path(n->st), level,
		    (unsigned long long)index);
	else
		r = audit_dberr(n->st, "read tree node", err);
	sqlite3_reset(s);
	return r;
}

int
audit_size_of(struct store *st, sqlite3_stmt *s, uint64_t *size, struct cg_err *err)
{
	int rc = sqlite3_step(s), r = 0;

	*size = 0;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(s, 0) != SQLITE_NULL)
			*size = (uint64_t)sqlite3_column_int64(s, 0) + 1;
	} else
		r = audit_dberr(st, "read size", err);
	sqlite3_reset(s);
	return r;
}

int
audit_stored_size(struct store *st, uint64_t *size, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r;

	*size = 0;
	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT max(seq) FROM audit_events", &s, err)) != 0)
		return r;
	r = audit_size_of(st, s, size, err);
	sqlite3_finalize(s);
	return r;
}

/* The latest stored checkpoint row: 1 found, 0 none, or an error. *note malloc'd. */
int
audit_latest_row(struct store *st, uint64_t *size, char **note, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	*size = 0;
	*note = NULL;
	if ((r = audit_prepare(st, "SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1", &s, err))
	    != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*size = (uint64_t)sqlite3_column_int64(s, 0);
		if ((*note = strdup((const char *)sqlite3_column_text(s, 1))) == NULL)
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		else
			r = 1;
	} else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = audit_dberr(st, "read checkpoints", err);
	sqlite3_finalize(s);
	return r;
}

/*
 * The tree's right edge from the stored nodes, refused unless it is the tree
 * the latest checkpoint signs: appending on top of anything else would sign
 * a tree that is not the stored one.
 */
/*
 * The newest key-rotate event: 1 with its seq and the key id it handed over
 * to, 0 if the log never rotated.
 */
static int
audit_last_rotation(struct store *st, uint64_t *seq, unsigned char id[KEYFILE_ID_LEN], struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = audit_prepare(st, "SELECT seq, key_id FROM audit_keys ORDER BY seq DESC LIMIT 1", &s, err)) != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 1) == KEYFILE_ID_LEN) {
		*seq = (uint64_t)sqlite3_column_int64(s, 0);
		memcpy(id, sqlite3_column_blob(s, 1), KEYFILE_ID_LEN);
		r = 1;
	} else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = rc == SQLITE_ROW ? cg_err_set(err, CG_ERR_VERIFY, "%s: audit log: a stored key id is malformed; "
		    "run 'crossgate audit verify'", store_path(st)) : audit_dberr(st, "read keys", err);
	sqlite3_finalize(s);
	return r;
}

/*
 * The tree's right edge from the stored nodes, refused unless it is the tree
 * the latest checkpoint signs, signed by `sign` (the key the log was last
 * handed over to): appending on top of anything else would sign a tree that
 * is not the stored one, or with a key that was rotated out.  The log's
 * origin (origin, AUDIT_ORIGIN_MAX bytes) is the one that checkpoint names,
 * or the key's own for an empty log.
 */
static int
audit_restore(struct store *st, sqlite3_stmt *max_seq, const struct keyfile_key *sign, char *origin,
    struct merkle_frontier *out, struct cg_err *err)
{
	char name[AUDIT_ORIGIN_MAX];
	struct audit_nodes nodes;
	struct merkle_frontier f;
	struct checkpoint cp;
	struct cg_err sub;
	unsigned char root[MERKLE_HASH_LEN], rot_id[KEYFILE_ID_LEN];
	const char *path = store_path(st);
	char *note = NULL, hex[2][2 * KEYFILE_ID_LEN + 1];
	uint64_t size, cp_size, rot_seq = 0;
	size_t text_len;
	int r, rotated;

	memset(&nodes, 0, sizeof(nodes));
	audit_origin(sign->id, name);
	if ((r = audit_size_of(st, max_seq, &size, err)) != 0)
		return r;
	if ((rotated = audit_last_rotation(st, &rot_seq, rot_id, err)) < 0)
		return rotated;
	if (rotated && memcmp(rot_id, sign->id, KEYFILE_ID_LEN) != 0) {
		keyfile_id_hex(sign->id, hex[0]);
		keyfile_id_hex(rot_id, hex[1]);
		return cg_err_set(err, CG_ERR_VERIFY, "%s: audit log: the signing key %s was rotated out (key-rotate "
		    "event %llu hands over to key %s): nothing can be appended with it", path, hex[0],
		    (unsigned long long)rot_seq, hex[1]);
	}
	if ((r = audit_latest_row(st, &cp_size, &note, err)) < 0)
		return r;
	if (r == 0) {
		if (size != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: audit log is damaged: its %llu events have no "
			    "signed checkpoint; run 'crossgate audit verify'", path, (unsigned long long)size);
		audit_origin(sign->id, origin);
		merkle_frontier_init(out);
		return 0;
	}
	if (cp_size > size) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log is damaged: event %llu is missing (the latest "
		    "signed checkpoint covers %llu events); run 'crossgate audit verify'", path,
		    (unsigned long long)size, (unsigned long long)cp_size);
		goto out;
	}
	if (cp_size < size) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log is damaged: event %llu has no signed checkpoint; "
		    "run 'crossgate audit verify'", path, (unsigned long long)cp_size);
		goto out;
	}
	cg_err_clear(&sub);
	if (audit_note_text(note, strlen(note), &text_len) != 0 || checkpoint_parse(note, text_len, &cp, &sub) != 0 ||
	    audit_note_verify(note, strlen(note), cp.origin, name, sign->pub, &text_len, &sub) != 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log: the latest checkpoint (size %llu) is not this "
		    "gateway key's: %s; run 'crossgate audit verify'", path, (unsigned long long)cp_size, sub.msg);
		goto out;
	}
	/* Logs of one key have origin = key name; a rotated log keeps its first key's origin. */
	if (strncmp(cp.origin, "crossgate/gateway/", 18) != 0 || (!rotated && strcmp(cp.origin, name) != 0) ||
	    strlen(cp.origin) >= AUDIT_ORIGIN_MAX) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log: the latest checkpoint names origin %s, not this "
		    "gateway's log; run 'crossgate audit verify'", path, cp.origin);
		goto out;
	}
	if ((r = audit_nodes_open(st, &nodes, err)) != 0 ||
	    (r = merkle_frontier_load(audit_node_get, &nodes, size, &f, err)) != 0)
		goto out;
	merkle_frontier_root(&f, root);
	if (cp.size != size || memcmp(cp.root, root, MERKLE_HASH_LEN) != 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit log is damaged: the stored tree does not match the "
		    "signed checkpoint at size %llu; run 'crossgate audit verify'", path, (unsigned long long)size);
		goto out;
	}
	memcpy(origin, cp.origin, strlen(cp.origin) + 1);   /* length checked above */
	*out = f;
	r = 0;
out:
	audit_nodes_close(&nodes);
	free(note);
	return r;
}

/* ---- appending ----------------------------------------------------------- */

int
audit_open(struct store *st, const struct keyfile_key *sign, struct audit **out, struct cg_err *err)
{
	struct audit *a = NULL;
	int r;

	*out = NULL;
	if (sign->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "the audit log needs the gateway's Ed25519 signing key");
	if ((r = audit_schema(st, err)) != 0)
		return r;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	a->st = st;
	a->sign = sign;
	if ((r = audit_prepare(st, "INSERT INTO audit_events(seq, event, leaf) VALUES (?1, ?2, ?3)", &a->ins_event,
	    err)) != 0 ||
	    (r = audit_prepare(st, "INSERT INTO audit_checkpoints(size, note) VALUES (?1, ?2)", &a->ins_cp, err)) != 0 ||
	    /* Nodes are derived data: a stale row left past a truncated end is overwritten. */
	    (r = audit_prepare(st, "INSERT OR REPLACE INTO audit_nodes(id, hash) VALUES (?1, ?2)", &a->ins_node, err))
	    != 0 ||
	    (r = audit_prepare(st, "INSERT INTO audit_spans(end, first) VALUES (?1, ?2)", &a->ins_span, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT max(seq) FROM audit_events", &a->max_seq, err)) != 0)
		goto out;
	/*
	 * One read transaction: another connection (the server, another command)
	 * may commit an event and its checkpoint between our reads otherwise.
	 */
	if (sqlite3_exec(store_db(st), "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		r = cg_err_set(err, CG_ERR_DB, "%s: audit log: %s", store_path(st), sqlite3_errmsg(store_db(st)));
		goto out;
	}
	r = audit_restore(st, a->max_seq, sign, a->origin, &a->committed, err);
	sqlite3_exec(store_db(st), r == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	if (r != 0)
		goto out;
	a->pending = a->committed;
	*out = a;
	a = NULL; /* transferred */
	r = 0;
out:
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
	sqlite3_finalize(a->ins_node);
	sqlite3_finalize(a->ins_span);
	sqlite3_finalize(a->max_seq);
	free(a);
}

uint64_t
audit_size(const struct audit *a)
{
	return a->committed.size;
}

/*
 * First append of a transaction: if someone else appended since we last
 * looked (the server and a CLI command share the file), start from their tree.
 * Later appends of the same transaction hold the write lock already.
 */
int
audit_sync(struct audit *a, struct cg_err *err)
{
	struct merkle_frontier f;
	uint64_t size;
	int r;

	if (a->pending.size != a->committed.size)
		return 0;
	if ((r = audit_size_of(a->st, a->max_seq, &size, err)) != 0)
		return r;
	if (size == a->committed.size)
		return 0;
	if ((r = audit_restore(a->st, a->max_seq, a->sign, a->origin, &f, err)) != 0)
		return r;
	a->committed = a->pending = f;
	return 0;
}

static int
audit_add(struct audit *a, struct merkle_frontier *next, Crossgate__AuditEvent *ev, struct cg_err *err)
{
	unsigned char leaf[MERKLE_HASH_LEN], nodes[64][MERKLE_HASH_LEN], *buf = NULL;
	unsigned int k, l;
	size_t len;
	uint64_t seq = next->size;
	int r;

	if (seq >= AUDIT_NODE_END_MAX - 1)
		return cg_err_set(err, CG_ERR_LIMIT, "%s: audit log is full", store_path(a->st));
	ev->seq = seq;
	ev->time = (int64_t)time(NULL);
	len = protobuf_c_message_get_packed_size(&ev->base);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	protobuf_c_message_pack(&ev->base, buf);
	merkle_leaf_hash(buf, len, leaf);
	merkle_frontier_append_nodes(next, leaf, nodes, &k);

	sqlite3_bind_int64(a->ins_event, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(a->ins_event, 2, buf, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(a->ins_event, 3, leaf, sizeof(leaf), SQLITE_STATIC);
	if ((r = audit_step(a->st, a->ins_event, "append event", err)) != 0)
		goto out;
	for (l = 1; l <= k; l++) {
		sqlite3_bind_int64(a->ins_node, 1, audit_node_id(l, seq >> l));
		sqlite3_bind_blob(a->ins_node, 2, nodes[l - 1], MERKLE_HASH_LEN, SQLITE_STATIC);
		if ((r = audit_step(a->st, a->ins_node, "append tree node", err)) != 0)
			goto out;
	}
	r = 0;
out:
	free(buf);
	return r;
}

/* Sign the checkpoint of `next` with the current key (and `also`, a rotation's new key, if not NULL). */
static int
audit_sign(struct audit *a, const struct merkle_frontier *next, const struct keyfile_key *also, struct cg_err *err)
{
	struct checkpoint cp;
	char body[NOTE_NAME_MAX + 80], *note = NULL, *note2 = NULL, *tmp;
	size_t body_len, len;
	int r;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", a->origin);
	cp.size = next->size;
	merkle_frontier_root(next, cp.root);
	if (checkpoint_format(&cp, body, sizeof(body), &body_len) != 0)
		return cg_err_set(err, CG_ERR_INTERNAL, "cannot format checkpoint");
	/* Every key signs under the log's origin (C2SP: the key name is the origin); key ids tell keys apart. */
	if (a->sign->agent != NULL)
		r = a->sign->agent->sign_note(a->sign->agent->ctx, body, body_len, a->origin, &note, err);
	else
		r = note_sign(body, body_len, a->origin, a->sign->key, &note, err);
	if (r != 0)
		return r;
	if (also != NULL) {
		/* A second signature line: the same text signed by the new key, appended after the first. */
		if ((r = note_sign(body, body_len, a->origin, also->key, &note2, err)) != 0)
			goto out;
		len = strlen(note);
		if ((tmp = realloc(note, len + strlen(note2 + body_len + 1) + 1)) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		note = tmp;
		memcpy(note + len, note2 + body_len + 1, strlen(note2 + body_len + 1) + 1);
	}
	sqlite3_bind_int64(a->ins_cp, 1, (sqlite3_int64)cp.size);
	sqlite3_bind_text(a->ins_cp, 2, note, -1, SQLITE_STATIC);
	r = audit_step(a->st, a->ins_cp, "append checkpoint", err);
out:
	free(note);
	free(note2);
	return r;
}

int
audit_append(struct audit *a, Crossgate__AuditEvent *ev, struct cg_err *err)
{
	struct merkle_frontier next;
	int r;

	if ((r = audit_sync(a, err)) != 0)
		return r;
	next = a->pending;
	if ((r = audit_add(a, &next, ev, err)) != 0 || (r = audit_sign(a, &next, NULL, err)) != 0)
		return r;
	a->pending = next;
	return 0;
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

int
audit_append_many(struct audit *a, Crossgate__AuditEvent **evs, size_t n, struct cg_err *err)
{
	struct merkle_frontier next;
	uint64_t first;
	size_t i;
	int r;

	if (n == 0)
		return cg_err_set(err, CG_ERR_ARG, "audit_append_many: no events");
	if ((r = store_begin(a->st, err)) != 0)
		return r;
	if ((r = audit_sync(a, err)) != 0)
		goto fail;
	next = a->pending;
	first = next.size;
	for (i = 0; i < n; i++) {
		if ((r = audit_add(a, &next, evs[i], err)) != 0)
			goto fail;
	}
	if ((r = audit_sign(a, &next, NULL, err)) != 0)
		goto fail;
	if (n > 1) {
		sqlite3_bind_int64(a->ins_span, 1, (sqlite3_int64)next.size);
		sqlite3_bind_int64(a->ins_span, 2, (sqlite3_int64)first);
		if ((r = audit_step(a->st, a->ins_span, "append span", err)) != 0)
			goto fail;
	}
	if ((r = store_commit(a->st, err)) != 0)
		goto fail;
	a->committed = a->pending = next;
	return 0;
fail:
	store_rollback(a->st);
	audit_txn_end(a, 0);
	return r;
}

int
audit_policy_seen(struct audit *a, const unsigned char hash[32], struct cg_err *err)
{
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	unsigned char last[32];
	char reason[32 + 2 * 32 + 1], hex[2 * 32 + 1];
	size_t last_len;
	int r, have;

	if ((r = store_begin(a->st, err)) != 0)
		return r;
	if ((have = audit_meta_get(a->st, "policy", last, sizeof(last), &last_len, err)) < 0) {
		r = have;
		goto fail;
	}
	if (have && last_len == 32 && memcmp(last, hash, 32) == 0) {
		store_rollback(a->st);
		return 0;
	}
	if (have && last_len == 32) {
		sodium_bin2hex(hex, sizeof(hex), last, 32);
		snprintf(reason, sizeof(reason), "previous policy %s", hex);
	} else
		snprintf(reason, sizeof(reason), "first policy");
	ev.actor = (char *)"gateway";
	ev.action = (char *)"policy-load";
	ev.outcome = (char *)"ok";
	ev.reason = reason;
	ev.policy_hash.data = (uint8_t *)hash;
	ev.policy_hash.len = 32;
	if ((r = audit_append(a, &ev, err)) != 0 || (r = audit_meta_set(a->st, "policy", hash, 32, err)) != 0 ||
	    (r = store_commit(a->st, err)) != 0)
		goto fail;
	audit_txn_end(a, 1);
	return 0;
fail:
	store_rollback(a->st);
	audit_txn_end(a, 0);
	return r;
}

int
audit_log_keys(struct audit *a, const char *action, const struct keyfile_key *enc, const struct keyfile_key *storage,
    struct cg_err *err)
{
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	struct keyfile_key *enc_pub = NULL, *sign_pub = NULL;
	char ids[3][2 * KEYFILE_ID_LEN + 1], lines[2][KEYFILE_LINE_MAX], *idp[3], *linep[2];
	int r;

	if (enc->type == KEYFILE_X25519_SECRET)
		r = keyfile_public_of(enc, &enc_pub, err);
	else
		r = enc->type == KEYFILE_X25519_PUBLIC ? 0 : cg_err_set(err, CG_ERR_ARG, "audit: not an X25519 key");
	if (r != 0 || (r = keyfile_public_of(a->sign, &sign_pub, err)) != 0)
		goto out;
	if (keyfile_public_line(enc_pub != NULL ? enc_pub : enc, lines[0], sizeof(lines[0])) != 0 ||
	    keyfile_public_line(sign_pub, lines[1], sizeof(lines[1])) != 0) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "cannot format a public key line");
		goto out;
	}
	keyfile_id_hex(enc->id, ids[0]);
	keyfile_id_hex(a->sign->id, ids[1]);
	keyfile_id_hex(storage->id, ids[2]);
	idp[0] = ids[0];
	idp[1] = ids[1];
	idp[2] = ids[2];
	linep[0] = lines[0];
	linep[1] = lines[1];
	ev.actor = (char *)(strcmp(action, "keygen") == 0 ? "operator" : "gateway");
	ev.action = (char *)action;
	ev.outcome = (char *)"ok";
	ev.key_ids = idp;
	ev.n_key_ids = 3;
	ev.public_keys = linep;
	ev.n_public_keys = 2;
	r = audit_log(a, &ev, err);
out:
	keyfile_free(enc_pub);
	keyfile_free(sign_pub);
	return r;
}

int
audit_rotate(struct audit *a, const struct keyfile_key *next, struct cg_err *err)
{
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	struct merkle_frontier f;
	struct keyfile_key *old_pub = NULL, *new_pub = NULL;
	sqlite3_stmt *ins = NULL;
	char ids[2][2 * KEYFILE_ID_LEN + 1], lines[2][KEYFILE_LINE_MAX], *idp[2], *linep[2];
	int r, in_txn = 0;

	if (next->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "a key rotation needs the new Ed25519 signing key");
	if (memcmp(next->pub, a->sign->pub, 32) == 0)
		return cg_err_set(err, CG_ERR_ARG, "the new signing key is the current one");
	if ((r = keyfile_public_of(a->sign, &old_pub, err)) != 0 || (r = keyfile_public_of(next, &new_pub, err)) != 0)
		goto out;
	if (keyfile_public_line(old_pub, lines[0], sizeof(lines[0])) != 0 ||
	    keyfile_public_line(new_pub, lines[1], sizeof(lines[1])) != 0) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "cannot format a public key line");
		goto out;
	}
	keyfile_id_hex(a->sign->id, ids[0]);
	keyfile_id_hex(next->id, ids[1]);
	idp[0] = ids[0];
	idp[1] = ids[1];
	linep[0] = lines[0];
	linep[1] = lines[1];
	ev.actor = (char *)"operator";
	ev.action = (char *)AUDIT_ROTATE_ACTION;
	ev.outcome = (char *)"ok";
	ev.reason = (char *)"gateway signing key rotated: key_ids and public_keys are the old and the new key";
	ev.key_ids = idp;
	ev.n_key_ids = 2;
	ev.public_keys = linep;
	ev.n_public_keys = 2;
	if ((r = audit_prepare(a->st, "INSERT INTO audit_keys(seq, key_id, pub) VALUES (?1, ?2, ?3)", &ins, err)) != 0 ||
	    (r = store_begin(a->st, err)) != 0)
		goto out;
	in_txn = 1;
	if ((r = audit_sync(a, err)) != 0)
		goto out;
	f = a->pending;
	/* The event gets a checkpoint of its own, signed by the old key, which is what vouches for the new one. */
	if ((r = audit_add(a, &f, &ev, err)) != 0 || (r = audit_sign(a, &f, next, err)) != 0)
		goto out;
	sqlite3_bind_int64(ins, 1, (sqlite3_int64)ev.seq);
	sqlite3_bind_blob(ins, 2, next->id, KEYFILE_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(ins, 3, next->pub, 32, SQLITE_STATIC);
	if ((r = audit_step(a->st, ins, "record key rotation", err)) != 0 || (r = store_commit(a->st, err)) != 0)
		goto out;
	in_txn = 0;
	a->committed = a->pending = f;
	a->sign = next;
	r = 0;
out:
	if (in_txn) {
		store_rollback(a->st);
		audit_txn_end(a, 0);
	}
	sqlite3_finalize(ins);
	keyfile_free(old_pub);
	keyfile_free(new_pub);
	return r;
}

/* ---- time ---------------------------------------------------------------- */

void
audit_format_time(int64_t t, char out[AUDIT_TIME_MAX])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, AUDIT_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, AUDIT_TIME_MAX, "%" PRId64, t);
}

int
audit_parse_time(const char *s, int64_t *out, struct cg_err *err)
{
	struct tm tm, back;
	time_t t;
	size_t len = strlen(s), i;
	int y, mo, d, h = 0, mi = 0, se = 0, used = -1;
	int64_t v = 0;

	*out = 0;
	if (len > 0 && len <= 12 && strspn(s, "0123456789") == len) {
		for (i = 0; i < len; i++)
			v = v * 10 + (s[i] - '0');
		*out = v;
		return 0;
	}
	if (len == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) == 3 && used == 10) {
		/* midnight UTC */
	} else if (len == 20 && sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &se, &used) == 6 &&
	    used == 20) {
		/* a full UTC timestamp */
	} else
		return cg_err_set(err, CG_ERR_ARG, "time '%.40s' is not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or unix "
		    "seconds", s);
	for (i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '+' || s[i] == '-' ? (i != 4 && i != 7) : 0)
			return cg_err_set(err, CG_ERR_ARG, "time '%.40s' is not a valid date", s);
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	/* timegm normalizes 2024-02-30 into March: reject what does not come back the same. */
	if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_year != y - 1900 || back.tm_mon != mo - 1 ||
	    back.tm_mday != d || back.tm_hour != h || back.tm_min != mi || back.tm_sec != se)
		return cg_err_set(err, CG_ERR_ARG, "time '%.40s' is not a valid date", s);
	*out = (int64_t)t;
	return 0;
}
