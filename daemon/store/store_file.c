/* The history database's files, below SQLite: where the database lives,
 * its directory and mode, whether a file is SQLite at all, moving a
 * corrupt one aside, temporary files for copies. No SQLite and no store
 * state here, so the writer, backup and restore share them. */
#include "store_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/vfs.h>
#elif defined(__APPLE__)
#include <sys/mount.h>
#include <sys/param.h>
#endif

#include "config.h"
#include "log.h"
#include "store_time.h"

int64_t store_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

int64_t store_files_size(const char *path) {
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    return store_file_size(path) + store_file_size(wal);
}

static int default_path(char *out, size_t outlen, char *err, size_t errlen) {
    const char *home = config_home_dir();
    int n;
#ifdef __APPLE__
    if (!home) {
        snprintf(err, errlen, "cannot find the home directory: set SQLITE_DB_PATH");
        return -1;
    }
    n = snprintf(out, outlen, "%s/Library/Application Support/promptd/prompt_history.db", home);
#else
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && xdg[0] == '/') {
        n = snprintf(out, outlen, "%s/promptd/prompt_history.db", xdg);
    } else if (home) {
        n = snprintf(out, outlen, "%s/.local/share/promptd/prompt_history.db", home);
    } else {
        snprintf(err, errlen, "cannot find the home directory: set SQLITE_DB_PATH");
        return -1;
    }
#endif
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "the database path is too long: set SQLITE_DB_PATH");
        return -1;
    }
    return 0;
}

int store_resolve_path(const char *configured, const char *config_path, char *out, size_t outlen,
                       char *err, size_t errlen) {
    if (!configured || !configured[0])
        return default_path(out, outlen, err, errlen);
    return config_resolve_path("SQLITE_DB_PATH", configured, config_path, out, outlen, err, errlen);
}

/* mkdir -p with 0700 for the directories it creates (existing ones are
 * left as they are: the user chose them). */
int store_make_parent_dirs(const char *path, char *err, size_t errlen) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create the directory %s: %s", dir, strerror(errno));
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    return 0;
}

/* WAL needs shared memory between processes, which network filesystems do
 * not provide: the store warns, because a second machine writing corrupts
 * it. */
const char *store_network_fs_kind(const char *path) {
    char dir[PATH_MAX];
    config_dir_of(path, dir, sizeof dir);
    const char *kind = NULL;
#ifdef __linux__
    static const struct {
        unsigned long magic;
        const char *name;
    } network[] = {
        {0x6969, "NFS"},        {0x517B, "SMB"},
        {0xFF534D42, "CIFS"},   {0xFE534D42, "SMB2"},
        {0x5346414F, "AFS"},    {0x73757245, "Coda"},
        {0x564C, "NCP"},        {0x00C36400, "Ceph"},
        {0x01021997, "9P"},     {0x65735546, "FUSE (possibly a network mount)"},
        {0x0BD00BD0, "Lustre"}, {0x01161970, "GFS2"},
        {0x7461636F, "OCFS2"},
    };
    struct statfs sf;
    if (statfs(dir, &sf) == 0)
        for (size_t i = 0; i < sizeof network / sizeof *network; i++)
            if ((unsigned long)(unsigned)sf.f_type == network[i].magic)
                kind = network[i].name;
#elif defined(__APPLE__)
    static const char *const network[] = {"nfs", "smbfs", "afpfs", "webdav", "cifs", "ftp"};
    struct statfs sf;
    if (statfs(dir, &sf) == 0)
        for (size_t i = 0; i < sizeof network / sizeof *network; i++)
            if (strcmp(sf.f_fstypename, network[i]) == 0)
                kind = network[i];
#endif
    return kind;
}

/* Creates the file 0600 before SQLite does (SQLite would use 0644 minus
 * the umask), and tightens an adopted file that others can read: it holds
 * everything the user ever asked. The -wal/-shm files inherit its mode. */
void store_prepare_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        return;
    }
    if ((st.st_mode & 077) != 0 && chmod(path, 0600) == 0)
        log_info("%s was readable by others: its mode is now 0600", path);
}

/* The first 16 bytes of every SQLite database, NUL included. */
static const char store_sqlite_magic[16] = "SQLite format 3";

