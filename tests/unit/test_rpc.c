/* Framing and JSON-RPC validation, in process: a real server on a
 * temporary socket, a blocking client, and the loop pumped by hand. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "methods_core.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "rpc.h"
#include "server.h"
#include "unit.h"

static struct daemon d;
static char sock_path[96];
static int cancel_hook_runs;

/* ---- framing ---- */

struct lines {
    int n;
    char seen[8][32];
};

static bool collect(void *arg, const char *line, size_t n) {
    struct lines *l = arg;
    snprintf(l->seen[l->n++], 32, "%.*s", (int)n, line);
    return l->n < 8;
}

static void test_frame_many_lines_and_partial(void) {
    struct lines l = {0};
    const char *buf = "a\nbb\n\nccc";
    size_t used = conn_frame_lines(buf, strlen(buf), collect, &l);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.seen[0], "a");
    CHECK_STR(l.seen[1], "bb");
    CHECK_STR(l.seen[2], "");
    CHECK_INT(used, 6); /* "ccc" stays for the next read */
}

static bool stop_after_one(void *arg, const char *line, size_t n) {
    (*(int *)arg)++;
    return false;
}

static void test_frame_stops_when_asked(void) {
    int n = 0;
    size_t used = conn_frame_lines("x\ny\n", 4, stop_after_one, &n);
    CHECK_INT(n, 1);
    CHECK_INT(used, 2);
}

static void test_frame_no_newline(void) {
    int n = 0;
    CHECK_INT(conn_frame_lines("abc", 3, stop_after_one, &n), 0);
    CHECK_INT(n, 0);
}

/* ---- a test method table ---- */

static struct rpc_call *parked;

static void on_cancel(void *arg) {
    cancel_hook_runs++;
    rpc_reply_cancelled(arg);
    parked = NULL;
}

static void method_park(struct rpc_call *call, json_t *params) {
    parked = call;
    rpc_call_set_cancel(call, on_cancel, call);
}

static void method_finish_parked(struct rpc_call *call, json_t *params) {
    if (parked) {
        rpc_reply(parked, json_string("late"));
        parked = NULL;
    }
    rpc_reply(call, json_true());
}

static void method_params(struct rpc_call *call, json_t *params) {
    const char *s = "default";
    json_int_t n = 7;
    bool b = false;
    double x = 0.5;
    if (!rpc_param_str(call, params, "s", false, &s) ||
        !rpc_param_int(call, params, "n", false, 1, 10, &n) ||
        !rpc_param_bool(call, params, "b", &b) ||
        !rpc_param_num(call, params, "x", false, 0, 1, &x))
        return;
    rpc_reply(call, json_pack("{s:s, s:I, s:b, s:f}", "s", s, "n", n, "b", b, "x", x));
}

/* Notifications of 64 KiB until the client is gone or 100 MiB are sent
 * (past LIMIT_CONN_OUTPUT_HARD_BYTES), then parks: as a streaming call to a
 * client that never reads. */
static void method_flood(struct rpc_call *call, json_t *params) {
    size_t n = 64 * 1024;
    char *text = malloc(n + 1);
    memset(text, 'f', n);
    text[n] = '\0';
    for (int i = 0; i < 1600 && rpc_call_client_alive(call); i++)
        rpc_notify(call, "test.flood", json_pack("{s:s}", "text", text));
    free(text);
    method_park(call, params);
}

static const struct rpc_method test_methods[] = {
    {"test.flood", method_flood},
    {"test.park", method_park},
    {"test.finish_parked", method_finish_parked},
    {"test.params", method_params},
    {NULL, NULL},
};

/* ---- client helpers ---- */

static int client_connect(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, sock_path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        return -1;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 5; i++)
        uv_run(d.loop, UV_RUN_NOWAIT); /* accept */
    return fd;
}

static void client_write(int fd, const char *s, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0) {
            uv_run(d.loop, UV_RUN_NOWAIT);
            continue;
        }
        s += n;
        len -= (size_t)n;
        uv_run(d.loop, UV_RUN_NOWAIT);
    }
}

static char rbuf[1 << 20];
static size_t rlen;

/* Next line from the daemon as JSON (new ref), pumping the loop; NULL at
 * EOF or after many idle rounds. */
