/* http.c against a tiny HTTP server on the same libuv loop: a complete
 * answer and connection reuse, connection refused, the first-byte timeout,
 * the generation deadline, the size cap, a cancel from inside on_data, a
 * cancel while waiting, http_close with transfers in flight, and the pacing
 * of a burst (at most HTTP_STARTS_PER_TICK new transfers per iteration). Each test
 * ends with uv_loop_close() == 0: every handle the module opened was
 * closed and its memory freed (ASan checks the rest). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "unit.h"

enum srv_mode { SRV_OK, SRV_SILENT, SRV_HEADERS_ONLY, SRV_CHUNKED, SRV_BIG };

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    enum srv_mode mode;
    int accepted;
    int port;
};

struct srv_conn {
    uv_tcp_t tcp;
    struct srv *srv;
    char buf[8192];
    size_t len;
    uv_timer_t later; /* second chunk of SRV_CHUNKED */
    bool timer_on;
};

static void srv_conn_free(uv_handle_t *h) {
    struct srv_conn *c = h->data;
    if (c->timer_on) {
        c->timer_on = false;
        uv_close((uv_handle_t *)&c->later, srv_conn_free);
        return;
    }
    free(c);
}

static void srv_write_done(uv_write_t *w, int status) {
    free(w->data);
    free(w);
}

static void srv_write(struct srv_conn *c, const char *data, size_t len) {
    uv_write_t *w = malloc(sizeof *w);
    char *copy = malloc(len);
    memcpy(copy, data, len);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, srv_write_done) != 0) {
        free(copy);
        free(w);
    }
}

static void srv_second_chunk(uv_timer_t *t) {
    struct srv_conn *c = t->data;
    const char rest[] = "5\r\nworld\r\n0\r\n\r\n";
    srv_write(c, rest, sizeof rest - 1);
}

static void srv_answer(struct srv_conn *c) {
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    static const char headers_only[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    static const char chunked[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    switch (c->srv->mode) {
    case SRV_OK:
        srv_write(c, ok, sizeof ok - 1);
        break;
    case SRV_HEADERS_ONLY:
        srv_write(c, headers_only, sizeof headers_only - 1);
        break;
    case SRV_CHUNKED:
        srv_write(c, chunked, sizeof chunked - 1);
        uv_timer_init(c->srv->loop, &c->later);
        c->later.data = c;
        c->timer_on = true;
        uv_timer_start(&c->later, srv_second_chunk, 50, 0);
        break;
    case SRV_BIG: {
        char *big = malloc(10100);
        int n = snprintf(big, 100, "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n");
        memset(big + n, 'x', 10000);
        srv_write(c, big, (size_t)n + 10000);
        free(big);
        break;
    }
    case SRV_SILENT:
        break;
    }
}

static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    struct srv_conn *c = h->data;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len - 1));
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    struct srv_conn *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, srv_conn_free);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end;
    while ((end = strstr(c->buf, "\r\n\r\n"))) { /* one GET request each */
        size_t used = (size_t)(end + 4 - c->buf);
        memmove(c->buf, end + 4, c->len - used + 1);
        c->len -= used;
        srv_answer(c);
    }
}

static void srv_on_conn(uv_stream_t *l, int status) {
    struct srv *srv = l->data;
    struct srv_conn *c = calloc(1, sizeof *c);
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, srv_conn_free);
        return;
    }
    srv->accepted++;
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

static int srv_start(struct srv *srv, uv_loop_t *loop, enum srv_mode mode) {
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->mode = mode;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    /* A backlog no test fills: a dropped SYN is sent again only after 1 s,
     * longer than a test waits (with curl 8.14, Debian 13's, 40 connects
     * overflowed a backlog of 16). */
    if (uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 512, srv_on_conn) != 0)
        return -1;
    int len = sizeof addr;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&addr, &len);
    srv->port = ntohs(addr.sin_port);
    return 0;
}

/* Closes the server's handles: the listener, and each connection (whose
 * close callback also closes its timer). http.c's are closing already. */
static void close_any(uv_handle_t *h, void *arg) {
    struct srv *srv = arg;
    if (uv_is_closing(h) || h->type != UV_TCP)
        return;
    uv_close(h, h == (uv_handle_t *)&srv->listener ? NULL : srv_conn_free);
}

/* ---- the client side ---- */

struct got {
    char body[16384];
    size_t len;
    int done_calls;
    struct http_result res;
    char error[256];
    struct http_req *cancel_me; /* cancel this from inside on_data */
};

static bool got_data(void *arg, long status, const char *data, size_t len) {
    struct got *g = arg;
    if (g->len + len < sizeof g->body) {
        memcpy(g->body + g->len, data, len);
        g->len += len;
    }
    if (g->cancel_me) {
        http_req_cancel(g->cancel_me);
        g->cancel_me = NULL;
    }
    return true;
}

