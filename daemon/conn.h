/* One client connection: reads bytes, frames them into lines, queues
 * responses, and applies backpressure. Knows nothing of JSON-RPC beyond
 * handing each line to rpc_handle_line. */
#ifndef PROMPTD_CONN_H
#define PROMPTD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <uv.h>

struct daemon;
struct server;
struct rpc_call;

/* A conn's in-flight calls: rpc.c links and unlinks them. */
LIST_HEAD(rpc_call_list, rpc_call);

struct conn {
    uv_pipe_t pipe;         /* pipe.data == this */
    struct daemon *d;       /* borrowed */
    struct server *srv;     /* borrowed; outlives every conn */
    int refs;               /* 1 for the open handle + 1 per in-flight call */
    bool closing;           /* uv_close requested: nothing more is written */
    bool reading;           /* uv_read_start active */
    bool close_after_flush; /* too_large: close once the error is written */
    bool processing;        /* inside conn_process_input: no re-entry */
    bool eof;               /* the client half-closed: no more requests, answers still go out */
    bool overflowed;        /* past LIMIT_CONN_OUTPUT_HARD_BYTES: closed at the next safe point */
    char *in;               /* owned; bytes read, not yet dispatched; NULL when none */
    size_t in_len, in_cap;
    size_t out_bytes; /* response bytes queued, not yet written */
    /* What one call is expected to write (its notifications and answer):
     * the largest a recent call wrote, halved by each smaller one. The
     * calls in flight will queue about n_calls * answer_guess more. */
    size_t answer_guess;
    struct rpc_call_list calls; /* in-flight calls (rpc.c owns the list) */
    size_t n_calls;
    LIST_ENTRY(conn) entry; /* the server's list of open connections */
};

/* The server's open connections (server.c's conns). */
LIST_HEAD(conn_list, conn);

/* Accepts the client waiting on listener: allocates its conn, links it on
 * srv's list, checks the peer and starts reading. The conn belongs to its
 * handle from then on (freed after conn_close, once the last call is
 * finished). Returns 0, or the libuv error of the accept (nothing is kept:
 * the caller only logs it). */
int conn_create(struct daemon *d, struct server *srv, uv_stream_t *listener);

/* Queues one message line (a newline is added). Takes ownership of text
 * (malloc'd, len bytes, no newline). A no-op once the connection closes. */
void conn_send(struct conn *c, char *text, size_t len);

/* Closes the connection at a safe point: stops reading, cancels its calls,
 * and frees it once the handle is closed and the last call is finished. */
void conn_close(struct conn *c);

/* True while answers and notifications can still reach the client. */
bool conn_is_open(const struct conn *c);

void conn_ref(struct conn *c);
void conn_unref(struct conn *c);

/* Rechecks backpressure after a call finished or output drained. */
void conn_maybe_resume(struct conn *c);

/* A call of c was finished after writing bytes in all (notifications and
 * answer): updates answer_guess, then rechecks backpressure. */
void conn_call_done(struct conn *c, size_t bytes);

/* The client may have closed its socket entirely after a half-close; if
 * so, closes the connection (cancelling its calls). Called by the server's
 * periodic check; returns true while c stays half-closed and open. */
bool conn_check_hangup(struct conn *c);

/* Stops reading new requests (daemon shutdown). */
void conn_stop_reading(struct conn *c);

/* Splits buf[0..len) into complete lines: calls on_line for each line
 * (without its newline) and returns the number of bytes consumed; the
 * rest is a partial line. Stops early (returning what it consumed) when
 * on_line returns false. Exposed for the framing unit tests. */
size_t conn_frame_lines(const char *buf, size_t len,
                        bool (*on_line)(void *arg, const char *line, size_t n), void *arg);

#endif
