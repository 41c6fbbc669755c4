/*
 * test_join_truth.c - the join against the truth, through the real pipeline:
 * synth writes a messy corpus in which some people give another person's
 * phone (synth_opts.phone_share_frac), the agents pack it, the gateway
 * ingests it, and every pair the join makes is traced back to the people
 * behind its two records (each person's own email is their identity).
 *
 *  - no false pair: a shared phone never pairs two different people;
 *  - no true pair lost to a merge: a person's pair is missing only where the
 *    gateway cannot tell (their only common identifier is a phone that
 *    another candidate carries too), and each such loss is accounted for;
 *  - with the policy's phone_matching: never, no false pair at all: the
 *    email pairs are the default rule's, its phone pairs are given up;
 *  - the read path: join_run_open (records opened on the workers during the
 *    scan) gives the same pairs, opens every record, and join_each hands the
 *    same pairs and payloads, in the same order, as over join_run's join.
 *
 * CG_JOIN_TRUTH_USERS=50000 runs the same measurement at the size of the
 * README's figure (the default is small, for `make unit`).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "base/csvfile.h"
#include "base/normalize.h"
#include "crypto/token.h"
#include "gateway/join.h"
#include "synth/synth.h"

/* One user key at one partner (a row's email, or the phone of a row without one) and whose it is. */
struct key {
	unsigned char tok[TOKEN_LEN];
	char person[SYNTH_EMAIL_MAX];
	uint8_t side, kind;
	uint8_t twin;                        /* two people give this key at this partner */
};

struct keys {
	struct key *k;
	size_t n, cap;
};

static int
key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;

	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return memcmp(x->tok, y->tok, TOKEN_LEN);
}

/* The policy of the demo data (policy/example.yaml) with the world's signing keys. */
static struct policy *
demo_policy(const struct world *w)
{
	FILE *f = fopen("policy/example.yaml", "rb");
	char *text = NULL, *out = NULL, *p, *q;
	const char *lines[2] = { w->kline, w->gline };
	size_t len = 0, olen = 0;
	struct policy *pol = NULL;
	struct cg_err err;
	int i;

	if (f == NULL)
		world_die("policy/example.yaml", NULL);
	text = malloc(1 << 16);
	out = malloc((1 << 16) + 2 * KEYFILE_LINE_MAX);
	if (text == NULL || out == NULL || (len = fread(text, 1, (1 << 16) - 1, f)) == 0)
		world_die("policy/example.yaml: read", NULL);
	fclose(f);
	text[len] = '\0';
	/* Each signing_key: "..." in turn gets k's, then g's key line. */
	for (p = text, i = 0; i < 2; i++) {
		q = strstr(p, "signing_key: \"");
		if (q == NULL)
			world_die("policy/example.yaml: no signing_key", NULL);
		q += strlen("signing_key: \"");
		memcpy(out + olen, p, (size_t)(q - p));
		olen += (size_t)(q - p);
		olen += (size_t)sprintf(out + olen, "%s", lines[i]);
		p = strchr(q, '"');
	}
	olen += (size_t)sprintf(out + olen, "%s", p);
	if (policy_parse("example.yaml", out, olen, &pol, NULL, &err) != 0)
		world_die("policy_parse", &err);
	free(text);
	free(out);
	return pol;
}

/* Every key of one file, with the person behind it (from synth's canonical identifiers of the user id). */
static void
keys_read(const char *path, int side, const struct synth_opts *so, const struct policy *pol,
    const struct token_ctx *tc, struct keys *ks)
{
	struct csvfile *r = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	char norm[NORMALIZE_EMAIL_MAX + NORMALIZE_PHONE_MAX + 2], phone[SYNTH_PHONE_MAX];
	int rc, first = 1;

	if (csvfile_open(path, &r, &err) != 0)
		world_die("csvfile_open", &err);
	while ((rc = csvfile_next(r, &row, &err)) != 0) {
		struct key *k;
		int email;

		if (rc < 0 || first || row->nfields < 3) {
			first = 0;
			continue;                    /* the header, and rows the agent rejects too */
		}
		email = row->lens[1] > 0;
		if (email ? normalize_email(row->fields[1], row->lens[1], &pol->email, norm, sizeof(norm), &err) != 0
			  : row->lens[2] == 0 || normalize_phone(row->fields[2], row->lens[2], pol->default_country, norm,
			    sizeof(norm), &err) != 0)
			continue;
		if (ks->n == ks->cap) {
			ks->cap = ks->cap ? 2 * ks->cap : 4096;
			if ((ks->k = realloc(ks->k, ks->cap * sizeof(*ks->k))) == NULL)
				world_die("out of memory", NULL);
		}
		k = &ks->k[ks->n];
		memset(k, 0, sizeof(*k));
		k->side = (uint8_t)side;
		k->kind = email ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
		if (token_compute(tc, k->kind, norm, strlen(norm), k->tok) != 0 ||
		    synth_canonical_ids(so, row->fields[0], k->person, sizeof(k->person), phone, sizeof(phone), &err) != 0)
			world_die("token or canonical id", &err);
		ks->n++;
	}
	csvfile_free(r);
}

