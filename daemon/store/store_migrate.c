#include "store_migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The old backend's columns: a prompt_history table lacking one of them is
 * not the table we know how to adopt. */
static const char *const store_migrate_legacy_columns[] = {
    "id",         "timestamp", "original_idea", "context",       "improved_prompt",
    "role",       "directive", "framework",     "guardrails",    "backend",
    "confidence", "reasoning", "latency_ms",    "model_version",
};
#define STORE_MIGRATE_N_LEGACY_COLUMNS                                                             \
    (sizeof store_migrate_legacy_columns / sizeof *store_migrate_legacy_columns)

int store_migrate_latest(void) {
    return (int)embedded_migrations_count;
}

static int store_migrate_user_version(sqlite3 *db, int *version, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot read the schema version: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* Counts the user tables and whether prompt_history is one of them. */
static int store_migrate_tables(sqlite3 *db, int *n_tables, bool *has_history, char *err,
                                size_t errlen) {
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT name FROM sqlite_master WHERE type = 'table' "
                      "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    *n_tables = 0;
    *has_history = false;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        (*n_tables)++;
        if (strcmp((const char *)sqlite3_column_text(st, 0), "prompt_history") == 0)
            *has_history = true;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "cannot read the schema: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* Names the first legacy column prompt_history lacks, or NULL. */
static int store_migrate_missing_column(sqlite3 *db, const char **missing, char *err,
                                        size_t errlen) {
    bool seen[STORE_MIGRATE_N_LEGACY_COLUMNS] = {false};
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA table_info(prompt_history)", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        for (size_t i = 0; name && i < STORE_MIGRATE_N_LEGACY_COLUMNS; i++)
            if (strcmp(name, store_migrate_legacy_columns[i]) == 0)
                seen[i] = true;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "cannot read the prompt_history columns: %s", sqlite3_errmsg(db));
        return -1;
    }
    *missing = NULL;
    for (size_t i = 0; i < STORE_MIGRATE_N_LEGACY_COLUMNS && !*missing; i++)
        if (!seen[i])
            *missing = store_migrate_legacy_columns[i];
    return 0;
}

int store_migrate_inspect(sqlite3 *db, size_t n, struct store_migrate_info *info, char *err,
                          size_t errlen) {
    int n_tables;
    bool has_history;
    const char *missing = NULL;
    info->latest = (int)n;
    if (store_migrate_user_version(db, &info->version, err, errlen) != 0 ||
        store_migrate_tables(db, &n_tables, &has_history, err, errlen) != 0)
        return -1;
    if (has_history && store_migrate_missing_column(db, &missing, err, errlen) != 0)
        return -1;

    if (info->version > info->latest) {
        info->kind = STORE_MIGRATE_NEWER;
        snprintf(err, errlen,
                 "the database was written by a newer promptd (schema version %d; this promptd "
                 "knows up to %d): upgrade promptd, or set SQLITE_DB_PATH to another file",
                 info->version, info->latest);
    } else if (n_tables == 0 && info->version == 0) {
        info->kind = STORE_MIGRATE_EMPTY;
    } else if (!has_history) {
        info->kind = STORE_MIGRATE_FOREIGN;
        snprintf(err, errlen,
                 "the database is not a prompt history (it has no prompt_history table): set "
                 "SQLITE_DB_PATH to another file");
    } else if (missing) {
        info->kind = STORE_MIGRATE_FOREIGN;
        snprintf(err, errlen,
                 "the database's prompt_history table has no column \"%s\", so it was not made "
                 "by promptd or its Python predecessor: set SQLITE_DB_PATH to another file",
                 missing);
    } else {
        info->kind = info->version == 0 ? STORE_MIGRATE_LEGACY : STORE_MIGRATE_PROMPTD;
    }
    return 0;
}

/* "012_name.sql" -> 12; -1 when the name does not start with digits and _. */
static int store_migrate_file_number(const char *name) {
    char *end = NULL;
    long v = strtol(name, &end, 10);
    if (end == name || *end != '_' || v <= 0 || v > 100000)
        return -1;
    return (int)v;
}

/* Runs one migration file and sets user_version inside one transaction,
 * so a migration is either wholly applied and counted, or not at all. */
static int store_migrate_apply_one(sqlite3 *db, const struct embedded_file *f, int version,
                                   char *err, size_t errlen) {
    char *msg = NULL;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    if (sqlite3_exec(db, f->data, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, pragma, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "migration %s failed: %s", f->name, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

int store_migrate_run_files(sqlite3 *db, const struct embedded_file *files, size_t n, int *from,
                            int *to, char *err, size_t errlen) {
    struct store_migrate_info info;
    for (size_t i = 0; i < n; i++) {
        if (store_migrate_file_number(files[i].name) != (int)i + 1) {
            snprintf(err, errlen, "migration %s is out of sequence (expected number %zu)",
                     files[i].name, i + 1);
            return -1;
        }
    }
    if (store_migrate_inspect(db, n, &info, err, errlen) != 0)
        return -1;
    if (info.kind == STORE_MIGRATE_NEWER || info.kind == STORE_MIGRATE_FOREIGN)
        return -1; /* err already says why */
    if (from)
        *from = info.version;
    if (to)
        *to = info.version;
    if (info.kind == STORE_MIGRATE_LEGACY)
        log_info("adopting a database of the Python backend (user_version 0): migrating it");
    for (int v = info.version + 1; v <= (int)n; v++) {
        if (store_migrate_apply_one(db, &files[v - 1], v, err, errlen) != 0)
            return -1;
        log_debug("schema migration %s applied", files[v - 1].name);
        if (to)
            *to = v;
    }
    return 0;
}

int store_migrate_run(sqlite3 *db, int *from, int *to, char *err, size_t errlen) {
    return store_migrate_run_files(db, embedded_migrations, embedded_migrations_count, from, to,
                                   err, errlen);
}
