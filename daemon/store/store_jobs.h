/* The job runner (store_jobs.c): runs a function on the libuv thread pool
 * with a reader connection, after every write handed out before it was
 * submitted (read-your-writes, through the writer's store_when_written),
 * and calls back on the loop. The read methods of store.h (get, list,
 * search, stats, check) are jobs over the queries of store_query.h;
 * backup and restore (store_backup.c) submit their own.
 *
 * Jobs take the cancel token of store.h: once store_cancel_request
 * marked it, the job's connection sees it within a few microseconds of
 * SQLite work, the running statement ends with SQLITE_INTERRUPT, and the
 * job answers RPC_CANCELLED and frees its thread and connection. A job
 * not yet on a thread does not start. One long call inside a statement
 * (FTS5's snippet() of a single huge row) is not interrupted before it
 * returns. */
#ifndef PROMPTD_STORE_JOBS_H
#define PROMPTD_STORE_JOBS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* Runs on a pool thread with a reader connection (NULL when the job asked
 * for none). Returns 0 with *result set, or a protocol code with err. */
typedef int (*store_job_fn)(sqlite3 *db, void *ctx, json_t **result, char *err, size_t errlen);

/* Runs fn after every write handed out before this call, then calls cb on
 * the loop. ctx is owned by the job and released with ctx_free (may be
 * NULL) after cb. needs_db: acquire a reader connection for fn. Loop
 * thread only. */
void store_job_submit(struct store *s, store_job_fn fn, void *ctx, void (*ctx_free)(void *),
                      bool needs_db, store_cb cb, void *arg);
/* The same with a reader connection, stopped early when cancel (may be
 * NULL) is requested. */
void store_job_submit_cancel(struct store *s, store_job_fn fn, void *ctx, void (*ctx_free)(void *),
                             struct store_cancel *cancel, store_cb cb, void *arg);

#endif
