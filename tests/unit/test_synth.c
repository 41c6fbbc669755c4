/*
 * test_synth.c - the demo data: its schema, its messiness, and above all that
 * the truth it claims is what an independent reading of the files finds.
 *
 * The files are re-read here with the production CSV reader and normalizer
 * (they are what the pipeline uses), but validation, de-duplication and the
 * join are recomputed from scratch, without synth's internal plan.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/csvfile.h"
#include "synth/synth.h"
#include "base/normalize.h"
#include "crypto/token.h"
#include "policy/policy.h"
#include "tests/unit/cgtest.h"

#define P_MATCH 1u
#define P_ANALYTICS 2u
#define P_MARKETING 4u

static const char *const k_header =
    "user_id,email,phone,age,region,consent,consent_at,course_spend_cents,learning_minutes,"
    "courses_bought,top_course_category,conversion_value_cents";
static const char *const g_header =
    "user_id,email,phone,age,region,consent,consent_at,watch_minutes,gift_spend_cents,"
    "streams_followed,top_game_category";

static const char *const regions[] = {
	"CN-BJ", "CN-TJ", "CN-HE", "CN-SH", "CN-JS", "CN-ZJ", "CN-GD", "CN-GX",
	"CN-HI", "CN-SC", "CN-CQ", "CN-HB", "CN-HN", "CN-XZ", "CN-QH", "CN-NX", NULL,
};
static const char *const course_cats[] = {
	"programming", "finance", "language", "design", "history", "science", "music", NULL,
};
static const char *const game_cats[] = {
	"moba", "fps", "rpg", "strategy", "sports", "casual", "card", NULL,
};

static const struct normalize_email_rules rules = { 1, 1, 0, 1 };

struct rec {
	char uid[16];
	int has_email, has_phone;
	char email[NORMALIZE_EMAIL_MAX + 1];
	char phone[NORMALIZE_PHONE_MAX + 1];
	unsigned consent;
	int64_t t;
	int64_t f[4];        /* K: spend, learn, courses, conv; G: watch, gift, streams */
	int cat;
};

struct side {
	struct rec *recs;    /* valid rows */
	size_t n, cap;
	uint64_t rows, bad, dups, no_match, packed;
	struct rec **eff;    /* effective (latest) row per person, packed ones only */
	size_t neff;
	int ids_ok;          /* every identifier normalized to its person's canonical one */
	int dup_presence_ok; /* both rows of a duplicate fill the same identifier columns */
	uint64_t policy_bad; /* rows the demo policy's own cell checks reject */
	int unicode_space, upper, googlemail, plus_tag, phone_formats;
};

static int
index_of(const char *const *list, const char *s)
{
	int i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

static int
parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	int64_t v = 0;
	size_t i = 0;

	if (s[0] == '\0')
		return -1;
	for (; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || v > 1000000000000LL)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
digits(const char *s, size_t n, int *out)
{
	size_t i;
	int v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* ISO 8601 as the policy accepts it (plus a space for 'T'), to UTC seconds. */
static int
parse_time(const char *s, int64_t *out)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t n = strlen(s), i;
	int y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 1, dim;

	if (n < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d))
		return -1;
	if (mo < 1 || mo > 12)
		return -1;
	dim = mdays[mo - 1] + (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
	if (d < 1 || d > dim)
		return -1;
	if (n > 10) {
		if ((s[10] != 'T' && s[10] != ' ') || n < 20 || digits(s + 11, 2, &h) ||
		    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
			return -1;
		if (h > 23 || mi > 59 || se > 59)
			return -1;
		i = 19;
		if (s[i] == '.') {
			for (i++; s[i] >= '0' && s[i] <= '9'; i++)
				;
		}
		if (s[i] == 'Z' && s[i + 1] == '\0') {
			;
		} else if ((s[i] == '+' || s[i] == '-') && n - i == 6 && !digits(s + i + 1, 2, &oh) &&
		    s[i + 3] == ':' && !digits(s + i + 4, 2, &om)) {
			sign = s[i] == '-' ? -1 : 1;
		} else {
			return -1;
		}
	}
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
	    sign * (oh * 3600 + om * 60);
	return 0;
}

static int
parse_consent(const char *s, unsigned *out)
{
	char buf[128], *tok, *save = NULL;
	unsigned bits = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ";", &save); tok != NULL; tok = strtok_r(NULL, ";", &save)) {
		if (strcmp(tok, "match") == 0)
			bits |= P_MATCH;
		else if (strcmp(tok, "analytics") == 0)
			bits |= P_ANALYTICS;
		else if (strcmp(tok, "marketing") == 0)
			bits |= P_MARKETING;
		else
			return -1;
	}
	*out = bits;
	return 0;
}

