/* test_export.c - the synthetic row release end to end on a small world: refusals before any charge, one
 * ledger with queries, the CSV and meta formats, nothing exact and nothing identifying in the output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cgtest.h"
#include "world.h"
#include "base/csvfile.h"
#include "crypto/token.h"
#include "gateway/budget.h"
#include "gateway/export.h"
#include "gateway/query.h"

/*
 * K users against G users (the join itself is join.c's and test_query's):
 *   K1-G1, K2-G2 (phone), K3-G3a, K8-G8, K9-G9   analytics on both sides
 *   K4 withdrew analytics in a newer batch; G5 never gave it; K6, K10 marketing only; K7, G7 alone
 */
static const char k1_csv[] =
    WORLD_K_HEADER
    "ku1,alice@example.com,13811110001,25,CN-BJ,match;analytics,2024-01-01,1111,programming\n"
    "ku2,,13822220002,29,CN-TJ,match;analytics,2024-01-01,2222,finance\n"
    "ku3,carol@example.com,13833330003,34,XX-ZZ,match;analytics,2024-01-01,3333,language\n"
    "ku4,dave@example.com,,41,CN-SH,match;analytics,2024-01-01,4444,finance\n"
    "ku5,erin@example.com,,42,CN-SH,match;analytics,2024-01-01,5555,finance\n"
    "ku6,frank@example.com,,43,CN-SH,match;marketing,2024-01-01,6666,finance\n"
    "ku7,gina@example.com,,44,CN-SH,match;analytics,2024-01-01,7777,finance\n"
    "ku8,kate@example.com,,36,CN-XX,match;analytics,2024-01-01,8888,language\n"
    "ku9,liam@example.com,,47,CN-SH,match;analytics,2024-01-01,9999,finance\n"
    "ku10,mona@example.com,,45,CN-JS,match;marketing,2024-01-01,1010,finance\n";

static const char k2_csv[] =
    WORLD_K_HEADER
    "ku4,dave@example.com,,41,CN-SH,match,2024-06-01,4445,finance\n";

static const char g_csv[] =
    WORLD_G_HEADER
    "gu1,alice@example.com,,55,CN-SH,match;analytics,2024-01-01,11,moba\n"
    "gu2,george@example.com,13822220002,58,CN-SH,match;analytics,2024-01-01,22,fps\n"
    "gu3,carol@example.com,,30,CN-BJ,match;analytics,2024-01-01,33,rpg\n"
    "gu3b,harry@example.com,13833330003,30,CN-BJ,match;analytics,2024-01-01,99,rpg\n"
    "gu4,dave@example.com,,30,CN-BJ,match;analytics,2024-01-01,44,moba\n"
    "gu5,erin@example.com,,30,CN-BJ,match,2024-01-01,55,moba\n"
    "gu6,frank@example.com,,30,CN-BJ,match;marketing,2024-01-01,66,moba\n"
    "gu7,ivan@example.com,,30,CN-BJ,match;analytics,2024-01-01,77,moba\n"
    "gu8,kate@example.com,,31,CN-BJ,match;analytics,2024-01-01,88,fps\n"
    "gu9,liam@example.com,,70,CN-BJ,match;analytics,2024-01-01,90,fps\n"
    "gu10,mona@example.com,,30,CN-BJ,match;marketing,2024-01-01,101,rpg\n";

static const char *const identifiers[] = {
	"alice@example.com", "carol@example.com", "dave@example.com", "erin@example.com", "frank@example.com",
	"gina@example.com", "george@example.com", "harry@example.com", "ivan@example.com", "kate@example.com",
	"liam@example.com", "mona@example.com",
	"+8613811110001", "+8613822220002", "+8613833330003",
};

#define EXPORT_HEADER "age,region,k_course_spend_cents,k_top_course_category,g_watch_minutes,g_top_game_category"
#define NCOLS 6
#define MAX_ROWS 2000

struct table {
	char header[256];
	size_t nrows;
	int bad_shape;
	char (*cell)[NCOLS][32];
};

static unsigned char k2_batch_id[16];
static struct token_ctx *tctx;

