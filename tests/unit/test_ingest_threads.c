/*
 * test_ingest_threads.c - ingest on worker threads stores what one thread
 * stores, row for row, and rejects a batch with a bad record anywhere in it
 * with the message one thread gives, storing nothing.  The batches span
 * several of ingest's windows (4,096 records) and many of its tasks (256).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "gateway/ingest.h"
#include "proto/batch.h"
#include "proto/frame.h"

#define BIT_MATCH 1u
#define BIT_ANALYTICS 2u
#define NBIG 9000
#define WITHDRAW_EVERY 1500

static struct token_ctx *tctx;
/* big_batch: the record after each withdrawal is a data record of the user just withdrawn */
static int echo_withdrawn;

enum big_bad {
	BIG_NONE,
	BIG_AD,          /* consent bits changed after sealing: the seal does not open */
	BIG_NO_MATCH,    /* consent without match, sealed consistently */
	BIG_MALFORMED,   /* a signed frame that is no SealedRecord */
};

struct big_opts {
	uint64_t n;
	const char *prefix;            /* the users' emails: PREFIX<i>@example.com */
	int64_t at;                    /* consent_at of every record */
	uint64_t withdraw_every;       /* every Nth record withdraws gone<i>@example.com (0: none) */
	uint64_t bad_at[2];
	enum big_bad bad[2];
};

static enum big_bad
big_bad_of(const struct big_opts *o, uint64_t i)
{
	for (int b = 0; b < 2; b++)
		if (o->bad[b] != BIG_NONE && o->bad_at[b] == i)
			return o->bad[b];
	return BIG_NONE;
}

