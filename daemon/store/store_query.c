/* The history's queries (store_query.h): synchronous, on any connection,
 * each in one short read transaction. */
#include "store_query.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "promptd_limits.h"
#include "protocol.h"
#include "store_row.h"
#include "store_sqlite.h"
#include "store_time.h"
#include "xalloc.h"

/* Marks around the matched words in history.search snippets. */
#define SNIPPET_OPEN   "\xC2\xAB" /* « */
#define SNIPPET_CLOSE  "\xC2\xBB" /* » */
#define SNIPPET_TOKENS "16"       /* words around the match */
/* Past this many matches only the newest are ranked. bm25 costs about
 * 2 us per match: a word found in half of a million prompts would take a
 * second to rank, and in a personal history the newest matches are the
 * ones looked for. Below it, every match is ranked. */
#define SEARCH_RANK_WINDOW 2000
/* Lines of quick_check output kept in db.check's detail. */
#define CHECK_MAX_LINES 20
/* The flags history.list and history.search serialize with (rpc.c's), so
 * a page's byte count is the answer's. */
#define ROW_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* A failed step/prepare: storage errors for the environment, internal for
 * anything else (a bug in a query). */
static int q_fail(sqlite3 *db, int rc, const char *what, char *err, size_t errlen) {
    store_sqlite_msg(db, rc, what, err, errlen);
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        return RPC_INTERNAL;
    default:
        return STORE_RPC_STORAGE;
    }
}

/* A JSON value could not be built. Not memory (jansson allocates through
 * xalloc, which aborts): a NULL value or a bad key, i.e. a bug. */
static int q_unbuilt(char *err, size_t errlen) {
    snprintf(err, errlen, "cannot build the answer");
    return RPC_INTERNAL;
}

/* Short read transactions: one per query, so the WAL can be checkpointed
 * between them, and the several statements of one answer agree. */
static int q_begin(sqlite3 *db, char *err, size_t errlen) {
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : q_fail(db, rc, "cannot read the history", err, errlen);
}

static void q_end(sqlite3 *db) {
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL); /* a read transaction: nothing to lose */
}

/* ===================================================================== */
/* history.get                                                           */
/* ===================================================================== */

int store_q_get(sqlite3 *db, int64_t id, json_t **out, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db, "SELECT " STORE_ROW_COLS " FROM prompt_history h WHERE h.id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return q_fail(db, rc, "cannot read the history", err, errlen);
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW) {
        *out = store_row_json(st);
        code = *out ? 0 : q_unbuilt(err, errlen);
    } else if (rc == SQLITE_DONE) {
        snprintf(err, errlen, "No history entry with id %lld.", (long long)id);
        code = RPC_NOT_FOUND;
    } else {
        code = q_fail(db, rc, "cannot read the history", err, errlen);
    }
    sqlite3_finalize(st);
    return code;
}

/* ===================================================================== */
/* history.list                                                          */
/* ===================================================================== */

static bool filter_is_empty(const struct history_filter *f) {
    return !f->backend && !f->provider && !f->since[0] && !f->until[0] && !f->has_min_quality;
}

/* The WHERE clause of the filters. For a page (newest first), the quality
 * term gets a unary + so the planner walks the timestamp index and stops
 * after `limit` rows instead of sorting every row above the threshold;
 * for the count, the quality index is the fast path. */
static void filter_where(const struct history_filter *f, bool page, char *out, size_t outlen) {
    snprintf(out, outlen, " WHERE 1%s%s%s%s%s", f->backend ? " AND h.backend = :backend" : "",
             f->provider ? " AND h.provider = :provider" : "",
             f->since[0] ? " AND h.timestamp >= :since" : "",
             f->until[0] ? " AND h.timestamp < :until" : "",
             !f->has_min_quality ? ""
             : page              ? " AND +h.quality_score >= :minq"
                                 : " AND h.quality_score >= :minq");
}

