/*
 * csvfile.h - RFC 4180 CSV reading on libcsv, with positions for errors.
 *
 * Handles quoted fields, embedded commas, quotes and newlines, CRLF or LF, a
 * UTF-8 byte-order mark at the start, and a missing final newline.  Each row
 * knows the physical line it starts on, so that a bad row can be reported as
 * "file:line:column: reason".  A row with a CSV syntax error (e.g. a stray
 * quote) is returned as an error for that row only; reading goes on at the
 * next line, so one bad row never hides the good ones after it.
 *
 * Limits: CSVFILE_FIELD_MAX bytes per field, CSVFILE_FIELDS_MAX fields per
 * row; a row over a limit is an error for that row.
 *
 * As libcsv does, blanks (space, tab) around an unquoted field are dropped;
 * quote a field to keep them.  A syntax error, or a field that outgrows the
 * limit before it ends, abandons the row and resumes at the next physical
 * line.  A row that is one quoted empty field ("") is a row, not a blank line.
 */
#ifndef CG_CSVFILE_H
#define CG_CSVFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/err.h"

#define CSVFILE_FIELD_MAX (64 * 1024)
#define CSVFILE_FIELDS_MAX 256

struct csvfile;   /* owned by the caller of csvfile_open / csvfile_open_mem */

struct csvfile_row {
	size_t nfields;
	char **fields;       /* NUL-terminated copies; owned by the reader, valid until the next call */
	size_t *lens;
	uint64_t line;       /* 1-based physical line the row starts on */
	uint64_t number;     /* 1-based row number (the header is row 1) */
};

/* path "-" reads stdin. */
int csvfile_open(const char *path, struct csvfile **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* Read from memory (not copied: buf must outlive the reader). `name` is used in messages. */
int csvfile_open_mem(const char *name, const char *buf, size_t len, struct csvfile **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4);

/*
 * Next row: returns 1 with *row set, 0 at end of input, or a negative error.
 * CG_ERR_FORMAT and CG_ERR_LIMIT concern that row only ("name:line: reason"),
 * and the caller may call again to go on; CG_ERR_IO and CG_ERR_NOMEM are fatal.
 * Empty lines are skipped.  A field containing a NUL byte is a FORMAT error.
 */
int csvfile_next(struct csvfile *r, struct csvfile_row **row, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/* Bytes consumed so far and total size if known (0 otherwise): for progress lines. */
uint64_t csvfile_offset(const struct csvfile *r);
uint64_t csvfile_size(const struct csvfile *r);

void csvfile_free(struct csvfile *r);

#endif
