/* What every SQLite connection of the store shares (store_sqlite.c): the
 * hardened open, the sentence for a failed call, the largest id. Used by
 * the writer, the reader pool, the queries and backup/restore. */
#ifndef PROMPTD_STORE_SQLITE_H
#define PROMPTD_STORE_SQLITE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* The sentence for a failed sqlite call on db: what failed, the likely
 * cause ("the disk is full", "the database is locked by another
 * process", ...) and SQLite's own words. When the database (or its -wal,
 * -shm, or directory) cannot be written, it names those files and the
 * command that fixes them. db may be NULL. */
void store_sqlite_msg(sqlite3 *db, int rc, const char *what, char *err, size_t errlen);

/* sqlite3_open_v2 for every connection promptd makes, hardened before
 * any statement runs: SQLite's defensive mode (no writable_schema, no
 * writes to shadow tables, no journal_mode=OFF) and no extension loading.
 * store_sqlite_open also distrusts the file's schema (PRAGMA
 * trusted_schema=OFF: its triggers, views and generated columns cannot
 * call functions or virtual tables with side effects): readers, backups,
 * the inspection of a file to restore. store_sqlite_open_own trusts it,
 * because promptd's own triggers feed the FTS5 index and SQLite refuses
 * FTS5 in a distrusted trigger: only for files whose schema promptd built
 * itself, the live database (a restore brings rows, never a schema) and
 * the fresh database a restore builds. *db must be closed even on failure,
 * as with sqlite3_open_v2. Returns an SQLite code. */
int store_sqlite_open(const char *path, int flags, sqlite3 **db);
int store_sqlite_open_own(const char *path, int flags, sqlite3 **db);

/* The largest id prompt_history or its AUTOINCREMENT counter has seen;
 * 0 when none. */
int64_t store_sqlite_max_id(sqlite3 *db);

#endif
