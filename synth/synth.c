/*
 * synth.c - synthetic K/G demo data with an exact ground truth.
 *
 * Every random choice is a pure function of (seed, person, stream): a person's
 * identity, a platform's plan for that person (identifier presence, validity,
 * duplicate, consent, consent time) and the messy writing of each row are drawn
 * from their own splitmix64 stream.  The truth is computed from the plans in
 * one pass, the rows are written in a shuffled order in another, and nothing
 * per row is stored but the order itself.
 */
#include "synth/synth.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Canonical phones are "1" + 2 prefix digits + an 8-digit bijection of the
 * person, and user ids a bijection modulo 10^9: both need room. */
#define SYNTH_USERS_MAX 40000000ULL

#define SYNTH_P_MATCH     1u
#define SYNTH_P_ANALYTICS 2u
#define SYNTH_P_MARKETING 4u

enum synth_platform { SYNTH_K = 0, SYNTH_G = 1 };

/* Streams: one independent generator per (person, purpose). */
enum synth_stream {
	SYNTH_S_PERSON = 1,
	SYNTH_S_PLAN_K,
	SYNTH_S_PLAN_G,
	SYNTH_S_FEAT_K,
	SYNTH_S_FEAT_G,
	SYNTH_S_CONV,
	SYNTH_S_ROW,        /* + platform * 2 + variant */
	SYNTH_S_SHUFFLE = 16,
	SYNTH_S_KEYS,
	SYNTH_S_SEGMENT,
	SYNTH_S_SHARE,      /* whether a person gives another's phone, and whose */
};

/* Ways a row is malformed; each makes the agent reject the whole row. */
enum synth_bad {
	SYNTH_BAD_NONE = 0,
	SYNTH_BAD_EMAIL_TWO_AT,
	SYNTH_BAD_EMAIL_NO_AT,
	SYNTH_BAD_PHONE_LETTERS,
	SYNTH_BAD_AGE_TEXT,
	SYNTH_BAD_AGE_HIGH,
	SYNTH_BAD_AGE_NEG,
	SYNTH_BAD_PURPOSE,
	SYNTH_BAD_TIME_WORD,
	SYNTH_BAD_TIME_DATE,
	SYNTH_BAD_CATEGORY,
	SYNTH_BAD_MISSING_FIELD,
	SYNTH_BAD_KINDS = SYNTH_BAD_MISSING_FIELD,
};

struct synth_rng {
	uint64_t s;
};

struct synth_ctx {
	const struct synth_opts *o;
	uint64_t n, s, total;            /* people per platform, shared, distinct */
	uint64_t email_mod, email_mul, email_add;
	uint64_t phone_mul, phone_add;
	uint64_t uid_mul[2], uid_add[2], uid_inv[2];
};

struct synth_person {
	char local[48];                  /* canonical local part of the email */
	size_t local_len;
	int domain;
	char phone[12];                  /* 11 national digits, NUL-terminated */
	int age;
	int region;
};

struct synth_plan {
	int has_email, has_phone;
	enum synth_bad bad;
	int nrows;                       /* 1, or 2 for a duplicated person */
	unsigned consent[2];
	int64_t t[2];
	int latest;                      /* index of the row that wins */
};

struct synth_kfeat {
	int64_t spend, learn, courses, conv;
	int cat;
};

struct synth_gfeat {
	int64_t watch, gift, streams;
	int cat;
};

/* A row is assembled here and written with one fwrite. */
struct synth_buf {
	char b[1024];
	size_t n;
};

static const char *const synth_k_header =
    "user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,"
    "courses_bought,top_course_category,conversion_value_cents";
static const char *const synth_g_header =
    "user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,"
    "streams_followed,top_game_category";

static const char *const synth_domains[] = {
	"gmail.com", "qq.com", "163.com", "outlook.com",
	"126.com", "sina.com", "hotmail.com", "foxmail.com", "icloud.com", "yahoo.com",
};
/* Per mille: gmail 35%, qq 25%, 163 15%, outlook 10%, the rest 15%. */
static const int synth_domain_w[] = { 350, 250, 150, 100, 40, 30, 30, 25, 15, 10 };
#define SYNTH_GMAIL 0
#define SYNTH_QQ 1

static const char *const synth_regions[] = {
	"CN-GD", "CN-JS", "CN-ZJ", "CN-SH", "CN-BJ", "CN-SC", "CN-HB", "CN-HN",
	"CN-HE", "CN-CQ", "CN-TJ", "CN-GX", "CN-HI", "CN-XZ", "CN-QH", "CN-NX",
};
static const int synth_region_w[] = {
	160, 100, 100, 95, 95, 80, 65, 65, 55, 55, 40, 50, 37, 1, 1, 1,
};

static const char *const synth_course_cats[] = {
	"programming", "finance", "language", "design", "history", "science", "music",
};
#define SYNTH_PROGRAMMING 0

static const char *const synth_game_cats[] = {
	"moba", "fps", "rpg", "strategy", "sports", "casual", "card",
};
#define SYNTH_STRATEGY 3

/*
 * The planted segments (synth.h): each tilts the category weights too, so
 * that segments have dominant categories to find.  Strategy keeps a low
 * weight everywhere: the planted affinity must stay the one that stands out.
 */
const struct synth_segment synth_segments[SYNTH_SEGMENTS] = {
	{ "learners", 0.35, 2400.0, 250.0, 4.0 },
	{ "gamers", 0.40, 150.0, 4000.0, 40.0 },
	{ "all-round", 0.25, 2400.0, 4000.0, 12.0 },
};
static const int synth_course_w[SYNTH_SEGMENTS][7] = {
	{ 30, 24, 18, 10, 6, 8, 4 },
	{ 14, 10, 26, 14, 10, 10, 16 },
	{ 22, 18, 20, 12, 8, 12, 8 },
};
static const int synth_game_w[SYNTH_SEGMENTS][7] = {
	{ 28, 18, 15, 10, 9, 14, 6 },
	{ 40, 26, 14, 6, 6, 6, 2 },
	{ 18, 14, 26, 10, 14, 12, 6 },
};

