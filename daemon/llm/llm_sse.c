/* Incremental SSE parser; see llm_sse.h. Bytes are consumed as they come: a
 * partial line waits in `line`, the event being built in `data` and
 * `event`. Every byte of an event is counted in block_bytes against the
 * limit before it is stored, so memory stays within about twice the limit
 * whatever the server sends. */
#include "llm_sse.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* A growable byte buffer, always NUL-terminated when data is non-NULL. */
struct sse_buf {
    char *data; /* owned */
    size_t len, cap;
};

struct sse {
    size_t max_event_bytes;
    sse_event_cb cb;
    void *user;           /* borrowed */
    struct sse_buf line;  /* the line being read, terminator not included */
    struct sse_buf data;  /* data lines of the current event, joined by \n */
    struct sse_buf event; /* event name of the current event, "" for none */
    size_t block_bytes;   /* raw bytes of the current event so far */
    bool has_data;        /* at least one data: line in the current event */
    bool cr_pending;      /* the last byte was CR: an LF right after it is the same line end */
    unsigned bom_seen;    /* leading bytes matched against the UTF-8 BOM */
    bool bom_done;        /* past the point where a BOM could be */
    int err;              /* sticky error, SSE_OK while none */
};

static const char sse_bom[3] = {'\xEF', '\xBB', '\xBF'};

static void buf_append(struct sse_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_reset(struct sse_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

struct sse *sse_new(size_t max_event_bytes, sse_event_cb cb, void *user) {
    struct sse *p = xcalloc(1, sizeof *p);
    p->max_event_bytes = max_event_bytes;
    p->cb = cb;
    p->user = user;
    return p;
}

void sse_free(struct sse *p) {
    if (!p)
        return;
    free(p->line.data);
    free(p->data.data);
    free(p->event.data);
    free(p);
}

static int dispatch(struct sse *p) {
    int rc = SSE_OK;
    if (p->has_data) {
        const char *name = p->event.len ? p->event.data : "message";
        const char *data = p->data.data ? p->data.data : "";
        if (p->cb(p->user, name, data, p->data.len) != 0)
            rc = SSE_STOPPED;
    }
    buf_reset(&p->data);
    buf_reset(&p->event);
    p->has_data = false;
    p->block_bytes = 0;
    return rc;
}

/* Applies one complete line (without its terminator) to the event. */
static int process_line(struct sse *p, const char *s, size_t n) {
    if (n == 0)
        return dispatch(p);
    if (s[0] == ':')
        return SSE_OK; /* comment, e.g. a keep-alive */
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    const char *value = colon ? colon + 1 : s + n;
    size_t value_len = (size_t)(s + n - value);
    if (value_len && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        if (p->has_data)
            buf_append(&p->data, "\n", 1);
        buf_append(&p->data, value, value_len);
        p->has_data = true;
    } else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
        buf_reset(&p->event);
        buf_append(&p->event, value, value_len);
    }
    /* id, retry and unknown fields are ignored: the daemon never
     * reconnects a stream, so Last-Event-ID and retry have no use. */
    return SSE_OK;
}

/* Adds part of a line, counting it against the event's limit first. */
static int add_to_line(struct sse *p, const char *s, size_t n) {
    if (n > p->max_event_bytes - p->block_bytes)
        return SSE_TOO_LARGE;
    p->block_bytes += n;
    buf_append(&p->line, s, n);
    return SSE_OK;
}

static int end_line(struct sse *p) {
    int rc = process_line(p, p->line.data ? p->line.data : "", p->line.len);
    buf_reset(&p->line);
    return rc;
}

/* The parser proper, once any BOM is out of the way. */
static int parse(struct sse *p, const char *buf, size_t len) {
    size_t i = 0;
    if (p->cr_pending && len > 0) {
        p->cr_pending = false;
        if (buf[0] == '\n')
            i = 1;
    }
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        int rc = add_to_line(p, buf + i, j - i);
        if (rc != SSE_OK)
            return rc;
        if (j == len)
            break;
        rc = end_line(p);
        if (rc != SSE_OK)
            return rc;
        if (buf[j] == '\r') {
            if (j + 1 == len)
                p->cr_pending = true;
            else if (buf[j + 1] == '\n')
                j++;
        }
        i = j + 1;
    }
    return SSE_OK;
}

/* Strips a leading BOM even when it arrives split across feeds: bytes that
 * turn out not to be a BOM are parsed as usual. */
static int skip_bom(struct sse *p, const char **buf, size_t *len) {
    while (!p->bom_done && *len > 0) {
        if (**buf != sse_bom[p->bom_seen]) {
            p->bom_done = true;
            return parse(p, sse_bom, p->bom_seen);
        }
        p->bom_seen++;
        (*buf)++;
        (*len)--;
        if (p->bom_seen == sizeof sse_bom)
            p->bom_done = true;
    }
    return SSE_OK;
}

int sse_feed(struct sse *p, const char *buf, size_t len) {
    if (p->err != SSE_OK)
        return p->err;
    int rc = skip_bom(p, &buf, &len);
    if (rc == SSE_OK)
        rc = parse(p, buf, len);
    p->err = rc;
    return rc;
}

int sse_finish(struct sse *p) {
    if (p->err != SSE_OK)
        return p->err;
    if (!p->bom_done && p->bom_seen > 0)
        return SSE_PARTIAL; /* a stream of one or two BOM bytes */
    return p->line.len > 0 || p->has_data ? SSE_PARTIAL : SSE_OK;
}
