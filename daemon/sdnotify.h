/* systemd integration without libsystemd: socket activation (LISTEN_FDS)
 * and readiness notification (NOTIFY_SOCKET). Both are no-ops elsewhere,
 * e.g. under launchd or when started by hand. */
#ifndef PROMPTD_SDNOTIFY_H
#define PROMPTD_SDNOTIFY_H

#include <stddef.h>

/* The first inherited listening socket (fd 3) when LISTEN_PID is our pid and
 * LISTEN_FDS >= 1, else -1. Unsets the variables so children do not
 * inherit them. */
int sdnotify_listen_fd(void);

/* Names the socket systemd passed (fd): its path, "@name" for a Linux
 * abstract socket, for health and the log. Returns 0, or -1 with a sentence
 * in err when fd is not a listening Unix stream socket (a unit whose
 * ListenStream= or Accept= is wrong). */
int sdnotify_socket_path(int fd, char *out, size_t outlen, char *err, size_t errlen);

/* Sends a state string such as "READY=1\nSTATUS=serving" to NOTIFY_SOCKET
 * when it is set. Failures are logged at debug level and otherwise
 * ignored: readiness is a courtesy to the service manager. */
void sdnotify_send(const char *state);

#endif