static void filter_bind(sqlite3_stmt *st, const struct history_filter *f) {
    int i;
    if (f->backend && (i = sqlite3_bind_parameter_index(st, ":backend")) > 0)
        sqlite3_bind_text(st, i, f->backend, -1, SQLITE_STATIC);
    if (f->provider && (i = sqlite3_bind_parameter_index(st, ":provider")) > 0)
        sqlite3_bind_text(st, i, f->provider, -1, SQLITE_STATIC);
    if (f->since[0] && (i = sqlite3_bind_parameter_index(st, ":since")) > 0)
        sqlite3_bind_text(st, i, f->since, -1, SQLITE_STATIC);
    if (f->until[0] && (i = sqlite3_bind_parameter_index(st, ":until")) > 0)
        sqlite3_bind_text(st, i, f->until, -1, SQLITE_STATIC);
    if (f->has_min_quality && (i = sqlite3_bind_parameter_index(st, ":minq")) > 0)
        sqlite3_bind_double(st, i, f->min_quality);
}

/* Runs a one-integer query (a count). */
static int q_scalar(sqlite3 *db, const char *sql, const struct history_filter *f, int64_t *value,
                    char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (f)
            filter_bind(st, f);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    int code = rc == SQLITE_OK ? 0 : q_fail(db, rc, "cannot read the history", err, errlen);
    sqlite3_finalize(st);
    return code;
}

/* Steps st and appends each row (plus the snippet column, when >= 0)
 * while the rows serialized stay within LIMIT_HISTORY_PAGE_BYTES; the
 * first row always goes in. *truncated: the page stopped at the budget,
 * not at the end of the rows. */
static int q_rows(sqlite3 *db, sqlite3_stmt *st, int snippet_col, json_t *items, bool *truncated,
                  char *err, size_t errlen) {
    int rc;
    size_t used = 0;
    *truncated = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = store_row_json(st);
        if (row && snippet_col >= 0 &&
            json_object_set_new(row, "snippet", store_row_text(st, snippet_col, true)) != 0) {
            json_decref(row);
            row = NULL;
        }
        if (!row)
            return q_unbuilt(err, errlen);
        size_t bytes = json_dumpb(row, NULL, 0, ROW_DUMP_FLAGS) + 1; /* and its comma */
        if (json_array_size(items) > 0 && used + bytes > LIMIT_HISTORY_PAGE_BYTES) {
            json_decref(row);
            *truncated = true;
            return 0;
        }
        used += bytes;
        if (json_array_append_new(items, row) != 0)
            return q_unbuilt(err, errlen);
    }
    return rc == SQLITE_DONE ? 0 : q_fail(db, rc, "cannot read the history", err, errlen);
}

/* {"items": items, ...} plus "truncated": true when the page stopped at
 * its byte budget. Steals items (also on failure); NULL on OOM. */
static json_t *page_json(json_t *items, bool truncated) {
    json_t *o = json_pack("{s:o}", "items", items);
    if (o && truncated && json_object_set_new(o, "truncated", json_true()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int list_total(sqlite3 *db, const struct history_filter *f, int64_t *total, char *err,
                      size_t errlen) {
    char sql[512], where[256];
    /* Without filters the per-day totals answer at once; a count(*) would
     * walk an index of every row. */
    if (filter_is_empty(f))
        return q_scalar(db, "SELECT coalesce(sum(n), 0) FROM history_rollup", NULL, total, err,
                        errlen);
    filter_where(f, false, where, sizeof where);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM prompt_history h%s", where);
    return q_scalar(db, sql, f, total, err, errlen);
}

int store_q_list(sqlite3 *db, const struct history_filter *f, json_t **out, char *err,
                 size_t errlen) {
    char where[256], sql[1024];
    sqlite3_stmt *st = NULL;
    int64_t total = 0;
    bool truncated = false;
    json_t *items = json_array();
    if (!items)
        return q_unbuilt(err, errlen);
    filter_where(f, true, where, sizeof where);
    snprintf(sql, sizeof sql,
             "SELECT " STORE_ROW_COLS " FROM prompt_history h%s "
             "ORDER BY h.timestamp DESC, h.id DESC LIMIT :limit OFFSET :offset",
             where);
    int code = q_begin(db, err, errlen);
    if (code == 0) {
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK) {
            code = q_fail(db, rc, "cannot read the history", err, errlen);
        } else {
            filter_bind(st, f);
            sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit);
            sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":offset"), f->offset);
            code = q_rows(db, st, -1, items, &truncated, err, errlen);
        }
        sqlite3_finalize(st);
        if (code == 0)
            code = list_total(db, f, &total, err, errlen);
        q_end(db);
    }
    if (code != 0) {
        json_decref(items);
        return code;
    }
    *out = page_json(items, truncated);
    if (!*out || json_object_set_new(*out, "total", json_integer((json_int_t)total)) != 0) {
        json_decref(*out);
        *out = NULL;
        return q_unbuilt(err, errlen);
    }
    return 0;
}

