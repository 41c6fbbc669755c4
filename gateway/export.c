/* export.c - see export.h */
#include "gateway/export.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "base/secmem.h"
#include "gateway/budget.h"
#include "gateway/join.h"
#include "base/outfile.h"

#define EXPORT_SENS_MAX 8
#define EXPORT_STAR INT64_MIN         /* a quasi-identifier shown as '*': absent, or generalized away */
#define EXPORT_NONE UINT32_MAX

struct export_buf {
	char *p;
	size_t len, cap;
};

static int
export_buf_add(struct export_buf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t ncap = b->cap ? b->cap : 1 << 20;
		char *np;
		while (ncap - b->len < n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL)
			return CG_ERR_NOMEM;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Append ",cell"; strings are quoted by libcsv. */
static int
export_cell(struct export_buf *b, const char *s, size_t n, int quote)
{
	char tmp[2 * 1024 + 3];

	if (export_buf_add(b, ",", 1) != 0)
		return CG_ERR_NOMEM;
	if (!quote)
		return export_buf_add(b, s, n);
	if (n > 1024)
		n = 1024;
	return export_buf_add(b, tmp, csv_write(tmp, sizeof(tmp), s, n));
}

/* A map quasi-identifier's generalized values, interned: a row keeps the index. */
struct export_intern {
	char **s;
	size_t n, cap;
};

static int
export_intern(struct export_intern *t, const char *s, int64_t *code)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->s[i], s) == 0) {
			*code = (int64_t)i;
			return 0;
		}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **np = realloc(t->s, ncap * sizeof(*np));
		if (np == NULL)
			return CG_ERR_NOMEM;
		t->s = np;
		t->cap = ncap;
	}
	if ((t->s[t->n] = strdup(s)) == NULL)
		return CG_ERR_NOMEM;
	*code = (int64_t)t->n++;
	return 0;
}

/* Everything collected from the joined subjects before any suppression decision. */
struct export_rows {
	const struct join *j;
	struct join_col cols[JOIN_COLS_MAX];
	size_t ncols, nqi;
	size_t sens[EXPORT_SENS_MAX];        /* indexes into cols of the sensitive columns */
	size_t nsens;
	struct export_intern intern[JOIN_COLS_MAX];   /* per quasi-identifier (map columns) */
	struct export_buf arena;             /* each row's feature cells, ",a,b,..." */
	size_t *off;                         /* row i's cells: arena.p[off[i] .. off[i+1]) */
	int64_t *qi;                         /* nrows x nqi codes */
	uint64_t *sv;                        /* nrows x nsens hashes of the sensitive values */
	int64_t *ids;                        /* nrows x 2 record ids, the pseudonyms' input */
	size_t n, cap;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
};

static int
export_rows_grow(struct export_rows *x)
{
	size_t ncap = x->cap ? x->cap * 2 : 4096;
	void *p;

	if ((p = realloc(x->off, (ncap + 1) * sizeof(*x->off))) == NULL)
		return CG_ERR_NOMEM;
	x->off = p;
	if ((p = realloc(x->qi, ncap * (x->nqi + 1) * sizeof(*x->qi))) == NULL)
		return CG_ERR_NOMEM;
	x->qi = p;
	if ((p = realloc(x->sv, ncap * (x->nsens + 1) * sizeof(*x->sv))) == NULL)
		return CG_ERR_NOMEM;
	x->sv = p;
	if ((p = realloc(x->ids, ncap * 2 * sizeof(*x->ids))) == NULL)
		return CG_ERR_NOMEM;
	x->ids = p;
	x->cap = ncap;
	return 0;
}

