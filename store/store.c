/* store.c - see store.h */
#include "store/store.h"
#include "store/faultvfs.h"

#include <stdlib.h>
#include <string.h>

enum {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_BATCH_EXISTS, ST_BATCH_INSERT, ST_RECORD_INSERT, ST_OUTCOME_INSERT,
	ST_REFS, ST_REFS_ALL, ST_SEALED, ST_BATCHES, ST_COUNT, ST_COUNT_ALL, ST_NSTMT
};

static const char *const store_sql[ST_NSTMT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_BATCH_EXISTS] = "SELECT digest FROM batches WHERE batch_id = ?1",
	[ST_BATCH_INSERT] = "INSERT INTO batches(batch_id, partner, digest, records, policy_hash, received_at, "
			    "wrapped_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_RECORD_INSERT] = "INSERT INTO records(batch, partner, idx, email_token, phone_token, consent_bits, "
			     "consent_at, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_OUTCOME_INSERT] = "INSERT INTO outcomes(batch, partner, idx, email_token, phone_token, consent_bits, "
			      "consent_at, payload, experiment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_REFS] = "SELECT id, consent_at, consent_bits, email_token, phone_token FROM records "
		    "WHERE partner = ?1 ORDER BY id",
	/* No index on partner: one pass over the table in rowid order serves both sides of a join. */
	[ST_REFS_ALL] = "SELECT id, consent_at, consent_bits, email_token, phone_token, partner, batch, idx, payload "
			"FROM records ORDER BY id",
	[ST_BATCHES] = "SELECT id, batch_id, partner, wrapped_key FROM batches ORDER BY id",
	[ST_SEALED] = "SELECT r.batch, r.idx, b.batch_id, r.partner, r.payload, b.wrapped_key FROM records r "
		      "JOIN batches b ON b.id = r.batch WHERE r.id = ?1",
	[ST_COUNT] = "SELECT count(*) FROM records WHERE partner = ?1",
	[ST_COUNT_ALL] = "SELECT count(*) FROM records",
};

/* The columns of a stored record, which an outcome (an outcome batch's record) has too. */
#define STORE_RECORD_COLUMNS \
	"  id INTEGER PRIMARY KEY," \
	"  batch INTEGER NOT NULL REFERENCES batches(id)," \
	"  partner TEXT NOT NULL," \
	"  idx INTEGER NOT NULL," \
	"  email_token BLOB," \
	"  phone_token BLOB," \
	"  consent_bits INTEGER NOT NULL," \
	"  consent_at INTEGER NOT NULL," \
	"  payload BLOB NOT NULL"

static const char store_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB) STRICT;"
	"CREATE TABLE IF NOT EXISTS batches("
	"  id INTEGER PRIMARY KEY,"
	"  batch_id BLOB NOT NULL UNIQUE,"
	"  partner TEXT NOT NULL,"
	"  digest BLOB NOT NULL,"
	"  records INTEGER NOT NULL,"
	"  policy_hash BLOB NOT NULL,"
	"  received_at INTEGER NOT NULL,"
	"  wrapped_key BLOB NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS records(" STORE_RECORD_COLUMNS ") STRICT;"
	/* An outcome batch's records (BATCH_KIND_OUTCOMES): the Outcome kept sealed as received, like a record */
	"CREATE TABLE IF NOT EXISTS outcomes(" STORE_RECORD_COLUMNS ", experiment TEXT NOT NULL) STRICT;"
	"CREATE INDEX IF NOT EXISTS outcomes_experiment ON outcomes(experiment);"
	"CREATE TABLE IF NOT EXISTS audit_events("
	"  seq INTEGER PRIMARY KEY,"
	"  event BLOB NOT NULL,"
	"  leaf BLOB NOT NULL) STRICT;"
	"CREATE TABLE IF NOT EXISTS audit_checkpoints("
	"  size INTEGER PRIMARY KEY,"
	"  note TEXT NOT NULL) STRICT;";

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[ST_NSTMT];
};

