/* curl multi on the libuv loop. The wiring follows curl's multi-uv example
 * and avoids its known weaknesses:
 *  - uv_poll_init_socket's result is checked (a failure fails that socket's
 *    transfer instead of leaving curl waiting forever);
 *  - a poll error is passed to curl as "readable and writable" so curl
 *    notices a dead socket at once and still retries a reused connection
 *    (CURL_CSELECT_ERR alone would fail the transfer outright);
 *  - curl_multi_info_read is drained after every socket_action, because a
 *    transfer can finish by timeout as well as by data;
 *  - no easy handle is removed while curl is running one of our callbacks:
 *    a cancel that arrives then only marks the request dead, and the sweep
 *    after curl returns does the removal;
 *  - http_close closes every uv handle and frees memory only in the close
 *    callbacks, so the caller's last loop run finishes the job;
 *  - curl's sockets are opened by http_opensocket_cb, which keeps socket()'s
 *    errno: curl would report running out of fds as "couldn't connect".
 *
 * New transfers reach curl at most HTTP_STARTS_PER_TICK per loop iteration
 * (the rest wait in line in h->waiting): curl opens the connection of
 * every transfer added since its last timeout call in one go, so a burst
 * of a thousand requests used to hold the loop for a thousand connects.
 *
 * Ownership: struct http owns the multi handle, its timer, the socket
 * contexts and every request. A request is freed in its timer's close
 * callback, after its easy handle has left the multi handle. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000L
/* Transfers handed to curl per loop iteration. Starting one costs a
 * socket, a connect and the request's send: about 110 us on a 2-core VM,
 * mostly in the kernel. 8 keeps an iteration's start-up work near 1 ms
 * (1000 at once took one iteration of 70 to 110 ms, during which no client
 * was answered; 16 left health's p99 at 3 to 7 ms) and still starts
 * thousands of transfers a second. */
#define HTTP_STARTS_PER_TICK 8

/* One socket curl asked us to watch. Owned by struct http (linked in
 * h->socks); freed in http_sock_close_cb. */
struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http *h;
    LIST_ENTRY(http_sock) entry; /* h->socks */
};

struct http_req {
    struct http *h;             /* borrowed */
    CURL *easy;                 /* owned; NULL once cleaned up */
    struct curl_slist *headers; /* owned */
    char *body;                 /* owned copy of the POST body */
    uv_timer_t timer;           /* first-byte, then deadline clock; its close frees the request */
    http_data_fn on_data;
    http_done_fn on_done;
    void *arg;
    long first_byte_timeout_ms;
    long deadline_ms;
    size_t max_bytes;
    size_t body_bytes;
    uint64_t started_ns;
    double first_byte_ms;
    bool sent;                /* the request went out on a connection: first-byte clock runs */
    int socket_errno;         /* why our socket() failed, 0 when it did not */
    enum http_outcome forced; /* set by our own timers and limits; HTTP_DONE: none */
    bool attached;            /* the easy handle is in the multi handle */
    bool waiting;             /* started, in h->waiting for its turn to reach curl */
    bool linked;              /* in h->reqs (and counted in h->n_active) */
    bool dead;                /* cancelled or finished: no callback may run any more */
    char errbuf[CURL_ERROR_SIZE];
    TAILQ_ENTRY(http_req) entry;      /* h->reqs while linked */
    TAILQ_ENTRY(http_req) wait_entry; /* h->waiting while waiting */
};

struct http {
    uv_loop_t *loop;  /* borrowed */
    CURLM *multi;     /* owned */
    uv_timer_t timer; /* curl's own timeout clock */
    uv_idle_t pacer;  /* active while transfers wait or this iteration's starts were used */
    LIST_HEAD(, http_sock) socks;
    TAILQ_HEAD(, http_req) reqs;
    TAILQ_HEAD(, http_req) waiting; /* started, not yet handed to curl; FIFO */
    int starts_left;                /* transfers curl may still get this iteration */
    size_t n_active;
    int in_curl;       /* >0 while a curl_multi_* call that may run callbacks is on the stack */
    bool sweep_needed; /* a request was cancelled while in_curl */
    bool closing;
    int pending_closes; /* uv handles whose close callback has not run yet */
};

