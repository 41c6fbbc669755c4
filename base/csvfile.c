/* csvfile.c - see csvfile.h */
#include "base/csvfile.h"

#include <csv.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CSVFILE_CHUNK (64 * 1024)
/*
 * libcsv keeps the field being parsed in its own buffer, which it would grow
 * without bound; a quoted field also holds its closing quote and any blanks
 * after it there.  The realloc hook below refuses to go past this cap.
 */
#define CSVFILE_PARSE_BUF_MAX ((size_t)CSVFILE_FIELD_MAX + 4096)
#define CSVFILE_PARSE_BLK 4096
#define CSVFILE_ARENA_MIN 4096
/* Every stored field fits the limits, so one row never needs more than this. */
#define CSVFILE_ARENA_MAX ((size_t)CSVFILE_FIELDS_MAX * ((size_t)CSVFILE_FIELD_MAX + 1))

enum csvfile_row_fault {
	CSVFILE_ROW_OK = 0,
	CSVFILE_ROW_TOO_MANY,
	CSVFILE_ROW_TOO_LONG,
	CSVFILE_ROW_NUL,
};

struct csvfile {
	char *name;
	FILE *fp;                 /* NULL when reading memory */
	int close_fp;             /* 0 for stdin */

	/* Input window: the caller's memory, or `chunk` refilled from fp. */
	const unsigned char *buf;
	size_t buf_len, buf_pos;
	unsigned char *chunk;
	int input_eof;            /* nothing more will come into buf */
	int bom_checked;

	struct csv_parser parser;
	int parser_live;

	uint64_t offset, size;
	uint64_t line;            /* physical line of the next unconsumed byte */
	uint64_t col;             /* bytes of that line consumed so far */
	uint64_t row_line;        /* line the row in progress starts on */
	int row_open;             /* a quoted field carries the row over a newline */
	int saw_lf;               /* libcsv ended a record (or a blank line) on '\n' */
	int skip_line;            /* after a syntax error: drop the rest of that line */
	int finished;
	int fatal;                /* CG_ERR_NOMEM / CG_ERR_IO: no more reading */
	int cb_nomem;             /* set by the field callback */

	/* The row being assembled; fields are NUL-terminated inside `arena`. */
	unsigned char *arena;
	size_t arena_len, arena_cap;
	size_t *offsets;
	size_t nfields_seen;      /* including fields not stored because of a fault */
	size_t nstored;
	enum csvfile_row_fault fault;
	size_t fault_field;       /* 1-based */
	int row_done;
	uint64_t done_line;
	uint64_t rows;

	struct csvfile_row row;
};

static void *
csvfile_parse_realloc(void *ptr, size_t n)
{
	if (n > CSVFILE_PARSE_BUF_MAX)
		return NULL;
	return realloc(ptr, n);
}

static int
csvfile_parser_start(struct csvfile *r)
{
	/* REPALL_NL: a '\n' outside any field is reported, so a missing report
	 * means the newline was inside a quoted field and the row goes on. */
	if (csv_init(&r->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL) != 0)
		return CG_ERR_INTERNAL;
	csv_set_realloc_func(&r->parser, csvfile_parse_realloc);
	csv_set_blk_size(&r->parser, CSVFILE_PARSE_BLK);
	r->parser_live = 1;
	return 0;
}

static void
csvfile_parser_stop(struct csvfile *r)
{
	if (!r->parser_live)
		return;
	/* The buffer held raw field bytes (identifiers among them). */
	if (r->parser.entry_buf != NULL)
		sodium_memzero(r->parser.entry_buf, r->parser.entry_size);
	csv_free(&r->parser);
	r->parser_live = 0;
}

static int
csvfile_parser_reset(struct csvfile *r)
{
	csvfile_parser_stop(r);
	return csvfile_parser_start(r);
}

static void
csvfile_row_clear(struct csvfile *r)
{
	r->arena_len = 0;
	r->nfields_seen = 0;
	r->nstored = 0;
	r->fault = CSVFILE_ROW_OK;
	r->fault_field = 0;
	r->row_done = 0;
}

