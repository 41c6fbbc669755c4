/* audit.c - see audit.h */
#include "audit/audit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "proto/audit.pb-c.h"

/* Bumped when the audit tables change; audit_schema() migrates older files. */
#define AUDIT_SCHEMA_VERSION 3     /* 2: audit_nodes; 3: audit_keys */
#define AUDIT_ERASE_ACTION "audit-erase"
#define AUDIT_NODE_END_MAX ((uint64_t)1 << 56)   /* id = end * 64 + level stays below 2^63 */
#define AUDIT_NONE UINT64_MAX

struct audit {
	struct store *st;
	const struct keyfile_key *sign;
	char origin[AUDIT_ORIGIN_MAX];      /* the log's: its first key's, and every signature's key name */
	struct merkle_frontier committed;
	struct merkle_frontier pending;
	sqlite3_stmt *ins_event, *ins_cp, *ins_node, *ins_span, *max_seq;
};

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

static int
audit_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: audit log: %s: %s", store_path(st), what,
	    sqlite3_errmsg(store_db(st)));
}

static int
audit_prepare(struct store *st, const char *sql, sqlite3_stmt **s, struct cg_err *err)
{
	*s = NULL;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, s, NULL) != SQLITE_OK)
		return audit_dberr(st, "prepare", err);
	return 0;
}

static int
audit_step(struct store *st, sqlite3_stmt *s, const char *what, struct cg_err *err)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return audit_dberr(st, what, err);
	return 0;
}

static sqlite3_int64
audit_node_id(unsigned int level, uint64_t index)
{
	return (sqlite3_int64)((((index + 1) << level) << 6) | level);
}

/* ---- a cheap look into an event ----------------------------------------- */

/*
 * The fields verification needs, without unpacking (which allocates): the
 * wire format is walked whole, so that garbage is still rejected, and the
 * last value of a repeated scalar wins, as protobuf parsers do.
 */
struct audit_view {
	uint64_t seq;
	int64_t time;
	const unsigned char *action;
	size_t action_len;
};

