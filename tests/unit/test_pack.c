/* test_pack.c - the partner agent: CSV rows checked, merged, tokenized, sealed and signed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "agent/pack.h"
#include "agent/state.h"
#include "base/normalize.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "proto/batch.h"

/*
 * Seven bad rows, one of each kind, between good ones.  Users:
 *   A  lines 2, 4: one email in two spellings; line 4 is newer (match;marketing)
 *   T  lines 6, 8, 10: 6~8 by email, 8~10 by phone; line 10 is newest
 *   W  lines 12, 14: the newer row withdraws match -> dropped
 *   N  line 16: never consented to match -> dropped
 *   P  line 17: an email and a phone
 *   X  lines 18, 19: same consent_at, the later line wins
 */
static const char messy_csv[] =
    WORLD_K_HEADER
    "ka1,john@gmail.com,,25,CN-BJ,match;analytics,2024-01-01,100,programming\n"            /* 2 */
    "kb1,not-an-email,,30,CN-BJ,match,2024-01-01,100,finance\n"                            /* 3 bad email */
    "ka2,\"  Jo.Hn+x@GoogleMail.com \",,26,CN-SH,match;marketing,2024-03-01T10:00:00Z,200,finance\n"
    "kb2,,12ab34,30,CN-BJ,match,2024-01-01,100,finance\n"                                  /* 5 bad phone */
    "kt1,t1@example.com,,40,CN-JS,match;analytics,2024-01-01,300,language\n"               /* 6 */
    "kb3,b3@example.com,,200,CN-BJ,match,2024-01-01,100,finance\n"                         /* 7 bad age */
    "kt2,t1@example.com,139 0000 0001,41,CN-JS,match;analytics,2024-01-02,301,language\n"  /* 8 */
    "kb4,b4@example.com,,30,CN-BJ,match;spam,2024-01-01,100,finance\n"                     /* 9 bad purpose */
    "kt3,t3@example.com,+86 139-0000-0001,42,CN-JS,match;analytics,2024-01-03,302,language\n"
    "kb5,b5@example.com,,30,CN-BJ,match,2024-13-45,100,finance\n"                          /* 11 bad time */
    "kw1,w@example.com,,50,CN-BJ,match;analytics,2024-01-01,400,finance\n"                 /* 12 */
    "kb6,b6@example.com,,30,CN-BJ,match,2024-01-01,100\n"                                  /* 13 8 fields */
    "kw2,w@example.com,,50,CN-BJ,analytics,2024-02-01,401,finance\n"                       /* 14 */
    "kb7,,,30,CN-BJ,match,2024-01-01,100,finance\n"                                        /* 15 no id */
    "kn1,n@example.com,,60,CN-BJ,analytics,2024-01-01,500,finance\n"                       /* 16 */
    "kp1,p@example.com,13700000000,33,XX-YY,match;analytics;marketing,2024-01-01,600,programming\n"
    "kx1,x@example.com,,22,CN-BJ,match;analytics,2024-05-05,700,finance\n"                 /* 18 */
    "kx2,x@example.com,,22,CN-BJ,match,2024-05-05,701,finance\n";                          /* 19 */

#define BIT_MATCH 1u
#define BIT_ANALYTICS 2u
#define BIT_MARKETING 4u

/* What one record of a batch holds, opened with the gateway's key. */
struct opened {
	uint32_t consent_bits;
	int64_t consent_at;
	size_t ntokens;
	struct token tokens[2];
	int64_t age, spend;
	char region[32], category[32];
	size_t nfields;
	int unexpected_field;
	int withdrawal;                    /* a withdrawal record: withdrawn and leaf_len are set instead of fields */
	uint32_t withdrawn;
	size_t leaf_len;
};

static struct token_ctx *tctx;

static void
tok(uint32_t kind, const char *normalized, unsigned char out[TOKEN_LEN])
{
	if (token_compute(tctx, kind, normalized, strlen(normalized), out) != 0)
		world_die("token_compute", NULL);
}