/* join_each callback: one subject. */
static int
export_collect(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err)
{
	struct export_rows *x = ctx;
	size_t q, c, s;
	char num[32], gen[256];
	int r = 0;

	if (x->n == x->cap && export_rows_grow(x) != 0)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory collecting the export");
	x->off[x->n] = x->arena.len;
	for (q = 0; q < x->nqi && r == 0; q++) {
		const struct policy_column *col;
		const Crossgate__Field *f = join_col_field(&x->cols[q], pl, &col);
		int64_t *code = &x->qi[x->n * x->nqi + q];

		if (f == NULL)
			*code = EXPORT_STAR;
		else if (col->gen == POLICY_GEN_BAND)
			*code = f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE ? f->int_value : EXPORT_STAR;
		else if ((r = policy_generalize_str(col, f->str_value, strlen(f->str_value), gen, sizeof(gen))) == 0)
			r = export_intern(&x->intern[q], gen, code);
	}
	for (c = x->nqi; c < x->ncols && r == 0; c++) {
		const struct policy_column *col;
		const Crossgate__Field *f = join_col_field(&x->cols[c], pl, &col);

		if (f == NULL)
			r = export_cell(&x->arena, "", 0, 0);
		else if (f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE) {
			int n = snprintf(num, sizeof(num), "%lld", (long long)f->int_value);
			r = export_cell(&x->arena, num, (size_t)n, 0);
		} else
			r = export_cell(&x->arena, f->str_value, strlen(f->str_value), 1);
	}
	for (s = 0; s < x->nsens && r == 0; s++) {
		const struct policy_column *col;
		const Crossgate__Field *f = join_col_field(&x->cols[x->sens[s]], pl, &col);
		uint64_t h = 0;

		if (f != NULL && f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE)
			crypto_shorthash((unsigned char *)&h, (const unsigned char *)&f->int_value, sizeof(f->int_value),
			    x->hkey);
		else if (f != NULL)
			crypto_shorthash((unsigned char *)&h, (const unsigned char *)f->str_value, strlen(f->str_value),
			    x->hkey);
		if (f != NULL && h == 0)
			h = 1;                        /* 0 is kept for an absent value */
		x->sv[x->n * x->nsens + s] = h;
	}
	if (r != 0)
		return cg_err_set(err, r == CG_ERR_NOMEM ? CG_ERR_NOMEM : CG_ERR_INTERNAL, "cannot render an export row");
	x->ids[2 * x->n] = ref[0]->id;
	x->ids[2 * x->n + 1] = ref[1]->id;
	x->n++;
	x->off[x->n] = x->arena.len;
	return 0;
}

/* The number of levels above 0 a quasi-identifier can climb; the last is '*'. */
static unsigned
export_top(const struct policy_column *c)
{
	return c->gen == POLICY_GEN_BAND ? (unsigned)c->nbands : 1;
}

/* Row i's quasi-identifier q at level lv, as a class code. */
static int64_t
export_code(const struct export_rows *x, size_t i, size_t q, unsigned lv)
{
	const struct policy_column *c = x->cols[q].col;
	int64_t v = x->qi[i * x->nqi + q], b, d;

	if (v == EXPORT_STAR || lv >= export_top(c))
		return EXPORT_STAR;
	if (c->gen != POLICY_GEN_BAND)
		return v;
	b = c->bands[lv];
	d = v / b;
	if (v % b != 0 && v < 0)
		d--;
	return d;
}

struct export_pair {
	uint32_t cls;
	uint64_t v;
};

static int
export_pair_cmp(const void *a, const void *b)
{
	const struct export_pair *x = a, *y = b;

	if (x->cls != y->cls)
		return x->cls < y->cls ? -1 : 1;
	return x->v < y->v ? -1 : x->v > y->v;
}

static int
export_i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Classes at levels lv: cls[i] for every row, and which classes are kept
 * (at least k rows and l distinct values of every sensitive column).
 * *suppressed = rows in the other classes.
 */
