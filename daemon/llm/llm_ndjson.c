/* Incremental NDJSON line splitter; see llm_ndjson.h. A partial line waits in
 * `line`; complete lines inside one chunk are passed straight from the
 * caller's buffer when nothing is pending, so the common case copies
 * nothing. */
#include "llm_ndjson.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct ndjson {
    size_t max_line_bytes;
    ndjson_line_cb cb;
    void *user; /* borrowed */
    char *line; /* owned; the pending partial line, NUL-terminated; cap bytes */
    size_t len, cap;
    int err; /* sticky error, NDJSON_OK while none */
};

struct ndjson *ndjson_new(size_t max_line_bytes, ndjson_line_cb cb, void *user) {
    struct ndjson *p = xcalloc(1, sizeof *p);
    p->max_line_bytes = max_line_bytes;
    p->cb = cb;
    p->user = user;
    return p;
}

void ndjson_free(struct ndjson *p) {
    if (!p)
        return;
    free(p->line);
    free(p);
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* Hands one line to the callback. The line must be NUL-terminated at n
 * for the callback's convenience, hence the copy when it is in the
 * caller's buffer (which we may not write to). */
static int deliver(struct ndjson *p, const char *s, size_t n) {
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (blank(s, n)) {
        p->len = 0; /* when the line was pending, it is consumed */
        return NDJSON_OK;
    }
    if (s != p->line) {
        if (n + 1 > p->cap) {
            p->line = xrealloc(p->line, n + 1);
            p->cap = n + 1;
        }
        memcpy(p->line, s, n);
    }
    p->line[n] = '\0';
    int stop = p->cb(p->user, p->line, n);
    p->len = 0;
    return stop ? NDJSON_STOPPED : NDJSON_OK;
}

/* Appends to the pending line. The limit counts bytes before the "\n";
 * one extra byte is allowed for a "\r" that a CRLF line end brings, which
 * deliver() removes, and checked again there. */
static int append(struct ndjson *p, const char *s, size_t n) {
    if (n > p->max_line_bytes + 1 - p->len)
        return NDJSON_TOO_LARGE;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->len + n + 1)
            cap *= 2;
        p->line = xrealloc(p->line, cap);
        p->cap = cap;
    }
    memcpy(p->line + p->len, s, n);
    p->len += n;
    return NDJSON_OK;
}

/* A complete line made of the pending bytes plus s[0..n). */
static int complete_line(struct ndjson *p, const char *s, size_t n) {
    int rc = append(p, s, n);
    if (rc != NDJSON_OK)
        return rc;
    size_t len = p->len;
    if (len > p->max_line_bytes && !(len == p->max_line_bytes + 1 && p->line[len - 1] == '\r'))
        return NDJSON_TOO_LARGE;
    return deliver(p, p->line, len);
}

static int split(struct ndjson *p, const char *buf, size_t len) {
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) {
            int rc = append(p, buf + i, len - i);
            if (rc == NDJSON_OK && p->len > p->max_line_bytes &&
                !(p->len == p->max_line_bytes + 1 && p->line[p->len - 1] == '\r'))
                rc = NDJSON_TOO_LARGE;
            return rc;
        }
        size_t n = (size_t)(nl - (buf + i));
        int rc;
        if (p->len == 0 && n <= p->max_line_bytes + 1) {
            if (n == p->max_line_bytes + 1 && buf[i + n - 1] != '\r')
                return NDJSON_TOO_LARGE;
            rc = deliver(p, buf + i, n);
        } else {
            rc = complete_line(p, buf + i, n);
        }
        if (rc != NDJSON_OK)
            return rc;
        i += n + 1;
    }
    return NDJSON_OK;
}

int ndjson_feed(struct ndjson *p, const char *buf, size_t len) {
    if (p->err != NDJSON_OK)
        return p->err;
    p->err = split(p, buf, len);
    return p->err;
}

int ndjson_finish(struct ndjson *p) {
    if (p->err != NDJSON_OK)
        return p->err;
    if (p->len == 0 || blank(p->line, p->len)) {
        p->len = 0;
        return NDJSON_OK;
    }
    /* The limit excludes a final "\r", as for a line ended by CRLF. */
    if (p->len - (p->line[p->len - 1] == '\r') > p->max_line_bytes) {
        p->err = NDJSON_TOO_LARGE;
        return p->err;
    }
    int rc = deliver(p, p->line, p->len);
    if (rc != NDJSON_OK) {
        p->err = rc;
        return rc;
    }
    return NDJSON_PARTIAL;
}
