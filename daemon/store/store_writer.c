/* The SQLite backend's store object and its writer (store_writer.h):
 * opening and checking the database, the writer thread and its queue, the
 * circuit breaker, deletes, retention, the restore swap, health. The
 * queries are in store_query.c, the thread-pool jobs in store_jobs.c,
 * backup and restore in store_backup.c, file handling in store_file.c. */
#include "store_writer.h"

#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "store_file.h"
#include "store_migrate.h"
#include "store_readers.h"
#include "store_sqlite.h"
#include "store_time.h"
#include "xalloc.h"

/* Rows per delete transaction of retention and range deletes: rows queued
 * meanwhile wait at most one such batch. */
#define STORE_DELETE_BATCH 2000
/* The writer waits this long for another process's lock before a write
 * counts as failed. */
#define STORE_WRITER_BUSY_MS 5000
/* The first pause before a failed batch is written again (it doubles). */
#define STORE_RETRY_FIRST_MS 250
/* The WAL file is truncated back to this size after a checkpoint resets it,
 * so one burst of writes does not keep a large file forever. */
#define STORE_JOURNAL_LIMIT_BYTES (64 * 1024 * 1024)
/* After this much idle time with new commits, the writer runs a PASSIVE
 * checkpoint (it never waits for readers). */
#define STORE_IDLE_CHECKPOINT_MS 1000
/* The writer's page cache: indexes and the FTS segments it appends to. */
#define STORE_WRITER_CACHE_KIB 8192
/* Retention runs at start-up and then this often. */
#define STORE_MAINTENANCE_MS (24u * 3600u * 1000u)
/* Health shows the file size at most this stale. */
#define STORE_SIZE_REFRESH_MS 1000

enum store_op_kind {
    OP_DELETE_ID,       /* one row */
    OP_DELETE_RANGE,    /* rows before a time, or with id <= a cutoff, in batches */
    OP_RESTORE,         /* replace the live data with a prepared copy */
    OP_REPLACE_CORRUPT, /* move the file aside, start a fresh one */
};

/* A write operation other than recording a row. Owned by the queue, then
 * by the writer, then by the done list; freed on the loop after cb. */
struct store_op {
    enum store_op_kind kind;
    int64_t id;                  /* DELETE_ID: the row; DELETE_RANGE: ids <= id (when > 0) */
    char before[STORE_TS_LEN];   /* DELETE_RANGE: rows with timestamp < before (when set) */
    long retention_days;         /* DELETE_RANGE: >= 0 when it is the retention cleanup */
    char *path;                  /* RESTORE: the prepared copy, unlinked after (owned) */
    int64_t rows;                /* RESTORE: rows in the copy */
    int64_t deleted;             /* DELETE_RANGE: progress */
    struct store_cancel *cancel; /* borrowed from the caller until cb; NULL: internal */
    json_t *result;              /* owned until handed to cb */
    int code;                    /* 0 or a protocol code */
    char msg[512];
    store_cb cb; /* NULL for internal operations */
    void *arg;
    STAILQ_ENTRY(store_op) link; /* in the range-delete job list or the done list */
};
STAILQ_HEAD(store_ops, store_op);

/* One queue entry: a row to insert (op == NULL) or an operation. The row's
 * strings point into text[], one allocation per row. */
struct store_item {
    STAILQ_ENTRY(store_item) link; /* in the queue, then in what the writer took */
    struct store_op *op;           /* owned */
    int64_t id;
    char ts[STORE_TS_LEN];
    const char *idea, *context, *prompt, *role, *directive, *framework, *guardrails, *reasoning,
        *backend, *provider, *model, *client; /* NULL: SQL NULL */
    bool has_conf;
    double conf;
    long long latency, parent, ptok, ctok; /* < 0 (parent <= 0): NULL */
    char text[];
};
STAILQ_HEAD(store_items, store_item);

/* A read parked until the writer has processed `need`. Loop thread only. */
struct store_wait {
    STAILQ_ENTRY(store_wait) link;
    int64_t need;
    void (*fn)(struct store *s, void *arg, bool ok);
    void *arg;
};
STAILQ_HEAD(store_waits, store_wait);

struct store {
    struct daemon *d; /* borrowed */
    uv_loop_t *loop;  /* borrowed */
    char *path;       /* owned; absolute */
    bool wal;
    long max_page_count;           /* PROMPTD_TEST_MAX_PAGE_COUNT; 0: none */
    uint64_t pause_ms;             /* circuit breaker pause */
    int page_size;                 /* of the live file, for restore */
    struct store_readers *readers; /* owned */
    uv_thread_t thread;
    bool thread_started;
    uv_async_t async; /* writer -> loop: rows processed, operations done */
    uv_timer_t daily; /* retention */
    bool maintenance_started;

    /* Loop thread only. */
    int refs;     /* owner + each open handle + each running job */
    bool closing; /* store_close called */
    int64_t handed_id;
    struct store_waits waits; /* in `need` order; owned */

    /* Guarded by mu (shared by the loop and the writer). */
    uv_mutex_t mu;
    uv_cond_t cond;
    struct store_items queue; /* owned */
    size_t queued_rows;
    bool stop;
    int64_t next_id;
    int64_t processed_id;
    struct store_ops done; /* owned until their callbacks ran */
    int failures;
    uint64_t total_failures, dropped, committed;
    bool circuit_open;
    uint64_t open_until_ms;
    int64_t trial_id; /* the one row tried after the pause; 0: none yet */
    bool db_unavailable;
    char last_error[512];
    char last_error_at[32];
    int64_t tot_n, tot_n_conf, tot_n_lat;
    double tot_sum_conf, tot_sum_lat;
    int64_t file_bytes;
    char corrupt_moved_to[PATH_MAX + 64];
    char fs_warning[160];

    /* Writer thread only (and store_open before the thread starts). */
    sqlite3 *db;
    sqlite3_stmt *stage, *move, *move_ignore; /* see STORE_STAGE_SQL (store_internal.h) */
    struct store_ops jobs;                    /* range deletes in progress, owned */
    bool dirty;                               /* commits since the last checkpoint */
    bool flush_failed;                        /* a write failed while stopping: drop the rest */
    uint64_t flush_dropped;                   /* rows dropped so, for the last log line */
    uint64_t size_checked_ms;                 /* when file_bytes was last refreshed */
};

/* ===================================================================== */
/* Small helpers                                                         */
/* ===================================================================== */

static uint64_t now_ms(void) {
    return uv_hrtime() / 1000000u;
}

/* Records the last write error for health (caller holds mu). */
static void set_last_error_locked(struct store *s, const char *msg) {
    snprintf(s->last_error, sizeof s->last_error, "%s", msg);
    store_time_utc_stamp(s->last_error_at, sizeof s->last_error_at, false);
}

static void set_last_error(struct store *s, const char *msg) {
    uv_mutex_lock(&s->mu);
    set_last_error_locked(s, msg);
    uv_mutex_unlock(&s->mu);
}

/* Warns about a network filesystem (store_network_fs_kind), in the log
 * and in health. */
