/*
 * test_revoke.c - revocation and retention really erase: agent/revoke.c,
 * agent/state.c, gateway/erase.c and the revocation path of ingest.
 */
#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "agent/revoke.h"
#include "agent/state.h"
#include "gateway/erase.h"
#include "gateway/stats.h"

static const char k_csv[] =
    WORLD_K_HEADER
    "u1,one@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,programming\n"
    "u2,two@example.com,13800000002,35,CN-SH,match;analytics,2024-01-01,200,finance\n"
    "u3,three@example.com,,45,CN-BJ,match;analytics,2024-01-01,300,language\n"
    "u4,,13800000004,55,CN-SH,match;analytics,2023-01-01,400,language\n";

/* Is any of the stored tokens of these users, or their ciphertexts, still in the files? */
static int
file_has(const char *path, const unsigned char *needle, size_t n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long len;
	int found = 0;

	if (f == NULL)
		return 0;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (len > 0 && (buf = malloc((size_t)len)) != NULL) {
		if (fread(buf, 1, (size_t)len, f) == (size_t)len)
			for (long i = 0; i + (long)n <= len && !found; i++)
				found = memcmp(buf + i, needle, n) == 0;
		free(buf);
	}
	fclose(f);
	return found;
}

struct secret {
	unsigned char token[32];
	unsigned char ct[32];   /* a slice of the stored ciphertext */
};

static void
remember(struct world *w, const char *email, struct secret *s)
{
	sqlite3_stmt *q;

	memset(s, 0, sizeof(*s));
	CHECK(sqlite3_prepare_v2(store_db(w->st), "SELECT r.email_token, r.payload FROM records r WHERE r.id = "
	    "(SELECT id FROM records WHERE email_token IS NOT NULL ORDER BY id LIMIT 1 OFFSET ?1)", -1, &q, NULL)
	    == SQLITE_OK);
	sqlite3_bind_int(q, 1, email[0] - '0');
	CHECK(sqlite3_step(q) == SQLITE_ROW);
	memcpy(s->token, sqlite3_column_blob(q, 0), 32);
	memcpy(s->ct, (const unsigned char *)sqlite3_column_blob(q, 1) + 4, 16);
	sqlite3_finalize(q);
}

