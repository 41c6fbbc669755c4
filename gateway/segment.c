/* segment.c - see segment.h */
#include "gateway/segment.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "base/csvfile.h"
#include "gateway/query.h"

#define SEGMENT_FILE_MAX (1 << 20)   /* a released k-means CSV is at most MODEL_K_MAX short lines */

struct segment {
	char path[256];
	size_t ncols, nclusters;
	char cols[MODEL_COLS_MAX][160];
	int64_t lo[MODEL_COLS_MAX], hi[MODEL_COLS_MAX];
	int log1p;
	uint32_t k, cluster;                 /* cluster: the chosen one, 1-based */
	uint32_t id[MODEL_K_MAX];            /* the released clusters' numbers, in file order */
	double centre[MODEL_K_MAX][MODEL_COLS_MAX];   /* in model.h's fixed-point units */
	struct join_col jc[MODEL_COLS_MAX];  /* after segment_bind */
	int bound;
	unsigned char hash[crypto_hash_sha256_BYTES];
};

void
segment_free(struct segment *s)
{
	free(s);
}

size_t
segment_ncols(const struct segment *s)
{
	return s->ncols;
}

void
segment_hash_hex(const struct segment *s, char out[65])
{
	sodium_bin2hex(out, 65, s->hash, sizeof(s->hash));
}

size_t
segment_canon(const struct segment *s, char *out, size_t size)
{
	char hex[65];
	size_t n, i;
	int w;

	segment_hash_hex(s, hex);
	w = snprintf(out, size, "segment sha256 %s cluster %u of %u columns", hex, s->cluster, s->k);
	n = w > 0 ? (size_t)w : 0;
	for (i = 0; i < s->ncols; i++) {
		w = snprintf(n < size ? out + n : NULL, n < size ? size - n : 0, "%s%s", i ? "," : " ", s->cols[i]);
		n += w > 0 ? (size_t)w : 0;
	}
	w = snprintf(n < size ? out + n : NULL, n < size ? size - n : 0, " %s", s->log1p ? "log1p" : "linear");
	return n + (w > 0 ? (size_t)w : 0);
}

/* A whole file in memory (it is small): the CSV for its hash and its parse from the same bytes. */
static int
segment_slurp(const char *path, const char *shown, char **buf, size_t *len, struct cg_err *err)
{
	FILE *f = fopen(path, "rb");
	size_t n;
	int r;

	*buf = NULL;
	if (f == NULL)
		return cg_err_set(err, errno == ENOENT ? CG_ERR_FORMAT : CG_ERR_IO, "segment %s: %s%s", shown,
		    path == shown ? "" : "no readable sidecar: ", strerror(errno));
	if ((*buf = malloc(SEGMENT_FILE_MAX + 1)) == NULL) {
		fclose(f);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	n = fread(*buf, 1, SEGMENT_FILE_MAX + 1, f);
	if (ferror(f)) {
		fclose(f);
		r = cg_err_set(err, CG_ERR_IO, "segment %s: read error", shown);
		goto fail;
	}
	fclose(f);
	if (n > SEGMENT_FILE_MAX) {
		r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: larger than a released k-means output", shown);
		goto fail;
	}
	*len = n;
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	return r;
}

/* The sidecar: a k-means release's, with bounds for every column. */
static int
segment_meta(struct segment *s, const char *path, const char *meta, size_t mlen, struct cg_err *err)
{
	json_error_t je;
	json_t *m, *cols, *bounds, *v;
	size_t i;
	int r = 0;

	if ((m = json_loadb(meta, mlen, 0, &je)) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "segment %s: no readable sidecar %s.meta.json (%s): not a released "
		    "k-means output", path, path, je.text);
	v = json_object_get(m, "model");
	if (!json_is_string(v) || strcmp(json_string_value(v), "kmeans") != 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: the sidecar is not a k-means release's (\"model\": "
		    "\"kmeans\"; release one with 'crossgate query --model kmeans')", path);
		goto out;
	}
	cols = json_object_get(m, "columns");
	bounds = json_object_get(m, "bounds");
	v = json_object_get(m, "fixed_point");
	if (!json_is_array(cols) || json_array_size(cols) < 1 || json_array_size(cols) > MODEL_COLS_MAX ||
	    !json_is_object(bounds) || !json_is_boolean(json_object_get(m, "log1p")) || !json_is_integer(v) ||
	    !json_is_integer(json_object_get(m, "k")) || !json_is_integer(json_object_get(m, "clusters_released"))) {
		r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: the sidecar lacks columns, bounds, log1p, k, "
		    "fixed_point or clusters_released", path);
		goto out;
	}
	if (json_integer_value(v) != MODEL_FIX) {
		r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: the sidecar's fixed_point is not %d", path, MODEL_FIX);
		goto out;
	}
	s->log1p = json_is_true(json_object_get(m, "log1p"));
	if (json_integer_value(json_object_get(m, "k")) < 1 || json_integer_value(json_object_get(m, "k")) > MODEL_K_MAX) {
		r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: the sidecar's k is not in 1..%d", path, MODEL_K_MAX);
		goto out;
	}
	s->k = (uint32_t)json_integer_value(json_object_get(m, "k"));
	s->nclusters = (size_t)json_integer_value(json_object_get(m, "clusters_released"));
	s->ncols = json_array_size(cols);
	for (i = 0; i < s->ncols; i++) {
		json_t *c = json_array_get(cols, i), *b;
		const char *name = json_string_value(c);

		b = name != NULL ? json_object_get(bounds, name) : NULL;
		if (name == NULL || strlen(name) >= sizeof(s->cols[i]) || !json_is_array(b) || json_array_size(b) != 2 ||
		    !json_is_integer(json_array_get(b, 0)) || !json_is_integer(json_array_get(b, 1))) {
			r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: the sidecar's column %zu has no [lo, hi] bounds", path,
			    i + 1);
			goto out;
		}
		snprintf(s->cols[i], sizeof(s->cols[i]), "%s", name);
		s->lo[i] = json_integer_value(json_array_get(b, 0));
		s->hi[i] = json_integer_value(json_array_get(b, 1));
		if (s->hi[i] <= s->lo[i] || (s->log1p && s->lo[i] < 0)) {
			r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: the sidecar's bounds of '%s' are not usable", path,
			    name);
			goto out;
		}
	}