static void check_network_fs(struct store *s) {
    const char *kind = store_network_fs_kind(s->path);
    if (!kind)
        return;
    snprintf(s->fs_warning, sizeof s->fs_warning,
             "the database is on a network filesystem (%s), where SQLite's WAL is unsafe", kind);
    log_warn("%s: %s; keep SQLITE_DB_PATH on a local disk", s->path, s->fs_warning);
}

/* ===================================================================== */
/* The writer's connection                                               */
/* ===================================================================== */

enum open_result {
    OPEN_OK,
    OPEN_FATAL,   /* newer or foreign: the daemon must not start */
    OPEN_CORRUPT, /* not a database: move it aside */
    OPEN_FAILED,  /* the disk or the permissions: retry later */
};

static int classify_rc(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT ? OPEN_CORRUPT : OPEN_FAILED;
}

/* Pragmas. journal_mode is set after the version check, because turning
 * WAL on writes to the file and a newer promptd's file must stay as it
 * is. secure_delete: freed pages are zeroed, so deleted text (and the
 * index pages FTS5 merges away) does not linger in the file; it costs
 * about 2% of write throughput. */
static int writer_pragmas(struct store *s, sqlite3 *db) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode = %s; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
             "PRAGMA journal_size_limit = %d; PRAGMA secure_delete = ON; PRAGMA cache_size = -%d; "
             "PRAGMA temp_store = MEMORY;",
             s->wal ? "WAL" : "DELETE", STORE_JOURNAL_LIMIT_BYTES, STORE_WRITER_CACHE_KIB);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK && s->max_page_count > 0) {
        /* Test knob: a "disk" of this many pages, to exercise SQLITE_FULL. */
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %ld", s->max_page_count);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    return rc;
}