static int
store_dberr(struct store *st, int code, const char *what, struct cg_err *err)
{
	return cg_err_set(err, code, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

int
store_open(const char *path, int flags, struct store **out, struct cg_err *err)
{
	struct store *st = NULL;
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int r, i, on = 1;
	const char *vfs;

	*out = NULL;
	if ((r = faultvfs_name(&vfs, err)) != 0)
		return r;
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		free(st);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	if (flags & STORE_OPEN_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &st->db, oflags, vfs) != SQLITE_OK) {
		r = cg_err_set(err, CG_ERR_DB, "cannot open database %s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, 10000);
	if (sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK ||
	    sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on) != SQLITE_OK) {
		r = store_dberr(st, CG_ERR_DB, "configure", err);
		goto out;
	}
	/*
	 * secure_delete so that erased rows leave no ciphertext or token behind.
	 * A 64 MiB page cache (main and temp): a batch's transaction appends
	 * records but also inserts tombstones and stages erasures at random
	 * keys, which with the default 2 MiB re-read pages from the WAL
	 * (measured: a batch with 100k withdrawals spent half as long on them).
	 */
	if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
	    "PRAGMA secure_delete=ON; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0; "
	    "PRAGMA cache_size=-65536; PRAGMA temp.cache_size=-65536;",
	    NULL, NULL, NULL) != SQLITE_OK) {
		r = store_dberr(st, CG_ERR_DB, "set pragmas", err);
		goto out;
	}
	if (sqlite3_exec(st->db, store_schema, NULL, NULL, NULL) != SQLITE_OK) {
		r = store_dberr(st, CG_ERR_DB, "create schema (not a crossgate database?)", err);
		goto out;
	}
	for (i = 0; i < ST_NSTMT; i++) {
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
		    NULL) != SQLITE_OK) {
			r = store_dberr(st, CG_ERR_DB, "prepare", err);
			goto out;
		}
	}
	*out = st;
	st = NULL; /* transferred */
	r = 0;
out:
	store_close(st);
	return r;
}

void
store_close(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < ST_NSTMT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db != NULL)
		sqlite3_close(st->db);
	free(st->path);
	free(st);
}

sqlite3 *
store_db(struct store *st)
{
	return st->db;
}

const char *
store_path(const struct store *st)
{
	return st->path;
}

static int
store_step_done(struct store *st, int which, const char *what, struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[which];
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return store_dberr(st, CG_ERR_DB, what, err);
	return 0;
}

int
store_begin(struct store *st, struct cg_err *err)
{
	return store_step_done(st, ST_BEGIN, "begin transaction", err);
}

int
store_commit(struct store *st, struct cg_err *err)
{
	return store_step_done(st, ST_COMMIT, "commit", err);
}

void
store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		(void)store_step_done(st, ST_ROLLBACK, "rollback", NULL);
}

int
store_checkpoint(struct store *st, struct cg_err *err)
{
	int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

	if (rc != SQLITE_OK)
		return store_dberr(st, CG_ERR_DB, "checkpoint", err);
	return 0;
}

int
store_batch_exists(struct store *st, const unsigned char *batch_id, size_t len, int *exists,
    struct cg_err *err)
{
	unsigned char digest[32];

	return store_batch_digest(st, batch_id, len, exists, digest, err);
}

int
store_batch_digest(struct store *st, const unsigned char *batch_id, size_t len, int *exists,
    unsigned char digest[32], struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[ST_BATCH_EXISTS];
	int rc;

	*exists = 0;
	memset(digest, 0, 32);
	sqlite3_bind_blob(s, 1, batch_id, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*exists = 1;
		if (sqlite3_column_bytes(s, 0) == 32)
			memcpy(digest, sqlite3_column_blob(s, 0), 32);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_dberr(st, CG_ERR_DB, "look up batch", err);
	return 0;
}

int
store_batch_insert(struct store *st, const unsigned char *batch_id, size_t id_len, const char *partner,
    const unsigned char digest[32], uint64_t records, const unsigned char policy_hash[32], int64_t received_at,
    const unsigned char *wrapped_key, size_t wrapped_len, int64_t *rowid, struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[ST_BATCH_INSERT];
	int r;

	*rowid = 0;
	sqlite3_bind_blob(s, 1, batch_id, (int)id_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, partner, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, digest, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)records);
	sqlite3_bind_blob(s, 5, policy_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, received_at);
	sqlite3_bind_blob(s, 7, wrapped_key, (int)wrapped_len, SQLITE_STATIC);
	if ((r = store_step_done(st, ST_BATCH_INSERT, "insert batch", err)) != 0)
		return r;
	*rowid = sqlite3_last_insert_rowid(st->db);
	return 0;
}

