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
#include "base/workers.h"
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
 * Opening one record: the batch key (the last one a thread used is kept, as
 * records come batch by batch), the associated data rebuilt from the join's
 * tokens and consent, and the AEAD check, which is what binds consent: a
 * consent bit or a token edited in the database fails it.  Kept in locked
 * memory (base/secmem.h) for the walk only.
 */
struct join_keycache {
	int valid;
	size_t batch;                        /* index into the walk's batches */
	unsigned char key[32];
};

/* The sealed fields of a record from the scan, and where its plaintext goes. */
struct join_item {
	const struct store_ref *ref;
	size_t batch;                        /* index into the walk's batches */
	uint64_t idx;
	size_t ct_off, ct_len, pt_off;
	uint32_t slot;                       /* the pair it belongs to */
	uint8_t side;
};

static int
join_open_item(struct store *st, const struct keyfile_key *storage, const struct store_batch *b,
    const struct join_item *it, const char *partner, const unsigned char *ct, struct join_keycache *kc,
    unsigned char *pt, struct cg_err *err)
{
	const struct store_ref *ref = it->ref;
	struct token toks[2];
	unsigned char ad[SEAL_AD_MAX];
	size_t ad_len, nt = 0;
	int r;

	if (b->damaged)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: record %lld: damaged batch row", store_path(st),
		    (long long)ref->id);
	if (ref->has_email) {
		toks[nt].kind = TOKEN_KIND_EMAIL;
		memcpy(toks[nt++].value, ref->email, TOKEN_LEN);
	}
	if (ref->has_phone) {
		toks[nt].kind = TOKEN_KIND_PHONE;
		memcpy(toks[nt++].value, ref->phone, TOKEN_LEN);
	}
	if ((r = seal_ad_build(ad, &ad_len, b->batch_id, partner, it->idx, ref->consent_bits, ref->consent_at,
	    toks, nt)) != 0)
		return cg_err_set(err, r, "record %lld: cannot build associated data", (long long)ref->id);
	if (it->ct_len < SEAL_TAG_LEN)
		return cg_err_set(err, CG_ERR_FORMAT, "record %lld: cannot read payload", (long long)ref->id);
	if (!kc->valid || kc->batch != it->batch) {
		kc->valid = 0;
		if ((r = ingest_unwrap_batch_key(storage, b->batch_id, b->wrapped_key, b->wrapped_len, kc->key,
		    err)) != 0)
			return cg_err_prefix(err, "%s: record %lld", store_path(st), (long long)ref->id);
		kc->valid = 1;
		kc->batch = it->batch;
	}
	if ((r = seal_open_record(kc->key, it->idx, ad, ad_len, ct, it->ct_len, pt, err)) != 0)
		/* Consent bits or tokens edited in the database fail here: they are bound to the payload. */
		return cg_err_prefix(err, "%s: stored record %lld does not verify (database altered?)", store_path(st),
		    (long long)ref->id);
	return 0;
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
	const char *ids[2];
	double t0;
	int r;

	memset(j, 0, sizeof(*j));
	if (pol->npartners < 2 && (left == NULL || right == NULL))
		return cg_err_set(err, CG_ERR_POLICY, "the policy has fewer than two partners: nothing to join");
	j->side[0] = policy_partner_find(pol, left ? left : pol->partners[0].id);
	j->side[1] = policy_partner_find(pol, right ? right : pol->partners[1].id);
	if (j->side[0] == NULL || j->side[1] == NULL || j->side[0] == j->side[1])
		return cg_err_set(err, CG_ERR_ARG, "the join needs two different partners of the policy");

	t0 = join_now();
	ids[0] = j->side[0]->id;
	ids[1] = j->side[1]->id;
	if ((r = store_refs_load_pair(st, ids, j->refs, j->nref, err)) != 0)
		goto out;
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

/*
 * join_each reads the store once, in rowid order, and opens records in
 * parallel.  Pass 1: a sequential scan (store_scan_next) picks the records
 * of the consenting pairs out of the table, JOIN_CHUNK at a time, and worker
 * threads open each chunk (join_open_item) while the scan reads the next;
 * the plaintexts stay in memory, one block per chunk, wiped at the end.
 * Pass 2: pairs in order, JOIN_GROUP at a time, are unpacked by the workers
 * while the caller's fn runs, on this thread, over the previous group, so fn
 * sees the pairs in the same order as a record-by-record walk.
 */