static json_t *client_read(int fd) {
    for (int rounds = 0; rounds < 2000; rounds++) {
        char *nl = memchr(rbuf, '\n', rlen);
        if (nl) {
            *nl = '\0';
            json_t *j = json_loads(rbuf, 0, NULL);
            size_t used = (size_t)(nl - rbuf) + 1;
            memmove(rbuf, rbuf + used, rlen - used);
            rlen -= used;
            return j;
        }
        uv_run(d.loop, UV_RUN_NOWAIT);
        ssize_t n = read(fd, rbuf + rlen, sizeof rbuf - rlen - 1);
        if (n == 0)
            return NULL;
        if (n > 0)
            rlen += (size_t)n;
        else
            usleep(200);
    }
    return NULL;
}

static int error_code(json_t *msg) {
    return (int)json_integer_value(json_object_get(json_object_get(msg, "error"), "code"));
}

static const char *error_kind(json_t *msg) {
    return json_string_value(
        json_object_get(json_object_get(json_object_get(msg, "error"), "data"), "kind"));
}

static json_t *roundtrip(int fd, const char *line) {
    client_write(fd, line, strlen(line));
    return client_read(fd);
}

static void expect_error(int fd, const char *line, int code, const char *kind, bool id_null) {
    json_t *r = roundtrip(fd, line);
    if (!r || error_code(r) != code || !error_kind(r) || strcmp(error_kind(r), kind) != 0 ||
        (id_null && !json_is_null(json_object_get(r, "id")))) {
        char *t = r ? json_dumps(r, 0) : NULL;
        printf("  %s -> %s (expected %d %s)\n", line, t ? t : "nothing", code, kind);
        free(t);
        unit_failed_flag = 1;
    }
    json_decref(r);
}

/* ---- tests through the server ---- */

static void test_validation_errors(void) {
    int fd = client_connect();
    CHECK(fd >= 0);
    expect_error(fd, "not json\n", RPC_PARSE_ERROR, "parse_error", true);
    expect_error(fd, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n", RPC_INVALID_REQUEST,
                 "invalid_request", true);
    expect_error(fd, "\"ping\"\n", RPC_INVALID_REQUEST, "invalid_request", true);
    expect_error(fd, "42\n", RPC_INVALID_REQUEST, "invalid_request", true);
    expect_error(fd, "{\"id\":1,\"method\":\"ping\"}\n", RPC_INVALID_REQUEST, "invalid_request",
                 false);
    expect_error(fd, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}\n", RPC_INVALID_REQUEST,
                 "invalid_request", false);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}\n", RPC_INVALID_REQUEST,
                 "invalid_request", true);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}\n", RPC_INVALID_REQUEST,
                 "invalid_request", true);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":1}\n", RPC_INVALID_REQUEST, "invalid_request",
                 false);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}\n", RPC_INVALID_REQUEST,
                 "invalid_request", false);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":\"x\"}\n",
                 RPC_INVALID_REQUEST, "invalid_request", false);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}\n",
                 RPC_INVALID_PARAMS, "invalid_params", false);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no.such\"}\n",
                 RPC_METHOD_NOT_FOUND, "method_not_found", false);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"\xff\"}\n",
                 RPC_PARSE_ERROR, "parse_error", true);
    const char nul_line[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pi\0ng\"}\n";
    client_write(fd, nul_line, sizeof nul_line - 1);
    json_t *r = client_read(fd);
    CHECK(r && error_code(r) == RPC_PARSE_ERROR);
    json_decref(r);
    close(fd);
}

static void test_ids_echoed_and_notifications_silent(void) {
    int fd = client_connect();
    json_t *r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n"
                              "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"ping\"}\n");
    CHECK(r != NULL);
    CHECK_STR(json_string_value(json_object_get(r, "id")), "abc");
    CHECK_STR(json_string_value(json_object_get(r, "result")), "pong");
    json_decref(r);
    r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}\r\n");
    CHECK(r && json_is_null(json_object_get(r, "id")));
    CHECK_STR(json_string_value(json_object_get(r, "result")), "pong");
    json_decref(r);
    r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}\n");
    CHECK(r && json_real_value(json_object_get(r, "id")) == 1.5);
    json_decref(r);
    close(fd);
}

static void test_param_readers(void) {
    int fd = client_connect();
    json_t *r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\"}\n");
    CHECK_STR(json_string_value(json_object_get(json_object_get(r, "result"), "s")), "default");
    json_decref(r);
    const char *bad[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\",\"params\":{\"s\":1}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\",\"params\":{\"n\":11}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\",\"params\":{\"n\":0}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\",\"params\":{\"n\":1.5}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\",\"params\":{\"b\":\"yes\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\",\"params\":{\"x\":2}}\n",
    };
    const char *fields[] = {"s", "n", "n", "n", "b", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = roundtrip(fd, bad[i]);
        CHECK(r && error_code(r) == RPC_INVALID_PARAMS);
        json_t *data = json_object_get(json_object_get(r, "error"), "data");
        CHECK_STR(json_string_value(json_object_get(data, "field")), fields[i]);
        json_decref(r);
    }
    r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.params\",\"params\":{\"n\":"
                      "10,\"b\":true,\"x\":1,\"s\":\"v\"}}\n");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "result"), "n")), 10);
    json_decref(r);
    close(fd);
}

