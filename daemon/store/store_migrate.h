/* Schema migrations: schema/NNN_name.sql files, embedded in the binary at
 * build time, applied in order, each in its own transaction, the version
 * tracked by PRAGMA user_version (= the number of the last file applied).
 *
 * A database made by the old Python backend (its prompt_history table,
 * user_version 0) is adopted: 001 creates the table only if missing, the
 * later files extend it, every row is kept. A database from a newer promptd
 * is refused without being modified. Errors: every function returns 0 or
 * -1 with a sentence in err. */
#ifndef PROMPTD_STORE_MIGRATE_H
#define PROMPTD_STORE_MIGRATE_H

#include <sqlite3.h>
#include <stddef.h>

#include "embedded.h"

/* What a database holds, judged before anything is written to it. */
enum store_migrate_kind {
    STORE_MIGRATE_EMPTY,   /* no tables: a fresh database */
    STORE_MIGRATE_LEGACY,  /* the old backend's table, user_version 0 */
    STORE_MIGRATE_PROMPTD, /* a promptd database at or below this binary's version */
    STORE_MIGRATE_NEWER,   /* a promptd database newer than this binary: refuse */
    STORE_MIGRATE_FOREIGN, /* some other database: refuse, never touch */
};

struct store_migrate_info {
    enum store_migrate_kind kind;
    int version; /* PRAGMA user_version */
    int latest;  /* the version this binary's migrations reach */
};

/* The version the embedded migrations reach. */
int store_migrate_latest(void);

/* Reads db (only reads) and classifies it against `n` migrations. err
 * explains STORE_MIGRATE_NEWER and STORE_MIGRATE_FOREIGN too (then returns 0: the
 * classification succeeded; the caller decides). */
int store_migrate_inspect(sqlite3 *db, size_t n, struct store_migrate_info *info, char *err,
                          size_t errlen);

/* Applies the embedded migrations the database lacks. *from and *to (may
 * be NULL) receive the versions before and after. Refuses NEWER and FOREIGN
 * databases (nothing written). On a failed migration that migration is
 * rolled back; the earlier ones stay applied. */
int store_migrate_run(sqlite3 *db, int *from, int *to, char *err, size_t errlen);

/* The same with an explicit list of migrations (tests). files[i] must be
 * named with the number i + 1 ("001_x.sql", "002_y.sql", ...). */
int store_migrate_run_files(sqlite3 *db, const struct embedded_file *files, size_t n, int *from,
                            int *to, char *err, size_t errlen);

#endif
