/* join.c - see join.h */
#include "gateway/join.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "crypto/seal.h"
#include "base/secmem.h"
#include "crypto/token.h"
#include "gateway/ingest.h"

static double
join_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Keyed hashing.  Tokens are chosen by partners (a partner can mint tokens
 * that share any prefix it likes), so the tables hash them with SipHash
 * (crypto_shorthash) under a key drawn once per process: without the key no
 * one can aim tokens at one slot, and probing stays linear in the records.
 */
static unsigned char join_hkey[crypto_shorthash_KEYBYTES];
static pthread_once_t join_hkey_once = PTHREAD_ONCE_INIT;

static void
join_hkey_init(void)
{
	randombytes_buf(join_hkey, sizeof(join_hkey));      /* after sodium_init, checked by the caller */
}

/* Open-addressing map from a 32-byte token (pointed to, not copied) to an index. */
struct join_slot {
	const unsigned char *tok;
	uint32_t val;
};

struct join_map {
	struct join_slot *slot;
	size_t mask;
	uint64_t *probes;
};

static int
join_map_init(struct join_map *m, size_t n, uint64_t *probes)
{
	size_t cap = 16;

	while (cap < n * 2 + 16)
		cap *= 2;
	if ((m->slot = calloc(cap, sizeof(*m->slot))) == NULL)
		return CG_ERR_NOMEM;
	m->mask = cap - 1;
	m->probes = probes;
	return 0;
}

/*
 * The value of `tok`; if absent, insert it with `insert` unless that is
 * JOIN_NONE.  Returns the value found (or inserted), or JOIN_NONE.
 */
static uint32_t
join_map_get(struct join_map *m, const unsigned char *tok, uint32_t insert)
{
	uint64_t h;
	size_t s;

	crypto_shorthash((unsigned char *)&h, tok, TOKEN_LEN, join_hkey);
	for (s = (size_t)h & m->mask;; s = (s + 1) & m->mask) {
		(*m->probes)++;
		if (m->slot[s].tok == NULL) {
			if (insert == JOIN_NONE)
				return JOIN_NONE;
			m->slot[s].tok = tok;
			m->slot[s].val = insert;
			return insert;
		}
		if (memcmp(m->slot[s].tok, tok, TOKEN_LEN) == 0)
			return m->slot[s].val;
	}
}

static int
join_newer(const struct store_ref *a, const struct store_ref *b)
{
	if (a->consent_at != b->consent_at)
		return a->consent_at > b->consent_at;
	return a->id > b->id;
}

/* A user of one partner: the records of one key (an email, or the phone of records without an email). */
struct join_user {
	uint32_t rep;                        /* newest record */
	uint32_t phone;                      /* a record carrying the user's phone, or JOIN_NONE */
	uint32_t pair;                       /* the user it is paired with on the other side, or JOIN_NONE */
	uint8_t by_email;
	uint8_t epaired;                     /* paired in the email stage */
	uint8_t phones;                      /* distinct phones over the records, saturating at 2 */
};

/*
 * One phone's carriers that are not paired by email, per side: the
 * phone-only user (at most one: it is keyed by that phone), and the emailed
 * users (the first, and how many, saturating at 2).
 */
struct join_bucket {
	uint32_t ponly[2];
	uint32_t email1[2];
	uint8_t nemail[2];
	uint32_t any[2];                     /* users of any kind carrying the phone: the first, and how many */
	uint8_t nany[2];
};

struct join_side {
	struct join_user *u;
	size_t nu;
	uint32_t *user_of;                   /* record -> user, JOIN_NONE for a record without identifiers */
	struct join_map emap, pmap;          /* email -> user; phone -> phone-only user */
};

static void
join_side_free(struct join_side *sd)
{
	free(sd->u);
	free(sd->user_of);
	free(sd->emap.slot);
	free(sd->pmap.slot);
}

