/* Readiness notification without libsystemd (sd_notify(3)): state strings
 * sent as datagrams to NOTIFY_SOCKET. A no-op when the variable is absent,
 * e.g. under launchd or when started by hand. Socket activation is
 * activation's. */
#ifndef PROMPTD_SDNOTIFY_H
#define PROMPTD_SDNOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

/* Fills addr and alen for the NOTIFY_SOCKET value path: a filesystem path
 * ("/...") or a Linux abstract name ("@..."). Returns 0, or -1 when path is
 * neither or does not fit in sun_path. */
int sdnotify_address(const char *path, struct sockaddr_un *addr, socklen_t *alen);

/* Sends a state string such as "READY=1\nSTATUS=serving" to NOTIFY_SOCKET
 * when it is set. Failures are logged at debug level and otherwise
 * ignored: readiness is a courtesy to the service manager. */
void sdnotify_send(const char *state);

#endif
