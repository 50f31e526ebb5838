#include "store_read.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "utf8.h"

/* Pooled reader connections kept open between jobs; more are opened when
 * more jobs run at once (the thread pool bounds that) and closed after. */
#define READERS_IDLE_MAX 4
/* A reader waits this long for a lock (only a checkpoint or recovery
 * takes one that blocks WAL readers). */
#define READERS_BUSY_MS 2000
/* Connections in use that store_readers_interrupt_all can reach (more
 * run fine, they are only not interruptible). */
#define READERS_BUSY_MAX 64
/* Per-connection page cache: enough for an index walk, small enough that
 * a handful of readers stays within the daemon's memory budget. */
#define READERS_CACHE_KIB 2048
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
/* A cancellable job's progress handler looks at its flag every this many
 * SQLite VM steps. Few: most steps take nanoseconds (the check, an atomic
 * load, costs as little), but one step can be a whole snippet() of a
 * long row, and a search returns a row every few dozen steps. */
#define READERS_PROGRESS_OPS 10
/* The flags history.list and history.search serialize with (rpc.c's), so
 * a page's byte count is the answer's. */
#define ROW_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* ===================================================================== */
/* Time                                                                  */
/* ===================================================================== */

static bool parse_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "Z", "+HH:MM", "+HHMM", "+HH" or nothing (UTC) -> seconds east of UTC. */
static bool parse_offset(const char *p, long *offset) {
    int hh = 0, mm = 0;
    *offset = 0;
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0'))
        return true;
    if (*p != '+' && *p != '-')
        return false;
    int sign = *p++ == '-' ? -1 : 1;
    if (!parse_digits(&p, 2, &hh))
        return false;
    if (*p == ':')
        p++;
    if (*p && !parse_digits(&p, 2, &mm))
        return false;
    if (*p || hh > 23 || mm > 59)
        return false;
    *offset = sign * (hh * 3600L + mm * 60L);
    return true;
}

int store_time_parse(const char *text, bool upper, char out[STORE_TS_LEN]) {
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    long step = 86400; /* the span the text names: a day, a minute, a second */
    long offset = 0;
    if (!text || !parse_digits(&p, 4, &y) || *p++ != '-' || !parse_digits(&p, 2, &mo) ||
        *p++ != '-' || !parse_digits(&p, 2, &d))
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!parse_digits(&p, 2, &h) || *p++ != ':' || !parse_digits(&p, 2, &mi))
            return -1;
        step = 60;
        if (*p == ':') {
            p++;
            if (!parse_digits(&p, 2, &sec))
                return -1;
            step = 1;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return -1;
                while (isdigit((unsigned char)*p))
                    p++; /* stored times have whole seconds */
            }
        }
        if (h > 23 || mi > 59 || sec > 59 || !parse_offset(p, &offset))
            return -1;
    } else if (*p != '\0') {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    int64_t t = (int64_t)timegm(&tm) - offset + (upper ? step : 0);
    store_time_format(t, out);
    return 0;
}

void store_time_format(int64_t unix_s, char out[STORE_TS_LEN]) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(out, STORE_TS_LEN, "%s",
                 unix_s < 0 ? "0000-01-01 00:00:00" : "9999-12-31 23:59:59");
        return;
    }
    /* Unsigned and bounded: the compiler can prove the text fits. */
    snprintf(out, STORE_TS_LEN, "%04u-%02u-%02u %02u:%02u:%02u",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u);
}

void store_time_iso(const char *stored, char *out, size_t outlen) {
    bool shaped = stored && strlen(stored) == 19 && (stored[10] == ' ' || stored[10] == 'T') &&
                  stored[4] == '-' && stored[7] == '-' && stored[13] == ':' && stored[16] == ':';
    if (shaped)
        snprintf(out, outlen, "%.10sT%.8sZ", stored, stored + 11);
    else
        snprintf(out, outlen, "%s", stored ? stored : "");
}

/* ===================================================================== */
/* Rows as JSON                                                          */
/* ===================================================================== */

/* Column list and order of every query that returns rows. */
#define ROW_COLS                                                                                   \
    "h.id, h.timestamp, h.original_idea, h.context, h.improved_prompt, h.role, h.directive, "      \
    "h.framework, h.guardrails, h.backend, h.confidence, h.reasoning, h.latency_ms, "              \
    "h.model_version, h.provider, h.client, h.parent_id, h.prompt_tokens, h.completion_tokens, "   \
    "h.quality_score"
enum row_col {
    COL_ID,
    COL_TS,
    COL_IDEA,
    COL_CONTEXT,
    COL_PROMPT,
    COL_ROLE,
    COL_DIRECTIVE,
    COL_FRAMEWORK,
    COL_GUARDRAILS,
    COL_BACKEND,
    COL_CONF,
    COL_REASONING,
    COL_LATENCY,
    COL_MODEL,
    COL_PROVIDER,
    COL_CLIENT,
    COL_PARENT,
    COL_PTOKENS,
    COL_CTOKENS,
    COL_QUALITY,
    COL_COUNT
};