static int
audit_varint(const unsigned char *b, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;
	unsigned int shift;

	for (shift = 0; shift < 64 && *pos < len; shift += 7) {
		unsigned char c = b[(*pos)++];

		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

static int
audit_view_parse(const unsigned char *b, size_t len, struct audit_view *v)
{
	size_t pos = 0;
	uint64_t tag, x;

	memset(v, 0, sizeof(*v));
	while (pos < len) {
		if (audit_varint(b, len, &pos, &tag) != 0 || tag >> 3 == 0 || tag >> 3 > 536870911)
			return -1;
		switch (tag & 7) {
		case 0:
			if (audit_varint(b, len, &pos, &x) != 0)
				return -1;
			if (tag >> 3 == 1)
				v->seq = x;
			else if (tag >> 3 == 2)
				v->time = (int64_t)x;
			break;
		case 1:
			if (len - pos < 8)
				return -1;
			pos += 8;
			break;
		case 2:
			if (audit_varint(b, len, &pos, &x) != 0 || x > len - pos)
				return -1;
			if (tag >> 3 == 4) {
				v->action = b + pos;
				v->action_len = (size_t)x;
			}
			pos += (size_t)x;
			break;
		case 5:
			if (len - pos < 4)
				return -1;
			pos += 4;
			break;
		default:
			return -1;
		}
		/* seq, time and action with another wire type would not unpack. */
		if ((tag >> 3 == 1 || tag >> 3 == 2) && (tag & 7) != 0)
			return -1;
		if (tag >> 3 == 4 && (tag & 7) != 2)
			return -1;
	}
	return 0;
}

static int
audit_view_is(const struct audit_view *v, const char *action)
{
	size_t n = strlen(action);

	return v->action_len == n && v->action != NULL && memcmp(v->action, action, n) == 0;
}

/* ---- the signing keys a verifier trusts ---------------------------------- */

static void
audit_signer_set(struct audit_signer *k, uint64_t from, const unsigned char id[KEYFILE_ID_LEN],
    const unsigned char pub[32])
{
	k->from = from;
	memcpy(k->id, id, KEYFILE_ID_LEN);
	memcpy(k->pub, pub, 32);
	audit_origin(id, k->name);
}

int
audit_keychain_init(struct audit_keychain *kc, const struct keyfile_key *pub, struct cg_err *err)
{
	memset(kc, 0, sizeof(*kc));
	if (pub->type != KEYFILE_ED25519_PUBLIC && pub->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "audit verification needs the gateway's Ed25519 public key");
	audit_signer_set(&kc->keys[0], 0, pub->id, pub->pub);
	snprintf(kc->origin, sizeof(kc->origin), "%s", kc->keys[0].name);
	kc->n = 1;
	return 0;
}

/* The key that must sign the checkpoint of tree `size`. */
static const struct audit_signer *
audit_keychain_signer(const struct audit_keychain *kc, uint64_t size)
{
	size_t i = kc->n - 1;

	while (i > 0 && kc->keys[i].from >= size)
		i--;
	return &kc->keys[i];
}

/* The signed text of a note ends at its blank line. */
static int
audit_note_text(const char *note, size_t len, size_t *text_len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (note[i] == '\n' && note[i + 1] == '\n') {
			*text_len = i + 1;
			return 0;
		}
	}
	return -1;
}

/*
 * A gateway key's signature on a note: under the log's origin (the key name
 * since key names follow C2SP), or under the key's own name `own`, which
 * logs rotated by earlier versions used after a rotation.  Key ids keep the
 * two keys of a rotation's checkpoint apart under one name.
 */
static int
audit_note_verify(const char *note, size_t len, const char *origin, const char *own, const unsigned char pub[32],
    size_t *text_len, struct cg_err *err)
{
	if (note_verify(note, len, origin, pub, text_len, err) == 0)
		return 0;
	if (strcmp(origin, own) == 0)
		return CG_ERR_VERIFY;
	cg_err_clear(err);
	return note_verify(note, len, own, pub, text_len, err) == 0 ? 0 : CG_ERR_VERIFY;
}

int
audit_keychain_check(const struct audit_keychain *kc, const char *note, size_t len, struct checkpoint *cp,
    size_t *text_len, struct cg_err *err)
{
	const struct audit_signer *k;
	struct cg_err sub;
	char hex[2 * KEYFILE_ID_LEN + 1];
	size_t tl, tl2, i;

	uint64_t size;

	memset(cp, 0, sizeof(*cp));
	*text_len = 0;
	cg_err_clear(&sub);
	/* The size (unsigned yet) picks the key; nothing else of the body is used before the signature holds. */
	if (audit_note_text(note, len, &tl) != 0 || checkpoint_parse(note, tl, cp, &sub) != 0) {
		memset(cp, 0, sizeof(*cp));
		return cg_err_set(err, CG_ERR_VERIFY, "checkpoint: %s", sub.msg[0] ? sub.msg : "not a signed note");
	}
	size = cp->size;
	k = audit_keychain_signer(kc, size);
	if (audit_note_verify(note, len, kc->origin, k->name, k->pub, &tl2, &sub) != 0 || tl2 != tl) {
		keyfile_id_hex(k->id, hex);
		memset(cp, 0, sizeof(*cp));
		return cg_err_set(err, CG_ERR_VERIFY, "checkpoint at size %llu: not signed by gateway key %s, the key "
		    "in force at that size%s: %s", (unsigned long long)size, hex, kc->n > 1 ? " after the verified "
		    "key rotations" : " (no verified key-rotate event announced another key)", sub.msg);
	}
	if (strcmp(cp->origin, kc->origin) != 0) {
		memset(cp, 0, sizeof(*cp));
		return cg_err_set(err, CG_ERR_VERIFY, "checkpoint at size %llu: origin is not this gateway's log (%s)",
		    (unsigned long long)size, kc->origin);
	}
	/* A rotation's own checkpoint carries the new key's signature too: the announced key is held. */
	for (i = 1; i < kc->n; i++) {
		if (kc->keys[i].from == cp->size && audit_note_verify(note, len, kc->origin, kc->keys[i].name,
		    kc->keys[i].pub, &tl2, &sub) != 0) {
			keyfile_id_hex(kc->keys[i].id, hex);
			memset(cp, 0, sizeof(*cp));
			return cg_err_set(err, CG_ERR_VERIFY, "checkpoint at size %llu (a key rotation) lacks the "
			    "signature of the new key %s: %s", (unsigned long long)size, hex, sub.msg);
		}
	}
	*text_len = tl;
	return 0;
}

/*
 * Take the key a key-rotate event at `seq` announces (the caller makes sure
 * the event is authentic: verified under the current key).  The event must
 * name the current key as the old one.
 */
static int
audit_keychain_apply(struct audit_keychain *kc, uint64_t seq, const unsigned char *event, size_t len,
    struct cg_err *err)
{
	Crossgate__AuditEvent *ev;
	struct keyfile_key *oldk = NULL, *newk = NULL;
	const struct audit_signer *cur = &kc->keys[kc->n - 1];
	struct cg_err sub;
	char hex[2 * KEYFILE_ID_LEN + 1];
	int r;

	if ((ev = crossgate__audit_event__unpack(NULL, len, event)) == NULL)
		return cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu is not a valid audit event",
		    (unsigned long long)seq);
	cg_err_clear(&sub);
	if (strcmp(ev->action, AUDIT_ROTATE_ACTION) != 0 || ev->n_public_keys != 2) {
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu does not carry the old and the new public "
		    "key", (unsigned long long)seq);
		goto out;
	}
	if (keyfile_parse_public_line(ev->public_keys[0], strlen(ev->public_keys[0]), KEYFILE_ED25519_PUBLIC, &oldk,
	    &sub) != 0 || keyfile_parse_public_line(ev->public_keys[1], strlen(ev->public_keys[1]),
	    KEYFILE_ED25519_PUBLIC, &newk, &sub) != 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu: %s", (unsigned long long)seq, sub.msg);
		goto out;
	}
	if (memcmp(oldk->id, cur->id, KEYFILE_ID_LEN) != 0 || memcmp(oldk->pub, cur->pub, 32) != 0) {
		keyfile_id_hex(cur->id, hex);
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu rotates another key than %s, the key in force",
		    (unsigned long long)seq, hex);
		goto out;
	}
	if (memcmp(newk->pub, cur->pub, 32) == 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu rotates to the same key",
		    (unsigned long long)seq);
		goto out;
	}
	if (kc->n > AUDIT_KEYS_MAX || seq >= UINT64_MAX - 1 || seq + 1 <= cur->from) {
		r = cg_err_set(err, CG_ERR_LIMIT, "key-rotate event %llu: more than %d rotations, or out of order",
		    (unsigned long long)seq, AUDIT_KEYS_MAX);
		goto out;
	}
	audit_signer_set(&kc->keys[kc->n++], seq + 1, newk->id, newk->pub);
	r = 0;
out:
	keyfile_free(oldk);
	keyfile_free(newk);
	crossgate__audit_event__free_unpacked(ev, NULL);
	return r;
}

/* ---- schema ------------------------------------------------------------ */

static int
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

static int
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

struct audit_nodes {
	struct store *st;
	sqlite3_stmt *leaf, *node;
};

static int
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

static void
audit_nodes_close(struct audit_nodes *n)
{
	sqlite3_finalize(n->leaf);
	sqlite3_finalize(n->node);
	n->leaf = n->node = NULL;
}

/* merkle_node_fn over the store: level 0 is the leaf column, above it audit_nodes. */
static int
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

static int
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
static int
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
static int
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
	if ((r = note_sign(body, body_len, a->origin, a->sign->key, &note, err)) != 0)
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

/* ---- erasure ------------------------------------------------------------- */

struct audit_range {
	uint64_t from, to;
};

int
audit_erase(struct audit *a, uint64_t from, uint64_t to, int64_t before, const char *reason, uint64_t *erased,
    struct cg_err *err)
{
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	Crossgate__AuditEvent__CountsEntry c[3], *cp[3];
	struct audit_range *ranges = NULL, *tmp;
	sqlite3_stmt *sel = NULL, *upd = NULL, *mark = NULL;
	size_t n_ranges = 0, cap = 0, i;
	uint64_t by, count = 0, lo = 0, hi = 0;
	int rc, r, in_txn = 0;