out:
	json_decref(m);
	return r;
}

/* A released centre coordinate (column units) into the fixed point, as model.c maps a value (unrounded). */
static double
segment_fix(const struct segment *s, size_t t, double c)
{
	double lo = (double)s->lo[t], hi = (double)s->hi[t], u;

	c = c < lo ? lo : c > hi ? hi : c;
	u = s->log1p ? (log1p(c) - log1p(lo)) / (log1p(hi) - log1p(lo)) : (c - lo) / (hi - lo);
	return u * MODEL_FIX - MODEL_FIX / 2;
}

static int
segment_number(const char *f, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(f, &end);
	return f[0] != '\0' && *end == '\0' && errno == 0 && isfinite(*out);
}

/* The CSV: its header names the sidecar's columns in order, then one line per released cluster. */
static int
segment_rows(struct segment *s, const char *path, const char *buf, size_t len, struct cg_err *err)
{
	struct csvfile *cf = NULL;
	struct csvfile_row *row;
	size_t t;
	int r, hdr = 1;

	if ((r = csvfile_open_mem(path, buf, len, &cf, err)) != 0)
		return cg_err_set(err, r, "segment %s: cannot read the CSV", path);
	while ((r = csvfile_next(cf, &row, err)) == 1) {
		double v;
		if (row->nfields != s->ncols + 2) {
			r = cg_err_set(err, CG_ERR_FORMAT, "segment %s:%llu: %zu fields where a k-means release over the "
			    "sidecar's %zu columns has %zu", path, (unsigned long long)row->line, row->nfields, s->ncols,
			    s->ncols + 2);
			goto out;
		}
		if (hdr) {
			hdr = 0;
			if (strcmp(row->fields[0], "cluster") != 0 || strcmp(row->fields[1], "count") != 0) {
				r = cg_err_set(err, CG_ERR_FORMAT, "segment %s:1: the header is not 'cluster,count,<col>...': not "
				    "a released k-means output", path);
				goto out;
			}
			for (t = 0; t < s->ncols; t++)
				if (strcmp(row->fields[t + 2], s->cols[t]) != 0) {
					r = cg_err_set(err, CG_ERR_FORMAT, "segment %s:1: column %zu is '%.64s' but the sidecar says "
					    "'%s': the CSV and its sidecar do not belong together", path, t + 1, row->fields[t + 2],
					    s->cols[t]);
					goto out;
				}
			continue;
		}
		if (s->nclusters >= MODEL_K_MAX || !segment_number(row->fields[0], &v) || v < 1 || v > s->k ||
		    v != floor(v)) {
			r = cg_err_set(err, CG_ERR_FORMAT, "segment %s:%llu: not a cluster number in 1..%u", path,
			    (unsigned long long)row->line, s->k);
			goto out;
		}
		s->id[s->nclusters] = (uint32_t)v;
		for (t = 0; t < s->nclusters; t++)
			if (s->id[t] == s->id[s->nclusters]) {
				r = cg_err_set(err, CG_ERR_FORMAT, "segment %s:%llu: cluster %u twice", path,
				    (unsigned long long)row->line, s->id[t]);
				goto out;
			}
		for (t = 0; t < s->ncols; t++) {
			if (!segment_number(row->fields[t + 2], &v)) {
				r = cg_err_set(err, CG_ERR_FORMAT, "segment %s:%llu: the centre's '%s' is not a number", path,
				    (unsigned long long)row->line, s->cols[t]);
				goto out;
			}
			s->centre[s->nclusters][t] = segment_fix(s, t, v);
		}
		s->nclusters++;
	}
	if (r < 0) {
		/* csvfile's "NAME:LINE: reason", said as a segment's */
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		r = cg_err_set(err, r, "segment %s", why);
		goto out;
	}
	r = 0;
	if (hdr)
		r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: empty: not a released k-means output", path);
out:
	csvfile_free(cf);
	return r;
}

