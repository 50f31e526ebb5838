/* JSON-RPC 2.0 layer: validates request objects, dispatches them through
 * method tables, and carries each call until it is answered exactly once.
 *
 * Lifetime of a call: the dispatcher creates it and hands it to a method.
 * The method (now, or later from any loop callback) finishes it with exactly
 * one rpc_reply* call, which sends the answer (if the client is still there)
 * and frees the call. A method that keeps a call across callbacks may set a
 * cancel hook: it runs once when the client sends `cancel` for it, the
 * client disconnects, or the daemon stops; the owner must then finish the
 * call (normally with rpc_reply_cancelled), now or soon. */
#ifndef PROMPTD_RPC_H
#define PROMPTD_RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct daemon;
struct conn;
struct rpc_call;

/* params is borrowed: always a JSON object (empty when the request had
 * none), valid until the call is finished; json_incref it to keep it. */
typedef void (*rpc_method_fn)(struct rpc_call *call, json_t *params);

struct rpc_method {
    const char *name;
    rpc_method_fn fn;
};

/* Adds a table ending in {NULL, NULL}; tables are searched in order. */
void rpc_register(struct daemon *d, const struct rpc_method *table);

/* A request line checked against JSON-RPC 2.0, with no I/O. */
struct rpc_request {
    json_t *request;    /* owned by the caller (json_decref), NULL when not JSON */
    json_t *id;         /* borrowed from request; NULL when absent or unusable */
    const char *method; /* borrowed; set when valid */
    json_t *params;     /* borrowed; NULL when absent */
    int code;           /* on error: the JSON-RPC error code ... */
    const char *kind;   /* ... its data.kind (rpc_code_kind) ... */
    char message[320];  /* ... and the sentence for the client */
};

/* Parses and validates one line. Returns 0 for a valid request, else -1
 * with code, kind, message and the id to answer with (may be NULL). */
int rpc_parse_request(const char *line, size_t len, struct rpc_request *r);

/* Frames one request line (no newline) read from conn and dispatches it.
 * Never fails: any problem is answered on conn as a JSON-RPC error. */
void rpc_handle_line(struct daemon *d, struct conn *conn, const char *line, size_t len);

/* Answers and frees the call. result is stolen. */
void rpc_reply(struct rpc_call *call, json_t *result);
/* Answers an error and frees the call. data is stolen (may be NULL); the
 * code's kind (rpc_code_kind) is added to it as data.kind. The message is
 * a sentence a person can act on. */
void rpc_reply_error(struct rpc_call *call, int code, json_t *data, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* -32602 with data.field = field. */
void rpc_reply_invalid_param(struct rpc_call *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rpc_reply_cancelled(struct rpc_call *call);

/* Sends a notification on the call's connection (e.g. improve.delta);
 * params is stolen. A no-op once the client has gone. */
void rpc_notify(struct rpc_call *call, const char *method, json_t *params);

typedef void (*rpc_cancel_fn)(void *arg);
/* Sets (fn non-NULL) or clears (fn NULL) the call's cancel hook. */
void rpc_call_set_cancel(struct rpc_call *call, rpc_cancel_fn fn, void *arg);
/* Runs the cancel hook of every in-flight call of the connection (it is
 * closing, or the daemon is stopping). */
void rpc_cancel_conn_calls(struct conn *conn);
/* The `cancel` method: looks the call up among conn's in-flight calls. */
bool rpc_cancel_by_id(struct conn *conn, json_t *request_id);

struct daemon *rpc_call_daemon(const struct rpc_call *call);
/* The request's id (borrowed; JSON null for a notification). */
json_t *rpc_call_id(const struct rpc_call *call);
struct conn *rpc_call_conn(const struct rpc_call *call);
/* uv_hrtime() in ms when the request line was received. */
uint64_t rpc_call_received_ms(const struct rpc_call *call);
/* False once the client has disconnected: no point in streaming to it. */
bool rpc_call_client_alive(const struct rpc_call *call);

/* Parameter readers. Each returns true when the param is valid or absent
 * and optional (then *out is left as it was: set the default first). On a
 * wrong type or range it answers -32602 naming the field, finishes the call
 * and returns false: the method must return at once. */
bool rpc_param_str(struct rpc_call *call, json_t *params, const char *name, bool required,
                   const char **out);
bool rpc_param_int(struct rpc_call *call, json_t *params, const char *name, bool required,
                   json_int_t min, json_int_t max, json_int_t *out);
bool rpc_param_num(struct rpc_call *call, json_t *params, const char *name, bool required,
                   double min, double max, double *out);
bool rpc_param_bool(struct rpc_call *call, json_t *params, const char *name, bool *out);

#endif