/* ===================================================================== */
/* history.search                                                        */
/* ===================================================================== */

/* The next white-space separated word after *cursor (its length in
 * *len, *cursor moved past it), or NULL at the end of the text. */
static const char *next_word(const char **cursor, size_t *len) {
    const char *p = *cursor;
    while (*p && isspace((unsigned char)*p))
        p++;
    const char *start = p;
    while (*p && !isspace((unsigned char)*p))
        p++;
    *cursor = p;
    *len = (size_t)(p - start);
    return *len ? start : NULL;
}

/* Whether the word at w (len bytes) already came earlier in text, ASCII
 * case aside: the index folds case, so it would search the same phrase
 * again, which costs and finds nothing more. Quadratic in the words,
 * which the method bounds (LIMIT_SEARCH_QUERY_BYTES). */
static bool word_repeated(const char *text, const char *w, size_t len) {
    const char *cursor = text, *x;
    size_t n;
    while ((x = next_word(&cursor, &n)) && x < w)
        if (n == len && strncasecmp(x, w, len) == 0)
            return true;
    return false;
}

size_t store_search_terms(const char *text) {
    const char *cursor = text, *w;
    size_t len, terms = 0;
    while ((w = next_word(&cursor, &len)))
        terms += !word_repeated(text, w, len);
    return terms;
}

char *store_fts_query(const char *text) {
    size_t len = strlen(text), cap = len * 2 + 3 * (len / 2 + 1) + 1, n = 0, wlen;
    char *q = xmalloc(cap);
    const char *cursor = text, *w;
    while ((w = next_word(&cursor, &wlen))) {
        if (word_repeated(text, w, wlen))
            continue;
        if (n)
            q[n++] = ' ';
        q[n++] = '"';
        for (size_t i = 0; i < wlen; i++) {
            if (w[i] == '"')
                q[n++] = '"'; /* FTS5 strings escape a quote by doubling it */
            q[n++] = w[i];
        }
        q[n++] = '"';
    }
    q[n] = '\0';
    if (n == 0) {
        free(q);
        return NULL;
    }
    return q;
}

/* ---- Ranking ------------------------------------------------------------
 * FTS5's bm25() computes each word's IDF by reading the word's whole
 * doclist on every query: 60 ms for a word in every one of a million
 * rows, whatever the LIMIT. promptd_rank is the same BM25 (k1 1.2, b 0.75,
 * all columns weighted 1) with the IDFs passed in as arguments, estimated
 * from the newest matches (below), which costs a fraction of a
 * millisecond per word. */

#define BM25_K1 1.2
#define BM25_B  0.75
/* Words whose IDF is estimated (each costs a doclist probe); further
 * words weigh 1. */
#define RANK_MAX_PHRASES 8
/* Words whose frequency in a row counts towards its score; further words
 * only filter. */
#define RANK_MAX_TF 64

struct rank_aux {
    double avgdl; /* average tokens per row, once per query */
};