static const char *const synth_surnames[] = {
	"wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou",
	"xu", "sun", "ma", "zhu", "hu", "guo", "he", "lin", "luo", "gao",
	"zheng", "liang", "xie", "tang", "han", "cao", "deng", "feng", "song", "ye",
};
static const char *const synth_given[] = {
	"wei", "fang", "na", "min", "jing", "lei", "qiang", "jun", "yang", "yong",
	"yan", "jie", "tao", "ming", "chao", "xiu", "ying", "hua", "hui", "xin",
	"yu", "hao", "ting", "bo", "kai", "lan", "peng", "rui", "shan", "zihan",
	"alice", "kevin", "tony", "lucy", "jack", "coco", "leo", "sunny", "amy", "eric",
};
static const char *const synth_tags[] = {
	"news", "shop", "k", "work", "2024", "promo", "x1", "stream", "study",
};
static const char *const synth_phone_prefix[] = {
	"30", "31", "32", "33", "34", "35", "36", "37", "38", "39", "45", "47",
	"50", "51", "52", "53", "55", "56", "57", "58", "59", "66", "70", "71",
	"73", "75", "76", "77", "78", "80", "81", "82", "83", "84", "85", "86",
	"87", "88", "89", "91", "93", "95", "96", "97", "98", "99",
};

#define SYNTH_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* 2023-01-01T00:00:00Z and 2025-07-01T00:00:00Z. */
#define SYNTH_T_START 1672531200LL
#define SYNTH_T_END   1751328000LL
#define SYNTH_DAY     86400LL

static uint64_t
synth_mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
synth_rng_init(struct synth_rng *r, uint64_t seed, uint64_t person, uint64_t stream)
{
	r->s = synth_mix(seed ^ synth_mix(person * 0x100000001b3ULL + stream * 0xd6e8feb86659fd93ULL));
}

/* splitmix64 */
static uint64_t
synth_next(struct synth_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double
synth_unif(struct synth_rng *r)
{
	return (double)(synth_next(r) >> 11) * 0x1.0p-53;
}

/* [0, n): multiply-shift; the tiny bias is irrelevant for test data. */
static uint64_t
synth_below(struct synth_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)synth_next(r) * n) >> 64);
}

static int
synth_chance(struct synth_rng *r, double p)
{
	return synth_unif(r) < p;
}