/* Group one partner's records into users by key; a user's newest record represents it. */
static int
join_side_users(struct join *j, int s, struct join_side *sd)
{
	const struct store_ref *refs = j->refs[s];
	size_t n = j->nref[s], i;

	if ((sd->u = malloc((n + 1) * sizeof(*sd->u))) == NULL ||
	    (sd->user_of = malloc((n + 1) * sizeof(*sd->user_of))) == NULL ||
	    join_map_init(&sd->emap, n, &j->probes) != 0 || join_map_init(&sd->pmap, n, &j->probes) != 0)
		return CG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		const struct store_ref *r = &refs[i];
		struct join_map *m = r->has_email ? &sd->emap : &sd->pmap;
		uint32_t u;

		sd->user_of[i] = JOIN_NONE;
		if (!r->has_email && !r->has_phone)
			continue;
		u = join_map_get(m, r->has_email ? r->email : r->phone, (uint32_t)sd->nu);
		if (u == sd->nu) {
			sd->u[u].rep = (uint32_t)i;
			sd->u[u].phone = JOIN_NONE;
			sd->u[u].pair = JOIN_NONE;
			sd->u[u].by_email = r->has_email;
			sd->u[u].epaired = 0;
			sd->u[u].phones = 0;
			sd->nu++;
		} else {
			j->superseded++;     /* one of the two is an older record of the user */
			if (join_newer(r, &refs[sd->u[u].rep]))
				sd->u[u].rep = (uint32_t)i;
		}
		sd->user_of[i] = u;
		if (r->has_phone) {
			struct join_user *us = &sd->u[u];
			if (us->phones == 0) {
				us->phone = (uint32_t)i;
				us->phones = 1;
			} else if (us->phones == 1 && memcmp(refs[us->phone].phone, r->phone, TOKEN_LEN) != 0) {
				us->phones = 2;
			}
		}
	}
	return 0;
}

static void
join_bucket_add(struct join_bucket *b, int s, uint32_t u, const struct join_user *us, int epaired)
{
	if (b->nany[s] == 0) {
		b->any[s] = u;
		b->nany[s] = 1;
	} else if (b->nany[s] == 1 && b->any[s] != u) {
		b->nany[s] = 2;
	}
	if (epaired)
		return;
	if (!us->by_email) {
		b->ponly[s] = u;
	} else if (b->nemail[s] == 0) {
		b->email1[s] = u;
		b->nemail[s] = 1;
	} else if (b->nemail[s] == 1 && b->email1[s] != u) {
		b->nemail[s] = 2;
	}
}

static void
join_link(struct join_side sd[2], uint32_t lu, uint32_t ru)
{
	sd[0].u[lu].pair = ru;
	sd[1].u[ru].pair = lu;
}

/*
 * The phone stage: a phone pairs two users only if, among the users not
 * paired by email, it is carried by exactly one compatible pair (at least one
 * of the two without an email: a phone never pairs two different emails),
 * and each of the two has that one phone.
 */
static int
join_phones(struct join *j, struct join_side sd[2], uint64_t *pairs)
{
	struct join_bucket *bk = NULL;
	struct join_map bmap;
	size_t nb = 0, i, n = j->nref[0] + j->nref[1];
	int s, r = CG_ERR_NOMEM;

	memset(&bmap, 0, sizeof(bmap));
	if ((bk = malloc((n + 1) * sizeof(*bk))) == NULL || join_map_init(&bmap, n, &j->probes) != 0)
		goto out;
	for (s = 0; s < 2; s++) {
		for (i = 0; i < j->nref[s]; i++) {
			const struct store_ref *rf = &j->refs[s][i];
			uint32_t u = sd[s].user_of[i], b;
			if (u == JOIN_NONE || !rf->has_phone)
				continue;
			b = join_map_get(&bmap, rf->phone, (uint32_t)nb);
			if (b == nb) {
				memset(&bk[b], 0xff, sizeof(bk[b]));
				bk[b].nemail[0] = bk[b].nemail[1] = bk[b].nany[0] = bk[b].nany[1] = 0;
				nb++;
			}
			join_bucket_add(&bk[b], s, u, &sd[s].u[u], sd[s].u[u].epaired);
		}
	}
	for (i = 0; i < nb; i++) {
		const struct join_bucket *b = &bk[i];
		unsigned lp = b->ponly[0] != JOIN_NONE, rp = b->ponly[1] != JOIN_NONE;
		unsigned right = rp + b->nemail[1];
		uint32_t lu, ru;

		/* compatible pairs: phone-only left x any right, emailed left x phone-only right */
		if (lp * right + (unsigned)b->nemail[0] * rp == 0)
			continue;
		if (lp * right + (unsigned)b->nemail[0] * rp > 1) {
			j->ambiguous++;
			continue;
		}
		lu = lp ? b->ponly[0] : b->email1[0];
		ru = lp ? (rp ? b->ponly[1] : b->email1[1]) : b->ponly[1];
		if (sd[0].u[lu].phones != 1 || sd[1].u[ru].phones != 1) {
			j->ambiguous++;          /* a user with two phones could pair twice */
			continue;
		}
		join_link(sd, lu, ru);
		(*pairs)++;
	}
	/* Paired by email, but the phone is another user's on the other side: counted, never followed. */
	for (s = 0; s < 2; s++) {
		for (i = 0; i < sd[s].nu; i++) {
			const struct join_user *us = &sd[s].u[i];
			uint32_t b;
			if (!us->epaired || us->phone == JOIN_NONE)
				continue;
			b = join_map_get(&bmap, j->refs[s][us->phone].phone, JOIN_NONE);
			if (b != JOIN_NONE && (bk[b].nany[1 - s] > 1 || (bk[b].nany[1 - s] == 1 && bk[b].any[1 - s] != us->pair)))
				j->ambiguous++;
		}
	}
	r = 0;
out:
	free(bk);
	free(bmap.slot);
	return r;
}

