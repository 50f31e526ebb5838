#include "rpc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "xalloc.h"

struct rpc_call {
    struct daemon *d;  /* borrowed */
    struct conn *conn; /* holds a ref until the call is finished */
    json_t *request;   /* owned; the parsed request object */
    json_t *id;        /* borrowed from request; NULL for a notification */
    json_t *params;    /* owned (a new empty object when absent) */
    uint64_t received_ms;
    size_t sent_bytes; /* notifications sent so far, for conn's answer_guess */
    rpc_cancel_fn cancel_fn;
    void *cancel_arg;
    LIST_ENTRY(rpc_call) entry; /* conn's in-flight list */
};

/* Method names in messages are cut to this many bytes: a client may send
 * a megabyte of method name. */
#define RPC_NAME_IN_MESSAGE 64

void rpc_register(struct daemon *d, const struct rpc_method *table) {
    if (d->n_method_tables >= DAEMON_MAX_METHOD_TABLES) {
        log_error("too many method tables; raise DAEMON_MAX_METHOD_TABLES");
        abort(); /* a wiring bug, caught by any test */
    }
    d->method_tables[d->n_method_tables++] = table;
}

static rpc_method_fn rpc_find(const struct daemon *d, const char *name) {
    for (size_t t = 0; t < d->n_method_tables; t++)
        for (const struct rpc_method *m = d->method_tables[t]; m->name; m++)
            if (strcmp(m->name, name) == 0)
                return m->fn;
    return NULL;
}

/* Sends a message object (stolen) on conn; returns its size in bytes. */
static size_t rpc_send(struct conn *conn, json_t *msg) {
    if (!msg)
        return 0;
    /* 15 significant digits: 0.3 stays "0.3", not 0.29999999999999999. */
    char *text = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(msg);
    if (!text) { /* a message is an object: only a broken invariant gets here */
        log_error("cannot encode a response");
        return 0;
    }
    size_t len = strlen(text);
    conn_send(conn, text, len);
    return len;
}

static json_t *rpc_error_object(int code, json_t *data, const char *message) {
    if (!data || !json_is_object(data)) {
        json_decref(data);
        data = json_object();
    }
    json_object_set_new(data, "kind", json_string(rpc_code_kind(code)));
    return json_pack("{s:i, s:s, s:o}", "code", code, "message", message, "data", data);
}

/* Answers a request that never became a call (it was not valid). */
static void rpc_send_early_error(struct daemon *d, struct conn *conn, json_t *id, int code,
                                 const char *message) {
    d->requests.failed++;
    json_t *msg = json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", id, "error",
                            rpc_error_object(code, NULL, message));
    rpc_send(conn, msg);
}

static void rpc_link(struct rpc_call *call) {
    struct conn *c = call->conn;
    LIST_INSERT_HEAD(&c->calls, call, entry);
    c->n_calls++;
}

static void rpc_unlink(struct rpc_call *call) {
    struct conn *c = call->conn;
    LIST_REMOVE(call, entry);
    c->n_calls--;
}

/* Sends the final message (stolen) of a call and frees the call. */
static void rpc_finish(struct rpc_call *call, json_t *msg, bool ok) {
    struct daemon *d = call->d;
    struct conn *conn = call->conn;
    d->requests.in_flight--;
    if (ok)
        d->requests.served++;
    else
        d->requests.failed++;
    size_t sent = call->sent_bytes;
    if (call->id)
        sent += rpc_send(conn, msg);
    else
        json_decref(msg); /* notifications get no answer */
    rpc_unlink(call);
    json_decref(call->params);
    json_decref(call->request);
    free(call);
    conn_call_done(conn, sent);
    conn_unref(conn);
}

void rpc_reply(struct rpc_call *call, json_t *result) {
    if (!result) { /* json_pack refused its arguments (a NULL string): a bug, answered */
        rpc_reply_error(call, RPC_INTERNAL, NULL, "internal error: the result could not be built");
        return;
    }
    json_t *msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id",
                            call->id ? call->id : json_null(), "result", result);
    rpc_finish(call, msg, true);
}

static void rpc_reply_verror(struct rpc_call *call, int code, json_t *data, const char *fmt,
                             va_list ap) __attribute__((format(printf, 4, 0)));
static void rpc_reply_verror(struct rpc_call *call, int code, json_t *data, const char *fmt,
                             va_list ap) {
    char message[1024];
    vsnprintf(message, sizeof message, fmt, ap);
    json_t *msg =
        json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", call->id ? call->id : json_null(),
                  "error", rpc_error_object(code, data, message));
    rpc_finish(call, msg, false);
}

void rpc_reply_error(struct rpc_call *call, int code, json_t *data, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rpc_reply_verror(call, code, data, fmt, ap);
    va_end(ap);
}

void rpc_reply_invalid_param(struct rpc_call *call, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rpc_reply_verror(call, RPC_INVALID_PARAMS, json_pack("{s:s}", "field", field), fmt, ap);
    va_end(ap);
}

void rpc_reply_cancelled(struct rpc_call *call) {
    rpc_reply_error(call, RPC_CANCELLED, NULL, "the request was cancelled");
}