static int
csvfile_arena_reserve(struct csvfile *r, size_t need)
{
	unsigned char *grown;
	size_t cap;

	if (need <= r->arena_cap)
		return 0;
	if (need > CSVFILE_ARENA_MAX)
		return CG_ERR_LIMIT;
	cap = r->arena_cap < CSVFILE_ARENA_MIN ? CSVFILE_ARENA_MIN : r->arena_cap;
	while (cap < need)
		cap = cap > CSVFILE_ARENA_MAX / 2 ? CSVFILE_ARENA_MAX : cap * 2;
	/* malloc + copy rather than realloc, so the old bytes can be wiped. */
	if ((grown = malloc(cap)) == NULL)
		return CG_ERR_NOMEM;
	if (r->arena != NULL) {
		memcpy(grown, r->arena, r->arena_len);
		sodium_memzero(r->arena, r->arena_cap);
		free(r->arena);
	}
	r->arena = grown;
	r->arena_cap = cap;
	return 0;
}

static void
csvfile_on_field(void *s, size_t len, void *data)
{
	struct csvfile *r = data;
	size_t idx;

	r->nfields_seen++;
	if (r->fault != CSVFILE_ROW_OK || r->cb_nomem)
		return;
	if (r->nfields_seen > CSVFILE_FIELDS_MAX) {
		r->fault = CSVFILE_ROW_TOO_MANY;
		return;
	}
	if (len > CSVFILE_FIELD_MAX) {
		r->fault = CSVFILE_ROW_TOO_LONG;
		r->fault_field = r->nfields_seen;
		return;
	}
	/* Fields are handed on as C strings: an embedded NUL would cut one short. */
	if (len > 0 && memchr(s, '\0', len) != NULL) {
		r->fault = CSVFILE_ROW_NUL;
		r->fault_field = r->nfields_seen;
		return;
	}
	if (csvfile_arena_reserve(r, r->arena_len + len + 1) != 0) {
		r->cb_nomem = 1;
		return;
	}
	idx = r->nstored++;
	r->offsets[idx] = r->arena_len;
	r->row.lens[idx] = len;
	if (len > 0)
		memcpy(r->arena + r->arena_len, s, len);
	r->arena[r->arena_len + len] = '\0';
	r->arena_len += len + 1;
}

static void
csvfile_on_row(int c, void *data)
{
	struct csvfile *r = data;

	if (c == '\n')
		r->saw_lf = 1;
	/* Rows without fields are blank lines reported by CSV_REPALL_NL. */
	if (r->nfields_seen > 0) {
		r->row_done = 1;
		r->done_line = r->row_line;
	}
	/* A row after a lone CR starts on this same physical line. */
	r->row_line = r->line;
}

/* Makes bytes available in buf; sets input_eof when there are no more. */
static int
csvfile_fill(struct csvfile *r, struct cg_err *err)
{
	size_t n;

	if (r->buf_pos < r->buf_len || r->input_eof)
		goto bom;
	n = fread(r->chunk, 1, CSVFILE_CHUNK, r->fp);
	if (n < CSVFILE_CHUNK) {
		if (ferror(r->fp)) {
			r->fatal = CG_ERR_IO;
			return cg_err_set(err, CG_ERR_IO, "%s: read failed: %s", r->name,
			    strerror(errno));
		}
		r->input_eof = 1;
	}
	r->buf = r->chunk;
	r->buf_len = n;
	r->buf_pos = 0;
bom:
	/* fread fills the whole chunk unless at EOF, so a BOM is never split. */
	if (!r->bom_checked) {
		r->bom_checked = 1;
		if (r->buf_len - r->buf_pos >= 3 &&
		    memcmp(r->buf + r->buf_pos, "\xEF\xBB\xBF", 3) == 0) {
			r->buf_pos += 3;
			r->offset += 3;
		}
	}
	return 0;
}

static void
csvfile_consume(struct csvfile *r, size_t n)
{
	r->buf_pos += n;
	r->offset += n;
	r->col += n;
}

static void
csvfile_newline(struct csvfile *r)
{
	r->line++;
	r->col = 0;
}

/* Drops input up to and including the next '\n' (or to the end of input). */
static void
csvfile_skip(struct csvfile *r)
{
	const unsigned char *s = r->buf + r->buf_pos;
	size_t avail = r->buf_len - r->buf_pos;
	const unsigned char *nl = memchr(s, '\n', avail);

	if (nl == NULL) {
		csvfile_consume(r, avail);
		if (r->input_eof)
			r->skip_line = 0;
		return;
	}
	csvfile_consume(r, (size_t)(nl - s) + 1);
	csvfile_newline(r);
	r->skip_line = 0;
	r->row_open = 0;
}

