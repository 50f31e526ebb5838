/* What the SQLite backend's store object and its writer thread
 * (store_writer.c) give the backend's other files: the job runner
 * (store_jobs.c), maintenance (store_maintenance.c), restore
 * (store_backup.c), and the benchmark. Not for the rest of the daemon,
 * which sees only store.h. The functions are for the loop thread only.
 *
 * struct store is defined in store_writer.c: the writer's queue and
 * thread, the reader pool it owns, the loop-side bookkeeping (references,
 * reads parked until their writes are done). */
#ifndef PROMPTD_STORE_WRITER_H
#define PROMPTD_STORE_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"

struct store_readers;

/* ---- The writer's numbers and statements (also the benchmark's) -------- */

/* Rows per write transaction: large enough that the commit's fsync is
 * shared by thousands of rows, small enough that a transaction stays short
 * (a read waits behind at most one). */
#define STORE_BATCH_ROWS 4096

/* Page size of a database promptd creates. Rows are 1-3 KB: on 4 KiB
 * pages most rows take a page of their own and half of it stays empty,
 * and every page is written twice (WAL, then checkpoint). 16 KiB pages hold
 * several rows: ~15% less file and ~30% faster writes (docs/schema.md,
 * "Performance"). Existing files keep their page size (changing it would
 * need a VACUUM of the whole file). */
#define STORE_NEW_PAGE_SIZE 16384

/* The columns the writer fills, in bind order. */
#define STORE_COLS                                                                                 \
    "id, timestamp, original_idea, context, improved_prompt, role, directive, framework, "         \
    "guardrails, backend, confidence, reasoning, latency_ms, model_version, provider, client, "    \
    "parent_id, prompt_tokens, completion_tokens"

/* Rows are first staged in a TEMP table (in memory, no triggers), then
 * moved with one INSERT ... SELECT per batch. Why: SQLite opens a statement
 * savepoint for every execution of an INSERT that fires triggers, and
 * FTS5 flushes its pending index to a new segment at every savepoint; one
 * statement per row would write one FTS segment per row (and merge them
 * all again). One statement per batch writes one segment per batch: 2.5x
 * faster on 1.5 KB rows. The triggers stay the only code that maintains
 * the index and the rollup. */
#define STORE_STAGE_TABLE_SQL                                                                      \
    "CREATE TEMP TABLE IF NOT EXISTS promptd_batch AS SELECT " STORE_COLS                          \
    " FROM main.prompt_history WHERE 0"
#define STORE_STAGE_SQL                                                                            \
    "INSERT INTO temp.promptd_batch(" STORE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "  \
    "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
#define STORE_MOVE_SQL                                                                             \
    "INSERT INTO main.prompt_history(" STORE_COLS ") SELECT " STORE_COLS " FROM "                  \
    "temp.promptd_batch"
#define STORE_MOVE_IGNORE_SQL                                                                      \
    "INSERT OR IGNORE INTO main.prompt_history(" STORE_COLS ") SELECT " STORE_COLS                 \
    " FROM temp.promptd_batch"

/* ---- For the job runner ------------------------------------------------ */

uv_loop_t *store_loop(struct store *s);
/* The reader pool (owned by the store; valid until it is freed). */
struct store_readers *store_readers_of(struct store *s);
/* False once the store is closing (then the job must not start). Else
 * keeps the store alive until store_unref. */
bool store_ref(struct store *s);
void store_unref(struct store *s);
/* Calls fn(s, arg, true) on the loop once the writer has processed every
 * id handed out so far (at once when it already has), or fn(s, arg,
 * false) when the store closes first. This is read-your-writes. */
void store_when_written(struct store *s, void (*fn)(struct store *s, void *arg, bool ok),
                        void *arg);

/* ---- For maintenance (store_maintenance.c) ------------------------------ */

/* True the first time, when the store is not closing: the caller starts
 * the maintenance; false: it already runs, or must not. */
bool store_writer_claim_maintenance(struct store *s);
/* Whether the database opened at start-up (else nothing is checked). */
bool store_writer_db_opened(struct store *s);
/* The retention cleanup (SQLITE_AUTO_CLEANUP, SQLITE_RETENTION_DAYS) on
 * the writer thread, now and then daily. */
void store_writer_start_retention(struct store *s);
/* The start-up check found damage (why says what): the writer moves the
 * file aside and starts a fresh one, behind the rows already queued. */
void store_writer_replace_corrupt(struct store *s, const char *why);

/* ---- For restore (store_backup.c) --------------------------------------- */

/* The live file's page size (a restored copy is brought to it). */
int store_page_size(const struct store *s);
/* Hands a checked, migrated copy (its path: the writer unlinks it) to the
 * writer, which replaces the live data with it behind the rows already
 * queued, unless cancel (may be NULL) was asked before it begins; ids
 * handed out from now on come after max_id. cb answers. */
void store_swap_in_restore(struct store *s, const char *copy, int64_t max_id, int64_t rows,
                           struct store_cancel *cancel, store_cb cb, void *arg);

#endif
