/*
 * joinpair.c - the pairing rule of join.h (join_pairs): each partner's
 * records grouped into users, then users paired by email, then by phone.
 * Split from join.c, which reads and opens the records.
 */
#include "gateway/join.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "base/workers.h"
#include "crypto/token.h"
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

/*
 * Open-addressing map from a 32-byte token (pointed to, not copied) to an
 * index.  The slot keeps 32 more bits of the hash (in what would be
 * padding): a probe compares tokens only when they match, so most probes
 * never touch the records the tokens live in.
 */
struct join_slot {
	const unsigned char *tok;
	uint32_t val;
	uint32_t tag;
};

struct join_map {
	struct join_slot *slot;
	size_t mask;
};

static int
join_map_init(struct join_map *m, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2 + 16)
		cap *= 2;
	/*
	 * Not calloc: a large calloc maps zero pages on first touch, which
	 * here comes in random order, one page fault per lookup, and a prefetch
	 * of a page not yet mapped is dropped.  One sequential pass maps them
	 * all first: the users stage of a 1M x 1M join took half the time.
	 */
	if ((m->slot = malloc(cap * sizeof(*m->slot))) == NULL)
		return CG_ERR_NOMEM;
	memset(m->slot, 0, cap * sizeof(*m->slot));
	m->mask = cap - 1;
	return 0;
}

static uint64_t
join_hash(const unsigned char *tok)
{
	uint64_t h;

	crypto_shorthash((unsigned char *)&h, tok, TOKEN_LEN, join_hkey);
	return h;
}

/*
 * The value of `tok` (its hash h); if absent, insert it with `insert`
 * unless that is JOIN_NONE.  Returns the value found (or inserted), or
 * JOIN_NONE.  Every slot looked at is counted in *probes: each task counts
 * its own.
 */
static uint32_t
join_map_geth(struct join_map *m, const unsigned char *tok, uint64_t h, uint32_t insert, uint64_t *probes)
{
	uint32_t tag = (uint32_t)(h >> 32);
	size_t s;

	for (s = (size_t)h & m->mask;; s = (s + 1) & m->mask) {
		(*probes)++;
		if (m->slot[s].tok == NULL) {
			if (insert == JOIN_NONE)
				return JOIN_NONE;
			m->slot[s].tok = tok;
			m->slot[s].val = insert;
			m->slot[s].tag = tag;
			return insert;
		}
		if (m->slot[s].tag == tag && memcmp(m->slot[s].tok, tok, TOKEN_LEN) == 0)
			return m->slot[s].val;
	}
}

/*
 * The tables are far larger than the caches, so nearly every lookup waits
 * for memory.  The loops below hash a block of JOIN_AHEAD keys and ask for
 * their slots first, then look them up in order: the waits overlap, and
 * the lookups (and so every result) are those of the plain loop.
 */
#define JOIN_AHEAD 16u

static void
join_map_prefetch(const struct join_map *m, uint64_t h)
{
	__builtin_prefetch(&m->slot[(size_t)h & m->mask]);
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
	uint64_t probes, superseded;         /* this side's, added to the join's at the end */
};

static void
join_side_free(struct join_side *sd)
{
	free(sd->u);
	free(sd->user_of);
	free(sd->emap.slot);
	free(sd->pmap.slot);
}

/* The keys of records i.. (a block), hashed, and their slots asked for. */
static void
join_side_ahead(const struct store_ref *refs, size_t i, size_t n, const struct join_side *sd, uint64_t h[JOIN_AHEAD])
{
	size_t k;

	for (k = 0; k < JOIN_AHEAD && i + k < n; k++) {
		const struct store_ref *r = &refs[i + k];
		if (!r->has_email && !r->has_phone)
			continue;
		h[k] = join_hash(r->has_email ? r->email : r->phone);
		join_map_prefetch(r->has_email ? &sd->emap : &sd->pmap, h[k]);
	}
}

