/*
 * test_erase_stage.c - what a batch's staged erasures take: the tokens are
 * staged in memory (erase.h) and applied once, so a token staged twice in a
 * batch, by two withdrawals or a withdrawal and a revocation, must erase up
 * to the later of its two dates, as the upsert it replaced did; a phone
 * must erase only the rows without an email; a revocation everything; the
 * staged users must leave the audiences (which read temp.erase_pending),
 * and an applied stager is empty.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "cgtest.h"
#include "cgtest_sql.h"
#include "gateway/audience.h"
#include "gateway/erase.h"

static struct token
tok(uint32_t kind, unsigned char who)
{
	struct token t;

	t.kind = kind;
	memset(t.value, who, TOKEN_LEN);
	return t;
}

/* A record of partner `p` for the person `who` (email and/or phone), dated at. */
static void
put(struct store *st, int64_t batch, const char *p, int email, int phone, unsigned char who, int64_t at)
{
	static uint64_t idx;
	unsigned char e[TOKEN_LEN], ph[TOKEN_LEN], payload[20] = { 0 };
	struct store_record r = { batch, p, idx++, email ? e : NULL, phone ? ph : NULL, 1, at, payload,
		sizeof(payload) };
	struct cg_err err = { 0 };

	memset(e, who, sizeof(e));
	memset(ph, who, sizeof(ph));
	CHECK_EQ_INT(store_record_insert(st, &r, &err), 0);
}

/* An audience member row: audience "a", the subject's token at partner p (its key: an email). */
static void
member(sqlite3 *db, int subject, const char *p, unsigned char who)
{
	unsigned char tokv[TOKEN_LEN];
	sqlite3_stmt *q = NULL;

	memset(tokv, who, sizeof(tokv));
	CHECK_EQ_INT(sqlite3_prepare_v2(db, "INSERT INTO audience_members(audience, subject, partner, kind, token) "
	    "VALUES ('a', ?1, ?2, ?3, ?4)", -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_int(q, 1, subject);
	sqlite3_bind_text(q, 2, p, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, TOKEN_KIND_EMAIL);
	sqlite3_bind_blob(q, 4, tokv, TOKEN_LEN, SQLITE_STATIC);
	CHECK_EQ_INT(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
}

int
main(void)
{
	char dir[] = "/tmp/cg-test-estage-XXXXXX", path[128], sql[160];
	unsigned char id[16] = { 1 }, id2[16] = { 2 }, digest[32] = { 0 }, wrapped[72] = { 0 };
	struct keyfile_key *storage = NULL;
	struct erase_stager *sg = NULL;
	struct store *st = NULL;
	struct cg_err err = { 0 };
	struct token t;
	uint64_t erased = 0;
	int64_t b, b2;
	sqlite3 *db;
	int i;

	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/stage.db", dir);
	CHECK_EQ_INT(keyfile_generate(KEYFILE_STORAGE, &storage, &err), 0);
	CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), 0);
	if (st == NULL || storage == NULL)
		return 1;
	db = store_db(st);
	CHECK_EQ_INT(store_begin(st, &err), 0);
	CHECK_EQ_INT(store_batch_insert(st, id, 16, "k", digest, 0, digest, 0, wrapped, sizeof(wrapped), &b, &err), 0);
	CHECK_EQ_INT(store_batch_insert(st, id2, 16, "g", digest, 0, digest, 0, wrapped, sizeof(wrapped), &b2, &err),
	    0);
	/* person 1 (email): records dated 10, 15 and 25; staged up to 10, then up to 20 */
	put(st, b, "k", 1, 1, 1, 10);
	put(st, b, "k", 1, 1, 1, 15);
	put(st, b, "k", 1, 1, 1, 25);
	/* person 2 (email): staged up to 30, then up to 5: the later date wins whatever the order */
	put(st, b, "k", 1, 0, 2, 20);
	/* person 3 by phone: only its row without an email goes */
	put(st, b, "k", 0, 1, 3, 7);
	put(st, b, "k", 1, 1, 3, 7);
	/* person 4, never staged; and person 1 at the other partner */
	put(st, b, "k", 1, 0, 4, 1);
	put(st, b2, "g", 1, 0, 1, 1);
	/* person 5 revoked: every record goes, whatever its date */
	put(st, b, "k", 1, 0, 5, 1);
	put(st, b, "k", 1, 0, 5, 1000);
	/* an audience holding persons 1 and 4 at k (subjects 1 and 4, with their g rows) */
	CHECK_EQ_INT(audience_schema(st, &err), 0);
	member(db, 1, "k", 1);
	member(db, 1, "g", 1);
	member(db, 4, "k", 4);
	member(db, 4, "g", 4);
	CHECK_EQ_INT(erase_stager_open(st, storage, "k", &sg, &err), 0);
	if (sg == NULL)
		return 1;
	t = tok(TOKEN_KIND_EMAIL, 1);
	CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 10, 10, &err), 0);
	CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 20, 20, &err), 0);
	t = tok(TOKEN_KIND_EMAIL, 2);
	CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 30, 30, &err), 0);
	CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 5, 5, &err), 0);
	t = tok(TOKEN_KIND_PHONE, 3);
	CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 9, 9, &err), 0);
	t = tok(TOKEN_KIND_EMAIL, 5);
	CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 50, INT64_MAX, &err), 0);
	/* 3,000 more, each twice, so that the array grows: tokens no record has */
	for (i = 0; i < 3000; i++) {
		t.kind = TOKEN_KIND_EMAIL;
		memset(t.value, 0xee, TOKEN_LEN);
		memcpy(t.value, &(int){ i / 2 }, sizeof(int));
		CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 7, 7, &err), 0);
	}
	/* a token of unknown kind is refused, and nothing of it is staged */
	t.kind = 7;
	CHECK_EQ_INT(erase_stager_add(sg, &t, 1, 9, 9, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(erase_apply(sg, &erased, &err), 0);
	CHECK_EQ_INT(erased, 6);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records WHERE consent_at IN (1, 1000) AND partner = 'k' "
	    "AND email_token = x'0505050505050505050505050505050505050505050505050505050505050505'"), 0);
	/* subject 1 (person 1 withdrew) left the audience, both its rows; subject 4 stayed */
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM audience_members WHERE subject = 1"), 0);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM audience_members WHERE subject = 4"), 2);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM records WHERE partner = 'k' AND email_token = x'%s'",
	    "0101010101010101010101010101010101010101010101010101010101010101");
	CHECK_EQ_INT(cgt_sql_int(db, sql), 1);                 /* only the one dated 25 */
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records WHERE partner = 'k' AND consent_at = 25"), 1);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records WHERE consent_at = 20"), 0);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records WHERE consent_at = 7"), 1);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records WHERE consent_at = 7 AND email_token IS NOT NULL"),
	    1);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records WHERE partner = 'g'"), 1);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records"), 4);
	/* one tombstone per token, dated the latest; the staging table is left empty */
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM tombstones WHERE partner = 'k'"), 4 + 1500);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT max(revoked_at) FROM tombstones"), 50);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM tombstones WHERE revoked_at = 30"), 1);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM temp.erase_pending"), 0);
	/* an applied stager is empty: a record stored after it stays */
	put(st, b, "k", 1, 0, 2, 3);
	CHECK_EQ_INT(erase_apply(sg, &erased, &err), 0);
	CHECK_EQ_INT(erased, 0);
	CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM records"), 5);
	erase_stager_close(sg);
	CHECK_EQ_INT(store_commit(st, &err), 0);
	store_close(st);
	keyfile_free(storage);
	unlink(path);
	rmdir(dir);
	CGT_DONE();
}
