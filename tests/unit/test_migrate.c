/* Migrations: a fresh database, adopting the old backend's database (its
 * exact table from tests/fixtures/legacy_prompt_history.sql, with rows),
 * refusing newer and foreign databases untouched, a failing migration
 * rolled back, the sequence check, and re-running as a no-op. */
#include <sqlite3.h>
#include <stdlib.h>

#include "log.h"
#include "store_migrate.h"
#include "unit.h"
#include "unit_sqlite.h"

#define LEGACY_FIXTURE "tests/fixtures/legacy_prompt_history.sql"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* A database as the Python backend left it: its table, three rows (one
 * with an ISO 'T' timestamp, one with nulls), user_version 0. */
static sqlite3 *legacy_db(void) {
    sqlite3 *db = NULL;
    char *sql = read_file(LEGACY_FIXTURE);
    if (!sql || sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(
            db,
            "INSERT INTO prompt_history(timestamp, original_idea, context, improved_prompt, role, "
            "directive, framework, guardrails, backend, confidence, reasoning, latency_ms, "
            "model_version) VALUES "
            "('2025-03-01 10:00:00', 'email my landlord about the heater', '', 'You are a "
            "tenant advisor', 'Advisor', 'Write', 'CO-STAR', '[\"polite\"]', 'zero-shot', 0.8, "
            "'because', 812, 'llama3.2:3b'),"
            "('2025-03-02T11:30:00.123456', 'plan a trip', 'to Lisbon', 'You are a travel "
            "agent', 'Agent', 'Plan', 'RISEN', '[]', 'few-shot', NULL, NULL, NULL, NULL),"
            "('2025-03-03 09:15:00', 'summarize a paper', NULL, 'You are a researcher', "
            "'Researcher', 'Summarize', 'RTF', '[\"cite\"]', 'zero-shot', 0.5, NULL, 3000, "
            "'qwen')",
            NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        db = NULL;
    }
    free(sql);
    return db;
}

static void test_fresh_database(void) {
    sqlite3 *db = NULL;
    char err[512];
    int from = -1, to = -1;
    struct store_migrate_info info;
    CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_INT(store_migrate_inspect(db, (size_t)store_migrate_latest(), &info, err, sizeof err), 0);
    CHECK_INT(info.kind, STORE_MIGRATE_EMPTY);
    CHECK_INT(store_migrate_run(db, &from, &to, err, sizeof err), 0);
    CHECK_INT(from, 0);
    CHECK_INT(to, store_migrate_latest());
    CHECK(store_migrate_latest() >= 5);
    CHECK_INT(scalar(db, "PRAGMA user_version"), store_migrate_latest());
    CHECK_INT(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('prompt_history', "
                         "'prompt_history_fts', 'history_rollup')"),
              3);
    CHECK_INT(scalar(db, "SELECT count(*) FROM pragma_table_xinfo('prompt_history') WHERE name IN "
                         "('provider', 'client', 'parent_id', 'prompt_tokens', "
                         "'completion_tokens', 'quality_score')"),
              6);
    /* Every query shape has its index. */
    CHECK_INT(scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE "
                         "'idx_prompt_history_%'"),
              6);
    CHECK_INT(store_migrate_inspect(db, (size_t)store_migrate_latest(), &info, err, sizeof err), 0);
    CHECK_INT(info.kind, STORE_MIGRATE_PROMPTD);
    sqlite3_close(db);
}