/* Read a release back with the project's own CSV reader. */
static int
read_table(const char *path, struct table *t)
{
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	size_t i;
	int r, first = 1;

	free(t->cell);
	memset(t, 0, sizeof(*t));
	if ((t->cell = calloc(MAX_ROWS, sizeof(*t->cell))) == NULL || csvfile_open(path, &f, &err) != 0)
		return -1;
	while ((r = csvfile_next(f, &row, &err)) == 1) {
		if (first) {
			for (i = 0; i < row->nfields; i++) {
				if (i > 0)
					strncat(t->header, ",", sizeof(t->header) - strlen(t->header) - 1);
				strncat(t->header, row->fields[i], sizeof(t->header) - strlen(t->header) - 1);
			}
			first = 0;
			continue;
		}
		if (row->nfields != NCOLS || t->nrows == MAX_ROWS) {
			t->bad_shape = 1;
			continue;
		}
		for (i = 0; i < NCOLS; i++)
			snprintf(t->cell[t->nrows][i], sizeof(t->cell[0][0]), "%s", row->fields[i]);
		t->nrows++;
	}
	csvfile_free(f);
	return r == 0 ? 0 : -1;
}

static int
has_bytes(const char *p, size_t n, const void *needle, size_t m)
{
	size_t i;

	for (i = 0; i + m <= n; i++)
		if (memcmp(p + i, needle, m) == 0)
			return 1;
	return 0;
}

static void
check_no_identifiers(const char *path)
{
	size_t len, i;
	char *text = world_slurp(path, &len), hex[2 * TOKEN_LEN + 1];
	unsigned char tok[TOKEN_LEN];
	static const char *const locals[] = { "ku1", "ku2", "ku3", "ku6", "gu1", "gu2", "gu3", "gu6", "@",
		"example", "1381111", "1382222", "1383333" };

	CHECK(text != NULL);
	if (text == NULL)
		return;
	for (i = 0; i < sizeof(locals) / sizeof(locals[0]); i++)
		CHECK(strstr(text, locals[i]) == NULL);
	for (i = 0; i < sizeof(identifiers) / sizeof(identifiers[0]); i++) {
		uint32_t kind = identifiers[i][0] == '+' ? TOKEN_KIND_PHONE : TOKEN_KIND_EMAIL;
		if (token_compute(tctx, kind, identifiers[i], strlen(identifiers[i]), tok) != 0)
			world_die("token_compute", NULL);
		sodium_bin2hex(hex, sizeof(hex), tok, sizeof(tok));
		CHECK(strstr(text, hex) == NULL);
		CHECK(!has_bytes(text, len, tok, 8));
		CHECK(!has_bytes(text, len, hex, 16));
	}
	free(text);
}

static struct export_opts
opts(struct world *w, const struct policy *pol, const char *purpose, char out[WORLD_PATH_MAX], const char *name)
{
	struct export_opts o;

	memset(&o, 0, sizeof(o));
	world_path(w, name, out);
	o.pol = pol;
	o.purpose = purpose;
	o.out_path = out;
	o.storage = w->storage;
	o.analyst = policy_principal_by_name(pol, "analyst");
	return o;
}

static void
build(struct world *w)
{
	struct pack_stats st;
	struct ingest_result res;
	struct cg_err err;

	world_pack(w, "k", "k1.csv", k1_csv, "k1.batch", &st);
	CHECK_EQ_INT(st.packed, 10);
	world_pack(w, "g", "g.csv", g_csv, "g.batch", &st);
	CHECK_EQ_INT(st.packed, 11);
	world_pack(w, "k", "k2.csv", k2_csv, "k2.batch", &st);
	CHECK_EQ_INT(st.packed, 1);
	memcpy(k2_batch_id, st.batch_id, 16);
	CHECK_EQ_INT(world_ingest(w, NULL, "k1.batch", &res, &err), 0);
	CHECK_EQ_INT(world_ingest(w, NULL, "g.batch", &res, &err), 0);
	CHECK_EQ_INT(world_ingest(w, NULL, "k2.batch", &res, &err), 0);
	CHECK_EQ_INT(world_records(w), 22);
}

