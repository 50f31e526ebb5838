/* History rows as JSON (store_row.h). */
#include "store_row.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store_time.h"
#include "utf8.h"

/* The columns of STORE_ROW_COLS, by index. */
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
_Static_assert(COL_COUNT == STORE_ROW_NCOLS, "STORE_ROW_NCOLS counts STORE_ROW_COLS");

void store_json_set(json_t *o, const char *key, json_t *v, bool *bad) {
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

json_t *store_row_text(sqlite3_stmt *st, int col, bool null_as_empty) {
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
    if (arr && json_array_append_new(arr, store_row_text(st, col, true)) != 0) {
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

json_t *store_row_json(sqlite3_stmt *st) {
    json_t *o = json_object();
    bool bad = o == NULL;
    char iso[40];
    if (bad)
        return NULL;
    store_time_iso((const char *)sqlite3_column_text(st, COL_TS), iso, sizeof iso);
    store_json_set(o, "id", json_integer(sqlite3_column_int64(st, COL_ID)), &bad);
    store_json_set(o, "improved_prompt", store_row_text(st, COL_PROMPT, true), &bad);
    store_json_set(o, "role", store_row_text(st, COL_ROLE, true), &bad);
    store_json_set(o, "directive", store_row_text(st, COL_DIRECTIVE, true), &bad);
    store_json_set(o, "framework", store_row_text(st, COL_FRAMEWORK, true), &bad);
    store_json_set(o, "guardrails", col_guardrails(st, COL_GUARDRAILS), &bad);
    store_json_set(o, "reasoning", store_row_text(st, COL_REASONING, false), &bad);
    store_json_set(o, "confidence", col_real(st, COL_CONF, 1e6), &bad);
    store_json_set(o, "quality_score", col_real(st, COL_QUALITY, 1e4), &bad);
    store_json_set(o, "backend", store_row_text(st, COL_BACKEND, true), &bad);
    store_json_set(o, "provider", store_row_text(st, COL_PROVIDER, false), &bad);
    store_json_set(o, "model", store_row_text(st, COL_MODEL, false), &bad);
    store_json_set(o, "latency_ms", col_int(st, COL_LATENCY), &bad);
    store_json_set(o, "tokens", col_tokens(st), &bad);
    store_json_set(o, "parent_id", col_int(st, COL_PARENT), &bad);
    store_json_set(o, "timestamp", text_json(iso, strlen(iso)), &bad);
    store_json_set(o, "original_idea", store_row_text(st, COL_IDEA, true), &bad);
    store_json_set(o, "context", store_row_text(st, COL_CONTEXT, true), &bad);
    store_json_set(o, "client", store_row_text(st, COL_CLIENT, false), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
