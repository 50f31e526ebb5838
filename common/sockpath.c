#include "sockpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int sockpath_prepare_dir(const char *socket_path, char *err, size_t errlen) {
    char dir[LIMIT_SOCKET_PATH_BYTES];
    snprintf(dir, sizeof dir, "%s", socket_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0; /* relative name in the working directory */
    if (slash == dir)
        return 0; /* a socket directly under / */
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "cannot use the socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    return 0;
}