/* Sort the keys; a key two people give at one partner is a twin (one key, two people). */
static void
keys_index(struct keys *ks)
{
	size_t i, j, o = 0;

	qsort(ks->k, ks->n, sizeof(*ks->k), key_cmp);
	for (i = 0; i < ks->n; i = j) {
		ks->k[o] = ks->k[i];
		for (j = i + 1; j < ks->n && key_cmp(&ks->k[i], &ks->k[j]) == 0; j++)
			if (strcmp(ks->k[i].person, ks->k[j].person) != 0)
				ks->k[o].twin = 1;
		o++;
	}
	ks->n = o;
}

static const struct key *
keys_find(const struct keys *ks, int side, const struct store_ref *r)
{
	struct key probe;

	memset(&probe, 0, sizeof(probe));
	probe.side = (uint8_t)side;
	probe.kind = r->has_email ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
	memcpy(probe.tok, r->has_email ? r->email : r->phone, TOKEN_LEN);
	return bsearch(&probe, ks->k, ks->n, sizeof(*ks->k), key_cmp);
}

struct tally {
	uint64_t truth, pairs, right, wrong, twin;
	uint64_t right_phone;                /* right pairs made by a phone (one side without an email) */
	uint64_t wrong_alone;                /* false pairs with no second candidate from the two people */
	uint64_t lost_shared;                /* missing true pairs whose phone another person gives too */
	uint64_t lost_twin;                  /* missing because a partner has two people under one key */
	uint64_t lost_other;                 /* missing for no reason the data shows: a bug */
	uint64_t truth_seen;                 /* true pairs recounted from the stored records */
	uint64_t twin_keys;                  /* keys two people give at one partner: one of them is not stored */
};

/* A stored record's person, for the recount: (person, side, identifiers). */
struct pref {
	char person[SYNTH_EMAIL_MAX];
	unsigned char phone[TOKEN_LEN];
	uint8_t side, has_email, has_phone, twin, paired;
};

static int
pref_cmp(const void *a, const void *b)
{
	const struct pref *x = a, *y = b;
	int c = strcmp(x->person, y->person);

	return c != 0 ? c : (int)x->side - (int)y->side;
}

/* A phone and one person who gives it. */
struct carrier {
	unsigned char phone[TOKEN_LEN];
	char person[SYNTH_EMAIL_MAX];
};

static int
carrier_cmp(const void *a, const void *b)
{
	const struct carrier *x = a, *y = b;
	int c = memcmp(x->phone, y->phone, TOKEN_LEN);

	return c != 0 ? c : strcmp(x->person, y->person);
}

