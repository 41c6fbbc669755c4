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
#include "base/workers.h"
#include "proto/arena.h"
#include "gateway/ingest.h"

static double
join_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Open one record of the join with its batch's key: the associated data is
 * rebuilt from the join's tokens and consent, and the AEAD check is what
 * binds consent: a consent bit or a token edited in the database fails it.
 */
static int
join_open_record(const struct store_ref *ref, const struct store_payload *sp, const char *partner,
    const unsigned char batch_id[16], const unsigned char key[32], const char *dbpath, unsigned char *pt,
    struct cg_err *err)
{
	struct token toks[2];
	unsigned char ad[SEAL_AD_MAX];
	size_t ad_len, nt;
	int r;

	nt = store_ref_tokens(ref, toks);
	if ((r = seal_ad_build(ad, &ad_len, batch_id, partner, sp->idx, ref->consent_bits,
	    ref->consent_at, toks, nt)) != 0)
		return cg_err_set(err, r, "record %lld: cannot build associated data", (long long)ref->id);
	if (sp->len < SEAL_TAG_LEN)
		return cg_err_set(err, CG_ERR_FORMAT, "record %lld: cannot read payload", (long long)ref->id);
	if ((r = seal_open_record(key, sp->idx, ad, ad_len, sp->ct, sp->len, pt, err)) != 0)
		/* Consent bits or tokens edited in the database fail here: they are bound to the payload. */
		return cg_err_prefix(err, "%s: stored record %lld does not verify (database altered?)", dbpath,
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
	size_t i;
	int s;

	for (s = 0; s < 2; s++) {
		free(j->refs[s]);
		j->refs[s] = NULL;
	}
	free(j->pair);
	j->pair = NULL;
	for (i = 0; i < j->pay.nblocks; i++)
		sodium_memzero(j->pay.blocks[i], j->pay.block_len[i]);   /* plaintexts opened in place */
	store_payloads_free(&j->pay);
	for (s = 0; s < 2; s++) {
		free(j->opened[s]);
		j->opened[s] = NULL;
	}
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

unsigned
join_col_sides(const struct join_col *jc)
{
	return (1u << jc->side) | (jc->alt != NULL ? 1u << (1 - jc->side) : 0);
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
 * join_each: the records were read by join_run's sequential scan; here the
 * pairs, in order, JOIN_GROUP at a time, are opened and unpacked by worker
 * threads (one per core) while the caller's fn runs, on this thread, over
 * the group before, so fn sees the pairs in the order of a record-by-record
 * walk, and the first record that does not verify, in that order, is the
 * error.  Each task unpacks (protobuf-c) into its own arena
 * (proto/arena.h: no malloc per field), wiped when its group is reused and
 * at the end, as is each plaintext.
 */
#define JOIN_GROUP 4096u                 /* pairs per job */
#define JOIN_TASK 256u                   /* pairs per task */
#define JOIN_NTASK (JOIN_GROUP / JOIN_TASK)
#define JOIN_ARENA ((size_t)512 << 10)   /* per task: 256 pairs of decoded records fit */

struct join_keyfail {
	size_t batch;
	struct cg_err err;
};

/* The batches and their keys, each unwrapped once (a failure is kept, told only for a record read). */
struct join_keys {
	struct store_batch *b;
	size_t nb;
	unsigned char (*key)[32];            /* locked memory */
	int *ok;                             /* per batch: its key unwrapped */
	struct join_keyfail *fail;
	size_t nfail;
};

static void
join_keys_free(struct join_keys *k)
{
	secmem_free(k->key, (k->nb + 1) * sizeof(*k->key));
	free(k->ok);
	free(k->fail);
	free(k->b);
	memset(k, 0, sizeof(*k));
}

static int
join_keys_load(struct store *st, const struct keyfile_key *storage, struct join_keys *k, struct cg_err *err)
{
	size_t i;
	int r;

	memset(k, 0, sizeof(*k));
	if ((r = store_batches_load(st, &k->b, &k->nb, err)) != 0)
		return r;
	if ((k->key = secmem_alloc((k->nb + 1) * sizeof(*k->key))) == NULL ||
	    (k->ok = calloc(k->nb + 1, sizeof(*k->ok))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (i = 0; i < k->nb; i++) {
		struct cg_err e;
		struct join_keyfail *nf;
		if (k->b[i].damaged)
			continue;
		if (ingest_unwrap_batch_key(storage, k->b[i].batch_id, k->b[i].wrapped_key, k->b[i].wrapped_len,
		    k->key[i], &e) == 0) {
			k->ok[i] = 1;
			continue;
		}
		if ((nf = realloc(k->fail, (k->nfail + 1) * sizeof(*nf))) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		k->fail = nf;
		k->fail[k->nfail].batch = i;
		k->fail[k->nfail++].err = e;
	}
	return 0;
}

/* The index of batch `id`; *last is a hint (records come batch by batch).  SIZE_MAX if none. */
static size_t
join_keys_find(const struct join_keys *k, int64_t id, size_t *last)
{
	size_t lo = 0, hi = k->nb;

	if (*last < k->nb && k->b[*last].id == id)
		return *last;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->b[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < k->nb && k->b[lo].id == id)
		return *last = lo;
	return SIZE_MAX;
}

/* 0 if the record of batch bi can be opened, else why not (the messages a lookup by id gave). */
static int
join_keys_check(const struct join_keys *k, size_t bi, const char *dbpath, long long id, struct cg_err *err)
{
	size_t f;

	if (bi == SIZE_MAX)
		return cg_err_set(err, CG_ERR_NOTFOUND, "record %lld not found", id);
	if (k->b[bi].damaged)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: record %lld: damaged batch row", dbpath, id);
	if (k->ok[bi])
		return 0;
	for (f = 0; f < k->nfail && k->fail[f].batch != bi; f++)
		;
	if (f == k->nfail)
		return cg_err_set(err, CG_ERR_INTERNAL, "record %lld: its batch key was not unwrapped", id);
	*err = k->fail[f].err;
	return cg_err_prefix(err, "%s: record %lld", dbpath, id);
}

/* A plaintext buffer of at least len bytes; the old one is wiped. */
static unsigned char *
join_scratch(unsigned char **buf, size_t *cap, size_t len)
{
	unsigned char *nb;

	if (len <= *cap)
		return *buf;
	if ((nb = malloc(len)) == NULL)
		return NULL;
	if (*buf != NULL)
		sodium_memzero(*buf, *cap);
	free(*buf);
	*buf = nb;
	*cap = len;
	return nb;
}

struct join_walk {
	const struct keyfile_key *storage;
	const struct join *j;
	const char *dbpath;
	unsigned sides;
	struct workers *pool;
	struct join_keys keys;
	size_t *bidx[2];                     /* record -> its batch, SIZE_MAX if none */
	unsigned nkc;                        /* worker threads */
	unsigned char **scratch;             /* a plaintext buffer per worker */
	size_t *scratch_len;
	size_t npairs;
	uint32_t *left;                      /* pair -> its left record */
	/* two groups in flight: the one fn walks and the one the workers open */
	Crossgate__RecordPayload **pl[2];    /* JOIN_GROUP pairs x 2 sides */
	struct pb_arena arena[2][JOIN_NTASK];
	struct cg_err gerr[2][JOIN_NTASK];
	size_t g_first[2], g_n[2];
	int gbuf;                            /* the group the running job fills */
};

/* The record of side s in pair k. */
static size_t
join_walk_rec(const struct join_walk *w, size_t k, int s)
{
	uint32_t l = w->left[k];

	return s == 0 ? l : w->j->pair[l];
}

/* Open and unpack one side of one pair into the task's arena. */
static int
join_walk_one(struct join_walk *w, size_t k, int s, struct pb_arena *ar, unsigned worker,
    Crossgate__RecordPayload **out, struct cg_err *err)
{
	const struct join *j = w->j;
	size_t rec = join_walk_rec(w, k, s), len;
	long long id;
	unsigned char *pt;
	int r;

	/* Opened by join_run's scan and not read by fn: verified, and nothing else to touch. */
	if (out == NULL && j->opened[s] != NULL && j->opened[s][rec])
		return 0;
	len = j->pay.rec[s][rec].len;
	id = (long long)j->refs[s][rec].id;
	/* Opened by join_run's scan: the plaintext is in place of the ciphertext. */
	if (j->opened[s] != NULL && j->opened[s][rec]) {
		*out = crossgate__record_payload__unpack(&ar->allocator, len - SEAL_TAG_LEN, j->pay.rec[s][rec].ct);
		goto decoded;
	}
	if ((r = join_keys_check(&w->keys, w->bidx[s][rec], w->dbpath, id, err)) != 0)
		return r;
	if ((pt = join_scratch(&w->scratch[worker], &w->scratch_len[worker], len)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	if ((r = join_open_record(&j->refs[s][rec], &j->pay.rec[s][rec], j->side[s]->id,
	    w->keys.b[w->bidx[s][rec]].batch_id, w->keys.key[w->bidx[s][rec]], w->dbpath, pt, err)) != 0)
		return r;
	if (out == NULL) {
		sodium_memzero(pt, len - SEAL_TAG_LEN);
		return 0;
	}
	*out = crossgate__record_payload__unpack(&ar->allocator, len - SEAL_TAG_LEN, pt);
	sodium_memzero(pt, len - SEAL_TAG_LEN);
decoded:
	if (*out == NULL)
		return cg_err_set(err, ar->failed ? CG_ERR_NOMEM : CG_ERR_FORMAT, ar->failed ? "out of memory" :
		    "stored record %lld: malformed payload", id);
	return 0;
}

static int
join_walk_task(void *arg, size_t task, unsigned worker)
{
	struct join_walk *w = arg;
	int g = w->gbuf, s, r;
	size_t i = task * JOIN_TASK, end = i + JOIN_TASK < w->g_n[g] ? i + JOIN_TASK : w->g_n[g];
	struct pb_arena *ar = &w->arena[g][task];

	pb_arena_reset(ar);
	for (; i < end; i++)
		for (s = 0; s < 2; s++)
			/* a side fn does not read is still verified: its seal binds the consent the pair was kept for */
			if ((r = join_walk_one(w, w->g_first[g] + i, s, ar, worker, (w->sides & (1u << s)) ?
			    &w->pl[g][i * 2 + (size_t)s] : NULL, &w->gerr[g][task])) != 0)
				return r;
	return 0;
}

static void
join_group_start(struct join_walk *w, int g, size_t first)
{
	w->gbuf = g;
	w->g_first[g] = first;
	w->g_n[g] = w->npairs - first < JOIN_GROUP ? w->npairs - first : JOIN_GROUP;
	memset(w->pl[g], 0, JOIN_GROUP * 2 * sizeof(*w->pl[g]));
	memset(w->gerr[g], 0, sizeof(w->gerr[g]));
	workers_start(w->pool, (w->g_n[g] + JOIN_TASK - 1) / JOIN_TASK, join_walk_task, w);
}

/* Wait for the job; its error is the lowest failed task's, with that task's message. */
static int
join_group_wait(struct join_walk *w, int g, struct cg_err *err)
{
	size_t t;
	int r = workers_wait(w->pool);

	if (r == 0)
		return 0;
	for (t = 0; t < JOIN_NTASK; t++)
		if (w->gerr[g][t].code != 0) {
			*err = w->gerr[g][t];
			return w->gerr[g][t].code;
		}
	return cg_err_set(err, r, "opening records failed");
}

/* fn over the pairs in order, each group opened by the workers while fn runs over the one before. */
static int
join_walk_calls(struct join_walk *w, join_fn fn, void *ctx, struct cg_err *err)
{
	size_t first = 0, i;
	int g = 0, r = 0, s, running;

	if (w->npairs == 0)
		return 0;
	join_group_start(w, 0, 0);
	while (first < w->npairs) {
		if ((r = join_group_wait(w, g, err)) != 0)
			return r;
		running = first + w->g_n[g] < w->npairs;
		if (running)
			join_group_start(w, 1 - g, first + w->g_n[g]);
		for (i = 0; i < w->g_n[g] && r == 0; i++) {
			const struct store_ref *ref[2];
			Crossgate__RecordPayload *pl[2];
			for (s = 0; s < 2; s++) {
				ref[s] = &w->j->refs[s][join_walk_rec(w, first + i, s)];
				pl[s] = w->pl[g][i * 2 + (size_t)s];
			}
			r = fn(ctx, ref, pl, err);
		}
		if (r != 0) {
			int rw = running ? workers_wait(w->pool) : 0;
			(void)rw;                    /* fn's error is the one returned */
			return r;
		}
		first += w->g_n[g];
		g = 1 - g;
	}
	return 0;
}

static void
join_walk_free(struct join_walk *w)
{
	unsigned i;
	int g, s;
	size_t t;

	workers_free(w->pool);
	for (g = 0; g < 2; g++) {
		free(w->pl[g]);
		for (t = 0; t < JOIN_NTASK; t++)
			pb_arena_free(&w->arena[g][t]);
	}
	for (i = 0; w->scratch != NULL && i < w->nkc; i++) {
		if (w->scratch[i] != NULL)
			sodium_memzero(w->scratch[i], w->scratch_len[i]);
		free(w->scratch[i]);
	}
	free(w->scratch);
	free(w->scratch_len);
	for (s = 0; s < 2; s++)
		free(w->bidx[s]);
	free(w->left);
	join_keys_free(&w->keys);
}

/* Each record's batch, and every batch key. */
static int
join_walk_batches(struct join_walk *w, struct store *st, struct cg_err *err)
{
	const struct join *j = w->j;
	size_t i, last = 0;
	int r, s;

	if ((r = join_keys_load(st, w->storage, &w->keys, err)) != 0)
		return r;
	for (s = 0; s < 2; s++) {
		if ((w->bidx[s] = malloc((j->nref[s] + 1) * sizeof(*w->bidx[s]))) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		for (i = 0; i < j->nref[s]; i++)
			w->bidx[s][i] = join_keys_find(&w->keys, j->pay.rec[s][i].batch, &last);
	}
	return 0;
}

int
join_each(struct store *st, const struct keyfile_key *storage, const struct join *j, int pbit, unsigned sides,
    join_fn fn, void *ctx, uint64_t *no_consent, struct cg_err *err)
{
	uint32_t bit = UINT32_C(1) << pbit;
	struct join_walk w;
	size_t i;
	int r, g;

	memset(&w, 0, sizeof(w));
	w.storage = storage;
	w.j = j;
	w.dbpath = store_path(st);
	w.sides = sides & JOIN_BOTH;
	if (((j->nref[0] > 0 && j->pay.rec[0] == NULL) || (j->nref[1] > 0 && j->pay.rec[1] == NULL)))
		return cg_err_set(err, CG_ERR_ARG, "the join holds no payloads: it was not read by join_run");
	if ((w.left = malloc((j->nref[0] + 1) * sizeof(*w.left))) == NULL)
		goto nomem;
	/* The pairs used, in left record order; the others are counted out for consent. */
	for (i = 0; i < j->nref[0]; i++) {
		if (j->pair[i] == JOIN_NONE)
			continue;
		if (!(j->refs[0][i].consent_bits & bit) || !(j->refs[1][j->pair[i]].consent_bits & bit)) {
			(*no_consent)++;
			continue;
		}
		w.left[w.npairs++] = (uint32_t)i;
	}
	for (g = 0; g < 2; g++) {
		size_t t;
		if ((w.pl[g] = calloc(JOIN_GROUP * 2, sizeof(*w.pl[g]))) == NULL)
			goto nomem;
		for (t = 0; t < JOIN_NTASK; t++)
			if (pb_arena_init(&w.arena[g][t], JOIN_ARENA) != 0)
				goto nomem;
	}
	w.nkc = workers_cpus();
	if ((w.scratch = calloc(w.nkc, sizeof(*w.scratch))) == NULL ||
	    (w.scratch_len = calloc(w.nkc, sizeof(*w.scratch_len))) == NULL)
		goto nomem;
	if ((r = workers_new(w.nkc, &w.pool, err)) != 0)
		goto out;
	if (w.npairs > 0 && (r = join_walk_batches(&w, st, err)) != 0)
		goto out;
	r = join_walk_calls(&w, fn, ctx, err);
	goto out;
nomem:
	r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
out:
	join_walk_free(&w);
	return r;
}

/*
 * join_run_open: while the scan reads on, the workers open each record of
 * the two partners in place (a chunk of JOIN_SCAN_CHUNK rows at a time), so
 * that the AEAD work runs on the cores the single-threaded scan leaves idle.
 * A record that does not open is left sealed, and join_each opens it again
 * when a pair needs it, with the error a lookup gave; one that no pair needs
 * never fails anything.
 */
#define JOIN_SCAN_CHUNK 8192u
#define JOIN_SCAN_TASK 512u

struct join_scan_item {
	struct store_ref ref;                /* copies: the refs may move while the workers run */
	struct store_payload p;              /* p.ct is in the arena, which does not move */
	size_t i, batch;
	int k;
	uint8_t ok;
};

struct join_scan {
	struct join *j;
	const char *dbpath;
	struct join_keys keys;
	struct workers *pool;
	unsigned nthreads;
	unsigned char **scratch;
	size_t *scratch_len;
	struct join_scan_item *it[2];
	size_t n[2];
	int fill, job;                       /* the chunk being filled; the one the workers open, -1 none */
	size_t last, cap[2];
};

static int
join_scan_task(void *arg, size_t task, unsigned worker)
{
	struct join_scan *sc = arg;
	struct join_scan_item *it = sc->it[sc->job];
	size_t i = task * JOIN_SCAN_TASK, end = i + JOIN_SCAN_TASK < sc->n[sc->job] ? i + JOIN_SCAN_TASK :
	    sc->n[sc->job];
	struct cg_err e;

	for (; i < end; i++) {
		struct join_scan_item *x = &it[i];
		unsigned char *pt;
		if (x->batch == SIZE_MAX || !sc->keys.ok[x->batch] || x->p.len < SEAL_TAG_LEN ||
		    (pt = join_scratch(&sc->scratch[worker], &sc->scratch_len[worker], x->p.len)) == NULL)
			continue;
		if (join_open_record(&x->ref, &x->p, sc->j->side[x->k]->id, sc->keys.b[x->batch].batch_id,
		    sc->keys.key[x->batch], sc->dbpath, pt, &e) != 0)
			continue;                /* left sealed: join_each tells why, if a pair needs it */
		memcpy(x->p.ct, pt, x->p.len - SEAL_TAG_LEN);
		sodium_memzero(pt, x->p.len - SEAL_TAG_LEN);
		x->ok = 1;
	}
	return 0;
}

/* Wait for the running chunk and mark what opened. */
static int
join_scan_wait(struct join_scan *sc)
{
	struct join *j = sc->j;
	size_t i;

	if (sc->job < 0)
		return 0;
	(void)!workers_wait(sc->pool);        /* the tasks never fail: a record that does not open stays sealed */
	for (i = 0; i < sc->n[sc->job]; i++) {
		const struct join_scan_item *x = &sc->it[sc->job][i];
		int k = x->k;
		if (x->i >= sc->cap[k]) {
			size_t ncap = sc->cap[k] ? sc->cap[k] : 65536;
			uint8_t *no;
			while (ncap <= x->i)
				ncap *= 2;
			if ((no = realloc(j->opened[k], ncap)) == NULL)
				return CG_ERR_NOMEM;
			memset(no + sc->cap[k], 0, ncap - sc->cap[k]);
			j->opened[k] = no;
			sc->cap[k] = ncap;
		}
		j->opened[k][x->i] = x->ok;
	}
	sc->job = -1;
	return 0;
}

static int
join_scan_row(void *ctx, int k, size_t i, const struct store_ref *ref, const struct store_payload *p)
{
	struct join_scan *sc = ctx;
	struct join_scan_item *x;
	int r;

	if (k < 0 || sc->n[sc->fill] == JOIN_SCAN_CHUNK) {
		/* the chunk is full, or the scan is over: open it while the scan goes on */
		if ((r = join_scan_wait(sc)) != 0)
			return r;
		if (sc->n[sc->fill] > 0) {
			sc->job = sc->fill;
			workers_start(sc->pool, (sc->n[sc->job] + JOIN_SCAN_TASK - 1) / JOIN_SCAN_TASK, join_scan_task, sc);
			sc->fill = 1 - sc->fill;
			sc->n[sc->fill] = 0;
		}
		if (k < 0)
			return join_scan_wait(sc);
	}
	x = &sc->it[sc->fill][sc->n[sc->fill]++];
	x->ref = *ref;
	x->p = *p;
	x->i = i;
	x->k = k;
	x->ok = 0;
	x->batch = join_keys_find(&sc->keys, p->batch, &sc->last);
	return 0;
}

/* join_run and join_run_open: storage NULL leaves the records sealed. */
static int
join_load(struct store *st, const struct policy *pol, const struct keyfile_key *storage, const char *left,
    const char *right, struct join *j, struct cg_err *err)
{
	struct join_scan sc;
	const char *ids[2];
	double t0;
	unsigned w;
	int r, s;

	memset(j, 0, sizeof(*j));
	memset(&sc, 0, sizeof(sc));
	sc.job = -1;
	if (pol->npartners < 2 && (left == NULL || right == NULL))
		return cg_err_set(err, CG_ERR_POLICY, "the policy has fewer than two partners: nothing to join");
	j->no_phone_stage = pol->phone_never;
	j->side[0] = policy_partner_find(pol, left ? left : pol->partners[0].id);
	j->side[1] = policy_partner_find(pol, right ? right : pol->partners[1].id);
	if (j->side[0] == NULL || j->side[1] == NULL || j->side[0] == j->side[1])
		return cg_err_set(err, CG_ERR_ARG, "the join needs two different partners of the policy");

	t0 = join_now();
	ids[0] = j->side[0]->id;
	ids[1] = j->side[1]->id;
	if (storage != NULL) {
		sc.j = j;
		sc.dbpath = store_path(st);
		sc.nthreads = workers_cpus();
		if ((r = join_keys_load(st, storage, &sc.keys, err)) != 0 ||
		    (r = workers_new(sc.nthreads, &sc.pool, err)) != 0)
			goto out;
		if ((sc.scratch = calloc(sc.nthreads, sizeof(*sc.scratch))) == NULL ||
		    (sc.scratch_len = calloc(sc.nthreads, sizeof(*sc.scratch_len))) == NULL ||
		    (sc.it[0] = malloc(JOIN_SCAN_CHUNK * sizeof(*sc.it[0]))) == NULL ||
		    (sc.it[1] = malloc(JOIN_SCAN_CHUNK * sizeof(*sc.it[1]))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if ((r = store_refs_load_pair(st, ids, j->refs, j->nref, &j->pay, storage ? join_scan_row : NULL, &sc,
	    err)) != 0) {
		if (r == CG_ERR_NOMEM && err != NULL && err->code != CG_ERR_NOMEM)
			cg_err_set(err, r, "out of memory opening records");
		goto out;
	}
	/* every record has its flag: the arrays cover the partners' records */
	for (s = 0; storage != NULL && s < 2; s++)
		if (sc.cap[s] < j->nref[s] + 1) {
			uint8_t *no = realloc(j->opened[s], j->nref[s] + 1);
			if (no == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			memset(no + sc.cap[s], 0, j->nref[s] + 1 - sc.cap[s]);
			j->opened[s] = no;
		}
	j->load_seconds = join_now() - t0;
	t0 = join_now();
	r = join_pairs(j, err);
	j->join_seconds = join_now() - t0;
out:
	workers_free(sc.pool);
	for (w = 0; sc.scratch != NULL && w < sc.nthreads; w++) {
		if (sc.scratch[w] != NULL)
			sodium_memzero(sc.scratch[w], sc.scratch_len[w]);
		free(sc.scratch[w]);
	}
	free(sc.scratch);
	free(sc.scratch_len);
	free(sc.it[0]);
	free(sc.it[1]);
	join_keys_free(&sc.keys);
	if (r != 0)
		join_free(j);
	return r;
}

int
join_run_open(struct store *st, const struct policy *pol, const struct keyfile_key *storage, const char *left,
    const char *right, struct join *j, struct cg_err *err)
{
	return join_load(st, pol, storage, left, right, j, err);
}

int
join_run(struct store *st, const struct policy *pol, const char *left, const char *right, struct join *j,
    struct cg_err *err)
{
	return join_load(st, pol, NULL, left, right, j, err);
}