static void rank_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                    sqlite3_value **vals) {
    struct rank_aux *aux = api->xGetAuxdata(fts, 0);
    if (!aux) {
        sqlite3_int64 rows = 0, tokens = 0;
        aux = sqlite3_malloc(sizeof *aux);
        if (!aux || api->xRowCount(fts, &rows) != SQLITE_OK ||
            api->xColumnTotalSize(fts, -1, &tokens) != SQLITE_OK) {
            sqlite3_free(aux);
            sqlite3_result_error_code(ctx, SQLITE_NOMEM);
            return;
        }
        aux->avgdl = rows > 0 && tokens > 0 ? (double)tokens / (double)rows : 1.0;
        if (api->xSetAuxdata(fts, aux, sqlite3_free) != SQLITE_OK) {
            sqlite3_result_error_code(ctx, SQLITE_NOMEM);
            return;
        }
    }
    double tf[RANK_MAX_TF] = {0};
    int n_inst = 0, dl = 0;
    if (api->xInstCount(fts, &n_inst) != SQLITE_OK || api->xColumnSize(fts, -1, &dl) != SQLITE_OK) {
        sqlite3_result_error(ctx, "promptd_rank: cannot read the match", -1);
        return;
    }
    for (int i = 0; i < n_inst; i++) {
        int phrase, col, off;
        if (api->xInst(fts, i, &phrase, &col, &off) == SQLITE_OK && phrase >= 0 &&
            phrase < RANK_MAX_TF)
            tf[phrase] += 1.0;
    }
    int n_phrase = api->xPhraseCount(fts);
    double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)dl / aux->avgdl), score = 0;
    for (int p = 0; p < n_phrase && p < RANK_MAX_TF; p++) {
        double idf = p < nval ? sqlite3_value_double(vals[p]) : 1.0;
        score += idf * tf[p] * (BM25_K1 + 1.0) / (tf[p] + norm);
    }
    sqlite3_result_double(ctx, -score); /* like bm25(): smaller is better */
}

int store_q_prepare_db(sqlite3 *db) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || !api)
        return rc != SQLITE_OK ? rc : SQLITE_ERROR;
    return api->xCreateFunction(api, "promptd_rank", NULL, rank_fn, NULL);
}

/* The next FTS5 string of a query built by store_fts_query, as a
 * malloc'd copy (quotes included) the caller frees; NULL at the end. */
static char *next_phrase(const char **cursor) {
    const char *p = *cursor;
    while (*p == ' ')
        p++;
    if (*p != '"')
        return NULL;
    const char *start = p++;
    for (; *p; p++) {
        if (*p == '"' && p[1] == '"')
            p++; /* a doubled quote inside the string */
        else if (*p == '"')
            break;
    }
    if (*p)
        p++;
    *cursor = p;
    return xstrndup(start, (size_t)(p - start));
}

/* The rowid of the SEARCH_RANK_WINDOW-th newest match of fts, or 0 when
 * there are fewer matches (then *matches is their exact number, when
 * asked for). Walks the doclists in rowid order: no ranking, no row
 * read. */
static int newest_matches(sqlite3 *db, const char *fts, int64_t *from, int64_t *matches, char *err,
                          size_t errlen) {
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT rowid FROM prompt_history_fts WHERE prompt_history_fts MATCH ?1 "
                      "ORDER BY rowid DESC LIMIT 1 OFFSET ?2";
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, fts, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, SEARCH_RANK_WINDOW - 1);
        rc = sqlite3_step(st);
    }
    *from = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return q_fail(db, rc, "cannot search the history", err, errlen);
    if (rc == SQLITE_DONE && matches) {
        sqlite3_stmt *cnt = NULL;
        rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM prompt_history_fts "
                                "WHERE prompt_history_fts MATCH ?1",
                                -1, &cnt, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(cnt, 1, fts, -1, SQLITE_STATIC);
            rc = sqlite3_step(cnt);
        }
        *matches = rc == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : 0;
        sqlite3_finalize(cnt);
        if (rc != SQLITE_ROW)
            return q_fail(db, rc, "cannot search the history", err, errlen);
    }
    return 0;
}

/* rank MATCH 'promptd_rank(idf, ...)' for the query's words. A word's
 * document frequency is exact below SEARCH_RANK_WINDOW matches, else
 * estimated from how densely its newest matches fill the newest ids:
 * SEARCH_RANK_WINDOW matches among the ids [from, max] of a table whose
 * rows spread evenly over [min, max]. */
