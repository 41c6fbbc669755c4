/*
 * bench_audience.c - an audience over a store of N joined subjects (default
 * 1,000,000): `audience_create` (join, marketing consent on both sides, the
 * rule on both partners' opened records, the refusal test, the charge, the
 * noisy size, the members stored) and the receiving partners' fetches (each
 * delivery read and sealed) against a plain C pass on one thread over the
 * same stored data: one sequential read of both partners' records and their
 * sealed payloads, pair them by email token, then
 * by phone token, in hash tables (without the join's ambiguity rules: a
 * close baseline, not the same join), open both, check the consent bits and
 * the same predicate, count.
 *
 * usage: bench_audience DEMO_DIR   (keys and policy of a demo directory)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "bench/bench.h"
#include "gateway/audience.h"
#include "crypto/seal.h"
#include "gateway/join.h"

static const char *
field_str(const Crossgate__RecordPayload *p, const char *name)
{
	const Crossgate__Field *f = join_field(p, name);

	return f != NULL && f->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE ? f->str_value : "";
}

static int64_t
field_int(const Crossgate__RecordPayload *p, const char *name, int *has)
{
	const Crossgate__Field *f = join_field(p, name);

	*has = f != NULL && f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE;
	return *has ? f->int_value : 0;
}

/*
 * The baseline's open: the record's associated data from its tokens and
 * consent, libsodium's AEAD open with its batch's key (unwrapped once per
 * batch), protobuf-c's unpack.
 */
static Crossgate__RecordPayload *
base_open(const struct store_ref *ref, const struct store_payload *sp, const char *partner,
    const struct store_batch *b, size_t nb, unsigned char (*key)[32], unsigned char *pt)
{
	struct token toks[2];
	unsigned char ad[SEAL_AD_MAX];
	size_t ad_len, nt, lo = 0, hi = nb;
	struct cg_err e;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b[mid].id < sp->batch)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == nb || b[lo].id != sp->batch || sp->len < SEAL_TAG_LEN)
		bench_die("baseline: a record without its batch", NULL);
	nt = store_ref_tokens(ref, toks);
	if (seal_ad_build(ad, &ad_len, b[lo].batch_id, partner, sp->idx, ref->consent_bits, ref->consent_at, toks,
	    nt) != 0 || seal_open_record(key[lo], sp->idx, ad, ad_len, sp->ct, sp->len, pt, &e) != 0)
		bench_die("baseline open", NULL);
	return crossgate__record_payload__unpack(NULL, sp->len - SEAL_TAG_LEN, pt);
}

static uint64_t
tok_hash(const unsigned char *t)
{
	uint64_t h;

	memcpy(&h, t, sizeof(h));
	return h;
}

