/* Socket activation without libsystemd (sd_listen_fds(3)): the service
 * manager binds the socket and passes it as fd 3, naming our pid in
 * LISTEN_PID and the count in LISTEN_FDS. Nothing happens when the
 * variables are absent, e.g. under launchd or when started by hand.
 * Readiness notification is sdnotify's. */
#ifndef PROMPTD_ACTIVATION_H
#define PROMPTD_ACTIVATION_H

#include <stddef.h>

/* How many sockets LISTEN_PID=pid_s, LISTEN_FDS=fds_s pass to process
 * self: LISTEN_FDS when LISTEN_PID names self and both are whole decimal
 * numbers, else 0 (the variables were meant for another process, or are
 * malformed). Either string may be NULL. */
long activation_passed_count(const char *pid_s, const char *fds_s, long self);

/* The first inherited listening socket (fd 3, made close-on-exec) when the
 * environment passes at least one to this process, else -1. Unsets the
 * variables so children do not inherit them. */
int activation_listen_fd(void);

/* Names the socket the service manager passed (fd): its path, "@name" for
 * a Linux abstract socket, "fd N" when unnamed, for health and the log.
 * Returns 0, or -1 with a sentence in err when fd is not a listening Unix
 * stream socket (a unit whose ListenStream= or Accept= is wrong). */
int activation_socket_name(int fd, char *out, size_t outlen, char *err, size_t errlen);

#endif