int
segment_read(const char *path, char **csv, size_t *len, char **meta, size_t *mlen, struct cg_err *err)
{
	char mpath[512];
	int r;

	*csv = *meta = NULL;
	if (snprintf(mpath, sizeof(mpath), "%s.meta.json", path) >= (int)sizeof(mpath))
		return cg_err_set(err, CG_ERR_ARG, "segment %.64s...: path too long", path);
	if ((r = segment_slurp(path, path, csv, len, err)) == 0 && (r = segment_slurp(mpath, path, meta, mlen, err)) == 0)
		return 0;
	free(*csv);
	free(*meta);
	*csv = *meta = NULL;
	return r;
}

int
segment_load(const char *path, uint32_t cluster, struct segment **out, struct cg_err *err)
{
	char *buf, *meta;
	size_t len = 0, mlen = 0;
	int r;

	*out = NULL;
	if ((r = segment_read(path, &buf, &len, &meta, &mlen, err)) != 0)
		return r;
	r = segment_load_mem(path, buf, len, meta, mlen, cluster, out, err);
	free(buf);
	free(meta);
	return r;
}

int
segment_load_mem(const char *name, const char *csv, size_t len, const char *meta, size_t mlen, uint32_t cluster,
    struct segment **out, struct cg_err *err)
{
	struct segment *s;
	size_t i, declared;
	int r;

	*out = NULL;
	if (len > SEGMENT_FILE_MAX || mlen > SEGMENT_FILE_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "segment %s: larger than a released k-means output", name);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	snprintf(s->path, sizeof(s->path), "%s", name);
	s->cluster = cluster;
	if ((r = segment_meta(s, s->path, meta, mlen, err)) != 0)
		goto out;
	crypto_hash_sha256(s->hash, (const unsigned char *)csv, len);
	declared = s->nclusters;
	s->nclusters = 0;
	if ((r = segment_rows(s, s->path, csv, len, err)) != 0)
		goto out;
	if (s->nclusters != declared) {
		r = cg_err_set(err, CG_ERR_FORMAT, "segment %s: %zu clusters where the sidecar says %zu were released: the "
		    "CSV and its sidecar do not belong together", s->path, s->nclusters, declared);
		goto out;
	}
	for (i = 0; i < s->nclusters; i++)
		if (s->id[i] == cluster)
			break;
	if (i == s->nclusters) {
		if (cluster < 1 || cluster > s->k)
			r = cg_err_set(err, CG_ERR_ARG, "segment %s: --cluster %u: the model has clusters 1..%u", s->path,
			    cluster, s->k);
		else
			r = cg_err_set(err, CG_ERR_ARG, "segment %s: cluster %u was not released (its noisy count was below "
			    "the threshold): choose one of the file's clusters", s->path, cluster);
		goto out;
	}
	*out = s;
	s = NULL;
out:
	segment_free(s);
	return r;
}

int
segment_bind(struct segment *s, const struct join_col *cols, size_t ncols, struct cg_err *err)
{
	const struct join_col *jc;
	size_t t;
	int r;

	for (t = 0; t < s->ncols; t++) {
		if ((r = query_bounded_column(cols, ncols, s->cols[t], &jc, err)) != 0) {
			char why[sizeof(err->msg)];

			snprintf(why, sizeof(why), "%s", err->msg);
			return cg_err_set(err, r, "segment %s: %s (for marketing)", s->path, why);
		}
		s->jc[t] = *jc;
	}
	s->bound = 1;
	return 0;
}

uint32_t
segment_nearest(const struct segment *s, const int64_t *x)
{
	double z[MODEL_COLS_MAX], bd = INFINITY;
	size_t i, t, best = 0;

	for (t = 0; t < s->ncols; t++)
		z[t] = (double)model_coord(x[t], s->lo[t], s->hi[t], s->log1p);
	for (i = 0; i < s->nclusters; i++) {
		double d = 0;
		for (t = 0; t < s->ncols; t++)
			d += (z[t] - s->centre[i][t]) * (z[t] - s->centre[i][t]);
		/* ties to the lowest cluster number, whatever the file's order */
		if (d < bd || (d == bd && s->id[i] < s->id[best])) {
			bd = d;
			best = i;
		}
	}
	return s->id[best];
}

int
segment_eval(const struct segment *s, Crossgate__RecordPayload *const pl[2])
{
	int64_t x[MODEL_COLS_MAX];
	size_t t;

	if (!s->bound)
		return 0;
	for (t = 0; t < s->ncols; t++) {
		const struct policy_column *c;
		const Crossgate__Field *f = join_col_field(&s->jc[t], pl, &c);
		if (f == NULL || f->value_case != CROSSGATE__FIELD__VALUE_INT_VALUE)
			return 0;     /* lacks a column: in no cluster, as the model left it out */
		x[t] = f->int_value;
	}
	return segment_nearest(s, x) == s->cluster;
}