/* Sets key to v (stolen); remembers a failure in *bad (v NULL is OOM). */
static void jset(json_t *o, const char *key, json_t *v, bool *bad) {
    if (json_object_set_new(o, key, v) != 0)
        *bad = true;
}

/* Text as a JSON string; invalid UTF-8 (a legacy row written by other
 * code) is repaired rather than failing the whole response. */
static json_t *text_json(const char *s, size_t len) {
    if (utf8_valid(s, len))
        return json_stringn_nocheck(s, len);
    char *fixed = utf8_sanitize(s, len, len * 3);
    json_t *v = fixed ? json_string_nocheck(fixed) : NULL;
    free(fixed);
    return v;
}

static json_t *col_text(sqlite3_stmt *st, int col, bool null_as_empty) {
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (!s)
        return null_as_empty ? json_string("") : json_null();
    return text_json(s, (size_t)sqlite3_column_bytes(st, col));
}

static json_t *col_int(sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(st, col));
}

static double round_to(double v, double scale) {
    return round(v * scale) / scale;
}

static json_t *col_real(sqlite3_stmt *st, int col, double scale) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_real(round_to(sqlite3_column_double(st, col), scale));
}

/* guardrails is a JSON array as text; text that is not one (a legacy row
 * written by hand) is shown as a one-item list rather than lost. */