/* Read, verify and open every record of a batch. Returns the record count, or -1. */
static int
read_batch(struct world *w, const char *path, const unsigned char *signer_pub, struct opened *out, size_t max,
    const unsigned char *want_batch_id, unsigned char digest[32])
{
	struct batch_reader *br = NULL;
	const Crossgate__BatchHeader *hdr;
	Crossgate__SealedRecord *rec;
	struct cg_err err;
	unsigned char key[SEAL_KEY_LEN], ad[SEAL_AD_MAX], pt[8192];
	uint64_t count;
	size_t n = 0, ad_len, i;
	int r;

	if (batch_reader_open(path, &br, &err) != 0) {
		fprintf(stderr, "read_batch: %s\n", err.msg);
		return -1;
	}
	hdr = batch_reader_header(br);
	if (want_batch_id != NULL) {
		CHECK_EQ_INT(hdr->version, BATCH_VERSION);
		CHECK_STR(hdr->partner_id, "k");
		CHECK(hdr->batch_id.len == 16 && memcmp(hdr->batch_id.data, want_batch_id, 16) == 0);
		CHECK_EQ_INT(hdr->signer_key_id.len, KEYFILE_ID_LEN);
		CHECK(hdr->signer_key_id.len == KEYFILE_ID_LEN &&
		    memcmp(hdr->signer_key_id.data, w->ksign->id, KEYFILE_ID_LEN) == 0);
		CHECK(hdr->gateway_key_id.len == KEYFILE_ID_LEN &&
		    memcmp(hdr->gateway_key_id.data, w->gwenc->id, KEYFILE_ID_LEN) == 0);
		CHECK(hdr->policy_hash.len == 32 && memcmp(hdr->policy_hash.data, w->pol->hash, 32) == 0);
		CHECK_EQ_INT(hdr->aead, CROSSGATE__AEAD__AEAD_CHACHA20POLY1305_IETF);
	}
	if ((r = batch_reader_verify(br, signer_pub, &count, digest, &err)) != 0) {
		batch_reader_free(br);
		return -1;
	}
	if (seal_unwrap_key(hdr->wrapped_key.data, hdr->wrapped_key.len, w->gwenc->pub, w->gwenc->key, key,
	    &err) != 0) {
		fprintf(stderr, "read_batch: %s\n", err.msg);
		batch_reader_free(br);
		return -1;
	}
	while ((r = batch_reader_next(br, &rec, &err)) == 1) {
		struct opened *o;
		Crossgate__RecordPayload *pl;

		if (n == max)
			break;
		o = &out[n];
		memset(o, 0, sizeof(*o));
		CHECK_EQ_INT(rec->index, n);
		o->consent_bits = rec->consent_bits;
		o->consent_at = rec->consent_at;
		o->ntokens = rec->n_tokens;
		for (i = 0; i < rec->n_tokens && i < 2; i++) {
			o->tokens[i].kind = (uint32_t)rec->tokens[i]->kind;
			CHECK_EQ_INT(rec->tokens[i]->value.len, TOKEN_LEN);
			memcpy(o->tokens[i].value, rec->tokens[i]->value.data, TOKEN_LEN);
		}
		CHECK(rec->ciphertext.len >= SEAL_TAG_LEN && rec->ciphertext.len - SEAL_TAG_LEN <= sizeof(pt));
		if (seal_ad_build(ad, &ad_len, hdr->batch_id.data, hdr->partner_id, rec->index, rec->consent_bits,
		    rec->consent_at, o->tokens, o->ntokens) != 0 ||
		    seal_open_record(key, rec->index, ad, ad_len, rec->ciphertext.data, rec->ciphertext.len, pt,
		    &err) != 0) {
			fprintf(stderr, "read_batch: record %zu does not open\n", n);
			CHECK(0);
			n++;
			continue;
		}
		if (rec->withdrawal) {
			Crossgate__Withdrawal *wd = crossgate__withdrawal__unpack(NULL, rec->ciphertext.len - SEAL_TAG_LEN,
			    pt);
			CHECK(wd != NULL);
			o->withdrawal = 1;
			if (wd != NULL) {
				o->withdrawn = wd->withdrawn;
				o->leaf_len = wd->receipt_leaf.len;
			}
			crossgate__withdrawal__free_unpacked(wd, NULL);
			n++;
			continue;
		}
		pl = crossgate__record_payload__unpack(NULL, rec->ciphertext.len - SEAL_TAG_LEN, pt);
		CHECK(pl != NULL);
		for (i = 0; pl != NULL && i < pl->n_fields; i++) {
			const Crossgate__Field *f = pl->fields[i];
			if (strcmp(f->name, "age") == 0 && f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE)
				o->age = f->int_value;
			else if (strcmp(f->name, "course_spend_cents") == 0 &&
			    f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE)
				o->spend = f->int_value;
			else if (strcmp(f->name, "region") == 0 && f->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE)
				snprintf(o->region, sizeof(o->region), "%s", f->str_value);
			else if (strcmp(f->name, "top_course_category") == 0 &&
			    f->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE)
				snprintf(o->category, sizeof(o->category), "%s", f->str_value);
			else
				o->unexpected_field = 1;   /* e.g. user_id, email, consent: must never be sent */
		}
		o->nfields = pl != NULL ? pl->n_fields : 0;
		crossgate__record_payload__free_unpacked(pl, NULL);
		n++;
	}
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(count, n);
	sodium_memzero(key, sizeof(key));
	batch_reader_free(br);
	return (int)n;
}

/* The record carrying this email token, or NULL. */
static const struct opened *
find_by_token(const struct opened *recs, int n, uint32_t kind, const unsigned char t[TOKEN_LEN])
{
	int i;
	size_t j;

	for (i = 0; i < n; i++)
		for (j = 0; j < recs[i].ntokens; j++)
			if (recs[i].tokens[j].kind == kind && memcmp(recs[i].tokens[j].value, t, TOKEN_LEN) == 0)
				return &recs[i];
	return NULL;
}