static char *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static int
files_equal(const char *a, const char *b)
{
	size_t la, lb;
	char *x = read_all(a, &la), *y = read_all(b, &lb);
	int eq = x != NULL && y != NULL && la == lb && memcmp(x, y, la) == 0;

	free(x);
	free(y);
	return eq;
}

/* Notes which kinds of messiness the raw cell shows, so the test sees they occur. */
static void
note_messy(struct side *sd, const char *email, const char *phone)
{
	const char *at = strchr(email, '@');
	size_t i;

	if (strstr(email, "\xc2\xa0") != NULL || strstr(email, "\xe3\x80\x80") != NULL)
		sd->unicode_space++;
	for (i = 0; email[i] != '\0'; i++) {
		if (email[i] >= 'A' && email[i] <= 'Z') {
			sd->upper++;
			break;
		}
	}
	if (at != NULL && strlen(at) == 15) {
		char dom[16];

		for (i = 0; i < 15; i++)
			dom[i] = (char)(at[i] >= 'A' && at[i] <= 'Z' ? at[i] - 'A' + 'a' : at[i]);
		dom[15] = '\0';
		if (strcmp(dom, "@googlemail.com") == 0)
			sd->googlemail++;
	}
	if (at != NULL && memchr(email, '+', (size_t)(at - email)) != NULL)
		sd->plus_tag++;
	if (strstr(phone, "0086") != NULL || strchr(phone, '(') != NULL)
		sd->phone_formats++;
}

/* The production checks an agent applies to one row of the demo policy. */
static int
policy_row_ok(const struct policy *pol, const struct policy_partner *pp,
    const struct csvfile_row *row)
{
	char norm[NORMALIZE_EMAIL_MAX + 1];
	struct policy_value v;
	struct cg_err err;
	size_t i;
	int ids = 0;

	if (row->nfields != pp->ncolumns)
		return 0;
	for (i = 0; i < pp->ncolumns; i++) {
		const struct policy_column *c = &pp->columns[i];

		if (c->role != POLICY_ROLE_IDENTIFIER) {
			if (policy_value_parse(pol, c, row->fields[i], row->lens[i], &v, &err) != 0)
				return 0;
			continue;
		}
		if (row->lens[i] == 0)
			continue;
		ids++;
		if (c->id_kind == TOKEN_KIND_EMAIL && normalize_email(row->fields[i], row->lens[i],
		    &pol->email, norm, sizeof(norm), &err) != 0)
			return 0;
		if (c->id_kind == TOKEN_KIND_PHONE && normalize_phone(row->fields[i], row->lens[i],
		    pol->default_country, norm, sizeof(norm), &err) != 0)
			return 0;
	}
	return ids > 0;
}

/*
 * One file: header, validity of each row by the schema's rules, identifiers
 * against the person's canonical ones, then de-duplication by user_id with the
 * latest consent_at winning.
 */
static void
read_side(const char *path, int is_k, const struct synth_opts *o, const struct policy *pol,
    struct side *sd)
{
	const struct policy_partner *pp = pol != NULL ? policy_partner_find(pol, is_k ? "k" : "g") : NULL;
	const char *header = is_k ? k_header : g_header;
	size_t want = is_k ? 12 : 11, i;
	struct csvfile *r = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	char joined[512], cemail[SYNTH_EMAIL_MAX], cphone[SYNTH_PHONE_MAX];
	int rc, first = 1;

