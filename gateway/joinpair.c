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

	uint32_t tag;

	crypto_shorthash((unsigned char *)&h, tok, TOKEN_LEN, join_hkey);
	tag = (uint32_t)(h >> 32);
	for (s = (size_t)h & m->mask;; s = (s + 1) & m->mask) {
		(*m->probes)++;
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
	struct join *j;                      /* for join_side_thread */
	int s, r;
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
	    join_map_init(&sd->emap, n, &sd->probes) != 0 || join_map_init(&sd->pmap, n, &sd->probes) != 0)
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

/* The two sides' users are independent: one side is grouped on a thread of its own. */
static void *
join_side_thread(void *arg)
{
	struct join_side *sd = arg;

	sd->r = join_side_users(sd->j, sd->s, sd);
	return NULL;
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
	pthread_t th;
	int r, s, threaded = 0;

	if (sodium_init() < 0)
		return cg_err_set(err, CG_ERR_INTERNAL, "libsodium cannot initialize: no key for the join's tables");
	pthread_once(&join_hkey_once, join_hkey_init);
	memset(sd, 0, sizeof(sd));
	j->matched = j->superseded = j->ambiguous = 0;
	for (s = 0; s < 2; s++)
		if (j->nref[s] >= JOIN_NONE - 1)
			return cg_err_set(err, CG_ERR_LIMIT, "too many records for one join");
	for (s = 0; s < 2; s++) {
		sd[s].j = j;
		sd[s].s = s;
	}
	/* a thread only where it pays: small joins (tests draw thousands) stay on this one */
	if (j->nref[0] + j->nref[1] < 65536 || pthread_create(&th, NULL, join_side_thread, &sd[0]) != 0)
		join_side_thread(&sd[0]);
	else
		threaded = 1;
	join_side_thread(&sd[1]);
	if (threaded)
		pthread_join(th, NULL);
	if (sd[0].r != 0 || sd[1].r != 0)
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
	if (!j->no_phone_stage && (r = join_phones(j, sd, &phone_pairs)) != 0)
		goto nomem;
	j->matched += phone_pairs;
	if ((j->pair = malloc((j->nref[0] + 1) * sizeof(*j->pair))) == NULL)
		goto nomem;
	for (i = 0; i < j->nref[0]; i++)
		j->pair[i] = JOIN_NONE;
	for (i = 0; i < sd[0].nu; i++)
		if (sd[0].u[i].pair != JOIN_NONE)
			j->pair[sd[0].u[i].rep] = sd[1].u[sd[0].u[i].pair].rep;
	r = 0;
	goto out;
nomem:
	r = cg_err_set(err, CG_ERR_NOMEM, "out of memory joining");
out:
	for (s = 0; s < 2; s++) {
		j->probes += sd[s].probes;
		j->superseded += sd[s].superseded;
		join_side_free(&sd[s]);
	}
	return r;
}