/* How many different people give this phone in the store. */
static size_t
carriers_of(const struct carrier *c, size_t n, const unsigned char *phone)
{
	size_t lo = 0, hi = n, k = 0, i;

	while (lo < hi) {                    /* first entry of the phone */
		size_t mid = (lo + hi) / 2;
		if (memcmp(c[mid].phone, phone, TOKEN_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < n && memcmp(c[i].phone, phone, TOKEN_LEN) == 0; i++)
		if (i == lo || strcmp(c[i].person, c[i - 1].person) != 0)
			k++;
	return k;
}

/*
 * Recount from the stored records: who is a true pair (a person with records
 * at both partners sharing an identifier kind), which of them the join
 * missed and why, and whether each false pair was avoidable.
 */
static void
classify(const struct join *j, const struct keys *ks, struct tally *t)
{
	struct pref *pr;
	struct carrier *cr;
	size_t n = j->nref[0] + j->nref[1], np = 0, nc = 0, i, k;
	int s;

	if ((pr = calloc(n + 1, sizeof(*pr))) == NULL || (cr = calloc(n + 1, sizeof(*cr))) == NULL)
		world_die("out of memory", NULL);
	for (s = 0; s < 2; s++) {
		for (i = 0; i < j->nref[s]; i++) {
			const struct store_ref *r = &j->refs[s][i];
			const struct key *kk = keys_find(ks, s, r);
			if (kk == NULL)
				continue;
			snprintf(pr[np].person, sizeof(pr[np].person), "%s", kk->person);
			pr[np].side = (uint8_t)s;
			pr[np].has_email = r->has_email;
			pr[np].has_phone = r->has_phone;
			pr[np].twin = kk->twin;
			memcpy(pr[np].phone, r->phone, TOKEN_LEN);
			/* right pairs, marked on the person's left record */
			if (s == 0 && j->pair[i] != JOIN_NONE) {
				const struct key *kb = keys_find(ks, 1, &j->refs[1][j->pair[i]]);
				pr[np].paired = kb != NULL && !kb->twin && !kk->twin && strcmp(kb->person, kk->person) == 0;
			}
			if (r->has_phone) {
				memcpy(cr[nc].phone, r->phone, TOKEN_LEN);
				snprintf(cr[nc].person, sizeof(cr[nc].person), "%s", kk->person);
				nc++;
			}
			np++;
		}
	}
	qsort(pr, np, sizeof(*pr), pref_cmp);
	for (i = 0; i < ks->n; i++)
		t->twin_keys += ks->k[i].twin;
	qsort(cr, nc, sizeof(*cr), carrier_cmp);
	for (i = 0; i + 1 < np; i++) {
		const struct pref *l = &pr[i], *r = &pr[i + 1];
		if (strcmp(l->person, r->person) != 0 || l->side != 0 || r->side != 1)
			continue;
		if (!((l->has_email && r->has_email) || (l->has_phone && r->has_phone)))
			continue;
		t->truth_seen++;
		if (l->paired)
			continue;
		if (l->twin || r->twin)
			t->lost_twin++;
		else if (!(l->has_email && r->has_email) && carriers_of(cr, nc, l->phone) > 1)
			t->lost_shared++;
		else
			t->lost_other++;
	}
	/*
	 * False pairs: could the join have known?  Only if one of the two people
	 * also has a record at the other partner with that same phone (a second
	 * candidate for it); otherwise the two records look exactly like one
	 * person's.
	 */
	for (i = 0; i < j->nref[0]; i++) {
		const struct store_ref *rl = &j->refs[0][i], *rr;
		const struct key *a, *b;
		struct pref probe, *other;
		int avoidable = 0;
		if (j->pair[i] == JOIN_NONE)
			continue;
		rr = &j->refs[1][j->pair[i]];
		a = keys_find(ks, 0, rl);
		b = keys_find(ks, 1, rr);
		if (a == NULL || b == NULL || a->twin || b->twin || strcmp(a->person, b->person) == 0)
			continue;
		for (k = 0; k < 2; k++) {
			memset(&probe, 0, sizeof(probe));
			snprintf(probe.person, sizeof(probe.person), "%s", k == 0 ? a->person : b->person);
			probe.side = (uint8_t)(k == 0 ? 1 : 0);
			other = bsearch(&probe, pr, np, sizeof(*pr), pref_cmp);
			if (other != NULL && other->has_phone && rl->has_phone &&
			    memcmp(other->phone, rl->phone, TOKEN_LEN) == 0)
				avoidable = 1;
		}
		t->wrong_alone += !avoidable;
	}
	free(pr);
	free(cr);
}

/* A digest of what join_each hands fn: the pairs' record ids and every field of both payloads, in order. */
static int
digest_pair(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2], struct cg_err *err)
{
	crypto_generichash_state *h = ctx;
	size_t s, i;

	(void)err;
	for (s = 0; s < 2; s++) {
		crypto_generichash_update(h, (const unsigned char *)&ref[s]->id, sizeof(ref[s]->id));
		for (i = 0; i < pl[s]->n_fields; i++) {
			const Crossgate__Field *f = pl[s]->fields[i];
			crypto_generichash_update(h, (const unsigned char *)f->name, strlen(f->name) + 1);
			if (f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE)
				crypto_generichash_update(h, (const unsigned char *)&f->int_value, sizeof(f->int_value));
			else if (f->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE)
				crypto_generichash_update(h, (const unsigned char *)f->str_value, strlen(f->str_value) + 1);
		}
	}
	return 0;
}

static void
walk_digest(struct world *w, const struct policy *pol, const struct join *j, unsigned char out[32], uint64_t *nc)
{
	crypto_generichash_state h;
	struct cg_err err;

	crypto_generichash_init(&h, NULL, 0, 32);
	*nc = 0;
	CHECK_EQ_INT(join_each(w->st, w->storage, j, policy_purpose_bit(pol, "analytics"), JOIN_BOTH, digest_pair, &h,
	    nc, &err), 0);
	crypto_generichash_final(&h, out, 32);
}

static void
measure(uint64_t users, double share, uint64_t seed, int phone_never, struct tally *t)
{
	struct world w;
	struct synth_opts so;
	struct synth_truth truth;
	struct pack_stats ps;
	struct ingest_result res;
	struct policy *pol;
	struct token_ctx *tc = NULL;
	struct keys ks = { NULL, 0, 0 };
	struct join j;
	struct cg_err err;
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX];
	size_t i;
	int s;

	memset(t, 0, sizeof(*t));
	world_init(&w, 2);
	pol = demo_policy(&w);
	pol->phone_never = phone_never;
	synth_opts_default(&so);
	so.users = users;
	so.phone_share_frac = share;
	so.seed = seed;
	if (synth_write(w.dir, &so, &truth, &err) != 0)
		world_die("synth_write", &err);
	t->truth = truth.matched;
	world_open_store(&w);
	for (s = 0; s < 2; s++) {
		const char *name = s ? "g_viewers.csv" : "k_users.csv";
		struct pack_opts o = world_pack_opts(&w, s ? "g" : "k", csv, name, batch, s ? "g.batch" : "k.batch");
		o.pol = pol;
		if (pack_csv(&o, &ps, &err) != 0)
			world_die("pack_csv", &err);
		if (world_ingest(&w, pol, s ? "g.batch" : "k.batch", &res, &err) != 0)
			world_die("ingest", &err);
	}
	if (token_ctx_new(w.match->key, w.match->key_len, &tc, &err) != 0)
		world_die("token_ctx_new", &err);
	for (s = 0; s < 2; s++) {
		world_path(&w, s ? "g_viewers.csv" : "k_users.csv", csv);
		keys_read(csv, s, &so, pol, tc, &ks);
	}
	keys_index(&ks);
	CHECK_EQ_INT(join_run(w.st, pol, "k", "g", &j, &err), 0);
	for (i = 0; i < j.nref[0]; i++) {
		const struct key *a, *b;
		if (j.pair[i] == JOIN_NONE)
			continue;
		t->pairs++;
		a = keys_find(&ks, 0, &j.refs[0][i]);
		b = keys_find(&ks, 1, &j.refs[1][j.pair[i]]);
		if (a == NULL || b == NULL) {
			CHECK(!"a stored record whose key no row gives");
			continue;
		}
		if (a->twin || b->twin)
			t->twin++;
		else if (strcmp(a->person, b->person) == 0) {
			t->right++;
			t->right_phone += !(j.refs[0][i].has_email && j.refs[1][j.pair[i]].has_email);
		}
		else
			t->wrong++;
	}
	classify(&j, &ks, t);
	/*
	 * join_run_open (records opened while the scan reads, on the workers)
	 * makes the same pairs, opens every record, and join_each hands fn the
	 * same pairs and payloads in the same order as over join_run's join.
	 */
	{
		struct join jo;
		unsigned char d1[32], d2[32];
		uint64_t nc1, nc2;
		size_t nopen = 0, k2;

		CHECK_EQ_INT(join_run_open(w.st, pol, w.storage, "k", "g", &jo, &err), 0);
		CHECK_EQ_INT(jo.nref[0], j.nref[0]);
		CHECK_EQ_INT(jo.nref[1], j.nref[1]);
		CHECK(memcmp(jo.pair, j.pair, j.nref[0] * sizeof(*j.pair)) == 0);
		for (s = 0; s < 2; s++)
			for (k2 = 0; k2 < jo.nref[s]; k2++)
				nopen += jo.opened[s][k2];
		CHECK_EQ_INT(nopen, j.nref[0] + j.nref[1]);
		walk_digest(&w, pol, &j, d1, &nc1);
		walk_digest(&w, pol, &jo, d2, &nc2);
		CHECK(memcmp(d1, d2, 32) == 0);
		CHECK_EQ_INT(nc1, nc2);
		join_free(&jo);
	}
	join_free(&j);
	free(ks.k);
	token_ctx_free(tc);
	policy_free(pol);
	world_free(&w);
}

