/* pack_read.c - reading for pack.c (see pack.h, pack_int.h): the header, each row checked and
 * normalized, windows of rows for the worker threads, merged back in input order. */
#include "agent/pack_int.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "base/normalize.h"
#include "crypto/token.h"
#include "proto/crossgate.pb-c.h"

/* Room for len more bytes; 0 or CG_ERR_NOMEM. */
static int
pack_arena_reserve(struct pack_arena *a, size_t len)
{
	if (a->cap - a->len < len) {
		size_t ncap = a->cap ? a->cap : 65536;
		unsigned char *np;
		while (ncap - a->len < len)
			ncap *= 2;
		if (!a->secret) {
			/* realloc can move large blocks without copying them */
			if ((np = realloc(a->p, ncap)) == NULL)
				return CG_ERR_NOMEM;
		} else {
			/* a secret arena is copied by hand so that the old copy is wiped */
			if ((np = malloc(ncap)) == NULL)
				return CG_ERR_NOMEM;
			if (a->len)
				memcpy(np, a->p, a->len);
			if (a->p != NULL)
				sodium_memzero(a->p, a->len);   /* only [0, len) was ever written since the last wipe */
			free(a->p);
		}
		a->p = np;
		a->cap = ncap;
	}
	return 0;
}

static int
pack_arena_add(struct pack_arena *a, const void *data, size_t len, size_t *off)
{
	if (pack_arena_reserve(a, len) != 0)
		return CG_ERR_NOMEM;
	memcpy(a->p + a->len, data, len);
	*off = a->len;
	a->len += len;
	return 0;
}

void
pack_arena_free(struct pack_arena *a)
{
	/* Bytes past len were never written, or wiped by pack_arena_reset: a reserve stays untouched. */
	if (a->p != NULL && a->secret)
		sodium_memzero(a->p, a->len);
	free(a->p);
	memset(a, 0, sizeof(*a));
}

/* Map the header row onto the schema: every schema column exactly once, nothing else. */
int
pack_header(struct pack_ctx *c, const char *input, const struct csvfile_row *row, struct cg_err *err)
{
	const struct policy_partner *pp = c->pp;
	unsigned char seen[POLICY_COLUMNS_MAX];
	size_t i, j;

	memset(seen, 0, sizeof(seen));
	if (pp->ncolumns > sizeof(seen))
		return cg_err_set(err, CG_ERR_LIMIT, "partner '%s' has too many columns", pp->id);
	if ((c->col_of_field = calloc(row->nfields, sizeof(int))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	c->nheader = row->nfields;
	for (i = 0; i < row->nfields; i++) {
		const char *name = row->fields[i];
		/* A BOM is stripped by the reader; tolerate stray spaces around header names. */
		while (*name == ' ')
			name++;
		for (j = 0; j < pp->ncolumns; j++) {
			size_t n = strlen(pp->columns[j].name);
			if (strncmp(pp->columns[j].name, name, n) == 0 &&
			    strspn(name + n, " ") == strlen(name + n))
				break;
		}
		if (j == pp->ncolumns)
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%.64s' is not in partner '%s''s "
			    "schema in the policy", input, (unsigned long long)row->line, i + 1, name, pp->id);
		if (seen[j])
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%s' appears twice", input,
			    (unsigned long long)row->line, i + 1, pp->columns[j].name);
		seen[j] = 1;
		c->col_of_field[i] = (int)j;
	}
	for (j = 0; j < pp->ncolumns; j++)
		if (!seen[j])
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: missing column '%s' that the policy's "
			    "schema for partner '%s' declares", input, (unsigned long long)row->line,
			    pp->columns[j].name, pp->id);
	return 0;
}

