/*
 * test_agent_state.c - agent/state.c's cache (agent_state_cache) against
 * its SQL path: the same random puts, consent puts and lookups on two state
 * files, one cached, must answer every lookup alike and leave the same
 * tables.  70,000 users, so that the cached commit takes its first-pack
 * branch (the token index dropped and built again); then a second round on
 * the filled files, which takes the ordinary one.
 */
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "cgtest.h"
#include "agent/state.h"

#define USERS 70000u

/* Every row of both tables, in key order, hashed: two files with the same rows hash alike. */
static void
state_digest(const char *path, unsigned char out[32])
{
	static const char *const q[2] = {
		"SELECT partner, user_id, kind, token FROM sent ORDER BY partner, user_id, kind",
		"SELECT partner, user_id, bits, at FROM sent_consent ORDER BY partner, user_id"
	};
	crypto_hash_sha256_state h;
	sqlite3 *db = NULL;
	int i, c;

	crypto_hash_sha256_init(&h);
	CHECK_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (i = 0; i < 2; i++) {
		sqlite3_stmt *st = NULL;
		CHECK_EQ_INT(sqlite3_prepare_v2(db, q[i], -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW)
			for (c = 0; c < 4; c++) {
				int n = sqlite3_column_bytes(st, c);
				const void *b = sqlite3_column_blob(st, c);
				crypto_hash_sha256_update(&h, (const unsigned char *)&n, sizeof(n));
				if (n > 0)
					crypto_hash_sha256_update(&h, b, (unsigned long long)n);
			}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	crypto_hash_sha256_final(&h, out);
}

/* One round: for each of USERS users, in random order, a lookup on both, then maybe a change on both. */
static void
round_run(struct agent_state *a, struct agent_state *b, unsigned seed, size_t *differ, size_t *known)
{
	struct cg_err e;
	uint32_t i;

	for (i = 0; i < USERS; i++) {
		char uid[32];
		struct token ta[2], tb[2], nt[2];
		size_t na = 0, nb = 0, k;
		uint32_t ba = 0, bb = 0, r = (i * 2654435761u) ^ seed, pick = randombytes_uniform(8);
		int64_t aa = 0, ab = 0;
		int fa = 0, fb = 0;

		snprintf(uid, sizeof(uid), "u%u", r % (USERS + USERS / 4));
		CHECK_EQ_INT(agent_state_lookup(a, "k", uid, strlen(uid), ta, &na, &ba, &aa, &fa, &e), 0);
		CHECK_EQ_INT(agent_state_lookup(b, "k", uid, strlen(uid), tb, &nb, &bb, &ab, &fb, &e), 0);
		if (na != nb || fa != fb || ba != bb || aa != ab)
			(*differ)++;
		for (k = 0; k < na && k < nb; k++)
			if (ta[k].kind != tb[k].kind || memcmp(ta[k].value, tb[k].value, TOKEN_LEN) != 0)
				(*differ)++;
		*known += na > 0;
		if (pick < 5) {                  /* new tokens: email, phone, both (phone first), or none */
			size_t n = pick == 4 ? 0 : pick == 2 ? 2 : 1;
			for (k = 0; k < n; k++) {
				nt[k].kind = pick == 1 || (pick == 2 && k == 0) ? 2 : 1;
				randombytes_buf(nt[k].value, TOKEN_LEN);
			}
			CHECK_EQ_INT(agent_state_put(a, "k", uid, strlen(uid), nt, n, &e), 0);
			CHECK_EQ_INT(agent_state_put(b, "k", uid, strlen(uid), nt, n, &e), 0);
		}
		if (pick >= 3 && pick < 7) {     /* a consent, with or without tokens */
			uint32_t bits = randombytes_uniform(16);
			int64_t at = 1700000000 + (int64_t)randombytes_uniform(1000000);
			CHECK_EQ_INT(agent_state_consent_put(a, "k", uid, strlen(uid), bits, at, &e), 0);
			CHECK_EQ_INT(agent_state_consent_put(b, "k", uid, strlen(uid), bits, at, &e), 0);
		}
	}
}

int
main(void)
{
	char dir[] = "/tmp/cg_state_XXXXXX", pa[64], pb[64];
	unsigned char da[32], db[32];
	struct agent_state *a = NULL, *b = NULL;
	struct cg_err e;
	size_t differ = 0, known = 0, round;
	struct token t = { 1, { 0 } }, got[2];
	size_t n = 0;

	CHECK(sodium_init() >= 0);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(pa, sizeof(pa), "%s/sql.state", dir);
	snprintf(pb, sizeof(pb), "%s/cached.state", dir);
	for (round = 0; round < 2; round++) {
		CHECK_EQ_INT(agent_state_open(pa, &a, &e), 0);
		CHECK_EQ_INT(agent_state_open(pb, &b, &e), 0);
		CHECK_EQ_INT(agent_state_begin(a, &e), 0);
		CHECK_EQ_INT(agent_state_begin(b, &e), 0);
		CHECK_EQ_INT(agent_state_cache(b, "k", &e), 0);
		CHECK(agent_state_cache(b, "k", &e) != 0);          /* once per transaction */
		/* another partner's calls go to the tables, around the cache */
		CHECK_EQ_INT(agent_state_put(b, "g", "x", 1, &t, 1, &e), 0);
		CHECK_EQ_INT(agent_state_put(a, "g", "x", 1, &t, 1, &e), 0);
		CHECK_EQ_INT(agent_state_get(b, "g", "x", 1, got, &n, &e), 0);
		CHECK_EQ_INT(n, 1);
		round_run(a, b, round == 0 ? 0x5eedu : 0xbeefu, &differ, &known);
		CHECK_EQ_INT(agent_state_commit(a, &e), 0);
		CHECK_EQ_INT(agent_state_commit(b, &e), 0);
		agent_state_close(a);
		agent_state_close(b);
		CHECK_EQ_INT(differ, 0);
		state_digest(pa, da);
		state_digest(pb, db);
		CHECK(memcmp(da, db, sizeof(da)) == 0);
	}
	CHECK(known > USERS / 4);                                /* the second round found the first's users */
	/* a cached transaction rolled back leaves the file as it was */
	CHECK_EQ_INT(agent_state_open(pb, &b, &e), 0);
	CHECK_EQ_INT(agent_state_begin(b, &e), 0);
	CHECK_EQ_INT(agent_state_cache(b, "k", &e), 0);
	CHECK_EQ_INT(agent_state_put(b, "k", "u1", 2, &t, 1, &e), 0);
	agent_state_close(b);
	state_digest(pb, db);
	CHECK(memcmp(da, db, sizeof(da)) == 0);
	snprintf(pa, sizeof(pa), "rm -rf %s", dir);
	CHECK_EQ_INT(system(pa), 0);
	CGT_DONE();
}
