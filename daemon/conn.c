#include "conn.h"

#include <jansson.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "rpc.h"
#include "server.h"
#include "sockpath.h"

/* answer_guess of a new connection: nothing is known of its answers yet,
 * so at most 16 calls are started before the first is answered: enough
 * for a client's few improves and their cancel to be read at once, few
 * enough that 16 answers of a few MiB (a history.get of a big row) stay
 * far under LIMIT_CONN_OUTPUT_HARD_BYTES. Small answers halve the guess
 * call by call, so a pipelining client is soon at LIMIT_CONN_IN_FLIGHT. */
#define CONN_FIRST_ANSWER_GUESS (LIMIT_CONN_OUTPUT_BYTES / 16)

struct write_req {
    uv_write_t req;
    struct conn *c; /* holds a ref until the write completes */
    size_t len;
    char *text; /* owned; line plus newline */
};

void conn_ref(struct conn *c) {
    c->refs++;
}

void conn_unref(struct conn *c) {
    if (--c->refs == 0) {
        free(c->in);
        free(c);
    }
}

static void conn_close_cb(uv_handle_t *h) {
    struct conn *c = h->data;
    server_conn_closed(c->srv, c);
    conn_unref(c);
}

void conn_close(struct conn *c) {
    if (c->closing)
        return;
    c->closing = true;
    conn_stop_reading(c);
    /* Cancel hooks may answer their calls right away; those answers are
     * dropped since the connection is closing. */
    rpc_cancel_conn_calls(c);
    uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
}

bool conn_is_open(const struct conn *c) {
    return !c->closing && !c->overflowed;
}

void conn_stop_reading(struct conn *c) {
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
}

/* The queue once the calls in flight have answered, as far as can be told. */
static uint64_t conn_expected_output(const struct conn *c) {
    return (uint64_t)c->out_bytes + (uint64_t)c->n_calls * c->answer_guess;
}

/* Whether the output (queued and expected) is at or over limit. A single
 * call is always allowed, however big its answers: it is the only way on. */
static bool conn_output_over(const struct conn *c, uint64_t limit) {
    return c->out_bytes >= limit || (c->n_calls > 0 && conn_expected_output(c) >= limit);
}

static bool conn_must_pause(const struct conn *c) {
    return conn_output_over(c, LIMIT_CONN_OUTPUT_BYTES) || c->n_calls >= LIMIT_CONN_IN_FLIGHT;
}

/* A message would take the queue past the hard ceiling: the client does not
 * read while answers keep coming. conn_send runs inside rpc_finish and the
 * callers' own callbacks, where cancelling calls is not safe: the server
 * closes the connection on its next loop iteration. */
static void conn_overflow(struct conn *c) {
    if (c->overflowed)
        return;
    c->overflowed = true;
    c->d->requests.output_limit_disconnections++;
    log_warn("closing a client that does not read its answers: %zu bytes wait for it and "
             "more keep coming (LIMIT_CONN_OUTPUT_HARD_BYTES is %d MiB)",
             c->out_bytes, LIMIT_CONN_OUTPUT_HARD_BYTES / (1024 * 1024));
    conn_stop_reading(c);
    server_close_later(c->srv);
}

static void conn_write_cb(uv_write_t *req, int status) {
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->c;
    c->out_bytes -= w->len;
    free(w->text);
    free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
        log_debug("client write failed: %s", uv_strerror(status));
        conn_close(c);
    } else if (c->close_after_flush && c->out_bytes == 0) {
        conn_close(c);
    } else {
        conn_maybe_resume(c);
    }
    conn_unref(c);
}

void conn_send(struct conn *c, char *text, size_t len) {
    if (!conn_is_open(c)) {
        free(text);
        return;
    }
    if (c->out_bytes >= LIMIT_CONN_OUTPUT_BYTES &&
        (uint64_t)c->out_bytes + len + 1 > LIMIT_CONN_OUTPUT_HARD_BYTES) {
        free(text);
        conn_overflow(c);
        return;
    }
    struct write_req *w = malloc(sizeof *w);
    char *line = realloc(text, len + 1);
    if (!w || !line) {
        free(w);
        free(line ? line : text);
        log_error("out of memory queueing a response; closing the client");
        conn_close(c);
        return;
    }
    line[len] = '\n';
    w->c = c;
    w->len = len + 1;
    w->text = line;
    uv_buf_t buf = uv_buf_init(line, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, conn_write_cb);
    if (rc < 0) {
        log_debug("client write failed: %s", uv_strerror(rc));
        free(line);
        free(w);
        conn_close(c);
        return;
    }
    conn_ref(c);
    c->out_bytes += w->len;
}

