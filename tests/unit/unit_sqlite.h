/* SQLite helpers shared by the unit tests that look into a database. */
#ifndef PROMPTD_UNIT_SQLITE_H
#define PROMPTD_UNIT_SQLITE_H

#include <sqlite3.h>
#include <stdint.h>

/* The first column of the first row of sql as an integer; -1 when the
 * query fails or returns nothing. */
static inline int64_t scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

#endif
