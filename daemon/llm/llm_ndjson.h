/* Incremental newline-delimited JSON line splitter (Ollama's streaming
 * /api/chat and /api/generate). Feed byte chunks split anywhere; it calls
 * back once per complete line, "\n" and a trailing "\r" removed. Lines
 * that are empty or only spaces/tabs are skipped. It does not parse JSON:
 * the callback does (json_loadb on line, len). No I/O, no loop. */
#ifndef PROMPTD_LLM_NDJSON_H
#define PROMPTD_LLM_NDJSON_H

#include <stddef.h>

/* Return values; errors are sticky (later feeds return them unread). */
enum ndjson_status {
    NDJSON_OK = 0,
    NDJSON_TOO_LARGE = -1, /* a line longer than max_line_bytes (terminator excluded) */
    NDJSON_STOPPED = -2,   /* the callback returned non-zero */
    NDJSON_PARTIAL = 1,    /* ndjson_finish only: a trailing unterminated line was delivered */
};

/* `line` is borrowed, valid only during the call, NUL-terminated at len
 * (so it may also be used as a C string when it has no NUL). Return 0 to
 * continue, non-zero to stop (the feed returns NDJSON_STOPPED). */
typedef int (*ndjson_line_cb)(void *user, const char *line, size_t len);

struct ndjson;

/* A line of exactly max_line_bytes is accepted; one byte more is
 * NDJSON_TOO_LARGE. Returns a splitter owned by the caller (ndjson_free).
 * `user` is borrowed. */
struct ndjson *ndjson_new(size_t max_line_bytes, ndjson_line_cb cb, void *user);

/* Returns NDJSON_OK or a negative enum ndjson_status. */
int ndjson_feed(struct ndjson *p, const char *buf, size_t len);

/* End of stream. A trailing line without "\n" that is not blank is passed
 * to the callback (a server may omit the last newline; whether it is a
 * whole JSON object is for the callback's parser to say) and NDJSON_PARTIAL
 * is returned so the caller knows. Otherwise NDJSON_OK, or the sticky
 * error, or NDJSON_STOPPED if the callback stops. */
int ndjson_finish(struct ndjson *p);

/* Frees the splitter; NULL is fine. */
void ndjson_free(struct ndjson *p);

#endif
