/* systemd integration without libsystemd: socket activation (LISTEN_FDS)
 * and readiness notification (NOTIFY_SOCKET). Both are no-ops elsewhere,
 * e.g. under launchd or when started by hand. */
#ifndef PROMPTD_SDNOTIFY_H
#define PROMPTD_SDNOTIFY_H

/* The first inherited listening socket (fd 3) when LISTEN_PID is our pid and
 * LISTEN_FDS >= 1, else -1. Unsets the variables so children do not
 * inherit them. */
int sdnotify_listen_fd(void);

/* Sends a state string such as "READY=1\nSTATUS=serving" to NOTIFY_SOCKET
 * when it is set. Failures are logged at debug level and otherwise
 * ignored: readiness is a courtesy to the service manager. */
void sdnotify_send(const char *state);

#endif