	*erased = 0;
	if (from >= to)
		return cg_err_set(err, CG_ERR_ARG, "audit erase: empty range");
	if ((r = store_begin(a->st, err)) != 0)
		return r;
	in_txn = 1;
	if ((r = audit_sync(a, err)) != 0)
		goto out;
	by = a->pending.size;   /* the seq the audit-erase event will get */
	if (to > by)
		to = by;
	if ((r = audit_prepare(a->st, "SELECT seq, event FROM audit_events WHERE seq >= ?1 AND seq < ?2 "
	    "AND length(event) > 0 ORDER BY seq", &sel, err)) != 0 ||
	    (r = audit_prepare(a->st, "UPDATE audit_events SET event = x'' WHERE seq >= ?1 AND seq < ?2", &upd, err))
	    != 0 ||
	    (r = audit_prepare(a->st, "INSERT INTO audit_erased(seq, erase_event) SELECT seq, ?3 FROM audit_events "
	    "WHERE seq >= ?1 AND seq < ?2", &mark, err)) != 0)
		goto out;
	sqlite3_bind_int64(sel, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(sel, 2, (sqlite3_int64)to);
	/* Collected first as runs of seqs: the table is not updated under a running scan. */
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		struct audit_view v;
		uint64_t seq = (uint64_t)sqlite3_column_int64(sel, 0);

		if (audit_view_parse(sqlite3_column_blob(sel, 1), (size_t)sqlite3_column_bytes(sel, 1), &v) != 0) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is not a valid audit event; run 'crossgate "
			    "audit verify'", store_path(a->st), (unsigned long long)seq);
			goto out;
		}
		/* Erase and key-rotate events stay: they account for erased payloads and vouch for keys. */
		if (audit_view_is(&v, AUDIT_ERASE_ACTION) || audit_view_is(&v, AUDIT_ROTATE_ACTION) || v.time >= before)
			continue;
		if (n_ranges > 0 && ranges[n_ranges - 1].to == seq) {
			ranges[n_ranges - 1].to = seq + 1;
		} else {
			if (n_ranges == cap) {
				cap = cap ? 2 * cap : 64;
				if ((tmp = realloc(ranges, cap * sizeof(*ranges))) == NULL) {
					r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
					goto out;
				}
				ranges = tmp;
			}
			ranges[n_ranges].from = seq;
			ranges[n_ranges].to = seq + 1;
			n_ranges++;
		}
		if (count == 0)
			lo = seq;
		hi = seq + 1;
		count++;
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(a->st, "read", err);
		goto out;
	}
	sqlite3_finalize(sel);
	sel = NULL;
	if (count == 0) {
		r = 0;
		goto out;
	}
	for (i = 0; i < n_ranges; i++) {
		sqlite3_bind_int64(upd, 1, (sqlite3_int64)ranges[i].from);
		sqlite3_bind_int64(upd, 2, (sqlite3_int64)ranges[i].to);
		if ((r = audit_step(a->st, upd, "erase", err)) != 0)
			goto out;
		sqlite3_bind_int64(mark, 1, (sqlite3_int64)ranges[i].from);
		sqlite3_bind_int64(mark, 2, (sqlite3_int64)ranges[i].to);
		sqlite3_bind_int64(mark, 3, (sqlite3_int64)by);
		if ((r = audit_step(a->st, mark, "record erasure", err)) != 0)
			goto out;
	}
	for (i = 0; i < 3; i++) {
		crossgate__audit_event__counts_entry__init(&c[i]);
		cp[i] = &c[i];
	}
	c[0].key = (char *)"erased";
	c[0].value = count;
	c[1].key = (char *)"from";
	c[1].value = lo;
	c[2].key = (char *)"to";
	c[2].value = hi;
	ev.actor = (char *)"operator";
	ev.action = (char *)AUDIT_ERASE_ACTION;
	ev.outcome = (char *)"ok";
	ev.reason = (char *)(reason != NULL ? reason : "retention");
	ev.counts = cp;
	ev.n_counts = 3;
	if ((r = audit_append(a, &ev, err)) != 0)
		goto out;
	if (ev.seq != by) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "audit erase: the erase event moved");
		goto out;
	}
	if ((r = store_commit(a->st, err)) != 0)
		goto out;
	in_txn = 0;
	audit_txn_end(a, 1);
	*erased = count;
	/* The WAL still holds the old pages until checkpointed. */
	r = store_checkpoint(a->st, err);
out:
	if (in_txn) {
		store_rollback(a->st);
		audit_txn_end(a, 0);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_finalize(mark);
	free(ranges);
	return r;
}

/* ---- verification ------------------------------------------------------------ */

/* Check one stored checkpoint's signature and shape; root comparison is the caller's. */
static int
audit_check_note(const char *path, const struct audit_keychain *kc, uint64_t size, const char *note,
    size_t note_len, struct checkpoint *cp, struct cg_err *err)
{
	struct cg_err sub;
	size_t text_len;

	cg_err_clear(&sub);
	if (audit_keychain_check(kc, note, note_len, cp, &text_len, &sub) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: %s", path, sub.msg);
	if (cp->size != size)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint stored at size %llu signs size %llu", path,
		    (unsigned long long)size, (unsigned long long)cp->size);
	return 0;
}

/* Erased events waiting for the audit-erase event that accounts for them. */
struct audit_pending {
	uint64_t by, count, lo, hi;
};

struct audit_pendings {
	struct audit_pending *v;
	size_t n, cap;
};

static struct audit_pending *
audit_pending_find(struct audit_pendings *p, uint64_t by)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (p->v[i].by == by)
			return &p->v[i];
	}
	return NULL;
}