/* True when the file exists, is not empty and lacks SQLite's header. A
 * FIFO or device there is foreign too, and is never waited on. */
bool store_file_is_foreign(const char *path) {
    char head[16];
    int fd = store_open_regular(path, NULL, 0);
    if (fd < 0)
        return errno == EINVAL;
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    return n > 0 &&
           (n < (ssize_t)sizeof head || memcmp(head, store_sqlite_magic, sizeof head) != 0);
}

const char *store_file_kind(unsigned mode) {
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "a regular file";
    case S_IFDIR:
        return "a directory";
    case S_IFIFO:
        return "a FIFO";
    case S_IFCHR:
    case S_IFBLK:
        return "a device";
    case S_IFSOCK:
        return "a socket";
    case S_IFLNK:
        return "a symbolic link";
    default:
        return "not a file";
    }
}

int store_open_regular(const char *path, char *err, size_t errlen) {
    struct stat st;
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer
     * forever; a device could block or act on open. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        if (err)
            snprintf(err, errlen, "%s", strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        if (err)
            snprintf(err, errlen, "it is %s, not a regular file",
                     store_file_kind((unsigned)st.st_mode));
        close(fd);
        errno = EINVAL;
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

bool store_fd_is_sqlite(int fd) {
    char head[16];
    return pread(fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
           memcmp(head, store_sqlite_magic, sizeof head) == 0;
}

/* The files SQLite keeps next to a database. */
static const char *const store_side_suffixes[] = {"", "-wal", "-shm", "-journal"};

bool store_is_live_file(const char *path, const char *live) {
    struct stat target, st, dir_t, dir_l;
    char dir[PATH_MAX], name[PATH_MAX + 16];
    const char *base = strrchr(path, '/'), *live_base = strrchr(live, '/');
    base = base ? base + 1 : path;
    live_base = live_base ? live_base + 1 : live;
    bool exists = stat(path, &target) == 0;
    for (size_t i = 0; i < sizeof store_side_suffixes / sizeof *store_side_suffixes; i++) {
        snprintf(name, sizeof name, "%s%s", live, store_side_suffixes[i]);
        if (exists && stat(name, &st) == 0 && st.st_dev == target.st_dev &&
            st.st_ino == target.st_ino)
            return true;
    }
    /* By name in the same directory (however it is spelled): a -wal or
     * -journal that does not exist right now is still SQLite's. */
    config_dir_of(path, dir, sizeof dir);
    if (stat(dir, &dir_t) != 0)
        return false;
    config_dir_of(live, dir, sizeof dir);
    if (stat(dir, &dir_l) != 0 || dir_t.st_dev != dir_l.st_dev || dir_t.st_ino != dir_l.st_ino)
        return false;
    for (size_t i = 0; i < sizeof store_side_suffixes / sizeof *store_side_suffixes; i++) {
        snprintf(name, sizeof name, "%s%s", live_base, store_side_suffixes[i]);
        if (strcmp(base, name) == 0)
            return true;
    }
    return false;
}

int store_check_backup_target(const char *path, const char *live, bool overwrite, char *err,
                              size_t errlen) {
    struct stat st;
    if (store_is_live_file(path, live)) {
        snprintf(err, errlen,
                 "%s is the live history database (or one of its -wal, -shm, -journal files): "
                 "back up to another file.",
                 path);
        return -1;
    }
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot back up to %s: %s.", path, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errlen,
                 "%s is a symbolic link: give the path of the file itself (a backup never "
                 "replaces a link).",
                 path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is %s, not a regular file: give the path of a new file.", path,
                 store_file_kind((unsigned)st.st_mode));
        return -1;
    }
    if (!overwrite) {
        snprintf(err, errlen,
                 "%s already exists: choose a new file name, or pass overwrite: true "
                 "(promptctl db backup --force) to replace an older backup.",
                 path);
        return -1;
    }
    int fd = store_open_regular(path, NULL, 0);
    bool sqlite = fd >= 0 && store_fd_is_sqlite(fd);
    if (fd >= 0)
        close(fd);
    if (!sqlite) {
        snprintf(err, errlen,
                 "%s is not a SQLite database, so a backup will not replace it: choose another "
                 "file name.",
                 path);
        return -1;
    }
    return 0;
}

/* Moves path (and its -wal and -journal) to "<path>.corrupt-<UTC time>",
 * never deleting anything but the -shm index, which is rebuilt. */
int store_move_aside(const char *path, char *moved_to, size_t movedlen) {
    char stamp[32], from[PATH_MAX + 16], to[PATH_MAX + 80];
    static const char *const suffixes[] = {"-wal", "-journal"};
    store_time_utc_stamp(stamp, sizeof stamp, true);
    snprintf(moved_to, movedlen, "%s.corrupt-%s", path, stamp);
    if (rename(path, moved_to) != 0) {
        log_error("cannot move the corrupt database %s aside: %s", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(from, sizeof from, "%s%s", path, suffixes[i]);
        snprintf(to, sizeof to, "%s%s", moved_to, suffixes[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            log_warn("cannot move %s aside: %s", from, strerror(errno));
    }
    snprintf(from, sizeof from, "%s-shm", path);
    unlink(from);
    return 0;
}

int store_fsync_path(const char *path, bool dir) {
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* A temporary 0600 file next to `near` (same filesystem: rename is
 * atomic). Returns 0 with the name in out. */
int store_make_temp(const char *near, const char *tag, char *out, size_t outlen, char *err,
                    size_t errlen) {
    int n = snprintf(out, outlen, "%s.%s-XXXXXX", near, tag);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "the path is too long");
        return -1;
    }
    int fd = mkstemp(out); /* mode 0600 */
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file next to %s: %s", near, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

/* Appends text to out (NUL-terminated, outlen bytes), truncating. */
static void append(char *out, size_t outlen, const char *text) {
    size_t used = strlen(out), n = strlen(text);
    if (used + 1 >= outlen)
        return;
    if (n > outlen - used - 1)
        n = outlen - used - 1;
    memcpy(out + used, text, n);
    out[used + n] = '\0';
}

/* Adds name to cmd, a shell command that starts with verb ("chmod 600"). */
static void add_to_command(char *cmd, size_t cmdlen, const char *verb, const char *name) {
    if (!cmd[0])
        append(cmd, cmdlen, verb);
    append(cmd, cmdlen, " ");
    append(cmd, cmdlen, name);
}

/* Appends "`cmd` why" to out, after a "; " when out has something. */
static void append_fix(char *out, size_t outlen, const char *cmd, const char *why) {
    if (!cmd[0])
        return;
    append(out, outlen, out[0] ? "; `" : "`");
    append(out, outlen, cmd);
    append(out, outlen, "` ");
    append(out, outlen, why);
}

void store_file_write_fix(const char *path, char *out, size_t outlen) {
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char name[PATH_MAX + 8];
    char files_cmd[1024] = "", dir_cmd[PATH_MAX + 16] = "", flag_cmd[1024] = "";
    bool read_only_fs = false;
    out[0] = '\0';
    for (size_t i = 0; i <= sizeof suffixes / sizeof *suffixes; i++) {
        bool is_dir = i == sizeof suffixes / sizeof *suffixes;
        if (is_dir)
            config_dir_of(path, name, sizeof name);
        else
            snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        if (access(name, F_OK) != 0 || access(name, is_dir ? W_OK | X_OK : W_OK) == 0)
            continue;
        if (errno == EPERM) /* the immutable flag, which even root obeys */
            add_to_command(flag_cmd, sizeof flag_cmd, "chattr -i", name);
        else if (errno == EROFS)
            read_only_fs = true;
        else if (is_dir)
            add_to_command(dir_cmd, sizeof dir_cmd, "chmod 700", name);
        else
            add_to_command(files_cmd, sizeof files_cmd, "chmod 600", name);
    }
    if (read_only_fs)
        append(out, outlen, "it is on a read-only filesystem");
    append_fix(out, outlen, files_cmd,
               "fixes the permissions (SQLite gives a new -wal and -shm the database's mode)");
    append_fix(out, outlen, dir_cmd, "makes its directory writable");
    append_fix(out, outlen, flag_cmd, "lifts the immutable flag");
}
