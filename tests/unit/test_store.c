/* History store: the quality score, time parsing, FTS queries, every
 * repository operation and filter (store_q_* on a seeded database), and
 * the store itself on a real loop: record and read back (read-your-
 * writes), deletes, retention, backup and restore, the circuit breaker, a
 * foreign file moved aside, a newer database refused, no row lost at
 * close. */
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "store.h"
#include "store_file.h"
#include "store_migrate.h"
#include "store_query.h"
#include "unit.h"
#include "unit_sqlite.h"

/* ---- Fixtures -------------------------------------------------------- */

static char tmp_root[256];

/* Writes text to a new file at path. 0 or -1. */
static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = strlen(text) + 1; /* the NUL too: SQLite's header has one */
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, 512, "%s/%s", tmp_root, name);
    return out;
}

static sqlite3 *mem_db(void) {
    sqlite3 *db = NULL;
    char err[256];
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        store_migrate_run(db, NULL, NULL, err, sizeof err) || store_q_prepare_db(db) != SQLITE_OK)
        return NULL;
    return db;
}

static int exec(sqlite3 *db, const char *sql) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static double scalar_real(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    double v = NAN;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Inserts one row as the old backend or a test would. */
static int seed(sqlite3 *db, const char *ts, const char *idea, const char *prompt,
                const char *backend, const char *provider, const char *model, double conf,
                long latency) {
    sqlite3_stmt *st = NULL;
    const char *sql =
        "INSERT INTO prompt_history(timestamp, original_idea, context, improved_prompt, role, "
        "directive, framework, guardrails, backend, confidence, latency_ms, model_version, "
        "provider) VALUES (?1, ?2, '', ?3, 'role', 'directive', 'framework', '[\"g1\",\"g2\"]', "
        "?4, ?5, ?6, ?7, ?8)";
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, idea, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, prompt, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, backend, -1, SQLITE_STATIC);
    if (conf < 0)
        sqlite3_bind_null(st, 5);
    else
        sqlite3_bind_double(st, 5, conf);
    if (latency < 0)
        sqlite3_bind_null(st, 6);
    else
        sqlite3_bind_int64(st, 6, latency);
    if (model)
        sqlite3_bind_text(st, 7, model, -1, SQLITE_STATIC);
    if (provider)
        sqlite3_bind_text(st, 8, provider, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Five rows over three days: two backends, two providers (one unknown). */
static sqlite3 *seeded_db(void) {
    sqlite3 *db = mem_db();
    if (!db)
        return NULL;
    int rc = 0;
    rc |= seed(db, "2026-11-20 08:00:00", "email my landlord about the heater",
               "You are a tenant advisor. Write to the landlord about the broken heater.",
               "zero-shot", "ollama", "llama3.2:3b", 0.8, 800);
    rc |= seed(db, "2026-11-21 09:30:00", "plan a birthday party",
               "You are an event planner. Plan a party.", "few-shot", "openai", "gpt-4o-mini", 0.9,
               2000);
    rc |= seed(db, "2026-11-21 18:00:00", "fix the heater myself",
               "You are a technician. Heater heater heater repair steps.", "zero-shot", "ollama",
               "llama3.2:3b", -1, 100);
    rc |= seed(db, "2026-11-22 12:00:00", "write a haiku", "You are a poet.", "zero-shot", NULL,
               NULL, 0.5, -1);
    rc |= seed(db, "2026-11-22 23:59:59", "summarize a paper about heat pumps",
               "You are a researcher. Summarize.", "few-shot", "openai", "gpt-4o-mini", 0.6, 5000);
    if (rc) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static double near(double a, double b) {
    return fabs(a - b) < 1e-6;
}

/* ---- Pure helpers ----------------------------------------------------- */

static void test_quality_score_formula(void) {
    sqlite3 *db = mem_db();
    CHECK(db);
    /* clamp01((confidence or 0.5) - min(latency_ms / 10000, 0.3)) */
    static const struct {
        const char *conf, *lat;
        double want;
    } cases[] = {
        {"0.8", "812", 0.7188}, {"NULL", "0", 0.5},   {"NULL", "NULL", 0.5},
        {"1.0", "50000", 0.7},  {"0.1", "5000", 0.0}, {"0.0", "0", 0.0},
        {"0.9", "NULL", 0.9},   {"1.0", "0", 1.0},    {"0.75", "2500", 0.5},
        {"0.5", "999", 0.4001},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO prompt_history(original_idea, improved_prompt, role, directive, "
                 "framework, guardrails, backend, confidence, latency_ms) VALUES ('i', 'p', 'r', "
                 "'d', 'f', '[]', 'zero-shot', %s, %s)",
                 cases[i].conf, cases[i].lat);
        CHECK_INT(exec(db, sql), SQLITE_OK);
        double q = scalar_real(db, "SELECT quality_score FROM prompt_history ORDER BY id DESC");
        if (!near(q, cases[i].want))
            printf("  case %zu: conf %s lat %s -> %f, want %f\n", i, cases[i].conf, cases[i].lat, q,
                   cases[i].want);
        CHECK(near(q, cases[i].want));
    }
    sqlite3_close(db);
}

static void test_time_parse(void) {
    char out[STORE_TS_LEN];
    CHECK_INT(store_time_parse("2026-11-23", false, out), 0);
    CHECK_STR(out, "2026-11-23 00:00:00");
    CHECK_INT(store_time_parse("2026-11-23", true, out), 0);
    CHECK_STR(out, "2026-11-24 00:00:00");
    CHECK_INT(store_time_parse("2026-11-23T19:20:58Z", false, out), 0);
    CHECK_STR(out, "2026-11-23 19:20:58");
    CHECK_INT(store_time_parse("2026-11-23T19:20:58Z", true, out), 0);
    CHECK_STR(out, "2026-11-23 19:20:59");
    CHECK_INT(store_time_parse("2026-11-23 19:20", true, out), 0);
    CHECK_STR(out, "2026-11-23 19:21:00");
    CHECK_INT(store_time_parse("2026-11-23T19:20:58.123+01:00", false, out), 0);
    CHECK_STR(out, "2026-11-23 18:20:58");
    CHECK_INT(store_time_parse("2026-12-31T23:30:00-01:00", false, out), 0);
    CHECK_STR(out, "2027-01-01 00:30:00");
    CHECK_INT(store_time_parse("2024-02-29", false, out), 0);
    CHECK_INT(store_time_parse("2023-02-29", false, out), -1);
    CHECK_INT(store_time_parse("2026-13-01", false, out), -1);
    CHECK_INT(store_time_parse("yesterday", false, out), -1);
    CHECK_INT(store_time_parse("2026-11-23T25:00", false, out), -1);
    CHECK_INT(store_time_parse("2026-11-23T10:00:00Zjunk", false, out), -1);
    CHECK_INT(store_time_parse("", false, out), -1);
    char iso[40];
    store_time_iso("2026-11-23 19:20:58", iso, sizeof iso);
    CHECK_STR(iso, "2026-11-23T19:20:58Z");
    store_time_iso("odd text", iso, sizeof iso);
    CHECK_STR(iso, "odd text");
    store_time_format(0, out);
    CHECK_STR(out, "1970-01-01 00:00:00");
}

static void test_fts_query_quotes_every_word(void) {
    char *q = store_fts_query("  heater -repair \"quoted\" AND NEAR( x*  ");
    CHECK(q);
    CHECK_STR(q, "\"heater\" \"-repair\" \"\"\"quoted\"\"\" \"AND\" \"NEAR(\" \"x*\"");
    free(q);
    CHECK(store_fts_query("   \t ") == NULL);
    CHECK(store_fts_query("") == NULL);
    /* A repeated word is searched once (ASCII case aside: the index folds
     * case), and counted once. */
    q = store_fts_query("heater x Heater HEATER x heaters");
    CHECK(q);
    CHECK_STR(q, "\"heater\" \"x\" \"heaters\"");
    free(q);
    CHECK_INT(store_search_terms("heater x Heater HEATER x heaters"), 3);
    CHECK_INT(store_search_terms("  "), 0);
}

/* ---- Repository operations -------------------------------------------- */

static const char *item_str(json_t *result, size_t i, const char *key) {
    return json_string_value(
        json_object_get(json_array_get(json_object_get(result, "items"), i), key));
}

static int64_t item_id(json_t *result, size_t i) {
    return json_integer_value(
        json_object_get(json_array_get(json_object_get(result, "items"), i), "id"));
}

static size_t n_items(json_t *result) {
    return json_array_size(json_object_get(result, "items"));
}

static void test_get_row_shape(void) {
    sqlite3 *db = seeded_db();
    json_t *row = NULL;
    char msg[256];
    CHECK(db);
    CHECK_INT(exec(db, "UPDATE prompt_history SET client = 'raycast', prompt_tokens = 12, "
                       "completion_tokens = 34, parent_id = 1 WHERE id = 2"),
              SQLITE_OK);
    CHECK_INT(store_q_get(db, 2, &row, msg, sizeof msg), 0);
    CHECK_INT(json_integer_value(json_object_get(row, "id")), 2);
    CHECK_STR(json_string_value(json_object_get(row, "timestamp")), "2026-11-21T09:30:00Z");
    CHECK_STR(json_string_value(json_object_get(row, "backend")), "few-shot");
    CHECK_STR(json_string_value(json_object_get(row, "provider")), "openai");
    CHECK_STR(json_string_value(json_object_get(row, "model")), "gpt-4o-mini");
    CHECK_STR(json_string_value(json_object_get(row, "client")), "raycast");
    CHECK_STR(json_string_value(json_object_get(row, "original_idea")), "plan a birthday party");
    CHECK_STR(json_string_value(json_object_get(row, "context")), "");
    CHECK_INT(json_array_size(json_object_get(row, "guardrails")), 2);
    CHECK(near(json_real_value(json_object_get(row, "confidence")), 0.9));
    CHECK(near(json_real_value(json_object_get(row, "quality_score")), 0.7));
    CHECK_INT(json_integer_value(json_object_get(row, "latency_ms")), 2000);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(row, "tokens"), "prompt")), 12);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(row, "tokens"), "completion")),
              34);
    CHECK_INT(json_integer_value(json_object_get(row, "parent_id")), 1);
    CHECK(json_is_null(json_object_get(row, "reasoning")));
    json_decref(row);

    /* Unknowns are null; legacy guardrails that are not JSON are kept. */
    CHECK_INT(exec(db, "UPDATE prompt_history SET guardrails = 'be kind' WHERE id = 4"), SQLITE_OK);
    CHECK_INT(store_q_get(db, 4, &row, msg, sizeof msg), 0);
    CHECK(json_is_null(json_object_get(row, "provider")));
    CHECK(json_is_null(json_object_get(row, "latency_ms")));
    CHECK(json_is_null(json_object_get(row, "tokens")));
    CHECK(json_is_null(json_object_get(row, "parent_id")));
    CHECK_STR(json_string_value(json_array_get(json_object_get(row, "guardrails"), 0)), "be kind");
    json_decref(row);

    row = NULL;
    CHECK_INT(store_q_get(db, 99, &row, msg, sizeof msg), RPC_NOT_FOUND);
    CHECK(row == NULL);
    CHECK(strstr(msg, "99") != NULL);
    sqlite3_close(db);
}

