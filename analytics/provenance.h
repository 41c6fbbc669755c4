/*
 * provenance.h - where an export came from: the sidecar `<export>.meta.json`
 * that `crossgate export` writes next to each export, so that a reader of
 * the report can trace every number to the export's audit event.
 *
 *   {"export_id": hex, "purpose": str, "k": int, "l": int,
 *    "sensitive": str or [str], "rows": int, "suppressed": int,
 *    "policy_hash": hex, "audit_index": int, "created": ISO 8601 time,
 *    "left": "k", "right": "g", "analyst": str}
 *
 * export_id, purpose, k, rows and policy_hash are required; the others are
 * optional.  The sidecar of DP aggregates (`crossgate query`) has query_id
 * instead of export_id, and needs no k or rows; unknown members are ignored (a newer gateway may add some).
 * Every rejection names the file and the member, or the line and column of a
 * JSON syntax error.  The file is at most PROVENANCE_FILE_MAX bytes.
 */
#ifndef CG_PROVENANCE_H
#define CG_PROVENANCE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define PROVENANCE_FILE_MAX (64 * 1024)
#define PROVENANCE_TEXT_MAX 128     /* longest string member kept */

struct provenance {
	int known;                   /* a sidecar was found and read */
	int query;                   /* a query's sidecar: export_id holds its query_id, k and rows are 0 */
	char export_id[PROVENANCE_TEXT_MAX + 1];    /* lowercase hex */
	char purpose[PROVENANCE_TEXT_MAX + 1];
	char policy_hash[PROVENANCE_TEXT_MAX + 1];  /* lowercase hex */
	char created[PROVENANCE_TEXT_MAX + 1];      /* "" if absent */
	char sensitive[PROVENANCE_TEXT_MAX + 1];   /* one name, or several joined by ", " */
	char analyst[PROVENANCE_TEXT_MAX + 1];     /* "" if absent */
	char left[PROVENANCE_TEXT_MAX + 1], right[PROVENANCE_TEXT_MAX + 1];
	uint64_t k, l, rows, suppressed;
	int64_t audit_index;         /* -1 if absent */
};

/*
 * Read the sidecar at path into *out.  CG_ERR_NOTFOUND (with out->known 0)
 * when the file does not exist, CG_ERR_FORMAT for a malformed one, CG_ERR_IO,
 * CG_ERR_LIMIT.  *out is zeroed (audit_index -1) on every failure.
 */
int provenance_load(const char *path, struct provenance *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* The same from memory; `name` stands for the file in messages. */
int provenance_parse(const char *name, const char *buf, size_t len, struct provenance *out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4);

/* "<export>.meta.json" for an export path; CG_ERR_ARG if it does not fit `size`. */
int provenance_sidecar_path(const char *export_path, char *out, size_t size, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
