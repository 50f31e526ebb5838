/* History store: the one face of the store, the only store header the
 * methods (methods_*.c) and main.c include. Behind it today is one
 * backend, SQLite (docs/schema.md), in the files of daemon/store/; the
 * face names no SQLite type, so a second backend (PostgreSQL) can sit
 * behind it without a change to the methods (docs/architecture.md,
 * "Store", says how). Where each function is defined:
 *
 *   store_open, store_close, store_record, store_delete_*, store_cleanup,
 *   store_health, store_get_counters, store_path    store_writer.c
 *   store_get_async, store_list, store_search, store_stats,
 *   store_check                                     store_jobs.c
 *   store_search_terms                              store_query.c
 *   store_start_maintenance                         store_maintenance.c
 *   store_backup, store_restore                     store_backup.c
 *   store_cancel_*                                  store_cancel.c
 *   store_time_* (store_time.h)                     store_time.c
 *
 * Threads. The event loop never touches the disk. Rows and write
 * operations go to one writer thread (its own connection, a bounded queue,
 * one transaction per batch). Reads run on the libuv thread pool on
 * read-only connections (store_readers.h, store_jobs.h). Results come back to the loop
 * through callbacks, each called exactly once, on the loop thread.
 *
 * Ids. store_record hands out the id a row WILL have (allocated on the
 * loop, after the largest id the database has ever used), so `improve` can
 * answer before the row is on disk. Reads are ordered after writes: a read
 * issued after store_record returned waits (parked on the loop, no thread
 * held) until the writer has processed that id. This is read-your-writes.
 *
 * Failures. A write that fails (disk full, read-only file, locked, I/O
 * error) drops its batch and counts it. Five consecutive failed batches
 * open a circuit breaker: recording stops for five minutes (or
 * PROMPTD_TEST_CIRCUIT_PAUSE_MS), then the next row is tried alone; its
 * success closes the circuit. Everything is visible in store_health. */
#ifndef PROMPTD_STORE_H
#define PROMPTD_STORE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "store_time.h"

struct daemon;
struct config;
struct store;

/* The protocol's history error codes (include/protocol.h, docs/protocol.md):
 * persistence disabled, and a database that failed (disk full, read-only,
 * locked, ...). */
#define STORE_RPC_DISABLED RPC_PERSISTENCE_DISABLED
#define STORE_RPC_STORAGE  RPC_STORAGE_ERROR

/* Breaker numbers, the old backend's. */
#define STORE_CIRCUIT_FAILURES 5
#define STORE_CIRCUIT_PAUSE_MS (5 * 60 * 1000)

/* One improvement to record. Every pointer is borrowed for the duration of
 * store_record only (it copies what it keeps). */
struct history_row {
    const char *original_idea;   /* required */
    const char *context;         /* NULL: "" */
    const char *improved_prompt; /* required */
    const char *role;            /* required */
    const char *directive;       /* required */
    const char *framework;       /* required */
    json_t *guardrails;          /* JSON array of strings; NULL: [] */
    const char *reasoning;       /* NULL: SQL NULL */
    bool has_confidence;         /* false: confidence is NULL */
    double confidence;           /* 0..1 (clamped) */
    long long latency_ms;        /* < 0: unknown (NULL) */
    const char *backend;         /* "zero-shot" | "few-shot"; NULL: "zero-shot" */
    const char *provider;        /* NULL: unknown */
    const char *model;           /* stored as model_version; NULL: unknown */
    const char *client;          /* NULL: unknown */
    long long parent_id;         /* <= 0: none */
    long long prompt_tokens;     /* < 0: unknown */
    long long completion_tokens; /* < 0: unknown */
    int64_t timestamp;           /* Unix seconds (UTC); 0: now */
};

/* history.list filters. Strings are borrowed; empty since/until = none. */
struct history_filter {
    long limit;               /* 1..LIMIT_HISTORY_PAGE_MAX */
    long offset;              /* >= 0 */
    const char *backend;      /* NULL: any */
    const char *provider;     /* NULL: any */
    char since[STORE_TS_LEN]; /* inclusive, stored form (store_time_parse) */
    char until[STORE_TS_LEN]; /* exclusive (store_time_parse makes it so) */
    bool has_min_quality;
    double min_quality;
};