static int
audit_pending_add(struct audit_pendings *p, uint64_t by, uint64_t seq)
{
	struct audit_pending *e = audit_pending_find(p, by), *tmp;

	if (e == NULL) {
		if (p->n == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 8;

			if ((tmp = realloc(p->v, cap * sizeof(*tmp))) == NULL)
				return -1;
			p->v = tmp;
			p->cap = cap;
		}
		e = &p->v[p->n++];
		e->by = by;
		e->count = 0;
		e->lo = seq;
	}
	e->count++;
	e->hi = seq + 1;
	return 0;
}

/* An audit-erase event must claim exactly the erased events that name it. */
static int
audit_check_erase_event(const char *path, uint64_t seq, const unsigned char *bytes, size_t len,
    const struct audit_view *v, struct audit_pendings *p, int copy, uint64_t *kept, struct cg_err *err)
{
	struct audit_pending *e = audit_pending_find(p, seq), none = { seq, 0, 0, 0 };
	Crossgate__AuditEvent *ev;
	uint64_t claimed = 0, from = 0, to = 0;
	size_t i;
	int r = 0;

	if (e == NULL)
		e = &none;
	if (!audit_view_is(v, AUDIT_ERASE_ACTION)) {
		if (e->count > 0)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is erased and names event %llu as its "
			    "erasure, which is not an audit-erase event", path, (unsigned long long)e->lo,
			    (unsigned long long)seq);
		return 0;
	}
	if ((ev = crossgate__audit_event__unpack(NULL, len, bytes)) == NULL)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is not a valid audit event", path,
		    (unsigned long long)seq);
	for (i = 0; i < ev->n_counts; i++) {
		if (strcmp(ev->counts[i]->key, "erased") == 0)
			claimed = ev->counts[i]->value;
		else if (strcmp(ev->counts[i]->key, "from") == 0)
			from = ev->counts[i]->value;
		else if (strcmp(ev->counts[i]->key, "to") == 0)
			to = ev->counts[i]->value;
	}
	crossgate__audit_event__free_unpacked(ev, NULL);
	/* A copy keeps what the gateway erased after copying it: fewer marked than claimed is fine there. */
	if (copy && claimed > e->count && (e->count == 0 || (e->lo >= from && e->hi <= to)))
		*kept += claimed - e->count;
	else if (claimed != e->count || (e->count > 0 && (e->lo < from || e->hi > to)))
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit-erase event %llu says it erased %llu events in "
		    "[%llu, %llu), but %llu events in [%llu, %llu) are marked erased by it", path,
		    (unsigned long long)seq, (unsigned long long)claimed, (unsigned long long)from,
		    (unsigned long long)to, (unsigned long long)e->count, (unsigned long long)e->lo,
		    (unsigned long long)e->hi);
	if (e != &none)
		*e = p->v[--p->n];
	return r;
}

struct audit_span {
	uint64_t first, end;
};

