#include "sdnotify.h"

#include <errno.h>
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

#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* SIGPIPE is ignored anyway */
#endif

/* sd_listen_fds(3): passed sockets start at fd 3. */
#define SD_LISTEN_FDS_START 3

int sdnotify_listen_fd(void) {
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    if (!pid_s || !fds_s)
        return -1;
    char *end;
    long pid = strtol(pid_s, &end, 10);
    bool ours = *end == '\0' && pid == (long)getpid();
    long n = strtol(fds_s, &end, 10);
    bool valid = *end == '\0' && n >= 1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!ours || !valid)
        return -1;
    if (n > 1)
        log_warn("systemd passed %ld sockets; promptd serves only the first", n);
    int flags = fcntl(SD_LISTEN_FDS_START, F_GETFD);
    if (flags < 0) {
        log_warn("LISTEN_FDS is set but fd %d is not open: binding the socket instead",
                 SD_LISTEN_FDS_START);
        return -1;
    }
    fcntl(SD_LISTEN_FDS_START, F_SETFD, flags | FD_CLOEXEC);
    return SD_LISTEN_FDS_START;
}

void sdnotify_send(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path) {
        log_debug("NOTIFY_SOCKET is too long");
        return;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0'; /* Linux abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_debug("cannot notify the service manager: %s", strerror(errno));
        return;
    }
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen) < 0)
        log_debug("cannot notify the service manager: %s", strerror(errno));
    close(fd);
}