int
join_pairs(struct join *j, struct cg_err *err)
{
	struct join_side sd[2];
	uint64_t phone_pairs = 0;
	size_t i;
	double t0 = join_now();
	int r, s;

	if (sodium_init() < 0)
		return cg_err_set(err, CG_ERR_INTERNAL, "libsodium cannot initialize: no key for the join's tables");
	pthread_once(&join_hkey_once, join_hkey_init);
	memset(sd, 0, sizeof(sd));
	j->matched = j->superseded = j->ambiguous = 0;
	for (s = 0; s < 2; s++)
		if (j->nref[s] >= JOIN_NONE - 1)
			return cg_err_set(err, CG_ERR_LIMIT, "too many records for one join");
	for (s = 0; s < 2; s++)
		if ((r = join_side_users(j, s, &sd[s])) != 0)
			goto nomem;
	/* The email stage: the users of one email on both sides. */
	for (i = 0; i < sd[0].nu; i++) {
		uint32_t ru;
		if (!sd[0].u[i].by_email)
			continue;
		ru = join_map_get(&sd[1].emap, j->refs[0][sd[0].u[i].rep].email, JOIN_NONE);
		if (ru != JOIN_NONE) {
			join_link(sd, (uint32_t)i, ru);
			sd[0].u[i].epaired = sd[1].u[ru].epaired = 1;
			j->matched++;
		}
	}
	if ((r = join_phones(j, sd, &phone_pairs)) != 0)
		goto nomem;
	j->matched += phone_pairs;
	if ((j->pair = malloc((j->nref[0] + 1) * sizeof(*j->pair))) == NULL)
		goto nomem;
	for (i = 0; i < j->nref[0]; i++)
		j->pair[i] = JOIN_NONE;
	for (i = 0; i < sd[0].nu; i++)
		if (sd[0].u[i].pair != JOIN_NONE)
			j->pair[sd[0].u[i].rep] = sd[1].u[sd[0].u[i].pair].rep;
	j->join_seconds = join_now() - t0;
	r = 0;
	goto out;
nomem:
	r = cg_err_set(err, CG_ERR_NOMEM, "out of memory joining");
out:
	for (s = 0; s < 2; s++)
		join_side_free(&sd[s]);
	return r;
}

/*
 * The batch key of the last record opened on one side: records come in id
 * order, batch by batch, so most opens skip the unwrap.  Kept in locked
 * memory (base/secmem.h) for the walk only.
 */
struct join_keycache {
	int valid;
	unsigned char batch_id[16];
	unsigned char wrapped[64];
	size_t wrapped_len;
	unsigned char key[32];
};

static int
join_open_cached(struct store *st, const struct keyfile_key *storage, const struct store_ref *ref,
    struct join_keycache *kc, Crossgate__RecordPayload **out, struct cg_err *err)
{
	struct store_sealed s;
	struct token toks[2];
	unsigned char ad[SEAL_AD_MAX], key[32], *pt = NULL;
	size_t ad_len, nt = 0, pt_len;
	int r;