/* The world's policy with bounds on its int features, more analysts, and a budget of 1 per dataset. */
static struct policy *
bounded_policy(struct world *w, const char *privacy)
{
	static const struct { const char *from, *to; } edits[] = {
		{ "course_spend_cents, type: int, min: 0, max: 100000000, role: feature}",
		  "course_spend_cents, type: int, min: 0, max: 100000000, role: feature, bounds: [0, 9999]}" },
		{ "watch_minutes, type: int, min: 0, max: 10000000, role: feature}",
		  "watch_minutes, type: int, min: 0, max: 10000000, role: feature, bounds: [0, 99]}" },
		{ "privacy: {l: 1, suppression_limit: 0.9, max_exports: 1000}", NULL },
	};
	static const char principals[] =
	    "  - {name: aggonly, role: analyst, identity: \"crossgate:analyst:aggonly\", purposes: [analytics]}\n"
	    "  - {name: capped, role: analyst, identity: \"crossgate:analyst:capped\", purposes: [analytics],\n"
	    "     row_exports: [analytics], max_exports: 1}\n"
	    "  - {name: spender, role: analyst, identity: \"crossgate:analyst:spender\", purposes: [analytics],\n"
	    "     row_exports: [analytics]}\n";
	char *text = world_policy_text(w, 2, w->kline, principals), *t2;
	struct policy *p = NULL;
	struct cg_err err;
	size_t i;

	for (i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		const char *to = edits[i].to ? edits[i].to : privacy;
		char *at = strstr(text, edits[i].from);
		size_t cap;

		if (at == NULL)
			world_die("the world policy changed: cannot add bounds", NULL);
		cap = strlen(text) + strlen(to) + 1;
		if ((t2 = malloc(cap)) == NULL)
			world_die("out of memory", NULL);
		snprintf(t2, cap, "%.*s%s%s", (int)(at - text), text, to, at + strlen(edits[i].from));
		free(text);
		text = t2;
	}
	if (policy_parse("bounded.yaml", text, strlen(text), &p, NULL, &err) != 0)
		world_die("policy_parse", &err);
	free(text);
	return p;
}

static int64_t
spent(struct world *w, const char *analyst)
{
	int64_t n = -1;
	struct cg_err err;

	if (budget_spent(w->st, analyst, "g+k", &n, &err) != 0)
		world_die("budget_spent", &err);
	return n;
}

static const char *
last_event_action(struct world *w, char *outcome, size_t size)
{
	static char action[64];
	Crossgate__AuditEvent *ev = world_last_event(w);

	snprintf(action, sizeof(action), "%s", ev->action);
	snprintf(outcome, size, "%s", ev->outcome);
	crossgate__audit_event__free_unpacked(ev, NULL);
	return action;
}

/* A column without the domain a release bins it by: refused before any charge, nothing written. */
static void
test_no_bounds(struct world *w)
{
	char out[WORLD_PATH_MAX], outcome[32];
	struct export_opts o = opts(w, w->pol, "analytics", out, "nobounds.csv");
	struct export_stats s;
	struct cg_err err;

	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "column 'k_course_spend_cents' has no bounds in the policy");
	CHECK_EQ_INT(spent(w, "analyst"), 0);
	CHECK_STR(last_event_action(w, outcome, sizeof(outcome)), "export");
	CHECK_STR(outcome, "refused");
	CHECK(!world_exists(w, "nobounds.csv"));
}

