/* The history database's files, below SQLite (store_file.c). Paths are
 * absolute or relative to the working directory; err gets a sentence. */
#ifndef PROMPTD_STORE_FILE_H
#define PROMPTD_STORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Resolves the database path as store_open does: SQLITE_DB_PATH as
 * config_resolve_path does (relative to config_path, the file that set
 * it, when given), or the platform default. Returns 0 or -1 with err. */
int store_resolve_path(const char *configured, const char *config_path, char *out, size_t outlen,
                       char *err, size_t errlen);
/* mkdir -p of path's directory, 0700 for what it creates. 0 or -1 with err. */
int store_make_parent_dirs(const char *path, char *err, size_t errlen);
/* The kind of network filesystem path's directory is on ("NFS", ...), or
 * NULL for a local one. */
const char *store_network_fs_kind(const char *path);
/* Creates path 0600 when missing; tightens it to 0600 when others can read it. */
void store_prepare_file(const char *path);
/* True when path exists, is not empty and lacks SQLite's header (or is
 * not a regular file). */
bool store_file_is_foreign(const char *path);
/* Opens path for reading without ever blocking on it (a FIFO, a device)
 * and only when it is a regular file. Returns the fd (blocking again), or
 * -1 with errno (EINVAL: not a regular file) and, when err is given, the
 * reason ("it is a FIFO, not a regular file", or strerror). */
int store_open_regular(const char *path, char *err, size_t errlen);
/* "a FIFO", "a directory", "a device", ... for a st_mode. */
const char *store_file_kind(unsigned mode);
/* True when fd starts with SQLite's 16-byte header. */
bool store_fd_is_sqlite(int fd);
/* True when path is the live database live or one of its -wal, -shm,
 * -journal files: the same inode, or that name in the same directory. */
bool store_is_live_file(const char *path, const char *live);
/* Whether db.backup may write path: refuses (0 or -1 with a sentence in
 * err) the live database and its files, a symbolic link, anything not a
 * regular file, an existing file unless overwrite, and then one that is
 * not a SQLite database. */
int store_check_backup_target(const char *path, const char *live, bool overwrite, char *err,
                              size_t errlen);
/* Renames path (with its -wal and -journal) to "<path>.corrupt-<UTC>",
 * named in moved_to. 0, or -1 (logged). */
int store_move_aside(const char *path, char *moved_to, size_t movedlen);
/* A new empty 0600 file "<near>.<tag>-XXXXXX", named in out. 0 or -1 with err. */
int store_make_temp(const char *near, const char *tag, char *out, size_t outlen, char *err,
                    size_t errlen);
/* fsync of a file, or of a directory when dir. 0 or -1. */
int store_fsync_path(const char *path, bool dir);
/* The size of path, 0 when it is missing. */
int64_t store_file_size(const char *path);
/* The database file plus its WAL. */
int64_t store_files_size(const char *path);
/* Why the files of the database at path cannot be written, as what the
 * user runs to fix it: "`chmod 600 FILE FILE-wal` fixes the permissions
 * (...)", "`chattr -i FILE` lifts the immutable flag", "it is on a
 * read-only filesystem"; the database, its -wal and -shm, and its
 * directory are looked at. Empty when this process can write them all. */
void store_file_write_fix(const char *path, char *out, size_t outlen);

#endif