/* Check and keep one data row. CG_ERR_FORMAT/POLICY: the row is bad (message says where and why). */
static int
pack_row_add(const struct pack_ctx *c, struct pack_out *dst, const char *input, const struct csvfile_row *row,
    struct cg_err *err)
{
	const struct policy *pol = c->o->pol;
	const struct policy_partner *pp = c->pp;
	Crossgate__Field fields[POLICY_COLUMNS_MAX], *fp[POLICY_COLUMNS_MAX];
	Crossgate__RecordPayload payload = CROSSGATE__RECORD_PAYLOAD__INIT;
	char norm[2][NORMALIZE_EMAIL_MAX + 1];
	unsigned char pbuf[8192];
	struct pack_row pr;
	struct cg_err sub;
	size_t i, nf = 0, plen, pbound = 0, uid = SIZE_MAX;
	int r, kind, have_consent = 0, have_time = 0;

	memset(&pr, 0, sizeof(pr));
	pr.line = row->line;
	if (row->nfields != c->nheader)
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: row has %zu fields, the header has %zu", input,
		    (unsigned long long)row->line, row->nfields, c->nheader);
	for (i = 0; i < row->nfields; i++) {
		const struct policy_column *col = &pp->columns[c->col_of_field[i]];
		struct policy_value v;

		cg_err_clear(&sub);
		if (col->role == POLICY_ROLE_LOCAL_ID) {
			uid = i;
			continue;
		}
		if (col->role == POLICY_ROLE_IDENTIFIER) {
			kind = col->id_kind == TOKEN_KIND_EMAIL ? 0 : 1;
			if (row->lens[i] == 0 || strspn(row->fields[i], " \t") == row->lens[i])
				continue;
			if (pr.has_id[kind]) {
				r = cg_err_set(&sub, CG_ERR_FORMAT, "a second identifier of the same kind");
			} else if (kind == 0) {
				r = normalize_email(row->fields[i], row->lens[i], &pol->email, norm[0], sizeof(norm[0]),
				    &sub);
			} else {
				r = normalize_phone(row->fields[i], row->lens[i], pol->default_country, norm[1],
				    sizeof(norm[1]), &sub);
			}
			if (r != 0)
				goto bad_cell;
			pr.has_id[kind] = 1;
			continue;
		}
		if ((r = policy_value_parse(pol, col, row->fields[i], row->lens[i], &v, &sub)) != 0)
			goto bad_cell;
		switch (col->role) {
		case POLICY_ROLE_CONSENT:
			pr.consent_bits = v.bits;
			have_consent = 1;
			break;
		case POLICY_ROLE_CONSENT_TIME:
			if (v.is_null) {
				r = cg_err_set(&sub, CG_ERR_FORMAT, "required");
				goto bad_cell;
			}
			pr.consent_at = v.i;
			have_time = 1;
			break;
		default:
			/* Data minimization: a column shared for no purpose never leaves the partner. */
			if (v.is_null || !policy_column_shared(col, -1))
				break;
			crossgate__field__init(&fields[nf]);
			fields[nf].name = col->name;
			if (col->type == POLICY_TYPE_INT) {
				fields[nf].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
				fields[nf].int_value = v.i;
			} else {
				/* The cell is NUL-terminated by the reader; v.s points into it. */
				fields[nf].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
				fields[nf].str_value = row->fields[i];
				pbound += row->lens[i];
			}
			/* At its widest: the field's tag and length, its name's, its value's (a varint of 10). */
			pbound += 11 + 11 + strlen(col->name) + 11;
			fp[nf] = &fields[nf];
			nf++;
			break;
		}
		continue;
bad_cell:
		r = cg_err_set(err, r, "%s:%llu:%zu (%s): %s", input, (unsigned long long)row->line, i + 1,
		    col->name, sub.msg);
		goto out;
	}
	if (!pr.has_id[0] && !pr.has_id[1]) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: no identifier (email or phone)", input,
		    (unsigned long long)row->line);
		goto out;
	}
	if (!have_consent || !have_time) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: consent columns missing", input,
		    (unsigned long long)row->line);
		goto out;
	}
	payload.fields = fp;
	payload.n_fields = nf;
	/* One walk: the size is measured only when the bound does not fit the buffer (or counts
	 * fewer fields than the schema has) */
	if (crossgate__record_payload__descriptor.n_fields != 1 || crossgate__field__descriptor.n_fields != 3)
		pbound = SIZE_MAX;
	if (pbound > sizeof(pbuf) && crossgate__record_payload__get_packed_size(&payload) > sizeof(pbuf)) {
		r = cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: record too large", input, (unsigned long long)row->line);
		goto out;
	}
	plen = crossgate__record_payload__pack(&payload, pbuf);
	if (pack_arena_add(&dst->payloads, pbuf, plen, &pr.payload_off) != 0) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	pr.payload_len = (uint32_t)plen;
	for (kind = 0; kind < 2; kind++) {
		size_t n;
		if (!pr.has_id[kind])
			continue;
		n = strlen(norm[kind]);
		/*
		 * Duplicates are found on the normalized identifiers themselves (hashed
		 * with a key that dies with this run, compared exactly), so that users
		 * without match consent are never tokenized.
		 */
		crypto_shorthash((unsigned char *)&pr.dhash[kind], (const unsigned char *)norm[kind], n, c->dkey_key);
		if (pack_arena_add(&dst->ids, norm[kind], n, &pr.id_off[kind]) != 0) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		pr.id_len[kind] = (uint8_t)n;
	}
	if (uid != SIZE_MAX && row->lens[uid] > 0 && row->lens[uid] <= UINT16_MAX) {
		if (pack_arena_add(&dst->ids, row->fields[uid], row->lens[uid], &pr.uid_off) != 0) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		pr.uid_len = (uint16_t)row->lens[uid];
	}
	if (dst->nrows == dst->caprows) {
		size_t ncap = dst->caprows ? dst->caprows * 2 : 4096;
		struct pack_row *nr = realloc(dst->rows, ncap * sizeof(*nr));
		if (nr == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		dst->rows = nr;
		dst->caprows = ncap;
	}
	dst->rows[dst->nrows++] = pr;   /* parent is set when merged */
	r = 0;
out:
	sodium_memzero(norm, sizeof(norm));
	return r;
}