/* Bind a record's columns ?1..?8, in the order records and outcomes share. */
static void
store_record_bind(sqlite3_stmt *s, const struct store_record *rec)
{
	sqlite3_bind_int64(s, 1, rec->batch);
	sqlite3_bind_text(s, 2, rec->partner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)rec->idx);
	if (rec->email_token != NULL)
		sqlite3_bind_blob(s, 4, rec->email_token, TOKEN_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	if (rec->phone_token != NULL)
		sqlite3_bind_blob(s, 5, rec->phone_token, TOKEN_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 5);
	sqlite3_bind_int64(s, 6, rec->consent_bits);
	sqlite3_bind_int64(s, 7, rec->consent_at);
	sqlite3_bind_blob(s, 8, rec->payload, (int)rec->payload_len, SQLITE_STATIC);
}

int
store_record_insert(struct store *st, const struct store_record *rec, struct cg_err *err)
{
	store_record_bind(st->stmt[ST_RECORD_INSERT], rec);
	return store_step_done(st, ST_RECORD_INSERT, "insert record", err);
}

/* Append the current row of s (id, consent_at, consent_bits, email_token, phone_token) to *v. */
static int
store_ref_push(sqlite3_stmt *s, struct store_ref **v, size_t *len, size_t *cap)
{
	struct store_ref *ref, *nv;

	if (*len == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		if ((nv = realloc(*v, ncap * sizeof(**v))) == NULL)
			return CG_ERR_NOMEM;
		*v = nv;
		*cap = ncap;
	}
	ref = &(*v)[(*len)++];
	memset(ref, 0, sizeof(*ref));
	ref->id = sqlite3_column_int64(s, 0);
	ref->consent_at = sqlite3_column_int64(s, 1);
	ref->consent_bits = (uint32_t)sqlite3_column_int64(s, 2);
	if (sqlite3_column_bytes(s, 3) == TOKEN_LEN) {
		memcpy(ref->email, sqlite3_column_blob(s, 3), TOKEN_LEN);
		ref->has_email = 1;
	}
	if (sqlite3_column_bytes(s, 4) == TOKEN_LEN) {
		memcpy(ref->phone, sqlite3_column_blob(s, 4), TOKEN_LEN);
		ref->has_phone = 1;
	}
	return 0;
}

int
store_outcome_insert(struct store *st, const struct store_record *rec, const char *experiment, struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[ST_OUTCOME_INSERT];

	store_record_bind(s, rec);
	sqlite3_bind_text(s, 9, experiment, -1, SQLITE_STATIC);
	return store_step_done(st, ST_OUTCOME_INSERT, "insert outcome", err);
}

size_t
store_ref_tokens(const struct store_ref *ref, struct token out[2])
{
	size_t n = 0;

	if (ref->has_email) {
		out[n].kind = TOKEN_KIND_EMAIL;
		memcpy(out[n++].value, ref->email, TOKEN_LEN);
	}
	if (ref->has_phone) {
		out[n].kind = TOKEN_KIND_PHONE;
		memcpy(out[n++].value, ref->phone, TOKEN_LEN);
	}
	return n;
}

int
store_refs_load(struct store *st, const char *partner, struct store_ref **refs, size_t *n,
    struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[ST_REFS];
	struct store_ref *v = NULL;
	size_t len = 0, cap = 0;
	int rc, r;

	*refs = NULL;
	*n = 0;
	sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_ref_push(s, &v, &len, &cap) != 0) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory loading records");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = store_dberr(st, CG_ERR_DB, "read records", err);
		goto out;
	}
	*refs = v;
	*n = len;
	v = NULL; /* transferred */
	r = 0;
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	free(v);
	return r;
}