static void got_done(void *arg, const struct http_result *res) {
    struct got *g = arg;
    g->done_calls++;
    g->res = *res;
    snprintf(g->error, sizeof g->error, "%s", res->error ? res->error : "");
    g->res.error = g->error;
}

static struct http_req *get(struct http *h, int port, struct got *g, long first_ms,
                            long deadline_ms, size_t max) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    struct http_request r = {
        .method = "GET",
        .url = url,
        .first_byte_timeout_ms = first_ms,
        .deadline_ms = deadline_ms,
        .max_response_bytes = max,
        .on_data = got_data,
        .on_done = got_done,
        .arg = g,
    };
    char err[128];
    return http_start(h, &r, err, sizeof err);
}

static void wake_cb(uv_timer_t *t) {
    *(int *)t->data = 1;
}

/* Runs the loop until *flag or ms pass (a timer wakes the loop when
 * nothing else would). */
static void run_until(uv_loop_t *loop, const int *flag, int ms) {
    uv_timer_t wake;
    int expired = 0;
    uv_timer_init(loop, &wake);
    wake.data = &expired;
    uv_timer_start(&wake, wake_cb, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void run_for(uv_loop_t *loop, int ms) {
    int never = 0;
    run_until(loop, &never, ms);
}

/* Closes everything and checks that nothing is left open. */
static int teardown(uv_loop_t *loop, struct http *h, struct srv *srv) {
    http_close(h);
    if (srv)
        uv_walk(loop, close_any, srv);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop);
}

static void test_complete_answer_and_reuse(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_OK), 0);
    struct http *h = http_new(&loop, 8);
    CHECK(h != NULL);
    for (int i = 0; i < 3; i++) {
        struct got g = {0};
        CHECK(get(h, srv.port, &g, 2000, 2000, 0) != NULL);
        run_until(&loop, &g.done_calls, 5000);
        CHECK_INT(g.done_calls, 1);
        CHECK_INT(g.res.outcome, HTTP_DONE);
        CHECK_INT(g.res.status, 200);
        CHECK_INT(g.len, 5);
        CHECK(memcmp(g.body, "hello", 5) == 0);
        CHECK(g.res.first_byte_ms >= 0);
    }
    CHECK_INT(srv.accepted, 1); /* one connection, reused */
    CHECK_INT(http_active(h), 0);
    CHECK_INT(teardown(&loop, h, &srv), 0);
}

static void test_refused(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd); /* nothing listens there now */
    struct http *h = http_new(&loop, 8);
    struct got g = {0};
    CHECK(get(h, ntohs(a.sin_port), &g, 2000, 2000, 0) != NULL);
    run_until(&loop, &g.done_calls, 5000);
    CHECK_INT(g.done_calls, 1);
    CHECK_INT(g.res.outcome, HTTP_UNREACHABLE);
    CHECK(g.res.refused);
    CHECK_INT(teardown(&loop, h, NULL), 0);
}

static void test_first_byte_timeout(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_SILENT), 0);
    struct http *h = http_new(&loop, 8);
    struct got g = {0};
    uint64_t t0 = uv_now(&loop);
    CHECK(get(h, srv.port, &g, 150, 5000, 0) != NULL);
    run_until(&loop, &g.done_calls, 5000);
    CHECK_INT(g.res.outcome, HTTP_FIRST_BYTE_TIMEOUT);
    CHECK(uv_now(&loop) - t0 >= 140);
    CHECK(g.res.first_byte_ms < 0);
    CHECK_INT(teardown(&loop, h, &srv), 0);
}

static void test_deadline_after_the_first_byte(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_HEADERS_ONLY), 0);
    struct http *h = http_new(&loop, 8);
    struct got g = {0};
    CHECK(get(h, srv.port, &g, 5000, 150, 0) != NULL);
    run_until(&loop, &g.done_calls, 5000);
    CHECK_INT(g.res.outcome, HTTP_DEADLINE);
    CHECK(g.res.first_byte_ms >= 0);
    CHECK_INT(g.res.status, 200);
    CHECK_INT(teardown(&loop, h, &srv), 0);
}

static void test_size_cap(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_BIG), 0);
    struct http *h = http_new(&loop, 8);
    struct got g = {0};
    CHECK(get(h, srv.port, &g, 2000, 2000, 1000) != NULL);
    run_until(&loop, &g.done_calls, 5000);
    CHECK_INT(g.res.outcome, HTTP_TOO_LARGE);
    CHECK(g.len <= 1000);
    struct got g2 = {0};
    CHECK(get(h, srv.port, &g2, 2000, 2000, 10000) != NULL); /* exactly at the cap */
    run_until(&loop, &g2.done_calls, 5000);
    CHECK_INT(g2.res.outcome, HTTP_DONE);
    CHECK_INT(g2.len, 10000);
    CHECK_INT(teardown(&loop, h, &srv), 0);
}

