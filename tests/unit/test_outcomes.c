/*
 * test_outcomes.c - outcome batches (issue 14): agent/outcomes.c packs what
 * each user did after a campaign, by the user ids of the agent's state; the
 * gateway (ingest) keeps them sealed in the outcomes table, never among the
 * records, and reads them back only if they verify (gateway/outcome.c); a
 * revocation erases them; a malformed CSV fails whole with file, line,
 * column and reason.  Only the partner an experiment names may send its
 * outcomes: a batch for an unknown experiment, or for another partner's, is
 * refused whole and audited.
 */
#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "agent/outcomes.h"
#include "agent/revoke.h"
#include "gateway/experiment.h"
#include "gateway/outcome.h"
#include "proto/batch.h"

static const char k_csv[] =
    WORLD_K_HEADER
    "u1,one@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,programming\n"
    "u2,two@example.com,13800000002,35,CN-SH,match;analytics,2024-01-01,200,finance\n"
    "u3,three@example.com,,45,CN-BJ,match;analytics,2024-01-01,300,language\n"
    "u4,,13800000004,55,CN-SH,match;analytics,2023-01-01,400,language\n"
    "u5,five@example.com,,30,CN-SH,analytics,2024-01-01,500,finance\n";     /* never sent: no match */

struct fixture {
	struct world w;
	char state[WORLD_PATH_MAX], csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX];
	struct outcomes_opts o;
};

/* Write text as name.csv and pack it into name.batch. */
static int
pack(struct fixture *f, const char *name, const char *text, struct outcomes_stats *st, struct cg_err *err)
{
	char file[64];

	snprintf(file, sizeof(file), "%s.csv", name);
	world_write(&f->w, file, text);
	world_path(&f->w, file, f->csv);
	snprintf(file, sizeof(file), "%s.batch", name);
	world_path(&f->w, file, f->batch);
	f->o.input = f->csv;
	f->o.output = f->batch;
	memset(err, 0, sizeof(*err));
	return outcomes_pack(&f->o, st, err);
}

struct sums {
	int64_t n, conv, value;
	int tokens_ok;
};

static int
sum_one(void *ctx, const struct outcome_seen *o, struct cg_err *err)
{
	struct sums *s = ctx;

	(void)err;
	s->n++;
	s->conv += o->converted;
	s->value += o->value_cents;
	s->tokens_ok &= o->ntokens >= 1 && strcmp(o->partner, "k") == 0;
	return 0;
}

/* The stored outcomes of `experiment`, opened by the gateway's reader: how many, conversions, total value. */
static int
stored_sums(struct fixture *f, const char *experiment, struct sums *s, struct cg_err *err)
{
	memset(s, 0, sizeof(*s));
	s->tokens_ok = 1;
	return outcome_each(f->w.st, f->w.storage, experiment, sum_one, s, err);
}