static int
audit_load_spans(struct store *st, struct audit_span **out, size_t *n, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	struct audit_span *v = NULL, *tmp;
	size_t cap = 0;
	int rc, r;

	*out = NULL;
	*n = 0;
	if ((r = audit_prepare(st, "SELECT first, end FROM audit_spans ORDER BY end", &s, err)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			if ((tmp = realloc(v, cap * sizeof(*v))) == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			v = tmp;
		}
		v[*n].first = (uint64_t)sqlite3_column_int64(s, 0);
		v[*n].end = (uint64_t)sqlite3_column_int64(s, 1);
		(*n)++;
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(st, "read spans", err);
		goto out;
	}
	*out = v;
	v = NULL; /* transferred */
	r = 0;
out:
	free(v);
	sqlite3_finalize(s);
	return r;
}

/*
 * Verification streams the log in batches through two threads: this one
 * reads the rows (SQLite) and walks the tree, a helper hashes the next
 * batch's leaves meanwhile.  The leaf hashes are most of the work, and one
 * connection must not be used from two threads, so that is the split.
 */
#define AUDIT_VBATCH 8192

struct audit_vslot {
	uint64_t seq;
	size_t off, len;
	int has_leaf;
	unsigned char leaf_col[MERKLE_HASH_LEN];
};

struct audit_vbatch {
	struct audit_vslot *slots;
	size_t n;
	unsigned char *bytes;
	size_t used, cap;
	unsigned char (*leaf)[MERKLE_HASH_LEN];
};

static void
audit_vbatch_free(struct audit_vbatch *b)
{
	free(b->slots);
	free(b->bytes);
	free(b->leaf);
	memset(b, 0, sizeof(*b));
}

/* Up to AUDIT_VBATCH rows; *more is 0 once the table is read. */
static int
audit_vbatch_read(struct store *st, sqlite3_stmt *ev, struct audit_vbatch *b, int *more, struct cg_err *err)
{
	int rc = SQLITE_DONE;

	b->n = 0;
	b->used = 0;
	if (b->slots == NULL && ((b->slots = calloc(AUDIT_VBATCH, sizeof(*b->slots))) == NULL ||
	    (b->leaf = calloc(AUDIT_VBATCH, MERKLE_HASH_LEN)) == NULL))
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	while (b->n < AUDIT_VBATCH && (rc = sqlite3_step(ev)) == SQLITE_ROW) {
		struct audit_vslot *s = &b->slots[b->n];
		size_t len = (size_t)sqlite3_column_bytes(ev, 1);

		if (len > b->cap - b->used) {
			size_t cap = b->cap ? b->cap : 1 << 20;
			unsigned char *tmp;

			while (len > cap - b->used)
				cap *= 2;
			if ((tmp = realloc(b->bytes, cap)) == NULL)
				return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			b->bytes = tmp;
			b->cap = cap;
		}
		s->seq = (uint64_t)sqlite3_column_int64(ev, 0);
		s->off = b->used;
		s->len = len;
		if (len > 0)
			memcpy(b->bytes + b->used, sqlite3_column_blob(ev, 1), len);
		b->used += len;
		s->has_leaf = sqlite3_column_bytes(ev, 2) == MERKLE_HASH_LEN;
		if (s->has_leaf)
			memcpy(s->leaf_col, sqlite3_column_blob(ev, 2), MERKLE_HASH_LEN);
		b->n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return audit_dberr(st, "read", err);
	*more = rc == SQLITE_ROW;
	return 0;
}

static void *
audit_vbatch_hash(void *arg)
{
	struct audit_vbatch *b = arg;
	size_t i;

	for (i = 0; i < b->n; i++)
		merkle_leaf_hash(b->bytes + b->slots[i].off, b->slots[i].len, b->leaf[i]);
	return NULL;
}

/* Everything the walk over the events carries from one event to the next. */
struct audit_vstate {
	const char *path;
	struct audit_keychain *kc;
	struct audit_report *rep;
	sqlite3_stmt *cp, *nd, *er, *keys;
	int cp_rc, er_rc, keys_rc, nodes_ok, bad_node, last_erased, copy;
	uint64_t cp_size, er_seq, last_cp, bad_leaf, bad_node_idx, seq;
	unsigned int bad_node_level;
	struct merkle_frontier f;
	struct audit_pendings pend;
	struct audit_span *spans;
	size_t n_spans, span_i;
};

static int
audit_verify_event(struct audit_vstate *s, const struct audit_vslot *slot, const unsigned char *bytes,
    const unsigned char hashed[MERKLE_HASH_LEN], struct cg_err *err)
{
	unsigned char leaf[MERKLE_HASH_LEN], root[MERKLE_HASH_LEN], nodes[64][MERKLE_HASH_LEN];
	const char *path = s->path;
	struct checkpoint ck;
	uint64_t seq = slot->seq;
	size_t len = slot->len;
	unsigned int k, l;
	int is_erased, r;

	s->seq = seq;
	if (seq != s->f.size)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is missing (the log jumps to %llu)", path,
		    (unsigned long long)s->f.size, (unsigned long long)seq);
	if (s->er_rc == SQLITE_ROW && s->er_seq < seq)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is listed as erased but still holds its payload",
		    path, (unsigned long long)s->er_seq);
	is_erased = s->er_rc == SQLITE_ROW && s->er_seq == seq && len == 0;
	if (is_erased) {
		uint64_t by = (uint64_t)sqlite3_column_int64(s->er, 1);

		/* Nothing to rehash: the stored leaf hash is the event, and the checkpoints check it. */
		if (!slot->has_leaf)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is erased and its leaf hash is missing",
			    path, (unsigned long long)seq);
		if (by <= seq)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is erased by event %llu, which is not a "
			    "later one", path, (unsigned long long)seq, (unsigned long long)by);
		if (audit_pending_add(&s->pend, by, seq) != 0)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		memcpy(leaf, slot->leaf_col, MERKLE_HASH_LEN);
		s->rep->erased++;
		s->er_rc = sqlite3_step(s->er);
		if (s->er_rc == SQLITE_ROW)
			s->er_seq = (uint64_t)sqlite3_column_int64(s->er, 0);
	} else {
		struct audit_view v;

		if (s->er_rc == SQLITE_ROW && s->er_seq == seq)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is listed as erased but still holds its "
			    "payload", path, (unsigned long long)seq);
		if (audit_view_parse(bytes, len, &v) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is not a valid audit event", path,
			    (unsigned long long)seq);
		if (v.seq != seq)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu says it is event %llu (moved)", path,
			    (unsigned long long)seq, (unsigned long long)v.seq);
		memcpy(leaf, hashed, MERKLE_HASH_LEN);
		if (s->bad_leaf == AUDIT_NONE && (!slot->has_leaf || memcmp(slot->leaf_col, leaf, MERKLE_HASH_LEN) != 0))
			s->bad_leaf = seq;
		if ((r = audit_check_erase_event(path, seq, bytes, len, &v, &s->pend, s->copy, &s->rep->kept, err)) != 0)
			return r;
		if (audit_view_is(&v, AUDIT_ROTATE_ACTION)) {
			/* Trusted once the checkpoint right after it verifies under the old key (below). */
			if (!(s->cp_rc == SQLITE_ROW && s->cp_size == seq + 1))
				return cg_err_set(err, CG_ERR_VERIFY, "%s: key-rotate event %llu has no checkpoint of its "
				    "own signed by the old key", path, (unsigned long long)seq);
			if (s->keys_rc != SQLITE_ROW || (uint64_t)sqlite3_column_int64(s->keys, 0) != seq)
				return cg_err_set(err, CG_ERR_VERIFY, "%s: key-rotate event %llu is missing from the key "
				    "index (audit_keys)", path, (unsigned long long)seq);
			if ((r = audit_keychain_apply(s->kc, seq, bytes, len, err)) != 0)
				return cg_err_prefix(err, "%s", path);
			if (sqlite3_column_bytes(s->keys, 1) != KEYFILE_ID_LEN || sqlite3_column_bytes(s->keys, 2) != 32 ||
			    memcmp(sqlite3_column_blob(s->keys, 1), s->kc->keys[s->kc->n - 1].id, KEYFILE_ID_LEN) != 0 ||
			    memcmp(sqlite3_column_blob(s->keys, 2), s->kc->keys[s->kc->n - 1].pub, 32) != 0)
				return cg_err_set(err, CG_ERR_VERIFY, "%s: the key index (audit_keys) does not match "
				    "key-rotate event %llu", path, (unsigned long long)seq);
			s->keys_rc = sqlite3_step(s->keys);
		} else if (s->keys_rc == SQLITE_ROW && (uint64_t)sqlite3_column_int64(s->keys, 0) <= seq) {
			return cg_err_set(err, CG_ERR_VERIFY, "%s: the key index (audit_keys) names event %llu, which is "
			    "not a key-rotate event", path, (unsigned long long)sqlite3_column_int64(s->keys, 0));
		}
	}
	s->last_erased = is_erased;
	merkle_frontier_append_nodes(&s->f, leaf, nodes, &k);
	/* The stored nodes are what proofs are made of: they must be these. */
	for (l = 1; l <= k && s->nodes_ok; l++) {
		int nd_rc = sqlite3_step(s->nd);

		if (nd_rc != SQLITE_ROW || sqlite3_column_int64(s->nd, 0) != audit_node_id(l, seq >> l) ||
		    sqlite3_column_bytes(s->nd, 1) != MERKLE_HASH_LEN ||
		    memcmp(sqlite3_column_blob(s->nd, 1), nodes[l - 1], MERKLE_HASH_LEN) != 0) {
			s->nodes_ok = 0;
			s->bad_node = 1;
			s->bad_node_level = l;
			s->bad_node_idx = seq >> l;
		}
	}

	while (s->span_i < s->n_spans && s->spans[s->span_i].end < s->f.size)
		s->span_i++;
	if (s->cp_rc == SQLITE_ROW && s->cp_size == s->f.size) {
		const char *note = (const char *)sqlite3_column_text(s->cp, 1);

		if ((r = audit_check_note(path, s->kc, s->cp_size, note, (size_t)sqlite3_column_bytes(s->cp, 1),
		    &ck, err)) != 0)
			return r;
		merkle_frontier_root(&s->f, root);
		if (memcmp(ck.root, root, MERKLE_HASH_LEN) != 0) {
			if (s->bad_leaf != AUDIT_NONE || s->f.size - s->last_cp == 1)
				return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu%s does not match the signed checkpoint "
				    "at size %llu: %s", path,
				    (unsigned long long)(s->bad_leaf != AUDIT_NONE ? s->bad_leaf : seq),
				    s->bad_leaf == AUDIT_NONE && s->last_erased ? " (erased)" : "",
				    (unsigned long long)s->cp_size, s->bad_leaf == AUDIT_NONE && s->last_erased ?
				    "its stored leaf hash was changed" : "the event was changed, removed, reordered or inserted");
			return cg_err_set(err, CG_ERR_VERIFY, "%s: events %llu to %llu do not match the signed checkpoint "
			    "at size %llu: one of them was changed, removed, reordered or inserted", path,
			    (unsigned long long)s->last_cp, (unsigned long long)seq, (unsigned long long)s->cp_size);
		}
		if (s->bad_leaf != AUDIT_NONE)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu: the stored leaf hash does not match the "
			    "event (the leaf column was changed; proofs would fail)", path, (unsigned long long)s->bad_leaf);
		if (s->bad_node)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: the stored tree node at level %u, index %llu is missing "
			    "or does not match the events (proofs would fail)", path, s->bad_node_level,
			    (unsigned long long)s->bad_node_idx);
		snprintf(s->rep->latest_checkpoint, sizeof(s->rep->latest_checkpoint), "%s", note);
		s->rep->checkpoints++;
		s->last_cp = s->f.size;
		s->cp_rc = sqlite3_step(s->cp);
		if (s->cp_rc == SQLITE_ROW)
			s->cp_size = (uint64_t)sqlite3_column_int64(s->cp, 0);
	} else if (s->cp_rc == SQLITE_ROW && s->cp_size < s->f.size) {
		return cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint at size %llu out of order", path,
		    (unsigned long long)s->cp_size);
	} else if (!(s->span_i < s->n_spans && s->spans[s->span_i].first < s->f.size &&
	    s->f.size < s->spans[s->span_i].end)) {
		return cg_err_set(err, CG_ERR_VERIFY, "%s: no signed checkpoint for size %llu: event %llu was inserted "
		    "or its checkpoint removed", path, (unsigned long long)s->f.size, (unsigned long long)seq);
	}
	return 0;
}

