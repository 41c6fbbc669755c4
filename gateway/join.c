/* join.c - see join.h */
#include "gateway/join.h"

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

/* Open-addressing map from a 32-byte token to a record index. */
struct join_map {
	uint32_t *slot;
	size_t mask;
};

static int
join_map_init(struct join_map *m, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2 + 16)
		cap *= 2;
	if ((m->slot = malloc(cap * sizeof(*m->slot))) == NULL)
		return CG_ERR_NOMEM;
	memset(m->slot, 0xff, cap * sizeof(*m->slot));
	m->mask = cap - 1;
	return 0;
}

/* Find the token; if absent and `insert` != JOIN_NONE, insert it. Returns the index found or JOIN_NONE. */
static uint32_t
join_map_get(struct join_map *m, const struct store_ref *refs, int phone, const unsigned char *tok,
    uint32_t insert)
{
	uint64_t h;
	size_t s;

	memcpy(&h, tok, sizeof(h));
	for (s = h & m->mask;; s = (s + 1) & m->mask) {
		uint32_t o = m->slot[s];
		if (o == JOIN_NONE) {
			if (insert != JOIN_NONE)
				m->slot[s] = insert;
			return JOIN_NONE;
		}
		if (memcmp(phone ? refs[o].phone : refs[o].email, tok, TOKEN_LEN) == 0)
			return o;
	}
}

static uint32_t
join_find(uint32_t *parent, uint32_t i)
{
	while (parent[i] != i) {
		parent[i] = parent[parent[i]];
		i = parent[i];
	}
	return i;
}

static int
join_newer(const struct store_ref *a, const struct store_ref *b)
{
	if (a->consent_at != b->consent_at)
		return a->consent_at > b->consent_at;
	return a->id > b->id;
}

/*
 * One side: group records sharing a token, keep the newest of each group.
 * winner[i] is the index of i's group winner.  The maps end up holding, per
 * token, some record of its group: callers resolve through winner[].
 */
static int
join_side(const struct store_ref *refs, size_t n, uint32_t **winner_out, struct join_map *emap,
    struct join_map *pmap, uint64_t *superseded)
{
	uint32_t *parent = NULL, *winner = NULL;
	size_t i;
	int r = CG_ERR_NOMEM;

	*winner_out = NULL;
	if ((parent = malloc((n + 1) * sizeof(*parent))) == NULL ||
	    (winner = malloc((n + 1) * sizeof(*winner))) == NULL ||
	    join_map_init(emap, n) != 0 || join_map_init(pmap, n) != 0)
		goto out;
	for (i = 0; i < n; i++)
		parent[i] = (uint32_t)i;
	for (i = 0; i < n; i++) {
		uint32_t o;
		if (refs[i].has_email &&
		    (o = join_map_get(emap, refs, 0, refs[i].email, (uint32_t)i)) != JOIN_NONE) {
			uint32_t a = join_find(parent, o), b = join_find(parent, (uint32_t)i);
			if (a != b)
				parent[a] = b;
		}
		if (refs[i].has_phone &&
		    (o = join_map_get(pmap, refs, 1, refs[i].phone, (uint32_t)i)) != JOIN_NONE) {
			uint32_t a = join_find(parent, o), b = join_find(parent, (uint32_t)i);
			if (a != b)
				parent[a] = b;
		}
	}
	for (i = 0; i < n; i++)
		winner[i] = JOIN_NONE;
	for (i = 0; i < n; i++) {
		uint32_t root = join_find(parent, (uint32_t)i);
		if (winner[root] == JOIN_NONE || join_newer(&refs[i], &refs[winner[root]]))
			winner[root] = (uint32_t)i;
	}
	for (i = 0; i < n; i++) {
		uint32_t w = winner[join_find(parent, (uint32_t)i)];
		if (w != i)
			(*superseded)++;
		parent[i] = w;
	}
	*winner_out = parent;
	parent = NULL; /* transferred */
	r = 0;
out:
	free(parent);
	free(winner);
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
	struct join_map emap[2], pmap[2];
	uint32_t *win[2] = { NULL, NULL };
	size_t i, nl;
	double t0;
	int r, s;

	memset(j, 0, sizeof(*j));
	memset(emap, 0, sizeof(emap));
	memset(pmap, 0, sizeof(pmap));
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
		if (j->nref[s] >= JOIN_NONE) {
			r = cg_err_set(err, CG_ERR_LIMIT, "too many records for one join");
			goto out;
		}
	}
	j->load_seconds = join_now() - t0;
	t0 = join_now();
	for (s = 0; s < 2; s++) {
		if ((r = join_side(j->refs[s], j->nref[s], &win[s], &emap[s], &pmap[s], &j->superseded)) != 0) {
			r = cg_err_set(err, r, "out of memory joining");
			goto out;
		}
	}
	nl = j->nref[0];
	/* pair[left winner] = right winner; pair[nl + right] marks the right side taken */
	if ((j->pair = malloc((nl + j->nref[1] + 1) * sizeof(*j->pair))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory joining");
		goto out;
	}
	for (i = 0; i < nl + j->nref[1]; i++)
		j->pair[i] = JOIN_NONE;
	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < nl; i++) {
			const struct store_ref *l = &j->refs[0][i];
			uint32_t rr;
			if (win[0][i] != i || j->pair[i] != JOIN_NONE)
				continue;
			if (pass == 0 && !l->has_email)
				continue;
			if (pass == 1 && !l->has_phone)
				continue;
			rr = pass == 0 ? join_map_get(&emap[1], j->refs[1], 0, l->email, JOIN_NONE)
				       : join_map_get(&pmap[1], j->refs[1], 1, l->phone, JOIN_NONE);
			if (rr == JOIN_NONE)
				continue;
			rr = win[1][rr];
			if (j->pair[nl + rr] != JOIN_NONE) {
				j->ambiguous++;     /* that right user is already paired with another */
				continue;
			}
			j->pair[i] = rr;
			j->pair[nl + rr] = (uint32_t)i;
			j->matched++;
		}
	}
	/* Paired by email, but the phone points at a different right user: ambiguous, counted. */
	for (i = 0; i < nl; i++) {
		uint32_t rr;
		if (j->pair[i] == JOIN_NONE || !j->refs[0][i].has_phone)
			continue;
		rr = join_map_get(&pmap[1], j->refs[1], 1, j->refs[0][i].phone, JOIN_NONE);
		if (rr != JOIN_NONE && win[1][rr] != j->pair[i])
			j->ambiguous++;
	}
	j->join_seconds = join_now() - t0;
	r = 0;
out:
	for (s = 0; s < 2; s++) {
		free(win[s]);
		free(emap[s].slot);
		free(pmap[s].slot);
	}
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