static void
test_round_trip(struct fixture *f)
{
	struct outcomes_stats st;
	struct ingest_result res;
	struct cg_err err;
	struct sums sm;

	CHECK_EQ_INT(pack(f, "out1", "user_id,converted,value_cents,at\n"
	    "u1,1,1250,2024-06-01\n"
	    "u2,0,0,2024-06-02T10:00:00Z\n"
	    "u4,1,99,2024-06-03\n"
	    "nobody,1,5,2024-06-01\n"
	    "u5,1,7,2024-06-01\n", &st, &err), 0);
	CHECK_EQ_INT(st.rows, 5);
	CHECK_EQ_INT(st.packed, 3);
	CHECK_EQ_INT(st.converted, 2);
	CHECK_EQ_INT(st.unknown, 2);           /* a user id never packed, and one never sent (no match) */
	CHECK_EQ_INT(world_ingest(&f->w, NULL, "out1.batch", &res, &err), 0);
	CHECK_EQ_INT(res.records, 3);
	CHECK_EQ_INT(world_sql_int(&f->w, "SELECT count(*) FROM outcomes WHERE experiment = ?1", "exp-1"), 3);
	CHECK_EQ_INT(world_records(&f->w), 4);  /* no outcome is a record: no join or query sees one */
	CHECK_EQ_INT(stored_sums(f, "exp-1", &sm, &err), 0);
	CHECK_EQ_INT(sm.n, 3);
	CHECK_EQ_INT(sm.conv, 2);
	CHECK_EQ_INT(sm.value, 1349);
	CHECK(sm.tokens_ok);
	CHECK_EQ_INT(stored_sums(f, "exp-2", &sm, &err), 0);
	CHECK_EQ_INT(sm.n, 0);
	{
		Crossgate__AuditEvent *ev = world_last_event(&f->w);

		CHECK_STR(ev->action, "ingest");
		CHECK_STR(ev->counts[0]->key, "outcomes");
		CHECK_EQ_INT(ev->counts[0]->value, 3);
		crossgate__audit_event__free_unpacked(ev, NULL);
	}
	/* a retry is a duplicate */
	CHECK_EQ_INT(world_ingest(&f->w, NULL, "out1.batch", &res, &err), 0);
	CHECK_EQ_INT(res.duplicate, 1);
	CHECK_EQ_INT(world_sql_int(&f->w, "SELECT count(*) FROM outcomes", NULL), 3);
}

/*
 * An experiment's outcomes come from its campaign partner only (ingest.c):
 * k's outcomes for an experiment g runs, or for one the gateway does not
 * have, are refused whole, nothing stored, the rejection audited.
 */
static void
test_campaign_partner(struct fixture *f)
{
	static const char *const cases[2][2] = {
		{ "exp-g", "experiment 'exp-g' is run by partner 'g'; partner 'k' may not send its outcomes" },
		{ "exp-none", "an outcome for experiment 'exp-none', which this gateway does not have" },
	};
	struct outcomes_stats st;
	struct ingest_result res;
	struct cg_err err;
	int before = world_sql_int(&f->w, "SELECT count(*) FROM outcomes", NULL), i;

	for (i = 0; i < 2; i++) {
		f->o.experiment = cases[i][0];
		CHECK_EQ_INT(pack(f, "outg", "user_id,converted,value_cents,at\nu1,1,100,2024-06-01\n"
		    "u2,0,0,2024-06-01\n", &st, &err), 0);
		CHECK_EQ_INT(world_ingest(&f->w, NULL, "outg.batch", &res, &err), CG_ERR_POLICY);
		CHECK_CONTAINS(err.msg, cases[i][1]);
		CHECK_EQ_INT(world_sql_int(&f->w, "SELECT count(*) FROM outcomes", NULL), before);
		CHECK_EQ_INT(world_sql_int(&f->w, "SELECT count(*) FROM outcomes WHERE experiment = ?1", cases[i][0]), 0);
		{
			Crossgate__AuditEvent *ev = world_last_event(&f->w);

			CHECK_STR(ev->action, "ingest");
			CHECK_STR(ev->outcome, "rejected");
			CHECK_CONTAINS(ev->reason, cases[i][1]);
			crossgate__audit_event__free_unpacked(ev, NULL);
		}
	}
	f->o.experiment = "exp-1";
}