static int
line_count(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
test_messy_file(struct world *w)
{
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX], want[WORLD_PATH_MAX + 64], *report = NULL;
	size_t report_len = 0;
	struct pack_opts o = world_pack_opts(w, "k", csv, "k.csv", batch, "k.batch");
	struct pack_stats st;
	struct cg_err err;
	struct opened recs[16];
	unsigned char digest[32], t_john[TOKEN_LEN], t_t1[TOKEN_LEN], t_t3[TOKEN_LEN], t_tphone[TOKEN_LEN],
	    t_w[TOKEN_LEN], t_n[TOKEN_LEN], t_p[TOKEN_LEN], t_pphone[TOKEN_LEN], t_x[TOKEN_LEN];
	const struct opened *a, *t, *p, *x;
	FILE *rep;
	int n, i;
	static const struct { int line, col; const char *name; const char *reason; } bad[] = {
		{ 3, 2, "email", "email: missing '@'" },
		{ 5, 3, "phone", "phone: letters" },
		{ 7, 4, "age", "above max 120" },
		{ 9, 6, "consent", "unknown purpose" },
		{ 11, 7, "consent_at", "timestamp" },
	};

	world_write(w, "k.csv", messy_csv);
	CHECK((rep = open_memstream(&report, &report_len)) != NULL);
	o.report = rep;
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	fclose(rep);

	CHECK_EQ_INT(st.rows, 18);
	CHECK_EQ_INT(st.bad_rows, 7);
	CHECK_EQ_INT(st.duplicates, 4);    /* A 1, T1 1, W 1, X 1 */
	CHECK_EQ_INT(st.no_match, 2);      /* W (withdrawn), N (never) */
	/* Without a state file the agent cannot know who was sent before: both get a withdrawal. */
	CHECK_EQ_INT(st.withdrawn, 2);
	CHECK_EQ_INT(st.narrowed, 0);
	CHECK_EQ_INT(st.packed, 5);        /* A, T1, T3, P, X */

	/* One report line per bad row: "file:line:col (column): reason", never the value. */
	CHECK_EQ_INT(line_count(report), 7);
	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		snprintf(want, sizeof(want), "%s:%d:%d (%s): ", csv, bad[i].line, bad[i].col, bad[i].name);
		CHECK_CONTAINS(report, want);
		CHECK_CONTAINS(strstr(report, want), bad[i].reason);
	}
	snprintf(want, sizeof(want), "%s:13: row has 8 fields, the header has 9", csv);
	CHECK_CONTAINS(report, want);
	snprintf(want, sizeof(want), "%s:15: no identifier", csv);
	CHECK_CONTAINS(report, want);
	CHECK(strstr(report, "not-an-email") == NULL);
	CHECK(strstr(report, "12ab34") == NULL);
	CHECK(strstr(report, "spam") == NULL);
	CHECK(strstr(report, "2024-13-45") == NULL);
	CHECK(strstr(report, "@example.com") == NULL);
	CHECK(strstr(report, "kb1") == NULL && strstr(report, "kb7") == NULL);
	/* Good rows are not reported. */
	snprintf(want, sizeof(want), "%s:2:", csv);
	CHECK(strstr(report, want) == NULL);
	free(report);

	n = read_batch(w, batch, w->kpub->pub, recs, 16, st.batch_id, digest);
	CHECK_EQ_INT(n, 7);                /* the 5 records and the 2 withdrawals */
	CHECK(memcmp(digest, st.digest, 32) == 0);
	if (n < 0)
		return;

	/* Tokens are the PRF of the normalized identifiers; every spelling normalizes the same. */
	{
		char norm[NORMALIZE_EMAIL_MAX + 1];
		static const char messy[] = "  Jo.Hn+x@GoogleMail.com ";
		CHECK_EQ_INT(normalize_email(messy, strlen(messy), &w->pol->email, norm, sizeof(norm), &err), 0);
		CHECK_STR(norm, "john@gmail.com");
		CHECK_EQ_INT(normalize_phone("139 0000 0001", 13, w->pol->default_country, norm, sizeof(norm), &err), 0);
		CHECK_STR(norm, "+8613900000001");
	}
	tok(TOKEN_KIND_EMAIL, "john@gmail.com", t_john);
	tok(TOKEN_KIND_EMAIL, "t1@example.com", t_t1);
	tok(TOKEN_KIND_EMAIL, "t3@example.com", t_t3);
	tok(TOKEN_KIND_PHONE, "+8613900000001", t_tphone);
	tok(TOKEN_KIND_EMAIL, "w@example.com", t_w);
	tok(TOKEN_KIND_EMAIL, "n@example.com", t_n);
	tok(TOKEN_KIND_EMAIL, "p@example.com", t_p);
	tok(TOKEN_KIND_PHONE, "+8613700000000", t_pphone);
	tok(TOKEN_KIND_EMAIL, "x@example.com", t_x);

	/* A: both spellings are one user, the newer row (line 4) wins. */
	a = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_john);
	CHECK(a != NULL);
	if (a != NULL) {
		CHECK_EQ_INT(a->ntokens, 1);
		CHECK_EQ_INT(a->consent_bits, BIT_MATCH | BIT_MARKETING);
		CHECK_EQ_INT(a->consent_at, 1709287200);   /* 2024-03-01T10:00:00Z */
		CHECK_EQ_INT(a->spend, 200);
		CHECK_EQ_INT(a->age, 26);
		CHECK_STR(a->region, "CN-SH");
		CHECK_STR(a->category, "finance");
	}
	/* T: t1's two rows are one user (its newer row wins); t3 shares t1's phone and stays apart. */
	t = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_t1);
	CHECK(t != NULL);
	if (t != NULL) {
		CHECK_EQ_INT(t->ntokens, 2);
		CHECK(memcmp(t->tokens[1].value, t_tphone, TOKEN_LEN) == 0);
		CHECK_EQ_INT(t->spend, 301);
	}
	t = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_t3);
	CHECK(t != NULL);
	if (t != NULL) {
		CHECK_EQ_INT(t->ntokens, 2);
		CHECK_EQ_INT(t->tokens[0].kind, TOKEN_KIND_EMAIL);
		CHECK_EQ_INT(t->tokens[1].kind, TOKEN_KIND_PHONE);
		CHECK(memcmp(t->tokens[1].value, t_tphone, TOKEN_LEN) == 0);
		CHECK_EQ_INT(t->spend, 302);
		CHECK_EQ_INT(t->consent_bits, BIT_MATCH | BIT_ANALYTICS);
	}
	/*
	 * W withdrew match in its newer row, N never gave it: no data record,
	 * a withdrawal each, dated and consented as the newest row, sealed.
	 */
	a = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_w);
	CHECK(a != NULL && a->withdrawal && a->nfields == 0 && a->leaf_len == 0);
	if (a != NULL) {
		/* the gateway learns only that the user goes, not what the user still allows the partner */
		CHECK_EQ_INT(a->consent_bits, 0);
		CHECK_EQ_INT(a->withdrawn, BIT_MATCH | BIT_ANALYTICS | BIT_MARKETING);
		CHECK_EQ_INT(a->consent_at, 1706745600);   /* 2024-02-01 */
	}
	a = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_n);
	CHECK(a != NULL && a->withdrawal);
	/* P: an email and a phone give two different tokens. */
	p = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_p);
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_EQ_INT(p->ntokens, 2);
		CHECK(memcmp(p->tokens[1].value, t_pphone, TOKEN_LEN) == 0);
		CHECK(memcmp(p->tokens[0].value, p->tokens[1].value, TOKEN_LEN) != 0);
		CHECK_EQ_INT(p->consent_bits, BIT_MATCH | BIT_ANALYTICS | BIT_MARKETING);
		CHECK_STR(p->region, "XX-YY");     /* raw at the partner: the gateway generalizes */
	}
	/* X: a tie on consent_at goes to the later line. */
	x = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_x);
	CHECK(x != NULL);
	if (x != NULL) {
		CHECK_EQ_INT(x->consent_bits, BIT_MATCH);
		CHECK_EQ_INT(x->spend, 701);
	}
	/* Every record has match consent and carries only the four shareable columns. */
	for (i = 0; i < n; i++) {
		if (recs[i].withdrawal)
			continue;
		CHECK(recs[i].consent_bits & BIT_MATCH);
		CHECK_EQ_INT(recs[i].nfields, 4);
		CHECK(!recs[i].unexpected_field);
	}

	/* The batch is signed by k: another key does not verify it. */
	CHECK_EQ_INT(read_batch(w, batch, w->gpub->pub, recs, 16, NULL, digest), -1);

	/* report_max caps the printed lines, not the count. */
	report = NULL;
	CHECK((rep = open_memstream(&report, &report_len)) != NULL);
	o.report = rep;
	o.report_max = 2;
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	fclose(rep);
	CHECK_EQ_INT(st.bad_rows, 7);
	CHECK_EQ_INT(line_count(report), 2);
	free(report);

	/* A fresh batch id every time. */
	{
		struct pack_stats st2;
		o.report = NULL;
		CHECK_EQ_INT(pack_csv(&o, &st2, &err), 0);
		CHECK(memcmp(st.batch_id, st2.batch_id, 16) != 0);
		CHECK_EQ_INT(st2.packed, 5);
	}
}

