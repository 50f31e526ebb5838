/* db.backup and db.restore. Backup copies a consistent snapshot on the
 * thread pool while the writer goes on. Restore checks the file and copies
 * its rows, and only its rows, into a fresh database built by the embedded
 * migrations on the thread pool; the writer then swaps it in
 * (store_swap_in_restore), behind the rows already queued. Nothing of the
 * file's own schema (triggers, views, indexes, other tables) survives, so
 * a hostile file cannot make the daemon run its SQL. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "store.h"
#include "store_file.h"
#include "store_jobs.h"
#include "store_migrate.h"
#include "store_sqlite.h"
#include "store_writer.h"
#include "xalloc.h"

/* ---- Backup ------------------------------------------------------------ */

/* How often (in SQLite virtual machine steps) a long statement of the
 * restore looks whether the request was cancelled. */
#define RESTORE_PROGRESS_STEPS 10000
/* The largest id a restored file may hold: ids continue after it, and an
 * int64 must never overflow however long the daemon runs (2^53 also keeps
 * ids exact in JSON clients that read numbers as doubles). */
#define RESTORE_MAX_ID (INT64_C(1) << 53)
/* Bytes per read while copying the file to restore. */
#define RESTORE_COPY_CHUNK (256 * 1024)
/* Free space left over after a restore's copy and fresh database: room
 * for the live history's own writes meanwhile. */
#define RESTORE_SPACE_MARGIN (64ULL << 20)

/* SQLite's progress handler: a non-zero return interrupts the statement. */
static int cancel_progress(void *arg) {
    return store_cancel_asked(arg);
}

/* Copies src's main database into the file at path with the backup API in
 * one step (one read transaction on src: a consistent snapshot, while the
 * writer goes on), then makes the copy a self-contained rollback-journal
 * file. Returns SQLITE_OK or a code with err. */
static int copy_database(sqlite3 *src, const char *path, char *err, size_t errlen) {
    sqlite3 *dst = NULL;
    int rc = store_sqlite_open(path, SQLITE_OPEN_READWRITE, &dst);
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
        store_sqlite_msg(dst, rc, "cannot copy the database", err, errlen);
        sqlite3_close(dst);
        return rc;
    }
    sqlite3_close(dst);
    /* The copy carries the source's WAL flag in its header; reopen and
     * switch it to a plain file so it travels as one file. */
    rc = store_sqlite_open(path, SQLITE_OPEN_READWRITE, &dst);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        store_sqlite_msg(dst, rc, "cannot finish the copy", err, errlen);
    sqlite3_close(dst);
    return rc;
}