	memset(sd, 0, sizeof(*sd));
	sd->ids_ok = 1;
	sd->dup_presence_ok = 1;
	rc = csvfile_open(path, &r, &err);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0)
		return;
	for (;;) {
		struct rec rec;
		int64_t v;
		int ok = 1;

		rc = csvfile_next(r, &row, &err);
		if (rc == 0)
			break;
		if (first) {
			CHECK_EQ_INT(rc, 1);
			if (rc != 1)
				break;
			joined[0] = '\0';
			for (i = 0; i < row->nfields; i++) {
				if (i > 0)
					strcat(joined, ",");
				strncat(joined, row->fields[i], 100);
			}
			CHECK_STR(joined, header);
			first = 0;
			continue;
		}
		sd->rows++;
		if (rc < 0 || pp == NULL || !policy_row_ok(pol, pp, row))
			sd->policy_bad++;
		if (rc < 0 || row->nfields != want) {
			sd->bad++;
			continue;
		}
		memset(&rec, 0, sizeof(rec));
		if (strlen(row->fields[0]) >= sizeof(rec.uid))
			ok = 0;
		else
			strcpy(rec.uid, row->fields[0]);
		if (row->lens[1] > 0) {
			rec.has_email = 1;
			if (normalize_email(row->fields[1], row->lens[1], &rules, rec.email,
			    sizeof(rec.email), &err) != 0)
				ok = 0;
		}
		if (row->lens[2] > 0) {
			rec.has_phone = 1;
			if (normalize_phone(row->fields[2], row->lens[2], "CN", rec.phone,
			    sizeof(rec.phone), &err) != 0)
				ok = 0;
		}
		if (!rec.has_email && !rec.has_phone)
			ok = 0;
		if (parse_int(row->fields[3], 13, 120, &v) != 0)
			ok = 0;
		if (index_of(regions, row->fields[4]) < 0)
			ok = 0;
		if (parse_consent(row->fields[5], &rec.consent) != 0)
			ok = 0;
		if (parse_time(row->fields[6], &rec.t) != 0)
			ok = 0;
		if (is_k) {
			ok &= parse_int(row->fields[7], 0, 100000000, &rec.f[0]) == 0;
			ok &= parse_int(row->fields[8], 0, 10000000, &rec.f[1]) == 0;
			ok &= parse_int(row->fields[9], 0, 10000, &rec.f[2]) == 0;
			ok &= (rec.cat = index_of(course_cats, row->fields[10])) >= 0;
			ok &= parse_int(row->fields[11], 0, 100000000, &rec.f[3]) == 0;
		} else {
			ok &= parse_int(row->fields[7], 0, 10000000, &rec.f[0]) == 0;
			ok &= parse_int(row->fields[8], 0, 100000000, &rec.f[1]) == 0;
			ok &= parse_int(row->fields[9], 0, 100000, &rec.f[2]) == 0;
			ok &= (rec.cat = index_of(game_cats, row->fields[10])) >= 0;
		}
		if (!ok) {
			sd->bad++;
			continue;
		}
		note_messy(sd, row->fields[1], row->fields[2]);
		rc = synth_canonical_ids(o, rec.uid, cemail, sizeof(cemail), cphone, sizeof(cphone),
		    &err);
		if (rc != 0 || (rec.has_email && strcmp(rec.email, cemail) != 0) ||
		    (rec.has_phone && strcmp(rec.phone, cphone) != 0))
			sd->ids_ok = 0;
		if (sd->n == sd->cap) {
			sd->cap = sd->cap ? 2 * sd->cap : 1024;
			sd->recs = realloc(sd->recs, sd->cap * sizeof(*sd->recs));
			if (sd->recs == NULL)
				abort();
		}
		sd->recs[sd->n++] = rec;
	}
	csvfile_free(r);
}

static int
rec_cmp_uid(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->uid, ((const struct rec *)b)->uid);
}

static void
dedupe(struct side *sd)
{
	size_t i = 0, j;

	qsort(sd->recs, sd->n, sizeof(*sd->recs), rec_cmp_uid);
	sd->eff = calloc(sd->n + 1, sizeof(*sd->eff));
	if (sd->eff == NULL)
		abort();
	while (i < sd->n) {
		struct rec *win = &sd->recs[i];

		for (j = i + 1; j < sd->n && strcmp(sd->recs[j].uid, win->uid) == 0; j++) {
			sd->dups++;
			if (sd->recs[j].has_email != win->has_email ||
			    sd->recs[j].has_phone != win->has_phone ||
			    sd->recs[j].t == win->t)
				sd->dup_presence_ok = 0;
			if (sd->recs[j].t > win->t)
				win = &sd->recs[j];
		}
		if (win->consent & P_MATCH) {
			sd->packed++;
			sd->eff[sd->neff++] = win;
		} else {
			sd->no_match++;
		}
		i = j;
	}
}