/* Every cell is a label of its column's bins as the meta lists them; the meta has no exact figure. */
static void
check_release(const char *out, const struct export_stats *s, uint64_t want_rows)
{
	static const char *const keys[] = { "release_id", "purpose", "analyst", "dataset", "mechanism", "rho",
		"rho_split", "remaining_rho", "noise", "columns", "omitted", "edges", "synthetic_rows", "rows_from",
		"binning", "policy_hash", "audit_index", "created", "left", "right" };
	char mpath[WORLD_PATH_MAX + 16];
	struct table t = { 0 };
	json_t *m, *cols;
	json_error_t je;
	size_t i, c, b, bad = 0, exact = 0;
	const char *k;
	json_t *v;

	snprintf(mpath, sizeof(mpath), "%s.meta.json", out);
	CHECK_EQ_INT(read_table(out, &t), 0);
	CHECK_STR(t.header, EXPORT_HEADER);          /* no pseudonym column */
	CHECK(!t.bad_shape);
	CHECK_EQ_INT(t.nrows, s->rows);
	if (want_rows > 0)
		CHECK_EQ_INT(t.nrows, want_rows);
	if ((m = json_load_file(mpath, 0, &je)) == NULL) {
		CHECK(0);
		free(t.cell);
		return;
	}
	CHECK_EQ_INT(json_object_size(m), sizeof(keys) / sizeof(keys[0]));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK(json_object_get(m, keys[i]) != NULL);
	json_object_foreach(m, k, v)
		CHECK(strcmp(k, "rows") != 0 && strcmp(k, "candidates") != 0 && strcmp(k, "suppressed") != 0 &&
		    strcmp(k, "matched") != 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(m, "synthetic_rows")), s->rows);
	CHECK_STR(json_string_value(json_object_get(m, "rows_from")), want_rows ? "requested" : "noisy estimate");
	CHECK_STR(json_string_value(json_object_get(m, "release_id")), s->release_id);
	CHECK_EQ_INT(json_array_size(json_object_get(m, "edges")), NCOLS - 1);
	cols = json_object_get(m, "columns");
	CHECK_EQ_INT(json_array_size(cols), NCOLS);
	for (i = 0; i < t.nrows; i++)
		for (c = 0; c < NCOLS && c < json_array_size(cols); c++) {
			json_t *bins = json_object_get(json_array_get(cols, c), "bins");
			int found = 0;

			for (b = 0; b < json_array_size(bins); b++)
				found |= strcmp(json_string_value(json_array_get(bins, b)), t.cell[i][c]) == 0;
			bad += !found;
			/* the subjects' exact spends and watch minutes never appear: cells are ranges */
			exact += strcmp(t.cell[i][2], "1111") == 0 || strcmp(t.cell[i][4], "11") == 0;
		}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(exact, 0);
	CHECK_STR(json_string_value(json_array_get(json_object_get(json_array_get(cols, 2), "bins"), 0)), "0-999");
	json_decref(m);
	free(t.cell);
	check_no_identifiers(out);
}

static void
test_release(struct world *w, const struct policy *pol)
{
	char out[WORLD_PATH_MAX], outcome[32];
	struct export_opts o = opts(w, pol, "analytics", out, "release.csv");
	struct export_stats s;
	struct cg_err err;
	Crossgate__AuditEvent *ev;
	size_t i;

	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	CHECK_EQ_INT(s.charged_nano, 200000000);              /* the policy's export_rho */
	CHECK_EQ_INT(spent(w, "analyst"), 200000000);
	CHECK_EQ_INT(s.remaining_nano, 800000000);
	CHECK_EQ_INT(s.columns, NCOLS);
	check_release(out, &s, 0);
	ev = world_last_event(w);
	CHECK_STR(ev->action, "export");
	CHECK_STR(ev->outcome, "ok");
	CHECK_EQ_INT(world_event_count(ev, "rho_nano"), 200000000);
	CHECK_EQ_INT(world_event_count(ev, "synthetic_rows"), s.rows);
	for (i = 0; i < ev->n_counts; i++)        /* the mechanism's figures only, none about the subjects */
		CHECK(strcmp(ev->counts[i]->key, "rho_nano") == 0 || strcmp(ev->counts[i]->key, "synthetic_rows") == 0 ||
		    strcmp(ev->counts[i]->key, "columns") == 0 || strcmp(ev->counts[i]->key, "edges") == 0);
	crossgate__audit_event__free_unpacked(ev, NULL);

	/* Asked for rows, at its own rho. */
	o = opts(w, pol, "analytics", out, "release-1500.csv");
	o.rows = 1500;
	o.rho_nano = 100000000;
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	CHECK_EQ_INT(s.rows, 1500);
	CHECK_EQ_INT(spent(w, "analyst"), 300000000);
	check_release(out, &s, 1500);
	CHECK_STR(last_event_action(w, outcome, sizeof(outcome)), "export");
}