int
audit_verify(struct store *st, const struct keyfile_key *pub, struct audit_report *rep, struct cg_err *err)
{
	struct audit_vstate s;
	struct audit_vbatch b[2];
	sqlite3_stmt *ev = NULL;
	unsigned char flag[1];
	size_t flag_len;
	pthread_t th;
	size_t i;
	int r, more = 1, cur = 0, running = 0;

	memset(rep, 0, sizeof(*rep));
	memset(&s, 0, sizeof(s));
	memset(b, 0, sizeof(b));
	if ((r = audit_keychain_init(&rep->keys, pub, err)) != 0)
		return r;
	if ((r = audit_schema(st, err)) != 0)
		return r;
	if ((r = audit_meta_get(st, "copy", flag, sizeof(flag), &flag_len, err)) < 0)
		return r;
	s.copy = r == 1;
	s.path = store_path(st);
	s.kc = &rep->keys;
	s.rep = rep;
	s.nodes_ok = 1;
	s.bad_leaf = AUDIT_NONE;
	merkle_frontier_init(&s.f);
	if ((r = audit_prepare(st, "SELECT seq, event, leaf FROM audit_events ORDER BY seq", &ev, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT size, note FROM audit_checkpoints ORDER BY size", &s.cp, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT id, hash FROM audit_nodes ORDER BY id", &s.nd, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT seq, erase_event FROM audit_erased ORDER BY seq", &s.er, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT seq, key_id, pub FROM audit_keys ORDER BY seq", &s.keys, err)) != 0 ||
	    (r = audit_load_spans(st, &s.spans, &s.n_spans, err)) != 0)
		goto out;
	s.keys_rc = sqlite3_step(s.keys);
	s.cp_rc = sqlite3_step(s.cp);
	if (s.cp_rc == SQLITE_ROW)
		s.cp_size = (uint64_t)sqlite3_column_int64(s.cp, 0);
	s.er_rc = sqlite3_step(s.er);
	if (s.er_rc == SQLITE_ROW)
		s.er_seq = (uint64_t)sqlite3_column_int64(s.er, 0);

	if ((r = audit_vbatch_read(st, ev, &b[0], &more, err)) != 0)
		goto out;
	audit_vbatch_hash(&b[0]);
	while (b[cur].n > 0) {
		struct audit_vbatch *next = &b[cur ^ 1];

		next->n = 0;
		if (more) {
			if ((r = audit_vbatch_read(st, ev, next, &more, err)) != 0)
				goto out;
			running = pthread_create(&th, NULL, audit_vbatch_hash, next) == 0;
			if (!running)
				audit_vbatch_hash(next);
		}
		for (i = 0; i < b[cur].n; i++) {
			if ((r = audit_verify_event(&s, &b[cur].slots[i], b[cur].bytes + b[cur].slots[i].off, b[cur].leaf[i],
			    err)) != 0)
				goto out;
		}
		if (running) {
			pthread_join(th, NULL);
			running = 0;
		}
		cur ^= 1;
	}
	if (s.cp_rc == SQLITE_ROW) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: a checkpoint signs size %llu but the log holds only %llu "
		    "events: events were removed from the end", s.path, (unsigned long long)s.cp_size,
		    (unsigned long long)s.f.size);
		goto out;
	}
	if (s.cp_rc != SQLITE_DONE) {
		r = audit_dberr(st, "read checkpoints", err);
		goto out;
	}
	if (s.last_cp != s.f.size) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: no signed checkpoint for size %llu: event %llu was inserted "
		    "or its checkpoint removed", s.path, (unsigned long long)s.f.size, (unsigned long long)s.seq);
		goto out;
	}
	if (s.er_rc == SQLITE_ROW) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is listed as erased but is not in the log", s.path,
		    (unsigned long long)s.er_seq);
		goto out;
	}
	if (s.pend.n > 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu was erased, but no audit-erase event accounts "
		    "for it", s.path, (unsigned long long)s.pend.v[0].lo);
		goto out;
	}
	if (s.keys_rc == SQLITE_ROW) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: the key index (audit_keys) names event %llu, which is not a "
		    "key-rotate event of the log", s.path, (unsigned long long)sqlite3_column_int64(s.keys, 0));
		goto out;
	}
	rep->events = s.f.size;
	merkle_frontier_root(&s.f, rep->root);
	r = 0;
