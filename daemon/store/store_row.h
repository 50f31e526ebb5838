/* A history row as the protocol shows it, read from the columns of a
 * query that selects STORE_ROW_COLS first (store_row.c). Shared by every
 * query that returns rows (store_query.c). */
#ifndef PROMPTD_STORE_ROW_H
#define PROMPTD_STORE_ROW_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>

/* The columns, in order, of every query that returns rows (the table is
 * aliased h). A query's own columns come after them, from index
 * STORE_ROW_NCOLS. */
#define STORE_ROW_COLS                                                                             \
    "h.id, h.timestamp, h.original_idea, h.context, h.improved_prompt, h.role, h.directive, "      \
    "h.framework, h.guardrails, h.backend, h.confidence, h.reasoning, h.latency_ms, "              \
    "h.model_version, h.provider, h.client, h.parent_id, h.prompt_tokens, h.completion_tokens, "   \
    "h.quality_score"
#define STORE_ROW_NCOLS 20

/* The protocol's row: the improve result's fields in its order, then
 * timestamp, original_idea, context and client. New reference, or NULL
 * when a value cannot be made. */
json_t *store_row_json(sqlite3_stmt *st);

/* Column col as a JSON string (invalid UTF-8 repaired), SQL NULL as ""
 * (null_as_empty) or null. New reference. */
json_t *store_row_text(sqlite3_stmt *st, int col, bool null_as_empty);

/* Sets key to v (stolen); remembers a failure in *bad (v NULL included). */
void store_json_set(json_t *o, const char *key, json_t *v, bool *bad);

#endif
