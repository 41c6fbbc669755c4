/* test_store.c - the gateway's SQLite storage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/cgtest.h"

static char tmpdir[] = "/tmp/cg-test-store-XXXXXX";

static void
tmp_path(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

static void
remove_db(const char *path)
{
	char p[512];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-journal", path);
	unlink(p);
}

static long long
file_size(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	return (long long)sb.st_size;
}

/* A fresh store at tmpdir/name; NULL (and a failed check) if it cannot be made. */
static struct store *
fresh_store(const char *name, char *path, size_t path_size)
{
	struct store *st = NULL;
	struct cg_err err = { 0 };

	tmp_path(path, path_size, name);
	remove_db(path);
	CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), 0);
	if (st == NULL)
		fprintf(stderr, "store_open: %s\n", err.msg);
	return st;
}

static void
fill(unsigned char *b, size_t n, unsigned char seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)(seed + i * 7);
}

static int
add_batch(struct store *st, unsigned char seed, const char *partner, const unsigned char *wrapped, size_t wrapped_len,
    int64_t *rowid, struct cg_err *err)
{
	unsigned char id[16], digest[32], ph[32];

	fill(id, sizeof(id), seed);
	fill(digest, sizeof(digest), (unsigned char)(seed + 1));
	fill(ph, sizeof(ph), (unsigned char)(seed + 2));
	return store_batch_insert(st, id, sizeof(id), partner, digest, 3, ph, 1700000000, wrapped, wrapped_len,
	    rowid, err);
}

