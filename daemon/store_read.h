/* History reads: the queries behind history.list/get/search and stats,
 * run on the libuv thread pool on read-only connections, each in one short
 * read transaction (long ones would keep the WAL from being checkpointed).
 *
 * Three layers: the synchronous queries (store_q_*, on any connection:
 * unit tests call them directly), the reader connection pool, and the job
 * runner that puts a query on the thread pool after the writes it must see
 * (store.h explains read-your-writes) and calls back on the loop. */
#ifndef PROMPTD_STORE_READ_H
#define PROMPTD_STORE_READ_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"

/* Stored timestamps: "YYYY-MM-DD HH:MM:SS" (UTC) and its NUL. */
#define STORE_TS_LEN 20

/* history.list filters. Strings are borrowed; empty since/until = none. */
struct history_filter {
    long limit;               /* 1..LIMIT_HISTORY_PAGE_MAX */
    long offset;              /* >= 0 */
    const char *backend;      /* NULL: any */
    const char *provider;     /* NULL: any */
    char since[STORE_TS_LEN]; /* inclusive */
    char until[STORE_TS_LEN]; /* exclusive (store_time_parse makes it so) */
    bool has_min_quality;
    double min_quality;
};

/* ---- Time ------------------------------------------------------------ */

/* Parses an ISO-8601 date ("2026-11-23") or date-time ("2026-11-23T19:20",
 * ":58", ".123", "Z" or "+01:00", a space instead of "T") into the stored
 * form, converted to UTC. upper: the value is an exclusive upper bound
 * that must include what was named (a date means the whole day, a time its
 * whole second). Returns 0, or -1 for anything else. */
int store_time_parse(const char *text, bool upper, char out[STORE_TS_LEN]);

/* The stored form -> "2026-11-23T19:20:58Z". Text that is not in the
 * stored form is copied as it is (truncated to outlen). */
void store_time_iso(const char *stored, char *out, size_t outlen);

/* Unix seconds -> the stored form. */
void store_time_format(int64_t unix_s, char out[STORE_TS_LEN]);

/* ---- Queries (synchronous; any connection) ---------------------------- */

/* Each returns 0 with *out a new reference, a protocol error code (e.g.
 * RPC_NOT_FOUND, STORE_RPC_STORAGE) with a sentence in msg. */
int store_q_get(sqlite3 *db, int64_t id, json_t **out, char *msg, size_t msglen);
/* {"items": [...], "total": N}, newest first. Pages (here and in
 * store_q_search) stop early when the rows serialized would pass
 * LIMIT_HISTORY_PAGE_BYTES (always with at least one row); the result
 * then has "truncated": true and the caller pages on from the items it
 * got. */
int store_q_list(sqlite3 *db, const struct history_filter *f, json_t **out, char *msg,
                 size_t msglen);
/* {"items": [row + "snippet", ...]}, best match first (bm25). Any text is
 * a valid query: each white-space separated word is searched for as an
 * FTS5 string, so quotes, hyphens and operators are plain words, and a
 * repeated word once. Its size is bounded by the caller (the method
 * checks LIMIT_SEARCH_QUERY_BYTES and, with store_fts_terms,
 * LIMIT_SEARCH_QUERY_TERMS). */
int store_q_search(sqlite3 *db, const char *query, long limit, json_t **out, char *msg,
                   size_t msglen);
/* stats since `since` (stored form, or NULL for all); now_s is the current
 * Unix time for last_24h. */
int store_q_stats(sqlite3 *db, const char *since, int64_t now_s, json_t **out, char *msg,
                  size_t msglen);
/* Registers promptd_rank, the FTS5 rank function store_q_search uses, on
 * db. Reader connections get it when they open; call it on any other
 * connection that runs store_q_search. Returns an SQLite code. */
int store_read_prepare_db(sqlite3 *db);
/* PRAGMA quick_check -> {"ok", "detail"}. */
int store_q_check(sqlite3 *db, json_t **out, char *msg, size_t msglen);

/* The FTS5 query for a user's text: every word quoted as an FTS5 string
 * (inner quotes doubled), joined by spaces (AND); a word that came
 * before (ASCII case aside) is left out. Returns a malloc'd string the
 * caller frees, or NULL when the text has no word (or on OOM, *oom
 * set). */
char *store_fts_query(const char *text, bool *oom);
/* The number of words store_fts_query searches for in text. */
size_t store_fts_terms(const char *text);

/* The message for a failed sqlite call on db, naming the likely cause
 * ("the disk is full", "the database is locked by another process", ...). */