static double
synth_normal(struct synth_rng *r)
{
	double u1 = synth_unif(r), u2 = synth_unif(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int64_t
synth_clamp(double v, int64_t lo, int64_t hi)
{
	if (!(v > (double)lo))
		return lo;
	if (v >= (double)hi)
		return hi;
	return (int64_t)llround(v);
}

static int64_t
synth_lognormal(struct synth_rng *r, double median, double sigma, int64_t hi)
{
	return synth_clamp(median * exp(sigma * synth_normal(r)), 0, hi);
}

static int
synth_weighted(struct synth_rng *r, const int *w, size_t n)
{
	int total = 0, x;
	size_t i;

	for (i = 0; i < n; i++)
		total += w[i];
	x = (int)synth_below(r, (uint64_t)total);
	for (i = 0; i + 1 < n; i++) {
		if (x < w[i])
			return (int)i;
		x -= w[i];
	}
	return (int)(n - 1);
}

/* Multiplier for a bijection modulo a power of ten: coprime to 10. */
static uint64_t
synth_unit_mod10(uint64_t x, uint64_t mod)
{
	x %= mod;
	if (x % 2 == 0)
		x++;
	if (x % 5 == 0)
		x += 2;
	return x % mod;
}

static uint64_t
synth_mulmod(uint64_t a, uint64_t b, uint64_t m)
{
	return (uint64_t)(((unsigned __int128)a * b) % m);
}

static uint64_t
synth_inverse(uint64_t a, uint64_t m)
{
	int64_t t = 0, nt = 1, q, tmp;
	int64_t r = (int64_t)m, nr = (int64_t)a;

	while (nr != 0) {
		q = r / nr;
		tmp = t - q * nt; t = nt; nt = tmp;
		tmp = r - q * nr; r = nr; nr = tmp;
	}
	if (t < 0)
		t += (int64_t)m;
	return (uint64_t)t;
}

void
synth_opts_default(struct synth_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->users = 50000;
	o->shared_frac = 0.30;
	o->no_match_frac = 0.10;
	o->no_analytics_frac = 0.10;
	o->bad_frac = 0.002;
	o->dup_frac = 0.01;
	o->phone_share_frac = 0;
	o->seed = 1;
}

static int
synth_frac_ok(double x)
{
	return x >= 0.0 && x <= 1.0;   /* false for NaN */
}

static int
synth_check_opts(const struct synth_opts *o, struct cg_err *err)
{
	if (o->users > SYNTH_USERS_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "synth: users must be at most %llu",
		    (unsigned long long)SYNTH_USERS_MAX);
	if (!synth_frac_ok(o->shared_frac))
		return cg_err_set(err, CG_ERR_ARG, "synth: shared_frac must be within [0, 1]");
	if (!synth_frac_ok(o->no_match_frac))
		return cg_err_set(err, CG_ERR_ARG, "synth: no_match_frac must be within [0, 1]");
	if (!synth_frac_ok(o->no_analytics_frac))
		return cg_err_set(err, CG_ERR_ARG, "synth: no_analytics_frac must be within [0, 1]");
	if (!synth_frac_ok(o->bad_frac))
		return cg_err_set(err, CG_ERR_ARG, "synth: bad_frac must be within [0, 1]");
	if (!synth_frac_ok(o->phone_share_frac))
		return cg_err_set(err, CG_ERR_ARG, "synth: phone_share_frac must be within [0, 1]");
	if (!synth_frac_ok(o->dup_frac))
		return cg_err_set(err, CG_ERR_ARG, "synth: dup_frac must be within [0, 1]");
	if (o->no_match_frac + o->no_analytics_frac > 1.0)
		return cg_err_set(err, CG_ERR_ARG,
		    "synth: no_match_frac + no_analytics_frac must be at most 1");
	if (o->bad_frac + o->dup_frac > 1.0)
		return cg_err_set(err, CG_ERR_ARG, "synth: bad_frac + dup_frac must be at most 1");
	return 0;
}

static void
synth_ctx_init(struct synth_ctx *c, const struct synth_opts *o)
{
	struct synth_rng r;
	int i;

	memset(c, 0, sizeof(*c));
	c->o = o;
	c->n = o->users;
	c->s = (uint64_t)llround(o->shared_frac * (double)o->users);
	if (c->s > c->n)
		c->s = c->n;
	c->total = 2 * c->n - c->s;
	/* Short email numbers for small sets, still one per person. */
	c->email_mod = 1000;
	while (c->email_mod < c->total)
		c->email_mod *= 10;
	synth_rng_init(&r, o->seed, 0, SYNTH_S_KEYS);
	c->email_mul = synth_unit_mod10(synth_next(&r), c->email_mod);
	c->email_add = synth_next(&r) % c->email_mod;
	c->phone_mul = synth_unit_mod10(synth_next(&r), 100000000ULL);
	c->phone_add = synth_next(&r) % 100000000ULL;
	for (i = 0; i < 2; i++) {
		c->uid_mul[i] = synth_unit_mod10(synth_next(&r), 1000000000ULL);
		c->uid_add[i] = synth_next(&r) % 1000000000ULL;
		c->uid_inv[i] = synth_inverse(c->uid_mul[i], 1000000000ULL);
	}
}

/* Platform-local index -> person.  G's first s people are K's first s. */
static uint64_t
synth_person_of(const struct synth_ctx *c, int platform, uint64_t local)
{
	if (platform == SYNTH_K || local < c->s)
		return local;
	return c->n + (local - c->s);
}

static uint64_t
synth_uid(const struct synth_ctx *c, int platform, uint64_t local)
{
	return 1000000000ULL +
	    (synth_mulmod(local, c->uid_mul[platform], 1000000000ULL) + c->uid_add[platform]) %
	    1000000000ULL;
}

static size_t
synth_u64_str(uint64_t v, char *out)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

static void
synth_person_base(const struct synth_ctx *c, uint64_t p, struct synth_person *pe)
{
	struct synth_rng r;
	const char *sur, *giv;
	uint64_t num;
	size_t n = 0, k;
	double u;
	int style;

	synth_rng_init(&r, c->o->seed, p, SYNTH_S_PERSON);
	pe->domain = synth_weighted(&r, synth_domain_w, SYNTH_NELEM(synth_domain_w));
	num = (synth_mulmod(p, c->email_mul, c->email_mod) + c->email_add) % c->email_mod;
	sur = synth_surnames[synth_below(&r, SYNTH_NELEM(synth_surnames))];
	giv = synth_given[synth_below(&r, SYNTH_NELEM(synth_given))];
	style = (int)synth_below(&r, 4);
	if (pe->domain == SYNTH_QQ && synth_chance(&r, 0.4)) {
		/* QQ numbers are addresses of their own: unique because num is. */
		n = synth_u64_str(num + 100000, pe->local);
	} else {
		k = strlen(sur);
		memcpy(pe->local + n, sur, k);
		n += k;
		/* Separators are identity for non-gmail providers, so only there. */
		if (pe->domain != SYNTH_GMAIL && style == 1)
			pe->local[n++] = '.';
		else if (pe->domain != SYNTH_GMAIL && style == 2)
			pe->local[n++] = '_';
		k = strlen(giv);
		memcpy(pe->local + n, giv, k);
		n += k;
		/* Names have no digits, so the trailing number keeps locals unique. */
		n += synth_u64_str(num, pe->local + n);
	}
	pe->local_len = n;

	memcpy(pe->phone, "1", 1);
	memcpy(pe->phone + 1, synth_phone_prefix[synth_below(&r, SYNTH_NELEM(synth_phone_prefix))], 2);
	num = (synth_mulmod(p, c->phone_mul, 100000000ULL) + c->phone_add) % 100000000ULL;
	for (k = 0; k < 8; k++) {
		pe->phone[10 - k] = (char)('0' + num % 10);
		num /= 10;
	}
	pe->phone[11] = '\0';

	u = synth_unif(&r);
	if (u < 0.01)
		pe->age = 13 + (int)synth_below(&r, 3);
	else if (u < 0.05)
		pe->age = 61 + (int)synth_below(&r, 20);
	else
		pe->age = (int)synth_clamp(30.0 + 9.0 * synth_normal(&r), 16, 60);
	pe->region = synth_weighted(&r, synth_region_w, SYNTH_NELEM(synth_region_w));
}

/*
 * A person; with phone_share_frac, some give another person's phone (a
 * family's, a recycled number): collisions the join must not turn into
 * false pairs.  Their own stream, so nothing else shifts with the option.
 */
static void
synth_person_make(const struct synth_ctx *c, uint64_t p, struct synth_person *pe)
{
	struct synth_person other;
	struct synth_rng r;
	uint64_t q;

	synth_person_base(c, p, pe);
	if (c->o->phone_share_frac <= 0 || c->total < 2)
		return;
	synth_rng_init(&r, c->o->seed, p, SYNTH_S_SHARE);
	if (!synth_chance(&r, c->o->phone_share_frac))
		return;
	q = synth_below(&r, c->total - 1);
	if (q >= p)
		q++;
	synth_person_base(c, q, &other);
	memcpy(pe->phone, other.phone, sizeof(pe->phone));
}

static unsigned
synth_consent_draw(const struct synth_ctx *c, struct synth_rng *r)
{
	double u = synth_unif(r);
	unsigned bits = 0;

	if (u < c->o->no_match_frac) {
		if (synth_chance(r, 0.5))
			bits |= SYNTH_P_ANALYTICS;
	} else if (u < c->o->no_match_frac + c->o->no_analytics_frac) {
		bits |= SYNTH_P_MATCH;
	} else {
		bits |= SYNTH_P_MATCH | SYNTH_P_ANALYTICS;
	}
	if (synth_chance(r, 0.6))
		bits |= SYNTH_P_MARKETING;
	return bits;
}

static void
synth_plan_make(const struct synth_ctx *c, int platform, uint64_t p, struct synth_plan *pl)
{
	struct synth_rng r;
	double u;

	memset(pl, 0, sizeof(*pl));
	synth_rng_init(&r, c->o->seed, p, platform == SYNTH_K ? SYNTH_S_PLAN_K : SYNTH_S_PLAN_G);
	do {
		pl->has_email = synth_chance(&r, 0.85);
		pl->has_phone = synth_chance(&r, 0.60);
	} while (!pl->has_email && !pl->has_phone);

	u = synth_unif(&r);
	pl->nrows = 1;
	if (u < c->o->bad_frac)
		pl->bad = (enum synth_bad)(1 + synth_below(&r, SYNTH_BAD_KINDS));
	else if (u < c->o->bad_frac + c->o->dup_frac)
		pl->nrows = 2;

	if (pl->bad != SYNTH_BAD_NONE) {
		/* Otherwise packable, so a lenient agent would visibly count it. */
		pl->consent[0] = SYNTH_P_MATCH | SYNTH_P_ANALYTICS;
		pl->t[0] = SYNTH_T_START + (int64_t)synth_below(&r, SYNTH_T_END - SYNTH_T_START);
		return;
	}
	pl->consent[0] = synth_consent_draw(c, &r);
	if (pl->nrows == 1) {
		pl->t[0] = SYNTH_T_START + (int64_t)synth_below(&r, SYNTH_T_END - SYNTH_T_START);
		return;
	}
	/* At least two days apart: no time-zone or date-only reading can swap them. */
	pl->t[0] = SYNTH_T_START + (int64_t)synth_below(&r, SYNTH_T_END - SYNTH_T_START - 400 * SYNTH_DAY);
	pl->t[1] = pl->t[0] + 2 * SYNTH_DAY + (int64_t)synth_below(&r, 398 * SYNTH_DAY);
	pl->consent[1] = synth_chance(&r, 0.5) ? synth_consent_draw(c, &r) : pl->consent[0];
	/* Which file position holds the later row is random. */
	if (synth_chance(&r, 0.5)) {
		int64_t t = pl->t[0];
		unsigned b = pl->consent[0];

		pl->t[0] = pl->t[1]; pl->t[1] = t;
		pl->consent[0] = pl->consent[1]; pl->consent[1] = b;
		pl->latest = 0;
	} else {
		pl->latest = 1;
	}
}

/* The planted segment of a person: its own stream, so nothing else shifts with it. */
static int
synth_segment_of(const struct synth_ctx *c, uint64_t p)
{
	struct synth_rng r;
	double u;
	int i;

	synth_rng_init(&r, c->o->seed, p, SYNTH_S_SEGMENT);
	u = synth_unif(&r);
	for (i = 0; i + 1 < SYNTH_SEGMENTS; i++) {
		if (u < synth_segments[i].share)
			return i;
		u -= synth_segments[i].share;
	}
	return SYNTH_SEGMENTS - 1;
}

static void
synth_kfeat_make(const struct synth_ctx *c, uint64_t p, struct synth_kfeat *f)
{
	const struct synth_segment *sg;
	struct synth_rng r;
	int64_t price;
	int seg = synth_segment_of(c, p);

	sg = &synth_segments[seg];
	synth_rng_init(&r, c->o->seed, p, SYNTH_S_FEAT_K);
	f->cat = synth_weighted(&r, synth_course_w[seg], 7);
	f->learn = synth_lognormal(&r, sg->learn_median, SYNTH_SEGMENT_SIGMA, 10000000);
	if (synth_chance(&r, 0.10)) {
		/* Free content only. */
		f->spend = 0;
		f->courses = 0;
	} else {
		/* Spend follows learning time: about 8 cents a minute, loosely. */
		f->spend = synth_lognormal(&r, 8.0 * (double)f->learn + 100.0, 0.6, 100000000);
		price = synth_lognormal(&r, 9900.0, 0.5, 1000000);
		if (price < 100)
			price = 100;
		f->courses = f->spend / price;
		if (f->courses < 1)
			f->courses = 1;
		if (f->courses > 10000)
			f->courses = 10000;
	}
	f->conv = 0;
}

static void
synth_gfeat_make(const struct synth_ctx *c, uint64_t p, struct synth_gfeat *f)
{
	const struct synth_segment *sg;
	struct synth_rng r;
	struct synth_kfeat kf;
	int seg = synth_segment_of(c, p);

	sg = &synth_segments[seg];
	synth_rng_init(&r, c->o->seed, p, SYNTH_S_FEAT_G);
	f->watch = synth_lognormal(&r, sg->watch_median, SYNTH_SEGMENT_SIGMA, 10000000);
	f->gift = synth_chance(&r, 0.4) ? 0 : synth_lognormal(&r, 5000.0, 1.3, 100000000);
	f->streams = synth_lognormal(&r, sg->streams_median, SYNTH_SEGMENT_SIGMA, 100000);
	f->cat = synth_weighted(&r, synth_game_w[seg], 7);
	if (p < c->s) {
		/* The planted association: programmers lean to strategy games. */
		synth_kfeat_make(c, p, &kf);
		if (kf.cat == SYNTH_PROGRAMMING && synth_chance(&r, SYNTH_AFFINITY_P))
			f->cat = SYNTH_STRATEGY;
	}
}

/* K's features, with F = 0.3 C + 20 T_K + 5 T_G + noise for shared people (synth.h). */
static void
synth_kfeat_full(const struct synth_ctx *c, uint64_t p, struct synth_kfeat *f)
{
	struct synth_rng r;
	struct synth_gfeat gf;
	double v;

	synth_kfeat_make(c, p, f);
	v = SYNTH_COEF_SPEND * (double)f->spend + SYNTH_COEF_LEARN * (double)f->learn;
	if (p < c->s) {
		synth_gfeat_make(c, p, &gf);
		v += SYNTH_COEF_WATCH * (double)gf.watch;
	}
	synth_rng_init(&r, c->o->seed, p, SYNTH_S_CONV);
	v += SYNTH_CONV_NOISE * synth_normal(&r);
	f->conv = synth_clamp(v, 0, 100000000);
}

static void
synth_put(struct synth_buf *b, const char *s, size_t n)
{
	/* Rows are far below the buffer; the guard only keeps a bug from overflowing. */
	if (n > sizeof(b->b) - b->n)
		n = sizeof(b->b) - b->n;
	memcpy(b->b + b->n, s, n);
	b->n += n;
}

static void
synth_puts(struct synth_buf *b, const char *s)
{
	synth_put(b, s, strlen(s));
}

static void
synth_putc(struct synth_buf *b, char ch)
{
	if (b->n < sizeof(b->b))
		b->b[b->n++] = ch;
}

static void
synth_put_i64(struct synth_buf *b, int64_t v)
{
	char tmp[24];
	size_t n;

	if (v < 0) {
		synth_putc(b, '-');
		v = -v;
	}
	n = synth_u64_str((uint64_t)v, tmp);
	synth_put(b, tmp, n);
}

static void
synth_put_2d(struct synth_buf *b, int v)
{
	synth_putc(b, (char)('0' + v / 10));
	synth_putc(b, (char)('0' + v % 10));
}

/* Howard Hinnant's civil_from_days. */
static void
synth_civil(int64_t days, int *y, int *m, int *d)
{
	int64_t z = days + 719468, era, doe, yoe, doy, mp;

	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static void
synth_put_date(struct synth_buf *b, int64_t t)
{
	int y, m, d;

	synth_civil(t / SYNTH_DAY, &y, &m, &d);
	synth_put_i64(b, y);
	synth_putc(b, '-');
	synth_put_2d(b, m);
	synth_putc(b, '-');
	synth_put_2d(b, d);
}

static void
synth_put_time(struct synth_buf *b, struct synth_rng *r, int64_t t)
{
	static const int offs[] = { 0, 480, 0, -300, 330, 540 };   /* minutes east */
	static const int offs_w[] = { 45, 40, 5, 4, 3, 3 };
	int64_t local, sec;
	int off, a;

	if (synth_chance(r, 0.08)) {
		synth_put_date(b, t);
		return;
	}
	a = synth_weighted(r, offs_w, SYNTH_NELEM(offs_w));
	off = offs[a];
	local = t + (int64_t)off * 60;
	synth_put_date(b, local);
	synth_putc(b, synth_chance(r, 0.15) ? ' ' : 'T');
	sec = local % SYNTH_DAY;
	synth_put_2d(b, (int)(sec / 3600));
	synth_putc(b, ':');
	synth_put_2d(b, (int)(sec / 60 % 60));
	synth_putc(b, ':');
	synth_put_2d(b, (int)(sec % 60));
	if (synth_chance(r, 0.2)) {
		int ms = (int)synth_below(r, 1000);

		synth_putc(b, '.');
		synth_putc(b, (char)('0' + ms / 100));
		synth_put_2d(b, ms % 100);
	}
	if (a == 0) {
		synth_putc(b, 'Z');
		return;
	}
	synth_putc(b, off < 0 ? '-' : '+');
	if (off < 0)
		off = -off;
	synth_put_2d(b, off / 60);
	synth_putc(b, ':');
	synth_put_2d(b, off % 60);
}

static void
synth_put_consent(struct synth_buf *b, struct synth_rng *r, unsigned bits)
{
	static const char *const names[] = { "match", "analytics", "marketing" };
	int order[3] = { 0, 1, 2 }, i, j, t, first = 1;

	if (synth_chance(r, 0.15)) {
		for (i = 2; i > 0; i--) {
			j = (int)synth_below(r, (uint64_t)i + 1);
			t = order[i]; order[i] = order[j]; order[j] = t;
		}
	}
	for (i = 0; i < 3; i++) {
		if ((bits & (1u << order[i])) == 0)
			continue;
		if (!first)
			synth_putc(b, ';');
		synth_puts(b, names[order[i]]);
		first = 0;
	}
}

/* Stray white space: ASCII, U+00A0 or U+3000, as exports really have. */
static void
synth_put_space(struct synth_buf *b, struct synth_rng *r)
{
	double u = synth_unif(r);

	if (u < 0.5)
		synth_putc(b, ' ');
	else if (u < 0.75)
		synth_put(b, "\xc2\xa0", 2);
	else
		synth_put(b, "\xe3\x80\x80", 3);
}

/* Writes `s` as a CSV field, maybe padded with white space and maybe quoted. */
static void
synth_put_messy_field(struct synth_buf *b, struct synth_rng *r, const char *s, size_t n,
    double quote_p)
{
	int quote = synth_chance(r, quote_p);
	int pad_l = synth_chance(r, 0.05), pad_r = synth_chance(r, 0.05);

	if (quote)
		synth_putc(b, '"');
	if (pad_l)
		synth_put_space(b, r);
	synth_put(b, s, n);
	if (pad_r)
		synth_put_space(b, r);
	if (quote)
		synth_putc(b, '"');
}

static void
synth_put_email(struct synth_buf *b, struct synth_rng *r, const struct synth_person *pe,
    enum synth_bad bad)
{
	char s[160];
	size_t n = 0, i;
	int gmail = pe->domain == SYNTH_GMAIL;
	double dot_p = gmail && synth_chance(r, 0.25) ? 1.5 / (double)pe->local_len : 0.0;
	const char *dom = synth_domains[pe->domain];
	double u;

	for (i = 0; i < pe->local_len; i++) {
		if (i > 0 && dot_p > 0.0 && synth_chance(r, dot_p))
			s[n++] = '.';
		s[n++] = pe->local[i];
	}
	if (gmail && synth_chance(r, 0.15)) {
		const char *tag = synth_tags[synth_below(r, SYNTH_NELEM(synth_tags))];

		s[n++] = '+';
		memcpy(s + n, tag, strlen(tag));
		n += strlen(tag);
	}
	if (gmail && synth_chance(r, 0.15))
		dom = "googlemail.com";
	if (bad == SYNTH_BAD_EMAIL_TWO_AT) {
		memcpy(s + n, "@mail", 5);
		n += 5;
	}
	if (bad == SYNTH_BAD_EMAIL_NO_AT)
		s[n++] = '.';
	else
		s[n++] = '@';
	memcpy(s + n, dom, strlen(dom));
	n += strlen(dom);

	u = synth_unif(r);
	if (u < 0.05) {
		for (i = 0; i < n; i++)
			if (s[i] >= 'a' && s[i] <= 'z')
				s[i] = (char)(s[i] - 'a' + 'A');
	} else if (u < 0.15) {
		if (s[0] >= 'a' && s[0] <= 'z')
			s[0] = (char)(s[0] - 'a' + 'A');
	} else if (u < 0.25) {
		for (i = 0; i < n; i++)
			if (s[i] >= 'a' && s[i] <= 'z' && synth_chance(r, 0.3))
				s[i] = (char)(s[i] - 'a' + 'A');
	}
	synth_put_messy_field(b, r, s, n, 0.10);
}

static void
synth_put_phone(struct synth_buf *b, struct synth_rng *r, const struct synth_person *pe,
    enum synth_bad bad)
{
	/* "(+86) 138 ..." is left out: normalize.h rejects a '+' after a parenthesis. */
	static const char *const pre[] = { "+86 ", "", "0086 ", "+86-", "", "+86 (", "+86", "" };
	static const char sep[] = { ' ', 0, ' ', '-', '-', ' ', 0, ' ' };
	static const int w[] = { 15, 30, 5, 7, 8, 5, 20, 10 };
	char d[12], s[40];
	size_t n;
	int f;

	memcpy(d, pe->phone, sizeof(d));
	if (bad == SYNTH_BAD_PHONE_LETTERS)
		memcpy(d + 3 + synth_below(r, 4), "abcd", 4);
	f = synth_weighted(r, w, SYNTH_NELEM(w));
	n = strlen(pre[f]);
	memcpy(s, pre[f], n);
	if (sep[f] == 0) {
		memcpy(s + n, d, 11);
		n += 11;
	} else {
		memcpy(s + n, d, 3);
		n += 3;
		if (f == 5)
			s[n++] = ')';
		s[n++] = sep[f];
		memcpy(s + n, d + 3, 4);
		n += 4;
		s[n++] = sep[f];
		memcpy(s + n, d + 7, 4);
		n += 4;
	}
	synth_put_messy_field(b, r, s, n, 0.05);
}

static void
synth_row_common(struct synth_buf *b, const struct synth_ctx *c, int platform, uint64_t local,
    const struct synth_person *pe, const struct synth_plan *pl, int variant, struct synth_rng *r)
{
	static const char *const bad_age[] = { "abc", "300", "-5" };
	enum synth_bad bad = pl->bad;

	synth_putc(b, platform == SYNTH_K ? 'k' : 'g');
	synth_put_i64(b, (int64_t)synth_uid(c, platform, local));
	synth_putc(b, ',');
	if (pl->has_email || bad == SYNTH_BAD_EMAIL_TWO_AT || bad == SYNTH_BAD_EMAIL_NO_AT)
		synth_put_email(b, r, pe, bad);
	synth_putc(b, ',');
	if (pl->has_phone || bad == SYNTH_BAD_PHONE_LETTERS)
		synth_put_phone(b, r, pe, bad);
	synth_putc(b, ',');
	if (bad == SYNTH_BAD_AGE_TEXT || bad == SYNTH_BAD_AGE_HIGH || bad == SYNTH_BAD_AGE_NEG)
		synth_puts(b, bad_age[bad - SYNTH_BAD_AGE_TEXT]);
	else
		synth_put_i64(b, pe->age);
	synth_putc(b, ',');
	synth_puts(b, synth_regions[pe->region]);
	synth_putc(b, ',');
	if (bad == SYNTH_BAD_PURPOSE)
		synth_puts(b, "match;telepathy");
	else
		synth_put_consent(b, r, pl->consent[variant]);
	synth_putc(b, ',');
	if (bad == SYNTH_BAD_TIME_WORD)
		synth_puts(b, "yesterday");
	else if (bad == SYNTH_BAD_TIME_DATE)
		synth_puts(b, synth_chance(r, 0.5) ? "2025-02-30" : "2025-02-30T10:11:12Z");
	else
		synth_put_time(b, r, pl->t[variant]);
}

static void
synth_row_k(struct synth_buf *b, const struct synth_ctx *c, uint64_t local, int variant)
{
	struct synth_person pe;
	struct synth_plan pl;
	struct synth_kfeat f;
	struct synth_rng r;

	synth_person_make(c, local, &pe);
	synth_plan_make(c, SYNTH_K, local, &pl);
	synth_kfeat_full(c, local, &f);
	synth_rng_init(&r, c->o->seed, local, SYNTH_S_ROW + (uint64_t)variant);
	b->n = 0;
	synth_row_common(b, c, SYNTH_K, local, &pe, &pl, variant, &r);
	synth_putc(b, ',');
	synth_put_i64(b, f.spend);
	synth_putc(b, ',');
	synth_put_i64(b, f.learn);
	synth_putc(b, ',');
	synth_put_i64(b, f.courses);
	synth_putc(b, ',');
	synth_puts(b, pl.bad == SYNTH_BAD_CATEGORY ? "cooking" : synth_course_cats[f.cat]);
	if (pl.bad != SYNTH_BAD_MISSING_FIELD) {
		synth_putc(b, ',');
		synth_put_i64(b, f.conv);
	}
	synth_putc(b, '\n');
}

static void
synth_row_g(struct synth_buf *b, const struct synth_ctx *c, uint64_t local, int variant)
{
	struct synth_person pe;
	struct synth_plan pl;
	struct synth_gfeat f;
	struct synth_rng r;
	uint64_t p = synth_person_of(c, SYNTH_G, local);

	synth_person_make(c, p, &pe);
	synth_plan_make(c, SYNTH_G, p, &pl);
	synth_gfeat_make(c, p, &f);
	synth_rng_init(&r, c->o->seed, p, SYNTH_S_ROW + 2 + (uint64_t)variant);
	b->n = 0;
	synth_row_common(b, c, SYNTH_G, local, &pe, &pl, variant, &r);
	synth_putc(b, ',');
	synth_put_i64(b, f.watch);
	synth_putc(b, ',');
	synth_put_i64(b, f.gift);
	synth_putc(b, ',');
	synth_put_i64(b, f.streams);
	if (pl.bad != SYNTH_BAD_MISSING_FIELD) {
		synth_putc(b, ',');
		synth_puts(b, pl.bad == SYNTH_BAD_CATEGORY ? "racing" : synth_game_cats[f.cat]);
	}
	synth_put(b, "\r\n", 2);
}

static void
synth_truth_compute(const struct synth_ctx *c, struct synth_truth *t)
{
	struct synth_plan pk, pg;
	uint64_t local, p;
	int side;

	memset(t, 0, sizeof(*t));
	for (side = 0; side < 2; side++) {
		uint64_t *rows = side == SYNTH_K ? &t->k_rows : &t->g_rows;
		uint64_t *bad = side == SYNTH_K ? &t->k_bad_rows : &t->g_bad_rows;
		uint64_t *dup = side == SYNTH_K ? &t->k_dup_rows : &t->g_dup_rows;
		uint64_t *nom = side == SYNTH_K ? &t->k_no_match : &t->g_no_match;
		uint64_t *packed = side == SYNTH_K ? &t->k_packed : &t->g_packed;

		for (local = 0; local < c->n; local++) {
			synth_plan_make(c, side, synth_person_of(c, side, local), &pk);
			*rows += (uint64_t)pk.nrows;
			*dup += (uint64_t)pk.nrows - 1;
			if (pk.bad != SYNTH_BAD_NONE)
				(*bad)++;
			else if (pk.consent[pk.latest] & SYNTH_P_MATCH)
				(*packed)++;
			else
				(*nom)++;
		}
	}
	t->shared_people = c->s;
	for (p = 0; p < c->s; p++) {
		unsigned ck, cg;

		synth_plan_make(c, SYNTH_K, p, &pk);
		synth_plan_make(c, SYNTH_G, p, &pg);
		if (pk.bad != SYNTH_BAD_NONE || pg.bad != SYNTH_BAD_NONE)
			continue;
		ck = pk.consent[pk.latest];
		cg = pg.consent[pg.latest];
		if (!(ck & cg & SYNTH_P_MATCH))
			continue;
		if (!((pk.has_email && pg.has_email) || (pk.has_phone && pg.has_phone)))
			continue;
		t->matched++;
		if (ck & cg & SYNTH_P_ANALYTICS)
			t->exported_before_suppression++;
		if (ck & cg & SYNTH_P_MARKETING)
			t->matched_marketing++;
	}
}

/* Row order: (local << 1 | variant), shuffled so duplicates land anywhere. */
static int
synth_order(const struct synth_ctx *c, int platform, uint64_t nrows, uint32_t **out,
    struct cg_err *err)
{
	struct synth_plan pl;
	struct synth_rng r;
	uint32_t *ord, tmp;
	uint64_t local, i, j, k = 0;

	*out = NULL;
	ord = malloc((size_t)(nrows ? nrows : 1) * sizeof(*ord));
	if (ord == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "synth: out of memory for the row order");
	for (local = 0; local < c->n; local++) {
		synth_plan_make(c, platform, synth_person_of(c, platform, local), &pl);
		if (k + (uint64_t)pl.nrows > nrows)
			break;
		ord[k++] = (uint32_t)(local << 1);
		if (pl.nrows == 2)
			ord[k++] = (uint32_t)(local << 1 | 1);
	}
	if (k != nrows || local != c->n) {
		free(ord);
		return cg_err_set(err, CG_ERR_INTERNAL, "synth: row count differs from the truth");
	}
	synth_rng_init(&r, c->o->seed, (uint64_t)platform, SYNTH_S_SHUFFLE);
	for (i = k; i > 1; i--) {
		j = synth_below(&r, i);
		tmp = ord[i - 1]; ord[i - 1] = ord[j]; ord[j] = tmp;
	}
	*out = ord;
	return 0;
}

static int
synth_write_file(const struct synth_ctx *c, const char *dir, int platform, uint64_t nrows,
    struct cg_err *err)
{
	const char *name = platform == SYNTH_K ? "k_users.csv" : "g_viewers.csv";
	char path[4096];
	struct synth_buf *b = NULL;
	uint32_t *ord = NULL;
	FILE *f = NULL;
	uint64_t i;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		r = cg_err_set(err, CG_ERR_ARG, "synth: directory path too long");
		goto out;
	}
	if ((r = synth_order(c, platform, nrows, &ord, err)) != 0)
		goto out;
	if ((b = malloc(sizeof(*b))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "synth: out of memory");
		goto out;
	}
	if ((f = fopen(path, "wb")) == NULL) {
		r = cg_err_set(err, CG_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
		goto out;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	fputs(platform == SYNTH_K ? synth_k_header : synth_g_header, f);
	fputs(platform == SYNTH_K ? "\n" : "\r\n", f);
	for (i = 0; i < nrows; i++) {
		uint64_t local = ord[i] >> 1;
		int variant = (int)(ord[i] & 1);

		if (platform == SYNTH_K)
			synth_row_k(b, c, local, variant);
		else
			synth_row_g(b, c, local, variant);
		if (fwrite(b->b, 1, b->n, f) != b->n)
			break;
	}
	if (ferror(f)) {
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", path, strerror(errno));
		goto out;
	}
	r = fclose(f);
	f = NULL;
	if (r != 0) {
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", path, strerror(errno));
		goto out;
	}
	r = 0;
 out:
	if (f != NULL)
		fclose(f);
	free(b);
	free(ord);
	return r;
}

static json_t *
synth_seed_json(uint64_t seed)
{
	char s[24];

	if (seed <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)seed);
	synth_u64_str(seed, s);
	return json_string(s);
}

/* What synth.h says is planted, for a test that reads truth.json rather than this header. */
static json_t *
synth_planted_json(void)
{
	json_t *segs = json_array();
	int i;

	if (segs == NULL)
		return NULL;
	for (i = 0; i < SYNTH_SEGMENTS; i++)
		json_array_append_new(segs, json_pack("{s:s, s:f, s:f, s:f, s:f}", "name",
		    synth_segments[i].name, "share", synth_segments[i].share, "learn_median",
		    synth_segments[i].learn_median, "watch_median", synth_segments[i].watch_median,
		    "streams_median", synth_segments[i].streams_median));
	return json_pack("{s:{s:f, s:f, s:f}, s:f, s:o, s:f, s:{s:s, s:s, s:f}}",
	    "coefficients", "k_course_spend_cents", SYNTH_COEF_SPEND,
	    "k_learning_minutes", SYNTH_COEF_LEARN, "g_watch_minutes", SYNTH_COEF_WATCH,
	    "conversion_noise_sd", SYNTH_CONV_NOISE, "segments", segs,
	    "segment_sigma", SYNTH_SEGMENT_SIGMA,
	    "affinity", "course", SYNTH_AFFINITY_COURSE, "game", SYNTH_AFFINITY_GAME,
	    "p", SYNTH_AFFINITY_P);
}

static int
synth_write_truth(const char *dir, const struct synth_opts *o, const struct synth_truth *t,
    struct cg_err *err)
{
	char path[4096];
	json_t *root = NULL, *planted;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/truth.json", dir) >= sizeof(path)) {
		r = cg_err_set(err, CG_ERR_ARG, "synth: directory path too long");
		goto out;
	}
	/* Seeds above 2^63-1 do not fit a JSON integer here: they are written as a string. */
	root = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	    "s:{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:o}}",
	    "k_rows", (json_int_t)t->k_rows, "g_rows", (json_int_t)t->g_rows,
	    "k_bad_rows", (json_int_t)t->k_bad_rows, "g_bad_rows", (json_int_t)t->g_bad_rows,
	    "k_dup_rows", (json_int_t)t->k_dup_rows, "g_dup_rows", (json_int_t)t->g_dup_rows,
	    "k_no_match", (json_int_t)t->k_no_match, "g_no_match", (json_int_t)t->g_no_match,
	    "k_packed", (json_int_t)t->k_packed, "g_packed", (json_int_t)t->g_packed,
	    "shared_people", (json_int_t)t->shared_people, "matched", (json_int_t)t->matched,
	    "exported_before_suppression", (json_int_t)t->exported_before_suppression,
	    "matched_marketing", (json_int_t)t->matched_marketing,
	    "opts",
	    "users", (json_int_t)o->users, "shared_frac", o->shared_frac,
	    "no_match_frac", o->no_match_frac, "no_analytics_frac", o->no_analytics_frac,
	    "bad_frac", o->bad_frac, "dup_frac", o->dup_frac, "phone_share_frac", o->phone_share_frac,
	    "seed", synth_seed_json(o->seed));
	if (root == NULL || (planted = synth_planted_json()) == NULL ||
	    json_object_set_new(root, "planted", planted) != 0) {
		r = cg_err_set(err, CG_ERR_NOMEM, "synth: cannot build truth.json");
		goto out;
	}
	if (json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "%s: cannot write", path);
		goto out;
	}
	r = 0;
 out:
	json_decref(root);
	return r;
}