static void http_check_info(struct http *h);
static void http_sweep(struct http *h);
static void http_maybe_free(struct http *h);
static void http_handle_close_cb(uv_handle_t *handle);

/* ---- the multi handle's sockets and timer ---- */

static void http_after_action(struct http *h) {
    http_check_info(h);
    if (h->sweep_needed)
        http_sweep(h);
}

static void http_socket_action(struct http *h, curl_socket_t fd, int flags) {
    int running = 0;
    h->in_curl++;
    CURLMcode rc = curl_multi_socket_action(h->multi, fd, flags, &running);
    h->in_curl--;
    if (rc != CURLM_OK)
        log_warn("http: curl_multi_socket_action: %s", curl_multi_strerror(rc));
    http_after_action(h);
}

static void http_poll_cb(uv_poll_t *poll, int status, int events) {
    struct http_sock *s = poll->data;
    int flags = 0;
    if (status < 0) {
        /* libuv reports POLLERR (a reset, say) as an error with no events.
         * CURL_CSELECT_ERR alone makes curl fail the transfer ("select/poll
         * returned error") without looking at the socket, which skips its
         * retry of a reused keep-alive connection the server reset just as
         * the request went out. Readable and writable make curl do the I/O,
         * find the error itself, and retry on a fresh connection when that
         * is safe (nothing of the answer arrived). */
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    } else {
        if (events & (UV_READABLE | UV_DISCONNECT))
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    http_socket_action(s->h, s->fd, flags);
}

static void http_sock_close_cb(uv_handle_t *handle) {
    struct http_sock *s = handle->data;
    struct http *h = s->h;
    free(s);
    h->pending_closes--;
    http_maybe_free(h);
}

static void http_sock_release(struct http *h, struct http_sock *s) {
    LIST_REMOVE(s, entry);
    uv_poll_stop(&s->poll);
    h->pending_closes++;
    uv_close((uv_handle_t *)&s->poll, http_sock_close_cb);
}

static struct http_sock *http_sock_new(struct http *h, curl_socket_t fd) {
    struct http_sock *s = xcalloc(1, sizeof *s);
    int rc = uv_poll_init_socket(h->loop, &s->poll, fd);
    if (rc != 0) {
        log_warn("http: cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->h = h;
    s->poll.data = s;
    LIST_INSERT_HEAD(&h->socks, s, entry);
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    struct http *h = userp;
    struct http_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (!h->closing)
                curl_multi_assign(h->multi, fd, NULL);
            http_sock_release(h, s);
        }
        return 0;
    }
    if (!s) {
        s = http_sock_new(h, fd);
        if (!s)
            return -1; /* curl fails this transfer instead of waiting forever */
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    int rc = uv_poll_start(&s->poll, events, http_poll_cb);
    if (rc != 0) {
        log_warn("http: uv_poll_start: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void http_timer_cb(uv_timer_t *timer) {
    http_socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means "as soon as
 * possible" (the next loop iteration, never from inside this call). */
static int http_curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
    struct http *h = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
        return 0;
    }
    int rc = uv_timer_start(&h->timer, http_timer_cb, (uint64_t)timeout_ms, 0);
    if (rc != 0) {
        log_warn("http: uv_timer_start: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- requests ---- */

static void http_req_close_cb(uv_handle_t *handle) {
    struct http_req *req = handle->data;
    struct http *h = req->h;
    free(req);
    h->pending_closes--;
    http_maybe_free(h);
}

/* Takes the easy handle out of the multi handle; curl closes its
 * connection when the transfer had not finished (so the server sees the
 * client go), else keeps it for reuse. Never called while in_curl. */
static void http_req_detach(struct http_req *req) {
    struct http *h = req->h;
    if (!req->attached)
        return;
    h->in_curl++;
    CURLMcode rc = curl_multi_remove_handle(h->multi, req->easy);
    h->in_curl--;
    if (rc != CURLM_OK)
        log_warn("http: curl_multi_remove_handle: %s", curl_multi_strerror(rc));
    req->attached = false;
}

/* Takes a waiting request out of the line. */
static void http_wait_remove(struct http_req *req) {
    if (!req->waiting)
        return;
    TAILQ_REMOVE(&req->h->waiting, req, wait_entry);
    req->waiting = false;
}

/* Takes the request out of h->reqs: it no longer counts as running. */
static void http_req_unlink(struct http_req *req) {
    if (!req->linked)
        return;
    TAILQ_REMOVE(&req->h->reqs, req, entry);
    req->linked = false;
    req->h->n_active--;
}

/* Detaches the request, unlinks it and starts closing its timer, whose
 * callback frees it. Never called while in_curl. */
static void http_req_destroy(struct http_req *req) {
    struct http *h = req->h;
    uv_timer_stop(&req->timer);
    http_wait_remove(req);
    http_req_detach(req);
    http_req_unlink(req);
    curl_easy_cleanup(req->easy);
    req->easy = NULL;
    curl_slist_free_all(req->headers);
    req->headers = NULL;
    free(req->body);
    req->body = NULL;
    h->pending_closes++;
    uv_close((uv_handle_t *)&req->timer, http_req_close_cb);
}

static double http_elapsed_ms(const struct http_req *req) {
    return (double)(uv_hrtime() - req->started_ns) / 1e6;
}

/* Failures before a connection to the server existed: the backend is not
 * there for us (as opposed to one that failed while answering). */
static bool http_code_is_unreachable(CURLcode code) {
    switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT: /* only the connect timeout is curl's own */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return true;
    default:
        return false;
    }
}

static bool http_errno_is_fd_shortage(long e) {
    return e == EMFILE || e == ENFILE;
}

/* Whether a transfer that got nothing failed for want of a file
 * descriptor: our socket() said so, or curl's last system error did, or,
 * when the failure came from elsewhere (the resolver's thread needs fds
 * too, and curl then reports a failed lookup), opening one now fails. */
static int http_fd_shortage(const struct http_req *req) {
    long e = req->socket_errno;
    if (!http_errno_is_fd_shortage(e) &&
        curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &e) != CURLE_OK)
        e = 0;
    if (http_errno_is_fd_shortage(e))
        return (int)e;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return http_errno_is_fd_shortage(errno) ? errno : 0;
}

static void http_fill_result(struct http_req *req, CURLcode code, struct http_result *res) {
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    res->first_byte_ms = req->first_byte_ms;
    res->body_bytes = req->body_bytes;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &res->status);
    curl_off_t retry = -1;
    if (curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &retry) == CURLE_OK && retry > 0)
        res->retry_after_s = (long)retry;
    if (req->forced != HTTP_DONE) {
        res->outcome = req->forced;
    } else if (code == CURLE_OK) {
        res->outcome = HTTP_DONE;
    } else if (http_code_is_unreachable(code)) {
        res->outcome = HTTP_UNREACHABLE;
        res->refused = code == CURLE_COULDNT_CONNECT;
    } else {
        res->outcome = HTTP_BROKEN;
    }
    if ((res->outcome == HTTP_UNREACHABLE || res->outcome == HTTP_BROKEN) && res->status == 0 &&
        req->body_bytes == 0)
        res->fd_errno = http_fd_shortage(req);
    res->error = req->errbuf[0] ? req->errbuf : curl_easy_strerror(code);
    switch (res->outcome) {
    case HTTP_FIRST_BYTE_TIMEOUT:
        res->error = "no response byte before the first-byte timeout";
        break;
    case HTTP_DEADLINE:
        res->error = "the response did not complete before the deadline";
        break;
    case HTTP_TOO_LARGE:
        res->error = "the response exceeded the size limit";
        break;
    case HTTP_STOPPED:
        res->error = "stopped by the reader";
        break;
    default:
        break;
    }
}

/* Reports the end of a transfer and frees the request. */
static void http_req_finish(struct http_req *req, CURLcode code) {
    struct http_result res;
    bool notify = !req->dead;
    req->dead = true;
    if (notify)
        http_fill_result(req, code, &res);
    /* on_done may start new transfers, so it runs with the request already
     * out of the multi handle but before its memory goes. */
    http_req_detach(req);
    http_req_unlink(req);
    if (notify && req->on_done)
        req->on_done(req->arg, &res);
    http_req_destroy(req);
}

static void http_check_info(struct http *h) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_req *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        if (req)
            http_req_finish(req, msg->data.result);
    }
}