out:
	if (running)
		pthread_join(th, NULL);
	if (r != 0) {
		uint64_t erased = rep->erased;

		memset(rep, 0, sizeof(*rep));
		rep->erased = erased;
	}
	sqlite3_finalize(s.keys);
	audit_vbatch_free(&b[0]);
	audit_vbatch_free(&b[1]);
	free(s.pend.v);
	free(s.spans);
	sqlite3_finalize(ev);
	sqlite3_finalize(s.cp);
	sqlite3_finalize(s.nd);
	sqlite3_finalize(s.er);
	return r;
}

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
static int
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

/* ---- witnesses ----------------------------------------------------------- */

int
audit_cosign(struct store *st, const struct keyfile_key *gw_pub, const struct keyfile_key *witness, const char *name,
    const char *prev, size_t prev_len, uint64_t now, char **state, uint64_t *size, struct cg_err *err)
{
	struct checkpoint cp, pcp;
	struct audit_keychain kc;
	struct cg_err sub;
	sqlite3_stmt *s = NULL;
	char line[NOTE_COSIG_LINE_MAX], *note = NULL, *out = NULL;
	size_t text_len, len, ptl;
	uint64_t n;
	int r;

	*state = NULL;
	*size = 0;
	if (witness->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "cosigning needs the witness's Ed25519 secret key");
	/* The witness trusts gw_pub, and the keys the log's verified rotations handed over to. */
	if ((r = audit_keychain_load(st, gw_pub, &kc, err)) != 0)
		return r;
	if ((r = audit_latest_checkpoint(st, 0, &note, &n, err)) != 0)
		return r;
	if ((r = audit_keychain_check(&kc, note, strlen(note), &cp, &text_len, err)) != 0) {
		cg_err_prefix(err, "%s: the latest checkpoint", store_path(st));
		goto out;
	}
	if (cp.size != n) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: the checkpoint stored at size %llu signs size %llu",
		    store_path(st), (unsigned long long)n, (unsigned long long)cp.size);
		goto out;
	}
	if (prev != NULL) {
		if ((r = audit_keychain_check(&kc, prev, prev_len, &pcp, &ptl, err)) != 0) {
			cg_err_prefix(err, "witness state");
			goto out;
		}
		if (pcp.size > cp.size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: the log's latest checkpoint (size %llu) is smaller than "
			    "the one this witness last cosigned (size %llu): the log was rolled back; refusing to "
			    "cosign", store_path(st), (unsigned long long)cp.size, (unsigned long long)pcp.size);
			goto out;
		}
		cg_err_clear(&sub);
		if ((r = audit_consistent(st, pcp.size, pcp.root, cp.size, cp.root, &sub)) != 0) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: the log is not consistent with the checkpoint this "
			    "witness last cosigned (size %llu): refusing to cosign (%s)", store_path(st),
			    (unsigned long long)pcp.size, sub.msg);
			goto out;
		}
	}
	if ((r = note_cosign(note, text_len, name, witness->key, now, line, err)) != 0 ||
	    (r = audit_cosignature_add(st, cp.size, name, witness->pub, line, err)) != 0)
		goto out;
	len = strlen(note);
	if ((out = malloc(len + strlen(line) + 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(out, note, len);
	memcpy(out + len, line, strlen(line) + 1);
	*state = out;
	*size = cp.size;
	r = 0;
out:
	sqlite3_finalize(s);
	free(note);
	return r;
}

int
audit_cosig_put(struct store *st, const struct audit_cosig *c, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "INSERT OR REPLACE INTO audit_cosignatures(size, witness, key_id, time, line) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)c->size);
	sqlite3_bind_text(s, 2, c->witness, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)c->key_id);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)c->time);
	sqlite3_bind_text(s, 5, c->line, -1, SQLITE_STATIC);
	r = audit_step(st, s, "store cosignature", err);
	sqlite3_finalize(s);
	return r;
}

int
audit_cosignature_add(struct store *st, uint64_t size, const char *name, const unsigned char pub[32], const char *line,
    struct cg_err *err)
{
	struct audit_cosig c;
	sqlite3_stmt *s = NULL;
	char buf[NOTE_COSIG_LINE_MAX + 1];
	size_t tl, len = strlen(line);
	uint64_t t;
	int rc, r;