int
synth_write(const char *dir, const struct synth_opts *opts, struct synth_truth *truth,
    struct cg_err *err)
{
	struct synth_ctx c;
	struct synth_truth t;
	int r;

	memset(truth, 0, sizeof(*truth));
	if ((r = synth_check_opts(opts, err)) != 0)
		return r;
	synth_ctx_init(&c, opts);
	synth_truth_compute(&c, &t);
	if ((r = synth_write_file(&c, dir, SYNTH_K, t.k_rows, err)) != 0)
		return r;
	if ((r = synth_write_file(&c, dir, SYNTH_G, t.g_rows, err)) != 0)
		return r;
	if ((r = synth_write_truth(dir, opts, &t, err)) != 0)
		return r;
	*truth = t;
	return 0;
}

int
synth_canonical_ids(const struct synth_opts *opts, const char *user_id, char *email,
    size_t email_size, char *phone, size_t phone_size, struct cg_err *err)
{
	struct synth_ctx c;
	struct synth_person pe;
	const char *dom;
	uint64_t v = 0, local;
	int platform, r;
	size_t i, n;

	if (email_size > 0)
		email[0] = '\0';
	if (phone_size > 0)
		phone[0] = '\0';
	if ((r = synth_check_opts(opts, err)) != 0)
		return r;
	if (user_id[0] == 'k')
		platform = SYNTH_K;
	else if (user_id[0] == 'g')
		platform = SYNTH_G;
	else
		return cg_err_set(err, CG_ERR_NOTFOUND, "synth: user id has no platform prefix");
	n = strlen(user_id);
	if (n != 11)
		return cg_err_set(err, CG_ERR_NOTFOUND, "synth: user id has the wrong length");
	for (i = 1; i < n; i++) {
		if (user_id[i] < '0' || user_id[i] > '9')
			return cg_err_set(err, CG_ERR_NOTFOUND, "synth: user id is not numeric");
		v = v * 10 + (uint64_t)(user_id[i] - '0');
	}
	synth_ctx_init(&c, opts);
	if (v < 1000000000ULL)
		return cg_err_set(err, CG_ERR_NOTFOUND, "synth: unknown user id");
	v -= 1000000000ULL;
	local = synth_mulmod((v + 1000000000ULL - c.uid_add[platform]) % 1000000000ULL,
	    c.uid_inv[platform], 1000000000ULL);
	if (local >= c.n)
		return cg_err_set(err, CG_ERR_NOTFOUND, "synth: unknown user id");
	synth_person_make(&c, synth_person_of(&c, platform, local), &pe);
	dom = synth_domains[pe.domain];
	if (pe.local_len + 1 + strlen(dom) + 1 > email_size || phone_size < 15)
		return cg_err_set(err, CG_ERR_ARG, "synth: output buffer too small");
	memcpy(email, pe.local, pe.local_len);
	email[pe.local_len] = '@';
	memcpy(email + pe.local_len + 1, dom, strlen(dom) + 1);
	memcpy(phone, "+86", 3);
	memcpy(phone + 3, pe.phone, 12);
	return 0;
}