/* A revocation erases the user's outcomes; outcomes of that user packed again later are skipped. */
static void
test_revocation(struct fixture *f)
{
	struct revoke_opts ro;
	struct revoke_stats rs;
	struct outcomes_stats st;
	struct ingest_result res;
	struct cg_err err;
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX];

	memset(&ro, 0, sizeof(ro));
	ro.pol = f->w.pol;
	ro.partner_id = "k";
	ro.match = f->w.match;
	ro.sign = f->w.ksign;
	ro.gateway = f->w.gwencpub;
	ro.state = f->state;
	ro.now = 1730000000;
	world_write(&f->w, "revoke.csv", "user_id\nu1\n");
	world_path(&f->w, "revoke.csv", csv);
	world_path(&f->w, "revoke.batch", batch);
	ro.input = csv;
	ro.output = batch;
	CHECK_EQ_INT(revoke_pack(&ro, &rs, &err), 0);
	CHECK_EQ_INT(world_ingest(&f->w, NULL, "revoke.batch", &res, &err), 0);
	CHECK_EQ_INT(res.erased, 2);           /* u1's record and u1's outcome */
	CHECK_EQ_INT(world_sql_int(&f->w, "SELECT count(*) FROM outcomes", NULL), 2);
	CHECK_EQ_INT(pack(f, "out2", "user_id,converted,value_cents,at\nu1,1,10,2024-06-05\nu3,1,20,2024-06-05\n",
	    &st, &err), 0);
	CHECK_EQ_INT(world_ingest(&f->w, NULL, "out2.batch", &res, &err), 0);
	CHECK_EQ_INT(res.skipped_revoked, 1);
	CHECK_EQ_INT(res.records, 1);
	CHECK_EQ_INT(world_sql_int(&f->w, "SELECT count(*) FROM outcomes", NULL), 3);
}

