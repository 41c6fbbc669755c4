/* recommend.c - see recommend.h. */
#include <csv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/recommend.h"
#include "base/csvfile.h"
#include "base/outfile.h"

struct recommend_table {
	char *from[RECOMMEND_CATS_MAX], *to[RECOMMEND_CATS_MAX];
	size_t nfrom, nto;
	int64_t *n;                          /* n[i * RECOMMEND_CATS_MAX + j]: clamped noisy count of (from i, to j) */
	unsigned char *seen;                 /* a cell given twice is an error */
	int64_t row[RECOMMEND_CATS_MAX];     /* n_a */
	int64_t col[RECOMMEND_CATS_MAX];     /* n_b */
	int64_t total;
};

void
recommend_table_free(struct recommend_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nfrom; i++)
		free(t->from[i]);
	for (i = 0; i < t->nto; i++)
		free(t->to[i]);
	free(t->n);
	free(t->seen);
	free(t);
}

/* Index of `s` in names[0..*n), added if new; -1 when full or out of memory. */
static int
recommend_intern(char **names, size_t *n, const char *s)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	if (*n == RECOMMEND_CATS_MAX || (names[*n] = strdup(s)) == NULL)
		return -1;
	return (int)(*n)++;
}

static int
recommend_col(const struct csvfile_row *hdr, const char *name)
{
	size_t i;

	for (i = 0; i < hdr->nfields; i++)
		if (strcmp(hdr->fields[i], name) == 0)
			return (int)i;
	return -1;
}

static int
recommend_count(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v < 0 ? 0 : v;   /* a noisy count below zero is evidence of nothing */
	return 0;
}

int
recommend_table_load(const char *path, const char *from_col, const char *to_col, struct recommend_table **out,
    struct cg_err *err)
{
	struct recommend_table *t = NULL;
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	int r, fc, tc, cc, a, b;
	int64_t v;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->n = calloc((size_t)RECOMMEND_CATS_MAX * RECOMMEND_CATS_MAX, sizeof(*t->n))) == NULL ||
	    (t->seen = calloc((size_t)RECOMMEND_CATS_MAX * RECOMMEND_CATS_MAX, 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = csvfile_open(path, &f, err)) != 0)
		goto out;
	if ((r = csvfile_next(f, &row, err)) < 0)
		goto out;
	if (r == 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: empty file: expected an affinity answer's header", path);
		goto out;
	}
	fc = recommend_col(row, from_col);
	tc = recommend_col(row, to_col);
	cc = recommend_col(row, "count");
	if (fc < 0 || tc < 0 || cc < 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: the header lacks column %s", path,
		    (unsigned long long)row->line, fc < 0 ? from_col : tc < 0 ? to_col : "count");
		goto out;
	}
	while ((r = csvfile_next(f, &row, err)) == 1) {
		if (row->nfields <= (size_t)fc || row->nfields <= (size_t)tc || row->nfields <= (size_t)cc) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: %zu fields, fewer than the header's", path,
			    (unsigned long long)row->line, row->nfields);
			goto out;
		}
		if (recommend_count(row->fields[cc], &v) != 0) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu (count): not an integer", path,
			    (unsigned long long)row->line);
			goto out;
		}
		/* "*" is every value outside a public domain: no category to offer or to hold. */
		if (strcmp(row->fields[fc], "*") == 0 || strcmp(row->fields[tc], "*") == 0)
			continue;
		if ((a = recommend_intern(t->from, &t->nfrom, row->fields[fc])) < 0 ||
		    (b = recommend_intern(t->to, &t->nto, row->fields[tc])) < 0) {
			r = cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: more than %d categories on a side", path,
			    (unsigned long long)row->line, RECOMMEND_CATS_MAX);
			goto out;
		}
		if (t->seen[a * RECOMMEND_CATS_MAX + b]) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: the same pair of categories twice", path,
			    (unsigned long long)row->line);
			goto out;
		}
		t->seen[a * RECOMMEND_CATS_MAX + b] = 1;
		t->n[a * RECOMMEND_CATS_MAX + b] = v;
		t->row[a] += v;
		t->col[b] += v;
		t->total += v;
	}
	if (r < 0)
		goto out;
	*out = t;
	t = NULL; /* transferred */
	r = 0;
out:
	csvfile_free(f);
	recommend_table_free(t);
	return r;
}

int
recommend_best(const struct recommend_table *t, const char *from, const char **to, double *lift)
{
	size_t a, b;
	int best = -1;
	double bl = 0, l;
	int64_t nab;

	*to = NULL;
	*lift = 0;
	for (a = 0; a < t->nfrom; a++)
		if (strcmp(t->from[a], from) == 0)
			break;
	if (a == t->nfrom || t->row[a] <= 0)
		return CG_ERR_NOTFOUND;
	for (b = 0; b < t->nto; b++) {
		nab = t->n[a * RECOMMEND_CATS_MAX + b];
		if (nab <= 0 || t->col[b] <= 0)
			continue;
		l = ((double)nab / (double)t->row[a]) / ((double)t->col[b] / (double)t->total);
		if (best < 0 || l > bl ||
		    (l == bl && (nab > t->n[a * RECOMMEND_CATS_MAX + (size_t)best] ||
		    (nab == t->n[a * RECOMMEND_CATS_MAX + (size_t)best] && strcmp(t->to[b], t->to[best]) < 0)))) {
			best = (int)b;
			bl = l;
		}
	}
	if (best < 0)
		return CG_ERR_NOTFOUND;
	*to = t->to[best];
	*lift = bl;
	return 0;
}