	*out = NULL;
	if ((r = store_sealed_get(st, ref->id, &s, err)) != 0)
		return r;
	if (ref->has_email) {
		toks[nt].kind = TOKEN_KIND_EMAIL;
		memcpy(toks[nt++].value, ref->email, TOKEN_LEN);
	}
	if (ref->has_phone) {
		toks[nt].kind = TOKEN_KIND_PHONE;
		memcpy(toks[nt++].value, ref->phone, TOKEN_LEN);
	}
	if ((r = seal_ad_build(ad, &ad_len, s.batch_id, s.partner, s.idx, ref->consent_bits, ref->consent_at,
	    toks, nt)) != 0) {
		r = cg_err_set(err, r, "record %lld: cannot build associated data", (long long)ref->id);
		goto out;
	}
	if (s.payload_len < SEAL_TAG_LEN || (pt = malloc(s.payload_len)) == NULL) {
		r = cg_err_set(err, s.payload_len < SEAL_TAG_LEN ? CG_ERR_FORMAT : CG_ERR_NOMEM,
		    "record %lld: cannot read payload", (long long)ref->id);
		goto out;
	}
	/* The same batch and the same wrapped bytes give the same key: reuse it. */
	if (kc != NULL && kc->valid && memcmp(kc->batch_id, s.batch_id, 16) == 0 && kc->wrapped_len == s.wrapped_len &&
	    sodium_memcmp(kc->wrapped, s.wrapped_key, s.wrapped_len) == 0) {
		memcpy(key, kc->key, sizeof(key));
	} else if ((r = ingest_unwrap_batch_key(storage, s.batch_id, s.wrapped_key, s.wrapped_len, key, err)) != 0) {
		cg_err_prefix(err, "%s: record %lld", store_path(st), (long long)ref->id);
		goto out;
	} else if (kc != NULL && s.wrapped_len <= sizeof(kc->wrapped)) {
		kc->valid = 1;
		memcpy(kc->batch_id, s.batch_id, 16);
		memcpy(kc->wrapped, s.wrapped_key, s.wrapped_len);
		kc->wrapped_len = s.wrapped_len;
		memcpy(kc->key, key, sizeof(key));
	}
	pt_len = s.payload_len - SEAL_TAG_LEN;
	r = seal_open_record(key, s.idx, ad, ad_len, s.payload, s.payload_len, pt, err);
	sodium_memzero(key, sizeof(key));
	if (r != 0) {
		/* Consent bits or tokens edited in the database fail here: they are bound to the payload. */
		cg_err_prefix(err, "%s: stored record %lld does not verify (database altered?)", store_path(st),
		    (long long)ref->id);
		goto out;
	}
	if ((*out = crossgate__record_payload__unpack(NULL, pt_len, pt)) == NULL)
		r = cg_err_set(err, CG_ERR_FORMAT, "stored record %lld: malformed payload", (long long)ref->id);
out:
	if (pt != NULL) {
		sodium_memzero(pt, s.payload_len);
		free(pt);
	}
	free(s.payload);
	return r;
}

int
join_open(struct store *st, const struct keyfile_key *storage, const struct store_ref *ref,
    Crossgate__RecordPayload **out, struct cg_err *err)
{
	return join_open_cached(st, storage, ref, NULL, out, err);
}


const Crossgate__Field *
join_field(const Crossgate__RecordPayload *p, const char *name)
{
	size_t i;

	for (i = 0; p != NULL && i < p->n_fields; i++)
		if (strcmp(p->fields[i]->name, name) == 0)
			return p->fields[i];
	return NULL;
}

void
join_free(struct join *j)
{
	int s;

	for (s = 0; s < 2; s++) {
		free(j->refs[s]);
		j->refs[s] = NULL;
	}
	free(j->pair);
	j->pair = NULL;
}

void
join_dataset(const struct join *j, char *out, size_t size)
{
	const char *a = j->side[0] ? j->side[0]->id : "?", *b = j->side[1] ? j->side[1]->id : "?";

	/* One dataset whichever side is left: swapping them must not open a second budget. */
	if (strcmp(a, b) > 0) {
		const char *t = a;
		a = b;
		b = t;
	}
	snprintf(out, size, "%s+%s", a, b);
}

int
join_run(struct store *st, const struct policy *pol, const char *left, const char *right, struct join *j,
    struct cg_err *err)
{
	double t0;
	int r, s;