static int search_rank_spec(sqlite3 *db, const char *fts, char *spec, size_t speclen, char *err,
                            size_t errlen) {
    int64_t n = 0, min_id = 0, max_id = 0;
    sqlite3_stmt *st = NULL;
    /* Separate subqueries: each min()/max() is then one index lookup. */
    int rc = sqlite3_prepare_v2(db,
                                "SELECT (SELECT min(id) FROM prompt_history), "
                                "(SELECT max(id) FROM prompt_history), "
                                "(SELECT coalesce(sum(n), 0) FROM history_rollup)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        min_id = sqlite3_column_int64(st, 0);
        max_id = sqlite3_column_int64(st, 1);
        n = sqlite3_column_int64(st, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return q_fail(db, rc, "cannot search the history", err, errlen);
    size_t used = (size_t)snprintf(spec, speclen, "promptd_rank(");
    const char *cursor = fts;
    char *phrase;
    for (int i = 0; i < RANK_MAX_PHRASES && (phrase = next_phrase(&cursor)); i++) {
        int64_t from = 0, df = 0;
        int code = newest_matches(db, phrase, &from, &df, err, errlen);
        free(phrase);
        if (code != 0)
            return code;
        if (from > 0) /* a window of matches among (max_id - from + 1) ids */
            df = (int64_t)((double)SEARCH_RANK_WINDOW * (double)(max_id - min_id + 1) /
                           (double)(max_id - from + 1));
        double nd = (double)(n > df ? n : df);
        double idf = log((nd - (double)df + 0.5) / ((double)df + 0.5));
        if (idf <= 1e-6)
            idf = 1e-6; /* as bm25(): a word in most rows still counts a little */
        if (used < speclen)
            used += (size_t)snprintf(spec + used, speclen - used, "%s%.6f", i ? ", " : "", idf);
    }
    if (used + 2 > speclen)
        return q_unbuilt(err, errlen);
    snprintf(spec + used, speclen - used, ")");
    return 0;
}

int store_q_search(sqlite3 *db, const char *query, long limit, json_t **out, char *err,
                   size_t errlen) {
    char *fts = store_fts_query(query);
    json_t *items = json_array();
    sqlite3_stmt *st = NULL;
    char spec[RANK_MAX_PHRASES * 24 + 32];
    int code = 0;
    bool truncated = false;
    /* FTS5 ranks the matches of the window with promptd_rank and keeps
     * the best `limit` (ORDER BY rank LIMIT inside the subquery); only
     * those are joined and get a snippet. */
    const char *sql =
        "SELECT " STORE_ROW_COLS ", m.snip FROM ("
        " SELECT rowid AS rid, rank AS r, snippet(prompt_history_fts, -1, '" SNIPPET_OPEN
        "', '" SNIPPET_CLOSE "', '...', " SNIPPET_TOKENS ") AS snip"
        " FROM prompt_history_fts WHERE prompt_history_fts MATCH ?1 AND rowid >= ?3"
        " AND rank MATCH ?4 ORDER BY rank LIMIT ?2"
        ") AS m JOIN prompt_history h ON h.id = m.rid ORDER BY m.r";
    int64_t from = 0;
    if (fts && (code = q_begin(db, err, errlen)) == 0) {
        int rc = SQLITE_OK;
        code = newest_matches(db, fts, &from, NULL, err, errlen);
        if (code == 0)
            code = search_rank_spec(db, fts, spec, sizeof spec, err, errlen);
        if (code == 0 && (rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK) {
            code = q_fail(db, rc, "cannot search the history", err, errlen);
        } else if (code == 0) {
            sqlite3_bind_text(st, 1, fts, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, limit);
            sqlite3_bind_int64(st, 3, from);
            sqlite3_bind_text(st, 4, spec, -1, SQLITE_STATIC);
            code = q_rows(db, st, STORE_ROW_NCOLS, items, &truncated, err, errlen);
        }
        sqlite3_finalize(st);
        q_end(db);
    }
    free(fts);
    if (code != 0) {
        json_decref(items);
        return code;
    }
    if (!(*out = page_json(items, truncated)))
        return q_unbuilt(err, errlen);
    return 0;
}

/* ===================================================================== */
/* stats                                                                 */
/* ===================================================================== */

/* The rows stats aggregates, as per-day sums: whole days from the rollup
 * (?1 = first whole day), plus the rows of the partial first day read
 * one by one ([?2, ?3)). Exact for any `since`, and reads at most one
 * day's rows from the big table. */
#define STATS_SRC                                                                                  \
    "WITH src(backend, provider, model, n, n_conf, sum_conf, n_lat, sum_lat, sum_quality) AS ("    \
    " SELECT backend, provider, model, n, n_conf, sum_conf, n_lat, sum_lat, sum_quality"           \
    " FROM history_rollup WHERE n > 0 AND day >= ?1"                                               \
    " UNION ALL"                                                                                   \
    " SELECT backend, coalesce(provider, ''), coalesce(model_version, ''), 1,"                     \
    " confidence IS NOT NULL, coalesce(confidence, 0), latency_ms IS NOT NULL,"                    \
    " coalesce(latency_ms, 0), quality_score"                                                      \
    " FROM prompt_history WHERE timestamp >= ?2 AND timestamp < ?3) "

#define STATS_SUMS "sum(n), sum(n_conf), sum(sum_conf), sum(n_lat), sum(sum_lat), sum(sum_quality)"

struct stats_range {
    char first_day[STORE_TS_LEN]; /* "YYYY-MM-DD" or "" for all days */
    char part_from[STORE_TS_LEN]; /* the partial day, or "" .. "" (empty) */
    char part_to[STORE_TS_LEN];
};

static void stats_range_init(const char *since, struct stats_range *r) {
    memset(r, 0, sizeof *r);
    if (!since || !since[0])
        return;
    if (strcmp(since + 10, " 00:00:00") == 0) {
        snprintf(r->first_day, sizeof r->first_day, "%.10s", since);
        return;
    }
    /* since is inside a day: that day's rows from `since` on are read
     * from the table, whole days from the rollup after it. */
    char day[STORE_TS_LEN], next[STORE_TS_LEN];
    snprintf(day, sizeof day, "%.10s", since);
    store_time_parse(day, true, next); /* the next midnight */
    snprintf(r->first_day, sizeof r->first_day, "%.10s", next);
    snprintf(r->part_from, sizeof r->part_from, "%s", since);
    snprintf(r->part_to, sizeof r->part_to, "%s", next);
}

static void stats_bind(sqlite3_stmt *st, const struct stats_range *r) {
    sqlite3_bind_text(st, 1, r->first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->part_from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->part_to, -1, SQLITE_STATIC);
}

struct stats_sums {
    int64_t n, n_conf, n_lat;
    double sum_conf, sum_lat, sum_quality;
};

static void stats_read_sums(sqlite3_stmt *st, int col, struct stats_sums *s) {
    s->n = sqlite3_column_int64(st, col);
    s->n_conf = sqlite3_column_int64(st, col + 1);
    s->sum_conf = sqlite3_column_double(st, col + 2);
    s->n_lat = sqlite3_column_int64(st, col + 3);
    s->sum_lat = sqlite3_column_double(st, col + 4);
    s->sum_quality = sqlite3_column_double(st, col + 5);
}

static json_t *avg_real(double sum, int64_t n) {
    return n > 0 ? json_real(round(sum / (double)n * 1e4) / 1e4) : json_null();
}

static json_t *avg_int(double sum, int64_t n) {
    return n > 0 ? json_integer((json_int_t)llround(sum / (double)n)) : json_null();
}

/* {name: {count, average_quality, average_latency_ms}} grouped by one of
 * the rollup's key columns. */
static int stats_group(sqlite3 *db, const struct stats_range *r, const char *column, json_t *into,
                       char *err, size_t errlen) {
    char sql[1536];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql,
             STATS_SRC "SELECT %s, " STATS_SUMS " FROM src GROUP BY 1 ORDER BY 2 DESC", column);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return q_fail(db, rc, "cannot compute the statistics", err, errlen);
    stats_bind(st, r);
    int code = 0;
    while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct stats_sums s;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        stats_read_sums(st, 1, &s);
        json_t *g = json_pack("{s:I,s:o,s:o}", "count", (json_int_t)s.n, "average_quality",
                              avg_real(s.sum_quality, s.n), "average_latency_ms",
                              avg_int(s.sum_lat, s.n_lat));
        if (!g || json_object_set_new(into, name && *name ? name : "unknown", g) != 0)
            code = q_unbuilt(err, errlen);
    }
    if (code == 0 && rc != SQLITE_DONE)
        code = q_fail(db, rc, "cannot compute the statistics", err, errlen);
    sqlite3_finalize(st);
    return code;
}

static int stats_totals(sqlite3 *db, const struct stats_range *r, struct stats_sums *s, char *err,
                        size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, STATS_SRC "SELECT " STATS_SUMS " FROM src", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        stats_bind(st, r);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        stats_read_sums(st, 0, s);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : q_fail(db, rc, "cannot compute the statistics", err, errlen);
}

/* The k-th smallest latency (0-based) of the rows since `since` (NULL:
 * all), by an OFFSET walk of the (latency_ms, timestamp) index, which
 * holds the value and the filter, so no table row is read. Walks from
 * the nearer end: p95 of a million rows skips 50 000 entries, not
 * 950 000. Without a filter SQLite skips entries without decoding them
 * (a million in ~25 ms); with one it decodes each (~100 ns). */
static int stats_latency_walk(sqlite3 *db, const char *since, int64_t k, int64_t n, json_t **out,
                              char *err, size_t errlen) {
    char sql[256];
    sqlite3_stmt *st = NULL;
    bool down = k > n / 2;
    snprintf(sql, sizeof sql,
             "SELECT latency_ms FROM prompt_history WHERE latency_ms IS NOT NULL%s "
             "ORDER BY latency_ms %s LIMIT 1 OFFSET ?2",
             since ? " AND timestamp >= ?1" : "", down ? "DESC" : "ASC");
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (since)
            sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, down ? n - 1 - k : k);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        *out = json_integer(sqlite3_column_int64(st, 0));
    else if (rc == SQLITE_DONE)
        *out = json_null();
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return q_fail(db, rc, "cannot compute the statistics", err, errlen);
    return *out ? 0 : q_unbuilt(err, errlen);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The latencies since `since`, from a range of the (timestamp,
 * latency_ms) index, sorted: for a short window this reads only the
 * window's entries. *out is malloc'd (caller frees), *n its length. */
static int stats_latency_collect(sqlite3 *db, const char *since, int64_t cap, int64_t **out,
                                 int64_t *n, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    /* "+": keep the planner off the latency index for this term. */
    const char *sql = "SELECT latency_ms FROM prompt_history "
                      "WHERE timestamp >= ?1 AND +latency_ms IS NOT NULL";
    int64_t *v = xmalloc((size_t)(cap > 0 ? cap : 1) * sizeof *v);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    *n = 0;
    if (rc == SQLITE_OK)
        sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n < cap)
            v[(*n)++] = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(v);
        return q_fail(db, rc, "cannot compute the statistics", err, errlen);
    }
    qsort(v, (size_t)*n, sizeof *v, cmp_i64);
    *out = v;
    return 0;
}