static void conn_send_error_text(struct conn *c, const char *json_text) {
    char *copy = strdup(json_text);
    if (copy)
        conn_send(c, copy, strlen(copy));
}

size_t conn_frame_lines(const char *buf, size_t len,
                        bool (*on_line)(void *arg, const char *line, size_t n), void *arg) {
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(buf + start, '\n', len - start);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (buf + start));
        bool go_on = on_line(arg, buf + start, n);
        start += n + 1;
        if (!go_on)
            break;
    }
    return start;
}

static void conn_reject_too_large(struct conn *c) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":%d,\"message\":\"the request "
             "line is longer than MAX_REQUEST_BYTES (%zu bytes); the connection is closed\","
             "\"data\":{\"kind\":\"%s\",\"limit\":%zu}}}",
             RPC_INVALID_REQUEST, server_max_request_bytes(c->srv), KIND_TOO_LARGE,
             server_max_request_bytes(c->srv));
    conn_send_error_text(c, msg);
    c->close_after_flush = true;
    c->in_len = 0;
    conn_stop_reading(c);
    if (c->out_bytes == 0)
        conn_close(c);
}

static bool conn_on_line(void *arg, const char *line, size_t n) {
    struct conn *c = arg;
    if (n > server_max_request_bytes(c->srv)) {
        conn_reject_too_large(c);
        return false;
    }
    rpc_handle_line(c->d, c, line, n);
    /* The line may have filled the output queue or the in-flight table:
     * leave the rest of the input where it is until the client drains. */
    return !c->closing && !c->close_after_flush && !conn_must_pause(c);
}

/* Frames and dispatches the complete lines in data (the server's shared
 * read buffer, or c->in); returns the bytes used. Stops early when the
 * client must wait (backpressure) or is being closed. */
static size_t conn_dispatch(struct conn *c, const char *data, size_t len) {
    c->processing = true;
    size_t used = conn_frame_lines(data, len, conn_on_line, c);
    c->processing = false;
    return used;
}

/* Appends bytes not yet dispatched to c->in. */
static int conn_keep(struct conn *c, const char *data, size_t n) {
    if (n == 0)
        return 0;
    if (c->in_cap - c->in_len < n) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap - c->in_len < n)
            cap *= 2;
        char *p = realloc(c->in, cap);
        if (!p)
            return -1;
        c->in = p;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    return 0;
}

/* After a dispatch: pause, refuse an overlong partial line, or release the
 * buffer. An idle client holds no input buffer at all, so a thousand idle
 * clients cost a thousand small structs, not a thousand buffers. */
static void conn_after_dispatch(struct conn *c) {
    if (conn_must_pause(c)) {
        /* Complete lines may be left in c->in: they wait for resume. */
        conn_stop_reading(c);
    } else if (c->in_len > server_max_request_bytes(c->srv)) {
        /* All that is left is one partial line, already too long: no need
         * to wait for its end. */
        conn_reject_too_large(c);
    }
    if (c->in_len == 0) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

static bool conn_done_with_input(const struct conn *c) {
    return c->close_after_flush || c->closing;
}

/* Dispatches what waits in c->in (a partial line completed by a read, or
 * lines held back by backpressure). */
static void conn_process_input(struct conn *c) {
    /* A call answered synchronously may try to resume input while this
     * loop is still framing the same buffer. */
    if (c->processing || c->in_len == 0)
        return;
    conn_ref(c); /* dispatching may close the connection */
    size_t used = conn_dispatch(c, c->in, c->in_len);
    if (!conn_done_with_input(c)) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        conn_after_dispatch(c);
    }
    conn_unref(c);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct conn *c = h->data;
    *buf = server_read_buffer(c->srv);
}

/* Whether the client has closed its socket entirely (not only its sending
 * side): then nobody reads the answers. POLLHUP says so on Linux; where a
 * system does not tell, the first answer written fails and closes. */