/* A completed row: count it, then hand it out or report its fault. */
static int
csvfile_emit(struct csvfile *r, struct csvfile_row **row, struct cg_err *err)
{
	size_t i;

	r->rows++;
	switch (r->fault) {
	case CSVFILE_ROW_TOO_MANY:
		return cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: more than %d fields",
		    r->name, (unsigned long long)r->done_line, CSVFILE_FIELDS_MAX);
	case CSVFILE_ROW_TOO_LONG:
		return cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: field %zu longer than %d bytes",
		    r->name, (unsigned long long)r->done_line, r->fault_field, CSVFILE_FIELD_MAX);
	case CSVFILE_ROW_NUL:
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: NUL byte in field %zu",
		    r->name, (unsigned long long)r->done_line, r->fault_field);
	case CSVFILE_ROW_OK:
		break;
	}
	for (i = 0; i < r->nstored; i++)
		r->row.fields[i] = (char *)r->arena + r->offsets[i];
	r->row.nfields = r->nstored;
	r->row.line = r->done_line;
	r->row.number = r->rows;
	*row = &r->row;
	return 1;
}

/* The row in progress is abandoned; parsing restarts at the next line. */
static int
csvfile_abandon_row(struct csvfile *r, size_t consumed, struct cg_err *err)
{
	int rc;

	r->rows++;
	csvfile_row_clear(r);
	csvfile_consume(r, consumed);
	r->skip_line = 1;
	r->row_open = 0;
	if ((rc = csvfile_parser_reset(r)) != 0) {
		r->fatal = rc;
		return cg_err_set(err, rc, "%s: cannot restart the CSV parser", r->name);
	}
	return 0;
}

static int
csvfile_finish(struct csvfile *r, struct csvfile_row **row, struct cg_err *err)
{
	uint64_t line = r->row_line;
	int rc;

	r->finished = 1;
	if (csv_fini(&r->parser, csvfile_on_field, csvfile_on_row, r) != 0) {
		r->rows++;
		csvfile_row_clear(r);
		if ((rc = csvfile_parser_reset(r)) != 0) {
			r->fatal = rc;
			return cg_err_set(err, rc, "%s: cannot restart the CSV parser", r->name);
		}
		return cg_err_set(err, CG_ERR_FORMAT,
		    "%s:%llu: malformed CSV (unterminated quoted field)",
		    r->name, (unsigned long long)line);
	}
	if (r->cb_nomem) {
		r->fatal = CG_ERR_NOMEM;
		return cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", r->name);
	}
	if (r->row_done)
		return csvfile_emit(r, row, err);
	return 0;
}

int
csvfile_next(struct csvfile *r, struct csvfile_row **row, struct cg_err *err)
{
	const unsigned char *s, *cr, *lf;
	size_t avail, piece, n;
	int rc;

	*row = NULL;
	if (r->fatal != 0)
		return cg_err_set(err, r->fatal, "%s: reading stopped after an earlier error",
		    r->name);
	csvfile_row_clear(r);
	for (;;) {
		if (r->finished)
			return 0;
		if ((rc = csvfile_fill(r, err)) != 0)
			return rc;
		if (r->buf_pos == r->buf_len && r->input_eof) {
			if (r->skip_line) {
				r->skip_line = 0;
				r->row_line = r->line;
			}
			return csvfile_finish(r, row, err);
		}
		if (r->skip_line) {
			csvfile_skip(r);
			continue;
		}
		s = r->buf + r->buf_pos;
		avail = r->buf_len - r->buf_pos;
		/*
		 * Feed up to and including the next CR or LF: a record only ends on
		 * one, so each feed completes at most one row, and we know the line.
		 */
		lf = memchr(s, '\n', avail);
		cr = memchr(s, '\r', lf != NULL ? (size_t)(lf - s) : avail);
		if (cr != NULL)
			piece = (size_t)(cr - s) + 1;
		else if (lf != NULL)
			piece = (size_t)(lf - s) + 1;
		else
			piece = avail;
		if (r->col == 0 && !r->row_open)
			r->row_line = r->line;
		r->saw_lf = 0;
		n = csv_parse(&r->parser, s, piece, csvfile_on_field, csvfile_on_row, r);
		if (r->cb_nomem) {
			r->fatal = CG_ERR_NOMEM;
			return cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", r->name);
		}
		if (n < piece) {
			uint64_t line = r->line, row_line = r->row_line;
			uint64_t col = r->col + n + 1;
			int status = csv_error(&r->parser);
			int quoted = r->parser.quoted;
			size_t field = r->nfields_seen + 1;

			if (status == CSV_EPARSE) {
				if ((rc = csvfile_abandon_row(r, n, err)) != 0)
					return rc;
				return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%llu: malformed CSV (%s)",
				    r->name, (unsigned long long)line, (unsigned long long)col,
				    quoted ? "unexpected character after a closing quote" :
				    "quote inside an unquoted field");
			}
			if (csv_get_buffer_size(&r->parser) >= CSVFILE_PARSE_BUF_MAX) {
				if ((rc = csvfile_abandon_row(r, n, err)) != 0)
					return rc;
				return cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: field %zu longer than %d bytes",
				    r->name, (unsigned long long)row_line, field, CSVFILE_FIELD_MAX);
			}
			r->fatal = CG_ERR_NOMEM;
			return cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", r->name);
		}
		csvfile_consume(r, piece);
		if (s[piece - 1] == '\n') {
			csvfile_newline(r);
			r->row_open = !r->saw_lf;
		}
		if (r->row_done)
			return csvfile_emit(r, row, err);
	}
}