static int prepare_inserts(struct store *s, sqlite3 *db) {
    int rc = sqlite3_exec(db, STORE_STAGE_TABLE_SQL, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc =
            sqlite3_prepare_v3(db, STORE_STAGE_SQL, -1, SQLITE_PREPARE_PERSISTENT, &s->stage, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(db, STORE_MOVE_SQL, -1, SQLITE_PREPARE_PERSISTENT, &s->move, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(db, STORE_MOVE_IGNORE_SQL, -1, SQLITE_PREPARE_PERSISTENT,
                                &s->move_ignore, NULL);
    return rc;
}

static void writer_close_db(struct store *s) {
    sqlite3_finalize(s->stage);
    sqlite3_finalize(s->move);
    sqlite3_finalize(s->move_ignore);
    s->stage = s->move = s->move_ignore = NULL;
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        log_warn("closing the history database: %s", sqlite3_errmsg(s->db));
    s->db = NULL;
}

/* Health's totals, from the per-day rollup (a few thousand rows at most). */
static void refresh_totals(struct store *s) {
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT coalesce(sum(n), 0), coalesce(sum(n_conf), 0), "
                      "coalesce(sum(sum_conf), 0), coalesce(sum(n_lat), 0), "
                      "coalesce(sum(sum_lat), 0) FROM history_rollup WHERE n > 0";
    if (!s->db || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return;
    }
    uv_mutex_lock(&s->mu);
    s->tot_n = sqlite3_column_int64(st, 0);
    s->tot_n_conf = sqlite3_column_int64(st, 1);
    s->tot_sum_conf = sqlite3_column_double(st, 2);
    s->tot_n_lat = sqlite3_column_int64(st, 3);
    s->tot_sum_lat = sqlite3_column_double(st, 4);
    uv_mutex_unlock(&s->mu);
    sqlite3_finalize(st);
}

/* Opens, checks and migrates the live database into s->db. Used at
 * start-up (before the writer exists) and by the writer to reopen after a
 * failure. */
static enum open_result writer_open(struct store *s, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    struct store_migrate_info info;
    int rc = store_sqlite_open_own(s->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, STORE_WRITER_BUSY_MS);
    if (rc != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot open the history database", err, errlen);
        sqlite3_close(db);
        return OPEN_FAILED;
    }
    if (store_migrate_inspect(db, (size_t)store_migrate_latest(), &info, err, errlen) != 0) {
        rc = sqlite3_errcode(db);
        store_sqlite_msg(db, rc, "cannot read the history database", err, errlen);
        sqlite3_close(db);
        return classify_rc(rc);
    }
    if (info.kind == STORE_MIGRATE_NEWER || info.kind == STORE_MIGRATE_FOREIGN) {
        sqlite3_close(db);
        return OPEN_FATAL;
    }
    /* Before anything is written (WAL included): a fresh file takes its page
     * size from its first write. On a file that already has pages (say an
     * empty one left in WAL mode) the pragma is a no-op. */
    if (info.kind == STORE_MIGRATE_EMPTY) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d", STORE_NEW_PAGE_SIZE);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK || (rc = writer_pragmas(s, db)) != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot configure the history database", err, errlen);
        sqlite3_close(db);
        return classify_rc(rc);
    }
    int from = 0, to = 0;
    if (store_migrate_run(db, &from, &to, err, errlen) != 0) {
        sqlite3_close(db);
        return OPEN_FAILED;
    }
    if (from != to)
        log_info("history database migrated from schema version %d to %d", from, to);
    /* SQLite >= 3.42: FTS5 removes a deleted row's words from its segments
     * at once; older versions leave them until the next merge (range
     * deletes merge right after, see writer_scrub). */
    if (sqlite3_libversion_number() >= 3042000 &&
        sqlite3_exec(db,
                     "INSERT INTO prompt_history_fts(prompt_history_fts, rank) "
                     "VALUES ('secure-delete', 1)",
                     NULL, NULL, NULL) != SQLITE_OK)
        log_debug("history: FTS5 secure-delete not set: %s", sqlite3_errmsg(db));
    if ((rc = prepare_inserts(s, db)) != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot prepare the history writer", err, errlen);
        s->db = db;
        writer_close_db(s);
        return OPEN_FAILED;
    }
    s->db = db;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        s->page_size = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int64_t max_id = store_sqlite_max_id(db);
    uv_mutex_lock(&s->mu);
    if (s->next_id <= max_id)
        s->next_id = max_id + 1;
    s->db_unavailable = false;
    uv_mutex_unlock(&s->mu);
    refresh_totals(s);
    return OPEN_OK;
}

/* ===================================================================== */
/* The loop side of the queue                                            */
/* ===================================================================== */

static void store_wake_writer_locked(struct store *s) {
    uv_cond_signal(&s->cond);
}

/* Appends an item (caller holds mu). */
static void enqueue_locked(struct store *s, struct store_item *it) {
    STAILQ_INSERT_TAIL(&s->queue, it, link);
    store_wake_writer_locked(s);
}

static struct store_op *op_new(enum store_op_kind kind, store_cb cb, void *arg) {
    struct store_op *op = xcalloc(1, sizeof *op);
    op->kind = kind;
    op->retention_days = -1;
    op->cb = cb;
    op->arg = arg;
    return op;
}

static void op_free(struct store_op *op) {
    json_decref(op->result);
    free(op->path);
    free(op);
}

/* Hands op to the writer, behind every row recorded so far. */
static void enqueue_op(struct store *s, struct store_op *op) {
    if (s->closing) {
        if (op->cb)
            op->cb(op->arg, NULL, RPC_CANCELLED, "The daemon is stopping.");
        if (op->path)
            unlink(op->path);
        op_free(op);
        return;
    }
    struct store_item *it = xcalloc(1, sizeof *it);
    it->op = op;
    uv_mutex_lock(&s->mu);
    enqueue_locked(s, it);
    uv_mutex_unlock(&s->mu);
}

static size_t opt_len(const char *p) {
    return p ? strlen(p) + 1 : 0;
}

/* Copies src into the row's text area; returns the copy (NULL for NULL). */
static const char *copy_text(char **cursor, const char *src) {
    if (!src)
        return NULL;
    size_t n = strlen(src) + 1;
    memcpy(*cursor, src, n);
    const char *copy = *cursor;
    *cursor += n;
    return copy;
}

static const char *or_empty(const char *s) {
    return s ? s : "";
}

/* One allocation holding the row and its strings, shaped for the insert
 * (defaults applied, confidence clamped so the table's CHECKs hold). */
static struct store_item *item_from_row(const struct history_row *row) {
    char *guardrails = row->guardrails ? json_dumps(row->guardrails, JSON_COMPACT) : NULL;
    /* The required texts default to "" (NOT NULL columns), the optional
     * ones stay NULL. */
    const char *text[] = {
        or_empty(row->original_idea),
        or_empty(row->context),
        or_empty(row->improved_prompt),
        or_empty(row->role),
        or_empty(row->directive),
        or_empty(row->framework),
        guardrails ? guardrails : "[]",
        row->reasoning,
        row->backend ? row->backend : "zero-shot",
        row->provider,
        row->model,
        row->client,
    };
    enum { N_TEXT = sizeof text / sizeof *text };
    size_t bytes = 0;
    for (size_t i = 0; i < N_TEXT; i++)
        bytes += opt_len(text[i]);
    struct store_item *it = xmalloc(sizeof *it + bytes);
    memset(it, 0, sizeof *it);
    char *cur = it->text;
    const char **dst[N_TEXT] = {&it->idea,      &it->context,   &it->prompt,     &it->role,
                                &it->directive, &it->framework, &it->guardrails, &it->reasoning,
                                &it->backend,   &it->provider,  &it->model,      &it->client};
    for (size_t i = 0; i < N_TEXT; i++)
        *dst[i] = copy_text(&cur, text[i]);
    free(guardrails);
    it->has_conf = row->has_confidence && !isnan(row->confidence);
    it->conf = it->has_conf ? fmin(1.0, fmax(0.0, row->confidence)) : 0.0;
    it->latency = row->latency_ms;
    it->parent = row->parent_id;
    it->ptok = row->prompt_tokens;
    it->ctok = row->completion_tokens;
    store_time_format(row->timestamp > 0 ? row->timestamp : (int64_t)time(NULL), it->ts);
    return it;
}

/* Whether a row may be queued now; counts it as dropped when not. Decides
 * the trial row of a half-open circuit. Caller holds mu. */
static bool admit_locked(struct store *s, int64_t id) {
    if (s->queued_rows >= LIMIT_STORE_QUEUE_ROWS) {
        if (s->dropped++ % 1000 == 0)
            log_warn("history: the write queue is full (%d rows): rows are being dropped",
                     LIMIT_STORE_QUEUE_ROWS);
        return false;
    }
    if (s->circuit_open) {
        if (now_ms() < s->open_until_ms || s->trial_id != 0) {
            s->dropped++;
            return false;
        }
        s->trial_id = id; /* this row is queued: the trial will happen */
        log_info("history: the circuit breaker's pause is over; trying one write");
    }
    return true;
}

int64_t store_record(struct store *s, const struct history_row *row) {
    if (!s || s->closing)
        return 0;
    struct store_item *it = item_from_row(row);
    uv_mutex_lock(&s->mu);
    int64_t id = s->next_id;
    if (!admit_locked(s, id)) {
        uv_mutex_unlock(&s->mu);
        free(it);
        return 0;
    }
    s->next_id++;
    it->id = id;
    s->queued_rows++;
    enqueue_locked(s, it);
    uv_mutex_unlock(&s->mu);
    s->handed_id = id;
    return id;
}

/* ===================================================================== */
/* Read-your-writes                                                      */
/* ===================================================================== */

void store_when_written(struct store *s, void (*fn)(struct store *s, void *arg, bool ok),
                        void *arg) {
    if (s->closing) {
        fn(s, arg, false);
        return;
    }
    uv_mutex_lock(&s->mu);
    bool ready = s->processed_id >= s->handed_id && STAILQ_EMPTY(&s->waits);
    uv_mutex_unlock(&s->mu);
    if (ready) {
        fn(s, arg, true);
        return;
    }
    struct store_wait *w = xcalloc(1, sizeof *w);
    w->need = s->handed_id;
    w->fn = fn;
    w->arg = arg;
    STAILQ_INSERT_TAIL(&s->waits, w, link);
}

/* Starts the parked reads whose writes are done (all of them, failed,
 * when the store is closing). */
static void run_waits(struct store *s, bool closing) {
    uv_mutex_lock(&s->mu);
    int64_t processed = s->processed_id;
    uv_mutex_unlock(&s->mu);
    struct store_wait *w;
    while ((w = STAILQ_FIRST(&s->waits)) && (closing || w->need <= processed)) {
        STAILQ_REMOVE_HEAD(&s->waits, link);
        w->fn(s, w->arg, !closing);
        free(w);
    }
}

/* Finished operations: their callbacks run here, on the loop. */
static void run_done(struct store *s) {
    struct store_ops done = STAILQ_HEAD_INITIALIZER(done);
    struct store_op *op;
    uv_mutex_lock(&s->mu);
    STAILQ_CONCAT(&done, &s->done);
    uv_mutex_unlock(&s->mu);
    while ((op = STAILQ_FIRST(&done))) {
        STAILQ_REMOVE_HEAD(&done, link);
        if (op->cb) {
            json_t *result = op->code == 0 ? op->result : NULL;
            op->result = op->code == 0 ? NULL : op->result;
            op->cb(op->arg, result, op->code, op->msg);
        }
        op_free(op);
    }
}

static void on_async(uv_async_t *h) {
    struct store *s = h->data;
    run_done(s);
    run_waits(s, false);
}

/* ===================================================================== */
/* The writer thread                                                     */
/* ===================================================================== */

/* Posts a finished operation to the loop. */
static void writer_complete(struct store *s, struct store_op *op) {
    uv_mutex_lock(&s->mu);
    STAILQ_INSERT_TAIL(&s->done, op, link);
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
}

static void op_fail(struct store_op *op, int code, const char *msg) {
    op->code = code;
    snprintf(op->msg, sizeof op->msg, "%s", msg);
}

/* Makes sure the writer has a connection, reopening after a failure. */
static int writer_ensure_db(struct store *s, char *err, size_t errlen) {
    if (s->db)
        return 0;
    enum open_result r = writer_open(s, err, errlen);
    if (r == OPEN_OK) {
        log_info("history database %s reopened", s->path);
        return 0;
    }
    uv_mutex_lock(&s->mu);
    s->db_unavailable = true;
    uv_mutex_unlock(&s->mu);
    return -1;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, long long v, long long min) {
    if (v >= min)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Runs a prepared statement to completion. */
static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int insert_one(sqlite3_stmt *st, const struct store_item *it) {
    sqlite3_bind_int64(st, 1, it->id);
    sqlite3_bind_text(st, 2, it->ts, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, it->idea);
    bind_text_or_null(st, 4, it->context);
    bind_text_or_null(st, 5, it->prompt);
    bind_text_or_null(st, 6, it->role);
    bind_text_or_null(st, 7, it->directive);
    bind_text_or_null(st, 8, it->framework);
    bind_text_or_null(st, 9, it->guardrails);
    bind_text_or_null(st, 10, it->backend);
    if (it->has_conf)
        sqlite3_bind_double(st, 11, it->conf);
    else
        sqlite3_bind_null(st, 11);
    bind_text_or_null(st, 12, it->reasoning);
    bind_int_or_null(st, 13, it->latency, 0);
    bind_text_or_null(st, 14, it->model);
    bind_text_or_null(st, 15, it->provider);
    bind_text_or_null(st, 16, it->client);
    bind_int_or_null(st, 17, it->parent, 1);
    bind_int_or_null(st, 18, it->ptok, 0);
    bind_int_or_null(st, 19, it->ctok, 0);
    return step_done(st);
}

/* Inserts n rows from `first` in one transaction: stage them, move them
 * with `move` (plain or OR IGNORE). Returns SQLITE_OK, or the failing
 * code with err set (before the rollback, which would reset the
 * connection's error message). */
static int insert_txn(struct store *s, sqlite3_stmt *move, struct store_item *first, size_t n,
                      char *err, size_t errlen) {
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    struct store_item *it = first;
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++, it = STAILQ_NEXT(it, link))
        rc = insert_one(s->stage, it);
    if (rc == SQLITE_OK)
        rc = step_done(move);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "DELETE FROM temp.promptd_batch", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_msg(s->db, rc, "history write failed", err, errlen);
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_exec(s->db, "DELETE FROM temp.promptd_batch", NULL, NULL, NULL);
    }
    return rc;
}