/* Every asynchronous result. result is a new reference the callee owns (or
 * NULL on error); code is 0 on success, else a protocol error code
 * (RPC_NOT_FOUND, RPC_INVALID_PARAMS, STORE_RPC_STORAGE, RPC_CANCELLED when
 * the daemon is stopping, ...) with a sentence in message (borrowed, valid
 * during the call). For RPC_INVALID_PARAMS the field is the request's only
 * path-like param. Called on the loop thread, never from inside the
 * function that started the operation... except when the store refuses at
 * once (closing), which is still one call. */
typedef void (*store_cb)(void *arg, json_t *result, int code, const char *message);

/* Cancelling an operation that changes the history (deletes, restore,
 * backup). A request that answers "cancelled" must have changed nothing,
 * so the loop (a `cancel`, a client gone) and the store (at the
 * operation's point of no return, on any thread) race for one state
 * change and the first wins: either the operation is stopped before it
 * changes anything, or it goes on and its callback brings the real
 * result. The caller owns the token and keeps it alive until the
 * operation's callback ran; zeroed means pending. NULL: not cancellable. */
enum store_cancel_state { STORE_CANCEL_PENDING, STORE_CANCEL_CANCELLED, STORE_CANCEL_COMMITTED };
struct store_cancel {
    _Atomic int state; /* enum store_cancel_state */
};
/* Loop: asks to cancel. True when the operation will change nothing
 * (answer "cancelled" now; its callback still comes, with RPC_CANCELLED);
 * false when it is past its point of no return (its callback answers). */
bool store_cancel_request(struct store_cancel *c);
/* Store: claims the point of no return. True: go on and change the
 * history; false: cancelled, change nothing. NULL c: true. */
bool store_cancel_commit(struct store_cancel *c);
/* Store: whether a cancel was asked (to stop early work). NULL c: false. */
bool store_cancel_asked(struct store_cancel *c);

/* Opens (creating, checking, migrating) the database and starts the writer
 * thread. Called by main.c before listening, when SQLITE_ENABLED. The path
 * is SQLITE_DB_PATH (relative paths are taken from the config file's
 * directory) or the platform default; its directory is created 0700, the
 * file 0600. A file that is not SQLite is moved aside to
 * "<name>.corrupt-<UTC time>" and a fresh database made, loudly. The full
 * quick_check runs right after listening (store_start_maintenance) on the
 * thread pool, because on a large file it takes seconds and start-up must
 * take milliseconds; if it fails, the same move-aside happens then.
 * Returns -1 with a sentence in err when the daemon must not start: a
 * database from a newer promptd, or a file that is not a prompt history.
 * Disk trouble (read-only, full, locked) is not fatal: the store starts
 * unhealthy and the breaker takes over. *out is owned by the caller and
 * released with store_close. cfg is read during the call only. */
int store_open(struct daemon *d, const struct config *cfg, struct store **out, char *err,
               size_t errlen);

/* Called right after the daemon listens: the background quick_check, the
 * start-up retention cleanup (SQLITE_AUTO_CLEANUP, SQLITE_RETENTION_DAYS,
 * on the writer thread, in batches), and a daily timer repeating it. */
void store_start_maintenance(struct store *s);

/* At shutdown, after the server stopped taking requests and before the
 * loop's handles are walked closed: writes every queued row (none is lost),
 * checkpoints, joins the writer, finishes pending operations with
 * RPC_CANCELLED. The memory goes once the loop has run the close callbacks
 * and in-flight reads have ended (keep running the loop). NULL is a no-op. */
void store_close(struct store *s);

/* Queues a copy of row and returns the id it will have, or 0 when it is
 * not recorded (circuit open, queue full, closing: dropped_writes counts
 * it). Never blocks on the disk. Loop thread only. */
int64_t store_record(struct store *s, const struct history_row *row);

/* Reads, each after every write handed out before the call (read-your-
 * writes), on the thread pool. cancel (may be NULL) stops them early
 * (RPC_CANCELLED); filters and text are copied.
 *
 * store_get_async: one row as the protocol shows it (history.get; used by
 * improve's parent_id), RPC_NOT_FOUND when there is no such row.
 * store_list: {"items": [...], "total": N}, newest first; store_search:
 * {"items": [row + "snippet", ...]}, best match first. Both stop a page
 * early at LIMIT_HISTORY_PAGE_BYTES (with "truncated": true). store_stats:
 * the stats method's object, since `since` (stored form; NULL: all). */