void rpc_notify(struct rpc_call *call, const char *method, json_t *params) {
    if (!conn_is_open(call->conn)) {
        json_decref(params);
        return;
    }
    call->sent_bytes += rpc_send(call->conn, json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0",
                                                       "method", method, "params", params));
}

void rpc_call_set_cancel(struct rpc_call *call, rpc_cancel_fn fn, void *arg) {
    call->cancel_fn = fn;
    call->cancel_arg = arg;
}

/* Runs a call's cancel hook once. The hook may finish the call at once. */
static bool rpc_cancel_call(struct rpc_call *call) {
    rpc_cancel_fn fn = call->cancel_fn;
    if (!fn)
        return false;
    call->cancel_fn = NULL;
    fn(call->cancel_arg);
    return true;
}

void rpc_cancel_conn_calls(struct conn *conn) {
    /* Hooks may finish (and free) their call or others: restart the walk
     * after each hook, which runs at most once per call. */
    bool again = true;
    while (again) {
        again = false;
        struct rpc_call *c;
        LIST_FOREACH(c, &conn->calls, entry)
        if (c->cancel_fn) {
            rpc_cancel_call(c);
            again = true;
            break;
        }
    }
}

bool rpc_cancel_by_id(struct conn *conn, json_t *request_id) {
    struct rpc_call *c;
    LIST_FOREACH(c, &conn->calls, entry)
    if (c->id && json_equal(c->id, request_id))
        return rpc_cancel_call(c);
    return false;
}

struct daemon *rpc_call_daemon(const struct rpc_call *call) {
    return call->d;
}

json_t *rpc_call_id(const struct rpc_call *call) {
    return call->id ? call->id : json_null();
}

struct conn *rpc_call_conn(const struct rpc_call *call) {
    return call->conn;
}

uint64_t rpc_call_received_ms(const struct rpc_call *call) {
    return call->received_ms;
}

bool rpc_call_client_alive(const struct rpc_call *call) {
    return conn_is_open(call->conn);
}

static int rpc_reject(struct rpc_request *r, json_t *id, int code, const char *message) {
    r->id = id;
    r->code = code;
    r->kind = rpc_code_kind(code);
    snprintf(r->message, sizeof r->message, "%s", message);
    return -1;
}

/* Checks the envelope of a parsed value. */
static int rpc_check_envelope(json_t *req, struct rpc_request *r) {
    if (json_is_array(req))
        return rpc_reject(r, NULL, RPC_INVALID_REQUEST,
                          "batches (JSON arrays) are not supported: send one request object "
                          "per line");
    if (!json_is_object(req))
        return rpc_reject(r, NULL, RPC_INVALID_REQUEST,
                          "a request must be a JSON object with jsonrpc, method and id");
    json_t *id = json_object_get(req, "id");
    if (id && !json_is_string(id) && !json_is_number(id) && !json_is_null(id))
        return rpc_reject(r, NULL, RPC_INVALID_REQUEST, "id must be a number or a string");
    /* Every answer and improve.delta repeats the id: keep it short. */
    if (json_is_string(id) && json_string_length(id) > LIMIT_REQUEST_ID_BYTES) {
        char message[160];
        snprintf(message, sizeof message,
                 "a string id may be at most %d bytes long (this one is %zu): use a number or a "
                 "shorter string",
                 LIMIT_REQUEST_ID_BYTES, json_string_length(id));
        return rpc_reject(r, NULL, RPC_INVALID_REQUEST, message);
    }
    json_t *version = json_object_get(req, "jsonrpc");
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0)
        return rpc_reject(r, id, RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    json_t *method = json_object_get(req, "method");
    if (!json_is_string(method))
        return rpc_reject(r, id, RPC_INVALID_REQUEST,
                          "method must be a string naming the method to call");
    json_t *params = json_object_get(req, "params");
    if (params && json_is_array(params))
        return rpc_reject(r, id, RPC_INVALID_PARAMS,
                          "params must be an object of named parameters");
    if (params && !json_is_object(params))
        return rpc_reject(r, id, RPC_INVALID_REQUEST, "params must be an object");
    r->id = id;
    r->method = json_string_value(method);
    r->params = params;
    return 0;
}

/* Finds a string holding U+0000 in v and writes where it is ("params.x",
 * "params.list[2]") into path. */
static bool rpc_find_nul(json_t *v, char *path, size_t pathlen) {
    size_t used = strlen(path);
    if (json_is_string(v))
        return strlen(json_string_value(v)) != json_string_length(v);
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            snprintf(path + used, pathlen - used, "[%zu]", i);
            if (rpc_find_nul(item, path, pathlen))
                return true;
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item) {
            snprintf(path + used, pathlen - used, ".%s", key);
            if (rpc_find_nul(item, path, pathlen))
                return true;
        }
    }
    path[used] = '\0';
    return false;
}

/* Strings reach C code as C strings, so U+0000 cannot be taken. It is
 * valid JSON, though: the request is parsed with JSON_ALLOW_NUL only so
 * that the refusal can carry the request's id and say which field. */