int
main(void)
{
	const char *env = getenv("CG_JOIN_TRUTH_USERS");
	uint64_t users = env != NULL ? strtoull(env, NULL, 10) : 4000;
	double share = getenv("CG_JOIN_TRUTH_SHARE") != NULL ? atof(getenv("CG_JOIN_TRUTH_SHARE")) : 0.05;
	struct tally t;
	int seed;

	if (sodium_init() < 0)
		return 1;
	/* Without shared phones the join is the truth, exactly. */
	measure(users, 0, 3, 0, &t);
	CHECK(t.truth > 0);
	CHECK_EQ_INT(t.pairs, t.truth);
	CHECK_EQ_INT(t.right, t.truth);
	for (seed = 1; seed <= 2; seed++) {
		/* By default 5% of people give another's phone: at 4,000 users, a few hundred collisions a run. */
		measure(users, share, (uint64_t)seed, 0, &t);
		printf("join vs truth (%llu users, seed %d, %.1f%% give another's phone): %llu true pairs; the join made "
		    "%llu: %llu right (%llu by a phone), %llu false (%llu of them two records that look like one person's), "
		    "%llu through a key two people share; %llu true pairs missing (%llu: a phone someone else gives "
		    "too, %llu: a key two people share, %llu: other; %llu people not stored: their key is another's)\n",
		    (unsigned long long)users, seed, 100 * share, (unsigned long long)t.truth, (unsigned long long)t.pairs,
		    (unsigned long long)t.right, (unsigned long long)t.right_phone, (unsigned long long)t.wrong,
		    (unsigned long long)t.wrong_alone,
		    (unsigned long long)t.twin, (unsigned long long)(t.truth - t.right), (unsigned long long)t.lost_shared,
		    (unsigned long long)t.lost_twin, (unsigned long long)t.lost_other,
		    (unsigned long long)(t.truth - t.truth_seen));
		/*
		 * The recount from the store finds synth's truth (the tracing is
		 * right), but for people whose key at a partner is another person's
		 * too (the agent keeps one user per key): at most one per such key.
		 */
		CHECK(t.truth_seen <= t.truth && t.truth - t.truth_seen <= t.twin_keys);
		/* No true pair lost but to a phone another person gives too, or to one key of two people. */
		CHECK_EQ_INT(t.lost_other, 0);
		/*
		 * No false pair a rule could avoid: in each, neither person has a
		 * second record with that phone at the other partner, so the two
		 * records look exactly like one person's (see README).
		 */
		CHECK_EQ_INT(t.wrong, t.wrong_alone);
		CHECK(t.right > t.truth * 9 / 10);
		/*
		 * phone_matching: never (policy.h): no false pair at all and no
		 * pair through a shared key; the email pairs are exactly the
		 * default rule's, and what is given up is its pairs by a phone.
		 */
		{
			struct tally tn;

			measure(users, share, (uint64_t)seed, 1, &tn);
			printf("  phone_matching never: %llu pairs, %llu right, %llu false, %llu through a shared key; "
			    "%llu true pairs by a phone alone not made\n", (unsigned long long)tn.pairs,
			    (unsigned long long)tn.right, (unsigned long long)tn.wrong, (unsigned long long)tn.twin,
			    (unsigned long long)t.right_phone);
			CHECK_EQ_INT(tn.wrong, 0);
			CHECK_EQ_INT(tn.twin, 0);
			CHECK_EQ_INT(tn.right_phone, 0);
			CHECK_EQ_INT(tn.right, t.right - t.right_phone);
			CHECK_EQ_INT(tn.pairs, tn.right);
		}
	}
	CGT_DONE();
}