struct key {
	const char *id;
	const struct rec *rec;
};

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct key *)a)->id, ((const struct key *)b)->id);
}

static const struct rec *
key_find(const struct key *keys, size_t n, const char *id)
{
	struct key k = { id, NULL };
	const struct key *hit = bsearch(&k, keys, n, sizeof(*keys), key_cmp);

	return hit != NULL ? hit->rec : NULL;
}

struct joined {
	uint64_t matched, exported, marketing;
	uint64_t prog, prog_strategy, other, other_strategy;
	uint64_t conv_checked, conv_off;
	int unique_ok;       /* no normalized identifier is used by two people of one side */
};

/* The join, recomputed: tokens are normalized identifiers here. */
static void
join(const struct side *k, const struct side *g, struct joined *out)
{
	struct key *emails = calloc(k->neff + 1, sizeof(*emails));
	struct key *phones = calloc(k->neff + 1, sizeof(*phones));
	size_t ne = 0, np = 0, i;

	memset(out, 0, sizeof(*out));
	out->unique_ok = 1;
	if (emails == NULL || phones == NULL)
		abort();
	for (i = 0; i < k->neff; i++) {
		if (k->eff[i]->has_email)
			emails[ne++] = (struct key){ k->eff[i]->email, k->eff[i] };
		if (k->eff[i]->has_phone)
			phones[np++] = (struct key){ k->eff[i]->phone, k->eff[i] };
	}
	qsort(emails, ne, sizeof(*emails), key_cmp);
	qsort(phones, np, sizeof(*phones), key_cmp);
	for (i = 1; i < ne; i++)
		if (strcmp(emails[i - 1].id, emails[i].id) == 0)
			out->unique_ok = 0;
	for (i = 1; i < np; i++)
		if (strcmp(phones[i - 1].id, phones[i].id) == 0)
			out->unique_ok = 0;
	for (i = 0; i < g->neff; i++) {
		const struct rec *gr = g->eff[i], *ke = NULL, *kp = NULL, *kr;
		double expect;

		if (gr->has_email)
			ke = key_find(emails, ne, gr->email);
		if (gr->has_phone)
			kp = key_find(phones, np, gr->phone);
		if (ke != NULL && kp != NULL && ke != kp)
			out->unique_ok = 0;
		kr = ke != NULL ? ke : kp;
		if (kr == NULL)
			continue;
		out->matched++;
		if (kr->consent & gr->consent & P_ANALYTICS)
			out->exported++;
		if (kr->consent & gr->consent & P_MARKETING)
			out->marketing++;
		if (kr->cat == 0) {
			out->prog++;
			out->prog_strategy += gr->cat == 3;
		} else {
			out->other++;
			out->other_strategy += gr->cat == 3;
		}
		/* F = 0.3 C + 20 T_K + 5 T_G + noise (sd 15 yuan), away from the clamp at 0. */
		expect = 0.3 * (double)kr->f[0] + 20.0 * (double)kr->f[1] + 5.0 * (double)gr->f[0];
		if (expect > 10000.0 && expect < 90000000.0) {
			out->conv_checked++;
			if ((double)kr->f[3] < expect - 9000.0 || (double)kr->f[3] > expect + 9000.0)
				out->conv_off++;
		}
	}
	free(emails);
	free(phones);
}

static void
free_side(struct side *sd)
{
	free(sd->recs);
	free(sd->eff);
}