static int
export_classes(const struct export_rows *x, const unsigned *lv, uint32_t k, uint32_t l, uint32_t *cls,
    uint8_t **keep_out, uint64_t *nclasses, uint64_t *kept_classes, uint64_t *suppressed)
{
	uint32_t *slot = NULL, *first = NULL, *count = NULL;
	uint8_t *keep = NULL;
	struct export_pair *pairs = NULL;
	size_t mask = 15, i, q, ncls = 0, s;
	int64_t key[JOIN_COLS_MAX];
	int r = CG_ERR_NOMEM;

	*keep_out = NULL;
	while (mask < x->n * 2 + 16)
		mask = mask * 2 + 1;
	if ((slot = malloc((mask + 1) * sizeof(*slot))) == NULL || (first = malloc((x->n + 1) * sizeof(*first))) == NULL ||
	    (count = calloc(x->n + 1, sizeof(*count))) == NULL || (keep = malloc(x->n + 1)) == NULL)
		goto out;
	memset(slot, 0xff, (mask + 1) * sizeof(*slot));
	for (i = 0; i < x->n; i++) {
		uint64_t h;
		size_t sl;

		for (q = 0; q < x->nqi; q++)
			key[q] = export_code(x, i, q, lv[q]);
		crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, x->nqi * sizeof(key[0]), x->hkey);
		for (sl = h & mask;; sl = (sl + 1) & mask) {
			uint32_t c = slot[sl];
			if (c == EXPORT_NONE) {
				slot[sl] = (uint32_t)ncls;
				first[ncls] = (uint32_t)i;
				cls[i] = (uint32_t)ncls++;
				break;
			}
			for (q = 0; q < x->nqi; q++)
				if (export_code(x, first[c], q, lv[q]) != key[q])
					break;
			if (q == x->nqi) {
				cls[i] = c;
				break;
			}
		}
		count[cls[i]]++;
	}
	for (i = 0; i < ncls; i++)
		keep[i] = count[i] >= k;
	/* Distinct l-diversity: every sensitive column needs l distinct values in a kept class. */
	if (x->nsens > 0 && x->n > 0) {
		if ((pairs = malloc(x->n * sizeof(*pairs))) == NULL)
			goto out;
		for (s = 0; s < x->nsens; s++) {
			size_t distinct = 0;

			for (i = 0; i < x->n; i++) {
				pairs[i].cls = cls[i];
				pairs[i].v = x->sv[i * x->nsens + s];
			}
			qsort(pairs, x->n, sizeof(*pairs), export_pair_cmp);
			for (i = 0; i < x->n; i++) {
				if (i == 0 || pairs[i].cls != pairs[i - 1].cls)
					distinct = 0;
				/* an absent value (hash 0) is not a value: it does not make a class diverse */
				if (pairs[i].v != 0 &&
				    (i == 0 || pairs[i].cls != pairs[i - 1].cls || pairs[i].v != pairs[i - 1].v))
					distinct++;
				if (i + 1 == x->n || pairs[i + 1].cls != pairs[i].cls)
					if (distinct < l)
						keep[pairs[i].cls] = 0;
			}
		}
	}
	*nclasses = ncls;
	*kept_classes = 0;
	*suppressed = 0;
	for (i = 0; i < ncls; i++) {
		if (keep[i])
			(*kept_classes)++;
		else
			*suppressed += count[i];
	}
	*keep_out = keep;
	keep = NULL;
	r = 0;
out:
	free(slot);
	free(first);
	free(count);
	free(keep);
	free(pairs);
	return r;
}

/* Distinct codes of quasi-identifier q at level lv (the Datafly choice). */
static int
export_distinct(const struct export_rows *x, size_t q, unsigned lv, size_t *out)
{
	int64_t *v;
	size_t i, n = 0;

	*out = 0;
	if (x->n == 0)
		return 0;
	if ((v = malloc(x->n * sizeof(*v))) == NULL)
		return CG_ERR_NOMEM;
	for (i = 0; i < x->n; i++)
		v[i] = export_code(x, i, q, lv);
	qsort(v, x->n, sizeof(*v), export_i64_cmp);
	for (i = 0; i < x->n; i++)
		if (i == 0 || v[i] != v[i - 1])
			n++;
	free(v);
	*out = n;
	return 0;
}

/* Render quasi-identifier q of row i at level lv. */
static int
export_render_qi(const struct export_rows *x, size_t i, size_t q, unsigned lv, char *out, size_t size)
{
	const struct policy_column *c = x->cols[q].col;
	int64_t v = x->qi[i * x->nqi + q];

	if (v == EXPORT_STAR || lv >= export_top(c)) {
		snprintf(out, size, "*");
		return 0;
	}
	if (c->gen == POLICY_GEN_BAND)
		return policy_generalize_band(c->bands[lv], v, out, size);
	if (v < 0 || (size_t)v >= x->intern[q].n)
		return CG_ERR_INTERNAL;
	snprintf(out, size, "%s", x->intern[q].s[v]);
	return 0;
}