/* Breaker bookkeeping after a batch (caller holds mu). */
static void batch_failed_locked(struct store *s, const char *msg) {
    s->failures++;
    s->total_failures++;
    set_last_error_locked(s, msg);
    bool was_trial = s->circuit_open;
    if (s->failures >= STORE_CIRCUIT_FAILURES || was_trial) {
        s->circuit_open = true;
        s->open_until_ms = now_ms() + s->pause_ms;
        s->trial_id = 0;
        log_error("history: %s; persistence paused for %.1f s after %d consecutive failures "
                  "(improve keeps answering, with id null)",
                  msg, (double)s->pause_ms / 1000.0, s->failures);
    }
}

static void batch_succeeded_locked(struct store *s) {
    if (s->circuit_open) {
        log_info("history: the trial write succeeded; persistence resumed");
        s->circuit_open = false;
        s->trial_id = 0;
    }
    s->failures = 0;
}

static void add_totals_locked(struct store *s, struct store_item *first, size_t n) {
    struct store_item *it = first;
    for (size_t i = 0; i < n; i++, it = STAILQ_NEXT(it, link)) {
        s->tot_n++;
        if (it->has_conf) {
            s->tot_n_conf++;
            s->tot_sum_conf += it->conf;
        }
        if (it->latency >= 0) {
            s->tot_n_lat++;
            s->tot_sum_lat += (double)it->latency;
        }
    }
}

static void refresh_size(struct store *s, bool force) {
    uint64_t now = now_ms();
    if (!force && now - s->size_checked_ms < STORE_SIZE_REFRESH_MS)
        return;
    s->size_checked_ms = now;
    int64_t bytes = store_files_size(s->path);
    uv_mutex_lock(&s->mu);
    s->file_bytes = bytes;
    uv_mutex_unlock(&s->mu);
}

/* How many of the batch's ids exist in the table (after a constraint
 * failure only: it is one lookup per row). */
static int64_t count_batch_ids(struct store *s, struct store_item *first, size_t n) {
    sqlite3_stmt *st = NULL;
    int64_t found = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM prompt_history WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return 0;
    for (size_t i = 0; i < n; i++, first = STAILQ_NEXT(first, link)) {
        sqlite3_bind_int64(st, 1, first->id);
        if (sqlite3_step(st) == SQLITE_ROW)
            found++;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return found;
}

/* One attempt at writing a batch. A constraint failure (a row the table
 * refuses, or an id another process took) is retried with OR IGNORE so one
 * bad row does not sink its batch. Returns SQLITE_OK with *inserted set,
 * or the failing code with err set. */
static int writer_try_batch(struct store *s, struct store_item *first, size_t n, size_t *inserted,
                            char *err, size_t errlen) {
    *inserted = n;
    if (writer_ensure_db(s, err, errlen) != 0)
        return SQLITE_CANTOPEN;
    int rc = insert_txn(s, s->move, first, n, err, errlen);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        int64_t rows_before = count_batch_ids(s, first, n);
        rc = insert_txn(s, s->move_ignore, first, n, err, errlen);
        *inserted = rc == SQLITE_OK ? (size_t)(count_batch_ids(s, first, n) - rows_before) : 0;
        if (rc == SQLITE_OK && *inserted != n)
            log_warn("history: %zu rows of a batch were refused by the table and skipped",
                     n - *inserted);
    }
    return rc;
}

/* The pause before a failed batch is tried again: it doubles from 250 ms,
 * and stays under a quarter of the breaker's pause so that a short test
 * pause keeps the retries short too. */
static uint64_t retry_delay_ms(const struct store *s, int attempt) {
    uint64_t delay = (uint64_t)STORE_RETRY_FIRST_MS << (attempt < 8 ? attempt : 8);
    uint64_t cap = s->pause_ms / 4 > 0 ? s->pause_ms / 4 : 1;
    return delay < cap ? delay : cap;
}

/* Sleeps on the writer thread; store_close cuts it short. */
static void writer_sleep(struct store *s, uint64_t ms) {
    uint64_t until = now_ms() + ms;
    uv_mutex_lock(&s->mu);
    for (uint64_t now; !s->stop && (now = now_ms()) < until;)
        uv_cond_timedwait(&s->cond, &s->mu, (until - now) * 1000000u);
    uv_mutex_unlock(&s->mu);
}

/* Accounts for one attempt at a batch and decides whether its rows are
 * kept for another. They are dropped (and counted) only when the failures
 * have opened the circuit breaker or the daemon is stopping: a lock held
 * for a few seconds, or a disk full for a moment, loses nothing. */
static bool batch_settle(struct store *s, struct store_item *first, size_t n, int rc,
                         size_t inserted, const char *msg) {
    struct store_item *last = first;
    for (size_t i = 1; i < n; i++)
        last = STAILQ_NEXT(last, link);
    uv_mutex_lock(&s->mu);
    if (rc == SQLITE_OK) {
        batch_succeeded_locked(s);
        s->committed += inserted;
        add_totals_locked(s, first, n);
    } else {
        batch_failed_locked(s, msg);
    }
    bool keep = rc != SQLITE_OK && !s->circuit_open && !s->stop;
    if (!keep) {
        s->queued_rows -= n;
        if (rc != SQLITE_OK)
            s->dropped += n;
    }
    /* Reads parked behind these rows go on after the first attempt, as
     * they would have without the retries: they see the file as it is. */
    s->processed_id = last->id;
    bool stopping = s->stop;
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
    if (rc != SQLITE_OK && !keep) {
        log_warn("%s (%zu rows dropped)", msg, n);
        s->flush_failed = stopping;
    }
    return keep;
}

