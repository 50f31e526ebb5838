#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "promptd_limits.h"
#include "rpc.h"
#include "xalloc.h"

/* During shutdown, how often to look whether in-flight work is done. */
#define SHUTDOWN_POLL_MS 10
/* After the grace period and the cancellations, how long answers may take
 * to reach clients that read slowly. */
#define SHUTDOWN_FLUSH_MS 1000
/* How often to look whether a half-closed client has closed its socket
 * entirely (socat, for one, does 0.5 s after its input ends): its calls
 * are then cancelled instead of running on for nobody. */
#define CONN_HANGUP_CHECK_MS 200

struct server {
    struct daemon *d;      /* borrowed */
    uv_pipe_t listener;    /* listener.data == this */
    bool has_listener;     /* bound or adopted: closing it removes our socket file */
    bool owns_socket_file; /* we bound it: unlink at exit */
    char path[LIMIT_SOCKET_PATH_BYTES];
    int lock_fd;            /* flock on PATH.lock: one daemon per socket; -1 when none */
    struct conn_list conns; /* open connections: each links itself (conn_create) */
    uint64_t accept_errors; /* refused accepts (fd exhaustion), for the log's rate limit */
    uv_timer_t shutdown_timer;
    uv_idle_t closer;        /* runs server_close_overflowed once, when asked */
    uv_timer_t hangup_timer; /* runs while some connection is half-closed */
    uint64_t shutdown_started_ms;
    bool cancelled_leftovers;
    void (*shutdown_done)(struct daemon *d);
    /* Every read lands here first; reads are handled one at a time on the
     * loop, so one buffer serves all clients. */
    char read_buf[65536];
};

uv_buf_t server_read_buffer(struct server *srv) {
    return uv_buf_init(srv->read_buf, sizeof srv->read_buf);
}

size_t server_max_request_bytes(const struct server *srv) {
    return (size_t)srv->d->cfg->max_request_bytes;
}

void server_conn_opened(struct server *srv, struct conn *c) {
    LIST_INSERT_HEAD(&srv->conns, c, entry);
}

void server_conn_closed(struct server *srv, struct conn *c) {
    LIST_REMOVE(c, entry);
}

static void server_close_overflowed(uv_idle_t *idle) {
    struct server *srv = idle->data;
    uv_idle_stop(idle);
    struct conn *next;
    for (struct conn *c = LIST_FIRST(&srv->conns); c; c = next) {
        next = LIST_NEXT(c, entry); /* conn_close may unlink c */
        if (c->overflowed)
            conn_close(c);
    }
}

void server_close_later(struct server *srv) {
    (void)uv_idle_start(&srv->closer, server_close_overflowed); /* fails only without a callback */
}

static void server_check_hangups(uv_timer_t *t) {
    struct server *srv = t->data;
    bool any = false;
    struct conn *next;
    for (struct conn *c = LIST_FIRST(&srv->conns); c; c = next) {
        next = LIST_NEXT(c, entry); /* conn_check_hangup may close c */
        any |= conn_check_hangup(c);
    }
    if (!any)
        uv_timer_stop(t);
}

void server_watch_hangups(struct server *srv) {
    /* uv_timer_start fails only on a closing handle: then the loop is ending. */
    if (!uv_is_active((uv_handle_t *)&srv->hangup_timer))
        (void)uv_timer_start(&srv->hangup_timer, server_check_hangups, CONN_HANGUP_CHECK_MS,
                             CONN_HANGUP_CHECK_MS);
}

static void server_on_connection(uv_stream_t *listener, int status) {
    struct server *srv = listener->data;
    if (status < 0) {
        /* libuv already accepted and closed the connection with its reserve
         * fd (EMFILE), so the loop does not spin; say so, not too often. */
        if (srv->accept_errors++ % 100 == 0)
            log_warn("cannot accept a client: %s (raise the open-files limit?)",
                     uv_strerror(status));
        return;
    }
    int rc = conn_create(srv->d, srv, listener);
    if (rc < 0 && srv->accept_errors++ % 100 == 0)
        log_warn("cannot accept a client: %s", uv_strerror(rc));
}

