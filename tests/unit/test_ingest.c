/* test_ingest.c - the gateway takes a batch whole or not at all, and logs either way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "agent/pack.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "gateway/ingest.h"
#include "proto/batch.h"

#define BIT_MATCH 1u
#define BIT_ANALYTICS 2u

/* Five rows: u3 is a newer row of u1, u4 lacks match, so three records. */
static const char k_csv[] =
    WORLD_K_HEADER
    "u1,one@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,programming\n"
    "u2,two@example.com,13800000002,35,CN-SH,match,2024-01-01,200,finance\n"
    "u3,one@example.com,13800000001,25,CN-BJ,match,2024-02-01,101,programming\n"
    "u4,four@example.com,,45,CN-BJ,analytics,2024-01-01,400,language\n"
    "u5,,13800000005,55,XX-YY,match;analytics;marketing,2024-01-01,500,language\n";

static const char g_csv[] =
    WORLD_G_HEADER
    "g1,one@example.com,,25,CN-BJ,match;analytics,2024-01-01,10,moba\n"
    "g2,two@example.com,,35,CN-SH,match,2024-01-01,20,fps\n";

/* ------------------------------------------------------------------------ */
/* Hand-built batches: validly signed, but with contents an honest agent never writes. */

enum fake_bad {
	FAKE_NONE,
	FAKE_NO_MATCH,         /* consent without match, sealed consistently */
	FAKE_UNKNOWN_FIELD,    /* "shoe_size": not a column of the policy at all */
	FAKE_LOCAL_ID_FIELD,   /* "user_id": a column, but never shareable */
	FAKE_RANGE,            /* course_spend_cents below its min */
	FAKE_CATEGORY,         /* top_course_category not in the list */
	FAKE_MISSING,          /* required top_course_category left out */
	FAKE_TYPE,             /* age as a string */
	FAKE_AD,               /* consent bits changed after sealing */
	FAKE_PURPOSE_BIT,      /* a consent bit past the policy's purposes */
	FAKE_DUP_FIELD,        /* the same field twice */
	FAKE_KIND,             /* a batch kind this gateway does not know (header) */
	FAKE_W_PURPOSE,        /* a withdrawal of a purpose past the policy's purposes */
	FAKE_W_LEAF,           /* a withdrawal whose receipt leaf is not 32 bytes */
	FAKE_W_AD,             /* a withdrawal whose consent bits changed after sealing */
	FAKE_W_NARROW_MATCH,   /* a narrowing (consent keeps match) that says it withdraws match */
	FAKE_W_ERASE_QUIET,    /* a withdrawal without match that says only analytics is withdrawn */
};

struct fake_opts {
	const char *partner;                   /* default "k" */
	const struct keyfile_key *sign;        /* default k's key */
	const unsigned char *signer_id;        /* default sign's id */
	const unsigned char *gateway_pub;      /* the wrapped key is sealed to this; default the gateway's */
	enum fake_bad bad;                     /* applied to record 1 of 3 */
};

static struct token_ctx *tctx;

