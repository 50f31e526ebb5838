/* The store's SQLite connections (store_sqlite.h). */
#include "store_sqlite.h"

#include <stdbool.h>
#include <stdio.h>

#include "store_file.h"

/* When SQLite refused to write db's file: the command that makes the
 * files it could not write writable (store_file_write_fix), in fix.
 * False when db has no file or every file is writable (the cause is
 * elsewhere: say nothing more). */
static bool unwritable_fix(sqlite3 *db, char *fix, size_t fixlen) {
    const char *path = db ? sqlite3_db_filename(db, "main") : NULL;
    if (!path || !path[0])
        return false;
    store_file_write_fix(path, fix, fixlen);
    return fix[0] != '\0';
}

void store_sqlite_msg(sqlite3 *db, int rc, const char *what, char *err, size_t errlen) {
    const char *why, *unwritable = NULL; /* the cause, when a file may not be writable */
    char fix[768], because[1024];
    switch (rc & 0xff) {
    case SQLITE_FULL:
        why = "the disk is full";
        break;
    case SQLITE_READONLY:
        why = "the database is read-only (check the permissions of the file and its directory)";
        unwritable = "the database is read-only";
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        why = "the database is locked by another process";
        break;
    case SQLITE_CANTOPEN:
        why = "the database file cannot be opened (check that its directory exists and is "
              "writable)";
        unwritable = "the database file cannot be opened";
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        why = "the database is corrupt (run `promptctl db check`)";
        break;
    case SQLITE_IOERR:
        why = "an I/O error occurred";
        break;
    case SQLITE_NOMEM:
        why = "out of memory";
        break;
    default:
        why = NULL;
    }
    /* Name the files: SQLite gives a -wal and -shm it creates the mode the
     * database had, so a user who makes the database writable again may
     * not know that its -wal is still read-only. */
    if (unwritable && unwritable_fix(db, fix, sizeof fix)) {
        snprintf(because, sizeof because, "%s: %s", unwritable, fix);
        why = because;
    }
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (why)
        snprintf(err, errlen, "%s: %s (%s)", what, why, detail);
    else
        snprintf(err, errlen, "%s: %s", what, detail);
}

static int sqlite_open_hardened(const char *path, int flags, bool trust_schema, sqlite3 **db) {
    int rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, trust_schema ? 1 : 0, NULL);
    /* No schema, and no statement, may make the process load code. */
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(*db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    return rc;
}

int store_sqlite_open(const char *path, int flags, sqlite3 **db) {
    return sqlite_open_hardened(path, flags, false, db);
}

int store_sqlite_open_own(const char *path, int flags, sqlite3 **db) {
    return sqlite_open_hardened(path, flags, true, db);
}

int64_t store_sqlite_max_id(sqlite3 *db) {
    sqlite3_stmt *st = NULL;
    int64_t max = 0;
    /* AUTOINCREMENT never reuses an id, so sqlite_sequence counts too. */
    const char *sql =
        "SELECT max(coalesce((SELECT max(id) FROM prompt_history), 0), "
        "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'prompt_history'), 0))";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        max = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return max;
}