/* One ledger: what queries spend, a release cannot; refusals charge nothing and write nothing. */
static void
test_budget(struct world *w, const struct policy *pol)
{
	char out[WORLD_PATH_MAX], outcome[32];
	const struct policy_principal *spender = policy_principal_by_name(pol, "spender");
	struct export_opts o = opts(w, pol, "analytics", out, "big.csv");
	struct export_stats s;
	struct cg_err err;
	int64_t left = 0;

	o.analyst = spender;
	o.rho_nano = 1500000000;                 /* more than the whole budget of 1 */
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "nothing is released once the budget is spent");
	CHECK_CONTAINS(err.msg, "it needs rho 1.500000000 and 'spender' has 1.000000000 of 1.000000000 left on 'g+k'");
	CHECK_EQ_INT(spent(w, "spender"), 0);
	CHECK(!world_exists(w, "big.csv"));
	CHECK_STR(last_event_action(w, outcome, sizeof(outcome)), "budget-refused");

	/* A query (any charge on the same ledger) spends 0.9 ... */
	CHECK_EQ_INT(budget_charge(w->st, w->au, "spender", "g+k", 900000000, 1000000000, "analytics", &left, &err), 0);
	/* ... so the release's default 0.2 no longer fits */
	o = opts(w, pol, "analytics", out, "spent.csv");
	o.analyst = spender;
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "it needs rho 0.200000000 and 'spender' has 0.100000000 of 1.000000000 left");
	CHECK_EQ_INT(spent(w, "spender"), 900000000);
	CHECK(!world_exists(w, "spent.csv"));
	/* 0.1 still fits, then nothing does */
	o.rho_nano = 100000000;
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	CHECK_EQ_INT(s.remaining_nano, 0);
	o = opts(w, pol, "analytics", out, "after.csv");
	o.analyst = spender;
	o.rho_nano = 1;
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "has 0.000000000 of 1.000000000 left");
	CHECK(!world_exists(w, "after.csv"));
}

/* Who may take a release, and the extra cap: both refused before the budget is touched. */
static void
test_who(struct world *w, const struct policy *pol)
{
	char out[WORLD_PATH_MAX], outcome[32];
	struct export_opts o = opts(w, pol, "analytics", out, "agg.csv");
	struct export_stats s;
	struct cg_err err;

	o.analyst = policy_principal_by_name(pol, "aggonly");
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "analyst 'aggonly' may not take row exports for purpose 'analytics'");
	CHECK_EQ_INT(spent(w, "aggonly"), 0);
	CHECK(!world_exists(w, "agg.csv"));

	o = opts(w, pol, "analytics", out, "cap1.csv");
	o.analyst = policy_principal_by_name(pol, "capped");
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	CHECK_EQ_INT(spent(w, "capped"), 200000000);
	o = opts(w, pol, "analytics", out, "cap2.csv");
	o.analyst = policy_principal_by_name(pol, "capped");
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "analyst 'capped' has taken all 1 row exports the policy allows (max_exports)");
	CHECK_EQ_INT(spent(w, "capped"), 200000000);       /* the cap refused before the charge */
	CHECK_STR(last_event_action(w, outcome, sizeof(outcome)), "export-refused");
	CHECK(!world_exists(w, "cap2.csv"));
}

/* Refusal messages carry no figure about the subjects: only rho amounts, names and the policy's numbers. */
static void
test_messages_have_no_counts(struct world *w, const struct policy *pol)
{
	char out[WORLD_PATH_MAX];
	struct export_opts o = opts(w, pol, "analytics", out, "x.csv");
	struct export_stats s;
	struct cg_err err;
	static const char *const counts[] = { " 5 ", " 9 ", "5 rows", "9 rows", "subjects" };
	size_t i;

	o.analyst = policy_principal_by_name(pol, "spender");
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		CHECK(strstr(err.msg, counts[i]) == NULL);
}

static void
test_bad_purpose(struct world *w)
{
	char out[WORLD_PATH_MAX];
	struct export_opts o = opts(w, w->pol, "sales", out, "sales.csv");
	struct export_stats s;
	struct cg_err err;

	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "purpose 'sales' is not in the policy");
	CHECK(!world_exists(w, "sales.csv"));
}

/*
 * A query reads only K's columns, so the walk decodes only K's payloads; a
 * G record edited in the database must still fail it: the pair is kept for
 * the consent that record's seal binds.
 */