static json_t *col_guardrails(sqlite3_stmt *st, int col) {
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (!s || !*s)
        return json_array();
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    if (json_is_array(v))
        return v;
    json_decref(v);
    json_t *arr = json_array();
    if (arr && json_array_append_new(arr, col_text(st, col, true)) != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *col_tokens(sqlite3_stmt *st) {
    if (sqlite3_column_type(st, COL_PTOKENS) == SQLITE_NULL ||
        sqlite3_column_type(st, COL_CTOKENS) == SQLITE_NULL)
        return json_null();
    return json_pack("{s:I,s:I}", "prompt", (json_int_t)sqlite3_column_int64(st, COL_PTOKENS),
                     "completion", (json_int_t)sqlite3_column_int64(st, COL_CTOKENS));
}

/* The protocol's row: the improve result's fields in its order, then
 * timestamp, original_idea, context and client. New reference or NULL. */
static json_t *row_json(sqlite3_stmt *st) {
    json_t *o = json_object();
    bool bad = o == NULL;
    char iso[40];
    if (bad)
        return NULL;
    store_time_iso((const char *)sqlite3_column_text(st, COL_TS), iso, sizeof iso);
    jset(o, "id", json_integer(sqlite3_column_int64(st, COL_ID)), &bad);
    jset(o, "improved_prompt", col_text(st, COL_PROMPT, true), &bad);
    jset(o, "role", col_text(st, COL_ROLE, true), &bad);
    jset(o, "directive", col_text(st, COL_DIRECTIVE, true), &bad);
    jset(o, "framework", col_text(st, COL_FRAMEWORK, true), &bad);
    jset(o, "guardrails", col_guardrails(st, COL_GUARDRAILS), &bad);
    jset(o, "reasoning", col_text(st, COL_REASONING, false), &bad);
    jset(o, "confidence", col_real(st, COL_CONF, 1e6), &bad);
    jset(o, "quality_score", col_real(st, COL_QUALITY, 1e4), &bad);
    jset(o, "backend", col_text(st, COL_BACKEND, true), &bad);
    jset(o, "provider", col_text(st, COL_PROVIDER, false), &bad);
    jset(o, "model", col_text(st, COL_MODEL, false), &bad);
    jset(o, "latency_ms", col_int(st, COL_LATENCY), &bad);
    jset(o, "tokens", col_tokens(st), &bad);
    jset(o, "parent_id", col_int(st, COL_PARENT), &bad);
    jset(o, "timestamp", text_json(iso, strlen(iso)), &bad);
    jset(o, "original_idea", col_text(st, COL_IDEA, true), &bad);
    jset(o, "context", col_text(st, COL_CONTEXT, true), &bad);
    jset(o, "client", col_text(st, COL_CLIENT, false), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ===================================================================== */
/* Errors                                                                */
/* ===================================================================== */

void store_sqlite_msg(sqlite3 *db, int rc, const char *what, char *msg, size_t msglen) {
    const char *why;
    switch (rc & 0xff) {
    case SQLITE_FULL:
        why = "the disk is full";
        break;
    case SQLITE_READONLY:
        why = "the database is read-only (check the permissions of the file and its directory)";
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        why = "the database is locked by another process";
        break;
    case SQLITE_CANTOPEN:
        why = "the database file cannot be opened (check that its directory exists and is "
              "writable)";
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
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (why)
        snprintf(msg, msglen, "%s: %s (%s)", what, why, detail);
    else
        snprintf(msg, msglen, "%s: %s", what, detail);
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

/* A failed step/prepare: storage errors for the environment, internal for
 * anything else (a bug in a query). */
static int q_fail(sqlite3 *db, int rc, const char *what, char *msg, size_t msglen) {
    store_sqlite_msg(db, rc, what, msg, msglen);
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

static int q_oom(char *msg, size_t msglen) {
    snprintf(msg, msglen, "out of memory");
    return RPC_INTERNAL;
}

/* Short read transactions: one per query, so the WAL can be checkpointed
 * between them, and the several statements of one answer agree. */
static int q_begin(sqlite3 *db, char *msg, size_t msglen) {
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : q_fail(db, rc, "cannot read the history", msg, msglen);
}

static void q_end(sqlite3 *db) {
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL); /* a read transaction: nothing to lose */
}

/* ===================================================================== */
/* history.get                                                           */
/* ===================================================================== */

int store_q_get(sqlite3 *db, int64_t id, json_t **out, char *msg, size_t msglen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT " ROW_COLS " FROM prompt_history h WHERE h.id = ?1", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return q_fail(db, rc, "cannot read the history", msg, msglen);
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW) {
        *out = row_json(st);
        code = *out ? 0 : q_oom(msg, msglen);
    } else if (rc == SQLITE_DONE) {
        snprintf(msg, msglen, "No history entry with id %lld.", (long long)id);
        code = RPC_NOT_FOUND;
    } else {
        code = q_fail(db, rc, "cannot read the history", msg, msglen);
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
                    char *msg, size_t msglen) {
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
    int code = rc == SQLITE_OK ? 0 : q_fail(db, rc, "cannot read the history", msg, msglen);
    sqlite3_finalize(st);
    return code;
}

/* Steps st and appends each row (plus the snippet column, when >= 0)
 * while the rows serialized stay within LIMIT_HISTORY_PAGE_BYTES; the
 * first row always goes in. *truncated: the page stopped at the budget,
 * not at the end of the rows. */
static int q_rows(sqlite3 *db, sqlite3_stmt *st, int snippet_col, json_t *items, bool *truncated,
                  char *msg, size_t msglen) {
    int rc;
    size_t used = 0;
    *truncated = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = row_json(st);
        if (row && snippet_col >= 0 &&
            json_object_set_new(row, "snippet", col_text(st, snippet_col, true)) != 0) {
            json_decref(row);
            row = NULL;
        }
        if (!row)
            return q_oom(msg, msglen);
        size_t bytes = json_dumpb(row, NULL, 0, ROW_DUMP_FLAGS) + 1; /* and its comma */
        if (json_array_size(items) > 0 && used + bytes > LIMIT_HISTORY_PAGE_BYTES) {
            json_decref(row);
            *truncated = true;
            return 0;
        }
        used += bytes;
        if (json_array_append_new(items, row) != 0)
            return q_oom(msg, msglen);
    }
    return rc == SQLITE_DONE ? 0 : q_fail(db, rc, "cannot read the history", msg, msglen);
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

static int list_total(sqlite3 *db, const struct history_filter *f, int64_t *total, char *msg,
                      size_t msglen) {
    char sql[512], where[256];
    /* Without filters the per-day totals answer at once; a count(*) would
     * walk an index of every row. */
    if (filter_is_empty(f))
        return q_scalar(db, "SELECT coalesce(sum(n), 0) FROM history_rollup", NULL, total, msg,
                        msglen);
    filter_where(f, false, where, sizeof where);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM prompt_history h%s", where);
    return q_scalar(db, sql, f, total, msg, msglen);
}

int store_q_list(sqlite3 *db, const struct history_filter *f, json_t **out, char *msg,
                 size_t msglen) {
    char where[256], sql[1024];
    sqlite3_stmt *st = NULL;
    int64_t total = 0;
    bool truncated = false;
    json_t *items = json_array();
    if (!items)
        return q_oom(msg, msglen);
    filter_where(f, true, where, sizeof where);
    snprintf(sql, sizeof sql,
             "SELECT " ROW_COLS " FROM prompt_history h%s "
             "ORDER BY h.timestamp DESC, h.id DESC LIMIT :limit OFFSET :offset",
             where);
    int code = q_begin(db, msg, msglen);
    if (code == 0) {
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK) {
            code = q_fail(db, rc, "cannot read the history", msg, msglen);
        } else {
            filter_bind(st, f);
            sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit);
            sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":offset"), f->offset);
            code = q_rows(db, st, -1, items, &truncated, msg, msglen);
        }
        sqlite3_finalize(st);
        if (code == 0)
            code = list_total(db, f, &total, msg, msglen);
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
        return q_oom(msg, msglen);
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

size_t store_fts_terms(const char *text) {
    const char *cursor = text, *w;
    size_t len, terms = 0;
    while ((w = next_word(&cursor, &len)))
        terms += !word_repeated(text, w, len);
    return terms;
}

char *store_fts_query(const char *text, bool *oom) {
    size_t len = strlen(text), cap = len * 2 + 3 * (len / 2 + 1) + 1, n = 0, wlen;
    char *q = malloc(cap);
    *oom = q == NULL;
    if (!q)
        return NULL;
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

int store_read_prepare_db(sqlite3 *db) {
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
 * malloc'd copy (quotes included) the caller frees; NULL at the end or
 * when out of memory (*oom set). */
static char *next_phrase(const char **cursor, bool *oom) {
    const char *p = *cursor;
    *oom = false;
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
    char *copy = strndup(start, (size_t)(p - start));
    *oom = copy == NULL;
    return copy;
}

/* The rowid of the SEARCH_RANK_WINDOW-th newest match of fts, or 0 when
 * there are fewer matches (then *matches is their exact number, when
 * asked for). Walks the doclists in rowid order: no ranking, no row
 * read. */
static int newest_matches(sqlite3 *db, const char *fts, int64_t *from, int64_t *matches, char *msg,
                          size_t msglen) {
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
        return q_fail(db, rc, "cannot search the history", msg, msglen);
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
            return q_fail(db, rc, "cannot search the history", msg, msglen);
    }
    return 0;
}

/* rank MATCH 'promptd_rank(idf, ...)' for the query's words. A word's
 * document frequency is exact below SEARCH_RANK_WINDOW matches, else
 * estimated from how densely its newest matches fill the newest ids:
 * SEARCH_RANK_WINDOW matches among the ids [from, max] of a table whose
 * rows spread evenly over [min, max]. */
static int search_rank_spec(sqlite3 *db, const char *fts, char *spec, size_t speclen, char *msg,
                            size_t msglen) {
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
        return q_fail(db, rc, "cannot search the history", msg, msglen);
    size_t used = (size_t)snprintf(spec, speclen, "promptd_rank(");
    const char *cursor = fts;
    char *phrase;
    bool oom = false;
    for (int i = 0; i < RANK_MAX_PHRASES && (phrase = next_phrase(&cursor, &oom)); i++) {
        int64_t from = 0, df = 0;
        int code = newest_matches(db, phrase, &from, &df, msg, msglen);
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
    if (oom || used + 2 > speclen)
        return q_oom(msg, msglen);
    snprintf(spec + used, speclen - used, ")");
    return 0;
}

int store_q_search(sqlite3 *db, const char *query, long limit, json_t **out, char *msg,
                   size_t msglen) {
    bool oom;
    char *fts = store_fts_query(query, &oom);
    json_t *items = json_array();
    sqlite3_stmt *st = NULL;
    char spec[RANK_MAX_PHRASES * 24 + 32];
    int code = 0;
    bool truncated = false;
    if (oom || !items) {
        free(fts);
        json_decref(items);
        return q_oom(msg, msglen);
    }
    /* FTS5 ranks the matches of the window with promptd_rank and keeps
     * the best `limit` (ORDER BY rank LIMIT inside the subquery); only
     * those are joined and get a snippet. */
    const char *sql =
        "SELECT " ROW_COLS ", m.snip FROM ("
        " SELECT rowid AS rid, rank AS r, snippet(prompt_history_fts, -1, '" SNIPPET_OPEN
        "', '" SNIPPET_CLOSE "', '...', " SNIPPET_TOKENS ") AS snip"
        " FROM prompt_history_fts WHERE prompt_history_fts MATCH ?1 AND rowid >= ?3"
        " AND rank MATCH ?4 ORDER BY rank LIMIT ?2"
        ") AS m JOIN prompt_history h ON h.id = m.rid ORDER BY m.r";
    int64_t from = 0;
    if (fts && (code = q_begin(db, msg, msglen)) == 0) {
        int rc = SQLITE_OK;
        code = newest_matches(db, fts, &from, NULL, msg, msglen);
        if (code == 0)
            code = search_rank_spec(db, fts, spec, sizeof spec, msg, msglen);
        if (code == 0 && (rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK) {
            code = q_fail(db, rc, "cannot search the history", msg, msglen);
        } else if (code == 0) {
            sqlite3_bind_text(st, 1, fts, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, limit);
            sqlite3_bind_int64(st, 3, from);
            sqlite3_bind_text(st, 4, spec, -1, SQLITE_STATIC);
            code = q_rows(db, st, COL_COUNT, items, &truncated, msg, msglen);
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
        return q_oom(msg, msglen);
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
    return n > 0 ? json_real(round_to(sum / (double)n, 1e4)) : json_null();
}

static json_t *avg_int(double sum, int64_t n) {
    return n > 0 ? json_integer((json_int_t)llround(sum / (double)n)) : json_null();
}

/* {name: {count, average_quality, average_latency_ms}} grouped by one of
 * the rollup's key columns. */
static int stats_group(sqlite3 *db, const struct stats_range *r, const char *column, json_t *into,
                       char *msg, size_t msglen) {
    char sql[1536];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql,
             STATS_SRC "SELECT %s, " STATS_SUMS " FROM src GROUP BY 1 ORDER BY 2 DESC", column);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return q_fail(db, rc, "cannot compute the statistics", msg, msglen);
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
            code = q_oom(msg, msglen);
    }
    if (code == 0 && rc != SQLITE_DONE)
        code = q_fail(db, rc, "cannot compute the statistics", msg, msglen);
    sqlite3_finalize(st);
    return code;
}

static int stats_totals(sqlite3 *db, const struct stats_range *r, struct stats_sums *s, char *msg,
                        size_t msglen) {
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
    return rc == SQLITE_OK ? 0 : q_fail(db, rc, "cannot compute the statistics", msg, msglen);
}

/* The k-th smallest latency (0-based) of the rows since `since` (NULL:
 * all), by an OFFSET walk of the (latency_ms, timestamp) index, which
 * holds the value and the filter, so no table row is read. Walks from
 * the nearer end: p95 of a million rows skips 50 000 entries, not
 * 950 000. Without a filter SQLite skips entries without decoding them
 * (a million in ~25 ms); with one it decodes each (~100 ns). */
static int stats_latency_walk(sqlite3 *db, const char *since, int64_t k, int64_t n, json_t **out,
                              char *msg, size_t msglen) {
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
        return q_fail(db, rc, "cannot compute the statistics", msg, msglen);
    return *out ? 0 : q_oom(msg, msglen);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The latencies since `since`, from a range of the (timestamp,
 * latency_ms) index, sorted: for a short window this reads only the
 * window's entries. *out is malloc'd (caller frees), *n its length. */
static int stats_latency_collect(sqlite3 *db, const char *since, int64_t cap, int64_t **out,
                                 int64_t *n, char *msg, size_t msglen) {
    sqlite3_stmt *st = NULL;
    /* "+": keep the planner off the latency index for this term. */
    const char *sql = "SELECT latency_ms FROM prompt_history "
                      "WHERE timestamp >= ?1 AND +latency_ms IS NOT NULL";
    int64_t *v = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *v);
    int rc = v ? sqlite3_prepare_v2(db, sql, -1, &st, NULL) : SQLITE_NOMEM;
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
        return rc == SQLITE_NOMEM ? q_oom(msg, msglen)
                                  : q_fail(db, rc, "cannot compute the statistics", msg, msglen);
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
                             json_t **p95, char *msg, size_t msglen) {
    int64_t k50 = rank_of(0.50, n), k95 = rank_of(0.95, n);
    if (n == 0)
        return 0;
    if (since && n * 6 < n_all) {
        int64_t *v = NULL, got = 0;
        int code = stats_latency_collect(db, since, n, &v, &got, msg, msglen);
        if (code == 0 && got > 0) {
            *p50 = json_integer(v[rank_of(0.50, got)]);
            *p95 = json_integer(v[rank_of(0.95, got)]);
        }
        free(v);
        return code;
    }
    int code = stats_latency_walk(db, since, k50, n, p50, msg, msglen);
    if (code == 0)
        code = stats_latency_walk(db, since, k95, n, p95, msg, msglen);
    return code;
}

static int stats_fill(sqlite3 *db, const struct stats_range *r, const char *since, int64_t now_s,
                      json_t *o, char *msg, size_t msglen) {
    struct stats_sums s;
    json_t *p50 = NULL, *p95 = NULL;
    int64_t last24 = 0;
    struct history_filter day = {.limit = 0};
    bool bad = false;
    store_time_format(now_s - 86400, day.since);
    int64_t n_lat_all = 0;
    int code = stats_totals(db, r, &s, msg, msglen);
    if (code == 0)
        n_lat_all = s.n_lat;
    if (code == 0 && since)
        code = q_scalar(db, "SELECT coalesce(sum(n_lat), 0) FROM history_rollup", NULL, &n_lat_all,
                        msg, msglen);
    if (code == 0)
        code = stats_percentiles(db, since, s.n_lat, n_lat_all, &p50, &p95, msg, msglen);
    if (code == 0)
        code = q_scalar(db, "SELECT count(*) FROM prompt_history h WHERE h.timestamp >= :since",
                        &day, &last24, msg, msglen);
    if (code != 0) {
        json_decref(p50);
        json_decref(p95);
        return code;
    }
    jset(o, "total_count", json_integer(s.n), &bad);
    jset(o, "average_confidence", avg_real(s.sum_conf, s.n_conf), &bad);
    jset(o, "average_latency_ms", avg_int(s.sum_lat, s.n_lat), &bad);
    jset(o, "average_quality", avg_real(s.sum_quality, s.n), &bad);
    jset(o, "p50_latency_ms", p50 ? p50 : json_null(), &bad);
    jset(o, "p95_latency_ms", p95 ? p95 : json_null(), &bad);
    jset(o, "last_24h", json_integer(last24), &bad);
    return bad ? q_oom(msg, msglen) : 0;
}

int store_q_stats(sqlite3 *db, const char *since, int64_t now_s, json_t **out, char *msg,
                  size_t msglen) {
    static const char *const group_cols[3] = {"backend", "provider", "model"};
    static const char *const group_keys[3] = {"by_backend", "by_provider", "by_model"};
    struct stats_range r;
    json_t *o = json_object();
    char iso[40];
    bool bad = o == NULL;
    if (since && !since[0])
        since = NULL;
    int code = bad ? q_oom(msg, msglen) : q_begin(db, msg, msglen);
    stats_range_init(since, &r);
    if (code == 0) {
        code = stats_fill(db, &r, since, now_s, o, msg, msglen);
        for (int i = 0; i < 3 && code == 0; i++) {
            json_t *g = json_object();
            code = g ? stats_group(db, &r, group_cols[i], g, msg, msglen) : q_oom(msg, msglen);
            if (json_object_set_new(o, group_keys[i], g) != 0 && code == 0)
                code = q_oom(msg, msglen);
        }
        q_end(db);
    }
    if (code == 0) {
        store_time_iso(since, iso, sizeof iso);
        jset(o, "since", since && since[0] ? json_string(iso) : json_null(), &bad);
        if (bad)
            code = q_oom(msg, msglen);
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

int store_q_check(sqlite3 *db, json_t **out, char *msg, size_t msglen) {
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
        return q_fail(db, rc, "the check could not run", msg, msglen); /* interrupted, busy */
    if (rc != SQLITE_DONE) {
        /* A file too damaged to be checked is a failed check, not an
         * error of the method. */
        store_sqlite_msg(db, rc, "the check could not run", detail, sizeof detail);
        *out = json_pack("{s:b,s:s}", "ok", 0, "detail", detail);
        return *out ? 0 : q_oom(msg, msglen);
    }
    bool ok = lines == 1 && strcmp(detail, "ok") == 0;
    *out = json_pack("{s:b,s:s}", "ok", ok, "detail", detail);
    return *out ? 0 : q_oom(msg, msglen);
}

/* ===================================================================== */
/* Reader pool                                                           */
/* ===================================================================== */

struct store_readers {
    char *path; /* owned */
    uv_mutex_t mu;
    sqlite3 *idle[READERS_IDLE_MAX]; /* owned; guarded by mu */
    int n_idle;
    sqlite3 *busy[READERS_BUSY_MAX]; /* borrowed by running jobs; guarded by mu */
    bool closing;                    /* interrupt what starts from now on too */
    /* Held shared by every running query and exclusively by the writer
     * while it replaces the file: a connection must never outlive the
     * file it was opened on. */
    uv_rwlock_t file_lock;
};

struct store_readers *store_readers_new(const char *path) {
    struct store_readers *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = strdup(path);
    if (!r->path || uv_mutex_init(&r->mu) != 0) {
        free(r->path);
        free(r);
        return NULL;
    }
    if (uv_rwlock_init(&r->file_lock) != 0) {
        uv_mutex_destroy(&r->mu);
        free(r->path);
        free(r);
        return NULL;
    }
    return r;
}

static void readers_close_idle(struct store_readers *r) {
    uv_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_idle; i++)
        sqlite3_close(r->idle[i]);
    r->n_idle = 0;
    uv_mutex_unlock(&r->mu);
}

void store_readers_free(struct store_readers *r) {
    if (!r)
        return;
    readers_close_idle(r);
    uv_rwlock_destroy(&r->file_lock);
    uv_mutex_destroy(&r->mu);
    free(r->path);
    free(r);
}

static sqlite3 *readers_open(const char *path, char *msg, size_t msglen) {
    sqlite3 *db = NULL;
    int rc = store_sqlite_open(path, SQLITE_OPEN_READONLY, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, READERS_BUSY_MS);
    if (rc == SQLITE_OK) {
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas, "PRAGMA cache_size = -%d; PRAGMA temp_store = MEMORY",
                 READERS_CACHE_KIB);
        rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = store_read_prepare_db(db);
    if (rc != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot open the history for reading", msg, msglen);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Tracks db as running (track) or done; interrupts it when closing. */
static void readers_track(struct store_readers *r, sqlite3 *db, bool track) {
    uv_mutex_lock(&r->mu);
    for (int i = 0; i < READERS_BUSY_MAX; i++) {
        if (track && !r->busy[i]) {
            r->busy[i] = db;
            break;
        }
        if (!track && r->busy[i] == db) {
            r->busy[i] = NULL;
            break;
        }
    }
    if (track && r->closing)
        sqlite3_interrupt(db);
    uv_mutex_unlock(&r->mu);
}

sqlite3 *store_readers_acquire(struct store_readers *r, char *msg, size_t msglen) {
    sqlite3 *db = NULL;
    uv_rwlock_rdlock(&r->file_lock);
    uv_mutex_lock(&r->mu);
    if (r->n_idle > 0)
        db = r->idle[--r->n_idle];
    uv_mutex_unlock(&r->mu);
    if (!db)
        db = readers_open(r->path, msg, msglen);
    if (!db)
        uv_rwlock_rdunlock(&r->file_lock);
    else
        readers_track(r, db, true);
    return db;
}

void store_readers_interrupt_all(struct store_readers *r) {
    uv_mutex_lock(&r->mu);
    r->closing = true;
    for (int i = 0; i < READERS_BUSY_MAX; i++)
        if (r->busy[i])
            sqlite3_interrupt(r->busy[i]); /* safe from any thread */
    uv_mutex_unlock(&r->mu);
}

void store_readers_release(struct store_readers *r, sqlite3 *db, bool broken) {
    if (!db)
        return;
    readers_track(r, db, false);
    /* Pooled connections keep their schema, not their page cache: the OS
     * caches the file anyway, and idle memory stays small. */
    sqlite3_db_release_memory(db);
    uv_mutex_lock(&r->mu);
    if (!broken && r->n_idle < READERS_IDLE_MAX) {
        r->idle[r->n_idle++] = db;
        db = NULL;
    }
    uv_mutex_unlock(&r->mu);
    if (db)
        sqlite3_close(db);
    uv_rwlock_rdunlock(&r->file_lock);
}

void store_readers_lock_all(struct store_readers *r) {
    uv_rwlock_wrlock(&r->file_lock);
    readers_close_idle(r);
}

void store_readers_unlock_all(struct store_readers *r) {
    uv_rwlock_wrunlock(&r->file_lock);
}

/* ===================================================================== */
/* Jobs                                                                  */
/* ===================================================================== */

struct store_job {
    uv_work_t work; /* first: the request is the job */
    struct store *s;
    store_job_fn fn;
    void *ctx; /* owned; freed with ctx_free */
    void (*ctx_free)(void *);
    bool needs_db;
    struct store_cancel *cancel; /* borrowed, may be NULL; outlives the job (see store_read.h) */
    store_cb cb;
    void *arg;
    json_t *result; /* owned until handed to cb */
    int code;
    char msg[512];
};

static void job_finish(struct store_job *job) {
    job->cb(job->arg, job->code == 0 ? job->result : NULL, job->code, job->msg);
    if (job->code != 0)
        json_decref(job->result);
    if (job->ctx_free)
        job->ctx_free(job->ctx);
    struct store *s = job->s;
    free(job);
    store_unref(s);
}

static bool job_cancelled(const struct store_job *job) {
    return store_cancel_asked(job->cancel);
}

/* SQLite's progress handler: non-zero ends the running statement with
 * SQLITE_INTERRUPT. It is this connection's own, so unlike
 * sqlite3_interrupt it can never reach the next job's statement. */
static int job_progress(void *arg) {
    return job_cancelled(arg);
}

/* After a job: the connection goes back without the job's handler and
 * outside any transaction an interrupted query left open (a pooled
 * connection in a read transaction would pin the WAL). False when it
 * cannot be made clean. */
static bool job_reset_db(sqlite3 *db) {
    sqlite3_progress_handler(db, 0, NULL, NULL);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* a read: nothing to lose */
    return sqlite3_get_autocommit(db) != 0;
}

static void job_work(uv_work_t *req) {
    struct store_job *job = (struct store_job *)req;
    struct store_readers *r = store_readers_of(job->s);
    sqlite3 *db = NULL;
    if (job_cancelled(job)) { /* cancelled while it waited for a thread */
        job->code = RPC_CANCELLED;
        snprintf(job->msg, sizeof job->msg, "The request was cancelled.");
        return;
    }
    if (job->needs_db && !(db = store_readers_acquire(r, job->msg, sizeof job->msg))) {
        job->code = STORE_RPC_STORAGE;
        return;
    }
    if (db && job->cancel)
        sqlite3_progress_handler(db, READERS_PROGRESS_OPS, job_progress, job);
    job->code = job->fn(db, job->ctx, &job->result, job->msg, sizeof job->msg);
    if (job->code != 0 && job_cancelled(job)) {
        job->code = RPC_CANCELLED; /* the interrupt, not a storage failure */
        snprintf(job->msg, sizeof job->msg, "The request was cancelled.");
    }
    if (db) {
        bool clean = job_reset_db(db);
        store_readers_release(r, db, !clean || job->code == STORE_RPC_STORAGE);
    }
}

static void job_after(uv_work_t *req, int status) {
    struct store_job *job = (struct store_job *)req;
    if (status != 0 && job->code == 0) {
        job->code = RPC_CANCELLED;
        snprintf(job->msg, sizeof job->msg, "The request was cancelled.");
    }
    job_finish(job);
}

static void job_start(struct store *s, void *arg, bool ok) {
    struct store_job *job = arg;
    int rc;
    if (!ok) {
        job->code = RPC_CANCELLED;
        snprintf(job->msg, sizeof job->msg, "The daemon is stopping.");
        job_finish(job);
    } else if ((rc = uv_queue_work(store_loop(s), &job->work, job_work, job_after)) != 0) {
        job->code = RPC_INTERNAL;
        snprintf(job->msg, sizeof job->msg, "cannot queue the query: %s", uv_strerror(rc));
        job_finish(job);
    }
}

static void job_submit(struct store *s, store_job_fn fn, void *ctx, void (*ctx_free)(void *),
                       bool needs_db, struct store_cancel *cancel, store_cb cb, void *arg) {
    if (!store_ref(s)) {
        if (ctx_free)
            ctx_free(ctx);
        cb(arg, NULL, RPC_CANCELLED, "The daemon is stopping.");
        return;
    }
    struct store_job *job = calloc(1, sizeof *job);
    if (!job) {
        if (ctx_free)
            ctx_free(ctx);
        store_unref(s);
        cb(arg, NULL, RPC_INTERNAL, "out of memory");
        return;
    }
    job->s = s;
    job->fn = fn;
    job->ctx = ctx;
    job->ctx_free = ctx_free;
    job->needs_db = needs_db;
    job->cancel = cancel;
    job->cb = cb;
    job->arg = arg;
    store_when_written(s, job_start, job);
}

void store_job_submit(struct store *s, store_job_fn fn, void *ctx, void (*ctx_free)(void *),
                      bool needs_db, store_cb cb, void *arg) {
    job_submit(s, fn, ctx, ctx_free, needs_db, NULL, cb, arg);
}

void store_job_submit_cancel(struct store *s, store_job_fn fn, void *ctx, void (*ctx_free)(void *),
                             struct store_cancel *cancel, store_cb cb, void *arg) {
    job_submit(s, fn, ctx, ctx_free, true, cancel, cb, arg);
}

/* ---- The read methods as jobs ----------------------------------------- */

struct list_ctx {
    struct history_filter f;
    char *backend, *provider; /* owned copies behind f's pointers */
};

static void list_ctx_free(void *p) {
    struct list_ctx *c = p;
    free(c->backend);
    free(c->provider);
    free(c);
}

static int list_job(sqlite3 *db, void *ctx, json_t **result, char *msg, size_t msglen) {
    return store_q_list(db, &((struct list_ctx *)ctx)->f, result, msg, msglen);
}

void store_read_list(struct store *s, const struct history_filter *f, struct store_cancel *cancel,
                     store_cb cb, void *arg) {
    struct list_ctx *c = calloc(1, sizeof *c);
    if (c) {
        c->f = *f;
        c->backend = f->backend ? strdup(f->backend) : NULL;
        c->provider = f->provider ? strdup(f->provider) : NULL;
        c->f.backend = c->backend;
        c->f.provider = c->provider;
    }
    if (!c || (f->backend && !c->backend) || (f->provider && !c->provider)) {
        if (c)
            list_ctx_free(c);
        cb(arg, NULL, RPC_INTERNAL, "out of memory");
        return;
    }
    store_job_submit_cancel(s, list_job, c, list_ctx_free, cancel, cb, arg);
}

struct search_ctx {
    long limit;
    char query[]; /* NUL-terminated */
};

static int search_job(sqlite3 *db, void *ctx, json_t **result, char *msg, size_t msglen) {
    struct search_ctx *c = ctx;
    return store_q_search(db, c->query, c->limit, result, msg, msglen);
}

void store_read_search(struct store *s, const char *query, long limit, struct store_cancel *cancel,
                       store_cb cb, void *arg) {
    size_t len = strlen(query);
    struct search_ctx *c = malloc(sizeof *c + len + 1);
    if (!c) {
        cb(arg, NULL, RPC_INTERNAL, "out of memory");
        return;
    }
    c->limit = limit;
    memcpy(c->query, query, len + 1);
    store_job_submit_cancel(s, search_job, c, free, cancel, cb, arg);
}

struct stats_ctx {
    bool has_since;
    char since[STORE_TS_LEN];
    int64_t now_s;
};

static int stats_job(sqlite3 *db, void *ctx, json_t **result, char *msg, size_t msglen) {
    struct stats_ctx *c = ctx;
    return store_q_stats(db, c->has_since ? c->since : NULL, c->now_s, result, msg, msglen);
}

void store_read_stats(struct store *s, const char *since, struct store_cancel *cancel, store_cb cb,
                      void *arg) {
    struct stats_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        cb(arg, NULL, RPC_INTERNAL, "out of memory");
        return;
    }
    c->has_since = since && since[0];
    if (c->has_since)
        snprintf(c->since, sizeof c->since, "%s", since);
    c->now_s = (int64_t)time(NULL);
    store_job_submit_cancel(s, stats_job, c, free, cancel, cb, arg);
}

struct get_ctx {
    int64_t id;
};

static int get_job(sqlite3 *db, void *ctx, json_t **result, char *msg, size_t msglen) {
    return store_q_get(db, ((struct get_ctx *)ctx)->id, result, msg, msglen);
}

void store_get_async(struct store *s, int64_t id, store_cb cb, void *arg) {
    struct get_ctx *c = malloc(sizeof *c);
    if (!c) {
        cb(arg, NULL, RPC_INTERNAL, "out of memory");
        return;
    }
    c->id = id;
    store_job_submit(s, get_job, c, free, true, cb, arg);
}
