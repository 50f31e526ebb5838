#include "activation.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* sd_listen_fds(3): passed sockets start at fd 3. */
#define ACTIVATION_FDS_START 3

long activation_passed_count(const char *pid_s, const char *fds_s, long self) {
    if (!pid_s || !fds_s)
        return 0;
    char *end;
    long pid = strtol(pid_s, &end, 10);
    bool ours = *end == '\0' && pid == self;
    long n = strtol(fds_s, &end, 10);
    bool valid = *end == '\0' && n >= 1;
    return ours && valid ? n : 0;
}

int activation_listen_fd(void) {
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    if (!pid_s || !fds_s)
        return -1;
    long n = activation_passed_count(pid_s, fds_s, (long)getpid());
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n < 1)
        return -1;
    if (n > 1)
        log_warn("systemd passed %ld sockets; promptd serves only the first", n);
    int flags = fcntl(ACTIVATION_FDS_START, F_GETFD);
    if (flags < 0) {
        log_warn("LISTEN_FDS is set but fd %d is not open: binding the socket instead",
                 ACTIVATION_FDS_START);
        return -1;
    }
    fcntl(ACTIVATION_FDS_START, F_SETFD, flags | FD_CLOEXEC);
    return ACTIVATION_FDS_START;
}

int activation_socket_name(int fd, char *out, size_t outlen, char *err, size_t errlen) {
    struct sockaddr_un addr;
    socklen_t alen = sizeof addr;
    int type = 0, listening = 0;
    socklen_t tlen = sizeof type, llen = sizeof listening;
    memset(&addr, 0, sizeof addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &alen) != 0 || addr.sun_family != AF_UNIX ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM) {
        snprintf(err, errlen,
                 "the socket passed by the service manager (fd %d) is not a Unix stream socket: "
                 "its unit needs ListenStream=/path/to/promptd.sock",
                 fd);
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) == 0 && !listening) {
        snprintf(err, errlen,
                 "the socket passed by the service manager (fd %d) is not listening: its unit "
                 "must not set Accept=yes",
                 fd);
        return -1;
    }
    size_t len = alen > offsetof(struct sockaddr_un, sun_path)
                     ? (size_t)alen - offsetof(struct sockaddr_un, sun_path)
                     : 0;
    if (len > sizeof addr.sun_path)
        len = sizeof addr.sun_path;
    if (len == 0 || (addr.sun_path[0] == '\0' && len == 1))
        snprintf(out, outlen, "fd %d", fd); /* unnamed */
    else if (addr.sun_path[0] == '\0')
        snprintf(out, outlen, "@%.*s", (int)(len - 1), addr.sun_path + 1);
    else
        snprintf(out, outlen, "%.*s", (int)strnlen(addr.sun_path, len), addr.sun_path);
    return 0;
}