/*
 * With a state file the agent knows what it sent: a user id sent with match
 * whose newer row lacks it gets a withdrawal carrying the remembered tokens
 * (even those of identifiers the new row no longer has); one that lost
 * another purpose gets its data record and a narrowing withdrawal; one
 * never sent is never tokenized.
 */
static void
test_withdraw_state(struct world *w)
{
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX], state[WORLD_PATH_MAX];
	struct pack_opts o = world_pack_opts(w, "k", csv, "s1.csv", batch, "s1.batch");
	struct pack_stats st;
	struct cg_err err;
	struct opened recs[16];
	unsigned char digest[32], t_1[TOKEN_LEN], t_1p[TOKEN_LEN], t_2[TOKEN_LEN], t_4[TOKEN_LEN];
	const struct opened *r;
	int n, i, withdrawals;

	world_path(w, "withdraw-state.db", state);
	o.state = state;
	world_write(w, "s1.csv", WORLD_K_HEADER
	    "u1,u1@example.com,13900000011,25,CN-BJ,match;analytics;marketing,2024-01-01,100,finance\n"
	    "u2,u2@example.com,,25,CN-BJ,match;analytics;marketing,2024-01-01,100,finance\n"
	    "u3,u3@example.com,,25,CN-BJ,match;analytics,2024-01-01,100,finance\n");
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	CHECK_EQ_INT(st.packed, 3);
	CHECK_EQ_INT(st.withdrawn + st.narrowed, 0);

	o = world_pack_opts(w, "k", csv, "s2.csv", batch, "s2.batch");
	o.state = state;
	world_write(w, "s2.csv", WORLD_K_HEADER
	    "u1,u1@example.com,,25,CN-BJ,,2024-06-01,100,finance\n"                   /* lost everything */
	    "u2,u2@example.com,,25,CN-BJ,match;marketing,2024-06-01,100,finance\n"    /* lost analytics */
	    "u3,u3@example.com,,25,CN-BJ,match;analytics,2024-06-01,100,finance\n"    /* unchanged */
	    "u4,u4@example.com,,25,CN-BJ,analytics,2024-06-01,100,finance\n");        /* never sent */
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	CHECK_EQ_INT(st.no_match, 2);
	CHECK_EQ_INT(st.withdrawn, 1);
	CHECK_EQ_INT(st.narrowed, 1);
	CHECK_EQ_INT(st.packed, 2);
	n = read_batch(w, batch, w->kpub->pub, recs, 16, st.batch_id, digest);
	CHECK_EQ_INT(n, 4);
	tok(TOKEN_KIND_EMAIL, "u1@example.com", t_1);
	tok(TOKEN_KIND_PHONE, "+8613900000011", t_1p);
	tok(TOKEN_KIND_EMAIL, "u2@example.com", t_2);
	tok(TOKEN_KIND_EMAIL, "u4@example.com", t_4);
	r = find_by_token(recs, n, TOKEN_KIND_PHONE, t_1p);
	CHECK(r != NULL && r->withdrawal && r->ntokens == 2);
	if (r != NULL) {
		CHECK(memcmp(r->tokens[0].value, t_1, TOKEN_LEN) == 0);
		CHECK_EQ_INT(r->consent_bits, 0);
		CHECK_EQ_INT(r->withdrawn, BIT_MATCH | BIT_ANALYTICS | BIT_MARKETING);
	}
	for (i = 0, withdrawals = 0; i < n; i++) {
		if (recs[i].ntokens == 1 && memcmp(recs[i].tokens[0].value, t_2, TOKEN_LEN) == 0) {
			CHECK_EQ_INT(recs[i].consent_bits, BIT_MATCH | BIT_MARKETING);
			if (recs[i].withdrawal) {
				CHECK_EQ_INT(recs[i].withdrawn, BIT_ANALYTICS);
				withdrawals++;
			} else {
				CHECK_EQ_INT(recs[i].nfields, 4);
			}
		}
	}
	CHECK_EQ_INT(withdrawals, 1);
	CHECK(find_by_token(recs, n, TOKEN_KIND_EMAIL, t_4) == NULL);

	/*
	 * The same file again: u1's withdrawal again (the earlier batch may
	 * never have been pushed), with every purpose the gateway may hold;
	 * u2's narrowing is remembered as done; u4 still never tokenized.
	 */
	o = world_pack_opts(w, "k", csv, "s2.csv", batch, "s2b.batch");
	o.state = state;
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	CHECK_EQ_INT(st.no_match, 2);
	CHECK_EQ_INT(st.withdrawn, 1);
	CHECK_EQ_INT(st.narrowed, 0);
	CHECK_EQ_INT(st.packed, 2);
	n = read_batch(w, batch, w->kpub->pub, recs, 16, st.batch_id, digest);
	CHECK_EQ_INT(n, 3);
	r = find_by_token(recs, n, TOKEN_KIND_PHONE, t_1p);
	CHECK(r != NULL && r->withdrawal && r->withdrawn == (BIT_MATCH | BIT_ANALYTICS | BIT_MARKETING));
	CHECK(find_by_token(recs, n, TOKEN_KIND_EMAIL, t_4) == NULL);

	/*
	 * A state file from before consents were remembered knows only tokens:
	 * then every purpose counts as sent, so a user id it knows gets a
	 * withdrawal or a narrowing, and one it does not know is never tokenized.
	 */
	{
		char old[WORLD_PATH_MAX];
		struct agent_state *as = NULL;
		struct token ot[1];

		world_path(w, "old-state.db", old);
		CHECK_EQ_INT(agent_state_open(old, &as, &err), 0);
		if (as != NULL) {
			ot[0].kind = TOKEN_KIND_EMAIL;
			tok(TOKEN_KIND_EMAIL, "u1@example.com", ot[0].value);
			CHECK_EQ_INT(agent_state_put(as, "k", "u1", 2, ot, 1, &err), 0);
			tok(TOKEN_KIND_EMAIL, "u2@example.com", ot[0].value);
			CHECK_EQ_INT(agent_state_put(as, "k", "u2", 2, ot, 1, &err), 0);
			agent_state_close(as);
		}
		o = world_pack_opts(w, "k", csv, "s2.csv", batch, "old.batch");
		o.state = old;
		CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
		CHECK_EQ_INT(st.withdrawn, 1);      /* u1 */
		CHECK_EQ_INT(st.narrowed, 1);       /* u2: every purpose counts as sent, analytics is gone */
		CHECK_EQ_INT(st.no_match, 2);       /* u1, and u4 never sent */
		n = read_batch(w, batch, w->kpub->pub, recs, 16, st.batch_id, digest);
		CHECK_EQ_INT(n, 4);                 /* u1's withdrawal, u2's record and narrowing, u3's record */
		CHECK(find_by_token(recs, n, TOKEN_KIND_EMAIL, t_4) == NULL);
		r = find_by_token(recs, n, TOKEN_KIND_EMAIL, t_1);
		CHECK(r != NULL && r->withdrawal && r->withdrawn == (BIT_MATCH | BIT_ANALYTICS | BIT_MARKETING));
	}

	/* u1 consents again: a data record, no withdrawal. */
	o = world_pack_opts(w, "k", csv, "s3.csv", batch, "s3.batch");
	o.state = state;
	world_write(w, "s3.csv", WORLD_K_HEADER "u1,u1@example.com,,25,CN-BJ,match,2024-09-01,100,finance\n");
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	CHECK_EQ_INT(st.packed, 1);
	CHECK_EQ_INT(st.withdrawn + st.narrowed, 0);
}

