#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* SIGPIPE is ignored anyway */
#endif

int sdnotify_address(const char *path, struct sockaddr_un *addr, socklen_t *alen) {
    if (path[0] != '/' && path[0] != '@')
        return -1;
    size_t len = strlen(path);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (len >= sizeof addr->sun_path)
        return -1;
    memcpy(addr->sun_path, path, len);
    if (path[0] == '@')
        addr->sun_path[0] = '\0'; /* Linux abstract namespace */
    *alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    return 0;
}

void sdnotify_send(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un addr;
    socklen_t alen;
    if (sdnotify_address(path, &addr, &alen) != 0) {
        log_debug("NOTIFY_SOCKET is too long");
        return;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_debug("cannot notify the service manager: %s", strerror(errno));
        return;
    }
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen) < 0)
        log_debug("cannot notify the service manager: %s", strerror(errno));
    close(fd);
}
