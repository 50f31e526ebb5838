/* The job runner (store_jobs.h), and the read methods of store.h as jobs:
 * the only code that knows both the reader pool and the queries. */
#include "store_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "protocol.h"
#include "store_query.h"
#include "store_readers.h"
#include "store_sqlite.h"
#include "store_time.h"
#include "store_writer.h"
#include "xalloc.h"

/* A cancellable job's progress handler looks at its flag every this many
 * SQLite VM steps. Few: most steps take nanoseconds (the check, an atomic
 * load, costs as little), but one step can be a whole snippet() of a
 * long row, and a search returns a row every few dozen steps. */
#define READERS_PROGRESS_OPS 10

struct store_job {
    uv_work_t work; /* first: the request is the job */
    struct store *s;
    store_job_fn fn;
    void *ctx; /* owned; freed with ctx_free */
    void (*ctx_free)(void *);
    bool needs_db;
    struct store_cancel *cancel; /* borrowed, may be NULL; outlives the job (store.h) */
    store_cb cb;
    void *arg;
    json_t *result; /* owned until handed to cb */
    int code;
    char err[512];
};

static void job_finish(struct store_job *job) {
    job->cb(job->arg, job->code == 0 ? job->result : NULL, job->code, job->err);
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

/* A reader connection, made ready for the queries when it is new. */
static sqlite3 *job_reader(struct store_readers *r, char *err, size_t errlen) {
    bool fresh = false;
    sqlite3 *db = store_readers_acquire(r, &fresh, err, errlen);
    int rc = db && fresh ? store_q_prepare_db(db) : SQLITE_OK;
    if (rc != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot open the history for reading", err, errlen);
        store_readers_release(r, db, true);
        return NULL;
    }
    return db;
}

static void job_work(uv_work_t *req) {
    struct store_job *job = (struct store_job *)req;
    struct store_readers *r = store_readers_of(job->s);
    sqlite3 *db = NULL;
    if (job_cancelled(job)) { /* cancelled while it waited for a thread */
        job->code = RPC_CANCELLED;
        snprintf(job->err, sizeof job->err, "The request was cancelled.");
        return;
    }
    if (job->needs_db && !(db = job_reader(r, job->err, sizeof job->err))) {
        job->code = STORE_RPC_STORAGE;
        return;
    }
    if (db && job->cancel)
        sqlite3_progress_handler(db, READERS_PROGRESS_OPS, job_progress, job);
    job->code = job->fn(db, job->ctx, &job->result, job->err, sizeof job->err);
    if (job->code != 0 && job_cancelled(job)) {
        job->code = RPC_CANCELLED; /* the interrupt, not a storage failure */
        snprintf(job->err, sizeof job->err, "The request was cancelled.");
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
        snprintf(job->err, sizeof job->err, "The request was cancelled.");
    }
    job_finish(job);
}

static void job_start(struct store *s, void *arg, bool ok) {
    struct store_job *job = arg;
    int rc;
    if (!ok) {
        job->code = RPC_CANCELLED;
        snprintf(job->err, sizeof job->err, "The daemon is stopping.");
        job_finish(job);
    } else if ((rc = uv_queue_work(store_loop(s), &job->work, job_work, job_after)) != 0) {
        job->code = RPC_INTERNAL;
        snprintf(job->err, sizeof job->err, "cannot queue the query: %s", uv_strerror(rc));
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
    struct store_job *job = xcalloc(1, sizeof *job);
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

static int list_job(sqlite3 *db, void *ctx, json_t **result, char *err, size_t errlen) {
    return store_q_list(db, &((struct list_ctx *)ctx)->f, result, err, errlen);
}

void store_list(struct store *s, const struct history_filter *f, struct store_cancel *cancel,
                store_cb cb, void *arg) {
    struct list_ctx *c = xcalloc(1, sizeof *c);
    c->f = *f;
    c->backend = f->backend ? xstrdup(f->backend) : NULL;
    c->provider = f->provider ? xstrdup(f->provider) : NULL;
    c->f.backend = c->backend;
    c->f.provider = c->provider;
    store_job_submit_cancel(s, list_job, c, list_ctx_free, cancel, cb, arg);
}

struct search_ctx {
    long limit;
    char query[]; /* NUL-terminated */
};

static int search_job(sqlite3 *db, void *ctx, json_t **result, char *err, size_t errlen) {
    struct search_ctx *c = ctx;
    return store_q_search(db, c->query, c->limit, result, err, errlen);
}

void store_search(struct store *s, const char *query, long limit, struct store_cancel *cancel,
                  store_cb cb, void *arg) {
    size_t len = strlen(query);
    struct search_ctx *c = xmalloc(sizeof *c + len + 1);
    c->limit = limit;
    memcpy(c->query, query, len + 1);
    store_job_submit_cancel(s, search_job, c, free, cancel, cb, arg);
}

struct stats_ctx {
    bool has_since;
    char since[STORE_TS_LEN];
    int64_t now_s;
};

static int stats_job(sqlite3 *db, void *ctx, json_t **result, char *err, size_t errlen) {
    struct stats_ctx *c = ctx;
    return store_q_stats(db, c->has_since ? c->since : NULL, c->now_s, result, err, errlen);
}

void store_stats(struct store *s, const char *since, struct store_cancel *cancel, store_cb cb,
                 void *arg) {
    struct stats_ctx *c = xcalloc(1, sizeof *c);
    c->has_since = since && since[0];
    if (c->has_since)
        snprintf(c->since, sizeof c->since, "%s", since);
    c->now_s = (int64_t)time(NULL);
    store_job_submit_cancel(s, stats_job, c, free, cancel, cb, arg);
}

struct get_ctx {
    int64_t id;
};

static int get_job(sqlite3 *db, void *ctx, json_t **result, char *err, size_t errlen) {
    return store_q_get(db, ((struct get_ctx *)ctx)->id, result, err, errlen);
}

void store_get_async(struct store *s, int64_t id, store_cb cb, void *arg) {
    struct get_ctx *c = xmalloc(sizeof *c);
    c->id = id;
    store_job_submit(s, get_job, c, free, true, cb, arg);
}

static int check_job(sqlite3 *db, void *ctx, json_t **result, char *err, size_t errlen) {
    return store_q_check(db, result, err, errlen);
}

void store_check(struct store *s, store_cb cb, void *arg) {
    store_job_submit(s, check_job, NULL, NULL, true, cb, arg);
}
