/* synth_people.c - see synth.h; a person, its plans and features, and the messy rows written for it (synth_int.h) */
#include "synth/synth.h"
#include "synth/synth_int.h"

#include <string.h>

const char *const synth_domains[] = {
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
void
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

void
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

void
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

void
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