static void
path_in(char *out, size_t size, const char *dir, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void
test_truth_json(const char *dir, const struct synth_opts *o, const struct synth_truth *t)
{
	char path[512];
	json_error_t jerr;
	json_t *root, *opts;

	path_in(path, sizeof(path), dir, "truth.json");
	root = json_load_file(path, 0, &jerr);
	CHECK(root != NULL);
	if (root == NULL)
		return;
#define TRUTH_FIELD(f) CHECK_EQ_INT(json_integer_value(json_object_get(root, #f)), t->f)
	TRUTH_FIELD(k_rows);
	TRUTH_FIELD(g_rows);
	TRUTH_FIELD(k_bad_rows);
	TRUTH_FIELD(g_bad_rows);
	TRUTH_FIELD(k_dup_rows);
	TRUTH_FIELD(g_dup_rows);
	TRUTH_FIELD(k_no_match);
	TRUTH_FIELD(g_no_match);
	TRUTH_FIELD(k_packed);
	TRUTH_FIELD(g_packed);
	TRUTH_FIELD(shared_people);
	TRUTH_FIELD(matched);
	TRUTH_FIELD(exported_before_suppression);
	TRUTH_FIELD(matched_marketing);
#undef TRUTH_FIELD
	CHECK_EQ_INT(json_object_size(root), 16);
	/* The planted structure is written as synth.h declares it. */
	CHECK(json_real_value(json_object_get(json_object_get(json_object_get(root, "planted"),
	    "coefficients"), "k_learning_minutes")) == SYNTH_COEF_LEARN);
	CHECK_EQ_INT(json_array_size(json_object_get(json_object_get(root, "planted"), "segments")),
	    SYNTH_SEGMENTS);
	CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(root, "planted"),
	    "affinity"), "game")), SYNTH_AFFINITY_GAME);
	opts = json_object_get(root, "opts");
	CHECK(json_is_object(opts));
	CHECK_EQ_INT(json_integer_value(json_object_get(opts, "users")), o->users);
	CHECK_EQ_INT(json_integer_value(json_object_get(opts, "seed")), o->seed);
	CHECK(json_real_value(json_object_get(opts, "shared_frac")) == o->shared_frac);
	CHECK(json_real_value(json_object_get(opts, "bad_frac")) == o->bad_frac);
	CHECK(json_real_value(json_object_get(opts, "dup_frac")) == o->dup_frac);
	CHECK(json_is_real(json_object_get(opts, "no_match_frac")));
	CHECK(json_is_real(json_object_get(opts, "no_analytics_frac")));
	json_decref(root);
}

static void
test_line_endings(const char *dir)
{
	char path[512];
	size_t len, i, lf = 0, crlf = 0;
	char *buf;

	path_in(path, sizeof(path), dir, "k_users.csv");
	buf = read_all(path, &len);
	CHECK(buf != NULL && len > 0);
	for (i = 0; buf != NULL && i < len; i++) {
		if (buf[i] == '\n')
			lf++;
		if (buf[i] == '\r')
			crlf++;
	}
	CHECK(lf > 0);
	CHECK_EQ_INT(crlf, 0);
	CHECK(buf != NULL && buf[len - 1] == '\n');
	free(buf);

	path_in(path, sizeof(path), dir, "g_viewers.csv");
	buf = read_all(path, &len);
	CHECK(buf != NULL && len > 1);
	lf = crlf = 0;
	for (i = 0; buf != NULL && i < len; i++) {
		if (buf[i] == '\n') {
			lf++;
			crlf += i > 0 && buf[i - 1] == '\r';
		}
	}
	CHECK(lf > 0);
	CHECK_EQ_INT(crlf, lf);
	/* Some fields are quoted (RFC 4180 allows it anywhere). */
	CHECK(buf != NULL && strstr(buf, ",\"") != NULL);
	free(buf);
}