static void
fake_batch(struct world *w, const char *name, const struct fake_opts *fo)
{
	Crossgate__BatchHeader hdr = CROSSGATE__BATCH_HEADER__INIT;
	Crossgate__SealedRecord rec;
	Crossgate__Token tok, *tokp[1];
	Crossgate__Field f[6], *fp[6];
	Crossgate__RecordPayload pl;
	struct batch_writer *bw = NULL;
	struct token t;
	struct cg_err err;
	const struct keyfile_key *sign = fo->sign ? fo->sign : w->ksign;
	unsigned char key[SEAL_KEY_LEN], wrapped[SEAL_WRAPPED_LEN], batch_id[16], ad[SEAL_AD_MAX], pt[1024],
	    ct[1024 + SEAL_TAG_LEN];
	char path[WORLD_PATH_MAX], email[64];
	size_t ad_len, pt_len, nf;
	uint64_t i;

	world_path(w, name, path);
	randombytes_buf(key, sizeof(key));
	randombytes_buf(batch_id, sizeof(batch_id));
	if (seal_wrap_key(key, fo->gateway_pub ? fo->gateway_pub : w->gwenc->pub, wrapped) != 0)
		world_die("seal_wrap_key", NULL);
	hdr.version = BATCH_VERSION;
	hdr.partner_id = (char *)(fo->partner ? fo->partner : "k");
	hdr.batch_id.data = batch_id;
	hdr.batch_id.len = 16;
	hdr.gateway_key_id.data = w->gwenc->id;
	hdr.gateway_key_id.len = KEYFILE_ID_LEN;
	hdr.signer_key_id.data = (uint8_t *)(fo->signer_id ? fo->signer_id : sign->id);
	hdr.signer_key_id.len = KEYFILE_ID_LEN;
	hdr.wrapped_key.data = wrapped;
	hdr.wrapped_key.len = sizeof(wrapped);
	hdr.aead = CROSSGATE__AEAD__AEAD_CHACHA20POLY1305_IETF;
	hdr.created_at = (int64_t)time(NULL);
	hdr.policy_hash.data = w->pol->hash;
	hdr.policy_hash.len = 32;
	if (fo->bad == FAKE_KIND)
		hdr.kind = 7;
	if (batch_writer_open(path, &hdr, sign->key, &bw, &err) != 0)
		world_die("batch_writer_open", &err);
	for (i = 0; i < 3; i++) {
		enum fake_bad bad = i == 1 ? fo->bad : FAKE_NONE;
		uint32_t bits = BIT_MATCH | BIT_ANALYTICS;

		snprintf(email, sizeof(email), "fake%llu@example.com", (unsigned long long)i);
		t.kind = TOKEN_KIND_EMAIL;
		if (token_compute(tctx, TOKEN_KIND_EMAIL, email, strlen(email), t.value) != 0)
			world_die("token_compute", NULL);
		for (nf = 0; nf < 6; nf++) {
			crossgate__field__init(&f[nf]);
			fp[nf] = &f[nf];
		}
		f[0].name = (char *)"age";
		f[0].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
		f[0].int_value = 30;
		f[1].name = (char *)"region";
		f[1].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
		f[1].str_value = (char *)"CN-BJ";
		f[2].name = (char *)"course_spend_cents";
		f[2].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
		f[2].int_value = 100;
		f[3].name = (char *)"top_course_category";
		f[3].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
		f[3].str_value = (char *)"finance";
		nf = 4;
		switch (bad) {
		case FAKE_NO_MATCH:
			bits = BIT_ANALYTICS;
			break;
		case FAKE_UNKNOWN_FIELD:
			f[nf].name = (char *)"shoe_size";
			f[nf].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
			f[nf++].int_value = 42;
			break;
		case FAKE_LOCAL_ID_FIELD:
			f[nf].name = (char *)"user_id";
			f[nf].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
			f[nf++].str_value = (char *)"u-secret";
			break;
		case FAKE_RANGE:
			f[2].int_value = -5;
			break;
		case FAKE_CATEGORY:
			f[3].str_value = (char *)"chess";
			break;
		case FAKE_MISSING:
			nf = 3;
			break;
		case FAKE_TYPE:
			f[0].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
			f[0].str_value = (char *)"30";
			break;
		case FAKE_PURPOSE_BIT:
			bits |= 1u << 5;
			break;
		case FAKE_DUP_FIELD:
			f[nf].name = (char *)"course_spend_cents";
			f[nf].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
			f[nf++].int_value = 7;
			break;
		default:
			break;
		}
		crossgate__record_payload__init(&pl);
		pl.fields = fp;
		pl.n_fields = nf;
		pt_len = crossgate__record_payload__get_packed_size(&pl);
		if (pt_len > sizeof(pt))
			world_die("fake payload too large", NULL);
		crossgate__record_payload__pack(&pl, pt);
		if (bad >= FAKE_W_PURPOSE) {
			Crossgate__Withdrawal wd = CROSSGATE__WITHDRAWAL__INIT;
			unsigned char leaf[5] = { 1, 2, 3, 4, 5 };
			bits = bad == FAKE_W_NARROW_MATCH ? BIT_MATCH | BIT_ANALYTICS : 0;
			wd.withdrawn = bad == FAKE_W_PURPOSE ? 1u << 5 : bad == FAKE_W_ERASE_QUIET ? BIT_ANALYTICS : BIT_MATCH;
			if (bad == FAKE_W_LEAF) {
				wd.receipt_leaf.data = leaf;
				wd.receipt_leaf.len = sizeof(leaf);
			}
			pt_len = crossgate__withdrawal__pack(&wd, pt);
		}
		if (seal_ad_build(ad, &ad_len, batch_id, hdr.partner_id, i, bits, 1700000000, &t, 1) != 0 ||
		    seal_record(key, i, ad, ad_len, pt, pt_len, ct) != 0)
			world_die("seal", NULL);
		crossgate__token__init(&tok);
		tok.kind = CROSSGATE__ID_KIND__ID_KIND_EMAIL;
		tok.value.data = t.value;
		tok.value.len = TOKEN_LEN;
		tokp[0] = &tok;
		crossgate__sealed_record__init(&rec);
		rec.index = i;
		rec.tokens = tokp;
		rec.n_tokens = 1;
		rec.consent_bits = bad == FAKE_AD || bad == FAKE_W_AD ? bits | 4u : bits;   /* marketing granted after the fact */
		rec.withdrawal = bad >= FAKE_W_PURPOSE;
		rec.consent_at = 1700000000;
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

/* ------------------------------------------------------------------------ */

/*
 * Ingest `name` expecting a rejection: the code, the message, one audit
 * event whose reason holds `reason` and not the local path, and no change to
 * the records or batches tables.
 */
static void
expect_reject(struct world *w, const struct policy *pol, const char *name, int code, const char *msg,
    const char *reason)
{
	struct ingest_result res;
	struct cg_err err;
	Crossgate__AuditEvent *ev;
	int64_t records = world_records(w), batches = world_batches(w);
	uint64_t events = audit_size(w->au);

	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(world_ingest(w, pol, name, &res, &err), code);
	CHECK_CONTAINS(err.msg, msg);
	CHECK_EQ_INT(res.duplicate, 0);
	CHECK_EQ_INT(res.records, 0);
	CHECK_EQ_INT(world_records(w), records);
	CHECK_EQ_INT(world_batches(w), batches);
	CHECK_EQ_INT(audit_size(w->au), events + 1);
	ev = world_last_event(w);
	CHECK_STR(ev->action, "ingest");
	CHECK_STR(ev->outcome, "rejected");
	CHECK_CONTAINS(ev->reason, reason);
	CHECK(strstr(ev->reason, w->dir) == NULL);
	CHECK(ev->policy_hash.len == 32 && memcmp(ev->policy_hash.data, (pol ? pol : w->pol)->hash, 32) == 0);
	crossgate__audit_event__free_unpacked(ev, NULL);
}

static void
copy_file(struct world *w, const char *from, const char *to, long truncate_by, long flip_at)
{
	char src[WORLD_PATH_MAX], dst[WORLD_PATH_MAX];
	size_t len;
	char *buf;
	FILE *f;

	world_path(w, from, src);
	world_path(w, to, dst);
	if ((buf = world_slurp(src, &len)) == NULL || (long)len <= truncate_by)
		world_die("copy_file", NULL);
	len -= (size_t)truncate_by;
	if (flip_at >= 0)
		buf[(size_t)flip_at % len] ^= 0x01;
	if ((f = fopen(dst, "wb")) == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		world_die("copy_file write", NULL);
	free(buf);
}

static void
test_good_and_duplicate(struct world *w)
{
	struct pack_stats ks, gs, es;
	struct ingest_result res;
	struct cg_err err;
	Crossgate__AuditEvent *ev;
	uint64_t n = 0, events;

	world_pack(w, "k", "k.csv", k_csv, "k.batch", &ks);
	CHECK_EQ_INT(ks.packed, 3);

	events = audit_size(w->au);
	CHECK_EQ_INT(world_ingest(w, NULL, "k.batch", &res, &err), 0);
	CHECK_EQ_INT(res.duplicate, 0);
	CHECK_EQ_INT(res.records, ks.packed);
	CHECK_STR(res.partner, "k");
	CHECK(memcmp(res.batch_id, ks.batch_id, 16) == 0);
	CHECK(memcmp(res.digest, ks.digest, 32) == 0);
	CHECK_EQ_INT(world_records(w), 3);
	CHECK_EQ_INT(world_batches(w), 1);
	CHECK_EQ_INT(store_count_records(w->st, "k", &n, &err), 0);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(audit_size(w->au), events + 1);
	ev = world_last_event(w);
	CHECK_STR(ev->action, "ingest");
	CHECK_STR(ev->outcome, "ok");
	CHECK_STR(ev->partner_id, "k");
	CHECK_EQ_INT(world_event_count(ev, "records"), 3);
	/* u4 never consented to match: packed without a state file, it is a withdrawal that erases nothing. */
	CHECK_EQ_INT(res.withdrawn, 1);
	CHECK_EQ_INT(world_event_count(ev, "withdrawn"), 1);
	CHECK_EQ_INT(world_event_count(ev, "erased"), 0);
	CHECK(ev->batch_digest.len == 32 && memcmp(ev->batch_digest.data, ks.digest, 32) == 0);
	CHECK(ev->batch_id.len == 16 && memcmp(ev->batch_id.data, ks.batch_id, 16) == 0);
	crossgate__audit_event__free_unpacked(ev, NULL);

	/* The same file again: a harmless duplicate, logged, nothing else changes. */
	events = audit_size(w->au);
	CHECK_EQ_INT(world_ingest(w, NULL, "k.batch", &res, &err), 0);
	CHECK_EQ_INT(res.duplicate, 1);
	CHECK_EQ_INT(res.records, 3);     /* what the first ingest stored: u4's withdrawal is not a record */
	CHECK_EQ_INT(world_records(w), 3);
	CHECK_EQ_INT(world_batches(w), 1);
	CHECK_EQ_INT(audit_size(w->au), events + 1);
	ev = world_last_event(w);
	CHECK_STR(ev->action, "ingest");
	CHECK_STR(ev->outcome, "duplicate");
	crossgate__audit_event__free_unpacked(ev, NULL);

	/* From an open stream (how the server ingests its memory spool): a duplicate too. */
	{
		struct ingest_keys keys = { w->gwenc, w->storage, 0 };
		char path[WORLD_PATH_MAX];
		FILE *f;

		world_path(w, "k.batch", path);
		CHECK((f = fopen(path, "rb")) != NULL);
		if (f != NULL) {
			CHECK_EQ_INT(ingest_batch_stream(w->st, w->au, w->pol, &keys, f, "a stream", &res, &err), 0);
			CHECK_EQ_INT(res.duplicate, 1);
			CHECK_EQ_INT(res.records, 3);
		}
		/* a stream that is not a batch: rejected under the name it was given */
		CHECK((f = fmemopen((void *)"not a batch at all", 18, "rb")) != NULL);
		if (f != NULL) {
			CHECK(ingest_batch_stream(w->st, w->au, w->pol, &keys, f, "a stream", &res, &err) != 0);
			CHECK_CONTAINS(err.msg, "a stream");
		}
	}

	/* g's batch lands beside k's. */
	world_pack(w, "g", "g.csv", g_csv, "g.batch", &gs);
	CHECK_EQ_INT(world_ingest(w, NULL, "g.batch", &res, &err), 0);
	CHECK_STR(res.partner, "g");
	CHECK_EQ_INT(res.records, gs.packed);
	CHECK_EQ_INT(store_count_records(w->st, "g", &n, &err), 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(store_count_records(w->st, "k", &n, &err), 0);
	CHECK_EQ_INT(n, 3);

	/* An empty batch is a batch. */
	world_pack(w, "k", "empty.csv", WORLD_K_HEADER, "empty.batch", &es);
	CHECK_EQ_INT(world_ingest(w, NULL, "empty.batch", &res, &err), 0);
	CHECK_EQ_INT(res.records, 0);
	CHECK_EQ_INT(world_batches(w), 3);
	CHECK_EQ_INT(world_records(w), 5);
}

static int
has_bytes(const unsigned char *p, size_t n, const char *needle)
{
	size_t m = strlen(needle), i;

	for (i = 0; i + m <= n; i++)
		if (memcmp(p + i, needle, m) == 0)
			return 1;
	return 0;
}

/* What is stored is the partner's ciphertext and a batch key only the storage key opens. */
static void
test_at_rest(struct world *w)
{
	struct store_ref *refs = NULL;
	struct store_sealed s;
	struct keyfile_key *other = world_key(KEYFILE_STORAGE);
	struct cg_err err;
	struct token t[2];
	unsigned char key[32], ad[SEAL_AD_MAX], pt[1024], tk[TOKEN_LEN];
	size_t n = 0, nt = 0, ad_len, i;
	Crossgate__RecordPayload *pl = NULL;

	CHECK_EQ_INT(store_refs_load(w->st, "k", &refs, &n, &err), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 0) {
		keyfile_free(other);
		free(refs);
		return;
	}
	/* Every stored record has match consent; u4 (analytics only) never arrived. */
	for (i = 0; i < n; i++)
		CHECK(refs[i].consent_bits & BIT_MATCH);
	if (token_compute(tctx, TOKEN_KIND_EMAIL, "four@example.com", 16, tk) != 0)
		world_die("token_compute", NULL);
	for (i = 0; i < n; i++)
		CHECK(!refs[i].has_email || memcmp(refs[i].email, tk, TOKEN_LEN) != 0);

	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(store_sealed_get(w->st, refs[0].id, &s, &err), 0);
	CHECK_EQ_INT(s.wrapped_len, INGEST_WRAPPED_KEY_LEN);
	CHECK_STR(s.partner, "k");
	CHECK_EQ_INT(ingest_unwrap_batch_key(other, s.batch_id, s.wrapped_key, s.wrapped_len, key, &err),
	    CG_ERR_CRYPTO);
	CHECK_CONTAINS(err.msg, "does not open with this storage key");
	CHECK_EQ_INT(ingest_unwrap_batch_key(w->storage, s.batch_id, s.wrapped_key, s.wrapped_len - 1, key, &err),
	    CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "stored batch key of 47 bytes");
	CHECK_EQ_INT(ingest_unwrap_batch_key(w->storage, s.batch_id, s.wrapped_key, s.wrapped_len, key, &err), 0);
	if (refs[0].has_email) {
		t[nt].kind = TOKEN_KIND_EMAIL;
		memcpy(t[nt++].value, refs[0].email, TOKEN_LEN);
	}
	if (refs[0].has_phone) {
		t[nt].kind = TOKEN_KIND_PHONE;
		memcpy(t[nt++].value, refs[0].phone, TOKEN_LEN);
	}
	CHECK(s.payload_len >= SEAL_TAG_LEN && s.payload_len - SEAL_TAG_LEN <= sizeof(pt));
	CHECK_EQ_INT(seal_ad_build(ad, &ad_len, s.batch_id, s.partner, s.idx, refs[0].consent_bits,
	    refs[0].consent_at, t, nt), 0);
	CHECK_EQ_INT(seal_open_record(key, s.idx, ad, ad_len, s.payload, s.payload_len, pt, &err), 0);
	pl = crossgate__record_payload__unpack(NULL, s.payload_len - SEAL_TAG_LEN, pt);
	CHECK(pl != NULL && pl->n_fields == 4);
	crossgate__record_payload__free_unpacked(pl, NULL);
	/* The stored bytes are ciphertext: no category name in the clear. */
	CHECK(!has_bytes(s.payload, s.payload_len, "programming"));
	CHECK(!has_bytes(s.payload, s.payload_len, "finance"));
	sodium_memzero(key, sizeof(key));
	free(s.payload);
	free(refs);
	keyfile_free(other);

	/* Wrapping round trip, bound to the batch id. */
	{
		unsigned char bk[32], id1[16], id2[16], wr[INGEST_WRAPPED_KEY_LEN], back[32];
		randombytes_buf(bk, sizeof(bk));
		randombytes_buf(id1, sizeof(id1));
		memcpy(id2, id1, 16);
		id2[15] ^= 1;
		CHECK_EQ_INT(ingest_wrap_batch_key(w->storage, id1, bk, wr), 0);
		CHECK_EQ_INT(ingest_unwrap_batch_key(w->storage, id1, wr, sizeof(wr), back, &err), 0);
		CHECK(memcmp(back, bk, 32) == 0);
		CHECK_EQ_INT(ingest_unwrap_batch_key(w->storage, id2, wr, sizeof(wr), back, &err), CG_ERR_CRYPTO);
	}
}

static void
test_rejections(struct world *w)
{
	struct keyfile_key *mallory = world_key(KEYFILE_ED25519_SECRET), *mallory_pub = world_pub(mallory);
	struct keyfile_key *other_gw = world_key(KEYFILE_X25519_SECRET), *other_gw_pub = world_pub(other_gw);
	struct policy *mallory_pol, *commented_pol;
	struct pack_stats st;
	struct cg_err err;
	struct fake_opts fo;
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX], line[KEYFILE_LINE_MAX], want[256], got_hex[17],
	    want_hex[17];
	struct pack_opts o;

	/* Unknown partner. */
	memset(&fo, 0, sizeof(fo));
	fo.partner = "zz";
	fake_batch(w, "zz.batch", &fo);
	expect_reject(w, NULL, "zz.batch", CG_ERR_POLICY, "partner 'zz' is not in the policy",
	    "partner 'zz' is not in the policy");

	/* Wrong signer: packed under a policy that names mallory as k. */
	if (keyfile_public_line(mallory_pub, line, sizeof(line)) != 0)
		world_die("keyfile_public_line", NULL);
	mallory_pol = world_policy(w, 2, line, NULL);
	o = world_pack_opts(w, "k", csv, "k.csv", batch, "mallory.batch");
	o.pol = mallory_pol;
	o.sign = mallory;
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	keyfile_id_hex(mallory->id, got_hex);
	keyfile_id_hex(w->ksign->id, want_hex);
	snprintf(want, sizeof(want), "signed with unknown key %s; the policy's key for partner 'k' is %s", got_hex,
	    want_hex);
	expect_reject(w, NULL, "mallory.batch", CG_ERR_CRYPTO, want, want);

	/* Wrong signer: claims k's key id, signed by mallory. */
	memset(&fo, 0, sizeof(fo));
	fo.sign = mallory;
	fo.signer_id = w->ksign->id;
	fake_batch(w, "forged.batch", &fo);
	expect_reject(w, NULL, "forged.batch", CG_ERR_CRYPTO, "signature does not verify with the partner's key",
	    "signature does not verify");

	/* Sealed to another gateway. */
	o = world_pack_opts(w, "k", csv, "k.csv", batch, "othergw.batch");
	o.gateway = other_gw_pub;
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	keyfile_id_hex(other_gw->id, got_hex);
	keyfile_id_hex(w->gwenc->id, want_hex);
	snprintf(want, sizeof(want), "sealed to gateway key %s, but this gateway's key is %s", got_hex, want_hex);
	expect_reject(w, NULL, "othergw.batch", CG_ERR_CRYPTO, want, want);

	/* Names this gateway's key id, but the batch key is sealed to another key. */
	memset(&fo, 0, sizeof(fo));
	fo.gateway_pub = other_gw->pub;
	fake_batch(w, "misseal.batch", &fo);
	expect_reject(w, NULL, "misseal.batch", CG_ERR_CRYPTO, "wrapped batch key does not open",
	    "wrapped batch key does not open");

	/* Packed under a policy one comment line longer: another hash. */
	commented_pol = world_policy(w, 2, NULL, "# one more line\n");
	CHECK(memcmp(commented_pol->hash, w->pol->hash, 32) != 0);
	o = world_pack_opts(w, "k", csv, "k.csv", batch, "oldpolicy.batch");
	o.pol = commented_pol;
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	expect_reject(w, NULL, "oldpolicy.batch", CG_ERR_POLICY, "packed under a different policy",
	    "packed under a different policy");
	/* ...and the other way round: the gateway runs the newer policy. */
	expect_reject(w, commented_pol, "k.batch", CG_ERR_POLICY, "packed under a different policy",
	    "packed under a different policy");

	/* Damaged files: a flipped bit, a cut-off end, no file, not a batch. */
	world_pack(w, "k", "fresh.csv", k_csv, "fresh.batch", &st);
	copy_file(w, "fresh.batch", "flipped.batch", 0, 200);
	expect_reject(w, NULL, "flipped.batch", CG_ERR_CRYPTO, "content does not match its signed digest",
	    "content does not match its signed digest");
	copy_file(w, "fresh.batch", "cut.batch", 20, -1);
	expect_reject(w, NULL, "cut.batch", CG_ERR_INCOMPLETE, "cut short", "cut short");
	world_write(w, "junk.batch", "this is not a batch file at all\n");
	/* Text read as a frame length is far too long for a header. */
	expect_reject(w, NULL, "junk.batch", CG_ERR_LIMIT, "offset 0: frame of", "offset 0: frame of");
	world_write(w, "zero.batch", "");
	expect_reject(w, NULL, "zero.batch", CG_ERR_FORMAT, "empty file", "empty file");
	expect_reject(w, NULL, "missing.batch", CG_ERR_IO, "cannot open batch", "cannot open batch: ");
	/* The undamaged original still goes in. */
	{
		struct ingest_result res;
		CHECK_EQ_INT(world_ingest(w, NULL, "fresh.batch", &res, &err), 0);
		CHECK_EQ_INT(res.records, st.packed);
	}

	policy_free(mallory_pol);
	policy_free(commented_pol);
	keyfile_free(mallory);
	keyfile_free(mallory_pub);
	keyfile_free(other_gw);
	keyfile_free(other_gw_pub);
}

/* Validly signed batches with one bad record: rejected whole, the message names record 1. */
static void
test_malicious(struct world *w)
{
	static const struct {
		enum fake_bad bad;
		int code;
		const char *msg;
	} cases[] = {
		{ FAKE_NO_MATCH, CG_ERR_POLICY, "record 1: no 'match' consent" },
		{ FAKE_UNKNOWN_FIELD, CG_ERR_POLICY, "record 1: field 'shoe_size' is not a shareable column" },
		{ FAKE_LOCAL_ID_FIELD, CG_ERR_POLICY, "record 1: field 'user_id' is not a shareable column" },
		{ FAKE_RANGE, CG_ERR_POLICY, "record 1: field 'course_spend_cents' is out of the policy's range" },
		{ FAKE_CATEGORY, CG_ERR_POLICY, "record 1: field 'top_course_category' is not one of the category's" },
		{ FAKE_MISSING, CG_ERR_POLICY, "record 1: required field 'top_course_category' is missing" },
		{ FAKE_TYPE, CG_ERR_FORMAT, "record 1: field 'age' must be an integer" },
		{ FAKE_AD, CG_ERR_CRYPTO, "record 1: sealed record 1 does not verify" },
		{ FAKE_PURPOSE_BIT, CG_ERR_POLICY, "record 1: consent names a purpose the policy does not have" },
		{ FAKE_DUP_FIELD, CG_ERR_FORMAT, "record 1: field 'course_spend_cents' appears twice" },
		{ FAKE_KIND, CG_ERR_FORMAT, "batch kind 7 is not supported" },
		{ FAKE_W_PURPOSE, CG_ERR_POLICY, "record 1: withdraws a purpose the policy does not have" },
		{ FAKE_W_LEAF, CG_ERR_FORMAT, "record 1: receipt leaf of 5 bytes" },
		{ FAKE_W_AD, CG_ERR_CRYPTO, "record 1: sealed record 1 does not verify" },
		{ FAKE_W_NARROW_MATCH, CG_ERR_POLICY, "record 1: a narrowing must withdraw purposes the user no longer has" },
		{ FAKE_W_ERASE_QUIET, CG_ERR_POLICY, "record 1: erases the user but does not say 'match' is withdrawn" },
	};
	struct fake_opts fo;
	struct ingest_result res;
	struct cg_err err;
	char name[64];
	size_t i;
	int exists;

	/* The builder itself makes acceptable batches. */
	memset(&fo, 0, sizeof(fo));
	fake_batch(w, "fake-ok.batch", &fo);
	CHECK_EQ_INT(world_ingest(w, NULL, "fake-ok.batch", &res, &err), 0);
	CHECK_EQ_INT(res.records, 3);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Crossgate__AuditEvent *ev;
		unsigned char id[16];

		memset(&fo, 0, sizeof(fo));
		fo.bad = cases[i].bad;
		snprintf(name, sizeof(name), "fake%zu.batch", i);
		fake_batch(w, name, &fo);
		expect_reject(w, NULL, name, cases[i].code, cases[i].msg, cases[i].msg);
		/* Values never reach the message or the log. */
		ev = world_last_event(w);
		CHECK(strstr(ev->reason, "u-secret") == NULL && strstr(ev->reason, "chess") == NULL &&
		    strstr(ev->reason, "-5") == NULL);
		CHECK_EQ_INT(ev->batch_id.len, 16);
		memcpy(id, ev->batch_id.data, ev->batch_id.len == 16 ? 16 : 0);
		crossgate__audit_event__free_unpacked(ev, NULL);
		/* Record 0 was fine, but nothing of the batch is stored, not even its row. */
		exists = -1;
		CHECK_EQ_INT(store_batch_exists(w->st, id, 16, &exists, &err), 0);
		CHECK_EQ_INT(exists, 0);
	}
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	struct audit_report rep;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	world_open_store(&w);
	if (token_ctx_new(w.match->key, w.match->key_len, &tctx, &err) != 0)
		world_die("token_ctx_new", &err);
	test_good_and_duplicate(&w);
	test_at_rest(&w);
	test_rejections(&w);
	test_malicious(&w);
	/* Every acceptance, duplicate and rejection is in a log that still verifies. */
	CHECK_EQ_INT(audit_verify(w.st, w.gwsignpub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, audit_size(w.au));
	token_ctx_free(tctx);
	world_free(&w);
	CGT_DONE();
}