static bool conn_peer_gone(struct conn *c) {
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
        return true;
    struct pollfd p = {.fd = fd, .events = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* Half-closed and nothing left to do: every request read was answered and
 * every answer written. */
static void conn_close_if_done(struct conn *c) {
    if (c->eof && !c->closing && !c->processing && c->n_calls == 0 && c->out_bytes == 0 &&
        c->in_len == 0)
        conn_close(c);
}

/* EOF: the client shut its sending side (shutdown(SHUT_WR), as
 * `printf ... | socat - UNIX-CONNECT:...` does) or closed the socket. A
 * half-close means "no more requests": what was sent is served, every
 * answer is written, then the connection closes. A client that is gone
 * altogether cancels its calls, now or when the server's check sees it. */
static void conn_on_eof(struct conn *c) {
    conn_stop_reading(c);
    if (conn_peer_gone(c)) {
        conn_close(c);
        return;
    }
    c->eof = true;
    /* A last request without its newline is still a request. */
    if (c->in_len > 0 && conn_keep(c, "\n", 1) != 0) {
        log_error("out of memory buffering a client's request; closing it");
        conn_close(c);
        return;
    }
    conn_ref(c);
    conn_process_input(c);
    conn_close_if_done(c);
    if (conn_is_open(c) && !c->close_after_flush)
        server_watch_hangups(c->srv);
    conn_unref(c);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    struct conn *c = s->data;
    if (nread == 0)
        return; /* EAGAIN: not EOF */
    if (nread == UV_EOF) {
        conn_on_eof(c);
        return;
    }
    if (nread < 0) {
        log_debug("client read failed: %s", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    size_t n = (size_t)nread;
    if (c->in_len > 0) {
        if (conn_keep(c, buf->base, n) != 0)
            goto nomem;
        conn_process_input(c);
        return;
    }
    /* The usual case: whole requests, framed straight from the shared
     * buffer; only a trailing partial line is copied. */
    conn_ref(c);
    size_t used = conn_dispatch(c, buf->base, n);
    if (!conn_done_with_input(c)) {
        if (conn_keep(c, buf->base + used, n - used) != 0) {
            conn_unref(c);
            goto nomem;
        }
        conn_after_dispatch(c);
    }
    conn_unref(c);
    return;
nomem:
    log_error("out of memory buffering a client's request; closing it");
    conn_close(c);
}

static void conn_start_reading(struct conn *c) {
    if (c->reading || !conn_is_open(c) || c->eof || c->close_after_flush || c->d->stopping)
        return;
    int rc = uv_read_start((uv_stream_t *)&c->pipe, conn_alloc_cb, conn_read_cb);
    if (rc < 0) {
        log_warn("cannot read from a client: %s", uv_strerror(rc));
        conn_close(c);
        return;
    }
    c->reading = true;
}

void conn_maybe_resume(struct conn *c) {
    if (c->reading || !conn_is_open(c) || c->close_after_flush || c->d->stopping)
        return;
    /* Resume at half the limits so a client at the edge does not flap. */
    if (conn_output_over(c, LIMIT_CONN_OUTPUT_BYTES / 2 + 1) ||
        c->n_calls > LIMIT_CONN_IN_FLIGHT / 2)
        return;
    conn_process_input(c);
    if (c->eof)
        conn_close_if_done(c);
    else if (conn_is_open(c) && !c->close_after_flush && !conn_must_pause(c))
        conn_start_reading(c);
}

void conn_call_done(struct conn *c, size_t bytes) {
    c->answer_guess = bytes > c->answer_guess / 2 ? bytes : c->answer_guess / 2;
    conn_maybe_resume(c);
}

bool conn_check_hangup(struct conn *c) {
    if (!c->eof || !conn_is_open(c))
        return false;
    if (!conn_peer_gone(c))
        return true;
    log_debug("a half-closed client went away; cancelling its requests");
    conn_close(c);
    return false;
}

static bool conn_peer_is_us(struct conn *c) {
    uv_os_fd_t fd;
    uid_t uid;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 || sockpath_peer_uid(fd, &uid) != 0)
        return false;
    return uid == getuid();
}

void conn_start(struct conn *c) {
    c->answer_guess = CONN_FIRST_ANSWER_GUESS;
    if (!conn_peer_is_us(c)) {
        log_warn("refused a client running as another user");
        conn_close(c);
        return;
    }
    conn_start_reading(c);
}