/* Another daemon holds the lock or answers on the socket: find its pid to
 * name it in the message. */
static long server_peer_pid(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    long pid = -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        pid = 0;
#if defined(__linux__)
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
            pid = cred.pid;
#endif
    }
    close(fd);
    return pid;
}

static int server_take_lock(struct server *srv, char *err, size_t errlen) {
    char lock_path[LIMIT_SOCKET_PATH_BYTES + 8];
    snprintf(lock_path, sizeof lock_path, "%s.lock", srv->path);
    srv->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (srv->lock_fd < 0) {
        snprintf(err, errlen, "cannot open the lock file %s: %s", lock_path, strerror(errno));
        return -1;
    }
    if (flock(srv->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        long pid = server_peer_pid(srv->path);
        if (pid > 0)
            snprintf(err, errlen, "already running (pid %ld, socket %s)", pid, srv->path);
        else
            snprintf(err, errlen, "already running (socket %s, lock %s held)", srv->path,
                     lock_path);
        close(srv->lock_fd);
        srv->lock_fd = -1;
        return 1;
    }
    return 0;
}

/* With the lock held no other promptd uses the path, but a daemon started
 * some other way might: only a socket nobody answers on is stale. */
static int server_clear_stale(struct server *srv, char *err, size_t errlen) {
    struct stat st;
    if (lstat(srv->path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket: remove it or choose another path",
                 srv->path);
        return -1;
    }
    long pid = server_peer_pid(srv->path);
    if (pid >= 0) {
        if (pid > 0)
            snprintf(err, errlen, "already running (pid %ld, socket %s)", pid, srv->path);
        else
            snprintf(err, errlen, "already running (socket %s)", srv->path);
        return 1;
    }
    log_info("replacing the stale socket %s", srv->path);
    if (unlink(srv->path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale socket %s: %s", srv->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The server, not yet bound: NULL with a sentence in err when libuv
 * refuses the listener's handle. */
static struct server *server_new(struct daemon *d, char *err, size_t errlen) {
    struct server *srv = xcalloc(1, sizeof *srv);
    srv->d = d;
    srv->lock_fd = -1;
    LIST_INIT(&srv->conns);
    srv->listener.data = srv;
    int rc = uv_pipe_init(d->loop, &srv->listener, 0);
    if (rc != 0) {
        snprintf(err, errlen, "cannot create the listening socket: %s", uv_strerror(rc));
        free(srv);
        return NULL;
    }
    /* Neither can fail; both stay inactive until needed, and the final
     * uv_walk in main.c closes them. */
    uv_idle_init(d->loop, &srv->closer);
    srv->closer.data = srv;
    uv_timer_init(d->loop, &srv->hangup_timer);
    srv->hangup_timer.data = srv;
    d->server = srv;
    return srv;
}

int server_bind(struct daemon *d, const char *path, char *err, size_t errlen) {
    struct server *srv = server_new(d, err, errlen);
    if (!srv)
        return -1;
    snprintf(srv->path, sizeof srv->path, "%s", path);
    int rc = server_take_lock(srv, err, errlen);
    if (rc == 0)
        rc = server_clear_stale(srv, err, errlen);
    if (rc != 0)
        return rc;
    /* Bind under a tight umask so the socket is never open to others, not
     * even for the moment before chmod. */
    mode_t old_mask = umask(0177);
    rc = uv_pipe_bind(&srv->listener, path);
    umask(old_mask);
    if (rc < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", path, uv_strerror(rc));
        return -1;
    }
    srv->owns_socket_file = true;
    srv->has_listener = true;
    if (chmod(path, 0600) != 0)
        log_warn("cannot chmod 0600 %s: %s", path, strerror(errno));
    return 0;
}

int server_adopt_fd(struct daemon *d, int fd, char *err, size_t errlen) {
    struct server *srv = server_new(d, err, errlen);
    if (!srv)
        return -1;
    snprintf(srv->path, sizeof srv->path, "fd %d", fd);
    int rc = uv_pipe_open(&srv->listener, fd);
    if (rc < 0) {
        snprintf(err, errlen, "cannot use the inherited socket (fd %d): %s", fd, uv_strerror(rc));
        return -1;
    }
    srv->has_listener = true;
    return 0;
}

int server_listen(struct daemon *d, char *err, size_t errlen) {
    struct server *srv = d->server;
    /* Far more than a launcher needs; the fd limit is the real bound. */
    int rc = uv_listen((uv_stream_t *)&srv->listener, 1024, server_on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", srv->path, uv_strerror(rc));
        return -1;
    }
    return 0;
}

int server_start(struct daemon *d, const char *path, char *err, size_t errlen) {
    int rc = server_bind(d, path, err, errlen);
    return rc != 0 ? rc : server_listen(d, err, errlen);
}

static void server_close_listener(struct server *srv) {
    if (!srv->has_listener)
        return;
    srv->has_listener = false;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    /* libuv unlinks a path it bound when the handle closes; do it here too,
     * so the promise does not rest on that detail. */
    if (srv->owns_socket_file && unlink(srv->path) != 0 && errno != ENOENT)
        log_warn("cannot remove the socket %s: %s", srv->path, strerror(errno));
}

static bool server_output_pending(const struct server *srv) {
    const struct conn *c;
    LIST_FOREACH(c, &srv->conns, entry)
    if (c->out_bytes > 0 && !c->closing)
        return true;
    return false;
}

static void server_close_all(struct server *srv) {
    struct conn *next;
    for (struct conn *c = LIST_FIRST(&srv->conns); c; c = next) {
        next = LIST_NEXT(c, entry); /* conn_close may unlink c */
        conn_close(c);
    }
}

static void server_shutdown_tick(uv_timer_t *t) {
    struct server *srv = t->data;
    struct daemon *d = srv->d;
    uint64_t elapsed = uv_now(d->loop) - srv->shutdown_started_ms;
    if (d->requests.in_flight > 0 && elapsed < LIMIT_SHUTDOWN_GRACE_MS)
        return;
    if (d->requests.in_flight > 0 && !srv->cancelled_leftovers) {
        log_warn("stopping: cancelling %llu request(s) still in flight after %d ms",
                 (unsigned long long)d->requests.in_flight, LIMIT_SHUTDOWN_GRACE_MS);
        srv->cancelled_leftovers = true;
        struct conn *c;
        LIST_FOREACH(c, &srv->conns, entry)
        rpc_cancel_conn_calls(c);
    }
    bool flushing =
        server_output_pending(srv) && elapsed < LIMIT_SHUTDOWN_GRACE_MS + SHUTDOWN_FLUSH_MS;
    if (flushing ||
        (d->requests.in_flight > 0 && elapsed < LIMIT_SHUTDOWN_GRACE_MS + SHUTDOWN_FLUSH_MS))
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    server_close_all(srv);
    srv->shutdown_done(d);
}

void server_shutdown(struct daemon *d, void (*done)(struct daemon *d)) {
    struct server *srv = d->server;
    d->stopping = true;
    server_close_listener(srv);
    struct conn *c;
    LIST_FOREACH(c, &srv->conns, entry)
    conn_stop_reading(c);
    srv->shutdown_done = done;
    srv->shutdown_started_ms = uv_now(d->loop);
    srv->shutdown_timer.data = srv;
    uv_timer_init(d->loop, &srv->shutdown_timer);
    uv_timer_start(&srv->shutdown_timer, server_shutdown_tick, 0, SHUTDOWN_POLL_MS);
}

void server_free(struct daemon *d) {
    struct server *srv = d->server;
    if (!srv)
        return;
    if (srv->lock_fd >= 0)
        close(srv->lock_fd); /* the lock file stays: unlinking it would race */
    free(srv);
    d->server = NULL;
}