static long long
pragma_int(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void
test_open(void)
{
	struct store *st = NULL;
	struct cg_err err = { 0 };
	char path[256], text[300];
	int r;

	tmp_path(path, sizeof(path), "missing.db");
	remove_db(path);
	st = (struct store *)1;
	r = store_open(path, 0, &st, &err);
	CHECK_EQ_INT(r, CG_ERR_DB);
	CHECK_EQ_INT(err.code, CG_ERR_DB);
	CHECK(st == NULL);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, "cannot open database");
	CHECK_EQ_INT(file_size(path), -1);     /* not created behind the caller's back */

	/* A missing directory fails even with CREATE. */
	tmp_path(path, sizeof(path), "no-such-dir/x.db");
	CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), CG_ERR_DB);
	CHECK(st == NULL);
	CHECK_CONTAINS(err.msg, path);

	tmp_path(path, sizeof(path), "created.db");
	remove_db(path);
	CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), 0);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK_STR(store_path(st), path);
	CHECK(store_db(st) != NULL);
	store_close(st);
	st = NULL;
	CHECK(file_size(path) > 0);

	/* Now that it exists, it opens without CREATE, and the schema is already there. */
	CHECK_EQ_INT(store_open(path, 0, &st, &err), 0);
	CHECK(st != NULL);
	if (st != NULL)
		CHECK_EQ_INT(pragma_int(st, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
		    "('meta', 'batches', 'records', 'audit_events', 'audit_checkpoints')"), 5);
	store_close(st);
	store_close(NULL);

	/* Bytes that are not a database: refused, and left as they were. */
	tmp_path(path, sizeof(path), "garbage.db");
	remove_db(path);
	{
		FILE *f = fopen(path, "w");
		int i;

		CHECK(f != NULL);
		if (f == NULL)
			return;
		for (i = 0; i < 200; i++)
			fputs("this is not an SQLite database, ", f);
		fclose(f);
	}
	{
		long long before = file_size(path);

		st = (struct store *)1;
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), CG_ERR_DB);
		CHECK(st == NULL);
		CHECK_CONTAINS(err.msg, path);
		CHECK_CONTAINS(err.msg, "not a database");
		CHECK_EQ_INT(file_size(path), before);
		snprintf(text, sizeof(text), "%s-wal", path);
		CHECK(file_size(text) <= 0);
	}

	/* An SQLite file of some other program: its tables do not fit. */
	tmp_path(path, sizeof(path), "other.db");
	remove_db(path);
	{
		sqlite3 *db = NULL;

		CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
		CHECK_EQ_INT(sqlite3_exec(db, "CREATE TABLE records(x TEXT)", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	CHECK_EQ_INT(store_open(path, 0, &st, &err), CG_ERR_DB);
	CHECK(st == NULL);
	CHECK_CONTAINS(err.msg, path);
}

static void
test_pragmas(void)
{
	struct store *st;
	sqlite3_stmt *s = NULL;
	char path[256];
	int on = -1;

	if ((st = fresh_store("pragmas.db", path, sizeof(path))) == NULL)
		return;
	CHECK_EQ_INT(sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(s), SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	CHECK_EQ_INT(pragma_int(st, "PRAGMA secure_delete"), 1);
	CHECK_EQ_INT(pragma_int(st, "PRAGMA foreign_keys"), 1);
	CHECK_EQ_INT(pragma_int(st, "PRAGMA synchronous"), 2);   /* FULL */
	CHECK_EQ_INT(sqlite3_db_config(store_db(st), SQLITE_DBCONFIG_DEFENSIVE, -1, &on), SQLITE_OK);
	CHECK_EQ_INT(on, 1);

	/* DEFENSIVE: the schema cannot be edited from SQL. */
	CHECK(sqlite3_exec(store_db(st), "PRAGMA writable_schema=ON; UPDATE sqlite_schema SET sql = '' "
	    "WHERE name = 'records'", NULL, NULL, NULL) != SQLITE_OK);
	store_close(st);
}

static void
test_batches(void)
{
	struct store *st;
	struct cg_err err = { 0 };
	unsigned char id[16], wrapped[48];
	char path[256];
	int64_t row1 = -1, row2 = -1, row = -1;
	int exists = -1;

	if ((st = fresh_store("batches.db", path, sizeof(path))) == NULL)
		return;
	fill(wrapped, sizeof(wrapped), 9);
	fill(id, sizeof(id), 1);
	CHECK_EQ_INT(store_batch_exists(st, id, sizeof(id), &exists, &err), 0);
	CHECK_EQ_INT(exists, 0);
	CHECK_EQ_INT(add_batch(st, 1, "alpha", wrapped, sizeof(wrapped), &row1, &err), 0);
	CHECK(row1 > 0);
	exists = -1;
	CHECK_EQ_INT(store_batch_exists(st, id, sizeof(id), &exists, &err), 0);
	CHECK_EQ_INT(exists, 1);
	/* A prefix of an id is another id. */
	CHECK_EQ_INT(store_batch_exists(st, id, 15, &exists, &err), 0);
	CHECK_EQ_INT(exists, 0);

	CHECK_EQ_INT(add_batch(st, 2, "beta", wrapped, sizeof(wrapped), &row2, &err), 0);
	CHECK(row2 > row1);

	/* The same batch id again: refused by the UNIQUE constraint, and the row id cleared. */
	memset(&err, 0, sizeof(err));
	row = 12345;
	CHECK_EQ_INT(add_batch(st, 1, "gamma", wrapped, sizeof(wrapped), &row, &err), CG_ERR_DB);
	CHECK_EQ_INT(row, 0);
	CHECK_EQ_INT(err.code, CG_ERR_DB);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, "insert batch");
	CHECK_CONTAINS(err.msg, "UNIQUE");

	/* The failed insert left its statement usable. */
	CHECK_EQ_INT(add_batch(st, 3, "gamma", wrapped, sizeof(wrapped), &row, &err), 0);
	CHECK(row > row2);
	fill(id, sizeof(id), 3);
	CHECK_EQ_INT(store_batch_exists(st, id, sizeof(id), &exists, &err), 0);
	CHECK_EQ_INT(exists, 1);
	CHECK_EQ_INT(pragma_int(st, "SELECT count(*) FROM batches"), 3);
	store_close(st);
}

static void
test_records(void)
{
	struct store *st;
	struct cg_err err = { 0 };
	struct store_record rec;
	struct store_ref *refs = NULL;
	struct store_sealed sealed;
	unsigned char wrapped[48], email[4][TOKEN_LEN], phone[4][TOKEN_LEN], payload[100];
	char path[256];
	int64_t batch_a = 0, batch_b = 0, ids[6];
	uint64_t count = 99;
	size_t n = 99, i;
	int k;

	if ((st = fresh_store("records.db", path, sizeof(path))) == NULL)
		return;
	fill(wrapped, sizeof(wrapped), 40);
	CHECK_EQ_INT(add_batch(st, 10, "alpha", wrapped, sizeof(wrapped), &batch_a, &err), 0);
	CHECK_EQ_INT(add_batch(st, 20, "beta", wrapped, 40, &batch_b, &err), 0);
	for (k = 0; k < 4; k++) {
		fill(email[k], TOKEN_LEN, (unsigned char)(100 + k));
		fill(phone[k], TOKEN_LEN, (unsigned char)(200 + k));
	}
	fill(payload, sizeof(payload), 77);

	/* alpha: email only, phone only, both, neither; interleaved with beta's records. */
	memset(&rec, 0, sizeof(rec));
	for (k = 0; k < 6; k++) {
		int alpha = k != 1 && k != 4;
		int ai = k < 1 ? 0 : k < 4 ? k - 1 : k - 2;   /* alpha's index for k = 0, 2, 3, 5 */

		rec.batch = alpha ? batch_a : batch_b;
		rec.partner = alpha ? "alpha" : "beta";
		rec.idx = (uint64_t)k;
		rec.email_token = alpha && (ai == 0 || ai == 2) ? email[ai] : alpha ? NULL : email[3];
		rec.phone_token = alpha && (ai == 1 || ai == 2) ? phone[ai] : NULL;
		rec.consent_bits = alpha ? 0x80000000u | (uint32_t)ai : 0;
		rec.consent_at = 1700000000 + k;
		rec.payload = payload;
		rec.payload_len = (size_t)(10 + k);
		CHECK_EQ_INT(store_record_insert(st, &rec, &err), 0);
		ids[k] = sqlite3_last_insert_rowid(store_db(st));
	}

	CHECK_EQ_INT(store_refs_load(st, "alpha", &refs, &n, &err), 0);
	CHECK_EQ_INT(n, 4);
	if (refs != NULL && n == 4) {
		static const int ks[4] = { 0, 2, 3, 5 };

		for (i = 0; i < 4; i++) {
			CHECK_EQ_INT(refs[i].id, ids[ks[i]]);
			CHECK_EQ_INT(refs[i].consent_at, 1700000000 + ks[i]);
			CHECK_EQ_INT(refs[i].consent_bits, 0x80000000u | (uint32_t)i);
		}
		CHECK(refs[0].id < refs[1].id && refs[1].id < refs[2].id && refs[2].id < refs[3].id);
		CHECK_EQ_INT(refs[0].has_email, 1);
		CHECK_EQ_INT(refs[0].has_phone, 0);
		CHECK(memcmp(refs[0].email, email[0], TOKEN_LEN) == 0);
		CHECK_EQ_INT(refs[1].has_email, 0);
		CHECK_EQ_INT(refs[1].has_phone, 1);
		CHECK(memcmp(refs[1].phone, phone[1], TOKEN_LEN) == 0);
		CHECK_EQ_INT(refs[2].has_email, 1);
		CHECK_EQ_INT(refs[2].has_phone, 1);
		CHECK(memcmp(refs[2].email, email[2], TOKEN_LEN) == 0);
		CHECK(memcmp(refs[2].phone, phone[2], TOKEN_LEN) == 0);
		CHECK_EQ_INT(refs[3].has_email, 0);
		CHECK_EQ_INT(refs[3].has_phone, 0);
		{
			/* Absent tokens are zero, not stale bytes. */
			static const unsigned char zero[TOKEN_LEN];

			CHECK(memcmp(refs[0].phone, zero, TOKEN_LEN) == 0);
			CHECK(memcmp(refs[1].email, zero, TOKEN_LEN) == 0);
			CHECK(memcmp(refs[3].email, zero, TOKEN_LEN) == 0);
		}
	}
	free(refs);
	refs = NULL;

	CHECK_EQ_INT(store_refs_load(st, "beta", &refs, &n, &err), 0);
	CHECK_EQ_INT(n, 2);
	if (refs != NULL && n == 2) {
		CHECK_EQ_INT(refs[0].id, ids[1]);
		CHECK_EQ_INT(refs[1].id, ids[4]);
		CHECK(memcmp(refs[0].email, email[3], TOKEN_LEN) == 0);
	}
	free(refs);
	refs = (struct store_ref *)1;
	n = 99;
	CHECK_EQ_INT(store_refs_load(st, "nobody", &refs, &n, &err), 0);
	CHECK_EQ_INT(n, 0);
	free(refs);

	/* Both partners in one pass: the same refs as a load each, and each record's payload, batch and index. */
	{
		const char *both[2] = { "beta", "alpha" };
		struct store_ref *pr[2], *one;
		struct store_payloads pay;
		struct store_batch *bs = NULL;
		size_t pn[2], n1, nb = 0, k2;
		int side;

		CHECK_EQ_INT(store_refs_load_pair(st, both, pr, pn, &pay, NULL, NULL, &err), 0);
		for (side = 0; side < 2; side++) {
			CHECK_EQ_INT(store_refs_load(st, both[side], &one, &n1, &err), 0);
			CHECK_EQ_INT(pn[side], n1);
			CHECK(n1 == 0 || memcmp(pr[side], one, n1 * sizeof(*one)) == 0);
			for (k2 = 0; k2 < pn[side] && k2 < n1; k2++) {
				CHECK_EQ_INT(store_sealed_get(st, pr[side][k2].id, &sealed, &err), 0);
				CHECK_EQ_INT(pay.rec[side][k2].batch, sealed.batch);
				CHECK_EQ_INT(pay.rec[side][k2].idx, sealed.idx);
				CHECK_EQ_INT(pay.rec[side][k2].len, sealed.payload_len);
				CHECK(memcmp(pay.rec[side][k2].ct, sealed.payload, sealed.payload_len) == 0);
				free(sealed.payload);
			}
			free(one);
			free(pr[side]);
		}
		store_payloads_free(&pay);
		/* without payloads */
		CHECK_EQ_INT(store_refs_load_pair(st, both, pr, pn, NULL, NULL, NULL, &err), 0);
		CHECK_EQ_INT(pn[0], 2);
		CHECK_EQ_INT(pn[1], 4);
		free(pr[0]);
		free(pr[1]);

		CHECK_EQ_INT(store_batches_load(st, &bs, &nb, &err), 0);
		CHECK_EQ_INT(nb, 2);
		if (nb == 2) {
			unsigned char id[16];

			fill(id, sizeof(id), 10);
			CHECK_EQ_INT(bs[0].id, batch_a);
			CHECK_EQ_INT(bs[1].id, batch_b);
			CHECK(memcmp(bs[0].batch_id, id, 16) == 0);
			CHECK_EQ_INT(bs[0].wrapped_len, sizeof(wrapped));
			CHECK(memcmp(bs[0].wrapped_key, wrapped, sizeof(wrapped)) == 0);
			CHECK_EQ_INT(bs[0].damaged, 0);
			CHECK_EQ_INT(bs[1].wrapped_len, 40);
		}
		free(bs);
	}

	CHECK_EQ_INT(store_sealed_get(st, ids[3], &sealed, &err), 0);
	CHECK_EQ_INT(sealed.batch, batch_a);
	CHECK_EQ_INT(sealed.idx, 3);
	{
		unsigned char id[16];

		fill(id, sizeof(id), 10);
		CHECK(memcmp(sealed.batch_id, id, 16) == 0);
	}
	CHECK_STR(sealed.partner, "alpha");
	CHECK_EQ_INT(sealed.wrapped_len, sizeof(wrapped));
	CHECK(memcmp(sealed.wrapped_key, wrapped, sizeof(wrapped)) == 0);
	CHECK_EQ_INT(sealed.payload_len, 13);
	CHECK(sealed.payload != NULL && memcmp(sealed.payload, payload, 13) == 0);
	free(sealed.payload);

	CHECK_EQ_INT(store_sealed_get(st, ids[4], &sealed, &err), 0);
	CHECK_EQ_INT(sealed.batch, batch_b);
	CHECK_EQ_INT(sealed.idx, 4);
	CHECK_STR(sealed.partner, "beta");
	CHECK_EQ_INT(sealed.wrapped_len, 40);
	CHECK_EQ_INT(sealed.payload_len, 14);
	free(sealed.payload);

	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(store_sealed_get(st, ids[5] + 1000, &sealed, &err), CG_ERR_NOTFOUND);
	CHECK(sealed.payload == NULL);
	CHECK_CONTAINS(err.msg, "not found");

	CHECK_EQ_INT(store_count_records(st, "alpha", &count, &err), 0);
	CHECK_EQ_INT(count, 4);
	CHECK_EQ_INT(store_count_records(st, "beta", &count, &err), 0);
	CHECK_EQ_INT(count, 2);
	CHECK_EQ_INT(store_count_records(st, NULL, &count, &err), 0);
	CHECK_EQ_INT(count, 6);
	count = 99;
	CHECK_EQ_INT(store_count_records(st, "nobody", &count, &err), 0);
	CHECK_EQ_INT(count, 0);

	/* foreign_keys: a record of a batch that does not exist is refused. */
	memset(&err, 0, sizeof(err));
	rec.batch = batch_b + 100;
	CHECK_EQ_INT(store_record_insert(st, &rec, &err), CG_ERR_DB);
	CHECK_CONTAINS(err.msg, "insert record");
	CHECK_CONTAINS(err.msg, "FOREIGN KEY");
	CHECK_EQ_INT(store_count_records(st, NULL, &count, &err), 0);
	CHECK_EQ_INT(count, 6);
	store_close(st);
}

/* Edge cases of store_sealed_get: an empty payload and wrapped key, a partner name at its limit and over it. */
static void
test_sealed_edges(void)
{
	struct store *st;
	struct cg_err err = { 0 };
	struct store_record rec;
	struct store_sealed sealed;
	unsigned char wrapped[1] = { 0 }, big[65];
	char path[256], partner64[65], partner65[66];
	int64_t batch = 0, id;

	if ((st = fresh_store("edges.db", path, sizeof(path))) == NULL)
		return;
	memset(partner64, 'p', 64);
	partner64[64] = '\0';
	memset(partner65, 'q', 65);
	partner65[65] = '\0';
	CHECK_EQ_INT(add_batch(st, 1, partner64, wrapped, 0, &batch, &err), 0);
	memset(&rec, 0, sizeof(rec));
	rec.batch = batch;
	rec.partner = partner64;
	rec.payload = wrapped;
	rec.payload_len = 0;
	CHECK_EQ_INT(store_record_insert(st, &rec, &err), 0);
	id = sqlite3_last_insert_rowid(store_db(st));
	CHECK_EQ_INT(store_sealed_get(st, id, &sealed, &err), 0);
	CHECK_STR(sealed.partner, partner64);
	CHECK_EQ_INT(sealed.wrapped_len, 0);
	CHECK_EQ_INT(sealed.payload_len, 0);
	CHECK(sealed.payload != NULL);   /* success always hands back something to free */
	free(sealed.payload);

	rec.partner = partner65;
	CHECK_EQ_INT(store_record_insert(st, &rec, &err), 0);
	id = sqlite3_last_insert_rowid(store_db(st));
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(store_sealed_get(st, id, &sealed, &err), CG_ERR_FORMAT);
	CHECK(sealed.payload == NULL);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, "damaged");

	/* A wrapped key longer than the struct holds is damage, not an overflow. */
	memset(big, 1, sizeof(big));
	CHECK_EQ_INT(add_batch(st, 2, "alpha", big, sizeof(big), &batch, &err), 0);
	rec.batch = batch;
	rec.partner = "alpha";
	CHECK_EQ_INT(store_record_insert(st, &rec, &err), 0);
	id = sqlite3_last_insert_rowid(store_db(st));
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(store_sealed_get(st, id, &sealed, &err), CG_ERR_FORMAT);
	CHECK(sealed.payload == NULL);
	CHECK_CONTAINS(err.msg, "damaged");
	/* the join's batch list says so too, for the records of that batch only */
	{
		struct store_batch *bs = NULL;
		size_t nb = 0, i, ndamaged = 0;

		CHECK_EQ_INT(store_batches_load(st, &bs, &nb, &err), 0);
		for (i = 0; i < nb; i++) {
			ndamaged += (size_t)bs[i].damaged;
			if (bs[i].id == batch)
				CHECK_EQ_INT(bs[i].damaged, 1);
		}
		CHECK_EQ_INT(ndamaged, 1);
		free(bs);
	}
	store_close(st);
}

static void
test_transactions(void)
{
	struct store *st;
	struct cg_err err = { 0 };
	struct store_record rec;
	unsigned char wrapped[48], id[16], payload[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	char path[256];
	int64_t batch = 0;
	uint64_t count = 99;
	int exists = -1;

	if ((st = fresh_store("txn.db", path, sizeof(path))) == NULL)
		return;
	fill(wrapped, sizeof(wrapped), 5);
	memset(&rec, 0, sizeof(rec));
	rec.partner = "alpha";
	rec.payload = payload;
	rec.payload_len = sizeof(payload);

	/* Rolled back: nothing of it remains. */
	CHECK_EQ_INT(store_begin(st, &err), 0);
	CHECK_EQ_INT(add_batch(st, 1, "alpha", wrapped, sizeof(wrapped), &batch, &err), 0);
	rec.batch = batch;
	CHECK_EQ_INT(store_record_insert(st, &rec, &err), 0);
	CHECK_EQ_INT(store_count_records(st, NULL, &count, &err), 0);
	CHECK_EQ_INT(count, 1);
	store_rollback(st);
	CHECK_EQ_INT(store_count_records(st, NULL, &count, &err), 0);
	CHECK_EQ_INT(count, 0);
	fill(id, sizeof(id), 1);
	CHECK_EQ_INT(store_batch_exists(st, id, sizeof(id), &exists, &err), 0);
	CHECK_EQ_INT(exists, 0);
	store_rollback(st);   /* no transaction: a no-op */

	/* A transaction inside a transaction is a caller's mistake. */
	CHECK_EQ_INT(store_begin(st, &err), 0);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(store_begin(st, &err), CG_ERR_DB);
	CHECK_CONTAINS(err.msg, "begin transaction");
	store_rollback(st);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(store_commit(st, &err), CG_ERR_DB);
	CHECK_CONTAINS(err.msg, "commit");

	/* Committed: survives closing and reopening. */
	CHECK_EQ_INT(store_begin(st, &err), 0);
	CHECK_EQ_INT(add_batch(st, 1, "alpha", wrapped, sizeof(wrapped), &batch, &err), 0);
	rec.batch = batch;
	CHECK_EQ_INT(store_record_insert(st, &rec, &err), 0);
	rec.idx = 1;
	CHECK_EQ_INT(store_record_insert(st, &rec, &err), 0);
	CHECK_EQ_INT(store_commit(st, &err), 0);
	store_close(st);
	st = NULL;

	CHECK_EQ_INT(store_open(path, 0, &st, &err), 0);
	if (st == NULL)
		return;
	exists = 0;
	CHECK_EQ_INT(store_batch_exists(st, id, sizeof(id), &exists, &err), 0);
	CHECK_EQ_INT(exists, 1);
	CHECK_EQ_INT(store_count_records(st, "alpha", &count, &err), 0);
	CHECK_EQ_INT(count, 2);
	store_close(st);
}

static void
test_checkpoint(void)
{
	struct store *st;
	struct cg_err err = { 0 };
	unsigned char wrapped[48];
	char path[256], wal[300];
	int64_t batch = 0;
	int i;

	if ((st = fresh_store("wal.db", path, sizeof(path))) == NULL)
		return;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	fill(wrapped, sizeof(wrapped), 5);
	for (i = 0; i < 20; i++)
		CHECK_EQ_INT(add_batch(st, (unsigned char)i, "alpha", wrapped, sizeof(wrapped), &batch, &err), 0);
	CHECK(file_size(wal) > 0);
	CHECK_EQ_INT(store_checkpoint(st, &err), 0);
	CHECK_EQ_INT(file_size(wal), 0);
	store_close(st);
	st = NULL;

	/* Nothing was lost by the truncation. */
	CHECK_EQ_INT(store_open(path, 0, &st, &err), 0);
	if (st == NULL)
		return;
	CHECK_EQ_INT(pragma_int(st, "SELECT count(*) FROM batches"), 20);
	store_close(st);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_open();
	test_pragmas();
	test_batches();
	test_records();
	test_sealed_edges();
	test_transactions();
	test_checkpoint();
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	CGT_DONE();
}