static void test_list_order_and_filters(void) {
    sqlite3 *db = seeded_db();
    json_t *r = NULL;
    char msg[256];
    CHECK(db);
    struct history_filter f = {.limit = 20};
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 5);
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 5);
    CHECK_INT(item_id(r, 0), 5); /* newest first */
    CHECK_INT(item_id(r, 4), 1);
    json_decref(r);

    f.limit = 2;
    f.offset = 1;
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 2);
    CHECK_INT(item_id(r, 0), 4);
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 5);
    json_decref(r);

    f = (struct history_filter){.limit = 20, .backend = "few-shot"};
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 2);
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 2);
    CHECK_STR(item_str(r, 0, "backend"), "few-shot");
    json_decref(r);

    f = (struct history_filter){.limit = 20, .provider = "ollama"};
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 2);
    json_decref(r);

    /* since inclusive; until a date means the whole day. */
    f = (struct history_filter){.limit = 20};
    CHECK_INT(store_time_parse("2026-11-21", false, f.since), 0);
    CHECK_INT(store_time_parse("2026-11-21", true, f.until), 0);
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 2);
    CHECK_INT(item_id(r, 0), 3);
    json_decref(r);

    f = (struct history_filter){.limit = 20};
    CHECK_INT(store_time_parse("2026-11-22T23:59:59Z", false, f.since), 0);
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 1);
    json_decref(r);

    f = (struct history_filter){.limit = 20, .has_min_quality = true, .min_quality = 0.6};
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    /* 0.72 (id 1), 0.7 (id 2), 0.99 (id 3: null conf -> 0.5 - 0.01 = 0.49: no) */
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 2);
    json_decref(r);

    f = (struct history_filter){.limit = 20, .backend = "zero-shot", .provider = "ollama"};
    CHECK_INT(store_time_parse("2026-11-21", false, f.since), 0);
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(json_integer_value(json_object_get(r, "total")), 1);
    CHECK_INT(item_id(r, 0), 3);
    json_decref(r);
    sqlite3_close(db);
}

