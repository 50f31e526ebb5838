/* db.backup and db.restore. Backup copies a consistent snapshot on the
 * thread pool while the writer goes on. Restore checks, copies and
 * migrates the file on the thread pool; the writer then swaps it in
 * (store_swap_in_restore), behind the rows already queued. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "migrate.h"
#include "protocol.h"
#include "store.h"
#include "store_file.h"
#include "store_internal.h"
#include "store_read.h"

/* ---- Backup ------------------------------------------------------------ */

/* Copies src's main database into the file at path with the backup API in
 * one step (one read transaction on src: a consistent snapshot, while the
 * writer goes on), then makes the copy a self-contained rollback-journal
 * file. Returns SQLITE_OK or a code with msg. */
static int copy_database(sqlite3 *src, const char *path, char *msg, size_t msglen) {
    sqlite3 *dst = NULL;
    int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (!b) {
            rc = sqlite3_errcode(dst);
        } else {
            rc = sqlite3_backup_step(b, -1);
            int frc = sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? frc : rc;
        }
    }
    if (rc != SQLITE_OK) {
        store_sqlite_msg(dst, rc, "cannot copy the database", msg, msglen);
        sqlite3_close(dst);
        return rc;
    }
    sqlite3_close(dst);
    /* The copy carries the source's WAL flag in its header; reopen and
     * switch it to a plain file so it travels as one file. */
    rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        store_sqlite_msg(dst, rc, "cannot finish the copy", msg, msglen);
    sqlite3_close(dst);
    return rc;
}

static int64_t count_rows(const char *path) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM prompt_history", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int backup_job(sqlite3 *src, void *ctx, json_t **result, char *msg, size_t msglen) {
    const char *path = ctx;
    char tmp[PATH_MAX + 32], dir[PATH_MAX];
    struct stat st;
    if (store_make_temp(path, "tmp", tmp, sizeof tmp, msg, msglen) != 0)
        return RPC_INVALID_PARAMS;
    int rc = copy_database(src, tmp, msg, msglen);
    int64_t rows = rc == SQLITE_OK ? count_rows(tmp) : -1;
    config_dir_of(path, dir, sizeof dir);
    if (rc == SQLITE_OK && (store_fsync_path(tmp, false) != 0 || rename(tmp, path) != 0)) {
        snprintf(msg, msglen, "cannot write %s: %s", path, strerror(errno));
        rc = SQLITE_CANTOPEN;
    }
    if (rc != SQLITE_OK) {
        unlink(tmp);
        return STORE_RPC_STORAGE;
    }
    store_fsync_path(dir, true);
    if (stat(path, &st) != 0)
        st.st_size = 0;
    *result = json_pack("{s:s,s:I,s:I}", "path", path, "bytes", (json_int_t)st.st_size, "rows",
                        (json_int_t)(rows < 0 ? 0 : rows));
    if (!*result) {
        snprintf(msg, msglen, "out of memory");
        return RPC_INTERNAL;
    }
    return 0;
}

void store_backup(struct store *s, const char *path, store_cb cb, void *arg) {
    char *copy = strdup(path);
    if (!copy) {
        cb(arg, NULL, RPC_INTERNAL, "out of memory");
        return;
    }
    store_job_submit(s, backup_job, copy, free, true, cb, arg);
}

/* ---- Restore ----------------------------------------------------------- */

struct restore_ctx {
    struct store *s; /* borrowed; the job holds a reference */
    char *live;      /* owned: the live database's path */
    int page_size;   /* the live file's: the backup API needs them equal under WAL */
    char *src;       /* owned: the file to restore */
    store_cb cb;
    void *arg;
};

static void restore_ctx_free(void *p) {
    struct restore_ctx *c = p;
    free(c->live);
    free(c->src);
    free(c);
}

