/* dataset.c - see dataset.h */
#include "analytics/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/csvfile.h"

const char *const dataset_num_names[DATASET_NUM_COLS] = {
	"k_course_spend_cents", "k_learning_minutes", "k_courses_bought",
	"k_conversion_value_cents", "g_watch_minutes", "g_gift_spend_cents", "g_streams_followed",
};
const char *const dataset_cat_names[DATASET_CAT_COLS] = {
	"age", "region", "k_top_course_category", "g_top_game_category",
};

/* A categorical column while it is read: levels in first-seen order. */
struct dataset_dict {
	char *names[DATASET_LEVELS_MAX];
	size_t n;
};

int
dataset_parse_number(const char *s, double *out)
{
	const char *p = s;
	char *end;
	double v;
	int digits = 0;

	*out = 0.0;
	if (*p == '-')
		p++;
	while (*p >= '0' && *p <= '9') {
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			digits++;
		}
	}
	/* Only plain decimals: strtod alone would also take "inf", hex and blanks. */
	if (digits == 0 || *p != '\0' || digits > 40)
		return -1;
	v = strtod(s, &end);
	if (*end != '\0' || !isfinite(v) || fabs(v) > DATASET_VALUE_MAX)
		return -1;
	*out = v;
	return 0;
}

static void
dataset_dict_clear(struct dataset_dict *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->names[i]);
	d->n = 0;
}

/* Index of s in d, adding it if new; -1 with err set when the column has too many values. */
static int32_t
dataset_dict_add(struct dataset_dict *d, const char *s, size_t len, const char *where,
    struct cg_err *err)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->names[i], s) == 0)
			return (int32_t)i;
	if (d->n == DATASET_LEVELS_MAX) {
		cg_err_set(err, CG_ERR_LIMIT, "%s: more than %u distinct values", where,
		    DATASET_LEVELS_MAX);
		return -1;
	}
	if ((d->names[d->n] = malloc(len + 1)) == NULL) {
		cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		return -1;
	}
	memcpy(d->names[d->n], s, len + 1);
	return (int32_t)d->n++;
}

static int
dataset_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Move the dictionary into sorted levels, and write old index -> new index
 * into remap: the output must not depend on the export's row order.
 */
static int
dataset_dict_finish(struct dataset_dict *d, struct dataset_levels *lv, int32_t *remap,
    struct cg_err *err)
{
	size_t i, j;