/* A page stops before the rows it holds pass LIMIT_HISTORY_PAGE_BYTES,
 * says so, and always holds one row; total is unchanged. */
static void test_pages_are_bounded_by_bytes(void) {
    sqlite3 *db = seeded_db();
    json_t *r = NULL;
    char msg[256];
    struct history_filter f = {.limit = LIMIT_HISTORY_PAGE_MAX};
    CHECK(db);
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK(json_object_get(r, "truncated") == NULL);
    size_t all = n_items(r);
    json_decref(r);
    /* Two rows of 3 MiB: only the newest fits in a page. */
    CHECK_INT(exec(db, "UPDATE prompt_history SET improved_prompt = "
                       "printf('%.*c', 3 * 1024 * 1024, 'z') WHERE id IN (3, 4)"),
              SQLITE_OK);
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    CHECK_INT(json_integer_value(json_object_get(r, "total")), (long long)all);
    size_t first = n_items(r);
    CHECK(first >= 1 && first < all);
    json_decref(r);
    /* Paging on from the items received reaches the rest. */
    f.offset = (long)first;
    CHECK_INT(store_q_list(db, &f, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r) + first, (long long)all);
    CHECK(json_object_get(r, "truncated") == NULL);
    json_decref(r);
    sqlite3_close(db);
}