/* Nearest-rank percentile: the smallest value with at least p of the
 * values at or below it. */
static int64_t rank_of(double p, int64_t n) {
    int64_t k = (int64_t)ceil(p * (double)n) - 1;
    return k < 0 ? 0 : k;
}

/* p50 and p95 of the latencies since `since` (n of them, out of n_all
 * in the whole table). A window under a sixth of the table is read from
 * the timestamp index and sorted; a wider one (or none) is walked. */
static int stats_percentiles(sqlite3 *db, const char *since, int64_t n, int64_t n_all, json_t **p50,
                             json_t **p95, char *err, size_t errlen) {
    int64_t k50 = rank_of(0.50, n), k95 = rank_of(0.95, n);
    if (n == 0)
        return 0;
    if (since && n * 6 < n_all) {
        int64_t *v = NULL, got = 0;
        int code = stats_latency_collect(db, since, n, &v, &got, err, errlen);
        if (code == 0 && got > 0) {
            *p50 = json_integer(v[rank_of(0.50, got)]);
            *p95 = json_integer(v[rank_of(0.95, got)]);
        }
        free(v);
        return code;
    }
    int code = stats_latency_walk(db, since, k50, n, p50, err, errlen);
    if (code == 0)
        code = stats_latency_walk(db, since, k95, n, p95, err, errlen);
    return code;
}