/* Copy a payload into the arena's blocks (STORE_PAYLOAD_BLOCK bytes, or one for a larger payload). */
#define STORE_PAYLOAD_BLOCK ((size_t)4 << 20)
static int
store_payload_copy(struct store_payloads *pay, size_t *used, const void *src, size_t len, unsigned char **out)
{
	unsigned char *blk;

	if (pay->nblocks == 0 || *used + len > pay->block_len[pay->nblocks - 1]) {
		size_t size = len > STORE_PAYLOAD_BLOCK ? len : STORE_PAYLOAD_BLOCK;
		if (pay->nblocks == pay->cblocks) {
			size_t ncap = pay->cblocks ? pay->cblocks * 2 : 64;
			unsigned char **nb = realloc(pay->blocks, ncap * sizeof(*nb));
			size_t *nl;
			if (nb == NULL)
				return CG_ERR_NOMEM;
			pay->blocks = nb;
			if ((nl = realloc(pay->block_len, ncap * sizeof(*nl))) == NULL)
				return CG_ERR_NOMEM;
			pay->block_len = nl;
			pay->cblocks = ncap;
		}
		if ((blk = malloc(size)) == NULL)
			return CG_ERR_NOMEM;
		pay->blocks[pay->nblocks] = blk;
		pay->block_len[pay->nblocks++] = size;
		*used = 0;
	}
	blk = pay->blocks[pay->nblocks - 1];
	if (len)
		memcpy(blk + *used, src, len);
	*out = blk + *used;
	*used += len;
	return 0;
}

/* Append the payload columns of the current row of s (batch, idx, payload at 6, 7, 8) to rec[*len]. */
static int
store_payload_push(sqlite3_stmt *s, struct store_payloads *pay, int k, size_t *used, size_t len, size_t *cap)
{
	struct store_payload *p, *nv;

	if (len == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		if ((nv = realloc(pay->rec[k], ncap * sizeof(*nv))) == NULL)
			return CG_ERR_NOMEM;
		pay->rec[k] = nv;
		*cap = ncap;
	}
	p = &pay->rec[k][len];
	p->batch = sqlite3_column_int64(s, 6);
	p->idx = (uint64_t)sqlite3_column_int64(s, 7);
	p->len = (size_t)sqlite3_column_bytes(s, 8);
	return store_payload_copy(pay, used, sqlite3_column_blob(s, 8), p->len, &p->ct);
}

int
store_refs_load_pair(struct store *st, const char *const partner[2], struct store_ref *refs[2], size_t n[2],
    struct store_payloads *pay, store_row_fn fn, void *ctx, struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[ST_REFS_ALL];
	struct store_ref *v[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 }, cap[2] = { 0, 0 }, pcap[2] = { 0, 0 }, used = 0;
	int rc, r, k;

	for (k = 0; k < 2; k++) {
		refs[k] = NULL;
		n[k] = 0;
	}
	if (pay != NULL)
		memset(pay, 0, sizeof(*pay));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(s, 5);

		for (k = 0; k < 2; k++)
			if (p != NULL && strcmp(p, partner[k]) == 0)
				break;
		if (k == 2)
			continue;
		if ((pay != NULL && store_payload_push(s, pay, k, &used, len[k], &pcap[k]) != 0) ||
		    store_ref_push(s, &v[k], &len[k], &cap[k]) != 0) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory loading records");
			goto out;
		}
		if (fn != NULL && (r = fn(ctx, k, len[k] - 1, &v[k][len[k] - 1],
		    pay != NULL ? &pay->rec[k][len[k] - 1] : NULL)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = store_dberr(st, CG_ERR_DB, "read records", err);
		goto out;
	}
	for (k = 0; k < 2; k++) {
		refs[k] = v[k];
		n[k] = len[k];
		v[k] = NULL; /* transferred */
	}
	r = 0;
out:
	sqlite3_reset(s);
	if (fn != NULL) {
		int rf = fn(ctx, -1, 0, NULL, NULL);
		if (r == 0 && rf != 0) {
			r = rf;
			for (k = 0; k < 2; k++) {
				v[k] = refs[k];          /* taken back, to be freed */
				refs[k] = NULL;
				n[k] = 0;
			}
		}
	}
	for (k = 0; k < 2; k++)
		free(v[k]);
	if (r != 0 && pay != NULL)
		store_payloads_free(pay);
	return r;
}