static void test_search_rank_snippet_and_odd_queries(void) {
    sqlite3 *db = seeded_db();
    json_t *r = NULL;
    char msg[256];
    CHECK(db);
    CHECK_INT(store_q_search(db, "heater", 20, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 2);
    CHECK_INT(item_id(r, 0), 3); /* "heater" four times: best bm25 */
    CHECK_INT(item_id(r, 1), 1);
    const char *snip = item_str(r, 0, "snippet");
    CHECK(snip && strstr(snip, "\xC2\xAB") && strstr(snip, "\xC2\xBB"));
    json_decref(r);

    /* Stemming: "heaters" finds "heater". */
    CHECK_INT(store_q_search(db, "heaters", 20, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 2);
    json_decref(r);

    CHECK_INT(store_q_search(db, "heater landlord", 20, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 1);
    json_decref(r);

    CHECK_INT(store_q_search(db, "heater", 1, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 1);
    json_decref(r);

    static const char *const odd[] = {
        "-", "\"", "AND",     "heater AND", "OR NOT",     "NEAR(heater",   "x*",           "(",
        ")", "'",  "^",       ":",          "col:heater", "heater-repair", "\"unbalanced", "{a b}",
        "+", "*",  "a\"b\"c",
    };
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        r = NULL;
        int code = store_q_search(db, odd[i], 20, &r, msg, sizeof msg);
        if (code != 0)
            printf("  query [%s]: %d %s\n", odd[i], code, msg);
        CHECK_INT(code, 0);
        CHECK(json_is_array(json_object_get(r, "items")));
        json_decref(r);
    }
    /* A very long word, many words. */
    char long_query[3000];
    memset(long_query, 'w', sizeof long_query - 1);
    long_query[sizeof long_query - 1] = '\0';
    CHECK_INT(store_q_search(db, long_query, 20, &r, msg, sizeof msg), 0);
    json_decref(r);
    CHECK_INT(store_q_search(db,
                             "heater a b c d e f g h i j k l m n o p q r s t u v w x y z "
                             "heater heater heater",
                             20, &r, msg, sizeof msg),
              0);
    json_decref(r);
    /* "heater-repair" searches the words, not an FTS column filter. */
    CHECK_INT(store_q_search(db, "heater-repair", 20, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 1);
    json_decref(r);
    CHECK_INT(store_q_search(db, "   ", 20, &r, msg, sizeof msg), 0);
    CHECK_INT(n_items(r), 0);
    json_decref(r);
    sqlite3_close(db);
}

static int64_t jint(json_t *o, const char *k) {
    return json_integer_value(json_object_get(o, k));
}

static void test_stats_totals_groups_percentiles(void) {
    sqlite3 *db = seeded_db();
    json_t *r = NULL;
    char msg[256];
    CHECK(db);
    CHECK_INT(store_q_stats(db, NULL, 1795000000, &r, msg, sizeof msg), 0);
    CHECK_INT(jint(r, "total_count"), 5);
    /* confidences 0.8 0.9 0.5 0.6 (one null) */
    CHECK(near(json_real_value(json_object_get(r, "average_confidence")), 0.7));
    /* latencies 800 2000 100 5000 (one null): avg 1975, p50 800, p95 5000 */
    CHECK_INT(jint(r, "average_latency_ms"), 1975);
    CHECK_INT(jint(r, "p50_latency_ms"), 800);
    CHECK_INT(jint(r, "p95_latency_ms"), 5000);
    double avg_q = scalar_real(db, "SELECT round(avg(quality_score), 4) FROM prompt_history");
    CHECK(near(json_real_value(json_object_get(r, "average_quality")), avg_q));
    json_t *bb = json_object_get(r, "by_backend");
    CHECK_INT(jint(json_object_get(bb, "zero-shot"), "count"), 3);
    CHECK_INT(jint(json_object_get(bb, "few-shot"), "count"), 2);
    CHECK_INT(jint(json_object_get(bb, "few-shot"), "average_latency_ms"), 3500);
    CHECK_INT(jint(json_object_get(json_object_get(r, "by_provider"), "unknown"), "count"), 1);
    CHECK_INT(jint(json_object_get(json_object_get(r, "by_model"), "llama3.2:3b"), "count"), 2);
    CHECK(json_is_null(json_object_get(r, "since")));
    json_decref(r);

    /* since inside a day: the partial day counts only rows from then on,
     * exactly as a scan of the table would. */
    char since[STORE_TS_LEN];
    CHECK_INT(store_time_parse("2026-11-21T12:00:00Z", false, since), 0);
    CHECK_INT(store_q_stats(db, since, 1795000000, &r, msg, sizeof msg), 0);
    CHECK_INT(jint(r, "total_count"), 3);
    CHECK_INT(jint(r, "average_latency_ms"), 2550);
    CHECK_INT(jint(r, "p50_latency_ms"), 100);
    CHECK_INT(jint(r, "p95_latency_ms"), 5000);
    CHECK_STR(json_string_value(json_object_get(r, "since")), "2026-11-21T12:00:00Z");
    json_decref(r);

    /* last_24h against "now" = 2026-11-23 06:00:00 UTC. */
    struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 6};
    CHECK_INT(store_q_stats(db, NULL, (int64_t)timegm(&tm), &r, msg, sizeof msg), 0);
    CHECK_INT(jint(r, "last_24h"), 2);
    json_decref(r);

    /* After deletes the rollup still agrees with the table. */
    CHECK_INT(exec(db, "DELETE FROM prompt_history WHERE id IN (2, 3)"), SQLITE_OK);
    CHECK_INT(store_q_stats(db, NULL, 1795000000, &r, msg, sizeof msg), 0);
    CHECK_INT(jint(r, "total_count"), 3);
    CHECK_INT(jint(json_object_get(json_object_get(r, "by_backend"), "few-shot"), "count"), 1);
    CHECK_INT(jint(r, "average_latency_ms"), 2900);
    json_decref(r);

    CHECK_INT(exec(db, "DELETE FROM prompt_history"), SQLITE_OK);
    CHECK_INT(store_q_stats(db, NULL, 1795000000, &r, msg, sizeof msg), 0);
    CHECK_INT(jint(r, "total_count"), 0);
    CHECK(json_is_null(json_object_get(r, "average_quality")));
    CHECK(json_is_null(json_object_get(r, "p50_latency_ms")));
    CHECK_INT(json_object_size(json_object_get(r, "by_backend")), 0);
    json_decref(r);
    sqlite3_close(db);
}

static void test_check_reports_ok(void) {
    sqlite3 *db = seeded_db();
    json_t *r = NULL;
    char msg[256];
    CHECK(db);
    CHECK_INT(store_q_check(db, &r, msg, sizeof msg), 0);
    CHECK(json_is_true(json_object_get(r, "ok")));
    CHECK_STR(json_string_value(json_object_get(r, "detail")), "ok");
    json_decref(r);
    sqlite3_close(db);
}

static void test_resolve_path(void) {
    char out[512], err[256];
    CHECK_INT(store_resolve_path("/a/b.db", NULL, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "/a/b.db");
    CHECK_INT(store_resolve_path("./data/h.db", "/etc/app/.env", out, sizeof out, err, sizeof err),
              0);
    CHECK_STR(out, "/etc/app/./data/h.db");
    setenv("HOME", "/home/u", 1);
    CHECK_INT(store_resolve_path("~/h.db", NULL, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "/home/u/h.db");
#ifndef __APPLE__
    setenv("XDG_DATA_HOME", "/xdg", 1);
    CHECK_INT(store_resolve_path(NULL, NULL, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "/xdg/promptd/prompt_history.db");
    unsetenv("XDG_DATA_HOME");
    CHECK_INT(store_resolve_path("", NULL, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "/home/u/.local/share/promptd/prompt_history.db");
#endif
}

/* ---- The store on a loop ---------------------------------------------- */

struct env {
    uv_loop_t loop;
    struct daemon d;
    struct config cfg;
    struct store *s;
    char path[512];
};

struct waiter {
    bool done;
    json_t *result;
    int code;
    char msg[512];
};

static void on_result(void *arg, json_t *result, int code, const char *message) {
    struct waiter *w = arg;
    w->done = true;
    w->result = result;
    w->code = code;
    snprintf(w->msg, sizeof w->msg, "%s", message ? message : "");
}

static bool spin_until(uv_loop_t *loop, bool *flag, int timeout_ms) {
    uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    while (!*flag && uv_hrtime() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(500);
    }
    return *flag;
}

static void env_config(struct env *e, const char *name) {
    memset(e, 0, sizeof *e);
    snprintf(e->path, sizeof e->path, "%s", tmp_path(name));
    e->cfg.sqlite_enabled = true;
    e->cfg.sqlite_db_path = e->path;
    e->cfg.sqlite_wal_mode = true;
    e->cfg.sqlite_auto_cleanup = true;
    e->cfg.sqlite_retention_days = 30;
}

static int env_open(struct env *e) {
    char err[512] = "";
    if (uv_loop_init(&e->loop) != 0)
        return -1;
    e->d.loop = &e->loop;
    e->d.cfg = &e->cfg;
    int rc = store_open(&e->d, &e->cfg, &e->s, err, sizeof err);
    if (rc != 0)
        printf("  store_open: %s\n", err);
    return rc;
}

/* store_close, then run the loop until every handle is closed. */
static void env_close(struct env *e) {
    store_close(e->s);
    e->s = NULL;
    for (int i = 0; i < 10000 && uv_loop_alive(&e->loop); i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    uv_loop_close(&e->loop);
}

static struct waiter run_op(struct env *e, void (*op)(struct store *, store_cb, void *)) {
    struct waiter w = {0};
    op(e->s, on_result, &w);
    spin_until(&e->loop, &w.done, 20000);
    return w;
}

static int64_t record(struct env *e, const char *idea, const char *prompt, int64_t ts) {
    json_t *g = json_pack("[s,s]", "be brief", "cite sources");
    struct history_row row = {
        .original_idea = idea,
        .improved_prompt = prompt,
        .role = "role",
        .directive = "directive",
        .framework = "CO-STAR",
        .guardrails = g,
        .has_confidence = true,
        .confidence = 0.8,
        .latency_ms = 812,
        .backend = "zero-shot",
        .provider = "builtin",
        .model = "template",
        .client = "unit",
        .prompt_tokens = -1,
        .completion_tokens = -1,
        .timestamp = ts,
    };
    int64_t id = store_record(e->s, &row);
    json_decref(g);
    return id;
}

static void wait_written(struct env *e) {
    struct store_counters c;
    uint64_t end = uv_hrtime() + 20000000000ull;
    do {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        store_get_counters(e->s, &c);
        usleep(500);
    } while (c.pending > 0 && uv_hrtime() < end);
}

static int64_t count_in_file(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
        n = scalar(db, sql);
    sqlite3_close(db);
    return n;
}

static void test_store_record_then_read_your_writes(void) {
    struct env e;
    env_config(&e, "ryw.db");
    CHECK_INT(env_open(&e), 0);
    int64_t first = record(&e, "first idea", "first prompt", 0);
    CHECK_INT(first, 1);
    int64_t last = 0;
    for (int i = 0; i < 999; i++)
        last = record(&e, "idea", "prompt", 0);
    CHECK_INT(last, 1000);
    /* Issued right away, before the writer is likely done: must see it. */
    struct waiter w = {0};
    store_get_async(e.s, last, on_result, &w);
    CHECK(spin_until(&e.loop, &w.done, 20000));
    CHECK_INT(w.code, 0);
    CHECK_INT(jint(w.result, "id"), 1000);
    CHECK_STR(json_string_value(json_object_get(w.result, "client")), "unit");
    CHECK_STR(json_string_value(json_array_get(json_object_get(w.result, "guardrails"), 1)),
              "cite sources");
    CHECK(near(json_real_value(json_object_get(w.result, "quality_score")), 0.7188));
    json_decref(w.result);

    json_t *h = store_health(e.s);
    CHECK_STR(json_string_value(json_object_get(h, "status")), "healthy");
    CHECK_INT(jint(h, "total_records"), 1000);
    CHECK_INT(jint(h, "average_latency_ms"), 812);
    CHECK_INT(jint(h, "dropped_writes"), 0);
    CHECK(jint(h, "size_bytes") > 0);
    json_decref(h);

    struct history_filter f = {.limit = 5};
    w = (struct waiter){0};
    store_list(e.s, &f, NULL, on_result, &w);
    CHECK(spin_until(&e.loop, &w.done, 20000));
    CHECK_INT(w.code, 0);
    CHECK_INT(jint(w.result, "total"), 1000);
    json_decref(w.result);

    w = (struct waiter){0};
    store_search(e.s, "first", 20, NULL, on_result, &w);
    CHECK(spin_until(&e.loop, &w.done, 20000));
    CHECK_INT(n_items(w.result), 1);
    json_decref(w.result);

    w = (struct waiter){0};
    store_stats(e.s, NULL, NULL, on_result, &w);
    CHECK(spin_until(&e.loop, &w.done, 20000));
    CHECK_INT(jint(w.result, "total_count"), 1000);
    CHECK_INT(jint(w.result, "last_24h"), 1000);
    json_decref(w.result);

    w = run_op(&e, store_check);
    CHECK(json_is_true(json_object_get(w.result, "ok")));
    json_decref(w.result);
    env_close(&e);
    struct stat st;
    CHECK_INT(stat(e.path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
}

static void delete_all(struct store *s, store_cb cb, void *arg) {
    store_delete_all(s, NULL, cb, arg);
}

static void test_store_ids_continue_after_reopen(void) {
    struct env e;
    env_config(&e, "reopen.db");
    CHECK_INT(env_open(&e), 0);
    for (int i = 0; i < 10; i++)
        record(&e, "idea", "prompt", 0);
    struct waiter w = run_op(&e, delete_all);
    CHECK_INT(jint(w.result, "deleted"), 10);
    json_decref(w.result);
    env_close(&e);
    CHECK_INT(env_open(&e), 0);
    /* AUTOINCREMENT: ids are never reused, even after everything went. */
    CHECK_INT(record(&e, "idea", "prompt", 0), 11);
    env_close(&e);
}

static void delete_id_7(struct store *s, store_cb cb, void *arg) {
    store_delete_id(s, 7, NULL, cb, arg);
}

static void delete_before_day2(struct store *s, store_cb cb, void *arg) {
    store_delete_before(s, "2026-01-02 00:00:00", NULL, cb, arg);
}

static void cleanup_30(struct store *s, store_cb cb, void *arg) {
    store_cleanup(s, 30, NULL, cb, arg);
}

static void test_store_deletes(void) {
    struct env e;
    env_config(&e, "del.db");
    CHECK_INT(env_open(&e), 0);
    struct tm day1 = {.tm_year = 126, .tm_mon = 0, .tm_mday = 1, .tm_hour = 12};
    int64_t t1 = (int64_t)timegm(&day1);
    for (int i = 0; i < 5000; i++)
        record(&e, "old idea about gardening", "prompt", t1);
    for (int i = 0; i < 10; i++)
        record(&e, "new idea about gardening", "prompt", 0);

    struct waiter w = run_op(&e, delete_id_7);
    CHECK_INT(w.code, 0);
    CHECK_INT(jint(w.result, "deleted"), 1);
    json_decref(w.result);
    w = run_op(&e, delete_id_7);
    CHECK_INT(w.code, RPC_NOT_FOUND);

    /* A range delete bigger than one batch. */
    w = run_op(&e, delete_before_day2);
    CHECK_INT(w.code, 0);
    CHECK_INT(jint(w.result, "deleted"), 4999);
    json_decref(w.result);
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM prompt_history"), 10);
    /* Deleted rows left the full-text index. */
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM prompt_history_fts "
                                    "WHERE prompt_history_fts MATCH 'old'"),
              0);
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM prompt_history_fts "
                                    "WHERE prompt_history_fts MATCH 'gardening'"),
              10);

    w = run_op(&e, cleanup_30);
    CHECK_INT(jint(w.result, "deleted"), 0);
    json_decref(w.result);

    w = run_op(&e, delete_all);
    CHECK_INT(jint(w.result, "deleted"), 10);
    json_decref(w.result);
    json_t *h = store_health(e.s);
    CHECK_INT(jint(h, "total_records"), 0);
    json_decref(h);
    env_close(&e);
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM prompt_history_fts "
                                    "WHERE prompt_history_fts MATCH 'gardening'"),
              0);
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM history_rollup"), 0);
}

static void test_store_startup_retention(void) {
    struct env e;
    env_config(&e, "retention.db");
    CHECK_INT(env_open(&e), 0);
    for (int i = 0; i < 3000; i++)
        record(&e, "ancient", "prompt", (int64_t)time(NULL) - 40 * 86400);
    record(&e, "recent", "prompt", (int64_t)time(NULL) - 2 * 86400);
    env_close(&e);
    CHECK_INT(env_open(&e), 0);
    store_start_maintenance(e.s);
    uint64_t end = uv_hrtime() + 20000000000ull;
    json_t *h = NULL;
    do {
        json_decref(h);
        uv_run(&e.loop, UV_RUN_NOWAIT);
        usleep(1000);
        h = store_health(e.s);
    } while (jint(h, "total_records") != 1 && uv_hrtime() < end);
    CHECK_INT(jint(h, "total_records"), 1);
    json_decref(h);
    env_close(&e);
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM prompt_history"), 1);
}

static char backup_target[512];

static void backup_to_target(struct store *s, store_cb cb, void *arg) {
    store_backup(s, backup_target, true, NULL, cb, arg);
}

static void restore_from_target(struct store *s, store_cb cb, void *arg) {
    store_restore(s, backup_target, NULL, cb, arg);
}

static void test_store_backup_restore(void) {
    struct env e;
    env_config(&e, "live.db");
    snprintf(backup_target, sizeof backup_target, "%s", tmp_path("backup.db"));
    CHECK_INT(env_open(&e), 0);
    for (int i = 0; i < 1000; i++)
        record(&e, "backed up idea", "prompt", 0);
    /* Right after the records: the backup must hold all of them. */
    struct waiter w = run_op(&e, backup_to_target);
    CHECK_INT(w.code, 0);
    CHECK_INT(jint(w.result, "rows"), 1000);
    CHECK(jint(w.result, "bytes") > 0);
    CHECK_STR(json_string_value(json_object_get(w.result, "path")), backup_target);
    json_decref(w.result);
    struct stat st;
    CHECK_INT(stat(backup_target, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    CHECK_INT(count_in_file(backup_target, "PRAGMA journal_mode") >= 0, 1);

    w = run_op(&e, delete_all);
    json_decref(w.result);
    for (int i = 0; i < 5; i++)
        record(&e, "after the backup", "prompt", 0);
    w = run_op(&e, restore_from_target);
    CHECK_INT(w.code, 0);
    CHECK_INT(jint(w.result, "rows"), 1000);
    json_decref(w.result);
    json_t *h = store_health(e.s);
    CHECK_INT(jint(h, "total_records"), 1000);
    json_decref(h);
    /* Ids continue past both histories. */
    CHECK_INT(record(&e, "after the restore", "prompt", 0), 1006);
    w = (struct waiter){0};
    store_search(e.s, "restore", 20, NULL, on_result, &w);
    CHECK(spin_until(&e.loop, &w.done, 20000));
    CHECK_INT(n_items(w.result), 1);
    json_decref(w.result);

    /* Files that are not a history are refused with the reason. */
    snprintf(backup_target, sizeof backup_target, "%s", tmp_path("garbage.db"));
    FILE *f = fopen(backup_target, "w");
    CHECK(f);
    fputs("not a database at all, just text that is long enough", f);
    fclose(f);
    w = run_op(&e, restore_from_target);
    CHECK_INT(w.code, RPC_INVALID_PARAMS);
    CHECK(strstr(w.msg, "not a SQLite database") != NULL);
    snprintf(backup_target, sizeof backup_target, "%s", tmp_path("missing.db"));
    w = run_op(&e, restore_from_target);
    CHECK_INT(w.code, RPC_INVALID_PARAMS);
    env_close(&e);
}

static void test_store_circuit_breaker(void) {
    struct env e;
    env_config(&e, "full.db");
    CHECK_INT(env_open(&e), 0);
    env_close(&e);
    int64_t pages = count_in_file(e.path, "PRAGMA page_count");
    CHECK(pages > 0);
    /* A "disk" just larger than the empty database: big rows do not fit. */
    e.cfg.test_max_page_count = pages + 8;
    e.cfg.test_circuit_pause_ms = 300;
    CHECK_INT(env_open(&e), 0);
    char *big = malloc(200000);
    CHECK(big);
    memset(big, 'x', 199999);
    big[199999] = '\0';
    /* A failed batch is kept and tried again until the failures open the
     * circuit; only then is it dropped. */
    CHECK(record(&e, "big", big, 0) > 0);
    wait_written(&e);
    free(big);
    struct store_counters c;
    store_get_counters(e.s, &c);
    CHECK(c.circuit_open);
    CHECK_INT(c.failures, STORE_CIRCUIT_FAILURES);
    CHECK_INT(c.dropped, 1);
    json_t *h = store_health(e.s);
    CHECK_STR(json_string_value(json_object_get(h, "status")), "circuit_open");
    CHECK(strstr(json_string_value(json_object_get(h, "last_error")), "full") != NULL);
    json_decref(h);
    /* Open: nothing is recorded, nothing waits. */
    CHECK_INT(record(&e, "small", "small", 0), 0);
    usleep(350000);
    /* After the pause one row is tried; it fits, so the circuit closes. */
    int64_t trial = record(&e, "small", "small", 0);
    CHECK(trial > 0);
    CHECK_INT(record(&e, "small", "while the trial runs", 0), 0);
    wait_written(&e);
    store_get_counters(e.s, &c);
    CHECK(!c.circuit_open);
    CHECK_INT(c.failures, 0);
    CHECK(record(&e, "small", "small again", 0) > 0);
    wait_written(&e);
    h = store_health(e.s);
    CHECK_STR(json_string_value(json_object_get(h, "status")), "healthy");
    CHECK_INT(jint(h, "total_records"), 2);
    json_decref(h);
    env_close(&e);
}

static void test_store_record_defaults(void) {
    struct env e;
    env_config(&e, "defaults.db");
    CHECK_INT(env_open(&e), 0);
    struct history_row row = {.original_idea = "only an idea",
                              .latency_ms = -1,
                              .prompt_tokens = -1,
                              .completion_tokens = -1,
                              .has_confidence = true,
                              .confidence = 7.5};
    int64_t id = store_record(e.s, &row);
    CHECK(id > 0);
    struct waiter w = {0};
    store_get_async(e.s, id, on_result, &w);
    CHECK(spin_until(&e.loop, &w.done, 20000));
    CHECK_INT(w.code, 0);
    CHECK_STR(json_string_value(json_object_get(w.result, "improved_prompt")), "");
    CHECK_STR(json_string_value(json_object_get(w.result, "backend")), "zero-shot");
    CHECK_INT(json_array_size(json_object_get(w.result, "guardrails")), 0);
    CHECK(json_is_null(json_object_get(w.result, "provider")));
    CHECK(json_is_null(json_object_get(w.result, "latency_ms")));
    CHECK(near(json_real_value(json_object_get(w.result, "confidence")), 1.0)); /* clamped */
    json_decref(w.result);
    env_close(&e);
}

/* The writer is held behind another connection's write lock: the queue
 * fills to its bound, later rows are dropped and counted, none waits. */
static void test_store_queue_full_drops_and_counts(void) {
    struct env e;
    env_config(&e, "queue.db");
    CHECK_INT(env_open(&e), 0);
    sqlite3 *blocker = NULL;
    CHECK_INT(sqlite3_open(e.path, &blocker), SQLITE_OK);
    CHECK_INT(exec(blocker, "BEGIN IMMEDIATE"), SQLITE_OK);
    int64_t accepted = 0, refused = 0;
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < LIMIT_STORE_QUEUE_ROWS + 10; i++) {
        if (record(&e, "queued", "p", 0) > 0)
            accepted++;
        else
            refused++;
    }
    CHECK((uv_hrtime() - t0) / 1000000u < 4000); /* nothing waited for the lock */
    CHECK_INT(accepted, LIMIT_STORE_QUEUE_ROWS);
    CHECK_INT(refused, 10);
    CHECK_INT(exec(blocker, "ROLLBACK"), SQLITE_OK);
    sqlite3_close(blocker);
    wait_written(&e);
    struct store_counters c;
    store_get_counters(e.s, &c);
    CHECK_INT(c.dropped, 10);
    CHECK_INT(c.committed, LIMIT_STORE_QUEUE_ROWS);
    env_close(&e);
}

static void test_store_close_writes_every_queued_row(void) {
    struct env e;
    env_config(&e, "flush.db");
    CHECK_INT(env_open(&e), 0);
    for (int i = 0; i < 30000; i++)
        CHECK(record(&e, "queued", "prompt", 0) > 0);
    env_close(&e); /* at once: most rows are still queued */
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM prompt_history"), 30000);
    CHECK_INT(count_in_file(e.path, "PRAGMA integrity_check") >= 0, 1);
}

static void test_store_refuses_newer_database(void) {
    struct env e;
    env_config(&e, "newer.db");
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(e.path, &db), SQLITE_OK);
    CHECK_INT(exec(db, "CREATE TABLE prompt_history(id INTEGER PRIMARY KEY, future TEXT); "
                       "PRAGMA user_version = 999"),
              SQLITE_OK);
    sqlite3_close(db);
    char err[512] = "";
    CHECK_INT(uv_loop_init(&e.loop), 0);
    e.d.loop = &e.loop;
    e.d.cfg = &e.cfg;
    CHECK_INT(store_open(&e.d, &e.cfg, &e.s, err, sizeof err), -1);
    CHECK(strstr(err, "newer promptd") != NULL);
    CHECK(e.s == NULL);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    CHECK_INT(uv_loop_close(&e.loop), 0);
    /* Untouched: same version, still a rollback-journal file. */
    CHECK_INT(count_in_file(e.path, "PRAGMA user_version"), 999);
    db = NULL;
    CHECK_INT(sqlite3_open_v2(e.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), "delete");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_store_moves_a_foreign_file_aside(void) {
    struct env e;
    env_config(&e, "junk.db");
    FILE *f = fopen(e.path, "w");
    CHECK(f);
    fputs("this is not SQLite, it is a text file the user pointed us at by mistake\n", f);
    fclose(f);
    CHECK_INT(env_open(&e), 0);
    json_t *h = store_health(e.s);
    const char *moved = json_string_value(json_object_get(h, "corrupt_moved_to"));
    CHECK(moved && strstr(moved, "junk.db.corrupt-"));
    struct stat st;
    CHECK_INT(stat(moved, &st), 0);
    json_decref(h);
    CHECK(record(&e, "fresh", "start", 0) > 0);
    env_close(&e);
    CHECK_INT(count_in_file(e.path, "SELECT count(*) FROM prompt_history"), 1);
}

static void test_store_refuses_a_foreign_database(void) {
    struct env e;
    env_config(&e, "other-app.db");
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(e.path, &db), SQLITE_OK);
    CHECK_INT(exec(db, "CREATE TABLE contacts(name TEXT)"), SQLITE_OK);
    sqlite3_close(db);
    char err[512] = "";
    CHECK_INT(uv_loop_init(&e.loop), 0);
    e.d.loop = &e.loop;
    e.d.cfg = &e.cfg;
    CHECK_INT(store_open(&e.d, &e.cfg, &e.s, err, sizeof err), -1);
    CHECK(strstr(err, "not a prompt history") != NULL);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    CHECK_INT(uv_loop_close(&e.loop), 0);
}

/* The file checks behind db.backup and db.restore (store_file.c). */
static void test_store_file_checks(void) {
    char live[600], wal[620], fifo[600], dotted[700], notes[600], old[600], msg[512], why[128];
    snprintf(live, sizeof live, "%s", tmp_path("checks.db"));
    snprintf(wal, sizeof wal, "%s-wal", live);
    snprintf(fifo, sizeof fifo, "%s", tmp_path("checks.fifo"));
    snprintf(dotted, sizeof dotted, "%s/../%s/checks.db", tmp_root, strrchr(tmp_root, '/') + 1);
    snprintf(notes, sizeof notes, "%s", tmp_path("notes.txt"));
    snprintf(old, sizeof old, "%s", tmp_path("old.db"));
    CHECK_INT(write_file(live, "SQLite format 3"), 0);
    CHECK_INT(write_file(old, "SQLite format 3"), 0);
    CHECK_INT(write_file(notes, "my notes, not a database"), 0);
    CHECK_INT(mkfifo(fifo, 0600), 0);

    /* A FIFO is refused at once, never waited on. */
    CHECK_INT(store_open_regular(fifo, why, sizeof why), -1);
    CHECK(strstr(why, "a FIFO, not a regular file") != NULL);
    CHECK(store_file_is_foreign(fifo));
    int fd = store_open_regular(old, why, sizeof why);
    CHECK(fd >= 0 && store_fd_is_sqlite(fd));
    close(fd);

    /* The live file and its companions, however the path is spelled,
     * existing or not. */
    CHECK(store_is_live_file(live, live));
    CHECK(store_is_live_file(dotted, live));
    CHECK(store_is_live_file(wal, live));
    CHECK(!store_is_live_file(old, live));
    CHECK_INT(store_check_backup_target(dotted, live, true, msg, sizeof msg), -1);
    CHECK(strstr(msg, "live history database") != NULL);
    CHECK_INT(store_check_backup_target(fifo, live, true, msg, sizeof msg), -1);
    CHECK(strstr(msg, "not a regular file") != NULL);
    CHECK_INT(store_check_backup_target(notes, live, false, msg, sizeof msg), -1);
    CHECK(strstr(msg, "already exists") != NULL);
    CHECK_INT(store_check_backup_target(notes, live, true, msg, sizeof msg), -1);
    CHECK(strstr(msg, "not a SQLite database") != NULL);
    CHECK_INT(store_check_backup_target(old, live, false, msg, sizeof msg), -1);
    CHECK_INT(store_check_backup_target(old, live, true, msg, sizeof msg), 0);
    CHECK_INT(store_check_backup_target(tmp_path("new.db"), live, false, msg, sizeof msg), 0);
}

/* The cancel token: whichever of cancel and commit comes first wins. */
static void test_store_cancel_token(void) {
    struct store_cancel c;
    atomic_init(&c.state, STORE_CANCEL_PENDING);
    CHECK(!store_cancel_asked(&c));
    CHECK(store_cancel_request(&c));
    CHECK(store_cancel_asked(&c));
    CHECK(!store_cancel_commit(&c));
    atomic_init(&c.state, STORE_CANCEL_PENDING);
    CHECK(store_cancel_commit(&c));
    CHECK(store_cancel_commit(&c));
    CHECK(!store_cancel_request(&c));
    CHECK(!store_cancel_asked(&c));
    CHECK(store_cancel_commit(NULL));
    CHECK(!store_cancel_asked(NULL));
}

int main(void) {
    log_set_level(LOG_ERROR);
    snprintf(tmp_root, sizeof tmp_root, "/tmp/promptd-test-store-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_quality_score_formula);
    RUN(test_time_parse);
    RUN(test_fts_query_quotes_every_word);
    RUN(test_get_row_shape);
    RUN(test_list_order_and_filters);
    RUN(test_pages_are_bounded_by_bytes);
    RUN(test_search_rank_snippet_and_odd_queries);
    RUN(test_stats_totals_groups_percentiles);
    RUN(test_check_reports_ok);
    RUN(test_resolve_path);
    RUN(test_store_record_then_read_your_writes);
    RUN(test_store_ids_continue_after_reopen);
    RUN(test_store_deletes);
    RUN(test_store_startup_retention);
    RUN(test_store_backup_restore);
    RUN(test_store_circuit_breaker);
    RUN(test_store_record_defaults);
    RUN(test_store_queue_full_drops_and_counts);
    RUN(test_store_close_writes_every_queued_row);
    RUN(test_store_refuses_newer_database);
    RUN(test_store_moves_a_foreign_file_aside);
    RUN(test_store_refuses_a_foreign_database);
    RUN(test_store_file_checks);
    RUN(test_store_cancel_token);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (!unit_total_failed && system(cmd) != 0)
        printf("could not remove %s\n", tmp_root);
    UNIT_EXIT();
}