static void test_out_of_order_and_cancel(void) {
    int fd = client_connect();
    client_write(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.park\"}\n", 46);
    json_t *r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n");
    CHECK_INT(json_integer_value(json_object_get(r, "id")), 2); /* answered before id 1 */
    json_decref(r);
    r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"cancel\",\"params\":"
                      "{\"request_id\":1}}\n");
    json_t *r2 = client_read(fd);
    CHECK(r && r2);
    /* Either order: the cancelled call and the cancel's own answer. */
    json_t *cancelled = json_integer_value(json_object_get(r, "id")) == 1 ? r : r2;
    json_t *ack = cancelled == r ? r2 : r;
    CHECK_INT(error_code(cancelled), RPC_CANCELLED);
    CHECK(json_is_true(json_object_get(json_object_get(ack, "result"), "cancelled")));
    json_decref(r);
    json_decref(r2);
    r = roundtrip(fd, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"cancel\",\"params\":"
                      "{\"request_id\":99}}\n");
    CHECK(json_is_false(json_object_get(json_object_get(r, "result"), "cancelled")));
    json_decref(r);
    expect_error(fd, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"cancel\"}\n", RPC_INVALID_PARAMS,
                 "invalid_params", false);
    close(fd);
}

static void test_disconnect_runs_cancel_hooks(void) {
    int fd = client_connect();
    int before = cancel_hook_runs;
    client_write(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.park\"}\n", 46);
    for (int i = 0; i < 20; i++)
        uv_run(d.loop, UV_RUN_NOWAIT);
    CHECK(parked != NULL);
    close(fd);
    for (int i = 0; i < 50 && cancel_hook_runs == before; i++) {
        uv_run(d.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK_INT(cancel_hook_runs, before + 1);
    CHECK(parked == NULL);
}

static void test_too_large_closes(void) {
    int fd = client_connect();
    size_t n = (size_t)d.cfg->max_request_bytes + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\n';
    client_write(fd, big, n + 1);
    free(big);
    json_t *r = client_read(fd);
    CHECK(r && error_code(r) == RPC_INVALID_REQUEST);
    CHECK_STR(error_kind(r), "too_large");
    json_decref(r);
    CHECK(client_read(fd) == NULL); /* closed */
    close(fd);
    rlen = 0;
}

static void test_exactly_max_is_accepted(void) {
    int fd = client_connect();
    const char *req = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}";
    size_t n = (size_t)d.cfg->max_request_bytes; /* padded to the limit exactly */
    char *line = malloc(n + 1);
    memset(line, ' ', n);
    memcpy(line, req, strlen(req));
    line[n] = '\n';
    client_write(fd, line, n + 1);
    free(line);
    json_t *r = client_read(fd);
    CHECK(r != NULL);
    CHECK_STR(json_string_value(json_object_get(r, "result")), "pong");
    json_decref(r);
    close(fd);
}

/* Pumps the loop until cond holds or about two seconds pass. */
#define PUMP_UNTIL(cond)                                                                           \
    for (int pump_ = 0; pump_ < 2000 && !(cond); pump_++) {                                        \
        uv_run(d.loop, UV_RUN_NOWAIT);                                                             \
        usleep(1000);                                                                              \
    }

static void test_string_id_at_and_past_its_limit(void) {
    int fd = client_connect();
    char id[LIMIT_REQUEST_ID_BYTES + 2], line[LIMIT_REQUEST_ID_BYTES + 100];
    memset(id, 'i', sizeof id - 1);
    id[LIMIT_REQUEST_ID_BYTES] = '\0'; /* exactly at the limit */
    snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"method\":\"ping\"}\n", id);
    json_t *r = roundtrip(fd, line);
    CHECK(r != NULL);
    CHECK_STR(json_string_value(json_object_get(r, "id")), id);
    json_decref(r);
    id[LIMIT_REQUEST_ID_BYTES] = 'i'; /* one byte past it */
    id[LIMIT_REQUEST_ID_BYTES + 1] = '\0';
    snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"method\":\"ping\"}\n", id);
    expect_error(fd, line, RPC_INVALID_REQUEST, "invalid_request", true);
    close(fd);
}