/* Removes the requests cancelled while curl was running a callback. */
static void http_sweep(struct http *h) {
    h->sweep_needed = false;
    struct http_req *req = TAILQ_FIRST(&h->reqs), *next;
    for (; req; req = next) {
        next = TAILQ_NEXT(req, entry);
        if (req->dead)
            http_req_destroy(req);
    }
}

/* A first-byte or deadline timer fired: end the transfer from here (a
 * uv callback, so removing the easy handle is safe). */
static void http_req_timer_cb(uv_timer_t *timer) {
    struct http_req *req = timer->data;
    if (req->dead)
        return;
    req->forced = req->first_byte_ms < 0 ? HTTP_FIRST_BYTE_TIMEOUT : HTTP_DEADLINE;
    http_req_finish(req, CURLE_OPERATION_TIMEDOUT);
}

/* The first byte of the response arrived: the wait for a (possibly cold)
 * model is over, the generation deadline starts now. */
static void http_req_first_byte(struct http_req *req) {
    req->first_byte_ms = http_elapsed_ms(req);
    uv_timer_stop(&req->timer);
    if (req->deadline_ms > 0)
        uv_timer_start(&req->timer, http_req_timer_cb, (uint64_t)req->deadline_ms, 0);
}

/* CURLOPT_PREREQFUNCTION: curl has a connection (new or reused) and is
 * about to send the request. The first-byte clock starts here, not at
 * http_start: the wait for a turn to reach curl, the name lookup and the
 * connect are not the backend's answer time (curl's connect timeout bounds
 * them). A request curl sends again on a fresh connection keeps its
 * clock. */