#define JOIN_CHUNK 8192u                 /* records per open job */
#define JOIN_OPEN_TASK 256u              /* records per open task */
#define JOIN_GROUP 2048u                 /* pairs per unpack job */
#define JOIN_UNPACK_TASK 128u            /* pairs per unpack task */

struct join_chunk {
	struct join_item *it;                /* JOIN_CHUNK */
	size_t n;
	unsigned char *ct;                   /* the ciphertexts, back to back */
	size_t ct_len, ct_cap, pt_len;
	unsigned char *pt;                   /* the block the plaintexts go to, owned by the walk's list */
	struct cg_err terr[JOIN_CHUNK / JOIN_OPEN_TASK];
};

struct join_walk {
	struct store *st;
	const struct keyfile_key *storage;
	const struct join *j;
	unsigned sides;
	struct workers *pool;
	struct store_batch *b;
	size_t nb;
	struct join_keycache *kc;            /* one per worker, locked memory */
	unsigned nkc;
	struct join_chunk ch[2];
	struct join_chunk *job;              /* the chunk the workers are opening */
	unsigned char **blocks;              /* every chunk's plaintexts, and their sizes for the wipe */
	size_t *block_len, nblocks, cblocks;
	size_t npairs;
	uint32_t *left;                      /* pair -> its left record */
	uint32_t *slot_of[2];                /* record -> its pair, JOIN_NONE if not read */
	unsigned char **pt[2];               /* pair -> its side's plaintext */
	uint32_t *pt_len[2];
	/* pass 2 */
	Crossgate__RecordPayload **pl[2];    /* two groups of JOIN_GROUP pairs x 2 sides */
	size_t g_first[2], g_n[2];
	struct cg_err gerr[2][JOIN_GROUP / JOIN_UNPACK_TASK];
	int gbuf;                            /* the buffer the running unpack job fills */
};

static int
join_open_task(void *arg, size_t task, unsigned worker)
{
	struct join_walk *w = arg;
	struct join_chunk *c = w->job;
	size_t i = task * JOIN_OPEN_TASK, end = i + JOIN_OPEN_TASK < c->n ? i + JOIN_OPEN_TASK : c->n;
	int r;

	for (; i < end; i++) {
		const struct join_item *it = &c->it[i];
		if ((r = join_open_item(w->st, w->storage, &w->b[it->batch], it, w->j->side[it->side]->id,
		    c->ct + it->ct_off, &w->kc[worker], c->pt + it->pt_off, &c->terr[task])) != 0)
			return r;
	}
	return 0;
}

/* Wait for the open job; its error is the lowest task's, with that task's message. */
static int
join_open_wait(struct join_walk *w, struct cg_err *err)
{
	struct join_chunk *c = w->job;
	size_t t;
	int r;

	if (c == NULL)
		return 0;
	r = workers_wait(w->pool);
	w->job = NULL;                       /* only now: the workers read it until they are done */
	if (r == 0)
		return 0;
	for (t = 0; t < (c->n + JOIN_OPEN_TASK - 1) / JOIN_OPEN_TASK; t++)
		if (c->terr[t].code != 0) {
			if (err != NULL)
				*err = c->terr[t];
			return c->terr[t].code;
		}
	return cg_err_set(err, r, "opening records failed");
}