int
main(void)
{
	struct world w;
	struct pack_stats ps;
	struct revoke_opts ro;
	struct revoke_stats rs;
	struct ingest_result res;
	struct cg_err err = { 0 };
	struct agent_state *state;
	struct token t[2];
	struct secret gone;
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX], statep[WORLD_PATH_MAX], dbp[WORLD_PATH_MAX],
	    walp[WORLD_PATH_MAX + 8];
	size_t n;
	uint64_t erased;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	world_open_store(&w);
	world_path(&w, "agent-state.db", statep);
	world_path(&w, "gateway.db", dbp);
	snprintf(walp, sizeof(walp), "%s-wal", dbp);

	/* Pack with a state file: the agent remembers which tokens it sent for each user id. */
	{
		struct pack_opts o = world_pack_opts(&w, "k", csv, "k.csv", batch, "k1.batch");
		o.state = statep;
		world_write(&w, "k.csv", k_csv);
		CHECK_EQ_INT(pack_csv(&o, &ps, &err), 0);
		CHECK_EQ_INT(ps.packed, 4);
	}
	CHECK_EQ_INT(agent_state_open(statep, &state, &err), 0);
	CHECK_EQ_INT(agent_state_get(state, "k", "u2", 2, t, &n, &err), 0);
	CHECK_EQ_INT(n, 2);                  /* email and phone */
	CHECK_EQ_INT(agent_state_get(state, "k", "nobody", 6, t, &n, &err), 0);
	CHECK_EQ_INT(n, 0);
	agent_state_close(state);
	CHECK_EQ_INT(world_ingest(&w, NULL, "k1.batch", &res, &err), 0);
	CHECK_EQ_INT(world_records(&w), 4);
	remember(&w, "1", &gone);            /* u2's email token and ciphertext */

	/* Revoke u1 by email (another spelling) and u2 by user id. */
	memset(&ro, 0, sizeof(ro));
	ro.pol = w.pol;
	ro.partner_id = "k";
	ro.match = w.match;
	ro.sign = w.ksign;
	ro.gateway = w.gwencpub;
	ro.state = statep;
	ro.now = 1720000000;
	world_write(&w, "revoke.csv", "email,user_id\n  ONE@Example.com ,\n,u2\n");
	world_path(&w, "revoke.csv", csv);
	world_path(&w, "revoke.batch", batch);
	ro.input = csv;
	ro.output = batch;
	CHECK_EQ_INT(revoke_pack(&ro, &rs, &err), 0);
	CHECK_EQ_INT(rs.users, 2);
	CHECK_EQ_INT(world_ingest(&w, NULL, "revoke.batch", &res, &err), 0);
	CHECK_EQ_INT(res.revoked_users, 2);
	CHECK_EQ_INT(res.erased, 2);
	CHECK_EQ_INT(world_records(&w), 2);
	/* Counts only in the audit log, never which users. */
	{
		Crossgate__AuditEvent *ev = world_last_event(&w);
		CHECK_STR(ev->action, "revoke");
		CHECK_EQ_INT(ev->n_counts, 2);
		crossgate__audit_event__free_unpacked(ev, NULL);
	}
	/* Neither the database file nor its WAL still holds the token or the ciphertext. */
	CHECK(!file_has(dbp, gone.token, 32));
	CHECK(!file_has(walp, gone.token, 32));
	CHECK(!file_has(dbp, gone.ct, 16));
	CHECK(!file_has(walp, gone.ct, 16));
	/* Replaying the revocation is a harmless duplicate. */
	CHECK_EQ_INT(world_ingest(&w, NULL, "revoke.batch", &res, &err), 0);
	CHECK_EQ_INT(res.duplicate, 1);

	/* The same old data packed again (a new batch) does not bring them back ... */
	world_pack(&w, "k", "k-again.csv", k_csv, "k2.batch", &ps);
	CHECK_EQ_INT(world_ingest(&w, NULL, "k2.batch", &res, &err), 0);
	CHECK_EQ_INT(res.records, 2);
	CHECK_EQ_INT(res.skipped_revoked, 2);
	CHECK_EQ_INT(world_records(&w), 4);  /* u3 and u4 twice, never u1 or u2 */
	/* ... but a newer consent, after the revocation, is welcome. */
	world_pack(&w, "k", "k-new.csv", WORLD_K_HEADER
	    "u1,one@example.com,,25,CN-BJ,match;analytics,2024-09-01,100,programming\n", "k3.batch", &ps);
	CHECK_EQ_INT(world_ingest(&w, NULL, "k3.batch", &res, &err), 0);
	CHECK_EQ_INT(res.records, 1);
	CHECK_EQ_INT(res.skipped_revoked, 0);

	/* A row that names nobody fails the whole revocation: nothing written. */
	world_write(&w, "bad.csv", "user_id\nu3\nghost\n");
	world_path(&w, "bad.csv", csv);
	world_path(&w, "bad.batch", batch);
	ro.input = csv;
	ro.output = batch;
	CHECK_EQ_INT(revoke_pack(&ro, &rs, &err), CG_ERR_NOTFOUND);
	CHECK_CONTAINS(err.msg, "bad.csv:3:1 (user_id): this user id was never packed");
	CHECK(!world_exists(&w, "bad.batch"));
	world_write(&w, "bad2.csv", "age\n30\n");
	world_path(&w, "bad2.csv", csv);
	ro.input = csv;
	CHECK_EQ_INT(revoke_pack(&ro, &rs, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "column 'age' is not an identifier or the user id column");
	world_write(&w, "bad3.csv", "user_id\nu3\n");
	world_path(&w, "bad3.csv", csv);
	ro.input = csv;
	ro.state = NULL;
	CHECK_EQ_INT(revoke_pack(&ro, &rs, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "needs the agent's state file");

	/* Retention: records with consent before the cut are erased, younger ones stay. */
	CHECK_EQ_INT(store_begin(w.st, &err), 0);
	CHECK_EQ_INT(erase_expired(w.st, "k", 1704067200 /* 2024-01-01 */, &erased, &err), 0);
	CHECK_EQ_INT(store_commit(w.st, &err), 0);
	CHECK_EQ_INT(erased, 2);             /* u4's two copies, consent 2023-01-01 */
	CHECK_EQ_INT(world_records(&w), 3);
	CHECK_EQ_INT(world_sql_int(&w, "SELECT count(*) FROM records WHERE consent_at < 1704067200", NULL), 0);

	/* The partner's own view: counts per purpose, nothing else. */
	{
		struct stats_partner sp;
		CHECK_EQ_INT(stats_partner_get(w.st, w.pol, "k", &sp, &err), 0);
		CHECK_EQ_INT(sp.records, 3);
		CHECK_EQ_INT(sp.with_purpose[policy_purpose_bit(w.pol, "match")], 3);
		CHECK_EQ_INT(sp.with_purpose[policy_purpose_bit(w.pol, "analytics")], 3);
		CHECK_EQ_INT(sp.with_purpose[policy_purpose_bit(w.pol, "marketing")], 0);
		CHECK_EQ_INT(sp.batches, 4);         /* three data batches and the revocation */
		CHECK_EQ_INT(sp.oldest_consent, 1704067200);
		CHECK_EQ_INT(stats_partner_get(w.st, w.pol, "zz", &sp, &err), CG_ERR_POLICY);
		CHECK_CONTAINS(err.msg, "partner 'zz' is not in the policy");
	}
	world_free(&w);
	CGT_DONE();
}