static void
test_strict(struct world *w)
{
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX], want[WORLD_PATH_MAX + 64];
	struct pack_opts o = world_pack_opts(w, "k", csv, "strict.csv", batch, "strict.batch");
	struct pack_stats st;
	struct cg_err err;

	world_write(w, "strict.csv", messy_csv);
	o.strict = 1;
	CHECK_EQ_INT(pack_csv(&o, &st, &err), CG_ERR_FORMAT);
	snprintf(want, sizeof(want), "%s:3:2 (email): ", csv);
	CHECK_CONTAINS(err.msg, want);
	CHECK_CONTAINS(err.msg, "--strict");
	CHECK(strstr(err.msg, "not-an-email") == NULL);
	CHECK_EQ_INT(st.rows, 2);
	CHECK_EQ_INT(st.bad_rows, 1);
	CHECK_EQ_INT(st.packed, 0);
	CHECK(!world_exists(w, "strict.batch"));
	CHECK(!world_exists(w, "strict.batch.tmp"));

	/* A clean file packs the same under --strict. */
	world_write(w, "strict.csv", WORLD_K_HEADER
	    "u1,a@example.com,,30,CN-BJ,match,2024-01-01,1,finance\n"
	    "u2,b@example.com,,30,CN-BJ,match,2024-01-01,2,finance\n");
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	CHECK_EQ_INT(st.packed, 2);
	CHECK(world_exists(w, "strict.batch"));
}

