/* HTTP client for the LLM providers: libcurl's multi interface driven by the
 * daemon's libuv loop (a uv_poll_t per socket, one uv_timer_t for curl's
 * timeouts, curl_multi_socket_action), so a thousand slow upstream calls
 * cost no thread and never block the loop. Connections stay in the multi
 * handle's cache and are reused for the next request to the same host.
 *
 * Each transfer has two clocks of its own besides curl's connect timeout:
 * the wait for the first response byte (a cold model load can take
 * minutes), from the moment the request is sent on a connection, and,
 * once bytes flow, the deadline for the whole answer. Either
 * ending the transfer is reported as its own outcome so the engine can map
 * it to -32001 with the right sentence.
 *
 * A burst of new transfers reaches curl a few per loop iteration (their
 * connects would otherwise run back to back in one iteration, and the loop
 * would answer nobody meanwhile). Neither that wait (a few loop
 * iterations) nor the connect (curl's connect timeout bounds it) counts
 * towards the first-byte clock.
 *
 * The module knows nothing of providers or JSON: it moves bytes. */
#ifndef PROMPTD_HTTP_H
#define PROMPTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct http;
struct http_req;

/* How a transfer ended. HTTP_DONE means a complete HTTP response was read,
 * whatever its status; everything else means it was not. */
enum http_outcome {
    HTTP_DONE = 0,
    HTTP_UNREACHABLE,        /* connection refused, DNS failure, connect timeout */
    HTTP_FIRST_BYTE_TIMEOUT, /* no response byte within first_byte_timeout_ms */
    HTTP_DEADLINE,           /* the answer did not complete within deadline_ms */
    HTTP_TOO_LARGE,          /* the body exceeded max_response_bytes */
    HTTP_STOPPED,            /* on_data asked to stop */
    HTTP_BROKEN,             /* the connection failed mid-response (reset, cut, TLS) */
};

struct http_result {
    enum http_outcome outcome;
    long status;          /* HTTP status, 0 when none was received */
    long retry_after_s;   /* Retry-After in seconds, -1 when absent */
    const char *error;    /* curl's description when outcome != HTTP_DONE; borrowed */
    bool refused;         /* HTTP_UNREACHABLE because nothing listens there */
    int fd_errno;         /* EMFILE or ENFILE: it failed for want of a file descriptor; else 0 */
    size_t body_bytes;    /* body bytes received */
    double first_byte_ms; /* from start to the first response byte, -1 when none */
};

/* Called with each piece of the response body as it arrives; data is
 * borrowed for the call. status is the HTTP status already received.
 * Return true to go on, false to stop the transfer (HTTP_STOPPED). */
typedef bool (*http_data_fn)(void *arg, long status, const char *data, size_t len);
/* Called exactly once when the transfer ends, unless it was cancelled.
 * res is borrowed for the call. The request is freed after it returns:
 * the callback may start new requests but must not touch this one. */
typedef void (*http_done_fn)(void *arg, const struct http_result *res);

struct http_request {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const char *body;           /* POST body; copied */
    size_t body_len;
    long connect_timeout_ms;    /* 0: 10 s */
    long first_byte_timeout_ms; /* from the request's send; 0: none */
    long deadline_ms;           /* after the first byte; 0: none */
    size_t max_response_bytes;  /* 0: none */
    bool fresh_connection;      /* open a new connection, never reuse a cached one */
    http_data_fn on_data;
    http_done_fn on_done;
    void *arg; /* borrowed; passed to both callbacks */
};

/* Creates the engine on loop. max_idle bounds the connections kept open
 * for reuse (curl's own default shrinks with the number of transfers, so a
 * burst's connections would be closed right after it). Returns NULL (and
 * logs why) on failure. Owned by the caller; release with http_close. */
struct http *http_new(uv_loop_t *loop, long max_idle);

/* Cancels every transfer (no on_done for them), closes the multi handle
 * and starts closing the uv handles; the memory is freed in their close
 * callbacks, so the caller runs the loop once more. NULL is fine. */
void http_close(struct http *h);

/* Starts a transfer. Every string in r is copied. Returns the request
 * (borrowed: valid until on_done returns or http_req_cancel), or NULL with
 * a sentence in err when it could not be set up. */
struct http_req *http_start(struct http *h, const struct http_request *r, char *err, size_t errlen);

/* Aborts the transfer at once (its connection is closed, so the server
 * sees the client go). on_done is not called. Safe from inside on_data. */
void http_req_cancel(struct http_req *req);

/* Transfers started and not finished: running, or waiting for their turn
 * to reach curl. */
size_t http_active(const struct http *h);

#endif