static void test_cancel_from_inside_on_data(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_CHUNKED), 0);
    struct http *h = http_new(&loop, 8);
    struct got g = {0};
    struct http_req *req = get(h, srv.port, &g, 2000, 2000, 0);
    CHECK(req != NULL);
    g.cancel_me = req;
    run_for(&loop, 300);
    CHECK_INT(g.done_calls, 0); /* cancelled: no on_done */
    CHECK_INT(g.len, 5);        /* the second chunk never reached us */
    CHECK_INT(http_active(h), 0);
    /* The engine still works afterwards. */
    srv.mode = SRV_OK;
    struct got g2 = {0};
    CHECK(get(h, srv.port, &g2, 2000, 2000, 0) != NULL);
    run_until(&loop, &g2.done_calls, 5000);
    CHECK_INT(g2.res.outcome, HTTP_DONE);
    CHECK_INT(srv.accepted, 2); /* the cancelled connection was not reused */
    CHECK_INT(teardown(&loop, h, &srv), 0);
}

static void test_cancel_while_waiting_and_close_in_flight(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_SILENT), 0);
    struct http *h = http_new(&loop, 8);
    struct got a = {0}, b = {0};
    struct http_req *ra = get(h, srv.port, &a, 5000, 5000, 0);
    CHECK(ra != NULL && get(h, srv.port, &b, 5000, 5000, 0) != NULL);
    run_for(&loop, 100);
    CHECK_INT(http_active(h), 2);
    http_req_cancel(ra);
    CHECK_INT(http_active(h), 1);
    run_for(&loop, 50);
    CHECK_INT(a.done_calls, 0);
    /* b is still waiting: http_close must abort it without a callback. */
    CHECK_INT(teardown(&loop, h, &srv), 0);
    CHECK_INT(b.done_calls, 0);
}

/* Transfers started at once: more than HTTP_STARTS_PER_TICK (8), so most
 * wait for later iterations. */
#define N 100

static void test_burst_is_paced(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_OK), 0);
    struct http *h = http_new(&loop, N);
    static struct got g[N];
    memset(g, 0, sizeof g);
    for (int i = 0; i < N; i++)
        CHECK(get(h, srv.port, &g[i], 5000, 5000, 0) != NULL);
    CHECK_INT(http_active(h), N);
    int max_new = 0, iters = 0, prev = 0;
    for (;;) {
        int done = 0;
        for (int i = 0; i < N; i++)
            done += g[i].done_calls;
        if (done == N || iters > 100000)
            break;
        uv_run(&loop, UV_RUN_ONCE);
        iters++;
        if (srv.accepted - prev > max_new)
            max_new = srv.accepted - prev;
        prev = srv.accepted;
    }
    for (int i = 0; i < N; i++) {
        CHECK_INT(g[i].done_calls, 1);
        CHECK_INT(g[i].res.outcome, HTTP_DONE);
    }
    printf("  iterations %d, most connections accepted in one iteration %d\n", iters, max_new);
    CHECK(max_new <= 32);
    CHECK_INT(http_active(h), 0);
    CHECK_INT(teardown(&loop, h, &srv), 0);
}

static void test_cancel_and_time_out_while_waiting(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_SILENT), 0);
    struct http *h = http_new(&loop, N);
    static struct got g[40];
    memset(g, 0, sizeof g);
    struct http_req *r[40];
    for (int i = 0; i < 40; i++)
        CHECK((r[i] = get(h, srv.port, &g[i], 30, 5000, 0)) != NULL);
    http_req_cancel(r[39]); /* still waiting */
    http_req_cancel(r[0]);  /* already with curl */
    CHECK_INT(http_active(h), 38);
    run_for(&loop, 300);
    CHECK_INT(g[0].done_calls, 0);
    CHECK_INT(g[39].done_calls, 0);
    for (int i = 1; i < 39; i++) {
        CHECK_INT(g[i].done_calls, 1);
        CHECK_INT(g[i].res.outcome, HTTP_FIRST_BYTE_TIMEOUT);
    }
    CHECK_INT(http_active(h), 0);
    CHECK_INT(teardown(&loop, h, &srv), 0);
}

static void test_close_with_waiting(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv srv;
    CHECK_INT(srv_start(&srv, &loop, SRV_SILENT), 0);
    struct http *h = http_new(&loop, N);
    static struct got g[40];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 40; i++)
        CHECK(get(h, srv.port, &g[i], 5000, 5000, 0) != NULL);
    CHECK_INT(teardown(&loop, h, &srv), 0);
    for (int i = 0; i < 40; i++)
        CHECK_INT(g[i].done_calls, 0);
}

int main(void) {
    RUN(test_complete_answer_and_reuse);
    RUN(test_refused);
    RUN(test_first_byte_timeout);
    RUN(test_deadline_after_the_first_byte);
    RUN(test_size_cap);
    RUN(test_cancel_from_inside_on_data);
    RUN(test_cancel_while_waiting_and_close_in_flight);
    RUN(test_burst_is_paced);
    RUN(test_cancel_and_time_out_while_waiting);
    RUN(test_close_with_waiting);
    UNIT_EXIT();
}