void
store_payloads_free(struct store_payloads *pay)
{
	size_t i;

	for (i = 0; i < pay->nblocks; i++)
		free(pay->blocks[i]);
	free(pay->blocks);
	free(pay->block_len);
	free(pay->rec[0]);
	free(pay->rec[1]);
	memset(pay, 0, sizeof(*pay));
}

int
store_batches_load(struct store *st, struct store_batch **out, size_t *n, struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[ST_BATCHES];
	struct store_batch *v = NULL, *nv;
	size_t len = 0, cap = 0;
	int rc, r;

	*out = NULL;
	*n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_batch *b;
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory loading batches");
				goto out;
			}
			v = nv;
		}
		b = &v[len++];
		memset(b, 0, sizeof(*b));
		b->id = sqlite3_column_int64(s, 0);
		/* The same checks as store_sealed_get, reported when a record of the batch is read. */
		if (sqlite3_column_bytes(s, 1) != 16 || sqlite3_column_bytes(s, 2) > 64 ||
		    sqlite3_column_bytes(s, 3) > (int)sizeof(b->wrapped_key)) {
			b->damaged = 1;
			continue;
		}
		memcpy(b->batch_id, sqlite3_column_blob(s, 1), 16);
		b->wrapped_len = (size_t)sqlite3_column_bytes(s, 3);
		if (b->wrapped_len)
			memcpy(b->wrapped_key, sqlite3_column_blob(s, 3), b->wrapped_len);
	}
	if (rc != SQLITE_DONE) {
		r = store_dberr(st, CG_ERR_DB, "read batches", err);
		goto out;
	}
	*out = v;
	*n = len;
	v = NULL; /* transferred */
	r = 0;
out:
	sqlite3_reset(s);
	free(v);
	return r;
}

int
store_sealed_get(struct store *st, int64_t id, struct store_sealed *out, struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[ST_SEALED];
	const void *p;
	int rc, r;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? cg_err_set(err, CG_ERR_NOTFOUND, "record %lld not found", (long long)id)
				      : store_dberr(st, CG_ERR_DB, "read record", err);
		goto out;
	}
	out->batch = sqlite3_column_int64(s, 0);
	out->idx = (uint64_t)sqlite3_column_int64(s, 1);
	if (sqlite3_column_bytes(s, 2) != 16 || sqlite3_column_bytes(s, 3) > 64 ||
	    sqlite3_column_bytes(s, 5) > (int)sizeof(out->wrapped_key)) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: record %lld: damaged batch row", st->path, (long long)id);
		goto out;
	}
	memcpy(out->batch_id, sqlite3_column_blob(s, 2), 16);
	memcpy(out->partner, sqlite3_column_text(s, 3), (size_t)sqlite3_column_bytes(s, 3));
	out->partner[sqlite3_column_bytes(s, 3)] = '\0';
	out->wrapped_len = (size_t)sqlite3_column_bytes(s, 5);
	/* An empty blob comes back as NULL, and memcpy from NULL is undefined even for 0 bytes. */
	if (out->wrapped_len)
		memcpy(out->wrapped_key, sqlite3_column_blob(s, 5), out->wrapped_len);
	out->payload_len = (size_t)sqlite3_column_bytes(s, 4);
	p = sqlite3_column_blob(s, 4);
	if ((out->payload = malloc(out->payload_len ? out->payload_len : 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (out->payload_len)
		memcpy(out->payload, p, out->payload_len);
	r = 0;
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

int
store_count_records(struct store *st, const char *partner, uint64_t *n, struct cg_err *err)
{
	sqlite3_stmt *s = st->stmt[partner ? ST_COUNT : ST_COUNT_ALL];
	int rc;

	*n = 0;
	if (partner != NULL)
		sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		return store_dberr(st, CG_ERR_DB, "count records", err);
	return 0;
}