/*
 * The table's two columns: this partner's category column and another
 * partner's, both as "<partner>_<column>" in the aggregates' header.
 * *own is the partner's column (its name in the partner's own CSV).
 */
static int
recommend_columns(const struct recommend_opts *o, const struct policy_partner *me, struct recommend_stats *st,
    const struct policy_column **own, struct cg_err *err)
{
	struct csvfile *f = NULL;
	struct csvfile_row *hdr;
	const struct policy_partner *pp;
	size_t i, j, k;
	int r;
	char name[160];

	*own = NULL;
	st->from_col[0] = st->to_col[0] = '\0';
	if ((r = csvfile_open(o->aggregates, &f, err)) != 0)
		return r;
	if ((r = csvfile_next(f, &hdr, err)) < 0)
		goto out;
	if (r == 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: empty file: expected an affinity answer's header", o->aggregates);
		goto out;
	}
	for (k = 0; k < hdr->nfields; k++) {
		for (i = 0; i < o->pol->npartners; i++) {
			pp = &o->pol->partners[i];
			for (j = 0; j < pp->ncolumns; j++) {
				if (pp->columns[j].type != POLICY_TYPE_CATEGORY)
					continue;
				snprintf(name, sizeof(name), "%s_%s", pp->id, pp->columns[j].name);
				if (strcmp(name, hdr->fields[k]) != 0)
					continue;
				if (pp == me && *own == NULL) {
					*own = &pp->columns[j];
					snprintf(st->from_col, sizeof(st->from_col), "%s", name);
				} else if (pp != me && st->to_col[0] == '\0') {
					snprintf(st->to_col, sizeof(st->to_col), "%s", name);
				}
			}
		}
	}
	if (*own == NULL || st->to_col[0] == '\0') {
		r = cg_err_set(err, CG_ERR_ARG, "%s: the header names no category column of partner %s and one of "
		    "another partner (ask for a query grouped by one of each, with --metric count)", o->aggregates,
		    me->id);
		goto out;
	}
	r = 0;
out:
	csvfile_free(f);
	return r;
}

static int
recommend_write_row(FILE *f, const char *id, const char *to, double lift, double weight)
{
	csv_fwrite(f, id, strlen(id));
	fputc(',', f);
	csv_fwrite(f, to, strlen(to));
	return fprintf(f, ",%.4f,%.4f\n", lift, weight * lift) < 0 ? -1 : 0;
}

int
recommend_run(const struct recommend_opts *o, struct recommend_stats *st, struct cg_err *err)
{
	const struct policy_partner *me;
	const struct policy_column *own = NULL;
	struct recommend_table *t = NULL;
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct outfile of = { 0 };
	int r, idc = -1, catc = -1;
	size_t i, j;
	const char *to;
	double lift;

	memset(st, 0, sizeof(*st));
	if ((me = policy_partner_find(o->pol, o->partner)) == NULL)
		return cg_err_set(err, CG_ERR_ARG, "partner %s is not in the policy", o->partner);
	if ((r = recommend_columns(o, me, st, &own, err)) != 0 ||
	    (r = recommend_table_load(o->aggregates, st->from_col, st->to_col, &t, err)) != 0 ||
	    (r = csvfile_open(o->input, &f, err)) != 0)
		goto out;
	if ((r = csvfile_next(f, &row, err)) < 0)
		goto out;
	for (i = 0; r == 1 && i < row->nfields; i++) {
		if (strcmp(row->fields[i], own->name) == 0)
			catc = (int)i;
		for (j = 0; j < me->ncolumns; j++)
			if (me->columns[j].role == POLICY_ROLE_LOCAL_ID && strcmp(row->fields[i], me->columns[j].name) == 0)
				idc = (int)i;
	}
	if (r == 0 || idc < 0 || catc < 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s:1: the header lacks %s", o->input,
		    catc < 0 ? own->name : "the partner's local_id column");
		goto out;
	}
	if ((r = outfile_open(&of, o->out, 0600, err)) != 0)
		goto out;
	fprintf(of.f, "user_id,offer,lift,score\n");
	while ((r = csvfile_next(f, &row, err)) != 0) {
		if (r == CG_ERR_FORMAT || r == CG_ERR_LIMIT) {
			st->users++;            /* a bad row is the partner's own; it gets no offer */
			st->no_offer++;
			continue;
		}
		if (r < 0)
			goto out;
		st->users++;
		if (row->nfields <= (size_t)catc || row->nfields <= (size_t)idc ||
		    recommend_best(t, row->fields[catc], &to, &lift) != 0) {
			st->no_offer++;
			continue;
		}
		if (recommend_write_row(of.f, row->fields[idc], to, lift, o->weight) != 0) {
			r = cg_err_set(err, CG_ERR_IO, "%s: write failed", o->out);
			goto out;
		}
		st->offered++;
	}
	r = outfile_commit(&of, err);
out:
	if (r != 0)
		outfile_abort(&of);
	csvfile_free(f);
	recommend_table_free(t);
	return r;
}