static int stats_fill(sqlite3 *db, const struct stats_range *r, const char *since, int64_t now_s,
                      json_t *o, char *err, size_t errlen) {
    struct stats_sums s;
    json_t *p50 = NULL, *p95 = NULL;
    int64_t last24 = 0;
    struct history_filter day = {.limit = 0};
    bool bad = false;
    store_time_format(now_s - 86400, day.since);
    int64_t n_lat_all = 0;
    int code = stats_totals(db, r, &s, err, errlen);
    if (code == 0)
        n_lat_all = s.n_lat;
    if (code == 0 && since)
        code = q_scalar(db, "SELECT coalesce(sum(n_lat), 0) FROM history_rollup", NULL, &n_lat_all,
                        err, errlen);
    if (code == 0)
        code = stats_percentiles(db, since, s.n_lat, n_lat_all, &p50, &p95, err, errlen);
    if (code == 0)
        code = q_scalar(db, "SELECT count(*) FROM prompt_history h WHERE h.timestamp >= :since",
                        &day, &last24, err, errlen);
    if (code != 0) {
        json_decref(p50);
        json_decref(p95);
        return code;
    }
    store_json_set(o, "total_count", json_integer(s.n), &bad);
    store_json_set(o, "average_confidence", avg_real(s.sum_conf, s.n_conf), &bad);
    store_json_set(o, "average_latency_ms", avg_int(s.sum_lat, s.n_lat), &bad);
    store_json_set(o, "average_quality", avg_real(s.sum_quality, s.n), &bad);
    store_json_set(o, "p50_latency_ms", p50 ? p50 : json_null(), &bad);
    store_json_set(o, "p95_latency_ms", p95 ? p95 : json_null(), &bad);
    store_json_set(o, "last_24h", json_integer(last24), &bad);
    return bad ? q_unbuilt(err, errlen) : 0;
}

