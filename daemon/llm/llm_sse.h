/* Incremental Server-Sent Events parser (the WHATWG "event stream"
 * format used by OpenAI, Anthropic and Gemini streaming). Feed it byte
 * chunks split anywhere; it calls back once per complete event. Lines end
 * with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start
 * of the next are one line end). Fields: `event:` sets the name, `data:`
 * lines are joined with "\n", `id:` and `retry:` are ignored, lines that
 * start with ':' are comments. One space after the colon is removed. An
 * event with no data line is not dispatched (as the spec says). A leading
 * UTF-8 BOM is skipped. Nothing is dispatched at end of stream for an event
 * missing its blank line: the spec discards it, and sse_finish says so.
 *
 * No I/O, no loop: the caller owns the bytes and the timing. */
#ifndef PROMPTD_LLM_SSE_H
#define PROMPTD_LLM_SSE_H

#include <stddef.h>

/* Return values of sse_feed / sse_finish. Errors are sticky: once one is
 * returned every later feed returns it again without reading. */
enum sse_status {
    SSE_OK = 0,
    SSE_TOO_LARGE = -1, /* an event (all its raw lines) exceeded max_event_bytes */
    SSE_STOPPED = -2,   /* the callback returned non-zero */
    SSE_PARTIAL = 1,    /* sse_finish only: an unterminated event was dropped */
};

/* Called once per event. `event` is the event name, "message" when the
 * event had no `event:` field; `data` is the joined data lines, NUL-
 * terminated, data_len bytes (it may contain NULs if the server sent them).
 * Both are borrowed and valid only during the call. Return 0 to continue,
 * non-zero to stop: sse_feed then returns SSE_STOPPED. */
typedef int (*sse_event_cb)(void *user, const char *event, const char *data, size_t data_len);

struct sse;

/* max_event_bytes bounds the raw bytes of one event: the sum of the
 * lengths of its lines (comments and ignored fields included, line ends
 * excluded). An event of exactly max_event_bytes is accepted. Returns a
 * parser owned by the caller (free with sse_free). `user` is borrowed and
 * passed to cb. */
struct sse *sse_new(size_t max_event_bytes, sse_event_cb cb, void *user);

/* Parses len bytes; calls cb for each event they complete. Returns SSE_OK
 * or a negative enum sse_status. */
int sse_feed(struct sse *p, const char *buf, size_t len);

/* End of stream. Returns SSE_OK when the stream ended on an event
 * boundary, SSE_PARTIAL when an unterminated event (or line) was dropped,
 * or the sticky error. Dispatches nothing. */
int sse_finish(struct sse *p);

/* Frees the parser; NULL is fine. */
void sse_free(struct sse *p);

#endif