static void
test_header(struct world *w)
{
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX], want[WORLD_PATH_MAX + 128];
	struct pack_opts o = world_pack_opts(w, "k", csv, "hdr.csv", batch, "hdr.batch");
	struct pack_stats st;
	struct cg_err err;
	static const char row[] = "u1,a@example.com,,30,CN-BJ,match,2024-01-01,1,finance\n";
	char text[1024];

	/* Unknown column. */
	snprintf(text, sizeof(text), "%.*s,shoe_size\n%.*s,42\n", (int)strlen(WORLD_K_HEADER) - 1, WORLD_K_HEADER,
	    (int)strlen(row) - 1, row);
	world_write(w, "hdr.csv", text);
	CHECK_EQ_INT(pack_csv(&o, &st, &err), CG_ERR_FORMAT);
	snprintf(want, sizeof(want), "%s:1:10: column 'shoe_size' is not in partner 'k'", csv);
	CHECK_CONTAINS(err.msg, want);
	CHECK(!world_exists(w, "hdr.batch"));

	/* Missing column. */
	world_write(w, "hdr.csv", "user_id,email,phone,age,consent,consent_at,course_spend_cents,top_course_category\n"
	    "u1,a@example.com,,30,match,2024-01-01,1,finance\n");
	CHECK_EQ_INT(pack_csv(&o, &st, &err), CG_ERR_FORMAT);
	snprintf(want, sizeof(want), "%s:1: missing column 'region'", csv);
	CHECK_CONTAINS(err.msg, want);
	CHECK(!world_exists(w, "hdr.batch"));

	/* Duplicate column. */
	world_write(w, "hdr.csv", "user_id,email,email,phone,age,region,consent,consent_at,course_spend_cents,"
	    "top_course_category\n");
	CHECK_EQ_INT(pack_csv(&o, &st, &err), CG_ERR_FORMAT);
	snprintf(want, sizeof(want), "%s:1:3: column 'email' appears twice", csv);
	CHECK_CONTAINS(err.msg, want);
	CHECK(!world_exists(w, "hdr.batch"));

	/* Empty file: no header at all. */
	world_write(w, "hdr.csv", "");
	CHECK_EQ_INT(pack_csv(&o, &st, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "empty file");
	CHECK(!world_exists(w, "hdr.batch"));

	/* Columns in another order, with stray spaces around names, are fine. */
	world_write(w, "hdr.csv", "top_course_category, email ,phone,age,region,consent,consent_at,user_id,"
	    "course_spend_cents\nfinance,a@example.com,,30,CN-BJ,match,2024-01-01,u1,5\n");
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	CHECK_EQ_INT(st.rows, 1);
	CHECK_EQ_INT(st.packed, 1);

	/* A header alone is an empty batch. */
	world_write(w, "hdr.csv", WORLD_K_HEADER);
	CHECK_EQ_INT(pack_csv(&o, &st, &err), 0);
	CHECK_EQ_INT(st.rows, 0);
	CHECK_EQ_INT(st.packed, 0);
	CHECK(world_exists(w, "hdr.batch"));
}

