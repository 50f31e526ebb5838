/* The history database's files, below SQLite (store_file.c). Paths are
 * absolute or relative to the working directory; err/msg get a sentence. */
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
/* True when path exists, is not empty and lacks SQLite's header. */
bool store_file_is_foreign(const char *path);
/* Renames path (with its -wal and -journal) to "<path>.corrupt-<UTC>",
 * named in moved_to. 0, or -1 (logged). */
int store_move_aside(const char *path, char *moved_to, size_t movedlen);
/* A new empty 0600 file "<near>.<tag>-XXXXXX", named in out. 0 or -1 with msg. */
int store_make_temp(const char *near, const char *tag, char *out, size_t outlen, char *msg,
                    size_t msglen);
/* fsync of a file, or of a directory when dir. 0 or -1. */
int store_fsync_path(const char *path, bool dir);
/* The size of path, 0 when it is missing. */
int64_t store_file_size(const char *path);
/* The database file plus its WAL. */
int64_t store_files_size(const char *path);
/* The current UTC time: "2026-11-23T19:20:58Z", or compact
 * "20261123T192058Z" for file names. */
void store_utc_stamp(char *out, size_t outlen, bool compact);

#endif