/* Group one partner's records into users by key; a user's newest record represents it. */
static int
join_side_users(struct join *j, int s, struct join_side *sd)
{
	const struct store_ref *refs = j->refs[s];
	size_t n = j->nref[s], i, ne = 0, np = 0;
	uint64_t h[JOIN_AHEAD];

	/* each table sized for its own keys: both are zeroed in full (join_map_init) */
	for (i = 0; i < n; i++) {
		ne += refs[i].has_email;
		np += !refs[i].has_email && refs[i].has_phone;
	}
	if ((sd->u = malloc((n + 1) * sizeof(*sd->u))) == NULL ||
	    (sd->user_of = malloc((n + 1) * sizeof(*sd->user_of))) == NULL ||
	    join_map_init(&sd->emap, ne) != 0 || join_map_init(&sd->pmap, np) != 0)
		return CG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		const struct store_ref *r = &refs[i];
		struct join_map *m = r->has_email ? &sd->emap : &sd->pmap;
		uint32_t u;

		if (i % JOIN_AHEAD == 0)
			join_side_ahead(refs, i, n, sd, h);
		sd->user_of[i] = JOIN_NONE;
		if (!r->has_email && !r->has_phone)
			continue;
		u = join_map_geth(m, r->has_email ? r->email : r->phone, h[i % JOIN_AHEAD], (uint32_t)sd->nu,
		    &sd->probes);
		if (u == sd->nu) {
			sd->u[u].rep = (uint32_t)i;
			sd->u[u].phone = JOIN_NONE;
			sd->u[u].pair = JOIN_NONE;
			sd->u[u].by_email = r->has_email;
			sd->u[u].epaired = 0;
			sd->u[u].phones = 0;
			sd->nu++;
		} else {
			sd->superseded++;    /* one of the two is an older record of the user */
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
 * The stages run as jobs of a worker pool, one thread per core on a large
 * join.  Each stage is split so that no two tasks write the same user:
 *   - users: one task per side;
 *   - email: tasks over ranges of left users; an email has one user a
 *     side, so each right user is written by one task at most;
 *   - phone: one task per partition of the phones (by their keyed hash),
 *     each with its own buckets.  A user paired here has exactly one phone,
 *     hence one partition; every other field a task reads was written by
 *     an earlier stage.
 * Each task counts into its own slot, summed at the end, so the pairs and
 * the counters are those of the sequential walk.
 */
#define JOIN_SMALL 65536u                /* records: below this, one thread (tests draw thousands) */
#define JOIN_EMAIL_TASKS 64u

struct join_part {
	struct join_bucket *bk;
	size_t nb;
	struct join_map bmap;
	uint64_t probes, pairs, ambiguous;
};

struct join_stage {
	struct join *j;
	struct join_side *sd;
	unsigned nparts;
	uint64_t *ph[2];                     /* record -> its phone's hash (records with a phone and a user) */
	struct join_part *part;
	uint64_t eprobes[JOIN_EMAIL_TASKS], ematched[JOIN_EMAIL_TASKS];
};

static unsigned
join_part_of(uint64_t h, unsigned nparts)
{
	/* the tag's bits: the slot index comes from the low bits, which stay spread within a partition */
	return (unsigned)((h >> 32) % nparts);
}

static int
join_users_task(void *arg, size_t task, unsigned worker)
{
	struct join_stage *st = arg;

	(void)worker;
	return join_side_users(st->j, (int)task, &st->sd[task]);
}

/* The email stage: the users of one email on both sides. */
static int
join_email_task(void *arg, size_t task, unsigned worker)
{
	struct join_stage *st = arg;
	struct join_side *sd = st->sd;
	size_t per = (sd[0].nu + JOIN_EMAIL_TASKS - 1) / JOIN_EMAIL_TASKS, i = task * per;
	size_t end = i + per < sd[0].nu ? i + per : sd[0].nu;

	uint64_t h[JOIN_AHEAD];
	size_t k;

	(void)worker;
	for (; i < end; i++) {
		uint32_t ru;
		if ((i - task * per) % JOIN_AHEAD == 0)
			for (k = 0; k < JOIN_AHEAD && i + k < end; k++)
				if (sd[0].u[i + k].by_email) {
					h[k] = join_hash(st->j->refs[0][sd[0].u[i + k].rep].email);
					join_map_prefetch(&sd[1].emap, h[k]);
				}
		if (!sd[0].u[i].by_email)
			continue;
		ru = join_map_geth(&sd[1].emap, st->j->refs[0][sd[0].u[i].rep].email, h[(i - task * per) % JOIN_AHEAD],
		    JOIN_NONE, &st->eprobes[task]);
		if (ru != JOIN_NONE) {
			join_link(sd, (uint32_t)i, ru);
			sd[0].u[i].epaired = sd[1].u[ru].epaired = 1;
			st->ematched[task]++;
		}
	}
	return 0;
}

/* Each phone's keyed hash, once: the partitions and their tables use it. */
static int
join_phash_task(void *arg, size_t task, unsigned worker)
{
	struct join_stage *st = arg;
	const struct join *j = st->j;
	int s = (int)(task & 1);
	size_t n = j->nref[s], per = (n + 15) / 16, i = (task >> 1) * per, end = i + per < n ? i + per : n;

	(void)worker;
	for (; i < end; i++)
		if (j->refs[s][i].has_phone && st->sd[s].user_of[i] != JOIN_NONE)
			st->ph[s][i] = join_hash(j->refs[s][i].phone);
	return 0;
}

/*
 * The phone stage, over one partition of the phones: a phone pairs two
 * users only if, among the users not paired by email, it is carried by
 * exactly one compatible pair (at least one of the two without an email: a
 * phone never pairs two different emails), and each of the two has that
 * one phone.
 */
static int
join_phone_task(void *arg, size_t task, unsigned worker)
{
	struct join_stage *st = arg;
	const struct join *j = st->j;
	struct join_side *sd = st->sd;
	struct join_part *pt = &st->part[task];
	size_t n = 0, i;
	int s;

	(void)worker;
	for (s = 0; s < 2; s++)
		for (i = 0; i < j->nref[s]; i++)
			if (j->refs[s][i].has_phone && sd[s].user_of[i] != JOIN_NONE &&
			    join_part_of(st->ph[s][i], st->nparts) == task)
				n++;
	if ((pt->bk = malloc((n + 1) * sizeof(*pt->bk))) == NULL || join_map_init(&pt->bmap, n) != 0)
		return CG_ERR_NOMEM;
	for (s = 0; s < 2; s++) {
		for (i = 0; i < j->nref[s]; i++) {
			uint32_t u = sd[s].user_of[i], b;
			size_t a = i + JOIN_AHEAD;
			if (a < j->nref[s] && sd[s].user_of[a] != JOIN_NONE && j->refs[s][a].has_phone)
				join_map_prefetch(&pt->bmap, st->ph[s][a]);
			if (u == JOIN_NONE || !j->refs[s][i].has_phone || join_part_of(st->ph[s][i], st->nparts) != task)
				continue;
			b = join_map_geth(&pt->bmap, j->refs[s][i].phone, st->ph[s][i], (uint32_t)pt->nb, &pt->probes);
			if (b == pt->nb) {
				memset(&pt->bk[b], 0xff, sizeof(pt->bk[b]));
				pt->bk[b].nemail[0] = pt->bk[b].nemail[1] = pt->bk[b].nany[0] = pt->bk[b].nany[1] = 0;
				pt->nb++;
			}
			join_bucket_add(&pt->bk[b], s, u, &sd[s].u[u], sd[s].u[u].epaired);
		}
	}
	for (i = 0; i < pt->nb; i++) {
		const struct join_bucket *b = &pt->bk[i];
		unsigned lp = b->ponly[0] != JOIN_NONE, rp = b->ponly[1] != JOIN_NONE;
		unsigned right = rp + b->nemail[1];
		uint32_t lu, ru;

		/* compatible pairs: phone-only left x any right, emailed left x phone-only right */
		if (lp * right + (unsigned)b->nemail[0] * rp == 0)
			continue;
		if (lp * right + (unsigned)b->nemail[0] * rp > 1) {
			pt->ambiguous++;
			continue;
		}
		lu = lp ? b->ponly[0] : b->email1[0];
		ru = lp ? (rp ? b->ponly[1] : b->email1[1]) : b->ponly[1];
		if (sd[0].u[lu].phones != 1 || sd[1].u[ru].phones != 1) {
			pt->ambiguous++;         /* a user with two phones could pair twice */
			continue;
		}
		join_link(sd, lu, ru);
		pt->pairs++;
	}
	/* Paired by email, but the phone is another user's on the other side: counted, never followed. */
	for (s = 0; s < 2; s++) {
		for (i = 0; i < sd[s].nu; i++) {
			const struct join_user *us = &sd[s].u[i], *ua;
			uint64_t h;
			uint32_t b;
			if (i + JOIN_AHEAD < sd[s].nu && (ua = &sd[s].u[i + JOIN_AHEAD])->epaired && ua->phone != JOIN_NONE)
				join_map_prefetch(&pt->bmap, st->ph[s][ua->phone]);
			if (!us->epaired || us->phone == JOIN_NONE)
				continue;
			h = st->ph[s][us->phone];
			if (join_part_of(h, st->nparts) != task)
				continue;
			b = join_map_geth(&pt->bmap, j->refs[s][us->phone].phone, h, JOIN_NONE, &pt->probes);
			if (b != JOIN_NONE && (pt->bk[b].nany[1 - s] > 1 ||
			    (pt->bk[b].nany[1 - s] == 1 && pt->bk[b].any[1 - s] != us->pair)))
				pt->ambiguous++;
		}
	}
	return 0;
}

static int
join_stage_run(struct workers *pool, size_t ntasks, workers_fn fn, struct join_stage *st)
{
	workers_start(pool, ntasks, fn, st);
	return workers_wait(pool);
}

static int
join_phones(struct workers *pool, struct join_stage *st)
{
	unsigned t;
	int r, s;

	st->nparts = workers_count(pool);
	for (s = 0; s < 2; s++)
		if ((st->ph[s] = malloc((st->j->nref[s] + 1) * sizeof(*st->ph[s]))) == NULL)
			return CG_ERR_NOMEM;
	if ((st->part = calloc(st->nparts, sizeof(*st->part))) == NULL)
		return CG_ERR_NOMEM;
	if ((r = join_stage_run(pool, 32, join_phash_task, st)) != 0 ||
	    (r = join_stage_run(pool, st->nparts, join_phone_task, st)) != 0)
		return r;
	for (t = 0; t < st->nparts; t++) {
		st->j->matched += st->part[t].pairs;
		st->j->ambiguous += st->part[t].ambiguous;
		st->j->probes += st->part[t].probes;
	}
	return 0;
}

static void
join_stage_free(struct join_stage *st)
{
	unsigned t;

	for (t = 0; st->part != NULL && t < st->nparts; t++) {
		free(st->part[t].bk);
		free(st->part[t].bmap.slot);
	}
	free(st->part);
	free(st->ph[0]);
	free(st->ph[1]);
}

int
join_pairs(struct join *j, struct cg_err *err)
{
	struct join_side sd[2];
	struct join_stage st;
	struct workers *pool = NULL;
	size_t i;
	unsigned t;
	int r, s;

	if (sodium_init() < 0)
		return cg_err_set(err, CG_ERR_INTERNAL, "libsodium cannot initialize: no key for the join's tables");
	pthread_once(&join_hkey_once, join_hkey_init);
	memset(sd, 0, sizeof(sd));
	memset(&st, 0, sizeof(st));
	j->matched = j->superseded = j->ambiguous = 0;
	for (s = 0; s < 2; s++)
		if (j->nref[s] >= JOIN_NONE - 1)
			return cg_err_set(err, CG_ERR_LIMIT, "too many records for one join");
	st.j = j;
	st.sd = sd;
	t = j->threads ? j->threads : j->nref[0] + j->nref[1] < JOIN_SMALL ? 1 : workers_cpus();
	if ((r = workers_new(t, &pool, err)) != 0)
		return r;
	if ((r = join_stage_run(pool, 2, join_users_task, &st)) != 0 ||
	    (r = join_stage_run(pool, JOIN_EMAIL_TASKS, join_email_task, &st)) != 0)
		goto fail;
	for (t = 0; t < JOIN_EMAIL_TASKS; t++) {
		j->matched += st.ematched[t];
		j->probes += st.eprobes[t];
	}
	if (!j->no_phone_stage && (r = join_phones(pool, &st)) != 0)
		goto fail;
	if ((j->pair = malloc((j->nref[0] + 1) * sizeof(*j->pair))) == NULL) {
		r = CG_ERR_NOMEM;
		goto fail;
	}
	for (i = 0; i < j->nref[0]; i++)
		j->pair[i] = JOIN_NONE;
	for (i = 0; i < sd[0].nu; i++)
		if (sd[0].u[i].pair != JOIN_NONE)
			j->pair[sd[0].u[i].rep] = sd[1].u[sd[0].u[i].pair].rep;
	r = 0;
	goto out;
fail:
	r = cg_err_set(err, r, r == CG_ERR_NOMEM ? "out of memory joining" : "joining failed");
out:
	workers_free(pool);
	join_stage_free(&st);
	for (s = 0; s < 2; s++) {
		j->probes += sd[s].probes;
		j->superseded += sd[s].superseded;
		join_side_free(&sd[s]);
	}
	return r;
}