static int http_prereq_cb(void *userp, char *conn_primary_ip, char *conn_local_ip,
                          int conn_primary_port, int conn_local_port) {
    struct http_req *req = userp;
    if (req->dead || req->sent)
        return CURL_PREREQFUNC_OK;
    req->sent = true;
    if (req->first_byte_ms < 0 && req->first_byte_timeout_ms > 0)
        uv_timer_start(&req->timer, http_req_timer_cb, (uint64_t)req->first_byte_timeout_ms, 0);
    return CURL_PREREQFUNC_OK;
}

/* CURLOPT_OPENSOCKETFUNCTION: curl's own socket() call, plus the reason
 * when it fails, so fd exhaustion is not reported as "connection refused".
 * Close-on-exec: no child process is to inherit a backend connection. */
static curl_socket_t http_opensocket_cb(void *userp, curlsocktype purpose,
                                        struct curl_sockaddr *addr) {
    struct http_req *req = userp;
    curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd == CURL_SOCKET_BAD)
        req->socket_errno = errno;
    return fd;
}

static size_t http_header_cb(char *data, size_t size, size_t nitems, void *userp) {
    struct http_req *req = userp;
    if (req->dead)
        return 0;
    if (req->first_byte_ms < 0)
        http_req_first_byte(req);
    return size * nitems;
}