static int
export_write_file(const char *path, const struct export_rows *x, const unsigned *lv, const uint32_t *cls,
    const uint8_t *keep, uint64_t *written, struct cg_err *err)
{
	unsigned char *pkey = NULL, pn[16];
	uint32_t *order = NULL;
	char hex[33], gen[256], cell[2 * 256 + 3];
	struct outfile of = { 0 };
	size_t i, q;
	int r;

	*written = 0;
	if ((order = malloc((x->n + 1) * sizeof(*order))) == NULL ||
	    (pkey = secmem_alloc(crypto_generichash_KEYBYTES)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* The pseudonym key: fresh, in locked memory, wiped when this export is written. */
	randombytes_buf(pkey, crypto_generichash_KEYBYTES);
	/* Shuffle: the store's order must not leak into the export. */
	for (i = 0; i < x->n; i++)
		order[i] = (uint32_t)i;
	for (i = x->n; i > 1; i--) {
		size_t k2 = randombytes_uniform((uint32_t)i);
		uint32_t t = order[i - 1];
		order[i - 1] = order[k2];
		order[k2] = t;
	}
	if ((r = outfile_open(&of, path, 0640, err)) != 0)
		goto out;
	fputs("pseudonym", of.f);
	for (q = 0; q < x->ncols; q++)
		fprintf(of.f, ",%s", x->cols[q].name);
	fputc('\n', of.f);
	for (i = 0; i < x->n; i++) {
		size_t row = order[i];

		if (!keep[cls[row]])
			continue;
		crypto_generichash(pn, sizeof(pn), (const unsigned char *)&x->ids[2 * row], 2 * sizeof(x->ids[0]), pkey,
		    crypto_generichash_KEYBYTES);
		sodium_bin2hex(hex, sizeof(hex), pn, sizeof(pn));
		fputs(hex, of.f);
		for (q = 0; q < x->nqi; q++) {
			if ((r = export_render_qi(x, row, q, lv[q], gen, sizeof(gen))) != 0) {
				r = cg_err_set(err, CG_ERR_INTERNAL, "cannot generalize an export cell");
				goto out;
			}
			fputc(',', of.f);
			fwrite(cell, 1, csv_write(cell, sizeof(cell), gen, strlen(gen)), of.f);
		}
		fwrite(x->arena.p + x->off[row], 1, x->off[row + 1] - x->off[row], of.f);
		fputc('\n', of.f);
		(*written)++;
	}
	r = outfile_commit(&of, err);
out:
	outfile_abort(&of);
	if (pkey != NULL)
		secmem_free(pkey, crypto_generichash_KEYBYTES);
	free(order);
	return r;
}

static int
export_write_meta(const char *path, const struct export_opts *o, const struct export_rows *x, const unsigned *lv,
    const struct export_stats *stats, struct cg_err *err)
{
	json_t *m = json_object(), *sens = json_array(), *levels = json_object();
	struct outfile of = { 0 };
	char *mpath = NULL, hash[65], when[32];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;
	int r = 0;

	if (m == NULL || sens == NULL || levels == NULL || (mpath = malloc(strlen(path) + 16)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	sprintf(mpath, "%s.meta.json", path);
	sodium_bin2hex(hash, sizeof(hash), o->pol->hash, sizeof(o->pol->hash));
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (i = 0; i < x->nsens; i++)
		json_array_append_new(sens, json_string(x->cols[x->sens[i]].name));
	for (i = 0; i < x->nqi; i++)
		json_object_set_new(levels, x->cols[i].name, json_integer(lv[i]));
	json_object_set_new(m, "export_id", json_string(stats->export_id));
	json_object_set_new(m, "purpose", json_string(o->purpose));
	json_object_set_new(m, "analyst", json_string(o->analyst->name));
	json_object_set_new(m, "k", json_integer(stats->k));
	json_object_set_new(m, "l", json_integer(stats->l));
	json_object_set_new(m, "sensitive", sens);
	sens = NULL;
	json_object_set_new(m, "suppression_limit", json_real((double)stats->suppression_ppm / 1e6));
	json_object_set_new(m, "rows", json_integer((json_int_t)stats->exported));
	json_object_set_new(m, "suppressed", json_integer((json_int_t)stats->suppressed));
	json_object_set_new(m, "candidates", json_integer((json_int_t)stats->candidates));
	json_object_set_new(m, "levels", levels);
	levels = NULL;
	json_object_set_new(m, "policy_hash", json_string(hash));
	json_object_set_new(m, "audit_index", json_integer((json_int_t)stats->audit_index));
	json_object_set_new(m, "created", json_string(when));
	json_object_set_new(m, "left", json_string(x->j->side[0]->id));
	json_object_set_new(m, "right", json_string(x->j->side[1]->id));
	if ((r = outfile_open(&of, mpath, 0640, err)) == 0) {
		if (json_dumpf(m, of.f, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
			r = cg_err_set(err, CG_ERR_IO, "cannot write %s", mpath);
		r = r != 0 ? r : outfile_commit(&of, err);
		outfile_abort(&of);
	}
out:
	json_decref(m);
	json_decref(sens);
	json_decref(levels);
	free(mpath);
	return r;
}

/* The export's audit event: ok, or refused with a reason. */
static int
export_log(struct audit *a, const struct export_opts *o, struct export_stats *stats, const char *outcome,
    const char *reason, const unsigned char *export_id, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[9], *cep[9];
	const char *names[9] = { "matched", "no_consent", "candidates", "exported", "suppressed", "ambiguous",
		"superseded", "l", "suppression_ppm" };
	uint64_t vals[9] = { stats->matched, stats->no_consent, stats->candidates, stats->exported, stats->suppressed,
		stats->ambiguous, stats->superseded, stats->l, stats->suppression_ppm };
	size_t i;
	int r;

	crossgate__audit_event__init(&ev);
	ev.actor = (char *)(o->analyst != NULL ? o->analyst->name : "analyst");
	ev.action = (char *)"export";
	ev.outcome = (char *)outcome;
	ev.reason = (char *)(reason ? reason : "");
	ev.purpose = (char *)o->purpose;
	ev.k = o->pol->k;
	ev.policy_hash.data = (uint8_t *)o->pol->hash;
	ev.policy_hash.len = sizeof(o->pol->hash);
	if (export_id != NULL) {
		ev.batch_id.data = (uint8_t *)export_id;
		ev.batch_id.len = 16;
	}
	for (i = 0; i < 9; i++) {
		crossgate__audit_event__counts_entry__init(&ce[i]);
		ce[i].key = (char *)names[i];
		ce[i].value = vals[i];
		cep[i] = &ce[i];
	}
	ev.counts = cep;
	ev.n_counts = 9;
	if ((r = audit_log(a, &ev, err)) == 0)
		stats->audit_index = ev.seq;
	return r;
}

static void
export_rows_free(struct export_rows *x)
{
	size_t q, i;

	for (q = 0; q < JOIN_COLS_MAX; q++) {
		for (i = 0; i < x->intern[q].n; i++)
			free(x->intern[q].s[i]);
		free(x->intern[q].s);
	}
	free(x->arena.p);
	free(x->off);
	free(x->qi);
	free(x->sv);
	free(x->ids);
	sodium_memzero(x->hkey, sizeof(x->hkey));
}

int
export_run(struct store *st, struct audit *a, const struct export_opts *o, struct export_stats *stats,
    struct cg_err *err)
{
	const struct policy *pol = o->pol;
	struct join j;
	struct export_rows *x = NULL;
	unsigned lv[JOIN_COLS_MAX];
	uint32_t *cls = NULL;
	uint8_t *keep = NULL;
	unsigned char export_id[16];
	uint64_t ncls = 0;
	size_t q, c, best;
	char reason[256];
	int pbit, r;

	memset(stats, 0, sizeof(*stats));
	memset(&j, 0, sizeof(j));
	stats->k = pol->k;
	stats->l = pol->privacy.l;
	stats->suppression_ppm = pol->privacy.suppression_ppm;
	randombytes_buf(export_id, sizeof(export_id));
	sodium_bin2hex(stats->export_id, sizeof(stats->export_id), export_id, sizeof(export_id));
	if ((pbit = policy_purpose_bit(pol, o->purpose)) < 0)
		return cg_err_set(err, CG_ERR_POLICY, "purpose '%.64s' is not in the policy", o->purpose);
	/* Row exports are the exception channel: only where the policy says so, for this analyst and purpose. */
	if (o->analyst == NULL || !policy_principal_may_row_export(pol, o->analyst, o->purpose)) {
		snprintf(reason, sizeof(reason), "no row exports for this analyst and purpose (policy row_exports)");
		if ((r = export_log(a, o, stats, "refused", reason, NULL, err)) != 0)
			return r;
		return cg_err_set(err, CG_ERR_POLICY, "analyst '%s' may not take row exports for purpose '%s' (the "
		    "policy's row_exports); use aggregates (crossgate query)", o->analyst ? o->analyst->name : "?",
		    o->purpose);
	}
	if ((r = budget_export_charge(st, a, o->analyst->name, o->purpose,
	    policy_principal_max_exports(pol, o->analyst), err)) != 0)
		return r;

	if ((r = join_run(st, pol, o->left, o->right, &j, err)) != 0)
		goto out;
	stats->left_records = j.nref[0];
	stats->right_records = j.nref[1];
	stats->superseded = j.superseded;
	stats->matched = j.matched;
	stats->ambiguous = j.ambiguous;
	stats->load_seconds = j.load_seconds;
	stats->join_seconds = j.join_seconds;

	if ((x = calloc(1, sizeof(*x))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	x->j = &j;
	randombytes_buf(x->hkey, sizeof(x->hkey));
	join_columns(&j, pbit, x->cols, &x->ncols, &x->nqi);
	for (c = x->nqi; c < x->ncols; c++) {
		if (!x->cols[c].col->sensitive)
			continue;
		if (x->nsens == EXPORT_SENS_MAX) {
			/* never skip one: an unchecked sensitive column would go out without l-diversity */
			r = cg_err_set(err, CG_ERR_LIMIT, "more than %d sensitive columns in one export", EXPORT_SENS_MAX);
			goto out;
		}
		x->sens[x->nsens++] = c;
	}
	if ((r = join_each(st, o->storage, &j, pbit, JOIN_BOTH, export_collect, x, &stats->no_consent, err)) != 0)
		goto out;
	stats->candidates = x->n;

	/* Datafly: climb the hierarchy of the most varied quasi-identifier until suppression fits the limit. */
	for (q = 0; q < x->nqi; q++)
		lv[q] = 0;
	if ((cls = malloc((x->n + 1) * sizeof(*cls))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		size_t most = 0, d;

		free(keep);
		keep = NULL;
		if ((r = export_classes(x, lv, pol->k, pol->privacy.l, cls, &keep, &ncls, &stats->classes,
		    &stats->suppressed)) != 0) {
			r = cg_err_set(err, r, "out of memory grouping the export");
			goto out;
		}
		if ((unsigned __int128)stats->suppressed * 1000000 <=
		    (unsigned __int128)pol->privacy.suppression_ppm * stats->candidates)
			break;
		best = x->nqi;
		for (q = 0; q < x->nqi; q++) {
			if (lv[q] >= export_top(x->cols[q].col))
				continue;
			if ((r = export_distinct(x, q, lv[q], &d)) != 0) {
				r = cg_err_set(err, r, "out of memory grouping the export");
				goto out;
			}
			if (best == x->nqi || d > most) {
				best = q;
				most = d;
			}
		}
		if (best == x->nqi) {
			snprintf(reason, sizeof(reason), "suppression limit: %llu of %llu rows would be suppressed",
			    (unsigned long long)stats->suppressed, (unsigned long long)stats->candidates);
			if ((r = export_log(a, o, stats, "refused", reason, export_id, err)) != 0)
				goto out;
			r = cg_err_set(err, CG_ERR_POLICY, "export refused: even at the coarsest generalization %llu of "
			    "%llu rows (%.1f%%) fail k = %u or l = %u, above the policy's suppression limit of %.1f%%; "
			    "nothing was written", (unsigned long long)stats->suppressed,
			    (unsigned long long)stats->candidates, 100.0 * (double)stats->suppressed /
			    (double)stats->candidates, pol->k, pol->privacy.l, pol->privacy.suppression_ppm / 1e4);
			stats->suppressed = 0;
			stats->classes = 0;
			goto out;
		}
		lv[best]++;
	}
	{
		size_t off = 0;

		stats->levels[0] = '\0';
		for (q = 0; q < x->nqi && off < sizeof(stats->levels); q++)
			off += (size_t)snprintf(stats->levels + off, sizeof(stats->levels) - off, "%s%s=%u",
			    q ? " " : "", x->cols[q].name, lv[q]);
	}
	if ((r = export_write_file(o->out_path, x, lv, cls, keep, &stats->exported, err)) != 0)
		goto out;
	if ((r = export_log(a, o, stats, "ok", NULL, export_id, err)) != 0)
		goto out;
	r = export_write_meta(o->out_path, o, x, lv, stats, err);
out:
	(void)ncls;
	if (x != NULL) {
		export_rows_free(x);
		free(x);
	}
	free(cls);
	free(keep);
	join_free(&j);
	return r;
}