int
main(int argc, char **argv)
{
	const char *dir, *env = getenv("BENCH_AUDIENCE_SUBJECTS");
	char path[4400], data[4200], db[4200], *text = NULL, *full = NULL;
	struct policy *pol = NULL;
	struct keyfile_key *storage;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err e;
	struct audience_spec sp;
	struct audience_stats as;
	uint64_t subjects = env ? strtoull(env, NULL, 10) : 1000000, matched = 0, count = 0;
	double t_aud, t_base;
	FILE *f;
	long n;
	int mbit;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_audience DEMO_DIR\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	dir = argv[1];
	/* the demo's policy with a marketing section */
	snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (text = malloc((size_t)n + 1)) == NULL ||
	    fread(text, 1, (size_t)n, f) != (size_t)n)
		bench_die(path, NULL);
	fclose(f);
	text[n] = '\0';
	if ((full = malloc((size_t)n + 200)) == NULL)
		bench_die("policy", NULL);
	snprintf(full, (size_t)n + 200, "%s\nmarketing: {min_audience: 1000, receivers: [k, g], sources: [k, g]}\n", text);
	if (policy_parse(path, full, strlen(full), &pol, NULL, &e) != 0)
		bench_die("policy", &e);
	storage = bench_key(dir, "gateway/storage.key", KEYFILE_STORAGE);
	snprintf(data, sizeof(data), "%s/audience-data", dir);
	snprintf(db, sizeof(db), "%s/audience.db", dir);
	bench_joined_store(dir, data, db, pol, subjects, &st, &a, &matched);
	if (audit_policy_seen(a, pol->hash, &e) != 0)
		bench_die("policy", &e);

	memset(&sp, 0, sizeof(sp));
	sp.pol = pol;
	sp.analyst = policy_principal_by_name(pol, "analyst");
	sp.name = "bench";
	sp.rule = "k_top_course_category = programming and g_watch_minutes >= 600";
	sp.storage = storage;
	t_aud = bench_now();
	if (audience_create(st, a, &sp, &as, &e) != 0)
		bench_die("audience", &e);
	{
		const char *who[2] = { "k", "g" };
		struct audience_delivery *d = NULL;
		size_t nd = 0;
		int i;

		for (i = 0; i < 2; i++) {
			if (audience_fetch(st, a, pol, who[i], 0, &d, &nd, &e) != 0 || nd != 1)
				bench_die("fetch", &e);
			audience_deliveries_free(d, nd);
		}
	}
	t_aud = bench_now() - t_aud;

	/* The baseline: the same members by plain C over the same store. */
	mbit = policy_purpose_bit(pol, "marketing");
	{
		static const char *const partners[2] = { "k", "g" };
		struct store_ref *refs[2] = { NULL, NULL };
		struct store_payloads pay;
		struct store_batch *b = NULL;
		unsigned char (*key)[32], pt[1 << 16];
		size_t nr[2] = { 0, 0 }, nb = 0, i, mask, s, *kg;
		int64_t *slot[2];
		unsigned char *used;
		int stage;

		t_base = bench_now();
		/* one sequential scan of the records (with their sealed payloads), as the gateway reads them */
		memset(&pay, 0, sizeof(pay));
		if (store_refs_load_pair(st, partners, refs, nr, &pay, NULL, NULL, &e) != 0 ||
		    store_batches_load(st, &b, &nb, &e) != 0)
			bench_die("baseline", &e);
		if ((key = malloc((nb + 1) * sizeof(*key))) == NULL)
			bench_die("baseline", NULL);
		for (i = 0; i < nb; i++)
			if (ingest_unwrap_batch_key(storage, b[i].batch_id, b[i].wrapped_key, b[i].wrapped_len, key[i],
			    &e) != 0)
				bench_die("baseline: batch key", &e);
		for (mask = 1; mask < 2 * nr[1]; mask <<= 1)
			;
		if ((slot[0] = malloc(mask * sizeof(int64_t))) == NULL || (slot[1] = malloc(mask * sizeof(int64_t))) == NULL ||
		    (used = calloc(nr[1], 1)) == NULL || (kg = malloc(nr[0] * sizeof(*kg))) == NULL)
			bench_die("baseline", NULL);
		memset(slot[0], 0xff, mask * sizeof(int64_t));
		memset(slot[1], 0xff, mask * sizeof(int64_t));
		mask--;
		/* G's users by email token (table 0) and by phone token (table 1) */
		for (i = 0; i < nr[1]; i++)
			for (stage = 0; stage < 2; stage++) {
				const unsigned char *t = stage ? refs[1][i].phone : refs[1][i].email;
				if (!(stage ? refs[1][i].has_phone : refs[1][i].has_email))
					continue;
				for (s = tok_hash(t) & mask; slot[stage][s] >= 0; s = (s + 1) & mask)
					;
				slot[stage][s] = (int64_t)i;
			}
		/* pairs: by email first, then by phone among those left (no ambiguity handling: a close baseline) */
		for (i = 0; i < nr[0]; i++)
			kg[i] = SIZE_MAX;
		for (stage = 0; stage < 2; stage++)
			for (i = 0; i < nr[0]; i++) {
				const struct store_ref *k = &refs[0][i];
				const unsigned char *t = stage ? k->phone : k->email;

				if (kg[i] != SIZE_MAX || !(stage ? k->has_phone : k->has_email))
					continue;
				for (s = tok_hash(t) & mask; slot[stage][s] >= 0; s = (s + 1) & mask) {
					const struct store_ref *g = &refs[1][slot[stage][s]];
					if (!used[slot[stage][s]] && memcmp(stage ? g->phone : g->email, t, TOKEN_LEN) == 0 &&
					    (stage == 0 || !k->has_email || !g->has_email)) {
						kg[i] = (size_t)slot[stage][s];
						used[kg[i]] = 1;
						break;
					}
				}
			}
		for (i = 0; i < nr[0]; i++) {
			const struct store_ref *k = &refs[0][i], *g;
			Crossgate__RecordPayload *pk, *pg;
			int h1;

			if (kg[i] == SIZE_MAX)
				continue;
			g = &refs[1][kg[i]];
			if (!(k->consent_bits & (1u << mbit)) || !(g->consent_bits & (1u << mbit)))
				continue;
			if (pay.rec[0][i].len > sizeof(pt) || pay.rec[1][kg[i]].len > sizeof(pt))
				bench_die("baseline: a payload over 64 KiB", NULL);
			pk = base_open(k, &pay.rec[0][i], "k", b, nb, key, pt);
			pg = base_open(g, &pay.rec[1][kg[i]], "g", b, nb, key, pt);
			if (pk == NULL || pg == NULL)
				bench_die("baseline: a payload that does not unpack", NULL);
			if (strcmp(field_str(pk, "top_course_category"), "programming") == 0 &&
			    field_int(pg, "watch_minutes", &h1) >= 600 && h1)
				count++;
			crossgate__record_payload__free_unpacked(pk, NULL);
			crossgate__record_payload__free_unpacked(pg, NULL);
		}
		t_base = bench_now() - t_base;
		free(slot[0]);
		free(slot[1]);
		free(used);
		free(kg);
		free(refs[0]);
		free(refs[1]);
		store_payloads_free(&pay);
		sodium_memzero(key, (nb + 1) * sizeof(*key));
		sodium_memzero(pt, sizeof(pt));
		free(key);
		free(b);
	}
	printf("audience %.2f s for an audience over %llu joined subjects and both partners' fetches (rule on both "
	    "partners, two deliveries sealed; noisy size %lld)\n", t_aud, (unsigned long long)matched, (long long)as.noisy_size);
	printf("         %.2f s plain C over the same store on one thread: one sequential read of both partners' "
	    "records, pair by email then phone token, open both, consent and predicate\n", t_base);
	printf("         ratio %.2fx the plain C pass over the same stored data; the two agree on the members "
	    "within 1%%: %s\n", t_aud / t_base, llabs(as.noisy_size - (long long)count) <= 10 + (long long)count / 100 ? "yes" : "NO");
	audit_free(a);
	store_close(st);
	unlink(db);
	policy_free(pol);
	free(text);
	free(full);
	return 0;
}
