/* The reader connection pool (store_readers.h). */
#include "store_readers.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "store_sqlite.h"
#include "xalloc.h"

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
    struct store_readers *r = xcalloc(1, sizeof *r);
    r->path = xstrdup(path);
    if (uv_mutex_init(&r->mu) != 0) {
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

static sqlite3 *readers_open(const char *path, char *err, size_t errlen) {
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
    if (rc != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot open the history for reading", err, errlen);
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

sqlite3 *store_readers_acquire(struct store_readers *r, bool *fresh, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    uv_rwlock_rdlock(&r->file_lock);
    uv_mutex_lock(&r->mu);
    if (r->n_idle > 0)
        db = r->idle[--r->n_idle];
    uv_mutex_unlock(&r->mu);
    *fresh = !db;
    if (!db)
        db = readers_open(r->path, err, errlen);
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