int store_q_stats(sqlite3 *db, const char *since, int64_t now_s, json_t **out, char *err,
                  size_t errlen) {
    static const char *const group_cols[3] = {"backend", "provider", "model"};
    static const char *const group_keys[3] = {"by_backend", "by_provider", "by_model"};
    struct stats_range r;
    json_t *o = json_object();
    char iso[40];
    bool bad = o == NULL;
    if (since && !since[0])
        since = NULL;
    int code = bad ? q_unbuilt(err, errlen) : q_begin(db, err, errlen);
    stats_range_init(since, &r);
    if (code == 0) {
        code = stats_fill(db, &r, since, now_s, o, err, errlen);
        for (int i = 0; i < 3 && code == 0; i++) {
            json_t *g = json_object();
            code = g ? stats_group(db, &r, group_cols[i], g, err, errlen) : q_unbuilt(err, errlen);
            if (json_object_set_new(o, group_keys[i], g) != 0 && code == 0)
                code = q_unbuilt(err, errlen);
        }
        q_end(db);
    }
    if (code == 0) {
        store_time_iso(since, iso, sizeof iso);
        store_json_set(o, "since", since && since[0] ? json_string(iso) : json_null(), &bad);
        if (bad)
            code = q_unbuilt(err, errlen);
    }
    if (code != 0) {
        json_decref(o);
        return code;
    }
    *out = o;
    return 0;
}

/* ===================================================================== */
/* db.check                                                              */
/* ===================================================================== */

int store_q_check(sqlite3 *db, json_t **out, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    char detail[2048] = "";
    size_t used = 0;
    int lines = 0;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA quick_check(%d)", CHECK_MAX_LINES);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        int n = snprintf(detail + used, sizeof detail - used, "%s%s", lines ? "; " : "",
                         line ? line : "");
        if (n > 0 && (size_t)n < sizeof detail - used)
            used += (size_t)n;
        lines++;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)
        return q_fail(db, rc, "the check could not run", err, errlen); /* interrupted, busy */
    if (rc != SQLITE_DONE) {
        /* A file too damaged to be checked is a failed check, not an
         * error of the method. */
        store_sqlite_msg(db, rc, "the check could not run", detail, sizeof detail);
        *out = json_pack("{s:b,s:s}", "ok", 0, "detail", detail);
        return *out ? 0 : q_unbuilt(err, errlen);
    }
    bool ok = lines == 1 && strcmp(detail, "ok") == 0;
    *out = json_pack("{s:b,s:s}", "ok", ok, "detail", detail);
    return *out ? 0 : q_unbuilt(err, errlen);
}
