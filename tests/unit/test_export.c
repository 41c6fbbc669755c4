/* test_export.c - the join and the anonymized export, on a world whose right answer is known. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "cgtest.h"
#include "world.h"
#include "base/csvfile.h"
#include "crypto/token.h"
#include "gateway/export.h"

/*
 * K users against G users:
 *   K1-G1  email; K1's phone is unknown to G                      exported
 *   K2-G2  phone only (K2 has no email, G2 another email)         exported
 *   K3-G3a email; K3's phone points at G3b instead                ambiguous, paired by email, exported
 *   K4-G4  email; a newer K4 batch withdraws analytics            superseded, left out for consent
 *   K5-G5  email; G5 never gave analytics                         left out for consent
 *   K6-G6  email; both marketing only                             left out of analytics, in marketing
 *   K7, G7 nobody on the other side
 *   K8-G8, K9-G9 email, analytics; K10-G10 email, marketing only
 * Generalized quasi-identifiers (from K), k = 2:
 *   analytics  (20-29, North) K1 K2; (30-39, Other) K3 K8; (40-49, East) K9 alone: suppressed
 *   marketing  (40-49, East) K6 K10
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

#define EXPORT_HEADER "pseudonym,age,region,k_course_spend_cents,k_top_course_category,g_watch_minutes," \
	"g_top_game_category"

#define MAX_ROWS 16
#define NCOLS 7

struct table {
	char header[256];
	size_t nrows;
	int bad_shape;
	char cell[MAX_ROWS][NCOLS][64];
};

static unsigned char k2_batch_id[16];
static struct token_ctx *tctx;

/* Read an export back with the project's own CSV reader. */
static int
read_table(const char *path, struct table *t)
{
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	size_t i;
	int r, first = 1;

	memset(t, 0, sizeof(*t));
	if (csvfile_open(path, &f, &err) != 0)
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

/* The row whose k_course_spend_cents is `spend`, or -1. */
static int
row_of(const struct table *t, const char *spend)
{
	size_t i;

	for (i = 0; i < t->nrows; i++)
		if (strcmp(t->cell[i][3], spend) == 0)
			return (int)i;
	return -1;
}

static void
check_row(const struct table *t, const char *spend, const char *age, const char *region, const char *kcat,
    const char *watch, const char *gcat)
{
	int i = row_of(t, spend);

	CHECK(i >= 0);
	if (i < 0) {
		fprintf(stderr, "  (no row with k_course_spend_cents %s)\n", spend);
		return;
	}
	CHECK_STR(t->cell[i][1], age);
	CHECK_STR(t->cell[i][2], region);
	CHECK_STR(t->cell[i][4], kcat);
	CHECK_STR(t->cell[i][5], watch);
	CHECK_STR(t->cell[i][6], gcat);
}

static int
is_pseudonym(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
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

/* Nothing that identifies a person, locally or across partners, is in the file. */
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

static void
check_join_counts(const struct export_stats *s)
{
	CHECK_EQ_INT(s->left_records, 11);
	CHECK_EQ_INT(s->right_records, 11);
	CHECK_EQ_INT(s->superseded, 1);   /* K4's first record */
	CHECK_EQ_INT(s->matched, 9);
	CHECK_EQ_INT(s->ambiguous, 1);    /* K3's phone */
}

static void
test_analytics(struct world *w, char pseudonyms[MAX_ROWS][33], size_t *npseudo)
{
	char out[WORLD_PATH_MAX];
	struct export_opts o = opts(w, w->pol, "analytics", out, "analytics.csv");
	struct export_stats s;
	struct cg_err err;
	struct table t;
	Crossgate__AuditEvent *ev;
	uint64_t events = audit_size(w->au);
	size_t i, j;
	int round;

	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	check_join_counts(&s);
	CHECK_EQ_INT(s.no_consent, 4);    /* K4 (withdrawn), K5-G5, K6-G6, K10-G10 */
	CHECK_EQ_INT(s.exported, 4);
	CHECK_EQ_INT(s.suppressed, 1);    /* K9: alone in (40-49, East) */
	CHECK_EQ_INT(s.classes, 2);
	CHECK_EQ_INT(s.k, 2);
	CHECK(s.load_seconds >= 0 && s.join_seconds >= 0);

	/* The export is two audit events: the export-cap charge, then the export with its counts. */
	CHECK_EQ_INT(audit_size(w->au), events + 2);
	ev = world_last_event(w);
	CHECK_STR(ev->action, "export");
	CHECK_STR(ev->outcome, "ok");
	CHECK_STR(ev->actor, "analyst");
	CHECK_STR(ev->purpose, "analytics");
	CHECK_EQ_INT(ev->k, 2);
	CHECK(ev->policy_hash.len == 32 && memcmp(ev->policy_hash.data, w->pol->hash, 32) == 0);
	CHECK_EQ_INT(world_event_count(ev, "exported"), 4);
	CHECK_EQ_INT(world_event_count(ev, "suppressed"), 1);
	CHECK_EQ_INT(world_event_count(ev, "matched"), 9);
	CHECK_EQ_INT(world_event_count(ev, "ambiguous"), 1);
	CHECK_EQ_INT(world_event_count(ev, "superseded"), 1);
	CHECK_EQ_INT(world_event_count(ev, "no_consent"), 4);
	crossgate__audit_event__free_unpacked(ev, NULL);

	/* Twice: the same rows, under pseudonyms never seen before. */
	for (round = 0; round < 2; round++) {
		if (round == 1) {
			o = opts(w, w->pol, "analytics", out, "analytics2.csv");
			CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
			CHECK_EQ_INT(s.exported, 4);
			ev = world_last_event(w);
			CHECK_STR(ev->actor, "analyst");
			crossgate__audit_event__free_unpacked(ev, NULL);
		}
		CHECK_EQ_INT(read_table(out, &t), 0);
		CHECK_STR(t.header, EXPORT_HEADER);
		CHECK(!t.bad_shape);
		CHECK_EQ_INT(t.nrows, 4);
		/* Quasi-identifiers come generalized from the left partner (K), not from G's ages. */
		check_row(&t, "1111", "20-29", "North", "programming", "11", "moba");
		check_row(&t, "2222", "20-29", "North", "finance", "22", "fps");
		check_row(&t, "3333", "30-39", "Other", "language", "33", "rpg");
		check_row(&t, "8888", "30-39", "Other", "language", "88", "fps");
		CHECK_EQ_INT(row_of(&t, "9999"), -1);   /* suppressed */
		CHECK_EQ_INT(row_of(&t, "4444"), -1);   /* withdrawn in a newer batch */
		CHECK_EQ_INT(row_of(&t, "4445"), -1);
		CHECK_EQ_INT(row_of(&t, "5555"), -1);
		CHECK_EQ_INT(row_of(&t, "6666"), -1);
		CHECK_EQ_INT(row_of(&t, "7777"), -1);
		CHECK_EQ_INT(row_of(&t, "1010"), -1);
		for (i = 0; i < t.nrows; i++) {
			CHECK(strcmp(t.cell[i][5], "99") != 0);   /* G3b is never K3's partner */
			CHECK(is_pseudonym(t.cell[i][0]));
			for (j = 0; j < *npseudo; j++)
				CHECK(strcmp(t.cell[i][0], pseudonyms[j]) != 0);
			if (*npseudo < MAX_ROWS)
				snprintf(pseudonyms[(*npseudo)++], 33, "%s", t.cell[i][0]);
		}
		check_no_identifiers(out);
	}
}

static void
test_k_large(struct world *w)
{
	char out[WORLD_PATH_MAX];
	struct policy *k3 = world_policy(w, 3, NULL, NULL);
	struct export_opts o = opts(w, k3, "analytics", out, "analytics-k3.csv");
	struct export_stats s;
	struct cg_err err;
	struct table t;
	size_t i;

	/*
	 * k = 3: no class of (age band, region) is large enough, so the export
	 * climbs the hierarchies (age first: as varied as region, and first),
	 * until everything is '*' and the five rows are one class.
	 */
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	check_join_counts(&s);
	CHECK_EQ_INT(s.k, 3);
	CHECK_EQ_INT(s.candidates, 5);
	CHECK_EQ_INT(s.exported, 5);
	CHECK_EQ_INT(s.suppressed, 0);
	CHECK_EQ_INT(s.classes, 1);
	CHECK_STR(s.levels, "age=1 region=1");
	CHECK_EQ_INT(read_table(out, &t), 0);
	CHECK_STR(t.header, EXPORT_HEADER);
	CHECK_EQ_INT(t.nrows, 5);
	for (i = 0; i < t.nrows; i++) {
		CHECK_STR(t.cell[i][1], "*");
		CHECK_STR(t.cell[i][2], "*");
	}

	/* Two marketing rows can never make a class of 3: refused, nothing written. */
	o = opts(w, k3, "marketing", out, "marketing-k3.csv");
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "suppression limit");
	CHECK(!world_exists(w, "marketing-k3.csv"));
	CHECK(!world_exists(w, "marketing-k3.csv.meta.json"));
	policy_free(k3);
}

static void
test_marketing(struct world *w)
{
	char out[WORLD_PATH_MAX];
	struct export_opts o = opts(w, w->pol, "marketing", out, "marketing.csv");
	struct export_stats s;
	struct cg_err err;
	struct table t;

	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	check_join_counts(&s);
	CHECK_EQ_INT(s.no_consent, 7);
	CHECK_EQ_INT(s.exported, 2);
	CHECK_EQ_INT(s.suppressed, 0);
	CHECK_EQ_INT(s.classes, 1);
	CHECK_EQ_INT(read_table(out, &t), 0);
	CHECK_EQ_INT(t.nrows, 2);
	check_row(&t, "6666", "40-49", "East", "finance", "66", "moba");
	check_row(&t, "1010", "40-49", "East", "finance", "101", "rpg");
	check_no_identifiers(out);
}

static void
test_sides(struct world *w)
{
	char out[WORLD_PATH_MAX];
	struct export_opts o = opts(w, w->pol, "analytics", out, "reversed.csv");
	struct export_stats s;
	struct cg_err err;
	struct table t;
	int i, seen = 0;

	/* G on the left: its features first, its quasi-identifiers. */
	o.left = "g";
	o.right = "k";
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), 0);
	CHECK_EQ_INT(s.left_records, 11);
	CHECK_EQ_INT(s.right_records, 11);
	CHECK_EQ_INT(s.superseded, 1);
	CHECK_EQ_INT(s.matched, 9);
	CHECK_EQ_INT(s.ambiguous, 1);     /* G3b's phone points at K3, already paired by email */
	CHECK_EQ_INT(s.no_consent, 4);
	CHECK_EQ_INT(s.exported, 4);      /* (50-59, East) G1 G2; (30-39, North) G3a G8 */
	CHECK_EQ_INT(s.suppressed, 1);    /* G9 */
	CHECK_EQ_INT(read_table(out, &t), 0);
	CHECK_STR(t.header, "pseudonym,age,region,g_watch_minutes,g_top_game_category,k_course_spend_cents,"
	    "k_top_course_category");
	CHECK_EQ_INT(t.nrows, 4);
	for (i = 0; i < (int)t.nrows; i++)
		if (strcmp(t.cell[i][3], "11") == 0) {
			seen++;
			CHECK_STR(t.cell[i][1], "50-59");   /* G1's age */
			CHECK_STR(t.cell[i][2], "East");
			CHECK_STR(t.cell[i][5], "1111");
			CHECK_STR(t.cell[i][6], "programming");
		}
	CHECK_EQ_INT(seen, 1);

	/* One partner twice is no join. */
	o.left = "k";
	o.right = "k";
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "two different partners");
	o.left = "zz";
	o.right = NULL;
	CHECK_EQ_INT(export_run(w->st, w->au, &o, &s, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "two different partners");
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

/* Consent edited in the database: the AEAD binds it, so the export refuses. */
static void
test_tamper(struct world *w)
{
	char out[WORLD_PATH_MAX], want[64];
	struct export_opts o = opts(w, w->pol, "analytics", out, "tampered.csv");
	struct export_stats s;
	struct cg_err err;
	sqlite3_stmt *q = NULL;
	int64_t id = -1;
	uint64_t events = audit_size(w->au);

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
	CHECK_EQ_INT(audit_size(w->au), events + 1);   /* only the export-cap charge, which is never refunded */
}

/* A quasi-identifier the left partner left empty is taken from the right partner. */
static void
test_qi_fallback(void)
{
	struct world w2;
	struct policy *opt = NULL;
	struct pack_stats st;
	struct ingest_result res;
	struct export_stats s;
	struct export_opts o;
	struct cg_err err;
	struct table t;
	char out[WORLD_PATH_MAX], *text, *at;
	static const char band[] = "generalize: {band: 10}}";
	static const char optional[] = "generalize: {band: 10}, required: false}";

	world_init(&w2, 2);
	/* K's age (the first band column) becomes optional. */
	text = world_policy_text(&w2, 2, w2.kline, NULL);
	at = strstr(text, band);
	CHECK(at != NULL);
	if (at != NULL) {
		char *t2 = malloc(strlen(text) + sizeof(optional));
		if (t2 == NULL)
			world_die("out of memory", NULL);
		snprintf(t2, strlen(text) + sizeof(optional), "%.*s%s%s", (int)(at - text), text, optional,
		    at + strlen(band));
		if (policy_parse("optional.yaml", t2, strlen(t2), &opt, NULL, &err) != 0)
			world_die("policy_parse", &err);
		free(t2);
		policy_free(w2.pol);
		w2.pol = opt;
	}
	free(text);
	world_open_store(&w2);
	world_pack(&w2, "k", "k.csv", WORLD_K_HEADER
	    "a,one@example.com,,,CN-BJ,match;analytics,2024-01-01,1,finance\n"
	    "b,two@example.com,,,CN-BJ,match;analytics,2024-01-01,2,finance\n", "k.batch", &st);
	CHECK_EQ_INT(st.packed, 2);
	world_pack(&w2, "g", "g.csv", WORLD_G_HEADER
	    "a,one@example.com,,33,CN-SH,match;analytics,2024-01-01,10,moba\n"
	    "b,two@example.com,,37,CN-SH,match;analytics,2024-01-01,20,moba\n", "g.batch", &st);
	CHECK_EQ_INT(world_ingest(&w2, NULL, "k.batch", &res, &err), 0);
	CHECK_EQ_INT(world_ingest(&w2, NULL, "g.batch", &res, &err), 0);
	o = opts(&w2, w2.pol, "analytics", out, "fallback.csv");
	CHECK_EQ_INT(export_run(w2.st, w2.au, &o, &s, &err), 0);
	CHECK_EQ_INT(s.exported, 2);
	CHECK_EQ_INT(read_table(out, &t), 0);
	check_row(&t, "1", "30-39", "North", "finance", "10", "moba");   /* age from G, region from K */
	check_row(&t, "2", "30-39", "North", "finance", "20", "moba");
	world_free(&w2);
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	char pseudonyms[MAX_ROWS][33];
	size_t npseudo = 0;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	world_open_store(&w);
	if (token_ctx_new(w.match->key, w.match->key_len, &tctx, &err) != 0)
		world_die("token_ctx_new", &err);
	build(&w);
	test_analytics(&w, pseudonyms, &npseudo);
	test_k_large(&w);
	test_marketing(&w);
	test_sides(&w);
	test_bad_purpose(&w);
	test_tamper(&w);
	test_qi_fallback();
	token_ctx_free(tctx);
	world_free(&w);
	CGT_DONE();
}