static void
test_pipeline_truth(void)
{
	char tmpl[] = "/tmp/cg_synth_XXXXXX", path[512];
	struct synth_opts o;
	struct synth_truth t;
	struct side k, g;
	struct joined j;
	struct cg_err err;
	struct policy *pol = NULL;
	char *dir = mkdtemp(tmpl);
	int rc;

	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	synth_opts_default(&o);
	o.users = 3000;
	o.bad_frac = 0.03;
	o.dup_frac = 0.06;
	o.seed = 42;
	rc = synth_write(dir, &o, &t, &err);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "synth_write: %s\n", err.msg);
		return;
	}
	CHECK_EQ_INT(t.shared_people, 900);
	CHECK_EQ_INT(t.k_rows, 3000 + t.k_dup_rows);
	CHECK_EQ_INT(t.g_rows, 3000 + t.g_dup_rows);
	CHECK_EQ_INT(t.k_bad_rows + t.k_no_match + t.k_packed, 3000);
	CHECK_EQ_INT(t.g_bad_rows + t.g_no_match + t.g_packed, 3000);
	/* Quotas land near what was asked: 3% bad, 6% dup, 10% without match. */
	CHECK(t.k_bad_rows > 50 && t.k_bad_rows < 140);
	CHECK(t.g_dup_rows > 120 && t.g_dup_rows < 250);
	CHECK(t.k_no_match > 200 && t.k_no_match < 420);
	CHECK(t.matched > 400 && t.matched < t.shared_people);
	CHECK(t.exported_before_suppression < t.matched);
	CHECK(t.matched_marketing < t.exported_before_suppression);

	test_truth_json(dir, &o, &t);
	test_line_endings(dir);

	/* The demo policy, as the agents read it. */
	rc = policy_load("policy/example.yaml", &pol, NULL, &err);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0)
		fprintf(stderr, "policy_load: %s\n", err.msg);
	path_in(path, sizeof(path), dir, "k_users.csv");
	read_side(path, 1, &o, pol, &k);
	path_in(path, sizeof(path), dir, "g_viewers.csv");
	read_side(path, 0, &o, pol, &g);
	policy_free(pol);
	dedupe(&k);
	dedupe(&g);

	CHECK_EQ_INT(k.rows, t.k_rows);
	CHECK_EQ_INT(g.rows, t.g_rows);
	CHECK_EQ_INT(k.bad, t.k_bad_rows);
	CHECK_EQ_INT(g.bad, t.g_bad_rows);
	CHECK_EQ_INT(k.policy_bad, t.k_bad_rows);
	CHECK_EQ_INT(g.policy_bad, t.g_bad_rows);
	CHECK_EQ_INT(k.dups, t.k_dup_rows);
	CHECK_EQ_INT(g.dups, t.g_dup_rows);
	CHECK_EQ_INT(k.no_match, t.k_no_match);
	CHECK_EQ_INT(g.no_match, t.g_no_match);
	CHECK_EQ_INT(k.packed, t.k_packed);
	CHECK_EQ_INT(g.packed, t.g_packed);
	CHECK(k.ids_ok);
	CHECK(g.ids_ok);
	CHECK(k.dup_presence_ok);
	CHECK(g.dup_presence_ok);
	/* The messiness the normalizer must undo is really there. */
	CHECK(k.unicode_space > 0 && g.unicode_space > 0);
	CHECK(k.upper > 0 && g.upper > 0);
	CHECK(k.googlemail > 0 && g.googlemail > 0);
	CHECK(k.plus_tag > 0 && g.plus_tag > 0);
	CHECK(k.phone_formats > 0 && g.phone_formats > 0);

	join(&k, &g, &j);
	CHECK(j.unique_ok);
	CHECK_EQ_INT(j.matched, t.matched);
	CHECK_EQ_INT(j.exported, t.exported_before_suppression);
	CHECK_EQ_INT(j.marketing, t.matched_marketing);
	/* The planted structure the analytics must find. */
	CHECK(j.prog > 50 && j.other > 200);
	CHECK(j.prog_strategy * 100 > j.prog * 40);
	CHECK(j.other_strategy * 100 < j.other * 20);
	CHECK(j.conv_checked > 300);
	CHECK(j.conv_off * 100 < j.conv_checked);

	free_side(&k);
	free_side(&g);
	path_in(path, sizeof(path), dir, "k_users.csv");
	unlink(path);
	path_in(path, sizeof(path), dir, "g_viewers.csv");
	unlink(path);
	path_in(path, sizeof(path), dir, "truth.json");
	unlink(path);
	rmdir(dir);
}

