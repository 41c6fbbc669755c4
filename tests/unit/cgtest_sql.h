/*
 * cgtest_sql.h - the tests' one-number SQL query.
 */
#ifndef CG_TEST_SQL_H
#define CG_TEST_SQL_H

#include <stdint.h>
#include <sqlite3.h>

/* The first column of the first row of `sql` as an integer; -1 if the query fails or has no row. */
static inline int64_t
cgt_sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return n;
}

#endif