static void
test_query_unread_side(struct world *w, const struct policy *pol)
{
	char out[WORLD_PATH_MAX], want[64];
	struct query_spec q;
	struct query_stats qs;
	struct cg_err err;
	sqlite3_stmt *st = NULL;
	int64_t id = -1;
	int flip;

	memset(&q, 0, sizeof(q));
	q.pol = pol;
	q.purpose = "analytics";
	q.analyst = policy_principal_by_name(pol, "analyst");
	q.storage = w->storage;
	world_path(w, "k-only.csv", out);
	q.out_path = out;
	CHECK_EQ_INT(query_metric_parse("sum:k_course_spend_cents", &q.metrics[q.nmetrics++], &err), 0);
	CHECK_EQ_INT(query_run(w->st, w->au, &q, &qs, &err), 0);
	/* the newest G record of a user with analytics consent: a subject the query walks */
	CHECK_EQ_INT(sqlite3_prepare_v2(store_db(w->st), "SELECT id FROM records WHERE partner = 'g' AND consent_bits & 2 "
	    "ORDER BY id DESC LIMIT 1", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	CHECK(id > 0);
	for (flip = 0; flip < 2; flip++) {       /* an unused purpose bit set, then cleared again */
		CHECK_EQ_INT(sqlite3_prepare_v2(store_db(w->st), "UPDATE records SET consent_bits = (consent_bits | 128) - (consent_bits & 128) "
		    "WHERE id = ?1", -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_int64(st, 1, id);
		CHECK_EQ_INT(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		if (flip == 0) {
			CHECK_EQ_INT(query_run(w->st, w->au, &q, &qs, &err), CG_ERR_CRYPTO);
			snprintf(want, sizeof(want), "stored record %lld does not verify", (long long)id);
			CHECK_CONTAINS(err.msg, want);
		}
	}
	CHECK_EQ_INT(query_run(w->st, w->au, &q, &qs, &err), 0);
}

/* Consent edited in the database: the AEAD binds it, so the release fails after its charge, writing nothing. */
static void
test_tamper(struct world *w, const struct policy *pol)
{
	char out[WORLD_PATH_MAX], want[64];
	struct export_opts o = opts(w, pol, "analytics", out, "tampered.csv");
	struct export_stats s;
	struct cg_err err;
	sqlite3_stmt *q = NULL;
	int64_t id = -1, before = spent(w, "analyst");

	/* K4's newest record withdrew analytics: grant it back behind the gateway's back. */
	CHECK_EQ_INT(sqlite3_prepare_v2(store_db(w->st), "SELECT r.id FROM records r JOIN batches b ON b.id = r.batch "
	    "WHERE b.batch_id = ?1", -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_blob(q, 1, k2_batch_id, 16, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		id = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	CHECK(id > 0);
	CHECK_EQ_INT(sqlite3_prepare_v2(store_db(w->st), "UPDATE records SET consent_bits = 3 WHERE id = ?1", -1, &q,
	    NULL), SQLITE_OK);
	sqlite3_bind_int64(q, 1, id);
	CHECK_EQ_INT(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	CHECK_EQ_INT(sqlite3_changes(store_db(w->st)), 1);

	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_CRYPTO);
	snprintf(want, sizeof(want), "stored record %lld does not verify", (long long)id);
	CHECK_CONTAINS(err.msg, want);
	CHECK(!world_exists(w, "tampered.csv"));
	CHECK(!world_exists(w, "tampered.csv.tmp"));
	CHECK_EQ_INT(spent(w, "analyst"), before + 200000000);    /* charged first; never refunded */
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	struct policy *pol;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	world_open_store(&w);
	if (token_ctx_new(w.match->key, w.match->key_len, &tctx, &err) != 0)
		world_die("token_ctx_new", &err);
	build(&w);
	pol = bounded_policy(&w, "privacy: {max_exports: 1000, budget_rho: 1.0, export_rho: 0.2}");
	test_no_bounds(&w);
	test_bad_purpose(&w);
	test_release(&w, pol);
	test_budget(&w, pol);
	test_who(&w, pol);
	test_messages_have_no_counts(&w, pol);
	test_query_unread_side(&w, pol);
	test_tamper(&w, pol);
	policy_free(pol);
	token_ctx_free(tctx);
	world_free(&w);
	CGT_DONE();
}