static int rpc_refuse_nul(struct rpc_request *r) {
    char path[200], message[300];
    const char *key;
    json_t *value;
    json_object_foreach(r->request, key, value) {
        snprintf(path, sizeof path, "%s", key);
        if (!rpc_find_nul(value, path, sizeof path))
            continue;
        bool in_params = strcmp(key, "params") == 0;
        snprintf(message, sizeof message,
                 "%s contains \\u0000 (a NUL character), which promptd does not accept in "
                 "strings",
                 path);
        return rpc_reject(r, strcmp(key, "id") == 0 ? NULL : r->id,
                          in_params ? RPC_INVALID_PARAMS : RPC_INVALID_REQUEST, message);
    }
    return 0;
}

int rpc_parse_request(const char *line, size_t len, struct rpc_request *r) {
    memset(r, 0, sizeof *r);
    json_error_t jerr;
    /* jansson rejects invalid UTF-8 and raw NUL bytes. */
    r->request = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!r->request) {
        char message[300];
        snprintf(message, sizeof message, "the request is not valid JSON: %s (at byte %d)",
                 jerr.text, jerr.position);
        return rpc_reject(r, NULL, RPC_PARSE_ERROR, message);
    }
    if (rpc_check_envelope(r->request, r) != 0)
        return -1;
    return rpc_refuse_nul(r);
}

static bool rpc_line_is_blank(const char *line, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            return false;
    return true;
}

void rpc_handle_line(struct daemon *d, struct conn *conn, const char *line, size_t len) {
    if (rpc_line_is_blank(line, len))
        return; /* keep-alive newlines are harmless */
    struct rpc_request r;
    if (rpc_parse_request(line, len, &r) != 0) {
        rpc_send_early_error(d, conn, r.id, r.code, r.message);
        json_decref(r.request);
        return;
    }
    json_t *req = r.request, *id = r.id;
    const char *name = r.method;
    rpc_method_fn fn = rpc_find(d, name);
    if (!fn) {
        if (id) {
            char message[160];
            snprintf(message, sizeof message,
                     "unknown method \"%.*s\": docs/protocol.md lists the methods",
                     RPC_NAME_IN_MESSAGE, name);
            rpc_send_early_error(d, conn, id, RPC_METHOD_NOT_FOUND, message);
        }
        json_decref(req);
        return;
    }
    struct rpc_call *call = xcalloc(1, sizeof *call);
    json_t *params = r.params ? json_incref(r.params) : json_object();
    call->d = d;
    call->conn = conn;
    call->request = req;
    call->id = id;
    call->params = params;
    call->received_ms = daemon_now_ms();
    conn_ref(conn);
    rpc_link(call);
    d->requests.in_flight++;
    fn(call, params);
}

/* ---- parameter readers ---- */

static json_t *rpc_param_get(json_t *params, const char *name) {
    json_t *v = json_object_get(params, name);
    return v && !json_is_null(v) ? v : NULL;
}

static bool rpc_param_missing(struct rpc_call *call, const char *name, bool required) {
    if (required)
        rpc_reply_invalid_param(call, name, "missing required parameter \"%s\"", name);
    return !required;
}

bool rpc_param_str(struct rpc_call *call, json_t *params, const char *name, bool required,
                   const char **out) {
    json_t *v = rpc_param_get(params, name);
    if (!v)
        return rpc_param_missing(call, name, required);
    if (!json_is_string(v)) {
        rpc_reply_invalid_param(call, name, "\"%s\" must be a string", name);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool rpc_param_int(struct rpc_call *call, json_t *params, const char *name, bool required,
                   json_int_t min, json_int_t max, json_int_t *out) {
    json_t *v = rpc_param_get(params, name);
    if (!v)
        return rpc_param_missing(call, name, required);
    json_int_t n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        n = (json_int_t)json_real_value(v);
    } else {
        rpc_reply_invalid_param(call, name, "\"%s\" must be a whole number", name);
        return false;
    }
    if (n < min || n > max) {
        rpc_reply_invalid_param(call, name, "\"%s\" must be from %lld to %lld", name,
                                (long long)min, (long long)max);
        return false;
    }
    *out = n;
    return true;
}

bool rpc_param_num(struct rpc_call *call, json_t *params, const char *name, bool required,
                   double min, double max, double *out) {
    json_t *v = rpc_param_get(params, name);
    if (!v)
        return rpc_param_missing(call, name, required);
    if (!json_is_number(v)) {
        rpc_reply_invalid_param(call, name, "\"%s\" must be a number", name);
        return false;
    }
    double n = json_number_value(v);
    if (n < min || n > max) {
        rpc_reply_invalid_param(call, name, "\"%s\" must be from %g to %g", name, min, max);
        return false;
    }
    *out = n;
    return true;
}

bool rpc_param_bool(struct rpc_call *call, json_t *params, const char *name, bool *out) {
    json_t *v = rpc_param_get(params, name);
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        rpc_reply_invalid_param(call, name, "\"%s\" must be true or false", name);
        return false;
    }
    *out = json_is_true(v);
    return true;
}
