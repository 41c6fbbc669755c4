/*
 * report.h - the analytics results for programs: one JSON document, and one
 * CSV file per table.  (html.h writes the report for people.)
 *
 * Only aggregates leave through here: coefficients, segment profiles and
 * category counts at or above the threshold.  No row, pseudonym or
 * individual value is written.  Numbers are written with 17 significant
 * digits so that a check against another implementation is exact; a value
 * that does not exist (a withheld marginal, a missing column) is JSON null
 * or an empty CSV cell.
 *
 * CSV files in the directory: content_mix.csv, segments.csv,
 * segment_categories.csv, affinity.csv, provenance.csv, dp_content_mix.csv
 * and dp_segments.csv (from DP model releases, with the rho each spent) (a
 * file for a model that is unavailable has its header only).  The JSON has
 * "dp_content_mix" and "dp_segments" (null without their releases) and
 * "affinity_rho".
 */
#ifndef CG_REPORT_H
#define CG_REPORT_H

#include <jansson.h>
#include "base/err.h"
#include "analytics/analytics.h"

/* The whole result as a JSON object; the caller owns *out (json_decref). */
int report_json(const struct analytics *a, json_t **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* Write it to path ("-": standard output). */
int report_write_json(const struct analytics *a, const char *path, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* Write the CSV files into dir (created if missing, mode 0700). */
int report_write_csv(const struct analytics *a, const char *dir, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/* A human label of a segment column value: the dataset's level name, or "" if out of range. */
const char *report_level_name(const struct analytics *a, int col, int32_t level);

#endif