static void test_adopts_legacy_database(void) {
    sqlite3 *db = legacy_db();
    char err[512];
    int from = -1, to = -1;
    struct store_migrate_info info;
    CHECK(db);
    CHECK_INT(store_migrate_inspect(db, (size_t)store_migrate_latest(), &info, err, sizeof err), 0);
    CHECK_INT(info.kind, STORE_MIGRATE_LEGACY);
    CHECK_INT(store_migrate_run(db, &from, &to, err, sizeof err), 0);
    CHECK_INT(from, 0);
    CHECK_INT(to, store_migrate_latest());
    /* Every row kept, with its id. */
    CHECK_INT(scalar(db, "SELECT count(*) FROM prompt_history"), 3);
    CHECK_INT(scalar(db, "SELECT max(id) FROM prompt_history"), 3);
    /* Timestamps share one text form, so old and new rows sort together. */
    CHECK_INT(scalar(db, "SELECT count(*) FROM prompt_history WHERE timestamp = "
                         "'2025-03-02 11:30:00'"),
              1);
    /* Searchable, counted, scored. */
    CHECK_INT(scalar(db, "SELECT rowid FROM prompt_history_fts WHERE prompt_history_fts MATCH "
                         "'landlord'"),
              1);
    CHECK_INT(scalar(db, "SELECT rowid FROM prompt_history_fts WHERE prompt_history_fts MATCH "
                         "'lisbon'"),
              2);
    CHECK_INT(scalar(db, "SELECT sum(n) FROM history_rollup"), 3);
    CHECK_INT(scalar(db, "SELECT sum(n_lat) FROM history_rollup"), 2);
    CHECK_INT(scalar(db, "SELECT round(quality_score * 10000) FROM prompt_history WHERE id = 1"),
              7188);
    CHECK_INT(scalar(db, "SELECT round(quality_score * 10000) FROM prompt_history WHERE id = 2"),
              5000);
    /* The legacy CHECKs still hold. */
    CHECK(sqlite3_exec(db,
                       "INSERT INTO prompt_history(original_idea, improved_prompt, role, "
                       "directive, framework, guardrails, backend, confidence) VALUES ('i', 'p', "
                       "'r', 'd', 'f', '[]', 'zero-shot', 1.5)",
                       NULL, NULL, NULL) == SQLITE_CONSTRAINT);
    /* New rows follow: AUTOINCREMENT continues. */
    CHECK_INT(sqlite3_exec(db,
                           "INSERT INTO prompt_history(original_idea, improved_prompt, role, "
                           "directive, framework, guardrails, backend, provider) VALUES ('new "
                           "idea', 'p', 'r', 'd', 'f', '[]', 'zero-shot', 'ollama')",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(scalar(db, "SELECT max(id) FROM prompt_history"), 4);
    CHECK_INT(scalar(db, "SELECT sum(n) FROM history_rollup"), 4);
    CHECK_INT(scalar(db, "SELECT count(*) FROM prompt_history_fts WHERE prompt_history_fts MATCH "
                         "'new'"),
              1);
    /* FTS and rollup stay in step through deletes and updates. */
    CHECK_INT(sqlite3_exec(db, "DELETE FROM prompt_history WHERE id = 1", NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(scalar(db, "SELECT count(*) FROM prompt_history_fts WHERE prompt_history_fts MATCH "
                         "'landlord'"),
              0);
    CHECK_INT(sqlite3_exec(db,
                           "UPDATE prompt_history SET improved_prompt = 'You are a sailor', "
                           "backend = 'few-shot' WHERE id = 3",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(scalar(db, "SELECT count(*) FROM prompt_history_fts WHERE prompt_history_fts MATCH "
                         "'sailor'"),
              1);
    CHECK_INT(scalar(db, "SELECT count(*) FROM prompt_history_fts WHERE prompt_history_fts MATCH "
                         "'researcher'"),
              0);
    CHECK_INT(scalar(db, "SELECT sum(n) FROM history_rollup WHERE backend = 'few-shot'"), 2);
    CHECK_INT(scalar(db, "SELECT sum(n) FROM history_rollup"), 3);
    sqlite3_exec(db, "INSERT INTO prompt_history_fts(prompt_history_fts) VALUES('integrity-check')",
                 NULL, NULL, NULL);
    CHECK_INT(sqlite3_errcode(db), SQLITE_OK);
    sqlite3_close(db);
}

static void test_refuses_newer_database_untouched(void) {
    sqlite3 *db = legacy_db();
    char err[512] = "";
    CHECK(db);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_migrate_latest() + 1);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    int64_t schema_before = scalar(db, "PRAGMA schema_version");
    CHECK_INT(store_migrate_run(db, NULL, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "newer promptd") != NULL);
    CHECK_INT(scalar(db, "PRAGMA user_version"), store_migrate_latest() + 1);
    CHECK_INT(scalar(db, "PRAGMA schema_version"), schema_before);
    CHECK_INT(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'prompt_history_fts'"),
              0);
    sqlite3_close(db);
}

static void test_refuses_foreign_databases(void) {
    sqlite3 *db = NULL;
    char err[512] = "";
    struct store_migrate_info info;
    CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "CREATE TABLE notes(body TEXT)", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(store_migrate_run(db, NULL, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "not a prompt history") != NULL);
    CHECK_INT(scalar(db, "SELECT count(*) FROM sqlite_master"), 1);
    sqlite3_close(db);

    /* A prompt_history table of some other shape. */
    CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "CREATE TABLE prompt_history(id INTEGER PRIMARY KEY, text TEXT)",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(store_migrate_inspect(db, (size_t)store_migrate_latest(), &info, err, sizeof err), 0);
    CHECK_INT(info.kind, STORE_MIGRATE_FOREIGN);
    CHECK(strstr(err, "no column \"timestamp\"") != NULL);
    CHECK_INT(store_migrate_run(db, NULL, NULL, err, sizeof err), -1);
    sqlite3_close(db);
}

static void test_failed_migration_rolls_back(void) {
    sqlite3 *db = NULL;
    char err[512] = "";
    int to = -1;
    const struct embedded_file files[] = {
        {"001_base.sql",
         "CREATE TABLE IF NOT EXISTS prompt_history(id INTEGER PRIMARY KEY, "
         "timestamp, original_idea, context, improved_prompt, role, directive, "
         "framework, guardrails, backend, confidence, reasoning, latency_ms, "
         "model_version);",
         0},
        {"002_broken.sql", "CREATE TABLE half_done(x); THIS IS NOT SQL;", 0},
    };
    CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_INT(store_migrate_run_files(db, files, 2, NULL, &to, err, sizeof err), -1);
    CHECK(strstr(err, "002_broken.sql") != NULL);
    CHECK_INT(to, 1);
    CHECK_INT(scalar(db, "PRAGMA user_version"), 1);
    CHECK_INT(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'"), 0);
    sqlite3_close(db);
}

static void test_sequence_is_checked(void) {
    sqlite3 *db = NULL;
    char err[512] = "";
    const struct embedded_file files[] = {
        {"001_a.sql", "SELECT 1;", 0},
        {"003_c.sql", "SELECT 1;", 0},
    };
    CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_INT(store_migrate_run_files(db, files, 2, NULL, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "003_c.sql") != NULL);
    CHECK_INT(scalar(db, "PRAGMA user_version"), 0);
    sqlite3_close(db);
}

static void test_rerun_is_a_no_op(void) {
    sqlite3 *db = legacy_db();
    char err[512];
    int from = -1, to = -1;
    CHECK(db);
    CHECK_INT(store_migrate_run(db, NULL, NULL, err, sizeof err), 0);
    int64_t schema = scalar(db, "PRAGMA schema_version");
    CHECK_INT(store_migrate_run(db, &from, &to, err, sizeof err), 0);
    CHECK_INT(from, store_migrate_latest());
    CHECK_INT(to, store_migrate_latest());
    CHECK_INT(scalar(db, "PRAGMA schema_version"), schema);
    CHECK_INT(scalar(db, "SELECT count(*) FROM prompt_history"), 3);
    sqlite3_close(db);
}

/* The embedded files are the ones in schema/, numbered from 001 on. */
static void test_embedded_migrations_are_in_sequence(void) {
    CHECK(embedded_migrations_count >= 5);
    CHECK_STR(embedded_migrations[0].name, "001_prompt_history.sql");
    for (size_t i = 0; i < embedded_migrations_count; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%03zu_", i + 1);
        CHECK(strncmp(embedded_migrations[i].name, prefix, 4) == 0);
        CHECK(embedded_migrations[i].len == strlen(embedded_migrations[i].data));
    }
}

int main(void) {
    log_set_level(LOG_ERROR);
    RUN(test_fresh_database);
    RUN(test_adopts_legacy_database);
    RUN(test_refuses_newer_database_untouched);
    RUN(test_refuses_foreign_databases);
    RUN(test_failed_migration_rolls_back);
    RUN(test_sequence_is_checked);
    RUN(test_rerun_is_a_no_op);
    RUN(test_embedded_migrations_are_in_sequence);
    UNIT_EXIT();
}