/* Give the chunk its plaintext block and start opening it. */
static int
join_open_start(struct join_walk *w, struct join_chunk *c, struct cg_err *err)
{
	size_t i, pos = 0;

	if (c->n == 0)
		return 0;
	if (w->nblocks == w->cblocks) {
		size_t ncap = w->cblocks ? w->cblocks * 2 : 64;
		unsigned char **nb = realloc(w->blocks, ncap * sizeof(*nb));
		size_t *nl;
		if (nb == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory reading records");
		w->blocks = nb;
		if ((nl = realloc(w->block_len, ncap * sizeof(*nl))) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory reading records");
		w->block_len = nl;
		w->cblocks = ncap;
	}
	for (i = 0; i < c->n; i++) {
		struct join_item *it = &c->it[i];
		size_t len = it->ct_len >= SEAL_TAG_LEN ? it->ct_len - SEAL_TAG_LEN : 0;
		it->pt_off = pos;
		pos += len;
	}
	if ((c->pt = malloc(pos ? pos : 1)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory reading records");
	w->blocks[w->nblocks] = c->pt;
	w->block_len[w->nblocks++] = pos;
	for (i = 0; i < c->n; i++) {
		const struct join_item *it = &c->it[i];
		w->pt[it->side][it->slot] = c->pt + it->pt_off;
		w->pt_len[it->side][it->slot] = (uint32_t)(it->ct_len >= SEAL_TAG_LEN ? it->ct_len - SEAL_TAG_LEN : 0);
	}
	memset(c->terr, 0, sizeof(c->terr));
	w->job = c;
	workers_start(w->pool, (c->n + JOIN_OPEN_TASK - 1) / JOIN_OPEN_TASK, join_open_task, w);
	return 0;
}

/* The batch of a record, by binary search in the batches (id order). */
static size_t
join_batch_find(const struct join_walk *w, int64_t id)
{
	size_t lo = 0, hi = w->nb;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->b[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < w->nb && w->b[lo].id == id ? lo : SIZE_MAX;
}

/* Add a scanned row to the chunk being filled. */
static int
join_chunk_add(struct join_walk *w, struct join_chunk *c, int s, size_t rec, const struct store_scan_row *row,
    struct cg_err *err)
{
	struct join_item *it = &c->it[c->n];
	size_t bi = join_batch_find(w, row->batch);

	if (bi == SIZE_MAX)
		return cg_err_set(err, CG_ERR_NOTFOUND, "record %lld not found", (long long)row->id);
	if (row->payload_len > UINT32_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "record %lld: cannot read payload", (long long)row->id);
	if (c->ct_len + row->payload_len > c->ct_cap) {
		size_t ncap = c->ct_cap ? c->ct_cap : 1 << 20;
		unsigned char *nc;
		while (ncap < c->ct_len + row->payload_len)
			ncap *= 2;
		if ((nc = realloc(c->ct, ncap)) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory reading records");
		c->ct = nc;
		c->ct_cap = ncap;
	}
	it->ref = &w->j->refs[s][rec];
	it->batch = bi;
	it->idx = row->idx;
	it->ct_off = c->ct_len;
	it->ct_len = row->payload_len;
	it->slot = w->slot_of[s][rec];
	it->side = (uint8_t)s;
	if (row->payload_len)
		memcpy(c->ct + c->ct_len, row->payload, row->payload_len);
	c->ct_len += row->payload_len;
	c->n++;
	return 0;
}

/* Pass 1: scan the table once and open every record a pair needs. */
static int
join_walk_open(struct join_walk *w, struct cg_err *err)
{
	const struct join *j = w->j;
	struct store_scan_row row;
	size_t pos[2] = { 0, 0 };
	struct join_chunk *fill = &w->ch[0];
	int r, s, more;

	while ((more = store_scan_next(w->st, &row, err)) == 1) {
		for (s = 0; s < 2; s++)
			if ((w->sides & (1u << s)) && strcmp(row.partner, j->side[s]->id) == 0)
				break;
		if (s == 2)
			continue;
		/* Records the join saw and the scan does not were erased since: an error, as a lookup would be. */
		for (; pos[s] < j->nref[s] && j->refs[s][pos[s]].id < row.id; pos[s]++)
			if (w->slot_of[s][pos[s]] != JOIN_NONE) {
				r = cg_err_set(err, CG_ERR_NOTFOUND, "record %lld not found", (long long)j->refs[s][pos[s]].id);
				goto fail;
			}
		if (pos[s] == j->nref[s] || j->refs[s][pos[s]].id != row.id)
			continue;                /* stored after the join was made */
		if (w->slot_of[s][pos[s]] != JOIN_NONE && (r = join_chunk_add(w, fill, s, pos[s], &row, err)) != 0)
			goto fail;
		pos[s]++;
		if (fill->n == JOIN_CHUNK) {
			if ((r = join_open_wait(w, err)) != 0 || (r = join_open_start(w, fill, err)) != 0)
				goto fail;
			fill = fill == &w->ch[0] ? &w->ch[1] : &w->ch[0];
			fill->n = fill->ct_len = 0;
		}
	}
	if (more < 0) {
		(void)join_open_wait(w, NULL);
		return more;
	}
	for (s = 0; s < 2; s++)
		for (; pos[s] < j->nref[s]; pos[s]++)
			if (w->slot_of[s][pos[s]] != JOIN_NONE) {
				(void)join_open_wait(w, NULL);
				return cg_err_set(err, CG_ERR_NOTFOUND, "record %lld not found",
				    (long long)j->refs[s][pos[s]].id);
			}
	if ((r = join_open_wait(w, err)) != 0 || (r = join_open_start(w, fill, err)) != 0)
		return r;
	return join_open_wait(w, err);
fail:
	store_scan_end(w->st);
	(void)join_open_wait(w, NULL);
	return r;
}

static const struct store_ref *
join_walk_ref(const struct join_walk *w, size_t k, int s)
{
	uint32_t l = w->left[k];

	return s == 0 ? &w->j->refs[0][l] : &w->j->refs[1][w->j->pair[l]];
}

static int
join_unpack_task(void *arg, size_t task, unsigned worker)
{
	struct join_walk *w = arg;
	int g = w->gbuf, s;
	size_t i = task * JOIN_UNPACK_TASK, end = i + JOIN_UNPACK_TASK < w->g_n[g] ? i + JOIN_UNPACK_TASK : w->g_n[g];

	(void)worker;
	for (; i < end; i++) {
		size_t k = w->g_first[g] + i;
		for (s = 0; s < 2; s++) {
			Crossgate__RecordPayload *p;
			if (!(w->sides & (1u << s)))
				continue;
			p = crossgate__record_payload__unpack(NULL, w->pt_len[s][k], w->pt[s][k]);
			w->pl[g][i * 2 + (size_t)s] = p;
			if (p == NULL)
				return cg_err_set(&w->gerr[g][task], CG_ERR_FORMAT, "stored record %lld: malformed payload",
				    (long long)join_walk_ref(w, k, s)->id);
		}
	}
	return 0;
}

static void
join_group_free(struct join_walk *w, int g)
{
	size_t i;

	for (i = 0; i < JOIN_GROUP * 2; i++)
		if (w->pl[g][i] != NULL) {
			crossgate__record_payload__free_unpacked(w->pl[g][i], NULL);
			w->pl[g][i] = NULL;
		}
}

static void
join_group_start(struct join_walk *w, int g, size_t first)
{
	w->gbuf = g;
	w->g_first[g] = first;
	w->g_n[g] = w->npairs - first < JOIN_GROUP ? w->npairs - first : JOIN_GROUP;
	memset(w->gerr[g], 0, sizeof(w->gerr[g]));
	workers_start(w->pool, (w->g_n[g] + JOIN_UNPACK_TASK - 1) / JOIN_UNPACK_TASK, join_unpack_task, w);
}

static int
join_group_wait(struct join_walk *w, int g, struct cg_err *err)
{
	size_t t;
	int r = workers_wait(w->pool);

	if (r == 0)
		return 0;
	for (t = 0; t < JOIN_GROUP / JOIN_UNPACK_TASK; t++)
		if (w->gerr[g][t].code != 0) {
			*err = w->gerr[g][t];
			return w->gerr[g][t].code;
		}
	return cg_err_set(err, r, "unpacking records failed");
}

/* Pass 2: fn over the pairs in order, each group unpacked by the workers while fn runs over the one before. */
static int
join_walk_calls(struct join_walk *w, join_fn fn, void *ctx, struct cg_err *err)
{
	size_t first = 0, i;
	int g = 0, r = 0, s, running = 0;

	if (w->npairs == 0)
		return 0;
	join_group_start(w, 0, 0);
	running = 1;
	while (first < w->npairs) {
		running = 0;
		if ((r = join_group_wait(w, g, err)) != 0)
			break;
		if (first + w->g_n[g] < w->npairs) {
			join_group_start(w, 1 - g, first + w->g_n[g]);
			running = 1;
		}
		for (i = 0; i < w->g_n[g] && r == 0; i++) {
			const struct store_ref *ref[2];
			Crossgate__RecordPayload *pl[2];
			for (s = 0; s < 2; s++) {
				ref[s] = join_walk_ref(w, first + i, s);
				pl[s] = w->pl[g][i * 2 + (size_t)s];
			}
			r = fn(ctx, ref, pl, err);
		}
		join_group_free(w, g);
		if (r != 0)
			break;
		first += w->g_n[g];
		g = 1 - g;
	}
	if (running && workers_wait(w->pool) != 0 && r == 0)
		r = cg_err_set(err, CG_ERR_INTERNAL, "unpacking records failed");
	join_group_free(w, 0);
	join_group_free(w, 1);
	return r;
}

static void
join_walk_free(struct join_walk *w)
{
	size_t i;
	int s;

	for (i = 0; i < w->nblocks; i++) {
		sodium_memzero(w->blocks[i], w->block_len[i]);
		free(w->blocks[i]);
	}
	free(w->blocks);
	free(w->block_len);
	for (i = 0; i < 2; i++) {
		free(w->ch[i].it);
		free(w->ch[i].ct);
		free(w->pl[i]);
	}
	for (s = 0; s < 2; s++) {
		free(w->slot_of[s]);
		free(w->pt[s]);
		free(w->pt_len[s]);
	}
	free(w->left);
	free(w->b);
	secmem_free(w->kc, w->nkc * sizeof(*w->kc));
	workers_free(w->pool);
}

int
join_each(struct store *st, const struct keyfile_key *storage, const struct join *j, int pbit, unsigned sides,
    join_fn fn, void *ctx, uint64_t *no_consent, struct cg_err *err)
{
	uint32_t bit = UINT32_C(1) << pbit;
	struct join_walk w;
	size_t i;
	int r, s;

	memset(&w, 0, sizeof(w));
	w.st = st;
	w.storage = storage;
	w.j = j;
	w.sides = sides & JOIN_BOTH;
	if ((w.left = malloc((j->nref[0] + 1) * sizeof(*w.left))) == NULL)
		goto nomem;
	for (s = 0; s < 2; s++)
		if ((w.slot_of[s] = malloc((j->nref[s] + 1) * sizeof(*w.slot_of[s]))) == NULL)
			goto nomem;
		else
			memset(w.slot_of[s], 0xff, (j->nref[s] + 1) * sizeof(*w.slot_of[s]));
	/* The pairs used, in left record order; the others are counted out for consent. */
	for (i = 0; i < j->nref[0]; i++) {
		const struct store_ref *l, *rt;
		if (j->pair[i] == JOIN_NONE)
			continue;
		l = &j->refs[0][i];
		rt = &j->refs[1][j->pair[i]];
		if (!(l->consent_bits & bit) || !(rt->consent_bits & bit)) {
			(*no_consent)++;
			continue;
		}
		w.slot_of[0][i] = (uint32_t)w.npairs;
		w.slot_of[1][j->pair[i]] = (uint32_t)w.npairs;
		w.left[w.npairs++] = (uint32_t)i;
	}
	for (s = 0; s < 2; s++)
		if ((w.pt[s] = calloc(w.npairs + 1, sizeof(*w.pt[s]))) == NULL ||
		    (w.pt_len[s] = calloc(w.npairs + 1, sizeof(*w.pt_len[s]))) == NULL)
			goto nomem;
	for (i = 0; i < 2; i++)
		if ((w.ch[i].it = malloc(JOIN_CHUNK * sizeof(*w.ch[i].it))) == NULL ||
		    (w.pl[i] = calloc(JOIN_GROUP * 2, sizeof(*w.pl[i]))) == NULL)
			goto nomem;
	w.nkc = workers_cpus();
	if ((w.kc = secmem_alloc(w.nkc * sizeof(*w.kc))) == NULL)
		goto nomem;
	memset(w.kc, 0, w.nkc * sizeof(*w.kc));
	if ((r = workers_new(w.nkc, &w.pool, err)) != 0)
		goto out;
	if (w.npairs > 0 && w.sides != 0 && ((r = store_batches_load(st, &w.b, &w.nb, err)) != 0 ||
	    (r = join_walk_open(&w, err)) != 0))
		goto out;
	r = join_walk_calls(&w, fn, ctx, err);
	goto out;
nomem:
	r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
out:
	join_walk_free(&w);
	return r;
}