	memset(j, 0, sizeof(*j));
	if (pol->npartners < 2 && (left == NULL || right == NULL))
		return cg_err_set(err, CG_ERR_POLICY, "the policy has fewer than two partners: nothing to join");
	j->side[0] = policy_partner_find(pol, left ? left : pol->partners[0].id);
	j->side[1] = policy_partner_find(pol, right ? right : pol->partners[1].id);
	if (j->side[0] == NULL || j->side[1] == NULL || j->side[0] == j->side[1])
		return cg_err_set(err, CG_ERR_ARG, "the join needs two different partners of the policy");

	t0 = join_now();
	for (s = 0; s < 2; s++) {
		if ((r = store_refs_load(st, j->side[s]->id, &j->refs[s], &j->nref[s], err)) != 0)
			goto out;
	}
	j->load_seconds = join_now() - t0;
	r = join_pairs(j, err);
out:
	if (r != 0)
		join_free(j);
	return r;
}

void
join_columns(const struct join *j, int purpose_bit, struct join_col *cols, size_t *ncols, size_t *nqi)
{
	size_t i, k, n = 0;
	int s;

	for (s = 0; s < 2; s++) {
		for (k = 0; k < j->side[s]->ncolumns; k++) {
			const struct policy_column *c = &j->side[s]->columns[k];
			int dup = 0;
			/* A column may serve only the purposes the policy lists for it. */
			if (c->role != POLICY_ROLE_QUASI || !policy_column_shared(c, purpose_bit))
				continue;
			for (i = 0; i < n; i++)
				if (strcmp(cols[i].col->name, c->name) == 0) {
					cols[i].alt = c;
					dup = 1;
				}
			if (dup || n == JOIN_COLS_MAX)
				continue;
			cols[n].col = c;
			cols[n].side = s;
			cols[n].alt = NULL;
			snprintf(cols[n].name, sizeof(cols[n].name), "%s", c->name);
			n++;
		}
	}
	*nqi = n;
	for (s = 0; s < 2; s++) {
		for (k = 0; k < j->side[s]->ncolumns && n < JOIN_COLS_MAX; k++) {
			const struct policy_column *c = &j->side[s]->columns[k];
			if (c->role != POLICY_ROLE_FEATURE || !policy_column_shared(c, purpose_bit))
				continue;
			cols[n].col = c;
			cols[n].side = s;
			cols[n].alt = NULL;
			snprintf(cols[n].name, sizeof(cols[n].name), "%s_%s", j->side[s]->id, c->name);
			n++;
		}
	}
	*ncols = n;
}

const Crossgate__Field *
join_col_field(const struct join_col *jc, Crossgate__RecordPayload *const pl[2], const struct policy_column **c)
{
	const Crossgate__Field *f = join_field(pl[jc->side], jc->col->name);

	*c = jc->col;
	if (f == NULL && jc->alt != NULL) {
		f = join_field(pl[1 - jc->side], jc->col->name);
		*c = jc->alt;
	}
	return f;
}

int
join_each(struct store *st, const struct keyfile_key *storage, const struct join *j, int pbit, unsigned sides,
    join_fn fn, void *ctx, uint64_t *no_consent, struct cg_err *err)
{
	uint32_t bit = UINT32_C(1) << pbit;
	struct join_keycache *kc;
	size_t i;
	int r = 0, s;

	if ((kc = secmem_alloc(2 * sizeof(*kc))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");

	for (i = 0; i < j->nref[0] && r == 0; i++) {
		Crossgate__RecordPayload *pl[2] = { NULL, NULL };
		const struct store_ref *ref[2];

		if (j->pair[i] == JOIN_NONE)
			continue;
		ref[0] = &j->refs[0][i];
		ref[1] = &j->refs[1][j->pair[i]];
		if (!(ref[0]->consent_bits & bit) || !(ref[1]->consent_bits & bit)) {
			(*no_consent)++;
			continue;
		}
		for (s = 0; s < 2 && r == 0; s++)
			if (sides & (1u << s))
				r = join_open_cached(st, storage, ref[s], &kc[s], &pl[s], err);
		if (r == 0)
			r = fn(ctx, ref, pl, err);
		for (s = 0; s < 2; s++)
			if (pl[s] != NULL)
				crossgate__record_payload__free_unpacked(pl[s], NULL);
	}
	secmem_free(kc, 2 * sizeof(*kc));
	return r;
}