static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *userp) {
    struct http_req *req = userp;
    size_t n = size * nmemb;
    if (req->dead)
        return 0; /* cancelled from inside a callback: abort now, swept later */
    if (req->first_byte_ms < 0)
        http_req_first_byte(req);
    if (req->max_bytes && req->body_bytes + n > req->max_bytes) {
        req->forced = HTTP_TOO_LARGE;
        return 0;
    }
    req->body_bytes += n;
    if (n == 0 || !req->on_data)
        return n;
    long status = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!req->on_data(req->arg, status, data, n)) {
        if (!req->dead)
            req->forced = HTTP_STOPPED;
        return 0;
    }
    return req->dead ? 0 : n;
}

#define HTTP_SETOPT(easy, opt, val)                                                                \
    do {                                                                                           \
        if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK)                                    \
            goto setopt_failed;                                                                    \
    } while (0)

static int http_req_setup(struct http_req *req, const struct http_request *r) {
    CURL *e = req->easy;
    for (const char *const *hd = r->headers; hd && *hd; hd++) {
        struct curl_slist *l = curl_slist_append(req->headers, *hd);
        if (!l)
            return -1;
        req->headers = l;
    }
    /* curl would wait up to a second for "100 Continue" before sending a
     * large body; LLM servers answer at once, so never ask. */
    struct curl_slist *l = curl_slist_append(req->headers, "Expect:");
    if (!l)
        return -1;
    req->headers = l;
    HTTP_SETOPT(e, CURLOPT_URL, r->url);
    HTTP_SETOPT(e, CURLOPT_HTTPHEADER, req->headers);
    HTTP_SETOPT(e, CURLOPT_PRIVATE, req);
    HTTP_SETOPT(e, CURLOPT_ERRORBUFFER, req->errbuf);
    HTTP_SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    HTTP_SETOPT(e, CURLOPT_WRITEFUNCTION, http_write_cb);
    HTTP_SETOPT(e, CURLOPT_WRITEDATA, req);
    HTTP_SETOPT(e, CURLOPT_HEADERFUNCTION, http_header_cb);
    HTTP_SETOPT(e, CURLOPT_HEADERDATA, req);
    HTTP_SETOPT(e, CURLOPT_PREREQFUNCTION, http_prereq_cb);
    HTTP_SETOPT(e, CURLOPT_PREREQDATA, req);
    HTTP_SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, http_opensocket_cb);
    HTTP_SETOPT(e, CURLOPT_OPENSOCKETDATA, req);
    HTTP_SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS,
                r->connect_timeout_ms > 0 ? r->connect_timeout_ms
                                          : HTTP_DEFAULT_CONNECT_TIMEOUT_MS);
    HTTP_SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (r->fresh_connection)
        HTTP_SETOPT(e, CURLOPT_FRESH_CONNECT, 1L);
    HTTP_SETOPT(e, CURLOPT_TCP_NODELAY, 1L);
    HTTP_SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    HTTP_SETOPT(e, CURLOPT_USERAGENT, "promptd");
    if (r->method && strcmp(r->method, "POST") == 0) {
        HTTP_SETOPT(e, CURLOPT_POST, 1L);
        HTTP_SETOPT(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        HTTP_SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else {
        HTTP_SETOPT(e, CURLOPT_HTTPGET, 1L);
    }
    return 0;
setopt_failed:
    return -1;
}

static struct http_req *http_req_alloc(struct http *h, const struct http_request *r) {
    struct http_req *req = xcalloc(1, sizeof *req);
    req->h = h;
    req->on_data = r->on_data;
    req->on_done = r->on_done;
    req->arg = r->arg;
    req->first_byte_timeout_ms = r->first_byte_timeout_ms;
    req->deadline_ms = r->deadline_ms;
    req->max_bytes = r->max_response_bytes;
    req->first_byte_ms = -1;
    req->forced = HTTP_DONE;
    if (r->body_len) {
        req->body = xmalloc(r->body_len);
        memcpy(req->body, r->body, r->body_len);
    }
    req->easy = curl_easy_init();
    if (!req->easy) {
        free(req->body);
        free(req);
        return NULL;
    }
    return req;
}

static void http_req_free_unstarted(struct http_req *req) {
    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    free(req->body);
    free(req);
}

/* Hands the easy handle to curl, which opens the connection in its next
 * timeout call. Never called while in_curl. */
static CURLMcode http_req_attach(struct http_req *req) {
    struct http *h = req->h;
    h->in_curl++;
    CURLMcode rc = curl_multi_add_handle(h->multi, req->easy);
    h->in_curl--;
    req->attached = rc == CURLM_OK;
    return rc;
}

/* A waiting request's turn came: give it to curl, or end it with the
 * reason curl refused it (http_start has returned long ago). */
static void http_req_attach_waiting(struct http_req *req) {
    http_wait_remove(req);
    if (req->dead) { /* cancelled from inside curl: the sweep has not run yet */
        http_req_destroy(req);
        return;
    }
    CURLMcode rc = http_req_attach(req);
    if (rc == CURLM_OK)
        return;
    snprintf(req->errbuf, sizeof req->errbuf, "curl_multi_add_handle: %s", curl_multi_strerror(rc));
    http_req_finish(req, CURLE_FAILED_INIT);
}

/* Once per loop iteration while needed: refills this iteration's starts
 * and hands the next waiting transfers to curl. */
static void http_pacer_cb(uv_idle_t *idle) {
    struct http *h = idle->data;
    h->starts_left = HTTP_STARTS_PER_TICK;
    while (!TAILQ_EMPTY(&h->waiting) && h->starts_left > 0) {
        h->starts_left--;
        http_req_attach_waiting(TAILQ_FIRST(&h->waiting));
    }
    if (TAILQ_EMPTY(&h->waiting))
        uv_idle_stop(&h->pacer);
}

/* Puts a set-up request in line behind the waiting ones. */
static void http_wait_append(struct http_req *req) {
    req->waiting = true;
    TAILQ_INSERT_TAIL(&req->h->waiting, req, wait_entry);
}

static void http_req_link(struct http_req *req) {
    TAILQ_INSERT_HEAD(&req->h->reqs, req, entry);
    req->linked = true;
    req->h->n_active++;
}

/* Undoes http_start after its timer was initialised. */
static void http_req_abandon(struct http_req *req) {
    struct http *h = req->h;
    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    free(req->body);
    req->easy = NULL;
    req->headers = NULL;
    req->body = NULL;
    h->pending_closes++;
    uv_close((uv_handle_t *)&req->timer, http_req_close_cb);
}

struct http_req *http_start(struct http *h, const struct http_request *r, char *err,
                            size_t errlen) {
    if (h->closing) {
        snprintf(err, errlen, "the daemon is stopping");
        return NULL;
    }
    struct http_req *req = http_req_alloc(h, r);
    if (!req) {
        snprintf(err, errlen, "curl_easy_init failed");
        return NULL;
    }
    if (http_req_setup(req, r) != 0) {
        snprintf(err, errlen, "could not set up the HTTP request to %s", r->url);
        http_req_free_unstarted(req);
        return NULL;
    }
    int rc = uv_timer_init(h->loop, &req->timer);
    if (rc != 0) {
        snprintf(err, errlen, "uv_timer_init: %s", uv_strerror(rc));
        http_req_free_unstarted(req);
        return NULL;
    }
    req->timer.data = req;
    req->started_ns = uv_hrtime();
    if (!TAILQ_EMPTY(&h->waiting) || h->starts_left <= 0) {
        http_wait_append(req);
    } else {
        h->starts_left--;
        CURLMcode mrc = http_req_attach(req);
        if (mrc != CURLM_OK) {
            snprintf(err, errlen, "curl_multi_add_handle: %s", curl_multi_strerror(mrc));
            http_req_abandon(req);
            return NULL;
        }
    }
    /* The next iteration refills the starts and takes the waiting ones. */
    uv_idle_start(&h->pacer, http_pacer_cb);
    http_req_link(req);
    return req;
}

void http_req_cancel(struct http_req *req) {
    if (!req || req->dead)
        return;
    req->dead = true;
    if (req->h->in_curl > 0) {
        /* Inside a curl callback: the write callback aborts this transfer
         * and the sweep after curl returns removes it. */
        req->h->sweep_needed = true;
        return;
    }
    http_req_destroy(req);
}

size_t http_active(const struct http *h) {
    return h ? h->n_active : 0;
}

/* ---- life cycle ---- */

struct http *http_new(uv_loop_t *loop, long max_idle) {
    /* Explicit, and early: curl's implicit init is not thread-safe, and the
     * daemon has other threads. Reference-counted, undone in http_free. */
    CURLcode gc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gc != CURLE_OK) {
        log_error("http: curl_global_init: %s", curl_easy_strerror(gc));
        return NULL;
    }
    struct http *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    LIST_INIT(&h->socks);
    TAILQ_INIT(&h->reqs);
    TAILQ_INIT(&h->waiting);
    h->multi = curl_multi_init();
    if (!h->multi) {
        log_error("http: curl_multi_init failed");
        free(h);
        curl_global_cleanup();
        return NULL;
    }
    int rc = uv_timer_init(loop, &h->timer);
    if (rc != 0) {
        log_error("http: uv_timer_init: %s", uv_strerror(rc));
        curl_multi_cleanup(h->multi);
        free(h);
        curl_global_cleanup();
        return NULL;
    }
    h->timer.data = h;
    uv_idle_init(loop, &h->pacer); /* cannot fail */
    h->pacer.data = h;
    h->starts_left = HTTP_STARTS_PER_TICK;
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_curl_timer_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, max_idle > 0 ? max_idle : 8L) !=
            CURLM_OK) {
        log_error("http: curl_multi_setopt failed");
        curl_multi_cleanup(h->multi);
        h->multi = NULL;
        /* The handles' memory is inside h: h goes in their close callbacks. */
        h->closing = true;
        h->pending_closes += 2;
        uv_close((uv_handle_t *)&h->timer, http_handle_close_cb);
        uv_close((uv_handle_t *)&h->pacer, http_handle_close_cb);
        return NULL;
    }
    return h;
}

/* The close callback of h's own timer and pacer. */
static void http_handle_close_cb(uv_handle_t *handle) {
    struct http *h = handle->data;
    h->pending_closes--;
    http_maybe_free(h);
}

static void http_maybe_free(struct http *h) {
    if (h->closing && h->pending_closes == 0) {
        free(h);
        curl_global_cleanup();
    }
}

void http_close(struct http *h) {
    if (!h || h->closing)
        return;
    while (!TAILQ_EMPTY(&h->reqs)) {
        TAILQ_FIRST(&h->reqs)->dead = true;
        http_req_destroy(TAILQ_FIRST(&h->reqs));
    }
    h->closing = true;
    h->in_curl++;
    curl_multi_cleanup(h->multi);
    h->in_curl--;
    h->multi = NULL;
    /* curl may not report every socket's removal during cleanup. */
    while (!LIST_EMPTY(&h->socks))
        http_sock_release(h, LIST_FIRST(&h->socks));
    uv_timer_stop(&h->timer);
    uv_idle_stop(&h->pacer);
    h->pending_closes += 2;
    uv_close((uv_handle_t *)&h->timer, http_handle_close_cb);
    uv_close((uv_handle_t *)&h->pacer, http_handle_close_cb);
}