static int64_t count_rows(const char *path) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (store_sqlite_open(path, SQLITE_OPEN_READONLY, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM prompt_history", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

struct backup_ctx {
    char *path; /* owned: the target */
    char *live; /* owned: the live database's path */
    bool overwrite;
    struct store_cancel *cancel; /* borrowed until the callback */
};

static void backup_ctx_free(void *p) {
    struct backup_ctx *c = p;
    free(c->path);
    free(c->live);
    free(c);
}

/* Puts the finished copy tmp at path. Without overwrite, link() makes
 * "only if nothing is there" atomic (a file that appeared since the check
 * is not replaced); a filesystem without hard links falls back to checking
 * again and renaming. With overwrite the target is checked again (still an
 * older backup) just before the rename. 0, or a protocol code with err. */
static int backup_install(const struct backup_ctx *c, const char *tmp, char *err, size_t errlen) {
    if (!c->overwrite) {
        if (link(tmp, c->path) == 0) {
            unlink(tmp);
            return 0;
        }
        if (errno == EEXIST) {
            store_check_backup_target(c->path, c->live, false, err, errlen);
            return RPC_INVALID_PARAMS;
        }
    }
    if (store_check_backup_target(c->path, c->live, c->overwrite, err, errlen) != 0)
        return RPC_INVALID_PARAMS;
    if (rename(tmp, c->path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", c->path, strerror(errno));
        return STORE_RPC_STORAGE;
    }
    return 0;
}

static int backup_job(sqlite3 *src, void *ctx, json_t **result, char *err, size_t errlen) {
    struct backup_ctx *c = ctx;
    char tmp[PATH_MAX + 32], dir[PATH_MAX];
    struct stat st;
    if (store_check_backup_target(c->path, c->live, c->overwrite, err, errlen) != 0)
        return RPC_INVALID_PARAMS;
    if (store_make_temp(c->path, "tmp", tmp, sizeof tmp, err, errlen) != 0)
        return RPC_INVALID_PARAMS;
    int code = copy_database(src, tmp, err, errlen) == SQLITE_OK ? 0 : STORE_RPC_STORAGE;
    int64_t rows = code == 0 ? count_rows(tmp) : -1;
    if (code == 0 && store_fsync_path(tmp, false) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        code = STORE_RPC_STORAGE;
    }
    /* Putting the file in place is the point of no return. */
    if (code == 0 && !store_cancel_commit(c->cancel)) {
        snprintf(err, errlen, "The backup was cancelled; %s was not written.", c->path);
        code = RPC_CANCELLED;
    }
    if (code == 0)
        code = backup_install(c, tmp, err, errlen);
    if (code != 0) {
        unlink(tmp);
        return code;
    }
    config_dir_of(c->path, dir, sizeof dir);
    store_fsync_path(dir, true);
    if (stat(c->path, &st) != 0)
        st.st_size = 0;
    *result = json_pack("{s:s,s:I,s:I}", "path", c->path, "bytes", (json_int_t)st.st_size, "rows",
                        (json_int_t)(rows < 0 ? 0 : rows));
    return 0;
}

void store_backup(struct store *s, const char *path, bool overwrite, struct store_cancel *cancel,
                  store_cb cb, void *arg) {
    struct backup_ctx *c = xcalloc(1, sizeof *c);
    c->path = xstrdup(path);
    c->live = xstrdup(store_path(s));
    c->overwrite = overwrite;
    c->cancel = cancel;
    store_job_submit(s, backup_job, c, backup_ctx_free, true, cb, arg);
}

/* ---- Restore ----------------------------------------------------------- */

struct restore_ctx {
    struct store *s;             /* borrowed; the job holds a reference */
    char *live;                  /* owned: the live database's path */
    int page_size;               /* the live file's: the backup API needs them equal under WAL */
    char *src;                   /* owned: the file to restore */
    struct store_cancel *cancel; /* borrowed until the callback */
    store_cb cb;
    void *arg;
};

static void restore_ctx_free(void *p) {
    struct restore_ctx *c = p;
    free(c->live);
    free(c->src);
    free(c);
}

/* Removes a private database copy and the files SQLite made next to it. */
static void unlink_db(const char *path) {
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char name[PATH_MAX + 48];
    if (!path[0])
        return;
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        unlink(name);
    }
}

/* Copies the bytes of the open file in to the file at out. 0, or a
 * protocol code with err (RPC_CANCELLED when asked to stop). */
static int copy_fd_to(int in, const char *out, struct store_cancel *cancel, char *err,
                      size_t errlen) {
    int fd = open(out, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    int code = 0;
    if (fd < 0) {
        snprintf(err, errlen, "cannot copy the file to restore: %s", strerror(errno));
        return STORE_RPC_STORAGE;
    }
    char *buf = xmalloc(RESTORE_COPY_CHUNK);
    for (ssize_t n; code == 0 && (n = read(in, buf, RESTORE_COPY_CHUNK)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read the file to restore: %s", strerror(errno));
            code = RPC_INVALID_PARAMS;
        }
        for (ssize_t off = 0, w; code == 0 && off < n; off += w) {
            if ((w = write(fd, buf + off, (size_t)(n - off))) < 0) {
                snprintf(err, errlen, "cannot copy the file to restore: %s", strerror(errno));
                code = STORE_RPC_STORAGE;
            }
        }
        if (code == 0 && store_cancel_asked(cancel)) {
            snprintf(err, errlen, "The restore was cancelled; the history is unchanged.");
            code = RPC_CANCELLED;
        }
    }
    if (close(fd) != 0 && code == 0) {
        snprintf(err, errlen, "cannot copy the file to restore: %s", strerror(errno));
        code = STORE_RPC_STORAGE;
    }
    free(buf);
    return code;
}

/* A 4-byte big-endian number of the SQLite header. */
static uint32_t header_u32(const unsigned char *h) {
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Before a byte is copied: the file must be no larger than the database
 * its header describes (a file padded with holes would otherwise be
 * copied in full next to the live history), and the directory of the
 * live history must have room for the copy and the fresh database built
 * from it. 0, or -1 with err. */
static int restore_check_size(int fd, const struct restore_ctx *c, char *err, size_t errlen) {
    struct stat st;
    unsigned char h[100];
    if (fstat(fd, &st) != 0 || pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h) {
        snprintf(err, errlen, "%s cannot be restored: its header cannot be read.", c->src);
        return -1;
    }
    /* Offset 16: page size (1 means 65536); 28: pages, valid when the
     * change counter (24) equals the version-valid-for number (92). */
    uint64_t page = (uint64_t)h[16] << 8 | h[17];
    page = page == 1 ? 65536 : page;
    uint64_t pages = header_u32(h + 28);
    bool valid = header_u32(h + 24) == header_u32(h + 92) && pages > 0 && page >= 512;
    if (valid && (uint64_t)st.st_size > (pages + 1) * page) {
        snprintf(err, errlen,
                 "%s cannot be restored: it is %lld bytes, while the database it holds is %llu "
                 "bytes; it is not a file SQLite wrote (a backup from promptctl db backup is).",
                 c->src, (long long)st.st_size, (unsigned long long)(pages * page));
        return -1;
    }
    char dir[PATH_MAX];
    config_dir_of(c->live, dir, sizeof dir);
    struct statvfs vfs;
    uint64_t need = 2 * (uint64_t)st.st_size + RESTORE_SPACE_MARGIN;
    if (statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < need) {
        snprintf(err, errlen,
                 "%s cannot be restored: it needs about %llu MB free next to the history (its "
                 "copy and the database built from it) and %s has %llu MB; free some space.",
                 c->src, (unsigned long long)(need >> 20), dir,
                 (unsigned long long)(((uint64_t)vfs.f_bavail * vfs.f_frsize) >> 20));
        return -1;
    }
    return 0;
}

/* Takes a private copy of the file to restore (and of its -wal, so the
 * last transactions of a database in WAL mode come too) next to the live
 * database, opened only as a regular file and never waiting on it. From
 * here on nothing reads the user's path again: the file cannot change or
 * be swapped under the checks, and SQLite never writes next to it. */
static int restore_take_source(const struct restore_ctx *c, char *copy, size_t copylen, char *err,
                               size_t errlen) {
    char why[256], wal[PATH_MAX + 8], copy_wal[PATH_MAX + 48];
    if (store_is_live_file(c->src, c->live)) {
        snprintf(err, errlen,
                 "%s is the live history database: give the path of a backup (promptctl db "
                 "backup FILE makes one).",
                 c->src);
        return RPC_INVALID_PARAMS;
    }
    int fd = store_open_regular(c->src, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "%s cannot be restored: %s.", c->src, why);
        return RPC_INVALID_PARAMS;
    }
    if (!store_fd_is_sqlite(fd)) {
        close(fd);
        snprintf(err, errlen, "%s cannot be restored: it is not a SQLite database.", c->src);
        return RPC_INVALID_PARAMS;
    }
    if (restore_check_size(fd, c, err, errlen) != 0) {
        close(fd);
        return RPC_INVALID_PARAMS;
    }
    int code = store_make_temp(c->live, "restore-src", copy, copylen, err, errlen) == 0
                   ? copy_fd_to(fd, copy, c->cancel, err, errlen)
                   : STORE_RPC_STORAGE;
    close(fd);
    snprintf(wal, sizeof wal, "%s-wal", c->src);
    if (code == 0 && (fd = store_open_regular(wal, NULL, 0)) >= 0) {
        snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);
        int out = open(copy_wal, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0) {
            snprintf(err, errlen, "cannot copy %s: %s", wal, strerror(errno));
            code = STORE_RPC_STORAGE;
        } else {
            close(out);
            code = copy_fd_to(fd, copy_wal, c->cancel, err, errlen);
        }
        close(fd);
    }
    return code;
}

/* The file's own prompt_history must be an ordinary table (a virtual one
 * would run its module's code when read). */
static int check_plain_table(sqlite3 *src, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(src,
                                "SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'prompt_history'",
                                -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *sql = (const char *)sqlite3_column_text(st, 0);
        if (!sql || sqlite3_strnicmp(sql, "CREATE TABLE", 12) != 0)
            snprintf(err, errlen, "its prompt_history is not an ordinary table");
    }
    sqlite3_finalize(st);
    return err[0] ? -1 : 0;
}

/* integrity_check and the schema verdict of the file to restore; *version
 * is its schema version. */
static int restore_check_source(sqlite3 *src, const char *path, int *version, char *err,
                                size_t errlen) {
    sqlite3_stmt *st = NULL;
    struct store_migrate_info info;
    char why[384] = "";
    int rc = sqlite3_prepare_v2(src, "PRAGMA integrity_check(5)", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (!line || strcmp(line, "ok") != 0)
            snprintf(why, sizeof why, "it fails the integrity check (%s)", line ? line : "?");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_INTERRUPT)
        return RPC_CANCELLED;
    if (rc != SQLITE_OK)
        store_sqlite_msg(src, rc, "it cannot be read", why, sizeof why);
    else if (!why[0] && store_migrate_inspect(src, (size_t)store_migrate_latest(), &info, why,
                                              sizeof why) != 0)
        ; /* why says it */
    else if (!why[0] && info.kind == STORE_MIGRATE_EMPTY)
        snprintf(why, sizeof why, "it holds no prompt history");
    else if (!why[0] && (info.kind == STORE_MIGRATE_NEWER || info.kind == STORE_MIGRATE_FOREIGN))
        ; /* store_migrate_inspect explained it in why */
    else if (!why[0] && check_plain_table(src, why, sizeof why) == 0) {
        *version = info.version;
        return 0;
    }
    snprintf(err, errlen, "%s cannot be restored: %s.", path, why);
    return RPC_INVALID_PARAMS;
}

/* Whether the attached file's prompt_history has column name. */
static int src_has_column(sqlite3 *db, const char *name, bool *has) {
    sqlite3_stmt *st = NULL;
    /* hidden = 0: a plain column. A generated one would run the file's
     * expression when read. */
    int rc = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM pragma_table_xinfo('prompt_history', 'src') "
                                "WHERE name = ?1 AND hidden = 0",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        *has = rc == SQLITE_ROW;
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The columns the fresh table has at its version (quality_score, which
 * is generated, is not among them), each of which the file must have too:
 * "a, b, c" into cols. 0, or -1 with why. */
static int restore_columns(sqlite3 *db, char *cols, size_t colslen, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    size_t used = 0;
    cols[0] = '\0';
    int rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('prompt_history', 'main')",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        bool has = false;
        if (!name || (rc = src_has_column(db, name, &has)) != SQLITE_OK)
            break;
        if (!has) {
            snprintf(err, errlen, "its prompt_history table has no plain column \"%s\"", name);
            break;
        }
        int n = snprintf(cols + used, colslen - used, "%s\"%s\"", used ? ", " : "", name);
        if (n < 0 || (size_t)n >= colslen - used) {
            snprintf(err, errlen, "its prompt_history table has too many columns");
            break;
        }
        used += (size_t)n;
    }
    sqlite3_finalize(st);
    if (!err[0] && rc != SQLITE_OK)
        snprintf(err, errlen, "its columns cannot be read: %s", sqlite3_errmsg(db));
    return err[0] ? -1 : 0;
}

/* The largest id the file used: its rows and its AUTOINCREMENT counter
 * (a legacy file may have no sqlite_sequence, then the rows alone). */
static int64_t src_max_id(sqlite3 *db) {
    static const char *const queries[] = {
        "SELECT max(coalesce((SELECT max(id) FROM src.prompt_history), 0), "
        "coalesce((SELECT max(seq) FROM src.sqlite_sequence WHERE name = 'prompt_history' AND "
        "typeof(seq) = 'integer'), 0))",
        "SELECT coalesce(max(id), 0) FROM src.prompt_history",
    };
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        sqlite3_stmt *st = NULL;
        int64_t max = -1;
        if (sqlite3_prepare_v2(db, queries[i], -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            max = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (max >= 0)
            return max;
    }
    return -1;
}

/* The text columns every version of the table has, with the most bytes
 * promptd stores in each (docs/limits.md): a row past them could not be
 * paged, exported or shown, so a file holding one is refused whole. */
static const struct {
    const char *column;
    long long max_bytes;
} restore_column_bounds[] = {
    {"original_idea", 4LL * LIMIT_IDEA_MAX_CHARS},
    {"context", 4LL * LIMIT_CONTEXT_MAX_CHARS},
    {"improved_prompt", LIMIT_RESULT_FIELD_BYTES},
    {"role", LIMIT_RESULT_FIELD_BYTES},
    {"directive", LIMIT_RESULT_FIELD_BYTES},
    {"framework", LIMIT_RESULT_FIELD_BYTES},
    {"reasoning", LIMIT_RESULT_FIELD_BYTES},
    /* the guardrails' JSON text: quotes and escapes on top of the bound */
    {"guardrails", 2LL * LIMIT_RESULT_FIELD_BYTES},
};

/* 0 when every row has an id of at least 1 and fields within bounds;
 * else RPC_INVALID_PARAMS with the first offending row in err. */
static int restore_check_rows(sqlite3 *db, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int code = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM src.prompt_history WHERE id < 1 LIMIT 1", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        snprintf(err, errlen, "row %lld has an id below 1, which promptd never writes",
                 (long long)sqlite3_column_int64(st, 0));
        code = RPC_INVALID_PARAMS;
    }
    sqlite3_finalize(st);
    for (size_t i = 0;
         code == 0 && i < sizeof restore_column_bounds / sizeof *restore_column_bounds; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT id, length(CAST(%s AS BLOB)) FROM src.prompt_history WHERE "
                 "length(CAST(%s AS BLOB)) > %lld LIMIT 1",
                 restore_column_bounds[i].column, restore_column_bounds[i].column,
                 restore_column_bounds[i].max_bytes);
        st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            snprintf(err, errlen, "row %lld's %s is %lld bytes, more than the %lld promptd keeps",
                     (long long)sqlite3_column_int64(st, 0), restore_column_bounds[i].column,
                     (long long)sqlite3_column_int64(st, 1), restore_column_bounds[i].max_bytes);
            code = RPC_INVALID_PARAMS;
        }
        sqlite3_finalize(st);
    }
    return code;
}