/* Writes a batch, trying a failed one again after a pause until it is
 * written or batch_settle gives it up. */
static void writer_insert_batch(struct store *s, struct store_item *first, size_t n) {
    for (int attempt = 0;; attempt++) {
        char msg[512];
        size_t inserted = 0;
        int rc = writer_try_batch(s, first, n, &inserted, msg, sizeof msg);
        bool keep = batch_settle(s, first, n, rc, inserted, msg);
        if (rc == SQLITE_OK) {
            s->dirty = true;
            if (inserted != n)
                refresh_totals(s);
            refresh_size(s, false);
            return;
        }
        writer_close_db(s); /* reopen next time: the cause may be gone by then */
        if (!keep)
            return;
        uint64_t delay = retry_delay_ms(s, attempt);
        log_warn("%s; trying the %zu rows again in %llu ms", msg, n, (unsigned long long)delay);
        writer_sleep(s, delay);
    }
}

/* While the circuit is open, queued rows are dropped without touching the
 * disk, except the trial row; so are the rows left after a write failed
 * while the daemon was stopping (each batch would wait out the busy timeout
 * again). Returns true when `it` was dropped. */
static bool writer_drop_if_open(struct store *s, struct store_item *it) {
    uv_mutex_lock(&s->mu);
    bool drop = (s->circuit_open && it->id != s->trial_id) || s->flush_failed;
    if (drop && s->flush_failed)
        s->flush_dropped++;
    if (drop) {
        s->dropped++;
        s->processed_id = it->id;
        s->queued_rows--;
    }
    uv_mutex_unlock(&s->mu);
    return drop;
}

static void writer_delete_id(struct store *s, struct store_op *op) {
    char msg[512];
    sqlite3_stmt *st = NULL;
    if (writer_ensure_db(s, msg, sizeof msg) != 0) {
        op_fail(op, STORE_RPC_STORAGE, msg);
        return;
    }
    /* One statement: it is the point of no return. */
    if (!store_cancel_commit(op->cancel)) {
        op_fail(op, RPC_CANCELLED, "The request was cancelled; nothing was deleted.");
        return;
    }
    int rc = sqlite3_prepare_v2(s->db, "DELETE FROM prompt_history WHERE id = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, op->id);
        rc = sqlite3_step(st);
    }
    int changed = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_sqlite_msg(s->db, rc, "cannot delete the entry", msg, sizeof msg);
        op_fail(op, STORE_RPC_STORAGE, msg);
        writer_close_db(s); /* reopen next time, as after a failed batch */
    } else if (changed == 0) {
        snprintf(op->msg, sizeof op->msg, "No history entry with id %lld.", (long long)op->id);
        op->code = RPC_NOT_FOUND;
    } else {
        op->result = json_pack("{s:i}", "deleted", 1);
        s->dirty = true;
        refresh_totals(s);
    }
}

/* After range deletes: drop empty rollup rows, and make the deleted text
 * really gone: FTS5 keeps a deleted row's words in its older segments
 * until they are merged, so merge them (or clear the index when the table
 * is empty), then checkpoint so the WAL's copies of the pages go too. */