void store_sqlite_msg(sqlite3 *db, int rc, const char *what, char *msg, size_t msglen);

/* sqlite3_open_v2 for every connection promptd makes, hardened before
 * any statement runs: SQLite's defensive mode (no writable_schema, no
 * writes to shadow tables, no journal_mode=OFF) and no extension loading.
 * store_sqlite_open also distrusts the file's schema (PRAGMA
 * trusted_schema=OFF: its triggers, views and generated columns cannot
 * call functions or virtual tables with side effects): readers, backups,
 * the inspection of a file to restore. store_sqlite_open_own trusts it,
 * because promptd's own triggers feed the FTS5 index and SQLite refuses
 * FTS5 in a distrusted trigger: only for files whose schema promptd built
 * itself, the live database (a restore brings rows, never a schema) and
 * the fresh database a restore builds. *db must be closed even on failure,
 * as with sqlite3_open_v2. Returns an SQLite code. */
int store_sqlite_open(const char *path, int flags, sqlite3 **db);
int store_sqlite_open_own(const char *path, int flags, sqlite3 **db);

/* ---- Reader connection pool (thread-safe) ----------------------------- */

struct store_readers;

/* path is copied. Connections open lazily. NULL on OOM. */
struct store_readers *store_readers_new(const char *path);
void store_readers_free(struct store_readers *r);
/* A read-only connection for one job; holds the pool's shared lock until
 * release, so the file is never replaced under a running query. NULL with
 * msg when the database cannot be opened. */
sqlite3 *store_readers_acquire(struct store_readers *r, char *msg, size_t msglen);
/* broken: close it instead of pooling it (it saw an I/O error). */
void store_readers_release(struct store_readers *r, sqlite3 *db, bool broken);
/* Interrupts every running query (SQLITE_INTERRUPT) and every later one:
 * at shutdown nothing waits for a long quick_check or search. */
void store_readers_interrupt_all(struct store_readers *r);
/* Waits for running queries, closes every pooled connection and keeps new
 * ones from opening until unlock: the writer moves the file meanwhile. */
void store_readers_lock_all(struct store_readers *r);
void store_readers_unlock_all(struct store_readers *r);

/* ---- Jobs on the thread pool ------------------------------------------ */

/* Read jobs take the cancel token of store.h: once store_cancel_request
 * marked it, the job's connection sees it within a few microseconds of
 * SQLite work, the running statement ends with SQLITE_INTERRUPT, and the
 * job answers RPC_CANCELLED and frees its thread and connection. A job
 * not yet on a thread does not start. One long call inside a statement
 * (FTS5's snippet() of a single huge row) is not interrupted before it
 * returns. */

/* Runs on a pool thread with a reader connection (NULL when the job asked
 * for none). Returns 0 with *result set, or a protocol code with msg. */
typedef int (*store_job_fn)(sqlite3 *db, void *ctx, json_t **result, char *msg, size_t msglen);

/* Runs fn after every write handed out before this call, then calls cb on
 * the loop. ctx is owned by the job and released with ctx_free (may be
 * NULL) after cb. needs_db: acquire a reader connection for fn. */
void store_job_submit(struct store *s, store_job_fn fn, void *ctx, void (*ctx_free)(void *),
                      bool needs_db, store_cb cb, void *arg);
/* The same with a reader connection, stopped early when cancel (may be
 * NULL) is requested. */
void store_job_submit_cancel(struct store *s, store_job_fn fn, void *ctx, void (*ctx_free)(void *),
                             struct store_cancel *cancel, store_cb cb, void *arg);

/* The read methods, as jobs. Filters and text are copied; cancel may be
 * NULL. */
void store_read_list(struct store *s, const struct history_filter *f, struct store_cancel *cancel,
                     store_cb cb, void *arg);
void store_read_search(struct store *s, const char *query, long limit, struct store_cancel *cancel,
                       store_cb cb, void *arg);
void store_read_stats(struct store *s, const char *since, struct store_cancel *cancel, store_cb cb,
                      void *arg);

/* ---- Provided by store.c for the job runner ---------------------------- */

uv_loop_t *store_loop(struct store *s);
struct store_readers *store_readers_of(struct store *s);
/* False once the store is closing (then the job must not start). Else
 * keeps the store alive until store_unref. */
bool store_ref(struct store *s);
void store_unref(struct store *s);
/* Calls fn(s, arg, true) on the loop once the writer has processed every
 * id handed out so far (at once when it already has), or fn(s, arg,
 * false) when the store closes first. */
void store_when_written(struct store *s, void (*fn)(struct store *s, void *arg, bool ok),
                        void *arg);

#endif
