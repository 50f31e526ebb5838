/* The history's queries: pure, synchronous functions over a `sqlite3 *`
 * (store_query.c), each in one short read transaction (long ones would
 * keep the WAL from being checkpointed). They know nothing of threads:
 * the job runner (store_jobs.h) runs them on the thread pool with a
 * reader connection, and unit tests call them directly on any
 * connection (after store_q_prepare_db).
 *
 * Each returns 0 with *out a new reference, or a protocol error code
 * (RPC_NOT_FOUND, STORE_RPC_STORAGE, RPC_INTERNAL, ...) with a sentence
 * in err. */
#ifndef PROMPTD_STORE_QUERY_H
#define PROMPTD_STORE_QUERY_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Registers promptd_rank, the FTS5 rank function store_q_search uses, on
 * db: once per connection, before its first store_q_search. Returns an
 * SQLite code. */
int store_q_prepare_db(sqlite3 *db);

/* history.get: one row, RPC_NOT_FOUND when there is no such id. */
int store_q_get(sqlite3 *db, int64_t id, json_t **out, char *err, size_t errlen);
/* history.list: {"items": [...], "total": N}, newest first. Pages (here
 * and in store_q_search) stop early when the rows serialized would pass
 * LIMIT_HISTORY_PAGE_BYTES (always with at least one row); the result
 * then has "truncated": true and the caller pages on from the items it
 * got. */
int store_q_list(sqlite3 *db, const struct history_filter *f, json_t **out, char *err,
                 size_t errlen);
/* history.search: {"items": [row + "snippet", ...]}, best match first
 * (BM25, see store_q_prepare_db). Any text is a valid query: each white-
 * space separated word is searched for as an FTS5 string, so quotes,
 * hyphens and operators are plain words, and a repeated word once. Its
 * size is bounded by the caller (the method checks
 * LIMIT_SEARCH_QUERY_BYTES and, with store_search_terms,
 * LIMIT_SEARCH_QUERY_TERMS). */
int store_q_search(sqlite3 *db, const char *query, long limit, json_t **out, char *err,
                   size_t errlen);
/* stats since `since` (stored form, or NULL for all); now_s is the current
 * Unix time for last_24h. */
int store_q_stats(sqlite3 *db, const char *since, int64_t now_s, json_t **out, char *err,
                  size_t errlen);
/* db.check: PRAGMA quick_check -> {"ok", "detail"}. */
int store_q_check(sqlite3 *db, json_t **out, char *err, size_t errlen);

/* The FTS5 query for a user's text: every word quoted as an FTS5 string
 * (inner quotes doubled), joined by spaces (AND); a word that came
 * before (ASCII case aside) is left out. Returns a malloc'd string the
 * caller frees, or NULL when the text has no word. */
char *store_fts_query(const char *text);

#endif