/* A batch of o->n records of partner k, validly signed; even records carry a phone token too. */
static void
big_batch(struct world *w, const char *name, const struct big_opts *o)
{
	Crossgate__BatchHeader hdr = CROSSGATE__BATCH_HEADER__INIT;
	Crossgate__SealedRecord rec;
	Crossgate__Token tok[2], *tokp[2];
	Crossgate__Field f[4], *fp[4];
	Crossgate__RecordPayload pl;
	struct batch_writer *bw = NULL;
	struct token t[2];
	struct cg_err err;
	unsigned char key[SEAL_KEY_LEN], wrapped[SEAL_WRAPPED_LEN], batch_id[16], ad[SEAL_AD_MAX], pt[512],
	    ct[512 + SEAL_TAG_LEN];
	char path[WORLD_PATH_MAX], id[64];
	size_t ad_len, pt_len, nt, k;
	uint64_t i;

	world_path(w, name, path);
	randombytes_buf(key, sizeof(key));
	randombytes_buf(batch_id, sizeof(batch_id));
	if (seal_wrap_key(key, w->gwenc->pub, wrapped) != 0)
		world_die("seal_wrap_key", NULL);
	hdr.version = BATCH_VERSION;
	hdr.partner_id = (char *)"k";
	hdr.batch_id.data = batch_id;
	hdr.batch_id.len = 16;
	hdr.gateway_key_id.data = w->gwenc->id;
	hdr.gateway_key_id.len = KEYFILE_ID_LEN;
	hdr.signer_key_id.data = w->ksign->id;
	hdr.signer_key_id.len = KEYFILE_ID_LEN;
	hdr.wrapped_key.data = wrapped;
	hdr.wrapped_key.len = sizeof(wrapped);
	hdr.aead = CROSSGATE__AEAD__AEAD_CHACHA20POLY1305_IETF;
	hdr.created_at = 1700000000;
	hdr.policy_hash.data = w->pol->hash;
	hdr.policy_hash.len = 32;
	if (batch_writer_open(path, &hdr, w->ksign->key, &bw, &err) != 0)
		world_die("batch_writer_open", &err);
	for (k = 0; k < 4; k++) {
		crossgate__field__init(&f[k]);
		fp[k] = &f[k];
	}
	f[0].name = (char *)"age";
	f[0].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
	f[1].name = (char *)"region";
	f[1].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
	f[1].str_value = (char *)"CN-BJ";
	f[2].name = (char *)"course_spend_cents";
	f[2].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
	f[3].name = (char *)"top_course_category";
	f[3].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
	f[3].str_value = (char *)"finance";
	for (i = 0; i < o->n; i++) {
		enum big_bad bad = big_bad_of(o, i);
		int withdrawal = o->withdraw_every != 0 && i % o->withdraw_every == o->withdraw_every - 1;
		uint32_t bits = withdrawal ? 0 : bad == BIG_NO_MATCH ? BIT_ANALYTICS : BIT_MATCH | BIT_ANALYTICS;

		if (bad == BIG_MALFORMED) {
			/* 0xff: a field number with wire type 7, which no protobuf decoder takes */
			unsigned char frame[FRAME_HDR_LEN + 3] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };
			if (batch_writer_add_encoded(bw, frame, sizeof(frame), 1, &err) != 0)
				world_die("batch_writer_add_encoded", &err);
			continue;
		}
		{
			int echo = echo_withdrawn && o->withdraw_every != 0 && i > 0 &&
			    (i - 1) % o->withdraw_every == o->withdraw_every - 1;
			snprintf(id, sizeof(id), "%s%llu@example.com", withdrawal || echo ? "gone" : o->prefix,
			    (unsigned long long)(echo ? i - 1 : i));
		}
		t[0].kind = TOKEN_KIND_EMAIL;
		if (token_compute(tctx, TOKEN_KIND_EMAIL, id, strlen(id), t[0].value) != 0)
			world_die("token_compute", NULL);
		nt = 1;
		if (i % 2 == 0 && !withdrawal) {
			snprintf(id, sizeof(id), "+86138%08llu", (unsigned long long)i);
			t[1].kind = TOKEN_KIND_PHONE;
			if (token_compute(tctx, TOKEN_KIND_PHONE, id, strlen(id), t[1].value) != 0)
				world_die("token_compute", NULL);
			nt = 2;
		}
		if (withdrawal) {
			Crossgate__Withdrawal wd = CROSSGATE__WITHDRAWAL__INIT;
			wd.withdrawn = BIT_MATCH;
			pt_len = crossgate__withdrawal__pack(&wd, pt);
		} else {
			f[0].int_value = 18 + (int64_t)(i % 60);
			f[2].int_value = (int64_t)(i * 7 % 100000);
			crossgate__record_payload__init(&pl);
			pl.fields = fp;
			pl.n_fields = 4;
			if (crossgate__record_payload__get_packed_size(&pl) > sizeof(pt))
				world_die("payload too large", NULL);
			pt_len = crossgate__record_payload__pack(&pl, pt);
		}
		if (seal_ad_build(ad, &ad_len, batch_id, "k", i, bits, o->at, t, nt) != 0 ||
		    seal_record(key, i, ad, ad_len, pt, pt_len, ct) != 0)
			world_die("seal", NULL);
		for (k = 0; k < nt; k++) {
			crossgate__token__init(&tok[k]);
			tok[k].kind = t[k].kind == TOKEN_KIND_EMAIL ? CROSSGATE__ID_KIND__ID_KIND_EMAIL
			    : CROSSGATE__ID_KIND__ID_KIND_PHONE;
			tok[k].value.data = t[k].value;
			tok[k].value.len = TOKEN_LEN;
			tokp[k] = &tok[k];
		}
		crossgate__sealed_record__init(&rec);
		rec.index = i;
		rec.tokens = tokp;
		rec.n_tokens = nt;
		rec.consent_bits = bad == BIG_AD ? bits | 4u : bits;   /* marketing granted after sealing */
		rec.consent_at = o->at;
		rec.withdrawal = withdrawal;
		rec.ciphertext.data = ct;
		rec.ciphertext.len = pt_len + SEAL_TAG_LEN;
		if (batch_writer_add(bw, &rec, &err) != 0)
			world_die("batch_writer_add", &err);
	}
	if (batch_writer_finish(bw, NULL, &err) != 0)
		world_die("batch_writer_finish", &err);
	batch_writer_free(bw);
	sodium_memzero(key, sizeof(key));
}