	lv->names = NULL;
	lv->n = 0;
	if (d->n == 0)
		return 0;
	if ((lv->names = malloc(d->n * sizeof(*lv->names))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	memcpy(lv->names, d->names, d->n * sizeof(*lv->names));
	qsort(lv->names, d->n, sizeof(*lv->names), dataset_cmp_str);
	for (i = 0; i < d->n; i++)
		for (j = 0; j < d->n; j++)
			if (lv->names[j] == d->names[i])
				remap[i] = (int32_t)j;
	lv->n = d->n;
	d->n = 0;   /* transferred */
	return 0;
}

int
dataset_levels_copy(const struct dataset_levels *src, struct dataset_levels *dst, struct cg_err *err)
{
	size_t i;

	dst->n = 0;
	if ((dst->names = calloc(src->n + 1, sizeof(*dst->names))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (i = 0; i < src->n; i++) {
		if ((dst->names[i] = strdup(src->names[i])) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		dst->n++;
	}
	return 0;
}

void
dataset_levels_clear(struct dataset_levels *lv)
{
	size_t i;

	for (i = 0; i < lv->n; i++)
		free(lv->names[i]);
	free(lv->names);
	lv->names = NULL;
	lv->n = 0;
}

void
dataset_free(struct dataset *d)
{
	int c;

	if (d == NULL)
		return;
	for (c = 0; c < DATASET_NUM_COLS; c++)
		free(d->num[c]);
	for (c = 0; c < DATASET_CAT_COLS; c++) {
		free(d->cat[c]);
		dataset_levels_clear(&d->levels[c]);
	}
	free(d);
}

/* Column index of each wanted name in the header (-1: absent); rejects empty and repeated names. */
static int
dataset_header(const char *name, const struct csvfile_row *h, const char *const *want, size_t nwant,
    int *col, struct cg_err *err)
{
	size_t i, j;

	for (j = 0; j < nwant; j++)
		col[j] = -1;
	for (i = 0; i < h->nfields; i++) {
		if (h->lens[i] == 0)
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: empty column name in the header",
			    name, (unsigned long long)h->line, i + 1);
		for (j = 0; j < i; j++)
			if (strcmp(h->fields[i], h->fields[j]) == 0)
				return cg_err_set(err, CG_ERR_FORMAT,
				    "%s:%llu:%zu: column %s appears twice in the header", name,
				    (unsigned long long)h->line, i + 1, h->fields[i]);
		for (j = 0; j < nwant; j++)
			if (strcmp(h->fields[i], want[j]) == 0)
				col[j] = (int)i;
	}
	return 0;
}

/* Read the first row (the header); CG_ERR_FORMAT for an empty file. */
static int
dataset_first_row(const char *name, struct csvfile *r, struct csvfile_row **row, struct cg_err *err)
{
	int rc = csvfile_next(r, row, err);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: empty file: no header", name);
	return 0;
}

static int
dataset_row_width(const char *name, const struct csvfile_row *row, size_t width, struct cg_err *err)
{
	if (row->nfields != width)
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: row has %zu fields, the header %zu",
		    name, (unsigned long long)row->line, row->nfields, width);
	return 0;
}

static int
dataset_grow(struct dataset *d, size_t *cap, struct cg_err *err)
{
	size_t ncap = *cap ? *cap * 2 : 1024;
	int c;

	if (ncap > DATASET_ROWS_MAX)
		ncap = DATASET_ROWS_MAX;
	for (c = 0; c < DATASET_NUM_COLS; c++) {
		double *p;

		if (!d->has_num[c])
			continue;
		if ((p = realloc(d->num[c], ncap * sizeof(*p))) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory for %zu rows", ncap);
		d->num[c] = p;
	}
	for (c = 0; c < DATASET_CAT_COLS; c++) {
		int32_t *p;

		if (!d->has_cat[c])
			continue;
		if ((p = realloc(d->cat[c], ncap * sizeof(*p))) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory for %zu rows", ncap);
		d->cat[c] = p;
	}
	*cap = ncap;
	return 0;
}

static int
dataset_read(const char *name, struct csvfile *r, struct dataset **out, struct cg_err *err)
{
	const char *want[DATASET_NUM_COLS + DATASET_CAT_COLS];
	int col[DATASET_NUM_COLS + DATASET_CAT_COLS];
	struct dataset_dict dict[DATASET_CAT_COLS];
	int32_t remap[DATASET_LEVELS_MAX];
	struct csvfile_row *row;
	struct dataset *d = NULL;
	size_t cap = 0, width, i;
	char where[256];
	int c, rc, any = 0;

	memset(dict, 0, sizeof(dict));
	for (c = 0; c < DATASET_NUM_COLS; c++)
		want[c] = dataset_num_names[c];
	for (c = 0; c < DATASET_CAT_COLS; c++)
		want[DATASET_NUM_COLS + c] = dataset_cat_names[c];
	if ((rc = dataset_first_row(name, r, &row, err)) != 0)
		goto out;
	if (strcmp(row->fields[0], "pseudonym") != 0) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:1: not an export: the header must start "
		    "with pseudonym", name, (unsigned long long)row->line);
		goto out;
	}
	width = row->nfields;
	if ((rc = dataset_header(name, row, want, DATASET_NUM_COLS + DATASET_CAT_COLS, col, err)) != 0)
		goto out;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (c = 0; c < DATASET_NUM_COLS; c++)
		any |= d->has_num[c] = col[c] >= 0;
	for (c = 0; c < DATASET_CAT_COLS; c++)
		any |= d->has_cat[c] = col[DATASET_NUM_COLS + c] >= 0;
	if (!any) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: the header has none of the feature columns "
		    "the analytics use", name, (unsigned long long)row->line);
		goto out;
	}
	while ((rc = csvfile_next(r, &row, err)) == 1) {
		if ((rc = dataset_row_width(name, row, width, err)) != 0)
			goto out;
		if (d->nrows == DATASET_ROWS_MAX) {
			rc = cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: more than %u rows", name,
			    (unsigned long long)row->line, DATASET_ROWS_MAX);
			goto out;
		}
		if (d->nrows == cap && (rc = dataset_grow(d, &cap, err)) != 0)
			goto out;
		for (c = 0; c < DATASET_NUM_COLS; c++) {
			const char *s;

			if (!d->has_num[c])
				continue;
			s = row->fields[col[c]];
			if (s[0] == '\0') {
				d->num[c][d->nrows] = NAN;
			} else if (dataset_parse_number(s, &d->num[c][d->nrows]) != 0) {
				rc = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%d (%s): not a decimal number "
				    "within +-1e15", name, (unsigned long long)row->line, col[c] + 1,
				    dataset_num_names[c]);
				goto out;
			}
		}
		for (c = 0; c < DATASET_CAT_COLS; c++) {
			int k = col[DATASET_NUM_COLS + c];
			int32_t v = -1;

			if (!d->has_cat[c])
				continue;
			if (row->lens[k] > 0) {
				snprintf(where, sizeof(where), "%s:%llu:%d (%s)", name,
				    (unsigned long long)row->line, k + 1, dataset_cat_names[c]);
				if ((v = dataset_dict_add(&dict[c], row->fields[k], row->lens[k], where,
				    err)) < 0) {
					rc = err->code;
					goto out;
				}
			}
			d->cat[c][d->nrows] = v;
		}
		d->nrows++;
	}
	if (rc < 0)
		goto out;
	for (c = 0; c < DATASET_CAT_COLS; c++) {
		if ((rc = dataset_dict_finish(&dict[c], &d->levels[c], remap, err)) != 0)
			goto out;
		for (i = 0; d->has_cat[c] && i < d->nrows; i++)
			if (d->cat[c][i] >= 0)
				d->cat[c][i] = remap[d->cat[c][i]];
	}
	*out = d;
	d = NULL;   /* transferred */
	rc = 0;
 out:
	for (c = 0; c < DATASET_CAT_COLS; c++)
		dataset_dict_clear(&dict[c]);
	dataset_free(d);
	return rc;
}

