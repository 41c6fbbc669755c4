/* synth_int.h - internal to synth/: the generator's state, streams, people, plans and
 * row buffer, and the helpers that synth.c (random streams, options, truth, order,
 * files) and synth_people.c (a person, its plans and features, and its messy rows)
 * share.  Not part of the module's interface: only synth*.c include it. */
#ifndef CG_SYNTH_INT_H
#define CG_SYNTH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "synth/synth.h"

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

/* synth.c */
void synth_rng_init(struct synth_rng *r, uint64_t seed, uint64_t person, uint64_t stream);
double synth_unif(struct synth_rng *r);
uint64_t synth_below(struct synth_rng *r, uint64_t n);
int synth_chance(struct synth_rng *r, double p);
double synth_normal(struct synth_rng *r);
int64_t synth_clamp(double v, int64_t lo, int64_t hi);
int64_t synth_lognormal(struct synth_rng *r, double median, double sigma, int64_t hi);
int synth_weighted(struct synth_rng *r, const int *w, size_t n);
uint64_t synth_mulmod(uint64_t a, uint64_t b, uint64_t m);
uint64_t synth_person_of(const struct synth_ctx *c, int platform, uint64_t local);
uint64_t synth_uid(const struct synth_ctx *c, int platform, uint64_t local);
size_t synth_u64_str(uint64_t v, char *out);

/* synth_people.c */
extern const char *const synth_domains[];
void synth_person_make(const struct synth_ctx *c, uint64_t p, struct synth_person *pe);
void synth_plan_make(const struct synth_ctx *c, int platform, uint64_t p, struct synth_plan *pl);
void synth_row_k(struct synth_buf *b, const struct synth_ctx *c, uint64_t local, int variant);
void synth_row_g(struct synth_buf *b, const struct synth_ctx *c, uint64_t local, int variant);

#endif