/* The file offset of record `index`'s frame, walked from the frame lengths (not by the reader under test). */
static uint64_t
frame_offset(struct world *w, const char *name, uint64_t index)
{
	char path[WORLD_PATH_MAX];
	unsigned char *buf;
	size_t len, off = 0;
	uint64_t frame;

	world_path(w, name, path);
	if ((buf = (unsigned char *)world_slurp(path, &len)) == NULL)
		world_die("slurp", NULL);
	for (frame = 0; frame <= index && off + 4 <= len; frame++)   /* frame 0 is the header */
		off += 4 + ((size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 | (size_t)buf[off + 2] << 8 | buf[off + 3]);
	free(buf);
	return off;
}

/* A second store in the world's directory, with the world's keys. */
struct gw {
	struct store *st;
	struct audit *au;
};

static void
gw_open(struct world *w, const char *name, struct gw *g)
{
	char path[WORLD_PATH_MAX];
	struct cg_err err;

	world_path(w, name, path);
	if (store_open(path, STORE_OPEN_CREATE, &g->st, &err) != 0 || audit_open(g->st, w->gwsign, &g->au, &err) != 0)
		world_die("store_open", &err);
}

static void
gw_close(struct gw *g)
{
	audit_free(g->au);
	store_close(g->st);
}

static int
gw_ingest(struct world *w, struct gw *g, const char *name, unsigned threads, struct ingest_result *res,
    struct cg_err *err)
{
	struct ingest_keys keys = { w->gwenc, w->storage, threads };
	char path[WORLD_PATH_MAX];

	world_path(w, name, path);
	memset(err, 0, sizeof(*err));
	return ingest_batch_file(g->st, g->au, w->pol, &keys, path, res, err);
}

static int64_t
gw_int(struct gw *g, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(store_db(g->st), sql, -1, &s, NULL) != SQLITE_OK)
		world_die(sql, NULL);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* The store's latest audit event (caller frees). */
static Crossgate__AuditEvent *
gw_last_event(struct gw *g)
{
	sqlite3_stmt *s = NULL;
	Crossgate__AuditEvent *ev = NULL;

	if (sqlite3_prepare_v2(store_db(g->st), "SELECT event FROM audit_events ORDER BY seq DESC LIMIT 1", -1, &s,
	    NULL) != SQLITE_OK)
		world_die("audit select", NULL);
	if (sqlite3_step(s) == SQLITE_ROW)
		ev = crossgate__audit_event__unpack(NULL, (size_t)sqlite3_column_bytes(s, 0), sqlite3_column_blob(s, 0));
	sqlite3_finalize(s);
	if (ev == NULL)
		world_die("no audit event", NULL);
	return ev;
}

/* Every row and column `sql` gives on both stores is the same; returns the rows compared. */
static int64_t
same_rows(struct gw *a, struct gw *b, const char *sql)
{
	sqlite3_stmt *s[2];
	int64_t rows = 0;
	int rc[2], c, differ = 0;

	if (sqlite3_prepare_v2(store_db(a->st), sql, -1, &s[0], NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(store_db(b->st), sql, -1, &s[1], NULL) != SQLITE_OK)
		world_die(sql, NULL);
	for (;;) {
		rc[0] = sqlite3_step(s[0]);
		rc[1] = sqlite3_step(s[1]);
		if (rc[0] != rc[1] || rc[0] != SQLITE_ROW)
			break;
		for (c = 0; c < sqlite3_column_count(s[0]); c++) {
			int n = sqlite3_column_bytes(s[0], c);
			if (sqlite3_column_type(s[0], c) != sqlite3_column_type(s[1], c) || n != sqlite3_column_bytes(s[1], c) ||
			    (n > 0 && memcmp(sqlite3_column_blob(s[0], c), sqlite3_column_blob(s[1], c), (size_t)n) != 0))
				differ++;
		}
		rows++;
	}
	CHECK_EQ_INT(rc[0], SQLITE_DONE);
	CHECK_EQ_INT(rc[1], SQLITE_DONE);
	CHECK_EQ_INT(differ, 0);
	sqlite3_finalize(s[0]);
	sqlite3_finalize(s[1]);
	return rows;
}

static void
same_result(const struct ingest_result *a, const struct ingest_result *b)
{
	CHECK_EQ_INT(a->records, b->records);
	CHECK_EQ_INT(a->skipped_revoked, b->skipped_revoked);
	CHECK_EQ_INT(a->erased, b->erased);
	CHECK_EQ_INT(a->withdrawn, b->withdrawn);
	CHECK_EQ_INT(a->narrowed, b->narrowed);
	CHECK_EQ_INT(a->duplicate, b->duplicate);
	CHECK(memcmp(a->digest, b->digest, 32) == 0);
}

/*
 * Batch A: NBIG records, every WITHDRAW_EVERY-th a withdrawal of another
 * user (the writer's own path, amid the workers' records).  Batch B: users
 * A withdrew, at an older consent (left out: the tombstone check) and a
 * newer one (stored).  One thread and three store the same rows.
 */
static void
test_same_rows(struct world *w)
{
	struct big_opts a = { NBIG, "user", 1700000000, WITHDRAW_EVERY, { 0, 0 }, { BIG_NONE, BIG_NONE } };
	struct big_opts b = { NBIG, "other", 1600000000, 0, { 0, 0 }, { BIG_NONE, BIG_NONE } };
	struct ingest_result r1, r3;
	struct cg_err e1, e3;
	struct gw g1, g3;
	uint64_t withdrawals = NBIG / WITHDRAW_EVERY;

	big_batch(w, "a.batch", &a);
	gw_open(w, "one.db", &g1);
	gw_open(w, "three.db", &g3);
	CHECK_EQ_INT(gw_ingest(w, &g1, "a.batch", 1, &r1, &e1), 0);
	CHECK_EQ_INT(gw_ingest(w, &g3, "a.batch", 3, &r3, &e3), 0);
	CHECK_EQ_INT(r1.records, NBIG - withdrawals);
	CHECK_EQ_INT(r1.withdrawn, withdrawals);
	same_result(&r1, &r3);
	/* B's "gone" users: its records are data records, consent older than A's withdrawals */
	{
		struct big_opts gone = b;
		char name[32];

		gone.prefix = "gone";
		gone.withdraw_every = 0;
		snprintf(name, sizeof(name), "b.batch");
		big_batch(w, name, &gone);
		CHECK_EQ_INT(gw_ingest(w, &g1, name, 1, &r1, &e1), 0);
		CHECK_EQ_INT(gw_ingest(w, &g3, name, 3, &r3, &e3), 0);
		/* gone<i> for i = WITHDRAW_EVERY-1, 2*WITHDRAW_EVERY-1, ...: those A withdrew */
		CHECK_EQ_INT(r1.skipped_revoked, withdrawals);
		CHECK_EQ_INT(r1.records, NBIG - withdrawals);
		same_result(&r1, &r3);
	}
	CHECK_EQ_INT(same_rows(&g1, &g3, "SELECT id, batch, partner, idx, email_token, phone_token, consent_bits, "
	    "consent_at, payload FROM records ORDER BY id"), 2 * (NBIG - withdrawals));
	CHECK_EQ_INT(same_rows(&g1, &g3, "SELECT id, batch_id, partner, digest, records, policy_hash, wrapped_key "
	    "FROM batches ORDER BY id"), 2);
	CHECK_EQ_INT(gw_int(&g1, "SELECT count(*) FROM tombstones"), (int64_t)withdrawals);
	CHECK_EQ_INT(gw_int(&g3, "SELECT count(*) FROM tombstones"), (int64_t)withdrawals);
	CHECK_EQ_INT(gw_int(&g1, "SELECT count(*) FROM records WHERE phone_token IS NOT NULL"),
	    gw_int(&g3, "SELECT count(*) FROM records WHERE phone_token IS NOT NULL"));
	gw_close(&g1);
	gw_close(&g3);
}

/*
 * A bad record deep in a batch (past the first window, inside a task) is the
 * batch's rejection at every thread count: the same code and message, an
 * audit event, nothing stored.  With two bad records the first in record
 * order is the one reported, although a later task may fail first.
 */
static void
test_bad_record(struct world *w)
{
	static const struct {
		uint64_t at[2];
		enum big_bad bad[2];
		int code;
		const char *msg;
	} cases[] = {
		{ { 6000, 0 }, { BIG_AD, BIG_NONE }, CG_ERR_CRYPTO, "record 6000: sealed record 6000 does not verify" },
		{ { 6000, 0 }, { BIG_NO_MATCH, BIG_NONE }, CG_ERR_POLICY, "record 6000: no 'match' consent" },
		{ { 6000, 0 }, { BIG_MALFORMED, BIG_NONE }, CG_ERR_FORMAT, ": malformed record 6000" },
		{ { 8999, 0 }, { BIG_AD, BIG_NONE }, CG_ERR_CRYPTO, "record 8999: sealed record 8999 does not verify" },
		{ { 8200, 4100 }, { BIG_AD, BIG_NO_MATCH }, CG_ERR_POLICY, "record 4100: no 'match' consent" },
		{ { 4097, 300 }, { BIG_NO_MATCH, BIG_MALFORMED }, CG_ERR_FORMAT, ": malformed record 300" },
	};
	static const unsigned threads[] = { 1, 2, 3 };
	struct big_opts good = { 1000, "base", 1700000000, 0, { 0, 0 }, { BIG_NONE, BIG_NONE } };
	struct ingest_result res;
	struct cg_err e, first;
	char name[32], want[128];
	size_t c, t;
	struct gw g;

	gw_open(w, "bad.db", &g);
	big_batch(w, "good.batch", &good);
	CHECK_EQ_INT(gw_ingest(w, &g, "good.batch", 2, &res, &e), 0);
	CHECK_EQ_INT(res.records, 1000);
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct big_opts o = { NBIG, "user", 1700000000, 0, { cases[c].at[0], cases[c].at[1] },
			{ cases[c].bad[0], cases[c].bad[1] } };
		uint64_t first_bad = cases[c].bad[1] != BIG_NONE && cases[c].at[1] < cases[c].at[0] ? cases[c].at[1]
		    : cases[c].at[0];

		snprintf(name, sizeof(name), "bad%zu.batch", c);
		big_batch(w, name, &o);
		for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
			uint64_t events = audit_size(g.au);
			Crossgate__AuditEvent *ev;

			CHECK_EQ_INT(gw_ingest(w, &g, name, threads[t], &res, &e), cases[c].code);
			CHECK_CONTAINS(e.msg, cases[c].msg);
			CHECK_CONTAINS(e.msg, name);
			if (strstr(cases[c].msg, "malformed") != NULL) {
				snprintf(want, sizeof(want), "offset %llu: malformed record %llu",
				    (unsigned long long)frame_offset(w, name, first_bad), (unsigned long long)first_bad);
				CHECK_CONTAINS(e.msg, want);
			}
			if (t == 0)
				first = e;
			else
				CHECK_STR(e.msg, first.msg);
			CHECK_EQ_INT(res.records, 0);
			CHECK_EQ_INT(gw_int(&g, "SELECT count(*) FROM records"), 1000);
			CHECK_EQ_INT(gw_int(&g, "SELECT count(*) FROM batches"), 1);
			CHECK_EQ_INT(audit_size(g.au), events + 1);
			ev = gw_last_event(&g);
			CHECK_STR(ev->outcome, "rejected");
			CHECK_CONTAINS(ev->reason, cases[c].msg);
			CHECK(strstr(ev->reason, w->dir) == NULL);
			crossgate__audit_event__free_unpacked(ev, NULL);
		}
	}
	gw_close(&g);
}