static void writer_scrub(struct store *s) {
    sqlite3_int64 left = 1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT EXISTS (SELECT 1 FROM prompt_history)", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        left = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    const char *fts = left
                          ? "INSERT INTO prompt_history_fts(prompt_history_fts) VALUES ('optimize')"
                          : "INSERT INTO prompt_history_fts(prompt_history_fts) "
                            "VALUES ('delete-all')";
    int rc = sqlite3_exec(s->db, "DELETE FROM history_rollup WHERE n <= 0", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, fts, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        log_warn("history: tidying after a delete failed: %s", sqlite3_errmsg(s->db));
    /* TRUNCATE: the WAL still holds the pages as they were before the
     * delete; it waits (busy_timeout) for readers, which are short. */
    if (s->wal &&
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
        log_warn("history: the WAL could not be emptied after a delete: %s; it will be at the "
                 "next checkpoint",
                 sqlite3_errmsg(s->db));
    refresh_totals(s);
    refresh_size(s, true);
}

static void writer_job_done(struct store *s, struct store_op *op) {
    STAILQ_REMOVE(&s->jobs, op, store_op, link);
    if (op->code == 0) {
        if (op->deleted > 0)
            writer_scrub(s);
        op->result = json_pack("{s:I}", "deleted", (json_int_t)op->deleted);
        if (op->retention_days >= 0)
            log_info("retention: deleted %lld history rows older than %ld days",
                     (long long)op->deleted, op->retention_days);
    }
    writer_complete(s, op);
}

/* A range delete cancelled before its first commit: nothing was deleted. */
static void writer_job_cancelled(struct store *s, struct store_op *op) {
    op_fail(op, RPC_CANCELLED, "The request was cancelled; nothing was deleted.");
    writer_job_done(s, op);
}

/* One batch of the first range delete. */
static void writer_job_step(struct store *s) {
    struct store_op *op = STAILQ_FIRST(&s->jobs);
    char msg[512];
    sqlite3_stmt *st = NULL;
    const char *sql = op->before[0]
                          ? "DELETE FROM prompt_history WHERE id IN (SELECT id FROM prompt_history "
                            "WHERE timestamp < ?1 LIMIT ?2)"
                          : "DELETE FROM prompt_history WHERE id IN (SELECT id FROM prompt_history "
                            "WHERE id <= ?1 ORDER BY id LIMIT ?2)";
    if (store_cancel_asked(op->cancel)) {
        writer_job_cancelled(s, op);
        return;
    }
    if (writer_ensure_db(s, msg, sizeof msg) != 0) {
        op_fail(op, STORE_RPC_STORAGE, msg);
        writer_job_done(s, op);
        return;
    }
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (op->before[0])
            sqlite3_bind_text(st, 1, op->before, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 1, op->id);
        sqlite3_bind_int(st, 2, STORE_DELETE_BATCH);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(s->db);
    }
    int changed = rc == SQLITE_OK ? sqlite3_changes(s->db) : 0;
    sqlite3_finalize(st);
    /* The first batch's commit is the point of no return: a cancel that
     * came first undoes it; one that comes later changes nothing and the
     * delete goes on to the end, answering what it deleted. */
    if (rc == SQLITE_OK && !store_cancel_commit(op->cancel)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        writer_job_cancelled(s, op);
        return;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_msg(s->db, rc, "cannot delete history entries", msg, sizeof msg);
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        op_fail(op, STORE_RPC_STORAGE, msg);
        set_last_error(s, msg);
        /* Reopen next time, as after a failed batch: a connection SQLite
         * opened read-only (the file was not writable) stays read-only,
         * and the circuit breaker's trial would fail on it after a fix. */
        writer_close_db(s);
        writer_job_done(s, op);
        return;
    }
    s->dirty = true;
    op->deleted += changed;
    if (changed < STORE_DELETE_BATCH)
        writer_job_done(s, op);
}

/* After a restore the history is a new, sound file: whatever opened the
 * breaker was about the old one, so recording resumes at once (a cause
 * that persists opens it again after five failures). */
static void writer_reset_breaker(struct store *s) {
    uv_mutex_lock(&s->mu);
    bool was_open = s->circuit_open;
    s->circuit_open = false;
    s->trial_id = 0;
    s->failures = 0;
    s->db_unavailable = false;
    uv_mutex_unlock(&s->mu);
    if (was_open)
        log_info("history: the restore succeeded; the circuit breaker is closed and recording "
                 "resumed");
}

/* Replaces the live data with the prepared, checked and migrated copy in
 * one backup step: readers see the old history or the new one. */
static void writer_restore(struct store *s, struct store_op *op) {
    char msg[512];
    sqlite3 *src = NULL;
    int rc = SQLITE_OK;
    if (writer_ensure_db(s, msg, sizeof msg) != 0) {
        unlink(op->path);
        op_fail(op, STORE_RPC_STORAGE, msg);
        return;
    }
    /* The point of no return: a cancel from now on cannot stop it. */
    if (!store_cancel_commit(op->cancel)) {
        unlink(op->path);
        op_fail(op, RPC_CANCELLED, "The restore was cancelled; the history is unchanged.");
        return;
    }
    log_info("history: replacing the live history with the restored copy");
    rc = store_sqlite_open(op->path, SQLITE_OPEN_READONLY, &src);
    if (rc == SQLITE_OK) {
        sqlite3_backup *b = sqlite3_backup_init(s->db, "main", src, "main");
        if (!b) {
            rc = sqlite3_errcode(s->db);
        } else {
            rc = sqlite3_backup_step(b, -1);
            int frc = sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? frc : rc;
        }
    }
    if (rc != SQLITE_OK)
        store_sqlite_msg(s->db, rc, "cannot restore the history", msg, sizeof msg);
    sqlite3_close(src);
    unlink(op->path);
    if (rc != SQLITE_OK) {
        op_fail(op, STORE_RPC_STORAGE, msg);
        writer_close_db(s); /* reopen next time, as after a failed batch */
        return;
    }
    int64_t max_id = store_sqlite_max_id(s->db);
    uv_mutex_lock(&s->mu);
    if (s->next_id <= max_id)
        s->next_id = max_id + 1;
    uv_mutex_unlock(&s->mu);
    s->dirty = true;
    refresh_totals(s);
    refresh_size(s, true);
    writer_reset_breaker(s);
    log_info("history restored: %lld rows", (long long)op->rows);
    op->result = json_pack("{s:I}", "rows", (json_int_t)op->rows);
}

/* quick_check found damage after start-up: move the file aside and start
 * a fresh one, with no reader connection left on the old file. */
static void writer_replace_corrupt(struct store *s, struct store_op *op) {
    char moved[PATH_MAX + 64], msg[512];
    store_readers_lock_all(s->readers);
    writer_close_db(s);
    int moved_ok = store_move_aside(s->path, moved, sizeof moved);
    if (moved_ok == 0)
        store_prepare_file(s->path);
    enum open_result r = writer_open(s, msg, sizeof msg);
    store_readers_unlock_all(s->readers);
    if (moved_ok == 0) {
        log_error("history: the database was corrupt (%s); moved it to %s and started a fresh "
                  "one (recover rows from the old file with: sqlite3 %s .recover)",
                  op->msg, moved, moved);
        uv_mutex_lock(&s->mu);
        snprintf(s->corrupt_moved_to, sizeof s->corrupt_moved_to, "%s", moved);
        uv_mutex_unlock(&s->mu);
    }
    if (r != OPEN_OK) {
        log_error("history: %s", msg);
        set_last_error(s, msg);
    }
    op->msg[0] = '\0';
}

static void writer_run_op(struct store *s, struct store_op *op) {
    switch (op->kind) {
    case OP_DELETE_ID:
        writer_delete_id(s, op);
        break;
    case OP_DELETE_RANGE:
        /* Runs in batches between rows (writer_job_step); answered when
         * done. */
        STAILQ_INSERT_TAIL(&s->jobs, op, link);
        return;
    case OP_RESTORE:
        writer_restore(s, op);
        break;
    case OP_REPLACE_CORRUPT:
        writer_replace_corrupt(s, op);
        break;
    }
    writer_complete(s, op);
}

/* Processes what was taken from the queue, in order: runs of rows become
 * batches, operations run between them. Frees every item. */
static void writer_process(struct store *s, struct store_items *items) {
    struct store_item *it;
    while ((it = STAILQ_FIRST(items))) {
        if (it->op || writer_drop_if_open(s, it)) {
            STAILQ_REMOVE_HEAD(items, link);
            if (it->op)
                writer_run_op(s, it->op);
            else
                uv_async_send(&s->async);
            free(it);
            continue;
        }
        size_t n = 1;
        for (struct store_item *x = it;
             n < STORE_BATCH_ROWS && (x = STAILQ_NEXT(x, link)) && !x->op;)
            n++;
        writer_insert_batch(s, it, n);
        for (size_t i = 0; i < n; i++) {
            it = STAILQ_FIRST(items);
            STAILQ_REMOVE_HEAD(items, link);
            free(it);
        }
    }
}

static void writer_checkpoint(struct store *s, int mode) {
    if (!s->db || !s->wal)
        return;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, mode, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_warn("history checkpoint: %s", sqlite3_errmsg(s->db));
    s->dirty = false;
    /* Idle: give the page cache back (the OS keeps the file cached), and
     * the freed heap to the OS, so a burst does not leave the daemon big. */
    sqlite3_db_release_memory(s->db);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    refresh_size(s, true);
}

/* Waits for work; moves the queue's items to items (maybe none after an
 * idle timeout) and says whether the store is stopping. */
static void writer_take(struct store *s, struct store_items *items, bool *stop) {
    uv_mutex_lock(&s->mu);
    while (STAILQ_EMPTY(&s->queue) && STAILQ_EMPTY(&s->jobs) && !s->stop) {
        if (!s->dirty) {
            uv_cond_wait(&s->cond, &s->mu);
        } else if (uv_cond_timedwait(&s->cond, &s->mu,
                                     (uint64_t)STORE_IDLE_CHECKPOINT_MS * 1000000u) ==
                   UV_ETIMEDOUT) {
            break;
        }
    }
    STAILQ_CONCAT(items, &s->queue);
    *stop = s->stop;
    uv_mutex_unlock(&s->mu);
}

/* A range delete interrupted by shutdown: "cancelled" only when it had
 * deleted nothing; otherwise what it did. */
static void writer_job_stopped(struct store *s, struct store_op *op) {
    char msg[256];
    if (op->deleted == 0) {
        op_fail(op, RPC_CANCELLED, "The daemon is stopping; nothing was deleted.");
    } else {
        snprintf(msg, sizeof msg,
                 "The daemon stopped after deleting %lld entries; the rest are still there: run "
                 "the delete again.",
                 (long long)op->deleted);
        op_fail(op, STORE_RPC_STORAGE, msg);
    }
    writer_job_done(s, op);
}

static void writer_main(void *arg) {
    struct store *s = arg;
    for (;;) {
        bool stop;
        struct store_items items = STAILQ_HEAD_INITIALIZER(items);
        writer_take(s, &items, &stop);
        bool took = !STAILQ_EMPTY(&items);
        if (took)
            writer_process(s, &items);
        else if (s->dirty && STAILQ_EMPTY(&s->jobs))
            writer_checkpoint(s, SQLITE_CHECKPOINT_PASSIVE); /* idle: a good moment */
        if (!STAILQ_EMPTY(&s->jobs) && stop) {
            /* Shutting down: rows are flushed, long deletes wait for the
             * next start (retention runs again then). */
            writer_job_stopped(s, STAILQ_FIRST(&s->jobs));
        } else if (!STAILQ_EMPTY(&s->jobs)) {
            writer_job_step(s);
        }
        if (stop && !took && STAILQ_EMPTY(&s->jobs))
            break;
    }
    if (s->flush_dropped)
        log_warn("history: %llu more queued rows were dropped without a try: the database "
                 "could not be written while the daemon was stopping",
                 (unsigned long long)s->flush_dropped);
    writer_checkpoint(s, SQLITE_CHECKPOINT_TRUNCATE);
    writer_close_db(s);
}

/* ===================================================================== */
/* Open and close                                                        */
/* ===================================================================== */

static void store_free(struct store *s) {
    struct store_item *it;
    while ((it = STAILQ_FIRST(&s->queue))) {
        STAILQ_REMOVE_HEAD(&s->queue, link);
        if (it->op)
            op_free(it->op);
        free(it);
    }
    store_readers_free(s->readers);
    uv_cond_destroy(&s->cond);
    uv_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

bool store_ref(struct store *s) {
    if (s->closing)
        return false;
    s->refs++;
    return true;
}

void store_unref(struct store *s) {
    if (--s->refs == 0)
        store_free(s);
}

uv_loop_t *store_loop(struct store *s) {
    return s->loop;
}

struct store_readers *store_readers_of(struct store *s) {
    return s->readers;
}

const char *store_path(const struct store *s) {
    return s->path;
}

static void on_handle_closed(uv_handle_t *h) {
    store_unref(h->data);
}

/* Opens the file for the first time: a non-SQLite file or an unreadable
 * database is moved aside and replaced, loudly. */
static int open_initial(struct store *s, char *err, size_t errlen) {
    char moved[PATH_MAX + 64];
    if (store_file_is_foreign(s->path)) {
        if (store_move_aside(s->path, moved, sizeof moved) == 0) {
            log_error("history: %s is not a SQLite database; moved it to %s and started a fresh "
                      "one",
                      s->path, moved);
            snprintf(s->corrupt_moved_to, sizeof s->corrupt_moved_to, "%s", moved);
        }
        store_prepare_file(s->path);
    }
    enum open_result r = writer_open(s, err, errlen);
    if (r == OPEN_CORRUPT && store_move_aside(s->path, moved, sizeof moved) == 0) {
        log_error("history: %s is corrupt (%s); moved it to %s and started a fresh one", s->path,
                  err, moved);
        snprintf(s->corrupt_moved_to, sizeof s->corrupt_moved_to, "%s", moved);
        store_prepare_file(s->path);
        r = writer_open(s, err, errlen);
    }
    if (r == OPEN_FATAL)
        return -1;
    if (r != OPEN_OK) {
        /* Not fatal: improve works without history; the writer retries
         * and the breaker limits the retries. */
        log_error("history: %s; history is unavailable until this is fixed", err);
        s->db_unavailable = true;
        set_last_error(s, err);
    }
    return 0;
}

static int store_init_sync(struct store *s) {
    if (uv_mutex_init(&s->mu) != 0)
        return -1;
    if (uv_cond_init(&s->cond) != 0) {
        uv_mutex_destroy(&s->mu);
        return -1;
    }
    return 0;
}

/* Handles and the thread. On failure the handles that were opened are
 * closed; their close callbacks drop their references. */
static int store_start_thread(struct store *s, char *err, size_t errlen) {
    int rc = uv_async_init(s->loop, &s->async, on_async);
    if (rc != 0)
        goto fail;
    s->async.data = s;
    s->refs++;
    if ((rc = uv_timer_init(s->loop, &s->daily)) != 0) {
        uv_close((uv_handle_t *)&s->async, on_handle_closed);
        goto fail;
    }
    s->daily.data = s;
    s->refs++;
    uv_unref((uv_handle_t *)&s->daily); /* retention alone does not keep the daemon up */
    if ((rc = uv_thread_create(&s->thread, writer_main, s)) != 0) {
        uv_close((uv_handle_t *)&s->async, on_handle_closed);
        uv_close((uv_handle_t *)&s->daily, on_handle_closed);
        goto fail;
    }
    s->thread_started = true;
    return 0;
fail:
    snprintf(err, errlen, "cannot start the history writer: %s", uv_strerror(rc));
    return -1;
}

int store_open(struct daemon *d, const struct config *cfg, struct store **out, char *err,
               size_t errlen) {
    char path[PATH_MAX];
    *out = NULL;
    if (store_resolve_path(cfg->sqlite_db_path, d->config_path, path, sizeof path, err, errlen) !=
        0)
        return -1;
    struct store *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    if (store_init_sync(s) != 0) {
        free(s->path);
        free(s);
        snprintf(err, errlen, "cannot create the history's locks");
        return -1;
    }
    STAILQ_INIT(&s->queue);
    STAILQ_INIT(&s->waits);
    STAILQ_INIT(&s->done);
    STAILQ_INIT(&s->jobs);
    s->d = d;
    s->loop = d->loop;
    s->refs = 1;
    s->next_id = 1;
    s->wal = cfg->sqlite_wal_mode;
    s->max_page_count = cfg->test_max_page_count;
    s->pause_ms = cfg->test_circuit_pause_ms > 0 ? (uint64_t)cfg->test_circuit_pause_ms
                                                 : STORE_CIRCUIT_PAUSE_MS;
    s->page_size = 4096;
    if (store_make_parent_dirs(s->path, err, errlen) != 0) {
        log_error("history: %s", err);
        set_last_error(s, err);
    }
    check_network_fs(s);
    store_prepare_file(s->path);
    int rc = open_initial(s, err, errlen);
    if (rc == 0 && !(s->readers = store_readers_new(s->path))) {
        snprintf(err, errlen, "cannot create the history readers' locks");
        rc = -1;
    }
    if (rc != 0 || store_start_thread(s, err, errlen) != 0) {
        writer_close_db(s);
        s->closing = true;
        store_unref(s); /* freed now, or when the closed handles' callbacks ran */
        return -1;
    }
    s->file_bytes = store_files_size(s->path);
    s->handed_id = s->next_id - 1;
    s->processed_id = s->handed_id;
    log_info("history database %s (%lld rows)", s->path, (long long)s->tot_n);
    *out = s;
    return 0;
}

/* ---- Maintenance ------------------------------------------------------- */

static void enqueue_retention(struct store *s) {
    const struct config *cfg = s->d->cfg; /* current: SIGHUP may change it */
    if (!cfg->sqlite_auto_cleanup || cfg->sqlite_retention_days <= 0)
        return;
    struct store_op *op = op_new(OP_DELETE_RANGE, NULL, NULL);
    op->retention_days = cfg->sqlite_retention_days;
    store_time_format((int64_t)time(NULL) - (int64_t)cfg->sqlite_retention_days * 86400,
                      op->before);
    enqueue_op(s, op);
}

static void on_daily(uv_timer_t *t) {
    enqueue_retention(t->data);
}

bool store_writer_claim_maintenance(struct store *s) {
    if (!s || s->maintenance_started || s->closing)
        return false;
    s->maintenance_started = true;
    return true;
}

bool store_writer_db_opened(struct store *s) {
    uv_mutex_lock(&s->mu);
    bool opened = !s->db_unavailable;
    uv_mutex_unlock(&s->mu);
    return opened;
}

void store_writer_start_retention(struct store *s) {
    enqueue_retention(s);
    int rc = uv_timer_start(&s->daily, on_daily, STORE_MAINTENANCE_MS, STORE_MAINTENANCE_MS);
    if (rc != 0)
        log_warn("history: cannot schedule the daily retention: %s", uv_strerror(rc));
}

void store_writer_replace_corrupt(struct store *s, const char *why) {
    struct store_op *op = op_new(OP_REPLACE_CORRUPT, NULL, NULL);
    snprintf(op->msg, sizeof op->msg, "%s", why);
    enqueue_op(s, op);
}

void store_close(struct store *s) {
    if (!s || s->closing)
        return;
    uv_mutex_lock(&s->mu);
    s->stop = true;
    uv_cond_signal(&s->cond);
    size_t pending = s->queued_rows;
    uv_mutex_unlock(&s->mu);
    if (pending)
        log_info("history: writing the %zu queued rows before exit", pending);
    if (s->readers)
        store_readers_interrupt_all(s->readers);
    if (s->thread_started)
        uv_thread_join(&s->thread); /* flushes the queue, checkpoints, closes */
    s->closing = true;
    run_done(s);
    run_waits(s, true);
    if (!uv_is_closing((uv_handle_t *)&s->daily))
        uv_close((uv_handle_t *)&s->daily, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->async))
        uv_close((uv_handle_t *)&s->async, on_handle_closed);
    store_unref(s);
}

/* ===================================================================== */
/* Operations from the methods                                           */
/* ===================================================================== */

void store_delete_id(struct store *s, int64_t id, struct store_cancel *cancel, store_cb cb,
                     void *arg) {
    struct store_op *op = op_new(OP_DELETE_ID, cb, arg);
    op->id = id;
    op->cancel = cancel;
    enqueue_op(s, op);
}

void store_delete_before(struct store *s, const char *before, struct store_cancel *cancel,
                         store_cb cb, void *arg) {
    struct store_op *op = op_new(OP_DELETE_RANGE, cb, arg);
    snprintf(op->before, sizeof op->before, "%s", before);
    op->cancel = cancel;
    enqueue_op(s, op);
}

void store_delete_all(struct store *s, struct store_cancel *cancel, store_cb cb, void *arg) {
    struct store_op *op = op_new(OP_DELETE_RANGE, cb, arg);
    op->cancel = cancel;
    uv_mutex_lock(&s->mu);
    op->id = s->next_id - 1; /* every row that exists or was handed out */
    uv_mutex_unlock(&s->mu);
    enqueue_op(s, op);
}

void store_cleanup(struct store *s, long days, struct store_cancel *cancel, store_cb cb,
                   void *arg) {
    char before[STORE_TS_LEN];
    store_time_format((int64_t)time(NULL) - (int64_t)days * 86400, before);
    store_delete_before(s, before, cancel, cb, arg);
}

/* ---- Restore (store_backup.c prepares the copy) ------------------------ */

int store_page_size(const struct store *s) {
    return s->page_size;
}

void store_swap_in_restore(struct store *s, const char *copy, int64_t max_id, int64_t rows,
                           struct store_cancel *cancel, store_cb cb, void *arg) {
    struct store_op *op = op_new(OP_RESTORE, cb, arg);
    op->path = xstrdup(copy);
    op->rows = rows;
    op->cancel = cancel;
    uv_mutex_lock(&s->mu);
    if (s->next_id <= max_id)
        s->next_id = max_id + 1;
    uv_mutex_unlock(&s->mu);
    enqueue_op(s, op);
}

/* ---- Health ------------------------------------------------------------- */

void store_get_counters(struct store *s, struct store_counters *out) {
    uv_mutex_lock(&s->mu);
    out->pending = s->queued_rows;
    out->committed = s->committed;
    out->dropped = s->dropped;
    out->failures = (uint64_t)s->failures;
    out->total_failures = s->total_failures;
    out->processed_id = s->processed_id;
    out->circuit_open = s->circuit_open;
    uv_mutex_unlock(&s->mu);
}

static json_t *opt_string(const char *s) {
    return s && s[0] ? json_string(s) : json_null();
}

json_t *store_health(struct store *s) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    uv_mutex_lock(&s->mu);
    const char *status = s->circuit_open                        ? "circuit_open"
                         : s->db_unavailable || s->failures > 0 ? "unhealthy"
                                                                : "healthy";
    uint64_t now = now_ms();
    int rc = 0;
    rc |= json_object_set_new(o, "status", json_string(status));
    rc |= json_object_set_new(o, "path", json_string(s->path));
    rc |= json_object_set_new(o, "total_records", json_integer(s->tot_n));
    rc |= json_object_set_new(
        o, "average_confidence",
        s->tot_n_conf > 0 ? json_real(round(s->tot_sum_conf / (double)s->tot_n_conf * 1e4) / 1e4)
                          : json_null());
    rc |= json_object_set_new(o, "average_latency_ms",
                              s->tot_n_lat > 0
                                  ? json_integer(llround(s->tot_sum_lat / (double)s->tot_n_lat))
                                  : json_null());
    rc |= json_object_set_new(o, "pending_writes", json_integer((json_int_t)s->queued_rows));
    rc |= json_object_set_new(o, "dropped_writes", json_integer((json_int_t)s->dropped));
    rc |= json_object_set_new(o, "failures", json_integer(s->failures));
    rc |= json_object_set_new(o, "total_failures", json_integer((json_int_t)s->total_failures));
    rc |= json_object_set_new(o, "committed_writes", json_integer((json_int_t)s->committed));
    rc |= json_object_set_new(o, "size_bytes", json_integer(s->file_bytes));
    rc |= json_object_set_new(o, "wal", json_boolean(s->wal));
    rc |= json_object_set_new(o, "last_error", opt_string(s->last_error));
    rc |= json_object_set_new(o, "last_error_at", opt_string(s->last_error_at));
    if (s->circuit_open)
        rc |= json_object_set_new(
            o, "retry_in_ms",
            json_integer(s->open_until_ms > now ? (json_int_t)(s->open_until_ms - now) : 0));
    if (s->corrupt_moved_to[0])
        rc |= json_object_set_new(o, "corrupt_moved_to", json_string(s->corrupt_moved_to));
    if (s->fs_warning[0])
        rc |= json_object_set_new(o, "warning", json_string(s->fs_warning));
    uv_mutex_unlock(&s->mu);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