/* Reads and drops what the daemon sends until EOF; false if none came. */
static bool client_drain_to_eof(int fd) {
    static char junk[1 << 16];
    for (int rounds = 0; rounds < 200000; rounds++) {
        uv_run(d.loop, UV_RUN_NOWAIT);
        ssize_t n = read(fd, junk, sizeof junk);
        if (n == 0)
            return true;
        if (n < 0)
            usleep(100);
    }
    return false;
}

static void test_output_ceiling_closes_a_client_that_never_reads(void) {
    int fd = client_connect();
    int hooks = cancel_hook_runs;
    uint64_t closed = d.requests.output_limit_disconnections;
    client_write(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.flood\"}\n", 47);
    /* Nothing read yet: the ceiling is passed, the connection is closed on
     * the next loop iteration and the parked call is cancelled. */
    PUMP_UNTIL(cancel_hook_runs > hooks);
    CHECK_INT(cancel_hook_runs, hooks + 1);
    CHECK(parked == NULL);
    CHECK_INT(d.requests.output_limit_disconnections, closed + 1);
    CHECK(client_drain_to_eof(fd));
    close(fd);
    rlen = 0;
}

static void test_half_close_answers_then_eof(void) {
    int fd = client_connect();
    int hooks = cancel_hook_runs;
    /* A parked call, a ping, and a last request without its newline. */
    const char *lines = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.park\"}\n"
                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n"
                        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}";
    client_write(fd, lines, strlen(lines));
    CHECK(shutdown(fd, SHUT_WR) == 0);
    json_t *r = client_read(fd);
    CHECK(r && json_integer_value(json_object_get(r, "id")) == 2);
    json_decref(r);
    r = client_read(fd);
    CHECK(r && json_integer_value(json_object_get(r, "id")) == 3);
    json_decref(r);
    PUMP_UNTIL(false); /* the half-close seen, and the hangup check run */
    CHECK_INT(cancel_hook_runs, hooks);
    CHECK(parked != NULL);
    rpc_reply(parked, json_string("late"));
    parked = NULL;
    r = client_read(fd);
    CHECK(r != NULL);
    CHECK_STR(json_string_value(json_object_get(r, "result")), "late");
    json_decref(r);
    CHECK(client_read(fd) == NULL); /* then EOF */
    close(fd);
}

static void test_half_close_then_close_cancels(void) {
    int fd = client_connect();
    int hooks = cancel_hook_runs;
    client_write(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.park\"}\n", 46);
    CHECK(shutdown(fd, SHUT_WR) == 0);
    PUMP_UNTIL(false);
    CHECK_INT(cancel_hook_runs, hooks);
    close(fd);
    PUMP_UNTIL(cancel_hook_runs > hooks);
    CHECK_INT(cancel_hook_runs, hooks + 1);
    CHECK(parked == NULL);
}

int main(void) {
    log_set_level(LOG_ERROR);
    RUN(test_frame_many_lines_and_partial);
    RUN(test_frame_stops_when_asked);
    RUN(test_frame_no_newline);

    char err[256];
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/nonexistent", 1);
    if (config_load(NULL, NULL, &d.cfg, NULL, err, sizeof err) != 0)
        return 1;
    d.cfg->max_request_bytes = 4096;
    d.loop = uv_default_loop();
    d.started_ms = daemon_now_ms();
    rpc_register(&d, methods_core);
    rpc_register(&d, test_methods);
    snprintf(sock_path, sizeof sock_path, "/tmp/promptd-unit-%d.sock", (int)getpid());
    if (server_start(&d, sock_path, err, sizeof err) != 0) {
        printf("FAIL server_start: %s\n", err);
        return 1;
    }
    RUN(test_validation_errors);
    RUN(test_ids_echoed_and_notifications_silent);
    RUN(test_param_readers);
    RUN(test_out_of_order_and_cancel);
    RUN(test_disconnect_runs_cancel_hooks);
    RUN(test_too_large_closes);
    RUN(test_exactly_max_is_accepted);
    RUN(test_string_id_at_and_past_its_limit);
    RUN(test_output_ceiling_closes_a_client_that_never_reads);
    RUN(test_half_close_answers_then_eof);
    RUN(test_half_close_then_close_cancels);
    unlink(sock_path);
    char lock[128];
    snprintf(lock, sizeof lock, "%s.lock", sock_path);
    unlink(lock);
    UNIT_EXIT();
}