/*
 * A record of a user withdrawn earlier in the same batch (5 of them, each
 * right after its withdrawal, dated the same): with tombstones committed
 * before, it is kept out, as the tombstone staged at the withdrawal kept it
 * out when tombstones were written one by one; without, it is stored and
 * erased by the batch's erasure pass (its records count includes them, its
 * rows do not).
 */
static void
test_withdrawn_in_batch(struct world *w, int prior, unsigned threads)
{
	struct big_opts a = { NBIG, "user", 1700000000, WITHDRAW_EVERY, { 0, 0 }, { BIG_NONE, BIG_NONE } };
	struct big_opts c = { NBIG, "later", 1800000000, WITHDRAW_EVERY, { 0, 0 }, { BIG_NONE, BIG_NONE } };
	struct ingest_result r;
	struct cg_err e;
	struct gw g;
	char db[32];

	snprintf(db, sizeof(db), "echo%d%u.db", prior, threads);
	big_batch(w, "ea.batch", &a);
	echo_withdrawn = 1;
	big_batch(w, "ec.batch", &c);
	echo_withdrawn = 0;
	gw_open(w, db, &g);
	if (prior)
		CHECK_EQ_INT(gw_ingest(w, &g, "ea.batch", threads, &r, &e), 0);
	CHECK_EQ_INT(gw_ingest(w, &g, "ec.batch", threads, &r, &e), 0);
	CHECK_EQ_INT(r.withdrawn, 6);
	CHECK_EQ_INT(r.skipped_revoked, prior ? 5 : 0);
	CHECK_EQ_INT(r.erased, prior ? 0 : 5);
	CHECK_EQ_INT(r.records, prior ? NBIG - 6 - 5 : NBIG - 6);
	CHECK_EQ_INT(gw_int(&g, "SELECT count(*) FROM records WHERE batch = (SELECT max(id) FROM batches)"),
	    NBIG - 6 - 5);
	CHECK_EQ_INT(gw_int(&g, "SELECT records FROM batches WHERE id = (SELECT max(id) FROM batches)"), r.records);
	gw_close(&g);
}

int
main(void)
{
	struct world w;
	struct cg_err err;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	if (token_ctx_new(w.match->key, w.match->key_len, &tctx, &err) != 0)
		world_die("token_ctx_new", &err);
	test_same_rows(&w);
	test_bad_record(&w);
	test_withdrawn_in_batch(&w, 0, 1);
	test_withdrawn_in_batch(&w, 1, 1);
	test_withdrawn_in_batch(&w, 1, 3);
	token_ctx_free(tctx);
	world_free(&w);
	CGT_DONE();
}