int
dataset_load(const char *path, struct dataset **out, struct cg_err *err)
{
	struct csvfile *r = NULL;
	int rc;

	*out = NULL;
	if ((rc = csvfile_open(path, &r, err)) != 0)
		return rc;
	rc = dataset_read(path, r, out, err);
	csvfile_free(r);
	return rc;
}

int
dataset_load_mem(const char *name, const char *buf, size_t len, struct dataset **out,
    struct cg_err *err)
{
	struct csvfile *r = NULL;
	int rc;

	*out = NULL;
	if ((rc = csvfile_open_mem(name, buf, len, &r, err)) != 0)
		return rc;
	rc = dataset_read(name, r, out, err);
	csvfile_free(r);
	return rc;
}

/* ---- aggregates ------------------------------------------------------------ */

void
dataset_pairs_free(struct dataset_pairs *p)
{
	if (p == NULL)
		return;
	dataset_levels_clear(&p->a);
	dataset_levels_clear(&p->b);
	free(p->count);
	free(p);
}

/* One aggregate row as read: the pair's first-seen level indexes and its value. */
struct dataset_cell {
	int32_t a, b;
	double v;
};

static int
dataset_pairs_read(const char *name, struct csvfile *r, const char *col_a, const char *col_b,
    const char *metric, struct dataset_pairs **out, struct cg_err *err)
{
	const char *want[3] = { col_a, col_b, metric };
	struct dataset_dict da, db;
	int32_t ra[DATASET_LEVELS_MAX], rb[DATASET_LEVELS_MAX];
	struct dataset_cell *cells = NULL, *nc;
	struct dataset_pairs *p = NULL;
	struct csvfile_row *row;
	size_t ncells = 0, cap = 0, width, i;
	char where[256];
	int col[3], rc, j;

	memset(&da, 0, sizeof(da));
	memset(&db, 0, sizeof(db));
	if ((rc = dataset_first_row(name, r, &row, err)) != 0)
		goto out;
	width = row->nfields;
	if ((rc = dataset_header(name, row, want, 3, col, err)) != 0)
		goto out;
	for (j = 0; j < 3; j++) {
		if (col[j] < 0) {
			rc = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: the header has no column %s", name,
			    (unsigned long long)row->line, want[j]);
			goto out;
		}
	}
	while ((rc = csvfile_next(r, &row, err)) == 1) {
		struct dataset_cell cell;

		if ((rc = dataset_row_width(name, row, width, err)) != 0)
			goto out;
		if (ncells == DATASET_ROWS_MAX) {
			rc = cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: more than %u rows", name,
			    (unsigned long long)row->line, DATASET_ROWS_MAX);
			goto out;
		}
		for (j = 0; j < 2; j++) {
			struct dataset_dict *d = j == 0 ? &da : &db;
			int32_t v;

			snprintf(where, sizeof(where), "%s:%llu:%d (%s)", name,
			    (unsigned long long)row->line, col[j] + 1, want[j]);
			if (row->lens[col[j]] == 0) {
				rc = cg_err_set(err, CG_ERR_FORMAT, "%s: empty group value", where);
				goto out;
			}
			if ((v = dataset_dict_add(d, row->fields[col[j]], row->lens[col[j]], where,
			    err)) < 0) {
				rc = err->code;
				goto out;
			}
			if (j == 0)
				cell.a = v;
			else
				cell.b = v;
		}
		if (dataset_parse_number(row->fields[col[2]], &cell.v) != 0) {
			rc = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%d (%s): not a decimal number "
			    "within +-1e15", name, (unsigned long long)row->line, col[2] + 1, metric);
			goto out;
		}
		if (ncells == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nc = realloc(cells, cap * sizeof(*cells))) == NULL) {
				rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			cells = nc;
		}
		cells[ncells++] = cell;
	}
	if (rc < 0)
		goto out;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	p->groups = ncells;
	if ((rc = dataset_dict_finish(&da, &p->a, ra, err)) != 0 ||
	    (rc = dataset_dict_finish(&db, &p->b, rb, err)) != 0)
		goto out;
	if ((p->count = malloc((p->a.n * p->b.n + 1) * sizeof(*p->count))) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < p->a.n * p->b.n; i++)
		p->count[i] = NAN;
	for (i = 0; i < ncells; i++) {
		double *c = &p->count[(size_t)ra[cells[i].a] * p->b.n + (size_t)rb[cells[i].b]];

		*c = isnan(*c) ? cells[i].v : *c + cells[i].v;
	}
	*out = p;
	p = NULL;   /* transferred */
	rc = 0;
 out:
	dataset_dict_clear(&da);
	dataset_dict_clear(&db);
	dataset_pairs_free(p);
	free(cells);
	return rc;
}

int
dataset_pairs_load(const char *path, const char *col_a, const char *col_b, const char *metric,
    struct dataset_pairs **out, struct cg_err *err)
{
	struct csvfile *r = NULL;
	int rc;

	*out = NULL;
	if ((rc = csvfile_open(path, &r, err)) != 0)
		return rc;
	rc = dataset_pairs_read(path, r, col_a, col_b, metric, out, err);
	csvfile_free(r);
	return rc;
}

int
dataset_pairs_load_mem(const char *name, const char *buf, size_t len, const char *col_a,
    const char *col_b, const char *metric, struct dataset_pairs **out, struct cg_err *err)
{
	struct csvfile *r = NULL;
	int rc;

	*out = NULL;
	if ((rc = csvfile_open_mem(name, buf, len, &r, err)) != 0)
		return rc;
	rc = dataset_pairs_read(name, r, col_a, col_b, metric, out, err);
	csvfile_free(r);
	return rc;
}