/* integrity_check and the schema verdict of the file to restore. */
static int restore_check_source(sqlite3 *src, const char *path, char *msg, size_t msglen) {
    sqlite3_stmt *st = NULL;
    struct migrate_info info;
    char why[384] = "";
    int rc = sqlite3_prepare_v2(src, "PRAGMA integrity_check(5)", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (!line || strcmp(line, "ok") != 0)
            snprintf(why, sizeof why, "it fails the integrity check (%s)", line ? line : "?");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        store_sqlite_msg(src, rc, "it cannot be read", why, sizeof why);
    else if (!why[0] && migrate_inspect(src, (size_t)migrate_latest(), &info, why, sizeof why) != 0)
        ; /* why says it */
    else if (!why[0] && info.kind == MIGRATE_EMPTY)
        snprintf(why, sizeof why, "it holds no prompt history");
    else if (!why[0] && (info.kind == MIGRATE_NEWER || info.kind == MIGRATE_FOREIGN))
        ; /* migrate_inspect explained it in why */
    else if (!why[0])
        return 0;
    snprintf(msg, msglen, "%s cannot be restored: %s.", path, why);
    return RPC_INVALID_PARAMS;
}

/* Brings the copy to the live file's page size (the backup API cannot copy
 * between different page sizes into a WAL database) and the current
 * schema. */
static int restore_prepare_copy(const char *tmp, int page_size, int64_t *max_id, char *msg,
                                size_t msglen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int current = 0;
    int rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK &&
        (rc = sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL)) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && current != page_size) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d; VACUUM", page_size);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot prepare the restore", msg, msglen);
        sqlite3_close(db);
        return STORE_RPC_STORAGE;
    }
    if (migrate_run(db, NULL, NULL, msg, msglen) != 0) {
        sqlite3_close(db);
        return STORE_RPC_STORAGE;
    }
    *max_id = store_db_max_id(db);
    sqlite3_close(db);
    return 0;
}

/* Thread pool: check the file, copy it next to the live database, migrate
 * the copy. The live data is untouched until the writer swaps it in. */
static int restore_prepare_job(sqlite3 *unused, void *ctx, json_t **result, char *msg,
                               size_t msglen) {
    struct restore_ctx *c = ctx;
    sqlite3 *src = NULL;
    char tmp[PATH_MAX + 32];
    int64_t max_id = 0;
    if (access(c->src, R_OK) != 0) {
        snprintf(msg, msglen, "%s cannot be restored: %s.", c->src, strerror(errno));
        return RPC_INVALID_PARAMS;
    }
    if (store_file_is_foreign(c->src) || store_file_size(c->src) == 0) {
        snprintf(msg, msglen, "%s cannot be restored: it is not a SQLite database.", c->src);
        return RPC_INVALID_PARAMS;
    }
    int rc = sqlite3_open_v2(c->src, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    int code = rc == SQLITE_OK ? restore_check_source(src, c->src, msg, msglen) : 0;
    if (rc != SQLITE_OK) {
        store_sqlite_msg(src, rc, "cannot open the file to restore", msg, msglen);
        code = RPC_INVALID_PARAMS;
    }
    if (code == 0 && store_make_temp(c->live, "restore", tmp, sizeof tmp, msg, msglen) != 0)
        code = STORE_RPC_STORAGE;
    if (code == 0 && copy_database(src, tmp, msg, msglen) != SQLITE_OK)
        code = STORE_RPC_STORAGE;
    sqlite3_close(src);
    if (code == 0)
        code = restore_prepare_copy(tmp, c->page_size, &max_id, msg, msglen);
    int64_t rows = code == 0 ? count_rows(tmp) : 0;
    if (code == 0 && !(*result = json_pack("{s:s,s:I,s:I}", "copy", tmp, "max_id",
                                           (json_int_t)max_id, "rows", (json_int_t)rows))) {
        snprintf(msg, msglen, "out of memory");
        code = RPC_INTERNAL;
    }
    if (code != 0 && code != RPC_INVALID_PARAMS)
        unlink(tmp);
    return code;
}

/* Loop: the copy is ready. Ids handed out from now on come after the
 * copy's, so no row recorded after the restore collides with a restored
 * one; then the writer swaps it in, behind the rows already queued. */
static void on_restore_prepared(void *arg, json_t *result, int code, const char *message) {
    struct restore_ctx *c = arg;
    if (code != 0)
        c->cb(c->arg, NULL, code, message);
    else
        store_swap_in_restore(c->s, json_string_value(json_object_get(result, "copy")),
                              json_integer_value(json_object_get(result, "max_id")),
                              json_integer_value(json_object_get(result, "rows")), c->cb, c->arg);
    json_decref(result);
}

void store_restore(struct store *s, const char *path, store_cb cb, void *arg) {
    struct restore_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->live = strdup(store_path(s))) || !(c->src = strdup(path))) {
        if (c)
            restore_ctx_free(c);
        cb(arg, NULL, RPC_INTERNAL, "out of memory");
        return;
    }
    c->s = s;
    c->page_size = store_page_size(s);
    c->cb = cb;
    c->arg = arg;
    /* ctx and callback argument are the same struct: it is freed after
     * on_restore_prepared ran. */
    store_job_submit(s, restore_prepare_job, c, restore_ctx_free, false, on_restore_prepared, c);
}
