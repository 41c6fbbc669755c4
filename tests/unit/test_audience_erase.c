/*
 * test_audience_erase.c - a withdrawal takes its users out of every audience
 * and experiment, at both partners, in work linear in the tables: the work
 * is counted in SQLite virtual-machine steps (a progress handler), not
 * timed.  A partner controls how many users it withdraws, so a quadratic
 * erasure would let it hold the gateway's ingest: the correlated list
 * subquery of 3031b14 took 46 s for 18,000 withdrawals against 6,600
 * members, and 16 times the steps here for 4 times the input.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "cgtest.h"
#include "cgtest_sql.h"
#include "gateway/audience.h"
#include "gateway/experiment.h"

#define STEPS_PER_TICK 1000

static int
count_tick(void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "sql: %s: %s\n", sql, msg ? msg : "?");
		CHECK(0);
	}
	sqlite3_free(msg);
}

/*
 * Two audiences of n subjects (a k row and a g row each), an experiment on
 * each, and k withdrawing every 4th person plus n/4 tokens no audience
 * holds.  In a1, subject i's g row carries person i+1's g token: a delete
 * that crossed from one audience to another's experiment would take rows
 * that belong to a subject still there.  Returns the erasure's work in ticks of STEPS_PER_TICK
 * virtual-machine steps.
 */
static uint64_t
erase_run(const char *dir, int n)
{
	char path[256];
	struct store *st = NULL;
	struct cg_err err = { 0 };
	sqlite3 *db;
	sqlite3_stmt *m = NULL, *e = NULL, *p = NULL;
	uint64_t ticks = 0;
	int a, i, s, ok = 1;

	snprintf(path, sizeof(path), "%s/erase-%d.db", dir, n);
	CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), 0);
	if (st == NULL)
		return 0;
	db = store_db(st);
	CHECK_EQ_INT(audience_schema(st, &err), 0);
	CHECK_EQ_INT(experiment_schema(st, &err), 0);
	exec_ok(db, "CREATE TEMP TABLE IF NOT EXISTS erase_pending(kind INTEGER NOT NULL, token BLOB NOT NULL, "
	    "upto INTEGER NOT NULL, PRIMARY KEY (kind, token)) WITHOUT ROWID");
	exec_ok(db, "BEGIN");
	exec_ok(db, "INSERT INTO experiments VALUES ('e0', 'id0', 'a0', 'k', 'ana', 500000000, x'00', 0), "
	    "('e1', 'id1', 'a1', 'k', 'ana', 500000000, x'00', 0)");
	CHECK(sqlite3_prepare_v2(db, "INSERT INTO audience_members(audience, subject, partner, kind, token) "
	    "VALUES (?1, ?2, ?3, 1, ?4)", -1, &m, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "INSERT INTO experiment_subjects(experiment, partner, token, arm) "
	    "VALUES (?1, ?2, ?3, ?4)", -1, &e, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "INSERT INTO temp.erase_pending(kind, token, upto) VALUES (1, ?1, 0)", -1, &p,
	    NULL) == SQLITE_OK);
	for (i = 0; i < n; i++) {
		unsigned char tok[3][TOKEN_LEN];
		int g1 = (i + 1) % n;

		/* person i's token at k and at g: fixed bytes, so both runs build the same tables */
		for (s = 0; s < 3; s++) {
			memset(tok[s], 0, TOKEN_LEN);
			tok[s][0] = (unsigned char)(s ? 1 : 0);
			memcpy(tok[s] + 1, s == 2 ? &g1 : &i, sizeof(i));
			crypto_generichash(tok[s], TOKEN_LEN, tok[s], TOKEN_LEN, NULL, 0);
		}
		for (a = 0; a < 2; a++)
			for (s = 0; s < 2; s++) {
				sqlite3_bind_text(m, 1, a ? "a1" : "a0", -1, SQLITE_STATIC);
				sqlite3_bind_int(m, 2, i);
				sqlite3_bind_text(m, 3, s ? "g" : "k", -1, SQLITE_STATIC);
				sqlite3_bind_blob(m, 4, tok[a && s ? 2 : s], TOKEN_LEN, SQLITE_STATIC);
				ok &= sqlite3_step(m) == SQLITE_DONE;
				sqlite3_reset(m);
				sqlite3_bind_text(e, 1, a ? "e1" : "e0", -1, SQLITE_STATIC);
				sqlite3_bind_text(e, 2, s ? "g" : "k", -1, SQLITE_STATIC);
				sqlite3_bind_blob(e, 3, tok[a && s ? 2 : s], TOKEN_LEN, SQLITE_STATIC);
				sqlite3_bind_int(e, 4, i & 1);
				ok &= sqlite3_step(e) == SQLITE_DONE;
				sqlite3_reset(e);
			}
		if (i % 4 == 0) {
			sqlite3_bind_blob(p, 1, tok[0], TOKEN_LEN, SQLITE_STATIC);
			ok &= sqlite3_step(p) == SQLITE_DONE;
			sqlite3_reset(p);
			tok[1][0] ^= 0xff;     /* a withdrawn token no audience holds */
			sqlite3_bind_blob(p, 1, tok[1], TOKEN_LEN, SQLITE_STATIC);
			ok &= sqlite3_step(p) == SQLITE_DONE;
			sqlite3_reset(p);
		}
	}
	CHECK(ok);             /* every row inserted */
	sqlite3_finalize(m);
	sqlite3_finalize(e);
	sqlite3_finalize(p);
	exec_ok(db, "COMMIT");

	exec_ok(db, "BEGIN");
	sqlite3_progress_handler(db, STEPS_PER_TICK, count_tick, &ticks);
	CHECK_EQ_INT(audience_erase_staged(st, "k", &err), 0);
	sqlite3_progress_handler(db, 0, NULL, NULL);
	exec_ok(db, "COMMIT");

	/* every 4th person gone from both audiences and experiments, at both partners; no one else */
	{
		int64_t left = n - (n + 3) / 4;

		CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM audience_members"), 4 * left);
		CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM experiment_subjects"), 4 * left);
		CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM audience_members WHERE subject % 4 = 0"), 0);
		CHECK_EQ_INT(cgt_sql_int(db, "SELECT count(*) FROM experiment_subjects e JOIN experiments x ON "
		    "x.name = e.experiment JOIN audience_members m ON m.audience = x.audience AND "
		    "m.partner = e.partner AND m.token = e.token"), 4 * left);
	}
	store_close(st);
	unlink(path);
	return ticks;
}

int
main(void)
{
	char dir[] = "/tmp/cg-test-aerase-XXXXXX";
	uint64_t small, big;

	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	small = erase_run(dir, 2000);
	big = erase_run(dir, 8000);
	printf("erasure work: %llu and %llu thousand VM steps for 2,000 and 8,000 people (ratio %.2f; linear 4, "
	    "quadratic 16)\n", (unsigned long long)small, (unsigned long long)big, small ? (double)big / small : 0);
	CHECK(small > 0);
	CHECK(big < 6 * small);
	rmdir(dir);
	CGT_DONE();
}