static void
remove_set(const char *dir)
{
	static const char *const names[] = { "k_users.csv", "g_viewers.csv", "truth.json" };
	char path[512];
	size_t i;

	for (i = 0; i < 3; i++) {
		path_in(path, sizeof(path), dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void
test_determinism(void)
{
	char t1[] = "/tmp/cg_synth_XXXXXX", t2[] = "/tmp/cg_synth_XXXXXX";
	char t3[] = "/tmp/cg_synth_XXXXXX", a[512], b[512];
	char *d1 = mkdtemp(t1), *d2 = mkdtemp(t2), *d3 = mkdtemp(t3);
	struct synth_opts o;
	struct synth_truth x, y, z;
	struct cg_err err;
	static const char *const names[] = { "k_users.csv", "g_viewers.csv", "truth.json" };
	size_t i;

	CHECK(d1 != NULL && d2 != NULL && d3 != NULL);
	if (d1 == NULL || d2 == NULL || d3 == NULL)
		return;
	synth_opts_default(&o);
	o.users = 800;
	o.seed = 7;
	CHECK_EQ_INT(synth_write(d1, &o, &x, &err), 0);
	CHECK_EQ_INT(synth_write(d2, &o, &y, &err), 0);
	o.seed = 8;
	CHECK_EQ_INT(synth_write(d3, &o, &z, &err), 0);
	CHECK(memcmp(&x, &y, sizeof(x)) == 0);
	for (i = 0; i < 3; i++) {
		path_in(a, sizeof(a), d1, names[i]);
		path_in(b, sizeof(b), d2, names[i]);
		CHECK(files_equal(a, b));
	}
	for (i = 0; i < 2; i++) {
		path_in(a, sizeof(a), d1, names[i]);
		path_in(b, sizeof(b), d3, names[i]);
		CHECK(!files_equal(a, b));
	}
	remove_set(d1);
	remove_set(d2);
	remove_set(d3);
}

static void
test_empty_and_all_shared(void)
{
	char tmpl[] = "/tmp/cg_synth_XXXXXX", path[512];
	char *dir = mkdtemp(tmpl);
	struct synth_opts o;
	struct synth_truth t;
	struct cg_err err;
	size_t len;
	char *buf;

	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	synth_opts_default(&o);
	o.users = 0;
	CHECK_EQ_INT(synth_write(dir, &o, &t, &err), 0);
	CHECK_EQ_INT(t.k_rows, 0);
	CHECK_EQ_INT(t.matched, 0);
	path_in(path, sizeof(path), dir, "g_viewers.csv");
	buf = read_all(path, &len);
	CHECK(buf != NULL && len == strlen(g_header) + 2);
	free(buf);

	/* Everyone shared, clean, consenting: every one of them must match. */
	o.users = 500;
	o.shared_frac = 1.0;
	o.no_match_frac = 0.0;
	o.no_analytics_frac = 0.0;
	o.bad_frac = 0.0;
	o.dup_frac = 0.0;
	CHECK_EQ_INT(synth_write(dir, &o, &t, &err), 0);
	CHECK_EQ_INT(t.k_packed, 500);
	CHECK_EQ_INT(t.g_packed, 500);
	CHECK_EQ_INT(t.shared_people, 500);
	CHECK_EQ_INT(t.exported_before_suppression, t.matched);
	/* Only those without a common identifier kind are missed. */
	CHECK(t.matched > 400 && t.matched < 500);
	remove_set(dir);
}

/* The canonical (email, phone) of every user id of one file. */
static size_t
ids_of_file(const char *path, const struct synth_opts *o, char (*emails)[SYNTH_EMAIL_MAX],
    char (*phones)[SYNTH_PHONE_MAX], size_t n, size_t cap)
{
	struct csvfile *r = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	int rc, first = 1;

	if (csvfile_open(path, &r, &err) != 0)
		return n;
	while ((rc = csvfile_next(r, &row, &err)) != 0 && n < cap) {
		if (rc < 0 || first) {
			first = 0;
			continue;
		}
		if (synth_canonical_ids(o, row->fields[0], emails[n], SYNTH_EMAIL_MAX, phones[n], SYNTH_PHONE_MAX,
		    &err) == 0)
			n++;
	}
	csvfile_free(r);
	return n;
}

/*
 * phone_share_frac: that share of people give another's phone, each keeps an
 * email of their own, and nothing but phones moves (the truth is per person).
 */
static void
test_phone_share(void)
{
	char tmpl[] = "/tmp/cg_synth_XXXXXX", path[512];
	char *dir = mkdtemp(tmpl);
	static char emails[8000][SYNTH_EMAIL_MAX], phones[8000][SYNTH_PHONE_MAX];
	struct synth_opts o;
	struct synth_truth t[2];
	struct cg_err err;
	size_t n, i, k, shared[2] = { 0, 0 }, people[2] = { 0, 0 };
	int pass;

	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	for (pass = 0; pass < 2; pass++) {
		synth_opts_default(&o);
		o.users = 2000;
		o.phone_share_frac = pass ? 0.1 : 0;
		CHECK_EQ_INT(synth_write(dir, &o, &t[pass], &err), 0);
		path_in(path, sizeof(path), dir, "k_users.csv");
		n = ids_of_file(path, &o, emails, phones, 0, 8000);
		path_in(path, sizeof(path), dir, "g_viewers.csv");
		n = ids_of_file(path, &o, emails, phones, n, 8000);
		/* per person (first row of each email): is the phone another person's too? */
		for (i = 0; i < n; i++) {
			int first = 1, other = 0;
			for (k = 0; k < n && first; k++)
				first = !(k < i && strcmp(emails[k], emails[i]) == 0);
			if (!first)
				continue;
			people[pass]++;
			for (k = 0; k < n && !other; k++)
				other = strcmp(phones[k], phones[i]) == 0 && strcmp(emails[k], emails[i]) != 0;
			shared[pass] += (size_t)other;
		}
	}
	CHECK_EQ_INT(shared[0], 0);
	/* a sharer and the one whose phone it gives: about twice the share, among the people in the files */
	CHECK(shared[1] > people[1] / 10 && shared[1] < people[1] * 3 / 10);
	CHECK_EQ_INT(t[1].matched, t[0].matched);
	CHECK_EQ_INT(t[1].k_rows, t[0].k_rows);
	CHECK_EQ_INT(t[1].exported_before_suppression, t[0].exported_before_suppression);
	remove_set(dir);
}

static void
test_errors(void)
{
	struct synth_opts o;
	struct synth_truth t;
	struct cg_err err;
	char email[SYNTH_EMAIL_MAX], phone[SYNTH_PHONE_MAX];

	synth_opts_default(&o);
	o.users = 10;
	CHECK_EQ_INT(synth_write("/nonexistent/cg_synth", &o, &t, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "cannot create a temporary file for /nonexistent/cg_synth/k_users.csv");
	CHECK_EQ_INT(t.k_rows, 0);

	o.shared_frac = 1.5;
	CHECK_EQ_INT(synth_write("/tmp", &o, &t, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "shared_frac must be within [0, 1]");
	o.shared_frac = NAN;
	CHECK_EQ_INT(synth_write("/tmp", &o, &t, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "shared_frac");

	synth_opts_default(&o);
	o.no_match_frac = 0.7;
	o.no_analytics_frac = 0.5;
	CHECK_EQ_INT(synth_write("/tmp", &o, &t, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "no_match_frac + no_analytics_frac must be at most 1");

	synth_opts_default(&o);
	o.phone_share_frac = 2;
	CHECK_EQ_INT(synth_write("/tmp", &o, &t, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "phone_share_frac must be within [0, 1]");

	synth_opts_default(&o);
	o.bad_frac = -0.1;
	CHECK_EQ_INT(synth_write("/tmp", &o, &t, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "bad_frac must be within [0, 1]");

	synth_opts_default(&o);
	o.users = 100000000;
	CHECK_EQ_INT(synth_write("/tmp", &o, &t, &err), CG_ERR_LIMIT);
	CHECK_CONTAINS(err.msg, "users must be at most");

	synth_opts_default(&o);
	CHECK_EQ_INT(synth_canonical_ids(&o, "x1000000000", email, sizeof(email), phone,
	    sizeof(phone), &err), CG_ERR_NOTFOUND);
	CHECK_CONTAINS(err.msg, "platform prefix");
	CHECK_EQ_INT(synth_canonical_ids(&o, "k12", email, sizeof(email), phone,
	    sizeof(phone), &err), CG_ERR_NOTFOUND);
	CHECK_CONTAINS(err.msg, "wrong length");
	CHECK_STR(email, "");
	CHECK_EQ_INT(synth_canonical_ids(&o, "k10000000x0", email, sizeof(email), phone,
	    sizeof(phone), &err), CG_ERR_NOTFOUND);
	CHECK_CONTAINS(err.msg, "not numeric");
}

int
main(void)
{
	test_pipeline_truth();
	test_determinism();
	test_empty_and_all_shared();
	test_phone_share();
	test_errors();
	CGT_DONE();
}
