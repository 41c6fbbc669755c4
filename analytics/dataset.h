/*
 * dataset.h - the released outputs the analytics core reads, in memory: an
 * anonymized row export (`crossgate export`) or a table of DP aggregates
 * (`crossgate query`).  Nothing else: the analytics core never sees the
 * store, tokens or keys, and it does not keep the pseudonym column.
 *
 * Export: RFC 4180 CSV (agent/csvfile.h) whose header starts with
 * "pseudonym"; the columns the models use are found by name (any order;
 * other columns are ignored; a column that data minimization left out of
 * the export just makes the models that need it unavailable).  Numeric
 * cells are decimal numbers, categorical cells any text; an empty cell is
 * missing (NAN, or level -1).
 *
 * Aggregates: CSV whose header is the group columns then the metric columns
 * (e.g. "k_top_course_category,g_top_game_category,count"); suppressed groups
 * are simply absent.  dataset_pairs_load reads the count of each pair of two
 * named group columns, summing over any other group column.
 *
 * Every rejection says "file:line:column (name): reason" and never quotes a
 * cell.  Limits: DATASET_ROWS_MAX rows, DATASET_LEVELS_MAX distinct values of
 * one categorical column, and those of csvfile.h per row.
 */
#ifndef CG_DATASET_H
#define CG_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define DATASET_ROWS_MAX 10000000u
#define DATASET_LEVELS_MAX 256u
/* Numbers above this would lose integer precision as doubles: a cell beyond it is refused. */
#define DATASET_VALUE_MAX 1e15

enum dataset_num {
	DATASET_SPEND = 0,      /* C^K: k_course_spend_cents */
	DATASET_LEARN,          /* T^K: k_learning_minutes */
	DATASET_COURSES,        /* k_courses_bought */
	DATASET_CONV,           /* F: k_conversion_value_cents */
	DATASET_WATCH,          /* T^G: g_watch_minutes */
	DATASET_GIFT,           /* g_gift_spend_cents */
	DATASET_STREAMS,        /* g_streams_followed */
	DATASET_NUM_COLS
};

enum dataset_cat {
	DATASET_AGE = 0,        /* generalized band, e.g. "20-29" */
	DATASET_REGION,         /* macro region */
	DATASET_COURSE_CAT,     /* k_top_course_category */
	DATASET_GAME_CAT,       /* g_top_game_category */
	DATASET_CAT_COLS
};

/* Column names as the export writes them. */
extern const char *const dataset_num_names[DATASET_NUM_COLS];
extern const char *const dataset_cat_names[DATASET_CAT_COLS];

/* The distinct values of a categorical column, sorted by byte order. */
struct dataset_levels {
	char **names;           /* n NUL-terminated strings */
	size_t n;
};

/* Owned by the caller of dataset_load*; free with dataset_free. */
struct dataset {
	size_t nrows;
	int has_num[DATASET_NUM_COLS];      /* the column is in the file */
	int has_cat[DATASET_CAT_COLS];
	double *num[DATASET_NUM_COLS];      /* nrows values (NAN: empty), or NULL if absent */
	int32_t *cat[DATASET_CAT_COLS];     /* nrows level indexes (-1: empty), or NULL if absent */
	struct dataset_levels levels[DATASET_CAT_COLS];
};

/* Read an export.  CG_ERR_IO, CG_ERR_FORMAT, CG_ERR_LIMIT, CG_ERR_NOMEM. */
int dataset_load(const char *path, struct dataset **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/* The same from memory (not copied); `name` stands for the file in messages. */
int dataset_load_mem(const char *name, const char *buf, size_t len, struct dataset **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4);
void dataset_free(struct dataset *d);

/* Counts of (a, b) pairs from an aggregates table.  Owned by the caller: dataset_pairs_free. */
struct dataset_pairs {
	struct dataset_levels a, b;
	double *count;          /* a.n * b.n, row-major by a; NAN: absent (suppressed) */
	size_t groups;          /* data rows read */
};

/*
 * Read the aggregates at path: columns col_a, col_b and metric must be in the
 * header; metric cells must be numbers.  A pair met twice (other group
 * columns) is summed.
 */
int dataset_pairs_load(const char *path, const char *col_a, const char *col_b, const char *metric,
    struct dataset_pairs **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5);
int dataset_pairs_load_mem(const char *name, const char *buf, size_t len, const char *col_a,
    const char *col_b, const char *metric, struct dataset_pairs **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 4, 5, 6, 7);
void dataset_pairs_free(struct dataset_pairs *p);

/* Free the names (the struct itself is the caller's); then n is 0. */
void dataset_levels_clear(struct dataset_levels *lv);
/* Deep copy; on failure (CG_ERR_NOMEM) dst holds what was copied, for dataset_levels_clear. */
int dataset_levels_copy(const struct dataset_levels *src, struct dataset_levels *dst,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/* Parse a whole cell as a finite decimal number within +-DATASET_VALUE_MAX; 0 or -1. */
int dataset_parse_number(const char *s, double *out) CG_NONNULL(1, 2);

#endif