/* An outcome whose consent or tokens were edited in the database does not open: it never counts. */
static void
test_tamper(struct fixture *f)
{
	struct sums sm;
	struct cg_err err;
	char *e = NULL;

	CHECK_EQ_INT(sqlite3_exec(store_db(f->w.st), "UPDATE outcomes SET consent_bits = consent_bits | 4 WHERE id = "
	    "(SELECT min(id) FROM outcomes)", NULL, NULL, &e), SQLITE_OK);
	sqlite3_free(e);
	CHECK_EQ_INT(stored_sums(f, "exp-1", &sm, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "does not verify (database altered?)");
}

static void
bad(struct fixture *f, const char *text, int code, const char *msg)
{
	struct outcomes_stats st;
	struct cg_err err;

	CHECK_EQ_INT(pack(f, "bad", text, &st, &err), code);
	CHECK_CONTAINS(err.msg, msg);
	CHECK(!world_exists(&f->w, "bad.batch"));   /* nothing written */
}

static void
test_malformed(struct fixture *f)
{
	const char *hdr = "user_id,converted,value_cents,at\n";
	char text[512];

#define ROW(r) (snprintf(text, sizeof(text), "%su2,0,0,2024-06-01\n%s\n", hdr, r), text)
	bad(f, ROW("u1,2,0,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3:2 (converted): must be 0 or 1");
	bad(f, ROW("u1,yes,0,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3:2 (converted): must be 0 or 1");
	bad(f, ROW("u1,1,-5,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3:3 (value_cents): must be a whole number of cents");
	bad(f, ROW("u1,1,12.50,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3:3 (value_cents): must be a whole number");
	bad(f, ROW("u1,1,99999999999999999999,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3:3 (value_cents)");
	bad(f, ROW("u1,0,100,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3:3 (value_cents): must be 0 when converted is 0");
	bad(f, ROW("u1,1,100,yesterday"), CG_ERR_FORMAT, "bad.csv:3:4 (at): not a time (ISO 8601)");
	bad(f, ROW(",1,100,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3:1 (user id): required");
	bad(f, ROW("u1,1,100"), CG_ERR_FORMAT, "bad.csv:3: row has 3 fields, the header has 4");
	bad(f, ROW("u1,\"1,100,2024-06-01"), CG_ERR_FORMAT, "bad.csv:3");
#undef ROW
	bad(f, "user_id,converted,value_cents\nu1,1,5\n", CG_ERR_FORMAT, "bad.csv:1: missing column 'at'");
	bad(f, "user_id,email,converted,value_cents,at\n", CG_ERR_FORMAT,
	    "bad.csv:1:2: column 'email' is not one of user_id, converted, value_cents, at");
	bad(f, "user_id,converted,converted,value_cents,at\n", CG_ERR_FORMAT, "bad.csv:1:3: column 'converted' "
	    "appears twice");
	bad(f, "", CG_ERR_FORMAT, "empty file (no header row)");
	/* the value's text never reaches a message */
	{
		struct outcomes_stats st;
		struct cg_err err;

		CHECK_EQ_INT(pack(f, "bad", "user_id,converted,value_cents,at\nu1,1,31337x,2024-06-01\n", &st, &err),
		    CG_ERR_FORMAT);
		CHECK(strstr(err.msg, "31337") == NULL && strstr(err.msg, "u1") == NULL);
	}
	f->o.experiment = "exp 1";
	bad(f, "user_id,converted,value_cents,at\n", CG_ERR_FORMAT, "--experiment: an experiment id is letters");
	f->o.experiment = "";
	bad(f, "user_id,converted,value_cents,at\n", CG_ERR_FORMAT, "--experiment: an experiment id is 1 to 64");
	f->o.experiment = "exp-1";
	f->o.state = NULL;
	bad(f, "user_id,converted,value_cents,at\n", CG_ERR_ARG, "the agent's state file (--state) is needed");
	f->o.state = f->state;
}

/* The gateway's content rules, the same the agent packs by. */
static void
test_outcome_check(void)
{
	Crossgate__Outcome oc = CROSSGATE__OUTCOME__INIT;
	struct cg_err err;

	oc.experiment = (char *)"spring.2024_a-b";
	oc.converted = 1;
	oc.value_cents = 100;
	CHECK_EQ_INT(batch_outcome_check(&oc, &err), 0);
	oc.value_cents = -1;
	CHECK_EQ_INT(batch_outcome_check(&oc, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "value is 0 to 10^12 cents");
	oc.value_cents = 5;
	oc.converted = 0;
	CHECK_EQ_INT(batch_outcome_check(&oc, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "without a conversion has value 0");
	oc.value_cents = 0;
	oc.experiment = (char *)"a/b";
	CHECK_EQ_INT(batch_outcome_check(&oc, &err), CG_ERR_FORMAT);
	oc.experiment = (char *)"";
	CHECK_EQ_INT(batch_outcome_check(&oc, &err), CG_ERR_FORMAT);
}

int
main(void)
{
	struct fixture f;
	struct pack_stats ps;
	struct cg_err err;

	if (sodium_init() < 0)
		return 1;
	memset(&f, 0, sizeof(f));
	world_init(&f.w, 2);
	world_open_store(&f.w);
	world_path(&f.w, "agent-state.db", f.state);
	{
		struct pack_opts o = world_pack_opts(&f.w, "k", f.csv, "k.csv", f.batch, "k.batch");

		o.state = f.state;
		world_write(&f.w, "k.csv", k_csv);
		CHECK_EQ_INT(pack_csv(&o, &ps, &err), 0);
		CHECK_EQ_INT(ps.packed, 4);
	}
	{
		struct ingest_result res;

		CHECK_EQ_INT(world_ingest(&f.w, NULL, "k.batch", &res, &err), 0);
	}
	{
		/* Stand-ins for `experiment create` (which needs an audience): exp-1 run by k, exp-g by g. */
		CHECK_EQ_INT(experiment_schema(f.w.st, &err), 0);
		CHECK_EQ_INT(sqlite3_exec(store_db(f.w.st), "INSERT INTO experiments VALUES "
		    "('exp-1', '00', 'a', 'k', 'analyst', 500000000, x'00', 0), "
		    "('exp-g', '01', 'a', 'g', 'analyst', 500000000, x'00', 0)", NULL, NULL, NULL), SQLITE_OK);
	}
	f.o.pol = f.w.pol;
	f.o.partner_id = "k";
	f.o.experiment = "exp-1";
	f.o.state = f.state;
	f.o.match = f.w.match;
	f.o.sign = f.w.ksign;
	f.o.gateway = f.w.gwencpub;
	f.o.now = 1720000000;
	test_round_trip(&f);
	test_campaign_partner(&f);
	test_malformed(&f);
	test_revocation(&f);
	test_tamper(&f);
	test_outcome_check();
	world_free(&f.w);
	CGT_DONE();
}