void store_get_async(struct store *s, int64_t id, store_cb cb, void *arg);
void store_list(struct store *s, const struct history_filter *f, struct store_cancel *cancel,
                store_cb cb, void *arg);
void store_search(struct store *s, const char *query, long limit, struct store_cancel *cancel,
                  store_cb cb, void *arg);
void store_stats(struct store *s, const char *since, struct store_cancel *cancel, store_cb cb,
                 void *arg);
/* The number of words a search for text looks for: each white-space
 * separated word, a repeated one (ASCII case aside) once. The method
 * bounds it (LIMIT_SEARCH_QUERY_TERMS). */
size_t store_search_terms(const char *text);

/* Writes, in order with the rows recorded before them. Results:
 * {"deleted": N}. delete_id answers RPC_NOT_FOUND when nothing had that id.
 * delete_before takes "YYYY-MM-DD HH:MM:SS" (UTC, exclusive); delete_all
 * removes every row recorded before the call (rows recorded while it runs
 * stay); cleanup removes rows older than `days` days. Range deletes run in
 * batches so recording never waits long behind them; the deleted text
 * leaves the full-text index and the file (secure_delete). */
void store_delete_id(struct store *s, int64_t id, struct store_cancel *cancel, store_cb cb,
                     void *arg);
void store_delete_before(struct store *s, const char *before, struct store_cancel *cancel,
                         store_cb cb, void *arg);
void store_delete_all(struct store *s, struct store_cancel *cancel, store_cb cb, void *arg);
void store_cleanup(struct store *s, long days, struct store_cancel *cancel, store_cb cb, void *arg);

/* db.backup: a consistent copy (online backup API, writes go on) of
 * everything recorded before the call, written to a temporary file in the
 * target's directory, made 0600, then renamed to path (absolute).
 * Refused (RPC_INVALID_PARAMS): the live database or its -wal/-shm/-journal
 * (by device and inode, and by name in its directory), a symbolic link,
 * anything not a regular file, and an existing file unless overwrite, and
 * then only a SQLite database. Result {"path", "bytes", "rows"}. */
void store_backup(struct store *s, const char *path, bool overwrite, struct store_cancel *cancel,
                  store_cb cb, void *arg);

/* db.restore: checks path (a regular SQLite file, integrity_check, a
 * prompt history not newer than this promptd), copies its rows (only
 * those: none of the file's triggers, views, indexes or other tables) into
 * a fresh database built by the embedded migrations, then the writer
 * replaces the live data with it in one step; readers see the old or the
 * new history, never a mix. Ids keep increasing past both; an open circuit
 * breaker closes. Result {"rows": N}. Problems with the file are
 * RPC_INVALID_PARAMS. */
void store_restore(struct store *s, const char *path, struct store_cancel *cancel, store_cb cb,
                   void *arg);

/* db.check: the database's own check (SQLite: PRAGMA quick_check) ->
 * {"ok": bool, "detail": "ok" | problems}. */
void store_check(struct store *s, store_cb cb, void *arg);

/* health.database, from memory (never waits): status healthy | circuit_open
 * | unhealthy, path, total_records, average_confidence, average_latency_ms,
 * pending_writes, dropped_writes, failures and more. New reference. */
json_t *store_health(struct store *s);

/* Counters for tests and benchmarks (a consistent snapshot). */
struct store_counters {
    uint64_t pending;        /* rows queued, not yet processed */
    uint64_t committed;      /* rows written since open */
    uint64_t dropped;        /* rows not recorded (breaker, full queue, failed batch) */
    uint64_t failures;       /* consecutive failed batches */
    uint64_t total_failures; /* failed batches since open */
    int64_t processed_id;    /* the largest id the writer has finished with */
    bool circuit_open;
};
void store_get_counters(struct store *s, struct store_counters *out);

/* The resolved database path (borrowed, valid until store_close). */
const char *store_path(const struct store *s);

#endif