static void
test_misuse(struct world *w)
{
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX];
	struct pack_opts o = world_pack_opts(w, "k", csv, "mis.csv", batch, "mis.batch");
	struct pack_opts bad;
	struct pack_stats st;
	struct cg_err err;

	world_write(w, "mis.csv", WORLD_K_HEADER "u1,a@example.com,,30,CN-BJ,match,2024-01-01,1,finance\n");

	bad = o;
	bad.partner_id = "zz";
	CHECK_EQ_INT(pack_csv(&bad, &st, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "partner 'zz' is not in the policy");

	bad = o;
	bad.sign = w->gsign;     /* g's key is not the one the policy names for k */
	CHECK_EQ_INT(pack_csv(&bad, &st, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "signing key is not the one the policy names for partner 'k'");

	bad = o;
	bad.gateway = w->gwenc;  /* the secret half, not the public key */
	CHECK_EQ_INT(pack_csv(&bad, &st, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "wrong key types");

	bad = o;
	bad.match = w->storage;
	CHECK_EQ_INT(pack_csv(&bad, &st, &err), CG_ERR_ARG);

	bad = o;
	bad.input = "/nonexistent/cgtest/none.csv";
	CHECK_EQ_INT(pack_csv(&bad, &st, &err), CG_ERR_IO);
	CHECK(!world_exists(w, "mis.batch"));

	/* g packs its own file with its own key and schema. */
	{
		char gcsv[WORLD_PATH_MAX], gbatch[WORLD_PATH_MAX];
		struct pack_opts go = world_pack_opts(w, "g", gcsv, "g.csv", gbatch, "g.batch");
		struct batch_reader *br = NULL;
		uint64_t count = 0;
		unsigned char digest[32];

		world_write(w, "g.csv", WORLD_G_HEADER "g1,a@example.com,,30,CN-BJ,match,2024-01-01,7,moba\n"
		    "g2,b@example.com,,30,CN-BJ,match,2024-01-01,7,chess\n");
		CHECK_EQ_INT(pack_csv(&go, &st, &err), 0);
		CHECK_EQ_INT(st.bad_rows, 1);   /* "chess" is not a category value */
		CHECK_EQ_INT(st.packed, 1);
		CHECK_EQ_INT(batch_reader_open(gbatch, &br, &err), 0);
		if (br != NULL) {
			CHECK_STR(batch_reader_header(br)->partner_id, "g");
			CHECK_EQ_INT(batch_reader_verify(br, w->gpub->pub, &count, digest, &err), 0);
			CHECK_EQ_INT(count, 1);
			CHECK(memcmp(digest, st.digest, 32) == 0);
		}
		batch_reader_free(br);
	}
}

/*
 * A file of many users in two passes with a state file, cut into tasks of
 * 7 rows (many task and window boundaries) on 4 threads, and packed on one
 * thread with the default tasks: the same stats, bad-row report, records
 * in the same order (tokens, consent, indexes, opened payloads) and the
 * same file size; only the batch key, id and signature differ.
 */
#define THREADS_USERS 1500

static char *
threads_csv(int pass)
{
	size_t cap = (size_t)THREADS_USERS * 2 * 160 + 256, len = 0;
	char *s = malloc(cap);
	int i;

	if (s == NULL)
		world_die("malloc", NULL);
	len += (size_t)snprintf(s + len, cap - len, "%s", WORLD_K_HEADER);
	for (i = 0; i < THREADS_USERS; i++) {
		/* pass 2: every 5th user withdraws match, every 7th narrows, every 11th has a newer duplicate */
		const char *consent = pass == 1 ? "match;analytics;marketing" :
		    i % 5 == 0 ? "analytics" : i % 7 == 0 ? "match;analytics" : "match;analytics;marketing";
		if (i % 97 == 3)
			len += (size_t)snprintf(s + len, cap - len, "u%d,u%d@example.com,,200,CN-BJ,match,2024-01-01,1,finance\n",
			    i, i);                               /* bad age */
		else if (i % 131 == 5)
			len += (size_t)snprintf(s + len, cap - len, "u%d,\"u%d@exa\"mple.com,,30,CN-BJ,match,2024-01-01,1,"
			    "finance\n", i, i);                  /* CSV syntax error */
		else
			len += (size_t)snprintf(s + len, cap - len, "u%d,U%d@Example.com,%s%d,%d,CN-BJ,%s,2024-0%d-01,%d,"
			    "finance\n", i, i, i % 3 == 0 ? "139" : "", 10000000 + i, 18 + i % 60, consent, pass * 3, i);
		if (i % 11 == 0)
			len += (size_t)snprintf(s + len, cap - len, "v%d,u%d@example.com,,40,CN-SH,%s,2024-0%d-02,%d,"
			    "language\n", i, i, consent, pass * 3, i + 1);
	}
	return s;
}

static char *
threads_report(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 20);

	if (f == NULL || buf == NULL)
		world_die(path, NULL);
	if (fread(buf, 1, (1 << 20) - 1, f) == 0)
		buf[0] = '\0';
	fclose(f);
	return buf;
}

static void
test_threads_same_output(struct world *w)
{
	char csv[WORLD_PATH_MAX], batch[2][WORLD_PATH_MAX], state[2][WORLD_PATH_MAX], rep[2][WORLD_PATH_MAX];
	char *text[2], *report[2];
	struct opened *recs[2];
	struct pack_stats st[2];
	struct pack_opts o;
	struct cg_err err;
	unsigned char digest[32];
	long size[2];
	int n[2], pass, k;

	text[0] = threads_csv(1);
	text[1] = threads_csv(2);
	recs[0] = calloc(THREADS_USERS * 3, sizeof(struct opened));
	recs[1] = calloc(THREADS_USERS * 3, sizeof(struct opened));
	if (recs[0] == NULL || recs[1] == NULL)
		world_die("calloc", NULL);
	world_path(w, "threads-state-1.db", state[0]);
	world_path(w, "threads-state-4.db", state[1]);
	for (pass = 0; pass < 2; pass++) {
		world_write(w, "threads.csv", text[pass]);
		for (k = 0; k < 2; k++) {
			FILE *f;
			o = world_pack_opts(w, "k", csv, "threads.csv", batch[k], k == 0 ? "threads-1.batch" : "threads-4.batch");
			world_path(w, k == 0 ? "threads-1.report" : "threads-4.report", rep[k]);
			if ((f = fopen(rep[k], "wb")) == NULL)
				world_die(rep[k], NULL);
			o.state = state[k];
			o.report = f;
			o.threads = k == 0 ? 1 : 4;
			o.task_rows = k == 0 ? 0 : 7;
			CHECK_EQ_INT(pack_csv(&o, &st[k], &err), 0);
			fclose(f);
			n[k] = read_batch(w, batch[k], w->kpub->pub, recs[k], THREADS_USERS * 3, st[k].batch_id, digest);
			report[k] = threads_report(rep[k]);
			f = fopen(batch[k], "rb");
			size[k] = -1;
			if (f != NULL && fseek(f, 0, SEEK_END) == 0)
				size[k] = ftell(f);
			if (f != NULL)
				fclose(f);
		}
		CHECK(n[0] > THREADS_USERS / 2);
		CHECK_EQ_INT(n[0], n[1]);
		CHECK(n[0] == n[1] && memcmp(recs[0], recs[1], (size_t)n[0] * sizeof(struct opened)) == 0);
		CHECK_EQ_INT(st[0].rows, st[1].rows);
		CHECK(st[0].bad_rows > 20);
		CHECK_EQ_INT(st[0].bad_rows, st[1].bad_rows);
		CHECK(st[0].duplicates > 100);
		CHECK_EQ_INT(st[0].duplicates, st[1].duplicates);
		CHECK_EQ_INT(st[0].no_match, st[1].no_match);
		CHECK_EQ_INT(st[0].withdrawn, st[1].withdrawn);
		CHECK_EQ_INT(st[0].narrowed, st[1].narrowed);
		CHECK_EQ_INT(st[0].packed, st[1].packed);
		CHECK(strlen(report[0]) > 1000);
		CHECK_STR(report[0], report[1]);
		CHECK(size[0] > 0);
		CHECK_EQ_INT(size[0], size[1]);
		if (pass == 1) {
			/* The second pass exercised the state's paths: withdrawals and narrowing. */
			CHECK(st[0].withdrawn > 100);
			CHECK(st[0].narrowed > 50);
		}
		free(report[0]);
		free(report[1]);
	}

	/* --strict stops at the same first bad row, with the same message and count. */
	world_write(w, "threads-strict.csv", messy_csv);
	o = world_pack_opts(w, "k", csv, "threads-strict.csv", batch[0], "threads-strict.batch");
	o.strict = 1;
	o.threads = 3;
	o.task_rows = 1;
	CHECK_EQ_INT(pack_csv(&o, &st[0], &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, ":3:2 (email): ");
	CHECK_EQ_INT(st[0].rows, 2);
	CHECK(!world_exists(w, "threads-strict.batch"));
	free(text[0]);
	free(text[1]);
	free(recs[0]);
	free(recs[1]);
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
	test_messy_file(&w);
	test_withdraw_state(&w);
	test_strict(&w);
	test_header(&w);
	test_misuse(&w);
	test_threads_same_output(&w);
	token_ctx_free(tctx);
	world_free(&w);
	CGT_DONE();
}