/* Empty an arena for reuse, wiping what a secret one held. */
static void
pack_arena_reset(struct pack_arena *a)
{
	if (a->p != NULL && a->secret)
		sodium_memzero(a->p, a->len);
	a->len = 0;
}

/* Make room for `more` elements of `size` bytes in *p (cap *cap); 0 or CG_ERR_NOMEM. */
static int
pack_grow(void **p, size_t *cap, size_t n, size_t more, size_t size)
{
	size_t ncap = *cap ? *cap : 1024;
	void *np;

	if (*cap - n >= more)
		return 0;
	while (ncap - n < more)
		ncap *= 2;
	if ((np = realloc(*p, ncap * size)) == NULL)
		return CG_ERR_NOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static void
pack_out_reset(struct pack_out *o)
{
	o->nrows = 0;
	o->nbad = 0;
	pack_arena_reset(&o->ids);
	pack_arena_reset(&o->payloads);
}

static void
pack_out_free(struct pack_out *o)
{
	free(o->rows);
	pack_arena_free(&o->ids);
	pack_arena_free(&o->payloads);
	free(o->bad);
	memset(o, 0, sizeof(*o));
}

void
pack_window_init(struct pack_window *w, struct pack_ctx *c)
{
	memset(w, 0, sizeof(*w));
	w->c = c;
	w->text.secret = 1;
	for (size_t t = 0; t < PACK_WINDOW_TASKS; t++)
		w->out[t].ids.secret = 1;
}

void
pack_window_free(struct pack_window *w)
{
	free(w->rows);
	free(w->fields);
	pack_arena_free(&w->text);
	free(w->errs);
	for (size_t t = 0; t < PACK_WINDOW_TASKS; t++)
		pack_out_free(&w->out[t]);
	memset(w, 0, sizeof(*w));
}

/* Copy one row as read (or its CSV syntax error when row is NULL) into the window. */
int
pack_window_add(struct pack_window *w, const struct csvfile_row *row, uint64_t line, const struct cg_err *syntax)
{
	struct pack_raw *raw;
	size_t off, need = 0;

	if (pack_grow((void **)&w->rows, &w->caprows, w->nrows, 1, sizeof(*w->rows)) != 0)
		return CG_ERR_NOMEM;
	raw = &w->rows[w->nrows];
	raw->line = line;
	raw->nfields = 0;
	raw->first = (uint32_t)w->nf;
	raw->syntax = -1;
	if (row == NULL) {
		if (pack_grow((void **)&w->errs, &w->caperrs, w->nerrs, 1, sizeof(*w->errs)) != 0)
			return CG_ERR_NOMEM;
		w->errs[w->nerrs] = *syntax;
		raw->syntax = (int32_t)w->nerrs++;
		w->nrows++;
		return 0;
	}
	if (pack_grow((void **)&w->fields, &w->capf, w->nf, row->nfields, sizeof(*w->fields)) != 0)
		return CG_ERR_NOMEM;
	/* One reservation per row: this copy runs on the reading thread, which bounds the speed-up. */
	for (size_t i = 0; i < row->nfields; i++)
		need += row->lens[i] + 1;
	if (pack_arena_reserve(&w->text, need) != 0)
		return CG_ERR_NOMEM;
	off = w->text.len;
	for (size_t i = 0; i < row->nfields; i++) {
		memcpy(w->text.p + off, row->fields[i], row->lens[i] + 1);   /* with its NUL */
		w->fields[w->nf + i].off = off;
		w->fields[w->nf + i].len = row->lens[i];
		off += row->lens[i] + 1;
	}
	w->text.len = off;
	raw->nfields = (uint32_t)row->nfields;
	w->nf += row->nfields;
	w->nrows++;
	return 0;
}

void
pack_window_reset(struct pack_window *w)
{
	w->nrows = 0;
	w->nf = 0;
	w->nerrs = 0;
	pack_arena_reset(&w->text);
}

size_t
pack_window_tasks(const struct pack_window *w)
{
	return (w->nrows + w->c->task_rows - 1) / w->c->task_rows;
}

static int
pack_out_bad(struct pack_out *o, uint32_t at, const struct cg_err *e)
{
	if (pack_grow((void **)&o->bad, &o->capbad, o->nbad, 1, sizeof(*o->bad)) != 0)
		return CG_ERR_NOMEM;
	o->bad[o->nbad].at = at;
	o->bad[o->nbad++].e = *e;
	return 0;
}

/* Worker: check, normalize and encode the rows of one task (pack_row_add) into its pack_out. */
int
pack_parse_task(void *arg, size_t task, unsigned worker)
{
	struct pack_window *w = arg;
	struct pack_out *o = &w->out[task];
	char *fields[CSVFILE_FIELDS_MAX];
	size_t lens[CSVFILE_FIELDS_MAX];
	size_t i, first = task * w->c->task_rows, end = first + w->c->task_rows;
	struct cg_err rowerr;
	int r;

	(void)worker;
	pack_out_reset(o);
	if (end > w->nrows)
		end = w->nrows;
	for (i = first; i < end; i++) {
		const struct pack_raw *raw = &w->rows[i];
		struct csvfile_row row;

		if (raw->syntax >= 0) {
			if (pack_out_bad(o, (uint32_t)(i - first), &w->errs[raw->syntax]) != 0)
				return CG_ERR_NOMEM;
			continue;
		}
		for (size_t f = 0; f < raw->nfields; f++) {
			fields[f] = (char *)w->text.p + w->fields[raw->first + f].off;
			lens[f] = w->fields[raw->first + f].len;
		}
		memset(&row, 0, sizeof(row));
		row.nfields = raw->nfields;
		row.fields = fields;
		row.lens = lens;
		row.line = raw->line;
		cg_err_clear(&rowerr);
		r = pack_row_add(w->c, o, w->c->o->input, &row, &rowerr);
		if (r == CG_ERR_NOMEM)
			return r;
		if (r != 0 && pack_out_bad(o, (uint32_t)(i - first), &rowerr) != 0)
			return CG_ERR_NOMEM;
	}
	return 0;
}

/*
 * Size the context for the whole file once, from the first window's rows
 * per input byte and bytes per row (c->rows_hint: the file's size over the
 * bytes the window took), with an eighth more: growing by doubling would
 * copy (and, for the secret arena, wipe) the rows and arenas many times over
 * and fault their pages in again at every move.  Untouched reserve costs no
 * memory; a file larger than the estimate grows as before.
 */
static int
pack_reserve(struct pack_ctx *c, const struct pack_window *w)
{
	size_t t, ntasks = pack_window_tasks(w), rows = 0, ids = 0, payloads = 0, want;

	if (c->rows_hint == 0 || w->nrows == 0)
		return 0;
	for (t = 0; t < ntasks; t++) {
		rows += w->out[t].nrows;
		ids += w->out[t].ids.len;
		payloads += w->out[t].payloads.len;
	}
	want = c->rows_hint + c->rows_hint / 8;
	if (rows == 0 || want > UINT32_MAX)
		return 0;
	if (pack_grow((void **)&c->rows, &c->caprows, 0, want, sizeof(*c->rows)) != 0 ||
	    pack_arena_reserve(&c->ids, ids / rows * want + ids) != 0 ||
	    pack_arena_reserve(&c->payloads, payloads / rows * want + payloads) != 0)
		return CG_ERR_NOMEM;
	return 0;
}

/*
 * Append the window's results to the context in input order, reporting bad
 * rows as the sequential reader did: the first one fails the file under
 * --strict, the others go to the report.
 */
int
pack_merge(struct pack_ctx *c, struct pack_window *w, struct pack_stats *stats, struct cg_err *err)
{
	int r;
	const struct pack_opts *o = c->o;
	size_t t, ntasks = pack_window_tasks(w);

	if (c->nrows == 0 && (r = pack_reserve(c, w)) != 0)
		return cg_err_set(err, r, "out of memory");
	for (t = 0; t < ntasks; t++) {
		struct pack_out *po = &w->out[t];
		size_t nraw = w->nrows - t * w->c->task_rows, i, g = 0, b = 0, idbase = 0, pbase = 0;

		if (nraw > w->c->task_rows)
			nraw = w->c->task_rows;
		if ((po->ids.len > 0 && pack_arena_add(&c->ids, po->ids.p, po->ids.len, &idbase) != 0) ||
		    (po->payloads.len > 0 && pack_arena_add(&c->payloads, po->payloads.p, po->payloads.len, &pbase) != 0) ||
		    pack_grow((void **)&c->rows, &c->caprows, c->nrows, po->nrows, sizeof(*c->rows)) != 0)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		for (i = 0; i < nraw; i++) {
			if (b < po->nbad && po->bad[b].at == i) {
				const struct cg_err *e = &po->bad[b++].e;
				stats->bad_rows++;
				if (o->strict) {
					/* As if reading had stopped here. */
					stats->rows = w->rows_before + t * w->c->task_rows + i + 1;
					return cg_err_set(err, CG_ERR_FORMAT, "%s (--strict: nothing written)", e->msg);
				}
				if (o->report != NULL && (o->report_max == 0 || stats->bad_rows <= o->report_max))
					fprintf(o->report, "%s\n", e->msg);
				continue;
			}
			struct pack_row *pr = &c->rows[c->nrows];
			*pr = po->rows[g++];
			pr->id_off[0] += idbase;
			pr->id_off[1] += idbase;
			pr->uid_off += idbase;
			pr->payload_off += pbase;
			pr->parent = (uint32_t)c->nrows++;
		}
	}
	return 0;
}
