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
#include "synth/synth_int.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/outfile.h"

static const char *const synth_k_header =
    "user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,"
    "courses_bought,top_course_category,conversion_value_cents";
static const char *const synth_g_header =
    "user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,"
    "streams_followed,top_game_category";


static uint64_t
synth_mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
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

double
synth_unif(struct synth_rng *r)
{
	return (double)(synth_next(r) >> 11) * 0x1.0p-53;
}

/* [0, n): multiply-shift; the tiny bias is irrelevant for test data. */
uint64_t
synth_below(struct synth_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)synth_next(r) * n) >> 64);
}

int
synth_chance(struct synth_rng *r, double p)
{
	return synth_unif(r) < p;
}

double
synth_normal(struct synth_rng *r)
{
	double u1 = synth_unif(r), u2 = synth_unif(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int64_t
synth_clamp(double v, int64_t lo, int64_t hi)
{
	if (!(v > (double)lo))
		return lo;
	if (v >= (double)hi)
		return hi;
	return (int64_t)llround(v);
}

int64_t
synth_lognormal(struct synth_rng *r, double median, double sigma, int64_t hi)
{
	return synth_clamp(median * exp(sigma * synth_normal(r)), 0, hi);
}

int
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

uint64_t
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
uint64_t
synth_person_of(const struct synth_ctx *c, int platform, uint64_t local)
{
	if (platform == SYNTH_K || local < c->s)
		return local;
	return c->n + (local - c->s);
}

uint64_t
synth_uid(const struct synth_ctx *c, int platform, uint64_t local)
{
	return 1000000000ULL +
	    (synth_mulmod(local, c->uid_mul[platform], 1000000000ULL) + c->uid_add[platform]) %
	    1000000000ULL;
}

size_t
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
	struct outfile of = { 0 };
	FILE *f;
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
	if ((r = outfile_open(&of, path, 0600, err)) != 0)
		goto out;
	f = of.f;
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
	r = outfile_commit(&of, err);
 out:
	outfile_abort(&of);
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
	char path[4096], *text = NULL;
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
	if ((text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "synth: cannot build truth.json");
		goto out;
	}
	r = outfile_write(path, text, strlen(text), 0600, err);
 out:
	free(text);
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