	if (len == 0 || len > NOTE_COSIG_LINE_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature line is empty or longer than %d bytes",
		    NOTE_COSIG_LINE_MAX);
	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT note FROM audit_checkpoints WHERE size = ?1", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(size > INT64_MAX ? INT64_MAX : size));
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? cg_err_set(err, CG_ERR_NOTFOUND, "%s: no checkpoint at size %llu to cosign",
		    store_path(st), (unsigned long long)size) : audit_dberr(st, "read checkpoints", err);
		goto out;
	}
	{
		const char *note = (const char *)sqlite3_column_text(s, 0);

		if (audit_note_text(note, strlen(note), &tl) != 0) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: the checkpoint at size %llu is not a signed note",
			    store_path(st), (unsigned long long)size);
			goto out;
		}
		if ((r = note_verify_cosig_line(note, tl, line, len, name, pub, &t, err)) != 0) {
			if (r == CG_ERR_NOTFOUND)
				r = cg_err_set(err, CG_ERR_VERIFY, "the cosignature line is not by witness %s", name);
			goto out;
		}
	}
	/* Stored with its newline, as a note's signature line. */
	snprintf(buf, sizeof(buf), "%s%s", line, line[len - 1] == '\n' ? "" : "\n");
	c.size = size;
	c.witness = name;
	c.key_id = note_cosig_key_id(name, pub);
	c.time = t;
	c.line = buf;
	r = audit_cosig_put(st, &c, err);
out:
	sqlite3_finalize(s);
	return r;
}

int
audit_cosig_iter(struct store *st, uint64_t from, audit_cosig_cb cb, void *arg, struct cg_err *err)
{
	struct audit_cosig c;
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT size, witness, key_id, time, line FROM audit_cosignatures WHERE size >= ?1 "
	    "ORDER BY size, witness, key_id", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(from > INT64_MAX ? INT64_MAX : from));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		c.size = (uint64_t)sqlite3_column_int64(s, 0);
		c.witness = (const char *)sqlite3_column_text(s, 1);
		c.key_id = (uint32_t)sqlite3_column_int64(s, 2);
		c.time = (uint64_t)sqlite3_column_int64(s, 3);
		c.line = (const char *)sqlite3_column_text(s, 4);
		if ((r = cb(&c, arg)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : audit_dberr(st, "read cosignatures", err);
out:
	sqlite3_finalize(s);
	return r;
}

int
audit_verify_witnesses(struct store *st, const struct keyfile_key *gw_pub, const struct audit_witness *w, size_t n,
    size_t quorum, uint64_t *size, size_t *got, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	struct audit_keychain kc;
	struct checkpoint ck;
	unsigned char *seen = NULL;
	uint64_t cur = AUDIT_NONE, best_size = 0, qsize = 0;
	size_t count = 0, best = 0, qgot = 0, i, j, distinct = 0;
	int rc, r;

	*size = 0;
	*got = 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(w[i].name, w[j].name) == 0 && memcmp(w[i].pub, w[j].pub, 32) == 0)
				break;
		}
		distinct += j == i;
	}
	if (quorum == 0 || quorum > distinct)
		return cg_err_set(err, CG_ERR_ARG, "the quorum must be between 1 and the number of distinct named "
		    "witnesses (%zu)", distinct);
	if ((seen = calloc(n, 1)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	if ((r = audit_schema(st, err)) != 0 || (r = audit_keychain_load(st, gw_pub, &kc, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT c.size, c.witness, c.line, k.note FROM audit_cosignatures c "
	    "JOIN audit_checkpoints k ON k.size = c.size ORDER BY c.size DESC", &s, err)) != 0)
		goto out;
	for (;;) {
		uint64_t sz = 0;

		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			sz = (uint64_t)sqlite3_column_int64(s, 0);
		/*
		 * A size's cosignatures are all read: the largest with a quorum wins.
		 * The older ones are read and verified too: every stored
		 * cosignature of a named witness must hold.
		 */
		if (cur != AUDIT_NONE && (rc != SQLITE_ROW || sz != cur)) {
			if (count >= quorum && qgot == 0) {
				qgot = count;
				qsize = cur;
			}
			if (count > best) {
				best = count;
				best_size = cur;
			}
			count = 0;
			memset(seen, 0, n);
		}
		if (rc != SQLITE_ROW)
			break;
		cur = sz;
		{
			const char *wname = (const char *)sqlite3_column_text(s, 1);
			const char *line = (const char *)sqlite3_column_text(s, 2);
			const char *note = (const char *)sqlite3_column_text(s, 3);
			size_t text_len;
			uint64_t t;
			struct cg_err sub;

			for (i = 0; i < n; i++) {
				if (strcmp(w[i].name, wname) != 0)
					continue;
				cg_err_clear(&sub);
				if (audit_keychain_check(&kc, note, strlen(note), &ck, &text_len, &sub) != 0) {
					r = cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint at size %llu: %s",
					    store_path(st), (unsigned long long)sz, sub.msg);
					goto out;
				}
				r = note_verify_cosig_line(note, text_len, line, strlen(line), w[i].name, w[i].pub, &t,
				    &sub);
				if (r == CG_ERR_NOTFOUND)
					continue;
				if (r != 0) {
					r = cg_err_set(err, CG_ERR_VERIFY, "%s: cosignature of the checkpoint at size "
					    "%llu: %s", store_path(st), (unsigned long long)sz, sub.msg);
					goto out;
				}
				/* Count a witness once, however often it is named or stored. */
				for (j = 0; j < n; j++) {
					if (strcmp(w[i].name, w[j].name) == 0 && memcmp(w[i].pub, w[j].pub, 32) == 0)
						break;
				}
				if (!seen[j]) {
					seen[j] = 1;
					count++;
				}
			}
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = audit_dberr(st, "read cosignatures", err);
		goto out;
	}
	if (qgot == 0) {
		if (best == 0)
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: no checkpoint is cosigned by any of the named witnesses "
			    "(quorum %zu)", store_path(st), quorum);
		else
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: no checkpoint is cosigned by %zu of the named "
			    "witnesses: at most %zu (checkpoint at size %llu)", store_path(st), quorum, best,
			    (unsigned long long)best_size);
		goto out;
	}
	*size = qsize;
	*got = qgot;
	r = 0;
out:
	free(seen);
	sqlite3_finalize(s);
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
