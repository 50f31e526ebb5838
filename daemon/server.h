/* The listening socket: binds it (or takes it from systemd), checks peers,
 * tracks open connections, and shuts down gracefully. */
#ifndef PROMPTD_SERVER_H
#define PROMPTD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct daemon;
struct conn;
struct server;

/* Start-up is two steps so that the socket is claimed (lock taken, path
 * bound) before the database is opened, and served only after:
 * server_bind or server_adopt_fd, then server_listen. */

/* Takes PATH.lock and binds path (replacing a stale socket file). Returns
 * 0, or -1 with a sentence in err; 1 when another daemon is live on it
 * (err says which pid). */
int server_bind(struct daemon *d, const char *path, char *err, size_t errlen);
/* Takes an inherited, already bound socket (systemd socket activation:
 * fd 3). The socket file is not ours: it is never unlinked. */
int server_adopt_fd(struct daemon *d, int fd, char *err, size_t errlen);
/* Starts accepting connections on the bound or adopted socket. */
int server_listen(struct daemon *d, char *err, size_t errlen);
/* server_bind then server_listen (tests). */
int server_start(struct daemon *d, const char *path, char *err, size_t errlen);

/* SIGTERM: stops accepting, stops reading requests, lets in-flight calls
 * finish for up to LIMIT_SHUTDOWN_GRACE_MS, cancels the rest, flushes the
 * answers, closes every connection, then calls done(d). */
void server_shutdown(struct daemon *d, void (*done)(struct daemon *d));

/* Frees what is left after the loop has stopped (the lock file). */
void server_free(struct daemon *d);

/* Called by conn.c: a connection links itself as it is created and
 * unlinks as its handle closes. */
void server_conn_opened(struct server *srv, struct conn *c);
void server_conn_closed(struct server *srv, struct conn *c);
size_t server_max_request_bytes(const struct server *srv);
/* The buffer a connection reads into; its bytes are valid until the read
 * callback returns. */
uv_buf_t server_read_buffer(struct server *srv);
/* Closes every connection marked overflowed on the next loop iteration,
 * outside the callbacks that found it over its output ceiling. */
void server_close_later(struct server *srv);
/* Looks every CONN_HANGUP_CHECK_MS whether half-closed clients have gone
 * altogether (their calls are then cancelled); stops when none is left. */
void server_watch_hangups(struct server *srv);

#endif