/* Copies the rows of the attached file ("src") into the fresh table, and
 * carries its AUTOINCREMENT counter so no id it ever used comes back. */
static int restore_copy_rows(sqlite3 *db, char *err, size_t errlen) {
    char cols[1024], sql[2 * sizeof cols + 512];
    if (restore_columns(db, cols, sizeof cols, err, errlen) != 0)
        return RPC_INVALID_PARAMS;
    int code = restore_check_rows(db, err, errlen);
    if (code != 0)
        return code;
    int64_t max_id = src_max_id(db);
    if (max_id < 0) {
        snprintf(err, errlen, "its ids cannot be read: %s", sqlite3_errmsg(db));
        return RPC_INVALID_PARAMS;
    }
    if (max_id > RESTORE_MAX_ID) {
        snprintf(err, errlen, "its ids go up to %lld, more than promptd can continue from (%lld)",
                 (long long)max_id, (long long)RESTORE_MAX_ID);
        return RPC_INVALID_PARAMS;
    }
    snprintf(sql, sizeof sql,
             "BEGIN; INSERT INTO main.prompt_history(%s) SELECT %s FROM src.prompt_history "
             "ORDER BY id; UPDATE main.sqlite_sequence SET seq = max(seq, %lld) WHERE name = "
             "'prompt_history'; INSERT INTO main.sqlite_sequence(name, seq) SELECT "
             "'prompt_history', %lld WHERE %lld > 0 AND NOT EXISTS (SELECT 1 FROM "
             "main.sqlite_sequence WHERE name = 'prompt_history'); COMMIT",
             cols, cols, (long long)max_id, (long long)max_id, (long long)max_id);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    code = rc == SQLITE_INTERRUPT ? RPC_CANCELLED : RPC_INVALID_PARAMS;
    snprintf(err, errlen, "its rows cannot be copied: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return code;
}

/* Builds the fresh database at fresh: the live file's page size, the
 * embedded migrations up to the file's version (at least 1: the table),
 * its rows, then the remaining migrations (which adopt a legacy file's
 * rows exactly as at start-up). *max_id and *rows describe the result. */
static int restore_build(const struct restore_ctx *c, const char *fresh, const char *src_copy,
                         int version, int64_t *max_id, int64_t *rows, char *err, size_t errlen) {
    struct store_cancel *cancel = c->cancel;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[64], why[400] = "";
    int code = 0;
    /* Trusted: its schema is the migrations'; the attached file's objects
     * never run (only plain columns of a plain table are read). */
    int rc = store_sqlite_open_own(fresh, SQLITE_OPEN_READWRITE, &db);
    snprintf(sql, sizeof sql, "PRAGMA page_size = %d", c->page_size);
    /* A temporary file, unlinked on any failure: no fsync needed. */
    if (rc == SQLITE_OK && (rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot prepare the restore", err, errlen);
        sqlite3_close(db);
        return STORE_RPC_STORAGE;
    }
    sqlite3_progress_handler(db, RESTORE_PROGRESS_STEPS, cancel_progress, cancel);
    size_t upto = (size_t)(version > 1 ? version : 1);
    if (store_migrate_run_files(db, embedded_migrations, upto, NULL, NULL, err, errlen) != 0) {
        sqlite3_close(db);
        return store_cancel_asked(cancel) ? RPC_CANCELLED : STORE_RPC_STORAGE;
    }
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS src", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, src_copy, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    } else {
        rc = sqlite3_errcode(db);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        store_sqlite_msg(db, rc, "cannot read the file to restore", err, errlen);
        code = STORE_RPC_STORAGE;
    } else if ((code = restore_copy_rows(db, why, sizeof why)) != 0) {
        snprintf(err, errlen, "%s cannot be restored: %s.", c->src, why);
    } else if (sqlite3_exec(db, "DETACH DATABASE src", NULL, NULL, NULL) != SQLITE_OK ||
               store_migrate_run(db, NULL, NULL, err, errlen) != 0) {
        if (!err[0])
            store_sqlite_msg(db, sqlite3_errcode(db), "cannot prepare the restore", err, errlen);
        code = store_cancel_asked(cancel) ? RPC_CANCELLED : STORE_RPC_STORAGE;
    }
    if (code == 0) {
        *max_id = store_sqlite_max_id(db);
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM prompt_history", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            *rows = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return code;
}

/* Checks the private copy of the file: opens it (recovering its WAL,
 * which only ever writes next to the copy), integrity and schema. */
static int restore_inspect(const struct restore_ctx *c, const char *src_copy, int *version,
                           char *err, size_t errlen) {
    sqlite3 *src = NULL;
    int rc = store_sqlite_open(src_copy, SQLITE_OPEN_READWRITE, &src);
    int code;
    if (rc != SQLITE_OK) {
        store_sqlite_msg(src, rc, "cannot open the file to restore", err, errlen);
        code = RPC_INVALID_PARAMS;
    } else {
        sqlite3_progress_handler(src, RESTORE_PROGRESS_STEPS, cancel_progress, c->cancel);
        code = restore_check_source(src, c->src, version, err, errlen);
    }
    sqlite3_close(src);
    return code;
}

/* Thread pool: copy the file aside, check it, build a fresh database from
 * its rows. The live data is untouched until the writer swaps it in. */
static int restore_prepare_job(sqlite3 *unused, void *ctx, json_t **result, char *err,
                               size_t errlen) {
    struct restore_ctx *c = ctx;
    char src_copy[PATH_MAX + 32] = "", fresh[PATH_MAX + 32] = "";
    int64_t max_id = 0, rows = 0;
    int version = 0;
    int code = restore_take_source(c, src_copy, sizeof src_copy, err, errlen);
    if (code == 0)
        code = restore_inspect(c, src_copy, &version, err, errlen);
    if (code == 0 && store_make_temp(c->live, "restore", fresh, sizeof fresh, err, errlen) != 0)
        code = STORE_RPC_STORAGE;
    if (code == 0)
        code = restore_build(c, fresh, src_copy, version, &max_id, &rows, err, errlen);
    unlink_db(src_copy);
    if (code == 0 && store_cancel_asked(c->cancel))
        code = RPC_CANCELLED;
    if (code == RPC_CANCELLED)
        snprintf(err, errlen, "The restore was cancelled; the history is unchanged.");
    if (code == 0)
        *result = json_pack("{s:s,s:I,s:I}", "copy", fresh, "max_id", (json_int_t)max_id, "rows",
                            (json_int_t)rows);
    if (code != 0)
        unlink_db(fresh);
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
                              json_integer_value(json_object_get(result, "rows")), c->cancel, c->cb,
                              c->arg);
    json_decref(result);
}

void store_restore(struct store *s, const char *path, struct store_cancel *cancel, store_cb cb,
                   void *arg) {
    struct restore_ctx *c = xcalloc(1, sizeof *c);
    c->live = xstrdup(store_path(s));
    c->src = xstrdup(path);
    c->s = s;
    c->page_size = store_page_size(s);
    c->cancel = cancel;
    c->cb = cb;
    c->arg = arg;
    /* ctx and callback argument are the same struct: it is freed after
     * on_restore_prepared ran. */
    store_job_submit(s, restore_prepare_job, c, restore_ctx_free, false, on_restore_prepared, c);
}