static int
csvfile_new(const char *name, struct csvfile **out, struct cg_err *err)
{
	struct csvfile *r = NULL;
	int rc = CG_ERR_NOMEM;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->name = strdup(name)) == NULL ||
	    (r->offsets = calloc(CSVFILE_FIELDS_MAX, sizeof(*r->offsets))) == NULL ||
	    (r->row.lens = calloc(CSVFILE_FIELDS_MAX, sizeof(*r->row.lens))) == NULL ||
	    (r->row.fields = calloc(CSVFILE_FIELDS_MAX, sizeof(*r->row.fields))) == NULL) {
		cg_err_set(err, rc, "%s: out of memory", name);
		goto out;
	}
	if ((rc = csvfile_parser_start(r)) != 0) {
		cg_err_set(err, rc, "%s: cannot start the CSV parser", name);
		goto out;
	}
	r->line = 1;
	r->row_line = 1;
	*out = r;
	r = NULL; /* transferred */
	rc = 0;
out:
	csvfile_free(r);
	return rc;
}

int
csvfile_open_mem(const char *name, const char *buf, size_t len, struct csvfile **out,
    struct cg_err *err)
{
	struct csvfile *r = NULL;
	int rc;

	*out = NULL;
	if (buf == NULL && len > 0)
		return cg_err_set(err, CG_ERR_ARG, "%s: no buffer", name);
	if ((rc = csvfile_new(name, &r, err)) != 0)
		return rc;
	r->buf = (const unsigned char *)buf;
	r->buf_len = len;
	r->input_eof = 1;
	r->size = len;
	*out = r;
	return 0;
}

int
csvfile_open(const char *path, struct csvfile **out, struct cg_err *err)
{
	struct csvfile *r = NULL;
	struct stat st;
	int is_stdin = strcmp(path, "-") == 0;
	int rc;

	*out = NULL;
	if ((rc = csvfile_new(is_stdin ? "<stdin>" : path, &r, err)) != 0)
		goto out;
	if ((r->chunk = malloc(CSVFILE_CHUNK)) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", r->name);
		goto out;
	}
	if (is_stdin) {
		r->fp = stdin;
	} else {
		if ((r->fp = fopen(path, "rb")) == NULL) {
			rc = cg_err_set(err, CG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
			goto out;
		}
		r->close_fp = 1;
	}
	if (fstat(fileno(r->fp), &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			rc = cg_err_set(err, CG_ERR_IO, "%s: is a directory", r->name);
			goto out;
		}
		if (S_ISREG(st.st_mode) && st.st_size > 0)
			r->size = (uint64_t)st.st_size;
	}
	r->buf = r->chunk;
	*out = r;
	r = NULL; /* transferred */
	rc = 0;
out:
	csvfile_free(r);
	return rc;
}

uint64_t
csvfile_offset(const struct csvfile *r)
{
	return r != NULL ? r->offset : 0;
}

uint64_t
csvfile_size(const struct csvfile *r)
{
	return r != NULL ? r->size : 0;
}

void
csvfile_free(struct csvfile *r)
{
	if (r == NULL)
		return;
	csvfile_parser_stop(r);
	if (r->fp != NULL && r->close_fp)
		fclose(r->fp);
	if (r->chunk != NULL) {
		sodium_memzero(r->chunk, CSVFILE_CHUNK);
		free(r->chunk);
	}
	if (r->arena != NULL) {
		sodium_memzero(r->arena, r->arena_cap);
		free(r->arena);
	}
	free(r->offsets);
	free(r->row.lens);
	free(r->row.fields);
	free(r->name);
	free(r);
}
