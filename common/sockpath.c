#include "sockpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "promptd_limits.h"

static int default_path(char *out, size_t outlen) {
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    if (runtime && *runtime)
        return snprintf(out, outlen, "%s/promptd/promptd.sock", runtime);
#ifdef __APPLE__
    /* A launchd agent may run without TMPDIR; the per-user temporary
     * directory it would name is the same, so ask for it directly. */
    char user_tmp[1024];
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) {
        size_t n = confstr(_CS_DARWIN_USER_TEMP_DIR, user_tmp, sizeof user_tmp);
        tmp = n > 0 && n <= sizeof user_tmp ? user_tmp : NULL;
    }
    if (tmp && *tmp) {
        size_t n = strlen(tmp);
        const char *sep = tmp[n - 1] == '/' ? "" : "/";
        return snprintf(out, outlen, "%s%spromptd-%u/promptd.sock", tmp, sep, (unsigned)getuid());
    }
#endif
    return snprintf(out, outlen, "/tmp/promptd-%u/promptd.sock", (unsigned)getuid());
}

static int too_long(int n, char *err, size_t errlen) {
    snprintf(err, errlen,
             "socket path is too long (%d bytes; a Unix socket path must be under %d): "
             "choose a shorter one with --socket or PROMPTD_SOCKET",
             n, LIMIT_SOCKET_PATH_BYTES);
    return -1;
}

int sockpath_resolve(const char *explicit_path, const char *config_path, char *out, size_t outlen,
                     char *err, size_t errlen) {
    const char *env = getenv("PROMPTD_SOCKET");
    int n;
    if (explicit_path && *explicit_path)
        n = snprintf(out, outlen, "%s", explicit_path);
    else if (env && *env)
        n = snprintf(out, outlen, "%s", env);
    else if (config_path && *config_path)
        n = snprintf(out, outlen, "%s", config_path);
    else
        n = default_path(out, outlen);
    if (n < 0 || (size_t)n >= outlen || (size_t)n >= LIMIT_SOCKET_PATH_BYTES)
        return too_long(n, err, errlen);
    return 0;
}

int sockpath_default(char *out, size_t outlen, char *err, size_t errlen) {
    int n = default_path(out, outlen);
    if (n < 0 || (size_t)n >= outlen || (size_t)n >= LIMIT_SOCKET_PATH_BYTES)
        return too_long(n, err, errlen);
    return 0;
}

/* The sentence's second half: where else a socket can go. */
#define SOCKPATH_ELSEWHERE                                                                         \
    "or choose a directory of your own with --socket or PROMPTD_SOCKET (or set XDG_RUNTIME_DIR)"

/* The directory part of socket_path into dir ("." for a bare name). */
static void sockpath_dir_of(const char *socket_path, char *dir, size_t dirlen) {
    snprintf(dir, dirlen, "%s", socket_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, dirlen, ".");
    else
        *(slash == dir ? slash + 1 : slash) = '\0';
}

/* Whoever may write into the socket's directory can replace the socket
 * with their own and read what clients send: the directory must be a real
 * one (not a symbolic link someone else can point elsewhere), ours, and
 * closed to everyone else. st comes from lstat. */
static int sockpath_check_dir(const char *dir, const struct stat *st, char *err, size_t errlen) {
    if (S_ISLNK(st->st_mode)) {
        snprintf(err, errlen,
                 "the socket directory %s is a symbolic link, which another user may control: "
                 "remove the link, " SOCKPATH_ELSEWHERE,
                 dir);
        return -1;
    }
    if (!S_ISDIR(st->st_mode)) {
        snprintf(err, errlen,
                 "the socket directory %s is not a directory (uid %u owns it): remove it, "
                 "" SOCKPATH_ELSEWHERE,
                 dir, (unsigned)st->st_uid);
        return -1;
    }
    if (st->st_uid != getuid()) {
        snprintf(err, errlen,
                 "the socket directory %s belongs to another user (uid %u), who could replace the "
                 "socket: have it removed (it may take root), " SOCKPATH_ELSEWHERE,
                 dir, (unsigned)st->st_uid);
        return -1;
    }
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "the socket directory %s is open to other users (mode %04o): run chmod 700 %s, "
                 "" SOCKPATH_ELSEWHERE,
                 dir, (unsigned)(st->st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

int sockpath_prepare_dir(const char *socket_path, char *err, size_t errlen) {
    char dir[LIMIT_SOCKET_PATH_BYTES];
    sockpath_dir_of(socket_path, dir, sizeof dir);
    /* Created private from the first instant: no umask lets others in. */
    mode_t old_mask = umask(0077);
    int rc = mkdir(dir, 0700);
    int e = errno;
    umask(old_mask);
    if (rc != 0 && e != EEXIST) {
        snprintf(err, errlen, "cannot create the socket directory %s: %s", dir, strerror(e));
        return -1;
    }
    /* Created or found, it is judged the same way: another user may have
     * made it first. lstat, so a symbolic link is seen as one. */
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(err, errlen, "cannot use the socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return sockpath_check_dir(dir, &st, err, errlen);
}

int sockpath_peer_uid(int fd, uid_t *uid) {
#if defined(__linux__)
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -1;
    *uid = cred.uid;
    return 0;
#else
    gid_t gid;
    return getpeereid(fd, uid, &gid);
#endif
}
